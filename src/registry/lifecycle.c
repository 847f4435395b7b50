/* SPDX-License-Identifier: Apache-2.0 */
/* The registry's changes: opening by location, and the lifecycle rules
 * (uniqueness, rate limits, transitions, deletion), each change one
 * transaction with its status history and audit entry. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

struct lc_record {
    const reg_cert *certs;
    size_t n;
    const char *actor;
    const reg_limit *limit; /* NULL: none */
    bool registered;        /* reg_register rather than reg_record_* */
    reg_status reg_status;  /* of a registered certificate */
    size_t bad;             /* index of the failing certificate */
    int64_t now;            /* the second of the last attempt */
    size_t seen;            /* what the limit counted when it refused */
};

struct lc_status {
    int64_t ca_id;
    char serial[sizeof(((reg_cert *)0)->serial)];
    reg_status to;
    int reason;
    int64_t invalidity;
    const char *actor;
    const char *why;
};

struct lc_holder {
    int64_t except_ca_id;
    const char *except;
    int64_t ca_id; /* the holder's */
    char serial[sizeof(((reg_cert *)0)->serial)];
};

struct lc_ca {
    const unsigned char *der;
    size_t len;
    const char *name;
    const char *subject;
    bool external;
    int64_t id;
};

struct lc_crl {
    int64_t ca_id;
    uint64_t n;
};

struct lc_ca_find {
    int64_t id;
    bool found;
    bool external;
};

struct lc_ca_auto {
    int64_t id;
    bool on;
    reg_status st;
    const char *actor;
};

static char lc_origin_issued[] = "issued";
static char lc_origin_registered[] = "registered";

static int lc_tx_once(reg *r, int (*fn)(reg *r, void *arg), void *arg);
static const char *lc_conninfo(const char *location);
static int lc_location(const char *location, const struct reg_backend **be,
                       const char **path);
static int lc_check_actor(const char *actor);
static int lc_prepare(const reg_cert *in, const struct lc_record *rec,
                      reg_cert *c, char *replaces, size_t rlen);
static int lc_holder_cb(const reg_cert *c, void *arg);
static int lc_serial_free(reg *r, const reg_cert *c);
static int lc_client_id_free(reg *r, const char *client_id,
                             int64_t except_ca_id, const char *except);
static int lc_rate_check(reg *r, int64_t now, struct lc_record *rec);
static int lc_rate_refused(const struct lc_record *rec, int64_t first);
static int lc_audit_cert(reg *r, int64_t now, const reg_cert *c,
                         const char *actor, const char *action);
static int lc_record_one(reg *r, const reg_cert *in, struct lc_record *rec,
                         int64_t now);
static int lc_record_tx(reg *r, void *arg);
static int lc_record(reg *r, struct lc_record *rec, size_t *bad);
static int lc_reason_check(int reason);
static int lc_transition(reg *r, int64_t now, const reg_cert *c, reg_status to);
static const char *lc_action(reg_status to);
static int lc_audit_status(reg *r, int64_t now, const reg_cert *c,
                           const struct lc_status *s);
static int lc_set_status_tx(reg *r, void *arg);
static int lc_ca_find_cb(const reg_ca *ca, void *arg);
static int lc_ca_external(reg *r, int64_t ca_id, bool *external);
static int lc_delete_check(reg *r, int64_t now, const reg_cert *c);
static int lc_delete_tx(reg *r, void *arg);
static int lc_crl_tx(reg *r, void *arg);
static int lc_ca_tx(reg *r, void *arg);
static int lc_ca_add(reg *r, const unsigned char *der, size_t len,
                     const char *name, bool external, int64_t *id);
static int lc_ca_auto_tx(reg *r, void *arg);

/* One attempt of reg_tx. */
static int lc_tx_once(reg *r, int (*fn)(reg *r, void *arg), void *arg)
{
    int rc = r->be->begin(r->db, true);

    if (rc)
        return rc;
    rc = reg_revoke_due_tx(r, reg_now(), NULL);
    if (!rc)
        rc = fn(r, arg);
    if (!rc)
        rc = r->be->commit(r->db);
    if (rc)
        r->be->rollback(r->db);
    return rc;
}

