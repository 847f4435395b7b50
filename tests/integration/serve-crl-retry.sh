#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A CRL that p11ca serve could not make is made later without a further
# revocation: the CA key is reached through the fault-injecting module,
# whose first two C_Sign calls fail (CKR_DEVICE_ERROR).  One revocation
# through the API; its CRL fails, the retry after 1 s fails, the one after
# 2 s more lists the revoked certificate.  Before, the failed CRL job was
# dropped and the CRL served stayed without the revocation.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"
plan 10

# TLS with a key file: only the CA key signs on the token.
issue_key tlsfile /CN=localhost server DNS:localhost,IP:127.0.0.1,IP:::1 ||
    { echo "Bail out! cannot issue the TLS certificate file"; exit 1; }
SERVE_TLS_KEY=$D/tlsfile.key
SERVE_TLS_CERT=$D/tlsfile.pem
issue_key r1 /CN=r1 client || { echo "Bail out! cannot issue r1"; exit 1; }
R1=$(cert_serial "$D/r1.pem")
# A CRL on disk: the service serves it and signs nothing at start.
p11ca crl --dir "$CA" --out "$D/first.crl" >/dev/null 2>&1

serve_config ""
faulty_env 'C_Sign:1-2:CKR_DEVICE_ERROR'
serve_start || { echo "Bail out! the service did not start"; exit 1; }

# lists FILE: whether the DER CRL FILE lists r1.
lists() {
    openssl crl -inform DER -in "$1" -noout -text 2>/dev/null |
        grep -qi "Serial Number: *0*$R1"
}

api bob POST "/v1/certs/$R1/revoke"
expect 200 .status revoked "revoke r1 through the API"
if wait_log 'CRL: trying again in 2000 ms' "$D/serve.log"; then
    ok "its CRL fails, and so does the first retry: tried again, later each time"
else
    not_ok "its CRL fails, and so does the first retry: tried again, later each time"
    diag "$(tail -n 10 "$D/serve.log")"
fi
assert_grep 'CRL not made: .*CKR_DEVICE_ERROR' "$D/serve.log" \
    "... the failure is logged with the token's code"
assert_grep 'CRL: trying again in 1000 ms' "$D/serve.log" "... the first retry after 1 s"
# The third signature works: wait for the CRL that lists r1 (30 s).
i=0
while [ $i -lt 300 ]; do
    api none GET /v1/crl
    [ "$CODE" = 200 ] && lists "$D/body" && break
    sleep 0.1
    i=$((i + 1))
done
if [ "$CODE" = 200 ] && lists "$D/body"; then
    ok "the CRL served lists r1 without a further revocation"
else
    not_ok "the CRL served lists r1 without a further revocation (status $CODE)"
    diag "$(tail -n 10 "$D/serve.log")"
fi
check "... and verifies against the CA certificate" \
    openssl crl -inform DER -in "$D/body" -CAfile "$CA/ca.pem" -noout
assert_eq "$(metric p11ca_token_errors_total)" 2 "the two failed signatures count as token errors"
assert_eq "$(grep -c ' C_Sign ' "$D/calls.log")" 4 \
    "four signatures on the token, no more: the two failed, the CRL and its audit head"
check "DIR/crl.pem lists r1 too" sh -c \
    "openssl crl -in '$CA/crl.pem' -noout -text | grep -qi 'Serial Number: *0*$R1'"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
done_testing
