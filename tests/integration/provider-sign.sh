#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Signatures with token keys through the provider: RSA PKCS#1 v1.5 and PSS,
# ECDSA and Ed25519 with openssl dgst, pkeyutl, req and x509.  Every
# signature is checked by stock openssl, without the provider, against the
# exported public key.
# shellcheck disable=SC2086 # $PROV is two options on purpose
set -u
. "$top_srcdir/tests/lib/prov.sh"

# Stock openssl: no provider module directory, no configuration of ours.
sw() { env -u OPENSSL_MODULES -u OPENSSL_CONF openssl "$@"; }

# verified "description" command... : the command succeeds and says so
# (dgst: "Verified OK"; pkeyutl: "Signature Verified Successfully").
verified() {
    desc=$1
    shift
    if "$@" >"$TT/out" 2>&1 && grep -Eq 'Verified (OK|Successfully)' "$TT/out"; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "command: $*"
        diag "$(tail -n 20 "$TT/out")"
    fi
}

# rejected "description" command... : a verification that must fail.
rejected() {
    desc=$1
    shift
    if "$@" >"$TT/out" 2>&1; then
        not_ok "$desc (verification succeeded)"
    elif grep -Eq 'Verification failure|Signature Verification Failure' "$TT/out" \
        && ! grep -Eq 'Segmentation|AddressSanitizer' "$TT/out"; then
        ok "$desc"
    else
        not_ok "$desc (no verification failure reported)"
        diag "$(tail -n 20 "$TT/out")"
    fi
}

MSG=$TT/msg
head -c 100000 /dev/urandom >"$MSG"
for d in sha1 sha256 sha384 sha512; do
    sw dgst -"$d" -binary "$MSG" >"$TT/h.$d"
done
head -c 32 /dev/urandom >"$TT/raw32"
cp "$MSG" "$TT/msg2"
printf 'x' >>"$TT/msg2"

# ------------------------------------------------------------------
# Keys on the token, public halves exported for stock openssl
# ------------------------------------------------------------------
for kt in r2048:rsa:2048 r3072:rsa:3072 p256:ec:P-256 p384:ec:P-384 \
    ed:ed25519; do
    l=${kt%%:*}
    check "key gen ${kt#*:}" keygen "$l" "${kt#*:}"
    check "$l: export the public key" openssl pkey $PROV \
        -in "$(pubkuri "$l")" -pubin -pubout -out "$TT/$l.pub"
done

