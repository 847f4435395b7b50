#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CA commands under valgrind memcheck: no errors and no leaks on the
# success and refusal paths (token key through the provider, and a key file).
set -u
. "$top_srcdir/tests/lib/prov.sh"
[ -n "${VALGRIND:-}" ] || plan_skip "valgrind not available (or sanitizer build)"
plan 13
P11CA_VALGRIND=1
D=$TT/vg
mkdir -p "$D"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$TT/sw.key" 2>/dev/null
for n in a b c d; do
    openssl req -new -key "$TT/sw.key" -subj "/CN=$n.vg.test" -out "$D/$n.csr"
done
mkdir -p "$D/batch" "$D/out"
cp "$D/c.csr" "$D/d.csr" "$D/batch/"

check "valgrind: ca init (token key generated)" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/root" --subject /CN=vg \
    --key-uri "$TOKURI;object=vgroot" --generate ec:P-256
should_fail 4 'generated for the CA was removed' \
    "valgrind: a failed ca init removes the token key it generated" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/gone" --subject /CN=vg \
    --key-uri "$TOKURI;object=vggone" --generate ec:P-256 \
    --registry "$TT/no/such/dir/registry.db"
check "valgrind: ca init --intermediate (key file)" \
    p11ca ca init --dir "$D/inter" --subject /CN=vgi --intermediate \
    --key "$TT/inter.key" --generate ec:P-256
check "valgrind: issue --chain --p7b" \
    p11ca issue --dir "$D/root" --profile server --san DNS:a.vg.test \
    --chain --out "$D/a.pem" --p7b "$D/a.p7b" "$D/a.csr"
check "valgrind: issue --profile intermediate" \
    p11ca issue --dir "$D/root" --profile intermediate --out "$D/inter.pem" \
    "$D/inter/ca.csr"
check "valgrind: ca import-chain" \
    p11ca ca import-chain --dir "$D/inter" "$D/inter.pem" "$D/root/ca.pem"
check "valgrind: issue with a key file" \
    p11ca issue --dir "$D/inter" --profile client --out "$D/b.pem" "$D/b.csr"
check "valgrind: issue --batch" \
    p11ca issue --dir "$D/root" --profile client --batch "$D/batch" \
    --outdir "$D/out"
check "valgrind: cert revoke" \
    p11ca cert revoke --dir "$D/root" --reason keyCompromise \
    "$(openssl x509 -in "$D/a.pem" -noout -serial | cut -d= -f2)"
check "valgrind: crl" p11ca crl --dir "$D/root" --out "$D/root.crl"
check "valgrind: ca show --json" p11ca ca show --dir "$D/root" --json
should_fail 2 'requires a subjectAltName' "valgrind: a policy refusal" \
    p11ca issue --dir "$D/root" --profile server "$D/a.csr"
sed -i "s|^key_sha256 *=.*|key_sha256 = $(printf '%064d' 1)|" "$D/root/ca.cnf"
should_fail 3 'not the key this CA was created with' "valgrind: the key check" \
    p11ca issue --dir "$D/root" --profile client "$D/a.csr"
done_testing
