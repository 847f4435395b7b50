/* SPDX-License-Identifier: Apache-2.0 */
/* Fork safety: keeps every context's locks consistent across fork() and
 * tells contexts that they live in a new process. */
#include "config.h"

#include "internal.h"

#include <pthread.h>

_Atomic unsigned long p11_fork_gen = 1;

static pthread_mutex_t ctx_list_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_ctx *ctx_list;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * Before fork: take every short-held lock, so that the child never inherits
 * a lock owned by a thread that does not exist there.  Login locks are not
 * taken (a login may wait for a PIN prompt); the child re-creates them.
 */
static void fork_prepare(void)
{
    pthread_mutex_lock(&ctx_list_lock);
    for (p11_ctx *c = ctx_list; c; c = c->next_ctx) {
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n_tokens; i++)
            pthread_mutex_lock(&c->tokens[i]->lock);
    }
}

static void unlock_all(void)
{
    for (p11_ctx *c = ctx_list; c; c = c->next_ctx) {
        for (size_t i = 0; i < c->n_tokens; i++)
            pthread_mutex_unlock(&c->tokens[i]->lock);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&ctx_list_lock);
}

static void fork_parent(void)
{
    unlock_all();
}

static void fork_child(void)
{
    for (p11_ctx *c = ctx_list; c; c = c->next_ctx) {
        for (size_t i = 0; i < c->n_tokens; i++) {
            pthread_mutex_init(&c->tokens[i]->login_lock, NULL);
            pthread_cond_init(&c->tokens[i]->cond, NULL);
        }
    }
    atomic_fetch_add(&p11_fork_gen, 1);
    unlock_all();
}

static void atfork_install(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void p11_fork_register(p11_ctx *ctx)
{
    pthread_once(&atfork_once, atfork_install);
    pthread_mutex_lock(&ctx_list_lock);
    ctx->next_ctx = ctx_list;
    ctx_list = ctx;
    pthread_mutex_unlock(&ctx_list_lock);
}

void p11_fork_unregister(p11_ctx *ctx)
{
    pthread_mutex_lock(&ctx_list_lock);
    for (p11_ctx **pp = &ctx_list; *pp; pp = &(*pp)->next_ctx) {
        if (*pp == ctx) {
            *pp = ctx->next_ctx;
            break;
        }
    }
    pthread_mutex_unlock(&ctx_list_lock);
}
