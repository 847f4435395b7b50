#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# OSSL_STORE search criteria on a token: openssl storeutl -subject,
# -issuer/-serial, -alias and -fingerprint, and a program that calls
# OSSL_STORE_find(OSSL_STORE_SEARCH_by_alias) (tests/progs/prov-store).
# What comes out is checked with stock openssl (certificate fingerprints,
# key digests) against the files the token was filled from.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 21

# An issuer (EC), a leaf it signed with serial 0x1234, and a certificate
# whose subject is a PrintableString (tools differ in string types: the
# same name must be found whatever the encoding).
keygen issuer ec:P-256
keygen leaf ec:P-256
keygen printable ec:P-256
openssl req $PROV -new -x509 -key "$(privuri issuer)" -subj "/CN=Issuer" \
    -days 2 -out "$TT/issuer.pem"
openssl req $PROV -new -key "$(privuri leaf)" -subj "/CN=Leaf" -out "$TT/leaf.csr"
openssl x509 $PROV -req -in "$TT/leaf.csr" -CA "$TT/issuer.pem" \
    -CAkey "$(privuri issuer)" -set_serial 0x1234 -days 1 -out "$TT/leaf.pem" 2>/dev/null
cat >"$TT/printable.cnf" <<EOF
[req]
distinguished_name = dn
string_mask = default
prompt = no
[dn]
CN = Printable
EOF
openssl req $PROV -new -x509 -config "$TT/printable.cnf" \
    -key "$(privuri printable)" -days 2 -out "$TT/printable.pem"
for c in issuer leaf printable; do
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/$c.pem" >/dev/null
done
if openssl asn1parse -in "$TT/printable.pem" | grep -q 'PRINTABLESTRING *:Printable'; then
    ok "the test certificate's subject is a PrintableString"
else
    not_ok "the test certificate's subject is a PrintableString"
fi

fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/.*=//'; }
# found FILE: how many objects storeutl listed ("N: Certificate" lines;
# OpenSSL 3.5 prints no "Total found: 0" when it found nothing).
found() { grep -c '^[0-9][0-9]*: ' "$1"; }

run() { # run NAME storeutl-arguments...: output in $TT/NAME.out, .err
    name=$1
    shift
    openssl storeutl $PROV "$@" >"$TT/$name.out" 2>"$TT/$name.err"
}

# By subject: exactly the issuer's certificate.
run subj -certs -subject "/CN=Issuer" "$TOKURI"
assert_eq "$(found "$TT/subj.out")" 1 "storeutl -certs -subject /CN=Issuer finds one certificate"
assert_eq "$(fp "$TT/subj.out")" "$(fp "$TT/issuer.pem")" "... the issuer's certificate"
run printable -certs -subject "/CN=Printable" "$TOKURI"
assert_eq "$(found "$TT/printable.out"):$(fp "$TT/printable.out")" "1:$(fp "$TT/printable.pem")" \
    "-subject (a UTF8String) finds the certificate whose subject is a PrintableString"
run nosubj -certs -subject "/CN=Nobody" "$TOKURI"
assert_eq "$(found "$TT/nosubj.out")" 0 "-subject /CN=Nobody finds nothing (and ends cleanly)"

# By issuer and serial number.
run iss -certs -issuer "/CN=Issuer" -serial 0x1234 "$TOKURI"
assert_eq "$(found "$TT/iss.out"):$(fp "$TT/iss.out")" "1:$(fp "$TT/leaf.pem")" \
    "-issuer /CN=Issuer -serial 0x1234 finds the leaf"
run iss2 -certs -issuer "/CN=Issuer" -serial 0x1235 "$TOKURI"
assert_eq "$(found "$TT/iss2.out")" 0 "another serial number finds nothing"
run iss3 -certs -issuer "/CN=Leaf" -serial 0x1234 "$TOKURI"
assert_eq "$(found "$TT/iss3.out")" 0 "another issuer finds nothing"
run iss4 -issuer "/CN=Issuer" -serial 0x1234 "$TOKURI;$PINQ"
assert_eq "$(found "$TT/iss4.out")" 1 "without -certs, an issuer and serial find the certificate only (no key has them)"

# By alias (CKA_LABEL): the leaf's objects, and only them.
run alias -alias leaf "$TOKURI;$PINQ"
assert_eq "$(found "$TT/alias.out")" 3 "-alias leaf finds the private key, public key and certificate labelled leaf"
assert_eq "$(grep -c '^[0-9]*: ' "$TT/alias.out")" 3 "... three objects listed"
run alias2 -certs -alias leaf "$TOKURI"
assert_eq "$(found "$TT/alias2.out"):$(fp "$TT/alias2.out")" "1:$(fp "$TT/leaf.pem")" \
    "-certs -alias leaf: the leaf's certificate"
run alias3 -alias issuer "$TOKURI;object=leaf;$PINQ"
assert_eq "$(found "$TT/alias3.out")" 0 "an alias that differs from object= finds nothing"

# By key fingerprint: the digest of the public key's SubjectPublicKeyInfo,
# computed here by stock openssl from the certificate file.
kfp=$(openssl x509 -in "$TT/leaf.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 -r | cut -d' ' -f1)
run kfp -fingerprint "$kfp" -sha256 "$TOKURI;$PINQ"
assert_eq "$(found "$TT/kfp.out")" 3 "-fingerprint (SHA-256 of the leaf's public key) finds its key pair and certificate"
run kfp2 -certs -fingerprint "$kfp" -sha256 "$TOKURI"
assert_eq "$(fp "$TT/kfp2.out")" "$(fp "$TT/leaf.pem")" "... the certificate is the leaf's"
kfp1=$(openssl x509 -in "$TT/leaf.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
    openssl dgst -sha1 -r | cut -d' ' -f1)
run kfp3 -certs -fingerprint "$kfp1" -sha1 "$TOKURI"
assert_eq "$(found "$TT/kfp3.out")" 1 "-fingerprint with -sha1"

# A program with OSSL_STORE_find(OSSL_STORE_SEARCH_by_alias) and no UI.
run_prog prov-store supports "$TOKURI" >"$TT/sup.out" 2>&1
assert_eq "$(tr '\n' ' ' <"$TT/sup.out")" "by_name 1 by_issuer_serial 1 by_key_fingerprint 1 by_alias 1 " \
    "OSSL_STORE_supports_search: the four search types"
run_prog prov-store find-alias "$TOKURI;type=cert" leaf >"$TT/find.out" 2>&1
assert_eq "$(tr '\n' ' ' <"$TT/find.out")" "Certificate /CN=Leaf found 1 " \
    "OSSL_STORE_find(by_alias leaf) on type=cert: exactly the leaf's certificate"
run_prog prov-store load "$TOKURI;type=cert" >"$TT/all.out" 2>&1
assert_eq "$(tail -n 1 "$TT/all.out")" "found 3" "... where the URI alone gives all three certificates"
run_prog prov-store find-alias "$TOKURI;type=cert" nobody >"$TT/none.out" 2>&1
assert_eq "$(tr '\n' ' ' <"$TT/none.out")" "found 0 " "by_alias with no such label: nothing, no error"
# The public key found by alias is the leaf's.
openssl storeutl $PROV -noout -alias leaf "$TOKURI;type=public" >/dev/null 2>&1
openssl pkey $PROV -pubin -in "$TOKURI;object=leaf;type=public" -pubout -out "$TT/leaf.pub" 2>/dev/null
assert_eq "$(openssl pkey -pubin -in "$TT/leaf.pub" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)" \
    "$kfp" "the leaf's public key on the token has the fingerprint searched for"
