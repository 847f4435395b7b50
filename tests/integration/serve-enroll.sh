#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Enrollment over the network through curl: one-time enrollment codes
# (POST /v1/enrollment-codes), POST /v1/enroll with a code or as an
# operator, POST /v1/renew with the device's own certificate (same key and
# re-key); every refusal (401, 403 for a bad, used or expired code, a code
# used for something else, a wrong role, 400 malformed JSON, bad CSR, CSR
# against the policy, unknown profile, 409 client ID held, 413, 429 burst
# with nothing else recorded); two requests racing for one code: exactly
# one wins.  The registry's clock is the test clock (P11CA_TEST_CLOCK): an
# expired code is a later start of the service, never a sleep.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

# The registry's own sign-up limit counts per second of the test clock,
# which stands still here: lifted, so that the service's buckets decide.
sed -i 's/^rate_limit *= *[0-9]*$/rate_limit = 10000/' "$CA/ca.cnf.base"
T0=$(date +%s)
# zed: admin by subject (a line of [ serve_roles ]).
SERVE_SECTIONS="zed = admin subject:O=p11ca tests,CN=zed"
serve_config "signup_limit = off"
SERVE_ENV="P11CA_TEST_CLOCK=$T0"
serve_start || { echo "Bail out! the service did not start"; exit 1; }

# csr NAME SUBJECT [KEYOPTS]: NAME.key and NAME.csr (P-256 unless KEYOPTS).
csr() {
    if [ -n "${3:-}" ]; then
        openssl req -new -newkey "$3" -nodes -keyout "$D/$1.key" -subj "$2" \
            -out "$D/$1.csr" 2>/dev/null
    else
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$D/$1.key" -subj "$2" -out "$D/$1.csr" 2>/dev/null
    fi
}
# body FILE KEY=VALUE...: a JSON object of strings in FILE ("csr=@NAME"
# takes NAME.csr's text).
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
# post WHO PATH FILE: POST the JSON in FILE.
post() {
    api "$1" POST "$2" -H 'Content-Type: application/json' \
        --data-binary "@$3"
}
# newcode WHO KEY=VALUE...: POST /v1/enrollment-codes; CODE, $D/body.
newcode() {
    who=$1
    shift
    printf '{}' >"$D/code.json"
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        if [ "$k" = expires_in ]; then
            jq --arg k "$k" --argjson v "$v" '. + {($k): $v}' "$D/code.json"
        else
            jq --arg k "$k" --arg v "$v" '. + {($k): $v}' "$D/code.json"
        fi >"$D/code.t" && mv "$D/code.t" "$D/code.json"
    done
    post "$who" /v1/enrollment-codes "$D/code.json"
}
# issued NAME DESC: the last answer is 201 with a certificate that verifies
# against its chain; NAME.pem gets it, NAME.serial its serial.
issued() {
    if [ "$CODE" = 201 ] && jq -r .certificate "$D/body" >"$D/$1.pem" &&
        jq -r '.chain[]' "$D/body" >"$D/$1.chain" &&
        [ "$(jq -r .serial "$D/body")" = "$(cert_serial "$D/$1.pem")" ] &&
        openssl verify -CAfile "$D/$1.chain" "$D/$1.pem" >/dev/null 2>&1; then
        jq -r .serial "$D/body" >"$D/$1.serial"
        ok "$2"
    else
        not_ok "$2 (status $CODE)"
        diag "$(head -c 600 "$D/body")"
    fi
}
# shown SERIAL JQ: a value of p11ca cert show --json.
shown() {
    p11ca cert show --dir "$CA" --json "$1" | jq -r "$2"
}

# --- Enrollment codes ----------------------------------------------------
newcode bob profile=client client_id=eve expires_in=3600
EVE_CODE=$(jq -r .code "$D/body")
if [ "$CODE" = 201 ] && printf %s "$EVE_CODE" | grep -Eq '^[0-9a-f]{40}$' &&
    [ "$(jq -r .client_id "$D/body")" = eve ] &&
    [ "$(jq -r .profile "$D/body")" = client ] &&
    [ "$(jq -r .expires "$D/body")" = "$(date -u -d "@$((T0 + 3600))" +%Y-%m-%dT%H:%M:%SZ)" ]; then
    ok "POST /v1/enrollment-codes (operator): 201, a 160-bit code, its profile, client ID and expiry"
