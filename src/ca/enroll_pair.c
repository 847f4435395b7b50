/* SPDX-License-Identifier: Apache-2.0 */
/* Key/certificate pairs on a token, for the enrollment flow and p11ca
 * token show: found by label and CKA_ID, destroyed, relabelled, described. */
#include "config.h"

#include "ca/enroll.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

static CK_RV pair_certs(p11_ctx *ctx, p11_token *tok, const unsigned char *id,
                        size_t id_len, const char *label, enroll_pair *p);

CK_RV enroll_find_objs(p11_ctx *ctx, p11_token *tok, CK_OBJECT_CLASS cls,
                       const unsigned char *id, size_t id_len,
                       const char *label, bool login, p11_obj ***out, size_t *n)
{
    char *s = p11_uri_for_object(tok, cls, id, id_len, label);
    p11_uri *uri = NULL;
    CK_RV rv;

    *out = NULL;
    *n = 0;
    rv = s ? p11_uri_parse(s, &uri)
           : p11_error_set(CKR_HOST_MEMORY, NULL, tok, NULL, NULL);
    if (rv == CKR_OK)
        rv = p11_obj_find(ctx, uri, cls, login, out, n);
    p11_uri_free(uri);
    free(s);
    return rv;
}

void enroll_objs_free(p11_obj **objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p11_obj_unref(objs[i]);
    free(objs);
}

X509 *enroll_cert_x509(p11_obj *cert)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509 *x = NULL;

    if (p11_obj_get_attr(cert, CKA_VALUE, &der, &len) == CKR_OK) {
        p = der;
        x = d2i_X509(NULL, &p, (long)len);
    }
    free(der);
    return x;
}

bool enroll_cert_is_authority(p11_obj *cert)
{
    unsigned char *v = NULL;
    size_t len = 0;
    bool yes = false;

    if (p11_obj_get_attr(cert, CKA_CERTIFICATE_CATEGORY, &v, &len) == CKR_OK
        && len == sizeof(CK_ULONG))
        yes = *(CK_ULONG *)(void *)v == 2;
    free(v);
    return yes;
}

/* The user certificates with @id (or, without @id, labelled @label). */
static CK_RV pair_certs(p11_ctx *ctx, p11_token *tok, const unsigned char *id,
                        size_t id_len, const char *label, enroll_pair *p)
{
    p11_obj **objs = NULL;
    size_t n = 0;
    CK_RV rv;

    rv = enroll_find_objs(ctx, tok, CKO_CERTIFICATE, id, id_len,
                          id ? NULL : label, false, &objs, &n);
    if (rv != CKR_OK)
        goto out;
    p->certs = calloc(n ? n : 1, sizeof(*p->certs));
    p->x509 = calloc(n ? n : 1, sizeof(*p->x509));
    if (!p->certs || !p->x509) {
        rv = p11_error_set(CKR_HOST_MEMORY, NULL, tok, NULL, NULL);
        goto out;
    }
    /* Each object moves to @p or is released: none is left in @objs. */
    for (size_t i = 0; i < n; i++) {
        if (enroll_cert_is_authority(objs[i])) {
            p11_obj_unref(objs[i]);
        } else {
            p->x509[p->n] = enroll_cert_x509(objs[i]);
            p->certs[p->n++] = objs[i];
        }
        objs[i] = NULL;
    }
out:
    enroll_objs_free(objs, n);
    return rv;
}

CK_RV enroll_pair_for_key(p11_ctx *ctx, p11_obj *priv, enroll_pair *p)
{
    size_t id_len = 0;
    const unsigned char *id = p11_obj_id(priv, &id_len);
    CK_RV rv;

    enroll_pair_clear(p);
    p->priv = p11_obj_ref(priv);
    rv = p11_obj_find_peer(priv, CKO_PUBLIC_KEY, &p->pub);
    if (rv == P11_RV_NO_OBJECT) {
        p11_error_clear();
        rv = CKR_OK;
    }
    if (rv == CKR_OK && id_len)
        rv = pair_certs(ctx, p11_obj_token(priv), id, id_len, NULL, p);
    return rv;
}

