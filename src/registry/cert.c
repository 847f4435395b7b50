/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates as the registry sees them: DER parsing, serial
 * normalisation, status and CRL reason names. */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "registry/internal.h"

static int cert_name_text(const X509_NAME *name, char **out);
static int cert_names(reg_cert *c, const X509_NAME *subj);
static int cert_name_entry(const X509_NAME *name, int nid, char **out);
static int cert_serial(const X509 *x, char *out, size_t outlen);
static int cert_time(const ASN1_TIME *t, const char *which, int64_t *out);
static int spki_hash(const unsigned char *spki, size_t len, char **out);
static int cert_key_hash(const X509 *x, char **out);
static int cert_fill(reg_cert *c, const X509 *x);
static X509 *cert_parse(const unsigned char *der, size_t len);

static const char *const status_names[] = {
    [REG_STATUS_ANY] = "any",
    [REG_ACTIVATED] = "activated",
    [REG_NOT_ACTIVATED] = "not-activated",
    [REG_REGISTERED_NOT_ACTIVATED] = "registered-not-activated",
    [REG_REVOKED] = "revoked",
};
#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))

/* RFC 5280 section 5.3.1; 7 is not used. */
static const char *const reason_names[] = {
    "unspecified",     "keyCompromise",
    "cACompromise",    "affiliationChanged",
    "superseded",      "cessationOfOperation",
    "certificateHold", NULL,
    "removeFromCRL",   "privilegeWithdrawn",
    "aACompromise",
};
#define N_REASONS (sizeof(reason_names) / sizeof(reason_names[0]))

const char *reg_status_name(reg_status st)
{
    if ((unsigned)st >= N_STATUS)
        return "unknown";
    return status_names[st];
}

int reg_status_parse(const char *name, reg_status *st)
{
    for (size_t i = 0; name && i < N_STATUS; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *st = (reg_status)i;
            return 0;
        }
    }
    return p11ca_err_set(
        P11CA_E_INPUT,
        "unknown certificate status \"%s\" (activated, not-activated, registered-not-activated, revoked)",
        name ? name : "");
}

int reg_reason_parse(const char *name, int *reason)
{
    for (size_t i = 0; name && i < N_REASONS; i++) {
        if (reason_names[i] && strcasecmp(name, reason_names[i]) == 0) {
            *reason = (int)i;
            return 0;
        }
    }
    return p11ca_err_set(
        P11CA_E_INPUT,
        "unknown revocation reason \"%s\" (RFC 5280 names: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise)",
        name ? name : "");
}

const char *reg_reason_name(int reason)
{
    if (reason < 0 || (size_t)reason >= N_REASONS || !reason_names[reason])
        return "unknown";
    return reason_names[reason];
}

void reg_cert_clear(reg_cert *c)
{
    if (!c)
        return;
    free(c->subject);
    free(c->issuer);
    free(c->cn);
    free(c->ou);
    free(c->client_id);
    free(c->profile);
    free(c->origin);
    free(c->replaces);
    free(c->key_hash);
    free(c->der);
    memset(c, 0, sizeof(*c));
}

/* reg_serial_normalise without a message: 0, or -1 (not hex), -2 (too
 * long). */
static int serial_norm(const char *in, char *out, size_t outlen)
{
    const char *p = in;
    size_t n = 0, digits = 0;

    if (p && (strncmp(p, "0x", 2) == 0 || strncmp(p, "0X", 2) == 0))
        p += 2;
    for (const char *q = p; q && *q; q++)
        digits += *q != ':';
    if (!p || !digits || strspn(p, "0123456789abcdefABCDEF:") != strlen(p)
        || p[0] == ':' || p[strlen(p) - 1] == ':' || strstr(p, "::"))
        return -1;
    while ((p[0] == '0' || p[0] == ':') && digits > 1) {
        digits -= p[0] == '0';
        p++;
    }
    if (digits >= outlen)
        return -2;
    for (; *p; p++)
        if (*p != ':')
            out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
    return 0;
}

int reg_serial_normalise(const char *in, char *out, size_t outlen)
{
    int r = serial_norm(in, out, outlen);

    if (r == -1)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "bad serial \"%.80s\": expected hexadecimal, as openssl x509 -serial prints it (colons between the digits and 0x are accepted)",
            in ? in : "");
    if (r == -2)
        return p11ca_err_set(P11CA_E_INPUT,
                             "bad serial \"%.80s\": longer than %zu digits", in,
                             outlen - 1);
    return 0;
}

