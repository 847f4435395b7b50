#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2034,SC2086 # settings read by serve-setup.sh; option lists
# p11ca serve and signals.  SIGTERM with calls in flight (a CRL held on
# the token, a deactivation queued behind it): new connections are
# refused, the service waits, and when the token answers the waiting
# client gets its 200, the change is in the registry, the service exits 0.
# SIGHUP reloads [serve] (a new operator), the registered CAs and the CRL
# without dropping an open keep-alive connection; a broken ca.cnf is not
# taken and the old settings stay.  A token that never answers: after
# shutdown_timeout_ms the service leaves with status 5.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"

# The server profile wants the CN among the subjectAltName names.
issue_key tlsfile /CN=localhost server DNS:localhost,IP:127.0.0.1,IP:::1 ||
    { echo "Bail out! cannot issue the TLS certificate file"; exit 1; }
SERVE_TLS_KEY=$D/tlsfile.key
SERVE_TLS_CERT=$D/tlsfile.pem
p11ca crl --dir "$CA" --out "$D/first.crl" >/dev/null 2>&1
issue_key s1 /CN=s1 client
issue_key s2 /CN=s2 client
S1=$(cert_serial "$D/s1.pem")
S2=$(cert_serial "$D/s2.pem")

# --- SIGTERM with calls in flight ---------------------------------------------
SERVE_WORKERS=1
serve_config "max_queued_jobs = 1"
touch "$D/gate"
faulty_env 'C_Sign:*:hold'
serve_start || { echo "Bail out! the service did not start"; exit 1; }
# A keep-alive connection, open before SIGTERM.
mkfifo "$D/ka0.in"
env $OPENSSL_ENV openssl s_client -quiet -connect "127.0.0.1:$PORT" \
    -CAfile "$CA/ca.pem" <"$D/ka0.in" >"$D/ka0.out" 2>"$D/ka0.err" &
KA0=$!
exec 6>"$D/ka0.in"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' >&6
wait_log '^HTTP/1.1 200' "$D/ka0.out" || not_ok "the keep-alive connection answers"
api bob POST "/v1/certs/$S1/revoke"
expect 200 .status revoked "revoke s1: the CRL that follows is held on the token"
wait_metric p11ca_worker_jobs_running 1 || not_ok "the CRL job is running"
curl -sS -o "$D/inflight.body" -w '%{http_code}' --cacert "$CA/ca.pem" \
    --cert "$D/bob.pem" --key "$D/bob.key" -X POST \
    "https://127.0.0.1:$PORT/v1/certs/$S2/deactivate" >"$D/inflight.code" 2>&1 &
INFLIGHT=$!
wait_metric p11ca_worker_queue_depth 1 || not_ok "the deactivation is queued"
api bob POST "/v1/certs/$S1/deactivate"
if [ "$CODE" = 503 ] && [ "$(jq -r .code "$D/body")" = busy ] &&
    grep -qi '^retry-after: 1' "$D/hdr"; then
    ok "max_queued_jobs reached: 503 busy with Retry-After"
else
    not_ok "max_queued_jobs reached: 503 busy with Retry-After (status $CODE)"
    diag "$(head -c 300 "$D/body")"
fi
kill -TERM "$SERVE_PID"
if wait_log 'SIGTERM: no new connections; finishing 1 requests and 2 jobs' "$D/serve.log"; then
    ok "SIGTERM: one request and two jobs to finish"
else
    not_ok "SIGTERM: one request and two jobs to finish"
    diag "$(tail -n 3 "$D/serve.log")"
fi
if curl -sS --cacert "$CA/ca.pem" "https://127.0.0.1:$PORT/healthz" >"$D/late" 2>&1; then
    not_ok "a new connection after SIGTERM is refused"
else
    ok "a new connection after SIGTERM is refused"
fi
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' >&6
wait_log '^HTTP/1.1 503' "$D/ka0.out"
exec 6>&-
wait "$KA0"
if grep -q '^HTTP/1.1 503' "$D/ka0.out" && grep -qi '^connection: close' "$D/ka0.out" &&
    grep -q '"code":"shutting-down"' "$D/ka0.out"; then
    ok "a request on an open connection after SIGTERM: 503 shutting-down, Connection: close"
