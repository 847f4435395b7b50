/* SPDX-License-Identifier: Apache-2.0 */
/* Key pairs generated on the token: key specs, templates, C_GenerateKeyPair. */
#include "config.h"

#include "internal.h"

#include <openssl/objects.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <stdio.h>

static const struct {
    const char *names[4];
    int nid;
    const char *display;
} curves[] = {
    {{"P-256", "prime256v1", "secp256r1", NULL},
     NID_X9_62_prime256v1,
     "ec:P-256"},
    {{"P-384", "secp384r1", NULL, NULL}, NID_secp384r1, "ec:P-384"},
    {{"P-521", "secp521r1", NULL, NULL}, NID_secp521r1, "ec:P-521"},
};

static CK_RV bad_spec(const char *str)
{
    return p11_error_set(
        P11_RV_BAD_INPUT, NULL, NULL, NULL,
        "unknown key type \"%s\": use rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384, ec:P-521, ed25519 or ed448",
        str);
}

CK_RV p11_key_spec_parse(const char *str, p11_key_spec *spec)
{
    const char *arg;

    return_val_if_fail(spec != NULL, CKR_ARGUMENTS_BAD);
    memset(spec, 0, sizeof(*spec));
    if (!str)
        return bad_spec("");
    arg = strchr(str, ':');
    arg = arg ? arg + 1 : NULL;
    if (strncasecmp(str, "rsa", 3) == 0 && (str[3] == '\0' || str[3] == ':')) {
        char *end = NULL;
        unsigned long bits = 3072;
        if (arg) {
            /* Digits only: strtoul alone would take " 2048" or "+2048". */
            if (arg[0] < '0' || arg[0] > '9')
                return bad_spec(str);
            bits = strtoul(arg, &end, 10);
            if (*end != '\0')
                return bad_spec(str);
        }
        if (bits != 2048 && bits != 3072 && bits != 4096)
            return p11_error_set(
                P11_RV_BAD_INPUT, NULL, NULL, NULL,
                "RSA keys of %lu bits are not supported: use 2048, 3072 or 4096",
                bits);
        spec->kind = P11_KEY_RSA;
        spec->bits = (unsigned)bits;
        return CKR_OK;
    }
    if (strcasecmp(str, "ed25519") == 0) {
        spec->kind = P11_KEY_ED25519;
        spec->bits = 256;
        return CKR_OK;
    }
    if (strcasecmp(str, "ed448") == 0) {
        spec->kind = P11_KEY_ED448;
        spec->bits = 456;
        return CKR_OK;
    }
    if (strncasecmp(str, "ec:", 3) == 0 || strncasecmp(str, "P-", 2) == 0) {
        const char *name = strncasecmp(str, "ec:", 3) == 0 ? str + 3 : str;
        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
            for (size_t j = 0; curves[i].names[j]; j++) {
                if (strcasecmp(name, curves[i].names[j]) == 0) {
                    spec->kind = P11_KEY_EC;
                    spec->curve_nid = curves[i].nid;
                    spec->bits = i == 0 ? 256 : i == 1 ? 384 : 521;
                    return CKR_OK;
                }
            }
        }
    }
    return bad_spec(str);
}

const char *p11_key_spec_name(const p11_key_spec *spec)
{
    switch (spec->kind) {
    case P11_KEY_RSA:
        return spec->bits == 2048   ? "rsa:2048"
               : spec->bits == 4096 ? "rsa:4096"
                                    : "rsa:3072";
    case P11_KEY_EC:
        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
            if (curves[i].nid == spec->curve_nid)
                return curves[i].display;
        return "ec";
    case P11_KEY_ED25519:
        return "ed25519";
    case P11_KEY_ED448:
        return "ed448";
    }
    return "unknown";
}