else
    not_ok "POST /v1/enrollment-codes (operator): 201 (status $CODE)"
    diag "$(head -c 600 "$D/body")"
fi
newcode carol profile=client client_id=x
expect_problem 403 forbidden 'needs the operator role \(the caller is auditor\)' \
    "an auditor cannot make a code: 403"
newcode none profile=client client_id=x
expect_problem 401 unauthenticated 'needs a client certificate' \
    "no client certificate: 401"
newcode bob profile=nosuch client_id=x
expect_problem 400 unknown-profile 'the CA has no profile "nosuch"' \
    "a code for an unknown profile: 400"
newcode bob profile=client client_id=x expires_in=5
expect_problem 400 bad-request 'expires_in is a number of seconds from 60 to 2592000, or a duration' \
    "expires_in below the bound: 400"
newcode bob profile=client client_id=x expires_in=99999999
expect_problem 400 bad-request 'expires_in is a number of seconds' \
    "expires_in above the bound: 400"
newcode bob profile=client client_id=x expires_in='"soon"'
expect_problem 400 bad-request 'or a duration \(30m, 24h, 7d\)' \
    "expires_in neither seconds nor a duration: 400"
newcode bob profile=client client_id=dur expires_in='"2h"'
expect 201 .expires "$(date -u -d "@$((T0 + 7200))" +%Y-%m-%dT%H:%M:%SZ)" \
    "expires_in as a duration (2h)"
newcode bob profile=client
expect_problem 400 bad-request 'give a profile and a client_id or a subject' \
    "neither client_id nor subject: 400"
newcode bob profile=client client_id=x colour=red
expect_problem 400 bad-request 'unknown member "colour"' "an unknown member: 400"
# A code for later (expired at the service's next start).
newcode bob profile=client client_id=late expires_in=60
LATE_CODE=$(jq -r .code "$D/body")
expect 201 "a code valid for 60 s"
# A code bound to a subject: its client ID is the subject's CN.
newcode bob profile=client "subject=/CN=ivy/O=p11ca tests"
IVY_CODE=$(jq -r .code "$D/body")
expect 201 .client_id ivy "a code bound to a subject: client ID from its CN"

# --- POST /v1/enroll with a code ----------------------------------------
csr eve /CN=eve
body "$D/req.json" csr=@eve "code=$EVE_CODE"
post none /v1/enroll "$D/req.json"
issued eve "POST /v1/enroll with a code, no client certificate: 201, a certificate that verifies against the chain"
EVE=$(cat "$D/eve.serial" 2>/dev/null)
assert_eq "$(shown "$EVE" '.status + " " + .client_id + " " + .profile')" \
    "activated eve client" "... recorded activated, with the code's client ID and profile"
# The same request again (an answer lost): the same certificate.
n0=$(p11ca cert list --dir "$CA" --count)
post none /v1/enroll "$D/req.json"
if [ "$CODE" = 201 ] && [ "$(jq -r .certificate "$D/body")" = "$(cat "$D/eve.pem")" ]; then
    ok "the same code and key again: 201, the certificate it gave"
else
    not_ok "the same code and key again: 201, the certificate it gave (status $CODE)"
    diag "$(head -c 600 "$D/body")"
fi
csr eve-other /CN=eve
body "$D/req.json" csr=@eve-other "code=$EVE_CODE"
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden '^the enrollment code is unknown, used or expired$' \
    "the same code with another key: 403"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" "... nothing recorded"
body "$D/req.json" csr=@eve code=0123456789abcdef0123456789abcdef01234567
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden '^the enrollment code is unknown, used or expired$' \
    "an unknown code: 403, the same answer"
# A code fixes the profile, the client ID and the CN: a request for
# anything else is refused, and the code stays usable.
newcode bob profile=client client_id=gina
GINA_CODE=$(jq -r .code "$D/body")
csr gina /CN=gina
body "$D/req.json" csr=@gina "code=$GINA_CODE" profile=server
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'the enrollment code is for profile "client", not "server"' \
    "a code used for another profile: 403"