void reg_serial_text(const char *hex, char *out, size_t len)
{
    char norm[REG_SERIAL_TEXT_MAX];
    size_t n, i = 0;

    if (len < 3) {
        if (len)
            out[0] = '\0';
        return;
    }
    /* Quietly: a message being built must not be replaced. */
    if (serial_norm(hex, norm, sizeof(norm)) != 0) {
        snprintf(out, len, "?");
        return;
    }
    n = strlen(norm);
    if (n % 2)
        out[i++] = '0';
    for (const char *p = norm; *p && i + 1 < len; p++)
        out[i++] = (char)toupper((unsigned char)*p);
    out[i] = '\0';
}

const char *reg_serial_shown(const char *serial)
{
    static _Thread_local char buf[REG_SERIAL_TEXT_MAX];

    reg_serial_text(serial, buf, sizeof(buf));
    return buf;
}

const char *reg_cert_shown(int64_t ca_id, const char *serial)
{
    static _Thread_local char buf[REG_SERIAL_TEXT_MAX + 32];
    size_t n;

    reg_serial_text(serial, buf, REG_SERIAL_TEXT_MAX);
    n = strlen(buf);
    if (ca_id)
        snprintf(buf + n, sizeof(buf) - n, " of CA %lld", (long long)ca_id);
    return buf;
}

