#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# docs/serve.md works as written: the ```sh blocks of its two walkthrough
# sections ("An IoT fleet from nothing", "A smartcard user enrolled with a
# code"), in order, in one shell (sh -e), in an empty directory.  The
# guide makes its own SoftHSM2 token in that directory.  What this test
# sets, and nothing else (printed as a TAP comment):
#   PATH            the built p11ca first (a symbolic link in run/bin)
#   OPENSSL_MODULES the built provider, for the guide's openssl commands
#   PORT            a port reserved by free_port, the one setting the
#                   guide reads (8443 when unset)
#   SOFTHSM2_CONF, P11CA_MODULE  unset (the guide exports its own)
# Then what the guide claims is checked with tools we did not write: its
# curl and openssl output, openssl crl on the CRL it fetched; and, with the
# service started again on the guide's CA directory, openssl s_client:
# the revoked devices are refused at the handshake, the card the guide
# enrolled logs in, and the CRL from curl lists the revocations.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/tls.sh"
for t in softhsm2-util curl jq; do
    command -v $t >/dev/null || plan_skip "$t is not installed"
done
TT=$(mktemp -d)
R=$TT/run/serve-demo
trap 'kill "$(cat "$R/serve.pid" 2>/dev/null)" 2>/dev/null; [ -z "${SPID:-}" ] || kill "$SPID" 2>/dev/null; rm -rf "$TT"' EXIT
plan 21

