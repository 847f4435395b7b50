/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite backend: connection settings, busy handling, migrations,
 * transactions, every SQL statement, CAs, CRL numbers, the audit table and
 * its signed heads. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry/schema.h"
#include "registry/sqlite_int.h"

/* How long a writer waits for another process's transaction to end. */
#define SQ_BUSY_TIMEOUT_MS 30000

/* All SQL of the backend except the search, whose WHERE is built from
 * fixed fragments in sqlite_certs.c.  Values are always bound. */
static const char *const sq_sql[SQ_N] = {
    [SQ_CERT_INSERT] =
        "INSERT INTO certs (" SQ_CERT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
        "?20)",
    [SQ_CERT_GET] = "SELECT " SQ_CERT_COLS " FROM certs WHERE " SQ_CERT_KEY,
    [SQ_CERT_SET_STATUS] = "UPDATE certs SET status = ?3, revoked_at = ?4, "
                           "reason = ?5, invalidity = ?6 WHERE " SQ_CERT_KEY,
    [SQ_CERT_DELETE] = "DELETE FROM certs WHERE " SQ_CERT_KEY,
    [SQ_CERT_SET_REPLACES] =
        "UPDATE certs SET replaces = ?3 WHERE " SQ_CERT_KEY,
    [SQ_CERT_SET_REVOKE_AFTER] =
        "UPDATE certs SET revoke_after = ?3 WHERE " SQ_CERT_KEY,
    [SQ_CLIENT_ID_ACTIVE] =
        "SELECT 1 FROM certs WHERE client_id = ?3 AND status = 'activated' "
        "AND NOT (" SQ_CERT_KEY ") LIMIT 1",
    [SQ_HISTORY_ADD] =
        "INSERT INTO status_history (cert_id, at, from_status, to_status, "
        "actor, reason) SELECT id, ?3, ?4, ?5, ?6, ?7 FROM certs "
        "WHERE " SQ_CERT_KEY,
    [SQ_HISTORY_LIST] =
        "SELECT h.at, h.from_status, h.to_status, h.actor, h.reason "
        "FROM status_history h WHERE h.cert_id = "
        "(SELECT id FROM certs WHERE " SQ_CERT_KEY ") ORDER BY h.id",
    /* INDEXED BY: rows come in order from the partial index, no sort, so
     * the list streams; SQLite refuses the statement if it cannot. */
    [SQ_REVOKED_LIST] =
        "SELECT serial, revoked_at, reason, invalidity "
        "FROM certs INDEXED BY certs_revoked_order "
        "WHERE status = 'revoked' AND (?1 = 0 OR ca_id = ?1) "
        "AND (?2 = 0 OR not_after >= ?2) ORDER BY length(serial), serial",
    [SQ_CRL_BUMP] = "INSERT INTO crl_numbers (ca_id, last) VALUES (?1, 1) "
                    "ON CONFLICT (ca_id) DO UPDATE SET last = last + 1",
    [SQ_CRL_GET] = "SELECT last FROM crl_numbers WHERE ca_id = ?1",
    /* Ours wins: a CA registered as external that turns out to be this
     * registry's own stops being external. */
    [SQ_CA_INSERT] = "INSERT INTO cas (name, subject, der, added_at, external) "
                     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (der) DO UPDATE "
                     "SET external = 0 WHERE excluded.external = 0",
    [SQ_CA_FIND] = "SELECT id FROM cas WHERE der = ?1",
    [SQ_CA_LIST] = "SELECT id, name, subject, der, external, auto_register, "
                   "auto_status FROM cas ORDER BY id",
    [SQ_CA_SET_AUTO] = "UPDATE cas SET auto_register = ?2, auto_status = ?3 "
                       "WHERE id = ?1",
    [SQ_AUDIT_APPEND] =
        "INSERT INTO audit (seq, at, actor, action, object, details, "
        "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [SQ_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [SQ_AUDIT_LIST] = "SELECT seq, at, actor, action, object, details, "
                      "prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq",
    [SQ_HEAD_ADD] = "INSERT INTO audit_heads (seq, hash, at, ca_id, signed) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_HEAD_LIST] = "SELECT id, seq, hash, at, ca_id, signed FROM audit_heads "
                     "WHERE ?1 = 0 OR ca_id = ?1 ORDER BY id",
    [SQ_HEAD_LIST_DESC] = "SELECT id, seq, hash, at, ca_id, signed "
                          "FROM audit_heads WHERE ?1 = 0 OR ca_id = ?1 "
                          "ORDER BY id DESC",
    [SQ_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_version",
    [SQ_CODE_INSERT] =
        "INSERT INTO enroll_codes (hash, profile, client_id, subject, "
        "created_at, created_by, expires, ca_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* One statement decides: of two users of a code, one changes the row. */
    [SQ_CODE_TAKE] = "UPDATE enroll_codes SET used_at = ?2 WHERE hash = ?1 "
                     "AND ca_id = ?3 AND used_at IS NULL AND expires > ?2 "
                     "RETURNING id, profile, client_id, subject, expires",
    [SQ_CODE_ISSUED] = "UPDATE enroll_codes SET used_by = ?2 WHERE id = ?1 "
                       "AND ca_id = ?3 AND used_at IS NOT NULL "
                       "AND used_by IS NULL",
    [SQ_CODE_RELEASE] = "UPDATE enroll_codes SET used_at = NULL "
                        "WHERE id = ?1 AND used_by IS NULL",
    [SQ_CODE_GIVEN] = "SELECT id, profile, client_id, subject, expires, "
                      "used_by FROM enroll_codes WHERE hash = ?1 "
                      "AND ca_id = ?3 AND used_by IS NOT NULL "
                      "AND expires > ?2",
};

static int64_t sq_clock_ms(void);
static void sq_backoff(unsigned attempt);
static bool sq_is_busy(int rc);
static int sq_exec_retry(struct sqldb *d, const char *sql, const char *what);
static int sq_query_int(struct sqldb *d, const char *sql, int64_t *v);
static int sq_journal_wal(struct sqldb *d);
static int sq_settings(struct sqldb *d);
static int sq_read_version(struct sqldb *d, int *version);
static int sq_apply(struct sqldb *d, const struct reg_migration *m);
static int sq_migrate(struct sqldb *d);
static int sq_migrate_locked(struct sqldb *d);
static int sq_check_schema(struct sqldb *d, unsigned flags);
static int sq_ro_hint(struct sqldb *d);
static int sq_open_err(struct sqldb *d, const char *location, unsigned flags);
static int sq_open(const char *location, unsigned flags, void **db);
static void sq_close(void *db);
static int sq_schema_version(void *db);
static int sq_begin(void *db, bool write);
static int sq_commit(void *db);
static void sq_rollback(void *db);
static int sq_crl_number_next(void *db, int64_t ca_id, uint64_t *n);
static int sq_crl_number_last(void *db, int64_t ca_id, uint64_t *n);
static int sq_ca_add(void *db, const unsigned char *der, size_t len,
                     const char *name, const char *subject, bool external,
                     int64_t *id);
static int sq_ca_list(void *db, reg_ca_cb cb, void *arg);
static int sq_ca_set_auto(void *db, int64_t id, bool on, reg_status st);
static int sq_audit_append(void *db, const reg_audit *a);
static int sq_audit_last(void *db, int64_t *seq, char *hash, size_t hashlen);
static int sq_audit_list(void *db, int64_t since_seq, reg_audit_cb cb,
                         void *arg);
static int sq_head_add(void *db, const reg_audit_head *h);
static int sq_head_list(void *db, int64_t ca_id, bool newest_first,
                        reg_audit_head_cb cb, void *arg);

/* ------------------------------------------------------------------ */
/* Helpers shared with sqlite_certs.c                                  */
/* ------------------------------------------------------------------ */

int sq_err(struct sqldb *d, const char *what)
{
    return p11ca_err_set(P11CA_E_REGISTRY, "registry %s: %s: %s", d->path, what,
                         sqlite3_errmsg(d->db));
}

int sq_stmt(struct sqldb *d, enum sq_stmt id, sqlite3_stmt **st)
{
    *st = NULL;
    if (!d->st[id]
        && sqlite3_prepare_v3(d->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                              &d->st[id], NULL)
               != SQLITE_OK)
        return sq_err(d, "prepare");
    *st = d->st[id];
    return 0;
}

void sq_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int sq_bind_text(struct sqldb *d, sqlite3_stmt *st, int idx, const char *s)
{
    int rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT)
               : sqlite3_bind_null(st, idx);

    return rc == SQLITE_OK ? 0 : sq_err(d, "bind");
}

