/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend (libpq): connecting and reconnecting, locations
 * shown without passwords, error classes, migrations, transactions, every
 * fixed SQL statement, CAs, CRL numbers, the audit table and its heads. */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "registry/pg_int.h"
#include "registry/schema.h"

/* Writers take this transaction-level advisory lock ("p11c", 1) first:
 * the audit chain is one sequence, so write transactions are serialised
 * (as SQLite's BEGIN IMMEDIATE does), and each one reads what the ones
 * before it committed (READ COMMITTED after the lock).  Migrations take
 * ("p11c", 2). */
#define PG_LOCK_CLASS   "1882272099"
#define PG_LOCK_WRITE   "SELECT pg_advisory_xact_lock(" PG_LOCK_CLASS ", 1)"
#define PG_LOCK_MIGRATE "SELECT pg_advisory_xact_lock(" PG_LOCK_CLASS ", 2)"

/* A server that does not answer within this many seconds is unreachable
 * (unless the location sets connect_timeout itself). */
#define PG_CONNECT_TIMEOUT_S "10"

/* How long a shown location or a server message may be in a message. */
#define PG_SHOWN_MAX 512

/* The database server's clock in milliseconds, and a sign-up bucket's
 * tokens now ($2 a second, at most $3). */
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define PG_REFILLED                                                            \
    "least($3::float8, b.tokens + $2::float8 * greatest(0, " PG_NOW_MS         \
    " - b.at_ms) / 1000.0)"

/* All fixed SQL of the backend; the search's is built from fixed
 * fragments in pg_certs.c.  Values are always parameters. */
static const char *const pg_sql[PG_N] = {
    [PG_CERT_INSERT] =
        "INSERT INTO certs (" PG_CERT_COLS ") VALUES ($1, $2, $3, $4, $5, "
        "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
        "$20)",
    [PG_CERT_GET] = "SELECT " PG_CERT_COLS " FROM certs WHERE " PG_CERT_KEY,
    [PG_CERT_SET_STATUS] = "UPDATE certs SET status = $3, revoked_at = $4, "
                           "reason = $5, invalidity = $6 WHERE " PG_CERT_KEY,
    [PG_CERT_DELETE] = "DELETE FROM certs WHERE " PG_CERT_KEY,
    [PG_CERT_SET_REPLACES] =
        "UPDATE certs SET replaces = $3 WHERE " PG_CERT_KEY,
    [PG_CERT_SET_REVOKE_AFTER] =
        "UPDATE certs SET revoke_after = $3 WHERE " PG_CERT_KEY,
    [PG_CLIENT_ID_ACTIVE] =
        "SELECT 1 FROM certs WHERE client_id = $3 AND status = 'activated' "
        "AND NOT (" PG_CERT_KEY ") LIMIT 1",
    [PG_HISTORY_ADD] =
        "INSERT INTO status_history (cert_id, at, from_status, to_status, "
        "actor, reason) SELECT id, $3::bigint, $4::text, $5::text, $6::text, "
        "$7::text FROM certs WHERE " PG_CERT_KEY,
    [PG_HISTORY_LIST] =
        "SELECT h.at, h.from_status, h.to_status, h.actor, h.reason "
        "FROM status_history h WHERE h.cert_id = "
        "(SELECT id FROM certs WHERE " PG_CERT_KEY ") ORDER BY h.id",
    [PG_REVOKED_LIST] =
        "SELECT serial, revoked_at, reason, invalidity FROM certs "
        "WHERE status = 'revoked' AND ($1::bigint = 0 OR ca_id = $1::bigint) "
        "AND ($2::bigint = 0 OR not_after >= $2::bigint) "
        "ORDER BY length(serial), serial",
    [PG_CRL_BUMP] = "INSERT INTO crl_numbers (ca_id, last) VALUES ($1, 1) "
                    "ON CONFLICT (ca_id) DO UPDATE "
                    "SET last = crl_numbers.last + 1 RETURNING last",
    [PG_CRL_GET] = "SELECT last FROM crl_numbers WHERE ca_id = $1",
    /* Ours wins: a CA registered as external that turns out to be this
     * registry's own stops being external. */
    [PG_CA_INSERT] = "INSERT INTO cas (name, subject, der, added_at, external) "
                     "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (der) DO UPDATE "
                     "SET external = 0 WHERE excluded.external = 0",
    [PG_CA_FIND] = "SELECT id FROM cas WHERE der = $1",
    [PG_CA_LIST] = "SELECT id, name, subject, der, external, auto_register, "
                   "auto_status FROM cas ORDER BY id",
    [PG_CA_SET_AUTO] = "UPDATE cas SET auto_register = $2, auto_status = $3 "
                       "WHERE id = $1",
    [PG_AUDIT_APPEND] =
        "INSERT INTO audit (seq, at, actor, action, object, details, "
        "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [PG_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [PG_AUDIT_LIST] = "SELECT seq, at, actor, action, object, details, "
                      "prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq",
    [PG_HEAD_ADD] = "INSERT INTO audit_heads (seq, hash, at, ca_id, signed) "
                    "VALUES ($1, $2, $3, $4, $5)",
    [PG_HEAD_LIST] = "SELECT id, seq, hash, at, ca_id, signed FROM audit_heads "
                     "WHERE $1::bigint = 0 OR ca_id = $1::bigint ORDER BY id",
    [PG_HEAD_LIST_DESC] =
        "SELECT id, seq, hash, at, ca_id, signed FROM audit_heads "
        "WHERE $1::bigint = 0 OR ca_id = $1::bigint ORDER BY id DESC",
    [PG_CODE_INSERT] =
        "INSERT INTO enroll_codes (hash, profile, client_id, subject, "
        "created_at, created_by, expires, ca_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint) RETURNING id",
    /* One statement decides: of two users of a code, one changes the row
     * (READ COMMITTED re-checks the WHERE on the row a concurrent UPDATE
     * changed). */
    [PG_CODE_TAKE] = "UPDATE enroll_codes SET used_at = $2::bigint "
                     "WHERE hash = $1 AND ca_id = $3::bigint "
                     "AND used_at IS NULL "
                     "AND expires > $2::bigint "
                     "RETURNING id, profile, client_id, subject, expires",
    [PG_CODE_ISSUED] = "UPDATE enroll_codes SET used_by = $2 WHERE id = $1 "
                       "AND ca_id = $3::bigint AND used_at IS NOT NULL "
                       "AND used_by IS NULL",
    [PG_CODE_RELEASE] = "UPDATE enroll_codes SET used_at = NULL "
                        "WHERE id = $1 AND used_by IS NULL",
    [PG_CODE_GIVEN] = "SELECT id, profile, client_id, subject, expires, "
                      "used_by FROM enroll_codes WHERE hash = $1 "
                      "AND ca_id = $3::bigint AND used_by IS NOT NULL "
                      "AND expires > $2::bigint",
    /* Sign-up buckets (schema 6): $1 the scope, $2 tokens a second, $3
     * the burst; the time is the database server's, in milliseconds.  One
     * conditional upsert takes a token (a new bucket is full): it locks
     * the row, so two nodes never both take the last one. */
    [PG_SIGNUP_TAKE] = "INSERT INTO signup_buckets AS b (scope, tokens, at_ms) "
                       "VALUES ($1, $3::float8 - 1, " PG_NOW_MS ") "
                       "ON CONFLICT (scope) DO UPDATE SET tokens = " PG_REFILLED
                       " - 1, at_ms = greatest(b.at_ms, " PG_NOW_MS
                       ") WHERE " PG_REFILLED " >= 1 "
                       "RETURNING b.tokens",
    [PG_SIGNUP_WAIT] = "SELECT " PG_REFILLED " FROM signup_buckets b "
                       "WHERE scope = $1",
    [PG_SIGNUP_REFUND] = "UPDATE signup_buckets b SET tokens = "
                         "least($2::float8, b.tokens + 1) WHERE scope = $1",
};

