/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of key specs and the key-pair templates given to the token. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/obj_mac.h>

#include "p11/p11.h"

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81,
                                         0x04, 0x00, 0x22};
static const unsigned char oid_p521[] = {0x06, 0x05, 0x2b, 0x81,
                                         0x04, 0x00, 0x23};
static const unsigned char oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

static const unsigned char test_id[] = {0x01, 0xab, 0xcd};

/* The attribute @type of a template, or NULL; fails on duplicates. */
static const CK_ATTRIBUTE *find_attr(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                     CK_ATTRIBUTE_TYPE type)
{
    const CK_ATTRIBUTE *found = NULL;

    for (CK_ULONG i = 0; i < n; i++) {
        if (tmpl[i].type != type)
            continue;
        assert_null(found); /* a token refuses a repeated attribute */
        found = &tmpl[i];
    }
    return found;
}

static void assert_bool_attr(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                             CK_ATTRIBUTE_TYPE type, CK_BBOOL want)
{
    const CK_ATTRIBUTE *a = find_attr(tmpl, n, type);

    assert_non_null(a);
    assert_int_equal(a->ulValueLen, sizeof(CK_BBOOL));
    assert_int_equal(*(const CK_BBOOL *)a->pValue, want);
}

static CK_ULONG ulong_attr(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_ATTRIBUTE_TYPE type)
{
    const CK_ATTRIBUTE *a = find_attr(tmpl, n, type);

    assert_non_null(a);
    assert_int_equal(a->ulValueLen, sizeof(CK_ULONG));
    return *(const CK_ULONG *)a->pValue;
}

static void assert_bytes_attr(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              CK_ATTRIBUTE_TYPE type, const void *want,
                              size_t len)
{
    const CK_ATTRIBUTE *a = find_attr(tmpl, n, type);

    assert_non_null(a);
    assert_int_equal(a->ulValueLen, len);
    assert_memory_equal(a->pValue, want, len);
}

static p11_key_spec spec_of(const char *str)
{
    p11_key_spec spec;

    assert_int_equal(p11_key_spec_parse(str, &spec), CKR_OK);
    return spec;
}

static void make_templates(const char *spec_str, bool session_only,
                           p11_keygen_tmpl *t)
{
    p11_key_spec spec = spec_of(spec_str);

    assert_int_equal(p11_keygen_templates(&spec, "ca key", test_id,
                                          sizeof(test_id), session_only, t),
                     CKR_OK);
    assert_true(t->n_pub <= sizeof(t->pub) / sizeof(t->pub[0]));
    assert_true(t->n_priv <= sizeof(t->priv) / sizeof(t->priv[0]));
}

/* Expect @str to be refused with P11_RV_BAD_INPUT naming @what. */
static void spec_fails(const char *str, const char *what)
{
    p11_key_spec spec;

    p11_error_clear();
    assert_int_equal(p11_key_spec_parse(str, &spec), P11_RV_BAD_INPUT);
    assert_int_equal(p11_error_rv(), P11_RV_BAD_INPUT);
    assert_non_null(strstr(p11_error_message(), what));
}

/* ---- p11_key_spec_parse / p11_key_spec_name ---- */

static void test_keygen_spec_rsa_defaults_to_3072(void **state)
{
    p11_key_spec spec = spec_of("rsa");

    (void)state;
    assert_int_equal(spec.kind, P11_KEY_RSA);
    assert_int_equal(spec.bits, 3072);
}

static void test_keygen_spec_accepts_rsa_sizes(void **state)
{
    static const unsigned sizes[] = {2048, 3072, 4096};
    static const char *const names[] = {"rsa:2048", "rsa:3072", "rsa:4096"};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        p11_key_spec spec = spec_of(names[i]);

        assert_int_equal(spec.kind, P11_KEY_RSA);
        assert_int_equal(spec.bits, sizes[i]);
        assert_string_equal(p11_key_spec_name(&spec), names[i]);
    }
}

