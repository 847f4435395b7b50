/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite backend's certificate rows: insert, read, search (a WHERE
 * from fixed fragments, values bound), status history, revoked list. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/sqlite_int.h"

/* The longest search: every fragment below, ORDER BY, LIMIT. */
#define SQ_SEARCH_MAX 1536

static int sq_row_cert(struct sqldb *d, sqlite3_stmt *st, reg_cert *c);
static int sq_bind_cert(struct sqldb *d, sqlite3_stmt *st, const reg_cert *c);
static int sq_insert_failed(struct sqldb *d, const reg_cert *c);
static int sq_status_col(struct sqldb *d, sqlite3_stmt *st, int i,
                         reg_status *out);
static int sq_append(char *sql, size_t len, const char *frag);
static int sq_where(const reg_filter *f, char *sql, size_t len);
static int sq_bind_named(struct sqldb *d, sqlite3_stmt *st, const char *name,
                         const char *s);
static int sq_bind_named_int(sqlite3_stmt *st, const char *name, int64_t v);
static int sq_bind_filter(struct sqldb *d, sqlite3_stmt *st,
                          const reg_filter *f);
static int sq_prepare_filter(struct sqldb *d, const reg_filter *f,
                             const char *head, const char *order,
                             const char *tail, sqlite3_stmt **st);
static int sq_no_cert(int64_t ca_id, const char *serial);
static int sq_cert_update(struct sqldb *d, enum sq_stmt id, int64_t ca_id,
                          const char *serial, const char *text, int64_t v,
                          const char *what);
static const char *sq_order(const reg_filter *f);
static int sq_bind_pattern(struct sqldb *d, sqlite3_stmt *st, const char *name,
                           const char *pattern);

/* Text status of column @i; a value no code wrote means a damaged file. */
static int sq_status_col(struct sqldb *d, sqlite3_stmt *st, int i,
                         reg_status *out)
{
    const char *s = (const char *)sqlite3_column_text(st, i);

    *out = REG_STATUS_ANY;
    if (!s)
        return 0;
    for (int v = REG_ACTIVATED; v <= REG_REVOKED; v++) {
        if (strcmp(s, reg_status_name((reg_status)v)) == 0) {
            *out = (reg_status)v;
            return 0;
        }
    }
    return p11ca_err_set(P11CA_E_REGISTRY,
                         "registry %s: unknown status \"%s\" in the database",
                         d->path, s);
}

/* One row of SQ_CERT_COLS into @c (owned by @c, zeroed first). */
static int sq_row_cert(struct sqldb *d, sqlite3_stmt *st, reg_cert *c)
{
    int rc;

    memset(c, 0, sizeof(*c));
    snprintf(c->serial, sizeof(c->serial), "%s",
             (const char *)sqlite3_column_text(st, 0));
    c->ca_id = sqlite3_column_int64(st, 1);
    c->not_before = sqlite3_column_int64(st, 10);
    c->not_after = sqlite3_column_int64(st, 11);
    c->recorded_at = sqlite3_column_int64(st, 12);
    c->revoked_at = sqlite3_column_int64(st, 13);
    c->reason = sqlite3_column_type(st, 14) == SQLITE_NULL
                    ? -1
                    : sqlite3_column_int(st, 14);
    c->invalidity = sqlite3_column_int64(st, 15);
    if ((rc = sq_col_strdup(st, 2, &c->subject))
        || (rc = sq_col_strdup(st, 3, &c->issuer))
        || (rc = sq_col_strdup(st, 4, &c->cn))
        || (rc = sq_col_strdup(st, 5, &c->ou))
        || (rc = sq_col_strdup(st, 6, &c->client_id))
        || (rc = sq_col_strdup(st, 7, &c->profile))
        || (rc = sq_col_strdup(st, 8, &c->origin))
        || (rc = sq_status_col(d, st, 9, &c->status))
        || (rc = sq_col_strdup(st, 16, &c->replaces))
        || (rc = sq_col_strdup(st, 17, &c->key_hash)))
        goto out;
    c->revoke_after = sqlite3_column_int64(st, 19);
    c->der_len = (size_t)sqlite3_column_bytes(st, 18);
    if (c->der_len && !(c->der = malloc(c->der_len))) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    if (c->der_len)
        memcpy(c->der, sqlite3_column_blob(st, 18), c->der_len);
out:
    if (rc)
        reg_cert_clear(c);
    return rc;
}

