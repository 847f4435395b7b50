#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2034,SC2086 # settings read by serve-setup.sh; OPENSSL_ENV holds several assignments
# p11ca serve answers OCSP (RFC 6960 Appendix A, RFC 5019) on the plain
# ocsp_listen and on the TLS listener without a client certificate:
# openssl ocsp says good (nonce echoed, or from the pre-signed cache; a
# response stapled by openssl s_server -status_url),
# revoked with the reason after `p11ca cert revoke` in another process and
# at once after a revocation through the API, unknown for a serial the CA
# never issued, unauthorized for another issuer; GET of the URL-encoded
# base64 (%2B %2F %3D and raw '/'); RFC 5019 cache headers consistent with
# the response; garbage, truncated, empty and over-size requests answered
# malformedRequest or 413, and the service healthy after them; only OCSP
# without TLS, a path over 511 bytes 414 there too; ocsp_path (not one
# that hides /healthz or /metrics) and bad ocsp_* keys.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

OPORT=$(free_port)
serve_config "ocsp_listen = 127.0.0.1:$OPORT"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
if wait_log "OCSP on http://127\.0\.0\.1:$OPORT/ocsp" "$D/serve.log"; then
    ok "the log names the OCSP listener"
else
    not_ok "the log names the OCSP listener"
fi
URL=http://127.0.0.1:$OPORT/ocsp

for n in dev dev2 dev3; do
    issue_key "$n" "/CN=$n/O=p11ca tests" client ||
        { echo "Bail out! cannot issue $n"; exit 1; }
done

# ocsp_q CERT [OPTIONS]: openssl ocsp asks $URL about CERT (a nonce unless
# -no_nonce), the response verified up to the CA; output in $D/ocsp.out.
ocsp_q() {
    cert=$1
    shift
    openssl ocsp -issuer "$CA/ca.pem" -cert "$cert" -url "$URL" \
        -CAfile "$CA/ca.pem" -timeout 30 "$@" >"$D/ocsp.out" 2>&1
}
# says REGEX DESC: the last openssl ocsp output verified and matched.
says() {
    if grep -q '^Response verify OK' "$D/ocsp.out" &&
        grep -Eq -- "$1" "$D/ocsp.out"; then
        ok "$2"
    else
        not_ok "$2"
        diag "$(cat "$D/ocsp.out")"
    fi
}
# oresp FILE: openssl's text of a response file, unverified.
oresp() {
    openssl ocsp -respin "$1" -resp_text -noverify 2>&1
}
# post FILE [CURL ARGS]: POST FILE to $URL; CODE, $D/resp, $D/hdr.
post() {
    f=$1
    shift
    CODE=$(curl -sS -o "$D/resp" -D "$D/hdr" -w '%{http_code}' \
        -H 'Content-Type: application/ocsp-request' --data-binary "@$f" \
        "$@" "$URL" 2>"$D/curl.err") || CODE="curl-failed($(cat "$D/curl.err"))"
}
# malformed DESC: the last answer is HTTP 200 with malformedRequest.
malformed() {
    if [ "$CODE" = 200 ] &&
        grep -qi '^content-type: application/ocsp-response' "$D/hdr" &&
        oresp "$D/resp" | grep -q 'Responder Error: malformedrequest (1)'; then
        ok "$1"
    else
        not_ok "$1 (status $CODE)"
        diag "$(oresp "$D/resp" | head -5)"
    fi
}
# urlenc: the base64 on stdin, URL-encoded (RFC 6960 A.1).
urlenc() {
    sed -e 's/%/%25/g' -e 's/+/%2B/g' -e 's|/|%2F|g' -e 's/=/%3D/g'
}

# --- good -----------------------------------------------------------------
ocsp_q "$D/dev.pem"
if grep -q "^$D/dev.pem: good" "$D/ocsp.out" &&
    grep -q '^Response verify OK' "$D/ocsp.out" &&
    ! grep -qi 'nonce' "$D/ocsp.out"; then
    ok "POST with a nonce: good, verified, the nonce echoed (openssl checks it)"
else
    not_ok "POST with a nonce: good, verified, the nonce echoed"
    diag "$(cat "$D/ocsp.out")"
