/* SPDX-License-Identifier: Apache-2.0 */
/* X.509 certificates written to a token next to their key. */
#include "config.h"

#include "internal.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/* DER of @cert's subject, issuer and serial, for the object's attributes. */
struct cert_fields {
    unsigned char *subject, *issuer, *serial;
    int subject_len, issuer_len, serial_len;
};

static void fields_free(struct cert_fields *cf)
{
    OPENSSL_free(cf->subject);
    OPENSSL_free(cf->issuer);
    OPENSSL_free(cf->serial);
}

static bool fields_get(X509 *x, struct cert_fields *cf)
{
    memset(cf, 0, sizeof(*cf));
    cf->subject_len = i2d_X509_NAME(X509_get_subject_name(x), &cf->subject);
    cf->issuer_len = i2d_X509_NAME(X509_get_issuer_name(x), &cf->issuer);
    cf->serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &cf->serial);
    return cf->subject_len > 0 && cf->issuer_len > 0 && cf->serial_len > 0;
}

/*
 * Templates that find the key pair of @pk on a token: the public key by
 * CKA_MODULUS or CKA_EC_POINT (DER OCTET STRING, or raw as some tokens
 * store it), the private key by CKA_MODULUS.  Returns how many searches
 * were filled into @q (each has 2 attributes: class + value).
 */
struct key_probe {
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE_TYPE type;
    unsigned char *val;
    size_t len;
};

static size_t key_probes(EVP_PKEY *pk, struct key_probe *p)
{
    unsigned char *raw = NULL;
    size_t n = 0, rawlen = 0;
    BIGNUM *bn = NULL;

    if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
        if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn))
            return 0;
        rawlen = (size_t)BN_num_bytes(bn);
        raw = OPENSSL_malloc(rawlen);
        if (raw && BN_bn2bin(bn, raw) > 0) {
            p[n++] =
                (struct key_probe){CKO_PUBLIC_KEY, CKA_MODULUS, raw, rawlen};
            p[n] = p[n - 1];
            p[n].cls = CKO_PRIVATE_KEY;
            p[n].val = OPENSSL_memdup(raw, rawlen);
            if (p[n].val)
                n++;
        }
        BN_free(bn);
        return n;
    }
    rawlen = EVP_PKEY_get1_encoded_public_key(pk, &raw);
    if (rawlen == 0 || rawlen > 200) {
        OPENSSL_free(raw);
        return 0;
    }
    /* DER OCTET STRING around the point, the form PKCS#11 prescribes. */
    p[n].val = OPENSSL_malloc(rawlen + 3);
    if (p[n].val) {
        size_t h = 0;
        p[n].val[h++] = 0x04;
        if (rawlen >= 128)
            p[n].val[h++] = 0x81;
        p[n].val[h++] = (unsigned char)rawlen;
        memcpy(p[n].val + h, raw, rawlen);
        p[n].len = rawlen + h;
        p[n].cls = CKO_PUBLIC_KEY;
        p[n].type = CKA_EC_POINT;
        n++;
    }
    p[n++] = (struct key_probe){CKO_PUBLIC_KEY, CKA_EC_POINT, raw, rawlen};
    return n;
}

struct import_arg {
    X509 *x;
    const unsigned char *der;
    size_t der_len;
    const char *label;
    const unsigned char *id;
    size_t id_len;
    bool authority;
    p11_obj *out;
};

/* Find the key matching the certificate; fills @key (new reference). */
static CK_RV match_key(p11_session *s, X509 *x, p11_obj **key)
{
    struct key_probe p[4];
    EVP_PKEY *pk = X509_get0_pubkey(x);
    size_t n = pk ? key_probes(pk, p) : 0;
    CK_RV rv = CKR_OK;

    *key = NULL;
    for (size_t i = 0; i < n && rv == CKR_OK && !*key; i++) {
        CK_OBJECT_HANDLE *hs = NULL;
        CK_ULONG cnt = 0;
        CK_ATTRIBUTE q[2] = {
            {CKA_CLASS, &p[i].cls, sizeof(p[i].cls)},
            {p[i].type, p[i].val, p[i].len},
        };
        rv = p11_find_handles(s, q, 2, &hs, &cnt);
        if (rv == CKR_OK && cnt > 0)
            rv = p11_obj_from_handle(s->tok, s, hs[0], key);
        free(hs);
    }
    for (size_t i = 0; i < n; i++)
        OPENSSL_free(p[i].val);
    return rv;
}

