#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The p11ca command under valgrind memcheck: no errors, no leaks, for every
# command that touches a token, on success and on failure paths.
set -u
. "$top_srcdir/tests/lib/token.sh"
[ -n "${VALGRIND:-}" ] || plan_skip "valgrind not available (or sanitizer build)"
plan 10
P11CA_VALGRIND=1
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$TT/ca.key" 2>/dev/null

check "valgrind: token list" p11ca token list
check "valgrind: key gen ec" p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=v1" --type ec:P-256
check "valgrind: key gen rsa" p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=v2" --type rsa:2048
check "valgrind: key list" p11ca --pin-source "$PINFILE" key list --json
check "valgrind: key pubout" p11ca key pubout --out "$TT/v1.pub" "$TOKURI;object=v1"
openssl x509 -new -subj /CN=v1 -key "$TT/ca.key" -force_pubkey "$TT/v1.pub" -out "$TT/v1.crt" 2>/dev/null
check "valgrind: cert import" p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/v1.crt"
check "valgrind: cert list" p11ca cert list --json "$TOKURI"
printf 'bad-pin-x' >"$TT/bad.pin"; chmod 600 "$TT/bad.pin"
should_fail 3 'CKR_PIN_INCORRECT' "valgrind: wrong PIN path" p11ca --pin-source "$TT/bad.pin" key list "$TOKURI"
should_fail 2 'bad URI' "valgrind: bad URI path" p11ca key list "pkcs11:tokn=1"
should_fail 2 'exists' "valgrind: refused key gen path" p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=v1" --type ec:P-256
done_testing
