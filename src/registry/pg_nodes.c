/* SPDX-License-Identifier: Apache-2.0 */
/* Several p11ca serve nodes on one PostgreSQL registry: the sign-up
 * buckets the nodes share (schema 6, signup_buckets), and the listener
 * that receives the registry's announcements of changes (NOTIFY
 * p11ca_registry, sent by the triggers of schema 6) on a non-blocking
 * connection of its own. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/pg_int.h"

/* The channel of schema 6's triggers. */
#define PG_CHANNEL "p11ca_registry"

/* ------------------------------------------------------------------ */
/* Sign-up buckets                                                     */
/* ------------------------------------------------------------------ */

/* A double as a text parameter (in @buf, which must outlive the call). */
static void p_double(struct pg_params *p, double v, char buf[32])
{
    snprintf(buf, 32, "%.17g", v);
    pg_p_text(p, buf);
}

/* The statements of a sign-up in a transaction of their own that may
 * write (the service's loop reads through a read-only session). */
static int rw_begin(struct pgdb *d)
{
    PGresult *res = NULL;
    int rc = pg_run_sql(d, "BEGIN READ WRITE", NULL, &res, "a sign-up");

    PQclear(res);
    d->in_tx = rc == 0;
    return rc;
}

static int rw_end(struct pgdb *d, int rc)
{
    PGresult *res = NULL;
    int end =
        pg_run_sql(d, rc ? "ROLLBACK" : "COMMIT", NULL, &res, "a sign-up");

    PQclear(res);
    d->in_tx = false;
    return rc ? rc : end;
}

int pg_signup_take(void *db, const char *scope, double per_sec, double burst,
                   bool *ok, double *wait_s)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    char rate[32], cap[32];
    double left;
    int rc;

    *ok = false;
    *wait_s = -1;
    if (d->in_tx)
        return p11ca_err_set(P11CA_E_INTERNAL,
                             "a sign-up inside a transaction");
    pg_p_text(&p, scope);
    p_double(&p, per_sec, rate);
    p_double(&p, burst, cap);
    if ((rc = rw_begin(d)))
        return rc;
    rc = pg_run(d, PG_SIGNUP_TAKE, &p, &res, "a sign-up");
    *ok = !rc && PQntuples(res) == 1;
    PQclear(res);
    res = NULL;
    /* None left: when the next one comes (the bucket as it is now). */
    if (!rc && !*ok)
        rc = pg_run(d, PG_SIGNUP_WAIT, &p, &res, "a sign-up bucket");
    if (!rc && !*ok && PQntuples(res) == 1 && per_sec > 0) {
        left = strtod(PQgetvalue(res, 0, 0), NULL);
        *wait_s = left >= 1 ? 0 : (1.0 - left) / per_sec;
    }
    PQclear(res);
    rc = rw_end(d, rc);
    if (rc)
        *ok = false;
    return rc;
}

int pg_signup_refund(void *db, const char *scope, double burst)
{
    struct pgdb *d = db;
    struct pg_params p = {0};
    PGresult *res = NULL;
    char cap[32];
    int rc;

    if (d->in_tx)
        return p11ca_err_set(P11CA_E_INTERNAL,
                             "a sign-up inside a transaction");
    pg_p_text(&p, scope);
    p_double(&p, burst, cap);
    if ((rc = rw_begin(d)))
        return rc;
    rc = pg_run(d, PG_SIGNUP_REFUND, &p, &res, "a sign-up given back");
    PQclear(res);
    return rw_end(d, rc);
}

/* ------------------------------------------------------------------ */
/* The listener                                                        */
/* ------------------------------------------------------------------ */

enum listen_state {
    LS_CONNECTING, /* PQconnectPoll */
    LS_LISTEN,     /* LISTEN sent, its result not read yet */
    LS_UP,         /* notifications */
};

struct reg_listener {
    PGconn *conn;
    char *shown; /* the location for messages */
    enum listen_state st;
    int want; /* REG_WANT_* of the connection's last poll */
};

int pg_listen(void *db, reg_listener **out)
{
    struct pgdb *d = db;
    reg_listener *l = calloc(1, sizeof(*l));
    const char *vals[5];

    *out = NULL;
    if (!l || !(l->shown = strdup(d->shown))) {
        free(l);
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    pg_conn_values(d->conninfo, vals);
    l->conn = PQconnectStartParams(pg_conn_keys, vals, 1);
    if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
        reg_listener_free(l);
        return p11ca_err_set(P11CA_E_UNAVAILABLE,
                             "registry %s: cannot listen for changes",
                             d->shown);
    }
    l->st = LS_CONNECTING;
    l->want = REG_WANT_WRITE; /* as PQconnectStart documents */
    *out = l;
    return 0;
}

int reg_listener_fd(const reg_listener *l)
{
    return l && l->conn ? PQsocket(l->conn) : -1;
}

bool reg_listener_up(const reg_listener *l)
{
    return l && l->st == LS_UP;
}

void reg_listener_free(reg_listener *l)
{
    if (!l)
        return;
    if (l->conn)
        PQfinish(l->conn);
    free(l->shown);
    free(l);
}

