#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# What a renewal does to the old certificate, by the profile's supersede
# rule: revoked (superseded) at once by default, so that a relying party
# that checks the CRL refuses it; revoked by the first registry write after
# a grace period (here the next p11ca crl, on a clock moved by faketime);
# or kept.  And p11ca enroll checks the CA side (its key and PIN, the
# validity the profile and the CA allow) before it makes a key on a card.
set -u
. "$top_srcdir/tests/integration/enroll-setup.sh"
command -v p11tool >/dev/null || plan_skip "p11tool (gnutls-bin) is not installed"
FT=$(find /usr/lib -path '*/faketime/libfaketime.so.1' 2>/dev/null | head -n 1)
[ -n "$FT" ] || plan_skip "libfaketime is not installed"
GNUTLS_PIN=$(cat "$PINFILE")
export GNUTLS_PIN
plan 20

# A profile that allows more than the CA certificate covers (valid for
# any p11ca); the supersede rules follow below, before they are used.
cat >>"$CA/ca.cnf" <<'CNF'

[ profiles ]
long = profile_long

[ profile_long ]
key_usage     = digitalSignature
ext_key_usage = clientAuth
max_days      = 36500
CNF

# json FILE EXPR: a value of a JSON document (python3 expression on d).
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
show() { p11ca cert show --dir "$CA" --json "$1" >"$D/show.json" && json "$D/show.json" "$2"; }
serial_of_json() { json "$TT/out" 'd["serial"]'; }
nobj() { p11tool --login --list-all "pkcs11:token=$1" 2>/dev/null | grep -c 'type='; }
# later DAYS CMD...: CMD with the clock DAYS days ahead (libfaketime; the
# ASan runtime first in sanitizer builds).
later() {
    d=$1
    shift
    LD_PRELOAD="${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$FT" FAKETIME="+${d}d" "$@"
}
# pem SERIAL FILE: the certificate from the registry, as PEM.
pem() { p11ca cert show --dir "$CA" --pem "$1" | sed -n '/BEGIN CERT/,/END CERT/p' >"$2"; }
# verdict CRL CERT [ATTIME]: openssl's verdict on CERT with that CRL, at
# ATTIME (Unix seconds) or now.
verdict() {
    set -- "$1" "$2" "${3:-$(date +%s)}"
    openssl verify -crl_check -CAfile "$CA/ca.pem" -CRLfile "$1" -attime "$3" "$2" 2>&1 |
        grep -Eo 'certificate revoked|: OK' | head -n 1
}

# --- The CA side first ------------------------------------------------------------------
card card-x
printf 'not-the-pin' >"$D/wrong.pin"
chmod 600 "$D/wrong.pin"
should_fail 3 'PIN' "a CA PIN that the CA token refuses stops the enrollment" \
    enroll card-x --ca-pin-source "$D/wrong.pin" --profile client \
    --subject /CN=x-user --type ec:P-256
assert_eq "$(nobj card-x)" 0 "... before a key was made on the card"
should_fail 2 'would outlive the CA certificate' \
    "a validity the CA certificate does not cover stops the enrollment" \
    enroll card-x --profile long --days 30000 --subject /CN=x-user --type ec:P-256
assert_eq "$(nobj card-x)" 0 "... before a key was made on the card"

# --- Default: revoked at once ------------------------------------------------
card card-d
enroll card-d --profile client --subject /CN=d-user --type ec:P-256 --json >"$TT/out"
d1=$(serial_of_json)
check "renew (profile client: supersede = revoke, the default)" \
    enroll card-d --renew --label d-user --json
d2=$(serial_of_json)
assert_eq "$(show "$d1" 'd["status"], d["reason"]')" "revoked superseded" \
    "the old certificate is revoked, reason superseded"
check "a CRL" p11ca crl --dir "$CA" --out "$D/d.crl"
pem "$d1" "$D/d1.pem"
pem "$d2" "$D/d2.pem"
assert_eq "$(verdict "$D/d.crl" "$D/d1.pem") $(verdict "$D/d.crl" "$D/d2.pem")" \
    "certificate revoked : OK" "openssl -crl_check refuses the old certificate, takes the new"

cat >>"$CA/ca.cnf" <<'CNF'

[ profiles ]
graceful = profile_graceful
keeper   = profile_keeper

[ profile_graceful ]
key_usage     = digitalSignature
ext_key_usage = clientAuth
supersede     = grace:7d

[ profile_keeper ]
key_usage     = digitalSignature
ext_key_usage = clientAuth
supersede     = keep
CNF

# --- A grace period: revoked by a later write -------------------------------------
card card-g
enroll card-g --profile graceful --subject /CN=g-user --type ec:P-256 --json >"$TT/out"
g1=$(serial_of_json)
check "renew (supersede = grace:7d)" enroll card-g --renew --label g-user --json
assert_eq "$(show "$g1" 'd["status"], "revoke_after" in d')" "not-activated True" \
    "the old certificate is not-activated, its revocation scheduled"
p11ca audit --dir "$CA" >"$D/audit"
assert_grep "schedule-revoke +$g1" "$D/audit" "the schedule is in the audit trail"
check "a CRL the next day" later 1 p11ca crl --dir "$CA" --out "$D/g1.crl"
pem "$g1" "$D/g1.pem"
now=$(date +%s)
assert_eq "$(verdict "$D/g1.crl" "$D/g1.pem" $((now + 86400 + 60)))" ": OK" \
    "within the grace period it is still valid"
check "a CRL 8 days later" later 8 p11ca crl --dir "$CA" --out "$D/g8.crl"
assert_eq "$(show "$g1" 'd["status"], d["reason"]')" "revoked superseded" \
    "the CRL run revoked it, reason superseded"
assert_eq "$(verdict "$D/g8.crl" "$D/g1.pem" $((now + 8 * 86400 + 60)))" "certificate revoked" \
    "the CRL made then lists it"
p11ca audit --dir "$CA" --json >"$D/audit.json"
assert_eq "$(json "$D/audit.json" "[(a['action'], a['actor']) for a in d if a.get('serial') == '$g1'][-1]")" \
    "('revoke', 'registry:scheduled')" "the revocation is audited, by registry:scheduled"
check "audit verify: intact" p11ca audit verify --dir "$CA"

# --- Kept ----------------------------------------------------------------------------
card card-k
enroll card-k --profile keeper --subject /CN=k-user --type ec:P-256 --json >"$TT/out"
k1=$(serial_of_json)
check "renew (supersede = keep)" enroll card-k --renew --label k-user --json
later 30 p11ca crl --dir "$CA" --out "$D/k.crl" >/dev/null 2>&1
assert_eq "$(show "$k1" 'd["status"]')" not-activated "the old certificate stays not-activated, unrevoked"

done_testing
