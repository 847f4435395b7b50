#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca serve's REST API through curl: health, metrics, the CRL, searches
# with filters and cursor paging, one certificate, the lifecycle and its
# refusals, registration, registered CAs and their auto-registration, who
# may do what (401, 403 audited), and every error path (malformed JSON,
# oversized bodies, unknown serial, 404, 405); TLS 1.2 and 1.3, IPv6;
# SIGTERM ends it with status 0.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

# The CA key signs the audit trail's head after every change (a worker
# does, when a head is due: here after each entry).
sed -i 's/^audit_sign_every *= *[0-9]*$/audit_sign_every = 1/' "$CA/ca.cnf.base"
serve_config ""
serve_start || { echo "Bail out! the service did not start"; exit 1; }
DAVE=$(cert_serial "$D/dave.pem")
ALICE=$(cert_serial "$D/alice.pem")

# --- Public routes -------------------------------------------------------
api none GET /healthz
expect 200 .status ok "GET /healthz answers without a client certificate"
api none GET /metrics
if [ "$CODE" = 200 ] && grep -qi '^content-type: text/plain; version=0.0.4' "$D/hdr" &&
    grep -q '^p11ca_requests_total{route="GET /healthz",code="200"} 1$' "$D/body" &&
    grep -q '^p11ca_registry_certificates{status="activated"} 5$' "$D/body" &&
    grep -q '^# TYPE p11ca_request_duration_seconds histogram$' "$D/body"; then
    ok "GET /metrics: Prometheus text with requests by route and code, the registry by status"
else
    not_ok "GET /metrics: Prometheus text (status $CODE)"
    diag "$(head -n 20 "$D/body")"
fi
api none GET /v1/crl
cp "$D/body" "$D/crl1.der"
if [ "$CODE" = 200 ] && grep -qi '^content-type: application/pkix-crl' "$D/hdr" &&
    openssl crl -inform DER -in "$D/crl1.der" -CAfile "$CA/ca.pem" -noout 2>&1 |
    grep -q 'verify OK'; then
    ok "GET /v1/crl: a DER CRL that verifies against the CA"
else
    not_ok "GET /v1/crl: a DER CRL that verifies against the CA (status $CODE)"
fi

# --- Who may do what -----------------------------------------------------
api none GET /v1/certs
expect_problem 401 unauthenticated 'needs a client certificate' \
    "GET /v1/certs without a client certificate: 401"
api carol GET /v1/certs
expect 200 '.items | length' 5 "the auditor lists the 5 certificates"
api dave GET "/v1/certs/$DAVE"
expect 200 .serial "$DAVE" "a device reads its own entry"
api dave GET "/v1/certs/$ALICE"
expect_problem 403 forbidden 'needs the auditor role or the certificate.s own client \(the caller is device\)' \
    "a device cannot read another certificate's entry: 403"
api dave GET /v1/certs
expect_problem 403 forbidden 'needs the auditor role' "a device cannot search: 403"
api carol POST "/v1/certs/$DAVE/deactivate"
expect_problem 403 forbidden 'needs the operator role \(the caller is auditor\)' \
    "an auditor cannot change a status: 403"
api bob POST /v1/cas -d '{}'
expect_problem 403 forbidden 'needs the admin role' "an operator cannot register a CA: 403"
# Refused calls are audited with the caller (written by a worker).
if wait_audit "api:O=p11ca tests,CN=dave serial=$DAVE +api-denied +GET /v1/certs/$ALICE"; then
    ok "a 403 lands in the audit trail with the caller's identity"
else
    not_ok "a 403 lands in the audit trail with the caller's identity"
    diag "$(tail -n 5 "$D/audit.txt")"
fi

# --- Searches and paging ---------------------------------------------------
api carol GET '/v1/certs?cn=alice'
expect 200 '.items[0].serial' "$ALICE" "?cn= finds alice"
api carol GET '/v1/certs?status=revoked'
expect 200 '.items | length' 0 "?status=revoked: none yet"
api carol GET '/v1/certs?expiring=5000d&valid=true'
expect 200 '.items | length' 5 "?expiring=5000d&valid=true: all 5"
api carol GET '/v1/certs?issued_after=2000-01-01&expires_before=@1'
expect 200 '.items | length' 0 "date filters: expires_before=@1 finds none"
api carol GET '/v1/certs?status=bogus'
expect_problem 400 bad-request 'bad value "bogus" for status' "an unknown status: 400"
api carol GET '/v1/certs?colour=red'
expect_problem 400 unknown-parameter 'unknown query parameter "colour"' \
    "an unknown query parameter: 400"
