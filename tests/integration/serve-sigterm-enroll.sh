#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2034 # settings read by serve-setup.sh
# SIGTERM in the middle of 200 enrollments (issue 13).  An operator makes
# 200 one-time codes; 200 clients (curl, 16 at a time, as xargs -P runs
# them) enroll with POST /v1/enroll, each with its code and a CSR of its
# own key.  The CA key is reached through the fault-injecting module: each
# C_Sign takes 20 ms, and is held while a gate file exists.  The first 50
# enroll with the gate open and are all answered; then the gate closes,
# the other 150 start, and once /metrics shows exactly 16 held on the
# token (2 workers signing, 14 queued: the 16 clients xargs runs), the
# service gets SIGTERM.  Nothing here depends on timing: the service says
# it is finishing 16 requests, a new connection is refused, the gate
# opens, the 16 get their certificates, the service exits 0, and the 134
# clients xargs starts after that get no answer (connection refused).
# Then, on the registry the service left: p11ca cert list finds exactly
# as many certificates as clients got one, none for a client that got no
# answer; every certificate a client received (parsed from each answer,
# verified by openssl) is there, activated, with the same DER (looked up
# by its serial, GET /v1/certs/{serial}); and each client that got no
# answer, sending the same request again once the service is back (what
# docs/serve.md says to do), gets its certificate.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"

N=200
FIRST=50
PAR=16
WORKERS=2

# TLS with a key file: a token TLS key would sign each handshake on the
# event loop, behind the gate too.
issue_key tlsfile /CN=localhost server DNS:localhost,IP:127.0.0.1,IP:::1 ||
    { echo "Bail out! cannot issue the TLS certificate file"; exit 1; }
SERVE_TLS_KEY=$D/tlsfile.key
SERVE_TLS_CERT=$D/tlsfile.pem
# 200 sign-ups at once: no limit (rate_limit = 0 in [ ca ], signup_limit =
# off); the audit trail's head is not signed in the middle (a C_Sign of
# its own, which would change the count of jobs held on the token).
sed -i -e '/^audit_sign_every/d' -e '/^audit_sign_minutes/d' \
    -e 's/^rate_limit *= *[0-9]*$/rate_limit = 0\naudit_sign_every = 1000000\naudit_sign_minutes = 525600/' \
    "$CA/ca.cnf.base"
grep -q '^rate_limit = 0$' "$CA/ca.cnf.base" ||
    { echo "Bail out! no rate_limit in ca.cnf"; exit 1; }
p11ca crl --dir "$CA" --out "$D/first.crl" >/dev/null 2>&1

# The clients' keys and CSRs (client IDs e001 to e200).
i=1
while [ $i -le $N ]; do
    id=$(printf 'e%03d' $i)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/$id.key" -subj "/CN=$id" -out "$D/$id.csr" 2>/dev/null ||
        { echo "Bail out! cannot make the CSR of $id"; exit 1; }
    i=$((i + 1))
done

SERVE_WORKERS=$WORKERS
serve_config "signup_limit = off"
faulty_env 'C_Sign:*:hold,C_Sign:*:sleep=20ms'
serve_start || { echo "Bail out! the service did not start"; exit 1; }

# --- 200 codes, by operator bob, on one keep-alive connection ------------------
: >"$D/codes.cfg"
i=1
while [ $i -le $N ]; do
    id=$(printf 'e%03d' $i)
    cat >>"$D/codes.cfg" <<CFG
url = "https://127.0.0.1:$PORT/v1/enrollment-codes"
cacert = "$CA/ca.pem"
cert = "$D/bob.pem"
key = "$D/bob.key"
header = "Content-Type: application/json"
data = "{\"profile\": \"client\", \"client_id\": \"$id\", \"expires_in\": \"1h\"}"
output = "$D/$id.code.json"
write-out = "%{http_code}\\n"
next
CFG
    i=$((i + 1))
done
curl -sS -K "$D/codes.cfg" >"$D/codes.status" 2>"$D/codes.err"
assert_eq "$(grep -c '^201$' "$D/codes.status")" $N "POST /v1/enrollment-codes: $N codes"
# Each client's request: its CSR and its code (jq reads the 200 codes at
# once; awk writes the JSON: a PEM CSR needs only its newlines escaped).
(cd "$D" && for k in $(seq 1 $N); do printf 'e%03d.code.json\n' "$k"; done |
    xargs jq -r '[(input_filename | rtrimstr(".code.json")), .code] | @tsv') >"$D/codes.tsv"
while IFS=$(printf '\t') read -r id code; do
    awk -v code="$code" 'BEGIN { printf "{\"csr\": \"" } { printf "%s\\n", $0 }
        END { printf "\", \"code\": \"%s\"}\n", code }' "$D/$id.csr" >"$D/$id.req"
