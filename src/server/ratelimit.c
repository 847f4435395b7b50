/* SPDX-License-Identifier: Apache-2.0 */
/* Sign-up limits: a token bucket per registered CA (per_sec tokens a
 * second, at most burst), on the loop thread's monotonic clock, which the
 * caller passes in so that tests control it. */
#include "config.h"

#include <math.h>
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
