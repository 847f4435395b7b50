/* SPDX-License-Identifier: Apache-2.0 */
/* The signature context shared by RSA, ECDSA and EdDSA: key, digest,
 * mechanism choice, software hashing and software verification. */
#ifndef P11CA_SIGNATURE_H
#define P11CA_SIGNATURE_H

#include <openssl/asn1.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/x509.h>
#include <string.h>

#include "prov.h"

/*
 * OpenSSL 3.4's message-signing API (EVP_PKEY_sign_message_init and the
 * "RSA-SHA256", "ECDSA-SHA256" signature algorithms), where the headers
 * have it: a provider built on 3.4+ offers it when it runs on 3.4+.
 */
#if OPENSSL_VERSION_NUMBER >= 0x30400000L                                      \
    && defined(OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT)
#define P11CA_MESSAGE_SIGN 1
#else
#define P11CA_MESSAGE_SIGN 0
#endif

/* Largest message buffered when the token hashes (fallback mechanisms). */
#define SIG_MAX_BUFFERED ((size_t)16 << 20)

/* Longest digest name kept in a context ("SHA2-512/256" fits). */
#define SIG_MAX_NAME 64

/* Room for a DigestInfo: SEQUENCE, AlgorithmIdentifier, OCTET STRING. */
#define SIG_DINFO_MAX 128

/* PKCS#11 3.0 SHA-3 mechanisms, absent from older p11-kit headers. */
#ifndef CKM_SHA3_256
#define CKM_SHA3_256 0x2b0UL
#define CKM_SHA3_224 0x2b5UL
#define CKM_SHA3_384 0x2c0UL
#define CKM_SHA3_512 0x2d0UL
#endif
#ifndef CKM_SHA3_256_RSA_PKCS
#define CKM_SHA3_256_RSA_PKCS     0x60UL
#define CKM_SHA3_384_RSA_PKCS     0x61UL
#define CKM_SHA3_512_RSA_PKCS     0x62UL
#define CKM_SHA3_256_RSA_PKCS_PSS 0x63UL
#define CKM_SHA3_384_RSA_PKCS_PSS 0x64UL
#define CKM_SHA3_512_RSA_PKCS_PSS 0x65UL
#define CKM_SHA3_224_RSA_PKCS     0x66UL
#define CKM_SHA3_224_RSA_PKCS_PSS 0x67UL
#endif
#ifndef CKG_MGF1_SHA3_224
#define CKG_MGF1_SHA3_224 0x6UL
#define CKG_MGF1_SHA3_256 0x7UL
#define CKG_MGF1_SHA3_384 0x8UL
#define CKG_MGF1_SHA3_512 0x9UL
#endif
#ifndef CKM_ECDSA_SHA3_224
#define CKM_ECDSA_SHA3_224 0x1047UL
#define CKM_ECDSA_SHA3_256 0x1048UL
#define CKM_ECDSA_SHA3_384 0x1049UL
#define CKM_ECDSA_SHA3_512 0x104aUL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif

/* A digest that a token signature can name, with its PKCS#11 mechanisms. */
typedef struct sig_md_info {
    int nid;                    /* NID_sha256 */
    const char *display;        /* "SHA-256", for messages */
    bool sha3;                  /* tokens often lack it: check the hash */
    CK_MECHANISM_TYPE hash;     /* CKM_SHA256 */
    CK_RSA_PKCS_MGF_TYPE mgf;   /* CKG_MGF1_SHA256 */
    CK_MECHANISM_TYPE rsa_pkcs; /* CKM_SHA256_RSA_PKCS */
    CK_MECHANISM_TYPE rsa_pss;  /* CKM_SHA256_RSA_PKCS_PSS */
    CK_MECHANISM_TYPE ecdsa;    /* CKM_ECDSA_SHA256 */
} sig_md_info;

typedef struct sig_ctx sig_ctx;

/* The size of a DER length field for @n content bytes (n < 65536). */
static inline size_t sig_der_len_size(size_t n)
{
    return n < 0x80 ? 1 : n < 0x100 ? 2 : 3;
}

