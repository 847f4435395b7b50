/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail replayed: the status (and revocation reason) each
 * certificate's entries lead to, compared with the certificates table, so
 * that a status written straight into the database is found. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "registry/internal.h"

/* Entries of the trail that change a certificate; more are refused. */
#define REPLAY_MAX_EVENTS 50000000

/* What the trail says of one certificate: its events sorted by serial,
 * then reduced to the last one of each serial. */
struct replay_event {
    char serial[sizeof(((reg_cert *)0)->serial)];
    int64_t seq;
    int status; /* a reg_status, or REPLAY_DELETED */
    int reason; /* CRL reason named by the entry, -1 if none */
    bool seen;  /* the certificates table has it */
};

#define REPLAY_DELETED (-1)

struct replay {
    struct replay_event *ev;
    size_t n, cap;
    size_t certs;
};

static int replay_add(struct replay *rp, const char *serial, int64_t seq,
                      int status, int reason);
static int replay_status_of(const char *action, json_t *details, int *status,
                            int *reason);
static int replay_entry(const reg_audit *a, void *arg);
static int replay_cmp(const void *a, const void *b);
static int replay_cmp_serial(const void *a, const void *b);
static void replay_reduce(struct replay *rp);
static int replay_cert(const reg_cert *c, void *arg);
static int replay_missing(const struct replay *rp);
static int replay_run(reg *r, struct replay *rp);

static int replay_add(struct replay *rp, const char *serial, int64_t seq,
                      int status, int reason)
{
    struct replay_event *ev;
    size_t cap;

    if (rp->n == rp->cap) {
        if (rp->cap >= REPLAY_MAX_EVENTS)
            return p11ca_err_set(
                P11CA_E_REGISTRY,
                "the audit trail has more than %d certificate entries: too many to replay",
                REPLAY_MAX_EVENTS);
        cap = rp->cap ? rp->cap * 2 : 1024;
        ev = realloc(rp->ev, cap * sizeof(*ev));
        if (!ev)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        rp->ev = ev;
        rp->cap = cap;
    }
    ev = &rp->ev[rp->n++];
    memset(ev, 0, sizeof(*ev));
    if (reg_serial_normalise(serial, ev->serial, sizeof(ev->serial)) != 0)
        snprintf(ev->serial, sizeof(ev->serial), "%s", serial);
    ev->seq = seq;
    ev->status = status;
    ev->reason = reason;
    return 0;
}

/*
 * The status an entry leads to: "issue" and "register" carry "status",
 * "delete" removes, any other entry with a "to" moves the certificate
 * there (activate, deactivate, revoke, and later kinds).  1 when the entry
 * changes a certificate, 0 when it does not, or P11CA_E_STATE.
 */
static int replay_status_of(const char *action, json_t *details, int *status,
                            int *reason)
{
    const char *st = NULL, *rs;
    reg_status parsed;

    *reason = -1;
    if (strcmp(action, "delete") == 0) {
        *status = REPLAY_DELETED;
        return 1;
    }
    if (strcmp(action, "issue") == 0 || strcmp(action, "register") == 0)
        st = json_string_value(json_object_get(details, "status"));
    else
        st = json_string_value(json_object_get(details, "to"));
    if (!st)
        return strcmp(action, "issue") == 0 || strcmp(action, "register") == 0
                   ? P11CA_E_STATE
                   : 0;
    if (reg_status_parse(st, &parsed) != 0)
        return P11CA_E_STATE;
    *status = (int)parsed;
    rs = json_string_value(json_object_get(details, "reason"));
    if (parsed == REG_REVOKED && rs && reg_reason_parse(rs, reason) != 0)
        return P11CA_E_STATE;
    return 1;
}

static int replay_entry(const reg_audit *a, void *arg)
{
    json_t *details = NULL;
    int status = 0, reason = -1, rc;

    if (!a->object || !a->action)
        return 0;
    if (a->details && a->details[0] == '{')
        details = json_loads(a->details, JSON_REJECT_DUPLICATES, NULL);
    rc = replay_status_of(a->action, details, &status, &reason);
    json_decref(details);
    if (rc == P11CA_E_STATE)
        return p11ca_err_set(rc,
                             "audit entry %" PRId64
                             " (%s %s) does not say which status it leads to",
                             a->seq, a->action, a->object);
    if (rc == 1)
        rc = replay_add(arg, a->object, a->seq, status, reason);
    return rc;
}