else
    not_ok "a request on an open connection after SIGTERM: 503 shutting-down"
    diag "$(tail -n 8 "$D/ka0.out")"
fi
if kill -0 "$SERVE_PID" 2>/dev/null && kill -0 "$INFLIGHT" 2>/dev/null; then
    ok "the service waits for the call in flight"
else
    not_ok "the service waits for the call in flight"
fi
rm -f "$D/gate"
wait "$INFLIGHT"
assert_eq "$(cat "$D/inflight.code") $(jq -r .status "$D/inflight.body")" "200 not-activated" \
    "the token answers: the waiting client gets its 200"
wait "$SERVE_PID"
SERVE_RC=$?
SERVE_PID=""
assert_eq "$SERVE_RC" 0 "then the service exits with status 0"
assert_grep 'stopped: 0 requests and 0 jobs left unfinished' "$D/serve.log" \
    "nothing was left unfinished"
assert_eq "$(p11ca cert show --dir "$CA" --json "$S2" | jq -r .status)" not-activated \
    "the deactivation is in the registry"
if openssl crl -in "$CA/crl.pem" -noout -text | grep -qi "Serial Number: *0*$S1"; then
    ok "the CRL held at SIGTERM was finished and written (crl.pem lists s1)"
else
    not_ok "the CRL held at SIGTERM was finished and written"
fi

# --- A token that never answers: shutdown_timeout_ms ---------------------------
issue_key s3 /CN=s3 client
serve_config "shutdown_timeout_ms = 500"
touch "$D/gate"
faulty_env 'C_Sign:*:hold'
serve_start || { echo "Bail out! the service did not start"; exit 1; }
api bob POST "/v1/certs/$(cert_serial "$D/s3.pem")/revoke"
expect 200 .status revoked "revoke s3: its CRL is held on the token for good"
wait_metric p11ca_worker_jobs_running 1 || not_ok "the CRL job is running"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
SERVE_RC=$?
SERVE_PID=""
rm -f "$D/gate"
assert_eq "$SERVE_RC" 5 "after shutdown_timeout_ms with a worker stuck on the token: exit status 5"
assert_grep 'shutdown_timeout_ms reached with 0 requests and 1 jobs unfinished' \
    "$D/serve.log" "... the log says what was left"
assert_grep 'a worker is still in a job \(a token that does not answer\?\): exiting without it' \
    "$D/serve.log" "... and that a worker was left behind"

# --- SIGHUP -------------------------------------------------------------------
# A reload loads the TLS key again while workers run: nothing on that path
# (the service, the CA, the token layer, the registry, the provider) sets
# the environment, which is not thread-safe; the provider gets its module
# and token wait as parameters (ca_evp_setup).
envcalls=""
for lib in "$top_builddir"/src/.libs/libp11ca-server.a \
    "$top_builddir"/src/.libs/libp11ca-ca.a \
    "$top_builddir"/src/.libs/libp11ca-p11.a \
    "$top_builddir"/src/.libs/libp11ca-registry.a \
    "$top_builddir"/src/.libs/libp11ca-common.a \
    "$top_builddir"/provider/.libs/p11ca.so; do
    [ -f "$lib" ] || envcalls="$envcalls $lib is missing"
    envcalls="$envcalls$(nm -A "$lib" 2>/dev/null | grep -E ' U (setenv|unsetenv|putenv|clearenv)(@|$)')"
done
assert_eq "$envcalls" "" "no library of the service calls setenv, unsetenv, putenv or clearenv"
issue_key frank "/CN=frank/O=p11ca tests" client
SERVE_ENV=""
SERVE_WORKERS=2
serve_config ""
serve_start || { echo "Bail out! the service did not start again"; exit 1; }
api frank GET /v1/certs
expect_problem 403 forbidden 'the caller is device' "frank is no operator yet"
# A keep-alive connection, kept open across the reload.
base=$(wc -l <"$D/access.log")
mkfifo "$D/ka.in"
env $OPENSSL_ENV openssl s_client -quiet -connect "127.0.0.1:$PORT" \
    -CAfile "$CA/ca.pem" <"$D/ka.in" >"$D/ka.out" 2>"$D/ka.err" &
