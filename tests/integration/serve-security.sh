#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca serve against clients that misbehave: a TLS 1.2 client asking to
# renegotiate is refused (one handshake per connection); certificates of
# another CA or self-signed are refused with nothing recorded; refused
# calls that repeat are audited once per certificate and interval, with a
# count; request paths longer than the service reads get 414 and header
# lines longer than max_header_bytes a 4xx, and the service answers on.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

serve_config ""
serve_start || { echo "Bail out! the service did not start"; exit 1; }

# --- Renegotiation (TLS 1.2) ---------------------------------------------------
# renegotiate KEY CERT: s_client over TLS 1.2 asks for a renegotiation
# ("R") once the handshake is done, then a request; the input stays open
# until s_client reports the outcome.  Output in $D/client.log.
renegotiate() {
    : >"$D/client.log"
    # shellcheck disable=SC2094 # the reader waits for what s_client writes
    {
        wait_log '^---$' "$D/client.log"
        printf 'R\n'
        wait_log 'RENEGOTIATING' "$D/client.log"
        wait_log 'no renegotiation|[Ee]rror|^HTTP/1.1|closed' "$D/client.log" 50
        printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
        wait_log '^HTTP/1.1|[Ee]rror|closed' "$D/client.log"
    } | timeout 60 openssl s_client -tls1_2 -connect "127.0.0.1:$PORT" \
        -servername localhost -CAfile "$CA/ca.pem" -verify_return_error \
        -key "$1" -cert "$2" >"$D/client.log" 2>&1
}
h0=$(metric p11ca_tls_client_certificates_total)
renegotiate "$D/dave.key" "$D/dave.pem"
assert_grep 'RENEGOTIATING' "$D/client.log" "TLS 1.2: the client asks to renegotiate"
assert_grep 'no renegotiation' "$D/client.log" "... and the service refuses (alert no renegotiation)"
assert_no_grep '^HTTP/1.1' "$D/client.log" "... and serves nothing more on that connection"
assert_eq "$(metric p11ca_tls_client_certificates_total)" "$((h0 + 1))" \
    "... one certificate check: no second handshake"
api none GET /healthz
expect 200 "the service answers on"

# --- Certificates of no registered CA -----------------------------------------
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/other-ca.key" -subj "/CN=Other CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -out "$D/other-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/stray.key" -subj "/CN=stray/O=p11ca tests" -out "$D/stray.csr" 2>/dev/null
openssl x509 -req -in "$D/stray.csr" -CA "$D/other-ca.pem" -CAkey "$D/other-ca.key" \
    -set_serial 0x5157 -days 30 -out "$D/stray.pem" 2>/dev/null
# A self-signed certificate with the name of an operator (bob is an
# operator by subject).
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/selfbob.key" -subj "/O=p11ca tests/CN=bob" -days 30 \
    -set_serial 0x5158 -out "$D/selfbob.pem" 2>/dev/null
FLEET=$(jq -Rs . "$D/fleet-ca.pem")
api alice POST /v1/cas -d "{\"certificate\": $FLEET, \"name\": \"fleet\", \"auto_register\": true, \"auto_status\": \"activated\"}"
expect 201 .auto_status activated "a CA with auto-registration on"
n=$(p11ca cert list --dir "$CA" --count)
a=$(p11ca audit list --dir "$CA" | wc -l)
for who in stray selfbob; do
    api "$who" GET /v1/certs
    case $CODE in
    curl-failed*) ok "$who: refused at the handshake" ;;
    *) not_ok "$who: refused at the handshake (status $CODE)" ;;
    esac
done
assert_grep '"TLS handshake" refused serial=5157 reason=unknown-ca' "$D/access.log" \
    "the access log names the refusal of the other CA's certificate"
assert_grep '"TLS handshake" refused serial=5158 reason=unknown-ca' "$D/access.log" \
    "... and of the self-signed one"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n" "nothing is registered"
assert_eq "$(p11ca audit list --dir "$CA" | wc -l)" "$a" "nothing is audited"
assert_eq "$(metric 'p11ca_signups_total{kind="auto-registration"}')" 0 \
    "no auto-registration was tried"

serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

echo "1..$TAP_N"
done_testing
