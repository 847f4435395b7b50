/* SPDX-License-Identifier: Apache-2.0 */
/* SIGNATURE for RSA: PKCS#1 v1.5 (CKM_RSA_PKCS on a DigestInfo), PSS
 * (CKM_RSA_PKCS_PSS on a digest), raw RSA, with token-hashed fallbacks;
 * the AlgorithmIdentifiers X.509, CMS and TLS need; verification in
 * software. */
#include "config.h"

#include <limits.h>
#include <openssl/asn1t.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

static OSSL_FUNC_signature_newctx_fn rsa_newctx;
static OSSL_FUNC_signature_sign_init_fn rsa_sign_init;
static OSSL_FUNC_signature_verify_init_fn rsa_verify_init;
static OSSL_FUNC_signature_digest_sign_init_fn rsa_digest_sign_init;
static OSSL_FUNC_signature_digest_verify_init_fn rsa_digest_verify_init;
static OSSL_FUNC_signature_get_ctx_params_fn rsa_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn rsa_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn rsa_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn rsa_settable_ctx_params;

static const struct pad_name {
    int pad;
    const char *name;
} pad_names[] = {
    {RSA_PKCS1_PADDING, OSSL_PKEY_RSA_PAD_MODE_PKCSV15},
    {RSA_PKCS1_PSS_PADDING, OSSL_PKEY_RSA_PAD_MODE_PSS},
    {RSA_NO_PADDING, OSSL_PKEY_RSA_PAD_MODE_NONE},
    {RSA_X931_PADDING, OSSL_PKEY_RSA_PAD_MODE_X931},
    {RSA_PKCS1_OAEP_PADDING, OSSL_PKEY_RSA_PAD_MODE_OAEP},
    {0, NULL},
};

static const char *pad_name(int pad)
{
    for (const struct pad_name *n = pad_names; n->name; n++)
        if (n->pad == pad)
            return n->name;
    return "unknown";
}

static bool rsa_key_ok(const prov_key *key)
{
    return key->type == PROV_KEY_RSA || key->type == PROV_KEY_RSA_PSS;
}

/* An RSA-PSS key (id-RSASSA-PSS) signs with PSS only. */
static bool pss_only(const sig_ctx *s)
{
    return s->key->type == PROV_KEY_RSA_PSS;
}

/* The digest an RSA-PSS key is restricted to (rsa_pss.c), else NULL. */
static const char *pss_key_md(const prov_key *key)
{
    if (!key || key->type != PROV_KEY_RSA_PSS || key->pss_md_nid == NID_undef)
        return NULL;
    return OBJ_nid2sn(key->pss_md_nid);
}

/*
 * A restricted RSA-PSS key signs with its digest, MGF1 with it and a salt
 * of at least its minimum, as OpenSSL's own RSA-PSS keys do: the token
 * allows no other (CKA_ALLOWED_MECHANISMS).  Raises the reason.
 */
static int pss_key_allows(sig_ctx *s, int md_nid, int mgf1_nid, int saltlen)
{
    const prov_key *k = s->key;
    const char *what = NULL;
    int bad = NID_undef;

    if (!pss_key_md(k))
        return 1;
    if (md_nid != NID_undef && md_nid != k->pss_md_nid) {
        what = "message digest";
        bad = md_nid;
    } else if (mgf1_nid != NID_undef && mgf1_nid != k->pss_md_nid) {
        what = "MGF1 digest";
        bad = mgf1_nid;
    }
    if (what) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA-PSS signature with %s: the key may sign with %s only (its CKA_ALLOWED_MECHANISMS), not with %s as %s",
            sig_key_name(k), OBJ_nid2sn(k->pss_md_nid), OBJ_nid2sn(bad), what);
        return 0;
    }
    if (saltlen >= 0 && saltlen < k->pss_saltlen_min) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA-PSS signature with %s: salt length %d is below the key's minimum of %d",
            sig_key_name(k), saltlen, k->pss_saltlen_min);
        return 0;
    }
    return 1;
}