/* Write transactions: what is due goes first, then @fn; all or nothing;
 * one that lost to a concurrent transaction runs again from the start. */
int reg_tx(reg *r, int (*fn)(reg *r, void *arg), void *arg)
{
    int rc = 0;

    for (unsigned attempt = 1; attempt <= REG_TX_TRIES; attempt++) {
        rc = lc_tx_once(r, fn, arg);
        if (!rc || reg_last_fault(r) != REG_FAULT_CONFLICT)
            break;
        LOG_DBG(REG, "transaction conflict, attempt %u of %u: %s", attempt,
                REG_TX_TRIES, p11ca_err_message());
    }
    return rc;
}

reg_fault reg_last_fault(reg *r)
{
    return_val_if_fail(r, REG_FAULT_NONE);
    return r->be->fault ? r->be->fault(r->db) : REG_FAULT_NONE;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

static int lc_location(const char *location, const struct reg_backend **be,
                       const char **path)
{
    if (!location || !*location)
        return p11ca_err_set(P11CA_E_INPUT, "no registry location given");
    /* The backend shows a PostgreSQL location without its password. */
    if (reg_location_is_pg(location)) {
        *be = &reg_backend_pg;
        *path = lc_conninfo(location);
        if (!**path)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "registry location \"%s\" names no PostgreSQL database (write postgresql://HOST/DB or postgresql:KEYWORD=VALUE ...)",
                location);
        return 0;
    }
    *be = &reg_backend_sqlite;
    *path = location;
    if (strncmp(location, "sqlite:", 7) == 0)
        *path = location + 7;
    if (!**path)
        return p11ca_err_set(
            P11CA_E_INPUT, "registry location \"%s\" names no file", location);
    return 0;
}

bool reg_location_is_pg(const char *location)
{
    return location
           && (strncmp(location, "postgresql:", 11) == 0
               || strncmp(location, "postgres:", 9) == 0);
}

/* What libpq gets: a URI whole, a keyword string without the prefix. */
static const char *lc_conninfo(const char *location)
{
    const char *rest = strchr(location, ':') + 1;

    return strncmp(rest, "//", 2) == 0 ? location : rest;
}

bool reg_location_has_password(const char *location)
{
    return reg_location_is_pg(location)
           && reg_pg_has_password(lc_conninfo(location));
}

const char *reg_location_shown(const char *location)
{
    static __thread char shown[512];

    if (!reg_location_is_pg(location)) {
        snprintf(shown, sizeof(shown), "%s", location ? location : "");
        return shown;
    }
    if (reg_pg_shown(lc_conninfo(location), shown, sizeof(shown)))
        snprintf(shown, sizeof(shown), "postgresql:(not a connection string)");
    return shown;
}

int reg_open(const char *location, reg **out)
{
    return reg_open_ex(location, REG_OPEN_CREATE, out);
}

int reg_open_ex(const char *location, unsigned flags, reg **out)
{
    const struct reg_backend *be = NULL;
    const char *path = NULL;
    reg *r = NULL;
    int rc;

    return_val_if_fail(out, P11CA_E_INTERNAL);
    *out = NULL;
    if ((rc = lc_location(location, &be, &path)))
        goto out;
    r = calloc(1, sizeof(*r));
    if (!r) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    r->be = be;
    if ((rc = be->open(path, flags, &r->db)))
        goto out;
    *out = r;
    r = NULL;
out:
    free(r);
    return rc;
}

void reg_close(reg *r)
{
    if (!r)
        return;
    r->be->close(r->db);
    free(r);
}

int reg_schema_version(reg *r)
{
    return_val_if_fail(r, P11CA_E_INTERNAL);
    return r->be->schema_version(r->db);
}

/* ------------------------------------------------------------------ */
/* Recording                                                           */
/* ------------------------------------------------------------------ */

static int lc_check_actor(const char *actor)
{
    if (!actor || !*actor)
        return p11ca_err_set(P11CA_E_INPUT,
                             "every registry change needs an actor");
    return 0;
}

