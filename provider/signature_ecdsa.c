/* SPDX-License-Identifier: Apache-2.0 */
/* SIGNATURE for ECDSA: CKM_ECDSA on a software digest (or a token-hashed
 * CKM_ECDSA_SHA* when only that is allowed), r||s turned into DER;
 * verification in software. */
#include "config.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <stdio.h>

#include "signature.h"

/* r||s of the largest curve (P-521: 2 x 66 bytes), with room to spare. */
#define ECDSA_RS_MAX 160

static OSSL_FUNC_signature_newctx_fn ecdsa_newctx;
static OSSL_FUNC_signature_sign_init_fn ecdsa_sign_init;
static OSSL_FUNC_signature_verify_init_fn ecdsa_verify_init;
static OSSL_FUNC_signature_digest_sign_init_fn ecdsa_digest_sign_init;
static OSSL_FUNC_signature_digest_verify_init_fn ecdsa_digest_verify_init;
static OSSL_FUNC_signature_get_ctx_params_fn ecdsa_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn ecdsa_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn ecdsa_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn ecdsa_settable_ctx_params;

static bool ecdsa_key_ok(const prov_key *key)
{
    return key->type == PROV_KEY_EC;
}

static void ecdsa_reset(sig_ctx *s)
{
    (void)s;
}

static int ecdsa_choose(sig_ctx *s)
{
    return sig_choose_mech(s, CKM_ECDSA, s->mdi ? s->mdi->ecdsa : 0);
}

/* The token's r||s (two halves of the order's size) as ECDSA-Sig-Value. */
static int ecdsa_to_der(sig_ctx *s, const unsigned char *rs, size_t rslen,
                        unsigned char *sig, size_t *siglen, size_t sigsize)
{
    size_t len = sig_ecdsa_der(rs, rslen, sig, sigsize);

    if (len == 0) {
        prov_raise(
            s->ctx, PROV_R_TOKEN,
            "ECDSA signature with %s: cannot encode the token's signature of %zu bytes as DER",
            sig_key_name(s->key), rslen);
        return 0;
    }
    *siglen = len;
    return 1;
}

/* A digest of the set digest's size; without one, at most the order. */
static int ecdsa_check_input(sig_ctx *s, size_t inlen)
{
    size_t order = (s->key->bits + 7) / 8;

    if (s->md && inlen != s->md_size) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "ECDSA signature: input of %zu bytes is not a %s digest (%zu bytes)",
            inlen, s->mdi->display, s->md_size);
        return 0;
    }
    if (!s->md && (inlen == 0 || inlen > order)) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "ECDSA signature: input of %zu bytes; a digest of 1 to %zu bytes is expected for a %u-bit curve",
            inlen, order, s->key->bits);
        return 0;
    }
    return 1;
}

static int ecdsa_sign(sig_ctx *s, const unsigned char *in, size_t inlen,
                      unsigned char *sig, size_t *siglen, size_t sigsize)
{
    CK_MECHANISM mech = {s->mech, NULL, 0};
    unsigned char rs[ECDSA_RS_MAX];
    size_t rslen = 0;

    if (sigsize < s->key->max_sig)
        return sig_raise_small(s, sigsize, s->key->max_sig);
    if (!s->token_hashes && !ecdsa_check_input(s, inlen))
        return 0;
    if (!sig_token_sign(s, &mech, in, inlen, rs, &rslen, sizeof(rs)))
        return 0;
    return ecdsa_to_der(s, rs, rslen, sig, siglen, sigsize);
}

static void ecdsa_sw_params(sig_ctx *s, OSSL_PARAM *p)
{
    if (s->md)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST,
                                                s->mdname, 0);
    *p = OSSL_PARAM_construct_end();
}

static void ecdsa_describe(const sig_ctx *s, char *buf, size_t n)
{
    snprintf(buf, n, "ECDSA signature (%s, %s)",
             s->mdi ? s->mdi->display : "raw input", sig_mech_name(s->mech));
}

static const sig_alg ecdsa_alg = {
    "ECDSA",    ecdsa_key_ok,    ecdsa_reset,    ecdsa_choose,
    ecdsa_sign, ecdsa_sw_params, ecdsa_describe,
};

static void *ecdsa_newctx(void *provctx, const char *propq)
{
    /* @propq is for the application's context; digests are ours. */
    (void)propq;
    return sig_newctx(provctx, &ecdsa_alg);
}

static int ecdsa_sign_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    sig_ctx *s = vctx;

    return sig_init(s, key, EVP_PKEY_OP_SIGN, false)
           && sig_set_md(s, NULL, NULL) && ecdsa_set_ctx_params(s, params);
}

static int ecdsa_verify_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    sig_ctx *s = vctx;

    return sig_init(s, key, EVP_PKEY_OP_VERIFY, false)
           && sig_set_md(s, NULL, NULL) && ecdsa_set_ctx_params(s, params);
}

static int ecdsa_digest_sign_init(void *vctx, const char *mdname, void *key,
                                  const OSSL_PARAM params[])
{
    return sig_digest_init(vctx, mdname, key, EVP_PKEY_OP_SIGN)
           && ecdsa_set_ctx_params(vctx, params);
}

