/* SPDX-License-Identifier: Apache-2.0 */
/* The signature context shared by RSA, ECDSA and EdDSA: lifecycle, digest,
 * mechanism choice, software hashing, one C_Sign per signature, and
 * verification in software. */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

/* ------------------------------------------------------------------ */
/* Digests and mechanisms                                              */
/* ------------------------------------------------------------------ */

static const sig_md_info md_table[] = {
    {NID_sha1, "SHA-1", false, CKM_SHA_1, CKG_MGF1_SHA1, CKM_SHA1_RSA_PKCS,
     CKM_SHA1_RSA_PKCS_PSS, CKM_ECDSA_SHA1},
    {NID_sha224, "SHA-224", false, CKM_SHA224, CKG_MGF1_SHA224,
     CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_ECDSA_SHA224},
    {NID_sha256, "SHA-256", false, CKM_SHA256, CKG_MGF1_SHA256,
     CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_ECDSA_SHA256},
    {NID_sha384, "SHA-384", false, CKM_SHA384, CKG_MGF1_SHA384,
     CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_ECDSA_SHA384},
    {NID_sha512, "SHA-512", false, CKM_SHA512, CKG_MGF1_SHA512,
     CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_ECDSA_SHA512},
    {NID_sha3_224, "SHA3-224", true, CKM_SHA3_224, CKG_MGF1_SHA3_224,
     CKM_SHA3_224_RSA_PKCS, CKM_SHA3_224_RSA_PKCS_PSS, CKM_ECDSA_SHA3_224},
    {NID_sha3_256, "SHA3-256", true, CKM_SHA3_256, CKG_MGF1_SHA3_256,
     CKM_SHA3_256_RSA_PKCS, CKM_SHA3_256_RSA_PKCS_PSS, CKM_ECDSA_SHA3_256},
    {NID_sha3_384, "SHA3-384", true, CKM_SHA3_384, CKG_MGF1_SHA3_384,
     CKM_SHA3_384_RSA_PKCS, CKM_SHA3_384_RSA_PKCS_PSS, CKM_ECDSA_SHA3_384},
    {NID_sha3_512, "SHA3-512", true, CKM_SHA3_512, CKG_MGF1_SHA3_512,
     CKM_SHA3_512_RSA_PKCS, CKM_SHA3_512_RSA_PKCS_PSS, CKM_ECDSA_SHA3_512},
};

const sig_md_info *sig_md_info_by_nid(int nid)
{
    for (size_t i = 0; i < sizeof(md_table) / sizeof(md_table[0]); i++)
        if (md_table[i].nid == nid)
            return &md_table[i];
    return NULL;
}

#define MECH(m)                                                                \
    {                                                                          \
        m, #m                                                                  \
    }
static const struct {
    CK_MECHANISM_TYPE mech;
    const char *name;
} mech_names[] = {
    MECH(CKM_RSA_PKCS),
    MECH(CKM_RSA_PKCS_PSS),
    MECH(CKM_RSA_X_509),
    MECH(CKM_ECDSA),
    MECH(CKM_EDDSA),
    MECH(CKM_SHA_1),
    MECH(CKM_SHA224),
    MECH(CKM_SHA256),
    MECH(CKM_SHA384),
    MECH(CKM_SHA512),
    MECH(CKM_SHA3_224),
    MECH(CKM_SHA3_256),
    MECH(CKM_SHA3_384),
    MECH(CKM_SHA3_512),
    MECH(CKM_SHA1_RSA_PKCS),
    MECH(CKM_SHA224_RSA_PKCS),
    MECH(CKM_SHA256_RSA_PKCS),
    MECH(CKM_SHA384_RSA_PKCS),
    MECH(CKM_SHA512_RSA_PKCS),
    MECH(CKM_SHA3_224_RSA_PKCS),
    MECH(CKM_SHA3_256_RSA_PKCS),
    MECH(CKM_SHA3_384_RSA_PKCS),
    MECH(CKM_SHA3_512_RSA_PKCS),
    MECH(CKM_SHA1_RSA_PKCS_PSS),
    MECH(CKM_SHA224_RSA_PKCS_PSS),
    MECH(CKM_SHA256_RSA_PKCS_PSS),
    MECH(CKM_SHA384_RSA_PKCS_PSS),
    MECH(CKM_SHA512_RSA_PKCS_PSS),
    MECH(CKM_SHA3_224_RSA_PKCS_PSS),
    MECH(CKM_SHA3_256_RSA_PKCS_PSS),
    MECH(CKM_SHA3_384_RSA_PKCS_PSS),
    MECH(CKM_SHA3_512_RSA_PKCS_PSS),
    MECH(CKM_ECDSA_SHA1),
    MECH(CKM_ECDSA_SHA224),
    MECH(CKM_ECDSA_SHA256),
    MECH(CKM_ECDSA_SHA384),
    MECH(CKM_ECDSA_SHA512),
    MECH(CKM_ECDSA_SHA3_224),
    MECH(CKM_ECDSA_SHA3_256),
    MECH(CKM_ECDSA_SHA3_384),
    MECH(CKM_ECDSA_SHA3_512),
};

