/* SPDX-License-Identifier: Apache-2.0 */
/* Public keys of token objects, as OpenSSL EVP_PKEYs. */
#include "config.h"

#include "internal.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/*
 * CKA_EC_POINT is a DER OCTET STRING around the point; some tokens store
 * the bare point.  Returns a pointer into @p and the point's length.
 */
static const unsigned char *unwrap_point(const unsigned char *p, size_t n,
                                         size_t *len)
{
    size_t hl, l;

    if (n >= 2 && p[0] == 0x04) {
        if (p[1] < 0x80) {
            hl = 2;
            l = p[1];
        } else if (p[1] == 0x81 && n >= 3) {
            hl = 3;
            l = p[2];
        } else if (p[1] == 0x82 && n >= 4) {
            hl = 4;
            l = (size_t)p[2] << 8 | p[3];
        } else {
            hl = 0;
            l = 0;
        }
        if (hl && hl + l == n) {
            /* An uncompressed point starts with 04 too: decide by length. */
            *len = l;
            return p + hl;
        }
    }
    *len = n;
    return p;
}

static CK_RV bad_key(p11_obj *obj, const char *why)
{
    return p11_error_set(P11_RV_BAD_INPUT, NULL, obj->tok,
                         p11_obj_describe(obj), "%s", why);
}

static CK_RV rsa_public(p11_obj *obj, OSSL_LIB_CTX *libctx, const char *propq,
                        EVP_PKEY **out)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    BIGNUM *bn = NULL, *be = NULL;
    CK_RV rv;

    rv = p11_obj_get_attr(obj, CKA_MODULUS, &n, &nl);
    if (rv == CKR_OK)
        rv = p11_obj_get_attr(obj, CKA_PUBLIC_EXPONENT, &e, &el);
    if (rv != CKR_OK) {
        if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
            rv = bad_key(obj, "no modulus or public exponent");
        goto out;
    }
    rv = bad_key(obj, "cannot build the RSA public key");
    bn = BN_bin2bn(n, (int)nl, NULL);
    be = BN_bin2bn(e, (int)el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn || !be || !bld
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)
        || !(params = OSSL_PARAM_BLD_to_param(bld)))
        goto out;
    pctx = EVP_PKEY_CTX_new_from_name(libctx, "RSA", propq);
    if (!pctx || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    rv = CKR_OK;
out:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return rv;
}

/* CKA_EC_POINT of @obj, or of its public key or certificate. */
static CK_RV ec_point(p11_obj *obj, unsigned char **pt, size_t *len)
{
    p11_obj *peer = NULL;
    unsigned char *der = NULL;
    const unsigned char *q;
    size_t dl = 0;
    X509 *x = NULL;
    CK_RV rv;

    rv = p11_obj_get_attr(obj, CKA_EC_POINT, pt, len);
    if (rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
        return rv;
    if (p11_obj_find_peer(obj, CKO_PUBLIC_KEY, &peer) == CKR_OK) {
        rv = p11_obj_get_attr(peer, CKA_EC_POINT, pt, len);
        p11_obj_unref(peer);
        return rv;
    }
    rv = p11_obj_find_peer(obj, CKO_CERTIFICATE, &peer);
    if (rv == CKR_OK)
        rv = p11_obj_get_attr(peer, CKA_VALUE, &der, &dl);
    p11_obj_unref(peer);
    if (rv != CKR_OK)
        return p11_error_set(
            P11_RV_NO_OBJECT, NULL, obj->tok, p11_obj_describe(obj),
            "the token holds no public key or certificate with this key's id, so its public point is unknown");
    q = der;
    x = d2i_X509(NULL, &q, (long)dl);
    free(der);
    if (x) {
        unsigned char *enc = NULL;
        size_t n = EVP_PKEY_get1_encoded_public_key(X509_get0_pubkey(x), &enc);
        if (n > 0 && (*pt = malloc(n)) != NULL) {
            memcpy(*pt, enc, n);
            *len = n;
        }
        OPENSSL_free(enc);
    }
    X509_free(x);
    return *pt ? CKR_OK : bad_key(obj, "its certificate has no usable key");
}

static CK_RV ec_public(p11_obj *obj, OSSL_LIB_CTX *libctx, const char *propq,
                       EVP_PKEY **out)
{
    unsigned char *pt = NULL;
    const unsigned char *raw;
    size_t pl = 0, rl = 0;
    unsigned bits;
    int nid;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *pctx = NULL;
    CK_RV rv;

    rv = p11_obj_key_info(obj, &bits, &nid);
    if (rv == CKR_OK && nid == NID_undef)
        rv = bad_key(obj, "unsupported curve");
    if (rv == CKR_OK)
        rv = ec_point(obj, &pt, &pl);
    if (rv != CKR_OK)
        goto out;
    raw = unwrap_point(pt, pl, &rl);
    rv = bad_key(obj, "cannot build the public key from its point");
    if (nid == NID_ED25519 || nid == NID_ED448) {
        *out = EVP_PKEY_new_raw_public_key_ex(libctx, OBJ_nid2sn(nid), propq,
                                              raw, rl);
        if (*out)
            rv = CKR_OK;
        goto out;
    }
    /* Named curve only: explicit parameters break strict verifiers. */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)OBJ_nid2sn(nid), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  (void *)raw, rl);
    params[2] = OSSL_PARAM_construct_end();
    pctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", propq);
    if (pctx && EVP_PKEY_fromdata_init(pctx) > 0
        && EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) > 0)
        rv = CKR_OK;
out:
    EVP_PKEY_CTX_free(pctx);
    free(pt);
    return rv;
}

CK_RV p11_obj_public_key(p11_obj *obj, OSSL_LIB_CTX *libctx, const char *propq,
                         EVP_PKEY **out)
{
    return_val_if_fail(obj && out, CKR_ARGUMENTS_BAD);
    *out = NULL;
    if (obj->cls != CKO_PUBLIC_KEY && obj->cls != CKO_PRIVATE_KEY)
        return bad_key(obj, "not a key");
    switch (obj->subtype) {
    case CKK_RSA:
        return rsa_public(obj, libctx, propq, out);
    case CKK_EC:
    case CKK_EC_EDWARDS:
        return ec_public(obj, libctx, propq, out);
    default:
        return bad_key(obj, "unsupported key type");
    }
}
