/* SPDX-License-Identifier: Apache-2.0 */
/* The remote enrollment issuer: p11ca serve's enrollment routes over HTTPS
 * (libevent's evhttp client on bufferevent_openssl, JSON with jansson),
 * the server checked against a CA bundle and its name, the card's own key
 * for mTLS when renewing. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/ui.h>
#include <openssl/x509v3.h>

#include "ca/enroll_remote.h"
#include "ca/internal.h"
#include "common/log.h"

#define MAX_HEADERS_BYTES 16384

struct remote_issuer {
    enroll_issuer base;
    char *host; /* without brackets */
    int port;
    char hostport[300]; /* HOST:PORT for messages and Host: */
    bool host_is_ip;
    char *code; /* secure heap; NULL for mTLS */
    char *profile;
    char *client_id;
    bool cleanup;
    SSL_CTX *ssl_ctx;
    ca_evp evp; /* mTLS: the p11ca provider for the card's key */
    UI_METHOD *ui;
    enroll_pin_fn pin;
    void *pin_arg;
    EVP_PKEY *key;
    X509 *cert;
    char *cacert;           /* --cacert, or NULL: the system's store */
    X509 *issued;           /* from the last issue */
    STACK_OF(X509) * chain; /* from the last issue */
    char refused_key[65];   /* SPKI hash of a CSR nothing was issued for */
};

/* One HTTPS exchange. */
struct xfer {
    struct remote_issuer *ri;
    struct event_base *base;
    struct evhttp_connection *conn;
    struct bufferevent *bev;
    bool done;
    bool have_err;
    enum evhttp_request_error err;
    int sock_err;
    int status;
    char *body; /* NUL-terminated */
    size_t len;
    char retry_after[32];
};

static struct remote_issuer *rem(enroll_issuer *is)
{
    return (struct remote_issuer *)is;
}

/* The provider's PIN prompt (OSSL_STORE passphrase), answered by ri->pin. */
static int ui_read(UI *ui, UI_STRING *uis)
{
    struct remote_issuer *ri = UI_get0_user_data(ui);
    char pin[P11_MAX_PIN_LEN + 1];
    int n, ok = 0;

    if (UI_get_string_type(uis) != UIT_PROMPT
        && UI_get_string_type(uis) != UIT_VERIFY)
        return 1;
    n = ri->pin ? ri->pin(pin, P11_MAX_PIN_LEN, ri->pin_arg) : -1;
    if (n >= 0 && n <= P11_MAX_PIN_LEN)
        ok = UI_set_result_ex(ui, uis, pin, n) == 0;
    OPENSSL_cleanse(pin, sizeof(pin));
    return ok;
}

/* ------------------------------------------------------------------ */
/* One exchange                                                        */
/* ------------------------------------------------------------------ */

static void xfer_error_cb(enum evhttp_request_error err, void *arg)
{
    struct xfer *x = arg;

    x->have_err = true;
    x->err = err;
    x->sock_err = EVUTIL_SOCKET_ERROR();
}

static void xfer_done_cb(struct evhttp_request *req, void *arg)
{
    struct xfer *x = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct evbuffer *in;
    const char *ra;
    size_t n;

    /* A failed connect ends here with status 0 (libevent 2.1 calls no
     * error callback then): the socket's error is still in errno. */
    if (!x->have_err)
        x->sock_err = err;
    x->done = true;
    event_base_loopbreak(x->base);
    if (!req || !(x->status = evhttp_request_get_response_code(req)))
        return;
    ra = evhttp_find_header(evhttp_request_get_input_headers(req),
                            "Retry-After");
    if (ra)
        snprintf(x->retry_after, sizeof(x->retry_after), "%s", ra);
    in = evhttp_request_get_input_buffer(req);
    n = evbuffer_get_length(in);
    /* evhttp stops at the maximum body size; this is a second guard. */
    if (n > ENROLL_REMOTE_MAX_BODY_BYTES || !(x->body = malloc(n + 1)))
        return;
    x->len = (size_t)evbuffer_remove(in, x->body, n);
    x->body[x->len] = '\0';
}

/* The connection: TLS to ri->host, its certificate checked against the
 * bundle and the name (or address) of the URL. */
