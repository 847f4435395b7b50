/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates assembled as DER: what every certificate of a profile shares
 * (the signature algorithm, the issuer, the profile's extensions) encoded
 * once into a template, the rest of each one (serial, validity, subject,
 * key, subjectAltName, SKI) encoded per request, with nothing decoded or
 * encoded twice. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "ca/internal.h"

/* The extensions a template holds: basicConstraints, keyUsage,
 * extendedKeyUsage, OCSP no-check, AKI, CRL distribution points, AIA. */
#define TMPL_MAX_EXTS 8
/* ... and a certificate: those, SAN, SKI, and the profile's own section. */
#define CERT_MAX_EXTS 64

/* One extension as DER, with its type (a profile's extensions section
 * replaces what it names). */
typedef struct ext_der {
    int nid;
    unsigned char *der;
    size_t len;
} ext_der;

/*
 * What every certificate of one profile shares, for subject keys of one
 * kind (keyUsage may add key_usage_rsa for RSA keys): DER pieces, in the
 * order the certificate holds them.
 */
struct ca_tmpl {
    unsigned char *version; /* [0] EXPLICIT INTEGER 2 */
    size_t version_len;
    unsigned char *issuer;
    size_t issuer_len;
    char *issuer_text;           /* RFC 2253, for the registry */
    ext_der head[TMPL_MAX_EXTS]; /* before the subjectAltName */
    size_t n_head;
    ext_der tail[TMPL_MAX_EXTS]; /* after the SKI */
    size_t n_tail;
};

/* A piece of DER to concatenate. */
typedef struct der_part {
    const unsigned char *p;
    size_t len;
} der_part;

static int der_wrap(int tag, int cls, const der_part *parts, size_t n,
                    unsigned char **out, size_t *outlen);
static void tmpl_free(struct ca_tmpl *t);
static int tmpl_exts(ca *c, const ca_profile *p, bool rsa, struct ca_tmpl *t);
static int tmpl_make(ca *c, const ca_profile *p, bool rsa,
                     struct ca_tmpl **out);
static int tmpl_get(ca *c, const ca_profile *p, bool rsa,
                    const struct ca_tmpl **out);
static int ext_take(X509_EXTENSION *ext, ext_der *out);
static int req_serial(ca_req *r, unsigned char **der, size_t *len);
static int req_validity(ca_req *r, unsigned char **der, size_t *len);
static int req_san(ca_req *r, ext_der *out);
static int req_ski(const ca_csr_cache *cc, ca_req *r, ext_der *out);
static int req_user_exts(ca *c, ca_req *r, STACK_OF(X509_EXTENSION) * *out);
static size_t exts_merge(const ext_der **list, size_t n, ext_der *user,
                         size_t n_user, der_part *parts);
static int rec_fill(ca *c, ca_req *r);

/*
 * The DER of a constructed value of @tag and class @cls holding @n parts
 * (OPENSSL_malloc'd); the header comes from OpenSSL's ASN1_put_object.
 */
static int der_wrap(int tag, int cls, const der_part *parts, size_t n,
                    unsigned char **out, size_t *outlen)
{
    size_t content = 0;
    unsigned char *buf, *p;
    int total;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        content += parts[i].len;
    if (content > INT_MAX / 2
        || (total = ASN1_object_size(1, (int)content, tag)) <= 0)
        return p11ca_err_set(P11CA_E_INTERNAL, "certificate too large");
    if (!(buf = OPENSSL_malloc((size_t)total)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    p = buf;
    ASN1_put_object(&p, 1, (int)content, tag, cls);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, parts[i].p, parts[i].len);
        p += parts[i].len;
    }
    *out = buf;
    *outlen = (size_t)total;
    return P11CA_OK;
}

static void tmpl_free(struct ca_tmpl *t)
{
    if (!t)
        return;
    OPENSSL_free(t->version);
    OPENSSL_free(t->issuer);
    free(t->issuer_text);
    for (size_t i = 0; i < t->n_head; i++)
        OPENSSL_free(t->head[i].der);
    for (size_t i = 0; i < t->n_tail; i++)
        OPENSSL_free(t->tail[i].der);
    free(t);
}

void ca_tmpls_free(ca *c)
{
    for (size_t i = 0; c->tmpls && i < 2 * c->n_profiles; i++)
        tmpl_free(c->tmpls[i]);
    free(c->tmpls);
    c->tmpls = NULL;
}

/* @ext as DER with its type (@ext is freed). */
static int ext_take(X509_EXTENSION *ext, ext_der *out)
{
    int len;

    out->der = NULL;
    out->nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    len = i2d_X509_EXTENSION(ext, &out->der);
    X509_EXTENSION_free(ext);
    if (len <= 0)
        return ca_ossl_err(P11CA_E_NOMEM, "cannot encode an extension");
    out->len = (size_t)len;
    return P11CA_OK;
}

/*
 * The profile's extensions, made by the same code and from the same text
 * as for every certificate before templates (ca_ext_add and friends) on
 * a certificate with nothing else in it: none of them depends on the
 * subject (AKI is the issuer's key identifier).
 */
static int tmpl_exts(ca *c, const ca_profile *p, bool rsa, struct ca_tmpl *t)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    char buf[512];
    int rc, n, first_tail;

    if (!x)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    X509V3_set_ctx(&ctx, c->cert, x, NULL, NULL, 0);
    if (p->is_ca && p->pathlen >= 0)
        snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", p->pathlen);
    else
        snprintf(buf, sizeof(buf), "critical,CA:%s",
                 p->is_ca ? "TRUE" : "FALSE");
    rc = ca_ext_add(&ctx, x, NID_basic_constraints, buf);
    if (rc == P11CA_OK && p->key_usage) {
        snprintf(buf, sizeof(buf), "critical,%s%s%s", p->key_usage,
                 p->key_usage_rsa && rsa ? "," : "",
                 p->key_usage_rsa && rsa ? p->key_usage_rsa : "");
        rc = ca_ext_add(&ctx, x, NID_key_usage, buf);
    }
    if (rc == P11CA_OK && p->ext_key_usage)
        rc = ca_ext_add(&ctx, x, NID_ext_key_usage, p->ext_key_usage);
    if (rc == P11CA_OK && p->ocsp_nocheck)
        rc = ca_ext_add(&ctx, x, NID_id_pkix_OCSP_noCheck, "ignored");
    first_tail = X509_get_ext_count(x);
    if (rc == P11CA_OK)
        rc = ca_ext_add(&ctx, x, NID_authority_key_identifier, "keyid:always");
    /* An OCSP signer's certificate (ocsp_nocheck) points to no CRL and no
     * responder: its status is not checked (RFC 9919 4.2.2.2). */
    if (rc == P11CA_OK && !p->ocsp_nocheck)
        rc = ca_ext_add_urls(c, &ctx, x);
    n = X509_get_ext_count(x);
    for (int i = 0; rc == P11CA_OK && i < n; i++) {
        ext_der *e =
            i < first_tail ? &t->head[t->n_head++] : &t->tail[t->n_tail++];
        rc = ext_take(X509_EXTENSION_dup(X509_get_ext(x, i)), e);
    }
    X509_free(x);
    return rc;
}

