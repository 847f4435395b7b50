/* SPDX-License-Identifier: Apache-2.0 */
/* What the service's files share: limits, the [serve] configuration, the
 * server, connections, requests, routes, worker jobs, metrics. */
#ifndef P11CA_SRV_INTERNAL_H
#define P11CA_SRV_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "ca/ca.h"
#include "ca/ocsp.h"
#include "registry/registry.h"
#include "server/server.h"

/* ------------------------------------------------------------------ */
/* Limits: the defaults; each has a [serve] key (config.c)             */
/* ------------------------------------------------------------------ */

#define SRV_MAX_BODY_BYTES      (64 * 1024) /* a request body we read */
#define SRV_HARD_BODY_FACTOR    4 /* libevent's own cap: 4 x the above */
#define SRV_MAX_HEADER_BYTES    (8 * 1024)
#define SRV_REQUEST_TIMEOUT_MS  10000 /* handshake + first request */
#define SRV_IDLE_TIMEOUT_MS     30000 /* the next request on keep-alive */
#define SRV_SHUTDOWN_TIMEOUT_MS 30000 /* SIGTERM: finishing what runs */
#define SRV_MAX_CONNECTIONS     1024
#define SRV_WORKERS             4
#define SRV_MAX_WORKERS         64
#define SRV_MAX_QUEUED_JOBS     1024
#define SRV_SIGNUPS_PER_SEC     15.0 /* token bucket per CA */
#define SRV_SIGNUP_BURST        15.0
/* A device names its client ID in the first request of the connection
 * that auto-registers it: this header, or this query parameter. */
#define SRV_CLIENT_ID_HEADER "P11ca-Client-Id"
#define SRV_CLIENT_ID_PARAM  "client_id"
#define SRV_PAGE_LIMIT       100 /* GET /v1/certs without limit= */
#define SRV_PAGE_LIMIT_MAX   1000
/* The largest offset a cursor of GET /v1/certs holds. */
#define SRV_CURSOR_OFFSET_MAX   (INT64_MAX - SRV_PAGE_LIMIT_MAX)
#define SRV_MAX_LISTEN          8
#define SRV_RETRY_AFTER_MAX_S   3600 /* Retry-After when nothing refills */
#define SRV_RETRY_UNAVAILABLE_S "2"  /* Retry-After: registry database down */
#define SRV_MAX_PARAMS          2    /* {name} segments in a route */
#define SRV_MAX_PATH_BYTES      512  /* a request path, with its NUL */
#define SRV_ACTOR_MAX           320
#define SRV_MSG_MAX             512
#define SRV_STUCK_GRACE_MS      1000 /* after the shutdown timeout */
#define SRV_OCSP_PATH           "/ocsp"
#define SRV_OCSP_PATH_MAX       64
/* The OCSP cache's refresh thread (changes in the audit trail, e.g. p11ca
 * cert revoke in another process; responses near their nextUpdate): how
 * often, and the most signatures one refresh makes. */
#define SRV_OCSP_REFRESH_MS    250
#define SRV_OCSP_REFRESH_SIGNS 64
#define SRV_PLAIN_CONN_BUCKETS 256 /* the plain listener's connections */
#define SRV_DENIED_INTERVAL_S  60  /* one api-denied entry per caller */
#define SRV_DENIED_CALLERS     64  /* callers whose refusals are counted */
#define SRV_MAX_DENIED_JOBS    8   /* api-denied entries queued at once */
/* The registry's announcements of changes (PostgreSQL): the wait before
 * listening again after a fault, doubled each time up to the maximum. */
#define SRV_LISTEN_RETRY_MIN_MS 100
#define SRV_LISTEN_RETRY_MAX_MS 5000
#define SRV_CRL_SEEN            64 /* revocations whose CRL was made */
/* Enrollment codes: the random secret (bytes; shown as hex), how long
 * one is valid without expires_in, and the bounds of expires_in. */
#define SRV_CODE_SECRET_BYTES 20
#define SRV_CODE_TTL_S        86400
#define SRV_CODE_TTL_MIN_S    60
#define SRV_CODE_TTL_MAX_S    (30 * 86400)
/* The OCSP responder's tryLater and error lines: one per interval, the
 * others counted. */
#define SRV_OCSP_LOG_INTERVAL_S 10
/* A refused handshake's lingering close: what is read and dropped at most
 * before the socket is closed. */
#define SRV_LINGER_MS    2000
#define SRV_LINGER_BYTES (64 * 1024)

/* ------------------------------------------------------------------ */
/* Roles and the [serve] section (config.c)                            */
/* ------------------------------------------------------------------ */

/* Ordered: a role may do what the roles below it may. */
enum srv_role {
    SRV_ROLE_ANON = 0, /* no client certificate */
    SRV_ROLE_DEVICE,   /* a verified client that is not an operator */
    SRV_ROLE_AUDITOR,
    SRV_ROLE_OPERATOR,
    SRV_ROLE_ADMIN,
};
const char *srv_role_name(enum srv_role r);

/* A token bucket's settings: @per_sec tokens a second, at most @burst. */
struct srv_rate {
    bool unlimited;
    double per_sec;
    double burst;
};

/* An operator: a certificate (by SHA-256 of its DER, or by subject when
 * issued by this CA) and its role. */
