/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the registry's rules: client-ID uniqueness, lifecycle
 * transitions, deletion, history, rate limit, batches. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "registry/internal.h"
#include "registry/registry.h"
#include "treg.h"

/* ------------------------------------------------------------------ */
/* Client IDs                                                          */
/* ------------------------------------------------------------------ */

static void test_registry_client_id_shared_while_not_activated(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_NOT_ACTIVATED);
    treg_record(t, "2", "alice", REG_NOT_ACTIVATED);
    assert_int_equal(treg_count(t, &(reg_filter){.client_id = "alice"}), 2);
}

static void test_registry_activate_refused_when_client_id_held(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_NOT_ACTIVATED);
    treg_record(t, "2", "alice", REG_NOT_ACTIVATED);
    set_status(t, "1", REG_ACTIVATED);
    assert_fails(reg_set_status(t->r, 0, "2", REG_ACTIVATED, 0, 0, ACTOR, NULL),
                 P11CA_E_EXISTS, "held by activated certificate 01");
    set_status(t, "1", REG_NOT_ACTIVATED);
    set_status(t, "2", REG_ACTIVATED);
}

static void test_registry_record_refused_when_client_id_held(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_cert(&c, "2", "alice", NULL, n, n + 100);
    assert_fails(reg_record_issued(t->r, &c, ACTOR, NULL), P11CA_E_EXISTS,
                 "client ID \"alice\" is held by activated certificate 01");
    assert_int_equal(treg_count(t, NULL), 1);
    reg_cert_clear(&c);
}

/* The partial unique index stops what bypasses lifecycle.c. */
static void test_registry_index_enforces_one_activated_client_id(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "alice", REG_NOT_ACTIVATED);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'activated' "
                                 "WHERE serial = '2'"),
                     SQLITE_CONSTRAINT_UNIQUE);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'revoked' "
                                 "WHERE serial = '1'"),
                     0);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'activated' "
                                 "WHERE serial = '2'"),
                     0);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static void test_registry_revoke_is_final(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    assert_int_equal(reg_set_status(t->r, 0, "1", REG_REVOKED, 1, 1500000000,
                                    ACTOR, "lost laptop"),
                     0);
    assert_fails(reg_set_status(t->r, 0, "1", REG_ACTIVATED, 0, 0, ACTOR, NULL),
                 P11CA_E_STATE, "revocation is final");
    assert_fails(
        reg_set_status(t->r, 0, "1", REG_NOT_ACTIVATED, 0, 0, ACTOR, NULL),
        P11CA_E_STATE, "revocation is final");
    assert_fails(reg_set_status(t->r, 0, "1", REG_REVOKED, 0, 0, ACTOR, NULL),
                 P11CA_E_STATE, "revocation is final");
    assert_int_equal(reg_get(t->r, 0, "1", &c), 0);
    assert_int_equal(c.status, REG_REVOKED);
    assert_int_equal(c.reason, 1);
    assert_int_equal(c.invalidity, 1500000000);
    assert_true(c.revoked_at > 0);
    reg_cert_clear(&c);
}

static void test_registry_transitions_need_the_right_status(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_NOT_ACTIVATED);
    assert_fails(reg_set_status(t->r, 0, "1", REG_ACTIVATED, 0, 0, ACTOR, NULL),
                 P11CA_E_STATE, "certificate 01 is activated");
    assert_fails(
        reg_set_status(t->r, 0, "2", REG_NOT_ACTIVATED, 0, 0, ACTOR, NULL),
        P11CA_E_STATE, "only an activated certificate");
    assert_fails(reg_set_status(t->r, 0, "2", REG_REGISTERED_NOT_ACTIVATED, 0,
                                0, ACTOR, NULL),
                 P11CA_E_STATE, "no change leads to");
    assert_fails(reg_set_status(t->r, 0, "2", REG_REVOKED, 7, 0, ACTOR, NULL),
                 P11CA_E_INPUT, "bad CRL reason code 7");
    assert_fails(reg_set_status(t->r, 0, "9", REG_REVOKED, 0, 0, ACTOR, NULL),
                 P11CA_E_NOTFOUND, "no certificate with serial 09");
}

