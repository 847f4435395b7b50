/* SPDX-License-Identifier: Apache-2.0 */
/* The OCSP responder's answers: requests checked (size, CertIDs,
 * extensions, RFC 9654 nonces, the issuer), each certificate's status from
 * the registry, responses signed through EVP by the CA key or a delegated
 * signer, the cache looked up first. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "ca/ocsp_int.h"
#include "common/log.h"

#define REASON_SUPERSEDED 4
#define REASON_HOLD       6

/* A request taken apart. */
struct req {
    OCSP_REQUEST *req;
    int n;
    bool nonce;
};

static int req_parse(ca_ocsp *o, const unsigned char *der, size_t len,
                     struct req *q, char *why, size_t wl);

const char *ca_ocsp_rstatus_name(int status)
{
    switch (status) {
    case CA_OCSP_SUCCESSFUL:
        return "successful";
    case CA_OCSP_MALFORMED:
        return "malformedRequest";
    case CA_OCSP_INTERNAL_ERROR:
        return "internalError";
    case CA_OCSP_TRY_LATER:
        return "tryLater";
    case CA_OCSP_SIG_REQUIRED:
        return "sigRequired";
    case CA_OCSP_UNAUTHORIZED:
        return "unauthorized";
    default:
        return "unknown status";
    }
}

/* ------------------------------------------------------------------ */
/* The signing key                                                     */
/* ------------------------------------------------------------------ */

/* The signing key (o->mu held): the CA key, through the handle, or the
 * delegated signer's, checked like the CA key and against its
 * certificate. */
static int signer_load(ca_ocsp *o)
{
    ca *c = o->c;
    ca_key *k = NULL;
    char msg[512];
    int rc;

    if (!o->signer_key)
        return ca_signing_key(c, &o->key);
    rc = ca_key_new(c->module, c->pin_source ? c->pin_source : c->s.pin_source,
                    &k);
    if (rc == P11CA_OK) {
        ca_key_set_token_wait(k, c->s.token_wait_ms);
        rc = ca_key_load(k, o->signer_key, o->signer_sha256);
    }
    if (rc != P11CA_OK) {
        /* The key's messages speak of "the CA key": say which it is. */
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        rc = p11ca_err_set(
            rc, "the OCSP signer's key (signer_key of [ ocsp ]): %s", msg);
        ca_key_free(k);
        return rc;
    }
    o->key = k;
    return P11CA_OK;
}

/* The key that signs, loaded on first use; a delegated signer's
 * certificate must be valid at @now. */
static int signer_get(ca_ocsp *o, int64_t now, ca_key **out)
{
    time_t t = (time_t)now;
    int rc = P11CA_OK;

    *out = NULL;
    pthread_mutex_lock(&o->mu);
    if (!o->key)
        rc = signer_load(o);
    *out = o->key;
    pthread_mutex_unlock(&o->mu);
    if (rc == P11CA_OK && !ca_ocsp_signer_valid(o, (int64_t)t))
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "the OCSP signer's certificate (signer_cert of [ ocsp ]) is not valid now: make a new one with p11ca ocsp signer init");
    return rc;
}

bool ca_ocsp_signer_valid(const ca_ocsp *o, int64_t now)
{
    time_t t = (time_t)now;

    return !o->signer_key
           || (X509_cmp_time(X509_get0_notAfter(o->signer), &t) >= 0
               && X509_cmp_time(X509_get0_notBefore(o->signer), &t) <= 0);
}

int ca_ocsp_load_key(ca_ocsp *o)
{
    ca_key *k = NULL;

    return signer_get(o, (int64_t)time(NULL), &k);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* Lower-case hex of a non-negative serial without leading zeros, as the
 * registry writes it; false for a negative or overlong one (never ours). */
static bool serial_hex(const ASN1_INTEGER *sn, char out[64])
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *p = ASN1_STRING_get0_data(sn);
    int len = ASN1_STRING_length(sn), k = 0;

    if (ASN1_STRING_type(sn) != V_ASN1_INTEGER || len < 0)
        return false;
    while (len > 0 && *p == 0) {
        p++;
        len--;
    }
    if (len > 31)
        return false;
    for (int i = 0; i < len; i++) {
        if (k > 0 || p[i] >> 4)
            out[k++] = hx[p[i] >> 4];
        out[k++] = hx[p[i] & 15];
    }
    if (k == 0)
        out[k++] = '0';
    out[k] = '\0';
    return true;
}

