/* SPDX-License-Identifier: Apache-2.0 */
/* The OCSP responder (RFC 6960, RFC 5019 profile): requests parsed and
 * answered from the registry, responses signed through EVP by the CA key
 * or a delegated signer, and the cache of pre-signed responses that lets
 * a service answer most requests without a signature. */
#ifndef P11CA_CA_OCSP_H
#define P11CA_CA_OCSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"

/* Limits on what the responder reads. */
#define CA_OCSP_MAX_REQUEST (64 * 1024) /* one DER OCSPRequest */
#define CA_OCSP_MAX_CERTIDS 100         /* CertIDs in one request */
/* RFC 9654 (which obsoletes RFC 8954): Nonce ::= OCTET STRING
 * (SIZE(1..128)); a nonce of 0 or more than 128 octets is refused with
 * malformedRequest. */
#define CA_OCSP_MAX_NONCE 128
/* A certificate's responses kept in the cache: one per CertID form (hash
 * algorithm), e.g. SHA-1 and SHA-256. */
#define CA_OCSP_CACHE_FORMS 4
/* Unknown serials take at most 1/this of the cache's bound. */
#define CA_OCSP_UNKNOWN_SHARE 4

/* OCSPResponseStatus (RFC 6960 4.2.1); the values of OpenSSL's
 * OCSP_RESPONSE_STATUS_*. */
typedef enum ca_ocsp_rstatus {
    CA_OCSP_SUCCESSFUL = 0,
    CA_OCSP_MALFORMED = 1,
    CA_OCSP_INTERNAL_ERROR = 2,
    CA_OCSP_TRY_LATER = 3,
    CA_OCSP_SIG_REQUIRED = 5,
    CA_OCSP_UNAUTHORIZED = 6,
} ca_ocsp_rstatus;

/* ca_ocsp_rstatus_name - "successful", "malformedRequest", ... */
const char *ca_ocsp_rstatus_name(int status);

/* ------------------------------------------------------------------ */
/* Encoded responses (ocsp_cache.c)                                    */
/* ------------------------------------------------------------------ */

/*
 * One encoded OCSPResponse (DER), immutable and reference-counted (the
 * count is atomic): the cache, a worker and the loop thread may each hold
 * it, and the last unref frees it.  A service can hand the bytes to its
 * HTTP layer without a copy and unref in the layer's cleanup callback.
 * The times are those of a successful response (0 for an error status):
 * producedAt, and the thisUpdate/nextUpdate of its (first) SingleResponse,
 * for RFC 5019's Last-Modified, Expires and Cache-Control: max-age.
 */
typedef struct ca_ocsp_resp ca_ocsp_resp;

/*
 * ca_ocsp_resp_new - copy @len bytes of @der into a new response with
 * count 1.  @etag is the hex SHA-256 of @der (RFC 5019 6.2 suggests a hash
 * of the response as its ETag).  NULL when out of memory.
 */
ca_ocsp_resp *ca_ocsp_resp_new(const unsigned char *der, size_t len, int status,
                               int64_t produced_at, int64_t this_update,
                               int64_t next_update);
ca_ocsp_resp *ca_ocsp_resp_ref(ca_ocsp_resp *r);
void ca_ocsp_resp_unref(ca_ocsp_resp *r); /* accepts NULL */
const unsigned char *ca_ocsp_resp_der(const ca_ocsp_resp *r, size_t *len);
int ca_ocsp_resp_status(const ca_ocsp_resp *r); /* ca_ocsp_rstatus */
int64_t ca_ocsp_resp_produced_at(const ca_ocsp_resp *r);
int64_t ca_ocsp_resp_this_update(const ca_ocsp_resp *r);
int64_t ca_ocsp_resp_next_update(const ca_ocsp_resp *r);
const char *ca_ocsp_resp_etag(const ca_ocsp_resp *r); /* 64 hex digits */

/* ------------------------------------------------------------------ */
/* The cache of pre-signed responses (ocsp_cache.c)                    */
/* ------------------------------------------------------------------ */

/*
 * Signed single-certificate responses without a nonce, by certificate
 * (registry CA id and serial) and CertID (its DER: the hash algorithm and
 * the issuer hashes; a response must carry the CertID the client asked
 * with).  Bounded: at most @max responses (0.3 to 1.5 kB each, see
 * docs/ocsp.md); past it the least recently used certificate goes with all
 * its responses.  In memory
 * only (see docs/ocsp.md for persisting it).  Every call takes one mutex
 * for a few memory operations, never across a signature or a registry
 * read, so the loop thread of a service never waits for the token.
 *
 * A status change must never be hidden by a response signed from an
 * older registry read: a caller reads ca_ocsp_cache_epoch() BEFORE it
 * reads the registry and puts with that epoch; a put from before the
 * certificate's last change is dropped (for a certificate not in the
 * cache, from before the last change of any certificate not in it).
 */
