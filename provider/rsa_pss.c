/* SPDX-License-Identifier: Apache-2.0 */
/* RSA keys that the token lets sign with PSS only (CKA_ALLOWED_MECHANISMS):
 * shown to OpenSSL as RSA-PSS keys, with the restrictions their allowed
 * mechanisms imply, so that libssl and X.509 signing choose PSS. */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

/* The digests a PSS mechanism can name, in the order of their strength. */
static const int pss_digests[] = {
    NID_sha1,     NID_sha224,   NID_sha256,   NID_sha384,   NID_sha512,
    NID_sha3_224, NID_sha3_256, NID_sha3_384, NID_sha3_512,
};

/* The digest of a token-hashed PSS mechanism, NID_undef for others. */
static int pss_mech_digest(CK_MECHANISM_TYPE mech)
{
    for (size_t i = 0; i < sizeof(pss_digests) / sizeof(pss_digests[0]); i++) {
        const sig_md_info *m = sig_md_info_by_nid(pss_digests[i]);

        if (m && m->rsa_pss == mech)
            return m->nid;
    }
    return NID_undef;
}

/*
 * Whether the key's allowed mechanisms are all PSS signatures (raw
 * CKM_RSA_PKCS_PSS or CKM_SHA*_RSA_PKCS_PSS).  A key that may also
 * decrypt or sign with PKCS#1 v1.5 stays an RSA key.
 */
static bool pss_only(const prov_key *key)
{
    if (!key->allowed || key->n_allowed == 0)
        return false;
    for (size_t i = 0; i < key->n_allowed; i++)
        if (key->allowed[i] != CKM_RSA_PKCS_PSS
            && pss_mech_digest(key->allowed[i]) == NID_undef)
            return false;
    return true;
}

/*
 * The restriction of an RSA-PSS key: with raw CKM_RSA_PKCS_PSS any digest
 * goes (unrestricted); with one token-hashed mechanism only, its digest,
 * MGF1 with it and a salt of at least its length, as RFC 4055 keys say and
 * TLS needs; several token-hashed ones cannot be said in an RSA-PSS key
 * (it names one digest): unrestricted, and the signature refuses the
 * others.
 */
static int pss_restriction(const prov_key *key)
{
    int md = NID_undef;

    for (size_t i = 0; i < key->n_allowed; i++) {
        int d = pss_mech_digest(key->allowed[i]);

        if (key->allowed[i] == CKM_RSA_PKCS_PSS || (md && d != md))
            return NID_undef;
        md = d;
    }
    return md;
}

/*
 * The software public half as an RSA-PSS key with the restrictions:
 * n and e of @rsa, and digest, MGF1 digest and minimum salt length when
 * restricted.  NULL with an error raised.
 */
static EVP_PKEY *pss_public(prov_key *key, EVP_PKEY *rsa)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    const char *md = OBJ_nid2sn(key->pss_md_nid);
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pk = NULL;
    int ok;

    ok = bld && EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n)
         && EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &e)
         && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
         && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    if (ok && key->pss_md_nid != NID_undef)
        ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_RSA_DIGEST,
                                             md, 0)
             && OSSL_PARAM_BLD_push_utf8_string(
                 bld, OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, md, 0)
             && OSSL_PARAM_BLD_push_int(bld, OSSL_PKEY_PARAM_RSA_PSS_SALTLEN,
                                        key->pss_saltlen_min);
    if (ok)
        ok = (params = OSSL_PARAM_BLD_to_param(bld)) != NULL
             && (pctx = EVP_PKEY_CTX_new_from_name(
                     prov_swctx(key->ctx), "RSA-PSS", prov_swprops(key->ctx)))
                    != NULL
             && EVP_PKEY_fromdata_init(pctx) > 0
             && EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) > 0;
    if (!ok)
        prov_raise(key->ctx, PROV_R_INTERNAL,
                   "%s: cannot make the RSA-PSS public key", key->uri);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return ok ? pk : NULL;
}

int prov_rsa_pss_adopt(prov_key *key)
{
    const sig_md_info *m;
    EVP_PKEY *pk;

    if (key->type != PROV_KEY_RSA || !key->ctx->rsa_pss_keys || !pss_only(key))
        return 1;
    key->pss_md_nid = pss_restriction(key);
    m = sig_md_info_by_nid(key->pss_md_nid);
    if (m) {
        EVP_MD *md = EVP_MD_fetch(prov_swctx(key->ctx), OBJ_nid2sn(m->nid),
                                  prov_swprops(key->ctx));

        key->pss_saltlen_min = md ? EVP_MD_get_size(md) : 0;
        EVP_MD_free(md);
    }
    pk = prov_key_pub(key);
    if (!pk || !(pk = pss_public(key, pk)))
        return 0;
    key->type = PROV_KEY_RSA_PSS;
    return prov_key_set_public(key, pk, false);
}
