# SPDX-License-Identifier: Apache-2.0
# Sourced by the enroll-*.sh tests: the CA's token (tests/lib/token.sh) and
# user cards made with new_token in the same SoftHSM2 directory, a CA whose
# key is on the CA token, a TLS server key and certificate there, the CRL,
# and helpers for enrollment and mutual-TLS logins.
# shellcheck shell=sh disable=SC2086
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT

CA=$TT/ca
D=$TT/enr
mkdir -p "$D"

# Card labels are never prefixes of each other (pkcs11-tool --token-label).
# card NAME: a new user token;  cardq NAME: its URI with the PIN source.
card() { new_token "$1"; }
cardq() { echo "pkcs11:token=$1;pin-source=$PINFILE"; }
# enroll CARD ARGS...: p11ca enroll onto CARD with the test CA.
enroll() {
    c=$1
    shift
    p11ca enroll --token "$(cardq "$c")" --ca "$CA" "$@"
}
# The registry's form of a certificate serial (lower case, no leading 0).
# cert_serial FILE: the serial as openssl (and p11ca) print it.
cert_serial() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2
}
# card_cert CARD LABEL FILE: the certificate object as PEM, through p11tool.
card_cert() {
    p11tool --export "pkcs11:token=$1;object=$2;type=cert" >"$3" 2>/dev/null
}

if ! p11ca --pin-source "$PINFILE" ca init --dir "$CA" \
    --subject "/CN=Enroll Test CA/O=p11ca tests" \
    --key-uri "$TOKURI;object=enroll-ca" --generate ec:P-256 >/dev/null; then
    echo "Bail out! cannot make the test CA"
    exit 1
fi
keygen srv ec:P-256
# shellcheck disable=SC2086 # $PROV is an option list
if ! openssl req $PROV -new -key "$(privuri srv)" -subj /CN=server.test \
    -out "$D/srv.csr" ||
    ! p11ca issue --dir "$CA" --profile server --san DNS:server.test,IP:127.0.0.1 \
        --out "$D/srv.pem" "$D/srv.csr" >/dev/null; then
    echo "Bail out! cannot issue the server certificate"
    exit 1
fi
p11ca crl --dir "$CA" --out "$D/ca.crl" 2>/dev/null

# www PROTO [CRL]: an s_server that requires a client certificate of the CA
# (checked against CRL, default the current one) and answers one request
# with its -www status page, listening when www returns; sets PORT.  Each
# login ends with server_done (tests/lib/tls.sh).
www() {
    PORT=$(free_port)
    start_server_ready "$D/server.log" $PROV -accept "127.0.0.1:$PORT" -naccept 1 \
        -"$1" -www -cert "$D/srv.pem" -key "$(privuri srv)" -CAfile "$CA/ca.pem" \
        -Verify 1 -verify_return_error -crl_check -CRL "${2:-$D/ca.crl}"
}

# want PROTO: the protocol name the tools print.
want() { [ "$1" = tls1_3 ] && echo TLSv1.3 || echo TLSv1.2; }

# assert_server PROTO CN DESC: the server's view (its -www page in $D/page).
assert_server() {
    if grep -q "^New, $(want "$1"), Cipher is" "$D/page" &&
        grep -q "Subject: CN *= *$2\$" "$D/page" &&
        grep -q 'Verify return code: 0 (ok)' "$D/page"; then
        ok "$3: the server sees $(want "$1") and the verified card $2"
    else
        not_ok "$3: the server sees $(want "$1") and the verified card $2"
        diag "$(grep -E 'New,|Subject:|Verify return' "$D/page")"
        diag "$(tail -n 5 "$D/server.log")"
    fi
}

# login_openssl PROTO CARD LABEL CN: mTLS with s_client, certificate and
# key from the card through the provider's store; both ends asserted.
login_openssl() {
    www "$1"
    printf 'GET / HTTP/1.0\r\n\r\n' | env $OPENSSL_ENV timeout 60 openssl s_client $PROV \
        -connect "127.0.0.1:$PORT" -"$1" -brief -ign_eof -nameopt oneline \
        -servername server.test -verify_return_error -CAfile "$CA/ca.pem" \
        -cert "pkcs11:token=$2;object=$3;type=cert" \
        -key "pkcs11:token=$2;object=$3;type=private;$PINQ" >"$D/client.log" 2>&1
    crc=$?
    server_done
    if [ $crc -eq 0 ] && grep -q "Protocol version: $(want "$1")" "$D/client.log" &&
        grep -q 'Verification: OK' "$D/client.log" &&
        grep -q 'Peer certificate: CN = server.test' "$D/client.log"; then
        ok "openssl $1 $3: the client logs in with the card ($(want "$1"))"
    else
        not_ok "openssl $1 $3: the client logs in with the card (exit $crc)"
        diag "$(tail -n 15 "$D/client.log")"
    fi
    sed -n '/^HTTP\/1.0 200 ok/,$p' "$D/client.log" >"$D/page"
    assert_server "$1" "$4" "openssl $1 $3"
}

# login_refused CARD LABEL REGEX DESC: the server refuses the card.
login_refused() {
    www tls1_3
    printf 'GET / HTTP/1.0\r\n\r\n' | env $OPENSSL_ENV timeout 60 openssl s_client $PROV \
        -connect "127.0.0.1:$PORT" -brief -ign_eof -CAfile "$CA/ca.pem" \
        -cert "pkcs11:token=$1;object=$2;type=cert" \
        -key "pkcs11:token=$1;object=$2;type=private;$PINQ" >"$D/client.log" 2>&1
    server_done
    if grep -Eq "$3" "$D/server.log" && ! grep -q '^HTTP/1.0 200' "$D/client.log"; then
        ok "$4"
    else
        not_ok "$4"
        diag "server: $(grep -iE 'error|verify' "$D/server.log" | head -n 5)"
        diag "client: $(tail -n 5 "$D/client.log")"
    fi
}