static int tmpl_make(ca *c, const ca_profile *p, bool rsa, struct ca_tmpl **out)
{
    struct ca_tmpl *t = calloc(1, sizeof(*t));
    ASN1_INTEGER *v = ASN1_INTEGER_new();
    unsigned char *vder = NULL;
    int len = 0, rc = t && v ? P11CA_OK : P11CA_E_NOMEM;

    *out = NULL;
    if (rc == P11CA_OK
        && (!ASN1_INTEGER_set(v, X509_VERSION_3)
            || (len = i2d_ASN1_INTEGER(v, &vder)) <= 0))
        rc = P11CA_E_NOMEM;
    if (rc == P11CA_OK)
        rc =
            der_wrap(0, V_ASN1_CONTEXT_SPECIFIC, &(der_part){vder, (size_t)len},
                     1, &t->version, &t->version_len);
    if (rc == P11CA_OK) {
        len = i2d_X509_NAME(X509_get_subject_name(c->cert), &t->issuer);
        rc = len > 0 ? P11CA_OK : P11CA_E_NOMEM;
        t->issuer_len = len > 0 ? (size_t)len : 0;
    }
    if (rc == P11CA_OK)
        rc = reg_name_text(X509_get_subject_name(c->cert), &t->issuer_text);
    if (rc == P11CA_OK)
        rc = tmpl_exts(c, p, rsa, t);
    if (rc == P11CA_E_NOMEM)
        p11ca_err_set(rc, "out of memory");
    OPENSSL_free(vder);
    ASN1_INTEGER_free(v);
    if (rc != P11CA_OK) {
        tmpl_free(t);
        return rc;
    }
    *out = t;
    return P11CA_OK;
}

/*
 * The template of @p for @rsa subject keys, made at the first request
 * (under the CA's lock: requests are built by several threads at once);
 * the CA key is loaded then, for its signature algorithm.
 */