/* Refuse to write the same certificate twice. */
static CK_RV check_absent(p11_session *s, const struct import_arg *ia)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE q[2] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_VALUE, (void *)ia->der, ia->der_len},
    };
    CK_OBJECT_HANDLE *hs = NULL;
    CK_ULONG n = 0;
    CK_RV rv = p11_find_handles(s, q, 2, &hs, &n);

    free(hs);
    if (rv == CKR_OK && n > 0)
        rv = p11_error_set(P11_RV_EXISTS, NULL, s->tok, NULL,
                           "this certificate is on the token already");
    return rv;
}

static CK_RV import_fn(p11_session *s, CK_OBJECT_HANDLE unused, void *arg)
{
    struct import_arg *ia = arg;
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ctype = CKC_X_509;
    CK_ULONG category = ia->authority ? 2 : 1;
    CK_BBOOL t = CK_TRUE, fls = CK_FALSE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    struct cert_fields cf;
    p11_obj *key = NULL;
    const unsigned char *id = ia->id;
    size_t id_len = ia->id_len;
    const char *label = ia->label;
    CK_ATTRIBUTE tmpl[12];
    CK_ULONG n = 0;
    CK_RV rv;

    rv = check_absent(s, ia);
    if (rv != CKR_OK)
        return rv;
    if (!fields_get(ia->x, &cf)) {
        fields_free(&cf);
        return p11_error_set(P11_RV_BAD_INPUT, NULL, s->tok, NULL,
                             "cannot encode the certificate's names");
    }
    if (!id_len || !label) {
        rv = match_key(s, ia->x, &key);
        if (rv != CKR_OK)
            goto out;
        if (!key && !id_len && !ia->authority) {
            rv = p11_error_set(
                P11_RV_NO_KEY_MATCH, NULL, s->tok, NULL,
                "no key on the token matches the certificate's public key; give the key's id= in the URI, or --authority for a CA certificate");
            goto out;
        }
        if (key && !id_len)
            id = p11_obj_id(key, &id_len);
        if (key && !label && key->label[0])
            label = key->label;
    }
    tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype)};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &t, sizeof(t)};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &fls, sizeof(fls)};
    tmpl[n++] =
        (CK_ATTRIBUTE){CKA_SUBJECT, cf.subject, (CK_ULONG)cf.subject_len};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_ISSUER, cf.issuer, (CK_ULONG)cf.issuer_len};
    tmpl[n++] =
        (CK_ATTRIBUTE){CKA_SERIAL_NUMBER, cf.serial, (CK_ULONG)cf.serial_len};
    tmpl[n++] = (CK_ATTRIBUTE){CKA_VALUE, (void *)ia->der, ia->der_len};
    tmpl[n++] =
        (CK_ATTRIBUTE){CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)};
    if (id_len)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
    if (label && *label)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    rv = P11_C(f, C_CreateObject, s->h, tmpl, n, &h);
    if (rv != CKR_OK) {
        p11_error_set(rv, "C_CreateObject", s->tok, NULL,
                      "writing the certificate");
        goto out;
    }
    rv = p11_obj_from_handle(s->tok, s, h, &ia->out);
out:
    p11_obj_unref(key);
    fields_free(&cf);
    return rv;
}

CK_RV p11_cert_import(p11_token *tok, const p11_auth *auth,
                      const unsigned char *der, size_t der_len,
                      const char *label, const unsigned char *id, size_t id_len,
                      bool authority, p11_obj **out)
{
    struct import_arg ia = {0};
    const unsigned char *p = der;
    CK_RV rv;

    return_val_if_fail(tok && der, CKR_ARGUMENTS_BAD);
    if (out)
        *out = NULL;
    ia.x = d2i_X509(NULL, &p, (long)der_len);
    if (!ia.x || p != der + der_len) {
        X509_free(ia.x);
        return p11_error_set(P11_RV_BAD_INPUT, NULL, tok, NULL,
                             "the data is not one DER X.509 certificate");
    }
    ia.der = der;
    ia.der_len = der_len;
    ia.label = label && *label ? label : NULL;
    ia.id = id;
    ia.id_len = id ? id_len : 0;
    ia.authority = authority;
    rv = p11_run(tok, P11_SESSION_RW | P11_SESSION_LOGIN, auth, NULL, import_fn,
                 &ia);
    X509_free(ia.x);
    if (rv == CKR_OK && out)
        *out = ia.out;
    else
        p11_obj_unref(ia.out);
    return rv;
}
