/* SPDX-License-Identifier: Apache-2.0 */
/* ASYM_CIPHER for RSA: the context, its parameters, and encryption in
 * software with the public half (decryption: asym_cipher_rsa_dec.c). */
#include "config.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "asym_cipher_rsa.h"
#include "prov.h"

static OSSL_FUNC_asym_cipher_newctx_fn rsa_enc_newctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn rsa_enc_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn rsa_enc_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_enc_decrypt_init;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_enc_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn rsa_enc_dupctx;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn rsa_enc_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn rsa_enc_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn rsa_enc_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn rsa_enc_settable_ctx_params;

static const oaep_md oaep_mds[] = {
    {"SHA1", "SHA-1", CKM_SHA_1, CKG_MGF1_SHA1},
    {"SHA2-224", "SHA-224", CKM_SHA224, CKG_MGF1_SHA224},
    {"SHA2-256", "SHA-256", CKM_SHA256, CKG_MGF1_SHA256},
    {"SHA2-384", "SHA-384", CKM_SHA384, CKG_MGF1_SHA384},
    {"SHA2-512", "SHA-512", CKM_SHA512, CKG_MGF1_SHA512},
};
#define OAEP_SHA1 (&oaep_mds[0])

static const struct pad_name {
    int pad;
    const char *name;
} pad_names[] = {
    {RSA_PKCS1_PADDING, "pkcs1"},
    {RSA_NO_PADDING, "none"},
    {RSA_PKCS1_OAEP_PADDING, "oaep"},
    {RSA_PKCS1_OAEP_PADDING, "oeap"}, /* OpenSSL accepts the typo */
    {0, NULL},
};

const oaep_md *prov_rsa_enc_md(const rsa_enc_ctx *c)
{
    return c->md ? c->md : OAEP_SHA1;
}

/* OpenSSL's rule: an unset MGF1 digest follows the OAEP digest. */
const oaep_md *prov_rsa_enc_mgf1(const rsa_enc_ctx *c)
{
    return c->mgf1 ? c->mgf1 : prov_rsa_enc_md(c);
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

static void *rsa_enc_newctx(void *provctx)
{
    rsa_enc_ctx *c = calloc(1, sizeof(*c));

    if (!c) {
        prov_raise(provctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    c->ctx = provctx;
    c->pad = RSA_PKCS1_PADDING;
    c->implicit_rejection = 1;
    return c;
}

static void reset_params(rsa_enc_ctx *c)
{
    c->pad = RSA_PKCS1_PADDING;
    c->md = c->mgf1 = NULL;
    free(c->md_props);
    free(c->mgf1_props);
    c->md_props = c->mgf1_props = NULL;
    OPENSSL_free(c->label);
    c->label = NULL;
    c->label_len = 0;
    c->client_version = c->alt_version = 0;
    c->implicit_rejection = 1;
}

static void rsa_enc_freectx(void *vctx)
{
    rsa_enc_ctx *c = vctx;

    if (!c)
        return;
    reset_params(c);
    prov_key_unref(c->key);
    free(c);
}

static char *dup_or_null(const char *s, bool *ok)
{
    char *d = s ? strdup(s) : NULL;

    if (s && !d)
        *ok = false;
    return d;
}

/* A plain copy: no token state lives in the context (never fails on 3.0
 * but for memory). */
static void *rsa_enc_dupctx(void *vctx)
{
    const rsa_enc_ctx *src = vctx;
    rsa_enc_ctx *c = calloc(1, sizeof(*c));
    bool ok = true;

    if (!c) {
        prov_raise(src->ctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    *c = *src;
    c->key = prov_key_ref(src->key);
    c->md_props = dup_or_null(src->md_props, &ok);
    c->mgf1_props = dup_or_null(src->mgf1_props, &ok);
    c->label = NULL;
    if (src->label && !(c->label = OPENSSL_memdup(src->label, src->label_len)))
        ok = false;
    if (!ok) {
        prov_raise(src->ctx, PROV_R_INTERNAL, "out of memory");
        rsa_enc_freectx(c);
        return NULL;
    }
    return c;
}

static int enc_init(rsa_enc_ctx *c, prov_key *key, const OSSL_PARAM params[],
                    bool decrypt)
{
    if (!key || key->type != PROV_KEY_RSA || !prov_key_pub(key)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "RSA encryption needs an RSA key (this one is %s)",
                   key ? prov_key_type_name(key->type) : "missing");
        return 0;
    }
    if (decrypt && !key->priv && !key->sw_private)
        return raise_no_private(c->ctx, key, "RSA decryption");
    prov_key_unref(c->key);
    c->key = prov_key_ref(key);
    reset_params(c);
    return rsa_enc_set_ctx_params(c, params);
}

static int rsa_enc_encrypt_init(void *vctx, void *provkey,
                                const OSSL_PARAM params[])
{
    return enc_init(vctx, provkey, params, false);
}

static int rsa_enc_decrypt_init(void *vctx, void *provkey,
                                const OSSL_PARAM params[])
{
    return enc_init(vctx, provkey, params, true);
}

/* ------------------------------------------------------------------ */
/* Encryption: software, with the public half                          */
/* ------------------------------------------------------------------ */

/* The context's settings as parameters for the default provider. */
void prov_rsa_enc_sw_params(rsa_enc_ctx *c, OSSL_PARAM *p)
{
    *p++ = OSSL_PARAM_construct_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &c->pad);
    if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        /* Properties name the caller's providers: not used here. */
        *p++ = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
            (char *)prov_rsa_enc_md(c)->name, 0);
        *p++ = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
            (char *)prov_rsa_enc_mgf1(c)->name, 0);
        if (c->label)
            *p++ = OSSL_PARAM_construct_octet_string(
                OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, c->label, c->label_len);
    }
    *p = OSSL_PARAM_construct_end();
}