int sq_step_done(struct sqldb *d, sqlite3_stmt *st, const char *what)
{
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_err(d, what);
}

int sq_col_strdup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *s = sqlite3_column_text(st, i);

    *out = NULL;
    if (!s)
        return sqlite3_column_type(st, i) == SQLITE_NULL
                   ? 0
                   : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    *out = strdup((const char *)s);
    return *out ? 0 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ */
/* Busy handling                                                       */
/* ------------------------------------------------------------------ */

static int64_t sq_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep 1..32 ms, growing with @attempt, jittered (by pid and clock, so
 * forked processes differ) so that processes that collided do not retry
 * in lock step. */
static void sq_backoff(unsigned attempt)
{
    unsigned max_ms = attempt < 5 ? 1u << attempt : 32;
    struct timespec ts = {0, 0};
    uint32_t mix;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    mix = ((uint32_t)getpid() * 2654435761u) ^ (uint32_t)ts.tv_nsec;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(1 + mix % max_ms) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool sq_is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/*
 * Run @sql, retrying while the database is busy.  The busy timeout covers
 * most waits, but SQLite returns SQLITE_BUSY without calling the handler in
 * some cases (WAL recovery by another process, a journal-mode change, a
 * lock cycle), so BEGIN IMMEDIATE and the journal-mode switch loop here
 * until the same 30 s deadline.
 */
static int sq_exec_retry(struct sqldb *d, const char *sql, const char *what)
{
    int64_t deadline = sq_clock_ms() + SQ_BUSY_TIMEOUT_MS;
    unsigned attempt = 0;
    int rc;

    for (;;) {
        rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
        if (!sq_is_busy(rc) || sq_clock_ms() >= deadline)
            break;
        sq_backoff(attempt++);
    }
    return rc == SQLITE_OK ? 0 : sq_err(d, what);
}

/* A one-row, one-column integer query (not cached: used at open).  Like
 * sq_exec_retry, it waits out an SQLITE_BUSY that came without the busy
 * handler (another process recovering the WAL, switching modes). */
static int sq_query_int(struct sqldb *d, const char *sql, int64_t *v)
{
    int64_t deadline = sq_clock_ms() + SQ_BUSY_TIMEOUT_MS;
    sqlite3_stmt *st = NULL;
    unsigned attempt = 0;
    int rc;

    for (;;) {
        rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            *v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (!sq_is_busy(rc) || sq_clock_ms() >= deadline)
            break;
        sq_backoff(attempt++);
    }
    return rc == SQLITE_ROW ? 0 : sq_err(d, "read the schema version");
}

/* ------------------------------------------------------------------ */
/* Opening and migrations                                              */
/* ------------------------------------------------------------------ */

/* WAL lets readers run beside the one writer; the mode is stored in the
 * file, so switching is needed once, but several processes may race. */
static int sq_journal_wal(struct sqldb *d)
{
    int64_t deadline = sq_clock_ms() + SQ_BUSY_TIMEOUT_MS;
    sqlite3_stmt *st = NULL;
    char mode[16] = "";
    unsigned attempt = 0;
    int rc;

    for (;;) {
        rc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode = WAL", -1, &st,
                                NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            snprintf(mode, sizeof(mode), "%s",
                     sqlite3_column_text(st, 0)
                         ? (const char *)sqlite3_column_text(st, 0)
                         : "");
        sqlite3_finalize(st);
        st = NULL;
        if (!sq_is_busy(rc) || sq_clock_ms() >= deadline)
            break;
        sq_backoff(attempt++);
    }
    if (rc != SQLITE_ROW)
        return sq_err(d, "PRAGMA journal_mode = WAL");
    if (strcmp(mode, "wal") != 0 && strcmp(d->path, ":memory:") != 0)
        return p11ca_err_set(
            P11CA_E_REGISTRY,
            "registry %s: cannot use WAL mode (journal mode is \"%s\")",
            d->path, mode);
    return 0;
}

/* Per-connection settings (see reg_open in registry.h). */
static int sq_settings(struct sqldb *d)
{
    int rc;

    if ((rc = sq_journal_wal(d)))
        return rc;
    return sq_exec_retry(d,
                         "PRAGMA synchronous = FULL; "
                         "PRAGMA foreign_keys = ON; "
                         "PRAGMA secure_delete = ON",
                         "connection settings");
}

/* 0 for a new database (no schema_version table yet). */
static int sq_read_version(struct sqldb *d, int *version)
{
    int64_t v = 0;
    int rc;

    *version = 0;
    rc = sq_query_int(d,
                      "SELECT count(*) FROM sqlite_master WHERE "
                      "type = 'table' AND name = 'schema_version'",
                      &v);
    if (rc || v == 0)
        return rc;
    if ((rc = sq_query_int(d, sq_sql[SQ_VERSION], &v)))
        return rc;
    *version = (int)v;
    return 0;
}

static int sq_apply(struct sqldb *d, const struct reg_migration *m)
{
    sqlite3_stmt *st = NULL;
    char what[96];
    int rc = P11CA_E_REGISTRY;

    snprintf(what, sizeof(what), "schema migration %s", m->name);
    if (sqlite3_exec(d->db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
        sq_err(d, what);
        goto out;
    }
    if (sqlite3_prepare_v2(d->db,
                           "INSERT INTO schema_version (version, name, "
                           "applied_at) VALUES (?1, ?2, ?3)",
                           -1, &st, NULL)
            != SQLITE_OK
        || sqlite3_bind_int(st, 1, m->version) != SQLITE_OK
        || sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(st, 3, reg_now()) != SQLITE_OK) {
        sq_err(d, what);
        goto out;
    }
    rc = sq_step_done(d, st, what);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Under the write lock: check again (another process may have migrated
 * while we waited), then apply what is missing, in order. */
static int sq_migrate_locked(struct sqldb *d)
{
    int have = 0, rc;

    rc = sq_exec_retry(d,
                       "CREATE TABLE IF NOT EXISTS schema_version ("
                       "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                       "applied_at INTEGER NOT NULL)",
                       "create schema_version");
    if (rc || (rc = sq_read_version(d, &have)))
        return rc;
    for (size_t i = 0; i < reg_sqlite_migrations_n; i++) {
        const struct reg_migration *m = &reg_sqlite_migrations[i];

        if (m->version <= have)
            continue;
        if (m->version != have + 1)
            return p11ca_err_set(
                P11CA_E_INTERNAL,
                "schema migration %s does not follow version %d", m->name,
                have);
        if ((rc = sq_apply(d, m)))
            return rc;
        have = m->version;
    }
    return 0;
}

/* Bring the schema to the newest version, all of it in one transaction. */
static int sq_migrate(struct sqldb *d)
{
    int want = reg_sqlite_migrations[reg_sqlite_migrations_n - 1].version;
    int have = 0, rc;

    if ((rc = sq_read_version(d, &have)))
        return rc;
    if (have > want)
        return p11ca_err_set(
            P11CA_E_REGISTRY,
            "registry %s: schema version %d is newer than this p11ca knows (%d)",
            d->path, have, want);
    if (have == want)
        return 0;
    if ((rc = sq_exec_retry(d, "BEGIN IMMEDIATE", "begin migration")))
        return rc;
    rc = sq_migrate_locked(d);
    if (!rc)
        rc = sq_exec_retry(d, "COMMIT", "commit migration");
    if (rc && !sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sq_close(void *db)
{
    struct sqldb *d = db;

    if (!d)
        return;
    for (int i = 0; i < SQ_N; i++)
        sqlite3_finalize(d->st[i]);
    sqlite3_finalize(d->row_ins);
    sqlite3_close_v2(d->db);
    free(d->path);
    free(d);
}

static int sq_ro_hint(struct sqldb *d);

/*
 * A registry opened without REG_OPEN_CREATE must be one already: a schema
 * and an audit trail (`ca init` leaves its first entry: a registry without
 * any is empty, whatever its tables), at this p11ca's version or one it
 * migrates (not read-only: a read-only open never migrates, and says so).
 * A read that SQLite refuses to a read-only connection gets the hint of
 * sq_ro_hint.
 */
static int sq_check_schema(struct sqldb *d, unsigned flags)
{
    int want = reg_sqlite_migrations[reg_sqlite_migrations_n - 1].version;
    bool ro = (flags & REG_OPEN_READONLY) != 0;
    int64_t entries = 0;
    int have = 0, rc;

    if ((rc = sq_read_version(d, &have)))
        return ro && rc == P11CA_E_REGISTRY ? sq_ro_hint(d) : rc;
    if (have == 0 && !(flags & REG_OPEN_CREATE))
        return p11ca_err_set(
            P11CA_E_NOTFOUND,
            "registry %s is empty (it holds no registry tables)", d->path);
    if (have < want && ro)
        return p11ca_err_set(
            P11CA_E_REGISTRY,
            "registry %s has schema version %d, older than this p11ca's (%d): a command that only reads does not migrate it. Migrate it first, as the registry's owner, with a command that writes: p11ca audit sign (which an upgraded registry needs anyway)",
            d->path, have, want);
    if (!(flags & REG_OPEN_CREATE)
        && (rc = sq_query_int(d,
                              "SELECT count(*) FROM "
                              "(SELECT 1 FROM audit LIMIT 1)",
                              &entries)))
        return ro && rc == P11CA_E_REGISTRY ? sq_ro_hint(d) : rc;
    if (!(flags & REG_OPEN_CREATE) && entries == 0)
        return p11ca_err_set(
            P11CA_E_NOTFOUND,
            "registry %s is empty (no audit entry, not even ca-init)", d->path);
    return 0;
}

/*
 * A read-only connection to a WAL database needs its -shm file, unless it
 * may create it: say so when it is missing (a registry restored with cp,
 * or last closed by an older p11ca that did not keep it).
 */
static int sq_ro_hint(struct sqldb *d)
{
    char shm[4096];

    snprintf(shm, sizeof(shm), "%s-shm", d->path);
    if (access(shm, F_OK) == 0 || errno != ENOENT)
        return P11CA_E_REGISTRY;
    return p11ca_err_set(
        P11CA_E_REGISTRY,
        "%s; reading it without write access to its directory needs %s (SQLite's WAL index): run one command that writes the registry (e.g. p11ca crl) as its owner, and p11ca keeps that file from then on",
        p11ca_err_message(), shm);
}

static int sq_open_err(struct sqldb *d, const char *location, unsigned flags)
{
    if (!d->db)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (!(flags & REG_OPEN_CREATE) && access(location, F_OK) != 0
        && errno == ENOENT)
        return p11ca_err_set(P11CA_E_NOTFOUND, "registry %s does not exist",
                             location);
    return sq_err(d, "open");
}

static int sq_open(const char *location, unsigned flags, void **db)
{
    struct sqldb *d = calloc(1, sizeof(*d));
    bool ro = (flags & REG_OPEN_READONLY) != 0;
    int oflags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    int persist = 1, rc = P11CA_E_NOMEM;

    *db = NULL;
    if (!d || !(d->path = strdup(location))) {
        p11ca_err_set(rc, "out of memory");
        goto out;
    }
    if ((flags & REG_OPEN_CREATE) && !ro)
        oflags |= SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(location, &d->db, oflags, NULL) != SQLITE_OK) {
        rc = sq_open_err(d, location, flags);
        goto out;
    }
    /* Before the first read: another process may be writing. */
    sqlite3_extended_result_codes(d->db, 1);
    sqlite3_busy_timeout(d->db, SQ_BUSY_TIMEOUT_MS);
    /*
     * Writers keep the WAL's -wal and -shm files when they close (SQLite's
     * persistent WAL): a read-only connection by a user who cannot write
     * the directory needs them to exist.
     */
    if (!ro)
        (void)sqlite3_file_control(d->db, "main", SQLITE_FCNTL_PERSIST_WAL,
                                   &persist);
    /* Read only: no journal-mode switch, no migration, nothing written.
     * Otherwise an existing registry is checked before the journal-mode
     * switch writes to the file. */
    if (ro || !(flags & REG_OPEN_CREATE))
        rc = sq_check_schema(d, flags);
    else
        rc = 0;
    if (!rc && !ro)
        rc = sq_settings(d);
    if (!rc && !ro)
        rc = sq_migrate(d);
    if (rc)
        goto out;
    LOG_DBG(REG, "registry %s opened %s", location,
            ro ? "read-only" : "for reading and writing");
    *db = d;
    d = NULL;
    rc = 0;
out:
    sq_close(d);
    return rc;
}

static int sq_schema_version(void *db)
{
    struct sqldb *d = db;
    int version = 0;
    int rc = sq_read_version(d, &version);

    return rc ? rc : version;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */
/* ------------------------------------------------------------------ */

/* A writer takes the lock at once (IMMEDIATE): a deferred transaction
 * that upgrades later can fail with SQLITE_BUSY_SNAPSHOT, unrecoverable
 * without starting over. */
static int sq_begin(void *db, bool write)
{
    struct sqldb *d = db;

    return sq_exec_retry(d, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED",
                         write ? "begin a write transaction"
                               : "begin a read transaction");
}

static int sq_commit(void *db)
{
    return sq_exec_retry(db, "COMMIT", "commit");
}

static void sq_rollback(void *db)
{
    struct sqldb *d = db;

    if (!sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* CRL numbers and CAs                                                 */
/* ------------------------------------------------------------------ */

static int sq_crl_number_next(void *db, int64_t ca_id, uint64_t *n)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_CRL_BUMP, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, ca_id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = sqlite3_extended_errcode(d->db) == SQLITE_CONSTRAINT_FOREIGNKEY
                 ? p11ca_err_set(P11CA_E_NOTFOUND, "no CA with id %lld",
                                 (long long)ca_id)
                 : sq_err(d, "next CRL number");
        goto out;
    }
    sq_done(st);
    if ((rc = sq_stmt(d, SQ_CRL_GET, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, ca_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = sq_err(d, "read the CRL number");
        goto out;
    }
    *n = (uint64_t)sqlite3_column_int64(st, 0);
out:
    sq_done(st);
    return rc;
}

static int sq_crl_number_last(void *db, int64_t ca_id, uint64_t *n)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc, step;

    *n = 0;
    if ((rc = sq_stmt(d, SQ_CRL_GET, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, ca_id);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE)
        rc = sq_err(d, "read the CRL number");
out:
    sq_done(st);
    return rc;
}

static int sq_ca_add(void *db, const unsigned char *der, size_t len,
                     const char *name, const char *subject, bool external,
                     int64_t *id)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_CA_INSERT, &st))
        || (rc = sq_bind_text(d, st, 1, name))
        || (rc = sq_bind_text(d, st, 2, subject)))
        goto out;
    sqlite3_bind_blob64(st, 3, der, len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, reg_now());
    sqlite3_bind_int(st, 5, external ? 1 : 0);
    if ((rc = sq_step_done(d, st, "add a CA")))
        goto out;
    sq_done(st);
    /* Inserted or already there: the id is found the same way. */
    if ((rc = sq_stmt(d, SQ_CA_FIND, &st)))
        goto out;
    sqlite3_bind_blob64(st, 1, der, len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = sq_err(d, "find the CA");
        goto out;
    }
    *id = sqlite3_column_int64(st, 0);
out:
    sq_done(st);
    return rc;
}

static int sq_ca_list(void *db, reg_ca_cb cb, void *arg)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    reg_ca ca;
    int rc, step;

    if ((rc = sq_stmt(d, SQ_CA_LIST, &st)))
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ca = (reg_ca){
            .id = sqlite3_column_int64(st, 0),
            .name = (const char *)sqlite3_column_text(st, 1),
            .subject = (const char *)sqlite3_column_text(st, 2),
            .der = sqlite3_column_blob(st, 3),
            .der_len = (size_t)sqlite3_column_bytes(st, 3),
            .external = sqlite3_column_int(st, 4) != 0,
            .auto_register = sqlite3_column_int(st, 5) != 0,
            .auto_status = REG_REGISTERED_NOT_ACTIVATED,
        };
        if (sqlite3_column_text(st, 6)
            && reg_status_parse((const char *)sqlite3_column_text(st, 6),
                                &ca.auto_status)
                   != 0) {
            rc = p11ca_err_set(P11CA_E_REGISTRY,
                               "registry %s: CA %lld has a bad auto_status",
                               d->path, (long long)ca.id);
            goto out;
        }
        if ((rc = cb(&ca, arg)))
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, "list CAs");
out:
    sq_done(st);
    return rc;
}

