#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Names from CSRs, certificates and tokens are data, not terminal control:
# a CN with ESC sequences, BEL, a newline, a C1 CSI and a right-to-left
# override reaches the terminal escaped (\x1b, \x0a, \u009b, \u202e) from
# issue, issue --batch, cert list (text and CSV), cert show, audit, ca list,
# the error messages and key list, while --json keeps the exact value
# (jansson's escapes).
set -u
. "$top_srcdir/tests/lib/token.sh"
plan 21

D=$TT/ca
W=$TT/work
mkdir -p "$W/batch" "$W/out"
ESC=$(printf '\033')
BEL=$(printf '\007')
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ca.key" 2>/dev/null
check "ca init with a key file" \
    p11ca ca init --dir "$D" --subject "/CN=Escape Test CA" --key "$W/ca.key"

# The CN, written by openssl's config parser: \n is a newline there; the
# other bytes are written as they are.  U+009B is C2 9B, U+202E E2 80 AE.
printf '[req]\nprompt = no\ndistinguished_name = dn\nutf8 = yes\nstring_mask = utf8only\n[dn]\nCN = evil\033[2J\033]0;pwned\007x\\nINJECTED \302\2331m \342\200\256gpj.exe\n' >"$W/req.cnf"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/evil.key" -config "$W/req.cnf" -out "$W/evil.csr" 2>/dev/null
openssl req -in "$W/evil.csr" -noout -subject -nameopt utf8,-esc_ctrl >"$W/subj"
assert_grep "$ESC" "$W/subj" "openssl wrote the ESC byte into the CSR's CN"

# no_raw FILE "description": no ESC, BEL, C1 CSI, RLO byte and no line
# starting with the injected text (FILE must exist: assert_no_grep).
no_raw() {
    assert_no_grep "$ESC|$BEL|$(printf '\302\233')|$(printf '\342\200\256')|^INJECTED" \
        "$1" "$2"
}

p11ca issue --dir "$D" --profile client --out "$W/evil.pem" "$W/evil.csr" \
    >"$TT/issue.txt" 2>&1
no_raw "$TT/issue.txt" "issue: the client ID is printed escaped"
assert_grep 'client ID evil\\x1b\[2J\\x1b\]0;pwned\\x07x\\x0aINJECTED \\u009b1m \\u202egpj\.exe' \
    "$TT/issue.txt" "issue: ... as \\x1b, \\x07, \\x0a, \\u009b and \\u202e"

p11ca cert list --dir "$D" >"$TT/list.txt" 2>&1
no_raw "$TT/list.txt" "cert list: client ID and subject escaped"
assert_eq "$(p11ca cert list --dir "$D" 2>/dev/null | wc -l)" 2 \
    "cert list: a header and one line for the certificate"
p11ca cert list --dir "$D" --format csv >"$TT/list.csv" 2>&1
no_raw "$TT/list.csv" "cert list --format csv: fields escaped"
assert_eq "$(p11ca cert list --dir "$D" --format csv 2>/dev/null | wc -l)" 2 \
    "cert list --format csv: a header and one row (the newline is \\x0a)"
SERIAL=$(openssl x509 -in "$W/evil.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
p11ca cert show --dir "$D" "$SERIAL" >"$TT/show.txt" 2>&1
no_raw "$TT/show.txt" "cert show: subject and client ID escaped"
assert_grep 'subject: +CN=evil\\x1b\[2J\\x1b\]0\\;pwned\\x07x\\x0aINJECTED ' "$TT/show.txt" \
    "cert show: the subject's control characters escaped once, as \\x1b (RFC 2253's \\; kept)"
p11ca audit --dir "$D" >"$TT/audit.txt" 2>&1
no_raw "$TT/audit.txt" "audit list: escaped"

# JSON keeps the exact value.
p11ca cert list --dir "$D" --json >"$TT/list.json"
v=$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))[0]["client_id"]))' "$TT/list.json")
assert_eq "$v" "'evil\\x1b[2J\\x1b]0;pwned\\x07x\\nINJECTED \\x9b1m \\u202egpj.exe'" \
    "cert list --json: the exact client ID"
v=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))[0]; print(c["subject"] == "CN=" + c["client_id"].replace(";", "\\;"))' "$TT/list.json")
assert_eq "$v" True "cert list --json: the exact subject (only RFC 2253's specials escaped)"

# An external CA's subject and name, as ca list shows them.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/ext.key" -config "$W/req.cnf" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -out "$W/ext.pem" 2>/dev/null
p11ca cert register-ca --dir "$D" --name "vendor${ESC}[2J" "$W/ext.pem" \
    >/dev/null 2>&1
p11ca ca list --dir "$D" >"$TT/cas.txt" 2>&1
no_raw "$TT/cas.txt" "ca list: the name and subject of a registered CA escaped"
assert_grep 'external +vendor\\x1b\[2J ' "$TT/cas.txt" "ca list: ... as \\x1b"

# A refusal quotes the CSR: the message is escaped too.
printf '[req]\nprompt = no\ndistinguished_name = dn\nreq_extensions = ext\n[dn]\nCN = x\n[ext]\nsubjectAltName = DNS:a\033[31mb.example.com\n' >"$W/san.cnf"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/san.key" -config "$W/san.cnf" -out "$W/san.csr" 2>/dev/null
should_fail 2 'DNS:a\\x1b\[31mb\.example\.com" is not a host name' \
    "a refused CSR's name is quoted escaped" \
    p11ca issue --dir "$D" --profile client --out "$W/san.pem" "$W/san.csr"
no_raw "$TT/err" "... with no raw control character on stderr"

# issue --batch: the issued lines and the refusals.
cp "$W/san.csr" "$W/batch/1-san.csr"
printf '[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = batch\033[5m\n' >"$W/b.cnf"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/b.key" -config "$W/b.cnf" -out "$W/batch/2-ok.csr" 2>/dev/null
p11ca issue --dir "$D" --profile client --batch "$W/batch" \
    --outdir "$W/out" >"$TT/batch.txt" 2>&1
no_raw "$TT/batch.txt" "issue --batch: escaped"
assert_grep 'x1b\[31mb' "$TT/batch.txt" "issue --batch: the refusal is reported"

# A key label on the token (CKA_LABEL is data too).
p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=k%1b%5b2Jx" \
    --type ec:P-256 >/dev/null 2>&1
p11ca --pin-source "$PINFILE" key list "$TOKURI" >"$TT/keys.txt" 2>&1
no_raw "$TT/keys.txt" "key list: the label is escaped"
assert_grep 'label: +k\\x1b\[2Jx' "$TT/keys.txt" "key list: ... as \\x1b"
done_testing
