/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the CLI helpers: status and exit codes, hex ids, URIs,
 * escaping for the terminal. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "cli/cli.h"

/* ---- cli_rc_from_rv ---- */

static void test_cli_rc_ok_is_ok(void **state)
{
    (void)state;
    assert_int_equal(cli_rc_from_rv(CKR_OK), P11CA_OK);
}

static void test_cli_rc_bad_uri_is_input(void **state)
{
    (void)state;
    assert_int_equal(cli_rc_from_rv(P11_RV_URI_INVALID), P11CA_E_INPUT);
    assert_int_equal(cli_rc_from_rv(P11_RV_BAD_INPUT), P11CA_E_INPUT);
    assert_int_equal(cli_rc_from_rv(P11_RV_AMBIGUOUS), P11CA_E_INPUT);
    assert_int_equal(cli_rc_from_rv(P11_RV_EXISTS), P11CA_E_INPUT);
}

static void test_cli_rc_pin_problems_are_pin(void **state)
{
    static const CK_RV pin_rvs[] = {
        CKR_PIN_INCORRECT,  CKR_PIN_INVALID, CKR_PIN_LEN_RANGE,
        CKR_PIN_EXPIRED,    CKR_PIN_LOCKED,  P11_RV_PIN_SOURCE,
        P11_RV_PIN_REFUSED, P11_RV_NO_PIN,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(pin_rvs) / sizeof(pin_rvs[0]); i++)
        assert_int_equal(cli_rc_from_rv(pin_rvs[i]), P11CA_E_PIN);
}

static void test_cli_rc_token_problems_are_token(void **state)
{
    (void)state;
    assert_int_equal(cli_rc_from_rv(P11_RV_NO_TOKEN), P11CA_E_TOKEN);
    assert_int_equal(cli_rc_from_rv(P11_RV_NO_OBJECT), P11CA_E_TOKEN);
    assert_int_equal(cli_rc_from_rv(P11_RV_NO_MODULE), P11CA_E_TOKEN);
    assert_int_equal(cli_rc_from_rv(CKR_DEVICE_REMOVED), P11CA_E_TOKEN);
    assert_int_equal(cli_rc_from_rv(CKR_GENERAL_ERROR), P11CA_E_TOKEN);
}

static void test_cli_rc_host_memory_is_nomem(void **state)
{
    (void)state;
    assert_int_equal(cli_rc_from_rv(CKR_HOST_MEMORY), P11CA_E_NOMEM);
}

/* ---- p11ca_exit_code / p11ca_strerror ---- */

static void test_cli_exit_code_of_each_class(void **state)
{
    (void)state;
    assert_int_equal(p11ca_exit_code(P11CA_OK), 0);
    assert_int_equal(p11ca_exit_code(P11CA_E_USAGE), 1);
    assert_int_equal(p11ca_exit_code(P11CA_E_INPUT), 2);
    assert_int_equal(p11ca_exit_code(P11CA_E_TOKEN), 3);
    assert_int_equal(p11ca_exit_code(P11CA_E_REGISTRY), 4);
    assert_int_equal(p11ca_exit_code(P11CA_E_INTERNAL), 5);
}

static void test_cli_exit_code_of_pin_error_is_token_exit(void **state)
{
    (void)state;
    assert_int_equal(p11ca_exit_code(P11CA_E_PIN), 3);
}

static void test_cli_exit_code_of_unknown_status_is_internal(void **state)
{
    (void)state;
    assert_int_equal(p11ca_exit_code(-1000), P11CA_EXIT_INTERNAL);
    assert_int_equal(p11ca_exit_code(P11CA_E_NOMEM), P11CA_EXIT_INTERNAL);
}

static void test_cli_strerror_has_text_for_every_status(void **state)
{
    (void)state;
    for (int rc = P11CA_OK; rc >= P11CA_E_IO; rc--)
        assert_string_not_equal(p11ca_strerror(rc), "unknown error");
    assert_string_equal(p11ca_strerror(-1000), "unknown error");
}

/* ---- cli_parse_hex / cli_hex ---- */

