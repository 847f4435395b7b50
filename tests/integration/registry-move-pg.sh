#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca registry migrate: a CA's SQLite registry (issued, revoked with a
# reason, deactivated certificates, a CRL, signed audit heads) moved to a
# throw-away PostgreSQL (tests/lib/pg.sh) and back to a new SQLite file.
# The same CA on each copy lists and shows the same certificates (JSON
# compared byte for byte) and passes p11ca audit verify (chain, signed
# heads, statuses); the source never changes; a copy works on (a new
# certificate gets a fresh id); a non-empty target is refused and keeps
# what it had; a source whose audit trail was edited is refused before
# the commit, leaving no row in the target; a bad source or an unreachable
# server is a clear error that creates nothing and shows no password.
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_start
plan 54

D=$TT/ca
W=$TT/work
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/ca.key" 2>/dev/null
check "ca init on SQLite" \
    p11ca ca init --dir "$D" --subject "/CN=Move Test CA" --key "$W/ca.key"

csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "/CN=$1" -out "$W/$1.csr" 2>/dev/null
}
serial_of() {
    openssl x509 -in "$W/$1.pem" -noout -serial | cut -d= -f2
}
for n in alice bob carol dave; do
    csr "$n"
    p11ca issue --dir "$D" --profile client --days 30 --out "$W/$n.pem" \
        "$W/$n.csr" >/dev/null 2>"$TT/err" || diag "issue $n: $(cat "$TT/err")"
done
check "bob revoked with reason keyCompromise" \
    p11ca cert revoke --dir "$D" --reason keyCompromise "$(serial_of bob)"
check "carol deactivated" p11ca cert deactivate --dir "$D" "$(serial_of carol)"
check "a CRL (a CRL number, a signed head)" \
    p11ca crl --dir "$D" --out "$W/crl.pem"

# view DIR NAME: what the CA in DIR shows, into $W/NAME.*
view() {
    p11ca cert list --dir "$1" --json >"$W/$2.list" 2>"$TT/err" &&
        p11ca cert show --dir "$1" --json "$(serial_of bob)" >"$W/$2.bob" &&
        p11ca cert show --dir "$1" --json "$(serial_of carol)" >"$W/$2.carol" &&
        p11ca audit list --dir "$1" --json >"$W/$2.audit"
}
# same A B: the two views are identical
same() {
    for f in list bob carol audit; do
        cmp -s "$W/$1.$f" "$W/$2.$f" || { diag "$f differs"; return 1; }
    done
}
# ca_on DIR LOCATION: a copy of the CA whose ca.cnf names LOCATION
ca_on() {
    rm -rf "$1"
    cp -r "$D" "$1"
    rm -f "$1"/registry.db*
    sed -i "s|^registry *=.*|registry = $2|" "$1/ca.cnf"
    grep -q "^registry *=" "$1/ca.cnf" || echo "registry = $2" >>"$1/ca.cnf"
}
# db_sum FILE: checksums of a SQLite file and its WAL
db_sum() { cat "$1" "$1-wal" 2>/dev/null | sha256sum; }
pg_counts() {
    pg_sql "select (select count(*) from cas), (select count(*) from certs),
        (select count(*) from status_history),
        (select count(*) from crl_numbers), (select count(*) from audit),
        (select count(*) from audit_heads)"
}
sq_counts() {
    sqlite3 "$1" "select (select count(*) from cas), (select count(*) from certs),
        (select count(*) from status_history),
        (select count(*) from crl_numbers), (select count(*) from audit),
        (select count(*) from audit_heads)"
}

check "the SQLite CA's view" view "$D" sqlite
assert_grep '"keyCompromise"' "$W/sqlite.bob" "... bob is revoked with keyCompromise"
assert_grep '"not-activated"' "$W/sqlite.carol" "... carol is not activated"
# The sqlite3 command writes the WAL back into the file when it closes:
# the checksum is taken after it.
SQ_COUNTS=$(sq_counts "$D/registry.db")
SUM=$(db_sum "$D/registry.db")

# What registry migrate copies (src/registry/copy.c): every table but
# schema_version with these columns.  A schema change that adds one must
# add it there, and here.
COLS="audit.action audit.actor audit.at audit.details audit.hash audit.object audit.prev_hash audit.seq audit_heads.at audit_heads.ca_id audit_heads.hash audit_heads.id audit_heads.seq audit_heads.signed cas.added_at cas.auto_register cas.auto_status cas.der cas.external cas.id cas.name cas.subject certs.ca_id certs.client_id certs.cn certs.der certs.id certs.invalidity certs.issuer certs.key_hash certs.not_after certs.not_before certs.origin certs.ou certs.profile certs.reason certs.recorded_at certs.replaces certs.revoke_after certs.revoked_at certs.serial certs.status certs.subject crl_numbers.ca_id crl_numbers.last enroll_codes.ca_id enroll_codes.client_id enroll_codes.created_at enroll_codes.created_by enroll_codes.expires enroll_codes.hash enroll_codes.id enroll_codes.profile enroll_codes.subject enroll_codes.used_at enroll_codes.used_by status_history.actor status_history.at status_history.cert_id status_history.from_status status_history.id status_history.reason status_history.to_status"
assert_eq "$(sqlite3 "$D/registry.db" "select m.name || '.' || p.name
    from sqlite_master m, pragma_table_info(m.name) p
    where m.type = 'table' and m.name <> 'schema_version'
    order by 1" | tr '\n' ' ' | sed 's/ $//')" "$COLS" \
    "the SQLite schema has the tables and columns that registry migrate copies"

