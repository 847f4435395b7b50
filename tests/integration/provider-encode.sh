#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The provider's encoders with token keys: public keys as SubjectPublicKeyInfo
# (PEM, DER, named EC curves), text that describes the token key and shows
# no private material, private-key output that is the key's URI (PEM) or a
# clear refusal (DER, encrypted, traditional, PKCS#8, PKCS#12).
# With P11CA_VALGRIND=1 (and VALGRIND set) every openssl runs under memcheck.
# $PROV (from prov.sh) is two options: it is split on purpose.
# shellcheck disable=SC2086,SC2153
set -u
: "${top_srcdir:=.}"
# shellcheck source=/dev/null
. "$top_srcdir/tests/lib/prov.sh"

# openssl, under valgrind when asked (leaks from third-party code are
# suppressed; ours are errors: exit 99).
ossl() {
    if [ "${P11CA_VALGRIND:-0}" = 1 ] && [ -n "${VALGRIND:-}" ]; then
        "$VALGRIND" -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect \
            --suppressions="$top_srcdir/tests/valgrind.supp" \
            openssl "$@"
    else
        openssl "$@"
    fi
}

# assert_named_curve OID-NAME NIST-NAME textfile label: the public key names
# its curve; explicit parameters would print "Field Type:" and no OID.
assert_named_curve() {
    if grep -q "^ASN1 OID: $1\$" "$3" && grep -q "^NIST CURVE: $2\$" "$3" \
        && ! grep -q 'Field Type' "$3"; then
        ok "$4: the public key names its curve ($1), no explicit parameters"
    else
        not_ok "$4: the public key names its curve ($1), no explicit parameters"
        diag "$(grep -E 'OID|CURVE|Field' "$3")"
    fi
}

# label:type:expected "type:" line of the text output
KEYS="r2048:rsa:2048:RSA_(2048_bits)
p256:ec:P-256:EC_P-256_(256_bits)
p384:ec:P-384:EC_P-384_(384_bits)
ed:ed25519:Ed25519_(256_bits)"

PER_KEY=21
plan $((4 * PER_KEY + 2 + 18))