static bool pg_keyword(const char *word, size_t len);
static void pg_elide(const char *msg, char *out, size_t outlen);
static void pg_oneline(const char *msg, char *out, size_t outlen);
static bool pg_is_conninfo(const char *v);
static void pg_opts_free(PQconninfoOption *opts);
static int pg_shown(struct pgdb *d);
static int pg_session(struct pgdb *d);
static int pg_connect(struct pgdb *d);
static bool pg_idle_lost(struct pgdb *d);
static void pg_notice(void *arg, const char *message);
static int pg_ready(struct pgdb *d);
static int pg_exec(struct pgdb *d, const char *sql, const char *what);
static int pg_query_int(struct pgdb *d, const char *sql, const char *what,
                        int64_t *v);
static int pg_read_version(struct pgdb *d, int *version);
static int pg_apply(struct pgdb *d, const struct reg_migration *m);
static int pg_migrate_locked(struct pgdb *d);
static int pg_migrate(struct pgdb *d);
static int pg_check_schema(struct pgdb *d);
static int pg_open(const char *location, unsigned flags, void **db);
static void pg_close(void *db);
static int pg_schema_version(void *db);
static int pg_begin(void *db, bool write);
static int pg_commit(void *db);
static void pg_rollback(void *db);
static reg_fault pg_fault(void *db);
static int pg_crl_number_next(void *db, int64_t ca_id, uint64_t *n);
static int pg_crl_number_last(void *db, int64_t ca_id, uint64_t *n);
static int pg_ca_add(void *db, const unsigned char *der, size_t len,
                     const char *name, const char *subject, bool external,
                     int64_t *id);
static int pg_ca_list(void *db, reg_ca_cb cb, void *arg);
static int pg_ca_set_auto(void *db, int64_t id, bool on, reg_status st);
static int pg_audit_append(void *db, const reg_audit *a);
static int pg_audit_last(void *db, int64_t *seq, char *hash, size_t hashlen);
static int pg_audit_list(void *db, int64_t since_seq, reg_audit_cb cb,
                         void *arg);
static int pg_head_add(void *db, const reg_audit_head *h);
static int pg_head_list(void *db, int64_t ca_id, bool newest_first,
                        reg_audit_head_cb cb, void *arg);

/* ------------------------------------------------------------------ */
/* Parameters and cells                                                */
/* ------------------------------------------------------------------ */

void pg_p_text(struct pg_params *p, const char *s)
{
    if (p->n >= PG_MAX_PARAMS)
        return;
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

void pg_p_int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_MAX_PARAMS)
        return;
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
    pg_p_text(p, p->num[p->n]);
}

void pg_p_int0(struct pg_params *p, int64_t v)
{
    if (v)
        pg_p_int(p, v);
    else
        pg_p_text(p, NULL);
}

