/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the registry's audit trail (hash chain, tampering), bulk
 * revocation, CRL support, CAs, persistence and concurrent writers. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "registry/registry.h"
#include "treg.h"

/* ------------------------------------------------------------------ */
/* Audit trail                                                         */
/* ------------------------------------------------------------------ */

struct audit_seen {
    int n;
    char text[1024];
};

static int audit_cb(const reg_audit *a, void *arg)
{
    struct audit_seen *s = arg;
    size_t used = strlen(s->text);

    snprintf(s->text + used, sizeof(s->text) - used, "%lld:%s:%s:%s;",
             (long long)a->seq, a->actor, a->action,
             a->object ? a->object : "-");
    assert_int_equal(strlen(a->hash), 64);
    assert_int_equal(strlen(a->prev_hash), 64);
    s->n++;
    return 0;
}

/* Five entries: issue 1, 2, 3; activate 1 ... revoke 2. */
static void five_entries(struct treg *t)
{
    treg_record(t, "1", "alice", REG_NOT_ACTIVATED);
    treg_record(t, "2", "bob", REG_ACTIVATED);
    treg_record(t, "3", "carol", REG_ACTIVATED);
    set_status(t, "1", REG_ACTIVATED);
    set_status(t, "2", REG_REVOKED);
}

static void test_registry_audit_chain_verifies(void **state)
{
    struct treg *t = *state;
    struct audit_seen s = {0};
    size_t entries = 0;

    five_entries(t);
    assert_int_equal(reg_audit_verify(t->r, &entries), 0);
    assert_int_equal(entries, 5);
    assert_int_equal(reg_audit_list(t->r, 0, audit_cb, &s), 0);
    assert_string_equal(
        s.text, "1:tester:issue:1;2:tester:issue:2;3:tester:issue:3;4:" ACTOR
                ":activate:1;5:" ACTOR ":revoke:2;");
}

static int first_prev_cb(const reg_audit *a, void *arg)
{
    snprintf(arg, 65, "%s", a->prev_hash);
    return 1; /* the first entry is enough */
}

