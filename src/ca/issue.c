/* SPDX-License-Identifier: Apache-2.0 */
/* Issuance: a checked request becomes a certificate (profile extensions,
 * SKI/AKI, CDP/AIA, a random serial), signed through EVP, recorded in the
 * registry before anyone may see it; PEM and PKCS#7 output. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "ca/internal.h"

#define MAX_RESIGN 5

static int serial_taken(ca *c, const char *serial, bool *taken);
static int client_id_held(const char *msg);
static int refuse(ca_req *r, int rc, const char *msg);
static int batch_group(ca *c, ca_req **reqs, size_t n);

int ca_req_sign(ca *c, ca_req *r)
{
    ca_signer *s = NULL;
    ca_key *k = NULL;
    const unsigned char *p;
    int rc = ca_signing_key(c, &k);

    if (rc == P11CA_OK)
        rc = ca_req_build(c, r);
    if (rc == P11CA_OK)
        rc = ca_signer_new(k, c->s.digest, &s);
    if (rc == P11CA_OK)
        rc = ca_req_sign_tbs(c, r, s);
    /* Callers of this one want the certificate as an object too. */
    X509_free(r->cert);
    r->cert = NULL;
    p = r->der;
    if (rc == P11CA_OK && !(r->cert = d2i_X509(NULL, &p, (long)r->der_len)))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot read the certificate made");
    ca_signer_free(s);
    return rc;
}

/* Whether @serial is in the registry (a collision, not a client ID). */
static int serial_taken(ca *c, const char *serial, bool *taken)
{
    reg_cert rc_cert;
    int rc;

    memset(&rc_cert, 0, sizeof(rc_cert));
    rc = reg_get(c->reg, c->reg_id, serial, &rc_cert);
    reg_cert_clear(&rc_cert);
    *taken = rc == P11CA_OK;
    return rc == P11CA_OK || rc == P11CA_E_NOTFOUND ? P11CA_OK : rc;
}

/* The registry's refusal @msg (a client ID held by another activated
 * certificate) with the ways out that issuance has. */
static int client_id_held(const char *msg)
{
    return p11ca_err_set(
        P11CA_E_EXISTS,
        "%s, or issue this one with --not-activated (and activate it later) or under another --client-id; a card renews with p11ca enroll --renew or --rekey",
        msg);
}

int ca_req_record(ca *c, ca_req *r)
{
    char msg[1024], what[256];
    reg_limit lim;
    bool taken = false;
    int rc = P11CA_E_INTERNAL;

    if (!r->der)
        return p11ca_err_set(rc, "record before sign");
    ca_profile_limit(c, r->profile, &lim, what, sizeof(what));
    for (int i = 0; i < MAX_RESIGN; i++) {
        rc = reg_record_issued(c->reg, &r->rec, ca_get_actor(c), &lim);
        if (rc != P11CA_E_EXISTS)
            break;
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        if (serial_taken(c, r->rec.serial, &taken) != P11CA_OK || !taken) {
            rc = client_id_held(msg);
            break;
        }
        rc = ca_req_sign(c, r);
        if (rc != P11CA_OK)
            break;
    }
    r->status = rc;
    return rc;
}

/* Mark @r refused with @msg (NULL: the current message); returns @rc. */
static int refuse(ca_req *r, int rc, const char *msg)
{
    free(r->msg);
    r->msg = strdup(msg ? msg : p11ca_err_message());
    r->status = rc;
    return rc;
}

