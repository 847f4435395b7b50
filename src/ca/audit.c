/* SPDX-License-Identifier: Apache-2.0 */
/* The signed head of the audit trail: the CA key signs an entry's sequence
 * number and hash (with the time and the CA's identity) in a DER structure
 * shaped like a certificate's; the checkpoint that decides when, the
 * verification against the CA certificate, the export for a witness. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>

#include "ca/internal.h"

#define HEAD_LABEL   "p11ca audit head"
#define HEAD_VERSION 1

/*
 * AuditHead ::= SEQUENCE {
 *     label         UTF8String,      -- "p11ca audit head"
 *     version       INTEGER,         -- 1
 *     entry         INTEGER,         -- the newest entry it covers
 *     entryHash     OCTET STRING,    -- that entry's SHA-256 chain hash
 *     signedAt      GeneralizedTime,
 *     caCertSha256  OCTET STRING,    -- SHA-256 of the CA certificate's DER
 *     caSubject     Name }
 * SignedAuditHead ::= SEQUENCE {
 *     tbsHead             AuditHead,
 *     signatureAlgorithm  AlgorithmIdentifier,
 *     signature           BIT STRING }   -- over the DER of tbsHead
 * The label keeps it apart from anything else the CA key signs (no
 * certificate, CRL or CSR starts with a UTF8String).
 */
typedef struct {
    ASN1_UTF8STRING *label;
    ASN1_INTEGER *version;
    ASN1_INTEGER *entry;
    ASN1_OCTET_STRING *entry_hash;
    ASN1_GENERALIZEDTIME *signed_at;
    ASN1_OCTET_STRING *ca_sha256;
    X509_NAME *ca_subject;
} CA_AUDIT_HEAD;

typedef struct {
    CA_AUDIT_HEAD *tbs;
    X509_ALGOR *alg;
    ASN1_BIT_STRING *sig;
} CA_SIGNED_AUDIT_HEAD;

/* A head read back: what it says, once its signature has verified. */
struct head_read {
    int64_t id; /* its row */
    int64_t seq;
    char hash[65];
    int64_t at;
    bool ours; /* signed for this CA certificate */
};

/* The heads of a registry, collected before the chain is read. */
struct head_rows {
    reg_audit_head *h;
    size_t n, cap;
};

/* OpenSSL's ASN.1 templates: clang-format cannot lay these out. */
/* clang-format off */
ASN1_SEQUENCE(CA_AUDIT_HEAD) = {
    ASN1_SIMPLE(CA_AUDIT_HEAD, label, ASN1_UTF8STRING),
    ASN1_SIMPLE(CA_AUDIT_HEAD, version, ASN1_INTEGER),
    ASN1_SIMPLE(CA_AUDIT_HEAD, entry, ASN1_INTEGER),
    ASN1_SIMPLE(CA_AUDIT_HEAD, entry_hash, ASN1_OCTET_STRING),
    ASN1_SIMPLE(CA_AUDIT_HEAD, signed_at, ASN1_GENERALIZEDTIME),
    ASN1_SIMPLE(CA_AUDIT_HEAD, ca_sha256, ASN1_OCTET_STRING),
    ASN1_SIMPLE(CA_AUDIT_HEAD, ca_subject, X509_NAME),
} static_ASN1_SEQUENCE_END(CA_AUDIT_HEAD)

