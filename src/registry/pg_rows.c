/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend's rows as stored, for reg_copy: a walk over a
 * table (through a cursor), an insert of a row with all its columns, a
 * count, and the identity sequence set past the copied ids.  The SQL is
 * made from the fixed names of reg_copy's table list; values are always
 * bound parameters. */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "registry/pg_int.h"

/* Longer than any statement of copy.c's tables. */
#define PG_ROWS_SQL_MAX 1024

struct pg_rows_walk {
    const reg_table *t;
    reg_row_cb cb;
    void *arg;
};

static int pg_rows_row(struct pgdb *d, const PGresult *res, int i, void *ctx);

/* One row of the cursor as values; the bytes are unescaped for the call. */
static int pg_rows_row(struct pgdb *d, const PGresult *res, int i, void *ctx)
{
    struct pg_rows_walk *w = ctx;
    reg_value row[REG_ROW_MAX_COLS];
    unsigned char *bytes[REG_ROW_MAX_COLS] = {0};
    int rc = 0;

    (void)d;
    for (size_t c = 0; !rc && c < w->t->ncols; c++) {
        int col = (int)c;

        row[c] = (reg_value){.null = PQgetisnull(res, i, col) != 0};
        if (row[c].null)
            continue;
        if (w->t->kinds[c] == REG_COL_INT)
            row[c].i = pg_int(res, i, col);
        else if (w->t->kinds[c] == REG_COL_TEXT)
            row[c].s = PQgetvalue(res, i, col);
        else if (!(rc = pg_bytes(res, i, col, &bytes[c], &row[c].len)))
            row[c].b = bytes[c] ? bytes[c] : (const unsigned char *)"";
    }
    if (!rc)
        rc = w->cb(row, w->arg);
    for (size_t c = 0; c < w->t->ncols; c++)
        PQfreemem(bytes[c]);
    return rc;
}

int pg_rows_walk(void *db, const reg_table *t, reg_row_cb cb, void *arg)
{
    struct pg_rows_walk w = {.t = t, .cb = cb, .arg = arg};
    char sql[PG_ROWS_SQL_MAX], what[96];
    int rc;

    snprintf(what, sizeof(what), "read table %s", t->name);
    if (t->ncols > REG_ROW_MAX_COLS)
        return p11ca_err_set(P11CA_E_INTERNAL, "%s: too many columns", what);
    if ((rc = reg_copy_sql(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s",
                           t->cols, t->name, t->order)))
        return rc;
    return pg_walk(db, sql, NULL, pg_rows_row, &w, what);
}

int pg_row_insert(void *db, const reg_table *t, const reg_value *row)
{
    char sql[PG_ROWS_SQL_MAX], params[REG_ROW_MAX_COLS * 5] = "", what[96];
    struct pg_params p = {0};
    PGresult *res = NULL;
    size_t used = 0;
    int rc;

    if (t->ncols == 0 || t->ncols > REG_ROW_MAX_COLS
        || t->ncols > PG_MAX_PARAMS)
        return p11ca_err_set(P11CA_E_INTERNAL, "table %s: bad column count",
                             t->name);
    for (size_t i = 0; i < t->ncols; i++) {
        used += (size_t)snprintf(params + used, sizeof(params) - used,
                                 i ? ", $%zu" : "$%zu", i + 1);
        if (row[i].null)
            pg_p_text(&p, NULL);
        else if (t->kinds[i] == REG_COL_INT)
            pg_p_int(&p, row[i].i);
        else if (t->kinds[i] == REG_COL_TEXT)
            pg_p_text(&p, row[i].s);
        else
            pg_p_bytes(&p, row[i].b, row[i].len);
    }
    snprintf(what, sizeof(what), "copy a row into table %s", t->name);
    if (!(rc = reg_copy_sql(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (%s)",
                            t->name, t->cols, params)))
        rc = pg_run_sql(db, sql, &p, &res, what);
    PQclear(res);
    return rc;
}

int pg_rows_count(void *db, const reg_table *t, size_t *n)
{
    char sql[PG_ROWS_SQL_MAX], what[96];
    PGresult *res = NULL;
    int rc;

    *n = 0;
    snprintf(what, sizeof(what), "count the rows of table %s", t->name);
    if (!(rc = reg_copy_sql(sql, sizeof(sql), "SELECT count(*) FROM %s",
                            t->name))
        && !(rc = pg_run_sql(db, sql, NULL, &res, what)))
        *n = PQntuples(res) == 1 ? (size_t)pg_int(res, 0, 0) : 0;
    PQclear(res);
    return rc;
}

/* Rows copied with their ids leave the identity's sequence where it was:
 * the next row the database numbers must come after them. */
int pg_rows_done(void *db, const reg_table *t)
{
    char sql[PG_ROWS_SQL_MAX], what[96];
    PGresult *res = NULL;
    int rc;

    if (!t->identity)
        return 0;
    snprintf(what, sizeof(what), "set the sequence of table %s", t->name);
    if (!(rc = reg_copy_sql(sql, sizeof(sql),
                            "SELECT setval(pg_get_serial_sequence('%s', '%s'), "
                            "coalesce(max(%s), 0) + 1, false) FROM %s",
                            t->name, t->identity, t->identity, t->name)))
        rc = pg_run_sql(db, sql, NULL, &res, what);
    PQclear(res);
    return rc;
}
