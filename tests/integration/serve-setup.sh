# SPDX-License-Identifier: Apache-2.0
# Sourced by the serve-*.sh tests: a CA whose key is on the test token, the
# service's TLS key on the same token (no PIN of its own: the CA's login),
# operators with key files (admin alice by certificate hash, operator bob by
# subject, auditor carol), devices whose keys are on the token, an external
# "fleet" CA made with openssl, and helpers to start and stop `p11ca serve`
# and to call its API with curl.
# shellcheck shell=sh disable=SC2086,SC2034
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
command -v curl >/dev/null || plan_skip "curl is not installed"
command -v jq >/dev/null || plan_skip "jq is not installed"
# The registry: SQLite in the CA directory, or PostgreSQL with
# P11CA_TEST_REGISTRY=pg (serve-api-pg.sh).
. "$top_srcdir/tests/lib/registry.sh"
trap 'serve_kill; stop_servers; [ -z "$REG_LOC" ] || pg_stop; rm -rf "$TT"' EXIT

CA=$TT/ca
D=$TT/srv

# IPv6 loopback where the machine has it (a container may not): the service
# listens on [::1] too, and the tests that need it skip without it.
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
    2>/dev/null; then
    SERVE_V6=yes
else
    SERVE_V6=no
fi
# serve_listen PORT: the listen = value for PORT.
serve_listen() {
    if [ "$SERVE_V6" = yes ]; then
        echo "127.0.0.1:$1, [::1]:$1"
    else
        echo "127.0.0.1:$1"
    fi
}
mkdir -p "$D"
P11CA=$top_builddir/src/p11ca

# A certificate serial as openssl x509 -serial prints it, the form p11ca
# prints (upper case, an even number of digits).
cert_serial() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2
}
cert_sha256() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2
}

if ! with_reg p11ca --pin-source "$PINFILE" ca init --dir "$CA" \
    --subject "/CN=Serve Test CA/O=p11ca tests" \
    --key-uri "$TOKURI;object=serve-ca" --generate ec:P-256 >/dev/null; then
    echo "Bail out! cannot make the test CA"
    exit 1
fi
if [ -n "$REG_LOC" ]; then
    grep -q '^registry *= *postgresql:' "$CA/ca.cnf"
else
    test -f "$CA/registry.db"
fi || { echo "Bail out! the test CA's registry is not the one asked for"; exit 1; }
# ca.cnf as ca init wrote it: its sign-up limit (rate_limit, 15 per
# second) holds the service's sign-ups too; the CLI's issuance is not.
cp "$CA/ca.cnf" "$CA/ca.cnf.base"

# issue_key NAME SUBJECT PROFILE [SAN]: a key file NAME.key and its
# certificate NAME.pem from the CA.
issue_key() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/$1.key" -subj "$2" -out "$D/$1.csr" 2>/dev/null &&
        p11ca issue --dir "$CA" --profile "$3" ${4:+--san "$4"} \
            --out "$D/$1.pem" "$D/$1.csr" >/dev/null
}
# issue_token NAME SUBJECT: a key on the token (label NAME) and its client
# certificate NAME.pem from the CA.
issue_token() {
    keygen "$1" ec:P-256 &&
        openssl req $PROV -new -key "$(privuri "$1")" -subj "$2" \
            -out "$D/$1.csr" &&
        p11ca issue --dir "$CA" --profile client --out "$D/$1.pem" \
            "$D/$1.csr" >/dev/null
}

# The service's TLS key on the CA's token; its certificate for
# localhost, 127.0.0.1 and ::1.
keygen serve-tls ec:P-256 || { echo "Bail out! no TLS key"; exit 1; }
if ! openssl req $PROV -new -key "$(privuri serve-tls)" -subj /CN=localhost \
    -out "$D/tls.csr" ||
    ! p11ca issue --dir "$CA" --profile server \
        --san DNS:localhost,IP:127.0.0.1,IP:::1 --out "$D/tls.pem" \
        "$D/tls.csr" >/dev/null; then
    echo "Bail out! cannot issue the service's certificate"
    exit 1
fi
for who in alice:admin bob:operator carol:auditor dave:device; do
    issue_key "${who%%:*}" "/CN=${who%%:*}/O=p11ca tests" client ||
        { echo "Bail out! cannot issue ${who%%:*}'s certificate"; exit 1; }
done

