#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Moving in and out: an `openssl ca` database imported into the registry
# and exported back; PKCS#12 of software keys (modern and legacy; token
# keys refused); chain downloads as PEM, PKCS#7 and zip.
# On SQLite, or on PostgreSQL with P11CA_TEST_REGISTRY=pg (registry-migrate-pg.sh).
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/registry.sh"
plan 24

W=$TT/w
mkdir -p "$W/oca/newcerts"
# An openssl ca with three certificates, one revoked.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/oca.key" -subj "/CN=Old CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -out "$W/oca.pem" 2>/dev/null
: >"$W/oca/index.txt"
echo 1000 >"$W/oca/serial"
cat >"$W/oca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
dir = $W/oca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
certificate = $W/oca.pem
private_key = $W/oca.key
default_md = sha256
default_days = 10
policy = p
unique_subject = no
[ p ]
commonName = supplied
CNF
for u in u1 u2 u3; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$u.key" -subj "/CN=$u" -out "$W/$u.csr" 2>/dev/null
    openssl ca -batch -config "$W/oca.cnf" -in "$W/$u.csr" -out "$W/$u.pem" 2>/dev/null
done
openssl ca -batch -config "$W/oca.cnf" -revoke "$W/u2.pem" -crl_reason superseded 2>/dev/null

# The CA directory that takes the old database over (same key and cert).
check "ca init over the old CA's key" \
    reg_init --dir "$W/ca" --subject "/CN=Old CA" --key "$W/oca.key"
check "import-index loads index.txt and newcerts" \
    p11ca import-index --dir "$W/ca" "$W/oca/index.txt"
n=$(p11ca cert list --dir "$W/ca" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$n" 3 "three certificates imported"
s2=$(openssl x509 -in "$W/u2.pem" -noout -serial | cut -d= -f2)
p11ca cert show --dir "$W/ca" --json "$s2" >"$TT/u2.json"
v=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], d["reason"])' "$TT/u2.json")
assert_eq "$v" "revoked superseded" "the revoked one keeps its status and reason"
should_fail 2 'exists|already' "importing the same database twice changes nothing" \
    p11ca import-index --dir "$W/ca" "$W/oca/index.txt"
printf 'V\tgarbage\n' >"$W/bad.txt"
should_fail 2 'index.txt line' "a malformed index is refused" p11ca import-index --dir "$W/ca" "$W/bad.txt"
printf '\t301231000000Z\t\t01\tunknown\t/CN=x\n' >"$W/bad.txt"
should_fail 2 'index.txt line' "a line with an empty status is refused" p11ca import-index --dir "$W/ca" "$W/bad.txt"
check "export-index writes an openssl ca database" \
    p11ca export-index --dir "$W/ca" --certs "$W/out/newcerts" "$W/out/index.txt"
sort "$W/oca/index.txt" | cut -f1,3,4,6 >"$TT/a"
sort "$W/out/index.txt" | cut -f1,3,4,6 >"$TT/b"
check "the exported index matches the original (status, revocation, serial, subject)" cmp "$TT/a" "$TT/b"
openssl x509 -in "$W/oca/newcerts/1000.pem" -outform DER -out "$TT/orig.der"
openssl x509 -in "$W/out/newcerts/1000.pem" -outform DER -out "$TT/exp.der" 2>/dev/null
check "the exported certificates are the originals" cmp "$TT/orig.der" "$TT/exp.der"
mkdir -p "$W/out2"
cp "$W/oca.cnf" "$W/out.cnf"
sed -i "s|^dir = .*|dir = $W/out|" "$W/out.cnf"
echo 1003 >"$W/out/serial"
check "openssl ca keeps working on the exported database (gencrl)" \
    openssl ca -config "$W/out.cnf" -gencrl -crldays 1 -out "$W/out.crl"

# PKCS#12: software keys only.
printf 'export-pass' >"$W/p12.pass"
chmod 600 "$W/p12.pass"
check "export-p12 (modern)" p11ca export-p12 --key "$W/u1.key" --cert "$W/u1.pem" \
    --chain "$W/oca.pem" --password-file "$W/p12.pass" --out "$W/u1.p12"
openssl pkcs12 -in "$W/u1.p12" -info -noout -passin file:"$W/p12.pass" >"$TT/p12" 2>&1
assert_grep 'PBES2, PBKDF2, AES-256-CBC' "$TT/p12" "modern: AES-256-CBC with PBKDF2"
assert_grep 'MAC: sha256' "$TT/p12" "modern: SHA-256 MAC"
check "export-p12 --legacy" p11ca export-p12 --legacy --key "$W/u1.key" --cert "$W/u1.pem" \
    --password-file "$W/p12.pass" --out "$W/u1-legacy.p12"
openssl pkcs12 -in "$W/u1-legacy.p12" -info -noout -passin file:"$W/p12.pass" >"$TT/p12l" 2>&1
assert_grep 'pbeWithSHA1And3-KeyTripleDES-CBC' "$TT/p12l" "legacy: 3DES"
keygen tk ec:P-256
should_fail 2 'cannot leave the token' "a token key is refused" \
    p11ca export-p12 --key "$TOKURI;object=tk;type=private" --cert "$W/u1.pem" \
    --password-file "$W/p12.pass" --out "$W/tk.p12"
should_fail 2 'not the key of' "a key that does not match the certificate is refused" \
    p11ca export-p12 --key "$W/u3.key" --cert "$W/u1.pem" --password-file "$W/p12.pass" --out "$W/x.p12"

# Chain downloads.
s1=$(openssl x509 -in "$W/u1.pem" -noout -serial | cut -d= -f2)
check "export-chain --format pem" p11ca export-chain --dir "$W/ca" --root --out "$W/c.pem" "$s1"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$W/c.pem")" 2 "PEM bundle: leaf and root"
check "export-chain --format p7b" p11ca export-chain --dir "$W/ca" --format p7b --out "$W/c.p7b" "$s1"
openssl pkcs7 -inform DER -in "$W/c.p7b" -print_certs -noout >"$TT/p7" 2>&1
# "CN = u1" on OpenSSL 3.0, "CN=u1" on 3.2+ (pkcs7 takes no -nameopt).
assert_grep '^subject= ?CN ?= ?u1$' "$TT/p7" "the PKCS#7 holds the leaf"
check "export-chain --format zip" p11ca export-chain --dir "$W/ca" --format zip --out "$W/c.zip" "$s1"
v=$(python3 -c 'import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print(z.testzip(), sorted(z.namelist()))' "$W/c.zip")
assert_eq "$v" "None ['certificate.crt', 'root.crt']" "the zip holds certificate.crt and root.crt"
done_testing