api carol GET '/v1/certs?limit=0'
expect_problem 400 bad-request 'for limit' "limit=0: 400"
api carol GET '/v1/certs?cursor=%21%21'
expect_problem 400 bad-request 'for cursor' "a forged cursor: 400"
# An offset past what the next cursor and the registry hold (found by
# tests/fuzz/api-request: the seed cursor-overflow).
api carol GET "/v1/certs?cursor=$(printf o99999999999999999999 | base64 |
    tr '+/' '-_' | tr -d '=')"
expect_problem 400 bad-request 'for cursor' "a cursor whose offset overflows: 400"
: >"$D/pages"
next="" pages=0
while :; do
    api carol GET "/v1/certs?limit=2${next:+&cursor=$next}"
    [ "$CODE" = 200 ] || break
    jq -r '.items[].serial' "$D/body" >>"$D/pages"
    pages=$((pages + 1))
    next=$(jq -r '.next_cursor // empty' "$D/body")
    if [ -z "$next" ] || [ $pages -ge 10 ]; then
        break
    fi
done
p11ca cert list --dir "$CA" --json | jq -r '.[].serial' >"$D/all"
if [ $pages -eq 3 ] && [ "$(sort "$D/pages")" = "$(sort "$D/all")" ]; then
    ok "cursor paging: 3 pages of 2 give every certificate once"
else
    not_ok "cursor paging: 3 pages of 2 give every certificate once ($pages pages)"
    diag "$(cat "$D/pages")"
fi
api carol GET "/v1/certs/$DAVE"
if [ "$CODE" = 200 ] && [ "$(jq -r '.history[0].to' "$D/body")" = activated ] &&
    [ "$(jq -r .client_id "$D/body")" = dave ] &&
    jq -j .pem "$D/body" >"$D/dave-api.pem" &&
    cmp -s "$D/dave-api.pem" "$D/dave.pem"; then
    ok "GET /v1/certs/{serial}: details, client ID, status history, the certificate"
else
    not_ok "GET /v1/certs/{serial}: details, client ID, status history, the certificate"
    diag "$(head -c 600 "$D/body")"
fi
api carol GET /v1/certs/0123456789abcdef
expect_problem 404 not-found 'no certificate with serial 0123456789ABCDEF' \
    "an unknown serial: 404, named as openssl prints it"
api carol GET /v1/certs/not-hex
expect_problem 404 not-found 'bad serial "not-hex": expected hexadecimal, as openssl x509 -serial prints it' \
    "a path that is no serial: 404 with the CLI's message"
# The serial in every form the CLI reads: lower case, colons between the
# digits (openssl x509 -text), 0x, leading zeros; the JSON names it as
# p11ca cert show --json does.
p11ca cert show --dir "$CA" --json "$DAVE" >"$D/dave-cli.json"
for form in "$(printf %s "$DAVE" | tr 'A-F' 'a-f')" \
    "$(printf %s "$DAVE" | sed 's/../&:/g; s/:$//')" "0x$DAVE" "000$DAVE"; do
    api carol GET "/v1/certs/$form"
    expect 200 .serial "$(jq -r .serial "$D/dave-cli.json")" \
        "GET /v1/certs/$form: the serial as p11ca cert show --json prints it"
done
api carol GET /v1/certs/not-hex
p11ca cert show --dir "$CA" not-hex 2>"$D/cli.err" || true
same_words "... and p11ca cert show refuses a bad serial with the same words"
api carol GET "/v1/certs?serial=$(printf %s "$DAVE" | sed 's/../&:/g; s/:$//')"
expect 200 '.items[0].serial' "$DAVE" "?serial= reads the colon form too"

