#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The registry of an initialised CA (issue #12, items 2 and 4): a missing
# or empty registry is refused by every command, never started again (the
# CRL would restart at number 1 without the revocations, the audit trail
# at 0 entries); after a restore from backup everything is back; CRL
# numbers never go back, even with a registry restored from an older
# backup; listing, showing, verifying and exporting (audit head too) work
# for a user who may read the CA directory but not write it.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
plan 34

D=$TT/ca
W=$TT/w
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/ca.key" 2>/dev/null
check "ca init" p11ca ca init --dir "$D" --subject "/CN=Safety CA" \
    --key "$W/ca.key"
for n in alice bob; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$n.key" -subj "/CN=$n" -out "$W/$n.csr" 2>/dev/null
    p11ca issue --dir "$D" --profile client --out "$W/$n.pem" "$W/$n.csr" \
        >/dev/null
done
S_ALICE=$(openssl x509 -in "$W/alice.pem" -noout -serial | cut -d= -f2)
check "revoke alice" p11ca cert revoke --dir "$D" --reason keyCompromise "$S_ALICE"
check "CRL 1" p11ca crl --dir "$D" --out "$W/crl1.pem"
crlnum() { openssl crl -in "$1" -noout -crlnumber | cut -d= -f2; }
assert_eq "$(cat "$D/last-crl-number")" 1 \
    "the last CRL number is kept outside the registry too"
sqlite3 "$D/registry.db" ".backup $W/backup1.db"

# The registry disappears.
rm -f "$D"/registry.db*
cp "$D/crl.pem" "$W/crl.before"
missing='registry .*registry.db does not exist; the CA in .* was initialised.*will not start a new registry.*Restore the registry from your backup'
should_fail 4 "$missing" "audit verify refuses a missing registry" \
    p11ca audit verify --dir "$D"
should_fail 4 "$missing" "crl refuses a missing registry" \
    p11ca crl --dir "$D" --out "$W/crl-bad.pem"
should_fail 4 "$missing" "cert list refuses a missing registry" \
    p11ca cert list --dir "$D"
should_fail 4 "$missing" "issue refuses a missing registry" \
    p11ca issue --dir "$D" --profile client --client-id x --out "$W/x.pem" \
    "$W/bob.csr"
should_fail 4 "$missing" "cert revoke refuses a missing registry" \
    p11ca cert revoke --dir "$D" "$S_ALICE"
should_fail 4 "$missing" "ca show refuses a missing registry" \
    p11ca ca show --dir "$D"
if [ -e "$D/registry.db" ] || [ -e "$W/crl-bad.pem" ] || [ -e "$W/x.pem" ]; then
    not_ok "no registry was created, no CRL or certificate written"
else
    ok "no registry was created, no CRL or certificate written"
fi
assert_eq "$(cmp -s "$D/crl.pem" "$W/crl.before" && echo same)" same \
    "DIR/crl.pem is untouched"
: >"$D/registry.db"
should_fail 4 'registry .* is empty.*Restore' \
    "an empty registry file is refused" p11ca cert list --dir "$D"
assert_eq "$(stat -c %s "$D/registry.db")" 0 "... and left empty"
sqlite3 "$D/registry.db" "create table t (x)"
should_fail 4 'is empty' "a database without the registry's tables is refused" \
    p11ca audit verify --dir "$D"

# Restored from the backup: the trail, the revocation, CRL numbering.
cp "$W/backup1.db" "$D/registry.db"
check "after the restore, audit verify" p11ca audit verify --dir "$D"
assert_grep 'intact: [1-9][0-9]* entries' "$TT/out" "the audit trail is back"
check "CRL 2" p11ca crl --dir "$D" --out "$W/crl2.pem"
assert_eq "$(crlnum "$W/crl2.pem")" 0x02 "the CRL number goes on (2)"
cat "$D/ca.pem" >"$W/chain.pem"
if openssl verify -crl_check -CAfile "$W/chain.pem" -CRLfile "$W/crl2.pem" \
    "$W/alice.pem" >"$W/v.out" 2>&1; then
    not_ok "alice is still revoked"
else
    assert_grep 'revoked' "$W/v.out" "alice is still revoked"
fi

# A registry restored from an older backup may lack revocations: its CRL
# numbers are behind DIR/last-crl-number, and no CRL is made from it.
sqlite3 "$D/registry.db" ".backup $W/backup2.db"
check "CRL 3" p11ca crl --dir "$D" --out "$W/crl3.pem"
sqlite3 "$D/registry.db" ".backup $W/backup3.db"
cp "$W/backup2.db" "$D/registry.db"
rm -f "$D/registry.db-wal" "$D/registry.db-shm"
cp "$D/crl.pem" "$W/crl.before"
should_fail 4 'CRL number 3 was issued .*last-crl-number.*registry.s last CRL number is 2.*older than the last CRL' \
    "a registry behind the last CRL number is refused" \
    p11ca crl --dir "$D" --out "$W/crl-old.pem"
assert_eq "$(cmp -s "$D/crl.pem" "$W/crl.before" && echo same):$(cat "$D/last-crl-number")" \
    "same:3" "no CRL made, the last number kept"
echo garbage >"$D/last-crl-number"
should_fail 2 'does not hold a CRL number' "a damaged last-crl-number is refused" \
    p11ca crl --dir "$D"

# Read-only use by a user who cannot write the CA directory.
echo 3 >"$D/last-crl-number"
cp "$W/backup3.db" "$D/registry.db"
check "a write (CRL 4) as the owner" p11ca crl --dir "$D" --out "$W/crl4.pem"
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
    for _ in 1 2 3 4 5 6 7 8 9; do skip "read-only use needs root (runuser -u nobody)"; done
else
    chmod 755 "$TT" "$D" "$W"
    mkdir "$TT/nobody" && chown nobody "$TT/nobody"
    as_nobody() { runuser -u nobody -- "$top_builddir/src/p11ca" "$@"; }
    check "cert list as nobody" as_nobody cert list --dir "$D"
    assert_grep "$(echo "$S_ALICE" | tr A-F a-f)|$S_ALICE" "$TT/out" "... lists the certificates"
    check "cert show --pem as nobody" as_nobody cert show --dir "$D" --pem "$S_ALICE"
    check "audit verify as nobody" as_nobody audit verify --dir "$D"
    check "ca show as nobody" as_nobody ca show --dir "$D"
    check "export-chain as nobody" as_nobody export-chain --dir "$D" \
        --out "$TT/nobody/chain.pem" "$S_ALICE"
    check "ca list as nobody" as_nobody ca list --dir "$D"
    check "audit head as nobody" as_nobody audit head --dir "$D" \
        --out "$TT/nobody/head.der"
    should_fail 4 'readonly|read-only' "a change as nobody is refused by the database" \
        as_nobody cert revoke --dir "$D" "$(openssl x509 -in "$W/bob.pem" -noout -serial | cut -d= -f2)"
fi
done_testing
