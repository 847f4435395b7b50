#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2034 # settings read by serve-setup.sh
# The plain OCSP listener (ocsp_listen) is held to the TLS listener's
# limits: its connections count against max_connections from their
# accept (idle ones that never send a request too), and an idle or
# dribbling one is closed at request_timeout_ms (idle_timeout_ms is set
# far beyond, so that it cannot be the one that closes them).  Clients
# behind the cap are served once such connections close or time out.
# Deterministic: waits are for log lines and for the clients' own notes
# that their connection closed, never for a duration.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

OPORT=$(free_port)
# hold NAME [dribble]: a plain TCP client of ocsp_listen (python3) that
# sends nothing (or, with dribble, one byte of a request line every 0.2 s)
# and notes in $D/hold.NAME when it connected and when the service closed
# its connection; HOLD_PIDS gets its pid.
HOLD_PIDS=""
hold() {
    : >"$D/hold.$1"
    python3 -c '
import select, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "a").write("connected\n")
while True:
    r, _, _ = select.select([s], [], [], 0.2)
    try:
        if r:
            if not s.recv(4096):
                break
        elif len(sys.argv) > 3:
            s.send(b"G")
    except OSError:
        break
open(sys.argv[2], "a").write("closed\n")
' "$OPORT" "$D/hold.$1" ${2:+"$2"} 2>/dev/null &
    HOLD_PIDS="$HOLD_PIDS $!"
}
trap 'for p in $HOLD_PIDS; do kill "$p" 2>/dev/null; done; serve_kill; stop_servers; [ -z "$REG_LOC" ] || pg_stop; rm -rf "$TT"' EXIT

# An OCSP request for dave's certificate.
openssl ocsp -issuer "$CA/ca.pem" -cert "$D/dave.pem" -no_nonce \
    -reqout "$D/req.der" >/dev/null 2>&1 ||
    { echo "Bail out! cannot make an OCSP request"; exit 1; }
# ocsp_bg NAME: POST it to ocsp_listen in the background; status in
# $D/NAME.code.
ocsp_bg() {
    curl -sS --max-time 120 -o "$D/$1.resp" -w '%{http_code}' \
        -H 'Content-Type: application/ocsp-request' --data-binary "@$D/req.der" \
        "http://127.0.0.1:$OPORT/ocsp" >"$D/$1.code" 2>"$D/$1.err" &
    eval "pid_$1=\$!"
}
# tls_bg NAME: GET /healthz on the TLS listener in the background.
tls_bg() {
    curl -sS --max-time 120 -o "$D/$1.body" -w '%{http_code}' \
        --cacert "$CA/ca.pem" "https://127.0.0.1:$PORT/healthz" \
        >"$D/$1.code" 2>"$D/$1.err" &
    eval "pid_$1=\$!"
}
# closed NAME DESC: the service closed NAME's connection (60 s at most).
closed() {
    if wait_log '^closed' "$D/hold.$1" 600; then
        ok "$2"
    else
        not_ok "$2"
        diag "$(tail -n 5 "$D/serve.log")"
    fi
}

# --- Counted from the accept ----------------------------------------------------------
serve_config "ocsp_listen = 127.0.0.1:$OPORT
max_connections = 3
request_timeout_ms = 600000
idle_timeout_ms = 600000"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
hold a
hold b
hold c
if wait_log '3 connections \(max_connections\): new ones wait' "$D/serve.log"; then
    ok "3 idle plain connections that sent nothing reach max_connections = 3"
else
    not_ok "3 idle plain connections that sent nothing reach max_connections = 3"
    diag "$(tail -n 5 "$D/serve.log")"
fi
tls_bg t1
ocsp_bg o1
# shellcheck disable=SC2086 # a list of pids
kill $HOLD_PIDS
HOLD_PIDS=""
# shellcheck disable=SC2154 # set by tls_bg and ocsp_bg through eval
wait "$pid_t1" "$pid_o1"
assert_eq "$(cat "$D/t1.code") $(cat "$D/o1.code")" "200 200" \
    "once they close, a TLS client and an OCSP client waiting behind the cap are served"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

# --- Closed at request_timeout_ms -------------------------------------------------
serve_config "ocsp_listen = 127.0.0.1:$OPORT
max_connections = 3
request_timeout_ms = 3000
idle_timeout_ms = 600000"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
t0=$(grep -c '"-" timeout' "$D/access.log")
hold d
hold e
hold f dribble
hold g
tls_bg t2
ocsp_bg o2
closed d "an idle plain connection is closed by the service (request_timeout_ms; idle_timeout_ms is 600 s)"
closed e "... another one too"
closed f "a plain connection that dribbles a request line is closed too"
closed g "... and one that waited behind the cap, once accepted"
wait "$pid_t2" "$pid_o2"
assert_eq "$(cat "$D/t2.code") $(cat "$D/o2.code")" "200 200" \
    "a TLS client and an OCSP client behind them are served"
assert_eq "$(grep -c '"-" timeout' "$D/access.log")" "$((t0 + 4))" \
    "the access log has a timeout line for each of the 4"
ocsp_bg o3
wait "$pid_o3"
assert_eq "$(cat "$D/o3.code")" 200 "a new OCSP client is served after"
assert_eq "$(openssl ocsp -respin "$D/o3.resp" -resp_text 2>/dev/null |
    grep -c 'Cert Status: good')" 1 "... good"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

echo "1..$TAP_N"
done_testing