body "$D/req.json" csr=@gina "code=$GINA_CODE" client_id=bob
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'the enrollment code is for client ID "gina", not "bob"' \
    "a code used for another client ID: 403"
csr gina-as-hal /CN=hal
body "$D/req.json" csr=@gina-as-hal "code=$GINA_CODE"
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'the CSR.s subject must have CN=gina' \
    "a code for gina with a CSR named hal: 403"
csr gina-as-bob "/CN=bob/O=p11ca tests"
body "$D/req.json" csr=@gina-as-bob "code=$GINA_CODE"
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'the subject "O=p11ca tests,CN=bob" has a role in \[ serve \] roles \(bob\)' \
    "a code for gina with a CSR named bob (an operator's subject): 403, the subject has a role"
# A code's holder chooses no subjectAltName: the code stays usable.
csr gina-san /CN=gina
openssl req -new -key "$D/gina-san.key" -subj /CN=gina \
    -addext subjectAltName=email:admin@corp -out "$D/gina-san.csr" 2>/dev/null
body "$D/req.json" csr=@gina-san "code=$GINA_CODE"
post none /v1/enroll "$D/req.json"
expect_problem 400 policy 'a CSR enrolled with a code may not ask for a subjectAltName' \
    "a code with a CSR asking for SAN email:admin@corp: 400 policy"
body "$D/req.json" csr=@gina "code=$GINA_CODE" profile=client client_id=gina
post none /v1/enroll "$D/req.json"
issued gina "... the refused requests left the code usable: 201"
csr ivy-other "/CN=ivy/O=elsewhere"
body "$D/req.json" csr=@ivy-other "code=$IVY_CODE"
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'the enrollment code is for the subject "O=p11ca tests,CN=ivy"' \
    "a code bound to a subject, a CSR with another: 403"
csr ivy "/CN=ivy/O=p11ca tests"
body "$D/req.json" csr=@ivy "code=$IVY_CODE"
post none /v1/enroll "$D/req.json"
issued ivy "... with the subject: 201"

# --- No certificate with a role, no profile but TLS client and server ------
# zed is admin by subject (SERVE_SECTIONS); bob is operator by subject.
n0=$(p11ca cert list --dir "$CA" --count)
newcode bob profile=client "subject=/CN=zed/O=p11ca tests"
expect_problem 403 forbidden 'the subject "O=p11ca tests,CN=zed" has a role in \[ serve \] roles \(zed\)' \
    "a code for a subject mapped to admin: 403"
newcode bob profile=client "subject=/CN=BOB/O=p11ca tests"
expect_problem 403 forbidden 'has a role in \[ serve \] roles \(bob\)' \
    "a code for an operator's subject in other case: 403"
csr zed "/CN=zed/O=p11ca tests"
body "$D/req.json" csr=@zed profile=client
post bob /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'the subject "O=p11ca tests,CN=zed" has a role in \[ serve \] roles \(zed\)' \
    "an operator enrolls a subject mapped to admin: 403"
body "$D/req.json" csr=@zed profile=client client_id=zed2
post bob /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'has a role' "... with another client_id: 403"
# A code for the client ID zed, used with the admin's subject.
newcode bob profile=client client_id=zed
ZED_CODE=$(jq -r .code "$D/body")
expect 201 "a code for the client ID zed: 201"
body "$D/req.json" csr=@zed "code=$ZED_CODE"
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'has a role in \[ serve \] roles \(zed\)' \
    "that code with the admin's subject: 403"
for prof in ocsp intermediate; do
    newcode bob profile=$prof client_id=x
    expect_problem 400 policy "profile \"$prof\" is not enrolled over the network: it makes (OCSP signers|CA certificates)" \
        "a code for profile $prof: 400 policy"
    csr "op-$prof" "/CN=op-$prof"
    body "$D/req.json" "csr=@op-$prof" profile=$prof
    post bob /v1/enroll "$D/req.json"
    expect_problem 400 policy "profile \"$prof\" is not enrolled over the network" \
        "an operator enrolls under profile $prof: 400 policy"
