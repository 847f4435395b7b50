#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Two PKCS#11 modules in one process: SoftHSM2 (the configured module) and
# the fault module forwarding to it, loaded by the URI of a key.  The second
# module is loaded while the tokens of the first are known and used by other
# threads: the module table must not move under them (ASan builds catch a
# use after free).  Through the provider (tests/progs/prov-evp) and the p11
# layer (tests/progs/p11-threads).
# shellcheck disable=SC1091,SC2154
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/progs/drive.sh"

plan 11

keygen tm ec:P-256
# module-name= picks SoftHSM2 among the two modules once both are loaded.
uri1="$TOKURI;object=tm;type=private;$PINQ?module-name=libsofthsm2"
uri2="$TOKURI;object=tm;type=private;$PINQ?module-path=$FAULTY"
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE
FAULTY_PKCS11_LOG=$TT/calls.log
# A URI loads a module only where the configuration allows it (the
# provider and the p11 layer read this variable; p11-uri-module.sh).
P11CA_ALLOW_URI_MODULE_PATH=yes
export FAULTY_PKCS11_MODULE FAULTY_PKCS11_LOG P11CA_ALLOW_URI_MODULE_PATH

# evp N ITER: prov-evp's modules mode (the provider needs the sanitizer
# runtime preloaded in sanitizer builds); its TAP lines become ours, and a
# driver that dies prints fewer: the plan catches it.
evp() {
    if [ -n "${SANITIZER_PRELOAD:-}" ]; then
        LD_PRELOAD=$SANITIZER_PRELOAD ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            run_prog prov-evp modules "$uri1" "$1" "$2" "$uri2" >"$TT/evp.out" 2>&1
    else
        run_prog prov-evp modules "$uri1" "$1" "$2" "$uri2" >"$TT/evp.out" 2>&1
    fi
    evp_rc=$?
    grep -E '^(not )?ok' "$TT/evp.out" >"$TT/evp.tap"
    while read -r line; do
        case $line in
        not\ ok*) not_ok "provider: ${line#not ok * - }" ;;
        *) ok "provider: ${line#ok * - }" ;;
        esac
    done <"$TT/evp.tap"
    if [ "$evp_rc" -ne 0 ] || grep -Eq 'AddressSanitizer|runtime error|^not ok' "$TT/evp.out"; then
        not_ok "provider: prov-evp modules $1 $2 exits 0 without a sanitizer report (exit $evp_rc)"
        diag "$(grep -v '^ok' "$TT/evp.out" | head -n 40)"
    else
        ok "provider: prov-evp modules $1 $2 exits 0 without a sanitizer report"
    fi
}

evp 1 4
evp 8 20
assert_grep ' C_Sign CKR_OK' "$TT/calls.log" "the second module signed (the fault module's log)"
drive "p11 layer: generate the driver's keys" prog p11-threads setup
drive "p11 layer: 4 threads sign through the first module while 4 find and sign through a second one they load" \
    prog p11-threads -j 8 -n 20 modules "$FAULTY"
done_testing
