# SPDX-License-Identifier: Apache-2.0
# TAP helpers for the integration scripts: plan, ok/not ok, assertions on
# exit codes and messages, and the p11ca wrapper (valgrind when asked).
# shellcheck shell=sh

TAP_N=0
TAP_FAILED=0

# plan N | plan_skip "reason"
plan() { echo "1..$1"; }
plan_skip() { echo "1..0 # SKIP $*"; exit 0; }

ok() {
    TAP_N=$((TAP_N + 1))
    echo "ok $TAP_N - $*"
}

not_ok() {
    TAP_N=$((TAP_N + 1))
    TAP_FAILED=$((TAP_FAILED + 1))
    echo "not ok $TAP_N - $*"
}

skip() {
    TAP_N=$((TAP_N + 1))
    echo "ok $TAP_N # SKIP $*"
}

diag() { printf '%s\n' "$*" | sed 's/^/# /'; }

# check "description" command... : ok when the command succeeds.
check() {
    desc=$1
    shift
    if "$@" >"$TT/out" 2>"$TT/err"; then
        ok "$desc"
    else
        not_ok "$desc (exit $?)"
        diag "command: $*"
        diag "$(tail -n 20 "$TT/err")"
    fi
}

# should_fail CODE "regex" "description" command... : the command must exit
# with CODE and print a message matching regex on stderr.
should_fail() {
    code=$1
    re=$2
    desc=$3
    shift 3
    "$@" >"$TT/out" 2>"$TT/err"
    rc=$?
    if [ "$rc" -ne "$code" ]; then
        not_ok "$desc (exit $rc, wanted $code)"
        diag "command: $*"
        diag "$(tail -n 20 "$TT/err")"
    elif ! grep -Eq -- "$re" "$TT/err"; then
        not_ok "$desc (message does not match /$re/)"
        diag "$(tail -n 20 "$TT/err")"
    elif grep -Eq 'Segmentation|AddressSanitizer|runtime error|valgrind:.*errors' "$TT/err"; then
        not_ok "$desc (crash or sanitizer report)"
        diag "$(tail -n 20 "$TT/err")"
    else
        ok "$desc"
    fi
}

# assert_grep "regex" file "description"
assert_grep() {
    if grep -Eq -- "$1" "$2"; then
        ok "$3"
    else
        not_ok "$3 (no /$1/ in $2)"
        diag "$(head -n 20 "$2")"
    fi
}

# assert_no_grep "regex" file "description": ok when FILE exists and has
# no line matching regex.  A missing or unreadable file is a failure: a
# negative check ("no PIN in this output") must not pass on nothing.
assert_no_grep() {
    if [ ! -f "$2" ] || [ ! -r "$2" ]; then
        not_ok "$3 ($2 is missing)"
    elif grep -Eq -- "$1" "$2"; then
        not_ok "$3 (found in $2)"
        # The lines, with what matched masked (it may be a PIN).
        sep=$(printf '\001')
        diag "$(grep -En -- "$1" "$2" | head -n 5 |
            sed -E "s${sep}$1${sep}[match]${sep}g")"
    else
        ok "$3"
    fi
}

# wait_for SECONDS command...: run the command every 0.1 s until it
# succeeds (0) or SECONDS have passed (1).  For waiting on a condition
# (a prompt, a process), never for a guessed time.
wait_for() {
    n=$(($1 * 10))
    shift
    i=0
    while ! "$@"; do
        [ $i -lt "$n" ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 0
}

# tty_answer LOG PROMPT ANSWER COMMAND: COMMAND (one string for sh -c) on
# a terminal of its own (script(1)), its terminal output in LOG.  Once
# PROMPT (a fixed string) is on the terminal, the content of the file
# ANSWER and a newline are typed, not before; the terminal stays open until
# COMMAND ends.  Returns COMMAND's status; a prompt that does not come
# within 120 s ends COMMAND (status 124).
tty_answer() {
    tlog=$1 tprompt=$2 tanswer=$3
    tfifo=$TT/tty.$$.fifo
    rm -f "$tfifo"
    mkfifo "$tfifo" || return 1
    : >"$tlog" # before the command starts: no earlier prompt in it
    timeout 600 script -qfec "$4" /dev/null <"$tfifo" >>"$tlog" 2>&1 &
    tpid=$!
    exec 9>"$tfifo"
    if wait_for 120 grep -qF -- "$tprompt" "$tlog"; then
        { cat "$tanswer"; printf '\n'; } >&9
    else
        diag "no \"$tprompt\" on the terminal within 120 s"
        kill "$tpid" 2>/dev/null
    fi
    wait "$tpid"
    trc=$?
    exec 9>&-
    rm -f "$tfifo"
    [ "$trc" -eq 143 ] && trc=124
    return "$trc"
}

# assert_eq actual expected "description"
assert_eq() {
    if [ "$1" = "$2" ]; then
        ok "$3"
    else
        not_ok "$3 (got '$1', wanted '$2')"
    fi
}

# at_clock SECONDS command...: the command with the registry's clock set
# to the test clock (P11CA_TEST_CLOCK, docs/internals/registry.md): it
# starts at SECONDS and moves only when the command waits for a slot of a
# rate limit, without sleeping.  Rate limits then give the same outcome on
# any machine, at any load.
at_clock() {
    (
        P11CA_TEST_CLOCK=$1
        export P11CA_TEST_CLOCK
        shift
        "$@"
    )
}

# The p11ca command; under valgrind memcheck when P11CA_VALGRIND=1.
p11ca() {
    if [ "${P11CA_VALGRIND:-0}" = 1 ] && [ -n "${VALGRIND:-}" ]; then
        "$VALGRIND" -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect \
            --suppressions="$top_srcdir/tests/valgrind.supp" \
            "$top_builddir/src/p11ca" "$@"
    else
        "$top_builddir/src/p11ca" "$@"
    fi
}

# Run a test program (tests/progs) the same way.
run_prog() {
    prog=$1
    shift
    if [ "${P11CA_VALGRIND:-0}" = 1 ] && [ -n "${VALGRIND:-}" ]; then
        "$VALGRIND" -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect \
            --suppressions="$top_srcdir/tests/valgrind.supp" \
            "$top_builddir/tests/progs/$prog" "$@"
    else
        "$top_builddir/tests/progs/$prog" "$@"
    fi
}

# done_testing: exit status for the TAP driver.
done_testing() {
    [ "$TAP_FAILED" -eq 0 ]
}
