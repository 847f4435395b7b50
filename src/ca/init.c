/* SPDX-License-Identifier: Apache-2.0 */
/* Making a CA: the key, the self-signed certificate or the intermediate's
 * CSR, ca.cnf, the registry; installing an intermediate's certificate. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"

/* What ca_init has made so far. */
struct init_state {
    const ca_init_opts *o;
    X509_NAME *subject;
    char *constraints;
    char *name;
    ca_key *key;
    char *location;   /* what loads the key (a URI may hold its PIN) */
    char *shown;      /* what ca.cnf, the trail and the output record */
    char *pin_source; /* a URI's pin-source=, for ca.cnf */
    EVP_PKEY *pub;
    X509 *cert;    /* a root's certificate */
    X509_REQ *req; /* an intermediate's CSR */
    bool made_dir; /* the directory is this run's: removed on failure */
};

static int init_validate(const ca_init_opts *o);
static int init_names(struct init_state *st);
static int init_check_dir(const char *dir, bool *made);
static int init_key(struct init_state *st);
static int ca_basic_exts(struct init_state *st, X509V3_CTX *ctx,
                         STACK_OF(X509_EXTENSION) * *out);
static int root_cert(struct init_state *st);
static int inter_csr(struct init_state *st);
static int init_registry(struct init_state *st);
static int write_out(struct init_state *st);
static int write_cnf(struct init_state *st);
static int chain_verify(X509 *leaf, STACK_OF(X509) * chain,
                        STACK_OF(X509) * *verified);
static int import_check(ca *c, X509 *leaf);
static int import_write(ca *c, STACK_OF(X509) * verified);

static int init_validate(const ca_init_opts *o)
{
    if (!o->dir || !o->subject)
        return p11ca_err_set(P11CA_E_USAGE, "give --dir and --subject");
    if (!o->key_uri == !o->key_file)
        return p11ca_err_set(P11CA_E_USAGE, "give one of --key-uri and --key");
    if (o->key_uri && strncmp(o->key_uri, "pkcs11:", 7) != 0)
        return p11ca_err_set(P11CA_E_INPUT, "--key-uri must be a pkcs11: URI");
    if (o->days > 36500)
        return p11ca_err_set(P11CA_E_INPUT, "--days: at most 36500");
    if (o->pathlen > 32)
        return p11ca_err_set(P11CA_E_INPUT, "--pathlen: at most 32");
    return P11CA_OK;
}

