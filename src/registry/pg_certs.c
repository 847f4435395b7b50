/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend's certificate rows: insert, read, search (a WHERE
 * from fixed fragments, values as parameters), status history, the
 * revoked list. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/pg_int.h"

/* The longest search: every fragment below, ORDER BY, LIMIT. */
#define PG_SEARCH_MAX 2048

/* A search being built: its SQL and its parameters, numbered in order. */
struct pg_query {
    char sql[PG_SEARCH_MAX];
    struct pg_params p;
    char *like[2]; /* the patterns' LIKE text, freed after the query */
    int rc;
};

static int pg_row_cert(struct pgdb *d, const PGresult *res, int i, reg_cert *c);
static int pg_insert_failed(const PGresult *res, const reg_cert *c, int rc);
static int pg_no_cert(int64_t ca_id, const char *serial);
static void pg_key(struct pg_params *p, int64_t ca_id, const char *serial);
static int pg_cert_update(struct pgdb *d, enum pg_stmt id, int64_t ca_id,
                          const char *serial, const char *text, int64_t v,
                          const char *what);
static void pg_q_add(struct pg_query *q, const char *frag);
static void pg_q_text(struct pg_query *q, const char *fmt, const char *val);
static void pg_q_int(struct pg_query *q, const char *fmt, int64_t val);
static void pg_q_like(struct pg_query *q, int slot, const char *fmt,
                      const char *pattern);
static void pg_where(struct pg_query *q, const reg_filter *f);
static const char *pg_order(const reg_filter *f);
static void pg_query_free(struct pg_query *q);
static int pg_fetch(struct pgdb *d, const char *name, pg_row_fn row, void *ctx,
                    const char *what);
static int pg_search_row(struct pgdb *d, const PGresult *res, int i, void *ctx);
static int pg_revoked_row(struct pgdb *d, const PGresult *res, int i,
                          void *ctx);

/* What a walk's row functions call back. */
struct pg_cb {
    reg_cert_cb cert;
    reg_revoked_cb revoked;
    void *arg;
};

/* One row of PG_CERT_COLS into @c (owned by @c, zeroed first). */
static int pg_row_cert(struct pgdb *d, const PGresult *res, int i, reg_cert *c)
{
    unsigned char *der = NULL;
    int rc;

    memset(c, 0, sizeof(*c));
    snprintf(c->serial, sizeof(c->serial), "%s", PQgetvalue(res, i, 0));
    c->ca_id = pg_int(res, i, 1);
    c->not_before = pg_int(res, i, 10);
    c->not_after = pg_int(res, i, 11);
    c->recorded_at = pg_int(res, i, 12);
    c->revoked_at = pg_int(res, i, 13);
    c->reason = PQgetisnull(res, i, 14) ? -1 : (int)pg_int(res, i, 14);
    c->invalidity = pg_int(res, i, 15);
    c->revoke_after = pg_int(res, i, 19);
    if ((rc = pg_strdup(res, i, 2, &c->subject))
        || (rc = pg_strdup(res, i, 3, &c->issuer))
        || (rc = pg_strdup(res, i, 4, &c->cn))
        || (rc = pg_strdup(res, i, 5, &c->ou))
        || (rc = pg_strdup(res, i, 6, &c->client_id))
        || (rc = pg_strdup(res, i, 7, &c->profile))
        || (rc = pg_strdup(res, i, 8, &c->origin))
        || (rc = pg_status(d, res, i, 9, &c->status))
        || (rc = pg_strdup(res, i, 16, &c->replaces))
        || (rc = pg_strdup(res, i, 17, &c->key_hash))
        || (rc = pg_bytes(res, i, 18, &der, &c->der_len)))
        goto out;
    /* reg_cert_clear frees with free(): copy out of libpq's memory. */
    if (c->der_len && !(c->der = malloc(c->der_len))) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    if (c->der_len)
        memcpy(c->der, der, c->der_len);
out:
    PQfreemem(der);
    if (rc)
        reg_cert_clear(c);
    return rc;
}

/* Constraint failures are the caller's input; name what clashed, as the
 * SQLite backend does (sq_insert_failed). */