static void test_registry_audit_first_entry_links_to_zeros(void **state)
{
    struct treg *t = *state;
    char prev[65] = "";

    assert_int_equal(reg_audit_add(t->r, ACTOR, "ca-init", "root", "{}"), 0);
    assert_int_equal(reg_audit_list(t->r, 0, first_prev_cb, prev), 1);
    assert_string_equal(
        prev,
        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(reg_audit_verify(t->r, NULL), 0);
}

static void test_registry_audit_list_since(void **state)
{
    struct treg *t = *state;
    struct audit_seen s = {0};

    five_entries(t);
    assert_int_equal(reg_audit_list(t->r, 3, audit_cb, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.text, "4:" ACTOR ":activate:1;5:" ACTOR ":revoke:2;");
}

static void test_registry_audit_add_needs_actor_and_action(void **state)
{
    struct treg *t = *state;

    assert_fails(reg_audit_add(t->r, "", "crl", NULL, NULL), P11CA_E_INPUT,
                 "needs an actor and an action");
    assert_fails(reg_audit_add(t->r, ACTOR, NULL, NULL, NULL), P11CA_E_INPUT,
                 "needs an actor and an action");
}

static void test_registry_audit_detects_modified_entry(void **state)
{
    struct treg *t = *state;

    five_entries(t);
    assert_int_equal(treg_sql(t, "UPDATE audit SET details = '{}' "
                                 "WHERE seq = 2"),
                     0);
    assert_fails(reg_audit_verify(t->r, NULL), P11CA_E_STATE,
                 "audit entry 2 was modified");
}

static void test_registry_audit_detects_deleted_entry(void **state)
{
    struct treg *t = *state;
    size_t entries = 0;

    five_entries(t);
    assert_int_equal(treg_sql(t, "DELETE FROM audit WHERE seq = 2"), 0);
    assert_fails(reg_audit_verify(t->r, &entries), P11CA_E_STATE,
                 "audit entry 2 is missing (deleted)");
    assert_int_equal(entries, 1);
}

static void test_registry_audit_detects_changed_actor(void **state)
{
    struct treg *t = *state;

    five_entries(t);
    assert_int_equal(treg_sql(t, "UPDATE audit SET actor = 'mallory' "
                                 "WHERE seq = 4"),
                     0);
    assert_fails(reg_audit_verify(t->r, NULL), P11CA_E_STATE,
                 "audit entry 4 was modified");
}

/* Entry 3 rewritten with a hash that matches its new text: entry 4 no
 * longer chains to it. */
static void test_registry_audit_detects_rehashed_entry(void **state)
{
    struct treg *t = *state;

    five_entries(t);
    assert_int_equal(treg_sql(t, "UPDATE audit SET hash = (SELECT hash "
                                 "FROM audit WHERE seq = 2) WHERE seq = 3"),
                     0);
    assert_fails(reg_audit_verify(t->r, NULL), P11CA_E_STATE,
                 "audit entry 3 was modified");
}

static int details_cb(const reg_audit *a, void *arg)
{
    snprintf(arg, 256, "%s", a->details ? a->details : "");
    return 0;
}

static void test_registry_audit_details_are_escaped_json(void **state)
{
    struct treg *t = *state;
    char details[256];

    treg_record(t, "1", "alice", REG_ACTIVATED);
    assert_int_equal(reg_set_status(t->r, 0, "1", REG_REVOKED, 1, 0, ACTOR,
                                    "said \"lost\"\n\\"),
                     0);
    assert_int_equal(reg_audit_list(t->r, 1, details_cb, details), 0);
    assert_string_equal(
        details,
        "{\"ca_id\":0,\"from\":\"activated\",\"to\":\"revoked\",\"reason\":\"keyCompromise\",\"why\":\"said \\\"lost\\\"\\u000a\\\\\"}");
}

/* ------------------------------------------------------------------ */
/* Bulk revocation                                                     */
/* ------------------------------------------------------------------ */

static void test_registry_revoke_bulk(void **state)
{
    struct treg *t = *state;
    struct audit_seen s = {0};
    size_t count = 0;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_NOT_ACTIVATED);
    treg_record(t, "3", "carol", REG_ACTIVATED);
    set_status(t, "3", REG_REVOKED); /* already revoked: skipped */
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.ou = "eng"}, 5, ACTOR,
                                     "office closed", 0, &count),
                     0);
    assert_int_equal(count, 2);
    assert_int_equal(treg_count(t, &(reg_filter){.status = REG_REVOKED}), 3);
    assert_int_equal(reg_audit_list(t->r, 4, audit_cb, &s), 0);
    /* Each certificate's revocation, then the action with its filter. */
    assert_int_equal(s.n, 3);
    assert_string_equal(s.text, "5:" ACTOR ":revoke:1;6:" ACTOR
                                ":revoke:2;7:" ACTOR ":revoke-bulk:-;");
    assert_int_equal(reg_audit_verify(t->r, NULL), 0);
}

static void test_registry_revoke_bulk_refuses_empty_filter(void **state)
{
    struct treg *t = *state;
    size_t count = 9;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    assert_fails(reg_revoke_bulk(t->r, &(reg_filter){.limit = 5}, 0, ACTOR,
                                 NULL, 0, &count),
                 P11CA_E_INPUT, "filter is empty");
    assert_int_equal(count, 0);
    assert_fails(reg_revoke_bulk(t->r, &(reg_filter){.cn = "alice"}, 7, ACTOR,
                                 NULL, 0, &count),
                 P11CA_E_INPUT, "bad CRL reason code 7");
    assert_int_equal(treg_count(t, &(reg_filter){.status = REG_REVOKED}), 0);
}

/* ------------------------------------------------------------------ */
/* CRL support and CAs                                                 */
/* ------------------------------------------------------------------ */

struct revoked_seen {
    int n;
    char text[1024];
};

static int revoked_cb(const reg_revoked *e, void *arg)
{
    struct revoked_seen *s = arg;
    size_t used = strlen(s->text);

    snprintf(s->text + used, sizeof(s->text) - used, "%s:%d:%lld;", e->serial,
             e->reason, (long long)e->invalidity);
    assert_true(e->revoked_at > 0);
    s->n++;
    return 0;
}

static void revoke_cert(struct treg *t, const char *serial, int reason,
                        int64_t invalidity)
{
    if (reg_set_status(t->r, 0, serial, REG_REVOKED, reason, invalidity, ACTOR,
                       NULL))
        fail_msg("revoke %s: %s", serial, p11ca_err_message());
}

