/* SPDX-License-Identifier: Apache-2.0 */
/* The CA key: loaded through OSSL_STORE in the CA's own library context,
 * checked against the token and the hash recorded at init, used to sign. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#include "ca/internal.h"
#include "common/log.h"
#include "p11/p11.h"

struct ca_key {
    _Atomic int refs; /* handles of ca_open_shared share the key */
    ca_evp evp;
    EVP_PKEY *pkey;
    char sha256[65];
    p11_ctx *p11;
    UI_METHOD *ui;
    char *module;
    char *pin_source;
    char *pin;   /* secure heap, P11_MAX_PIN_LEN + 1 */
    int pin_len; /* -1: not asked yet */
    char pin_err[256];
    long token_wait_ms; /* p11_config.token_wait_ms */
    /* What ca_key_generate made, until ca_key_keep_generated(). */
    p11_obj *gen_priv, *gen_pub;
    char *gen_file;
};

static bool is_uri(const char *location);
static int pin_get(ca_key *k);
static int p11_prompt(const char *what, bool ctx_specific, char *pin,
                      size_t max, void *arg);
static int ui_read(UI *ui, UI_STRING *uis);
static int key_p11(ca_key *k, p11_ctx **out);
static int token_check(ca_key *k, const char *location);
static int store_load(ca_key *k, const char *location);
static int gen_token(ca_key *k, const char *where, const p11_key_spec *spec,
                     char **location);
static int gen_file(ca_key *k, const char *where, const p11_key_spec *spec,
                    char **location);
static int sign_init(ca_key *k, const char *digest, EVP_MD_CTX **out);

static bool is_uri(const char *location)
{
    return strncmp(location, "pkcs11:", 7) == 0;
}

int ca_key_new(const char *module, const char *pin_source, ca_key **out)
{
    ca_key *k = calloc(1, sizeof(*k));
    int rc = P11CA_OK;

    *out = NULL;
    if (!k)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    k->refs = 1;
    k->pin_len = -1;
    k->module = module ? strdup(module) : NULL;
    k->pin_source = pin_source ? strdup(pin_source) : NULL;
    k->pin = OPENSSL_secure_zalloc(P11_MAX_PIN_LEN + 1);
    k->ui = UI_create_method("p11ca CA key");
    if ((module && !k->module) || (pin_source && !k->pin_source) || !k->pin
        || !k->ui || UI_method_set_reader(k->ui, ui_read) != 0) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        ca_key_free(k);
        return rc;
    }
    *out = k;
    return rc;
}

ca_key *ca_key_up_ref(ca_key *k)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void ca_key_free(ca_key *k)
{
    if (!k || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) > 1)
        return;
    EVP_PKEY_free(k->pkey);
    p11_obj_unref(k->gen_priv);
    p11_obj_unref(k->gen_pub);
    free(k->gen_file);
    ca_evp_clear(&k->evp);
    p11_ctx_free(k->p11);
    UI_destroy_method(k->ui);
    OPENSSL_secure_clear_free(k->pin, P11_MAX_PIN_LEN + 1);
    free(k->module);
    free(k->pin_source);
    free(k);
}

void ca_key_set_token_wait(ca_key *k, long ms)
{
    k->token_wait_ms = ms;
}

EVP_PKEY *ca_key_pkey(ca_key *k)
{
    return k->pkey;
}

OSSL_LIB_CTX *ca_key_libctx(ca_key *k)
{
    return k->evp.libctx;
}

const char *ca_key_sha256(ca_key *k)
{
    return k->sha256;
}

/*
 * Append "KEY = VALUE" to @b for an openssl.cnf section: the value in
 * double quotes, \\ and " escaped (nothing is expanded inside quotes).
 * False for what a config line cannot hold (a line break).
 */
static bool conf_line(BIO *b, const char *key, const char *value)
{
    if (strpbrk(value, "\r\n") || BIO_printf(b, "%s = \"", key) <= 0)
        return false;
    for (const char *p = value; *p; p++)
        if ((*p == '\\' || *p == '"') ? BIO_printf(b, "\\%c", *p) <= 0
                                      : BIO_write(b, p, 1) != 1)
            return false;
    return BIO_puts(b, "\"\n") > 0;
}

