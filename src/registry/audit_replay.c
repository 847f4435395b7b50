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

/* Bulk revocations written before their entries named each certificate
 * (schema 1); more are refused. */
#define REPLAY_MAX_LEGACY 1000000

/*
 * A certificate is (issuer CA id, serial), as in the certificates table
 * (0: issuer unknown).  Entries written since 002_issuer_serial say which
 * CA in their "ca_id": "issue" and "register" always did, status changes,
 * deletions, scheduled revocations and the certificates of a
 * "revoke-bulk" do since then.  The migration leaves the entries of a
 * schema 1 registry as they were, so its "activate", "deactivate",
 * "revoke" and "delete" entries name a serial only.  Under schema 1 a
 * serial was unique in the whole registry: such an entry was about the one
 * certificate with that serial that the trail had recorded (by an "issue"
 * or "register", which carry the CA) and not deleted before it.  The
 * replay resolves it so; with none, or with several (only possible after
 * the migration, whose code always names the CA), the entry is refused as
 * not saying which certificate it changes.
 */
#define REPLAY_CA_UNNAMED INT64_MIN

/* What the trail says of one certificate: the events of its entries,
 * sorted by serial and sequence number, then reduced to one state per
 * (CA id, serial). */
struct replay_event {
    char serial[sizeof(((reg_cert *)0)->serial)];
    int64_t ca_id; /* REPLAY_CA_UNNAMED until resolved */
    int64_t seq;
    int status; /* a reg_status, or REPLAY_DELETED */
    int reason; /* CRL reason named by the entry, -1 if none */
    bool seen;  /* the certificates table has it */
};

#define REPLAY_DELETED (-1)

/*
 * A schema 1 "revoke-bulk" entry: one entry with the count, the reason
 * and the filter, no entry per certificate and no list of them.  What it
 * revoked cannot be named; a certificate that the table shows revoked at
 * that entry's time (the bulk revocation wrote one time in both) with its
 * reason, and whose audited history ends before it unrevoked, is taken as
 * revoked by it, at most "count" certificates per entry.
 */
struct replay_legacy {
    int64_t seq;
    int64_t at;
    int reason;
    int64_t left;
};

struct replay {
    struct replay_event *ev;
    size_t n, cap;
    struct replay_legacy *bulk;
    size_t nbulk, capbulk;
    size_t certs;
};

static int replay_add(struct replay *rp, const char *serial, int64_t ca_id,
                      int64_t seq, int status, int reason);
static int replay_status_of(const char *action, json_t *details, int *status,
                            int *reason);
static int replay_bad(const reg_audit *a, const char *what);
static int replay_legacy_add(struct replay *rp, const reg_audit *a,
                             json_t *details);
static int replay_bulk(struct replay *rp, const reg_audit *a, json_t *details);
static int replay_entry(const reg_audit *a, void *arg);
static int replay_cmp_seq(const void *a, const void *b);
static int replay_cmp_key(const void *a, const void *b);
static int replay_resolve(struct replay_event *group, size_t states,
                          struct replay_event *e);
static int replay_reduce(struct replay *rp);
static void replay_name(char *buf, size_t len, const char *serial,
                        int64_t ca_id);
static bool replay_legacy_revoked(struct replay *rp, const reg_cert *c,
                                  const struct replay_event *ev);
static int replay_cert(const reg_cert *c, void *arg);
static int replay_missing(const struct replay *rp);
static int replay_run(reg *r, struct replay *rp);

static int replay_add(struct replay *rp, const char *serial, int64_t ca_id,
                      int64_t seq, int status, int reason)
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
    ev->ca_id = ca_id;
    ev->seq = seq;
    ev->status = status;
    ev->reason = reason;
    return 0;
}