# --- Lifecycle --------------------------------------------------------------
issue_key erin "/CN=erin" client
ERIN=$(cert_serial "$D/erin.pem")
api bob POST "/v1/certs/$DAVE/deactivate" -d '{"why": "lost"}'
expect 200 .status not-activated "the operator (by subject) deactivates a certificate"
p11ca cert show --dir "$CA" --json "$DAVE" >"$D/show.json"
assert_eq "$(jq -r '.history[-1].actor' "$D/show.json")" \
    "api:O=p11ca tests,CN=bob serial=$(cert_serial "$D/bob.pem")" \
    "the registry records the caller as the actor"
# What is so already is done, as the CLI answers it: 200, "changed":
# false, nothing written to the history or the audit trail.
nh=$(jq '.history | length' "$D/show.json")
api bob POST "/v1/certs/$DAVE/deactivate"
expect 200 '"\(.status) \(.changed)"' "not-activated false" \
    "deactivating twice: 200, changed false"
assert_eq "$(p11ca cert show --dir "$CA" --json "$DAVE" | jq '.history | length')" \
    "$nh" "... and nothing was written"
api bob POST "/v1/certs/$ERIN/activate"
expect 200 '"\(.status) \(.changed)"' "activated false" \
    "activating an activated certificate: 200, changed false"
p11ca cert activate --dir "$CA" --json "$ERIN" >"$D/cli.json"
assert_eq "$(jq -r '"\(.serial) \(.status) \(.changed)"' "$D/cli.json")" \
    "$(jq -r '"\(.serial) \(.status) \(.changed)"' "$D/body")" \
    "... as p11ca cert activate --json answers it"
api bob DELETE "/v1/certs/$ERIN"
expect_problem 409 lifecycle 'is activated: deactivate or revoke it before deleting it' \
    "an activated certificate cannot be deleted: 409"
api bob POST "/v1/certs/$ERIN/revoke" -d '{"reason": "sometimes"}'
expect_problem 400 bad-request 'unknown reason "sometimes"' "an unknown revocation reason: 400"
api bob POST "/v1/certs/$ERIN/revoke" -d '{"reason": "keyCompromise", "why": "stolen"}'
expect 200 '"\(.reason) \(.changed)"' "keyCompromise true" "revoke with a reason"
api bob POST "/v1/certs/$ERIN/revoke" -d '{"reason": "keyCompromise"}'
expect 200 '"\(.status) \(.changed)"' "revoked false" \
    "revoking again with the same reason: 200, changed false"
api bob POST "/v1/certs/$ERIN/revoke" -d '{"reason": "superseded"}'
expect_problem 409 lifecycle "certificate $ERIN of CA [0-9]+ is already revoked \(keyCompromise\): revocation is final and keeps its first reason, so it is not revoked again as superseded" \
    "revoking again with another reason: 409 with the CLI's message"
p11ca cert revoke --dir "$CA" --reason superseded "$ERIN" 2>"$D/cli.err" || true
same_words "... the words p11ca cert revoke prints"
api bob POST "/v1/certs/$ERIN/activate"
expect_problem 409 lifecycle 'revocation is final' "revoked is final: 409"
api bob DELETE "/v1/certs/$ERIN"
expect_problem 409 lifecycle 'the CRL must keep listing it' \
    "a revoked certificate that has not expired cannot be deleted: 409"
# The revocation makes a new CRL through a worker.
i=0
while [ $i -lt 300 ]; do
    api none GET /v1/crl
    openssl crl -inform DER -in "$D/body" -noout -text 2>/dev/null |
        grep -qi "Serial Number: *0*$ERIN" && break
    sleep 0.1
    i=$((i + 1))
done
if openssl crl -inform DER -in "$D/body" -noout -text 2>/dev/null |
    grep -A4 -i "Serial Number: *0*$ERIN" | grep -q 'Key Compromise' &&
    [ "$(openssl crl -inform DER -in "$D/body" -noout -crlnumber | cut -d= -f2)" != \
        "$(openssl crl -inform DER -in "$D/crl1.der" -noout -crlnumber | cut -d= -f2)" ]; then
    ok "the revocation is in a new CRL (new number, reason keyCompromise)"
else
    not_ok "the revocation is in a new CRL"
fi
api bob DELETE "/v1/certs/$DAVE?why=gone"
expect 204 "a not-activated certificate is deleted: 204"
api carol GET "/v1/certs/$DAVE"
expect_problem 404 not-found 'no certificate' "a deleted certificate: 404"
api bob DELETE "/v1/certs/$DAVE?force=1"
expect_problem 400 unknown-parameter 'force' "DELETE with an unknown parameter: 400"

