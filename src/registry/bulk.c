/* SPDX-License-Identifier: Apache-2.0 */
/* Changes to several certificates at once: bulk revocation (confirmed by
 * its count, every certificate's revocation in the audit trail), renewal
 * (supersede) and the scheduled revocations it leaves. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

/* A bulk change holds the matching certificates while it changes them. */
#define BULK_MAX 1000000

/* The actor of a scheduled revocation carried out by a later write. */
#define BULK_SCHEDULED_ACTOR "registry:scheduled"

struct bulk_item {
    int64_t ca_id;
    char serial[sizeof(((reg_cert *)0)->serial)];
    reg_status from;
    bool scheduled; /* a scheduled revocation to drop when revoked */
};

/* Certificates collected by a search, changed after it (no update under
 * a running SELECT). */
struct bulk_set {
    struct bulk_item *items;
    size_t n, cap;
};

struct bulk_revoke {
    const reg_filter *f;
    int reason;
    const char *actor;
    const char *why;
    size_t expect;
    struct bulk_set set;
};

struct bulk_supersede {
    int64_t ca_id;
    char serial[sizeof(((reg_cert *)0)->serial)];
    char old[sizeof(((reg_cert *)0)->serial)];
    reg_supersede_how how;
    int64_t grace;
    const char *actor;
};

static int bulk_collect(const reg_cert *c, void *arg);
static bool bulk_filter_empty(const reg_filter *f);
static void bulk_details_filter(struct reg_details *d, const reg_filter *f);
static int bulk_audit_item(reg *r, int64_t now, const struct bulk_revoke *b,
                           const struct bulk_item *it);
static int bulk_audit_part(reg *r, int64_t now, const struct bulk_revoke *b,
                           size_t part, size_t parts);
static int bulk_audit(reg *r, int64_t now, const struct bulk_revoke *b);
static int bulk_revoke_tx(reg *r, void *arg);
static int bulk_get(reg *r, int64_t ca_id, const char *serial, reg_cert *c);
static int bulk_schedule(reg *r, int64_t now, const reg_cert *old,
                         const struct bulk_supersede *s, const char *why);
static int bulk_supersede_tx(reg *r, void *arg);
static int bulk_revoke_one_due(reg *r, int64_t now, const struct bulk_item *it);

static int bulk_collect(const reg_cert *c, void *arg)
{
    struct bulk_set *b = arg;
    struct bulk_item *items;
    size_t cap;

    if (c->status == REG_REVOKED)
        return 0;
    if (b->n == b->cap) {
        if (b->cap >= BULK_MAX)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "more than %d certificates match: narrow the filter", BULK_MAX);
        cap = b->cap ? b->cap * 2 : 64;
        cap = cap > BULK_MAX ? BULK_MAX : cap;
        items = realloc(b->items, cap * sizeof(*items));
        if (!items)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        b->items = items;
        b->cap = cap;
    }
    b->items[b->n].ca_id = c->ca_id;
    memcpy(b->items[b->n].serial, c->serial, sizeof(c->serial));
    b->items[b->n].scheduled = c->revoke_after != 0;
    b->items[b->n++].from = c->status;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Bulk revocation                                                     */
/* ------------------------------------------------------------------ */

/* No criterion at all (paging, order and not_revoked are not criteria). */
static bool bulk_filter_empty(const reg_filter *f)
{
    return !f->serial && !f->cn && !f->cn_match && !f->ou && !f->ou_match
           && !f->client_id && !f->profile && !f->origin && !f->replaces
           && f->status == REG_STATUS_ANY && !f->ca_id && !f->issued_after
           && !f->issued_before && !f->expires_after && !f->expires_before
           && !f->valid_at && !f->revoke_due;
}

