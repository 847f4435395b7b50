/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the registry rules of issue 12: certificates identified by
 * issuer and serial (and the migration to that schema), expired and
 * external certificates, renewal (supersede, scheduled revocation with a
 * controlled clock), confirmed bulk revocation, patterns and orders. */
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
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "registry/internal.h"
#include "registry/registry.h"
#include "registry/schema.h"
#include "treg.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* An external CA named @name (its certificate is a throwaway). */
static int64_t add_ca(struct treg *t, const char *serial, const char *name,
                      bool external)
{
    size_t len = 0;
    unsigned char *der = treg_der(serial, name, NULL, 0, 2000000000, &len);
    int64_t id = 0;

    if (external)
        assert_int_equal(reg_ca_add_external(t->r, der, len, name, &id), 0);
    else
        assert_int_equal(reg_ca_add(t->r, der, len, name, &id), 0);
    OPENSSL_free(der);
    return id;
}

/* Register certificate @serial (CN @cn) of CA @ca_id, valid for a year or
 * until @not_after when not 0. */
static void reg_of(struct treg *t, int64_t ca_id, const char *serial,
                   const char *cn, int64_t not_after)
{
    int64_t n = now();
    reg_cert c;

    treg_cert(&c, serial, cn, "dev", n - 3600,
              not_after ? not_after : n + 365 * 86400);
    c.ca_id = ca_id;
    if (reg_register(t->r, &c, ACTOR, NULL) != 0)
        fail_msg("register %s: %s", serial, p11ca_err_message());
    reg_cert_clear(&c);
}

/* Record @serial issued by CA @ca_id, activated or not. */
static void issue_of(struct treg *t, int64_t ca_id, const char *serial,
                     const char *cn, reg_status st)
{
    int64_t n = now();
    reg_cert c;

    treg_cert(&c, serial, cn, "eng", n - 3600, n + 365 * 86400);
    c.ca_id = ca_id;
    c.status = st;
    if (reg_record_issued(t->r, &c, ACTOR, NULL) != 0)
        fail_msg("issue %s: %s", serial, p11ca_err_message());
    reg_cert_clear(&c);
}

static reg_status status_of(struct treg *t, int64_t ca_id, const char *serial)
{
    reg_cert c;
    reg_status st;

    if (reg_get(t->r, ca_id, serial, &c) != 0)
        fail_msg("get %s: %s", serial, p11ca_err_message());
    st = c.status;
    reg_cert_clear(&c);
    return st;
}

/* Every audit entry after @since as "action:object:actor;" and the
 * details of the last one. */
struct seen {
    char text[4096];
    char details[8192];
    int n;
};

static int seen_cb(const reg_audit *a, void *arg)
{
    struct seen *s = arg;
    size_t used = strlen(s->text);

    snprintf(s->text + used, sizeof(s->text) - used, "%s:%s:%s;", a->action,
             a->object ? a->object : "-", a->actor);
    snprintf(s->details, sizeof(s->details), "%s",
             a->details ? a->details : "");
    s->n++;
    return 0;
}

static int64_t audit_last_seq(struct treg *t)
{
    struct seen s = {0};

    assert_int_equal(reg_audit_list(t->r, 0, seen_cb, &s), 0);
    return s.n;
}

static int no_cert(const reg_cert *c, void *arg)
{
    (void)c;
    (void)arg;
    return 0;
}

/* The controlled clock of the grace-period tests. */
static int64_t fake_now;

/* ------------------------------------------------------------------ */
/* Issuer and serial                                                   */
/* ------------------------------------------------------------------ */

static void test_registry_same_serial_of_two_issuers(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "91", "vendor1", true);
    int64_t v2 = add_ca(t, "92", "vendor2", true);
    reg_cert c;

    reg_of(t, v1, "4e", "device-a", 0);
    reg_of(t, v2, "4e", "device-b", 0);
    assert_int_equal(treg_count(t, &(reg_filter){.serial = "4E"}), 2);
    assert_int_equal(reg_get(t->r, v2, "004e", &c), 0);
    assert_string_equal(c.cn, "device-b");
    assert_int_equal(c.ca_id, v2);
    reg_cert_clear(&c);
    /* The same CA twice is still refused, and changes nothing. */
    treg_cert(&c, "4e", "device-c", NULL, now(), now() + 100);
    c.ca_id = v1;
    assert_fails(reg_register(t->r, &c, ACTOR, NULL), P11CA_E_EXISTS,
                 "serial 4E of CA 1 is already in the registry");
    reg_cert_clear(&c);
    assert_int_equal(treg_count(t, NULL), 2);
}

