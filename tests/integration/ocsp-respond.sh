#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca ocsp respond with the CA key on the SoftHSM2 token, checked by the
# real openssl ocsp and by gnutls ocsptool: good, revoked with its reason,
# unknown, unauthorized for another CA; SHA-1 and SHA-256 CertIDs, several
# in one request, nonces echoed; not-activated certificates as good or
# on hold; every bad request answered malformedRequest (exit 2), never a
# crash, nothing recorded; bad [ ocsp ] settings refused.
# shellcheck shell=sh disable=SC2086
set -u
. "$top_srcdir/tests/integration/ocsp-setup.sh"
command -v ocsptool >/dev/null || plan_skip "gnutls ocsptool is not installed"
plan 77

if ! { device dev1 && device dev2 && device dev3; }; then
    echo "Bail out! cannot issue the test devices"
    exit 1
fi
S1=$(serial_of "$D/dev1.pem")
S2=$(serial_of "$D/dev2.pem")
OTHER=$D/other
ca_make "$OTHER" "Other CA" otherca && device stranger "$OTHER"

openssl x509 -in "$D/dev1.pem" -noout -text >"$TT/x509"
assert_grep 'OCSP - URI:http://ocsp.pki.test/ocsp' "$TT/x509" \
    "issued certificates name the responder (ocsp_url) in their AIA"

# --- good ----------------------------------------------------------------
request "$D/sha1.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" -no_nonce
check "a SHA-1 request without nonce: answered" respond "$D/sha1.der" "$D/sha1.resp"
assert_grep '1 good, 0 revoked, 0 unknown' "$TT/err" "... it says one good"
assert_status "$D/sha1.resp" "$D/dev1.pem" good "openssl ocsp verifies it: good"
assert_grep 'Next Update' "$TT/verdict" "... with a nextUpdate"
gnutls "$D/sha1.resp"
assert_grep 'Certificate Status: good' "$TT/gnutls" "ocsptool reads it: good"
ski=$(openssl x509 -in "$CA/ca.pem" -noout -ext subjectKeyIdentifier |
    sed -n '2s/[ :]//gp' | tr 'A-F' 'a-f')
assert_grep "Responder Key ID: $ski" "$TT/gnutls" \
    "... responder ID by key hash: the CA key's (its subject key identifier)"
assert_grep 'Signature Algorithm: ECDSA-SHA256' "$TT/gnutls" \
    "... signed with the CA key (ECDSA)"
openssl ocsp -respin "$D/sha1.resp" -resp_text -noverify >"$TT/text" 2>&1
assert_no_grep 'BEGIN CERTIFICATE|Certificate:$' "$TT/text" \
    "... the CA signing for itself sends no certificate"
assert_grep 'Hash Algorithm: sha1' "$TT/text" "... the CertID as asked: SHA-1"

request "$D/sha256.der" -issuer "$CA/ca.pem" -sha256 -cert "$D/dev1.pem" -no_nonce
check "a SHA-256 CertID: answered" respond "$D/sha256.der" "$D/sha256.resp"
CID_MD=-sha256
assert_status "$D/sha256.resp" "$D/dev1.pem" good "... good"
CID_MD=
openssl ocsp -respin "$D/sha256.resp" -resp_text -noverify >"$TT/text" 2>&1
assert_grep 'Hash Algorithm: sha256' "$TT/text" "... with the SHA-256 CertID it was asked"

# --- nonces --------------------------------------------------------------
request "$D/nonce.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" -nonce
check "a request with a nonce: answered" respond "$D/nonce.der" "$D/nonce.resp"
assert_grep 'nonce echoed' "$TT/err" "... the nonce echoed"
nonce_verdict "$D/nonce.der" "$D/nonce.resp"
if grep -q '^Response verify OK' "$TT/verdict" &&
    ! grep -Eq 'nonce|Nonce' "$TT/verdict"; then
    ok "openssl ocsp checks the nonce against the request: verified"
else
    not_ok "openssl ocsp checks the nonce against the request"
    diag "$(cat "$TT/verdict")"