ASN1_SEQUENCE(CA_SIGNED_AUDIT_HEAD) = {
    ASN1_SIMPLE(CA_SIGNED_AUDIT_HEAD, tbs, CA_AUDIT_HEAD),
    ASN1_SIMPLE(CA_SIGNED_AUDIT_HEAD, alg, X509_ALGOR),
    ASN1_SIMPLE(CA_SIGNED_AUDIT_HEAD, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CA_SIGNED_AUDIT_HEAD)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(CA_SIGNED_AUDIT_HEAD)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(CA_SIGNED_AUDIT_HEAD)

static int cert_sha256(X509 *x, unsigned char md[32]);
static int head_build(CA_SIGNED_AUDIT_HEAD *sh, int64_t seq, const char *hash,
                      int64_t at, X509 *cacert);
static int head_read(X509 *cacert, const reg_audit_head *row,
                     struct head_read *out);
static int head_fields(const CA_AUDIT_HEAD *t, struct head_read *out);
static int last_head_cb(const reg_audit_head *h, void *arg);
static int head_due(ca *c, int64_t tip, bool force, bool *due);
static int rows_add(const reg_audit_head *h, void *arg);
static void rows_free(struct head_rows *r);
static int heads_check(ca *c, const struct head_read *hr, size_t n,
                       size_t entries);
static int heads_verify(ca *c, const struct head_rows *rows, size_t entries,
                        ca_audit_report *rep);
static int newest_cb(const reg_audit_head *h, void *arg);
/* clang-format on */

static int cert_sha256(X509 *x, unsigned char md[32])
{
    unsigned int len = 0;

    if (!X509_digest(x, EVP_sha256(), md, &len) || len != 32)
        return ca_ossl_err(P11CA_E_INTERNAL, "cannot hash the CA certificate");
    return P11CA_OK;
}

/* The fields of a head over entry @seq with @hash (hex), signed at @at. */
static int head_build(CA_SIGNED_AUDIT_HEAD *sh, int64_t seq, const char *hash,
                      int64_t at, X509 *cacert)
{
    CA_AUDIT_HEAD *t = sh->tbs;
    unsigned char md[32], *bin = NULL;
    long binlen = 0;
    int rc = cert_sha256(cacert, md);

    if (rc != P11CA_OK)
        return rc;
    bin = OPENSSL_hexstr2buf(hash, &binlen);
    if (!bin || binlen != 32 || !ASN1_STRING_set(t->label, HEAD_LABEL, -1)
        || !ASN1_INTEGER_set_int64(t->version, HEAD_VERSION)
        || !ASN1_INTEGER_set_int64(t->entry, seq)
        || !ASN1_OCTET_STRING_set(t->entry_hash, bin, 32)
        || !ASN1_GENERALIZEDTIME_set(t->signed_at, (time_t)at)
        || !ASN1_OCTET_STRING_set(t->ca_sha256, md, 32)
        || !X509_NAME_set(&t->ca_subject, X509_get_subject_name(cacert)))
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot make the audit head");
    OPENSSL_free(bin);
    return rc;
}

int ca_audit_sign_head(reg *r, ca_key *k, const char *digest, X509 *cacert,
                       int64_t ca_id, ca_audit_head_info *info)
{
    CA_SIGNED_AUDIT_HEAD *sh = CA_SIGNED_AUDIT_HEAD_new();
    unsigned char *der = NULL;
    char hash[65];
    int64_t seq = 0, at = (int64_t)time(NULL);
    int len = 0,
        rc = sh ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    if (rc == P11CA_OK)
        rc = reg_audit_tip(r, &seq, hash);
    if (rc == P11CA_OK && seq == 0)
        rc = p11ca_err_set(P11CA_E_STATE, "the audit trail is empty");
    if (rc == P11CA_OK)
        rc = head_build(sh, seq, hash, at, cacert);
    if (rc == P11CA_OK)
        rc = ca_key_sign_asn1(k, digest, ASN1_ITEM_rptr(CA_AUDIT_HEAD), sh->tbs,
                              sh->alg, sh->sig, "audit head");
    if (rc == P11CA_OK && (len = i2d_CA_SIGNED_AUDIT_HEAD(sh, &der)) <= 0)
        rc = ca_ossl_err(P11CA_E_INTERNAL, "cannot encode the audit head");
    if (rc == P11CA_OK)
        rc = reg_audit_head_add(r, &(reg_audit_head){.seq = seq,
                                                     .hash = hash,
                                                     .at = at,
                                                     .ca_id = ca_id,
                                                     .der = der,
                                                     .der_len = (size_t)len});
    if (rc == P11CA_OK && info) {
        info->seq = seq;
        info->at = at;
        memcpy(info->hash, hash, sizeof(info->hash));
    }
    OPENSSL_free(der);
    CA_SIGNED_AUDIT_HEAD_free(sh);
    return rc;
}

/* What a decoded head says, checked for its label and version. */
static int head_fields(const CA_AUDIT_HEAD *t, struct head_read *out)
{
    const unsigned char *h = ASN1_STRING_get0_data(t->entry_hash);
    struct tm tm;

    if (ASN1_STRING_length(t->label) != (int)strlen(HEAD_LABEL)
        || memcmp(ASN1_STRING_get0_data(t->label), HEAD_LABEL,
                  strlen(HEAD_LABEL))
               != 0)
        return -1;
    if (ASN1_INTEGER_get(t->version) != HEAD_VERSION
        || !ASN1_INTEGER_get_int64(&out->seq, t->entry) || out->seq < 1
        || ASN1_STRING_length(t->entry_hash) != 32
        || !ASN1_TIME_to_tm(t->signed_at, &tm))
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(out->hash + 2 * i, 3, "%02x", h[i]);
    out->at = (int64_t)timegm(&tm);
    return 0;
}

/*
 * Decode the head of @row and, when it names @cacert, verify its signature
 * with @cacert's key.  A head of another CA (a shared registry) comes back
 * with ours = false, unchecked.
 */
static int head_read(X509 *cacert, const reg_audit_head *row,
                     struct head_read *out)
{
    const unsigned char *p = row->der;
    CA_SIGNED_AUDIT_HEAD *sh = NULL;
    unsigned char md[32];
    int rc = cert_sha256(cacert, md);

    memset(out, 0, sizeof(*out));
    out->id = row->id;
    if (rc != P11CA_OK)
        return rc;
    sh = d2i_CA_SIGNED_AUDIT_HEAD(NULL, &p, (long)row->der_len);
    if (!sh || p != row->der + row->der_len || head_fields(sh->tbs, out) != 0)
        rc = p11ca_err_set(P11CA_E_STATE,
                           "signed audit head %" PRId64 " (entry %" PRId64
                           ") is not a p11ca audit head: damaged or replaced",
                           row->id, row->seq);
    out->ours =
        rc == P11CA_OK && ASN1_STRING_length(sh->tbs->ca_sha256) == 32
        && memcmp(ASN1_STRING_get0_data(sh->tbs->ca_sha256), md, 32) == 0;
    if (rc == P11CA_OK && out->ours
        && ASN1_item_verify_ex(ASN1_ITEM_rptr(CA_AUDIT_HEAD), sh->alg, sh->sig,
                               sh->tbs, NULL, X509_get0_pubkey(cacert), NULL,
                               NULL)
               != 1)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "signed audit head %" PRId64 " (entry %" PRId64
            ") does not verify with the CA certificate: forged or damaged",
            row->id, out->seq);
    /* The row's columns are for look-ups; they must say what it signs. */
    if (rc == P11CA_OK && out->ours
        && (row->seq != out->seq || !row->hash
            || strcmp(row->hash, out->hash) != 0))
        rc = p11ca_err_set(P11CA_E_STATE,
                           "signed audit head %" PRId64
                           " was edited: its row says entry %" PRId64
                           ", it signs entry %" PRId64,
                           row->id, row->seq, out->seq);
    CA_SIGNED_AUDIT_HEAD_free(sh);
    ERR_clear_error();
    return rc;
}

