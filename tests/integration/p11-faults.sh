#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Token faults injected by faulty-pkcs11 under p11_sign: what the layer
# recovers from, what it reports (call, token, code), that it never loops
# and that a refused PIN is never replayed.
# top_srcdir and top_builddir come from the test environment (tests/local.mk).
# shellcheck disable=SC1091,SC2154
set -eu
. "$top_srcdir/tests/lib/token.sh"
. "$top_srcdir/tests/progs/drive.sh"

plan 22

# fault MODE RULE [OPTIONS...]: one p11-faults scenario with its own call
# log (the driver counts calls in it).
fault() {
    fault_mode=$1
    fault_rule=$2
    shift 2
    fault_log=$(mktemp "$TT/faults.XXXXXX")
    # Each scenario remembers its refused PINs in a state of its own: an
    # injected refusal of the right PIN file bars it until it changes.
    (
        P11CA_STATE_DIR=$(mktemp -d "$TT/state.XXXXXX")
        export P11CA_STATE_DIR
        faulty "$fault_log" "" p11-faults "$@" "$fault_mode" "$fault_rule"
    )
}

drive "generate the test keys on the token" prog p11-faults setup
printf '%s' 0000 >"$TT/wrong.pin"
chmod 600 "$TT/wrong.pin"

for code in CKR_DEVICE_REMOVED CKR_SESSION_HANDLE_INVALID \
    CKR_SESSION_CLOSED CKR_USER_NOT_LOGGED_IN; do
    drive "C_Sign:3:$code: that signature still succeeds and verifies" \
        fault recover "C_Sign:3:$code"
done
drive "C_SignInit:3:CKR_OBJECT_HANDLE_INVALID: the key is found again" \
    fault recover C_SignInit:3:CKR_OBJECT_HANDLE_INVALID

for code in CKR_DEVICE_ERROR CKR_GENERAL_ERROR; do
    drive "C_Sign:3:$code: fails naming C_Sign, token, code; the next one works" \
        fault fatal "C_Sign:3:$code"
done

drive "C_Sign:1+:CKR_DEVICE_REMOVED: fails cleanly, at most one retry" \
    fault permanent 'C_Sign:1+:CKR_DEVICE_REMOVED'
drive "C_Sign:*:sleep=20ms: slow signatures still work" \
    fault latency 'C_Sign:*:sleep=20ms'

drive "C_Login:2+:CKR_PIN_INCORRECT: two failures, one C_Login" \
    fault pin-refused 'C_Login:2+:CKR_PIN_INCORRECT'
drive "a wrong PIN file: refused once, not replayed; the right PIN still works" \
    fault pin-refused '' -w "$TT/wrong.pin"
drive "C_Login:2+:CKR_PIN_LOCKED: the message says refused and locked" \
    fault pin-locked 'C_Login:2+:CKR_PIN_LOCKED'

drive "the token at its last try, then locked (its flags read again before the login): no C_Login, the reason given" \
    fault pin-flags ''
check "a P-256 key with CKA_ALWAYS_AUTHENTICATE on the token" \
    run_prog weak-key "$SOFTHSM_MODULE" "$TOKEN" "$PINFILE" always-auth drive-aa 0a
drive "always-authenticate: a context-specific login per signature from the PIN file, never the cached PIN, a prompt asked each time" \
    fault always-auth ''
assert_grep 'C_Login CKR_OK context-specific' "$fault_log" \
    "... the fault module logged context-specific logins"

drive "another context logs the process out: log in and find the key again" \
    fault logout-elsewhere ''

drive "C_OpenSession:*:CKR_DEVICE_ERROR: a clean error naming C_OpenSession" \
    fault open-fails 'C_OpenSession:*:CKR_DEVICE_ERROR'

if [ -n "${VALGRIND:-}" ]; then
    drive "valgrind: recovery from C_Sign:3:CKR_DEVICE_REMOVED" \
        vg fault recover C_Sign:3:CKR_DEVICE_REMOVED
    drive "valgrind: C_Sign:3:CKR_DEVICE_ERROR reported" \
        vg fault fatal C_Sign:3:CKR_DEVICE_ERROR
    drive "valgrind: a refused PIN" \
        vg fault pin-refused '' -w "$TT/wrong.pin"
else
    skip "valgrind is not used in this build"
    skip "valgrind is not used in this build"
    skip "valgrind is not used in this build"
fi

done_testing