const char *sig_mech_name(CK_MECHANISM_TYPE mech)
{
    static _Thread_local char buf[32];

    for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
        if (mech_names[i].mech == mech)
            return mech_names[i].name;
    snprintf(buf, sizeof(buf), "CKM_0x%lx", (unsigned long)mech);
    return buf;
}

const char *sig_key_name(const prov_key *key)
{
    if (key->priv)
        return p11_obj_describe(key->priv);
    return key->uri ? key->uri : "a public key";
}

bool sig_mech_usable(const sig_ctx *s, CK_MECHANISM_TYPE mech)
{
    CK_MECHANISM_INFO info;
    CK_MECHANISM_TYPE none;

    if (mech == 0)
        return false;
    for (size_t i = 0; i < PROV_KEY_MECHS; i++)
        if (atomic_load(&s->key->sign_mechs[i]) == mech)
            return true;
    if (!p11_token_has_mechanism(p11_obj_token(s->key->priv), mech, CKF_SIGN,
                                 &info)
        || !prov_key_allows(s->key, mech))
        return false;
    /*
     * Remembered only when the token's answer was certain (its list and
     * the mechanism's flags read): "maybe" is asked again next time.
     */
    for (size_t i = 0; i < PROV_KEY_MECHS && (info.flags & CKF_SIGN); i++) {
        none = 0;
        if (atomic_compare_exchange_strong(&s->key->sign_mechs[i], &none, mech)
            || none == mech)
            break;
    }
    return true;
}

/* Why @mech cannot be used, for messages. */
static const char *why_not(const sig_ctx *s, CK_MECHANISM_TYPE mech, char *buf,
                           size_t n)
{
    p11_token *tok = p11_obj_token(s->key->priv);

    if (!p11_token_has_mechanism(tok, mech, CKF_SIGN, NULL))
        snprintf(buf, n, "%s is not supported for signing by %s",
                 sig_mech_name(mech), p11_token_describe(tok));
    else
        snprintf(buf, n, "%s is not in the key's CKA_ALLOWED_MECHANISMS",
                 sig_mech_name(mech));
    return buf;
}

int sig_choose_mech(sig_ctx *s, CK_MECHANISM_TYPE raw, CK_MECHANISM_TYPE hashed)
{
    char a[160], b[160];

    if (sig_mech_usable(s, raw)) {
        s->mech = raw;
        s->token_hashes = false;
        return 1;
    }
    if (s->digest_op && sig_mech_usable(s, hashed)) {
        s->mech = hashed;
        s->token_hashes = true;
        return 1;
    }
    if (!s->digest_op && sig_mech_usable(s, hashed)) {
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "%s signature with %s: %s, and %s hashes the message itself: sign the message (EVP_DigestSign, openssl dgst -sign) rather than a digest",
            s->alg->name, sig_key_name(s->key), why_not(s, raw, a, sizeof(a)),
            sig_mech_name(hashed));
        return 0;
    }
    if (hashed)
        prov_raise(s->ctx, PROV_R_UNSUPPORTED, "%s signature with %s: %s; %s",
                   s->alg->name, sig_key_name(s->key),
                   why_not(s, raw, a, sizeof(a)),
                   why_not(s, hashed, b, sizeof(b)));
    else
        prov_raise(s->ctx, PROV_R_UNSUPPORTED, "%s signature with %s: %s",
                   s->alg->name, sig_key_name(s->key),
                   why_not(s, raw, a, sizeof(a)));
    return 0;
}