void pg_p_bytes(struct pg_params *p, const unsigned char *b, size_t len)
{
    if (p->n >= PG_MAX_PARAMS)
        return;
    /* A zero-length value must still not be NULL. */
    p->v[p->n] = b ? (const char *)b : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

int64_t pg_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col)
               ? 0
               : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int pg_strdup(const PGresult *res, int row, int col, char **out)
{
    *out = NULL;
    if (PQgetisnull(res, row, col))
        return 0;
    *out = strdup(PQgetvalue(res, row, col));
    return *out ? 0 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

int pg_bytes(const PGresult *res, int row, int col, unsigned char **out,
             size_t *len)
{
    *out = NULL;
    *len = 0;
    if (PQgetisnull(res, row, col))
        return 0;
    *out =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), len);
    return *out ? 0 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

int pg_status(struct pgdb *d, const PGresult *res, int row, int col,
              reg_status *out)
{
    const char *s = PQgetvalue(res, row, col);

    *out = REG_STATUS_ANY;
    if (PQgetisnull(res, row, col))
        return 0;
    for (int v = REG_ACTIVATED; v <= REG_REVOKED; v++) {
        if (strcmp(s, reg_status_name((reg_status)v)) == 0) {
            *out = (reg_status)v;
            return 0;
        }
    }
    return p11ca_err_set(
        P11CA_E_REGISTRY,
        "registry %s: unknown status \"%.40s\" in the database", d->shown, s);
}

long pg_changed(const PGresult *res)
{
    return strtol(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* ------------------------------------------------------------------ */
/* Messages: no password, one line                                     */
/* ------------------------------------------------------------------ */

/* Whether @word (@len bytes) is one of libpq's connection keywords. */
static bool pg_keyword(const char *word, size_t len)
{
    PQconninfoOption *opts = PQconndefaults();
    bool found = false;

    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strlen(o->keyword) == len && memcmp(o->keyword, word, len) == 0)
            found = true;
    PQconninfoFree(opts);
    return found;
}

/*
 * libpq's complaint about a connection string it could not parse quotes
 * the part it choked on, which may be a password ("missing \"=\" after
 * \"s3cret\""): keep a quoted word only when it is a keyword of libpq.
 */
static void pg_elide(const char *msg, char *out, size_t outlen)
{
    size_t o = 0;

    for (const char *p = msg; *p && o + 1 < outlen; p++) {
        const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;

        if (end && !pg_keyword(p + 1, (size_t)(end - p - 1))) {
            o += (size_t)snprintf(out + o, outlen - o, "\"...\"");
            p = end;
            continue;
        }
        out[o++] = *p == '\n' ? ' ' : *p;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
    while (o > 0 && o < outlen && out[o - 1] == ' ')
        out[--o] = '\0';
}

/* A server's message (several lines, a final newline) on one line. */
static void pg_oneline(const char *msg, char *out, size_t outlen)
{
    size_t o = 0;

    for (const char *p = msg ? msg : ""; *p && o + 1 < outlen; p++) {
        if (*p == '\n') {
            if (!p[1])
                break;
            o += (size_t)snprintf(out + o, outlen - o, "; ");
            continue;
        }
        out[o++] = *p;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

/* Whether libpq would take @v for a connection string (a '=', a URI). */
static bool pg_is_conninfo(const char *v)
{
    return strchr(v, '=') || strncmp(v, "postgresql://", 13) == 0
           || strncmp(v, "postgres://", 11) == 0;
}

/* PQconninfoFree, the values that may hold a password wiped first. */
static void pg_opts_free(PQconninfoOption *opts)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val
            && (strcmp(o->keyword, "password") == 0 || pg_is_conninfo(o->val)))
            OPENSSL_cleanse(o->val, strlen(o->val));
    PQconninfoFree(opts);
}

/*
 * reg_pg_shown (internal.h): "postgresql:" and the keywords that say where
 * the registry is (service, host, hostaddr, port, dbname, user), never a
 * password, whatever form the location had.  A location libpq cannot
 * parse is P11CA_E_INPUT, its message elided by pg_elide.
 */
int reg_pg_shown(const char *conninfo, char *out, size_t len)
{
    static const char *const keys[] = {"service", "host",   "hostaddr",
                                       "port",    "dbname", "user"};
    const size_t prefix = strlen("postgresql:");
    char why[PG_SHOWN_MAX];
    PQconninfoOption *opts = NULL;
    char *err = NULL;
    size_t used;

    snprintf(out, len, "postgresql:");
    used = strlen(out);
    opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        pg_elide(err ? err : "out of memory", why, sizeof(why));
        PQfreemem(err);
        return p11ca_err_set(
            P11CA_E_INPUT,
            "registry location: not a PostgreSQL connection string or URI: %s",
            why);
    }
    /* libpq expands the location's own dbname only: a connection string
     * in it would be taken for a database name, sent to the server and
     * quoted back in its messages, password and all. */
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "dbname") == 0 && o->val
            && pg_is_conninfo(o->val)) {
            pg_opts_free(opts);
            return p11ca_err_set(
                P11CA_E_INPUT,
                "registry location: its dbname is a connection string in turn (not shown: it may hold a password), which libpq would take for a database name: write its keywords in the location itself");
        }
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (strcmp(o->keyword, keys[k]) == 0 && o->val && *o->val
                && used < len)
                used += (size_t)snprintf(out + used, len - used, "%s%s=%s",
                                         used > prefix ? " " : "", o->keyword,
                                         pg_is_conninfo(o->val) ? "(not shown)"
                                                                : o->val);
    pg_opts_free(opts);
    if (used == prefix)
        snprintf(out + used, len - used, "(libpq defaults)");
    return 0;
}

