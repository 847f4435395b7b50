/* SPDX-License-Identifier: Apache-2.0 */
/* ENCODER for our keys: SubjectPublicKeyInfo (DER, PEM), text, and the
 * private-key structures, which give a token key's URI or refuse (its
 * private key never leaves the token); software keys go to OpenSSL's. */
#include "config.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

/*
 * Private keys and encoders.
 *
 * A token key's private half cannot be written anywhere, yet applications
 * (openssl genpkey -out, req -newkey -keyout, pkey -out) expect to write
 * "the key" to a file after making or loading it.  So:
 *
 *  - PEM PrivateKeyInfo writes NOT key material but the key's pkcs11: URI
 *    as one line of text (key->uri: formatted without pin-value or
 *    pin-source), so that `openssl genpkey ... -out key.uri` succeeds and
 *    `-key "$(cat key.uri)"` finds the key again later.
 *  - DER PrivateKeyInfo, EncryptedPrivateKeyInfo (DER or PEM), the
 *    type-specific/traditional structures, and PEM PrivateKeyInfo with a
 *    cipher set all fail with PROV_R_NOT_EXPORTABLE and a message naming
 *    the key: their consumers (i2d_PrivateKey, EVP_PKEY2PKCS8, PKCS#12,
 *    an encrypted key file) need the key material itself, and a URI in
 *    their place would be silently wrong.
 *
 * Public output (SubjectPublicKeyInfo, text) comes from the software public
 * half, key->pub (prov_key_pub(), read from the token at the first need;
 * enc_key() makes sure of it), which lives in prov_swctx().
 *
 * Software keys (prov_key_is_software: made by our keymgmt when OpenSSL
 * fetched it by name, e.g. `openssl genpkey -algorithm EC` without
 * p11ca-uri, TLS ephemeral keys) are ordinary keys: every structure,
 * private ones included, is written by OpenSSL's own encoders from
 * key->pub, with the caller's cipher and passphrase, exactly as without us.
 *
 * There is no import_object: these encoders only take our own keydata.
 * With import_object (even one returning NULL), OpenSSL would also offer
 * them for other providers' keys and could pick them instead of an encoder
 * that works.
 */

#define SEL_PRIV   OSSL_KEYMGMT_SELECT_PRIVATE_KEY
#define SEL_PUB    OSSL_KEYMGMT_SELECT_PUBLIC_KEY
#define SEL_PARAMS OSSL_KEYMGMT_SELECT_ALL_PARAMETERS

struct enc_ctx {
    prov_ctx *ctx;
    char *cipher;       /* a cipher was set: the caller wants encryption */
    char *cipher_props; /* its property query (software keys) */
};

static OSSL_FUNC_encoder_newctx_fn enc_newctx;
static OSSL_FUNC_encoder_freectx_fn enc_freectx;
static OSSL_FUNC_encoder_settable_ctx_params_fn enc_settable_ctx_params;
static OSSL_FUNC_encoder_set_ctx_params_fn enc_set_ctx_params;
static OSSL_FUNC_encoder_does_selection_fn spki_does_selection;
static OSSL_FUNC_encoder_does_selection_fn priv_does_selection;
static OSSL_FUNC_encoder_does_selection_fn text_does_selection;
static OSSL_FUNC_encoder_encode_fn spki_der_encode;
static OSSL_FUNC_encoder_encode_fn spki_pem_encode;
static OSSL_FUNC_encoder_encode_fn text_encode;
static OSSL_FUNC_encoder_encode_fn pki_der_encode;
static OSSL_FUNC_encoder_encode_fn pki_pem_encode;
static OSSL_FUNC_encoder_encode_fn epki_der_encode;
static OSSL_FUNC_encoder_encode_fn epki_pem_encode;
static OSSL_FUNC_encoder_encode_fn ts_der_encode;
static OSSL_FUNC_encoder_encode_fn ts_pem_encode;
static OSSL_FUNC_encoder_encode_fn pkcs1_der_encode;
static OSSL_FUNC_encoder_encode_fn pkcs1_pem_encode;
static OSSL_FUNC_encoder_encode_fn rsa_der_encode;
static OSSL_FUNC_encoder_encode_fn rsa_pem_encode;
static OSSL_FUNC_encoder_encode_fn ec_der_encode;
static OSSL_FUNC_encoder_encode_fn ec_pem_encode;

/* ------------------------------------------------------------------ */
/* Context and parameters                                              */
/* ------------------------------------------------------------------ */