static void test_keygen_spec_accepts_ec_p256(void **state)
{
    p11_key_spec spec = spec_of("ec:P-256");

    (void)state;
    assert_int_equal(spec.kind, P11_KEY_EC);
    assert_int_equal(spec.curve_nid, NID_X9_62_prime256v1);
    assert_int_equal(spec.bits, 256);
}

static void test_keygen_spec_accepts_ec_p384(void **state)
{
    p11_key_spec spec = spec_of("ec:P-384");

    (void)state;
    assert_int_equal(spec.kind, P11_KEY_EC);
    assert_int_equal(spec.curve_nid, NID_secp384r1);
    assert_int_equal(spec.bits, 384);
}

static void test_keygen_spec_accepts_ec_p521(void **state)
{
    p11_key_spec spec = spec_of("ec:P-521");

    (void)state;
    assert_int_equal(spec.kind, P11_KEY_EC);
    assert_int_equal(spec.curve_nid, NID_secp521r1);
    assert_int_equal(spec.bits, 521);
}

static void test_keygen_spec_accepts_openssl_curve_names(void **state)
{
    p11_key_spec a = spec_of("ec:prime256v1");
    p11_key_spec b = spec_of("ec:secp384r1");

    (void)state;
    assert_int_equal(a.curve_nid, NID_X9_62_prime256v1);
    assert_int_equal(b.curve_nid, NID_secp384r1);
}

static void test_keygen_spec_accepts_ed25519(void **state)
{
    p11_key_spec spec = spec_of("ed25519");

    (void)state;
    assert_int_equal(spec.kind, P11_KEY_ED25519);
}

static void test_keygen_spec_is_case_insensitive(void **state)
{
    p11_key_spec a = spec_of("ED25519");
    p11_key_spec b = spec_of("RSA:2048");
    p11_key_spec c = spec_of("EC:p-384");

    (void)state;
    assert_int_equal(a.kind, P11_KEY_ED25519);
    assert_int_equal(b.kind, P11_KEY_RSA);
    assert_int_equal(b.bits, 2048);
    assert_int_equal(c.kind, P11_KEY_EC);
    assert_int_equal(c.curve_nid, NID_secp384r1);
}

static void test_keygen_spec_names_are_canonical(void **state)
{
    p11_key_spec a = spec_of("ec:prime256v1");
    p11_key_spec b = spec_of("ec:secp384r1");
    p11_key_spec c = spec_of("Ed25519");
    p11_key_spec d = spec_of("rsa");

    (void)state;
    assert_string_equal(p11_key_spec_name(&a), "ec:P-256");
    assert_string_equal(p11_key_spec_name(&b), "ec:P-384");
    assert_string_equal(p11_key_spec_name(&c), "ed25519");
    assert_string_equal(p11_key_spec_name(&d), "rsa:3072");
}

static void test_keygen_spec_rejects_rsa_1024(void **state)
{
    (void)state;
    spec_fails("rsa:1024", "1024 bits");
}

static void test_keygen_spec_rejects_non_numeric_rsa_size(void **state)
{
    (void)state;
    spec_fails("rsa:abc", "rsa:abc");
}

static void test_keygen_spec_rejects_trailing_garbage(void **state)
{
    (void)state;
    spec_fails("rsa:2048x", "rsa:2048x");
}

static void test_keygen_spec_rejects_unknown_curve(void **state)
{
    (void)state;
    spec_fails("ec:P-999", "ec:P-999");
}

static void test_keygen_spec_rejects_ec_without_curve(void **state)
{
    (void)state;
    spec_fails("ec", "unknown key type");
    spec_fails("ec:", "unknown key type");
}

static void test_keygen_spec_rejects_dsa(void **state)
{
    (void)state;
    spec_fails("dsa", "unknown key type \"dsa\"");
}

static void test_keygen_spec_rejects_empty_string(void **state)
{
    (void)state;
    spec_fails("", "unknown key type");
}