void sig_invalidate(sig_ctx *s)
{
    s->mech = 0;
    s->token_hashes = false;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

/*
 * The context's hashing context: its own, else the spare one its key kept
 * from a freed context, else a new one: a TLS server's new signature
 * context per handshake neither allocates nor frees an EVP_MD_CTX.
 */
static EVP_MD_CTX *sig_mdctx(sig_ctx *s)
{
    if (!s->mdctx && s->key)
        s->mdctx = atomic_exchange(&s->key->spare_mdctx, NULL);
    if (!s->mdctx)
        s->mdctx = EVP_MD_CTX_new();
    return s->mdctx;
}

/* At free: give the hashing context to the key for the next context, or
 * free it when the key has one already.  (It holds the state of a digest
 * of the last message, which the next EVP_DigestInit_ex2 replaces.) */
static void sig_mdctx_give(sig_ctx *s)
{
    EVP_MD_CTX *none = NULL;

    if (s->mdctx && s->key && !s->hashing
        && atomic_compare_exchange_strong(&s->key->spare_mdctx, &none,
                                          s->mdctx))
        s->mdctx = NULL;
    EVP_MD_CTX_free(s->mdctx);
    s->mdctx = NULL;
}

sig_ctx *sig_newctx(void *provctx, const sig_alg *alg)
{
    prov_ctx *ctx = provctx;
    sig_ctx *s = atomic_exchange(&ctx->spare_sigctx, NULL);

    if (s)
        memset(s, 0, sizeof(*s));
    else
        s = OPENSSL_zalloc(sizeof(*s));
    if (!s) {
        prov_raise(provctx, PROV_R_INTERNAL, "out of memory");
        return NULL;
    }
    s->ctx = provctx;
    s->alg = alg;
    return s;
}

void sig_freectx(void *vctx)
{
    sig_ctx *s = vctx;
    void *none = NULL;

    if (!s)
        return;
    sig_mdctx_give(s);
    prov_key_unref(s->key);
    EVP_MD_free(s->md);
    EVP_MD_free(s->mgf1_md);
    EVP_PKEY_CTX_free(s->swpctx);
    OPENSSL_clear_free(s->msg, s->msg_cap);
    /* Kept for the next newctx when there is room (zeroed then). */
    if (!atomic_compare_exchange_strong(&s->ctx->spare_sigctx, &none, s))
        OPENSSL_clear_free(s, sizeof(*s));
}

void sig_teardown(prov_ctx *ctx)
{
    OPENSSL_clear_free(atomic_exchange(&ctx->spare_sigctx, NULL),
                       sizeof(sig_ctx));
}

/*
 * A copy of a context in the middle of an operation.  OpenSSL 3.0 treats
 * a failed dupctx as fatal (libssl duplicates for its transcript hashes,
 * EVP_DigestSignFinal and X509_sign_ctx duplicate before finishing), and
 * there is nothing to fail here: no PKCS#11 state exists, the digest state
 * is a software copy and the buffered message a memcpy.  Only memory can
 * run out.
 */
void *sig_dupctx(void *vctx)
{
    const sig_ctx *src = vctx;
    sig_ctx *d = OPENSSL_malloc(sizeof(*d));

    if (!d)
        goto oom;
    *d = *src;
    /* What the copy owns is taken anew before anything can fail. */
    d->mdctx = NULL;
    d->swpctx = NULL;
    d->msg = NULL;
    d->msg_cap = 0;
    prov_key_ref(d->key);
    if (d->md)
        EVP_MD_up_ref(d->md);
    if (d->mgf1_md)
        EVP_MD_up_ref(d->mgf1_md);
    if (src->hashing
        && (!(d->mdctx = EVP_MD_CTX_new())
            || !EVP_MD_CTX_copy_ex(d->mdctx, src->mdctx)))
        goto oom;
    if (src->msg_len) {
        if (!(d->msg = OPENSSL_malloc(src->msg_len)))
            goto oom;
        memcpy(d->msg, src->msg, src->msg_len);
        d->msg_cap = src->msg_len;
    }
    return d;
oom:
    prov_raise(src->ctx, PROV_R_INTERNAL,
               "%s signature: out of memory copying a context", src->alg->name);
    sig_freectx(d);
    return NULL;
}

int sig_init(sig_ctx *s, void *vkey, int op, bool digest_op)
{
    prov_key *key = vkey ? vkey : s->key;

    if (!key) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT, "%s signature: no key",
                   s->alg->name);
        return 0;
    }
    if (!s->alg->key_ok(key)) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT, "%s signature: %s is a %s key",
                   s->alg->name, sig_key_name(key),
                   prov_key_type_name(key->type));
        return 0;
    }
    if (op == EVP_PKEY_OP_SIGN && !key->priv && !prov_key_is_software(key)) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "%s signature: %s is a public key only; signing needs the private key on a token (a pkcs11: URI with type=private)",
            s->alg->name, sig_key_name(key));
        return 0;
    }
    /* A token key signs without its public half; the rest needs it. */
    if ((op != EVP_PKEY_OP_SIGN || !key->priv) && !prov_key_pub(key)) {
        prov_raise(s->ctx, PROV_R_NO_PUBLIC_KEY,
                   "%s signature: the public half of %s is unknown",
                   s->alg->name, sig_key_name(key));
        return 0;
    }
    if (key != s->key) {
        prov_key_ref(key);
        prov_key_unref(s->key);
        s->key = key;
    }
    /* Made again at first use, for this operation. */
    EVP_PKEY_CTX_free(s->swpctx);
    s->swpctx = NULL;
    s->op = op;
    s->digest_op = digest_op;
    s->started = false;
    s->hashing = false;
    s->msg_len = 0;
    sig_invalidate(s);
    if (op == EVP_PKEY_OP_SIGN && key->priv)
        prov_key_auth(key, &s->auth);
    s->alg->reset(s);
    return 1;
}

