/* SPDX-License-Identifier: Apache-2.0 */
/* SIGNATURE for Ed25519 and Ed448: one-shot pure EdDSA with CKM_EDDSA over
 * the whole message on the token; verification in software. */
#include "config.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <stdio.h>

#include "signature.h"

#define ED25519_SIGSIZE 64
#define ED448_SIGSIZE   114

/* CK_EDDSA_PARAMS (PKCS#11 3.0), absent from older p11-kit headers. */
typedef struct ed_params {
    CK_BBOOL phFlag;
    CK_ULONG ulContextDataLen;
    CK_BYTE_PTR pContextData;
} ed_params;

static OSSL_FUNC_signature_newctx_fn ed_newctx;
static OSSL_FUNC_signature_newctx_fn ed448_newctx;
static OSSL_FUNC_signature_digest_sign_init_fn ed_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_fn ed_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn ed_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_fn ed_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn ed_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn ed_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn ed_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn ed_settable_ctx_params;

static bool ed_key_ok(const prov_key *key)
{
    return key->type == PROV_KEY_ED25519;
}

static bool ed448_key_ok(const prov_key *key)
{
    return key->type == PROV_KEY_ED448;
}

static bool is_ed448(const sig_ctx *s)
{
    return s->key && s->key->type == PROV_KEY_ED448;
}

static size_t ed_sigsize(const sig_ctx *s)
{
    return is_ed448(s) ? ED448_SIGSIZE : ED25519_SIGSIZE;
}

static void ed_reset(sig_ctx *s)
{
    (void)s;
}

static int ed_choose(sig_ctx *s)
{
    return sig_choose_mech(s, CKM_EDDSA, 0);
}

/*
 * Pure EdDSA: CKM_EDDSA over the message; without parameters for Ed25519,
 * with CK_EDDSA_PARAMS (no prehash, no context) for Ed448, which PKCS#11
 * 3.0 names so (SoftHSM2 takes either).
 */
static int ed_sign(sig_ctx *s, const unsigned char *in, size_t inlen,
                   unsigned char *sig, size_t *siglen, size_t sigsize)
{
    ed_params p = {CK_FALSE, 0, NULL};
    CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};

    if (sigsize < ed_sigsize(s))
        return sig_raise_small(s, sigsize, ed_sigsize(s));
    if (is_ed448(s)) {
        mech.pParameter = &p;
        mech.ulParameterLen = sizeof(p);
    }
    return sig_token_sign(s, &mech, in, inlen, sig, siglen, sigsize);
}

static void ed_sw_params(sig_ctx *s, OSSL_PARAM *p)
{
    (void)s;
    *p = OSSL_PARAM_construct_end();
}

static void ed_describe(const sig_ctx *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s signature (CKM_EDDSA)", s->alg->name);
}

static const sig_alg ed_alg = {
    "Ed25519", ed_key_ok,    ed_reset,    ed_choose,
    ed_sign,   ed_sw_params, ed_describe,
};

static const sig_alg ed448_alg = {
    "Ed448", ed448_key_ok, ed_reset,    ed_choose,
    ed_sign, ed_sw_params, ed_describe,
};

static void *ed_newctx(void *provctx, const char *propq)
{
    (void)propq;
    return sig_newctx(provctx, &ed_alg);
}

static void *ed448_newctx(void *provctx, const char *propq)
{
    (void)propq;
    return sig_newctx(provctx, &ed448_alg);
}

/* EdDSA hashes the message itself: no digest may be named. */
static int ed_init(sig_ctx *s, const char *mdname, void *key, int op,
                   const OSSL_PARAM params[])
{
    if (mdname && *mdname) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s signs the message itself: no digest may be set (got %s)",
                   s->alg->name, mdname);
        return 0;
    }
    return sig_init(s, key, op, true) && ed_set_ctx_params(s, params);
}

static int ed_digest_sign_init(void *vctx, const char *mdname, void *key,
                               const OSSL_PARAM params[])
{
    return ed_init(vctx, mdname, key, EVP_PKEY_OP_SIGN, params);
}

static int ed_digest_verify_init(void *vctx, const char *mdname, void *key,
                                 const OSSL_PARAM params[])
{
    return ed_init(vctx, mdname, key, EVP_PKEY_OP_VERIFY, params);
}

/* EdDSA in software (a software keypair), one-shot in our context. */
static int ed_sw_sign(sig_ctx *s, unsigned char *sig, size_t *siglen,
                      size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    size_t out = sigsize;
    int ok;

    ok = m
         && EVP_DigestSignInit_ex(m, NULL, NULL, prov_swctx(s->ctx),
                                  prov_swprops(s->ctx), s->key->pub, NULL)
                == 1
         && EVP_DigestSign(m, sig, &out, tbs, tbslen) == 1;
    EVP_MD_CTX_free(m);
    if (!ok) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s signature with a software key failed", s->alg->name);
        return 0;
    }
    *siglen = out;
    return 1;
}