typedef struct ca_ocsp_cache ca_ocsp_cache;

/* What a cached response says about its certificate (compared to tell
 * whether the registry has changed since). */
typedef struct ca_ocsp_state {
    int status;         /* V_OCSP_CERTSTATUS_GOOD/REVOKED/UNKNOWN */
    int reason;         /* CRL reason, -1: none given */
    int64_t revoked_at; /* 0 unless revoked */
    int64_t invalidity; /* 0: none */
    int64_t until;      /* good until a scheduled revocation; 0: none */
} ca_ocsp_state;

/* ca_ocsp_cache_new - an empty cache of at most @max responses (at least
 * CA_OCSP_CACHE_FORMS).  Returns 0 or P11CA_E_NOMEM. */
int ca_ocsp_cache_new(size_t max, ca_ocsp_cache **out) CA_WUR;
void ca_ocsp_cache_free(ca_ocsp_cache *cache);

/* ca_ocsp_cache_epoch - the change counter, to read before a registry
 * read whose result will be put. */
uint64_t ca_ocsp_cache_epoch(ca_ocsp_cache *cache);

/*
 * ca_ocsp_cache_get - the response for (@ca_id, @serial, @certid) when
 * one is cached and @now is before its nextUpdate: *@out gets a reference
 * (unref it) and it becomes the most recently used.  Returns true on a
 * hit; false (and *@out NULL) otherwise.
 */
bool ca_ocsp_cache_get(ca_ocsp_cache *cache, int64_t ca_id, const char *serial,
                       const unsigned char *certid, size_t certid_len,
                       int64_t now, ca_ocsp_resp **out);

/*
 * ca_ocsp_cache_put - cache @resp (a reference is taken) for (@ca_id,
 * @serial, @certid), made from a registry read that found @state and
 * that began at @epoch.  Dropped (returns false) when the certificate was
 * invalidated after @epoch.  A @state other than the one cached for the
 * certificate replaces all its responses; the same CertID replaces its
 * response; past CA_OCSP_CACHE_FORMS CertIDs the oldest goes.  Evicts the
 * least recently used certificates past the bound.  Returns true when
 * cached.
 */
bool ca_ocsp_cache_put(ca_ocsp_cache *cache, int64_t ca_id, const char *serial,
                       const unsigned char *certid, size_t certid_len,
                       const ca_ocsp_state *state, uint64_t epoch,
                       ca_ocsp_resp *resp);

/* A CertID taken out of the cache, to be signed again. */
typedef struct ca_ocsp_certid {
    int64_t ca_id;
    char serial[64];
    unsigned char *der; /* malloc'd */
    size_t len;
} ca_ocsp_certid;
void ca_ocsp_certids_free(ca_ocsp_certid *ids, size_t n);

/*
 * ca_ocsp_cache_invalidate - the certificate (@ca_id, @serial) changed:
 * drop its responses at once (later gets miss) and advance the epoch, so
 * that no put begun before now is taken for it.  The CertIDs it had are copied
 * to @ids (at most CA_OCSP_CACHE_FORMS; may be NULL) and *@n_ids set, for
 * signing them again; free them with ca_ocsp_certids_free.  Returns 0 or
 * P11CA_E_NOMEM (the responses are dropped even then).
 */
int ca_ocsp_cache_invalidate(ca_ocsp_cache *cache, int64_t ca_id,
                             const char *serial, ca_ocsp_certid *ids,
                             size_t *n_ids) CA_WUR;

/*
 * ca_ocsp_cache_mark - the certificate (@ca_id, @serial) may have changed
 * (seen in the audit trail): advance the epoch so that no put begun
 * before now is taken for it, but keep its responses.  Returns true and
 * sets *@st to what they say when it has any; the caller then reads the
 * registry and invalidates them if it says otherwise.
 */
bool ca_ocsp_cache_mark(ca_ocsp_cache *cache, int64_t ca_id, const char *serial,
                        ca_ocsp_state *st);

/*
 * ca_ocsp_cache_due - the CertIDs whose response's nextUpdate is at or
 * before @before (and still after @now: a response past its nextUpdate
 * is dropped here instead, and signed again on demand), oldest first, at
 * most @max; copies in *@ids (ca_ocsp_certids_free), their number in
 * *@n.  Responses are due in the order they were cached, which is their
 * nextUpdate order when they share one validity.  Returns 0 or
 * P11CA_E_NOMEM.
 */
int ca_ocsp_cache_due(ca_ocsp_cache *cache, int64_t now, int64_t before,
                      size_t max, ca_ocsp_certid **ids, size_t *n) CA_WUR;

