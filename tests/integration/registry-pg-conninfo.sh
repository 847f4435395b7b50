#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A PostgreSQL registry location whose dbname is a connection string in
# turn (keywords, or a URI with user:password@) is refused before libpq
# sees it: libpq would take it for a database name, send it to the server
# and quote it back in its messages, password and all.  The refusal says
# why without showing it, in every message, debug log and --json output;
# nothing is written.  No PostgreSQL server is needed: nothing connects.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
plan 10

W=$TT/w
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/ca.key" 2>/dev/null
# Debug logs of the registry and the CA on: they must not show it either.
P11CA_DEBUG=reg,ca
export P11CA_DEBUG
WHY='its dbname is a connection string in turn \(not shown: it may hold a password\)'

# init N LOCATION DESC: ca init with --registry LOCATION is refused (exit
# 2) with the reason, shows no sekrit (debug log included) and makes no
# CA directory.
init() {
    should_fail 2 "$WHY" "$3" \
        p11ca ca init --dir "$TT/ca$1" --subject /CN=x --key "$W/ca.key" \
        --registry "$2"
    if grep -q sekrit "$TT/out" "$TT/err" || [ -e "$TT/ca$1" ]; then
        not_ok "... no part of the password shown, nothing written"
        diag "$(cat "$TT/err")"
    else
        ok "... no part of the password shown, nothing written"
    fi
}
init 1 "postgresql:host=/nonexistent dbname='host=/nonexistent password=sekrit91'" \
    "ca init: dbname='host=.. password=..' is refused"
init 2 "postgresql:dbname='postgresql://u:sekrit92@localhost/db'" \
    "ca init: dbname='postgresql://u:PASSWORD@..' is refused"
init 3 "postgresql://localhost/?dbname=host%3D/x%20password%3Dsekrit93" \
    "ca init: a URI whose dbname= is keywords is refused"

# A CA whose ca.cnf names such a location (edited by hand).
check "ca init (SQLite registry)" \
    p11ca ca init --dir "$TT/ca" --subject /CN=x --key "$W/ca.key"
sed -i "s|^registry *=.*|registry = \"postgresql:dbname='host=/x password=sekrit94'\"|" \
    "$TT/ca/ca.cnf"
grep -q sekrit94 "$TT/ca/ca.cnf" || echo "Bail out! ca.cnf was not edited"
should_fail 2 "$WHY" "ca show --json: that ca.cnf is refused" \
    p11ca ca show --json --dir "$TT/ca"
assert_no_grep sekrit "$TT/out" "... its JSON output shows no password"
assert_no_grep sekrit "$TT/err" "... nor its messages and debug log"
done_testing
