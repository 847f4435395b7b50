/* SPDX-License-Identifier: Apache-2.0 */
/* Several nodes on one registry (PostgreSQL): the registry's announcements
 * of changes (LISTEN p11ca_registry on a connection of its own, in the
 * event loop, connected again with a growing wait after a fault) drop
 * what this node caches of what another node changed; and the sign-up
 * limit counted in the database, the same whichever node a client
 * reaches.  On SQLite the node is alone: nothing to listen to, and the
 * sign-up limit is its own token bucket (ratelimit.c). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

static void listen_again(struct srv *s);

/* ------------------------------------------------------------------ */
/* The sign-up limit                                                   */
/* ------------------------------------------------------------------ */

static unsigned retry_of(double wait_s)
{
    if (wait_s < 0 || wait_s > SRV_RETRY_AFTER_MAX_S)
        return SRV_RETRY_AFTER_MAX_S;
    wait_s = ceil(wait_s);
    return wait_s < 1 ? 1 : (unsigned)wait_s;
}

int srv_signup_take(struct srv *s, struct srv_ca *sca, unsigned *retry_s)
{
    reg *rg = ca_registry(s->ca);
    char scope[40];
    double wait_s = -1;
    bool ok = false;
    int rc;

    *retry_s = 0;
    if (!reg_shared(rg) || sca->bucket.rate.unlimited)
        return srv_bucket_take(&sca->bucket, srv_now_ms(), retry_s) ? 1 : 0;
    snprintf(scope, sizeof(scope), "ca %lld", (long long)sca->id);
    rc = reg_signup_take(rg, scope, sca->bucket.rate.per_sec,
                         sca->bucket.rate.burst, &ok, &wait_s);
    if (rc != P11CA_OK)
        return rc;
    if (!ok)
        *retry_s = retry_of(wait_s);
    return ok ? 1 : 0;
}

void srv_signup_refund(struct srv *s, struct srv_ca *sca)
{
    reg *rg = ca_registry(s->ca);
    char scope[40];

    if (!reg_shared(rg) || sca->bucket.rate.unlimited) {
        srv_bucket_refund(&sca->bucket);
        return;
    }
    snprintf(scope, sizeof(scope), "ca %lld", (long long)sca->id);
    if (reg_signup_refund(rg, scope, sca->bucket.rate.burst) != P11CA_OK)
        srv_log("a sign-up of CA %lld was not given back: %s",
                (long long)sca->id, p11ca_err_message());
}

/* ------------------------------------------------------------------ */
/* A revocation's CRL, made once                                       */
/* ------------------------------------------------------------------ */

bool srv_crl_first(struct srv *s, const char *serial, bool local)
{
    struct srv_crl_seen *e;

    if (!srv_nodes_listening(s) && local)
        return true; /* no announcement will come, or it is made again */
    for (size_t i = 0; i < SRV_CRL_SEEN; i++) {
        e = &s->crl_seen[i];
        if (e->used && e->local != local && strcmp(e->serial, serial) == 0) {
            e->used = false; /* the other side made it */
            return false;
        }
    }
    e = &s->crl_seen[s->crl_seen_next++ % SRV_CRL_SEEN];
    snprintf(e->serial, sizeof(e->serial), "%s", serial);
    e->local = local;
    e->used = true;
    return true;
}

/* ------------------------------------------------------------------ */
/* What another node changed                                           */
/* ------------------------------------------------------------------ */

/* The registered CAs read again; a CA that is new here is trusted from
 * now on (as after POST /v1/cas). */
