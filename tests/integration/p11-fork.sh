#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# fork() and the p11 layer: children of a logged-in parent, and of a parent
# that never used its context, sign with the inherited context and never
# touch the parent's sessions (faulty-pkcs11's fork checker), with SoftHSM2
# reset_on_fork true and false.
# top_srcdir and top_builddir come from the test environment (tests/local.mk).
# shellcheck disable=SC1091,SC2154
set -eu
. "$top_srcdir/tests/lib/token.sh"
. "$top_srcdir/tests/progs/drive.sh"
base_conf=$SOFTHSM2_CONF

plan 12

# no_violation LOG "description": the fork checker found nothing, neither
# in the call log nor on the driver's stderr; both must exist (a check of
# a log that was never written proves nothing).
no_violation() {
    if [ -f "$1" ] && [ -f "$TT/err" ]; then
        cat "$1" "$TT/err" >"$TT/both.log"
    else
        rm -f "$TT/both.log"
    fi
    assert_no_grep 'FORK VIOLATION' "$TT/both.log" "$2"
}

# with_conf CONF COMMAND...: COMMAND with another SoftHSM2 configuration.
with_conf() {
    (
        SOFTHSM2_CONF=$1
        export SOFTHSM2_CONF
        shift
        "$@"
    )
}

drive "generate the test keys on the token" prog p11-fork setup

for reset in true false; do
    # Same token directory, only library.reset_on_fork differs.
    conf=$TT/softhsm2-reset-$reset.conf
    sed "s/^library.reset_on_fork = .*/library.reset_on_fork = $reset/" \
        "$base_conf" >"$conf"

    log=$TT/fork-$reset.log
    drive "reset_on_fork=$reset: 4 children of a logged-in parent sign with its context and key" \
        with_conf "$conf" faulty "$log" "" p11-fork -j 4 -n 20 fork
    no_violation "$log" \
        "reset_on_fork=$reset: no child used the parent's sessions"
    assert_eq "$(pids_with ' C_Initialize CKR_OK' "$log"):$(pids_with ' C_Sign CKR_OK' "$log")" \
        5:5 "reset_on_fork=$reset: parent and 4 children each initialised and signed"

    log=$TT/fork-fresh-$reset.log
    drive "reset_on_fork=$reset: 4 children make the first use of a context created before fork" \
        with_conf "$conf" faulty "$log" "" p11-fork -j 4 -n 20 fork-fresh
    no_violation "$log" \
        "reset_on_fork=$reset: fork before first use, no FORK VIOLATION"
done

if [ -n "${VALGRIND:-}" ]; then
    drive "valgrind: parent and 4 children, 3 signatures each" \
        vg faulty "$TT/vg-fork.log" "" p11-fork -j 4 -n 3 fork
else
    skip "valgrind is not used in this build"
fi

done_testing
