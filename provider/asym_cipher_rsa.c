/* SPDX-License-Identifier: Apache-2.0 */
/* ASYM_CIPHER for RSA: decryption on the token (PKCS#1 v1.5, OAEP, raw RSA
 * and TLS premaster secrets), encryption in software with the public half. */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

/* SSL_MAX_MASTER_KEY_LENGTH: the TLS RSA premaster secret. */
#define TLS_PREMASTER_LEN 48

static OSSL_FUNC_asym_cipher_newctx_fn rsa_enc_newctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn rsa_enc_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn rsa_enc_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_enc_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn rsa_enc_decrypt;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_enc_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn rsa_enc_dupctx;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn rsa_enc_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn rsa_enc_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn rsa_enc_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn rsa_enc_settable_ctx_params;

/* The digests that PKCS#11 OAEP can name, for the label hash and MGF1. */
typedef struct oaep_md {
    const char *name;    /* OpenSSL's canonical name */
    const char *display; /* for messages */
    CK_MECHANISM_TYPE ckm;
    CK_RSA_PKCS_MGF_TYPE mgf;
} oaep_md;

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

typedef struct rsa_enc_ctx {
    prov_ctx *ctx;
    prov_key *key;
    int pad;             /* RSA_*_PADDING */
    const oaep_md *md;   /* OAEP label hash; NULL: SHA-1 */
    const oaep_md *mgf1; /* MGF1 hash; NULL: the OAEP hash */
    char *md_props;      /* kept for get_ctx_params only */
    char *mgf1_props;
    unsigned char *label; /* OAEP label; NULL: empty */
    size_t label_len;
    unsigned int client_version; /* TLS: version in the ClientHello */
    unsigned int alt_version;    /* TLS: negotiated (rollback bug) */
} rsa_enc_ctx;

static const oaep_md *eff_md(const rsa_enc_ctx *c)
{
    return c->md ? c->md : OAEP_SHA1;
}

/* OpenSSL's rule: an unset MGF1 digest follows the OAEP digest. */
static const oaep_md *eff_mgf1(const rsa_enc_ctx *c)
{
    return c->mgf1 ? c->mgf1 : eff_md(c);
}

static size_t modulus_len(const rsa_enc_ctx *c)
{
    int n = EVP_PKEY_get_size(c->key->pub);

    return n > 0 ? (size_t)n : 0;
}

static const char *key_name(const prov_key *key)
{
    return key->uri ? key->uri : "the imported public key";
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
static void sw_params(rsa_enc_ctx *c, OSSL_PARAM *p)
{
    *p++ = OSSL_PARAM_construct_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &c->pad);
    if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        /* Properties name the caller's providers: not used here. */
        *p++ = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, (char *)eff_md(c)->name, 0);
        *p++ = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, (char *)eff_mgf1(c)->name, 0);
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
        *outlen = modulus_len(c);
        return 1;
    }
    if (c->pad == RSA_PKCS1_WITH_TLS_PADDING) {
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA encryption: the TLS padding mode is for decryption only (use pkcs1)");
        return 0;
    }
    sw_params(c, params);
    pctx = EVP_PKEY_CTX_new_from_pkey(prov_swctx(c->ctx), c->key->pub,
                                      prov_swprops(c->ctx));
    if (!pctx || EVP_PKEY_encrypt_init_ex(pctx, params) <= 0
        || EVP_PKEY_encrypt(pctx, out, &len, in, inlen) <= 0) {
        prov_raise(
            c->ctx, PROV_R_BAD_INPUT,
            "RSA encryption with the public key of %s failed (%zu bytes in, padding %d)",
            key_name(c->key), inlen, c->pad);
        goto out;
    }
    *outlen = len;
    ok = 1;
out:
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Decryption: on the token                                            */
/* ------------------------------------------------------------------ */

static bool oaep_is_default(const rsa_enc_ctx *c)
{
    return eff_md(c) == OAEP_SHA1 && eff_mgf1(c) == OAEP_SHA1 && !c->label;
}