fi
gnutls "$D/nonce.resp"
assert_grep 'Nonce' "$TT/gnutls" "ocsptool sees the nonce in the response"

# --- several CertIDs, unknown serials ----------------------------------
request "$D/multi.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" \
    -cert "$D/dev2.pem" -serial 0x5eed1234 -no_nonce
check "three CertIDs in one request" respond "$D/multi.der" "$D/multi.resp"
assert_grep '2 good, 0 revoked, 1 unknown' "$TT/err" "... two good, one unknown"
openssl ocsp -respin "$D/multi.resp" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" \
    -cert "$D/dev2.pem" -serial 0x5eed1234 -CAfile "$CA/ca.pem" -no_nonce \
    >"$TT/verdict" 2>&1
assert_grep "^$D/dev2.pem: good" "$TT/verdict" "openssl ocsp: the second is good"
assert_grep '^0x5eed1234: unknown' "$TT/verdict" \
    "openssl ocsp: a serial this CA never issued is unknown"

# --- revoked ---------------------------------------------------------------
p11ca cert revoke --dir "$CA" --reason keyCompromise \
    --invalidity 2026-01-02T03:04:05Z "$S1" >/dev/null 2>&1
check "after p11ca cert revoke: answered" respond "$D/sha1.der" "$D/rev.resp"
assert_status "$D/rev.resp" "$D/dev1.pem" revoked "openssl ocsp: revoked"
assert_grep 'Reason: keyCompromise' "$TT/verdict" "... reason keyCompromise"
assert_grep 'Revocation Time' "$TT/verdict" "... with its revocation time"
openssl ocsp -respin "$D/rev.resp" -resp_text -noverify >"$TT/text" 2>&1
assert_grep 'Invalidity Date' "$TT/text" "... and the invalidity date"
assert_grep 'Jan  2 03:04:05 2026 GMT' "$TT/text" "... of 2026-01-02T03:04:05Z"
gnutls "$D/rev.resp"
assert_grep 'Certificate Status: revoked' "$TT/gnutls" "ocsptool: revoked"

# --- not activated: good by default, certificateHold when configured -------
p11ca cert deactivate --dir "$CA" "$S2" >/dev/null 2>&1
request "$D/dev2.der" -issuer "$CA/ca.pem" -cert "$D/dev2.pem" -no_nonce
check "a deactivated certificate: answered" respond "$D/dev2.der" "$D/deact.resp"
assert_status "$D/deact.resp" "$D/dev2.pem" good \
    "not_activated = good (default): good, as the CRL does not list it"
printf '\n[ ocsp ]\nnot_activated = hold\n' >>"$CA/ca.cnf"
check "not_activated = hold: answered" respond "$D/dev2.der" "$D/hold.resp"
assert_status "$D/hold.resp" "$D/dev2.pem" revoked "... revoked"
assert_grep 'Reason: certificateHold' "$TT/verdict" "... reason certificateHold"
p11ca cert activate --dir "$CA" "$S2" >/dev/null 2>&1
check "activated again: answered" respond "$D/dev2.der" "$D/act.resp"
assert_status "$D/act.resp" "$D/dev2.pem" good "... good again (a hold is lifted)"

# --- another CA ----------------------------------------------------------------
request "$D/stranger.der" -issuer "$OTHER/ca.pem" -cert "$D/stranger.pem" -no_nonce
should_fail 2 'answered unauthorized: CertID 1 names an issuer this responder does not answer for' \
    "another CA's certificate: unauthorized, exit 2" \
    respond "$D/stranger.der" "$D/stranger.resp"
assert_eq "$(resp_error "$D/stranger.resp")" "unauthorized (6)" \
    "openssl ocsp reads unauthorized (6)"
request "$D/mixed.der" -issuer "$CA/ca.pem" -cert "$D/dev3.pem" \
    -issuer "$OTHER/ca.pem" -cert "$D/stranger.pem" -no_nonce
should_fail 2 'answered unauthorized: CertID 2' \
    "ours and another CA's in one request: unauthorized" \
    respond "$D/mixed.der" "$D/mixed.resp"

