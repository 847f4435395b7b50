#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV and $GEN are option lists, split on purpose
# openssl genpkey on the token through the provider's key management: the
# key usage (the private key gets only the CKA_SIGN/CKA_DECRYPT/CKA_DERIVE
# asked for), label, id, token or session object.  The objects are read
# with pkcs11-tool; what the keys can do is tried with openssl.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 15

D=$TT/gen
mkdir -p "$D"
GEN="$PROV -propquery provider=p11ca"
objects() { # objects FILE: the token's objects as pkcs11-tool lists them
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --login \
        --pin "$(cat "$PINFILE")" --list-objects >"$1" 2>&1
}
# usage_of FILE CLASS LABEL: the "Usage:" line of that object
usage_of() {
    awk -v c="$2" -v l="$3" '
        /Object;/ { cls = ($0 ~ "^" c) ? 1 : 0; lab = "" }
        /label:/ { lab = $2 }
        /Usage:/ && cls && lab == l { sub(/^ *Usage: */, ""); print; exit }' "$1"
}

# RSA for signing only, with a label and an id.
openssl genpkey $GEN -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -pkeyopt "p11ca-uri:$TOKURI;$PINQ" -pkeyopt p11ca-label:signer \
    -pkeyopt p11ca-id:a1b2c3 -pkeyopt p11ca-key-usage:sign -out "$D/signer.uri"
assert_grep '^pkcs11:.*id=%A1%B2%C3;object=signer;type=private' "$D/signer.uri" \
    "genpkey writes the key's URI, with the id and label asked for"
objects "$D/objs"
assert_eq "$(usage_of "$D/objs" Private signer)" "sign" "p11ca-key-usage:sign: the private key may sign, and nothing else (pkcs11-tool)"
assert_eq "$(usage_of "$D/objs" Public signer)" "verify" "... its public key may verify only"
if awk '/label: *signer$/ { f = 1 } f && /ID:/ { print; exit }' "$D/objs" | grep -q 'a1b2c3'; then
    ok "... CKA_ID a1b2c3 (pkcs11-tool)"
else
    not_ok "... CKA_ID a1b2c3 (pkcs11-tool)"
fi
printf 'to be signed\n' >"$D/data"
openssl pkey $PROV -in "$(privuri signer)" -pubout -out "$D/signer.pub"
openssl dgst $PROV -sha256 -sign "$(cat "$D/signer.uri");$PINQ" -out "$D/sig" "$D/data"
check "it signs; plain openssl verifies" \
    openssl dgst -sha256 -verify "$D/signer.pub" -signature "$D/sig" "$D/data"
openssl pkeyutl -encrypt -pubin -inkey "$D/signer.pub" -pkeyopt rsa_padding_mode:oaep \
    -in "$D/data" -out "$D/ct"
should_fail 1 'CKR_KEY_FUNCTION_NOT_PERMITTED' "... and the token refuses to decrypt with it" \
    openssl pkeyutl $PROV -decrypt -inkey "$(privuri signer)" -pkeyopt rsa_padding_mode:oaep \
    -in "$D/ct" -out "$D/pt"

# RSA for decryption only.
openssl genpkey $GEN -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -pkeyopt "p11ca-uri:$TOKURI;object=decrypter;$PINQ" -pkeyopt p11ca-key-usage:decrypt \
    -out "$D/dec.uri"
objects "$D/objs"
assert_eq "$(usage_of "$D/objs" Private decrypter)" "decrypt" "p11ca-key-usage:decrypt: the private key may decrypt only"
openssl pkey $PROV -in "$(privuri decrypter)" -pubout -out "$D/dec.pub"
openssl pkeyutl -encrypt -pubin -inkey "$D/dec.pub" -pkeyopt rsa_padding_mode:oaep \
    -in "$D/data" -out "$D/ct2"
openssl pkeyutl $PROV -decrypt -inkey "$(privuri decrypter)" -pkeyopt rsa_padding_mode:oaep \
    -in "$D/ct2" -out "$D/pt2"
check "... it decrypts what plain openssl encrypted" cmp "$D/data" "$D/pt2"
should_fail 1 'CKR_KEY_FUNCTION_NOT_PERMITTED' "... and the token refuses to sign with it" \
    openssl dgst $PROV -sha256 -sign "$(privuri decrypter)" -out "$D/sig2" "$D/data"

# EC for key agreement only; the default uses of a type.
openssl genpkey $GEN -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt "p11ca-uri:$TOKURI;object=agree;$PINQ" -pkeyopt p11ca-key-usage:derive \
    -out "$D/agree.uri"
openssl genpkey $GEN -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -pkeyopt "p11ca-uri:$TOKURI;object=both;$PINQ" -out "$D/both.uri"
objects "$D/objs"
assert_eq "$(usage_of "$D/objs" Private agree)" "derive" "p11ca-key-usage:derive on EC: the private key may derive only"
assert_eq "$(usage_of "$D/objs" Private both)" "decrypt, sign" "without p11ca-key-usage an RSA key may sign and decrypt"

# Refusals.
should_fail 1 'key usage decrypt is not for a ec:P-256 key \(its uses: sign, derive\)' \
    "decrypt on an EC key is refused, with the uses it can have" \
    openssl genpkey $GEN -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt "p11ca-uri:$TOKURI;object=bad;$PINQ" -pkeyopt p11ca-key-usage:decrypt
should_fail 1 'unknown key usage "encrypt": use sign, decrypt or derive' \
    "an unknown key usage is refused" \
    openssl genpkey $GEN -algorithm EC -pkeyopt "p11ca-uri:$TOKURI;object=bad;$PINQ" \
    -pkeyopt p11ca-key-usage:sign,encrypt
should_fail 1 'p11ca-key-usage is for keys made on a token' \
    "a key usage without a token is refused (genpkey would make a software key)" \
    openssl genpkey $GEN -algorithm EC -pkeyopt p11ca-key-usage:sign

# A session object: gone with the process.
openssl genpkey $GEN -algorithm EC -pkeyopt "p11ca-uri:$TOKURI;object=eph;$PINQ" \
    -pkeyopt p11ca-ephemeral:1 -out "$D/eph.uri" 2>"$D/eph.err"
objects "$D/objs"
if [ -s "$D/eph.uri" ] && ! grep -q 'label: *eph$' "$D/objs"; then
    ok "p11ca-ephemeral:1 makes a session key: not on the token after genpkey"
else
    not_ok "p11ca-ephemeral:1 makes a session key: not on the token after genpkey"
    diag "$(cat "$D/eph.err")"
fi