/* RFC 9654: extnValue holds the DER of Nonce ::= OCTET STRING
 * (SIZE(1..128)). */
static bool nonce_ok(X509_EXTENSION *ext, char *why, size_t wl)
{
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    const unsigned char *p = ASN1_STRING_get0_data(v);
    const unsigned char *end = p + ASN1_STRING_length(v);
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &p, end - p);
    int n = inner ? ASN1_STRING_length(inner) : -1;

    ASN1_OCTET_STRING_free(inner);
    if (n < 0 || p != end)
        snprintf(why, wl, "the nonce is not an OCTET STRING (RFC 6960 4.4.1)");
    else if (n < 1 || n > CA_OCSP_MAX_NONCE)
        snprintf(why, wl, "a nonce of %d octets (RFC 9654: 1 to %d)", n,
                 CA_OCSP_MAX_NONCE);
    return n >= 1 && n <= CA_OCSP_MAX_NONCE && p == end;
}

/* The request's extensions: one valid nonce at most, and nothing critical
 * that we do not know (RFC 6960 4.4). */
static bool req_exts(struct req *q, char *why, size_t wl)
{
    int n = OCSP_REQUEST_get_ext_count(q->req);

    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = OCSP_REQUEST_get_ext(q->req, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

        if (nid == NID_id_pkix_OCSP_Nonce) {
            if (q->nonce) {
                snprintf(why, wl, "two nonces");
                return false;
            }
            if (!nonce_ok(ext, why, wl))
                return false;
            q->nonce = true;
        } else if (X509_EXTENSION_get_critical(ext)) {
            snprintf(why, wl,
                     "a critical request extension it does not support");
            return false;
        }
    }
    return true;
}

static bool onereq_ok(OCSP_ONEREQ *one, char *why, size_t wl)
{
    int n = OCSP_ONEREQ_get_ext_count(one);

    for (int i = 0; i < n; i++)
        if (X509_EXTENSION_get_critical(OCSP_ONEREQ_get_ext(one, i))) {
            snprintf(why, wl,
                     "a critical singleRequestExtension it does not support");
            return false;
        }
    return true;
}

/* Whether @cid names this CA as the issuer, with any of its hashes. */
static bool issuer_ours(const ca_ocsp *o, OCSP_CERTID *cid)
{
    ASN1_OCTET_STRING *name = NULL, *key = NULL;
    ASN1_OBJECT *md = NULL;
    int nid;

    if (!OCSP_id_get0_info(&name, &md, &key, NULL, cid))
        return false;
    nid = OBJ_obj2nid(md);
    for (size_t i = 0; i < o->n_hashes; i++) {
        const struct ca_ocsp_issuer_hash *h = &o->hashes[i];
        if (h->nid == nid && ASN1_STRING_length(name) == (int)h->len
            && ASN1_STRING_length(key) == (int)h->len
            && memcmp(ASN1_STRING_get0_data(name), h->name, h->len) == 0
            && memcmp(ASN1_STRING_get0_data(key), h->key, h->len) == 0)
            return true;
    }
    return false;
}

/* Take @der apart: CA_OCSP_SUCCESSFUL, CA_OCSP_MALFORMED or
 * CA_OCSP_UNAUTHORIZED, with the reason in @why. */
static int req_parse(ca_ocsp *o, const unsigned char *der, size_t len,
                     struct req *q, char *why, size_t wl)
{
    const unsigned char *p = der;
    int i;

