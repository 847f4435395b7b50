/* SPDX-License-Identifier: Apache-2.0 */
/* Logins: where a PIN comes from, C_Login once per token, never replaying
 * a refused PIN, and context-specific logins for always-authenticate keys. */
#include "config.h"

#include "internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

enum pin_origin {
    PIN_NONE,
    PIN_CACHED,    /* worked before in this process */
    PIN_AUTOMATIC, /* URI, file: never replayed once refused */
    PIN_PROMPT,    /* typed by the user just now */
    PIN_PAD,       /* protected authentication path */
};

struct pin {
    char buf[P11_MAX_PIN_LEN + 1];
    size_t len;
    enum pin_origin origin;
};

static unsigned char pin_salt[16];
static pthread_once_t salt_once = PTHREAD_ONCE_INIT;

static void salt_init(void)
{
    if (RAND_bytes(pin_salt, sizeof(pin_salt)) != 1)
        memset(pin_salt, 0x5a, sizeof(pin_salt));
}

/* A salted hash of @pin: enough to recognise a refused PIN, never to log. */
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
        OPENSSL_secure_clear_free(tok->pin, tok->pin_len + 1);
        tok->pin = NULL;
        tok->pin_len = 0;
    }
}

static void cache_pin(p11_token *tok, const struct pin *pin)
{
    if (pin->origin == PIN_PAD || pin->origin == PIN_CACHED)
        return;
    p11_token_drop_pin(tok);
    tok->pin = OPENSSL_secure_malloc(pin->len + 1);
    if (!tok->pin)
        return; /* only costs a prompt later */
    memcpy(tok->pin, pin->buf, pin->len);
    tok->pin[pin->len] = '\0';
    tok->pin_len = pin->len;
}

static CK_RV from_file(const char *path, struct pin *pin)
{
    int n = p11_pin_read_file(path, pin->buf, P11_MAX_PIN_LEN);

    if (n < 0)
        return P11_RV_PIN_SOURCE;
    pin->len = (size_t)n;
    pin->origin = PIN_AUTOMATIC;
    return CKR_OK;
}

/*
 * Find a PIN for @tok: the one that worked last, the URI's pin-value or
 * pin-source, the context's pin source, a PIN pad, then the prompt.
 * Called with the login lock held, so only one prompt shows at a time.
 */
static CK_RV get_pin(p11_token *tok, const p11_auth *auth, bool ctx_specific,
                     struct pin *pin)
{
    p11_ctx *ctx = tok->ctx;
    p11_pin_prompt_fn prompt;
    void *prompt_arg;
    char what[128];
    int n;

    pin->len = 0;
    pin->origin = PIN_NONE;
    if (tok->pin) {
        memcpy(pin->buf, tok->pin, tok->pin_len);
        pin->len = tok->pin_len;
        pin->origin = PIN_CACHED;
        return CKR_OK;
    }
    if (auth && auth->pin_value) {
        pin->len = strlen(auth->pin_value);
        if (pin->len > P11_MAX_PIN_LEN)
            return p11_error_set(P11_RV_PIN_SOURCE, NULL, tok, NULL,
                                 "pin-value is too long");
        memcpy(pin->buf, auth->pin_value, pin->len);
        pin->origin = PIN_AUTOMATIC;
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
        snprintf(what, sizeof(what), "%s", p11_token_describe(tok));
        n = prompt(what, ctx_specific, pin->buf, P11_MAX_PIN_LEN, prompt_arg);
        if (n >= 0 && (size_t)n <= P11_MAX_PIN_LEN) {
            pin->len = (size_t)n;
            pin->origin = PIN_PROMPT;
            return CKR_OK;
        }
    }
    return p11_error_set(P11_RV_NO_PIN, "C_Login", tok, NULL,
                         "a PIN is needed: give one with pin-source= or "
                         "pin-value= in the URI or a PIN source option, or "
                         "run on a terminal to be asked for it");
}

static const char *tries_left(p11_token *tok)
{
    CK_TOKEN_INFO ti;

    if (P11_C(tok->mod->funcs, C_GetTokenInfo, tok->slot, &ti) != CKR_OK)
        return "";
    tok->info.flags = ti.flags;
    if (ti.flags & CKF_USER_PIN_LOCKED)
        return "; the token reports the user PIN is LOCKED";
    if (ti.flags & CKF_USER_PIN_FINAL_TRY)
        return "; the token reports ONE try left before it locks the PIN";
    if (ti.flags & CKF_USER_PIN_COUNT_LOW)
        return "; the token reports few tries left before it locks the PIN";
    return "";
}

static bool rv_pin_refused(CK_RV rv)
{
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID
           || rv == CKR_PIN_LEN_RANGE;
}

/* Run C_Login with @pin and account for the outcome. */
static CK_RV do_login(p11_session *s, CK_USER_TYPE user, struct pin *pin,
                      const char *what)
{
    p11_token *tok = s->tok;
    unsigned char h[32];
    CK_RV rv;

    if (pin->origin == PIN_AUTOMATIC) {
        pin_hash(pin, h);
        if (tok->has_refused && memcmp(h, tok->refused, sizeof(h)) == 0)
            return p11_error_set(P11_RV_PIN_REFUSED, "C_Login", tok, what,
                                 NULL);
    }
    rv = P11_C(tok->mod->funcs, C_Login, s->h, user,
               pin->origin == PIN_PAD ? NULL : (CK_UTF8CHAR *)pin->buf,
               pin->origin == PIN_PAD ? 0 : pin->len);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        if (pin->origin != PIN_PAD && user == CKU_USER)
            cache_pin(tok, pin);
        return CKR_OK;
    }
    if (rv_pin_refused(rv) && pin->origin != PIN_PAD) {
        pin_hash(pin, tok->refused);
        tok->has_refused = true;
        if (pin->origin == PIN_CACHED)
            p11_token_drop_pin(tok);
    }
    if (rv_pin_refused(rv) || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED)
        return p11_error_set(rv, "C_Login", tok, what, "the PIN was refused%s",
                             tries_left(tok));
    return p11_error_set(rv, "C_Login", tok, what, NULL);
}

CK_RV p11_token_login(p11_token *tok, const p11_auth *auth)
{
    struct pin pin;
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
    if (rv != CKR_OK)
        goto out;
    rv = get_pin(tok, auth, false, &pin);
    if (rv != CKR_OK)
        goto out;
    /*
     * A cached PIN that stopped working (changed elsewhere) is dropped by
     * do_login; the next login reads the configured sources again.
     */
    rv = do_login(s, CKU_USER, &pin, NULL);
    if (rv == CKR_OK) {
        atomic_store(&tok->logged_in, true);
        LOG_DBG(P11, "logged in to %s", p11_token_describe(tok));
    }
out:
    OPENSSL_cleanse(&pin, sizeof(pin));
    /* The session stays pooled: closing the last one would log us out. */
    p11_session_release(s, rv);
    pthread_mutex_unlock(&tok->login_lock);
    return rv;
}

CK_RV p11_login_context_specific(p11_session *s, p11_obj *obj,
                                 const p11_auth *auth)
{
    p11_token *tok = s->tok;
    struct pin pin;
    CK_RV rv;

    pthread_mutex_lock(&tok->login_lock);
    rv = get_pin(tok, auth, true, &pin);
    if (rv == CKR_OK)
        rv = do_login(s, CKU_CONTEXT_SPECIFIC, &pin, p11_obj_describe(obj));
    OPENSSL_cleanse(&pin, sizeof(pin));
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
