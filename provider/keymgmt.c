/* SPDX-License-Identifier: Apache-2.0 */
/* KEYMGMT for RSA, RSA-PSS, EC, Ed25519 and Ed448: token keys referenced by the
 * store, public keys imported for matching and ECDH, and key generation on
 * the token. */
#include "config.h"

#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ec.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prov.h"

#define PRIV_SELECTED(s) (((s)&OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
#define PUB_SELECTED(s)  (((s)&OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)

static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_load_fn km_load;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_validate_fn km_validate;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_import_fn km_import;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_dup_fn km_dup;
static OSSL_FUNC_keymgmt_set_params_fn km_set_params;
static OSSL_FUNC_keymgmt_settable_params_fn km_settable;
static OSSL_FUNC_keymgmt_gen_set_template_fn km_gen_set_template;
static OSSL_FUNC_keymgmt_gen_set_params_fn km_gen_set_params;
static OSSL_FUNC_keymgmt_gen_fn km_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn km_gen_cleanup;

static void km_free(void *keydata)
{
    prov_key_unref(keydata);
}

/* The store hands over a key pointer as reference; we take a reference. */
static void *km_load(const void *reference, size_t reference_sz)
{
    prov_key *key;

    if (!reference || reference_sz != sizeof(key))
        return NULL;
    memcpy(&key, reference, sizeof(key));
    return prov_key_ref(key);
}

static int km_has(const void *keydata, int selection)
{
    const prov_key *key = keydata;
    int ok = 1;

    if (!key)
        return 0;
    if (PRIV_SELECTED(selection) && !key->priv && !key->sw_private)
        return 0;
    if (PUB_SELECTED(selection)
        || (selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS)) {
        /* A question, not an operation: no error is left behind. */
        ERR_set_mark();
        ok = prov_key_pub(key) != NULL;
        ERR_pop_to_mark();
    }
    return ok;
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const prov_key *a = keydata1, *b = keydata2;
    EVP_PKEY *pa, *pb;

    if (!a || !b)
        return 0;
    if (a->priv && b->priv && a->priv == b->priv)
        return 1;
    if (!(pa = prov_key_pub(a)) || !(pb = prov_key_pub(b)))
        return 0;
    if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
        return EVP_PKEY_eq(pa, pb) == 1;
    if (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)
        return EVP_PKEY_parameters_eq(pa, pb) == 1;
    return 1;
}

static int km_validate(const void *keydata, int selection, int checktype)
{
    const prov_key *key = keydata;
    EVP_PKEY_CTX *pctx;
    int ok = 1;

    if (!km_has(keydata, selection))
        return 0;
    /* The private half is the token's; its public half can be checked. */
    if (PUB_SELECTED(selection) && key->type != PROV_KEY_ED25519
        && key->type != PROV_KEY_ED448) {
        pctx = EVP_PKEY_CTX_new_from_pkey(
            prov_swctx(key->ctx), prov_key_pub(key), prov_swprops(key->ctx));
        ok = pctx && EVP_PKEY_public_check(pctx) == 1;
        EVP_PKEY_CTX_free(pctx);
    }
    return ok;
}

/* EC security bits as OpenSSL counts them (from the order's size). */
static int ec_security_bits(unsigned bits)
{
    return bits >= 512   ? 256
           : bits >= 384 ? 192
           : bits >= 256 ? 128
           : bits >= 224 ? 112
           : bits >= 160 ? 80
                         : (int)bits / 2;
}

/*
 * What every load asks (bits, security bits, maximum size; the group and
 * default digest of an EC key) without the public half: 1 when @params
 * asked nothing else and all is answered, 0 when the public half is needed.
 */