/* Zero times, reason -1 and ca_id 0 are stored as NULL. */
static int sq_bind_cert(struct sqldb *d, sqlite3_stmt *st, const reg_cert *c)
{
    int rc;

    if ((rc = sq_bind_text(d, st, 1, c->serial))
        || (rc = sq_bind_text(d, st, 3, c->subject))
        || (rc = sq_bind_text(d, st, 4, c->issuer))
        || (rc = sq_bind_text(d, st, 5, c->cn))
        || (rc = sq_bind_text(d, st, 6, c->ou))
        || (rc = sq_bind_text(d, st, 7, c->client_id))
        || (rc = sq_bind_text(d, st, 8, c->profile))
        || (rc = sq_bind_text(d, st, 9, c->origin))
        || (rc = sq_bind_text(d, st, 10, reg_status_name(c->status)))
        || (rc = sq_bind_text(d, st, 17, c->replaces))
        || (rc = sq_bind_text(d, st, 18, c->key_hash)))
        return rc;
    if (c->ca_id)
        sqlite3_bind_int64(st, 2, c->ca_id);
    sqlite3_bind_int64(st, 11, c->not_before);
    sqlite3_bind_int64(st, 12, c->not_after);
    sqlite3_bind_int64(st, 13, c->recorded_at);
    if (c->revoked_at)
        sqlite3_bind_int64(st, 14, c->revoked_at);
    if (c->reason >= 0)
        sqlite3_bind_int(st, 15, c->reason);
    if (c->invalidity)
        sqlite3_bind_int64(st, 16, c->invalidity);
    sqlite3_bind_blob64(st, 19, c->der, c->der_len, SQLITE_STATIC);
    if (c->revoke_after)
        sqlite3_bind_int64(st, 20, c->revoke_after);
    return 0;
}

/* Constraint failures are the caller's input; name what clashed (two
 * unique indexes: the certificate's key, and the activated client IDs). */
static int sq_insert_failed(struct sqldb *d, const reg_cert *c)
{
    switch (sqlite3_extended_errcode(d->db)) {
    case SQLITE_CONSTRAINT_UNIQUE:
        if (strstr(sqlite3_errmsg(d->db), "certs_issuer_serial"))
            return p11ca_err_set(P11CA_E_EXISTS,
                                 "serial %s is already in the registry",
                                 reg_cert_shown(c->ca_id, c->serial));
        return p11ca_err_set(
            P11CA_E_EXISTS,
            "client ID \"%s\" is held by another activated certificate",
            c->client_id ? c->client_id : "");
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return p11ca_err_set(P11CA_E_NOTFOUND, "no CA with id %lld",
                             (long long)c->ca_id);
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return p11ca_err_set(
            P11CA_E_INPUT, "certificate %s refused by the registry: %s",
            reg_cert_shown(c->ca_id, c->serial), sqlite3_errmsg(d->db));
    default:
        return sq_err(d, "insert a certificate");
    }
}

int sq_cert_insert(void *db, const reg_cert *c)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_CERT_INSERT, &st)) || (rc = sq_bind_cert(d, st, c)))
        goto out;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_insert_failed(d, c);
out:
    sq_done(st);
    return rc;
}

int sq_bind_key(struct sqldb *d, sqlite3_stmt *st, int64_t ca_id,
                const char *serial)
{
    sqlite3_bind_int64(st, 1, ca_id);
    return sq_bind_text(d, st, 2, serial);
}

/* NOTFOUND naming the certificate. */
static int sq_no_cert(int64_t ca_id, const char *serial)
{
    return p11ca_err_set(P11CA_E_NOTFOUND, "no certificate with serial %s",
                         reg_cert_shown(ca_id, serial));
}

int sq_cert_get(void *db, int64_t ca_id, const char *serial, reg_cert *out)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc, step;

    memset(out, 0, sizeof(*out));
    if ((rc = sq_stmt(d, SQ_CERT_GET, &st))
        || (rc = sq_bind_key(d, st, ca_id, serial)))
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = sq_row_cert(d, st, out);
    else if (step == SQLITE_DONE)
        rc = sq_no_cert(ca_id, serial);
    else
        rc = sq_err(d, "read a certificate");
out:
    sq_done(st);
    return rc;
}

