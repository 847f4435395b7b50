/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the audit trail's replay (each certificate's status as its
 * entries lead to, against the certificates table; certificates of
 * several CAs with one serial; entries written by older schemas) and of
 * the stored signed heads (the registry's side: entry hashes, storage,
 * order). */
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

/* The columns of the certs table, to copy a row in SQL. */
#define COLS                                                                   \
    "ca_id, subject, issuer, cn, ou, client_id, profile, origin, status, "     \
    "not_before, not_after, recorded_at, revoked_at, reason, invalidity, "     \
    "replaces, key_hash, der"

/* 1 activated, 2 revoked (keyCompromise), 3 activated, 4 not activated. */
static void four_certs(struct treg *t)
{
    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_ACTIVATED);
    treg_record(t, "3", "carol", REG_ACTIVATED);
    treg_record(t, "4", "dave", REG_NOT_ACTIVATED);
    set_status(t, "2", REG_REVOKED);
}

static void verify_ok(struct treg *t, size_t want)
{
    size_t certs = 0;

    if (reg_audit_verify_status(t->r, &certs) != 0)
        fail_msg("replay: %s", p11ca_err_message());
    assert_int_equal(certs, want);
}

/* An external CA named @name (its certificate is a throwaway). */
static int64_t add_ca(struct treg *t, const char *serial, const char *name)
{
    size_t len = 0;
    unsigned char *der = treg_der(serial, name, NULL, 0, 2000000000, &len);
    int64_t id = 0;

    assert_int_equal(reg_ca_add_external(t->r, der, len, name, &id), 0);
    OPENSSL_free(der);
    return id;
}

/* Certificate @serial (CN and client ID @cn) of CA @ca_id, registered and
 * activated. */
static void reg_of(struct treg *t, int64_t ca_id, const char *serial,
                   const char *cn)
{
    reg_cert c;

    treg_cert(&c, serial, cn, "dev", now() - 3600, now() + 86400);
    c.ca_id = ca_id;
    if (reg_register(t->r, &c, ACTOR, NULL) != 0
        || reg_set_status(t->r, ca_id, serial, REG_ACTIVATED, -1, 0, ACTOR,
                          NULL)
               != 0)
        fail_msg("register %s: %s", serial, p11ca_err_message());
    reg_cert_clear(&c);
}

/* Run printf-formatted SQL behind the registry's back. */
static int sqlf(struct treg *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sqlf(struct treg *t, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return treg_sql(t, sql);
}

static int64_t fake_now;

/* ---- The replay ---- */

static void test_replay_lifecycle_matches(void **state)
{
    struct treg *t = *state;
    size_t n = 0;

    four_certs(t);
    set_status(t, "4", REG_ACTIVATED);
    set_status(t, "4", REG_NOT_ACTIVATED);
    assert_int_equal(reg_delete(t->r, 0, "4", ACTOR, "gone"), 0);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.cn = "carol"}, 4,
                                     ACTOR, "bulk", 0, &n),
                     0);
    assert_int_equal(n, 1);
    verify_ok(t, 3);
}

static void test_replay_empty_registry(void **state)
{
    verify_ok(*state, 0);
}

static void test_replay_detects_unrevoked_cert(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'activated', "
                                 "revoked_at = NULL, reason = NULL "
                                 "WHERE serial = '2'"),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 02 is activated in the registry, but its "
                 "audited history leads to revoked (audit entry 5)");
}

static void test_replay_detects_unrevoked_bulk_cert(void **state)
{
    struct treg *t = *state;
    size_t n = 0;

    four_certs(t);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.ou = "eng"}, 1, ACTOR,
                                     "lost", 0, &n),
                     0);
    assert_int_equal(n, 3);
    verify_ok(t, 4);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'activated' "
                                 "WHERE serial = '3'"),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 03 is activated in the registry, but its "
                 "audited history leads to revoked");
}

static void test_replay_detects_changed_reason(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "UPDATE certs SET reason = 4 "
                                 "WHERE serial = '2'"),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 02 is revoked with reason superseded in the "
                 "registry, but audit entry 5 revoked it with reason "
                 "keyCompromise");
}

static void test_replay_detects_added_cert(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "INSERT INTO certs (serial, " COLS ") "
                                 "SELECT 'abc', " COLS " FROM certs "
                                 "WHERE serial = '4'"),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 0ABC is in the registry but the audit trail "
                 "never recorded it");
}

static void test_replay_detects_removed_cert(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "DELETE FROM certs WHERE serial = '3'"), 0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 03 is missing from the registry, but the audit "
                 "trail never deleted it");
}