static void rsa_reset(sig_ctx *s)
{
    s->pad = pss_only(s) ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
    /* A restricted RSA-PSS key starts at its minimum salt, as in OpenSSL. */
    s->saltlen =
        pss_key_md(s->key) ? s->key->pss_saltlen_min : RSA_PSS_SALTLEN_AUTO;
    EVP_MD_free(s->mgf1_md);
    s->mgf1_md = NULL;
    s->mgf1_mdi = NULL;
    s->mgf1name[0] = '\0';
    s->dinfo_len = 0;
}

static const sig_md_info *eff_mgf1(const sig_ctx *s)
{
    return s->mgf1_mdi ? s->mgf1_mdi : s->mdi;
}

static const char *eff_mgf1_name(const sig_ctx *s)
{
    return s->mgf1_md ? s->mgf1name : s->mdname;
}

/* The key's largest PSS salt with the digest: emLen - hLen - 2. */
static int pss_max_salt(const sig_ctx *s)
{
    int emlen = (int)((s->key->bits + 6) / 8); /* ceil((modBits - 1) / 8) */

    return emlen - (int)s->md_size - 2;
}

/* The salt length a signature uses ("auto" signs with the maximum). */
static int pss_salt(const sig_ctx *s)
{
    switch (s->saltlen) {
    case RSA_PSS_SALTLEN_DIGEST:
        return (int)s->md_size;
    case RSA_PSS_SALTLEN_AUTO:
    case RSA_PSS_SALTLEN_MAX:
        return pss_max_salt(s);
    default:
        return s->saltlen;
    }
}

/*
 * The DigestInfo of the digest, encoded once per operation with OpenSSL's
 * ASN.1 code over a zero digest: a signature copies it and writes the
 * digest into its last md_size bytes (the OCTET STRING's content).
 */
static int rsa_build_dinfo(sig_ctx *s)
{
    static const unsigned char zero[EVP_MAX_MD_SIZE];
    X509_SIG *xs = X509_SIG_new();
    X509_ALGOR *alg = NULL;
    ASN1_OCTET_STRING *dig = NULL;
    unsigned char *p = s->dinfo;
    int len = -1;

    if (xs) {
        X509_SIG_getm(xs, &alg, &dig);
        if (X509_ALGOR_set0(alg, OBJ_nid2obj(s->md_nid), V_ASN1_NULL, NULL)
            && ASN1_OCTET_STRING_set(dig, zero, (int)s->md_size))
            len = i2d_X509_SIG(xs, NULL);
        if (len > 0 && len <= (int)sizeof(s->dinfo))
            len = i2d_X509_SIG(xs, &p);
        else
            len = -1;
    }
    X509_SIG_free(xs);
    if (len <= 0 || (size_t)len < s->md_size) {
        prov_raise(s->ctx, PROV_R_INTERNAL,
                   "RSA signature: cannot encode the DigestInfo for %s",
                   s->mdi->display);
        return 0;
    }
    s->dinfo_len = (size_t)len;
    return 1;
}

/* PSS needs the token to know the hashes it names (SHA-3 often not). */
static int pss_check(sig_ctx *s)
{
    p11_token *tok = s->key->priv ? p11_obj_token(s->key->priv) : NULL;
    const sig_md_info *m[2] = {s->mdi, eff_mgf1(s)};
    int salt = pss_salt(s), max = pss_max_salt(s);

    for (int i = 0; tok && i < 2; i++) {
        if (m[i]->sha3 && !p11_token_has_mechanism(tok, m[i]->hash, 0, NULL)) {
            prov_raise(
                s->ctx, PROV_R_UNSUPPORTED,
                "RSA-PSS signature with %s: %s does not support %s (%s), so it cannot compute PSS with it",
                m[i]->display, p11_token_describe(tok),
                sig_mech_name(m[i]->hash),
                i ? "the MGF1 digest" : "the digest");
            return 0;
        }
    }
    if (salt < 0 || salt > max) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA-PSS signature: salt length %d does not fit a %u-bit key with %s (0 to %d)",
            salt, s->key->bits, s->mdi->display, max);
        return 0;
    }
    return 1;
}

