/* SPDX-License-Identifier: Apache-2.0 */
/* Logins: where a PIN comes from, C_Login once per token, never sending an
 * automatic PIN the token refused (in this process or, through the PIN
 * state file, in another) or at its last try, and context-specific logins
 * for always-authenticate keys. */
#include "config.h"

#include "internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

enum pin_origin {
    PIN_NONE,
    PIN_CACHED, /* worked before in this process (p11_config.cache_pin) */
    PIN_VALUE,  /* pin-value= or an environment variable */
    PIN_FILE,   /* a PIN file or pipe */
    PIN_PROMPT, /* typed by the user just now */
    PIN_PAD,    /* protected authentication path */
};

struct pin {
    char buf[P11_MAX_PIN_LEN + 1];
    size_t len;
    enum pin_origin origin;
    struct p11_pin_src src; /* automatic PINs: where it came from */
};

/* Whether the PIN came by itself, without the user: it must not be
 * offered again once refused, nor at the token's last try. */
static bool pin_automatic(const struct pin *pin)
{
    return pin->origin == PIN_CACHED || pin->origin == PIN_VALUE
           || pin->origin == PIN_FILE;
}

static unsigned char pin_salt[16];
static pthread_once_t salt_once = PTHREAD_ONCE_INIT;

static void salt_init(void)
{
    if (RAND_bytes(pin_salt, sizeof(pin_salt)) != 1)
        memset(pin_salt, 0x5a, sizeof(pin_salt));
}

/*
 * A salted hash of @pin, kept in this process's memory only, to recognise
 * a refused PIN.  Never written anywhere: a PIN has too few values for any
 * hash of it to be safe outside the process (see pinstate.c).
 */
static void pin_hash(const struct pin *pin, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;

    pthread_once(&salt_once, salt_init);
    memset(out, 0, 32);
    if (!md)
        return;
    if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(md, pin_salt, sizeof(pin_salt))
        || !EVP_DigestUpdate(md, pin->buf, pin->len)
        || !EVP_DigestFinal_ex(md, out, &n))
        memset(out, 0, 32);
    EVP_MD_CTX_free(md);
}

bool p11_token_needs_login(const p11_token *tok)
{
    return (tok->info.flags & CKF_LOGIN_REQUIRED) != 0;
}

bool p11_token_is_logged_in(const p11_token *tok)
{
    return atomic_load(&tok->logged_in);
}

void p11_token_drop_pin(p11_token *tok)
{
    if (tok->pin) {
        p11_secure_free(tok->pin, tok->pin_len + 1);
        tok->pin = NULL;
        tok->pin_len = 0;
    }
}

static void cache_pin(p11_token *tok, const struct pin *pin)
{
    if (!tok->ctx->cache_pin || pin->origin == PIN_PAD
        || pin->origin == PIN_CACHED)
        return;
    p11_token_drop_pin(tok);
    tok->pin = p11_secure_zalloc(pin->len + 1);
    if (!tok->pin)
        return; /* only costs a prompt later */
    memcpy(tok->pin, pin->buf, pin->len);
    tok->pin_len = pin->len;
    tok->pin_src = pin->src;
}

static CK_RV from_file(const char *path, struct pin *pin)
{
    struct stat st;
    int n = p11_pin_read_file_st(path, pin->buf, P11_MAX_PIN_LEN, &st);

    if (n < 0)
        return P11_RV_PIN_SOURCE;
    pin->len = (size_t)n;
    pin->origin = PIN_FILE;
    p11_pin_src_file(&pin->src, path, &st);
    return CKR_OK;
}

/*
 * The token's PIN flags as it reports them now (C_GetTokenInfo): the count
 * may have dropped since the last scan (another application, a failed try).
 * 0 when the token does not answer: the login itself will tell.
 */
static CK_FLAGS pin_flags_now(p11_token *tok)
{
    CK_TOKEN_INFO ti;

    if (P11_C(tok->mod->funcs, C_GetTokenInfo, tok->slot, &ti) != CKR_OK)
        return 0;
    return ti.flags
           & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
              | CKF_USER_PIN_LOCKED);
}

static CK_RV no_pin(p11_token *tok, bool ctx_specific, const char *what)
{
    if (ctx_specific)
        return p11_error_set(
            P11_RV_NO_PIN, "C_Login", tok, what,
            "this key needs the PIN again for each use (CKA_ALWAYS_AUTHENTICATE), and the PIN of the token's login is not replayed: give pin-source= in the key's URI or a PIN source option, or run where the PIN can be asked for");
    return p11_error_set(
        P11_RV_NO_PIN, "C_Login", tok, what,
        "a PIN is needed: give one with pin-source= or pin-value= in the URI or a PIN source option, or run on a terminal to be asked for it");
}

/*
 * Find a PIN for @tok: the one that worked last (not for a context-specific
 * login: that one asks every time), the URI's pin-value or pin-source, the
 * context's pin source, a PIN pad, then the prompt.  Called with the login
 * lock held, so only one prompt shows at a time.  @flags: the token's PIN
 * flags now (the prompt says when it is the last try); @desc: the key of
 * a context-specific login (may be NULL), for the message.
 */