static void mechanism_for(rsa_enc_ctx *c, CK_MECHANISM *mech,
                          CK_RSA_PKCS_OAEP_PARAMS *oaep)
{
    memset(mech, 0, sizeof(*mech));
    switch (c->pad) {
    case RSA_PKCS1_OAEP_PADDING:
        /* An unset digest is SHA-1, never 0 (PKCS#11 has no default). */
        oaep->hashAlg = eff_md(c)->ckm;
        oaep->mgf = eff_mgf1(c)->mgf;
        oaep->source = CKZ_DATA_SPECIFIED;
        oaep->pSourceData = c->label;
        oaep->ulSourceDataLen = c->label ? c->label_len : 0;
        mech->mechanism = CKM_RSA_PKCS_OAEP;
        mech->pParameter = oaep;
        mech->ulParameterLen = sizeof(*oaep);
        break;
    case RSA_NO_PADDING:
        mech->mechanism = CKM_RSA_X_509;
        break;
    default: /* PKCS#1 v1.5, TLS */
        mech->mechanism = CKM_RSA_PKCS;
        break;
    }
}

static const char *mech_name(CK_MECHANISM_TYPE m)
{
    switch (m) {
    case CKM_RSA_PKCS_OAEP:
        return "CKM_RSA_PKCS_OAEP";
    case CKM_RSA_X_509:
        return "CKM_RSA_X_509";
    default:
        return "CKM_RSA_PKCS";
    }
}

/* Whether the token and the key allow @mech (a clear error if not). */
static int mech_usable(rsa_enc_ctx *c, CK_MECHANISM_TYPE m)
{
    p11_token *tok = p11_obj_token(c->key->priv);

    if (!p11_token_has_mechanism(tok, m, CKF_DECRYPT, NULL)) {
        prov_raise(c->ctx, PROV_R_UNSUPPORTED,
                   "RSA decryption: %s does not support %s for decryption",
                   p11_token_describe(tok), mech_name(m));
        return 0;
    }
    if (!prov_key_allows(c->key, m)) {
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA decryption: CKA_ALLOWED_MECHANISMS of %s does not include %s",
            key_name(c->key), mech_name(m));
        return 0;
    }
    return 1;
}

static void raise_decrypt(rsa_enc_ctx *c, CK_RV rv)
{
    /*
     * Tokens refuse OAEP parameters they do not implement with
     * CKR_MECHANISM_PARAM_INVALID or CKR_ARGUMENTS_BAD (SoftHSM2 2.6:
     * anything but SHA-1 for the hash and MGF1).  Say which parameters,
     * not just the code.
     */
    if (c->pad == RSA_PKCS1_OAEP_PADDING && !oaep_is_default(c)
        && (rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD)) {
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "the token does not support OAEP with %s, MGF1 with %s%s (%s): %s",
            eff_md(c)->display, eff_mgf1(c)->display,
            c->label ? " and a label" : "", p11_rv_name(rv),
            p11_error_rv() == rv ? p11_error_message() : p11_rv_text(rv));
        return;
    }
    if (c->pad == RSA_PKCS1_OAEP_PADDING && c->label) {
        /*
         * SoftHSM2 2.6 takes a label at C_DecryptInit and ignores it: a
         * ciphertext made with the label fails (CKR_GENERAL_ERROR), one
         * made without it decrypts although the label was given.
         */
        prov_raise_p11(
            c->ctx, rv,
            "RSA-OAEP decryption with a label (a wrong key or ciphertext, or a token that ignores OAEP labels)");
        return;
    }
    prov_raise_p11(c->ctx, rv, "RSA decryption");
}

/*
 * p11_decrypt inside an error mark: a module built on libcrypto (SoftHSM2)
 * leaves its own errors on this thread's queue ("padding check failed"),
 * which would outlive a successful call or, for TLS, tell a padding error
 * from a good one.  Our own error, with the CKR code, is raised after.
 */
static CK_RV token_decrypt(rsa_enc_ctx *c, const p11_auth *auth,
                           CK_MECHANISM *mech, const unsigned char *in,
                           size_t inlen, unsigned char *out, size_t *outlen)
{
    CK_RV rv;

    prov_set_mark(c->ctx);
    rv = p11_decrypt(c->key->priv, auth, mech, in, inlen, out, outlen);
    prov_pop_to_mark(c->ctx);
    return rv;
}

