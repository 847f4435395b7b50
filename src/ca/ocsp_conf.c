/* SPDX-License-Identifier: Apache-2.0 */
/* The OCSP responder's settings ([ ocsp ] of ca.cnf, the delegated
 * signer's certificate), the CA's CertID hashes, and the responder's
 * life: new and free. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "ca/ocsp_int.h"

#define SECTION             "ocsp"
#define NEXT_UPDATE_DEFAULT 86400
#define NEXT_UPDATE_MIN     60
#define NEXT_UPDATE_MAX     (366 * 86400)
#define CACHE_DEFAULT       100000
#define CACHE_MAX           10000000
#define SIGNER_CERT_DEFAULT "ocsp-signer.pem"

static const char *const ocsp_keys[] = {
    "next_update",   "refresh_before", "not_activated", "ignore_nonce",
    "cache_entries", "signer_key",     "signer_cert",   "digest",
};

static int signer_cert_load(ca_ocsp *o, const char *path);

/* ------------------------------------------------------------------ */
/* [ ocsp ] of ca.cnf                                                  */
/* ------------------------------------------------------------------ */

/* Refuse keys [ ocsp ] does not know (a typo would be ignored). */
static int conf_check_keys(ca *c)
{
    STACK_OF(CONF_VALUE) * sk;
    size_t nk = sizeof(ocsp_keys) / sizeof(ocsp_keys[0]), j;

    ERR_set_mark();
    sk = NCONF_get_section(c->conf, SECTION);
    ERR_pop_to_mark();
    for (int i = 0; sk && i < sk_CONF_VALUE_num(sk); i++) {
        const char *name = sk_CONF_VALUE_value(sk, i)->name;
        for (j = 0; j < nk && strcmp(name, ocsp_keys[j]) != 0; j++)
            ;
        if (j == nk)
            return p11ca_err_set(P11CA_E_INPUT,
                                 "ca.cnf [ ocsp ]: unknown key \"%s\"", name);
    }
    return P11CA_OK;
}

static int conf_duration(ca *c, const char *key, int64_t dflt, int64_t min,
                         int64_t max, int64_t *out)
{
    const char *v = ca_conf_get(c->conf, SECTION, key);

    *out = dflt;
    if (v && (ca_duration_parse(v, max, out) != 0 || *out < min))
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ ocsp ] %s = %s: a duration from %llds to %lldd, e.g. 1d, 12h, 30m",
            key, v, (long long)min, (long long)max / 86400);
    return P11CA_OK;
}

static int conf_strings(ca_ocsp *o)
{
    ca *c = o->c;
    const char *v = ca_conf_get(c->conf, SECTION, "not_activated");
    const char *digest = ca_conf_get(c->conf, SECTION, "digest");

    o->hold = v && strcmp(v, "hold") == 0;
    if (v && !o->hold && strcmp(v, "good") != 0)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ ocsp ] not_activated = %s: say good or hold", v);
    if (!digest)
        digest = c->s.digest;
    if (digest && !EVP_get_digestbyname(digest))
        return p11ca_err_set(P11CA_E_INPUT,
                             "ca.cnf [ ocsp ] digest = %s: unknown digest",
                             digest);
    v = ca_conf_get(c->conf, SECTION, "signer_key");
    if ((digest && !(o->digest = strdup(digest)))
        || (v
            && !(o->signer_key = strncmp(v, "pkcs11:", 7) == 0
                                     ? strdup(v)
                                     : ca_path(c->dir, v))))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

static int conf_load(ca_ocsp *o)
{
    ca *c = o->c;
    const char *cert = ca_conf_get(c->conf, SECTION, "signer_cert");
    int rc = conf_check_keys(c);

    if (rc == P11CA_OK)
        rc = conf_duration(c, "next_update", NEXT_UPDATE_DEFAULT,
                           NEXT_UPDATE_MIN, NEXT_UPDATE_MAX, &o->next_update);
    if (rc == P11CA_OK)
        rc = conf_duration(c, "refresh_before", o->next_update / 2, 1,
                           NEXT_UPDATE_MAX, &o->refresh_before);
    if (rc == P11CA_OK && o->refresh_before >= o->next_update)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ ocsp ] refresh_before must be shorter than next_update (%llds)",
            (long long)o->next_update);
    if (rc == P11CA_OK)
        rc = ca_conf_bool(c->conf, SECTION, "ignore_nonce", false,
                          &o->ignore_nonce);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, SECTION, "cache_entries", CACHE_DEFAULT,
                          CACHE_MAX, &o->cache_entries);
    if (rc == P11CA_OK)
        rc = conf_strings(o);
    if (rc == P11CA_OK && cert && !o->signer_key)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "ca.cnf [ ocsp ] has signer_cert but no signer_key");
    if (rc == P11CA_OK && o->signer_key)
        rc = signer_cert_load(o, cert ? cert : SIGNER_CERT_DEFAULT);
    return rc;
}

/* The delegated signer's certificate: issued by this CA for OCSP signing
 * (RFC 6960 4.2.2.2), or the responder would answer with responses that
 * no client accepts. */
