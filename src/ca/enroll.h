/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment of a token key: the issuer seam (a local CA directory today, a
 * registry service later) and the CSR signed by the token key via EVP. */
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
 * registry-service client implements the same operations over HTTPS.
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
    int (*supersede)(enroll_issuer *is, const char *serial, const char *old);
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
 */
int enroll_supersede(enroll_issuer *is, const char *serial,
                     const char *old) ENROLL_WUR;

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
 * the PKCS#11 module the provider loads; @pin answers its PIN prompt).
 * SHA-256 (SHA-384 for P-384, SHA-512 for P-521, none for Ed25519).  @der
 * gets the DER (OPENSSL_free) and @len its size.  Returns 0 or
 * P11CA_E_TOKEN (the key cannot be loaded or does not sign).
 */
int enroll_csr_make(const char *key_uri, const char *module, enroll_pin_fn pin,
                    void *arg, const X509_NAME *subject, unsigned char **der,
                    size_t *len) ENROLL_WUR;

/* enroll_name_parse - "/CN=alice/O=Example" (with \/ escapes) into a new
 * X509_NAME; P11CA_E_INPUT with the reason. */
int enroll_name_parse(const char *str, X509_NAME **out) ENROLL_WUR;

/* enroll_spki_sha256 - hex SHA-256 of @pk's SubjectPublicKeyInfo (the
 * registry's key_hash) into @hex. */
int enroll_spki_sha256(EVP_PKEY *pk, char hex[65]) ENROLL_WUR;

#endif
