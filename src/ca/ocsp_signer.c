/* SPDX-License-Identifier: Apache-2.0 */
/* The delegated OCSP signer (RFC 6960 4.2.2.2): its key on the token, its
 * certificate issued by the CA under the ocsp profile and recorded, and
 * the [ ocsp ] keys of ca.cnf that name them. */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/internal.h"
#include "ca/ocsp.h"

#define SIGNER_CERT "ocsp-signer.pem"
#define SIGNER_CN   "OCSP Responder"

struct signer {
    ca *c;
    const ca_ocsp_signer_opts *o;
    ca_key *key;
    char *location; /* what ca.cnf records as signer_key */
    EVP_PKEY *pub;  /* a software copy of the public key */
    X509_NAME *subject;
    X509_REQ *req;
    ca_req *r;
    ca_outfile *out;
};

/* The CA's subject with its CN (or a new one) saying what this is; a new
 * name, since an entry changed in place keeps the old encoding. */
static int default_subject(struct signer *s)
{
    const X509_NAME *cas = X509_get_subject_name(s->c->cert);
    X509_NAME *n = X509_NAME_new();
    int set = -1, ok = n != NULL;
    bool cn = false;

    for (int i = 0; ok && i < X509_NAME_entry_count(cas); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(cas, i);
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
        /* Entries of one multi-valued RDN stay together. */
        int add = X509_NAME_ENTRY_set(e) == set ? -1 : 0;

        set = X509_NAME_ENTRY_set(e);
        if (OBJ_obj2nid(obj) == NID_commonName) {
            ok = X509_NAME_add_entry_by_OBJ(n, obj, MBSTRING_UTF8,
                                            (const unsigned char *)SIGNER_CN,
                                            -1, -1, add);
            cn = true;
        } else {
            ok = X509_NAME_add_entry(n, e, -1, add);
        }
    }
    if (ok && !cn)
        ok = X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *)SIGNER_CN, -1,
                                        -1, 0);
    if (!ok) {
        X509_NAME_free(n);
        return ca_ossl_err(P11CA_E_NOMEM, "cannot make the signer's subject");
    }
    s->subject = n;
    return P11CA_OK;
}

static int signer_location_shown(struct signer *s)
{
    char *shown = NULL;
    int rc = ca_location_shown(s->location, &shown, NULL);

    if (rc == P11CA_OK) {
        free(s->location);
        s->location = shown;
    }
    return rc;
}

/* The key: generated, or the one named (a file made absolute). */
static int key_get(struct signer *s)
{
    const char *where = s->o->key_uri ? s->o->key_uri : s->o->key_file;
    char abs[PATH_MAX], msg[512];
    int rc;

    rc = ca_key_new(s->c->module,
                    s->c->pin_source ? s->c->pin_source : s->c->s.pin_source,
                    &s->key);
    if (rc != P11CA_OK)
        return rc;
    ca_key_set_token_wait(s->key, s->c->s.token_wait_ms);
    if (s->o->generate)
        rc = ca_key_generate(s->key, where, s->o->generate, &s->location);
    else if (s->o->key_uri)
        s->location = strdup(where);
    else if (realpath(where, abs))
        s->location = strdup(abs);
    else
        return p11ca_err_set(P11CA_E_INPUT, "--key %s: no such file", where);
    if (rc == P11CA_OK && !s->location)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_key_load(s->key, s->location, NULL);
    /* ca.cnf records the key without a PIN its URI may hold. */
    if (rc == P11CA_OK)
        rc = signer_location_shown(s);
    if (rc != P11CA_OK) {
        /* The key's messages speak of "the CA key": say which it is. */
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        rc = p11ca_err_set(rc, "the OCSP signer's key: %s", msg);
    }
    return rc;
}

/* A request signed by the signer's key: the CA checks it like any CSR
 * (possession of the key, the profile's key types). */
static int csr_make(struct signer *s, unsigned char **der, int *len)
{
    const unsigned char *p;
    unsigned char *pd = NULL;
    int n = i2d_PUBKEY(ca_key_pkey(s->key), &pd);
    int rc = P11CA_OK;

    p = pd;
    s->pub = n > 0 ? d2i_PUBKEY(NULL, &p, n) : NULL;
    OPENSSL_free(pd);
    s->req = X509_REQ_new();
    if (!s->pub || !s->req || !X509_REQ_set_version(s->req, 0)
        || !X509_REQ_set_subject_name(s->req, s->subject)
        || !X509_REQ_set_pubkey(s->req, s->pub))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot make the signer's request");
    if (rc == P11CA_OK)
        rc = ca_key_sign_req(s->key, NULL, s->req);
    *der = NULL;
    if (rc == P11CA_OK && (*len = i2d_X509_REQ(s->req, der)) <= 0)
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot encode the signer's request");
    return rc;
}

/* Issue it under the profile, which must make an OCSP signer. */
static int cert_issue(struct signer *s, const unsigned char *der, int len)
{
    ca_issue_opts io = {
        .profile = s->o->profile ? s->o->profile : "ocsp",
        .days = s->o->days,
    };
    X509 *x;
    int rc = ca_req_new(s->c, der, (size_t)len, "the OCSP signer's request",
                        &io, &s->r);

    if (rc == P11CA_OK)
        rc = ca_req_sign(s->c, s->r);
    if (rc != P11CA_OK)
        return rc;
    x = ca_req_cert(s->r);
    if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE)
        || !(X509_get_extended_key_usage(x) & XKU_OCSP_SIGN))
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" does not issue OCSP signers: its ext_key_usage has no OCSPSigning",
            io.profile);
    return P11CA_OK;
}