static int lost(reg_listener *l, const char *what)
{
    char msg[256];
    const char *e = l->conn ? PQerrorMessage(l->conn) : "";
    size_t n;

    snprintf(msg, sizeof(msg), "%s", e && *e ? e : "the connection was lost");
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (msg[i] == '\n')
            msg[i] = ' ';
    return p11ca_err_set(P11CA_E_UNAVAILABLE, "registry %s: %s: %s", l->shown,
                         what, msg);
}

/* A CA's id at *@p (digits, in range), *@p moved past it. */
static bool parse_id(const char **p, long long *id)
{
    char *end;

    if (**p < '0' || **p > '9')
        return false;
    errno = 0;
    *id = strtoll(*p, &end, 10);
    if (errno || end == *p)
        return false;
    *p = end;
    return true;
}

/* A word of at most @size - 1 bytes at *@p into @out, *@p moved past it
 * and one space after it (none at the end). */
static bool parse_word(const char **p, char *out, size_t size)
{
    size_t n = strcspn(*p, " ");

    if (n == 0 || n >= size)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    if (**p == ' ')
        (*p)++;
    return true;
}

/* "cert CA_ID SERIAL STATUS" or "ca ID" into @c: 1; "crl CA_ID" (a CRL
 * made: nothing to do, the revocation was announced): 0; -1 when it is
 * none of them.  Anyone who may connect may NOTIFY: nothing is taken on
 * trust beyond what the receiver checks again. */
static int parse(const char *payload, reg_change *c)
{
    char status[32];
    const char *p = payload;
    long long id;

    memset(c, 0, sizeof(*c));
    if (strncmp(p, "cert ", 5) == 0) {
        p += 5;
        if (!parse_id(&p, &id) || *p++ != ' '
            || !parse_word(&p, c->serial, sizeof(c->serial))
            || !parse_word(&p, status, sizeof(status)) || *p != '\0')
            return -1;
        c->kind = REG_CHANGE_CERT;
        c->ca_id = id;
        if (strcmp(status, "deleted") == 0)
            c->deleted = true;
        else if (reg_status_parse(status, &c->status) != P11CA_OK)
            return -1;
        return 1;
    }
    if (strncmp(p, "ca ", 3) == 0) {
        p += 3;
        if (!parse_id(&p, &id) || *p != '\0')
            return -1;
        c->kind = REG_CHANGE_CA;
        c->ca_id = id;
        return 1;
    }
    if (strncmp(p, "crl ", 4) == 0) {
        p += 4;
        return parse_id(&p, &id) && *p == '\0' ? 0 : -1;
    }
    return -1;
}

/* LISTEN sent: its result, then notifications as they come. */
static int read_input(reg_listener *l, reg_change_cb cb, void *arg)
{
    PGresult *res;
    PGnotify *n;
    reg_change c;
    bool ok = true;

    if (!PQconsumeInput(l->conn))
        return lost(l, "listening for changes");
    if (l->st == LS_LISTEN) {
        while (!PQisBusy(l->conn) && (res = PQgetResult(l->conn))) {
            ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
            PQclear(res);
            if (!PQisBusy(l->conn) && !ok)
                break;
        }
        if (!ok)
            return lost(l, "LISTEN " PG_CHANNEL);
        if (PQisBusy(l->conn))
            return 0;
        l->st = LS_UP;
        LOG_INFO(REG, "registry %s: listening for changes", l->shown);
        c = (reg_change){.kind = REG_CHANGE_ALL};
        cb(&c, arg);
    }
    while ((n = PQnotifies(l->conn))) {
        int known =
            strcmp(n->relname, PG_CHANNEL) == 0 ? parse(n->extra, &c) : -1;

        if (known > 0)
            cb(&c, arg);
        else if (known < 0)
            LOG_INFO(REG, "registry %s: an announcement not understood",
                     l->shown);
        PQfreemem(n);
    }
    if (PQstatus(l->conn) != CONNECTION_OK)
        return lost(l, "listening for changes");
    return 0;
}

int reg_listener_step(reg_listener *l, reg_change_cb cb, void *arg, int *want)
{
    PostgresPollingStatusType ps;
    int rc;

    *want = REG_WANT_READ;
    if (l->st == LS_CONNECTING) {
        ps = PQconnectPoll(l->conn);
        if (ps == PGRES_POLLING_FAILED)
            return lost(l, "cannot connect to listen for changes");
        if (ps == PGRES_POLLING_WRITING) {
            *want = REG_WANT_WRITE;
            return 0;
        }
        if (ps != PGRES_POLLING_OK)
            return 0;
        /* Connected: the one statement of this connection, fixed text. */
        if (PQsetnonblocking(l->conn, 1) != 0
            || !PQsendQuery(l->conn, "LISTEN " PG_CHANNEL))
            return lost(l, "LISTEN " PG_CHANNEL);
        l->st = LS_LISTEN;
    }
    if (PQflush(l->conn) < 0)
        return lost(l, "LISTEN " PG_CHANNEL);
    rc = read_input(l, cb, arg);
    if (rc == 0 && PQflush(l->conn) == 1)
        *want |= REG_WANT_WRITE;
    return rc;
}