static int tmpl_get(ca *c, const ca_profile *p, bool rsa,
                    const struct ca_tmpl **out)
{
    size_t i = 2 * (size_t)(p - c->profiles) + (rsa ? 1 : 0);
    ca_signer *s = NULL;
    ca_key *k = NULL;
    int rc = P11CA_OK;

    pthread_mutex_lock(&c->lock);
    if (!c->tmpls && !(c->tmpls = calloc(2 * c->n_profiles, sizeof(*c->tmpls))))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK && !c->algid) {
        rc = ca_signing_key(c, &k);
        if (rc == P11CA_OK)
            rc = ca_signer_new(k, c->s.digest, &s);
        if (rc == P11CA_OK) {
            const unsigned char *a = ca_signer_algid(s, &c->algid_len);
            if (!(c->algid = OPENSSL_memdup(a, c->algid_len)))
                rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        }
        ca_signer_free(s);
    }
    if (rc == P11CA_OK && !c->tmpls[i])
        rc = tmpl_make(c, p, rsa, &c->tmpls[i]);
    *out = rc == P11CA_OK ? c->tmpls[i] : NULL;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* 20 random bytes, the top bit clear and the first byte not zero: a
 * positive INTEGER of always 20 octets. */
static int req_serial(ca_req *r, unsigned char **der, size_t *len)
{
    unsigned char buf[CA_SERIAL_BYTES];
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    int n = 0;

    *der = NULL;
    do {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            ASN1_INTEGER_free(ai);
            return ca_ossl_err(P11CA_E_INTERNAL, "no random bytes");
        }
        buf[0] &= 0x7f;
    } while (buf[0] == 0);
    if (ai && ASN1_STRING_set(ai, buf, sizeof(buf)))
        n = i2d_ASN1_INTEGER(ai, der);
    ASN1_INTEGER_free(ai);
    if (n <= 0)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    *len = (size_t)n;
    for (size_t i = 0; i < sizeof(buf); i++)
        snprintf(r->serial + 2 * i, 3, "%02x", buf[i]);
    return P11CA_OK;
}

/* From now for r->days, as X509_gmtime_adj and X509_time_adj_ex made it
 * (UTCTime until 2049, GeneralizedTime after). */
static int req_validity(ca_req *r, unsigned char **der, size_t *len)
{
    time_t now = time(NULL);
    ASN1_TIME *nb = ASN1_TIME_set(NULL, now);
    ASN1_TIME *na = ASN1_TIME_adj(NULL, now, (int)r->days, 0);
    unsigned char *a = NULL, *b = NULL;
    int la = nb ? i2d_ASN1_TIME(nb, &a) : 0;
    int lb = na ? i2d_ASN1_TIME(na, &b) : 0;
    int rc = P11CA_E_NOMEM;

    if (la > 0 && lb > 0)
        rc = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL,
                      (der_part[]){{a, (size_t)la}, {b, (size_t)lb}}, 2, der,
                      len);
    else
        p11ca_err_set(rc, "out of memory");
    r->not_before = (int64_t)now;
    r->not_after = (int64_t)now + (int64_t)r->days * 86400;
    OPENSSL_free(a);
    OPENSSL_free(b);
    ASN1_TIME_free(nb);
    ASN1_TIME_free(na);
    return rc;
}

/* The subjectAltName, critical when the subject is empty (RFC 5280
 * 4.2.1.6); out->der stays NULL without one. */
static int req_san(ca_req *r, ext_der *out)
{
    X509_EXTENSION *ext;

    memset(out, 0, sizeof(*out));
    if (!r->san)
        return P11CA_OK;
    ext = X509V3_EXT_i2d(NID_subject_alt_name,
                         X509_NAME_entry_count(r->subject) == 0, r->san);
    if (!ext)
        return ca_ossl_err(P11CA_E_INTERNAL, "cannot add the subjectAltName");
    return ext_take(ext, out);
}

/* subjectKeyIdentifier = hash: the SHA-1 of the key's bits (RFC 5280
 * 4.2.1.2, method 1), as OpenSSL computes it. */
static int req_ski(const ca_csr_cache *cc, ca_req *r, ext_der *out)
{
    const ASN1_BIT_STRING *bits = ca_csr_key_bits(r->csr);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;

    memset(out, 0, sizeof(*out));
    if (cc && os
        && EVP_Digest(bits->data, (size_t)bits->length, md, &mdlen, cc->sha1,
                      NULL)
        && ASN1_OCTET_STRING_set(os, md, (int)mdlen))
        ext = X509V3_EXT_i2d(NID_subject_key_identifier, 0, os);
    ASN1_OCTET_STRING_free(os);
    if (!ext)
        return ca_ossl_err(P11CA_E_INTERNAL,
                           "cannot make the subject key identifier");
    return ext_take(ext, out);
}

