/* SPDX-License-Identifier: Apache-2.0 */
/* One-time enrollment codes: recorded by their hash, taken once (one
 * conditional UPDATE decides between concurrent users), linked to the
 * certificate they gave, released when nothing was issued; every step in
 * the audit trail, never the code. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

struct code_add {
    const char *hash;
    reg_code *c;
    int64_t ttl;
    const char *actor;
    int64_t id;
};

struct code_take {
    int64_t ca_id;
    const char *hash;
    const char *actor;
    reg_code out;
};

struct code_step {
    int64_t id;
    int64_t ca_id;
    const char *serial;
    const char *actor;
    const char *why;
};

void reg_code_clear(reg_code *c)
{
    if (!c)
        return;
    free(c->profile);
    free(c->client_id);
    free(c->subject);
    free(c->issued);
    memset(c, 0, sizeof(*c));
}

static bool hash_ok(const char *h)
{
    size_t i;

    for (i = 0; h && h[i]; i++)
        if (!isxdigit((unsigned char)h[i]) || isupper((unsigned char)h[i]))
            return false;
    return i == REG_HASH_HEX_LEN;
}

static int code_audit(reg *r, int64_t id, const char *actor, const char *action,
                      struct reg_details *d)
{
    char obj[32];
    int rc = reg_details_finish(d);

    snprintf(obj, sizeof(obj), "code %lld", (long long)id);
    if (!rc)
        rc = reg_audit_append_tx(r, reg_now(), actor, action, obj, d->data);
    reg_details_free(d);
    return rc;
}

static int code_add_tx(reg *r, void *arg)
{
    struct code_add *a = arg;
    struct reg_details d;
    int64_t now;
    int rc;

    a->id = 0;
    now = reg_now();
    a->c->expires = now + a->ttl;
    rc = r->be->code_insert(r->db, a->hash, a->c, now, a->actor, &a->id);
    if (rc)
        return rc;
    reg_details_init(&d);
    reg_details_str(&d, "profile", a->c->profile);
    reg_details_str(&d, "client_id", a->c->client_id);
    reg_details_int(&d, "ca_id", a->c->ca_id);
    if (a->c->subject)
        reg_details_str(&d, "subject", a->c->subject);
    reg_details_int(&d, "expires", a->c->expires);
    return code_audit(r, a->id, a->actor, "enroll-code-create", &d);
}

int reg_code_add(reg *r, int64_t ca_id, const char *hash, const char *profile,
                 const char *client_id, const char *subject, int64_t ttl,
                 const char *actor, int64_t *id, int64_t *expires)
{
    reg_code c = {
        .ca_id = ca_id,
        .profile = (char *)profile,
        .client_id = (char *)client_id,
        .subject = (char *)subject,
    };
    struct code_add a = {.hash = hash, .c = &c, .ttl = ttl, .actor = actor};
    int rc;

    return_val_if_fail(r && id && expires, P11CA_E_INTERNAL);
    *id = 0;
    *expires = 0;
    if (!actor || !*actor)
        return p11ca_err_set(P11CA_E_INPUT,
                             "every registry change needs an actor");
    if (!hash_ok(hash) || !profile || !*profile || !client_id || !*client_id)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "an enrollment code needs its hash, a profile and a client ID");
    if (ttl <= 0)
        return p11ca_err_set(P11CA_E_INPUT,
                             "an enrollment code must be valid for a while");
    if ((rc = reg_tx(r, code_add_tx, &a)))
        return rc;
    *id = a.id;
    *expires = c.expires;
    return P11CA_OK;
}

static int code_take_tx(reg *r, void *arg)
{
    struct code_take *t = arg;
    struct reg_details d;
    bool taken = false;
    int rc;

    reg_code_clear(&t->out);
    rc = r->be->code_take(r->db, t->hash, t->ca_id, reg_now(), &t->out, &taken);
    if (rc)
        return rc;
    if (!taken)
        return p11ca_err_set(P11CA_E_NOTFOUND,
                             "the enrollment code is unknown, used or expired");
    reg_details_init(&d);
    reg_details_str(&d, "profile", t->out.profile);
    reg_details_str(&d, "client_id", t->out.client_id);
    return code_audit(r, t->out.id, t->actor, "enroll-code-use", &d);
}

int reg_code_take(reg *r, int64_t ca_id, const char *hash, const char *actor,
                  reg_code *out)
{
    struct code_take t = {.ca_id = ca_id, .hash = hash, .actor = actor};
    int rc;

    return_val_if_fail(r && out, P11CA_E_INTERNAL);
    memset(out, 0, sizeof(*out));
    if (!actor || !*actor)
        return p11ca_err_set(P11CA_E_INPUT,
                             "every registry change needs an actor");
    if (!hash_ok(hash))
        return p11ca_err_set(P11CA_E_NOTFOUND,
                             "the enrollment code is unknown, used or expired");
    rc = reg_tx(r, code_take_tx, &t);
    if (rc) {
        reg_code_clear(&t.out);
        return rc;
    }
    *out = t.out;
    return P11CA_OK;
}

static int code_issued_tx(reg *r, void *arg)
{
    struct code_step *s = arg;
    struct reg_details d;
    int rc = r->be->code_issued(r->db, s->id, s->ca_id, s->serial);

    if (rc)
        return rc;
    reg_details_init(&d);
    reg_details_int(&d, "ca_id", s->ca_id);
    reg_details_str(&d, "serial", s->serial);
    return code_audit(r, s->id, s->actor, "enroll-code-issued", &d);
}

int reg_code_issued(reg *r, int64_t id, int64_t ca_id, const char *serial,
                    const char *actor)
{
    struct code_step s = {
        .id = id, .ca_id = ca_id, .serial = serial, .actor = actor};

    return_val_if_fail(r && serial, P11CA_E_INTERNAL);
    if (!actor || !*actor)
        return p11ca_err_set(P11CA_E_INPUT,
                             "every registry change needs an actor");
    return reg_tx(r, code_issued_tx, &s);
}

static int code_release_tx(reg *r, void *arg)
{
    struct code_step *s = arg;
    struct reg_details d;
    int rc = r->be->code_release(r->db, s->id);

    if (rc)
        return rc;
    reg_details_init(&d);
    if (s->why)
        reg_details_str(&d, "why", s->why);
    return code_audit(r, s->id, s->actor, "enroll-code-release", &d);
}

int reg_code_release(reg *r, int64_t id, const char *actor, const char *why)
{
    struct code_step s = {.id = id, .actor = actor, .why = why};

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if (!actor || !*actor)
        return p11ca_err_set(P11CA_E_INPUT,
                             "every registry change needs an actor");
    return reg_tx(r, code_release_tx, &s);
}

int reg_code_given(reg *r, int64_t ca_id, const char *hash, reg_code *out)
{
    bool found = false;
    int rc;

    return_val_if_fail(r && out, P11CA_E_INTERNAL);
    memset(out, 0, sizeof(*out));
    if (!hash_ok(hash))
        return p11ca_err_set(P11CA_E_NOTFOUND,
                             "the enrollment code is unknown, used or expired");
    rc = r->be->code_given(r->db, hash, ca_id, reg_now(), out, &found);
    if (rc == P11CA_OK && !found)
        rc = p11ca_err_set(P11CA_E_NOTFOUND,
                           "the enrollment code is unknown, used or expired");
    if (rc != P11CA_OK)
        reg_code_clear(out);
    return rc;
}
