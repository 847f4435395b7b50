/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the registry: opening and migrations, certificates from
 * DER, recording and reading, search. */
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
/* Opening                                                             */
/* ------------------------------------------------------------------ */

/* The newest schema: 6 (002_issuer_serial, 003_audit_heads,
 * 004_ca_autoreg, 005_enroll_codes, 006_notify_signups). */
#define SCHEMA_NEWEST 6

static void test_registry_open_migrates_to_the_last_version(void **state)
{
    struct treg *t = *state;

    assert_int_equal(reg_schema_version(t->r), SCHEMA_NEWEST);
}

static void test_registry_reopen_keeps_version(void **state)
{
    struct treg *t = *state;

    reg_close(t->r);
    t->r = NULL;
    assert_int_equal(reg_open(t->path, &t->r), 0); /* bare path */
    assert_int_equal(reg_schema_version(t->r), SCHEMA_NEWEST);
}

/* PostgreSQL locations: a password never shows, whatever went wrong. */
static void test_registry_open_hides_postgresql_password(void **state)
{
    reg *r = NULL;

    /* Port 1 of the loopback: refused at once, no server needed. */
    assert_fails(
        reg_open("postgresql://u:secret@127.0.0.1:1/reg", &r), P11CA_E_REGISTRY,
        "registry postgresql:host=127.0.0.1 port=1 dbname=reg user=u: cannot connect");
    assert_null(r);
    assert_null(strstr(p11ca_err_message(), "secret"));
    assert_fails(reg_open("postgresql:host=127.0.0.1 port=1 password=s3cret "
                          "dbname=reg",
                          &r),
                 P11CA_E_REGISTRY, "cannot connect");
    assert_null(strstr(p11ca_err_message(), "s3cret"));
    assert_null(r);
}

static void test_registry_open_refuses_bad_postgresql_location(void **state)
{
    reg *r = NULL;

    /* libpq quotes what it choked on: here, part of the password. */
    assert_fails(reg_open("postgresql:host=/x password=s3cret word", &r),
                 P11CA_E_INPUT, "not a PostgreSQL connection string or URI");
    assert_null(strstr(p11ca_err_message(), "s3cret"));
    assert_null(strstr(p11ca_err_message(), "word"));
    assert_fails(reg_open("postgresql:nosuchkeyword=1", &r), P11CA_E_INPUT,
                 "invalid connection option");
    /* libpq checks the port when it connects. */
    assert_fails(reg_open("postgres://u:pw@h:notaport/db", &r),
                 P11CA_E_REGISTRY, "cannot connect: invalid integer value");
    assert_null(strstr(p11ca_err_message(), "pw"));
    assert_fails(reg_open("postgresql:", &r), P11CA_E_INPUT,
                 "names no PostgreSQL database");
    assert_null(r);
}

static void test_registry_open_refuses_empty_location(void **state)
{
    reg *r = NULL;

    assert_fails(reg_open("sqlite:", &r), P11CA_E_INPUT, "names no file");
    assert_fails(reg_open("", &r), P11CA_E_INPUT, "no registry location");
}

static void test_registry_open_reports_unusable_path(void **state)
{
    reg *r = NULL;

    assert_fails(reg_open("sqlite:/nonexistent/dir/reg.db", &r),
                 P11CA_E_REGISTRY, "registry /nonexistent/dir/reg.db: open");
    assert_null(r);
}

static void test_registry_open_refuses_newer_schema(void **state)
{
    struct treg *t = *state;
    reg *r = NULL;

    assert_int_equal(treg_sql(t, "INSERT INTO schema_version "
                                 "VALUES (99, 'future', 0)"),
                     0);
    assert_fails(reg_open(t->loc, &r), P11CA_E_REGISTRY,
                 "schema version 99 is newer");
    assert_null(r);
}

/* ------------------------------------------------------------------ */
/* Certificates from DER, names                                        */
/* ------------------------------------------------------------------ */