static int pg_insert_failed(const PGresult *res, const reg_cert *c, int rc)
{
    const char *state = pg_sqlstate(res);

    if (strcmp(state, "23505") == 0) {
        if (strcmp(pg_constraint(res), "certs_issuer_serial") == 0)
            return p11ca_err_set(P11CA_E_EXISTS,
                                 "serial %s is already in the registry",
                                 reg_cert_shown(c->ca_id, c->serial));
        return p11ca_err_set(
            P11CA_E_EXISTS,
            "client ID \"%s\" is held by another activated certificate",
            c->client_id ? c->client_id : "");
    }
    if (strcmp(state, "23503") == 0)
        return p11ca_err_set(P11CA_E_NOTFOUND, "no CA with id %lld",
                             (long long)c->ca_id);
    if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0)
        return p11ca_err_set(P11CA_E_INPUT,
                             "certificate %s refused by the registry: %s",
                             reg_cert_shown(c->ca_id, c->serial),
                             PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    return rc;
}

int pg_cert_insert(void *db, const reg_cert *c)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_text(&p, c->serial);
    pg_p_int0(&p, c->ca_id);
    pg_p_text(&p, c->subject);
    pg_p_text(&p, c->issuer);
    pg_p_text(&p, c->cn);
    pg_p_text(&p, c->ou);
    pg_p_text(&p, c->client_id);
    pg_p_text(&p, c->profile);
    pg_p_text(&p, c->origin);
    pg_p_text(&p, reg_status_name(c->status));
    pg_p_int(&p, c->not_before);
    pg_p_int(&p, c->not_after);
    pg_p_int(&p, c->recorded_at);
    pg_p_int0(&p, c->revoked_at);
    if (c->reason >= 0)
        pg_p_int(&p, c->reason);
    else
        pg_p_text(&p, NULL);
    pg_p_int0(&p, c->invalidity);
    pg_p_text(&p, c->replaces);
    pg_p_text(&p, c->key_hash);
    pg_p_bytes(&p, c->der, c->der_len);
    pg_p_int0(&p, c->revoke_after);
    if ((rc = pg_run(d, PG_CERT_INSERT, &p, &res, "insert a certificate")))
        rc = pg_insert_failed(res, c, rc);
    PQclear(res);
    return rc;
}

static void pg_key(struct pg_params *p, int64_t ca_id, const char *serial)
{
    pg_p_int(p, ca_id);
    pg_p_text(p, serial);
}

/* NOTFOUND naming the certificate. */
static int pg_no_cert(int64_t ca_id, const char *serial)
{
    return p11ca_err_set(P11CA_E_NOTFOUND, "no certificate with serial %s",
                         reg_cert_shown(ca_id, serial));
}

int pg_cert_get(void *db, int64_t ca_id, const char *serial, reg_cert *out)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    pg_key(&p, ca_id, serial);
    if ((rc = pg_run(d, PG_CERT_GET, &p, &res, "read a certificate")))
        goto out;
    rc = PQntuples(res) == 1 ? pg_row_cert(d, res, 0, out)
                             : pg_no_cert(ca_id, serial);
out:
    PQclear(res);
    return rc;
}

int pg_cert_set_status(void *db, int64_t ca_id, const char *serial,
                       reg_status to, int64_t revoked_at, int reason,
                       int64_t invalidity)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_key(&p, ca_id, serial);
    pg_p_text(&p, reg_status_name(to));
    pg_p_int0(&p, revoked_at);
    if (reason >= 0)
        pg_p_int(&p, reason);
    else
        pg_p_text(&p, NULL);
    pg_p_int0(&p, invalidity);
    rc = pg_run(d, PG_CERT_SET_STATUS, &p, &res,
                "change a certificate's status");
    if (rc && strcmp(pg_sqlstate(res), "23505") == 0)
        rc = p11ca_err_set(
            P11CA_E_EXISTS,
            "certificate %s: its client ID is held by another activated certificate",
            reg_cert_shown(ca_id, serial));
    else if (rc && strcmp(pg_constraint(res), "certs_revocation_final") == 0)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is revoked: revocation is final (the database refused the change)",
            reg_cert_shown(ca_id, serial));
    else if (!rc && pg_changed(res) != 1)
        rc = pg_no_cert(ca_id, serial);
    PQclear(res);
    return rc;
}

/* Run @id on one certificate, with @text or @v (0: NULL) as $3 when the
 * statement has it; NOTFOUND when no row changed. */