static void test_registry_ambiguous_serial_needs_the_issuer(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "91", "vendor1", true);
    int64_t v2 = add_ca(t, "92", "vendor2", true);
    reg_cert c;

    reg_of(t, v1, "4e", "device-a", 0);
    reg_of(t, v2, "4e", "device-b", 0);
    reg_of(t, v2, "4f", "device-c", 0);
    assert_fails(reg_get(t->r, 0, "4e", &c), P11CA_E_INPUT, "ambiguous");
    assert_fails(
        reg_set_status(t->r, 0, "4e", REG_ACTIVATED, 0, 0, ACTOR, NULL),
        P11CA_E_INPUT, "ambiguous");
    assert_fails(reg_delete(t->r, 0, "4e", ACTOR, NULL), P11CA_E_INPUT,
                 "give the issuer");
    /* Unique serials need no issuer; the issuer chooses otherwise. */
    assert_int_equal(status_of(t, 0, "4f"), REG_REGISTERED_NOT_ACTIVATED);
    assert_int_equal(reg_set_status(t->r, v1, "4e", REG_ACTIVATED, 0, 0, ACTOR,
                                    "vendor 1's device"),
                     0);
    assert_int_equal(status_of(t, v1, "4e"), REG_ACTIVATED);
    assert_int_equal(status_of(t, v2, "4e"), REG_REGISTERED_NOT_ACTIVATED);
    assert_int_equal(reg_delete(t->r, v2, "4e", ACTOR, NULL), 0);
    assert_int_equal(status_of(t, 0, "4e"), REG_ACTIVATED);
    assert_fails(reg_get(t->r, v2, "4e", &c), P11CA_E_NOTFOUND,
                 "no certificate with serial 4E of CA");
}

static void test_registry_ca_find_by_id_name_subject(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "91", "vendor1", true);
    int64_t v2 = add_ca(t, "92", "vendor2", true);
    int64_t id = 0;
    char num[24];

    snprintf(num, sizeof(num), "%lld", (long long)v2);
    assert_int_equal(reg_ca_find(t->r, num, &id), 0);
    assert_int_equal(id, v2);
    assert_int_equal(reg_ca_find(t->r, "vendor1", &id), 0);
    assert_int_equal(id, v1);
    assert_int_equal(reg_ca_find(t->r, "CN=vendor2", &id), 0);
    assert_int_equal(id, v2);
    assert_fails(reg_ca_find(t->r, "vendor3", &id), P11CA_E_NOTFOUND,
                 "no registered CA \"vendor3\"");
    assert_int_equal(id, 0);
}

/* A registry as schema version 1 made it: the migration keeps every row,
 * its history and order, and frees the serial for other issuers. */
