/* SPDX-License-Identifier: Apache-2.0 */
/* Thread driver: threads sharing one context and key, racing the first use
 * of a context, and finding keys while others sign; every signature is
 * verified in software. */
#include "config.h"

#include "drive.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "[-m module] [-p pinfile] [-t token] [-j threads] [-n iterations]\n"
    "    [-r rounds] setup|sign|first-use|churn|modules MODULE2";

struct shared {
    const struct drive_opts *o;
    p11_ctx *ctx;
    struct drive_key keys[2]; /* EC and RSA, shared by all threads */
    const char *uri2;         /* modules: the EC key through MODULE2 */
    pthread_barrier_t start;
    atomic_uint running;
};

struct worker {
    pthread_t th;
    unsigned idx;
    struct shared *sh;
    unsigned ok;
    unsigned failed;
    char err[512]; /* the first error of this thread */
};

/* Count the outcome of one operation; keep the first error's message. */
static void worker_result(struct worker *w, CK_RV rv)
{
    if (rv == CKR_OK) {
        w->ok++;
        return;
    }
    if (w->failed++ > 0)
        return;
    /* A failure must always come with a message (PITFALLS: no bare "no
     * key"); the caller cleared the error before the operation. */
    if (p11_error_rv() == CKR_OK)
        snprintf(w->err, sizeof(w->err), "%s without an error message",
                 p11_rv_name(rv));
    else
        snprintf(w->err, sizeof(w->err), "%s", p11_error_message());
}

static void worker_done(struct worker *w)
{
    atomic_fetch_sub(&w->sh->running, 1);
}

/* Sample the open sessions of @tok until every worker is done. */
static void watch_sessions(struct shared *sh, p11_token *tok, unsigned *peak)
{
    unsigned open;

    while (atomic_load(&sh->running) > 0) {
        if (tok) {
            p11_session_count(tok, NULL, &open);
            if (open > *peak)
                *peak = open;
        }
        usleep(1000);
    }
}

/* Start @n workers running @fn at the same moment, wait for them all. */
static void run_workers(struct shared *sh, struct worker *ws, unsigned n,
                        void *(*fn)(void *), p11_token *tok, unsigned *peak)
{
    pthread_barrier_init(&sh->start, NULL, n + 1);
    atomic_store(&sh->running, n);
    for (unsigned i = 0; i < n; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].idx = i;
        ws[i].sh = sh;
        if (pthread_create(&ws[i].th, NULL, fn, &ws[i]) != 0) {
            /* The barrier cannot be released without it: give up. */
            drive_fail("pthread_create failed");
            exit(DRIVE_FAIL);
        }
    }
    pthread_barrier_wait(&sh->start);
    watch_sessions(sh, tok, peak);
    for (unsigned i = 0; i < n; i++)
        pthread_join(ws[i].th, NULL);
    pthread_barrier_destroy(&sh->start);
}

/* Sum the workers' results: all @each operations of every thread passed. */
static int report(const char *what, const struct worker *ws, unsigned n,
                  unsigned each, double secs)
{
    unsigned ok = 0, failed = 0;

    for (unsigned i = 0; i < n; i++) {
        ok += ws[i].ok;
        failed += ws[i].failed;
        if (ws[i].failed)
            drive_fail("%s: thread %u: %u failed; first: %s", what, i,
                       ws[i].failed, ws[i].err);
    }
    printf("%s: %u threads, %u operations passed, %u failed, %.2f s\n", what, n,
           ok, failed, secs);
    if (failed == 0 && ok == n * each)
        return DRIVE_PASS;
    return drive_fail("%s: %u of %u operations passed", what, ok, n * each);
}

/* Open sessions stay bounded by the idle pool (8) plus one per thread. */
static int check_sessions(p11_token *tok, unsigned threads, unsigned peak)
{
    unsigned idle, open, bound = 8 + threads;

    p11_session_count(tok, &idle, &open);
    printf("sessions: %u open, %u idle at the end; peak %u open (bound %u)\n",
           open, idle, peak, bound);
    if (open > bound || peak > bound || idle > open)
        return drive_fail(
            "sessions out of bounds: %u open, %u idle, peak %u, bound %u", open,
            idle, peak, bound);
    return DRIVE_PASS;
}