done <"$D/codes.tsv"
assert_eq "$(cat "$D"/e*.req | jq -r 'select((.code | length) == 40 and (.csr | startswith("-----BEGIN CERTIFICATE REQUEST-----\n"))) | .code' | sort -u | wc -l)" \
    $N "$N requests, each with its own code and CSR"

# client.sh I: client I's POST /v1/enroll; the answer in eNNN.ans, the
# HTTP status (000: none) in eNNN.st, curl's exit status in eNNN.rc.
cat >"$D/client.sh" <<CLIENT
id=\$(printf 'e%03d' "\$1")
curl -sS --max-time 120 --cacert "$CA/ca.pem" -H 'Content-Type: application/json' \\
    --data-binary @"$D/\$id.req" -o "$D/\$id.ans" -w '%{http_code}' \\
    "https://127.0.0.1:$PORT/v1/enroll" >"$D/\$id.st" 2>"$D/\$id.err"
echo \$? >"$D/\$id.rc"
exit 0
CLIENT

# statuses FROM TO: the HTTP statuses clients FROM to TO got, one a line
# (nothing for a client that has not finished).
statuses() {
    for k in $(seq "$1" "$2"); do
        f=$D/$(printf 'e%03d' "$k").st
        [ ! -s "$f" ] || { cat "$f"; echo; }
    done
}

# --- The first 50, the token answering -----------------------------------------
seq 1 $FIRST | xargs -P $PAR -n 1 sh "$D/client.sh"
assert_eq "$(statuses 1 $FIRST | grep -c '^201$')" $FIRST \
    "the first $FIRST enrollments: 201"

# --- 150 more, the token held, SIGTERM with 16 in flight ---------------------
touch "$D/gate"
seq $((FIRST + 1)) $N | xargs -P $PAR -n 1 sh "$D/client.sh" &
XARGS=$!
if wait_metric p11ca_worker_jobs_running $WORKERS &&
    wait_metric p11ca_worker_queue_depth $((PAR - WORKERS)); then
    ok "$PAR enrollments in flight: $WORKERS held on the token, $((PAR - WORKERS)) queued"
else
    not_ok "$PAR enrollments in flight (running $(metric p11ca_worker_jobs_running), queued $(metric p11ca_worker_queue_depth))"
fi
assert_eq "$(statuses $((FIRST + 1)) $N)" "" "... none of them answered yet"
kill -TERM "$SERVE_PID"
if wait_log "SIGTERM: no new connections; finishing $PAR requests" "$D/serve.log"; then
    ok "SIGTERM: the service stops accepting and finishes the $PAR requests"
else
    not_ok "SIGTERM: the service finishes the $PAR requests"
    diag "$(tail -n 5 "$D/serve.log")"
fi
curl -sS --max-time 60 --cacert "$CA/ca.pem" "https://127.0.0.1:$PORT/healthz" \
    >/dev/null 2>"$D/refused.err"
assert_eq "$?" 7 "... a new connection is refused (curl: could not connect)"
rm -f "$D/gate"
wait "$SERVE_PID"
assert_eq "$?" 0 "the token answers: the service exits 0"
SERVE_PID=""
wait "$XARGS"

# --- What the clients got -------------------------------------------------------
answered=0
noanswer=0
other=0
ANS=""
UNANS=""
i=1
while [ $i -le $N ]; do
    id=$(printf 'e%03d' $i)
    st=$(cat "$D/$id.st" 2>/dev/null)
    if [ "$st" = 201 ]; then
        answered=$((answered + 1))
        ANS="$ANS $id"
    elif [ "$st" = 000 ] || [ -z "$st" ]; then
        noanswer=$((noanswer + 1))
        UNANS="$UNANS $id"
    else
        other=$((other + 1))
        diag "$id: HTTP $st $(head -c 200 "$D/$id.ans" 2>/dev/null)"
    fi
    i=$((i + 1))
done
diag "answered 201: $answered; no answer: $noanswer; another answer: $other"
assert_eq "$answered $noanswer $other" "$((FIRST + PAR)) $((N - FIRST - PAR)) 0" \
    "$((FIRST + PAR)) clients got a certificate, $((N - FIRST - PAR)) got no answer, none another answer"
bad=""
for id in $UNANS; do
    [ "$(cat "$D/$id.rc")" = 7 ] || bad="$bad $id:$(cat "$D/$id.rc")"
done
assert_eq "$bad" "" "... the unanswered could not connect (curl exit 7): the listener was closed"

