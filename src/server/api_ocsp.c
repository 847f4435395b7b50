/* SPDX-License-Identifier: Apache-2.0 */
/* The OCSP responder over HTTP (RFC 6960 Appendix A, RFC 5019): POST
 * ocsp_path and GET ocsp_path/{base64}, answered from the pre-signed
 * cache on the loop thread, or signed by a worker (a nonce, a miss); the
 * cache kept current by a refresh thread (the audit trail: changes made by
 * other processes) and by the API's own changes. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "server/internal.h"

#define OCSP_REQUEST_TYPE  "application/ocsp-request"
#define OCSP_RESPONSE_TYPE "application/ocsp-response"

enum { ROUTE_POST, ROUTE_GET };

/* A request a worker answers (a nonce, or not in the cache). */
struct ocsp_job {
    struct srv_job j;
    struct srv_req *r;
    unsigned char *der;
    size_t len;
    ca_ocsp_resp *resp;
    ca_ocsp_info info;
};

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* An HTTP date (RFC 9110 IMF-fixdate), whatever the locale. */
static void http_date_format(int64_t t, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

/* http_date_format, remembered: a response's three dates (Date,
 * Last-Modified, Expires) are mostly those of the one before.  Loop
 * thread only. */
static void http_date(int64_t t, char *buf, size_t len)
{
    static struct {
        int64_t t;
        char s[32];
    } memo[4];
    static unsigned next;

    for (size_t i = 0; i < sizeof(memo) / sizeof(memo[0]); i++)
        if (memo[i].s[0] && memo[i].t == t) {
            snprintf(buf, len, "%s", memo[i].s);
            return;
        }
    http_date_format(t, buf, len);
    next = (next + 1) % (sizeof(memo) / sizeof(memo[0]));
    memo[next].t = t;
    snprintf(memo[next].s, sizeof(memo[next].s), "%s", buf);
}

/*
 * Send @resp (a reference the reply gives back): HTTP 200 whatever the
 * OCSP status (RFC 6960 A.1: the status is in the response).  A
 * successful response carries RFC 5019's cache headers; an error status
 * is not to be cached.
 */
static void ocsp_reply(struct srv_req *r, ca_ocsp_resp *resp)
{
    int64_t now = (int64_t)time(NULL), next;
    const unsigned char *der;
    char buf[128];
    size_t len;

    der = ca_ocsp_resp_der(resp, &len);
    http_date(now, buf, sizeof(buf));
    srv_set_header(r, "Date", buf);
    if (ca_ocsp_resp_status(resp) == CA_OCSP_SUCCESSFUL) {
        next = ca_ocsp_resp_next_update(resp);
        http_date(ca_ocsp_resp_this_update(resp), buf, sizeof(buf));
        srv_set_header(r, "Last-Modified", buf);
        http_date(next, buf, sizeof(buf));
        srv_set_header(r, "Expires", buf);
        snprintf(buf, sizeof(buf),
                 "max-age=%lld, public, no-transform, must-revalidate",
                 (long long)(next > now ? next - now : 0));
        srv_set_header(r, "Cache-Control", buf);
        snprintf(buf, sizeof(buf), "\"%s\"", ca_ocsp_resp_etag(resp));
        srv_set_header(r, "ETag", buf);
    }
    srv_reply_bytes(r, 200, OCSP_RESPONSE_TYPE, der, len);
    ca_ocsp_resp_unref(resp);
}

/* Why a tryLater was answered (p11ca_ocsp_try_later_total{reason}). */
enum { TL_BUSY, TL_SIGNER, TL_ERROR };

/*
 * An error line of the responder, at most one per SRV_OCSP_LOG_INTERVAL_S
 * (a flood of unauthenticated requests must not flood the log): the lines
 * in between are counted, and said in one line before the next.  Loop
 * thread only.
 */
static void ocsp_log(struct srv *s, const char *status, const char *why)
{
    int64_t now = (int64_t)time(NULL);

    if (s->ocsp_log_at && now - s->ocsp_log_at < SRV_OCSP_LOG_INTERVAL_S) {
        s->ocsp_log_quiet++;
        return;
    }
    if (s->ocsp_log_quiet)
        srv_log("OCSP: %llu more tryLater or internalError answers in the "
                "last %lld s (not logged one by one; see /metrics)",
                (unsigned long long)s->ocsp_log_quiet,
                (long long)(now - s->ocsp_log_at));
    srv_log("OCSP: %s: %s", status, why);
    s->ocsp_log_at = now;
    s->ocsp_log_quiet = 0;
}

/* tryLater (RFC 6960 2.3): the service cannot sign now. */
static void ocsp_try_later(struct srv_req *r, int reason, const char *why)
{
    r->s->ocsp_try_later_n[reason]++;
    ocsp_log(r->s, "tryLater", why);
    ocsp_reply(r, ca_ocsp_resp_ref(r->s->ocsp_try_later));
}

/* ------------------------------------------------------------------ */
/* Signing on a worker                                                 */
/* ------------------------------------------------------------------ */

static void respond_run(struct srv_job *j, ca *wc)
{
    struct ocsp_job *oj = (struct ocsp_job *)j;
    int rc = ca_ocsp_respond(j->s->ocsp, ca_registry(wc), oj->der, oj->len,
                             (int64_t)time(NULL), &oj->resp, &oj->info);

    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
}

static void respond_done(struct srv_job *j)
{
    struct ocsp_job *oj = (struct ocsp_job *)j;
    struct srv_req *r = oj->r;
    int st;

    j->s->ocsp_in_flight--;
    if (j->cancelled || !oj->resp) {
        ca_ocsp_resp_unref(oj->resp);
        ocsp_try_later(r, TL_ERROR,
                       j->cancelled ? "the service is shutting down" : j->msg);
    } else {
        st = ca_ocsp_resp_status(oj->resp);
        /* A token or registry failure, a bad signer: the operator's
         * business, so logged (a malformed request is the client's). */
        if (st == CA_OCSP_TRY_LATER)
            j->s->ocsp_try_later_n[TL_ERROR]++;
        if (st == CA_OCSP_TRY_LATER || st == CA_OCSP_INTERNAL_ERROR)
            ocsp_log(j->s, ca_ocsp_rstatus_name(st), oj->info.why);
        if (st == CA_OCSP_SUCCESSFUL && !oj->info.cached)
            j->s->ocsp_signed++;
        ocsp_reply(r, oj->resp);
    }
    free(oj->der);
    free(oj);
}

/* Answer @der (@len bytes, taken): from the cache, or through a worker. */
static void ocsp_answer(struct srv_req *r, unsigned char *der, size_t len)
{
    struct srv *s = r->s;
    ca_ocsp_resp *resp = NULL;
    struct ocsp_job *oj;

    if (ca_ocsp_lookup(s->ocsp, der, len, (int64_t)time(NULL), &resp)) {
        free(der);
        ocsp_reply(r, resp);
        return;
    }
    /* What needs a signature: refused at once when it cannot be made (an
     * expired delegated signer) or when ocsp_max_signing are in flight
     * (anyone may ask: a flood of nonces or unknown serials must not take
     * every worker from the API). */
    if (!ca_ocsp_signer_valid(s->ocsp, (int64_t)time(NULL))) {
        free(der);
        ocsp_try_later(
            r, TL_SIGNER,
            "the OCSP signer's certificate (signer_cert of [ ocsp ]) is not valid now: make a new one with p11ca ocsp signer init and restart");
        return;
    }
    if (s->ocsp_in_flight >= srv_ocsp_max_signing(s)) {
        free(der);
        ocsp_try_later(r, TL_BUSY,
                       "ocsp_max_signing fresh signatures are in flight");
        return;
    }
    oj = calloc(1, sizeof(*oj));
    if (!oj) {
        free(der);
        ocsp_try_later(r, TL_ERROR, "out of memory");
        return;
    }
    oj->r = r;
    oj->der = der;
    oj->len = len;
    oj->j.kind = "OCSP";
    oj->j.run = respond_run;
    oj->j.done = respond_done;
    oj->j.read_only = true;
    snprintf(oj->j.actor, sizeof(oj->j.actor), "%s", r->actor);
    if (srv_job_submit(s, &oj->j) != P11CA_OK) {
        free(oj->der);
        free(oj);
        ocsp_try_later(r, TL_ERROR, p11ca_err_message());
        return;
    }
    s->ocsp_in_flight++;
}

size_t srv_ocsp_max_signing(const struct srv *s)
{
    return s->cfg.ocsp_max_signing ? s->cfg.ocsp_max_signing : s->cfg.workers;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* The request's path as sent (r->path is cut at its size; a GET request
 * may be longer). */
static const char *raw_path(struct srv_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->er);
    const char *p = uri ? evhttp_uri_get_path(uri) : NULL;

    return p ? p : "";
}