static void test_registry_revoked_list_in_serial_order(void **state)
{
    struct treg *t = *state;
    struct revoked_seen s = {0};
    static const char *const serials[] = {"100", "ff", "2", "a", "10"};

    for (int i = 0; i < 5; i++) {
        treg_record(t, serials[i], serials[i], REG_ACTIVATED);
        revoke_cert(t, serials[i], i, i == 1 ? 1234567890 : 0);
    }
    treg_record(t, "3", "not-revoked", REG_ACTIVATED);
    assert_int_equal(reg_revoked_list(t->r, 0, 0, revoked_cb, &s), 0);
    assert_string_equal(s.text, "2:2:0;a:3:0;10:4:0;ff:1:1234567890;100:0:0;");
}

static void test_registry_revoked_list_excludes_expired(void **state)
{
    struct treg *t = *state;
    struct revoked_seen s = {0};
    int64_t n = now();
    reg_cert c;

    treg_cert(&c, "5", "old", NULL, n - 2 * 86400, n - 86400);
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    treg_record(t, "6", "current", REG_ACTIVATED);
    revoke_cert(t, "5", 1, 0);
    revoke_cert(t, "6", 1, 0);
    assert_int_equal(reg_revoked_list(t->r, 0, n, revoked_cb, &s), 0);
    assert_string_equal(s.text, "6:1:0;");
    s = (struct revoked_seen){0};
    assert_int_equal(reg_revoked_list(t->r, 0, 0, revoked_cb, &s), 0);
    assert_int_equal(s.n, 2);
}

static void test_registry_revoked_list_per_ca(void **state)
{
    struct treg *t = *state;
    struct revoked_seen s = {0};
    size_t len = 0;
    unsigned char *der = treg_der("99", "CA", NULL, 0, 2000000000, &len);
    int64_t n = now(), id = 0;
    reg_cert c;

    assert_int_equal(reg_ca_add(t->r, der, len, "root", &id), 0);
    treg_cert(&c, "7", "ours", NULL, n, n + 100);
    c.ca_id = id;
    assert_int_equal(reg_record_issued(t->r, &c, ACTOR, NULL), 0);
    treg_record(t, "8", "other", REG_ACTIVATED);
    revoke_cert(t, "7", 1, 0);
    revoke_cert(t, "8", 1, 0);
    assert_int_equal(reg_revoked_list(t->r, id, 0, revoked_cb, &s), 0);
    assert_string_equal(s.text, "7:1:0;");
    reg_cert_clear(&c);
    OPENSSL_free(der);
}

/* Many entries, callback stops early: the stop value comes back. */
static int stop_at_500(const reg_revoked *e, void *arg)
{
    return ++*(int *)arg == 500 ? 42 : 0;
}

static void test_registry_revoked_list_large(void **state)
{
    struct treg *t = *state;
    struct revoked_seen s = {0};
    reg_cert *c = calloc(1000, sizeof(*c));
    int64_t n = now();
    size_t count = 0, bad = 0;
    char serial[16];
    int seen = 0;

    assert_non_null(c);
    for (int i = 0; i < 1000; i++) {
        snprintf(serial, sizeof(serial), "%x", i + 1);
        treg_cert(&c[i], serial, serial, "bulk", n, n + 100);
    }
    assert_int_equal(reg_record_batch(t->r, c, 1000, ACTOR, NULL, &bad), 0);
    assert_int_equal(reg_revoke_bulk(t->r, &(reg_filter){.ou = "bulk"}, 3,
                                     ACTOR, NULL, 0, &count),
                     0);
    assert_int_equal(count, 1000);
    assert_int_equal(reg_revoked_list(t->r, 0, n, stop_at_500, &seen), 42);
    assert_int_equal(seen, 500);
    assert_int_equal(reg_revoked_list(t->r, 0, n, revoked_cb, &s), 0);
    assert_int_equal(s.n, 1000);
    assert_non_null(strstr(s.text, "1:3:0;2:3:0;3:3:0;"));
    for (int i = 0; i < 1000; i++)
        reg_cert_clear(&c[i]);
    free(c);
}

