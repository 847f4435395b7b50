/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment flow: key on the token, CSR, certificate from the issuer,
 * check, write; unfinished enrollments resumed or cleaned up; renewal (same
 * key) and re-key (new key).  Called by p11ca enroll and the service. */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ca/enroll.h"
#include "common/log.h"

#define REKEY_SUFFIX ".rekey"
#define MAX_RETIRE   16
#define NOTE_MAX     4096

/* One run: the caller's environment and options, the names worked out,
 * the objects found, and the outcome being built in @r. */
struct enr {
    const enroll_env *env;
    const enroll_opts *a;
    enroll_result *r;
    X509_NAME *subject;
    p11_key_spec spec;
    enroll_pair cur;  /* the objects labelled r->label */
    enroll_pair pend; /* rekey: the new key while it has a work label */
};

static void note(struct enr *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_rv(CK_RV rv, const char *what);
static int wrap(int rc, const char *what);
static const char *tok_desc(struct enr *e);
static int key_hash(p11_obj *key, char hex[65]);
static void make_req(struct enr *e, enroll_req *rq);
static int obtain_cert(struct enr *e, bool resume);
static int find_cert_obj(struct enr *e, const char *label);
static int write_cert(struct enr *e, const char *label);
static int write_chain(struct enr *e);
static int keygen(struct enr *e, const char *label);
static int cleanup_pair(struct enr *e, enroll_pair *p);
static int unfinished(struct enr *e, const enroll_pair *p, const char *how);
static int pick_current(struct enr *e, enroll_pair *p);
static int load_enrolled(struct enr *e);
static int finish(struct enr *e, bool resume, const char *label);
static int new_key(struct enr *e, enroll_pair *p, const char *label,
                   const char *cmd, const char *afresh, bool *resumed);
static int flow_enroll(struct enr *e);
static int flow_renew(struct enr *e);
static int rekey_new_key(struct enr *e, const char *work, bool *resume);
static int rekey_swap(struct enr *e);
static void old_key_spec(p11_obj *priv, char *spec, size_t len);
static int rekey_key_type(struct enr *e);
static int flow_rekey(struct enr *e);
static bool name_cn(const X509_NAME *n, char *buf, size_t len);
static int client_subject(const char *client_id, X509_NAME **out);
static int names(struct enr *e);
static int names_from(struct enr *e, X509 *x);
static int key_type(struct enr *e);

/* A notice or an earlier error for the caller (enroll_note_fn), logged. */
static void note(struct enr *e, int rc, const char *fmt, ...)
{
    char msg[NOTE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rc != P11CA_OK)
        LOG_ERR(CA, "%s", msg);
    else
        LOG_INFO(CA, "%s", msg);
    if (e->env->note)
        e->env->note(rc, msg, e->env->note_arg);
}

/* "@what: " and the p11 layer's message, with its status code. */
static int fail_rv(CK_RV rv, const char *what)
{
    return p11ca_err_set(enroll_rc_from_rv(rv), "%s: %s", what,
                         p11_error_message());
}

/* "@what: " before the message of @rc (p11ca_err_set copies it first). */
static int wrap(int rc, const char *what)
{
    return p11ca_err_set(rc, "%s: %s", what, p11ca_err_message());
}

static const char *tok_desc(struct enr *e)
{
    return p11_token_describe(e->env->tok);
}

/* Hex SHA-256 of the key's SubjectPublicKeyInfo, read from the token. */
static int key_hash(p11_obj *key, char hex[65])
{
    EVP_PKEY *pk = NULL;
    CK_RV rv = p11_obj_public_key(key, NULL, NULL, &pk);
    int rc;

    if (rv != CKR_OK)
        rc = fail_rv(rv, "enroll: reading the public key");
    else
        rc = enroll_spki_sha256(pk, hex);
    if (rv == CKR_OK && rc != P11CA_OK)
        rc = wrap(rc, "enroll");
    EVP_PKEY_free(pk);
    return rc;
}

static void make_req(struct enr *e, enroll_req *rq)
{
    rq->profile = e->r->profile;
    rq->client_id = e->r->client_id;
    rq->days = e->a->days;
    rq->wait = e->a->wait;
    rq->replaces = e->r->old_serial[0] ? e->r->old_serial : NULL;
    rq->subject = e->subject;
}

/*
 * The certificate for r->key: on resume the one the issuer made for this
 * key before, else a new one for a CSR the key signs.  Either way it must
 * carry the token's public key before anything is written.
 */
static int obtain_cert(struct enr *e, bool resume)
{
    enroll_result *r = e->r;
    char want[65], got[65];
    unsigned char *csr = NULL;
    size_t len = 0;
    char *uri = NULL;
    enroll_req rq;
    int rc;

    make_req(e, &rq);
    rc = key_hash(r->key, want);
    if (rc != P11CA_OK)
        goto out;
    if (resume)
        rc = enroll_find_for_key(e->env->is, r->client_id, want, &r->cert);
    r->reused = r->cert != NULL;
    if (rc == P11CA_OK && !r->cert && resume)
        rc = enroll_check(e->env->is, &rq, NULL);
    if (rc == P11CA_OK && !r->cert) {
        uri = p11_obj_uri(r->key);
        rc = uri ? enroll_csr_make(uri, e->env->module, e->env->single_session,
                                   e->env->pin, e->env->pin_arg, e->subject,
                                   &csr, &len)
                 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        if (rc == P11CA_OK)
            rc = enroll_issue(e->env->is, &rq, csr, len, &r->cert);
    }
    if (rc != P11CA_OK) {
        rc = wrap(rc, "enroll");
        goto out;
    }
    enroll_serial(r->cert, r->serial, sizeof(r->serial));
    rc = enroll_spki_sha256(X509_get0_pubkey(r->cert), got);
    if (rc == P11CA_OK && strcmp(want, got) != 0)
        rc = p11ca_err_set(
            P11CA_E_INTERNAL,
            "certificate %s from %s does not carry the public key of the token key: nothing was written",
            r->serial, enroll_issuer_name(e->env->is));
    if (rc != P11CA_OK)
        rc = wrap(rc, "enroll");
out:
    OPENSSL_free(csr);
    free(uri);
    return rc;
}

/* The certificate object of r->cert on the token (written before). */
static int find_cert_obj(struct enr *e, const char *label)
{
    enroll_result *r = e->r;
    size_t id_len = 0, n = 0;
    const unsigned char *id = p11_obj_id(r->key, &id_len);
    p11_obj **objs = NULL;
    X509 *x;
    CK_RV rv;

    rv = enroll_find_objs(e->env->p11, e->env->tok, CKO_CERTIFICATE, id, id_len,
                          label, false, &objs, &n);
    for (size_t i = 0; rv == CKR_OK && i < n && !r->cert_obj; i++) {
        x = enroll_cert_x509(objs[i]);
        if (x && X509_cmp(x, r->cert) == 0)
            r->cert_obj = p11_obj_ref(objs[i]);
        X509_free(x);
    }
    enroll_objs_free(objs, n);
    if (rv == CKR_OK && !r->cert_obj)
        rv = p11_error_set(
            P11_RV_NO_OBJECT, NULL, e->env->tok, NULL,
            "certificate %s is on the token under another id or label",
            r->serial);
    return rv == CKR_OK ? P11CA_OK : fail_rv(rv, "enroll");
}

/* Write r->cert next to r->key: the key's CKA_ID, @label. */
static int write_cert(struct enr *e, const char *label)
{
    enroll_result *r = e->r;
    size_t id_len = 0;
    const unsigned char *id = p11_obj_id(r->key, &id_len);
    unsigned char *der = NULL;
    int n = i2d_X509(r->cert, &der);
    CK_RV rv = CKR_OK;
    int rc;

    if (n <= 0) {
        rc = p11ca_err_set(P11CA_E_INTERNAL,
                           "enroll: cannot encode the certificate");
        goto out;
    }
    rv = p11_cert_import(e->env->tok, e->env->auth, der, (size_t)n, label, id,
                         id_len, false, &r->cert_obj);
    if (rv == P11_RV_EXISTS) {
        rc = find_cert_obj(e, label);
        goto out;
    }
    if (rv == CKR_OK) {
        rc = P11CA_OK;
        goto out;
    }
    /* Two messages: what the token said, then the way out. */
    rc = enroll_rc_from_rv(rv);
    note(e, rc, "enroll: writing certificate %s to %s: %s", r->serial,
         tok_desc(e), p11_error_message());
    rc = p11ca_err_set(
        rc,
        "key \"%s\" stays on the token without a certificate; %s has recorded certificate %s for it. Run the same command with --resume to write it, or with --cleanup to delete the key and start over.",
        label, enroll_issuer_name(e->env->is), r->serial);
out:
    OPENSSL_free(der);
    return rc;
}

/* The CA certificates as authority objects, unless the token has them. */
static int write_chain(struct enr *e)
{
    STACK_OF(X509) *sk = NULL;
    int rc = enroll_chain(e->env->is, &sk);
    CK_RV rv = CKR_OK;

    if (rc != P11CA_OK) {
        rc = wrap(rc, "enroll");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(sk) && rv == CKR_OK; i++) {
        X509 *x = sk_X509_value(sk, i);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
        unsigned char *der = NULL;
        char cn[128] = "CA";
        int n = i2d_X509(x, &der);

        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                  sizeof(cn));
        rv = n > 0
                 ? p11_cert_import(e->env->tok, e->env->auth, der, (size_t)n,
                                   cn, ski ? ASN1_STRING_get0_data(ski) : NULL,
                                   ski ? (size_t)ASN1_STRING_length(ski) : 0,
                                   true, NULL)
                 : P11_RV_BAD_INPUT;
        if (rv == CKR_OK)
            e->r->chain_written++;
        else if (rv == P11_RV_EXISTS)
            rv = CKR_OK;
        OPENSSL_free(der);
    }
    if (rv != CKR_OK)
        rc = fail_rv(rv, "enroll: writing the CA certificates");
out:
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

static int keygen(struct enr *e, const char *label)
{
    CK_RV rv = p11_keygen(e->env->tok, e->env->auth, &e->spec, label, NULL, 0,
                          false, NULL, &e->r->key);

    return rv == CKR_OK ? P11CA_OK : fail_rv(rv, "enroll: key generation");
}

/*
 * Cleanup: what the issuer made for the key of @p is revoked first (the
 * key is about to go, and its client ID must be free again), then the
 * objects are destroyed.
 */
static int cleanup_pair(struct enr *e, enroll_pair *p)
{
    const char *label = p->priv ? p11_obj_label(p->priv) : e->r->label;
    char hex[65], serial[64], why[400];
    X509 *x = NULL;
    int rc = P11CA_OK;
    CK_RV rv;

    snprintf(
        why, sizeof(why),
        "enroll --cleanup: key \"%s\" deleted from the token before its certificate was written",
        label);
    if (p->priv)
        rc = key_hash(p->priv, hex);
    for (int i = 0; p->priv && rc == P11CA_OK && i < MAX_RETIRE; i++) {
        rc = enroll_find_for_key(e->env->is, e->r->client_id, hex, &x);
        if (rc != P11CA_OK || !x)
            break;
        enroll_serial(x, serial, sizeof(serial));
        X509_free(x);
        x = NULL;
        rc = enroll_retire(e->env->is, serial, why);
        if (rc == P11CA_OK)
            note(e, P11CA_OK,
                 "revoked certificate %s, issued for the deleted key", serial);
    }
    if (rc != P11CA_OK) {
        rc = wrap(rc, "enroll --cleanup");
        goto out;
    }
    rv = enroll_pair_destroy(p, e->env->auth, NULL, true);
    if (rv != CKR_OK) {
        rc = fail_rv(rv, "enroll --cleanup");
        goto out;
    }
    note(e, P11CA_OK, "removed the unfinished enrollment \"%s\" from %s", label,
         tok_desc(e));
    enroll_pair_clear(p);
out:
    return rc;
}

/* P11CA_E_INPUT with what the token holds and the ways out. */
static int unfinished(struct enr *e, const enroll_pair *p, const char *how)
{
    static const char hx[] = "0123456789abcdef";
    size_t id_len = 0;
    const unsigned char *id = p->priv ? p11_obj_id(p->priv, &id_len) : NULL;
    char *hex = malloc(2 * id_len + 1);
    int rc;

    for (size_t i = 0; hex && id && i < id_len; i++) {
        hex[2 * i] = hx[id[i] >> 4];
        hex[2 * i + 1] = hx[id[i] & 15];
    }
    if (hex)
        hex[id ? 2 * id_len : 0] = '\0';
    if (p->priv)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "enroll: %s holds key \"%s\" (id %s) without a certificate: an earlier enrollment did not finish. Run the same command with --resume to finish it with that key, or with --cleanup to delete it and %s.",
            tok_desc(e), p11_obj_label(p->priv), hex ? hex : "", how);
    else
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "enroll: %s holds a certificate labelled \"%s\" without its key. Run the same command with --cleanup to delete it and %s.",
            tok_desc(e), p11_obj_label(p->certs[0]), how);
    free(hex);
    return rc;
}

