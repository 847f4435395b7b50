/* SPDX-License-Identifier: Apache-2.0 */
/* GET /v1/crl: the last CRL (DER).  A revocation through the API makes a
 * new one through a worker (the CA key signs it); revocations that come
 * while one is made are folded into the next, and a CRL that was not made
 * is tried again until one is. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "server/internal.h"

/* A CRL not made is tried again after CRL_RETRY_FIRST_MS, then twice as
 * long each time, up to CRL_RETRY_MAX_MS: a token that is away is not
 * asked in a loop. */
#define CRL_RETRY_FIRST_MS 1000u
#define CRL_RETRY_MAX_MS   60000u

struct crl_job {
    struct srv_job j;
    unsigned char *der;
    size_t len;
    uint64_t number;
    size_t entries;
    char warning[512]; /* ca_warning of the CRL made */
};

int srv_crl_load(struct srv *s)
{
    char path[4096];
    X509_CRL *crl = NULL;
    unsigned char *der = NULL;
    BIO *b;
    int n;

    snprintf(path, sizeof(path), "%s/crl.pem", ca_dir(s->ca));
    b = BIO_new_file(path, "r");
    if (!b) {
        ERR_clear_error();
        return P11CA_OK; /* none yet */
    }
    crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
    BIO_free(b);
    n = crl ? i2d_X509_CRL(crl, &der) : -1;
    X509_CRL_free(crl);
    if (n <= 0) {
        ERR_clear_error();
        return p11ca_err_set(P11CA_E_INPUT, "%s: not a PEM CRL", path);
    }
    free(s->crl_der);
    s->crl_der = malloc((size_t)n);
    if (s->crl_der)
        memcpy(s->crl_der, der, (size_t)n);
    s->crl_len = s->crl_der ? (size_t)n : 0;
    OPENSSL_free(der);
    return s->crl_der ? P11CA_OK
                      : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

static void crl_run(struct srv_job *j, ca *wc)
{
    struct crl_job *cj = (struct crl_job *)j;
    X509_CRL *crl = NULL;
    unsigned char *der = NULL;
    int rc = ca_set_actor(wc, j->actor), n;

    if (rc == P11CA_OK)
        rc = ca_crl_make(wc, 0, NULL, NULL, &crl, &cj->number, &cj->entries);
    if (rc == P11CA_OK && ca_warning(wc))
        snprintf(cj->warning, sizeof(cj->warning), "%s", ca_warning(wc));
    n = rc == P11CA_OK ? i2d_X509_CRL(crl, &der) : -1;
    if (rc == P11CA_OK && n > 0 && (cj->der = malloc((size_t)n))) {
        memcpy(cj->der, der, (size_t)n);
        cj->len = (size_t)n;
    } else if (rc == P11CA_OK) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "cannot encode the CRL");
    }
    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
    OPENSSL_free(der);
    X509_CRL_free(crl);
}

static void crl_retry_later(struct srv *s, const char *actor);

/* The retry timer: make the CRL that was not made. */
static void crl_retry(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;

    (void)fd;
    (void)what;
    if (s->draining)
        crl_retry_later(s, s->crl_actor); /* says so, no more */
    else
        srv_crl_regenerate(s, s->crl_actor);
}

/* No CRL was made for a revocation: try again later (one timer). */
static void crl_retry_later(struct srv *s, const char *actor)
{
    struct timeval tv;

    if (s->draining) {
        srv_log("the CRL does not list every revocation: p11ca crl makes one");
        return;
    }
    if (actor != s->crl_actor)
        snprintf(s->crl_actor, sizeof(s->crl_actor), "%s", actor);
    if (!s->ev_crl_retry)
        s->ev_crl_retry = evtimer_new(s->base, crl_retry, s);
    if (!s->ev_crl_retry) {
        srv_log(
            "the CRL does not list every revocation, and no retry could be scheduled (out of memory): p11ca crl makes one");
        return;
    }
    if (evtimer_pending(s->ev_crl_retry, NULL))
        return;
    s->crl_retry_ms = s->crl_retry_ms == 0 ? CRL_RETRY_FIRST_MS
                      : s->crl_retry_ms >= CRL_RETRY_MAX_MS / 2
                          ? CRL_RETRY_MAX_MS
                          : 2 * s->crl_retry_ms;
    tv.tv_sec = (time_t)(s->crl_retry_ms / 1000);
    tv.tv_usec = (suseconds_t)(s->crl_retry_ms % 1000) * 1000;
    evtimer_add(s->ev_crl_retry, &tv);
    srv_log("CRL: trying again in %u ms", s->crl_retry_ms);
}

static void crl_done(struct srv_job *j)
{
    struct crl_job *cj = (struct crl_job *)j;
    struct srv *s = j->s;

    s->crl_job = false;
    if (j->rc == P11CA_OK) {
        free(s->crl_der);
        s->crl_der = cj->der;
        s->crl_len = cj->len;
        cj->der = NULL;
        s->crl_retry_ms = 0;
        if (s->ev_crl_retry)
            evtimer_del(s->ev_crl_retry);
        srv_log("CRL %llu made: %zu entries%s%s",
                (unsigned long long)cj->number, cj->entries,
                cj->warning[0] ? "; warning: " : "", cj->warning);
    } else if (!j->cancelled) {
        srv_log("CRL not made: %s", j->msg);
    } else {
        srv_log("CRL not made (the service stops): the CRL does not list "
                "every revocation: p11ca crl makes one");
    }
    if (s->crl_again && !j->cancelled) {
        s->crl_again = false;
        srv_crl_regenerate(s, j->actor);
    } else if (j->rc != P11CA_OK && !j->cancelled) {
        crl_retry_later(s, j->actor);
    }
    free(cj->der);
    free(cj);
}

void srv_crl_regenerate(struct srv *s, const char *actor)
{
    struct crl_job *cj;

    if (s->crl_job) {
        s->crl_again = true;
        return;
    }
    cj = calloc(1, sizeof(*cj));
    if (!cj) {
        srv_log("CRL not made: out of memory");
        crl_retry_later(s, actor);
        return;
    }
    cj->j.kind = "CRL";
    cj->j.run = crl_run;
    cj->j.done = crl_done;
    snprintf(cj->j.actor, sizeof(cj->j.actor), "%s", actor);
    if (srv_job_submit(s, &cj->j) != P11CA_OK) {
        srv_log("CRL not made: %s", p11ca_err_message());
        free(cj);
        crl_retry_later(s, actor);
        return;
    }
    s->crl_job = true;
}

/* GET /v1/crl: the CRL as DER (application/pkix-crl, RFC 5280). */
static void crl_get(struct srv_req *r)
{
    /* 1. parse: nothing.  2. authorize: anyone (relying parties). */
    if (!srv_req_authorize(r, false))
        return;
    /* 3. the last CRL made (in memory).  4. respond */
    if (!r->s->crl_der) {
        srv_set_header(r, "Retry-After", "1");
        srv_problem(r, 503, "no-crl",
                    "no CRL yet: the first one is being "
                    "made");
        return;
    }
    srv_reply_bytes(r, 200, "application/pkix-crl", r->s->crl_der,
                    r->s->crl_len);
}

const struct srv_route srv_routes_crl[] = {
    {EVHTTP_REQ_GET, "/v1/crl", crl_get, SRV_ROLE_ANON, false},
    {0},
};
