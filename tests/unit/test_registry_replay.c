/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the audit trail's replay (each certificate's status as its
 * entries lead to, against the certificates table) and of the stored
 * signed heads (the registry's side: entry hashes, storage, order). */
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

/* ---- The replay ---- */

static void test_replay_lifecycle_matches(void **state)
{
    struct treg *t = *state;
    size_t n = 0;

    four_certs(t);
    set_status(t, "4", REG_ACTIVATED);
    set_status(t, "4", REG_NOT_ACTIVATED);
    assert_int_equal(reg_delete(t->r, "4", ACTOR, "gone"), 0);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.cn = "carol"}, 4,
                                     ACTOR, "bulk", &n),
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
                 "certificate 2 is activated in the registry, but its "
                 "audited history leads to revoked (audit entry 5)");
}

static void test_replay_detects_unrevoked_bulk_cert(void **state)
{
    struct treg *t = *state;
    size_t n = 0;

    four_certs(t);
    assert_int_equal(
        reg_revoke_bulk(t->r, &(reg_filter){.ou = "eng"}, 1, ACTOR, "lost", &n),
        0);
    assert_int_equal(n, 3);
    verify_ok(t, 4);
    assert_int_equal(treg_sql(t, "UPDATE certs SET status = 'activated' "
                                 "WHERE serial = '3'"),
                     0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 3 is activated in the registry, but its "
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
                 "certificate 2 is revoked with reason superseded in the "
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
                 "certificate abc is in the registry but the audit trail "
                 "never recorded it");
}

static void test_replay_detects_removed_cert(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "DELETE FROM certs WHERE serial = '3'"), 0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 3 is missing from the registry, but the audit "
                 "trail never deleted it");
}

static void test_replay_detects_deleted_cert_put_back(void **state)
{
    struct treg *t = *state;

    four_certs(t);
    assert_int_equal(treg_sql(t, "CREATE TABLE keep AS SELECT * FROM certs "
                                 "WHERE serial = '4'"),
                     0);
    assert_int_equal(reg_delete(t->r, "4", ACTOR, NULL), 0);
    verify_ok(t, 3);
    assert_int_equal(treg_sql(t, "INSERT INTO certs SELECT * FROM keep"), 0);
    assert_fails(reg_audit_verify_status(t->r, NULL), P11CA_E_STATE,
                 "certificate 4 is in the registry but audit entry 6 "
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
    assert_int_equal(reg_record_batch(t->r, &c, 1, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    treg_cert(&c, "b2", "ext", "eng", now() - 100, now() + 100);
    assert_int_equal(reg_register(t->r, &c, ACTOR), 0);
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
        T(test_heads_tip_and_entry_hash),
        T(test_heads_stored_in_order_per_ca),
        T(test_heads_refuse_a_hash_that_is_not_the_entry),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