bool reg_pg_has_password(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    bool found = false;

    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if ((strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            || (o->val && pg_is_conninfo(o->val)))
            found = true; /* a nested connection string: take it for one */
    pg_opts_free(opts);
    return found;
}

static int pg_shown(struct pgdb *d)
{
    char shown[PG_SHOWN_MAX];
    int rc = reg_pg_shown(d->conninfo, shown, sizeof(shown));

    if (rc)
        return rc;
    d->shown = strdup(shown);
    return d->shown ? 0 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

/* The fault class of SQLSTATE @state. */
static reg_fault pg_state_fault(const char *state)
{
    /* 08: connection exception; 57P01-03: the server is shutting down or
     * starting; 53300: too many connections. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0
        || strcmp(state, "53300") == 0)
        return REG_FAULT_UNREACHABLE;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return REG_FAULT_CONFLICT;
    return REG_FAULT_NONE;
}

const char *pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s ? s : "";
}

const char *pg_constraint(const PGresult *res)
{
    const char *s =
        res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;

    return s ? s : "";
}

int pg_fail(struct pgdb *d, const PGresult *res, const char *what)
{
    char msg[PG_SHOWN_MAX];
    const char *primary =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    pg_oneline(primary ? primary : PQerrorMessage(d->conn), msg, sizeof(msg));
    d->fault = pg_state_fault(pg_sqlstate(res));
    if (PQstatus(d->conn) != CONNECTION_OK)
        d->fault = REG_FAULT_UNREACHABLE;
    if (d->fault == REG_FAULT_UNREACHABLE)
        return p11ca_err_set(
            P11CA_E_UNAVAILABLE,
            "registry %s: %s: the database server is unreachable: %s", d->shown,
            what, msg);
    return p11ca_err_set(P11CA_E_REGISTRY, "registry %s: %s: %s", d->shown,
                         what, msg);
}

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

/* What every (re)connection sets: a read-only registry refuses writes in
 * the server, not only in p11ca. */
static int pg_session(struct pgdb *d)
{
    memset(d->prepared, 0, sizeof(d->prepared));
    if (d->flags & REG_OPEN_READONLY)
        return pg_exec(d, "SET default_transaction_read_only = on",
                       "read-only session");
    return 0;
}

/*
 * Our defaults come first, the location after them (expand_dbname), so a
 * location that sets connect_timeout or application_name wins.
 */
const char *const pg_conn_keys[] = {"connect_timeout",
                                    "fallback_application_name",
                                    "client_encoding", "dbname", NULL};

void pg_conn_values(const char *conninfo, const char *vals[5])
{
    vals[0] = PG_CONNECT_TIMEOUT_S;
    vals[1] = "p11ca";
    vals[2] = "UTF8";
    vals[3] = conninfo;
    vals[4] = NULL;
}

static int pg_connect(struct pgdb *d)
{
    const char *vals[5];
    char msg[PG_SHOWN_MAX];

    pg_conn_values(d->conninfo, vals);
    d->conn = PQconnectdbParams(pg_conn_keys, vals, 1);
    if (!d->conn)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    /* Kept by PQreset: the hooks belong to the PGconn. */
    PQsetNoticeProcessor(d->conn, pg_notice, d);
    if (PQstatus(d->conn) != CONNECTION_OK) {
        d->fault = REG_FAULT_UNREACHABLE;
        pg_oneline(PQerrorMessage(d->conn), msg, sizeof(msg));
        /* At open: the location may as well be wrong (a port, a
         * password), so this is a registry error, not "try later". */
        return p11ca_err_set(P11CA_E_REGISTRY,
                             "registry %s: cannot connect: %s", d->shown, msg);
    }
    return pg_session(d);
}

/*
 * Whether an idle connection was ended by the server (a restart sends
 * "terminating connection" and closes): libpq learns it only when it
 * reads, so anything waiting on the socket is read now, without blocking.
 * Otherwise the first statement after a restart would fail, or a BEGIN
 * would seem to work and the statement after it fail.
 */
static bool pg_idle_lost(struct pgdb *d)
{
    /* The goodbye and the end of the stream may take one read each. */
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = PQsocket(d->conn), .events = POLLIN};

        if (p.fd < 0)
            return true;
        if (poll(&p, 1, 0) <= 0)
            return false;
        if (!PQconsumeInput(d->conn) || PQstatus(d->conn) != CONNECTION_OK)
            return true;
    }
    return false;
}

/* The server's notices (its goodbye at a restart) go to our log, not to
 * stderr. */
static void pg_notice(void *arg, const char *message)
{
    struct pgdb *d = arg;
    char msg[PG_SHOWN_MAX];

    pg_oneline(message, msg, sizeof(msg));
    LOG_INFO(REG, "registry %s: the server says: %s", d->shown, msg);
}

/*
 * Before a statement or a transaction: a connection that was lost is made
 * again, never inside a transaction (the server rolled that back; the
 * caller must see the failure and start over).
 */
static int pg_ready(struct pgdb *d)
{
    char msg[PG_SHOWN_MAX];

    d->fault = REG_FAULT_NONE;
    if (d->in_tx || (PQstatus(d->conn) == CONNECTION_OK && !pg_idle_lost(d)))
        return 0;
    LOG_INFO(REG, "registry %s: connection lost, connecting again", d->shown);
    PQreset(d->conn);
    if (PQstatus(d->conn) != CONNECTION_OK) {
        d->fault = REG_FAULT_UNREACHABLE;
        pg_oneline(PQerrorMessage(d->conn), msg, sizeof(msg));
        return p11ca_err_set(
            P11CA_E_UNAVAILABLE,
            "registry %s: the database server is unreachable: %s", d->shown,
            msg);
    }
    return pg_session(d);
}

/* A fixed command without parameters or rows (BEGIN, COMMIT, SET). */
static int pg_exec(struct pgdb *d, const char *sql, const char *what)
{
    PGresult *res = PQexec(d->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(d, res, what);
    PQclear(res);
    return rc;
}

static int pg_result(struct pgdb *d, PGresult **res, const char *what)
{
    ExecStatusType st = PQresultStatus(*res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    return pg_fail(d, *res, what);
}

/*
 * A statement outside a transaction that met a connection the server had
 * ended while it was idle (a restart: SQLSTATE 57P01-03, "terminating
 * connection due to administrator command") did not run or was aborted,
 * so it is tried once more on a new connection.  A statement inside a
 * transaction never is: the server rolled the transaction back and the
 * caller must start over.
 */
static bool pg_retry(struct pgdb *d, const PGresult *res)
{
    if (d->in_tx || PQstatus(d->conn) == CONNECTION_OK
        || strncmp(pg_sqlstate(res), "57P0", 4) != 0)
        return false;
    LOG_INFO(REG,
             "registry %s: the server ended the connection, connecting again",
             d->shown);
    return true;
}

static int pg_run_once(struct pgdb *d, enum pg_stmt id,
                       const struct pg_params *p, PGresult **res,
                       const char *what)
{
    char name[32];
    int rc;

    *res = NULL;
    if ((rc = pg_ready(d)))
        return rc;
    snprintf(name, sizeof(name), "p11ca_%d", (int)id);
    if (!d->prepared[id]) {
        *res = PQprepare(d->conn, name, pg_sql[id], 0, NULL);
        if ((rc = pg_result(d, res, "prepare")))
            return rc;
        PQclear(*res);
        d->prepared[id] = true;
    }
    *res = PQexecPrepared(d->conn, name, p ? p->n : 0, p ? p->v : NULL,
                          p ? p->len : NULL, p ? p->fmt : NULL, 0);
    return pg_result(d, res, what);
}

int pg_run(struct pgdb *d, enum pg_stmt id, const struct pg_params *p,
           PGresult **res, const char *what)
{
    int rc = pg_run_once(d, id, p, res, what);

    if (rc && pg_retry(d, *res)) {
        PQclear(*res);
        rc = pg_run_once(d, id, p, res, what);
    }
    return rc;
}

static int pg_run_sql_once(struct pgdb *d, const char *sql,
                           const struct pg_params *p, PGresult **res,
                           const char *what)
{
    int rc;

    *res = NULL;
    if ((rc = pg_ready(d)))
        return rc;
    *res = PQexecParams(d->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                        p ? p->len : NULL, p ? p->fmt : NULL, 0);
    return pg_result(d, res, what);
}

int pg_run_sql(struct pgdb *d, const char *sql, const struct pg_params *p,
               PGresult **res, const char *what)
{
    int rc = pg_run_sql_once(d, sql, p, res, what);

    if (rc && pg_retry(d, *res)) {
        PQclear(*res);
        rc = pg_run_sql_once(d, sql, p, res, what);
    }
    return rc;
}

/* A one-row, one-column integer query of fixed text (used at open). */
static int pg_query_int(struct pgdb *d, const char *sql, const char *what,
                        int64_t *v)
{
    PGresult *res = NULL;
    int rc = pg_run_sql(d, sql, NULL, &res, what);

    if (!rc && PQntuples(res) != 1)
        rc = p11ca_err_set(P11CA_E_REGISTRY, "registry %s: %s: no answer",
                           d->shown, what);
    if (!rc)
        *v = pg_int(res, 0, 0);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Opening and migrations                                              */
/* ------------------------------------------------------------------ */

/* 0 for a database without our tables (no schema_version yet).  The
 * tables are looked up on the connection's search_path. */
static int pg_read_version(struct pgdb *d, int *version)
{
    int64_t v = 0;
    int rc;

    *version = 0;
    rc = pg_query_int(d,
                      "SELECT (to_regclass('schema_version') IS NOT NULL)::int",
                      "read the schema version", &v);
    if (rc || v == 0)
        return rc;
    rc = pg_query_int(d, "SELECT coalesce(max(version), 0) FROM schema_version",
                      "read the schema version", &v);
    if (!rc)
        *version = (int)v;
    return rc;
}

static int pg_apply(struct pgdb *d, const struct reg_migration *m)
{
    struct pg_params p = {0};
    PGresult *res = NULL;
    char what[96];
    int rc;

    snprintf(what, sizeof(what), "schema migration %s", m->name);
    /* The build's own SQL, several statements: the simple protocol. */
    if ((rc = pg_exec(d, m->sql, what)))
        return rc;
    pg_p_int(&p, m->version);
    pg_p_text(&p, m->name);
    pg_p_int(&p, reg_now());
    rc = pg_run_sql(d,
                    "INSERT INTO schema_version (version, name, applied_at) "
                    "VALUES ($1, $2, $3)",
                    &p, &res, what);
    PQclear(res);
    return rc;
}

/* Under the migration lock: check again (another node may have migrated
 * while we waited), then apply what is missing, in order. */
static int pg_migrate_locked(struct pgdb *d)
{
    int have = 0, rc;

    rc = pg_exec(d,
                 "CREATE TABLE IF NOT EXISTS schema_version ("
                 "version integer PRIMARY KEY, name text NOT NULL, "
                 "applied_at bigint NOT NULL)",
                 "create schema_version");
    if (rc || (rc = pg_read_version(d, &have)))
        return rc;
    for (size_t i = 0; i < reg_pg_migrations_n; i++) {
        const struct reg_migration *m = &reg_pg_migrations[i];

        if (m->version <= have)
            continue;
        if (m->version != have + 1)
            return p11ca_err_set(
                P11CA_E_INTERNAL,
                "schema migration %s does not follow version %d", m->name,
                have);
        if ((rc = pg_apply(d, m)))
            return rc;
        have = m->version;
    }
    return 0;
}

/* Bring the schema to the newest version in one transaction (PostgreSQL's
 * DDL is transactional: a failed migration leaves nothing). */
static int pg_migrate(struct pgdb *d)
{
    int want = reg_pg_migrations[reg_pg_migrations_n - 1].version;
    int have = 0, rc;

    if ((rc = pg_read_version(d, &have)))
        return rc;
    if (have == want)
        return 0;
    if ((rc = pg_exec(d, "BEGIN", "begin migration"))
        || (rc = pg_exec(d, PG_LOCK_MIGRATE, "lock for migration")))
        goto out;
    rc = pg_migrate_locked(d);
    if (!rc)
        rc = pg_exec(d, "COMMIT", "commit migration");
out:
    if (rc && PQtransactionStatus(d->conn) != PQTRANS_IDLE)
        PQclear(PQexec(d->conn, "ROLLBACK"));
    return rc;
}

/* The checks of sq_check_schema (backend_sqlite.c), for PostgreSQL: a
 * newer schema is refused; without REG_OPEN_CREATE the registry must have
 * its tables and its first audit entry; read only, an older one is
 * refused. */
static int pg_check_schema(struct pgdb *d)
{
    int want = reg_pg_migrations[reg_pg_migrations_n - 1].version;
    bool ro = (d->flags & REG_OPEN_READONLY) != 0;
    int64_t entries = 0;
    int have = 0, rc;

    if ((rc = pg_read_version(d, &have)))
        return rc;
    if (have > want)
        return p11ca_err_set(
            P11CA_E_REGISTRY,
            "registry %s: schema version %d is newer than this p11ca knows (%d)",
            d->shown, have, want);
    if (have == 0 && !(d->flags & REG_OPEN_CREATE))
        return p11ca_err_set(
            P11CA_E_NOTFOUND,
            "registry %s is empty (it holds no registry tables)", d->shown);
    if (have < want && ro)
        return p11ca_err_set(
            P11CA_E_REGISTRY,
            "registry %s has schema version %d, older than this p11ca's (%d): a command that only reads does not migrate it. Migrate it first with a command that writes: p11ca audit sign",
            d->shown, have, want);
    if (!(d->flags & REG_OPEN_CREATE)
        && (rc = pg_query_int(d,
                              "SELECT count(*) FROM (SELECT 1 FROM audit "
                              "LIMIT 1) AS a",
                              "read the audit trail", &entries)))
        return rc;
    if (!(d->flags & REG_OPEN_CREATE) && entries == 0)
        return p11ca_err_set(
            P11CA_E_NOTFOUND,
            "registry %s is empty (no audit entry, not even ca-init)",
            d->shown);
    return 0;
}

static void pg_close(void *db)
{
    struct pgdb *d = db;

    if (!d)
        return;
    PQfinish(d->conn);
    /* The location may hold a password. */
    if (d->conninfo)
        OPENSSL_cleanse(d->conninfo, strlen(d->conninfo));
    free(d->conninfo);
    free(d->shown);
    free(d);
}

static int pg_open(const char *location, unsigned flags, void **db)
{
    struct pgdb *d = calloc(1, sizeof(*d));
    int rc = P11CA_E_NOMEM;

    *db = NULL;
    if (!d || !(d->conninfo = strdup(location))) {
        p11ca_err_set(rc, "out of memory");
        goto out;
    }
    d->flags = flags;
    if ((rc = pg_shown(d)) || (rc = pg_connect(d)) || (rc = pg_check_schema(d)))
        goto out;
    if (!(flags & REG_OPEN_READONLY) && (rc = pg_migrate(d)))
        goto out;
    LOG_DBG(REG, "registry %s opened %s", d->shown,
            flags & REG_OPEN_READONLY ? "read-only"
                                      : "for reading and writing");
    *db = d;
    d = NULL;
    rc = 0;
out:
    pg_close(d);
    return rc;
}

static int pg_schema_version(void *db)
{
    int version = 0;
    int rc = pg_read_version(db, &version);

    return rc ? rc : version;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */
/* ------------------------------------------------------------------ */

/* A writer takes the write lock at once, then reads what the writers
 * before it committed; a reader gets one snapshot for all its reads. */
static int pg_begin(void *db, bool write)
{
    struct pgdb *d = db;
    int rc;

    /* PostgreSQL has no nested transactions: a BEGIN inside one would only
     * warn, and its COMMIT would end the outer one (a search's cursor). */
    if (d->in_tx)
        return p11ca_err_set(
            P11CA_E_INTERNAL,
            "registry %s: a transaction began inside another (a search callback that writes?)",
            d->shown);
    /* BEGIN changes nothing: on a connection the server ended while it
     * was idle (a restart), it is tried once more on a new one. */
    for (int tries = 0; tries < 2; tries++) {
        if ((rc = pg_ready(d)))
            return rc;
        if (write)
            rc = pg_exec(d, "BEGIN ISOLATION LEVEL READ COMMITTED",
                         "begin a write transaction");
        else
            rc = pg_exec(d, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                         "begin a read transaction");
        if (!rc || PQstatus(d->conn) == CONNECTION_OK)
            break;
    }
    if (!rc)
        d->in_tx = true;
    if (!rc && write && (rc = pg_exec(d, PG_LOCK_WRITE, "take the write lock")))
        pg_rollback(d);
    return rc;
}

/* COMMIT of a transaction that failed answers ROLLBACK, not an error. */
static int pg_commit(void *db)
{
    struct pgdb *d = db;
    PGresult *res = PQexec(d->conn, "COMMIT");
    int rc = pg_result(d, &res, "commit");

    if (!rc && strcmp(PQcmdStatus(res), "COMMIT") != 0)
        rc = p11ca_err_set(P11CA_E_REGISTRY,
                           "registry %s: commit: the server rolled back",
                           d->shown);
    PQclear(res);
    d->in_tx = false;
    return rc;
}

static void pg_rollback(void *db)
{
    struct pgdb *d = db;

    if (PQstatus(d->conn) == CONNECTION_OK
        && PQtransactionStatus(d->conn) != PQTRANS_IDLE)
        PQclear(PQexec(d->conn, "ROLLBACK"));
    d->in_tx = false;
}

const char *pg_stmt_sql(enum pg_stmt id)
{
    return pg_sql[id];
}

int pg_tx_begin(struct pgdb *d, bool write)
{
    return pg_begin(d, write);
}

int pg_tx_commit(struct pgdb *d)
{
    return pg_commit(d);
}

void pg_tx_rollback(struct pgdb *d)
{
    pg_rollback(d);
}

static reg_fault pg_fault(void *db)
{
    struct pgdb *d = db;

    return d->fault;
}

/* ------------------------------------------------------------------ */
/* CRL numbers and CAs                                                 */
/* ------------------------------------------------------------------ */

static int pg_crl_number_next(void *db, int64_t ca_id, uint64_t *n)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_int(&p, ca_id);
    rc = pg_run(d, PG_CRL_BUMP, &p, &res, "next CRL number");
    if (rc && strcmp(pg_sqlstate(res), "23503") == 0)
        rc = p11ca_err_set(P11CA_E_NOTFOUND, "no CA with id %lld",
                           (long long)ca_id);
    else if (!rc)
        *n = (uint64_t)pg_int(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_crl_number_last(void *db, int64_t ca_id, uint64_t *n)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    *n = 0;
    pg_p_int(&p, ca_id);
    rc = pg_run(d, PG_CRL_GET, &p, &res, "read the CRL number");
    if (!rc && PQntuples(res) == 1)
        *n = (uint64_t)pg_int(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_ca_add(void *db, const unsigned char *der, size_t len,
                     const char *name, const char *subject, bool external,
                     int64_t *id)
{
    struct pgdb *d = db;
    struct pg_params p = {0}, q = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_text(&p, name);
    pg_p_text(&p, subject);
    pg_p_bytes(&p, der, len);
    pg_p_int(&p, reg_now());
    pg_p_int(&p, external ? 1 : 0);
    if ((rc = pg_run(d, PG_CA_INSERT, &p, &res, "add a CA")))
        goto out;
    PQclear(res);
    /* Inserted or already there: the id is found the same way. */
    pg_p_bytes(&q, der, len);
    if ((rc = pg_run(d, PG_CA_FIND, &q, &res, "find the CA")))
        goto out;
    if (PQntuples(res) != 1) {
        rc = p11ca_err_set(P11CA_E_REGISTRY,
                           "registry %s: the CA just added is not there",
                           d->shown);
        goto out;
    }
    *id = pg_int(res, 0, 0);
out:
    PQclear(res);
    return rc;
}

static int pg_ca_list(void *db, reg_ca_cb cb, void *arg)
{
    struct pgdb *d = db;
    PGresult *res = NULL;
    unsigned char *der = NULL;
    reg_ca ca;
    int rc;

    if ((rc = pg_run(d, PG_CA_LIST, NULL, &res, "list CAs")))
        goto out;
    for (int i = 0; !rc && i < PQntuples(res); i++) {
        ca = (reg_ca){
            .id = pg_int(res, i, 0),
            .name = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
            .subject = PQgetvalue(res, i, 2),
            .external = pg_int(res, i, 4) != 0,
            .auto_register = pg_int(res, i, 5) != 0,
        };
        if ((rc = pg_status(d, res, i, 6, &ca.auto_status))
            || (rc = pg_bytes(res, i, 3, &der, &ca.der_len)))
            break;
        ca.der = der;
        rc = cb(&ca, arg);
        PQfreemem(der);
        der = NULL;
    }
out:
    PQclear(res);
    return rc;
}

static int pg_ca_set_auto(void *db, int64_t id, bool on, reg_status st)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_int(&p, id);
    pg_p_int(&p, on ? 1 : 0);
    pg_p_text(&p, reg_status_name(st));
    if ((rc = pg_run(d, PG_CA_SET_AUTO, &p, &res,
                     "set a CA's auto-registration")))
        goto out;
    if (pg_changed(res) == 0)
        rc = p11ca_err_set(P11CA_E_NOTFOUND, "no CA with id %lld",
                           (long long)id);
out:
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Audit table (the chain itself is audit.c's)                         */
/* ------------------------------------------------------------------ */

static int pg_audit_append(void *db, const reg_audit *a)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_int(&p, a->seq);
    pg_p_int(&p, a->at);
    pg_p_text(&p, a->actor);
    pg_p_text(&p, a->action);
    pg_p_text(&p, a->object);
    pg_p_text(&p, a->details);
    pg_p_text(&p, a->prev_hash);
    pg_p_text(&p, a->hash);
    rc = pg_run(d, PG_AUDIT_APPEND, &p, &res, "append an audit entry");
    PQclear(res);
    return rc;
}

static int pg_audit_last(void *db, int64_t *seq, char *hash, size_t hashlen)
{
    struct pgdb *d = db;
    PGresult *res = NULL;
    int rc;

    *seq = 0;
    hash[0] = '\0';
    rc = pg_run(d, PG_AUDIT_LAST, NULL, &res, "read the last audit entry");
    if (!rc && PQntuples(res) == 1) {
        *seq = pg_int(res, 0, 0);
        snprintf(hash, hashlen, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

static const char *pg_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int pg_audit_list(void *db, int64_t since_seq, reg_audit_cb cb,
                         void *arg)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    reg_audit a;
    int rc;

    pg_p_int(&p, since_seq);
    if ((rc = pg_run(d, PG_AUDIT_LIST, &p, &res, "list the audit trail")))
        goto out;
    for (int i = 0; !rc && i < PQntuples(res); i++) {
        a = (reg_audit){
            .seq = pg_int(res, i, 0),
            .at = pg_int(res, i, 1),
            .actor = pg_text(res, i, 2),
            .action = pg_text(res, i, 3),
            .object = pg_text(res, i, 4),
            .details = pg_text(res, i, 5),
            .prev_hash = pg_text(res, i, 6),
            .hash = pg_text(res, i, 7),
        };
        rc = cb(&a, arg);
    }
out:
    PQclear(res);
    return rc;
}

static int pg_head_add(void *db, const reg_audit_head *h)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_int(&p, h->seq);
    pg_p_text(&p, h->hash);
    pg_p_int(&p, h->at);
    pg_p_int0(&p, h->ca_id > 0 ? h->ca_id : 0);
    pg_p_bytes(&p, h->der, h->der_len);
    rc = pg_run(d, PG_HEAD_ADD, &p, &res, "store a signed audit head");
    PQclear(res);
    return rc;
}

static int pg_head_list(void *db, int64_t ca_id, bool newest_first,
                        reg_audit_head_cb cb, void *arg)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    unsigned char *der = NULL;
    reg_audit_head h;
    int rc;

    pg_p_int(&p, ca_id);
    if ((rc = pg_run(d, newest_first ? PG_HEAD_LIST_DESC : PG_HEAD_LIST, &p,
                     &res, "list the signed audit heads")))
        goto out;
    for (int i = 0; !rc && i < PQntuples(res); i++) {
        h = (reg_audit_head){
            .id = pg_int(res, i, 0),
            .seq = pg_int(res, i, 1),
            .hash = PQgetvalue(res, i, 2),
            .at = pg_int(res, i, 3),
            .ca_id = pg_int(res, i, 4),
        };
        if ((rc = pg_bytes(res, i, 5, &der, &h.der_len)))
            break;
        h.der = der;
        rc = cb(&h, arg);
        PQfreemem(der);
        der = NULL;
    }
out:
    PQclear(res);
    return rc;
}

const struct reg_backend reg_backend_pg = {
    .scheme = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .cert_insert = pg_cert_insert,
    .cert_get = pg_cert_get,
    .cert_set_status = pg_cert_set_status,
    .cert_delete = pg_cert_delete,
    .cert_set_replaces = pg_cert_set_replaces,
    .cert_set_revoke_after = pg_cert_set_revoke_after,
    .cert_search = pg_cert_search,
    .cert_count = pg_cert_count,
    .client_id_active = pg_client_id_active,
    .history_add = pg_history_add,
    .history_list = pg_history_list,
    .revoked_list = pg_revoked_list,
    .crl_number_next = pg_crl_number_next,
    .crl_number_last = pg_crl_number_last,
    .ca_add = pg_ca_add,
    .ca_list = pg_ca_list,
    .ca_set_auto = pg_ca_set_auto,
    .code_insert = pg_code_insert,
    .code_take = pg_code_take,
    .code_issued = pg_code_issued,
    .code_release = pg_code_release,
    .code_given = pg_code_given,
    .rows_walk = pg_rows_walk,
    .row_insert = pg_row_insert,
    .rows_count = pg_rows_count,
    .rows_done = pg_rows_done,
    .audit_append = pg_audit_append,
    .audit_last = pg_audit_last,
    .audit_list = pg_audit_list,
    .head_add = pg_head_add,
    .head_list = pg_head_list,
    .fault = pg_fault,
    .signup_take = pg_signup_take,
    .signup_refund = pg_signup_refund,
    .listen = pg_listen,
};