# An external CA (software key), as a device maker's.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/fleet-ca.key" -subj "/CN=Fleet CA/O=Device Maker" -days 30 \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$D/fleet-ca.pem" 2>/dev/null ||
    { echo "Bail out! cannot make the fleet CA"; exit 1; }
# fleet_device NAME [token|file [SERIAL]]: NAME.pem from the fleet CA, the
# key in NAME.key or (token) on the test token with label NAME; a random
# serial unless SERIAL (hex) is given.
fleet_device() {
    if [ "${2:-}" = token ]; then
        keygen "$1" ec:P-256 &&
            openssl req $PROV -new -key "$(privuri "$1")" -subj "/CN=$1" \
                -out "$D/$1.csr"
    else
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$D/$1.key" -subj "/CN=$1" -out "$D/$1.csr" 2>/dev/null
    fi &&
        printf 'extendedKeyUsage=clientAuth\n' >"$D/ext.cnf" &&
        openssl x509 -req -in "$D/$1.csr" -CA "$D/fleet-ca.pem" \
            -CAkey "$D/fleet-ca.key" \
            -set_serial "0x${3:-$(openssl rand -hex 12)}" \
            -days 30 -extfile "$D/ext.cnf" -out "$D/$1.pem" 2>/dev/null
}

# serve_config [EXTRA]: the [serve] section of ca.cnf, with EXTRA lines in
# it and $SERVE_SECTIONS after it; the TLS key and certificate are the
# token's unless SERVE_TLS_KEY/SERVE_TLS_CERT name others; sets PORT.
serve_config() {
    PORT=$(free_port)
    {
        cat "$CA/ca.cnf.base"
        cat <<CNF

[ serve ]
listen = $(serve_listen "$PORT")
tls_key = ${SERVE_TLS_KEY:-$TOKURI;object=serve-tls;type=private}
tls_certificate = ${SERVE_TLS_CERT:-$D/tls.pem}
access_log = $D/access.log
roles = serve_roles
workers = ${SERVE_WORKERS:-2}
${1:-}

[ serve_roles ]
alice = admin sha256:$(cert_sha256 "$D/alice.pem")
bob = operator subject:O=p11ca tests,CN=bob
carol = auditor sha256:$(cert_sha256 "$D/carol.pem")
${SERVE_SECTIONS:-}
CNF
    } >"$CA/ca.cnf"
}

SERVE_PID=""
# serve_start: p11ca serve in the background (environment $SERVE_ENV);
# ready when its log says "listening on" (60 s), else a failed test.
serve_start() {
    : >"$D/serve.log"
    env ${SERVE_ENV:-} "$P11CA" serve --dir "$CA" >"$D/serve.log" 2>&1 \
        </dev/null &
    SERVE_PID=$!
    i=0
    # The last listener's line: [::1] when there is one.
    ready='listening on https://127\.0\.0\.1:'
    [ "$SERVE_V6" = no ] || ready='listening on https://\['
    until grep -q "$ready" "$D/serve.log"; do
        if ! kill -0 "$SERVE_PID" 2>/dev/null || [ $i -ge 1200 ]; then
            diag "the service did not start:"
            diag "$(tail -n 20 "$D/serve.log")"
            SERVE_PID=""
            return 1
        fi
        sleep 0.05
        i=$((i + 1))
    done
}

# serve_stop: SIGTERM, then its exit status in SERVE_RC.
serve_stop() {
    SERVE_RC=none
    [ -n "$SERVE_PID" ] || return 0
    kill -TERM "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID"
    SERVE_RC=$?
    SERVE_PID=""
}
serve_kill() {
    [ -n "$SERVE_PID" ] && kill -KILL "$SERVE_PID" 2>/dev/null
    SERVE_PID=""
}