static void test_registry_delete_refused_while_activated(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    assert_fails(reg_delete(t->r, 0, "1", ACTOR, NULL), P11CA_E_STATE,
                 "certificate 01 is activated");
    assert_int_equal(treg_count(t, NULL), 1);
}

static void test_registry_delete_refused_for_revoked_unexpired(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    set_status(t, "1", REG_REVOKED);
    assert_fails(reg_delete(t->r, 0, "1", ACTOR, NULL), P11CA_E_STATE,
                 "the CRL must keep listing it");
}

static void test_registry_delete_of_revoked_expired(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c;

    treg_cert(&c, "1", "alice", NULL, n - 2 * 86400, n - 86400);
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    set_status(t, "1", REG_REVOKED);
    assert_int_equal(reg_delete(t->r, 0, "1", ACTOR, "expired"), 0);
    assert_int_equal(treg_count(t, NULL), 0);
    reg_cert_clear(&c);
}

static void test_registry_delete_of_not_activated(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    treg_record(t, "1", "alice", REG_NOT_ACTIVATED);
    assert_int_equal(reg_delete(t->r, 0, "01", ACTOR, NULL), 0);
    assert_int_equal(reg_get(t->r, 0, "1", &c), P11CA_E_NOTFOUND);
    assert_fails(reg_delete(t->r, 0, "1", ACTOR, NULL), P11CA_E_NOTFOUND,
                 "no certificate with serial 01");
}

struct hist {
    int n;
    char text[512];
};

static int hist_cb(const reg_history *h, void *arg)
{
    struct hist *hs = arg;
    size_t used = strlen(hs->text);

    snprintf(hs->text + used, sizeof(hs->text) - used, "%s>%s:%s:%s;",
             reg_status_name(h->from), reg_status_name(h->to), h->actor,
             h->reason ? h->reason : "-");
    assert_true(h->at > 0);
    hs->n++;
    return 0;
}

static void test_registry_history_in_order(void **state)
{
    struct treg *t = *state;
    struct hist hs = {0};

    treg_record(t, "1", "alice", REG_NOT_ACTIVATED);
    assert_int_equal(
        reg_set_status(t->r, 0, "1", REG_ACTIVATED, 0, 0, "bob", "approved"),
        0);
    assert_int_equal(
        reg_set_status(t->r, 0, "1", REG_REVOKED, 4, 0, "carol", "renewed"), 0);
    assert_int_equal(reg_history_list(t->r, 0, "1", hist_cb, &hs), 0);
    assert_int_equal(hs.n, 3);
    assert_string_equal(
        hs.text,
        "any>not-activated:tester:issued;not-activated>activated:bob:approved;activated>revoked:carol:renewed;");
    assert_int_equal(reg_history_list(t->r, 0, "2", hist_cb, &hs),
                     P11CA_E_NOTFOUND);
}

static void test_registry_set_replaces(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    treg_record(t, "1", "alice", REG_NOT_ACTIVATED);
    treg_record(t, "2", "alice", REG_ACTIVATED);
    assert_int_equal(
        reg_supersede(t->r, 0, "2", "01", REG_SUPERSEDE_KEEP, 0, ACTOR), 0);
    assert_int_equal(reg_get(t->r, 0, "2", &c), 0);
    assert_string_equal(c.replaces, "1");
    reg_cert_clear(&c);
    assert_fails(reg_supersede(t->r, 0, "2", "2", REG_SUPERSEDE_KEEP, 0, ACTOR),
                 P11CA_E_INPUT, "cannot replace itself");
    assert_fails(reg_supersede(t->r, 0, "2", "3", REG_SUPERSEDE_KEEP, 0, ACTOR),
                 P11CA_E_NOTFOUND, "no certificate with serial 03");
}