static int ecdsa_digest_verify_init(void *vctx, const char *mdname, void *key,
                                    const OSSL_PARAM params[])
{
    return sig_digest_init(vctx, mdname, key, EVP_PKEY_OP_VERIFY)
           && ecdsa_set_ctx_params(vctx, params);
}

/* ecdsa-with-SHA256 and friends, without parameters (RFC 5758). */
static int ecdsa_algid(sig_ctx *s, OSSL_PARAM *p)
{
    X509_ALGOR *alg;
    int nid = NID_undef, ok;

    if (!s->md)
        return 1; /* nothing to name */
    if (!OBJ_find_sigid_by_algs(&nid, s->md_nid, NID_X9_62_id_ecPublicKey)) {
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "ECDSA signature: no signature algorithm OID for ECDSA with %s",
            s->mdi->display);
        return 0;
    }
    alg = X509_ALGOR_new();
    if (!alg || !X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_UNDEF, NULL)) {
        X509_ALGOR_free(alg);
        prov_raise(s->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    ok = sig_set_algid(s, p, alg);
    X509_ALGOR_free(alg);
    return ok;
}

static int ecdsa_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sig_ctx *s = vctx;
    OSSL_PARAM *p;

    if (!s)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p && !ecdsa_algid(s, p))
        return 0;
    return sig_get_md_params(s, params);
}

static const OSSL_PARAM ecdsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return ecdsa_gettable;
}

static int ecdsa_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sig_ctx *s = vctx;

    if (!s)
        return 0;
    if (!params)
        return 1;
    return sig_set_md_params(s, params);
}

static const OSSL_PARAM ecdsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
    return ecdsa_settable;
}

const OSSL_DISPATCH prov_ecdsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_newctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))ecdsa_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))ecdsa_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
     (void (*)(void))ecdsa_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
     (void (*)(void))sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
     (void (*)(void))ecdsa_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
     (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
     (void (*)(void))sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))ecdsa_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
     (void (*)(void))ecdsa_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))ecdsa_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
     (void (*)(void))ecdsa_settable_ctx_params},
    {0, NULL},
};

#if P11CA_MESSAGE_SIGN
/* ------------------------------------------------------------------ */
/* ECDSA-SHA256 and friends (OpenSSL 3.4's message-signing API)        */
/* ------------------------------------------------------------------ */

static OSSL_FUNC_signature_sign_init_fn ecdsa_sigalg_sign_init;
static OSSL_FUNC_signature_sign_message_init_fn ecdsa_sigalg_message_init;
static OSSL_FUNC_signature_set_ctx_params_fn ecdsa_sigalg_set_ctx_params;
static OSSL_FUNC_signature_query_key_types_fn ecdsa_sigalg_key_types;

static const char **ecdsa_sigalg_key_types(void)
{
    static const char *types[] = {"EC", NULL};

    return types;
}

static int ecdsa_sigalg_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    return sig_sigalg_fixed_md(vctx, params)
           && ecdsa_set_ctx_params(vctx, params);
}

static int ecdsa_sigalg_sign_init(void *vctx, void *key,
                                  const OSSL_PARAM params[])
{
    return sig_init(vctx, key, EVP_PKEY_OP_SIGN, false)
           && ecdsa_sigalg_set_ctx_params(vctx, params);
}

static int ecdsa_sigalg_message_init(void *vctx, void *key,
                                     const OSSL_PARAM params[])
{
    return sig_init(vctx, key, EVP_PKEY_OP_SIGN, true)
           && ecdsa_sigalg_set_ctx_params(vctx, params);
}

#define IMPL_ECDSA_SIGALG(md, MD)                                              \
    static OSSL_FUNC_signature_newctx_fn ecdsa_##md##_newctx;                  \
    static void *ecdsa_##md##_newctx(void *provctx, const char *propq)         \
    {                                                                          \
        return sig_sigalg_newctx(provctx, &ecdsa_alg, MD);                     \
    }                                                                          \
    const OSSL_DISPATCH prov_ecdsa_##md##_signature_functions[] = {            \
        {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_##md##_newctx},     \
        {OSSL_FUNC_SIGNATURE_SIGN_INIT,                                        \
         (void (*)(void))ecdsa_sigalg_sign_init},                              \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sigalg_sign},           \
        {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT,                                \
         (void (*)(void))ecdsa_sigalg_message_init},                           \
        {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_UPDATE,                              \
         (void (*)(void))sig_digest_update},                                   \
        {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL,                               \
         (void (*)(void))sig_digest_sign_final},                               \
        {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},            \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},              \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,                                   \
         (void (*)(void))ecdsa_get_ctx_params},                                \
        {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,                              \
         (void (*)(void))ecdsa_gettable_ctx_params},                           \
        {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,                                   \
         (void (*)(void))ecdsa_sigalg_set_ctx_params},                         \
        {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,                              \
         (void (*)(void))ecdsa_settable_ctx_params},                           \
        {OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES,                                  \
         (void (*)(void))ecdsa_sigalg_key_types},                              \
        {0, NULL},                                                             \
    }

IMPL_ECDSA_SIGALG(sha1, "SHA1");
IMPL_ECDSA_SIGALG(sha224, "SHA2-224");
IMPL_ECDSA_SIGALG(sha256, "SHA2-256");
IMPL_ECDSA_SIGALG(sha384, "SHA2-384");
IMPL_ECDSA_SIGALG(sha512, "SHA2-512");
#endif
