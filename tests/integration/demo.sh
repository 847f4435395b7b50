#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# scripts/demo, README's first command, works: run with this build
# (P11CA_DEMO_BUILD, no bootstrap, no build) in a temporary directory
# (P11CA_DEMO_OUT), it goes to its end, and its registry-service part does
# what it says: p11ca serve starts on the demo's CA, a device of a
# registered CA is auto-registered at its first connection, its entry is
# read through the API, it is refused at the handshake once deactivated,
# and the service exits 0 at SIGTERM. Outcomes are checked with openssl,
# ss and p11ca's audit replay, beside the demo's own lines.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
command -v softhsm2-util >/dev/null || plan_skip "SoftHSM2 is not installed"
command -v curl >/dev/null || plan_skip "curl is not installed"
command -v jq >/dev/null || plan_skip "jq is not installed"
# The README's command runs a plain build; with ASan preloaded, GnuTLS's
# p11tool (which the demo runs, uninstrumented) never returns.
[ -z "${SANITIZER_PRELOAD:-}" ] ||
    plan_skip "the demo runs in the plain build (p11tool hangs with libasan preloaded)"
TT=$(mktemp -d)
trap 'rm -rf "$TT"' EXIT
plan 10

OUT=$TT/demo
(
    unset P11CA_MODULE
    P11CA_DEMO_BUILD=$top_builddir
    P11CA_DEMO_OUT=$OUT
    export P11CA_DEMO_BUILD P11CA_DEMO_OUT
    sh "$top_srcdir/scripts/demo"
) >"$TT/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^==> done:' "$TT/out"; then
    ok "scripts/demo runs to its end (exit 0)"
else
    not_ok "scripts/demo runs to its end (exit $rc)"
    diag "$(tail -n 40 "$TT/out")"
fi

assert_grep '^  p11ca serve: listening on https://127\.0\.0\.1:[0-9]+/' "$TT/out" \
    "p11ca serve started on the demo's CA and said where it listens"
assert_grep '^\{"id":[0-9]+,"name":"devices",.*"auto_register":true,"auto_status":"activated"\}$' \
    "$TT/out" "the device maker's CA is registered with auto-registration on"
assert_grep '^\{"serial":"[0-9A-F]+","subject":"CN=sensor-0001","client_id":"sensor-0001","status":"activated","origin":"registered"\}$' \
    "$TT/out" "the device is auto-registered and served on its first connection"
assert_grep '"actor":"api:auto-register CN=sensor-0001 serial=' "$TT/out" \
    "the operator's GET shows the entry's history (auto-registration)"
assert_grep '^  s_client: .*alert bad certificate' "$TT/out" \
    "once deactivated, the device's next connection gets alert bad certificate"
assert_grep '"TLS handshake" refused serial=[0-9A-F]+ reason=not-activated' \
    "$OUT/access.log" "... and the access log says why"
assert_grep '^p11ca serve exited 0$' "$TT/out" "SIGTERM: the service exited 0"

# Tools we did not write: the device's certificate chains to the device
# maker's CA; nothing listens on the service's port after the demo.
port=$(sed -n 's|^  p11ca serve: listening on https://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' \
    "$TT/out")
if openssl verify -CAfile "$OUT/fleet/ca.pem" "$OUT/sensor.pem" >/dev/null 2>&1 &&
    [ -n "$port" ] && ! ss -Htln | grep -q ":$port "; then
    ok "the device certificate verifies with openssl; the port is closed"
else
    not_ok "the device certificate verifies with openssl; the port is closed"
    diag "port '$port': $(ss -Htln | grep ":$port " || true)"
fi
assert_no_grep 'demo-pin-|demo-so-|alice-pin-' "$TT/out" \
    "no PIN in the demo's output"
