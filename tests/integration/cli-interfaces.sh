#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The command as an operator (or a script) uses it (issue #12, items 11-14,
# 16, 17): JSON errors and ISO 8601 times with --json; idempotent status
# changes; serials printed as openssl prints them and accepted in any
# common form, subjects in openssl's order; help by group, option errors
# naming the command, the provider's reason first when a key load fails;
# URI and PIN file refusals with their own messages; a man page that
# lists every environment variable the code reads.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 64

D=$TT/ca
W=$TT/w
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/ca.key" 2>/dev/null
check "ca init" p11ca ca init --dir "$D" --subject "/CN=Interfaces CA" \
    --key "$W/ca.key"
csr() { # csr NAME SUBJECT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "$2" -out "$W/$1.csr" 2>/dev/null
}
csr alice "/C=US/O=Example/OU=people/CN=alice"
csr bob "/CN=bob"
p11ca issue --dir "$D" --profile client --out "$W/alice.pem" "$W/alice.csr" >/dev/null
p11ca issue --dir "$D" --profile client --out "$W/bob.pem" "$W/bob.csr" >/dev/null
S=$(openssl x509 -in "$W/alice.pem" -noout -serial | cut -d= -f2)
SB=$(openssl x509 -in "$W/bob.pem" -noout -serial | cut -d= -f2)
py() { python3 -c "$@"; }
naudit() { sqlite3 "$D/registry.db" "select count(*) from audit"; }

# --- 11: JSON errors, ISO 8601 times -------------------------------------
p11ca --json cert show --dir "$D" 0badc0de >"$W/j.out" 2>"$W/j.err"
rc=$?
v=$(py 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e["code"], e["exit"], "0BADC0DE" in e["message"])' "$W/j.err" 2>&1)
assert_eq "$rc:$v:$(wc -c <"$W/j.out")" "2:not-found 2 True:0" \
    "--json: an error is one JSON object on stderr (code, exit, message), stdout empty"
p11ca cert list --dir "$D" --json --bogus >"$W/j.out" 2>"$W/j.err"
rc=$?
v=$(py 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e["code"], e["exit"], e["message"])' "$W/j.err" 2>&1)
assert_eq "$rc:$v" "1:usage 1 p11ca cert list: unknown option --bogus" \
    "--json: a usage error too, even with --json before the bad option"
# jerr FILE: "code exit message" of the JSON error in FILE.
jerr() { py 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e["code"], e["exit"], e["message"])' "$1" 2>&1; }
p11ca --json ca list --dir "$TT/none" >"$W/j.out" 2>"$W/j.err"
assert_eq "$?:$(jerr "$W/j.err" | cut -d' ' -f1,2):$(wc -c <"$W/j.out")" "2:not-found 2:0" \
    "--json: ca list's error is JSON too"
p11ca --json audit head --dir "$D" >"$W/j.out" 2>"$W/j.err"
assert_eq "$?:$(jerr "$W/j.err")" \
    "1:usage 1 p11ca audit head: give --out FILE (- for standard output)" \
    "--json: audit head's usage error is JSON and names the command"
p11ca --json audit sign --dir "$TT/none" >"$W/j.out" 2>"$W/j.err"
assert_eq "$?:$(jerr "$W/j.err" | cut -d' ' -f1,2)" "2:not-found 2" \
    "--json: audit sign's error is JSON"
p11ca --json cert list --dir "$D" --format csv >"$W/j.out" 2>"$W/j.err"
assert_eq "$?:$(jerr "$W/j.err" | cut -d' ' -f1,2):$(wc -c <"$W/j.out")" "1:usage 1:0" \
    "--json with --format csv is a usage error (JSON), not CSV with JSON errors"
