/* SPDX-License-Identifier: Apache-2.0 */
/* Registry query latencies through the registry library (the code paths of
 * `p11ca cert` and of `p11ca serve`'s GET /v1/certs), in one process, for
 * either backend (scripts/bench/registry):
 *  - lookup by serial (reg_get) of each sample, once: p50, p99, max;
 *  - lookup by CN (reg_search, cn =) of each sample, once;
 *  - `--expiring 30d`, first page as the API asks for it (not revoked,
 *    expiring within 30 days, recording order, 100 + 1 rows), ITER times;
 *  - count by status (reg_count), each status 3 times: the slowest.
 * SAMPLES holds "SERIAL CN" lines (random rows of the registry).
 *   registry-query LOCATION SAMPLES [ITER] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/registry.h"

#define MAX_SAMPLES 100000

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The q-quantile of @v (sorted here): the smallest value with at least
 * q * n values at or below it. */
static double quantile(double *v, size_t n, double q)
{
    size_t k = (size_t)(q * (double)n + 0.999999);

    qsort(v, n, sizeof(*v), cmp_double);
    return v[k ? k - 1 : 0];
}

static void report(const char *what, double *v, size_t n, const char *extra)
{
    double p50 = quantile(v, n, 0.5), p99 = quantile(v, n, 0.99);

    printf("%s: p50 %.3f ms, p99 %.3f ms, max %.3f ms (%zu queries%s)\n", what,
           p50, p99, v[n - 1], n, extra);
}

static int count_cb(const reg_cert *c, void *arg)
{
    (void)c;
    (*(size_t *)arg)++;
    return 0;
}

int main(int argc, char **argv)
{
    static char serials[MAX_SAMPLES][64], cns[MAX_SAMPLES][64];
    static double t[MAX_SAMPLES];
    reg *r = NULL;
    reg_cert c = {0};
    reg_filter f = {0};
    size_t ns = 0, found = 0, n;
    char extra[64];
    int iter = argc > 3 ? atoi(argv[3]) : 200;
    FILE *in;
    double t0;

    if (argc < 3 || iter < 1 || iter > MAX_SAMPLES
        || !(in = fopen(argv[2], "r"))) {
        fprintf(stderr, "usage: registry-query LOCATION SAMPLES [ITER]\n");
        return 2;
    }
    while (ns < MAX_SAMPLES
           && fscanf(in, "%63s %63s", serials[ns], cns[ns]) == 2)
        ns++;
    fclose(in);
    if (ns == 0 || reg_open(argv[1], &r) != 0) {
        fprintf(stderr, "registry-query: no samples or %s\n",
                p11ca_err_message());
        return 1;
    }
    for (size_t i = 0; i < ns; i++) {
        t0 = now_ms();
        if (reg_get(r, 0, serials[i], &c) != 0) {
            fprintf(stderr, "%s: %s\n", serials[i], p11ca_err_message());
            return 1;
        }
        t[i] = now_ms() - t0;
        reg_cert_clear(&c);
    }
    report("lookup by serial", t, ns, "");
    for (size_t i = 0; i < ns; i++) {
        f.cn = cns[i];
        t0 = now_ms();
        if (reg_search(r, &f, count_cb, &found) < 0)
            return 1;
        t[i] = now_ms() - t0;
    }
    snprintf(extra, sizeof(extra), ", %.2f found per lookup",
             (double)found / (double)ns);
    report("lookup by CN", t, ns, extra);
    memset(&f, 0, sizeof(f));
    f.expires_after = (int64_t)time(NULL);
    f.expires_before = f.expires_after + 30 * 86400;
    f.not_revoked = true;
    f.limit = 101;
    for (int i = 0; i < iter; i++) {
        found = 0;
        t0 = now_ms();
        if (reg_search(r, &f, count_cb, &found) < 0)
            return 1;
        t[i] = now_ms() - t0;
    }
    snprintf(extra, sizeof(extra), ", %zu rows each", found);
    report("--expiring 30d, first page", t, (size_t)iter, extra);
    f.limit = 0;
    t0 = now_ms();
    if (reg_count(r, &f, &n) != 0)
        return 1;
    printf("--expiring 30d --count: %.1f ms (%zu certificates)\n",
           now_ms() - t0, n);
    for (reg_status st = REG_ACTIVATED; st <= REG_REVOKED; st++) {
        double worst = 0;

        memset(&f, 0, sizeof(f));
        f.status = st;
        for (int i = 0; i < 3; i++) {
            t0 = now_ms();
            if (reg_count(r, &f, &n) != 0)
                return 1;
            t0 = now_ms() - t0;
            worst = t0 > worst ? t0 : worst;
        }
        printf("count by status %s: %.1f ms at most of 3 (%zu certificates)\n",
               reg_status_name(st), worst, n);
    }
    reg_close(r);
    return 0;
}
