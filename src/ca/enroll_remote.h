/* SPDX-License-Identifier: Apache-2.0 */
/* The remote enrollment issuer: p11ca serve's enrollment routes
 * (POST /v1/enroll with a one-time code, POST /v1/renew over mTLS) behind
 * the issuer seam of enroll.h, for p11ca enroll --server. */
#ifndef P11CA_CA_ENROLL_REMOTE_H
#define P11CA_CA_ENROLL_REMOTE_H

#include "ca/enroll.h"

/* Bounds of one HTTPS exchange with the service. */
#define ENROLL_REMOTE_CONNECT_TIMEOUT_S 10 /* TCP connect and TLS handshake */
#define ENROLL_REMOTE_REQUEST_TIMEOUT_S 60 /* the whole request */
#define ENROLL_REMOTE_MAX_BODY_BYTES    (1024 * 1024) /* a response body */
#define ENROLL_REMOTE_MAX_CODE_LEN      256           /* an enrollment code */

/* How to reach the service and who we are to it.  Borrowed strings. */
typedef struct enroll_remote_conf {
    const char *url;       /* https://HOST[:PORT] (no path, no query) */
    const char *cacert;    /* PEM bundle of CAs for the server's certificate;
                           NULL: the system's store */
    const char *code;      /* the one-time code (enrollment), or NULL */
    const char *profile;   /* sent with the code when given, or NULL */
    const char *client_id; /* sent with the code when given, or NULL */
    bool cleanup; /* --cleanup: find_for_key answers "none" (see there) */
    /* Renewal and re-key: mTLS with the card's current certificate and
     * its key, loaded through OSSL_STORE and the p11ca provider. */
    const char *key_uri; /* the private key on the card, or NULL */
    X509 *cert;          /* its certificate (reference taken) */
    const char *module;  /* the provider's PKCS#11 module (NULL: default) */
    bool single_session;
    enroll_pin_fn pin; /* the card's PIN for the provider */
    void *pin_arg;
} enroll_remote_conf;

/*
 * enroll_issuer_remote - an issuer for the service at @c->url: with
 * @c->code it enrolls (POST /v1/enroll), with @c->key_uri and @c->cert it
 * renews or re-keys (POST /v1/renew).  Nothing is sent yet: the URL is
 * parsed, the CA bundle read and, for mTLS, the card's key loaded.
 * Returns 0, P11CA_E_USAGE for a bad URL, P11CA_E_INPUT for an unreadable
 * bundle, P11CA_E_TOKEN when the key does not load.  @out gets the issuer
 * (enroll_issuer_free).  The code is kept in the secure heap, never shown.
 */
int enroll_issuer_remote(const enroll_remote_conf *c,
                         enroll_issuer **out) ENROLL_WUR;

/*
 * enroll_remote_refused - whether @is is a remote issuer whose last issue
 * call got no certificate for the key with SPKI SHA-256 @key_sha256 and
 * may be sure none was made: the service answered with an error, or the
 * request was never sent.  Its caller may then delete that key, made for
 * nothing.  False for any other issuer.
 */
bool enroll_remote_refused(enroll_issuer *is, const char *key_sha256);

#endif
