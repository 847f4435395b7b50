/* SPDX-License-Identifier: Apache-2.0 */
/* Private-key operations on the token: sign, decrypt, ECDH derive. */
#include "config.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct op_arg {
    p11_obj *key;
    const p11_auth *auth;
    CK_MECHANISM *mech;
    const unsigned char *in;
    size_t inlen;
    unsigned char *out;
    size_t *outlen;
};

/*
 * Context-specific login right after *Init, for always-authenticate keys.
 * When it fails the operation stays initialised, so the session is closed
 * rather than pooled.
 */
static CK_RV maybe_ctx_login(p11_session *s, struct op_arg *oa)
{
    CK_RV rv;

    if (!oa->key->always_auth)
        return CKR_OK;
    rv = p11_login_context_specific(s, oa->key, oa->auth);
    if (rv != CKR_OK)
        s->broken = true;
    return rv;
}

static CK_RV sign_fn(p11_session *s, CK_OBJECT_HANDLE h, void *arg)
{
    struct op_arg *oa = arg;
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_ULONG len = *oa->outlen;
    CK_RV rv;

    rv = P11_C(f, C_SignInit, s->h, oa->mech, h);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_SignInit", s->tok,
                             p11_obj_describe(oa->key), NULL);
    rv = maybe_ctx_login(s, oa);
    if (rv != CKR_OK)
        return rv;
    rv = P11_C(f, C_Sign, s->h, (CK_BYTE *)oa->in, oa->inlen, oa->out, &len);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_Sign", s->tok, p11_obj_describe(oa->key),
                             NULL);
    *oa->outlen = len;
    return CKR_OK;
}

static CK_RV decrypt_fn(p11_session *s, CK_OBJECT_HANDLE h, void *arg)
{
    struct op_arg *oa = arg;
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_ULONG len = *oa->outlen;
    CK_RV rv;

    rv = P11_C(f, C_DecryptInit, s->h, oa->mech, h);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_DecryptInit", s->tok,
                             p11_obj_describe(oa->key), NULL);
    rv = maybe_ctx_login(s, oa);
    if (rv != CKR_OK)
        return rv;
    rv = P11_C(f, C_Decrypt, s->h, (CK_BYTE *)oa->in, oa->inlen, oa->out, &len);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_Decrypt", s->tok, p11_obj_describe(oa->key),
                             NULL);
    *oa->outlen = len;
    return CKR_OK;
}

static CK_RV run_op(p11_obj *key, const p11_auth *auth, CK_MECHANISM *mech,
                    const unsigned char *in, size_t inlen, unsigned char *out,
                    size_t *outlen, p11_run_fn fn)
{
    struct op_arg oa = {key, auth, mech, in, inlen, out, outlen};
    unsigned flags = p11_token_needs_login(key->tok) ? P11_SESSION_LOGIN : 0;

    return p11_run(key->tok, flags, auth, key, fn, &oa);
}

CK_RV p11_sign(p11_obj *key, const p11_auth *auth, CK_MECHANISM *mech,
               const unsigned char *data, size_t len, unsigned char *sig,
               size_t *siglen)
{
    return_val_if_fail(key && mech && sig && siglen, CKR_ARGUMENTS_BAD);
    return run_op(key, auth, mech, data, len, sig, siglen, sign_fn);
}

CK_RV p11_decrypt(p11_obj *key, const p11_auth *auth, CK_MECHANISM *mech,
                  const unsigned char *in, size_t inlen, unsigned char *out,
                  size_t *outlen)
{
    return_val_if_fail(key && mech && out && outlen, CKR_ARGUMENTS_BAD);
    return run_op(key, auth, mech, in, inlen, out, outlen, decrypt_fn);
}

struct derive_arg {
    p11_obj *key;
    const p11_auth *auth;
    const unsigned char *peer;
    size_t peer_len;
    unsigned char *out;
    size_t *outlen;
};

static CK_RV derive_fn(p11_session *s, CK_OBJECT_HANDLE h, void *arg)
{
    struct derive_arg *da = arg;
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, da->peer_len,
                                     (CK_BYTE *)da->peer};
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &params, sizeof(params)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL t = CK_TRUE, fls = CK_FALSE;
    CK_ULONG vlen = *da->outlen;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &fls, sizeof(fls)}, /* a session object only */
        {CKA_SENSITIVE, &fls, sizeof(fls)},   {CKA_EXTRACTABLE, &t, sizeof(t)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_ATTRIBUTE val = {CKA_VALUE, da->out, *da->outlen};
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    CK_RV rv;

    rv = P11_C(f, C_DeriveKey, s->h, &mech, h, tmpl, 6, &secret);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_DeriveKey", s->tok,
                             p11_obj_describe(da->key), "ECDH");
    rv = P11_C(f, C_GetAttributeValue, s->h, secret, &val, 1);
    P11_C(f, C_DestroyObject, s->h, secret);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_GetAttributeValue", s->tok,
                             p11_obj_describe(da->key),
                             "reading the ECDH shared secret");
    *da->outlen = val.ulValueLen;
    return CKR_OK;
}

CK_RV p11_derive_ecdh(p11_obj *key, const p11_auth *auth,
                      const unsigned char *peer, size_t peer_len,
                      unsigned char *out, size_t *outlen)
{
    struct derive_arg da = {key, auth, peer, peer_len, out, outlen};
    unsigned flags;

    return_val_if_fail(key && peer && out && outlen, CKR_ARGUMENTS_BAD);
    flags = p11_token_needs_login(key->tok) ? P11_SESSION_LOGIN : 0;
    return p11_run(key->tok, flags, auth, key, derive_fn, &da);
}

struct random_arg {
    unsigned char *out;
    size_t len;
};

static CK_RV random_fn(p11_session *s, CK_OBJECT_HANDLE unused, void *arg)
{
    struct random_arg *ra = arg;
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_RV rv;

    rv = P11_C(f, C_GenerateRandom, s->h, ra->out, (CK_ULONG)ra->len);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_GenerateRandom", s->tok, NULL, "%zu bytes",
                             ra->len);
    return CKR_OK;
}

CK_RV p11_generate_random(p11_token *tok, unsigned char *out, size_t len)
{
    struct random_arg ra = {out, len};

    return_val_if_fail(tok && (out || len == 0), CKR_ARGUMENTS_BAD);
    if (len == 0)
        return CKR_OK;
    return p11_run(tok, 0, NULL, NULL, random_fn, &ra);
}
