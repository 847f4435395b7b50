/* SPDX-License-Identifier: Apache-2.0 */
/* OSSL_STORE for the pkcs11: scheme: private keys (as provider keys that
 * stay on the token), public keys and certificates (as DER, decoded by
 * OpenSSL into ordinary software objects). */
#include "config.h"

#include <openssl/core_object.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prov.h"

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;

/*
 * What OSSL_STORE_find() asked for (OSSL_STORE_SEARCH): subject, issuer
 * and serial number as DER (CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER),
 * an alias (CKA_LABEL), a key fingerprint (the digest of the public key's
 * SubjectPublicKeyInfo).
 */
struct criteria {
    unsigned char *subject, *issuer, *serial;
    size_t subject_len, issuer_len, serial_len;
    char *alias;
    EVP_MD *fp_md;
    unsigned char *fp;
    size_t fp_len;
};

struct store_ctx {
    prov_ctx *ctx;
    p11_uri *uri;
    int expect; /* OSSL_STORE_INFO_* or 0 for anything */
    struct criteria crit;
    bool searched;
    p11_obj **objs; /* what the search found, delivered one by one */
    size_t n, next;
};

static void criteria_clear(struct criteria *c)
{
    OPENSSL_free(c->subject);
    OPENSSL_free(c->issuer);
    OPENSSL_free(c->serial);
    OPENSSL_free(c->alias);
    EVP_MD_free(c->fp_md);
    OPENSSL_free(c->fp);
    memset(c, 0, sizeof(*c));
}

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

/*
 * OSSL_STORE_supports_search() looks for these: by_name (SUBJECT),
 * by_issuer_serial (ISSUER and SERIAL), by_key_fingerprint (FINGERPRINT,
 * with DIGEST) and by_alias (ALIAS).
 */
static const OSSL_PARAM store_param_types[] = {
    OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
    OSSL_PARAM_octet_string(OSSL_STORE_PARAM_SUBJECT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_STORE_PARAM_ISSUER, NULL, 0),
    OSSL_PARAM_BN(OSSL_STORE_PARAM_SERIAL, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_STORE_PARAM_FINGERPRINT, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_ALIAS, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    return store_param_types;
}

/* A DER X.509 Name from @p into @der (refused when it does not parse). */
static int get_name(struct store_ctx *sc, const OSSL_PARAM *p, const char *what,
                    unsigned char **der, size_t *len)
{
    const unsigned char *in;
    X509_NAME *name;
    size_t n = 0;
    void *v = NULL;

    if (!OSSL_PARAM_get_octet_string(p, &v, 0, &n)) {
        prov_raise(sc->ctx, PROV_R_BAD_INPUT,
                   "store search: the %s must be a DER name", what);
        return 0;
    }
    in = v;
    name = d2i_X509_NAME(NULL, &in, (long)n);
    if (!name || in != (unsigned char *)v + n) {
        X509_NAME_free(name);
        OPENSSL_free(v);
        prov_raise(sc->ctx, PROV_R_BAD_INPUT,
                   "store search: the %s is not a DER X.509 name", what);
        return 0;
    }
    X509_NAME_free(name);
    OPENSSL_free(*der);
    *der = v;
    *len = n;
    return 1;
}

/* The serial number as CKA_SERIAL_NUMBER holds it: a DER INTEGER. */
static int get_serial(struct store_ctx *sc, const OSSL_PARAM *p)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    unsigned char *der = NULL;
    int len = 0;

    if (OSSL_PARAM_get_BN(p, &bn) && (ai = BN_to_ASN1_INTEGER(bn, NULL)))
        len = i2d_ASN1_INTEGER(ai, &der);
    BN_free(bn);
    ASN1_INTEGER_free(ai);
    if (len <= 0) {
        prov_raise(sc->ctx, PROV_R_BAD_INPUT,
                   "store search: invalid serial number");
        return 0;
    }
    OPENSSL_free(sc->crit.serial);
    sc->crit.serial = der;
    sc->crit.serial_len = (size_t)len;
    return 1;
}