# --- bad requests ----------------------------------------------------------------
nrows() { sqlite3 "$CA/registry.db" 'select count(*) from certs; select count(*) from audit'; }
before=$(nrows)
bad() { # FILE REASON-REGEX "description"
    rm -f "$D/bad.resp"
    should_fail 2 "answered malformedRequest: $2" \
        "$3: malformedRequest, exit 2, says why" respond "$1" "$D/bad.resp"
    assert_eq "$(resp_error "$D/bad.resp")" "malformedrequest (1)" \
        "... openssl ocsp reads malformedrequest (1)"
}
head -c 300 /dev/urandom >"$D/garbage.der"
bad "$D/garbage.der" "not a DER OCSPRequest" "300 random bytes"
head -c 40 "$D/multi.der" >"$D/truncated.der"
bad "$D/truncated.der" "not a DER OCSPRequest" "a request cut at 40 bytes"
cp "$D/sha1.der" "$D/trailing.der" && printf 'x' >>"$D/trailing.der"
bad "$D/trailing.der" "not a DER OCSPRequest" "a request with a byte after it"
: >"$D/empty.der"
bad "$D/empty.der" "a request of 0 bytes" "an empty request"
head -c 1048576 /dev/urandom >"$D/huge.der"
bad "$D/huge.der" 'a request of 65537 bytes \(1 to 65536\)' \
    "1 MB (read up to 64 kB + 1)"

# Crafted with openssl asn1parse -genconf: CertIDs of this CA with bad
# extensions, nonces and counts.
openssl ocsp -reqin "$D/sha1.der" -req_text >"$TT/rtext" 2>&1
NH=$(sed -n 's/.*Issuer Name Hash: //p' "$TT/rtext" | head -n 1)
KH=$(sed -n 's/.*Issuer Key Hash: //p' "$TT/rtext" | head -n 1)
# craft OUT NCERTIDS [EXTENSION-SECTION-LINES]
craft() {
    {
        echo "asn1 = SEQUENCE:req"
        echo "[req]"
        echo "tbs = SEQUENCE:tbs"
        echo "[tbs]"
        echo "list = SEQUENCE:list"
        [ -n "${3:-}" ] && echo "exts = EXPLICIT:2C,SEQUENCE:exts"
        echo "[list]"
        i=0
        while [ $i -lt "$2" ]; do
            echo "r$i = SEQUENCE:one"
            i=$((i + 1))
        done
        echo "[one]"
        echo "cid = SEQUENCE:cid"
        echo "[cid]"
        echo "alg = SEQUENCE:alg"
        echo "nh = FORMAT:HEX,OCTETSTRING:$NH"
        echo "kh = FORMAT:HEX,OCTETSTRING:$KH"
        echo "sn = INTEGER:0x$S2"
        echo "[alg]"
        echo "oid = OID:sha1"
        echo "null = NULL"
        echo "[exts]"
        echo "e1 = SEQUENCE:ext"
        echo "[ext]"
        printf '%s\n' "${3:-}"
    } >"$TT/gen.cnf"
    openssl asn1parse -genconf "$TT/gen.cnf" -out "$1" -noout >/dev/null 2>&1
}
hex() { head -c "$1" /dev/zero | od -An -v -tx1 | tr -d ' \n'; }
craft "$D/c-one.der" 1
check "a crafted request (the control): answered" respond "$D/c-one.der" "$D/c.resp"
assert_status "$D/c.resp" "$D/dev2.pem" good "... good"
craft "$D/c-100.der" 100
check "100 CertIDs (the limit): answered" respond "$D/c-100.der" "$D/c.resp"
assert_grep '100 good' "$TT/err" "... all 100"
craft "$D/c-101.der" 101
bad "$D/c-101.der" '101 CertIDs \(1 to 100\)' "101 CertIDs"
craft "$D/c-0.der" 0
bad "$D/c-0.der" "0 CertIDs" "no CertID"
craft "$D/n-128.der" 1 "$(printf 'oid = OID:1.3.6.1.5.5.7.48.1.2\nv = FORMAT:HEX,OCTETSTRING:0481%s' "80$(hex 128)")"
check "a nonce of 128 octets (RFC 9654's limit): answered" \
    respond "$D/n-128.der" "$D/c.resp"
