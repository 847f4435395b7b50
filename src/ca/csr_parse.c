/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a CSR without OpenSSL 3.0's decoder machinery: an ASN.1 template
 * that keeps the public key as raw bits, the key made from those bits (a
 * copy of a per-curve template key, EVP_PKEY_fromdata, or a raw key), and
 * the signature checked over the request's own DER with a digest fetched
 * once. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "ca/internal.h"

/*
 * SubjectPublicKeyInfo with the key left as bits: X509_PUBKEY's own
 * template decodes the key into an EVP_PKEY as part of d2i, through a
 * decoder context made for every key (1.4 M instructions for a P-256 CSR).
 */
typedef struct {
    X509_ALGOR *alg;
    ASN1_BIT_STRING *bits;
} CSR_SPKI;

/* CertificationRequestInfo (RFC 2986), laid out as OpenSSL's X509_REQ_INFO:
 * @enc keeps the DER the signature covers, and the attributes are optional
 * there too (some requesters leave out the empty [0]). */
typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    X509_NAME *subject;
    CSR_SPKI *spki;
    STACK_OF(X509_ATTRIBUTE) * attributes;
} CSR_DER_INFO;

typedef struct {
    CSR_DER_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *sig;
} CSR_DER;

/* RSAPublicKey (RFC 8017), as OpenSSL's own template reads it. */
typedef struct {
    BIGNUM *n;
    BIGNUM *e;
} CSR_RSA_PUB;