static int rsa_enc_encrypt(void *vctx, unsigned char *out, size_t *outlen,
                           size_t outsize, const unsigned char *in,
                           size_t inlen)
{
    rsa_enc_ctx *c = vctx;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM params[5];
    size_t len = outsize;
    int ok = 0;

    if (!out) {
        *outlen = prov_rsa_enc_size(c);
        return 1;
    }
    if (c->pad == RSA_PKCS1_WITH_TLS_PADDING) {
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA encryption: the TLS padding mode is for decryption only (use pkcs1)");
        return 0;
    }
    prov_rsa_enc_sw_params(c, params);
    pctx = EVP_PKEY_CTX_new_from_pkey(prov_swctx(c->ctx), c->key->pub,
                                      prov_swprops(c->ctx));
    if (!pctx || EVP_PKEY_encrypt_init_ex(pctx, params) <= 0
        || EVP_PKEY_encrypt(pctx, out, &len, in, inlen) <= 0) {
        prov_raise(
            c->ctx, PROV_R_BAD_INPUT,
            "RSA encryption with the public key of %s failed (%zu bytes in, padding %d)",
            prov_rsa_enc_key_name(c->key), inlen, c->pad);
        goto out;
    }
    *outlen = len;
    ok = 1;
out:
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static const char *pad_name(int pad)
{
    for (const struct pad_name *i = pad_names; i->name; i++)
        if (i->pad == pad)
            return i->name;
    return NULL;
}

static int get_pad(rsa_enc_ctx *c, OSSL_PARAM *p)
{
    const char *word;

    if (p->data_type == OSSL_PARAM_INTEGER)
        return OSSL_PARAM_set_int(p, c->pad);
    if (p->data_type != OSSL_PARAM_UTF8_STRING) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "%s: wrong parameter type",
                   p->key);
        return 0;
    }
    /* The TLS mode has no name: leave the string unset. */
    word = pad_name(c->pad);
    return !word || OSSL_PARAM_set_utf8_string(p, word);
}