/* by_key_fingerprint: the digest (fetched in software) and the bytes. */
static int get_fingerprint(struct store_ctx *sc, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p =
        OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_FINGERPRINT);
    const OSSL_PARAM *d =
        OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_DIGEST);
    const char *mdname = NULL;
    struct criteria *c = &sc->crit;
    void *v = NULL;
    size_t n = 0;
    EVP_MD *md;

    if (!d || !OSSL_PARAM_get_utf8_string_ptr(d, &mdname) || !*mdname) {
        prov_raise(
            sc->ctx, PROV_R_BAD_INPUT,
            "store search: a key fingerprint needs its digest (storeutl -fingerprint HEX -sha256)");
        return 0;
    }
    md = EVP_MD_fetch(prov_swctx(sc->ctx), mdname, prov_swprops(sc->ctx));
    if (!md) {
        prov_raise(sc->ctx, PROV_R_UNSUPPORTED,
                   "store search: unknown fingerprint digest %s", mdname);
        return 0;
    }
    if (!OSSL_PARAM_get_octet_string(p, &v, 0, &n)
        || n != (size_t)EVP_MD_get_size(md)) {
        prov_raise(
            sc->ctx, PROV_R_BAD_INPUT,
            "store search: a %s fingerprint has %d bytes, %zu were given",
            mdname, EVP_MD_get_size(md), n);
        EVP_MD_free(md);
        OPENSSL_free(v);
        return 0;
    }
    EVP_MD_free(c->fp_md);
    OPENSSL_free(c->fp);
    c->fp_md = md;
    c->fp = v;
    c->fp_len = n;
    return 1;
}

static int get_alias(struct store_ctx *sc, const OSSL_PARAM *p)
{
    char *alias = NULL;

    if (!OSSL_PARAM_get_utf8_string(p, &alias, 0)
        || strlen(alias) > P11_MAX_LABEL_LEN) {
        OPENSSL_free(alias);
        prov_raise(
            sc->ctx, PROV_R_BAD_INPUT,
            "store search: the alias must be a label of at most %d bytes",
            P11_MAX_LABEL_LEN);
        return 0;
    }
    OPENSSL_free(sc->crit.alias);
    sc->crit.alias = alias;
    return 1;
}

static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    struct store_ctx *sc = loaderctx;
    const OSSL_PARAM *p;

    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p && !OSSL_PARAM_get_int(p, &sc->expect))
        return 0;
    if (sc->searched
        && (OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SUBJECT)
            || OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ISSUER)
            || OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SERIAL)
            || OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_FINGERPRINT)
            || OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ALIAS))) {
        prov_raise(sc->ctx, PROV_R_BAD_INPUT,
                   "store search: criteria come before the first load");
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SUBJECT);
    if (p
        && !get_name(sc, p, "subject", &sc->crit.subject,
                     &sc->crit.subject_len))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ISSUER);
    if (p && !get_name(sc, p, "issuer", &sc->crit.issuer, &sc->crit.issuer_len))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SERIAL);
    if (p && !get_serial(sc, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ALIAS);
    if (p && !get_alias(sc, p))
        return 0;
    if (OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_FINGERPRINT)
        && !get_fingerprint(sc, params))
        return 0;
    return 1;
}

/* The PIN prompt of the p11 layer, answered by the application's callback. */
struct pw_bridge {
    OSSL_PASSPHRASE_CALLBACK *cb;
    void *arg;
    prov_ctx *ctx;
};

/*
 * Whether the application's callback failed for want of any way to ask:
 * OSSL_STORE_open() without a UI method, where libcrypto's callback says
 * "No password method specified" (ERR_R_PASSED_INVALID_ARGUMENT).
 */
static bool no_ui_method(void)
{
    unsigned long e = ERR_peek_last_error();

    return ERR_GET_LIB(e) == ERR_LIB_CRYPTO
           && ERR_GET_REASON(e) == ERR_R_PASSED_INVALID_ARGUMENT;
}

/*
 * The PIN from the terminal, as OpenSSL's own UI asks for a passphrase
 * ("Enter pass phrase for <info>:", not echoed).  Returns its length, or -1.
 */