/*
 * The base64 of a GET request (RFC 6960 A.1: "url-encoding of base-64
 * encoding of the DER encoding of the OCSPRequest"): URL-decoded ('+'
 * stays '+'), padding added when left out.  NULL (and *@len 0) when it
 * is not base64: the caller answers malformedRequest.
 */
static unsigned char *b64_request(const char *enc, size_t *len)
{
    size_t n = 0, dlen;
    char *text = evhttp_uridecode(enc, 0, &n);
    unsigned char *der = NULL;
    EVP_ENCODE_CTX *ctx = NULL;
    int out = 0, fin = 0;

    *len = 0;
    if (!text || n == 0 || n > 4 * (CA_OCSP_MAX_REQUEST / 3 + 1))
        goto out;
    while (n % 4 && n < 4 * (CA_OCSP_MAX_REQUEST / 3 + 1)) {
        char *t = realloc(text, n + 2);

        if (!t)
            goto out;
        text = t;
        text[n++] = '=';
        text[n] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789+/=",
                    text[i])
            || !text[i])
            goto out;
    dlen = n / 4 * 3 + 3;
    der = malloc(dlen);
    ctx = EVP_ENCODE_CTX_new();
    if (!der || !ctx)
        goto fail;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, der, &out, (const unsigned char *)text, (int)n)
            < 0
        || EVP_DecodeFinal(ctx, der + out, &fin) != 1 || out + fin <= 0)
        goto fail;
    *len = (size_t)(out + fin);
    goto out;