static void test_registry_cert_from_der_fields(void **state)
{
    size_t len = 0;
    unsigned char *der =
        treg_der("00AB01", "alice", "eng", 1000000000, 2000000000, &len);
    reg_cert c;

    assert_int_equal(reg_cert_from_der(&c, der, len), 0);
    assert_string_equal(c.serial, "ab01");
    assert_string_equal(c.subject, "CN=alice,OU=eng");
    assert_string_equal(c.issuer, "CN=alice,OU=eng");
    assert_string_equal(c.cn, "alice");
    assert_string_equal(c.ou, "eng");
    assert_string_equal(c.client_id, "alice");
    assert_int_equal(c.not_before, 1000000000);
    assert_int_equal(c.not_after, 2000000000);
    assert_int_equal(strlen(c.key_hash), 64);
    assert_int_equal(c.der_len, len);
    assert_memory_equal(c.der, der, len);
    assert_int_equal(c.reason, -1);
    reg_cert_clear(&c);
    OPENSSL_free(der);
}

static void test_registry_cert_from_der_refuses_garbage(void **state)
{
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    reg_cert c;

    assert_fails(reg_cert_from_der(&c, junk, sizeof(junk)), P11CA_E_INPUT,
                 "not a DER certificate");
    assert_null(c.subject);
}

static void test_registry_status_names_round_trip(void **state)
{
    reg_status st;

    for (int i = REG_ACTIVATED; i <= REG_REVOKED; i++) {
        assert_int_equal(reg_status_parse(reg_status_name(i), &st), 0);
        assert_int_equal(st, i);
    }
    assert_string_equal(reg_status_name(REG_REGISTERED_NOT_ACTIVATED),
                        "registered-not-activated");
    assert_fails(reg_status_parse("active", &st), P11CA_E_INPUT,
                 "unknown certificate status \"active\"");
}

static void test_registry_reason_names_case_insensitive(void **state)
{
    int reason = -1;

    assert_int_equal(reg_reason_parse("KEYCOMPROMISE", &reason), 0);
    assert_int_equal(reason, 1);
    assert_int_equal(reg_reason_parse("aACompromise", &reason), 0);
    assert_int_equal(reason, 10);
    assert_int_equal(reg_reason_parse("removefromcrl", &reason), 0);
    assert_int_equal(reason, 8);
    assert_string_equal(reg_reason_name(5), "cessationOfOperation");
    assert_string_equal(reg_reason_name(7), "unknown");
    assert_fails(reg_reason_parse("stolen", &reason), P11CA_E_INPUT,
                 "unknown revocation reason \"stolen\"");
}

/* ------------------------------------------------------------------ */
/* Recording and reading                                               */
/* ------------------------------------------------------------------ */

static void test_registry_record_then_get(void **state)
{
    struct treg *t = *state;
    int64_t before = now();
    reg_cert c;

    treg_record(t, "1f", "alice", REG_ACTIVATED);
    assert_int_equal(reg_get(t->r, 0, "1f", &c), 0);
    assert_string_equal(c.serial, "1f");
    assert_string_equal(c.cn, "alice");
    assert_string_equal(c.ou, "eng");
    assert_string_equal(c.client_id, "alice");
    assert_string_equal(c.profile, "client");
    assert_string_equal(c.origin, "issued");
    assert_int_equal(c.status, REG_ACTIVATED);
    assert_true(c.recorded_at >= before && c.recorded_at <= now());
    assert_int_equal(c.reason, -1);
    assert_int_equal(c.revoked_at, 0);
    assert_true(c.der_len > 0);
    reg_cert_clear(&c);
}

static void test_registry_get_accepts_leading_zeros_and_upper_case(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    treg_record(t, "ab", "alice", REG_ACTIVATED);
    assert_int_equal(reg_get(t->r, 0, "00AB", &c), 0);
    assert_string_equal(c.serial, "ab");
    reg_cert_clear(&c);
    assert_int_equal(reg_get(t->r, 0, "0xaB", &c), 0);
    reg_cert_clear(&c);
}