static int decrypt_token(rsa_enc_ctx *c, unsigned char *out, size_t *outlen,
                         size_t outsize, const unsigned char *in, size_t inlen)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech;
    size_t k = modulus_len(c), len = k;
    unsigned char *buf = NULL;
    p11_auth auth;
    CK_RV rv;
    int ok = 0;

    mechanism_for(c, &mech, &oaep);
    if (!mech_usable(c, mech.mechanism))
        return 0;
    if (!(buf = OPENSSL_zalloc(k))) {
        prov_raise(c->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    prov_key_auth(c->key, &auth);
    rv = token_decrypt(c, &auth, &mech, in, inlen, buf, &len);
    if (rv != CKR_OK) {
        raise_decrypt(c, rv);
        goto out;
    }
    if (c->pad == RSA_NO_PADDING && len < k) {
        /* Raw RSA gives k bytes in software: put back leading zeros. */
        memmove(buf + (k - len), buf, len);
        memset(buf, 0, k - len);
        len = k;
    }
    if (len > outsize) {
        prov_raise(
            c->ctx, PROV_R_BAD_INPUT,
            "RSA decryption: the output buffer has %zu bytes, %zu are needed",
            outsize, len);
        goto out;
    }
    memcpy(out, buf, len);
    *outlen = len;
    ok = 1;
out:
    OPENSSL_clear_free(buf, k);
    return ok;
}

/*
 * Errors that do not depend on the ciphertext (login, session, mechanism,
 * token gone): reported.  Anything else may be a padding oracle and is
 * answered with a random premaster secret, like a bad padding.
 */
static bool tls_error_is_fatal(CK_RV rv)
{
    if (rv > P11_RV_BASE && rv <= P11_RV_BASE + 0xff)
        return true; /* our layer: URI, PIN source, no token... */
    switch (rv) {
    case CKR_HOST_MEMORY:
    case CKR_CANT_LOCK:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_COUNT:
    case CKR_OPERATION_ACTIVE:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
        return true;
    default:
        return false;
    }
}

/* All ones when @a is zero, else zero; no branch on @a. */
static unsigned int ct_is_zero(size_t a)
{
    return 0u - (unsigned int)((~a & (a - 1)) >> (sizeof(a) * 8 - 1));
}

static unsigned int ct_eq(size_t a, size_t b)
{
    return ct_is_zero(a ^ b);
}

/*
 * The premaster secret is good when the token decrypted it, it has 48
 * bytes and starts with the client's version (or the negotiated one when
 * the caller tolerates the rollback bug).  Constant time in the plaintext.
 */
static unsigned int tls_good(const rsa_enc_ctx *c, CK_RV rv,
                             const unsigned char *pm, size_t len)
{
    unsigned int good, version, alt;

    good = ct_eq(rv, CKR_OK) & ct_eq(len, TLS_PREMASTER_LEN);
    version = ct_eq(pm[0], (c->client_version >> 8) & 0xff)
              & ct_eq(pm[1], c->client_version & 0xff);
    alt = ct_eq(pm[0], (c->alt_version >> 8) & 0xff)
          & ct_eq(pm[1], c->alt_version & 0xff);
    version |= alt & ~ct_is_zero(c->alt_version);
    return good & version;
}

/*
 * TLS RSA key transport (Bleichenbacher countermeasure, RFC 5246 7.4.7.1):
 * any failure of the padding, the length or the version yields a random
 * premaster secret and success; the handshake then fails at Finished.
 * The token decrypts with CKM_RSA_PKCS: whether it found the padding good
 * is only visible in its return code, which is not reported.
 */
static int decrypt_tls(rsa_enc_ctx *c, unsigned char *out, size_t *outlen,
                       size_t outsize, const unsigned char *in, size_t inlen)
{
    unsigned char rnd[TLS_PREMASTER_LEN];
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    size_t k = modulus_len(c), len = k;
    unsigned char *buf = NULL;
    unsigned int good;
    p11_auth auth;
    CK_RV rv;
    int ok = 0;

    if (!out) {
        *outlen = TLS_PREMASTER_LEN;
        return 1;
    }
    if (outsize < TLS_PREMASTER_LEN || c->client_version == 0) {
        prov_raise(
            c->ctx, PROV_R_BAD_INPUT,
            "TLS premaster decryption needs a %d-byte buffer (%zu given) and the client version (%u)",
            TLS_PREMASTER_LEN, outsize, c->client_version);
        return 0;
    }
    if (!mech_usable(c, CKM_RSA_PKCS))
        return 0;
    if (RAND_priv_bytes_ex(prov_swctx(c->ctx), rnd, sizeof(rnd), 0) <= 0
        || !(buf = OPENSSL_zalloc(k < TLS_PREMASTER_LEN ? TLS_PREMASTER_LEN
                                                        : k))) {
        prov_raise(c->ctx, PROV_R_INTERNAL,
                   "TLS premaster decryption: no random bytes or no memory");
        goto out;
    }
    prov_key_auth(c->key, &auth);
    rv = token_decrypt(c, &auth, &mech, in, inlen, buf, &len);
    if (rv != CKR_OK && tls_error_is_fatal(rv)) {
        prov_raise_p11(c->ctx, rv, "TLS premaster decryption");
        goto out;
    }
    p11_error_clear();
    good = tls_good(c, rv, buf, len);
    for (size_t i = 0; i < TLS_PREMASTER_LEN; i++)
        out[i] = (unsigned char)((buf[i] & good) | (rnd[i] & ~good));
    *outlen = TLS_PREMASTER_LEN;
    ok = 1;
out:
    OPENSSL_cleanse(rnd, sizeof(rnd));
    OPENSSL_clear_free(buf, k < TLS_PREMASTER_LEN ? TLS_PREMASTER_LEN : k);
    return ok;
}

/*
 * A software key (our keymgmt won a fetch by name): decryption in software,
 * with the same parameters, as the default provider would do it.
 */
static int software_decrypt(rsa_enc_ctx *c, unsigned char *out, size_t *outlen,
                            size_t outsize, const unsigned char *in,
                            size_t inlen)
{
    EVP_PKEY_CTX *pctx;
    OSSL_PARAM params[7], *p;
    size_t len = outsize;
    int ok;

    sw_params(c, params);
    if (c->pad == RSA_PKCS1_WITH_TLS_PADDING) {
        for (p = params; p->key; p++)
            ;
        *p++ = OSSL_PARAM_construct_uint(
            OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &c->client_version);
        *p++ = OSSL_PARAM_construct_uint(
            OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, &c->alt_version);
        *p = OSSL_PARAM_construct_end();
    }
    pctx = EVP_PKEY_CTX_new_from_pkey(prov_swctx(c->ctx), c->key->pub,
                                      prov_swprops(c->ctx));
    ok = pctx && EVP_PKEY_decrypt_init_ex(pctx, params) > 0
         && EVP_PKEY_decrypt(pctx, out, &len, in, inlen) > 0;
    EVP_PKEY_CTX_free(pctx);
    if (!ok) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "RSA decryption with a software key failed");
        return 0;
    }
    *outlen = len;
    return 1;
}

