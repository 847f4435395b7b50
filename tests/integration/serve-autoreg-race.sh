#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Two first connections of one new device: the second joins the
# auto-registration the first started and gets what the first got, even
# when the CA's auto_status changed in between.  Made deterministic with
# the fault-injecting module: the service's one worker is held in C_Sign
# (a CRL) while a gate file exists, so the registration waits in the queue;
# a second service on the same registry changes the CA (PATCH /v1/cas) and
# SIGHUP makes the first read it.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"
B_PID=""
trap '[ -z "$B_PID" ] || kill -KILL "$B_PID" 2>/dev/null; serve_kill; stop_servers; [ -z "$REG_LOC" ] || pg_stop; rm -rf "$TT"' EXIT

# TLS with a key file: the gate holds every C_Sign of the service.
issue_key tlsfile /CN=localhost server DNS:localhost,IP:127.0.0.1,IP:::1 ||
    { echo "Bail out! cannot issue the TLS certificate file"; exit 1; }
SERVE_TLS_KEY=$D/tlsfile.key
SERVE_TLS_CERT=$D/tlsfile.pem
issue_key r1 /CN=r1 client
p11ca crl --dir "$CA" --out "$D/first.crl" >/dev/null 2>&1
SERVE_WORKERS=1
serve_config ""
faulty_env 'C_Sign:*:hold'
serve_start || { echo "Bail out! the service did not start"; exit 1; }
PORT_A=$PORT


# on_b CALL...: an api call to the second service.
on_b() {
    PORT=$PORT_B
    api "$@"
    PORT=$PORT_A
}
# set_auto STATUS DESC: the fleet CA's auto_status through the second
# service, then SIGHUP makes the first read it.
set_auto() {
    on_b alice PATCH "/v1/cas/$FLEET_ID" -d "{\"auto_status\": \"$1\"}"
    expect 200 .auto_status "$1" "$2"
    n=$(grep -c 'SIGHUP: reloaded' "$D/serve.log")
    kill -HUP "$SERVE_PID"
    wait_log "SIGHUP: reloaded" "$D/serve.log" &&
        until [ "$(grep -c 'SIGHUP: reloaded' "$D/serve.log")" -gt "$n" ]; do
            sleep 0.05
        done
    ok "... and the held service reads it (SIGHUP)"
}
# connect NAME N: NAME's N-th connection in the background (GET its
# entry); status in $D/NAME.N.code.
connect() {
    curl -sS --max-time 120 -o "$D/$1.$2.body" -w '%{http_code}' \
        --cacert "$CA/ca.pem" \
        --cert "$D/$1.pem" --key "$D/$1.key" \
        "https://127.0.0.1:$PORT_A/v1/certs/$(cert_serial "$D/$1.pem")" \
        >"$D/$1.$2.code" 2>"$D/$1.$2.err" &
    eval "pid_$1_$2=\$!"
}

# connected NAME N DESC: connect, and wait until the service has checked
# the certificate (before the registration is made).
connected() {
    h=$(metric p11ca_tls_client_certificates_total)
    connect "$1" "$2"
    if wait_metric p11ca_tls_client_certificates_total $((h + 1)); then
        ok "$3"
    else
        not_ok "$3"
    fi
}

FLEET=$(jq -Rs . "$D/fleet-ca.pem")
api alice POST /v1/cas -d "{\"certificate\": $FLEET, \"name\": \"fleet\", \"auto_register\": true, \"auto_status\": \"activated\"}"
expect 201 .auto_status activated "the fleet CA, auto-registration on, status activated"
FLEET_ID=$(jq -r .id "$D/body")
fleet_device fx
fleet_device fy
FX=$(cert_serial "$D/fx.pem")
FY=$(cert_serial "$D/fy.pem")

# The second service: no fault, another port, the same registry (started
# after the fleet CA is registered: it reads the CAs at its start).
PORT_B=$(free_port)
"$P11CA" serve --dir "$CA" --listen "127.0.0.1:$PORT_B" >"$D/serve-b.log" 2>&1 </dev/null &
B_PID=$!
wait_log 'listening on https://127\.0\.0\.1:' "$D/serve-b.log" ||
    { echo "Bail out! the second service did not start"; exit 1; }

touch "$D/gate"
api bob POST "/v1/certs/$(cert_serial "$D/r1.pem")/revoke"
expect 200 .status revoked "a revocation; the CRL that follows is held in C_Sign"
if wait_metric p11ca_worker_jobs_running 1; then
    ok "the one worker is held"
else
    not_ok "the one worker is held"
fi

# --- Admitted first: the second connection is admitted too ----------------------
connect fy 1
wait_metric p11ca_worker_queue_depth 1 ||
    diag "queue depth $(metric p11ca_worker_queue_depth)"
assert_eq "$(metric p11ca_worker_queue_depth)" 1 "fy's first connection: its registration (activated) waits for the worker"
set_auto registered-not-activated "the fleet CA's new devices now wait for an operator"
connected fy 2 "fy's second connection: its certificate is checked"

# --- Refused first: the second connection is refused too -------------------------
api fx GET "/v1/certs/$FX" --max-time 60
expect_problem 403 not-activated 'auto-registered as registered-not-activated' \
    "fx's first connection is refused after its handshake: 403 not-activated"
assert_eq "$(metric p11ca_worker_queue_depth)" 2 "... and its registration waits behind fy's"
set_auto activated "the fleet CA's new devices are activated now"
connected fx 2 "fx's second connection: its certificate is checked"

# The token answers.
rm -f "$D/gate"
# shellcheck disable=SC2154 # set by connect through eval
wait "$pid_fy_1" "$pid_fy_2" "$pid_fx_2"
assert_eq "$(cat "$D/fy.1.code")" 200 "fy's first connection is served once it is recorded"
assert_eq "$(cat "$D/fy.2.code")" 200 "fy's second connection is served too (it joined the first's registration)"
assert_no_grep "refused serial=$FY " "$D/access.log" "fy was never refused"
assert_eq "$(jq -r .status "$D/fy.2.body")" activated "... and reads its entry: activated"
case $(cat "$D/fx.2.code") in
200) not_ok "fx's second connection is refused like the first (it was served)" ;;
*) ok "fx's second connection is refused like the first" ;;
esac
assert_eq "$(grep -c "refused serial=$FX reason=not-activated" "$D/access.log")" 2 \
    "... both as not-activated"
p11ca cert show --dir "$CA" --json "$FX" >"$D/fx.json" 2>&1
p11ca cert show --dir "$CA" --json "$FY" >"$D/fy.json" 2>&1
assert_eq "$(jq -r .status "$D/fx.json") $(jq -r .status "$D/fy.json")" \
    "registered-not-activated activated" \
    "the registry: fx registered-not-activated, fy activated (each as its first connection)"
assert_eq "$(metric 'p11ca_signups_total{kind="auto-registration"}')" 2 \
    "two auto-registrations, one per device"

kill -TERM "$B_PID"
wait "$B_PID"
assert_eq "$?" 0 "the second service: SIGTERM, exit status 0"
B_PID=""
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

echo "1..$TAP_N"
done_testing
