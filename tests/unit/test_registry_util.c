/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the registry unit tests: a fresh database per test and
 * self-signed test certificates made with OpenSSL. */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "registry/registry.h"
#include "treg.h"

/* One key signs every test certificate: P-256 is quick to use. */
static EVP_PKEY *treg_key;

int treg_group_setup(void **state)
{
    treg_key = EVP_EC_gen("P-256");
    return treg_key ? 0 : -1;
}

int treg_group_teardown(void **state)
{
    EVP_PKEY_free(treg_key);
    treg_key = NULL;
    return 0;
}

bool treg_pg(void)
{
    const char *v = getenv("P11CA_TEST_REGISTRY");

    return v && strcmp(v, "pg") == 0;
}

/* A connection to the test database as its superuser. */
static PGconn *treg_pg_connect(const char *schema)
{
    const char *base = getenv("P11CA_TEST_PG");
    char info[512];
    PGconn *c;

    if (!base)
        fail_msg("P11CA_TEST_REGISTRY=pg needs P11CA_TEST_PG");
    snprintf(info, sizeof(info), "%s%s%s", base,
             schema ? " options=-csearch_path=" : "", schema ? schema : "");
    c = PQconnectdb(info);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("PostgreSQL: %s", PQerrorMessage(c));
    return c;
}

/* Run fixed test SQL; 0 or the SQLite-style code of treg_sql. */
static int treg_pg_exec(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = state && strcmp(state, "23505") == 0 ? SQLITE_CONSTRAINT_UNIQUE
                                                  : SQLITE_ERROR;
        fprintf(stderr, "# PostgreSQL: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}

/* A new schema for one registry: its name (digits of our pid and a
 * counter) in @schema, a location in @loc, what the backend takes in
 * @be_loc (may be NULL). */
static void treg_pg_schema(char *schema, size_t slen, char *loc, size_t len,
                           char *be_loc, size_t be_len)
{
    static unsigned counter;
    char sql[128];
    PGconn *c = treg_pg_connect(NULL);

    snprintf(schema, slen, "t_%ld_%u", (long)getpid(), ++counter);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    assert_int_equal(treg_pg_exec(c, sql), 0);
    PQfinish(c);
    snprintf(loc, len, "postgresql:%s options=-csearch_path=%s",
             getenv("P11CA_TEST_PG"), schema);
    if (be_loc)
        snprintf(be_loc, be_len, "%s", loc + strlen("postgresql:"));
}

void treg_fresh(struct treg *t, const char *name, char *loc, size_t len,
                char *be_loc, size_t be_len)
{
    if (treg_pg()) {
        treg_pg_schema(t->fresh, sizeof(t->fresh), loc, len, be_loc, be_len);
        return;
    }
    snprintf(loc, len, "sqlite:%s/%s.db", t->dir, name);
    if (be_loc)
        snprintf(be_loc, be_len, "%s/%s.db", t->dir, name);
}

/* A private directory and an open registry in it (or in a schema). */
int treg_setup(void **state)
{
    struct treg *t = calloc(1, sizeof(*t));

    if (!t)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/p11ca-test-reg.XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    if (treg_pg()) {
        treg_pg_schema(t->schema, sizeof(t->schema), t->loc, sizeof(t->loc),
                       NULL, 0);
        memcpy(t->path, t->loc, sizeof(t->path) - 1);
    } else {
        snprintf(t->path, sizeof(t->path), "%s/reg.db", t->dir);
        snprintf(t->loc, sizeof(t->loc), "sqlite:%s", t->path);
    }
    p11ca_err_clear();
    if (reg_open(t->loc, &t->r) != 0) {
        fprintf(stderr, "# reg_open: %s\n", p11ca_err_message());
        *state = t;
        treg_teardown(state);
        return -1;
    }
    *state = t;
    return 0;
}

/* Close, and remove the directory with everything in it (PostgreSQL:
 * the test's schema and treg_fresh's). */
int treg_teardown(void **state)
{
    struct treg *t = *state;
    char file[512];
    struct dirent *e;
    DIR *dir;

    reg_close(t->r);
    if (t->schema[0]) {
        PGconn *c = treg_pg_connect(NULL);
        char sql[160];

        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", t->schema);
        (void)treg_pg_exec(c, sql);
        if (t->fresh[0]) {
            snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", t->fresh);
            (void)treg_pg_exec(c, sql);
        }
        PQfinish(c);
    }
    dir = opendir(t->dir);
    while (dir && (e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(file, sizeof(file), "%s/%s", t->dir, e->d_name);
        unlink(file);
    }
    if (dir)
        closedir(dir);
    rmdir(t->dir);
    free(t);
    return 0;
}

static void treg_name(X509_NAME *name, const char *cn, const char *ou)
{
    if (ou)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
                                                    (const unsigned char *)ou,
                                                    -1, -1, 0),
                         1);
    if (cn)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn,
                                                    -1, -1, 0),
                         1);
}

