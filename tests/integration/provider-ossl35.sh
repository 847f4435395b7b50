#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# What OpenSSL 3.4 and 3.5 (Debian 13) ask of a provider, with
# -provider p11ca -provider default: the EC half of the hybrid TLS groups
# (a key import with DOMAIN_PARAMETERS | PRIVATE_KEY and a public key
# only; testable on 3.0 through tests/progs/prov-api), and the
# message-signing API (EVP_PKEY_sign_message_init) with token keys.
# Points that need a newer OpenSSL are skipped with the version seen.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 8

D=$TT/ossl35
mkdir -p "$D"
# ossl_at_least MAJOR MINOR: the openssl command's library is that or newer.
ossl_at_least() {
    openssl version | awk -v a="$1" -v b="$2" '{ split($2, v, "."); exit !(v[1] > a || (v[1] == a && v[2] >= b)) }'
}
VERSION=$(openssl version | cut -d' ' -f2)

# A peer's EC share imported with DOMAIN_PARAMETERS | PRIVATE_KEY.
run_prog prov-api import-ec-public >"$D/import.out" 2>&1
assert_grep '^public key imported$' "$D/import.out" \
    "p11ca's EC key management keeps a public key imported with DOMAIN_PARAMETERS | PRIVATE_KEY selected"

# The hybrid groups through a server with p11ca loaded first.
if ossl_at_least 3 5; then
    openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/k.pem" -subj "/CN=hybrid.test" -days 1 -out "$D/c.pem" 2>/dev/null
    for g in SecP256r1MLKEM768 SecP384r1MLKEM1024; do
        port=$(free_port)
        start_server_ready "$D/s-$g.log" $PROV -accept "127.0.0.1:$port" -naccept 1 \
            -www -cert "$D/c.pem" -key "$D/k.pem" -groups "$g"
        printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" \
            -groups "$g" -CAfile "$D/c.pem" -verify_return_error >"$D/c-$g.log" 2>&1
        crc=$?
        server_done
        grp=$(sed -n 's/^Negotiated TLS1.3 group: //p' "$D/c-$g.log")
        assert_eq "$crc:$grp" "0:$g" "TLS 1.3 with $g against -provider p11ca -provider default"
    done
else
    skip "hybrid ML-KEM groups: OpenSSL $VERSION has none (3.5+)"
    skip "hybrid ML-KEM groups: OpenSSL $VERSION has none (3.5+)"
fi
keygen hyb ec:P-256
openssl pkey $PROV -in "$(privuri hyb)" -pubout -out "$D/hyb.pub"
check "the token key still works next to them" test -s "$D/hyb.pub"

# The message-signing API of OpenSSL 3.4 (EVP_PKEY_sign_message_init with
# "ECDSA-SHA256", "RSA-SHA256", "ED25519"), signatures verified by plain
# openssl.  A provider built with older headers does not have it.
keygen msgec ec:P-256
keygen msgrsa rsa:2048
keygen msged ed25519
printf 'a message signed through the message-signing API\n' >"$D/msg"
msg_sign() { # msg_sign ALG KEY [oneshot]: 0 signed, 77 no API, else failed
    run_prog prov-api sign-message "$1" provider=p11ca "$(privuri "$2")" \
        "$D/msg" "$D/$1.sig" ${3:-} >"$D/$1.out" 2>&1
}
for case in ECDSA-SHA256:msgec:sha256 RSA-SHA256:msgrsa:sha256 ECDSA-SHA384:msgec:sha384; do
    alg=${case%%:*} rest=${case#*:}
    key=${rest%%:*} md=${rest#*:}
    msg_sign "$alg" "$key"
    rc=$?
    if [ $rc -eq 77 ]; then
        skip "$alg with EVP_PKEY_sign_message_init: $(cat "$D/$alg.out")"
        continue
    fi
    openssl pkey $PROV -in "$(privuri "$key")" -pubout -out "$D/$key.pub" 2>/dev/null
    if [ $rc -eq 0 ] && openssl dgst "-$md" -verify "$D/$key.pub" \
        -signature "$D/$alg.sig" "$D/msg" >/dev/null 2>&1; then
        ok "$alg: sign_message_init/update/final with a token key; plain openssl verifies"
    else
        not_ok "$alg: sign_message_init/update/final with a token key (exit $rc)"
        diag "$(cat "$D/$alg.out")"
    fi
done
msg_sign ED25519 msged oneshot
rc=$?
if [ $rc -eq 77 ]; then
    skip "ED25519 with EVP_PKEY_sign_message_init: $(cat "$D/ED25519.out")"
else
    openssl pkey $PROV -in "$(privuri msged)" -pubout -out "$D/msged.pub" 2>/dev/null
    if [ $rc -eq 0 ] && openssl pkeyutl -verify -rawin -pubin -inkey "$D/msged.pub" \
        -in "$D/msg" -sigfile "$D/ED25519.sig" >/dev/null 2>&1; then
        ok "ED25519: sign_message_init and one EVP_PKEY_sign; plain openssl verifies"
    else
        not_ok "ED25519: sign_message_init and one EVP_PKEY_sign (exit $rc)"
        diag "$(cat "$D/ED25519.out")"
    fi
fi