fi
ocsp_q "$D/dev.pem" -no_nonce -respout "$D/c1.der"
says "^$D/dev.pem: good" "POST without a nonce: good"
ocsp_q "$D/dev.pem" -no_nonce -respout "$D/c2.der"
if cmp -s "$D/c1.der" "$D/c2.der" && grep -q ': good' "$D/ocsp.out"; then
    ok "... asked again: the same signed bytes (the pre-signed cache)"
else
    not_ok "... asked again: the same signed bytes (the pre-signed cache)"
fi
HITS=$(metric 'p11ca_ocsp_cache_lookups_total{result="hit"}')
if [ -n "$HITS" ] && [ "$HITS" -ge 1 ] &&
    [ "$(metric p11ca_ocsp_cache_responses)" -ge 1 ]; then
    ok "... /metrics counts the cache hit ($HITS) and the cached response"
else
    not_ok "... /metrics counts the cache hit ('$HITS')"
fi
openssl ocsp -issuer "$CA/ca.pem" -sha256 -cert "$D/dev.pem" -url "$URL" \
    -CAfile "$CA/ca.pem" -timeout 30 -no_nonce >"$D/ocsp.out" 2>&1
says "^$D/dev.pem: good" "a SHA-256 CertID: good"
# The TLS listener answers without a client certificate (relying parties
# have none).
openssl ocsp -issuer "$CA/ca.pem" -cert "$D/dev.pem" \
    -url "https://127.0.0.1:$PORT/ocsp" -CAfile "$CA/ca.pem" -timeout 30 \
    >"$D/ocsp.out" 2>&1
says "^$D/dev.pem: good" "the TLS listener answers without a client certificate"

# OCSP stapling: openssl s_server fetches its own certificate's status
# from the responder and staples it (RFC 6066); s_client -status shows it.
issue_key web /CN=localhost server DNS:localhost,IP:127.0.0.1 ||
    { echo "Bail out! cannot issue the web server's certificate"; exit 1; }
SPORT=$(free_port)
start_server_ready "$D/s_server.log" -accept "$SPORT" -www -cert "$D/web.pem" \
    -key "$D/web.key" -CAfile "$CA/ca.pem" -status_url "$URL"
env ${OPENSSL_ENV:-} timeout 60 openssl s_client -connect "127.0.0.1:$SPORT" \
    -servername localhost -status -CAfile "$CA/ca.pem" </dev/null \
    >"$D/s_client.log" 2>&1
if grep -q 'OCSP Response Status: successful' "$D/s_client.log" &&
    grep -q 'Cert Status: good' "$D/s_client.log"; then
    ok "openssl s_server -status_url staples our response: s_client -status says good"
else
    not_ok "openssl s_server -status_url staples our response"
    diag "$(grep -i 'ocsp\|status' "$D/s_client.log" | head -10)"
fi
stop_servers

# --- GET (RFC 6960 A.1, RFC 5019) -------------------------------------------
openssl ocsp -issuer "$CA/ca.pem" -cert "$D/dev.pem" -no_nonce \
    -reqout "$D/req.der" >/dev/null 2>&1
ENC=$(base64 -w0 "$D/req.der" | urlenc)
CODE=$(curl -sS -o "$D/get.der" -D "$D/hdr" -w '%{http_code}' \
    "$URL/$ENC" 2>"$D/curl.err")
openssl ocsp -respin "$D/get.der" -issuer "$CA/ca.pem" -cert "$D/dev.pem" \
    -CAfile "$CA/ca.pem" -no_nonce >"$D/ocsp.out" 2>&1
if [ "$CODE" = 200 ]; then
    says "^$D/dev.pem: good" "GET of the URL-encoded base64: good"
else
    not_ok "GET of the URL-encoded base64: good (status $CODE)"
fi
check "... as application/ocsp-response" \
    grep -qi '^content-type: application/ocsp-response' "$D/hdr"

# RFC 5019 headers, consistent with the response.
hdr() { sed -n "s/^$1: *//Ip" "$D/hdr" | tr -d '\r'; }
NOW=$(date +%s)
NEXT=$(date -d "$(sed -n 's/^[[:space:]]*Next Update: //p' "$D/ocsp.out")" +%s)
THIS=$(date -d "$(sed -n 's/^[[:space:]]*This Update: //p' "$D/ocsp.out")" +%s)
[ "$NEXT" -gt "$THIS" ] || not_ok "cannot read the response's times"
CC=$(hdr Cache-Control)
AGE=$(echo "$CC" | sed -n 's/^max-age=\([0-9]*\), public, no-transform, must-revalidate$/\1/p')
if [ -n "$AGE" ] && [ "$AGE" -gt 0 ] && [ "$AGE" -le $((NEXT - NOW + 1)) ]; then
    ok "Cache-Control: max-age=$AGE, public, no-transform, must-revalidate (at most nextUpdate - now)"