static void bulk_details_filter(struct reg_details *d, const reg_filter *f)
{
    reg_details_str(d, "filter.serial", f->serial);
    reg_details_str(d, "filter.cn", f->cn);
    reg_details_str(d, "filter.cn_match", f->cn_match);
    reg_details_str(d, "filter.ou", f->ou);
    reg_details_str(d, "filter.ou_match", f->ou_match);
    reg_details_str(d, "filter.client_id", f->client_id);
    reg_details_str(d, "filter.profile", f->profile);
    reg_details_str(d, "filter.origin", f->origin);
    reg_details_str(d, "filter.replaces", f->replaces);
    if (f->status != REG_STATUS_ANY)
        reg_details_str(d, "filter.status", reg_status_name(f->status));
    if (f->ca_id)
        reg_details_int(d, "filter.ca_id", f->ca_id);
    if (f->issued_after)
        reg_details_int(d, "filter.issued_after", f->issued_after);
    if (f->issued_before)
        reg_details_int(d, "filter.issued_before", f->issued_before);
    if (f->expires_after)
        reg_details_int(d, "filter.expires_after", f->expires_after);
    if (f->expires_before)
        reg_details_int(d, "filter.expires_before", f->expires_before);
    if (f->valid_at)
        reg_details_int(d, "filter.valid_at", f->valid_at);
}

/* Each certificate's revocation in the trail, as reg_set_status writes it
 * (with "via"): the trail is each certificate's history, and
 * reg_audit_verify_status replays it. */
static int bulk_audit_item(reg *r, int64_t now, const struct bulk_revoke *b,
                           const struct bulk_item *it)
{
    struct reg_details d;
    int rc;

    reg_details_init(&d);
    reg_details_int(&d, "ca_id", it->ca_id);
    reg_details_str(&d, "from", reg_status_name(it->from));
    reg_details_str(&d, "to", reg_status_name(REG_REVOKED));
    reg_details_str(&d, "reason", reg_reason_name(b->reason));
    reg_details_str(&d, "why", b->why);
    reg_details_str(&d, "via", "revoke-bulk");
    rc = reg_details_finish(&d);
    if (!rc)
        rc =
            reg_audit_append_tx(r, now, b->actor, "revoke", it->serial, d.data);
    reg_details_free(&d);
    return rc;
}

/* Entry @part (0-based) of @parts: the summary, the filter in the first,
 * and its share of the certificates. */
static int bulk_audit_part(reg *r, int64_t now, const struct bulk_revoke *b,
                           size_t part, size_t parts)
{
    size_t from = part * REG_BULK_AUDIT_CERTS, to = from + REG_BULK_AUDIT_CERTS;
    struct reg_details d;
    int rc;

    reg_details_init(&d);
    reg_details_int(&d, "count", (int64_t)b->set.n);
    if (parts > 1) {
        reg_details_int(&d, "part", (int64_t)part + 1);
        reg_details_int(&d, "parts", (int64_t)parts);
    }
    reg_details_str(&d, "reason", reg_reason_name(b->reason));
    reg_details_str(&d, "why", b->why);
    if (part == 0)
        bulk_details_filter(&d, b->f);
    reg_details_certs_open(&d, "certs");
    for (size_t i = from; i < to && i < b->set.n; i++)
        reg_details_cert(&d, b->set.items[i].ca_id, b->set.items[i].serial);
    reg_details_certs_close(&d);
    rc = reg_details_finish(&d);
    if (!rc)
        rc = reg_audit_append_tx(r, now, b->actor, "revoke-bulk", NULL, d.data);
    reg_details_free(&d);
    return rc;
}

static int bulk_audit(reg *r, int64_t now, const struct bulk_revoke *b)
{
    size_t parts = (b->set.n + REG_BULK_AUDIT_CERTS - 1) / REG_BULK_AUDIT_CERTS;
    int rc = 0;

    for (size_t p = 0; !rc && p < (parts ? parts : 1); p++)
        rc = bulk_audit_part(r, now, b, p, parts ? parts : 1);
    return rc;
}