int sq_cert_set_status(void *db, int64_t ca_id, const char *serial,
                       reg_status to, int64_t revoked_at, int reason,
                       int64_t invalidity)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_CERT_SET_STATUS, &st))
        || (rc = sq_bind_key(d, st, ca_id, serial))
        || (rc = sq_bind_text(d, st, 3, reg_status_name(to))))
        goto out;
    if (revoked_at)
        sqlite3_bind_int64(st, 4, revoked_at);
    if (reason >= 0)
        sqlite3_bind_int(st, 5, reason);
    if (invalidity)
        sqlite3_bind_int64(st, 6, invalidity);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc =
            sqlite3_extended_errcode(d->db) == SQLITE_CONSTRAINT_UNIQUE
                ? p11ca_err_set(
                    P11CA_E_EXISTS,
                    "certificate %s: its client ID is held by another activated certificate",
                    reg_cert_shown(ca_id, serial))
                : sq_err(d, "change a certificate's status");
    else if (sqlite3_changes(d->db) != 1)
        rc = sq_no_cert(ca_id, serial);
out:
    sq_done(st);
    return rc;
}

/* Run the cached statement @id on one certificate, with @bind (may be
 * NULL) binding what follows the key; NOTFOUND when no row changed. */
static int sq_cert_update(struct sqldb *d, enum sq_stmt id, int64_t ca_id,
                          const char *serial, const char *text, int64_t v,
                          const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, id, &st)) || (rc = sq_bind_key(d, st, ca_id, serial)))
        goto out;
    if (text)
        rc = sq_bind_text(d, st, 3, text);
    else if (v)
        sqlite3_bind_int64(st, 3, v);
    if (rc || (rc = sq_step_done(d, st, what)))
        goto out;
    if (sqlite3_changes(d->db) != 1)
        rc = sq_no_cert(ca_id, serial);
out:
    sq_done(st);
    return rc;
}

int sq_cert_delete(void *db, int64_t ca_id, const char *serial)
{
    return sq_cert_update(db, SQ_CERT_DELETE, ca_id, serial, NULL, 0,
                          "delete a certificate");
}

int sq_cert_set_replaces(void *db, int64_t ca_id, const char *serial,
                         const char *old)
{
    return sq_cert_update(db, SQ_CERT_SET_REPLACES, ca_id, serial, old, 0,
                          "record a renewal");
}

int sq_cert_set_revoke_after(void *db, int64_t ca_id, const char *serial,
                             int64_t at)
{
    return sq_cert_update(db, SQ_CERT_SET_REVOKE_AFTER, ca_id, serial, NULL, at,
                          "schedule a revocation");
}

/* Append a fixed fragment to @sql (of size @len), never truncating. */
static int sq_append(char *sql, size_t len, const char *frag)
{
    size_t used = strlen(sql), n = strlen(frag);

    if (n >= len - used)
        return p11ca_err_set(P11CA_E_INTERNAL, "search SQL too long");
    memcpy(sql + used, frag, n + 1);
    return 0;
}

/*
 * The WHERE clause of @f from fixed fragments only: user values never
 * enter the SQL text, they are bound by name afterwards.
 */
static int sq_where(const reg_filter *f, char *sql, size_t len)
{
    const struct {
        bool on;
        const char *frag;
    } conds[] = {
        {f->serial != NULL, " AND serial = :serial"},
        {f->cn != NULL, " AND cn = :cn"},
        {f->cn_match != NULL, " AND cn LIKE :cn_match ESCAPE '\\'"},
        {f->ou != NULL, " AND ou = :ou"},
        {f->ou_match != NULL, " AND ou LIKE :ou_match ESCAPE '\\'"},
        {f->client_id != NULL, " AND client_id = :client_id"},
        {f->profile != NULL, " AND profile = :profile"},
        {f->origin != NULL, " AND origin = :origin"},
        {f->replaces != NULL, " AND replaces = :replaces"},
        {f->status != REG_STATUS_ANY, " AND status = :status"},
        {f->not_revoked, " AND status <> 'revoked'"},
        {f->ca_id != 0, " AND ca_id = :ca_id"},
        {f->issued_after != 0, " AND recorded_at >= :issued_after"},
        {f->issued_before != 0, " AND recorded_at < :issued_before"},
        {f->expires_after != 0, " AND not_after >= :expires_after"},
        {f->expires_before != 0, " AND not_after < :expires_before"},
        {f->valid_at != 0,
         " AND not_before <= :valid_at AND not_after > :valid_at"},
        {f->revoke_due != 0,
         " AND revoke_after IS NOT NULL AND revoke_after <= :revoke_due"},
    };
    int rc = 0;

    for (size_t i = 0; !rc && i < sizeof(conds) / sizeof(conds[0]); i++)
        if (conds[i].on)
            rc = sq_append(sql, len, conds[i].frag);
    return rc;
}

