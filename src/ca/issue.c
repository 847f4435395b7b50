/* SPDX-License-Identifier: Apache-2.0 */
/* Issuance: a checked request becomes a certificate (profile extensions,
 * SKI/AKI, CDP/AIA, a random serial), signed through EVP, recorded in the
 * registry before anyone may see it; PEM and PKCS#7 output. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "ca/internal.h"

#define MAX_RESIGN 5

static int cert_base(ca *c, ca_req *r, X509 *x);
static int cert_profile_exts(ca *c, ca_req *r, X509V3_CTX *ctx, X509 *x);
static int cert_user_exts(ca *c, ca_req *r, X509 *x);
static int rec_fill(ca *c, ca_req *r);
static int serial_taken(ca *c, const char *serial, bool *taken);
static int client_id_held(const char *msg);
static int refuse(ca_req *r, int rc, const char *msg);
static int batch_group(ca *c, ca_req **reqs, size_t n);

/*
 * The CSR's SubjectPublicKeyInfo, copied field by field: X509_set_pubkey()
 * would encode the key and decode it again through OpenSSL 3.0's decoder
 * machinery, the most expensive step of an issuance.
 */
static int copy_spki(ca_req *r, X509 *x)
{
    X509_PUBKEY *from = X509_REQ_get_X509_PUBKEY(r->req);
    const ASN1_OBJECT *alg_obj, *pobj;
    const unsigned char *bits;
    X509_ALGOR *alg;
    const void *pval;
    void *param = NULL;
    unsigned char *copy;
    int len, ptype;

    if (!from || !X509_PUBKEY_get0_param(NULL, &bits, &len, &alg, from))
        return 0;
    X509_ALGOR_get0(&pobj, &ptype, &pval, alg);
    alg_obj = pobj;
    if (ptype == V_ASN1_OBJECT)
        param = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        param = ASN1_STRING_dup(pval);
    copy = OPENSSL_memdup(bits, (size_t)len);
    if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) && !param)
        goto fail;
    if (copy
        && X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(alg_obj),
                                  ptype, param, copy, len))
        return 1;
fail:
    OPENSSL_free(copy);
    if (ptype == V_ASN1_OBJECT)
        ASN1_OBJECT_free(param);
    else
        ASN1_STRING_free(param);
    return 0;
}

static int cert_base(ca *c, ca_req *r, X509 *x)
{
    if (!X509_set_version(x, X509_VERSION_3)
        || !X509_set_issuer_name(x, X509_get_subject_name(c->cert))
        || !X509_set_subject_name(x, r->subject) || !copy_spki(r, x)
        || !X509_gmtime_adj(X509_getm_notBefore(x), 0)
        || !X509_time_adj_ex(X509_getm_notAfter(x), (int)r->days, 0, NULL))
        return ca_ossl_err(P11CA_E_NOMEM, "cannot make the certificate");
    return ca_serial_random(x);
}

/* basicConstraints, keyUsage, extendedKeyUsage, OCSP no-check, SAN. */
static int cert_profile_exts(ca *c, ca_req *r, X509V3_CTX *ctx, X509 *x)
{
    const ca_profile *p = r->profile;
    char buf[512];
    int rc;

    (void)c;
    if (p->is_ca && p->pathlen >= 0)
        snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", p->pathlen);
    else
        snprintf(buf, sizeof(buf), "critical,CA:%s",
                 p->is_ca ? "TRUE" : "FALSE");
    rc = ca_ext_add(ctx, x, NID_basic_constraints, buf);
    if (rc == P11CA_OK && p->key_usage) {
        snprintf(buf, sizeof(buf), "critical,%s%s%s", p->key_usage,
                 p->key_usage_rsa && EVP_PKEY_is_a(r->pub, "RSA") ? "," : "",
                 p->key_usage_rsa && EVP_PKEY_is_a(r->pub, "RSA")
                     ? p->key_usage_rsa
                     : "");
        rc = ca_ext_add(ctx, x, NID_key_usage, buf);
    }
    if (rc == P11CA_OK && p->ext_key_usage)
        rc = ca_ext_add(ctx, x, NID_ext_key_usage, p->ext_key_usage);
    if (rc == P11CA_OK && p->ocsp_nocheck)
        rc = ca_ext_add(ctx, x, NID_id_pkix_OCSP_noCheck, "ignored");
    /* An empty subject makes the SAN critical (RFC 5280 4.2.1.6). */
    if (rc == P11CA_OK && r->san
        && !X509_add1_ext_i2d(x, NID_subject_alt_name, r->san,
                              X509_NAME_entry_count(r->subject) == 0,
                              X509V3_ADD_DEFAULT))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot add the subjectAltName");
    return rc;
}

