/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the service's pure parts: the sign-up token bucket (clock
 * passed in), [serve] values (rates, listen addresses), the route table
 * and matching, RFC 9457 problem details. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/internal.h"

/* ------------------------------------------------------------------ */
/* Token bucket                                                        */
/* ------------------------------------------------------------------ */

static void bucket(struct srv_bucket *b, const char *spec, int64_t now)
{
    struct srv_rate r;

    assert_int_equal(srv_rate_parse(spec, &r), 0);
    srv_bucket_init(b, &r, now);
}

static void test_bucket_admits_the_burst_then_refuses(void **state)
{
    struct srv_bucket b;
    unsigned retry = 0;

    (void)state;
    bucket(&b, "15/15", 1000);
    for (int i = 0; i < 15; i++)
        assert_true(srv_bucket_take(&b, 1000, NULL));
    assert_false(srv_bucket_take(&b, 1000, &retry));
    assert_int_equal(retry, 1);
}

static void test_bucket_burst_of_100_admits_exactly_burst(void **state)
{
    struct srv_bucket b;
    int admitted = 0;

    (void)state;
    bucket(&b, "0/10", 0);
    /* No refill: the clock may run, the count stays the burst. */
    for (int i = 0; i < 100; i++)
        admitted += srv_bucket_take(&b, (int64_t)i * 1000, NULL);
    assert_int_equal(admitted, 10);
}

static void test_bucket_refills_at_its_rate(void **state)
{
    struct srv_bucket b;
    unsigned retry = 0;

    (void)state;
    bucket(&b, "2/1", 0);
    assert_true(srv_bucket_take(&b, 0, NULL));
    assert_false(srv_bucket_take(&b, 499, &retry)); /* 0.998 tokens */
    assert_int_equal(retry, 1);
    assert_true(srv_bucket_take(&b, 500, NULL));
    assert_false(srv_bucket_take(&b, 500, NULL));
    /* A long pause fills it to the burst, not beyond. */
    assert_true(srv_bucket_take(&b, 100000, NULL));
    assert_false(srv_bucket_take(&b, 100000, NULL));
}

static void test_bucket_retry_after_counts_whole_seconds(void **state)
{
    struct srv_bucket b;
    unsigned retry = 0;

    (void)state;
    bucket(&b, "0.25/1", 0);
    assert_true(srv_bucket_take(&b, 0, NULL));
    assert_false(srv_bucket_take(&b, 0, &retry));
    assert_int_equal(retry, 4);
    assert_false(srv_bucket_take(&b, 1000, &retry));
    assert_int_equal(retry, 3);
}

static void test_bucket_without_refill_says_retry_max(void **state)
{
    struct srv_bucket b;
    unsigned retry = 0;

    (void)state;
    bucket(&b, "0/1", 0);
    assert_true(srv_bucket_take(&b, 0, NULL));
    assert_false(srv_bucket_take(&b, 3600000, &retry));
    assert_int_equal(retry, SRV_RETRY_AFTER_MAX_S);
}

static void test_bucket_off_admits_everything(void **state)
{
    struct srv_bucket b;

    (void)state;
    bucket(&b, "off", 0);
    for (int i = 0; i < 1000; i++)
        assert_true(srv_bucket_take(&b, 0, NULL));
}

static void test_bucket_new_rate_keeps_what_is_left(void **state)
{
    struct srv_bucket b;
    struct srv_rate r;

    (void)state;
    bucket(&b, "0/10", 0);
    for (int i = 0; i < 7; i++)
        assert_true(srv_bucket_take(&b, 0, NULL));
    assert_int_equal(srv_rate_parse("0/2", &r), 0);
    srv_bucket_set_rate(&b, &r, 0); /* 3 left, capped at the new burst */
    assert_true(srv_bucket_take(&b, 0, NULL));
    assert_true(srv_bucket_take(&b, 0, NULL));
    assert_false(srv_bucket_take(&b, 0, NULL));
}

/* Profile buckets: one per profile.NAME, a profile without one unlimited,
 * a refund gives a token back, new settings keep what is left. */
static void profile_limits(struct srv_config *cfg, const char *name,
                           const char *spec)
{
    static struct srv_profile_rate pr[1];

    memset(cfg, 0, sizeof(*cfg));
    pr[0].profile = (char *)name;
    assert_int_equal(srv_rate_parse(spec, &pr[0].rate), 0);
    cfg->profile_rates = pr;
    cfg->n_profile_rates = 1;
}