static void test_registry_migrates_version_1(void **state)
{
    struct treg *t = *state;
    size_t len = 0;
    unsigned char *der = treg_der("4e", "old", NULL, 1, 2000000000, &len);
    char path[160], *hex, sql[8192];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    reg *r = NULL;
    reg_cert c;
    size_t n = 0;

    /* A schema 1 file is SQLite's history; PostgreSQL starts at 3. */
    if (treg_pg()) {
        OPENSSL_free(der);
        skip();
    }
    snprintf(path, sizeof(path), "%s/v1.db", t->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(reg_sqlite_migrations[0].version, 1);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version "
                                  "INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                  "applied_at INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES "
                                  "(1, '001_init', 1);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, reg_sqlite_migrations[0].sql, NULL, NULL, NULL),
        SQLITE_OK);
    hex = OPENSSL_buf2hexstr(der, (long)len);
    assert_non_null(hex);
    /* buf2hexstr separates bytes with ':'; SQLite wants bare hex. */
    for (char *p = hex, *q = hex;; p++)
        if (*p != ':' && !(*q++ = *p))
            break;
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO cas VALUES (1, 'ours', 'CN=ours', X'01', 1);INSERT INTO cas VALUES (2, 'vendor', 'CN=vendor', X'02', 1);INSERT INTO certs VALUES ('4e', 1, 'CN=a', 'CN=ours', 'a', NULL, 'a', 'client', 'issued', 'revoked', 1, 2000000000, 10, 20, 1, NULL, NULL, NULL, X'%s');INSERT INTO certs VALUES ('7', 2, 'CN=d', 'CN=vendor', 'd', NULL, 'd', NULL, 'registered', 'registered-not-activated', 1, 2000000000, 11, NULL, NULL, NULL, NULL, NULL, X'%s');INSERT INTO status_history (serial, at, from_status, to_status, actor, reason) VALUES ('4e', 10, NULL, 'activated', 'x', 'issued'), ('7', 11, NULL, 'registered-not-activated', 'x', 'registered'), ('4e', 20, 'activated', 'revoked', 'x', NULL);",
        hex, hex);
    OPENSSL_free(hex);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(reg_open(path, &r), 0);
    /* Through 002_issuer_serial, 003_audit_heads, 004_ca_autoreg,
     * 005_enroll_codes and 006_notify_signups. */
    assert_int_equal(reg_schema_version(r), 6);
    assert_int_equal(reg_get(r, 0, "4e", &c), 0);
    assert_int_equal(c.ca_id, 1);
    assert_int_equal(c.status, REG_REVOKED);
    reg_cert_clear(&c);
    assert_int_equal(reg_count(r, &(reg_filter){.ca_id = 2}, &n), 0);
    assert_int_equal(n, 1);
    reg_close(r);
    /* The history followed its certificates; CA 2 only has registered
     * certificates, so it became external. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT group_concat(x, ','), (SELECT "
                           "group_concat(external) FROM cas) FROM (SELECT "
                           "c.serial || '>' || h.to_status AS x FROM "
                           "status_history h JOIN certs c ON c.id = "
                           "h.cert_id ORDER BY h.id)",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0),
                        "4e>activated,7>registered-not-activated,4e>revoked");
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "0,1");
    sqlite3_finalize(st);
    sqlite3_close(db);
    OPENSSL_free(der);
}

/* The first value of @sql's first row on the PostgreSQL registry @loc
 * (postgresql:KEYWORDS), copied into @out; NULL @out: the statements must
 * only succeed. */