/* The provider section for @pc, as openssl.cnf text in @b. */
static int p11ca_conf_text(BIO *b, const ca_prov_conf *pc)
{
    char wait[32];
    long ms = pc->token_wait_ms == P11_TOKEN_WAIT_NONE ? 0 : pc->token_wait_ms;

    if (BIO_puts(b, "p11ca_ca = p11ca_init\n[p11ca_init]\n"
                    "providers = p11ca_providers\n[p11ca_providers]\n"
                    "p11ca = p11ca_sect\n[p11ca_sect]\nactivate = 1\n")
        <= 0)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (pc->module && !conf_line(b, "p11ca-module-path", pc->module))
        return p11ca_err_set(
            P11CA_E_INPUT,
            "the PKCS#11 module's file name holds a line break: %s",
            pc->module);
    snprintf(wait, sizeof(wait), "%ld.%03ld", ms / 1000, ms % 1000);
    if ((pc->token_wait_ms && !conf_line(b, "p11ca-token-wait", wait))
        || (pc->cache_pin && !conf_line(b, "p11ca-cache-pin", "yes"))
        || (pc->single_session && !conf_line(b, "p11ca-single-session", "yes")))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

/* Load p11ca into @e's library context, configured with @pc. */
static int load_p11ca(ca_evp *e, const ca_prov_conf *pc)
{
    BIO *b = BIO_new(BIO_s_mem());
    CONF *conf = NULL;
    long line = 0;
    int rc;

    if (!b)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = p11ca_conf_text(b, pc);
    if (rc != P11CA_OK)
        goto out;
    conf = NCONF_new_ex(e->libctx, NULL);
    if (!conf || NCONF_load_bio(conf, b, &line) <= 0
        || CONF_modules_load(conf, "p11ca_ca", CONF_MFLAGS_NO_DSO) <= 0
        || !(e->p11ca = OSSL_PROVIDER_load(e->libctx, "p11ca")))
        rc = ca_ossl_err(
            P11CA_E_TOKEN,
            "cannot load the p11ca OpenSSL provider (installed in OpenSSL's modules directory, or set OPENSSL_MODULES)");
out:
    NCONF_free(conf);
    BIO_free(b);
    return rc;
}

int ca_evp_setup(ca_evp *e, const ca_prov_conf *token)
{
    if (!e->libctx && !(e->libctx = OSSL_LIB_CTX_new()))
        return ca_ossl_err(P11CA_E_NOMEM, "cannot make a library context");
    if (!e->deflt && !(e->deflt = OSSL_PROVIDER_load(e->libctx, "default")))
        return ca_ossl_err(P11CA_E_INTERNAL,
                           "cannot load OpenSSL's default provider");
    if (!token || e->p11ca)
        return P11CA_OK;
    return load_p11ca(e, token);
}

void ca_evp_clear(ca_evp *e)
{
    OSSL_PROVIDER_unload(e->p11ca);
    OSSL_PROVIDER_unload(e->deflt);
    OSSL_LIB_CTX_free(e->libctx);
    *e = (ca_evp){0};
}

EVP_PKEY *ca_store_load_pkey(OSSL_LIB_CTX *libctx, const char *location,
                             const UI_METHOD *ui, void *ui_data)
{
    OSSL_STORE_CTX *sc;
    OSSL_STORE_INFO *info;
    EVP_PKEY *pk = NULL;

    sc = OSSL_STORE_open_ex(location, libctx, NULL, ui, ui_data, NULL, NULL,
                            NULL);
    if (sc && OSSL_STORE_expect(sc, OSSL_STORE_INFO_PKEY) != 1) {
        OSSL_STORE_close(sc);
        sc = NULL;
    }
    while (sc && !pk && !OSSL_STORE_eof(sc)) {
        info = OSSL_STORE_load(sc);
        if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
        if (!info && OSSL_STORE_error(sc))
            break;
    }
    OSSL_STORE_close(sc);
    if (pk)
        ERR_clear_error();
    return pk;
}

/* The PIN, once: from the pin source, else from the terminal. */
static int pin_get(ca_key *k)
{
    int n = -1;

    if (k->pin_len >= 0)
        return 0;
    if (k->pin_source) {
        n = p11_pin_read_file(k->pin_source, k->pin, P11_MAX_PIN_LEN);
        if (n < 0)
            snprintf(k->pin_err, sizeof(k->pin_err), "%s", p11_error_message());
    } else if (isatty(STDIN_FILENO)) {
        if (UI_UTIL_read_pw_string(k->pin, P11_MAX_PIN_LEN + 1,
                                   "PIN for the CA key: ", 0)
            == 0)
            n = (int)strlen(k->pin);
        else
            snprintf(k->pin_err, sizeof(k->pin_err), "no PIN was entered");
    } else {
        snprintf(
            k->pin_err, sizeof(k->pin_err),
            "the CA key needs a PIN: set pin_source in ca.cnf or give --pin-source (no terminal to ask on)");
    }
    if (n < 0)
        return -1;
    k->pin_len = n;
    return 0;
}

static int p11_prompt(const char *what, bool ctx_specific, char *pin,
                      size_t max, void *arg)
{
    ca_key *k = arg;

    (void)what;
    (void)ctx_specific;
    if (pin_get(k) != 0 || (size_t)k->pin_len > max)
        return -1;
    memcpy(pin, k->pin, (size_t)k->pin_len);
    return k->pin_len;
}

/* The passphrase callback of OSSL_STORE: the provider asks it for the PIN
 * (or the file loader for a key file's passphrase). */
static int ui_read(UI *ui, UI_STRING *uis)
{
    ca_key *k = UI_get0_user_data(ui);

    switch (UI_get_string_type(uis)) {
    case UIT_PROMPT:
    case UIT_VERIFY:
        if (pin_get(k) != 0)
            return 0;
        return UI_set_result_ex(ui, uis, k->pin, k->pin_len) == 0 ? 1 : 0;
    default:
        return 1;
    }
}

static int key_p11(ca_key *k, p11_ctx **out)
{
    p11_config cfg = {0};

    if (!k->p11) {
        cfg.module_path = k->module;
        /* SoftHSM2 hides its token for a moment whenever another process
         * logs in: concurrent issuers wait for it instead of failing. */
        cfg.token_wait_ms = k->token_wait_ms;
        cfg.cache_pin = true; /* k->pin holds it for the process anyway */
        k->p11 = p11_ctx_new(&cfg);
        if (!k->p11)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        p11_ctx_set_prompt(k->p11, p11_prompt, k);
    }
    *out = k->p11;
    return P11CA_OK;
}

/* A token key must never have been outside the token. */
static int token_check(ca_key *k, const char *location)
{
    p11_uri *uri = NULL;
    p11_obj *obj = NULL;
    p11_ctx *ctx = NULL;
    int rc;
    CK_RV rv;

    rc = key_p11(k, &ctx);
    if (rc != P11CA_OK)
        return rc;
    rv = p11_uri_parse(location, &uri);
    if (rv == CKR_OK)
        rv = p11_obj_find_one(ctx, uri, CKO_PRIVATE_KEY, true, &obj);
    if (rv != CKR_OK) {
        rc = p11ca_err_set(
            rv == P11_RV_URI_INVALID ? P11CA_E_INPUT : P11CA_E_TOKEN,
            "cannot find the CA key: %s%s%s", p11_error_message(),
            k->pin_err[0] ? ": " : "", k->pin_err);
    } else if (!p11_obj_get_bool(obj, CKA_ALWAYS_SENSITIVE, false)) {
        rc = p11ca_err_set(
            P11CA_E_CAKEY,
            "the CA's %s on %s is not CKA_ALWAYS_SENSITIVE: it was once outside the token (imported or made readable); refusing to sign with it",
            p11_obj_describe(obj), p11_token_describe(p11_obj_token(obj)));
    } else if (!p11_obj_get_bool(obj, CKA_NEVER_EXTRACTABLE, false)) {
        rc = p11ca_err_set(
            P11CA_E_CAKEY,
            "the CA's %s on %s is not CKA_NEVER_EXTRACTABLE: it can be (or could have been) exported from the token; refusing to sign with it",
            p11_obj_describe(obj), p11_token_describe(p11_obj_token(obj)));
    }
    p11_obj_unref(obj);
    p11_uri_free(uri);
    return rc;
}

/* @location for a message: a URI without its PIN attributes (malloc'd;
 * NULL when it does not parse or without memory). */
static char *loc_shown(const char *location)
{
    char *shown = NULL;

    if (ca_location_shown(location, &shown, NULL) != P11CA_OK)
        return NULL;
    return shown;
}

static int store_load(ca_key *k, const char *location)
{
    char *shown;
    int rc = P11CA_OK;

    k->pkey = ca_store_load_pkey(k->evp.libctx, location, k->ui, k);
    if (!k->pkey) {
        shown = loc_shown(location);
        rc = ca_ossl_err(is_uri(location) ? P11CA_E_TOKEN : P11CA_E_INPUT,
                         "cannot load the CA key %s%s%s",
                         shown ? shown : "(the location given)",
                         k->pin_err[0] ? ": " : "", k->pin_err);
        free(shown);
    }
    return rc;
}

int ca_pubkey_sha256(EVP_PKEY *pk, char hex[65])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char *der = NULL, md[32];
    int n = i2d_PUBKEY(pk, &der);

    if (n <= 0 || !EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
        OPENSSL_free(der);
        return ca_ossl_err(P11CA_E_INTERNAL, "cannot hash a public key");
    }
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = hx[md[i] >> 4];
        hex[2 * i + 1] = hx[md[i] & 15];
    }
    hex[64] = '\0';
    OPENSSL_free(der);
    return P11CA_OK;
}