struct srv_operator {
    char *label;
    enum srv_role role;
    bool by_sha256;
    unsigned char sha256[32];
    char *subject; /* RFC 2253, as p11ca cert list prints it */
};

struct srv_ca_rate {
    int64_t ca_id;
    struct srv_rate rate;
};

/* A profile's own sign-up limit (profile.NAME in signup_limits). */
struct srv_profile_rate {
    char *profile;
    struct srv_rate rate;
};

struct srv_listen {
    char host[INET6_ADDRSTRLEN];
    unsigned port;
};

struct srv_config {
    struct srv_listen listen[SRV_MAX_LISTEN];
    size_t n_listen;
    char *tls_key;  /* pkcs11: URI or file */
    char *tls_cert; /* file (PEM, with its chain) or pkcs11: URI */
    unsigned workers;
    unsigned max_connections;
    unsigned max_queued_jobs;
    size_t max_body_bytes;
    size_t max_header_bytes;
    unsigned request_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned shutdown_timeout_ms;
    unsigned audit_denied_interval_s;
    char *access_log; /* NULL: standard error */
    struct srv_rate signup;
    struct srv_ca_rate *ca_rates;
    size_t n_ca_rates;
    struct srv_profile_rate *profile_rates;
    size_t n_profile_rates;
    struct srv_operator *ops;
    size_t n_ops;
    bool auto_register;     /* defaults of POST /v1/cas */
    reg_status auto_status; /* activated or registered-not-activated */
    char ocsp_path[SRV_OCSP_PATH_MAX + 1];         /* the OCSP responder */
    struct srv_listen ocsp_listen[SRV_MAX_LISTEN]; /* plain HTTP, OCSP only */
    size_t n_ocsp_listen;
    unsigned ocsp_max_signing; /* fresh OCSP signatures at once; 0: workers */
};

/*
 * srv_config_load - the [serve] section of @dir/ca.cnf into @cfg (zeroed
 * first), with @listen (may be NULL) instead of its listen key.  Returns 0
 * or P11CA_E_INPUT naming the key.  srv_config_clear frees what it holds.
 */
int srv_config_load(const char *dir, const char *listen,
                    struct srv_config *cfg);
void srv_config_clear(struct srv_config *cfg);

/* srv_rate_parse - "RATE[/BURST]" (per second; BURST defaults to RATE, at
 * least 1) or "off"; -1 when @text is neither. */
int srv_rate_parse(const char *text, struct srv_rate *r);

/* srv_listen_parse - "HOST:PORT", "[V6]:PORT" or ":PORT" (all IPv4). */
int srv_listen_parse(const char *text, struct srv_listen *l);

/* The sign-up limit of CA @ca_id: its own, else the default. */
const struct srv_rate *srv_config_rate(const struct srv_config *cfg,
                                       int64_t ca_id);

/* srv_config_profiles_check - every profile.NAME of @cfg names a profile
 * of the CA @c; else P11CA_E_INPUT naming it (start and SIGHUP). */
int srv_config_profiles_check(const struct srv_config *cfg, ca *c);

/* ------------------------------------------------------------------ */
/* Token bucket (ratelimit.c)                                          */
/* ------------------------------------------------------------------ */

/* Times are milliseconds of a monotonic clock, passed in (tests). */
struct srv_bucket {
    struct srv_rate rate;
    double tokens;
    int64_t last_ms;
};

/* srv_bucket_init - a full bucket with @r. */
void srv_bucket_init(struct srv_bucket *b, const struct srv_rate *r,
                     int64_t now_ms);
/* srv_bucket_set_rate - new settings, keeping what is left (at most the
 * new burst). */
void srv_bucket_set_rate(struct srv_bucket *b, const struct srv_rate *r,
                         int64_t now_ms);
/*
 * srv_bucket_take - take one token: true if there was one; else false and
 * *@retry_after_s (may be NULL) gets the whole seconds until the next one
 * (SRV_RETRY_AFTER_MAX_S when nothing refills).
 */
bool srv_bucket_take(struct srv_bucket *b, int64_t now_ms,
                     unsigned *retry_after_s);
/* srv_bucket_refund - give back a token taken for nothing (at most the
 * burst). */
void srv_bucket_refund(struct srv_bucket *b);

/* srv_now_ms - CLOCK_MONOTONIC in milliseconds. */
int64_t srv_now_ms(void);

/* The buckets of the profiles that have a limit of their own (enrollment
 * takes from the profile's and the CA's).  Under @mu: an enrollment with
 * a code learns its profile on a worker. */
struct srv_profile_buckets {
    pthread_mutex_t mu;
    struct srv_profile_bucket {
        char *profile;
        struct srv_bucket b;
    } * v;
    size_t n;
};

/* srv_profile_buckets_set - the buckets for @cfg's profile limits (a
 * profile that had one keeps what is left).  0 or P11CA_E_NOMEM (then
 * nothing changed). */
int srv_profile_buckets_set(struct srv_profile_buckets *pb,
                            const struct srv_config *cfg, int64_t now_ms);
void srv_profile_buckets_free(struct srv_profile_buckets *pb);
/* srv_profile_take - take one sign-up of @profile: true when it has no
 * limit of its own or a token was there; else false with *@retry_s. */
bool srv_profile_take(struct srv_profile_buckets *pb, const char *profile,
                      unsigned *retry_s);