static void test_registry_crl_numbers_per_ca(void **state)
{
    struct treg *t = *state;
    size_t len1 = 0, len2 = 0;
    unsigned char *d1 = treg_der("91", "CA1", NULL, 0, 2000000000, &len1);
    unsigned char *d2 = treg_der("92", "CA2", NULL, 0, 2000000000, &len2);
    int64_t ca1 = 0, ca2 = 0;
    uint64_t n = 0;

    assert_int_equal(reg_ca_add(t->r, d1, len1, "one", &ca1), 0);
    assert_int_equal(reg_ca_add(t->r, d2, len2, "two", &ca2), 0);
    for (uint64_t want = 1; want <= 3; want++) {
        assert_int_equal(reg_crl_number_next(t->r, ca1, &n), 0);
        assert_int_equal(n, want);
    }
    assert_int_equal(reg_crl_number_next(t->r, ca2, &n), 0);
    assert_int_equal(n, 1);
    assert_fails(reg_crl_number_next(t->r, 77, &n), P11CA_E_NOTFOUND,
                 "no CA with id 77");
    assert_fails(reg_crl_number_next(t->r, 0, &n), P11CA_E_INPUT,
                 "registered CA");
    OPENSSL_free(d1);
    OPENSSL_free(d2);
}

struct ca_seen {
    int n;
    char text[256];
};

static int ca_cb(const reg_ca *ca, void *arg)
{
    struct ca_seen *s = arg;
    size_t used = strlen(s->text);

    snprintf(s->text + used, sizeof(s->text) - used, "%lld:%s:%s;",
             (long long)ca->id, ca->name, ca->subject);
    assert_true(ca->der_len > 0);
    s->n++;
    return 0;
}

static void test_registry_ca_add_same_cert_same_id(void **state)
{
    struct treg *t = *state;
    struct ca_seen s = {0};
    size_t len1 = 0, len2 = 0;
    unsigned char *d1 = treg_der("91", "CA1", NULL, 0, 2000000000, &len1);
    unsigned char *d2 = treg_der("92", "CA2", NULL, 0, 2000000000, &len2);
    int64_t a = 0, b = 0, c = 0;

    assert_int_equal(reg_ca_add(t->r, d1, len1, "one", &a), 0);
    assert_int_equal(reg_ca_add(t->r, d1, len1, "again", &b), 0);
    assert_int_equal(reg_ca_add(t->r, d2, len2, "two", &c), 0);
    assert_true(a > 0);
    assert_int_equal(a, b);
    assert_true(c != a);
    assert_int_equal(reg_ca_list(t->r, ca_cb, &s), 0);
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(s.text, ":one:CN=CA1;"));
    assert_fails(reg_ca_add(t->r, d1, len1 - 1, "cut", &a), P11CA_E_INPUT,
                 "not a DER certificate");
    OPENSSL_free(d1);
    OPENSSL_free(d2);
}

/* ------------------------------------------------------------------ */
/* Persistence and concurrency                                         */
/* ------------------------------------------------------------------ */

static void test_registry_reopen_keeps_everything(void **state)
{
    struct treg *t = *state;
    size_t len = 0, entries = 0;
    unsigned char *der = treg_der("91", "CA1", NULL, 0, 2000000000, &len);
    int64_t id = 0;
    uint64_t n = 0;
    reg_cert c;

    assert_int_equal(reg_ca_add(t->r, der, len, "one", &id), 0);
    assert_int_equal(reg_crl_number_next(t->r, id, &n), 0);
    five_entries(t);
    reg_close(t->r);
    t->r = NULL;
    assert_int_equal(reg_open(t->loc, &t->r), 0);
    assert_int_equal(reg_get(t->r, 0, "2", &c), 0);
    assert_int_equal(c.status, REG_REVOKED);
    assert_int_equal(c.reason, 1);
    reg_cert_clear(&c);
    assert_int_equal(treg_count(t, NULL), 3);
    assert_int_equal(reg_audit_verify(t->r, &entries), 0);
    assert_int_equal(entries, 5);
    assert_int_equal(reg_crl_number_next(t->r, id, &n), 0);
    assert_int_equal(n, 2);
    OPENSSL_free(der);
}

#define WRITERS    4
#define PER_WRITER 50

/* A child: its own connection, PER_WRITER certificates; exit status 0 if
 * all were recorded.  No cmocka here: failures only set the status. */
