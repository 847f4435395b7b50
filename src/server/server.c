/* SPDX-License-Identifier: Apache-2.0 */
/* The service: the event loop (libevent evhttp over bufferevent_openssl),
 * listeners and the connection cap, the worker pool, SIGTERM (stop
 * accepting, finish what is in flight, exit 0) and SIGHUP (reload [serve],
 * the registered CAs and the CRL without dropping connections), the
 * operational log and the access log. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/thread.h>

#include "server/internal.h"

/* The audit entry of a refused call, written by a worker. */
struct denied_job {
    struct srv_job j;
    char what[600];
    char why[200];
    uint64_t repeated; /* the caller's refusals not recorded before */
};

/* A caller's refused calls (srv_audit_denied). */
struct srv_denied {
    char actor[SRV_ACTOR_MAX]; /* "": a free place */
    char what[600];            /* its last refused call */
    int64_t recorded_ms;       /* its last entry; 0: none yet */
    int64_t seen_ms;           /* its last refusal */
    uint64_t unrecorded;       /* refusals since that entry */
};

void srv_log(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;

    n = snprintf(buf, sizeof(buf), "p11ca serve: ");
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (int)strlen(buf);
    buf[n++] = '\n';
    /* One write per line: workers log too. */
    if (write(STDERR_FILENO, buf, (size_t)n) < 0)
        return;
}

void srv_access(struct srv *s, const char *fmt, ...)
{
    char buf[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03ldZ ",
                          (long)(tv.tv_usec / 1000));
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
    va_end(ap);
    n = strlen(buf);
    buf[n++] = '\n';
    if (write(s->access_fd >= 0 ? s->access_fd : STDERR_FILENO, buf, n) < 0)
        return;
}

static int access_open(struct srv *s)
{
    int fd;

    if (!s->cfg.access_log) {
        if (s->access_fd >= 0)
            close(s->access_fd);
        s->access_fd = -1;
        return P11CA_OK;
    }
    fd = open(s->cfg.access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
              0640);
    if (fd < 0)
        return p11ca_err_set(P11CA_E_IO, "access_log %s: %s", s->cfg.access_log,
                             strerror(errno));
    if (s->access_fd >= 0)
        close(s->access_fd);
    s->access_fd = fd;
    return P11CA_OK;
}

/* ------------------------------------------------------------------ */
/* Audit of refused calls                                              */
/* ------------------------------------------------------------------ */

static void denied_run(struct srv_job *j, ca *wc)
{
    struct denied_job *d = (struct denied_job *)j;
    json_t *det = json_pack("{s:s}", "why", d->why);
    char *text = NULL;
    int rc;

    if (det && d->repeated
        && json_object_set_new(det, "repeated",
                               json_integer((json_int_t)d->repeated))
               != 0) {
        json_decref(det);
        det = NULL;
    }
    text = det ? json_dumps(det, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    rc = text ? reg_audit_add(ca_registry(wc), j->actor, "api-denied", d->what,
                              text)
              : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc != P11CA_OK)
        srv_job_set_error(j, rc);
    free(text);
    json_decref(det);
}

static void denied_done(struct srv_job *j)
{
    j->s->denied_jobs--;
    if (j->rc != P11CA_OK)
        srv_log("cannot audit a refused call: %s", j->msg);
    free(j);
}

/* Queue one api-denied entry; false when it could not be (logged). */
static bool denied_submit(struct srv *s, const char *actor, const char *what,
                          const char *why, uint64_t repeated)
{
    struct denied_job *d;

    if (s->denied_jobs >= SRV_MAX_DENIED_JOBS)
        return false;
    d = calloc(1, sizeof(*d));
    if (!d) {
        srv_log("cannot audit a refused call (%s by %s): out of memory", what,
                actor);
        return false;
    }
    d->j.kind = "audit";
    d->j.run = denied_run;
    d->j.done = denied_done;
    d->repeated = repeated;
    snprintf(d->j.actor, sizeof(d->j.actor), "%s", actor);
    snprintf(d->what, sizeof(d->what), "%s", what);
    snprintf(d->why, sizeof(d->why), "%s", why);
    if (srv_job_submit(s, &d->j) != P11CA_OK) {
        srv_log("cannot audit a refused call (%s by %s): %s", what, actor,
                p11ca_err_message());
        free(d);
        return false;
    }
    s->denied_jobs++;
    return true;
}