/*
 * @c = @in with what the registry decides: normalised serials, origin,
 * status of a registered certificate, recorded_at (set later), no
 * revocation.  @c shares @in's strings: never clear it.
 */
static int lc_prepare(const reg_cert *in, const struct lc_record *rec,
                      reg_cert *c, char *replaces, size_t rlen)
{
    int rc;

    *c = *in;
    c->revoke_after = 0;
    if ((rc = reg_serial_normalise(in->serial, c->serial, sizeof(c->serial)))
        || (in->replaces
            && (rc = reg_serial_normalise(in->replaces, replaces, rlen))))
        return rc;
    c->replaces = in->replaces ? replaces : NULL;
    if (!in->subject || !in->issuer || !in->der || !in->der_len)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "certificate %s: subject, issuer and DER are required",
            reg_cert_shown(c->ca_id, c->serial));
    if (in->not_after < in->not_before || in->ca_id < 0)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "certificate %s: notAfter before notBefore, or a negative CA id",
            reg_serial_shown(c->serial));
    if (rec->registered) {
        c->status = rec->reg_status;
        c->origin = lc_origin_registered;
        c->profile = NULL;
    } else if (in->status == REG_ACTIVATED || in->status == REG_NOT_ACTIVATED) {
        c->origin = lc_origin_issued;
    } else if (in->status == REG_REVOKED && in->revoked_at > 0
               && in->reason >= 0 && in->reason <= 10 && in->reason != 7) {
        /* History brought in (import-index): revoked when it was issued. */
        c->origin = lc_origin_issued;
        return 0;
    } else {
        return p11ca_err_set(
            P11CA_E_INPUT,
            "certificate %s: an issued certificate is recorded as activated, not-activated or (with its revocation time and reason) revoked, not %s",
            reg_cert_shown(c->ca_id, c->serial), reg_status_name(in->status));
    }
    c->revoked_at = 0;
    c->reason = -1;
    c->invalidity = 0;
    return 0;
}

static int lc_holder_cb(const reg_cert *c, void *arg)
{
    struct lc_holder *h = arg;

    if (h->except && c->ca_id == h->except_ca_id
        && strcmp(c->serial, h->except) == 0)
        return 0;
    memcpy(h->serial, c->serial, sizeof(h->serial));
    h->ca_id = c->ca_id;
    return 1;
}

/* Checked before the client ID (and before the insert, where SQLite may
 * report the client-ID index first): a taken serial must say so, since
 * the CA answers it by picking another serial.  Serials are unique per
 * CA only: another CA's certificate may have the same one. */
static int lc_serial_free(reg *r, const reg_cert *c)
{
    reg_cert have = {0};
    int rc = r->be->cert_get(r->db, c->ca_id, c->serial, &have);

    reg_cert_clear(&have);
    if (rc == P11CA_E_NOTFOUND) {
        p11ca_err_clear();
        return 0;
    }
    if (rc)
        return rc;
    return p11ca_err_set(P11CA_E_EXISTS, "serial %s is already in the registry",
                         reg_cert_shown(c->ca_id, c->serial));
}

/* P11CA_E_EXISTS, naming the holder, if another activated certificate
 * than (@except_ca_id, @except) holds @client_id. */
static int lc_client_id_free(reg *r, const char *client_id,
                             int64_t except_ca_id, const char *except)
{
    struct lc_holder h = {
        .except_ca_id = except_ca_id,
        .except = except,
        .serial = "?",
    };
    reg_filter f = {.client_id = client_id, .status = REG_ACTIVATED};
    bool taken = false;
    int rc;

    if ((rc = r->be->client_id_active(r->db, client_id, except_ca_id, except,
                                      &taken))
        || !taken)
        return rc;
    rc = r->be->cert_search(r->db, &f, lc_holder_cb, &h);
    if (rc < 0)
        return rc;
    return p11ca_err_set(
        P11CA_E_EXISTS,
        "client ID \"%s\" is held by activated certificate %s: deactivate or revoke it first",
        client_id, reg_cert_shown(h.ca_id, h.serial));
}

/* Counted inside the write transaction, so concurrent recorders cannot
 * both slip under the limit.  A second of the registry's clock is the
 * window (recorded_at has one-second resolution); what is counted is the
 * limit's kind: one profile's issued certificates, or sign-ups. */