static void test_replay_detects_deleted_cert_put_back(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "CREATE TABLE keep AS SELECT * FROM certs "
                                 "WHERE serial = '4'"),
                     0);
    assert_int_equal(reg_delete(t->r, 0, "4", ACTOR, NULL), 0);
    verify_ok(t, 3);
    assert_int_equal(treg_sql(t, "INSERT INTO certs SELECT * FROM keep"), 0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 04 is in the registry but audit entry 6 "
                 "deleted it");
}

/* Imported history (import-index) and registered certificates. */
static void test_replay_imported_and_registered(void **state)
{
    struct treg *t = *state;
    reg_cert c;

    treg_cert(&c, "a1", "old", "eng", now() - 100, now() + 100);
    c.status = REG_REVOKED;
    c.revoked_at = now() - 50;
    c.reason = 1;
    assert_int_equal(reg_record_batch(t->r, &c, 1, ACTOR, NULL, NULL), 0);
    reg_cert_clear(&c);
    treg_cert(&c, "b2", "ext", "eng", now() - 100, now() + 100);
    assert_int_equal(reg_register(t->r, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    set_status(t, "b2", REG_ACTIVATED);
    verify_ok(t, 2);
}

/* The replay reads the entries' text: an entry of a certificate that does
 * not say where it leads is refused, not skipped. */
static void test_replay_refuses_entry_without_status(void **state)
{
    struct treg *t = *state;

    assert_int_equal(reg_audit_add(t->r, ACTOR, "issue", "77", "{}"), 0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "audit entry 1 (issue 77) does not say which status");
}

/* ---- Certificates of several CAs with one serial ---- */

/* Each (CA, serial) has its own history: a change of one is not the
 * other's, and a change written into the table names the CA. */
static void test_replay_same_serial_of_two_cas(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "a1", "vendor1"), v2 = add_ca(t, "a2", "vendor2");
    char want[128];
    size_t n = 0;

    reg_of(t, v1, "4e", "dev-1");
    reg_of(t, v2, "4e", "dev-2");
    reg_of(t, v2, "5", "dev-3");
    assert_int_equal(
        reg_set_status(t->r, v2, "4e", REG_REVOKED, 1, 0, ACTOR, "lost"), 0);
    assert_int_equal(reg_revoke_bulk(t->r,
                                     &(reg_filter){.ca_id = v2, .ou = "dev"}, 5,
                                     ACTOR, "vendor 2 gone", 1, &n),
                     0);
    assert_int_equal(n, 1);
    verify_ok(t, 3);
    assert_int_equal(sqlf(t,
                          "UPDATE certs SET status = 'activated', "
                          "revoked_at = NULL, reason = NULL "
                          "WHERE serial = '4e' AND ca_id = %lld",
                          (long long)v2),
                     0);
    snprintf(
        want, sizeof(want),
        "certificate 4E of CA %lld is activated in the registry, but its audited history leads to revoked",
        (long long)v2);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE, want);
}

/* One of two certificates with the same serial deleted: the other stays. */
static void test_replay_same_serial_one_deleted(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "a1", "vendor1"), v2 = add_ca(t, "a2", "vendor2");
    char want[128];

    reg_of(t, v1, "4e", "dev-1");
    reg_of(t, v2, "4e", "dev-2");
    assert_int_equal(
        reg_set_status(t->r, v1, "4e", REG_NOT_ACTIVATED, -1, 0, ACTOR, NULL),
        0);
    assert_int_equal(reg_delete(t->r, v1, "4e", ACTOR, NULL), 0);
    verify_ok(t, 1);
    assert_int_equal(
        sqlf(t, "DELETE FROM certs WHERE ca_id = %lld", (long long)v2), 0);
    snprintf(want, sizeof(want),
             "certificate 4E of CA %lld is missing from the registry",
             (long long)v2);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE, want);
}

/* ---- Entries of older schemas ---- */

/* Schema 1 wrote status changes and deletions without "ca_id": such an
 * entry is about the one certificate of its serial the trail had then. */
static void test_replay_schema1_entries_name_the_serial_only(void **state)
{
    struct treg *t = *state;
    int64_t v1 = add_ca(t, "a1", "vendor1"), v2 = add_ca(t, "a2", "vendor2");

    reg_of(t, v1, "5", "eve");
    reg_of(t, v1, "6", "frank");
    assert_int_equal(reg_audit_add(t->r, ACTOR, "revoke", "5",
                                   "{\"from\":\"activated\",\"to\":\"revoked\","
                                   "\"reason\":\"keyCompromise\"}"),
                     0);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'revoked', "
                                 "reason = 1, revoked_at = 1 "
                                 "WHERE serial = '5'"),
                     0);
    assert_int_equal(
        reg_audit_add(t->r, ACTOR, "deactivate", "6",
                      "{\"from\":\"activated\",\"to\":\"not-activated\"}"),
        0);
    assert_int_equal(reg_audit_add(t->r, ACTOR, "delete", "6",
                                   "{\"status\":\"not-activated\"}"),
                     0);
    assert_int_equal(treg_sql(t, "DELETE FROM certs WHERE serial = '6'"), 0);
    verify_ok(t, 1);
    /* Since schema 2 another CA may have these serials: the old entries
     * still belong to vendor 1's certificates. */
    reg_of(t, v2, "5", "eve-2");
    reg_of(t, v2, "6", "frank-2");
    verify_ok(t, 3);
    /* An entry without a CA once two certificates have its serial. */
    assert_int_equal(
        reg_audit_add(t->r, ACTOR, "deactivate", "5",
                      "{\"from\":\"activated\",\"to\":\"not-activated\"}"),
        0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "changes certificate 05 without naming its CA, and the trail "
                 "has one of CA");
}

