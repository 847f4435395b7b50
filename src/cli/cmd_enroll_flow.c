/* SPDX-License-Identifier: Apache-2.0 */
/* The steps of p11ca enroll: key on the token, CSR, certificate from the
 * issuer, check, write; unfinished enrollments resumed or cleaned up;
 * renewal (same key) and re-key (new key). */
#include "config.h"

#include "cmd_enroll.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#define REKEY_SUFFIX ".rekey"
#define MAX_RETIRE   16

static int key_hash(p11_obj *key, char hex[65]);
static void enr_req(struct enr *e, enroll_req *rq);
static int obtain_cert(struct enr *e, bool resume);
static int find_cert_obj(struct enr *e, const char *label);
static int write_cert(struct enr *e, const char *label);
static int write_chain(struct enr *e);
static int keygen(struct enr *e, const char *label);
static int cleanup_pair(struct enr *e, struct enr_pair *p);
static int unfinished(struct enr *e, const struct enr_pair *p, const char *how);
static int pick_current(struct enr *e, struct enr_pair *p);
static int load_enrolled(struct enr *e);
static int finish(struct enr *e, bool resume, const char *label);
static int rekey_key_type(struct enr *e);

/* Hex SHA-256 of the key's SubjectPublicKeyInfo, read from the token. */
static int key_hash(p11_obj *key, char hex[65])
{
    EVP_PKEY *pk = NULL;
    CK_RV rv = p11_obj_public_key(key, NULL, NULL, &pk);
    int rc;

    if (rv != CKR_OK)
        return cli_fail(rv, "enroll: reading the public key");
    rc = enroll_spki_sha256(pk, hex);
    EVP_PKEY_free(pk);
    if (rc != P11CA_OK)
        return cli_error(rc, "enroll: %s", p11ca_err_message());
    return P11CA_OK;
}

static void enr_req(struct enr *e, enroll_req *rq)
{
    rq->profile = e->profile;
    rq->client_id = e->client_id;
    rq->days = e->a.days;
    rq->wait = e->a.wait;
    rq->replaces = e->old_serial[0] ? e->old_serial : NULL;
    rq->subject = e->subject;
}

/*
 * The certificate for e->key: on --resume the one the issuer made for this
 * key before, else a new one for a CSR the key signs.  Either way it must
 * carry the token's public key before anything is written.
 */
static int obtain_cert(struct enr *e, bool resume)
{
    char want[65], got[65];
    unsigned char *csr = NULL;
    size_t len = 0;
    char *uri = NULL;
    enroll_req rq;
    int rc;

    enr_req(e, &rq);
    rc = key_hash(e->key, want);
    if (rc == P11CA_OK && resume)
        rc = enroll_find_for_key(e->is, e->client_id, want, &e->cert);
    e->reused = e->cert != NULL;
    if (rc == P11CA_OK && !e->cert && resume)
        rc = enroll_check(e->is, &rq, NULL);
    if (rc == P11CA_OK && !e->cert) {
        uri = p11_obj_uri(e->key);
        rc = uri ? enroll_csr_make(uri, e->cli->module, enr_store_pin, e,
                                   e->subject, &csr, &len)
                 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        if (rc == P11CA_OK)
            rc = enroll_issue(e->is, &rq, csr, len, &e->cert);
    }
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "enroll: %s", p11ca_err_message());
        goto out;
    }
    enr_serial(e->cert, e->serial, sizeof(e->serial));
    rc = enroll_spki_sha256(X509_get0_pubkey(e->cert), got);
    if (rc == P11CA_OK && strcmp(want, got) != 0)
        rc = p11ca_err_set(
            P11CA_E_INTERNAL,
            "certificate %s from %s does not carry the public key of the token key: nothing was written",
            e->serial, enroll_issuer_name(e->is));
    if (rc != P11CA_OK)
        rc = cli_error(rc, "enroll: %s", p11ca_err_message());
out:
    OPENSSL_free(csr);
    free(uri);
    return rc;
}