/* The digest @name fetched for @key before (a new reference), or NULL. */
static EVP_MD *key_md_get(prov_key *key, const char *name)
{
    struct prov_key_md *e;

    for (size_t i = 0; i < PROV_KEY_MDS; i++) {
        e = atomic_load(&key->mds[i]);
        if (e && strcmp(e->name, name) == 0 && EVP_MD_up_ref(e->md))
            return e->md;
    }
    return NULL;
}

/* Keep @md for @key under @name, in a free slot (none free: not kept). */
static void key_md_put(prov_key *key, const char *name, EVP_MD *md)
{
    size_t len = strlen(name) + 1;
    struct prov_key_md *e = malloc(sizeof(*e) + len), *none;

    if (!e || !EVP_MD_up_ref(md)) {
        free(e);
        return;
    }
    e->md = md;
    memcpy(e->name, name, len);
    for (size_t i = 0; i < PROV_KEY_MDS; i++) {
        none = NULL;
        if (atomic_compare_exchange_strong(&key->mds[i], &none, e))
            return;
    }
    EVP_MD_free(md);
    free(e);
}

EVP_MD *sig_fetch_md(sig_ctx *s, const char *name, const char *props)
{
    EVP_MD *md;

    /*
     * Digests run in our software context; property queries written for
     * the application's context (provider=p11ca) may not match there.
     */
    if (props && *props) {
        prov_set_mark(s->ctx);
        md = EVP_MD_fetch(prov_swctx(s->ctx), name, props);
        prov_pop_to_mark(s->ctx);
        if (md)
            return md;
    }
    if (s->key && (md = key_md_get(s->key, name)))
        return md;
    md = EVP_MD_fetch(prov_swctx(s->ctx), name, prov_swprops(s->ctx));
    if (!md)
        prov_raise(s->ctx, PROV_R_UNSUPPORTED,
                   "%s signature: digest %s is not available", s->alg->name,
                   name);
    else if (s->key)
        key_md_put(s->key, name, md);
    return md;
}

