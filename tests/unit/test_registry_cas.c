/* SPDX-License-Identifier: Apache-2.0 */
/* Registry unit tests: registered CAs' auto-registration settings and
 * certificates registered with a status (what p11ca serve records). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "registry/internal.h"
#include "registry/registry.h"
#include "treg.h"

#define T0 1900000000 /* the virtual clock's start (2030) */

struct ca_seen {
    int64_t id;
    bool auto_register;
    reg_status auto_status;
    size_t n;
};

static int ca_seen_cb(const reg_ca *ca, void *arg)
{
    struct ca_seen *s = arg;

    s->n++;
    if (ca->id == s->id) {
        s->auto_register = ca->auto_register;
        s->auto_status = ca->auto_status;
    }
    return 0;
}

static int64_t add_ca(struct treg *t, const char *serial)
{
    size_t len = 0;
    unsigned char *der =
        treg_der(serial, "Fleet CA", NULL, now() - 60, now() + 86400, &len);
    int64_t id = 0;

    assert_int_equal(reg_ca_add(t->r, der, len, "fleet", &id), 0);
    OPENSSL_free(der);
    return id;
}

static int audit_last_cb(const reg_audit *a, void *arg)
{
    char *out = arg;

    snprintf(out, 256, "%s %s %s %s", a->actor, a->action,
             a->object ? a->object : "-", a->details ? a->details : "-");
    return 0;
}

static void test_registry_ca_auto_defaults_off(void **state)
{
    struct treg *t = *state;
    struct ca_seen s = {.id = add_ca(t, "0c01")};

    assert_int_equal(reg_ca_list(t->r, ca_seen_cb, &s), 0);
    assert_int_equal(s.n, 1);
    assert_false(s.auto_register);
    assert_int_equal(s.auto_status, REG_REGISTERED_NOT_ACTIVATED);
}

static void test_registry_ca_set_auto_is_listed_and_audited(void **state)
{
    struct treg *t = *state;
    struct ca_seen s = {.id = add_ca(t, "0c02")};
    char last[256] = "";

    assert_int_equal(reg_ca_set_auto(t->r, s.id, true, REG_ACTIVATED, ACTOR),
                     0);
    assert_int_equal(reg_ca_list(t->r, ca_seen_cb, &s), 0);
    assert_true(s.auto_register);
    assert_int_equal(s.auto_status, REG_ACTIVATED);
    assert_int_equal(reg_audit_list(t->r, 0, audit_last_cb, last), 0);
    assert_non_null(strstr(last, ACTOR " ca-auto-register"));
    assert_non_null(strstr(last, "\"auto_status\":\"activated\""));
    assert_int_equal(reg_audit_verify(t->r, NULL), 0);
}

static void test_registry_ca_set_auto_refuses_bad_status(void **state)
{
    struct treg *t = *state;
    int64_t id = add_ca(t, "0c03");

    assert_fails(reg_ca_set_auto(t->r, id, true, REG_REVOKED, ACTOR),
                 P11CA_E_INPUT, "not revoked");
    assert_fails(reg_ca_set_auto(t->r, id, true, REG_NOT_ACTIVATED, ACTOR),
                 P11CA_E_INPUT, "not not-activated");
}

static void test_registry_ca_set_auto_unknown_id(void **state)
{
    struct treg *t = *state;
    char last[256] = "";

    assert_fails(reg_ca_set_auto(t->r, 42, true, REG_ACTIVATED, ACTOR),
                 P11CA_E_NOTFOUND, "no CA with id 42");
    /* Nothing audited for a refused change. */
    assert_int_equal(reg_audit_list(t->r, 0, audit_last_cb, last), 0);
    assert_string_equal(last, "");
}

static void test_registry_register_as_activated(void **state)
{
    struct treg *t = *state;
    reg_cert c, got = {0};

    treg_cert(&c, "0d01", "dev-1", NULL, now() - 60, now() + 86400);
    c.ca_id = add_ca(t, "0c04");
    assert_int_equal(reg_register_as(t->r, &c, REG_ACTIVATED, ACTOR, NULL), 0);
    assert_int_equal(reg_get(t->r, c.ca_id, "0d01", &got), 0);
    assert_int_equal(got.status, REG_ACTIVATED);
    assert_string_equal(got.origin, "registered");
    assert_null(got.profile);
    reg_cert_clear(&got);
    reg_cert_clear(&c);
}

static void
test_registry_register_as_activated_needs_free_client_id(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    treg_record(t, "0e01", "dev-2", REG_ACTIVATED);
    treg_cert(&c, "0e02", "dev-2", NULL, now() - 60, now() + 86400);
    assert_fails(reg_register_as(t->r, &c, REG_ACTIVATED, ACTOR, NULL),
                 P11CA_E_EXISTS, "client ID \"dev-2\" is held");
    /* Registered-not-activated does not need the client ID. */
    assert_int_equal(
        reg_register_as(t->r, &c, REG_REGISTERED_NOT_ACTIVATED, ACTOR, NULL),
        0);
    reg_cert_clear(&c);
}