static void pg_value(const char *loc, const char *sql, char *out, size_t len)
{
    PGconn *c = PQconnectdb(loc + strlen("postgresql:"));
    PGresult *res = NULL;

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("PostgreSQL: %s", PQerrorMessage(c));
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK
        && PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("PostgreSQL: %s", PQresultErrorMessage(res));
    if (out)
        snprintf(out, len, "%s",
                 PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    PQfinish(c);
}

/* The same on PostgreSQL: a schema 1 registry (pg/001_init.sql) goes
 * through pg/002_issuer_serial.sql and pg/003_audit_heads.sql with every
 * row, its history and order. */
static void test_registry_pg_migrates_version_1(void **state)
{
    struct treg *t = *state;
    char loc[256], sql[8192], got[256], *hex = NULL;
    size_t len = 0, n = 0;
    unsigned char *der = NULL;
    reg *r = NULL;
    reg_cert c;

    /* SQLite: test_registry_migrates_version_1.  (cmocka's skip() would
     * be a failure to the TAP driver; registry-pg.sh turns skips into
     * skips.) */
    if (!treg_pg())
        return;
    der = treg_der("4e", "old", NULL, 1, 2000000000, &len);
    treg_fresh(t, "v1", loc, sizeof(loc), NULL, 0);
    assert_int_equal(reg_pg_migrations[0].version, 1);
    pg_value(loc,
             "CREATE TABLE schema_version (version integer PRIMARY KEY, "
             "name text NOT NULL, applied_at bigint NOT NULL); "
             "INSERT INTO schema_version VALUES (1, '001_init', 1)",
             NULL, 0);
    pg_value(loc, reg_pg_migrations[0].sql, NULL, 0);
    hex = OPENSSL_buf2hexstr(der, (long)len);
    assert_non_null(hex);
    for (char *p = hex, *q = hex;; p++)
        if (*p != ':' && !(*q++ = *p))
            break;
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO cas VALUES (1, 'ours', 'CN=ours', '\\x01', 1), (2, 'vendor', 'CN=vendor', '\\x02', 1); INSERT INTO certs VALUES ('4e', 1, 'CN=a', 'CN=ours', 'a', NULL, 'a', 'client', 'issued', 'revoked', 1, 2000000000, 10, 20, 1, NULL, NULL, NULL, decode('%s', 'hex')), ('7', 2, 'CN=d', 'CN=vendor', 'd', NULL, 'd', NULL, 'registered', 'registered-not-activated', 1, 2000000000, 11, NULL, NULL, NULL, NULL, NULL, decode('%s', 'hex')); INSERT INTO status_history (serial, at, from_status, to_status, actor, reason) VALUES ('4e', 10, NULL, 'activated', 'x', 'issued'), ('7', 11, NULL, 'registered-not-activated', 'x', 'registered'), ('4e', 20, 'activated', 'revoked', 'x', NULL)",
        hex, hex);
    OPENSSL_free(hex);
    pg_value(loc, sql, NULL, 0);

    assert_int_equal(reg_open(loc, &r), 0);
    assert_int_equal(reg_schema_version(r), 6);
    assert_int_equal(reg_get(r, 0, "4e", &c), 0);
    assert_int_equal(c.ca_id, 1);
    assert_int_equal(c.status, REG_REVOKED);
    reg_cert_clear(&c);
    assert_int_equal(reg_count(r, &(reg_filter){.ca_id = 2}, &n), 0);
    assert_int_equal(n, 1);
    reg_close(r);
    pg_value(loc,
             "SELECT string_agg(x, ',') FROM (SELECT c.serial || '>' || "
             "h.to_status AS x FROM status_history h JOIN certs c ON c.id = "
             "h.cert_id ORDER BY h.id) AS s",
             got, sizeof(got));
    assert_string_equal(got,
                        "4e>activated,7>registered-not-activated,4e>revoked");
    pg_value(loc, "SELECT string_agg(external::text, ',' ORDER BY id) FROM cas",
             got, sizeof(got));
    assert_string_equal(got, "0,1");
    /* 004: auto-registration off, with its default status. */
    pg_value(loc,
             "SELECT string_agg(auto_register || ':' || auto_status, ' ' "
             "ORDER BY id) FROM cas",
             got, sizeof(got));
    assert_string_equal(
        got, "0:registered-not-activated 0:registered-not-activated");
    OPENSSL_free(der);
}

/* The SQLite backend on its own: a certificate's key is exact (@ca_id 0
 * is the unknown issuer, never "any"), duplicates of a key are refused by
 * its unique index, history and status follow the key. */
static int count_cb(const reg_history *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
    return 0;
}