/* The certificate object of e->cert on the token (written before). */
static int find_cert_obj(struct enr *e, const char *label)
{
    size_t id_len = 0, n = 0;
    const unsigned char *id = p11_obj_id(e->key, &id_len);
    p11_obj **objs = NULL;
    X509 *x;
    CK_RV rv;

    rv = enr_find(e->cli->p11, e->tok, CKO_CERTIFICATE, id, id_len, label,
                  false, &objs, &n);
    for (size_t i = 0; rv == CKR_OK && i < n && !e->cert_obj; i++) {
        x = enr_cert_x509(objs[i]);
        if (x && X509_cmp(x, e->cert) == 0)
            e->cert_obj = p11_obj_ref(objs[i]);
        X509_free(x);
    }
    enr_objs_free(objs, n);
    if (rv == CKR_OK && !e->cert_obj)
        rv = p11_error_set(
            P11_RV_NO_OBJECT, NULL, e->tok, NULL,
            "certificate %s is on the token under another id or label",
            e->serial);
    return rv == CKR_OK ? P11CA_OK : cli_fail(rv, "enroll");
}

/* Write e->cert next to e->key: the key's CKA_ID, @label. */
static int write_cert(struct enr *e, const char *label)
{
    size_t id_len = 0;
    const unsigned char *id = p11_obj_id(e->key, &id_len);
    unsigned char *der = NULL;
    int n = i2d_X509(e->cert, &der);
    CK_RV rv;

    if (n <= 0)
        return cli_error(P11CA_E_INTERNAL,
                         "enroll: cannot encode the certificate");
    rv = p11_cert_import(e->tok, &e->auth, der, (size_t)n, label, id, id_len,
                         false, &e->cert_obj);
    OPENSSL_free(der);
    if (rv == P11_RV_EXISTS)
        return find_cert_obj(e, label);
    if (rv == CKR_OK)
        return P11CA_OK;
    /* Two lines: cli_error escapes a newline inside a message. */
    cli_error(cli_rc_from_rv(rv), "enroll: writing certificate %s to %s: %s",
              e->serial, p11_token_describe(e->tok), p11_error_message());
    return cli_error(
        cli_rc_from_rv(rv),
        "key \"%s\" stays on the token without a certificate; %s has recorded certificate %s for it. Run the same command with --resume to write it, or with --cleanup to delete the key and start over.",
        label, enroll_issuer_name(e->is), e->serial);
}

/* The CA certificates as authority objects, unless the token has them. */
static int write_chain(struct enr *e)
{
    STACK_OF(X509) *sk = NULL;
    int rc = enroll_chain(e->is, &sk);
    CK_RV rv = CKR_OK;

    if (rc != P11CA_OK)
        return cli_error(rc, "enroll: %s", p11ca_err_message());
    for (int i = 0; i < sk_X509_num(sk) && rv == CKR_OK; i++) {
        X509 *x = sk_X509_value(sk, i);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
        unsigned char *der = NULL;
        char cn[128] = "CA";
        int n = i2d_X509(x, &der);

        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                  sizeof(cn));
        rv = n > 0 ? p11_cert_import(e->tok, &e->auth, der, (size_t)n, cn,
                                     ski ? ASN1_STRING_get0_data(ski) : NULL,
                                     ski ? (size_t)ASN1_STRING_length(ski) : 0,
                                     true, NULL)
                   : P11_RV_BAD_INPUT;
        if (rv == CKR_OK)
            e->chain_written++;
        else if (rv == P11_RV_EXISTS)
            rv = CKR_OK;
        OPENSSL_free(der);
    }
    sk_X509_pop_free(sk, X509_free);
    return rv == CKR_OK ? P11CA_OK
                        : cli_fail(rv, "enroll: writing the CA certificates");
}

static int keygen(struct enr *e, const char *label)
{
    CK_RV rv = p11_keygen(e->tok, &e->auth, &e->spec, label, NULL, 0, false,
                          NULL, &e->key);

    return rv == CKR_OK ? P11CA_OK : cli_fail(rv, "enroll: key generation");
}

