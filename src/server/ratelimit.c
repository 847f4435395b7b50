/* SPDX-License-Identifier: Apache-2.0 */
/* Sign-up limits: a token bucket per registered CA and per profile that
 * has a limit of its own (per_sec tokens a second, at most burst), on a
 * monotonic clock, which the caller passes in so that tests control it. */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/internal.h"

int64_t srv_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refill(struct srv_bucket *b, int64_t now_ms)
{
    double add;

    if (now_ms <= b->last_ms)
        return;
    add = b->rate.per_sec * (double)(now_ms - b->last_ms) / 1000.0;
    b->tokens = fmin(b->rate.burst, b->tokens + add);
    b->last_ms = now_ms;
}

void srv_bucket_init(struct srv_bucket *b, const struct srv_rate *r,
                     int64_t now_ms)
{
    b->rate = *r;
    b->tokens = r->burst;
    b->last_ms = now_ms;
}

void srv_bucket_set_rate(struct srv_bucket *b, const struct srv_rate *r,
                         int64_t now_ms)
{
    refill(b, now_ms);
    b->rate = *r;
    b->tokens = fmin(b->tokens, r->burst);
}

void srv_bucket_refund(struct srv_bucket *b)
{
    if (!b->rate.unlimited)
        b->tokens = fmin(b->rate.burst, b->tokens + 1.0);
}

bool srv_bucket_take(struct srv_bucket *b, int64_t now_ms,
                     unsigned *retry_after_s)
{
    double wait_s;

    if (b->rate.unlimited)
        return true;
    refill(b, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    if (retry_after_s) {
        wait_s = b->rate.per_sec > 0 ? (1.0 - b->tokens) / b->rate.per_sec
                                     : SRV_RETRY_AFTER_MAX_S;
        wait_s = ceil(wait_s);
        *retry_after_s = wait_s < 1 ? 1
                         : wait_s > SRV_RETRY_AFTER_MAX_S
                             ? SRV_RETRY_AFTER_MAX_S
                             : (unsigned)wait_s;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Per-profile buckets                                                 */
/* ------------------------------------------------------------------ */

static struct srv_bucket *profile_bucket(struct srv_profile_buckets *pb,
                                         const char *profile)
{
    for (size_t i = 0; profile && i < pb->n; i++)
        if (strcmp(pb->v[i].profile, profile) == 0)
            return &pb->v[i].b;
    return NULL;
}

static void buckets_clear(struct srv_profile_bucket *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].profile);
    free(v);
}

int srv_profile_buckets_set(struct srv_profile_buckets *pb,
                            const struct srv_config *cfg, int64_t now_ms)
{
    size_t n = cfg->n_profile_rates;
    struct srv_profile_bucket *v = calloc(n + 1, sizeof(*v));
    const struct srv_profile_rate *pr;
    struct srv_bucket *old;

    if (!v)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(v[i].profile = strdup(cfg->profile_rates[i].profile))) {
            buckets_clear(v, n);
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        }
    pthread_mutex_lock(&pb->mu);
    for (size_t i = 0; i < n; i++) {
        pr = &cfg->profile_rates[i];
        old = profile_bucket(pb, pr->profile);
        if (old) {
            v[i].b = *old;
            srv_bucket_set_rate(&v[i].b, &pr->rate, now_ms);
        } else {
            srv_bucket_init(&v[i].b, &pr->rate, now_ms);
        }
    }
    buckets_clear(pb->v, pb->n);
    pb->v = v;
    pb->n = n;
    pthread_mutex_unlock(&pb->mu);
    return P11CA_OK;
}

void srv_profile_buckets_free(struct srv_profile_buckets *pb)
{
    buckets_clear(pb->v, pb->n);
    pb->v = NULL;
    pb->n = 0;
}

bool srv_profile_take(struct srv_profile_buckets *pb, const char *profile,
                      unsigned *retry_s)
{
    struct srv_bucket *b;
    bool ok = true;

    pthread_mutex_lock(&pb->mu);
    if ((b = profile_bucket(pb, profile)) != NULL)
        ok = srv_bucket_take(b, srv_now_ms(), retry_s);
    pthread_mutex_unlock(&pb->mu);
    return ok;
}

void srv_profile_refund(struct srv_profile_buckets *pb, const char *profile)
{
    struct srv_bucket *b;

    pthread_mutex_lock(&pb->mu);
    if ((b = profile_bucket(pb, profile)) != NULL)
        srv_bucket_refund(b);
    pthread_mutex_unlock(&pb->mu);
}