static int rsa_choose(sig_ctx *s)
{
    switch (s->pad) {
    case RSA_PKCS1_PADDING:
        if (!sig_choose_mech(s, CKM_RSA_PKCS, s->mdi ? s->mdi->rsa_pkcs : 0))
            return 0;
        return s->token_hashes || !s->md || rsa_build_dinfo(s);
    case RSA_PKCS1_PSS_PADDING:
        /* OpenSSL's default for PSS without a digest: SHA-1 (a restricted
         * RSA-PSS key's: its own). */
        if (!s->md
            && !sig_set_md(s, pss_key_md(s->key) ? pss_key_md(s->key) : "SHA1",
                           NULL))
            return 0;
        if (!pss_key_allows(s, s->md_nid, eff_mgf1(s)->nid, pss_salt(s)))
            return 0;
        return pss_check(s)
               && sig_choose_mech(s, CKM_RSA_PKCS_PSS, s->mdi->rsa_pss);
    case RSA_NO_PADDING:
        if (s->digest_op) {
            prov_raise(
                s->ctx, PROV_R_UNSUPPORTED,
                "RSA signature: no padding is for raw input (EVP_PKEY_sign) only");
            return 0;
        }
        return sig_choose_mech(s, CKM_RSA_X_509, 0);
    default:
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "RSA signature: padding %s is not supported (pkcs1, pss, none are)",
            pad_name(s->pad));
        return 0;
    }
}

/* The input of a raw or digest signature has the expected size. */
static int rsa_check_input(sig_ctx *s, size_t inlen)
{
    size_t k = s->key->max_sig;

    if (s->pad == RSA_NO_PADDING) {
        if (inlen == k)
            return 1;
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature without padding: input of %zu bytes, %zu expected",
            inlen, k);
        return 0;
    }
    if (s->md && inlen != s->md_size) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature: input of %zu bytes is not a %s digest (%zu bytes)",
            inlen, s->mdi->display, s->md_size);
        return 0;
    }
    if (!s->md && (inlen == 0 || inlen + 11 > k)) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA PKCS#1 v1.5 signature: input of %zu bytes (1 to %zu fit a %u-bit key)",
            inlen, k > 11 ? k - 11 : 0, s->key->bits);
        return 0;
    }
    return 1;
}

static int rsa_sign(sig_ctx *s, const unsigned char *in, size_t inlen,
                    unsigned char *sig, size_t *siglen, size_t sigsize)
{
    CK_MECHANISM mech = {s->mech, NULL, 0};
    CK_RSA_PKCS_PSS_PARAMS pss;
    unsigned char di[SIG_DINFO_MAX];
    int ok;

    if (sigsize < s->key->max_sig)
        return sig_raise_small(s, sigsize, s->key->max_sig);
    if (!s->token_hashes && !rsa_check_input(s, inlen))
        return 0;
    if (s->pad == RSA_PKCS1_PSS_PADDING) {
        if (!pss_check(s)) /* the salt length may have changed */
            return 0;
        pss.hashAlg = s->mdi->hash;
        pss.mgf = eff_mgf1(s)->mgf;
        pss.sLen = (CK_ULONG)pss_salt(s);
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
    } else if (s->mech == CKM_RSA_PKCS && s->md) {
        memcpy(di, s->dinfo, s->dinfo_len);
        memcpy(di + s->dinfo_len - s->md_size, in, s->md_size);
        in = di;
        inlen = s->dinfo_len;
    }
    ok = sig_token_sign(s, &mech, in, inlen, sig, siglen, sigsize);
    if (in == di)
        OPENSSL_cleanse(di, sizeof(di));
    return ok;
}

static void rsa_sw_params(sig_ctx *s, OSSL_PARAM *p)
{
    *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE, &s->pad);
    if (s->md)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST,
                                                s->mdname, 0);
    if (s->pad == RSA_PKCS1_PSS_PADDING) {
        *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
                                        &s->saltlen);
        if (s->mgf1_md)
            *p++ = OSSL_PARAM_construct_utf8_string(
                OSSL_SIGNATURE_PARAM_MGF1_DIGEST, s->mgf1name, 0);
    }
    *p = OSSL_PARAM_construct_end();
}

