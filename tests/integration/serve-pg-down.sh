#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca serve on a PostgreSQL registry whose server goes down and comes
# back: while it is down, requests that need the registry get 503
# registry-unavailable with Retry-After (on a connection made before), new
# client-certificate handshakes are refused, /healthz still answers 200;
# once it is up again the same node serves without a restart, a
# registration and a revocation work, and nothing was recorded in part.
# Skipped when PostgreSQL is not installed.
set -u
P11CA_TEST_REGISTRY=pg
export P11CA_TEST_REGISTRY
. "$top_srcdir/tests/integration/serve-setup.sh"
command -v python3 >/dev/null || plan_skip "python3 is not installed"

serve_config ""
serve_start || { echo "Bail out! the service did not start"; exit 1; }
ALICE=$(cert_serial "$D/alice.pem")
fleet_device dev-a || { echo "Bail out! no fleet device"; exit 1; }
DEVA=$(cert_serial "$D/dev-a.pem")
REGISTER="{\"certificate\": $(jq -Rs . "$D/dev-a.pem")}"

api alice POST /v1/cas -d "{\"certificate\": $(jq -Rs . "$D/fleet-ca.pem"), \"name\": \"fleet\"}"
expect 201 .auto_register false "the fleet CA is registered"
api carol GET /v1/certs
expect 200 '.items | length' 5 "the registry answers: 5 certificates"
n0=$(regsql "$CA" "SELECT count(*) FROM certs")
a0=$(regsql "$CA" "SELECT count(*) FROM audit")

# One kept-alive connection (its handshake read the registry while it was
# up): a request, the database stopped, then requests that need it.
# Prints "STATUS RETRY-AFTER CODE" per request.
cat >"$D/keepalive.py" <<'PY'
import http.client, json, ssl, subprocess, sys
d, port, serial, reg, stop = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=d + "/../ca/ca.pem")
ctx.load_cert_chain(d + "/alice.pem", d + "/alice.key")
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx,
                                timeout=60)
def req(m, p, body=None):
    c.request(m, p, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    b = r.read()
    try:
        code = json.loads(b).get("code", "-")
    except ValueError:
        code = "-"
    print(r.status, r.getheader("Retry-After", "-"),
          r.getheader("Content-Type", "-"), code, flush=True)
req("GET", "/v1/certs/" + serial)
subprocess.run(["sh", "-c", stop], check=True)
req("GET", "/v1/certs/" + serial)
req("GET", "/v1/certs")
req("POST", "/v1/certs", reg)
req("POST", "/v1/certs/" + serial + "/deactivate", '{"why": "test"}')
PY
STOP=". '$top_srcdir/tests/lib/tap.sh'; . '$top_srcdir/tests/lib/pg.sh'; PG_DIR='$PG_DIR'; pg_server_stop"
python3 "$D/keepalive.py" "$D" "$PORT" "$ALICE" "$REGISTER" "$STOP" \
    >"$D/ka.out" 2>"$D/ka.err"
if [ "$(sed -n 1p "$D/ka.out")" = "200 - application/json -" ]; then
    ok "a request before the database stops: 200"
else
    not_ok "a request before the database stops: 200"
    diag "$(cat "$D/ka.out" "$D/ka.err")"
fi
n=0
for what in "GET one certificate" "GET /v1/certs (a search)" \
    "POST /v1/certs (a registration)" "POST .../deactivate (a change)"; do
    n=$((n + 1))
    line=$(sed -n "$((n + 1))p" "$D/ka.out")
    if [ "$line" = "503 2 application/problem+json registry-unavailable" ]; then
        ok "database down: $what: 503 registry-unavailable, Retry-After: 2"
    else
        not_ok "database down: $what: 503 registry-unavailable, Retry-After: 2 (got '$line')"
        diag "$(cat "$D/ka.err")"
    fi
done

# A new connection with a client certificate: its handshake needs the
# registry, so it is refused; the node lives on.
api alice GET "/v1/certs/$ALICE"
case $CODE in
curl-failed*) ok "database down: a new client-certificate handshake is refused" ;;
*) not_ok "database down: a new client-certificate handshake is refused (status $CODE)" ;;
esac
# The line may come from a worker after the answer: a bounded wait.
if wait_log 'the database server is unreachable|cannot connect' "$D/serve.log" 600; then
    ok "the log says the database server is unreachable"
else
    not_ok "the log says the database server is unreachable"
    diag "$(tail -n 10 "$D/serve.log")"
fi
# /healthz is liveness: no registry call, no client certificate.
api none GET /healthz
expect 200 .status ok "database down: GET /healthz still answers 200 (liveness only)"
if kill -0 "$SERVE_PID" 2>/dev/null; then
    ok "the node is still running"
else
    not_ok "the node is still running"
    diag "$(tail -n 20 "$D/serve.log")"
fi

# Up again on the same socket: the same node serves (bounded poll: each
# try fails fast while a handle reconnects).
pg_server_start || { echo "Bail out! PostgreSQL did not start again"; exit 1; }
i=0
until api alice GET "/v1/certs/$ALICE" && [ "$CODE" = 200 ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || break
    sleep 0.1
done
expect 200 .serial "$ALICE" "database up again: the same node serves without a restart"
# Each worker's handle reconnects on its next use: enough requests that
# every worker has met the lost connection.
good=0
for _ in 1 2 3 4 5 6; do
    api carol GET /v1/certs
    [ "$CODE" = 200 ] && good=$((good + 1))
done
if [ "$good" = 6 ]; then
    ok "database up again: 6 searches in a row answered 200"
else
    not_ok "database up again: 6 searches in a row answered 200 (only $good)"
    diag "$(head -c 600 "$D/body")"
fi

# Nothing of the refused writes was recorded.
if [ "$(regsql "$CA" "SELECT count(*) FROM certs")" = "$n0" ] &&
    [ "$(regsql "$CA" "SELECT count(*) FROM audit")" = "$a0" ] &&
    api carol GET "/v1/certs/$ALICE" && [ "$(jq -r .status "$D/body")" = activated ]; then
    ok "nothing of the refused requests was recorded (certificates, statuses, audit)"
else
    not_ok "nothing of the refused requests was recorded"
    diag "$(regsql "$CA" "SELECT serial, status FROM certs")"
fi
api bob POST /v1/certs -d "$REGISTER"
expect 201 .serial "$DEVA" "database up again: a registration is recorded"
api bob POST "/v1/certs/$DEVA/revoke" -d '{"reason": "superseded"}'
expect 200 '"\(.status) \(.changed)"' "revoked true" "database up again: a revocation"
if [ "$(regsql "$CA" "SELECT count(*) FROM certs")" = "$((n0 + 1))" ] &&
    p11ca cert list --dir "$CA" --status revoked 2>/dev/null | grep -q "$DEVA"; then
    ok "exactly one certificate more, revoked: p11ca cert list agrees"
else
    not_ok "exactly one certificate more, revoked"
    diag "$(regsql "$CA" "SELECT serial, status FROM certs")"
fi
check "the audit trail verifies" p11ca audit verify --dir "$CA"

serve_stop
if [ "$SERVE_RC" = 0 ]; then
    ok "SIGTERM ends the node with status 0"
else
    not_ok "SIGTERM ends the node with status 0 (status $SERVE_RC)"
fi

echo "1..$TAP_N"
done_testing