static int pg_cert_update(struct pgdb *d, enum pg_stmt id, int64_t ca_id,
                          const char *serial, const char *text, int64_t v,
                          const char *what)
{
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_key(&p, ca_id, serial);
    if (id == PG_CERT_SET_REPLACES)
        pg_p_text(&p, text);
    else if (id == PG_CERT_SET_REVOKE_AFTER)
        pg_p_int0(&p, v);
    rc = pg_run(d, id, &p, &res, what);
    if (!rc && pg_changed(res) != 1)
        rc = pg_no_cert(ca_id, serial);
    PQclear(res);
    return rc;
}

int pg_cert_delete(void *db, int64_t ca_id, const char *serial)
{
    return pg_cert_update(db, PG_CERT_DELETE, ca_id, serial, NULL, 0,
                          "delete a certificate");
}

int pg_cert_set_replaces(void *db, int64_t ca_id, const char *serial,
                         const char *old)
{
    return pg_cert_update(db, PG_CERT_SET_REPLACES, ca_id, serial, old, 0,
                          "record a renewal");
}

int pg_cert_set_revoke_after(void *db, int64_t ca_id, const char *serial,
                             int64_t at)
{
    return pg_cert_update(db, PG_CERT_SET_REVOKE_AFTER, ca_id, serial, NULL, at,
                          "schedule a revocation");
}

/* ------------------------------------------------------------------ */
/* Cursors                                                             */
/* ------------------------------------------------------------------ */

/* Every batch of cursor @name until it is empty or @row stops. */
static int pg_fetch(struct pgdb *d, const char *name, pg_row_fn row, void *ctx,
                    const char *what)
{
    char fetch[64];
    PGresult *res = NULL;
    int rc = 0, n;

    snprintf(fetch, sizeof(fetch), "FETCH %d FROM %s", PG_WALK_ROWS, name);
    do {
        if ((rc = pg_run_sql(d, fetch, NULL, &res, what)))
            break;
        n = PQntuples(res);
        for (int i = 0; !rc && i < n; i++)
            rc = row(d, res, i, ctx);
        PQclear(res);
        res = NULL;
    } while (!rc && n == PG_WALK_ROWS);
    PQclear(res);
    return rc;
}

