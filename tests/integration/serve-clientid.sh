#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The client ID a device presents at auto-registration: in the header
# P11ca-Client-Id or the query parameter client_id of the first request of
# its first connection (curl), else the CN, also for a client that sends
# no request at all (openssl s_client, gnutls-cli) or stays idle until
# request_timeout_ms or until SIGTERM; a bad client ID (400 bad-client-id, nothing
# recorded), one held by an activated certificate (409 conflict, nothing
# recorded), the header ignored on a registered certificate's connection.
# The audit entry says where the client ID came from.  Deterministic: the
# record is written at the first request (curl's answer waits for it) or
# at the connection's close, and the tests wait for states, never sleep.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
command -v gnutls-cli >/dev/null || plan_skip "gnutls-cli (gnutls-bin) is not installed"

p11ca cert register-ca --dir "$CA" --name fleet "$D/fleet-ca.pem" >"$D/reg" &&
    FLEET_ID=$(sed 's/registered CA //' "$D/reg")
[ -n "${FLEET_ID:-}" ] || { echo "Bail out! cannot register the fleet CA"; exit 1; }
serve_config "signup_limit = off
request_timeout_ms = 5000"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
api alice PATCH "/v1/cas/$FLEET_ID" -d '{"auto_register": true, "auto_status": "activated"}'
expect 200 .auto_register true "fleet CA: auto-registration on, status activated"

