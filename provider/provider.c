/* SPDX-License-Identifier: Apache-2.0 */
/* The p11ca provider's entry point: configuration, algorithm tables,
 * provider parameters, reason strings and teardown. */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prov.h"
#include "signature.h"

static OSSL_FUNC_provider_teardown_fn prov_teardown;
static OSSL_FUNC_provider_gettable_params_fn prov_gettable_params;
static OSSL_FUNC_provider_get_params_fn prov_get_params;
static OSSL_FUNC_provider_query_operation_fn prov_query_operation;
static OSSL_FUNC_provider_get_reason_strings_fn prov_reason_strings;
static OSSL_FUNC_provider_get_capabilities_fn prov_get_capabilities;

#define ALG(names, funcs)                                                      \
    {                                                                          \
        names, PROV_PROPS, funcs, NULL                                         \
    }
#define ALG_DESC(names, funcs, desc)                                           \
    {                                                                          \
        names, PROV_PROPS, funcs, desc                                         \
    }

static const OSSL_ALGORITHM prov_stores[] = {
    ALG_DESC("pkcs11", prov_store_functions,
             "PKCS#11 tokens through RFC 7512 URIs"),
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_keymgmts[] = {
    ALG_DESC("RSA:rsaEncryption:1.2.840.113549.1.1.1",
             prov_rsa_keymgmt_functions, "RSA keys on a PKCS#11 token"),
    ALG_DESC("RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10",
             prov_rsapss_keymgmt_functions, "RSA-PSS keys on a PKCS#11 token"),
    ALG_DESC("EC:id-ecPublicKey:1.2.840.10045.2.1", prov_ec_keymgmt_functions,
             "EC keys on a PKCS#11 token"),
    ALG_DESC("ED25519:1.3.101.112", prov_ed25519_keymgmt_functions,
             "Ed25519 keys on a PKCS#11 token"),
    ALG_DESC("ED448:1.3.101.113", prov_ed448_keymgmt_functions,
             "Ed448 keys on a PKCS#11 token"),
    {NULL, NULL, NULL, NULL},
};

#define SIGNATURES_BASE                                                        \
    ALG("RSA:rsaEncryption:1.2.840.113549.1.1.1",                              \
        prov_rsa_signature_functions),                                         \
        ALG("ECDSA", prov_ecdsa_signature_functions),                          \
        ALG("ED25519:1.3.101.112", prov_ed25519_signature_functions),          \
        ALG("ED448:1.3.101.113", prov_ed448_signature_functions)

static const OSSL_ALGORITHM prov_signatures[] = {
    SIGNATURES_BASE,
    {NULL, NULL, NULL, NULL},
};

#if P11CA_MESSAGE_SIGN
/*
 * With OpenSSL 3.4+ (headers and library): the signature algorithms of its
 * message-signing API too, under the default provider's names.  Older
 * libraries know some of these names as digests: not offered there.
 */
static const OSSL_ALGORITHM prov_signatures_34[] = {
    SIGNATURES_BASE,
    ALG("RSA-SHA1:RSA-SHA-1:sha1WithRSAEncryption:1.2.840.113549.1.1.5",
        prov_rsa_sha1_signature_functions),
    ALG("RSA-SHA2-224:RSA-SHA224:sha224WithRSAEncryption:1.2.840.113549.1.1.14",
        prov_rsa_sha224_signature_functions),
    ALG("RSA-SHA2-256:RSA-SHA256:sha256WithRSAEncryption:1.2.840.113549.1.1.11",
        prov_rsa_sha256_signature_functions),
    ALG("RSA-SHA2-384:RSA-SHA384:sha384WithRSAEncryption:1.2.840.113549.1.1.12",
        prov_rsa_sha384_signature_functions),
    ALG("RSA-SHA2-512:RSA-SHA512:sha512WithRSAEncryption:1.2.840.113549.1.1.13",
        prov_rsa_sha512_signature_functions),
    ALG("ECDSA-SHA1:ECDSA-SHA-1:ecdsa-with-SHA1:1.2.840.10045.4.1",
        prov_ecdsa_sha1_signature_functions),
    ALG("ECDSA-SHA2-224:ECDSA-SHA224:ecdsa-with-SHA224:1.2.840.10045.4.3.1",
        prov_ecdsa_sha224_signature_functions),
    ALG("ECDSA-SHA2-256:ECDSA-SHA256:ecdsa-with-SHA256:1.2.840.10045.4.3.2",
        prov_ecdsa_sha256_signature_functions),
    ALG("ECDSA-SHA2-384:ECDSA-SHA384:ecdsa-with-SHA384:1.2.840.10045.4.3.3",
        prov_ecdsa_sha384_signature_functions),
    ALG("ECDSA-SHA2-512:ECDSA-SHA512:ecdsa-with-SHA512:1.2.840.10045.4.3.4",
        prov_ecdsa_sha512_signature_functions),
    {NULL, NULL, NULL, NULL},
};
#endif

static const OSSL_ALGORITHM *signatures(void)
{
#if P11CA_MESSAGE_SIGN
    if (OPENSSL_version_major() > 3
        || (OPENSSL_version_major() == 3 && OPENSSL_version_minor() >= 4))
        return prov_signatures_34;
#endif
    return prov_signatures;
}

static const OSSL_ALGORITHM prov_asym_ciphers[] = {
    ALG("RSA:rsaEncryption:1.2.840.113549.1.1.1",
        prov_rsa_asym_cipher_functions),
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_keyexchs[] = {
    ALG("ECDH", prov_ecdh_keyexch_functions),
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_rands[] = {
    ALG_DESC("P11CA-RAND", prov_rand_functions,
             "the token's random generator (C_GenerateRandom)"),
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *
prov_query_operation(void *provctx, int operation_id, int *no_cache)
{
    prov_ctx *ctx = provctx;

    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_RAND:
        return ctx->rand ? prov_rands : NULL;
    case OSSL_OP_STORE:
        return prov_stores;
    case OSSL_OP_KEYMGMT:
        return prov_keymgmts;
    case OSSL_OP_SIGNATURE:
        return signatures();
    case OSSL_OP_ASYM_CIPHER:
        return prov_asym_ciphers;
    case OSSL_OP_KEYEXCH:
        return prov_keyexchs;
    case OSSL_OP_ENCODER:
        return prov_encoders;
    case OSSL_OP_DECODER:
        return prov_decoders;
    default:
        return NULL;
    }
}

static const OSSL_PARAM prov_param_types[] = {
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    return prov_param_types;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, "p11ca PKCS#11 provider"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, PACKAGE_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, "p11ca " PACKAGE_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ITEM prov_reasons[] = {
    {PROV_R_TOKEN, (void *)"PKCS#11 token error"},
    {PROV_R_BAD_URI, (void *)"invalid pkcs11: URI"},
    {PROV_R_NOT_FOUND, (void *)"no matching token or object"},
    {PROV_R_PIN, (void *)"PIN missing, refused or locked"},
    {PROV_R_NOT_EXPORTABLE,
     (void *)"private keys on a token cannot be exported"},
    {PROV_R_UNSUPPORTED, (void *)"unsupported algorithm or parameter"},
    {PROV_R_BAD_INPUT, (void *)"invalid input"},
    {PROV_R_INTERNAL, (void *)"internal error"},
    {PROV_R_NO_PUBLIC_KEY, (void *)"public key of a token key not found"},
    {PROV_R_AMBIGUOUS,
     (void *)"several tokens or keys match the URI where one is wanted"},
    {PROV_R_URI_MODULE, (void *)"a pkcs11: URI may not load a PKCS#11 module"},
    {0, NULL},
};

static const OSSL_ITEM *prov_reason_strings(void *provctx)
{
    return prov_reasons;
}

/*
 * TLS groups of the EC curves.  libssl takes a group only from the provider
 * whose keymgmt wins the fetch of its algorithm ("EC"); when that is ours
 * (`-provider p11ca -provider default`), we must announce the groups, or
 * ECDHE on P-256/P-384/P-521 disappears.  Ephemeral keys are then software
 * keys in our keymgmt (or token session keys with p11ca-default-token).
 */
struct tls_group {
    const char *name;
    const char *internal;
    unsigned int id;
    unsigned int secbits;
};

static const struct tls_group tls_groups[] = {
    {"secp256r1", "prime256v1", 23, 128}, {"P-256", "prime256v1", 23, 128},
    {"secp384r1", "secp384r1", 24, 192},  {"P-384", "secp384r1", 24, 192},
    {"secp521r1", "secp521r1", 25, 256},  {"P-521", "secp521r1", 25, 256},
};

static int prov_get_capabilities(void *provctx, const char *capability,
                                 OSSL_CALLBACK *cb, void *arg)
{
    if (strcasecmp(capability, "TLS-GROUP") != 0)
        return 0;
    for (size_t i = 0; i < sizeof(tls_groups) / sizeof(tls_groups[0]); i++) {
        unsigned int id = tls_groups[i].id, bits = tls_groups[i].secbits;
        int min_tls = 0x0301 /* TLS 1.0 */, max_tls = 0;
        int min_dtls = 0xfeff /* DTLS 1.0 */, max_dtls = 0, kem = 0;
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME,
                                   (char *)tls_groups[i].name, 0),
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL,
                                   (char *)tls_groups[i].internal, 0),
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_ALG, (char *)"EC",
                                   0),
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_ID, &id),
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS, &bits),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, &min_tls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, &max_tls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, &min_dtls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, &max_dtls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_IS_KEM, &kem),
            OSSL_PARAM_END,
        };
        if (!cb(p, arg))
            return 0;
    }
    return 1;
}