/*
 * @k's library context, with the p11ca provider when @location is a
 * pkcs11: URI.  The provider is configured once, for the CA key (its
 * module, token_wait, and the PIN kept for a login after a card reset):
 * another key loaded later in the same context (the service's TLS key)
 * gets the same provider, loaded now if the CA key is a file.
 */
static int key_evp_setup(ca_key *k, const char *location)
{
    ca_prov_conf pc = {.module = k->module,
                       .token_wait_ms = k->token_wait_ms,
                       .cache_pin = true};

    return ca_evp_setup(&k->evp, is_uri(location) ? &pc : NULL);
}

int ca_key_load(ca_key *k, const char *location, const char *want_sha256)
{
    char *shown;
    int rc;

    rc = key_evp_setup(k, location);
    if (rc == P11CA_OK && is_uri(location))
        rc = token_check(k, location);
    if (rc == P11CA_OK && !k->pkey)
        rc = store_load(k, location);
    if (rc == P11CA_OK)
        rc = ca_pubkey_sha256(k->pkey, k->sha256);
    shown = loc_shown(location);
    if (rc == P11CA_OK && want_sha256 && strcmp(want_sha256, k->sha256) != 0)
        rc = p11ca_err_set(
            P11CA_E_CAKEY,
            "the CA key %s is not the key this CA was created with: its public key has SHA-256 %s, ca.cnf records key_sha256 = %s; refusing to sign",
            shown ? shown : "(the location given)", k->sha256, want_sha256);
    if (rc == P11CA_OK)
        LOG_DBG(CA, "CA key %s loaded, SPKI SHA-256 %s",
                shown ? shown : "(the location given)", k->sha256);
    free(shown);
    return rc;
}