static int rsa_enc_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                           size_t outsize, const unsigned char *in,
                           size_t inlen)
{
    rsa_enc_ctx *c = vctx;

    if (c->key && prov_key_is_software(c->key)) {
        if (!out) {
            *outlen = modulus_len(c);
            return 1;
        }
        return software_decrypt(c, out, outlen, outsize, in, inlen);
    }
    if (!c->key || !c->key->priv) {
        prov_raise(c->ctx, PROV_R_BAD_INPUT,
                   "RSA decryption needs the private key on the token");
        return 0;
    }
    if (c->pad == RSA_PKCS1_WITH_TLS_PADDING)
        return decrypt_tls(c, out, outlen, outsize, in, inlen);
    if (!out) {
        *outlen = modulus_len(c);
        return 1;
    }
    return decrypt_token(c, out, outlen, outsize, in, inlen);
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
        && !OSSL_PARAM_set_utf8_string(p, eff_md(c)->name))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST))
        && !OSSL_PARAM_set_utf8_string(p, eff_mgf1(c)->name))
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

/*
 * All values are checked before the context changes: a refused parameter
 * leaves the previous settings in place.
 */
static int rsa_enc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    rsa_enc_ctx *c = vctx;
    const OSSL_PARAM *p;
    const oaep_md *md = c->md, *mgf1 = c->mgf1;
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
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))rsa_enc_decrypt},
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
