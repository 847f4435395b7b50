#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# What keeps an automatic PIN from locking a card, counted in the fault
# module's call log (SoftHSM2 itself never locks, PITFALLS.md):
#  - a PIN source the token refused is not sent again by later processes
#    (the token's PIN state under $XDG_STATE_HOME/p11ca), until the source
#    changes or a login succeeds; the state holds no PIN;
#  - at the token's last try (CKF_USER_PIN_FINAL_TRY) or with its PIN
#    locked, no automatic PIN is sent, and the error says why;
#  - the PIN prompt: echo off while it shows and back on after, ^C
#    included; what was typed ahead is kept; the last try is announced.
set -u
. "$top_srcdir/tests/lib/prov.sh"
command -v python3 >/dev/null || plan_skip "python3 is not installed"
plan 40

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE
FAULTY_PKCS11_LOG=$TT/calls.log
export FAULTY_PKCS11_MODULE FAULTY_PKCS11_LOG
keygen pk ec:P-256
D=$TT/pins
mkdir -p "$D"
printf 'wrong-%s' "$TEST_PIN" >"$D/wrong.pin"
chmod 600 "$D/wrong.pin"
STATE=$XDG_STATE_HOME/p11ca
logins() { grep -c ' C_Login ' "$TT/calls.log" 2>/dev/null || true; }
# cli ARGS...: the p11ca command through the fault module.
cli() { "$top_builddir/src/p11ca" --module "$FAULTY" "$@"; }

# --- A refused PIN file, five processes in a row ---------------------------
: >"$TT/calls.log"
should_fail 3 'CKR_PIN_INCORRECT .*the PIN was refused' "a wrong PIN file: refused by the token" \
    cli --pin-source "$D/wrong.pin" key list "$TOKURI"
for i in 2 3 4 5; do
    should_fail 3 "not sending the PIN from PIN file $D/wrong.pin: the token refused it at [0-9T:-]+Z \\(recorded in $STATE/pin-[0-9a-f]{32}\\)" \
        "run $i with the same file: not sent, the message says why and where it is recorded" \
        cli --pin-source "$D/wrong.pin" key list "$TOKURI"
done
assert_eq "$(logins)" 1 "five processes, one C_Login: a shell loop cannot lock the card"

f=$(find "$STATE" -name 'pin-*' -type f)
assert_eq "$(stat -c %a "$STATE") $(stat -c %a "$f")" "700 600" \
    "the state directory is 0700, the token's state file 0600"
assert_grep "^refused [0-9a-f]{64} [0-9]+ PIN file $D/wrong.pin\$" "$f" \
    "the state says which source was refused, and when"
pinhash=$(printf 'wrong-%s' "$TEST_PIN" | sha256sum | cut -d' ' -f1)
if grep -q -e "$TEST_PIN" -e "$pinhash" "$f"; then
    not_ok "the state holds neither the PIN nor its hash"
else
    ok "the state holds neither the PIN nor its hash"
fi

# The file changes (same content, a new time): one more try.
touch -d '+1 minute' "$D/wrong.pin"
should_fail 3 'CKR_PIN_INCORRECT' "the PIN file changed: sent once more" \
    cli --pin-source "$D/wrong.pin" key list "$TOKURI"
assert_eq "$(logins)" 2 "... one more C_Login"
# A login that works starts the count again: the refusals are forgotten.
check "the right PIN file logs in" cli --pin-source "$PINFILE" key list "$TOKURI"
assert_eq "$(grep -c '^refused' "$f")" 0 "... and the token's state is cleared"
should_fail 3 'CKR_PIN_INCORRECT' "the wrong file is sent again after that login" \
    cli --pin-source "$D/wrong.pin" key list "$TOKURI"

# pin-value=: a value binds to nothing that could be stored, so after a
# refusal no value is sent until a login works.
: >"$TT/calls.log"
should_fail 3 'CKR_PIN_INCORRECT' "pin-value= refused by the token" \
    cli key list "$TOKURI?pin-value=nope-1"
should_fail 3 'not sending the PIN from pin-value=' "another pin-value= is not sent either" \
    cli key list "$TOKURI?pin-value=nope-2"
assert_eq "$(logins)" 1 "... one C_Login for the two"
check "a PIN file logs in" cli --pin-source "$PINFILE" key list "$TOKURI"

# The provider, in two openssl processes.
: >"$TT/calls.log"
for i in 1 2; do
    env $OPENSSL_ENV P11CA_MODULE="$FAULTY" openssl pkey $PROV \
        -in "$TOKURI;object=pk;type=private;pin-source=$D/wrong.pin" \
        -pubout >/dev/null 2>"$D/prov$i.err"
done
assert_grep 'CKR_PIN_INCORRECT' "$D/prov1.err" "provider: the wrong PIN file is refused"
assert_grep 'not sending the PIN from PIN file' "$D/prov2.err" "provider: the next process does not send it"
assert_eq "$(logins)" 1 "... one C_Login"
check "provider: the right PIN file works" \
    env $OPENSSL_ENV P11CA_MODULE="$FAULTY" openssl pkey $PROV \
    -in "$(privuri pk)" -pubout -out "$D/pk.pub"