/* The certificate of @p that holds the client ID, else the newest. */
static int pick_current(struct enr *e, enroll_pair *p)
{
    char serial[64];
    reg_cert rec = {0};
    int found = -1;

    for (size_t i = 0; i < p->n && found < 0; i++) {
        if (!p->x509[i])
            continue;
        enroll_serial(p->x509[i], serial, sizeof(serial));
        if (enroll_get(e->env->is, serial, &rec) == P11CA_OK
            && rec.status == REG_ACTIVATED)
            found = (int)i;
        reg_cert_clear(&rec);
    }
    p11ca_err_clear();
    return found >= 0 ? found : enroll_pair_newest(p);
}

/* Renewals: the enrolled key labelled r->label and its certificate. */
static int load_enrolled(struct enr *e)
{
    const char *label = e->r->label;
    CK_RV rv = enroll_pair_load(e->env->p11, e->env->tok, label, &e->cur);
    int i = -1, rc = P11CA_OK;

    if (rv != CKR_OK)
        rc = fail_rv(rv, "enroll");
    else if (!e->cur.priv)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "enroll: %s has no key labelled \"%s\": nothing to renew (p11ca token show lists the token)",
            tok_desc(e), label);
    else if (!e->cur.n)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "enroll: %s holds key \"%s\" without a certificate: an earlier enrollment did not finish, and there is nothing to renew yet. Finish it with p11ca enroll --resume (with its --profile and --subject), or delete it with --cleanup.",
            tok_desc(e), label);
    if (rc == P11CA_OK && (i = pick_current(e, &e->cur)) < 0)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "enroll: the certificate of key \"%s\" cannot be read", label);
    if (rc == P11CA_OK)
        rc = names_from(e, e->cur.x509[i]);
    return rc;
}