static void test_profile_buckets_limit_named_profiles_only(void **state)
{
    struct srv_profile_buckets pb = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct srv_config cfg;
    unsigned retry = 0;

    (void)state;
    profile_limits(&cfg, "client", "0/2");
    assert_int_equal(srv_profile_buckets_set(&pb, &cfg, 0), 0);
    assert_true(srv_profile_take(&pb, "client", NULL));
    assert_true(srv_profile_take(&pb, "client", NULL));
    assert_false(srv_profile_take(&pb, "client", &retry));
    assert_int_equal(retry, SRV_RETRY_AFTER_MAX_S);
    for (int i = 0; i < 100; i++)
        assert_true(srv_profile_take(&pb, "server", NULL));
    srv_profile_refund(&pb, "client");
    assert_true(srv_profile_take(&pb, "client", NULL));
    assert_false(srv_profile_take(&pb, "client", NULL));
    /* A reload with a larger burst keeps what is left (nothing). */
    profile_limits(&cfg, "client", "0/5");
    assert_int_equal(srv_profile_buckets_set(&pb, &cfg, 0), 0);
    assert_false(srv_profile_take(&pb, "client", NULL));
    profile_limits(&cfg, "client", "off");
    assert_int_equal(srv_profile_buckets_set(&pb, &cfg, 0), 0);
    assert_true(srv_profile_take(&pb, "client", NULL));
    srv_profile_buckets_free(&pb);
}

static void test_client_id_check(void **state)
{
    char why[256], id[300];

    (void)state;
    assert_true(srv_client_id_check("pump-1", why, sizeof(why)));
    assert_true(srv_client_id_check("Pump Two/\xc3\xbc", why, sizeof(why)));
    memset(id, 'x', 255);
    id[255] = '\0';
    assert_true(srv_client_id_check(id, why, sizeof(why)));
    id[255] = 'x';
    id[256] = '\0';
    assert_false(srv_client_id_check(id, why, sizeof(why)));
    assert_non_null(strstr(why, "1 to 255 bytes; this one has 256"));
    assert_false(srv_client_id_check("", why, sizeof(why)));
    assert_false(srv_client_id_check("a\tb", why, sizeof(why)));
    assert_non_null(strstr(why, "byte 2 is 0x09"));
    assert_false(srv_client_id_check("a\x7f", why, sizeof(why)));
}

static void test_rate_parse_forms(void **state)
{
    struct srv_rate r;

    (void)state;
    assert_int_equal(srv_rate_parse("15", &r), 0);
    assert_true(r.per_sec == 15 && r.burst == 15 && !r.unlimited);
    assert_int_equal(srv_rate_parse("0.5", &r), 0);
    assert_true(r.per_sec == 0.5 && r.burst == 1);
    assert_int_equal(srv_rate_parse("2.5/40", &r), 0);
    assert_true(r.per_sec == 2.5 && r.burst == 40);
    assert_int_equal(srv_rate_parse("OFF", &r), 0);
    assert_true(r.unlimited);
}

static void test_rate_parse_refuses_bad_values(void **state)
{
    static const char *const bad[] = {"",    "x",     "-1",  "5/0", "5/",
                                      "5/x", "5 / 6", "1e9", "/5",  "5/5/5"};
    struct srv_rate r;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (srv_rate_parse(bad[i], &r) != -1)
            fail_msg("\"%s\" was taken", bad[i]);
}

/* ------------------------------------------------------------------ */
/* Listen addresses                                                    */
/* ------------------------------------------------------------------ */

static void test_listen_parse_forms(void **state)
{
    struct srv_listen l;

    (void)state;
    assert_int_equal(srv_listen_parse("127.0.0.1:8443", &l), 0);
    assert_string_equal(l.host, "127.0.0.1");
    assert_int_equal(l.port, 8443);
    assert_int_equal(srv_listen_parse("[::1]:443", &l), 0);
    assert_string_equal(l.host, "::1");
    assert_int_equal(l.port, 443);
    assert_int_equal(srv_listen_parse(":8443", &l), 0);
    assert_string_equal(l.host, "0.0.0.0");
}