static void rsa_describe(const sig_ctx *s, char *buf, size_t n)
{
    const char *md = s->mdi ? s->mdi->display : "raw input";

    if (s->pad != RSA_PKCS1_PSS_PADDING) {
        snprintf(buf, n, "RSA %s signature (%s, %s)",
                 s->pad == RSA_NO_PADDING ? "raw" : "PKCS#1 v1.5", md,
                 sig_mech_name(s->mech));
        return;
    }
    snprintf(
        buf, n, "RSA-PSS signature (%s, MGF1 with %s, salt %d, %s)%s", md,
        eff_mgf1(s)->display, pss_salt(s), sig_mech_name(s->mech),
        eff_mgf1(s) != s->mdi
            ? "; an MGF1 digest other than the message digest is refused by some tokens (SoftHSM2)"
            : "");
}

static const sig_alg rsa_alg = {
    "RSA",    rsa_key_ok,    rsa_reset,    rsa_choose,
    rsa_sign, rsa_sw_params, rsa_describe,
};

static void *rsa_newctx(void *provctx, const char *propq)
{
    /* @propq is for the application's context; digests are ours. */
    (void)propq;
    return sig_newctx(provctx, &rsa_alg);
}

static int rsa_sign_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    sig_ctx *s = vctx;

    return sig_init(s, key, EVP_PKEY_OP_SIGN, false)
           && sig_set_md(s, NULL, NULL) && rsa_set_ctx_params(s, params);
}

static int rsa_verify_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    sig_ctx *s = vctx;

    return sig_init(s, key, EVP_PKEY_OP_VERIFY, false)
           && sig_set_md(s, NULL, NULL) && rsa_set_ctx_params(s, params);
}

/* No digest named: a restricted RSA-PSS key's own, else the default. */
static const char *default_md(const sig_ctx *s, const char *mdname, void *key)
{
    const char *kmd = pss_key_md(key ? key : s->key);

    return mdname && *mdname ? mdname : kmd;
}

static int rsa_digest_sign_init(void *vctx, const char *mdname, void *key,
                                const OSSL_PARAM params[])
{
    return sig_digest_init(vctx, default_md(vctx, mdname, key), key,
                           EVP_PKEY_OP_SIGN)
           && rsa_set_ctx_params(vctx, params);
}

static int rsa_digest_verify_init(void *vctx, const char *mdname, void *key,
                                  const OSSL_PARAM params[])
{
    return sig_digest_init(vctx, default_md(vctx, mdname, key), key,
                           EVP_PKEY_OP_VERIFY)
           && rsa_set_ctx_params(vctx, params);
}

/* ------------------------------------------------------------------ */
/* AlgorithmIdentifier                                                 */
/* ------------------------------------------------------------------ */

/* AlgorithmIdentifier { id-mgf1, AlgorithmIdentifier of @md }. */
static X509_ALGOR *mgf1_algor(const EVP_MD *md)
{
    X509_ALGOR *inner = X509_ALGOR_new(), *alg = NULL;
    ASN1_STRING *str = NULL;

    if (!inner)
        return NULL;
    X509_ALGOR_set_md(inner, md);
    str = ASN1_item_pack(inner, ASN1_ITEM_rptr(X509_ALGOR), NULL);
    X509_ALGOR_free(inner);
    if (str && (alg = X509_ALGOR_new())
        && X509_ALGOR_set0(alg, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, str))
        return alg;
    X509_ALGOR_free(alg);
    ASN1_STRING_free(str);
    return NULL;
}

/*
 * rsassaPss with RSASSA-PSS-params (RFC 4055), defaults omitted as
 * OpenSSL does: SHA-1, MGF1 with SHA-1, salt 20, trailer 1.  The salt is
 * the length the signature really uses.
 */
static X509_ALGOR *pss_algor(sig_ctx *s)
{
    RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
    const EVP_MD *mgf = s->mgf1_md ? s->mgf1_md : s->md;
    ASN1_STRING *str = NULL;
    X509_ALGOR *alg = NULL;
    int salt = pss_salt(s);

    if (!pss)
        goto out;
    if (s->md_nid != NID_sha1) {
        if (!(pss->hashAlgorithm = X509_ALGOR_new()))
            goto out;
        X509_ALGOR_set_md(pss->hashAlgorithm, s->md);
    }
    if (EVP_MD_get_type(mgf) != NID_sha1
        && !(pss->maskGenAlgorithm = mgf1_algor(mgf)))
        goto out;
    if (salt != 20
        && (!(pss->saltLength = ASN1_INTEGER_new())
            || !ASN1_INTEGER_set(pss->saltLength, salt)))
        goto out;
    str = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL);
    if (!str || !(alg = X509_ALGOR_new()))
        goto out;
    if (!X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE,
                         str)) {
        X509_ALGOR_free(alg);
        alg = NULL;
        goto out;
    }
    str = NULL; /* owned by alg */
