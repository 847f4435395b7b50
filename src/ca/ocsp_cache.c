/* SPDX-License-Identifier: Apache-2.0 */
/* Encoded OCSP responses (reference-counted) and the bounded, thread-safe
 * cache of pre-signed ones: by certificate and CertID, least recently used
 * out first, with change epochs so that no response signed from an older
 * registry read can hide a status change. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>

#include "ca/ocsp.h"

#define BUCKETS_MIN 1024

struct ca_ocsp_resp {
    atomic_size_t refs;
    int status;
    int64_t produced_at;
    int64_t this_update;
    int64_t next_update;
    char etag[65];
    size_t len;
    unsigned char der[];
};

struct node;

/* One cached response: a CertID form of a certificate. */
struct form {
    struct node *node;
    struct form *next;                /* the node's forms */
    struct form *due_prev, *due_next; /* every form, in put order */
    unsigned char *certid;
    size_t certid_len;
    ca_ocsp_resp *resp;
};

/* A certificate with at least one cached form. */
struct node {
    int64_t ca_id;
    char serial[64];
    uint64_t hash;
    struct node *chain;
    struct node *lru_prev, *lru_next; /* lru_prev: more recently used */
    struct form *forms;
    size_t n_forms;
    ca_ocsp_state state;    /* what its forms say */
    uint64_t changed_epoch; /* the epoch of its last change; 0 */
    bool unknown;           /* counted in n_unknown */
};

struct ca_ocsp_cache {
    pthread_mutex_t mu;
    size_t max; /* forms */
    size_t n_forms;
    struct node **buckets;
    size_t n_buckets;
    size_t n_nodes;
    size_t n_unknown; /* nodes whose forms say unknown */
    struct node *lru_head, *lru_tail;
    struct form *due_head, *due_tail;
    uint64_t epoch;
    /* A put older than this fails for a certificate not cached: the
     * latest change of a certificate no longer (or not) in the cache. */
    uint64_t floor_epoch;
    uint64_t seed;
    ca_ocsp_cache_stats st;
};

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

/* SHA-256 for the ETags, fetched once: EVP_sha256() would be fetched
 * again for every response (a method store lookup under its lock). */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;

static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

