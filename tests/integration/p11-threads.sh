#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Threads sharing one p11 context: signatures with shared key objects, a
# race on a context's first use (one C_Login), key lookups under churn and
# signing through injected session faults; every signature is verified.
# top_srcdir and top_builddir come from the test environment (tests/local.mk).
# shellcheck disable=SC1091,SC2154
set -eu
. "$top_srcdir/tests/lib/token.sh"
. "$top_srcdir/tests/progs/drive.sh"

plan 12

drive "generate the P-256 and RSA-2048 test keys on the token" \
    prog p11-threads setup

drive "8 threads x 200 signatures (P-256, RSA-2048) on one context and key objects" \
    prog p11-threads -j 8 -n 200 sign

log=$TT/first-use.log
drive "8 threads make the first use of a fresh context at once (5 rounds)" \
    faulty "$log" "" p11-threads -j 8 -n 5 -r 5 first-use
assert_eq "$(count ' C_Login ' "$log")" 5 \
    "exactly one C_Login per fresh context in the call log"

drive "4 threads find and drop the key object while 4 others sign" \
    prog p11-threads -j 8 -n 200 churn

log=$TT/faults.log
rules=C_Sign:100:CKR_SESSION_HANDLE_INVALID,C_Sign:300:CKR_SESSION_CLOSED
rules=$rules,C_SignInit:500:CKR_OBJECT_HANDLE_INVALID
drive "8 threads keep signing through dropped sessions and a stale handle" \
    faulty "$log" "$rules" p11-threads -j 8 -n 100 sign
assert_eq "$(count '\[injected\]' "$log")" 3 \
    "the three faults were injected"

# A token removal in the middle: every session of the process closed, the
# login gone, while the other threads are between their calls.  Every
# thread logs in again through the shared context and goes on signing.
log=$TT/removed.log
drive "8 threads keep signing through a token removal (all sessions closed, login lost)" \
    faulty "$log" "C_Sign:300:CKR_DEVICE_REMOVED" p11-threads -j 8 -n 100 sign
assert_eq "$(count '\[injected\]' "$log")" 1 "the removal was injected once"
logins=$(count ' C_Login CKR_OK' "$log")
if [ "$logins" -ge 2 ] && [ "$logins" -le 9 ]; then
    ok "logged in again after the removal ($logins logins in all, not one per signature)"
else
    not_ok "logged in again after the removal ($logins logins in all)"
fi

if [ -n "${VALGRIND:-}" ]; then
    drive "valgrind: churn, 8 threads x 10" \
        vg prog p11-threads -j 8 -n 10 churn
    drive "valgrind: first use racing on fresh contexts (2 rounds)" \
        vg faulty "$TT/vg-first-use.log" "" p11-threads -n 2 -r 2 first-use
else
    skip "valgrind is not used in this build"
    skip "valgrind is not used in this build"
fi

done_testing
