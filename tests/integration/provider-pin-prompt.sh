#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# An application that gives no way to ask for a PIN (OSSL_STORE_open
# without a UI method: tests/progs/prov-store): on a terminal the provider
# asks there, as OpenSSL's own UI would (p11ca-pin-prompt = no turns that
# off); without a terminal it fails at once, naming the token.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 8

D=$TT/prompt
mkdir -p "$D"
keygen pk ec:P-256
KEY="$TOKURI;object=pk;type=private"
LOAD="$top_builddir/tests/progs/prov-store load '$KEY'"
unset P11CA_PIN_SOURCE P11CA_PIN_ENV

# Without a terminal: at once, with the token and the way out.
timeout 60 "$top_builddir/tests/progs/prov-store" load "$KEY" </dev/null >"$D/none.out" 2>"$D/none.err"
rc=$?
assert_eq "$rc" 1 "no terminal, no UI method: the load fails (exit 1, no wait)"
assert_grep 'token "p11ca-test": the application gave no way to ask for the PIN \(no UI method\) and standard input is not a terminal' \
    "$D/none.err" "... saying that nothing could ask, for which token"
assert_grep 'C_Login on token "p11ca-test": a PIN is needed: give one with pin-source=' \
    "$D/none.err" "... and how to give the PIN"

# On a terminal: the prompt of OpenSSL's UI; the typed PIN logs in.
tty_answer "$D/tty.log" 'Enter pass phrase for token "p11ca-test":' "$PINFILE" "$LOAD"
rc=$?
assert_eq "$rc" 0 "on a terminal the provider asks for the PIN, and the key loads"
assert_grep '^found 1' "$D/tty.log" "... one private key delivered"
assert_no_grep "$TEST_PIN" "$D/tty.log" "... the PIN is not echoed"

# p11ca-pin-prompt = no: not asked, even on a terminal.
P11CA_PIN_PROMPT=no timeout 60 script -qfec "$LOAD" /dev/null </dev/null >"$D/off.log" 2>&1
assert_grep 'not asking on the terminal \(p11ca-pin-prompt = no\)' "$D/off.log" \
    "p11ca-pin-prompt = no: no prompt on a terminal, and the reason"
assert_no_grep 'Enter pass phrase' "$D/off.log" "... nothing was asked"
