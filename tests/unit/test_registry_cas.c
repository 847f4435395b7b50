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

#include "registry/registry.h"
#include "treg.h"

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
    };
#undef T

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