static void test_registry_record_normalises_serial(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c, got;

    treg_cert(&c, "ab", "alice", NULL, n, n + 100);
    memcpy(c.serial, "000AB", 6);
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    assert_int_equal(reg_get(t->r, 0, "ab", &got), 0);
    assert_string_equal(got.serial, "ab");
    reg_cert_clear(&got);
    reg_cert_clear(&c);
}

static void test_registry_get_unknown_serial(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    assert_fails(reg_get(t->r, 0, "abc", &c), P11CA_E_NOTFOUND,
                 "no certificate with serial 0ABC");
    assert_fails(reg_get(t->r, 0, "xyz", &c), P11CA_E_INPUT, "bad serial");
}

static void test_registry_duplicate_serial_changes_nothing(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_filter all = {0};
    size_t entries = 0;
    reg_cert c, got;

    treg_record(t, "1a", "alice", REG_ACTIVATED);
    /* Same client ID too: the serial is what the message names. */
    treg_cert(&c, "1A", "alice", "ops", n, n + 100);
    assert_fails(reg_record_issued(t->r, &c, ACTOR, NULL), P11CA_E_EXISTS,
                 "serial 1A is already in the registry");
    assert_int_equal(treg_count(t, &all), 1);
    assert_int_equal(reg_get(t->r, 0, "1a", &got), 0);
    assert_string_equal(got.ou, "eng");
    assert_int_equal(reg_audit_verify(t->r, &entries), 0);
    assert_int_equal(entries, 1);
    reg_cert_clear(&got);
    reg_cert_clear(&c);
}

static void test_registry_record_refuses_revoked_status(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c;

    treg_cert(&c, "1", "alice", NULL, n, n + 100);
    c.status = REG_REVOKED;
    /* Revoked without its revocation time and reason: refused. */
    assert_fails(reg_record_issued(t->r, &c, ACTOR, NULL), P11CA_E_INPUT,
                 "recorded as activated, not-activated");
    c.status = REG_ACTIVATED;
    assert_fails(reg_record_issued(t->r, &c, "", NULL), P11CA_E_INPUT,
                 "needs an actor");
    reg_cert_clear(&c);
}

static void test_registry_record_takes_imported_revocation(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c, got;

    /* import-index brings revoked certificates with their history. */
    treg_cert(&c, "7", "bob", NULL, n - 100, n + 100);
    c.status = REG_REVOKED;
    c.revoked_at = n - 50;
    c.reason = 4; /* superseded */
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), P11CA_OK);
    memset(&got, 0, sizeof(got));
    assert_int_equal(reg_get(t->r, 0, "7", &got), P11CA_OK);
    assert_int_equal(got.status, REG_REVOKED);
    assert_int_equal(got.revoked_at, n - 50);
    assert_int_equal(got.reason, 4);
    reg_cert_clear(&got);
    reg_cert_clear(&c);
}

static void test_registry_record_refuses_unknown_ca(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c;

    treg_cert(&c, "1", "alice", NULL, n, n + 100);
    c.ca_id = 42;
    assert_fails(reg_record_issued(t->r, &c, ACTOR, NULL), P11CA_E_NOTFOUND,
                 "no CA with id 42");
    reg_cert_clear(&c);
}

static void test_registry_register_is_registered_not_activated(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c, got;

    treg_cert(&c, "77", "device", NULL, n, n + 100);
    assert_int_equal(reg_register(t->r, &c, ACTOR, NULL), 0);
    assert_int_equal(reg_get(t->r, 0, "77", &got), 0);
    assert_int_equal(got.status, REG_REGISTERED_NOT_ACTIVATED);
    assert_string_equal(got.origin, "registered");
    assert_null(got.profile);
    set_status(t, "77", REG_ACTIVATED);
    reg_cert_clear(&got);
    reg_cert_clear(&c);
}

