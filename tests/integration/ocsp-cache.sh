#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The cache of pre-signed responses in a long-lived responder
# (tests/progs/ocsp-drive: the loop thread's lookup, then a worker), CA key
# on the token: a response signed once is served again byte for byte; nonce
# answers are never cached, unknown ones are until the serial is registered
# (another process's registration, seen by the refresh); malformed and
# unauthorized answers need no worker; a revocation by another process shows after the next
# refresh, one through the service's own path at once; a new certificate
# is pre-signed; responses are signed again within refresh_before of their
# nextUpdate (the clock moved in the process) and dropped past it; worker
# threads share it; ignore_nonce and cache_entries = 0.
# shellcheck shell=sh disable=SC2086
set -u
. "$top_srcdir/tests/integration/ocsp-setup.sh"
plan 47

# drive STEP...: the responder in one process, its lines in $TT/drive.
drive() {
    run_prog ocsp-drive "$CA" "$@" >"$TT/drive" 2>"$TT/err"
}
# line N: the Nth line of the last drive.
line() { sed -n "${1}p" "$TT/drive"; }
# this_update RESP: thisUpdate of the response, in Unix seconds.
this_update() {
    openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null |
        sed -n 's/^ *This Update: //p' | head -n 1 | xargs -I{} date -d {} +%s
}

if ! { device dev1 && device dev2; }; then
    echo "Bail out! cannot issue the test devices"
    exit 1
fi
S1=$(serial_of "$D/dev1.pem")
S2=$(serial_of "$D/dev2.pem")
request "$D/r1.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" -no_nonce
request "$D/r1n.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" -nonce
request "$D/r1s.der" -issuer "$CA/ca.pem" -sha256 -cert "$D/dev1.pem" -no_nonce
request "$D/r2.der" -issuer "$CA/ca.pem" -cert "$D/dev2.pem" -no_nonce
request "$D/unknown.der" -issuer "$CA/ca.pem" -serial 0x5eed -no_nonce
head -c 100 /dev/urandom >"$D/garbage.der"
printf '\n[ ocsp ]\nnext_update = 2h\nrefresh_before = 1h\n' >>"$CA/ca.cnf"

# --- Hits and misses ------------------------------------------------------------
check "ocsp-drive: asks, nonces, unknown, garbage" drive \
    ask "$D/r1.der" "$D/a.resp" ask "$D/r1.der" "$D/b.resp" \
    ask "$D/r1n.der" "$D/c.resp" ask "$D/r1n.der" "$D/d.resp" \
    ask "$D/r1s.der" "$D/e.resp" ask "$D/r1s.der" "$D/f.resp" \
    ask "$D/unknown.der" "$D/g.resp" ask "$D/unknown.der" "$D/g.resp" \
    ask "$D/garbage.der" "$D/h.resp" stats
assert_eq "$(line 1)" "miss successful stored" "the first request: signed by a worker, cached"
assert_eq "$(line 2)" "hit successful" "the second: from the cache"
check "... the same response, byte for byte" cmp "$D/a.resp" "$D/b.resp"
assert_status "$D/b.resp" "$D/dev1.pem" good "... verified by openssl ocsp: good"
assert_eq "$(line 3) / $(line 4)" "miss successful / miss successful" \
    "a nonce request is signed each time, never cached"
nonce_verdict "$D/r1n.der" "$D/d.resp"
assert_grep '^Response verify OK' "$TT/verdict" "... its nonce checked by openssl ocsp"
assert_eq "$(line 5) / $(line 6)" "miss successful stored / hit successful" \
    "the SHA-256 CertID is a response of its own, cached too"
assert_eq "$(line 7) / $(line 8)" "miss successful stored / hit successful" \
    "an unknown answer is cached too (the negative cache: asked again, no signature)"
assert_eq "$(line 9)" "hit malformedRequest" \
    "garbage is answered on the loop thread, no worker"
assert_eq "$(line 10)" "stats responses=3 certs=2 hits=3 misses=6 dropped=0" \
    "the counters: 3 responses of 2 serials; a worker looks again before it signs"

# The negative cache lets go of a serial once this CA's certificate with
# it is registered by another process (seen in the audit trail).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/seed.key" -subj /CN=seed -out "$D/seed.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >"$D/seed.ext"
openssl x509 $PROV -req -in "$D/seed.csr" -CA "$CA/ca.pem" \
    -CAkey "$(privuri ocspca)" -set_serial 0x5eed -days 30 \
    -extfile "$D/seed.ext" -out "$D/seed.pem" 2>/dev/null
check "ocsp-drive: an unknown serial cached, then registered, then a refresh" drive \
    ask "$D/unknown.der" "$D/g.resp" ask "$D/unknown.der" "$D/g.resp" \
    run "$top_builddir/src/p11ca cert register --dir $CA $D/seed.pem >/dev/null 2>&1" \
    refresh ask "$D/unknown.der" "$D/h.resp"
assert_eq "$(line 2) / $(line 3)" "hit successful / run exit=0" \
    "the unknown answer cached; p11ca cert register in another process"
assert_eq "$(line 4)" "refresh changes=1 resigned=1 failed=0 rc=0" \
    "the refresh sees the registration: the unknown answer signed again"
assert_eq "$(line 5)" "hit successful" "... and served from the cache"
assert_status "$D/h.resp" "$D/seed.pem" good "... now good (openssl ocsp)"