static void prov_teardown(void *provctx)
{
    prov_ctx *ctx = provctx;

    if (!ctx)
        return;
    sig_teardown(ctx);
    prov_key_cache_clear(ctx);
    pthread_mutex_destroy(&ctx->cache_lock);
    p11_ctx_free(ctx->p11);
    pthread_mutex_destroy(&ctx->sw_lock);
    OSSL_LIB_CTX_free(ctx->corectx);
    free(ctx->pin_source);
    free(ctx->pin_env);
    free(ctx->default_token);
    free(ctx->rand_token);
    free(ctx);
}

static const OSSL_DISPATCH prov_dispatch[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query_operation},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
     (void (*)(void))prov_reason_strings},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES,
     (void (*)(void))prov_get_capabilities},
    {0, NULL},
};

/* The configuration keys of our openssl.cnf section (see p11ca-provider.7). */
struct prov_config {
    const char *module_path;
    const char *pin_source;
    const char *pin_env;
    const char *single_session;
    const char *max_sessions;
    const char *finalize;
    const char *default_token;
    const char *login_behavior;
    const char *cache_keys;
    const char *token_wait;
    const char *allow_uri_module_path;
    const char *cache_pin;
    const char *rsa_pkcs1_decrypt;
    const char *rsa_pss_keys;
    const char *rand;
    const char *rand_token;
    const char *key_file;
    const char *pin_prompt;
    const char *debug;
    const char *debug_file;
    const char *debug_level;
};