# ------------------------------------------------------------------
# openssl dgst -sign (digest-sign: software hash, one C_Sign)
# ------------------------------------------------------------------
# dgst_case LABEL DIGEST [-sigopt ...]: the signature goes to
# $TT/LABEL.DIGEST.sig, or LABEL.DIGEST.pss.sig with options.
dgst_case() {
    l=$1
    d=$2
    shift 2
    f=$TT/$l.$d.sig
    [ $# -eq 0 ] || f=$TT/$l.$d.pss.sig
    check "$l: dgst -$d -sign $*" openssl dgst -"$d" -sign "$(privuri "$l")" \
        $PROV -out "$f" "$@" "$MSG"
    verified "$l: dgst -$d $* signature verified by stock openssl" \
        sw dgst -"$d" -verify "$TT/$l.pub" -signature "$f" "$@" "$MSG"
}
dgst_case r2048 sha256
dgst_case r2048 sha1
dgst_case r3072 sha512
dgst_case p256 sha256
dgst_case p384 sha384
dgst_case p256 sha512
dgst_case r2048 sha256 -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:digest
dgst_case r3072 sha384 -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:max -sigopt rsa_mgf1_md:sha384
# SoftHSM2 refuses an MGF1 digest other than the message digest.
should_fail 1 'MGF1 with SHA-256.*C_SignInit.*CKR_ARGUMENTS_BAD' \
    "RSA-PSS: a token refusing the PSS parameters gets them in the message" \
    openssl dgst -sha384 -sign "$(privuri r3072)" $PROV -out "$TT/x.sig" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha256 "$MSG"
# SHA-3: PKCS#1 v1.5 signs a DigestInfo with CKM_RSA_PKCS, ECDSA a hash.
dgst_case r2048 sha3-256
dgst_case p256 sha3-256

# ------------------------------------------------------------------
# openssl pkeyutl -sign (sign: a digest computed beforehand)
# ------------------------------------------------------------------
# pk_case LABEL INPUT "sign options" "verify options": the signature goes
# to $TT/LABEL.pkN.sig, N counting the calls.
PKN=0
pk_case() {
    l=$1
    in=$2
    so=$3
    vo=$4
    PKN=$((PKN + 1))
    check "$l: pkeyutl -sign $so" openssl pkeyutl -sign \
        -inkey "$(privuri "$l")" $PROV -in "$in" -out "$TT/$l.pk$PKN.sig" $so
    verified "$l: pkeyutl $so verified by stock openssl ($vo)" \
        sw pkeyutl -verify -pubin -inkey "$TT/$l.pub" -in "$in" \
        -sigfile "$TT/$l.pk$PKN.sig" $vo
}
pk_case r2048 "$TT/h.sha256" "-pkeyopt digest:sha256" "-pkeyopt digest:sha256"
pk_case r3072 "$TT/h.sha384" "-pkeyopt digest:sha384" "-pkeyopt digest:sha384"
pk_case r2048 "$TT/raw32" "" ""
PSS="-pkeyopt rsa_padding_mode:pss"
# The salt really used: digest = 32, max = 256 - 32 - 2 = 222 (2048 bits).
pk_case r2048 "$TT/h.sha256" \
    "-pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:digest" \
    "-pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:32"
pk_case r2048 "$TT/h.sha256" \
    "-pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:max" \
    "-pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:222"
pk_case r2048 "$TT/h.sha256" \
    "-pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:32" \
    "-pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:32"
# Default (auto) signs with the largest salt: 384 - 48 - 2 = 334.
pk_case r3072 "$TT/h.sha384" "-pkeyopt digest:sha384 $PSS" \
    "-pkeyopt digest:sha384 $PSS -pkeyopt rsa_pss_saltlen:334"
pk_case p256 "$TT/h.sha256" "-pkeyopt digest:sha256" "-pkeyopt digest:sha256"
P256_PK=$TT/p256.pk$PKN.sig
pk_case p384 "$TT/h.sha384" "-pkeyopt digest:sha384" "-pkeyopt digest:sha384"
pk_case p256 "$TT/raw32" "" ""
# Raw RSA (no padding) on a full-size block below the modulus; pkeyutl
# refuses inputs longer than a hash, rsautl -raw does not.
{ printf '\000'; head -c 255 /dev/urandom; } >"$TT/block256"
check "r2048: rsautl -sign -raw (no padding)" openssl rsautl -sign -raw \
    -inkey "$(privuri r2048)" $PROV -in "$TT/block256" -out "$TT/none.sig"
sw rsautl -verify -raw -pubin -inkey "$TT/r2048.pub" -in "$TT/none.sig" \
    -out "$TT/none.rec" 2>/dev/null
check "r2048: stock openssl recovers the raw block" cmp "$TT/block256" \
    "$TT/none.rec"
should_fail 1 'not a SHA-384 digest' "RSA: a pre-hashed input of the wrong size is refused" \
    openssl pkeyutl -sign -inkey "$(privuri r2048)" $PROV -in "$TT/h.sha256" \
    -pkeyopt digest:sha384 -out "$TT/bad.sig"

# Ed25519: one-shot over the message.
check "ed: pkeyutl -sign -rawin" openssl pkeyutl -sign -rawin \
    -inkey "$(privuri ed)" $PROV -in "$MSG" -out "$TT/ed.sig"
verified "ed: verified by stock openssl" sw pkeyutl -verify -rawin -pubin \
    -inkey "$TT/ed.pub" -in "$MSG" -sigfile "$TT/ed.sig"

# ------------------------------------------------------------------
# Verification through the provider (in software on the public half)
# ------------------------------------------------------------------
verified "r2048: dgst -prverify with the token key" openssl dgst -sha256 \
    -prverify "$(privuri r2048)" $PROV -signature "$TT/r2048.sha256.sig" \
    "$MSG"
verified "r2048: dgst -prverify of a PSS signature" openssl dgst -sha256 \
    -prverify "$(privuri r2048)" $PROV -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:auto -signature "$TT/r2048.sha256.pss.sig" "$MSG"
verified "p384: dgst -prverify with the token key" openssl dgst -sha384 \
    -prverify "$(privuri p384)" $PROV -signature "$TT/p384.sha384.sig" \
    "$MSG"
verified "p256: pkeyutl -verify with the token key" openssl pkeyutl -verify \
    -inkey "$(privuri p256)" $PROV -in "$TT/h.sha256" \
    -pkeyopt digest:sha256 -sigfile "$P256_PK"
verified "ed: pkeyutl -verify -rawin with the token key" openssl pkeyutl \
    -verify -rawin -inkey "$(privuri ed)" $PROV -in "$MSG" \
    -sigfile "$TT/ed.sig"
rejected "r2048: dgst -prverify rejects another message" openssl dgst \
    -sha256 -prverify "$(privuri r2048)" $PROV \
    -signature "$TT/r2048.sha256.sig" "$TT/msg2"
rejected "p256: dgst -prverify rejects another message" openssl dgst \
    -sha256 -prverify "$(privuri p256)" $PROV \
    -signature "$TT/p256.sha256.sig" "$TT/msg2"
rejected "ed: pkeyutl -verify rejects another message" openssl pkeyutl \
    -verify -rawin -inkey "$(privuri ed)" $PROV -in "$TT/msg2" \
    -sigfile "$TT/ed.sig"

# ------------------------------------------------------------------
# Self-signed certificates and CSRs (AlgorithmIdentifier, dupctx)
# ------------------------------------------------------------------
# cert_case LABEL NAME "signature algorithm regex" [req options...]
cert_case() {
    l=$1
    n=$2
    alg=$3
    shift 3
    c=$TT/$n.pem
    check "$n: req -new -x509" openssl req -new -x509 -key "$(privuri "$l")" \
        $PROV -subj "/CN=$n" -days 2 -out "$c" "$@"
    sw x509 -noout -text -in "$c" >"$TT/$n.txt" 2>&1
    assert_grep "Signature Algorithm: $alg" "$TT/$n.txt" \
        "$n: the certificate is signed with $alg"
    sw verify -CAfile "$c" "$c" >"$TT/out" 2>&1
    assert_grep "^$c: OK" "$TT/out" "$n: stock openssl verify accepts it"
    check "$n: req -new (CSR)" openssl req -new -key "$(privuri "$l")" \
        $PROV -subj "/CN=$n-csr" -out "$TT/$n.csr" "$@"
    sw req -verify -noout -in "$TT/$n.csr" >"$TT/out" 2>&1
    assert_grep "verify OK" "$TT/out" "$n: stock openssl req -verify says verify OK"
}
cert_case r2048 rsa2048 sha256WithRSAEncryption
cert_case r3072 rsa3072-sha384 sha384WithRSAEncryption -sha384
cert_case p256 p256 ecdsa-with-SHA256
cert_case p384 p384 ecdsa-with-SHA384 -sha384
cert_case ed ed25519 ED25519
cert_case r2048 rsa-pss rsassaPss -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:digest
assert_grep "Salt Length: 0x20" "$TT/rsa-pss.txt" \
    "rsa-pss: the certificate names the salt length used (32)"
assert_grep "Mask Algorithm: mgf1 with sha256" "$TT/rsa-pss.txt" \
    "rsa-pss: MGF1 follows the digest (SHA-256)"
cert_case r3072 rsa-pss-max rsassaPss -sha384 -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:max
assert_grep "Salt Length: 0x0*14E" "$TT/rsa-pss-max.txt" \
    "rsa-pss-max: the certificate names the salt resolved from max (334)"

# CMS SignedData (signed attributes) and a CRL, checked by stock openssl.
# cms_case NAME CERT LABEL [cms options...]
cms_case() {
    n=$1
    c=$2
    l=$3
    shift 3
    check "$n: cms -sign $*" openssl cms -sign -nodetach -binary \
        -signer "$c" -inkey "$(privuri "$l")" $PROV -in "$MSG" \
        -outform PEM -out "$TT/$n.p7" "$@"
    sw cms -verify -binary -inform PEM -in "$TT/$n.p7" -CAfile "$c" \
        -out "$TT/$n.content" >"$TT/out" 2>&1
    assert_grep "Verification successful" "$TT/out" \
        "$n: stock openssl cms -verify accepts it"
}
cms_case cms-rsa "$TT/rsa2048.pem" r2048
cms_case cms-rsa-pss "$TT/rsa2048.pem" r2048 -keyopt rsa_padding_mode:pss
sw cms -cmsout -print -inform PEM -in "$TT/cms-rsa-pss.p7" >"$TT/out" 2>&1
assert_grep "rsassaPss" "$TT/out" "cms-rsa-pss: the SignerInfo names rsassaPss"
cms_case cms-p256 "$TT/p256.pem" p256
mkdir -p "$TT/ca/newcerts"
: >"$TT/ca/index.txt"
echo 01 >"$TT/ca/crlnumber"
cat >"$TT/ca.cnf" <<CNF
[ca]
default_ca = ca_sect
[ca_sect]
database = $TT/ca/index.txt
new_certs_dir = $TT/ca/newcerts
crlnumber = $TT/ca/crlnumber
default_md = sha384
default_crl_days = 1
CNF
check "p384: ca -gencrl" openssl ca -config "$TT/ca.cnf" -gencrl \
    -cert "$TT/p384.pem" -keyfile "$(privuri p384)" $PROV -out "$TT/crl.pem"
sw crl -in "$TT/crl.pem" -CAfile "$TT/p384.pem" -noout >"$TT/out" 2>&1
assert_grep "verify OK" "$TT/out" "p384: stock openssl verifies the CRL"

# ------------------------------------------------------------------
# Negative cases
# ------------------------------------------------------------------
sw genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TT/other.key" \
    2>/dev/null
sw pkey -in "$TT/other.key" -pubout -out "$TT/other.pub"
rejected "a token signature does not verify with a different RSA key" \
    sw dgst -sha256 -verify "$TT/other.pub" -signature "$TT/r2048.sha256.sig" \
    "$MSG"
rejected "a token ECDSA signature does not verify with the other P-256 key" \
    sw dgst -sha256 -verify "$TT/p384.pub" -signature "$TT/p256.sha256.sig" \
    "$MSG"
rejected "a token signature does not verify over another message" \
    sw dgst -sha256 -verify "$TT/r2048.pub" -signature \
    "$TT/r2048.sha256.sig" "$TT/msg2"
should_fail 1 'private key|[Cc]ould not' \
    "signing with a public-key URI fails with a clear message" \
    openssl dgst -sha256 -sign "$(pubkuri r2048)" $PROV -out "$TT/x.sig" \
    "$MSG"
should_fail 1 'does not support CKM_SHA3_256' \
    "RSA-PSS with SHA3-256 on SoftHSM2: the token lacks CKM_SHA3_256" \
    openssl dgst -sha3-256 -sign "$(privuri r2048)" $PROV \
    -sigopt rsa_padding_mode:pss -out "$TT/x.sig" "$MSG"
should_fail 1 'salt length 300 does not fit' \
    "RSA-PSS: a salt longer than the key allows is refused" \
    openssl pkeyutl -sign -inkey "$(privuri r2048)" $PROV -in "$TT/h.sha256" \
    -pkeyopt digest:sha256 $PSS -pkeyopt rsa_pss_saltlen:300 \
    -out "$TT/x.sig"
should_fail 1 'not supported' "RSA: x931 padding is refused" \
    openssl pkeyutl -sign -inkey "$(privuri r2048)" $PROV -in "$TT/h.sha256" \
    -pkeyopt rsa_padding_mode:x931 -out "$TT/x.sig"

# ------------------------------------------------------------------
# Fallback: keys whose CKA_ALLOWED_MECHANISMS name only token-hashed
# mechanisms, made with `p11ca key gen --allowed-mechanisms`.
# ------------------------------------------------------------------
check "fallback: RSA key allowing SHA256-RSA-PKCS(-PSS) only" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=rfb" \
    --type rsa:2048 --id 0a01 \
    --allowed-mechanisms SHA256-RSA-PKCS,SHA256-RSA-PKCS-PSS
check "fallback: EC key allowing ECDSA-SHA256 only" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=efb" \
    --type ec:P-256 --id 0a02 --allowed-mechanisms ECDSA-SHA256
openssl pkey $PROV -in "$(pubkuri rfb)" -pubin -pubout -out "$TT/rfb.pub"
dgst_case rfb sha256
dgst_case rfb sha256 -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:digest
cert_case rfb rsa-fallback sha256WithRSAEncryption
should_fail 1 'CKM_SHA384_RSA_PKCS is not in the key' \
    "fallback: a digest the key does not allow is refused, naming both mechanisms" \
    openssl dgst -sha384 -sign "$(privuri rfb)" $PROV -out "$TT/x.sig" "$MSG"
should_fail 1 'hashes the message itself' \
    "fallback: a pre-hashed input cannot use a token-hashed mechanism" \
    openssl pkeyutl -sign -inkey "$(privuri rfb)" $PROV -in "$TT/h.sha256" \
    -pkeyopt digest:sha256 -out "$TT/x.sig"
# SoftHSM2 2.6 has no CKM_ECDSA_SHA256: the message says why.
should_fail 1 'CKM_ECDSA is not in the key.*CKM_ECDSA_SHA256 is not supported' \
    "fallback: EC key without a usable mechanism gets a clear message" \
    openssl dgst -sha256 -sign "$(privuri efb)" $PROV -out "$TT/x.sig" "$MSG"
# The buffered message is bounded (16 MiB).
head -c 17000000 /dev/zero >"$TT/big"
should_fail 1 'exceeds 16 MiB' "fallback: a message over 16 MiB is refused" \
    openssl dgst -sha256 -sign "$(privuri rfb)" $PROV -out "$TT/x.sig" \
    "$TT/big"
rm -f "$TT/big"

# ------------------------------------------------------------------
# No memory errors from the provider (valgrind, when asked)
# ------------------------------------------------------------------
# p11-kit keeps a little state for modules the provider deliberately does
# not finalize at exit (see PITFALLS): only memory errors anywhere, or
# leaks through the signature code, count here.
# vg_case LABEL [dgst options...]
vg_case() {
    l=$1
    shift
    "$VALGRIND" -q --leak-check=full --keep-debuginfo=yes \
        --show-leak-kinds=definite,indirect --num-callers=40 \
        --suppressions="$top_srcdir/tests/valgrind.supp" \
        openssl dgst -sha256 -sign "$(privuri "$l")" $PROV "$@" \
        -out "$TT/vg.sig" "$MSG" >"$TT/vg.out" 2>&1
    if grep -Eq 'Invalid (read|write|free)|uninitialised|Mismatched' \
        "$TT/vg.out" \
        || awk '/are (definitely|indirectly) lost/ { r = 1 }
                r && /signature(_rsa|_ecdsa|_eddsa)?\.c/ { bad = 1 }
                /^==[0-9]+== $/ { r = 0 }
                END { exit !bad }' "$TT/vg.out"; then
        not_ok "valgrind: $l dgst -sign $*: memory errors or signature leaks"
        diag "$(head -n 40 "$TT/vg.out")"
    else
        ok "valgrind: $l dgst -sign $*: no memory errors or signature leaks"
    fi
}
if [ "${P11CA_VALGRIND:-0}" = 1 ] && [ -n "${VALGRIND:-}" ]; then
    vg_case p256
    vg_case r2048 -sigopt rsa_padding_mode:pss
else
    skip "valgrind run (set P11CA_VALGRIND=1)"
fi

plan "$TAP_N"
done_testing