/* DER of the curve's OID, for CKA_EC_PARAMS. */
static CK_RV curve_params(int nid, unsigned char *buf, size_t max, size_t *len)
{
    ASN1_OBJECT *obj = OBJ_nid2obj(nid);
    unsigned char *p = buf;
    int n = obj ? i2d_ASN1_OBJECT(obj, NULL) : -1;

    if (n <= 0 || (size_t)n > max)
        return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                             "unsupported curve");
    i2d_ASN1_OBJECT(obj, &p);
    *len = (size_t)n;
    return CKR_OK;
}

/* The uses a key of @kind can have, and those it gets by default. */
static unsigned usage_possible(p11_key_kind kind)
{
    switch (kind) {
    case P11_KEY_RSA:
        return P11_USAGE_SIGN | P11_USAGE_DECRYPT;
    case P11_KEY_EC:
        return P11_USAGE_SIGN | P11_USAGE_DERIVE;
    default:
        return P11_USAGE_SIGN;
    }
}

static const struct {
    unsigned bit;
    const char *name;
} usage_names[] = {
    {P11_USAGE_SIGN, "sign"},
    {P11_USAGE_DECRYPT, "decrypt"},
    {P11_USAGE_DERIVE, "derive"},
};

/* @spec's uses, checked against its key type (0: the type's). */
static CK_RV key_usage(const p11_key_spec *spec, unsigned *use)
{
    unsigned can = usage_possible(spec->kind), bad = spec->usage & ~can;
    const char *uses = can & P11_USAGE_DECRYPT  ? "sign, decrypt"
                       : can & P11_USAGE_DERIVE ? "sign, derive"
                                                : "sign";

    *use = spec->usage ? spec->usage : can;
    for (size_t i = 0; i < sizeof(usage_names) / sizeof(usage_names[0]); i++)
        if (bad & usage_names[i].bit)
            return p11_error_set(
                P11_RV_BAD_INPUT, NULL, NULL, NULL,
                "key usage %s is not for a %s key (its uses: %s)",
                usage_names[i].name, p11_key_spec_name(spec), uses);
    return CKR_OK;
}

CK_RV p11_key_usage_parse(const char *list, unsigned *usage)
{
    const char *p = list;

    return_val_if_fail(list && usage, CKR_ARGUMENTS_BAD);
    *usage = 0;
    while (*p) {
        size_t n = strcspn(p, ", ");
        size_t i;

        for (i = 0; i < sizeof(usage_names) / sizeof(usage_names[0]); i++)
            if (n == strlen(usage_names[i].name)
                && strncasecmp(p, usage_names[i].name, n) == 0)
                break;
        if (n > 0 && i == sizeof(usage_names) / sizeof(usage_names[0]))
            return p11_error_set(
                P11_RV_BAD_INPUT, NULL, NULL, NULL,
                "unknown key usage \"%.*s\": use sign, decrypt or derive",
                (int)n, p);
        if (n > 0)
            *usage |= usage_names[i].bit;
        p += n;
        p += strspn(p, ", ");
    }
    if (*usage == 0)
        return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                             "empty key usage: use sign, decrypt or derive");
    return CKR_OK;
}

#define ADD(arr, cnt, typ, ptr, size)                                          \
    ((arr)[(cnt)++] = (CK_ATTRIBUTE){(typ), (void *)(ptr), (size)})