static int open_keys(struct shared *sh)
{
    if (drive_key_open(sh->ctx, sh->o, DRIVE_EC_LABEL, &sh->keys[0]) != CKR_OK
        || drive_key_open(sh->ctx, sh->o, DRIVE_RSA_LABEL, &sh->keys[1])
               != CKR_OK)
        return drive_fail("opening the keys: %s", p11_error_message());
    return DRIVE_PASS;
}

/* ---- sign: N signatures per thread with the shared keys -------------- */

static void *sign_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;

    pthread_barrier_wait(&sh->start);
    for (unsigned i = 0; i < sh->o->iterations; i++) {
        p11_error_clear();
        worker_result(w, drive_sign_verify(&sh->keys[(w->idx + i) % 2], NULL));
    }
    worker_done(w);
    return NULL;
}

/* ---- churn: find and drop the key object while others sign ----------- */

/* One find of the shared key: same id, and every 4th time sign with it. */
static CK_RV churn_once(struct shared *sh, const p11_uri *uri, unsigned i)
{
    struct drive_key k = sh->keys[0]; /* its public key and mechanism */
    p11_obj *extra = p11_obj_ref(sh->keys[0].obj);
    p11_obj *found = NULL;
    const unsigned char *a, *b;
    size_t na, nb;
    CK_RV rv;

    rv = p11_obj_find_one(sh->ctx, uri, CKO_PRIVATE_KEY, true, &found);
    if (rv == CKR_OK) {
        a = p11_obj_id(found, &na);
        b = p11_obj_id(extra, &nb);
        if (na != nb || memcmp(a, b, na) != 0
            || strcmp(p11_obj_label(found), DRIVE_EC_LABEL) != 0)
            rv = p11_error_set(P11_RV_NO_OBJECT, NULL, NULL,
                               p11_obj_describe(found),
                               "the search found another object");
    }
    if (rv == CKR_OK && i % 4 == 0) {
        k.obj = found;
        rv = drive_sign_verify(&k, NULL);
    }
    p11_obj_unref(found);
    p11_obj_unref(extra);
    return rv;
}

static void *churn_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    p11_uri *uri = NULL;
    char *str = drive_key_uri(sh->o, DRIVE_EC_LABEL);
    bool signer = w->idx % 2 == 0;

    if (!str || p11_uri_parse(str, &uri) != CKR_OK)
        worker_result(w, p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL,
                                       "cannot parse the key URI"));
    pthread_barrier_wait(&sh->start);
    for (unsigned i = 0; uri && i < sh->o->iterations; i++) {
        p11_error_clear();
        if (signer)
            worker_result(w, drive_sign_verify(&sh->keys[0], NULL));
        else
            worker_result(w, churn_once(sh, uri, i));
    }
    p11_uri_free(uri);
    free(str);
    worker_done(w);
    return NULL;
}

/* ---- modules: a second module loads while others sign --------------- */

/* Find the EC key through the second module (the first find loads it) and
 * sign with it. */
static CK_RV module2_once(struct shared *sh, const p11_uri *uri)
{
    struct drive_key k = sh->keys[0]; /* its public key and mechanism */
    p11_obj *found = NULL;
    CK_RV rv;

    rv = p11_obj_find_one(sh->ctx, uri, CKO_PRIVATE_KEY, true, &found);
    if (rv == CKR_OK) {
        k.obj = found;
        rv = drive_sign_verify(&k, NULL);
    }
    p11_obj_unref(found);
    return rv;
}

static void *modules_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    p11_uri *uri = NULL;

    if (p11_uri_parse(sh->uri2, &uri) != CKR_OK)
        worker_result(w, p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL,
                                       "cannot parse the key URI"));
    pthread_barrier_wait(&sh->start);
    for (unsigned i = 0; uri && i < sh->o->iterations; i++) {
        p11_error_clear();
        /* Signers use the keys of the first module, read by the search of
         * every other thread. */
        if (w->idx % 2 == 0)
            worker_result(w, drive_sign_verify(&sh->keys[i % 2], NULL));
        else
            worker_result(w, module2_once(sh, uri));
    }
    p11_uri_free(uri);
    worker_done(w);
    return NULL;
}