/* srv_profile_refund - give back a token srv_profile_take took. */
void srv_profile_refund(struct srv_profile_buckets *pb, const char *profile);

/* ------------------------------------------------------------------ */
/* Registered CAs, trust and the handshake (tls.c)                     */
/* ------------------------------------------------------------------ */

struct srv;
struct srv_conn;

/* A registered CA as the server holds it (reloaded on SIGHUP and after
 * POST/PATCH /v1/cas). */
struct srv_ca {
    int64_t id;
    char *name;
    char *subject;
    X509 *x;
    bool external; /* its certificates are only registered here */
    bool auto_register;
    reg_status auto_status;
    struct srv_bucket bucket; /* sign-ups of this CA */
};

struct srv_cas {
    struct srv_ca *v;
    size_t n;
};

/* srv_cas_read - the registry's CAs into @out, with the sign-up limits of
 * s->cfg (buckets of CAs in s->cas keep what is left).  Returns 0 or a
 * registry error. */
int srv_cas_read(struct srv *s, struct srv_cas *out);
void srv_cas_clear(struct srv_cas *cas);
struct srv_ca *srv_ca_by_id(struct srv *s, int64_t id);

/*
 * srv_tls_ctx_new - a server SSL_CTX in the CA key's library context: the
 * TLS key and certificate of s->cfg, TLS 1.2 and 1.3, client certificates
 * requested (not required) and checked against @cas and the registry at
 * the handshake, no session resumption (every connection is checked).
 * Returns 0 or an error.
 */
int srv_tls_ctx_new(struct srv *s, const struct srv_cas *cas, SSL_CTX **out);

/* srv_trust_reload - the registered CAs read again and a new SSL_CTX
 * trusting them, the TLS key and certificate loaded again (start and
 * SIGHUP; new connections use it, open ones keep theirs).  On failure
 * nothing changes. */
int srv_trust_reload(struct srv *s);

/* srv_cas_refresh - the registered CAs read again (auto-registration
 * settings), the SSL_CTX kept.  srv_trust_add - trust one more CA in the
 * current SSL_CTX (after POST /v1/cas). */
int srv_cas_refresh(struct srv *s);
int srv_trust_add(struct srv *s, X509 *cax);

/* The SSL ex_data index of the connection state (srv_conn). */
extern int srv_conn_idx;
int srv_tls_init(void);

/* ------------------------------------------------------------------ */
/* Worker jobs (worker.c)                                              */
/* ------------------------------------------------------------------ */

struct srv_job;
/* Runs on a worker thread with the worker's own CA handle. */
typedef void srv_job_run_fn(struct srv_job *j, ca *wc);
/* Runs on the event loop thread afterwards; frees the job. */
typedef void srv_job_done_fn(struct srv_job *j);

/*
 * A unit of token or registry work.  Each kind of job embeds this first.
 * The loop thread submits it; a worker runs it and posts it back (the
 * pool's list of finished jobs), so that replies are only sent from the
 * loop.
 */
struct srv_job {
    srv_job_run_fn *run;
    srv_job_done_fn *done;
    struct srv *s;
    struct srv_job *next;
    const char *kind; /* for logs */
    char actor[SRV_ACTOR_MAX];
    bool cancelled; /* never ran: the service stopped first */
    bool read_only; /* changes nothing: no audit checkpoint after it */
    int rc;
    char msg[SRV_MSG_MAX];
};

struct srv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct srv_job *head, *tail;
    /* Finished jobs for the loop, in order: the worker that finds the
     * list empty wakes the loop (@done_ev), which takes them all at once,
     * so that a loop busy with answers is not woken for each. */
    struct srv_job *done_head, *done_tail;
    struct event *done_ev;
    size_t queued;  /* waiting for a worker */
    size_t running; /* on a worker now */
    bool stop;
    size_t n;     /* workers started */
    size_t n_cas; /* places in @cas and @next_cas */
    pthread_t *threads;
    ca **cas;      /* each worker's handle */
    ca **next_cas; /* replacements after a reload, taken between jobs */
    struct srv *s;
};

/* srv_pool_start - @n workers, each with a handle from ca_open_shared.
 * On failure nothing is left: the workers started are stopped and the
 * handles opened closed. */
int srv_pool_start(struct srv *s, unsigned n);
/* srv_join_deadline - @ts: @ms from now on CLOCK_REALTIME, for
 * pthread_timedjoin_np. */
void srv_join_deadline(struct timespec *ts, unsigned ms);

/* srv_pool_stop - the workers finish the job they run and exit; queued
 * jobs are handed back through their done function with P11CA_E_STATE.
 * After the shutdown timeout a worker that does not stop within
 * SRV_STUCK_GRACE_MS (a token that never answers) is left behind: the
 * process exits at once with P11CA_EXIT_INTERNAL. */
void srv_pool_stop(struct srv *s);
/* srv_pool_reload - give each worker a fresh handle (after SIGHUP). */
int srv_pool_reload(struct srv *s);
size_t srv_pool_queued(struct srv *s);
size_t srv_pool_running(struct srv *s);

/*
 * srv_job_submit - queue @j (kind, run, done and actor set by the caller).
 * Returns 0, or P11CA_E_RATE when max_queued_jobs are waiting (then @j is
 * not taken: the caller frees it).
 */