/* Certificate, write under @label, chain. */
static int finish(struct enr *e, bool resume, const char *label)
{
    int rc = obtain_cert(e, resume);

    if (rc == P11CA_OK)
        rc = write_cert(e, label);
    if (rc == P11CA_OK && e->a->with_chain)
        rc = write_chain(e);
    return rc;
}

enroll_step enroll_step_for(bool key, size_t certs, bool resume, bool cleanup)
{
    bool left = key || certs;
    enroll_step step = ENROLL_STEP_NEW_KEY;

    if (key && resume)
        step = ENROLL_STEP_RESUME;
    else if (left && !cleanup)
        step = ENROLL_STEP_UNFINISHED;
    else if (resume)
        step = ENROLL_STEP_NO_RESUME;
    else if (left)
        step = ENROLL_STEP_CLEANUP;
    return step;
}

/*
 * A new key under @label, where the pair @p (loaded from that label) may
 * be left from an enrollment that stopped: taken on resume (*resumed set,
 * no new key), refused without cleanup, removed with it.  The request is
 * checked against the issuer before a key is made.  @cmd and @afresh name
 * the command in messages.
 */
static int new_key(struct enr *e, enroll_pair *p, const char *label,
                   const char *cmd, const char *afresh, bool *resumed)
{
    enroll_step step =
        enroll_step_for(p->priv != NULL, p->n, e->a->resume, e->a->cleanup);
    enroll_req rq;
    int rc = P11CA_OK;

    *resumed = false;
    switch (step) {
    case ENROLL_STEP_RESUME:
        e->r->key = p11_obj_ref(p->priv);
        *resumed = true;
        goto out;
    case ENROLL_STEP_UNFINISHED:
        rc = unfinished(e, p, afresh);
        goto out;
    case ENROLL_STEP_NO_RESUME:
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "%s --resume: %s has no key labelled \"%s\": nothing to resume",
            cmd, tok_desc(e), label);
        goto out;
    case ENROLL_STEP_CLEANUP:
        rc = cleanup_pair(e, p);
        break;
    case ENROLL_STEP_NEW_KEY:
        break;
    }
    make_req(e, &rq);
    if (rc == P11CA_OK && (rc = enroll_check(e->env->is, &rq, &e->spec)))
        rc = wrap(rc, cmd);
    if (rc == P11CA_OK)
        rc = keygen(e, label);