# Usage.
should_fail 1 'give --from LOCATION and --to LOCATION' "no --to: usage (exit 1)" \
    p11ca registry migrate --from "sqlite:$D/registry.db"
should_fail 1 'name the same registry' "the same location twice: usage" \
    p11ca registry migrate --from "$PG_LOC" --to "$PG_LOC"

# SQLite -> PostgreSQL.
check "registry migrate SQLite -> PostgreSQL" \
    p11ca registry migrate --from "sqlite:$D/registry.db" --to "$PG_LOC" --json
cp "$TT/out" "$W/to-pg.json"
assert_grep '"certs": 4' "$W/to-pg.json" "... reports 4 certificates copied"
assert_grep '"audit_heads": [1-9]' "$W/to-pg.json" "... and the signed heads"
assert_eq "$(pg_counts)" "$SQ_COUNTS" "PostgreSQL holds as many rows per table as SQLite"
assert_eq "$(db_sum "$D/registry.db")" "$SUM" "the source file did not change"
# signup_buckets is PostgreSQL's only: the sign-up limit the nodes of
# p11ca serve share, counted afresh, never copied.
assert_eq "$(pg_sql "select table_name || '.' || column_name
    from information_schema.columns where table_schema = 'public'
    and table_name not in ('schema_version', 'signup_buckets')
    order by 1" | tr '\n' ' ' | sed 's/ $//')" \
    "$COLS" "... and so has PostgreSQL's (besides signup_buckets)"
ca_on "$TT/capg" "$PG_LOC"
check "the CA on PostgreSQL: its view" view "$TT/capg" pg
check "... identical to SQLite's (list, show, audit list)" same sqlite pg
check "audit verify on PostgreSQL (chain, signed heads, statuses)" \
    p11ca audit verify --dir "$TT/capg"
assert_grep 'head\(s\) verified' "$TT/out" "... the signed heads verified"
assert_eq "$(pg_sql "select t.status || ' ' || t.reason from certs t where t.status = 'revoked'")" \
    "revoked 1" "bob revoked with reason 1 in PostgreSQL's table"

# A second migration into the now non-empty target.
PG_BEFORE=$(pg_counts)
should_fail 4 'is not empty.*nothing was written' \
    "a second migrate into the non-empty PostgreSQL is refused (exit 4)" \
    p11ca registry migrate --from "sqlite:$D/registry.db" --to "$PG_LOC"
assert_eq "$(pg_counts)" "$PG_BEFORE" "... and changes nothing there"

# The copy works on: new rows get ids after the copied ones.
csr erin
check "the CA on PostgreSQL issues erin" \
    p11ca issue --dir "$TT/capg" --profile client --days 30 \
    --out "$W/erin.pem" "$W/erin.csr"
check "... and revokes her" p11ca cert revoke --dir "$TT/capg" \
    --reason superseded "$(serial_of erin)"
check "audit verify on PostgreSQL after that" p11ca audit verify --dir "$TT/capg"
check "the PostgreSQL view now" view "$TT/capg" pg2

# PostgreSQL -> a new SQLite file.
check "registry migrate PostgreSQL -> a new SQLite file" \
    p11ca registry migrate --from "$PG_LOC" --to "sqlite:$TT/back.db"
assert_grep 'certs +5 rows' "$TT/out" "... reports 5 certificates"
assert_eq "$(sq_counts "$TT/back.db")" "$(pg_counts)" "the new file holds as many rows per table"
ca_on "$TT/caback" "sqlite:$TT/back.db"
check "the CA on the new SQLite file: its view" view "$TT/caback" back
check "... identical to PostgreSQL's" same pg2 back
check "audit verify on the new SQLite file" p11ca audit verify --dir "$TT/caback"
BACK_SUM=$(db_sum "$TT/back.db")
should_fail 4 'is not empty' "a migrate into the now non-empty SQLite file is refused (exit 4)" \
    p11ca registry migrate --from "sqlite:$D/registry.db" --to "sqlite:$TT/back.db"
assert_eq "$(db_sum "$TT/back.db")" "$BACK_SUM" "... and the file is unchanged"

# Bad sources: a clear error, no target created.
should_fail 4 'source: registry .*/missing.db does not exist' \
    "a source file that does not exist: exit 4" \
    p11ca registry migrate --from "sqlite:$TT/missing.db" --to "sqlite:$TT/t1.db"
echo "not a database" >"$TT/text.db"
should_fail 4 'source: registry .*text.db: .*not a database' \
    "a source that is not a registry: exit 4" \
    p11ca registry migrate --from "sqlite:$TT/text.db" --to "sqlite:$TT/t1.db"
