/* SPDX-License-Identifier: Apache-2.0 */
/* Keeping the OCSP cache current: a certificate changed through this
 * process (signed again at once), changes seen in the audit trail (by any
 * process), and responses signed again before their nextUpdate. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ocsp.h>

#include "ca/ocsp_int.h"

#define SYNC_MAX_ENTRIES 10000 /* audit entries read by one refresh */

/* Sign the cached CertID @id again from the registry and cache it. */
static int resign(ca_ocsp *o, reg *r, const ca_ocsp_certid *id, int64_t now)
{
    const unsigned char *p = id->der;
    OCSP_CERTID *cid = d2i_OCSP_CERTID(NULL, &p, (long)id->len);
    uint64_t epoch = ca_ocsp_cache_epoch(o->cache);
    ca_ocsp_info info = {0};
    ca_ocsp_resp *resp = NULL;
    ca_ocsp_state st;
    int rc = cid ? P11CA_OK
                 : p11ca_err_set(P11CA_E_INTERNAL,
                                 "a cached CertID does not decode");

    if (rc == P11CA_OK)
        rc = ca_ocsp_sign(o, r, &cid, 1, NULL, now, &resp, &st, &info);
    if (rc == P11CA_OK)
        ca_ocsp_store(o, cid, &st, epoch, resp);
    ca_ocsp_resp_unref(resp);
    OCSP_CERTID_free(cid);
    return rc;
}

/* The CertID of this CA's certificate @serial with @md, as OpenSSL's
 * clients make it (OCSP_cert_to_id). */
static int certid_make(ca_ocsp *o, const EVP_MD *md, const char *serial,
                       ca_ocsp_certid *id)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    OCSP_CERTID *cid = NULL;
    unsigned char *der = NULL;
    int len = -1;

    if (BN_hex2bn(&bn, serial) && (sn = BN_to_ASN1_INTEGER(bn, NULL))
        && (cid = OCSP_cert_id_new(
                md, X509_get_subject_name(o->issuer),
                (ASN1_BIT_STRING *)X509_get0_pubkey_bitstr(o->issuer), sn)))
        len = i2d_OCSP_CERTID(cid, &der);
    if (len > 0 && (id->der = malloc((size_t)len))) {
        memcpy(id->der, der, (size_t)len);
        id->len = (size_t)len;
    }
    OPENSSL_free(der);
    OCSP_CERTID_free(cid);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    return id->der ? P11CA_OK
                   : ca_ossl_err(P11CA_E_NOMEM, "cannot make a CertID");
}

/* @serial as the registry writes it, into @out; false if not hex. */
static bool serial_norm(const char *serial, char out[64])
{
    size_t n;

    while (serial[0] == '0' && serial[1])
        serial++;
    n = strlen(serial);
    if (n == 0 || n >= 64 || strspn(serial, "0123456789abcdefABCDEF") != n)
        return false;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)serial[i]);
    return true;
}

int ca_ocsp_cert_changed(ca_ocsp *o, reg *r, int64_t ca_id, const char *serial,
                         bool issued, int64_t now)
{
    ca_ocsp_certid ids[CA_OCSP_CACHE_FORMS] = {0};
    char norm[64];
    size_t n = 0;
    int rc, err;

    if (!o->cache || ca_id != o->ca_id || !serial_norm(serial, norm))
        return P11CA_OK;
    rc = ca_ocsp_cache_invalidate(o->cache, ca_id, norm, ids, &n);
    /* A new certificate: the CertID forms clients send, SHA-256 (RFC 9919
     * 2.1.1) and SHA-1 (RFC 5019 clients, openssl ocsp by default). */
    if (rc == P11CA_OK && n == 0 && issued) {
        rc = certid_make(o, EVP_sha256(), norm, &ids[0]);
        if (rc == P11CA_OK)
            rc = certid_make(o, EVP_sha1(), norm, &ids[1]);
        n = rc == P11CA_OK ? 2 : 0;
    }
    for (size_t i = 0; i < n; i++)
        if ((err = resign(o, r, &ids[i], now)) != P11CA_OK && rc == P11CA_OK)
            rc = err;
    ca_ocsp_certids_free(ids, CA_OCSP_CACHE_FORMS);
    return rc;
}