/* Counters, for metrics and tests. */
typedef struct ca_ocsp_cache_stats {
    size_t responses; /* cached responses */
    size_t certs;     /* certificates with responses */
    uint64_t hits;    /* ca_ocsp_cache_get that found one */
    uint64_t misses;  /* ... that did not (a worker looks again) */
    uint64_t evicted; /* responses dropped for the bound */
    uint64_t dropped; /* puts refused as older than a change */
    uint64_t expired; /* responses dropped past their nextUpdate */
    size_t unknown;   /* certificates cached as unknown (never issued) */
    uint64_t unknown_refused; /* unknown ones not cached: their share full */
} ca_ocsp_cache_stats;
void ca_ocsp_cache_get_stats(ca_ocsp_cache *cache, ca_ocsp_cache_stats *st);

/* ------------------------------------------------------------------ */
/* The responder (ocsp.c)                                              */
/* ------------------------------------------------------------------ */

/*
 * A responder for the CA @c: it answers for the certificates this CA
 * issued (CertIDs whose issuer name and key hashes are those of the CA
 * certificate, with SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512), and
 * `unauthorized` for any other issuer, since it can sign for no other.
 * Settings come from the [ ocsp ] section of ca.cnf (docs/ocsp.md):
 *   next_update     nextUpdate - thisUpdate (default 1d)
 *   refresh_before  cached responses are signed again when their
 *                   nextUpdate is this close (default next_update / 2)
 *   not_activated   good | hold: what a not-activated certificate is
 *                   (hold: revoked, reason certificateHold)
 *   ignore_nonce    yes: answer nonce requests from the cache, without
 *                   the nonce (default no: signed fresh, nonce echoed)
 *   cache_entries   the cache's bound (default 100000; 0: no cache)
 *   signer_key, signer_cert   a delegated signer (p11ca ocsp signer init)
 *   digest          of the signature (default: the [ ca ] digest, else by
 *                   key)
 *
 * Threads: one responder serves every thread.  ca_ocsp_lookup only reads
 * the request and the cache; ca_ocsp_respond, ca_ocsp_cert_changed and
 * ca_ocsp_refresh take the caller's own registry handle (a reg is used by
 * one thread at a time) and sign with the responder's key, which several
 * threads may use at once.  ca_ocsp_refresh is called by one thread at a
 * time.
 */
typedef struct ca_ocsp ca_ocsp;

/*
 * ca_ocsp_new - a responder for @c (its certificate, registry id and
 * ca.cnf; the registry is read once, for the audit trail's tip).  @c is
 * borrowed for the responder's life and is the responder's alone from now
 * on: the signing key is loaded through it (ca_ocsp_load_key, or the
 * first signature).  A service opens a handle for it (ca_open_shared).
 * Returns 0, P11CA_E_INPUT (a bad [ ocsp ] key, a signer certificate that
 * cannot be read or is not an OCSP signer of this CA), P11CA_E_STATE (no
 * CA certificate yet), P11CA_E_NOMEM.
 */
int ca_ocsp_new(ca *c, ca_ocsp **out) CA_WUR;
void ca_ocsp_free(ca_ocsp *o);

/*
 * ca_ocsp_load_key - load and check the signing key now (the delegated
 * signer's, else the CA key), asking for the PIN if needed, rather than
 * at the first signature.  Returns 0, P11CA_E_TOKEN, P11CA_E_PIN,
 * P11CA_E_CAKEY (not the key of the certificate), ...  A key that failed
 * to load is tried again at the next signature.
 */
int ca_ocsp_load_key(ca_ocsp *o) CA_WUR;

/* ca_ocsp_signer_valid - false when a delegated signer signs and its
 * certificate is not valid at @now (expired, or not yet valid): then
 * every signature fails with P11CA_E_STATE.  True when the CA signs. */
bool ca_ocsp_signer_valid(const ca_ocsp *o, int64_t now);

/* ca_ocsp_delegated - whether a delegated signer signs (else the CA). */
bool ca_ocsp_delegated(const ca_ocsp *o);

/*
 * ca_ocsp_lookup - for a service's loop thread: the answer to the DER
 * request @req when it needs no signature, without blocking on anything
 * but the cache's mutex.  Returns true with *@out (a reference) for a
 * request that is too long or malformed (malformedRequest), asks about
 * another issuer (unauthorized), or asks about one certificate without a
 * nonce (or ignore_nonce) whose response is cached and current; false
 * (*@out NULL) when a worker must answer it with ca_ocsp_respond.
 */
bool ca_ocsp_lookup(ca_ocsp *o, const unsigned char *req, size_t len,
                    int64_t now, ca_ocsp_resp **out);