out:
    ASN1_STRING_free(str);
    RSA_PSS_PARAMS_free(pss);
    return alg;
}

/* sha256WithRSAEncryption etc. with NULL parameters (RFC 4055). */
static X509_ALGOR *pkcs1_algor(sig_ctx *s)
{
    X509_ALGOR *alg;
    int nid = NID_undef;

    if (!OBJ_find_sigid_by_algs(&nid, s->md_nid, NID_rsaEncryption)) {
        prov_raise(s->ctx, PROV_R_UNSUPPORTED,
                   "RSA signature: no signature algorithm OID for RSA with %s",
                   s->mdi->display);
        return NULL;
    }
    alg = X509_ALGOR_new();
    if (alg && !X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_NULL, NULL)) {
        X509_ALGOR_free(alg);
        alg = NULL;
    }
    return alg;
}

static int rsa_algid(sig_ctx *s, OSSL_PARAM *p)
{
    X509_ALGOR *alg;
    int ok;

    if (!s->md
        || (s->pad != RSA_PKCS1_PADDING && s->pad != RSA_PKCS1_PSS_PADDING))
        return 1; /* nothing to name */
    if (s->pad == RSA_PKCS1_PSS_PADDING && !pss_check(s))
        return 0;
    alg = s->pad == RSA_PKCS1_PADDING ? pkcs1_algor(s) : pss_algor(s);
    if (!alg) {
        prov_raise(s->ctx, PROV_R_INTERNAL,
                   "RSA signature: cannot build the AlgorithmIdentifier");
        return 0;
    }
    ok = sig_set_algid(s, p, alg);
    X509_ALGOR_free(alg);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static int get_pad(OSSL_PARAM *p, int pad)
{
    if (p->data_type == OSSL_PARAM_INTEGER)
        return OSSL_PARAM_set_int(p, pad);
    return OSSL_PARAM_set_utf8_string(p, pad_name(pad));
}

static int get_saltlen(OSSL_PARAM *p, int saltlen)
{
    char num[16];

    if (p->data_type == OSSL_PARAM_INTEGER)
        return OSSL_PARAM_set_int(p, saltlen);
    switch (saltlen) {
    case RSA_PSS_SALTLEN_DIGEST:
        return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
    case RSA_PSS_SALTLEN_MAX:
        return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX);
    case RSA_PSS_SALTLEN_AUTO:
        return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO);
    default:
        snprintf(num, sizeof(num), "%d", saltlen);
        return OSSL_PARAM_set_utf8_string(p, num);
    }
}

static int rsa_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sig_ctx *s = vctx;
    OSSL_PARAM *p;

    if (!s)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p && !rsa_algid(s, p))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p && !get_pad(p, s->pad))
        return sig_bad_param(s, OSSL_SIGNATURE_PARAM_PAD_MODE);
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p && !get_saltlen(p, s->saltlen))
        return sig_bad_param(s, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p && !OSSL_PARAM_set_utf8_string(p, eff_mgf1_name(s)))
        return sig_bad_param(s, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    return sig_get_md_params(s, params);
}

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return rsa_gettable;
}

static int parse_pad(sig_ctx *s, const OSSL_PARAM *p, int *pad)
{
    const char *str = NULL;

    if (p->data_type == OSSL_PARAM_INTEGER)
        return OSSL_PARAM_get_int(p, pad)
               || sig_bad_param(s, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &str)) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature: the padding mode must be a number or a name");
        return 0;
    }
    for (const struct pad_name *n = pad_names; n->name; n++) {
        if (strcmp(str, n->name) == 0) {
            *pad = n->pad;
            return 1;
        }
    }
    prov_raise(s->ctx, PROV_R_BAD_INPUT,
               "RSA signature: unknown padding mode \"%s\" (pkcs1, pss, none)",
               str);
    return 0;
}