assert_grep 'nonce echoed' "$TT/err" "... echoed"
craft "$D/n-129.der" 1 "$(printf 'oid = OID:1.3.6.1.5.5.7.48.1.2\nv = FORMAT:HEX,OCTETSTRING:0481%s' "81$(hex 129)")"
bad "$D/n-129.der" 'a nonce of 129 octets \(RFC 9654: 1 to 128\)' \
    "a nonce of 129 octets"
craft "$D/n-0.der" 1 "$(printf 'oid = OID:1.3.6.1.5.5.7.48.1.2\nv = FORMAT:HEX,OCTETSTRING:0400')"
bad "$D/n-0.der" "a nonce of 0 octets" "an empty nonce"
craft "$D/n-raw.der" 1 "$(printf 'oid = OID:1.3.6.1.5.5.7.48.1.2\nv = FORMAT:HEX,OCTETSTRING:0102030405060708')"
bad "$D/n-raw.der" "the nonce is not an OCTET STRING" \
    "a nonce that is not an OCTET STRING"
craft "$D/crit.der" 1 "$(printf 'oid = OID:1.2.3.4\ncrit = BOOLEAN:TRUE\nv = FORMAT:HEX,OCTETSTRING:0500')"
bad "$D/crit.der" "a critical request extension it does not support" \
    "an unknown critical request extension"
craft "$D/noncrit.der" 1 "$(printf 'oid = OID:1.2.3.4\nv = FORMAT:HEX,OCTETSTRING:0500')"
check "an unknown extension that is not critical: ignored, answered" \
    respond "$D/noncrit.der" "$D/c.resp"
assert_eq "$(nrows)" "$before" "no bad request recorded anything (certificates, audit trail)"

# --- the command line and [ ocsp ] ----------------------------------------------
should_fail 1 'give --dir DIR, --reqin FILE and --respout FILE' \
    "no --respout: usage error" p11ca ocsp respond --dir "$CA" --reqin "$D/sha1.der"
should_fail 2 'cannot open .*/nothing.der' "a request file that is not there: exit 2" \
    respond "$D/nothing.der" "$D/x.resp"
cp "$CA/ca.cnf" "$D/ca.cnf.good"
bad_cnf() { # LINE REGEX "description"
    cp "$D/ca.cnf.good" "$CA/ca.cnf"
    printf '%s\n' "$1" >>"$CA/ca.cnf"
    should_fail 2 "$2" "$3" respond "$D/sha1.der" "$D/x.resp"
}
bad_cnf 'next_updte = 1d' 'ca.cnf \[ ocsp \]: unknown key "next_updte"' \
    "[ ocsp ]: an unknown key is refused"
bad_cnf 'next_update = 30s' 'next_update = 30s: a duration from 60s to 366d' \
    "[ ocsp ]: next_update under a minute is refused"
bad_cnf 'next_update = 1h
refresh_before = 2h' 'refresh_before must be shorter than next_update' \
    "[ ocsp ]: refresh_before past next_update is refused"
bad_cnf 'not_activated = maybe' 'not_activated = maybe: say good or hold' \
    "[ ocsp ]: not_activated is good or hold"
bad_cnf 'signer_cert = ocsp-signer.pem' 'has signer_cert but no signer_key' \
    "[ ocsp ]: a signer certificate without its key is refused"
cp "$D/ca.cnf.good" "$CA/ca.cnf"
printf 'next_update = 2h\n' >>"$CA/ca.cnf"
check "next_update = 2h: answered" respond "$D/sha1.der" "$D/2h.resp"
openssl ocsp -respin "$D/2h.resp" -resp_text -noverify >"$TT/text" 2>&1
this=$(sed -n 's/^ *This Update: //p' "$TT/text")
next=$(sed -n 's/^ *Next Update: //p' "$TT/text")
assert_eq "$(($(date -d "$next" +%s) - $(date -d "$this" +%s)))" 7200 \
    "... nextUpdate is thisUpdate + 2 h"
done_testing