/* ------------------------------------------------------------------ */
/* Search                                                              */
/* ------------------------------------------------------------------ */

/* a: alice/eng, b: bob/ops (not activated, profile server), c: carol/eng. */
static void record_three(struct treg *t)
{
    int64_t n = now();
    reg_cert c;

    treg_record(t, "a", "alice", REG_ACTIVATED);
    treg_cert(&c, "b", "bob", "ops", n - 10, n + 1000);
    c.status = REG_NOT_ACTIVATED;
    free(c.profile);
    c.profile = strdup("server");
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    treg_record(t, "c", "carol", REG_ACTIVATED);
}

static void test_registry_search_by_strings(void **state)
{
    struct treg *t = *state;
    char out[256];

    record_three(t);
    treg_search(t, &(reg_filter){.serial = "00C"}, out, sizeof(out));
    assert_string_equal(out, "c");
    treg_search(t, &(reg_filter){.cn = "bob"}, out, sizeof(out));
    assert_string_equal(out, "b");
    treg_search(t, &(reg_filter){.ou = "eng"}, out, sizeof(out));
    assert_string_equal(out, "a,c");
    treg_search(t, &(reg_filter){.client_id = "carol"}, out, sizeof(out));
    assert_string_equal(out, "c");
    treg_search(t, &(reg_filter){.profile = "server"}, out, sizeof(out));
    assert_string_equal(out, "b");
}

