/* SPDX-License-Identifier: Apache-2.0 */
/* CRLs: every revoked, unexpired certificate of the CA streamed from the
 * registry into a v2 CRL (number, AKI, reasons, invalidity dates), signed
 * through EVP with the CA key. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"

#define PROGRESS_EVERY 10000

struct crl_fill {
    X509_CRL *crl;
    size_t n;
    int rc;
    ca_progress_fn progress;
    void *arg;
};

static int entry_exts(X509_REVOKED *rev, const reg_revoked *e);
static int add_entry(const reg_revoked *e, void *arg);
static int crl_head(ca *c, X509_CRL *crl, time_t now, unsigned days);
static int crl_exts(ca *c, X509_CRL *crl, uint64_t number);
static int crl_save(ca *c, X509_CRL *crl, uint64_t number, size_t n,
                    unsigned days);
static int crl_lock(ca *c, int *fd);
static int floor_read(const char *path, uint64_t *last);
static int floor_check(ca *c, const char *path);
static int floor_write(const char *path, uint64_t number);

/* The reason code (not for "unspecified") and the invalidity date. */
static int entry_exts(X509_REVOKED *rev, const reg_revoked *e)
{
    ASN1_ENUMERATED *reason = NULL;
    ASN1_GENERALIZEDTIME *inv = NULL;
    int ok = 1;

    if (e->reason > 0) {
        reason = ASN1_ENUMERATED_new();
        ok = reason && ASN1_ENUMERATED_set(reason, e->reason)
             && X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0);
    }
    if (ok && e->invalidity > 0) {
        inv = ASN1_GENERALIZEDTIME_set(NULL, (time_t)e->invalidity);
        ok = inv
             && X509_REVOKED_add1_ext_i2d(rev, NID_invalidity_date, inv, 0, 0);
    }
    ASN1_ENUMERATED_free(reason);
    ASN1_GENERALIZEDTIME_free(inv);
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_NOMEM, "cannot make a CRL entry");
}

/* Called by the registry for each revoked certificate, in serial order. */
static int add_entry(const reg_revoked *e, void *arg)
{
    struct crl_fill *f = arg;
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;

    if (rev && when && BN_hex2bn(&bn, e->serial)
        && (serial = BN_to_ASN1_INTEGER(bn, NULL))
        && X509_REVOKED_set_serialNumber(rev, serial)
        && X509_REVOKED_set_revocationDate(rev, when))
        f->rc = entry_exts(rev, e);
    else
        f->rc =
            ca_ossl_err(P11CA_E_INTERNAL, "bad revoked entry %s", e->serial);
    if (f->rc == P11CA_OK && X509_CRL_add0_revoked(f->crl, rev)) {
        rev = NULL;
        if (++f->n % PROGRESS_EVERY == 0 && f->progress)
            f->progress(f->n, f->arg);
    } else if (f->rc == P11CA_OK) {
        f->rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    X509_REVOKED_free(rev);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return f->rc == P11CA_OK ? 0 : 1;
}

static int crl_head(ca *c, X509_CRL *crl, time_t now, unsigned days)
{
    ASN1_TIME *last = ASN1_TIME_set(NULL, now);
    ASN1_TIME *next = ASN1_TIME_adj(NULL, now, (int)days, 0);
    int ok = last && next && X509_CRL_set_version(crl, X509_CRL_VERSION_2)
             && X509_CRL_set_issuer_name(crl, X509_get_subject_name(c->cert))
             && X509_CRL_set1_lastUpdate(crl, last)
             && X509_CRL_set1_nextUpdate(crl, next);

    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return ok ? P11CA_OK : ca_ossl_err(P11CA_E_NOMEM, "cannot make the CRL");
}

/* Authority key identifier and CRL number. */
static int crl_exts(ca *c, X509_CRL *crl, uint64_t number)
{
    X509_EXTENSION *aki;
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    int ok;

    X509V3_set_ctx(&ctx, c->cert, NULL, NULL, crl, 0);
    aki = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier,
                               "keyid:always");
    ok = aki && X509_CRL_add_ext(crl, aki, -1) && num
         && ASN1_INTEGER_set_uint64(num, number)
         && X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_INTERNAL, "cannot make the CRL extensions");
}

/* DIR/crl.pem and the audit entry. */
static int crl_save(ca *c, X509_CRL *crl, uint64_t number, size_t n,
                    unsigned days)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *path = ca_path(c->dir, CA_CRL), num[32], details[128];
    int rc = P11CA_OK;

    if (!b || !path || !PEM_write_bio_X509_CRL(b, crl))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot encode the CRL");
    if (rc == P11CA_OK)
        rc = ca_write_bio_file(path, b, 0644, c->out_flags);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)number);
    snprintf(details, sizeof(details), "entries=%zu days=%u", n, days);
    if (rc == P11CA_OK)
        rc = reg_audit_add(c->reg, ca_get_actor(c), "crl", num, details);
    BIO_free(b);
    free(path);
    return rc;
}