/*
 * --cleanup: what the issuer made for the key of @p is revoked first (the
 * key is about to go, and its client ID must be free again), then the
 * objects are destroyed.
 */
static int cleanup_pair(struct enr *e, struct enr_pair *p)
{
    char hex[65], serial[64], why[400];
    X509 *x = NULL;
    int rc = P11CA_OK;
    CK_RV rv;

    snprintf(
        why, sizeof(why),
        "enroll --cleanup: key \"%s\" deleted from the token before its certificate was written",
        p->priv ? p11_obj_label(p->priv) : e->label);
    if (p->priv)
        rc = key_hash(p->priv, hex);
    for (int i = 0; p->priv && rc == P11CA_OK && i < MAX_RETIRE; i++) {
        rc = enroll_find_for_key(e->is, e->client_id, hex, &x);
        if (rc != P11CA_OK || !x)
            break;
        enr_serial(x, serial, sizeof(serial));
        X509_free(x);
        x = NULL;
        rc = enroll_retire(e->is, serial, why);
        if (rc == P11CA_OK)
            fprintf(
                stderr,
                "p11ca: revoked certificate %s, issued for the deleted key\n",
                serial);
    }
    if (rc != P11CA_OK)
        return cli_error(rc, "enroll --cleanup: %s", p11ca_err_message());
    rv = enr_pair_destroy(p, &e->auth, NULL, true);
    if (rv != CKR_OK)
        return cli_fail(rv, "enroll --cleanup");
    fprintf(stderr, "p11ca: removed the unfinished enrollment \"%s\" from %s\n",
            p->priv ? p11_obj_label(p->priv) : e->label,
            p11_token_describe(e->tok));
    enr_pair_clear(p);
    return P11CA_OK;
}

/* Exit 2 with what the token holds and the ways out. */
static int unfinished(struct enr *e, const struct enr_pair *p, const char *how)
{
    size_t id_len = 0;
    const unsigned char *id = p->priv ? p11_obj_id(p->priv, &id_len) : NULL;
    char *hex = cli_hex(id ? id : (const unsigned char *)"", id_len);
    int rc;

    if (p->priv)
        rc = cli_error(
            P11CA_E_INPUT,
            "enroll: %s holds key \"%s\" (id %s) without a certificate: an earlier enrollment did not finish. Run the same command with --resume to finish it with that key, or with --cleanup to delete it and %s.",
            p11_token_describe(e->tok), p11_obj_label(p->priv), hex ? hex : "",
            how);
    else
        rc = cli_error(
            P11CA_E_INPUT,
            "enroll: %s holds a certificate labelled \"%s\" without its key. Run the same command with --cleanup to delete it and %s.",
            p11_token_describe(e->tok), p11_obj_label(p->certs[0]), how);
    free(hex);
    return rc;
}

/* The certificate of @p that holds the client ID, else the newest. */
static int pick_current(struct enr *e, struct enr_pair *p)
{
    char serial[64];
    reg_cert rec = {0};
    int found = -1;

    for (size_t i = 0; i < p->n && found < 0; i++) {
        if (!p->x509[i])
            continue;
        enr_serial(p->x509[i], serial, sizeof(serial));
        if (enroll_get(e->is, serial, &rec) == P11CA_OK
            && rec.status == REG_ACTIVATED)
            found = (int)i;
        reg_cert_clear(&rec);
    }
    p11ca_err_clear();
    return found >= 0 ? found : enr_pair_newest(p);
}

/* Renewals: the enrolled key labelled e->label and its certificate. */
static int load_enrolled(struct enr *e)
{
    CK_RV rv = enr_pair_load(e->cli->p11, e->tok, e->label, &e->cur);
    int i;

    if (rv != CKR_OK)
        return cli_fail(rv, "enroll");
    if (!e->cur.priv)
        return cli_error(
            P11CA_E_INPUT,
            "enroll: %s has no key labelled \"%s\": nothing to renew (p11ca token show lists the token)",
            p11_token_describe(e->tok), e->label);
    if (!e->cur.n)
        return cli_error(
            P11CA_E_INPUT,
            "enroll: %s holds key \"%s\" without a certificate: an earlier enrollment did not finish, and there is nothing to renew yet. Finish it with p11ca enroll --resume (with its --profile and --subject), or delete it with --cleanup.",
            p11_token_describe(e->tok), e->label);
    i = pick_current(e, &e->cur);
    if (i < 0)
        return cli_error(P11CA_E_INPUT,
                         "enroll: the certificate of key \"%s\" cannot be read",
                         e->label);
    return enr_names_from(e, e->cur.x509[i]);
}