static void test_registry_backend_addresses_issuer_and_serial(void **state)
{
    struct treg *t = *state;
    const struct reg_backend *be =
        treg_pg() ? &reg_backend_pg : &reg_backend_sqlite;
    size_t len = 0;
    unsigned char *der = treg_der("91", "vendor1", NULL, 0, 2000000000, &len);
    int64_t v1 = 0, n = now();
    bool taken = true;
    int hist = 0;
    void *db = NULL;
    reg_cert a, b, got;
    char loc[256], path[256];

    treg_fresh(t, "backend", loc, sizeof(loc), path, sizeof(path));
    assert_int_equal(be->open(path, REG_OPEN_CREATE, &db), 0);
    assert_int_equal(
        be->ca_add(db, der, len, "vendor1", "CN=vendor1", true, &v1), 0);
    treg_cert(&a, "4e", "unknown-issuer", NULL, n, n + 100);
    treg_cert(&b, "4e", "vendor-device", NULL, n, n + 100);
    b.ca_id = v1;
    b.status = REG_REGISTERED_NOT_ACTIVATED;
    a.origin = strdup("issued");
    b.origin = strdup("registered");
    assert_int_equal(be->cert_insert(db, &a), 0);
    assert_int_equal(be->cert_insert(db, &b), 0);
    assert_fails(be->cert_insert(db, &b), P11CA_E_EXISTS,
                 "serial 4E of CA 1 is already in the registry");
    assert_int_equal(be->cert_get(db, 0, "4e", &got), 0);
    assert_string_equal(got.cn, "unknown-issuer");
    reg_cert_clear(&got);
    assert_int_equal(be->cert_set_status(db, v1, "4e", REG_ACTIVATED, 0, -1, 0),
                     0);
    assert_int_equal(be->cert_get(db, v1, "4e", &got), 0);
    assert_int_equal(got.status, REG_ACTIVATED);
    reg_cert_clear(&got);
    assert_int_equal(
        be->cert_set_status(db, 0, "4e", REG_NOT_ACTIVATED, 0, -1, 0), 0);
    assert_int_equal(be->cert_get(db, v1, "4e", &got), 0);
    assert_int_equal(got.status, REG_ACTIVATED);
    reg_cert_clear(&got);
    assert_int_equal(be->history_add(db, v1, "4e", n, REG_STATUS_ANY,
                                     REG_NOT_ACTIVATED, ACTOR, NULL),
                     0);
    assert_int_equal(be->history_list(db, v1, "4e", count_cb, &hist), 0);
    assert_int_equal(hist, 1);
    hist = 0;
    assert_int_equal(be->history_list(db, 0, "4e", count_cb, &hist), 0);
    assert_int_equal(hist, 0);
    assert_fails(be->history_add(db, 7, "4e", n, REG_STATUS_ANY, REG_ACTIVATED,
                                 ACTOR, NULL),
                 P11CA_E_NOTFOUND, "no certificate with serial 4E of CA 7");
    /* The activated one is the exception itself: not taken. */
    assert_int_equal(
        be->client_id_active(db, "vendor-device", v1, "4e", &taken), 0);
    assert_false(taken);
    assert_int_equal(be->client_id_active(db, "vendor-device", 0, "4e", &taken),
                     0);
    assert_true(taken);
    assert_int_equal(be->cert_set_revoke_after(db, v1, "4e", n + 5), 0);
    assert_int_equal(be->cert_get(db, v1, "4e", &got), 0);
    assert_int_equal(got.revoke_after, n + 5);
    reg_cert_clear(&got);
    assert_int_equal(be->cert_delete(db, 0, "4e"), 0);
    assert_fails(be->cert_delete(db, 0, "4e"), P11CA_E_NOTFOUND,
                 "no certificate with serial 4E");
    assert_int_equal(be->cert_get(db, v1, "4e", &got), 0);
    reg_cert_clear(&got);
    be->close(db);
    free(a.origin);
    a.origin = NULL;
    free(b.origin);
    b.origin = NULL;
    reg_cert_clear(&a);
    reg_cert_clear(&b);
    OPENSSL_free(der);
}

/* ------------------------------------------------------------------ */
/* Expired, revoked and external certificates                          */
/* ------------------------------------------------------------------ */

static void test_registry_expired_is_never_activated(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "91", "vendor1", true);

    reg_of(t, v1, "5", "old-device", now() - 60);
    assert_fails(
        reg_set_status(t->r, v1, "5", REG_ACTIVATED, 0, 0, ACTOR, NULL),
        P11CA_E_STATE, "has expired");
    assert_int_equal(status_of(t, v1, "5"), REG_REGISTERED_NOT_ACTIVATED);
}

static void test_registry_not_revoked_filter(void **state)
{
    struct treg *t = *state;
    char out[64];

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_ACTIVATED);
    set_status(t, "2", REG_REVOKED);
    treg_search(t, &(reg_filter){.valid_at = now()}, out, sizeof(out));
    assert_string_equal(out, "1,2");
    treg_search(t, &(reg_filter){.valid_at = now(), .not_revoked = true}, out,
                sizeof(out));
    assert_string_equal(out, "1");
}