static int xfer_connect(struct xfer *x)
{
    struct remote_issuer *ri = x->ri;
    SSL *ssl = SSL_new(ri->ssl_ctx);
    X509_VERIFY_PARAM *vp = ssl ? SSL_get0_param(ssl) : NULL;
    struct timeval tv = {ENROLL_REMOTE_CONNECT_TIMEOUT_S, 0};
    int ok = vp != NULL;

    if (ok && ri->host_is_ip)
        ok = X509_VERIFY_PARAM_set1_ip_asc(vp, ri->host);
    else if (ok) {
        X509_VERIFY_PARAM_set_hostflags(vp,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(vp, ri->host, 0)
             && SSL_set_tlsext_host_name(ssl, ri->host);
    }
    if (ok)
        x->bev = bufferevent_openssl_socket_new(x->base, -1, ssl,
                                                BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    if (!x->bev) {
        SSL_free(ssl);
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    bufferevent_openssl_set_allow_dirty_shutdown(x->bev, 1);
    x->conn = evhttp_connection_base_bufferevent_new(
        x->base, NULL, x->bev, ri->host, (ev_uint16_t)ri->port);
    if (!x->conn) {
        bufferevent_free(x->bev);
        x->bev = NULL;
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    evhttp_connection_set_timeout_tv(x->conn, &tv);
    evhttp_connection_set_max_body_size(x->conn, ENROLL_REMOTE_MAX_BODY_BYTES);
    evhttp_connection_set_max_headers_size(x->conn, MAX_HEADERS_BYTES);
    return P11CA_OK;
}

/* Why the exchange brought no answer, as a sentence on ri->hostport.
 * @sent: whether the request may have reached the service. */
static int xfer_failure(struct xfer *x, bool *sent)
{
    struct remote_issuer *ri = x->ri;
    SSL *ssl = x->bev ? bufferevent_openssl_get_ssl(x->bev) : NULL;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = x->bev ? bufferevent_get_openssl_error(x->bev) : 0;
    struct evutil_addrinfo *ai = NULL;
    char buf[256];
    int gai;

    *sent = ssl && SSL_is_init_finished(ssl);
    if (!x->done || (x->have_err && x->err == EVREQ_HTTP_TIMEOUT))
        return p11ca_err_set(
            P11CA_E_IO, "%s did not answer within %d seconds%s", ri->hostport,
            x->done ? ENROLL_REMOTE_CONNECT_TIMEOUT_S
                    : ENROLL_REMOTE_REQUEST_TIMEOUT_S,
            *sent ? ": whether the request was served is unknown" : "");
    if (vr != X509_V_OK)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "the TLS certificate of %s is not trusted (%s): nothing was sent. Give --cacert with the CA that issued the service's certificate.",
            ri->hostport, X509_verify_cert_error_string(vr));
    /* libevent queues SSL_get_error()'s value (lib 0) for a socket error:
     * only a real OpenSSL error is one of TLS. */
    if (e && ERR_GET_LIB(e) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        return p11ca_err_set(P11CA_E_IO, "TLS with %s failed: %s", ri->hostport,
                             buf);
    }
    if (x->have_err && x->err == EVREQ_HTTP_DATA_TOO_LONG)
        return p11ca_err_set(P11CA_E_IO,
                             "the answer of %s is larger than %d bytes",
                             ri->hostport, ENROLL_REMOTE_MAX_BODY_BYTES);
    /* libevent reports a name that does not resolve as a closed
     * connection: look it up again to say so. */
    if (!*sent && !ri->host_is_ip
        && (gai = evutil_getaddrinfo(ri->host, NULL, NULL, &ai)) != 0)
        return p11ca_err_set(P11CA_E_IO, "cannot resolve %s: %s", ri->host,
                             evutil_gai_strerror(gai));
    if (ai)
        evutil_freeaddrinfo(ai);
    /* The connect's own error (ECONNREFUSED...) is consumed by the first
     * read or write of the handshake, which leaves ENOTCONN behind. */
    if (!*sent && (x->sock_err == ENOTCONN || x->sock_err == ECONNREFUSED))
        return p11ca_err_set(
            P11CA_E_IO,
            "cannot connect to %s: connection refused or unreachable (is p11ca serve running there?)",
            ri->hostport);
    if (!*sent && x->sock_err)
        return p11ca_err_set(P11CA_E_IO, "cannot connect to %s: %s",
                             ri->hostport,
                             evutil_socket_error_to_string(x->sock_err));
    return p11ca_err_set(
        P11CA_E_IO, "%s closed the connection without an answer%s",
        ri->hostport, *sent ? "" : " (is it an HTTPS service?)");
}

/*
 * @method @path with @body (JSON, may be NULL) to the service; @x gets the
 * status and the body of the answer.  Returns 0 once an HTTP answer came
 * (any status), else the failure (*sent as in xfer_failure).
 */
static int xfer_run(struct xfer *x, enum evhttp_cmd_type method,
                    const char *path, const char *body, bool *sent)
{
    struct timeval whole = {ENROLL_REMOTE_REQUEST_TIMEOUT_S, 0};
    struct evhttp_request *req = NULL;
    struct evkeyvalq *h;
    int rc;

    *sent = false;
    x->base = event_base_new();
    if (!x->base)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = xfer_connect(x);
    if (rc != P11CA_OK)
        return rc;
    req = evhttp_request_new(xfer_done_cb, x);
    if (!req)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    evhttp_request_set_error_cb(req, xfer_error_cb);
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", x->ri->hostport);
    evhttp_add_header(h, "Accept", "application/json");
    evhttp_add_header(h, "User-Agent", "p11ca-enroll/" PACKAGE_VERSION);
    /* A reference, not a copy: the caller wipes the body (it may hold the
     * enrollment code) once the exchange is over. */
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add_reference(evhttp_request_get_output_buffer(req), body,
                               strlen(body), NULL, NULL);
    }
    /* On failure the request is still ours; a connection that fails at
     * once (a name that does not resolve) has answered it already. */
    if (evhttp_make_request(x->conn, req, method, path) != 0) {
        evhttp_request_free(req);
        return p11ca_err_set(P11CA_E_IO, "cannot send a request to %s",
                             x->ri->hostport);
    }
    if (!x->done) {
        event_base_loopexit(x->base, &whole);
        event_base_dispatch(x->base);
    }
    if (x->done && x->status)
        return P11CA_OK;
    return xfer_failure(x, sent);
}

static void xfer_clear(struct xfer *x)
{
    /* Frees the bufferevent, its SSL and a request still pending. */
    if (x->conn)
        evhttp_connection_free(x->conn);
    if (x->base)
        event_base_free(x->base);
    free(x->body);
    ERR_clear_error();
    memset(x, 0, sizeof(*x));
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */
/* ------------------------------------------------------------------ */

/* A status code of ours for an HTTP error status. */
static int http_rc(int status)
{
    switch (status) {
    case 400:
    case 413:
        return P11CA_E_INPUT;
    case 401:
    case 403:
        return P11CA_E_POLICY;
    case 404:
        return P11CA_E_NOTFOUND;
    case 409:
        return P11CA_E_EXISTS;
    case 429:
        return P11CA_E_RATE;
    case 503:
        return P11CA_E_UNAVAILABLE;
    default:
        return P11CA_E_IO;
    }
}

/* @in, cut to @len - 1 bytes, with control characters as '?': the
 * service's text goes to a terminal. */
static const char *printable(const char *in, char *out, size_t len)
{
    size_t i;

    if (!in)
        return NULL;
    for (i = 0; in[i] && i + 1 < len; i++)
        out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' : in[i];
    out[i] = '\0';
    return out;
}

/* An error answer: its problem details (RFC 9457) detail and code. */
static int problem(struct xfer *x, const char *what)
{
    json_t *j = x->body ? json_loadb(x->body, x->len, 0, NULL) : NULL;
    const char *detail = NULL, *code = NULL;
    char retry[80] = "", dbuf[1024], cbuf[64], rbuf[17];
    int rc;

    if (json_is_object(j)) {
        detail = printable(json_string_value(json_object_get(j, "detail")),
                           dbuf, sizeof(dbuf));
        code = printable(json_string_value(json_object_get(j, "code")), cbuf,
                         sizeof(cbuf));
    }
    if (x->status == 429 && x->retry_after[0])
        snprintf(retry, sizeof(retry), " (Retry-After: %s)",
                 printable(x->retry_after, rbuf, sizeof(rbuf)));
    rc = p11ca_err_set(http_rc(x->status), "%s: %s answered %d%s%s%s: %s%s",
                       what, x->ri->hostport, x->status, code ? " (" : "",
                       code ? code : "", code ? ")" : "",
                       detail ? detail : "no details given", retry);
    json_decref(j);
    return rc;
}

/* The JSON object of a 2xx answer. */
static int answer_json(struct xfer *x, const char *what, json_t **out)
{
    json_error_t err;

    *out = x->body ? json_loadb(x->body, x->len, 0, &err) : NULL;
    if (json_is_object(*out))
        return P11CA_OK;
    json_decref(*out);
    *out = NULL;
    return p11ca_err_set(P11CA_E_IO, "%s: the answer of %s is not JSON", what,
                         x->ri->hostport);
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return x;
}

/* {"certificate": PEM, "chain": [PEM...]} into @out and ri->chain. */
static int take_issued(struct remote_issuer *ri, json_t *j, X509 **out)
{
    json_t *chain = json_object_get(j, "chain"), *v;
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *c = pem_cert(json_string_value(json_object_get(j, "certificate")));
    size_t i;
    int rc = P11CA_OK;

    if (!c || !sk)
        rc = p11ca_err_set(P11CA_E_IO, "the answer of %s holds no certificate",
                           ri->hostport);
    json_array_foreach(chain, i, v)
    {
        X509 *cx = rc == P11CA_OK ? pem_cert(json_string_value(v)) : NULL;

        if (rc == P11CA_OK && (!cx || !sk_X509_push(sk, cx))) {
            X509_free(cx);
            rc = p11ca_err_set(P11CA_E_IO,
                               "the chain in the answer of %s does not parse",
                               ri->hostport);
        }
    }
    if (rc == P11CA_OK) {
        sk_X509_pop_free(ri->chain, X509_free);
        ri->chain = sk;
        sk = NULL;
        *out = c;
        c = NULL;
    }
    sk_X509_pop_free(sk, X509_free);
    X509_free(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The operations                                                      */
/* ------------------------------------------------------------------ */

/* The profile's key types are the service's business: ec:P-256, which
 * every card makes, unless --type. */
static int remote_default_key(enroll_issuer *is, const char *profile,
                              p11_key_spec *out)
{
    (void)is;
    (void)profile;
    if (p11_key_spec_parse("ec:P-256", out) != CKR_OK)
        return p11ca_err_set(P11CA_E_INTERNAL, "no default key type");
    return P11CA_OK;
}

/*
 * What can be checked before the card makes a key: the service answers
 * GET /healthz over TLS with its certificate trusted and its name right
 * (and, for a renewal, our client certificate taken).  The profile, the
 * subject and the code are checked by the service when it issues: it
 * has no route that would check a code without spending it.
 */
static int remote_check(enroll_issuer *is, const enroll_req *rq,
                        const p11_key_spec *spec)
{
    struct remote_issuer *ri = rem(is);
    struct xfer x = {.ri = ri};
    bool sent;
    int rc;

    (void)spec;
    if (rq->days)
        return p11ca_err_set(
            P11CA_E_USAGE,
            "--days is not sent to the service: its profile sets the validity");
    rc = xfer_run(&x, EVHTTP_REQ_GET, "/healthz", NULL, &sent);
    if (rc == P11CA_OK && (x.status < 200 || x.status > 299))
        rc = problem(&x, "the service is not ready");
    xfer_clear(&x);
    return rc;
}

/*
 * The service has no route for a device to look certificates up by key
 * (nor to revoke them): an interrupted enrollment cannot be resumed from
 * it.  For --cleanup (ri->cleanup) the answer is "none known", which the
 * command says before it runs: the key is deleted and what the service
 * may have issued for it stays for an operator to revoke.
 */
static int remote_find_for_key(enroll_issuer *is, const char *client_id,
                               const char *key_sha256, X509 **out)
{
    (void)client_id;
    (void)key_sha256;
    *out = NULL;
    if (rem(is)->cleanup)
        return P11CA_OK;
    return p11ca_err_set(
        P11CA_E_USAGE,
        "%s offers no look-up of the certificate issued for a key: an unfinished enrollment cannot be resumed from it; run with --cleanup to delete the key and enroll again",
        enroll_issuer_name(is));
}

/* The CSR (DER) as PEM, and the SHA-256 of its key. */
static char *csr_pem(const unsigned char *der, size_t len, char hex[65])
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL, *data = NULL;
    long n = 0;

    hex[0] = '\0';
    if (req && b && PEM_write_bio_X509_REQ(b, req)
        && (n = BIO_get_mem_data(b, &data)) > 0
        && (pem = malloc((size_t)n + 1))) {
        memcpy(pem, data, (size_t)n);
        pem[n] = '\0';
        if (enroll_spki_sha256(X509_REQ_get0_pubkey(req), hex) != P11CA_OK)
            hex[0] = '\0';
    }
    X509_REQ_free(req);
    BIO_free(b);
    return pem;
}

/* The request body: the CSR, and with a code the code and what the user
 * asked for (the service checks them against the code). */
static char *issue_body(struct remote_issuer *ri, const char *pem)
{
    json_t *j = json_pack("{s:s}", "csr", pem);
    char *s = NULL;

    if (j && ri->code
        && (json_object_set_new(j, "code", json_string(ri->code))
            || (ri->profile
                && json_object_set_new(j, "profile", json_string(ri->profile)))
            || (ri->client_id
                && json_object_set_new(j, "client_id",
                                       json_string(ri->client_id)))))
        goto out;
    if (j)
        s = json_dumps(j, JSON_COMPACT);
out:
    /* The code's copy in @j too (remote_issue wipes the text). */
    if (json_is_string(json_object_get(j, "code")))
        OPENSSL_cleanse((char *)json_string_value(json_object_get(j, "code")),
                        json_string_length(json_object_get(j, "code")));
    json_decref(j);
    return s;
}

/*
 * POST /v1/enroll (with the code) or POST /v1/renew (mTLS as the current
 * certificate).  The service records the certificate before it answers
 * (201); an error answer (4xx) means nothing was issued, and so does an
 * exchange that never got past the TLS handshake: the key is then noted
 * as refused (enroll_remote_refused).
 */
static int remote_issue(enroll_issuer *is, const enroll_req *rq,
                        const unsigned char *csr, size_t len, X509 **out)
{
    struct remote_issuer *ri = rem(is);
    const char *path = ri->code ? "/v1/enroll" : "/v1/renew";
    struct xfer x = {.ri = ri};
    char hex[65], *pem = csr_pem(csr, len, hex), *body = NULL;
    json_t *j = NULL;
    bool sent = false;
    int rc;

    (void)rq;
    *out = NULL;
    ri->refused_key[0] = '\0';
    body = pem ? issue_body(ri, pem) : NULL;
    if (!body) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "cannot encode the request");
        goto out;
    }
    rc = xfer_run(&x, EVHTTP_REQ_POST, path, body, &sent);
    if (rc == P11CA_OK && x.status != 201 && x.status != 200) {
        sent = x.status >= 500;
        rc = problem(&x, ri->code ? "enrollment refused" : "renewal refused");
    } else if (rc == P11CA_OK) {
        sent = true;
        rc = answer_json(&x, path, &j);
    }
    if (rc == P11CA_OK)
        rc = take_issued(ri, j, out);
    if (rc == P11CA_OK && X509_up_ref(*out)) {
        X509_free(ri->issued);
        ri->issued = *out;
    }
    if (rc != P11CA_OK && !sent)
        snprintf(ri->refused_key, sizeof(ri->refused_key), "%s", hex);
out:
    if (body)
        OPENSSL_cleanse(body, strlen(body));
    free(body);
    free(pem);
    json_decref(j);
    xfer_clear(&x);
    return rc;
}

/* The chain of the last answer (the service sends it with the
 * certificate). */
static int remote_chain(enroll_issuer *is, STACK_OF(X509) * *out)
{
    struct remote_issuer *ri = rem(is);
    STACK_OF(X509) *sk = ri->chain ? X509_chain_up_ref(ri->chain) : NULL;

    if (!sk)
        return p11ca_err_set(P11CA_E_INTERNAL, "%s sent no CA certificates",
                             enroll_issuer_name(is));
    *out = sk;
    return P11CA_OK;
}

/* One record from the JSON of GET /v1/certs/{serial}. */
static int record_from(json_t *j, reg_cert *out)
{
    const char *serial = json_string_value(json_object_get(j, "serial"));
    const char *st = json_string_value(json_object_get(j, "status"));
    const char *cid = json_string_value(json_object_get(j, "client_id"));
    const char *prof = json_string_value(json_object_get(j, "profile"));
    int rc;

    if (!serial || !st)
        return p11ca_err_set(P11CA_E_IO, "the record has no serial or status");
    rc = reg_serial_normalise(serial, out->serial, sizeof(out->serial));
    if (rc == P11CA_OK)
        rc = reg_status_parse(st, &out->status);
    if (rc == P11CA_OK
        && ((cid && !(out->client_id = strdup(cid)))
            || (prof && !(out->profile = strdup(prof)))))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return rc;
}

/*
 * GET /v1/certs/{serial}: a device may read its own certificate's record
 * (serial, status, client ID, profile), which is what a renewal needs.
 * Without the card's certificate (an enrollment with a code) there is no
 * one to ask as.
 */
static int remote_get(enroll_issuer *is, const char *serial, reg_cert *out)
{
    struct remote_issuer *ri = rem(is);
    struct xfer x = {.ri = ri};
    char norm[64], path[96];
    json_t *j = NULL;
    bool sent;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!ri->key)
        return p11ca_err_set(
            P11CA_E_INTERNAL,
            "%s is not asked for records without the card's certificate",
            enroll_issuer_name(is));
    rc = reg_serial_normalise(serial, norm, sizeof(norm));
    if (rc != P11CA_OK)
        return rc;
    snprintf(path, sizeof(path), "/v1/certs/%s", norm);
    rc = xfer_run(&x, EVHTTP_REQ_GET, path, NULL, &sent);
    if (rc == P11CA_OK && x.status != 200)
        rc = problem(&x, "looking up the card's certificate");
    else if (rc == P11CA_OK)
        rc = answer_json(&x, path, &j);
    if (rc == P11CA_OK)
        rc = record_from(j, out);
    if (rc != P11CA_OK)
        reg_cert_clear(out);
    json_decref(j);
    xfer_clear(&x);
    return rc;
}

static int tls_ctx_new(struct remote_issuer *ri, X509 *cert, EVP_PKEY *key,
                       SSL_CTX **out);
static int tls_ctx_fill(struct remote_issuer *ri, SSL_CTX *ctx, X509 *cert,
                        EVP_PKEY *key);

/*
 * POST /v1/renew records the new certificate not activated, linked to the
 * old one, which keeps working: an answer lost on the way locks no card
 * out.  The service swaps them (the client ID moved, the old one revoked
 * or kept as its profile says) when the card shows it holds the new
 * certificate: one TLS connection with it and its key @key_uri, which
 * reads the new record (GET /v1/certs/{serial}) and must find it
 * activated.
 */
static int remote_supersede(enroll_issuer *is, const char *serial,
                            const char *old, const char *key_uri)
{
    struct remote_issuer *ri = rem(is);
    SSL_CTX *ctx = NULL, *was = ri->ssl_ctx;
    EVP_PKEY *key = NULL;
    reg_cert rec = {0};
    char was_shown[REG_SERIAL_TEXT_MAX];
    int rc = P11CA_OK;

    reg_serial_text(old, was_shown, sizeof(was_shown));
    if (!ri->key || !ri->issued || !key_uri)
        return p11ca_err_set(P11CA_E_INTERNAL,
                             "%s: no renewal to confirm for certificate %s",
                             enroll_issuer_name(is), serial);
    key = ca_store_load_pkey(ri->evp.libctx, key_uri, ri->ui, ri);
    if (!key)
        rc = ca_ossl_err(P11CA_E_TOKEN, "cannot load the card's new key %s",
                         key_uri);
    if (rc == P11CA_OK)
        rc = tls_ctx_new(ri, ri->issued, key, &ctx);
    if (rc == P11CA_OK) {
        ri->ssl_ctx = ctx;
        rc = remote_get(is, serial, &rec);
        ri->ssl_ctx = was;
    }
    if (rc == P11CA_OK && rec.status != REG_ACTIVATED)
        rc = p11ca_err_set(P11CA_E_STATE, "the new certificate is %s",
                           reg_status_name(rec.status));
    if (rc != P11CA_OK)
        rc = p11ca_err_set(
            rc,
            "%s did not confirm the renewal of certificate %s by %s (%s); the old certificate still works: run the renewal again",
            enroll_issuer_name(is), was_shown, serial, p11ca_err_message());
    reg_cert_clear(&rec);
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rc;
}

/* Revocation is an operator's route; a device cannot revoke. */
static int remote_retire(enroll_issuer *is, const char *serial, const char *why)
{
    (void)why;
    return p11ca_err_set(
        P11CA_E_POLICY,
        "a card cannot revoke certificate %s through %s: ask an operator (p11ca cert revoke %s)",
        serial, enroll_issuer_name(is), serial);
}

static void remote_free(enroll_issuer *is)
{
    struct remote_issuer *ri = rem(is);

    if (ri->code)
        OPENSSL_secure_clear_free(ri->code, ENROLL_REMOTE_MAX_CODE_LEN + 1);
    free(ri->host);
    free(ri->profile);
    free(ri->client_id);
    SSL_CTX_free(ri->ssl_ctx);
    EVP_PKEY_free(ri->key);
    X509_free(ri->cert);
    X509_free(ri->issued);
    free(ri->cacert);
    sk_X509_pop_free(ri->chain, X509_free);
    ca_evp_clear(&ri->evp);
    UI_destroy_method(ri->ui);
    free(ri);
}

static const struct enroll_issuer_ops remote_ops = {
    .kind = "registry service",
    .default_key = remote_default_key,
    .check = remote_check,
    .find_for_key = remote_find_for_key,
    .issue = remote_issue,
    .chain = remote_chain,
    .get = remote_get,
    .supersede = remote_supersede,
    .retire = remote_retire,
    .free = remote_free,
};

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

/* https://HOST[:PORT][/] into ri->host, ri->port, ri->hostport. */
static int parse_url(struct remote_issuer *ri, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    unsigned char addr[16];
    int rc = P11CA_OK;

    if (!scheme || strcasecmp(scheme, "https") != 0 || !host || !*host)
        rc = p11ca_err_set(P11CA_E_USAGE,
                           "--server \"%s\": give https://HOST[:PORT]", url);
    else if ((path && *path && strcmp(path, "/") != 0)
             || evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u)
             || evhttp_uri_get_userinfo(u))
        rc = p11ca_err_set(
            P11CA_E_USAGE,
            "--server \"%s\": give only https://HOST[:PORT], without a path, query or user",
            url);
    if (rc != P11CA_OK)
        goto out;
    ri->port = evhttp_uri_get_port(u) < 0 ? 443 : evhttp_uri_get_port(u);
    ri->host = strdup(host);
    if (!ri->host) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    ri->host_is_ip = inet_pton(AF_INET, host, addr) == 1
                     || inet_pton(AF_INET6, host, addr) == 1;
    snprintf(ri->hostport, sizeof(ri->hostport),
             strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, ri->port);
    snprintf(ri->base.name, sizeof(ri->base.name), "the service at %s",
             ri->hostport);
out:
    if (u)
        evhttp_uri_free(u);
    return rc;
}

