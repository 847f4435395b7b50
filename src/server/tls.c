/* SPDX-License-Identifier: Apache-2.0 */
/* TLS: the SSL_CTX (TLS key and certificate loaded through OSSL_STORE in
 * the CA key's library context), the registered CAs as trust anchors, and
 * the client certificate check at the handshake: the registry's status,
 * and auto-registration of devices of CAs that allow it. */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/enroll.h"
#include "server/internal.h"

int srv_conn_idx = -1;

/* A registration at the first connection, run by a worker. */
struct autoreg_job {
    struct srv_job j;
    struct srv_pending *p;
    reg_cert rec;
    reg_status st;
    char subject[256];
    char serial_shown[REG_SERIAL_TEXT_MAX];
};

/* The swap of a renewal at its first connection, run by a worker. */
struct confirm_job {
    struct srv_job j;
    struct srv_pending *p;
    int64_t ca_id;
    char serial[64];
    char old[64];   /* out: the certificate it replaced */
    bool revoked;   /* out: which was revoked (a new CRL) */
    bool confirmed; /* out: this job made the swap */
};

static void autoreg_send(struct srv *s, struct srv_pending *p,
                         const char *client_id, const char *source);
static void pending_refund(struct srv *s, const struct srv_pending *p);

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                         long argl, void *argp);

int srv_tls_init(void)
{
    if (srv_conn_idx < 0)
        srv_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
    return srv_conn_idx < 0
               ? p11ca_err_set(P11CA_E_INTERNAL, "SSL_get_ex_new_index failed")
               : P11CA_OK;
}

/* The SSL is freed (the connection is over): the connection state loses
 * its owner; users that still hold a reference see @closed. */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                         long argl, void *argp)
{
    struct srv_conn *c = ptr;
    struct srv *s;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (!c)
        return;
    s = c->s;
    /* No request named a client ID: the CN (a raw TLS client). */
    if (c->autoreg && c->autoreg->owner == c)
        autoreg_send(s, c->autoreg, NULL, "cn");
    c->closed = true;
    c->bev = NULL;
    s->inflight -= c->inflight;
    c->inflight = 0;
    if (c->deadline) {
        event_free(c->deadline);
        c->deadline = NULL;
    }
    /* A refused handshake: its socket closes later (still counted). */
    if (srv_conn_linger_start(c)) {
        srv_drain_check(s);
        return;
    }
    s->n_conns--;
    srv_conns_changed(s);
    srv_conn_unref(c);
    srv_drain_check(s);
}

/* ------------------------------------------------------------------ */
/* Registered CAs                                                      */
/* ------------------------------------------------------------------ */

void srv_cas_clear(struct srv_cas *cas)
{
    for (size_t i = 0; i < cas->n; i++) {
        free(cas->v[i].name);
        free(cas->v[i].subject);
        X509_free(cas->v[i].x);
    }
    free(cas->v);
    cas->v = NULL;
    cas->n = 0;
}

struct cas_fill {
    struct srv *s;
    struct srv_cas next;
    size_t cap;
    int64_t now;
};

static int cas_one(const reg_ca *rca, void *arg)
{
    struct cas_fill *f = arg;
    const unsigned char *p = rca->der;
    struct srv_ca *sca, *old;
    void *v;

    if (f->next.n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        v = realloc(f->next.v, f->cap * sizeof(*f->next.v));
        if (!v)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        f->next.v = v;
    }
    sca = &f->next.v[f->next.n];
    memset(sca, 0, sizeof(*sca));
    sca->x = d2i_X509(NULL, &p, (long)rca->der_len);
    sca->name = rca->name ? strdup(rca->name) : NULL;
    sca->subject = strdup(rca->subject ? rca->subject : "");
    f->next.n++;
    if (!sca->x || !sca->subject || (rca->name && !sca->name))
        return p11ca_err_set(P11CA_E_NOMEM, "registered CA %lld unreadable",
                             (long long)rca->id);
    sca->id = rca->id;
    sca->external = rca->external;
    sca->auto_register = rca->auto_register;
    sca->auto_status = rca->auto_status;
    old = srv_ca_by_id(f->s, rca->id);
    if (old) {
        sca->bucket = old->bucket;
        srv_bucket_set_rate(&sca->bucket, srv_config_rate(&f->s->cfg, sca->id),
                            f->now);
    } else {
        srv_bucket_init(&sca->bucket, srv_config_rate(&f->s->cfg, sca->id),
                        f->now);
    }
    return 0;
}

int srv_cas_read(struct srv *s, struct srv_cas *out)
{
    struct cas_fill f = {.s = s, .now = srv_now_ms()};
    int rc = reg_ca_list(ca_registry(s->ca), cas_one, &f);

    *out = (struct srv_cas){0};
    if (rc != P11CA_OK) {
        srv_cas_clear(&f.next);
        return rc < 0 ? rc : p11ca_err_rc();
    }
    *out = f.next;
    return P11CA_OK;
}

struct srv_ca *srv_ca_by_id(struct srv *s, int64_t id)
{
    for (size_t i = 0; i < s->cas.n; i++)
        if (s->cas.v[i].id == id)
            return &s->cas.v[i];
    return NULL;
}