/* The count of @d's refusals that have no entry yet, as one. */
static void denied_flush_one(struct srv *s, struct srv_denied *d)
{
    if (d->actor[0] && d->unrecorded
        && !denied_submit(s, d->actor, d->what,
                          "refused again within audit_denied_interval_s",
                          d->unrecorded))
        srv_log("%llu refused calls of %s not audited",
                (unsigned long long)d->unrecorded, d->actor);
    memset(d, 0, sizeof(*d));
}

void srv_audit_denied_flush(struct srv *s)
{
    for (size_t i = 0; s->denied && i < SRV_DENIED_CALLERS; i++)
        denied_flush_one(s, &s->denied[i]);
}

/* @actor's place: its own, a free one, or the one refused longest ago
 * (its count recorded first).  NULL: out of memory. */
static struct srv_denied *denied_place(struct srv *s, const char *actor)
{
    struct srv_denied *oldest = NULL;

    if (!s->denied
        && !(s->denied = calloc(SRV_DENIED_CALLERS, sizeof(*s->denied))))
        return NULL;
    for (size_t i = 0; i < SRV_DENIED_CALLERS; i++) {
        struct srv_denied *d = &s->denied[i];

        if (strcmp(d->actor, actor) == 0)
            return d;
        if (!oldest || !d->actor[0]
            || (oldest->actor[0] && d->seen_ms < oldest->seen_ms))
            oldest = d;
    }
    denied_flush_one(s, oldest);
    snprintf(oldest->actor, sizeof(oldest->actor), "%s", actor);
    return oldest;
}

void srv_audit_denied(struct srv *s, const char *actor, const char *what,
                      const char *why)
{
    int64_t now = srv_now_ms();
    struct srv_denied *d = denied_place(s, actor);

    if (!d) {
        srv_log("cannot audit a refused call (%s by %s): out of memory", what,
                actor);
        return;
    }
    d->seen_ms = now;
    /* A caller that repeats a refused call in a loop must not fill the
     * audit trail, nor the workers' queue: one entry per interval. */
    if ((d->recorded_ms
         && now - d->recorded_ms
                < (int64_t)s->cfg.audit_denied_interval_s * 1000)
        || !denied_submit(s, actor, what, why, d->unrecorded)) {
        snprintf(d->what, sizeof(d->what), "%s", what);
        d->unrecorded++;
        return;
    }
    d->recorded_ms = now;
    d->unrecorded = 0;
}

/* ------------------------------------------------------------------ */
/* Listeners, shutdown, reload                                         */
/* ------------------------------------------------------------------ */

void srv_conns_changed(struct srv *s)
{
    bool full = s->n_conns >= s->cfg.max_connections;

    if (full == s->paused || s->draining)
        return;
    for (size_t i = 0; i < s->n_bound + s->n_plain_bound; i++) {
        struct evconnlistener *l = evhttp_bound_socket_get_listener(
            i < s->n_bound ? s->bound[i] : s->plain_bound[i - s->n_bound]);

        if (full)
            evconnlistener_disable(l);
        else
            evconnlistener_enable(l);
    }
    s->paused = full;
    if (full)
        srv_log("%zu connections (max_connections): new ones wait until one "
                "closes",
                s->n_conns);
}

void srv_drain_check(struct srv *s)
{
    if (s->draining && s->inflight == 0 && s->jobs == 0)
        event_base_loopexit(s->base, NULL);
}

static void drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;

    (void)fd;
    (void)what;
    srv_log("shutdown_timeout_ms reached with %zu requests and %zu jobs "
            "unfinished: exiting",
            s->inflight, s->jobs);
    s->timed_out = true;
    event_base_loopexit(s->base, NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct srv *s = arg;
    unsigned ms = s->cfg.shutdown_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    (void)what;
    if (s->draining)
        return;
    s->draining = true;
    srv_audit_denied_flush(s);
    for (size_t i = 0; i < s->n_bound; i++)
        evhttp_del_accept_socket(s->http, s->bound[i]);
    s->n_bound = 0;
    for (size_t i = 0; i < s->n_plain_bound; i++)
        evhttp_del_accept_socket(s->plain_http, s->plain_bound[i]);
    s->n_plain_bound = 0;
    srv_ocsp_stop(s);
    /* Registrations waiting for a first request: no request is served
     * now, so they are written with the CN (drained like any job). */
    srv_autoreg_flush(s);
    /* Said once the listeners are closed: true from the moment it is read. */
    srv_log("%s: no new connections; finishing %zu requests and %zu jobs",
            sig == SIGINT ? "SIGINT" : "SIGTERM", s->inflight, s->jobs);
    s->ev_deadline = evtimer_new(s->base, drain_deadline, s);
    if (s->ev_deadline)
        evtimer_add(s->ev_deadline, &tv);
    srv_drain_check(s);
}

