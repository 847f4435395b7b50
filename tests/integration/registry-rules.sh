#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The registry rules of issue 12 from the p11ca command: client IDs by
# profile, certificates identified by issuer and serial, what cert register
# accepts, lists that mean what they say (and refuse bad filters), bulk
# revocation only when confirmed, and search (patterns, --issuer, --sort,
# CSV, ca list).  Checked with openssl, sqlite3 and python3's json and csv.
# On SQLite, or on PostgreSQL with P11CA_TEST_REGISTRY=pg (registry-rules-pg.sh).
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/registry.sh"
plan 73

D=$TT/ca
W=$TT/work
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ca.key" 2>/dev/null
check "ca init with a key file" \
    reg_init --dir "$D" --subject "/CN=Rules Test CA" --key "$W/ca.key"

# csr NAME SUBJECT: a software key and its CSR.
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "$2" -out "$W/$1.csr" 2>/dev/null
}
# serial_of FILE: the serial as the registry stores it (lower case, no
# leading zeros), for SQL; shown_of FILE: as p11ca prints it (openssl's).
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
shown_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# field KEY ARGS...: one field of every certificate cert list finds, sorted.
field() {
    k=$1
    shift
    p11ca cert list --dir "$D" --json "$@" |
        python3 -c 'import json,sys; print(" ".join(sorted(str(c[sys.argv[1]]) for c in json.load(sys.stdin))))' "$k"
}
q_count() { regsql "$D" "select count(*) from certs where $1"; }
revoked_count() { regsql "$D" "select count(*) from certs where status = 'revoked' $1"; }

# --- Client IDs by profile -------------------------------------------------
csr www /CN=www.example.com
check "a server certificate" \
    p11ca issue --dir "$D" --profile server --san DNS:www.example.com --out "$W/www1.pem" "$W/www.csr"
check "its renewal: a second server certificate for the same CN" \
    p11ca issue --dir "$D" --profile server --san DNS:www.example.com --out "$W/www2.pem" "$W/www.csr"
assert_eq "$(field client_id --cn www.example.com)" "None None" \
    "server certificates take no client ID"
should_fail 2 'without a client ID \(client_id = none\): drop --client-id' \
    "--client-id under a server profile is refused" \
    p11ca issue --dir "$D" --profile server --client-id www --san DNS:www.example.com \
    --out "$W/www3.pem" "$W/www.csr"
csr alice /CN=alice/OU=people
check "a client certificate: its client ID is the CN" \
    p11ca issue --dir "$D" --profile client --out "$W/alice1.pem" "$W/alice.csr"
should_fail 2 'held by activated certificate .*--not-activated .*--client-id.*enroll --renew or --rekey' \
    "a second activated client certificate is refused, naming the ways out" \
    p11ca issue --dir "$D" --profile client --out "$W/alice2.pem" "$W/alice.csr"
check "... one of which works: --not-activated" \
    p11ca issue --dir "$D" --profile client --not-activated --out "$W/alice2.pem" "$W/alice.csr"
cat >>"$D/ca.cnf" <<'CNF'

[ profiles ]
device = profile_device

[ profile_device ]
description   = devices, named by their operator
key_usage     = digitalSignature
ext_key_usage = clientAuth
client_id     = required
CNF
csr dev /CN=sensor
should_fail 2 'requires a client ID \(client_id = required\): give --client-id' \
    "client_id = required: --client-id must be given" \
    p11ca issue --dir "$D" --profile device --out "$W/dev.pem" "$W/dev.csr"
check "client_id = required with --client-id" \
    p11ca issue --dir "$D" --profile device --client-id sensor-0042 --out "$W/dev.pem" "$W/dev.csr"
p11ca ca show --dir "$D" >"$TT/show"
assert_grep 'server .*client ID none; renewal: revoke' "$TT/show" "ca show: the rules of each profile"
cp -r "$D" "$TT/badcnf"
printf '\n[ profile_device ]\nclient_id = maybe\n' >>"$TT/badcnf/ca.cnf"
should_fail 2 'client_id = maybe: say cn, none or required' "a bad client_id in ca.cnf" \
    p11ca ca show --dir "$TT/badcnf"

