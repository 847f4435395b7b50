/* SPDX-License-Identifier: Apache-2.0 */
/* Key objects of the provider: a token private key with its public half
 * cached in software, or a public key alone; reference counted. */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

const char *prov_key_type_name(prov_key_type type)
{
    switch (type) {
    case PROV_KEY_RSA:
        return "RSA";
    case PROV_KEY_RSA_PSS:
        return "RSA-PSS";
    case PROV_KEY_EC:
        return "EC";
    case PROV_KEY_ED25519:
        return "ED25519";
    case PROV_KEY_ED448:
        return "ED448";
    }
    return "unknown";
}

static prov_key *key_alloc(prov_ctx *ctx, prov_key_type type)
{
    prov_key *key = calloc(1, sizeof(*key));

    if (!key) {
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&key->pub_lock, NULL) != 0) {
        free(key);
        prov_raise(ctx, PROV_R_INTERNAL, "cannot make a lock");
        return NULL;
    }
    atomic_init(&key->refs, 1);
    key->ctx = ctx;
    key->type = type;
    return key;
}

prov_key *prov_key_new_public(prov_ctx *ctx, prov_key_type type)
{
    return key_alloc(ctx, type);
}

int prov_key_set_public(prov_key *key, EVP_PKEY *pk, bool has_private)
{
    char group[64];
    size_t len = 0;

    EVP_PKEY_free(key->pub);
    key->pub = pk;
    key->sw_private = has_private && !key->priv;
    key->bits = (unsigned)EVP_PKEY_get_bits(pk);
    key->max_sig = (size_t)EVP_PKEY_get_size(pk);
    key->curve_nid = NID_undef;
    if (key->type == PROV_KEY_EC
        && EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                          sizeof(group), &len))
        key->curve_nid = OBJ_sn2nid(group);
    return 1;
}

prov_key *prov_key_ref(prov_key *key)
{
    if (key)
        atomic_fetch_add(&key->refs, 1);
    return key;
}

void prov_key_unref(prov_key *key)
{
    if (!key || atomic_fetch_sub(&key->refs, 1) != 1)
        return;
    p11_obj_unref(key->priv);
    EVP_PKEY_free(key->pub);
    pthread_mutex_destroy(&key->pub_lock);
    free(key->uri);
    if (key->pin_value)
        p11_secure_free(key->pin_value, strlen(key->pin_value) + 1);
    free(key->pin_source);
    free(key->allowed);
    p11_secure_free(key->ir_key, 32);
    for (size_t i = 0; i < PROV_KEY_MDS; i++)
        if (key->mds[i]) {
            EVP_MD_free(key->mds[i]->md);
            free(key->mds[i]);
        }
    EVP_MD_CTX_free(key->spare_mdctx);
    free(key);
}

static int type_of(prov_ctx *ctx, p11_obj *obj, prov_key_type *type)
{
    switch (p11_obj_key_type(obj)) {
    case CKK_RSA:
        *type = PROV_KEY_RSA;
        return 1;
    case CKK_EC:
        *type = PROV_KEY_EC;
        return 1;
    case CKK_EC_EDWARDS:
        /* Ed25519 or Ed448: the curve says (info_from_token, edwards). */
        *type = PROV_KEY_ED25519;
        return 1;
    default:
        prov_raise(
            ctx, PROV_R_UNSUPPORTED,
            "%s: key type 0x%lx is not supported (RSA, EC, Ed25519 and Ed448 are)",
            p11_obj_describe(obj), (unsigned long)p11_obj_key_type(obj));
        return 0;
    }
}

/* Keep the PIN sources of @uri to log in again later. */
static int keep_auth(prov_key *key, const p11_uri *uri)
{
    p11_auth a;

    p11_auth_from_uri(&a, uri);
    if (a.pin_value) {
        size_t n = strlen(a.pin_value);
        /* Locked pages (the application may have no secure heap). */
        key->pin_value = p11_secure_zalloc(n + 1);
        if (!key->pin_value)
            return 0;
        memcpy(key->pin_value, a.pin_value, n + 1);
    }
    if (a.pin_source && !(key->pin_source = strdup(a.pin_source)))
        return 0;
    return 1;
}

/* CKA_ALLOWED_MECHANISMS, when the token has it. */
static void read_allowed(prov_key *key)
{
    unsigned char *v = NULL;
    size_t n = 0;

    if (p11_obj_get_attr(key->priv, CKA_ALLOWED_MECHANISMS, &v, &n) != CKR_OK
        || n < sizeof(CK_MECHANISM_TYPE)) {
        free(v);
        return;
    }
    key->allowed = (CK_MECHANISM_TYPE *)(void *)v;
    key->n_allowed = n / sizeof(CK_MECHANISM_TYPE);
}