fail:
    free(der);
    der = NULL;
out:
    ERR_clear_error();
    EVP_ENCODE_CTX_free(ctx);
    free(text);
    return der;
}

/* An empty request: what ca_ocsp_lookup answers malformedRequest. */
static void ocsp_malformed(struct srv_req *r)
{
    unsigned char *none = malloc(1);

    if (!none) {
        ocsp_try_later(r, TL_ERROR, "out of memory");
        return;
    }
    ocsp_answer(r, none, 0);
}

/* GET ocsp_path/{base64} */
static void ocsp_get(struct srv_req *r)
{
    const char *p = raw_path(r) + strlen(r->s->cfg.ocsp_path);
    unsigned char *der;
    size_t len;

    /* 1. parse (everything after the prefix: base64 has '/' in it);
     * 2. authorize: anyone. */
    while (*p == '/')
        p++;
    der = *p ? b64_request(p, &len) : NULL;
    if (!der) {
        ocsp_malformed(r);
        return;
    }
    /* 3. the cache or a worker; 4. respond */
    ocsp_answer(r, der, len);
}

/* Whether the Content-Type (if any) is application/ocsp-request. */
static bool type_ok(struct srv_req *r)
{
    const char *t = evhttp_find_header(evhttp_request_get_input_headers(r->er),
                                       "Content-Type");
    size_t n = strlen(OCSP_REQUEST_TYPE);

    return !t
           || (strncasecmp(t, OCSP_REQUEST_TYPE, n) == 0
               && (t[n] == '\0' || t[n] == ';' || t[n] == ' '));
}

/* POST ocsp_path, the DER request as the body. */
static void ocsp_post(struct srv_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->er);
    size_t n = in ? evbuffer_get_length(in) : 0;
    unsigned char *der;

    /* 1. parse; 2. authorize: anyone */
    if (!type_ok(r)) {
        srv_problem(r, 415, "unsupported-media-type",
                    "an OCSP request is sent as " OCSP_REQUEST_TYPE);
        return;
    }
    if (n > CA_OCSP_MAX_REQUEST || n > r->s->cfg.max_body_bytes) {
        srv_problem(r, 413, "body-too-large",
                    "the OCSP request has %zu bytes; at most %zu are read", n,
                    CA_OCSP_MAX_REQUEST < r->s->cfg.max_body_bytes
                        ? (size_t)CA_OCSP_MAX_REQUEST
                        : r->s->cfg.max_body_bytes);
        return;
    }
    der = malloc(n ? n : 1);
    if (!der) {
        ocsp_try_later(r, TL_ERROR, "out of memory");
        return;
    }
    if (n && evbuffer_copyout(in, der, n) != (ev_ssize_t)n)
        n = 0; /* malformed */
    /* 3. the cache or a worker; 4. respond */
    ocsp_answer(r, der, n);
}

