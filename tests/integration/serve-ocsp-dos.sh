#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2034,SC2086 # settings read by serve-setup.sh; SERVE_ENV holds several assignments
# OCSP signing is no denial of service for p11ca serve: with
# ocsp_max_signing = 1 and the token's C_Sign held (the fault module's
# gate), one nonce request holds the only place and the next ones are
# answered tryLater at once (counted in /metrics, logged in one line),
# while /healthz and a cached OCSP answer keep answering; a repeated
# question about a serial the CA never issued is answered from the cache
# (no new signature); a revocation through the API signs nothing for a
# certificate not in the cache; a bad ocsp_max_signing is refused.  An expired
# delegated OCSP signer does not stop the service from starting: it logs
# the error, answers OCSP tryLater, says so in /metrics, and the API works.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"
FT=$(find /usr/lib -path '*/faketime/libfaketime.so.1' 2>/dev/null | head -n 1)

# TLS with a key file: the gate holds the token's signatures only.
issue_key tlsfile /CN=localhost server DNS:localhost,IP:127.0.0.1,IP:::1 ||
    { echo "Bail out! cannot issue the TLS certificate file"; exit 1; }
SERVE_TLS_KEY=$D/tlsfile.key
SERVE_TLS_CERT=$D/tlsfile.pem
issue_key dev "/CN=dev/O=p11ca tests" client ||
    { echo "Bail out! cannot issue dev"; exit 1; }
issue_key nc "/CN=nc/O=p11ca tests" client ||
    { echo "Bail out! cannot issue nc"; exit 1; }

# --- a bad ocsp_max_signing ---------------------------------------------------
for bad in 0 -1 lots; do
    serve_config "ocsp_max_signing = $bad"
    "$P11CA" serve --dir "$CA" >"$D/bad.log" 2>&1 </dev/null
    rc=$?
    if [ "$rc" -ne 0 ] && grep -q 'ocsp_max_signing' "$D/bad.log"; then
        ok "ocsp_max_signing = $bad: refused at start (exit $rc), the key named"
    else
        not_ok "ocsp_max_signing = $bad: refused at start (exit $rc)"
        diag "$(tail -n 3 "$D/bad.log")"
    fi
done

# --- the bound on fresh signatures ----------------------------------------------
OPORT=$(free_port)
serve_config "ocsp_listen = 127.0.0.1:$OPORT
ocsp_max_signing = 1"
URL=http://127.0.0.1:$OPORT/ocsp
faulty_env 'C_Sign:*:hold'
rm -f "$D/gate"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
assert_eq "$(metric p11ca_ocsp_signing_limit)" 1 "/metrics: the limit is ocsp_max_signing (1)"

# post FILE OUT: POST the DER request FILE to $URL, the response in OUT.
post() {
    curl -sS -o "$2" -H 'Content-Type: application/ocsp-request' \
        --data-binary "@$1" "$URL" 2>"$D/curl.err"
}
# rstatus FILE: the response's status as openssl prints it.
rstatus() {
    openssl ocsp -respin "$1" -resp_text -noverify 2>&1 |
        sed -n 's/.*Response Status: *//p; s/.*Responder Error: *//p' | head -n 1
}
# cstatus FILE: the certificate status of a response, unverified.
cstatus() {
    openssl ocsp -respin "$1" -resp_text -noverify 2>&1 |
        sed -n 's/^ *Cert Status: *//p' | head -n 1
}
openssl ocsp -issuer "$CA/ca.pem" -cert "$D/dev.pem" -no_nonce \
    -reqout "$D/cached.der" >/dev/null 2>&1
openssl ocsp -issuer "$CA/ca.pem" -cert "$D/dev.pem" \
    -reqout "$D/nonce.der" >/dev/null 2>&1
openssl ocsp -issuer "$CA/ca.pem" -serial 0x7e57abcdef0123 -no_nonce \
    -reqout "$D/unknown.der" >/dev/null 2>&1

post "$D/cached.der" "$D/c1.der"
assert_eq "$(cstatus "$D/c1.der")" good "dev without a nonce: good (signed, now cached)"

# The negative cache: an unknown serial is signed once.
# A response signed while the cache was invalidated (the refresh thread
# reading the start's audit entries) is answered but not stored: ask until
# it is cached, each time signed; from then on it costs no signature.
s0=$(metric p11ca_ocsp_signatures_total)
post "$D/unknown.der" "$D/u1.der"
asked=1
while [ "$(metric p11ca_ocsp_cache_unknown)" != 1 ] && [ "$asked" -lt 20 ]; do
    post "$D/unknown.der" "$D/u1.der"
    asked=$((asked + 1))
done
assert_eq "$(cstatus "$D/u1.der")" unknown "a serial never issued: unknown"
s1=$(metric p11ca_ocsp_signatures_total)
assert_eq "$((s1 - s0))" "$asked" "... one signature per question until it is cached ($asked)"
h1=$(metric 'p11ca_ocsp_cache_lookups_total{result="hit"}')
post "$D/unknown.der" "$D/u2.der"
assert_eq "$(cstatus "$D/u2.der")" unknown "asked again: unknown"
check "... the same signed bytes (from the cache)" cmp -s "$D/u1.der" "$D/u2.der"
assert_eq "$(metric p11ca_ocsp_signatures_total)" "$s1" "... no new signature (p11ca_ocsp_signatures_total)"
h2=$(metric 'p11ca_ocsp_cache_lookups_total{result="hit"}')
assert_eq "$((h2 - h1))" 1 "... one more cache hit"
assert_eq "$(metric p11ca_ocsp_cache_unknown)" 1 "/metrics: one serial cached as unknown"