/* Write a DER tag @tag with the length @n (< 65536) at *@p (moves past it). */
static inline void sig_der_put_header(unsigned char **p, unsigned char tag,
                                      size_t n)
{
    unsigned char *q = *p;

    *q++ = tag;
    if (n >= 0x100) {
        *q++ = 0x82;
        *q++ = (unsigned char)(n >> 8);
    } else if (n >= 0x80) {
        *q++ = 0x81;
    }
    *q++ = (unsigned char)n;
    *p = q;
}

/* The content of the DER INTEGER of the unsigned big-endian @n (@len
 * bytes): *@n and *@len move past leading zero bytes, *@pad tells whether a
 * zero byte goes first (a set top bit, X.690 8.3.2; zero is one byte). */
static inline size_t sig_der_uint_content(const unsigned char **n, size_t *len,
                                          size_t *pad)
{
    while (*len > 1 && (*n)[0] == 0) {
        (*n)++;
        (*len)--;
    }
    *pad = *len == 0 || ((*n)[0] & 0x80) ? 1 : 0;
    return *len + *pad;
}

/* Write the DER INTEGER (content @c bytes, see sig_der_uint_content). */
static inline void sig_der_put_uint(unsigned char **p, const unsigned char *n,
                                    size_t len, size_t pad, size_t c)
{
    sig_der_put_header(p, V_ASN1_INTEGER, c);
    if (pad)
        *(*p)++ = 0;
    if (len)
        memcpy(*p, n, len);
    *p += len;
}

/*
 * sig_ecdsa_der - a token's ECDSA signature r||s (two halves of @rslen
 * bytes) as the DER ECDSA-Sig-Value of RFC 3279 into @sig (@sigsize
 * bytes); its length, or 0 when @rslen is odd, zero or more than 1024, or
 * @sig is too small.  What i2d_ECDSA_SIG writes (tests/unit/
 * test_ecdsa_der.c compares them), without making two BIGNUMs and an
 * ECDSA_SIG for it on every signature, and with the two headers written
 * here rather than by ASN1_put_object (lengths below 65536: at most 1024
 * bytes of input).
 */
static inline size_t sig_ecdsa_der(const unsigned char *rs, size_t rslen,
                                   unsigned char *sig, size_t sigsize)
{
    size_t half = rslen / 2, rlen = half, slen = half, rpad, spad, rc, sc;
    size_t content, total;
    const unsigned char *r = rs, *s = rs + half;
    unsigned char *p = sig;

    if (rslen == 0 || rslen % 2 || rslen > 1024)
        return 0;
    rc = sig_der_uint_content(&r, &rlen, &rpad);
    sc = sig_der_uint_content(&s, &slen, &spad);
    content = 1 + sig_der_len_size(rc) + rc + 1 + sig_der_len_size(sc) + sc;
    total = 1 + sig_der_len_size(content) + content;
    if (total > sigsize)
        return 0;
    sig_der_put_header(&p, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, content);
    sig_der_put_uint(&p, r, rlen, rpad, rc);
    sig_der_put_uint(&p, s, slen, spad, sc);
    return total;
}

/*
 * What differs between algorithms.  Every hook raises an error before it
 * returns 0.
 */
typedef struct sig_alg {
    const char *name; /* "RSA", "ECDSA", "Ed25519", for messages */
    /* Whether @key is of a type this algorithm signs with. */
    bool (*key_ok)(const prov_key *key);
    /* Reset the algorithm's settings at (re)initialisation. */
    void (*reset)(sig_ctx *s);
    /*
     * Choose s->mech and s->token_hashes for the operation (raw input
     * when !s->digest_op): usually sig_choose_mech().
     */
    int (*choose)(sig_ctx *s);
    /*
     * Sign @in with the chosen mechanism: the message digest, the raw
     * input (sign()), or the whole message when s->token_hashes.
     */
    int (*sign)(sig_ctx *s, const unsigned char *in, size_t inlen,
                unsigned char *sig, size_t *siglen, size_t sigsize);
    /*
     * Fill @p (room for 8 entries, END included) with the parameters of a
     * software signature or verification equivalent to the context's
     * settings.
     */
    void (*sw_params)(sig_ctx *s, OSSL_PARAM *p);
    /*
     * Describe the signature being made ("RSA-PSS signature (SHA-384,
     * MGF1 with SHA-384, salt 334)") into @buf, for error messages.
     */
    void (*describe)(const sig_ctx *s, char *buf, size_t n);
} sig_alg;

