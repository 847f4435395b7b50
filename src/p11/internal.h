/* SPDX-License-Identifier: Apache-2.0 */
/* Private structures shared by the files of the PKCS#11 layer. */
#ifndef P11CA_P11_INTERNAL_H
#define P11CA_P11_INTERNAL_H

#include "p11.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/log.h"

/*
 * A loaded module.  Its address and @funcs never change while the context
 * lives (p11_ctx_refresh and a fork initialise the same function list
 * again), so a token's @mod and @mod->funcs may be read without the
 * context lock.
 */
struct p11_module {
    CK_FUNCTION_LIST *funcs;
    char *name;   /* p11-kit module name, or the path */
    char *path;   /* file name */
    char *real;   /* realpath() of the file, for comparisons */
    CK_INFO info; /* C_GetInfo, read at load */
    bool has_info;
    bool by_path; /* loaded with p11_kit_module_load */
};

/* A PIN source as the state file knows it: never the PIN itself. */
struct p11_pin_src {
    unsigned char
        id[32];     /* SHA-256 of what names the source, and its version */
    char desc[160]; /* 'PIN file /x', for messages */
    bool known;     /* @id is set */
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
    /*
     * Seen present and initialised by an earlier scan: when it is missing
     * now, it is away for a moment as far as we can tell (a search that
     * expects an object waits for it).
     */
    bool was_usable;

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
    char *pin; /* p11_secure_zalloc; the PIN that worked (cache_pin) */
    size_t pin_len;
    struct p11_pin_src pin_src; /* where @pin came from */
    unsigned char refused[32];  /* salted hash of the last refused PIN */
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
    bool allow_uri_module_path; /* module-path= in a URI may load a module */
    bool cache_pin;             /* p11_config.cache_pin */
    unsigned max_sessions;
    long token_wait_ms; /* resolved bound, 0: do not wait */
    p11_pin_prompt_fn prompt;
    void *prompt_arg;

