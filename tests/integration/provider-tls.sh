#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV, $P and the like are option lists, split on purpose
# TLS 1.2 and 1.3 with token keys on both ends (mTLS): openssl s_server and
# s_client through the provider, RSA and EC; both sides must report the
# protocol and the verified peer; then 200 handshakes against one server.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 29

keygen srvrsa rsa:2048
keygen srvec ec:P-256
keygen clirsa rsa:2048
keygen cliec ec:P-384
D=$TT/tls
mkdir -p "$D"

# A software CA issues the certificates of the token keys.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/ca.key" -subj "/CN=TLS Test CA" -days 10 -out "$D/ca.pem" 2>/dev/null
issue() { # issue LABEL CN EXTFILE
    openssl req $PROV -new -key "$(privuri "$1")" -subj "/CN=$2" -out "$D/$1.csr" &&
    openssl x509 -req -in "$D/$1.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" \
        -CAcreateserial -days 5 -extfile "$3" -out "$D/$1.pem" 2>/dev/null
}
printf 'subjectAltName=DNS:server.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$D/srv.ext"
printf 'extendedKeyUsage=clientAuth\n' >"$D/cli.ext"
check "server RSA cert for the token key" issue srvrsa server.test "$D/srv.ext"
check "server EC cert for the token key" issue srvec server.test "$D/srv.ext"
check "client RSA cert for the token key" issue clirsa alice "$D/cli.ext"
check "client EC cert for the token key" issue cliec bob "$D/cli.ext"

# handshake PROTO SERVERKEY CLIENTKEY CLIENTCN
handshake() {
    proto=$1 skey=$2 ckey=$3 cn=$4
    port=$(free_port)
    start_server_ready "$D/server.log" $PROV -accept "127.0.0.1:$port" -naccept 1 \
        -"$proto" -www -cert "$D/$skey.pem" -key "$(privuri "$skey")" \
        -CAfile "$D/ca.pem" -Verify 1 -verify_return_error
    printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client $PROV -connect "127.0.0.1:$port" \
        -"$proto" -brief -ign_eof -nameopt oneline -servername server.test \
        -verify_return_error -CAfile "$D/ca.pem" -cert "$D/$ckey.pem" -key "$(privuri "$ckey")" \
        >"$D/client.log" 2>&1
    crc=$?
    server_done
    want=$( [ "$proto" = tls1_3 ] && echo TLSv1.3 || echo TLSv1.2 )
    if [ $crc -eq 0 ] && grep -q "Protocol version: $want" "$D/client.log" \
        && grep -q 'Verification: OK' "$D/client.log" \
        && grep -q 'Peer certificate: CN = server.test' "$D/client.log"; then
        ok "$proto $skey/$ckey: client sees $want and the verified server"
    else
        not_ok "$proto $skey/$ckey: client side (exit $crc)"
        diag "$(tail -n 15 "$D/client.log")"
    fi
    # The server's own view comes back in its -www status page.
    sed -n '/^HTTP\/1.0 200 ok/,$p' "$D/client.log" >"$D/server.view"
    if grep -q "^New, $want, Cipher is" "$D/server.view" \
        && grep -q "Subject: CN=$cn\$" "$D/server.view" \
        && grep -q 'Verify return code: 0 (ok)' "$D/server.view"; then
        ok "$proto $skey/$ckey: server sees $want and the verified client $cn"
    else
        not_ok "$proto $skey/$ckey: server side"
        diag "$(grep -E 'New,|Subject:|Verify return' "$D/server.view")"
        diag "$(tail -n 5 "$D/server.log")"
    fi
}

for proto in tls1_3 tls1_2; do
    handshake $proto srvrsa cliec bob
    handshake $proto srvec clirsa alice
    handshake $proto srvec cliec bob
    handshake $proto srvrsa clirsa alice
done