/* ------------------------------------------------------------------ */
/* Rate limit and batches                                              */
/* ------------------------------------------------------------------ */

#define RATE 3
#define T0   1900000000 /* the virtual clock's start (2030) */

/* @n certificates with serials from @first on (hex), of @profile. */
static void rate_certs(reg_cert *c, size_t n, unsigned first,
                       const char *profile)
{
    int64_t t = now();
    char serial[16];

    for (size_t i = 0; i < n; i++) {
        snprintf(serial, sizeof(serial), "%zx", first + i);
        treg_cert(&c[i], serial, serial, NULL, t, t + 100);
        free(c[i].profile);
        c[i].profile = strdup(profile);
        assert_non_null(c[i].profile);
    }
}

static void rate_clear(reg_cert *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reg_cert_clear(&c[i]);
}

static int64_t recorded_at(struct treg *t, const reg_cert *c)
{
    reg_cert got;
    int64_t at;

    assert_int_equal(reg_get(t->r, c->ca_id, c->serial, &got), 0);
    at = got.recorded_at;
    reg_cert_clear(&got);
    return at;
}

/* The registry's clock is the test clock (reg_clock_test_set): the same
 * outcome at any speed. */
static int rate_setup(void **state)
{
    reg_clock_test_set(T0);
    return treg_setup(state);
}

static int rate_teardown(void **state)
{
    reg_clock_test_set(0);
    return treg_teardown(state);
}

static void test_registry_rate_limit_refuses_without_wait(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = RATE, .profile = "client", .what = "LIMIT"};
    reg_cert c[RATE + 1], other;

    rate_certs(c, RATE + 1, 0x10, "client");
    for (int i = 0; i < RATE; i++)
        assert_int_equal(reg_record_issued(t->r, &c[i], ACTOR, &l), 0);
    assert_fails(reg_record_issued(t->r, &c[RATE], ACTOR, &l), P11CA_E_RATE,
                 "rate limit reached: LIMIT allows 3 per second and 3 were "
                 "recorded in this second; not waiting for a slot");
    assert_int_equal(treg_count(t, NULL), RATE);
    /* Another profile's limit counts only that profile. */
    rate_certs(&other, 1, 0x20, "server");
    l.profile = "server";
    assert_int_equal(reg_record_issued(t->r, &other, ACTOR, &l), 0);
    rate_clear(&other, 1);
    rate_clear(c, RATE + 1);
}

static void test_registry_rate_limit_waits_for_next_second(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = RATE, .wait = 1, .profile = "client"};
    reg_cert c[RATE + 1];

    rate_certs(c, RATE + 1, 0x10, "client");
    for (int i = 0; i < RATE; i++)
        assert_int_equal(reg_record_issued(t->r, &c[i], ACTOR, &l), 0);
    assert_int_equal(reg_record_issued(t->r, &c[RATE], ACTOR, &l), 0);
    assert_int_equal(recorded_at(t, &c[0]), T0);
    assert_int_equal(recorded_at(t, &c[RATE]), T0 + 1);
    rate_clear(c, RATE + 1);
}

static void test_registry_rate_limit_refuses_after_wait(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = RATE, .profile = "client", .what = "LIMIT"};
    reg_cert c[2 * RATE + 2];

    rate_certs(c, 2 * RATE + 2, 0x10, "client");
    for (int i = 0; i < RATE; i++) /* T0 full */
        assert_int_equal(reg_record_issued(t->r, &c[i], ACTOR, &l), 0);
    reg_clock_test_set(T0 + 1); /* T0 + 1 full */
    for (int i = RATE; i < 2 * RATE; i++)
        assert_int_equal(reg_record_issued(t->r, &c[i], ACTOR, &l), 0);
    reg_clock_test_set(T0);
    l.wait = 1;
    assert_fails(reg_record_issued(t->r, &c[2 * RATE], ACTOR, &l), P11CA_E_RATE,
                 "rate limit reached: LIMIT allows 3 per second; waited 1 s "
                 "and every second was full (3 recorded in the last one)");
    assert_int_equal(treg_count(t, NULL), 2 * RATE);
    reg_clock_test_set(T0);
    l.wait = 2;
    assert_int_equal(reg_record_issued(t->r, &c[2 * RATE + 1], ACTOR, &l), 0);
    assert_int_equal(recorded_at(t, &c[2 * RATE + 1]), T0 + 2);
    rate_clear(c, 2 * RATE + 2);
}

