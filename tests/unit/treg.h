/* SPDX-License-Identifier: Apache-2.0 */
/* The registry unit tests' shared helpers (test_registry_util.c): a fresh
 * database per test, self-signed test certificates, and the assertions
 * every test_registry*.c uses.  Include after <cmocka.h>. */
#ifndef P11CA_TESTS_TREG_H
#define P11CA_TESTS_TREG_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "registry/registry.h"

struct treg {
    char dir[64];
    char path[128];
    char loc[160];
    reg *r;
};
int treg_group_setup(void **state);
int treg_group_teardown(void **state);
int treg_setup(void **state);
int treg_teardown(void **state);
unsigned char *treg_der(const char *serial, const char *cn, const char *ou,
                        int64_t not_before, int64_t not_after, size_t *len);
void treg_cert(reg_cert *c, const char *serial, const char *cn, const char *ou,
               int64_t not_before, int64_t not_after);
void treg_record(struct treg *t, const char *serial, const char *cn,
                 reg_status st);
int treg_sql(struct treg *t, const char *sql);
void treg_search(struct treg *t, const reg_filter *f, char *out, size_t len);
size_t treg_count(struct treg *t, const reg_filter *f);

/* Expect @rc from a call, with @what in the message. */
#define assert_fails(call, rc, what)                                           \
    do {                                                                       \
        assert_int_equal((call), (rc));                                        \
        if (!strstr(p11ca_err_message(), (what)))                              \
            fail_msg("message \"%s\" lacks \"%s\"", p11ca_err_message(),       \
                     (what));                                                  \
    } while (0)

#define ACTOR "alice@host"

static inline int64_t now(void)
{
    return (int64_t)time(NULL);
}

static inline void set_status(struct treg *t, const char *serial, reg_status to)
{
    if (reg_set_status(t->r, 0, serial, to, 1, 0, ACTOR, "test") != 0)
        fail_msg("%s -> %s: %s", serial, reg_status_name(to),
                 p11ca_err_message());
}

#endif