# --- Issuer and serial ------------------------------------------------------
# vendor_ca NAME: an external CA;  vendor_cert CA NAME SERIAL DAYS [faketime]
vendor_ca() {
    openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "/CN=$1 CA" -days 365 \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -out "$W/$1.pem" 2>/dev/null
}
vendor_cert() {
    csr "$2" "/CN=$2"
    # shellcheck disable=SC2086 # $5 is a command prefix (faketime -f ...)
    ${5:-} openssl x509 -req -in "$W/$2.csr" -CA "$W/$1.pem" -CAkey "$W/$1.key" \
        -set_serial "$3" -days "$4" -out "$W/$2.pem" 2>/dev/null
}
vendor_ca vendor1
vendor_ca vendor2
vendor_cert vendor1 device-1 0x4e 90
vendor_cert vendor2 device-2 0x4e 90
check "register vendor 1's CA" p11ca cert register-ca --dir "$D" --name vendor1 "$W/vendor1.pem"
check "register vendor 2's CA" p11ca cert register-ca --dir "$D" --name vendor2 "$W/vendor2.pem"
check "register vendor 1's device certificate, serial 0x4e" \
    p11ca cert register --dir "$D" --issuer vendor1 "$W/device-1.pem"
check "register vendor 2's device certificate with the same serial" \
    p11ca cert register --dir "$D" "$W/device-2.pem"
assert_eq "$(field cn --serial 4e)" "device-1 device-2" "both are in the registry"
should_fail 2 'serial 4E is ambiguous: the CAs [0-9]+ and [0-9]+ each have' \
    "cert show of an ambiguous serial says so" p11ca cert show --dir "$D" 4e
p11ca cert show --dir "$D" --issuer vendor2 --json 4E >"$TT/show.json"
assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cn"])' "$TT/show.json")" \
    device-2 "cert show --issuer chooses"
should_fail 2 'ambiguous' "cert activate of an ambiguous serial is refused" \
    p11ca cert activate --dir "$D" 4e
check "cert activate --issuer vendor1" p11ca cert activate --dir "$D" --issuer vendor1 4e
v1=$(regsql "$D" "select id from cas where name = 'vendor1'")
assert_eq "$(regsql "$D" "select group_concat(cn || '=' || status) from certs where serial = '4e' and ca_id = $v1")" \
    device-1=activated "... and activates vendor 1's certificate only"
assert_eq "$(field cn --issuer vendor2)" device-2 "cert list --issuer NAME"
assert_eq "$(field cn --issuer "$v1")" device-1 "cert list --issuer ID"
should_fail 2 'no registered CA "nosuch"' "an unknown --issuer" \
    p11ca cert list --dir "$D" --issuer nosuch

# --- What cert register accepts ----------------------------------------------
should_fail 2 'is a CA certificate \(basicConstraints CA:TRUE\)' "a CA certificate is refused" \
    p11ca cert register --dir "$D" "$W/vendor2.pem"
vendor_cert vendor1 device-3 0x51 90
should_fail 2 'does not chain to CA [0-9]+ \(vendor2\)' \
    "a certificate that does not chain to the named CA is refused" \
    p11ca cert register --dir "$D" --issuer vendor2 "$W/device-3.pem"
# A CA of the same name with another key signs: the name matches, the
# signature does not.
mkdir -p "$W/forger"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/forger/vendor1.key" -subj "/CN=vendor1 CA" -days 365 \
    -addext basicConstraints=critical,CA:TRUE -out "$W/forger/vendor1.pem" 2>/dev/null
csr forged /CN=forged
openssl x509 -req -in "$W/forged.csr" -CA "$W/forger/vendor1.pem" \
    -CAkey "$W/forger/vendor1.key" -set_serial 0x52 -days 90 -out "$W/forged.pem" 2>/dev/null
should_fail 2 'does not chain to CA [0-9]+ \(vendor1\)' "a forged signature is refused" \
    p11ca cert register --dir "$D" --issuer vendor1 "$W/forged.pem"
vendor_cert vendor1 old-device 0x53 30 'faketime -f -60d'
should_fail 2 'expired on .*--allow-expired' "an expired certificate is refused" \
    p11ca cert register --dir "$D" "$W/old-device.pem"
check "... and registered for the record with --allow-expired" \
    p11ca cert register --dir "$D" --allow-expired "$W/old-device.pem"
should_fail 2 'has expired' "an expired certificate is never activated" \
    p11ca cert activate --dir "$D" 53