static int replay_cmp(const void *a, const void *b)
{
    const struct replay_event *x = a, *y = b;
    int c = strcmp(x->serial, y->serial);

    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int replay_cmp_serial(const void *a, const void *b)
{
    const struct replay_event *x = a, *y = b;

    return strcmp(x->serial, y->serial);
}

/* Keep the last event of each serial, carrying a revocation reason
 * forward (a later entry of a revoked certificate names none). */
static void replay_reduce(struct replay *rp)
{
    size_t out = 0;

    if (rp->n == 0) /* no array at all: qsort wants one */
        return;
    qsort(rp->ev, rp->n, sizeof(*rp->ev), replay_cmp);
    for (size_t i = 0; i < rp->n; i++) {
        if (out > 0 && strcmp(rp->ev[out - 1].serial, rp->ev[i].serial) == 0) {
            if (rp->ev[i].reason < 0 && rp->ev[i].status == REG_REVOKED
                && rp->ev[out - 1].status == REG_REVOKED)
                rp->ev[i].reason = rp->ev[out - 1].reason;
            rp->ev[out - 1] = rp->ev[i];
        } else {
            rp->ev[out++] = rp->ev[i];
        }
    }
    rp->n = out;
}

/* One certificate of the table against what the trail says of it. */
static int replay_cert(const reg_cert *c, void *arg)
{
    struct replay *rp = arg;
    struct replay_event key, *ev;

    rp->certs++;
    memset(&key, 0, sizeof(key));
    memcpy(key.serial, c->serial, sizeof(key.serial));
    ev = rp->n
             ? bsearch(&key, rp->ev, rp->n, sizeof(*rp->ev), replay_cmp_serial)
             : NULL;
    if (!ev)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is in the registry but the audit trail never recorded it (added outside p11ca)",
            c->serial);
    ev->seen = true;
    if (ev->status == REPLAY_DELETED)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is in the registry but audit entry %" PRId64
            " deleted it (put back outside p11ca)",
            c->serial, ev->seq);
    if ((int)c->status != ev->status)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is %s in the registry, but its audited history leads to %s (audit entry %" PRId64
            "): its status was changed outside p11ca",
            c->serial, reg_status_name(c->status),
            reg_status_name((reg_status)ev->status), ev->seq);
    if (c->status == REG_REVOKED && ev->reason >= 0 && c->reason != ev->reason)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is revoked with reason %s in the registry, but audit entry %" PRId64
            " revoked it with reason %s: changed outside p11ca",
            c->serial, c->reason >= 0 ? reg_reason_name(c->reason) : "(none)",
            ev->seq, reg_reason_name(ev->reason));
    return 0;
}

/* A certificate the trail has and has not deleted must be in the table. */
static int replay_missing(const struct replay *rp)
{
    for (size_t i = 0; i < rp->n; i++)
        if (!rp->ev[i].seen && rp->ev[i].status != REPLAY_DELETED)
            return p11ca_err_set(
                P11CA_E_STATE,
                "certificate %s is missing from the registry, but the audit trail never deleted it (last entry %" PRId64
                "): removed outside p11ca",
                rp->ev[i].serial, rp->ev[i].seq);
    return 0;
}

static int replay_run(reg *r, struct replay *rp)
{
    reg_filter all = {0};
    int rc = r->be->audit_list(r->db, 0, replay_entry, rp);

    if (rc)
        return rc;
    replay_reduce(rp);
    rc = r->be->cert_search(r->db, &all, replay_cert, rp);
    return rc ? rc : replay_missing(rp);
}

int reg_audit_verify_status(reg *r, size_t *certs)
{
    struct replay rp = {0};
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if (certs)
        *certs = 0;
    /* One snapshot of the trail and the table, even while others write. */
    if ((rc = r->be->begin(r->db, false)))
        return rc;
    rc = replay_run(r, &rp);
    r->be->rollback(r->db);
    if (certs)
        *certs = rp.certs;
    free(rp.ev);
    return rc;
}