int sig_set_md(sig_ctx *s, const char *mdname, const char *props)
{
    const sig_md_info *mdi;
    EVP_MD *md;

    if (!mdname || !*mdname) {
        if (s->started && s->md) {
            prov_raise(
                s->ctx, PROV_R_BAD_INPUT,
                "%s signature: the digest cannot be removed during an operation",
                s->alg->name);
            return 0;
        }
        EVP_MD_free(s->md);
        s->md = NULL;
        s->mdi = NULL;
        s->md_nid = NID_undef;
        s->md_size = 0;
        s->mdname[0] = '\0';
        sig_invalidate(s);
        return 1;
    }
    if (s->md && EVP_MD_is_a(s->md, mdname))
        return 1; /* already fetched */
    if (s->started) {
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "%s signature: the digest cannot change from %s to %s during an operation",
            s->alg->name, s->mdname, mdname);
        return 0;
    }
    if (strlen(mdname) >= sizeof(s->mdname)) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s signature: digest name too long", s->alg->name);
        return 0;
    }
    if (!(md = sig_fetch_md(s, mdname, props)))
        return 0;
    if (!(mdi = sig_md_info_by_nid(EVP_MD_get_type(md)))) {
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "%s signature: digest %s is not supported (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 and SHA-3 are)",
            s->alg->name, mdname);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(s->md);
    s->md = md;
    s->mdi = mdi;
    s->md_nid = mdi->nid;
    s->md_size = (size_t)EVP_MD_get_size(md);
    strcpy(s->mdname, mdname);
    sig_invalidate(s);
    return 1;
}

int sig_digest_init(sig_ctx *s, const char *mdname, void *key, int op)
{
    if (!sig_init(s, key, op, true))
        return 0;
    if (!mdname && s->md)
        return 1; /* re-initialisation keeps the digest */
    return sig_set_md(s, mdname && *mdname ? mdname : "SHA256", NULL);
}

/* ------------------------------------------------------------------ */
/* Signing on the token                                                */
/* ------------------------------------------------------------------ */

int sig_raise_small(sig_ctx *s, size_t sigsize, size_t need)
{
    prov_raise(
        s->ctx, PROV_R_BAD_INPUT,
        "%s signature: output buffer of %zu bytes is too small (%zu needed)",
        s->alg->name, sigsize, need);
    return 0;
}

int sig_token_sign(sig_ctx *s, CK_MECHANISM *mech, const unsigned char *data,
                   size_t len, unsigned char *sig, size_t *siglen,
                   size_t sigsize)
{
    size_t out = sigsize;
    char what[256];
    CK_RV rv;

    rv = p11_sign(s->key->priv, &s->auth, mech, data, len, sig, &out);
    if (rv != CKR_OK) {
        s->alg->describe(s, what, sizeof(what));
        return prov_raise_p11(s->ctx, rv, what);
    }
    *siglen = out;
    return 1;
}

/*
 * The mechanism of a signature, chosen once per operation; a software key
 * signs in software, with the message hashed here.
 */
static int sig_ready(sig_ctx *s)
{
    if (s->mech)
        return 1;
    if (sig_is_software(s)) {
        s->token_hashes = false;
        return 1;
    }
    return s->alg->choose(s);
}

/* Sign @in (see sig_alg.sign) on the token, or in software. */
static int sig_do_sign(sig_ctx *s, const unsigned char *in, size_t inlen,
                       unsigned char *sig, size_t *siglen, size_t sigsize)
{
    if (sig_is_software(s))
        return sig_sw_sign(s, in, inlen, sig, siglen, sigsize);
    return s->alg->sign(s, in, inlen, sig, siglen, sigsize);
}

/* The first data of a digest operation: fix the mechanism, start hashing. */
static int sig_prepare(sig_ctx *s)
{
    if (s->started)
        return 1;
    if (s->op == EVP_PKEY_OP_SIGN && !sig_ready(s))
        return 0;
    if (s->op == EVP_PKEY_OP_VERIFY || !s->token_hashes) {
        if (!s->md) {
            prov_raise(s->ctx, PROV_R_BAD_INPUT, "%s signature: no digest set",
                       s->alg->name);
            return 0;
        }
        if (!sig_mdctx(s)) {
            prov_raise(s->ctx, PROV_R_INTERNAL, "out of memory");
            return 0;
        }
        if (!EVP_DigestInit_ex2(s->mdctx, s->md, NULL)) {
            prov_raise(s->ctx, PROV_R_INTERNAL,
                       "%s signature: cannot start the %s digest", s->alg->name,
                       s->mdname);
            return 0;
        }
        s->hashing = true;
    }
    s->msg_len = 0;
    s->started = true;
    return 1;
}

