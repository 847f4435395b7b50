#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CA refuses token keys that were ever outside the token or could leave
# it (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE), and keys that are not
# the one recorded at init, with a clear reason (exit 3); nothing is
# recorded and no CA is created.  A ca init that fails after generating its
# key leaves no key behind, nor the directory it made.
set -u
. "$top_srcdir/tests/lib/prov.sh"
command -v sqlite3 >/dev/null || plan_skip "sqlite3 is not installed"
plan 17
D=$TT/kc
mkdir -p "$D"
# Weak keys are made by a test helper that reads the PIN from its file
# (pkcs11-tool and softhsm2-util would need it on their command line).
weak() { run_prog weak-key "$SOFTHSM_MODULE" "$TOKEN" "$PINFILE" "$@"; }
nrows() { sqlite3 "$1/registry.db" 'select count(*) from certs'; }
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$TT/sw.key" 2>/dev/null
openssl req -new -key "$TT/sw.key" -subj /CN=kc.test -out "$D/kc.csr"

# Generated extractable: sensitive, but CKA_NEVER_EXTRACTABLE is false.
weak extractable extr 0e01
should_fail 3 'not CKA_NEVER_EXTRACTABLE' "ca init refuses an extractable token key" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/extr" --subject /CN=extr \
    --key-uri "$TOKURI;object=extr;type=private"
if [ -e "$D/extr/ca.cnf" ]; then
    not_ok "no CA was made with it"
else
    ok "no CA was made with it"
fi

# Imported from a key file: the key was outside: CKA_ALWAYS_SENSITIVE false.
# The CA is made with the key file, then pointed at the imported copy: the
# public key hash matches, only the token attributes tell.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$TT/imp.key" 2>/dev/null
weak import imported 0e02 "$TT/imp.key"
should_fail 3 'not CKA_ALWAYS_SENSITIVE' "ca init refuses an imported token key" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/imp0" --subject /CN=imp \
    --key-uri "$TOKURI;object=imported;type=private"
check "a CA with the key file" \
    p11ca ca init --dir "$D/imp" --subject /CN=imp --key "$TT/imp.key"
check "it issues" \
    p11ca issue --dir "$D/imp" --profile client --out "$D/ok.pem" "$D/kc.csr"
sed -i "s|^key *=.*|key = $TOKURI;object=imported;type=private|" "$D/imp/ca.cnf"
before=$(nrows "$D/imp")
should_fail 3 'not CKA_ALWAYS_SENSITIVE.*refusing to sign' \
    "issue refuses the imported token copy of the same key" \
    p11ca --pin-source "$PINFILE" issue --dir "$D/imp" --profile server \
    --san DNS:kc.test --out "$D/no.pem" "$D/kc.csr"
should_fail 3 'not CKA_ALWAYS_SENSITIVE' "crl refuses it too" \
    p11ca --pin-source "$PINFILE" crl --dir "$D/imp" --out "$D/no.crl"
assert_eq "$(nrows "$D/imp")" "$before" "nothing recorded"
if [ -e "$D/no.pem" ] || [ -e "$D/no.crl" ]; then
    not_ok "nothing written"
else
    ok "nothing written"
fi

# A good token key, but not the CA's: the public-key hash tells.
check "a CA with a token key" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/tok" --subject /CN=tok \
    --key-uri "$TOKURI;object=cakey" --generate ec:P-256
keygen other ec:P-256
sed -i "s|^key *=.*|key = $TOKURI;object=other;type=private|" "$D/tok/ca.cnf"
should_fail 3 'not the key this CA was created with' \
    "another token key under the same CA is refused" \
    p11ca issue --dir "$D/tok" --profile server --san DNS:kc.test "$D/kc.csr"
sed -i "s|^key *=.*|key = $TOKURI;object=cakey;type=private|" "$D/tok/ca.cnf"
check "with its own key it signs again" \
    p11ca issue --dir "$D/tok" --profile server --san DNS:kc.test "$D/kc.csr"

# ca init --generate that fails after the key was made removes the key.
should_fail 4 'key "gone" on token .* generated for the CA was removed' \
    "a failed ca init says it removed the token key it generated" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/gone" --subject /CN=gone \
    --key-uri "$TOKURI;object=gone" --generate ec:P-256 \
    --registry "$TT/no/such/dir/registry.db"
p11ca --pin-source "$PINFILE" key list "$TOKURI;object=gone" >"$D/gone.txt" 2>&1
assert_grep 'no key found' "$D/gone.txt" "no key labelled gone is left on the token"
if [ -e "$D/gone" ]; then
    not_ok "the directory the failed ca init made is removed"
else
    ok "the directory the failed ca init made is removed"
fi
should_fail 4 "key file $TT/gone.key generated for the CA was removed" \
    "a failed ca init removes the key file it generated" \
    p11ca ca init --dir "$D/gonef" --subject /CN=gone --key "$TT/gone.key" \
    --generate ec:P-256 --registry "$TT/no/such/dir/registry.db"
check "the same ca init with a usable registry then succeeds" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/gone" --subject /CN=gone \
    --key-uri "$TOKURI;object=gone" --generate ec:P-256
done_testing