/* The profile's x509v3_config section, last: it replaces what it names. */
static int cert_user_exts(ca *c, ca_req *r, X509 *x)
{
    X509V3_CTX ctx;

    if (!r->profile->extensions)
        return P11CA_OK;
    X509V3_set_ctx(&ctx, c->cert, x, NULL, NULL, X509V3_CTX_REPLACE);
    X509V3_set_nconf(&ctx, c->conf);
    if (!X509V3_EXT_add_nconf(c->conf, &ctx, r->profile->extensions, x))
        return ca_ossl_err(
            P11CA_E_INPUT,
            "ca.cnf [ %s ]: cannot apply the extensions of profile \"%s\"",
            r->profile->extensions, r->profile->name);
    return P11CA_OK;
}

/* What the registry records: from the certificate, plus our fields. */
static int rec_fill(ca *c, ca_req *r)
{
    int rc;

    reg_cert_clear(&r->rec);
    rc = reg_cert_from_x509(&r->rec, r->cert);
    if (rc != P11CA_OK)
        return rc;
    r->rec.ca_id = c->reg_id;
    r->rec.status = r->not_activated ? REG_NOT_ACTIVATED : REG_ACTIVATED;
    r->rec.profile = strdup(r->profile->name);
    r->rec.origin = strdup("issued");
    if (r->client_id || r->profile->client_id == CA_CLIENT_ID_NONE) {
        free(r->rec.client_id);
        r->rec.client_id = r->client_id ? strdup(r->client_id) : NULL;
    }
    if (!r->rec.profile || !r->rec.origin
        || (r->client_id && !r->rec.client_id))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

int ca_req_sign(ca *c, ca_req *r)
{
    X509 *x = X509_new();
    ca_key *k = NULL;
    X509V3_CTX ctx;
    int rc = ca_signing_key(c, &k);

    if (rc == P11CA_OK && !x)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = cert_base(c, r, x);
    X509V3_set_ctx(&ctx, c->cert, x, NULL, NULL, 0);
    if (rc == P11CA_OK)
        rc = cert_profile_exts(c, r, &ctx, x);
    if (rc == P11CA_OK)
        rc = ca_ext_add_ski_aki(&ctx, x);
    /* An OCSP signer's certificate (ocsp_nocheck) points to no CRL and no
     * responder: its status is not checked (RFC 9919 4.2.2.2). */
    if (rc == P11CA_OK && !r->profile->ocsp_nocheck)
        rc = ca_ext_add_urls(c, &ctx, x);
    if (rc == P11CA_OK)
        rc = cert_user_exts(c, r, x);
    if (rc == P11CA_OK)
        rc = ca_key_sign_cert(k, c->s.digest, x);
    if (rc == P11CA_OK) {
        X509_free(r->cert);
        r->cert = x;
        x = NULL;
        rc = rec_fill(c, r);
    }
    X509_free(x);
    return rc;
}

/* Whether @serial is in the registry (a collision, not a client ID). */
static int serial_taken(ca *c, const char *serial, bool *taken)
{
    reg_cert rc_cert;
    int rc;

    memset(&rc_cert, 0, sizeof(rc_cert));
    rc = reg_get(c->reg, c->reg_id, serial, &rc_cert);
    reg_cert_clear(&rc_cert);
    *taken = rc == P11CA_OK;
    return rc == P11CA_OK || rc == P11CA_E_NOTFOUND ? P11CA_OK : rc;
}

/* The registry's refusal @msg (a client ID held by another activated
 * certificate) with the ways out that issuance has. */
static int client_id_held(const char *msg)
{
    return p11ca_err_set(
        P11CA_E_EXISTS,
        "%s, or issue this one with --not-activated (and activate it later) or under another --client-id; a card renews with p11ca enroll --renew or --rekey",
        msg);
}

int ca_req_record(ca *c, ca_req *r)
{
    char msg[1024], what[256];
    reg_limit lim;
    bool taken = false;
    int rc = P11CA_E_INTERNAL;

    if (!r->cert)
        return p11ca_err_set(rc, "record before sign");
    ca_profile_limit(c, r->profile, &lim, what, sizeof(what));
    for (int i = 0; i < MAX_RESIGN; i++) {
        rc = reg_record_issued(c->reg, &r->rec, ca_get_actor(c), &lim);
        if (rc != P11CA_E_EXISTS)
            break;
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        if (serial_taken(c, r->rec.serial, &taken) != P11CA_OK || !taken) {
            rc = client_id_held(msg);
            break;
        }
        rc = ca_req_sign(c, r);
        if (rc != P11CA_OK)
            break;
    }
    r->status = rc;
    return rc;
}

/* Mark @r refused with @msg (NULL: the current message); returns @rc. */
static int refuse(ca_req *r, int rc, const char *msg)
{
    free(r->msg);
    r->msg = strdup(msg ? msg : p11ca_err_message());
    r->status = rc;
    return rc;
}

/* One group commit of the pending requests among @reqs. */
static int batch_group(ca *c, ca_req **reqs, size_t n)
{
    reg_cert *recs = calloc(n ? n : 1, sizeof(*recs));
    size_t *idx = calloc(n ? n : 1, sizeof(*idx)), m, bad;
    char msg[1024], what[256];
    reg_limit lim = {0};
    bool taken;
    int rc = recs && idx ? P11CA_E_EXISTS : P11CA_E_NOMEM;

    /* A batch is one profile's (ca_issue_batch). */
    if (n)
        ca_profile_limit(c, reqs[0]->profile, &lim, what, sizeof(what));
    for (int tries = 0; rc == P11CA_E_EXISTS && tries < (int)n + MAX_RESIGN;
         tries++) {
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (reqs[i]->status == CA_REQ_PENDING) {
                recs[m] = reqs[i]->rec; /* shallow: the req keeps it */
                idx[m++] = i;
            }
        bad = m;
        rc = m ? reg_record_batch(c->reg, recs, m, ca_get_actor(c), &lim, &bad)
               : P11CA_OK;
        if (rc != P11CA_E_EXISTS || bad >= m)
            break;
        /* Kept: the serial lookup below sets a message of its own. */
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        if (serial_taken(c, recs[bad].serial, &taken) != P11CA_OK)
            break;
        if (!taken) /* not the serial: the client ID is held */
            refuse(reqs[idx[bad]], client_id_held(msg), NULL);
        else if (ca_req_sign(c, reqs[idx[bad]]) != P11CA_OK)
            refuse(reqs[idx[bad]], p11ca_err_rc(), NULL);
    }
    for (size_t i = 0; rc == P11CA_OK && i < n; i++)
        if (reqs[i]->status == CA_REQ_PENDING)
            reqs[i]->status = P11CA_OK;
    if (rc == P11CA_E_NOMEM)
        p11ca_err_set(rc, "out of memory");
    free(recs);
    free(idx);
    return rc;
}

int ca_req_record_batch(ca *c, ca_req **reqs, size_t n, size_t group)
{
    unsigned limit = n ? reqs[0]->profile->rate_limit : 0;
    int rc = P11CA_OK;

    for (size_t i = 1; i < n; i++)
        if (reqs[i]->profile != reqs[0]->profile)
            return p11ca_err_set(P11CA_E_INTERNAL,
                                 "a batch of several profiles");
    if (group == 0)
        group = 64;
    /* A transaction larger than the limit would never fit in a second. */
    if (limit && group > limit)
        group = limit;
    for (size_t i = 0; rc == P11CA_OK && i < n; i += group)
        rc = batch_group(c, reqs + i, n - i < group ? n - i : group);
    return rc;
}

X509 *ca_req_cert(const ca_req *r)
{
    return r->cert;
}

const char *ca_req_serial(const ca_req *r)
{
    return r->rec.serial;
}

const char *ca_req_name(const ca_req *r)
{
    return r->what;
}

const char *ca_req_client_id(const ca_req *r)
{
    return r->rec.client_id;
}

int ca_req_status(const ca_req *r, const char **msg)
{
    if (msg)
        *msg = r->msg ? r->msg : p11ca_strerror(r->status);
    return r->status;
}

int ca_output_pem(ca *c, X509 *leaf, bool chain, BIO *out)
{
    int ok = PEM_write_bio_X509(out, leaf);

    if (chain && ok && c->cert)
        ok = PEM_write_bio_X509(out, c->cert);
    for (int i = 0; chain && ok && i < sk_X509_num(c->chain); i++)
        ok = PEM_write_bio_X509(out, sk_X509_value(c->chain, i));
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_INTERNAL, "cannot write the certificate");
}

int ca_output_p7b(ca *c, X509 *leaf, BIO *out)
{
    PKCS7 *p7 = PKCS7_new();
    int ok = p7 && PKCS7_set_type(p7, NID_pkcs7_signed)
             && PKCS7_content_new(p7, NID_pkcs7_data)
             && PKCS7_add_certificate(p7, leaf);

    if (ok && c->cert)
        ok = PKCS7_add_certificate(p7, c->cert);
    for (int i = 0; ok && i < sk_X509_num(c->chain); i++)
        ok = PKCS7_add_certificate(p7, sk_X509_value(c->chain, i));
    ok = ok && i2d_PKCS7_bio(out, p7);
    PKCS7_free(p7);
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_INTERNAL, "cannot write the PKCS#7 chain");
}
