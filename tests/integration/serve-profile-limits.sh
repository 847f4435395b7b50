#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Sign-up limits per profile (profile.NAME in the signup_limits section):
# a burst of enrollments under a profile with a bucket of 3 issues exactly
# 3, the rest 429 with Retry-After, and takes nothing from the CA's bucket;
# the CA's limit still holds another profile; an enrollment with a code
# refused by its profile's limit leaves the code unused and gives the CA's
# token back; a SIGHUP with an unknown profile keeps the old settings, and
# a good one applies.  Deterministic: the buckets never refill (RATE 0),
# every burst is bounded by a bucket smaller than the registry's sign-up
# limit, waits are for log lines.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

# A second enrollable profile, "device" (the server profile needs a
# subjectAltName, which enrollment does not carry).
sed -i 's/^client *= *profile_client$/&\ndevice = profile_client/' "$CA/ca.cnf.base"
grep -q '^device = profile_client$' "$CA/ca.cnf.base" ||
    { echo "Bail out! cannot add the device profile"; exit 1; }
# The CA's own id in the registry (ca init registers it first; checked
# below through GET /v1/cas).
CA_ID=1
# limits PROFILE_LINES...: [serve] with signup_limits = serve_signup.
limits() {
    # shellcheck disable=SC2034 # read by serve_config
    SERVE_SECTIONS="[ serve_signup ]
$1"
    serve_config "signup_limits = serve_signup"
    PORT=$KEEP_PORT
    sed -i "s/^listen = .*/listen = $(serve_listen "$PORT")/" "$CA/ca.cnf"
}
KEEP_PORT=$(free_port)
limits "ca.$CA_ID = 0/8
profile.client = 0/3"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
api carol GET /v1/cas
expect 200 '[.items[] | select(.this_ca)][0].id' "$CA_ID" "the CA's own id is $CA_ID"

# body FILE CSR KEY=VALUE...: a JSON request with CSR's text.
body() {
    f=$1
    c=$2
    shift 2
    jq -Rs '{csr: .}' "$c" >"$f"
    for kv in "$@"; do
        jq --arg k "${kv%%=*}" --arg v "${kv#*=}" '. + {($k): $v}' "$f" \
            >"$f.t" && mv "$f.t" "$f"
    done
}
# burst NAME N: N enrollments NAME-1.json... at once as bob; codes in
# NAME-I.code, headers in NAME-I.hdr, bodies in NAME-I.out.
burst() {
    pids=""
    i=1
    while [ "$i" -le "$2" ]; do
        curl -sS -o "$D/$1-$i.out" -D "$D/$1-$i.hdr" -w '%{http_code}' \
            --cacert "$CA/ca.pem" --cert "$D/bob.pem" --key "$D/bob.key" \
            -H 'Content-Type: application/json' \
            --data-binary "@$D/$1-$i.json" \
            "https://127.0.0.1:$PORT/v1/enroll" >"$D/$1-$i.code" 2>&1 &
        pids="$pids $!"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086 # one word per process id
    wait $pids
}
tally() {
    for f in "$D/$1"-*.code; do
        cat "$f"
        echo
    done | sort | uniq -c | awk '{print $1 "x" $2}' | tr '\n' ' '
}
# tallied NAME WANT DESC: the statuses of burst NAME; the answers on failure.
tallied() {
    if [ "$(tally "$1")" = "$2" ]; then
        ok "$3"
    else
        not_ok "$3 (got $(tally "$1"), wanted $2)"
        for f in "$D/$1"-*.out; do
            diag "$(head -c 300 "$f")"
        done
    fi
}
count() {
    p11ca cert list --dir "$CA" --count
}

# --- A burst under a profile with a bucket of 3 ------------------------------------
i=1
while [ $i -le 10 ]; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/cl-$i.key" -subj "/CN=cl-$i" -out "$D/cl-$i.csr" 2>/dev/null
    body "$D/cl-$i.json" "$D/cl-$i.csr" profile=client
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/dv-$i.key" -subj "/CN=dv-$i" -out "$D/dv-$i.csr" 2>/dev/null
    body "$D/dv-$i.json" "$D/dv-$i.csr" profile=device
    i=$((i + 1))
done
n0=$(count)
burst cl 10
tallied cl "3x201 7x429 " \
    "10 enrollments under profile client (profile.client = 0/3): 3 issued, 7 refused"
