/* SPDX-License-Identifier: Apache-2.0 */
/* RAND "P11CA-RAND": the token's random generator (C_GenerateRandom) as an
 * OpenSSL randomness source, offered with p11ca-rand = yes; OpenSSL's
 * DRBGs take it as their parent (seed source), or applications draw from
 * it directly. */
#include "config.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "prov.h"

/* What a request is cut into (C_GenerateRandom takes a CK_ULONG). */
#define RAND_MAX_REQUEST ((size_t)1 << 16)
/* The strength claimed: a token's generator is meant for keys. */
#define RAND_STRENGTH 256

static OSSL_FUNC_rand_newctx_fn rand_newctx;
static OSSL_FUNC_rand_freectx_fn rand_freectx;
static OSSL_FUNC_rand_instantiate_fn rand_instantiate;
static OSSL_FUNC_rand_uninstantiate_fn rand_uninstantiate;
static OSSL_FUNC_rand_generate_fn rand_generate;
static OSSL_FUNC_rand_reseed_fn rand_reseed;
static OSSL_FUNC_rand_get_seed_fn rand_get_seed;
static OSSL_FUNC_rand_clear_seed_fn rand_clear_seed;
static OSSL_FUNC_rand_enable_locking_fn rand_enable_locking;
static OSSL_FUNC_rand_lock_fn rand_lock;
static OSSL_FUNC_rand_unlock_fn rand_unlock;
static OSSL_FUNC_rand_get_ctx_params_fn rand_get_ctx_params;
static OSSL_FUNC_rand_gettable_ctx_params_fn rand_gettable_ctx_params;
static OSSL_FUNC_rand_verify_zeroization_fn rand_verify_zeroization;

struct rand_ctx {
    prov_ctx *ctx;
    _Atomic int state; /* EVP_RAND_STATE_* */
};

/*
 * A parent is accepted and never used: OpenSSL gives one to every
 * generator of its [random] section (random = P11CA-RAND), and the bytes
 * come from the token all the same.
 */
