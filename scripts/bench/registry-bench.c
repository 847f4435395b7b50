/* SPDX-License-Identifier: Apache-2.0 */
/* Registry query times, in process (no process start-up): lookup by
 * serial, by CN, and counting the certificates expiring within 30 days. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/registry.h"

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int count_cb(const reg_cert *c, void *arg)
{
    (void)c;
    (*(size_t *)arg)++;
    return 0;
}

int main(int argc, char **argv)
{
    reg *r = NULL;
    reg_cert c = {0};
    reg_filter f = {0};
    size_t n = 0, found = 0;
    double t0, t1;
    int iter = 200;

    if (argc != 4 || reg_open(argv[1], &r) != 0) {
        fprintf(stderr, "usage: registry-bench DB SERIAL CN\n");
        return 2;
    }
    t0 = now_ms();
    for (int i = 0; i < iter; i++) {
        if (reg_get(r, 0, argv[2], &c) != 0)
            return 1;
        reg_cert_clear(&c);
    }
    t1 = now_ms();
    printf("lookup by serial: %.3f ms\n", (t1 - t0) / iter);
    f.cn = argv[3];
    t0 = now_ms();
    for (int i = 0; i < iter; i++)
        if (reg_search(r, &f, count_cb, &found) < 0)
            return 1;
    t1 = now_ms();
    printf("lookup by CN: %.3f ms (%zu found per lookup)\n", (t1 - t0) / iter,
           found / (size_t)iter);
    memset(&f, 0, sizeof(f));
    f.expires_after = (int64_t)time(NULL);
    f.expires_before = f.expires_after + 30 * 86400;
    t0 = now_ms();
    for (int i = 0; i < 10; i++)
        if (reg_count(r, &f, &n) != 0)
            return 1;
    t1 = now_ms();
    printf("--expiring 30d: %.3f ms to count %zu certificates\n",
           (t1 - t0) / 10, n);
    reg_close(r);
    return 0;
}
