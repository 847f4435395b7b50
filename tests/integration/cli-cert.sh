#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Certificates written next to their key: same CKA_ID and label, seen by
# GnuTLS's p11tool; listing, JSON, and refusals of bad input.
set -u
. "$top_srcdir/tests/lib/token.sh"
plan 16

p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=srv" \
    --type ec:P-256 --id 5a5a01 >/dev/null
p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=rsakey" \
    --type rsa:2048 >/dev/null
p11ca key pubout --out "$TT/srv.pub" "$TOKURI;object=srv"
p11ca key pubout --out "$TT/rsa.pub" "$TOKURI;object=rsakey"
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$TT/ca.key" 2>/dev/null
for k in srv rsa; do
    openssl x509 -new -subj "/CN=$k.example" -key "$TT/ca.key" \
        -force_pubkey "$TT/$k.pub" -days 10 -out "$TT/$k.crt" 2>/dev/null
done

check "cert import matches the EC key by its public key" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/srv.crt"
check "cert import matches the RSA key by its modulus" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/rsa.crt"

# GnuTLS sees the certificate with the key's CKA_ID and label.
p11tool --list-all-certs "$TOKURI" >"$TT/p11tool" 2>&1
assert_grep 'ID: 5a:5a:01' "$TT/p11tool" "p11tool lists the certificate with the key's CKA_ID"
assert_grep 'Label: srv' "$TT/p11tool" "p11tool lists the certificate with the key's label"
p11tool --export "$TOKURI;object=srv;type=cert" >"$TT/back.pem" 2>/dev/null
a=$(openssl x509 -in "$TT/back.pem" -noout -fingerprint -sha256 2>/dev/null)
b=$(openssl x509 -in "$TT/srv.crt" -noout -fingerprint -sha256)
assert_eq "$a" "$b" "the certificate read back is the one imported"

# Attributes read by pkcs11-tool (subject, serial present).
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" -O --type cert >"$TT/certs" 2>&1
assert_grep 'subject: *DN: CN=srv.example' "$TT/certs" "CKA_SUBJECT is set"
assert_grep 'serial: *[0-9A-F]+' "$TT/certs" "CKA_SERIAL_NUMBER is set"

p11ca cert list --json "$TOKURI" >"$TT/certs.json"
check "cert list --json parses" python3 -m json.tool "$TT/certs.json"
v=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(sorted((c["label"], c["subject"]) for c in d))' "$TT/certs.json")
assert_eq "$v" "[('rsakey', 'CN=rsa.example'), ('srv', 'CN=srv.example')]" "cert list shows both certificates"

# Refusals.
should_fail 2 'already' "importing the same certificate twice is refused" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/srv.crt"
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$TT/other.key" 2>/dev/null
openssl x509 -new -subj "/CN=nokey" -key "$TT/other.key" -days 1 -out "$TT/nokey.crt" 2>/dev/null
should_fail 2 'no key on the token matches' "a certificate without its key is refused" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/nokey.crt"
check "--authority imports a CA certificate without a key" \
    p11ca --pin-source "$PINFILE" cert import --authority --label ca "$TOKURI" "$TT/nokey.crt"
printf 'garbage\n' >"$TT/garbage.pem"
should_fail 2 'not a PEM or DER' "garbage is refused" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/garbage.pem"
head -c 300 "$TT/srv.crt" >"$TT/trunc.pem"
should_fail 2 'not a PEM or DER' "a truncated PEM is refused" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/trunc.pem"
cat "$TT/srv.crt" "$TT/rsa.crt" >"$TT/two.pem"
should_fail 2 'more than one' "a file with two certificates is refused" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/two.pem"
n=$(p11ca cert list --json "$TOKURI" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$n" 3 "refused imports wrote nothing"
done_testing
