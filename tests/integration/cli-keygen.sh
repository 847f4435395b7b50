#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Key generation on the token for every type, checked with pkcs11-tool:
# private keys are sensitive and never extractable, public keys pair up.
set -u
. "$top_srcdir/tests/lib/token.sh"

TYPES="rsa:2048 rsa:3072 rsa:4096 ec:P-256 ec:P-384 ec:P-521 ed25519"
plan 26

for t in $TYPES; do
    label=k-$(echo "$t" | tr ':' '-')
    check "key gen $t" p11ca --pin-source "$PINFILE" key gen \
        --uri "$TOKURI;object=$label" --type "$t"
done

# GnuTLS's p11tool, not our code, reads the attributes back (the PIN goes
# through its environment variable, never through argv).
GNUTLS_PIN=$(cat "$PINFILE") p11tool --login --list-privkeys "$TOKURI" \
    >"$TT/privs" 2>&1
nprivate=$(grep -c 'Type: Private key' "$TT/privs")
assert_eq "$nprivate" 7 "p11tool sees 7 private keys"
nsens=$(grep 'Flags:' "$TT/privs" | grep 'CKA_PRIVATE' | grep 'CKA_SENSITIVE' \
    | grep 'CKA_NEVER_EXTRACTABLE' | grep -vc 'CKA_EXTRACTABLE')
assert_eq "$nsens" 7 "p11tool: every private key is private, sensitive, never extractable"
# pkcs11-tool without a login sees the public halves.
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" -O \
    >"$TT/objects" 2>&1
npub=$(grep -c '^Public Key Object' "$TT/objects")
assert_eq "$npub" 7 "pkcs11-tool sees 7 public keys"
assert_grep 'EC_POINT 256 bits|EC_POINT.*256' "$TT/objects" "P-256 public key has its point"

# Key list as JSON parses and has the right shape.
p11ca --pin-source "$PINFILE" key list --json "$TOKURI" >"$TT/list.json"
check "key list --json parses with python3 -m json.tool" \
    python3 -m json.tool "$TT/list.json"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TT/list.json")
assert_eq "$n" 14 "key list shows 7 private and 7 public keys"
v=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(all(k["attributes"]["sensitive"] and not k["attributes"]["extractable"] for k in d if k["class"]=="private"))' "$TT/list.json")
assert_eq "$v" True "key list reports every private key sensitive and not extractable"
v=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(sorted(set((k["type"], k["bits"], k["curve"]) for k in d)))' "$TT/list.json")
assert_eq "$v" "[('EC', 256, 'P-256'), ('EC', 384, 'P-384'), ('EC', 521, 'P-521'), ('EdDSA', 256, 'Ed25519'), ('RSA', 2048, None), ('RSA', 3072, None), ('RSA', 4096, None)]" \
    "types, sizes and curves are reported"

# Public and private halves share CKA_ID and label.
v=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
pr=sorted((k["id"],k["label"]) for k in d if k["class"]=="private")
pu=sorted((k["id"],k["label"]) for k in d if k["class"]=="public")
print(pr==pu and all(len(i)==40 for i,_ in pr))' "$TT/list.json")
assert_eq "$v" True "each pair shares a random 20-byte CKA_ID and its label"

# Without a login only public keys are visible.
p11ca key list --no-login --json "$TOKURI" >"$TT/pub.json"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TT/pub.json")
assert_eq "$n" 7 "key list --no-login shows the public keys"

# Explicit id, public key export matches what pkcs11-tool reads.
check "key gen with --id" p11ca --pin-source "$PINFILE" key gen \
    --uri "$TOKURI;object=withid" --type ec:P-256 --id c0ffee
check "key pubout by id" p11ca key pubout --out "$TT/withid.pem" "$TOKURI;id=%c0%ff%ee"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --read-object \
    --type pubkey --id c0ffee -o "$TT/withid.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$TT/withid.der" -outform PEM -out "$TT/withid.ref.pem" 2>/dev/null
check "pubout equals pkcs11-tool's public key" cmp "$TT/withid.pem" "$TT/withid.ref.pem"

# Refusals: duplicates and bad types change nothing.
should_fail 2 'exists' "a second key with the same label is refused" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=withid" --type ec:P-256
should_fail 2 'exists' "a second key with the same id is refused" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=other" --type ec:P-256 --id c0ffee
should_fail 2 'unknown key type|not supported' "rsa:1024 is refused" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=weak" --type rsa:1024
should_fail 2 'unknown key type' "an unknown type is refused" \
    p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=dsa" --type dsa:2048
should_fail 1 'required' "key gen without --type is a usage error" \
    p11ca key gen --uri "$TOKURI"
n=$(p11ca --pin-source "$PINFILE" key list --json "$TOKURI" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$n" 16 "refused commands created nothing"
done_testing