static int gen_token(ca_key *k, const char *where, const p11_key_spec *spec,
                     char **location)
{
    p11_uri *uri = NULL;
    p11_token *tok = NULL;
    p11_obj *priv = NULL;
    p11_ctx *ctx = NULL;
    const unsigned char *id;
    size_t id_len = 0;
    p11_auth auth;
    int rc;
    CK_RV rv;

    rc = key_p11(k, &ctx);
    if (rc != P11CA_OK)
        return rc;
    rv = p11_uri_parse(where, &uri);
    if (rv != CKR_OK) {
        rc = p11ca_err_set(P11CA_E_INPUT, "--key-uri: %s", p11_error_message());
        goto out;
    }
    if (!p11_uri_get0_label(uri)) {
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "--key-uri must name the new key with object=LABEL");
        goto out;
    }
    id = p11_uri_get0_id(uri, &id_len);
    p11_auth_from_uri(&auth, uri);
    rv = p11_token_find_one(ctx, uri, &tok);
    if (rv == CKR_OK)
        rv = p11_keygen(tok, &auth, spec, p11_uri_get0_label(uri), id, id_len,
                        false, &k->gen_pub, &priv);
    if (rv != CKR_OK) {
        rc = p11ca_err_set(rv == P11_RV_EXISTS ? P11CA_E_EXISTS : P11CA_E_TOKEN,
                           "CA key generation: %s%s%s", p11_error_message(),
                           k->pin_err[0] ? ": " : "", k->pin_err);
        goto out;
    }
    k->gen_priv = p11_obj_ref(priv);
    *location = p11_obj_uri(priv);
    if (!*location)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
