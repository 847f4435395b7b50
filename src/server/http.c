/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP: connections (their TLS bufferevent, deadline and identity), the
 * dispatcher and route tables, who may call what, request bodies and
 * queries, replies and RFC 9457 problem details, the access log. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>

#include <openssl/crypto.h>

#include "server/internal.h"

static const struct srv_route *const route_tables[] = {
    srv_routes_health, srv_routes_certs,  srv_routes_cas,
    srv_routes_crl,    srv_routes_enroll, srv_routes_ocsp,
};
#define N_TABLES (sizeof(route_tables) / sizeof(route_tables[0]))

static const struct {
    enum evhttp_cmd_type m;
    const char *name;
} methods[] = {
    {EVHTTP_REQ_GET, "GET"},       {EVHTTP_REQ_POST, "POST"},
    {EVHTTP_REQ_HEAD, "HEAD"},     {EVHTTP_REQ_PUT, "PUT"},
    {EVHTTP_REQ_DELETE, "DELETE"}, {EVHTTP_REQ_OPTIONS, "OPTIONS"},
    {EVHTTP_REQ_TRACE, "TRACE"},   {EVHTTP_REQ_CONNECT, "CONNECT"},
    {EVHTTP_REQ_PATCH, "PATCH"},
};

const char *srv_method_name(enum evhttp_cmd_type m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "?";
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */
/* ------------------------------------------------------------------ */

size_t srv_route_count(void)
{
    size_t n = 0;

    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct srv_route *r = route_tables[t]; r->pattern; r++)
            n++;
    return n;
}

const struct srv_route *srv_route_at(size_t i)
{
    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct srv_route *r = route_tables[t]; r->pattern; r++)
            if (i-- == 0)
                return r;
    return NULL;
}

/* Does @path (split in @segs) match @pattern?  Parameters to @params. */
static bool pattern_match(const char *pattern, char **segs, size_t nseg,
                          const char **params)
{
    size_t i = 0, np = 0;
    const char *p = pattern;

    while (*p == '/' && i < nseg) {
        const char *end = strchr(p + 1, '/');
        size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);

        if (p[1] == '{') {
            if (np == SRV_MAX_PARAMS || !*segs[i])
                return false;
            params[np++] = segs[i];
        } else if (strlen(segs[i]) != len || memcmp(segs[i], p + 1, len) != 0) {
            return false;
        }
        i++;
        p += len + 1;
    }
    return !*p && i == nseg;
}

int srv_route_match(enum evhttp_cmd_type method, const char *path, char *buf,
                    size_t len, const char **params, char *allow,
                    size_t allow_len)
{
    char *segs[16];
    size_t nseg = 0, idx = 0;
    bool other = false;
    char *p;

    allow[0] = '\0';
    if (path[0] != '/' || strlen(path) >= len)
        return -1;
    strcpy(buf, path);
    /* "/v1/certs" and "/v1/certs/" are the same resource. */
    if (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
        buf[strlen(buf) - 1] = '\0';
    for (p = buf; p && *p == '/' && nseg < 16; nseg++) {
        *p++ = '\0';
        segs[nseg] = p;
        p = strchr(p, '/');
    }
    if (p)
        return -1;
    if (nseg == 1 && !*segs[0])
        nseg = 0;
    for (size_t t = 0; t < N_TABLES; t++) {
        for (const struct srv_route *r = route_tables[t]; r->pattern;
             r++, idx++) {
            const char *tmp[SRV_MAX_PARAMS] = {NULL};

            if (r->by_prefix || !pattern_match(r->pattern, segs, nseg, tmp))
                continue;
            if (r->method == method) {
                memcpy(params, tmp, sizeof(tmp));
                return (int)idx;
            }
            other = true;
            snprintf(allow + strlen(allow), allow_len - strlen(allow), "%s%s",
                     *allow ? ", " : "", srv_method_name(r->method));
        }
    }
    return other ? -2 : -1;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

struct srv_conn *srv_conn_ref(struct srv_conn *c)
{
    c->refs++;
    return c;
}

void srv_conn_unref(struct srv_conn *c)
{
    if (!c || --c->refs > 0)
        return;
    free(c->subject);
    free(c);
}

static void deadline_arm(struct srv_conn *c, unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    if (!c->closed && c->deadline)
        evtimer_add(c->deadline, &tv);
}

/* The client took too long to finish a request (or its handshake): shut
 * the socket down, and libevent frees the connection when it reads EOF. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    int sock;

    (void)fd;
    (void)what;
    if (c->closed || !c->bev)
        return;
    c->s->m.timeouts++;
    srv_access(c->s, "%s \"-\" timeout serial=%s", c->peer,
               c->serial[0] ? c->serial_shown : "-");
    sock = bufferevent_getfd(c->bev);
    if (sock >= 0)
        shutdown(sock, SHUT_RDWR);
}

void srv_conn_linger(struct srv_conn *c, int fd)
{
    if (c->lingering || fd < 0)
        return;
    /* libevent closes its descriptor; this one keeps the socket open. */
    c->linger_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    c->lingering = c->linger_fd >= 0;
}

/* The end of @c's lingering close (@c is out of s->lingering). */
static void linger_close(struct srv_conn *c)
{
    struct srv *s = c->s;

    event_free(c->linger_ev);
    c->linger_ev = NULL;
    close(c->linger_fd);
    c->lingering = false;
    s->n_conns--;
    srv_conns_changed(s);
    srv_conn_unref(c);
}

static void linger_end(struct srv_conn *c)
{
    struct srv_conn **pp;

    for (pp = &c->s->lingering; *pp && *pp != c; pp = &(*pp)->linger_next)
        ;
    if (*pp)
        *pp = c->linger_next;
    linger_close(c);
}

/* The client's input, dropped until it closes or a bound is reached. */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    char buf[4096];
    ssize_t n;

    if (what & EV_READ) {
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            c->linger_bytes += (size_t)n;
        if ((n > 0 && c->linger_bytes < SRV_LINGER_BYTES)
            || (n < 0 && (errno == EAGAIN || errno == EINTR)))
            return;
    }
    linger_end(c);
}

