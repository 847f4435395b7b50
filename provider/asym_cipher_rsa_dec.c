/* SPDX-License-Identifier: Apache-2.0 */
/* RSA decryption: on the token (OAEP, raw RSA, PKCS#1 v1.5 with implicit
 * rejection, TLS premaster secrets), or in software for a software key. */
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

/* ------------------------------------------------------------------ */
/* Decryption: on the token                                            */
/* ------------------------------------------------------------------ */

static bool oaep_is_default(const rsa_enc_ctx *c)
{
    return prov_rsa_enc_md(c)->ckm == CKM_SHA_1
           && prov_rsa_enc_mgf1(c)->ckm == CKM_SHA_1 && !c->label;
}

static void mechanism_for(rsa_enc_ctx *c, CK_MECHANISM *mech,
                          CK_RSA_PKCS_OAEP_PARAMS *oaep)
{
    memset(mech, 0, sizeof(*mech));
    switch (c->pad) {
    case RSA_PKCS1_OAEP_PADDING:
        /* An unset digest is SHA-1, never 0 (PKCS#11 has no default). */
        oaep->hashAlg = prov_rsa_enc_md(c)->ckm;
        oaep->mgf = prov_rsa_enc_mgf1(c)->mgf;
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
            prov_rsa_enc_key_name(c->key), mech_name(m));
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
            prov_rsa_enc_md(c)->display, prov_rsa_enc_mgf1(c)->display,
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
    size_t k = prov_rsa_enc_size(c), len = k;
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
    size_t k = prov_rsa_enc_size(c), len = k;
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

/* ------------------------------------------------------------------ */
/* PKCS#1 v1.5 outside TLS: implicit rejection                         */
/* ------------------------------------------------------------------ */

/*
 * A token's own PKCS#1 v1.5 decryption (CKM_RSA_PKCS) answers a bad padding
 * with an error: a padding oracle (Bleichenbacher; Marvin finds it in the
 * timing too).  OpenSSL 3.2 answers it with implicit rejection: a bad
 * padding yields a pseudo-random message, derived from the ciphertext and
 * a secret of the key, so that the caller cannot tell.  Here the token
 * decrypts raw (CKM_RSA_X_509) and the padding is checked in software in
 * constant time (rsa_implicit.c).
 *
 * OpenSSL keys the derivation with SHA-256 of the private exponent, which a
 * token never shows.  The secret here is a private-key operation that only
 * the token can do, on a fixed input: s = x^d mod n, with x = 00 || a
 * SHA-256 expansion of (IR_INPUT_LABEL, a round number, n) to k - 1 bytes
 * (below n), and the key is SHA-256(IR_KEY_LABEL || s), kept with the key.
 * Whoever can compute s can decrypt anything already; anyone else sees
 * only what this decryption gives out, and an x whose s would pass the
 * padding check is skipped (next round), so that decrypting x itself
 * yields a synthetic message too and never shows s.
 */
#define IR_INPUT_LABEL "p11ca implicit rejection input v1"
#define IR_KEY_LABEL   "p11ca implicit rejection key v1"
#define IR_ROUNDS      8

/* Why the token cannot decrypt raw with this key, or NULL when it can. */
static const char *raw_decrypt_refusal(const rsa_enc_ctx *c)
{
    if (!p11_token_has_mechanism(p11_obj_token(c->key->priv), CKM_RSA_X_509,
                                 CKF_DECRYPT, NULL))
        return "the token does not support it";
    if (!prov_key_allows(c->key, CKM_RSA_X_509))
        return "the key's CKA_ALLOWED_MECHANISMS do not include it";
    return NULL;
}

/* Raw RSA on the token: @ct (@k bytes) to the power d into @em (@k bytes,
 * leading zeros put back in constant time). */
static CK_RV raw_decrypt(rsa_enc_ctx *c, const unsigned char *ct, size_t k,
                         unsigned char *em)
{
    CK_MECHANISM mech = {CKM_RSA_X_509, NULL, 0};
    size_t len = k;
    p11_auth auth;
    CK_RV rv;

    memset(em, 0, k);
    prov_key_auth(c->key, &auth);
    rv = token_decrypt(c, &auth, &mech, ct, k, em, &len);
    if (rv == CKR_OK && len > k)
        rv = p11_error_set(CKR_GENERAL_ERROR, "C_Decrypt", NULL, NULL,
                           "raw RSA gave %zu bytes for a %zu-byte modulus", len,
                           k);
    if (rv == CKR_OK)
        prov_rsa_align_right(em, len, k);
    return rv;
}

/* x of @round: 00 || SHA-256(label || round || block number || n) ... */
static int ir_input(rsa_enc_ctx *c, unsigned char round, unsigned char *x,
                    size_t k)
{
    EVP_MD *md =
        EVP_MD_fetch(prov_swctx(c->ctx), "SHA2-256", prov_swprops(c->ctx));
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char *n = OPENSSL_zalloc(k), block[32], num[2];
    BIGNUM *bn = NULL;
    int ok = md && m && n
             && EVP_PKEY_get_bn_param(prov_key_pub(c->key),
                                      OSSL_PKEY_PARAM_RSA_N, &bn)
             && BN_bn2binpad(bn, n, (int)k) == (int)k;

    x[0] = 0;
    for (size_t pos = 1, i = 0; ok && pos < k; pos += 32, i++) {
        num[0] = (unsigned char)(i >> 8);
        num[1] = (unsigned char)i;
        ok = EVP_DigestInit_ex(m, md, NULL)
             && EVP_DigestUpdate(m, IR_INPUT_LABEL, strlen(IR_INPUT_LABEL))
             && EVP_DigestUpdate(m, &round, 1) && EVP_DigestUpdate(m, num, 2)
             && EVP_DigestUpdate(m, n, k) && EVP_DigestFinal_ex(m, block, NULL);
        memcpy(x + pos, block, k - pos < 32 ? k - pos : 32);
    }
    BN_free(bn);
    OPENSSL_free(n);
    EVP_MD_CTX_free(m);
    EVP_MD_free(md);
    return ok;
}

/* Whether @em passes the PKCS#1 v1.5 type 2 check (for the secret's own
 * input only, once per key: not on ciphertexts). */
static bool type2_padded(const unsigned char *em, size_t k)
{
    size_t i = 2;

    if (em[0] != 0 || em[1] != 2)
        return false;
    while (i < k && em[i] != 0)
        i++;
    return i < k && i >= 10;
}

/* SHA-256(IR_KEY_LABEL || @s) into a new secure buffer (NULL on failure). */
static unsigned char *ir_key_from(rsa_enc_ctx *c, const unsigned char *s,
                                  size_t k)
{
    EVP_MD *md =
        EVP_MD_fetch(prov_swctx(c->ctx), "SHA2-256", prov_swprops(c->ctx));
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char *key = p11_secure_zalloc(32);
    int ok = md && m && key && EVP_DigestInit_ex(m, md, NULL)
             && EVP_DigestUpdate(m, IR_KEY_LABEL, strlen(IR_KEY_LABEL))
             && EVP_DigestUpdate(m, s, k) && EVP_DigestFinal_ex(m, key, NULL);

    EVP_MD_CTX_free(m);
    EVP_MD_free(md);
    if (!ok) {
        p11_secure_free(key, 32);
        key = NULL;
    }
    return key;
}

/* The key's implicit rejection secret: made at the first use, then kept. */
static const unsigned char *ir_key(rsa_enc_ctx *c)
{
    prov_key *key = c->key;
    size_t k = prov_rsa_enc_size(c);
    unsigned char *secret =
        atomic_load_explicit(&key->ir_key, memory_order_acquire);
    unsigned char *x = NULL, *s = NULL;
    CK_RV rv = CKR_OK;

    if (secret)
        return secret;
    pthread_mutex_lock(&key->pub_lock);
    secret = key->ir_key;
    x = OPENSSL_zalloc(k);
    s = OPENSSL_zalloc(k);
    for (unsigned char r = 0; !secret && x && s && r < IR_ROUNDS; r++) {
        if (!ir_input(c, r, x, k))
            break;
        rv = raw_decrypt(c, x, k, s);
        if (rv != CKR_OK)
            break;
        if (!type2_padded(s, k))
            secret = ir_key_from(c, s, k);
    }
    if (secret && !key->ir_key)
        atomic_store_explicit(&key->ir_key, secret, memory_order_release);
    pthread_mutex_unlock(&key->pub_lock);
    if (rv != CKR_OK)
        raise_decrypt(c, rv);
    else if (!secret)
        prov_raise(c->ctx, PROV_R_INTERNAL,
                   "RSA decryption: no implicit rejection key for %s",
                   prov_rsa_enc_key_name(c->key));
    OPENSSL_clear_free(s, k);
    OPENSSL_free(x);
    return secret;
}

/*
 * PKCS#1 v1.5 with implicit rejection: raw decryption on the token, then
 * the padding checked in constant time; a bad one gives the synthetic
 * message of this ciphertext, and no error.
 */
static int decrypt_implicit(rsa_enc_ctx *c, unsigned char *out, size_t *outlen,
                            size_t outsize, const unsigned char *in,
                            size_t inlen)
{
    size_t k = prov_rsa_enc_size(c);
    unsigned char *ct = NULL, *em = NULL, kdk[32];
    const unsigned char *secret;
    int ok = 0;
    CK_RV rv;

    if (inlen > k) {
        prov_raise(
            c->ctx, PROV_R_BAD_INPUT,
            "RSA decryption: the ciphertext has %zu bytes, the modulus of %s %zu",
            inlen, prov_rsa_enc_key_name(c->key), k);
        return 0;
    }
    secret = ir_key(c);
    if (!secret)
        return 0;
    ct = OPENSSL_zalloc(k);
    em = OPENSSL_zalloc(k);
    if (!ct || !em) {
        prov_raise(c->ctx, PROV_R_INTERNAL, "out of memory");
        goto out;
    }
    /* A shorter ciphertext is the same number: zeros in front. */
    memcpy(ct + (k - inlen), in, inlen);
    rv = raw_decrypt(c, ct, k, em);
    if (rv != CKR_OK) {
        /* Raw RSA checks no padding: its errors tell nothing about one. */
        raise_decrypt(c, rv);
        goto out;
    }
    p11_error_clear();
    if (!prov_rsa_kdk(prov_swctx(c->ctx), prov_swprops(c->ctx), secret, ct, k,
                      kdk)
        || !prov_rsa_unpad_implicit(prov_swctx(c->ctx), prov_swprops(c->ctx),
                                    kdk, em, k, out, outsize, outlen)) {
        prov_raise(c->ctx, PROV_R_INTERNAL,
                   "RSA decryption: implicit rejection failed (HMAC)");
        goto out;
    }
    ok = 1;
out:
    OPENSSL_cleanse(kdk, sizeof(kdk));
    OPENSSL_clear_free(em, k);
    OPENSSL_free(ct);
    return ok;
}

/*
 * PKCS#1 v1.5 outside TLS: implicit rejection where the token decrypts
 * raw; the token's CKM_RSA_PKCS, which reports bad paddings, only where
 * openssl.cnf accepts that (p11ca-rsa-pkcs1-decrypt = yes).
 */
static int decrypt_pkcs1(rsa_enc_ctx *c, unsigned char *out, size_t *outlen,
                         size_t outsize, const unsigned char *in, size_t inlen)
{
    const char *why = raw_decrypt_refusal(c);

    if (c->implicit_rejection && !why)
        return decrypt_implicit(c, out, outlen, outsize, in, inlen);
    if (c->ctx->rsa_pkcs1_decrypt)
        return decrypt_token(c, out, outlen, outsize, in, inlen);
    if (c->implicit_rejection)
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA PKCS#1 v1.5 decryption with %s: implicit rejection needs raw RSA decryption on the token (CKM_RSA_X_509), and %s; the token's own PKCS#1 v1.5 decryption tells a bad padding from a good one, a padding oracle (the Marvin attack): use OAEP, or set p11ca-rsa-pkcs1-decrypt = yes in the provider's openssl.cnf section to accept it",
            prov_rsa_enc_key_name(c->key), why);
    else
        prov_raise(
            c->ctx, PROV_R_UNSUPPORTED,
            "RSA PKCS#1 v1.5 decryption with rsa_pkcs1_implicit_rejection:0 reports bad paddings, a padding oracle (the Marvin attack); it is allowed only with p11ca-rsa-pkcs1-decrypt = yes in the provider's openssl.cnf section");
    return 0;
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

    prov_rsa_enc_sw_params(c, params);
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

int prov_rsa_enc_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                         size_t outsize, const unsigned char *in, size_t inlen)
{
    rsa_enc_ctx *c = vctx;

    if (c->key && prov_key_is_software(c->key)) {
        if (!out) {
            *outlen = prov_rsa_enc_size(c);
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
        *outlen = prov_rsa_enc_size(c);
        return 1;
    }
    if (c->pad == RSA_PKCS1_PADDING)
        return decrypt_pkcs1(c, out, outlen, outsize, in, inlen);
    return decrypt_token(c, out, outlen, outsize, in, inlen);
}