static int lc_rate_check(reg *r, int64_t now, struct lc_record *rec)
{
    const reg_limit *l = rec->limit;
    reg_filter f = {.issued_after = now};
    size_t n = 0;
    int rc;

    if (!l || !l->per_sec)
        return 0;
    f.profile = l->profile;
    f.origin = l->profile ? lc_origin_issued : lc_origin_registered;
    if ((rc = r->be->cert_count(r->db, &f, &n)))
        return rc;
    if (n < l->per_sec)
        return 0;
    rec->seen = n;
    /* The message is made once the waiting is over (lc_rate_refused). */
    return P11CA_E_RATE;
}

/* The refusal, once @rec waited from the second @first on. */
static int lc_rate_refused(const struct lc_record *rec, int64_t first)
{
    const reg_limit *l = rec->limit;
    const char *what = l->what ? l->what : "the rate limit";

    if (rec->now <= first)
        return p11ca_err_set(
            P11CA_E_RATE,
            "rate limit reached: %s allows %u per second and %zu were recorded in this second; not waiting for a slot",
            what, l->per_sec, rec->seen);
    return p11ca_err_set(
        P11CA_E_RATE,
        "rate limit reached: %s allows %u per second; waited %lld s and every second was full (%zu recorded in the last one)",
        what, l->per_sec, (long long)(rec->now - first), rec->seen);
}

static int lc_audit_cert(reg *r, int64_t now, const reg_cert *c,
                         const char *actor, const char *action)
{
    struct reg_details d;
    int rc;

    reg_details_init(&d);
    reg_details_str(&d, "subject", c->subject);
    reg_details_str(&d, "client_id", c->client_id);
    reg_details_str(&d, "profile", c->profile);
    reg_details_str(&d, "status", reg_status_name(c->status));
    reg_details_int(&d, "ca_id", c->ca_id);
    reg_details_int(&d, "not_after", c->not_after);
    reg_details_str(&d, "replaces", c->replaces);
    rc = reg_details_finish(&d);
    if (!rc)
        rc = reg_audit_append_tx(r, now, actor, action, c->serial, d.data);
    reg_details_free(&d);
    return rc;
}

static int lc_record_one(reg *r, const reg_cert *in, struct lc_record *rec,
                         int64_t now)
{
    char replaces[sizeof(in->serial)];
    reg_cert c;
    int rc;

    if ((rc = lc_prepare(in, rec, &c, replaces, sizeof(replaces))))
        return rc;
    c.recorded_at = now;
    if ((rc = lc_rate_check(r, now, rec)))
        return rc;
    if ((rc = lc_serial_free(r, &c)))
        return rc;
    if (c.status == REG_ACTIVATED && c.client_id
        && (rc = lc_client_id_free(r, c.client_id, 0, NULL)))
        return rc;
    if ((rc = r->be->cert_insert(r->db, &c))
        || (rc = r->be->history_add(r->db, c.ca_id, c.serial, now,
                                    REG_STATUS_ANY, c.status, rec->actor,
                                    c.origin)))
        return rc;
    return lc_audit_cert(r, now, &c, rec->actor,
                         rec->registered ? "register" : "issue");
}

static int lc_record_tx(reg *r, void *arg)
{
    struct lc_record *rec = arg;
    int rc = 0;

    rec->now = reg_now();
    for (rec->bad = 0; rec->bad < rec->n; rec->bad++)
        if ((rc = lc_record_one(r, &rec->certs[rec->bad], rec, rec->now)))
            return rc;
    return 0;
}

/*
 * One transaction; when the limit's second is full, again in the next
 * second (outside any transaction), until the limit's wait is used up.
 */