/* The operation is over: the next data starts a new message. */
static void sig_finish(sig_ctx *s)
{
    s->started = false;
    s->hashing = false;
    if (s->msg_len)
        OPENSSL_cleanse(s->msg, s->msg_len);
    s->msg_len = 0;
}

/* Append to the buffered message (fallback mechanisms), bounded. */
static int sig_buffer(sig_ctx *s, const unsigned char *data, size_t len)
{
    size_t cap;
    unsigned char *p;

    if (len > SIG_MAX_BUFFERED - s->msg_len) {
        prov_raise(
            s->ctx, PROV_R_UNSUPPORTED,
            "%s signature with %s: the message exceeds %zu MiB, the most buffered for %s (the token hashes the message itself because the raw mechanism is not usable)",
            s->alg->name, sig_key_name(s->key), SIG_MAX_BUFFERED >> 20,
            sig_mech_name(s->mech));
        return 0;
    }
    if (s->msg_len + len > s->msg_cap) {
        cap = s->msg_cap ? s->msg_cap : 4096;
        while (cap < s->msg_len + len)
            cap *= 2;
        if (cap > SIG_MAX_BUFFERED)
            cap = SIG_MAX_BUFFERED;
        p = OPENSSL_clear_realloc(s->msg, s->msg_cap, cap);
        if (!p) {
            prov_raise(s->ctx, PROV_R_INTERNAL, "out of memory");
            return 0;
        }
        s->msg = p;
        s->msg_cap = cap;
    }
    if (len)
        memcpy(s->msg + s->msg_len, data, len);
    s->msg_len += len;
    return 1;
}

int sig_not_ready(sig_ctx *s, const char *what)
{
    prov_raise(s->ctx, PROV_R_BAD_INPUT,
               "%s signature: %s without the matching initialisation",
               s->alg->name, what);
    return 0;
}

int sig_digest_update(void *vctx, const unsigned char *data, size_t len)
{
    sig_ctx *s = vctx;

    if (!s->digest_op)
        return sig_not_ready(s, "update");
    if (!sig_prepare(s))
        return 0;
    if (!s->hashing)
        return sig_buffer(s, data, len);
    if (!EVP_DigestUpdate(s->mdctx, data, len)) {
        prov_raise(s->ctx, PROV_R_INTERNAL,
                   "%s signature: %s digest update failed", s->alg->name,
                   s->mdname);
        return 0;
    }
    return 1;
}

/* Finish the software digest into @h. */
static int sig_final_hash(sig_ctx *s, unsigned char *h, size_t *hlen)
{
    unsigned int n = 0;

    if (!EVP_DigestFinal_ex(s->mdctx, h, &n)) {
        prov_raise(s->ctx, PROV_R_INTERNAL, "%s signature: %s digest failed",
                   s->alg->name, s->mdname);
        return 0;
    }
    *hlen = n;
    return 1;
}

int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen,
                          size_t sigsize)
{
    sig_ctx *s = vctx;
    unsigned char h[EVP_MAX_MD_SIZE];
    size_t hlen = 0;
    int ok;

    if (!s->digest_op || s->op != EVP_PKEY_OP_SIGN)
        return sig_not_ready(s, "digest sign final");
    if (!sig) {
        *siglen = s->key->max_sig;
        return 1;
    }
    if (!sig_prepare(s))
        return 0;
    if (s->hashing)
        ok = sig_final_hash(s, h, &hlen)
             && sig_do_sign(s, h, hlen, sig, siglen, sigsize);
    else
        ok = sig_do_sign(s, s->msg, s->msg_len, sig, siglen, sigsize);
    OPENSSL_cleanse(h, sizeof(h));
    sig_finish(s);
    return ok;
}

