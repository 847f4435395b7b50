#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A slow token does not stall p11ca serve: the CA key is reached through
# the fault-injecting module, whose C_Sign takes 50 ms and is held while a
# gate file exists (the test decides when the "token" answers).  With one
# worker signing a CRL behind the closed gate and nine revocations queued
# behind it, /healthz and look-ups answer, and /metrics still shows the
# nine queued afterwards: no assertion on time.  Then the gate opens:
# every queued call is answered; a token error on the next CRL is counted
# and the CRL after it lists every revocation.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"

# TLS with a key file: a token TLS key would sign each handshake on the
# event loop (see docs/serve.md), and the gate would hold those too.
# The server profile wants the CN among the subjectAltName names.
issue_key tlsfile /CN=localhost server DNS:localhost,IP:127.0.0.1,IP:::1 ||
    { echo "Bail out! cannot issue the TLS certificate file"; exit 1; }
SERVE_TLS_KEY=$D/tlsfile.key
SERVE_TLS_CERT=$D/tlsfile.pem
p11ca crl --dir "$CA" --out "$D/first.crl" >/dev/null 2>&1
# p11ca crl signs the CRL, then the audit trail's head: when the token
# fails between the two (the second C_Sign), the CRL stands, with a
# warning; p11ca audit sign signs the head afterwards.
n0=$(openssl crl -in "$D/first.crl" -noout -crlnumber | cut -d= -f2)
if env P11CA_MODULE="$FAULTY" FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" \
    FAULTY_PKCS11_FAULTS=C_Sign:2:CKR_DEVICE_ERROR \
    FAULTY_PKCS11_LOG="$D/crl-calls.log" \
    "$P11CA" crl --dir "$CA" --out "$D/warned.crl" >"$D/crl.out" 2>"$D/crl.err"; then
    ok "p11ca crl: the audit head's signature fails, the CRL is made (exit 0)"
else
    not_ok "p11ca crl: the audit head's signature fails, the CRL is made (exit 0)"
    diag "$(cat "$D/crl.err")"
fi
assert_eq "$(grep -c ' C_Sign ' "$D/crl-calls.log")" 2 \
    "... two signatures: the CRL, then the refused head"
assert_grep "^p11ca: warning: the CRL was made, but the audit trail's head was not signed: .*CKR_DEVICE_ERROR.* \(p11ca audit sign signs it\)" \
    "$D/crl.err" "... with a warning that names the token's error and the remedy"
check "... and the CRL verifies against the CA certificate" \
    openssl crl -in "$D/warned.crl" -CAfile "$CA/ca.pem" -noout
assert_eq "$(openssl crl -in "$D/warned.crl" -noout -crlnumber | cut -d= -f2)" \
    "$(printf '0x%02X' $((n0 + 1)))" "... with the next CRL number"
check "... and it is DIR/crl.pem" cmp -s "$D/warned.crl" "$CA/crl.pem"
check "p11ca audit sign signs the head afterwards" p11ca audit sign --dir "$CA"
check "... and the audit trail verifies" p11ca audit verify --dir "$CA"
i=1
while [ $i -le 10 ]; do
    issue_key "r$i" "/CN=r$i" client
    i=$((i + 1))
done

SERVE_WORKERS=1
serve_config ""
touch "$D/gate"
# Every CRL is two signatures: the CRL, then the audit trail's head.  The
# third C_Sign is the second CRL's.
faulty_env 'C_Sign:*:hold,C_Sign:*:sleep=50ms,C_Sign:3:CKR_DEVICE_ERROR'
serve_start || { echo "Bail out! the service did not start"; exit 1; }

R1=$(cert_serial "$D/r1.pem")
api bob POST "/v1/certs/$R1/revoke"
expect 200 .status revoked "revoke r1 (a registry write; the CRL that follows signs)"
if wait_metric p11ca_worker_jobs_running 1; then
    ok "the worker is held in C_Sign making the CRL"
else
    not_ok "the worker is held in C_Sign making the CRL"
fi
i=2
pids=""
while [ $i -le 10 ]; do
    curl -sS -o "$D/rev$i.body" -w '%{http_code}' --cacert "$CA/ca.pem" \
        --cert "$D/bob.pem" --key "$D/bob.key" -X POST \
        "https://127.0.0.1:$PORT/v1/certs/$(cert_serial "$D/r$i.pem")/revoke" \
        >"$D/rev$i.code" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
done
if wait_metric p11ca_worker_queue_depth 9; then
    ok "nine revocations wait for the worker"
else
    not_ok "nine revocations wait for the worker (queue depth $(metric p11ca_worker_queue_depth))"
fi
api none GET /healthz
expect 200 .queued 9 "/healthz answers while they wait"
api carol GET "/v1/certs/$R1"
expect 200 .status revoked "a look-up answers while they wait"
api carol GET '/v1/certs?status=activated&limit=1'
expect 200 '.items | length' 1 "a search answers while they wait"
assert_eq "$(metric p11ca_worker_queue_depth) $(metric p11ca_worker_jobs_running)" "9 1" \
    "after those answers the nine are still queued behind the held signature"
assert_eq "$(cat "$D"/rev*.code 2>/dev/null)" "" "no revocation was answered yet"

# The token answers.
rm -f "$D/gate"
for p in $pids; do
    wait "$p"
done
answered=0
i=2
while [ $i -le 10 ]; do
    [ "$(cat "$D/rev$i.code")" = 200 ] && answered=$((answered + 1))
    i=$((i + 1))
done
assert_eq "$answered" 9 "the gate opens: all nine revocations answered 200"
# The second CRL's signature fails (injected), the third CRL lists all ten.
all=1
i=0
while [ $i -lt 300 ]; do
    api none GET /v1/crl
    openssl crl -inform DER -in "$D/body" -noout -text >"$D/crl.txt" 2>/dev/null
    all=1
    for k in 1 2 3 4 5 6 7 8 9 10; do
        grep -qi "Serial Number: *0*$(cert_serial "$D/r$k.pem")" "$D/crl.txt" || all=0
    done
    [ $all = 1 ] && break
    sleep 0.1
    i=$((i + 1))
done
assert_eq "$all" 1 "the CRL served lists the ten revocations"
assert_eq "$(metric p11ca_token_errors_total)" 1 "the failed signature counts as a token error"
assert_grep 'CRL not made: .*CKR_DEVICE_ERROR' "$D/serve.log" "... and is logged with the token's code"
assert_eq "$(grep -c ' C_Sign ' "$D/calls.log")" 5 \
    "five signatures on the token, no more: two CRLs with their audit heads, the failed one"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

echo "1..$TAP_N"
done_testing