    memset(q, 0, sizeof(*q));
    if (len == 0 || len > CA_OCSP_MAX_REQUEST) {
        snprintf(why, wl, "a request of %zu bytes (1 to %d)", len,
                 CA_OCSP_MAX_REQUEST);
        return CA_OCSP_MALFORMED;
    }
    q->req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    ERR_clear_error();
    if (!q->req || p != der + len) {
        snprintf(why, wl, "not a DER OCSPRequest");
        return CA_OCSP_MALFORMED;
    }
    q->n = OCSP_request_onereq_count(q->req);
    if (q->n < 1 || q->n > CA_OCSP_MAX_CERTIDS) {
        snprintf(why, wl, "%d CertIDs (1 to %d)", q->n, CA_OCSP_MAX_CERTIDS);
        return CA_OCSP_MALFORMED;
    }
    if (!req_exts(q, why, wl))
        return CA_OCSP_MALFORMED;
    for (i = 0; i < q->n; i++)
        if (!onereq_ok(OCSP_request_onereq_get0(q->req, i), why, wl))
            return CA_OCSP_MALFORMED;
    for (i = 0; i < q->n; i++)
        if (!issuer_ours(
                o, OCSP_onereq_get0_id(OCSP_request_onereq_get0(q->req, i)))) {
            snprintf(
                why, wl,
                "CertID %d names an issuer this responder does not answer for",
                i + 1);
            return CA_OCSP_UNAUTHORIZED;
        }
    return CA_OCSP_SUCCESSFUL;
}

/* A request answered from the cache: one CertID, and no nonce to echo. */
static bool cacheable(const ca_ocsp *o, const struct req *q)
{
    return o->cache && q->n == 1 && (!q->nonce || o->ignore_nonce);
}

/* The cache key of @cid: its serial as the registry writes it and its DER
 * (malloc'd by OpenSSL). */
static bool certid_key(OCSP_CERTID *cid, char serial[64], unsigned char **der,
                       int *len)
{
    ASN1_INTEGER *sn = NULL;

    *der = NULL;
    if (!OCSP_id_get0_info(NULL, NULL, NULL, &sn, cid)
        || !serial_hex(sn, serial))
        return false;
    *len = i2d_OCSP_CERTID(cid, der);
    return *len > 0;
}

static bool cache_get(ca_ocsp *o, const struct req *q, int64_t now,
                      ca_ocsp_resp **out)
{
    OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(q->req, 0));
    unsigned char *der = NULL;
    char serial[64];
    int len = 0;
    bool hit = certid_key(cid, serial, &der, &len)
               && ca_ocsp_cache_get(o->cache, o->ca_id, serial, der,
                                    (size_t)len, now, out);

    OPENSSL_free(der);
    return hit;
}

bool ca_ocsp_lookup(ca_ocsp *o, const unsigned char *der, size_t len,
                    int64_t now, ca_ocsp_resp **out)
{
    struct req q;
    char why[256];
    int st = req_parse(o, der, len, &q, why, sizeof(why));
    bool hit;

    *out = NULL;
    if (st != CA_OCSP_SUCCESSFUL) {
        *out = ca_ocsp_resp_ref(o->err[st]);
        hit = true;
    } else {
        hit = cacheable(o, &q) && cache_get(o, &q, now, out);
    }
    OCSP_REQUEST_free(q.req);
    return hit;
}

/* ------------------------------------------------------------------ */
/* Certificate status                                                  */
/* ------------------------------------------------------------------ */

static int hold_since(const reg_history *h, void *arg)
{
    int64_t *at = arg;

    if (h->to == REG_NOT_ACTIVATED || h->to == REG_REGISTERED_NOT_ACTIVATED)
        *at = h->at;
    return 0;
}