static void test_keygen_spec_rejects_null(void **state)
{
    (void)state;
    spec_fails(NULL, "unknown key type");
}

/* ---- p11_keygen_templates ---- */

/* The private-key policy of the project, identical for every kind. */
static void check_private_policy(const char *spec_str)
{
    p11_keygen_tmpl t;

    make_templates(spec_str, false, &t);
    assert_int_equal(ulong_attr(t.priv, t.n_priv, CKA_CLASS), CKO_PRIVATE_KEY);
    assert_bool_attr(t.priv, t.n_priv, CKA_SENSITIVE, CK_TRUE);
    assert_bool_attr(t.priv, t.n_priv, CKA_EXTRACTABLE, CK_FALSE);
    assert_bool_attr(t.priv, t.n_priv, CKA_PRIVATE, CK_TRUE);
    assert_bool_attr(t.priv, t.n_priv, CKA_TOKEN, CK_TRUE);
    assert_bool_attr(t.priv, t.n_priv, CKA_SIGN, CK_TRUE);
}

/* Both halves carry the same CKA_ID, CKA_LABEL and CKA_KEY_TYPE. */
static void check_pair_identity(const char *spec_str, CK_KEY_TYPE ktype)
{
    p11_keygen_tmpl t;

    make_templates(spec_str, false, &t);
    assert_int_equal(ulong_attr(t.pub, t.n_pub, CKA_CLASS), CKO_PUBLIC_KEY);
    assert_bytes_attr(t.pub, t.n_pub, CKA_ID, test_id, sizeof(test_id));
    assert_bytes_attr(t.priv, t.n_priv, CKA_ID, test_id, sizeof(test_id));
    assert_bytes_attr(t.pub, t.n_pub, CKA_LABEL, "ca key", 6);
    assert_bytes_attr(t.priv, t.n_priv, CKA_LABEL, "ca key", 6);
    assert_int_equal(ulong_attr(t.pub, t.n_pub, CKA_KEY_TYPE), ktype);
    assert_int_equal(ulong_attr(t.priv, t.n_priv, CKA_KEY_TYPE), ktype);
    assert_bool_attr(t.pub, t.n_pub, CKA_TOKEN, CK_TRUE);
    assert_bool_attr(t.pub, t.n_pub, CKA_PRIVATE, CK_FALSE);
    assert_bool_attr(t.pub, t.n_pub, CKA_VERIFY, CK_TRUE);
}

static void test_keygen_rsa_private_key_stays_on_token(void **state)
{
    (void)state;
    check_private_policy("rsa:2048");
}

static void test_keygen_ec_private_key_stays_on_token(void **state)
{
    (void)state;
    check_private_policy("ec:P-256");
}

static void test_keygen_ed25519_private_key_stays_on_token(void **state)
{
    (void)state;
    check_private_policy("ed25519");
}

static void test_keygen_rsa_pair_shares_id_and_label(void **state)
{
    (void)state;
    check_pair_identity("rsa:3072", CKK_RSA);
}

static void test_keygen_ec_pair_shares_id_and_label(void **state)
{
    (void)state;
    check_pair_identity("ec:P-384", CKK_EC);
}

static void test_keygen_ed25519_pair_shares_id_and_label(void **state)
{
    (void)state;
    check_pair_identity("ed25519", CKK_EC_EDWARDS);
}

static void test_keygen_rsa_sets_bits_and_exponent_65537(void **state)
{
    p11_keygen_tmpl t;

    (void)state;
    make_templates("rsa:4096", false, &t);
    assert_int_equal(t.mech.mechanism, CKM_RSA_PKCS_KEY_PAIR_GEN);
    assert_int_equal(ulong_attr(t.pub, t.n_pub, CKA_MODULUS_BITS), 4096);
    assert_bytes_attr(t.pub, t.n_pub, CKA_PUBLIC_EXPONENT, "\x01\x00\x01", 3);
}

