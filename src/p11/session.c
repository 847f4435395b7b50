/* SPDX-License-Identifier: Apache-2.0 */
/* Session pool per token, and p11_run(): one call on a pooled session with
 * recovery from dropped sessions, logouts, removals and stale handles. */
#include "config.h"

#include "internal.h"

#include <p11-kit/p11-kit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool p11_rv_token_away(CK_RV rv)
{
    switch (rv) {
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SLOT_ID_INVALID:
        return true;
    default:
        return false;
    }
}

bool p11_rv_token_lost(CK_RV rv)
{
    return p11_rv_token_away(rv) || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

bool p11_rv_session_lost(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_COUNT:
    case CKR_OPERATION_ACTIVE: /* an operation we could not finish */
    case CKR_BUFFER_TOO_SMALL: /* leaves the operation active */
    case CKR_DEVICE_ERROR:
    case CKR_GENERAL_ERROR:
        return true;
    default:
        return p11_rv_token_lost(rv);
    }
}

static CK_RV open_session(p11_token *tok, struct p11_session **out)
{
    CK_FUNCTION_LIST *f = tok->mod->funcs;
    struct p11_session *s = calloc(1, sizeof(*s));
    CK_RV rv;

    if (!s)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    s->tok = tok;
    s->gen = atomic_load(&tok->gen);
    rv = P11_C(f, C_OpenSession, tok->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
               NULL, NULL, &s->h);
    s->rw = rv == CKR_OK;
    /* A write-protected token still serves read-only sessions. */
    if (rv == CKR_TOKEN_WRITE_PROTECTED)
        rv = P11_C(f, C_OpenSession, tok->slot, CKF_SERIAL_SESSION, NULL, NULL,
                   &s->h);
    if (rv != CKR_OK) {
        free(s);
        return p11_error_set(rv, "C_OpenSession", tok, NULL, NULL);
    }
    *out = s;
    return CKR_OK;
}

CK_RV p11_session_acquire(p11_token *tok, unsigned flags, const p11_auth *auth,
                          p11_session **out)
{
    struct p11_session *s = NULL;
    CK_RV rv;

    return_val_if_fail(tok && out, CKR_ARGUMENTS_BAD);
    *out = NULL;
    rv = p11_ctx_ensure(tok->ctx);
    if (rv != CKR_OK)
        return rv;
    if (flags & P11_SESSION_LOGIN) {
        rv = p11_token_login(tok, auth);
        if (rv != CKR_OK)
            return rv;
    }
    pthread_mutex_lock(&tok->lock);
    for (;;) {
        s = tok->idle;
        if (s) {
            tok->idle = s->next;
            tok->n_idle--;
            if (s->gen == atomic_load(&tok->gen))
                break;
            free(s); /* from before a reset: not ours to use */
            s = NULL;
            continue;
        }
        if (!tok->ctx->single_session || tok->n_open == 0) {
            tok->n_open++;
            pthread_mutex_unlock(&tok->lock);
            rv = open_session(tok, &s);
            pthread_mutex_lock(&tok->lock);
            if (rv != CKR_OK)
                tok->n_open--;
            break;
        }
        /* Single-session mode: wait until the one session is back. */
        pthread_cond_wait(&tok->cond, &tok->lock);
    }
    pthread_mutex_unlock(&tok->lock);
    if (rv != CKR_OK)
        return rv;
    s->next = NULL;
    *out = s;
    return CKR_OK;
}

void p11_session_release(p11_session *s, CK_RV rv)
{
    p11_token *tok;
    bool close_it = false, current;

    if (!s)
        return;
    tok = s->tok;
    pthread_mutex_lock(&tok->lock);
    current = s->gen == atomic_load(&tok->gen);
    if (!current || s->broken || p11_rv_session_lost(rv)) {
        if (current && tok->n_open > 0)
            tok->n_open--;
        /* Closing the last session logs the application out. */
        if (current && tok->n_open == 0)
            atomic_store(&tok->logged_in, false);
        /* A session the token dropped is not closed again. */
        close_it = current && !p11_rv_token_lost(rv)
                   && rv != CKR_SESSION_HANDLE_INVALID
                   && rv != CKR_SESSION_CLOSED;
    } else if (tok->n_idle >= tok->ctx->max_sessions && tok->n_open > 1) {
        tok->n_open--;
        close_it = true;
    } else {
        s->next = tok->idle;
        tok->idle = s;
        tok->n_idle++;
        s = NULL;
    }
    pthread_cond_signal(&tok->cond);
    pthread_mutex_unlock(&tok->lock);
    if (s) {
        if (close_it)
            P11_C(tok->mod->funcs, C_CloseSession, s->h);
        free(s);
    }
}