/* What the registry says of (this CA, @serial) at @now, as OCSP says it. */
int ca_ocsp_cert_state(ca_ocsp *o, reg *r, const char *serial, int64_t now,
                       ca_ocsp_state *st)
{
    reg_cert rc = {0};
    int64_t since;
    int err = reg_get(r, o->ca_id, serial, &rc);

    *st = (ca_ocsp_state){V_OCSP_CERTSTATUS_UNKNOWN, -1, 0, 0, 0};
    if (err == P11CA_E_NOTFOUND || err == P11CA_E_INPUT) {
        p11ca_err_clear();
        return P11CA_OK;
    }
    if (err != P11CA_OK)
        return err;
    st->status = V_OCSP_CERTSTATUS_GOOD;
    if (rc.status == REG_REVOKED) {
        *st = (ca_ocsp_state){V_OCSP_CERTSTATUS_REVOKED, rc.reason,
                              rc.revoked_at, rc.invalidity, 0};
    } else if (rc.revoke_after > 0 && rc.revoke_after <= now) {
        /* Superseded with a grace period that is over: the registry
         * records it at its next write; OCSP says it now. */
        *st = (ca_ocsp_state){V_OCSP_CERTSTATUS_REVOKED, REASON_SUPERSEDED,
                              rc.revoke_after, 0, 0};
    } else if (o->hold
               && (rc.status == REG_NOT_ACTIVATED
                   || rc.status == REG_REGISTERED_NOT_ACTIVATED)) {
        since = rc.recorded_at;
        err = reg_history_list(r, o->ca_id, rc.serial, hold_since, &since);
        *st = (ca_ocsp_state){V_OCSP_CERTSTATUS_REVOKED, REASON_HOLD, since, 0,
                              0};
    }
    if (st->status == V_OCSP_CERTSTATUS_GOOD && rc.revoke_after > now)
        st->until = rc.revoke_after;
    reg_cert_clear(&rc);
    return err;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

/* nextUpdate: next_update after @now, but no later than a scheduled
 * revocation or the end of the delegated signer's certificate. */
static int64_t next_update_of(const ca_ocsp *o, const ca_ocsp_state *st,
                              int64_t now)
{
    int64_t next = now + o->next_update, end = 0;
    struct tm tm;

    if (st->until > now && st->until < next)
        next = st->until;
    if (o->signer_key
        && ASN1_TIME_to_tm(X509_get0_notAfter(o->signer), &tm) == 1) {
        end = (int64_t)timegm(&tm);
        if (end > now && end < next)
            next = end;
    }
    return next;
}

static int add_single(ca_ocsp *o, OCSP_BASICRESP *bs, OCSP_CERTID *cid,
                      const ca_ocsp_state *st, int64_t now, int64_t *next)
{
    ASN1_TIME *thisupd = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *nextupd = NULL, *rev = NULL;
    ASN1_GENERALIZEDTIME *inv = NULL;
    OCSP_SINGLERESP *single = NULL;
    bool revoked = st->status == V_OCSP_CERTSTATUS_REVOKED;
    int ok;

    *next = next_update_of(o, st, now);
    nextupd = ASN1_TIME_set(NULL, (time_t)*next);
    if (revoked)
        rev = ASN1_TIME_set(NULL, (time_t)st->revoked_at);
    /* Reason "unspecified" is left out, as in the CRL (RFC 5280 5.3.1). */
    ok = thisupd && nextupd && (!revoked || rev)
         && (single = OCSP_basic_add1_status(bs, cid, st->status,
                                             revoked && st->reason > 0
                                                 ? st->reason
                                                 : OCSP_REVOKED_STATUS_NOSTATUS,
                                             rev, thisupd, nextupd));
    if (ok && revoked && st->invalidity > 0)
        ok = (inv = ASN1_GENERALIZEDTIME_set(NULL, (time_t)st->invalidity))
             && OCSP_SINGLERESP_add1_ext_i2d(single, NID_invalidity_date, inv,
                                             0, 0);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    ASN1_TIME_free(rev);
    ASN1_GENERALIZEDTIME_free(inv);
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_NOMEM, "cannot make an OCSP response");
}

/* A signing context kept from a signature before, or NULL. */
static EVP_MD_CTX *mctx_take(ca_ocsp *o)
{
    EVP_MD_CTX *m = NULL;

    pthread_mutex_lock(&o->mu);
    if (o->n_mctx)
        m = o->mctx[--o->n_mctx];
    pthread_mutex_unlock(&o->mu);
    return m;
}

