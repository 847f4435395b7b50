#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# URIs without a token through the provider, on SoftHSM2 with the
# uninitialised slot it always shows: a key named by object= alone signs
# (checked with plain openssl and pkcs11-tool); storeutl of pkcs11: and
# pkcs11:?pin-source=FILE lists the objects of every initialised token,
# public ones without a PIN; one PIN is never tried on two tokens; a URI
# that matches several private keys where one key is wanted is refused,
# naming them.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 21

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
D=$TT/slots
mkdir -p "$D"
printf 'data to sign\n' >"$D/data"
# The second token's label is not a prefix of the first's (PITFALLS).
SECOND=p11ca-other

# --- One initialised token and SoftHSM2's uninitialised slot ----------------
pkcs11-tool --module "$SOFTHSM_MODULE" -L >"$D/slots" 2>&1
assert_grep 'token state: +uninitialized' "$D/slots" \
    "SoftHSM2 shows an uninitialised slot besides the test token (pkcs11-tool -L)"

keygen solo ec:P-256
check "openssl dgst -sign with pkcs11:object=solo;type=private (no token in the URI)" \
    openssl dgst $PROV -sha256 -sign "pkcs11:object=solo;type=private;$PINQ" \
    -out "$D/solo.sig" "$D/data"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --read-object \
    --type pubkey --label solo -o "$D/solo.pub.der" >/dev/null 2>&1
check "... and the signature verifies with plain openssl (key read by pkcs11-tool)" \
    openssl dgst -sha256 -verify "$D/solo.pub.der" -keyform DER \
    -signature "$D/solo.sig" "$D/data"
# As the issue wrote it: no PIN in the URI, the PIN from openssl.cnf.
check "the same with the PIN from openssl.cnf (p11ca-pin-source)" \
    env $OPENSSL_ENV OPENSSL_CONF="$TT/openssl.cnf" openssl dgst -sha256 -sign \
    'pkcs11:object=solo;type=private' $PROV -out "$D/solo2.sig" "$D/data"
check "... verifies too" openssl dgst -sha256 -verify "$D/solo.pub.der" \
    -keyform DER -signature "$D/solo2.sig" "$D/data"
p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=idkey" --id 01 \
    --type ec:P-256 >/dev/null
check "pkcs11:id=%01;type=private alone finds its key and signs" \
    openssl dgst $PROV -sha256 -sign "pkcs11:id=%01;type=private;$PINQ" \
    -out "$D/id.sig" "$D/data"

# --- A second token: storeutl lists both --------------------------------------
new_token "$SECOND"
p11ca --pin-source "$PINFILE" key gen --uri "pkcs11:token=$SECOND;object=other" \
    --type ec:P-256 >/dev/null
# A certificate on each token, for the listing.
for t in "$TOKEN:solo" "$SECOND:other"; do
    tok=${t%%:*} lab=${t#*:}
    openssl req $PROV -new -x509 -key "pkcs11:token=$tok;object=$lab;type=private;$PINQ" \
        -subj "/CN=$lab" -days 2 -out "$D/$lab.pem" 2>/dev/null
    p11ca --pin-source "$PINFILE" cert import "pkcs11:token=$tok" \
        "$D/$lab.pem" >/dev/null
done
# count TYPE FILE: how many objects of TYPE storeutl printed (Pkey: private).
count() { grep -c "^[0-9]*: $1\$" "$2"; }

# No terminal (setsid): the prompt of each token gets nothing.
env $OPENSSL_ENV setsid -w openssl storeutl $PROV 'pkcs11:' </dev/null \
    >"$D/all.out" 2>"$D/all.err"
rc=$?
assert_eq "$rc $(count 'Public key' "$D/all.out") $(count Certificate "$D/all.out")" \
    "0 3 2" "storeutl pkcs11: without a PIN: public keys and certificates of both tokens"
assert_eq "$(count Pkey "$D/all.out")" 0 "... and no private key (no PIN)"

# faulty LOG | faulty: the commands that follow go through the fault
# module (which only logs the calls here), or no longer.
faulty() {
    if [ $# -gt 0 ]; then
        export FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" FAULTY_PKCS11_LOG="$1"
        export P11CA_MODULE="$FAULTY"
    else
        export P11CA_MODULE="$SOFTHSM_MODULE"
    fi
}
faulty "$D/pin2.log"
env $OPENSSL_ENV setsid -w openssl storeutl $PROV "pkcs11:?pin-source=$PINFILE" \
    </dev/null >"$D/pin2.out" 2>"$D/pin2.err"
rc=$?
faulty
assert_eq "$rc $(count 'Public key' "$D/pin2.out") $(count Certificate "$D/pin2.out")" \
    "0 3 2" "storeutl pkcs11:?pin-source=FILE with two tokens: the public objects of both"
assert_eq "$(grep -c ' C_Login ' "$D/pin2.log")" 0 \
    "... and the one PIN was tried on neither token (no C_Login)"

openssl storeutl $PROV "pkcs11:token=$TOKEN?pin-source=$PINFILE" </dev/null \
    >"$D/one.out" 2>&1
assert_eq "$(count Pkey "$D/one.out") $(count 'Public key' "$D/one.out")" \
    "2 2" "storeutl of one token with its PIN source: its private keys too"
openssl storeutl $PROV -passin "file:$PINFILE" 'pkcs11:' </dev/null \
    >"$D/typed.out" 2>&1
assert_eq "$(count Pkey "$D/typed.out") $(count 'Public key' "$D/typed.out") $(count Certificate "$D/typed.out")" \
    "3 3 2" "storeutl pkcs11: with a PIN for each token's prompt: every object"

faulty "$D/load2.log"
should_fail 1 \
    "used on one token only, and 2 tokens match .*token \"($TOKEN|$SECOND)\".*token \"($TOKEN|$SECOND)\".*add token=" \
    "a key load with one PIN source and two tokens is refused, naming both" \
    openssl pkey $PROV -in "pkcs11:object=other;type=private;$PINQ" -pubout
assert_grep 'several tokens or keys match the URI' "$TT/err" \
    "... with the reason of an ambiguous URI, as the p11ca command classes it (not \"no matching token or object\")"
faulty
assert_eq "$(grep -c ' C_Login ' "$D/load2.log")" 0 "... without a C_Login"
check "naming the token loads it" \
    openssl pkey $PROV -in "pkcs11:token=$SECOND;object=other;type=private;$PINQ" \
    -pubout -out "$D/other.pub"

# --- Several private keys where one key is wanted ------------------------------
should_fail 1 \
    "2 private keys match .*one key is wanted: pkcs11:.*object=(solo|idkey);type=private, pkcs11:.*object=(solo|idkey);type=private" \
    "openssl pkey -in with a URI of two private keys: refused, naming both" \
    openssl pkey $PROV -in "$TOKURI;type=private;$PINQ" -pubout -out "$D/amb.pem"
assert_no_grep "$TEST_PIN" "$TT/err" "... the candidates' URIs hold no PIN"
if [ -s "$D/amb.pem" ]; then
    not_ok "... and nothing was written"
else
    ok "... and nothing was written"
fi
should_fail 1 '2 private keys match' "openssl dgst -sign with it: refused too" \
    openssl dgst $PROV -sha256 -sign "$TOKURI;type=private;$PINQ" \
    -out "$D/amb.sig" "$D/data"
openssl storeutl $PROV "$TOKURI;type=private;$PINQ" </dev/null >"$D/keys.out" 2>&1
assert_eq "$(count Pkey "$D/keys.out")" 2 \
    "storeutl of that URI (no key expected) lists both"

done_testing
