/* SPDX-License-Identifier: Apache-2.0 */
/* RSA PKCS#1 v1.5 decryption with implicit rejection (OpenSSL 3.2,
 * draft-irtf-cfrg-rsa-guidance): the padding checked in constant time, and
 * a deterministic pseudo-random message where the padding is bad. */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdint.h>
#include <string.h>

#include "prov.h"

/*
 * Constant-time helpers: masks of all ones (true) or all zeros (false),
 * computed without a branch on the values (OpenSSL's constant_time_*
 * functions are internal to libcrypto).
 */
static unsigned int ct_msb(unsigned int a)
{
    return 0u - (a >> (sizeof(a) * 8 - 1));
}

static unsigned int ct_is_zero(unsigned int a)
{
    return ct_msb(~a & (a - 1));
}

static unsigned int ct_eq(unsigned int a, unsigned int b)
{
    return ct_is_zero(a ^ b);
}

/* a < b, for values below 2^31 (lengths and indices). */
static unsigned int ct_lt(unsigned int a, unsigned int b)
{
    return ct_msb(a - b);
}

static unsigned int ct_ge(unsigned int a, unsigned int b)
{
    return ~ct_lt(a, b);
}

static unsigned int ct_select(unsigned int mask, unsigned int a, unsigned int b)
{
    return (mask & a) | (~mask & b);
}

static unsigned char ct_select_8(unsigned int mask, unsigned char a,
                                 unsigned char b)
{
    return (unsigned char)ct_select(mask, a, b);
}

/* HMAC-SHA256 of the @n parts of @parts under @key into @out. */
struct part {
    const unsigned char *p;
    size_t len;
};

static int hmac_sha256(OSSL_LIB_CTX *libctx, const char *propq,
                       const unsigned char *key, size_t key_len,
                       const struct part *parts, size_t n,
                       unsigned char out[32])
{
    OSSL_PARAM params[3];
    EVP_MAC *mac = EVP_MAC_fetch(libctx, "HMAC", propq);
    EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t len = 0;
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA2-256", 0);
    params[1] = propq ? OSSL_PARAM_construct_utf8_string(
                    OSSL_MAC_PARAM_PROPERTIES, (char *)propq, 0)
                      : OSSL_PARAM_construct_end();
    params[2] = OSSL_PARAM_construct_end();
    ok = m && EVP_MAC_init(m, key, key_len, params);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_MAC_update(m, parts[i].p, parts[i].len);
    ok = ok && EVP_MAC_final(m, out, &len, 32) && len == 32;
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    return ok;
}

int prov_rsa_kdk(OSSL_LIB_CTX *libctx, const char *propq,
                 const unsigned char key[32], const unsigned char *ct, size_t k,
                 unsigned char kdk[32])
{
    struct part p = {ct, k};

    return hmac_sha256(libctx, propq, key, 32, &p, 1, kdk);
}

int prov_rsa_prf(OSSL_LIB_CTX *libctx, const char *propq,
                 const unsigned char kdk[32], const char *label,
                 unsigned char *out, size_t len)
{
    unsigned char iter[2], bits[2], block[32];
    struct part parts[3] = {
        {iter, 2},
        {(const unsigned char *)label, strlen(label)},
        {bits, 2},
    };
    size_t nbits = len * 8;
    int ok = nbits <= 0xffff;

    /* Counter mode: HMAC(kdk, iteration || label || output bits). */
    bits[0] = (unsigned char)(nbits >> 8);
    bits[1] = (unsigned char)nbits;
    for (size_t pos = 0, i = 0; ok && pos < len; pos += 32, i++) {
        iter[0] = (unsigned char)(i >> 8);
        iter[1] = (unsigned char)i;
        ok = hmac_sha256(libctx, propq, kdk, 32, parts, 3, block);
        memcpy(out + pos, block, len - pos < 32 ? len - pos : 32);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return ok;
}

/* Candidates for the length of the synthetic message (see below). */
#define LEN_TRIES 128

int prov_rsa_unpad_implicit(OSSL_LIB_CTX *libctx, const char *propq,
                            const unsigned char kdk[32],
                            const unsigned char *em, size_t k,
                            unsigned char *out, size_t outsize, size_t *outlen)
{
    unsigned char lens[LEN_TRIES * 2];
    unsigned char *synth = NULL;
    unsigned int good, found = 0, zero_at = 0, msg_at, synth_len = 0;
    unsigned int max_len, mask;
    size_t i, j;
    int ok = 0;

    /* Publicly wrong sizes only: nothing here depends on the message. */
    if (k < 11 || k > 0x7fff || outsize == 0)
        return 0;
    synth = OPENSSL_malloc(k);
    if (!synth || !prov_rsa_prf(libctx, propq, kdk, "message", synth, k)
        || !prov_rsa_prf(libctx, propq, kdk, "length", lens, sizeof(lens)))
        goto out;
    /*
     * The synthetic message's length: the last of 128 candidates masked to
     * the bits of the largest length (k - 2 - 8) that is below it; no
     * division, no bias.
     */
    max_len = mask = (unsigned int)(k - 10);
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    for (i = 0; i < sizeof(lens); i += 2) {
        unsigned int cand = ((unsigned int)lens[i] << 8 | lens[i + 1]) & mask;

        synth_len = ct_select(ct_lt(cand, max_len), cand, synth_len);
    }
    /* 00 02, at least 8 bytes of padding, then the first zero byte. */
    good = ct_is_zero(em[0]) & ct_eq(em[1], 2);
    for (i = 2; i < k; i++) {
        unsigned int zero = ct_is_zero(em[i]);

        zero_at = ct_select(~found & zero, (unsigned int)i, zero_at);
        found |= zero;
    }
    good &= ct_ge(zero_at, 2 + 8);
    msg_at = zero_at + 1;
    /* A message that does not fit is not an error either (that would be
     * an oracle): the synthetic one is returned. */
    good &= ct_ge((unsigned int)(outsize < k ? outsize : k),
                  (unsigned int)k - msg_at);
    msg_at = ct_select(good, msg_at, (unsigned int)k - synth_len);
    /* msg_at no longer tells which message it is; both are read. */
    for (i = msg_at, j = 0; i < k && j < outsize; i++, j++)
        out[j] = ct_select_8(good, em[i], synth[i]);
    *outlen = j;
    ok = 1;
out:
    OPENSSL_clear_free(synth, k);
    OPENSSL_cleanse(lens, sizeof(lens));
    return ok;
}

void prov_rsa_align_right(unsigned char *buf, size_t len, size_t k)
{
    size_t shift = k - len;

    /*
     * A token may return the decrypted block without its leading zero
     * bytes; how many there were depends on the message, so the block is
     * moved to the end of @buf without a branch or an index on @shift: one
     * pass per bit of the shift, each moving by that power of two or not.
     */
    for (size_t step = 1; step < k; step <<= 1) {
        unsigned int on = ~ct_is_zero((unsigned int)(shift & step));

        for (size_t i = k; i-- > 0;) {
            unsigned char from = i >= step ? buf[i - step] : 0;

            buf[i] = ct_select_8(on, from, buf[i]);
        }
    }
}
