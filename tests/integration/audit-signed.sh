#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The signed head of the audit trail: signed by the CA key (on the token,
# through the provider) at init, with every CRL, after audit_sign_every
# entries or audit_sign_minutes (faketime) and by `audit sign`; exported
# with `audit head` and verified by plain openssl (asn1parse + pkeyutl, an
# EC and an Ed25519 CA); `audit verify` finds a deleted tail, a trail
# rewritten with recomputed hashes, a forged or edited head, deleted heads,
# and certificate statuses written straight into the database.
set -u
. "$top_srcdir/tests/lib/prov.sh"
command -v sqlite3 >/dev/null || plan_skip "sqlite3 is not installed"
command -v python3 >/dev/null || plan_skip "python3 is not installed"
plan 51

D=$TT/ca
W=$TT/w
mkdir -p "$W"
heads() { sqlite3 "$1/registry.db" 'select count(*) from audit_heads'; }
last_entry() { sqlite3 "$1/registry.db" 'select max(seq) from audit'; }
set_cnf() { sed -i "s|^$2 *=.*|$2 = $3|" "$1/ca.cnf"; }
# serial_of FILE: the serial as the registry stores it (lower case, no
# leading zeros), for SQL; shown_of FILE: as p11ca prints it (openssl's).
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
shown_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# issue DIR NAME: a client certificate for CN=NAME.
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$2.key" -subj "/CN=$2" -out "$W/$2.csr" 2>/dev/null
    p11ca issue --dir "$1" --profile client --out "$W/$2.pem" "$W/$2.csr" >/dev/null
}

check "ca init with its key generated on the token" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D" \
    --subject "/CN=Audit Test CA/O=p11ca tests" \
    --key-uri "$TOKURI;object=auditca" --generate ec:P-256
assert_eq "$(heads "$D")" 1 "ca init signs the first head"
check "audit verify after init" p11ca audit verify --dir "$D"
assert_grep '^signed head: entry 1, .*; 0 entries after the last signed head' \
    "$TT/out" "... the head covers entry 1"

for u in u1 u2 u3; do issue "$D" "$u"; done
assert_eq "$(heads "$D")" 1 "three issuances stay below audit_sign_every (100): no new head"
check "audit verify with entries after the head" p11ca audit verify --dir "$D"
assert_grep '3 entries after the last signed head' "$TT/out" \
    "... they are reported as entries after the last signed head"
assert_grep '^certificates: 3, each with the status its audited history leads to' \
    "$TT/out" "... and the three certificates match their history"

check "crl" p11ca crl --dir "$D" --out "$W/crl.pem"
assert_eq "$(heads "$D")" 2 "every CRL signs a head"
check "audit verify after the CRL" p11ca audit verify --dir "$D"
assert_grep '^signed head: entry 5, .*; 0 entries after' "$TT/out" \
    "... over the CRL's own entry"

# --- A witness verifies the exported head with plain openssl --------------
check "audit head --out" p11ca audit head --dir "$D" --out "$W/head.der"
assert_grep '^audit head: entry 5 \(hash [0-9a-f]{64}\)' "$TT/out" "... says what it covers"
# witness HEAD PUBKEY [-digest ALG]: the commands of the operator guide.
witness() {
    h=$1 pub=$2
    shift 2
    openssl asn1parse -inform DER -in "$h" >"$W/head.txt" || return 1
    tbs=$(awk -F: '/d=1/ {print $1 + 0; exit}' "$W/head.txt")
    sig=$(awk -F: '/d=1 .*BIT STRING/ {print $1 + 0}' "$W/head.txt")
    openssl asn1parse -inform DER -in "$h" -strparse "$tbs" -noout -out "$W/head.tbs" &&
        openssl asn1parse -inform DER -in "$h" -strparse "$sig" -noout -out "$W/head.sig" &&
        openssl pkeyutl -verify -pubin -inkey "$pub" -rawin "$@" \
            -in "$W/head.tbs" -sigfile "$W/head.sig"
}
openssl x509 -in "$D/ca.pem" -noout -pubkey >"$W/ca-pub.pem"
check "openssl pkeyutl verifies the head with the CA certificate's key" \
    witness "$W/head.der" "$W/ca-pub.pem" -digest sha256