static void test_replay_refuses_unnamed_entry_of_unknown_cert(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(
        reg_audit_add(t->r, ACTOR, "revoke", "77", "{\"to\":\"revoked\"}"), 0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "audit entry 6 changes certificate 77 without naming its "
                 "CA, and the trail records no such certificate before it");
}

/* Schema 1's bulk revocation: one summary entry, no certificate named.
 * Certificates revoked in the table at its time with its reason, whose
 * history ends before it, are taken as its doing, "count" of them. */
static void test_replay_schema1_bulk_summary(void **state)
{
    struct treg *t = *state;

    fake_now = now();
    reg_clock_test_set(fake_now);
    four_certs(t);
    assert_int_equal(reg_audit_add(t->r, ACTOR, "revoke-bulk", NULL,
                                   "{\"count\":2,\"reason\":"
                                   "\"cessationOfOperation\",\"filter.ou\":"
                                   "\"eng\"}"),
                     0);
    assert_int_equal(sqlf(t,
                          "UPDATE certs SET status = 'revoked', reason = 5, "
                          "revoked_at = %lld WHERE serial IN ('3', '4')",
                          (long long)fake_now),
                     0);
    verify_ok(t, 4);
    /* Another certificate revoked at that time: more than its count. */
    assert_int_equal(sqlf(t,
                          "UPDATE certs SET status = 'revoked', reason = 5, "
                          "revoked_at = %lld WHERE serial = '1'",
                          (long long)fake_now),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "is revoked in the registry, but its audited history leads "
                 "to");
    /* Not at its time, or with another reason: not its doing. */
    assert_int_equal(sqlf(t,
                          "UPDATE certs SET status = 'activated', reason = "
                          "NULL, revoked_at = NULL WHERE serial = '1';"
                          "UPDATE certs SET revoked_at = %lld "
                          "WHERE serial = '3'",
                          (long long)fake_now + 1),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 03 is revoked in the registry");
    assert_int_equal(sqlf(t,
                          "UPDATE certs SET revoked_at = %lld, reason = 1 "
                          "WHERE serial = '3'",
                          (long long)fake_now),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 03 is revoked in the registry");
    reg_clock_test_set(0);
}

/* A "revoke-bulk" that lists its certificates stands for their revocation
 * (its first version wrote no entry per certificate). */
static void test_replay_bulk_list_alone(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(reg_audit_add(t->r, ACTOR, "revoke-bulk", NULL,
                                   "{\"count\":1,\"reason\":"
                                   "\"cessationOfOperation\",\"certs\":"
                                   "[{\"ca_id\":0,\"serial\":\"3\"}]}"),
                     0);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'revoked', "
                                 "reason = 5, revoked_at = 1 "
                                 "WHERE serial = '3'"),
                     0);
    verify_ok(t, 4);
    assert_int_equal(reg_audit_add(t->r, ACTOR, "revoke-bulk", NULL,
                                   "{\"count\":1,\"reason\":\"unspecified\","
                                   "\"certs\":[{\"serial\":\"1\"}]}"),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "audit entry 7 (revoke-bulk) lists a certificate without its "
                 "CA id and serial");
}

/* ---- Entry hashes and signed heads ---- */

static void test_heads_tip_and_entry_hash(void **state)
{
    struct treg *t = *state;
    char tip[65], h3[65];
    int64_t seq = -1;

    assert_int_equal(reg_audit_tip(t->r, &seq, tip), 0);
    assert_int_equal(seq, 0);
    assert_string_equal(tip, "");
    four_certs(t);
    assert_int_equal(reg_audit_tip(t->r, &seq, tip), 0);
    assert_int_equal(seq, 5);
    assert_int_equal(reg_audit_entry_hash(t->r, 5, h3), 0);
    assert_string_equal(h3, tip);
    assert_int_equal(reg_audit_entry_hash(t->r, 3, h3), 0);
    assert_int_equal(strlen(h3), 64);
    assert_string_not_equal(h3, tip);
    assert_fails(reg_audit_entry_hash(t->r, 6, h3), P11CA_E_NOTFOUND,
                 "no entry 6");
    assert_int_equal(treg_sql(t, "DELETE FROM audit WHERE seq = 3"), 0);
    assert_fails(reg_audit_entry_hash(t->r, 3, h3), P11CA_E_NOTFOUND,
                 "no entry 3");
}

