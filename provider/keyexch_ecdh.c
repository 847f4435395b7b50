/* SPDX-License-Identifier: Apache-2.0 */
/* KEYEXCH for ECDH: CKM_ECDH1_DERIVE on the token with a peer's public key,
 * and the optional X9.63 KDF in software on the shared secret. */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prov.h"

static OSSL_FUNC_keyexch_newctx_fn ecdh_newctx;
static OSSL_FUNC_keyexch_init_fn ecdh_init;
static OSSL_FUNC_keyexch_set_peer_fn ecdh_set_peer;
static OSSL_FUNC_keyexch_derive_fn ecdh_derive;
static OSSL_FUNC_keyexch_freectx_fn ecdh_freectx;
static OSSL_FUNC_keyexch_dupctx_fn ecdh_dupctx;
static OSSL_FUNC_keyexch_set_ctx_params_fn ecdh_set_ctx_params;
static OSSL_FUNC_keyexch_settable_ctx_params_fn ecdh_settable_ctx_params;
static OSSL_FUNC_keyexch_get_ctx_params_fn ecdh_get_ctx_params;
static OSSL_FUNC_keyexch_gettable_ctx_params_fn ecdh_gettable_ctx_params;

typedef struct ecdh_ctx {
    prov_ctx *ctx;
    prov_key *key;      /* our token key */
    prov_key *peer;     /* a public key (imported into our keymgmt) */
    size_t field_len;   /* bytes of the shared secret */
    int cofactor_mode;  /* -1 (the key's: none) or 0 */
    bool x963;          /* X9.63 KDF on the shared secret */
    EVP_MD *kdf_md;     /* fetched in prov_swctx() */
    char *kdf_md_props; /* kept for completeness; not used */
    size_t kdf_outlen;
    unsigned char *ukm;
    size_t ukm_len;
} ecdh_ctx;

static const char *key_name(const prov_key *key)
{
    return key->uri ? key->uri : "the imported public key";
}

/* The curve's name for messages ("prime256v1"), or "unknown". */
static const char *curve_name(const prov_key *key)
{
    const char *sn =
        key->curve_nid != NID_undef ? OBJ_nid2sn(key->curve_nid) : NULL;

    return sn ? sn : "an unnamed curve";
}