static int lc_record(reg *r, struct lc_record *rec, size_t *bad)
{
    int64_t first = 0;
    int rc;

    return_val_if_fail(r && (rec->certs || !rec->n), P11CA_E_INTERNAL);
    return_val_if_fail(!rec->limit || !rec->registered || !rec->limit->profile,
                       P11CA_E_INTERNAL);
    rec->bad = rec->n; /* stays so if no certificate is to blame */
    if (bad)
        *bad = rec->n;
    if ((rc = lc_check_actor(rec->actor)))
        return rc;
    for (;;) {
        rc = reg_tx(r, lc_record_tx, rec);
        if (rc != P11CA_E_RATE)
            break;
        if (!first)
            first = rec->now;
        if (rec->now - first >= (int64_t)rec->limit->wait) {
            rc = lc_rate_refused(rec, first);
            break;
        }
        reg_clock_wait(rec->now);
    }
    if (rc && bad)
        *bad = rec->bad;
    return rc;
}

int reg_record_issued(reg *r, const reg_cert *c, const char *actor,
                      const reg_limit *limit)
{
    struct lc_record rec = {
        .certs = c,
        .n = 1,
        .actor = actor,
        .limit = limit,
    };

    return lc_record(r, &rec, NULL);
}

int reg_record_batch(reg *r, const reg_cert *certs, size_t n, const char *actor,
                     const reg_limit *limit, size_t *bad)
{
    struct lc_record rec = {
        .certs = certs,
        .n = n,
        .actor = actor,
        .limit = limit,
    };

    return lc_record(r, &rec, bad);
}

int reg_register(reg *r, const reg_cert *c, const char *actor,
                 const reg_limit *limit)
{
    return reg_register_as(r, c, REG_REGISTERED_NOT_ACTIVATED, actor, limit);
}

int reg_register_as(reg *r, const reg_cert *c, reg_status st, const char *actor,
                    const reg_limit *limit)
{
    struct lc_record rec = {
        .certs = c,
        .n = 1,
        .actor = actor,
        .limit = limit,
        .registered = true,
        .reg_status = st,
    };

    if (st != REG_REGISTERED_NOT_ACTIVATED && st != REG_ACTIVATED)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "a registered certificate starts activated or registered-not-activated, not %s",
            reg_status_name(st));
    return lc_record(r, &rec, NULL);
}

/* ------------------------------------------------------------------ */
/* Status changes                                                      */
/* ------------------------------------------------------------------ */

static int lc_reason_check(int reason)
{
    if (reason < 0 || reason > 10 || reason == 7)
        return p11ca_err_set(P11CA_E_INPUT,
                             "bad CRL reason code %d (0..10, not 7)", reason);
    return 0;
}

/* Whether @c may move to @to at @now (see reg_set_status in registry.h). */
static int lc_transition(reg *r, int64_t now, const reg_cert *c, reg_status to)
{
    const char *from = reg_status_name(c->status);

    if (c->status == REG_REVOKED)
        return p11ca_err_set(P11CA_E_STATE,
                             "certificate %s is revoked: revocation is final",
                             reg_cert_shown(c->ca_id, c->serial));
    switch (to) {
    case REG_ACTIVATED:
        if (c->status != REG_NOT_ACTIVATED
            && c->status != REG_REGISTERED_NOT_ACTIVATED)
            return p11ca_err_set(
                P11CA_E_STATE,
                "certificate %s is %s: only a not-activated or registered-not-activated certificate can be activated",
                reg_cert_shown(c->ca_id, c->serial), from);
        if (c->not_after <= now)
            return p11ca_err_set(
                P11CA_E_STATE,
                "certificate %s has expired: an expired certificate is kept for the record, never activated",
                reg_cert_shown(c->ca_id, c->serial));
        return c->client_id
                   ? lc_client_id_free(r, c->client_id, c->ca_id, c->serial)
                   : 0;
    case REG_NOT_ACTIVATED:
        if (c->status != REG_ACTIVATED)
            return p11ca_err_set(
                P11CA_E_STATE,
                "certificate %s is %s: only an activated certificate can be deactivated",
                reg_cert_shown(c->ca_id, c->serial), from);
        return 0;
    case REG_REVOKED:
        return 0;
    default:
        return p11ca_err_set(
            P11CA_E_STATE, "certificate %s: no change leads to %s",
            reg_cert_shown(c->ca_id, c->serial), reg_status_name(to));
    }
}