int pg_walk(struct pgdb *d, const char *sql, const struct pg_params *p,
            pg_row_fn row, void *ctx, const char *what)
{
    char decl[PG_SEARCH_MAX + 64], name[32], close[48];
    bool own = !d->in_tx;
    PGresult *res = NULL;
    int rc;

    if (own && (rc = pg_tx_begin(d, false)))
        return rc;
    /* A row function may walk again (nested cursors): names differ. */
    snprintf(name, sizeof(name), "p11ca_walk_%u", d->walks++);
    snprintf(decl, sizeof(decl), "DECLARE %s NO SCROLL CURSOR FOR %s", name,
             sql);
    if (!(rc = pg_run_sql(d, decl, p, &res, what)))
        rc = pg_fetch(d, name, row, ctx, what);
    PQclear(res);
    res = NULL;
    snprintf(close, sizeof(close), "CLOSE %s", name);
    if (!rc && !(rc = pg_run_sql(d, close, NULL, &res, what)) && own)
        rc = pg_tx_commit(d);
    PQclear(res);
    d->walks--;
    if (rc && own)
        pg_tx_rollback(d);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Search                                                              */
/* ------------------------------------------------------------------ */

/* Append a fixed fragment, never truncating. */
static void pg_q_add(struct pg_query *q, const char *frag)
{
    size_t used = strlen(q->sql), n = strlen(frag);

    if (q->rc)
        return;
    if (n >= sizeof(q->sql) - used) {
        q->rc = p11ca_err_set(P11CA_E_INTERNAL, "search SQL too long");
        return;
    }
    memcpy(q->sql + used, frag, n + 1);
}

/* A fixed fragment @fmt whose "%d" (once or twice) is the number of the
 * next parameter, which is @val: only numbers we count enter the text. */
static void pg_q_text(struct pg_query *q, const char *fmt, const char *val)
{
    char frag[160];

    if (q->rc)
        return;
    if (q->p.n >= PG_MAX_PARAMS) {
        q->rc = p11ca_err_set(P11CA_E_INTERNAL, "search SQL too long");
        return;
    }
    /* Every fmt below is a literal of pg_where with one or two %d. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(frag, sizeof(frag), fmt, q->p.n + 1, q->p.n + 1);
#pragma GCC diagnostic pop
    pg_p_text(&q->p, val);
    pg_q_add(q, frag);
}

static void pg_q_int(struct pg_query *q, const char *fmt, int64_t val)
{
    if (q->rc || q->p.n >= PG_MAX_PARAMS) {
        pg_q_text(q, fmt, NULL);
        return;
    }
    snprintf(q->p.num[q->p.n], sizeof(q->p.num[0]), "%lld", (long long)val);
    pg_q_text(q, fmt, q->p.num[q->p.n]);
}

/* A pattern as ILIKE text (reg_like_pattern: ASCII case-insensitive as
 * SQLite's LIKE is), kept in @slot until the query is done. */
static void pg_q_like(struct pg_query *q, int slot, const char *fmt,
                      const char *pattern)
{
    if (q->rc)
        return;
    if ((q->rc = reg_like_pattern(pattern, &q->like[slot])))
        return;
    pg_q_text(q, fmt, q->like[slot]);
}

/*
 * The WHERE clause of @f from fixed fragments only: user values never
 * enter the SQL text, they are parameters ($n numbered as they come).
 */
static void pg_where(struct pg_query *q, const reg_filter *f)
{
    pg_q_add(q, " WHERE true");
    if (f->serial)
        pg_q_text(q, " AND serial = $%d", f->serial);
    if (f->cn)
        pg_q_text(q, " AND cn = $%d", f->cn);
    if (f->cn_match)
        pg_q_like(q, 0, " AND cn ILIKE $%d ESCAPE '\\'", f->cn_match);
    if (f->ou)
        pg_q_text(q, " AND ou = $%d", f->ou);
    if (f->ou_match)
        pg_q_like(q, 1, " AND ou ILIKE $%d ESCAPE '\\'", f->ou_match);
    if (f->client_id)
        pg_q_text(q, " AND client_id = $%d", f->client_id);
    if (f->replaces)
        pg_q_text(q, " AND replaces = $%d", f->replaces);
    if (f->profile)
        pg_q_text(q, " AND profile = $%d", f->profile);
    if (f->origin)
        pg_q_text(q, " AND origin = $%d", f->origin);
    if (f->status != REG_STATUS_ANY)
        pg_q_text(q, " AND status = $%d", reg_status_name(f->status));
    if (f->not_revoked)
        pg_q_add(q, " AND status <> 'revoked'");
    if (f->ca_id)
        pg_q_int(q, " AND ca_id = $%d::bigint", f->ca_id);
    if (f->issued_after)
        pg_q_int(q, " AND recorded_at >= $%d::bigint", f->issued_after);
    if (f->issued_before)
        pg_q_int(q, " AND recorded_at < $%d::bigint", f->issued_before);
    if (f->expires_after)
        pg_q_int(q, " AND not_after >= $%d::bigint", f->expires_after);
    if (f->expires_before)
        pg_q_int(q, " AND not_after < $%d::bigint", f->expires_before);
    if (f->valid_at)
        pg_q_int(q,
                 " AND not_before <= $%d::bigint AND not_after > $%d::bigint",
                 f->valid_at);
    if (f->revoke_due)
        pg_q_int(q,
                 " AND revoke_after IS NOT NULL AND revoke_after <= "
                 "$%d::bigint",
                 f->revoke_due);
}

/* The ORDER BY of each reg_sort as SQLite gives it (NULLs first going
 * up, bytewise text, CN without case), the recording order last. */
static const char *pg_order(const reg_filter *f)
{
#define PG_ORDER(key)                                                          \
    {                                                                          \
        " ORDER BY " key " NULLS FIRST, recorded_at, id",                      \
            " ORDER BY " key " DESC NULLS LAST, recorded_at DESC, id DESC"     \
    }
    static const char *const orders[][2] = {
        [REG_SORT_RECORDED] = {" ORDER BY recorded_at, id",
                               " ORDER BY recorded_at DESC, id DESC"},
        [REG_SORT_SERIAL] = {" ORDER BY length(serial), serial, id",
                             " ORDER BY length(serial) DESC, serial DESC, "
                             "id DESC"},
        [REG_SORT_CN] = PG_ORDER("lower(cn) COLLATE \"C\""),
        [REG_SORT_CLIENT_ID] = PG_ORDER("client_id COLLATE \"C\""),
        [REG_SORT_STATUS] = PG_ORDER("status COLLATE \"C\""),
        [REG_SORT_PROFILE] = PG_ORDER("profile COLLATE \"C\""),
        [REG_SORT_NOT_BEFORE] = PG_ORDER("not_before"),
        [REG_SORT_NOT_AFTER] = PG_ORDER("not_after"),
    };
#undef PG_ORDER
    size_t i = (size_t)f->sort < sizeof(orders) / sizeof(orders[0])
                   ? (size_t)f->sort
                   : REG_SORT_RECORDED;

    return orders[i][f->descending ? 1 : 0];
}

static void pg_query_free(struct pg_query *q)
{
    free(q->like[0]);
    free(q->like[1]);
}

static int pg_search_row(struct pgdb *d, const PGresult *res, int i, void *ctx)
{
    struct pg_cb *cb = ctx;
    reg_cert c;
    int rc = pg_row_cert(d, res, i, &c);

    if (rc)
        return rc;
    rc = cb->cert(&c, cb->arg);
    reg_cert_clear(&c);
    return rc;
}

int pg_cert_search(void *db, const reg_filter *f, reg_cert_cb cb, void *arg)
{
    struct pgdb *d = db;
    struct pg_query q = {.sql = "SELECT " PG_CERT_COLS " FROM certs"};
    struct pg_cb ctx = {.cert = cb, .arg = arg};
    int rc;

    pg_where(&q, f);
    pg_q_add(&q, pg_order(f));
    /* LIMIT NULL: no limit. */
    if (f->limit && f->limit <= INT64_MAX)
        pg_q_int(&q, " LIMIT $%d::bigint", (int64_t)f->limit);
    pg_q_int(&q, " OFFSET $%d::bigint",
             f->offset <= INT64_MAX ? (int64_t)f->offset : INT64_MAX);
    if (!(rc = q.rc))
        rc =
            pg_walk(d, q.sql, &q.p, pg_search_row, &ctx, "search certificates");
    pg_query_free(&q);
    return rc;
}

int pg_cert_count(void *db, const reg_filter *f, size_t *n)
{
    struct pgdb *d = db;
    struct pg_query q = {.sql = "SELECT count(*) FROM certs"};
    PGresult *res = NULL;
    int rc;

    *n = 0;
    pg_where(&q, f);
    if ((rc = q.rc)
        || (rc = pg_run_sql(d, q.sql, &q.p, &res, "count certificates")))
        goto out;
    *n = (size_t)pg_int(res, 0, 0);
out:
    PQclear(res);
    pg_query_free(&q);
    return rc;
}

int pg_client_id_active(void *db, const char *client_id, int64_t except_ca_id,
                        const char *except_serial, bool *taken)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    *taken = false;
    /* "" is never a serial: no exception. */
    pg_key(&p, except_ca_id, except_serial ? except_serial : "");
    pg_p_text(&p, client_id);
    rc = pg_run(d, PG_CLIENT_ID_ACTIVE, &p, &res, "look up a client ID");
    if (!rc)
        *taken = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

int pg_history_add(void *db, int64_t ca_id, const char *serial, int64_t at,
                   reg_status from, reg_status to, const char *actor,
                   const char *reason)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_key(&p, ca_id, serial);
    pg_p_int(&p, at);
    pg_p_text(&p, from == REG_STATUS_ANY ? NULL : reg_status_name(from));
    pg_p_text(&p, reg_status_name(to));
    pg_p_text(&p, actor);
    pg_p_text(&p, reason);
    rc = pg_run(d, PG_HISTORY_ADD, &p, &res, "add to the status history");
    if (!rc && pg_changed(res) != 1)
        rc = pg_no_cert(ca_id, serial);
    PQclear(res);
    return rc;
}

int pg_history_list(void *db, int64_t ca_id, const char *serial,
                    reg_history_cb cb, void *arg)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    reg_history h;
    int rc;

    pg_key(&p, ca_id, serial);
    if ((rc = pg_run(d, PG_HISTORY_LIST, &p, &res, "list the status history")))
        goto out;
    for (int i = 0; !rc && i < PQntuples(res); i++) {
        h = (reg_history){
            .at = pg_int(res, i, 0),
            .actor = PQgetvalue(res, i, 3),
            .reason = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
        };
        if (!(rc = pg_status(d, res, i, 1, &h.from))
            && !(rc = pg_status(d, res, i, 2, &h.to)))
            rc = cb(&h, arg);
    }
out:
    PQclear(res);
    return rc;
}