int srv_job_submit(struct srv *s, struct srv_job *j);
/* srv_job_set_error - record the thread's last p11ca error in @j. */
void srv_job_set_error(struct srv_job *j, int rc);

/* ------------------------------------------------------------------ */
/* Connections and requests (http.c)                                   */
/* ------------------------------------------------------------------ */

struct srv_req;

/* Why a client was refused (metrics.c names them). */
enum srv_refusal {
    SRV_REFUSE_UNKNOWN_CA,    /* not issued by a registered CA */
    SRV_REFUSE_INVALID,       /* chain or signature */
    SRV_REFUSE_EXPIRED,       /* not valid now */
    SRV_REFUSE_NOT_ACTIVATED, /* not-activated, registered-not-activated */
    SRV_REFUSE_REVOKED,
    SRV_REFUSE_UNKNOWN_CERT, /* not registered, auto-registration off */
    SRV_REFUSE_MISMATCH,     /* the registry has another cert there */
    SRV_REFUSE_RATE,         /* sign-up limit */
    SRV_REFUSE_REGISTRATION, /* auto-registration failed */
    SRV_REFUSE_REGISTRY,     /* the registry could not answer */
    SRV_REFUSE_FORBIDDEN,    /* a role too low (403) */
    SRV_REFUSE_UNAUTHENTICATED,
    SRV_REFUSE_N
};
const char *srv_refusal_name(enum srv_refusal r);

/* A pending auto-registration: the connections that wait for it.  It is
 * decided at the handshake (autoreg_decide) and written once its owner
 * (the connection whose handshake decided it) names the client ID: at its
 * first request, at its close, or at SIGTERM (srv_autoreg_flush). */
struct autoreg_job;
struct srv_pending {
    struct srv_pending *next;
    int64_t ca_id;
    char serial[64];
    unsigned char sha256[32]; /* the certificate being recorded */
    reg_status st;            /* with this status */
    struct srv_conn **conns;
    size_t n, cap;
    struct autoreg_job *job; /* not submitted yet, else NULL */
    struct srv_conn *owner;  /* a reference while @job waits */
};

/* One connection; a TLS one lives as long as its SSL (ex_data) and its
 * users, a plain one (ocsp_listen) as long as its evhttp connection. */
struct srv_conn {
    unsigned refs;
    struct srv *s;
    struct bufferevent *bev;
    bool closed;                     /* the SSL is gone */
    bool plain;                      /* ocsp_listen: plain HTTP, OCSP only */
    struct evhttp_connection *evcon; /* plain: evhttp's connection */
    struct bufferevent *plain_bev;   /* plain: the key of s->plain */
    struct event *adopt;             /* plain: srv_plain_conn_new's */
    struct srv_conn *plain_next;
    struct event *deadline;
    char peer[INET6_ADDRSTRLEN + 8];
    unsigned inflight; /* requests dispatched, response not written */
    /* The client certificate, once verified. */
    bool has_cert;
    char serial[64];                        /* the registry's form */
    char serial_shown[REG_SERIAL_TEXT_MAX]; /* openssl's: logs, actors */
    char *subject;
    unsigned char sha256[32];
    int64_t ca_id;
    /* Auto-registration of this certificate at this connection: decided
     * once the handshake is done (the client proved it holds the key). */
    bool reg_wanted; /* verify_cb admitted it as unknown, to be decided */
    /* verify_cb admitted it as the renewal of an activated certificate,
     * swapped in once the handshake is done (tls.c, confirm_decide). */
    bool confirm_wanted;
    bool hs_done; /* the handshake completed */
    bool refused; /* refused after the handshake: requests get a problem */
    enum srv_refusal refused_why;
    unsigned refused_retry_s; /* SRV_REFUSE_RATE: Retry-After */
    char refused_msg[SRV_MSG_MAX];
    bool reg_pending;
    /* The registration whose client ID this connection's first request
     * names (its owner, or one that joined it before it was written). */
    struct srv_pending *autoreg;
    int reg_rc; /* P11CA_OK, or why it failed (with reg_msg) */
    char reg_msg[SRV_MSG_MAX];
    struct srv_req *parked; /* a request waiting for the registration */
    /* A handshake refused with an alert: the close lingers (http.c). */
    bool lingering;
    int linger_fd;                /* a duplicate of the socket */
    size_t linger_bytes;          /* read and dropped */
    struct event *linger_ev;      /* its input or SRV_LINGER_MS */
    struct srv_conn *linger_next; /* s->lingering */
};

struct srv_conn *srv_conn_ref(struct srv_conn *c);
void srv_conn_unref(struct srv_conn *c);
/*
 * srv_conn_linger - a fatal alert went out on @c's socket @fd during the
 * handshake: when the connection is freed, its socket is not closed at
 * once (a client that wrote after its side of the handshake would get a
 * reset, which may destroy the alert before it reads it) but shut down
 * for writing, its input read and dropped until EOF, SRV_LINGER_BYTES or
 * SRV_LINGER_MS, then closed (srv_conn_linger_start).  It still counts
 * against max_connections meanwhile.
 */
void srv_conn_linger(struct srv_conn *c, int fd);
/* srv_conn_linger_start - from conn_ex_free: true when @c lingers now
 * (it keeps its reference and its place in n_conns until the end). */