/* A public key where the operation needs the token's private key. */
static int raise_no_private(prov_ctx *ctx, const prov_key *key, const char *op)
{
    if (key->uri)
        prov_raise(
            ctx, PROV_R_BAD_INPUT,
            "%s needs the private key on the token, but %s is a public key", op,
            key->uri);
    else
        prov_raise(
            ctx, PROV_R_BAD_INPUT,
            "%s needs a private key on a token, but this key is only a public key imported into p11ca",
            op);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Context lifecycle                                                   */
/* ------------------------------------------------------------------ */

static void *ecdh_newctx(void *provctx)
{
    ecdh_ctx *c = OPENSSL_zalloc(sizeof(*c));

    if (!c) {
        prov_raise(provctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    c->ctx = provctx;
    c->cofactor_mode = -1;
    return c;
}

static void reset_kdf(ecdh_ctx *c)
{
    c->x963 = false;
    EVP_MD_free(c->kdf_md);
    c->kdf_md = NULL;
    free(c->kdf_md_props);
    c->kdf_md_props = NULL;
    c->kdf_outlen = 0;
    OPENSSL_clear_free(c->ukm, c->ukm_len);
    c->ukm = NULL;
    c->ukm_len = 0;
}

static void ecdh_freectx(void *vctx)
{
    ecdh_ctx *c = vctx;

    if (!c)
        return;
    reset_kdf(c);
    prov_key_unref(c->key);
    prov_key_unref(c->peer);
    OPENSSL_clear_free(c, sizeof(*c));
}

/* A plain copy: the context holds no token state and no secret. */
static void *ecdh_dupctx(void *vctx)
{
    const ecdh_ctx *src = vctx;
    ecdh_ctx *c = OPENSSL_zalloc(sizeof(*c));

    if (!c) {
        prov_raise(src->ctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    *c = *src;
    c->key = prov_key_ref(src->key);
    c->peer = prov_key_ref(src->peer);
    c->kdf_md_props = NULL;
    c->ukm = NULL;
    if (c->kdf_md)
        EVP_MD_up_ref(c->kdf_md);
    if ((src->kdf_md_props && !(c->kdf_md_props = strdup(src->kdf_md_props)))
        || (src->ukm && !(c->ukm = OPENSSL_memdup(src->ukm, src->ukm_len)))) {
        prov_raise(src->ctx, PROV_R_INTERNAL, "out of memory");
        ecdh_freectx(c);
        return NULL;
    }
    return c;
}

/* The size of the shared secret: the field size of the curve. */
static size_t field_len(prov_ctx *ctx, const prov_key *key)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(
        prov_swctx(ctx), prov_swprops(ctx), key->curve_nid);
    int degree = g ? EC_GROUP_get_degree(g) : 0;

    EC_GROUP_free(g);
    return degree > 0 ? ((size_t)degree + 7) / 8 : 0;
}

static int ecdh_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    ecdh_ctx *c = vctx;
    prov_key *key = provkey;
    size_t flen;

    if (!key || key->type != PROV_KEY_EC || !prov_key_pub(key)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH needs an EC key (this one is %s)",
                   key ? prov_key_type_name(key->type) : "missing");
        return 0;
    }
    if (!key->priv && !key->sw_private)
        return raise_no_private(c->ctx, key, "ECDH");
    if ((flen = field_len(c->ctx, key)) == 0) {
        prov_raise(c->ctx, PROV_R_UNSUPPORTED,
                   "ECDH: %s is on %s, which is not a known named curve",
                   key_name(key), curve_name(key));
        return 0;
    }
    prov_key_unref(c->key);
    prov_key_unref(c->peer);
    c->key = prov_key_ref(key);
    c->peer = NULL;
    c->field_len = flen;
    c->cofactor_mode = -1;
    reset_kdf(c);
    return ecdh_set_ctx_params(c, params);
}

static int ecdh_set_peer(void *vctx, void *provkey)
{
    ecdh_ctx *c = vctx;
    prov_key *peer = provkey;

    if (!c->key) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH: no key (init first)");
        return 0;
    }
    if (!peer || peer->type != PROV_KEY_EC || !prov_key_pub(peer)) {
        prov_raise(
            c->ctx, PROV_R_BAD_INPUT,
            "ECDH: the peer key must be an EC public key (this one is %s)",
            peer ? prov_key_type_name(peer->type) : "missing");
        return 0;
    }
    if (EVP_PKEY_parameters_eq(c->key->pub, peer->pub) != 1) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH: the peer key is on %s but %s is on %s",
                   curve_name(peer), key_name(c->key), curve_name(c->key));
        return 0;
    }
    prov_key_unref(c->peer);
    c->peer = prov_key_ref(peer);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Derivation                                                          */
/* ------------------------------------------------------------------ */

/*
 * The peer's point, uncompressed (04 || X || Y), as CKM_ECDH1_DERIVE wants
 * it: made from X and Y, whatever point format the peer key was given in.
 */
static unsigned char *peer_point(ecdh_ctx *c, size_t *len)
{
    BIGNUM *x = NULL, *y = NULL;
    unsigned char *pt = NULL;
    size_t flen = c->field_len;

    *len = 1 + 2 * flen;
    if (!EVP_PKEY_get_bn_param(c->peer->pub, OSSL_PKEY_PARAM_EC_PUB_X, &x)
        || !EVP_PKEY_get_bn_param(c->peer->pub, OSSL_PKEY_PARAM_EC_PUB_Y, &y)
        || !(pt = OPENSSL_malloc(*len))) {
        prov_raise(c->ctx, PROV_R_INTERNAL,
                   "ECDH: cannot read the peer's public point");
        goto out;
    }
    pt[0] = POINT_CONVERSION_UNCOMPRESSED;
    if (BN_bn2binpad(x, pt + 1, (int)flen) < 0
        || BN_bn2binpad(y, pt + 1 + flen, (int)flen) < 0) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH: the peer's point does not fit the curve");
        OPENSSL_free(pt);
        pt = NULL;
    }