/*
 * A signature context.  Never holds PKCS#11 operation state: a message is
 * hashed in software and one C_Sign signs the result (or, with a
 * token-hashed fallback mechanism, the buffered message), so that a copy
 * (dupctx) is a plain copy.  A freed context is kept for the next newctx
 * (one per provider context: it holds nothing secret, and it is zeroed
 * when taken again), or freed with OPENSSL_clear_free.
 */
struct sig_ctx {
    prov_ctx *ctx;
    const sig_alg *alg;
    prov_key *key;  /* a reference */
    p11_auth auth;  /* PIN sources of the key (borrowed from it) */
    int op;         /* 0, EVP_PKEY_OP_SIGN or EVP_PKEY_OP_VERIFY */
    bool digest_op; /* digest-sign/verify: the message comes in */
    bool started;   /* data went in: digest and mechanism are fixed */
    /* Message digest, fetched in ctx->swctx. */
    EVP_MD *md;             /* NULL: none (raw input) */
    const sig_md_info *mdi; /* its PKCS#11 names; NULL without digest */
    int md_nid;
    size_t md_size;
    char mdname[SIG_MAX_NAME];
    EVP_MD_CTX *mdctx; /* software hashing of the message */
    bool hashing;      /* mdctx holds this message's state */
    /* The mechanism, chosen once per operation (0: not yet). */
    CK_MECHANISM_TYPE mech;
    bool token_hashes;  /* fallback: the token hashes the message */
    unsigned char *msg; /* the buffered message (token_hashes) */
    size_t msg_len, msg_cap;
    /*
     * Software operation on key->pub (made at first use): every
     * verification, and signatures with a software key.
     */
    EVP_PKEY_CTX *swpctx;
    /* RSA */
    int pad;         /* RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING, ... */
    int saltlen;     /* bytes, or RSA_PSS_SALTLEN_* */
    EVP_MD *mgf1_md; /* NULL: the message digest */
    const sig_md_info *mgf1_mdi;
    char mgf1name[SIG_MAX_NAME];
    unsigned char dinfo[SIG_DINFO_MAX]; /* DigestInfo with a zero digest */
    size_t dinfo_len;
};

/* sig_md_info_by_nid - the PKCS#11 names of digest @nid, or NULL. */
const sig_md_info *sig_md_info_by_nid(int nid);

/* sig_mech_name - "CKM_SHA256_RSA_PKCS" (static; "CKM_0x..." unknown). */
const char *sig_mech_name(CK_MECHANISM_TYPE mech);

/* sig_key_name - the key's URI (or a placeholder), for messages. */
const char *sig_key_name(const prov_key *key);

/* sig_newctx - a context for @alg.  NULL with an error raised. */
sig_ctx *sig_newctx(void *provctx, const sig_alg *alg);

/* Lifecycle callbacks, shared by every algorithm table. */
OSSL_FUNC_signature_freectx_fn sig_freectx;
OSSL_FUNC_signature_dupctx_fn sig_dupctx;

/*
 * sig_init - start an operation @op (EVP_PKEY_OP_SIGN/VERIFY) with @key
 * (NULL: keep the current key).  Takes a reference on the key, resets the
 * mechanism choice and the algorithm's settings, keeps the digest.
 * Returns 1, or 0 with an error (wrong key type, no private key to sign).
 */
int sig_init(sig_ctx *s, void *key, int op, bool digest_op);

/*
 * sig_set_md - use digest @mdname (properties @props, may be NULL) from
 * here on.  NULL or "" clears it.  Once data went in, only the same digest
 * is accepted.  Returns 1, or 0 with an error.
 */
int sig_set_md(sig_ctx *s, const char *mdname, const char *props);

/* sig_fetch_md - fetch @name in the software context (error raised). */
EVP_MD *sig_fetch_md(sig_ctx *s, const char *name, const char *props);

/*
 * sig_choose_mech - take @raw when the token and the key allow it; for a
 * digest operation take @hashed (the token hashes the message) when only
 * that one is allowed.  Raises a message naming both otherwise.
 */
int sig_choose_mech(sig_ctx *s, CK_MECHANISM_TYPE raw,
                    CK_MECHANISM_TYPE hashed);

/*
 * sig_is_software - whether @s signs with a software keypair (OpenSSL gave
 * our keymgmt a software key): such signatures run in software.
 */
