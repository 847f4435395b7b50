#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Replays the seed corpus of every fuzz target once, one TAP result per
# target: under valgrind in a plain build, under ASan+UBSan in a sanitizer
# or fuzzing build.  scripts/fuzz --regress runs the same replay.
# top_srcdir, top_builddir, FUZZ_TARGETS and FUZZ_ENGINE come from the test
# environment (tests/fuzz/local.mk).
# shellcheck disable=SC1091,SC2154
set -eu
. "$top_srcdir/tests/lib/tap.sh"

TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-fuzz.XXXXXX")
trap 'rm -rf "$TT"' EXIT

plan "$(echo "$FUZZ_TARGETS" | wc -w)"

for t in $FUZZ_TARGETS; do
    corpus=$top_srcdir/tests/fuzz/corpus/$t
    seeds=$(find "$corpus" -type f ! -name '.*' 2>/dev/null | wc -l)
    if [ "$seeds" -eq 0 ]; then
        not_ok "$t: no seed corpus in tests/fuzz/corpus/$t"
        continue
    fi
    # libFuzzer (-runs=0: the corpus only) and replay.c take the same
    # arguments.  valgrind only where no sanitizer runs.
    set -- "$top_builddir/tests/fuzz/$t" -runs=0 "$corpus"
    how=""
    if [ -z "${FUZZ_ENGINE:-}" ] && [ -n "${VALGRIND:-}" ]; then
        how=" under valgrind"
        set -- "$VALGRIND" -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect \
            --suppressions="$top_srcdir/tests/valgrind.supp" "$@"
    fi
    if "$@" >"$TT/$t.log" 2>&1; then
        ok "$t: $seeds seeds replayed$how"
    else
        not_ok "$t: the replay of tests/fuzz/corpus/$t failed (exit $?)"
        diag "command: $*"
        diag "$(tail -n 30 "$TT/$t.log")"
    fi
done
