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

/* A private directory and an open registry in it. */
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
    snprintf(t->path, sizeof(t->path), "%s/reg.db", t->dir);
    snprintf(t->loc, sizeof(t->loc), "sqlite:%s", t->path);
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

/* Close, and remove the directory with everything in it. */
int treg_teardown(void **state)
{
    struct treg *t = *state;
    char file[512];
    struct dirent *e;
    DIR *dir;

    reg_close(t->r);
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

/* Run @sql on the database file behind the registry's back; the SQLite
 * (extended) result code. */
int treg_sql(struct treg *t, const char *sql)
{
    sqlite3 *db = NULL;
    int rc;

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