static int signer_cert_load(ca_ocsp *o, const char *name)
{
    char *path = ca_path(o->c->dir, name);
    STACK_OF(X509) *sk = NULL;
    X509 *x;
    int rc;

    if (!path)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = ca_read_certs(path, &sk);
    if (rc != P11CA_OK)
        goto out;
    x = sk_X509_value(sk, 0);
    if (X509_check_issued(o->issuer, x) != X509_V_OK
        || X509_verify(x, X509_get0_pubkey(o->issuer)) != 1)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "%s (signer_cert of [ ocsp ]) was not issued by this CA", path);
    else if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE)
             || !(X509_get_extended_key_usage(x) & XKU_OCSP_SIGN))
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "%s (signer_cert of [ ocsp ]) is not an OCSP signer: no extendedKeyUsage OCSPSigning",
            path);
    if (rc == P11CA_OK)
        rc = ca_pubkey_sha256(X509_get0_pubkey(x), o->signer_sha256);
    if (rc == P11CA_OK && X509_up_ref(x))
        o->signer = x;
out:
    ERR_clear_error();
    sk_X509_pop_free(sk, X509_free);
    free(path);
    return rc;
}

/* The CA certificate's name and key hashes under each CertID algorithm. */
static int hashes_init(ca_ocsp *o)
{
    static const int nids[CA_OCSP_N_HASHES] = {NID_sha1, NID_sha224, NID_sha256,
                                               NID_sha384, NID_sha512};
    const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(o->issuer);
    unsigned char *name = NULL;
    int nlen = i2d_X509_NAME(X509_get_subject_name(o->issuer), &name);
    int rc = P11CA_OK;

    for (size_t i = 0; i < CA_OCSP_N_HASHES && nlen > 0 && key; i++) {
        const EVP_MD *md = EVP_get_digestbynid(nids[i]);
        struct ca_ocsp_issuer_hash *h = &o->hashes[o->n_hashes];
        unsigned kl = 0;

        if (!md || !EVP_Digest(name, (size_t)nlen, h->name, &h->len, md, NULL)
            || !EVP_Digest(key->data, (size_t)key->length, h->key, &kl, md,
                           NULL))
            continue; /* an algorithm this OpenSSL does not have */
        h->nid = nids[i];
        o->n_hashes++;
    }
    if (nlen <= 0 || !key || o->n_hashes == 0)
        rc = ca_ossl_err(P11CA_E_INTERNAL,
                         "cannot hash the CA certificate's name and key");
    OPENSSL_free(name);
    return rc;
}

/* The responses that need no signature (RFC 6960 4.2.1: a status without
 * responseBytes). */
static int err_responses(ca_ocsp *o)
{
    static const int st[] = {CA_OCSP_MALFORMED, CA_OCSP_INTERNAL_ERROR,
                             CA_OCSP_TRY_LATER, CA_OCSP_UNAUTHORIZED};

    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        OCSP_RESPONSE *resp = OCSP_response_create(st[i], NULL);
        unsigned char *der = NULL;
        int len = resp ? i2d_OCSP_RESPONSE(resp, &der) : -1;

        if (len > 0)
            o->err[st[i]] = ca_ocsp_resp_new(der, (size_t)len, st[i], 0, 0, 0);
        OPENSSL_free(der);
        OCSP_RESPONSE_free(resp);
        if (!o->err[st[i]])
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    return P11CA_OK;
}

int ca_ocsp_new(ca *c, ca_ocsp **out)
{
    ca_ocsp *o = calloc(1, sizeof(*o));
    char hash[65];
    int rc = P11CA_OK;

    *out = NULL;
    if (!o)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    pthread_mutex_init(&o->mu, NULL);
    o->c = c;
    o->ca_id = ca_registry_id(c);
    if (!c->cert)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "the CA in %s has no certificate yet: it cannot answer OCSP requests",
            c->dir);
    else if (!X509_up_ref(c->cert))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    else
        o->issuer = c->cert;
    if (rc == P11CA_OK)
        rc = hashes_init(o);
    if (rc == P11CA_OK)
        rc = conf_load(o);
    if (rc == P11CA_OK && !o->signer && X509_up_ref(o->issuer))
        o->signer = o->issuer;
    if (rc == P11CA_OK)
        rc = err_responses(o);
    if (rc == P11CA_OK && o->cache_entries > 0)
        rc = ca_ocsp_cache_new(o->cache_entries, &o->cache);
    if (rc == P11CA_OK)
        rc = reg_audit_tip(c->reg, &o->audit_seq, hash);
    if (rc != P11CA_OK) {
        ca_ocsp_free(o);
        return rc;
    }
    *out = o;
    return P11CA_OK;
}

void ca_ocsp_free(ca_ocsp *o)
{
    if (!o)
        return;
    /* The CA key belongs to the ca handle; only a delegated one is ours. */
    for (size_t i = 0; i < o->n_mctx; i++)
        EVP_MD_CTX_free(o->mctx[i]);
    if (o->signer_key)
        ca_key_free(o->key);
    ca_ocsp_cache_free(o->cache);
    for (int i = 0; i < CA_OCSP_N_RSTATUS; i++)
        ca_ocsp_resp_unref(o->err[i]);
    X509_free(o->signer);
    X509_free(o->issuer);
    free(o->signer_key);
    free(o->digest);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

bool ca_ocsp_delegated(const ca_ocsp *o)
{
    return o->signer_key != NULL;
}

ca_ocsp_cache *ca_ocsp_cache_of(ca_ocsp *o)
{
    return o->cache;
}