done
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" \
    "... none of them recorded anything"
csr zed-ok /CN=zed
body "$D/req.json" csr=@zed-ok "code=$ZED_CODE"
post none /v1/enroll "$D/req.json"
issued zed-ok "... the code for zed stayed usable: 201 with CN=zed"
# An operator keeps the profile's SAN policy, as p11ca issue.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/olga.key" -subj /CN=olga -addext subjectAltName=email:olga@example.com \
    -out "$D/olga.csr" 2>/dev/null
body "$D/req.json" csr=@olga profile=client
post bob /v1/enroll "$D/req.json"
issued olga "an operator enrolls a CSR with a SAN under the client profile: 201"

# Two requests race for one code: exactly one certificate.
newcode bob profile=client client_id=frank
FRANK_CODE=$(jq -r .code "$D/body")
csr frank1 /CN=frank
csr frank2 /CN=frank
body "$D/race1.json" csr=@frank1 "code=$FRANK_CODE"
body "$D/race2.json" csr=@frank2 "code=$FRANK_CODE"
n0=$(p11ca cert list --dir "$CA" --count)
pids=""
for i in 1 2; do
    curl -sS -o "$D/race$i.out" -w '%{http_code}' --cacert "$CA/ca.pem" \
        -H 'Content-Type: application/json' --data-binary "@$D/race$i.json" \
        "https://127.0.0.1:$PORT/v1/enroll" >"$D/race$i.code" 2>&1 &
    pids="$pids $!"
done
# shellcheck disable=SC2086 # one word per process id
wait $pids
# codes FILE...: the status codes curl -w wrote (no newline), one a line.
codes() {
    for f in "$@"; do
        cat "$f"
        echo
    done
}
assert_eq "$(codes "$D/race1.code" "$D/race2.code" | sort | tr '\n' ' ')" "201 403 " \
    "two requests with one code at once: one 201, one 403"
assert_eq "$(p11ca cert list --dir "$CA" --count)" $((n0 + 1)) \
    "... and one certificate recorded"

# --- POST /v1/enroll as an operator ---------------------------------------
csr hank /CN=hank
body "$D/req.json" csr=@hank profile=client
post bob /v1/enroll "$D/req.json"
issued hank "POST /v1/enroll by an operator (client ID from the CN): 201"
assert_eq "$(shown "$(cat "$D/hank.serial")" '.status + " " + .client_id')" \
    "activated hank" "... recorded activated for client ID hank"
csr hank2 /CN=hank
body "$D/req.json" csr=@hank2 profile=client
post bob /v1/enroll "$D/req.json"
expect_problem 409 conflict 'client ID "hank" is held by activated certificate' \
    "a second certificate for an activated client ID: 409"
body "$D/req.json" csr=@hank2 profile=client client_id=hank-2
post bob /v1/enroll "$D/req.json"
issued hank2 "... with another client_id: 201"
assert_eq "$(shown "$(cat "$D/hank2.serial")" .client_id)" hank-2 \
    "... recorded with the client_id given"
body "$D/req.json" csr=@hank2 profile=client
post dave /v1/enroll "$D/req.json"
expect_problem 403 forbidden 'needs an enrollment code or the operator role \(the caller is device\)' \
    "a device without a code: 403"
post none /v1/enroll "$D/req.json"
expect_problem 401 unauthenticated 'needs an enrollment code or the operator role' \
    "no code, no client certificate: 401"
body "$D/req.json" csr=@hank2 profile=nosuch
post bob /v1/enroll "$D/req.json"
expect_problem 400 unknown-profile 'the CA has no profile "nosuch"' \
    "an unknown profile: 400"

