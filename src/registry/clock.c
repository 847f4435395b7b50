/* SPDX-License-Identifier: Apache-2.0 */
/* The registry's clock: recorded_at, audit times and the seconds of the
 * rate limits; waiting for the next second; the test suite's virtual clock
 * (P11CA_TEST_CLOCK, docs/internals/registry.md). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "registry/internal.h"

static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
static int64_t clock_test_base; /* 0: the real clock */
/* Seconds the virtual clock moved while the process "waited". */
static _Atomic int64_t clock_test_waited;

/*
 * P11CA_TEST_CLOCK=SECONDS: a virtual clock for the test suite.  It starts
 * at SECONDS (Unix time) and moves only when the process waits for the
 * next second (reg_clock_wait), which then returns at once: a test sets
 * the time each process starts at and gets the same outcome on any
 * machine, at any load.  A malformed value is a precondition failure
 * (abort under P11CA_STRICT=1), never silently the real clock.
 */
static void clock_init(void)
{
    const char *s = getenv("P11CA_TEST_CLOCK");
    char *end = NULL;
    long long v;

    if (!s || !*s)
        return;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0) {
        log_precondition_failed("P11CA_TEST_CLOCK is a positive number of "
                                "seconds",
                                __FILE__, __LINE__, __func__);
        return;
    }
    clock_test_base = v;
    LOG_INFO(REG, "the registry's clock is the test clock, from %lld", v);
}

int64_t reg_now(void)
{
    pthread_once(&clock_once, clock_init);
    if (clock_test_base)
        return clock_test_base + atomic_load(&clock_test_waited);
    return (int64_t)time(NULL);
}

void reg_clock_test_set(int64_t base)
{
    pthread_once(&clock_once, clock_init);
    clock_test_base = base;
    atomic_store(&clock_test_waited, 0);
}

void reg_clock_wait(int64_t now)
{
    struct timespec ts, left;

    pthread_once(&clock_once, clock_init);
    if (clock_test_base) {
        /* At least to @now + 1, as a real wait would be. */
        int64_t cur = atomic_load(&clock_test_waited);
        while (clock_test_base + cur <= now
               && !atomic_compare_exchange_weak(&clock_test_waited, &cur,
                                                now + 1 - clock_test_base))
            ;
        return;
    }
    while (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec <= now) {
        left.tv_sec = now - ts.tv_sec;
        left.tv_nsec = 1000000000L - ts.tv_nsec;
        if (left.tv_nsec == 1000000000L) {
            left.tv_sec++;
            left.tv_nsec = 0;
        }
        if (nanosleep(&left, NULL) != 0 && errno != EINTR)
            break;
    }
}
