#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The token fails under the OCSP responder (tests/faulty-pkcs11): C_Sign
# answering CKR_DEVICE_REMOVED past the provider's own retry, and the token
# away for a while (FAULTY_PKCS11_VANISH, counted in calls, no token wait):
# the answer is tryLater (exit 3 from p11ca ocsp respond), never a crash,
# and the next signature works again, in a new process and in the same
# one. Responses already in the cache are still served while the token is
# away, but a status change is never hidden by them.
# shellcheck shell=sh disable=SC2086
set -u
. "$top_srcdir/tests/integration/ocsp-setup.sh"
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
[ -f "$FAULTY" ] || plan_skip "the fault module is not built"
plan 17

# faulty VAR=VALUE... CMD...: CMD on the CA token through the fault
# module, with those fault variables (calls logged to $D/calls.log).
faulty() {
    rm -f "$D/calls.log"
    env P11CA_MODULE="$FAULTY" FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" \
        FAULTY_PKCS11_LOG="$D/calls.log" "$@"
}
# drive VAR=VALUE... -- STEP...: the responder in one process
# (tests/progs/ocsp-drive) through the fault module; its lines in
# $TT/drive.
drive() {
    vars=
    while [ "$1" != -- ]; do
        vars="$vars $1"
        shift
    done
    shift
    faulty $vars "$top_builddir/tests/progs/ocsp-drive" "$CA" "$@" \
        >"$TT/drive" 2>"$TT/err"
}
line() { sed -n "${1}p" "$TT/drive"; }

if ! { device dev1 && device dev2; }; then
    echo "Bail out! cannot issue the test devices"
    exit 1
fi
S1=$(serial_of "$D/dev1.pem")
request "$D/r1.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" -no_nonce
request "$D/r2n.der" -issuer "$CA/ca.pem" -cert "$D/dev2.pem" -nonce

# --- p11ca ocsp respond ----------------------------------------------------------
faulty FAULTY_PKCS11_FAULTS=C_Sign:1-2:CKR_DEVICE_REMOVED \
    "$top_builddir/src/p11ca" ocsp respond --dir "$CA" --reqin "$D/r1.der" \
    --respout "$D/t.resp" >"$TT/out" 2>"$TT/err"
assert_eq "$?" 3 "C_Sign fails twice (CKR_DEVICE_REMOVED, the retry too): exit 3"
assert_grep 'answered tryLater: signing the OCSP response failed' "$TT/err" \
    "... answered tryLater, saying why"
assert_no_grep 'Segmentation|AddressSanitizer|runtime error' "$TT/err" "... no crash"
assert_eq "$(resp_error "$D/t.resp")" "trylater (3)" "openssl ocsp reads trylater (3)"
assert_grep 'C_Sign CKR_DEVICE_REMOVED \[injected\]' "$D/calls.log" \
    "... the token did fail the signature"
faulty FAULTY_PKCS11_FAULTS= "$top_builddir/src/p11ca" ocsp respond \
    --dir "$CA" --reqin "$D/r1.der" --respout "$D/ok.resp" >"$TT/out" 2>"$TT/err"
assert_eq "$?" 0 "the next process signs again"
assert_status "$D/ok.resp" "$D/dev1.pem" good "... good"

# --- In one process: a failure, then the next signature --------------------------------
drive FAULTY_PKCS11_FAULTS=C_Sign:2-3:CKR_DEVICE_REMOVED -- \
    ask "$D/r2n.der" "$D/a.resp" ask "$D/r2n.der" "$D/b.resp" \
    ask "$D/r2n.der" "$D/c.resp"
assert_eq "$(line 1)" "miss successful" "one process: the first signature works"
assert_eq "$(line 2 | cut -d' ' -f1-4)" "miss tryLater why: signing" \
    "... the second fails on the token (twice): tryLater"
assert_eq "$(line 3)" "miss successful" "... the third works again: recovered"
nonce_verdict "$D/r2n.der" "$D/c.resp"
assert_grep '^Response verify OK' "$TT/verdict" "... and verifies, nonce and all"

# The token away for 3 calls at the second signature, with no token wait.
drive P11CA_TOKEN_WAIT=0 FAULTY_PKCS11_VANISH=C_Sign:2:3calls -- \
    ask "$D/r2n.der" "$D/a.resp" ask "$D/r2n.der" "$D/b.resp" \
    ask "$D/r2n.der" "$D/c.resp" ask "$D/r2n.der" "$D/d.resp"
assert_eq "$(line 1) / $(line 2 | cut -d' ' -f1-2) / $(line 3 | cut -d' ' -f1-2) / $(line 4)" \
    "miss successful / miss tryLater / miss tryLater / miss successful" \
    "the token away (vanish for 3 calls): tryLater while away, then signed again"
assert_grep 'vanish-end' "$D/calls.log" "... the token came back"

# --- The cache while the token is away --------------------------------------------------
drive FAULTY_PKCS11_FAULTS=C_Sign:2+:CKR_DEVICE_REMOVED -- \
    ask "$D/r1.der" "$D/a.resp" ask "$D/r1.der" "$D/b.resp" \
    ask "$D/r2n.der" "$D/c.resp" \
    run "$top_builddir/src/p11ca cert revoke --dir $CA $S1 >/dev/null 2>&1" \
    refresh ask "$D/r1.der" "$D/d.resp"
assert_eq "$(line 1) / $(line 2)" "miss successful stored / hit successful" \
    "every signature after the first fails: the cached response is still served"
assert_eq "$(line 3 | cut -d' ' -f1-2)" "miss tryLater" "... a nonce request gets tryLater"
assert_eq "$(line 5)" "refresh changes=1 resigned=0 failed=1 rc=-3" \
    "a revocation meanwhile: the refresh cannot sign it (token error)"
assert_eq "$(line 6 | cut -d' ' -f1-2)" "miss tryLater" \
    "... the stale good response is gone: tryLater, never good"
done_testing