/* The newest head of this CA: seq and time (seq 0: none). */
static int last_head_cb(const reg_audit_head *h, void *arg)
{
    int64_t *last = arg;

    last[0] = h->seq;
    last[1] = h->at;
    return 1;
}

/* Whether a head is due over entry @tip (see ca_audit_checkpoint). */
static int head_due(ca *c, int64_t tip, bool force, bool *due)
{
    int64_t last[2] = {0, 0}, now = (int64_t)time(NULL);
    int rc = reg_audit_heads(c->reg, c->reg_id, true, last_head_cb, last);

    *due = false;
    if (rc < 0)
        return rc;
    if (tip == 0 || last[0] >= tip)
        return P11CA_OK; /* nothing new since the last head */
    *due = force || last[0] == 0
           || (c->s.audit_sign_every
               && tip - last[0] >= (int64_t)c->s.audit_sign_every)
           || (c->s.audit_sign_minutes
               && now - last[1] >= (int64_t)c->s.audit_sign_minutes * 60);
    return P11CA_OK;
}

int ca_audit_checkpoint(ca *c, bool force, ca_audit_head_info *info)
{
    char hash[65];
    int64_t tip = 0;
    ca_key *k = NULL;
    bool due = false;
    int rc;

    if (info)
        memset(info, 0, sizeof(*info));
    if (!c->cert) /* an intermediate waiting for its certificate */
        return P11CA_OK;
    rc = reg_audit_tip(c->reg, &tip, hash);
    if (rc == P11CA_OK)
        rc = head_due(c, tip, force, &due);
    if (rc != P11CA_OK || !due)
        return rc;
    rc = ca_signing_key(c, &k);
    if (rc == P11CA_OK)
        rc = ca_audit_sign_head(c->reg, k, c->s.digest, c->cert, c->reg_id,
                                info);
    return rc;
}

static int rows_add(const reg_audit_head *h, void *arg)
{
    struct head_rows *r = arg;
    reg_audit_head *n, *row;

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        n = realloc(r->h, cap * sizeof(*n));
        if (!n)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        r->h = n;
        r->cap = cap;
    }
    row = &r->h[r->n];
    *row = *h;
    row->hash = h->hash ? strdup(h->hash) : NULL;
    row->der = h->der_len ? OPENSSL_memdup(h->der, h->der_len) : NULL;
    if ((h->hash && !row->hash) || (h->der_len && !row->der)) {
        free((char *)row->hash);
        OPENSSL_free((void *)row->der);
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    r->n++;
    return 0;
}

static void rows_free(struct head_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->h[i].hash);
        OPENSSL_free((void *)r->h[i].der);
    }
    free(r->h);
}

/*
 * The verified heads of this CA against the chain of @entries entries: the
 * newest first (a cut tail is reported as a whole), then each one's entry.
 * Heads are not checked for order: two issuers may store theirs in either
 * order, and a clock may step back; each head must match the chain.
 */