/* OpenSSL's ASN.1 templates: clang-format cannot lay these out. */
/* clang-format off */
ASN1_SEQUENCE(CSR_SPKI) = {
    ASN1_SIMPLE(CSR_SPKI, alg, X509_ALGOR),
    ASN1_SIMPLE(CSR_SPKI, bits, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR_SPKI)

ASN1_SEQUENCE_enc(CSR_DER_INFO, enc, NULL) = {
    ASN1_SIMPLE(CSR_DER_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(CSR_DER_INFO, subject, X509_NAME),
    ASN1_SIMPLE(CSR_DER_INFO, spki, CSR_SPKI),
    ASN1_IMP_SET_OF_OPT(CSR_DER_INFO, attributes, X509_ATTRIBUTE, 0)
} static_ASN1_SEQUENCE_END_ref(CSR_DER_INFO, CSR_DER_INFO)

ASN1_SEQUENCE(CSR_DER) = {
    ASN1_SIMPLE(CSR_DER, info, CSR_DER_INFO),
    ASN1_SIMPLE(CSR_DER, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(CSR_DER, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR_DER)

ASN1_SEQUENCE(CSR_RSA_PUB) = {
    ASN1_SIMPLE(CSR_RSA_PUB, n, BIGNUM),
    ASN1_SIMPLE(CSR_RSA_PUB, e, BIGNUM),
} static_ASN1_SEQUENCE_END(CSR_RSA_PUB)

                            /* clang-format on */

                            static CSR_DER
                            * d2i_CSR_DER(CSR_DER * *a, const unsigned char **p,
                                          long len)
{
    return (CSR_DER *)ASN1_item_d2i((ASN1_VALUE **)a, p, len,
                                    ASN1_ITEM_rptr(CSR_DER));
}

static void CSR_DER_free(CSR_DER *a)
{
    ASN1_item_free((ASN1_VALUE *)a, ASN1_ITEM_rptr(CSR_DER));
}

static CSR_RSA_PUB *d2i_CSR_RSA_PUB(CSR_RSA_PUB **a, const unsigned char **p,
                                    long len)
{
    return (CSR_RSA_PUB *)ASN1_item_d2i((ASN1_VALUE **)a, p, len,
                                        ASN1_ITEM_rptr(CSR_RSA_PUB));
}

static void CSR_RSA_PUB_free(CSR_RSA_PUB *a)
{
    ASN1_item_free((ASN1_VALUE *)a, ASN1_ITEM_rptr(CSR_RSA_PUB));
}

struct ca_csr {
    CSR_DER *asn;
};

/* The curves whose keys are copies of a template key (see csr_cache). */
static const int fast_curves[CA_CSR_CURVES] = {
    NID_X9_62_prime256v1,
    NID_secp384r1,
    NID_secp521r1,
};

static CSR_DER *csr_decode(const unsigned char *buf, size_t len, bool *extra);
static EVP_PKEY *key_ec(const ca_csr_cache *cc, int curve,
                        const ASN1_BIT_STRING *bits);
static EVP_PKEY *key_rsa(const ASN1_BIT_STRING *bits);
static EVP_PKEY *key_decode(const CSR_SPKI *spki);
static int verify_fast(const ca_csr_cache *cc, const CSR_DER *csr,
                       EVP_PKEY *pk);

int ca_csr_cache_new(ca_csr_cache **out)
{
    ca_csr_cache *cc = calloc(1, sizeof(*cc));
    static const char *const md_names[CA_CSR_MDS] = {"SHA256", "SHA384",
                                                     "SHA512"};
    EVP_PKEY_CTX *pc = NULL;
    OSSL_PARAM p[2];
    int rc = P11CA_OK;

    *out = NULL;
    if (!cc)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == P11CA_OK && i < CA_CSR_MDS; i++)
        if (!(cc->md[i] = EVP_MD_fetch(NULL, md_names[i], NULL)))
            rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot fetch %s", md_names[i]);
    if (rc == P11CA_OK && !(cc->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot fetch SHA1");
    pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (rc == P11CA_OK && (!pc || EVP_PKEY_fromdata_init(pc) != 1))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot make EC keys");
    for (size_t i = 0; rc == P11CA_OK && i < CA_CSR_CURVES; i++) {
        p[0] = OSSL_PARAM_construct_utf8_string(
            OSSL_PKEY_PARAM_GROUP_NAME, (char *)OBJ_nid2sn(fast_curves[i]), 0);
        p[1] = OSSL_PARAM_construct_end();
        if (EVP_PKEY_fromdata(pc, &cc->ec[i], EVP_PKEY_KEY_PARAMETERS, p) != 1)
            rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot make EC keys");
    }
    EVP_PKEY_CTX_free(pc);
    if (rc != P11CA_OK) {
        ca_csr_cache_free(cc);
        return rc;
    }
    *out = cc;
    return P11CA_OK;
}

void ca_csr_cache_free(ca_csr_cache *cc)
{
    if (!cc)
        return;
    for (size_t i = 0; i < CA_CSR_MDS; i++)
        EVP_MD_free(cc->md[i]);
    EVP_MD_free(cc->sha1);
    for (size_t i = 0; i < CA_CSR_CURVES; i++)
        EVP_PKEY_free(cc->ec[i]);
    free(cc);
}

/*
 * One request, PEM or DER, as csr.c requires: for DER the whole buffer and
 * nothing after it; for PEM the first "CERTIFICATE REQUEST" block, and
 * @extra set when a second one follows.
 */
static CSR_DER *csr_decode(const unsigned char *buf, size_t len, bool *extra)
{
    const unsigned char *p = buf;
    unsigned char *der = NULL;
    long derlen = 0;
    CSR_DER *csr = NULL, *more;
    BIO *b;

    *extra = false;
    if (!memmem(buf, len, "-----BEGIN", 10)) {
        csr = d2i_CSR_DER(NULL, &p, (long)len);
        if (csr && p != buf + len) {
            CSR_DER_free(csr);
            csr = NULL;
        }
        return csr;
    }
    if (!(b = BIO_new_mem_buf(buf, (int)len)))
        return NULL;
    /* As PEM_read_bio_X509_REQ: "NEW CERTIFICATE REQUEST" too. */
    if (PEM_bytes_read_bio(&der, &derlen, NULL, PEM_STRING_X509_REQ, b, NULL,
                           NULL)) {
        p = der;
        csr = d2i_CSR_DER(NULL, &p, derlen);
    }
    OPENSSL_free(der);
    der = NULL;
    ERR_set_mark();
    if (csr
        && PEM_bytes_read_bio(&der, &derlen, NULL, PEM_STRING_X509_REQ, b, NULL,
                              NULL)) {
        p = der;
        more = d2i_CSR_DER(NULL, &p, derlen);
        *extra = more != NULL;
        CSR_DER_free(more);
    }
    ERR_pop_to_mark();
    OPENSSL_free(der);
    BIO_free(b);
    return csr;
}

int ca_csr_parse(const unsigned char *buf, size_t len, const char *what,
                 ca_csr **out)
{
    ca_csr *csr = NULL;
    CSR_DER *asn = NULL;
    bool extra = false;
    int rc = P11CA_OK;

    *out = NULL;
    if (len > CA_MAX_CSR)
        return p11ca_err_set(P11CA_E_INPUT,
                             "%s is too large (%zu bytes, at most %d)", what,
                             len, CA_MAX_CSR);
    if (len > 0)
        asn = csr_decode(buf, len, &extra);
    if (!asn)
        rc = ca_ossl_err(
            P11CA_E_INPUT,
            "%s is not a certificate request (PEM or DER; truncated or damaged?)",
            what);
    else if (extra)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "%s holds more than one certificate request", what);
    else if (!(csr = calloc(1, sizeof(*csr))))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK && asn && csr) {
        /* As X509_PUBKEY_set0_param: a key's bits have no unused bits. */
        asn->info->spki->bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
        asn->info->spki->bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        csr->asn = asn;
        asn = NULL;
        *out = csr;
    }
    CSR_DER_free(asn);
    ERR_clear_error();
    return rc;
}

void ca_csr_free(ca_csr *csr)
{
    if (!csr)
        return;
    CSR_DER_free(csr->asn);
    free(csr);
}

X509_NAME *ca_csr_take_subject(ca_csr *csr)
{
    X509_NAME *n = csr->asn->info->subject;

    csr->asn->info->subject = NULL;
    return n;
}

/* An EC key on a curve of fast_curves: a copy of its template key with the
 * point set (EC_POINT_oct2point checks it is on the curve, as the decoder
 * does), instead of a new group for every key. */
static EVP_PKEY *key_ec(const ca_csr_cache *cc, int curve,
                        const ASN1_BIT_STRING *bits)
{
    EVP_PKEY *pk = NULL;

    for (size_t i = 0; !pk && i < CA_CSR_CURVES; i++)
        if (fast_curves[i] == curve)
            pk = EVP_PKEY_dup(cc->ec[i]);
    if (pk
        && EVP_PKEY_set1_encoded_public_key(pk, bits->data,
                                            (size_t)bits->length)
               != 1) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

/* rsaEncryption: RSAPublicKey read as OpenSSL's template reads it, the key
 * made with EVP_PKEY_fromdata. */
static EVP_PKEY *key_rsa(const ASN1_BIT_STRING *bits)
{
    const unsigned char *p = bits->data;
    CSR_RSA_PUB *rp = d2i_CSR_RSA_PUB(NULL, &p, bits->length);
    OSSL_PARAM_BLD *bld = rp ? OSSL_PARAM_BLD_new() : NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pc = NULL;
    EVP_PKEY *pk = NULL;

    if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, rp->n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, rp->e)
        && (params = OSSL_PARAM_BLD_to_param(bld))
        && (pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL))
        && EVP_PKEY_fromdata_init(pc) == 1)
        (void)EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    CSR_RSA_PUB_free(rp);
    return pk;
}

/* Any other key: OpenSSL's decoders, as d2i_X509_REQ would have used. */
static EVP_PKEY *key_decode(const CSR_SPKI *spki)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pk = NULL;
    int len =
        ASN1_item_i2d((const ASN1_VALUE *)spki, &der, ASN1_ITEM_rptr(CSR_SPKI));

    p = der;
    if (len > 0)
        pk = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    return pk;
}

