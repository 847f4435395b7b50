/* SPDX-License-Identifier: Apache-2.0 */
/* /v1/cas: the registered CAs (this CA and external ones whose devices may
 * connect), their auto-registration and its default status. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "server/internal.h"

/* POST /v1/cas and PATCH /v1/cas/{id}, run by a worker. */
struct cas_job {
    struct srv_job j;
    struct srv_req *r;
    unsigned char *der;
    size_t len;
    char name[256];
    bool has_name;
    int64_t id;
    bool set_auto;
    bool auto_register;
    reg_status auto_status;
};

static json_t *ca_json(struct srv *s, const struct srv_ca *sca)
{
    const struct srv_rate *rate = srv_config_rate(&s->cfg, sca->id);
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65], *pem = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    long n;
    json_t *j;

    X509_digest(sca->x, EVP_sha256(), md, &mdlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (b && PEM_write_bio_X509(b, sca->x)
        && (n = BIO_get_mem_data(b, &pem)) > 0)
        pem = strndup(pem, (size_t)n);
    else
        pem = NULL;
    BIO_free(b);
    j = json_pack(
        "{s:I, s:s?, s:s, s:s, s:b, s:b, s:b, s:s, s:o, s:s?}", "id",
        (json_int_t)sca->id, "name", sca->name, "subject", sca->subject,
        "sha256", hex, "this_ca", sca->id == ca_registry_id(s->ca), "external",
        sca->external, "auto_register", sca->auto_register, "auto_status",
        reg_status_name(sca->auto_status), "signup_limit",
        rate->unlimited ? json_string("off")
                        : json_pack("{s:f, s:f}", "per_sec", rate->per_sec,
                                    "burst", rate->burst),
        "pem", pem);
    free(pem);
    return j;
}

/* GET /v1/cas */
static void cas_list(struct srv_req *r)
{
    json_t *arr;

    /* 1. parse: nothing.  2. authorize */
    if (!srv_req_authorize(r, false))
        return;
    /* 3. the CAs the service uses (read at start, at SIGHUP and after
     * POST/PATCH; a CA registered with the CLI shows after SIGHUP) */
    /* 4. respond */
    arr = json_array();
    for (size_t i = 0; arr && i < r->s->cas.n; i++)
        json_array_append_new(arr, ca_json(r->s, &r->s->cas.v[i]));
    srv_reply_json(r, 200, arr ? json_pack("{s:o}", "items", arr) : NULL);
}

int srv_cas_auto_parse(json_t *body, bool *on_out, reg_status *st_out,
                       bool *set, char *detail, size_t detail_len)
{
    json_t *on = json_object_get(body, "auto_register");
    json_t *st = json_object_get(body, "auto_status");

    *set = false;
    if (on && !json_is_boolean(on)) {
        snprintf(detail, detail_len, "auto_register is true or false");
        return -1;
    }
    if (st
        && (!json_is_string(st)
            || reg_status_parse(json_string_value(st), st_out) != 0
            || (*st_out != REG_ACTIVATED
                && *st_out != REG_REGISTERED_NOT_ACTIVATED))) {
        snprintf(
            detail, detail_len,
            "auto_status is \"activated\" or \"registered-not-activated\"");
        return -1;
    }
    if (on)
        *on_out = json_is_true(on);
    *set = on || st;
    return 0;
}

int srv_cas_patch_parse(json_t *body, bool *on, reg_status *st, char *detail,
                        size_t detail_len)
{
    static const char *const members[] = {"auto_register", "auto_status", NULL};
    const char *unknown = srv_json_unknown(body, members);
    bool set;

    if (unknown) {
        snprintf(detail, detail_len, "unknown member \"%s\"", unknown);
        return -1;
    }
    if (srv_cas_auto_parse(body, on, st, &set, detail, detail_len) != 0)
        return -1;
    if (!set) {
        snprintf(detail, detail_len, "give auto_register and/or auto_status");
        return -1;
    }
    return 0;
}