assert_grep 'Signature Verified Successfully' "$TT/out" "... Signature Verified Successfully"
openssl asn1parse -inform DER -in "$W/head.tbs" >"$W/tbs.txt"
assert_grep 'UTF8STRING +:p11ca audit head' "$W/tbs.txt" "the signed part carries its label"
h5=$(sqlite3 "$D/registry.db" 'select upper(hash) from audit where seq = 5')
assert_grep "INTEGER +:05\$" "$W/tbs.txt" "... the entry number"
assert_grep "OCTET STRING +\[HEX DUMP\]:$h5" "$W/tbs.txt" "... that entry's hash"
cah=$(openssl x509 -in "$D/ca.pem" -outform DER | openssl dgst -sha256 -r | cut -c1-64 | tr 'a-f' 'A-F')
assert_grep "OCTET STRING +\[HEX DUMP\]:$cah" "$W/tbs.txt" "... the SHA-256 of the CA certificate"
assert_grep 'UTF8STRING +:Audit Test CA' "$W/tbs.txt" "... the CA's subject"
# One bit of the entry's hash flipped.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[30] ^= 1; open(sys.argv[1], "wb").write(b)' "$W/head.tbs"
if openssl pkeyutl -verify -pubin -inkey "$W/ca-pub.pem" -rawin -digest sha256 \
    -in "$W/head.tbs" -sigfile "$W/head.sig" >/dev/null 2>&1; then
    not_ok "openssl refuses the head with one byte changed"
else
    ok "openssl refuses the head with one byte changed"
fi

# --- When heads are signed ----------------------------------------------------
set_cnf "$D" audit_sign_every 2
issue "$D" u4
assert_eq "$(heads "$D")" 2 "audit_sign_every = 2: one entry later, no head"
issue "$D" u5
assert_eq "$(heads "$D")" 3 "... two entries later, a head at the end of issue"
check "audit sign when the newest entry is signed" p11ca audit sign --dir "$D"
assert_grep 'is signed already' "$TT/out" "... says so and signs nothing"
S2=$(serial_of "$W/u2.pem")
S3=$(serial_of "$W/u3.pem")
check "revoke u2 (no key, no head)" p11ca cert revoke --dir "$D" --reason keyCompromise "$S2"
check "audit sign" p11ca audit sign --dir "$D"
assert_grep "^signed the audit trail's head at entry 8" "$TT/out" "... signs the revocation's entry"
check "audit verify" p11ca audit verify --dir "$D" --json
assert_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["entries"], d["heads"], d["head"]["entry"], d["after_head"], d["certificates"])' "$TT/out")" \
    "8 4 8 0 5" "audit verify --json: entries, heads, newest head, after it, certificates"

# --- Tampering: each on a copy of the CA -----------------------------------
T=$TT/t
tamper() {
    rm -rf "$T"
    cp -r "$D" "$T"
    sqlite3 "$T/registry.db" "$1"
}
N=$(last_entry "$D")
tamper "DELETE FROM audit WHERE seq >= $((N - 3))"
should_fail 2 "the audit trail ends at entry $((N - 4)), but the CA signed its head at entry $N: entries $((N - 3)) to $N were deleted" \
    "a deleted tail (DELETE FROM audit WHERE seq >= N-3) is found" p11ca audit verify --dir "$T"

# An attacker with the database rewrites entry 3 and recomputes the chain
# from there (audit.c's encoding, in Python): the chain holds, the heads
# signed over it do not.
rehash_from() {
    python3 - "$1" "$2" <<'PY'
import hashlib, sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
start = int(sys.argv[2])
def i(v): return b"I" + struct.pack(">q", v)
def s(v):
    if v is None:
        return b"N"
    b = v.encode()
    return b"S" + struct.pack(">Q", len(b)) + b
prev = None
rows = db.execute("select seq, at, actor, action, object, details from audit order by seq").fetchall()
for seq, at, actor, action, obj, det in rows:
    if seq < start:
        prev = db.execute("select hash from audit where seq = ?", (seq,)).fetchone()[0]
        continue
    h = hashlib.sha256(b"p11ca-audit-v1\0" + i(seq) + i(at) + s(actor) + s(action)
                       + s(obj) + s(det) + s(prev)).hexdigest()
    db.execute("update audit set prev_hash = ?, hash = ? where seq = ?", (prev, h, seq))
    prev = h
db.commit()
PY
}
tamper "UPDATE audit SET details = replace(details, '\"u2\"', '\"mallory\"') WHERE seq = 3"
should_fail 2 'audit entry 3 was modified' "an edited entry breaks the chain" \
    p11ca audit verify --dir "$T"
rehash_from "$T/registry.db" 3
should_fail 2 'audit entry 5 is not the one the CA signed \(head [0-9]+\): the trail up to it was rewritten' \
    "a trail rewritten with recomputed hashes does not match the signed heads" \
    p11ca audit verify --dir "$T"