/*
 * The status an entry leads to: "issue" and "register" carry "status",
 * "delete" removes, any other entry with a "to" moves the certificate
 * there (activate, deactivate, revoke, and later kinds); "schedule-revoke"
 * changes nothing until its "revoke" entry.  1 when the entry changes a
 * certificate, 0 when it does not, or P11CA_E_STATE.
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

static int replay_bad(const reg_audit *a, const char *what)
{
    return p11ca_err_set(P11CA_E_STATE, "audit entry %" PRId64 " (%s%s%s) %s",
                         a->seq, a->action, a->object ? " " : "",
                         a->object ? a->object : "", what);
}

static int replay_legacy_add(struct replay *rp, const reg_audit *a,
                             json_t *details)
{
    json_t *count = json_object_get(details, "count");
    const char *rs = json_string_value(json_object_get(details, "reason"));
    struct replay_legacy *b;
    size_t cap;
    int reason = -1;

    if (!json_is_integer(count) || json_integer_value(count) < 0 || !rs
        || reg_reason_parse(rs, &reason) != 0)
        return replay_bad(a, "does not say how many certificates it "
                             "revoked, or why");
    if (rp->nbulk == rp->capbulk) {
        if (rp->capbulk >= REPLAY_MAX_LEGACY)
            return p11ca_err_set(
                P11CA_E_REGISTRY,
                "the audit trail has more than %d bulk revocations: too many to replay",
                REPLAY_MAX_LEGACY);
        cap = rp->capbulk ? rp->capbulk * 2 : 16;
        b = realloc(rp->bulk, cap * sizeof(*b));
        if (!b)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        rp->bulk = b;
        rp->capbulk = cap;
    }
    rp->bulk[rp->nbulk++] = (struct replay_legacy){
        .seq = a->seq,
        .at = a->at,
        .reason = reason,
        .left = json_integer_value(count),
    };
    return 0;
}

/*
 * A "revoke-bulk" entry: each certificate of its "certs" revoked with its
 * "reason".  Since the bulk revocation writes a "revoke" entry per
 * certificate first, this repeats what they said (and stands alone in
 * trails written before it did).  Without "certs": schema 1's summary.
 */
static int replay_bulk(struct replay *rp, const reg_audit *a, json_t *details)
{
    json_t *certs = json_object_get(details, "certs"), *one;
    const char *rs = json_string_value(json_object_get(details, "reason"));
    const char *serial;
    json_t *ca;
    size_t i;
    int reason = -1, rc;

    if (!json_is_object(details))
        return replay_bad(a, "has no details to replay");
    if (!certs)
        return replay_legacy_add(rp, a, details);
    if (!json_is_array(certs) || !rs || reg_reason_parse(rs, &reason) != 0)
        return replay_bad(a, "does not list its certificates with a reason");
    json_array_foreach(certs, i, one)
    {
        ca = json_object_get(one, "ca_id");
        serial = json_string_value(json_object_get(one, "serial"));
        if (!json_is_integer(ca) || json_integer_value(ca) < 0 || !serial)
            return replay_bad(a, "lists a certificate without its CA id and "
                                 "serial");
        if ((rc = replay_add(rp, serial, json_integer_value(ca), a->seq,
                             REG_REVOKED, reason)))
            return rc;
    }
    return 0;
}

static int replay_entry(const reg_audit *a, void *arg)
{
    json_t *details = NULL, *ca;
    int64_t ca_id = REPLAY_CA_UNNAMED;
    int status = 0, reason = -1, rc;

    if (!a->action)
        return 0;
    if (a->details && a->details[0] == '{')
        details = json_loads(a->details, JSON_REJECT_DUPLICATES, NULL);
    if (strcmp(a->action, "revoke-bulk") == 0) {
        rc = replay_bulk(arg, a, details);
        goto out;
    }
    if (!a->object) {
        rc = 0;
        goto out;
    }
    rc = replay_status_of(a->action, details, &status, &reason);
    if (rc == P11CA_E_STATE) {
        rc = replay_bad(a, "does not say which status it leads to");
        goto out;
    }
    ca = json_object_get(details, "ca_id");
    if (ca && (!json_is_integer(ca) || json_integer_value(ca) < 0)) {
        rc = replay_bad(a, "names a CA id that is not one");
        goto out;
    }
    if (ca)
        ca_id = json_integer_value(ca);
    if (rc == 1)
        rc = replay_add(arg, a->object, ca_id, a->seq, status, reason);
out:
    json_decref(details);
    return rc;
}