out:
    BN_free(x);
    BN_free(y);
    return pt;
}

static int mech_usable(ecdh_ctx *c)
{
    p11_token *tok = p11_obj_token(c->key->priv);

    if (!p11_token_has_mechanism(tok, CKM_ECDH1_DERIVE, CKF_DERIVE, NULL)) {
        prov_raise(c->ctx, PROV_R_UNSUPPORTED,
                   "ECDH: %s does not support CKM_ECDH1_DERIVE",
                   p11_token_describe(tok));
        return 0;
    }
    if (!prov_key_allows(c->key, CKM_ECDH1_DERIVE)) {
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "ECDH: CKA_ALLOWED_MECHANISMS of %s does not include CKM_ECDH1_DERIVE",
            key_name(c->key));
        return 0;
    }
    return 1;
}

/*
 * A software key (our keymgmt won a fetch by name, e.g. a TLS ephemeral
 * key): plain ECDH in software, as the default provider would do it.
 */
static int software_derive(ecdh_ctx *c, unsigned char *z)
{
    EVP_PKEY_CTX *pctx;
    size_t zlen = c->field_len;
    int ok;

    pctx = EVP_PKEY_CTX_new_from_pkey(prov_swctx(c->ctx), c->key->pub,
                                      prov_swprops(c->ctx));
    ok = pctx && EVP_PKEY_derive_init(pctx) > 0
         && EVP_PKEY_derive_set_peer(pctx, c->peer->pub) > 0
         && EVP_PKEY_derive(pctx, z, &zlen) > 0 && zlen == c->field_len;
    EVP_PKEY_CTX_free(pctx);
    if (!ok)
        prov_raise(c->ctx, PROV_R_INTERNAL, "ECDH with a software key failed");
    return ok;
}

/* The raw shared secret (field_len bytes) into @z, on the token. */
static int token_derive(ecdh_ctx *c, unsigned char *z)
{
    unsigned char *pt = NULL;
    size_t ptlen = 0, zlen = c->field_len;
    p11_auth auth;
    CK_RV rv;
    int ok = 0;

    if (!c->peer) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH: no peer key set");
        return 0;
    }
    if (prov_key_is_software(c->key))
        return software_derive(c, z);
    if (!mech_usable(c) || !(pt = peer_point(c, &ptlen)))
        return 0;
    prov_key_auth(c->key, &auth);
    /* A module built on libcrypto may leave its own errors behind. */
    prov_set_mark(c->ctx);
    rv = p11_derive_ecdh(c->key->priv, &auth, pt, ptlen, z, &zlen);
    prov_pop_to_mark(c->ctx);
    if (rv != CKR_OK) {
        prov_raise_p11(c->ctx, rv, "ECDH derivation");
        goto out;
    }
    if (zlen != c->field_len) {
        prov_raise(c->ctx, PROV_R_TOKEN,
                   "ECDH: the token returned a %zu-byte secret, %zu expected",
                   zlen, c->field_len);
        goto out;
    }
    ok = 1;
out:
    OPENSSL_free(pt);
    return ok;
}