/* Is @line the header of section @name ("[ ocsp ]", "[ocsp]")? */
static bool is_header(const char *line, size_t len, const char *name)
{
    size_t i = 0, n = strlen(name);

    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len || line[i++] != '[')
        return false;
    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (len - i < n || strncmp(line + i, name, n) != 0)
        return false;
    for (i += n; i < len && isspace((unsigned char)line[i]); i++)
        ;
    return i < len && line[i] == ']';
}

/* Is @line an assignment of @key? */
static bool is_key(const char *line, size_t len, const char *key)
{
    size_t i = 0, n = strlen(key);

    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (len - i < n || strncmp(line + i, key, n) != 0)
        return false;
    for (i += n; i < len && isspace((unsigned char)line[i]); i++)
        ;
    return i < len && line[i] == '=';
}

static bool is_section(const char *line, size_t len)
{
    size_t i = 0;

    while (i < len && isspace((unsigned char)line[i]))
        i++;
    return i < len && line[i] == '[';
}

/*
 * ca.cnf with [ ocsp ] signer_key and signer_cert set: the text kept as
 * it is (comments too), earlier values of the two keys removed, the new
 * ones right after the section header (or a new section at the end).
 */
static int cnf_update(struct signer *s)
{
    char *path = ca_path(s->c->dir, CA_CNF);
    unsigned char *text = NULL;
    size_t len = 0, i = 0;
    BIO *b = BIO_new(BIO_s_mem());
    bool in = false, done = false;
    int rc = path && b ? ca_file_read(path, CA_MAX_CNF, &text, &len)
                       : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    while (rc == P11CA_OK && i < len) {
        const char *line = (const char *)text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;

        i += n + (nl != NULL);
        if (is_section(line, n))
            in = is_header(line, n, "ocsp");
        if (in
            && (is_key(line, n, "signer_key")
                || is_key(line, n, "signer_cert")))
            continue;
        BIO_write(b, line, (int)n);
        BIO_write(b, "\n", 1);
        if (in && !done && is_header(line, n, "ocsp")) {
            ca_cnf_write_kv(b, "signer_key", s->location);
            ca_cnf_write_kv(b, "signer_cert", SIGNER_CERT);
            done = true;
        }
    }
    if (rc == P11CA_OK && !done) {
        BIO_puts(b, "\n[ ocsp ]\n");
        ca_cnf_write_kv(b, "signer_key", s->location);
        ca_cnf_write_kv(b, "signer_cert", SIGNER_CERT);
    }
    if (rc == P11CA_OK)
        rc = ca_write_bio_file(path, b, 0600, 0);
    BIO_free(b);
    /* ca.cnf may hold the registry's password. */
    if (text)
        OPENSSL_cleanse(text, len);
    free(text);
    free(path);
    return rc;
}

static void signer_clear(struct signer *s, int rc)
{
    char msg[512], what[256], why[256];

    /* A key generated for a signer that was not recorded goes again. */
    if (rc != P11CA_OK && s->key) {
        snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
        if (ca_key_discard_generated(s->key, what, sizeof(what)) != P11CA_OK) {
            snprintf(why, sizeof(why), "%s", p11ca_err_message());
            p11ca_err_set(rc, "%s; the new %s could not be removed: %s", msg,
                          what, why);
        }
    }
    ca_outfile_free(s->out);
    ca_req_free(s->r);
    X509_REQ_free(s->req);
    X509_NAME_free(s->subject);
    EVP_PKEY_free(s->pub);
    free(s->location);
    ca_key_free(s->key);
}

int ca_ocsp_signer_init(ca *c, const ca_ocsp_signer_opts *o, char **serial)
{
    struct signer s = {.c = c, .o = o};
    unsigned char *der = NULL;
    char *path = NULL;
    int len = 0, rc;

    if (serial)
        *serial = NULL;
    rc = ca_check_signing(c);
    if (rc == P11CA_OK)
        rc = o->subject ? ca_name_parse(o->subject, &s.subject)
                        : default_subject(&s);
    /* Where the certificate goes, before anything is made or recorded. */
    if (rc == P11CA_OK && !(path = ca_path(c->dir, SIGNER_CERT)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_outfile_open(path, 0644, c->out_flags, &s.out);
    if (rc == P11CA_OK)
        rc = key_get(&s);
    if (rc == P11CA_OK)
        rc = csr_make(&s, &der, &len);
    if (rc == P11CA_OK)
        rc = cert_issue(&s, der, len);
    if (rc == P11CA_OK)
        rc = ca_req_record(c, s.r);
    /* Recorded: from here on the key stays even if a file cannot be
     * written (the certificate is in the registry; run it again). */
    if (rc == P11CA_OK)
        ca_key_keep_generated(s.key);
    if (rc == P11CA_OK
        && !PEM_write_bio_X509(ca_outfile_bio(s.out), ca_req_cert(s.r)))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot write %s", path);
    if (rc == P11CA_OK)
        rc = ca_outfile_commit(s.out);
    if (rc == P11CA_OK)
        rc = cnf_update(&s);
    if (rc == P11CA_OK && serial && !(*serial = strdup(ca_req_serial(s.r))))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    OPENSSL_free(der);
    free(path);
    signer_clear(&s, rc);
    return rc;
}