CK_SESSION_HANDLE p11_session_handle(const p11_session *s)
{
    return s->h;
}

void p11_session_count(p11_token *tok, unsigned *idle, unsigned *open)
{
    pthread_mutex_lock(&tok->lock);
    if (idle)
        *idle = tok->n_idle;
    if (open)
        *open = tok->n_open;
    pthread_mutex_unlock(&tok->lock);
}

/*
 * The token went away under an operation: every session and the login are
 * gone.  Wait for it to come back (a reader that blinked, a card pulled and
 * put back) up to the token wait, so that a server does not fail a
 * handshake for it.  Returns CKR_OK to try again, or @rv with the reason.
 */
static CK_RV recover_lost(p11_token *tok, CK_RV rv, unsigned flags,
                          struct p11_wait *w)
{
    long bound = tok->ctx->token_wait_ms;
    char msg[1024];

    p11_token_reset(tok);
    if (rv == CKR_CRYPTOKI_NOT_INITIALIZED)
        (void)P11_IN_MODULE(p11_kit_module_initialize(tok->mod->funcs));
    if ((flags & P11_SESSION_NO_WAIT) || bound <= 0)
        return CKR_OK; /* one more try, as it is */
    snprintf(msg, sizeof(msg), "%s", p11_error_message());
    if (p11_token_wait_back(tok, w, bound) == CKR_OK)
        return CKR_OK;
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
             "; %s did not come back within %.1f s (token wait)",
             p11_token_describe(tok), (double)bound / 1000.0);
    p11_error_restore(rv, msg);
    return rv;
}

/* How p11_run recovers from @rv: CKR_OK to try again, else what to return. */
static CK_RV recover(p11_token *tok, p11_obj *obj, CK_RV rv, unsigned *flags,
                     unsigned *done, struct p11_wait *w)
{
    unsigned kind;

    if (p11_rv_token_lost(rv))
        kind = 1;
    else if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED)
        /* Lost again, on another session: the token dropped all of them
         * (a removal, a logout or C_CloseAllSessions by another thread of
         * the application), and the idle ones in the pool are dead too. */
        kind = (*done & 2) ? 1 : 2;
    else if (rv == CKR_USER_NOT_LOGGED_IN)
        kind = 4;
    else if (obj
             && (rv == CKR_OBJECT_HANDLE_INVALID
                 || rv == CKR_KEY_HANDLE_INVALID))
        kind = 8;
    else
        return rv;
    if (*done & kind)
        return rv; /* each kind of recovery once per call */
    *done |= kind;
    LOG_DBG(P11, "recovering from %s on %s", p11_rv_name(rv),
            p11_token_describe(tok));
    switch (kind) {
    case 1:
        return recover_lost(tok, rv, *flags, w);
    case 4:
        atomic_store(&tok->logged_in, false);
        *flags |= P11_SESSION_LOGIN;
        break;
    case 8:
        p11_obj_invalidate(obj);
        break;
    default:
        break;
    }
    return CKR_OK;
}

CK_RV p11_run(p11_token *tok, unsigned flags, const p11_auth *auth,
              p11_obj *obj, p11_run_fn fn, void *arg)
{
    struct p11_wait w = {0};
    unsigned done = 0;
    p11_session *s;
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    return_val_if_fail(tok && fn, CKR_ARGUMENTS_BAD);
    for (;;) {
        h = CK_INVALID_HANDLE;
        rv = p11_session_acquire(tok, flags, auth, &s);
        if (rv == CKR_OK && obj)
            rv = p11_obj_handle(obj, s, &h);
        if (rv == CKR_OK)
            rv = fn(s, h, arg);
        p11_session_release(s, rv);
        if (rv == CKR_OK || recover(tok, obj, rv, &flags, &done, &w) != CKR_OK)
            return rv;
    }
}