ca_ocsp_resp *ca_ocsp_resp_new(const unsigned char *der, size_t len, int status,
                               int64_t produced_at, int64_t this_update,
                               int64_t next_update)
{
    static const char hx[] = "0123456789abcdef";
    ca_ocsp_resp *r = malloc(sizeof(*r) + len);
    unsigned char md[32];

    if (!r)
        return NULL;
    pthread_once(&sha256_once, sha256_fetch);
    if (!EVP_Digest(der, len, md, NULL, sha256 ? sha256 : EVP_sha256(), NULL)) {
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->status = status;
    r->produced_at = produced_at;
    r->this_update = this_update;
    r->next_update = next_update;
    for (int i = 0; i < 32; i++) {
        r->etag[2 * i] = hx[md[i] >> 4];
        r->etag[2 * i + 1] = hx[md[i] & 15];
    }
    r->etag[64] = '\0';
    r->len = len;
    memcpy(r->der, der, len);
    return r;
}

ca_ocsp_resp *ca_ocsp_resp_ref(ca_ocsp_resp *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void ca_ocsp_resp_unref(ca_ocsp_resp *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
}

const unsigned char *ca_ocsp_resp_der(const ca_ocsp_resp *r, size_t *len)
{
    *len = r->len;
    return r->der;
}

int ca_ocsp_resp_status(const ca_ocsp_resp *r)
{
    return r->status;
}

int64_t ca_ocsp_resp_produced_at(const ca_ocsp_resp *r)
{
    return r->produced_at;
}

int64_t ca_ocsp_resp_this_update(const ca_ocsp_resp *r)
{
    return r->this_update;
}

int64_t ca_ocsp_resp_next_update(const ca_ocsp_resp *r)
{
    return r->next_update;
}

const char *ca_ocsp_resp_etag(const ca_ocsp_resp *r)
{
    return r->etag;
}

/* ------------------------------------------------------------------ */
/* Nodes and lists (the caller holds the mutex)                        */
/* ------------------------------------------------------------------ */

/* FNV-1a over the CA id and the serial, from a random seed: serials in
 * requests are chosen by clients. */
static uint64_t key_hash(const ca_ocsp_cache *c, int64_t ca_id,
                         const char *serial)
{
    uint64_t h = c->seed ^ UINT64_C(14695981039346656037);
    uint64_t id = (uint64_t)ca_id;

    for (int i = 0; i < 8; i++, id >>= 8)
        h = (h ^ (id & 0xff)) * UINT64_C(1099511628211);
    for (const char *p = serial; *p; p++)
        h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    return h;
}

static struct node *node_find(const ca_ocsp_cache *c, int64_t ca_id,
                              const char *serial, uint64_t h)
{
    struct node *n = c->buckets[h & (c->n_buckets - 1)];

    for (; n; n = n->chain)
        if (n->hash == h && n->ca_id == ca_id && strcmp(n->serial, serial) == 0)
            return n;
    return NULL;
}

static void lru_unlink(ca_ocsp_cache *c, struct node *n)
{
    if (n->lru_prev)
        n->lru_prev->lru_next = n->lru_next;
    else
        c->lru_head = n->lru_next;
    if (n->lru_next)
        n->lru_next->lru_prev = n->lru_prev;
    else
        c->lru_tail = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
}

static void lru_front(ca_ocsp_cache *c, struct node *n)
{
    if (c->lru_head == n)
        return;
    if (n->lru_prev || n->lru_next || c->lru_tail == n)
        lru_unlink(c, n);
    n->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = n;
    c->lru_head = n;
    if (!c->lru_tail)
        c->lru_tail = n;
}

static void due_unlink(ca_ocsp_cache *c, struct form *f)
{
    if (f->due_prev)
        f->due_prev->due_next = f->due_next;
    else
        c->due_head = f->due_next;
    if (f->due_next)
        f->due_next->due_prev = f->due_prev;
    else
        c->due_tail = f->due_prev;
    f->due_prev = f->due_next = NULL;
}

static void due_append(ca_ocsp_cache *c, struct form *f)
{
    f->due_prev = c->due_tail;
    f->due_next = NULL;
    if (c->due_tail)
        c->due_tail->due_next = f;
    else
        c->due_head = f;
    c->due_tail = f;
}

/* Free @f, already out of its node's list: out of the due list too. */
static void form_free(ca_ocsp_cache *c, struct form *f)
{
    c->n_forms--;
    due_unlink(c, f);
    ca_ocsp_resp_unref(f->resp);
    free(f->certid);
    free(f);
}

/* Take @f out of its node and the due list, and free it. */
static void form_remove(ca_ocsp_cache *c, struct form *f)
{
    struct node *n = f->node;
    struct form **pp = &n->forms;

    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    n->n_forms--;
    form_free(c, f);
}

/* Remove @n and its forms; a put older than its last change must still
 * fail, so the change moves into the floor. */
static void node_remove(ca_ocsp_cache *c, struct node *n)
{
    struct node **pp = &c->buckets[n->hash & (c->n_buckets - 1)];
    struct form *f, *next;

    for (f = n->forms; f; f = next) {
        next = f->next;
        form_free(c, f);
    }
    n->forms = NULL;
    n->n_forms = 0;
    if (n->changed_epoch > c->floor_epoch)
        c->floor_epoch = n->changed_epoch;
    if (n->unknown)
        c->n_unknown--;
    while (*pp != n)
        pp = &(*pp)->chain;
    *pp = n->chain;
    lru_unlink(c, n);
    c->n_nodes--;
    free(n);
}

/* More buckets once there are more nodes than buckets (failure to grow
 * only makes chains longer). */
static void buckets_grow(ca_ocsp_cache *c)
{
    size_t nb = c->n_buckets * 2;
    struct node **b, *n, *next;

    if (c->n_nodes <= c->n_buckets || !(b = calloc(nb, sizeof(*b))))
        return;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (n = c->buckets[i]; n; n = next) {
            next = n->chain;
            n->chain = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = nb;
}

static struct node *node_add(ca_ocsp_cache *c, int64_t ca_id,
                             const char *serial, uint64_t h)
{
    struct node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->ca_id = ca_id;
    strcpy(n->serial, serial);
    n->hash = h;
    n->chain = c->buckets[h & (c->n_buckets - 1)];
    c->buckets[h & (c->n_buckets - 1)] = n;
    c->n_nodes++;
    lru_front(c, n);
    buckets_grow(c);
    return n;
}

/* Least recently used certificates out until the bound holds; @keep
 * (being filled) stays. */
static void evict(ca_ocsp_cache *c, const struct node *keep)
{
    struct node *n;

    while (c->n_forms > c->max && (n = c->lru_tail) && n != keep) {
        c->st.evicted += n->n_forms;
        node_remove(c, n);
    }
}

/* The unknown serials cached at most: with all their CertID forms, a
 * quarter of the bound (at least one). */
static size_t unknown_max(const ca_ocsp_cache *c)
{
    size_t n = c->max / (CA_OCSP_UNKNOWN_SHARE * CA_OCSP_CACHE_FORMS);

    return n > 0 ? n : 1;
}

static bool state_eq(const ca_ocsp_state *a, const ca_ocsp_state *b)
{
    return a->status == b->status && a->reason == b->reason
           && a->revoked_at == b->revoked_at && a->invalidity == b->invalidity
           && a->until == b->until;
}

static int certid_copy(const struct node *n, const struct form *f,
                       ca_ocsp_certid *id)
{
    id->ca_id = n->ca_id;
    memcpy(id->serial, n->serial, sizeof(id->serial));
    id->len = f->certid_len;
    id->der = malloc(f->certid_len);
    if (!id->der)
        return P11CA_E_NOMEM;
    memcpy(id->der, f->certid, f->certid_len);
    return P11CA_OK;
}

/* The form of @n for @certid, or a new one (the oldest goes past
 * CA_OCSP_CACHE_FORMS).  NULL when out of memory. */
static struct form *form_slot(ca_ocsp_cache *c, struct node *n,
                              const unsigned char *certid, size_t len)
{
    struct form *f, *oldest = NULL;

    for (f = n->forms; f; f = f->next) {
        if (f->certid_len == len && memcmp(f->certid, certid, len) == 0)
            return f;
        if (!oldest || f->resp->produced_at <= oldest->resp->produced_at)
            oldest = f;
    }
    if (n->n_forms >= CA_OCSP_CACHE_FORMS)
        form_remove(c, oldest);
    f = calloc(1, sizeof(*f));
    if (f && !(f->certid = malloc(len))) {
        free(f);
        f = NULL;
    }
    if (!f)
        return NULL;
    memcpy(f->certid, certid, len);
    f->certid_len = len;
    f->node = n;
    f->next = n->forms;
    n->forms = f;
    n->n_forms++;
    c->n_forms++;
    due_append(c, f);
    return f;
}

/* ------------------------------------------------------------------ */
/* The API                                                             */
/* ------------------------------------------------------------------ */

int ca_ocsp_cache_new(size_t max, ca_ocsp_cache **out)
{
    ca_ocsp_cache *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c || !(c->buckets = calloc(BUCKETS_MIN, sizeof(*c->buckets)))) {
        free(c);
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1)
        c->seed = (uint64_t)(uintptr_t)c;
    c->n_buckets = BUCKETS_MIN;
    /* A certificate being filled is never evicted: room for its forms. */
    c->max = max > CA_OCSP_CACHE_FORMS ? max : CA_OCSP_CACHE_FORMS;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return P11CA_OK;
}

void ca_ocsp_cache_free(ca_ocsp_cache *c)
{
    if (!c)
        return;
    while (c->lru_head)
        node_remove(c, c->lru_head);
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

uint64_t ca_ocsp_cache_epoch(ca_ocsp_cache *c)
{
    uint64_t e;

    pthread_mutex_lock(&c->mu);
    e = c->epoch;
    pthread_mutex_unlock(&c->mu);
    return e;
}

bool ca_ocsp_cache_get(ca_ocsp_cache *c, int64_t ca_id, const char *serial,
                       const unsigned char *certid, size_t certid_len,
                       int64_t now, ca_ocsp_resp **out)
{
    uint64_t h = key_hash(c, ca_id, serial);
    struct node *n;
    struct form *f = NULL;

    *out = NULL;
    pthread_mutex_lock(&c->mu);
    n = node_find(c, ca_id, serial, h);
    for (f = n ? n->forms : NULL; f; f = f->next)
        if (f->certid_len == certid_len
            && memcmp(f->certid, certid, certid_len) == 0)
            break;
    if (f && now < f->resp->next_update) {
        *out = ca_ocsp_resp_ref(f->resp);
        lru_front(c, n);
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return *out != NULL;
}

bool ca_ocsp_cache_put(ca_ocsp_cache *c, int64_t ca_id, const char *serial,
                       const unsigned char *certid, size_t certid_len,
                       const ca_ocsp_state *state, uint64_t epoch,
                       ca_ocsp_resp *resp)
{
    uint64_t h = key_hash(c, ca_id, serial);
    struct node *n;
    struct form *f = NULL;

    if (strlen(serial) >= sizeof(n->serial))
        return false;
    pthread_mutex_lock(&c->mu);
    n = node_find(c, ca_id, serial, h);
    if (n ? epoch < n->changed_epoch : epoch < c->floor_epoch) {
        c->st.dropped++;
        goto out;
    }
    /* Unknown serials (a negative cache: anyone may ask about any
     * serial) take at most a quarter of the bound, so that a flood of
     * them cannot push the responses of real certificates out. */
    if (state->status == V_OCSP_CERTSTATUS_UNKNOWN && !(n && n->unknown)
        && c->n_unknown >= unknown_max(c)) {
        c->st.unknown_refused++;
        goto out;
    }
    if (!n && !(n = node_add(c, ca_id, serial, h)))
        goto out;
    /* Responses from another registry state are not kept beside it. */
    if (n->n_forms > 0 && !state_eq(&n->state, state))
        while (n->forms)
            form_remove(c, n->forms);
    f = form_slot(c, n, certid, certid_len);
    if (!f)
        goto out;
    ca_ocsp_resp_unref(f->resp);
    f->resp = ca_ocsp_resp_ref(resp);
    due_unlink(c, f);
    due_append(c, f);
    n->state = *state;
    if (n->unknown != (state->status == V_OCSP_CERTSTATUS_UNKNOWN)) {
        n->unknown = !n->unknown;
        if (n->unknown)
            c->n_unknown++;
        else
            c->n_unknown--;
    }
    lru_front(c, n);
    evict(c, n);
out:
    if (!f && n && n->n_forms == 0)
        node_remove(c, n);
    pthread_mutex_unlock(&c->mu);
    return f != NULL;
}

void ca_ocsp_certids_free(ca_ocsp_certid *ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++) {
        free(ids[i].der);
        ids[i].der = NULL;
    }
}

int ca_ocsp_cache_invalidate(ca_ocsp_cache *c, int64_t ca_id,
                             const char *serial, ca_ocsp_certid *ids,
                             size_t *n_ids)
{
    uint64_t h = key_hash(c, ca_id, serial);
    struct node *n;
    int rc = P11CA_OK;
    size_t k = 0;

    pthread_mutex_lock(&c->mu);
    c->epoch++;
    n = node_find(c, ca_id, serial, h);
    for (struct form *f = n ? n->forms : NULL; f && ids; f = f->next)
        if (rc == P11CA_OK && (rc = certid_copy(n, f, &ids[k])) == P11CA_OK)
            k++;
    if (n) {
        n->changed_epoch = c->epoch;
        node_remove(c, n);
    } else {
        /* Not cached: no put begun before now may add it. */
        c->floor_epoch = c->epoch;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != P11CA_OK) {
        ca_ocsp_certids_free(ids, k);
        k = 0;
        rc = p11ca_err_set(rc, "out of memory");
    }
    if (n_ids)
        *n_ids = k;
    return rc;
}

bool ca_ocsp_cache_mark(ca_ocsp_cache *c, int64_t ca_id, const char *serial,
                        ca_ocsp_state *st)
{
    uint64_t h = key_hash(c, ca_id, serial);
    struct node *n;

    pthread_mutex_lock(&c->mu);
    c->epoch++;
    n = node_find(c, ca_id, serial, h);
    if (n) {
        n->changed_epoch = c->epoch;
        *st = n->state;
    } else {
        c->floor_epoch = c->epoch;
    }
    pthread_mutex_unlock(&c->mu);
    return n != NULL;
}

int ca_ocsp_cache_due(ca_ocsp_cache *c, int64_t now, int64_t before, size_t max,
                      ca_ocsp_certid **ids, size_t *n)
{
    ca_ocsp_certid *out = NULL;
    struct form *f, *next;
    struct node *node;
    size_t k = 0;
    int rc = P11CA_OK;

    *ids = NULL;
    *n = 0;
    if (max > 0 && !(out = calloc(max, sizeof(*out))))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    for (f = c->due_head; f && rc == P11CA_OK; f = next) {
        next = f->due_next;
        if (f->resp->next_update <= now) {
            node = f->node;
            /* @next may be a form of the same node: keep the node. */
            form_remove(c, f);
            c->st.expired++;
            if (node->n_forms == 0)
                node_remove(c, node);
            continue;
        }
        if (f->resp->next_update > before || k >= max)
            break;
        /* An unknown serial's response is not signed again: it goes at
         * its nextUpdate, and a query signs it then if still asked. */
        if (f->node->unknown)
            continue;
        if ((rc = certid_copy(f->node, f, &out[k])) == P11CA_OK)
            k++;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != P11CA_OK) {
        ca_ocsp_certids_free(out, k);
        free(out);
        return p11ca_err_set(rc, "out of memory");
    }
    *ids = out;
    *n = k;
    return P11CA_OK;
}

void ca_ocsp_cache_get_stats(ca_ocsp_cache *c, ca_ocsp_cache_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->st;
    st->responses = c->n_forms;
    st->certs = c->n_nodes;
    st->unknown = c->n_unknown;
    pthread_mutex_unlock(&c->mu);
}
