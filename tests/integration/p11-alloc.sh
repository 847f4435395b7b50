#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Allocation failures in the p11 layer: the scenario of tests/progs/p11-alloc
# (load the module, find the token, find the key with a login, sign) once
# with each of its allocation calls failing in turn.  Every run signs or
# refuses cleanly (exit 0 or 3, never a crash); a refusal says
# CKR_HOST_MEMORY, or names the p11-kit call that failed; a failure is
# ignored only where the code says it may be (the cached PIN).  Leaks and
# memory errors: ASan/LSan in the sanitizer build, valgrind for every run
# with P11CA_ALLOC_VALGRIND=1 (slow).  What is counted: alloc-fail.h.
# top_srcdir and top_builddir come from the test environment (tests/local.mk).
# shellcheck disable=SC1091,SC2154
set -eu
. "$top_srcdir/tests/lib/token.sh"
. "$top_srcdir/tests/progs/drive.sh"

plan 6

crashed=""
drive "generate the test key on the token" prog p11-alloc setup
drive "the scenario signs when no allocation fails" prog p11-alloc run
calls=$(sed -n 's/^calls: //p' "$TT/out")
if [ "${calls:-0}" -gt 0 ]; then
    ok "it makes $calls allocation calls that can fail"
else
    not_ok "it makes allocation calls that can fail (counted: ${calls:-none})"
    crashed=" (no run: nothing counted)"
fi

vague="" ignored=""
i=1
while [ "$i" -le "${calls:-0}" ]; do
    rc=0
    if [ "${P11CA_ALLOC_VALGRIND:-0}" = 1 ]; then
        P11CA_VALGRIND=1 prog p11-alloc run "$i" >"$TT/a.out" 2>"$TT/a.err" ||
            rc=$?
    else
        prog p11-alloc run "$i" >"$TT/a.out" 2>"$TT/a.err" || rc=$?
    fi
    what=$(sed -n 's/^failed: call [0-9]*, //p' "$TT/a.out")
    case $rc in
    0)
        # Signed all the same: only the PIN cache may do without.
        if [ "$what" != OPENSSL_secure_malloc ]; then
            ignored="$ignored $i:$what"
        fi
        ;;
    3)
        if grep -q '(null)' "$TT/a.out"; then
            vague="$vague $i:$what"
        elif ! grep -q '^error: .*CKR_HOST_MEMORY' "$TT/a.out"; then
            case $what in
            p11_kit_module_load | p11_kit_modules_load_and_initialize)
                # p11-kit says nothing of why: the call and the module.
                grep -q '^error: loading .*P11CA_NO_MODULE' "$TT/a.out" ||
                    vague="$vague $i:$what"
                ;;
            *) vague="$vague $i:$what" ;;
            esac
        fi
        ;;
    *)
        crashed="$crashed $i:$what"
        diag "call $i ($what): exit $rc"
        diag "$(tail -n 15 "$TT/a.err")"
        ;;
    esac
    if [ -n "$vague" ] && [ "${vague##* }" = "$i:$what" ]; then
        diag "call $i ($what): $(grep '^error:' "$TT/a.out")"
    fi
    i=$((i + 1))
done

if [ -z "$crashed" ]; then
    ok "each of the $calls failures: a signature or a clean refusal, no crash or leak"
else
    not_ok "crashed, leaked or misreported (call:function):$crashed"
fi
if [ -z "$vague" ]; then
    ok "each refusal says CKR_HOST_MEMORY, or which p11-kit call failed"
else
    not_ok "refusals that do not say they ran out of memory:$vague"
fi
if [ -z "$ignored" ]; then
    ok "no failure is ignored but the cached PIN's"
else
    not_ok "failures ignored (the run signed all the same):$ignored"
    diag "an allocation that fails must fail the call, unless it is optional"
fi