static int bulk_revoke_tx(reg *r, void *arg)
{
    struct bulk_revoke *b = arg;
    int64_t now = reg_now();
    int rc;

    b->set.n = 0;
    if ((rc = r->be->cert_search(r->db, b->f, bulk_collect, &b->set)))
        return rc;
    if (b->expect && b->set.n != b->expect)
        return p11ca_err_set(
            P11CA_E_STATE,
            "the filter matches %zu certificate(s) now, not the %zu confirmed: nothing was revoked",
            b->set.n, b->expect);
    for (size_t i = 0; i < b->set.n; i++) {
        const struct bulk_item *it = &b->set.items[i];

        if ((rc = r->be->cert_set_status(r->db, it->ca_id, it->serial,
                                         REG_REVOKED, now, b->reason, 0))
            || (it->scheduled
                && (rc = r->be->cert_set_revoke_after(r->db, it->ca_id,
                                                      it->serial, 0)))
            || (rc =
                    r->be->history_add(r->db, it->ca_id, it->serial, now,
                                       it->from, REG_REVOKED, b->actor, b->why))
            || (rc = bulk_audit_item(r, now, b, it)))
            return rc;
    }
    /* The summary after the certificates' own entries: the count, the
     * filter, and every certificate again, in parts. */
    return b->set.n ? bulk_audit(r, now, b) : 0;
}

int reg_revoke_bulk(reg *r, const reg_filter *f, int reason, const char *actor,
                    const char *why, size_t expect, size_t *count)
{
    char serial[sizeof(((reg_cert *)0)->serial)];
    struct bulk_revoke b = {
        .reason = reason,
        .actor = actor,
        .why = why,
        .expect = expect,
    };
    reg_filter copy;
    int rc;

    return_val_if_fail(r && count, P11CA_E_INTERNAL);
    *count = 0;
    if (!actor || !*actor)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "every registry change needs an actor");
    else if (reason < 0 || reason > 10 || reason == 7)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "bad CRL reason code %d (0..10, not 7)", reason);
    else
        rc = reg_filter_check(f, &copy, serial, sizeof(serial));
    if (rc)
        goto out;
    if (bulk_filter_empty(&copy)) {
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "refusing to revoke every certificate: the filter is empty");
        goto out;
    }
    copy.not_revoked = true;
    b.f = &copy;
    if ((rc = reg_tx(r, bulk_revoke_tx, &b)))
        goto out;
    *count = b.set.n;
out:
    free(b.set.items);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Renewal                                                             */
/* ------------------------------------------------------------------ */

/* One certificate of CA @ca_id, which must not be revoked. */
static int bulk_get(reg *r, int64_t ca_id, const char *serial, reg_cert *c)
{
    int rc = r->be->cert_get(r->db, ca_id, serial, c);

    if (!rc && c->status == REG_REVOKED)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is revoked: it takes no part in a renewal",
            reg_cert_shown(ca_id, serial));
    return rc;
}

/* The grace period of @old starts: revoked at now + grace by a later
 * write (reg_revoke_due_tx). */
static int bulk_schedule(reg *r, int64_t now, const reg_cert *old,
                         const struct bulk_supersede *s, const char *why)
{
    int64_t at = s->grace > INT64_MAX - now ? INT64_MAX : now + s->grace;
    struct reg_details d;
    int rc;

    reg_details_init(&d);
    reg_details_int(&d, "ca_id", old->ca_id);
    reg_details_int(&d, "revoke_after", at);
    reg_details_str(&d, "reason", reg_reason_name(REG_REASON_SUPERSEDED));
    reg_details_str(&d, "why", why);
    if (!(rc = reg_details_finish(&d))
        && !(rc = r->be->cert_set_revoke_after(r->db, old->ca_id, old->serial,
                                               at)))
        rc = reg_audit_append_tx(r, now, s->actor, "schedule-revoke",
                                 old->serial, d.data);
    reg_details_free(&d);
    return rc;
}