int srv_ocsp_route(struct srv_req *r)
{
    const char *path = raw_path(r), *base = r->s->cfg.ocsp_path;
    size_t n = strlen(base), first = srv_route_count();
    enum evhttp_cmd_type m = evhttp_request_get_command(r->er);

    if (strncmp(path, base, n) != 0 || (path[n] && path[n] != '/'))
        return -1;
    /* The index of the first OCSP route: they are the last table. */
    while (first > 0 && srv_route_at(first - 1)->by_prefix)
        first--;
    if (m == EVHTTP_REQ_POST)
        return (int)first + ROUTE_POST;
    if (m == EVHTTP_REQ_GET)
        return (int)first + ROUTE_GET;
    r->route = (int)first + ROUTE_GET;
    srv_set_header(r, "Allow", "GET, POST");
    srv_problem(r, 405, "method-not-allowed", "%s takes GET, POST", base);
    return -2;
}

/* ------------------------------------------------------------------ */
/* Keeping the cache current                                           */
/* ------------------------------------------------------------------ */

void srv_ocsp_cert_changed(struct srv *s, ca *wc, int64_t ca_id,
                           const char *serial, bool issued)
{
    char msg[SRV_MSG_MAX];

    if (!s->ocsp
        || ca_ocsp_cert_changed(s->ocsp, ca_registry(wc), ca_id, serial, issued,
                                (int64_t)time(NULL))
               == P11CA_OK)
        return;
    /* The stale responses are gone all the same: queries sign them. */
    snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
    p11ca_err_clear();
    srv_log("OCSP: responses of %s not signed again: %s", serial, msg);
}

/*
 * The refresh thread: every SRV_OCSP_REFRESH_MS, the changes of the audit
 * trail (other processes: p11ca cert revoke) and the responses near their
 * nextUpdate signed again, with its own registry handle.  A failure is
 * logged when it starts and when it ends, not every round.
 */
static void *refresh_main(void *arg)
{
    struct srv *s = arg;
    struct timespec ts;
    int last = P11CA_OK, rc;
    char msg[SRV_MSG_MAX];

    pthread_mutex_lock(&s->refresh_mu);
    while (!s->refresh_stop) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(SRV_OCSP_REFRESH_MS % 1000) * 1000000L;
        ts.tv_sec += SRV_OCSP_REFRESH_MS / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!s->refresh_kick)
            pthread_cond_timedwait(&s->refresh_cv, &s->refresh_mu, &ts);
        s->refresh_kick = false;
        if (s->refresh_stop)
            break;
        pthread_mutex_unlock(&s->refresh_mu);
        p11ca_err_clear();
        rc = ca_ocsp_refresh(s->ocsp, ca_registry(s->refresh_ca),
                             (int64_t)time(NULL), SRV_OCSP_REFRESH_SIGNS, NULL);
        if (rc != last) {
            snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
            if (rc != P11CA_OK)
                srv_log("OCSP: the cache's refresh failed: %s", msg);
            else
                srv_log("OCSP: the cache's refresh works again");
            last = rc;
        }
        pthread_mutex_lock(&s->refresh_mu);
    }
    pthread_mutex_unlock(&s->refresh_mu);
    return NULL;
}