static int parse_saltlen(sig_ctx *s, const OSSL_PARAM *p, int *saltlen)
{
    const char *str = NULL;
    char *end = NULL;
    long v;

    if (p->data_type == OSSL_PARAM_INTEGER) {
        if (!OSSL_PARAM_get_int(p, saltlen))
            return sig_bad_param(s, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    } else if (!OSSL_PARAM_get_utf8_string_ptr(p, &str)) {
        return sig_bad_param(s, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    } else if (strcmp(str, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
        *saltlen = RSA_PSS_SALTLEN_DIGEST;
    } else if (strcmp(str, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0) {
        *saltlen = RSA_PSS_SALTLEN_MAX;
    } else if (strcmp(str, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0) {
        *saltlen = RSA_PSS_SALTLEN_AUTO;
    } else {
        v = strtol(str, &end, 10);
        if (end == str || *end || v > INT_MAX || v < INT_MIN) {
            prov_raise(
                s->ctx, PROV_R_BAD_INPUT,
                "RSA-PSS: invalid salt length \"%s\" (digest, max, auto or a number)",
                str);
            return 0;
        }
        *saltlen = (int)v;
    }
    if (*saltlen < RSA_PSS_SALTLEN_MAX) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT, "RSA-PSS: invalid salt length %d",
                   *saltlen);
        return 0;
    }
    return 1;
}

static int set_mgf1(sig_ctx *s, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p, *pp;
    const char *name = NULL, *props = NULL;
    const sig_md_info *mdi;
    EVP_MD *md;

    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    pp = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES);
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)
        || (pp && !OSSL_PARAM_get_utf8_string_ptr(pp, &props))
        || strlen(name) >= sizeof(s->mgf1name)) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT, "RSA-PSS: invalid MGF1 digest");
        return 0;
    }
    if (s->mgf1_md && EVP_MD_is_a(s->mgf1_md, name))
        return 1;
    if (!(md = sig_fetch_md(s, name, props)))
        return 0;
    if (!(mdi = sig_md_info_by_nid(EVP_MD_get_type(md)))) {
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "RSA-PSS: MGF1 digest %s is not supported (SHA-1, SHA-2 and SHA-3 are)",
            name);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(s->mgf1_md);
    s->mgf1_md = md;
    s->mgf1_mdi = mdi;
    strcpy(s->mgf1name, name);
    return 1;
}

/* A padding mode this key and this operation can use. */
static int check_pad(sig_ctx *s, int pad)
{
    switch (pad) {
    case RSA_PKCS1_PSS_PADDING:
        return 1;
    case RSA_PKCS1_PADDING:
    case RSA_NO_PADDING:
        if (!pss_only(s))
            return 1;
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature: %s is an RSA-PSS key: only pss padding is allowed, not %s",
            sig_key_name(s->key), pad_name(pad));
        return 0;
    default:
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "RSA signature: padding %s is not supported for signatures (pkcs1, pss, none are)",
            pad_name(pad));
        return 0;
    }
}

static int rsa_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sig_ctx *s = vctx;
    const OSSL_PARAM *p;
    int pad, saltlen;

    if (!s)
        return 0;
    if (!params)
        return 1;
    if (!sig_set_md_params(s, params))
        return 0;
    pad = s->pad;
    saltlen = s->saltlen;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p && (!parse_pad(s, p, &pad) || !check_pad(s, pad)))
        return 0;
    if (pad != s->pad && s->started) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature: the padding cannot change during an operation");
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p && pad != RSA_PKCS1_PSS_PADDING) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature: a PSS salt length needs pss padding, set first");
        return 0;
    }
    if (p && !parse_saltlen(s, p, &saltlen))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p && pad != RSA_PKCS1_PSS_PADDING) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "RSA signature: an MGF1 digest needs pss padding, set first");
        return 0;
    }
    if (p && !set_mgf1(s, params))
        return 0;
    if (pad == RSA_PKCS1_PSS_PADDING
        && !pss_key_allows(s, s->md_nid, s->mgf1_mdi ? s->mgf1_mdi->nid : 0,
                           saltlen))
        return 0;
    s->pad = pad;
    s->saltlen = saltlen;
    /* PSS without a digest signs with SHA-1, as in OpenSSL. */
    if (pad == RSA_PKCS1_PSS_PADDING && !s->md && !sig_set_md(s, "SHA1", NULL))
        return 0;
    /* Choose again; once data went in, padding and digest are fixed. */
    if (!s->started)
        sig_invalidate(s);
    return 1;
}