static void *enc_newctx(void *provctx)
{
    struct enc_ctx *ec = calloc(1, sizeof(*ec));

    if (!ec) {
        prov_raise(provctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    ec->ctx = provctx;
    return ec;
}

static void enc_freectx(void *vctx)
{
    struct enc_ctx *ec = vctx;

    if (!ec)
        return;
    free(ec->cipher);
    free(ec->cipher_props);
    free(ec);
}

static const OSSL_PARAM enc_settable_tbl[] = {
    OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_CIPHER, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *enc_settable_ctx_params(void *provctx)
{
    return enc_settable_tbl;
}

/* Keep a copy of the string parameter @p (NULL value: none). */
static int set_str(prov_ctx *ctx, const OSSL_PARAM *p, char **dst)
{
    const char *v = NULL;

    if (!p)
        return 1;
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &v))
        return 0;
    free(*dst);
    *dst = NULL;
    if (v && !(*dst = strdup(v))) {
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    return 1;
}

/*
 * The cipher and its properties are kept for software keys.  For token
 * keys they are accepted, not used: a failure here would make
 * PEM_write_bio_PrivateKey fail with an empty error queue; the encode
 * functions refuse instead, with a message.  Unknown parameters are
 * ignored, as OpenSSL sets the same parameters on every encoder it holds.
 */
static int enc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    struct enc_ctx *ec = vctx;

    return set_str(ec->ctx,
                   OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_CIPHER),
                   &ec->cipher)
           && set_str(
               ec->ctx,
               OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_PROPERTIES),
               &ec->cipher_props);
}

/* ------------------------------------------------------------------ */
/* Selections                                                          */
/* ------------------------------------------------------------------ */

/*
 * As OpenSSL's key2any: the selection bits are levels (private key, then
 * public key, then parameters); the highest one asked for decides whether
 * an encoder that outputs @mask fits.  0 means "guess": yes.
 */
static int check_selection(int selection, int mask)
{
    static const int levels[] = {SEL_PRIV, SEL_PUB, SEL_PARAMS};

    if (selection == 0)
        return 1;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (selection & levels[i])
            return (mask & levels[i]) != 0;
    return 0;
}

static int spki_does_selection(void *provctx, int selection)
{
    return check_selection(selection, SEL_PUB);
}

static int priv_does_selection(void *provctx, int selection)
{
    return check_selection(selection, SEL_PRIV);
}

