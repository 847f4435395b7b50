/* SPDX-License-Identifier: Apache-2.0 */
/* What p11ca enroll and p11ca token show share: the key/certificate pairs
 * of a token, found by label or CKA_ID, and the objects' certificates. */
#ifndef P11CA_CLI_CMD_ENROLL_H
#define P11CA_CLI_CMD_ENROLL_H

#include <openssl/x509.h>

#include "ca/enroll.h"
#include "cli.h"

/*
 * A private key of a token with its public key and its user certificates
 * (same CKA_ID, not CKA_CERTIFICATE_CATEGORY authority); without a key,
 * the user certificates that carry the label.  References owned.
 */
struct enr_pair {
    p11_obj *priv;
    p11_obj *pub;
    p11_obj **certs;
    X509 **x509; /* parallel to certs; NULL when CKA_VALUE does not parse */
    size_t n;
};

/*
 * enr_find - the objects of @tok of class @cls (-1: any) with @id (may be
 * NULL) and @label (may be NULL).  @login: log in first (private objects).
 * @out gets new references (free each with p11_obj_unref, the array with
 * free).  Returns CKR_OK or the error (set in the p11 layer).
 */
CK_RV enr_find(p11_ctx *ctx, p11_token *tok, CK_OBJECT_CLASS cls,
               const unsigned char *id, size_t id_len, const char *label,
               bool login, p11_obj ***out, size_t *n) P11CA_WUR;

/* enr_objs_free - unref @n objects and free the array. */
void enr_objs_free(p11_obj **objs, size_t n);

/* enr_cert_x509 - the certificate in @cert's CKA_VALUE (NULL: none). */
X509 *enr_cert_x509(p11_obj *cert);

/* enr_cert_is_authority - CKA_CERTIFICATE_CATEGORY is 2 (authority). */
bool enr_cert_is_authority(p11_obj *cert);

/*
 * enr_pair_load - the private key labelled @label on @tok (P11_RV_AMBIGUOUS
 * when several), its public key and certificates; or, with no such key,
 * the certificates labelled @label.  @p is cleared first.
 */
CK_RV enr_pair_load(p11_ctx *ctx, p11_token *tok, const char *label,
                    struct enr_pair *p) P11CA_WUR;

/* enr_pair_for_key - the pair of the private key @priv (reference taken). */
CK_RV enr_pair_for_key(p11_ctx *ctx, p11_obj *priv,
                       struct enr_pair *p) P11CA_WUR;

void enr_pair_clear(struct enr_pair *p);

/* enr_pair_newest - index of the certificate with the latest notBefore,
 * or -1 when there is none. */
int enr_pair_newest(const struct enr_pair *p);

/*
 * enr_pair_destroy - C_DestroyObject of the certificates of @p except
 * @keep (may be NULL), then, with @keys, the public and private key.
 */
CK_RV enr_pair_destroy(struct enr_pair *p, const p11_auth *auth, p11_obj *keep,
                       bool keys) P11CA_WUR;

/* enr_pair_relabel - set CKA_LABEL of every object of @p to @label. */
CK_RV enr_pair_relabel(struct enr_pair *p, const p11_auth *auth,
                       const char *label) P11CA_WUR;

/* enr_time - "2026-05-01 12:00:00 UTC" of @t into @buf. */
const char *enr_time(const ASN1_TIME *t, char *buf, size_t len);

/* enr_serial - lower-case hex of @x's serial, no leading zeros (the
 * registry's form) into @buf. */
const char *enr_serial(X509 *x, char *buf, size_t len);

/* enr_subject - RFC 2253 text of @x's subject (malloc'd). */
char *enr_subject(X509 *x);

/* enr_days_left - whole days until @x expires (negative: expired). */
int enr_days_left(X509 *x);

/* enr_key_desc - "RSA 2048", "EC P-256", "EdDSA Ed25519" of @key. */
const char *enr_key_desc(p11_obj *key, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* One run of p11ca enroll (cmd_enroll.c: options, names, report;      */
/* cmd_enroll_flow.c: enroll, resume, cleanup, renew, rekey)           */
/* ------------------------------------------------------------------ */

struct enr_args {
    const char *token;
    const char *profile;
    const char *subject;
    const char *client_id;
    const char *type;
    const char *label;
    const char *dir;
    const char *ca_pin_source;
    const char *ca_module;
    unsigned days;
    unsigned wait; /* --wait: seconds for a slot under a rate limit */
    bool with_chain;
    bool resume;
    bool cleanup;
    bool renew;
    bool rekey;
    bool remove_old;
};

struct enr {
    struct cli *cli;
    struct enr_args a;
    enroll_issuer *is;
    p11_uri *turi;
    p11_token *tok;
    p11_auth auth;
    char *pin; /* a PIN typed at the prompt (secure heap), for the provider */
    int pin_len;
    char label[272]; /* checked: at most P11_MAX_LABEL_LEN - 16 bytes */
    char client_id[256];
    char *profile;
    X509_NAME *subject;
    p11_key_spec spec;
    char old_serial[64];  /* renew/rekey: the certificate replaced, if known */
    struct enr_pair cur;  /* the objects labelled @label */
    struct enr_pair pend; /* rekey: the new key while it has a work label */
    /* The outcome. */
    const char *action;
    p11_obj *key;
    X509 *cert;
    p11_obj *cert_obj;
    char serial[64];
    bool reused; /* the issuer had issued it already (resume) */
    int chain_written;
};

/* enr_store_pin - the PIN for the provider's login (enroll_pin_fn). */
int enr_store_pin(char *pin, size_t max, void *arg);

/* enr_key_type - e->spec from --type, else the profile's default. */
int enr_key_type(struct enr *e);

/* The flows; each prints its own errors and returns a status code. */
int enr_flow_enroll(struct enr *e);
int enr_flow_renew(struct enr *e);
int enr_flow_rekey(struct enr *e);

/* enr_names_from - client ID, subject and profile of the certificate @x
 * being renewed, where the options left them open; sets e->old_serial
 * when the issuer knows it. */
int enr_names_from(struct enr *e, X509 *x);

#endif