/* The subject, the name constraints and the CA's name. */
static int init_names(struct init_state *st)
{
    const ca_init_opts *o = st->o;
    int rc = ca_name_parse(o->subject, &st->subject);

    if (rc != P11CA_OK)
        return rc;
    if (o->name_constraints
        && !(st->constraints = ca_name_constraints(o->name_constraints)))
        return p11ca_err_rc();
    if (o->name)
        st->name = strdup(o->name);
    else if (!(st->name = ca_name_cn(st->subject)))
        st->name = strdup("ca");
    if (!st->name)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

static int init_check_dir(const char *dir, bool *made)
{
    static const char *const names[] = {CA_CNF, CA_CERT, CA_CSR};
    int rc = P11CA_OK;
    char *p;

    *made = mkdir(dir, 0700) == 0;
    if (!*made && errno != EEXIST)
        return p11ca_err_set(P11CA_E_IO, "cannot make %s: %s", dir,
                             strerror(errno));
    for (size_t i = 0; rc == P11CA_OK && i < 3; i++) {
        p = ca_path(dir, names[i]);
        if (!p)
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        else if (ca_exists(p))
            rc = p11ca_err_set(P11CA_E_EXISTS,
                               "%s holds a CA already (%s): not overwritten",
                               dir, p);
        free(p);
    }
    return rc;
}

/* The key: generated, or the given one; checked and loaded either way. */
static int init_key(struct init_state *st)
{
    const ca_init_opts *o = st->o;
    const char *where = o->key_uri ? o->key_uri : o->key_file;
    unsigned char *der = NULL;
    const unsigned char *p;
    char cwd[4096], *shown = NULL, *src = NULL;
    int n, rc;

    assert(where != NULL); /* init_validate: one of key_uri and key_file */
    rc = ca_key_new(o->module, o->pin_source, &st->key);
    if (rc == P11CA_OK && o->generate)
        rc = ca_key_generate(st->key, where, o->generate, &st->location);
    else if (rc == P11CA_OK && o->key_file && o->key_file[0] != '/'
             && getcwd(cwd, sizeof(cwd)))
        st->location = ca_path(cwd, o->key_file);
    else if (rc == P11CA_OK)
        st->location = strdup(where);
    if (rc == P11CA_OK && !st->location)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_key_load(st->key, st->location, NULL);
    /* pin-value= is for this command only; pin-source= becomes ca.cnf's
     * pin_source unless --pin-source names one. */
    if (rc == P11CA_OK)
        rc = ca_location_shown(st->location, &shown,
                               o->pin_source ? NULL : &src);
    st->shown = shown;
    st->pin_source = src;
    if (rc != P11CA_OK)
        return rc;
    /* A software copy of the public key, for the certificate and checks. */
    n = i2d_PUBKEY(ca_key_pkey(st->key), &der);
    p = der;
    st->pub = n > 0 ? d2i_PUBKEY(NULL, &p, n) : NULL;
    OPENSSL_free(der);
    if (!st->pub)
        return ca_ossl_err(P11CA_E_INTERNAL, "cannot read the CA public key");
    return P11CA_OK;
}

/* basicConstraints CA:TRUE, keyUsage and the name constraints. */
static int ca_basic_exts(struct init_state *st, X509V3_CTX *ctx,
                         STACK_OF(X509_EXTENSION) * *out)
{
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    const char *vals[3] = {NULL, "critical,keyCertSign,cRLSign",
                           st->constraints};
    static const int nids[3] = {NID_basic_constraints, NID_key_usage,
                                NID_name_constraints};
    X509_EXTENSION *e;
    char bc[64];
    int rc = sk ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    if (st->o->pathlen >= 0)
        snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", st->o->pathlen);
    else
        snprintf(bc, sizeof(bc), "critical,CA:TRUE");
    vals[0] = bc;
    for (int i = 0; rc == P11CA_OK && i < 3; i++) {
        if (!vals[i])
            continue;
        e = X509V3_EXT_nconf_nid(NULL, ctx, nids[i], vals[i]);
        if (!e || !sk_X509_EXTENSION_push(sk, e)) {
            X509_EXTENSION_free(e);
            rc = ca_ossl_err(P11CA_E_INPUT, "cannot make %s = %s",
                             OBJ_nid2sn(nids[i]), vals[i]);
        }
    }
    if (rc == P11CA_OK) {
        *out = sk;
        sk = NULL;
    }
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    return rc;
}

static int root_cert(struct init_state *st)
{
    unsigned days = st->o->days ? st->o->days : 3650;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509 *x = X509_new();
    X509V3_CTX ctx;
    int rc = P11CA_OK;

    if (!x || !X509_set_version(x, X509_VERSION_3)
        || !X509_set_subject_name(x, st->subject)
        || !X509_set_issuer_name(x, st->subject) || !X509_set_pubkey(x, st->pub)
        || !X509_gmtime_adj(X509_getm_notBefore(x), 0)
        || !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot make the CA certificate");
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (rc == P11CA_OK)
        rc = ca_serial_random(x);
    if (rc == P11CA_OK)
        rc = ca_basic_exts(st, &ctx, &exts);
    for (int i = 0; rc == P11CA_OK && i < sk_X509_EXTENSION_num(exts); i++)
        if (!X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1))
            rc = ca_ossl_err(P11CA_E_NOMEM, "cannot add an extension");
    if (rc == P11CA_OK)
        rc = ca_ext_add_ski_aki(&ctx, x);
    if (rc == P11CA_OK)
        rc = ca_key_sign_cert(st->key, NULL, x);
    if (rc == P11CA_OK && X509_verify(x, st->pub) != 1)
        rc = ca_ossl_err(
            P11CA_E_CAKEY,
            "the CA key made a signature its public key does not verify");
    if (rc == P11CA_OK) {
        st->cert = x;
        x = NULL;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_free(x);
    return rc;
}

/* An intermediate's CSR, asking for CA:TRUE (the issuer decides). */
static int inter_csr(struct init_state *st)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_REQ *req = X509_REQ_new();
    int rc = P11CA_OK;

    if (!req || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_subject_name(req, st->subject)
        || !X509_REQ_set_pubkey(req, st->pub))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot make the CSR");
    if (rc == P11CA_OK)
        rc = ca_basic_exts(st, NULL, &exts);
    if (rc == P11CA_OK && !X509_REQ_add_extensions(req, exts))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot make the CSR");
    if (rc == P11CA_OK)
        rc = ca_key_sign_req(st->key, NULL, req);
    if (rc == P11CA_OK && X509_REQ_verify(req, st->pub) != 1)
        rc = ca_ossl_err(
            P11CA_E_CAKEY,
            "the CA key made a signature its public key does not verify");
    if (rc == P11CA_OK) {
        st->req = req;
        req = NULL;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rc;
}

/* The registry: created now, with a root registered; audited, and a
 * root's first audit head signed. */
static int init_registry(struct init_state *st)
{
    const ca_init_opts *o = st->o;
    char *loc, details[1024];
    unsigned char *der = NULL;
    reg *r = NULL;
    int64_t id = 0;
    int rc, n;

    loc = ca_registry_resolve(o->dir,
                              o->registry ? o->registry : CA_REGISTRY_DEFAULT);
    rc =
        loc ? reg_open(loc, &r) : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK && st->cert) {
        n = i2d_X509(st->cert, &der);
        rc = n > 0 ? reg_ca_add(r, der, (size_t)n, st->name, &id)
                   : ca_ossl_err(P11CA_E_INTERNAL,
                                 "cannot encode the CA certificate");
    }
    snprintf(details, sizeof(details), "type=%s key=%s key_sha256=%s",
             o->intermediate ? "intermediate" : "root", st->shown,
             ca_key_sha256(st->key));
    if (rc == P11CA_OK)
        rc = reg_audit_add(r, ca_actor(), "ca-init", st->name, details);
    /* A root's trail starts under a signed head: a registry whose heads
     * are all gone fails p11ca audit verify. */
    if (rc == P11CA_OK && st->cert)
        rc = ca_audit_sign_head(r, st->key, NULL, st->cert, id, NULL);
    reg_close(r);
    OPENSSL_free(der);
    free(loc);
    return rc;
}

/* DIR/ca.pem or DIR/ca.csr. */
static int write_out(struct init_state *st)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *path = ca_path(st->o->dir, st->cert ? CA_CERT : CA_CSR);
    int rc = P11CA_OK;

    if (!b || !path || (st->cert && !PEM_write_bio_X509(b, st->cert))
        || (st->req && !PEM_write_bio_X509_REQ(b, st->req)))
        rc = ca_ossl_err(P11CA_E_NOMEM, "cannot encode the %s",
                         st->cert ? "certificate" : "CSR");
    if (rc == P11CA_OK)
        rc = ca_write_bio_file(path, b, 0644, 0);
    BIO_free(b);
    free(path);
    return rc;
}