bool srv_conn_linger_start(struct srv_conn *c)
{
    struct srv *s = c->s;
    struct timeval tv = {SRV_LINGER_MS / 1000, (SRV_LINGER_MS % 1000) * 1000};

    if (!c->lingering)
        return false;
    c->linger_ev =
        event_new(s->base, c->linger_fd, EV_READ | EV_PERSIST, linger_cb, c);
    /* The alert is written: the client reads it, then our FIN. */
    if (!c->linger_ev || shutdown(c->linger_fd, SHUT_WR) != 0
        || event_add(c->linger_ev, &tv) != 0) {
        if (c->linger_ev)
            event_free(c->linger_ev);
        c->linger_ev = NULL;
        close(c->linger_fd);
        c->lingering = false;
        return false;
    }
    c->linger_next = s->lingering;
    s->lingering = c;
    return true;
}

void srv_linger_stop(struct srv *s)
{
    struct srv_conn *c;

    while ((c = s->lingering) != NULL) {
        s->lingering = c->linger_next;
        linger_close(c);
    }
}

struct bufferevent *srv_conn_new(struct event_base *base, void *arg)
{
    struct srv *s = arg;
    struct srv_conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev;
    SSL *ssl = c ? SSL_new(s->ssl_ctx) : NULL;

    /* NULL would make libevent serve plain HTTP on this connection; the
     * dispatcher refuses requests that arrive without TLS. */
    if (!ssl) {
        free(c);
        return NULL;
    }
    c->refs = 1;
    c->s = s;
    snprintf(c->peer, sizeof(c->peer), "-");
    SSL_set_ex_data(ssl, srv_conn_idx, c); /* the SSL owns @c now */
    s->n_conns++;
    c->deadline = evtimer_new(base, deadline_cb, c);
    bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    c->bev = bev;
    deadline_arm(c, s->cfg.request_timeout_ms);
    srv_conns_changed(s);
    return bev;
}

static struct srv_conn *conn_of(struct evhttp_request *er)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    struct bufferevent *bev =
        evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

    return ssl ? SSL_get_ex_data(ssl, srv_conn_idx) : NULL;
}

void srv_conn_registered(struct srv_conn *c, int rc, const char *msg)
{
    struct srv_req *r = c->parked;

    c->reg_pending = false;
    c->reg_rc = rc;
    if (rc != P11CA_OK)
        snprintf(c->reg_msg, sizeof(c->reg_msg), "%s", msg);
    c->parked = NULL;
    if (r)
        srv_dispatch_req(r);
}