tamper "UPDATE certs SET status = 'activated', revoked_at = NULL, reason = NULL WHERE serial = '$S2'"
should_fail 2 "certificate $(shown_of "$W/u2.pem") of CA [0-9]+ is activated in the registry, but its audited history leads to revoked \(audit entry 8\)" \
    "an un-revoke written into the certs table is found" p11ca audit verify --dir "$T"
tamper "UPDATE certs SET status = 'revoked', revoked_at = 1, reason = 1 WHERE serial = '$S3'"
should_fail 2 "certificate $(shown_of "$W/u3.pem") of CA [0-9]+ is revoked in the registry, but its audited history leads to activated" \
    "... and so is a revocation written there" p11ca audit verify --dir "$T"
tamper "UPDATE audit_heads SET signed = substr(signed, 1, length(signed) - 1) || CASE WHEN substr(signed, -1) = X'00' THEN X'01' ELSE X'00' END WHERE id = (SELECT max(id) FROM audit_heads)"
should_fail 2 'signed audit head [0-9]+ \(entry 8\) does not verify with the CA certificate: forged or damaged' \
    "a head with a changed signature is refused" p11ca audit verify --dir "$T"
tamper "UPDATE audit_heads SET seq = 2 WHERE id = (SELECT max(id) FROM audit_heads)"
should_fail 2 'signed audit head [0-9]+ was edited: its row says entry 2, it signs entry 8' \
    "a head row that says another entry is refused" p11ca audit verify --dir "$T"
tamper "DELETE FROM audit_heads"
should_fail 2 'no signed audit head of this CA' "deleted heads are found" \
    p11ca audit verify --dir "$T"
should_fail 2 'has signed no audit head yet' "... and audit head says there is none" \
    p11ca audit head --dir "$T" --out "$W/none.der"
check "the untouched CA still verifies" p11ca audit verify --dir "$D"

# --- audit_sign_minutes, with the clock moved by faketime -------------------
FT=$(find /usr/lib -path '*/faketime/libfaketime.so.1' 2>/dev/null | head -n 1)
F=$TT/fileca
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/f.key" 2>/dev/null
p11ca ca init --dir "$F" --subject /CN=Minutes --key "$W/f.key" >/dev/null
set_cnf "$F" audit_sign_every 0
issue "$F" m1
assert_eq "$(heads "$F")" 1 "audit_sign_every = 0, within audit_sign_minutes (60): no head"
if [ -n "$FT" ]; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/m2.key" -subj /CN=m2 -out "$W/m2.csr" 2>/dev/null
    LD_PRELOAD="${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$FT" FAKETIME="+2h" \
        "$top_builddir/src/p11ca" issue --dir "$F" --profile client \
        --out "$W/m2.pem" "$W/m2.csr" >/dev/null 2>&1
    assert_eq "$(heads "$F")" 2 "two hours later (faketime), issue signs a head"
else
    skip "faketime is not installed"
fi

# --- An Ed25519 CA: the witness verifies without a digest --------------------
E=$TT/edca
openssl genpkey -algorithm ED25519 -out "$W/e.key" 2>/dev/null
check "ca init with an Ed25519 key file" \
    p11ca ca init --dir "$E" --subject /CN=Ed25519 --key "$W/e.key"
check "audit head (Ed25519)" p11ca audit head --dir "$E" --out "$W/ehead.der"
openssl x509 -in "$E/ca.pem" -noout -pubkey >"$W/e-pub.pem"
check "openssl pkeyutl verifies the Ed25519 head" witness "$W/ehead.der" "$W/e-pub.pem"

# --- An intermediate: no certificate, then no head until something signs --
I=$TT/inter
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/i.key" 2>/dev/null
p11ca ca init --dir "$I" --intermediate --subject /CN=Inter --key "$W/i.key" >/dev/null
check "audit verify of an intermediate without its certificate" p11ca audit verify --dir "$I"
assert_grep 'none \(the CA has no certificate yet\)' "$TT/out" "... says there is no head yet"
p11ca issue --dir "$D" --profile intermediate --out "$W/i.pem" "$I/ca.csr" >/dev/null
p11ca ca import-chain --dir "$I" "$W/i.pem" "$D/ca.pem" >/dev/null
should_fail 2 'no signed audit head of this CA.*p11ca audit sign' \
    "installed, before anything signed: verify asks for a head" p11ca audit verify --dir "$I"
check "audit sign" p11ca audit sign --dir "$I"
check "then it verifies" p11ca audit verify --dir "$I"
done_testing
