#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca enroll and token show under valgrind memcheck: no errors and no
# leaks on the success paths (enroll, resume, renew, re-key, show) and on
# the refusals (an unfinished enrollment, a wrong PIN).
set -u
. "$top_srcdir/tests/integration/enroll-setup.sh"
[ -n "${VALGRIND:-}" ] || plan_skip "valgrind not available (or sanitizer build)"
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"
plan 10
P11CA_VALGRIND=1
card card-v
card card-vf

check "valgrind: enroll --with-chain" \
    enroll card-v --profile client --subject /CN=vg-user --type ec:P-256 --with-chain
check "valgrind: token show --dir --json" \
    p11ca token show --json --dir "$CA" "$(cardq card-v)"
check "valgrind: enroll --renew" enroll card-v --renew --label vg-user
check "valgrind: enroll --rekey --remove-old" \
    enroll card-v --rekey --label vg-user --remove-old
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_FAULTS=C_CreateObject:1:CKR_DEVICE_ERROR \
    p11ca --module "$FAULTY" enroll --token "$(cardq card-vf)" --ca "$CA" \
    --profile client --subject /CN=vf-user --type ec:P-256 >/dev/null 2>"$TT/err"
assert_grep 'with --resume to write it' "$TT/err" "valgrind: a failed certificate write"
should_fail 2 'did not finish' "valgrind: an unfinished enrollment is refused" \
    enroll card-vf --profile client --subject /CN=vf-user
check "valgrind: enroll --resume" \
    enroll card-vf --profile client --subject /CN=vf-user --resume
"$top_builddir/src/p11ca" --pin-source "$PINFILE" cert import --id 77 \
    --label vg-lone pkcs11:token=card-v "$D/srv.pem" >/dev/null
should_fail 2 'without its key' "valgrind: a certificate without key is refused" \
    enroll card-v --profile client --subject /CN=vg-lone
check "valgrind: enroll --cleanup" \
    enroll card-v --profile client --subject /CN=vg-lone --cleanup
printf 'not-the-pin' >"$D/bad.pin"
chmod 600 "$D/bad.pin"
should_fail 3 'the PIN was refused' "valgrind: a wrong PIN" \
    p11ca enroll --token "pkcs11:token=card-v;pin-source=$D/bad.pin" --ca "$CA" \
    --profile client --subject /CN=vg-pin
done_testing