static int sq_ca_set_auto(void *db, int64_t id, bool on, reg_status st)
{
    struct sqldb *d = db;
    sqlite3_stmt *st_ = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_CA_SET_AUTO, &st_)))
        goto out;
    sqlite3_bind_int64(st_, 1, id);
    sqlite3_bind_int(st_, 2, on ? 1 : 0);
    if ((rc = sq_bind_text(d, st_, 3, reg_status_name(st)))
        || (rc = sq_step_done(d, st_, "set a CA's auto-registration")))
        goto out;
    if (sqlite3_changes(d->db) == 0)
        rc = p11ca_err_set(P11CA_E_NOTFOUND, "no CA with id %lld",
                           (long long)id);
out:
    sq_done(st_);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Audit table (the chain itself is audit.c's)                         */
/* ------------------------------------------------------------------ */

static int sq_audit_append(void *db, const reg_audit *a)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_AUDIT_APPEND, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, a->seq);
    sqlite3_bind_int64(st, 2, a->at);
    if ((rc = sq_bind_text(d, st, 3, a->actor))
        || (rc = sq_bind_text(d, st, 4, a->action))
        || (rc = sq_bind_text(d, st, 5, a->object))
        || (rc = sq_bind_text(d, st, 6, a->details))
        || (rc = sq_bind_text(d, st, 7, a->prev_hash))
        || (rc = sq_bind_text(d, st, 8, a->hash)))
        goto out;
    rc = sq_step_done(d, st, "append an audit entry");