GUIDE=$top_srcdir/docs/serve.md
# The blocks of the two sections, without the indentation of a list item.
awk '
    /^## / { sect = ($0 == "## An IoT fleet from nothing" ||
                     $0 == "## A smartcard user enrolled with a code") }
    sect && /^ *```sh$/ { on = 1; ind = index($0, "`") - 1; n++; next }
    on && /^ *```/ { on = 0; next }
    on { if (substr($0, 1, ind) ~ /^ *$/) $0 = substr($0, ind + 1); print }
    END { print n > "/dev/stderr" }' "$GUIDE" >"$TT/guide.sh" 2>"$TT/nblocks"
nb=$(cat "$TT/nblocks")
if [ "$nb" -ge 12 ]; then
    ok "the walkthrough has $nb runnable blocks"
else
    not_ok "the walkthrough has runnable blocks ($nb)"
fi
mkdir -p "$TT/run/bin"
ln -s "$top_builddir/src/p11ca" "$TT/run/bin/p11ca"
PORT=$(free_port) || { echo "Bail out! no port"; exit 1; }
diag "environment of the guide: PORT=$PORT PATH=$TT/run/bin:\$PATH OPENSSL_MODULES=$top_builddir/provider/.libs, SOFTHSM2_CONF and P11CA_MODULE unset"
(
    cd "$TT/run" || exit 1
    PATH="$TT/run/bin:$PATH"
    OPENSSL_MODULES=$top_builddir/provider/.libs
    unset P11CA_MODULE SOFTHSM2_CONF
    export PATH OPENSSL_MODULES PORT
    # Sanitizer builds: the provider needs the sanitizer runtime preloaded
    # into openssl, and only there.
    if [ -n "${SANITIZER_PRELOAD:-}" ]; then
        printf '#!/bin/sh\nLD_PRELOAD="%s" ASAN_OPTIONS="%s" exec "%s" "$@"\n' \
            "$SANITIZER_PRELOAD" "${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            "$(command -v openssl)" >"$TT/run/bin/openssl"
        chmod +x "$TT/run/bin/openssl"
    fi
    # A guide that waits for ever fails here instead of stalling the suite.
    timeout 600 sh -e "$TT/guide.sh"
) >"$TT/guide.out" 2>&1
rc=$?
OUT=$TT/guide.out
if [ $rc -eq 0 ]; then
    ok "every block ran without error, and the service stopped with status 0"
else
    not_ok "every block ran without error (exit $rc)"
    diag "$(tail -n 30 "$OUT")"
    diag "the service's log:"
    diag "$(tail -n 20 "$R/serve.log" 2>/dev/null)"
fi

serial() { openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2; }
DEV1=$(serial "$R/dev1.pem")
GW1=$(serial "$R/gw1.pem")
assert_grep '^\{"status":"ok",' "$OUT" "GET /healthz with curl: ok"
assert_grep '^\{"id":[0-9]+,"name":"maker","auto_register":true,"auto_status":"activated"\}$' \
    "$OUT" "the maker's CA is registered, auto-registration on, status activated"
assert_grep "^\\{\"serial\":\"$DEV1\",\"status\":\"activated\",\"client_id\":\"dev1\",\"origin\":\"registered\"\\}\$" \
    "$OUT" "the device is recorded activated at its first connection and reads its entry on it"
assert_grep "^\\{\"serial\":\"$DEV1\",\"status\":\"not-activated\"\\}\$" "$OUT" \
    "deactivated: its status is not-activated"
assert_grep '^curl: \([0-9]+\) .*alert bad certificate' "$OUT" \
    "... then curl is refused at the handshake (alert bad certificate)"
assert_grep "\"TLS handshake\" refused serial=$DEV1 reason=not-activated" "$OUT" \
    "... and the access log says not-activated"
assert_grep "^\\{\"serial\":\"$DEV1\",\"status\":\"revoked\"\\}\$" "$OUT" "revoked"
assert_grep '^curl: \([0-9]+\) .*alert certificate revoked' "$OUT" \
    "... then curl is refused at the handshake (alert certificate revoked)"
assert_grep "\"TLS handshake\" refused serial=$DEV1 reason=revoked" "$OUT" \
    "... and the access log says revoked"
# The CRL the guide fetched, read by openssl.
if [ -n "$GW1" ] &&
    openssl crl -inform DER -in "$R/root.crl" -CAfile "$R/root/ca.pem" -noout \
        >"$TT/crl.verify" 2>&1 && grep -q 'verify OK' "$TT/crl.verify" &&
    openssl crl -inform DER -in "$R/root.crl" -noout -text |
    grep -A4 -i "Serial Number: *0*$GW1" | grep -q 'Key Compromise'; then
    ok "openssl crl: the CRL from GET /v1/crl verifies and lists gw1 (keyCompromise)"
else
    not_ok "openssl crl: the CRL from GET /v1/crl verifies and lists gw1 '$GW1'"
    diag "$(cat "$TT/crl.verify" 2>/dev/null)"
fi
assert_grep "^enrolled \"ann\" on token \"ann-card\": .*certificate [0-9A-F]+ for CN=ann .*from the service at 127\\.0\\.0\\.1:$PORT" \
    "$OUT" "the card is enrolled with the code"
grep -E '^[0-9A-F]+ (activated|revoked)$' "$OUT" >"$TT/ann.list"
if [ "$(grep -c ' revoked$' "$TT/ann.list")" = 2 ] &&
    [ "$(grep -c ' activated$' "$TT/ann.list")" = 1 ]; then
    ok "renewed and re-keyed: two superseded certificates revoked, one activated"
else
    not_ok "renewed and re-keyed: two revoked, one activated"
    diag "$(cat "$TT/ann.list")"
fi

# --- The service again, on what the guide left --------------------------------
SPID=""
OPENSSL_MODULES=$top_builddir/provider/.libs
export OPENSSL_MODULES
(
    cd "$R" || exit 1
    SOFTHSM2_CONF=$R/softhsm2.conf
    unset P11CA_MODULE
    export SOFTHSM2_CONF
    exec "$top_builddir/src/p11ca" serve --dir root
) >"$TT/serve2.log" 2>&1 </dev/null &
SPID=$!
if wait_for 60 grep -q 'listening on' "$TT/serve2.log"; then
    ok "the service starts again on the guide's CA directory"
else
    not_ok "the service starts again on the guide's CA directory"
    diag "$(tail -n 20 "$TT/serve2.log")"
fi
# s_client NAME KEY CERT: GET /healthz with that client certificate; the
# output in $TT/NAME.log.
# In sanitizer builds the provider needs the ASan runtime loaded first by
# the (uninstrumented) openssl command, as tests/lib/prov.sh does.
if [ -n "${SANITIZER_PRELOAD:-}" ]; then
    PRE="LD_PRELOAD=$SANITIZER_PRELOAD"
    ASAN="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
else
    PRE=P11CA_TEST=1
    ASAN=P11CA_TEST=1
fi
s_client() {
    printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
        env "$PRE" "$ASAN" SOFTHSM2_CONF="$R/softhsm2.conf" timeout 60 openssl s_client \
            -provider p11ca -provider default -connect "127.0.0.1:$PORT" \
            -servername localhost -ign_eof -CAfile "$R/root/ca.pem" \
            -verify_return_error -key "$2" -cert "$3" >"$TT/$1.log" 2>&1
}
s_client dev1 "$R/dev1.key" "$R/dev1.pem"
assert_grep 'alert certificate revoked' "$TT/dev1.log" \
    "openssl s_client: the revoked device is refused at the handshake"
s_client gw1 "$R/gw1.key" "$R/gw1.pem"
assert_grep 'alert certificate revoked' "$TT/gw1.log" \
    "openssl s_client: the revoked gw1 is refused at the handshake"
s_client ann "pkcs11:token=ann-card;object=ann;type=private;pin-source=$R/ann.pin" \
    "pkcs11:token=ann-card;object=ann;type=cert"
if grep -q '^HTTP/1.1 200' "$TT/ann.log" && grep -q 'Verify return code: 0 (ok)' "$TT/ann.log"; then
    ok "openssl s_client with the key and certificate on the card: 200"
else
    not_ok "openssl s_client with the key and certificate on the card: 200"
    diag "$(tail -n 15 "$TT/ann.log")"
fi
curl -sS --cacert "$R/root/ca.pem" -o "$TT/crl2.der" "https://127.0.0.1:$PORT/v1/crl" 2>"$TT/curl.err"
openssl crl -inform DER -in "$TT/crl2.der" -noout -text >"$TT/crl2.txt" 2>&1
missing=""
for s in $GW1 $(sed -n 's/ revoked$//p' "$TT/ann.list"); do
    grep -qi "Serial Number: *0*$s\$" "$TT/crl2.txt" || missing="$missing $s"
done
if [ -z "$missing" ] && [ -s "$TT/ann.list" ] &&
    openssl crl -inform DER -in "$TT/crl2.der" -CAfile "$R/root/ca.pem" -noout 2>&1 |
    grep -q 'verify OK'; then
    ok "curl GET /v1/crl, openssl crl: verifies, lists gw1 and ann's two superseded certificates"
else
    not_ok "curl GET /v1/crl, openssl crl: lists every revocation (missing:$missing)"
    diag "$(cat "$TT/curl.err")"
fi
if ! grep -qi "Serial Number: *0*$DEV1\$" "$TT/crl2.txt"; then
    ok "... and not the maker's device (another CA's)"
else
    not_ok "... and not the maker's device (another CA's)"
fi
kill -TERM "$SPID"
wait "$SPID"
assert_eq "$?" 0 "SIGTERM: the service exits 0"
SPID=""
done_testing
