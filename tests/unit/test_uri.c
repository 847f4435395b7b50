/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the pkcs11: URI parser, accessors and formatter (uri.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Only for a token to hand to p11_uri_for_object(); nothing else is faked. */
#include "p11/internal.h"
#include "p11/p11.h"

static p11_uri *parse_ok(const char *str)
{
    p11_uri *uri = NULL;

    assert_int_equal(p11_uri_parse(str, &uri), CKR_OK);
    assert_non_null(uri);
    return uri;
}

/* Parse @str, expect P11_RV_URI_INVALID and a message containing @reason. */
static void parse_fails(const char *str, const char *reason)
{
    p11_uri *uri = (p11_uri *)&uri; /* must be reset to NULL */

    p11_error_clear();
    assert_int_equal(p11_uri_parse(str, &uri), P11_RV_URI_INVALID);
    assert_null(uri);
    assert_int_equal(p11_error_rv(), P11_RV_URI_INVALID);
    assert_non_null(strstr(p11_error_message(), reason));
}

/* The blank-padded token field @field as a C string in @buf. */
static const char *padded(const CK_UTF8CHAR *field, size_t len, char *buf)
{
    while (len > 0 && field[len - 1] == ' ')
        len--;
    memcpy(buf, field, len);
    buf[len] = '\0';
    return buf;
}

static void fill_padded(CK_UTF8CHAR *field, size_t len, const char *s)
{
    memset(field, ' ', len);
    memcpy(field, s, strlen(s));
}

static void test_uri_parses_token_and_object(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=CA1;object=root");
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(p11_uri_get0_kit(uri));
    char buf[64];

    (void)state;
    assert_string_equal(padded(ti->label, sizeof(ti->label), buf), "CA1");
    assert_string_equal(p11_uri_get0_label(uri), "root");
    p11_uri_free(uri);
}

static void test_uri_parses_serial_manufacturer_model(void **state)
{
    p11_uri *uri = parse_ok(
        "pkcs11:serial=01ab;manufacturer=Soft%20HSM;model=SoftHSM%20v2");
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(p11_uri_get0_kit(uri));
    char buf[64];

    (void)state;
    assert_string_equal(padded(ti->serialNumber, sizeof(ti->serialNumber), buf),
                        "01ab");
    assert_string_equal(
        padded(ti->manufacturerID, sizeof(ti->manufacturerID), buf),
        "Soft HSM");
    assert_string_equal(padded(ti->model, sizeof(ti->model), buf),
                        "SoftHSM v2");
    p11_uri_free(uri);
}

static void test_uri_parses_slot_id(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:slot-id=42");

    (void)state;
    assert_int_equal(p11_kit_uri_get_slot_id(p11_uri_get0_kit(uri)), 42);
    p11_uri_free(uri);
}

static void test_uri_parses_module_name_and_path(void **state)
{
    p11_uri *uri = parse_ok(
        "pkcs11:token=a?module-name=softhsm2&module-path=/lib/softhsm2.so");

    (void)state;
    assert_string_equal(p11_uri_get0_module_name(uri), "softhsm2");
    assert_string_equal(p11_uri_get0_module_path(uri), "/lib/softhsm2.so");
    p11_uri_free(uri);
}

static void test_uri_module_accessors_are_null_when_absent(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a");

    (void)state;
    assert_null(p11_uri_get0_module_name(uri));
    assert_null(p11_uri_get0_module_path(uri));
    assert_null(p11_uri_get0_label(uri));
    p11_uri_free(uri);
}

static void test_uri_decodes_percent_encoded_id(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a;id=%01%02");
    const unsigned char *id;
    size_t len = 99;

    (void)state;
    id = p11_uri_get0_id(uri, &len);
    assert_non_null(id);
    assert_int_equal(len, 2);
    assert_memory_equal(id, "\x01\x02", 2);
    p11_uri_free(uri);
}

static void test_uri_id_is_null_with_zero_length_when_absent(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a");
    size_t len = 99;

    (void)state;
    assert_null(p11_uri_get0_id(uri, &len));
    assert_int_equal(len, 0);
    p11_uri_free(uri);
}

static void test_uri_decodes_percent_encoded_label(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:object=my%20key%3b1");

    (void)state;
    assert_string_equal(p11_uri_get0_label(uri), "my key;1");
    p11_uri_free(uri);
}

static void test_uri_maps_type_private_to_cko_private_key(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:object=k;type=private");

    (void)state;
    assert_int_equal(p11_uri_get_class(uri), CKO_PRIVATE_KEY);
    p11_uri_free(uri);
}

static void test_uri_maps_type_public_to_cko_public_key(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:object=k;type=public");

    (void)state;
    assert_int_equal(p11_uri_get_class(uri), CKO_PUBLIC_KEY);
    p11_uri_free(uri);
}

static void test_uri_maps_type_cert_to_cko_certificate(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:object=k;type=cert");

    (void)state;
    assert_int_equal(p11_uri_get_class(uri), CKO_CERTIFICATE);
    p11_uri_free(uri);
}

static void test_uri_class_is_minus_one_without_type(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:object=k");

    (void)state;
    assert_int_equal(p11_uri_get_class(uri), (CK_OBJECT_CLASS)-1);
    p11_uri_free(uri);
}

static void test_uri_pin_value_is_exposed_through_auth(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a?pin-value=1234");
    p11_auth auth;

    (void)state;
    p11_auth_from_uri(&auth, uri);
    assert_string_equal(auth.pin_value, "1234");
    assert_null(auth.pin_source);
    p11_uri_free(uri);
}

static void test_uri_pin_source_drops_file_scheme(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a?pin-source=file:/x");
    p11_auth auth;

    (void)state;
    p11_auth_from_uri(&auth, uri);
    assert_null(auth.pin_value);
    assert_string_equal(auth.pin_source, "/x");
    p11_uri_free(uri);
}

static void test_uri_pin_source_drops_file_url_scheme(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a?pin-source=file:///run/pin");
    p11_auth auth;

    (void)state;
    p11_auth_from_uri(&auth, uri);
    assert_string_equal(auth.pin_source, "/run/pin");
    p11_uri_free(uri);
}

static void test_uri_pin_source_keeps_plain_path(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a?pin-source=/etc/p11ca/pin");
    p11_auth auth;

    (void)state;
    p11_auth_from_uri(&auth, uri);
    assert_string_equal(auth.pin_source, "/etc/p11ca/pin");
    p11_uri_free(uri);
}

static void test_uri_auth_from_null_uri_is_empty(void **state)
{
    p11_auth auth = {"junk", "junk"};

    (void)state;
    p11_auth_from_uri(&auth, NULL);
    assert_null(auth.pin_value);
    assert_null(auth.pin_source);
}

static void test_uri_has_pin_is_false_without_pin(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a;object=b");

    (void)state;
    assert_false(p11_uri_has_pin(uri));
    p11_uri_free(uri);
}

static void test_uri_has_pin_with_pin_value(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a;pin-value=s3cr3t");

    (void)state;
    assert_true(p11_uri_has_pin(uri));
    p11_uri_free(uri);
}

static void test_uri_has_pin_with_pin_source(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a?pin-source=file:/x");

    (void)state;
    assert_true(p11_uri_has_pin(uri));
    p11_uri_free(uri);
}

static void test_uri_format_never_contains_pin_value(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a;pin-value=s3cr3t");
    char *s = p11_uri_format(uri);

    (void)state;
    assert_non_null(s);
    assert_null(strstr(s, "s3cr3t"));
    assert_null(strstr(s, "pin-value"));
    assert_non_null(strstr(s, "token=a"));
    free(s);
    p11_uri_free(uri);
}

static void test_uri_format_drops_pin_value_given_as_query(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a;object=k?pin-value=s3cr3t");
    char *s = p11_uri_format(uri);

    (void)state;
    assert_non_null(s);
    assert_null(strstr(s, "s3cr3t"));
    assert_null(strstr(s, "pin-value"));
    free(s);
    p11_uri_free(uri);
}

static void test_uri_format_drops_pin_source(void **state)
{
    p11_uri *uri = parse_ok("pkcs11:token=a;object=k?pin-source=/run/pin");
    char *s = p11_uri_format(uri);

    (void)state;
    assert_non_null(s);
    assert_null(strstr(s, "pin-source"));
    assert_null(strstr(s, "/run/pin"));
    /* The PIN source still reaches the login. */
    assert_true(p11_uri_has_pin(uri));
    free(s);
    p11_uri_free(uri);
    uri = parse_ok(
        "pkcs11:token=a;object=k?pin-value=s3cr3t&pin-source=/run/pin");
    s = p11_uri_format(uri);
    assert_non_null(s);
    assert_null(strstr(s, "pin"));
    assert_non_null(strstr(s, "object=k"));
    free(s);
    p11_uri_free(uri);
}

static void test_uri_format_round_trips(void **state)
{
    p11_uri *uri =
        parse_ok("pkcs11:token=CA1;object=root;id=%01%ab;type=private");
    p11_uri *again;
    const unsigned char *id;
    size_t len;
    char *s = p11_uri_format(uri);

    (void)state;
    assert_non_null(s);
    again = parse_ok(s);
    assert_string_equal(p11_uri_get0_label(again), "root");
    assert_int_equal(p11_uri_get_class(again), CKO_PRIVATE_KEY);
    id = p11_uri_get0_id(again, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(id, "\x01\xab", 2);
    free(s);
    p11_uri_free(again);
    p11_uri_free(uri);
}

static void test_uri_rejects_other_scheme(void **state)
{
    (void)state;
    parse_fails("file:/etc/key.pem", "pkcs11:");
}

static void test_uri_rejects_null(void **state)
{
    (void)state;
    parse_fails(NULL, "pkcs11:");
}

static void test_uri_rejects_bad_percent_encoding(void **state)
{
    (void)state;
    parse_fails("pkcs11:token=%zz", "encoding");
}

static void test_uri_rejects_truncated_percent_encoding(void **state)
{
    (void)state;
    parse_fails("pkcs11:id=%0", "encoding");
}

static void test_uri_rejects_unknown_attribute(void **state)
{
    (void)state;
    parse_fails("pkcs11:tokn=x", "RFC 7512");
}

static void test_uri_rejects_module_name_in_path(void **state)
{
    /* RFC 7512: module-name is a query attribute, after '?'. */
    (void)state;
    parse_fails("pkcs11:token=a;module-name=softhsm2", "RFC 7512");
}

static void test_uri_rejects_unknown_type(void **state)
{
    (void)state;
    parse_fails("pkcs11:object=k;type=bogus", "P11CA_URI_INVALID");
}

static void test_uri_rejects_repeated_attribute(void **state)
{
    (void)state;
    parse_fails("pkcs11:token=a;token=b", "token= appears twice");
    parse_fails("pkcs11:token=a;object=k;object=k", "object= appears twice");
    parse_fails("pkcs11:token=a?pin-source=/x&pin-source=/y",
                "pin-source= appears twice");
}

/* p11-kit reads what follows an empty path attribute as a query
 * attribute named after the next one (found by tests/fuzz/uri). */
static void test_uri_rejects_empty_path_attribute(void **state)
{
    p11_uri *uri = NULL;

    (void)state;
    parse_fails("pkcs11:token=CA1;;object=root", "empty attribute");
    parse_fails("pkcs11:;object=root", "empty attribute");
    parse_fails("pkcs11:token=CA1;;", "empty attribute");
    /* One ";" at the end of the path is harmless. */
    assert_int_equal(p11_uri_parse("pkcs11:token=CA1;", &uri), CKR_OK);
    p11_uri_free(uri);
    assert_int_equal(p11_uri_parse("pkcs11:object=k;?pin-value=1", &uri),
                     CKR_OK);
    assert_string_equal(p11_uri_get0_label(uri), "k");
    p11_uri_free(uri);
}

/* p11-kit drops white space: the name would not be the one given, and
 * "&\vtype=" became a query attribute "type" (found by tests/fuzz/uri). */
static void test_uri_rejects_white_space(void **state)
{
    p11_uri *uri = NULL;

    (void)state;
    parse_fails("pkcs11:object=My Key;type=private", "white space");
    parse_fails("pkcs11:object=k?l=&\vtype=", "white space");
    parse_fails("pkcs11:obj\nect=k", "white space");
    parse_fails("pkcs11:token=CA1\t", "white space");
    assert_int_equal(p11_uri_parse("pkcs11:object=My%20Key", &uri), CKR_OK);
    assert_string_equal(p11_uri_get0_label(uri), "My Key");
    p11_uri_free(uri);
}

static void test_uri_names_the_unknown_type(void **state)
{
    (void)state;
    parse_fails("pkcs11:token=a;type=banana",
                "type=banana is not an object type");
}

static void test_uri_accepts_every_type(void **state)
{
    static const char *const types[] = {"cert", "data", "private", "public",
                                        "secret-key"};
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(buf, sizeof(buf), "pkcs11:token=a;type=%s", types[i]);
        p11_uri_free(parse_ok(buf));
    }
}

static void test_uri_rejects_oversized_token_label(void **state)
{
    char buf[128];

    (void)state;
    /* 33 bytes, 11 of them percent-encoded: counted decoded. */
    snprintf(buf, sizeof(buf),
             "pkcs11:token=%%41%%41%%41%%41%%41%%41%%41%%41%%41%%41%%41%s",
             "aaaaaaaaaaaaaaaaaaaaaa");
    parse_fails(buf, "token= is 33 bytes long: at most 32 fit the token "
                     "label");
    /* 32 bytes fit. */
    p11_uri_free(parse_ok("pkcs11:token=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void test_uri_rejects_oversized_model_and_serial(void **state)
{
    (void)state;
    parse_fails("pkcs11:model=aaaaaaaaaaaaaaaaa", "model= is 17 bytes long");
    parse_fails("pkcs11:serial=aaaaaaaaaaaaaaaaa", "serial= is 17 bytes long");
}

static void test_uri_names_an_unknown_attribute(void **state)
{
    (void)state;
    parse_fails("pkcs11:tokn=x", "the attribute tokn= is not in RFC 7512");
}

static void test_uri_rejects_pin_value_with_nul(void **state)
{
    (void)state;
    parse_fails("pkcs11:token=a?pin-value=12%0034", "holds a NUL byte");
}

static void test_uri_error_names_uri_invalid_code(void **state)
{
    (void)state;
    parse_fails("http://example.com/", "P11CA_URI_INVALID");
}

static void test_uri_for_object_round_trips(void **state)
{
    /* uri.c reads only the token info; the rest may stay zero. */
    p11_token tok = {0};
    static const unsigned char id[] = {0x01, 0xab, 0xff};
    const unsigned char *got;
    CK_TOKEN_INFO *ti;
    p11_uri *uri;
    size_t len;
    char buf[64];
    char *s;

    (void)state;
    fill_padded(tok.info.label, sizeof(tok.info.label), "CA 1");
    fill_padded(tok.info.manufacturerID, sizeof(tok.info.manufacturerID),
                "Maker");
    fill_padded(tok.info.model, sizeof(tok.info.model), "M1");
    fill_padded(tok.info.serialNumber, sizeof(tok.info.serialNumber), "42");
    s = p11_uri_for_object(&tok, CKO_PRIVATE_KEY, id, sizeof(id), "root;key");
    assert_non_null(s);
    uri = parse_ok(s);
    ti = p11_kit_uri_get_token_info(p11_uri_get0_kit(uri));
    assert_string_equal(padded(ti->label, sizeof(ti->label), buf), "CA 1");
    assert_string_equal(padded(ti->serialNumber, sizeof(ti->serialNumber), buf),
                        "42");
    assert_string_equal(p11_uri_get0_label(uri), "root;key");
    assert_int_equal(p11_uri_get_class(uri), CKO_PRIVATE_KEY);
    got = p11_uri_get0_id(uri, &len);
    assert_int_equal(len, sizeof(id));
    assert_memory_equal(got, id, sizeof(id));
    free(s);
    p11_uri_free(uri);
}

static void test_uri_for_object_omits_absent_fields(void **state)
{
    p11_token tok = {0};
    p11_uri *uri;
    size_t len;
    char *s;

    (void)state;
    fill_padded(tok.info.label, sizeof(tok.info.label), "CA1");
    s = p11_uri_for_object(&tok, (CK_OBJECT_CLASS)-1, NULL, 0, NULL);
    assert_non_null(s);
    assert_null(strstr(s, "id="));
    assert_null(strstr(s, "object="));
    assert_null(strstr(s, "type="));
    uri = parse_ok(s);
    assert_int_equal(p11_uri_get_class(uri), (CK_OBJECT_CLASS)-1);
    assert_null(p11_uri_get0_id(uri, &len));
    free(s);
    p11_uri_free(uri);
}

static void test_uri_rejects_label_longer_than_max(void **state)
{
    char str[P11_MAX_LABEL_LEN + 64];

    (void)state;
    snprintf(str, sizeof(str), "pkcs11:object=");
    memset(str + 14, 'a', P11_MAX_LABEL_LEN + 1);
    str[14 + P11_MAX_LABEL_LEN + 1] = '\0';
    parse_fails(str, "at most");
}

static void test_uri_rejects_nul_in_label(void **state)
{
    (void)state;
    parse_fails("pkcs11:object=a%00b", "without NUL");
}

static void test_uri_scheme_is_case_insensitive(void **state)
{
    p11_uri *uri = parse_ok("PKCS11:token=a;object=k");

    (void)state;
    assert_string_equal(p11_uri_get0_label(uri), "k");
    p11_uri_free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_rejects_label_longer_than_max),
        cmocka_unit_test(test_uri_rejects_nul_in_label),
        cmocka_unit_test(test_uri_rejects_repeated_attribute),
        cmocka_unit_test(test_uri_rejects_empty_path_attribute),
        cmocka_unit_test(test_uri_rejects_white_space),
        cmocka_unit_test(test_uri_format_drops_pin_source),
        cmocka_unit_test(test_uri_names_the_unknown_type),
        cmocka_unit_test(test_uri_accepts_every_type),
        cmocka_unit_test(test_uri_rejects_oversized_token_label),
        cmocka_unit_test(test_uri_rejects_oversized_model_and_serial),
        cmocka_unit_test(test_uri_names_an_unknown_attribute),
        cmocka_unit_test(test_uri_rejects_pin_value_with_nul),
        cmocka_unit_test(test_uri_scheme_is_case_insensitive),
        cmocka_unit_test(test_uri_parses_token_and_object),
        cmocka_unit_test(test_uri_parses_serial_manufacturer_model),
        cmocka_unit_test(test_uri_parses_slot_id),
        cmocka_unit_test(test_uri_parses_module_name_and_path),
        cmocka_unit_test(test_uri_module_accessors_are_null_when_absent),
        cmocka_unit_test(test_uri_decodes_percent_encoded_id),
        cmocka_unit_test(test_uri_id_is_null_with_zero_length_when_absent),
        cmocka_unit_test(test_uri_decodes_percent_encoded_label),
        cmocka_unit_test(test_uri_maps_type_private_to_cko_private_key),
        cmocka_unit_test(test_uri_maps_type_public_to_cko_public_key),
        cmocka_unit_test(test_uri_maps_type_cert_to_cko_certificate),
        cmocka_unit_test(test_uri_class_is_minus_one_without_type),
        cmocka_unit_test(test_uri_pin_value_is_exposed_through_auth),
        cmocka_unit_test(test_uri_pin_source_drops_file_scheme),
        cmocka_unit_test(test_uri_pin_source_drops_file_url_scheme),
        cmocka_unit_test(test_uri_pin_source_keeps_plain_path),
        cmocka_unit_test(test_uri_auth_from_null_uri_is_empty),
        cmocka_unit_test(test_uri_has_pin_is_false_without_pin),
        cmocka_unit_test(test_uri_has_pin_with_pin_value),
        cmocka_unit_test(test_uri_has_pin_with_pin_source),
        cmocka_unit_test(test_uri_format_never_contains_pin_value),
        cmocka_unit_test(test_uri_format_drops_pin_value_given_as_query),
        cmocka_unit_test(test_uri_format_round_trips),
        cmocka_unit_test(test_uri_rejects_other_scheme),
        cmocka_unit_test(test_uri_rejects_null),
        cmocka_unit_test(test_uri_rejects_bad_percent_encoding),
        cmocka_unit_test(test_uri_rejects_truncated_percent_encoding),
        cmocka_unit_test(test_uri_rejects_unknown_attribute),
        cmocka_unit_test(test_uri_rejects_module_name_in_path),
        cmocka_unit_test(test_uri_rejects_unknown_type),
        cmocka_unit_test(test_uri_error_names_uri_invalid_code),
        cmocka_unit_test(test_uri_for_object_round_trips),
        cmocka_unit_test(test_uri_for_object_omits_absent_fields),
    };

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