static void *rand_newctx(void *provctx, void *parent,
                         const OSSL_DISPATCH *parent_dispatch)
{
    prov_ctx *ctx = provctx;
    struct rand_ctx *rc;

    (void)parent;
    (void)parent_dispatch;
    rc = calloc(1, sizeof(*rc));
    if (!rc) {
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    rc->ctx = ctx;
    atomic_init(&rc->state, EVP_RAND_STATE_UNINITIALISED);
    return rc;
}

static void rand_freectx(void *vctx)
{
    free(vctx);
}

/* The token is found at the first use, not here: instantiation may run
 * while OpenSSL sets up its own generators. */
static int rand_instantiate(void *vctx, unsigned int strength,
                            int prediction_resistance,
                            const unsigned char *pstr, size_t pstr_len,
                            const OSSL_PARAM params[])
{
    struct rand_ctx *rc = vctx;

    if (strength > RAND_STRENGTH) {
        prov_raise(rc->ctx, PROV_R_UNSUPPORTED,
                   "P11CA-RAND: strength %u asked, %d given", strength,
                   RAND_STRENGTH);
        return 0;
    }
    atomic_store(&rc->state, EVP_RAND_STATE_READY);
    return 1;
}

static int rand_uninstantiate(void *vctx)
{
    struct rand_ctx *rc = vctx;

    atomic_store(&rc->state, EVP_RAND_STATE_UNINITIALISED);
    return 1;
}

/*
 * The kernel's generator, for a module's own requests: a module that uses
 * this process's libcrypto (SoftHSM2) asks OpenSSL for random bytes in
 * C_Initialize and C_GenerateRandom; when OpenSSL's generators are ours
 * (random = P11CA-RAND), that request comes back here, inside the module,
 * and is served from the kernel (getrandom), not from the module again.
 */
static int from_kernel(unsigned char *out, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(out, len, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        out += n;
        len -= (size_t)n;
    }
    return 1;
}

/*
 * The token of the generator: p11ca-rand-token, else p11ca-default-token,
 * else the one initialised token; found once (tokens live as long as the
 * PKCS#11 context).
 */
static p11_token *rand_token(prov_ctx *ctx)
{
    p11_token *tok = atomic_load(&ctx->rand_tok);
    const char *str = ctx->rand_token ? ctx->rand_token : ctx->default_token;
    p11_uri *uri = NULL;
    CK_RV rv = CKR_OK;

    if (tok)
        return tok;
    if (str)
        rv = p11_uri_parse(str, &uri);
    if (rv == CKR_OK)
        rv = p11_token_find_one(prov_p11(ctx), uri, &tok);
    p11_uri_free(uri);
    if (rv != CKR_OK) {
        prov_raise_p11(ctx, rv, "P11CA-RAND: the token of p11ca-rand-token");
        return NULL;
    }
    atomic_store(&ctx->rand_tok, tok);
    return tok;
}

static int fill(struct rand_ctx *rc, unsigned char *out, size_t len)
{
    p11_token *tok;
    CK_RV rv = CKR_OK;

    if (atomic_load(&rc->state) != EVP_RAND_STATE_READY) {
        prov_raise(rc->ctx, PROV_R_BAD_INPUT, "P11CA-RAND: not instantiated");
        return 0;
    }
    if (p11_thread_in_module()) {
        LOG_DBG(PROV, "P11CA-RAND: %zu bytes for the module itself: kernel",
                len);
        return from_kernel(out, len);
    }
    if (!(tok = rand_token(rc->ctx)))
        return 0;
    for (size_t done = 0; rv == CKR_OK && done < len;) {
        size_t n =
            len - done < RAND_MAX_REQUEST ? len - done : RAND_MAX_REQUEST;

        rv = p11_generate_random(tok, out + done, n);
        done += n;
    }
    if (rv != CKR_OK) {
        OPENSSL_cleanse(out, len);
        return prov_raise_p11(rc->ctx, rv, "P11CA-RAND");
    }
    return 1;
}

/* Additional input is not sent to the token (C_SeedRandom is optional and
 * not a mixing function any token promises). */
static int rand_generate(void *vctx, unsigned char *out, size_t outlen,
                         unsigned int strength, int prediction_resistance,
                         const unsigned char *adin, size_t adin_len)
{
    struct rand_ctx *rc = vctx;

    if (strength > RAND_STRENGTH) {
        prov_raise(rc->ctx, PROV_R_UNSUPPORTED,
                   "P11CA-RAND: strength %u asked, %d given", strength,
                   RAND_STRENGTH);
        return 0;
    }
    return fill(rc, out, outlen);
}

static int rand_reseed(void *vctx, int prediction_resistance,
                       const unsigned char *ent, size_t ent_len,
                       const unsigned char *adin, size_t adin_len)
{
    struct rand_ctx *rc = vctx;

    return atomic_load(&rc->state) == EVP_RAND_STATE_READY;
}

/* Seed (or a nonce) for a DRBG whose parent this is, from the token. */
static size_t rand_get_seed(void *vctx, unsigned char **pout, int entropy,
                            size_t min_len, size_t max_len,
                            int prediction_resistance,
                            const unsigned char *adin, size_t adin_len)
{
    struct rand_ctx *rc = vctx;
    size_t len = min_len;
    unsigned char *buf;

    if (len < (size_t)(entropy + 7) / 8)
        len = (size_t)(entropy + 7) / 8;
    /* A nonce asks for no entropy and no length: 16 bytes (128 bits). */
    if (len == 0)
        len = max_len < 16 ? max_len : 16;
    /* OpenSSL 3.5's CTR-DRBG asks 1.5 x its strength (entropy and nonce
     * at once): every byte of the token's generator counts. */
    if (len == 0 || len > max_len) {
        prov_raise(rc->ctx, PROV_R_BAD_INPUT,
                   "P11CA-RAND: a seed of %d bits in %zu to %zu bytes", entropy,
                   min_len, max_len);
        return 0;
    }
    buf = OPENSSL_secure_malloc(len);
    if (!buf) {
        prov_raise(rc->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    if (!fill(rc, buf, len)) {
        OPENSSL_secure_clear_free(buf, len);
        return 0;
    }
    *pout = buf;
    return len;
}

static void rand_clear_seed(void *vctx, unsigned char *out, size_t outlen)
{
    OPENSSL_secure_clear_free(out, outlen);
}

/* The PKCS#11 layer is thread-safe: nothing to lock here. */
static int rand_enable_locking(void *vctx)
{
    return 1;
}

static int rand_lock(void *vctx)
{
    return 1;
}

static void rand_unlock(void *vctx)
{
}

static int rand_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    struct rand_ctx *rc = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
    if (p && !OSSL_PARAM_set_int(p, atomic_load(&rc->state)))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
    if (p && !OSSL_PARAM_set_uint(p, RAND_STRENGTH))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
    if (p && !OSSL_PARAM_set_size_t(p, RAND_MAX_REQUEST))
        return 0;
    return 1;
}

static const OSSL_PARAM rand_gettable[] = {
    OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
    OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
    OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rand_gettable_ctx_params(void *vctx, void *provctx)
{
    return rand_gettable;
}

/* No state of ours to zero: the token keeps its generator's. */
static int rand_verify_zeroization(void *vctx)
{
    return 1;
}

const OSSL_DISPATCH prov_rand_functions[] = {
    {OSSL_FUNC_RAND_NEWCTX, (void (*)(void))rand_newctx},
    {OSSL_FUNC_RAND_FREECTX, (void (*)(void))rand_freectx},
    {OSSL_FUNC_RAND_INSTANTIATE, (void (*)(void))rand_instantiate},
    {OSSL_FUNC_RAND_UNINSTANTIATE, (void (*)(void))rand_uninstantiate},
    {OSSL_FUNC_RAND_GENERATE, (void (*)(void))rand_generate},
    {OSSL_FUNC_RAND_RESEED, (void (*)(void))rand_reseed},
    {OSSL_FUNC_RAND_GET_SEED, (void (*)(void))rand_get_seed},
    {OSSL_FUNC_RAND_CLEAR_SEED, (void (*)(void))rand_clear_seed},
    {OSSL_FUNC_RAND_ENABLE_LOCKING, (void (*)(void))rand_enable_locking},
    {OSSL_FUNC_RAND_LOCK, (void (*)(void))rand_lock},
    {OSSL_FUNC_RAND_UNLOCK, (void (*)(void))rand_unlock},
    {OSSL_FUNC_RAND_GET_CTX_PARAMS, (void (*)(void))rand_get_ctx_params},
    {OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS,
     (void (*)(void))rand_gettable_ctx_params},
    {OSSL_FUNC_RAND_VERIFY_ZEROIZATION,
     (void (*)(void))rand_verify_zeroization},
    {0, NULL},
};
