#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The delegated OCSP signer: p11ca ocsp signer init makes its key on the
# token and its certificate (ocsp profile: OCSPSigning, ocsp-nocheck),
# recorded; responses signed with it carry its certificate and verify with
# openssl ocsp (which checks the OCSPSigning usage: a response of a signer
# without it is refused, shown with openssl's own responder) and ocsptool;
# nextUpdate never passes the signer's certificate; an expired signer
# answers internalError; bad signers and failed set-ups leave nothing.
# shellcheck shell=sh disable=SC2086
set -u
. "$top_srcdir/tests/integration/ocsp-setup.sh"
command -v ocsptool >/dev/null || plan_skip "gnutls ocsptool is not installed"
command -v pkcs11-tool >/dev/null || plan_skip "pkcs11-tool is not installed"
command -v sqlite3 >/dev/null || plan_skip "sqlite3 is not installed"
FT=$(find /usr/lib -path '*/faketime/libfaketime.so.1' 2>/dev/null | head -n 1)
plan 43

# later DAYS CMD...: CMD with the clock DAYS days ahead (libfaketime; the
# ASan runtime first in sanitizer builds).
later() {
    d=$1
    shift
    LD_PRELOAD="${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$FT" FAKETIME="+${d}d" "$@"
}
nkeys() { # LABEL: private keys with that label on the token
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --login \
        --pin "$TEST_PIN" -O --type privkey 2>/dev/null | grep -c "label: *$1\$"
}
nocsp() { sqlite3 "$CA/registry.db" "select count(*) from certs where profile='ocsp'"; }

if ! device dev1; then
    echo "Bail out! cannot issue the test device"
    exit 1
fi
request "$D/dev1.der" -issuer "$CA/ca.pem" -cert "$D/dev1.pem" -no_nonce

# --- Refusals first: nothing is left behind -------------------------------------
should_fail 2 'profile "client" does not issue OCSP signers: its ext_key_usage has no OCSPSigning' \
    "signer init under a profile without OCSPSigning: refused, exit 2" \
    p11ca ocsp signer init --dir "$CA" --profile client \
    --key-uri "$TOKURI;object=wrong-signer" --generate ec:P-256
assert_eq "$(nkeys wrong-signer) $(nocsp)" "0 0" \
    "... the key it generated is removed, nothing recorded"
should_fail 2 'unknown profile|no profile' \
    "signer init with a profile ca.cnf does not have: refused" \
    p11ca ocsp signer init --dir "$CA" --profile nosuch \
    --key-uri "$TOKURI;object=wrong-signer" --generate ec:P-256
assert_eq "$(nkeys wrong-signer)" 0 "... and its key removed too"
should_fail 1 'one of --key-uri and --key' "signer init without a key: usage" \
    p11ca ocsp signer init --dir "$CA"
# A key that could leave the token (generated extractable) is refused.
run_prog weak-key "$SOFTHSM_MODULE" "$TOKEN" "$PINFILE" extractable extr 0e01
should_fail 3 "the OCSP signer's key: .*not CKA_NEVER_EXTRACTABLE" \
    "signer init with an extractable key: refused, exit 3" \
    p11ca ocsp signer init --dir "$CA" --key-uri "$TOKURI;object=extr;type=private"
assert_eq "$(nocsp)" 0 "... nothing recorded"
assert_no_grep '^\[ ocsp \]' "$CA/ca.cnf" "ca.cnf is as it was"

# --- The signer --------------------------------------------------------------------
check "ocsp signer init: a P-256 key on the token, a certificate from the CA" \
    p11ca ocsp signer init --dir "$CA" --key-uri "$TOKURI;object=ocsp-signer" \
    --generate ec:P-256
SIG=$CA/ocsp-signer.pem
assert_grep '^signer_key += pkcs11:.*object=ocsp-signer' "$CA/ca.cnf" \
    "ca.cnf [ ocsp ] names the signer's key"
assert_grep '^signer_cert += ocsp-signer.pem$' "$CA/ca.cnf" "... and its certificate"
assert_no_grep "$TEST_PIN" "$CA/ca.cnf" "... and holds no PIN"
check "the signer's certificate verifies under the CA" \
    openssl verify -CAfile "$CA/ca.pem" "$SIG"
openssl x509 -in "$SIG" -noout -text -nameopt oneline >"$TT/x509"
assert_grep 'OCSP Signing' "$TT/x509" "... extendedKeyUsage OCSPSigning"
assert_grep 'OCSP No Check' "$TT/x509" "... id-pkix-ocsp-nocheck"
assert_grep 'Subject: CN = OCSP Responder, O = p11ca tests' "$TT/x509" \
    "... subject: the CA's, with CN OCSP Responder"
assert_no_grep 'OCSP - URI|CRL Distribution' "$TT/x509" \
    "... no responder URL and no CRL (RFC 9919: it is not checked)"
assert_eq "$(nocsp)" 1 "... recorded in the registry (profile ocsp)"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --login \
    --pin "$TEST_PIN" -O --type privkey --label ocsp-signer >"$TT/p11" 2>&1
assert_grep 'never extractable' "$TT/p11" "the signer's key on the token is never extractable"

# --- Responses signed by it --------------------------------------------------------
check "a response signed by the delegated signer" respond "$D/dev1.der" "$D/del.resp"
assert_status "$D/del.resp" "$D/dev1.pem" good \
    "openssl ocsp verifies it up to the CA (signer chain, OCSPSigning): good"
openssl ocsp -respin "$D/del.resp" -resp_text -noverify >"$TT/text" 2>&1
assert_grep 'Subject: CN ?= ?OCSP Responder' "$TT/text" "... it carries the signer's certificate"
gnutls "$D/del.resp"
ski=$(openssl x509 -in "$SIG" -noout -ext subjectKeyIdentifier |
    sed -n '2s/[ :]//gp' | tr 'A-F' 'a-f')
