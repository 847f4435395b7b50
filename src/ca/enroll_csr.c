/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment CSR: signed by the token key through OSSL_STORE and EVP in
 * a library context of its own, never by PKCS#11 calls of ours. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ui.h>

#include "ca/enroll.h"
#include "ca/internal.h"

/* The library context, its providers and the token key. */
struct csr_signer {
    ca_evp evp;
    UI_METHOD *ui;
    EVP_PKEY *pkey;
    enroll_pin_fn pin;
    void *arg;
};

static int ui_read(UI *ui, UI_STRING *uis);
static int signer_setup(struct csr_signer *s, const char *module,
                        bool single_session);
static int signer_load(struct csr_signer *s, const char *uri);
static void signer_clear(struct csr_signer *s);
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

static int signer_setup(struct csr_signer *s, const char *module,
                        bool single_session)
{
    s->ui = UI_create_method("p11ca enrollment key");
    if (!s->ui || UI_method_set_reader(s->ui, ui_read) != 0)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    ca_prov_conf pc = {
        .module = module, .cache_pin = true, .single_session = single_session};

    return ca_evp_setup(&s->evp, &pc);
}

static int signer_load(struct csr_signer *s, const char *uri)
{
    s->pkey = ca_store_load_pkey(s->evp.libctx, uri, s->ui, s);
    if (!s->pkey)
        return ca_ossl_err(P11CA_E_TOKEN, "cannot load the token key %s", uri);
    return P11CA_OK;
}

static void signer_clear(struct csr_signer *s)
{
    EVP_PKEY_free(s->pkey);
    ca_evp_clear(&s->evp);
    UI_destroy_method(s->ui);
}

static int csr_sign(struct csr_signer *s, const X509_NAME *subject,
                    X509_REQ **out)
{
    X509_REQ *req = X509_REQ_new_ex(s->evp.libctx, NULL);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int rc = P11CA_E_NOMEM;

    *out = NULL;
    if (!req || !mctx || !X509_REQ_set_version(req, X509_REQ_VERSION_1)
        || !X509_REQ_set_subject_name(req, subject)
        || !X509_REQ_set_pubkey(req, s->pkey)) {
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot make the request");
        goto out;
    }
    if (EVP_DigestSignInit_ex(mctx, NULL, ca_sign_digest(s->pkey, NULL),
                              s->evp.libctx, NULL, s->pkey, NULL)
            != 1
        || X509_REQ_sign_ctx(req, mctx) <= 0) {
        rc = ca_ossl_err(P11CA_E_TOKEN,
                         "the token key did not sign the request");
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

int enroll_csr_make(const char *key_uri, const char *module,
                    bool single_session, enroll_pin_fn pin, void *arg,
                    const X509_NAME *subject, unsigned char **der, size_t *len)
{
    struct csr_signer s = {.pin = pin, .arg = arg};
    X509_REQ *req = NULL;
    int n, rc;

    *der = NULL;
    *len = 0;
    rc = signer_setup(&s, module, single_session);
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