/* "auto_register" and "auto_status" of a POST /v1/cas body over the
 * [serve] defaults; false when answered. */
static bool parse_auto(struct srv_req *r, json_t *body, struct cas_job *cj)
{
    char detail[SRV_MSG_MAX];

    cj->auto_register = r->s->cfg.auto_register;
    cj->auto_status = r->s->cfg.auto_status;
    if (srv_cas_auto_parse(body, &cj->auto_register, &cj->auto_status,
                           &cj->set_auto, detail, sizeof(detail))
        != 0) {
        srv_problem(r, 400, "bad-request", "%s", detail);
        return false;
    }
    return true;
}

static void cas_run(struct srv_job *j, ca *wc)
{
    struct cas_job *cj = (struct cas_job *)j;
    reg *rg = ca_registry(wc);
    int rc = P11CA_OK;

    if (cj->der) {
        /* As p11ca cert register-ca: a CA whose certificates are only
         * registered here (this registry makes no CRL for it). */
        rc = reg_ca_add_external(rg, cj->der, cj->len,
                                 cj->has_name ? cj->name : NULL, &cj->id);
        if (rc == P11CA_OK)
            rc = reg_audit_add(rg, j->actor, "register-ca",
                               cj->has_name ? cj->name : "(unnamed)", NULL);
    }
    if (rc == P11CA_OK && cj->set_auto)
        rc = reg_ca_set_auto(rg, cj->id, cj->auto_register, cj->auto_status,
                             j->actor);
    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
}

static void cas_done(struct srv_job *j)
{
    struct cas_job *cj = (struct cas_job *)j;
    struct srv_req *r = cj->r;
    struct srv_ca *sca = NULL;
    char loc[64];
    int rc = P11CA_OK;

    if (j->rc == P11CA_OK)
        rc = srv_cas_refresh(j->s);
    if (j->rc == P11CA_OK && rc == P11CA_OK)
        sca = srv_ca_by_id(j->s, cj->id);
    if (sca && cj->der)
        rc = srv_trust_add(j->s, sca->x);
    if (j->rc != P11CA_OK) {
        srv_problem_job(r, j);
    } else if (rc != P11CA_OK) {
        srv_problem_rc(r, rc, p11ca_err_message());
    } else if (!sca) {
        srv_problem(r, 500, "internal", "CA %lld vanished", (long long)cj->id);
    } else {
        snprintf(loc, sizeof(loc), "/v1/cas/%lld", (long long)cj->id);
        srv_set_header(r, "Location", loc);
        srv_reply_json(r, cj->der ? 201 : 200, ca_json(j->s, sca));
    }
    free(cj->der);
    free(cj);
}

