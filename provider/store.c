/* SPDX-License-Identifier: Apache-2.0 */
/* OSSL_STORE for the pkcs11: scheme: private keys (as provider keys that
 * stay on the token), public keys and certificates (as DER, decoded by
 * OpenSSL into ordinary software objects). */
#include "config.h"

#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;

struct store_ctx {
    prov_ctx *ctx;
    p11_uri *uri;
    int expect; /* OSSL_STORE_INFO_* or 0 for anything */
    bool searched;
    p11_obj **objs; /* what the search found, delivered one by one */
    size_t n, next;
};

static void *store_open(void *provctx, const char *uri)
{
    prov_ctx *ctx = provctx;
    struct store_ctx *sc;
    CK_RV rv;

    sc = calloc(1, sizeof(*sc));
    if (!sc) {
        prov_raise(ctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    sc->ctx = ctx;
    rv = p11_uri_parse(uri, &sc->uri);
    if (rv != CKR_OK) {
        /* Fail at open: OpenSSL then reports this, not a later symptom. */
        prov_raise_p11(ctx, rv, "cannot open the pkcs11: URI");
        free(sc);
        return NULL;
    }
    return sc;
}

static const OSSL_PARAM store_param_types[] = {
    OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    return store_param_types;
}

static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    struct store_ctx *sc = loaderctx;
    const OSSL_PARAM *p;

    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p && !OSSL_PARAM_get_int(p, &sc->expect))
        return 0;
    return 1;
}

/* The PIN prompt of the p11 layer, answered by the application's callback. */
struct pw_bridge {
    OSSL_PASSPHRASE_CALLBACK *cb;
    void *arg;
};

static int store_prompt(const char *what, bool ctx_specific, char *pin,
                        size_t max, void *arg)
{
    struct pw_bridge *b = arg;
    OSSL_PARAM params[2];
    char info[160];
    size_t len = 0;

    if (!b->cb)
        return -1;
    /* OpenSSL's UI shows "Enter pass phrase for <info>:". */
    snprintf(info, sizeof(info), "%s%s", ctx_specific ? "signature on " : "",
             what);
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!b->cb(pin, max, &len, params, b->arg) || len > max)
        return -1;
    return (int)len;
}

/*
 * Refuse to pick one of several private keys for a caller that loads one
 * key: OpenSSL's applications (load_key: pkey -in, dgst -sign, s_server
 * -key, req -key, ...) set the expected type to a key and take the first
 * they get, so the choice would be the token's object order.
 */
static int refuse_ambiguous(struct store_ctx *sc, p11_obj **objs, size_t n)
{
    char names[1024];
    size_t o = 0, keys = 0;
    bool full = false;
    char *d;

    names[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char *u;
        int r;

        if (p11_obj_class(objs[i]) != CKO_PRIVATE_KEY)
            continue;
        keys++;
        if (full) /* counted, no longer listed */
            continue;
        u = p11_obj_uri(objs[i]); /* never with a PIN */
        r = snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "",
                     u ? u : p11_obj_describe(objs[i]));
        free(u);
        if (r >= 0 && (size_t)r < sizeof(names) - o) {
            o += (size_t)r;
        } else { /* cut, and said so */
            memcpy(names + sizeof(names) - 4, "...", 4);
            full = true;
        }
    }
    if (keys < 2)
        return 1;
    d = p11_uri_format(sc->uri);
    prov_raise(
        sc->ctx, PROV_R_AMBIGUOUS,
        "%zu private keys match %s, and one key is wanted: %s; add object=, id= or token= to the URI (storeutl without -keys lists them all)",
        keys, d ? d : "the URI", names);
    free(d);
    return 0;
}

/*
 * What to look for: the URI's type=, else what the application expects,
 * else everything, on every initialised token the URI matches.  Private
 * keys come first: an application that wants a private key takes the first
 * key it gets.  Logins: see the PIN rules in p11ca-provider(7).
 */