static int rsa_enc_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    rsa_enc_ctx *c = vctx;
    OSSL_PARAM *p;

    if (!c)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE))
        && !get_pad(c, p))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST))
        && !OSSL_PARAM_set_utf8_string(p, prov_rsa_enc_md(c)->name))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST))
        && !OSSL_PARAM_set_utf8_string(p, prov_rsa_enc_mgf1(c)->name))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL))
        && !OSSL_PARAM_set_octet_ptr(p, c->label, c->label_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params,
                               OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION))
        && !OSSL_PARAM_set_uint(p, c->client_version))
        return 0;
    if ((p = OSSL_PARAM_locate(params,
                               OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION))
        && !OSSL_PARAM_set_uint(p, c->alt_version))
        return 0;
    if ((p = OSSL_PARAM_locate(params, PARAM_IMPLICIT_REJECTION))
        && !OSSL_PARAM_set_uint(p, c->implicit_rejection))
        return 0;
    if ((p = OSSL_PARAM_locate(params, PARAM_IMPLICIT_REJECTION_CTRL))
        && !OSSL_PARAM_set_uint(p, c->implicit_rejection))
        return 0;
    return 1;
}

static const OSSL_PARAM gettable_tbl[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, OSSL_PARAM_OCTET_PTR,
                    NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_uint(PARAM_IMPLICIT_REJECTION, NULL),
    OSSL_PARAM_uint(PARAM_IMPLICIT_REJECTION_CTRL, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_enc_gettable_ctx_params(void *vctx, void *provctx)
{
    return gettable_tbl;
}

/* A digest by any of its names, if PKCS#11 OAEP can name it. */
static int lookup_md(prov_ctx *ctx, const OSSL_PARAM *p, const char *what,
                     const oaep_md **out)
{
    char name[64], *s = name;
    const oaep_md *found = NULL;
    EVP_MD *md;

    if (!OSSL_PARAM_get_utf8_string(p, &s, sizeof(name))) {
        prov_raise(ctx, PROV_R_BAD_INPUT, "%s: not a digest name", what);
        return 0;
    }
    prov_set_mark(ctx);
    md = EVP_MD_fetch(prov_swctx(ctx), name, prov_swprops(ctx));
    prov_pop_to_mark(ctx);
    for (size_t i = 0; md && i < sizeof(oaep_mds) / sizeof(*oaep_mds); i++)
        if (EVP_MD_is_a(md, oaep_mds[i].name))
            found = &oaep_mds[i];
    EVP_MD_free(md);
    if (!found) {
        prov_raise(
            ctx, PROV_R_UNSUPPORTED,
            "%s \"%s\" is not supported (SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512)",
            what, name);
        return 0;
    }
    *out = found;
    return 1;
}

static int set_props(prov_ctx *ctx, const OSSL_PARAM *p, char **dst)
{
    char *v = NULL;

    if (!p)
        return 1;
    if (!OSSL_PARAM_get_utf8_string(p, &v, 0)) {
        prov_raise(ctx, PROV_R_BAD_INPUT, "%s: not a string", p->key);
        return 0;
    }
    free(*dst);
    *dst = strdup(v);
    OPENSSL_free(v);
    if (!*dst)
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
    return *dst != NULL;
}

static int parse_pad(rsa_enc_ctx *c, const OSSL_PARAM *p, int *pad)
{
    const char *word = NULL;

    *pad = -1;
    if (p->data_type == OSSL_PARAM_INTEGER) {
        if (!OSSL_PARAM_get_int(p, pad))
            *pad = -1;
    } else if (OSSL_PARAM_get_utf8_string_ptr(p, &word)) {
        for (const struct pad_name *i = pad_names; i->name; i++)
            if (strcmp(word, i->name) == 0)
                *pad = i->pad;
    }
    switch (*pad) {
    case RSA_PKCS1_PADDING:
    case RSA_NO_PADDING:
    case RSA_PKCS1_OAEP_PADDING:
    case RSA_PKCS1_WITH_TLS_PADDING:
        return 1;
    }
    if (word)
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA padding mode \"%s\" is not supported for encryption (pkcs1, oaep, none)",
            word);
    else
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA padding mode %d is not supported for encryption (pkcs1, oaep, none)",
            *pad);
    return 0;
}