struct heads_seen {
    char text[512];
};

static int heads_cb(const reg_audit_head *h, void *arg)
{
    struct heads_seen *s = arg;
    size_t used = strlen(s->text);

    snprintf(s->text + used, sizeof(s->text) - used, "%lld:%lld:%.*s;",
             (long long)h->seq, (long long)h->ca_id, (int)h->der_len,
             (const char *)h->der);
    return 0;
}

static void add_head(struct treg *t, int64_t seq, int64_t ca_id,
                     const char *der)
{
    char hash[65];
    reg_audit_head h;

    assert_int_equal(reg_audit_entry_hash(t->r, seq, hash), 0);
    h = (reg_audit_head){
        .seq = seq,
        .hash = hash,
        .at = now(),
        .ca_id = ca_id,
        .der = (const unsigned char *)der,
        .der_len = strlen(der),
    };
    assert_int_equal(reg_audit_head_add(t->r, &h), 0);
}

static void test_heads_stored_in_order_per_ca(void **state)
{
    struct treg *t = *state;
    struct heads_seen s = {{0}}, d = {{0}}, one = {{0}};
    int64_t ca1 = 0, ca2 = 0;
    size_t len;
    unsigned char *der1 = treg_der("ca1", "CA1", "ca", now(), now() + 9, &len);

    assert_int_equal(reg_ca_add(t->r, der1, len, "one", &ca1), 0);
    OPENSSL_free(der1);
    der1 = treg_der("ca2", "CA2", "ca", now(), now() + 9, &len);
    assert_int_equal(reg_ca_add(t->r, der1, len, "two", &ca2), 0);
    OPENSSL_free(der1);
    four_certs(t);
    add_head(t, 2, ca1, "h1");
    add_head(t, 4, ca2, "h2");
    add_head(t, 5, ca1, "h3");
    assert_int_equal(reg_audit_heads(t->r, 0, false, heads_cb, &s), 0);
    snprintf(one.text, sizeof(one.text), "2:%lld:h1;4:%lld:h2;5:%lld:h3;",
             (long long)ca1, (long long)ca2, (long long)ca1);
    assert_string_equal(s.text, one.text);
    assert_int_equal(reg_audit_heads(t->r, ca1, true, heads_cb, &d), 0);
    snprintf(one.text, sizeof(one.text), "5:%lld:h3;2:%lld:h1;", (long long)ca1,
             (long long)ca1);
    assert_string_equal(d.text, one.text);
}

static void test_heads_refuse_a_hash_that_is_not_the_entry(void **state)
{
    struct treg *t = *state;
    char hash[65];
    reg_audit_head h;
    struct heads_seen s = {{0}};

    four_certs(t);
    assert_int_equal(reg_audit_entry_hash(t->r, 4, hash), 0);
    h = (reg_audit_head){.seq = 5,
                         .hash = hash,
                         .at = now(),
                         .der = (const unsigned char *)"x",
                         .der_len = 1};
    assert_fails(reg_audit_head_add(t->r, &h), P11CA_E_STATE,
                 "audit entry 5 is not the one signed");
    h.seq = 6;
    assert_fails(reg_audit_head_add(t->r, &h), P11CA_E_STATE,
                 "audit entry 6 is not the one signed");
    h.seq = 4;
    h.der_len = 0;
    assert_fails(reg_audit_head_add(t->r, &h), P11CA_E_INPUT,
                 "needs an entry, its hash and the signed bytes");
    assert_int_equal(reg_audit_heads(t->r, 0, false, heads_cb, &s), 0);
    assert_string_equal(s.text, "");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, treg_setup, treg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_replay_lifecycle_matches),
        T(test_replay_empty_registry),
        T(test_replay_detects_unrevoked_cert),
        T(test_replay_detects_unrevoked_bulk_cert),
        T(test_replay_detects_changed_reason),
        T(test_replay_detects_added_cert),
        T(test_replay_detects_removed_cert),
        T(test_replay_detects_deleted_cert_put_back),
        T(test_replay_imported_and_registered),
        T(test_replay_refuses_entry_without_status),
        T(test_replay_same_serial_of_two_cas),
        T(test_replay_same_serial_one_deleted),
        T(test_replay_schema1_entries_name_the_serial_only),
        T(test_replay_refuses_unnamed_entry_of_unknown_cert),
        T(test_replay_schema1_bulk_summary),
        T(test_replay_bulk_list_alone),
        T(test_heads_tip_and_entry_hash),
        T(test_heads_stored_in_order_per_ca),
        T(test_heads_refuse_a_hash_that_is_not_the_entry),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