static struct srv_ca *ca_by_cert(struct srv *s, X509 *x)
{
    for (size_t i = 0; i < s->cas.n; i++)
        if (X509_cmp(s->cas.v[i].x, x) == 0)
            return &s->cas.v[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The handshake check                                                 */
/* ------------------------------------------------------------------ */

static void peer_addr(SSL *ssl, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    int fd = SSL_get_fd(ssl);

    /* Zeroed whole: the analyzer does not see getpeername fill it. */
    memset(&ss, 0, sizeof(ss));
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
            snprintf(buf, len, "[%s]:%u", host, port);
            return;
        }
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
                  sizeof(host));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(buf, len, "%s:%u", host, port);
}

/* Why a client is refused: the alert (at the handshake), the reason and
 * its words (the access log, the problem after the handshake). */
struct verdict {
    int x509_err;
    enum srv_refusal why;
    unsigned retry_s; /* SRV_REFUSE_RATE: Retry-After */
    char msg[SRV_MSG_MAX];
};

static int verdict_set(struct verdict *v, int x509_err, enum srv_refusal why,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int verdict_set(struct verdict *v, int x509_err, enum srv_refusal why,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    v->x509_err = x509_err;
    v->why = why;
    return 0;
}

/* Refuse the handshake: an alert from @v, a line in the access log. */
static int refuse_v(struct srv_conn *c, X509_STORE_CTX *xs,
                    const struct verdict *v)
{
    c->s->m.refusals[v->why]++;
    srv_access(c->s, "%s \"TLS handshake\" refused serial=%s reason=%s (%s)",
               c->peer, c->serial[0] ? c->serial_shown : "-",
               srv_refusal_name(v->why), v->msg);
    X509_STORE_CTX_set_error(xs, v->x509_err);
    return 0;
}

static int refuse(struct srv_conn *c, X509_STORE_CTX *xs, int x509_err,
                  enum srv_refusal why, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int refuse(struct srv_conn *c, X509_STORE_CTX *xs, int x509_err,
                  enum srv_refusal why, const char *fmt, ...)
{
    struct verdict v = {.x509_err = x509_err, .why = why};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v.msg, sizeof(v.msg), fmt, ap);
    va_end(ap);
    return refuse_v(c, xs, &v);
}

/* Refuse a connection after its handshake (no alert can say it now): its
 * requests get a problem from @v (srv_dispatch_req), then it closes. */
static void refuse_after(struct srv_conn *c, const struct verdict *v)
{
    c->s->m.refusals[v->why]++;
    srv_access(c->s,
               "%s \"auto-registration\" refused serial=%s reason=%s (%s)",
               c->peer, c->serial[0] ? c->serial_shown : "-",
               srv_refusal_name(v->why), v->msg);
    c->has_cert = false;
    c->refused = true;
    c->refused_why = v->why;
    c->refused_retry_s = v->retry_s;
    snprintf(c->refused_msg, sizeof(c->refused_msg), "%s", v->msg);
}

/* What a client certificate claims: its serial in @c (the access log
 * names it, refused or not), its subject and SHA-256 in @subject and
 * @sha256 for the caller to hand over once the certificate verified. */
static int conn_claim(struct srv_conn *c, X509 *leaf, char **subject,
                      unsigned char *sha256)
{
    unsigned char *der = NULL;
    unsigned int mdlen = 0;
    reg_cert tmp = {0};
    int n = i2d_X509(leaf, &der), rc;

    *subject = NULL;
    rc = n > 0 ? reg_cert_from_der(&tmp, der, (size_t)n) : P11CA_E_INPUT;
    if (rc == P11CA_OK
        && !EVP_Digest(der, (size_t)n, sha256, &mdlen, EVP_sha256(), NULL))
        rc = P11CA_E_INTERNAL;
    if (rc == P11CA_OK) {
        snprintf(c->serial, sizeof(c->serial), "%s", tmp.serial);
        reg_serial_text(tmp.serial, c->serial_shown, sizeof(c->serial_shown));
        *subject = tmp.subject;
        tmp.subject = NULL;
    }
    reg_cert_clear(&tmp);
    OPENSSL_free(der);
    return rc;
}

/* The connection's identity, from a certificate that verified. */
static void conn_identity(struct srv_conn *c, char *subject,
                          const unsigned char *sha256, int64_t ca_id)
{
    free(c->subject);
    c->subject = subject;
    memcpy(c->sha256, sha256, sizeof(c->sha256));
    c->ca_id = ca_id;
    c->has_cert = true;
}

static enum srv_refusal chain_refusal(int err)
{
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return SRV_REFUSE_EXPIRED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return SRV_REFUSE_UNKNOWN_CA;
    default:
        return SRV_REFUSE_INVALID;
    }
}

static struct srv_pending *pending_find(struct srv *s, int64_t ca_id,
                                        const char *serial)
{
    for (struct srv_pending *p = s->pending; p; p = p->next)
        if (p->ca_id == ca_id && strcmp(p->serial, serial) == 0)
            return p;
    return NULL;
}

static int pending_add_conn(struct srv_pending *p, struct srv_conn *c)
{
    void *v;

    if (p->n == p->cap) {
        v = realloc(p->conns, (p->cap ? 2 * p->cap : 4) * sizeof(*p->conns));
        if (!v)
            return P11CA_E_NOMEM;
        p->conns = v;
        p->cap = p->cap ? 2 * p->cap : 4;
    }
    p->conns[p->n++] = srv_conn_ref(c);
    c->reg_pending = true;
    return P11CA_OK;
}