# --- Registered CAs and registration -----------------------------------------
fleet_device dev-a
fleet_device dev-b
fleet_device dev-c
FLEET=$(jq -Rs . "$D/fleet-ca.pem")
n0=$(p11ca cert list --dir "$CA" --count)
api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/dev-a.pem")}"
expect_problem 400 issuer-not-registered 'not issued by a registered CA' \
    "registering a certificate of an unregistered CA: 400"
api alice POST /v1/cas -d "{\"certificate\": $(jq -Rs . "$D/erin.pem")}"
expect_problem 400 not-a-ca 'not a CA certificate' "registering a leaf as a CA: 400"
api alice POST /v1/cas -d "{\"certificate\": $FLEET, \"name\": \"fleet\", \"size\": 3}"
expect_problem 400 bad-request 'unknown member "size"' "an unknown member: 400"
api alice POST /v1/cas -d "{\"certificate\": $FLEET, \"name\": \"fleet\"}"
expect 201 .auto_register false "the admin registers the fleet CA (auto-registration off)"
FLEET_ID=$(jq -r .id "$D/body")
assert_grep "^[Ll]ocation: /v1/cas/$FLEET_ID" "$D/hdr" "201 names the new CA in Location"
api alice POST /v1/cas -d "{\"certificate\": $FLEET}"
expect_problem 409 conflict "registered already \\(id $FLEET_ID\\)" "registering a CA twice: 409"
api carol GET /v1/cas
expect 200 '[.items[] | select(.this_ca)] | length' 1 "GET /v1/cas lists this CA and the fleet CA"
api alice PATCH "/v1/cas/$FLEET_ID" -d '{"auto_status": "revoked"}'
expect_problem 400 bad-request 'auto_status is' "PATCH with a bad auto_status: 400"
api alice PATCH "/v1/cas/$FLEET_ID" -d '{}'
expect_problem 400 bad-request 'give auto_register' "PATCH with nothing to change: 400"
api alice PATCH /v1/cas/999 -d '{"auto_register": true}'
expect_problem 404 not-found 'no registered CA with id 999' "PATCH of an unknown CA: 404"
api alice PATCH "/v1/cas/$FLEET_ID" -d '{"auto_register": true, "auto_status": "activated"}'
expect 200 '"\(.auto_register) \(.auto_status)"' "true activated" \
    "PATCH turns auto-registration on with status activated"
p11ca audit list --dir "$CA" >"$D/audit.txt"
assert_grep "api:O=p11ca tests,CN=alice serial=$ALICE +ca-auto-register +$FLEET_ID" \
    "$D/audit.txt" "the change is audited with the admin as actor"
# What p11ca cert register refuses, the API refuses too.
api bob POST /v1/certs -d "{\"certificate\": $FLEET}"
expect_problem 400 policy 'is a CA certificate \(basicConstraints CA:TRUE\): POST /v1/cas registers a CA' \
    "registering a CA certificate as a device: 400"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/old.key" -subj /CN=old -out "$D/old.csr" 2>/dev/null
faketime -f '-3d' openssl x509 -req -in "$D/old.csr" -CA "$D/fleet-ca.pem" \
    -CAkey "$D/fleet-ca.key" -set_serial 0x01d -days 1 -out "$D/old.pem" 2>/dev/null
api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/old.pem")}"
expect_problem 400 policy 'expired on [0-9-]+T[0-9:]+Z: nothing was registered' \
    "registering an expired certificate: 400"
api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/dev-a.pem")}"
expect 201 .status registered-not-activated "an operator registers a fleet device"
assert_grep "^[Ll]ocation: /v1/certs/$(cert_serial "$D/dev-a.pem")" "$D/hdr" \
    "201 names the certificate in Location"
api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/dev-a.pem")}"
expect_problem 409 conflict 'already in the registry' "registering it again: 409"
api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/dev-b.pem"), \"client_id\": \"pump-7\", \"status\": \"activated\"}"
expect 201 '"\(.status) \(.client_id)"' "activated pump-7" \
    "registration with a client ID and status activated"
