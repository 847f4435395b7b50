#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ca.cnf reads no other file: .include (of a file, /dev/zero or a
# directory) and .pragma includedir are refused at once, with the line,
# however NCONF would join the lines that make them; nothing is issued or
# recorded.  Comments and values that merely mention them, and other
# pragmas, stay allowed.  timeout is only a safety net: before the
# refusal, .include /dev/zero never returned.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
plan 17

D=$TT/ca
W=$TT/w
mkdir -p "$W/inc"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/ca.key" 2>/dev/null
check "ca init" p11ca ca init --dir "$D" --subject "/CN=Include CA" \
    --key "$W/ca.key"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/a.key" -subj "/CN=a" -out "$W/a.csr" 2>/dev/null
cp "$D/ca.cnf" "$W/ca.cnf.orig"
n=$(wc -l <"$W/ca.cnf.orig")
nrows() { sqlite3 "$D/registry.db" "select count(*) from certs"; }
rows=$(nrows)
# A profile in an included directory: what an .include would add.
printf '[ profiles ]\nextra = profile_extra\n[ profile_extra ]\nkey_usage = digitalSignature\n' \
    >"$W/inc/extra.cnf"

# tp11ca ARGS: p11ca, stopped after 60 s (a safety net: a refusal is at once).
tp11ca() { timeout 60 "$top_builddir/src/p11ca" "$@"; }
# with FORMAT [ARGS]: ca.cnf as ca init wrote it, then printf's output.
with() {
    cp "$W/ca.cnf.orig" "$D/ca.cnf"
    fmt=$1
    shift
    # shellcheck disable=SC2059 # FORMAT is a format
    printf "$fmt" "$@" >>"$D/ca.cnf"
}
# refused LINE DESC: p11ca ca show refuses ca.cnf, naming line LINE.
refused() {
    should_fail 2 "ca\\.cnf line $1: \\.include and \\.pragma includedir are not allowed in ca\\.cnf" \
        "$2" tp11ca ca show --dir "$D"
}

with '.include /dev/zero\n'
refused $((n + 1)) ".include /dev/zero is refused at once"
should_fail 2 "line $((n + 1)): \\.include" "... by issue too, before anything is signed" \
    tp11ca issue --dir "$D" --profile client --out "$W/a.pem" "$W/a.csr"
assert_eq "$(nrows)" "$rows" "... and nothing was recorded"
with '\n.include = %s\n' "$W/inc"
refused $((n + 2)) ".include = DIR (every file in it) is refused"
with 'x = 1\n.inc\\\nlude /dev/zero\n'
refused $((n + 2)) "an .include split by a line continuation is refused"
with 'x = 1 \\\\\n.include /dev/zero\n'
refused $((n + 2)) "... and one after a line that ends in an escaped backslash"
with '\\\n.include /dev/zero\n'
refused $((n + 1)) "... and one continuing a lone backslash, with the line it starts on"
with 'x = 1\n.include /dev/zero\\\n'
refused $((n + 2)) "... and a last line that ends in a backslash"
# shellcheck disable=SC1003 # a backslash, escaped for printf, ends it
with 'x = 1\n.include /dev/zero\\'
refused $((n + 2)) "... with no newline after it"
with '[ other ]\nother::.include /dev/zero\n'
refused $((n + 2)) "an .include after section:: is refused"
# NCONF reads 510 bytes at a time; a CR at the end of them ends the line.
with 'a=%s\r.include /dev/zero\n' "$(printf 'A%.0s' $(seq 507))"
refused $((n + 1)) "an .include after a CR that ends NCONF's read buffer is refused"
with '.pragma includedir:%s\n' "$W/inc"
refused $((n + 1)) ".pragma includedir is refused"
with 'x = 1\0\n'
should_fail 2 'ca\.cnf holds a NUL byte' "a NUL byte is refused" \
    tp11ca ca show --dir "$D"

with '# .include /dev/zero\n[ notes ]\nnote = see .include and .pragma includedir\n.pragma dollarid:on\n'
check "a comment and a value that mention .include, and .pragma dollarid, are allowed" \
    tp11ca ca show --dir "$D"
check "... and issue works with that ca.cnf" \
    tp11ca issue --dir "$D" --profile client --out "$W/a.pem" "$W/a.csr"
# -nameopt oneline: "CN = a" on every OpenSSL (3.2+ says "CN=a" by default).
assert_eq "$(openssl x509 -in "$W/a.pem" -noout -subject -nameopt oneline)" "subject=CN = a" \
    "... the certificate is the one asked for"

done_testing