static int tty_prompt(const char *info, char *pin, size_t max)
{
    char buf[P11_MAX_PIN_LEN + 1];
    int most = max < P11_MAX_PIN_LEN ? (int)max : P11_MAX_PIN_LEN, n = -1;
    UI *ui = UI_new_method(UI_OpenSSL());
    char *prompt = ui ? UI_construct_prompt(ui, "pass phrase", info) : NULL;

    if (prompt && UI_add_input_string(ui, prompt, 0, buf, 1, most) >= 0
        && UI_process(ui) == 0) {
        n = (int)strnlen(buf, (size_t)most);
        memcpy(pin, buf, (size_t)n);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_free(prompt);
    UI_free(ui);
    return n;
}

static int store_prompt(const char *what, bool ctx_specific, char *pin,
                        size_t max, void *arg)
{
    struct pw_bridge *b = arg;
    OSSL_PARAM params[2];
    char info[160];
    size_t len = 0;

    /* OpenSSL's UI shows "Enter pass phrase for <info>:". */
    snprintf(info, sizeof(info), "%s%s", ctx_specific ? "signature on " : "",
             what);
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0);
    params[1] = OSSL_PARAM_construct_end();
    ERR_set_mark();
    if (b->cb && b->cb(pin, max, &len, params, b->arg) && len <= max) {
        ERR_pop_to_mark();
        return (int)len;
    }
    /* The application's answer (a cancelled prompt): its errors stay. */
    if (b->cb && !no_ui_method()) {
        ERR_clear_last_mark();
        return -1;
    }
    /* No way to ask was given: the terminal, as OpenSSL's UI would. */
    ERR_pop_to_mark();
    if (!isatty(STDIN_FILENO)) {
        prov_raise(
            b->ctx, PROV_R_PIN,
            "%s: the application gave no way to ask for the PIN (no UI method) and standard input is not a terminal",
            what);
        return -1;
    }
    if (!b->ctx->pin_prompt) {
        prov_raise(b->ctx, PROV_R_PIN,
                   "%s: not asking on the terminal (p11ca-pin-prompt = no)",
                   what);
        return -1;
    }
    return tty_prompt(info, pin, max);
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

/* Drop the objects of @objs for which @keep is false; *@n shrinks. */
static void filter_objs(struct store_ctx *sc, p11_obj **objs, size_t *n,
                        bool (*keep)(struct store_ctx *, p11_obj *))
{
    size_t o = 0;

    for (size_t i = 0; i < *n; i++) {
        if (keep(sc, objs[i]))
            objs[o++] = objs[i];
        else
            p11_obj_unref(objs[i]);
    }
    *n = o;
}

/* Whether name attribute @type of @obj is the DER name @want, compared as
 * X.509 names (canonical form: string types and case of tools differ). */
static bool name_is(p11_obj *obj, CK_ATTRIBUTE_TYPE type,
                    const unsigned char *want, size_t want_len)
{
    const unsigned char *p = want;
    X509_NAME *a = NULL, *b = NULL;
    unsigned char *v = NULL;
    size_t len = 0;
    bool same = false;

    if (!want)
        return true;
    if (p11_obj_get_attr(obj, type, &v, &len) == CKR_OK) {
        a = d2i_X509_NAME(NULL, &p, (long)want_len);
        p = v;
        b = d2i_X509_NAME(NULL, &p, (long)len);
        same = a && b && X509_NAME_cmp(a, b) == 0;
    }
    X509_NAME_free(a);
    X509_NAME_free(b);
    free(v);
    p11_error_clear();
    return same;
}

static bool names_match(struct store_ctx *sc, p11_obj *obj)
{
    return name_is(obj, CKA_SUBJECT, sc->crit.subject, sc->crit.subject_len)
           && name_is(obj, CKA_ISSUER, sc->crit.issuer, sc->crit.issuer_len);
}

/* The DER SubjectPublicKeyInfo of a certificate or key object. */
static int obj_spki(struct store_ctx *sc, p11_obj *obj, unsigned char **der)
{
    unsigned char *v = NULL;
    const unsigned char *p;
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    size_t len = 0;
    int n = -1;

    if (p11_obj_class(obj) == CKO_CERTIFICATE) {
        if (p11_obj_get_attr(obj, CKA_VALUE, &v, &len) == CKR_OK) {
            p = v;
            x = d2i_X509(NULL, &p, (long)len);
        }
        if (x)
            n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), der);
    } else if (p11_obj_public_key(obj, prov_swctx(sc->ctx),
                                  prov_swprops(sc->ctx), &pk)
               == CKR_OK) {
        n = i2d_PUBKEY(pk, der);
    }
    X509_free(x);
    EVP_PKEY_free(pk);
    free(v);
    return n;
}

/* by_key_fingerprint: the digest of the object's public key (SPKI). */
static bool fingerprint_matches(struct store_ctx *sc, p11_obj *obj)
{
    unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
    unsigned int mdlen = 0;
    bool same = false;
    int n;

    prov_set_mark(sc->ctx);
    n = obj_spki(sc, obj, &der);
    if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, sc->crit.fp_md, NULL))
        same = mdlen == sc->crit.fp_len
               && CRYPTO_memcmp(md, sc->crit.fp, mdlen) == 0;
    OPENSSL_free(der);
    /* An object without a readable public key is no match, not an error. */
    prov_pop_to_mark(sc->ctx);
    p11_error_clear();
    return same;
}