static void cas_changed(struct srv *s)
{
    int64_t *had = malloc((s->cas.n ? s->cas.n : 1) * sizeof(*had));
    size_t n = s->cas.n;
    bool known;
    int rc;

    if (!had) {
        srv_log("registry change: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        had[i] = s->cas.v[i].id;
    rc = srv_cas_refresh(s);
    for (size_t i = 0; rc == P11CA_OK && i < s->cas.n; i++) {
        known = false;
        for (size_t k = 0; k < n && !known; k++)
            known = had[k] == s->cas.v[i].id;
        if (!known)
            rc = srv_trust_add(s, s->cas.v[i].x);
    }
    if (rc != P11CA_OK)
        srv_log("registry change: the registered CAs were not read again: %s",
                p11ca_err_message());
    free(had);
}

static void on_change(const reg_change *c, void *arg)
{
    struct srv *s = arg;
    char actor[SRV_ACTOR_MAX];
    bool first = !s->listen_was_up;

    snprintf(actor, sizeof(actor), "api:p11ca-serve %s", ca_actor());
    switch (c->kind) {
    case REG_CHANGE_CERT:
        /* The handshake reads the registry itself; OCSP's cache and the
         * CRL are what this node keeps. */
        srv_ocsp_wake(s);
        if (!c->deleted && c->status == REG_REVOKED
            && c->ca_id == ca_registry_id(s->ca)
            && srv_crl_first(s, c->serial, false))
            srv_crl_regenerate(s, actor);
        break;
    case REG_CHANGE_CA:
        cas_changed(s);
        break;
    case REG_CHANGE_ALL:
        s->listen_was_up = true;
        s->listen_retry_ms = 0;
        if (first)
            srv_log("registry changes: listening (LISTEN p11ca_registry)");
        else if (s->listen_down_logged)
            srv_log("registry changes: listening again");
        s->listen_down_logged = false;
        /* Changes may have been missed: the CAs read again, the OCSP
         * cache refreshed (from the audit trail).  Not a CRL: a revocation
         * while the listener alone was cut off shows on the next CRL (a
         * database down takes no revocation). */
        cas_changed(s);
        srv_ocsp_wake(s);
        break;
    }
}

static void listen_cb(evutil_socket_t fd, short what, void *arg);

/* Wait for what the listener asks; the socket may have changed. */
static void listen_arm(struct srv *s, int want)
{
    int fd = reg_listener_fd(s->listener);
    short ev = (short)(((want & REG_WANT_READ) ? EV_READ : 0)
                       | ((want & REG_WANT_WRITE) ? EV_WRITE : 0));

    if (s->ev_listen && (fd != s->listen_fd || ev != s->listen_ev)) {
        event_free(s->ev_listen);
        s->ev_listen = NULL;
    }
    if (!s->ev_listen && fd >= 0)
        s->ev_listen = event_new(s->base, fd, ev, listen_cb, s);
    s->listen_fd = fd;
    s->listen_ev = ev;
    if (!s->ev_listen || event_add(s->ev_listen, NULL) != 0) {
        srv_log("registry changes: cannot wait for the listener");
        if (s->ev_listen) {
            event_free(s->ev_listen);
            s->ev_listen = NULL;
        }
        reg_listener_free(s->listener); /* listen_open makes another */
        s->listener = NULL;
        listen_again(s);
    }
}

static void listen_lost(struct srv *s)
{
    if (!s->listen_down_logged)
        srv_log("registry changes: %s; listening again later",
                p11ca_err_message());
    s->listen_down_logged = true;
    if (s->ev_listen) {
        event_free(s->ev_listen);
        s->ev_listen = NULL;
    }
    reg_listener_free(s->listener);
    s->listener = NULL;
    listen_again(s);
}

static void listen_step(struct srv *s)
{
    int want = 0;

    if (reg_listener_step(s->listener, on_change, s, &want) != P11CA_OK)
        listen_lost(s);
    else
        listen_arm(s, want);
}

static void listen_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listen_step(arg);
}

static void listen_open(struct srv *s)
{
    if (s->draining)
        return;
    if (reg_listen(ca_registry(s->ca), &s->listener) != P11CA_OK)
        listen_lost(s);
    else
        listen_step(s);
}

static void listen_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listen_open(arg);
}

/* After a fault: SRV_LISTEN_RETRY_MIN_MS, then twice as long each time up
 * to SRV_LISTEN_RETRY_MAX_MS. */
static void listen_again(struct srv *s)
{
    struct timeval tv;

    if (s->draining)
        return;
    s->listen_retry_ms = s->listen_retry_ms == 0 ? SRV_LISTEN_RETRY_MIN_MS
                         : s->listen_retry_ms >= SRV_LISTEN_RETRY_MAX_MS / 2
                             ? SRV_LISTEN_RETRY_MAX_MS
                             : 2 * s->listen_retry_ms;
    if (!s->ev_listen_retry)
        s->ev_listen_retry = evtimer_new(s->base, listen_retry_cb, s);
    if (!s->ev_listen_retry) {
        srv_log("registry changes: no retry could be scheduled (out of "
                "memory): other nodes' changes are not seen");
        return;
    }
    tv.tv_sec = (time_t)(s->listen_retry_ms / 1000);
    tv.tv_usec = (suseconds_t)(s->listen_retry_ms % 1000) * 1000;
    evtimer_add(s->ev_listen_retry, &tv);
}

int srv_nodes_start(struct srv *s)
{
    s->listen_fd = -1;
    if (!reg_shared(ca_registry(s->ca)))
        return P11CA_OK;
    listen_open(s);
    return P11CA_OK;
}

bool srv_nodes_listening(const struct srv *s)
{
    return reg_listener_up(s->listener);
}

void srv_nodes_stop(struct srv *s)
{
    if (s->ev_listen)
        event_free(s->ev_listen);
    s->ev_listen = NULL;
    if (s->ev_listen_retry)
        event_free(s->ev_listen_retry);
    s->ev_listen_retry = NULL;
    reg_listener_free(s->listener);
    s->listener = NULL;
}
