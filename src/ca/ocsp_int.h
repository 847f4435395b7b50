/* SPDX-License-Identifier: Apache-2.0 */
/* What the responder's files share: the responder itself (settings in
 * ocsp_conf.c, answers in ocsp.c, the cache's upkeep in ocsp_refresh.c). */
#ifndef P11CA_CA_OCSP_INT_H
#define P11CA_CA_OCSP_INT_H

#include <pthread.h>

#include "ca/internal.h"
#include "ca/ocsp.h"

#define CA_OCSP_N_HASHES  5 /* SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 */
#define CA_OCSP_N_RSTATUS 7 /* OCSPResponseStatus values, 0 to 6 */

/* The CA certificate's CertID hashes under one algorithm. */
struct ca_ocsp_issuer_hash {
    int nid;
    unsigned len;
    unsigned char name[EVP_MAX_MD_SIZE];
    unsigned char key[EVP_MAX_MD_SIZE];
};

/* Signing contexts kept for the next signatures, at most. */
#define CA_OCSP_SIGN_CTXS 16

struct ca_ocsp {
    ca *c;         /* borrowed; the responder's alone */
    int64_t ca_id; /* the CA in the registry */
    X509 *issuer;  /* the CA certificate */
    struct ca_ocsp_issuer_hash hashes[CA_OCSP_N_HASHES];
    size_t n_hashes;
    /* [ ocsp ] */
    int64_t next_update;
    int64_t refresh_before;
    bool hold;
    bool ignore_nonce;
    unsigned cache_entries;
    char *signer_key; /* a delegated signer's key; NULL: the CA key */
    char *digest;
    X509 *signer; /* the certificate of the key that signs */
    char signer_sha256[65];
    /* The signing key, loaded once (under @mu), then shared. */
    pthread_mutex_t mu;
    ca_key *key; /* the delegated signer's own, or the CA's (of @c) */
    /* Signing contexts of @key between two signatures (under @mu): one
     * per signature at once, kept for the next. */
    EVP_MD_CTX *mctx[CA_OCSP_SIGN_CTXS];
    size_t n_mctx;
    ca_ocsp_cache *cache;
    int64_t audit_seq; /* ca_ocsp_refresh has read the trail up to here */
    ca_ocsp_resp *err[CA_OCSP_N_RSTATUS]; /* unsigned responses */
};

/*
 * ca_ocsp_cert_state - what the registry @r says of (this CA, @serial) at
 * @now, as OCSP says it (unknown when it has no such certificate).
 * Returns 0 or the registry's error.
 */
int ca_ocsp_cert_state(ca_ocsp *o, reg *r, const char *serial, int64_t now,
                       ca_ocsp_state *st) CA_WUR;

/*
 * ca_ocsp_sign - answer @ids (@n CertIDs of this CA) from @r at @now,
 * signed; the nonce of @nonce_of (may be NULL) echoed.  *@out gets the
 * response, @first the first CertID's state, @info the counts.  Returns 0
 * or the error (the key, the token, the registry).
 */
int ca_ocsp_sign(ca_ocsp *o, reg *r, OCSP_CERTID **ids, int n,
                 OCSP_REQUEST *nonce_of, int64_t now, ca_ocsp_resp **out,
                 ca_ocsp_state *first, ca_ocsp_info *info) CA_WUR;

/*
 * ca_ocsp_store - cache @resp, the answer to the single CertID @cid made
 * from a registry read that found @st and began at @epoch; unknown
 * certificates are not cached.  Returns whether it was.
 */
bool ca_ocsp_store(ca_ocsp *o, OCSP_CERTID *cid, const ca_ocsp_state *st,
                   uint64_t epoch, ca_ocsp_resp *resp);

#endif
