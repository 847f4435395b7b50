/* SPDX-License-Identifier: Apache-2.0 */
/* The p11ca provider: its context, key objects, shared helpers and the
 * dispatch tables of every operation. */
#ifndef P11CA_PROV_H
#define P11CA_PROV_H

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/log.h"
#include "p11/p11.h"

#define PROV_NAME  "p11ca"
#define PROV_PROPS "provider=p11ca"

/* Reason codes of our errors (text in provider.c). */
enum prov_reason {
    PROV_R_TOKEN = 1,      /* a PKCS#11 call failed: see the message */
    PROV_R_BAD_URI,        /* the pkcs11: URI is invalid */
    PROV_R_NOT_FOUND,      /* no token or object matches */
    PROV_R_PIN,            /* PIN missing, refused or locked */
    PROV_R_NOT_EXPORTABLE, /* private keys never leave the token */
    PROV_R_UNSUPPORTED,    /* algorithm, padding or parameter unsupported */
    PROV_R_BAD_INPUT,      /* invalid input or parameter */
    PROV_R_INTERNAL,       /* unexpected library failure */
    PROV_R_NO_PUBLIC_KEY,  /* the public half of a token key is unknown */
    PROV_R_AMBIGUOUS,      /* several keys match where one is wanted */
    PROV_R_URI_MODULE,     /* a URI's module-path= would load a module */
};

typedef struct prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    /*
     * Software work (digests, public-key operations, RAND) runs in swctx
     * with the properties swprops; see prov_swctx().  corectx is our own
     * context, made from the core's dispatch (core BIOs work in it).
     */
    OSSL_LIB_CTX *corectx;
    OSSL_LIB_CTX *swctx; /* NULL (the default context) or corectx */
    const char *swprops; /* "provider=default" or NULL */
    int sw_ready;        /* set (atomically) once swctx is chosen */
    pthread_mutex_t sw_lock;
    p11_ctx *p11;
    /*
     * A freed signature context kept for the next newctx (signature.c:
     * taken and given back atomically, zeroed when taken, freed at
     * teardown): a TLS server makes one per handshake.
     */
    void *_Atomic spare_sigctx;
    /* Core error upcalls. */
    OSSL_FUNC_core_new_error_fn *up_new_error;
    OSSL_FUNC_core_set_error_debug_fn *up_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *up_vset_error;
    OSSL_FUNC_core_set_error_mark_fn *up_set_error_mark;
    OSSL_FUNC_core_pop_error_to_mark_fn *up_pop_error_to_mark;
    OSSL_FUNC_core_get_libctx_fn *up_get_libctx;
    /* Configuration (openssl.cnf section, environment fallbacks). */
    char *pin_source;    /* p11ca-pin-source */
    char *pin_env;       /* p11ca-pin-env: name of a variable holding the PIN */
    char *default_token; /* p11ca-default-token: for generated session keys */
    int login;           /* p11ca-login-behavior: PROV_LOGIN_* */
    /* p11ca-cache-keys: keys the store made, reused by later loads. */
    bool cache_keys;
    /*
     * p11ca-rsa-pkcs1-decrypt: PKCS#1 v1.5 decryption outside TLS where it
     * reports bad paddings (the token's own CKM_RSA_PKCS, or
     * rsa_pkcs1_implicit_rejection:0), a padding oracle.
     */
    bool rsa_pkcs1_decrypt;
    /*
     * p11ca-rsa-pss-keys: RSA keys that may sign with PSS only are shown as
     * RSA-PSS keys (rsa_pss.c); off for rsaEncryption certificates issued
     * for such keys before.
     */
    bool rsa_pss_keys;
    /*
     * p11ca-rand: offer the RAND "P11CA-RAND" (rand.c), from the token of
     * p11ca-rand-token (else p11ca-default-token, else the only one),
     * found at its first use.
     */
    bool rand;
    char *rand_token;
    /*
     * p11ca-key-file = uri-pem: a token key's PEM key file (genpkey -out,
     * pkey -out) is a PKCS#11 PROVIDER URI file, not its URI on one line.
     */
    bool key_file_pem;
    /*
     * p11ca-pin-prompt: when the application gives no way to ask for a PIN
     * (OSSL_STORE_open without a UI method) and standard input is a
     * terminal, ask there (default yes).
     */
    bool pin_prompt;
    p11_token *_Atomic rand_tok;
    pthread_mutex_t cache_lock;
    struct prov_key **cache;
    size_t n_cache;
} prov_ctx;

void prov_sw_choose(prov_ctx *ctx);

/* sig_teardown - free the spare signature context of @ctx (teardown). */
void sig_teardown(prov_ctx *ctx);