/* Plain ECDH: truncated to @outlen like OpenSSL's, never an error. */
static int derive_plain(ecdh_ctx *c, unsigned char *secret, size_t *secretlen,
                        size_t outlen)
{
    unsigned char *z;
    int ok = 0;

    if (!secret) {
        *secretlen = c->field_len;
        return 1;
    }
    if (!(z = OPENSSL_secure_zalloc(c->field_len))) {
        prov_raise(c->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    if (token_derive(c, z)) {
        *secretlen = outlen < c->field_len ? outlen : c->field_len;
        memcpy(secret, z, *secretlen);
        ok = 1;
    }
    OPENSSL_secure_clear_free(z, c->field_len);
    return ok;
}

static int x963_kdf(ecdh_ctx *c, const unsigned char *z, unsigned char *out)
{
    OSSL_PARAM params[4], *p = params;
    EVP_KDF_CTX *kctx = NULL;
    EVP_KDF *kdf;
    int ok;

    *p++ = OSSL_PARAM_construct_utf8_string(
        OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(c->kdf_md), 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z,
                                             c->field_len);
    if (c->ukm)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, c->ukm,
                                                 c->ukm_len);
    *p = OSSL_PARAM_construct_end();
    kdf = EVP_KDF_fetch(prov_swctx(c->ctx), OSSL_KDF_NAME_X963KDF,
                        prov_swprops(c->ctx));
    kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    ok = kctx && EVP_KDF_derive(kctx, out, c->kdf_outlen, params) > 0;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (!ok)
        prov_raise(c->ctx, PROV_R_INTERNAL, "ECDH: the X9.63 KDF failed");
    return ok;
}

/* ECDH then the X9.63 KDF (in software, on the secret read back). */
static int derive_x963(ecdh_ctx *c, unsigned char *secret, size_t *secretlen,
                       size_t outlen)
{
    unsigned char *z;
    int ok = 0;

    if (c->kdf_outlen == 0 || !c->kdf_md) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH with the X9.63 KDF needs kdf-digest and kdf-outlen");
        return 0;
    }
    if (!secret) {
        *secretlen = c->kdf_outlen;
        return 1;
    }
    if (outlen < c->kdf_outlen) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH: the output buffer has %zu bytes, kdf-outlen is %zu",
                   outlen, c->kdf_outlen);
        return 0;
    }
    if (!(z = OPENSSL_secure_zalloc(c->field_len))) {
        prov_raise(c->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    if (token_derive(c, z) && x963_kdf(c, z, secret)) {
        *secretlen = c->kdf_outlen;
        ok = 1;
    }
    OPENSSL_secure_clear_free(z, c->field_len);
    return ok;
}

static int ecdh_derive(void *vctx, unsigned char *secret, size_t *secretlen,
                       size_t outlen)
{
    ecdh_ctx *c = vctx;

    if (!c->key) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH: no key (init first)");
        return 0;
    }
    if (c->x963)
        return derive_x963(c, secret, secretlen, outlen);
    return derive_plain(c, secret, secretlen, outlen);
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static int set_cofactor(ecdh_ctx *c, const OSSL_PARAM *p)
{
    int mode;

    if (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH cofactor mode: -1, 0 or 1 expected");
        return 0;
    }
    if (mode == 1) {
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "ECDH cofactor mode is not supported: the token does plain ECDH (CKM_ECDH1_DERIVE)");
        return 0;
    }
    c->cofactor_mode = mode;
    return 1;
}

static int set_kdf_type(ecdh_ctx *c, const OSSL_PARAM *p)
{
    const char *name = NULL;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH KDF type: not a string");
        return 0;
    }
    if (name[0] == '\0') {
        c->x963 = false;
    } else if (strcasecmp(name, OSSL_KDF_NAME_X963KDF) == 0) {
        c->x963 = true;
    } else {
        prov_raise(c->ctx, PROV_R_UNSUPPORTED,
                   "ECDH KDF \"%s\" is not supported (none or X963KDF)", name);
        return 0;
    }
    return 1;
}

