/* SPDX-License-Identifier: Apache-2.0 */
/* What the PostgreSQL backend's two files share: the connection, its
 * prepared statements (all fixed SQL text is in backend_pg.c), bound
 * parameters, and the error classification. */
#ifndef P11CA_REG_PG_INT_H
#define P11CA_REG_PG_INT_H

#include <libpq-fe.h>

#include "registry/internal.h"

/* Every statement the backend prepares, once per connection. */
enum pg_stmt {
    PG_CERT_INSERT,
    PG_CERT_GET,
    PG_CERT_SET_STATUS,
    PG_CERT_DELETE,
    PG_CERT_SET_REPLACES,
    PG_CERT_SET_REVOKE_AFTER,
    PG_CLIENT_ID_ACTIVE,
    PG_HISTORY_ADD,
    PG_HISTORY_LIST,
    PG_REVOKED_LIST,
    PG_CRL_BUMP,
    PG_CRL_GET,
    PG_CA_INSERT,
    PG_CA_FIND,
    PG_CA_LIST,
    PG_CA_SET_AUTO,
    PG_AUDIT_APPEND,
    PG_AUDIT_LAST,
    PG_AUDIT_LIST,
    PG_HEAD_ADD,
    PG_HEAD_LIST,
    PG_HEAD_LIST_DESC,
    PG_CODE_INSERT,
    PG_CODE_TAKE,
    PG_CODE_ISSUED,
    PG_CODE_GIVEN,
    PG_CODE_RELEASE,
    PG_SIGNUP_TAKE,
    PG_SIGNUP_WAIT,
    PG_SIGNUP_REFUND,
    PG_N
};

struct pgdb {
    PGconn *conn;
    char *conninfo; /* as given: may hold a password, never printed */
    char *shown;    /* for messages: without any password */
    unsigned flags; /* REG_OPEN_* */
    bool in_tx;     /* between begin and commit/rollback */
    reg_fault fault;
    bool prepared[PG_N];
    unsigned walks; /* cursors open (pg_walk), for their names */
};

/* The columns of a reg_cert, in the order pg_row_cert reads them. */
#define PG_CERT_COLS                                                           \
    "serial, ca_id, subject, issuer, cn, ou, client_id, profile, origin, "     \
    "status, not_before, not_after, recorded_at, revoked_at, reason, "         \
    "invalidity, replaces, key_hash, der, revoke_after"

/* One certificate: $1 its CA id (0: none), $2 its serial; the unique
 * index certs_issuer_serial is on exactly this expression. */
#define PG_CERT_KEY "coalesce(ca_id, 0) = $1::bigint AND serial = $2"

/* Parameters of one statement: text (NULL: SQL NULL), integers as
 * decimal text, bytes in binary format. */
#define PG_MAX_PARAMS 24
struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
};

void pg_p_text(struct pg_params *p, const char *s);
void pg_p_int(struct pg_params *p, int64_t v);
/* @v, or NULL when @v is 0. */
void pg_p_int0(struct pg_params *p, int64_t v);
void pg_p_bytes(struct pg_params *p, const unsigned char *b, size_t len);

/*
 * pg_run - run the prepared statement @id (prepared on first use on this
 * connection) with @p (may be NULL).  0 and *@res (caller PQclears), or
 * an error with the message naming @what; *@res then holds the failed
 * result when there is one (constraint names, SQLSTATE), else NULL.
 */
int pg_run(struct pgdb *d, enum pg_stmt id, const struct pg_params *p,
           PGresult **res, const char *what) REG_WUR;
/* pg_run_sql - the same for @sql built from fixed fragments (a search). */
int pg_run_sql(struct pgdb *d, const char *sql, const struct pg_params *p,
               PGresult **res, const char *what) REG_WUR;
/*
 * pg_walk - run the fixed query @sql with @p through a cursor, fetching
 * PG_WALK_ROWS rows at a time and calling @row on each (non-zero stops
 * the walk and is returned): a list of millions of rows takes the memory
 * of one batch, and @row may run other statements between fetches.  In
 * the caller's transaction, or in a read-only one of its own.
 */
#define PG_WALK_ROWS 1000
typedef int (*pg_row_fn)(struct pgdb *d, const PGresult *res, int i, void *ctx);
int pg_walk(struct pgdb *d, const char *sql, const struct pg_params *p,
            pg_row_fn row, void *ctx, const char *what) REG_WUR;