out:
    sq_done(st);
    return rc;
}

/* The newest entry; seq 0 and "" when there is none. */
static int sq_audit_last(void *db, int64_t *seq, char *hash, size_t hashlen)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc, step;

    *seq = 0;
    hash[0] = '\0';
    if ((rc = sq_stmt(d, SQ_AUDIT_LAST, &st)))
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        snprintf(hash, hashlen, "%s",
                 sqlite3_column_text(st, 1)
                     ? (const char *)sqlite3_column_text(st, 1)
                     : "");
    } else if (step != SQLITE_DONE) {
        rc = sq_err(d, "read the last audit entry");
    }
out:
    sq_done(st);
    return rc;
}

static int sq_audit_list(void *db, int64_t since_seq, reg_audit_cb cb,
                         void *arg)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    reg_audit a;
    int rc, step;

    if ((rc = sq_stmt(d, SQ_AUDIT_LIST, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, since_seq);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        a = (reg_audit){
            .seq = sqlite3_column_int64(st, 0),
            .at = sqlite3_column_int64(st, 1),
            .actor = (const char *)sqlite3_column_text(st, 2),
            .action = (const char *)sqlite3_column_text(st, 3),
            .object = (const char *)sqlite3_column_text(st, 4),
            .details = (const char *)sqlite3_column_text(st, 5),
            .prev_hash = (const char *)sqlite3_column_text(st, 6),
            .hash = (const char *)sqlite3_column_text(st, 7),
        };
        if ((rc = cb(&a, arg)))
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, "list the audit trail");
out:
    sq_done(st);
    return rc;
}

