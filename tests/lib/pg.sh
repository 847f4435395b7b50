# SPDX-License-Identifier: Apache-2.0
# A throw-away PostgreSQL server for one test: initdb into a temporary
# directory as an unprivileged user, listening only on a Unix socket in that
# directory, stopped and removed at exit.  Source after tap.sh (or
# token.sh); skips the test when the server programs are not installed.
# shellcheck shell=sh
#
# pg_start sets: PG_DIR (the server's directory), PG_SOCK (its socket
# directory), PG_CONNINFO (libpq keywords of the test database "p11ca",
# user "p11ca", trust authentication), PG_LOC ("postgresql:" PG_CONNINFO);
# pg_sql SQL runs SQL there as the superuser p11ca and prints the rows.
# PG_HBA_PREPEND (optional, before pg_start): pg_hba.conf lines that come
# before the default "trust", e.g. password authentication for some roles.

: "${PG_BINDIR:=}"
if [ -z "$PG_BINDIR" ] || [ ! -x "$PG_BINDIR/initdb" ]; then
    PG_BINDIR=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin \
        2>/dev/null | sort -V | tail -n 1)
fi

# pg_user: who runs the server (initdb and postgres refuse root).
pg_user() {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    else
        echo nobody
    fi
}

# pg_as CMD...: run a server program as pg_user.
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$(pg_user)" -- "$@"
    else
        "$@"
    fi
}

pg_stop() {
    [ -n "${PG_DIR:-}" ] || return 0
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}

pg_start() {
    if [ -z "$PG_BINDIR" ] || [ ! -x "$PG_BINDIR/initdb" ] ||
        ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
        plan_skip "PostgreSQL is not installed (Debian: postgresql)"
    fi
    if [ "$(id -u)" -eq 0 ] && ! command -v runuser >/dev/null; then
        plan_skip "runuser is missing: cannot run PostgreSQL as a user"
    fi
    # Not under $TT: the server's user must reach it, and root's 0700
    # temporary directory would stop it.
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-pg.XXXXXX")
    PG_SOCK=$PG_DIR/run
    mkdir -p "$PG_SOCK"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$(pg_user)" "$PG_DIR"
    fi
    # shellcheck disable=SC2064 # $TT is fixed by now
    trap "pg_stop; rm -rf '${TT:-}'" EXIT
    if ! pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U p11ca \
        --auth=trust --no-sync --locale=C -E UTF8 >"$PG_DIR/initdb.log" 2>&1; then
        diag "$(cat "$PG_DIR/initdb.log")"
        echo "Bail out! initdb failed"
        exit 1
    fi
    if [ -n "${PG_HBA_PREPEND:-}" ]; then
        { printf '%s\n' "$PG_HBA_PREPEND"; cat "$PG_DIR/data/pg_hba.conf"; } \
            >"$PG_DIR/hba.tmp" && cat "$PG_DIR/hba.tmp" >"$PG_DIR/data/pg_hba.conf"
    fi
    # No TCP port: only the socket in our directory.  fsync off: a test's
    # database need not survive a power cut.
    if ! pg_server_start 2>/dev/null; then
        diag "$(cat "$PG_DIR/server.log" 2>/dev/null)"
        echo "Bail out! the PostgreSQL test server did not start"
        exit 1
    fi
    psql -X -q -h "$PG_SOCK" -U p11ca -d postgres -c 'CREATE DATABASE p11ca' \
        >/dev/null || { echo "Bail out! CREATE DATABASE failed"; exit 1; }
    PG_CONNINFO="host=$PG_SOCK user=p11ca dbname=p11ca"
    PG_LOC="postgresql:$PG_CONNINFO"
    export PG_CONNINFO PG_LOC PG_SOCK PG_DIR
}

# pg_server_stop / pg_server_start: the server down and up again (the
# data stays), waiting until it is stopped or answers.
pg_server_stop() {
    pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}
pg_server_start() {
    pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" \
        -o "-c listen_addresses= -c unix_socket_directories=$PG_SOCK -c fsync=off" \
        -w start >/dev/null && pg_isready -q -h "$PG_SOCK" -U p11ca -d postgres
}

pg_sql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -U p11ca -d p11ca -c "$1"
}