/* One PEM CA certificate from the body's "certificate"; NULL: answered. */
static X509 *body_ca_cert(struct srv_req *r, json_t *body)
{
    json_t *pem = json_object_get(body, "certificate");
    const char *text = json_string_value(pem);
    BIO *b = text ? BIO_new_mem_buf(text, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    ERR_clear_error();
    if (!x) {
        srv_problem(r, 400, "bad-request",
                    "\"certificate\" must hold a PEM certificate");
        return NULL;
    }
    if (X509_check_ca(x) < 1) {
        X509_free(x);
        srv_problem(r, 400, "not-a-ca",
                    "the certificate is not a CA certificate (basic "
                    "constraints CA:TRUE)");
        return NULL;
    }
    return x;
}

/* POST /v1/cas {"certificate": PEM, "name", "auto_register",
 * "auto_status"} */
static void cas_add(struct srv_req *r)
{
    static const char *const members[] = {"certificate", "name",
                                          "auto_register", "auto_status", NULL};
    struct cas_job *cj = NULL;
    json_t *body = NULL, *name;
    unsigned char *der = NULL;
    X509 *x = NULL;
    int n;

    /* 2. authorize (first: no body is read for a caller who may not) */
    if (!srv_req_authorize(r, false))
        return;
    /* 1. parse */
    if (!(body = srv_req_json(r, false)) || !srv_json_only(r, body, members)
        || !(x = body_ca_cert(r, body)))
        goto out;
    name = json_object_get(body, "name");
    if (name && !json_is_string(name)) {
        srv_problem(r, 400, "bad-request", "name is a string");
        goto out;
    }
    for (size_t i = 0; i < r->s->cas.n; i++)
        if (X509_cmp(r->s->cas.v[i].x, x) == 0) {
            srv_problem(r, 409, "conflict",
                        "this CA is registered already "
                        "(id %lld)",
                        (long long)r->s->cas.v[i].id);
            goto out;
        }
    cj = calloc(1, sizeof(*cj));
    n = i2d_X509(x, &der);
    if (cj && n > 0 && (cj->der = malloc((size_t)n)))
        memcpy(cj->der, der, (size_t)n);
    OPENSSL_free(der);
    if (!cj || !cj->der) {
        srv_problem(r, 503, "busy", "out of memory");
        goto out;
    }
    cj->len = (size_t)n;
    if (!parse_auto(r, body, cj))
        goto out;
    cj->set_auto = cj->set_auto || cj->auto_register;
    if (name) {
        snprintf(cj->name, sizeof(cj->name), "%s", json_string_value(name));
        cj->has_name = true;
    }
    /* 3. the registry, through a worker; 4. cas_done responds */
    cj->r = r;
    cj->j.kind = "POST /v1/cas";
    cj->j.run = cas_run;
    cj->j.done = cas_done;
    snprintf(cj->j.actor, sizeof(cj->j.actor), "%s", r->actor);
    if (srv_submit_or_answer(r, &cj->j))
        cj = NULL;
out:
    if (cj) {
        free(cj->der);
        free(cj);
    }
    X509_free(x);
    json_decref(body);
}

/* PATCH /v1/cas/{id} {"auto_register": bool, "auto_status": STATUS} */
static void cas_patch(struct srv_req *r)
{
    const char *idp = srv_req_param(r, 0);
    char detail[SRV_MSG_MAX];
    struct cas_job *cj = NULL;
    struct srv_ca *sca;
    json_t *body = NULL;
    char *end = NULL;
    long long id;

    /* 2. authorize */
    if (!srv_req_authorize(r, false))
        return;
    /* 1. parse */
    id = strtoll(idp, &end, 10);
    if (*end || id <= 0 || !(sca = srv_ca_by_id(r->s, id))) {
        srv_problem(r, 404, "not-found", "no registered CA with id %s", idp);
        return;
    }
    if (!(body = srv_req_json(r, false)))
        goto out;
    if (!(cj = calloc(1, sizeof(*cj)))) {
        srv_problem(r, 503, "busy", "out of memory");
        goto out;
    }
    /* What the body leaves out stays as the CA has it. */
    cj->auto_register = sca->auto_register;
    cj->auto_status = sca->auto_status;
    if (srv_cas_patch_parse(body, &cj->auto_register, &cj->auto_status, detail,
                            sizeof(detail))
        != 0) {
        srv_problem(r, 400, "bad-request", "%s", detail);
        goto out;
    }
    cj->set_auto = true;
    cj->id = id;
    /* 3. the registry, through a worker; 4. cas_done responds */
    cj->r = r;
    cj->j.kind = "PATCH /v1/cas";
    cj->j.run = cas_run;
    cj->j.done = cas_done;
    snprintf(cj->j.actor, sizeof(cj->j.actor), "%s", r->actor);
    if (srv_submit_or_answer(r, &cj->j))
        cj = NULL;
out:
    free(cj);
    json_decref(body);
}

const struct srv_route srv_routes_cas[] = {
    {EVHTTP_REQ_GET, "/v1/cas", cas_list, SRV_ROLE_AUDITOR, false},
    {EVHTTP_REQ_POST, "/v1/cas", cas_add, SRV_ROLE_ADMIN, false},
    {EVHTTP_REQ_PATCH, "/v1/cas/{id}", cas_patch, SRV_ROLE_ADMIN, false},
    {0},
};