/* evhttp's limits from the configuration. */
static void http_limits(struct srv *s)
{
    unsigned ms = s->cfg.idle_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    evhttp_set_max_headers_size(s->http, (ev_ssize_t)s->cfg.max_header_bytes);
    /* Bodies up to max_body_bytes get a problem+json 413 from the routes;
     * libevent answers larger ones itself (its HTML page) and closes. */
    evhttp_set_max_body_size(
        s->http, (ev_ssize_t)(s->cfg.max_body_bytes * SRV_HARD_BODY_FACTOR));
    evhttp_set_timeout_tv(s->http, &tv);
    if (!s->plain_http)
        return;
    evhttp_set_max_headers_size(s->plain_http,
                                (ev_ssize_t)s->cfg.max_header_bytes);
    evhttp_set_max_body_size(
        s->plain_http,
        (ev_ssize_t)(s->cfg.max_body_bytes * SRV_HARD_BODY_FACTOR));
    evhttp_set_timeout_tv(s->plain_http, &tv);
}

static int bind_one(struct evhttp *http, const struct srv_listen *l,
                    const char *key, struct evhttp_bound_socket **out)
{
    int one = 1;

    *out = evhttp_bind_socket_with_handle(http, l->host, (ev_uint16_t)l->port);
    if (!*out)
        return p11ca_err_set(P11CA_E_IO, "cannot %s on %s%s%s:%u: %s", key,
                             strchr(l->host, ':') ? "[" : "", l->host,
                             strchr(l->host, ':') ? "]" : "", l->port,
                             strerror(errno));
    /* No Nagle: a response leaves in several writes (bufferevent_openssl
     * makes a TLS record of each piece of evhttp's output: headers, then
     * the body), and the last one waited for the client's delayed ACK,
     * 40 ms on Linux (scripts/bench/serve).  The accepted connections
     * inherit it from the listening socket (Linux). */
    if (setsockopt(evhttp_bound_socket_get_fd(*out), IPPROTO_TCP, TCP_NODELAY,
                   &one, sizeof(one))
        != 0)
        srv_log("%s: cannot turn Nagle's algorithm off: %s", key,
                strerror(errno));
    return P11CA_OK;
}

/* ocsp_listen: plain HTTP, OCSP only (srv_dispatch_plain). */
static int plain_start(struct srv *s)
{
    int rc = P11CA_OK;

    if (s->cfg.n_ocsp_listen == 0)
        return P11CA_OK;
    s->plain_http = evhttp_new(s->base);
    if (!s->plain_http)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    evhttp_set_bevcb(s->plain_http, srv_plain_conn_new, s);
    evhttp_set_gencb(s->plain_http, srv_dispatch_plain, s);
    evhttp_set_allowed_methods(s->plain_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST
                                                  | EVHTTP_REQ_HEAD);
    for (size_t i = 0; rc == P11CA_OK && i < s->cfg.n_ocsp_listen; i++) {
        rc = bind_one(s->plain_http, &s->cfg.ocsp_listen[i],
                      "listen (ocsp_listen)", &s->plain_bound[i]);
        if (rc == P11CA_OK)
            s->n_plain_bound++;
    }
    return rc;
}