static int search(struct store_ctx *sc, struct pw_bridge *pw)
{
    CK_OBJECT_CLASS cls = p11_uri_get_class(sc->uri), classes[3];
    p11_find f = {.classes = classes};
    p11_obj **objs = NULL;
    bool priv, pub, cert, one_key = sc->expect == OSSL_STORE_INFO_PKEY;
    p11_auth auth;
    size_t n = 0;
    CK_RV rv;

    sc->searched = true;
    if (cls != (CK_OBJECT_CLASS)-1) {
        priv = cls == CKO_PRIVATE_KEY;
        pub = cls == CKO_PUBLIC_KEY;
        cert = cls == CKO_CERTIFICATE;
    } else {
        priv = sc->expect == 0 || sc->expect == OSSL_STORE_INFO_PKEY;
        pub = sc->expect == 0 || sc->expect == OSSL_STORE_INFO_PUBKEY;
        cert = sc->expect == 0 || sc->expect == OSSL_STORE_INFO_CERT;
    }
    if (priv)
        classes[f.n_classes++] = CKO_PRIVATE_KEY;
    if (pub)
        classes[f.n_classes++] = CKO_PUBLIC_KEY;
    if (cert)
        classes[f.n_classes++] = CKO_CERTIFICATE;
    if (f.n_classes == 0) {
        /* type=data or type=secret-key: nothing this store delivers. */
        prov_raise(sc->ctx, PROV_R_NOT_FOUND, "no object of that type");
        return 0;
    }
    if ((priv && sc->ctx->login != PROV_LOGIN_NEVER)
        || sc->ctx->login == PROV_LOGIN_ALWAYS)
        f.flags |= P11_FIND_LOGIN;
    /* Something definite is loaded: wait for a token that seems away. */
    if (sc->expect != 0 || cls != (CK_OBJECT_CLASS)-1)
        f.flags |= P11_FIND_EXPECT;
    /* A listing shows the public objects when one PIN would serve several
     * tokens; loading a private key fails and says to name the token. */
    if (!(priv && f.n_classes == 1))
        f.flags |= P11_FIND_PUBLIC_IF_SHARED;
    p11_auth_from_uri(&auth, sc->uri);
    if (!auth.pin_value && !auth.pin_source)
        prov_auth_config(sc->ctx, &auth);
    auth.prompt = store_prompt;
    auth.prompt_arg = pw;
    f.auth = &auth;
    rv = p11_obj_search(prov_p11(sc->ctx), sc->uri, &f, &objs, &n);
    if (rv != CKR_OK)
        return prov_raise_p11(sc->ctx, rv, "pkcs11: store");
    if (f.pin_withheld)
        LOG_DBG(PROV, "private objects not listed: one PIN for %zu tokens",
                f.n_tokens);
    if (one_key && !refuse_ambiguous(sc, objs, n)) {
        for (size_t i = 0; i < n; i++)
            p11_obj_unref(objs[i]);
        free(objs);
        return 0;
    }
    sc->objs = objs;
    sc->n = n;
    if (sc->n == 0) {
        char *d = p11_uri_format(sc->uri);
        prov_raise(sc->ctx, PROV_R_NOT_FOUND, "no %s matches %s",
                   priv && !pub && !cert   ? "private key"
                   : pub && !priv && !cert ? "public key"
                   : cert && !priv && !pub ? "certificate"
                                           : "object",
                   d ? d : "the URI");
        free(d);
        return 0;
    }
    return 1;
}

static int deliver_private(struct store_ctx *sc, p11_obj *obj,
                           OSSL_CALLBACK *cb, void *cbarg)
{
    int type = OSSL_OBJECT_PKEY, ok;
    prov_key *key = prov_key_cache_get(sc->ctx, obj);
    OSSL_PARAM params[5];

    if (!key) {
        key = prov_key_from_obj(sc->ctx, obj, sc->uri);
        if (!key)
            return 0;
        prov_key_cache_put(sc->ctx, key);
    }
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
    params[1] = OSSL_PARAM_construct_utf8_string(
        OSSL_OBJECT_PARAM_DATA_TYPE, (char *)prov_key_type_name(key->type), 0);
    /* The reference is the key pointer; keymgmt load() takes a reference. */
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE,
                                                  &key, sizeof(key));
    params[3] =
        OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, key->uri, 0);
    params[4] = OSSL_PARAM_construct_end();
    ok = cb(params, cbarg);
    prov_key_unref(key);
    return ok;
}

