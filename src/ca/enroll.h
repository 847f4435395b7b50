/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment of a token key: the issuer seam (a local CA directory today, a
 * registry service later), the CSR signed by the token key via EVP, the
 * key/certificate pairs of a token and the flow that ties them together
 * (enroll, resume, cleanup, renew, re-key), which p11ca enroll and the
 * service call alike. */
#ifndef P11CA_CA_ENROLL_H
#define P11CA_CA_ENROLL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "ca/ca.h"
#include "p11/p11.h"
#include "registry/registry.h"

#define ENROLL_WUR __attribute__((warn_unused_result))

/* ------------------------------------------------------------------ */
/* The issuer (enroll_issuer.c)                                        */
/* ------------------------------------------------------------------ */

/*
 * Who turns a CSR into a certificate and keeps the record of it.  Every
 * call returns 0 or a negative P11CA_E_* with the message in
 * p11ca_err_message().  The local implementation opens a CA directory; a
 * registry-service client (p11ca enroll --server) implements the same
 * operations over HTTPS.  An implementation embeds struct enroll_issuer as
 * its first member, sets ops and name, and frees itself in ops->free
 * (enroll_issuer_free).  One issuer serves one enrollment at a time.
 */
typedef struct enroll_issuer enroll_issuer;

/* What the enrollment asks for. */
typedef struct enroll_req {
    const char *profile;      /* a profile of the issuer ("client") */
    const char *client_id;    /* the registry's client ID (never NULL); not
                            * recorded under a profile with client_id =
                            * none */
    unsigned days;            /* 0: the profile's default */
    const char *replaces;     /* serial this certificate renews, or NULL */
    const X509_NAME *subject; /* what the CSR will carry (NULL: unknown) */
    unsigned wait; /* seconds to wait for a slot under the profile's rate
                      limit (an operator's enrollment is issuance, not a
                      sign-up); 0: refuse at once */
} enroll_req;

struct enroll_issuer_ops {
    const char *kind; /* "local CA" */
    int (*default_key)(enroll_issuer *is, const char *profile,
                       p11_key_spec *out);
    int (*check)(enroll_issuer *is, const enroll_req *rq,
                 const p11_key_spec *spec);
    int (*find_for_key)(enroll_issuer *is, const char *client_id,
                        const char *key_sha256, X509 **out);
    int (*issue)(enroll_issuer *is, const enroll_req *rq,
                 const unsigned char *csr, size_t len, X509 **out);
    int (*chain)(enroll_issuer *is, STACK_OF(X509) * *out);
    int (*get)(enroll_issuer *is, const char *serial, reg_cert *out);
    int (*supersede)(enroll_issuer *is, const char *serial, const char *old,
                     const char *key_uri);
    int (*retire)(enroll_issuer *is, const char *serial, const char *why);
    void (*free)(enroll_issuer *is);
};

struct enroll_issuer {
    const struct enroll_issuer_ops *ops;
    char name[512]; /* "the CA in /path", for messages */
};

/*
 * enroll_issuer_local - an issuer for the CA directory @dir: ca_open(),
 * then ca_set_access(@module, @pin_source) for the CA key (both may be
 * NULL: ca.cnf's pin_source, the default module).  @out gets the issuer.
 */
int enroll_issuer_local(const char *dir, const char *module,
                        const char *pin_source, enroll_issuer **out) ENROLL_WUR;

/*
 * enroll_issuer_for_ca - the local issuer on the open handle @c (borrowed:
 * enroll_issuer_free leaves it open), with its access and actor as they
 * are: the service's workers enroll with their own handles.
 */
int enroll_issuer_for_ca(ca *c, enroll_issuer **out) ENROLL_WUR;

/* enroll_issuer_free - close @is (accepts NULL). */
void enroll_issuer_free(enroll_issuer *is);

/* enroll_issuer_name - "the CA in /path", for messages (borrowed). */
const char *enroll_issuer_name(enroll_issuer *is);