/* Certificate, write under @label, chain. */
static int finish(struct enr *e, bool resume, const char *label)
{
    int rc = obtain_cert(e, resume);

    if (rc == P11CA_OK)
        rc = write_cert(e, label);
    if (rc == P11CA_OK && e->a.with_chain)
        rc = write_chain(e);
    return rc;
}

/*
 * A new key under @label, where the pair @p (loaded from that label) may
 * be left from an enrollment that stopped: taken on --resume (*resumed
 * set, no new key), refused without --cleanup, removed with it.  The
 * request is checked against the CA before a key is made.  @cmd and
 * @afresh name the command in messages.
 */
static int new_key(struct enr *e, struct enr_pair *p, const char *label,
                   const char *cmd, const char *afresh, bool *resumed)
{
    bool left = p->priv || p->n;
    enroll_req rq;
    int rc = P11CA_OK;

    *resumed = false;
    if (p->priv && e->a.resume) {
        e->key = p11_obj_ref(p->priv);
        *resumed = true;
        return P11CA_OK;
    }
    if (left && !e->a.cleanup)
        return unfinished(e, p, afresh);
    if (e->a.resume)
        return cli_error(
            P11CA_E_INPUT,
            "%s --resume: %s has no key labelled \"%s\": nothing to resume",
            cmd, p11_token_describe(e->tok), label);
    if (left)
        rc = cleanup_pair(e, p);
    enr_req(e, &rq);
    if (rc == P11CA_OK && (rc = enroll_check(e->is, &rq, &e->spec)))
        rc = cli_error(rc, "%s: %s", cmd, p11ca_err_message());
    return rc == P11CA_OK ? keygen(e, label) : rc;
}

int enr_flow_enroll(struct enr *e)
{
    CK_RV rv = enr_pair_load(e->cli->p11, e->tok, e->label, &e->cur);
    bool resumed;
    int rc;

    if (rv != CKR_OK)
        return cli_fail(rv, "enroll");
    if (e->cur.priv && e->cur.n)
        return cli_error(
            P11CA_E_INPUT,
            "enroll: %s has key \"%s\" with a certificate already: use --renew or --rekey (p11ca token show lists it)",
            p11_token_describe(e->tok), e->label);
    rc = new_key(e, &e->cur, e->label, "enroll", "enroll afresh", &resumed);
    e->action = resumed ? "resumed" : "enrolled";
    return rc == P11CA_OK ? finish(e, resumed, e->label) : rc;
}

int enr_flow_renew(struct enr *e)
{
    enroll_req rq;
    int rc = load_enrolled(e);

    enr_req(e, &rq);
    if (rc == P11CA_OK && (rc = enroll_check(e->is, &rq, NULL)))
        rc = cli_error(rc, "enroll --renew: %s", p11ca_err_message());
    if (rc != P11CA_OK)
        return rc;
    e->key = p11_obj_ref(e->cur.priv);
    e->action = "renewed";
    rc = finish(e, false, e->label);
    /* The new certificate is on the token: the registry moves the client
     * ID to it, then the old certificate objects go. */
    if (rc == P11CA_OK && e->old_serial[0]
        && (rc = enroll_supersede(e->is, e->serial, e->old_serial)))
        rc = cli_error(rc, "enroll --renew: %s", p11ca_err_message());
    if (rc == P11CA_OK
        && enr_pair_destroy(&e->cur, &e->auth, e->cert_obj, false) != CKR_OK)
        rc = cli_fail(p11_error_rv(),
                      "enroll --renew: removing the old certificate");
    return rc;
}