/* sign and churn: workers on a context whose keys main opened. */
static int scenario_shared(const struct drive_opts *o, const char *what,
                           void *(*fn)(void *), const char *uri2)
{
    struct shared sh = {.o = o, .uri2 = uri2};
    struct worker *ws = calloc(o->threads, sizeof(*ws));
    unsigned peak = 0;
    double t0;
    int ret = DRIVE_FAIL;

    sh.ctx = drive_ctx_new(o);
    if (!ws || !sh.ctx) {
        drive_fail("out of memory");
        goto out;
    }
    if (open_keys(&sh) != DRIVE_PASS)
        goto out;
    t0 = drive_now();
    run_workers(&sh, ws, o->threads, fn, p11_obj_token(sh.keys[0].obj), &peak);
    ret = report(what, ws, o->threads, o->iterations, drive_now() - t0);
    if (check_sessions(p11_obj_token(sh.keys[0].obj), o->threads, peak)
        != DRIVE_PASS)
        ret = DRIVE_FAIL;
out:
    drive_key_close(&sh.keys[0]);
    drive_key_close(&sh.keys[1]);
    p11_ctx_free(sh.ctx);
    free(ws);
    return ret;
}

/*
 * modules: keys opened through the configured module, then threads that
 * sign with them while the others find the EC key through MODULE2 (the
 * first of them loads it, with the URI's module-path=).
 */
static int scenario_modules(const struct drive_opts *o)
{
    char *uri2 = drive_key_uri_module(o, DRIVE_EC_LABEL, o->args[0]);
    int ret;

    if (!uri2)
        return drive_fail("out of memory");
    ret = scenario_shared(o, "modules", modules_main, uri2);
    free(uri2);
    return ret;
}

/* ---- first-use: threads racing the lazy load and login --------------- */

static void *first_use_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    struct drive_key k;
    CK_RV rv;

    pthread_barrier_wait(&sh->start);
    p11_error_clear();
    rv = drive_key_open(sh->ctx, sh->o,
                        w->idx % 2 ? DRIVE_RSA_LABEL : DRIVE_EC_LABEL, &k);
    worker_result(w, rv);
    for (unsigned i = 0; rv == CKR_OK && i < sh->o->iterations; i++) {
        p11_error_clear();
        worker_result(w, drive_sign_verify(&k, NULL));
    }
    drive_key_close(&k);
    worker_done(w);
    return NULL;
}

/* One round on a fresh context; with a call log, exactly one C_Login. */
static int first_use_round(const struct drive_opts *o, struct worker *ws,
                           unsigned round)
{
    struct shared sh = {.o = o};
    long before = drive_log_count("C_Login"), logins;
    unsigned peak = 0;
    double t0 = drive_now();
    char what[32];
    int ret;

    sh.ctx = drive_ctx_new(o);
    if (!sh.ctx)
        return drive_fail("out of memory");
    run_workers(&sh, ws, o->threads, first_use_main, NULL, &peak);
    snprintf(what, sizeof(what), "first-use round %u", round);
    ret = report(what, ws, o->threads, o->iterations + 1, drive_now() - t0);
    p11_ctx_free(sh.ctx);
    if (before < 0)
        return ret;
    logins = drive_log_count("C_Login") - before;
    printf("%s: %ld C_Login\n", what, logins);
    if (logins != 1)
        ret =
            drive_fail("%s: %ld C_Login calls, wanted exactly 1", what, logins);
    return ret;
}

static int scenario_first_use(const struct drive_opts *o)
{
    struct worker *ws = calloc(o->threads, sizeof(*ws));
    int ret = DRIVE_PASS;

    if (!ws)
        return drive_fail("out of memory");
    if (drive_log_count("C_Login") < 0)
        printf("no FAULTY_PKCS11_LOG: C_Login calls are not counted\n");
    for (unsigned r = 1; r <= o->rounds; r++)
        if (first_use_round(o, ws, r) != DRIVE_PASS)
            ret = DRIVE_FAIL;
    free(ws);
    return ret;
}

int main(int argc, char **argv)
{
    struct drive_opts o = {.iterations = 200, .threads = 8, .rounds = 3};

    if (drive_opts_parse(argc, argv, &o, usage) != 0)
        return DRIVE_USAGE;
    if (strcmp(o.cmd, "setup") == 0)
        return drive_setup(&o);
    if (strcmp(o.cmd, "sign") == 0)
        return scenario_shared(&o, "sign", sign_main, NULL);
    if (strcmp(o.cmd, "churn") == 0)
        return scenario_shared(&o, "churn", churn_main, NULL);
    if (strcmp(o.cmd, "modules") == 0 && o.n_args == 1)
        return scenario_modules(&o);
    if (strcmp(o.cmd, "first-use") == 0)
        return scenario_first_use(&o);
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return DRIVE_USAGE;
}