out:
    return rc;
}

static int flow_enroll(struct enr *e)
{
    CK_RV rv = enroll_pair_load(e->env->p11, e->env->tok, e->r->label, &e->cur);
    bool resumed = false;
    int rc = P11CA_OK;

    if (rv != CKR_OK)
        rc = fail_rv(rv, "enroll");
    else if (e->cur.priv && e->cur.n)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "enroll: %s has key \"%s\" with a certificate already: use --renew or --rekey (p11ca token show lists it)",
            tok_desc(e), e->r->label);
    if (rc == P11CA_OK)
        rc = new_key(e, &e->cur, e->r->label, "enroll", "enroll afresh",
                     &resumed);
    e->r->action = resumed ? "resumed" : "enrolled";
    if (rc == P11CA_OK)
        rc = finish(e, resumed, e->r->label);
    return rc;
}

/* The new certificate is on the token beside its key (e->r->key): the
 * issuer swaps it in for the old one (the service, once the card has shown
 * it holds both). */
static int supersede(struct enr *e)
{
    char *uri = p11_obj_uri(e->r->key);
    int rc;

    if (!uri)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = enroll_supersede(e->env->is, e->r->serial, e->r->old_serial, uri);
    free(uri);
    return rc;
}

static int flow_renew(struct enr *e)
{
    enroll_result *r = e->r;
    enroll_req rq;
    int rc = load_enrolled(e);

    make_req(e, &rq);
    if (rc == P11CA_OK && (rc = enroll_check(e->env->is, &rq, NULL)))
        rc = wrap(rc, "enroll --renew");
    if (rc != P11CA_OK)
        goto out;
    r->key = p11_obj_ref(e->cur.priv);
    r->action = "renewed";
    rc = finish(e, false, r->label);
    /* The new certificate is on the token: the registry moves the client
     * ID to it, then the old certificate objects go. */
    if (rc == P11CA_OK && r->old_serial[0] && (rc = supersede(e)))
        rc = wrap(rc, "enroll --renew");
    if (rc == P11CA_OK
        && enroll_pair_destroy(&e->cur, e->env->auth, r->cert_obj, false)
               != CKR_OK)
        rc = fail_rv(p11_error_rv(),
                     "enroll --renew: removing the old certificate");
out:
    return rc;
}

