#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A CA on a PostgreSQL registry set up as docs/registry-postgresql.md says:
# an owner role that creates and migrates the schema, a service role that
# issues and revokes but cannot rewrite the audit trail, a reader; passwords
# in a password file, none in ca.cnf.  The database itself refuses what the
# lifecycle forbids (revocation undone, a second activated certificate for a
# client ID, a serial twice, audit rows changed), whoever asks.  Every bad
# location gets a clear message, exit 2 or 4, and never shows a password:
# a string libpq cannot parse, an unreachable or stopped server (which
# works again once started, nothing restarted), a wrong password, a schema
# newer than this p11ca, a database without a registry.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/pg.sh"
PG_HBA_PREPEND="local all p11ca_owner,p11ca_service,p11ca_reader scram-sha-256"
pg_start
plan 35

D=$TT/ca
W=$TT/work
mkdir -p "$W"
# The roles and the database, as the superuser (docs/registry-postgresql.md).
pg_sql "CREATE ROLE p11ca_owner LOGIN PASSWORD 'owner-pw-4711';
    CREATE ROLE p11ca_service LOGIN PASSWORD 'service-pw-4712';
    CREATE ROLE p11ca_reader LOGIN PASSWORD 'reader-pw-4713';"
# Not in a transaction (psql -c sends one): a statement of its own.
pg_sql "CREATE DATABASE registry OWNER p11ca_owner"
PGPASSFILE=$TT/pgpass
cat >"$PGPASSFILE" <<EOF
*:*:*:p11ca_owner:owner-pw-4711
*:*:*:p11ca_service:service-pw-4712
*:*:*:p11ca_reader:reader-pw-4713
EOF
chmod 600 "$PGPASSFILE"
export PGPASSFILE
# No user in the location: PGUSER says who connects.
LOC="postgresql:host=$PG_SOCK dbname=registry"
as() { # as ROLE psql-args...: psql on the registry database as ROLE
    r=$1
    shift
    PGUSER=$r psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -d registry "$@"
}
# owner/service/reader CMD...: CMD connecting as that role (p11ca is a
# shell function: the variable is exported in a subshell).
owner() { (PGUSER=p11ca_owner && export PGUSER && "$@"); }
service() { (PGUSER=p11ca_service && export PGUSER && "$@"); }
reader() { (PGUSER=p11ca_reader && export PGUSER && "$@"); }
nopass() { (PGPASSFILE=/dev/null && export PGPASSFILE && "$@"); }
# both: what the last should_fail printed, for the no-password checks.
both() { cat "$TT/out" "$TT/err" >"$TT/both"; }

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ca.key" 2>/dev/null
check "ca init on PostgreSQL as the owner role (creates the schema)" \
    owner p11ca ca init --dir "$D" --subject "/CN=PG Test CA" --key "$W/ca.key" \
    --registry "$LOC"
assert_grep "^registry *= *postgresql:host=" "$D/ca.cnf" "ca.cnf names the PostgreSQL registry"
assert_eq "$(as p11ca_owner -c 'select max(version) from schema_version')" 6 \
    "the migrations ran: schema version 6"
# The service's grants: no UPDATE or DELETE on the audit trail.
as p11ca_owner -c "GRANT USAGE ON SCHEMA public TO p11ca_service, p11ca_reader;
    GRANT SELECT, INSERT, UPDATE, DELETE ON cas, certs, status_history,
        crl_numbers, enroll_codes, signup_buckets TO p11ca_service;
    GRANT SELECT, INSERT ON audit, audit_heads TO p11ca_service;
    GRANT SELECT ON schema_version TO p11ca_service;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO p11ca_service;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO p11ca_reader;"

csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "/CN=$2" -out "$W/$1.csr" 2>/dev/null
}
issue() { # issue NAME [options...]
    n=$1
    shift
    service p11ca issue --dir "$D" --profile client --days 30 "$@" \
        --out "$W/$n.pem" "$W/$n.csr"
}
serial_of() { openssl x509 -in "$W/$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
csr alice alice; csr bob bob; csr alice2 alice
check "the service role issues alice" issue alice
check "... and bob" issue bob
check "... and a second certificate of client alice, not activated" issue alice2 --not-activated
S_ALICE=$(serial_of alice); S_BOB=$(serial_of bob); S_ALICE2=$(serial_of alice2)
check "the service role revokes bob" \
    service p11ca cert revoke --dir "$D" --reason keyCompromise "$S_BOB"
check "the service role makes a CRL" service p11ca crl --dir "$D" --out "$W/crl.pem"
openssl crl -in "$W/crl.pem" -noout -text >"$W/crl.txt" 2>&1
assert_grep "Serial Number: 0*$(echo "$S_BOB" | tr a-f A-F)" "$W/crl.txt" "openssl reads bob's serial in the CRL"
assert_grep "Key Compromise" "$W/crl.txt" "... with its reason"
check "the audit chain verifies" service p11ca audit verify --dir "$D"
check "the reader role lists certificates" \
    reader p11ca cert list --dir "$D"
should_fail 4 'permission denied' "the reader role cannot revoke (exit 4)" \
    reader p11ca cert revoke --dir "$D" --reason superseded "$S_ALICE"

# The database enforces the rules, for any client.
sqlfail() { # sqlfail ROLE REGEX DESCRIPTION SQL
    if out=$(as "$1" -c "$4" 2>&1); then
        not_ok "$3 (the statement succeeded)"
    elif printf '%s\n' "$out" | grep -Eq "$2"; then
        ok "$3"
    else
        not_ok "$3"
        diag "$out"
    fi
}
sqlfail p11ca_service 'permission denied for table audit' \
    "the service role cannot change audit entries (grants)" \
    "update audit set details = 'edited' where seq = 2"
sqlfail p11ca_service 'permission denied for table audit' \
    "... nor delete them" "delete from audit where seq = 2"
sqlfail p11ca_owner 'the audit trail is append-only' \
    "even the owner cannot change an audit entry (trigger)" \
    "update audit set details = 'edited' where seq = 2"
sqlfail p11ca_owner 'the audit trail is append-only' \
    "... nor truncate the trail" "truncate audit_heads, audit"
sqlfail p11ca_service 'revocation is final' \
    "a revoked certificate cannot be made activated again in SQL" \
    "update certs set status = 'activated', revoked_at = null, reason = null where serial = '$S_BOB'"
sqlfail p11ca_service 'certs_active_client_id' \
    "a second activated certificate for client alice is refused in SQL" \
    "update certs set status = 'activated' where serial = '$S_ALICE2'"
sqlfail p11ca_service 'certs_issuer_serial' \
    "the same serial of the same CA twice is refused in SQL" \
    "insert into certs (serial, ca_id, subject, issuer, origin, status,
        not_before, not_after, recorded_at, der)
     select serial, ca_id, subject, issuer, origin, 'not-activated',
        not_before, not_after, recorded_at, der
     from certs where serial = '$S_ALICE'"

# A password in the location: ca.cnf is for its owner only.
check "ca init with a password in the location" \
    nopass p11ca ca init --dir "$TT/withpw" --subject /CN=Pw --key "$W/ca.key" \
    --registry "postgresql://p11ca_owner:owner-pw-4711@/registry?host=$PG_SOCK"
assert_eq "$(stat -c %a "$TT/withpw/ca.cnf")" 600 "... writes ca.cnf readable by its owner only"

# Bad locations.
cnf_with() { # cnf_with DIR LOCATION: a copy of the CA with another registry
    rm -rf "$1"
    cp -r "$D" "$1"
    sed -i "s|^registry *=.*|registry = $2|" "$1/ca.cnf"
}
should_fail 2 'not a PostgreSQL connection string or URI' \
    "ca init refuses a location libpq cannot parse (exit 2)" \
    p11ca ca init --dir "$TT/bad" --subject /CN=Bad --key "$W/ca.key" \
    --registry "postgresql:host=$PG_SOCK password=s3cret word"
both
assert_no_grep 's3cret|word' "$TT/both" "... and shows no part of the password"
assert_eq "$(ls -A "$TT/bad" 2>/dev/null)" "" "... and leaves no CA behind"
cnf_with "$TT/c1" "postgresql:host=$PG_SOCK password=s3cret word"
should_fail 2 'not a PostgreSQL connection string or URI' \
    "a ca.cnf registry that libpq cannot parse: exit 2" \
    p11ca cert list --dir "$TT/c1"
cnf_with "$TT/c2" "postgresql://p11ca_service:wrong-pw-99@/registry?host=$PG_SOCK"
should_fail 4 'cannot connect: .*password authentication failed for user "p11ca_service"' \
    "a wrong password: exit 4, libpq's reason" \
    nopass p11ca cert list --dir "$TT/c2"
both
assert_no_grep 'wrong-pw' "$TT/both" "... and the password is not shown"
cnf_with "$TT/c3" "postgresql:host=$TT/nowhere dbname=registry"
should_fail 4 "registry postgresql:host=$TT/nowhere dbname=registry: cannot connect" \
    "no server at the location: exit 4, naming where" \
    service p11ca cert list --dir "$TT/c3"
cnf_with "$TT/c4" "postgresql:host=$PG_SOCK dbname=postgres"
should_fail 4 'is empty \(it holds no registry tables\).*pg_restore' \
    "a database without a registry is not started anew for an initialised CA" \
    service p11ca cert list --dir "$TT/c4"
pg_server_stop
should_fail 4 'cannot connect' "the server stopped: exit 4" \
    service p11ca cert list --dir "$D"
if pg_server_start; then
    check "the server back: the same CA works again" \
        service p11ca cert list --dir "$D"
else
    not_ok "the server did not start again"
    diag "$(cat "$PG_DIR/server.log")"
fi
as p11ca_owner -c "insert into schema_version values (99, 'future', 0)"
should_fail 4 'schema version 99 is newer than this p11ca knows \(6\)' \
    "a schema newer than this p11ca's: exit 4" \
    service p11ca cert list --dir "$D"
should_fail 4 'schema version 99 is newer' "... for a change too, which changes nothing" \
    service p11ca cert revoke --dir "$D" --reason superseded "$S_ALICE"
as p11ca_owner -c "delete from schema_version where version = 99"
assert_eq "$(as p11ca_service -c "select status from certs where serial = '$S_ALICE'")" \
    activated "alice is still activated"
done_testing