/* ------------------------------------------------------------------ */
/* Who is calling                                                      */
/* ------------------------------------------------------------------ */

static enum srv_role conn_role(struct srv *s, const struct srv_conn *c)
{
    enum srv_role best = SRV_ROLE_DEVICE;

    if (!c->has_cert)
        return SRV_ROLE_ANON;
    for (size_t i = 0; i < s->cfg.n_ops; i++) {
        const struct srv_operator *op = &s->cfg.ops[i];
        bool hit = op->by_sha256
                       ? memcmp(op->sha256, c->sha256, 32) == 0
                       /* By name only for certificates of this CA. */
                       : c->ca_id == ca_registry_id(s->ca) && c->subject
                             && strcmp(op->subject, c->subject) == 0;

        if (hit && op->role > best)
            best = op->role;
    }
    return best;
}

bool srv_req_require(struct srv_req *r, enum srv_role min, const char *why)
{
    const struct srv_route *rt = srv_route_at((size_t)r->route);
    char what[600];

    if (r->role >= min)
        return true;
    if (r->role == SRV_ROLE_ANON) {
        r->s->m.refusals[SRV_REFUSE_UNAUTHENTICATED]++;
        srv_problem(r, 401, "unauthenticated", "%s %s needs %s",
                    srv_method_name(rt->method), rt->pattern, why);
        return false;
    }
    r->s->m.refusals[SRV_REFUSE_FORBIDDEN]++;
    snprintf(what, sizeof(what), "%s %s", srv_method_name(rt->method), r->path);
    srv_audit_denied(r->s, r->actor, what, "role too low");
    srv_problem(r, 403, "forbidden", "%s needs %s (the caller is %s)", what,
                why, srv_role_name(r->role));
    return false;
}

bool srv_req_authorize(struct srv_req *r, bool self_ok)
{
    const struct srv_route *rt = srv_route_at((size_t)r->route);
    char what[600];

    if (rt->min_role == SRV_ROLE_ANON || r->role >= rt->min_role
        || (rt->self && self_ok && r->role == SRV_ROLE_DEVICE))
        return true;
    if (r->role == SRV_ROLE_ANON) {
        r->s->m.refusals[SRV_REFUSE_UNAUTHENTICATED]++;
        srv_problem(r, 401, "unauthenticated",
                    "%s %s needs a client certificate",
                    srv_method_name(rt->method), rt->pattern);
        return false;
    }
    r->s->m.refusals[SRV_REFUSE_FORBIDDEN]++;
    snprintf(what, sizeof(what), "%s %s", srv_method_name(rt->method), r->path);
    srv_audit_denied(r->s, r->actor, what,
                     rt->self ? "not the caller's own certificate, and the "
                                "caller has no operator role"
                              : "role too low");
    srv_problem(r, 403, "forbidden",
                "%s needs the %s role%s (the caller is %s)", what,
                srv_role_name(rt->min_role),
                rt->self ? " or the certificate's own client" : "",
                srv_role_name(r->role));
    return false;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The response is written (or the connection is gone: conn_ex_free). */
static void on_complete(struct evhttp_request *er, void *arg)
{
    struct srv_conn *c = arg;

    (void)er;
    if (c->inflight) {
        c->inflight--;
        c->s->inflight--;
    }
    srv_drain_check(c->s);
}

/* The client's address, for the access log (a client without a
 * certificate never reached verify_cb, which notes it otherwise). */
static void peer_of(struct evhttp_request *er, struct srv_conn *c)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    char *addr = NULL;
    ev_uint16_t port = 0;

    if (!evcon)
        return;
    evhttp_connection_get_peer(evcon, &addr, &port);
    if (addr)
        snprintf(c->peer, sizeof(c->peer),
                 strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, (unsigned)port);
}

static struct srv_req *req_new(struct srv *s, struct evhttp_request *er,
                               struct srv_conn *c)
{
    struct srv_req *r = calloc(1, sizeof(*r));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(er);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    if (!r)
        return NULL;
    r->s = s;
    r->er = er;
    r->conn = srv_conn_ref(c);
    r->route = -1;
    r->start_ns = now_ns();
    r->path_too_long = (size_t)snprintf(r->path, sizeof(r->path), "%s",
                                        path && *path ? path : "/")
                       >= sizeof(r->path);
    TAILQ_INIT(&r->query);
    if (strcmp(c->peer, "-") == 0)
        peer_of(er, c);
    c->inflight++;
    s->inflight++;
    evhttp_request_set_on_complete_cb(er, on_complete, c);
    if (c->deadline)
        evtimer_del(c->deadline);
    return r;
}