static int pg_revoked_row(struct pgdb *d, const PGresult *res, int i, void *ctx)
{
    struct pg_cb *cb = ctx;
    reg_revoked e = {
        .serial = PQgetvalue(res, i, 0),
        .revoked_at = pg_int(res, i, 1),
        .reason = (int)pg_int(res, i, 2),
        .invalidity = pg_int(res, i, 3),
    };

    (void)d;
    return cb->revoked(&e, cb->arg);
}

/* Through a cursor: a CRL of a million entries streams as SQLite's does. */
int pg_revoked_list(void *db, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                    void *arg)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    struct pg_cb ctx = {.revoked = cb, .arg = arg};

    pg_p_int(&p, ca_id);
    pg_p_int(&p, now);
    return pg_walk(d, pg_stmt_sql(PG_REVOKED_LIST), &p, pg_revoked_row, &ctx,
                   "list revoked certificates");
}

/* ------------------------------------------------------------------ */
/* Enrollment codes                                                    */
/* ------------------------------------------------------------------ */

int pg_code_insert(void *db, const char *hash, const reg_code *c, int64_t now,
                   const char *actor, int64_t *id)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    *id = 0;
    pg_p_text(&p, hash);
    pg_p_text(&p, c->profile);
    pg_p_text(&p, c->client_id);
    pg_p_text(&p, c->subject);
    pg_p_int(&p, now);
    pg_p_text(&p, actor);
    pg_p_int(&p, c->expires);
    pg_p_int(&p, c->ca_id);
    rc = pg_run(d, PG_CODE_INSERT, &p, &res, "record an enrollment code");
    if (!rc && PQntuples(res) == 1)
        *id = pg_int(res, 0, 0);
    PQclear(res);
    return rc;
}