CK_RV enroll_pair_load(p11_ctx *ctx, p11_token *tok, const char *label,
                       enroll_pair *p)
{
    p11_obj **keys = NULL;
    size_t n = 0;
    CK_RV rv;

    enroll_pair_clear(p);
    rv = enroll_find_objs(ctx, tok, CKO_PRIVATE_KEY, NULL, 0, label, true,
                          &keys, &n);
    if (rv == CKR_OK && n > 1)
        rv = p11_error_set(
            P11_RV_AMBIGUOUS, NULL, tok, NULL,
            "%zu private keys are labelled \"%s\"; give --label of one (p11ca token show lists them)",
            n, label);
    else if (rv == CKR_OK && n == 1)
        rv = enroll_pair_for_key(ctx, keys[0], p);
    else if (rv == CKR_OK)
        rv = pair_certs(ctx, tok, NULL, 0, label, p);
    enroll_objs_free(keys, n);
    return rv;
}

void enroll_pair_clear(enroll_pair *p)
{
    p11_obj_unref(p->priv);
    p11_obj_unref(p->pub);
    for (size_t i = 0; i < p->n; i++) {
        p11_obj_unref(p->certs[i]);
        X509_free(p->x509[i]);
    }
    free(p->certs);
    free(p->x509);
    memset(p, 0, sizeof(*p));
}

int enroll_pair_newest(const enroll_pair *p)
{
    int best = -1;

    for (size_t i = 0; i < p->n; i++) {
        if (!p->x509[i])
            continue;
        if (best < 0
            || ASN1_TIME_compare(X509_get0_notBefore(p->x509[i]),
                                 X509_get0_notBefore(p->x509[best]))
                   > 0)
            best = (int)i;
    }
    return best;
}

CK_RV enroll_pair_destroy(enroll_pair *p, const p11_auth *auth, p11_obj *keep,
                          bool keys)
{
    CK_RV rv = CKR_OK;

    for (size_t i = 0; i < p->n && rv == CKR_OK; i++)
        if (!keep || !p11_obj_same(p->certs[i], keep))
            rv = p11_obj_destroy(p->certs[i], auth);
    if (rv == CKR_OK && keys && p->pub)
        rv = p11_obj_destroy(p->pub, auth);
    if (rv == CKR_OK && keys && p->priv)
        rv = p11_obj_destroy(p->priv, auth);
    return rv;
}

CK_RV enroll_pair_relabel(enroll_pair *p, const p11_auth *auth,
                          const char *label)
{
    CK_RV rv = CKR_OK;

    for (size_t i = 0; i < p->n && rv == CKR_OK; i++)
        rv = p11_obj_set_label(p->certs[i], auth, label);
    if (rv == CKR_OK && p->pub)
        rv = p11_obj_set_label(p->pub, auth, label);
    if (rv == CKR_OK && p->priv)
        rv = p11_obj_set_label(p->priv, auth, label);
    return rv;
}

const char *enroll_time(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        snprintf(buf, len, "?");
    else
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

const char *enroll_serial(X509 *x, char *buf, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    reg_serial_text(hex ? hex : "?", buf, len);
    OPENSSL_free(hex);
    BN_free(bn);
    return buf;
}

int enroll_days_left(X509 *x)
{
    int days = 0, secs = 0;

    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        days = 0;
    return days;
}

const char *enroll_key_desc(p11_obj *key, char *buf, size_t len)
{
    unsigned bits = 0;
    int nid = NID_undef;
    const char *curve;

    if (p11_obj_key_info(key, &bits, &nid) != CKR_OK)
        p11_error_clear();
    switch (p11_obj_key_type(key)) {
    case CKK_RSA:
        snprintf(buf, len, "RSA %u", bits);
        break;
    case CKK_EC:
        curve = EC_curve_nid2nist(nid);
        snprintf(buf, len, "EC %s",
                 curve ? curve
                 : nid ? OBJ_nid2sn(nid)
                       : "?");
        break;
    case CKK_EC_EDWARDS:
        snprintf(buf, len, "EdDSA %s", nid ? OBJ_nid2sn(nid) : "");
        break;
    default:
        snprintf(buf, len, "key type 0x%lx",
                 (unsigned long)p11_obj_key_type(key));
    }
    return buf;
}

int enroll_rc_from_rv(CK_RV rv)
{
    switch (p11_rv_class(rv)) {
    case P11_CLASS_OK:
        return P11CA_OK;
    case P11_CLASS_INPUT:
        return P11CA_E_INPUT;
    case P11_CLASS_PIN:
        return P11CA_E_PIN;
    case P11_CLASS_NO_MEMORY:
        return P11CA_E_NOMEM;
    default: /* not found, unsupported, token: exit 3 */
        return P11CA_E_TOKEN;
    }
}
