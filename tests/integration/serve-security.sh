#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca serve against clients that misbehave: a TLS 1.2 client asking to
# renegotiate is refused (one handshake per connection); certificates of
# another CA or self-signed are refused with nothing recorded; refused
# calls that repeat are audited once per certificate and interval, with a
# count; a refused client that wrote its request at once still reads the
# alert (the close lingers); request paths longer than the service reads
# get 414 and header lines longer than max_header_bytes a 4xx, and the
# service answers on.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

serve_config "audit_denied_interval_s = 3600"
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

# --- Refusals in a loop ------------------------------------------------------------
# flood WHO PATH N: N calls of PATH as WHO by one curl (one connection
# while the service keeps it open); the status codes, one a line, in
# $D/flood.codes.
flood() {
    : >"$D/flood.cfg"
    i=0
    while [ $i -lt "$3" ]; do
        printf 'url = "https://127.0.0.1:%s%s"\noutput = "/dev/null"\n' \
            "$PORT" "$2" >>"$D/flood.cfg"
        i=$((i + 1))
    done
    curl -s -K "$D/flood.cfg" -w '%{http_code}\n' --cacert "$CA/ca.pem" \
        --cert "$D/$1.pem" --key "$D/$1.key" >"$D/flood.codes" 2>/dev/null
}
# idle: until no job waits for a worker or runs on one.
idle() {
    wait_metric p11ca_worker_queue_depth 0 && wait_metric p11ca_worker_jobs_running 0
}
DAVE=$(cert_serial "$D/dave.pem")
denied_re="api:O=p11ca tests,CN=dave serial=$DAVE +api-denied"
flood dave /v1/certs 200
assert_eq "$(grep -c '^403$' "$D/flood.codes")" 200 "a device calls a route above its role 200 times: 200 x 403"
idle
p11ca audit list --dir "$CA" >"$D/audit.txt"
assert_eq "$(grep -Ec -- "$denied_re" "$D/audit.txt")" 1 \
    "... one api-denied entry for the device (audit_denied_interval_s = 3600)"
assert_eq "$(metric p11ca_worker_queue_depth)" 0 "... and no job is left waiting"
api none GET /healthz
expect 200 .queued 0 "/healthz answers at once after"
api dave GET "/v1/certs/$DAVE"
expect 200 .serial "$DAVE" "the device itself is still served its own entry"
api carol GET /v1/certs
expect 200 "an auditor searches at once after"

# A device refused at the handshake in a loop: access log and metrics,
# nothing queued, nothing audited.
issue_key gone "/CN=gone/O=p11ca tests" client
GONE=$(cert_serial "$D/gone.pem")
check "revoke it" p11ca cert revoke --dir "$CA" "$GONE"
a=$(p11ca audit list --dir "$CA" | wc -l)
r=$(metric 'p11ca_refusals_total{reason="revoked"}')
flood gone /healthz 200
assert_eq "$(grep -c '^000$' "$D/flood.codes")" 200 "a revoked device connects 200 times: refused each time"
assert_eq "$(metric 'p11ca_refusals_total{reason="revoked"}')" "$((r + 200))" "... counted"
assert_eq "$(grep -c "refused serial=$GONE reason=revoked" "$D/access.log")" 200 \
    "... one access-log line each"
assert_eq "$(metric p11ca_worker_queue_depth) $(metric p11ca_worker_jobs_running)" "0 0" \
    "... no work queued for them"
assert_eq "$(p11ca audit list --dir "$CA" | wc -l)" "$a" "... nothing audited"
api none GET /healthz
expect 200 .queued 0 "/healthz answers at once after"
api dave GET "/v1/certs/$DAVE"
expect 200 .serial "$DAVE" "a good device is served at once after"

# --- A refused client that writes at once reads why ----------------------------------
# s_client over TLS 1.3 sends its request as soon as its side of the
# handshake is done (its input is ready), before the service has checked
# its certificate.  The service refuses it (revoked) with an alert; the
# request is still unread then, and a plain close would answer it with a
# reset that can destroy the alert before the client reads it.  The
# service's close lingers: the client reads the alert, every time.
seen=0
i=0
while [ $i -lt 20 ]; do
    printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' |
        timeout 60 openssl s_client -tls1_3 -connect "127.0.0.1:$PORT" \
            -servername localhost -ign_eof -CAfile "$CA/ca.pem" \
            -key "$D/gone.key" -cert "$D/gone.pem" >"$D/early.log" 2>&1
    if grep -q 'alert certificate revoked' "$D/early.log"; then
        seen=$((seen + 1))
    else
        diag "try $i: $(grep -iE 'alert|errno|error' "$D/early.log" | head -n 2)"
    fi
    i=$((i + 1))
done
assert_eq "$seen" 20 \
    "a revoked device that writes its request at once (TLS 1.3) reads the alert: 20 of 20"
api none GET /healthz
expect 200 "the service answers on"

# --- Over-long requests --------------------------------------------------------------
long=$(head -c 600 /dev/zero | tr '\0' a)
api none GET "/healthz/$long"
expect_problem 414 uri-too-long 'longer than 511 bytes' "a path of 608 bytes: 414 uri-too-long"
api alice GET "/v1/certs/$DAVE/$long"
expect_problem 414 uri-too-long 'longer than 511 bytes' "... for an admin too (no route matched on its start)"
assert_grep "\"GET /v1/certs/$DAVE/a+\" 414 " "$D/access.log" "... logged with its status"
edge=$(head -c 502 /dev/zero | tr '\0' a)
api none GET "/healthz/$edge"
expect_problem 404 not-found '' "a path of 511 bytes is read whole: 404 not-found"
# A header line over max_header_bytes (8192): libevent refuses it.
hdr=$(head -c 9000 /dev/zero | tr '\0' b)
ran=$(grep -c '"GET /v1/certs" 200' "$D/access.log")
for p in /healthz /v1/certs; do
    api alice GET "$p" -H "X-Long: $hdr"
    case $CODE in
    4[0-9][0-9]) ok "a header line of 9000 bytes on $p: a 4xx ($CODE)" ;;
    *) not_ok "a header line of 9000 bytes on $p: a 4xx (status $CODE)" ;;
    esac
done
assert_eq "$(grep -c '"GET /v1/certs" 200' "$D/access.log")" "$ran" "... and the route never ran"
api none GET /healthz
expect 200 "the service answers on"

serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
p11ca audit list --dir "$CA" >"$D/audit.txt"
assert_eq "$(grep -Ec -- "$denied_re" "$D/audit.txt")" 2 \
    "at SIGTERM the count is recorded: a second api-denied entry for the device"
assert_grep "$denied_re +GET /v1/certs .*\"repeated\":199" "$D/audit.txt" \
    "... with the 199 refusals after the first"
check "the audit trail verifies" p11ca audit verify --dir "$CA"

echo "1..$TAP_N"
done_testing
