#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV, $P and the like are option lists, split on purpose
# Whatever the order of -provider p11ca and -provider default, OpenSSL keeps
# working: when our keymgmt wins a fetch by name ("EC", "RSA"), software
# keys stay software keys (generated, written as PKCS#8, used for ECDHE in
# TLS on P-256/P-384), and token keys stay on the token.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 12

FIRST="-provider p11ca -provider default"
# shellcheck disable=SC2034 # LAST is read through eval below
LAST="-provider default -provider p11ca"
printf 'data\n' >"$TT/data"

for order in FIRST LAST; do
    eval "pp=\$$order"
    check "$order: genpkey EC P-256 (no token named) makes a software key" \
        openssl genpkey $pp -algorithm EC -pkeyopt group:P-256 -out "$TT/sw-$order.pem"
    assert_grep 'BEGIN PRIVATE KEY' "$TT/sw-$order.pem" "$order: written as PKCS#8, like any software key"
    check "$order: plain openssl signs with it" \
        openssl dgst -sha256 -sign "$TT/sw-$order.pem" -out "$TT/sig" "$TT/data"
done
check "genpkey RSA 1024 through p11ca first (software sizes are not limited)" \
    openssl genpkey $FIRST -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$TT/rsa1024.pem"

# TLS with ECDHE on a NIST curve, token keys, p11ca loaded first.
keygen ordsrv ec:P-256
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TT/ca.key" -subj "/CN=Order CA" -days 2 -out "$TT/ca.pem" 2>/dev/null
openssl req $PROV -new -key "$(privuri ordsrv)" -subj "/CN=server.test" -out "$TT/srv.csr"
printf 'subjectAltName=DNS:server.test\n' >"$TT/srv.ext"
openssl x509 -req -in "$TT/srv.csr" -CA "$TT/ca.pem" -CAkey "$TT/ca.key" \
    -CAcreateserial -days 1 -extfile "$TT/srv.ext" -out "$TT/srv.pem" 2>/dev/null
for proto in tls1_3 tls1_2; do
    for group in P-256 P-384; do
        port=$(free_port)
        start_server_ready "$TT/s.log" $FIRST -accept "127.0.0.1:$port" -naccept 1 -www \
            -"$proto" -groups "$group" -cert "$TT/srv.pem" -key "$(privuri ordsrv)"
        # TLS 1.2 also uses the client's groups for the ECDSA certificate.
        cgroups=$( [ "$group" = P-256 ] && echo P-256 || echo "$group:P-256" )
        printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client $FIRST -connect "127.0.0.1:$port" \
            -"$proto" -groups "$cgroups" -brief -ign_eof -CAfile "$TT/ca.pem" \
            -verify_return_error >"$TT/c.log" 2>&1
        server_done
        curve=$( [ "$group" = P-256 ] && echo prime256v1 || echo secp384r1 )
        if grep -q 'Verification: OK' "$TT/c.log" \
            && [ "$(temp_key "$TT/c.log")" = "ECDH, $curve" ]; then
            ok "$proto ECDHE $group with p11ca first and a token server key"
        else
            not_ok "$proto ECDHE $group with p11ca first and a token server key"
            diag "$(tail -n 12 "$TT/c.log")"
            diag "$(tail -n 8 "$TT/s.log")"
        fi
    done
done
n=$(p11ca --pin-source "$PINFILE" key list --json "$TOKURI" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$n" 2 "TLS ephemeral keys were not stored on the token"
done_testing
