/* SPDX-License-Identifier: Apache-2.0 */
/* What the SQLite backend's two files share: the connection, its cache of
 * prepared statements (all SQL text is in backend_sqlite.c), and helpers. */
#ifndef P11CA_REG_SQLITE_INT_H
#define P11CA_REG_SQLITE_INT_H

#include <sqlite3.h>

#include "registry/internal.h"

/* Every statement the backend runs, prepared once per connection. */
enum sq_stmt {
    SQ_CERT_INSERT,
    SQ_CERT_GET,
    SQ_CERT_SET_STATUS,
    SQ_CERT_DELETE,
    SQ_CERT_SET_REPLACES,
    SQ_CERT_SET_REVOKE_AFTER,
    SQ_CLIENT_ID_ACTIVE,
    SQ_HISTORY_ADD,
    SQ_HISTORY_LIST,
    SQ_REVOKED_LIST,
    SQ_CRL_BUMP,
    SQ_CRL_GET,
    SQ_CA_INSERT,
    SQ_CA_FIND,
    SQ_CA_LIST,
    SQ_CA_SET_AUTO,
    SQ_AUDIT_APPEND,
    SQ_AUDIT_LAST,
    SQ_AUDIT_LIST,
    SQ_HEAD_ADD,
    SQ_HEAD_LIST,
    SQ_HEAD_LIST_DESC,
    SQ_VERSION,
    SQ_CODE_INSERT,
    SQ_CODE_TAKE,
    SQ_CODE_ISSUED,
    SQ_CODE_GIVEN,
    SQ_CODE_RELEASE,
    SQ_N
};

struct sqldb {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[SQ_N];
    /* The insert of reg_copy's current table (sqlite_rows.c). */
    sqlite3_stmt *row_ins;
    const reg_table *row_ins_t;
};

/* The columns of a reg_cert, in the order sq_row_cert reads them. */
#define SQ_CERT_COLS                                                           \
    "serial, ca_id, subject, issuer, cn, ou, client_id, profile, origin, "     \
    "status, not_before, not_after, recorded_at, revoked_at, reason, "         \
    "invalidity, replaces, key_hash, der, revoke_after"

/* The key of one certificate in a WHERE clause, ?1 and ?2 bound to its
 * CA id (0: none) and serial; the unique index certs_issuer_serial is on
 * exactly this expression, so the lookup uses it. */
#define SQ_CERT_KEY "coalesce(ca_id, 0) = ?1 AND serial = ?2"

/* sq_stmt - the cached statement @id, reset and unbound; 0 or an error. */
int sq_stmt(struct sqldb *d, enum sq_stmt id, sqlite3_stmt **st) REG_WUR;
/* sq_done - reset @st and clear its bindings (accepts NULL). */
void sq_done(sqlite3_stmt *st);
/* sq_err - P11CA_E_REGISTRY with the path, @what and SQLite's message. */
int sq_err(struct sqldb *d, const char *what);
/* sq_bind_text - bind @s (NULL binds NULL); 0 or an error. */
int sq_bind_text(struct sqldb *d, sqlite3_stmt *st, int idx,
                 const char *s) REG_WUR;
/* sq_step_done - run a statement that returns no row. */
int sq_step_done(struct sqldb *d, sqlite3_stmt *st, const char *what) REG_WUR;
/* sq_col_strdup - a copy of text column @i, NULL for SQL NULL. */
int sq_col_strdup(sqlite3_stmt *st, int i, char **out) REG_WUR;

/* sq_bind_key - bind (@ca_id, @serial) to ?1 and ?2; 0 or an error. */
int sq_bind_key(struct sqldb *d, sqlite3_stmt *st, int64_t ca_id,
                const char *serial) REG_WUR;

/* The certificate operations (sqlite_certs.c). */
int sq_cert_insert(void *db, const reg_cert *c);
int sq_cert_get(void *db, int64_t ca_id, const char *serial, reg_cert *out);
int sq_cert_set_status(void *db, int64_t ca_id, const char *serial,
                       reg_status st, int64_t revoked_at, int reason,
                       int64_t invalidity);
int sq_cert_delete(void *db, int64_t ca_id, const char *serial);
int sq_cert_set_replaces(void *db, int64_t ca_id, const char *serial,
                         const char *old);
int sq_cert_set_revoke_after(void *db, int64_t ca_id, const char *serial,
                             int64_t at);
int sq_cert_search(void *db, const reg_filter *f, reg_cert_cb cb, void *arg);
int sq_cert_count(void *db, const reg_filter *f, size_t *n);
int sq_client_id_active(void *db, const char *client_id, int64_t except_ca_id,
                        const char *except_serial, bool *taken);
int sq_history_add(void *db, int64_t ca_id, const char *serial, int64_t at,
                   reg_status from, reg_status to, const char *actor,
                   const char *reason);
int sq_history_list(void *db, int64_t ca_id, const char *serial,
                    reg_history_cb cb, void *arg);
int sq_revoked_list(void *db, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                    void *arg);

/* Enrollment codes (sqlite_certs.c). */
int sq_code_insert(void *db, const char *hash, const reg_code *c, int64_t now,
                   const char *actor, int64_t *id);
int sq_code_take(void *db, const char *hash, int64_t ca_id, int64_t now,
                 reg_code *out, bool *taken);
int sq_code_issued(void *db, int64_t id, int64_t ca_id, const char *serial);
int sq_code_release(void *db, int64_t id);
int sq_code_given(void *db, const char *hash, int64_t ca_id, int64_t now,
                  reg_code *out, bool *found);

/* Rows as stored, for reg_copy (sqlite_rows.c). */
int sq_rows_walk(void *db, const reg_table *t, reg_row_cb cb, void *arg);
int sq_row_insert(void *db, const reg_table *t, const reg_value *row);
int sq_rows_count(void *db, const reg_table *t, size_t *n);

#endif
