#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Renewal and enrollment over the network when the answer is lost.  POST
# /v1/renew records the new certificate not-activated, linked to the old
# one, which stays activated and keeps working; the new certificate's
# first mTLS handshake (openssl s_client, gnutls-cli, curl) swaps them, and
# the old one is refused at its next connection (revoked or deactivated,
# as the profile says).  A renewal retried with the same key gets the same
# certificate (same DER, nothing recorded); with another key the first one
# is revoked and a new one issued.  An enrollment code asked again with the
# same key gives the certificate it gave; with another key it is refused.
# A deactivated renewal is never swapped in.  Bad input: a clear error,
# nothing recorded.  p11ca enroll --server --renew confirms by itself:
# serve-enroll-client.sh.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
command -v gnutls-cli >/dev/null || plan_skip "gnutls-cli (gnutls-bin) is not installed"

# The registry's own sign-up limit counts per second of the test clock:
# lifted, so that nothing here depends on timing.
sed -i 's/^rate_limit *= *[0-9]*$/rate_limit = 10000/' "$CA/ca.cnf.base"
T0=$(date +%s)
serve_config "signup_limit = off"
SERVE_ENV="P11CA_TEST_CLOCK=$T0"
serve_start || { echo "Bail out! the service did not start"; exit 1; }

# csr NAME SUBJECT [KEYFILE]: NAME.csr with a new P-256 key in NAME.key, or
# with the key in KEYFILE (copied to NAME.key).
csr() {
    if [ -n "${3:-}" ]; then
        cp "$3" "$D/$1.key" &&
            openssl req -new -key "$D/$1.key" -subj "$2" -out "$D/$1.csr" \
                2>/dev/null
    else
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$D/$1.key" -subj "$2" -out "$D/$1.csr" 2>/dev/null
    fi
}
# body FILE KEY=VALUE...: a JSON object of strings ("csr=@NAME": NAME.csr).
body() {
    f=$1
    shift
    printf '{}' >"$f"
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        case $v in
        @*) v=$(cat "$D/${v#@}.csr") ;;
        esac
        jq --arg k "$k" --arg v "$v" '. + {($k): $v}' "$f" >"$f.t" && mv "$f.t" "$f"
    done
}
post() {
    api "$1" POST "$2" -H 'Content-Type: application/json' \
        --data-binary "@$3"
}
# got NAME DESC: the last answer is 201 with a certificate: NAME.pem,
# NAME.der, NAME.serial.
got() {
    if [ "$CODE" = 201 ] && jq -r .certificate "$D/body" >"$D/$1.pem" &&
        openssl x509 -in "$D/$1.pem" -outform DER -out "$D/$1.der" 2>/dev/null; then
        jq -r .serial "$D/body" >"$D/$1.serial"
        ok "$2"
    else
        not_ok "$2 (status $CODE)"
        diag "$(head -c 600 "$D/body")"
    fi
}
shown() {
    p11ca cert show --dir "$CA" --json "$1" | jq -r "$2"
}
count() {
    p11ca cert list --dir "$CA" --count
}
# same_der A B DESC: A.der and B.der are the same bytes.
same_der() {
    if cmp -s "$D/$1.der" "$D/$2.der"; then
        ok "$3"
    else
        not_ok "$3"
    fi
}
# sclient NAME PATH: openssl s_client, TLS 1.3, NAME.key and NAME.pem.
sclient() {
    tls_client tls1_3 "$D/$1.key" "$D/$1.pem" "$2"
}
# gnutls NAME PATH: gnutls-cli, TLS 1.2, NAME.key and NAME.pem; output in
# $D/gnutls.log (the input stays open until the answer is in: see
# serve-tls.sh).
gnutls() {
    : >"$D/gnutls.log"
    # shellcheck disable=SC2094 # the reader waits for what gnutls-cli writes
    {
        printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2"
        wait_log '^HTTP/1.1|[Ee]rror|closed' "$D/gnutls.log"
    } | timeout 60 gnutls-cli --priority "NORMAL:-VERS-ALL:+VERS-TLS1.2" \
        --x509cafile "$CA/ca.pem" --x509certfile "$D/$1.pem" \
        --x509keyfile "$D/$1.key" -p "$PORT" localhost >"$D/gnutls.log" 2>&1
}
# refused NAME SERIAL REASON DESC: NAME's handshake fails, and the access
# log says why.
refused() {
    sclient "$1" /healthz
    if [ -s "$D/client.log" ] && ! grep -q '^HTTP/1.1' "$D/client.log" &&
        wait_log "\"TLS handshake\" refused serial=$2 reason=$3" "$D/access.log"; then
        ok "$4"
    else
        not_ok "$4"
        diag "$(tail -n 3 "$D/client.log")"
        diag "$(tail -n 3 "$D/access.log")"
    fi
}