should_fail 2 'not a PostgreSQL connection string or URI' \
    "a source location libpq cannot parse: exit 2" \
    p11ca registry migrate --from "postgresql:host=$PG_SOCK password=s3cret word" \
    --to "sqlite:$TT/t1.db"
cat "$TT/out" "$TT/err" >"$TT/both"
assert_no_grep 's3cret|word' "$TT/both" "... showing no part of the password"
assert_eq "$(ls "$TT"/t1.db* 2>/dev/null)" "" "no target file was created by any of them"

# A source whose audit trail was edited: the check before the commit
# fails, and nothing stays in the target (one transaction).
cp "$D/registry.db" "$TT/edited.db"
sqlite3 "$TT/edited.db" "update audit set details = 'edited' where seq = 2"
pg_sql "CREATE DATABASE fresh" >/dev/null
FRESH="postgresql:host=$PG_SOCK user=p11ca dbname=fresh"
should_fail 4 'audit trail does not verify: audit entry 2 was modified; nothing was written' \
    "a source with an edited audit entry: refused before the commit (exit 4)" \
    p11ca registry migrate --from "sqlite:$TT/edited.db" --to "$FRESH"
assert_eq "$(psql -X -q -A -t -h "$PG_SOCK" -U p11ca -d fresh -c \
    'select (select count(*) from certs) + (select count(*) from audit) + (select count(*) from cas)')" \
    0 "... and the PostgreSQL target holds no row"
should_fail 4 'audit entry 2 was modified' "... into a new SQLite file too" \
    p11ca registry migrate --from "sqlite:$TT/edited.db" --to "sqlite:$TT/t3.db"
assert_eq "$(ls "$TT"/t3.db* 2>/dev/null)" "" "... which is removed again"
# The failed copy may leave its schema in "fresh", but no row: a retry with
# a good source is a copy into a new registry, not a refusal.
check "a retry into that PostgreSQL database (schema, no rows) is accepted" \
    p11ca registry migrate --from "sqlite:$D/registry.db" --to "$FRESH"
assert_eq "$(psql -X -q -A -t -h "$PG_SOCK" -U p11ca -d fresh -c \
    'select count(*) from certs')" "$(sqlite3 "$D/registry.db" 'select count(*) from certs')" \
    "... and copies every certificate"

# An unreachable server, with a password in the location.
should_fail 4 'target: registry postgresql:.*cannot connect' \
    "an unreachable PostgreSQL target: exit 4, naming where" \
    p11ca registry migrate --from "sqlite:$D/registry.db" \
    --to "postgresql://p11ca:pw-4711-secret@/p11ca?host=$TT/nowhere"
cat "$TT/out" "$TT/err" >"$TT/both"
assert_no_grep 'pw-4711-secret' "$TT/both" "... and the password is not shown"
should_fail 4 'source: registry postgresql:.*cannot connect' \
    "an unreachable PostgreSQL source: exit 4" \
    p11ca registry migrate \
    --from "postgresql://p11ca:pw-4711-secret@/p11ca?host=$TT/nowhere" \
    --to "sqlite:$TT/t2.db"
cat "$TT/out" "$TT/err" >"$TT/both"
assert_no_grep 'pw-4711-secret' "$TT/both" "... and the password is not shown"
assert_eq "$(ls "$TT"/t2.db* 2>/dev/null)" "" "... and no target file was created"

# While it runs, the command line that ps shows holds no password: a
# server of our own that answers nothing keeps the command waiting once
# it has read its options.
if command -v python3 >/dev/null 2>&1; then
    # In PostgreSQL's own short directory: a socket's path has at most 107
    # bytes, and $TT can be longer.
    FK=$PG_DIR/fk
    mkdir "$FK"
    python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
c, _ = s.accept()
open(sys.argv[2], "w").close()
time.sleep(600)
' "$FK/.s.PGSQL.5432" "$FK/connected" &
    FAKE=$!
    wait_for 60 test -S "$FK/.s.PGSQL.5432" || diag "the fake server did not listen"
    "$top_builddir/src/p11ca" registry migrate --to "sqlite:$TT/t5.db" \
        --from "postgresql://p11ca:pw-4711-secret@/p11ca?host=$FK&port=5432" \
        >"$TT/out5" 2>&1 &
    MIG=$!
    if wait_for 60 test -e "$FK/connected"; then
        tr '\0' ' ' <"/proc/$MIG/cmdline" >"$TT/cmdline"
        assert_grep 'host=.*/fk' "$TT/cmdline" "a migrate waiting on its source: its command line is there"
        assert_no_grep 'pw-4711-secret' "$TT/cmdline" "... without the password (ps shows none)"
    else
        not_ok "the migrate never connected to the fake server"
        diag "$(cat "$TT/out5")"
        not_ok "... (no command line to check)"
    fi
    kill "$MIG" "$FAKE" 2>/dev/null
    wait "$MIG" "$FAKE" 2>/dev/null
else
    skip "the command line while it runs: python3 is not installed"
    skip "... without the password"
fi
assert_eq "$(db_sum "$D/registry.db")" "$SUM" "the first source never changed"
done_testing