/* The sign-up limit counts registrations, not issued certificates. */
static void test_registry_signup_limit_counts_registrations(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = 2, .what = "SIGNUPS"};
    reg_cert issued[5], su[3];

    rate_certs(issued, 5, 0x10, "client");
    for (int i = 0; i < 5; i++)
        assert_int_equal(reg_record_issued(t->r, &issued[i], ACTOR, NULL), 0);
    rate_certs(su, 3, 0x20, "client");
    assert_int_equal(reg_register(t->r, &su[0], ACTOR, &l), 0);
    assert_int_equal(reg_register(t->r, &su[1], ACTOR, &l), 0);
    assert_fails(reg_register(t->r, &su[2], ACTOR, &l), P11CA_E_RATE,
                 "SIGNUPS allows 2 per second and 2 were recorded");
    assert_int_equal(treg_count(t, &(reg_filter){.origin = "registered"}), 2);
    rate_clear(issued, 5);
    rate_clear(su, 3);
}

/* A batch fits in one second or waits for one with room for all of it. */
static void test_registry_rate_limit_batch(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = RATE, .profile = "client"};
    reg_cert c[RATE + 2];
    size_t bad = 99;

    rate_certs(c, RATE + 2, 0x10, "client");
    assert_int_equal(reg_record_batch(t->r, c, RATE, ACTOR, &l, &bad), 0);
    assert_fails(reg_record_batch(t->r, c + RATE, 2, ACTOR, &l, &bad),
                 P11CA_E_RATE, "not waiting");
    assert_int_equal(bad, 0);
    l.wait = 1;
    assert_int_equal(reg_record_batch(t->r, c + RATE, 2, ACTOR, &l, &bad), 0);
    assert_int_equal(recorded_at(t, &c[RATE]), T0 + 1);
    assert_int_equal(recorded_at(t, &c[RATE + 1]), T0 + 1);
    assert_int_equal(treg_count(t, NULL), RATE + 2);
    rate_clear(c, RATE + 2);
}

static void test_registry_rate_limit_zero_is_unlimited(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = 0, .profile = "client"};
    reg_cert c[20];

    rate_certs(c, 20, 0x10, "client");
    for (int i = 0; i < 20; i++)
        assert_int_equal(reg_record_issued(t->r, &c[i], ACTOR, &l), 0);
    assert_int_equal(treg_count(t, NULL), 20);
    rate_clear(c, 20);
}

static void make_batch(reg_cert *c, size_t n, const char *first)
{
    int64_t t = now();
    char serial[16];

    for (size_t i = 0; i < n; i++) {
        snprintf(serial, sizeof(serial), "%zx", i + 0x100);
        treg_cert(&c[i], i == 0 && first ? first : serial, serial, NULL, t,
                  t + 100);
    }
}

static void test_registry_batch_records_all(void **state)
{
    struct treg *t = *state;
    reg_cert c[5];
    size_t bad = 99, entries = 0;

    make_batch(c, 5, NULL);
    assert_int_equal(reg_record_batch(t->r, c, 5, ACTOR, NULL, &bad), 0);
    assert_int_equal(treg_count(t, NULL), 5);
    assert_int_equal(reg_audit_verify(t->r, &entries), 0);
    assert_int_equal(entries, 5);
    for (int i = 0; i < 5; i++)
        reg_cert_clear(&c[i]);
}

