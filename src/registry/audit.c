/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail: a SHA-256 hash chain over every entry, appended inside
 * the caller's transaction and verified entry by entry; its signed heads
 * (stored as the CA signed them). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "registry/internal.h"

/* Limits on what one entry may carry (bad input, not storage limits). */
#define AUDIT_TEXT_MAX 1024

/* The chain's anchor: the prev_hash of entry 1. */
static const char audit_zero_hash[REG_HASH_HEX_SIZE] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct audit_verify {
    int64_t expected;             /* the seq the next entry must have */
    char prev[REG_HASH_HEX_SIZE]; /* the hash it must point to */
    size_t checked;
};

static int audit_put_int(EVP_MD_CTX *md, int64_t v);
static int audit_put_str(EVP_MD_CTX *md, const char *s);
static int audit_hash(const reg_audit *a, char out[REG_HASH_HEX_SIZE]);
static int audit_check_args(const char *actor, const char *action,
                            const char *object, const char *details);
static int audit_verify_one(const reg_audit *a, void *arg);

/* A tag byte and the value as 8 bytes, big-endian. */
static int audit_put_int(EVP_MD_CTX *md, int64_t v)
{
    unsigned char b[9];
    uint64_t u = (uint64_t)v;

    b[0] = 'I';
    for (int i = 8; i >= 1; i--, u >>= 8)
        b[i] = (unsigned char)(u & 0xff);
    return EVP_DigestUpdate(md, b, sizeof(b));
}

/* 'N' for NULL, else 'S', the length as 8 bytes big-endian, the bytes:
 * no field can run into the next one. */
static int audit_put_str(EVP_MD_CTX *md, const char *s)
{
    unsigned char b[9];
    uint64_t u = s ? (uint64_t)strlen(s) : 0;
    size_t len = (size_t)u;

    if (!s)
        return EVP_DigestUpdate(md, "N", 1);
    b[0] = 'S';
    for (int i = 8; i >= 1; i--, u >>= 8)
        b[i] = (unsigned char)(u & 0xff);
    return EVP_DigestUpdate(md, b, sizeof(b)) && EVP_DigestUpdate(md, s, len);
}

/*
 * Hex SHA-256 of the canonical encoding of an entry: a version label, then
 * seq, at, actor, action, object, details, prev_hash.  Changing this
 * encoding breaks every existing chain: add a new label instead.
 */