# --- Bad input: nothing recorded ------------------------------------------
n0=$(p11ca cert list --dir "$CA" --count)
printf '{"csr": ' >"$D/bad.json"
post bob /v1/enroll "$D/bad.json"
expect_problem 400 malformed-json 'the body is not JSON' "malformed JSON: 400"
printf '["csr"]' >"$D/bad.json"
post bob /v1/enroll "$D/bad.json"
expect_problem 400 malformed-json 'must be a JSON object' "a JSON array: 400"
body "$D/bad.json" "csr=not a CSR" profile=client
post bob /v1/enroll "$D/bad.json"
expect_problem 400 bad-csr 'must hold one PEM certificate request' "a bad CSR: 400"
body "$D/bad.json" profile=client
post bob /v1/enroll "$D/bad.json"
expect_problem 400 bad-csr 'give the CSR' "no CSR: 400"
csr weak /CN=weak rsa:1024
body "$D/bad.json" csr=@weak profile=client
post bob /v1/enroll "$D/bad.json"
expect_problem 400 policy 'RSA|1024|key' "a CSR against the CA's policy (RSA 1024): 400 policy"
# A CSR whose signature does not verify: the public key of another one.
openssl req -in "$D/hank2.csr" -outform DER -out "$D/sig.der" 2>/dev/null
size=$(wc -c <"$D/sig.der")
printf '\001' | dd of="$D/sig.der" bs=1 seek=$((size - 2)) conv=notrunc 2>/dev/null
openssl req -inform DER -in "$D/sig.der" -out "$D/badsig.csr" 2>/dev/null
body "$D/bad.json" csr=@badsig profile=client client_id=badsig
post bob /v1/enroll "$D/bad.json"
expect_problem 400 bad-request 'signature' "a CSR whose signature does not verify: 400"
body "$D/bad.json" csr=@hank2 profile=client colour=red
post bob /v1/enroll "$D/bad.json"
expect_problem 400 bad-request 'unknown member "colour"' "an unknown member: 400"
head -c 70000 /dev/zero | tr '\0' 'a' >"$D/big.json"
post bob /v1/enroll "$D/big.json"
expect_problem 413 body-too-large 'at most' "an oversized body: 413"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" \
    "none of the refused requests recorded anything"

# --- POST /v1/renew ---------------------------------------------------------
csr eve-rn "/CN=eve/O=p11ca tests"
body "$D/req.json" csr=@eve-rn
post eve /v1/renew "$D/req.json"
expect_problem 403 forbidden 'a renewal keeps the subject "CN=eve"' \
    "a renewal that changes the subject: 403"
post none /v1/renew "$D/req.json"
expect_problem 401 unauthenticated 'needs a client certificate' "renew without a certificate: 401"
openssl req -new -key "$D/eve.key" -subj /CN=eve \
    -addext subjectAltName=email:admin@corp -out "$D/eve-san.csr" 2>/dev/null
body "$D/req.json" csr=@eve-san
post eve /v1/renew "$D/req.json"
expect_problem 403 forbidden 'a renewal keeps the subjectAltName of the old certificate, which has none' \
    "a renewal that adds a SAN: 403"
assert_eq "$(shown "$EVE" .status)" activated "... the old certificate still activated"
# Same key.
openssl req -new -key "$D/eve.key" -subj /CN=eve -out "$D/eve2.csr" 2>/dev/null
cp "$D/eve.key" "$D/eve2.key"
body "$D/req.json" csr=@eve2
post eve /v1/renew "$D/req.json"
issued eve2 "POST /v1/renew with the same key: 201"
EVE2=$(cat "$D/eve2.serial" 2>/dev/null)
assert_eq "$(shown "$EVE2" '.status + " " + .client_id + " " + .profile + " " + .replaces')" \
    "not-activated eve client $EVE" "... the new certificate: pending (not-activated), same client ID and profile, replaces the old"
assert_eq "$(shown "$EVE" .status)" activated "... the old one still activated until the new one is used"
# Its first connection swaps them (p11ca enroll --renew does it too).
api eve2 GET "/v1/certs/$EVE2"
expect 200 .status activated "the new certificate's first connection: 200, activated"
assert_eq "$(shown "$EVE" '.status + " " + (.reason // "")')" "revoked superseded" \
    "... the old one superseded as the profile says"