/*
 * prov_swctx - the library context for the provider's software work, and
 * prov_swprops the properties every fetch there must use.  When the
 * application's default library context has the default provider, that is
 * it (with "provider=default", so that nothing there can come back to us):
 * its method store and name map already exist, where a context of our own
 * costs about 3 M instructions (1 ms) to build at the first software
 * operation of a process.  Otherwise a context of our own, where the
 * default provider is the only one.  Chosen at the first use.
 */
static inline OSSL_LIB_CTX *prov_swctx(prov_ctx *ctx)
{
    if (!__atomic_load_n(&ctx->sw_ready, __ATOMIC_ACQUIRE))
        prov_sw_choose(ctx);
    return ctx->swctx;
}

static inline const char *prov_swprops(prov_ctx *ctx)
{
    if (!__atomic_load_n(&ctx->sw_ready, __ATOMIC_ACQUIRE))
        prov_sw_choose(ctx);
    return ctx->swprops;
}

enum {
    PROV_LOGIN_AUTO = 0, /* when a private key is needed */
    PROV_LOGIN_ALWAYS,   /* before any search (tokens hiding public objects) */
    PROV_LOGIN_NEVER,    /* never (the application logs in, or no PINs) */
};

/* ------------------------------------------------------------------ */
/* Errors (err.c)                                                      */
/* ------------------------------------------------------------------ */

/*
 * prov_raise - put an error on the application's error queue through the
 * core, with @reason and a formatted message.  Logged at debug level too.
 */