EVP_PKEY *ca_csr_key(const ca_csr_cache *cc, const ca_csr *csr)
{
    const CSR_SPKI *spki = csr->asn->info->spki;
    const ASN1_OBJECT *obj;
    const void *pval;
    int ptype, nid;

    X509_ALGOR_get0(&obj, &ptype, &pval, spki->alg);
    nid = OBJ_obj2nid(obj);
    /* A bad point goes on to the decoders, for OpenSSL's usual reason. */
    if (nid == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT && cc) {
        EVP_PKEY *pk;

        ERR_set_mark();
        pk = key_ec(cc, OBJ_obj2nid(pval), spki->bits);
        ERR_pop_to_mark();
        if (pk)
            return pk;
    }
    if (nid == NID_rsaEncryption
        && (ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF))
        return key_rsa(spki->bits);
    if ((nid == NID_ED25519 || nid == NID_ED448) && ptype == V_ASN1_UNDEF)
        return EVP_PKEY_new_raw_public_key_ex(
            NULL, nid == NID_ED25519 ? "ED25519" : "ED448", NULL,
            spki->bits->data, (size_t)spki->bits->length);
    return key_decode(spki);
}

/*
 * ECDSA and RSA PKCS#1 v1.5 with SHA-2, the signatures of nearly every CSR:
 * the request's DER hashed with a digest fetched once, the signature
 * checked with EVP_PKEY_verify.  The same checks as ASN1_item_verify:
 * the algorithm must be one for the key's type.  1: valid, 0: invalid,
 * -1: not a signature of this kind (the caller verifies it the general
 * way).
 */
