/* SPDX-License-Identifier: Apache-2.0 */
/* The worker pool: token signatures and registry writes run here, never
 * on the event loop.  Each worker owns a CA handle (ca_open_shared: its
 * own registry connection, the one loaded CA key); a finished job is
 * posted back to the loop (a list, and event_active when it was empty),
 * where its reply is sent. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/internal.h"

struct worker_arg {
    struct srv_pool *p;
    size_t i;
};

static void jobs_done(evutil_socket_t fd, short what, void *arg);

/* Hand @j back to the loop (p->mu held): true if the loop is to be woken
 * (the list was empty; else a wake-up is pending and takes @j too). */
static bool post_locked(struct srv_pool *p, struct srv_job *j)
{
    bool wake = !p->done_head;

    j->next = NULL;
    if (p->done_tail)
        p->done_tail->next = j;
    else
        p->done_head = j;
    p->done_tail = j;
    return wake;
}

/*
 * After a job that changed the registry: the CA key signs the audit
 * trail's head when one is due (audit_sign_every entries or
 * audit_sign_minutes since the last, ca.cnf), as the CLI's signing
 * commands do at their end; here, on the worker, where token work
 * belongs.  A failure is logged: the job's result stands, and the next
 * job tries again.
 */
static void audit_checkpoint(struct srv_job *j, ca *wc)
{
    char msg[SRV_MSG_MAX];

    if (j->rc != P11CA_OK || j->read_only
        || ca_audit_checkpoint(wc, false, NULL) == P11CA_OK)
        return;
    snprintf(msg, sizeof(msg), "%s", p11ca_err_message());
    p11ca_err_clear();
    srv_log("audit head not signed (after %s): %s", j->kind, msg);
}

void srv_job_set_error(struct srv_job *j, int rc)
{
    j->rc = rc;
    snprintf(j->msg, sizeof(j->msg), "%s", p11ca_err_message());
}

/* Take the next job (NULL: stop), and a fresh handle if a reload left one. */
static struct srv_job *worker_take(struct srv_pool *p, size_t i, ca **old)
{
    struct srv_job *j = NULL;