static const OSSL_PARAM rsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_settable_ctx_params(void *vctx, void *provctx)
{
    return rsa_settable;
}

const OSSL_DISPATCH prov_rsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_newctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))rsa_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))rsa_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
     (void (*)(void))rsa_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
     (void (*)(void))sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
     (void (*)(void))rsa_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
     (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
     (void (*)(void))sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))rsa_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
     (void (*)(void))rsa_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))rsa_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
     (void (*)(void))rsa_settable_ctx_params},
    {0, NULL},
};

#if P11CA_MESSAGE_SIGN
/* ------------------------------------------------------------------ */
/* RSA-SHA256 and friends (OpenSSL 3.4's message-signing API)          */
/* ------------------------------------------------------------------ */

static OSSL_FUNC_signature_sign_init_fn rsa_sigalg_sign_init;
static OSSL_FUNC_signature_sign_message_init_fn rsa_sigalg_message_init;
static OSSL_FUNC_signature_set_ctx_params_fn rsa_sigalg_set_ctx_params;
static OSSL_FUNC_signature_query_key_types_fn rsa_sigalg_key_types;

/* PKCS#1 v1.5 with the algorithm's digest: RSA keys (not RSA-PSS ones). */
static const char **rsa_sigalg_key_types(void)
{
    static const char *types[] = {"RSA", NULL};

    return types;
}

static int rsa_sigalg_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    return sig_sigalg_fixed_md(vctx, params)
           && rsa_set_ctx_params(vctx, params);
}

static int rsa_sigalg_sign_init(void *vctx, void *key,
                                const OSSL_PARAM params[])
{
    return sig_init(vctx, key, EVP_PKEY_OP_SIGN, false)
           && rsa_sigalg_set_ctx_params(vctx, params);
}

static int rsa_sigalg_message_init(void *vctx, void *key,
                                   const OSSL_PARAM params[])
{
    return sig_init(vctx, key, EVP_PKEY_OP_SIGN, true)
           && rsa_sigalg_set_ctx_params(vctx, params);
}

#define IMPL_RSA_SIGALG(md, MD)                                                \
    static OSSL_FUNC_signature_newctx_fn rsa_##md##_newctx;                    \
    static void *rsa_##md##_newctx(void *provctx, const char *propq)           \
    {                                                                          \
        return sig_sigalg_newctx(provctx, &rsa_alg, MD);                       \
    }                                                                          \
    const OSSL_DISPATCH prov_rsa_##md##_signature_functions[] = {              \
        {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_##md##_newctx},       \
        {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))rsa_sigalg_sign_init}, \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sigalg_sign},           \
        {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT,                                \
         (void (*)(void))rsa_sigalg_message_init},                             \
        {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_UPDATE,                              \
         (void (*)(void))sig_digest_update},                                   \
        {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL,                               \
         (void (*)(void))sig_digest_sign_final},                               \
        {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},            \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},              \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,                                   \
         (void (*)(void))rsa_get_ctx_params},                                  \
        {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,                              \
         (void (*)(void))rsa_gettable_ctx_params},                             \
        {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,                                   \
         (void (*)(void))rsa_sigalg_set_ctx_params},                           \
        {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,                              \
         (void (*)(void))rsa_settable_ctx_params},                             \
        {OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES,                                  \
         (void (*)(void))rsa_sigalg_key_types},                                \
        {0, NULL},                                                             \
    }

IMPL_RSA_SIGALG(sha1, "SHA1");
IMPL_RSA_SIGALG(sha224, "SHA2-224");
IMPL_RSA_SIGALG(sha256, "SHA2-256");
IMPL_RSA_SIGALG(sha384, "SHA2-384");
IMPL_RSA_SIGALG(sha512, "SHA2-512");
#endif
