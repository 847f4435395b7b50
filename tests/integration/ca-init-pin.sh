#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A PIN given in the key URI of `p11ca ca init` (pin-value= or pin-source=)
# logs in for that command and is stored and shown nowhere: not in ca.cnf,
# its output, `ca show`, the audit trail or the registry.  A pin-source= of
# the URI becomes ca.cnf's pin_source, so later commands log in with it.
set -u
. "$top_srcdir/tests/lib/prov.sh"
command -v sqlite3 >/dev/null || plan_skip "sqlite3 is not installed"
plan 23
D=$TT/pin
mkdir -p "$D"
keygen cak ec:P-256
keygen cak2 ec:P-256
keygen ocspk ec:P-256

# no_pin WHAT: neither the PIN nor a PIN attribute in the files of $D/ca.
no_pin() {
    found=""
    for f in "$D/init.out" "$D/ca/ca.cnf" "$D/show.out" "$D/audit.out" \
        "$D/db.txt"; do
        # A missing file is a failure, not a file without the PIN.
        if [ ! -s "$f" ]; then
            found="$found ${f##*/}(missing)"
        elif grep -q -e "$TEST_PIN" -e "pin-value" -e "pin-source" "$f"; then
            found="$found ${f##*/}"
        fi
    done
    assert_eq "${found:-none}" none "$1"
}

check "ca init with pin-value= in the key URI" \
    p11ca ca init --dir "$D/ca" --subject "/CN=Token CA 1" \
    --key-uri "$TOKURI;object=cak;type=private?pin-value=$TEST_PIN"
cp "$TT/out" "$D/init.out"
p11ca ca show --dir "$D/ca" >"$D/show.out" 2>&1
p11ca audit list --dir "$D/ca" >"$D/audit.out" 2>&1
sqlite3 "$D/ca/registry.db" .dump >"$D/db.txt"
no_pin "pin-value=: the PIN is in no output, file or record"
assert_eq "$(sed -n 's/^key *= *//p' "$D/ca/ca.cnf")" \
    "$TOKURI;object=cak;type=private" "ca.cnf's key is the URI without it"
if grep -q '^pin_source' "$D/ca/ca.cnf"; then
    not_ok "no pin_source recorded for a pin-value="
else
    ok "no pin_source recorded for a pin-value="
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/leaf.key" -subj /CN=leaf.test -out "$D/leaf.csr" 2>/dev/null
check "a later command logs in with --pin-source" \
    p11ca --pin-source "$PINFILE" issue --dir "$D/ca" --profile server \
    --san DNS:leaf.test --out "$D/leaf.pem" "$D/leaf.csr"
check "the certificate verifies" \
    openssl verify -CAfile "$D/ca/ca.pem" "$D/leaf.pem"

# pin-source=: it becomes ca.cnf's pin_source (absolute), not part of key.
rm -rf "${D:?}/ca"
check "ca init with pin-source= in the key URI" \
    p11ca ca init --dir "$D/ca" --subject "/CN=Token CA 2" \
    --key-uri "$TOKURI;object=cak2;type=private?pin-source=$PINFILE"
cp "$TT/out" "$D/init.out"
p11ca ca show --dir "$D/ca" >"$D/show.out" 2>&1
p11ca audit list --dir "$D/ca" >"$D/audit.out" 2>&1
sqlite3 "$D/ca/registry.db" .dump >"$D/db.txt"
assert_eq "$(sed -n 's/^pin_source *= *//p' "$D/ca/ca.cnf")" "$PINFILE" \
    "ca.cnf's pin_source is the URI's pin-source"
assert_eq "$(sed -n 's/^key *= *//p' "$D/ca/ca.cnf")" \
    "$TOKURI;object=cak2;type=private" "ca.cnf's key has no pin-source="
check "a later command logs in through ca.cnf's pin_source" \
    p11ca issue --dir "$D/ca" --profile server --san DNS:leaf.test \
    --out "$D/leaf2.pem" "$D/leaf.csr"
check "that certificate verifies" \
    openssl verify -CAfile "$D/ca/ca.pem" "$D/leaf2.pem"
# The trail names the key: without the PIN source (the file is not secret,
# but a URI is shown without its PIN attributes everywhere).
if grep -q "object=cak2" "$D/audit.out"; then
    ok "the audit trail names the key"
else
    not_ok "the audit trail names the key"
fi
no_pin "pin-source=: no PIN attribute in any output, file or record"

# The OCSP signer's key: the same rule for [ ocsp ] signer_key.
check "ocsp signer init with pin-value= in the key URI" \
    p11ca ocsp signer init --dir "$D/ca" \
    --key-uri "$TOKURI;object=ocspk;type=private?pin-value=$TEST_PIN"
assert_eq "$(sed -n 's/^signer_key *= *//p' "$D/ca/ca.cnf")" \
    "$TOKURI;object=ocspk;type=private" "signer_key is the URI without it"
assert_no_grep "$TEST_PIN" "$D/ca/ca.cnf" "no PIN in ca.cnf after it"

# --pin-source wins over the URI's pin-source= for ca.cnf.
printf '%s' "$TEST_PIN" >"$D/other.pin"
rm -rf "${D:?}/ca"
check "ca init with both --pin-source and pin-source=" \
    p11ca --pin-source "$D/other.pin" ca init --dir "$D/ca" \
    --subject /CN=both --key-uri "$TOKURI;object=cak2;type=private?pin-source=$PINFILE"
assert_eq "$(sed -n 's/^pin_source *= *//p' "$D/ca/ca.cnf")" "$D/other.pin" \
    "ca.cnf records --pin-source"
should_fail 2 'empty attribute' "a URI that does not parse is refused" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/bad" --subject /CN=bad \
    --key-uri "$TOKURI;;object=cak2"
if [ -e "$D/bad" ]; then
    not_ok "no directory made for it"
else
    ok "no directory made for it"
fi
# A refused PIN: the message names the key without the PIN (last: a
# refused PIN value is remembered for this token).
rm -rf "${D:?}/ca"
WRONG=wrong-4711-pin
should_fail 3 'CKR_PIN_INCORRECT' \
    "a wrong pin-value= is refused" \
    p11ca ca init --dir "$D/ca" --subject /CN=wrong \
    --key-uri "$TOKURI;object=cak;type=private?pin-value=$WRONG"
assert_no_grep "$WRONG" "$TT/err" "the wrong PIN is not in the message"
assert_no_grep "pin-value" "$TT/err" "nor the attribute"
done_testing