assert_eq "$(grep -li '^retry-after: 3600' "$D"/cl-*.hdr | wc -l)" 7 \
    "... each 429 with Retry-After (3600: the bucket never refills)"
assert_eq "$(grep -l 'sign-up limit of profile \\"client\\" reached' "$D"/cl-*.out | wc -l)" 7 \
    "... each a rate-limited problem naming the profile"
assert_eq "$(count)" $((n0 + 3)) "... exactly 3 certificates recorded"

# --- An enrollment with a code, refused by its profile's limit -----------------------
api bob POST /v1/enrollment-codes -H 'Content-Type: application/json' \
    -d '{"profile": "client", "client_id": "coded"}'
expect 201 "a code for profile client"
CODE1=$(jq -r .code "$D/body")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/coded.key" -subj /CN=coded -out "$D/coded.csr" 2>/dev/null
body "$D/coded.json" "$D/coded.csr" "code=$CODE1"
api none POST /v1/enroll -H 'Content-Type: application/json' --data-binary "@$D/coded.json"
expect_problem 429 rate-limited 'sign-up limit of profile "client" reached' \
    "an enrollment with a code for profile client: 429 (the profile's limit)"
if grep -qi '^retry-after: 3600' "$D/hdr"; then
    ok "... with Retry-After"
else
    not_ok "... with Retry-After"
fi
assert_eq "$(count)" $((n0 + 3)) "... nothing recorded"

# --- The CA's limit holds another profile: 8 - 3 = 5 left --------------------------------
burst dv 10
tallied dv "5x201 5x429 " \
    "then 10 under profile device: the CA's bucket (0/8) had 5 left, the 7+1 refusals took nothing from it"
assert_eq "$(grep -l 'sign-up limit of CA' "$D"/dv-*.out | wc -l)" 5 \
    "... the 429s name the CA's limit"
assert_eq "$(count)" $((n0 + 8)) "... exactly 8 certificates recorded in all"

# --- SIGHUP: an unknown profile keeps the old settings ----------------------------------
limits "ca.$CA_ID = off
profile.nosuch = 5"
kill -HUP "$SERVE_PID"
if wait_log 'SIGHUP: not reloaded \(the old settings stay\): .*profile.nosuch: the CA has no profile "nosuch"' "$D/serve.log"; then
    ok "SIGHUP with a limit for an unknown profile: not reloaded, and the log says why"
else
    not_ok "SIGHUP with a limit for an unknown profile: not reloaded"
    diag "$(tail -n 3 "$D/serve.log")"
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/clx.key" -subj /CN=clx -out "$D/clx.csr" 2>/dev/null
body "$D/clx.json" "$D/clx.csr" profile=client
api bob POST /v1/enroll -H 'Content-Type: application/json' --data-binary "@$D/clx.json"
expect_problem 429 rate-limited 'sign-up limit of profile "client" reached' \
    "... the old limits still hold"
limits "ca.$CA_ID = off
profile.client = off
profile.device = 0/1"
kill -HUP "$SERVE_PID"
if wait_log 'SIGHUP: reloaded' "$D/serve.log"; then
    ok "SIGHUP with good limits: reloaded"
else
    not_ok "SIGHUP with good limits: reloaded"
    diag "$(tail -n 3 "$D/serve.log")"
fi
api none POST /v1/enroll -H 'Content-Type: application/json' --data-binary "@$D/coded.json"
expect 201 \
    "the same code now (profile.client = off): issued, so it had stayed unused"
assert_eq "$(p11ca cert list --dir "$CA" --client-id coded --count)" 1 \
    "... recorded once, with the code's client ID"
n1=$(count)
i=1
while [ $i -le 4 ]; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/d2-$i.key" -subj "/CN=d2-$i" -out "$D/d2-$i.csr" 2>/dev/null
    body "$D/d2-$i.json" "$D/d2-$i.csr" profile=device
    i=$((i + 1))
done
burst d2 4
tallied d2 "1x201 3x429 " \
    "profile.device = 0/1 after SIGHUP, the CA's limit off: 4 enrollments, 1 issued"
assert_eq "$(count)" $((n1 + 1)) "... exactly 1 recorded"

serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
check "the audit trail is intact" p11ca audit verify --dir "$CA"

echo "1..$TAP_N"
done_testing