/* @p's job is submitted or given up: its owner names no client ID any
 * more (a connection that joined it never does). */
static void pending_detach(struct srv_pending *p)
{
    if (p->owner) {
        p->owner->autoreg = NULL;
        srv_conn_unref(p->owner);
        p->owner = NULL;
    }
}

static void autoreg_job_free(struct autoreg_job *a)
{
    if (!a)
        return;
    reg_cert_clear(&a->rec);
    free(a);
}

/* Unlink @p from the service's pending records. */
static void pending_unlink(struct srv *s, struct srv_pending *p)
{
    struct srv_pending **pp;

    for (pp = &s->pending; *pp && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = p->next;
}

/* @p is over (recorded, failed or given up): out of s->pending, its
 * waiting connections told @rc and @msg, freed. */
static void pending_end(struct srv *s, struct srv_pending *p, int rc,
                        const char *msg)
{
    pending_unlink(s, p);
    pending_detach(p);
    for (size_t i = 0; i < p->n; i++) {
        srv_conn_registered(p->conns[i], rc, msg);
        srv_conn_unref(p->conns[i]);
    }
    autoreg_job_free(p->job);
    free(p->conns);
    free(p);
}

/* A sign-up: the registry's sign-up limit holds it too (ca_signup_limit). */
static void autoreg_run(struct srv_job *j, ca *wc)
{
    struct autoreg_job *a = (struct autoreg_job *)j;
    reg_limit lim;
    int rc;

    ca_signup_limit(wc, &lim);
    rc = reg_register_as(ca_registry(wc), &a->rec, a->st, j->actor, &lim);
    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
}

static void autoreg_done(struct srv_job *j)
{
    struct autoreg_job *a = (struct autoreg_job *)j;
    struct srv *s = j->s;

    if (j->rc == P11CA_OK) {
        s->m.signups_auto++;
        srv_log("auto-registered %s (%s) as %s, client ID %s",
                reg_cert_shown(a->rec.ca_id, a->rec.serial), a->subject,
                reg_status_name(a->st),
                a->rec.client_id ? a->rec.client_id : "-");
    } else {
        s->m.refusals[j->rc == P11CA_E_RATE ? SRV_REFUSE_RATE
                                            : SRV_REFUSE_REGISTRATION]++;
        srv_log("auto-registration of %s (%s) failed: %s",
                reg_cert_shown(a->rec.ca_id, a->rec.serial), a->subject,
                j->msg);
        /* Nothing recorded: the sign-up goes back (a device whose client
         * ID is taken must not drain the CA's limit by reconnecting). */
        pending_refund(s, a->p);
    }
    pending_end(s, a->p, j->rc, j->msg);
    autoreg_job_free(a);
}

/* The sign-up taken for @p at the handshake goes back (nothing is
 * recorded). */
static void pending_refund(struct srv *s, const struct srv_pending *p)
{
    struct srv_ca *sca = srv_ca_by_id(s, p->ca_id);

    if (sca)
        srv_signup_refund(s, sca);
}

/* Write @p (decided at the handshake) with @client_id (NULL: the CN). */
static void autoreg_send(struct srv *s, struct srv_pending *p,
                         const char *client_id, const char *source)
{
    struct autoreg_job *a = p->job;
    char *id = NULL;
    int rc = P11CA_OK;

    if (!a)
        return;
    p->job = NULL;
    pending_detach(p);
    if (client_id && !(id = strdup(client_id)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (id) {
        free(a->rec.client_id);
        a->rec.client_id = id;
    }
    /* The subject is cut short rather than where the client ID came
     * from (the audit entry says it). */
    snprintf(a->j.actor, sizeof(a->j.actor),
             "api:auto-register %.*s serial=%.*s client-id=%.8s",
             (int)(sizeof(a->j.actor) - REG_SERIAL_TEXT_MAX - 48), a->subject,
             REG_SERIAL_TEXT_MAX - 1, a->serial_shown, source);
    if (rc == P11CA_OK)
        rc = srv_job_submit(s, &a->j);
    if (rc != P11CA_OK) {
        srv_log("auto-registration of %s (%s) not queued: %s",
                reg_cert_shown(a->rec.ca_id, a->rec.serial), a->subject,
                p11ca_err_message());
        s->m.refusals[SRV_REFUSE_REGISTRY]++;
        pending_refund(s, p);
        pending_end(s, p, P11CA_E_UNAVAILABLE,
                    "the registration could not be queued; try again");
        autoreg_job_free(a);
    }
}

void srv_autoreg_write(struct srv_conn *c, const char *client_id,
                       const char *source)
{
    if (c->autoreg)
        autoreg_send(c->s, c->autoreg, client_id, source);
}

void srv_autoreg_flush(struct srv *s)
{
    struct srv_pending *p, *next;

    for (p = s->pending; p; p = next) {
        next = p->next; /* autoreg_send may end @p */
        autoreg_send(s, p, NULL, "cn");
    }
}

/* Prepare the record of an unknown certificate of @ca with its default
 * status; @c owns it (its first request names the client ID) and waits
 * for it when it may proceed. */
static int autoreg_prepare(struct srv *s, struct srv_conn *c,
                           const struct srv_ca *sca, X509 *leaf)
{
    struct autoreg_job *a = calloc(1, sizeof(*a));
    unsigned char *der = NULL;
    int n = i2d_X509(leaf, &der), rc = P11CA_E_NOMEM;

    if (a && n > 0)
        rc = reg_cert_from_der(&a->rec, der, (size_t)n);
    OPENSSL_free(der);
    if (rc == P11CA_OK && !(a->p = calloc(1, sizeof(*a->p))))
        rc = P11CA_E_NOMEM;
    if (rc != P11CA_OK) {
        autoreg_job_free(a);
        return rc;
    }
    a->rec.ca_id = sca->id;
    a->st = sca->auto_status;
    a->j.kind = "auto-registration";
    a->j.run = autoreg_run;
    a->j.done = autoreg_done;
    snprintf(a->subject, sizeof(a->subject), "%s", c->subject);
    snprintf(a->serial_shown, sizeof(a->serial_shown), "%s", c->serial_shown);
    a->p->ca_id = sca->id;
    snprintf(a->p->serial, sizeof(a->p->serial), "%s", c->serial);
    memcpy(a->p->sha256, c->sha256, sizeof(a->p->sha256));
    a->p->st = sca->auto_status;
    a->p->job = a;
    a->p->owner = srv_conn_ref(c);
    c->autoreg = a->p;
    a->p->next = s->pending;
    s->pending = a->p;
    if (sca->auto_status == REG_ACTIVATED
        && pending_add_conn(a->p, c) != P11CA_OK) {
        pending_end(s, a->p, P11CA_E_NOMEM, "out of memory");
        return P11CA_E_NOMEM;
    }
    /* SIGTERM came: no request will be served to name a client ID. */
    if (s->draining)
        autoreg_send(s, a->p, NULL, "cn");
    return P11CA_OK;
}

/* A certificate being recorded by an earlier connection: this one gets
 * what that one got, whatever the CA's settings are now (they may have
 * changed since, by PATCH /v1/cas or SIGHUP).  1: it may join, 0: @v says
 * why not. */
static int pending_word(const struct srv_conn *c, const struct srv_pending *p,
                        struct verdict *v)
{
    if (memcmp(p->sha256, c->sha256, sizeof(p->sha256)) != 0)
        return verdict_set(v, X509_V_ERR_CERT_REJECTED, SRV_REFUSE_MISMATCH,
                           "another certificate %s is being registered",
                           reg_cert_shown(p->ca_id, p->serial));
    if (p->st != REG_ACTIVATED)
        return verdict_set(v, X509_V_ERR_CERT_REJECTED,
                           SRV_REFUSE_NOT_ACTIVATED,
                           "being registered as %s: an operator activates it",
                           reg_status_name(p->st));
    return 1;
}

/* @c, whose handshake is done, waits for @p under way (a registration
 * or a renewal's swap), or is refused when @p is not for it. */
static void pending_join(struct srv_conn *c, struct srv_pending *p)
{
    struct verdict v = {0};

    if (pending_word(c, p, &v) != 1)
        refuse_after(c, &v);
    else if (pending_add_conn(p, c) != P11CA_OK)
        refuse_after(c, &(struct verdict){.why = SRV_REFUSE_REGISTRY,
                                          .msg = "out of memory"});
}

/* Whether @rc_cert (not activated) may be a renewal waiting for this, its
 * first, connection: a certificate of this service's CA linked to one
 * that is activated (a second primary-key read).  The worker checks the
 * rest (confirm_run). */
static bool renewal_candidate(struct srv_conn *c, const reg_cert *rc_cert)
{
    reg_cert old = {0};
    bool yes = rc_cert->status == REG_NOT_ACTIVATED && rc_cert->replaces
               && rc_cert->ca_id == ca_registry_id(c->s->ca)
               && reg_get(ca_registry(c->s->ca), rc_cert->ca_id,
                          rc_cert->replaces, &old)
                      == P11CA_OK
               && old.status == REG_ACTIVATED;

    reg_cert_clear(&old);
    return yes;
}

/* The registry's word on @c's certificate @leaf of CA @ca_id (one
 * primary-key read): 1 admitted, 2 admitted if it is a renewal that its
 * first connection confirms (confirm_decide), 0 refused (@v says why), -1
 * not in the registry. */
static int registry_word(struct srv_conn *c, int64_t ca_id, X509 *leaf,
                         struct verdict *v)
{
    reg_cert rc_cert = {0};
    unsigned char *der = NULL;
    int n = i2d_X509(leaf, &der), ret;
    /* (issuer, serial): another CA's certificate may have this serial. */
    int rc = reg_get(ca_registry(c->s->ca), ca_id, c->serial, &rc_cert);

    if (rc == P11CA_E_NOTFOUND)
        ret = -1;
    else if (rc != P11CA_OK)
        ret = verdict_set(v, X509_V_ERR_APPLICATION_VERIFICATION,
                          SRV_REFUSE_REGISTRY, "%s", p11ca_err_message());
    else if (n <= 0 || rc_cert.der_len != (size_t)n
             || memcmp(rc_cert.der, der, (size_t)n) != 0)
        ret = verdict_set(v, X509_V_ERR_CERT_REJECTED, SRV_REFUSE_MISMATCH,
                          "the registry holds another certificate %s",
                          reg_cert_shown(ca_id, c->serial));
    else if (rc_cert.status == REG_REVOKED)
        ret = verdict_set(v, X509_V_ERR_CERT_REVOKED, SRV_REFUSE_REVOKED,
                          "revoked");
    else if (rc_cert.status != REG_ACTIVATED && renewal_candidate(c, &rc_cert))
        ret = 2;
    else if (rc_cert.status != REG_ACTIVATED)
        ret = verdict_set(v, X509_V_ERR_CERT_REJECTED, SRV_REFUSE_NOT_ACTIVATED,
                          "%s", reg_status_name(rc_cert.status));
    else
        ret = 1;
    OPENSSL_free(der);
    reg_cert_clear(&rc_cert);
    return ret;
}

/* At the handshake, a certificate the registry does not know: refused
 * when no registration can admit it; else admitted for now, and decided
 * once the handshake is done (autoreg_decide): before the client's
 * CertificateVerify anyone may present a device's public certificate, so
 * nothing is recorded nor counted against the sign-up limit here. */
static int check_unknown(struct srv_conn *c, X509_STORE_CTX *xs,
                         const struct srv_ca *sca)
{
    struct srv_pending *p = pending_find(c->s, sca->id, c->serial);
    struct verdict v;

    if (p && pending_word(c, p, &v) != 1)
        return refuse_v(c, xs, &v);
    if (!p && !sca->auto_register)
        return refuse(c, xs, X509_V_ERR_CERT_REJECTED, SRV_REFUSE_UNKNOWN_CERT,
                      "not in the registry; auto-registration is off for "
                      "CA %lld",
                      (long long)sca->id);
    c->reg_wanted = true;
    return 1;
}

/* The registry's word on a verified certificate of @ca. */
static int check_registry(struct srv_conn *c, X509_STORE_CTX *xs,
                          const struct srv_ca *sca, X509 *leaf)
{
    struct verdict v;
    int w;

#ifdef P11CA_BENCH_NO_REGISTRY_CHECK
    /* Only in the comparison build of scripts/bench/serve (never set by
     * configure): the chain is verified, the registry is not read. */
    (void)xs;
    (void)leaf;
    (void)v;
    (void)w;
    return 1;
#endif
    w = registry_word(c, sca->id, leaf, &v);
    if (w < 0)
        return check_unknown(c, xs, sca);
    /* A renewal: nothing is given before the client's CertificateVerify
     * (anyone may present a certificate); the swap waits for it. */
    if (w == 2)
        c->confirm_wanted = true;
    return w >= 1 ? 1 : refuse_v(c, xs, &v);
}

/* The handshake is done: the client proved it holds the key of @leaf, an
 * unknown certificate check_unknown admitted.  Join a registration under
 * way, or start one (the CA's sign-up limit counts it); the connection's
 * requests wait for it when its status is activated, else the connection
 * is refused (refuse_after). */
static void autoreg_decide(struct srv_conn *c, X509 *leaf)
{
    struct srv *s = c->s;
    struct srv_pending *p = pending_find(s, c->ca_id, c->serial);
    struct srv_ca *sca;
    struct verdict v = {0};
    int w, taken;

    if (p) {
        pending_join(c, p);
        return;
    }
    /* Recorded since the handshake began (another connection's)? */
    w = registry_word(c, c->ca_id, leaf, &v);
    if (w >= 0) {
        if (w == 0)
            refuse_after(c, &v);
        else if (w == 2)
            refuse_after(c, &(struct verdict){.why = SRV_REFUSE_NOT_ACTIVATED,
                                              .msg = "not-activated"});
        return;
    }
    sca = srv_ca_by_id(s, c->ca_id);
    if (!sca || !sca->auto_register) {
        verdict_set(&v, 0, SRV_REFUSE_UNKNOWN_CERT,
                    "not in the registry; auto-registration is off for "
                    "CA %lld",
                    (long long)c->ca_id);
        refuse_after(c, &v);
    } else if ((taken = srv_signup_take(s, sca, &v.retry_s)) < 0) {
        verdict_set(&v, 0, SRV_REFUSE_REGISTRY,
                    "the registry could not count the sign-up");
        refuse_after(c, &v);
    } else if (taken == 0) {
        verdict_set(&v, 0, SRV_REFUSE_RATE,
                    "sign-up limit of CA %lld reached; retry in %u s",
                    (long long)sca->id, v.retry_s);
        refuse_after(c, &v);
    } else if (autoreg_prepare(s, c, sca, leaf) != P11CA_OK) {
        srv_signup_refund(s, sca); /* nothing will be recorded */
        verdict_set(&v, 0, SRV_REFUSE_REGISTRY,
                    "cannot queue the registration");
        refuse_after(c, &v);
    } else if (sca->auto_status != REG_ACTIVATED) {
        verdict_set(&v, 0, SRV_REFUSE_NOT_ACTIVATED,
                    "auto-registered as %s: an operator activates it",
                    reg_status_name(sca->auto_status));
        refuse_after(c, &v);
    }
}

/* The swap: @serial, a renewal never activated, takes the place of the
 * activated certificate it replaces, as its profile says (the old one
 * deactivated, revoked or kept: enroll_supersede).  Its first connection
 * proved that the device holds it. */
static void confirm_run(struct srv_job *j, ca *wc)
{
    struct confirm_job *cj = (struct confirm_job *)j;
    reg *rg = ca_registry(wc);
    enroll_issuer *is = NULL;
    reg_cert c = {0}, old = {0}, after = {0};
    bool pending = false;
    int rc = ca_set_actor(wc, j->actor);

    if (rc == P11CA_OK)
        rc = reg_get(rg, cj->ca_id, cj->serial, &c);
    /* Swapped by another connection's job since the handshake. */
    if (rc == P11CA_OK && c.status == REG_ACTIVATED)
        goto out;
    if (rc == P11CA_OK)
        rc = srv_renewal_pending(rg, &c, &old, &pending);
    if (rc == P11CA_OK && !pending)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "%s is not activated and renews no activated certificate",
            reg_cert_shown(cj->ca_id, cj->serial));
    if (rc == P11CA_OK)
        rc = enroll_issuer_for_ca(wc, &is);
    if (rc == P11CA_OK)
        rc = enroll_supersede(is, c.serial, old.serial, NULL);
    if (rc == P11CA_OK) {
        cj->confirmed = true;
        snprintf(cj->old, sizeof(cj->old), "%s", old.serial);
        srv_ocsp_cert_changed(j->s, wc, cj->ca_id, old.serial, false);
        srv_ocsp_cert_changed(j->s, wc, cj->ca_id, c.serial, true);
        cj->revoked = reg_get(rg, cj->ca_id, old.serial, &after) == P11CA_OK
                      && after.status == REG_REVOKED;
    }
out:
    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
    enroll_issuer_free(is);
    reg_cert_clear(&c);
    reg_cert_clear(&old);
    reg_cert_clear(&after);
}

static void confirm_done(struct srv_job *j)
{
    struct confirm_job *cj = (struct confirm_job *)j;
    struct srv *s = j->s;
    struct verdict v = {0};

    pending_unlink(s, cj->p);
    if (j->rc == P11CA_OK && cj->confirmed)
        srv_log("renewal confirmed: %s replaces %s",
                reg_cert_shown(cj->ca_id, cj->serial), cj->old);
    else if (j->rc != P11CA_OK)
        srv_log("renewal %s not confirmed: %s",
                reg_cert_shown(cj->ca_id, cj->serial), j->msg);
    /* The old one revoked: a new CRL, made once, here or when the
     * registry announces the revocation (srv_crl_first). */
    if (cj->revoked && srv_crl_first(s, cj->old, true))
        srv_crl_regenerate(s, j->actor);
    verdict_set(&v, 0, SRV_REFUSE_NOT_ACTIVATED,
                "the renewal was not confirmed: %s", j->msg);
    for (size_t i = 0; i < cj->p->n; i++) {
        struct srv_conn *c = cj->p->conns[i];

        /* The registry out of reach: 503, the device tries again. */
        if (j->rc == P11CA_OK || j->rc == P11CA_E_UNAVAILABLE) {
            srv_conn_registered(c, j->rc, j->msg);
        } else {
            refuse_after(c, &v);
            srv_conn_registered(c, P11CA_OK, NULL);
        }
        srv_conn_unref(c);
    }
    free(cj->p->conns);
    free(cj->p);
    free(cj);
}

/* The handshake is done with a certificate registry_word took for a
 * renewal: join the swap under way, or start one on a worker; the
 * connection's requests wait for it. */
static void confirm_decide(struct srv_conn *c)
{
    struct srv *s = c->s;
    struct srv_pending *p = pending_find(s, c->ca_id, c->serial);
    struct confirm_job *cj;

    if (p) {
        pending_join(c, p);
        return;
    }
    cj = calloc(1, sizeof(*cj));
    if (cj && !(cj->p = calloc(1, sizeof(*cj->p)))) {
        free(cj);
        cj = NULL;
    }
    if (!cj) {
        refuse_after(c, &(struct verdict){.why = SRV_REFUSE_REGISTRY,
                                          .msg = "out of memory"});
        return;
    }
    cj->j.kind = "renewal confirmation";
    cj->j.run = confirm_run;
    cj->j.done = confirm_done;
    snprintf(cj->j.actor, sizeof(cj->j.actor), "api:%s serial=%s",
             c->subject ? c->subject : "", c->serial_shown);
    cj->ca_id = c->ca_id;
    snprintf(cj->serial, sizeof(cj->serial), "%s", c->serial);
    cj->p->ca_id = c->ca_id;
    snprintf(cj->p->serial, sizeof(cj->p->serial), "%s", c->serial);
    memcpy(cj->p->sha256, c->sha256, sizeof(cj->p->sha256));
    cj->p->st = REG_ACTIVATED;
    if (pending_add_conn(cj->p, c) != P11CA_OK
        || srv_job_submit(s, &cj->j) != P11CA_OK) {
        for (size_t i = 0; i < cj->p->n; i++) {
            cj->p->conns[i]->reg_pending = false;
            srv_conn_unref(cj->p->conns[i]);
        }
        free(cj->p->conns);
        free(cj->p);
        free(cj);
        refuse_after(c, &(struct verdict){.why = SRV_REFUSE_REGISTRY,
                                          .msg = "cannot queue the renewal's "
                                                 "confirmation"});
        return;
    }
    cj->p->next = s->pending;
    s->pending = cj->p;
}

void srv_autoreg_drop(struct srv_conn *c, const char *why)
{
    struct srv_pending *p = c->autoreg;
    struct verdict v = {0};

    if (!p)
        return;
    verdict_set(&v, 0, SRV_REFUSE_REGISTRATION, "%s", why);
    refuse_after(c, &v);
    pending_refund(c->s, p);
    pending_end(c->s, p, P11CA_E_INPUT, v.msg);
}

bool srv_client_id_check(const char *id, char *why, size_t why_len)
{
    size_t len = strlen(id);
    json_t *u;

    if (len == 0 || len > ENROLL_CLIENT_ID_MAX) {
        snprintf(why, why_len,
                 "a client ID has 1 to %d bytes; this one has %zu",
                 ENROLL_CLIENT_ID_MAX, len);
        return false;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f) {
            snprintf(
                why, why_len,
                "a client ID holds no control character (byte %zu is 0x%02x)",
                i + 1, (unsigned char)id[i]);
            return false;
        }
    /* UTF-8, as the registry's JSON and PostgreSQL's text need it
     * (jansson checks it). */
    u = json_stringn(id, len);
    if (!u) {
        snprintf(why, why_len, "a client ID is UTF-8 text; this one is not");
        return false;
    }
    json_decref(u);
    return true;
}

/* SSL_CTX_set_info_callback: the end of the handshake (the client's
 * CertificateVerify and Finished checked), and a fatal alert sent during
 * it (the connection then closes lingering: srv_conn_linger). */
static void info_cb(const SSL *ssl, int where, int ret)
{
    struct srv_conn *c = SSL_get_ex_data(ssl, srv_conn_idx);
    X509 *leaf;

    if (!c || c->closed)
        return;
    if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT && !c->hs_done
        && (ret >> 8) == SSL3_AL_FATAL)
        srv_conn_linger(c, SSL_get_fd(ssl));
    if (!(where & SSL_CB_HANDSHAKE_DONE) || c->hs_done)
        return;
    c->hs_done = true;
    if (c->confirm_wanted) {
        c->confirm_wanted = false;
        confirm_decide(c);
        return;
    }
    if (!c->reg_wanted)
        return;
    c->reg_wanted = false;
    leaf = SSL_get0_peer_certificate(ssl);
    if (leaf) {
        autoreg_decide(c, leaf);
    } else {
        struct verdict v = {0};

        verdict_set(&v, 0, SRV_REFUSE_INVALID, "no certificate");
        refuse_after(c, &v);
    }
}

/*
 * SSL_CTX_set_cert_verify_callback: the chain first (to a registered CA,
 * which issued the certificate directly), then the registry; an unknown
 * certificate that may be auto-registered is decided after the handshake
 * (check_unknown, autoreg_decide).  A status change shows at the next
 * handshake: every handshake reads the registry (one primary-key read; a
 * SQLite WAL reader does not wait for writers).  Writes (auto-registration)
 * go to a worker: OpenSSL cannot suspend a server's certificate check
 * (SSL_set_retry_verify is for clients), so the handshake completes and
 * the connection's requests wait for the record.
 */
static int verify_cb(X509_STORE_CTX *xs, void *arg)
{
    SSL *ssl =
        X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct srv_conn *c = ssl ? SSL_get_ex_data(ssl, srv_conn_idx) : NULL;
    unsigned char sha256[32];
    STACK_OF(X509) * chain;
    struct srv_ca *sca;
    char *subject = NULL;
    X509 *leaf;
    int err, ret;

    (void)arg;
    if (!c)
        return 0;
    /* Nothing of the certificate is the connection's before it verified
     * (the serial it claims is only logged). */
    c->has_cert = false;
    c->reg_wanted = false;
    c->confirm_wanted = false;
    peer_addr(ssl, c->peer, sizeof(c->peer));
    c->s->m.handshakes++;
    leaf = X509_STORE_CTX_get0_cert(xs);
    if (!leaf || conn_claim(c, leaf, &subject, sha256) != P11CA_OK)
        return refuse(c, xs, X509_V_ERR_APPLICATION_VERIFICATION,
                      SRV_REFUSE_INVALID, "unreadable certificate");
    if (X509_verify_cert(xs) <= 0) {
        free(subject);
        err = X509_STORE_CTX_get_error(xs);
        return refuse(c, xs, err, chain_refusal(err), "%s",
                      X509_verify_cert_error_string(err));
    }
    chain = X509_STORE_CTX_get0_chain(xs);
    sca = sk_X509_num(chain) >= 2 ? ca_by_cert(c->s, sk_X509_value(chain, 1))
                                  : NULL;
    if (!sca) {
        free(subject);
        return refuse(c, xs, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                      SRV_REFUSE_UNKNOWN_CA,
                      "its issuer is not a registered CA");
    }
    conn_identity(c, subject, sha256, sca->id);
    ret = check_registry(c, xs, sca, leaf);
    if (ret != 1) {
        c->has_cert = false;
        c->reg_wanted = false;
        c->confirm_wanted = false;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* The SSL_CTX                                                         */
/* ------------------------------------------------------------------ */

static int ctx_trust(const struct srv_cas *cas, SSL_CTX *ctx)
{
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    X509_NAME *nm;

    if (!names)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    /* Every registered CA is an anchor (an intermediate too). */
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
    for (size_t i = 0; i < cas->n; i++) {
        nm = X509_NAME_dup(X509_get_subject_name(cas->v[i].x));
        if (!X509_STORE_add_cert(st, cas->v[i].x) || !nm
            || !sk_X509_NAME_push(names, nm)) {
            X509_NAME_free(nm);
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return p11ca_err_set(P11CA_E_INTERNAL,
                                 "cannot trust registered CA %lld",
                                 (long long)cas->v[i].id);
        }
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    return P11CA_OK;
}

/* A file: the certificate and its chain.  A URI: the token's certificate,
 * then this CA's certificate and chain when it issued it. */
static int ctx_cert(struct srv *s, SSL_CTX *ctx)
{
    const char *where = s->cfg.tls_cert;
    STACK_OF(X509) *chain = ca_chain(s->ca);
    X509 *x = NULL;
    int rc;

    if (strncmp(where, "pkcs11:", 7) != 0) {
        if (SSL_CTX_use_certificate_chain_file(ctx, where) != 1)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "tls_certificate %s: cannot read it (PEM: the certificate, then its chain)",
                where);
        return P11CA_OK;
    }
    rc = ca_load_cert(s->ca, where, &x);
    if (rc == P11CA_OK && SSL_CTX_use_certificate(ctx, x) != 1)
        rc = p11ca_err_set(P11CA_E_INPUT, "tls_certificate %s: refused", where);
    if (rc == P11CA_OK && ca_cert(s->ca)
        && X509_check_issued(ca_cert(s->ca), x) == X509_V_OK) {
        SSL_CTX_add1_chain_cert(ctx, ca_cert(s->ca));
        for (int i = 0; i < sk_X509_num(chain); i++)
            SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i));
    }
    X509_free(x);
    return rc;
}

static int ctx_key(struct srv *s, SSL_CTX *ctx)
{
    EVP_PKEY *pk = NULL;
    int rc = ca_load_pkey(s->ca, s->cfg.tls_key, &pk);

    /* Compares the public halves: no signature on the token. */
    if (rc == P11CA_OK
        && X509_check_private_key(SSL_CTX_get0_certificate(ctx), pk) != 1)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "tls_key is not the key of tls_certificate %s",
                           s->cfg.tls_cert);
    /* tls_key is not repeated: a URI there may hold a PIN. */
    if (rc == P11CA_OK && SSL_CTX_use_PrivateKey(ctx, pk) != 1)
        rc = p11ca_err_set(P11CA_E_INPUT, "tls_key: refused by OpenSSL");
    EVP_PKEY_free(pk);
    return rc;
}