static void test_keygen_ec_p256_params_are_the_curve_oid(void **state)
{
    p11_keygen_tmpl t;

    (void)state;
    make_templates("ec:P-256", false, &t);
    assert_int_equal(t.mech.mechanism, CKM_EC_KEY_PAIR_GEN);
    assert_bytes_attr(t.pub, t.n_pub, CKA_EC_PARAMS, oid_p256,
                      sizeof(oid_p256));
    assert_null(find_attr(t.priv, t.n_priv, CKA_EC_PARAMS));
}

static void test_keygen_ec_p384_params_are_the_curve_oid(void **state)
{
    p11_keygen_tmpl t;

    (void)state;
    make_templates("ec:P-384", false, &t);
    assert_bytes_attr(t.pub, t.n_pub, CKA_EC_PARAMS, oid_p384,
                      sizeof(oid_p384));
}

static void test_keygen_ec_p521_params_are_the_curve_oid(void **state)
{
    p11_keygen_tmpl t;

    (void)state;
    make_templates("ec:P-521", false, &t);
    assert_bytes_attr(t.pub, t.n_pub, CKA_EC_PARAMS, oid_p521,
                      sizeof(oid_p521));
}

static void test_keygen_ed25519_uses_edwards_mechanism_and_oid(void **state)
{
    p11_keygen_tmpl t;

    (void)state;
    make_templates("ed25519", false, &t);
    assert_int_equal(t.mech.mechanism, CKM_EC_EDWARDS_KEY_PAIR_GEN);
    assert_bytes_attr(t.pub, t.n_pub, CKA_EC_PARAMS, oid_ed25519,
                      sizeof(oid_ed25519));
}

static void test_keygen_session_only_keys_are_not_token_objects(void **state)
{
    static const char *const kinds[] = {"rsa:2048", "ec:P-256", "ed25519"};
    p11_keygen_tmpl t;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        make_templates(kinds[i], true, &t);
        assert_bool_attr(t.pub, t.n_pub, CKA_TOKEN, CK_FALSE);
        assert_bool_attr(t.priv, t.n_priv, CKA_TOKEN, CK_FALSE);
        /* Ephemeral, but still never extractable. */
        assert_bool_attr(t.priv, t.n_priv, CKA_SENSITIVE, CK_TRUE);
        assert_bool_attr(t.priv, t.n_priv, CKA_EXTRACTABLE, CK_FALSE);
    }
}

static void test_keygen_omits_id_and_label_when_not_given(void **state)
{
    p11_key_spec spec = spec_of("ec:P-256");
    p11_keygen_tmpl t;

    (void)state;
    assert_int_equal(p11_keygen_templates(&spec, NULL, NULL, 0, false, &t),
                     CKR_OK);
    assert_null(find_attr(t.pub, t.n_pub, CKA_ID));
    assert_null(find_attr(t.priv, t.n_priv, CKA_ID));
    assert_null(find_attr(t.pub, t.n_pub, CKA_LABEL));
    assert_null(find_attr(t.priv, t.n_priv, CKA_LABEL));
}

static void test_keygen_accepts_id_of_max_length(void **state)
{
    unsigned char id[P11_MAX_ID_LEN];
    p11_key_spec spec = spec_of("ec:P-256");
    p11_keygen_tmpl t;

    (void)state;
    memset(id, 0x5a, sizeof(id));
    assert_int_equal(
        p11_keygen_templates(&spec, "k", id, sizeof(id), false, &t), CKR_OK);
    assert_bytes_attr(t.priv, t.n_priv, CKA_ID, id, sizeof(id));
}