static int deliver_der(struct store_ctx *sc, p11_obj *obj, int type,
                       const char *data_type, const char *structure,
                       unsigned char *der, size_t len, OSSL_CALLBACK *cb,
                       void *cbarg)
{
    char *desc = p11_obj_uri(obj);
    OSSL_PARAM params[6];
    size_t n = 0;
    int ok;

    params[n++] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
    if (data_type)
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_OBJECT_PARAM_DATA_TYPE, (char *)data_type, 0);
    if (structure)
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_OBJECT_PARAM_DATA_STRUCTURE, (char *)structure, 0);
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, len);
    if (desc)
        params[n++] =
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, desc, 0);
    params[n] = OSSL_PARAM_construct_end();
    ok = cb(params, cbarg);
    free(desc);
    return ok;
}

/* A public key, as SubjectPublicKeyInfo for OpenSSL's own decoders. */
static int deliver_public(struct store_ctx *sc, p11_obj *obj, OSSL_CALLBACK *cb,
                          void *cbarg)
{
    EVP_PKEY *pk = NULL;
    unsigned char *der = NULL;
    int len, ok = 0;
    CK_RV rv;

    rv = p11_obj_public_key(obj, prov_swctx(sc->ctx), prov_swprops(sc->ctx),
                            &pk);
    if (rv != CKR_OK)
        return prov_raise_p11(sc->ctx, rv, "reading a public key");
    len = i2d_PUBKEY(pk, &der);
    if (len > 0)
        ok = deliver_der(sc, obj, OSSL_OBJECT_PKEY,
                         EVP_PKEY_is_a(pk, "RSA")  ? "RSA"
                         : EVP_PKEY_is_a(pk, "EC") ? "EC"
                                                   : "ED25519",
                         "SubjectPublicKeyInfo", der, (size_t)len, cb, cbarg);
    else
        prov_raise(sc->ctx, PROV_R_INTERNAL, "cannot encode a public key");
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    return ok;
}

static int deliver_cert(struct store_ctx *sc, p11_obj *obj, OSSL_CALLBACK *cb,
                        void *cbarg)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int ok;
    CK_RV rv;

    if (p11_obj_cert_type(obj) != CKC_X_509)
        return 1; /* not ours to decode; nothing to report */
    rv = p11_obj_get_attr(obj, CKA_VALUE, &der, &len);
    if (rv != CKR_OK)
        return prov_raise_p11(sc->ctx, rv, "reading a certificate");
    ok = deliver_der(sc, obj, OSSL_OBJECT_CERT, NULL, "Certificate", der, len,
                     cb, cbarg);
    free(der);
    return ok;
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb,
                      void *object_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                      void *pw_cbarg)
{
    struct store_ctx *sc = loaderctx;
    struct pw_bridge pw = {pw_cb, pw_cbarg};
    p11_obj *obj;

    if (!sc->searched && !search(sc, &pw))
        return 0;
    if (sc->next >= sc->n)
        return 0;
    obj = sc->objs[sc->next++];
    switch (p11_obj_class(obj)) {
    case CKO_PRIVATE_KEY:
        return deliver_private(sc, obj, object_cb, object_cbarg);
    case CKO_PUBLIC_KEY:
        return deliver_public(sc, obj, object_cb, object_cbarg);
    case CKO_CERTIFICATE:
        return deliver_cert(sc, obj, object_cb, object_cbarg);
    default:
        return 1;
    }
}

static int store_eof(void *loaderctx)
{
    struct store_ctx *sc = loaderctx;

    /* A failed search is the end too: nothing more will come. */
    return sc->searched && sc->next >= sc->n;
}

static int store_close(void *loaderctx)
{
    struct store_ctx *sc = loaderctx;

    if (!sc)
        return 1;
    for (size_t i = 0; i < sc->n; i++)
        p11_obj_unref(sc->objs[i]);
    free(sc->objs);
    p11_uri_free(sc->uri);
    free(sc);
    return 1;
}

const OSSL_DISPATCH prov_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS,
     (void (*)(void))store_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
    {0, NULL},
};