/* Everything SIGHUP replaces, built first, swapped in only when whole. */
static int reload_swap(struct srv *s, struct srv_config *cfg, ca **nc)
{
    struct srv_config old_cfg = s->cfg;
    ca *old_ca = s->ca;
    int rc;

    s->cfg = *cfg;
    s->ca = *nc;
    rc = srv_trust_reload(s);
    if (rc != P11CA_OK) {
        s->cfg = old_cfg;
        s->ca = old_ca;
        return rc;
    }
    srv_config_clear(&old_cfg);
    ca_close(old_ca);
    *nc = NULL;
    memset(cfg, 0, sizeof(*cfg));
    return P11CA_OK;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct srv *s = arg;
    struct srv_config cfg;
    unsigned workers = s->cfg.workers;
    struct srv_listen ocsp_listen[SRV_MAX_LISTEN];
    size_t n_ocsp_listen = s->cfg.n_ocsp_listen;
    ca *nc = NULL;
    int rc;

    (void)sig;
    (void)what;
    memcpy(ocsp_listen, s->cfg.ocsp_listen, sizeof(ocsp_listen));
    rc = srv_config_load(ca_dir(s->ca), s->listen_override, &cfg);
    if (rc == P11CA_OK
        && (rc = ca_open_shared_readonly(s->ca, &nc)) != P11CA_OK)
        srv_config_clear(&cfg);
    /* The profiles of the CA as it is now (nc read ca.cnf again). */
    if (rc == P11CA_OK
        && (rc = srv_config_profiles_check(&cfg, nc)) != P11CA_OK) {
        srv_config_clear(&cfg);
        ca_close(nc);
        nc = NULL;
    }
    if (rc == P11CA_OK && (rc = reload_swap(s, &cfg, &nc)) != P11CA_OK) {
        srv_config_clear(&cfg);
        ca_close(nc);
    }
    if (rc != P11CA_OK) {
        srv_log("SIGHUP: not reloaded (the old settings stay): %s",
                p11ca_err_message());
        return;
    }
    if (s->cfg.workers != workers)
        srv_log("SIGHUP: workers = %u takes effect at the next start",
                s->cfg.workers);
    s->cfg.workers = workers;
    if (s->cfg.n_ocsp_listen != n_ocsp_listen
        || memcmp(s->cfg.ocsp_listen, ocsp_listen, sizeof(ocsp_listen)) != 0)
        srv_log("SIGHUP: ocsp_listen takes effect at the next start");
    memcpy(s->cfg.ocsp_listen, ocsp_listen, sizeof(ocsp_listen));
    s->cfg.n_ocsp_listen = n_ocsp_listen;
    http_limits(s);
    if (srv_profile_buckets_set(&s->profile_buckets, &s->cfg, srv_now_ms())
        != P11CA_OK)
        srv_log("SIGHUP: the profiles' sign-up limits stay as they were: %s",
                p11ca_err_message());
    if (access_open(s) != P11CA_OK)
        srv_log("SIGHUP: %s", p11ca_err_message());
    if (srv_pool_reload(s) != P11CA_OK)
        srv_log("SIGHUP: workers keep their handles: %s", p11ca_err_message());
    if (srv_crl_load(s) != P11CA_OK)
        srv_log("SIGHUP: %s", p11ca_err_message());
    srv_log("SIGHUP: reloaded: %zu registered CAs, %zu operators", s->cas.n,
            s->cfg.n_ops);
}

static int http_start(struct srv *s)
{
    const struct srv_listen *l;
    int rc;

    s->http = evhttp_new(s->base);
    if (!s->http)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    evhttp_set_bevcb(s->http, srv_conn_new, s);
    evhttp_set_gencb(s->http, srv_dispatch, s);
    evhttp_set_allowed_methods(
        s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD
                     | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS
                     | EVHTTP_REQ_PATCH);
    for (size_t i = 0; i < s->cfg.n_listen; i++) {
        l = &s->cfg.listen[i];
        if (bind_one(s->http, l, "listen", &s->bound[i]) != P11CA_OK)
            return P11CA_E_IO;
        s->n_bound++;
    }
    rc = plain_start(s);
    http_limits(s);
    return rc;
}

static int signals_start(struct srv *s)
{
    signal(SIGPIPE, SIG_IGN);
    s->ev_term = evsignal_new(s->base, SIGTERM, on_term, s);
    s->ev_int = evsignal_new(s->base, SIGINT, on_term, s);
    s->ev_hup = evsignal_new(s->base, SIGHUP, on_hup, s);
    if (!s->ev_term || !s->ev_int || !s->ev_hup
        || evsignal_add(s->ev_term, NULL) || evsignal_add(s->ev_int, NULL)
        || evsignal_add(s->ev_hup, NULL))
        return p11ca_err_set(P11CA_E_INTERNAL, "cannot watch signals");
    return P11CA_OK;
}

/* Everything before the loop; the PIN is asked here, not at a request.
 * The service works on a handle of its own (SIGHUP replaces it): the
 * loop only reads (look-ups, the handshake check), so its registry is
 * opened read-only; the workers, which write, open their own. */
