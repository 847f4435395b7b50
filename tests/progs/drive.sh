# SPDX-License-Identifier: Apache-2.0
# Shell helpers for the TAP scripts that run the C drivers of tests/progs.
# shellcheck shell=sh disable=SC2154
# Source after tests/lib/token.sh (it sets TT, PINFILE and SOFTHSM_MODULE).

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so

# drive "description" COMMAND...: one TAP line for a driver run (exit 0),
# then the driver's report (its stdout) as diagnostics.
drive() {
    check "$@"
    if [ -s "$TT/out" ]; then
        diag "$(cat "$TT/out")"
    fi
}

# prog NAME ARGS...: run tests/progs/NAME with the test token's PIN file.
prog() {
    prog_name=$1
    shift
    run_prog "$prog_name" -p "$PINFILE" "$@"
}

# faulty LOG RULES NAME ARGS...: prog NAME through faulty-pkcs11 (which
# forwards to SoftHSM2) with the fault RULES (may be empty), logging every
# call to LOG.
faulty() {
    (
        FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE
        FAULTY_PKCS11_LOG=$1
        FAULTY_PKCS11_FAULTS=$2
        export FAULTY_PKCS11_MODULE FAULTY_PKCS11_LOG FAULTY_PKCS11_FAULTS
        shift 2
        faulty_name=$1
        shift
        prog "$faulty_name" -m "$FAULTY" "$@"
    )
}

# vg COMMAND...: COMMAND with run_prog under valgrind memcheck.
vg() {
    (
        P11CA_VALGRIND=1
        export P11CA_VALGRIND
        "$@"
    )
}

# count REGEX FILE: the number of matching lines (0 without a file).
count() {
    count_n=$(grep -c -- "$1" "$2" 2>/dev/null) || true
    echo "${count_n:-0}"
}

# pids_with REGEX FILE: how many processes logged a matching call line.
pids_with() {
    grep -- "$1" "$2" 2>/dev/null | cut -d' ' -f1 | sort -u | wc -l |
        tr -d ' '
}