out:
    p11_obj_unref(priv);
    p11_uri_free(uri);
    return rc;
}

/* A software key in a new file (mode 0600). */
static int gen_file(ca_key *k, const char *where, const p11_key_spec *spec,
                    char **location)
{
    EVP_PKEY *pk = NULL;
    BIO *mem = BIO_new(BIO_s_mem());
    char *abs = NULL, cwd[4096];
    int rc = ca_evp_setup(&k->evp, NULL);

    if (rc != P11CA_OK)
        goto out;
    if (spec->kind == P11_KEY_RSA)
        pk = EVP_PKEY_Q_keygen(k->evp.libctx, NULL, "RSA", (size_t)spec->bits);
    else if (spec->kind == P11_KEY_EC)
        pk = EVP_PKEY_Q_keygen(k->evp.libctx, NULL, "EC",
                               OBJ_nid2sn(spec->curve_nid));
    else
        pk = EVP_PKEY_Q_keygen(k->evp.libctx, NULL, "ED25519");
    if (!pk || !mem
        || !PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL)) {
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot generate a %s key",
                         p11_key_spec_name(spec));
        goto out;
    }
    if (where[0] != '/' && getcwd(cwd, sizeof(cwd)))
        abs = ca_path(cwd, where);
    else
        abs = strdup(where);
    if (!abs) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    if (ca_exists(abs)) {
        rc = p11ca_err_set(P11CA_E_EXISTS, "%s exists: not overwritten", abs);
        goto out;
    }
    rc = ca_write_bio_file(abs, mem, 0600, 0);
    if (rc == P11CA_OK && !(k->gen_file = strdup(abs)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK) {
        *location = abs;
        abs = NULL;
    }
out:
    free(abs);
    BIO_free(mem);
    EVP_PKEY_free(pk);
    return rc;
}

int ca_key_generate(ca_key *k, const char *where, const char *spec,
                    char **location)
{
    p11_key_spec ks;

    *location = NULL;
    if (p11_key_spec_parse(spec, &ks) != CKR_OK)
        return p11ca_err_set(P11CA_E_INPUT, "--generate: %s",
                             p11_error_message());
    if (is_uri(where))
        return gen_token(k, where, &ks, location);
    return gen_file(k, where, &ks, location);
}

void ca_key_keep_generated(ca_key *k)
{
    p11_obj_unref(k->gen_priv);
    p11_obj_unref(k->gen_pub);
    free(k->gen_file);
    k->gen_priv = k->gen_pub = NULL;
    k->gen_file = NULL;
}

int ca_key_discard_generated(ca_key *k, char *what, size_t len)
{
    p11_obj *objs[2] = {k->gen_priv, k->gen_pub};
    CK_RV rv = CKR_OK;

    what[0] = '\0';
    if (k->gen_file) {
        snprintf(what, len, "key file %s", k->gen_file);
        if (unlink(k->gen_file) != 0 && errno != ENOENT)
            return p11ca_err_set(P11CA_E_IO, "cannot remove %s: %s",
                                 k->gen_file, strerror(errno));
    } else if (k->gen_priv) {
        snprintf(what, len, "key \"%s\" on %s", p11_obj_label(k->gen_priv),
                 p11_token_describe(p11_obj_token(k->gen_priv)));
        /* The context logged in to make the key: no PIN is asked again. */
        for (int i = 0; i < 2 && rv == CKR_OK; i++)
            if (objs[i])
                rv = p11_obj_destroy(objs[i], NULL);
        if (rv != CKR_OK)
            return p11ca_err_set(P11CA_E_TOKEN, "%s", p11_error_message());
    }
    ca_key_keep_generated(k);
    return P11CA_OK;
}

