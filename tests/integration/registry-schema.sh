#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A registry made by p11ca before schema 2 (certificates keyed on the
# serial alone): a command that only reads refuses it as it is, says why
# and writes nothing; the first command that writes migrates it, through
# 002 (issuer and serial) and 003 (signed audit heads), and it keeps
# working: every certificate, its status and history, the audit chain and
# its replay (whose old entries name a serial only), CRL numbers, the
# external CA; then the same serial of another CA can be registered.
#
# tests/data/registry-v1 was made by p11ca at 2bdc2cb (schema 1): ca init
# with a key file (ca.key), alice and bob (client), carol (not-activated),
# www.example.com (server, with the client ID that schema gave it), bob
# revoked (keyCompromise), vendor1 registered as a CA and its device-1
# (serial 0x4e) registered, CRL number 1.  registry.sql is `sqlite3
# registry.db .dump`; ca.cnf.in is ca.cnf with its key path left open.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 25

V1=$top_srcdir/tests/data/registry-v1
D=$TT/ca
W=$TT/work
mkdir -p "$D" "$W"
cp "$V1/ca.pem" "$V1/ca.key" "$W/"
chmod 600 "$W/ca.key"
sed "s|@KEY@|$W/ca.key|" "$V1/ca.cnf.in" >"$D/ca.cnf"
cp "$V1/ca.pem" "$D/ca.pem"
sqlite3 "$D/registry.db" <"$V1/registry.sql"
q() { sqlite3 "$D/registry.db" "$1"; }
# The clock of the commands that look at validity: a day after the
# fixture was made, so that its certificates stay unexpired.
at_fixture() {
    LD_PRELOAD="${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$FT" \
        FAKETIME="@2026-12-08 00:00:00" "$@"
}
FT=$(find /usr/lib -path '*/faketime/libfaketime.so.1' 2>/dev/null | head -n 1)
BOB=67e758af368f89cf8bbf9978da9ce962a308f470

assert_eq "$(q 'select max(version) from schema_version')" 1 "the fixture is a schema 1 registry"
before=$(q "select group_concat(serial || ':' || status || ':' || coalesce(client_id, '-'), ' ') from (select * from certs order by rowid)")
sum_before=$(cksum <"$D/registry.db")
should_fail 4 'schema version 1, older than this p11ca.s \(6\).*p11ca audit sign' \
    "cert list (read-only) refuses the old schema and says which command migrates it" \
    p11ca cert list --dir "$D"
assert_eq "$(q 'select max(version) from schema_version'):$(cksum <"$D/registry.db")" \
    "1:$sum_before" "... and wrote nothing: still schema 1, the same bytes"
# Another vendor, registered before anything else: the first write.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/v2.key" -subj "/CN=Vendor Two CA" -days 365 \
    -addext basicConstraints=critical,CA:TRUE -out "$W/v2.pem" 2>/dev/null
check "register another vendor's CA: a command that writes migrates the registry" \
    p11ca cert register-ca --dir "$D" --name vendor2 "$W/v2.pem"
check "cert list reads it now" p11ca cert list --dir "$D"
assert_eq "$(q 'select group_concat(version || ":" || name, " ") from schema_version')" \
    "1:001_init 2:002_issuer_serial 3:003_audit_heads 4:004_ca_autoreg 5:005_enroll_codes 6:006_notify_signups" \
    "the registry went through 002, 003, 004, 005 and 006"
after=$(q "select group_concat(serial || ':' || status || ':' || coalesce(client_id, '-'), ' ') from (select * from certs order by id)")
assert_eq "$after" "$before" "every certificate kept its status and client ID, in the same order"
assert_eq "$(q 'PRAGMA foreign_key_check')$(q 'PRAGMA integrity_check')" ok \
    "foreign keys and the database itself are consistent"
should_fail 2 'no signed audit head of this CA.*p11ca audit sign' \
    "audit verify: no head protects the old trail yet" p11ca audit verify --dir "$D"
check "audit sign: the CA key signs the old trail's head" p11ca audit sign --dir "$D"
check "audit verify: the chain made by the old version is intact" p11ca audit verify --dir "$D"
assert_grep 'intact: 10 entries' "$TT/out" "... all 10 entries (vendor2's registration the last)"
# Bob's revocation (entry 6) names no CA: it is his certificate's, the
# only one with that serial when it was written.
assert_grep 'certificates: 5, each with the status its audited history leads to' \
    "$TT/out" "... and the replay of its 5 certificates, bob's revocation included"
p11ca cert show --dir "$D" --json "$BOB" >"$TT/bob.json"
v=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], d["reason"], d["ca_id"], [h["to"] for h in d["history"]])' "$TT/bob.json")
assert_eq "$v" "revoked keyCompromise 1 ['activated', 'revoked']" "bob: status, reason, issuer and history"
p11ca ca list --dir "$D" --json >"$TT/cas.json"
assert_eq "$(python3 -c 'import json,sys; print(" ".join(c["name"] + ":" + c["kind"] for c in json.load(open(sys.argv[1]))))' "$TT/cas.json")" \
    "Version 1 CA:this CA vendor1:external vendor2:external" "the CA registered with register-ca became external"
assert_eq "$(q "select group_concat(auto_register || ':' || auto_status, ' ') from cas")" \
    "0:registered-not-activated 0:registered-not-activated 0:registered-not-activated" \
    "004: every CA has auto-registration off, with its default status"
check "a CRL from the migrated registry" at_fixture p11ca crl --dir "$D" --out "$W/ca.crl"
openssl crl -in "$W/ca.crl" -noout -text >"$TT/crl.txt"
assert_grep 'X509v3 CRL Number: *$' "$TT/crl.txt" "the CRL has a number"
assert_eq "$(grep -A1 'X509v3 CRL Number' "$TT/crl.txt" | tail -n 1 | tr -d ' ')" 2 \
    "CRL numbers continue (2 after 1)"
assert_grep "$(echo "$BOB" | tr 'a-f' 'A-F')" "$TT/crl.txt" "bob is on it"

# The same serial from another vendor: refused by schema 1, taken now.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/d2.key" -subj /CN=device-2 -out "$W/d2.csr" 2>/dev/null
openssl x509 -req -in "$W/d2.csr" -CA "$W/v2.pem" -CAkey "$W/v2.key" \
    -set_serial 0x4e -days 90 -out "$W/d2.pem" 2>/dev/null
check "register its device with serial 0x4e, which vendor1's device has too" \
    p11ca cert register --dir "$D" "$W/d2.pem"
should_fail 2 'ambiguous' "serial 4e is now ambiguous" p11ca cert show --dir "$D" 4e
# Issuing and renewing a server certificate work on the migrated registry.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/www.key" -subj /CN=www.example.com -out "$W/www.csr" 2>/dev/null
check "a new server certificate for www.example.com (the old one holds that client ID)" \
    p11ca issue --dir "$D" --profile server --san DNS:www.example.com --out "$W/www.pem" "$W/www.csr"
check "audit verify after the new entries" p11ca audit verify --dir "$D"
assert_grep 'certificates: 7, each' "$TT/out" "... 7 certificates, two with serial 4e"
done_testing