static int writer(const char *loc, int id)
{
    int64_t n = now();
    char serial[16], actor[16];
    reg *r = NULL;
    reg_cert c;
    int bad = 0;

    if (reg_open(loc, &r) != 0) {
        fprintf(stderr, "# writer %d: %s\n", id, p11ca_err_message());
        return 1;
    }
    snprintf(actor, sizeof(actor), "writer%d", id);
    for (int i = 0; i < PER_WRITER && !bad; i++) {
        snprintf(serial, sizeof(serial), "%x", id * 0x1000 + i + 1);
        treg_cert(&c, serial, serial, NULL, n, n + 100);
        if (reg_record_issued(r, &c, actor, NULL) != 0) {
            fprintf(stderr, "# writer %d: %s\n", id, p11ca_err_message());
            bad = 1;
        }
        reg_cert_clear(&c);
    }
    reg_close(r);
    return bad;
}

/* Four processes open a new database at once (racing on its creation and
 * migration) and record 50 certificates each. */
static void test_registry_concurrent_writers(void **state)
{
    struct treg *t = *state;
    char loc[256];
    pid_t pids[WRITERS];
    size_t entries = 0, n = 0;
    int status;
    reg *r = NULL;

    /* A child must not inherit an open connection (SQLite forbids using
     * it there, and its memory would count as the child's leak). */
    reg_close(t->r);
    t->r = NULL;
    treg_fresh(t, "concurrent", loc, sizeof(loc), NULL, 0);
    for (int i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(writer(loc, i + 1));
    }
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(reg_open(loc, &r), 0);
    assert_int_equal(reg_count(r, NULL, &n), 0);
    assert_int_equal(n, WRITERS * PER_WRITER);
    assert_int_equal(reg_audit_verify(r, &entries), 0);
    assert_int_equal(entries, WRITERS * PER_WRITER);
    reg_close(r);
}

/* reg_copy: a registry with a CA, revoked and deactivated certificates and
 * a signed head, into a fresh one: the same rows, the same trail, and the
 * copy works on (new rows get ids after the copied ones). */