bool srv_conn_linger_start(struct srv_conn *c);
/* srv_linger_stop - close every lingering socket (the service stops). */
void srv_linger_stop(struct srv *s);
/* srv_conn_registered - the registration @c waited for is over. */
void srv_conn_registered(struct srv_conn *c, int rc, const char *msg);

/*
 * srv_client_id_check - a client ID a device presents: 1 to
 * ENROLL_CLIENT_ID_MAX bytes, no control character (C0, DEL).  True, or
 * false with the reason in @why.
 */
bool srv_client_id_check(const char *id, char *why, size_t why_len);

/*
 * srv_autoreg_write - c->autoreg is written now with @client_id (NULL:
 * the certificate's CN), @source ("header", "query", "cn") noted in the
 * audit entry's actor.  srv_autoreg_drop - c->autoreg is given up (a bad
 * client ID: @why): nothing recorded, its sign-up given back, @c refused
 * after this request, the connections that joined it refused.
 * srv_autoreg_flush - every registration not written yet is written with
 * the CN (SIGTERM: no request will name one now).
 */
void srv_autoreg_write(struct srv_conn *c, const char *client_id,
                       const char *source);
void srv_autoreg_drop(struct srv_conn *c, const char *why);
void srv_autoreg_flush(struct srv *s);

typedef void srv_handler_fn(struct srv_req *r);

/* A route: a method and a path pattern whose "{name}" segments match one
 * segment each; who may call it (SRV_ROLE_ANON: anyone); @self: a device
 * may call it for its own certificate. */
struct srv_route {
    enum evhttp_cmd_type method;
    const char *pattern;
    srv_handler_fn *fn;
    enum srv_role min_role;
    bool self;
    bool by_prefix; /* matched by its handler's prefix (OCSP), not here */
};

/* The route tables, one per resource file, each ending with {0}. */
extern const struct srv_route srv_routes_health[];
extern const struct srv_route srv_routes_certs[];
extern const struct srv_route srv_routes_cas[];
extern const struct srv_route srv_routes_crl[];
extern const struct srv_route srv_routes_enroll[];
extern const struct srv_route srv_routes_ocsp[];

/* Every route, in order (srv_route_at/srv_route_count for metrics). */
size_t srv_route_count(void);
const struct srv_route *srv_route_at(size_t i);

/*
 * srv_route_match - the route for @method and @path; the segments that
 * match "{name}" go to @params (pointers into @buf, a copy of @path of
 * @len bytes).  Returns the index, -1 (no such path: 404) or -2 (the path
 * exists with other methods: 405; @allow gets them, comma-separated).
 */
int srv_route_match(enum evhttp_cmd_type method, const char *path, char *buf,
                    size_t len, const char **params, char *allow,
                    size_t allow_len);

/* One request, from dispatch to reply. */
struct srv_req {
    struct srv *s;
    struct evhttp_request *er;
    struct srv_conn *conn;
    int route;                          /* index, -1 before matching */
    const char *params[SRV_MAX_PARAMS]; /* into @path_params */
    char path[SRV_MAX_PATH_BYTES];
    char path_params[SRV_MAX_PATH_BYTES];
    bool path_too_long; /* @path holds its start only: 414 */
    struct evkeyvalq query;
    bool query_parsed;
    /* The query's client_id named the device's client ID (the first
     * request of an auto-registering connection): not a route's. */
    bool client_id_query;
    int64_t start_ns;
    enum srv_role role;
    char actor[SRV_ACTOR_MAX];
};

/* srv_req_param - the @i-th "{name}" segment. */
const char *srv_req_param(struct srv_req *r, size_t i);

/*
 * srv_req_authorize - step 2 of a handler: whether the caller may use the
 * route (@self_ok: the request names the caller's own certificate).
 * Answers 401 (no certificate) or 403 (audited, with the caller as actor)
 * itself and returns false.
 */
bool srv_req_authorize(struct srv_req *r, bool self_ok);

/* srv_req_require - a handler's own check for a route open to anyone:
 * the caller has at least @min, else 401 (no certificate) or 403
 * (audited), saying that the route needs @why ("an enrollment code or the
 * operator role"), and false. */
bool srv_req_require(struct srv_req *r, enum srv_role min, const char *why);

/*
 * srv_req_json - the body as a JSON object (at most max_body_bytes: 413;
 * not JSON or not an object: 400).  NULL when answered already.  An empty
 * body gives an empty object when @empty_ok.
 */
json_t *srv_req_json(struct srv_req *r, bool empty_ok);

/*
 * srv_json_parse - @len bytes of @buf as a JSON object (new reference),
 * duplicate members refused; an empty body is an empty object when
 * @empty_ok.  NULL with the reason in @detail (400 malformed-json), or
 * with @detail empty when out of memory.  No I/O: srv_req_json's parser,
 * and the fuzz target's (tests/fuzz/api-request.c).
 */
json_t *srv_json_parse(const char *buf, size_t len, bool empty_ok, char *detail,
                       size_t detail_len);

/* srv_json_unknown - the first member of @body not named in @allowed
 * (NULL-ended; borrowed from @body), or NULL when there is none. */
const char *srv_json_unknown(json_t *body, const char *const *allowed);

/* srv_json_only - whether @body has only members named in @allowed
 * (NULL-ended); else 400 is answered and false returned. */
