/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of waiting for a token that is away: the bound's syntax and
 * sources, the backoff on an injected clock, which URIs name a token and
 * which codes say a token is not there. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "p11/internal.h"
#include "p11/p11.h"

static long parse_ok(const char *s)
{
    long ms = 12345;

    assert_int_equal(p11_token_wait_parse(s, &ms), CKR_OK);
    return ms;
}

static void parse_bad(const char *s)
{
    long ms = 12345;

    p11_error_clear();
    assert_int_equal(p11_token_wait_parse(s, &ms), P11_RV_BAD_INPUT);
    assert_int_equal(ms, 0);
    assert_non_null(strstr(p11_error_message(), "token wait"));
}

static void test_wait_parse_whole_seconds(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("5"), 5000);
    assert_int_equal(parse_ok("600"), 600000);
}

static void test_wait_parse_decimals(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2.5"), 2500);
    assert_int_equal(parse_ok("0.25"), 250);
    assert_int_equal(parse_ok("0.001"), 1);
}

static void test_wait_parse_zero_means_no_wait(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("0"), P11_TOKEN_WAIT_NONE);
    assert_int_equal(parse_ok("0.000"), P11_TOKEN_WAIT_NONE);
}

static void test_wait_parse_rejects_garbage(void **state)
{
    (void)state;
    parse_bad("");
    parse_bad("abc");
    parse_bad("-1");
    parse_bad("5s");
    parse_bad("1.");
    parse_bad(".5");
    parse_bad("1.0001"); /* finer than a millisecond */
    parse_bad("601");
    parse_bad("600.001");
    parse_bad("99999999999999999999");
    parse_bad(NULL);
}

static void test_wait_resolve_precedence(void **state)
{
    (void)state;
    unsetenv("P11CA_TOKEN_WAIT");
    assert_int_equal(p11_token_wait_resolve(0), P11_TOKEN_WAIT_DEFAULT_MS);
    assert_int_equal(p11_token_wait_resolve(1500), 1500);
    assert_int_equal(p11_token_wait_resolve(P11_TOKEN_WAIT_NONE), 0);
    setenv("P11CA_TOKEN_WAIT", "0.5", 1);
    assert_int_equal(p11_token_wait_resolve(0), 500);
    assert_int_equal(p11_token_wait_resolve(1500), 1500); /* config first */
    setenv("P11CA_TOKEN_WAIT", "0", 1);
    assert_int_equal(p11_token_wait_resolve(0), 0);
    setenv("P11CA_TOKEN_WAIT", "soon", 1); /* ignored: the default */
    assert_int_equal(p11_token_wait_resolve(0), P11_TOKEN_WAIT_DEFAULT_MS);
    unsetenv("P11CA_TOKEN_WAIT");
}

/* Pauses double from 10 ms up to 200 ms, on the clock the test gives. */
static void test_wait_backoff_doubles_to_the_cap(void **state)
{
    static const long want[] = {10, 20, 40, 80, 160, 200, 200, 200};
    struct p11_wait w;
    uint64_t now = 1000;

    (void)state;
    p11_wait_start(&w, 5000, now);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        long p = p11_wait_next(&w, now);
        assert_int_equal(p, want[i]);
        now += (uint64_t)p;
    }
    assert_int_equal(w.rounds, 8);
    assert_int_equal(p11_wait_elapsed(&w, now), 910);
}

static void test_wait_never_sleeps_past_the_bound(void **state)
{
    struct p11_wait w;

    (void)state;
    p11_wait_start(&w, 25, 0);
    assert_int_equal(p11_wait_next(&w, 0), 10);
    assert_int_equal(p11_wait_next(&w, 10), 15); /* 20 would pass 25 */
    assert_int_equal(p11_wait_next(&w, 25), -1);
    assert_int_equal(p11_wait_next(&w, 400), -1);
}

static void test_wait_clock_jumps_end_it(void **state)
{
    struct p11_wait w;

    (void)state;
    /* A machine that stalled past the bound: no pause, the wait is over. */
    p11_wait_start(&w, 5000, 100);
    assert_int_equal(p11_wait_next(&w, 100 + 5000), -1);
}

