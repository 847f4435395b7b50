#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# Key files that name a token key: pkcs11-provider's "PKCS#11 PROVIDER URI"
# PEM files (SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0",
# UTF8String uri }), made here by stock openssl (asn1parse -genconf), load
# as the key they name; module-path= in them obeys the rules of URIs; and
# p11ca writes such files itself with p11ca-key-file = uri-pem.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 15

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
D=$TT/urifile
mkdir -p "$D"
keygen filekey ec:P-256
keygen rsafile rsa:2048

# uri_pem OUT DESCRIPTION URI: a URI file made by stock openssl alone.
uri_pem() {
    printf 'asn1=SEQUENCE:seq\n[seq]\ndesc=VISIBLESTRING:%s\nuri=UTF8:%s\n' \
        "$(printf '%s' "$2" | sed 's/#/\\#/g')" "$3" >"$D/gen.cnf"
    openssl asn1parse -genconf "$D/gen.cnf" -out "$D/gen.der" >/dev/null
    {
        echo "-----BEGIN PKCS#11 PROVIDER URI-----"
        openssl base64 -in "$D/gen.der"
        echo "-----END PKCS#11 PROVIDER URI-----"
    } >"$1"
}
DESC="PKCS#11 Provider URI v1.0"
uri_pem "$D/ec.pem" "$DESC" "$TOKURI;object=filekey;type=private"
uri_pem "$D/rsa.pem" "$DESC" "$TOKURI;object=rsafile;type=private"
uri_pem "$D/ec.pem" "$DESC" "$TOKURI;object=filekey;type=private"
cp "$D/gen.der" "$D/ec.der"
export P11CA_PIN_SOURCE="$PINFILE"

# The file is the key: its public key is the token's.
openssl pkey $PROV -in "$D/ec.pem" -pubout -out "$D/ec-file.pub"
openssl pkey $PROV -pubin -in "$(pubkuri filekey)" -pubout -out "$D/ec-token.pub"
check "pkey -in URI file: the public key of the key it names" cmp "$D/ec-file.pub" "$D/ec-token.pub"
# The DER form, read by the decoder from the file itself (a file BIO,
# not a memory one: the input is read, not taken from memory).
openssl pkey $PROV -inform DER -in "$D/ec.der" -pubout -out "$D/ec-der.pub" \
    2>"$D/ec-der.err"
check "pkey -inform DER -in URI file: the same public key" \
    cmp "$D/ec-der.pub" "$D/ec-token.pub"
printf 'signed through a key file\n' >"$D/data"
openssl dgst $PROV -sha256 -sign "$D/rsa.pem" -out "$D/sig" "$D/data"
openssl pkey $PROV -pubin -in "$(pubkuri rsafile)" -pubout -out "$D/rsa.pub"
check "dgst -sign with an RSA URI file; plain openssl verifies" \
    openssl dgst -sha256 -verify "$D/rsa.pub" -signature "$D/sig" "$D/data"
openssl req $PROV -new -key "$D/ec.pem" -subj "/CN=uri-file" -out "$D/ec.csr"
openssl req -in "$D/ec.csr" -verify -noout >"$D/csr.out" 2>&1
assert_grep 'verify OK' "$D/csr.out" "req -key URI file: a CSR that plain openssl verifies"
unset P11CA_PIN_SOURCE
check "the PIN through the passphrase callback (-passin), as for a URI" \
    openssl pkey $PROV -in "$D/ec.pem" -passin "file:$PINFILE" -pubout -out "$D/passin.pub"
export P11CA_PIN_SOURCE="$PINFILE"

# Files that are not, or do not name, a key of the token.
uri_pem "$D/baddesc.pem" "PKCS#11 Provider URI v9" "$TOKURI;object=filekey;type=private"
should_fail 1 'PKCS#11 PROVIDER URI file that is not SEQUENCE \{ VisibleString "PKCS#11 Provider URI v1.0", UTF8String URI \}' \
    "another description: refused, with what such a file holds" \
    openssl pkey $PROV -in "$D/baddesc.pem" -pubout
uri_pem "$D/nokey.pem" "$DESC" "$TOKURI;object=nosuchkey;type=private"
P11CA_TOKEN_WAIT=0 should_fail 1 'no private key matches pkcs11:token=p11ca-test;object=nosuchkey;type=private' \
    "a file naming no key on the token: the URI in the message" \
    openssl pkey $PROV -in "$D/nokey.pem" -pubout
uri_pem "$D/https.pem" "$DESC" "https://example.invalid/key"
should_fail 1 'names no pkcs11: URI' "a file naming something else than a pkcs11: URI is refused" \
    openssl pkey $PROV -in "$D/https.pem" -pubout

# module-path= in a file obeys the same rule as in a URI: no code loaded.
uri_pem "$D/module.pem" "$DESC" "$TOKURI;object=filekey;type=private?module-path=$FAULTY"
rm -f "$D/faulty.log"
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_LOG=$D/faulty.log \
    openssl pkey $PROV -in "$D/module.pem" -pubout >"$D/mod.out" 2>"$D/mod.err"
assert_grep 'a pkcs11: URI may not load a PKCS#11 module' "$D/mod.err" \
    "module-path= in a key file is refused like in a URI"
if [ ! -e "$D/faulty.log" ]; then
    ok "... and the module it names was not loaded (no call log)"
else
    not_ok "... and the module it names was not loaded (its call log exists)"
fi
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_LOG=$D/faulty.log P11CA_MODULE=$FAULTY \
    openssl pkey $PROV -in "$D/module.pem" -pubout -out "$D/mod.pub" 2>"$D/mod2.err"
check "... while a file naming the loaded module's path loads the key" cmp "$D/mod.pub" "$D/ec-token.pub"

# p11ca writes such files: p11ca-key-file = uri-pem.
P11CA_KEY_FILE=uri-pem openssl genpkey $PROV -propquery provider=p11ca -algorithm EC \
    -pkeyopt "p11ca-uri:$TOKURI;object=written;$PINQ" -out "$D/written.pem"
openssl asn1parse -in "$D/written.pem" >"$D/written.asn1" 2>&1
if sed -n 2p "$D/written.asn1" | grep -q 'VISIBLESTRING *:PKCS#11 Provider URI v1.0' &&
    sed -n 3p "$D/written.asn1" | grep -q 'UTF8STRING *:pkcs11:.*object=written;type=private$'; then
    ok "p11ca-key-file = uri-pem: genpkey -out writes a PKCS#11 PROVIDER URI file (stock asn1parse reads it)"
else
    not_ok "p11ca-key-file = uri-pem: genpkey -out writes a PKCS#11 PROVIDER URI file"
    diag "$(cat "$D/written.asn1")"
fi
assert_no_grep "$TEST_PIN|pin-value|pin-source" "$D/written.asn1" "... without a PIN or PIN source"
openssl pkey $PROV -in "$D/written.pem" -pubout -out "$D/written.pub"
openssl pkey $PROV -pubin -in "$(pubkuri written)" -pubout -out "$D/written-token.pub"
check "... and it loads the key again" cmp "$D/written.pub" "$D/written-token.pub"
P11CA_KEY_FILE=pem should_fail 1 'p11ca-key-file = pem: use uri or uri-pem' \
    "p11ca-key-file = pem is refused with its name" openssl pkey $PROV -in "$(privuri written)" -pubout