CK_RV p11_keygen_templates(const p11_key_spec *spec, const char *label,
                           const unsigned char *id, size_t id_len,
                           bool session_only, p11_keygen_tmpl *t)
{
    CK_ATTRIBUTE *pub = t->pub, *priv = t->priv;
    CK_ULONG np = 0, nv = 0;
    unsigned use;
    CK_RV rv;

    return_val_if_fail(spec && t, CKR_ARGUMENTS_BAD);
    rv = key_usage(spec, &use);
    if (rv != CKR_OK)
        return rv;
    return_val_if_fail(spec->n_allowed <= P11_MAX_ALLOWED_MECHS,
                       CKR_ARGUMENTS_BAD);
    memset(t, 0, sizeof(*t));
    if (id_len > sizeof(t->id) || (label && strlen(label) > P11_MAX_LABEL_LEN))
        return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                             "the id or label is too long");
    t->t = CK_TRUE;
    t->f = CK_FALSE;
    t->pub_cls = CKO_PUBLIC_KEY;
    t->priv_cls = CKO_PRIVATE_KEY;
    if (id_len)
        memcpy(t->id, id, id_len);
    t->id_len = id_len;
    if (label)
        snprintf(t->label, sizeof(t->label), "%s", label);

    switch (spec->kind) {
    case P11_KEY_RSA:
        t->mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        t->ktype = CKK_RSA;
        t->bits = spec->bits;
        memcpy(t->exponent, "\x01\x00\x01", 3);
        ADD(pub, np, CKA_MODULUS_BITS, &t->bits, sizeof(t->bits));
        ADD(pub, np, CKA_PUBLIC_EXPONENT, t->exponent, 3);
        break;
    case P11_KEY_EC:
        t->mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        t->ktype = CKK_EC;
        rv = curve_params(spec->curve_nid, t->params, sizeof(t->params),
                          &t->params_len);
        if (rv != CKR_OK)
            return rv;
        ADD(pub, np, CKA_EC_PARAMS, t->params, t->params_len);
        break;
    case P11_KEY_ED25519:
    case P11_KEY_ED448:
        t->mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        t->ktype = CKK_EC_EDWARDS;
        rv = curve_params(spec->kind == P11_KEY_ED448 ? NID_ED448 : NID_ED25519,
                          t->params, sizeof(t->params), &t->params_len);
        if (rv != CKR_OK)
            return rv;
        ADD(pub, np, CKA_EC_PARAMS, t->params, t->params_len);
        break;
    default:
        return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                             "unknown key kind");
    }
    ADD(pub, np, CKA_CLASS, &t->pub_cls, sizeof(t->pub_cls));
    ADD(pub, np, CKA_KEY_TYPE, &t->ktype, sizeof(t->ktype));
    ADD(pub, np, CKA_TOKEN, session_only ? &t->f : &t->t, sizeof(CK_BBOOL));
    ADD(pub, np, CKA_PRIVATE, &t->f, sizeof(CK_BBOOL));
    /* The uses: the private key gets only those asked for, or the type's. */
    ADD(pub, np, CKA_VERIFY, use & P11_USAGE_SIGN ? &t->t : &t->f,
        sizeof(CK_BBOOL));
    ADD(pub, np, CKA_ENCRYPT, use & P11_USAGE_DECRYPT ? &t->t : &t->f,
        sizeof(CK_BBOOL));

    ADD(priv, nv, CKA_CLASS, &t->priv_cls, sizeof(t->priv_cls));
    ADD(priv, nv, CKA_KEY_TYPE, &t->ktype, sizeof(t->ktype));
    ADD(priv, nv, CKA_TOKEN, session_only ? &t->f : &t->t, sizeof(CK_BBOOL));
    /* The point of the project: the private key never leaves the token. */
    ADD(priv, nv, CKA_PRIVATE, &t->t, sizeof(CK_BBOOL));
    ADD(priv, nv, CKA_SENSITIVE, &t->t, sizeof(CK_BBOOL));
    ADD(priv, nv, CKA_EXTRACTABLE, &t->f, sizeof(CK_BBOOL));
    ADD(priv, nv, CKA_SIGN, use & P11_USAGE_SIGN ? &t->t : &t->f,
        sizeof(CK_BBOOL));
    ADD(priv, nv, CKA_DECRYPT, use & P11_USAGE_DECRYPT ? &t->t : &t->f,
        sizeof(CK_BBOOL));
    ADD(priv, nv, CKA_DERIVE, use & P11_USAGE_DERIVE ? &t->t : &t->f,
        sizeof(CK_BBOOL));
    /* Key wrapping is not a use of ours: say so rather than take defaults. */
    ADD(priv, nv, CKA_UNWRAP, &t->f, sizeof(CK_BBOOL));
    ADD(pub, np, CKA_WRAP, &t->f, sizeof(CK_BBOOL));
    if (t->id_len) {
        ADD(pub, np, CKA_ID, t->id, t->id_len);
        ADD(priv, nv, CKA_ID, t->id, t->id_len);
    }
    if (t->label[0]) {
        ADD(pub, np, CKA_LABEL, t->label, strlen(t->label));
        ADD(priv, nv, CKA_LABEL, t->label, strlen(t->label));
    }
    if (spec->n_allowed) {
        memcpy(t->allowed, spec->allowed,
               spec->n_allowed * sizeof(CK_MECHANISM_TYPE));
        ADD(priv, nv, CKA_ALLOWED_MECHANISMS, t->allowed,
            spec->n_allowed * sizeof(CK_MECHANISM_TYPE));
    }
    t->n_pub = np;
    t->n_priv = nv;
    return CKR_OK;
}