n1=$(p11ca cert list --dir "$CA" --count)
assert_eq "$n1" $((n0 + 2)) "two registrations, two records"

# --- One serial, two issuers ---------------------------------------------------
# A certificate is (issuer, serial): a fleet device may have alice's serial.
api carol GET /v1/cas
THIS_ID=$(jq -r '.items[] | select(.this_ca) | .id' "$D/body")
fleet_device twin file "$ALICE"
api bob POST /v1/certs -d "{\"certificate\": $(jq -Rs . "$D/twin.pem")}"
expect 201 '"\(.serial) \(.ca_id)"' "$ALICE $FLEET_ID" \
    "a fleet device with alice's serial is registered (serials are unique per issuer)"
assert_grep "^[Ll]ocation: /v1/certs/$ALICE\\?issuer=$FLEET_ID" "$D/hdr" \
    "... and Location names it by serial and issuer"
api carol GET "/v1/certs/$ALICE"
expect_problem 409 ambiguous-serial \
    "serial $ALICE is ambiguous: the CAs $THIS_ID, $FLEET_ID each have a certificate with it; add \\?issuer=ID" \
    "a serial that two CAs have, without issuer: 409 ambiguous-serial"
api carol GET "/v1/certs/$ALICE?issuer=fleet"
expect 200 '"\(.cn) \(.ca_id)"' "twin $FLEET_ID" "?issuer=NAME: the fleet device"
api carol GET "/v1/certs/$ALICE?issuer=$THIS_ID"
expect 200 '"\(.cn) \(.ca_id) \(.history | length)"' "alice $THIS_ID 1" \
    "?issuer=ID: alice's certificate, with its own history"
api carol GET "/v1/certs/$ALICE?issuer=nosuch"
expect_problem 404 not-found 'no registered CA "nosuch"' "an unknown issuer: 404"
api carol GET "/v1/certs/$ALICE?issuer="
expect_problem 400 bad-request 'issuer is empty' "an empty issuer: 400"
api carol GET "/v1/certs/$ALICE?color=red"
expect_problem 400 unknown-parameter 'unknown query parameter "color"' \
    "GET /v1/certs/{serial} with an unknown parameter: 400"
api carol GET "/v1/certs?serial=$ALICE"
expect 200 '.items | length' 2 "a search by serial lists both"
api carol GET "/v1/certs?serial=$ALICE&issuer=$FLEET_ID"
expect 200 '[.items[].cn] | join(",")' twin "... and ?issuer= narrows it to one CA"
api carol GET '/v1/certs?issuer=nosuch'
expect_problem 400 bad-request 'issuer: no registered CA "nosuch"' \
    "a search with an unknown issuer: 400"
api bob POST "/v1/certs/$ALICE/activate"
expect_problem 409 ambiguous-serial 'add \?issuer=' "a change without issuer: 409, nothing changed"
api bob POST "/v1/certs/$ALICE/activate?issuer=$FLEET_ID"
expect 200 '"\(.cn) \(.status)"' "twin activated" "activate ?issuer=: the fleet device only"
api bob POST "/v1/certs/$ALICE/revoke?issuer=$FLEET_ID" -d '{"reason": "superseded"}'
expect 200 '"\(.cn) \(.status)"' "twin revoked" "revoke ?issuer=: the fleet device only"
api bob DELETE "/v1/certs/$ALICE?issuer=$FLEET_ID&why=test"
expect 204 "a revoked certificate of an external CA is deleted (this CA's CRL never lists it)"
p11ca cert show --dir "$CA" --json --issuer "$THIS_ID" "$ALICE" >"$D/alice.json"
assert_eq "$(jq -r '"\(.status) \(.history | length)"' "$D/alice.json")" "activated 1" \
    "alice's certificate was not touched"
api carol GET "/v1/certs/$ALICE"
expect 200 .cn alice "one issuer again: the serial alone finds alice"