assert_grep "Responder Key ID: $ski" "$TT/gnutls" \
    "ocsptool: responder ID by the signer's key hash"
assert_grep 'Certificate Status: good' "$TT/gnutls" "ocsptool: good"
ocsptool --verify-response --load-signer "$CA/ca.pem" --infile "$D/del.resp" \
    >"$TT/gv" 2>&1
assert_grep 'Verifying OCSP Response: Success' "$TT/gv" \
    "ocsptool verifies it with the CA as trust anchor"

# The negative control: openssl ocsp refuses a response whose signer lacks
# OCSPSigning (openssl's own responder signing with dev1's client key), so
# the verification above did check the usage.
exp=$(date -u -d '+1 year' +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=dev1\n' "$exp" \
    "$(openssl x509 -in "$D/dev1.pem" -noout -serial | cut -d= -f2)" >"$D/index.txt"
openssl ocsp -index "$D/index.txt" -CA "$CA/ca.pem" -rsigner "$D/dev1.pem" \
    -rkey "$D/dev1.key" -reqin "$D/dev1.der" -respout "$D/noeku.resp" -ndays 1 \
    >/dev/null 2>&1
verdict "$D/noeku.resp" "$D/dev1.pem"
assert_grep 'missing ocspsigning usage' "$TT/verdict" \
    "control: openssl ocsp refuses a signer without OCSPSigning"

# nextUpdate never passes the signer's certificate.
printf 'next_update = 366d\n' >>"$CA/ca.cnf"
check "next_update = 366d with a 30-day signer: answered" \
    respond "$D/dev1.der" "$D/cap.resp"
openssl ocsp -respin "$D/cap.resp" -resp_text -noverify >"$TT/text" 2>&1
next=$(sed -n 's/^ *Next Update: //p' "$TT/text")
end=$(openssl x509 -in "$SIG" -noout -enddate | cut -d= -f2)
assert_eq "$(date -d "$next" +%s)" "$(date -d "$end" +%s)" \
    "... nextUpdate is the signer certificate's notAfter"
sed -i '/^next_update = 366d$/d' "$CA/ca.cnf"

if [ -n "$FT" ]; then
    later 40 "$top_builddir/src/p11ca" ocsp respond --dir "$CA" \
        --reqin "$D/dev1.der" --respout "$D/expired.resp" >"$TT/out" 2>"$TT/err"
    assert_eq "$?" 5 "40 days later the signer has expired: exit 5"
    assert_grep 'answered internalError: the OCSP signer.s certificate .* is not valid now: make a new one with p11ca ocsp signer init' \
        "$TT/err" "... internalError, saying what to do"
    assert_eq "$(resp_error "$D/expired.resp")" "internalerror (2)" \
        "... openssl ocsp reads internalerror (2)"
else
    skip "libfaketime is not installed"
    skip "libfaketime is not installed"
    skip "libfaketime is not installed"
fi

# --- A new signer replaces the old one -------------------------------------------
old=$(serial_of "$SIG")
check "ocsp signer init again (a new key)" \
    p11ca ocsp signer init --dir "$CA" --key-uri "$TOKURI;object=ocsp-signer-2" \
    --generate ec:P-256 --days 7
assert_eq "$(grep -c '^signer_key' "$CA/ca.cnf") $(grep -c '^signer_cert' "$CA/ca.cnf")" \
    "1 1" "ca.cnf names one signer"
assert_grep 'object=ocsp-signer-2' "$CA/ca.cnf" "... the new one"
[ "$(serial_of "$SIG")" != "$old" ]
assert_eq "$?" 0 "ocsp-signer.pem is the new certificate"
check "responses are signed by the new signer" respond "$D/dev1.der" "$D/new.resp"
assert_status "$D/new.resp" "$D/dev1.pem" good "... verified: good"

# --- A key made beforehand --------------------------------------------------------
p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=made-before" \
    --type ec:P-384 >/dev/null 2>&1
check "ocsp signer init with a key already on the token (no --generate)" \
    p11ca ocsp signer init --dir "$CA" --key-uri "$TOKURI;object=made-before"
assert_grep "^signer_key += $TOKURI;object=made-before\$" "$CA/ca.cnf" \
    "... ca.cnf names it as given"
check "... responses are signed with it" respond "$D/dev1.der" "$D/p384.resp"
assert_status "$D/p384.resp" "$D/dev1.pem" good "... verified: good"

# --- A signer certificate that is not one -----------------------------------------
cp "$CA/ca.cnf" "$D/ca.cnf.good"
sed -i 's|^signer_cert .*|signer_cert = '"$D"'/dev1.pem|' "$CA/ca.cnf"
should_fail 2 'dev1.pem \(signer_cert of \[ ocsp \]\) is not an OCSP signer: no extendedKeyUsage OCSPSigning' \
    "a signer_cert without OCSPSigning is refused" respond "$D/dev1.der" "$D/x.resp"
ca_make "$D/other" "Other CA" otherca
p11ca --pin-source "$PINFILE" ocsp signer init --dir "$D/other" \
    --key-uri "$TOKURI;object=other-signer" --generate ec:P-256 >/dev/null 2>&1
sed -i 's|^signer_cert .*|signer_cert = '"$D"'/other/ocsp-signer.pem|' "$CA/ca.cnf"
should_fail 2 'other/ocsp-signer.pem \(signer_cert of \[ ocsp \]\) was not issued by this CA' \
    "another CA's OCSP signer is refused" respond "$D/dev1.der" "$D/x.resp"
cp "$D/ca.cnf.good" "$CA/ca.cnf"
done_testing
