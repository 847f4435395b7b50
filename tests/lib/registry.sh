# SPDX-License-Identifier: Apache-2.0
# The registry a CLI test runs on: SQLite in the CA directory (default) or,
# with P11CA_TEST_REGISTRY=pg, a throw-away PostgreSQL server (pg.sh), so
# that one script tests both backends.  Source after token.sh/prov.sh.
# shellcheck shell=sh
#
# Sets REG_LOC: the registry location of ca init ("" for SQLite: the
# default file; PostgreSQL: postgresql:... of the test server).
# regsql DIR SQL: run SQL on the registry of the CA in DIR, as someone with
# the database's files would (PostgreSQL: the superuser with triggers off),
# printing rows as sqlite3 does (columns joined by |).  group_concat(x)
# and group_concat(x, sep) work on both.

if [ "${P11CA_TEST_REGISTRY:-sqlite}" = pg ]; then
    . "$top_srcdir/tests/lib/pg.sh"
    pg_start
    # SQLite's group_concat, for the tests' queries.
    pg_sql "CREATE FUNCTION gc_step(acc text, v text, sep text) RETURNS text
        LANGUAGE sql IMMUTABLE AS \$\$ SELECT CASE WHEN v IS NULL THEN acc
        WHEN acc IS NULL THEN v ELSE acc || sep || v END \$\$;
        CREATE FUNCTION gc_step(acc text, v text) RETURNS text
        LANGUAGE sql IMMUTABLE AS \$\$ SELECT gc_step(acc, v, ',') \$\$;
        CREATE AGGREGATE group_concat(text, text) (SFUNC = gc_step, STYPE = text);
        CREATE AGGREGATE group_concat(text) (SFUNC = gc_step, STYPE = text);" ||
        { echo "Bail out! cannot prepare the test database"; exit 1; }
    REG_LOC=$PG_LOC
    regsql() {
        pg_sql "SET session_replication_role = replica; $2"
    }
else
    REG_LOC=
    regsql() {
        sqlite3 "$1/registry.db" "$2"
    }
fi

# with_reg CMD...: a `ca init` command line, with the registry option at
# its end when the test runs on PostgreSQL.
with_reg() {
    if [ -n "$REG_LOC" ]; then
        "$@" --registry "$REG_LOC"
    else
        "$@"
    fi
}

# reg_init ARGS...: p11ca ca init ARGS on the test's registry.
reg_init() {
    with_reg p11ca ca init "$@"
}
