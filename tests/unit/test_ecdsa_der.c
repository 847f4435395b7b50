/* SPDX-License-Identifier: Apache-2.0 */
/* The provider's ECDSA-Sig-Value encoding of a token's r||s
 * (sig_ecdsa_der) against OpenSSL's i2d_ECDSA_SIG, byte for byte. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>

#include "provider/signature.h"

/* What OpenSSL encodes for r||s (@len bytes), into @out; its length. */
static size_t openssl_der(const unsigned char *rs, size_t len,
                          unsigned char *out)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)(len / 2), NULL);
    BIGNUM *s = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
    unsigned char *p = out;
    int n;

    assert_non_null(es);
    assert_true(r && s && ECDSA_SIG_set0(es, r, s));
    n = i2d_ECDSA_SIG(es, &p);
    assert_true(n > 0);
    ECDSA_SIG_free(es);
    return (size_t)n;
}

static void check_same(const unsigned char *rs, size_t len)
{
    unsigned char want[1100], got[1100];
    size_t n = openssl_der(rs, len, want);

    assert_int_equal(sig_ecdsa_der(rs, len, got, sizeof(got)), n);
    assert_memory_equal(got, want, n);
    /* Exactly the room it needs is enough; one byte less is not. */
    assert_int_equal(sig_ecdsa_der(rs, len, got, n), n);
    assert_int_equal(sig_ecdsa_der(rs, len, got, n - 1), 0);
}

static void test_ecdsa_der_random_p256_p384_p521(void **state)
{
    static const size_t halves[] = {32, 48, 66};
    unsigned char rs[132];

    (void)state;
    for (size_t h = 0; h < 3; h++)
        for (int i = 0; i < 500; i++) {
            assert_int_equal(RAND_bytes(rs, sizeof(rs)), 1);
            check_same(rs, 2 * halves[h]);
        }
}

static void test_ecdsa_der_leading_zeros_and_top_bits(void **state)
{
    unsigned char rs[132];

    (void)state;
    for (size_t half = 32; half <= 66; half += 17) {
        for (size_t zeros = 0; zeros <= half; zeros++) {
            memset(rs, 0xff, sizeof(rs));
            memset(rs, 0, zeros);            /* r: leading zeros */
            memset(rs + half, 0, zeros / 2); /* s: fewer of them */
            if (zeros < half)
                rs[zeros] = (unsigned char)(zeros & 1 ? 0x80 : 0x7f);
            check_same(rs, 2 * half);
        }
    }
}

static void test_ecdsa_der_zero_and_one(void **state)
{
    unsigned char rs[64] = {0};

    (void)state;
    check_same(rs, sizeof(rs)); /* r = s = 0 */
    rs[31] = 1;
    rs[63] = 1;
    check_same(rs, sizeof(rs)); /* r = s = 1 */
}

/* Halves whose encodings need a long-form length of one and of two bytes
 * (up to the 1024 bytes of input accepted). */
static void test_ecdsa_der_long_lengths(void **state)
{
    static const size_t halves[] = {60,  61,  62,  63,  64,  100, 126,
                                    127, 128, 200, 255, 256, 300, 512};
    unsigned char rs[1024];

    (void)state;
    for (size_t h = 0; h < sizeof(halves) / sizeof(halves[0]); h++)
        for (int i = 0; i < 20; i++) {
            assert_int_equal(RAND_bytes(rs, sizeof(rs)), 1);
            if (i & 1)
                rs[0] = rs[halves[h]] = 0x80; /* both padded */
            check_same(rs, 2 * halves[h]);
        }
}

static void test_ecdsa_der_refuses_odd_or_empty(void **state)
{
    unsigned char rs[65] = {1}, out[256];
    static unsigned char big[1026] = {1}, out2[1100];

    (void)state;
    assert_int_equal(sig_ecdsa_der(rs, 0, out, sizeof(out)), 0);
    assert_int_equal(sig_ecdsa_der(rs, 65, out, sizeof(out)), 0);
    /* More than 1024 bytes of input. */
    assert_int_equal(sig_ecdsa_der(big, 1026, out2, sizeof(out2)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_der_random_p256_p384_p521),
        cmocka_unit_test(test_ecdsa_der_leading_zeros_and_top_bits),
        cmocka_unit_test(test_ecdsa_der_zero_and_one),
        cmocka_unit_test(test_ecdsa_der_long_lengths),
        cmocka_unit_test(test_ecdsa_der_refuses_odd_or_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