/* The card's key (OSSL_STORE through the p11ca provider) and certificate
 * for mTLS: the key signs the handshake on the card. */
static int load_identity(struct remote_issuer *ri, const enroll_remote_conf *c)
{
    ca_prov_conf pc = {.module = c->module,
                       .cache_pin = true,
                       .single_session = c->single_session};
    int rc;

    ri->pin = c->pin;
    ri->pin_arg = c->pin_arg;
    ri->ui = UI_create_method("p11ca enrollment client key");
    if (!ri->ui || UI_method_set_reader(ri->ui, ui_read) != 0)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = ca_evp_setup(&ri->evp, &pc);
    if (rc != P11CA_OK)
        return rc;
    ri->key = ca_store_load_pkey(ri->evp.libctx, c->key_uri, ri->ui, ri);
    if (!ri->key)
        return ca_ossl_err(P11CA_E_TOKEN, "cannot load the card's key %s",
                           c->key_uri);
    ri->cert = X509_dup(c->cert);
    return ri->cert ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

/* A TLS client context: TLS 1.2 or later, the server verified against
 * the bundle (or the system's store), @cert and @key (may be NULL) for
 * mTLS. */
static int tls_ctx_new(struct remote_issuer *ri, X509 *cert, EVP_PKEY *key,
                       SSL_CTX **out)
{
    SSL_CTX *ctx =
        SSL_CTX_new_ex(key ? ri->evp.libctx : NULL, NULL, TLS_client_method());
    int rc = tls_ctx_fill(ri, ctx, cert, key);

    *out = NULL;
    if (rc != P11CA_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return P11CA_OK;
}

static int tls_setup(struct remote_issuer *ri, const char *cacert)
{
    if (cacert && !(ri->cacert = strdup(cacert)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return tls_ctx_new(ri, ri->cert, ri->key, &ri->ssl_ctx);
}

static int tls_ctx_fill(struct remote_issuer *ri, SSL_CTX *ctx, X509 *cert,
                        EVP_PKEY *key)
{
    const char *cacert = ri->cacert;
    FILE *f;

    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return ca_ossl_err(P11CA_E_INTERNAL, "cannot make a TLS context");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cacert) {
        /* A clear message for a missing file before OpenSSL's. */
        if (!(f = fopen(cacert, "r")))
            return p11ca_err_set(P11CA_E_INPUT, "--cacert %s: %s", cacert,
                                 strerror(errno));
        fclose(f);
        if (!SSL_CTX_load_verify_locations(ctx, cacert, NULL))
            return ca_ossl_err(P11CA_E_INPUT,
                               "--cacert %s: no PEM certificates in it",
                               cacert);
    } else if (!SSL_CTX_set_default_verify_paths(ctx)) {
        return ca_ossl_err(P11CA_E_INTERNAL,
                           "cannot load the system's CA certificates");
    }
    if (key
        && (!SSL_CTX_use_certificate(ctx, cert)
            || !SSL_CTX_use_PrivateKey(ctx, key)
            || !SSL_CTX_check_private_key(ctx)))
        return ca_ossl_err(
            P11CA_E_TOKEN,
            "the card's certificate and key do not make a TLS client identity");
    return P11CA_OK;
}

static int copy_code(struct remote_issuer *ri, const char *code)
{
    size_t n = strlen(code);

    if (!n || n > ENROLL_REMOTE_MAX_CODE_LEN)
        return p11ca_err_set(P11CA_E_USAGE,
                             "the enrollment code must be 1 to %d bytes",
                             ENROLL_REMOTE_MAX_CODE_LEN);
    ri->code = OPENSSL_secure_zalloc(ENROLL_REMOTE_MAX_CODE_LEN + 1);
    if (!ri->code)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    memcpy(ri->code, code, n);
    return P11CA_OK;
}

int enroll_issuer_remote(const enroll_remote_conf *c, enroll_issuer **out)
{
    struct remote_issuer *ri = calloc(1, sizeof(*ri));
    int rc;

    *out = NULL;
    if (!ri)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    ri->base.ops = &remote_ops;
    ri->cleanup = c->cleanup;
    rc = parse_url(ri, c->url);
    if (rc == P11CA_OK && c->code)
        rc = copy_code(ri, c->code);
    if (rc == P11CA_OK
        && ((c->profile && !(ri->profile = strdup(c->profile)))
            || (c->client_id && !(ri->client_id = strdup(c->client_id)))))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK && c->key_uri && c->cert)
        rc = load_identity(ri, c);
    if (rc == P11CA_OK)
        rc = tls_setup(ri, c->cacert);
    if (rc != P11CA_OK) {
        remote_free(&ri->base);
        return rc;
    }
    *out = &ri->base;
    return P11CA_OK;
}

bool enroll_remote_refused(enroll_issuer *is, const char *key_sha256)
{
    return is && is->ops == &remote_ops && rem(is)->refused_key[0]
           && strcmp(rem(is)->refused_key, key_sha256) == 0;
}