/*
 * enroll_default_key - the key type to generate for @profile: the first
 * entry of its key_types that a token can make (RSA at its minimum size,
 * an EC curve, Ed25519), else ec:P-256.  P11CA_E_POLICY for an unknown
 * profile.
 */
int enroll_default_key(enroll_issuer *is, const char *profile,
                       p11_key_spec *out) ENROLL_WUR;

/*
 * enroll_check - whether @rq can be served, before anything is made on the
 * token: the CA can sign (its key loads and checks, PIN included); the
 * profile exists, makes end-entity certificates, needs no subjectAltName,
 * allows @rq->days, @rq->subject and @spec (may be NULL: not checked);
 * the client ID is not held by an activated certificate other than
 * @rq->replaces (P11CA_E_EXISTS, naming the holder); @rq->replaces, when
 * given, is known and not revoked (P11CA_E_STATE).
 */
int enroll_check(enroll_issuer *is, const enroll_req *rq,
                 const p11_key_spec *spec) ENROLL_WUR;

/*
 * enroll_find_for_key - the newest certificate for @client_id whose public
 * key has SHA-256 @key_sha256 (hex of the SPKI), activated or
 * not-activated and not expired: one issued before the token could store
 * it.  @out gets it or stays NULL (not an error).
 */
int enroll_find_for_key(enroll_issuer *is, const char *client_id,
                        const char *key_sha256, X509 **out) ENROLL_WUR;

/*
 * enroll_issue - check @csr (DER) against the profile, sign and record it
 * BEFORE returning it.  With @rq->replaces activated, the new certificate is
 * recorded not-activated (the client ID stays with the old one) until
 * enroll_supersede.  @out gets the certificate.
 */
int enroll_issue(enroll_issuer *is, const enroll_req *rq,
                 const unsigned char *csr, size_t len, X509 **out) ENROLL_WUR;

/* enroll_chain - the issuing CA certificate and the issuers above it (a new
 * stack of new references; free with sk_X509_pop_free(.., X509_free)). */
int enroll_chain(enroll_issuer *is, STACK_OF(X509) * *out) ENROLL_WUR;

/* enroll_get - the record of @serial (P11CA_E_NOTFOUND when unknown); free
 * @out with reg_cert_clear. */
int enroll_get(enroll_issuer *is, const char *serial, reg_cert *out) ENROLL_WUR;

/*
 * enroll_supersede - @serial now renews @old: the link is recorded, @old is
 * deactivated if it was activated, and @serial activated if it was not;
 * then @old is revoked (superseded), scheduled for that revocation or kept,
 * as the supersede rule of @serial's profile says (reg_supersede).
 * @key_uri is the new certificate's private key on the token (may be
 * NULL): the registry service (enroll_remote.c) makes the swap when the
 * card proves it holds the new certificate, by a TLS connection with it
 * and this key; the local CA does not need it.
 */
int enroll_supersede(enroll_issuer *is, const char *serial, const char *old,
                     const char *key_uri) ENROLL_WUR;

/*
 * enroll_retire - revoke @serial (cessationOfOperation): its key was
 * destroyed before the certificate reached the token.  @why is audited.
 */
int enroll_retire(enroll_issuer *is, const char *serial,
                  const char *why) ENROLL_WUR;

/* ------------------------------------------------------------------ */
/* The CSR (enroll_csr.c)                                              */
/* ------------------------------------------------------------------ */

/*
 * The PIN for the token key, asked by the provider when it logs in: write
 * at most @max bytes into @pin, return the length or -1.
 */
typedef int (*enroll_pin_fn)(char *pin, size_t max, void *arg);