KA=$!
exec 7>"$D/ka.in"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' >&7
wait_log '^HTTP/1.1 200' "$D/ka.out" || not_ok "the first request on the open connection"
# frank becomes an auditor; the CLI makes a CRL and registers a CA.
sed -i "s/^carol = auditor .*/&\nfrank = auditor sha256:$(cert_sha256 "$D/frank.pem")/" "$CA/ca.cnf"
p11ca crl --dir "$CA" --out "$D/cli.crl" >/dev/null 2>&1
CLINUM=$(openssl crl -in "$CA/crl.pem" -noout -crlnumber | cut -d= -f2)
p11ca cert register-ca --dir "$CA" --name fleet "$D/fleet-ca.pem" >/dev/null
kill -HUP "$SERVE_PID"
if wait_log 'SIGHUP: reloaded: 2 registered CAs, 4 operators' "$D/serve.log"; then
    ok "SIGHUP: [serve] and the registered CAs read again"
else
    not_ok "SIGHUP: [serve] and the registered CAs read again"
    diag "$(tail -n 3 "$D/serve.log")"
fi
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' >&7
i=0
until [ "$(grep -c '^HTTP/1.1 200' "$D/ka.out")" -ge 2 ] || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
exec 7>&-
wait "$KA"
ports=$(tail -n "+$((base + 1))" "$D/access.log" |
    grep '"GET /healthz" 200 serial=- role=anonymous' |
    awk '{ print $2 }' | sort -u | wc -l)
if [ "$(grep -c '^HTTP/1.1 200' "$D/ka.out")" -eq 2 ] && [ "$ports" -eq 1 ]; then
    ok "the open connection survived the reload (two answers, one client port)"
else
    not_ok "the open connection survived the reload ($ports ports)"
    diag "$(grep healthz "$D/access.log")"
fi
api frank GET /v1/certs
expect 200 '.items | length' 10 "frank is an auditor now"
api carol GET /v1/cas
expect 200 '.items | length' 2 "the CA registered with the CLI is there"
api none GET /v1/crl
assert_eq "$(openssl crl -inform DER -in "$D/body" -noout -crlnumber | cut -d= -f2)" "$CLINUM" \
    "the CRL made with the CLI is served"
# A broken ca.cnf is not taken.
cp "$CA/ca.cnf" "$D/good.cnf"
sed -i 's/^workers = .*/workers = many/' "$CA/ca.cnf"
kill -HUP "$SERVE_PID"
if wait_log 'SIGHUP: not reloaded \(the old settings stay\): ca.cnf \[ serve \] workers = many' \
    "$D/serve.log"; then
    ok "a broken [serve] is not taken, and the log says why"
else
    not_ok "a broken [serve] is not taken"
    diag "$(tail -n 3 "$D/serve.log")"
fi
api frank GET /v1/certs
expect 200 '.items | length' 10 "the old settings stay"
# ca.cnf reads no other file, at a reload too: .include /dev/zero would
# never end, and the event loop with it.
cp "$D/good.cnf" "$CA/ca.cnf"
printf '.include /dev/zero\n' >>"$CA/ca.cnf"
kill -HUP "$SERVE_PID"
if wait_log 'SIGHUP: not reloaded \(the old settings stay\): .*\.include and \.pragma includedir are not allowed' \
    "$D/serve.log"; then
    ok "an .include in ca.cnf is refused at a reload, and the log says why"
else
    not_ok "an .include in ca.cnf is refused at a reload"
    diag "$(tail -n 3 "$D/serve.log")"
fi
api frank GET /v1/certs
expect 200 '.items | length' 10 "... and the service still answers"
cp "$D/good.cnf" "$CA/ca.cnf"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

echo "1..$TAP_N"
done_testing