struct keygen_arg {
    p11_keygen_tmpl *t;
    bool session_only;
    p11_obj *pub, *priv;
};

/* Whether a private key with this id or label is on the token already. */
static CK_RV check_unique(p11_session *s, const p11_keygen_tmpl *t)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_OBJECT_HANDLE *hs = NULL;
    CK_ATTRIBUTE q[2];
    CK_ULONG n = 0;
    CK_RV rv;
    char hex[40];

    q[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    if (t->id_len) {
        q[1] = (CK_ATTRIBUTE){CKA_ID, (void *)t->id, t->id_len};
        rv = p11_find_handles(s, q, 2, &hs, &n);
        free(hs);
        if (rv != CKR_OK)
            return rv;
        if (n)
            return p11_error_set(P11_RV_EXISTS, NULL, s->tok, NULL,
                                 "a private key with id %s exists",
                                 p11_hex(t->id, t->id_len, hex, sizeof(hex)));
    }
    if (t->label[0]) {
        q[1] = (CK_ATTRIBUTE){CKA_LABEL, (void *)t->label, strlen(t->label)};
        rv = p11_find_handles(s, q, 2, &hs, &n);
        free(hs);
        if (rv != CKR_OK)
            return rv;
        if (n)
            return p11_error_set(P11_RV_EXISTS, NULL, s->tok, NULL,
                                 "a private key labelled \"%s\" exists",
                                 t->label);
    }
    return CKR_OK;
}

static CK_RV keygen_fn(p11_session *s, CK_OBJECT_HANDLE unused, void *arg)
{
    struct keygen_arg *ka = arg;
    p11_keygen_tmpl *t = ka->t;
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_RV rv;

    if (!ka->session_only) {
        rv = check_unique(s, t);
        if (rv != CKR_OK)
            return rv;
    }
    rv = P11_C(f, C_GenerateKeyPair, s->h, &t->mech, t->pub, t->n_pub, t->priv,
               t->n_priv, &hpub, &hpriv);
    if (rv != CKR_OK)
        return p11_error_set(
            rv, "C_GenerateKeyPair", s->tok, NULL, "%s key",
            t->mech.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN ? "RSA"
            : t->mech.mechanism == CKM_EC_KEY_PAIR_GEN     ? "EC"
                                                           : "EdDSA");
    rv = p11_obj_from_handle(s->tok, s, hpub, &ka->pub);
    if (rv == CKR_OK)
        rv = p11_obj_from_handle(s->tok, s, hpriv, &ka->priv);
    if (rv != CKR_OK) {
        /* Do not leave half a key pair behind. */
        P11_C(f, C_DestroyObject, s->h, hpriv);
        P11_C(f, C_DestroyObject, s->h, hpub);
        p11_obj_unref(ka->pub);
        ka->pub = NULL;
    }
    return rv;
}

