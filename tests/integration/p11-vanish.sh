#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# A token that goes away for a while (faulty-pkcs11's FAULTY_PKCS11_VANISH)
# is waited for up to the token wait: under a running s_server's
# signatures every handshake succeeds; under p11ca issue the certificate
# is issued; a window longer than the bound fails with an error that names
# the token and the time waited, and records nothing.  Outcomes do not
# depend on timing: the waits are far longer than the windows, or the
# windows never end.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 16

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
D=$TT/vanish
mkdir -p "$D"
keygen srv ec:P-256
openssl req $PROV -new -x509 -key "$(privuri srv)" -subj /CN=server.test \
    -days 2 -out "$D/srv.pem" 2>/dev/null

# vanish SPEC LOG: the commands that follow go through the fault module
# with that window (empty SPEC: back to SoftHSM2 itself).
vanish() {
    if [ -n "$1" ]; then
        export P11CA_MODULE="$FAULTY" FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE"
        export FAULTY_PKCS11_VANISH="$1" FAULTY_PKCS11_LOG="$2"
    else
        export P11CA_MODULE="$SOFTHSM_MODULE"
        unset FAULTY_PKCS11_VANISH FAULTY_PKCS11_LOG
    fi
}

should_fail 1 'bad FAULTY_PKCS11_VANISH "C_Sign:2:soon"' \
    "the fault module refuses a window it cannot read" \
    env $OPENSSL_ENV P11CA_MODULE="$FAULTY" \
    FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" FAULTY_PKCS11_VANISH=C_Sign:2:soon \
    openssl pkey $PROV -in "$(privuri srv)" -pubout

# handshakes N PORT: how many of N sequential TLS handshakes succeed.
handshakes() {
    good=0
    i=0
    while [ $i -lt "$1" ]; do
        if printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client \
            -connect "127.0.0.1:$2" -CAfile "$D/srv.pem" -verify_return_error \
            -quiet -ign_eof >/dev/null 2>&1; then
            good=$((good + 1))
        fi
        i=$((i + 1))
    done
    echo "$good"
}
# server NAME SPEC: s_server on a token key, the token vanishing as SPEC
# says; its token wait (60 s) is far longer than any window here.  Returns
# once the server listens (a server that does not start fails the test,
# with its log).
server() {
    vanish "$2" "$D/$1.log"
    export P11CA_TOKEN_WAIT=60
    port=$(free_port)
    start_server_ready "$D/$1.out" $PROV -accept "127.0.0.1:$port" \
        -naccept 10 -www -cert "$D/srv.pem" -key "$(privuri srv)"
    unset P11CA_TOKEN_WAIT
    vanish ""
}

# --- Under a server's signatures ------------------------------------------------
server timed C_Sign:4:1000ms
good=$(handshakes 10 "$port")
server_done
assert_eq "$good" 10 "the token away for 1 s at the 4th signature: all 10 handshakes succeed"
assert_grep 'C_Sign CKR_DEVICE_REMOVED \[injected\]' "$D/timed.log" \
    "... it went away at a handshake's signature"
assert_grep 'vanish-end' "$D/timed.log" "... and came back while the server waited"
assert_eq "$(grep -c ' C_Login CKR_OK' "$D/timed.log")" 2 \
    "... the server logged in again by itself"

server counted C_Sign:2:60calls
good=$(handshakes 10 "$port")
server_done
assert_eq "$good" 10 "the token away for 60 calls at the 2nd signature: all 10 handshakes succeed"
assert_grep 'vanish-end' "$D/counted.log" "... the window ended while the server waited"

# --- Under p11ca issue -------------------------------------------------------------
CA=$D/ca
check "a CA with its key on the token" \
    p11ca --pin-source "$PINFILE" ca init --dir "$CA" --subject "/CN=Vanish CA" \
    --key-uri "$TOKURI;object=vca" --generate ec:P-256 --days 3650
nrows() { p11ca cert list --dir "$CA" --count 2>/dev/null; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/c.key" -subj /CN=one.test -out "$D/one.csr" 2>/dev/null
openssl req -new -key "$D/c.key" -subj /CN=two.test -out "$D/two.csr" 2>/dev/null

# The token is away from the first slot scan of the process for 1 s; the
# CA waits up to token_wait = 60.
sed -i 's/^\[ *ca *\]$/&\ntoken_wait = 60/' "$CA/ca.cnf"
vanish C_GetSlotList:1:1000ms "$D/issue.log"
check "p11ca issue with the CA token away for 1 s at its first look: issued" \
    p11ca issue --dir "$CA" --profile client --out "$D/one.pem" "$D/one.csr"
vanish ""
assert_grep 'vanish-end' "$D/issue.log" "... it waited for the token to come back"
check "... and the certificate verifies with plain openssl" \
    openssl verify -CAfile "$CA/ca.pem" "$D/one.pem"

# The provider the CA loads gets ca.cnf's token_wait as a provider
# parameter, not through the environment: P11CA_TOKEN_WAIT=0 does not cut
# the wait that ca.cnf asks for (the token is back after 50 calls).
openssl req -new -key "$D/c.key" -subj /CN=three.test -out "$D/three.csr" 2>/dev/null
vanish C_Sign:1:50calls "$D/param.log"
check "p11ca issue with the CA token away at its first signature, P11CA_TOKEN_WAIT=0 and token_wait = 60 in ca.cnf: issued" \
    env P11CA_TOKEN_WAIT=0 "$top_builddir/src/p11ca" issue --dir "$CA" \
    --profile client --out "$D/three.pem" "$D/three.csr"
vanish ""
assert_grep 'C_Sign CKR_DEVICE_REMOVED \[injected\]' "$D/param.log" \
    "... the token went away at the provider's signature, and the provider waited for it"

# Away for longer than the bound (token_wait = 0.5): a clear error.
sed -i 's/^token_wait = 60$/token_wait = 0.5/' "$CA/ca.cnf"
before=$(nrows)
vanish C_GetSlotList:1:600000ms "$D/long.log"
should_fail 3 "cannot find the CA key: token \"$TOKEN\" is not present: no token matches pkcs11:.*waited [0-9.]+ s for it \\(token wait\\)" \
    "the CA token away for longer than token_wait: the error names it and the wait" \
    p11ca issue --dir "$CA" --profile client --out "$D/two.pem" "$D/two.csr"
vanish ""
assert_eq "$(nrows) $([ -e "$D/two.pem" ] && echo written)" "$before " \
    "... nothing issued, nothing recorded"

# --- A key load through the provider ----------------------------------------------
vanish C_GetSlotList:1:600000ms "$D/load.log"
should_fail 1 "token \"$TOKEN\" is not present: no token matches .*waited [0-9.]+ s for it \\(token wait\\)" \
    "openssl pkey -in with the token away past p11ca's token wait: named, with the wait" \
    env $OPENSSL_ENV P11CA_TOKEN_WAIT=0.3 openssl pkey $PROV \
    -in "$(privuri srv)" -pubout
vanish ""
done_testing