static const char *lc_action(reg_status to)
{
    switch (to) {
    case REG_ACTIVATED:
        return "activate";
    case REG_NOT_ACTIVATED:
        return "deactivate";
    default:
        return "revoke";
    }
}

static int lc_audit_status(reg *r, int64_t now, const reg_cert *c,
                           const struct lc_status *s)
{
    struct reg_details d;
    int rc;

    reg_details_init(&d);
    reg_details_int(&d, "ca_id", c->ca_id);
    reg_details_str(&d, "from", reg_status_name(c->status));
    reg_details_str(&d, "to", reg_status_name(s->to));
    if (s->to == REG_REVOKED)
        reg_details_str(&d, "reason", reg_reason_name(s->reason));
    if (s->to == REG_REVOKED && s->invalidity)
        reg_details_int(&d, "invalidity", s->invalidity);
    reg_details_str(&d, "why", s->why);
    rc = reg_details_finish(&d);
    if (!rc)
        rc = reg_audit_append_tx(r, now, s->actor, lc_action(s->to), c->serial,
                                 d.data);
    reg_details_free(&d);
    return rc;
}

int reg_change_tx(reg *r, int64_t now, const reg_cert *c, reg_status to,
                  int reason, int64_t invalidity, const char *actor,
                  const char *why)
{
    struct lc_status s = {
        .ca_id = c->ca_id,
        .to = to,
        .reason = reason,
        .invalidity = invalidity,
        .actor = actor,
        .why = why,
    };
    bool revoke = to == REG_REVOKED;
    int rc;

    if ((rc = lc_transition(r, now, c, to)))
        return rc;
    rc =
        r->be->cert_set_status(r->db, c->ca_id, c->serial, to, revoke ? now : 0,
                               revoke ? reason : -1, revoke ? invalidity : 0);
    if (!rc && revoke && c->revoke_after)
        rc = r->be->cert_set_revoke_after(r->db, c->ca_id, c->serial, 0);
    if (rc
        || (rc = r->be->history_add(r->db, c->ca_id, c->serial, now, c->status,
                                    to, actor, why)))
        return rc;
    return lc_audit_status(r, now, c, &s);
}

static int lc_set_status_tx(reg *r, void *arg)
{
    struct lc_status *s = arg;
    int64_t ca_id = 0;
    reg_cert c = {0};
    int rc;

    if ((rc = reg_resolve(r, s->ca_id, s->serial, &ca_id))
        || (rc = r->be->cert_get(r->db, ca_id, s->serial, &c)))
        goto out;
    rc = reg_change_tx(r, reg_now(), &c, s->to, s->reason, s->invalidity,
                       s->actor, s->why);
out:
    reg_cert_clear(&c);
    return rc;
}

int reg_set_status(reg *r, int64_t ca_id, const char *serial, reg_status to,
                   int reason, int64_t invalidity, const char *actor,
                   const char *why)
{
    struct lc_status s = {
        .ca_id = ca_id,
        .to = to,
        .reason = reason,
        .invalidity = invalidity,
        .actor = actor,
        .why = why,
    };
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if ((rc = reg_serial_normalise(serial, s.serial, sizeof(s.serial)))
        || (rc = lc_check_actor(actor)))
        return rc;
    if (to < REG_ACTIVATED || to > REG_REVOKED)
        return p11ca_err_set(P11CA_E_INPUT, "bad target status %d", to);
    if (to == REG_REVOKED && (rc = lc_reason_check(reason)))
        return rc;
    if (to == REG_REVOKED && invalidity < 0)
        return p11ca_err_set(P11CA_E_INPUT, "bad invalidity date");
    if (ca_id < 0)
        return p11ca_err_set(P11CA_E_INPUT, "bad CA id %lld", (long long)ca_id);
    return reg_tx(r, lc_set_status_tx, &s);
}

/* ------------------------------------------------------------------ */
/* Deletion                                                            */
/* ------------------------------------------------------------------ */

static int lc_ca_find_cb(const reg_ca *ca, void *arg)
{
    struct lc_ca_find *f = arg;

    if (ca->id != f->id)
        return 0;
    f->found = true;
    f->external = ca->external;
    return 1;
}