int srv_tls_ctx_new(struct srv *s, const struct srv_cas *cas, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(ca_libctx(s->ca), NULL, TLS_server_method());
    int rc = ctx ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    *out = NULL;
    if (rc == P11CA_OK) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        /* No resumption: a resumed session would skip verify_cb, and a
         * deactivated or revoked client would get in again. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        /* No renegotiation (TLS 1.2): a second handshake on a connection
         * could present another certificate, or none, after requests
         * were authorized by the first; and a client could make the
         * server redo the handshake's work in a loop. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, verify_cb, s);
        SSL_CTX_set_info_callback(ctx, info_cb);
        rc = ctx_cert(s, ctx);
    }
    if (rc == P11CA_OK)
        rc = ctx_key(s, ctx);
    if (rc == P11CA_OK)
        rc = ctx_trust(cas, ctx);
    if (rc != P11CA_OK) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return P11CA_OK;
}

int srv_trust_reload(struct srv *s)
{
    struct srv_cas cas;
    SSL_CTX *ctx = NULL;
    int rc = srv_cas_read(s, &cas);

    if (rc == P11CA_OK)
        rc = srv_tls_ctx_new(s, &cas, &ctx);
    if (rc != P11CA_OK) {
        srv_cas_clear(&cas);
        return rc;
    }
    srv_cas_clear(&s->cas);
    s->cas = cas;
    SSL_CTX_free(s->ssl_ctx); /* open connections hold a reference */
    s->ssl_ctx = ctx;
    return P11CA_OK;
}

int srv_cas_refresh(struct srv *s)
{
    struct srv_cas cas;
    int rc = srv_cas_read(s, &cas);

    if (rc != P11CA_OK)
        return rc;
    srv_cas_clear(&s->cas);
    s->cas = cas;
    return P11CA_OK;
}

int srv_trust_add(struct srv *s, X509 *cax)
{
    X509_STORE *st = SSL_CTX_get_cert_store(s->ssl_ctx);

    /* The store is shared by the open connections' SSL objects: adding is
     * safe (one thread), and only new handshakes look. */
    if (!X509_STORE_add_cert(st, cax)
        || !SSL_CTX_add_client_CA(s->ssl_ctx, cax)) {
        ERR_clear_error();
        return p11ca_err_set(P11CA_E_INTERNAL, "cannot trust the new CA");
    }
    return P11CA_OK;
}