    *old = NULL;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && !p->head)
        pthread_cond_wait(&p->cv, &p->mu);
    if (!p->stop) {
        j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        j->next = NULL;
        p->queued--;
        p->running++;
        if (p->next_cas[i]) {
            *old = p->cas[i];
            p->cas[i] = p->next_cas[i];
            p->next_cas[i] = NULL;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct srv_pool *p = wa->p;
    size_t i = wa->i;
    struct srv_job *j;
    ca *old = NULL;
    bool wake;

    free(wa);
    while ((j = worker_take(p, i, &old))) {
        ca_close(old);
        p11ca_err_clear();
        j->rc = P11CA_OK;
        j->run(j, p->cas[i]);
        audit_checkpoint(j, p->cas[i]);
        pthread_mutex_lock(&p->mu);
        p->running--;
        /* The loop may free @j from here on. */
        wake = post_locked(p, j);
        pthread_mutex_unlock(&p->mu);
        /* Outside the lock: the loop, woken, takes it at once. */
        if (wake)
            event_active(p->done_ev, 0, 0);
    }
    ca_close(old);
    return NULL;
}

static int pool_alloc(struct srv_pool *p, unsigned n)
{
    p->threads = calloc(n, sizeof(*p->threads));
    p->cas = calloc(n, sizeof(*p->cas));
    p->next_cas = calloc(n, sizeof(*p->next_cas));
    if (p->cas && p->next_cas)
        p->n_cas = n;
    if (!p->threads || !p->cas || !p->next_cas)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

int srv_pool_start(struct srv *s, unsigned n)
{
    struct srv_pool *p = &s->pool;
    struct worker_arg *wa;
    sigset_t all, old;
    int rc = P11CA_OK;

    memset(p, 0, sizeof(*p));
    p->s = s;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    rc = pool_alloc(p, n);
    if (rc == P11CA_OK
        && !(p->done_ev = event_new(s->base, -1, 0, jobs_done, p)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (unsigned i = 0; rc == P11CA_OK && i < n; i++)
        rc = ca_open_shared(s->ca, &p->cas[i]);
    /* Signals go to the loop thread: workers block them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; rc == P11CA_OK && i < n; i++) {
        wa = malloc(sizeof(*wa));
        if (!wa) {
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
            break;
        }
        *wa = (struct worker_arg){p, i};
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            rc = p11ca_err_set(P11CA_E_INTERNAL, "cannot start a worker");
            break;
        }
        p->n++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Part way: the workers started stop, the handles opened close. */
    if (rc != P11CA_OK)
        srv_pool_stop(s);
    return rc;
}

/* Join a worker; after the shutdown timeout, only for a while: a job
 * stuck on the token cannot be interrupted, and freeing what it uses
 * under it would be worse than leaving. */
void srv_join_deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void worker_join(struct srv *s, pthread_t t)
{
    struct timespec ts;

    if (!s->timed_out) {
        pthread_join(t, NULL);
        return;
    }
    srv_join_deadline(&ts, SRV_STUCK_GRACE_MS);
    if (pthread_timedjoin_np(t, NULL, &ts) == 0)
        return;
    srv_log("a worker is still in a job (a token that does not answer?): "
            "exiting without it");
    _exit(P11CA_EXIT_INTERNAL);
}

void srv_pool_stop(struct srv *s)
{
    struct srv_pool *p = &s->pool;
    struct srv_job *j, *next;

    if (!p->s)
        return; /* never started, or stopped */
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        worker_join(s, p->threads[i]);
    /* Jobs no worker took: answered as refused. */
    for (j = p->head; j; j = next) {
        next = j->next;
        p11ca_err_set(P11CA_E_STATE, "the service is shutting down");
        srv_job_set_error(j, P11CA_E_STATE);
        j->cancelled = true;
        (void)post_locked(p, j);
    }
    p->head = p->tail = NULL;
    p->queued = 0;
    /* Deliver what the workers finished and what they never took. */
    if (p->done_head)
        event_active(p->done_ev, 0, 0);
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    if (p->done_ev)
        event_free(p->done_ev);
    /* Every handle opened, with a worker or not (a start that failed). */
    for (size_t i = 0; i < p->n_cas; i++) {
        ca_close(p->cas[i]);
        ca_close(p->next_cas[i]);
    }
    free(p->threads);
    free(p->cas);
    free(p->next_cas);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    memset(p, 0, sizeof(*p));
}

int srv_pool_reload(struct srv *s)
{
    struct srv_pool *p = &s->pool;
    ca *n, *old;
    int rc = P11CA_OK;

    for (size_t i = 0; rc == P11CA_OK && i < p->n; i++) {
        rc = ca_open_shared(s->ca, &n);
        if (rc != P11CA_OK)
            break;
        pthread_mutex_lock(&p->mu);
        old = p->next_cas[i];
        p->next_cas[i] = n;
        pthread_mutex_unlock(&p->mu);
        ca_close(old);
    }
    return rc;
}

size_t srv_pool_queued(struct srv *s)
{
    size_t n;

    pthread_mutex_lock(&s->pool.mu);
    n = s->pool.queued;
    pthread_mutex_unlock(&s->pool.mu);
    return n;
}

size_t srv_pool_running(struct srv *s)
{
    size_t n;

    pthread_mutex_lock(&s->pool.mu);
    n = s->pool.running;
    pthread_mutex_unlock(&s->pool.mu);
    return n;
}

int srv_job_submit(struct srv *s, struct srv_job *j)
{
    struct srv_pool *p = &s->pool;

    if (srv_pool_queued(s) >= s->cfg.max_queued_jobs)
        return p11ca_err_set(
            P11CA_E_RATE, "%zu jobs are waiting for a worker: try again later",
            srv_pool_queued(s));
    j->s = s;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    s->jobs++;
    return P11CA_OK;
}

/* On the loop thread: the job is back; its done function answers. */
static void job_posted(struct srv_job *j)
{
    struct srv *s = j->s;

    s->jobs--;
    if (j->rc == P11CA_E_TOKEN || j->rc == P11CA_E_PIN
        || j->rc == P11CA_E_CAKEY) {
        s->m.token_errors++;
        srv_log("%s: %s", j->kind, j->msg);
    }
    j->done(j);
    srv_drain_check(s);
}

/* On the loop thread: the finished jobs, all those posted so far. */
static void jobs_done(evutil_socket_t fd, short what, void *arg)
{
    struct srv_pool *p = arg;
    struct srv_job *j, *next;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&p->mu);
    j = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    for (; j; j = next) {
        next = j->next;
        job_posted(j);
    }
}