# --- The token at its last try, or locked -----------------------------------
: >"$TT/calls.log"
export FAULTY_PKCS11_TOKEN_FLAGS=CKF_USER_PIN_FINAL_TRY
should_fail 3 "not sending the PIN from PIN file $PINFILE: the token reports ONE try left before it locks the PIN \\(CKF_USER_PIN_FINAL_TRY\\)" \
    "last try: the right PIN file is not sent either, and the message says why" \
    cli --pin-source "$PINFILE" key list "$TOKURI"
should_fail 1 'not sending the PIN from PIN file .*ONE try left' \
    "last try: the provider does not send it either" \
    env $OPENSSL_ENV P11CA_MODULE="$FAULTY" openssl pkey $PROV -in "$(privuri pk)" -pubout
export FAULTY_PKCS11_TOKEN_FLAGS='CKF_USER_PIN_LOCKED|CKF_USER_PIN_COUNT_LOW'
should_fail 3 'not logging in: the token reports the user PIN is LOCKED' \
    "locked: no PIN is sent, and the message says so" \
    cli --pin-source "$PINFILE" key list "$TOKURI"
assert_eq "$(logins)" 0 "... no C_Login at the last try nor locked"
unset FAULTY_PKCS11_TOKEN_FLAGS

# --- The prompt ----------------------------------------------------------------
# pty NAME ARGS...: ptyrun.py on the p11ca command without a PIN source.
pty() {
    name=$1
    shift
    python3 "$top_srcdir/tests/lib/ptyrun.py" --log "$D/$name.tty" "$@" -- \
        "$top_builddir/src/p11ca" --module "$FAULTY" key list "$TOKURI" \
        >"$D/$name.res"
}
res() { grep -c "^$2\$" "$D/$1.res"; }
printf '%s' "$TEST_PIN" >"$D/typed"
chmod 600 "$D/typed"

pty answer --prompt 'Enter PIN for token "p11ca-test": ' --answer "$D/typed"
assert_eq "$(res answer prompt=1)$(res answer echo_at_prompt=0)$(res answer echo_after=1)$(res answer exit=0)" \
    1111 "prompt: echo off while it shows, the typed PIN logs in, echo back on"
assert_grep 'pk' "$D/answer.tty.out" "... and the keys are listed"
if grep -q "$TEST_PIN" "$D/answer.tty" "$D/answer.tty.out" "$D/answer.tty.err"; then
    not_ok "... and the PIN was never shown"
else
    ok "... and the PIN was never shown"
fi

pty ahead --type-ahead "$D/typed"
assert_eq "$(res ahead exit=0)$(res ahead echo_after=1)" 11 \
    "a PIN typed ahead of the prompt is kept (no TCSAFLUSH) and logs in"

pty intr --prompt 'Enter PIN for' --interrupt
assert_eq "$(res intr prompt=1)$(res intr echo_at_prompt=0)$(res intr signal=SIGINT)$(res intr echo_after=1)" \
    1111 "^C at the prompt: the command ends by SIGINT and the terminal echoes again"

: >"$TT/calls.log"
export FAULTY_PKCS11_TOKEN_FLAGS=CKF_USER_PIN_FINAL_TRY
pty last --prompt 'LAST TRY before the PIN locks' --answer "$D/typed"
assert_eq "$(res last prompt=1)$(res last exit=0)" 11 \
    "last try: the prompt says so, and a typed PIN is sent"
assert_eq "$(logins)" 1 "... one C_Login"
export FAULTY_PKCS11_TOKEN_FLAGS=CKF_USER_PIN_LOCKED
pty locked --prompt 'Enter PIN for' --answer "$D/typed"
unset FAULTY_PKCS11_TOKEN_FLAGS
assert_eq "$(res locked prompt=0)$(res locked exit=3)" 11 "locked: no prompt at all (exit 3)"
assert_grep 'LOCKED' "$D/locked.tty.err" "... the message says the PIN is locked"

# --- The provider's PIN cache (p11ca-cache-pin) ------------------------------
# A key loaded with the PIN from the passphrase prompt, then the token logs
# the process out (faulty-pkcs11 logs out for real at the 2nd C_Sign).
evp() {
    env $OPENSSL_ENV P11CA_MODULE="$FAULTY" PROV_EVP_PASSIN="$PINFILE" \
        FAULTY_PKCS11_FAULTS=C_Sign:2:CKR_USER_NOT_LOGGED_IN "$@" \
        "$top_builddir/tests/progs/prov-evp" sign \
        "$TOKURI;object=pk;type=private" 3 >"$D/evp.out" 2>&1
}
: >"$TT/calls.log"
evp
assert_grep '1 of 3 signatures' "$D/evp.out" \
    "provider, no PIN cache (default): after a logout a key whose PIN was typed does not sign"
assert_grep 'p11ca::PIN missing, refused or locked' "$D/evp.out" "... the error is a PIN error"
assert_eq "$(logins)" 1 "... and no PIN was made up (one C_Login, at the load)"
: >"$TT/calls.log"
evp P11CA_CACHE_PIN=yes
assert_grep '3 of 3 signatures' "$D/evp.out" \
    "provider, P11CA_CACHE_PIN=yes: it logs in again with the kept PIN"
assert_eq "$(logins)" 2 "... one more C_Login"
done_testing