/* Re-key, first part: the new key under its work label (or the one an
 * earlier run left there, on resume / cleanup). */
static int rekey_new_key(struct enr *e, const char *work, bool *resume)
{
    CK_RV rv = enroll_pair_load(e->env->p11, e->env->tok, work, &e->pend);
    int rc;

    *resume = false;
    if (rv != CKR_OK)
        rc = fail_rv(rv, "enroll --rekey");
    else
        rc = new_key(e, &e->pend, work, "enroll --rekey", "re-key afresh",
                     resume);
    return rc;
}

/* Re-key, last part: the old objects go (or step aside), the new ones
 * take the label. */
static int rekey_swap(struct enr *e)
{
    enroll_result *r = e->r;
    char old[300], serial[REG_SERIAL_TEXT_MAX];
    int rc = P11CA_OK;
    CK_RV rv;

    /* The old serial's first digits, as p11ca prints serials. */
    reg_serial_text(r->old_serial, serial, sizeof(serial));
    snprintf(old, sizeof(old), "%s.old-%.8s", r->label,
             r->old_serial[0] ? serial : "unknown");
    if (e->a->remove_old)
        rv = enroll_pair_destroy(&e->cur, e->env->auth, NULL, true);
    else
        rv = enroll_pair_relabel(&e->cur, e->env->auth, old);
    if (rv == CKR_OK)
        rv = enroll_pair_for_key(e->env->p11, r->key, &e->pend);
    if (rv == CKR_OK)
        rv = enroll_pair_relabel(&e->pend, e->env->auth, r->label);
    if (rv != CKR_OK) {
        rc = fail_rv(rv, "enroll --rekey: swapping the old and new objects");
        goto out;
    }
    /* The outcome names the objects by their new label. */
    p11_obj_unref(r->cert_obj);
    r->cert_obj = NULL;
    for (size_t i = 0; i < e->pend.n && !r->cert_obj; i++)
        if (e->pend.x509[i] && X509_cmp(e->pend.x509[i], r->cert) == 0)
            r->cert_obj = p11_obj_ref(e->pend.certs[i]);
    if (!e->a->remove_old)
        note(e, P11CA_OK,
             "the old key and certificate stay on the token as \"%s\"", old);
out:
    return rc;
}

