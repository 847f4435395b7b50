/* SPDX-License-Identifier: Apache-2.0 */
/* Moving a registry: every table copied row by row, values as stored, into
 * an empty registry of any backend, checked before it commits. */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "registry/internal.h"

#define I REG_COL_INT
#define T REG_COL_TEXT
#define B REG_COL_BYTES

int reg_copy_sql(char *sql, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(sql, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        return p11ca_err_set(P11CA_E_INTERNAL, "registry copy: SQL too long");
    return 0;
}

static const reg_col_kind copy_cas_kinds[] = {I, T, T, B, I, I, I, T};
static const reg_col_kind copy_certs_kinds[] = {I, T, I, T, T, T, T, T, T, T, T,
                                                I, I, I, I, I, I, T, T, B, I};
static const reg_col_kind copy_history_kinds[] = {I, I, I, T, T, T, T};
static const reg_col_kind copy_crl_kinds[] = {I, I};
static const reg_col_kind copy_audit_kinds[] = {I, I, T, T, T, T, T, T};
static const reg_col_kind copy_heads_kinds[] = {I, I, T, I, I, B};
static const reg_col_kind copy_codes_kinds[] = {I, I, T, T, T, T,
                                                I, T, I, I, T};

#undef I
#undef T
#undef B

#define COPY_TABLE(name, cols, order, identity, kinds)                         \
    {                                                                          \
        name, cols, order, identity, sizeof(kinds) / sizeof(kinds[0]), kinds   \
    }

/*
 * Every table of the schema (version 5) but schema_version, which each
 * registry keeps for itself; parents before children, so that foreign keys
 * hold after each row.
 */
static const reg_table copy_tables[REG_COPY_TABLES] = {
    COPY_TABLE("cas",
               "id, name, subject, der, added_at, external, auto_register, "
               "auto_status",
               "id", "id", copy_cas_kinds),
    COPY_TABLE("certs",
               "id, serial, ca_id, subject, issuer, cn, ou, client_id, "
               "profile, origin, status, not_before, not_after, recorded_at, "
               "revoked_at, reason, invalidity, replaces, key_hash, der, "
               "revoke_after",
               "id", "id", copy_certs_kinds),
    COPY_TABLE("status_history",
               "id, cert_id, at, from_status, to_status, actor, reason", "id",
               "id", copy_history_kinds),
    COPY_TABLE("crl_numbers", "ca_id, last", "ca_id", NULL, copy_crl_kinds),
    COPY_TABLE("audit",
               "seq, at, actor, action, object, details, prev_hash, hash",
               "seq", NULL, copy_audit_kinds),
    COPY_TABLE("audit_heads", "id, seq, hash, at, ca_id, signed", "id", "id",
               copy_heads_kinds),
    COPY_TABLE("enroll_codes",
               "id, ca_id, hash, profile, client_id, subject, created_at, "
               "created_by, expires, used_at, used_by",
               "id", "id", copy_codes_kinds),
};

struct copy_ctx {
    reg *to;
    const reg_table *t;
    size_t rows;
};

static int copy_row(const reg_value *row, void *arg);
static int copy_check_empty(reg *to);
static int copy_table(reg *from, reg *to, const reg_table *t, size_t *rows);
static int copy_check_audit(reg *from, reg *to);
static int copy_all(reg *from, reg *to, reg_copy_count *counts);

static int copy_row(const reg_value *row, void *arg)
{
    struct copy_ctx *c = arg;
    int rc = c->to->be->row_insert(c->to->db, c->t, row);

    if (!rc)
        c->rows++;
    return rc;
}

/* A target with any row is someone's registry: never merge into it. */
static int copy_check_empty(reg *to)
{
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < REG_COPY_TABLES; i++) {
        if ((rc = to->be->rows_count(to->db, &copy_tables[i], &n)))
            return rc;
        if (n)
            return p11ca_err_set(
                P11CA_E_EXISTS,
                "the target registry is not empty (table %s holds %zu rows): a registry is only moved into a new one; nothing was written",
                copy_tables[i].name, n);
    }
    return 0;
}