/* Keep @m for the next signature (freed when enough are kept). */
static void mctx_give(ca_ocsp *o, EVP_MD_CTX *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&o->mu);
    if (o->n_mctx < CA_OCSP_SIGN_CTXS) {
        o->mctx[o->n_mctx++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&o->mu);
    EVP_MD_CTX_free(m);
}

/* Sign @bs and encode it as a successful OCSPResponse. */
static int sign_encode(ca_ocsp *o, OCSP_BASICRESP *bs, int64_t now,
                       int64_t this_upd, int64_t next_upd, ca_ocsp_resp **out)
{
    unsigned long flags = OCSP_RESPID_KEY | OCSP_NOTIME;
    OCSP_RESPONSE *resp = NULL;
    unsigned char *der = NULL;
    EVP_MD_CTX *mctx = NULL;
    ca_key *k = NULL;
    int len = -1;
    int rc = signer_get(o, now, &k);

    /* producedAt from the caller's clock, like thisUpdate: OpenSSL has no
     * setter, and OCSP_NOTIME leaves the field to us. */
    if (rc == P11CA_OK
        && !ASN1_GENERALIZEDTIME_set(
            (ASN1_GENERALIZEDTIME *)OCSP_resp_get0_produced_at(bs),
            (time_t)now))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot make an OCSP response");
    /* The CA signing for itself sends no certificate (the client has it);
     * a delegated signer's certificate goes with every response. */
    if (!o->signer_key)
        flags |= OCSP_NOCERTS;
    if (rc == P11CA_OK) {
        mctx = mctx_take(o);
        rc = ca_key_sign_ocsp_ctx(k, o->digest, &mctx, bs, o->signer, NULL,
                                  flags);
        mctx_give(o, mctx);
    }
    if (rc == P11CA_OK
        && (!(resp = OCSP_response_create(CA_OCSP_SUCCESSFUL, bs))
            || (len = i2d_OCSP_RESPONSE(resp, &der)) <= 0
            || !(*out = ca_ocsp_resp_new(der, (size_t)len, CA_OCSP_SUCCESSFUL,
                                         now, this_upd, next_upd))))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot encode an OCSP response");
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    return rc;
}

/* The error response for a failure to answer: the token or the registry
 * may come back (tryLater); anything else needs the operator. */
static void failed(ca_ocsp *o, int rc, ca_ocsp_resp **out, ca_ocsp_info *info)
{
    int st = rc == P11CA_E_TOKEN || rc == P11CA_E_PIN || rc == P11CA_E_REGISTRY
                     || rc == P11CA_E_UNAVAILABLE
                 ? CA_OCSP_TRY_LATER
                 : CA_OCSP_INTERNAL_ERROR;

    info->rc = rc;
    snprintf(info->why, sizeof(info->why), "%s", p11ca_err_message());
    LOG_ERR(CA, "OCSP: answering %s: %s", ca_ocsp_rstatus_name(st), info->why);
    *out = ca_ocsp_resp_ref(o->err[st]);
}

/* Answer @ids (@n CertIDs of this CA) from @r, signed; the nonce of
 * @nonce_of (may be NULL) echoed.  @first gets the first one's state. */