static int text_does_selection(void *provctx, int selection)
{
    return check_selection(selection, SEL_PRIV | SEL_PUB | SEL_PARAMS);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Our key, or NULL with an error: we never get an object abstraction. */
static const prov_key *enc_key(struct enc_ctx *ec, const void *obj_raw)
{
    const prov_key *key = obj_raw;

    if (!key) {
        prov_raise(ec->ctx, PROV_R_BAD_INPUT,
                   "the p11ca encoders only encode p11ca keys");
        return NULL;
    }
    if (!prov_key_pub(key)) {
        prov_raise(ec->ctx, PROV_R_NO_PUBLIC_KEY,
                   "%s: the public key is not known",
                   key->uri ? key->uri : "key");
        return NULL;
    }
    return key;
}

/* A BIO in our library context on the core's BIO; NULL with an error. */
static BIO *enc_bio(struct enc_ctx *ec, OSSL_CORE_BIO *cout)
{
    BIO *out = BIO_new_from_core_bio(ec->ctx->corectx, cout);

    if (!out)
        prov_raise(ec->ctx, PROV_R_INTERNAL, "cannot wrap the output BIO");
    return out;
}

/*
 * A software key, written by OpenSSL's encoders (in our library context)
 * as @output (DER, PEM, TEXT) with @structure (may be NULL), with the
 * caller's cipher and passphrase callback.
 */
static int sw_encode(struct enc_ctx *ec, OSSL_CORE_BIO *cout,
                     const prov_key *key, int selection, const char *output,
                     const char *structure, OSSL_PASSPHRASE_CALLBACK *cb,
                     void *cbarg)
{
    OSSL_ENCODER_CTX *ectx;
    BIO *out = NULL;
    int ok = 0;

    ectx = OSSL_ENCODER_CTX_new_for_pkey(key->pub, selection, output, structure,
                                         NULL);
    if (!ectx || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0) {
        prov_raise(ec->ctx, PROV_R_UNSUPPORTED,
                   "no encoder writes a software %s key as %s %s",
                   prov_key_type_name(key->type), output,
                   structure ? structure : "");
        goto out;
    }
    if ((ec->cipher
         && !OSSL_ENCODER_CTX_set_cipher(ectx, ec->cipher, ec->cipher_props))
        || (cb && !OSSL_ENCODER_CTX_set_passphrase_cb(ectx, cb, cbarg))
        || !(out = enc_bio(ec, cout)))
        goto out;
    ok = OSSL_ENCODER_to_bio(ectx, out);
out:
    BIO_free(out);
    OSSL_ENCODER_CTX_free(ectx);
    return ok;
}

/*
 * The public key to encode, as a new reference.  EC keys always go out
 * with the named-curve OID: explicit parameters make `openssl verify`
 * reject certificates and CSRs (X509 error 94).
 */
static EVP_PKEY *spki_pkey(struct enc_ctx *ec, const prov_key *key)
{
    char encoding[32];
    EVP_PKEY *pk;

    if (key->type != PROV_KEY_EC
        || !EVP_PKEY_get_utf8_string_param(key->pub,
                                           OSSL_PKEY_PARAM_EC_ENCODING,
                                           encoding, sizeof(encoding), NULL)
        || strcmp(encoding, OSSL_PKEY_EC_ENCODING_EXPLICIT) != 0) {
        EVP_PKEY_up_ref(key->pub);
        return key->pub;
    }
    /* key->pub is shared and immutable: change a copy. */
    pk = EVP_PKEY_dup(key->pub);
    if (!pk || key->curve_nid == NID_undef
        || !EVP_PKEY_set_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING,
                                           OSSL_PKEY_EC_ENCODING_GROUP)) {
        prov_raise(
            ec->ctx, PROV_R_UNSUPPORTED,
            "%s: the EC public key has no named curve (explicit parameters are not written)",
            key->uri ? key->uri : "key");
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

static int spki_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       int selection, bool pem)
{
    struct enc_ctx *ec = vctx;
    const prov_key *key = enc_key(ec, obj_raw);
    EVP_PKEY *pk = NULL;
    BIO *out = NULL;
    int ok = 0;

    if (!key)
        return 0;
    if (!(selection & SEL_PUB)) {
        prov_raise(ec->ctx, PROV_R_BAD_INPUT,
                   "SubjectPublicKeyInfo needs the public key selected");
        return 0;
    }
    if (!(pk = spki_pkey(ec, key)) || !(out = enc_bio(ec, cout)))
        goto out;
    ok = pem ? PEM_write_bio_PUBKEY(out, pk) : i2d_PUBKEY_bio(out, pk);
    if (!ok)
        prov_raise(ec->ctx, PROV_R_INTERNAL, "%s: cannot write the public key",
                   key->uri ? key->uri : "key");
out:
    BIO_free(out);
    EVP_PKEY_free(pk);
    return ok;
}

static int spki_der_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                           const OSSL_PARAM obj_abstract[], int selection,
                           OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return spki_encode(vctx, cout, obj_raw, selection, false);
}