/* The ORDER BY of each reg_sort, ascending and descending: fixed text, the
 * recording order (id breaks ties within a second) last. */
static const char *sq_order(const reg_filter *f)
{
#define SQ_ORDER(key)                                                          \
    {                                                                          \
        " ORDER BY " key ", recorded_at, id",                                  \
            " ORDER BY " key " DESC, recorded_at DESC, id DESC"                \
    }
    static const char *const orders[][2] = {
        [REG_SORT_RECORDED] = {" ORDER BY recorded_at, id",
                               " ORDER BY recorded_at DESC, id DESC"},
        [REG_SORT_SERIAL] = {" ORDER BY length(serial), serial, id",
                             " ORDER BY length(serial) DESC, serial DESC, "
                             "id DESC"},
        [REG_SORT_CN] = SQ_ORDER("cn COLLATE NOCASE"),
        [REG_SORT_CLIENT_ID] = SQ_ORDER("client_id"),
        [REG_SORT_STATUS] = SQ_ORDER("status"),
        [REG_SORT_PROFILE] = SQ_ORDER("profile"),
        [REG_SORT_NOT_BEFORE] = SQ_ORDER("not_before"),
        [REG_SORT_NOT_AFTER] = SQ_ORDER("not_after"),
    };
#undef SQ_ORDER
    size_t i = (size_t)f->sort < sizeof(orders) / sizeof(orders[0])
                   ? (size_t)f->sort
                   : REG_SORT_RECORDED;

    return orders[i][f->descending ? 1 : 0];
}

/* Bind @s to parameter @name if the statement has it. */
static int sq_bind_named(struct sqldb *d, sqlite3_stmt *st, const char *name,
                         const char *s)
{
    int idx = sqlite3_bind_parameter_index(st, name);

    return idx && s ? sq_bind_text(d, st, idx, s) : 0;
}

static int sq_bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int idx = sqlite3_bind_parameter_index(st, name);

    if (idx)
        sqlite3_bind_int64(st, idx, v);
    return 0;
}

/* A pattern of @f, as LIKE text, to parameter @name. */
static int sq_bind_pattern(struct sqldb *d, sqlite3_stmt *st, const char *name,
                           const char *pattern)
{
    char *like = NULL;
    int rc;

    if (!pattern)
        return 0;
    if ((rc = reg_like_pattern(pattern, &like)))
        return rc;
    rc = sq_bind_named(d, st, name, like);
    free(like);
    return rc;
}

static int sq_bind_filter(struct sqldb *d, sqlite3_stmt *st,
                          const reg_filter *f)
{
    int rc;
    const char *status =
        f->status != REG_STATUS_ANY ? reg_status_name(f->status) : NULL;

    if ((rc = sq_bind_named(d, st, ":serial", f->serial))
        || (rc = sq_bind_named(d, st, ":cn", f->cn))
        || (rc = sq_bind_pattern(d, st, ":cn_match", f->cn_match))
        || (rc = sq_bind_named(d, st, ":ou", f->ou))
        || (rc = sq_bind_pattern(d, st, ":ou_match", f->ou_match))
        || (rc = sq_bind_named(d, st, ":client_id", f->client_id))
        || (rc = sq_bind_named(d, st, ":profile", f->profile))
        || (rc = sq_bind_named(d, st, ":origin", f->origin))
        || (rc = sq_bind_named(d, st, ":replaces", f->replaces))
        || (rc = sq_bind_named(d, st, ":status", status)))
        return rc;
    sq_bind_named_int(st, ":ca_id", f->ca_id);
    sq_bind_named_int(st, ":issued_after", f->issued_after);
    sq_bind_named_int(st, ":issued_before", f->issued_before);
    sq_bind_named_int(st, ":expires_after", f->expires_after);
    sq_bind_named_int(st, ":expires_before", f->expires_before);
    sq_bind_named_int(st, ":valid_at", f->valid_at);
    sq_bind_named_int(st, ":revoke_due", f->revoke_due);
    /* LIMIT -1: no limit.  Past INT64_MAX rows nothing is left anyway. */
    sq_bind_named_int(st, ":limit",
                      f->limit && f->limit <= INT64_MAX ? (int64_t)f->limit
                                                        : -1);
    sq_bind_named_int(st, ":offset",
                      f->offset <= INT64_MAX ? (int64_t)f->offset : INT64_MAX);
    return 0;
}