static int write_cnf(struct init_state *st)
{
    const ca_init_opts *o = st->o;
    BIO *b = BIO_new(BIO_s_mem());
    char *path = ca_path(o->dir, CA_CNF), *pin = NULL, cwd[4096];
    const char *pin_source = o->pin_source ? o->pin_source : st->pin_source;
    int rc = P11CA_E_NOMEM;

    if (!b || !path) {
        rc = p11ca_err_set(rc, "out of memory");
        goto out;
    }
    if (pin_source && pin_source[0] != '/' && getcwd(cwd, sizeof(cwd)))
        pin = ca_path(cwd, pin_source);
    ca_cnf_write_header(b);
    BIO_puts(b, "[ ca ]\n");
    ca_cnf_write_kv(b, "name", st->name);
    ca_cnf_write_kv(b, "type", o->intermediate ? "intermediate" : "root");
    ca_cnf_write_kv(b, "key", st->shown);
    ca_cnf_write_kv(b, "key_sha256", ca_key_sha256(st->key));
    if (pin_source)
        ca_cnf_write_kv(b, "pin_source", pin ? pin : pin_source);
    ca_cnf_write_kv(b, "certificate", CA_CERT);
    ca_cnf_write_kv(b, "chain", CA_CHAIN);
    ca_cnf_write_kv(b, "registry",
                    o->registry ? o->registry : CA_REGISTRY_DEFAULT);
    BIO_printf(b,
               "crl_days         = %d\nrate_limit       = %d\n"
               "audit_sign_every = %d\naudit_sign_minutes = %d\n"
               "# digest         = sha256\n"
               "# crl_url        = http://pki.example.com/ca.crl\n"
               "# ocsp_url       = http://ocsp.example.com\n"
               "# issuers_url    = http://pki.example.com/ca.pem\n\n",
               CA_CRL_DAYS_DEFAULT, CA_RATE_DEFAULT, CA_AUDIT_EVERY_DEFAULT,
               CA_AUDIT_MINUTES_DEFAULT);
    ca_profiles_write_default(b);
    /* A registry location with a password keeps ca.cnf to its owner. */
    rc = ca_write_bio_file(
        path, b, reg_location_has_password(o->registry) ? 0600 : 0644, 0);
out:
    free(pin);
    free(path);
    BIO_free(b);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/*
 * A failed init into a directory it made removes that directory and what
 * it wrote there (the registry, the certificate), so that the same command
 * can simply be run again; @rc's message says so when it cannot.
 */
static int init_remove_dir(const char *dir, int rc)
{
    char *msg;

    if (nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) == 0)
        return rc;
    msg = strdup(p11ca_err_message());
    if (msg)
        rc = p11ca_err_set(
            rc, "%s; %s stays behind (remove it before trying again): %s", msg,
            dir, strerror(errno));
    free(msg);
    return rc;
}