static int km_get_cheap(const prov_key *key, OSSL_PARAM params[])
{
    bool ec = key->type == PROV_KEY_EC;
    int sec = ec                            ? ec_security_bits(key->bits)
              : key->type == PROV_KEY_ED448 ? 224
                                            : 128;
    OSSL_PARAM *p;

    for (p = params; p->key; p++) {
        const char *k = p->key;
        int ok;

        if (strcmp(k, OSSL_PKEY_PARAM_BITS) == 0)
            ok = OSSL_PARAM_set_int(p, (int)key->bits);
        else if (strcmp(k, OSSL_PKEY_PARAM_SECURITY_BITS) == 0)
            ok = OSSL_PARAM_set_int(p, sec);
        else if (strcmp(k, OSSL_PKEY_PARAM_MAX_SIZE) == 0)
            ok = OSSL_PARAM_set_int(p, (int)key->max_sig);
        else if (ec && strcmp(k, OSSL_PKEY_PARAM_GROUP_NAME) == 0)
            ok = OSSL_PARAM_set_utf8_string(p, OBJ_nid2sn(key->curve_nid));
        else if (ec && strcmp(k, OSSL_PKEY_PARAM_DEFAULT_DIGEST) == 0)
            ok = OSSL_PARAM_set_utf8_string(p, "SHA256");
        else
            return 0;
        if (!ok)
            return 0;
    }
    return 1;
}

/*
 * Parameters come from the software public half (bits, security bits,
 * maximum signature size, default digest, group, encoded public key); for
 * a token key whose public half has not been needed yet, the first ones
 * come from the token's attributes, read at load.
 */
static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    prov_key *key = keydata;
    EVP_PKEY *pk;

    if (!key)
        return 1;
    if (key->priv && !prov_key_pub_loaded(key) && km_get_cheap(key, params))
        return 1;
    pk = prov_key_pub(key);
    if (!pk)
        return 0;
    return EVP_PKEY_get_params(pk, params);
}

#define COMMON_GETTABLE                                                        \
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),                                \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),                   \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL)

static const OSSL_PARAM rsa_gettable_tbl[] = {
    COMMON_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_gettable_tbl[] = {
    COMMON_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ed_gettable_tbl[] = {
    COMMON_GETTABLE,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

/* Whether @params carry private key material. */
static bool has_private_params(const OSSL_PARAM params[])
{
    return OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY)
           || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D);
}

/* Whether @params carry a public key. */
static bool has_public_params(const OSSL_PARAM params[])
{
    return OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY)
           || OSSL_PARAM_locate_const(params,
                                      OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY)
           || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N);
}

/*
 * Import makes a software key: public parts (a peer, a certificate's key)
 * or a whole software keypair when OpenSSL gives us one (our keymgmt won a
 * fetch by name).  Nothing is ever written to a token here, and a token
 * key is never replaced by imported data.
 */
static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    prov_key *key = keydata;
    bool want_priv;
    int what;
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *pk = NULL;

    if (!key)
        return 0;
    if (key->priv) {
        prov_raise(key->ctx, PROV_R_BAD_INPUT,
                   "a token key cannot be replaced by imported data");
        return 0;
    }
    want_priv = PRIV_SELECTED(selection) && has_private_params(params);
    /*
     * Any key-pair bit takes the public key that comes, as OpenSSL's own EC
     * key manager does: OpenSSL 3.5 imports the EC share of a hybrid TLS
     * group (SecP256r1MLKEM768) with DOMAIN_PARAMETERS | PRIVATE_KEY and a
     * public key only, and dropping it failed the handshake.
     */
    what = want_priv ? EVP_PKEY_KEYPAIR
           : PUB_SELECTED(selection)
                   || ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
                       && has_public_params(params))
               ? EVP_PKEY_PUBLIC_KEY
               : EVP_PKEY_KEY_PARAMETERS;
    pctx = EVP_PKEY_CTX_new_from_name(prov_swctx(key->ctx),
                                      prov_key_type_name(key->type),
                                      prov_swprops(key->ctx));
    if (!pctx || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pk, what, (OSSL_PARAM *)params) <= 0) {
        EVP_PKEY_CTX_free(pctx);
        prov_raise(key->ctx, PROV_R_BAD_INPUT, "cannot import %s key data",
                   prov_key_type_name(key->type));
        return 0;
    }
    EVP_PKEY_CTX_free(pctx);
    return prov_key_set_public(key, pk, want_priv);
}