static void test_registry_search_like(void **state)
{
    struct treg *t = *state;
    char out[256];

    record_three(t);
    treg_search(t, &(reg_filter){.cn_match = "o"}, out, sizeof(out));
    assert_string_equal(out, "b,c");
    treg_search(t, &(reg_filter){.ou_match = "O?S"}, out, sizeof(out));
    assert_string_equal(out, "b");
    /* A quote in a value is data, never SQL. */
    treg_search(t, &(reg_filter){.cn = "x' OR '1'='1"}, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_registry_search_by_status_and_ca(void **state)
{
    struct treg *t = *state;
    size_t len = 0;
    unsigned char *der = treg_der("99", "CA", NULL, 0, 2000000000, &len);
    int64_t n = now(), id = 0;
    reg_cert c;
    char out[256];

    record_three(t);
    treg_search(t, &(reg_filter){.status = REG_NOT_ACTIVATED}, out,
                sizeof(out));
    assert_string_equal(out, "b");
    assert_int_equal(reg_ca_add(t->r, der, len, "root", &id), 0);
    treg_cert(&c, "d", "dave", NULL, n, n + 100);
    c.ca_id = id;
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    treg_search(t, &(reg_filter){.ca_id = id}, out, sizeof(out));
    assert_string_equal(out, "d");
    reg_cert_clear(&c);
    OPENSSL_free(der);
}

static void test_registry_search_by_recorded_range(void **state)
{
    struct treg *t = *state;
    int64_t n = 1900000000; /* the registry's test clock: no real time */
    char out[256];

    reg_clock_test_set(n);
    record_three(t);
    reg_clock_test_set(0);
    treg_search(t, &(reg_filter){.issued_after = n - 60}, out, sizeof(out));
    assert_string_equal(out, "a,b,c");
    treg_search(t, &(reg_filter){.issued_after = n + 60}, out, sizeof(out));
    assert_string_equal(out, "");
    treg_search(t, &(reg_filter){.issued_before = n - 60}, out, sizeof(out));
    assert_string_equal(out, "");
    treg_search(t,
                &(reg_filter){.issued_after = n - 60, .issued_before = n + 60},
                out, sizeof(out));
    assert_string_equal(out, "a,b,c");
}

/* x: [1e9, 1.1e9), y: [1.05e9, 1.2e9) */
static void record_dated(struct treg *t)
{
    reg_cert c;

    treg_cert(&c, "e1", "x", NULL, 1000000000, 1100000000);
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    treg_cert(&c, "e2", "y", NULL, 1050000000, 1200000000);
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
}

static void test_registry_search_by_expiry_range(void **state)
{
    struct treg *t = *state;
    char out[256];

    record_dated(t);
    treg_search(t,
                &(reg_filter){.expires_after = 1100000000,
                              .expires_before = 1150000000},
                out, sizeof(out));
    assert_string_equal(out, "e1");
    treg_search(t, &(reg_filter){.expires_after = 1100000001}, out,
                sizeof(out));
    assert_string_equal(out, "e2");
    treg_search(t, &(reg_filter){.expires_before = 1100000000}, out,
                sizeof(out));
    assert_string_equal(out, "");
}

static void test_registry_search_valid_at(void **state)
{
    struct treg *t = *state;
    char out[256];

    record_dated(t);
    treg_search(t, &(reg_filter){.valid_at = 1020000000}, out, sizeof(out));
    assert_string_equal(out, "e1");
    treg_search(t, &(reg_filter){.valid_at = 1075000000}, out, sizeof(out));
    assert_string_equal(out, "e1,e2");
    treg_search(t, &(reg_filter){.valid_at = 1100000000}, out, sizeof(out));
    assert_string_equal(out, "e2");
}

static void test_registry_search_paging_and_order(void **state)
{
    struct treg *t = *state;
    char out[256];

    record_three(t);
    treg_record(t, "d", "dave", REG_ACTIVATED);
    treg_search(t, &(reg_filter){.limit = 2}, out, sizeof(out));
    assert_string_equal(out, "a,b");
    treg_search(t, &(reg_filter){.limit = 2, .offset = 1}, out, sizeof(out));
    assert_string_equal(out, "b,c");
    treg_search(t, &(reg_filter){.offset = 3}, out, sizeof(out));
    assert_string_equal(out, "d");
    treg_search(t, &(reg_filter){.descending = true}, out, sizeof(out));
    assert_string_equal(out, "d,c,b,a");
    treg_search(t, &(reg_filter){.descending = true, .limit = 1}, out,
                sizeof(out));
    assert_string_equal(out, "d");
}

static void test_registry_count_ignores_paging(void **state)
{
    struct treg *t = *state;

    record_three(t);
    assert_int_equal(treg_count(t, NULL), 3);
    assert_int_equal(treg_count(t, &(reg_filter){.ou = "eng", .limit = 1}), 2);
}

static void test_registry_search_refuses_bad_filter(void **state)
{
    struct treg *t = *state;
    size_t n;

    assert_fails(reg_count(t->r, &(reg_filter){.status = 17}, &n),
                 P11CA_E_INPUT, "unknown status 17");
    assert_fails(reg_count(t->r, &(reg_filter){.serial = "g"}, &n),
                 P11CA_E_INPUT, "bad serial");
}

/* More rows than one fetch of a PostgreSQL cursor (1,000): searches and
 * the revoked list see every row once, in order. */
#define MANY 2100

struct many {
    size_t n;
    char last[64];
    bool ordered;
};

static int many_cert_cb(const reg_cert *c, void *arg)
{
    struct many *m = arg;

    m->n++;
    return 0;
}

/* Serials as numbers: shorter first, then by text (lower-case hex). */
static int many_revoked_cb(const reg_revoked *e, void *arg)
{
    struct many *m = arg;
    size_t a = strlen(m->last), b = strlen(e->serial);

    if (m->n && (a > b || (a == b && strcmp(m->last, e->serial) >= 0)))
        m->ordered = false;
    snprintf(m->last, sizeof(m->last), "%s", e->serial);
    m->n++;
    return 0;
}

static void test_registry_lists_past_one_fetch(void **state)
{
    struct treg *t = *state;
    reg_cert *certs = calloc(MANY, sizeof(*certs));
    struct many m = {0, "", true};
    char serial[16];
    size_t bad = 0, n = 0;
    int64_t at = now();

    assert_non_null(certs);
    for (size_t i = 0; i < MANY; i++) {
        snprintf(serial, sizeof(serial), "%zx", i + 1);
        treg_cert(&certs[i], serial, serial, "many", at - 10, at + 86400);
    }
    assert_int_equal(reg_record_batch(t->r, certs, MANY, ACTOR, NULL, &bad), 0);
    assert_int_equal(reg_search(t->r, NULL, many_cert_cb, &m), 0);
    assert_int_equal(m.n, MANY);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.ou = "many"}, 1,
                                     ACTOR, "test", MANY, &n),
                     0);
    assert_int_equal(n, MANY);
    m = (struct many){0, "", true};
    assert_int_equal(reg_revoked_list(t->r, 0, 0, many_revoked_cb, &m), 0);
    assert_int_equal(m.n, MANY);
    assert_true(m.ordered);
    for (size_t i = 0; i < MANY; i++)
        reg_cert_clear(&certs[i]);
    free(certs);
}