/*
 * One-shot digest-sign (EVP_DigestSign): no dupctx, no buffering.  A
 * message already started with update is discarded, as OpenSSL does.
 */
int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen,
                    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *s = vctx;
    unsigned char h[EVP_MAX_MD_SIZE];
    size_t hlen = 0;
    int ok;

    if (!s->digest_op || s->op != EVP_PKEY_OP_SIGN)
        return sig_not_ready(s, "digest sign");
    if (!sig) {
        *siglen = s->key->max_sig;
        return 1;
    }
    sig_finish(s);
    if (!sig_ready(s))
        return 0;
    if (s->token_hashes)
        return s->alg->sign(s, tbs, tbslen, sig, siglen, sigsize);
    if (!s->md) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT, "%s signature: no digest set",
                   s->alg->name);
        return 0;
    }
    if (!sig_mdctx(s)) {
        prov_raise(s->ctx, PROV_R_INTERNAL, "out of memory");
        return 0;
    }
    if (!EVP_DigestInit_ex2(s->mdctx, s->md, NULL)
        || !EVP_DigestUpdate(s->mdctx, tbs, tbslen)) {
        prov_raise(s->ctx, PROV_R_INTERNAL, "%s signature: %s digest failed",
                   s->alg->name, s->mdname);
        return 0;
    }
    ok = sig_final_hash(s, h, &hlen)
         && sig_do_sign(s, h, hlen, sig, siglen, sigsize);
    OPENSSL_cleanse(h, sizeof(h));
    return ok;
}

int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
             const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *s = vctx;

    if (s->digest_op || s->op != EVP_PKEY_OP_SIGN)
        return sig_not_ready(s, "sign");
    if (!sig) {
        *siglen = s->key->max_sig;
        return 1;
    }
    if (!sig_ready(s))
        return 0;
    return sig_do_sign(s, tbs, tbslen, sig, siglen, sigsize);
}

/* ------------------------------------------------------------------ */
/* Software operations: verification, software keys                  */
/* ------------------------------------------------------------------ */

/*
 * The software context on key->pub for this operation (made at first
 * use), set to the algorithm's parameters.
 */
static int sig_sw_ctx(sig_ctx *s)
{
    const char *what = s->op == EVP_PKEY_OP_SIGN ? "signature" : "verification";
    OSSL_PARAM params[8];
    int rc;

    if (!s->swpctx) {
        s->swpctx = EVP_PKEY_CTX_new_from_pkey(prov_swctx(s->ctx), s->key->pub,
                                               prov_swprops(s->ctx));
        rc = !s->swpctx                  ? 0
             : s->op == EVP_PKEY_OP_SIGN ? EVP_PKEY_sign_init(s->swpctx)
                                         : EVP_PKEY_verify_init(s->swpctx);
        if (rc <= 0) {
            EVP_PKEY_CTX_free(s->swpctx);
            s->swpctx = NULL;
            prov_raise(s->ctx, PROV_R_INTERNAL,
                       "%s %s: cannot set up the software key", s->alg->name,
                       what);
            return 0;
        }
    }
    s->alg->sw_params(s, params);
    if (!EVP_PKEY_CTX_set_params(s->swpctx, params)) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT, "%s %s: parameters refused",
                   s->alg->name, what);
        return 0;
    }
    return 1;
}

int sig_sw_sign(sig_ctx *s, const unsigned char *tbs, size_t tbslen,
                unsigned char *sig, size_t *siglen, size_t sigsize)
{
    size_t out = sigsize;

    if (!sig_sw_ctx(s))
        return 0;
    if (EVP_PKEY_sign(s->swpctx, sig, &out, tbs, tbslen) <= 0) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s signature with a software key failed", s->alg->name);
        return 0;
    }
    *siglen = out;
    return 1;
}

int sig_sw_verify(sig_ctx *s, const unsigned char *sig, size_t siglen,
                  const unsigned char *tbs, size_t tbslen)
{
    if (!sig_sw_ctx(s))
        return 0;
    if (EVP_PKEY_verify(s->swpctx, sig, siglen, tbs, tbslen) == 1)
        return 1;
    /* A bad signature is a failure too: never leave the queue empty. */
    if (ERR_peek_last_error() == 0)
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s verification: the signature does not match",
                   s->alg->name);
    return 0;
}