static int bulk_supersede_tx(reg *r, void *arg)
{
    struct bulk_supersede *s = arg;
    int64_t now = reg_now();
    reg_cert c = {0}, old = {0};
    char why[160];
    int rc;

    if ((rc = bulk_get(r, s->ca_id, s->serial, &c))
        || (rc = bulk_get(r, s->ca_id, s->old, &old))
        || (rc = r->be->cert_set_replaces(r->db, s->ca_id, s->serial, s->old)))
        goto out;
    snprintf(why, sizeof(why), "renewed by %s", reg_serial_shown(s->serial));
    if (old.status == REG_ACTIVATED) {
        if ((rc = reg_change_tx(r, now, &old, REG_NOT_ACTIVATED, -1, 0,
                                s->actor, why)))
            goto out;
        old.status = REG_NOT_ACTIVATED;
    }
    if (c.status != REG_ACTIVATED) {
        snprintf(why, sizeof(why), "renews %s", reg_serial_shown(s->old));
        if ((rc = reg_change_tx(r, now, &c, REG_ACTIVATED, -1, 0, s->actor,
                                why)))
            goto out;
    }
    snprintf(why, sizeof(why), "superseded by %s", reg_serial_shown(s->serial));
    if (s->how == REG_SUPERSEDE_REVOKE)
        rc = reg_change_tx(r, now, &old, REG_REVOKED, REG_REASON_SUPERSEDED, 0,
                           s->actor, why);
    else if (s->how == REG_SUPERSEDE_GRACE)
        rc = bulk_schedule(r, now, &old, s, why);
out:
    reg_cert_clear(&c);
    reg_cert_clear(&old);
    return rc;
}

int reg_supersede(reg *r, int64_t ca_id, const char *serial, const char *old,
                  reg_supersede_how how, int64_t grace, const char *actor)
{
    struct bulk_supersede s = {
        .ca_id = ca_id,
        .how = how,
        .grace = grace,
        .actor = actor,
    };
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if ((rc = reg_serial_normalise(serial, s.serial, sizeof(s.serial)))
        || (rc = reg_serial_normalise(old, s.old, sizeof(s.old))))
        return rc;
    if (!actor || !*actor)
        return p11ca_err_set(P11CA_E_INPUT,
                             "every registry change needs an actor");
    if (strcmp(s.serial, s.old) == 0)
        return p11ca_err_set(P11CA_E_INPUT,
                             "certificate %s cannot replace itself",
                             reg_cert_shown(ca_id, s.serial));
    if (ca_id < 0 || how < REG_SUPERSEDE_REVOKE || how > REG_SUPERSEDE_KEEP
        || (how == REG_SUPERSEDE_GRACE && grace <= 0))
        return p11ca_err_set(P11CA_E_INPUT,
                             "bad renewal: CA id %lld, grace period %lld s",
                             (long long)ca_id, (long long)grace);
    return reg_tx(r, bulk_supersede_tx, &s);
}

/* ------------------------------------------------------------------ */
/* Scheduled revocations                                               */
/* ------------------------------------------------------------------ */

static int bulk_revoke_one_due(reg *r, int64_t now, const struct bulk_item *it)
{
    reg_cert c = {0};
    int rc = r->be->cert_get(r->db, it->ca_id, it->serial, &c);

    if (!rc)
        rc = reg_change_tx(r, now, &c, REG_REVOKED, REG_REASON_SUPERSEDED, 0,
                           BULK_SCHEDULED_ACTOR,
                           "superseded: the grace period after its renewal "
                           "ended");
    reg_cert_clear(&c);
    return rc;
}

int reg_revoke_due_tx(reg *r, int64_t now, size_t *count)
{
    reg_filter f = {.revoke_due = now, .not_revoked = true};
    struct bulk_set set = {0};
    int rc = r->be->cert_search(r->db, &f, bulk_collect, &set);

    for (size_t i = 0; !rc && i < set.n; i++)
        rc = bulk_revoke_one_due(r, now, &set.items[i]);
    if (!rc && count)
        *count = set.n;
    free(set.items);
    return rc;
}

int reg_revoke_due(reg *r, size_t *count)
{
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if (count)
        *count = 0;
    if ((rc = r->be->begin(r->db, true)))
        return rc;
    rc = reg_revoke_due_tx(r, reg_now(), count);
    if (!rc)
        rc = r->be->commit(r->db);
    if (rc)
        r->be->rollback(r->db);
    return rc;
}