bool srv_json_only(struct srv_req *r, json_t *body, const char *const *allowed);

/* srv_method_name - "GET", "POST", ... */
const char *srv_method_name(enum evhttp_cmd_type m);

/* The body as bytes (at most max_body_bytes, else 413 answered: NULL). */
unsigned char *srv_req_body(struct srv_req *r, size_t *len);

/* srv_req_query - the query parameters (parsed on first use). */
struct evkeyvalq *srv_req_query(struct srv_req *r);

/* Replies: each sends, logs, counts and frees @r. */
void srv_reply_json(struct srv_req *r, int status, json_t *body);
/* srv_reply_json_secret - as srv_reply_json, the text and the string
 * members of @body wiped (a new enrollment code). */
void srv_reply_json_secret(struct srv_req *r, int status, json_t *body);
void srv_reply_bytes(struct srv_req *r, int status, const char *type,
                     const void *data, size_t len);
void srv_problem(struct srv_req *r, int status, const char *code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* srv_problem_rc - the problem for a p11ca status code @rc and @msg:
 * NOTFOUND 404, EXISTS/STATE 409, INPUT/POLICY 400, RATE 429, REGISTRY,
 * TOKEN, PIN, CAKEY 503, UNAVAILABLE 503 with Retry-After, others 500. */
void srv_problem_rc(struct srv_req *r, int rc, const char *msg);
/* srv_problem_job - the problem for a job that failed (or was cancelled:
 * 503 shutting-down). */
void srv_problem_job(struct srv_req *r, const struct srv_job *j);
/* srv_submit_or_answer - submit @j for @r; when the queue is full, answer
 * 503 busy (Retry-After: 1) and return false (@j not taken). */
bool srv_submit_or_answer(struct srv_req *r, struct srv_job *j);
/* srv_set_header - an extra response header (before a reply). */
void srv_set_header(struct srv_req *r, const char *name, const char *value);

/* srv_problem_json - the RFC 9457 object (for tests too). */
json_t *srv_problem_json(int status, const char *code, const char *detail);
const char *srv_status_title(int status);

/* The dispatcher: evhttp's general callback. */
void srv_dispatch(struct evhttp_request *er, void *arg);
/* Resume a request parked behind an auto-registration. */
void srv_dispatch_req(struct srv_req *r);

/* The bufferevent of a new connection (evhttp_set_bevcb). */
struct bufferevent *srv_conn_new(struct event_base *base, void *arg);

/* The bufferevent of a new plain connection (ocsp_listen). */
struct bufferevent *srv_plain_conn_new(struct event_base *base, void *arg);
/* srv_plain_stop - after evhttp_free: the plain connections left. */
void srv_plain_stop(struct srv *s);

/* The dispatcher of the plain-HTTP listeners (ocsp_listen): OCSP only. */
void srv_dispatch_plain(struct evhttp_request *er, void *arg);

/* ------------------------------------------------------------------ */
/* OCSP (api_ocsp.c)                                                   */
/* ------------------------------------------------------------------ */

/* srv_ocsp_start - the responder (its own handle, [ ocsp ] of ca.cnf, the
 * signing key loaded now) and its refresh timer.  Returns 0 or the error
 * that keeps the service from starting. */
int srv_ocsp_start(struct srv *s);
/* srv_ocsp_stop - tell the refresh thread to stop (SIGTERM; it is not
 * waited for here).  srv_ocsp_free, after the workers, joins it (after the
 * shutdown timeout only for a while, like a worker) and frees the
 * responder. */
void srv_ocsp_stop(struct srv *s);
void srv_ocsp_free(struct srv *s);
/* srv_ocsp_route - the OCSP route index for @r (its method and path
 * under ocsp_path), -1: not an OCSP path, -2: an OCSP path and another
 * method (405 answered: @r is freed). */
int srv_ocsp_route(struct srv_req *r);
/* srv_ocsp_max_signing - fresh OCSP signatures in flight at most
 * (ocsp_max_signing, else the number of workers). */
size_t srv_ocsp_max_signing(const struct srv *s);
/*
 * srv_ocsp_cert_changed - on a worker (@wc), after the API changed the
 * certificate (@ca_id, @serial) in the registry: its cached responses
 * dropped and signed again (a failure is logged: queries sign them).
 */
void srv_ocsp_cert_changed(struct srv *s, ca *wc, int64_t ca_id,
                           const char *serial, bool issued);

/*
 * srv_renewal_pending - whether @c, as the registry holds it, is a renewal
 * that waits for its device (api_enroll.c): not activated, never
 * activated, linked (replaces) to an activated certificate of the same
 * CA and client ID.  *@yes says; @old gets the old record (reg_cert_clear
 * it in any case).  A worker's call (it reads the status history).
 * Returns 0 or a registry error.
 */
int srv_renewal_pending(reg *rg, const reg_cert *c, reg_cert *old, bool *yes);

/* srv_ocsp_wake - run the OCSP cache's refresh now (another node changed
 * a certificate: the refresh reads the audit trail, drops and signs again
 * what changed). */
void srv_ocsp_wake(struct srv *s);

/* ------------------------------------------------------------------ */
/* Several nodes on one registry (nodes.c)                             */
/* ------------------------------------------------------------------ */

/* srv_nodes_start - on a shared registry (PostgreSQL), listen for its
 * changes: what another node changed drops what this one caches (OCSP
 * responses, the registered CAs and their trust, the CRL).  Nothing on
 * SQLite.  srv_nodes_stop - stop listening. */
int srv_nodes_start(struct srv *s);
void srv_nodes_stop(struct srv *s);
/* srv_nodes_listening - whether the announcements come now. */
bool srv_nodes_listening(const struct srv *s);

/*
 * srv_signup_take - take one sign-up of @sca's limit: counted in the
 * database on a shared registry (the same for every node), else in
 * @sca's bucket.  1: taken; 0: none left, *@retry_s the seconds to wait;
 * an error (the database) otherwise.  srv_signup_refund gives one back.
 */
int srv_signup_take(struct srv *s, struct srv_ca *sca, unsigned *retry_s);
/*
 * srv_crl_first - a revocation of this CA's certificate @serial (the
 * registry's form), seen through this node's API (@local) or announced by
 * the registry: true when the CRL is to be made now, false when the other
 * of the two made it already (this node's own revocations are announced
 * to it too).  Without a listener, a local one is always true.
 */
bool srv_crl_first(struct srv *s, const char *serial, bool local);
void srv_signup_refund(struct srv *s, struct srv_ca *sca);

/* ------------------------------------------------------------------ */
/* Metrics (metrics.c)                                                 */
/* ------------------------------------------------------------------ */

#define SRV_N_CODES   16
#define SRV_N_BUCKETS 12

struct srv_route_stats {
    uint64_t by_code[SRV_N_CODES];
    uint64_t hist[SRV_N_BUCKETS]; /* cumulative in the exposition only */
    uint64_t count;
    double sum_s;
};

/* Loop-thread only: workers' results are counted when posted back. */
struct srv_metrics {
    struct srv_route_stats *routes; /* srv_route_count() + 1 (unmatched) */
    uint64_t signups_auto;
    uint64_t signups_api;
    uint64_t refusals[SRV_REFUSE_N];
    uint64_t token_errors;
    uint64_t handshakes;
    uint64_t timeouts;
};

int srv_metrics_init(struct srv_metrics *m);
void srv_metrics_clear(struct srv_metrics *m);
void srv_metrics_request(struct srv_metrics *m, int route, int status,
                         double seconds);
/* srv_metrics_text - the Prometheus exposition (text format 0.0.4). */
int srv_metrics_text(struct srv *s, struct evbuffer *out);

/* ------------------------------------------------------------------ */
/* The server (server.c)                                               */
/* ------------------------------------------------------------------ */

struct srv {
    ca *ca; /* the loop thread's handle: registry reads */
    const char *listen_override;
    struct srv_config cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound[SRV_MAX_LISTEN];
    size_t n_bound;
    bool paused; /* listeners off: max_connections reached */
    SSL_CTX *ssl_ctx;
    struct srv_cas cas;
    struct srv_pool pool;
    struct srv_metrics m;
    struct srv_pending *pending;
    struct srv_profile_buckets profile_buckets;
    int access_fd; /* -1: standard error */
    /* The CRL served by GET /v1/crl, and its regeneration. */
    unsigned char *crl_der;
    size_t crl_len;
    bool crl_job;   /* a CRL job is queued or running */
    bool crl_again; /* a revocation came after it started */
    /* A CRL that was not made (token error, queue full) is made again
     * later: the CRL served never stays without a revocation. */
    struct event *ev_crl_retry;
    unsigned crl_retry_ms; /* the last wait; 0: the last CRL was made */
    char crl_actor[SRV_ACTOR_MAX];
    /* Shutdown and reload. */
    struct event *ev_term, *ev_int, *ev_hup, *ev_deadline;
    bool draining;
    bool timed_out; /* shutdown_timeout_ms passed with work left */
    size_t n_conns;
    size_t inflight; /* requests whose response is not written yet */
    size_t jobs;     /* jobs submitted and not posted back */
    /* Refused calls by caller (srv_audit_denied). */
    struct srv_denied *denied; /* SRV_DENIED_CALLERS */
    size_t denied_jobs;        /* api-denied entries not written yet */
    int64_t started_ms;
    /* The OCSP responder (api_ocsp.c). */
    ca *ocsp_ca;
    ca_ocsp *ocsp;
    ca_ocsp_resp *ocsp_try_later;
    /* Fresh signatures (loop thread only): in flight (queued or on a
     * worker), refused at the bound, signed; tryLater answers by reason
     * and their log lines (one per SRV_OCSP_LOG_INTERVAL_S). */
    size_t ocsp_in_flight;
    uint64_t ocsp_signed;
    uint64_t ocsp_try_later_n[3]; /* busy, signer, error */
    int64_t ocsp_log_at;
    uint64_t ocsp_log_quiet; /* lines left out since ocsp_log_at */
    bool ocsp_signer_warned;
    /* Its refresh: a thread of its own with its own handle, so that it
     * never waits behind (nor holds up) the workers' jobs. */
    ca *refresh_ca;
    pthread_t refresh_thread;
    bool refresh_started;
    bool refresh_stop; /* under refresh_mu */
    pthread_mutex_t refresh_mu;
    pthread_cond_t refresh_cv;
    /* The plain-HTTP listeners (ocsp_listen) and their connections. */
    struct evhttp *plain_http;
    struct evhttp_bound_socket *plain_bound[SRV_MAX_LISTEN];
    size_t n_plain_bound;
    struct srv_conn *plain[SRV_PLAIN_CONN_BUCKETS];
    struct srv_conn *lingering; /* refused handshakes closing (http.c) */
    bool refresh_kick;          /* under refresh_mu: refresh now */
    /* The registry's announcements (nodes.c). */
    reg_listener *listener;
    struct event *ev_listen, *ev_listen_retry;
    int listen_fd;
    short listen_ev;
    unsigned listen_retry_ms; /* the last wait; 0: listening */
    bool listen_was_up;       /* it listened once */
    bool listen_down_logged;
    /* Revocations whose CRL was made, by the API or an announcement. */
    struct srv_crl_seen {
        char serial[64];
        bool local;
        bool used;
    } crl_seen[SRV_CRL_SEEN];
    size_t crl_seen_next;
};

/* srv_log - an operational line on standard error ("p11ca serve: ..."). */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* srv_access - one line of the access log, time-stamped. */
void srv_access(struct srv *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* srv_drain_check - after a request or job ends: exit the loop when
 * draining and nothing is left. */
void srv_drain_check(struct srv *s);
/* srv_conns_changed - pause or resume the listeners at max_connections. */
void srv_conns_changed(struct srv *s);

/* srv_crl_regenerate - make a new CRL through a worker (coalesced).  One
 * that is not made (the token failed, the queue was full) is tried again
 * after 1 s, then twice as long each time up to 60 s, until one is. */
void srv_crl_regenerate(struct srv *s, const char *actor);
/* srv_crl_load - read DIR/crl.pem into s->crl_der (absent: no CRL yet). */
int srv_crl_load(struct srv *s);

/*
 * srv_audit_denied - record a refused call in the audit trail (a job):
 * one entry per caller (@actor) and audit_denied_interval_s; the calls
 * refused in between are counted and the count goes with the caller's
 * next entry ("repeated"), or with one of its own at SIGTERM or when the
 * caller's place is taken by another.  At most SRV_MAX_DENIED_JOBS such
 * entries wait for a worker; a refusal beyond is counted the same way.
 */
void srv_audit_denied(struct srv *s, const char *actor, const char *what,
                      const char *why);
/* srv_audit_denied_flush - the counts not yet recorded, as entries. */
void srv_audit_denied_flush(struct srv *s);

/* ------------------------------------------------------------------ */
/* Request parsing without I/O (api_certs.c, api_cas.c): the handlers'   */
/* first step, and the fuzz target's (tests/fuzz/api-request.c)         */
/* ------------------------------------------------------------------ */

/* What srv_certs_filter_parse says of one query parameter. */
enum srv_param_rc {
    SRV_PARAM_OK = 0,
    SRV_PARAM_BAD_VALUE = -1, /* 400 bad-request */
    SRV_PARAM_UNKNOWN = -2,   /* 400 unknown-parameter */
};

/*
 * srv_certs_filter_parse - one query parameter @k=@v of GET /v1/certs
 * into @f (its strings borrowed from @v) and *@offset (a cursor), at the
 * time @now.  "issuer" names a CA that only the registry knows: its value
 * goes to *@issuer (borrowed) for the caller to look up; *@issuer is left
 * alone for other parameters.
 */
enum srv_param_rc srv_certs_filter_parse(const char *k, const char *v,
                                         int64_t now, reg_filter *f,
                                         size_t *offset, const char **issuer);

/* srv_cursor_make - the opaque cursor of GET /v1/certs for @offset.
 * srv_cursor_read - its offset back: 0, or -1 when @in is no cursor. */
void srv_cursor_make(size_t offset, char *out, size_t len);
int srv_cursor_read(const char *in, size_t *offset);

/* The members of a POST /v1/certs body, borrowed from it; @x is new. */
struct srv_register_body {
    X509 *x;
    const char *client_id; /* NULL: none given */
    reg_status to;         /* activated or registered-not-activated */
};

/* srv_register_body_parse - @body of POST /v1/certs into @out: 0, or -1
 * (400 bad-request) with the reason in @detail and nothing to free. */
int srv_register_body_parse(json_t *body, struct srv_register_body *out,
                            char *detail, size_t detail_len);

/*
 * srv_cas_auto_parse - "auto_register" and "auto_status" of @body (POST
 * /v1/cas, PATCH /v1/cas/{id}) over *@on and *@st (the defaults, set by
 * the caller); *@set says whether either was given.  0, or -1 (400
 * bad-request) with the reason in @detail.
 */
int srv_cas_auto_parse(json_t *body, bool *on, reg_status *st, bool *set,
                       char *detail, size_t detail_len);

/* srv_cas_patch_parse - @body of PATCH /v1/cas/{id} (only those two
 * members, at least one) over the CA's current *@on and *@st: 0, or -1
 * (400 bad-request) with the reason in @detail. */
int srv_cas_patch_parse(json_t *body, bool *on, reg_status *st, char *detail,
                        size_t detail_len);

/* srv_cert_json - a registry entry as the API shows it. */
json_t *srv_cert_json(const reg_cert *c);
json_t *srv_time_json(int64_t t);

#endif