int ca_ocsp_sign(ca_ocsp *o, reg *r, OCSP_CERTID **ids, int n,
                 OCSP_REQUEST *nonce_of, int64_t now, ca_ocsp_resp **out,
                 ca_ocsp_state *first, ca_ocsp_info *info)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    ASN1_INTEGER *sn = NULL;
    ca_ocsp_state st;
    char serial[64];
    int64_t next = 0, next0 = 0;
    int rc = bs ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    *out = NULL;
    for (int i = 0; rc == P11CA_OK && i < n; i++) {
        st = (ca_ocsp_state){V_OCSP_CERTSTATUS_UNKNOWN, -1, 0, 0, 0};
        if (OCSP_id_get0_info(NULL, NULL, NULL, &sn, ids[i])
            && serial_hex(sn, serial))
            rc = ca_ocsp_cert_state(o, r, serial, now, &st);
        if (rc == P11CA_OK)
            rc = add_single(o, bs, ids[i], &st, now, &next);
        if (i == 0) {
            *first = st;
            next0 = next;
        }
        info->good += st.status == V_OCSP_CERTSTATUS_GOOD;
        info->revoked += st.status == V_OCSP_CERTSTATUS_REVOKED;
        info->unknown += st.status == V_OCSP_CERTSTATUS_UNKNOWN;
    }
    if (rc == P11CA_OK && nonce_of && OCSP_copy_nonce(bs, nonce_of) != 1)
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot copy the nonce");
    if (rc == P11CA_OK)
        rc = sign_encode(o, bs, now, now, next0, out);
    if (rc == P11CA_OK) {
        info->n_certs = (size_t)n;
        info->nonce = nonce_of != NULL;
    }
    OCSP_BASICRESP_free(bs);
    return rc;
}

/* Cache the response to the single CertID of @cid, signed from a read
 * that began at @epoch.  Unknown serials too (a negative cache: a repeated
 * question about a serial never issued costs no signature); the cache
 * keeps them to a share of its bound and does not sign them again, and
 * an issuance or registration of the serial invalidates them like any
 * change (the API's at once, another process's through the audit
 * trail). */
bool ca_ocsp_store(ca_ocsp *o, OCSP_CERTID *cid, const ca_ocsp_state *st,
                   uint64_t epoch, ca_ocsp_resp *resp)
{
    unsigned char *der = NULL;
    char serial[64];
    int len = 0;
    bool stored = certid_key(cid, serial, &der, &len)
                  && ca_ocsp_cache_put(o->cache, o->ca_id, serial, der,
                                       (size_t)len, st, epoch, resp);

    OPENSSL_free(der);
    return stored;
}

static int answer(ca_ocsp *o, reg *r, const struct req *q, int64_t now,
                  ca_ocsp_resp **out, ca_ocsp_info *info)
{
    OCSP_CERTID *ids[CA_OCSP_MAX_CERTIDS];
    bool cache = cacheable(o, q);
    /* Before the registry is read: see ca_ocsp_cache_put. */
    uint64_t epoch = cache ? ca_ocsp_cache_epoch(o->cache) : 0;
    ca_ocsp_state first;
    int rc;

    for (int i = 0; i < q->n; i++)
        ids[i] = OCSP_onereq_get0_id(OCSP_request_onereq_get0(q->req, i));
    rc = ca_ocsp_sign(o, r, ids, q->n,
                      q->nonce && !o->ignore_nonce ? q->req : NULL, now, out,
                      &first, info);
    if (rc != P11CA_OK) {
        failed(o, rc, out, info);
        return P11CA_OK;
    }
    if (cache)
        info->stored = ca_ocsp_store(o, ids[0], &first, epoch, *out);
    return P11CA_OK;
}

int ca_ocsp_respond(ca_ocsp *o, reg *r, const unsigned char *der, size_t len,
                    int64_t now, ca_ocsp_resp **out, ca_ocsp_info *info)
{
    ca_ocsp_info scratch;
    struct req q;
    int st, rc = P11CA_OK;

    if (!info)
        info = &scratch;
    memset(info, 0, sizeof(*info));
    *out = NULL;
    st = req_parse(o, der, len, &q, info->why, sizeof(info->why));
    if (st != CA_OCSP_SUCCESSFUL)
        *out = ca_ocsp_resp_ref(o->err[st]);
    else if (cacheable(o, &q) && cache_get(o, &q, now, out))
        info->cached = true; /* another worker signed it meanwhile */
    else
        rc = answer(o, r, &q, now, out, info);
    OCSP_REQUEST_free(q.req);
    if (rc == P11CA_OK && !*out)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return rc;
}