static int verify_fast(const ca_csr_cache *cc, const CSR_DER *csr, EVP_PKEY *pk)
{
    static const int md_nids[CA_CSR_MDS] = {NID_sha256, NID_sha384, NID_sha512};
    const CSR_DER_INFO *info = csr->info;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *type = NULL;
    EVP_PKEY_CTX *pc;
    int mdnid, pknid, ok;

    if (!cc || info->enc.modified || !info->enc.enc
        || !OBJ_find_sigid_algs(OBJ_obj2nid(csr->sig_alg->algorithm), &mdnid,
                                &pknid)
        || (pknid != NID_X9_62_id_ecPublicKey && pknid != NID_rsaEncryption)
        || !EVP_PKEY_is_a(pk, OBJ_nid2sn(pknid)))
        return -1;
    for (size_t i = 0; i < CA_CSR_MDS; i++)
        if (md_nids[i] == mdnid)
            type = cc->md[i];
    if (!type)
        return -1;
    if (!EVP_Digest(info->enc.enc, (size_t)info->enc.len, md, &mdlen, type,
                    NULL))
        return 0;
    pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    ok = pc && EVP_PKEY_verify_init(pc) == 1
         && EVP_PKEY_CTX_set_signature_md(pc, type) == 1
         && EVP_PKEY_verify(pc, csr->sig->data, (size_t)csr->sig->length, md,
                            mdlen)
                == 1;
    EVP_PKEY_CTX_free(pc);
    return ok;
}

bool ca_csr_verify(const ca_csr_cache *cc, const ca_csr *csr, EVP_PKEY *pk)
{
    const CSR_DER *asn = csr->asn;
    /* A signature with unused bits: ASN1_item_verify refuses it, saying
     * why. */
    int ok = asn->sig->flags & 0x7 ? -1 : verify_fast(cc, asn, pk);

    if (ok < 0)
        ok = ASN1_item_verify_ex(ASN1_ITEM_rptr(CSR_DER_INFO), asn->sig_alg,
                                 asn->sig, asn->info, NULL, pk, NULL, NULL);
    return ok == 1;
}

STACK_OF(X509_EXTENSION) * ca_csr_extensions(const ca_csr *csr)
{
    static const int nids[] = {NID_ext_req, NID_ms_ext_req};
    const STACK_OF(X509_ATTRIBUTE) *attrs = csr->asn->info->attributes;
    const unsigned char *p;
    ASN1_TYPE *ext = NULL;
    int idx;

    /* As X509_REQ_get_extensions: the first extensionRequest's value. */
    for (size_t i = 0; !ext && i < sizeof(nids) / sizeof(nids[0]); i++) {
        idx = X509at_get_attr_by_NID(attrs, nids[i], -1);
        if (idx >= 0)
            ext = X509_ATTRIBUTE_get0_type(X509at_get_attr(attrs, idx), 0);
    }
    if (!ext)
        return sk_X509_EXTENSION_new_null();
    if (ext->type != V_ASN1_SEQUENCE)
        return NULL;
    p = ext->value.sequence->data;
    return (STACK_OF(X509_EXTENSION) *)ASN1_item_d2i(
        NULL, &p, ext->value.sequence->length, ASN1_ITEM_rptr(X509_EXTENSIONS));
}

int ca_csr_spki_der(const ca_csr *csr, unsigned char **der)
{
    *der = NULL;
    return ASN1_item_i2d((const ASN1_VALUE *)csr->asn->info->spki, der,
                         ASN1_ITEM_rptr(CSR_SPKI));
}

const ASN1_BIT_STRING *ca_csr_key_bits(const ca_csr *csr)
{
    return csr->asn->info->spki->bits;
}

int ca_csr_copy_key(const ca_csr *csr, X509_PUBKEY *to)
{
    const CSR_SPKI *spki = csr->asn->info->spki;
    const ASN1_OBJECT *obj;
    const void *pval;
    void *param = NULL;
    unsigned char *bits;
    int ptype;

    X509_ALGOR_get0(&obj, &ptype, &pval, spki->alg);
    if (ptype == V_ASN1_OBJECT)
        param = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        param = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL)
        ptype = V_ASN1_UNDEF;
    bits =
        OPENSSL_malloc(spki->bits->length > 0 ? (size_t)spki->bits->length : 1);
    if (bits && spki->bits->length > 0)
        memcpy(bits, spki->bits->data, (size_t)spki->bits->length);
    if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) && !param)
        goto fail;
    if (bits
        && X509_PUBKEY_set0_param(to, OBJ_dup(obj), ptype, param, bits,
                                  spki->bits->length))
        return 1;
fail:
    OPENSSL_free(bits);
    if (ptype == V_ASN1_OBJECT)
        ASN1_OBJECT_free(param);
    else
        ASN1_STRING_free(param);
    return 0;
}