/*
 * enroll_csr_make - a PKCS#10 request for @subject signed by the private
 * key @key_uri names, loaded through OSSL_STORE in a library context of its
 * own with the "p11ca" and "default" providers (@module, may be NULL, is
 * the PKCS#11 module the provider loads, @single_session its
 * p11ca-single-session setting; @pin answers its PIN prompt).
 * SHA-256 (SHA-384 for P-384, SHA-512 for P-521, none for Ed25519).  @der
 * gets the DER (OPENSSL_free) and @len its size.  Returns 0 or
 * P11CA_E_TOKEN (the key cannot be loaded or does not sign).
 */
int enroll_csr_make(const char *key_uri, const char *module,
                    bool single_session, enroll_pin_fn pin, void *arg,
                    const X509_NAME *subject, unsigned char **der,
                    size_t *len) ENROLL_WUR;

/* enroll_name_parse - "/CN=alice/O=Example" (with \/ escapes) into a new
 * X509_NAME; P11CA_E_INPUT with the reason. */
int enroll_name_parse(const char *str, X509_NAME **out) ENROLL_WUR;

/* enroll_spki_sha256 - hex SHA-256 of @pk's SubjectPublicKeyInfo (the
 * registry's key_hash) into @hex. */
int enroll_spki_sha256(EVP_PKEY *pk, char hex[65]) ENROLL_WUR;

/* ------------------------------------------------------------------ */
/* Key/certificate pairs on a token (enroll_pair.c)                    */
/* ------------------------------------------------------------------ */

/*
 * A private key of a token with its public key and its user certificates
 * (same CKA_ID, not CKA_CERTIFICATE_CATEGORY authority); without a key,
 * the user certificates that carry the label.  References owned.
 */
typedef struct enroll_pair {
    p11_obj *priv;
    p11_obj *pub;
    p11_obj **certs;
    X509 **x509; /* parallel to certs; NULL when CKA_VALUE does not parse */
    size_t n;
} enroll_pair;

/*
 * enroll_find_objs - the objects of @tok of class @cls (-1: any) with @id
 * (may be NULL) and @label (may be NULL).  @login: log in first (private
 * objects).  @out gets new references (free with enroll_objs_free).
 * Returns CKR_OK or the error (set in the p11 layer).
 */
CK_RV enroll_find_objs(p11_ctx *ctx, p11_token *tok, CK_OBJECT_CLASS cls,
                       const unsigned char *id, size_t id_len,
                       const char *label, bool login, p11_obj ***out,
                       size_t *n) ENROLL_WUR;

/* enroll_objs_free - unref @n objects and free the array. */
void enroll_objs_free(p11_obj **objs, size_t n);

/* enroll_cert_x509 - the certificate in @cert's CKA_VALUE (NULL: none). */
X509 *enroll_cert_x509(p11_obj *cert);

/* enroll_cert_is_authority - CKA_CERTIFICATE_CATEGORY is 2 (authority). */
bool enroll_cert_is_authority(p11_obj *cert);

/*
 * enroll_pair_load - the private key labelled @label on @tok
 * (P11_RV_AMBIGUOUS when several), its public key and certificates; or,
 * with no such key, the certificates labelled @label.  @p is cleared
 * first and must be cleared by the caller afterwards, also on failure.
 */
CK_RV enroll_pair_load(p11_ctx *ctx, p11_token *tok, const char *label,
                       enroll_pair *p) ENROLL_WUR;

/* enroll_pair_for_key - the pair of the private key @priv (reference
 * taken); as enroll_pair_load. */
CK_RV enroll_pair_for_key(p11_ctx *ctx, p11_obj *priv,
                          enroll_pair *p) ENROLL_WUR;

/* enroll_pair_clear - drop every reference of @p and zero it. */
void enroll_pair_clear(enroll_pair *p);

/* enroll_pair_newest - index of the certificate with the latest notBefore,
 * or -1 when there is none. */
int enroll_pair_newest(const enroll_pair *p);

/*
 * enroll_pair_destroy - C_DestroyObject of the certificates of @p except
 * @keep (may be NULL), then, with @keys, the public and private key.
 */