const char *ca_sign_digest(EVP_PKEY *pk, const char *digest)
{
    char group[64] = "";

    if (EVP_PKEY_is_a(pk, "ED25519") || EVP_PKEY_is_a(pk, "ED448"))
        return NULL;
    if (digest)
        return digest;
    if (EVP_PKEY_is_a(pk, "EC")
        && EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                          sizeof(group), NULL)) {
        if (strcmp(group, "secp384r1") == 0)
            return "SHA384";
        if (strcmp(group, "secp521r1") == 0)
            return "SHA512";
    }
    return "SHA256";
}

static int sign_init(ca_key *k, const char *digest, EVP_MD_CTX **out)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();

    *out = NULL;
    if (!k->pkey) {
        EVP_MD_CTX_free(mctx);
        return p11ca_err_set(P11CA_E_INTERNAL, "the CA key is not loaded");
    }
    if (!mctx
        || EVP_DigestSignInit_ex(mctx, NULL, ca_sign_digest(k->pkey, digest),
                                 k->evp.libctx, NULL, k->pkey, NULL)
               != 1) {
        EVP_MD_CTX_free(mctx);
        return ca_ossl_err(P11CA_E_INTERNAL,
                           "cannot start a signature with the CA key");
    }
    *out = mctx;
    return P11CA_OK;
}

int ca_key_sign_cert(ca_key *k, const char *digest, X509 *x)
{
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(k, digest, &mctx);

    if (rc == P11CA_OK && X509_sign_ctx(x, mctx) <= 0)
        rc = ca_ossl_err(P11CA_E_TOKEN, "signing the certificate failed");
    EVP_MD_CTX_free(mctx);
    return rc;
}

int ca_key_sign_req(ca_key *k, const char *digest, X509_REQ *r)
{
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(k, digest, &mctx);

    if (rc == P11CA_OK && X509_REQ_sign_ctx(r, mctx) <= 0)
        rc = ca_ossl_err(P11CA_E_TOKEN, "signing the CSR failed");
    EVP_MD_CTX_free(mctx);
    return rc;
}

int ca_key_sign_crl(ca_key *k, const char *digest, X509_CRL *crl)
{
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(k, digest, &mctx);

    if (rc == P11CA_OK && X509_CRL_sign_ctx(crl, mctx) <= 0)
        rc = ca_ossl_err(P11CA_E_TOKEN, "signing the CRL failed");
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* The UI of keys other than the CA key: it gives no PIN, so that the
 * CA's PIN is never tried on another token (a key on the CA's token needs
 * none: the provider is logged in already). */
static int ui_refuse(UI *ui, UI_STRING *uis)
{
    (void)ui;
    switch (UI_get_string_type(uis)) {
    case UIT_PROMPT:
    case UIT_VERIFY:
        return 0;
    default:
        return 1;
    }
}

static UI_METHOD *ui_refusing(void)
{
    UI_METHOD *ui = UI_create_method("p11ca other key");

    if (ui && UI_method_set_reader(ui, ui_refuse) != 0) {
        UI_destroy_method(ui);
        ui = NULL;
    }
    return ui;
}

int ca_key_load_other(ca_key *k, const char *location, EVP_PKEY **out)
{
    UI_METHOD *ui = NULL;
    char *shown;
    int rc = key_evp_setup(k, location);

    *out = NULL;
    if (rc == P11CA_OK && !(ui = ui_refusing()))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK
        && !(*out = ca_store_load_pkey(k->evp.libctx, location, ui, NULL))) {
        shown = loc_shown(location);
        rc = ca_ossl_err(is_uri(location) ? P11CA_E_TOKEN : P11CA_E_INPUT,
                         "cannot load the key %s",
                         shown ? shown : "(the location given)");
        free(shown);
    }
    UI_destroy_method(ui);
    return rc;
}

