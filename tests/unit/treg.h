/* SPDX-License-Identifier: Apache-2.0 */
/* The registry unit tests' shared helpers (test_registry_util.c): a fresh
 * database per test, self-signed test certificates, and the assertions
 * every test_registry*.c uses.  Include after <cmocka.h>. */
#ifndef P11CA_TESTS_TREG_H
#define P11CA_TESTS_TREG_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "registry/registry.h"

/*
 * A test's registry: SQLite in @dir, or, when P11CA_TEST_REGISTRY=pg, a
 * schema of its own in the PostgreSQL database of P11CA_TEST_PG (libpq
 * keywords; tests/lib/pg.sh starts the server), dropped at teardown.
 * @path is what a bare location is (the file; PostgreSQL: @loc).
 */
struct treg {
    char dir[64];
    char path[240];
    char loc[256];   /* PostgreSQL's fit in path too (about 100 bytes) */
    char schema[64]; /* PostgreSQL: the test's schema, else "" */
    char fresh[64];  /* PostgreSQL: treg_fresh's schema, else "" */
    reg *r;
};

/* Whether the tests run on PostgreSQL (P11CA_TEST_REGISTRY=pg). */
bool treg_pg(void);
/*
 * treg_fresh - a location for a second, empty registry named @name (not
 * opened): a file in the test's directory, or a new schema; @be_loc (may
 * be NULL) gets what the backend's own open takes (no prefix).
 */
void treg_fresh(struct treg *t, const char *name, char *loc, size_t len,
                char *be_loc, size_t be_len);
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
/* Run @sql on the database behind the registry's back (PostgreSQL: as
 * its superuser, triggers off, as a tamperer with the files would);
 * returns 0, SQLITE_CONSTRAINT_UNIQUE for a unique violation, else
 * another SQLite result code (PostgreSQL: 1). */
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