/* The key spec of @priv ("rsa:2048", "ec:P-256", "ed25519") into @spec,
 * "" when it cannot be told. */
static void old_key_spec(p11_obj *priv, char *spec, size_t len)
{
    unsigned bits = 0;
    int nid = NID_undef;

    spec[0] = '\0';
    if (p11_obj_key_info(priv, &bits, &nid) != CKR_OK)
        p11_error_clear();
    else if (p11_obj_key_type(priv) == CKK_RSA)
        snprintf(spec, len, "rsa:%u", bits);
    else if (p11_obj_key_type(priv) == CKK_EC && OBJ_nid2sn(nid))
        snprintf(spec, len, "ec:%s", OBJ_nid2sn(nid));
    else if (nid == NID_ED25519)
        snprintf(spec, len, "ed25519");
}

/* The key type asked, else the type of the old key (a card may make only
 * that one), else the profile's default. */
static int rekey_key_type(struct enr *e)
{
    char spec[32] = "";
    int rc;

    if (!e->a->key_type)
        old_key_spec(e->cur.priv, spec, sizeof(spec));
    if (spec[0] && p11_key_spec_parse(spec, &e->spec) == CKR_OK) {
        rc = P11CA_OK;
    } else {
        if (spec[0])
            p11_error_clear();
        rc = key_type(e);
    }
    return rc;
}