/*
 * The profile's x509v3_config section for this request: evaluated on a
 * certificate holding the subject and the key, as before templates (a
 * section may copy from the subject or hash the key).  NCONF is not made
 * for several threads at once: under the CA's lock.
 */
static int req_user_exts(ca *c, ca_req *r, STACK_OF(X509_EXTENSION) * *out)
{
    const ca_profile *p = r->profile;
    X509 *x = X509_new();
    X509V3_CTX ctx;
    int rc = P11CA_OK;

    *out = NULL;
    if (!x || !X509_set_subject_name(x, r->subject)
        || !X509_set_issuer_name(x, X509_get_subject_name(c->cert))
        || !ca_csr_copy_key(r->csr, X509_get_X509_PUBKEY(x)))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot make the certificate");
    pthread_mutex_lock(&c->lock);
    X509V3_set_ctx(&ctx, c->cert, x, NULL, NULL, X509V3_CTX_REPLACE);
    X509V3_set_nconf(&ctx, c->conf);
    if (rc == P11CA_OK
        && !X509V3_EXT_add_nconf_sk(c->conf, &ctx, p->extensions, out))
        rc = ca_ossl_err(
            P11CA_E_INPUT,
            "ca.cnf [ %s ]: cannot apply the extensions of profile \"%s\"",
            p->extensions, p->name);
    pthread_mutex_unlock(&c->lock);
    X509_free(x);
    return rc;
}

/*
 * The extensions in certificate order: @list (n items, NULL der skipped),
 * then @user, each of which first removes what the list holds of its type
 * (X509V3_CTX_REPLACE: delete, then append).  Fills @parts; their count.
 */
static size_t exts_merge(const ext_der **list, size_t n, ext_der *user,
                         size_t n_user, der_part *parts)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        bool replaced = false;

        for (size_t u = 0; list[i]->der && u < n_user; u++)
            replaced |= user[u].nid != NID_undef && user[u].nid == list[i]->nid;
        if (list[i]->der && !replaced)
            parts[m++] = (der_part){list[i]->der, list[i]->len};
    }
    for (size_t u = 0; u < n_user; u++)
        parts[m++] = (der_part){user[u].der, user[u].len};
    return m;
}

int ca_req_build(ca *c, ca_req *r)
{
    const struct ca_tmpl *t = NULL;
    unsigned char *serial = NULL, *validity = NULL, *subject = NULL;
    unsigned char *exts = NULL, *exts3 = NULL;
    size_t serial_len = 0, validity_len = 0, exts_len = 0, exts3_len = 0;
    ext_der san = {0}, ski = {0}, user[CERT_MAX_EXTS - 2 * TMPL_MAX_EXTS - 2];
    const ext_der *list[2 * TMPL_MAX_EXTS + 2];
    der_part parts[CERT_MAX_EXTS];
    STACK_OF(X509_EXTENSION) *usk = NULL;
    size_t n = 0, n_user = 0;
    int subject_len = 0,
        rc = tmpl_get(c, r->profile, EVP_PKEY_is_a(r->pub, "RSA"), &t);

    OPENSSL_free(r->tbs);
    r->tbs = NULL;
    if (rc == P11CA_OK && !r->spki) {
        int len = ca_csr_spki_der(r->csr, &r->spki);
        if (len <= 0)
            rc = ca_ossl_err(P11CA_E_NOMEM, "cannot encode the public key");
        r->spki_len = len > 0 ? (size_t)len : 0;
    }
    if (rc == P11CA_OK)
        rc = req_serial(r, &serial, &serial_len);
    if (rc == P11CA_OK)
        rc = req_validity(r, &validity, &validity_len);
    if (rc == P11CA_OK
        && (subject_len = i2d_X509_NAME(r->subject, &subject)) <= 0)
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot encode the subject");
    if (rc == P11CA_OK)
        rc = req_san(r, &san);
    if (rc == P11CA_OK)
        rc = req_ski(ca_csr_cache_get(c), r, &ski);
    if (rc == P11CA_OK && r->profile->extensions)
        rc = req_user_exts(c, r, &usk);
    for (int i = 0; rc == P11CA_OK && i < sk_X509_EXTENSION_num(usk); i++) {
        if (n_user == sizeof(user) / sizeof(user[0])) {
            rc = p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ %s ]: more than %zu extensions in profile \"%s\"",
                r->profile->extensions, n_user, r->profile->name);
            break;
        }
        rc = ext_take(X509_EXTENSION_dup(sk_X509_EXTENSION_value(usk, i)),
                      &user[n_user++]);
    }
    if (rc == P11CA_OK) {
        for (size_t i = 0; i < t->n_head; i++)
            list[n++] = &t->head[i];
        list[n++] = &san;
        list[n++] = &ski;
        for (size_t i = 0; i < t->n_tail; i++)
            list[n++] = &t->tail[i];
        n = exts_merge(list, n, user, n_user, parts);
        rc = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, parts, n, &exts,
                      &exts_len);
    }
    if (rc == P11CA_OK)
        rc = der_wrap(3, V_ASN1_CONTEXT_SPECIFIC, &(der_part){exts, exts_len},
                      1, &exts3, &exts3_len);
    if (rc == P11CA_OK)
        rc = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL,
                      (der_part[]){{t->version, t->version_len},
                                   {serial, serial_len},
                                   {c->algid, c->algid_len},
                                   {t->issuer, t->issuer_len},
                                   {validity, validity_len},
                                   {subject, (size_t)subject_len},
                                   {r->spki, r->spki_len},
                                   {exts3, exts3_len}},
                      8, &r->tbs, &r->tbs_len);
    if (rc == P11CA_OK)
        r->issuer_text = t->issuer_text;
    for (size_t i = 0; i < n_user; i++)
        OPENSSL_free(user[i].der);
    sk_X509_EXTENSION_pop_free(usk, X509_EXTENSION_free);
    OPENSSL_free(san.der);
    OPENSSL_free(ski.der);
    OPENSSL_free(serial);
    OPENSSL_free(validity);
    OPENSSL_free(subject);
    OPENSSL_free(exts);
    OPENSSL_free(exts3);
    return rc;
}