/* ------------------------------------------------------------------ */
/* Enrollment codes                                                    */
/* ------------------------------------------------------------------ */

#define CODE_HASH                                                              \
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* A CA in the registry for the codes (they reference cas). */
static int64_t code_ca(struct treg *t, const char *serial, const char *name)
{
    size_t len = 0;
    unsigned char *der = treg_der(serial, name, NULL, 0, 2000000000, &len);
    int64_t id = 0;

    assert_int_equal(reg_ca_add(t->r, der, len, name, &id), 0);
    OPENSSL_free(der);
    return id;
}

static void test_registry_code_taken_once(void **state)
{
    struct treg *t = *state;
    int64_t id = 0, expires = 0, n = 1900000000, ca = code_ca(t, "81", "CA");
    reg_code c = {0};

    reg_clock_test_set(n);
    assert_int_equal(reg_code_add(t->r, ca, CODE_HASH, "client", "eve", NULL,
                                  60, "test", &id, &expires),
                     0);
    assert_true(id > 0);
    assert_int_equal(expires, n + 60);
    assert_int_equal(reg_code_take(t->r, ca, CODE_HASH, "test", &c), 0);
    assert_int_equal(c.id, id);
    assert_int_equal(c.ca_id, ca);
    assert_string_equal(c.profile, "client");
    assert_string_equal(c.client_id, "eve");
    assert_null(c.subject);
    reg_code_clear(&c);
    /* Used: refused with the one sentence, until released. */
    assert_fails(reg_code_take(t->r, ca, CODE_HASH, "test", &c),
                 P11CA_E_NOTFOUND,
                 "the enrollment code is unknown, used or expired");
    assert_int_equal(reg_code_release(t->r, id, "test", "refused"), 0);
    assert_int_equal(reg_code_take(t->r, ca, CODE_HASH, "test", &c), 0);
    reg_code_clear(&c);
    /* Linked by its CA only. */
    assert_int_equal(reg_code_issued(t->r, id, ca + 1, "4e", "test"),
                     P11CA_E_STATE);
    assert_int_equal(reg_code_issued(t->r, id, ca, "4e", "test"), 0);
    /* Linked to its certificate: never released again. */
    assert_int_equal(reg_code_release(t->r, id, "test", "late"), P11CA_E_STATE);
    assert_fails(reg_code_take(t->r, ca, CODE_HASH, "test", &c),
                 P11CA_E_NOTFOUND,
                 "the enrollment code is unknown, used or expired");
    reg_clock_test_set(0);
}

static void test_registry_code_expires(void **state)
{
    struct treg *t = *state;
    int64_t id = 0, expires = 0, n = 1900000000, ca = code_ca(t, "82", "CA");
    reg_code c = {0};

    reg_clock_test_set(n);
    assert_int_equal(reg_code_add(t->r, ca, CODE_HASH, "client", "eve",
                                  "CN=eve", 60, "test", &id, &expires),
                     0);
    reg_clock_test_set(n + 60);
    assert_fails(reg_code_take(t->r, ca, CODE_HASH, "test", &c),
                 P11CA_E_NOTFOUND,
                 "the enrollment code is unknown, used or expired");
    reg_clock_test_set(n + 59);
    assert_int_equal(reg_code_take(t->r, ca, CODE_HASH, "test", &c), 0);
    assert_string_equal(c.subject, "CN=eve");
    reg_code_clear(&c);
    reg_clock_test_set(0);
}