/* The serials that the audit trail shows changing since the last call. */
struct sync {
    char (*serials)[64];
    size_t n, cap;
    int64_t last_seq;
    int rc;
};

static int sync_cb(const reg_audit *a, void *arg)
{
    struct sync *s = arg;
    char norm[64], (*grown)[64];

    if (s->n >= SYNC_MAX_ENTRIES)
        return 1; /* the rest at the next call */
    s->last_seq = a->seq;
    if (!a->object || !serial_norm(a->object, norm))
        return 0;
    if (s->n == s->cap) {
        grown = realloc(s->serials, (s->cap ? s->cap * 2 : 64) * 64);
        if (!grown) {
            s->rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
            return 1;
        }
        s->serials = grown;
        s->cap = s->cap ? s->cap * 2 : 64;
    }
    memcpy(s->serials[s->n++], norm, 64);
    return 0;
}

static bool state_eq(const ca_ocsp_state *a, const ca_ocsp_state *b)
{
    return a->status == b->status && a->reason == b->reason
           && a->revoked_at == b->revoked_at && a->invalidity == b->invalidity
           && a->until == b->until;
}

/* One changed serial: mark it, then compare what the cache says with the
 * registry; invalidate (and sign again, within @budget) when they
 * differ. */
static int sync_one(ca_ocsp *o, reg *r, const char *serial, int64_t now,
                    size_t *budget, ca_ocsp_refresh_stats *st)
{
    ca_ocsp_certid ids[CA_OCSP_CACHE_FORMS] = {0};
    ca_ocsp_state cached, cur;
    size_t n = 0;
    int rc, err;

    if (!ca_ocsp_cache_mark(o->cache, o->ca_id, serial, &cached))
        return P11CA_OK;
    rc = ca_ocsp_cert_state(o, r, serial, now, &cur);
    if (rc == P11CA_OK && state_eq(&cached, &cur))
        return P11CA_OK;
    st->changes++;
    err = ca_ocsp_cache_invalidate(o->cache, o->ca_id, serial, ids, &n);
    if (rc == P11CA_OK)
        rc = err;
    for (size_t i = 0; rc == P11CA_OK && i < n; i++) {
        if (*budget == 0)
            break; /* dropped: signed on demand */
        (*budget)--;
        err = resign(o, r, &ids[i], now);
        st->resigned += err == P11CA_OK;
        st->failed += err != P11CA_OK;
        if (err != P11CA_OK)
            rc = err;
    }
    ca_ocsp_certids_free(ids, n);
    return rc;
}

int ca_ocsp_refresh(ca_ocsp *o, reg *r, int64_t now, size_t max_sign,
                    ca_ocsp_refresh_stats *st)
{
    ca_ocsp_refresh_stats scratch = {0};
    struct sync s = {0};
    ca_ocsp_certid *due = NULL;
    size_t n = 0, budget = max_sign;
    int rc, err, token = P11CA_OK;

    if (!st)
        st = &scratch;
    memset(st, 0, sizeof(*st));
    if (!o->cache)
        return P11CA_OK;
    s.last_seq = o->audit_seq;
    rc = reg_audit_list(r, o->audit_seq, sync_cb, &s);
    if (rc > 0)
        rc = s.rc;
    /* Every change is looked at, whatever the budget or the token: a
     * change that cannot be signed is dropped from the cache rather than
     * left stale. */
    for (size_t i = 0; rc == P11CA_OK && i < s.n; i++) {
        err = sync_one(o, r, s.serials[i], now, &budget, st);
        if (err == P11CA_E_TOKEN || err == P11CA_E_PIN)
            token = token ? token : err;
        else
            rc = err;
    }
    if (rc == P11CA_OK)
        o->audit_seq = s.last_seq;
    free(s.serials);
    if (rc == P11CA_OK && budget > 0)
        rc = ca_ocsp_cache_due(o->cache, now, now + o->refresh_before, budget,
                               &due, &n);
    for (size_t i = 0; i < n; i++) {
        err = resign(o, r, &due[i], now);
        st->resigned += err == P11CA_OK;
        st->failed += err != P11CA_OK;
        if (err != P11CA_OK && rc == P11CA_OK)
            rc = err;
    }
    ca_ocsp_certids_free(due, n);
    free(due);
    return rc != P11CA_OK ? rc : token;
}