/* @head + WHERE of @f + @order + @tail, prepared (not cached) and bound. */
static int sq_prepare_filter(struct sqldb *d, const reg_filter *f,
                             const char *head, const char *order,
                             const char *tail, sqlite3_stmt **st)
{
    char sql[SQ_SEARCH_MAX] = "";
    int rc;

    *st = NULL;
    if ((rc = sq_append(sql, sizeof(sql), head))
        || (rc = sq_append(sql, sizeof(sql), " WHERE 1 = 1"))
        || (rc = sq_where(f, sql, sizeof(sql)))
        || (rc = sq_append(sql, sizeof(sql), order))
        || (rc = sq_append(sql, sizeof(sql), tail)))
        return rc;
    if (sqlite3_prepare_v2(d->db, sql, -1, st, NULL) != SQLITE_OK)
        return sq_err(d, "prepare the search");
    return sq_bind_filter(d, *st, f);
}

int sq_cert_search(void *db, const reg_filter *f, reg_cert_cb cb, void *arg)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    reg_cert c;
    int rc, step;

    rc = sq_prepare_filter(d, f, "SELECT " SQ_CERT_COLS " FROM certs",
                           sq_order(f), " LIMIT :limit OFFSET :offset", &st);
    if (rc)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = sq_row_cert(d, st, &c)))
            goto out;
        rc = cb(&c, arg);
        reg_cert_clear(&c);
        if (rc)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, "search certificates");
out:
    sqlite3_finalize(st);
    return rc;
}

int sq_cert_count(void *db, const reg_filter *f, size_t *n)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    *n = 0;
    if ((rc = sq_prepare_filter(d, f, "SELECT count(*) FROM certs", "", "",
                                &st)))
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = sq_err(d, "count certificates");
        goto out;
    }
    *n = (size_t)sqlite3_column_int64(st, 0);
out:
    sqlite3_finalize(st);
    return rc;
}

int sq_client_id_active(void *db, const char *client_id, int64_t except_ca_id,
                        const char *except_serial, bool *taken)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc, step;

    *taken = false;
    /* "" is never a serial: no exception. */
    if ((rc = sq_stmt(d, SQ_CLIENT_ID_ACTIVE, &st))
        || (rc = sq_bind_key(d, st, except_ca_id,
                             except_serial ? except_serial : ""))
        || (rc = sq_bind_text(d, st, 3, client_id)))
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *taken = true;
    else if (step != SQLITE_DONE)
        rc = sq_err(d, "look up a client ID");
out:
    sq_done(st);
    return rc;
}

int sq_history_add(void *db, int64_t ca_id, const char *serial, int64_t at,
                   reg_status from, reg_status to, const char *actor,
                   const char *reason)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, SQ_HISTORY_ADD, &st))
        || (rc = sq_bind_key(d, st, ca_id, serial))
        || (rc = sq_bind_text(d, st, 4,
                              from == REG_STATUS_ANY ? NULL
                                                     : reg_status_name(from)))
        || (rc = sq_bind_text(d, st, 5, reg_status_name(to)))
        || (rc = sq_bind_text(d, st, 6, actor))
        || (rc = sq_bind_text(d, st, 7, reason)))
        goto out;
    sqlite3_bind_int64(st, 3, at);
    if ((rc = sq_step_done(d, st, "add to the status history")))
        goto out;
    if (sqlite3_changes(d->db) != 1)
        rc = sq_no_cert(ca_id, serial);
out:
    sq_done(st);
    return rc;
}

int sq_history_list(void *db, int64_t ca_id, const char *serial,
                    reg_history_cb cb, void *arg)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    reg_history h;
    int rc, step;

    if ((rc = sq_stmt(d, SQ_HISTORY_LIST, &st))
        || (rc = sq_bind_key(d, st, ca_id, serial)))
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        h = (reg_history){
            .at = sqlite3_column_int64(st, 0),
            .actor = (const char *)sqlite3_column_text(st, 3),
            .reason = (const char *)sqlite3_column_text(st, 4),
        };
        if ((rc = sq_status_col(d, st, 1, &h.from))
            || (rc = sq_status_col(d, st, 2, &h.to)) || (rc = cb(&h, arg)))
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, "list the status history");
out:
    sq_done(st);
    return rc;
}