static void test_registry_delete_revoked_of_external_ca(void **state)
{
    struct treg *t = *state;
    int64_t ours = add_ca(t, "90", "ours", false), v1 = 0, again = 0;
    size_t len = 0;
    unsigned char *der = treg_der("91", "vendor1", NULL, 0, 2000000000, &len);
    struct seen s = {0};

    assert_int_equal(reg_ca_add_external(t->r, der, len, "vendor1", &v1), 0);

    reg_of(t, v1, "6", "device", 0);
    issue_of(t, ours, "6", "alice", REG_ACTIVATED);
    assert_int_equal(
        reg_set_status(t->r, v1, "6", REG_REVOKED, 1, 0, ACTOR, NULL), 0);
    assert_int_equal(
        reg_set_status(t->r, ours, "6", REG_REVOKED, 1, 0, ACTOR, NULL), 0);
    /* Our CRL lists ours until it expires; the vendor's never was. */
    assert_fails(reg_delete(t->r, ours, "6", ACTOR, NULL), P11CA_E_STATE,
                 "the CRL must keep listing it");
    assert_int_equal(reg_delete(t->r, v1, "6", ACTOR, "vendor recall"), 0);
    assert_int_equal(treg_count(t, NULL), 1);
    assert_int_equal(reg_audit_list(t->r, audit_last_seq(t) - 1, seen_cb, &s),
                     0);
    assert_string_equal(s.text, "delete:6:" ACTOR ";");
    /* Registering a CA as external and then as ours makes it ours. */
    assert_int_equal(reg_ca_add(t->r, der, len, "vendor1", &again), 0);
    assert_int_equal(again, v1);
    OPENSSL_free(der);
    reg_of(t, v1, "8", "device", 0);
    assert_int_equal(
        reg_set_status(t->r, v1, "8", REG_REVOKED, 1, 0, ACTOR, NULL), 0);
    assert_fails(reg_delete(t->r, v1, "8", ACTOR, NULL), P11CA_E_STATE,
                 "the CRL must keep listing it");
}

/* ------------------------------------------------------------------ */
/* Renewal                                                             */
/* ------------------------------------------------------------------ */

static void test_registry_supersede_revokes_the_old(void **state)
{
    struct treg *t = *state;
    int64_t ours = add_ca(t, "90", "ours", false);
    int64_t seq;
    struct seen s = {0};
    reg_cert c;

    issue_of(t, ours, "1", "alice", REG_ACTIVATED);
    issue_of(t, ours, "2", "alice", REG_NOT_ACTIVATED);
    seq = audit_last_seq(t);
    assert_int_equal(
        reg_supersede(t->r, ours, "2", "1", REG_SUPERSEDE_REVOKE, 0, ACTOR), 0);
    assert_int_equal(status_of(t, ours, "2"), REG_ACTIVATED);
    assert_int_equal(reg_get(t->r, ours, "1", &c), 0);
    assert_int_equal(c.status, REG_REVOKED);
    assert_int_equal(c.reason, 4); /* superseded */
    reg_cert_clear(&c);
    assert_int_equal(reg_audit_list(t->r, seq, seen_cb, &s), 0);
    assert_string_equal(s.text, "deactivate:1:" ACTOR ";activate:2:" ACTOR
                                ";revoke:1:" ACTOR ";");
    assert_non_null(strstr(s.details, "\"reason\":\"superseded\""));
    assert_int_equal(reg_audit_verify_status(t->r, NULL), 0);
    /* Neither a revoked certificate nor one renewing a revoked one. */
    issue_of(t, ours, "3", "alice", REG_NOT_ACTIVATED);
    assert_fails(
        reg_supersede(t->r, ours, "3", "1", REG_SUPERSEDE_REVOKE, 0, ACTOR),
        P11CA_E_STATE, "certificate 01 of CA 1 is revoked");
    assert_fails(
        reg_supersede(t->r, ours, "3", "2", REG_SUPERSEDE_GRACE, 0, ACTOR),
        P11CA_E_INPUT, "grace period");
}

static void test_registry_supersede_keep_leaves_it_valid(void **state)
{
    struct treg *t = *state;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "alice", REG_NOT_ACTIVATED);
    assert_int_equal(
        reg_supersede(t->r, 0, "2", "1", REG_SUPERSEDE_KEEP, 0, ACTOR), 0);
    assert_int_equal(status_of(t, 0, "1"), REG_NOT_ACTIVATED);
    assert_int_equal(status_of(t, 0, "2"), REG_ACTIVATED);
}

