/* SPDX-License-Identifier: Apache-2.0 */
/* Private structures shared by the files of the PKCS#11 layer. */
#ifndef P11CA_P11_INTERNAL_H
#define P11CA_P11_INTERNAL_H

#include "p11.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "common/log.h"

struct p11_module {
    CK_FUNCTION_LIST *funcs;
    char *name;   /* p11-kit module name, or the path */
    char *path;   /* file name */
    char *real;   /* realpath() of the file, for comparisons */
    CK_INFO info; /* C_GetInfo, read at load */
    bool has_info;
    bool by_path; /* loaded with p11_kit_module_load */
};

struct p11_session {
    p11_token *tok;
    CK_SESSION_HANDLE h;
    bool rw;
    bool broken;       /* an operation was left open: close, do not pool */
    unsigned long gen; /* token generation when opened */
    struct p11_session *next;
};

struct p11_token {
    p11_ctx *ctx;
    struct p11_module *mod;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
    CK_SLOT_INFO slot_info;
    char label[33];
    char serial[17];
    char model[17];
    char manufacturer[33];
    bool present;

    /* Session pool: @lock guards everything below except the login data. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct p11_session *idle;
    unsigned n_idle;
    unsigned n_open;
    /*
     * Bumped whenever sessions, login or object handles may have become
     * stale (device removed, fork); sessions and handles of an older
     * generation are not used again.
     */
    _Atomic unsigned long gen;

    /* Login: @login_lock serialises C_Login; never held by the pool. */
    pthread_mutex_t login_lock;
    _Atomic bool logged_in;
    char *pin; /* secure heap; the PIN that worked last */
    size_t pin_len;
    unsigned char refused[32]; /* salted hash of the last refused PIN */
    bool has_refused;

    /* Mechanism cache (read once). */
    _Atomic bool mechs_loaded;
    CK_MECHANISM_TYPE *mechs;
    CK_MECHANISM_INFO *mech_info;
    _Atomic unsigned char *mech_state; /* 1: mech_info[i] was read */
    CK_ULONG n_mechs;
};

struct p11_ctx {
    pthread_mutex_t lock;
    char *module_path;
    char *pin_source;
    bool single_session;
    bool no_finalize;
    unsigned max_sessions;
    p11_pin_prompt_fn prompt;
    void *prompt_arg;

    _Atomic bool loaded;
    CK_RV load_rv;
    CK_FUNCTION_LIST **kit_modules; /* p11_kit_modules_load_and_initialize */
    struct p11_module *mods;
    size_t n_mods;
    p11_token **tokens;
    size_t n_tokens;

    unsigned long fork_gen; /* p11_fork_gen when last (re)initialised */
    pid_t pid;
    struct p11_ctx *next_ctx; /* global list for the fork handlers */
};

struct p11_obj {
    _Atomic int refs;
    p11_token *tok;
    CK_OBJECT_CLASS cls;
    CK_ULONG subtype;  /* key type or certificate type */
    unsigned char *id; /* CKA_ID (may be empty) */
    size_t id_len;
    char *label; /* CKA_LABEL, "" when none */
    bool is_private;
    bool always_auth;
    /* Cached handle and the token generation it belongs to. */
    pthread_mutex_t lock;
    CK_OBJECT_HANDLE h;
    unsigned long gen;
};

/*
 * P11_C(funcs, C_Name, args...) - call a module function and, at debug
 * level, log its name and result (never its arguments: they may hold a PIN).
 */
#define P11_C(f, fn, ...)                                                      \
    p11_trace_rv(#fn, (f)->fn(__VA_ARGS__), __FILE__, __LINE__, __func__)

static inline CK_RV p11_trace_rv(const char *fn, CK_RV rv, const char *file,
                                 int line, const char *func)
{
    if (log_enabled(LOG_SUB_P11, LOG_LVL_DBG))
        log_write(LOG_SUB_P11, LOG_LVL_DBG, file, line, func, "%s: %s", fn,
                  p11_rv_name(rv));
    return rv;
}

/* fork.c */
extern _Atomic unsigned long p11_fork_gen;
void p11_fork_register(p11_ctx *ctx);
void p11_fork_unregister(p11_ctx *ctx);

/* module.c */
CK_RV p11_ctx_ensure(p11_ctx *ctx);
CK_RV p11_ctx_load_module_path(p11_ctx *ctx, const char *path,
                               struct p11_module **out);
void p11_token_reset(p11_token *tok);
void p11_token_free(p11_token *tok);

/* session.c */
bool p11_rv_session_lost(CK_RV rv);
bool p11_rv_token_lost(CK_RV rv);

/* login.c */
CK_RV p11_login_context_specific(p11_session *s, p11_obj *obj,
                                 const p11_auth *auth);
void p11_token_drop_pin(p11_token *tok);
bool p11_token_needs_login(const p11_token *tok);

/* object.c */
CK_RV p11_obj_handle(p11_obj *obj, p11_session *s, CK_OBJECT_HANDLE *h);
void p11_obj_invalidate(p11_obj *obj);
CK_RV p11_obj_from_handle(p11_token *tok, p11_session *s, CK_OBJECT_HANDLE h,
                          p11_obj **out);
CK_RV p11_find_handles(p11_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE **out, CK_ULONG *count);

/* ckr.c */
/* p11_error_restore - put back a message saved from p11_error_message(). */
void p11_error_restore(CK_RV rv, const char *msg);
const char *p11_call_describe(const p11_token *tok, const char *what);

/* Copy a blank-padded PKCS#11 string into a trimmed C string. */
void p11_copy_padded(char *dst, size_t dstlen, const CK_UTF8CHAR *src,
                     size_t srclen);

/* Hex for messages: "01ab" in @buf (truncated with "..."). */
const char *p11_hex(const unsigned char *p, size_t n, char *buf, size_t len);

#endif