static void test_keygen_refuses_id_longer_than_max(void **state)
{
    unsigned char id[P11_MAX_ID_LEN + 1];
    p11_key_spec spec = spec_of("ec:P-256");
    p11_keygen_tmpl t;

    (void)state;
    memset(id, 0x5a, sizeof(id));
    p11_error_clear();
    assert_int_equal(
        p11_keygen_templates(&spec, "k", id, sizeof(id), false, &t),
        P11_RV_BAD_INPUT);
    assert_non_null(strstr(p11_error_message(), "too long"));
}

static void test_keygen_refuses_label_longer_than_max(void **state)
{
    char label[P11_MAX_LABEL_LEN + 2];
    p11_key_spec spec = spec_of("rsa:2048");
    p11_keygen_tmpl t;

    (void)state;
    memset(label, 'l', sizeof(label) - 1);
    label[sizeof(label) - 1] = '\0';
    assert_int_equal(
        p11_keygen_templates(&spec, label, test_id, sizeof(test_id), false, &t),
        P11_RV_BAD_INPUT);
}

static void test_keygen_refuses_unknown_kind(void **state)
{
    p11_key_spec spec = {.kind = (p11_key_kind)99};
    p11_keygen_tmpl t;

    (void)state;
    assert_int_equal(p11_keygen_templates(&spec, "k", NULL, 0, false, &t),
                     P11_RV_BAD_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_spec_rsa_defaults_to_3072),
        cmocka_unit_test(test_keygen_spec_accepts_rsa_sizes),
        cmocka_unit_test(test_keygen_spec_accepts_ec_p256),
        cmocka_unit_test(test_keygen_spec_accepts_ec_p384),
        cmocka_unit_test(test_keygen_spec_accepts_ec_p521),
        cmocka_unit_test(test_keygen_spec_accepts_openssl_curve_names),
        cmocka_unit_test(test_keygen_spec_accepts_ed25519),
        cmocka_unit_test(test_keygen_spec_is_case_insensitive),
        cmocka_unit_test(test_keygen_spec_names_are_canonical),
        cmocka_unit_test(test_keygen_spec_rejects_rsa_1024),
        cmocka_unit_test(test_keygen_spec_rejects_non_numeric_rsa_size),
        cmocka_unit_test(test_keygen_spec_rejects_trailing_garbage),
        cmocka_unit_test(test_keygen_spec_rejects_unknown_curve),
        cmocka_unit_test(test_keygen_spec_rejects_ec_without_curve),
        cmocka_unit_test(test_keygen_spec_rejects_dsa),
        cmocka_unit_test(test_keygen_spec_rejects_empty_string),
        cmocka_unit_test(test_keygen_spec_rejects_null),
        cmocka_unit_test(test_keygen_rsa_private_key_stays_on_token),
        cmocka_unit_test(test_keygen_ec_private_key_stays_on_token),
        cmocka_unit_test(test_keygen_ed25519_private_key_stays_on_token),
        cmocka_unit_test(test_keygen_rsa_pair_shares_id_and_label),
        cmocka_unit_test(test_keygen_ec_pair_shares_id_and_label),
        cmocka_unit_test(test_keygen_ed25519_pair_shares_id_and_label),
        cmocka_unit_test(test_keygen_rsa_sets_bits_and_exponent_65537),
        cmocka_unit_test(test_keygen_ec_p256_params_are_the_curve_oid),
        cmocka_unit_test(test_keygen_ec_p384_params_are_the_curve_oid),
        cmocka_unit_test(test_keygen_ec_p521_params_are_the_curve_oid),
        cmocka_unit_test(test_keygen_ed25519_uses_edwards_mechanism_and_oid),
        cmocka_unit_test(test_keygen_session_only_keys_are_not_token_objects),
        cmocka_unit_test(test_keygen_omits_id_and_label_when_not_given),
        cmocka_unit_test(test_keygen_accepts_id_of_max_length),
        cmocka_unit_test(test_keygen_refuses_id_longer_than_max),
        cmocka_unit_test(test_keygen_refuses_label_longer_than_max),
        cmocka_unit_test(test_keygen_refuses_unknown_kind),
    };

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
