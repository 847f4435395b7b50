#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# Ed448 keys on the token (SoftHSM2 2.6 generates and signs with them):
# p11ca key gen --type ed448, genpkey on the token, the public key, raw
# signatures, a CSR, certificates and a TLS 1.3 server, each checked with
# plain openssl.  X25519/X448 on the token need
# CKM_EC_MONTGOMERY_KEY_PAIR_GEN: skipped with the reason where the token
# lacks it.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 13

D=$TT/ed448
mkdir -p "$D"
check "p11ca key gen --type ed448" keygen ed4 ed448
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --list-objects \
    --type pubkey >"$D/objs" 2>&1
if grep -A2 'EC_EDWARDS' "$D/objs" | grep -q 'OID 1.3.101.113'; then
    ok "pkcs11-tool sees an EC_EDWARDS key on curve 1.3.101.113 (Ed448)"
else
    not_ok "pkcs11-tool sees an Ed448 key"
    diag "$(cat "$D/objs")"
fi

# The public key, through the private key and through the public object.
openssl pkey $PROV -in "$(privuri ed4)" -pubout -out "$D/ed4.pub"
assert_eq "$(openssl asn1parse -in "$D/ed4.pub" | sed -n 's/.*prim: OBJECT *://p' | tr -d ' ')" \
    ED448 "pkey -pubout: an ED448 SubjectPublicKeyInfo"
openssl pkey $PROV -pubin -in "$(pubkuri ed4)" -pubout -out "$D/ed4-obj.pub"
check "the public key object gives the same key" cmp "$D/ed4.pub" "$D/ed4-obj.pub"

# A raw signature, verified by plain openssl.
printf 'message for Ed448\n' >"$D/msg"
openssl pkeyutl $PROV -sign -rawin -inkey "$(privuri ed4)" -in "$D/msg" -out "$D/sig"
assert_eq "$(wc -c <"$D/sig" | tr -d ' ')" 114 "pkeyutl -sign -rawin: a 114-byte Ed448 signature"
check "plain openssl verifies it" openssl pkeyutl -verify -rawin -pubin \
    -inkey "$D/ed4.pub" -in "$D/msg" -sigfile "$D/sig"

# A CSR, and a TLS 1.3 server certificate from a software CA.
openssl req $PROV -new -key "$(privuri ed4)" -subj "/CN=ed448.test" -out "$D/ed4.csr"
openssl req -in "$D/ed4.csr" -verify -noout -text >"$D/csr.txt" 2>&1
assert_grep 'verify OK' "$D/csr.txt" "the Ed448 CSR verifies with plain openssl"
assert_grep 'Signature Algorithm: ED448' "$D/csr.txt" "... signed with ED448"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/ca.key" -subj "/CN=Ed448 Test CA" -days 2 -out "$D/ca.pem" 2>/dev/null
printf 'subjectAltName=DNS:server.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$D/srv.ext"
openssl x509 -req -in "$D/ed4.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -set_serial 1 \
    -days 1 -extfile "$D/srv.ext" -out "$D/ed4.pem" 2>/dev/null
port=$(free_port)
start_server_ready "$D/server.log" $PROV -accept "127.0.0.1:$port" -naccept 1 \
    -www -tls1_3 -cert "$D/ed4.pem" -key "$(privuri ed4)"
printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
    -CAfile "$D/ca.pem" -verify_return_error >"$D/client.log" 2>&1
crc=$?
server_done
# OpenSSL 3.0 says "Ed448", 3.2+ the scheme "ed448".
sigtype=$(sed -n 's/^Peer signature type: //p' "$D/client.log" | head -n 1 | tr '[:upper:]' '[:lower:]')
assert_eq "$crc:$sigtype" "0:ed448" "TLS 1.3 with the token's Ed448 key: plain s_client verifies an ed448 signature"

# genpkey on the token through the provider's key management.
openssl genpkey $PROV -propquery provider=p11ca -algorithm ED448 \
    -pkeyopt "p11ca-uri:$TOKURI;object=gen448;$PINQ" -out "$D/gen448.uri" 2>"$D/genpkey.err"
openssl pkey $PROV -in "$(privuri gen448)" -pubout -out "$D/gen448.pub" 2>/dev/null
openssl pkeyutl $PROV -sign -rawin -inkey "$(privuri gen448)" -in "$D/msg" -out "$D/sig2" 2>/dev/null
check "genpkey -algorithm ED448 on the token: a key that signs, verified by plain openssl" \
    openssl pkeyutl -verify -rawin -pubin -inkey "$D/gen448.pub" -in "$D/msg" -sigfile "$D/sig2"
openssl pkey $PROV -in "$(privuri gen448)" -text -noout >"$D/gen448.txt" 2>&1
assert_grep 'type: +Ed448 \(456 bits\)' "$D/gen448.txt" "the provider describes it as Ed448"
should_fail 2 'unknown key type "ed447".*ed25519 or ed448' "p11ca key gen --type ed447 is refused with the types it knows" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=x" --type ed447

# X25519 and X448 on the token.
pkcs11-tool --module "$SOFTHSM_MODULE" -M >"$D/mechs" 2>&1
if grep -qi 'EC-MONTGOMERY-KEY-PAIR-GEN\|mechtype-0x1056' "$D/mechs"; then
    not_ok "X25519/X448 on the token: the token has CKM_EC_MONTGOMERY_KEY_PAIR_GEN, and p11ca does not derive with Montgomery keys yet"
else
    skip "X25519/X448 on the token: this module ($(basename "$SOFTHSM_MODULE")) has no CKM_EC_MONTGOMERY_KEY_PAIR_GEN (SoftHSM2 2.6.1 makes no Montgomery keys)"
fi