/* Re-key, first part: the new key under its work label (or the one an
 * earlier run left there, on --resume / --cleanup). */
static int rekey_new_key(struct enr *e, const char *work, bool *resume)
{
    CK_RV rv = enr_pair_load(e->cli->p11, e->tok, work, &e->pend);

    *resume = false;
    if (rv != CKR_OK)
        return cli_fail(rv, "enroll --rekey");
    return new_key(e, &e->pend, work, "enroll --rekey", "re-key afresh",
                   resume);
}

/* Re-key, last part: the old objects go (or step aside), the new ones
 * take the label. */
static int rekey_swap(struct enr *e)
{
    char old[300], serial[REG_SERIAL_TEXT_MAX];
    CK_RV rv;

    /* The old serial's first digits, as p11ca prints serials. */
    reg_serial_text(e->old_serial, serial, sizeof(serial));
    snprintf(old, sizeof(old), "%s.old-%.8s", e->label,
             e->old_serial[0] ? serial : "unknown");
    if (e->a.remove_old)
        rv = enr_pair_destroy(&e->cur, &e->auth, NULL, true);
    else
        rv = enr_pair_relabel(&e->cur, &e->auth, old);
    if (rv == CKR_OK)
        rv = enr_pair_for_key(e->cli->p11, e->key, &e->pend);
    if (rv == CKR_OK)
        rv = enr_pair_relabel(&e->pend, &e->auth, e->label);
    if (rv != CKR_OK)
        return cli_fail(rv, "enroll --rekey: swapping the old and new objects");
    /* The report names the objects by their new label. */
    p11_obj_unref(e->cert_obj);
    e->cert_obj = NULL;
    for (size_t i = 0; i < e->pend.n && !e->cert_obj; i++)
        if (e->pend.x509[i] && X509_cmp(e->pend.x509[i], e->cert) == 0)
            e->cert_obj = p11_obj_ref(e->pend.certs[i]);
    if (!e->a.remove_old)
        fprintf(
            stderr,
            "p11ca: the old key and certificate stay on the token as \"%s\"\n",
            old);
    return P11CA_OK;
}

/* --type, else the type of the old key (a card may make only that one),
 * else the profile's default. */
static int rekey_key_type(struct enr *e)
{
    unsigned bits = 0;
    int nid = NID_undef;
    char spec[32] = "";

    if (e->a.type)
        return enr_key_type(e);
    if (p11_obj_key_info(e->cur.priv, &bits, &nid) != CKR_OK)
        p11_error_clear();
    else if (p11_obj_key_type(e->cur.priv) == CKK_RSA)
        snprintf(spec, sizeof(spec), "rsa:%u", bits);
    else if (p11_obj_key_type(e->cur.priv) == CKK_EC && OBJ_nid2sn(nid))
        snprintf(spec, sizeof(spec), "ec:%s", OBJ_nid2sn(nid));
    else if (nid == NID_ED25519)
        snprintf(spec, sizeof(spec), "ed25519");
    if (spec[0] && p11_key_spec_parse(spec, &e->spec) == CKR_OK)
        return P11CA_OK;
    p11_error_clear();
    return enr_key_type(e);
}

int enr_flow_rekey(struct enr *e)
{
    char work[300];
    bool resume = false;
    int rc = load_enrolled(e);

    snprintf(work, sizeof(work), "%s" REKEY_SUFFIX, e->label);
    if (rc == P11CA_OK)
        rc = rekey_key_type(e);
    if (rc == P11CA_OK)
        rc = rekey_new_key(e, work, &resume);
    e->action = "rekeyed";
    if (rc == P11CA_OK)
        rc = finish(e, resume, work);
    if (rc == P11CA_OK && e->old_serial[0]
        && (rc = enroll_supersede(e->is, e->serial, e->old_serial)))
        rc = cli_error(rc, "enroll --rekey: %s", p11ca_err_message());
    if (rc == P11CA_OK)
        rc = rekey_swap(e);
    return rc;
}
