#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# docs/smartcard-login.md works as written: every ```sh block of the guide,
# in order, in an empty directory, with the built p11ca first in PATH and
# the built provider visible to openssl; then its results are checked.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/guide.sh"
. "$top_srcdir/tests/lib/tls.sh"
for t in softhsm2-util gnutls-cli p11tool certutil modutil; do
    command -v $t >/dev/null || plan_skip "$t is not installed"
done
TT=$(mktemp -d)
trap 'kill "$(cat "$TT/run/smartcard/server.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$TT"' EXIT
plan 6

GUIDE=$top_srcdir/docs/smartcard-login.md
guide_prepare "$GUIDE" "$TT"
(
    cd "$TT/run" || exit 1
    PATH="$TT/run/bin:$PATH"
    OPENSSL_MODULES=$top_builddir/provider/.libs
    PORT=$(free_port)
    unset P11CA_MODULE SOFTHSM2_CONF
    export PATH OPENSSL_MODULES PORT
    # Sanitizer builds: the provider needs the sanitizer runtime preloaded
    # into openssl, and only there (p11tool deadlocks at exit under it).
    if [ -n "${SANITIZER_PRELOAD:-}" ]; then
        printf '#!/bin/sh\nLD_PRELOAD="%s" ASAN_OPTIONS="%s" exec "%s" "$@"\n' \
            "$SANITIZER_PRELOAD" "${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            "$(command -v openssl)" >"$TT/run/bin/openssl"
        chmod +x "$TT/run/bin/openssl"
    fi
    # A guide that waits for ever fails here instead of stalling the suite.
    timeout 600 sh -e "$TT/guide.sh"
) >"$TT/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    ok "every block of the guide ran without error"
else
    not_ok "every block of the guide ran without error (exit $rc)"
    diag "$(tail -n 30 "$TT/out")"
fi
if grep -q 'Verification: OK' "$TT/out" && [ "$(grep -c 'Verify return code: 0 (ok)' "$TT/out")" -ge 2 ] &&
    [ "$(grep -c 'Subject: CN=alice, O=Example' "$TT/out")" -ge 2 ]; then
    ok "openssl and GnuTLS log in with the card; the server verified both"
else
    not_ok "openssl and GnuTLS log in with the card"
    diag "$(grep -E 'Verif|Subject|Handshake' "$TT/out")"
fi
assert_grep 'Handshake was completed' "$TT/out" "gnutls-cli completed the handshake"
assert_grep '^alice-card:alice +u,u,u' "$TT/out" "NSS sees the certificate with its key on the card"
if grep -q '^renewed "alice"' "$TT/out" && grep -q '^rekeyed "alice"' "$TT/out" &&
    [ "$(grep -c ' revoked  ' "$TT/out")" -ge 3 ] &&
    grep -q '^enrolled "alice" on token "alice-card-2"' "$TT/out"; then
    ok "renewal, re-key, and a new card after the lost one is revoked"
else
    not_ok "renewal, re-key, lost card"
    diag "$(grep -E '^(renewed|rekeyed|enrolled)|revoked' "$TT/out")"
fi
done_testing
