/* SPDX-License-Identifier: Apache-2.0 */
/* Waiting for a token that is away for a moment: the bound, read from
 * configuration, and a backoff of growing pauses on the monotonic clock. */
#include "config.h"

#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

CK_RV p11_token_wait_parse(const char *s, long *ms)
{
    unsigned long whole = 0, frac = 0, scale = 1000;
    const char *p = s;

    return_val_if_fail(ms != NULL, CKR_ARGUMENTS_BAD);
    *ms = 0;
    if (!s || !isdigit((unsigned char)*p))
        goto bad;
    /* Seconds with at most three decimals: no strtod, no locale. */
    for (; isdigit((unsigned char)*p); p++) {
        whole = whole * 10 + (unsigned long)(*p - '0');
        if (whole > P11_TOKEN_WAIT_MAX_MS / 1000)
            goto bad;
    }
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            goto bad;
        for (; isdigit((unsigned char)*p) && scale > 1; p++) {
            scale /= 10;
            frac += (unsigned long)(*p - '0') * scale;
        }
        if (isdigit((unsigned char)*p))
            goto bad; /* finer than a millisecond */
    }
    if (*p != '\0' || whole * 1000 + frac > P11_TOKEN_WAIT_MAX_MS)
        goto bad;
    *ms = (long)(whole * 1000 + frac);
    if (*ms == 0)
        *ms = P11_TOKEN_WAIT_NONE;
    return CKR_OK;
bad:
    return p11_error_set(
        P11_RV_BAD_INPUT, NULL, NULL, NULL,
        "token wait \"%s\": give seconds from 0 to %d, with at most three decimals (0: do not wait)",
        s ? s : "", P11_TOKEN_WAIT_MAX_MS / 1000);
}

long p11_token_wait_resolve(long cfg_ms)
{
    const char *env;
    long ms;

    if (cfg_ms == 0) {
        env = getenv("P11CA_TOKEN_WAIT");
        if (env && *env && p11_token_wait_parse(env, &ms) == CKR_OK)
            cfg_ms = ms;
        else if (env && *env)
            LOG_DBG(
                P11,
                "P11CA_TOKEN_WAIT=%s is not a number of seconds: the default applies",
                env);
    }
    if (cfg_ms == 0)
        return P11_TOKEN_WAIT_DEFAULT_MS;
    if (cfg_ms < 0)
        return 0;
    return cfg_ms > P11_TOKEN_WAIT_MAX_MS ? P11_TOKEN_WAIT_MAX_MS : cfg_ms;
}

uint64_t p11_now_ms(void)
{
    struct timespec ts;

    /* Monotonic: a clock set back or forth does not stretch a wait. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void p11_wait_start(struct p11_wait *w, long bound_ms, uint64_t now_ms)
{
    memset(w, 0, sizeof(*w));
    w->start_ms = now_ms;
    w->deadline_ms = now_ms + (uint64_t)(bound_ms > 0 ? bound_ms : 0);
    w->pause_ms = P11_WAIT_FIRST_PAUSE_MS;
    w->started = true;
}

long p11_wait_next(struct p11_wait *w, uint64_t now_ms)
{
    uint64_t left;
    long pause;

    if (!w->started || now_ms >= w->deadline_ms)
        return -1;
    left = w->deadline_ms - now_ms;
    pause = (long)w->pause_ms;
    if ((uint64_t)pause > left)
        pause = (long)left;
    /* 10, 20, 40 ... ms, then every P11_WAIT_MAX_PAUSE_MS: a token back
     * after a few ms is seen at once, a long wait costs few scans. */
    w->pause_ms *= 2;
    if (w->pause_ms > P11_WAIT_MAX_PAUSE_MS)
        w->pause_ms = P11_WAIT_MAX_PAUSE_MS;
    w->rounds++;
    return pause;
}

long p11_wait_elapsed(const struct p11_wait *w, uint64_t now_ms)
{
    return w->started ? (long)(now_ms - w->start_ms) : 0;
}

bool p11_wait_pause(struct p11_wait *w, long bound_ms)
{
    struct timespec ts;
    long pause;

    if (!w->started) {
        if (bound_ms <= 0)
            return false;
        p11_wait_start(w, bound_ms, p11_now_ms());
    }
    pause = p11_wait_next(w, p11_now_ms());
    if (pause < 0)
        return false;
    ts.tv_sec = pause / 1000;
    ts.tv_nsec = (pause % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return true;
}
