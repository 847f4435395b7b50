/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment CSR: signed by the token key through OSSL_STORE and EVP in
 * a library context of its own, never by PKCS#11 calls of ours. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#include "ca/enroll.h"
#include "ca/internal.h"

/* The library context, its providers and the token key. */
struct csr_signer {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *deflt;
    OSSL_PROVIDER *p11ca;
    UI_METHOD *ui;
    EVP_PKEY *pkey;
    enroll_pin_fn pin;
    void *arg;
};

static int ui_read(UI *ui, UI_STRING *uis);
static int signer_setup(struct csr_signer *s, const char *module);
static int signer_load(struct csr_signer *s, const char *uri);
static void signer_clear(struct csr_signer *s);
static const char *csr_digest(EVP_PKEY *pk);
static int csr_sign(struct csr_signer *s, const X509_NAME *subject,
                    X509_REQ **out);

/* The provider's PIN prompt (OSSL_STORE passphrase), answered by @s->pin. */
static int ui_read(UI *ui, UI_STRING *uis)
{
    struct csr_signer *s = UI_get0_user_data(ui);
    char pin[P11_MAX_PIN_LEN + 1];
    int n, ok = 0;

    if (UI_get_string_type(uis) != UIT_PROMPT
        && UI_get_string_type(uis) != UIT_VERIFY)
        return 1;
    n = s->pin ? s->pin(pin, P11_MAX_PIN_LEN, s->arg) : -1;
    if (n >= 0 && n <= P11_MAX_PIN_LEN)
        ok = UI_set_result_ex(ui, uis, pin, n) == 0;
    OPENSSL_cleanse(pin, sizeof(pin));
    return ok;
}

static int signer_setup(struct csr_signer *s, const char *module)
{
    s->ui = UI_create_method("p11ca enrollment key");
    if (!s->ui || UI_method_set_reader(s->ui, ui_read) != 0
        || !(s->libctx = OSSL_LIB_CTX_new()))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (!(s->deflt = OSSL_PROVIDER_load(s->libctx, "default")))
        return ca_ossl_err(P11CA_E_INTERNAL, "cannot load OpenSSL's default "
                                             "provider");
    /* OpenSSL 3.0 cannot hand parameters to a provider a program loads: the
     * provider reads its module from the environment (as the CA does). */
    if (module && setenv("P11CA_MODULE", module, 1) != 0)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (!(s->p11ca = OSSL_PROVIDER_load(s->libctx, "p11ca")))
        return ca_ossl_err(P11CA_E_TOKEN, "cannot load the p11ca OpenSSL "
                                          "provider (installed in OpenSSL's "
                                          "modules directory, or set "
                                          "OPENSSL_MODULES)");
    return P11CA_OK;
}

static int signer_load(struct csr_signer *s, const char *uri)
{
    OSSL_STORE_CTX *sc;
    OSSL_STORE_INFO *info;

    sc = OSSL_STORE_open_ex(uri, s->libctx, NULL, s->ui, s, NULL, NULL, NULL);
    if (sc && OSSL_STORE_expect(sc, OSSL_STORE_INFO_PKEY) != 1) {
        OSSL_STORE_close(sc);
        sc = NULL;
    }
    while (sc && !s->pkey && !OSSL_STORE_eof(sc)) {
        info = OSSL_STORE_load(sc);
        if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            s->pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
        if (!info && OSSL_STORE_error(sc))
            break;
    }
    OSSL_STORE_close(sc);
    if (!s->pkey)
        return ca_ossl_err(P11CA_E_TOKEN, "cannot load the token key %s", uri);
    ERR_clear_error();
    return P11CA_OK;
}

static void signer_clear(struct csr_signer *s)
{
    EVP_PKEY_free(s->pkey);
    OSSL_PROVIDER_unload(s->p11ca);
    OSSL_PROVIDER_unload(s->deflt);
    OSSL_LIB_CTX_free(s->libctx);
    UI_destroy_method(s->ui);
}

/* A digest that matches the key's strength; none for EdDSA. */
static const char *csr_digest(EVP_PKEY *pk)
{
    char group[64] = "";

    if (EVP_PKEY_is_a(pk, "ED25519") || EVP_PKEY_is_a(pk, "ED448"))
        return NULL;
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

static int csr_sign(struct csr_signer *s, const X509_NAME *subject,
                    X509_REQ **out)
{
    X509_REQ *req = X509_REQ_new_ex(s->libctx, NULL);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int rc = P11CA_E_NOMEM;

    *out = NULL;
    if (!req || !mctx || !X509_REQ_set_version(req, X509_REQ_VERSION_1)
        || !X509_REQ_set_subject_name(req, subject)
        || !X509_REQ_set_pubkey(req, s->pkey)) {
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot make the request");
        goto out;
    }
    if (EVP_DigestSignInit_ex(mctx, NULL, csr_digest(s->pkey), s->libctx, NULL,
                              s->pkey, NULL)
            != 1
        || X509_REQ_sign_ctx(req, mctx) <= 0) {
        rc = ca_ossl_err(P11CA_E_TOKEN, "the token key did not sign the "
                                        "request");
        goto out;
    }
    *out = req;
    req = NULL;
    rc = P11CA_OK;
out:
    EVP_MD_CTX_free(mctx);
    X509_REQ_free(req);
    return rc;
}

int enroll_csr_make(const char *key_uri, const char *module, enroll_pin_fn pin,
                    void *arg, const X509_NAME *subject, unsigned char **der,
                    size_t *len)
{
    struct csr_signer s = {.pin = pin, .arg = arg};
    X509_REQ *req = NULL;
    int n, rc;

    *der = NULL;
    *len = 0;
    rc = signer_setup(&s, module);
    if (rc == P11CA_OK)
        rc = signer_load(&s, key_uri);
    if (rc == P11CA_OK)
        rc = csr_sign(&s, subject, &req);
    if (rc == P11CA_OK) {
        n = i2d_X509_REQ(req, der);
        if (n > 0)
            *len = (size_t)n;
        else
            rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot encode the request");
    }
    X509_REQ_free(req);
    signer_clear(&s);
    return rc;
}

int enroll_name_parse(const char *str, X509_NAME **out)
{
    return ca_name_parse(str, out);
}

int enroll_spki_sha256(EVP_PKEY *pk, char hex[65])
{
    return ca_pubkey_sha256(pk, hex);
}