/*
 * A failed init leaves no generated key behind: the error @rc gets a note
 * of what was removed, or of what could not be.
 */
static int init_undo_key(struct init_state *st, int rc)
{
    char *msg = strdup(p11ca_err_message()), what[512];
    int rc2;

    if (!msg)
        return rc;
    rc2 = ca_key_discard_generated(st->key, what, sizeof(what));
    if (rc2 != P11CA_OK)
        rc = p11ca_err_set(rc, "%s; the key generated for the CA stays: %s",
                           msg, p11ca_err_message());
    else if (what[0])
        rc = p11ca_err_set(rc, "%s; the %s generated for the CA was removed",
                           msg, what);
    free(msg);
    return rc;
}

int ca_init(const ca_init_opts *o)
{
    struct init_state st = {0};
    int rc;

    st.o = o;
    rc = init_validate(o);
    if (rc == P11CA_OK)
        rc = init_names(&st);
    if (rc == P11CA_OK)
        rc = init_check_dir(o->dir, &st.made_dir);
    if (rc == P11CA_OK)
        rc = init_key(&st);
    if (rc == P11CA_OK)
        rc = o->intermediate ? inter_csr(&st) : root_cert(&st);
    if (rc == P11CA_OK)
        rc = init_registry(&st);
    if (rc == P11CA_OK)
        rc = write_out(&st);
    /* ca.cnf last: a directory without it is not a CA. */
    if (rc == P11CA_OK)
        rc = write_cnf(&st);
    if (rc == P11CA_OK && st.key)
        ca_key_keep_generated(st.key);
    else if (st.key)
        rc = init_undo_key(&st, rc);
    if (rc != P11CA_OK && st.made_dir)
        rc = init_remove_dir(o->dir, rc);
    X509_free(st.cert);
    X509_REQ_free(st.req);
    EVP_PKEY_free(st.pub);
    free(st.location);
    free(st.shown);
    free(st.pin_source);
    ca_key_free(st.key);
    free(st.name);
    free(st.constraints);
    X509_NAME_free(st.subject);
    return rc;
}

/* Verify @leaf up to a self-signed root of @chain; @verified gets the path
 * above the leaf. */