static int read_config(const OSSL_CORE_HANDLE *handle,
                       OSSL_FUNC_core_get_params_fn *get_params,
                       struct prov_config *c)
{
    OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_ptr("p11ca-module-path", (char **)&c->module_path, 0),
        OSSL_PARAM_utf8_ptr("p11ca-pin-source", (char **)&c->pin_source, 0),
        OSSL_PARAM_utf8_ptr("p11ca-pin-env", (char **)&c->pin_env, 0),
        OSSL_PARAM_utf8_ptr("p11ca-single-session", (char **)&c->single_session,
                            0),
        OSSL_PARAM_utf8_ptr("p11ca-max-sessions", (char **)&c->max_sessions, 0),
        OSSL_PARAM_utf8_ptr("p11ca-finalize", (char **)&c->finalize, 0),
        OSSL_PARAM_utf8_ptr("p11ca-default-token", (char **)&c->default_token,
                            0),
        OSSL_PARAM_utf8_ptr("p11ca-login-behavior", (char **)&c->login_behavior,
                            0),
        OSSL_PARAM_utf8_ptr("p11ca-cache-keys", (char **)&c->cache_keys, 0),
        OSSL_PARAM_utf8_ptr("p11ca-token-wait", (char **)&c->token_wait, 0),
        OSSL_PARAM_utf8_ptr("p11ca-allow-uri-module-path",
                            (char **)&c->allow_uri_module_path, 0),
        OSSL_PARAM_utf8_ptr("p11ca-cache-pin", (char **)&c->cache_pin, 0),
        OSSL_PARAM_utf8_ptr("p11ca-rsa-pkcs1-decrypt",
                            (char **)&c->rsa_pkcs1_decrypt, 0),
        OSSL_PARAM_utf8_ptr("p11ca-rsa-pss-keys", (char **)&c->rsa_pss_keys, 0),
        OSSL_PARAM_utf8_ptr("p11ca-rand", (char **)&c->rand, 0),
        OSSL_PARAM_utf8_ptr("p11ca-rand-token", (char **)&c->rand_token, 0),
        OSSL_PARAM_utf8_ptr("p11ca-key-file", (char **)&c->key_file, 0),
        OSSL_PARAM_utf8_ptr("p11ca-pin-prompt", (char **)&c->pin_prompt, 0),
        OSSL_PARAM_utf8_ptr("p11ca-debug", (char **)&c->debug, 0),
        OSSL_PARAM_utf8_ptr("p11ca-debug-file", (char **)&c->debug_file, 0),
        OSSL_PARAM_utf8_ptr("p11ca-debug-level", (char **)&c->debug_level, 0),
        OSSL_PARAM_END,
    };

    memset(c, 0, sizeof(*c));
    if (!get_params)
        return 1;
    return get_params(handle, p);
}