/* The criteria as search template attributes (@names: with the names). */
static size_t criteria_template(const struct criteria *c, bool names,
                                CK_ATTRIBUTE *t)
{
    size_t n = 0;

    if (names && c->subject)
        t[n++] = (CK_ATTRIBUTE){CKA_SUBJECT, c->subject, c->subject_len};
    if (names && c->issuer)
        t[n++] = (CK_ATTRIBUTE){CKA_ISSUER, c->issuer, c->issuer_len};
    if (c->serial)
        t[n++] = (CK_ATTRIBUTE){CKA_SERIAL_NUMBER, c->serial, c->serial_len};
    if (c->alias)
        t[n++] = (CK_ATTRIBUTE){CKA_LABEL, c->alias, strlen(c->alias)};
    return n;
}

static bool has_criteria(const struct criteria *c)
{
    return c->subject || c->issuer || c->serial || c->alias || c->fp;
}

/* The criteria in words, for the message when nothing matches. */
static void criteria_describe(const struct criteria *c, char *buf, size_t n)
{
    size_t o = 0;

    buf[0] = '\0';
    if (c->subject)
        o += (size_t)snprintf(buf + o, n - o, "%s", " with that subject");
    if (c->issuer && o < n)
        o += (size_t)snprintf(buf + o, n - o, "%s",
                              " with that issuer and serial number");
    if (c->alias && o < n)
        o += (size_t)snprintf(buf + o, n - o, " with alias \"%s\"", c->alias);
    if (c->fp && o < n)
        snprintf(buf + o, n - o, " with that %s key fingerprint",
                 EVP_MD_get0_name(c->fp_md));
}

/*
 * The classes to look for: the URI's type=, else what the application
 * expects, else everything; an issuer and serial number are certificates'.
 * Returns how many went into @classes (private keys first).
 */
static size_t search_classes(struct store_ctx *sc, CK_OBJECT_CLASS classes[3])
{
    CK_OBJECT_CLASS cls = p11_uri_get_class(sc->uri);
    bool priv, pub, cert, certs_only = sc->crit.issuer || sc->crit.serial;
    size_t n = 0;

    if (cls != (CK_OBJECT_CLASS)-1) {
        priv = cls == CKO_PRIVATE_KEY;
        pub = cls == CKO_PUBLIC_KEY;
        cert = cls == CKO_CERTIFICATE;
    } else {
        priv = sc->expect == 0 || sc->expect == OSSL_STORE_INFO_PKEY;
        pub = sc->expect == 0 || sc->expect == OSSL_STORE_INFO_PUBKEY;
        cert = sc->expect == 0 || sc->expect == OSSL_STORE_INFO_CERT;
    }
    if (priv && !certs_only)
        classes[n++] = CKO_PRIVATE_KEY;
    if (pub && !certs_only)
        classes[n++] = CKO_PUBLIC_KEY;
    if (cert)
        classes[n++] = CKO_CERTIFICATE;
    return n;
}

/*
 * The token search, with the criteria in its template.  Names are
 * compared as DER there first; when that finds nothing, again without
 * them, compared as X.509 names (the same name may be encoded in other
 * string types).  A fingerprint is compared here.
 */
static CK_RV search_tokens(struct store_ctx *sc, p11_find *f, p11_obj ***objs,
                           size_t *n)
{
    CK_ATTRIBUTE match[P11_FIND_MAX_MATCH];
    const char *label = p11_uri_get0_label(sc->uri);
    CK_RV rv;

    *objs = NULL;
    *n = 0;
    /* object= and an alias that differ: nothing can match. */
    if (sc->crit.alias && label && strcmp(label, sc->crit.alias) != 0)
        return CKR_OK;
    f->match = match;
    f->n_match = criteria_template(&sc->crit, true, match);
    rv = p11_obj_search(prov_p11(sc->ctx), sc->uri, f, objs, n);
    if (rv == CKR_OK && *n == 0 && (sc->crit.subject || sc->crit.issuer)) {
        free(*objs);
        f->n_match = criteria_template(&sc->crit, false, match);
        rv = p11_obj_search(prov_p11(sc->ctx), sc->uri, f, objs, n);
        if (rv == CKR_OK)
            filter_objs(sc, *objs, n, names_match);
    }
    if (rv == CKR_OK && sc->crit.fp)
        filter_objs(sc, *objs, n, fingerprint_matches);
    f->match = NULL;
    return rv;
}