static int ed_digest_sign(void *vctx, unsigned char *sig, size_t *siglen,
                          size_t sigsize, const unsigned char *tbs,
                          size_t tbslen)
{
    sig_ctx *s = vctx;

    if (!s->digest_op || s->op != EVP_PKEY_OP_SIGN)
        return sig_not_ready(s, "digest sign");
    if (!sig) {
        *siglen = ed_sigsize(s);
        return 1;
    }
    if (sig_is_software(s))
        return ed_sw_sign(s, sig, siglen, sigsize, tbs, tbslen);
    if (!s->mech && !ed_choose(s))
        return 0;
    return ed_sign(s, tbs, tbslen, sig, siglen, sigsize);
}

static int ed_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                            const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *s = vctx;
    EVP_MD_CTX *m;
    int rc = 0;

    if (!s->digest_op || s->op != EVP_PKEY_OP_VERIFY)
        return sig_not_ready(s, "digest verify");
    m = EVP_MD_CTX_new();
    if (!m
        || EVP_DigestVerifyInit_ex(m, NULL, NULL, prov_swctx(s->ctx),
                                   prov_swprops(s->ctx), s->key->pub, NULL)
               != 1) {
        prov_raise(s->ctx, PROV_R_INTERNAL,
                   "%s verification: cannot set up the public key",
                   s->alg->name);
        goto out;
    }
    rc = EVP_DigestVerify(m, sig, siglen, tbs, tbslen) == 1;
    if (!rc && ERR_peek_last_error() == 0)
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s verification: the signature does not match",
                   s->alg->name);
out:
    EVP_MD_CTX_free(m);
    return rc;
}

static int ed_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sig_ctx *s = vctx;
    X509_ALGOR *alg;
    OSSL_PARAM *p;
    int ok;

    if (!s)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (!p)
        return 1;
    /* id-Ed25519 or id-Ed448 with absent parameters (RFC 8410). */
    alg = X509_ALGOR_new();
    if (!alg
        || !X509_ALGOR_set0(
            alg, OBJ_nid2obj(s->alg == &ed448_alg ? NID_ED448 : NID_ED25519),
            V_ASN1_UNDEF, NULL)) {
        X509_ALGOR_free(alg);
        prov_raise(s->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    ok = sig_set_algid(s, p, alg);
    X509_ALGOR_free(alg);
    return ok;
}

static const OSSL_PARAM ed_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ed_gettable_ctx_params(void *vctx, void *provctx)
{
    return ed_gettable;
}

/* Pure EdDSA has no settings (no context string, no prehash). */
static int ed_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    return vctx != NULL;
}

static const OSSL_PARAM ed_settable[] = {
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ed_settable_ctx_params(void *vctx, void *provctx)
{
    return ed_settable;
}

#define ED_SIGNATURE_FUNCTIONS(newctx)                                         \
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))newctx},                      \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,                                 \
         (void (*)(void))ed_digest_sign_init},                                 \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))ed_digest_sign},     \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,                               \
         (void (*)(void))ed_digest_verify_init},                               \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))ed_digest_verify}, \
        {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},            \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},              \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,                                   \
         (void (*)(void))ed_get_ctx_params},                                   \
        {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,                              \
         (void (*)(void))ed_gettable_ctx_params},                              \
        {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,                                   \
         (void (*)(void))ed_set_ctx_params},                                   \
    {                                                                          \
        OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,                               \
            (void (*)(void))ed_settable_ctx_params                             \
    }

#if P11CA_MESSAGE_SIGN
/*
 * OpenSSL 3.4's message-signing API: EVP_PKEY_sign_message_init with
 * "ED25519" or "ED448", then one EVP_PKEY_sign over the message (pure
 * EdDSA cannot stream).
 */
static OSSL_FUNC_signature_sign_message_init_fn ed_message_init;
static OSSL_FUNC_signature_sign_fn ed_message_sign;
static OSSL_FUNC_signature_query_key_types_fn ed25519_key_types;
static OSSL_FUNC_signature_query_key_types_fn ed448_key_types;

static int ed_message_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    return ed_init(vctx, NULL, key, EVP_PKEY_OP_SIGN, params);
}

static int ed_message_sign(void *vctx, unsigned char *sig, size_t *siglen,
                           size_t sigsize, const unsigned char *tbs,
                           size_t tbslen)
{
    return ed_digest_sign(vctx, sig, siglen, sigsize, tbs, tbslen);
}

static const char **ed25519_key_types(void)
{
    static const char *types[] = {"ED25519", NULL};

    return types;
}

static const char **ed448_key_types(void)
{
    static const char *types[] = {"ED448", NULL};

    return types;
}

#define ED_MESSAGE_FUNCTIONS(key_types)                                        \
    {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT, (void (*)(void))ed_message_init},  \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))ed_message_sign},           \
    {                                                                          \
        OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES, (void (*)(void))key_types         \
    }
#endif

const OSSL_DISPATCH prov_ed25519_signature_functions[] = {
    ED_SIGNATURE_FUNCTIONS(ed_newctx),
#if P11CA_MESSAGE_SIGN
    ED_MESSAGE_FUNCTIONS(ed25519_key_types),
#endif
    {0, NULL},
};

const OSSL_DISPATCH prov_ed448_signature_functions[] = {
    ED_SIGNATURE_FUNCTIONS(ed448_newctx),
#if P11CA_MESSAGE_SIGN
    ED_MESSAGE_FUNCTIONS(ed448_key_types),
#endif
    {0, NULL},
};