static int start(struct srv *s, ca *c)
{
    int rc = srv_config_load(ca_dir(c), s->listen_override, &s->cfg);

    if (rc == P11CA_OK)
        rc = srv_config_profiles_check(&s->cfg, c);
    if (rc == P11CA_OK)
        rc =
            srv_profile_buckets_set(&s->profile_buckets, &s->cfg, srv_now_ms());
    if (rc == P11CA_OK)
        rc = ca_load_key(c);
    /* A worker never waits for a second of the registry's sign-up limit:
     * a full second is 429 at once (every handle below inherits it). */
    if (rc == P11CA_OK)
        ca_set_wait(c, 0);
    if (rc == P11CA_OK)
        rc = ca_open_shared_readonly(c, &s->ca);
    if (rc == P11CA_OK)
        rc = srv_tls_init();
    if (rc == P11CA_OK)
        rc = access_open(s);
    if (rc == P11CA_OK)
        rc = srv_metrics_init(&s->m);
    if (rc == P11CA_OK && evthread_use_pthreads() != 0)
        rc = p11ca_err_set(P11CA_E_INTERNAL, "libevent has no thread support");
    if (rc == P11CA_OK && !(s->base = event_base_new()))
        rc = p11ca_err_set(P11CA_E_NOMEM, "cannot make an event base");
    if (rc == P11CA_OK)
        rc = srv_trust_reload(s);
    if (rc == P11CA_OK)
        rc = srv_crl_load(s);
    if (rc == P11CA_OK)
        rc = srv_ocsp_start(s);
    if (rc == P11CA_OK)
        rc = srv_pool_start(s, s->cfg.workers);
    if (rc == P11CA_OK)
        rc = http_start(s);
    if (rc == P11CA_OK)
        rc = signals_start(s);
    if (rc == P11CA_OK)
        rc = srv_nodes_start(s);
    return rc;
}

static void stop(struct srv *s)
{
    srv_ocsp_stop(s);
    if (s->base)
        srv_pool_stop(s);
    if (s->http)
        evhttp_free(s->http); /* closes the idle connections */
    if (s->plain_http)
        evhttp_free(s->plain_http);
    srv_plain_stop(s);
    srv_linger_stop(s);
    srv_ocsp_free(s);
    srv_nodes_stop(s);
    if (s->ev_term)
        event_free(s->ev_term);
    if (s->ev_int)
        event_free(s->ev_int);
    if (s->ev_hup)
        event_free(s->ev_hup);
    if (s->ev_deadline)
        event_free(s->ev_deadline);
    if (s->ev_crl_retry) {
        /* A retry that never came (SIGTERM before it). */
        if (evtimer_pending(s->ev_crl_retry, NULL))
            srv_log("the CRL does not list every revocation: p11ca crl "
                    "makes one");
        event_free(s->ev_crl_retry);
    }
    SSL_CTX_free(s->ssl_ctx);
    srv_cas_clear(&s->cas);
    free(s->denied);
    free(s->crl_der);
    srv_metrics_clear(&s->m);
    if (s->base)
        event_base_free(s->base);
    if (s->access_fd >= 0)
        close(s->access_fd);
    srv_config_clear(&s->cfg);
    ca_close(s->ca);
    s->ca = NULL;
}

int srv_run(ca *c, const char *listen)
{
    struct srv srv_ = {0}, *s = &srv_;
    const struct srv_listen *l;
    char actor[300];
    int rc;

    s->listen_override = listen;
    s->access_fd = -1;
    s->started_ms = srv_now_ms();
    pthread_mutex_init(&s->profile_buckets.mu, NULL);
    rc = start(s, c);
    if (rc == P11CA_OK) {
        snprintf(actor, sizeof(actor), "api:p11ca-serve %s", ca_actor());
        if (!s->crl_der)
            srv_crl_regenerate(s, actor);
        for (size_t i = 0; i < s->cfg.n_listen; i++) {
            l = &s->cfg.listen[i];
            srv_log("listening on https://%s%s%s:%u/ (%u workers, %zu "
                    "registered CAs)",
                    strchr(l->host, ':') ? "[" : "", l->host,
                    strchr(l->host, ':') ? "]" : "", l->port, s->cfg.workers,
                    s->cas.n);
        }
        for (size_t i = 0; i < s->cfg.n_ocsp_listen; i++) {
            l = &s->cfg.ocsp_listen[i];
            srv_log("OCSP on http://%s%s%s:%u%s",
                    strchr(l->host, ':') ? "[" : "", l->host,
                    strchr(l->host, ':') ? "]" : "", l->port, s->cfg.ocsp_path);
        }
        event_base_dispatch(s->base);
        srv_log("stopped: %zu requests and %zu jobs left unfinished",
                s->inflight, s->jobs);
        if (s->timed_out)
            rc = p11ca_err_set(
                P11CA_E_INTERNAL,
                "shutdown_timeout_ms passed with %zu requests and %zu jobs unfinished",
                s->inflight, s->jobs);
    }
    /* Keep the message of a failed start: stopping may set another. */
    if (rc != P11CA_OK) {
        char msg[1024];

        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        stop(s);
        p11ca_err_set(rc, "%s", msg);
    } else {
        stop(s);
    }
    srv_profile_buckets_free(&s->profile_buckets);
    pthread_mutex_destroy(&s->profile_buckets.mu);
    libevent_global_shutdown();
    return rc;
}
