/* SPDX-License-Identifier: Apache-2.0 */
/* A long-lived OCSP responder in one process, as p11ca serve will run it:
 * steps on the command line (ask from the cache or sign, changes,
 * refreshes, commands run in between, the clock moved, worker threads),
 * one line of output per step for tests/integration/ocsp-*.sh. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "ca/internal.h"
#include "ca/ocsp.h"

static const char usage[] =
    "usage: ocsp-drive DIR STEP...\n"
    "  ask REQ OUT          the loop thread's lookup, else a worker's "
    "answer;\n"
    "                       writes OUT: \"hit STATUS\" or \"miss STATUS "
    "[stored]\"\n"
    "  issued SERIAL        ca_ocsp_cert_changed for a new certificate\n"
    "  changed SERIAL       ca_ocsp_cert_changed\n"
    "  refresh              ca_ocsp_refresh (100 signatures at most)\n"
    "  run CMD              system(CMD)\n"
    "  later SECONDS        the clock moves on\n"
    "  threads N COUNT REQ  N workers (a registry connection each) answer "
    "REQ\n"
    "                       COUNT times each\n"
    "  stats                the cache's counters\n";

struct drive {
    ca *c;
    ca_ocsp *o;
    int64_t now;
};

struct worker {
    struct drive *d;
    const unsigned char *req;
    size_t len;
    unsigned count;
    unsigned ok, other;
    int rc;
};

static int file_read(const char *path, unsigned char **out, size_t *len)
{
    return ca_file_read(path, 1024 * 1024, out, len);
}

static int file_write(const char *path, const ca_ocsp_resp *r)
{
    size_t len;
    const unsigned char *der = ca_ocsp_resp_der(r, &len);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(der, 1, len, f) == len;

    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int step_ask(struct drive *d, const char *reqf, const char *outf)
{
    unsigned char *req = NULL;
    ca_ocsp_resp *r = NULL;
    ca_ocsp_info info = {0};
    size_t len = 0;
    bool hit;
    int rc = file_read(reqf, &req, &len);

    if (rc != 0)
        return rc;
    hit = ca_ocsp_lookup(d->o, req, len, d->now, &r);
    if (!hit)
        rc = ca_ocsp_respond(d->o, ca_registry(d->c), req, len, d->now, &r,
                             &info);
    if (rc == 0 && file_write(outf, r) != 0)
        rc = p11ca_err_set(P11CA_E_IO, "cannot write %s", outf);
    if (rc == 0)
        printf("%s %s%s%s%s\n", hit ? "hit" : "miss",
               ca_ocsp_rstatus_name(ca_ocsp_resp_status(r)),
               info.stored ? " stored" : "", info.why[0] ? " why: " : "",
               info.why);
    ca_ocsp_resp_unref(r);
    free(req);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    reg *r = NULL;
    ca_ocsp_resp *resp = NULL;

    /* The CA's registry, which must exist (never created here). */
    w->rc = reg_open_ex(w->d->c->registry_loc, 0, &r);
    for (unsigned i = 0; w->rc == 0 && i < w->count; i++) {
        if (!ca_ocsp_lookup(w->d->o, w->req, w->len, w->d->now, &resp))
            w->rc = ca_ocsp_respond(w->d->o, r, w->req, w->len, w->d->now,
                                    &resp, NULL);
        if (w->rc == 0 && ca_ocsp_resp_status(resp) == CA_OCSP_SUCCESSFUL)
            w->ok++;
        else if (w->rc == 0)
            w->other++;
        ca_ocsp_resp_unref(resp);
        resp = NULL;
    }
    reg_close(r);
    return NULL;
}

static int step_threads(struct drive *d, unsigned n, unsigned count,
                        const char *reqf)
{
    struct worker w[16] = {0};
    pthread_t th[16];
    unsigned char *req = NULL;
    unsigned ok = 0, other = 0, started = 0;
    size_t len = 0;
    int rc = file_read(reqf, &req, &len);

    if (n > 16)
        n = 16;
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        w[i] = (struct worker){d, req, len, count, 0, 0, 0};
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
            rc = p11ca_err_set(P11CA_E_INTERNAL, "cannot start a thread");
        else
            started++;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        other += w[i].other;
        if (w[i].rc != 0 && rc == 0)
            rc = w[i].rc;
    }
    if (rc == 0)
        printf("threads successful=%u other=%u\n", ok, other);
    free(req);
    return rc;
}

static int step_refresh(struct drive *d)
{
    ca_ocsp_refresh_stats st = {0};
    int rc = ca_ocsp_refresh(d->o, ca_registry(d->c), d->now, 100, &st);

    printf("refresh changes=%zu resigned=%zu failed=%zu rc=%d\n", st.changes,
           st.resigned, st.failed, rc);
    return 0;
}

static void step_stats(struct drive *d)
{
    ca_ocsp_cache_stats st = {0};

    ca_ocsp_cache_get_stats(ca_ocsp_cache_of(d->o), &st);
    printf("stats responses=%zu certs=%zu hits=%llu misses=%llu dropped=%llu\n",
           st.responses, st.certs, (unsigned long long)st.hits,
           (unsigned long long)st.misses, (unsigned long long)st.dropped);
}

/* Run the step at @argv; *@used gets how many words it took. */
static int step(struct drive *d, int argc, char **argv, int *used)
{
    const char *s = argv[0];
    int need = strcmp(s, "ask") == 0                                  ? 3
               : strcmp(s, "threads") == 0                            ? 4
               : strcmp(s, "refresh") == 0 || strcmp(s, "stats") == 0 ? 1
                                                                      : 2;
    int rc = 0;

    *used = need;
    if (argc < need)
        return p11ca_err_set(P11CA_E_USAGE, "%s: missing arguments", s);
    if (strcmp(s, "ask") == 0)
        rc = step_ask(d, argv[1], argv[2]);
    else if (strcmp(s, "issued") == 0 || strcmp(s, "changed") == 0)
        printf("%s rc=%d\n", s,
               ca_ocsp_cert_changed(d->o, ca_registry(d->c),
                                    ca_registry_id(d->c), argv[1], s[0] == 'i',
                                    d->now));
    else if (strcmp(s, "refresh") == 0)
        rc = step_refresh(d);
    else if (strcmp(s, "run") == 0)
        printf("run exit=%d\n", WEXITSTATUS(system(argv[1])));
    else if (strcmp(s, "later") == 0)
        d->now += strtoll(argv[1], NULL, 10);
    else if (strcmp(s, "threads") == 0)
        rc = step_threads(d, (unsigned)atoi(argv[1]), (unsigned)atoi(argv[2]),
                          argv[3]);
    else if (strcmp(s, "stats") == 0)
        step_stats(d);
    else
        rc = p11ca_err_set(P11CA_E_USAGE, "unknown step %s", s);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    struct drive d = {.now = (int64_t)time(NULL)};
    int rc, used = 0;

    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    rc = ca_open(argv[1], &d.c);
    if (rc == 0)
        rc = ca_ocsp_new(d.c, &d.o);
    for (int i = 2; rc == 0 && i < argc; i += used)
        rc = step(&d, argc - i, argv + i, &used);
    if (rc != 0)
        fprintf(stderr, "ocsp-drive: %s\n", p11ca_err_message());
    ca_ocsp_free(d.o);
    ca_close(d.c);
    return rc == 0 ? 0 : 1;
}