# --- A device enrolled by an operator ------------------------------------------
csr dev /CN=dev
body "$D/req.json" csr=@dev profile=client
post bob /v1/enroll "$D/req.json"
got dev "an operator enrolls the device dev: 201"
DEV=$(cat "$D/dev.serial")

# --- Renewal, the answer lost --------------------------------------------------
csr dev2 /CN=dev "$D/dev.key"
body "$D/renew2.json" csr=@dev2
n0=$(count)
post dev /v1/renew "$D/renew2.json"
got lost "POST /v1/renew with the same key: 201 (this answer is dropped)"
LOST=$(cat "$D/lost.serial")
assert_eq "$(shown "$LOST" '.status + " " + .client_id + " " + .replaces')" \
    "not-activated dev $DEV" "the new certificate: not-activated, linked to the old one"
assert_eq "$(shown "$DEV" .status)" activated "the old certificate stays activated"
sclient dev "/v1/certs/$DEV"
assert_grep '^HTTP/1.1 200' "$D/client.log" "the old certificate still works (openssl s_client)"
# The client asks again with the same request.
post dev /v1/renew "$D/renew2.json"
got retry "the same renewal again: 201"
same_der lost retry "... the same certificate, byte for byte (cmp of the DER)"
assert_eq "$(count)" "$((n0 + 1))" "... one certificate recorded for both requests"
p11ca audit list --dir "$CA" >"$D/audit1.txt" 2>&1
post dev /v1/renew "$D/renew2.json"
p11ca audit list --dir "$CA" >"$D/audit2.txt" 2>&1
if cmp -s "$D/audit1.txt" "$D/audit2.txt"; then
    ok "... and a retry writes nothing to the audit trail"
else
    not_ok "... and a retry writes nothing to the audit trail"
    diag "$(diff "$D/audit1.txt" "$D/audit2.txt" | tail -n 3)"
fi

# --- A re-key asked for after the lost answer ---------------------------------
csr dev3 /CN=dev
body "$D/renew3.json" csr=@dev3
post dev /v1/renew "$D/renew3.json"
got dev3 "a renewal with another key: 201"
DEV3=$(cat "$D/dev3.serial")
if [ "$DEV3" != "$LOST" ] && ! cmp -s "$D/dev3.der" "$D/lost.der"; then
    ok "... a new certificate"
else
    not_ok "... a new certificate"
fi
assert_eq "$(shown "$LOST" '.status + " " + (.reason // "")')" "revoked superseded" \
    "... the one never confirmed is revoked (superseded): it may be in a client's hands"
assert_eq "$(shown "$DEV3" '.status + " " + .replaces')" "not-activated $DEV" \
    "... the new one pending, linked to the old certificate"
assert_eq "$(count)" "$((n0 + 2))" "... recorded once"
cp "$D/dev2.key" "$D/lost.key"
refused lost "$LOST" revoked "the revoked pending certificate is refused at the handshake"
post dev /v1/renew "$D/renew3.json"
got dev3b "the re-key asked again with its key: 201"
same_der dev3 dev3b "... the same certificate"
assert_eq "$(count)" "$((n0 + 2))" "... nothing recorded"

# --- The first handshake of the new certificate swaps them --------------------
assert_eq "$(shown "$DEV" .status)" activated "before its first connection: the old one activated"
sclient dev3 "/v1/certs/$DEV3"
assert_grep '^HTTP/1.1 200' "$D/client.log" \
    "the new certificate's first handshake (openssl s_client): admitted, 200"
assert_grep "\"serial\":\"$DEV3\",.*\"status\":\"activated\"|\"status\":\"activated\".*\"serial\":\"$DEV3\"" \
    "$D/client.log" "... and on that connection it reads itself activated"
assert_eq "$(shown "$DEV" '.status + " " + (.reason // "")')" "revoked superseded" \
    "the old certificate is revoked (superseded), as the profile says"
refused dev "$DEV" revoked "the old certificate is refused at its next connection"
sclient dev3 /healthz
assert_grep '^HTTP/1.1 200' "$D/client.log" "the new certificate's next connection: served"
assert_grep "renewal confirmed: $DEV3 of CA [0-9]+ replaces" "$D/serve.log" \
    "the service's log says which certificate took over"
# The CRL is made again by a worker after the swap: until it lists it.
crl_has() {
    api carol GET /v1/crl
    openssl crl -inform DER -in "$D/body" -noout -text 2>/dev/null |
        grep -q "Serial Number: $1\$"
}
i=0
until crl_has "$DEV" || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
if crl_has "$DEV"; then
    ok "the CRL lists the superseded certificate"