static const char *env_or(const char *value, const char *env)
{
    const char *e;

    if (value && *value)
        return value;
    e = getenv(env);
    return e && *e ? e : NULL;
}

static bool is_yes(const char *v)
{
    return v
           && (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0
               || strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int apply_login(prov_ctx *ctx, const char *v);
static int apply_cache(prov_ctx *ctx, const char *v);
static int apply_key_file(prov_ctx *ctx, const char *v);

static bool is_no(const char *v)
{
    return v
           && (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0
               || strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0);
}

/* A yes/no key into @out (P11_URI_MODULE_* style: 0 unset, then @no, @yes). */
static int apply_bool(prov_ctx *ctx, const char *key, const char *v, int no,
                      int yes, int *out)
{
    *out = 0;
    if (!v)
        return 1;
    if (is_yes(v) || is_no(v)) {
        *out = is_yes(v) ? yes : no;
        return 1;
    }
    prov_raise(ctx, PROV_R_BAD_INPUT, "%s = %s: use yes or no", key, v);
    return 0;
}

/* p11ca-token-wait (or P11CA_TOKEN_WAIT): seconds, into @ms. */
static int apply_token_wait(prov_ctx *ctx, const char *v, long *ms)
{
    *ms = 0;
    if (!v || p11_token_wait_parse(v, ms) == CKR_OK)
        return 1;
    prov_raise(ctx, PROV_R_BAD_INPUT, "p11ca-token-wait = %s: %s", v,
               p11_error_message());
    return 0;
}

static int apply_config(prov_ctx *ctx, const struct prov_config *c)
{
    p11_config pc = {0};
    int v;

    /* Debug first, so that the rest can be traced. */
    if (c->debug || c->debug_file || c->debug_level)
        log_configure(c->debug ? c->debug : (c->debug_file ? "all" : NULL),
                      c->debug_file, c->debug_level ? atoi(c->debug_level) : 0);
    pc.module_path = c->module_path; /* P11CA_MODULE is the p11 fallback */
    pc.pin_source = NULL;            /* per use, see prov_auth_config */
    pc.single_session =
        is_yes(env_or(c->single_session, "P11CA_SINGLE_SESSION"));
    pc.max_sessions = c->max_sessions ? (unsigned)atoi(c->max_sessions) : 0;
    pc.no_finalize = !is_yes(c->finalize);
    if (!apply_token_wait(ctx, env_or(c->token_wait, "P11CA_TOKEN_WAIT"),
                          &pc.token_wait_ms))
        return 0;
    /* Off unless asked: a PIN kept in the process for its whole life is
     * one more copy to protect (pkcs11-provider's default too). */
    if (!apply_bool(ctx, "p11ca-cache-pin",
                    env_or(c->cache_pin, "P11CA_CACHE_PIN"), 0, 1, &v))
        return 0;
    pc.cache_pin = v == 1;
    if (!apply_bool(ctx, "p11ca-rsa-pkcs1-decrypt",
                    env_or(c->rsa_pkcs1_decrypt, "P11CA_RSA_PKCS1_DECRYPT"), 0,
                    1, &v))
        return 0;
    ctx->rsa_pkcs1_decrypt = v == 1;
    /* On unless refused: PSS-only RSA keys are RSA-PSS keys. */
    if (!apply_bool(ctx, "p11ca-rsa-pss-keys",
                    env_or(c->rsa_pss_keys, "P11CA_RSA_PSS_KEYS"), 2, 1, &v))
        return 0;
    ctx->rsa_pss_keys = v != 2;
    if (!apply_bool(ctx, "p11ca-rand", env_or(c->rand, "P11CA_RAND"), 0, 1, &v))
        return 0;
    ctx->rand = v == 1;
    if (!apply_key_file(ctx, env_or(c->key_file, "P11CA_KEY_FILE")))
        return 0;
    if (!apply_bool(ctx, "p11ca-pin-prompt",
                    env_or(c->pin_prompt, "P11CA_PIN_PROMPT"), 2, 1, &v))
        return 0;
    ctx->pin_prompt = v != 2;
    /* Unset: the p11 layer reads P11CA_ALLOW_URI_MODULE_PATH. */
    if (!apply_bool(ctx, "p11ca-allow-uri-module-path",
                    c->allow_uri_module_path, P11_URI_MODULE_REFUSE,
                    P11_URI_MODULE_ALLOW, &pc.allow_uri_module_path))
        return 0;
    ctx->p11 = p11_ctx_new(&pc);
    ctx->pin_source = dup_or_null(env_or(c->pin_source, "P11CA_PIN_SOURCE"));
    ctx->pin_env = dup_or_null(env_or(c->pin_env, "P11CA_PIN_ENV"));
    ctx->default_token =
        dup_or_null(env_or(c->default_token, "P11CA_DEFAULT_TOKEN"));
    ctx->rand_token = dup_or_null(env_or(c->rand_token, "P11CA_RAND_TOKEN"));
    return apply_login(ctx, env_or(c->login_behavior, "P11CA_LOGIN_BEHAVIOR"))
           && apply_cache(ctx, env_or(c->cache_keys, "P11CA_CACHE_KEYS"))
           && ctx->p11 != NULL;
}

/* p11ca-key-file: what a token key's PEM key file holds. */
static int apply_key_file(prov_ctx *ctx, const char *v)
{
    ctx->key_file_pem = v && strcasecmp(v, "uri-pem") == 0;
    if (!v || ctx->key_file_pem || strcasecmp(v, "uri") == 0)
        return 1;
    prov_raise(ctx, PROV_R_BAD_INPUT, "p11ca-key-file = %s: use uri or uri-pem",
               v);
    return 0;
}

static int apply_login(prov_ctx *ctx, const char *v)
{
    if (!v || strcasecmp(v, "auto") == 0)
        ctx->login = PROV_LOGIN_AUTO;
    else if (strcasecmp(v, "always") == 0)
        ctx->login = PROV_LOGIN_ALWAYS;
    else if (strcasecmp(v, "never") == 0)
        ctx->login = PROV_LOGIN_NEVER;
    else {
        prov_raise(ctx, PROV_R_BAD_INPUT,
                   "p11ca-login-behavior = %s: use auto, always or never", v);
        return 0;
    }
    return 1;
}

static int apply_cache(prov_ctx *ctx, const char *v)
{
    ctx->cache_keys = !v || is_yes(v);
    if (!v || is_yes(v) || is_no(v))
        return 1;
    prov_raise(ctx, PROV_R_BAD_INPUT, "p11ca-cache-keys = %s: use yes or no",
               v);
    return 0;
}

static void get_upcalls(prov_ctx *ctx, const OSSL_DISPATCH *in,
                        OSSL_FUNC_core_get_params_fn **get_params)
{
    for (; in->function_id; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            *get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            ctx->up_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            ctx->up_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            ctx->up_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_MARK:
            ctx->up_set_error_mark = OSSL_FUNC_core_set_error_mark(in);
            break;
        case OSSL_FUNC_CORE_POP_ERROR_TO_MARK:
            ctx->up_pop_error_to_mark = OSSL_FUNC_core_pop_error_to_mark(in);
            break;
        case OSSL_FUNC_CORE_GET_LIBCTX:
            ctx->up_get_libctx = OSSL_FUNC_core_get_libctx(in);
            break;
        default:
            break;
        }
    }
}

/*
 * Provider entry point.  Nothing here touches a PKCS#11 module: when the
 * provider is activated system-wide, the module (SoftHSM2, OpenSC) may be
 * the one initialising OpenSSL right now.  Modules load at first use.
 */
__attribute__((visibility("default"))) OSSL_provider_init_fn OSSL_provider_init;

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    struct prov_config cfg;
    prov_ctx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx)
        return 0;
    ctx->handle = handle;
    pthread_mutex_init(&ctx->cache_lock, NULL);
    pthread_mutex_init(&ctx->sw_lock, NULL);
    get_upcalls(ctx, in, &get_params);
    if (!read_config(handle, get_params, &cfg) || !apply_config(ctx, &cfg))
        goto fail;
    /*
     * A library context of our own, made from the core's dispatch so that
     * BIO_new_from_core_bio() works in encoders; software work runs there
     * unless the application's default context can do it (prov_swctx()).
     */
    ctx->corectx = OSSL_LIB_CTX_new_from_dispatch(handle, in);
    if (!ctx->corectx)
        goto fail;
    LOG_DBG(PROV, "p11ca provider %s initialised", PACKAGE_VERSION);
    *out = prov_dispatch;
    *provctx = ctx;
    return 1;