/* The grace period ends on the clock; the next write revokes. */
static void test_registry_supersede_grace_ends_at_a_later_write(void **state)
{
    struct treg *t = *state;
    int64_t ours = add_ca(t, "90", "ours", false), seq;
    struct seen s = {0};
    uint64_t crl = 0;
    reg_cert c;

    fake_now = now();
    reg_clock_test_set(fake_now);
    issue_of(t, ours, "1", "alice", REG_ACTIVATED);
    issue_of(t, ours, "2", "alice", REG_NOT_ACTIVATED);
    assert_int_equal(reg_supersede(t->r, ours, "2", "1", REG_SUPERSEDE_GRACE,
                                   7 * 86400, ACTOR),
                     0);
    assert_int_equal(reg_get(t->r, ours, "1", &c), 0);
    assert_int_equal(c.status, REG_NOT_ACTIVATED);
    assert_int_equal(c.revoke_after, fake_now + 7 * 86400);
    reg_cert_clear(&c);
    assert_int_equal(
        treg_count(t, &(reg_filter){.revoke_due = fake_now + 7 * 86400}), 1);

    fake_now += 7 * 86400 - 1; /* a second before: still valid */
    reg_clock_test_set(fake_now);
    assert_int_equal(reg_crl_number_next(t->r, ours, &crl), 0);
    assert_int_equal(status_of(t, ours, "1"), REG_NOT_ACTIVATED);

    fake_now += 1;
    reg_clock_test_set(fake_now);
    seq = audit_last_seq(t);
    assert_int_equal(reg_crl_number_next(t->r, ours, &crl), 0);
    assert_int_equal(reg_get(t->r, ours, "1", &c), 0);
    assert_int_equal(c.status, REG_REVOKED);
    assert_int_equal(c.reason, 4);
    assert_int_equal(c.revoked_at, fake_now);
    assert_int_equal(c.revoke_after, 0);
    reg_cert_clear(&c);
    assert_int_equal(reg_audit_list(t->r, seq, seen_cb, &s), 0);
    assert_string_equal(s.text, "revoke:1:registry:scheduled;");
    assert_int_equal(reg_audit_verify(t->r, NULL), 0);
    /* The replay: schedule-revoke changes nothing, its revoke does. */
    assert_int_equal(reg_audit_verify_status(t->r, NULL), 0);
    reg_clock_test_set(0);
}

/* ------------------------------------------------------------------ */
/* Bulk revocation                                                     */
/* ------------------------------------------------------------------ */

static void test_registry_bulk_names_every_certificate(void **state)
{
    struct treg *t = *state;
    int64_t seq;
    struct seen s = {0};
    size_t count = 9;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_NOT_ACTIVATED);
    treg_record(t, "3", "carol", REG_ACTIVATED);
    seq = audit_last_seq(t);
    /* Confirmed for 2, but 3 match now: nothing happens. */
    assert_fails(reg_revoke_bulk(t->r, &(reg_filter){.ou = "eng"}, 1, ACTOR,
                                 NULL, 2, &count),
                 P11CA_E_STATE, "matches 3 certificate(s) now, not the 2");
    assert_int_equal(count, 0);
    assert_int_equal(treg_count(t, &(reg_filter){.status = REG_REVOKED}), 0);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.ou = "eng"}, 1, ACTOR,
                                     "office closed", 3, &count),
                     0);
    assert_int_equal(count, 3);
    assert_int_equal(reg_audit_list(t->r, seq, seen_cb, &s), 0);
    /* Each certificate's own entry (its history), then the summary. */
    assert_int_equal(s.n, 4);
    assert_string_equal(s.text, "revoke:1:" ACTOR ";revoke:2:" ACTOR
                                ";revoke:3:" ACTOR ";revoke-bulk:-:" ACTOR ";");
    assert_non_null(strstr(s.details,
                           "\"certs\":[{\"ca_id\":0,\"serial\":\"1\"},"
                           "{\"ca_id\":0,\"serial\":\"2\"},"
                           "{\"ca_id\":0,\"serial\":\"3\"}]"));
    assert_non_null(strstr(s.details, "\"count\":3"));
    assert_int_equal(reg_audit_verify_status(t->r, NULL), 0);
}

static void test_registry_bulk_audit_in_parts(void **state)
{
    struct treg *t = *state;
    const size_t n = REG_BULK_AUDIT_CERTS + 50;
    reg_cert *c = calloc(n, sizeof(*c));
    struct seen s = {0};
    size_t count = 0, bad = 0;
    char serial[16];
    int64_t seq;

    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        snprintf(serial, sizeof(serial), "%zx", i + 1);
        treg_cert(&c[i], serial, serial, "bulk", now(), now() + 100);
    }
    assert_int_equal(reg_record_batch(t->r, c, n, ACTOR, NULL, &bad), 0);
    seq = audit_last_seq(t);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.ou = "bulk"}, 5,
                                     ACTOR, NULL, n, &count),
                     0);
    assert_int_equal(count, n);
    assert_int_equal(reg_audit_list(t->r, seq, seen_cb, &s), 0);
    assert_int_equal(s.n, (int)n + 2); /* a revoke each, then 2 parts */
    assert_non_null(strstr(s.details, "\"part\":2,\"parts\":2"));
    assert_non_null(strstr(s.details, "{\"ca_id\":0,\"serial\":\"1c2\"}]"));
    assert_int_equal(reg_audit_verify(t->r, NULL), 0);
    assert_int_equal(reg_audit_verify_status(t->r, NULL), 0);
    for (size_t i = 0; i < n; i++)
        reg_cert_clear(&c[i]);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Patterns and orders                                                 */