static int set_kdf_md(ecdh_ctx *c, const OSSL_PARAM params[],
                      const OSSL_PARAM *p)
{
    const OSSL_PARAM *pp;
    const char *name = NULL, *props = NULL;
    char *props_copy = NULL;
    EVP_MD *md;

    pp = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST_PROPS);
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)
        || (pp && !OSSL_PARAM_get_utf8_string_ptr(pp, &props))) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH KDF digest: not a string");
        return 0;
    }
    /* The caller's properties name its providers, not ours: not used. */
    prov_set_mark(c->ctx);
    md = EVP_MD_fetch(prov_swctx(c->ctx), name, prov_swprops(c->ctx));
    prov_pop_to_mark(c->ctx);
    if (!md || (props && !(props_copy = strdup(props)))) {
        prov_raise(c->ctx, PROV_R_UNSUPPORTED,
                   "ECDH KDF digest \"%s\" is not available", name);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(c->kdf_md);
    c->kdf_md = md;
    free(c->kdf_md_props);
    c->kdf_md_props = props_copy;
    return 1;
}

static int set_ukm(ecdh_ctx *c, const OSSL_PARAM *p)
{
    void *ukm = NULL;
    size_t len = 0;

    if (!OSSL_PARAM_get_octet_string(p, &ukm, 0, &len)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "ECDH KDF ukm: not an octet string");
        return 0;
    }
    OPENSSL_clear_free(c->ukm, c->ukm_len);
    c->ukm = ukm;
    c->ukm_len = len;
    return 1;
}

static int ecdh_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    ecdh_ctx *c = vctx;
    const OSSL_PARAM *p;
    unsigned int pad;

    if (!params)
        return 1;
    p = OSSL_PARAM_locate_const(params,
                                OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
    if (p && !set_cofactor(c, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
    if (p && !set_kdf_type(c, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST);
    if (p && !set_kdf_md(c, params, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN);
    if (p && !OSSL_PARAM_get_size_t(p, &c->kdf_outlen)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH kdf-outlen: not a size");
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_UKM);
    if (p && !set_ukm(c, p))
        return 0;
    /* ECDH secrets always have the field size: padding is implied. */
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_PAD);
    if (p && !OSSL_PARAM_get_uint(p, &pad)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "ECDH pad: not a number");
        return 0;
    }
    return 1;
}

static const OSSL_PARAM settable_tbl[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
    OSSL_PARAM_octet_string(OSSL_EXCHANGE_PARAM_KDF_UKM, NULL, 0),
    OSSL_PARAM_uint(OSSL_EXCHANGE_PARAM_PAD, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdh_settable_ctx_params(void *vctx, void *provctx)
{
    return settable_tbl;
}

static int ecdh_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    ecdh_ctx *c = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
    if (p && !OSSL_PARAM_set_int(p, 0))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
    if (p
        && !OSSL_PARAM_set_utf8_string(p, c->x963 ? OSSL_KDF_NAME_X963KDF : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST);
    if (p
        && !OSSL_PARAM_set_utf8_string(
            p, c->kdf_md ? EVP_MD_get0_name(c->kdf_md) : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN);
    if (p && !OSSL_PARAM_set_size_t(p, c->kdf_outlen))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_UKM);
    if (p && !OSSL_PARAM_set_octet_ptr(p, c->ukm, c->ukm_len))
        return 0;
    return 1;
}

static const OSSL_PARAM gettable_tbl[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
    OSSL_PARAM_DEFN(OSSL_EXCHANGE_PARAM_KDF_UKM, OSSL_PARAM_OCTET_PTR, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdh_gettable_ctx_params(void *vctx, void *provctx)
{
    return gettable_tbl;
}

const OSSL_DISPATCH prov_ecdh_keyexch_functions[] = {
    {OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))ecdh_newctx},
    {OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))ecdh_init},
    {OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))ecdh_set_peer},
    {OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))ecdh_derive},
    {OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))ecdh_freectx},
    {OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))ecdh_dupctx},
    {OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))ecdh_set_ctx_params},
    {OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS,
     (void (*)(void))ecdh_settable_ctx_params},
    {OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))ecdh_get_ctx_params},
    {OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS,
     (void (*)(void))ecdh_gettable_ctx_params},
    {0, NULL},
};