static void req_free(struct srv_req *r)
{
    if (r->query_parsed)
        evhttp_clear_headers(&r->query);
    srv_conn_unref(r->conn);
    free(r);
}

const char *srv_req_param(struct srv_req *r, size_t i)
{
    return i < SRV_MAX_PARAMS ? r->params[i] : NULL;
}

struct evkeyvalq *srv_req_query(struct srv_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->er);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;

    if (!r->query_parsed) {
        r->query_parsed = true;
        if (q && evhttp_parse_query_str(q, &r->query) != 0)
            evhttp_clear_headers(&r->query);
    }
    return &r->query;
}

unsigned char *srv_req_body(struct srv_req *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->er);
    size_t n = in ? evbuffer_get_length(in) : 0;
    unsigned char *buf;

    *len = 0;
    if (n > r->s->cfg.max_body_bytes) {
        srv_problem(r, 413, "body-too-large",
                    "the request body has %zu bytes; at most %zu are read", n,
                    r->s->cfg.max_body_bytes);
        return NULL;
    }
    buf = malloc(n + 1);
    if (!buf) {
        srv_problem(r, 503, "busy", "out of memory");
        return NULL;
    }
    if (n && evbuffer_copyout(in, buf, n) != (ev_ssize_t)n) {
        free(buf);
        srv_problem(r, 400, "bad-request", "cannot read the request body");
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

json_t *srv_json_parse(const char *buf, size_t len, bool empty_ok, char *detail,
                       size_t detail_len)
{
    json_error_t err;
    json_t *j;

    detail[0] = '\0';
    if (len == 0 && empty_ok)
        return json_object();
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        snprintf(detail, detail_len,
                 "the body is not JSON: %s (line %d, column %d)", err.text,
                 err.line, err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(detail, detail_len, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

json_t *srv_req_json(struct srv_req *r, bool empty_ok)
{
    char detail[SRV_MSG_MAX];
    unsigned char *buf;
    size_t len = 0;
    json_t *j;

    buf = srv_req_body(r, &len);
    if (!buf)
        return NULL;
    j = srv_json_parse((const char *)buf, len, empty_ok, detail,
                       sizeof(detail));
    free(buf);
    if (!j) {
        /* Out of memory for an empty object is no client's fault. */
        if (!detail[0])
            srv_problem(r, 503, "busy", "out of memory");
        else
            srv_problem(r, 400, "malformed-json", "%s", detail);
    }
    return j;
}

const char *srv_json_unknown(json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(body, key, v)
    {
        size_t i;

        (void)v;
        for (i = 0; allowed[i] && strcmp(allowed[i], key) != 0; i++)
            ;
        if (!allowed[i])
            return key;
    }
    return NULL;
}

bool srv_json_only(struct srv_req *r, json_t *body, const char *const *allowed)
{
    const char *key = srv_json_unknown(body, allowed);

    if (key) {
        srv_problem(r, 400, "bad-request", "unknown member \"%s\"", key);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

const char *srv_status_title(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Client Error" : "Internal Server Error";
    }
}

void srv_set_header(struct srv_req *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->er), name, value);
}

/* Send @body (may be NULL), log, count, free @r. */
static void reply(struct srv_req *r, int status, const char *type,
                  struct evbuffer *body)
{
    struct srv *s = r->s;
    struct srv_conn *c = r->conn;
    double secs = (double)(now_ns() - r->start_ns) / 1e9;

    if (type)
        srv_set_header(r, "Content-Type", type);
    /* Nothing is cached unless the handler says otherwise (OCSP). */
    if (!evhttp_find_header(evhttp_request_get_output_headers(r->er),
                            "Cache-Control"))
        srv_set_header(r, "Cache-Control", "no-store");
    if (s->draining || c->reg_rc != P11CA_OK || c->refused)
        srv_set_header(r, "Connection", "close");
    srv_metrics_request(&s->m, r->route, status, secs);
    srv_access(s, "%s \"%s %s\" %d serial=%s role=%s %.3fms", c->peer,
               srv_method_name(evhttp_request_get_command(r->er)), r->path,
               status, c->serial[0] ? c->serial_shown : "-",
               srv_role_name(r->role), secs * 1000);
    evhttp_send_reply(r->er, status, srv_status_title(status), body);
    deadline_arm(c, s->cfg.idle_timeout_ms);
    req_free(r);
}

void srv_reply_bytes(struct srv_req *r, int status, const char *type,
                     const void *data, size_t len)
{
    struct evbuffer *b = evbuffer_new();

    if (b && len)
        evbuffer_add(b, data, len);
    reply(r, status, type, b);
    evbuffer_free(b);
}

/* @secret: the text and the string members of @body are wiped before
 * they are freed (what libevent copied to send is out of reach). */
static void reply_json(struct srv_req *r, int status, json_t *body, bool secret)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    struct evbuffer *b = evbuffer_new();
    const char *k;
    json_t *v;
    bool ok;

    if (secret && json_is_object(body))
        json_object_foreach(body, k, v) if (json_is_string(v)) OPENSSL_cleanse(
            (char *)json_string_value(v), json_string_length(v));
    json_decref(body);
    ok = text && b && evbuffer_add(b, text, strlen(text)) == 0
         && evbuffer_add(b, "\n", 1) == 0;
    if (text && secret)
        OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (!ok) {
        evbuffer_free(b);
        srv_problem(r, 503, "busy", "out of memory");
        return;
    }
    reply(r, status, "application/json", b);
    evbuffer_free(b);
}

void srv_reply_json(struct srv_req *r, int status, json_t *body)
{
    reply_json(r, status, body, false);
}

void srv_reply_json_secret(struct srv_req *r, int status, json_t *body)
{
    reply_json(r, status, body, true);
}

json_t *srv_problem_json(int status, const char *code, const char *detail)
{
    char type[96];

    snprintf(type, sizeof(type), "urn:p11ca:problem:%s", code);
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title",
                     srv_status_title(status), "status", status, "detail",
                     detail, "code", code);
}

void srv_problem(struct srv_req *r, int status, const char *code,
                 const char *fmt, ...)
{
    struct evbuffer *b = evbuffer_new();
    char detail[SRV_MSG_MAX + 256];
    json_t *j;
    char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    j = srv_problem_json(status, code, detail);
    text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (b && text) {
        evbuffer_add(b, text, strlen(text));
        evbuffer_add(b, "\n", 1);
    }
    free(text);
    reply(r, status, "application/problem+json", b);
    evbuffer_free(b);
}

void srv_problem_rc(struct srv_req *r, int rc, const char *msg)
{
    switch (rc) {
    case P11CA_E_NOTFOUND:
        srv_problem(r, 404, "not-found", "%s", msg);
        break;
    case P11CA_E_EXISTS:
        srv_problem(r, 409, "conflict", "%s", msg);
        break;
    case P11CA_E_STATE:
        srv_problem(r, 409, "lifecycle", "%s", msg);
        break;
    case P11CA_E_INPUT:
        srv_problem(r, 400, "bad-request", "%s", msg);
        break;
    case P11CA_E_POLICY:
        srv_problem(r, 400, "policy", "%s", msg);
        break;
    case P11CA_E_RATE:
        /* The registry's limits count one-second windows. */
        srv_set_header(r, "Retry-After", "1");
        srv_problem(r, 429, "rate-limited", "%s", msg);
        break;
    case P11CA_E_UNAVAILABLE:
        /* The database is down: each handle reconnects on its next use. */
        srv_set_header(r, "Retry-After", SRV_RETRY_UNAVAILABLE_S);
        srv_problem(r, 503, "registry-unavailable", "%s", msg);
        break;
    case P11CA_E_REGISTRY:
        srv_problem(r, 503, "registry-unavailable", "%s", msg);
        break;
    case P11CA_E_TOKEN:
    case P11CA_E_PIN:
    case P11CA_E_CAKEY:
        srv_problem(r, 503, "token-unavailable", "%s", msg);
        break;
    default:
        srv_problem(r, 500, "internal", "%s", msg);
        break;
    }
}

void srv_problem_job(struct srv_req *r, const struct srv_job *j)
{
    if (j->cancelled)
        srv_problem(r, 503, "shutting-down", "the service is shutting down");
    else
        srv_problem_rc(r, j->rc, j->msg);
}

bool srv_submit_or_answer(struct srv_req *r, struct srv_job *j)
{
    if (srv_job_submit(r->s, j) == P11CA_OK)
        return true;
    srv_set_header(r, "Retry-After", "1");
    srv_problem(r, 503, "busy", "%s", p11ca_err_message());
    return false;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

/* A connection refused after its handshake (an auto-registration that
 * did not admit it): each request gets why, then the connection closes. */
static void conn_refused(struct srv_req *r, const struct srv_conn *c)
{
    char retry[16];

    switch (c->refused_why) {
    case SRV_REFUSE_RATE:
        snprintf(retry, sizeof(retry), "%u", c->refused_retry_s);
        srv_set_header(r, "Retry-After", retry);
        srv_problem(r, 429, "rate-limited",
                    "this certificate is not registered: %s", c->refused_msg);
        break;
    case SRV_REFUSE_REGISTRY:
        srv_set_header(r, "Retry-After", SRV_RETRY_UNAVAILABLE_S);
        srv_problem(r, 503, "registry-unavailable",
                    "this certificate is not registered: %s", c->refused_msg);
        break;
    case SRV_REFUSE_NOT_ACTIVATED:
        srv_problem(r, 403, "not-activated",
                    "this certificate is not activated: %s", c->refused_msg);
        break;
    default:
        srv_problem(r, 403, "registration-refused",
                    "this certificate is not admitted: %s", c->refused_msg);
        break;
    }
}

void srv_dispatch_req(struct srv_req *r)
{
    struct srv *s = r->s;
    struct srv_conn *c = r->conn;
    char buf[sizeof(r->path)], allow[128];
    int route;

    if (s->draining) {
        srv_problem(r, 503, "shutting-down", "the service is shutting down");
        return;
    }
    /* OCSP: anyone may ask (relying parties have no client certificate),
     * on either listener. */
    route = srv_ocsp_route(r);
    if (route == -2)
        return; /* answered (405): @r is gone */
    if (route >= 0) {
        r->route = route;
        srv_route_at((size_t)route)->fn(r);
        return;
    }
    if (c->plain) {
        /* Nothing but OCSP without TLS. */
        srv_problem(r, 404, "not-found",
                    "no resource %s here (this listener serves OCSP only)",
                    r->path);
        return;
    }
    if (c->reg_pending) {
        c->parked = r; /* srv_conn_registered resumes it */
        return;
    }
    if (c->refused) {
        conn_refused(r, c);
        return;
    }
    if (c->reg_rc == P11CA_E_RATE) {
        /* The registry's sign-up limit counts one-second windows. */
        srv_set_header(r, "Retry-After", "1");
        srv_problem(r, 429, "rate-limited",
                    "this certificate could not be registered: %s", c->reg_msg);
        return;
    }
    if (c->reg_rc == P11CA_E_EXISTS) {
        /* The registry's rule: one activated certificate per client ID. */
        srv_problem(r, 409, "conflict",
                    "this certificate could not be registered: %s", c->reg_msg);
        return;
    }
    if (c->reg_rc == P11CA_E_UNAVAILABLE) {
        srv_set_header(r, "Retry-After", SRV_RETRY_UNAVAILABLE_S);
        srv_problem(r, 503, "registry-unavailable",
                    "this certificate could not be registered: %s", c->reg_msg);
        return;
    }
    if (c->reg_rc != P11CA_OK) {
        srv_problem(r, 403, "registration-refused",
                    "this certificate could not be registered: %s", c->reg_msg);
        return;
    }
    r->role = conn_role(s, c);
    if (c->has_cert)
        snprintf(r->actor, sizeof(r->actor), "api:%s serial=%s",
                 c->subject ? c->subject : "", c->serial_shown);
    else
        snprintf(r->actor, sizeof(r->actor), "api:anonymous");
    r->route = srv_route_match(evhttp_request_get_command(r->er), r->path, buf,
                               sizeof(buf), r->params, allow, sizeof(allow));
    if (r->route == -2) {
        r->route = -1;
        srv_set_header(r, "Allow", allow);
        srv_problem(r, 405, "method-not-allowed", "%s takes %s", r->path,
                    allow);
        return;
    }
    if (r->route < 0) {
        srv_problem(r, 404, "not-found", "no resource %s", r->path);
        return;
    }
    /* The parameters point into @buf: keep them in the request. */
    memcpy(r->path_params, buf, sizeof(buf));
    for (size_t i = 0; i < SRV_MAX_PARAMS; i++)
        if (r->params[i])
            r->params[i] = r->path_params + (r->params[i] - buf);
    srv_route_at((size_t)r->route)->fn(r);
}

/* ------------------------------------------------------------------ */
/* Plain HTTP (ocsp_listen)                                            */
/* ------------------------------------------------------------------ */

/* Whether @r's path was read whole; else 414 is answered (on either
 * listener: never a route, nor the responder, matched on its start). */
static bool path_fits(struct srv_req *r)
{
    if (!r->path_too_long)
        return true;
    srv_problem(r, 414, "uri-too-long",
                "the request path is longer than %d bytes",
                SRV_MAX_PATH_BYTES - 1);
    return false;
}

/* The connections of the plain listeners by their bufferevent (libevent
 * gives a plain connection nothing to hang our state on). */
static size_t plain_bucket(const struct bufferevent *bev)
{
    uintptr_t h = (uintptr_t)bev;

    return (size_t)((h >> 4) ^ (h >> 12)) % SRV_PLAIN_CONN_BUCKETS;
}

/* The connection is going: as conn_ex_free for TLS. */
static void plain_gone(struct srv_conn *c, struct bufferevent *bev)
{
    struct srv *s = c->s;
    struct srv_conn **pp;

    for (pp = &s->plain[plain_bucket(bev)]; *pp; pp = &(*pp)->plain_next)
        if (*pp == c) {
            *pp = c->plain_next;
            break;
        }
    c->closed = true;
    c->bev = NULL;
    c->evcon = NULL;
    s->inflight -= c->inflight;
    c->inflight = 0;
    if (c->deadline) {
        event_free(c->deadline);
        c->deadline = NULL;
    }
    s->n_conns--;
    srv_conns_changed(s);
    srv_conn_unref(c);
    srv_drain_check(s);
}

/* libevent's close callback (called once, also from evhttp_free). */
static void plain_closed(struct evhttp_connection *evcon, void *arg)
{
    struct srv_conn *c = arg;

    (void)evcon;
    plain_gone(c, c->plain_bev);
}

/* Right after the accept (evhttp made the connection around our
 * bufferevent, whose callbacks' argument is that connection): watch its
 * close.  Were it closed already (evhttp frees it on an error), the
 * callbacks are gone; our reference kept the bufferevent until now. */
static void plain_adopt(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    struct bufferevent *bev = c->plain_bev;
    void *evcon = NULL;

    (void)fd;
    (void)what;
    event_free(c->adopt);
    c->adopt = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
    if (evcon) {
        c->evcon = evcon;
        evhttp_connection_set_closecb(c->evcon, plain_closed, c);
    } else {
        plain_gone(c, bev);
    }
    bufferevent_decref(bev);
}

/* evhttp_set_bevcb of ocsp_listen: the connection counts against
 * max_connections from its accept, and has request_timeout_ms for its
 * first request, as a TLS one (srv_conn_new). */
struct bufferevent *srv_plain_conn_new(struct event_base *base, void *arg)
{
    struct srv *s = arg;
    struct srv_conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev =
        c ? bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
    size_t b;

    if (c)
        c->adopt = event_new(base, -1, 0, plain_adopt, c);
    if (c)
        c->deadline = evtimer_new(base, deadline_cb, c);
    if (!bev || !c->adopt || !c->deadline) {
        if (c && c->adopt)
            event_free(c->adopt);
        if (c && c->deadline)
            event_free(c->deadline);
        if (bev)
            bufferevent_free(bev);
        free(c);
        return NULL; /* evhttp makes a bufferevent of its own */
    }
    c->refs = 1; /* plain_gone's */
    c->s = s;
    c->plain = true;
    c->bev = bev;
    c->plain_bev = bev;
    snprintf(c->peer, sizeof(c->peer), "-");
    b = plain_bucket(bev);
    c->plain_next = s->plain[b];
    s->plain[b] = c;
    bufferevent_incref(bev);
    event_active(c->adopt, EV_TIMEOUT, 1);
    s->n_conns++;
    deadline_arm(c, s->cfg.request_timeout_ms);
    srv_conns_changed(s);
    return bev;
}

static struct srv_conn *plain_conn(struct srv *s, struct evhttp_request *er)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    struct bufferevent *bev =
        evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct srv_conn *c;

    if (!bev)
        return NULL;
    for (c = s->plain[plain_bucket(bev)]; c; c = c->plain_next)
        if (c->plain_bev == bev)
            return c;
    return NULL;
}

void srv_plain_stop(struct srv *s)
{
    /* The connections evhttp_free closed before plain_adopt ran. */
    for (size_t b = 0; b < SRV_PLAIN_CONN_BUCKETS; b++)
        while (s->plain[b]) {
            struct srv_conn *c = s->plain[b];
            struct bufferevent *bev = c->plain_bev;

            s->plain[b] = c->plain_next; /* plain_gone finds it no more */
            if (c->adopt) {
                event_free(c->adopt);
                c->adopt = NULL;
                plain_gone(c, bev);
                bufferevent_decref(bev);
            } else {
                plain_gone(c, bev);
            }
        }
}

void srv_dispatch_plain(struct evhttp_request *er, void *arg)
{
    struct srv *s = arg;
    struct srv_conn *c = plain_conn(s, er);
    struct srv_req *r = c ? req_new(s, er, c) : NULL;

    if (!r) {
        evhttp_send_error(er, 503, "Service Unavailable");
        return;
    }
    if (!path_fits(r))
        return;
    srv_dispatch_req(r);
}

/* How many times @key is in @q (@case_ins: a header), the first in *@v. */
static int kv_count(const struct evkeyvalq *q, const char *key, bool case_ins,
                    const char **v)
{
    const struct evkeyval *kv;
    int n = 0;

    *v = NULL;
    TAILQ_FOREACH(kv, q, next)
    {
        if (case_ins ? strcasecmp(kv->key, key) != 0
                     : strcmp(kv->key, key) != 0)
            continue;
        if (n++ == 0)
            *v = kv->value;
    }
    return n;
}

/* The first request of a connection whose certificate is being
 * auto-registered names its client ID (the P11ca-Client-Id header or the
 * client_id query parameter), or the CN is taken; the registration is
 * written now.  False when answered (400 bad-client-id: nothing is
 * recorded).  Later requests, and connections of registered certificates,
 * are not asked: their header or parameter is ignored. */
static bool autoreg_client_id(struct srv_req *r)
{
    struct srv_conn *c = r->conn;
    const char *h, *q, *id;
    char why[SRV_MSG_MAX - 64];
    int nh, nq;

    if (!c->autoreg)
        return true;
    nh = kv_count(evhttp_request_get_input_headers(r->er), SRV_CLIENT_ID_HEADER,
                  true, &h);
    nq = kv_count(srv_req_query(r), SRV_CLIENT_ID_PARAM, false, &q);
    id = h ? h : q;
    if (nh > 1 || nq > 1)
        snprintf(
            why, sizeof(why),
            "give the client ID once (the %s header or the %s query parameter)",
            SRV_CLIENT_ID_HEADER, SRV_CLIENT_ID_PARAM);
    else if (h && q && strcmp(h, q) != 0)
        snprintf(
            why, sizeof(why),
            "the %s header and the %s query parameter name different client IDs",
            SRV_CLIENT_ID_HEADER, SRV_CLIENT_ID_PARAM);
    else if (!id || srv_client_id_check(id, why, sizeof(why))) {
        r->client_id_query = q != NULL;
        srv_autoreg_write(c, id, h ? "header" : q ? "query" : "cn");
        return true;
    }
    srv_autoreg_drop(c, why);
    srv_problem(r, 400, "bad-client-id", "%s; nothing was recorded", why);
    return false;
}

void srv_dispatch(struct evhttp_request *er, void *arg)
{
    struct srv *s = arg;
    struct srv_conn *c = conn_of(er);
    struct srv_req *r;

    if (!c) {
        /* Not TLS (see srv_conn_new), or out of memory. */
        evhttp_add_header(evhttp_request_get_output_headers(er), "Connection",
                          "close");
        evhttp_send_error(er, 400, "TLS required");
        return;
    }
    r = req_new(s, er, c);
    if (!r) {
        evhttp_send_error(er, 503, "Service Unavailable");
        return;
    }
    if (!autoreg_client_id(r) || !path_fits(r))
        return;
    srv_dispatch_req(r);
}
