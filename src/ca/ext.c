/* SPDX-License-Identifier: Apache-2.0 */
/* X.509 extensions and names the CA puts into what it signs: SKI/AKI,
 * CRL distribution point and AIA, "/CN=.." subjects, name constraints. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "ca/internal.h"

static int url_ok(const char *key, const char *url);
static int name_add(X509_NAME *n, const char *field, const char *value);

int ca_ext_add(X509V3_CTX *ctx, X509 *x, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);

    X509_EXTENSION_free(ext);
    if (!ok)
        return ca_ossl_err(P11CA_E_INPUT, "cannot make the extension %s = %s",
                           OBJ_nid2sn(nid), value);
    return P11CA_OK;
}

int ca_ext_add_ski_aki(X509V3_CTX *ctx, X509 *x)
{
    int rc = ca_ext_add(ctx, x, NID_subject_key_identifier, "hash");

    if (rc == P11CA_OK)
        rc = ca_ext_add(ctx, x, NID_authority_key_identifier, "keyid:always");
    return rc;
}

/* A URL goes into config text: no separators or spaces in it. */
static int url_ok(const char *key, const char *url)
{
    if (strpbrk(url, ", \t\r\n") || !strchr(url, ':'))
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ ca ] %s = %s: not a URL (no commas or spaces)", key, url);
    return P11CA_OK;
}

int ca_ext_add_urls(ca *c, X509V3_CTX *ctx, X509 *x)
{
    const ca_settings *s = &c->s;
    char *buf = NULL;
    int rc = P11CA_OK;

    if (s->crl_url) {
        rc = url_ok("crl_url", s->crl_url);
        buf = rc == P11CA_OK ? malloc(strlen(s->crl_url) + 8) : NULL;
        if (buf) {
            sprintf(buf, "URI:%s", s->crl_url);
            rc = ca_ext_add(ctx, x, NID_crl_distribution_points, buf);
        }
        free(buf);
        buf = NULL;
    }
    if (rc != P11CA_OK || (!s->ocsp_url && !s->issuers_url))
        return rc;
    if (s->ocsp_url)
        rc = url_ok("ocsp_url", s->ocsp_url);
    if (rc == P11CA_OK && s->issuers_url)
        rc = url_ok("issuers_url", s->issuers_url);
    if (rc == P11CA_OK)
        buf = malloc((s->ocsp_url ? strlen(s->ocsp_url) : 0)
                     + (s->issuers_url ? strlen(s->issuers_url) : 0) + 32);
    if (rc == P11CA_OK && !buf)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK) {
        sprintf(buf, "%s%s%s%s%s", s->ocsp_url ? "OCSP;URI:" : "",
                s->ocsp_url ? s->ocsp_url : "",
                s->ocsp_url && s->issuers_url ? "," : "",
                s->issuers_url ? "caIssuers;URI:" : "",
                s->issuers_url ? s->issuers_url : "");
        rc = ca_ext_add(ctx, x, NID_info_access, buf);
    }
    free(buf);
    return rc;
}

static int name_add(X509_NAME *n, const char *field, const char *value)
{
    int nid = OBJ_txt2nid(field);

    if (nid == NID_undef)
        return p11ca_err_set(P11CA_E_INPUT, "subject: unknown attribute \"%s\"",
                             field);
    if (!*value)
        return p11ca_err_set(P11CA_E_INPUT, "subject: %s is empty", field);
    if (!X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8,
                                    (const unsigned char *)value, -1, -1, 0))
        return ca_ossl_err(P11CA_E_INPUT, "subject: bad %s \"%s\"", field,
                           value);
    return P11CA_OK;
}

int ca_name_parse(const char *str, X509_NAME **out)
{
    X509_NAME *n = X509_NAME_new();
    char *buf = malloc(strlen(str) + 1), *w, *eq = NULL;
    const char *p = str;
    int rc = P11CA_OK;

    *out = NULL;
    if (!n || !buf) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    if (*p != '/' || !p[1]) {
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "subject \"%s\": write it as /CN=name/O=org", str);
        goto out;
    }
    while (rc == P11CA_OK && *p == '/') {
        for (w = buf, eq = NULL, p++; *p && *p != '/'; p++) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '=' && !eq)
                eq = w;
            *w++ = *p;
        }
        *w = '\0';
        if (!eq) {
            rc = p11ca_err_set(P11CA_E_INPUT,
                               "subject \"%s\": \"%s\" is not TYPE=value", str,
                               buf);
            break;
        }
        *eq = '\0';
        rc = name_add(n, buf, eq + 1);
    }
    if (rc == P11CA_OK) {
        *out = n;
        n = NULL;
    }
out:
    X509_NAME_free(n);
    free(buf);
    return rc;
}

char *ca_name_cn(const X509_NAME *n)
{
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    char *s = NULL;
    int len;

    if (i < 0)
        return NULL;
    len = ASN1_STRING_to_UTF8(
        &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
    if (len >= 0 && (size_t)len == strlen((char *)utf8))
        s = strdup((char *)utf8);
    OPENSSL_free(utf8);
    return s;
}

char *ca_name_constraints(const char *spec)
{
    char *copy = strdup(spec), *out = malloc(7 * strlen(spec) + 64);
    char *save = NULL, *tok, prefix[16] = "";
    const char *item;

    if (!copy || !out) {
        p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto fail;
    }
    strcpy(out, "critical");
    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        item = tok;
        if (strncmp(tok, "permitted;", 10) == 0
            || strncmp(tok, "excluded;", 9) == 0) {
            snprintf(prefix, sizeof(prefix), "%.*s",
                     (int)(strchr(tok, ';') - tok + 1), tok);
            item = strchr(tok, ';') + 1;
        }
        if (!prefix[0] || !*item) {
            p11ca_err_set(
                P11CA_E_INPUT,
                "--name-constraints: \"%s\": write permitted;DNS:.example.com,excluded;IP:10.0.0.0/255.0.0.0",
                tok);
            goto fail;
        }
        sprintf(out + strlen(out), ",%s%s", prefix, item);
    }
    free(copy);
    return out;
fail:
    free(copy);
    free(out);
    return NULL;
}

int ca_serial_random(X509 *x)
{
    unsigned char buf[20];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int rc = P11CA_OK;

    /* 20 random bytes, the top bit clear: positive, at most 20 octets. */
    do {
        if (RAND_bytes(buf, sizeof(buf)) != 1)
            return ca_ossl_err(P11CA_E_INTERNAL, "no random bytes");
        buf[0] &= 0x7f;
    } while (buf[0] == 0);
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (!ai || !X509_set_serialNumber(x, ai))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot set the serial number");
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc;
}
