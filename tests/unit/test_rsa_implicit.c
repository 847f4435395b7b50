/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of RSA PKCS#1 v1.5 implicit rejection (provider/rsa_implicit.c):
 * a good padding gives the message, a bad one a synthetic message that
 * depends only on the key derivation key, the PRF, the block alignment. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "provider/prov.h"

#define K 256 /* RSA-2048 */

static const unsigned char kdk1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const unsigned char kdk2[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

/* A PKCS#1 v1.5 type 2 block for @msg (@len bytes) with @ps_len bytes of
 * non-zero padding. */
static void block(unsigned char em[K], const unsigned char *msg, size_t len)
{
    size_t ps_len = K - 3 - len;

    em[0] = 0;
    em[1] = 2;
    for (size_t i = 0; i < ps_len; i++)
        em[2 + i] = (unsigned char)(1 + i % 255);
    em[2 + ps_len] = 0;
    memcpy(em + 3 + ps_len, msg, len);
}

static size_t unpad(const unsigned char *kdk, const unsigned char em[K],
                    unsigned char *out, size_t outsize)
{
    size_t len = 0;

    assert_int_equal(
        prov_rsa_unpad_implicit(NULL, NULL, kdk, em, K, out, outsize, &len), 1);
    return len;
}

static void test_rsa_implicit_good_padding_gives_the_message(void **state)
{
    unsigned char em[K], msg[48], out[K];

    (void)state;
    assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
    block(em, msg, sizeof(msg));
    assert_int_equal(unpad(kdk1, em, out, sizeof(out)), sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    /* The shortest padding allowed (8 bytes): still the message. */
    block(em, msg, 0);
    assert_int_equal(unpad(kdk1, em, out, sizeof(out)), 0);
}

/* Bad blocks: each must give the same synthetic message for one kdk. */
static void bad_blocks(unsigned char bad[5][K])
{
    unsigned char msg[32] = {0x42};

    for (int i = 0; i < 5; i++)
        block(bad[i], msg, sizeof(msg));
    bad[0][0] = 1;                     /* not 00 */
    bad[1][1] = 1;                     /* not 02 (type 1) */
    bad[2][5] = 0;                     /* padding of 3 bytes */
    memset(bad[3] + 2, 0x11, K - 2);   /* no separator */
    bad[4][K - 32 - 1] = 0x11;         /* separator moved into msg... */
    memset(bad[4] + K - 32, 0x22, 32); /* ...and no zero at all */
}

static void test_rsa_implicit_bad_padding_is_synthetic(void **state)
{
    unsigned char bad[5][K], out[K], first[K], again[K];
    size_t n, n2;

    (void)state;
    bad_blocks(bad);
    n = unpad(kdk1, bad[0], first, sizeof(first));
    assert_true(n <= K - 2 - 8);
    for (int i = 0; i < 5; i++) {
        /* Synthetic: it depends on the kdk alone, not on the block. */
        n2 = unpad(kdk1, bad[i], out, sizeof(out));
        assert_int_equal(n2, n);
        assert_memory_equal(out, first, n);
    }
    /* Deterministic, and another kdk (ciphertext) gives another one. */
    assert_int_equal(unpad(kdk1, bad[2], again, sizeof(again)), n);
    assert_memory_equal(again, first, n);
    n2 = unpad(kdk2, bad[2], out, sizeof(out));
    assert_false(n2 == n && memcmp(out, first, n) == 0);
}

static void test_rsa_implicit_message_too_long_is_synthetic(void **state)
{
    unsigned char em[K], msg[100], out[K], synth[K];
    size_t n, ns;

    (void)state;
    memset(msg, 0x5a, sizeof(msg));
    block(em, msg, sizeof(msg));
    /* A buffer too small for the message: no error (an oracle), the
     * synthetic message of the kdk, as far as it fits. */
    n = unpad(kdk1, em, out, 40);
    em[0] = 1;
    ns = unpad(kdk1, em, synth, 40);
    assert_int_equal(n, ns);
    assert_memory_equal(out, synth, n);
    assert_true(n <= 40);
}

static void test_rsa_implicit_prf_is_hmac_counter_mode(void **state)
{
    unsigned char out[40], want[32], in[2 + 7 + 2];
    size_t len = 0;

    (void)state;
    assert_int_equal(prov_rsa_prf(NULL, NULL, kdk1, "message", out, 40), 1);
    /* Block 0: HMAC-SHA256(kdk, 00 00 || "message" || 320 bits). */
    in[0] = 0;
    in[1] = 0;
    memcpy(in + 2, "message", 7);
    in[9] = 320 >> 8;
    in[10] = 320 & 0xff;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, kdk1, 32, in,
                              sizeof(in), want, sizeof(want), &len));
    assert_memory_equal(out, want, 32);
    /* Block 1: the counter is 00 01. */
    in[1] = 1;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, kdk1, 32, in,
                              sizeof(in), want, sizeof(want), &len));
    assert_memory_equal(out + 32, want, 8);
}

static void test_rsa_implicit_kdk_pads_the_ciphertext(void **state)
{
    unsigned char ct[K] = {0}, a[32], b[32], want[32];
    size_t len = 0;

    (void)state;
    ct[K - 1] = 7;
    assert_int_equal(prov_rsa_kdk(NULL, NULL, kdk1, ct, K, a), 1);
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, kdk1, 32, ct,
                              K, want, sizeof(want), &len));
    assert_memory_equal(a, want, 32);
    ct[0] = 1;
    assert_int_equal(prov_rsa_kdk(NULL, NULL, kdk1, ct, K, b), 1);
    assert_memory_not_equal(a, b, 32);
}

static void test_rsa_implicit_align_right_every_length(void **state)
{
    unsigned char buf[K], want[K];

    (void)state;
    for (size_t len = 0; len <= K; len++) {
        memset(buf, 0, sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)(i + 1);
        memset(want, 0, sizeof(want));
        memcpy(want + (K - len), buf, len);
        prov_rsa_align_right(buf, len, K);
        assert_memory_equal(buf, want, K);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_implicit_good_padding_gives_the_message),
        cmocka_unit_test(test_rsa_implicit_bad_padding_is_synthetic),
        cmocka_unit_test(test_rsa_implicit_message_too_long_is_synthetic),
        cmocka_unit_test(test_rsa_implicit_prf_is_hmac_counter_mode),
        cmocka_unit_test(test_rsa_implicit_kdk_pads_the_ciphertext),
        cmocka_unit_test(test_rsa_implicit_align_right_every_length),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
