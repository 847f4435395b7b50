/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite backend's rows as stored, for reg_copy: a walk over a table,
 * an insert of a row with all its columns, a count.  The SQL is made from
 * the fixed names of reg_copy's table list; values are always bound. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "registry/sqlite_int.h"

/* Longer than any statement of copy.c's tables. */
#define SQ_ROWS_SQL_MAX 1024

static int sq_rows_prepare(struct sqldb *d, const char *sql, const char *what,
                           sqlite3_stmt **st);
static void sq_rows_value(sqlite3_stmt *st, int i, reg_col_kind kind,
                          reg_value *v);
static int sq_rows_bind(struct sqldb *d, sqlite3_stmt *st, const reg_table *t,
                        const reg_value *row);
static int sq_rows_insert_stmt(struct sqldb *d, const reg_table *t);

static int sq_rows_prepare(struct sqldb *d, const char *sql, const char *what,
                           sqlite3_stmt **st)
{
    *st = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, st, NULL) != SQLITE_OK) {
        sqlite3_finalize(*st);
        *st = NULL;
        return sq_err(d, what);
    }
    return 0;
}

/* Column @i of the current row as @kind; borrowed until the next step. */
static void sq_rows_value(sqlite3_stmt *st, int i, reg_col_kind kind,
                          reg_value *v)
{
    *v = (reg_value){.null = sqlite3_column_type(st, i) == SQLITE_NULL};
    if (v->null)
        return;
    if (kind == REG_COL_INT) {
        v->i = sqlite3_column_int64(st, i);
    } else if (kind == REG_COL_TEXT) {
        v->s = (const char *)sqlite3_column_text(st, i);
    } else {
        v->b = sqlite3_column_blob(st, i);
        v->len = (size_t)sqlite3_column_bytes(st, i);
        if (!v->b)
            v->b = (const unsigned char *)"";
    }
}

int sq_rows_walk(void *db, const reg_table *t, reg_row_cb cb, void *arg)
{
    struct sqldb *d = db;
    reg_value row[REG_ROW_MAX_COLS];
    char sql[SQ_ROWS_SQL_MAX], what[96];
    sqlite3_stmt *st = NULL;
    int rc, step;

    snprintf(what, sizeof(what), "read table %s", t->name);
    if (t->ncols > REG_ROW_MAX_COLS)
        return p11ca_err_set(P11CA_E_INTERNAL, "%s: too many columns", what);
    if ((rc = reg_copy_sql(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s",
                           t->cols, t->name, t->order))
        || (rc = sq_rows_prepare(d, sql, what, &st)))
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        for (size_t i = 0; i < t->ncols; i++)
            sq_rows_value(st, (int)i, t->kinds[i], &row[i]);
        if ((rc = cb(row, arg)))
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = sq_err(d, what);
out:
    sqlite3_finalize(st);
    return rc;
}

static int sq_rows_bind(struct sqldb *d, sqlite3_stmt *st, const reg_table *t,
                        const reg_value *row)
{
    int rc = SQLITE_OK;

    for (size_t i = 0; rc == SQLITE_OK && i < t->ncols; i++) {
        const reg_value *v = &row[i];
        int idx = (int)i + 1;

        if (v->null)
            rc = sqlite3_bind_null(st, idx);
        else if (t->kinds[i] == REG_COL_INT)
            rc = sqlite3_bind_int64(st, idx, v->i);
        else if (t->kinds[i] == REG_COL_TEXT)
            rc = sqlite3_bind_text(st, idx, v->s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_blob(st, idx, v->b, (int)v->len, SQLITE_STATIC);
    }
    return rc == SQLITE_OK ? 0 : sq_err(d, "bind a copied row");
}

/* The insert of @t, prepared once per table of a copy. */
static int sq_rows_insert_stmt(struct sqldb *d, const reg_table *t)
{
    char sql[SQ_ROWS_SQL_MAX], params[REG_ROW_MAX_COLS * 5] = "";
    size_t used = 0;
    int rc;

    if (d->row_ins && d->row_ins_t == t)
        return 0;
    sqlite3_finalize(d->row_ins);
    d->row_ins = NULL;
    d->row_ins_t = NULL;
    if (t->ncols == 0 || t->ncols > REG_ROW_MAX_COLS)
        return p11ca_err_set(P11CA_E_INTERNAL, "table %s: bad column count",
                             t->name);
    for (size_t i = 0; i < t->ncols; i++)
        used += (size_t)snprintf(params + used, sizeof(params) - used,
                                 i ? ", ?%zu" : "?%zu", i + 1);
    if ((rc = reg_copy_sql(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (%s)",
                           t->name, t->cols, params))
        || (rc = sq_rows_prepare(d, sql, "prepare a copied row's insert",
                                 &d->row_ins)))
        return rc;
    d->row_ins_t = t;
    return 0;
}

int sq_row_insert(void *db, const reg_table *t, const reg_value *row)
{
    struct sqldb *d = db;
    char what[96];
    int rc;

    if ((rc = sq_rows_insert_stmt(d, t)))
        return rc;
    snprintf(what, sizeof(what), "copy a row into table %s", t->name);
    if (!(rc = sq_rows_bind(d, d->row_ins, t, row)))
        rc = sq_step_done(d, d->row_ins, what);
    sqlite3_reset(d->row_ins);
    sqlite3_clear_bindings(d->row_ins);
    return rc;
}

int sq_rows_count(void *db, const reg_table *t, size_t *n)
{
    struct sqldb *d = db;
    char sql[SQ_ROWS_SQL_MAX], what[96];
    sqlite3_stmt *st = NULL;
    int rc;

    *n = 0;
    snprintf(what, sizeof(what), "count the rows of table %s", t->name);
    if ((rc =
             reg_copy_sql(sql, sizeof(sql), "SELECT count(*) FROM %s", t->name))
        || (rc = sq_rows_prepare(d, sql, what, &st)))
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        rc = sq_err(d, what);
    sqlite3_finalize(st);
    return rc;
}