/* Whether @ca_id is an external CA (false for an unknown issuer). */
static int lc_ca_external(reg *r, int64_t ca_id, bool *external)
{
    struct lc_ca_find f = {.id = ca_id};
    int rc = ca_id ? r->be->ca_list(r->db, lc_ca_find_cb, &f) : 0;

    *external = f.found && f.external;
    return rc < 0 ? rc : 0;
}

/* Refused: an activated certificate, and a revoked, unexpired one that a
 * CRL of this registry lists (its CA is ours, or unknown). */
static int lc_delete_check(reg *r, int64_t now, const reg_cert *c)
{
    bool external = false;
    int rc;

    if (c->status == REG_ACTIVATED)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is activated: deactivate or revoke it before deleting it",
            reg_cert_shown(c->ca_id, c->serial));
    if (c->status != REG_REVOKED || c->not_after < now)
        return 0;
    if ((rc = lc_ca_external(r, c->ca_id, &external)) || external)
        return rc;
    return p11ca_err_set(
        P11CA_E_STATE,
        "certificate %s is revoked and has not expired: the CRL must keep listing it",
        reg_cert_shown(c->ca_id, c->serial));
}

/* reg_delete's work; @arg is a struct lc_status (to unused). */
static int lc_delete_tx(reg *r, void *arg)
{
    struct lc_status *s = arg;
    int64_t now = reg_now(), ca_id = 0;
    struct reg_details d;
    reg_cert c = {0};
    int rc;

    reg_details_init(&d);
    if ((rc = reg_resolve(r, s->ca_id, s->serial, &ca_id))
        || (rc = r->be->cert_get(r->db, ca_id, s->serial, &c))
        || (rc = lc_delete_check(r, now, &c)))
        goto out;
    reg_details_int(&d, "ca_id", c.ca_id);
    reg_details_str(&d, "status", reg_status_name(c.status));
    reg_details_str(&d, "subject", c.subject);
    reg_details_str(&d, "why", s->why);
    if ((rc = reg_details_finish(&d))
        || (rc = r->be->cert_delete(r->db, c.ca_id, c.serial)))
        goto out;
    rc = reg_audit_append_tx(r, now, s->actor, "delete", c.serial, d.data);
out:
    reg_details_free(&d);
    reg_cert_clear(&c);
    return rc;
}

int reg_delete(reg *r, int64_t ca_id, const char *serial, const char *actor,
               const char *why)
{
    struct lc_status s = {.ca_id = ca_id, .actor = actor, .why = why};
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if ((rc = reg_serial_normalise(serial, s.serial, sizeof(s.serial)))
        || (rc = lc_check_actor(actor)))
        return rc;
    if (ca_id < 0)
        return p11ca_err_set(P11CA_E_INPUT, "bad CA id %lld", (long long)ca_id);
    return reg_tx(r, lc_delete_tx, &s);
}

/* ------------------------------------------------------------------ */
/* CRL support and CAs                                                 */
/* ------------------------------------------------------------------ */

static int lc_crl_tx(reg *r, void *arg)
{
    struct lc_crl *c = arg;

    return r->be->crl_number_next(r->db, c->ca_id, &c->n);
}

int reg_crl_number_next(reg *r, int64_t ca_id, uint64_t *n)
{
    struct lc_crl c = {.ca_id = ca_id};
    int rc;

    return_val_if_fail(r && n, P11CA_E_INTERNAL);
    *n = 0;
    if (ca_id <= 0)
        return p11ca_err_set(P11CA_E_INPUT,
                             "CRL numbers belong to a registered CA (id > 0)");
    if ((rc = reg_tx(r, lc_crl_tx, &c)))
        return rc;
    *n = c.n;
    return 0;
}

int reg_crl_number_last(reg *r, int64_t ca_id, uint64_t *n)
{
    return_val_if_fail(r && n, P11CA_E_INTERNAL);
    *n = 0;
    return r->be->crl_number_last(r->db, ca_id, n);
}

static int lc_ca_tx(reg *r, void *arg)
{
    struct lc_ca *ca = arg;

    return r->be->ca_add(r->db, ca->der, ca->len, ca->name, ca->subject,
                         ca->external, &ca->id);
}