static int flow_rekey(struct enr *e)
{
    char work[300];
    bool resume = false;
    int rc = load_enrolled(e);

    snprintf(work, sizeof(work), "%s" REKEY_SUFFIX, e->r->label);
    if (rc == P11CA_OK)
        rc = rekey_key_type(e);
    if (rc == P11CA_OK)
        rc = rekey_new_key(e, work, &resume);
    e->r->action = "rekeyed";
    if (rc == P11CA_OK)
        rc = finish(e, resume, work);
    if (rc == P11CA_OK && e->r->old_serial[0] && (rc = supersede(e)))
        rc = wrap(rc, "enroll --rekey");
    if (rc == P11CA_OK)
        rc = rekey_swap(e);
    return rc;
}

/* The first CN of @n into @buf; false when there is none. */
static bool name_cn(const X509_NAME *n, char *buf, size_t len)
{
    return n && X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int)len) > 0;
}

/* The subject /CN=@client_id: one attribute holding the client ID as it
 * is.  It is not parsed as a name, so a '/', '=', ',' or '+' in it stays
 * part of the value and never makes an attribute of its own. */
static int client_subject(const char *client_id, X509_NAME **out)
{
    X509_NAME *n = X509_NAME_new();
    int rc = P11CA_OK;

    *out = NULL;
    /* A value OpenSSL refuses is bad input: keep the error queue clean. */
    ERR_set_mark();
    if (!n)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    else if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                         (const unsigned char *)client_id, -1,
                                         -1, 0))
        /* Not UTF-8, or past the 64 characters of a CN (RFC 5280). */
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "\"%s\" cannot be a CN (at most 64 UTF-8 characters): give --subject /CN=.. too",
            client_id);
    ERR_pop_to_mark();
    if (rc == P11CA_OK) {
        *out = n;
        n = NULL;
    }
    X509_NAME_free(n);
    return rc;
}

/* Label, client ID and subject from the options (renewals: see
 * names_from for what the old certificate adds). */
