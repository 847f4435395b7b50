#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca serve's limits: sign-ups per CA (a burst of 100 registrations
# records exactly the bucket's size, the rest 429 with Retry-After; a burst
# of auto-registrations the same at the handshake), a slow-loris client
# that does not delay others and is cut at request_timeout_ms, the
# connection cap (a new client waits until one closes), the header limit.
# Behind the buckets, the registry's sign-up limit (rate_limit of ca.cnf)
# refuses what its second cannot take, with 429 too.  Deterministic: the
# buckets never refill (RATE 0), the limits come from ca.cnf through
# SIGHUP, the registry's clock is the test clock, waits are for log lines
# and states.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

# Two external CAs, registered before the service starts (ids 2 and 3).
p11ca cert register-ca --dir "$CA" --name fleet "$D/fleet-ca.pem" >"$D/reg" &&
    FLEET_ID=$(sed 's/registered CA //' "$D/reg")
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/fleet2-ca.key" -subj "/CN=Fleet Two CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -out "$D/fleet2-ca.pem" 2>/dev/null
p11ca cert register-ca --dir "$CA" --name fleet2 "$D/fleet2-ca.pem" >"$D/reg" &&
    FLEET2_ID=$(sed 's/registered CA //' "$D/reg")
if [ -z "${FLEET_ID:-}" ] || [ -z "${FLEET2_ID:-}" ]; then
    echo "Bail out! cannot register the fleet CAs"
    exit 1
fi

# limits_config TIMEOUT_MS MAX_CONNECTIONS
limits_config() {
    # shellcheck disable=SC2034 # read by serve_config
    SERVE_SECTIONS="[ serve_signup ]
ca.$FLEET_ID = 0/10
ca.$FLEET2_ID = 0/3"
    serve_config "signup_limits = serve_signup
request_timeout_ms = $1
max_connections = $2"
    PORT=$KEEP_PORT
    sed -i "s/^listen = .*/listen = $(serve_listen "$PORT")/" "$CA/ca.cnf"
}
KEEP_PORT=$(free_port)
limits_config 600000 100
serve_start || { echo "Bail out! the service did not start"; exit 1; }

# --- A burst of 100 registrations --------------------------------------------
# One key, 100 certificates of the fleet CA (serial and CN differ).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/burst.key" -subj /CN=burst -out "$D/burst.csr" 2>/dev/null
mkdir -p "$D/burst"
i=1
while [ $i -le 100 ]; do
    openssl x509 -req -in "$D/burst.csr" -subj "/CN=burst-$i" -CA "$D/fleet-ca.pem" \
        -CAkey "$D/fleet-ca.key" -set_serial "$((0x100000 + i))" -days 30 \
        -out "$D/burst/$i.pem" 2>/dev/null
    jq -Rs '{certificate: .}' "$D/burst/$i.pem" >"$D/burst/$i.json"
    i=$((i + 1))
done
n0=$(p11ca cert list --dir "$CA" --count)
# Ten callers at a time, each with its own output files.
post_one() {
    curl -sS -o "$D/burst/$1.body" -D "$D/burst/$1.hdr" -w '%{http_code}' \
        --cacert "$CA/ca.pem" --cert "$D/bob.pem" --key "$D/bob.key" \
        -X POST --data-binary @"$D/burst/$1.json" \
        "https://127.0.0.1:$PORT/v1/certs" >"$D/burst/$1.code" 2>&1
}
i=1
while [ $i -le 100 ]; do
    pids=""
    for k in 0 1 2 3 4 5 6 7 8 9; do
        post_one $((i + k)) &
        pids="$pids $!"
    done
    for p in $pids; do
        wait "$p"
    done
    i=$((i + 10))
