#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# RSA keys that the token lets sign with PSS only (CKA_ALLOWED_MECHANISMS):
# RSA-PSS keys to OpenSSL, so that CSRs and certificates name RSASSA-PSS
# (with the key's restrictions), TLS 1.2 servers negotiate PSS with a
# client that offers PKCS#1 v1.5 first, and a key restricted to one digest
# refuses the others with a reason.  Checked with stock openssl.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 21

D=$TT/pss
mkdir -p "$D"
gen_allowed() { # gen_allowed LABEL MECHANISMS
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=$1" \
        --type rsa:2048 --allowed-mechanisms "$2" >/dev/null
}
gen_allowed pss RSA-PKCS-PSS,SHA256-RSA-PKCS-PSS,SHA384-RSA-PKCS-PSS
gen_allowed pss256 SHA256-RSA-PKCS-PSS
gen_allowed mixed RSA-PKCS,RSA-PKCS-PSS

# The key's CKA_ALLOWED_MECHANISMS, read by a tool we did not write.
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --login \
    --pin "$(cat "$PINFILE")" --list-objects --type privkey >"$D/objs" 2>&1
if awk '/label: *pss256$/ { f = 1 } f && /Allowed mechanisms/ { print; exit }' "$D/objs" |
    grep -q 'SHA256-RSA-PKCS-PSS'; then
    ok "p11ca key gen --allowed-mechanisms sets CKA_ALLOWED_MECHANISMS (pkcs11-tool shows it)"
else
    not_ok "p11ca key gen --allowed-mechanisms sets CKA_ALLOWED_MECHANISMS"
    diag "$(cat "$D/objs")"
fi

# The public key of each: RSASSA-PSS for PSS-only keys, with the digest
# of a key restricted to one; rsaEncryption for a key that may do PKCS#1.
for k in pss pss256 mixed; do
    openssl pkey $PROV -in "$(privuri $k)" -pubout -out "$D/$k.pub" 2>"$D/$k.err"
    openssl pkey -pubin -in "$D/$k.pub" -text -noout >"$D/$k.txt" 2>&1
    openssl asn1parse -in "$D/$k.pub" >"$D/$k.asn1" 2>&1
done
# The key's algorithm is the first OBJECT of the SubjectPublicKeyInfo.
spki_oid() { sed -n 's/.*prim: OBJECT *://p' "$1" | head -n 1 | tr -d ' '; }
assert_eq "$(spki_oid "$D/pss.asn1")" rsassaPss "a PSS-only key is an RSA-PSS key (SubjectPublicKeyInfo rsassaPss)"
assert_grep 'No PSS parameter restrictions' "$D/pss.txt" "... unrestricted when raw CKM_RSA_PKCS_PSS is allowed"
# OpenSSL 3.0 names the digest SHA2-256, later versions sha256.
assert_grep 'Hash Algorithm: (sha256|SHA2-256|SHA256)' "$D/pss256.txt" \
    "a key allowed SHA256-RSA-PKCS-PSS only is restricted to SHA-256"
assert_grep 'Minimum Salt Length: (0x20|32)' "$D/pss256.txt" "... with a salt of at least 32 bytes"
assert_eq "$(spki_oid "$D/mixed.asn1")" rsaEncryption "a key that may sign with PKCS#1 v1.5 too stays an RSA key"

# A CSR and a self-signed certificate: RSASSA-PSS key and signature,
# verified by plain openssl.
openssl req $PROV -new -key "$(privuri pss256)" -subj "/CN=pss.test" -out "$D/pss256.csr"
openssl req -in "$D/pss256.csr" -verify -noout -text >"$D/csr.txt" 2>&1
assert_grep 'verify OK' "$D/csr.txt" "the CSR of the restricted key verifies with plain openssl"
if grep -q 'Public Key Algorithm: rsassaPss' "$D/csr.txt" &&
    grep -q 'Signature Algorithm: rsassaPss' "$D/csr.txt"; then
    ok "the CSR's key and signature are RSASSA-PSS"
else
    not_ok "the CSR's key and signature are RSASSA-PSS"
    diag "$(grep -i algorithm "$D/csr.txt")"
fi
openssl req $PROV -new -x509 -key "$(privuri pss)" -subj "/CN=PSS Root" -days 2 \
    -addext basicConstraints=critical,CA:TRUE -out "$D/root.pem"
check "the self-signed RSA-PSS root verifies with plain openssl" \
    openssl verify -CAfile "$D/root.pem" "$D/root.pem"
openssl x509 -in "$D/root.pem" -noout -text >"$D/root.txt"
assert_grep 'Signature Algorithm: rsassaPss' "$D/root.txt" "req -x509 signs with RSASSA-PSS without -sigopt"
# The root signs the CSR (x509 -CAkey: the key must match the RSA-PSS cert).
openssl x509 $PROV -req -in "$D/pss256.csr" -CA "$D/root.pem" -CAkey "$(privuri pss)" \
    -set_serial 7 -days 1 -out "$D/pss256.pem" \
    -extfile /dev/stdin 2>"$D/x509.err" <<EOF