static int names(struct enr *e)
{
    const enroll_opts *a = e->a;
    enroll_result *r = e->r;
    char cn[256] = "";
    int rc = P11CA_OK;

    if (a->client_id && strlen(a->client_id) > ENROLL_CLIENT_ID_MAX)
        rc = p11ca_err_set(
            P11CA_E_USAGE,
            "the client ID is %zu bytes long, more than %d: give a shorter --client-id",
            strlen(a->client_id), ENROLL_CLIENT_ID_MAX);
    else if (a->subject && (rc = enroll_name_parse(a->subject, &e->subject)))
        rc = wrap(rc, "enroll: --subject");
    if (rc != P11CA_OK)
        goto out;
    name_cn(e->subject, cn, sizeof(cn));
    snprintf(r->client_id, sizeof(r->client_id), "%s",
             a->client_id ? a->client_id : cn);
    snprintf(r->label, sizeof(r->label), "%s",
             a->label ? a->label : r->client_id);
    if (!r->label[0])
        rc = p11ca_err_set(P11CA_E_USAGE,
                           "give --subject /CN=.., --client-id or --label");
    else if (strlen(r->label) > P11_MAX_LABEL_LEN - 16)
        rc = p11ca_err_set(
            P11CA_E_USAGE,
            "the label \"%s\" is longer than %d bytes: give a shorter --label",
            r->label, P11_MAX_LABEL_LEN - 16);
    if (rc != P11CA_OK || a->mode != ENROLL_NEW)
        goto out;
    if (!r->client_id[0]) {
        rc = p11ca_err_set(P11CA_E_USAGE,
                           "give --client-id, or --subject with a CN");
        goto out;
    }
    if (!e->subject && (rc = client_subject(r->client_id, &e->subject)))
        rc = wrap(rc, "enroll: --client-id");
    else if (!a->profile)
        rc = p11ca_err_set(P11CA_E_USAGE, "give --profile NAME (e.g. client)");
    else if (!(r->profile = strdup(a->profile)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
out:
    return rc;
}

/* Client ID, subject and profile of the certificate @x being renewed,
 * where the options left them open; r->old_serial when the issuer knows
 * it. */
static int names_from(struct enr *e, X509 *x)
{
    const enroll_opts *a = e->a;
    enroll_result *r = e->r;
    char serial[64], cn[256] = "";
    reg_cert rec = {0};
    int rc;

    rc = enroll_get(e->env->is, enroll_serial(x, serial, sizeof(serial)), &rec);
    if (rc == P11CA_OK)
        snprintf(r->old_serial, sizeof(r->old_serial), "%s", rec.serial);
    else if (rc != P11CA_E_NOTFOUND) {
        rc = wrap(rc, "enroll");
        goto out;
    } else
        note(
            e, P11CA_OK,
            "note: certificate %s is unknown to %s: the new one will not be linked to it",
            serial, enroll_issuer_name(e->env->is));
    name_cn(X509_get_subject_name(x), cn, sizeof(cn));
    if (!a->client_id)
        snprintf(r->client_id, sizeof(r->client_id), "%s",
                 rc == P11CA_OK && rec.client_id ? rec.client_id : cn);
    if (!e->subject)
        e->subject = X509_NAME_dup(X509_get_subject_name(x));
    if (!r->profile)
        r->profile = a->profile                      ? strdup(a->profile)
                     : rc == P11CA_OK && rec.profile ? strdup(rec.profile)
                                                     : NULL;
    if (!e->subject)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    else if (!r->profile && (a->profile || (rc == P11CA_OK && rec.profile)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    else if (!r->profile)
        rc = p11ca_err_set(
            P11CA_E_USAGE,
            "give --profile: the registry does not know the certificate being replaced");
    else
        rc = P11CA_OK;
out:
    reg_cert_clear(&rec);
    return rc;
}

/* The key type asked, else the profile's first key type. */
static int key_type(struct enr *e)
{
    p11_key_spec spec;
    int rc = P11CA_OK;

    if (e->a->key_type) {
        if (p11_key_spec_parse(e->a->key_type, &e->spec) != CKR_OK)
            rc = fail_rv(p11_error_rv(), "enroll: --type");
        goto out;
    }
    /* Into a local, and e->spec only when it worked. */
    if (e->r->profile)
        rc = enroll_default_key(e->env->is, e->r->profile, &spec);
    if (rc != P11CA_OK)
        rc = wrap(rc, "enroll");
    else if (e->r->profile)
        e->spec = spec;
out:
    return rc;
}

int enroll_run(const enroll_env *env, const enroll_opts *o, enroll_result *res)
{
    struct enr e = {.env = env, .a = o, .r = res};
    int rc;

    memset(res, 0, sizeof(*res));
    return_val_if_fail(env && env->p11 && env->tok && env->is && o,
                       p11ca_err_set(P11CA_E_INTERNAL, "enroll: bad call"));
    rc = names(&e);
    if (rc == P11CA_OK && o->mode == ENROLL_NEW)
        rc = key_type(&e);
    if (rc == P11CA_OK && o->mode == ENROLL_RENEW)
        rc = flow_renew(&e);
    else if (rc == P11CA_OK && o->mode == ENROLL_REKEY)
        rc = flow_rekey(&e);
    else if (rc == P11CA_OK)
        rc = flow_enroll(&e);
    enroll_pair_clear(&e.cur);
    enroll_pair_clear(&e.pend);
    X509_NAME_free(e.subject);
    if (rc != P11CA_OK)
        enroll_result_clear(res);
    return rc;
}

void enroll_result_clear(enroll_result *res)
{
    if (!res)
        return;
    p11_obj_unref(res->key);
    p11_obj_unref(res->cert_obj);
    X509_free(res->cert);
    free(res->profile);
    memset(res, 0, sizeof(*res));
}