CK_RV p11_keygen(p11_token *tok, const p11_auth *auth, const p11_key_spec *spec,
                 const char *label, const unsigned char *id, size_t id_len,
                 bool session_only, p11_obj **pub, p11_obj **priv)
{
    struct keygen_arg ka = {0};
    p11_keygen_tmpl *t = NULL;
    unsigned char rid[20];
    CK_RV rv;

    return_val_if_fail(tok && spec, CKR_ARGUMENTS_BAD);
    if (pub)
        *pub = NULL;
    if (priv)
        *priv = NULL;
    if (!id || !id_len) {
        if (RAND_bytes(rid, sizeof(rid)) != 1)
            return p11_error_set(CKR_FUNCTION_FAILED, NULL, tok, NULL,
                                 "no random bytes for the key id");
        id = rid;
        id_len = sizeof(rid);
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    rv = p11_keygen_templates(spec, label, id, id_len, session_only, t);
    if (rv != CKR_OK)
        goto out;
    ka.t = t;
    ka.session_only = session_only;
    rv = p11_run(tok, P11_SESSION_RW | P11_SESSION_LOGIN, auth, NULL, keygen_fn,
                 &ka);
    if (rv != CKR_OK)
        goto out;
    LOG_DBG(P11, "generated %s key pair on %s", p11_key_spec_name(spec),
            p11_token_describe(tok));
    if (pub) {
        *pub = ka.pub;
        ka.pub = NULL;
    }
    if (priv) {
        *priv = ka.priv;
        ka.priv = NULL;
    }
out:
    p11_obj_unref(ka.pub);
    p11_obj_unref(ka.priv);
    free(t);
    return rv;
}

/* NID of the curve in CKA_EC_PARAMS: an OID, or a PrintableString name. */
static int params_nid(const unsigned char *p, size_t n)
{
    const unsigned char *q = p;
    ASN1_OBJECT *obj;
    int nid = NID_undef;

    if (n > 2 && p[0] == 0x06) {
        obj = d2i_ASN1_OBJECT(NULL, &q, (long)n);
        if (obj)
            nid = OBJ_obj2nid(obj);
        ASN1_OBJECT_free(obj);
    } else if (n > 2 && p[0] == 0x13 && (size_t)p[1] + 2 == n) {
        /* PKCS#11 3.0 allows curve names: "edwards25519", "edwards448". */
        if (p[1] == 12 && memcmp(p + 2, "edwards25519", 12) == 0)
            nid = NID_ED25519;
        else if (p[1] == 10 && memcmp(p + 2, "edwards448", 10) == 0)
            nid = NID_ED448;
    }
    return nid;
}

static unsigned nid_bits(int nid)
{
    switch (nid) {
    case NID_X9_62_prime256v1:
    case NID_ED25519:
        return 256;
    case NID_secp384r1:
        return 384;
    case NID_secp521r1:
        return 521;
    case NID_ED448:
        return 456;
    default:
        return 0;
    }
}

CK_RV p11_obj_key_info(p11_obj *obj, unsigned *bits, int *curve_nid)
{
    unsigned char *v = NULL;
    size_t n = 0;
    CK_RV rv;

    return_val_if_fail(obj && bits && curve_nid, CKR_ARGUMENTS_BAD);
    *bits = 0;
    *curve_nid = NID_undef;
    switch (obj->subtype) {
    case CKK_RSA:
        rv = p11_obj_get_attr(obj, CKA_MODULUS_BITS, &v, &n);
        if (rv == CKR_OK && n == sizeof(CK_ULONG)) {
            *bits = (unsigned)*(CK_ULONG *)(void *)v;
        } else {
            free(v);
            v = NULL;
            rv = p11_obj_get_attr(obj, CKA_MODULUS, &v, &n);
            if (rv == CKR_OK) {
                size_t i = 0;
                while (i < n && v[i] == 0)
                    i++;
                *bits = (unsigned)((n - i) * 8);
                if (i < n)
                    for (unsigned char top = v[i]; !(top & 0x80); top <<= 1)
                        (*bits)--;
            }
        }
        break;
    case CKK_EC:
    case CKK_EC_EDWARDS:
        rv = p11_obj_get_attr(obj, CKA_EC_PARAMS, &v, &n);
        if (rv == CKR_OK) {
            *curve_nid = params_nid(v, n);
            *bits = nid_bits(*curve_nid);
        }
        break;
    default:
        rv = CKR_OK;
        break;
    }
    free(v);
    return rv;
}

/* Mechanisms a key may be restricted to (CKA_ALLOWED_MECHANISMS). */
static const struct {
    CK_MECHANISM_TYPE mech;
    const char *name;
} mechs[] = {
#define M(x)                                                                   \
    {                                                                          \
        x, #x                                                                  \
    }
    M(CKM_RSA_PKCS),
    M(CKM_RSA_X_509),
    M(CKM_RSA_PKCS_OAEP),
    M(CKM_RSA_PKCS_PSS),
    M(CKM_SHA1_RSA_PKCS),
    M(CKM_SHA224_RSA_PKCS),
    M(CKM_SHA256_RSA_PKCS),
    M(CKM_SHA384_RSA_PKCS),
    M(CKM_SHA512_RSA_PKCS),
    M(CKM_SHA1_RSA_PKCS_PSS),
    M(CKM_SHA224_RSA_PKCS_PSS),
    M(CKM_SHA256_RSA_PKCS_PSS),
    M(CKM_SHA384_RSA_PKCS_PSS),
    M(CKM_SHA512_RSA_PKCS_PSS),
    M(CKM_ECDSA),
    M(CKM_ECDSA_SHA1),
    {0x1043UL, "CKM_ECDSA_SHA224"},
    {0x1044UL, "CKM_ECDSA_SHA256"},
    {0x1045UL, "CKM_ECDSA_SHA384"},
    {0x1046UL, "CKM_ECDSA_SHA512"},
    M(CKM_ECDH1_DERIVE),
    M(CKM_ECDH1_COFACTOR_DERIVE),
    {0x1057UL, "CKM_EDDSA"},
#undef M
};

CK_RV p11_mech_parse(const char *name, CK_MECHANISM_TYPE *mech)
{
    char norm[64];
    size_t n = 0;

    return_val_if_fail(name && mech, CKR_ARGUMENTS_BAD);
    /* Accept pkcs11-tool's spelling (SHA256-RSA-PKCS) and lower case. */
    if (strncasecmp(name, "CKM_", 4) != 0)
        n = (size_t)snprintf(norm, sizeof(norm), "CKM_");
    for (const char *p = name; *p && n + 1 < sizeof(norm); p++)
        norm[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    norm[n] = '\0';
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        if (strcmp(mechs[i].name, norm) == 0) {
            *mech = mechs[i].mech;
            return CKR_OK;
        }
    }
    return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                         "unknown mechanism \"%s\"", name);
}