int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
               const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *s = vctx;

    if (s->digest_op || s->op != EVP_PKEY_OP_VERIFY)
        return sig_not_ready(s, "verify");
    return sig_sw_verify(s, sig, siglen, tbs, tbslen);
}

int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    sig_ctx *s = vctx;
    unsigned char h[EVP_MAX_MD_SIZE];
    size_t hlen = 0;
    int ok;

    if (!s->digest_op || s->op != EVP_PKEY_OP_VERIFY)
        return sig_not_ready(s, "digest verify final");
    if (!sig_prepare(s))
        return 0;
    ok = sig_final_hash(s, h, &hlen) && sig_sw_verify(s, sig, siglen, h, hlen);
    sig_finish(s);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

int sig_bad_param(sig_ctx *s, const char *name)
{
    prov_raise(s->ctx, PROV_R_BAD_INPUT,
               "%s signature: parameter \"%s\" has the wrong type or size",
               s->alg->name, name);
    return 0;
}

int sig_get_md_params(sig_ctx *s, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p && !OSSL_PARAM_set_utf8_string(p, s->mdname))
        return sig_bad_param(s, OSSL_SIGNATURE_PARAM_DIGEST);
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE);
    if (p && !OSSL_PARAM_set_size_t(p, s->md_size))
        return sig_bad_param(s, OSSL_SIGNATURE_PARAM_DIGEST_SIZE);
    return 1;
}

int sig_set_md_params(sig_ctx *s, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *name = NULL, *props = NULL;

    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (!p)
        return 1;
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s signature: the digest must be a string", s->alg->name);
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES);
    if (p && !OSSL_PARAM_get_utf8_string_ptr(p, &props)) {
        prov_raise(s->ctx, PROV_R_BAD_INPUT,
                   "%s signature: the digest properties must be a string",
                   s->alg->name);
        return 0;
    }
    return sig_set_md(s, name, props);
}

int sig_set_algid(sig_ctx *s, OSSL_PARAM *p, const X509_ALGOR *alg)
{
    unsigned char *der = NULL;
    int len = i2d_X509_ALGOR(alg, &der);
    int ok;

    if (len <= 0) {
        prov_raise(s->ctx, PROV_R_INTERNAL,
                   "%s signature: cannot encode the AlgorithmIdentifier",
                   s->alg->name);
        return 0;
    }
    ok = OSSL_PARAM_set_octet_string(p, der, (size_t)len);
    OPENSSL_free(der);
    if (!ok)
        prov_raise(
            s->ctx, PROV_R_BAD_INPUT,
            "%s signature: no room for the AlgorithmIdentifier (%d bytes)",
            s->alg->name, len);
    return ok;
}

#if P11CA_MESSAGE_SIGN
/* ------------------------------------------------------------------ */
/* OpenSSL 3.4's signature algorithms with a fixed digest              */
/* ------------------------------------------------------------------ */

sig_ctx *sig_sigalg_newctx(void *provctx, const sig_alg *alg,
                           const char *mdname)
{
    sig_ctx *s = sig_newctx(provctx, alg);

    if (s && !sig_set_md(s, mdname, NULL)) {
        sig_freectx(s);
        return NULL;
    }
    return s;
}

int sig_sigalg_fixed_md(sig_ctx *s, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p =
        OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    const char *name = NULL;

    if (!p
        || (OSSL_PARAM_get_utf8_string_ptr(p, &name) && s->md
            && EVP_MD_is_a(s->md, name)))
        return 1;
    prov_raise(
        s->ctx, PROV_R_BAD_INPUT,
        "%s signature with %s: the algorithm fixes the digest; %s is not it",
        s->alg->name, s->mdname, name ? name : "that");
    return 0;
}

int sig_sigalg_sign(void *vctx, unsigned char *sig, size_t *siglen,
                    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *s = vctx;

    if (s->digest_op)
        return sig_digest_sign(vctx, sig, siglen, sigsize, tbs, tbslen);
    return sig_sign(vctx, sig, siglen, sigsize, tbs, tbslen);
}
#endif
