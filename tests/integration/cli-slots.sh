#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# URIs without a token in the p11ca command, on SoftHSM2 with the
# uninitialised slot it always shows: key list, cert list --token and
# token show search the initialised tokens and skip that slot (a debug
# line says so), token list still shows it; what nothing matches names
# the URI; a token that the URI names and that is not there is waited for
# up to the token wait (P11CA_TOKEN_WAIT), then named; one PIN source is
# not tried on two tokens.
set -u
. "$top_srcdir/tests/lib/token.sh"
plan 20

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
D=$TT/slots
mkdir -p "$D"

p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=mine" \
    --type ec:P-256 >/dev/null
check "token list shows the initialised token and the uninitialised slot" \
    p11ca token list --json
assert_eq "$(grep -c '"label"' "$TT/out") $(grep -c '"initialized"' "$TT/out")" \
    "2 1" "... two tokens, one initialised"

check "key list pkcs11:object=mine;type=private (no token in the URI)" \
    p11ca --pin-source "$PINFILE" key list 'pkcs11:object=mine;type=private'
assert_grep "label: +mine" "$TT/out" "... lists the key"
check "cert list --token with no certificate anywhere: not an error" \
    p11ca cert list --token
assert_grep 'no certificate found' "$TT/err" "... and says that none was found"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/sw.key" -subj /CN=swcert -days 2 -out "$D/sw.pem" 2>/dev/null
p11ca --pin-source "$PINFILE" cert import --label swcert --id 5a "$TOKURI" \
    "$D/sw.pem" >/dev/null
check "cert list --token pkcs11:object=swcert (no token in the URI)" \
    p11ca cert list --token 'pkcs11:object=swcert'
assert_grep 'CN ?= ?swcert' "$TT/out" "... lists the certificate"
check "token show pkcs11: (no token named) shows the one initialised token" \
    p11ca --pin-source "$PINFILE" token show 'pkcs11:'
assert_grep "^token \"$TOKEN\".*key \"mine\"|key \"mine\"" "$TT/out" \
    "... with its key"

P11CA_DEBUG=p11 p11ca --pin-source "$PINFILE" key list \
    'pkcs11:object=nosuch' >"$D/dbg.out" 2>"$D/dbg.err"
assert_grep 'slot [0-9]+ of module .*: not initialised: skipped' "$D/dbg.err" \
    "P11CA_DEBUG=p11: the uninitialised slot is skipped, with a debug line"
should_fail 3 'no private key matches pkcs11:object=nosuch;type=private' \
    "nothing matches: the error names what was searched" \
    p11ca --pin-source "$PINFILE" key pubout 'pkcs11:object=nosuch;type=private'
should_fail 3 'no initialised token matches pkcs11:token=.*slot [0-9]+ matches but is not initialised' \
    "a URI naming the uninitialised token: said so, without waiting" \
    env P11CA_TOKEN_WAIT=600 "$top_builddir/src/p11ca" key list 'pkcs11:token='

# --- The token wait ------------------------------------------------------------
should_fail 1 'P11CA_TOKEN_WAIT: token wait "soon": give seconds' \
    "a bad P11CA_TOKEN_WAIT is refused (exit 1)" \
    env P11CA_TOKEN_WAIT=soon "$top_builddir/src/p11ca" token list
should_fail 3 'token "nosuch" is not present: no token matches pkcs11:token=nosuch \(' \
    "P11CA_TOKEN_WAIT=0: a missing token is named at once, no wait" \
    env P11CA_TOKEN_WAIT=0 "$top_builddir/src/p11ca" key list 'pkcs11:token=nosuch'
should_fail 3 'token "nosuch" is not present: no token matches pkcs11:token=nosuch; waited [0-9.]+ s for it \(token wait\)' \
    "P11CA_TOKEN_WAIT=0.2: the error says it waited" \
    env P11CA_TOKEN_WAIT=0.2 "$top_builddir/src/p11ca" key list 'pkcs11:token=nosuch'
# The token is away at the first slot scan and for the next 40 calls to
# the module: key list waits for it (a count of calls: no clock involved).
env P11CA_MODULE="$FAULTY" FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" \
    FAULTY_PKCS11_LOG="$D/vanish.log" FAULTY_PKCS11_VANISH=C_GetSlotList:1:40calls \
    P11CA_TOKEN_WAIT=600 "$top_builddir/src/p11ca" --pin-source "$PINFILE" \
    key list "$TOKURI;object=mine;type=private" >"$D/vanish.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q 'label: *mine' "$D/vanish.out" \
    && grep -q 'vanish-end' "$D/vanish.log"; then
    ok "a token away at the first scan is waited for: key list finds the key"
else
    not_ok "a token away at the first scan is waited for (exit $rc)"
    diag "$(tail -n 5 "$D/vanish.out")"
fi

# --- Two tokens and one PIN source ---------------------------------------------
new_token p11ca-other
should_fail 2 'used on one token only, and 2 tokens match pkcs11:: token "(p11ca-test|p11ca-other)".*token "(p11ca-test|p11ca-other)".*add token=' \
    "key list --pin-source with two tokens and no token named: refused, naming both" \
    env P11CA_MODULE="$FAULTY" FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" \
    FAULTY_PKCS11_LOG="$D/two.log" "$top_builddir/src/p11ca" \
    --pin-source "$PINFILE" key list
assert_eq "$(grep -c ' C_Login ' "$D/two.log")" 0 "... without trying the PIN (no C_Login)"
check "key list --no-login of both tokens still lists the public keys" \
    p11ca key list --no-login
done_testing