const char *p11_mech_name(CK_MECHANISM_TYPE mech)
{
    static _Thread_local char buf[32];

    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
        if (mechs[i].mech == mech)
            return mechs[i].name;
    snprintf(buf, sizeof(buf), "CKM_0x%08lx", (unsigned long)mech);
    return buf;
}

CK_RV p11_key_spec_allow(p11_key_spec *spec, const char *list)
{
    char item[64];
    CK_RV rv;

    return_val_if_fail(spec && list, CKR_ARGUMENTS_BAD);
    spec->n_allowed = 0;
    while (*list) {
        size_t n = strcspn(list, ", ");
        if (n == 0 || n >= sizeof(item))
            return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                                 "bad mechanism list");
        if (spec->n_allowed == P11_MAX_ALLOWED_MECHS)
            return p11_error_set(P11_RV_BAD_INPUT, NULL, NULL, NULL,
                                 "at most %d mechanisms",
                                 P11_MAX_ALLOWED_MECHS);
        memcpy(item, list, n);
        item[n] = '\0';
        rv = p11_mech_parse(item, &spec->allowed[spec->n_allowed]);
        if (rv != CKR_OK)
            return rv;
        spec->n_allowed++;
        list += n;
        list += strspn(list, ", ");
    }
    return CKR_OK;
}