# wait_log REGEX FILE [TENTHS]: until FILE has a line matching REGEX
# (default 30 s); 1 when it never came.
wait_log() {
    i=0
    while ! grep -Eq -- "$1" "$2" 2>/dev/null; do
        [ $i -ge "${3:-300}" ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# wait_audit REGEX: until `p11ca audit list` (in $D/audit.txt) has a
# matching line (30 s): the service audits some things through a worker.
wait_audit() {
    i=0
    while [ $i -lt 300 ]; do
        p11ca audit list --dir "$CA" >"$D/audit.txt" 2>&1
        grep -Eq -- "$1" "$D/audit.txt" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# api WHO METHOD PATH [CURL ARGS]: a call as WHO (alice, bob, carol, dave,
# any NAME with NAME.pem/.key, or none); CODE gets the status, $D/body the
# body, $D/hdr the headers.
api() {
    who=$1
    m=$2
    p=$3
    shift 3
    if [ "$who" = none ]; then
        set -- "$@"
    else
        set -- --cert "$D/$who.pem" --key "$D/$who.key" "$@"
    fi
    CODE=$(curl -sS -o "$D/body" -D "$D/hdr" -w '%{http_code}' \
        --cacert "$CA/ca.pem" -X "$m" "$@" "https://127.0.0.1:$PORT$p" \
        2>"$D/curl.err") || CODE="curl-failed($(cat "$D/curl.err"))"
}

# expect CODE [JQ-EXPR VALUE] DESC: the last call's status (and a value of
# its JSON body).
expect() {
    want=$1
    shift
    if [ $# -ge 3 ]; then
        got=$(jq -r "$1" "$D/body" 2>/dev/null)
        if [ "$CODE" = "$want" ] && [ "$got" = "$2" ]; then
            ok "$3"
        else
            not_ok "$3 (status $CODE, $1 = '$got'; wanted $want, '$2')"
            diag "$(head -c 600 "$D/body")"
        fi
        return
    fi
    if [ "$CODE" = "$want" ]; then
        ok "$1"
    else
        not_ok "$1 (status $CODE, wanted $want)"
        diag "$(head -c 600 "$D/body")"
    fi
}

# expect_problem STATUS CODE REGEX DESC: an RFC 9457 problem of
# application/problem+json with that status, code and a detail matching.
expect_problem() {
    if [ "$CODE" = "$1" ] &&
        grep -qi '^content-type: application/problem+json' "$D/hdr" &&
        [ "$(jq -r .code "$D/body")" = "$2" ] &&
        [ "$(jq -r .status "$D/body")" = "$1" ] &&
        [ "$(jq -r .type "$D/body")" = "urn:p11ca:problem:$2" ] &&
        jq -r .detail "$D/body" | grep -Eq -- "$3"; then
        ok "$4"
    else
        not_ok "$4 (status $CODE; wanted $1 $2 /$3/)"
        diag "$(head -c 600 "$D/body")"
        diag "$(grep -i content-type "$D/hdr")"
    fi
}

# same_words DESC: the last problem's detail is, word for word, in what
# the CLI printed to $D/cli.err (the API and the CLI refuse alike).
same_words() {
    detail=$(jq -r .detail "$D/body" 2>/dev/null)
    if [ -n "$detail" ] && grep -qF -- "$detail" "$D/cli.err"; then
        ok "$1"
    else
        not_ok "$1"
        diag "API: $detail"
        diag "CLI: $(cat "$D/cli.err")"
    fi
}

# tls_client PROTO KEY CERT [PATH]: openssl s_client with the key (a
# pkcs11: URI through the provider, or a file), GET PATH (default
# /healthz) on the same connection; output in $D/client.log.
tls_client() {
    printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' \
        "${4:-/healthz}" |
        env $OPENSSL_ENV timeout 60 openssl s_client $PROV -"$1" \
            -connect "127.0.0.1:$PORT" -servername localhost -ign_eof \
            -CAfile "$CA/ca.pem" -verify_return_error -key "$2" -cert "$3" \
            >"$D/client.log" 2>&1
}

# The fault-injecting module in front of SoftHSM2 (tests/faulty-pkcs11):
# faulty_env RULES sets SERVE_ENV so that the service's token calls go
# through it, C_Sign calls held while $D/gate exists ("hold").
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
faulty_env() {
    SERVE_ENV="P11CA_MODULE=$FAULTY FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_FAULTS=$1 FAULTY_PKCS11_HOLD=$D/gate FAULTY_PKCS11_LOG=$D/calls.log"
}

# metric NAME: its value in a fresh GET /metrics.
metric() {
    curl -sS --cacert "$CA/ca.pem" "https://127.0.0.1:$PORT/metrics" |
        sed -n "s/^$1 //p"
}

# wait_metric NAME VALUE: until the metric has that value (30 s).
wait_metric() {
    i=0
    while [ "$(metric "$1")" != "$2" ]; do
        [ $i -ge 300 ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
}
