/* SPDX-License-Identifier: Apache-2.0 */
/* What a certificate issued elsewhere must be before it is registered
 * (p11ca cert register, the service's POST /v1/certs): not a CA, not
 * expired, issued by a registered CA whose signature OpenSSL verifies. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/internal.h"

/* The registered CA that issued a certificate, while reg_ca_list walks. */
struct issuer_find {
    X509 *cert;
    int64_t want; /* the CA asked for; 0: any */
    int64_t id;   /* the CA found */
    int err;      /* X509_V_ERR of the last CA tried */
    char name[256];
};

/*
 * Whether @cert chains to @anchor, verified by OpenSSL: @anchor as the
 * trust anchor even when it is an intermediate (partial chain), its
 * signature, the CA's constraints and key usage.  Times are left out: an
 * expired certificate has its own refusal.  1 yes, 0 no (with *@err), -1
 * when the check could not run.
 */
static int chains_to(X509 *cert, X509 *anchor, int *err)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = -1;

    *err = X509_V_OK;
    if (!store || !ctx || !X509_STORE_add_cert(store, anchor)
        || !X509_STORE_CTX_init(ctx, store, cert, NULL))
        goto out;
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN
                                      | X509_V_FLAG_NO_CHECK_TIME);
    ok = X509_verify_cert(ctx) == 1;
    if (!ok)
        *err = X509_STORE_CTX_get_error(ctx);
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return ok;
}

/* Is @rca (or the one asked for) the issuer of the certificate? */
static int issuer_one(const reg_ca *rca, void *arg)
{
    struct issuer_find *f = arg;
    const unsigned char *p = rca->der;
    X509 *x = NULL;
    int ok = 0;

    if (f->want && rca->id != f->want)
        return 0;
    x = d2i_X509(NULL, &p, (long)rca->der_len);
    if (!x)
        return 0;
    if (f->want || X509_check_issued(x, f->cert) == X509_V_OK) {
        ok = chains_to(f->cert, x, &f->err);
        snprintf(f->name, sizeof(f->name), "%s",
                 rca->name      ? rca->name
                 : rca->subject ? rca->subject
                                : "");
    }
    X509_free(x);
    ERR_clear_error();
    if (ok < 0)
        return p11ca_err_set(P11CA_E_INTERNAL, "cannot verify a chain");
    if (ok)
        f->id = rca->id;
    return ok;
}

/* The certificate itself: no CA, not expired unless allowed. */
static int cert_check(X509 *x, const char *what, ca_reg_check *chk)
{
    const ASN1_TIME *na = X509_get0_notAfter(x);
    time_t now = time(NULL), soon;
    char until[32] = "?";
    struct tm tm;

    soon = now + (time_t)CA_REGISTER_WARN_DAYS * 86400;
    if (X509_get_extension_flags(x) & EXFLAG_CA) {
        chk->refusal = CA_REG_IS_CA;
        return p11ca_err_set(
            P11CA_E_POLICY, "%s is a CA certificate (basicConstraints CA:TRUE)",
            what);
    }
    chk->expired = X509_cmp_time(na, &now) <= 0;
    chk->expires_soon = !chk->expired && X509_cmp_time(na, &soon) <= 0;
    if (!chk->expired || chk->allow_expired)
        return P11CA_OK;
    if (ASN1_TIME_to_tm(na, &tm) == 1)
        strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
    chk->refusal = CA_REG_EXPIRED;
    return p11ca_err_set(P11CA_E_POLICY,
                         "%s expired on %s: nothing was registered", what,
                         until);
}

/* The registered CA that issued it: the one asked for, which must
 * verify, else the first registered CA that does. */
static int issuer_check(ca *c, X509 *x, const char *what, ca_reg_check *chk)
{
    struct issuer_find f = {.cert = x, .want = chk->want};
    int rc = reg_ca_list(c->reg, issuer_one, &f);

    if (rc < 0)
        return rc;
    if (f.id) {
        chk->ca_id = f.id;
        return P11CA_OK;
    }
    chk->refusal = CA_REG_NO_ISSUER;
    if (f.want)
        return p11ca_err_set(
            P11CA_E_POLICY, "%s does not chain to CA %lld (%s): %s", what,
            (long long)f.want, f.name, X509_verify_cert_error_string(f.err));
    return p11ca_err_set(
        P11CA_E_POLICY, "%s is not issued by a registered CA%s%s", what,
        f.err ? ": " : "", f.err ? X509_verify_cert_error_string(f.err) : "");
}

int ca_register_check(ca *c, X509 *x, const char *what, ca_reg_check *chk)
{
    int rc;

    chk->ca_id = 0;
    chk->refusal = CA_REG_OK;
    chk->expired = false;
    chk->expires_soon = false;
    rc = cert_check(x, what, chk);
    if (rc == P11CA_OK)
        rc = issuer_check(c, x, what, chk);
    return rc;
}