/* What the registry records besides the certificate's own fields. */
static int rec_fill(ca *c, ca_req *r)
{
    r->rec.ca_id = c->reg_id;
    r->rec.status = r->not_activated ? REG_NOT_ACTIVATED : REG_ACTIVATED;
    r->rec.profile = strdup(r->profile->name);
    r->rec.origin = strdup("issued");
    /* A renewal is linked to what it renews from its first record: a
     * pending renewal (not activated) is found by this link. */
    if (r->replaces) {
        free(r->rec.replaces);
        r->rec.replaces = strdup(r->replaces);
    }
    if (r->client_id || r->profile->client_id == CA_CLIENT_ID_NONE) {
        free(r->rec.client_id);
        r->rec.client_id = r->client_id ? strdup(r->client_id) : NULL;
    }
    if (!r->rec.profile || !r->rec.origin || (r->client_id && !r->rec.client_id)
        || (r->replaces && !r->rec.replaces))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

int ca_req_sign_tbs(ca *c, ca_req *r, ca_signer *s)
{
    const unsigned char *sig = NULL, *algid;
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    unsigned char *bsder = NULL;
    size_t siglen = 0, algid_len;
    int len = 0, rc;

    OPENSSL_free(r->der);
    r->der = NULL;
    reg_cert_clear(&r->rec);
    rc = bs ? ca_signer_sign(s, r->tbs, r->tbs_len, &sig, &siglen)
            : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    algid = ca_signer_algid(s, &algid_len);
    /* A signature with no unused bits, as ASN1_item_sign_ctx sets it. */
    if (rc == P11CA_OK) {
        bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
        bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        if (!ASN1_STRING_set(bs, sig, (int)siglen)
            || (len = i2d_ASN1_BIT_STRING(bs, &bsder)) <= 0)
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    if (rc == P11CA_OK)
        rc = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL,
                      (der_part[]){{r->tbs, r->tbs_len},
                                   {algid, algid_len},
                                   {bsder, (size_t)len}},
                      3, &r->der, &r->der_len);
    if (rc == P11CA_OK)
        rc = reg_cert_from_parts(&r->rec,
                                 &(reg_cert_parts){.serial = r->serial,
                                                   .subject = r->subject,
                                                   .issuer = r->issuer_text,
                                                   .not_before = r->not_before,
                                                   .not_after = r->not_after,
                                                   .spki = r->spki,
                                                   .spki_len = r->spki_len,
                                                   .der = r->der,
                                                   .der_len = r->der_len});
    if (rc == P11CA_OK)
        rc = rec_fill(c, r);
    OPENSSL_free(bsder);
    ASN1_BIT_STRING_free(bs);
    return rc;
}