vendor_cert vendor1 soon-device 0x54 10
p11ca cert register --dir "$D" "$W/soon-device.pem" >"$TT/out" 2>"$TT/err"
assert_grep 'warning: .*soon-device.pem expires on .*, within 30 days' "$TT/err" \
    "a certificate that expires within 30 days is registered with a warning"
assert_eq "$(field status --cn soon-device)" registered-not-activated "... and it is registered"

# --- Lists mean what they say -----------------------------------------------
csr exp1 /CN=exp-1/OU=exp
csr exp2 /CN=exp-2/OU=exp
p11ca issue --dir "$D" --profile client --days 10 --out "$W/exp1.pem" "$W/exp1.csr" >/dev/null
p11ca issue --dir "$D" --profile client --days 10 --out "$W/exp2.pem" "$W/exp2.csr" >/dev/null
check "revoke exp-2" p11ca cert revoke --dir "$D" "$(serial_of "$W/exp2.pem")"
assert_eq "$(field cn --ou exp --expiring 30d)" exp-1 "--expiring leaves revoked certificates out"
assert_eq "$(field cn --ou exp --valid)" exp-1 "--valid leaves revoked certificates out"
assert_eq "$(field cn --ou exp --status revoked)" exp-2 "--status revoked lists them"
should_fail 1 '--expiring "30": give a duration with its unit' "--expiring without a unit" \
    p11ca cert list --dir "$D" --expiring 30
should_fail 1 'reaches past 9999-12-31' "--expiring 9223372036854775807s" \
    p11ca cert list --dir "$D" --expiring 9223372036854775807s
should_fail 1 'reaches past 9999-12-31' "--expiring 99999999999d" \
    p11ca cert list --dir "$D" --expiring 99999999999d
for l in -1 0 abc 99999999999999999999 5x; do
    should_fail 1 "--limit \"$l\": give a whole number from 1" "--limit $l" \
        p11ca cert list --dir "$D" --limit "$l"
done
should_fail 1 'bad date "2027-02-30"' "--expires-before 2027-02-30 (no such day)" \
    p11ca cert list --dir "$D" --expires-before 2027-02-30
should_fail 1 'bad date "2026-06-01T24:00:00Z"' "--issued-after with hour 24" \
    p11ca cert list --dir "$D" --issued-after 2026-06-01T24:00:00Z
check "revoke vendor 2's device certificate" \
    p11ca cert revoke --dir "$D" --issuer vendor2 4e
check "a revoked certificate of an external CA can be deleted" \
    p11ca cert delete --dir "$D" --issuer vendor2 4e
should_fail 2 'the CRL must keep listing it' "one of this CA is kept" \
    p11ca cert delete --dir "$D" "$(serial_of "$W/exp2.pem")"

# --- Bulk revocation ---------------------------------------------------------
for b in b1 b2 b3; do
    csr "$b" "/CN=$b/OU=bulk"
    p11ca issue --dir "$D" --profile client --out "$W/$b.pem" "$W/$b.csr" >/dev/null
done
should_fail 1 '3 certificate\(s\) match: nothing was revoked; add --yes' \
    "a filter without --yes (no terminal) revokes nothing" \
    p11ca cert revoke --dir "$D" --ou bulk --reason cessationOfOperation </dev/null
assert_eq "$(revoked_count "and ou = 'bulk'")" 0 "... nothing was revoked"
check "--dry-run" p11ca cert revoke --dir "$D" --ou bulk --dry-run
assert_grep "would revoke 3 certificate" "$TT/out" "--dry-run says how many"
assert_grep "$(shown_of "$W/b2.pem")" "$TT/out" "--dry-run lists them"
assert_eq "$(revoked_count "and ou = 'bulk'")" 0 "... and revokes nothing"
# At a terminal (tty_answer: script(1) gives the command one, and the
# answer is typed once the question is on it), the count is shown.
printf no >"$TT/no"
printf yes >"$TT/yes"
tty_answer "$TT/tty" 'Type yes to go on: ' "$TT/no" \
    "$top_builddir/src/p11ca cert revoke --dir $D --ou bulk"
rc=$?
if [ $rc -eq 1 ] && grep -q 'revoke 3 certificate(s) with reason unspecified? This is final' "$TT/tty" &&
    grep -q 'not confirmed: nothing was revoked' "$TT/tty"; then
    ok "at a terminal: the count is shown, another answer than yes revokes nothing"
else
    not_ok "at a terminal: the count is shown, another answer revokes nothing (exit $rc)"
    diag "$(cat "$TT/tty")"