static void test_registry_register_as_refuses_other_status(void **state)
{
    struct treg *t = *state;
    reg_cert c;
    reg_filter f = {0};

    treg_cert(&c, "0f01", "dev-3", NULL, now() - 60, now() + 86400);
    assert_fails(reg_register_as(t->r, &c, REG_NOT_ACTIVATED, ACTOR, NULL),
                 P11CA_E_INPUT, "not not-activated");
    assert_fails(reg_register_as(t->r, &c, REG_REVOKED, ACTOR, NULL),
                 P11CA_E_INPUT, "not revoked");
    assert_int_equal(treg_count(t, &f), 0);
    reg_cert_clear(&c);
}

/* The audit replay (audit verify) reads an auto-registration as the
 * status it recorded, and the changes after it. */
static void test_registry_register_as_replays(void **state)
{
    struct treg *t = *state;
    size_t certs = 0;
    reg_cert c;

    treg_cert(&c, "1001", "dev-4", NULL, now() - 60, now() + 86400);
    c.ca_id = add_ca(t, "0c05");
    assert_int_equal(reg_register_as(t->r, &c, REG_ACTIVATED, ACTOR, NULL), 0);
    assert_int_equal(reg_audit_verify_status(t->r, &certs), 0);
    assert_int_equal(certs, 1);
    assert_int_equal(reg_set_status(t->r, c.ca_id, "1001", REG_NOT_ACTIVATED,
                                    -1, 0, ACTOR, "test"),
                     0);
    assert_int_equal(reg_audit_verify_status(t->r, &certs), 0);
    /* A status written around the registry is found. */
    assert_int_equal(
        treg_sql(t, "UPDATE certs SET status = 'activated' WHERE serial = "
                    "'1001'"),
        0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE, "1001");
    reg_cert_clear(&c);
}

/* Another CA's device may have a serial the registry has already. */
static void test_registry_register_as_same_serial_other_ca(void **state)
{
    struct treg *t = *state;
    reg_cert a, b, got = {0};

    treg_cert(&a, "4e", "vendor-1-dev", NULL, now() - 60, now() + 86400);
    treg_cert(&b, "4e", "vendor-2-dev", NULL, now() - 60, now() + 86400);
    a.ca_id = add_ca(t, "0c06");
    b.ca_id = add_ca(t, "0c07");
    assert_int_equal(reg_register_as(t->r, &a, REG_ACTIVATED, ACTOR, NULL), 0);
    assert_int_equal(reg_register_as(t->r, &b, REG_ACTIVATED, ACTOR, NULL), 0);
    assert_fails(reg_register_as(t->r, &b, REG_ACTIVATED, ACTOR, NULL),
                 P11CA_E_EXISTS, "serial 4E of CA");
    assert_non_null(strstr(p11ca_err_message(), "is already in the registry"));
    assert_int_equal(reg_get(t->r, b.ca_id, "4e", &got), 0);
    assert_string_equal(got.cn, "vendor-2-dev");
    reg_cert_clear(&got);
    assert_fails(reg_get(t->r, 0, "4e", &got), P11CA_E_INPUT, "ambiguous");
    assert_int_equal(reg_audit_verify_status(t->r, NULL), 0);
    reg_cert_clear(&a);
    reg_cert_clear(&b);
}

/* An auto-registration is a sign-up: the registry's sign-up limit holds
 * it, counted with the other registrations (test clock: one second). */
static void test_registry_register_as_under_signup_limit(void **state)
{
    struct treg *t = *state;
    reg_limit l = {.per_sec = 2, .what = "SIGNUPS"};
    reg_cert c[3];
    char serial[8];
    int64_t ca;

    reg_clock_test_set(T0);
    ca = add_ca(t, "0c08");
    for (int i = 0; i < 3; i++) {
        snprintf(serial, sizeof(serial), "11%02x", i);
        treg_cert(&c[i], serial, serial, NULL, now() - 60, now() + 86400);
        c[i].ca_id = ca;
    }
    assert_int_equal(reg_register(t->r, &c[0], ACTOR, &l), 0);
    assert_int_equal(reg_register_as(t->r, &c[1], REG_ACTIVATED, ACTOR, &l), 0);
    assert_fails(reg_register_as(t->r, &c[2], REG_ACTIVATED, ACTOR, &l),
                 P11CA_E_RATE,
                 "SIGNUPS allows 2 per second and 2 were recorded");
    assert_int_equal(treg_count(t, NULL), 2);
    reg_clock_test_set(T0 + 1);
    assert_int_equal(reg_register_as(t->r, &c[2], REG_ACTIVATED, ACTOR, &l), 0);
    reg_clock_test_set(0);
    for (int i = 0; i < 3; i++)
        reg_cert_clear(&c[i]);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, treg_setup, treg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_ca_auto_defaults_off),
        T(test_registry_ca_set_auto_is_listed_and_audited),
        T(test_registry_ca_set_auto_refuses_bad_status),
        T(test_registry_ca_set_auto_unknown_id),
        T(test_registry_register_as_activated),
        T(test_registry_register_as_activated_needs_free_client_id),
        T(test_registry_register_as_refuses_other_status),
        T(test_registry_register_as_replays),
        T(test_registry_register_as_same_serial_other_ca),
        T(test_registry_register_as_under_signup_limit),
    };
#undef T

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