static void test_listen_parse_refuses_bad_values(void **state)
{
    static const char *const bad[] = {
        "localhost:80", "1.2.3.4:0", "1.2.3.4:70000", "[::1]8443", "::1:8443",
        "1.2.3.4",      "[::1]:",    "1.2.3.4:80x",   "[]:80",     "",
    };
    struct srv_listen l;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (srv_listen_parse(bad[i], &l) != -1)
            fail_msg("\"%s\" was taken", bad[i]);
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */
/* ------------------------------------------------------------------ */

static int match(enum evhttp_cmd_type m, const char *path, const char **p,
                 char *allow)
{
    static char buf[512];

    return srv_route_match(m, path, buf, sizeof(buf), p, allow, 128);
}

static const char *pattern_of(int idx)
{
    assert_true(idx >= 0);
    return srv_route_at((size_t)idx)->pattern;
}

static void test_route_table_is_well_formed(void **state)
{
    size_t n = srv_route_count();

    (void)state;
    assert_true(n >= 13);
    assert_null(srv_route_at(n));
    for (size_t i = 0; i < n; i++) {
        const struct srv_route *r = srv_route_at(i);

        assert_non_null(r->fn);
        assert_int_equal(r->pattern[0], '/');
        assert_true(r->min_role <= SRV_ROLE_ADMIN);
        /* Public routes need no self rule; management routes need a role
         * above device. */
        assert_false(r->self && r->min_role == SRV_ROLE_ANON);
        for (size_t k = 0; k < i; k++)
            if (srv_route_at(k)->method == r->method
                && strcmp(srv_route_at(k)->pattern, r->pattern) == 0)
                fail_msg("route %s listed twice", r->pattern);
    }
}

static void test_route_match_params(void **state)
{
    const char *p[SRV_MAX_PARAMS] = {NULL};
    char allow[128];
    int i;

    (void)state;
    i = match(EVHTTP_REQ_GET, "/v1/certs", p, allow);
    assert_string_equal(pattern_of(i), "/v1/certs");
    i = match(EVHTTP_REQ_GET, "/v1/certs/", p, allow);
    assert_string_equal(pattern_of(i), "/v1/certs");
    i = match(EVHTTP_REQ_GET, "/v1/certs/0aB1", p, allow);
    assert_string_equal(pattern_of(i), "/v1/certs/{serial}");
    assert_string_equal(p[0], "0aB1");
    i = match(EVHTTP_REQ_POST, "/v1/certs/ff/revoke", p, allow);
    assert_string_equal(pattern_of(i), "/v1/certs/{serial}/revoke");
    assert_string_equal(p[0], "ff");
    i = match(EVHTTP_REQ_PATCH, "/v1/cas/3", p, allow);
    assert_string_equal(pattern_of(i), "/v1/cas/{id}");
    assert_string_equal(p[0], "3");
    assert_int_equal(srv_route_at((size_t)i)->min_role, SRV_ROLE_ADMIN);
}

static void test_route_match_405_lists_methods(void **state)
{
    const char *p[SRV_MAX_PARAMS] = {NULL};
    char allow[128];

    (void)state;
    assert_int_equal(match(EVHTTP_REQ_PUT, "/v1/certs", p, allow), -2);
    assert_string_equal(allow, "GET, POST");
    assert_int_equal(match(EVHTTP_REQ_GET, "/v1/certs/ab/revoke", p, allow),
                     -2);
    assert_string_equal(allow, "POST");
    assert_int_equal(match(EVHTTP_REQ_POST, "/v1/cas/1", p, allow), -2);
    assert_string_equal(allow, "PATCH");
}

static void test_route_match_404(void **state)
{
    static const char *const paths[] = {
        "/",
        "/v1",
        "/v1/certs/ab/frobnicate",
        "/v2/certs",
        "//v1/certs",
        "/v1/certs//revoke",
        "v1/certs",
        "/v1/certsx",
        "/healthz/x",
        "/v1/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
    };
    const char *p[SRV_MAX_PARAMS] = {NULL};
    char allow[128];

    (void)state;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (match(EVHTTP_REQ_GET, paths[i], p, allow) != -1)
            fail_msg("%s matched a route", paths[i]);
}

/* ------------------------------------------------------------------ */
/* Problem details                                                     */
/* ------------------------------------------------------------------ */

static void test_problem_json_has_rfc9457_members(void **state)
{
    json_t *j = srv_problem_json(409, "lifecycle", "certificate 1 is revoked");

    (void)state;
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "urn:p11ca:problem:lifecycle");
    assert_string_equal(json_string_value(json_object_get(j, "title")),
                        "Conflict");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 409);
    assert_string_equal(json_string_value(json_object_get(j, "detail")),
                        "certificate 1 is revoked");
    assert_string_equal(json_string_value(json_object_get(j, "code")),
                        "lifecycle");
    json_decref(j);
}

static void test_status_titles(void **state)
{
    static const struct {
        int status;
        const char *title;
    } t[] = {
        {400, "Bad Request"},         {401, "Unauthorized"},
        {403, "Forbidden"},           {404, "Not Found"},
        {405, "Method Not Allowed"},  {409, "Conflict"},
        {413, "Content Too Large"},   {429, "Too Many Requests"},
        {503, "Service Unavailable"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        assert_string_equal(srv_status_title(t[i].status), t[i].title);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_admits_the_burst_then_refuses),
        cmocka_unit_test(test_bucket_burst_of_100_admits_exactly_burst),
        cmocka_unit_test(test_bucket_refills_at_its_rate),
        cmocka_unit_test(test_bucket_retry_after_counts_whole_seconds),
        cmocka_unit_test(test_bucket_without_refill_says_retry_max),
        cmocka_unit_test(test_bucket_off_admits_everything),
        cmocka_unit_test(test_bucket_new_rate_keeps_what_is_left),
        cmocka_unit_test(test_profile_buckets_limit_named_profiles_only),
        cmocka_unit_test(test_client_id_check),
        cmocka_unit_test(test_rate_parse_forms),
        cmocka_unit_test(test_rate_parse_refuses_bad_values),
        cmocka_unit_test(test_listen_parse_forms),
        cmocka_unit_test(test_listen_parse_refuses_bad_values),
        cmocka_unit_test(test_route_table_is_well_formed),
        cmocka_unit_test(test_route_match_params),
        cmocka_unit_test(test_route_match_405_lists_methods),
        cmocka_unit_test(test_route_match_404),
        cmocka_unit_test(test_problem_json_has_rfc9457_members),
        cmocka_unit_test(test_status_titles),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