/* One table, then its count on both sides. */
static int copy_table(reg *from, reg *to, const reg_table *t, size_t *rows)
{
    struct copy_ctx c = {.to = to, .t = t};
    size_t n_from = 0, n_to = 0;
    int rc;

    *rows = 0;
    if ((rc = from->be->rows_count(from->db, t, &n_from))
        || (rc = from->be->rows_walk(from->db, t, copy_row, &c)))
        return rc;
    if (to->be->rows_done && (rc = to->be->rows_done(to->db, t)))
        return rc;
    if ((rc = to->be->rows_count(to->db, t, &n_to)))
        return rc;
    if (n_to != n_from || c.rows != n_from)
        return p11ca_err_set(
            P11CA_E_STATE,
            "table %s: the source has %zu rows, %zu were copied, the target has %zu; nothing was written",
            t->name, n_from, c.rows, n_to);
    *rows = n_to;
    return 0;
}

/* The same newest entry, a chain that holds, statuses that replay. */
static int copy_check_audit(reg *from, reg *to)
{
    char h_from[REG_HASH_HEX_SIZE] = "", h_to[REG_HASH_HEX_SIZE] = "";
    int64_t s_from = 0, s_to = 0;
    int rc;

    if ((rc = from->be->audit_last(from->db, &s_from, h_from, sizeof(h_from)))
        || (rc = to->be->audit_last(to->db, &s_to, h_to, sizeof(h_to))))
        return rc;
    if (s_from != s_to || strcmp(h_from, h_to) != 0)
        return p11ca_err_set(P11CA_E_STATE,
                             "the copy's newest audit entry (%" PRId64
                             ") is not the source's (%" PRId64
                             "); nothing was written",
                             s_to, s_from);
    if ((rc = reg_audit_verify(to, NULL)))
        return p11ca_err_set(
            rc,
            "the copy's audit trail does not verify: %s; nothing was written",
            p11ca_err_message());
    if ((rc = reg_audit_verify_status_tx(to, NULL)))
        return p11ca_err_set(
            rc,
            "the copy's certificates do not match their audit trail: %s; nothing was written",
            p11ca_err_message());
    return 0;
}

static int copy_all(reg *from, reg *to, reg_copy_count *counts)
{
    size_t rows = 0;
    int rc;

    if ((rc = copy_check_empty(to)))
        return rc;
    for (size_t i = 0; i < REG_COPY_TABLES; i++) {
        if ((rc = copy_table(from, to, &copy_tables[i], &rows)))
            return rc;
        LOG_DBG(REG, "copied table %s: %zu rows", copy_tables[i].name, rows);
        if (counts)
            counts[i] = (reg_copy_count){copy_tables[i].name, rows};
    }
    return copy_check_audit(from, to);
}

int reg_copy(reg *from, reg *to, reg_copy_count counts[REG_COPY_TABLES])
{
    int rc;

    return_val_if_fail(from && to, P11CA_E_INTERNAL);
    if (counts)
        memset(counts, 0, REG_COPY_TABLES * sizeof(*counts));
    if (!from->be->rows_walk || !to->be->row_insert)
        return p11ca_err_set(P11CA_E_INTERNAL,
                             "this registry backend cannot copy rows");
    /* One snapshot of the source; the target's write lock for the whole
     * copy (no scheduled revocation runs first: nothing but the copy is
     * written). */
    if ((rc = from->be->begin(from->db, false)))
        return rc;
    if ((rc = to->be->begin(to->db, true))) {
        from->be->rollback(from->db);
        return rc;
    }
    rc = copy_all(from, to, counts);
    if (!rc)
        rc = to->be->commit(to->db);
    else
        to->be->rollback(to->db);
    from->be->rollback(from->db);
    if (rc && counts)
        memset(counts, 0, REG_COPY_TABLES * sizeof(*counts));
    return rc;
}