static int spki_pem_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                           const OSSL_PARAM obj_abstract[], int selection,
                           OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return spki_encode(vctx, cout, obj_raw, selection, true);
}

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/* A token string for one line of text: control characters become '?'. */
static void print_safe(BIO *out, const char *s)
{
    for (; *s; s++)
        BIO_printf(out, "%c",
                   (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* A CK_BBOOL attribute: 1, 0, or -1 when the token does not say. */
static int attr_bool(p11_obj *obj, CK_ATTRIBUTE_TYPE type)
{
    unsigned char *v = NULL;
    size_t n = 0;
    int r = -1;

    if (p11_obj_get_attr(obj, type, &v, &n) == CKR_OK && n == sizeof(CK_BBOOL))
        r = v[0] == CK_TRUE;
    free(v);
    return r;
}

static void print_flags(BIO *out, p11_obj *priv)
{
    int sensitive = attr_bool(priv, CKA_SENSITIVE);
    int never = attr_bool(priv, CKA_NEVER_EXTRACTABLE);
    int extractable = attr_bool(priv, CKA_EXTRACTABLE);
    const char *sep = "";

    BIO_printf(out, "  flags:  ");
    if (sensitive >= 0) {
        BIO_printf(out, "%s", sensitive ? "sensitive" : "NOT sensitive");
        sep = ", ";
    }
    if (never == 1 || extractable >= 0) {
        BIO_printf(out, "%s%s", sep,
                   never == 1         ? "never extractable"
                   : extractable == 1 ? "EXTRACTABLE"
                                      : "not extractable");
        sep = ", ";
    }
    if (p11_obj_always_authenticate(priv)) {
        BIO_printf(out, "%salways authenticate", sep);
        sep = ", ";
    }
    if (attr_bool(priv, CKA_TOKEN) == 0) {
        BIO_printf(out, "%ssession object (not stored)", sep);
        sep = ", ";
    }
    BIO_printf(out, "%s\n", *sep ? "" : "unknown");
}

static void print_type(BIO *out, const prov_key *key)
{
    const char *curve = NULL;

    BIO_printf(out, "  type:   ");
    switch (key->type) {
    case PROV_KEY_RSA:
    case PROV_KEY_RSA_PSS:
        BIO_printf(out, "%s", prov_key_type_name(key->type));
        break;
    case PROV_KEY_EC:
        if (key->curve_nid != NID_undef
            && !(curve = EC_curve_nid2nist(key->curve_nid)))
            curve = OBJ_nid2sn(key->curve_nid);
        BIO_printf(out, "EC %s", curve ? curve : "(unknown curve)");
        break;
    case PROV_KEY_ED25519:
        BIO_printf(out, "Ed25519");
        break;
    case PROV_KEY_ED448:
        BIO_printf(out, "Ed448");
        break;
    }
    BIO_printf(out, " (%u bits)\n", key->bits);
}

/* What the token says about the key; never anything secret. */
static void print_token_key(BIO *out, const prov_key *key)
{
    p11_token *tok = p11_obj_token(key->priv);
    const unsigned char *id;
    size_t id_len = 0;

    BIO_printf(out, "PKCS#11 token key (private key stays on the token)\n");
    BIO_printf(out, "  URI:    ");
    print_safe(out, key->uri ? key->uri : "(unknown)");
    BIO_printf(out, "\n  token:  \"");
    print_safe(out, p11_token_label(tok));
    BIO_printf(out, "\" (serial ");
    print_safe(out, p11_token_serial(tok));
    BIO_printf(out, ", model ");
    print_safe(out, p11_token_model(tok));
    BIO_printf(out, ")\n  label:  ");
    print_safe(out, p11_obj_label(key->priv));
    BIO_printf(out, "\n  id:     ");
    id = p11_obj_id(key->priv, &id_len);
    for (size_t i = 0; id && i < id_len; i++)
        BIO_printf(out, "%02x", id[i]);
    BIO_printf(out, "%s\n", id && id_len ? "" : "(none)");
    print_type(out, key);
    print_flags(out, key->priv);
}

/*
 * Text: with the private key selected, a description of the token key
 * (URI, token, label, id, type, flags), then the public key as text; else
 * the public key or the parameters as OpenSSL prints them.  A software key
 * is printed by OpenSSL, private parts included, as without us.
 */
static int text_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       const OSSL_PARAM obj_abstract[], int selection,
                       OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    struct enc_ctx *ec = vctx;
    const prov_key *key = enc_key(ec, obj_raw);
    BIO *out;
    int ok;

    if (key && prov_key_is_software(key))
        return sw_encode(ec, cout, key, selection, "TEXT", NULL, cb, cbarg);
    if (!key || !(out = enc_bio(ec, cout)))
        return 0;
    if ((selection & SEL_PRIV) && key->priv)
        print_token_key(out, key);
    if (selection & (SEL_PRIV | SEL_PUB))
        ok = EVP_PKEY_print_public(out, key->pub, 0, NULL) > 0;
    else
        ok = EVP_PKEY_print_params(out, key->pub, 0, NULL) > 0;
    if (!ok)
        prov_raise(ec->ctx, PROV_R_INTERNAL, "%s: cannot print the key",
                   key->uri ? key->uri : "key");
    BIO_free(out);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Private-key structures                                              */
/* ------------------------------------------------------------------ */

/* The refusal, naming the key, what was asked for and what to do. */
static int refuse(struct enc_ctx *ec, const prov_key *key, const char *as,
                  const char *hint)
{
    prov_raise(
        ec->ctx, PROV_R_NOT_EXPORTABLE,
        "the private key of %s stays on the token; it cannot be exported as %s (%s)",
        key->uri ? key->uri : "this p11ca key", as, hint);
    return 0;
}

/* A token key in a structure that needs the key material: refused. */
static int token_refuse(struct enc_ctx *ec, OSSL_CORE_BIO *cout,
                        const prov_key *key, const char *as)
{
    return refuse(ec, key, as, "use its URI");
}

/*
 * A token key as PEM PrivateKeyInfo: its URI (no PIN), on one line, or
 * with p11ca-key-file = uri-pem as a PKCS#11 PROVIDER URI file.
 */
static int token_uri(struct enc_ctx *ec, OSSL_CORE_BIO *cout,
                     const prov_key *key, const char *as)
{
    BIO *out;
    int ok;

    if (ec->cipher)
        return refuse(ec, key, "an encrypted key",
                      "write its URI without encryption: -noenc or -nodes");
    if (!key->uri) {
        prov_raise(ec->ctx, PROV_R_INTERNAL, "the key has no URI to write");
        return 0;
    }
    if (!(out = enc_bio(ec, cout)))
        return 0;
    if (ec->ctx->key_file_pem) {
        ok = prov_uri_pem_write(ec->ctx, out, key->uri);
        BIO_free(out);
        return ok;
    }
    ok = BIO_printf(out, "%s\n", key->uri) > 0;
    if (!ok)
        prov_raise(ec->ctx, PROV_R_INTERNAL, "%s: cannot write the URI",
                   key->uri);
    BIO_free(out);
    return ok;
}

/* Our key with a private half (token or software); NULL with an error. */
static const prov_key *priv_key(struct enc_ctx *ec, const void *obj_raw,
                                int selection)
{
    const prov_key *key = enc_key(ec, obj_raw);

    if (key && (!(selection & SEL_PRIV) || (!key->priv && !key->sw_private))) {
        prov_raise(
            ec->ctx, PROV_R_BAD_INPUT, "%s: %s", key->uri ? key->uri : "key",
            selection & SEL_PRIV ? "a public key has no private key to write"
                                 : "the private key is not selected");
        return NULL;
    }
    return key;
}

/*
 * One private-key structure: software keys go to OpenSSL's encoders,
 * token keys to @token_fn (their URI, or a refusal naming @as).
 */
#define IMPL_PRIV_ENCODE(fn, output, structure, token_fn, as)                  \
    static int fn(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,        \
                  const OSSL_PARAM obj_abstract[], int selection,              \
                  OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)                   \
    {                                                                          \
        const prov_key *key = priv_key(vctx, obj_raw, selection);              \
                                                                               \
        if (!key)                                                              \
            return 0;                                                          \
        if (prov_key_is_software(key))                                         \
            return sw_encode(vctx, cout, key, selection, output, structure,    \
                             cb, cbarg);                                       \
        return token_fn(vctx, cout, key, as);                                  \
    }

IMPL_PRIV_ENCODE(pki_der_encode, "DER", "PrivateKeyInfo", token_refuse,
                 "DER PrivateKeyInfo")
IMPL_PRIV_ENCODE(pki_pem_encode, "PEM", "PrivateKeyInfo", token_uri,
                 "PEM PrivateKeyInfo")
IMPL_PRIV_ENCODE(epki_der_encode, "DER", "EncryptedPrivateKeyInfo",
                 token_refuse, "DER EncryptedPrivateKeyInfo")
IMPL_PRIV_ENCODE(epki_pem_encode, "PEM", "EncryptedPrivateKeyInfo",
                 token_refuse, "PEM EncryptedPrivateKeyInfo")
IMPL_PRIV_ENCODE(ts_der_encode, "DER", "type-specific", token_refuse,
                 "a traditional (type-specific) DER key")
IMPL_PRIV_ENCODE(ts_pem_encode, "PEM", "type-specific", token_refuse,
                 "a traditional (type-specific) PEM key")
IMPL_PRIV_ENCODE(pkcs1_der_encode, "DER", "pkcs1", token_refuse,
                 "a traditional (PKCS#1) DER key")
IMPL_PRIV_ENCODE(pkcs1_pem_encode, "PEM", "pkcs1", token_refuse,
                 "a traditional (PKCS#1) PEM key")
IMPL_PRIV_ENCODE(rsa_der_encode, "DER", "rsa", token_refuse,
                 "a traditional (RSA) DER key")
IMPL_PRIV_ENCODE(rsa_pem_encode, "PEM", "rsa", token_refuse,
                 "a traditional (RSA) PEM key")
IMPL_PRIV_ENCODE(ec_der_encode, "DER", "ec", token_refuse,
                 "a traditional (SEC1 EC) DER key")
IMPL_PRIV_ENCODE(ec_pem_encode, "PEM", "ec", token_refuse,
                 "a traditional (SEC1 EC) PEM key")

/* ------------------------------------------------------------------ */
/* Dispatch tables and the algorithm table                             */
/* ------------------------------------------------------------------ */

#define IMPL_ENCODER(name, does_selection, encode)                             \
    static const OSSL_DISPATCH name##_functions[] = {                          \
        {OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx},                \
        {OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx},              \
        {OSSL_FUNC_ENCODER_SETTABLE_CTX_PARAMS,                                \
         (void (*)(void))enc_settable_ctx_params},                             \
        {OSSL_FUNC_ENCODER_SET_CTX_PARAMS,                                     \
         (void (*)(void))enc_set_ctx_params},                                  \
        {OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))does_selection},    \
        {OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))encode},                    \
        {0, NULL},                                                             \
    }