subjectAltName=DNS:server.test,IP:127.0.0.1
extendedKeyUsage=serverAuth
EOF
check "x509 -CAkey with the RSA-PSS root's token key: the leaf verifies with plain openssl" \
    openssl verify -CAfile "$D/root.pem" "$D/pss256.pem"

# A key restricted to SHA-256 refuses other digests, with the reason.
printf 'data\n' >"$D/data"
should_fail 1 'may sign with SHA256 only .*not with SHA384 as message digest' \
    "the SHA-256 key refuses dgst -sha384" \
    openssl dgst $PROV -sha384 -sign "$(privuri pss256)" -out "$D/sig" "$D/data"
should_fail 1 'may sign with SHA256 only .*not with SHA1 as MGF1 digest' \
    "... and an MGF1 digest other than SHA-256" \
    openssl dgst $PROV -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha1 \
    -sign "$(privuri pss256)" -out "$D/sig" "$D/data"
should_fail 1 'salt length 20 is below the key.s minimum of 32' "... and a salt below 32 bytes" \
    openssl dgst $PROV -sha256 -sigopt rsa_pss_saltlen:20 \
    -sign "$(privuri pss256)" -out "$D/sig" "$D/data"
should_fail 1 'only pss padding is allowed, not pkcs1' "... and PKCS#1 v1.5 padding" \
    openssl dgst $PROV -sha256 -sigopt rsa_padding_mode:pkcs1 \
    -sign "$(privuri pss256)" -out "$D/sig" "$D/data"
openssl dgst $PROV -sha256 -sign "$(privuri pss256)" -out "$D/sig" "$D/data"
check "dgst -sha256 signs with PSS by itself; plain openssl verifies with the RSA-PSS public key" \
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -verify "$D/pss256.pub" -signature "$D/sig" "$D/data"

# TLS 1.2: a client that offers PKCS#1 v1.5 first.  RSA-PSS certificates
# take the rsa_pss_pss_* schemes (OpenSSL's name RSA-PSS+SHA256 is
# rsa_pss_rsae_sha256, for rsaEncryption certificates).
# peer_sig LOG: "pss" when the client saw a PSS signature (OpenSSL 3.0
# says "RSA-PSS", 3.2+ the scheme "rsa_pss_pss_sha256").
peer_sig() {
    sed -n 's/^Peer signature type: //p' "$1" | head -n 1 |
        sed 's/^RSA-PSS$/pss/; s/^rsa_pss_pss_sha256$/pss/'
}
tls() { # tls NAME s_client-options...: one handshake, the client's log
    name=$1
    shift
    port=$(free_port)
    start_server_ready "$D/srv-$name.log" $PROV -accept "127.0.0.1:$port" -naccept 1 \
        -www -tls1_2 -cert "$D/pss256.pem" -key "$(privuri pss256)"
    printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" \
        -tls1_2 -CAfile "$D/root.pem" -verify_return_error "$@" >"$D/cli-$name.log" 2>&1
    TLS_RC=$?
    server_done
}
tls default
assert_eq "$TLS_RC:$(peer_sig "$D/cli-default.log")" "0:pss" \
    "TLS 1.2, the client's default schemes: the server signs with PSS (rsa_pss_pss_sha256)"
tls pkcs1first -sigalgs 'RSA+SHA256:rsa_pss_pss_sha256'
assert_eq "$TLS_RC:$(peer_sig "$D/cli-pkcs1first.log")" "0:pss" \
    "TLS 1.2, a client offering RSA+SHA256 (PKCS#1) first: PSS is negotiated"
assert_no_grep 'internal error' "$D/cli-pkcs1first.log" "... no internal_error"
tls rsae -sigalgs 'RSA+SHA256:RSA-PSS+SHA256'
if [ "$TLS_RC" -ne 0 ] && grep -q 'handshake failure' "$D/cli-rsae.log" &&
    ! grep -q 'internal error' "$D/cli-rsae.log"; then
    ok "a client offering only PKCS#1 and rsa_pss_rsae (RSA-PSS+SHA256): handshake_failure, not internal_error"
else
    not_ok "a client offering only PKCS#1 and rsa_pss_rsae: a clean handshake_failure (exit $TLS_RC)"
    diag "$(tail -n 5 "$D/cli-rsae.log")"
fi

# p11ca-rsa-pss-keys = no: such keys stay RSA keys (for rsaEncryption
# certificates made before).
P11CA_RSA_PSS_KEYS=no openssl pkey $PROV -in "$(privuri pss)" -pubout 2>/dev/null |
    openssl asn1parse >"$D/off.asn1" 2>&1
assert_eq "$(spki_oid "$D/off.asn1")" rsaEncryption "P11CA_RSA_PSS_KEYS=no: the PSS-only key stays an RSA key"