/* A self-signed DER certificate (caller frees). */
unsigned char *treg_der(const char *serial, const char *cn, const char *ou,
                        int64_t not_before, int64_t not_after, size_t *len)
{
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    unsigned char *der = NULL;
    int n;

    assert_non_null(x);
    assert_true(BN_hex2bn(&bn, serial) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    assert_int_equal(X509_set_version(x, 2), 1);
    treg_name(X509_get_subject_name(x), cn, ou);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after));
    assert_int_equal(X509_set_pubkey(x, treg_key), 1);
    assert_true(X509_sign(x, treg_key, EVP_sha256()) > 0);
    n = i2d_X509(x, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    BN_free(bn);
    X509_free(x);
    return der;
}

/* @c from a fresh certificate: activated, profile "client". */
void treg_cert(reg_cert *c, const char *serial, const char *cn, const char *ou,
               int64_t not_before, int64_t not_after)
{
    size_t len = 0;
    unsigned char *der = treg_der(serial, cn, ou, not_before, not_after, &len);

    assert_int_equal(reg_cert_from_der(c, der, len), 0);
    OPENSSL_free(der);
    c->status = REG_ACTIVATED;
    c->profile = strdup("client");
    assert_non_null(c->profile);
}

/* Record a certificate valid from an hour ago for a year, OU "eng". */
void treg_record(struct treg *t, const char *serial, const char *cn,
                 reg_status st)
{
    int64_t now = (int64_t)time(NULL);
    reg_cert c;

    treg_cert(&c, serial, cn, "eng", now - 3600, now + 365 * 86400);
    c.status = st;
    if (reg_record_issued(t->r, &c, "tester", NULL) != 0)
        fail_msg("record %s: %s", serial, p11ca_err_message());
    reg_cert_clear(&c);
}

/* Run @sql on the database behind the registry's back (treg.h). */
int treg_sql(struct treg *t, const char *sql)
{
    sqlite3 *db = NULL;
    int rc;

    if (t->schema[0]) {
        PGconn *c = treg_pg_connect(t->schema);

        /* Superuser only: no triggers fire, as for someone who edits the
         * database's files. */
        rc = treg_pg_exec(c, "SET session_replication_role = replica");
        if (!rc)
            rc = treg_pg_exec(c, sql);
        PQfinish(c);
        return rc;
    }
    assert_int_equal(sqlite3_open(t->path, &db), SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

struct treg_list {
    char *out;
    size_t len;
};

static int treg_list_cb(const reg_cert *c, void *arg)
{
    struct treg_list *l = arg;
    size_t used = strlen(l->out);

    snprintf(l->out + used, l->len - used, "%s%s", used ? "," : "", c->serial);
    return 0;
}

/* The serials @f finds, comma-separated, in order. */
void treg_search(struct treg *t, const reg_filter *f, char *out, size_t len)
{
    struct treg_list l = {out, len};

    out[0] = '\0';
    if (reg_search(t->r, f, treg_list_cb, &l) != 0)
        fail_msg("reg_search: %s", p11ca_err_message());
}

size_t treg_count(struct treg *t, const reg_filter *f)
{
    size_t n = 0;

    if (reg_count(t->r, f, &n) != 0)
        fail_msg("reg_count: %s", p11ca_err_message());
    return n;
}