fail:
    prov_teardown(ctx);
    return 0;
}

/*
 * Where software work runs (see prov_swctx() in prov.h).  The application's
 * default context is used only when we were loaded into it (the core's
 * library context is OpenSSL's global default: then it is also the same
 * libcrypto as ours) and the default provider is active there with nothing
 * in the way (a default property query such as "fips=yes" would refuse
 * it: the trial fetch fails).  A provider loaded into a context of the
 * application's own leaves the default context alone.
 */
void prov_sw_choose(prov_ctx *ctx)
{
    pthread_mutex_lock(&ctx->sw_lock);
    if (!ctx->sw_ready) {
        const void *core = ctx; /* unknown: not the default context */
        EVP_MD *md = NULL;

        if (ctx->up_get_libctx)
            core = ctx->up_get_libctx(ctx->handle);

        ctx->swctx = ctx->corectx;
        ctx->swprops = NULL;
        if (!core || core == (void *)OSSL_LIB_CTX_get0_global_default()) {
            prov_set_mark(ctx);
            if (OSSL_PROVIDER_available(NULL, "default"))
                md = EVP_MD_fetch(NULL, "SHA2-256", "provider=default");
            prov_pop_to_mark(ctx);
        }
        if (md) {
            ctx->swctx = NULL;
            ctx->swprops = "provider=default";
        }
        EVP_MD_free(md);
        LOG_DBG(PROV, "software operations in %s",
                md ? "the application's default library context"
                   : "the provider's own library context");
        __atomic_store_n(&ctx->sw_ready, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&ctx->sw_lock);
}

p11_ctx *prov_p11(prov_ctx *ctx)
{
    return ctx->p11;
}

void prov_auth_config(prov_ctx *ctx, p11_auth *auth)
{
    memset(auth, 0, sizeof(*auth));
    if (ctx->pin_env) {
        const char *v = getenv(ctx->pin_env);
        if (v && *v)
            auth->pin_value = v;
    }
    auth->pin_source = ctx->pin_source;
}