# --- Changes -------------------------------------------------------------------------
check "ocsp-drive: a revocation by another process, then a refresh" drive \
    ask "$D/r1.der" "$D/a.resp" ask "$D/r1s.der" "$D/a.resp" \
    run "$top_builddir/src/p11ca cert revoke --dir $CA --reason keyCompromise $S1 >/dev/null 2>&1" \
    ask "$D/r1.der" "$D/b.resp" refresh ask "$D/r1.der" "$D/c.resp" \
    ask "$D/r1s.der" "$D/d.resp" refresh
assert_eq "$(line 3) $(line 4)" "run exit=0 hit successful" \
    "p11ca cert revoke in another process: the cache still answers until the refresh"
assert_status "$D/b.resp" "$D/dev1.pem" good "... what it had: good"
assert_eq "$(line 5)" "refresh changes=1 resigned=2 failed=0 rc=0" \
    "the refresh sees the change in the audit trail: both forms signed again"
assert_eq "$(line 6) / $(line 7)" "hit successful / hit successful" \
    "... served from the cache at once"
assert_status "$D/c.resp" "$D/dev1.pem" revoked "... revoked (openssl ocsp)"
assert_grep 'Reason: keyCompromise' "$TT/verdict" "... keyCompromise"
CID_MD=-sha256
assert_status "$D/d.resp" "$D/dev1.pem" revoked "... the SHA-256 form too"
CID_MD=
assert_eq "$(line 8)" "refresh changes=0 resigned=0 failed=0 rc=0" \
    "a refresh with nothing changed signs nothing"

check "ocsp-drive: the service's own revocation (cert_changed)" drive \
    ask "$D/r2.der" "$D/a.resp" \
    run "$top_builddir/src/p11ca cert revoke --dir $CA --reason superseded $S2 >/dev/null 2>&1" \
    changed "$S2" ask "$D/r2.der" "$D/b.resp" refresh
assert_eq "$(line 3) / $(line 4)" "changed rc=0 / hit successful" \
    "cert_changed signs it again at once: the next query is a hit"
assert_status "$D/b.resp" "$D/dev2.pem" revoked "... revoked"
assert_eq "$(line 5)" "refresh changes=0 resigned=0 failed=0 rc=0" \
    "... and the refresh finds the cache current (nothing signed twice)"

device dev3
S3=$(serial_of "$D/dev3.pem")
request "$D/r3.der" -issuer "$CA/ca.pem" -cert "$D/dev3.pem" -no_nonce
request "$D/r3s.der" -issuer "$CA/ca.pem" -sha256 -cert "$D/dev3.pem" -no_nonce
check "ocsp-drive: a new certificate (issued)" drive \
    issued "$S3" ask "$D/r3.der" "$D/a.resp" ask "$D/r3s.der" "$D/b.resp"
assert_eq "$(line 1) / $(line 2) / $(line 3)" \
    "issued rc=0 / hit successful / hit successful" \
    "a new certificate is pre-signed (SHA-1 and SHA-256): first queries are hits"
assert_status "$D/a.resp" "$D/dev3.pem" good "... good"

# --- The refresh window, on the process's clock --------------------------------------
check "ocsp-drive: 50 min, 61 min, 3 h later" drive \
    ask "$D/r3.der" "$D/a.resp" later 3000 refresh later 700 refresh \
    ask "$D/r3.der" "$D/b.resp" later 8000 ask "$D/r3.der" "$D/c.resp" stats
assert_eq "$(line 2)" "refresh changes=0 resigned=0 failed=0 rc=0" \
    "50 minutes on (nextUpdate in 70): nothing is due"
assert_eq "$(line 3)" "refresh changes=0 resigned=1 failed=0 rc=0" \
    "61 minutes on (nextUpdate within refresh_before = 1h): signed again"
assert_eq "$(line 4)" "hit successful" "... and served from the cache"
assert_eq "$(($(this_update "$D/b.resp") - $(this_update "$D/a.resp")))" 3700 \
    "... a response made 3700 s after the first (thisUpdate)"
assert_eq "$(line 5)" "miss successful stored" \
    "3 h on, past every nextUpdate: signed on demand again"

# --- Threads ------------------------------------------------------------------------------
check "ocsp-drive: 4 workers, 25 nonce requests each, then 100 cached each" \
    drive threads 4 25 "$D/r3.der" threads 4 25 "$D/r1n.der" \
    threads 4 100 "$D/r3.der" stats
assert_eq "$(line 2)" "threads successful=100 other=0" \
    "100 nonce requests signed by 4 threads at once"
assert_eq "$(line 3)" "threads successful=400 other=0" "400 answers from the cache"

# --- ignore_nonce, cache_entries = 0 ------------------------------------------------------
printf 'ignore_nonce = yes\n' >>"$CA/ca.cnf"
check "ocsp-drive: ignore_nonce = yes" drive \
    ask "$D/r1n.der" "$D/a.resp" ask "$D/r1n.der" "$D/b.resp"
assert_eq "$(line 1) / $(line 2)" "miss successful stored / hit successful" \
    "with ignore_nonce = yes a nonce request is served from the cache"
nonce_verdict "$D/r1n.der" "$D/b.resp"
assert_grep 'WARNING: no nonce in response' "$TT/verdict" \
    "... without the nonce (openssl ocsp warns, as expected)"
sed -i 's/^ignore_nonce = yes$/cache_entries = 0/' "$CA/ca.cnf"
check "ocsp-drive: cache_entries = 0" drive \
    ask "$D/r3.der" "$D/a.resp" ask "$D/r3.der" "$D/a.resp"
assert_eq "$(line 1) / $(line 2)" "miss successful / miss successful" \
    "cache_entries = 0: every request is signed"
assert_status "$D/a.resp" "$D/dev3.pem" good "... good"
done_testing