static int refresh_start(struct srv *s)
{
    pthread_condattr_t attr;
    sigset_t all, old;
    int rc = ca_open_shared_readonly(s->ca, &s->refresh_ca);

    if (rc != P11CA_OK)
        return rc;
    pthread_mutex_init(&s->refresh_mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->refresh_cv, &attr);
    pthread_condattr_destroy(&attr);
    /* Signals go to the loop thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&s->refresh_thread, NULL, refresh_main, s) == 0)
        s->refresh_started = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s->refresh_started
               ? P11CA_OK
               : p11ca_err_set(P11CA_E_INTERNAL,
                               "cannot start the OCSP refresh thread");
}

/* An unsigned tryLater response, made once. */
static int try_later_new(struct srv *s)
{
    OCSP_RESPONSE *resp =
        OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
    unsigned char *der = NULL;
    int n = resp ? i2d_OCSP_RESPONSE(resp, &der) : -1;

    OCSP_RESPONSE_free(resp);
    if (n > 0)
        s->ocsp_try_later =
            ca_ocsp_resp_new(der, (size_t)n, CA_OCSP_TRY_LATER, 0, 0, 0);
    OPENSSL_free(der);
    ERR_clear_error();
    return s->ocsp_try_later ? P11CA_OK
                             : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

int srv_ocsp_start(struct srv *s)
{
    int rc = try_later_new(s);

    /* The responder's own handle (ca_ocsp_new keeps it), sharing the
     * loaded CA key; a delegated signer's key is loaded now too, so that
     * no request waits for a login. */
    if (rc == P11CA_OK)
        rc = ca_open_shared_readonly(s->ca, &s->ocsp_ca);
    if (rc == P11CA_OK)
        rc = ca_ocsp_new(s->ocsp_ca, &s->ocsp);
    if (rc == P11CA_OK)
        rc = ca_ocsp_load_key(s->ocsp);
    /* An expired (or not yet valid) delegated signer stops OCSP, not the
     * service: OCSP answers tryLater until a new signer and a restart;
     * /metrics says p11ca_ocsp_signer_valid 0. */
    if (rc == P11CA_E_STATE && ca_ocsp_delegated(s->ocsp)
        && !ca_ocsp_signer_valid(s->ocsp, (int64_t)time(NULL))) {
        srv_log("error: OCSP answers tryLater: %s", p11ca_err_message());
        p11ca_err_clear();
        rc = P11CA_OK;
    }
    if (rc == P11CA_OK)
        rc = refresh_start(s);
    return rc;
}

void srv_ocsp_stop(struct srv *s)
{
    if (!s->refresh_started)
        return;
    pthread_mutex_lock(&s->refresh_mu);
    s->refresh_stop = true;
    pthread_cond_signal(&s->refresh_cv);
    pthread_mutex_unlock(&s->refresh_mu);
}

void srv_ocsp_wake(struct srv *s)
{
    if (!s->refresh_started)
        return;
    pthread_mutex_lock(&s->refresh_mu);
    s->refresh_kick = true;
    pthread_cond_signal(&s->refresh_cv);
    pthread_mutex_unlock(&s->refresh_mu);
}

/* Join the refresh thread (stopped by srv_ocsp_stop).  Its round is no
 * job of the drain: it gets the shutdown timeout of its own (a round of
 * signatures on a slow token), and only the grace once the drain timed
 * out; then, as a worker (worker_join), a signature stuck on the token is
 * left behind. */
static void refresh_join(struct srv *s)
{
    unsigned ms = SRV_STUCK_GRACE_MS;
    struct timespec ts;

    if (!s->refresh_started)
        return;
    srv_ocsp_stop(s);
    s->refresh_started = false;
    if (!s->timed_out)
        ms += s->cfg.shutdown_timeout_ms;
    srv_join_deadline(&ts, ms);
    if (pthread_timedjoin_np(s->refresh_thread, NULL, &ts) == 0)
        return;
    srv_log("the OCSP refresh is still signing (a token that does not "
            "answer?): exiting without it");
    _exit(P11CA_EXIT_INTERNAL);
}

void srv_ocsp_free(struct srv *s)
{
    refresh_join(s);
    if (s->refresh_ca) {
        pthread_mutex_destroy(&s->refresh_mu);
        pthread_cond_destroy(&s->refresh_cv);
    }
    ca_close(s->refresh_ca);
    s->refresh_ca = NULL;
    ca_ocsp_free(s->ocsp);
    s->ocsp = NULL;
    ca_close(s->ocsp_ca);
    s->ocsp_ca = NULL;
    ca_ocsp_resp_unref(s->ocsp_try_later);
    s->ocsp_try_later = NULL;
}

/* Matched by srv_ocsp_route under ocsp_path (the patterns name the
 * default, for metrics); in the order of ROUTE_POST, ROUTE_GET. */
const struct srv_route srv_routes_ocsp[] = {
    {EVHTTP_REQ_POST, "/ocsp", ocsp_post, SRV_ROLE_ANON, false, true},
    {EVHTTP_REQ_GET, "/ocsp/{base64}", ocsp_get, SRV_ROLE_ANON, false, true},
    {0},
};