else
    not_ok "the CRL lists the superseded certificate"
fi
# The old certificate cannot renew any more (refused at the handshake).
post dev /v1/renew "$D/renew2.json"
case $CODE in
curl-failed*) ok "the old certificate cannot renew again: refused at the handshake" ;;
*) not_ok "the old certificate cannot renew again (status $CODE)" ;;
esac

# --- gnutls-cli, TLS 1.2: re-key and swap -------------------------------------
csr dev4 /CN=dev
body "$D/renew4.json" csr=@dev4
post dev3 /v1/renew "$D/renew4.json"
got dev4 "dev3 re-keys: 201"
DEV4=$(cat "$D/dev4.serial")
gnutls dev4 "/v1/certs/$DEV4"
assert_grep '^HTTP/1.1 200' "$D/gnutls.log" "the first handshake with gnutls-cli (TLS 1.2): 200"
assert_eq "$(shown "$DEV4" .status) $(shown "$DEV3" .status)" "activated revoked" \
    "... the new one activated, the old one revoked"
gnutls dev3 /healthz
assert_no_grep '^HTTP/1.1 200' "$D/gnutls.log" "gnutls-cli: the old certificate is refused"

# --- Two connections of a pending certificate at once: one swap ---------------
csr dev5 /CN=dev "$D/dev4.key"
body "$D/renew5.json" csr=@dev5
post dev4 /v1/renew "$D/renew5.json"
got dev5 "dev4 renews: 201"
DEV5=$(cat "$D/dev5.serial")
# get_as NAME PATH OUT: curl as NAME, the body in OUT.
get_as() {
    curl -sS -o "$3" --cacert "$CA/ca.pem" --cert "$D/$1.pem" --key "$D/$1.key" \
        "https://127.0.0.1:$PORT$2" 2>/dev/null
}
get_as dev5 "/v1/certs/$DEV5" "$D/p1.json" &
p1=$!
get_as dev5 "/v1/certs/$DEV5" "$D/p2.json"
c2=$?
wait $p1
if [ "$c2" = 0 ] && [ "$(jq -r .status "$D/p1.json")" = activated ] &&
    [ "$(jq -r .status "$D/p2.json")" = activated ]; then
    ok "two first connections at once: both served, the certificate activated"
else
    not_ok "two first connections at once: both served (status $c2)"
    diag "$(cat "$D/p1.json" "$D/p2.json")"
fi
assert_eq "$(grep -c "renewal confirmed: $DEV5 " "$D/serve.log")" 1 "... one swap"
assert_eq "$(shown "$DEV4" .status)" revoked "... the old one revoked once"

# --- A renewal deactivated by an operator is not swapped in again ------------
csr dev6 /CN=dev "$D/dev4.key"
body "$D/renew6.json" csr=@dev6
post dev5 /v1/renew "$D/renew6.json"
got dev6 "dev5 renews: 201"
DEV6=$(cat "$D/dev6.serial")
api bob POST "/v1/certs/$DEV6/revoke" -H 'Content-Type: application/json' \
    -d '{"reason":"keyCompromise"}'
expect 200 .status revoked "an operator revokes the pending renewal"
refused dev6 "$DEV6" revoked "... it is refused at the handshake"
assert_eq "$(shown "$DEV5" .status)" activated "... the certificate it renewed stays activated"
csr dev7 /CN=dev "$D/dev4.key"
body "$D/renew7.json" csr=@dev7
post dev5 /v1/renew "$D/renew7.json"
got dev7 "the device renews again with the same key: 201, a new certificate"
if [ "$(cat "$D/dev7.serial")" != "$DEV6" ]; then
    ok "... not the revoked one"
else
    not_ok "... not the revoked one"
fi

# --- Bad input: a clear error, nothing recorded --------------------------------
n1=$(count)
printf '{"csr": ' >"$D/bad.json"
post dev5 /v1/renew "$D/bad.json"
expect_problem 400 malformed-json '.' "malformed JSON: 400"
printf '{"csr": "not a CSR"}' >"$D/bad.json"
post dev5 /v1/renew "$D/bad.json"
expect_problem 400 bad-csr 'one PEM certificate request' "a CSR that is no CSR: 400"
csr other /CN=other "$D/dev4.key"
body "$D/bad.json" csr=@other
post dev5 /v1/renew "$D/bad.json"
expect_problem 403 forbidden 'a renewal keeps the subject "CN=dev"' "another subject: 403"
post none /v1/renew "$D/renew7.json"
expect_problem 401 unauthenticated 'needs a client certificate' "no client certificate: 401"
assert_eq "$(count)" "$n1" "none of them recorded anything"
assert_eq "$(shown "$DEV5" .status)" activated "... and the device's certificate still works"

