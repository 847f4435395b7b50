#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# docs/ca-operator-guide.md works as written: every ```sh block of the
# guide, in order, in an empty directory, with the built p11ca first in
# PATH and the built provider visible to openssl.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/guide.sh"
command -v softhsm2-util >/dev/null || plan_skip "SoftHSM2 is not installed"
TT=$(mktemp -d)
trap 'rm -rf "$TT"' EXIT
plan 5

GUIDE=$top_srcdir/docs/ca-operator-guide.md
guide_prepare "$GUIDE" "$TT"
(
    cd "$TT/run" || exit 1
    PATH="$TT/run/bin:$PATH"
    OPENSSL_MODULES=$top_builddir/provider/.libs
    unset P11CA_MODULE
    export PATH OPENSSL_MODULES
    if [ -n "${SANITIZER_PRELOAD:-}" ]; then
        # The guide's openssl commands load the ASan-built provider.
        LD_PRELOAD=$SANITIZER_PRELOAD
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
        export LD_PRELOAD ASAN_OPTIONS
    fi
    sh -e "$TT/guide.sh"
) >"$TT/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    ok "every block of the guide ran without error"
else
    not_ok "every block of the guide ran without error (exit $rc)"
    diag "$(tail -n 30 "$TT/out")"
fi
if grep -q 'issuing/ca.pem: OK' "$TT/out" && grep -q 'www.pem: OK' "$TT/out" \
    && grep -q 'alice.pem: OK' "$TT/out" && grep -q 'audit trail intact' "$TT/out" \
    && grep -q 'Signature Verified Successfully' "$TT/out" \
    && grep -Eq '^[0-9A-F]+: already activated$' "$TT/out"; then
    ok "root, intermediate, server and client certificates verify; the audit trail is intact; openssl verifies its signed head; activating twice says already"
else
    not_ok "the guide's results"
    diag "$(grep -E ': OK|revoked|intact|Verified' "$TT/out")"
fi
if grep -q 'www-next.pem: OK' "$TT/out" && grep -q 'would revoke 1 certificate' "$TT/out" &&
    grep -q '^4E: registered-not-activated (CA ' "$TT/out" &&
    grep -Eq '^[0-9]+ +external +vendor ' "$TT/out"; then
    ok "a renewed server certificate, a confirmed revocation, a vendor's certificate"
else
    not_ok "a renewed server certificate, a confirmed revocation, a vendor's certificate"
    diag "$(grep -E 'www-next|would revoke|registered|external' "$TT/out")"
fi
if [ "$(find "$TT/run" -path '*/device-certs/*.pem' | wc -l)" -eq 3 ] &&
    grep -q 'devices .*at most 50 per second' "$TT/out"; then
    ok "a profile with a rate limit of its own: its batch is issued"
else
    not_ok "a profile with a rate limit of its own: its batch is issued"
    diag "$(grep -E 'devices|issued' "$TT/out")"
fi
done_testing