# The registry as the service left it (p11ca cert list): exactly the
# clients that got a certificate have one, activated; nothing was issued
# for a client that got no answer.
p11ca cert list --dir "$CA" --status activated --cn-like 'e???' >"$D/list" 2>&1
bad=""
for id in $UNANS; do
    grep -q "CN=$id\\b" "$D/list" && bad="$bad $id"
done
if [ -z "$bad" ] && grep -q "CN=e001" "$D/list" &&
    [ "$(p11ca cert list --dir "$CA" --cn-like 'e???' --count 2>&1)" = "$answered" ]; then
    ok "p11ca cert list: $answered certificates, all activated; none for a client that got no answer"
else
    not_ok "p11ca cert list: $answered certificates, none for a client that got no answer (issued:$bad)"
    diag "$(p11ca cert list --dir "$CA" --cn-like 'e???' --count 2>&1)"
fi

# received DESC IDS...: the answers of these clients (parsed by jq) are
# certificates that openssl verify accepts against the CA; each, looked up
# by the serial its answer names (GET /v1/certs/{serial}, one keep-alive
# connection), is in the registry activated, for the client's client ID
# and CN, with the same DER (its base64 compared).
TAB=$(printf '\t')
received() {
    desc=$1
    shift
    (cd "$D" && for id; do echo "$id.ans"; done |
        xargs jq -r '[(input_filename | rtrimstr(".ans")), .serial, .certificate,
            (.certificate | gsub("-----[A-Z ]+-----|\\s"; ""))] | @tsv') >"$D/got.tsv" 2>"$D/got.err"
    : >"$D/lookup.cfg"
    : >"$D/got.b64"
    files=""
    while IFS=$TAB read -r id serial pem b64; do
        printf '%b' "$pem" >"$D/$id.pem"
        files="$files $D/$id.pem"
        printf '%s\t%s\n' "$id" "$b64" >>"$D/got.b64"
        cat >>"$D/lookup.cfg" <<CFG
url = "https://127.0.0.1:$PORT/v1/certs/$serial"
cacert = "$CA/ca.pem"
cert = "$D/carol.pem"
key = "$D/carol.key"
output = "$D/$id.reg"
next
CFG
    done <"$D/got.tsv"
    curl -sS -K "$D/lookup.cfg" 2>"$D/lookup.err"
    (cd "$D" && for id; do echo "$id.reg"; done |
        xargs jq -r '[(input_filename | rtrimstr(".reg")), .status, .client_id, .cn,
            (.pem | gsub("-----[A-Z ]+-----|\\s"; ""))] | @tsv') >"$D/reg.tsv" 2>>"$D/got.err"
    bad=$(awk -F "$TAB" 'NR == FNR { st[$1] = $2; cid[$1] = $3; cn[$1] = $4; der[$1] = $5; next }
        !($1 in st) || st[$1] != "activated" || cid[$1] != $1 || cn[$1] != $1 ||
        der[$1] != $2 || $2 == "" { printf " %s", $1 }' "$D/reg.tsv" "$D/got.b64")
    # shellcheck disable=SC2086 # one argument per file
    verified=$(openssl verify -CAfile "$CA/ca.pem" $files 2>&1 | grep -c ': OK$')
    if [ -z "$bad" ] && [ "$(wc -l <"$D/got.b64")" = $# ] && [ "$verified" = $# ]; then
        ok "$desc"
    else
        not_ok "$desc (not so:$bad; $(wc -l <"$D/got.b64") answers of $#, $verified verified)"
        diag "$(head -c 300 "$D/got.err" "$D/lookup.err")"
    fi
}

SERVE_ENV=""
serve_start || { echo "Bail out! the service did not start again"; exit 1; }
# shellcheck disable=SC2086 # the list of clients
received "every certificate a client received ($answered) is in the registry: activated, its client ID, same DER; openssl verify accepts it" $ANS

# --- The unanswered send the same request again ----------------------------------
for id in $UNANS; do echo "$id"; done | sed 's/^e0*//' | xargs -P $PAR -n 1 sh "$D/client.sh"
bad=""
for id in $UNANS; do
    [ "$(cat "$D/$id.st")" = 201 ] || bad="$bad $id:$(cat "$D/$id.st")"
done
assert_eq "$bad" "" "each client that got no answer sends the same request again: 201"
# shellcheck disable=SC2086 # the list of clients
received "... and its certificate is in the registry: activated, its client ID, same DER; openssl verify accepts it" $UNANS
api carol GET '/v1/certs?status=activated&profile=client&cn_like=e%3F%3F%3F&limit=1000'
expect 200 '.items | length' $N "the registry holds $N activated certificates, one per client"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM with nothing in flight: exit 0"

echo "1..$TAP_N"
done_testing