# --- Enrollment codes asked again ---------------------------------------------
api bob POST /v1/enrollment-codes -H 'Content-Type: application/json' \
    -d '{"profile":"client","client_id":"cody","expires_in":3600}'
expect 201 "a code for cody"
CODY_CODE=$(jq -r .code "$D/body")
csr cody /CN=cody
body "$D/cody.json" csr=@cody "code=$CODY_CODE"
post none /v1/enroll "$D/cody.json"
got cody "POST /v1/enroll with the code: 201 (this answer is dropped)"
n2=$(count)
post none /v1/enroll "$D/cody.json"
got cody2 "the same code and CSR again: 201"
same_der cody cody2 "... the certificate the code gave, byte for byte"
csr cody3 /CN=cody "$D/cody.key"
body "$D/cody3.json" csr=@cody3 "code=$CODY_CODE"
post none /v1/enroll "$D/cody3.json"
got cody3 "the same code with a new CSR of the same key: 201"
same_der cody cody3 "... the same certificate"
csr cody4 /CN=cody
body "$D/cody4.json" csr=@cody4 "code=$CODY_CODE"
post none /v1/enroll "$D/cody4.json"
expect_problem 403 forbidden '^the enrollment code is unknown, used or expired$' \
    "the same code with another key: 403"
assert_eq "$(count)" "$n2" "... retries recorded nothing"
api bob POST "/v1/certs/$(cat "$D/cody.serial")/revoke" \
    -H 'Content-Type: application/json' -d '{"reason":"keyCompromise"}'
expect 200 .status revoked "an operator revokes cody's certificate"
post none /v1/enroll "$D/cody.json"
expect_problem 403 forbidden '^the enrollment code is unknown, used or expired$' \
    "... the code asked again gives nothing now: 403"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

# --- The code past its expiry: the service an hour later -----------------------
serve_config "signup_limit = off"
SERVE_ENV="P11CA_TEST_CLOCK=$((T0 + 3600))"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
csr ann /CN=ann
api bob POST /v1/enrollment-codes -H 'Content-Type: application/json' \
    -d '{"profile":"client","client_id":"ann","expires_in":60}'
ANN_CODE=$(jq -r .code "$D/body")
body "$D/ann.json" csr=@ann "code=$ANN_CODE"
post none /v1/enroll "$D/ann.json"
got ann "a code for ann, used: 201"
serve_stop
SERVE_ENV="P11CA_TEST_CLOCK=$((T0 + 3600 + 61))"
serve_config "signup_limit = off"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
n3=$(count)
post none /v1/enroll "$D/ann.json"
expect_problem 403 forbidden '^the enrollment code is unknown, used or expired$' \
    "the code asked again after it expired: 403"
assert_eq "$(count)" "$n3" "... nothing recorded"
serve_stop

# --- supersede = keep: the old certificate deactivated -------------------------
sed -i 's/^supersede *= *revoke$/supersede = keep/' "$CA/ca.cnf.base"
serve_config "signup_limit = off"
SERVE_ENV="P11CA_TEST_CLOCK=$((T0 + 3600 + 61))"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
csr dev8 /CN=dev "$D/dev4.key"
body "$D/renew8.json" csr=@dev8
DEV7=$(cat "$D/dev7.serial")
sclient dev7 /healthz
assert_grep '^HTTP/1.1 200' "$D/client.log" "dev7's first connection swaps it in"
post dev7 /v1/renew "$D/renew8.json"
got dev8 "with supersede = keep, dev7 renews: 201"
DEV8=$(cat "$D/dev8.serial")
sclient dev8 "/v1/certs/$DEV8"
assert_grep '^HTTP/1.1 200' "$D/client.log" "the new certificate's first connection: 200"
assert_eq "$(shown "$DEV7" .status) $(shown "$DEV8" .status)" "not-activated activated" \
    "... the old one deactivated (kept, not revoked), the new one activated"
refused dev7 "$DEV7" not-activated "the deactivated old certificate is refused at its next connection"
# An operator deactivates the new one and activates the old one again: the
# new one is no pending renewal (it was activated once), never swapped in.
api bob POST "/v1/certs/$DEV8/deactivate"
expect 200 .status not-activated "an operator deactivates the new certificate"
api bob POST "/v1/certs/$DEV7/activate"
expect 200 .status activated "... and activates the old one again"
api dev8 GET /healthz
expect_problem 403 not-activated 'renews no activated certificate|not activated' \
    "the deactivated certificate is not swapped in again: 403"
assert_eq "$(shown "$DEV7" .status) $(shown "$DEV8" .status)" "activated not-activated" \
    "... the statuses the operator set stay"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
echo "1..$TAP_N"
done_testing