# The token stops answering: one nonce request holds the only place.
touch "$D/gate"
post "$D/nonce.der" "$D/held.der" &
held=$!
if wait_metric p11ca_ocsp_signing_in_flight 1; then
    ok "a nonce request is held in C_Sign: one signature in flight"
else
    not_ok "a nonce request is held in C_Sign: one signature in flight"
    diag "$(tail -n 5 "$D/serve.log")"
fi
n=0
for i in 1 2 3 4 5 6; do
    post "$D/nonce.der" "$D/burst$i.der"
    [ "$(rstatus "$D/burst$i.der")" = "trylater (3)" ] && n=$((n + 1))
done
assert_eq "$n" 6 "a burst of six more nonce requests: each answered tryLater at once"
assert_eq "$(metric 'p11ca_ocsp_try_later_total{reason="busy"}')" 6 \
    "/metrics counts them: p11ca_ocsp_try_later_total{reason=\"busy\"} 6"
lines=$(grep -c 'OCSP: tryLater' "$D/serve.log")
if [ "$lines" -ge 1 ] && [ "$lines" -lt 6 ]; then
    ok "the log has $lines tryLater line(s) for six (one per interval)"
else
    not_ok "the log has $lines tryLater lines for six"
fi
api none GET /healthz
expect 200 .status ok "/healthz answers meanwhile"
post "$D/cached.der" "$D/c2.der"
check "a cached answer too: the same signed bytes" cmp -s "$D/c1.der" "$D/c2.der"
post "$D/unknown.der" "$D/u3.der"
check "... and the cached unknown" cmp -s "$D/u1.der" "$D/u3.der"
api carol GET "/v1/certs/$(cert_serial "$D/dev.pem")"
expect 200 .status activated "a look-up answers meanwhile"
rm -f "$D/gate"
wait "$held"
assert_eq "$(cstatus "$D/held.der")" good "the gate opens: the held request is answered, signed: good"
if wait_metric p11ca_ocsp_signing_in_flight 0; then
    ok "... nothing in flight any more"
else
    not_ok "... nothing in flight any more"
fi
post "$D/nonce.der" "$D/after.der"
assert_eq "$(cstatus "$D/after.der")" good "the next nonce request is signed: good"

# A status change through the API signs again only the CertIDs in the
# cache: none for a certificate never asked about.
n0=$(metric p11ca_ocsp_cache_responses)
api bob POST "/v1/certs/$(cert_serial "$D/nc.pem")/revoke"
expect 200 .status revoked "revoke a certificate nobody asked OCSP about"
assert_eq "$(metric p11ca_ocsp_cache_responses)" "$n0" \
    "... no response signed for it (the cache holds $n0, as before)"
openssl ocsp -issuer "$CA/ca.pem" -cert "$D/nc.pem" -no_nonce \
    -reqout "$D/nc.der" >/dev/null 2>&1
post "$D/nc.der" "$D/nc.resp"
assert_eq "$(cstatus "$D/nc.resp")" revoked "... asked now: revoked (signed on demand)"
serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

# --- an expired delegated signer --------------------------------------------------
SERVE_ENV=""
check "ocsp signer init: a signer certificate valid for 1 day" \
    p11ca ocsp signer init --dir "$CA" --key-uri "$TOKURI;object=ocsp-signer" \
    --generate ec:P-256 --days 1
cp "$CA/ca.cnf" "$CA/ca.cnf.base"
if [ -n "$FT" ]; then
    OPORT=$(free_port)
    serve_config "ocsp_listen = 127.0.0.1:$OPORT"
    URL=http://127.0.0.1:$OPORT/ocsp
    SERVE_ENV="LD_PRELOAD=${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$FT FAKETIME=+3d"
    if serve_start; then
        ok "3 days later, the signer expired: p11ca serve starts all the same"
    else
        not_ok "3 days later, the signer expired: p11ca serve starts all the same"
    fi
    assert_grep "error: OCSP answers tryLater: the OCSP signer's certificate .*is not valid now" \
        "$D/serve.log" "... and logs why OCSP answers tryLater"
    post "$D/cached.der" "$D/x1.der"
    assert_eq "$(rstatus "$D/x1.der")" "trylater (3)" "OCSP without a nonce: tryLater"
    post "$D/nonce.der" "$D/x2.der"
    assert_eq "$(rstatus "$D/x2.der")" "trylater (3)" "OCSP with a nonce: tryLater"
    assert_eq "$(metric p11ca_ocsp_signer_valid)" 0 "/metrics: p11ca_ocsp_signer_valid 0"
    assert_eq "$(metric 'p11ca_ocsp_try_later_total{reason="signer"}')" 2 \
        "/metrics: p11ca_ocsp_try_later_total{reason=\"signer\"} 2"
    api none GET /healthz
    expect 200 .status ok "/healthz answers"
    api carol GET "/v1/certs/$(cert_serial "$D/dev.pem")"
    expect 200 .status activated "the API answers"
    serve_stop
    assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"
else
    for i in 1 2 3 4 5 6 7 8 9; do
        skip "libfaketime is not installed"
    done
fi
SERVE_ENV=""
OPORT=$(free_port)
serve_config "ocsp_listen = 127.0.0.1:$OPORT"
URL=http://127.0.0.1:$OPORT/ocsp
serve_start || { echo "Bail out! the service did not start"; exit 1; }
post "$D/cached.der" "$D/y1.der"
assert_eq "$(cstatus "$D/y1.der")" good "today the signer is valid: good"
assert_eq "$(metric p11ca_ocsp_signer_valid)" 1 "/metrics: p11ca_ocsp_signer_valid 1"
serve_stop

echo "1..$TAP_N"
done_testing
