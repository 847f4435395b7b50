/* SPDX-License-Identifier: Apache-2.0 */
/* /v1/certs: the registry's certificates: search with the CLI's filters
 * and cursor paging, one certificate with its history, the lifecycle
 * (activate, deactivate, revoke, delete) and registration of a
 * certificate issued by a registered CA.  Reads run on the loop (a SQLite
 * WAL reader does not wait for writers); changes run on a worker. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/timeparse.h"
#include "server/internal.h"

enum cert_op {
    OP_STATUS,
    OP_DELETE,
    OP_REGISTER,
};

/* A change of one certificate, run by a worker. */
struct cert_job {
    struct srv_job j;
    struct srv_req *r;
    enum cert_op op;
    int64_t ca_id; /* the issuer: with @serial, the certificate */
    char serial[64];
    reg_status to;
    int reason;
    int64_t invalidity;
    char why[256];
    bool has_why;
    reg_cert rec; /* OP_REGISTER: what to record */
    reg_cert out; /* the certificate afterwards */
    bool changed; /* OP_STATUS: false when it was so already */
};

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

json_t *srv_time_json(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[32];

    if (!t)
        return json_null();
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *srv_cert_json(const reg_cert *c)
{
    char serial[REG_SERIAL_TEXT_MAX], replaces[REG_SERIAL_TEXT_MAX];

    /* Serials as the CLI's --json prints them (openssl's form). */
    reg_serial_text(c->serial, serial, sizeof(serial));
    if (c->replaces)
        reg_serial_text(c->replaces, replaces, sizeof(replaces));
    return json_pack(
        "{s:s, s:s, s:I, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, s:o, "
        "s:o, s:o, s:s?, s:o, s:s?}",
        "serial", serial, "status", reg_status_name(c->status), "ca_id",
        (json_int_t)c->ca_id, "subject", c->subject, "issuer", c->issuer, "cn",
        c->cn, "ou", c->ou, "client_id", c->client_id, "profile", c->profile,
        "origin", c->origin, "not_before", srv_time_json(c->not_before),
        "not_after", srv_time_json(c->not_after), "recorded_at",
        srv_time_json(c->recorded_at), "revoked_at",
        srv_time_json(c->revoked_at), "reason",
        c->reason >= 0 ? reg_reason_name(c->reason) : NULL, "invalidity",
        srv_time_json(c->invalidity), "replaces",
        c->replaces ? replaces : NULL);
}

static int history_one(const reg_history *h, void *arg)
{
    json_t *arr = arg;

    return json_array_append_new(
               arr, json_pack("{s:o, s:s?, s:s, s:s?, s:s?}", "at",
                              srv_time_json(h->at), "from",
                              h->from ? reg_status_name(h->from) : NULL, "to",
                              reg_status_name(h->to), "actor", h->actor,
                              "reason", h->reason))
               ? 1
               : 0;
}

static char *cert_pem(const reg_cert *c)
{
    const unsigned char *p = c->der;
    X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *pem = NULL;
    long n;

    if (x && b && PEM_write_bio_X509(b, x)
        && (n = BIO_get_mem_data(b, &data)) > 0)
        pem = strndup(data, (size_t)n);
    X509_free(x);
    BIO_free(b);
    return pem;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

/* The {serial} of the path in the registry's form, read as every command
 * reads a serial (any case, colons, 0x, odd digits); false when answered
 * (404: no certificate has such a name). */
static bool path_serial(struct srv_req *r, char *out, size_t len)
{
    if (reg_serial_normalise(srv_req_param(r, 0), out, len) == P11CA_OK)
        return true;
    srv_problem(r, 404, "not-found", "%s", p11ca_err_message());
    return false;
}

/*
 * The query of a /v1/certs/{serial} route: "issuer" (a CA id or name, as
 * GET /v1/cas lists them) and the names in @more (NULL-ended, may be
 * NULL); false when answered (400).  @issuer gets the issuer's text or
 * NULL.
 */
static bool cert_query(struct srv_req *r, const char *const *more,
                       const char **issuer)
{
    struct evkeyvalq *q = srv_req_query(r);
    bool known;

    *issuer = NULL;
    for (struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        known = strcmp(kv->key, "issuer") == 0
                || (r->client_id_query
                    && strcmp(kv->key, SRV_CLIENT_ID_PARAM) == 0);
        for (size_t i = 0; more && more[i] && !known; i++)
            known = strcmp(kv->key, more[i]) == 0;
        if (!known) {
            srv_problem(r, 400, "unknown-parameter",
                        "unknown query parameter \"%s\"", kv->key);
            return false;
        }
    }
    *issuer = evhttp_find_header(q, "issuer");
    if (*issuer && !**issuer) {
        srv_problem(r, 400, "bad-request",
                    "issuer is empty: give a CA id or name (GET /v1/cas)");
        return false;
    }
    return true;
}

struct issuers {
    int64_t ids[8];
    size_t n;
};

static int issuers_one(const reg_cert *c, void *arg)
{
    struct issuers *is = arg;

    if (is->n < sizeof(is->ids) / sizeof(is->ids[0]))
        is->ids[is->n] = c->ca_id;
    is->n++;
    return 0;
}

/*
 * Step 3 of a /v1/certs/{serial} route: the CA of the certificate
 * (@issuer, @serial) into @ca_id; false when answered.  A certificate is
 * its issuer and serial: without @issuer, a device means its own CA, and
 * anyone else the one CA that has @serial (409 when several have it: the
 * client adds ?issuer=).
 */
static bool cert_locate(struct srv_req *r, const char *issuer,
                        const char *serial, int64_t *ca_id)
{
    reg *rg = ca_registry(r->s->ca);
    reg_filter f = {.serial = serial};
    struct issuers is = {.n = 0};
    char ids[128] = "";
    size_t used;
    int rc;

    *ca_id = 0;
    if (issuer) {
        rc = reg_ca_find(rg, issuer, ca_id);
        if (rc != P11CA_OK)
            srv_problem_rc(r, rc, p11ca_err_message());
        return rc == P11CA_OK;
    }
    if (r->role == SRV_ROLE_DEVICE) {
        *ca_id = r->conn->ca_id;
        return true;
    }
    rc = reg_search(rg, &f, issuers_one, &is);
    if (rc != P11CA_OK) {
        srv_problem_rc(r, rc, p11ca_err_message());
        return false;
    }
    if (is.n == 1) {
        *ca_id = is.ids[0];
        return true;
    }
    if (is.n == 0) {
        srv_problem(r, 404, "not-found", "no certificate with serial %s",
                    reg_cert_shown(0, serial));
        return false;
    }
    for (size_t i = 0; i < is.n && i < sizeof(is.ids) / sizeof(is.ids[0]);
         i++) {
        used = strlen(ids);
        snprintf(ids + used, sizeof(ids) - used, "%s%lld", i ? ", " : "",
                 (long long)is.ids[i]);
    }
    srv_problem(r, 409, "ambiguous-serial",
                "serial %s is ambiguous: the CAs %s%s each have a certificate "
                "with it; add ?issuer=ID (GET /v1/cas lists the CAs)",
                reg_cert_shown(0, serial), ids,
                is.n > sizeof(is.ids) / sizeof(is.ids[0]) ? " and more" : "");
    return false;
}

static bool flag_value(const char *v)
{
    return !*v || strcmp(v, "1") == 0 || strcmp(v, "true") == 0
           || strcmp(v, "yes") == 0;
}

/* The cursor: opaque to clients ("o" and an offset, base64url). */
void srv_cursor_make(size_t offset, char *out, size_t len)
{
    unsigned char raw[32], b64[64];
    int n = snprintf((char *)raw, sizeof(raw), "o%zu", offset);
    int m = EVP_EncodeBlock(b64, raw, n);

    for (int i = 0; i < m; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    while (m > 0 && b64[m - 1] == '=')
        m--;
    snprintf(out, len, "%.*s", m, (char *)b64);
}

int srv_cursor_read(const char *in, size_t *offset)
{
    unsigned char b64[64], raw[64];
    size_t n = strlen(in);
    unsigned long long v;
    char *end = NULL;
    int m;

    if (n == 0 || n > 40)
        return -1;
    for (size_t i = 0; i < n; i++)
        b64[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : (unsigned char)in[i];
    while (n % 4)
        b64[n++] = '=';
    m = EVP_DecodeBlock(raw, b64, (int)n);
    if (m < 2 || raw[0] != 'o')
        return -1;
    raw[m] = '\0';
    errno = 0;
    v = strtoull((char *)raw + 1, &end, 10);
    /* An offset that the next page's cursor (offset + limit) and the
     * registry (a signed 64-bit OFFSET) can hold, or none. */
    if (!isdigit(raw[1]) || !end || *end != '\0' || errno == ERANGE
        || v > SRV_CURSOR_OFFSET_MAX)
        return -1;
    *offset = (size_t)v;
    return 0;
}

/* The time-valued parameters of GET /v1/certs; false: not one. */
static bool filter_time(const char *k, const char *v, int64_t now,
                        reg_filter *f, bool *bad)
{
    int64_t t;

    *bad = false;
    if (strcmp(k, "expiring") == 0) {
        if (p11ca_parse_duration(v, &t) != 0 || t > P11CA_TIME_MAX - now) {
            *bad = true;
            return true;
        }
        f->expires_after = now;
        f->expires_before = now + t;
        f->not_revoked = true;
        return true;
    }
    if (strcmp(k, "issued_after") != 0 && strcmp(k, "issued_before") != 0
        && strcmp(k, "expires_after") != 0 && strcmp(k, "expires_before") != 0)
        return false;
    if (p11ca_parse_time(v, &t) != 0)
        *bad = true;
    else
        *(strcmp(k, "issued_after") == 0    ? &f->issued_after
          : strcmp(k, "issued_before") == 0 ? &f->issued_before
          : strcmp(k, "expires_after") == 0 ? &f->expires_after
                                            : &f->expires_before) = t;
    return true;
}

enum srv_param_rc srv_certs_filter_parse(const char *k, const char *v,
                                         int64_t now, reg_filter *f,
                                         size_t *offset, const char **issuer)
{
    char *end = NULL;
    unsigned long n;
    bool bad = false;

    if (strcmp(k, "serial") == 0)
        f->serial = v;
    else if (strcmp(k, "cn") == 0)
        f->cn = v;
    else if (strcmp(k, "cn_like") == 0)
        f->cn_match = v;
    else if (strcmp(k, "ou") == 0)
        f->ou = v;
    else if (strcmp(k, "ou_like") == 0)
        f->ou_match = v;
    else if (strcmp(k, "client_id") == 0)
        f->client_id = v;
    else if (strcmp(k, "profile") == 0)
        f->profile = v;
    else if (strcmp(k, "status") == 0)
        bad = reg_status_parse(v, &f->status) != P11CA_OK;
    else if (strcmp(k, "expired") == 0) {
        if (flag_value(v))
            f->expires_before = now;
    } else if (strcmp(k, "valid") == 0) {
        /* Valid means usable: within its validity and not revoked. */
        if (flag_value(v)) {
            f->valid_at = now;
            f->not_revoked = true;
        }
    } else if (strcmp(k, "issuer") == 0) {
        *issuer = v;
    } else if (strcmp(k, "limit") == 0) {
        n = strtoul(v, &end, 10);
        bad = !isdigit((unsigned char)*v) || *end || n < 1
              || n > SRV_PAGE_LIMIT_MAX;
        if (!bad)
            f->limit = n;
    } else if (strcmp(k, "cursor") == 0) {
        bad = srv_cursor_read(v, offset) != 0;
    } else if (strcmp(k, "order") == 0) {
        bad = strcmp(v, "newest") != 0 && strcmp(v, "oldest") != 0;
        if (!bad) {
            f->sort = REG_SORT_RECORDED;
            f->descending = strcmp(v, "newest") == 0;
        }
    } else if (!filter_time(k, v, now, f, &bad)) {
        return SRV_PARAM_UNKNOWN;
    }
    return bad ? SRV_PARAM_BAD_VALUE : SRV_PARAM_OK;
}

/* One query parameter of GET /v1/certs into @f; false when answered. */
static bool filter_param(struct srv_req *r, const char *k, const char *v,
                         reg_filter *f, size_t *offset)
{
    const char *issuer = NULL;
    enum srv_param_rc prc;
    int rc;

    prc = srv_certs_filter_parse(k, v, (int64_t)time(NULL), f, offset, &issuer);
    if (prc == SRV_PARAM_UNKNOWN) {
        srv_problem(r, 400, "unknown-parameter",
                    "unknown query parameter \"%s\"", k);
        return false;
    }
    if (prc == SRV_PARAM_BAD_VALUE) {
        srv_problem(r, 400, "bad-request",
                    "bad value \"%s\" for %s (statuses: activated, "
                    "not-activated, registered-not-activated, revoked; dates: "
                    "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @unix, up to "
                    "9999-12-31; durations: 30d, 12h, 90m, 3600s, 2w; limit: "
                    "1 to %d)",
                    v, k, SRV_PAGE_LIMIT_MAX);
        return false;
    }
    if (issuer) {
        rc = reg_ca_find(ca_registry(r->s->ca), issuer, &f->ca_id);
        if (rc != P11CA_OK) {
            srv_problem(r, 400, "bad-request", "issuer: %s",
                        p11ca_err_message());
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* GET /v1/certs, GET /v1/certs/{serial}                               */
/* ------------------------------------------------------------------ */

struct page {
    json_t *items;
    size_t n, limit;
};

static int page_one(const reg_cert *c, void *arg)
{
    struct page *p = arg;

    /* One more than a page was asked for: it says whether one follows. */
    if (p->n++ >= p->limit)
        return 0;
    return json_array_append_new(p->items, srv_cert_json(c)) ? 1 : 0;
}

static void certs_list(struct srv_req *r)
{
    struct evkeyvalq *q = srv_req_query(r);
    struct page pg = {0};
    reg_filter f = {0};
    size_t offset = 0;
    char next[64];
    int rc;

    /* 1. parse */
    for (struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next)
        if (!filter_param(r, kv->key, kv->value, &f, &offset))
            return;
    /* 2. authorize */
    if (!srv_req_authorize(r, false))
        return;
    /* 3. the registry */
    pg.limit = f.limit ? f.limit : SRV_PAGE_LIMIT;
    f.limit = pg.limit + 1;
    f.offset = offset;
    pg.items = json_array();
    rc = pg.items ? reg_search(ca_registry(r->s->ca), &f, page_one, &pg)
                  : P11CA_E_NOMEM;
    if (rc != P11CA_OK) {
        json_decref(pg.items);
        srv_problem_rc(
            r, rc, rc == P11CA_E_NOMEM ? "out of memory" : p11ca_err_message());
        return;
    }
    /* 4. respond */
    srv_cursor_make(offset + pg.limit, next, sizeof(next));
    srv_reply_json(r, 200,
                   json_pack("{s:o, s:s?}", "items", pg.items, "next_cursor",
                             pg.n > pg.limit ? next : NULL));
}

static void cert_get(struct srv_req *r)
{
    char serial[64], *pem;
    const char *issuer;
    reg_cert c = {0};
    json_t *j, *hist;
    int64_t ca_id;
    bool self;
    int rc;

    /* 1. parse */
    if (!path_serial(r, serial, sizeof(serial))
        || !cert_query(r, NULL, &issuer))
        return;
    /* 2. authorize: a device reads its own entry only (its serial here,
     * its issuer once located) */
    self = r->conn->has_cert && strcmp(serial, r->conn->serial) == 0;
    if (!srv_req_authorize(r, self) || !cert_locate(r, issuer, serial, &ca_id)
        || !srv_req_authorize(r, self && ca_id == r->conn->ca_id))
        return;
    /* 3. the registry */
    rc = reg_get(ca_registry(r->s->ca), ca_id, serial, &c);
    if (rc != P11CA_OK) {
        srv_problem_rc(r, rc, p11ca_err_message());
        return;
    }
    j = srv_cert_json(&c);
    hist = json_array();
    if (j && hist
        && reg_history_list(ca_registry(r->s->ca), c.ca_id, c.serial,
                            history_one, hist)
               == P11CA_OK) {
        json_object_set_new(j, "history", hist);
        hist = NULL;
    }
    pem = cert_pem(&c);
    if (j && pem)
        json_object_set_new(j, "pem", json_string(pem));
    free(pem);
    json_decref(hist);
    reg_cert_clear(&c);
    /* 4. respond */
    srv_reply_json(r, 200, j);
}

/* ------------------------------------------------------------------ */
/* Changes                                                             */
/* ------------------------------------------------------------------ */

static void cert_run(struct srv_job *j, ca *wc)
{
    struct cert_job *cj = (struct cert_job *)j;
    reg *rg = ca_registry(wc);
    const char *why = cj->has_why ? cj->why : NULL;
    reg_limit lim;
    int rc;

    switch (cj->op) {
    case OP_STATUS:
        /* As p11ca cert activate|deactivate|revoke: what is so already
         * is answered as done, with "changed": false. */
        rc = reg_change_status(rg, cj->ca_id, cj->serial, cj->to, cj->reason,
                               cj->invalidity, j->actor, why, &cj->out,
                               &cj->changed);
        if (rc != P11CA_OK)
            srv_job_set_error(j, rc);
        else if (cj->changed) /* OCSP says so at once */
            srv_ocsp_cert_changed(j->s, wc, cj->ca_id, cj->serial, false);
        return;
    case OP_DELETE:
        rc = reg_delete(rg, cj->ca_id, cj->serial, j->actor, why);
        break;
    default:
        /* A sign-up: the registry's sign-up limit holds it too. */
        ca_signup_limit(wc, &lim);
        rc = reg_register_as(rg, &cj->rec, cj->to, j->actor, &lim);
        cj->ca_id = cj->rec.ca_id;
        snprintf(cj->serial, sizeof(cj->serial), "%s", cj->rec.serial);
        break;
    }
    if (rc == P11CA_OK)
        srv_ocsp_cert_changed(j->s, wc, cj->ca_id, cj->serial,
                              cj->op != OP_DELETE);
    if (rc == P11CA_OK && cj->op != OP_DELETE)
        rc = reg_get(rg, cj->ca_id, cj->serial, &cj->out);
    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
}

static void cert_done(struct srv_job *j)
{
    struct cert_job *cj = (struct cert_job *)j;
    struct srv_req *r = cj->r;
    char loc[128];

    if (j->rc != P11CA_OK) {
        if (j->rc == P11CA_E_RATE) /* the registry's sign-up limit */
            j->s->m.refusals[SRV_REFUSE_RATE]++;
        srv_problem_job(r, j);
    } else if (cj->op == OP_DELETE) {
        srv_reply_bytes(r, 204, NULL, NULL, 0);
    } else if (cj->op == OP_REGISTER) {
        j->s->m.signups_api++;
        snprintf(loc, sizeof(loc), "/v1/certs/%s?issuer=%lld",
                 reg_cert_shown(0, cj->serial), (long long)cj->ca_id);
        srv_set_header(r, "Location", loc);
        srv_reply_json(r, 201, srv_cert_json(&cj->out));
    } else {
        json_t *o = srv_cert_json(&cj->out);

        /* Only this CA's certificates are on its CRL; made once, here or
         * when the registry announces the revocation (srv_crl_first). */
        if (cj->changed && cj->to == REG_REVOKED
            && cj->out.ca_id == ca_registry_id(j->s->ca)
            && srv_crl_first(j->s, cj->out.serial, true))
            srv_crl_regenerate(j->s, j->actor);
        if (o)
            json_object_set_new(o, "changed", json_boolean(cj->changed));
        srv_reply_json(r, 200, o);
    }
    reg_cert_clear(&cj->rec);
    reg_cert_clear(&cj->out);
    free(cj);
}

static struct cert_job *cert_job_new(struct srv_req *r, enum cert_op op)
{
    struct cert_job *cj = calloc(1, sizeof(*cj));

    if (!cj) {
        srv_problem(r, 503, "busy", "out of memory");
        return NULL;
    }
    cj->r = r;
    cj->op = op;
    cj->reason = -1;
    cj->j.kind = "certificate change";
    cj->j.run = cert_run;
    cj->j.done = cert_done;
    snprintf(cj->j.actor, sizeof(cj->j.actor), "%s", r->actor);
    return cj;
}

static void cert_job_submit(struct srv_req *r, struct cert_job *cj)
{
    if (!srv_submit_or_answer(r, &cj->j)) {
        reg_cert_clear(&cj->rec);
        free(cj);
    }
}

/* A string member of @body, or NULL; false when answered (not a string). */
static bool str_member(struct srv_req *r, json_t *body, const char *name,
                       const char **out)
{
    json_t *v = json_object_get(body, name);

    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v)) {
        srv_problem(r, 400, "bad-request", "%s is a string", name);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* POST /v1/certs/{serial}/activate|deactivate|revoke {"why", "reason",
 * "invalidity"} */
static void cert_status(struct srv_req *r, reg_status to)
{
    static const char *const members[] = {"why", NULL};
    static const char *const rmembers[] = {"why", "reason", "invalidity", NULL};
    const char *why = NULL, *reason = NULL, *inval = NULL, *issuer;
    struct cert_job *cj;
    char serial[64];
    int64_t ca_id;
    json_t *body;

    /* 1. parse */
    if (!path_serial(r, serial, sizeof(serial))
        || !cert_query(r, NULL, &issuer))
        return;
    /* 2. authorize (before reading the body or the registry) */
    if (!srv_req_authorize(r, false) || !cert_locate(r, issuer, serial, &ca_id))
        return;
    if (!(body = srv_req_json(r, true)))
        return;
    if (!srv_json_only(r, body, to == REG_REVOKED ? rmembers : members)
        || !str_member(r, body, "why", &why)
        || !str_member(r, body, "reason", &reason)
        || !str_member(r, body, "invalidity", &inval)
        || !(cj = cert_job_new(r, OP_STATUS))) {
        json_decref(body);
        return;
    }
    cj->ca_id = ca_id;
    snprintf(cj->serial, sizeof(cj->serial), "%s", serial);
    cj->to = to;
    cj->reason = to == REG_REVOKED ? 0 : -1;
    if (reason && reg_reason_parse(reason, &cj->reason) != P11CA_OK) {
        srv_problem(r, 400, "bad-request",
                    "unknown reason \"%s\" (RFC 5280 names: keyCompromise, "
                    "superseded, cessationOfOperation, ...)",
                    reason);
        free(cj);
        json_decref(body);
        return;
    }
    if (inval && p11ca_parse_time(inval, &cj->invalidity) != 0) {
        srv_problem(r, 400, "bad-request",
                    "bad invalidity date \"%s\" (YYYY-MM-DD, "
                    "YYYY-MM-DDTHH:MM:SSZ or @unix)",
                    inval);
        free(cj);
        json_decref(body);
        return;
    }
    if (why) {
        snprintf(cj->why, sizeof(cj->why), "%s", why);
        cj->has_why = true;
    }
    json_decref(body);
    /* 3. the registry, through a worker; 4. cert_done responds */
    cert_job_submit(r, cj);
}

static void cert_activate(struct srv_req *r)
{
    cert_status(r, REG_ACTIVATED);
}

static void cert_deactivate(struct srv_req *r)
{
    cert_status(r, REG_NOT_ACTIVATED);
}

static void cert_revoke(struct srv_req *r)
{
    cert_status(r, REG_REVOKED);
}

/* DELETE /v1/certs/{serial}[?issuer=ID][&why=TEXT] */
static void cert_delete(struct srv_req *r)
{
    static const char *const more[] = {"why", NULL};
    struct evkeyvalq *q;
    struct cert_job *cj;
    const char *issuer;
    char serial[64];
    int64_t ca_id;

    /* 1. parse */
    if (!path_serial(r, serial, sizeof(serial))
        || !cert_query(r, more, &issuer))
        return;
    q = srv_req_query(r);
    /* 2. authorize */
    if (!srv_req_authorize(r, false) || !cert_locate(r, issuer, serial, &ca_id)
        || !(cj = cert_job_new(r, OP_DELETE)))
        return;
    cj->ca_id = ca_id;
    snprintf(cj->serial, sizeof(cj->serial), "%s", serial);
    if (evhttp_find_header(q, "why")) {
        snprintf(cj->why, sizeof(cj->why), "%s", evhttp_find_header(q, "why"));
        cj->has_why = true;
    }
    /* 3. the registry, through a worker; 4. cert_done responds */
    cert_job_submit(r, cj);
}

/*
 * The checks p11ca cert register makes too (ca_register_check: not a CA,
 * not expired, issued by a registered CA whose signature verifies), with
 * the API's remedies; the issuing CA in *@ca_id.  False when answered
 * (400, or the registry's error).
 */
static bool register_checks(struct srv_req *r, X509 *x, int64_t *ca_id)
{
    ca_reg_check chk = {0};
    int rc = ca_register_check(r->s->ca, x, "the certificate", &chk);

    *ca_id = chk.ca_id;
    if (rc == P11CA_OK)
        return true;
    if (chk.refusal == CA_REG_IS_CA)
        srv_problem(r, 400, "policy", "%s: POST /v1/cas registers a CA",
                    p11ca_err_message());
    else if (chk.refusal == CA_REG_NO_ISSUER)
        srv_problem(r, 400, "issuer-not-registered",
                    "%s (POST /v1/cas registers one)", p11ca_err_message());
    else if (chk.refusal != CA_REG_OK)
        srv_problem(r, 400, "policy", "%s", p11ca_err_message());
    else
        srv_problem_rc(r, rc, p11ca_err_message());
    return false;
}

/* A string member of @body into *@out (NULL when absent); false: it is
 * not a string (@detail says so). */
static bool str_field(json_t *body, const char *name, const char **out,
                      char *detail, size_t len)
{
    json_t *v = json_object_get(body, name);

    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v)) {
        snprintf(detail, len, "%s is a string", name);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

int srv_register_body_parse(json_t *body, struct srv_register_body *out,
                            char *detail, size_t detail_len)
{
    static const char *const members[] = {"certificate", "client_id", "status",
                                          NULL};
    const char *pem = NULL, *st = NULL, *unknown;
    X509 *x;
    BIO *b;

    out->x = NULL;
    out->client_id = NULL;
    out->to = REG_REGISTERED_NOT_ACTIVATED;
    if ((unknown = srv_json_unknown(body, members))) {
        snprintf(detail, detail_len, "unknown member \"%s\"", unknown);
        return -1;
    }
    if (!str_field(body, "certificate", &pem, detail, detail_len)
        || !str_field(body, "client_id", &out->client_id, detail, detail_len)
        || !str_field(body, "status", &st, detail, detail_len))
        return -1;
    b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (!x)
        snprintf(detail, detail_len,
                 "\"certificate\" must hold a PEM certificate");
    else if (st
             && (reg_status_parse(st, &out->to) != P11CA_OK
                 || (out->to != REG_ACTIVATED
                     && out->to != REG_REGISTERED_NOT_ACTIVATED)))
        snprintf(detail, detail_len,
                 "status is \"activated\" or \"registered-not-activated\"");
    else if (out->client_id
             && (!*out->client_id || strlen(out->client_id) > 255))
        snprintf(detail, detail_len, "client_id has 1 to 255 bytes");
    else {
        out->x = x;
        return 0;
    }
    X509_free(x);
    return -1;
}

/* Step 1 of POST /v1/certs: the certificate, its issuer, the status. */
static X509 *register_parse(struct srv_req *r, json_t *body,
                            struct cert_job *cj)
{
    struct srv_register_body rb;
    char detail[SRV_MSG_MAX];

    if (srv_register_body_parse(body, &rb, detail, sizeof(detail)) != 0) {
        srv_problem(r, 400, "bad-request", "%s", detail);
        return NULL;
    }
    cj->to = rb.to;
    if (rb.client_id && !(cj->rec.client_id = strdup(rb.client_id))) {
        srv_problem(r, 503, "busy", "out of memory");
        X509_free(rb.x);
        return NULL;
    }
    return rb.x;
}

/* POST /v1/certs {"certificate": PEM, "client_id", "status"} */
static void cert_register(struct srv_req *r)
{
    unsigned char *der = NULL;
    struct cert_job *cj = NULL;
    struct srv_ca *sca = NULL;
    char *client = NULL;
    json_t *body = NULL;
    unsigned retry = 0;
    char ra[16];
    X509 *x = NULL;
    int n, rc, taken;

    /* 2. authorize (before reading the body) */
    if (!srv_req_authorize(r, false))
        return;
    /* 1. parse */
    if (!(body = srv_req_json(r, false)) || !(cj = cert_job_new(r, OP_REGISTER))
        || !(x = register_parse(r, body, cj)))
        goto out;
    client = cj->rec.client_id;
    cj->rec.client_id = NULL;
    n = i2d_X509(x, &der);
    rc = n > 0 ? reg_cert_from_der(&cj->rec, der, (size_t)n) : P11CA_E_INPUT;
    if (rc == P11CA_OK && client) {
        free(cj->rec.client_id);
        cj->rec.client_id = client;
        client = NULL;
    }
    if (rc != P11CA_OK) {
        srv_problem_rc(r, rc, p11ca_err_message());
        goto out;
    }
    if (!register_checks(r, x, &cj->rec.ca_id))
        goto out;
    /* Sign-up limit of the issuing CA (one registered since the last
     * reload has none here; the registry's own limit still holds). */
    sca = srv_ca_by_id(r->s, cj->rec.ca_id);
    taken = sca ? srv_signup_take(r->s, sca, &retry) : 1;
    if (taken < 0) {
        srv_problem_rc(r, taken, p11ca_err_message());
        goto out;
    }
    if (taken == 0) {
        r->s->m.refusals[SRV_REFUSE_RATE]++;
        snprintf(ra, sizeof(ra), "%u", retry);
        srv_set_header(r, "Retry-After", ra);
        srv_problem(r, 429, "rate-limited",
                    "sign-up limit of CA %lld reached; retry in %u s",
                    (long long)sca->id, retry);
        goto out;
    }
    /* 3. the registry, through a worker; 4. cert_done responds */
    cert_job_submit(r, cj);
    cj = NULL;
out:
    if (cj) {
        reg_cert_clear(&cj->rec);
        free(cj);
    }
    free(client);
    OPENSSL_free(der);
    X509_free(x);
    json_decref(body);
}

const struct srv_route srv_routes_certs[] = {
    {EVHTTP_REQ_GET, "/v1/certs", certs_list, SRV_ROLE_AUDITOR, false},
    {EVHTTP_REQ_POST, "/v1/certs", cert_register, SRV_ROLE_OPERATOR, false},
    {EVHTTP_REQ_GET, "/v1/certs/{serial}", cert_get, SRV_ROLE_AUDITOR, true},
    {EVHTTP_REQ_DELETE, "/v1/certs/{serial}", cert_delete, SRV_ROLE_OPERATOR,
     false},
    {EVHTTP_REQ_POST, "/v1/certs/{serial}/activate", cert_activate,
     SRV_ROLE_OPERATOR, false},
    {EVHTTP_REQ_POST, "/v1/certs/{serial}/deactivate", cert_deactivate,
     SRV_ROLE_OPERATOR, false},
    {EVHTTP_REQ_POST, "/v1/certs/{serial}/revoke", cert_revoke,
     SRV_ROLE_OPERATOR, false},
    {0},
};