/* One group commit of the pending requests among @reqs. */
static int batch_group(ca *c, ca_req **reqs, size_t n)
{
    reg_cert *recs = calloc(n ? n : 1, sizeof(*recs));
    size_t *idx = calloc(n ? n : 1, sizeof(*idx)), m, bad;
    char msg[1024], what[256];
    reg_limit lim = {0};
    bool taken;
    int rc = recs && idx ? P11CA_E_EXISTS : P11CA_E_NOMEM;

    /* A batch is one profile's (ca_issue_batch). */
    if (n)
        ca_profile_limit(c, reqs[0]->profile, &lim, what, sizeof(what));
    for (int tries = 0; rc == P11CA_E_EXISTS && tries < (int)n + MAX_RESIGN;
         tries++) {
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (reqs[i]->status == CA_REQ_PENDING) {
                recs[m] = reqs[i]->rec; /* shallow: the req keeps it */
                idx[m++] = i;
            }
        bad = m;
        rc = m ? reg_record_batch(c->reg, recs, m, ca_get_actor(c), &lim, &bad)
               : P11CA_OK;
        if (rc != P11CA_E_EXISTS || bad >= m)
            break;
        /* Kept: the serial lookup below sets a message of its own. */
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        if (serial_taken(c, recs[bad].serial, &taken) != P11CA_OK)
            break;
        if (!taken) /* not the serial: the client ID is held */
            refuse(reqs[idx[bad]], client_id_held(msg), NULL);
        else if (ca_req_sign(c, reqs[idx[bad]]) != P11CA_OK)
            refuse(reqs[idx[bad]], p11ca_err_rc(), NULL);
    }
    for (size_t i = 0; rc == P11CA_OK && i < n; i++)
        if (reqs[i]->status == CA_REQ_PENDING)
            reqs[i]->status = P11CA_OK;
    if (rc == P11CA_E_NOMEM)
        p11ca_err_set(rc, "out of memory");
    free(recs);
    free(idx);
    return rc;
}

int ca_req_record_batch(ca *c, ca_req **reqs, size_t n, size_t group)
{
    unsigned limit = n ? reqs[0]->profile->rate_limit : 0;
    int rc = P11CA_OK;

    for (size_t i = 1; i < n; i++)
        if (reqs[i]->profile != reqs[0]->profile)
            return p11ca_err_set(P11CA_E_INTERNAL,
                                 "a batch of several profiles");
    if (group == 0)
        group = 64;
    /* A transaction larger than the limit would never fit in a second. */
    if (limit && group > limit)
        group = limit;
    for (size_t i = 0; rc == P11CA_OK && i < n; i += group)
        rc = batch_group(c, reqs + i, n - i < group ? n - i : group);
    return rc;
}

X509 *ca_req_cert(const ca_req *r)
{
    return r->cert;
}

const char *ca_req_serial(const ca_req *r)
{
    return r->rec.serial;
}

const char *ca_req_name(const ca_req *r)
{
    return r->what;
}

const char *ca_req_client_id(const ca_req *r)
{
    return r->rec.client_id;
}

int ca_req_status(const ca_req *r, const char **msg)
{
    if (msg)
        *msg = r->msg ? r->msg : p11ca_strerror(r->status);
    return r->status;
}

int ca_output_pem(ca *c, X509 *leaf, bool chain, BIO *out)
{
    int ok = PEM_write_bio_X509(out, leaf);

    if (chain && ok && c->cert)
        ok = PEM_write_bio_X509(out, c->cert);
    for (int i = 0; chain && ok && i < sk_X509_num(c->chain); i++)
        ok = PEM_write_bio_X509(out, sk_X509_value(c->chain, i));
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_INTERNAL, "cannot write the certificate");
}

int ca_output_p7b(ca *c, X509 *leaf, BIO *out)
{
    PKCS7 *p7 = PKCS7_new();
    int ok = p7 && PKCS7_set_type(p7, NID_pkcs7_signed)
             && PKCS7_content_new(p7, NID_pkcs7_data)
             && PKCS7_add_certificate(p7, leaf);

    if (ok && c->cert)
        ok = PKCS7_add_certificate(p7, c->cert);
    for (int i = 0; ok && i < sk_X509_num(c->chain); i++)
        ok = PKCS7_add_certificate(p7, sk_X509_value(c->chain, i));
    ok = ok && i2d_PKCS7_bio(out, p7);
    PKCS7_free(p7);
    return ok ? P11CA_OK
              : ca_ossl_err(P11CA_E_INTERNAL, "cannot write the PKCS#7 chain");
}