void prov_raise_at(prov_ctx *ctx, int reason, const char *file, int line,
                   const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define prov_raise(ctx, reason, ...)                                           \
    prov_raise_at((ctx), (reason), __FILE__, __LINE__, __func__, __VA_ARGS__)

/*
 * prov_raise_reason - raise @reason with its table text only: no formatting,
 * for paths OpenSSL probes often and usually discards.
 */
void prov_raise_reason(prov_ctx *ctx, int reason);

/*
 * prov_raise_p11 - raise the PKCS#11 layer's last error (call, token,
 * object, CKR name) with the reason that fits @rv, prefixed by @what.
 * Returns 0 so that callbacks can `return prov_raise_p11(...)`.
 */
int prov_raise_p11_at(prov_ctx *ctx, CK_RV rv, const char *what,
                      const char *file, int line, const char *func);
#define prov_raise_p11(ctx, rv, what)                                          \
    prov_raise_p11_at((ctx), (rv), (what), __FILE__, __LINE__, __func__)

/* Error marks around calls that may fail harmlessly. */
void prov_set_mark(prov_ctx *ctx);
void prov_pop_to_mark(prov_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Keys (key.c)                                                        */
/* ------------------------------------------------------------------ */

typedef enum prov_key_type {
    PROV_KEY_RSA = 1,
    PROV_KEY_RSA_PSS,
    PROV_KEY_EC,
    PROV_KEY_ED25519,
    PROV_KEY_ED448,
} prov_key_type;

/*
 * A key, one of three kinds:
 *  - a private key on a token (priv set), its public half in @pub;
 *  - a software key (priv NULL): @pub in prov_swctx() holds the public half
 *    and, when @sw_private, the private half too.  OpenSSL hands us such
 *    keys whenever our keymgmt wins a fetch by name ("EC", "RSA"), e.g. for
 *    TLS ephemeral keys or EVP_PKEY_fromdata(); every operation then runs
 *    in software through the default provider, exactly as without us.
 *  - a public key alone (an ECDH peer, a certificate's key to match).
 * Token keys are immutable and shared by reference between threads.
 */
/* A digest fetched under a name (prov_key.mds). */
#define PROV_KEY_MDS 4
/* Mechanisms remembered as usable per key (prov_key.sign_mechs). */
#define PROV_KEY_MECHS 4
struct prov_key_md {
    EVP_MD *md;
    char name[]; /* as asked for */
};

typedef struct prov_key {
    _Atomic int refs;
    prov_ctx *ctx;
    prov_key_type type;
    p11_obj *priv; /* token private key, NULL for a software key */
    /*
     * The public half (or software keypair), in prov_swctx().  For a token EC or
     * Ed25519 key it is read from the token at its first use
     * (prov_key_pub); once set it never changes.
     */
    EVP_PKEY *_Atomic pub;
    pthread_mutex_t pub_lock;
    bool sw_private; /* @pub holds a software private key */
    unsigned bits;
    int curve_nid;  /* EC: the curve */
    size_t max_sig; /* largest signature, in bytes */
    char *uri;      /* the object's URI, for messages and text output */
    /* PIN sources for logging in again (copies from the URI). */
    char *pin_value; /* p11_secure_zalloc */
    char *pin_source;
    /* CKA_ALLOWED_MECHANISMS, if the token lists them. */
    CK_MECHANISM_TYPE *allowed;
    size_t n_allowed;
    /*
     * RSA-PSS token keys (rsa_pss.c): the digest their allowed mechanisms
     * restrict them to (MGF1 with it, a salt of at least pss_saltlen_min
     * bytes), NID_undef when they allow any.
     */
    int pss_md_nid;
    int pss_saltlen_min;
    /*
     * RSA: the secret behind implicit rejection's key derivation keys (32
     * bytes, p11_secure_zalloc), made from the token at the first PKCS#1
     * v1.5 decryption (asym_cipher_rsa.c) and kept; under @pub_lock.
     */
    unsigned char *_Atomic ir_key;
    /*
     * Digests fetched for this key's signatures, by the name asked for:
     * each slot is set once (compare-and-swap) and freed with the key, so
     * that a new signature context (a TLS server makes one per handshake)
     * does not fetch again (see sig_fetch_md).
     */
    struct prov_key_md *_Atomic mds[PROV_KEY_MDS];
    /*
     * A hashing context left by a freed signature context, for the next
     * one (taken and given back atomically, freed with the key): a TLS
     * server makes a signature context per handshake, and with it OpenSSL
     * allocates a digest context and its state (see sig_mdctx_take).
     */
    EVP_MD_CTX *_Atomic spare_mdctx;
    /*
     * Mechanisms found usable to sign with this key (on its token, and in
     * its CKA_ALLOWED_MECHANISMS): each slot set once, 0 while free.  Both
     * lists are fixed once read, so a new signature context chooses its
     * mechanism without searching them again (see sig_mech_usable).
     */
    _Atomic CK_MECHANISM_TYPE sign_mechs[PROV_KEY_MECHS];
} prov_key;

/*
 * prov_key_from_obj - a key for the token private key @priv (takes a new
 * reference): reads its public half (from the object, or its public key or
 * certificate with the same CKA_ID) and caches what every operation needs.
 * @uri (may be NULL) gives the PIN sources to log in again later.  Returns
 * NULL with an error raised.
 */
prov_key *prov_key_from_obj(prov_ctx *ctx, p11_obj *priv, const p11_uri *uri);

/*
 * prov_key_pub - the key's public half, read from the token at the first
 * call for a key loaded without it.  NULL (with an error raised) when the
 * token has neither the public key nor a certificate for it.
 */
EVP_PKEY *prov_key_pub(const prov_key *key);

/* prov_key_pub_loaded - whether the public half is at hand already. */
static inline bool prov_key_pub_loaded(const prov_key *key)
{
    return key->pub != NULL;
}

/* prov_key_new_public - an empty public key of @type (for import). */
prov_key *prov_key_new_public(prov_ctx *ctx, prov_key_type type);

/*
 * prov_key_set_public - take @pk (in prov_swctx()) as the key's software half;
 * @has_private says whether it holds a private key (software keys only).
 */
int prov_key_set_public(prov_key *key, EVP_PKEY *pk, bool has_private);

/* prov_key_is_software - a software keypair: operations run in prov_swctx(). */
static inline bool prov_key_is_software(const prov_key *key)
{
    return !key->priv && key->sw_private;
}

prov_key *prov_key_ref(prov_key *key);
void prov_key_unref(prov_key *key);

/*
 * prov_key_cache_get - a key the store made before for the same token
 * object as @obj (same token, class, id, label and handle), with a new
 * reference; NULL when there is none or caching is off.
 */
prov_key *prov_key_cache_get(prov_ctx *ctx, p11_obj *obj);

/* prov_key_cache_put - remember @key (takes its own reference). */
void prov_key_cache_put(prov_ctx *ctx, prov_key *key);

/* prov_key_cache_clear - drop every cached key (provider teardown). */
void prov_key_cache_clear(prov_ctx *ctx);

/* prov_key_auth - the key's PIN sources (config fallbacks included). */
void prov_key_auth(const prov_key *key, p11_auth *auth);

/* prov_key_allows - whether the token lets @key use @mech. */
bool prov_key_allows(const prov_key *key, CK_MECHANISM_TYPE mech);

/*
 * prov_rsa_pss_adopt - an RSA token key whose CKA_ALLOWED_MECHANISMS are
 * all PSS signatures becomes an RSA-PSS key (rsa_pss.c): its type, its
 * restrictions, and its public half an RSA-PSS key with them, so that
 * certificates, CSRs and TLS name RSASSA-PSS.  Other keys are left alone.
 * Returns 1, or 0 with an error raised.
 */
int prov_rsa_pss_adopt(prov_key *key);

/* prov_key_type_name - "RSA", "RSA-PSS", "EC", "ED25519", "ED448". */
const char *prov_key_type_name(prov_key_type type);

/* prov_auth_config - fill @auth with the configured PIN sources. */
void prov_auth_config(prov_ctx *ctx, p11_auth *auth);

/*
 * prov_p11 - the PKCS#11 context (modules load at first use, never in
 * provider init: a module that uses OpenSSL may be initialising us).
 */
p11_ctx *prov_p11(prov_ctx *ctx);

/*
 * prov_store_fetch_key - the one private key that @uri names, loaded as
 * the store loads it for an application that wants a key (the PIN from
 * the URI, the configuration or @pw_cb; several matches refused; the
 * module-path= rules of URIs).  A new reference, or NULL with an error.
 */
prov_key *prov_store_fetch_key(prov_ctx *ctx, const char *uri,
                               OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg);

/* ------------------------------------------------------------------ */
/* Key files naming a token key (decoder.c)                            */
/* ------------------------------------------------------------------ */

/* The PEM label and description of pkcs11-provider's URI files. */
#define PROV_URI_PEM_LABEL "PKCS#11 PROVIDER URI"
#define PROV_URI_PEM_DESC  "PKCS#11 Provider URI v1.0"

/*
 * prov_uri_pem_write - write @uri to @out as a "PKCS#11 PROVIDER URI" PEM
 * file (SEQUENCE { VisibleString description, UTF8String uri }).
 * Returns 1, or 0 with an error raised.
 */
int prov_uri_pem_write(prov_ctx *ctx, BIO *out, const char *uri);

/* ------------------------------------------------------------------ */
/* RSA PKCS#1 v1.5 decryption with implicit rejection (rsa_implicit.c) */
/* ------------------------------------------------------------------ */

/*
 * prov_rsa_kdk - the key derivation key of a ciphertext: HMAC-SHA256 under
 * @key (a secret of the RSA key, 32 bytes) of @ct, the ciphertext as @k
 * bytes (left-padded with zeros).  Returns 1, or 0 when HMAC fails.
 */
int prov_rsa_kdk(OSSL_LIB_CTX *libctx, const char *propq,
                 const unsigned char key[32], const unsigned char *ct, size_t k,
                 unsigned char kdk[32]);

/*
 * prov_rsa_prf - @len bytes (at most 8191) of the implicit rejection PRF:
 * HMAC-SHA256(@kdk, 16-bit counter || @label || 16-bit length in bits) in
 * counter mode, as OpenSSL 3.2 and draft-irtf-cfrg-rsa-guidance define it.
 * Returns 1, or 0 on failure.
 */
int prov_rsa_prf(OSSL_LIB_CTX *libctx, const char *propq,
                 const unsigned char kdk[32], const char *label,
                 unsigned char *out, size_t len);

/*
 * prov_rsa_unpad_implicit - the message in the decrypted block @em (@k
 * bytes, the modulus length) when its PKCS#1 v1.5 type 2 padding is good
 * and the message fits in @outsize bytes, else the synthetic message of
 * @kdk (its length drawn from the PRF too); either way *@outlen gets the
 * length and 1 is returned.  Constant time in @em: no branch and no memory
 * index depends on it, the result does not say which it is.  0 only for a
 * size that is wrong whatever the ciphertext (or no memory).
 */
int prov_rsa_unpad_implicit(OSSL_LIB_CTX *libctx, const char *propq,
                            const unsigned char kdk[32],
                            const unsigned char *em, size_t k,
                            unsigned char *out, size_t outsize, size_t *outlen);

/*
 * prov_rsa_align_right - move the first @len bytes of @buf (@k bytes, the
 * rest zero) to its end, zeros before them, in constant time in @len: a
 * token may return a decrypted block without its leading zero bytes.
 */
void prov_rsa_align_right(unsigned char *buf, size_t len, size_t k);

/* ------------------------------------------------------------------ */
/* Dispatch tables                                                     */
/* ------------------------------------------------------------------ */

extern const OSSL_DISPATCH prov_store_functions[];
extern const OSSL_DISPATCH prov_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH prov_rsapss_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ec_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ed448_keymgmt_functions[];
extern const OSSL_DISPATCH prov_rsa_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_signature_functions[];
extern const OSSL_DISPATCH prov_ed25519_signature_functions[];
extern const OSSL_DISPATCH prov_ed448_signature_functions[];
/* OpenSSL 3.4's signature algorithms with a digest (signature_{rsa,ecdsa}.c,
 * built with 3.4+ headers only: see P11CA_MESSAGE_SIGN). */
extern const OSSL_DISPATCH prov_rsa_sha1_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_sha224_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_sha256_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_sha384_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_sha512_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_sha1_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_sha224_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_sha256_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_sha384_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_sha512_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH prov_ecdh_keyexch_functions[];
extern const OSSL_ALGORITHM prov_encoders[];
extern const OSSL_ALGORITHM prov_decoders[];
extern const OSSL_DISPATCH prov_rand_functions[];

#endif