/* One CRL maker at a time per CA directory, from the number check to the
 * write of DIR/last-crl-number (flock on the directory itself). */
static int crl_lock(ca *c, int *fd)
{
    *fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0 || flock(*fd, LOCK_EX) != 0)
        return p11ca_err_set(P11CA_E_IO, "cannot lock %s: %s", c->dir,
                             strerror(errno));
    return P11CA_OK;
}

/* DIR/last-crl-number: decimal digits and a newline; 0 when absent. */
static int floor_read(const char *path, uint64_t *last)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    char *end = NULL;
    int rc;

    *last = 0;
    if (!ca_exists(path))
        return P11CA_OK;
    rc = ca_file_read(path, 32, &buf, &len);
    if (rc != P11CA_OK)
        return rc;
    errno = 0;
    *last = strtoull((char *)buf, &end, 10);
    if (!isdigit(buf[0]) || errno || (*end && strcmp(end, "\n") != 0))
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "%s does not hold a CRL number; it records the last CRL this CA issued (never edit it)",
            path);
    free(buf);
    return rc;
}

static int floor_check(ca *c, const char *path)
{
    uint64_t last = 0, reg_last = 0;
    int rc = floor_read(path, &last);

    if (rc == P11CA_OK)
        rc = reg_crl_number_last(c->reg, c->reg_id, &reg_last);
    if (rc == P11CA_OK && reg_last < last)
        rc = p11ca_err_set(
            P11CA_E_REGISTRY,
            "CRL number %llu was issued (%s), but the registry's last CRL number is %llu: the registry is older than the last CRL and may lack revocations made since; refusing to issue a CRL from it. Restore the newest backup of %s",
            (unsigned long long)last, path, (unsigned long long)reg_last,
            reg_location_shown(c->registry_loc));
    return rc;
}

static int floor_write(const char *path, uint64_t number)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)number);

    return ca_write_file(path, text, (size_t)n, 0644);
}

int ca_crl_make(ca *c, unsigned days, ca_progress_fn progress, void *arg,
                X509_CRL **out, uint64_t *number, size_t *entries)
{
    struct crl_fill f = {X509_CRL_new(), 0, P11CA_OK, progress, arg};
    char *floor_path = ca_path(c->dir, CA_CRL_NUMBER);
    time_t now = time(NULL);
    uint64_t num = 0;
    ca_key *k = NULL;
    int lock = -1, rc;

    *out = NULL;
    free(c->warning);
    c->warning = NULL;
    if (days == 0)
        days = c->s.crl_days ? c->s.crl_days : CA_CRL_DAYS_DEFAULT;
    rc = floor_path ? crl_lock(c, &lock)
                    : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = floor_check(c, floor_path);
    if (rc == P11CA_OK)
        rc = ca_signing_key(c, &k);
    if (rc == P11CA_OK && !f.crl)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = crl_head(c, f.crl, now, days);
    /* A superseded certificate whose grace period ended is revoked now,
     * so that this CRL lists it. */
    if (rc == P11CA_OK)
        rc = reg_revoke_due(c->reg, NULL);
    if (rc == P11CA_OK)
        rc = reg_revoked_list(c->reg, c->reg_id, (int64_t)now, add_entry, &f);
    if (rc != P11CA_OK || f.rc != P11CA_OK)
        rc = f.rc != P11CA_OK ? f.rc : rc;
    if (rc == P11CA_OK)
        rc = reg_crl_number_next(c->reg, c->reg_id, &num);
    if (rc == P11CA_OK)
        rc = crl_exts(c, f.crl, num);
    if (rc == P11CA_OK && !X509_CRL_sort(f.crl))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot sort the CRL");
    if (rc == P11CA_OK)
        rc = ca_key_sign_crl(k, c->s.digest, f.crl);
    if (rc == P11CA_OK)
        rc = floor_write(floor_path, num);
    if (rc == P11CA_OK)
        rc = crl_save(c, f.crl, num, f.n, days);
    /* Every CRL signs the audit trail's head too (its entry included).
     * The CRL is made and recorded by now: a head that cannot be signed
     * (the token failed between the two signatures) is a warning, and the
     * next signature (p11ca audit sign, the next CRL) covers the entry. */
    if (rc == P11CA_OK && ca_audit_checkpoint(c, true, NULL) != P11CA_OK
        && asprintf(
               &c->warning,
               "the CRL was made, but the audit trail's head was not signed: %s (p11ca audit sign signs it)",
               p11ca_err_message())
               < 0)
        c->warning = NULL;
    if (rc == P11CA_OK) {
        *out = f.crl;
        f.crl = NULL;
        if (number)
            *number = num;
        if (entries)
            *entries = f.n;
    }
    X509_CRL_free(f.crl);
    if (lock >= 0)
        close(lock); /* releases the flock */
    free(floor_path);
    return rc;
}