# Re-key, with the renewed certificate.
csr eve3 /CN=eve
body "$D/req.json" csr=@eve3
post eve2 /v1/renew "$D/req.json"
issued eve3 "POST /v1/renew with a new key: 201"
api eve3 GET "/v1/certs/$(cat "$D/eve3.serial")"
expect 200 .status activated "the re-keyed certificate's first connection: activated"
assert_eq "$(shown "$(cat "$D/eve3.serial")" '.status + " " + .client_id + " " + .replaces')" \
    "activated eve $EVE2" "... activated for eve, replaces the renewed one"

# --- The audit trail -------------------------------------------------------
p11ca audit list --dir "$CA" >"$D/audit.txt" 2>&1
if grep -q 'enroll-code-create' "$D/audit.txt" && grep -q 'enroll-code-use' "$D/audit.txt" &&
    grep -q 'enroll-code-issued' "$D/audit.txt" &&
    grep -q 'enroll-code-release' "$D/audit.txt"; then
    ok "codes made, used, linked to their certificate and released are audited"
else
    not_ok "codes made, used, linked to their certificate and released are audited"
    diag "$(tail -n 10 "$D/audit.txt")"
fi
leak=no
for c in "$EVE_CODE" "$GINA_CODE" "$FRANK_CODE" "$LATE_CODE"; do
    if grep -rqF "$c" "$D/audit.txt" "$CA" "$D/access.log" "$D/serve.log"; then
        leak=yes
    fi
done
assert_eq "$leak" no "no code in the audit trail, the registry, the logs"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

# --- An expired code: the service started an hour later ----------------------
serve_config "signup_limit = off"
SERVE_ENV="P11CA_TEST_CLOCK=$((T0 + 3600))"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
csr late /CN=late
body "$D/req.json" csr=@late "code=$LATE_CODE"
n0=$(p11ca cert list --dir "$CA" --count)
post none /v1/enroll "$D/req.json"
expect_problem 403 forbidden '^the enrollment code is unknown, used or expired$' \
    "a code past its expiry: 403, the same answer"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" "... nothing recorded"
serve_stop

# --- Sign-up limit: 3, never refilled ------------------------------------------
serve_config "signup_limit = 0/3"
SERVE_ENV="P11CA_TEST_CLOCK=$T0"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
n0=$(p11ca cert list --dir "$CA" --count)
i=1
while [ $i -le 10 ]; do
    csr "burst$i" "/CN=burst$i"
    body "$D/burst$i.json" "csr=@burst$i" profile=client
    i=$((i + 1))
done
# Made-up codes at the limit's rate cost no sign-up: refused (403), they
# leave the limit to real enrollments (and to devices registering).
i=1
fake=""
while [ $i -le 10 ]; do
    body "$D/req.json" csr=@burst1 "code=$(printf '%040d' $i)"
    post none /v1/enroll "$D/req.json"
    fake="$fake$CODE "
    i=$((i + 1))
done
assert_eq "$fake" "403 403 403 403 403 403 403 403 403 403 " \
    "10 enrollments with made-up codes, limit 3: each 403"
i=1
pids=""
while [ $i -le 10 ]; do
    curl -sS -o "$D/burst$i.out" -D "$D/burst$i.hdr" -w '%{http_code}' \
        --cacert "$CA/ca.pem" --cert "$D/bob.pem" --key "$D/bob.key" \
        -H 'Content-Type: application/json' --data-binary "@$D/burst$i.json" \
        "https://127.0.0.1:$PORT/v1/enroll" >"$D/burst$i.code" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
done
# shellcheck disable=SC2086 # one word per process id
wait $pids
assert_eq "$(codes "$D"/burst*.code | sort | uniq -c | awk '{print $1 "x" $2}' | tr '\n' ' ')" \
    "3x201 7x429 " "a burst of 10 enrollments, limit 3: 3 issued, 7 refused with 429"
assert_eq "$(grep -li '^retry-after: [0-9]' "$D"/burst*.hdr | wc -l)" 7 \
    "... each 429 with Retry-After"
assert_eq "$(p11ca cert list --dir "$CA" --count)" $((n0 + 3)) \
    "... exactly 3 certificates recorded, nothing else"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
check "the audit trail is intact" p11ca audit verify --dir "$CA"

echo "1..$TAP_N"
done_testing