p11ca --json crl --dir "$D" --out "$W/crl.pem" >"$W/crl.json"
next=$(openssl crl -in "$W/crl.pem" -noout -nextupdate | cut -d= -f2)
v=$(py 'import json,sys,datetime
d=json.load(open(sys.argv[1]))
n=datetime.datetime.strptime(sys.argv[2], "%b %d %H:%M:%S %Y GMT")
print(d["next_update"] == n.strftime("%Y-%m-%dT%H:%M:%SZ"), d["last_update"] < d["next_update"])' "$W/crl.json" "$next" 2>&1)
assert_eq "$v" "True True" "crl --json: next_update is the CRL's nextUpdate, ISO 8601 UTC"
p11ca --json cert show --dir "$D" "$S" >"$W/show.json"
v=$(py 'import json,sys,re
d=json.load(open(sys.argv[1]))
iso=re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
print(all(iso.match(d[k]) for k in ("not_before","not_after","recorded_at")) and all(iso.match(h["at"]) for h in d["history"]))' "$W/show.json" 2>&1)
assert_eq "$v" True "cert show --json: every time is ISO 8601 UTC"

# --- 12: idempotent operations -------------------------------------------
a0=$(naudit)
check "activate an activated certificate" p11ca cert activate --dir "$D" "$S"
assert_eq "$(cat "$TT/out")" "$S: already activated" "... says already activated"
check "deactivate it" p11ca cert deactivate --dir "$D" "$S"
check "deactivate it again" p11ca cert deactivate --dir "$D" "$S"
assert_eq "$(cat "$TT/out")" "$S: already not-activated" "... says already not-activated"
check "revoke it (keyCompromise)" p11ca cert revoke --dir "$D" --reason keyCompromise "$S"
check "revoke it again, same reason" p11ca cert revoke --dir "$D" --reason keyCompromise "$S"
assert_eq "$(cat "$TT/out")" "$S: already revoked (keyCompromise)" "... says already revoked"
should_fail 2 "certificate $S of CA [0-9]+ is already revoked \\(keyCompromise\\): revocation is final.*not revoked again as superseded" \
    "revoking it with another reason is refused, saying why" \
    p11ca cert revoke --dir "$D" --reason superseded "$S"
assert_eq "$(naudit)" "$((a0 + 2))" "only the two real changes were audited"
p11ca --json cert revoke --dir "$D" --reason keyCompromise "$S" >"$W/r.json"
v=$(py 'import json,sys; d=json.load(open(sys.argv[1])); print(d["serial"], d["status"], d["changed"])' "$W/r.json" 2>&1)
assert_eq "$v" "$S revoked False" "--json: changed false"
ca_id=$(py 'import json,sys; print(json.load(open(sys.argv[1]))["ca_id"])' "$W/r.json" 2>&1)
check "revoke it again, its CA named with --issuer" \
    p11ca cert revoke --dir "$D" --issuer "$ca_id" --reason keyCompromise "$S"
assert_eq "$(cat "$TT/out")" "$S: already revoked (keyCompromise)" "... already revoked too"
assert_eq "$(naudit)" "$((a0 + 2))" "still only the two real changes in the audit trail"
check "audit verify: the trail's replay agrees with every status" \
    p11ca audit verify --dir "$D"
assert_grep 'each with the status its audited history leads to' "$TT/out" \
    "... nothing the no-ops did is misread"

# --- 13: serials and subjects --------------------------------------------
p11ca cert list --dir "$D" >"$W/list.txt"
assert_grep "^$SB +activated +bob" "$W/list.txt" "cert list prints serials as openssl does"
lower=$(echo "$SB" | tr 'A-F' 'a-f')
colons=$(echo "$SB" | sed 's/../&:/g; s/:$//')
for form in "$lower" "$colons" "0x$SB"; do
    p11ca cert show --dir "$D" "$form" >"$W/show.txt" 2>&1
    assert_grep "^serial: +$SB\$" "$W/show.txt" "cert show takes $form"
done
# An odd number of digits: a registered certificate with serial 0x0ABC.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/ext.key" -subj "/CN=External CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -out "$W/ext.pem" 2>/dev/null
openssl req -new -key "$W/bob.key" -subj "/CN=carol" -out "$W/carol.csr" 2>/dev/null
openssl x509 -req -in "$W/carol.csr" -CA "$W/ext.pem" -CAkey "$W/ext.key" \
    -set_serial 0xABC -days 20 -out "$W/carol.pem" 2>/dev/null
p11ca cert register-ca --dir "$D" "$W/ext.pem" >/dev/null
check "register a certificate with serial 0x0ABC" p11ca cert register --dir "$D" "$W/carol.pem"
assert_eq "$(sed 's/ (CA [0-9]*)$//' "$TT/out")" "$(openssl x509 -in "$W/carol.pem" -noout -serial | cut -d= -f2): registered-not-activated" \
    "... printed 0ABC, as openssl prints it"
for form in abc 0a:bc 0x0ABC; do
    p11ca cert show --dir "$D" "$form" >"$W/show.txt" 2>&1
    assert_grep '^serial: +0ABC$' "$W/show.txt" "cert show takes $form"
done
should_fail 2 'bad serial "12:zz".*hexadecimal' "a serial that is not hex is refused" \
    p11ca cert show --dir "$D" 12:zz
want=$(openssl x509 -in "$W/alice.pem" -noout -subject -nameopt utf8,sep_comma_plus_space | sed 's/^subject=//')
assert_eq "$want" "C=US, O=Example, OU=people, CN=alice" "openssl's order (the reference)"
p11ca cert show --dir "$D" "$S" >"$W/show.txt"
assert_grep "^subject: +$want\$" "$W/show.txt" "cert show prints the subject in openssl's order"
assert_grep "^$S .*  $want\$" "$W/list.txt" "cert list too"
assert_eq "$(py 'import json,sys; print(json.load(open(sys.argv[1]))["subject"])' "$W/show.json")" \
    "$want" "cert show --json too"
p11ca audit list --dir "$D" >"$W/audit.txt"
assert_grep "revoke +$S" "$W/audit.txt" "the audit trail prints serials the same way"

# --- 14: help, option errors, the provider's reason first -------------------
should_fail 1 '^cert: certificates' "p11ca alone lists the commands under group headings" p11ca
assert_grep '^  p11ca cert list ' "$TT/err" "... with each command's full name"
check "p11ca help cert" p11ca help cert
assert_grep 'p11ca cert revoke' "$TT/out" "p11ca help GROUP shows that group"
assert_no_grep 'p11ca token' "$TT/out" "... and only that group"
check "p11ca help cert list" p11ca help cert list
assert_grep '^usage: p11ca cert list ' "$TT/out" "p11ca help GROUP COMMAND is the command's help"
should_fail 1 '^p11ca cert list: unknown option --bogus$' \
    "an unknown option names the full command" p11ca cert list --dir "$D" --bogus
should_fail 1 '^p11ca cert show: option --dir needs an argument$' \
    "a missing option argument names the full command and the option" \
    p11ca cert show --dir
should_fail 1 '^p11ca crl: --days: 1 to 3650$' "a bad value names the full command" \
    p11ca crl --dir "$D" --days 0
keygen cakey ec:P-256
check "a CA with its key on the token" \
    p11ca ca init --dir "$TT/tca" --subject "/CN=Token CA" \
    --key-uri "$TOKURI;object=cakey" --pin-source "$PINFILE"
# The provider refuses to log in (login-behavior never) after the CA's own
# token checks passed: its reason must come first, not OSSL_STORE's file
# loader or engine noise.
no_login() { (P11CA_LOGIN_BEHAVIOR=never && export P11CA_LOGIN_BEHAVIOR &&
    p11ca "$@"); }
should_fail 3 'cannot load the CA key [^ ]+: p11ca: ' \
    "a failed key load shows the provider's reason first (exit 3)" \
    no_login crl --dir "$TT/tca"
assert_no_grep 'scheme=file|stat\(pkcs11|engine routines|error:[0-9A-F]{8}' \
    "$TT/err" "... without OSSL_STORE's file loader or engine noise"

# --- 16: URIs and PIN files ---------------------------------------------------
should_fail 2 'token= appears twice' "a repeated URI attribute is refused" \
    p11ca key list --no-login 'pkcs11:token=a;token=b'
should_fail 2 'type=banana is not an object type' "type=banana has its own message" \
    p11ca key list --no-login 'pkcs11:type=banana'
should_fail 2 'token= is 40 bytes long: at most 32 fit the token label' \
    "an oversized value has its own message" \
    p11ca key list --no-login "pkcs11:token=$(printf '%040d' 0)"
{ printf 12; printf '\000'; printf 34; } >"$TT/nul.pin"
chmod 600 "$TT/nul.pin"
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_LOG=$TT/calls.log \
    P11CA_MODULE=$FAULTY p11ca --pin-source "$TT/nul.pin" key list "$TOKURI" \
    >"$TT/out" 2>"$TT/err"
rc=$?
if [ "$rc" = 3 ] && grep -q 'holds a NUL byte' "$TT/err"; then
    ok "a PIN file with a NUL byte is refused (exit 3)"
else
    not_ok "a PIN file with a NUL byte is refused (exit $rc)"
    diag "$(cat "$TT/err")"
fi
assert_no_grep 'C_Login' "$TT/calls.log" \
    "... before it reaches the token (no C_Login)"

# --- 17: the man page and the code agree -------------------------------------
p11ca man >"$W/man.1"
sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$W/man.1" >"$W/env.1"
vars=$(grep -rhoE '(getenv|env_or)\([^)]*"P11CA_[A-Z_]+"' "$top_srcdir/src" "$top_srcdir/provider" |
    grep -oE 'P11CA_[A-Z_]+' | sort -u)
missing=
for v in $vars; do
    grep -q "^\\.B $v\$" "$W/env.1" || missing="$missing $v"
done
assert_eq "$(echo "$vars" | wc -w):${missing:-none}" "22:none" \
    "ENVIRONMENT lists every variable the code reads (P11CA_CA_DIR, P11CA_PIN_SOURCE, ...)"
if grep -q 'srv' "$W/env.1"; then
    not_ok "no srv debug subsystem is documented before the service exists"
else
    ok "no srv debug subsystem is documented before the service exists"
fi
P11CA_DEBUG=reg p11ca cert list --dir "$D" >/dev/null 2>"$W/debug.txt"
assert_grep 'debug .*registry .* opened read-only' "$W/debug.txt" \
    "P11CA_DEBUG=reg, documented, logs something"
check "cert activate --help" p11ca cert activate --help
assert_grep 'registered-not-activated' "$TT/out" "help names the status registered-not-activated"
assert_grep 'registered\\-not\\-activated' "$W/man.1" "and so does the man page"
done_testing
