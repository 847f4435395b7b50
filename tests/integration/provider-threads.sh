#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The provider under concurrency and fork, through EVP and OSSL_STORE:
# many threads signing with one key, keys opened and freed while others
# sign, forked children signing with their parent's key, threads reading a
# key's public half at the same moment.
set -u
. "$top_srcdir/tests/lib/prov.sh"
keygen tec ec:P-256
keygen trsa rsa:2048
keygen ted ed25519
run() { # run the driver; its TAP lines are ours
    if [ -n "${SANITIZER_PRELOAD:-}" ]; then
        LD_PRELOAD=$SANITIZER_PRELOAD ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            run_prog prov-evp "$@"
    else
        run_prog prov-evp "$@"
    fi
}
{
    run threads "$(privuri tec)" 8 100 | grep -v '^1\.\.'
    run threads "$(privuri trsa)" 8 50 | grep -v '^1\.\.'
    run threads "$(privuri ted)" 4 50 | grep -v '^1\.\.'
    run fork "$(privuri tec)" 4 | grep -v '^1\.\.'
    # What OpenSSL caches at load equals the public half read later; 8
    # threads read that public half at the same moment.
    run info "$(privuri tec)" 8 | grep -v '^1\.\.'
    run info "$(privuri trsa)" 4 | grep -v '^1\.\.'
    run info "$(privuri ted)" 4 | grep -v '^1\.\.'
    run fork "$(privuri trsa)" 2 | grep -v '^1\.\.'
    # Software work (digests, verification) runs in the application's
    # default context when the provider was loaded there with the default
    # provider, else in a context of the provider's own: both, 8 threads
    # making the choice at once.
    for where in own default; do
        if [ $where = default ]; then
            export PROV_EVP_DEFAULT_CTX=1
            want="the application's default library context"
        else
            want="the provider's own library context"
        fi
        P11CA_DEBUG=prov P11CA_DEBUG_FILE=$TT/sw-$where.log \
            run threads "$(privuri tec)" 8 20 | grep -v '^1\.\.'
        run fork "$(privuri ted)" 2 | grep -v '^1\.\.'
        unset PROV_EVP_DEFAULT_CTX
        if [ "$(grep -c 'software operations in' "$TT/sw-$where.log")" = 1 ] \
            && grep -q "software operations in $want" "$TT/sw-$where.log"; then
            echo "ok - providers in the $where context: software work in $want, chosen once"
        else
            echo "not ok - providers in the $where context: software work in $want, chosen once"
            grep 'software operations' "$TT/sw-$where.log" | sed 's/^/# /'
        fi
    done
    # A token removal (every session closed, the login lost) while 8
    # threads sign through the provider: all of them go on, every
    # signature verifies.
    P11CA_MODULE=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so \
        FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_LOG=$TT/removed.log \
        FAULTY_PKCS11_FAULTS=C_Sign:150:CKR_DEVICE_REMOVED \
        run threads "$(privuri tec)" 8 50 | grep -v '^1\.\.'
    if [ "$(grep -c '\[injected\]' "$TT/removed.log")" = 1 ]; then
        echo "ok - ... through a token removal injected in the middle"
    else
        echo "not ok - ... through a token removal injected in the middle"
    fi
    if [ -n "${VALGRIND:-}" ]; then
        if P11CA_VALGRIND=1 run threads "$(privuri tec)" 4 10 >"$TT/vg.out" 2>&1 &&
            ! grep -q '^not ok' "$TT/vg.out"; then
            echo "ok - threads under valgrind memcheck: no errors, no leaks"
        else
            echo "not ok - threads under valgrind memcheck"
            sed 's/^/# /' "$TT/vg.out" | tail -n 40
        fi
    fi
} >"$TT/tap"
n=$(grep -cE '^(not )?ok' "$TT/tap")
echo "1..$n"
# Number the lines so the driver sees one sequence.
awk '/^(not )?ok/ { sub(/ok [0-9]+ -|ok -/, "ok " ++i " -") } { print }' "$TT/tap"
! grep -q '^not ok' "$TT/tap"