static int lc_ca_add(reg *r, const unsigned char *der, size_t len,
                     const char *name, bool external, int64_t *id)
{
    struct lc_ca ca = {
        .der = der,
        .len = len,
        .name = name,
        .external = external,
    };
    char *subject = NULL;
    int rc;

    return_val_if_fail(r && id, P11CA_E_INTERNAL);
    *id = 0;
    if ((rc = reg_x509_subject(der, len, &subject)))
        goto out;
    ca.subject = subject;
    if ((rc = reg_tx(r, lc_ca_tx, &ca)))
        goto out;
    *id = ca.id;
out:
    free(subject);
    return rc;
}

static int lc_ca_auto_tx(reg *r, void *arg)
{
    struct lc_ca_auto *a = arg;
    struct reg_details d;
    char id[32];
    int rc;

    if ((rc = r->be->ca_set_auto(r->db, a->id, a->on, a->st)))
        return rc;
    snprintf(id, sizeof(id), "%lld", (long long)a->id);
    reg_details_init(&d);
    reg_details_str(&d, "auto_register", a->on ? "on" : "off");
    reg_details_str(&d, "auto_status", reg_status_name(a->st));
    rc = reg_details_finish(&d);
    if (!rc)
        rc = reg_audit_append_tx(r, reg_now(), a->actor, "ca-auto-register", id,
                                 d.data);
    reg_details_free(&d);
    return rc;
}

int reg_ca_set_auto(reg *r, int64_t id, bool on, reg_status st,
                    const char *actor)
{
    struct lc_ca_auto a = {.id = id, .on = on, .st = st, .actor = actor};
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if ((rc = lc_check_actor(actor)))
        return rc;
    if (st != REG_ACTIVATED && st != REG_REGISTERED_NOT_ACTIVATED)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "auto-registered certificates start activated or registered-not-activated, not %s",
            reg_status_name(st));
    return reg_tx(r, lc_ca_auto_tx, &a);
}

int reg_ca_add(reg *r, const unsigned char *der, size_t len, const char *name,
               int64_t *id)
{
    return lc_ca_add(r, der, len, name, false, id);
}

int reg_ca_add_external(reg *r, const unsigned char *der, size_t len,
                        const char *name, int64_t *id)
{
    return lc_ca_add(r, der, len, name, true, id);
}

/* Whether @c is already where a change to @to (with @reason) would take
 * it. */
static bool status_already(const reg_cert *c, reg_status to, int reason)
{
    if (to == REG_NOT_ACTIVATED)
        return c->status == REG_NOT_ACTIVATED
               || c->status == REG_REGISTERED_NOT_ACTIVATED;
    if (to == REG_REVOKED)
        return c->status == REG_REVOKED
               && (c->reason >= 0 ? c->reason : 0) == reason;
    return c->status == to;
}

int reg_change_status(reg *r, int64_t ca_id, const char *serial, reg_status to,
                      int reason, int64_t invalidity, const char *actor,
                      const char *why, reg_cert *out, bool *changed)
{
    int rc;

    *changed = false;
    memset(out, 0, sizeof(*out));
    if (to == REG_REVOKED && reason < 0)
        reason = 0;
    if ((rc = reg_get(r, ca_id, serial, out)) != P11CA_OK)
        return rc;
    if (status_already(out, to, reason))
        return P11CA_OK;
    if (to == REG_REVOKED && out->status == REG_REVOKED)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is already revoked (%s): revocation is final and keeps its first reason, so it is not revoked again as %s",
            reg_cert_shown(out->ca_id, out->serial),
            reg_reason_name(out->reason >= 0 ? out->reason : 0),
            reg_reason_name(reason));
    ca_id = out->ca_id;
    rc = reg_set_status(r, ca_id, out->serial, to, reason, invalidity, actor,
                        why);
    if (rc == P11CA_OK) {
        /* The same certificate, addressed by the CA it was found under. */
        char norm[sizeof(out->serial)];

        *changed = true;
        snprintf(norm, sizeof(norm), "%s", out->serial);
        reg_cert_clear(out);
        rc = reg_get(r, ca_id, norm, out);
    }
    return rc;
}