# --- Bad bodies change nothing ---------------------------------------------------
api bob POST /v1/certs -d '{"certificate": '
expect_problem 400 malformed-json 'not JSON' "malformed JSON: 400"
api bob POST /v1/certs -d '["a"]'
expect_problem 400 malformed-json 'must be a JSON object' "a JSON array: 400"
api bob POST /v1/certs -d '{"certificate": "not a PEM"}'
expect_problem 400 bad-request 'PEM certificate' "a certificate that is no PEM: 400"
api bob POST /v1/certs -d '{"certificate": 7}'
expect_problem 400 bad-request 'certificate is a string' "a certificate that is no string: 400"
head -c 100000 /dev/zero | tr '\0' a >"$D/big"
api bob POST /v1/certs -H 'Content-Type: application/json' --data-binary @"$D/big"
expect_problem 413 body-too-large 'has 100000 bytes; at most 65536' \
    "a 100 kB body: 413 problem"
head -c 400000 /dev/zero | tr '\0' a >"$D/huge"
# With Expect: 100-continue the client sends no body before the answer:
# otherwise libevent's close after its 413 races the upload (curl: "Send
# failure: Broken pipe" when the close wins).
api bob POST /v1/certs -H 'Expect: 100-continue' --expect100-timeout 600 \
    --data-binary @"$D/huge"
expect 413 "a 400 kB body: 413 from libevent's own limit (4 x max_body_bytes)"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n1" "refused bodies recorded nothing"

# --- Methods, paths, TLS versions, IPv6 ----------------------------------------
api carol PUT /v1/certs
if [ "$CODE" = 405 ] && grep -qi '^allow: GET, POST' "$D/hdr" &&
    [ "$(jq -r .code "$D/body")" = method-not-allowed ]; then
    ok "PUT /v1/certs: 405 with Allow: GET, POST"
else
    not_ok "PUT /v1/certs: 405 with Allow (status $CODE)"
fi
api carol GET /v2/certs
expect_problem 404 not-found 'no resource /v2/certs' "an unknown path: 404"
for v in 1.2 1.3; do
    curl -sS -v --tlsv1.2 --tls-max "$v" --cacert "$CA/ca.pem" \
        "https://127.0.0.1:$PORT/healthz" >"$D/body" 2>"$D/curl.v"
    if grep -q "SSL connection using TLSv$v" "$D/curl.v" &&
        [ "$(jq -r .status "$D/body")" = ok ]; then
        ok "TLS $v"
    else
        not_ok "TLS $v"
        diag "$(grep -i 'SSL' "$D/curl.v" | head -n 5)"
    fi
done
if [ "$SERVE_V6" = no ]; then
    skip "IPv6: no [::1] on this machine"
elif [ "$(curl -sS --cacert "$CA/ca.pem" "https://[::1]:$PORT/healthz" | jq -r .status)" = ok ]; then
    ok "IPv6: [::1] answers"
else
    not_ok "IPv6: [::1] answers"
fi

# --- Access log and shutdown -----------------------------------------------------
assert_grep "^[0-9T:.-]+Z 127\.0\.0\.1:[0-9]+ \"GET /v1/certs/$DAVE\" 200 serial=$DAVE role=device [0-9.]+ms\$" \
    "$D/access.log" "the access log: method, path, status, peer serial, duration"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
assert_grep 'SIGTERM: no new connections' "$D/serve.log" "SIGTERM is logged"
check "the audit trail is intact" p11ca audit verify --dir "$CA"
assert_grep 'certificates: [0-9]+, each with the status its audited history leads to' \
    "$TT/out" "... and every status the API set is the one its audited history leads to"
assert_grep '; 0 entries after the last signed head' "$TT/out" \
    "... and the service's workers signed the head after the last change (audit_sign_every = 1)"

# The example systemd unit is valid (with this build's p11ca).
if command -v systemd-analyze >/dev/null; then
    sed -e "s|/usr/local/bin/p11ca|$P11CA|" -e '/^Documentation=/d' \
        "$top_srcdir/docs/p11ca-serve.service" >"$D/p11ca-serve.service"
    if systemd-analyze verify "$D/p11ca-serve.service" >"$D/sa.out" 2>&1 &&
        [ ! -s "$D/sa.out" ]; then
        ok "docs/p11ca-serve.service passes systemd-analyze verify"
    else
        not_ok "docs/p11ca-serve.service passes systemd-analyze verify"
        diag "$(cat "$D/sa.out")"
    fi
else
    skip "systemd-analyze is not installed"
fi

echo "1..$TAP_N"
done_testing