static void test_cli_parse_hex_plain(void **state)
{
    unsigned char buf[8];

    (void)state;
    assert_int_equal(cli_parse_hex("01ab", buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "\x01\xab", 2);
}

static void test_cli_parse_hex_with_colons(void **state)
{
    unsigned char buf[8];

    (void)state;
    assert_int_equal(cli_parse_hex("01:ab", buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "\x01\xab", 2);
}

static void test_cli_parse_hex_upper_case(void **state)
{
    unsigned char buf[8];

    (void)state;
    assert_int_equal(cli_parse_hex("01AB", buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "\x01\xab", 2);
}

static void test_cli_parse_hex_refuses_odd_length(void **state)
{
    unsigned char buf[8];

    (void)state;
    assert_int_equal(cli_parse_hex("01a", buf, sizeof(buf)), -1);
    assert_int_equal(cli_parse_hex("0:1", buf, sizeof(buf)), -1);
}

static void test_cli_parse_hex_refuses_non_hex(void **state)
{
    unsigned char buf[8];

    (void)state;
    assert_int_equal(cli_parse_hex("0g", buf, sizeof(buf)), -1);
    assert_int_equal(cli_parse_hex("zz", buf, sizeof(buf)), -1);
    assert_int_equal(cli_parse_hex("01 ab", buf, sizeof(buf)), -1);
}

static void test_cli_parse_hex_refuses_empty(void **state)
{
    unsigned char buf[8];

    (void)state;
    assert_int_equal(cli_parse_hex("", buf, sizeof(buf)), -1);
    assert_int_equal(cli_parse_hex(":", buf, sizeof(buf)), -1);
}

static void test_cli_parse_hex_accepts_exactly_max(void **state)
{
    unsigned char buf[3];

    (void)state;
    assert_int_equal(cli_parse_hex("010203", buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "\x01\x02\x03", 3);
}

static void test_cli_parse_hex_refuses_too_long(void **state)
{
    /* One byte of guard after the buffer: it must stay untouched. */
    unsigned char buf[4] = {0, 0, 0, 0xee};

    (void)state;
    assert_int_equal(cli_parse_hex("01020304", buf, 3), -1);
    assert_int_equal(buf[3], 0xee);
}

static void test_cli_hex_is_lower_case(void **state)
{
    char *s = cli_hex((const unsigned char *)"\x01\xab\xff", 3);

    (void)state;
    assert_non_null(s);
    assert_string_equal(s, "01abff");
    free(s);
}

static void test_cli_hex_of_nothing_is_empty(void **state)
{
    char *s = cli_hex(NULL, 0);

    (void)state;
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

/* ---- cli_parse_uri / cli_cmd_find ---- */

static void test_cli_parse_uri_null_is_no_uri(void **state)
{
    p11_uri *uri = (p11_uri *)&uri; /* must be reset */

    (void)state;
    assert_int_equal(cli_parse_uri(NULL, &uri), P11CA_OK);
    assert_null(uri);
}

static void test_cli_parse_uri_valid(void **state)
{
    p11_uri *uri = NULL;

    (void)state;
    assert_int_equal(cli_parse_uri("pkcs11:token=CA1;object=root", &uri),
                     P11CA_OK);
    assert_non_null(uri);
    assert_string_equal(p11_uri_get0_label(uri), "root");
    p11_uri_free(uri);
}

static void test_cli_parse_uri_invalid_is_input_error(void **state)
{
    p11_uri *uri = NULL;

    (void)state;
    /* Prints "p11ca: bad URI: ..." on stderr, which is fine for TAP. */
    assert_int_equal(cli_parse_uri("pkcs11:tokn=x", &uri), P11CA_E_INPUT);
    assert_null(uri);
    assert_int_equal(p11_error_rv(), P11_RV_URI_INVALID);
}

static int dummy_run(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    return P11CA_OK;
}

static const struct cli_cmd test_cmds[] = {
    {"token", "list", "", "list tokens", "", dummy_run},
    {"token", "init", "LABEL", "initialise a token", "", dummy_run},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static void test_cli_cmd_find_by_verb(void **state)
{
    const struct cli_cmd *c = cli_cmd_find(test_cmds, "init");

    (void)state;
    assert_ptr_equal(c, &test_cmds[1]);
}

static void test_cli_cmd_find_unknown_verb_is_null(void **state)
{
    (void)state;
    assert_null(cli_cmd_find(test_cmds, "lst"));
    assert_null(cli_cmd_find(test_cmds, NULL));
}

/* ---- cli_esc ---- */

static void test_cli_esc_escapes_c0_and_del(void **state)
{
    (void)state;
    assert_string_equal(cli_esc("a\x1b[2Jb\nc\td\x7f\x07"),
                        "a\\x1b[2Jb\\x0ac\\x09d\\x7f\\x07");
}

static void test_cli_esc_keeps_utf8_and_backslashes(void **state)
{
    (void)state;
    /* "Zoë", "名前", an RFC 2253 escape: printed as they are. */
    assert_string_equal(cli_esc("Zo\xc3\xab \xe5\x90\x8d\xe5\x89\x8d "
                                "CN=a\\,b\\1B"),
                        "Zo\xc3\xab \xe5\x90\x8d\xe5\x89\x8d CN=a\\,b\\1B");
}

/* A subject: RFC 2253 specials escaped by cli_name_show, control
 * characters once, by cli_esc, in p11ca's one notation. */
static void test_cli_name_show_then_esc_escapes_once(void **state)
{
    X509_NAME *n = X509_NAME_new();
    char *s;

    (void)state;
    assert_non_null(n);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                                (const unsigned char *)"Ex", -1,
                                                -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_txt(
                         n, "CN", MBSTRING_UTF8,
                         (const unsigned char *)"a,b\x1b[2J\n", -1, -1, 0),
                     1);
    s = cli_name_show(n);
    assert_non_null(s);
    assert_string_equal(s, "O=Ex, CN=a\\,b\x1b[2J\n");
    assert_string_equal(cli_esc(s), "O=Ex, CN=a\\,b\\x1b[2J\\x0a");
    free(s);
    X509_NAME_free(n);
}

static void test_cli_esc_escapes_c1_and_bidi(void **state)
{
    (void)state;
    /* U+009B (CSI), U+202E (right-to-left override), U+2028. */
    assert_string_equal(cli_esc("a\xc2\x9b"
                                "1mb\xe2\x80\xaegpj.exe\xe2\x80\xa8"),
                        "a\\u009b1mb\\u202egpj.exe\\u2028");
}

static void test_cli_esc_escapes_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    /* A lone C1 byte (CSI in 8-bit terminals), a cut sequence, an
     * overlong "/" and a surrogate. */
    assert_string_equal(cli_esc("\x9b"
                                "2J \xe5\x90 \xc0\xaf \xed\xa0\x80"),
                        "\\x9b2J \\xe5\\x90 \\xc0\\xaf \\xed\\xa0\\x80");
}

static void test_cli_esc_null_and_empty(void **state)
{
    (void)state;
    assert_string_equal(cli_esc(NULL), "");
    assert_string_equal(cli_esc(""), "");
}

static void test_cli_esc_results_coexist_in_one_printf(void **state)
{
    const char *r[CLI_ESC_SLOTS];
    char want[8];

    (void)state;
    for (int i = 0; i < CLI_ESC_SLOTS; i++) {
        snprintf(want, sizeof(want), "s%d\n", i);
        r[i] = cli_esc(want);
    }
    for (int i = 0; i < CLI_ESC_SLOTS; i++) {
        snprintf(want, sizeof(want), "s%d\\x0a", i);
        assert_string_equal(r[i], want);
    }
}

static void test_cli_esc_cuts_long_text(void **state)
{
    char *big = malloc(3 * CLI_ESC_MAX);
    const char *r;

    (void)state;
    assert_non_null(big);
    memset(big, '\x1b', 3 * CLI_ESC_MAX - 1);
    big[3 * CLI_ESC_MAX - 1] = '\0';
    r = cli_esc(big);
    assert_true(strlen(r) < CLI_ESC_MAX);
    assert_string_equal(r + strlen(r) - 3, "...");
    assert_null(strchr(r, '\x1b'));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_rc_ok_is_ok),
        cmocka_unit_test(test_cli_rc_bad_uri_is_input),
        cmocka_unit_test(test_cli_rc_pin_problems_are_pin),
        cmocka_unit_test(test_cli_rc_token_problems_are_token),
        cmocka_unit_test(test_cli_rc_host_memory_is_nomem),
        cmocka_unit_test(test_cli_exit_code_of_each_class),
        cmocka_unit_test(test_cli_exit_code_of_pin_error_is_token_exit),
        cmocka_unit_test(test_cli_exit_code_of_unknown_status_is_internal),
        cmocka_unit_test(test_cli_strerror_has_text_for_every_status),
        cmocka_unit_test(test_cli_parse_hex_plain),
        cmocka_unit_test(test_cli_parse_hex_with_colons),
        cmocka_unit_test(test_cli_parse_hex_upper_case),
        cmocka_unit_test(test_cli_parse_hex_refuses_odd_length),
        cmocka_unit_test(test_cli_parse_hex_refuses_non_hex),
        cmocka_unit_test(test_cli_parse_hex_refuses_empty),
        cmocka_unit_test(test_cli_parse_hex_accepts_exactly_max),
        cmocka_unit_test(test_cli_parse_hex_refuses_too_long),
        cmocka_unit_test(test_cli_hex_is_lower_case),
        cmocka_unit_test(test_cli_hex_of_nothing_is_empty),
        cmocka_unit_test(test_cli_parse_uri_null_is_no_uri),
        cmocka_unit_test(test_cli_parse_uri_valid),
        cmocka_unit_test(test_cli_parse_uri_invalid_is_input_error),
        cmocka_unit_test(test_cli_cmd_find_by_verb),
        cmocka_unit_test(test_cli_cmd_find_unknown_verb_is_null),
        cmocka_unit_test(test_cli_esc_escapes_c0_and_del),
        cmocka_unit_test(test_cli_esc_keeps_utf8_and_backslashes),
        cmocka_unit_test(test_cli_name_show_then_esc_escapes_once),
        cmocka_unit_test(test_cli_esc_escapes_c1_and_bidi),
        cmocka_unit_test(test_cli_esc_escapes_bytes_that_are_not_utf8),
        cmocka_unit_test(test_cli_esc_null_and_empty),
        cmocka_unit_test(test_cli_esc_results_coexist_in_one_printf),
        cmocka_unit_test(test_cli_esc_cuts_long_text),
    };

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