fi
before=$(regsql "$D" "select max(seq) from audit")
tty_answer "$TT/tty" 'Type yes to go on: ' "$TT/yes" \
    "$top_builddir/src/p11ca cert revoke --dir $D --ou bulk --why 'team gone'"
assert_grep 'revoked 3 certificate' "$TT/tty" "at a terminal: yes revokes them"
p11ca audit --dir "$D" --since "$before" --json >"$TT/audit.json"
v=$(python3 - "$TT/audit.json" "$(serial_of "$W/b1.pem")" "$(serial_of "$W/b2.pem")" "$(serial_of "$W/b3.pem")" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))
want = sorted(sys.argv[2:])
each = [e for e in entries[:-1] if e["action"] == "revoke"
        and json.loads(e["details"]).get("via") == "revoke-bulk"]
d = json.loads(entries[-1]["details"])
print(len(entries), sorted(e["object"] for e in each) == want,
      entries[-1]["action"], d["count"],
      sorted(c["serial"] for c in d["certs"]) == want)
PY
)
assert_eq "$v" "4 True revoke-bulk 3 True" \
    "the bulk revocation: a revoke entry per certificate, then one entry naming every serial"
should_fail 1 '--yes and --dry-run go with filters' "--yes with one serial is a usage error" \
    p11ca cert revoke --dir "$D" --yes "$(serial_of "$W/alice1.pem")"

# --- Search -----------------------------------------------------------------
csr pct '/CN=50%_off'
csr abc /CN=50abc
csr q '/CN=Smith, "Jo"'
for n in pct abc q; do
    p11ca issue --dir "$D" --profile client --out "$W/$n.pem" "$W/$n.csr" >/dev/null
done
assert_eq "$(field cn --cn-like '50%')" "50%_off" "--cn-like: % is a literal character"
assert_eq "$(field cn --cn-like '50_')" "" "--cn-like: _ is a literal character"
assert_eq "$(field cn --cn-like '50*')" "50%_off 50abc" "--cn-like with a * wildcard"
assert_eq "$(field cn --cn-like 'EXP-?')" "exp-1 exp-2" "--cn-like: ? and ASCII case"
p11ca cert list --dir "$D" --cn-like 'b?' --sort -cn --json >"$TT/s2.json"
assert_eq "$(python3 -c 'import json,sys; print(" ".join(c["cn"] for c in json.load(open(sys.argv[1]))))' "$TT/s2.json")" \
    "b3 b2 b1" "--sort -cn"
should_fail 2 'a pattern longer than 1024 bytes' "--cn-like of 2000 bytes is refused" \
    p11ca cert list --dir "$D" --cn-like "$(head -c 2000 /dev/zero | tr '\0' '%')"
should_fail 1 '--sort "subject": one of issued, serial' "--sort takes listed fields only" \
    p11ca cert list --dir "$D" --sort subject
p11ca cert list --dir "$D" --format csv >"$TT/list.csv" 2>/dev/null
v=$(python3 - "$TT/list.csv" <<'PY'
import csv, sys
raw = open(sys.argv[1], newline="").read()
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
smith = [r for r in rows if r["cn"] == 'Smith, "Jo"']
print(raw.count("\r\n") == len(rows) + 1, len(smith),
      smith[0]["subject"] if smith else "-")
PY
)
assert_eq "$v" 'True 1 CN=Smith\, \"Jo\"' "--format csv: RFC 4180 quoting, CRLF line ends"
should_fail 1 '--format "xml": text, json or csv' "--format takes text, json or csv" \
    p11ca cert list --dir "$D" --format xml
p11ca ca list --dir "$D" --json >"$TT/cas.json"
assert_eq "$(python3 -c 'import json,sys; print(" ".join(c["name"] + ":" + c["kind"] for c in json.load(open(sys.argv[1]))))' "$TT/cas.json")" \
    "Rules Test CA:this CA vendor1:external vendor2:external" "ca list: this CA and the external ones"
check "export-index" p11ca export-index --dir "$D" --certs "$W/idx" "$W/index.txt"
assert_eq "$(wc -l <"$W/index.txt") $(grep -c '	4E	' "$W/index.txt")" \
    "$(q_count "origin = 'issued'") 0" "export-index writes this CA's certificates only"
check "audit verify: intact" p11ca audit verify --dir "$D"
done_testing