/* RFC 2253 text of @name (malloc'd). */
static int cert_name_text(const X509_NAME *name, char **out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    int rc = P11CA_E_NOMEM;

    if (!bio || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
        goto out;
    len = BIO_get_mem_data(bio, &data);
    *out = strndup(data ? data : "", len > 0 ? (size_t)len : 0);
    if (!*out)
        goto out;
    rc = 0;
out:
    BIO_free(bio);
    if (rc)
        p11ca_err_set(rc, "cannot print a certificate name");
    return rc;
}

/* The first entry @nid of @name as UTF-8 (malloc'd), or NULL if none. */
static int cert_name_entry(const X509_NAME *name, int nid, char **out)
{
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    int len, rc = P11CA_E_INPUT;

    *out = NULL;
    if (idx < 0)
        return 0;
    len = ASN1_STRING_to_UTF8(
        &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len < 0) {
        p11ca_err_set(rc, "certificate %s is not valid text", OBJ_nid2sn(nid));
        goto out;
    }
    if (strlen((char *)utf8) != (size_t)len) {
        p11ca_err_set(rc, "certificate %s contains a NUL byte",
                      OBJ_nid2sn(nid));
        goto out;
    }
    *out = strdup((char *)utf8);
    rc = *out ? 0 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
out:
    OPENSSL_free(utf8);
    return rc;
}

static int cert_serial(const X509 *x, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = NULL;
    int rc = P11CA_E_INPUT;

    if (!bn) {
        p11ca_err_set(rc, "certificate serial number unreadable");
        goto out;
    }
    if (BN_is_negative(bn)) {
        p11ca_err_set(rc, "certificate serial number is negative");
        goto out;
    }
    hex = BN_bn2hex(bn);
    if (!hex) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    rc = reg_serial_normalise(hex, out, outlen);
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return rc;
}

static int cert_time(const ASN1_TIME *t, const char *which, int64_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return p11ca_err_set(P11CA_E_INPUT, "certificate %s unreadable", which);
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Hex SHA-256 of @len bytes of DER SubjectPublicKeyInfo (malloc'd). */
static int spki_hash(const unsigned char *spki, size_t len, char **out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (!EVP_Digest(spki, len, md, &mdlen, EVP_sha256(), NULL))
        return p11ca_err_set(P11CA_E_INTERNAL, "SHA-256 failed");
    *out = malloc(mdlen * 2 + 1);
    if (!*out)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(*out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Hex SHA-256 of the DER SubjectPublicKeyInfo (malloc'd). */
static int cert_key_hash(const X509 *x, char **out)
{
    unsigned char *spki = NULL;
    int len, rc = P11CA_E_INPUT;

    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
    if (len <= 0) {
        p11ca_err_set(rc, "certificate public key unreadable");
        goto out;
    }
    rc = spki_hash(spki, (size_t)len, out);
out:
    OPENSSL_free(spki);
    return rc;
}

/* The subject's text, CN, OU, and the client ID it gives by default. */
static int cert_names(reg_cert *c, const X509_NAME *subj)
{
    int rc;

    if ((rc = cert_name_text(subj, &c->subject))
        || (rc = cert_name_entry(subj, NID_commonName, &c->cn))
        || (rc = cert_name_entry(subj, NID_organizationalUnitName, &c->ou)))
        return rc;
    if (c->cn && !(c->client_id = strdup(c->cn)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return 0;
}

/* Everything but the DER copy. */
static int cert_fill(reg_cert *c, const X509 *x)
{
    int rc;

    if ((rc = cert_serial(x, c->serial, sizeof(c->serial)))
        || (rc = cert_names(c, X509_get_subject_name(x)))
        || (rc = cert_name_text(X509_get_issuer_name(x), &c->issuer))
        || (rc = cert_time(X509_get0_notBefore(x), "notBefore", &c->not_before))
        || (rc = cert_time(X509_get0_notAfter(x), "notAfter", &c->not_after))
        || (rc = cert_key_hash(x, &c->key_hash)))
        return rc;
    return 0;
}

/* Exactly one DER certificate, or NULL with the message set. */
static X509 *cert_parse(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = NULL;

    /* A bad input is not a library failure: keep the error queue clean. */
    ERR_set_mark();
    if (der && len > 0 && len <= LONG_MAX)
        x = d2i_X509(NULL, &p, (long)len);
    ERR_pop_to_mark();
    if (x && p == der + len)
        return x;
    p11ca_err_set(P11CA_E_INPUT, "not a DER certificate%s",
                  x ? " (trailing data)" : "");
    X509_free(x);
    return NULL;
}

int reg_cert_from_der(reg_cert *c, const unsigned char *der, size_t len)
{
    X509 *x = NULL;
    int rc = P11CA_E_INPUT;

    memset(c, 0, sizeof(*c));
    c->reason = -1;
    x = cert_parse(der, len);
    if (!x)
        goto out;
    if ((rc = cert_fill(c, x)))
        goto out;
    c->der = malloc(len);
    if (!c->der) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(c->der, der, len);
    c->der_len = len;
    rc = 0;
out:
    X509_free(x);
    if (rc)
        reg_cert_clear(c);
    return rc;
}

int reg_cert_from_x509(reg_cert *c, X509 *x)
{
    unsigned char *der = NULL;
    int n, rc;

    memset(c, 0, sizeof(*c));
    c->reason = -1;
    n = i2d_X509(x, &der);
    if (n <= 0)
        return p11ca_err_set(P11CA_E_INPUT, "cannot encode the certificate");
    rc = cert_fill(c, x);
    if (!rc) {
        c->der = malloc((size_t)n);
        if (!c->der)
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        else {
            memcpy(c->der, der, (size_t)n);
            c->der_len = (size_t)n;
        }
    }
    OPENSSL_free(der);
    if (rc)
        reg_cert_clear(c);
    return rc;
}

int reg_x509_subject(const unsigned char *der, size_t len, char **subject)
{
    X509 *x = NULL;
    int rc = P11CA_E_INPUT;

    *subject = NULL;
    x = cert_parse(der, len);
    if (!x)
        goto out;
    rc = cert_name_text(X509_get_subject_name(x), subject);
out:
    X509_free(x);
    return rc;
}

int reg_cert_from_parts(reg_cert *c, const reg_cert_parts *p)
{
    int rc;

    memset(c, 0, sizeof(*c));
    c->reason = -1;
    c->not_before = p->not_before;
    c->not_after = p->not_after;
    if ((rc = reg_serial_normalise(p->serial, c->serial, sizeof(c->serial)))
        || (rc = cert_names(c, p->subject))
        || (rc = spki_hash(p->spki, p->spki_len, &c->key_hash)))
        goto out;
    c->issuer = strdup(p->issuer);
    c->der = malloc(p->der_len ? p->der_len : 1);
    if (!c->issuer || !c->der) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(c->der, p->der, p->der_len);
    c->der_len = p->der_len;
out:
    if (rc)
        reg_cert_clear(c);
    return rc;
}

int reg_name_text(const X509_NAME *name, char **out)
{
    *out = NULL;
    return cert_name_text(name, out);
}
