#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV, $P and the like are option lists, split on purpose
# A whole PKI with the CA keys on the token, driven by the stock openssl
# commands through the provider, and checked by plain openssl: root and
# intermediate, server (SAN, serverAuth) and client (clientAuth) certs,
# openssl ca issue/revoke/gencrl, CRL checking, CMS signing.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 28

keygen root ec:P-384
keygen inter ec:P-256
keygen rsaroot rsa:3072
keygen client ec:P-256
D=$TT/pki
mkdir -p "$D"

# Root: self-signed with the token key.
check "req -x509: root CA signed on the token" \
    openssl req $PROV -new -x509 -key "$(privuri root)" -subj "/CN=p11ca Test Root" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -days 30 -out "$D/root.pem"
check "the root verifies with plain openssl" \
    openssl verify -CAfile "$D/root.pem" "$D/root.pem"
openssl x509 -in "$D/root.pem" -noout -text >"$D/root.txt"
assert_grep 'Signature Algorithm: ecdsa-with-SHA256' "$D/root.txt" "root is signed with ECDSA"
assert_grep 'ASN1 OID: secp384r1' "$D/root.txt" "root key carries the named curve"

# RSA root with an RSA-PSS signature.
check "req -x509 with RSA-PSS" \
    openssl req $PROV -new -x509 -key "$(privuri rsaroot)" -subj "/CN=p11ca PSS Root" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -days 30 -out "$D/pss.pem"
openssl x509 -in "$D/pss.pem" -noout -text >"$D/pss.txt"
assert_grep 'Signature Algorithm: rsassaPss' "$D/pss.txt" "the PSS root is signed with rsassaPss"
check "the PSS root verifies with plain openssl" openssl verify -CAfile "$D/pss.pem" "$D/pss.pem"

# Intermediate: CSR from the token key, signed by the root on the token.
check "req -new: CSR from a token key" \
    openssl req $PROV -new -key "$(privuri inter)" -subj "/CN=p11ca Test Intermediate" -out "$D/inter.csr"
openssl req -in "$D/inter.csr" -verify -noout >"$D/inter.verify" 2>&1
assert_grep 'verify OK' "$D/inter.verify" "the CSR signature verifies with plain openssl"
cat >"$D/inter.ext" <<EXT
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
check "x509 -req: the root signs the intermediate" \
    openssl x509 $PROV -req -in "$D/inter.csr" -CA "$D/root.pem" -CAkey "$(privuri root)" \
    -CAcreateserial -days 20 -extfile "$D/inter.ext" -out "$D/inter.pem"
check "the intermediate verifies" openssl verify -CAfile "$D/root.pem" "$D/inter.pem"

# Server certificate: key FILE, CA key on the token (side by side).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/srv.key" 2>/dev/null
openssl req -new -key "$D/srv.key" -subj "/CN=server.test" -out "$D/srv.csr"
printf 'subjectAltName=DNS:server.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >"$D/srv.ext"
check "x509 -req: a software CSR signed by the token intermediate" \
    openssl x509 $PROV -req -in "$D/srv.csr" -CA "$D/inter.pem" -CAkey "$(privuri inter)" \
    -CAcreateserial -days 10 -extfile "$D/srv.ext" -out "$D/srv.pem"
check "server chain verifies for sslserver" \
    openssl verify -purpose sslserver -CAfile "$D/root.pem" -untrusted "$D/inter.pem" "$D/srv.pem"
openssl x509 -in "$D/srv.pem" -noout -text >"$D/srv.txt"
assert_grep 'DNS:server.test, IP Address:127.0.0.1' "$D/srv.txt" "server cert has the SAN"
assert_grep 'TLS Web Server Authentication' "$D/srv.txt" "server cert has serverAuth"

# Client certificate for a token key.
openssl req $PROV -new -key "$(privuri client)" -subj "/CN=alice/OU=people" -out "$D/cli.csr"
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$D/cli.ext"
check "x509 -req: client certificate" \
    openssl x509 $PROV -req -in "$D/cli.csr" -CA "$D/inter.pem" -CAkey "$(privuri inter)" \
    -CAcreateserial -days 10 -extfile "$D/cli.ext" -out "$D/cli.pem"
check "client chain verifies for sslclient" \
    openssl verify -purpose sslclient -CAfile "$D/root.pem" -untrusted "$D/inter.pem" "$D/cli.pem"

# openssl ca with the intermediate key on the token: issue, revoke, CRL.
mkdir -p "$D/ca/newcerts"
: >"$D/ca/index.txt"
echo 1000 >"$D/ca/serial"
echo 1000 >"$D/ca/crlnumber"
cat >"$D/ca.cnf" <<CNF
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = $D/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $D/inter.pem
default_md = sha256
default_days = 5
default_crl_days = 7
policy = policy_any
copy_extensions = copy
unique_subject = no
[ policy_any ]
commonName = supplied
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/u1.key" 2>/dev/null
openssl req -new -key "$D/u1.key" -subj "/CN=user1" -out "$D/u1.csr"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/u2.key" 2>/dev/null
openssl req -new -key "$D/u2.key" -subj "/CN=user2" -out "$D/u2.csr"
check "openssl ca -keyfile pkcs11: issues user1" \
    openssl ca $PROV -batch -config "$D/ca.cnf" -keyfile "$(privuri inter)" -in "$D/u1.csr" -out "$D/u1.pem"
check "openssl ca issues user2" \
    openssl ca $PROV -batch -config "$D/ca.cnf" -keyfile "$(privuri inter)" -in "$D/u2.csr" -out "$D/u2.pem"
check "openssl ca -revoke user2" \
    openssl ca $PROV -batch -config "$D/ca.cnf" -keyfile "$(privuri inter)" -revoke "$D/u2.pem" -crl_reason keyCompromise
check "openssl ca -gencrl signed on the token" \
    openssl ca $PROV -batch -config "$D/ca.cnf" -keyfile "$(privuri inter)" -gencrl -out "$D/inter.crl"
check "openssl crl -verify accepts the CRL" \
    openssl crl -in "$D/inter.crl" -CAfile "$D/inter.pem" -noout -verify
openssl crl -in "$D/inter.crl" -noout -text >"$D/crl.txt"
assert_grep 'Key Compromise' "$D/crl.txt" "the CRL lists the reason"
cat "$D/inter.pem" "$D/root.pem" >"$D/chain.pem"
# verify -crl_check: user1 good, user2 revoked.
check "verify -crl_check accepts user1" \
    openssl verify -crl_check -CAfile "$D/chain.pem" -CRLfile "$D/inter.crl" "$D/u1.pem"
should_fail 2 'certificate revoked' "verify -crl_check rejects the revoked user2" \
    openssl verify -crl_check -CAfile "$D/chain.pem" -CRLfile "$D/inter.crl" "$D/u2.pem"

# CMS: signed with the client's token key, verified without the provider.
printf 'signed content\n' >"$D/msg.txt"
check "cms -sign with a token key" \
    openssl cms $PROV -sign -in "$D/msg.txt" -signer "$D/cli.pem" -inkey "$(privuri client)" \
    -certfile "$D/inter.pem" -nodetach -binary -outform PEM -out "$D/msg.cms"
check "cms -verify without the provider" \
    openssl cms -verify -binary -in "$D/msg.cms" -inform PEM -CAfile "$D/root.pem" -purpose any -out "$D/msg.out"
check "the CMS content is intact" cmp "$D/msg.txt" "$D/msg.out"
done_testing