IMPL_ENCODER(spki_der, spki_does_selection, spki_der_encode);
IMPL_ENCODER(spki_pem, spki_does_selection, spki_pem_encode);
IMPL_ENCODER(text, text_does_selection, text_encode);
IMPL_ENCODER(pki_der, priv_does_selection, pki_der_encode);
IMPL_ENCODER(pki_pem, priv_does_selection, pki_pem_encode);
IMPL_ENCODER(epki_der, priv_does_selection, epki_der_encode);
IMPL_ENCODER(epki_pem, priv_does_selection, epki_pem_encode);
IMPL_ENCODER(ts_der, priv_does_selection, ts_der_encode);
IMPL_ENCODER(ts_pem, priv_does_selection, ts_pem_encode);
IMPL_ENCODER(pkcs1_der, priv_does_selection, pkcs1_der_encode);
IMPL_ENCODER(pkcs1_pem, priv_does_selection, pkcs1_pem_encode);
IMPL_ENCODER(rsa_der, priv_does_selection, rsa_der_encode);
IMPL_ENCODER(rsa_pem, priv_does_selection, rsa_pem_encode);
IMPL_ENCODER(ec_der, priv_does_selection, ec_der_encode);
IMPL_ENCODER(ec_pem, priv_does_selection, ec_pem_encode);