static int sq_head_add(void *db, const reg_audit_head *h)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_HEAD_ADD, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, h->seq);
    sqlite3_bind_int64(st, 3, h->at);
    if (h->ca_id > 0)
        sqlite3_bind_int64(st, 4, h->ca_id);
    if ((rc = sq_bind_text(d, st, 2, h->hash)))
        goto out;
    if (sqlite3_bind_blob(st, 5, h->der, (int)h->der_len, SQLITE_TRANSIENT)
        != SQLITE_OK) {
        rc = sq_err(d, "bind");
        goto out;
    }
    rc = sq_step_done(d, st, "store a signed audit head");
out:
    sq_done(st);
    return rc;
}

static int sq_head_list(void *db, int64_t ca_id, bool newest_first,
                        reg_audit_head_cb cb, void *arg)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    reg_audit_head h;
    int rc, step;

    if ((rc = sq_stmt(d, newest_first ? SQ_HEAD_LIST_DESC : SQ_HEAD_LIST, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, ca_id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        h = (reg_audit_head){
            .id = sqlite3_column_int64(st, 0),
            .seq = sqlite3_column_int64(st, 1),
            .hash = (const char *)sqlite3_column_text(st, 2),
            .at = sqlite3_column_int64(st, 3),
            .ca_id = sqlite3_column_int64(st, 4),
            .der = sqlite3_column_blob(st, 5),
            .der_len = (size_t)sqlite3_column_bytes(st, 5),
        };
        if ((rc = cb(&h, arg)))
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, "list the signed audit heads");
out:
    sq_done(st);
    return rc;
}

const struct reg_backend reg_backend_sqlite = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .cert_insert = sq_cert_insert,
    .cert_get = sq_cert_get,
    .cert_set_status = sq_cert_set_status,
    .cert_delete = sq_cert_delete,
    .cert_set_replaces = sq_cert_set_replaces,
    .cert_set_revoke_after = sq_cert_set_revoke_after,
    .cert_search = sq_cert_search,
    .cert_count = sq_cert_count,
    .client_id_active = sq_client_id_active,
    .history_add = sq_history_add,
    .history_list = sq_history_list,
    .revoked_list = sq_revoked_list,
    .crl_number_next = sq_crl_number_next,
    .crl_number_last = sq_crl_number_last,
    .ca_add = sq_ca_add,
    .ca_list = sq_ca_list,
    .ca_set_auto = sq_ca_set_auto,
    .code_insert = sq_code_insert,
    .code_take = sq_code_take,
    .code_issued = sq_code_issued,
    .code_release = sq_code_release,
    .code_given = sq_code_given,
    .rows_walk = sq_rows_walk,
    .row_insert = sq_row_insert,
    .rows_count = sq_rows_count,
    .audit_append = sq_audit_append,
    .audit_last = sq_audit_last,
    .audit_list = sq_audit_list,
    .head_add = sq_head_add,
    .head_list = sq_head_list,
};