int ca_key_load_cert(ca_key *k, const char *location, X509 **out)
{
    OSSL_STORE_CTX *sc = NULL;
    OSSL_STORE_INFO *info;
    UI_METHOD *ui = NULL;
    int rc = key_evp_setup(k, location);

    *out = NULL;
    if (rc == P11CA_OK && !(ui = ui_refusing()))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        sc = OSSL_STORE_open_ex(location, k->evp.libctx, NULL, ui, NULL, NULL,
                                NULL, NULL);
    if (sc && OSSL_STORE_expect(sc, OSSL_STORE_INFO_CERT) != 1) {
        OSSL_STORE_close(sc);
        sc = NULL;
    }
    while (sc && !*out && !OSSL_STORE_eof(sc)) {
        info = OSSL_STORE_load(sc);
        if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_CERT)
            *out = OSSL_STORE_INFO_get1_CERT(info);
        OSSL_STORE_INFO_free(info);
        if (!info && OSSL_STORE_error(sc))
            break;
    }
    OSSL_STORE_close(sc);
    UI_destroy_method(ui);
    if (rc == P11CA_OK && !*out)
        rc = ca_ossl_err(is_uri(location) ? P11CA_E_TOKEN : P11CA_E_INPUT,
                         "cannot load a certificate from %s", location);
    if (*out)
        ERR_clear_error();
    return rc;
}

int ca_key_sign_ocsp(ca_key *k, const char *digest, OCSP_BASICRESP *br,
                     X509 *signer, STACK_OF(X509) * certs, unsigned long flags)
{
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(k, digest, &mctx);

    if (rc == P11CA_OK
        && OCSP_basic_sign_ctx(br, signer, mctx, certs, flags) <= 0)
        rc = ca_ossl_err(P11CA_E_TOKEN, "signing the OCSP response failed");
    EVP_MD_CTX_free(mctx);
    return rc;
}

int ca_key_sign_ocsp_ctx(ca_key *k, const char *digest, EVP_MD_CTX **mctx,
                         OCSP_BASICRESP *br, X509 *signer,
                         STACK_OF(X509) * certs, unsigned long flags)
{
    int rc = P11CA_OK;

    /* No key and no digest: OpenSSL initialises the context's signature
     * again, as it was (EVP_DigestSignInit(3)). */
    if (*mctx
        && EVP_DigestSignInit_ex(*mctx, NULL, NULL, k->evp.libctx, NULL, NULL,
                                 NULL)
               != 1) {
        EVP_MD_CTX_free(*mctx);
        *mctx = NULL;
        ERR_clear_error();
    }
    if (!*mctx)
        rc = sign_init(k, digest, mctx);
    if (rc == P11CA_OK
        && OCSP_basic_sign_ctx(br, signer, *mctx, certs, flags) <= 0)
        rc = ca_ossl_err(P11CA_E_TOKEN, "signing the OCSP response failed");
    if (rc != P11CA_OK) {
        EVP_MD_CTX_free(*mctx);
        *mctx = NULL;
    }
    return rc;
}

int ca_key_sign_asn1(ca_key *k, const char *digest, const ASN1_ITEM *it,
                     void *tbs, X509_ALGOR *alg, ASN1_BIT_STRING *sig,
                     const char *what)
{
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(k, digest, &mctx);

    if (rc == P11CA_OK
        && ASN1_item_sign_ctx(it, alg, NULL, sig, tbs, mctx) <= 0)
        rc = ca_ossl_err(P11CA_E_TOKEN, "signing the %s failed", what);
    EVP_MD_CTX_free(mctx);
    return rc;
}

struct ca_signer {
    ca_key *k;
    const char *mdname; /* NULL for EdDSA */
    EVP_MD_CTX *mctx;
    unsigned char *algid;
    size_t algid_len;
    unsigned char *sig;
    size_t sig_max;
    bool ready; /* @mctx is initialised for the next signature */
};

/*
 * The AlgorithmIdentifier of @mctx's signatures, as ASN1_item_sign_ctx
 * gets it: from the provider (OSSL_SIGNATURE_PARAM_ALGORITHM_ID), or for
 * a key with a legacy method the OID of the digest and key pair (NULL
 * parameters for RSA).
 */