static CK_RV get_pin(p11_token *tok, const p11_auth *auth, bool ctx_specific,
                     CK_FLAGS flags, const char *desc, struct pin *pin)
{
    p11_ctx *ctx = tok->ctx;
    p11_pin_prompt_fn prompt;
    void *prompt_arg;
    char what[160];
    int n;

    pin->len = 0;
    pin->origin = PIN_NONE;
    memset(&pin->src, 0, sizeof(pin->src));
    if (tok->pin && !ctx_specific) {
        memcpy(pin->buf, tok->pin, tok->pin_len);
        pin->len = tok->pin_len;
        pin->origin = PIN_CACHED;
        pin->src = tok->pin_src;
        return CKR_OK;
    }
    if (auth && auth->pin_value) {
        pin->len = strlen(auth->pin_value);
        if (pin->len > P11_MAX_PIN_LEN)
            return p11_error_set(P11_RV_PIN_SOURCE, NULL, tok, NULL,
                                 "pin-value is too long");
        memcpy(pin->buf, auth->pin_value, pin->len);
        pin->origin = PIN_VALUE;
        p11_pin_src_value(&pin->src);
        return CKR_OK;
    }
    if (auth && auth->pin_source)
        return from_file(auth->pin_source, pin);
    if (ctx->pin_source)
        return from_file(ctx->pin_source, pin);
    if (tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
        pin->origin = PIN_PAD;
        return CKR_OK;
    }
    prompt = auth && auth->prompt ? auth->prompt : ctx->prompt;
    prompt_arg = auth && auth->prompt ? auth->prompt_arg : ctx->prompt_arg;
    if (prompt) {
        snprintf(what, sizeof(what), "%s%s", p11_token_describe(tok),
                 (flags & CKF_USER_PIN_FINAL_TRY)
                     ? " (LAST TRY before the PIN locks)"
                     : "");
        n = prompt(what, ctx_specific, pin->buf, P11_MAX_PIN_LEN, prompt_arg);
        if (n >= 0 && (size_t)n <= P11_MAX_PIN_LEN) {
            pin->len = (size_t)n;
            pin->origin = PIN_PROMPT;
            return CKR_OK;
        }
    }
    return no_pin(tok, ctx_specific, desc);
}

static const char *tries_left(p11_token *tok)
{
    CK_FLAGS f = pin_flags_now(tok);

    if (f & CKF_USER_PIN_LOCKED)
        return "; the token reports the user PIN is LOCKED";
    if (f & CKF_USER_PIN_FINAL_TRY)
        return "; the token reports ONE try left before it locks the PIN";
    if (f & CKF_USER_PIN_COUNT_LOW)
        return "; the token reports few tries left before it locks the PIN";
    return "";
}

static bool rv_pin_refused(CK_RV rv)
{
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID
           || rv == CKR_PIN_LEN_RANGE;
}

/*
 * Whether an automatic @pin may be sent now: not one this process saw
 * refused, not one the state file says was refused (and has not changed
 * since), not at the token's last try.  Returns CKR_OK or the reason.
 */