static int heads_check(ca *c, const struct head_read *hr, size_t n,
                       size_t entries)
{
    const struct head_read *newest = &hr[0];
    char hash[65];
    int rc = P11CA_OK;

    for (size_t i = 1; i < n; i++)
        if (hr[i].seq > newest->seq)
            newest = &hr[i];
    if ((uint64_t)newest->seq > (uint64_t)entries)
        return p11ca_err_set(
            P11CA_E_STATE,
            "the audit trail ends at entry %zu, but the CA signed its head at entry %" PRId64
            ": entries %zu to %" PRId64 " were deleted",
            entries, newest->seq, entries + 1, newest->seq);
    for (size_t i = 0; rc == P11CA_OK && i < n; i++) {
        rc = reg_audit_entry_hash(c->reg, hr[i].seq, hash);
        if (rc == P11CA_OK && strcmp(hash, hr[i].hash) != 0)
            rc = p11ca_err_set(P11CA_E_STATE,
                               "audit entry %" PRId64
                               " is not the one the CA signed (head %" PRId64
                               "): the trail up to it was rewritten",
                               hr[i].seq, hr[i].id);
    }
    return rc;
}

static int heads_verify(ca *c, const struct head_rows *rows, size_t entries,
                        ca_audit_report *rep)
{
    struct head_read *hr = calloc(rows->n ? rows->n : 1, sizeof(*hr));
    int rc = hr ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    for (size_t i = 0; rc == P11CA_OK && i < rows->n; i++) {
        struct head_read *h = &hr[rep->heads];

        rc = head_read(c->cert, &rows->h[i], h);
        if (rc != P11CA_OK)
            break;
        if (!h->ours) { /* another CA's: its slot is used again */
            rep->other_heads++;
            continue;
        }
        if (h->seq >= rep->head_seq) {
            rep->head_seq = h->seq;
            rep->head_at = h->at;
        }
        rep->heads++;
    }
    if (rc == P11CA_OK && rep->heads == 0)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "no signed audit head of this CA: nothing protects the trail's tail (a head is signed at init, with every CRL and after audit_sign_every entries or audit_sign_minutes; sign one now with p11ca audit sign)");
    if (rc == P11CA_OK)
        rc = heads_check(c, hr, rep->heads, entries);
    free(hr);
    return rc;
}

int ca_audit_verify(ca *c, ca_audit_report *rep)
{
    struct head_rows rows = {0};
    int rc;

    memset(rep, 0, sizeof(*rep));
    /* Heads first: entries only grow, so every head read now is covered
     * by the chain read after it, even while others write. */
    rc = reg_audit_heads(c->reg, 0, false, rows_add, &rows);
    if (rc == P11CA_OK)
        rc = reg_audit_verify(c->reg, &rep->entries);
    if (rc == P11CA_OK && c->cert)
        rc = heads_verify(c, &rows, rep->entries, rep);
    if (rc == P11CA_OK)
        rc = reg_audit_verify_status(c->reg, &rep->certs);
    if (rc == P11CA_OK && rep->heads)
        rep->after_head = rep->entries - (size_t)rep->head_seq;
    rows_free(&rows);
    return rc;
}

/* The newest head row of this CA, copied. */
static int newest_cb(const reg_audit_head *h, void *arg)
{
    int rc = rows_add(h, arg);

    return rc ? rc : 1;
}

int ca_audit_head_export(ca *c, BIO *out, ca_audit_head_info *info)
{
    struct head_rows rows = {0};
    struct head_read hr;
    int rc;

    memset(info, 0, sizeof(*info));
    if (!c->cert)
        return p11ca_err_set(
            P11CA_E_STATE,
            "the CA in %s has no certificate yet: it has signed no audit head",
            c->dir);
    rc = reg_audit_heads(c->reg, c->reg_id, true, newest_cb, &rows);
    if (rc > 0)
        rc = P11CA_OK;
    if (rc == P11CA_OK && rows.n == 0)
        rc = p11ca_err_set(
            P11CA_E_NOTFOUND,
            "the CA in %s has signed no audit head yet (p11ca audit sign signs one)",
            c->dir);
    if (rc == P11CA_OK)
        rc = head_read(c->cert, &rows.h[0], &hr);
    if (rc == P11CA_OK && !hr.ours)
        rc =
            p11ca_err_set(P11CA_E_STATE,
                          "the newest audit head recorded for this CA (%" PRId64
                          ") was signed for another CA certificate",
                          hr.id);
    if (rc == P11CA_OK
        && BIO_write(out, rows.h[0].der, (int)rows.h[0].der_len)
               != (int)rows.h[0].der_len)
        rc = ca_ossl_err(P11CA_E_IO, "cannot write the audit head");
    if (rc == P11CA_OK) {
        info->seq = hr.seq;
        info->at = hr.at;
        memcpy(info->hash, hr.hash, sizeof(info->hash));
    }
    rows_free(&rows);
    return rc;
}