done
created=$(grep -lx 201 "$D/burst"/*.code | wc -l)
limited=$(grep -lx 429 "$D/burst"/*.code | wc -l)
assert_eq "$created $limited" "10 90" "a burst of 100 registrations: 10 created, 90 refused with 429"
with_retry=$(grep -lEi '^retry-after: 3600' "$D/burst"/*.hdr | wc -l)
problems=$(grep -l '"code":"rate-limited"' "$D/burst"/*.body | wc -l)
assert_eq "$with_retry $problems" "90 90" "every 429 has Retry-After and a rate-limited problem"
assert_eq "$(p11ca cert list --dir "$CA" --count)" $((n0 + 10)) \
    "exactly 10 certificates recorded, nothing else"
api none GET /metrics
if grep -q '^p11ca_signups_total{kind="registration"} 10$' "$D/body" &&
    grep -q '^p11ca_refusals_total{reason="rate-limit"} 90$' "$D/body"; then
    ok "metrics: 10 sign-ups, 90 refusals for the rate limit"
else
    not_ok "metrics: 10 sign-ups, 90 refusals for the rate limit"
    diag "$(grep -E 'signups|rate-limit' "$D/body")"
fi

# --- A burst of auto-registrations at the handshake ----------------------------
api alice PATCH "/v1/cas/$FLEET2_ID" -d '{"auto_register": true, "auto_status": "activated"}'
expect 200 .auto_register true "fleet 2: auto-registration on"
served=0
i=1
while [ $i -le 5 ]; do
    openssl x509 -req -in "$D/burst.csr" -subj "/CN=auto-$i" -CA "$D/fleet2-ca.pem" \
        -CAkey "$D/fleet2-ca.key" -set_serial "$((0x200000 + i))" -days 30 \
        -out "$D/auto-$i.pem" 2>/dev/null
    tls_client tls1_3 "$D/burst.key" "$D/auto-$i.pem"
    grep -q '^HTTP/1.1 200' "$D/client.log" && served=$((served + 1))
    i=$((i + 1))
done
assert_eq "$served" 3 "5 new devices of fleet 2 (limit 0/3): 3 served"
assert_eq "$(grep -c 'reason=rate-limit (sign-up limit of CA' "$D/access.log")" 2 \
    "2 handshakes refused for the sign-up limit, with the reason in the access log"
assert_eq "$(p11ca cert list --dir "$CA" --json |
    jq '[.[] | select((.cn // "") | startswith("auto-"))] | length')" 3 \
    "exactly 3 recorded"

# --- Slow loris ---------------------------------------------------------------------
# dribble NAME: a TLS client that sends a header one byte every 0.2 s and
# never ends it; DRIBBLE_PID is its process group.
dribble() {
    setsid sh -c "while :; do printf X; sleep 0.2; done |
        env $OPENSSL_ENV openssl s_client -quiet -connect 127.0.0.1:$PORT \
            -CAfile '$CA/ca.pem' >'$D/$1.log' 2>&1" </dev/null &
    DRIBBLE_PID=$!
}
conns() {
    api none GET /metrics
    sed -n 's/^p11ca_connections //p' "$D/body"
}
dribble loris1
LORIS1=$DRIBBLE_PID
i=0
while [ "$(conns)" -lt 2 ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
good=0
for k in 1 2 3 4 5 6 7 8 9 10; do
    api carol GET "/v1/certs?limit=1"
    [ "$CODE" = 200 ] && good=$((good + 1))
done
assert_eq "$good" 10 "10 requests answered while a slow-loris client dribbles its header"
if kill -0 "$LORIS1" 2>/dev/null && [ "$(conns)" -ge 2 ]; then
    ok "... the slow client is still connected meanwhile"
else
    not_ok "... the slow client is still connected meanwhile"
fi
api none GET '/healthz' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' x)"
case $CODE in
4??) ok "a 20 kB header block is refused ($CODE, max_header_bytes)" ;;
*) not_ok "a 20 kB header block is refused (status $CODE)" ;;
esac

# --- The connection cap -------------------------------------------------------------
limits_config 600000 3
kill -HUP "$SERVE_PID"
wait_log 'SIGHUP: reloaded' "$D/serve.log" || not_ok "SIGHUP reloaded"
# The slow client holds one connection; two idle clients make three.
hold() {
    setsid sh -c "sleep 600 | env $OPENSSL_ENV openssl s_client -quiet \
        -connect 127.0.0.1:$PORT -CAfile '$CA/ca.pem' >'$D/$1.log' 2>&1" \
        </dev/null &
}
hold hold1
HOLD1=$!
hold hold2
HOLD2=$!
if wait_log 'connections \(max_connections\): new ones wait' "$D/serve.log"; then
    ok "at 3 connections the service stops accepting"
else
    not_ok "at 3 connections the service stops accepting"
fi
curl -sS -o "$D/waiter.body" -w '%{http_code}' --cacert "$CA/ca.pem" \
    "https://127.0.0.1:$PORT/healthz" >"$D/waiter.code" 2>&1 &
WAITER=$!
# backlog: connections the kernel holds for the IPv4 listener, not accepted
# (ss: Recv-Q of a listening socket).
backlog() {
    [ "$(ss -Hltn "sport = :$PORT" src 127.0.0.1 | awk '{print $2}')" -ge 1 ]
}
if wait_for 60 backlog && kill -0 "$WAITER" 2>/dev/null; then
    ok "a fourth client waits, not accepted (in the listener's backlog)"
else
    not_ok "a fourth client waits (it got $(cat "$D/waiter.code"))"
    diag "$(ss -Hltn "sport = :$PORT")"
fi
kill -TERM -- "-$HOLD1" 2>/dev/null
i=0
while kill -0 "$WAITER" 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
assert_eq "$(cat "$D/waiter.code")" 200 "when one closes, the waiting client is served"
kill -TERM -- "-$HOLD2" 2>/dev/null

# --- request_timeout_ms cuts a slow client ----------------------------------------------
limits_config 1000 100
kill -HUP "$SERVE_PID"
i=0
until [ "$(grep -c 'SIGHUP: reloaded' "$D/serve.log")" -ge 2 ] || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
t0=$(grep -c '"-" timeout' "$D/access.log")
dribble loris2
LORIS2=$DRIBBLE_PID
i=0
until [ "$(grep -c '"-" timeout' "$D/access.log")" -gt "$t0" ] || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ "$(grep -c '"-" timeout' "$D/access.log")" -gt "$t0" ]; then
    ok "a slow client is cut at request_timeout_ms (access log: timeout)"
else
    not_ok "a slow client is cut at request_timeout_ms"
fi
kill -TERM -- "-$LORIS2" "-$LORIS1" 2>/dev/null
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

# --- The registry's sign-up limit behind the buckets -----------------------------
# rate_limit in [ ca ] of ca.cnf counts the sign-ups recorded in a second of
# the registry's clock, whichever CA and process made them: the backstop
# behind the service's buckets.  The service never waits for a slot: 429
# with Retry-After: 1.  The registry's clock is the test clock
# (P11CA_TEST_CLOCK): one second for the whole run, whatever the load.
sed -i 's/^rate_limit *= *[0-9]*$/rate_limit = 3/' "$CA/ca.cnf.base"
serve_config "signup_limit = off"
SERVE_ENV="P11CA_TEST_CLOCK=2000000000"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
n0=$(p11ca cert list --dir "$CA" --count)
created=0
limited=0
i=1
while [ $i -le 5 ]; do
    openssl x509 -req -in "$D/burst.csr" -subj "/CN=backstop-$i" -CA "$D/fleet-ca.pem" \
        -CAkey "$D/fleet-ca.key" -set_serial "$((0x300000 + i))" -days 30 \
        -out "$D/backstop-$i.pem" 2>/dev/null
    api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/backstop-$i.pem")}"
    [ "$CODE" = 201 ] && created=$((created + 1))
    [ "$CODE" = 429 ] && limited=$((limited + 1))
    i=$((i + 1))
done
assert_eq "$created $limited" "3 2" \
    "buckets off, rate_limit = 3: 3 registrations created, 2 refused with 429"
expect_problem 429 rate-limited \
    'the sign-up limit \(rate_limit in \[ ca \] of ca.cnf\) allows 3 per second and 3 were recorded in this second; not waiting' \
    "... a rate-limited problem naming the registry's limit"
assert_grep '^[Rr]etry-[Aa]fter: 1' "$D/hdr" "... with Retry-After: 1 (the limit's window)"
openssl x509 -req -in "$D/burst.csr" -subj /CN=auto-late -CA "$D/fleet2-ca.pem" \
    -CAkey "$D/fleet2-ca.key" -set_serial 0x2000ff -days 30 \
    -out "$D/auto-late.pem" 2>/dev/null
tls_client tls1_3 "$D/burst.key" "$D/auto-late.pem"
if grep -q '^HTTP/1.1 429' "$D/client.log" &&
    grep -qi '^retry-after: 1' "$D/client.log" &&
    grep -q 'could not be registered: rate limit reached: the sign-up limit' "$D/client.log"; then
    ok "an auto-registration in the full second: the connection's request gets 429"
else
    not_ok "an auto-registration in the full second: the connection's request gets 429"
    diag "$(grep -E '^HTTP|code' "$D/client.log")"
fi
openssl x509 -req -in "$D/burst.csr" -subj /CN=cli-late -CA "$D/fleet-ca.pem" \
    -CAkey "$D/fleet-ca.key" -set_serial 0x3000ff -days 30 \
    -out "$D/cli-late.pem" 2>/dev/null
should_fail 4 'sign-up limit .* allows 3 per second and 3 were recorded' \
    "p11ca cert register in the same second: the service's sign-ups count" \
    at_clock 2000000000 p11ca cert register --dir "$CA" --wait 0 "$D/cli-late.pem"
assert_eq "$(p11ca cert list --dir "$CA" --count)" $((n0 + 3)) \
    "3 sign-ups recorded in that second, nothing else"
api none GET /metrics
assert_grep '^p11ca_refusals_total\{reason="rate-limit"\} 3$' "$D/body" \
    "metrics: the 3 refusals count as rate-limit"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
check "the audit trail is intact" p11ca audit verify --dir "$CA"

echo "1..$TAP_N"
done_testing