/* Two CAs share a registry (two services): a code of one is unknown to the
 * other, and stays usable by its own. */
static void test_registry_code_bound_to_ca(void **state)
{
    struct treg *t = *state;
    int64_t a = code_ca(t, "83", "CA A"), b = code_ca(t, "84", "CA B");
    int64_t id = 0, expires = 0;
    reg_code c = {0};

    assert_int_equal(reg_code_add(t->r, a, CODE_HASH, "client", "eve", NULL, 60,
                                  "test", &id, &expires),
                     0);
    assert_fails(reg_code_take(t->r, b, CODE_HASH, "test", &c),
                 P11CA_E_NOTFOUND,
                 "the enrollment code is unknown, used or expired");
    assert_int_equal(reg_code_take(t->r, a, CODE_HASH, "test", &c), 0);
    assert_int_equal(c.ca_id, a);
    reg_code_clear(&c);
    /* The certificate it gave is the service's CA's, not another's. */
    assert_int_equal(reg_code_issued(t->r, id, b, "4e", "test"), P11CA_E_STATE);
    assert_int_equal(reg_code_issued(t->r, id, a, "4e", "test"), 0);
}

static void test_registry_code_refuses_bad_input(void **state)
{
    struct treg *t = *state;
    int64_t id = 0, expires = 0;
    reg_code c = {0};

    assert_int_equal(reg_code_add(t->r, 1, "abc", "client", "eve", NULL, 60,
                                  "test", &id, &expires),
                     P11CA_E_INPUT);
    assert_int_equal(reg_code_add(t->r, 1, CODE_HASH, "client", "eve", NULL, 0,
                                  "test", &id, &expires),
                     P11CA_E_INPUT);
    assert_fails(reg_code_take(t->r, 1, "not a hash", "test", &c),
                 P11CA_E_NOTFOUND,
                 "the enrollment code is unknown, used or expired");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, treg_setup, treg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_open_migrates_to_the_last_version),
        T(test_registry_reopen_keeps_version),
        T(test_registry_open_hides_postgresql_password),
        T(test_registry_open_refuses_bad_postgresql_location),
        T(test_registry_open_refuses_empty_location),
        T(test_registry_open_reports_unusable_path),
        T(test_registry_open_refuses_newer_schema),
        T(test_registry_cert_from_der_fields),
        T(test_registry_cert_from_der_refuses_garbage),
        T(test_registry_status_names_round_trip),
        T(test_registry_reason_names_case_insensitive),
        T(test_registry_record_then_get),
        T(test_registry_get_accepts_leading_zeros_and_upper_case),
        T(test_registry_record_normalises_serial),
        T(test_registry_get_unknown_serial),
        T(test_registry_duplicate_serial_changes_nothing),
        T(test_registry_record_refuses_revoked_status),
        T(test_registry_record_takes_imported_revocation),
        T(test_registry_record_refuses_unknown_ca),
        T(test_registry_register_is_registered_not_activated),
        T(test_registry_search_by_strings),
        T(test_registry_search_like),
        T(test_registry_search_by_status_and_ca),
        T(test_registry_search_by_recorded_range),
        T(test_registry_search_by_expiry_range),
        T(test_registry_search_valid_at),
        T(test_registry_search_paging_and_order),
        T(test_registry_count_ignores_paging),
        T(test_registry_search_refuses_bad_filter),
        T(test_registry_lists_past_one_fetch),
        T(test_registry_code_taken_once),
        T(test_registry_code_bound_to_ca),
        T(test_registry_code_expires),
        T(test_registry_code_refuses_bad_input),
    };
#undef T

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