static CK_RV may_send(p11_token *tok, const struct pin *pin, CK_FLAGS flags,
                      const struct p11_pinstate *st, const char *what)
{
    unsigned char h[32];
    char when[32] = "an earlier time";
    int64_t t;
    struct tm tm;
    time_t tt;

    pin_hash(pin, h);
    if (tok->has_refused && memcmp(h, tok->refused, sizeof(h)) == 0)
        return p11_error_set(P11_RV_PIN_REFUSED, "C_Login", tok, what, NULL);
    t = p11_pinstate_refused(st, &pin->src);
    if (t > 0) {
        tt = (time_t)t;
        if (gmtime_r(&tt, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return p11_error_set(
            P11_RV_PIN_REFUSED, "C_Login", tok, what,
            "not sending the PIN from %s: the token refused it at %s (recorded in %s); a PIN that failed is not sent again automatically until its source changes, a login with the PIN typed at a prompt succeeds, or that file is removed",
            pin->src.desc, when, p11_pinstate_path(st));
    }
    if (flags & CKF_USER_PIN_FINAL_TRY)
        return p11_error_set(
            P11_RV_PIN_REFUSED, "C_Login", tok, what,
            "not sending the PIN from %s: the token reports ONE try left before it locks the PIN (CKF_USER_PIN_FINAL_TRY); if that PIN is right, log in once with it typed at a prompt, which starts the count again",
            pin->origin == PIN_CACHED ? "the cache" : pin->src.desc);
    return CKR_OK;
}

/*
 * Run C_Login with @pin and account for the outcome, @st (may be NULL)
 * locked around it.  @flags: the token's PIN flags now.
 */
static CK_RV do_login(p11_session *s, CK_USER_TYPE user, struct pin *pin,
                      CK_FLAGS flags, struct p11_pinstate *st, const char *what)
{
    p11_token *tok = s->tok;
    CK_RV rv;

    if (pin_automatic(pin)) {
        rv = may_send(tok, pin, flags, st, what);
        if (rv != CKR_OK)
            return rv;
    }
    rv = P11_C(tok->mod->funcs, C_Login, s->h, user,
               pin->origin == PIN_PAD ? NULL : (CK_UTF8CHAR *)pin->buf,
               pin->origin == PIN_PAD ? 0 : pin->len);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        if (user == CKU_USER)
            cache_pin(tok, pin);
        /* The token took a PIN: its count of tries starts again. */
        if (rv == CKR_OK)
            p11_pinstate_clear(st);
        return CKR_OK;
    }
    if (rv_pin_refused(rv) && pin->origin != PIN_PAD) {
        pin_hash(pin, tok->refused);
        tok->has_refused = true;
        if (pin_automatic(pin))
            p11_pinstate_record(st, &pin->src);
        if (pin->origin == PIN_CACHED)
            p11_token_drop_pin(tok);
    }
    if (rv_pin_refused(rv) || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED)
        return p11_error_set(rv, "C_Login", tok, what, "the PIN was refused%s",
                             tries_left(tok));
    return p11_error_set(rv, "C_Login", tok, what, NULL);
}

/*
 * One login of @user on @s: the token's PIN flags now (a locked PIN: not
 * even a prompt), the PIN, the state file (locked while C_Login runs, so
 * that processes logging in at once learn from each other), C_Login.
 */
static CK_RV login_with(p11_session *s, CK_USER_TYPE user, const p11_auth *auth,
                        const char *what)
{
    p11_token *tok = s->tok;
    bool ctx_specific = user == CKU_CONTEXT_SPECIFIC;
    struct p11_pinstate *st = NULL;
    CK_FLAGS flags = pin_flags_now(tok);
    struct pin pin;
    CK_RV rv;

    if (flags & CKF_USER_PIN_LOCKED)
        return p11_error_set(
            CKR_PIN_LOCKED, "C_Login", tok, what,
            "not logging in: the token reports the user PIN is LOCKED (CKF_USER_PIN_LOCKED); the security officer can unblock it (C_InitPIN)");
    rv = get_pin(tok, auth, ctx_specific, flags, what, &pin);
    /* A typed PIN that works clears the state too: open it if it exists. */
    if (rv == CKR_OK)
        rv = p11_pinstate_open(tok, pin_automatic(&pin), &st);
    if (rv == CKR_OK)
        rv = do_login(s, user, &pin, flags, st, what);
    p11_pinstate_close(st);
    OPENSSL_cleanse(&pin, sizeof(pin));
    return rv;
}

CK_RV p11_token_login(p11_token *tok, const p11_auth *auth)
{
    p11_session *s = NULL;
    CK_RV rv;

    return_val_if_fail(tok != NULL, CKR_ARGUMENTS_BAD);
    if (!p11_token_needs_login(tok) || atomic_load(&tok->logged_in))
        return CKR_OK;
    pthread_mutex_lock(&tok->login_lock);
    if (atomic_load(&tok->logged_in)) {
        pthread_mutex_unlock(&tok->login_lock);
        return CKR_OK;
    }
    rv = p11_session_acquire(tok, 0, NULL, &s);
    /*
     * A cached PIN that stopped working (changed elsewhere) is dropped by
     * do_login; the next login reads the configured sources again.
     */
    if (rv == CKR_OK)
        rv = login_with(s, CKU_USER, auth, NULL);
    if (rv == CKR_OK) {
        atomic_store(&tok->logged_in, true);
        LOG_DBG(P11, "logged in to %s", p11_token_describe(tok));
    }
    /* The session stays pooled: closing the last one would log us out. */
    p11_session_release(s, rv);
    pthread_mutex_unlock(&tok->login_lock);
    return rv;
}

CK_RV p11_login_context_specific(p11_session *s, p11_obj *obj,
                                 const p11_auth *auth)
{
    p11_token *tok = s->tok;
    CK_RV rv;

    pthread_mutex_lock(&tok->login_lock);
    rv = login_with(s, CKU_CONTEXT_SPECIFIC, auth, p11_obj_describe(obj));
    pthread_mutex_unlock(&tok->login_lock);
    return rv;
}

CK_RV p11_token_logout(p11_token *tok)
{
    p11_session *s = NULL;
    CK_RV rv;

    return_val_if_fail(tok != NULL, CKR_ARGUMENTS_BAD);
    pthread_mutex_lock(&tok->login_lock);
    p11_token_drop_pin(tok);
    rv = p11_session_acquire(tok, 0, NULL, &s);
    if (rv == CKR_OK) {
        rv = P11_C(tok->mod->funcs, C_Logout, s->h);
        if (rv == CKR_USER_NOT_LOGGED_IN)
            rv = CKR_OK;
        if (rv != CKR_OK)
            p11_error_set(rv, "C_Logout", tok, NULL, NULL);
    }
    atomic_store(&tok->logged_in, false);
    p11_session_release(s, rv);
    pthread_mutex_unlock(&tok->login_lock);
    return rv;
}