else
    not_ok "Cache-Control consistent with nextUpdate ('$CC'; nextUpdate - now = $((NEXT - NOW)))"
fi
check "Expires is nextUpdate" \
    test "$(date -d "$(hdr Expires)" +%s)" = "$NEXT"
check "Last-Modified is thisUpdate" \
    test "$(date -d "$(hdr Last-Modified)" +%s)" = "$THIS"
check "ETag is the hex SHA-256 of the response" \
    test "$(hdr ETag)" = "\"$(sha256sum "$D/get.der" | cut -d' ' -f1)\""
check "a Date header" test -n "$(hdr Date)"

# Raw '/' (and '+', '=') in the path, as many clients send it: a request
# with a nonce whose base64 has a '/' in it (a few tries at most).
i=0
RAW=
while [ $i -lt 100 ]; do
    openssl ocsp -issuer "$CA/ca.pem" -cert "$D/dev.pem" \
        -reqout "$D/nreq.der" >/dev/null 2>&1
    RAW=$(base64 -w0 "$D/nreq.der")
    case $RAW in */*) break ;; esac
    i=$((i + 1))
done
# nonce_check RESP DESC: openssl ocsp checks RESP against nreq.der, its
# nonce included (with -reqin, no -cert: that would make a new request).
nonce_check() {
    openssl ocsp -reqin "$D/nreq.der" -respin "$1" -issuer "$CA/ca.pem" \
        -CAfile "$CA/ca.pem" -resp_text >"$D/ocsp.out" 2>&1
    if [ "$CODE" = 200 ] && ! grep -qi 'nonce.*error\|no nonce' "$D/ocsp.out" &&
        grep -q 'OCSP Nonce' "$D/ocsp.out"; then
        says "Cert Status: good" "$2"
    else
        not_ok "$2 (status $CODE)"
        diag "$(grep -v '^ ' "$D/ocsp.out" | head -20)"
    fi
}
CODE=$(curl -sS -o "$D/get2.der" -w '%{http_code}' --path-as-is "$URL/$RAW" \
    2>"$D/curl.err")
nonce_check "$D/get2.der" "GET with raw '/' in the base64 and a nonce: good, the nonce echoed"
CODE=$(curl -sS -o "$D/get3.der" -w '%{http_code}' \
    "$URL/$(echo "$RAW" | urlenc)" 2>"$D/curl.err")
nonce_check "$D/get3.der" "... the same request URL-encoded (%2F %2B %3D)"

# --- revoked ----------------------------------------------------------------
# dev's no-nonce response is in the cache; p11ca cert revoke, another
# process, is seen through the registry's audit trail.
DEV=$(cert_serial "$D/dev.pem")
check "p11ca cert revoke (another process)" \
    p11ca cert revoke --dir "$CA" --reason keyCompromise "$DEV"
# Bounded by time, not by a number of queries (30 s: a slow machine or
# a sanitizer build still sees several refresh rounds).
T0=$(date +%s%N)
i=0
while :; do
    ocsp_q "$D/dev.pem" -no_nonce
    grep -q ': revoked' "$D/ocsp.out" && break
    [ $((($(date +%s%N) - T0) / 1000000)) -ge 30000 ] && break
    i=$((i + 1))
done
MS=$((($(date +%s%N) - T0) / 1000000))
diag "revoked seen after ${MS} ms ($i queries before it)"
says "^$D/dev.pem: revoked" "after p11ca cert revoke: revoked (without a nonce, from the cache)"
check "... with the reason" grep -q 'Reason: keyCompromise' "$D/ocsp.out"
ocsp_q "$D/dev.pem"
says "^$D/dev.pem: revoked" "... and with a nonce"

# Through the API: at once (the service re-signs before it answers).
ocsp_q "$D/dev2.pem" -no_nonce
says "^$D/dev2.pem: good" "dev2: good (cached)"
DEV2=$(cert_serial "$D/dev2.pem")
api bob POST "/v1/certs/$DEV2/revoke" -d '{"reason": "superseded"}'
expect 200 .status revoked "dev2 revoked through the API"
ocsp_q "$D/dev2.pem" -no_nonce
says "^$D/dev2.pem: revoked" "... the next query says revoked"
check "... with the reason" grep -q 'Reason: superseded' "$D/ocsp.out"

# --- unknown, unauthorized ----------------------------------------------------
fleet_device fleet1 file 0A0B0C0D || { echo "Bail out! no fleet device"; exit 1; }
openssl ocsp -issuer "$CA/ca.pem" -serial 0x0A0B0C0D -url "$URL" \
    -CAfile "$CA/ca.pem" -timeout 30 >"$D/ocsp.out" 2>&1
says '^0x0A0B0C0D: unknown' "a serial of another CA, asked of this one: unknown"
openssl ocsp -issuer "$D/fleet-ca.pem" -cert "$D/fleet1.pem" -url "$URL" \
    -CAfile "$CA/ca.pem" -timeout 30 >"$D/ocsp.out" 2>&1
check "another issuer's CertID: unauthorized" \
    grep -q 'Responder Error: unauthorized (6)' "$D/ocsp.out"

# --- bad requests --------------------------------------------------------------
printf 'this is not DER' >"$D/garbage"
post "$D/garbage"
malformed "garbage: malformedRequest (HTTP 200)"
head -c 40 "$D/req.der" >"$D/trunc.der"
post "$D/trunc.der"
malformed "a truncated request: malformedRequest"
: >"$D/empty"
post "$D/empty"
malformed "an empty body: malformedRequest"
CODE=$(curl -sS -o "$D/resp" -D "$D/hdr" -w '%{http_code}' "$URL/%21%21%21" \
    2>"$D/curl.err")
malformed "GET of what is not base64: malformedRequest"
CODE=$(curl -sS -o "$D/resp" -D "$D/hdr" -w '%{http_code}' "$URL/" \
    2>"$D/curl.err")
malformed "GET without a request: malformedRequest"
head -c 70000 /dev/zero >"$D/70k"
post "$D/70k"
if [ "$CODE" = 413 ] && grep -q 'at most 65536 are read' "$D/resp"; then
    ok "a 70 kB body: 413"
else
    not_ok "a 70 kB body: 413 (status $CODE)"
fi
head -c 1048576 /dev/zero >"$D/1m"
post "$D/1m"
case $CODE in
413 | curl-failed*) ok "a 1 MB body: refused (413 or the connection closed: $CODE)" ;;
*) not_ok "a 1 MB body: refused (status $CODE)" ;;
esac
CODE=$(curl -sS -o "$D/resp" -w '%{http_code}' -H 'Content-Type: text/plain' \
    --data-binary "@$D/req.der" "$URL" 2>"$D/curl.err")
if [ "$CODE" = 415 ] && grep -q 'application/ocsp-request' "$D/resp"; then
    ok "another Content-Type: 415"
else
    not_ok "another Content-Type: 415 (status $CODE)"
fi
api none DELETE /ocsp
if [ "$CODE" = 405 ] && grep -qi '^allow: GET, POST' "$D/hdr"; then
    ok "DELETE /ocsp: 405, Allow: GET, POST"
else
    not_ok "DELETE /ocsp: 405 (status $CODE)"
fi
CODE=$(curl -sS -o "$D/resp" -w '%{http_code}' \
    "http://127.0.0.1:$OPORT/v1/certs" 2>"$D/curl.err")
check "the API is not served without TLS (404)" test "$CODE" = 404
CODE=$(curl -sS -o "$D/resp" -w '%{http_code}' \
    "http://127.0.0.1:$OPORT/ocspx" 2>"$D/curl.err")
check "... nor a path that only begins like ocsp_path" test "$CODE" = 404
long=$(head -c 600 /dev/zero | tr '\0' a)
for p in ocsp v1; do
    CODE=$(curl -sS -o "$D/resp" -D "$D/hdr" -w '%{http_code}' \
        "http://127.0.0.1:$OPORT/$p/$long" 2>"$D/curl.err")
    if [ "$CODE" = 414 ] && [ "$(jq -r .code "$D/resp")" = uri-too-long ] &&
        grep -qi '^content-type: application/problem+json' "$D/hdr"; then
        ok "ocsp_listen: a path of 600 bytes under /$p: 414 uri-too-long"
    else
        not_ok "ocsp_listen: a path of 600 bytes under /$p: 414 uri-too-long (status $CODE)"
    fi
done
ocsp_q "$D/dev3.pem"
says "^$D/dev3.pem: good" "after the bad requests: the responder answers"
api none GET /healthz
expect 200 "... and the service is healthy"
check "... and its process runs" kill -0 "$SERVE_PID"
check "no crash in the log" sh -c "! grep -Eq 'AddressSanitizer|runtime error|Segmentation' '$D/serve.log'"

serve_stop
check "SIGTERM: exit 0" test "$SERVE_RC" = 0

# --- a token failure: tryLater, then recovery --------------------------------
# The service's token calls go through the fault injector; a first start
# counts the signatures of a start (the CRL exists by now: none is made),
# the second fails the two after them (the signature and its retry).
faulty_env ''
serve_config "ocsp_listen = 127.0.0.1:$OPORT"
rm -f "$D/calls.log"
serve_start || { echo "Bail out! the service did not start (faulty module)"; exit 1; }
N0=$(grep -c ' C_Sign ' "$D/calls.log")
serve_stop
faulty_env "C_Sign:$((N0 + 1))-$((N0 + 2)):CKR_DEVICE_REMOVED"
rm -f "$D/calls.log"
serve_start || { echo "Bail out! the service did not start (faulty module)"; exit 1; }
post "$D/nreq.der"
if [ "$CODE" = 200 ] && oresp "$D/resp" | grep -q 'Responder Error: trylater (3)' &&
    grep -qi '^cache-control: no-store' "$D/hdr"; then
    ok "C_Sign fails (CKR_DEVICE_REMOVED, and its retry): tryLater, not cached"
else
    not_ok "C_Sign fails: tryLater (status $CODE)"
    diag "$(oresp "$D/resp" | head -3)"
fi
check "... the log says why" grep -q 'OCSP: tryLater: ' "$D/serve.log"
check "... the injected failures were the signatures" \
    grep -q 'C_Sign CKR_DEVICE_REMOVED \[injected\]' "$D/calls.log"
ocsp_q "$D/dev3.pem"
says "^$D/dev3.pem: good" "the next request: signed again (the token is back)"
serve_stop
check "SIGTERM: exit 0 (faulty module)" test "$SERVE_RC" = 0
SERVE_ENV=

# --- ocsp_path, and bad keys ---------------------------------------------------
serve_config "ocsp_path = /status/ocsp
ocsp_listen = 127.0.0.1:$OPORT"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
URL=http://127.0.0.1:$OPORT/status/ocsp
ocsp_q "$D/dev3.pem"
says "^$D/dev3.pem: good" "ocsp_path = /status/ocsp: answered there"
CODE=$(curl -sS -o "$D/resp" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
    --data-binary "@$D/req.der" "http://127.0.0.1:$OPORT/ocsp" 2>"$D/curl.err")
check "... and not at /ocsp (404)" test "$CODE" = 404
serve_stop
check "SIGTERM: exit 0 (again)" test "$SERVE_RC" = 0

refuse() {
    serve_config "$3"
    should_fail 2 "$1" "$2" "$P11CA" serve --dir "$CA"
}
refuse 'ocsp_path = ocsp: an absolute path such as /ocsp' "a relative ocsp_path" \
    "ocsp_path = ocsp"
refuse 'ocsp_path = /v1/ocsp: an absolute path' "an ocsp_path under /v1" \
    "ocsp_path = /v1/ocsp"
refuse 'ocsp_path = /ocsp/: an absolute path' "an ocsp_path ending in /" \
    "ocsp_path = /ocsp/"
refuse 'ocsp_path = /healthz: the responder would take the requests of GET /healthz; choose another path' \
    "an ocsp_path that would hide /healthz" "ocsp_path = /healthz"
refuse 'ocsp_path = /metrics: the responder would take the requests of GET /metrics' \
    "an ocsp_path that would hide /metrics" "ocsp_path = /metrics"
refuse 'ocsp_listen address "localhost:80": write ADDRESS:PORT' \
    "a host name in ocsp_listen" "ocsp_listen = localhost:80"
refuse "cannot listen \\(ocsp_listen\\) on 127.0.0.1:$OPORT: Address already in use" \
    "an ocsp_listen address twice" "ocsp_listen = 127.0.0.1:$OPORT, 127.0.0.1:$OPORT"

echo "1..$TAP_N"
done_testing