/* One row at a time, straight from the index: nothing accumulates. */
int sq_revoked_list(void *db, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                    void *arg)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    reg_revoked e;
    int rc, step;

    if ((rc = sq_stmt(d, SQ_REVOKED_LIST, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, ca_id);
    sqlite3_bind_int64(st, 2, now);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        e = (reg_revoked){
            .serial = (const char *)sqlite3_column_text(st, 0),
            .revoked_at = sqlite3_column_int64(st, 1),
            .reason = sqlite3_column_type(st, 2) == SQLITE_NULL
                          ? 0
                          : sqlite3_column_int(st, 2),
            .invalidity = sqlite3_column_int64(st, 3),
        };
        if ((rc = cb(&e, arg)))
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, "list revoked certificates");
out:
    sq_done(st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Enrollment codes                                                    */
/* ------------------------------------------------------------------ */

int sq_code_insert(void *db, const char *hash, const reg_code *c, int64_t now,
                   const char *actor, int64_t *id)
{
    struct sqldb *d = db;
    sqlite3_stmt *st = NULL;
    int rc;

    *id = 0;
    if ((rc = sq_stmt(d, SQ_CODE_INSERT, &st)))
        goto out;
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 7, c->expires);
    sqlite3_bind_int64(st, 8, c->ca_id);
    if ((rc = sq_bind_text(d, st, 1, hash))
        || (rc = sq_bind_text(d, st, 2, c->profile))
        || (rc = sq_bind_text(d, st, 3, c->client_id))
        || (rc = sq_bind_text(d, st, 4, c->subject))
        || (rc = sq_bind_text(d, st, 6, actor))
        || (rc = sq_step_done(d, st, "record an enrollment code")))
        goto out;
    *id = sqlite3_last_insert_rowid(d->db);
out:
    sq_done(st);
    return rc;
}

/* The code @hash of CA @ca_id through statement @id (SQ_CODE_TAKE takes
 * it, SQ_CODE_GIVEN reads a used one and the serial it gave, column 5):
 * *@found says whether a row came. */
static int sq_code_row(struct sqldb *d, enum sq_stmt id, const char *hash,
                       int64_t ca_id, int64_t now, reg_code *out, bool *found,
                       const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    *found = false;
    if ((rc = sq_stmt(d, id, &st)))
        goto out;
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, ca_id);
    if ((rc = sq_bind_text(d, st, 1, hash)))
        goto out;
    out->ca_id = ca_id;
    step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        goto out;
    if (step != SQLITE_ROW) {
        rc = sq_err(d, what);
        goto out;
    }
    out->id = sqlite3_column_int64(st, 0);
    out->expires = sqlite3_column_int64(st, 4);
    if ((rc = sq_col_strdup(st, 1, &out->profile))
        || (rc = sq_col_strdup(st, 2, &out->client_id))
        || (rc = sq_col_strdup(st, 3, &out->subject))
        || (id == SQ_CODE_GIVEN && (rc = sq_col_strdup(st, 5, &out->issued)))
        || (rc = sq_step_done(d, st, what)))
        goto out;
    *found = true;
out:
    sq_done(st);
    return rc;
}

int sq_code_take(void *db, const char *hash, int64_t ca_id, int64_t now,
                 reg_code *out, bool *taken)
{
    return sq_code_row(db, SQ_CODE_TAKE, hash, ca_id, now, out, taken,
                       "use an enrollment code");
}

int sq_code_given(void *db, const char *hash, int64_t ca_id, int64_t now,
                  reg_code *out, bool *found)
{
    return sq_code_row(db, SQ_CODE_GIVEN, hash, ca_id, now, out, found,
                       "read an enrollment code");
}

static int sq_code_update(struct sqldb *d, enum sq_stmt id, int64_t code,
                          int64_t ca_id, const char *serial, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = sq_stmt(d, id, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, code);
    if (serial)
        sqlite3_bind_int64(st, 3, ca_id);
    if ((serial && (rc = sq_bind_text(d, st, 2, serial)))
        || (rc = sq_step_done(d, st, what)))
        goto out;
    if (sqlite3_changes(d->db) == 0)
        rc = p11ca_err_set(P11CA_E_STATE,
                           "enrollment code %lld is not in use: cannot %s",
                           (long long)code, what);
out:
    sq_done(st);
    return rc;
}

int sq_code_issued(void *db, int64_t id, int64_t ca_id, const char *serial)
{
    return sq_code_update(db, SQ_CODE_ISSUED, id, ca_id, serial,
                          "record the certificate of an enrollment code");
}

int sq_code_release(void *db, int64_t id)
{
    return sq_code_update(db, SQ_CODE_RELEASE, id, 0, NULL,
                          "release an enrollment code");
}