static int chain_verify(X509 *leaf, STACK_OF(X509) * chain,
                        STACK_OF(X509) * *verified)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *path = NULL;
    int rc = store && ctx ? P11CA_OK : P11CA_E_NOMEM, roots = 0;

    *verified = NULL;
    for (int i = 0; rc == P11CA_OK && i < sk_X509_num(chain); i++)
        if (X509_self_signed(sk_X509_value(chain, i), 0) == 1
            && X509_STORE_add_cert(store, sk_X509_value(chain, i)))
            roots++;
    if (rc != P11CA_OK)
        rc = p11ca_err_set(rc, "out of memory");
    else if (roots == 0)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "the chain has no self-signed root certificate: give the issuers up to the root");
    else if (!X509_STORE_CTX_init(ctx, store, leaf, chain))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot verify the chain");
    else if (X509_verify_cert(ctx) != 1)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "the certificate does not verify against the chain: %s",
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    else if (!(path = X509_STORE_CTX_get1_chain(ctx)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK) {
        X509_free(sk_X509_shift(path));
        *verified = path;
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

static int import_check(ca *c, X509 *leaf)
{
    char hex[65];
    int rc;

    if (c->cert)
        return p11ca_err_set(
            P11CA_E_EXISTS, "the CA in %s has its certificate already", c->dir);
    rc = ca_pubkey_sha256(X509_get0_pubkey(leaf), hex);
    if (rc == P11CA_OK && strcmp(hex, c->s.key_sha256) != 0)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "the certificate is not for this CA's key (its public key has SHA-256 %s, ca.cnf records %s)",
            hex, c->s.key_sha256);
    if (rc == P11CA_OK
        && (X509_check_ca(leaf) != 1
            || !(X509_get_key_usage(leaf) & KU_KEY_CERT_SIGN)))
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "the certificate is not a CA certificate (basicConstraints CA:TRUE and keyCertSign needed)");
    return rc;
}

/* Registry first (it can be redone), then chain.pem, then ca.pem. */
static int import_write(ca *c, STACK_OF(X509) * verified)
{
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    char *chain = ca_path(c->dir, CA_CHAIN), *cert = ca_path(c->dir, CA_CERT);
    char details[64];
    int rc = cb && kb && chain && cert ? P11CA_OK : P11CA_E_NOMEM;

    for (int i = 0; rc == P11CA_OK && i < sk_X509_num(verified); i++)
        if (!PEM_write_bio_X509(cb, sk_X509_value(verified, i)))
            rc = P11CA_E_NOMEM;
    if (rc == P11CA_OK && !PEM_write_bio_X509(kb, c->cert))
        rc = P11CA_E_NOMEM;
    if (rc != P11CA_OK)
        rc = p11ca_err_set(rc, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_registry_self(c);
    snprintf(details, sizeof(details), "chain=%d", sk_X509_num(verified));
    if (rc == P11CA_OK)
        rc = reg_audit_add(c->reg, ca_actor(), "ca-import-chain",
                           c->s.name ? c->s.name : c->dir, details);
    if (rc == P11CA_OK)
        rc = ca_write_bio_file(chain, cb, 0644, 0);
    if (rc == P11CA_OK)
        rc = ca_write_bio_file(cert, kb, 0644, 0);
    BIO_free(cb);
    BIO_free(kb);
    free(chain);
    free(cert);
    return rc;
}

int ca_import_chain(const char *dir, const char *cert_pem,
                    const char *chain_pem)
{
    STACK_OF(X509) *certs = NULL, *more = NULL, *verified = NULL;
    X509 *leaf = NULL;
    ca *c = NULL;
    int rc = ca_open(dir, &c);

    if (rc == P11CA_OK)
        rc = ca_read_certs(cert_pem, &certs);
    if (rc == P11CA_OK && chain_pem)
        rc = ca_read_certs(chain_pem, &more);
    while (rc == P11CA_OK && more && sk_X509_num(more) > 0) {
        X509 *x = sk_X509_shift(more);
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        }
    }
    if (rc == P11CA_OK) {
        leaf = sk_X509_shift(certs);
        rc = import_check(c, leaf);
    }
    if (rc == P11CA_OK)
        rc = chain_verify(leaf, certs, &verified);
    if (rc == P11CA_OK) {
        c->cert = leaf;
        leaf = NULL;
        rc = import_write(c, verified);
    }
    X509_free(leaf);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(more, X509_free);
    sk_X509_pop_free(verified, X509_free);
    ca_close(c);
    return rc;
}