# A client without a certificate is refused by a server that requires one.
port=$(free_port)
start_server_ready "$D/server.log" $PROV -accept "127.0.0.1:$port" -naccept 1 -www \
    -cert "$D/srvec.pem" -key "$(privuri srvec)" -CAfile "$D/ca.pem" -Verify 1 -verify_return_error
printf 'x\n' | openssl s_client -connect "127.0.0.1:$port" -CAfile "$D/ca.pem" -brief >"$D/nocert.log" 2>&1
server_done
assert_grep 'peer did not return a certificate|alert|certificate required' "$D/server.log" \
    "server refuses a client without a certificate"

# A client whose certificate is from another CA is refused.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/rogue.key" -subj "/CN=mallory" -days 1 -out "$D/rogue.pem" 2>/dev/null
port=$(free_port)
start_server_ready "$D/server.log" $PROV -accept "127.0.0.1:$port" -naccept 1 -www \
    -cert "$D/srvec.pem" -key "$(privuri srvec)" -CAfile "$D/ca.pem" -Verify 1 -verify_return_error
printf 'x\n' | openssl s_client -connect "127.0.0.1:$port" -CAfile "$D/ca.pem" -brief \
    -cert "$D/rogue.pem" -key "$D/rogue.key" >"$D/rogue.log" 2>&1
server_done
assert_grep 'unable to get local issuer|verify error|certificate verify failed' "$D/server.log" \
    "server refuses a client certificate from another CA"

# 200 handshakes against one server with a token key (server auth only,
# so that each client is quick); then 20 with client certificates too.
port=$(free_port)
start_server_ready "$D/many.log" $PROV -accept "127.0.0.1:$port" -naccept 1000 -www \
    -cert "$D/srvec.pem" -key "$(privuri srvec)" -CAfile "$D/ca.pem" -verify 1
# handshakes N [s_client options...]: how many of N verified requests to
# the server on $port succeed.
handshakes() {
    n=$1
    shift
    good=0
    i=0
    while [ $i -lt "$n" ]; do
        if printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" \
            -CAfile "$D/ca.pem" -verify_return_error -quiet -ign_eof "$@" >/dev/null 2>&1; then
            good=$((good + 1))
        fi
        i=$((i + 1))
    done
    echo "$good"
}
assert_eq "$(handshakes 200)" 200 "200 handshakes against one server with a token key"
assert_eq "$(handshakes 20 $PROV -cert "$D/cliec.pem" -key "$(privuri cliec)")" 20 \
    "20 mutual-TLS handshakes with token keys on both ends"
if kill -0 "$SERVER_PID" 2>/dev/null; then
    ok "the server is alive after 220 handshakes"
else
    not_ok "the server is alive after 220 handshakes"
fi
stop_servers
assert_no_grep '[Ee][Rr][Rr][Oo][Rr]|[Ss]egmentation' "$D/many.log" \
    "the server logged no error"

# The token goes away under a running server (every session closed, the
# login lost: injected by the fault module at the server's 4th signature)
# and comes back: the handshake that met it and every later one succeed.
port=$(free_port)
P11CA_MODULE=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so \
    FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_LOG=$D/removed.log \
    FAULTY_PKCS11_FAULTS=C_Sign:4:CKR_DEVICE_REMOVED \
    start_server_ready "$D/removed.out" $PROV -accept "127.0.0.1:$port" -naccept 10 -www \
    -cert "$D/srvec.pem" -key "$(privuri srvec)"
good=$(handshakes 10)
server_done
assert_eq "$good" 10 "a token removal under a running server: all 10 handshakes succeed"
assert_eq "$(grep -c 'C_Sign CKR_DEVICE_REMOVED \[injected\]' "$D/removed.log")" 1 \
    "... the removal was injected at a handshake's signature"
assert_eq "$(grep -c ' C_Login CKR_OK' "$D/removed.log")" 2 \
    "... and the server logged in again by itself (2 logins in all)"
done_testing