static int signer_algid(ca_signer *s)
{
    EVP_PKEY_CTX *pc = EVP_MD_CTX_get_pkey_ctx(s->mctx);
    unsigned char aid[128];
    OSSL_PARAM params[2];
    X509_ALGOR *alg = NULL;
    int signid, len;

    params[0] = OSSL_PARAM_construct_octet_string(
        OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid));
    params[1] = OSSL_PARAM_construct_end();
    ERR_set_mark();
    if (pc && EVP_PKEY_CTX_get_params(pc, params) > 0
        && params[0].return_size > 0) {
        ERR_pop_to_mark();
        s->algid = OPENSSL_memdup(aid, params[0].return_size);
        s->algid_len = params[0].return_size;
        return s->algid ? P11CA_OK
                        : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    ERR_pop_to_mark();
    if (!OBJ_find_sigid_by_algs(&signid,
                                s->mdname ? OBJ_sn2nid(s->mdname) : NID_undef,
                                EVP_PKEY_get_base_id(s->k->pkey))
        || !(alg = X509_ALGOR_new())
        || !X509_ALGOR_set0(
            alg, OBJ_nid2obj(signid),
            EVP_PKEY_is_a(s->k->pkey, "RSA") ? V_ASN1_NULL : V_ASN1_UNDEF, NULL)
        || (len = i2d_X509_ALGOR(alg, &s->algid)) <= 0) {
        X509_ALGOR_free(alg);
        return ca_ossl_err(P11CA_E_INTERNAL,
                           "cannot name the signature algorithm of the CA key");
    }
    s->algid_len = (size_t)len;
    X509_ALGOR_free(alg);
    return P11CA_OK;
}

int ca_signer_new(ca_key *k, const char *digest, ca_signer **out)
{
    ca_signer *s = calloc(1, sizeof(*s));
    int rc = s ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    *out = NULL;
    if (rc == P11CA_OK) {
        s->k = k;
        s->mdname = ca_sign_digest(k->pkey, digest);
        s->sig_max = (size_t)EVP_PKEY_get_size(k->pkey);
        s->sig = OPENSSL_malloc(s->sig_max ? s->sig_max : 1);
        if (!s->sig)
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    if (rc == P11CA_OK)
        rc = sign_init(k, digest, &s->mctx);
    if (rc == P11CA_OK)
        rc = signer_algid(s);
    if (rc != P11CA_OK) {
        ca_signer_free(s);
        return rc;
    }
    s->ready = true;
    *out = s;
    return P11CA_OK;
}

void ca_signer_free(ca_signer *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->mctx);
    OPENSSL_free(s->algid);
    OPENSSL_free(s->sig);
    free(s);
}

const unsigned char *ca_signer_algid(const ca_signer *s, size_t *len)
{
    *len = s->algid_len;
    return s->algid;
}

int ca_signer_sign(ca_signer *s, const unsigned char *tbs, size_t len,
                   const unsigned char **sig, size_t *siglen)
{
    size_t n = s->sig_max;
    int ok;

    /* Initialised again on the same context, which keeps its
     * EVP_PKEY_CTX: cheaper than a new context per signature. */
    ok = s->ready
         || EVP_DigestSignInit_ex(s->mctx, NULL, s->mdname, s->k->evp.libctx,
                                  NULL, s->k->pkey, NULL)
                == 1;
    s->ready = false;
    if (!ok || EVP_DigestSign(s->mctx, s->sig, &n, tbs, len) != 1)
        return ca_ossl_err(P11CA_E_TOKEN, "signing the certificate failed");
    *sig = s->sig;
    *siglen = n;
    return P11CA_OK;
}

int ca_location_shown(const char *location, char **shown, char **pin_source)
{
    p11_uri *uri = NULL;
    p11_auth auth;
    char *text = NULL, *src = NULL;
    int rc = P11CA_OK;

    *shown = NULL;
    if (pin_source)
        *pin_source = NULL;
    if (!is_uri(location)) {
        text = strdup(location);
    } else if (p11_uri_parse(location, &uri) != CKR_OK) {
        rc = p11ca_err_set(P11CA_E_INPUT, "%s", p11_error_message());
    } else if (!p11_uri_has_pin(uri)) {
        text = strdup(location);
    } else {
        text = p11_uri_format(uri);
        p11_auth_from_uri(&auth, uri);
        if (text && pin_source && auth.pin_source
            && !(src = strdup(auth.pin_source)))
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    if (rc == P11CA_OK && !text)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK) {
        *shown = text;
        text = NULL;
        if (pin_source) {
            *pin_source = src;
            src = NULL;
        }
    }
    free(text);
    free(src);
    p11_uri_free(uri);
    return rc;
}