/* The text of statement @id (for pg_walk). */
const char *pg_stmt_sql(enum pg_stmt id);
/* The backend's begin, commit and rollback (backend_pg.c). */
int pg_tx_begin(struct pgdb *d, bool write) REG_WUR;
int pg_tx_commit(struct pgdb *d) REG_WUR;
void pg_tx_rollback(struct pgdb *d);

/* pg_fail - P11CA_E_REGISTRY for the failed @res (may be NULL), naming
 * @what, and the fault it was (unreachable, conflict, other). */
int pg_fail(struct pgdb *d, const PGresult *res, const char *what);
/* pg_sqlstate/pg_constraint - of a failed @res ("" when none). */
const char *pg_sqlstate(const PGresult *res);
const char *pg_constraint(const PGresult *res);

/* Cell values: NULL is 0 / NULL; pg_strdup copies (NULL for SQL NULL). */
int64_t pg_int(const PGresult *res, int row, int col);
int pg_strdup(const PGresult *res, int row, int col, char **out) REG_WUR;
/* pg_bytes - a bytea cell as bytes in *@out (PQfreemem), length *@len. */
int pg_bytes(const PGresult *res, int row, int col, unsigned char **out,
             size_t *len) REG_WUR;
/* pg_status - a status cell; a value no code wrote is an error. */
int pg_status(struct pgdb *d, const PGresult *res, int row, int col,
              reg_status *out) REG_WUR;
/* pg_changed - rows a command changed (PQcmdTuples). */
long pg_changed(const PGresult *res);

/* The certificate operations (pg_certs.c). */
int pg_cert_insert(void *db, const reg_cert *c);
int pg_cert_get(void *db, int64_t ca_id, const char *serial, reg_cert *out);
int pg_cert_set_status(void *db, int64_t ca_id, const char *serial,
                       reg_status st, int64_t revoked_at, int reason,
                       int64_t invalidity);
int pg_cert_delete(void *db, int64_t ca_id, const char *serial);
int pg_cert_set_replaces(void *db, int64_t ca_id, const char *serial,
                         const char *old);
int pg_cert_set_revoke_after(void *db, int64_t ca_id, const char *serial,
                             int64_t at);
int pg_cert_search(void *db, const reg_filter *f, reg_cert_cb cb, void *arg);
int pg_cert_count(void *db, const reg_filter *f, size_t *n);
int pg_client_id_active(void *db, const char *client_id, int64_t except_ca_id,
                        const char *except_serial, bool *taken);
int pg_history_add(void *db, int64_t ca_id, const char *serial, int64_t at,
                   reg_status from, reg_status to, const char *actor,
                   const char *reason);
int pg_history_list(void *db, int64_t ca_id, const char *serial,
                    reg_history_cb cb, void *arg);
int pg_revoked_list(void *db, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                    void *arg);

/* Enrollment codes (pg_certs.c). */
int pg_code_insert(void *db, const char *hash, const reg_code *c, int64_t now,
                   const char *actor, int64_t *id);
int pg_code_take(void *db, const char *hash, int64_t ca_id, int64_t now,
                 reg_code *out, bool *taken);
int pg_code_issued(void *db, int64_t id, int64_t ca_id, const char *serial);
int pg_code_release(void *db, int64_t id);
int pg_code_given(void *db, const char *hash, int64_t ca_id, int64_t now,
                  reg_code *out, bool *found);

/* Several nodes (pg_nodes.c): the sign-up buckets, the listener. */
int pg_signup_take(void *db, const char *scope, double per_sec, double burst,
                   bool *ok, double *wait_s);
int pg_signup_refund(void *db, const char *scope, double burst);
int pg_listen(void *db, reg_listener **out);
/* pg_conn_params - the keywords and values every connection is made with
 * (@conninfo last, expanded). */
extern const char *const pg_conn_keys[];
void pg_conn_values(const char *conninfo, const char *vals[5]);

/* Rows as stored, for reg_copy (pg_rows.c). */
int pg_rows_walk(void *db, const reg_table *t, reg_row_cb cb, void *arg);
int pg_row_insert(void *db, const reg_table *t, const reg_value *row);
int pg_rows_count(void *db, const reg_table *t, size_t *n);
int pg_rows_done(void *db, const reg_table *t);

#endif