CK_RV enroll_pair_destroy(enroll_pair *p, const p11_auth *auth, p11_obj *keep,
                          bool keys) ENROLL_WUR;

/* enroll_pair_relabel - set CKA_LABEL of every object of @p to @label. */
CK_RV enroll_pair_relabel(enroll_pair *p, const p11_auth *auth,
                          const char *label) ENROLL_WUR;

/* enroll_time - "2026-05-01T12:00:00Z" of @t into @buf; returns @buf. */
const char *enroll_time(const ASN1_TIME *t, char *buf, size_t len);

/* enroll_serial - @x's serial as p11ca prints serials (reg_serial_text:
 * what openssl x509 -serial shows) into @buf; returns @buf. */
const char *enroll_serial(X509 *x, char *buf, size_t len);

/* enroll_days_left - whole days until @x expires (negative: expired). */
int enroll_days_left(X509 *x);

/* enroll_key_desc - "RSA 2048", "EC P-256", "EdDSA ED25519" of @key into
 * @buf; returns @buf. */
const char *enroll_key_desc(p11_obj *key, char *buf, size_t len);

/* enroll_rc_from_rv - the status code of the ca/registry/cli layers for a
 * CK_RV of the p11 layer (by p11_rv_class): what exit code it makes. */
int enroll_rc_from_rv(CK_RV rv);

/* ------------------------------------------------------------------ */
/* The flow (enroll_flow.c)                                            */
/* ------------------------------------------------------------------ */

/*
 * One enrollment of a token key, as p11ca enroll runs it and as the
 * service will for p11ca enroll --server (with a network issuer):
 *
 *   ENROLL_NEW    key on the token, CSR signed by it, certificate from the
 *                 issuer, checked to carry the token's key, written next to
 *                 the key (its CKA_ID and label), CA certificates if asked.
 *                 What an earlier run left under the label (a key without
 *                 a certificate, or certificates without a key) is refused
 *                 unless @resume (finish with that key: the certificate the
 *                 issuer made for it, else a new one) or @cleanup (revoke
 *                 what was issued for it, delete it, start over).
 *   ENROLL_RENEW  a new certificate for the enrolled key: written, then
 *                 the issuer supersedes the old one, then the old
 *                 certificate objects go.
 *   ENROLL_REKEY  a new key under LABEL.rekey (with @resume / @cleanup as
 *                 above), its certificate, supersede, then the old objects
 *                 are relabelled LABEL.old-SERIAL (or deleted with
 *                 @remove_old) and the new ones take LABEL.
 *
 * The request is checked against the issuer (enroll_check) before a key is
 * made, and a certificate is recorded by the issuer before it is written.
 */
typedef enum enroll_mode {
    ENROLL_NEW = 0,
    ENROLL_RENEW,
    ENROLL_REKEY,
} enroll_mode;

/* What to enroll (the options of p11ca enroll).  Borrowed strings. */
typedef struct enroll_opts {
    enroll_mode mode;
    const char *profile;   /* required for ENROLL_NEW; renewals default to
                              the profile of the certificate replaced */
    const char *subject;   /* "/CN=alice/O=Example"; NULL: /CN=CLIENT-ID,
                              renewals the old certificate's */
    const char *client_id; /* NULL: the subject's CN (renewals: the
                              registry's client ID of the old one) */
    const char *key_type;  /* "ec:P-256", "rsa:2048"...; NULL: the
                              profile's (re-key: the old key's type) */
    const char *label;     /* of the key and certificate; NULL: the client
                              ID.  At most P11_MAX_LABEL_LEN - 16 bytes */
    unsigned days;         /* 0: the profile's default */
    unsigned wait;         /* enroll_req.wait */
    bool with_chain;       /* also write the CA certificates */
    bool resume;           /* finish what an earlier run left (not RENEW) */
    bool cleanup;          /* remove what an earlier run left (not RENEW) */
    bool remove_old;       /* REKEY: delete the old objects */
} enroll_opts;