static void test_registry_copy_moves_everything(void **state)
{
    static const unsigned char sig[] = {0x30, 0x03, 0x02, 0x01, 0x07};
    struct treg *t = *state;
    reg_copy_count counts[REG_COPY_TABLES];
    char loc[256], h1[65], h2[65];
    int64_t ca_id = 0, s1 = 0, s2 = 0;
    size_t len = 0, n = 0;
    unsigned char *der =
        treg_der("99", "Copy CA", NULL, now() - 60, now() + 86400, &len);
    reg_audit_head h;
    reg_cert c;
    reg *to = NULL;

    assert_int_equal(reg_ca_add(t->r, der, len, "copy", &ca_id), 0);
    OPENSSL_free(der);
    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_ACTIVATED);
    treg_record(t, "3", "carol", REG_ACTIVATED);
    assert_int_equal(
        reg_set_status(t->r, 0, "2", REG_REVOKED, 1, 0, ACTOR, "lost"), 0);
    set_status(t, "3", REG_NOT_ACTIVATED);
    assert_int_equal(reg_audit_tip(t->r, &s1, h1), 0);
    h = (reg_audit_head){.seq = s1,
                         .hash = h1,
                         .at = now(),
                         .ca_id = ca_id,
                         .der = sig,
                         .der_len = sizeof(sig)};
    assert_int_equal(reg_audit_head_add(t->r, &h), 0);

    treg_fresh(t, "copy", loc, sizeof(loc), NULL, 0);
    assert_int_equal(reg_open(loc, &to), 0);
    assert_int_equal(reg_copy(t->r, to, counts), 0);
    assert_string_equal(counts[1].table, "certs");
    assert_int_equal(counts[1].rows, 3);
    assert_string_equal(counts[5].table, "audit_heads");
    assert_int_equal(counts[5].rows, 1);
    assert_int_equal(reg_get(to, 0, "2", &c), 0);
    assert_int_equal(c.status, REG_REVOKED);
    assert_int_equal(c.reason, 1);
    reg_cert_clear(&c);
    assert_int_equal(reg_get(to, 0, "3", &c), 0);
    assert_int_equal(c.status, REG_NOT_ACTIVATED);
    reg_cert_clear(&c);
    assert_int_equal(reg_audit_tip(to, &s2, h2), 0);
    assert_int_equal(s2, s1);
    assert_string_equal(h2, h1);
    assert_int_equal(reg_audit_verify(to, &n), 0);
    assert_int_equal(n, (size_t)s1);
    assert_int_equal(reg_audit_verify_status(to, &n), 0);
    assert_int_equal(n, 3);

    /* New rows after the copied ids: a certificate, its history, a head. */
    treg_cert(&c, "4", "dave", "eng", now() - 60, now() + 86400);
    c.status = REG_ACTIVATED;
    assert_int_equal(reg_record_issued(to, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    assert_int_equal(
        reg_set_status(to, 0, "4", REG_REVOKED, 4, 0, ACTOR, "gone"), 0);
    assert_int_equal(reg_audit_tip(to, &s2, h2), 0);
    h.seq = s2;
    h.hash = h2;
    assert_int_equal(reg_audit_head_add(to, &h), 0);
    assert_int_equal(reg_audit_verify(to, NULL), 0);
    assert_int_equal(reg_count(to, NULL, &n), 0);
    assert_int_equal(n, 4);
    /* The source is as it was. */
    assert_int_equal(reg_count(t->r, NULL, &n), 0);
    assert_int_equal(n, 3);
    reg_close(to);
}

/* A target with any row is refused and keeps what it had. */
static void test_registry_copy_refuses_nonempty_target(void **state)
{
    struct treg *t = *state;
    char loc[256];
    size_t n = 0;
    reg_cert c;
    reg *to = NULL;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_fresh(t, "busy", loc, sizeof(loc), NULL, 0);
    assert_int_equal(reg_open(loc, &to), 0);
    treg_cert(&c, "7", "zoe", "eng", now() - 60, now() + 86400);
    c.status = REG_ACTIVATED;
    assert_int_equal(reg_record_issued(to, &c, ACTOR, NULL), 0);
    reg_cert_clear(&c);
    assert_fails(reg_copy(t->r, to, NULL), P11CA_E_EXISTS, "not empty");
    assert_int_equal(reg_count(to, NULL, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(reg_get(to, 0, "1", &c), P11CA_E_NOTFOUND);
    assert_int_equal(reg_audit_verify(to, NULL), 0);
    reg_close(to);
}

/* A copy that does not check (an edited source entry) writes nothing. */
static void test_registry_copy_checks_before_commit(void **state)
{
    struct treg *t = *state;
    char loc[256], hash[65];
    int64_t seq = -1;
    size_t n = 1;
    reg *to = NULL;

    treg_record(t, "1", "alice", REG_ACTIVATED);
    treg_record(t, "2", "bob", REG_ACTIVATED);
    assert_int_equal(
        treg_sql(t, "UPDATE audit SET details = 'edited' WHERE seq = 1"), 0);
    treg_fresh(t, "checked", loc, sizeof(loc), NULL, 0);
    assert_int_equal(reg_open(loc, &to), 0);
    assert_fails(reg_copy(t->r, to, NULL), P11CA_E_STATE,
                 "audit trail does not verify: audit entry 1 was modified");
    assert_int_equal(reg_count(to, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(reg_audit_tip(to, &seq, hash), 0);
    assert_int_equal(seq, 0);
    reg_close(to);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, treg_setup, treg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_audit_chain_verifies),
        T(test_registry_audit_first_entry_links_to_zeros),
        T(test_registry_audit_list_since),
        T(test_registry_audit_add_needs_actor_and_action),
        T(test_registry_audit_detects_modified_entry),
        T(test_registry_audit_detects_deleted_entry),
        T(test_registry_audit_detects_changed_actor),
        T(test_registry_audit_detects_rehashed_entry),
        T(test_registry_audit_details_are_escaped_json),
        T(test_registry_revoke_bulk),
        T(test_registry_revoke_bulk_refuses_empty_filter),
        T(test_registry_revoked_list_in_serial_order),
        T(test_registry_revoked_list_excludes_expired),
        T(test_registry_revoked_list_per_ca),
        T(test_registry_revoked_list_large),
        T(test_registry_crl_numbers_per_ca),
        T(test_registry_ca_add_same_cert_same_id),
        T(test_registry_reopen_keeps_everything),
        T(test_registry_concurrent_writers),
        T(test_registry_copy_moves_everything),
        T(test_registry_copy_refuses_nonempty_target),
        T(test_registry_copy_checks_before_commit),
    };
#undef T

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, treg_group_setup, treg_group_teardown);
}