/* The code @hash of CA @ca_id through statement @id (PG_CODE_TAKE takes
 * it, PG_CODE_GIVEN reads a used one and the serial it gave, column 5):
 * *@found says whether a row came. */
static int pg_code_row(struct pgdb *d, enum pg_stmt id, const char *hash,
                       int64_t ca_id, int64_t now, reg_code *out, bool *found,
                       const char *what)
{
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    *found = false;
    pg_p_text(&p, hash);
    pg_p_int(&p, now);
    pg_p_int(&p, ca_id);
    out->ca_id = ca_id;
    if ((rc = pg_run(d, id, &p, &res, what)) || PQntuples(res) != 1)
        goto out;
    out->id = pg_int(res, 0, 0);
    out->expires = pg_int(res, 0, 4);
    if ((rc = pg_strdup(res, 0, 1, &out->profile))
        || (rc = pg_strdup(res, 0, 2, &out->client_id))
        || (rc = pg_strdup(res, 0, 3, &out->subject))
        || (id == PG_CODE_GIVEN && (rc = pg_strdup(res, 0, 5, &out->issued))))
        goto out;
    *found = true;
out:
    PQclear(res);
    return rc;
}

int pg_code_take(void *db, const char *hash, int64_t ca_id, int64_t now,
                 reg_code *out, bool *taken)
{
    return pg_code_row(db, PG_CODE_TAKE, hash, ca_id, now, out, taken,
                       "use an enrollment code");
}

int pg_code_given(void *db, const char *hash, int64_t ca_id, int64_t now,
                  reg_code *out, bool *found)
{
    return pg_code_row(db, PG_CODE_GIVEN, hash, ca_id, now, out, found,
                       "read an enrollment code");
}

static int pg_code_update(struct pgdb *d, enum pg_stmt id, int64_t code,
                          int64_t ca_id, const char *serial, const char *what)
{
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;

    pg_p_int(&p, code);
    if (serial) {
        pg_p_text(&p, serial);
        pg_p_int(&p, ca_id);
    }
    rc = pg_run(d, id, &p, &res, what);
    if (!rc && pg_changed(res) == 0)
        rc = p11ca_err_set(P11CA_E_STATE,
                           "enrollment code %lld is not in use: cannot %s",
                           (long long)code, what);
    PQclear(res);
    return rc;
}

int pg_code_issued(void *db, int64_t id, int64_t ca_id, const char *serial)
{
    return pg_code_update(db, PG_CODE_ISSUED, id, ca_id, serial,
                          "record the certificate of an enrollment code");
}

int pg_code_release(void *db, int64_t id)
{
    return pg_code_update(db, PG_CODE_RELEASE, id, 0, NULL,
                          "release an enrollment code");
}