static int set_label(rsa_enc_ctx *c, const OSSL_PARAM *p)
{
    void *label = NULL;
    size_t len = 0;

    if (!OSSL_PARAM_get_octet_string(p, &label, 0, &len)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "OAEP label: not an octet string");
        return 0;
    }
    OPENSSL_free(c->label);
    c->label = label;
    c->label_len = len;
    if (len == 0) { /* an empty label is no label */
        OPENSSL_free(c->label);
        c->label = NULL;
    }
    return 1;
}

static int set_uint(rsa_enc_ctx *c, const OSSL_PARAM params[], const char *key,
                    unsigned int *dst)
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, key);

    if (p && !OSSL_PARAM_get_uint(p, dst)) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "%s: not a number", key);
        return 0;
    }
    return 1;
}

/* implicit-rejection (or the -pkeyopt name) into @v: 0 or 1. */
static int get_implicit(rsa_enc_ctx *c, const OSSL_PARAM params[],
                        unsigned int *v)
{
    const OSSL_PARAM *p =
        OSSL_PARAM_locate_const(params, PARAM_IMPLICIT_REJECTION);

    if (!p)
        p = OSSL_PARAM_locate_const(params, PARAM_IMPLICIT_REJECTION_CTRL);
    if (!p)
        return 1;
    if (!OSSL_PARAM_get_uint(p, v) || *v > 1) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT, "%s: 0 or 1", p->key);
        return 0;
    }
    return 1;
}

/*
 * All values are checked before the context changes: a refused parameter
 * leaves the previous settings in place.
 */
static int rsa_enc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    rsa_enc_ctx *c = vctx;
    const OSSL_PARAM *p;
    const oaep_md *md = c->md, *mgf1 = c->mgf1;
    unsigned int implicit = c->implicit_rejection;
    int pad = c->pad;

    if (!params)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p && !parse_pad(c, p, &pad))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p && !lookup_md(c->ctx, p, "OAEP digest", &md))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p && !lookup_md(c->ctx, p, "MGF1 digest", &mgf1))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p && !set_label(c, p))
        return 0;
    if (!get_implicit(c, params, &implicit))
        return 0;
    c->implicit_rejection = implicit;
    c->pad = pad;
    c->md = md;
    c->mgf1 = mgf1;
    return set_props(c->ctx,
                     OSSL_PARAM_locate_const(
                         params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS),
                     &c->md_props)
           && set_props(c->ctx,
                        OSSL_PARAM_locate_const(
                            params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS),
                        &c->mgf1_props)
           && set_uint(c, params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION,
                       &c->client_version)
           && set_uint(c, params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION,
                       &c->alt_version);
}

static const OSSL_PARAM settable_tbl[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_uint(PARAM_IMPLICIT_REJECTION, NULL),
    OSSL_PARAM_uint(PARAM_IMPLICIT_REJECTION_CTRL, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_enc_settable_ctx_params(void *vctx, void *provctx)
{
    return settable_tbl;
}

const OSSL_DISPATCH prov_rsa_asym_cipher_functions[] = {
    {OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))rsa_enc_newctx},
    {OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))rsa_enc_encrypt_init},
    {OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))rsa_enc_encrypt},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))rsa_enc_decrypt_init},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))prov_rsa_enc_decrypt},
    {OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))rsa_enc_freectx},
    {OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))rsa_enc_dupctx},
    {OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS,
     (void (*)(void))rsa_enc_get_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS,
     (void (*)(void))rsa_enc_gettable_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS,
     (void (*)(void))rsa_enc_set_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS,
     (void (*)(void))rsa_enc_settable_ctx_params},
    {0, NULL},
};
