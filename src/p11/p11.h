/* SPDX-License-Identifier: Apache-2.0 */
/* The PKCS#11 access layer: modules, tokens, sessions, login, objects, keys. */
#ifndef P11CA_P11_H
#define P11CA_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#define P11CA_WUR __attribute__((warn_unused_result))

/*
 * Status codes: the layer speaks CK_RV.  Failures that have no PKCS#11 code
 * use these vendor-defined values; p11_rv_name() and p11_rv_text() know them.
 */
#define P11_RV_BASE        (CKR_VENDOR_DEFINED | 0x0CA000UL)
#define P11_RV_URI_INVALID (P11_RV_BASE + 1) /* URI does not parse */
#define P11_RV_NO_TOKEN    (P11_RV_BASE + 2) /* no token matches */
#define P11_RV_NO_OBJECT   (P11_RV_BASE + 3) /* no object matches */
#define P11_RV_AMBIGUOUS   (P11_RV_BASE + 4) /* several match, one wanted */
#define P11_RV_PIN_SOURCE  (P11_RV_BASE + 5) /* pin-source unusable */
/* An automatic PIN withheld: refused before, or the token's last try. */
#define P11_RV_PIN_REFUSED (P11_RV_BASE + 6)
#define P11_RV_NO_PIN      (P11_RV_BASE + 7) /* login needed, no PIN available */
#define P11_RV_BAD_INPUT                                                       \
    (P11_RV_BASE + 8) /* invalid argument (cert, key spec) */
#define P11_RV_NO_MODULE (P11_RV_BASE + 9) /* module cannot be loaded */
#define P11_RV_NO_KEY_MATCH                                                    \
    (P11_RV_BASE + 10)                   /* no key on the token for a cert */
#define P11_RV_EXISTS (P11_RV_BASE + 11) /* object with that id/label exists */
/* module-path= in a URI names a module that is not loaded: not loaded */
#define P11_RV_URI_MODULE (P11_RV_BASE + 12)

#define P11_MAX_PIN_LEN   256
#define P11_MAX_ID_LEN    64
#define P11_MAX_LABEL_LEN 128

typedef struct p11_ctx p11_ctx;
typedef struct p11_token p11_token;
typedef struct p11_session p11_session;
typedef struct p11_obj p11_obj;
typedef struct p11_uri p11_uri;

/* ------------------------------------------------------------------ */
/* Errors (ckr.c)                                                      */
/* ------------------------------------------------------------------ */

/* p11_rv_name - "CKR_PIN_INCORRECT" for @rv; "CKR_0x..." when unknown. */
const char *p11_rv_name(CK_RV rv);

/* p11_rv_text - a human sentence for @rv ("the PIN is incorrect"). */
const char *p11_rv_text(CK_RV rv);

/* What a status code means to the caller: one table for every user. */
enum p11_class {
    P11_CLASS_OK = 0,
    /* The request is wrong: a bad URI or argument, several matches where
     * one is wanted, an object that exists, a module a URI may not load. */
    P11_CLASS_INPUT,
    P11_CLASS_NOT_FOUND, /* no token or object matches */
    P11_CLASS_PIN,       /* PIN missing, unusable, refused, withheld, locked */
    P11_CLASS_UNSUPPORTED, /* a mechanism or parameter the token lacks */
    P11_CLASS_NO_MEMORY,   /* CKR_HOST_MEMORY */
    P11_CLASS_TOKEN,       /* anything else the module or token said */
};

/*
 * p11_rv_class - the class of @rv.  The CLI's exit codes and the
 * provider's error reasons are both made from it, so a code means the same
 * thing to both.
 */
enum p11_class p11_rv_class(CK_RV rv);

/*
 * The last error of the calling thread.  Every failing function of this
 * layer sets it before returning: the call, the token, the object and the
 * code, e.g. 'C_Sign on token "CA1", key "root": CKR_PIN_EXPIRED (the PIN
 * has expired)'.  The strings are owned by the thread and valid until the
 * next failing call on that thread.
 */
const char *p11_error_message(void);
CK_RV p11_error_rv(void);
void p11_error_clear(void);

/*
 * p11_error_set - record an error for this thread (used by the layer and
 * by callers that add context).  @call may be NULL, @tok and @what (an
 * object description) too.  The formatted @fmt detail, when given, is
 * appended after the code.  Never pass a PIN here.  Returns @rv.
 */