for spec in $KEYS; do
    l=${spec%%:*}
    rest=${spec#*:}
    type=${rest%:*}
    ttext=$(echo "${rest##*:}" | tr '_' ' ')
    tre=$(echo "$ttext" | sed 's/[()]/\\&/g')
    if ! keygen "$l" "$type"; then
        echo "Bail out! cannot generate $type key $l"
        exit 1
    fi
    P=$TT/$l
    PRIV=$(privuri "$l")

    # --- SubjectPublicKeyInfo ---------------------------------------------
    check "$l: pkey -pubout from the private key" \
        ossl pkey $PROV -in "$PRIV" -pubout -out "$P.pub.pem"
    assert_grep '^-----BEGIN PUBLIC KEY-----$' "$P.pub.pem" \
        "$l: -pubout gives a SubjectPublicKeyInfo (BEGIN PUBLIC KEY)"
    ossl pkey $PROV -pubin -in "$(pubkuri "$l")" -pubout \
        >"$P.pubobj.pem" 2>"$TT/err"
    assert_eq "$(cat "$P.pub.pem")" "$(cat "$P.pubobj.pem")" \
        "$l: same as the token's public key object"
    p11ca key pubout "$TOKURI;object=$l" >"$P.cli.pem" 2>"$TT/err"
    assert_eq "$(cat "$P.pub.pem")" "$(cat "$P.cli.pem")" \
        "$l: same as p11ca key pubout"
    check "$l: pkey -pubout -outform DER" \
        ossl pkey $PROV -in "$PRIV" -pubout -outform DER -out "$P.pub.der"
    openssl pkey -pubin -inform DER -in "$P.pub.der" -pubout \
        >"$P.der2pem" 2>"$TT/err"
    assert_eq "$(cat "$P.der2pem")" "$(cat "$P.pub.pem")" \
        "$l: the DER parses with plain openssl and is the same key"
    if [ "$type" = ec:P-256 ]; then
        openssl pkey -pubin -in "$P.pub.pem" -text -noout >"$P.pubtext"
        assert_named_curve prime256v1 P-256 "$P.pubtext" "$l"
    elif [ "$type" = ec:P-384 ]; then
        openssl pkey -pubin -in "$P.pub.pem" -text -noout >"$P.pubtext"
        assert_named_curve secp384r1 P-384 "$P.pubtext" "$l"
    fi

    # --- text ---------------------------------------------------------------
    check "$l: pkey -text -noout" \
        ossl pkey $PROV -in "$PRIV" -text -noout
    cp "$TT/out" "$P.text"
    assert_grep "^  URI: +pkcs11:.*object=$l;type=private\$" "$P.text" \
        "$l: text shows the URI"
    assert_grep "^  token: +\"$TOKEN\" \\(serial [0-9a-f]+, model SoftHSM v2\\)\$" \
        "$P.text" "$l: text shows the token"
    assert_grep "^  label: +$l\$" "$P.text" "$l: text shows the label"
    assert_grep '^  id: +[0-9a-f]{40}$' "$P.text" "$l: text shows the id"
    assert_grep "^  type: +$tre\$" "$P.text" "$l: text shows the type ($ttext)"
    assert_grep '^  flags: +sensitive, never extractable$' "$P.text" \
        "$l: text shows the flags"
    assert_no_grep "priv:|privateExponent|prime1|exponent1|coefficient|$TEST_PIN|pin-" \
        "$P.text" "$l: text shows no private material and no PIN"

    # --- private key: the URI, or a refusal -----------------------------
    check "$l: pkey -out writes the private key (as its URI)" \
        ossl pkey $PROV -in "$PRIV" -out "$P.uri"
    if [ "$(wc -l <"$P.uri")" -eq 1 ] \
        && grep -Eq "^pkcs11:.*token=$TOKEN;.*id=.*;object=$l;type=private\$" "$P.uri"; then
        ok "$l: the key file is one line: the key's URI"
    else
        not_ok "$l: the key file is one line: the key's URI"
        diag "$(head -n 5 "$P.uri")"
    fi
    assert_no_grep "$TEST_PIN|pin-value|pin-source|PRIVATE KEY" "$P.uri" \
        "$l: the URI has no PIN and no key material"
    ossl pkey $PROV -in "$(cat "$P.uri");$PINQ" -pubout >"$P.again.pem" \
        2>"$TT/err"
    assert_eq "$(cat "$P.again.pem")" "$(cat "$P.pub.pem")" \
        "$l: the written URI loads the same key again"
    should_fail 1 'stays on the token' "$l: -outform DER private key fails clearly" \
        ossl pkey $PROV -in "$PRIV" -outform DER -out "$P.der"
    should_fail 1 'stays on the token|cannot be exported' "$l: -traditional fails clearly" \
        ossl pkey $PROV -in "$PRIV" -traditional
    should_fail 1 'stays on the token.*encrypted' \
        "$l: an encrypted key file fails clearly" \
        ossl pkey $PROV -in "$PRIV" -aes256 -passout pass:unused-1234
done

# --- other tools ------------------------------------------------------------
PRIV=$(privuri p256)
# OpenSSL 3.0's pkcs8 opens -in as a file before loading the key, so a URI
# never reaches the provider there; PKCS#8 through EVP_PKEY2PKCS8 is
# exercised by pkcs12 -export below.
should_fail 1 "Can't open|stays on the token" \
    "pkcs8 -topk8 -nocrypt with a token key fails clearly" \
    ossl pkcs8 -topk8 -nocrypt $PROV -in "$PRIV"
should_fail 1 'stays on the token' \
    "pkcs12 -export (PKCS#8 of the key) fails clearly" \
    ossl pkcs12 -export -nocerts $PROV -inkey "$PRIV" \
    -passout pass:unused-1234 -out "$TT/k.p12"
should_fail 1 'stays on the token' "rsa -traditional fails clearly" \
    ossl rsa $PROV -in "$(privuri r2048)" -traditional
should_fail 1 'stays on the token' "ec (traditional EC key) fails clearly" \
    ossl ec $PROV -in "$PRIV"
check "ec -pubout with a token key" ossl ec $PROV -in "$PRIV" -pubout
check "rsa writes the URI (PKCS#8 PEM)" \
    ossl rsa $PROV -in "$(privuri r2048)" -out "$TT/rsa.uri"
assert_grep '^pkcs11:.*object=r2048;type=private$' "$TT/rsa.uri" \
    "rsa: the key file is the URI"

# A key made on the token: its "key file" is its URI, usable later.
check "genpkey on the token -out key.uri" \
    ossl genpkey $PROV -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt "p11ca-uri:$TOKURI;object=gen1;$PINQ" -out "$TT/gen1.uri"
check "the written URI loads the new key" \
    ossl pkey $PROV -in "$(cat "$TT/gen1.uri");$PINQ" -pubout
# req -newkey encrypts the key file unless -noenc: no silent downgrade.
should_fail 1 'stays on the token.*-noenc' \
    "req -newkey without -noenc fails clearly (asks for -noenc)" \
    ossl req -new $PROV -newkey ec -pkeyopt group:P-256 \
    -pkeyopt "p11ca-uri:$TOKURI;object=gen2;$PINQ" \
    -keyout "$TT/gen2.uri" -passout pass:unused-1234 -subj /CN=x \
    -out "$TT/gen2.csr"

# A software key made through our keymgmt (genpkey without p11ca-uri) is an
# ordinary key: written, encrypted and printed as without the provider.
check "software key: genpkey -out (PEM PrivateKeyInfo)" \
    ossl genpkey $PROV -algorithm EC -pkeyopt group:P-256 -out "$TT/sw.pem"
check "software key: plain openssl reads it" \
    openssl pkey -in "$TT/sw.pem" -check -noout
check "software key: -text" \
    ossl pkey $PROV -in "$TT/sw.pem" -text -noout
assert_grep '^priv:' "$TT/out" "software key: -text shows its private part"
check "software key: encrypted PEM (-aes256)" \
    ossl genpkey $PROV -algorithm EC -pkeyopt group:P-256 -aes256 \
    -pass pass:sw-pass-1234 -out "$TT/swe.pem"
check "software key: plain openssl decrypts it" \
    openssl pkey -in "$TT/swe.pem" -passin pass:sw-pass-1234 -check -noout
check "software key: RSA as DER PrivateKeyInfo" \
    ossl genpkey $PROV -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -outform DER -out "$TT/sw.der"
check "software key: plain openssl reads the DER" \
    openssl pkey -inform DER -in "$TT/sw.der" -check -noout

done_testing