/* ------------------------------------------------------------------ */

static void test_registry_pattern_metacharacters_are_literal(void **state)
{
    struct treg *t = *state;
    char out[64];

    treg_record(t, "1", "50%_off", REG_ACTIVATED);
    treg_record(t, "2", "50abc", REG_ACTIVATED);
    treg_record(t, "3", "a\\b", REG_ACTIVATED);
    treg_record(t, "4", "Star*", REG_ACTIVATED);
    treg_record(t, "5", "x' OR '1'='1", REG_ACTIVATED);
    treg_search(t, &(reg_filter){.cn_match = "50%"}, out, sizeof(out));
    assert_string_equal(out, "1");
    treg_search(t, &(reg_filter){.cn_match = "50_"}, out, sizeof(out));
    assert_string_equal(out, "");
    treg_search(t, &(reg_filter){.cn_match = "50*"}, out, sizeof(out));
    assert_string_equal(out, "1,2");
    treg_search(t, &(reg_filter){.cn_match = "5?%_o*"}, out, sizeof(out));
    assert_string_equal(out, "1");
    treg_search(t, &(reg_filter){.cn_match = "\\\\"}, out, sizeof(out));
    assert_string_equal(out, "3");
    treg_search(t, &(reg_filter){.cn_match = "star\\*"}, out, sizeof(out));
    assert_string_equal(out, "4");
    treg_search(t, &(reg_filter){.cn_match = "'1'='1"}, out, sizeof(out));
    assert_string_equal(out, "5");
    treg_search(t, &(reg_filter){.cn_match = "*"}, out, sizeof(out));
    assert_string_equal(out, "1,2,3,4,5");
}

static void test_registry_sort_orders(void **state)
{
    struct treg *t = *state;
    int64_t n = now();
    reg_cert c;
    char out[64];

    treg_record(t, "10", "bob", REG_ACTIVATED);
    treg_cert(&c, "a", "Alice", "eng", n - 10, n + 500);
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    treg_record(t, "9", "carol", REG_NOT_ACTIVATED);
    treg_search(t, &(reg_filter){.sort = REG_SORT_SERIAL}, out, sizeof(out));
    assert_string_equal(out, "9,a,10");
    treg_search(t, &(reg_filter){.sort = REG_SORT_CN, .descending = true}, out,
                sizeof(out));
    assert_string_equal(out, "9,10,a");
    treg_search(t, &(reg_filter){.sort = REG_SORT_NOT_AFTER}, out, sizeof(out));
    assert_string_equal(out, "a,10,9");
    treg_search(t, &(reg_filter){.sort = REG_SORT_STATUS, .limit = 2}, out,
                sizeof(out));
    assert_string_equal(out, "10,a");
    assert_fails(
        reg_search(t->r, &(reg_filter){.sort = (reg_sort)42}, no_cert, NULL),
        P11CA_E_INPUT, "unknown order");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, treg_setup, treg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_same_serial_of_two_issuers),
        T(test_registry_ambiguous_serial_needs_the_issuer),
        T(test_registry_ca_find_by_id_name_subject),
        T(test_registry_migrates_version_1),
        T(test_registry_pg_migrates_version_1),
        T(test_registry_backend_addresses_issuer_and_serial),
        T(test_registry_expired_is_never_activated),
        T(test_registry_not_revoked_filter),
        T(test_registry_delete_revoked_of_external_ca),
        T(test_registry_supersede_revokes_the_old),
        T(test_registry_supersede_keep_leaves_it_valid),
        T(test_registry_supersede_grace_ends_at_a_later_write),
        T(test_registry_bulk_names_every_certificate),
        T(test_registry_bulk_audit_in_parts),
        T(test_registry_pattern_metacharacters_are_literal),
        T(test_registry_sort_orders),
    };
#undef T

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