    _Atomic bool loaded;
    CK_RV load_rv;
    CK_FUNCTION_LIST **kit_modules; /* p11_kit_modules_load_and_initialize */
    /*
     * One allocation per module, never moved or freed before the context:
     * tokens keep pointers to them (see add_module in module.c).
     */
    struct p11_module **mods;
    size_t n_mods;
    p11_token **tokens;
    size_t n_tokens;
    /* Slots whose token did not answer C_GetTokenInfo at the last scan. */
    unsigned scan_lost;

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
    __extension__({                                                            \
        CK_RV p11_c_rv_;                                                       \
        p11_in_module++;                                                       \
        p11_c_rv_ = (f)->fn(__VA_ARGS__);                                      \
        p11_in_module--;                                                       \
        p11_trace_rv(#fn, p11_c_rv_, __FILE__, __LINE__, __func__);            \
    })

/*
 * Calls into a module that are not P11_C (p11-kit's load, initialise and
 * finalise) go through P11_IN_MODULE(expr): p11_in_module counts them
 * too.  A module may call back into OpenSSL (SoftHSM2 asks for random
 * bytes in C_Initialize and C_GenerateRandom); see p11_thread_in_module().
 */
extern _Thread_local unsigned p11_in_module;
#define P11_IN_MODULE(expr)                                                    \
    __extension__({                                                            \
        __typeof__(expr) p11_im_v_;                                            \
        p11_in_module++;                                                       \
        p11_im_v_ = (expr);                                                    \
        p11_in_module--;                                                       \
        p11_im_v_;                                                             \
    })
#define P11_IN_MODULE_VOID(expr)                                               \
    do {                                                                       \
        p11_in_module++;                                                       \
        (expr);                                                                \
        p11_in_module--;                                                       \
    } while (0)

static inline CK_RV p11_trace_rv(const char *fn, CK_RV rv, const char *file,
                                 int line, const char *func)
{
    if (log_enabled(LOG_SUB_P11, LOG_LVL_DBG))
        log_write(LOG_SUB_P11, LOG_LVL_DBG, file, line, func, "%s: %s", fn,
                  p11_rv_name(rv));
    return rv;
}

/* wait.c: a bounded wait with growing pauses on the monotonic clock. */
#define P11_WAIT_FIRST_PAUSE_MS 10
#define P11_WAIT_MAX_PAUSE_MS   200

struct p11_wait {
    uint64_t start_ms;
    uint64_t deadline_ms;
    unsigned pause_ms; /* the next pause */
    unsigned rounds;   /* pauses taken */
    bool started;
    unsigned refreshed; /* p11_wait_refresh: the round of the last one */
};

/* p11_now_ms - milliseconds of CLOCK_MONOTONIC. */
uint64_t p11_now_ms(void);

/* p11_wait_start - a wait of @bound_ms from @now_ms. */
void p11_wait_start(struct p11_wait *w, long bound_ms, uint64_t now_ms);

/*
 * p11_wait_next - the pause to take at @now_ms before looking again (10 ms,
 * doubling up to P11_WAIT_MAX_PAUSE_MS, never past the deadline), or -1
 * when the bound has passed (or the wait was never started).
 */
long p11_wait_next(struct p11_wait *w, uint64_t now_ms);

/* p11_wait_elapsed - milliseconds since the start (0 if not started). */
long p11_wait_elapsed(const struct p11_wait *w, uint64_t now_ms);

/*
 * p11_wait_pause - start @w with @bound_ms if it is not started, then
 * sleep its next pause.  Returns false, without sleeping, when the bound
 * has passed or is 0: the caller gives up after its last look.
 */
bool p11_wait_pause(struct p11_wait *w, long bound_ms);

/*
 * p11_token_wait_resolve - the bound in effect for a configured @cfg_ms
 * (p11_config.token_wait_ms): the configuration, else P11CA_TOKEN_WAIT,
 * else P11_TOKEN_WAIT_DEFAULT_MS; 0 means do not wait.
 */
long p11_token_wait_resolve(long cfg_ms);

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
/*
 * p11_token_wait_back - after @tok went away: rescan its module until it is
 * present and initialised again with the same serial, pausing as @w says,
 * up to @bound_ms.  Returns CKR_OK when it is back, P11_RV_NO_TOKEN when
 * the bound passed (no error message set: the caller knows the context).
 */
CK_RV p11_token_wait_back(p11_token *tok, struct p11_wait *w, long bound_ms);
/* What a token search left out, for its messages. */
struct skipped {
    size_t uninitialised; /* matching tokens that are not initialised */
    char first[64];       /* the first of them, described */
};

/*
 * p11_find_prepare - load the modules, and put the loaded module that
 * module-path= of @uri names into @only (NULL when the URI has none).  A
 * module-path= that names no loaded module is loaded only when the context
 * allows it (allow_uri_module_path), else P11_RV_URI_MODULE.
 */
CK_RV p11_find_prepare(p11_ctx *ctx, const p11_uri *uri,
                       struct p11_module **only);

/*
 * p11_find_look - one look for the tokens that match @uri (flags
 * P11_TOKENS_USABLE): the known ones, else (none, or @rescan) after a scan.
 * @out is malloc'd (possibly with @n == 0); @sk says what was skipped.
 */
CK_RV p11_find_look(p11_ctx *ctx, const p11_uri *uri,
                    const struct p11_module *only, unsigned flags, bool rescan,
                    p11_token ***out, size_t *n, struct skipped *sk);

/*
 * p11_find_no_token - P11_RV_NO_TOKEN for @uri, with what was skipped (when
 * the URI is @named) and how long @w waited.
 */
CK_RV p11_find_no_token(p11_ctx *ctx, const p11_uri *uri, bool named,
                        const struct skipped *sk, const struct p11_wait *w);

/*
 * p11_tokens_seem_away - whether the last scan met a slot whose token did
 * not answer, or a token seen initialised before is missing now.
 */
bool p11_tokens_seem_away(p11_ctx *ctx);

/*
 * p11_token_list_ambiguous - P11_RV_AMBIGUOUS: "@why<n> tokens match <uri>:
 * token "A" (serial ..), ...; add token= or serial= to the URI".
 */
CK_RV p11_token_list_ambiguous(p11_token **toks, size_t n, const p11_uri *uri,
                               const char *why);
/*
 * p11_ctx_refresh - C_Finalize and C_Initialize the modules of @ctx (only
 * @only when given) that no thread of @ctx is using a session of, and
 * rescan: their sessions and logins are forgotten, as after fork().  Some
 * modules read their tokens at C_Initialize only: SoftHSM2 keeps a token
 * it read while another process was saving it as absent, or without a user
 * PIN, until then.  With p11-kit's managed modules, the module itself is
 * initialised again only when no other context of the process holds it;
 * an unmanaged module (p11-kit "managed: no") is never initialised again.
 * Returns how many modules were initialised again.
 */
size_t p11_ctx_refresh(p11_ctx *ctx, const struct p11_module *only);

/*
 * p11_wait_refresh - p11_ctx_refresh after a pause of @w: when @now (a
 * token answered as if read while being rewritten: a module may keep that
 * until initialised again), else after the 2nd, 4th, 8th ... pause that
 * did not bring the token back (the refresh itself may meet the moment).
 */
void p11_wait_refresh(p11_ctx *ctx, struct p11_wait *w,
                      const struct p11_module *only, bool now);
/* p11_rv_token_away - a code that says the token is not there (now). */
bool p11_rv_token_away(CK_RV rv);

/* session.c */
bool p11_rv_session_lost(CK_RV rv);
bool p11_rv_token_lost(CK_RV rv);

/* pin.c: p11_pin_read_file, and @st_out (may be NULL) gets the fstat of
 * what was read. */
int p11_pin_read_file_st(const char *path, char *pin, size_t max,
                         struct stat *st_out);

/* pinstate.c: refused PIN sources remembered across processes. */

/* p11_pin_src_file - the PIN file or pipe @path, as fstat @st saw it. */
void p11_pin_src_file(struct p11_pin_src *src, const char *path,
                      const struct stat *st);
/* p11_pin_src_value - a PIN given as a value (pin-value=, an environment
 * variable): one source, whatever the value. */
void p11_pin_src_value(struct p11_pin_src *src);

struct p11_pinstate;
/*
 * p11_pinstate_open - the state file of @tok, locked against the other
 * processes that log in to it (waiting up to 30 s), made when @create.
 * @out is NULL when there is none (no home directory, a file or directory
 * that is not ours alone, or !@create and no file): the caller goes on
 * without it.  Returns CKR_OK, or an error when the lock cannot be had.
 */
CK_RV p11_pinstate_open(p11_token *tok, bool create, struct p11_pinstate **out);
/* p11_pinstate_refused - when (unix time) the token refused @src, or 0. */
int64_t p11_pinstate_refused(const struct p11_pinstate *st,
                             const struct p11_pin_src *src);
/* p11_pinstate_record - remember that the token refused @src. */
void p11_pinstate_record(struct p11_pinstate *st,
                         const struct p11_pin_src *src);
/* p11_pinstate_clear - forget every refusal (the token took a PIN). */
void p11_pinstate_clear(struct p11_pinstate *st);
const char *p11_pinstate_path(const struct p11_pinstate *st);
/* p11_pinstate_close - unlock and close; accepts NULL. */
void p11_pinstate_close(struct p11_pinstate *st);

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