static void test_registry_batch_is_all_or_nothing(void **state)
{
    struct treg *t = *state;
    reg_cert c[5];
    size_t bad = 99;

    treg_record(t, "103", "x", REG_NOT_ACTIVATED);
    make_batch(c, 5, NULL);
    assert_fails(reg_record_batch(t->r, c, 5, ACTOR, NULL, &bad),
                 P11CA_E_EXISTS, "serial 0103 is already");
    assert_int_equal(bad, 3);
    assert_int_equal(treg_count(t, NULL), 1);
    for (int i = 0; i < 5; i++)
        reg_cert_clear(&c[i]);
}

static void test_registry_batch_client_id_clash_inside(void **state)
{
    struct treg *t = *state;
    reg_cert c[3];
    size_t bad = 99;

    make_batch(c, 3, NULL);
    free(c[2].client_id);
    c[2].client_id = strdup(c[0].client_id);
    assert_fails(reg_record_batch(t->r, c, 3, ACTOR, NULL, &bad),
                 P11CA_E_EXISTS, "client ID");
    assert_int_equal(bad, 2);
    assert_int_equal(treg_count(t, NULL), 0);
    for (int i = 0; i < 3; i++)
        reg_cert_clear(&c[i]);
}

/* PostgreSQL: the server ends the connection while it is idle (as a
 * restart or a failover does).  The next call finds that out before it
 * uses the connection and connects again by itself: a read and a change
 * both work, recorded once. */
static void test_registry_pg_reconnects_after_a_lost_connection(void **state)
{
    struct treg *t = *state;
    const char *kill = "SELECT pg_terminate_backend(pid, 10000) FROM "
                       "pg_stat_activity WHERE application_name = 'p11ca'";
    reg_cert c;

    if (!treg_pg()) /* SQLite has no connection to lose */
        return;
    treg_record(t, "1", "alice", REG_ACTIVATED);
    /* The timeout makes it wait until the server process has ended. */
    assert_int_equal(treg_sql(t, kill), 0);
    assert_int_equal(reg_get(t->r, 0, "1", &c), 0);
    assert_int_equal(reg_last_fault(t->r), REG_FAULT_NONE);
    reg_cert_clear(&c);
    assert_int_equal(treg_sql(t, kill), 0);
    set_status(t, "1", REG_NOT_ACTIVATED);
    assert_int_equal(reg_get(t->r, 0, "1", &c), 0);
    assert_int_equal(c.status, REG_NOT_ACTIVATED);
    reg_cert_clear(&c);
    assert_int_equal(reg_audit_verify(t->r, NULL), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, treg_setup, treg_teardown)
#define R(name) cmocka_unit_test_setup_teardown(name, rate_setup, rate_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_client_id_shared_while_not_activated),
        T(test_registry_activate_refused_when_client_id_held),
        T(test_registry_record_refused_when_client_id_held),
        T(test_registry_index_enforces_one_activated_client_id),
        T(test_registry_revoke_is_final),
        T(test_registry_transitions_need_the_right_status),
        T(test_registry_delete_refused_while_activated),
        T(test_registry_delete_refused_for_revoked_unexpired),
        T(test_registry_delete_of_revoked_expired),
        T(test_registry_delete_of_not_activated),
        T(test_registry_history_in_order),
        T(test_registry_set_replaces),
        R(test_registry_rate_limit_refuses_without_wait),
        R(test_registry_rate_limit_waits_for_next_second),
        R(test_registry_rate_limit_refuses_after_wait),
        R(test_registry_signup_limit_counts_registrations),
        R(test_registry_rate_limit_batch),
        R(test_registry_rate_limit_zero_is_unlimited),
        T(test_registry_batch_records_all),
        T(test_registry_batch_is_all_or_nothing),
        T(test_registry_batch_client_id_clash_inside),
        T(test_registry_pg_reconnects_after_a_lost_connection),
    };
#undef T
#undef R

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