static int replay_cmp_seq(const void *a, const void *b)
{
    const struct replay_event *x = a, *y = b;
    int c = strcmp(x->serial, y->serial);

    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int replay_cmp_key(const void *a, const void *b)
{
    const struct replay_event *x = a, *y = b;
    int c = strcmp(x->serial, y->serial);

    if (c)
        return c;
    return x->ca_id < y->ca_id ? -1 : x->ca_id > y->ca_id;
}

/*
 * The CA of an event that names none: the one certificate of its serial
 * that the trail has and has not deleted so far (@group, @states of them;
 * see REPLAY_CA_UNNAMED).  0, or P11CA_E_STATE.
 */
static int replay_resolve(struct replay_event *group, size_t states,
                          struct replay_event *e)
{
    size_t live = 0;
    int64_t ca_id = 0, other = 0;

    for (size_t i = 0; i < states; i++) {
        if (group[i].status == REPLAY_DELETED)
            continue;
        if (live++)
            other = group[i].ca_id;
        else
            ca_id = group[i].ca_id;
    }
    if (live == 1) {
        e->ca_id = ca_id;
        return 0;
    }
    if (!live)
        return p11ca_err_set(
            P11CA_E_STATE,
            "audit entry %" PRId64
            " changes certificate %s without naming its CA, and the trail records no such certificate before it",
            e->seq, reg_serial_shown(e->serial));
    return p11ca_err_set(
        P11CA_E_STATE,
        "audit entry %" PRId64
        " changes certificate %s without naming its CA, and the trail has one of CA %lld and one of CA %lld: it does not say which",
        e->seq, reg_serial_shown(e->serial), (long long)ca_id,
        (long long)other);
}

/*
 * One state per (CA id, serial): the last event of each, in the order of
 * the trail, a revocation reason carried forward (a later entry of a
 * revoked certificate names none).  Then sorted by (serial, CA id).
 */
static int replay_reduce(struct replay *rp)
{
    size_t out = 0, group = 0, k;
    struct replay_event e;
    int rc;

    if (rp->n == 0) /* no array at all: qsort wants one */
        return 0;
    qsort(rp->ev, rp->n, sizeof(*rp->ev), replay_cmp_seq);
    for (size_t i = 0; i < rp->n; i++) {
        e = rp->ev[i]; /* rp->ev[out] may be this one */
        if (out == 0 || strcmp(rp->ev[group].serial, e.serial) != 0)
            group = out;
        if (e.ca_id == REPLAY_CA_UNNAMED
            && (rc = replay_resolve(&rp->ev[group], out - group, &e)))
            return rc;
        for (k = group; k < out && rp->ev[k].ca_id != e.ca_id; k++)
            ;
        if (k < out && e.reason < 0 && e.status == REG_REVOKED
            && rp->ev[k].status == REG_REVOKED)
            e.reason = rp->ev[k].reason;
        rp->ev[k] = e;
        if (k == out)
            out++;
    }
    rp->n = out;
    qsort(rp->ev, rp->n, sizeof(*rp->ev), replay_cmp_key);
    return 0;
}

/* "certificate 4E of CA 2", or "certificate 4E" when its issuer is
 * unknown (reg_cert_shown). */
static void replay_name(char *buf, size_t len, const char *serial,
                        int64_t ca_id)
{
    snprintf(buf, len, "certificate %s", reg_cert_shown(ca_id, serial));
}

/* Whether a schema 1 bulk revocation accounts for @c, revoked in the
 * table while its history (@ev) ends unrevoked (see replay_legacy). */
static bool replay_legacy_revoked(struct replay *rp, const reg_cert *c,
                                  const struct replay_event *ev)
{
    if (c->status != REG_REVOKED || ev->status == REPLAY_DELETED)
        return false;
    for (size_t i = 0; i < rp->nbulk; i++) {
        struct replay_legacy *b = &rp->bulk[i];

        if (b->left > 0 && b->seq > ev->seq && b->at == c->revoked_at
            && b->reason == c->reason) {
            b->left--;
            return true;
        }
    }
    return false;
}

/* One certificate of the table against what the trail says of it. */
static int replay_cert(const reg_cert *c, void *arg)
{
    struct replay *rp = arg;
    struct replay_event key, *ev;
    char name[sizeof(c->serial) + 32];

    rp->certs++;
    replay_name(name, sizeof(name), c->serial, c->ca_id);
    memset(&key, 0, sizeof(key));
    memcpy(key.serial, c->serial, sizeof(key.serial));
    key.ca_id = c->ca_id;
    ev = rp->n ? bsearch(&key, rp->ev, rp->n, sizeof(*rp->ev), replay_cmp_key)
               : NULL;
    if (!ev)
        return p11ca_err_set(
            P11CA_E_STATE,
            "%s is in the registry but the audit trail never recorded it (added outside p11ca)",
            name);
    ev->seen = true;
    if (ev->status == REPLAY_DELETED)
        return p11ca_err_set(P11CA_E_STATE,
                             "%s is in the registry but audit entry %" PRId64
                             " deleted it (put back outside p11ca)",
                             name, ev->seq);
    if ((int)c->status != ev->status && !replay_legacy_revoked(rp, c, ev))
        return p11ca_err_set(
            P11CA_E_STATE,
            "%s is %s in the registry, but its audited history leads to %s (audit entry %" PRId64
            "): its status was changed outside p11ca",
            name, reg_status_name(c->status),
            reg_status_name((reg_status)ev->status), ev->seq);
    if (c->status == REG_REVOKED && ev->status == REG_REVOKED && ev->reason >= 0
        && c->reason != ev->reason)
        return p11ca_err_set(
            P11CA_E_STATE,
            "%s is revoked with reason %s in the registry, but audit entry %" PRId64
            " revoked it with reason %s: changed outside p11ca",
            name, c->reason >= 0 ? reg_reason_name(c->reason) : "(none)",
            ev->seq, reg_reason_name(ev->reason));
    return 0;
}

/* A certificate the trail has and has not deleted must be in the table. */
static int replay_missing(const struct replay *rp)
{
    char name[sizeof(rp->ev->serial) + 32];

    for (size_t i = 0; i < rp->n; i++) {
        if (rp->ev[i].seen || rp->ev[i].status == REPLAY_DELETED)
            continue;
        replay_name(name, sizeof(name), rp->ev[i].serial, rp->ev[i].ca_id);
        return p11ca_err_set(
            P11CA_E_STATE,
            "%s is missing from the registry, but the audit trail never deleted it (last entry %" PRId64
            "): removed outside p11ca",
            name, rp->ev[i].seq);
    }
    return 0;
}

static int replay_run(reg *r, struct replay *rp)
{
    reg_filter all = {0};
    int rc = r->be->audit_list(r->db, 0, replay_entry, rp);

    if (rc || (rc = replay_reduce(rp)))
        return rc;
    rc = r->be->cert_search(r->db, &all, replay_cert, rp);
    return rc ? rc : replay_missing(rp);
}

int reg_audit_verify_status(reg *r, size_t *certs)
{
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if (certs)
        *certs = 0;
    /* One snapshot of the trail and the table, even while others write. */
    if ((rc = r->be->begin(r->db, false)))
        return rc;
    rc = reg_audit_verify_status_tx(r, certs);
    r->be->rollback(r->db);
    return rc;
}

int reg_audit_verify_status_tx(reg *r, size_t *certs)
{
    struct replay rp = {0};
    int rc;

    if (certs)
        *certs = 0;
    rc = replay_run(r, &rp);
    if (certs)
        *certs = rp.certs;
    free(rp.ev);
    free(rp.bulk);
    return rc;
}