static inline bool sig_is_software(const sig_ctx *s)
{
    return prov_key_is_software(s->key);
}

/* sig_mech_usable - whether the token and the key allow @mech to sign. */
bool sig_mech_usable(const sig_ctx *s, CK_MECHANISM_TYPE mech);

/* sig_invalidate - a setting changed: choose the mechanism again. */
void sig_invalidate(sig_ctx *s);

/*
 * sig_token_sign - one C_Sign of @data with @mech on the key's token.
 * *@siglen gets the length.  Returns 1, or 0 with the p11 layer's error
 * (call, token, key, CKR code) raised, prefixed by the algorithm's
 * description of the signature.
 */
int sig_token_sign(sig_ctx *s, CK_MECHANISM *mech, const unsigned char *data,
                   size_t len, unsigned char *sig, size_t *siglen,
                   size_t sigsize);

/*
 * sig_sw_verify - verify @sig over @tbs (a digest or raw input) in
 * software with the algorithm's parameters.  1: valid; 0: invalid or an
 * error (raised).
 */
int sig_sw_verify(sig_ctx *s, const unsigned char *sig, size_t siglen,
                  const unsigned char *tbs, size_t tbslen);

/*
 * sig_sw_sign - sign @tbs (a digest or raw input) in software with a
 * software keypair and the algorithm's parameters.  Returns 1, or 0 with
 * an error raised.
 */
int sig_sw_sign(sig_ctx *s, const unsigned char *tbs, size_t tbslen,
                unsigned char *sig, size_t *siglen, size_t sigsize);

/* sig_raise_small - the caller's signature buffer is too small (0). */
int sig_raise_small(sig_ctx *s, size_t sigsize, size_t need);

/* sig_not_ready - @what called without the matching init (returns 0). */
int sig_not_ready(sig_ctx *s, const char *what);

/* sig_bad_param - parameter @name has the wrong type or size (returns 0). */
int sig_bad_param(sig_ctx *s, const char *name);

/*
 * Operation callbacks shared by RSA and ECDSA (whose init functions set
 * their parameters first).  Digest operations hash in software; sign
 * runs on the token, verify in software.
 */
OSSL_FUNC_signature_sign_fn sig_sign;
OSSL_FUNC_signature_verify_fn sig_verify;
OSSL_FUNC_signature_digest_sign_update_fn sig_digest_update;
OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
OSSL_FUNC_signature_digest_sign_fn sig_digest_sign;
OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;

/*
 * sig_digest_init - the common part of digest_sign_init and
 * digest_verify_init: sig_init, then the digest (@mdname NULL keeps the
 * current one, else SHA-256 as OpenSSL's default).
 */
int sig_digest_init(sig_ctx *s, const char *mdname, void *key, int op);

/* sig_get_md_params - DIGEST and DIGEST_SIZE of @s into @params. */
int sig_get_md_params(sig_ctx *s, OSSL_PARAM params[]);

/*
 * sig_set_md_params - DIGEST with PROPERTIES from @params (absent: no
 * change).  Returns 1, or 0 with an error.
 */
int sig_set_md_params(sig_ctx *s, const OSSL_PARAM params[]);

/*
 * sig_set_algid - set @p (an octet string) to the DER of @alg.  Returns 1,
 * or 0 with an error.
 */
int sig_set_algid(sig_ctx *s, OSSL_PARAM *p, const X509_ALGOR *alg);

#if P11CA_MESSAGE_SIGN
/*
 * The signature algorithms of OpenSSL 3.4's message-signing API
 * (EVP_PKEY_sign_message_init with "RSA-SHA256", "ECDSA-SHA256", ...):
 * each fixes its digest at newctx; sign_init then takes a digest,
 * sign_message_init the message (update/final, or one sign()).
 */

/* sig_sigalg_newctx - a context for @alg with the digest @mdname fixed. */
sig_ctx *sig_sigalg_newctx(void *provctx, const sig_alg *alg,
                           const char *mdname);

/* sig_sigalg_fixed_md - refuse a digest parameter other than the fixed one. */
int sig_sigalg_fixed_md(sig_ctx *s, const OSSL_PARAM params[]);

/* sign() of such algorithms: the message after sign_message_init, the
 * digest after sign_init. */
OSSL_FUNC_signature_sign_fn sig_sigalg_sign;
#endif

#endif