/* The public half of the token key @priv, as a software key. */
static EVP_PKEY *read_public(prov_ctx *ctx, p11_obj *priv, prov_key_type type)
{
    EVP_PKEY *pk = NULL;
    CK_RV rv =
        p11_obj_public_key(priv, prov_swctx(ctx), prov_swprops(ctx), &pk);

    if (rv != CKR_OK) {
        prov_raise(ctx,
                   rv == P11_RV_NO_OBJECT ? PROV_R_NO_PUBLIC_KEY : PROV_R_TOKEN,
                   "%s", p11_error_message());
        return NULL;
    }
    if ((type == PROV_KEY_ED25519 || type == PROV_KEY_ED448)
        && !EVP_PKEY_is_a(pk, "ED25519") && !EVP_PKEY_is_a(pk, "ED448")) {
        prov_raise(ctx, PROV_R_UNSUPPORTED,
                   "%s: only Ed25519 and Ed448 EdDSA keys are supported",
                   p11_obj_describe(priv));
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

/* The DER size of an ECDSA-Sig-Value for a curve whose order has @bits. */
static size_t ecdsa_sig_size(unsigned bits)
{
    size_t n = (bits + 7) / 8 + (bits % 8 == 0 ? 1 : 0);
    size_t integer = 1 + (n < 128 ? 1 : 2) + n;
    size_t body = 2 * integer;

    return 1 + (body < 128 ? 1 : body < 256 ? 2 : 3) + body;
}

/*
 * What OpenSSL asks of every key when it is loaded (size, bits, maximum
 * signature size), from the token's attributes: EC keys on a named curve
 * and Ed25519.  The public half is read only when an operation needs it.
 * Returns 0 when the key needs its public half now (RSA: OpenSSL's
 * security-bits formula for RSA changes between versions).
 */
static int info_from_token(prov_key *key)
{
    unsigned bits = 0;
    int nid = NID_undef;

    if (key->type != PROV_KEY_EC && key->type != PROV_KEY_ED25519)
        return 0;
    if (p11_obj_key_info(key->priv, &bits, &nid) != CKR_OK) {
        p11_error_clear();
        return 0;
    }
    if (key->type == PROV_KEY_ED25519) {
        if (nid == NID_ED448) {
            key->type = PROV_KEY_ED448;
            key->bits = 456;
            key->max_sig = 114;
            return 1;
        }
        if (nid != NID_ED25519)
            return 0;
        key->bits = 256;
        key->max_sig = 64;
        return 1;
    }
    if (nid == NID_undef || bits == 0)
        return 0;
    key->bits = bits;
    key->curve_nid = nid;
    key->max_sig = ecdsa_sig_size(bits);
    return 1;
}

prov_key *prov_key_from_obj(prov_ctx *ctx, p11_obj *priv, const p11_uri *uri)
{
    prov_key_type type;
    prov_key *key;
    EVP_PKEY *pk;

    if (!type_of(ctx, priv, &type))
        return NULL;
    key = key_alloc(ctx, type);
    if (!key)
        return NULL;
    key->priv = p11_obj_ref(priv);
    if (!info_from_token(key)) {
        pk = read_public(ctx, priv, type);
        if (pk && type == PROV_KEY_ED25519 && EVP_PKEY_is_a(pk, "ED448"))
            key->type = PROV_KEY_ED448; /* CKA_EC_PARAMS did not say */
        if (!pk) {
            prov_key_unref(key);
            return NULL;
        }
        prov_key_set_public(key, pk, false);
    }
    key->uri = p11_obj_uri(priv);
    if (!key->uri || (uri && !keep_auth(key, uri))) {
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
        prov_key_unref(key);
        return NULL;
    }
    read_allowed(key);
    /* An RSA key that may sign with PSS only is an RSA-PSS key. */
    if (!prov_rsa_pss_adopt(key)) {
        prov_key_unref(key);
        return NULL;
    }
    return key;
}

EVP_PKEY *prov_key_pub(const prov_key *ckey)
{
    /* A cache filled once under the lock: logically const. */
    prov_key *key = (prov_key *)ckey;
    EVP_PKEY *pk = atomic_load_explicit(&key->pub, memory_order_acquire);

    if (pk || !key->priv)
        return pk;
    pthread_mutex_lock(&key->pub_lock);
    pk = key->pub;
    if (!pk) {
        pk = read_public(key->ctx, key->priv, key->type);
        atomic_store_explicit(&key->pub, pk, memory_order_release);
    }
    pthread_mutex_unlock(&key->pub_lock);
    return pk;
}

void prov_key_auth(const prov_key *key, p11_auth *auth)
{
    prov_auth_config(key->ctx, auth);
    if (key->pin_value)
        auth->pin_value = key->pin_value;
    if (key->pin_source)
        auth->pin_source = key->pin_source;
}

bool prov_key_allows(const prov_key *key, CK_MECHANISM_TYPE mech)
{
    if (!key->allowed)
        return true;
    for (size_t i = 0; i < key->n_allowed; i++)
        if (key->allowed[i] == mech)
            return true;
    return false;
}

#define KEY_CACHE_MAX 64

prov_key *prov_key_cache_get(prov_ctx *ctx, p11_obj *obj)
{
    prov_key *found = NULL;

    if (!ctx->cache_keys)
        return NULL;
    pthread_mutex_lock(&ctx->cache_lock);
    for (size_t i = 0; i < ctx->n_cache && !found; i++)
        if (p11_obj_same(ctx->cache[i]->priv, obj))
            found = prov_key_ref(ctx->cache[i]);
    pthread_mutex_unlock(&ctx->cache_lock);
    return found;
}

void prov_key_cache_put(prov_ctx *ctx, prov_key *key)
{
    prov_key *evicted = NULL;

    if (!ctx->cache_keys || !key->priv)
        return;
    pthread_mutex_lock(&ctx->cache_lock);
    if (!ctx->cache)
        ctx->cache = calloc(KEY_CACHE_MAX, sizeof(*ctx->cache));
    if (ctx->cache) {
        /* Full: the oldest goes (it stays alive while someone holds it). */
        if (ctx->n_cache == KEY_CACHE_MAX) {
            evicted = ctx->cache[0];
            memmove(ctx->cache, ctx->cache + 1,
                    (KEY_CACHE_MAX - 1) * sizeof(*ctx->cache));
            ctx->n_cache--;
        }
        ctx->cache[ctx->n_cache++] = prov_key_ref(key);
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    prov_key_unref(evicted);
}

void prov_key_cache_clear(prov_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_cache; i++)
        prov_key_unref(ctx->cache[i]);
    free(ctx->cache);
    ctx->cache = NULL;
    ctx->n_cache = 0;
}