/*
 * How the flow reports what happened besides its outcome: @rc 0 for a
 * notice ("revoked certificate 1A, issued for the deleted key"), a status
 * code for an error that comes before the one the flow returns (both are
 * to be shown).  @msg is only valid during the call and holds no secret.
 */
typedef void (*enroll_note_fn)(int rc, const char *msg, void *arg);

/* Where the flow works.  Everything is borrowed for the call. */
typedef struct enroll_env {
    p11_ctx *p11;         /* the context @tok comes from */
    p11_token *tok;       /* the user's token, logged in by the caller */
    const p11_auth *auth; /* for writing objects (p11_cert_import...) */
    enroll_issuer *is;    /* who issues: enroll_issuer_local or another */
    const char *module;   /* PKCS#11 module for the CSR's provider (NULL:
                             the provider's default) */
    bool single_session;  /* the CSR's provider: one session per token */
    enroll_pin_fn pin;    /* the token's PIN for the CSR's provider */
    void *pin_arg;
    enroll_note_fn note; /* may be NULL: notices are only logged */
    void *note_arg;
} enroll_env;

/* The longest client ID enroll takes (bytes): a longer --client-id is
 * refused before anything is made, never cut. */
#define ENROLL_CLIENT_ID_MAX 255

/* The outcome of enroll_run; owned by the caller (enroll_result_clear). */
typedef struct enroll_result {
    const char *action; /* "enrolled", "resumed", "renewed", "rekeyed" */
    char label[272];    /* the objects' label */
    /* the registry's client ID */
    char client_id[ENROLL_CLIENT_ID_MAX + 1];
    char *profile;       /* the profile used */
    char serial[64];     /* the new certificate's, as p11ca prints serials
                            (enroll_serial) */
    char old_serial[64]; /* the one it replaces in the registry's form
                            (reg_cert.serial), or "" */
    p11_obj *key;        /* the private key on the token */
    p11_obj *cert_obj;   /* the certificate object written (or found) */
    X509 *cert;          /* the certificate */
    bool reused;         /* issued by an earlier run (resume) */
    int chain_written;   /* CA certificates written (with_chain) */
} enroll_result;

/*
 * enroll_run - one enrollment as @o says, on @env->tok with @env->is.
 * @res is cleared first and filled on success.  Returns 0, or a negative
 * P11CA_E_* with the message in p11ca_err_message(): P11CA_E_USAGE for
 * names that are missing or too long (no label, no client ID, no profile
 * for a certificate the issuer does not know), P11CA_E_INPUT for a token
 * in a state the options do not allow (an unfinished enrollment, nothing
 * to renew or resume), and the issuer's, the token's (enroll_rc_from_rv)
 * or the registry's codes.  Prints nothing, reads no environment, asks
 * nothing but @env's callbacks; no state outside @env and @res, so
 * threads may run enrollments on different tokens at once.
 */
int enroll_run(const enroll_env *env, const enroll_opts *o,
               enroll_result *res) ENROLL_WUR;

/* enroll_result_clear - free what @res holds and zero it. */
void enroll_result_clear(enroll_result *res);

/*
 * What to do about the pair found under the label a new key is to take,
 * with @resume and @cleanup as given (enroll_step_for):
 */
typedef enum enroll_step {
    ENROLL_STEP_NEW_KEY = 0, /* nothing there: make the key */
    ENROLL_STEP_RESUME,      /* a key without certificate: take it */
    ENROLL_STEP_CLEANUP,     /* something left: remove it, make the key */
    ENROLL_STEP_UNFINISHED,  /* something left, no way out given: refuse */
    ENROLL_STEP_NO_RESUME,   /* resume asked, no key there: refuse */
} enroll_step;

/* enroll_step_for - the step for a label holding a private key (@key) and
 * @certs user certificates. */
enroll_step enroll_step_for(bool key, size_t certs, bool resume, bool cleanup);

#endif