# rec CN: "status client_id" of the certificate with that CN, or "none".
rec() {
    p11ca cert list --dir "$CA" --json |
        jq -r --arg cn "$1" '[.[] | select(.cn == $cn)] |
            if length == 0 then "none" else
            map("\(.status) \(.client_id)") | join(",") end'
}
# wait_rec CN VALUE: until rec CN is VALUE (30 s).
wait_rec() {
    i=0
    while [ "$(rec "$1")" != "$2" ]; do
        [ $i -ge 300 ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
}
# recorded CN VALUE DESC
recorded() {
    if wait_rec "$1" "$2"; then
        ok "$3"
    else
        not_ok "$3 (registry: $(rec "$1"); wanted $2)"
        diag "$(tail -n 5 "$D/serve.log")"
    fi
}
# audited CN SOURCE DESC: the auto-registration's audit entry names SOURCE.
audited() {
    if wait_audit "api:auto-register CN=$1 serial=$(cert_serial "$D/$1.pem") client-id=$2 +register"; then
        ok "$3"
    else
        not_ok "$3"
        diag "$(grep "CN=$1" "$D/audit.txt")"
    fi
}

# --- Presented in a header ---------------------------------------------------
fleet_device hdr1
api hdr1 GET /healthz -H 'P11ca-Client-Id: pump-1'
expect 200 "curl with P11ca-Client-Id: the new device is served at once"
assert_eq "$(rec hdr1)" "activated pump-1" "... recorded with the header's client ID"
audited hdr1 header "... the audit entry says client-id=header"
fleet_device hdr2
api hdr2 GET /healthz -H 'p11ca-client-id: Pump Two/ü'
expect 200 "the header's name in any case, a client ID with spaces and UTF-8"
assert_eq "$(rec hdr2)" "activated Pump Two/ü" "... recorded as it was sent"

# --- Presented in the URL --------------------------------------------------------
fleet_device qry1
QRY1=$(cert_serial "$D/qry1.pem")
api qry1 GET "/v1/certs/$QRY1?client_id=pump%2D3"
expect 200 .client_id pump-3 "client_id=: the device reads its new entry, with that client ID"
assert_eq "$(rec qry1)" "activated pump-3" "... recorded with the query's client ID (URL-decoded)"
audited qry1 query "... the audit entry says client-id=query"
fleet_device qry2
api qry2 GET "/healthz?client_id=pump-4" -H 'P11ca-Client-Id: pump-4'
expect 200 "the header and the parameter may both be given, alike"
assert_eq "$(rec qry2)" "activated pump-4" "... recorded with it"

# --- No client ID: the CN ------------------------------------------------------------
fleet_device cn1
api cn1 GET /healthz
expect 200 "no client ID: served"
assert_eq "$(rec cn1)" "activated cn1" "... recorded with the CN"
audited cn1 cn "... the audit entry says client-id=cn"

# --- No request at all ---------------------------------------------------------------
fleet_device raw1
# shellcheck disable=SC2086 # OPENSSL_ENV: several words
env $OPENSSL_ENV timeout 60 openssl s_client -connect "127.0.0.1:$PORT" \
    -servername localhost -CAfile "$CA/ca.pem" -verify_return_error \
    -key "$D/raw1.key" -cert "$D/raw1.pem" </dev/null >"$D/raw1.log" 2>&1
recorded raw1 "activated raw1" "openssl s_client, handshake and close, no request: recorded with the CN"
audited raw1 cn "... the audit entry says client-id=cn"
fleet_device raw2
timeout 60 gnutls-cli --x509cafile "$CA/ca.pem" --x509certfile "$D/raw2.pem" \
    --x509keyfile "$D/raw2.key" -p "$PORT" localhost </dev/null >"$D/raw2.log" 2>&1
recorded raw2 "activated raw2" "gnutls-cli, no request: recorded with the CN"
# Idle: the connection stays open without a request until
# request_timeout_ms (5 s) cuts it.
fleet_device idle1
setsid sh -c "sleep 120 | env $OPENSSL_ENV openssl s_client -quiet \
    -connect 127.0.0.1:$PORT -CAfile '$CA/ca.pem' -key '$D/idle1.key' \
    -cert '$D/idle1.pem' >'$D/idle1.log' 2>&1" </dev/null &
IDLE=$!
if wait_log "timeout serial=$(cert_serial "$D/idle1.pem")" "$D/access.log" 600; then
    ok "an idle client with no request is cut at request_timeout_ms"
else
    not_ok "an idle client with no request is cut at request_timeout_ms"
    diag "$(tail -n 5 "$D/access.log")"
fi
recorded idle1 "activated idle1" "... and recorded with the CN"
kill -TERM -- "-$IDLE" 2>/dev/null

# --- Bad client IDs ----------------------------------------------------------------------
n0=$(p11ca cert list --dir "$CA" --count)
fleet_device bad1
long=$(head -c 256 /dev/zero | tr '\0' x)
api bad1 GET /healthz -H "P11ca-Client-Id: $long"
expect_problem 400 bad-client-id 'a client ID has 1 to 255 bytes; this one has 256; nothing was recorded' \
    "a 256-byte client ID: 400 bad-client-id"
if grep -qi '^connection: close' "$D/hdr"; then
    ok "... and the connection is closed"
else
    not_ok "... and the connection is closed"
fi
api bad1 GET '/healthz?client_id=a%01b'
expect_problem 400 bad-client-id 'no control character' "a control character (URL-encoded): 400"
api bad1 GET /healthz -H 'P11ca-Client-Id;'
expect_problem 400 bad-client-id '1 to 255 bytes; this one has 0' "an empty client ID: 400"
api bad1 GET '/healthz?client_id=a' -H 'P11ca-Client-Id: b'
expect_problem 400 bad-client-id 'name different client IDs' "the header and the parameter differ: 400"
api bad1 GET '/healthz?client_id=a%ffb'
expect_problem 400 bad-client-id 'UTF-8 text' "bytes that are not UTF-8 (URL-encoded): 400"
api bad1 GET '/healthz?client_id=a&client_id=a'
expect_problem 400 bad-client-id 'give the client ID once' "the parameter twice: 400"
api bad1 GET /healthz -H 'P11ca-Client-Id: a' -H 'P11ca-Client-Id: a'
expect_problem 400 bad-client-id 'give the client ID once' "the header twice: 400"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" "... nothing recorded for any of them"
api bad1 GET /healthz -H "P11ca-Client-Id: $(head -c 255 /dev/zero | tr '\0' y)"
expect 200 "then 255 bytes: served (the refused tries took no sign-up and left nothing behind)"
assert_eq "$(rec bad1 | cut -c1-14)" "activated yyyy" "... recorded with it"

# --- A client ID held by an activated certificate ------------------------------------
n0=$(p11ca cert list --dir "$CA" --count)
fleet_device taken1
api taken1 GET /healthz -H 'P11ca-Client-Id: pump-1'
expect_problem 409 conflict 'client ID "pump-1" is held by activated certificate' \
    "a client ID held by an activated certificate: 409 conflict"
assert_eq "$(rec taken1) $(p11ca cert list --dir "$CA" --count)" "none $n0" "... nothing recorded"
api taken1 GET /healthz -H 'P11ca-Client-Id: pump-9'
expect 200 "the same device with a free client ID: served"
assert_eq "$(rec taken1)" "activated pump-9" "... recorded with it"

# --- A registered certificate: the header is ignored ----------------------------------------
api hdr1 GET "/v1/certs/$(cert_serial "$D/hdr1.pem")" -H 'P11ca-Client-Id: other'
expect 200 .client_id pump-1 "a registered device's header is ignored: its client ID stays"
api cn1 GET "/healthz?client_id=other"
expect 200 "... and so is the parameter on a route that has none"
assert_eq "$(rec cn1)" "activated cn1" "... nothing changed"
api carol GET "/v1/certs?client_id=pump-1"
expect 200 '.items | length' 1 "an operator's client_id on GET /v1/certs is still the filter"

# --- SIGTERM with a connection open and no request ---------------------------------
# TLS 1.2: s_client's handshake ends with the service's Finished, sent
# once the service has checked the client's: the registration is decided
# when s_client says so.
fleet_device term1
setsid sh -c "sleep 120 | env $OPENSSL_ENV openssl s_client -tls1_2 \
    -connect 127.0.0.1:$PORT -CAfile '$CA/ca.pem' -key '$D/term1.key' \
    -cert '$D/term1.pem' >'$D/term1.log' 2>&1" </dev/null &
TERM1=$!
wait_log 'Verify return code' "$D/term1.log" 600 ||
    diag "s_client: $(tail -n 3 "$D/term1.log")"
assert_eq "$(rec term1)" none "a connection open without a request: nothing written yet"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
assert_eq "$(rec term1)" "activated term1" \
    "... the registration it decided was written with the CN at SIGTERM"
kill -TERM -- "-$TERM1" 2>/dev/null
check "the audit trail is intact" p11ca audit verify --dir "$CA"

echo "1..$TAP_N"
done_testing