static void test_wait_unstarted_or_zero_bound_gives_up(void **state)
{
    struct p11_wait w = {0};

    (void)state;
    assert_int_equal(p11_wait_next(&w, 0), -1);
    assert_false(p11_wait_pause(&w, 0));
    assert_false(w.started);
    p11_wait_start(&w, 0, 50);
    assert_int_equal(p11_wait_next(&w, 50), -1);
}

static void test_wait_pause_sleeps_and_ends(void **state)
{
    struct p11_wait w = {0};
    unsigned pauses = 0;

    (void)state;
    /* A real 30 ms bound: a few pauses, then over (no count asserted:
     * that would depend on the machine's speed). */
    while (p11_wait_pause(&w, 30))
        pauses++;
    assert_true(pauses >= 1);
    assert_true(w.started);
    assert_true(p11_wait_elapsed(&w, p11_now_ms()) >= 30);
}

static bool names(const char *s)
{
    p11_uri *uri = NULL;
    bool r;

    assert_int_equal(p11_uri_parse(s, &uri), CKR_OK);
    r = p11_uri_names_token(uri);
    p11_uri_free(uri);
    return r;
}

static void test_uri_names_token(void **state)
{
    (void)state;
    assert_true(names("pkcs11:token=CA1"));
    assert_true(names("pkcs11:token="));
    assert_true(names("pkcs11:serial=01ab;object=k"));
    assert_true(names("pkcs11:model=SoftHSM%20v2"));
    assert_true(names("pkcs11:manufacturer=SoftHSM%20project"));
    assert_true(names("pkcs11:slot-id=3"));
    assert_true(names("pkcs11:slot-description=reader"));
    assert_true(names("pkcs11:slot-manufacturer=acme"));
}

static void test_uri_names_no_token(void **state)
{
    (void)state;
    assert_false(names("pkcs11:"));
    assert_false(names("pkcs11:object=k;type=private"));
    assert_false(names("pkcs11:id=%01"));
    assert_false(names("pkcs11:?pin-source=/dev/null"));
    assert_false(names("pkcs11:object=k?module-name=softhsm2"));
    assert_false(names("pkcs11:library-manufacturer=SoftHSM"));
    assert_false(p11_uri_names_token(NULL));
}

static void test_rv_token_away(void **state)
{
    (void)state;
    assert_true(p11_rv_token_away(CKR_TOKEN_NOT_PRESENT));
    assert_true(p11_rv_token_away(CKR_TOKEN_NOT_RECOGNIZED));
    assert_true(p11_rv_token_away(CKR_DEVICE_REMOVED));
    assert_true(p11_rv_token_away(CKR_SLOT_ID_INVALID));
    assert_false(p11_rv_token_away(CKR_OK));
    assert_false(p11_rv_token_away(CKR_PIN_INCORRECT));
    assert_false(p11_rv_token_away(CKR_DEVICE_ERROR));
    assert_false(p11_rv_token_away(CKR_GENERAL_ERROR));
    /* Recovered by re-initialising, not a token that is away. */
    assert_false(p11_rv_token_away(CKR_CRYPTOKI_NOT_INITIALIZED));
    assert_true(p11_rv_token_lost(CKR_CRYPTOKI_NOT_INITIALIZED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_parse_whole_seconds),
        cmocka_unit_test(test_wait_parse_decimals),
        cmocka_unit_test(test_wait_parse_zero_means_no_wait),
        cmocka_unit_test(test_wait_parse_rejects_garbage),
        cmocka_unit_test(test_wait_resolve_precedence),
        cmocka_unit_test(test_wait_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_wait_never_sleeps_past_the_bound),
        cmocka_unit_test(test_wait_clock_jumps_end_it),
        cmocka_unit_test(test_wait_unstarted_or_zero_bound_gives_up),
        cmocka_unit_test(test_wait_pause_sleeps_and_ends),
        cmocka_unit_test(test_uri_names_token),
        cmocka_unit_test(test_uri_names_no_token),
        cmocka_unit_test(test_rv_token_away),
    };

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