CK_RV p11_error_set(CK_RV rv, const char *call, const p11_token *tok,
                    const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A macro evaluating to @rv where the caller sees it, for clang's static
 * analyzer, as p11ca_err_set in common/rc.h.  @rv is evaluated once. */
#define p11_error_set(rv, ...)                                                 \
    __extension__({                                                            \
        CK_RV p11_error_rv_ = (rv);                                            \
        (void)(p11_error_set)(p11_error_rv_, __VA_ARGS__);                     \
        p11_error_rv_;                                                         \
    })

/* ------------------------------------------------------------------ */
/* Context and modules (module.c)                                      */
/* ------------------------------------------------------------------ */

/*
 * A PIN prompt.  Called when a login is needed and neither the URI nor the
 * configuration supplies a PIN.  Writes at most @max bytes (no NUL needed)
 * into @pin and returns the length, or -1 to give up.  @what describes the
 * token ('token "CA1"'); @context_specific is set for a per-operation login.
 */
typedef int (*p11_pin_prompt_fn)(const char *what, bool context_specific,
                                 char *pin, size_t max, void *arg);

typedef struct p11_config {
    /*
     * Module to load.  NULL: every module registered with p11-kit, unless
     * the environment variable P11CA_MODULE names one.  module-path= in a
     * URI selects one of the loaded modules (see allow_uri_module_path).
     */
    const char *module_path;
    /*
     * Whether module-path= in a URI may load a module that is not loaded
     * (dlopen: code from a file a URI names).  P11_URI_MODULE_DEFAULT: as
     * the environment variable P11CA_ALLOW_URI_MODULE_PATH says (yes/no),
     * else refused; refused with P11_RV_URI_MODULE.  A module-path= that
     * names a loaded module (the configured one, one registered with
     * p11-kit) always selects it.
     */
    int allow_uri_module_path; /* P11_URI_MODULE_* */
    /* Default PIN source (file), used when a URI has no pin-value/source. */
    const char *pin_source;
    /*
     * Keep the PIN that worked (p11_secure_zalloc) to log in again after the
     * token logs us out (a card reset), instead of asking the PIN source or
     * the prompt again.  Never used for a context-specific login.
     */
    bool cache_pin;
    /* One session per token, serialised (PIV cards and similar). */
    bool single_session;
    /* Most idle sessions kept per token (0: default 8). */
    unsigned max_sessions;
    /*
     * Do not C_Finalize modules in p11_ctx_free (only release them).  For
     * code that may run at process exit after a module tore itself down
     * (SoftHSM2 from its own destructors), such as a provider's teardown.
     */
    bool no_finalize;
    /*
     * How long to wait for a token that is away (milliseconds): one that a
     * URI names and that is not present, one that a search expecting an
     * object finds no trace of, one removed under an operation.  0: the
     * environment variable P11CA_TOKEN_WAIT (seconds), else
     * P11_TOKEN_WAIT_DEFAULT_MS; P11_TOKEN_WAIT_NONE: do not wait.
     */
    long token_wait_ms;
} p11_config;

enum {
    P11_URI_MODULE_DEFAULT = 0, /* P11CA_ALLOW_URI_MODULE_PATH, else refuse */
    P11_URI_MODULE_REFUSE,
    P11_URI_MODULE_ALLOW,
};

#define P11_TOKEN_WAIT_DEFAULT_MS 5000
#define P11_TOKEN_WAIT_MAX_MS     600000
#define P11_TOKEN_WAIT_NONE       (-1L)

/*
 * p11_token_wait_parse - a token wait in seconds ("5", "2.5", "0.25"; at
 * most P11_TOKEN_WAIT_MAX_MS, three decimals) into @ms for
 * p11_config.token_wait_ms; "0" gives P11_TOKEN_WAIT_NONE.  Returns CKR_OK
 * or P11_RV_BAD_INPUT with the reason.
 */
CK_RV p11_token_wait_parse(const char *s, long *ms) P11CA_WUR;

/*
 * p11_ctx_new - make a context from @cfg (copied; may be NULL).  Modules are
 * loaded lazily, at the first call that needs a token, and initialised once
 * with CKF_OS_LOCKING_OK.  A context is thread-safe and fork-safe: a child
 * process re-initialises its modules and never uses the parent's sessions.
 * Returns NULL on allocation failure only.  Free with p11_ctx_free().
 */
p11_ctx *p11_ctx_new(const p11_config *cfg);

/* p11_ctx_free - close sessions, release modules and wipe cached PINs. */
void p11_ctx_free(p11_ctx *ctx);

/*
 * p11_ctx_set_prompt - set the interactive PIN prompt (NULL: none; then a
 * login without PIN fails with P11_RV_NO_PIN).
 */
void p11_ctx_set_prompt(p11_ctx *ctx, p11_pin_prompt_fn fn, void *arg);

/*
 * p11_thread_in_module - whether the calling thread is inside a call into
 * a PKCS#11 module now: the module called back into the process (SoftHSM2
 * asks OpenSSL for random bytes in C_Initialize and C_GenerateRandom).
 * Such a callback must not call this layer again (it may hold the
 * context's locks, and would re-enter the module).
 */
bool p11_thread_in_module(void);

/*
 * p11_ctx_load - load and initialise the modules now.  Returns CKR_OK or an
 * error (P11_RV_NO_MODULE when nothing could be loaded).
 */
CK_RV p11_ctx_load(p11_ctx *ctx) P11CA_WUR;

/* ------------------------------------------------------------------ */
/* URIs (uri.c) - RFC 7512 through p11-kit's P11KitUri                 */
/* ------------------------------------------------------------------ */

/*
 * p11_uri_parse - parse @str ("pkcs11:token=CA1;object=root;type=private").
 * Unknown attributes are refused.  @out gets a new URI (free with
 * p11_uri_free) or NULL.  Returns CKR_OK or P11_RV_URI_INVALID with the
 * reason in the thread's error.
 */
CK_RV p11_uri_parse(const char *str, p11_uri **out) P11CA_WUR;
void p11_uri_free(p11_uri *uri);

/*
 * p11_uri_format - format @uri for humans (logs, errors, listings): never
 * contains pin-value.  Returns a malloc'd string or NULL.
 */
char *p11_uri_format(const p11_uri *uri);

/* p11_uri_get0_kit - the underlying P11KitUri (borrowed). */
P11KitUri *p11_uri_get0_kit(const p11_uri *uri);

/* Accessors (borrowed; NULL when absent). */
const char *p11_uri_get0_label(const p11_uri *uri); /* object= */
const unsigned char *p11_uri_get0_id(const p11_uri *uri, size_t *len);
/* type= as CKO_*, or (CK_OBJECT_CLASS)-1 when absent. */
CK_OBJECT_CLASS p11_uri_get_class(const p11_uri *uri);
const char *p11_uri_get0_module_path(const p11_uri *uri);
const char *p11_uri_get0_module_name(const p11_uri *uri);
bool p11_uri_has_pin(const p11_uri *uri);

/*
 * p11_uri_names_token - whether @uri says which token (token=, serial=,
 * model=, manufacturer=, slot-id=, slot-description=, slot-manufacturer=).
 * module-name= and module-path= choose a module, not a token.
 */
bool p11_uri_names_token(const p11_uri *uri);

/* p11_uri_for_object - "pkcs11:token=..;object=..;id=..;type=.." (malloc'd). */
char *p11_uri_for_object(const p11_token *tok, CK_OBJECT_CLASS cls,
                         const unsigned char *id, size_t id_len,
                         const char *label);

/* p11_uri_for_token - "pkcs11:model=..;manufacturer=..;serial=..;token=.." */
char *p11_uri_for_token(const p11_token *tok);

/* ------------------------------------------------------------------ */
/* PINs (pin.c)                                                        */
/* ------------------------------------------------------------------ */

/*
 * p11_pin_read_file - read a PIN from @path into @pin (at most @max bytes
 * after one trailing newline or CRLF is dropped).  Refuses what is neither a regular file
 * nor a pipe, a file that group or others can read or write, and more than
 * @max bytes.
 * Returns the length or -1 with P11_RV_PIN_SOURCE and the reason set.
 */
int p11_pin_read_file(const char *path, char *pin, size_t max);

/*
 * p11_secure_zalloc - @n zeroed bytes for a PIN kept beyond one call: in
 * OpenSSL's secure heap when the process has one (CRYPTO_secure_malloc_init,
 * which the p11ca command sets up and a provider cannot), else in pages of
 * their own, locked in memory (mlock) and left out of core dumps
 * (MADV_DONTDUMP).  NULL without memory.  Free with p11_secure_free.
 */
void *p11_secure_zalloc(size_t n);

/* p11_secure_free - wipe and free @p (@n: the size asked for); accepts NULL. */
void p11_secure_free(void *p, size_t n);

/* ------------------------------------------------------------------ */
/* Tokens (module.c, login.c)                                          */
/* ------------------------------------------------------------------ */

/*
 * p11_token_find - every token matching @uri (module, slot and token
 * attributes; object attributes are ignored), initialised or not, as the
 * modules list them now (no waiting).  @uri NULL matches all.
 * @out gets a malloc'd array of borrowed token pointers (valid as long as
 * @ctx) and @n its length.  Returns CKR_OK (possibly with @n == 0) or an
 * error.  Free the array with free().
 */
CK_RV p11_token_find(p11_ctx *ctx, const p11_uri *uri, p11_token ***out,
                     size_t *n) P11CA_WUR;

enum {
    /* Initialised tokens only: the others are skipped (debug log). */
    P11_TOKENS_USABLE = 1 << 0,
    /*
     * When no token matches and @uri names a token: rescan with growing
     * pauses up to the context's token wait, then fail with
     * P11_RV_NO_TOKEN naming the URI and the time waited.
     */
    P11_TOKENS_WAIT = 1 << 1,
    /* With P11_TOKENS_WAIT: wait even when @uri names no token. */
    P11_TOKENS_WAIT_ANY = 1 << 2,
};

/*
 * p11_token_find_ex - p11_token_find with @flags (P11_TOKENS_*).  Without a
 * wait flag, no match is CKR_OK with @n == 0; with one it is
 * P11_RV_NO_TOKEN once the wait is over.
 */
CK_RV p11_token_find_ex(p11_ctx *ctx, const p11_uri *uri, unsigned flags,
                        p11_token ***out, size_t *n) P11CA_WUR;

/*
 * p11_token_find_one - exactly one initialised token for @uri (uninitialised
 * ones are skipped), waiting for it as P11_TOKENS_WAIT | P11_TOKENS_WAIT_ANY
 * say: P11_RV_NO_TOKEN when none, P11_RV_AMBIGUOUS when several (the
 * message lists them).
 */
CK_RV p11_token_find_one(p11_ctx *ctx, const p11_uri *uri,
                         p11_token **out) P11CA_WUR;

/* Token facts (borrowed, valid as long as the context). */
const CK_TOKEN_INFO *p11_token_info(const p11_token *tok);
const char *p11_token_label(const p11_token *tok);  /* trimmed */
const char *p11_token_serial(const p11_token *tok); /* trimmed */
const char *p11_token_model(const p11_token *tok);
const char *p11_token_manufacturer(const p11_token *tok);
const char *p11_token_module_name(const p11_token *tok);
CK_SLOT_ID p11_token_slot(const p11_token *tok);

/*
 * p11_token_has_mechanism - whether the token supports @mech (for @flags,
 * e.g. CKF_SIGN; 0 for any).  The mechanism list is read once per token and
 * cached.  @info (may be NULL) gets the mechanism info.  When the token
 * cannot tell now (its list or the mechanism's info failed to read), true,
 * with @info zeroed: the operation will say; nothing failed is cached.
 */
bool p11_token_has_mechanism(p11_token *tok, CK_MECHANISM_TYPE mech,
                             CK_FLAGS flags, CK_MECHANISM_INFO *info);

/*
 * A PIN source for one use: the URI's pin-value or pin-source, else the
 * context's configured pin source, else the prompt.  Borrowed strings.
 */
typedef struct p11_auth {
    const char *pin_value;  /* from pin-value= (may be NULL) */
    const char *pin_source; /* from pin-source= (may be NULL) */
    /*
     * A prompt for this use only (e.g. the passphrase callback an OpenSSL
     * application passed to OSSL_STORE); NULL: the context's prompt.
     */
    p11_pin_prompt_fn prompt;
    void *prompt_arg;
} p11_auth;

/* p11_auth_from_uri - fill @auth from @uri (strings borrowed from it). */
void p11_auth_from_uri(p11_auth *auth, const p11_uri *uri);

/*
 * p11_token_login - log in as CKU_USER unless this process is logged in on
 * @tok already.  The PIN comes from the cache (p11_config.cache_pin), @auth
 * (may be NULL), the context's pin source, a PIN pad, or the prompt.
 *
 * An automatic PIN (cached, pin-value=, a PIN file or pipe) is not sent:
 * when the token reports CKF_USER_PIN_FINAL_TRY or CKF_USER_PIN_LOCKED
 * (read again just before; locked: nothing is sent, not even a typed PIN),
 * when this process saw the token refuse it, or when the PIN state file of
 * the token (~/.local/state/p11ca, see pinstate.c) says the token refused
 * that source and it has not changed since: P11_RV_PIN_REFUSED (or
 * CKR_PIN_LOCKED) with the reason.  A login that works clears the state.
 * The error of a refused PIN names the tries the token says are left.
 */
CK_RV p11_token_login(p11_token *tok, const p11_auth *auth) P11CA_WUR;

/* p11_token_logout - C_Logout and forget the cached PIN. */
CK_RV p11_token_logout(p11_token *tok);

/* p11_token_is_logged_in - whether this process holds a login on @tok. */
bool p11_token_is_logged_in(const p11_token *tok);

/*
 * p11_token_describe - 'token "CA1"' (or 'slot 3' without a label) into a
 * thread-local buffer, for messages.
 */
const char *p11_token_describe(const p11_token *tok);

/*
 * p11_token_init - C_InitToken on @tok with @so_pin and @label, then
 * C_InitPIN with @user_pin (for test tokens: this erases the token).  Some
 * modules (SoftHSM2) move an initialised token to a new slot: @out (may be
 * NULL) gets the token as it is now.  Returns CKR_OK or the error.
 */
CK_RV p11_token_init(p11_token *tok, const char *so_pin, const char *label,
                     const char *user_pin, p11_token **out) P11CA_WUR;

/* ------------------------------------------------------------------ */
/* Sessions (session.c)                                                */
/* ------------------------------------------------------------------ */

enum {
    P11_SESSION_RW = 1 << 0,    /* read-write session */
    P11_SESSION_LOGIN = 1 << 1, /* log in first (with @auth) */
    /* p11_run: a token that went away is not waited for (searches that
     * skip it and look again themselves). */
    P11_SESSION_NO_WAIT = 1 << 2,
};

/*
 * p11_session_acquire - a session on @tok from the pool, opening one when
 * none is idle.  In single-session mode it waits for the one session.
 * With P11_SESSION_LOGIN the token is logged in first.  Returns CKR_OK and
 * sets @out, or the error.
 */
CK_RV p11_session_acquire(p11_token *tok, unsigned flags, const p11_auth *auth,
                          p11_session **out) P11CA_WUR;

/*
 * p11_session_release - give @s back to the pool.  @rv is the result of
 * the last call made on it: a session the token invalidated
 * (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, ...)
 * is dropped, never pooled again.  Accepts NULL.
 */
void p11_session_release(p11_session *s, CK_RV rv);

/* p11_session_handle - the raw handle (valid until release). */
CK_SESSION_HANDLE p11_session_handle(const p11_session *s);

/* p11_session_count - (idle, open) sessions of @tok, for tests. */
void p11_session_count(p11_token *tok, unsigned *idle, unsigned *open);

/*
 * p11_run - run @fn on a pooled session of @tok and recover once from what
 * a token can throw at a long-running process: a session the token dropped
 * (opened again), a logout by a card reset (logged in again with the PIN
 * that worked), a device removed and reinserted (sessions and login
 * rebuilt: the token is waited for up to the context's token wait, unless
 * P11_SESSION_NO_WAIT), an object handle gone stale (@obj found again, if
 * given).
 * Recovery never replays a refused PIN.  @fn returns a CK_RV and must be
 * safe to run twice.  Returns what @fn returned last, or the recovery error.
 */
typedef CK_RV (*p11_run_fn)(p11_session *s, CK_OBJECT_HANDLE h, void *arg);
CK_RV p11_run(p11_token *tok, unsigned flags, const p11_auth *auth,
              p11_obj *obj, p11_run_fn fn, void *arg) P11CA_WUR;

/* ------------------------------------------------------------------ */
/* Objects (object.c)                                                  */
/* ------------------------------------------------------------------ */

/*
 * A found object: token, class, key type, CKA_ID, label and a cached handle
 * that is found again when the token invalidates it.  Reference counted
 * and safe to share between threads.
 */

enum {
    /* Log in to the tokens that need it: private objects are visible. */
    P11_FIND_LOGIN = 1 << 0,
    /*
     * The caller expects an object: when none is found and a token seems
     * away (none is present, one seen before is missing, or one answered
     * that it is not there), rescan and search again up to the token wait.
     */
    P11_FIND_EXPECT = 1 << 1,
    /*
     * An automatic PIN (pin-value=, pin-source=, the configured PIN source)
     * is used on one token only.  When several tokens need a login, the
     * search fails with P11_RV_AMBIGUOUS naming them, unless this flag
     * is set: then no token is logged in (the PIN is withheld) and the
     * search returns what is visible without a login.
     */
    P11_FIND_PUBLIC_IF_SHARED = 1 << 2,
};

#define P11_FIND_MAX_MATCH 6

/* What p11_obj_search looks for, and how. */
typedef struct p11_find {
    /* Classes in the order wanted (n_classes 0: the URI's type= or any). */
    const CK_OBJECT_CLASS *classes;
    size_t n_classes;
    unsigned flags;       /* P11_FIND_* */
    const p11_auth *auth; /* NULL: the URI's pin-value or pin-source */
    /*
     * More attributes every object must have, added to the search template
     * (at most P11_FIND_MAX_MATCH; borrowed): CKA_SUBJECT, CKA_ISSUER,
     * CKA_SERIAL_NUMBER, CKA_LABEL...  One of a type the URI has too
     * (CKA_LABEL for object=) replaces the URI's.
     */
    const CK_ATTRIBUTE *match;
    size_t n_match;
    /* Out: an automatic PIN was withheld (P11_FIND_PUBLIC_IF_SHARED). */
    bool pin_withheld;
    /* Out: how many tokens were searched. */
    size_t n_tokens;
} p11_find;

/*
 * p11_obj_search - every object matching @uri (token and object attributes)
 * of the classes @f names, on every initialised token the URI matches: a
 * slot without token, with an uninitialised token, or whose token answers
 * that it is absent, unrecognised or removed is skipped (debug log).  A
 * URI that names a token waits for it (P11_TOKENS_WAIT); see P11_FIND_* for
 * logins and waits.  @out gets a malloc'd array of new references, @n its
 * length (objects of the first class first).  Returns CKR_OK (possibly @n
 * == 0: then, with P11_FIND_EXPECT, after the wait), P11_RV_NO_TOKEN when
 * no initialised token matches, P11_RV_AMBIGUOUS (shared PIN), or the
 * first error of a token when no token gave an object.
 */
CK_RV p11_obj_search(p11_ctx *ctx, const p11_uri *uri, p11_find *f,
                     p11_obj ***out, size_t *n) P11CA_WUR;

/*
 * p11_obj_find - p11_obj_search for class @cls (or (CK_OBJECT_CLASS)-1 for
 * the URI's type= or any), with P11_FIND_LOGIN when @login is set.  @out
 * gets a malloc'd array of new references, @n its length; free each with
 * p11_obj_unref and the array with free().  Returns CKR_OK (possibly @n ==
 * 0), or the error.
 */
CK_RV p11_obj_find(p11_ctx *ctx, const p11_uri *uri, CK_OBJECT_CLASS cls,
                   bool login, p11_obj ***out, size_t *n) P11CA_WUR;

/*
 * p11_obj_find_one - exactly one object (a search with P11_FIND_EXPECT):
 * P11_RV_NO_OBJECT when none (with the URI in the message),
 * P11_RV_AMBIGUOUS when several (the message names their URIs).
 */
CK_RV p11_obj_find_one(p11_ctx *ctx, const p11_uri *uri, CK_OBJECT_CLASS cls,
                       bool login, p11_obj **out) P11CA_WUR;

/*
 * p11_obj_find_peer - the object of class @cls on the same token with the
 * same CKA_ID (e.g. the public key or certificate of a private key).
 * Returns CKR_OK and a new reference, or P11_RV_NO_OBJECT.
 */
CK_RV p11_obj_find_peer(p11_obj *obj, CK_OBJECT_CLASS cls,
                        p11_obj **out) P11CA_WUR;

p11_obj *p11_obj_ref(p11_obj *obj);
void p11_obj_unref(p11_obj *obj);

p11_token *p11_obj_token(const p11_obj *obj);
CK_OBJECT_CLASS p11_obj_class(const p11_obj *obj);
CK_KEY_TYPE p11_obj_key_type(const p11_obj *obj);          /* keys only */
CK_CERTIFICATE_TYPE p11_obj_cert_type(const p11_obj *obj); /* certs only */
const unsigned char *p11_obj_id(const p11_obj *obj, size_t *len);
const char *p11_obj_label(const p11_obj *obj); /* "" when none */
bool p11_obj_always_authenticate(const p11_obj *obj);

/*
 * p11_obj_same - whether @a and @b are the same token object as far as
 * their cached handles tell (same token, class, type, id, label, handle).
 */
bool p11_obj_same(p11_obj *a, p11_obj *b);

/* p11_obj_describe - 'key "root" (id 01ab)' in a thread-local buffer. */
const char *p11_obj_describe(const p11_obj *obj);

/* p11_obj_uri - the object's pkcs11: URI (malloc'd, no PIN). */
char *p11_obj_uri(const p11_obj *obj);

/*
 * p11_obj_get_attr - read attribute @type: @out gets a malloc'd copy and
 * @len its length.  CKR_ATTRIBUTE_TYPE_INVALID or CKR_ATTRIBUTE_SENSITIVE
 * are returned as such (and not recorded as errors).
 */
CK_RV p11_obj_get_attr(p11_obj *obj, CK_ATTRIBUTE_TYPE type,
                       unsigned char **out, size_t *len) P11CA_WUR;

/* p11_obj_get_bool - read a CK_BBOOL attribute; @dflt when not present. */
bool p11_obj_get_bool(p11_obj *obj, CK_ATTRIBUTE_TYPE type, bool dflt);

/*
 * p11_obj_key_info - size and curve of a key object: RSA modulus bits (from
 * CKA_MODULUS_BITS or CKA_MODULUS), or the curve's OpenSSL NID from
 * CKA_EC_PARAMS (named-curve OID or PKCS#11 3.0 curve name) with its bits.
 * Returns CKR_OK or the error; unknown curves give NID_undef.
 */
CK_RV p11_obj_key_info(p11_obj *obj, unsigned *bits, int *curve_nid) P11CA_WUR;

/*
 * p11_obj_public_key - the public key of a key object as an EVP_PKEY made
 * in @libctx (NULL: default) with @propq: from CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT (RSA), or CKA_EC_PARAMS and CKA_EC_POINT (EC, EdDSA;
 * for a private key the point comes from its public key or certificate
 * with the same CKA_ID).  EC keys carry the named curve, never explicit
 * parameters.  @out gets a new key.  Returns CKR_OK or the error.
 */
struct evp_pkey_st;
struct ossl_lib_ctx_st;
CK_RV p11_obj_public_key(p11_obj *obj, struct ossl_lib_ctx_st *libctx,
                         const char *propq, struct evp_pkey_st **out) P11CA_WUR;

/* p11_obj_destroy - C_DestroyObject (logs in). */
CK_RV p11_obj_destroy(p11_obj *obj, const p11_auth *auth) P11CA_WUR;

/*
 * p11_obj_set_label - C_SetAttributeValue of CKA_LABEL to @label (logs in;
 * a read-write session).  On success the cached label follows, and a
 * string p11_obj_label() returned before is no longer valid.  Returns
 * CKR_OK or the error (CKR_ATTRIBUTE_READ_ONLY on tokens that refuse).
 */
CK_RV p11_obj_set_label(p11_obj *obj, const p11_auth *auth,
                        const char *label) P11CA_WUR;

/* ------------------------------------------------------------------ */
/* Key generation (keygen.c)                                           */
/* ------------------------------------------------------------------ */

typedef enum p11_key_kind {
    P11_KEY_RSA = 1,
    P11_KEY_EC,
    P11_KEY_ED25519,
    P11_KEY_ED448,
} p11_key_kind;

#define P11_MAX_ALLOWED_MECHS 16

typedef struct p11_key_spec {
    p11_key_kind kind;
    unsigned bits; /* RSA: 2048, 3072, 4096 */
    int curve_nid; /* EC: NID_X9_62_prime256v1, NID_secp384r1, ... */
    /* CKA_ALLOWED_MECHANISMS of the private key (none: not set). */
    CK_MECHANISM_TYPE allowed[P11_MAX_ALLOWED_MECHS];
    size_t n_allowed;
    /*
     * P11_USAGE_* bits: the private key gets CKA_SIGN, CKA_DECRYPT and
     * CKA_DERIVE for these only (the public key CKA_VERIFY, CKA_ENCRYPT);
     * 0: every use of its type (RSA sign and decrypt, EC sign and derive,
     * EdDSA sign).  A use the type cannot have is refused.
     */
    unsigned usage;
} p11_key_spec;

enum {
    P11_USAGE_SIGN = 1 << 0,
    P11_USAGE_DECRYPT = 1 << 1,
    P11_USAGE_DERIVE = 1 << 2,
};

/*
 * p11_key_usage_parse - "sign", "sign,decrypt", "derive sign" into
 * P11_USAGE_* bits.  Returns CKR_OK or P11_RV_BAD_INPUT (an unknown or no
 * use).
 */
CK_RV p11_key_usage_parse(const char *list, unsigned *usage) P11CA_WUR;

/*
 * p11_mech_parse - "CKM_SHA256_RSA_PKCS", "SHA256-RSA-PKCS" or
 * "sha256_rsa_pkcs" into @mech.  Returns CKR_OK or P11_RV_BAD_INPUT.
 */
CK_RV p11_mech_parse(const char *name, CK_MECHANISM_TYPE *mech) P11CA_WUR;

/* p11_mech_name - "CKM_ECDSA" for @mech, "CKM_0x..." when unknown. */
const char *p11_mech_name(CK_MECHANISM_TYPE mech);

/*
 * p11_key_spec_allow - parse a comma-separated list of mechanisms into
 * @spec's allowed list.  Returns CKR_OK or P11_RV_BAD_INPUT.
 */
CK_RV p11_key_spec_allow(p11_key_spec *spec, const char *list) P11CA_WUR;

/*
 * p11_key_spec_parse - "rsa:3072", "rsa" (3072), "ec:P-256", "ec:prime256v1",
 * "ec:P-384", "ec:P-521", "ed25519", "ed448".  Returns CKR_OK or
 * P11_RV_BAD_INPUT.
 */
CK_RV p11_key_spec_parse(const char *str, p11_key_spec *spec) P11CA_WUR;

/* p11_key_spec_name - "rsa:3072", "ec:P-256", "ed25519", "ed448" (static). */
const char *p11_key_spec_name(const p11_key_spec *spec);

/*
 * p11_keygen_templates - fill the public and private templates for @spec
 * with @label and @id.  The private key is always CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE.  @session_only makes both keys
 * session objects (CKA_TOKEN=FALSE), for ephemeral keys.  The templates
 * point into @buf, which must outlive them.  Returns CKR_OK or
 * P11_RV_BAD_INPUT.
 */
typedef struct p11_keygen_tmpl {
    CK_MECHANISM mech;
    CK_ATTRIBUTE pub[16];
    CK_ULONG n_pub;
    CK_ATTRIBUTE priv[20];
    CK_ULONG n_priv;
    /* backing storage */
    CK_BBOOL t, f;
    CK_KEY_TYPE ktype;
    CK_ULONG bits;
    CK_OBJECT_CLASS pub_cls, priv_cls;
    unsigned char exponent[3];
    unsigned char params[32];
    size_t params_len;
    unsigned char id[P11_MAX_ID_LEN];
    size_t id_len;
    char label[P11_MAX_LABEL_LEN + 1];
    CK_MECHANISM_TYPE allowed[P11_MAX_ALLOWED_MECHS];
} p11_keygen_tmpl;

CK_RV p11_keygen_templates(const p11_key_spec *spec, const char *label,
                           const unsigned char *id, size_t id_len,
                           bool session_only, p11_keygen_tmpl *t) P11CA_WUR;

/*
 * p11_keygen - generate a key pair ON @tok (logging in with @auth).  @id may
 * be NULL: a fresh random 20-byte CKA_ID is used.  Refuses an @id or @label
 * already used by a key on the token (P11_RV_EXISTS) unless @session_only.
 * @pub/@priv (each may be NULL) get new references to the two objects.
 */
CK_RV p11_keygen(p11_token *tok, const p11_auth *auth, const p11_key_spec *spec,
                 const char *label, const unsigned char *id, size_t id_len,
                 bool session_only, p11_obj **pub, p11_obj **priv) P11CA_WUR;

/* ------------------------------------------------------------------ */
/* Certificates (cert.c)                                               */
/* ------------------------------------------------------------------ */

/*
 * p11_cert_import - write the X.509 certificate @der as CKO_CERTIFICATE /
 * CKC_X_509 with CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER and CKA_VALUE.
 * CKA_ID and CKA_LABEL are @id/@label when given, else those of the key on
 * the token whose public key matches the certificate (P11_RV_NO_KEY_MATCH
 * when there is none and no @id was given).  @authority marks a CA cert
 * (CKA_CERTIFICATE_CATEGORY = 2).  @out (may be NULL) gets the new object.
 */
CK_RV p11_cert_import(p11_token *tok, const p11_auth *auth,
                      const unsigned char *der, size_t der_len,
                      const char *label, const unsigned char *id, size_t id_len,
                      bool authority, p11_obj **out) P11CA_WUR;

/* ------------------------------------------------------------------ */
/* Operations with a private key (ops.c)                               */
/* ------------------------------------------------------------------ */

/*
 * p11_sign - C_SignInit + C_Sign of @data with @key and @mech on a pooled
 * session, with the recovery of p11_run() and a context-specific login for
 * CKA_ALWAYS_AUTHENTICATE keys.  @sig has room for *@siglen bytes; on
 * success *@siglen is the signature length.  @auth gives the PIN source.
 */
CK_RV p11_sign(p11_obj *key, const p11_auth *auth, CK_MECHANISM *mech,
               const unsigned char *data, size_t len, unsigned char *sig,
               size_t *siglen) P11CA_WUR;

/* p11_decrypt - C_DecryptInit + C_Decrypt, as p11_sign. */
CK_RV p11_decrypt(p11_obj *key, const p11_auth *auth, CK_MECHANISM *mech,
                  const unsigned char *in, size_t inlen, unsigned char *out,
                  size_t *outlen) P11CA_WUR;

/*
 * p11_derive_ecdh - CKM_ECDH1_DERIVE of @key with the peer's uncompressed
 * point @peer, into a session-only CKO_SECRET_KEY of @outlen bytes whose
 * value is read back into @out (the shared secret is the output of ECDH,
 * as in software).  The derived key object is destroyed.
 */
CK_RV p11_derive_ecdh(p11_obj *key, const p11_auth *auth,
                      const unsigned char *peer, size_t peer_len,
                      unsigned char *out, size_t *outlen) P11CA_WUR;

/*
 * p11_generate_random - @len bytes from the token's random generator
 * (C_GenerateRandom on a pooled session, without a login; with the
 * recovery of p11_run()).  Returns CKR_OK or the error.
 */
CK_RV p11_generate_random(p11_token *tok, unsigned char *out,
                          size_t len) P11CA_WUR;

#endif