static const OSSL_PARAM rsa_import_tbl[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_import_tbl[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ed_import_tbl[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

/*
 * Export: a token key gives its public parts and domain parameters, never
 * its private part (the request fails with a reason; OpenSSL then compares
 * keys the other way round, importing the other key here).  A software key
 * exports like any software key.
 */
static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb,
                     void *cbarg)
{
    prov_key *key = keydata;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pk;
    int what, ok;

    if (!key)
        return 0;
    if (PRIV_SELECTED(selection) && key->priv) {
        /*
         * OpenSSL probes with "everything" at every operation init that
         * tries another provider first, and drops the error: raising it
         * there would cost time for nothing.  A real request is told why.
         */
        if (selection != OSSL_KEYMGMT_SELECT_ALL)
            prov_raise(
                key->ctx, PROV_R_NOT_EXPORTABLE,
                "%s: the private key stays on the token (export the public key, or use the key through its URI)",
                key->uri);
        else
            prov_raise_reason(key->ctx, PROV_R_NOT_EXPORTABLE);
        return 0;
    }
    if (PRIV_SELECTED(selection) && key->sw_private)
        what = EVP_PKEY_KEYPAIR;
    else if (PUB_SELECTED(selection) || PRIV_SELECTED(selection))
        what = EVP_PKEY_PUBLIC_KEY;
    else
        what = EVP_PKEY_KEY_PARAMETERS;
    if (!(pk = prov_key_pub(key)))
        return 0;
    if (EVP_PKEY_todata(pk, what, &params) <= 0) {
        prov_raise(key->ctx, PROV_R_INTERNAL, "cannot export key data");
        return 0;
    }
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static void *km_dup(const void *keydata_from, int selection)
{
    const prov_key *from = keydata_from;
    prov_key *key;
    EVP_PKEY *pk;

    /* Token keys are immutable once made: sharing is a copy. */
    if (!from || from->priv)
        return prov_key_ref((prov_key *)from);
    key = prov_key_new_public(from->ctx, from->type);
    if (!key || !from->pub)
        return key;
    pk = EVP_PKEY_dup(from->pub);
    if (!pk || !prov_key_set_public(key, pk, from->sw_private)) {
        EVP_PKEY_free(pk);
        prov_key_unref(key);
        return NULL;
    }
    return key;
}

/*
 * set_params: only for software keys; libssl sets the peer's encoded point
 * on a key made from our parameters (EVP_PKEY_set1_encoded_public_key).
 */
/* Only include-public=1, which a token key always meets (`openssl ec`). */
static bool token_key_unchanged(const OSSL_PARAM params[])
{
    int v;

    for (const OSSL_PARAM *p = params; p->key; p++)
        if (strcmp(p->key, OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC) != 0
            || !OSSL_PARAM_get_int(p, &v) || v != 1)
            return false;
    return true;
}

static int km_set_params(void *keydata, const OSSL_PARAM params[])
{
    prov_key *key = keydata;

    if (!key || !params || !params[0].key)
        return 1;
    if (key->priv && token_key_unchanged(params))
        return 1;
    if (key->priv || !key->pub) {
        prov_raise(key->ctx, PROV_R_BAD_INPUT,
                   "a token key's parameters cannot be changed");
        return 0;
    }
    if (EVP_PKEY_set_params(key->pub, (OSSL_PARAM *)params) != 1)
        return 0;
    key->bits = (unsigned)EVP_PKEY_get_bits(key->pub);
    key->max_sig = (size_t)EVP_PKEY_get_size(key->pub);
    return 1;
}

static const OSSL_PARAM km_settable_tbl[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_settable(void *provctx)
{
    return km_settable_tbl;
}

/* ------------------------------------------------------------------ */
/* Key generation on the token                                         */
/* ------------------------------------------------------------------ */

#define GEN_PARAM_URI       "p11ca-uri"
#define GEN_PARAM_LABEL     "p11ca-label"
#define GEN_PARAM_ID        "p11ca-id"
#define GEN_PARAM_EPHEMERAL "p11ca-ephemeral"
#define GEN_PARAM_KEY_USAGE "p11ca-key-usage"

struct gen_ctx {
    prov_ctx *ctx;
    prov_key_type type;
    p11_key_spec spec;
    /* As given, for software keys (any size or curve OpenSSL knows). */
    size_t rsa_bits;
    char group[64];
    bool params_only; /* domain parameters (libssl: an ECDHE group) */
    char *uri;
    char *label;
    char *id_hex;
    int ephemeral;
    unsigned usage; /* P11_USAGE_*, 0: the type's */
};

static void *gen_init(prov_ctx *ctx, prov_key_type type, int selection,
                      const OSSL_PARAM params[])
{
    struct gen_ctx *g;

    g = calloc(1, sizeof(*g));
    if (!g) {
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    g->ctx = ctx;
    g->type = type;
    g->params_only = !(selection & OSSL_KEYMGMT_SELECT_KEYPAIR);
    switch (type) {
    case PROV_KEY_RSA:
    case PROV_KEY_RSA_PSS:
        g->spec.kind = P11_KEY_RSA;
        g->spec.bits = 3072;
        break;
    case PROV_KEY_EC:
        g->spec.kind = P11_KEY_EC;
        g->spec.curve_nid = NID_X9_62_prime256v1;
        g->spec.bits = 256;
        break;
    case PROV_KEY_ED25519:
        g->spec.kind = P11_KEY_ED25519;
        g->spec.bits = 256;
        break;
    case PROV_KEY_ED448:
        g->spec.kind = P11_KEY_ED448;
        g->spec.bits = 456;
        break;
    }
    if (!km_gen_set_params(g, params)) {
        km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

static int set_str(const OSSL_PARAM *p, char **dst)
{
    char *v = NULL;

    if (!p)
        return 1;
    if (!OSSL_PARAM_get_utf8_string(p, &v, 0))
        return 0;
    free(*dst);
    *dst = strdup(v);
    OPENSSL_free(v);
    return *dst != NULL;
}

/* p11ca-key-usage: "sign", "sign,decrypt", "derive"... */
static int gen_usage(struct gen_ctx *g, const OSSL_PARAM *p)
{
    const char *v = NULL;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &v)) {
        prov_raise(g->ctx, PROV_R_BAD_INPUT,
                   GEN_PARAM_KEY_USAGE " must be a string");
        return 0;
    }
    if (p11_key_usage_parse(v, &g->usage) != CKR_OK)
        return prov_raise_p11(g->ctx, p11_error_rv(), GEN_PARAM_KEY_USAGE);
    return 1;
}

static int km_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    struct gen_ctx *g = genctx;
    const OSSL_PARAM *p;
    char *group = NULL;
    size_t bits;

    if (!params)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS);
    if (p && g->spec.kind == P11_KEY_RSA) {
        if (!OSSL_PARAM_get_size_t(p, &bits))
            return 0;
        g->rsa_bits = bits;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p && g->spec.kind == P11_KEY_EC) {
        if (!OSSL_PARAM_get_utf8_string(p, &group, 0))
            return 0;
        snprintf(g->group, sizeof(g->group), "%s", group);
        OPENSSL_free(group);
    }
    p = OSSL_PARAM_locate_const(params, GEN_PARAM_EPHEMERAL);
    if (p && !OSSL_PARAM_get_int(p, &g->ephemeral))
        return 0;
    p = OSSL_PARAM_locate_const(params, GEN_PARAM_KEY_USAGE);
    if (p && !gen_usage(g, p))
        return 0;
    return set_str(OSSL_PARAM_locate_const(params, GEN_PARAM_URI), &g->uri)
           && set_str(OSSL_PARAM_locate_const(params, GEN_PARAM_LABEL),
                      &g->label)
           && set_str(OSSL_PARAM_locate_const(params, GEN_PARAM_ID),
                      &g->id_hex);
}

static const OSSL_PARAM rsa_gen_tbl[] = {
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_utf8_string(GEN_PARAM_URI, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_LABEL, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_ID, NULL, 0),
    OSSL_PARAM_int(GEN_PARAM_EPHEMERAL, NULL),
    OSSL_PARAM_utf8_string(GEN_PARAM_KEY_USAGE, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_gen_tbl[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_URI, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_LABEL, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_ID, NULL, 0),
    OSSL_PARAM_int(GEN_PARAM_EPHEMERAL, NULL),
    OSSL_PARAM_utf8_string(GEN_PARAM_KEY_USAGE, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ed_gen_tbl[] = {
    OSSL_PARAM_utf8_string(GEN_PARAM_URI, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_LABEL, NULL, 0),
    OSSL_PARAM_utf8_string(GEN_PARAM_ID, NULL, 0),
    OSSL_PARAM_int(GEN_PARAM_EPHEMERAL, NULL),
    OSSL_PARAM_utf8_string(GEN_PARAM_KEY_USAGE, NULL, 0),
    OSSL_PARAM_END,
};

static int hex_id(const char *s, unsigned char *buf, size_t max, size_t *len)
{
    size_t n = 0;

    for (; s[0] && s[1]; s += 2) {
        unsigned int v;
        if (s[0] == ':')
            s--;
        else if (n >= max || sscanf(s, "%2x", &v) != 1)
            return 0;
        else
            buf[n++] = (unsigned char)v;
    }
    *len = n;
    return *s == '\0';
}

/*
 * Which token: the p11ca-uri parameter, else p11ca-default-token from the
 * configuration; a key made without p11ca-uri is a session key (never
 * stored on the token), as for an ephemeral TLS key.
 */
static int gen_target(struct gen_ctx *g, p11_uri **uri, bool *session_only)
{
    const char *str = g->uri ? g->uri : g->ctx->default_token;
    CK_RV rv;

    *session_only = !g->uri || g->ephemeral;
    rv = p11_uri_parse(str, uri);
    if (rv != CKR_OK)
        return prov_raise_p11(g->ctx, rv, "p11ca-uri");
    return 1;
}

/*
 * No token named at all: a software key, as the default provider would
 * make it.  This is what OpenSSL gets when our keymgmt wins a fetch by name
 * (`-provider p11ca -provider default`, TLS ephemeral keys).
 */
static void *gen_software(struct gen_ctx *g)
{
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *pk = NULL;
    prov_key *key = NULL;
    int ok;

    pctx = EVP_PKEY_CTX_new_from_name(
        prov_swctx(g->ctx), prov_key_type_name(g->type), prov_swprops(g->ctx));
    ok = pctx
         && (g->params_only ? EVP_PKEY_paramgen_init(pctx)
                            : EVP_PKEY_keygen_init(pctx))
                > 0;
    if (ok && g->spec.kind == P11_KEY_RSA && g->rsa_bits)
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(pctx, (int)g->rsa_bits) > 0;
    if (ok && g->spec.kind == P11_KEY_EC)
        ok = EVP_PKEY_CTX_set_group_name(
                 pctx, g->group[0] ? g->group : OBJ_nid2sn(g->spec.curve_nid))
             > 0;
    if (ok)
        ok = EVP_PKEY_generate(pctx, &pk) > 0;
    if (ok && (key = prov_key_new_public(g->ctx, g->type)) != NULL)
        prov_key_set_public(key, pk, !g->params_only);
    else
        EVP_PKEY_free(pk);
    if (!ok)
        prov_raise(g->ctx, PROV_R_INTERNAL, "software key generation failed");
    EVP_PKEY_CTX_free(pctx);
    return key;
}

/* The token key's spec from what was asked: sizes and curves it supports. */
static int gen_spec(struct gen_ctx *g)
{
    char spec[96];

    if (g->spec.kind == P11_KEY_RSA && g->rsa_bits)
        snprintf(spec, sizeof(spec), "rsa:%zu", g->rsa_bits);
    else if (g->spec.kind == P11_KEY_EC && g->group[0])
        snprintf(spec, sizeof(spec), "ec:%s", g->group);
    else
        return 1;
    if (p11_key_spec_parse(spec, &g->spec) != CKR_OK)
        return prov_raise_p11(g->ctx, p11_error_rv(), "key generation");
    return 1;
}

/* A template key (libssl: the peer's parameters) gives the curve. */
static int km_gen_set_template(void *genctx, void *templ)
{
    struct gen_ctx *g = genctx;
    prov_key *t = templ;
    char group[64];
    size_t len = 0;

    if (!g || !t || g->spec.kind != P11_KEY_EC || !prov_key_pub(t))
        return 1;
    if (!EVP_PKEY_get_utf8_string_param(t->pub, OSSL_PKEY_PARAM_GROUP_NAME,
                                        group, sizeof(group), &len))
        return 0;
    snprintf(g->group, sizeof(g->group), "%s", group);
    return 1;
}

static void *km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    struct gen_ctx *g = genctx;
    unsigned char idbuf[P11_MAX_ID_LEN];
    const unsigned char *id = NULL;
    size_t id_len = 0;
    p11_uri *uri = NULL;
    p11_token *tok = NULL;
    p11_obj *priv = NULL;
    prov_key *key = NULL;
    bool session_only;
    const char *label;
    p11_auth auth;
    CK_RV rv;

    if (g->params_only || (!g->uri && !g->ctx->default_token)) {
        if (g->usage && !g->params_only) {
            prov_raise(
                g->ctx, PROV_R_BAD_INPUT,
                GEN_PARAM_KEY_USAGE
                " is for keys made on a token: name it with " GEN_PARAM_URI);
            return NULL;
        }
        return gen_software(g);
    }
    if (!gen_spec(g) || !gen_target(g, &uri, &session_only))
        return NULL;
    g->spec.usage = g->usage;
    if (g->id_hex && !hex_id(g->id_hex, idbuf, sizeof(idbuf), &id_len)) {
        prov_raise(g->ctx, PROV_R_BAD_INPUT, "p11ca-id must be hex");
        goto out;
    }
    if (g->id_hex)
        id = idbuf;
    else
        id = p11_uri_get0_id(uri, &id_len);
    label = g->label ? g->label : p11_uri_get0_label(uri);
    p11_auth_from_uri(&auth, uri);
    if (!auth.pin_value && !auth.pin_source)
        prov_auth_config(g->ctx, &auth);
    rv = p11_token_find_one(prov_p11(g->ctx), uri, &tok);
    if (rv == CKR_OK)
        rv = p11_keygen(tok, &auth, &g->spec, label, id, id_len, session_only,
                        NULL, &priv);
    if (rv != CKR_OK) {
        prov_raise_p11(g->ctx, rv, "key generation");
        goto out;
    }
    key = prov_key_from_obj(g->ctx, priv, uri);
    if (key && g->type == PROV_KEY_RSA_PSS)
        key->type = PROV_KEY_RSA_PSS;
out:
    p11_obj_unref(priv);
    p11_uri_free(uri);
    return key;
}

static void km_gen_cleanup(void *genctx)
{
    struct gen_ctx *g = genctx;

    if (!g)
        return;
    free(g->uri);
    free(g->label);
    free(g->id_hex);
    free(g);
}

/* ------------------------------------------------------------------ */
/* Per-type entry points and tables                                    */
/* ------------------------------------------------------------------ */

#define IMPL_KEYMGMT(prefix, TYPE, gettable, import_types, gen_settable,       \
                     opname)                                                   \
    static OSSL_FUNC_keymgmt_new_fn prefix##_new;                              \
    static OSSL_FUNC_keymgmt_gen_init_fn prefix##_gen_init;                    \
    static OSSL_FUNC_keymgmt_gettable_params_fn prefix##_gettable;             \
    static OSSL_FUNC_keymgmt_import_types_fn prefix##_import_types;            \
    static OSSL_FUNC_keymgmt_export_types_fn prefix##_export_types;            \
    static OSSL_FUNC_keymgmt_gen_settable_params_fn prefix##_gen_settable;     \
    static OSSL_FUNC_keymgmt_query_operation_name_fn prefix##_opname;          \
    static void *prefix##_new(void *provctx)                                   \
    {                                                                          \
        return prov_key_new_public(provctx, TYPE);                             \
    }                                                                          \
    static void *prefix##_gen_init(void *provctx, int selection,               \
                                   const OSSL_PARAM params[])                  \
    {                                                                          \
        return gen_init(provctx, TYPE, selection, params);                     \
    }                                                                          \
    static const OSSL_PARAM *prefix##_gettable(void *provctx)                  \
    {                                                                          \
        return gettable;                                                       \
    }                                                                          \
    static const OSSL_PARAM *prefix##_import_types(int selection)              \
    {                                                                          \
        return import_types;                                                   \
    }                                                                          \
    static const OSSL_PARAM *prefix##_export_types(int selection)              \
    {                                                                          \
        return PRIV_SELECTED(selection) ? NULL : import_types;                 \
    }                                                                          \
    static const OSSL_PARAM *prefix##_gen_settable(void *genctx,               \
                                                   void *provctx)              \
    {                                                                          \
        return gen_settable;                                                   \
    }                                                                          \
    static const char *prefix##_opname(int operation_id)                       \
    {                                                                          \
        return opname(operation_id);                                           \
    }                                                                          \
    const OSSL_DISPATCH prov_##prefix##_keymgmt_functions[] = {                \
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))prefix##_new},                 \
        {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                     \
        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},                     \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                       \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                   \
        {OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))km_validate},             \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},         \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,                                    \
         (void (*)(void))prefix##_gettable},                                   \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                 \
        {OSSL_FUNC_KEYMGMT_IMPORT_TYPES,                                       \
         (void (*)(void))prefix##_import_types},                               \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                 \
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES,                                       \
         (void (*)(void))prefix##_export_types},                               \
        {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},                       \
        {OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))km_set_params},         \
        {OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))km_settable},      \
        {OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE,                                   \
         (void (*)(void))km_gen_set_template},                                 \
        {OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))prefix##_gen_init},       \
        {OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))km_gen_set_params}, \
        {OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS,                                \
         (void (*)(void))prefix##_gen_settable},                               \
        {OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))km_gen},                       \
        {OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))km_gen_cleanup},       \
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,                               \
         (void (*)(void))prefix##_opname},                                     \
        {0, NULL},                                                             \
    }

static const char *rsa_operation_name(int op)
{
    return "RSA";
}

static const char *ec_operation_name(int op)
{
    return op == OSSL_OP_KEYEXCH ? "ECDH" : "ECDSA";
}

static const char *ed_operation_name(int op)
{
    return "ED25519";
}

static const char *ed448_operation_name(int op)
{
    return "ED448";
}

IMPL_KEYMGMT(rsa, PROV_KEY_RSA, rsa_gettable_tbl, rsa_import_tbl, rsa_gen_tbl,
             rsa_operation_name);
IMPL_KEYMGMT(rsapss, PROV_KEY_RSA_PSS, rsa_gettable_tbl, rsa_import_tbl,
             rsa_gen_tbl, rsa_operation_name);
IMPL_KEYMGMT(ec, PROV_KEY_EC, ec_gettable_tbl, ec_import_tbl, ec_gen_tbl,
             ec_operation_name);
IMPL_KEYMGMT(ed25519, PROV_KEY_ED25519, ed_gettable_tbl, ed_import_tbl,
             ed_gen_tbl, ed_operation_name);
IMPL_KEYMGMT(ed448, PROV_KEY_ED448, ed_gettable_tbl, ed_import_tbl, ed_gen_tbl,
             ed448_operation_name);