/* Nothing matched: say what was looked for. */
static int raise_not_found(struct store_ctx *sc, const CK_OBJECT_CLASS *cls,
                           size_t ncls)
{
    char *d = p11_uri_format(sc->uri);

    prov_raise(sc->ctx, PROV_R_NOT_FOUND, "no %s matches %s",
               ncls != 1                   ? "object"
               : cls[0] == CKO_PRIVATE_KEY ? "private key"
               : cls[0] == CKO_PUBLIC_KEY  ? "public key"
                                           : "certificate",
               d ? d : "the URI");
    free(d);
    return 0;
}

/*
 * What to look for: see search_classes(), on every initialised token the
 * URI matches, with the search criteria of OSSL_STORE_find().  Private
 * keys come first: an application that wants a private key takes the
 * first key it gets.  Logins: see the PIN rules in p11ca-provider(7).
 */
static int search(struct store_ctx *sc, struct pw_bridge *pw)
{
    CK_OBJECT_CLASS classes[3];
    p11_find f = {.classes = classes};
    p11_obj **objs = NULL;
    bool priv, one_key = sc->expect == OSSL_STORE_INFO_PKEY;
    p11_auth auth;
    size_t n = 0;
    CK_RV rv;

    sc->searched = true;
    f.n_classes = search_classes(sc, classes);
    if (f.n_classes == 0) {
        /* type=data or type=secret-key, or a certificate's criteria on
         * keys: nothing this store delivers. */
        prov_raise(sc->ctx, PROV_R_NOT_FOUND, "no object of that type%s",
                   sc->crit.issuer || sc->crit.serial
                       ? " has an issuer and serial number (certificates have)"
                       : "");
        return 0;
    }
    priv = classes[0] == CKO_PRIVATE_KEY;
    if ((priv && sc->ctx->login != PROV_LOGIN_NEVER)
        || sc->ctx->login == PROV_LOGIN_ALWAYS)
        f.flags |= P11_FIND_LOGIN;
    /* Something definite is loaded: wait for a token that seems away. */
    if (sc->expect != 0 || p11_uri_get_class(sc->uri) != (CK_OBJECT_CLASS)-1)
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
    rv = search_tokens(sc, &f, &objs, &n);
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
    if (sc->n > 0)
        return 1;
    /* A search (OSSL_STORE_find) that finds nothing is an answer: the end,
     * as in OpenSSL's file store; a URI that finds nothing is an error. */
    if (has_criteria(&sc->crit)) {
        char crit[256];

        criteria_describe(&sc->crit, crit, sizeof(crit));
        LOG_DBG(PROV, "store search: nothing%s", crit);
        return 1;
    }
    return raise_not_found(sc, classes, f.n_classes);
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
                         EVP_PKEY_is_a(pk, "RSA")     ? "RSA"
                         : EVP_PKEY_is_a(pk, "EC")    ? "EC"
                         : EVP_PKEY_is_a(pk, "ED448") ? "ED448"
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
    struct pw_bridge pw = {pw_cb, pw_cbarg, sc->ctx};
    p11_obj *obj;

    if (!sc->searched && !search(sc, &pw))
        return 0;
    /* A search that found nothing: no object, no error, and the end. */
    if (sc->next >= sc->n)
        return 1;
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
    criteria_clear(&sc->crit);
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

/* Keeps the first private key a load delivers (a new reference). */
static int keep_key(const OSSL_PARAM params[], void *arg)
{
    const OSSL_PARAM *p =
        OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_REFERENCE);
    prov_key **out = arg, *key = NULL;

    if (*out || !p || p->data_size != sizeof(key))
        return 1;
    memcpy(&key, p->data, sizeof(key));
    *out = prov_key_ref(key);
    return 1;
}

prov_key *prov_store_fetch_key(prov_ctx *ctx, const char *uri,
                               OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    struct store_ctx *sc = store_open(ctx, uri);
    prov_key *key = NULL;

    if (!sc)
        return NULL;
    /* One key is wanted: several that match are refused, as for -key. */
    sc->expect = OSSL_STORE_INFO_PKEY;
    while (!key && !store_eof(sc))
        if (!store_load(sc, keep_key, &key, pw_cb, pw_cbarg))
            break;
    if (!key && sc->searched && sc->n > 0) {
        char *d = p11_uri_format(sc->uri);

        prov_raise(ctx, PROV_R_NOT_FOUND, "no private key matches %s",
                   d ? d : "the URI");
        free(d);
    }
    store_close(sc);
    return key;
}