#define NAMES_RSA     "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define NAMES_RSAPSS  "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10"
#define NAMES_EC      "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define NAMES_ED25519 "ED25519:1.3.101.112"
#define NAMES_ED448   "ED448:1.3.101.113"

#define ENC(names, output, structure, impl)                                    \
    {                                                                          \
        names, PROV_PROPS ",output=" output structure, impl##_functions, NULL  \
    }
#define STRUCT(s) ",structure=" s

/* The encoders every key type has. */
#define ENCODERS_COMMON(names)                                                 \
    ENC(names, "der", STRUCT("SubjectPublicKeyInfo"), spki_der),               \
        ENC(names, "pem", STRUCT("SubjectPublicKeyInfo"), spki_pem),           \
        ENC(names, "text", "", text),                                          \
        ENC(names, "der", STRUCT("PrivateKeyInfo"), pki_der),                  \
        ENC(names, "pem", STRUCT("PrivateKeyInfo"), pki_pem),                  \
        ENC(names, "der", STRUCT("EncryptedPrivateKeyInfo"), epki_der),        \
        ENC(names, "pem", STRUCT("EncryptedPrivateKeyInfo"), epki_pem)

/* Traditional private-key structures, under OpenSSL's names for them. */
#define ENCODERS_TRADITIONAL(names, s, impl)                                   \
    ENC(names, "der", STRUCT(s), impl##_der),                                  \
        ENC(names, "pem", STRUCT(s), impl##_pem)

/* The same structures as OpenSSL's default provider offers for each type. */
const OSSL_ALGORITHM prov_encoders[] = {
    ENCODERS_COMMON(NAMES_RSA),
    ENCODERS_TRADITIONAL(NAMES_RSA, "type-specific", ts),
    ENCODERS_TRADITIONAL(NAMES_RSA, "rsa", rsa),
    ENCODERS_TRADITIONAL(NAMES_RSA, "pkcs1", pkcs1),
    ENCODERS_COMMON(NAMES_RSAPSS),
    ENCODERS_TRADITIONAL(NAMES_RSAPSS, "pkcs1", pkcs1),
    ENCODERS_COMMON(NAMES_EC),
    ENCODERS_TRADITIONAL(NAMES_EC, "type-specific", ts),
    ENCODERS_TRADITIONAL(NAMES_EC, "ec", ec),
    ENCODERS_COMMON(NAMES_ED25519),
    ENCODERS_COMMON(NAMES_ED448),
    {NULL, NULL, NULL, NULL},
};