static int audit_hash(const reg_audit *a, char out[REG_HASH_HEX_SIZE])
{
    static const char label[] = "p11ca-audit-v1";
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[32];
    unsigned int dlen = 0;
    int rc = P11CA_E_INTERNAL;

    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(md, label, sizeof(label))
        || !audit_put_int(md, a->seq) || !audit_put_int(md, a->at)
        || !audit_put_str(md, a->actor) || !audit_put_str(md, a->action)
        || !audit_put_str(md, a->object) || !audit_put_str(md, a->details)
        || !audit_put_str(md, a->prev_hash) || !EVP_DigestFinal_ex(md, d, &dlen)
        || dlen != sizeof(d)) {
        p11ca_err_set(rc, "SHA-256 of audit entry %" PRId64 " failed", a->seq);
        goto out;
    }
    for (unsigned i = 0; i < dlen; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

static int audit_check_args(const char *actor, const char *action,
                            const char *object, const char *details)
{
    if (!actor || !*actor || !action || !*action)
        return p11ca_err_set(P11CA_E_INPUT,
                             "an audit entry needs an actor and an action");
    if (strlen(actor) > AUDIT_TEXT_MAX || strlen(action) > AUDIT_TEXT_MAX
        || (object && strlen(object) > AUDIT_TEXT_MAX))
        return p11ca_err_set(
            P11CA_E_INPUT,
            "audit actor, action and object are limited to %d bytes",
            AUDIT_TEXT_MAX);
    if (details && strlen(details) > REG_DETAILS_MAX)
        return p11ca_err_set(P11CA_E_INPUT,
                             "audit details are limited to %d bytes",
                             REG_DETAILS_MAX);
    return 0;
}

int reg_audit_append_tx(reg *r, int64_t at, const char *actor,
                        const char *action, const char *object,
                        const char *details)
{
    char prev[REG_HASH_HEX_SIZE] = "", hash[REG_HASH_HEX_SIZE];
    reg_audit a;
    int64_t last = 0;
    int rc;

    if ((rc = audit_check_args(actor, action, object, details)))
        return rc;
    if ((rc = r->be->audit_last(r->db, &last, prev, sizeof(prev))))
        return rc;
    a = (reg_audit){
        .seq = last + 1,
        .at = at,
        .actor = actor,
        .action = action,
        .object = object,
        .details = details,
        .prev_hash = last ? prev : audit_zero_hash,
        .hash = hash,
    };
    if ((rc = audit_hash(&a, hash)))
        return rc;
    return r->be->audit_append(r->db, &a);
}

int reg_audit_add(reg *r, const char *actor, const char *action,
                  const char *object, const char *details)
{
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    if ((rc = audit_check_args(actor, action, object, details)))
        return rc;
    if ((rc = r->be->begin(r->db, true)))
        return rc;
    rc = reg_audit_append_tx(r, reg_now(), actor, action, object, details);
    if (!rc)
        rc = r->be->commit(r->db);
    if (rc)
        r->be->rollback(r->db);
    return rc;
}

int reg_audit_list(reg *r, int64_t since_seq, reg_audit_cb cb, void *arg)
{
    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    return r->be->audit_list(r->db, since_seq, cb, arg);
}

/* One entry in seq order: no gap, its own hash, the link to the last. */
static int audit_verify_one(const reg_audit *a, void *arg)
{
    struct audit_verify *v = arg;
    char hash[REG_HASH_HEX_SIZE];
    int rc;

    if (a->seq != v->expected)
        return p11ca_err_set(P11CA_E_STATE,
                             "audit entry %" PRId64 " is missing (deleted)",
                             v->expected);
    if ((rc = audit_hash(a, hash)))
        return rc;
    if (!a->hash || strcmp(hash, a->hash) != 0)
        return p11ca_err_set(P11CA_E_STATE,
                             "audit entry %" PRId64 " was modified", a->seq);
    if (a->seq == 1 && (!a->prev_hash || strcmp(a->prev_hash, v->prev)))
        return p11ca_err_set(
            P11CA_E_STATE,
            "audit entry 1 was replaced: it does not start the chain");
    /* Its own hash holds, so the previous entry was rewritten (with a
     * recomputed hash) or this one was replaced wholesale. */
    if (!a->prev_hash || strcmp(a->prev_hash, v->prev) != 0)
        return p11ca_err_set(P11CA_E_STATE,
                             "audit entry %" PRId64
                             " was modified or replaced: entry %" PRId64
                             " does not chain to it",
                             a->seq - 1, a->seq);
    memcpy(v->prev, hash, sizeof(v->prev));
    v->expected++;
    v->checked++;
    return 0;
}

int reg_audit_verify(reg *r, size_t *entries)
{
    struct audit_verify v = {.expected = 1};
    int rc;

    return_val_if_fail(r, P11CA_E_INTERNAL);
    memcpy(v.prev, audit_zero_hash, sizeof(v.prev));
    if (entries)
        *entries = 0;
    /* One SELECT: a consistent snapshot even while others append. */
    rc = r->be->audit_list(r->db, 0, audit_verify_one, &v);
    if (entries)
        *entries = v.checked;
    return rc;
}

int reg_audit_tip(reg *r, int64_t *seq, char hash[REG_HASH_HEX_SIZE])
{
    return_val_if_fail(r && seq && hash, P11CA_E_INTERNAL);
    return r->be->audit_last(r->db, seq, hash, REG_HASH_HEX_SIZE);
}

struct audit_one_hash {
    int64_t seq;
    char *hash;
};

static int audit_hash_cb(const reg_audit *a, void *arg)
{
    struct audit_one_hash *h = arg;

    if (a->seq == h->seq && a->hash)
        snprintf(h->hash, REG_HASH_HEX_SIZE, "%s", a->hash);
    return 1; /* the first entry after seq - 1 is the only one wanted */
}

int reg_audit_entry_hash(reg *r, int64_t seq, char hash[REG_HASH_HEX_SIZE])
{
    struct audit_one_hash h = {.seq = seq, .hash = hash};
    int rc;

    return_val_if_fail(r && hash, P11CA_E_INTERNAL);
    hash[0] = '\0';
    if (seq < 1)
        return p11ca_err_set(P11CA_E_INPUT, "audit entries start at 1");
    rc = r->be->audit_list(r->db, seq - 1, audit_hash_cb, &h);
    if (rc < 0)
        return rc;
    if (!hash[0])
        return p11ca_err_set(P11CA_E_NOTFOUND,
                             "the audit trail has no entry %" PRId64, seq);
    return 0;
}

/* reg_audit_head_add's work, in a write transaction. */
static int audit_head_add_tx(reg *r, const reg_audit_head *h)
{
    char hash[REG_HASH_HEX_SIZE];
    int rc = reg_audit_entry_hash(r, h->seq, hash);

    if (rc == P11CA_E_NOTFOUND || (!rc && strcmp(hash, h->hash) != 0))
        return p11ca_err_set(
            P11CA_E_STATE,
            "audit entry %" PRId64
            " is not the one signed (the trail changed while its head was signed)",
            h->seq);
    return rc ? rc : r->be->head_add(r->db, h);
}

int reg_audit_head_add(reg *r, const reg_audit_head *h)
{
    int rc;

    return_val_if_fail(r && h, P11CA_E_INTERNAL);
    if (!h->hash || strlen(h->hash) != REG_HASH_HEX_LEN || !h->der
        || !h->der_len || h->seq < 1)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "a signed audit head needs an entry, its hash and the signed bytes");
    if ((rc = r->be->begin(r->db, true)))
        return rc;
    rc = audit_head_add_tx(r, h);
    if (!rc)
        rc = r->be->commit(r->db);
    if (rc)
        r->be->rollback(r->db);
    return rc;
}

int reg_audit_heads(reg *r, int64_t ca_id, bool newest_first,
                    reg_audit_head_cb cb, void *arg)
{
    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    return r->be->head_list(r->db, ca_id, newest_first, cb, arg);
}