/* What ca_ocsp_respond did, for logs and the CLI. */
typedef struct ca_ocsp_info {
    size_t n_certs; /* CertIDs answered (0 unless successful) */
    size_t good, revoked, unknown;
    bool nonce;    /* the response echoes a nonce */
    bool cached;   /* answered from the cache */
    bool stored;   /* the signed response went into the cache */
    int rc;        /* for tryLater and internalError: the P11CA_E_* */
    char why[256]; /* for an error status: the reason, for the log */
} ca_ocsp_info;

/*
 * ca_ocsp_respond - answer @req (DER, @len bytes) at @now with the
 * registry @r: each CertID good, revoked (time, reason, invalidity date)
 * or unknown; signed; the nonce echoed unless ignore_nonce.  The answer is
 * always a response: malformedRequest, unauthorized, tryLater (the token
 * or the registry failed: the key is tried again next time) or
 * internalError (a bad signer configuration) with @info->why saying why.
 * A single-certificate answer without a nonce is cached.  *@out gets the
 * response; @info (may be NULL) what was done.  Returns 0, or
 * P11CA_E_NOMEM when not even an error response could be made.
 */
int ca_ocsp_respond(ca_ocsp *o, reg *r, const unsigned char *req, size_t len,
                    int64_t now, ca_ocsp_resp **out, ca_ocsp_info *info) CA_WUR;

/*
 * ca_ocsp_cert_changed - the certificate (@ca_id, @serial) was issued
 * (@issued), or revoked, activated, deactivated or deleted, through @r (a
 * service's own registry write): its cached responses are dropped at
 * once, then the CertIDs it had are signed again from the registry; a new
 * certificate of this CA gets its SHA-256 and SHA-1 CertIDs signed (the
 * forms RFC 9919 and RFC 5019 clients ask with; openssl ocsp sends SHA-1
 * unless told otherwise).  A response that cannot
 * be signed now is left out (a query signs it).  Does nothing without a
 * cache or for another CA.  Returns 0 or the error that stopped the
 * signing (the cache is consistent either way).
 */
int ca_ocsp_cert_changed(ca_ocsp *o, reg *r, int64_t ca_id, const char *serial,
                         bool issued, int64_t now) CA_WUR;

/* What ca_ocsp_refresh did. */
typedef struct ca_ocsp_refresh_stats {
    size_t changes;  /* certificates changed in the audit trail */
    size_t resigned; /* responses signed again */
    size_t failed;   /* responses that could not be signed */
} ca_ocsp_refresh_stats;

/*
 * ca_ocsp_refresh - keep the cache current, for a service thread to call
 * every second or so (one thread at a time): first every certificate
 * change recorded in the audit trail since the last call (by this
 * process or any other, e.g. p11ca cert revoke) whose cached responses
 * say otherwise is invalidated and signed again; then the responses
 * whose nextUpdate is within refresh_before of @now are signed again, at
 * most @max_sign signatures in all (the rest wait for the next call;
 * changed certificates are dropped from the cache before any limit
 * applies).  @st (may be NULL) gets the counts.  Returns 0 or the first
 * registry or token error (the cache stays consistent).
 */
int ca_ocsp_refresh(ca_ocsp *o, reg *r, int64_t now, size_t max_sign,
                    ca_ocsp_refresh_stats *st) CA_WUR;

/* ca_ocsp_cache_of - the responder's cache (NULL: cache_entries = 0),
 * for its counters. */
ca_ocsp_cache *ca_ocsp_cache_of(ca_ocsp *o);

/* ------------------------------------------------------------------ */
/* The delegated signer (ocsp_signer.c)                                */
/* ------------------------------------------------------------------ */

typedef struct ca_ocsp_signer_opts {
    const char *key_uri;  /* pkcs11: URI of the signer's key */
    const char *key_file; /* or a key file */
    const char *generate; /* "ec:P-256": make the key first */
    const char *subject;  /* NULL: the CA's subject, CN=OCSP Responder */
    const char *profile;  /* NULL: "ocsp" */
    unsigned days;        /* 0: the profile's default_days */
} ca_ocsp_signer_opts;

/*
 * ca_ocsp_signer_init - make the delegated OCSP signer of @c: its key
 * (generated on the token, or in a new file, with @o->generate; else the
 * existing key, which on a token must be CKA_ALWAYS_SENSITIVE and
 * CKA_NEVER_EXTRACTABLE), a request signed by that key, its certificate
 * issued by the CA under the profile (which must give id-kp-OCSPSigning)
 * and recorded in the registry, written to DIR/ocsp-signer.pem, and
 * ca.cnf's [ ocsp ] signer_key and signer_cert set (replacing an earlier
 * signer; its key and certificate are left as they are).  A generated key
 * is removed again when a later step fails.  *@serial (may be NULL) gets
 * the certificate's serial (malloc'd).  Returns 0 or the error.
 */
int ca_ocsp_signer_init(ca *c, const ca_ocsp_signer_opts *o,
                        char **serial) CA_WUR;

#endif
