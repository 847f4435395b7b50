/* SPDX-License-Identifier: Apache-2.0 */
/* Contexts: loading PKCS#11 modules through p11-kit, enumerating tokens,
 * re-initialising after fork(). */
#include "config.h"

#include "internal.h"

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Calls into a module this thread is inside of now (internal.h). */
_Thread_local unsigned p11_in_module;

bool p11_thread_in_module(void)
{
    return p11_in_module > 0;
}

/* Why p11-kit could not load a module: it may say nothing (without
 * memory, for one), and NULL is no argument for "%s". */
static const char *kit_message(void)
{
    const char *m = p11_kit_message();

    return m && *m ? m : "p11-kit gave no reason";
}

/* A copy of the setting @s (none when NULL or empty) into @out; false
 * when the copy failed. */
static bool copy_setting(const char *s, char **out)
{
    if (!s || !*s)
        return true;
    *out = strdup(s);
    return *out != NULL;
}

/* Whether a URI's module-path= may load a module, for a configured @v. */
static bool uri_module_allowed(int v)
{
    const char *env = secure_getenv("P11CA_ALLOW_URI_MODULE_PATH");

    if (v != P11_URI_MODULE_DEFAULT)
        return v == P11_URI_MODULE_ALLOW;
    return env
           && (strcasecmp(env, "yes") == 0 || strcasecmp(env, "true") == 0
               || strcmp(env, "1") == 0 || strcasecmp(env, "on") == 0);
}

p11_ctx *p11_ctx_new(const p11_config *cfg)
{
    p11_ctx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx)
        return NULL;
    ctx->max_sessions = 8;
    if (cfg) {
        ctx->single_session = cfg->single_session;
        ctx->cache_pin = cfg->cache_pin;
        ctx->no_finalize = cfg->no_finalize;
        if (cfg->max_sessions)
            ctx->max_sessions = cfg->max_sessions;
    }
    /*
     * Precedence: configuration, then the environment, then p11-kit.  A
     * copy that fails fails the context: going on would quietly change
     * the configuration (every p11-kit module instead of the one named).
     */
    if (!copy_setting(cfg ? cfg->module_path : NULL, &ctx->module_path)
        || (!ctx->module_path
            && !copy_setting(getenv("P11CA_MODULE"), &ctx->module_path))
        || !copy_setting(cfg ? cfg->pin_source : NULL, &ctx->pin_source)) {
        free(ctx->module_path);
        free(ctx);
        return NULL;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->token_wait_ms = p11_token_wait_resolve(cfg ? cfg->token_wait_ms : 0);
    ctx->allow_uri_module_path =
        uri_module_allowed(cfg ? cfg->allow_uri_module_path : 0);
    ctx->pid = getpid();
    ctx->fork_gen = atomic_load(&p11_fork_gen);
    p11_fork_register(ctx);
    return ctx;
}

void p11_ctx_set_prompt(p11_ctx *ctx, p11_pin_prompt_fn fn, void *arg)
{
    return_if_fail(ctx != NULL);
    pthread_mutex_lock(&ctx->lock);
    ctx->prompt = fn;
    ctx->prompt_arg = arg;
    pthread_mutex_unlock(&ctx->lock);
}

static void module_free(struct p11_module *m, bool finalize)
{
    if (!m)
        return;
    if (m->by_path && m->funcs) {
        if (finalize)
            P11_IN_MODULE_VOID(p11_kit_module_finalize(m->funcs));
        p11_kit_module_release(m->funcs);
    }
    free(m->name);
    free(m->path);
    free(m->real);
    free(m);
}

void p11_ctx_free(p11_ctx *ctx)
{
    bool same_process;

    if (!ctx)
        return;
    p11_fork_unregister(ctx);
    /* In a forked child the parent's sessions are not ours to close. */
    same_process =
        ctx->pid == getpid() && ctx->fork_gen == atomic_load(&p11_fork_gen);
    for (size_t i = 0; i < ctx->n_tokens; i++) {
        /* Sessions are not closed when the module may be gone already. */
        if (!same_process || ctx->no_finalize)
            p11_token_reset(ctx->tokens[i]);
        p11_token_free(ctx->tokens[i]);
    }
    if (ctx->no_finalize)
        same_process = false;
    free(ctx->tokens);
    for (size_t i = 0; i < ctx->n_mods; i++)
        module_free(ctx->mods[i], same_process);
    free(ctx->mods);
    if (ctx->kit_modules) {
        if (same_process)
            P11_IN_MODULE_VOID(
                p11_kit_modules_finalize_and_release(ctx->kit_modules));
        else
            p11_kit_modules_release(ctx->kit_modules);
    }
    free(ctx->module_path);
    free(ctx->pin_source);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/*
 * Add @funcs to the context's modules; caller holds ctx->lock.  Each module
 * is an allocation of its own that stays where it is until p11_ctx_free:
 * tokens point to theirs, and threads call tok->mod->funcs without the
 * context lock (the array of pointers may grow, the modules never move).
 * On failure nothing is kept and @funcs stays the caller's.
 */
static CK_RV add_module(p11_ctx *ctx, CK_FUNCTION_LIST *funcs, bool by_path,
                        struct p11_module **out)
{
    struct p11_module **mods;
    struct p11_module *m;

    mods = realloc(ctx->mods, (ctx->n_mods + 1) * sizeof(*mods));
    if (!mods)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    ctx->mods = mods;
    m = calloc(1, sizeof(*m));
    if (!m)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    m->funcs = funcs;
    m->by_path = by_path;
    m->path = p11_kit_module_get_filename(funcs);
    m->name = p11_kit_module_get_name(funcs);
    if (!m->name && m->path && !(m->name = strdup(m->path))) {
        /* Not counted in n_mods yet: nobody else frees it. */
        free(m->path);
        free(m);
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    }
    if (m->path)
        m->real = realpath(m->path, NULL);
    /* Read once: URIs with library-* attributes are matched against it. */
    m->has_info = P11_C(funcs, C_GetInfo, &m->info) == CKR_OK;
    mods[ctx->n_mods++] = m;
    if (out)
        *out = m;
    return CKR_OK;
}

/* Whether module @m was loaded from @path (symlinks resolved). */
static bool same_file(const struct p11_module *m, const char *path)
{
    char *real;
    bool same;

    if (m->path && strcmp(m->path, path) == 0)
        return true;
    real = realpath(path, NULL);
    same = real && m->real && strcmp(real, m->real) == 0;
    free(real);
    return same;
}

/* Load one module by path; caller holds ctx->lock. */
static CK_RV load_path_locked(p11_ctx *ctx, const char *path,
                              struct p11_module **out)
{
    CK_FUNCTION_LIST *funcs;
    CK_RV rv;

    for (size_t i = 0; i < ctx->n_mods; i++) {
        if (same_file(ctx->mods[i], path)) {
            if (out)
                *out = ctx->mods[i];
            return CKR_OK;
        }
    }
    funcs = P11_IN_MODULE(p11_kit_module_load(path, 0));
    if (!funcs)
        return p11_error_set(P11_RV_NO_MODULE, "loading module", NULL, NULL,
                             "%s: %s", path, kit_message());
    /* p11-kit initialises the module with CKF_OS_LOCKING_OK. */
    rv = P11_IN_MODULE(p11_kit_module_initialize(funcs));
    if (rv != CKR_OK) {
        p11_kit_module_release(funcs);
        return p11_error_set(rv, "C_Initialize", NULL, NULL, "module %s", path);
    }
    rv = add_module(ctx, funcs, true, out);
    if (rv != CKR_OK) {
        P11_IN_MODULE_VOID(p11_kit_module_finalize(funcs));
        p11_kit_module_release(funcs);
    }
    return rv;
}

static CK_RV load_locked(p11_ctx *ctx)
{
    CK_FUNCTION_LIST **kit;
    size_t first = ctx->n_mods;
    CK_RV rv = CKR_OK;

    if (ctx->module_path)
        return load_path_locked(ctx, ctx->module_path, NULL);

    kit = P11_IN_MODULE(p11_kit_modules_load_and_initialize(0));
    if (!kit)
        return p11_error_set(P11_RV_NO_MODULE, "loading p11-kit modules", NULL,
                             NULL, "%s", kit_message());
    for (size_t i = 0; kit[i] && rv == CKR_OK; i++)
        rv = add_module(ctx, kit[i], false, NULL);
    if (rv == CKR_OK && ctx->n_mods == first)
        rv = p11_error_set(
            P11_RV_NO_MODULE, "loading p11-kit modules", NULL, NULL,
            "no module is registered with p11-kit; name one with --module or P11CA_MODULE");
    if (rv != CKR_OK) {
        /* Nothing of this attempt stays: no token was made from them. */
        while (ctx->n_mods > first)
            module_free(ctx->mods[--ctx->n_mods], false);
        P11_IN_MODULE_VOID(p11_kit_modules_finalize_and_release(kit));
        return rv;
    }
    ctx->kit_modules = kit;
    return CKR_OK;
}

/*
 * In a forked child: forget the parent's sessions and logins (never close
 * them: they belong to the parent) and initialise the modules again, which
 * p11-kit turns into a fresh C_Initialize of the module in this process.
 */
static CK_RV reinit_after_fork_locked(p11_ctx *ctx)
{
    CK_RV rv;

    LOG_DBG(P11, "fork detected: re-initialising %zu modules", ctx->n_mods);
    for (size_t i = 0; i < ctx->n_tokens; i++)
        p11_token_reset(ctx->tokens[i]);
    for (size_t i = 0; i < ctx->n_mods; i++) {
        rv = P11_IN_MODULE(p11_kit_module_initialize(ctx->mods[i]->funcs));
        if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
            LOG_DBG(P11, "C_Initialize of %s after fork: %s",
                    ctx->mods[i]->name, p11_rv_name(rv));
    }
    ctx->pid = getpid();
    ctx->fork_gen = atomic_load(&p11_fork_gen);
    return CKR_OK;
}

CK_RV p11_ctx_ensure(p11_ctx *ctx)
{
    CK_RV rv = CKR_OK;

    if (atomic_load_explicit(&ctx->loaded, memory_order_acquire)
        && ctx->fork_gen == atomic_load(&p11_fork_gen))
        return CKR_OK;
    pthread_mutex_lock(&ctx->lock);
    if (!atomic_load(&ctx->loaded)) {
        rv = load_locked(ctx);
        if (rv == CKR_OK) {
            /* First loaded in this process (maybe a child): current now. */
            ctx->pid = getpid();
            ctx->fork_gen = atomic_load(&p11_fork_gen);
            atomic_store_explicit(&ctx->loaded, true, memory_order_release);
        }
    } else if (ctx->fork_gen != atomic_load(&p11_fork_gen)) {
        rv = reinit_after_fork_locked(ctx);
    }
    pthread_mutex_unlock(&ctx->lock);
    return rv;
}

CK_RV p11_ctx_load(p11_ctx *ctx)
{
    return_val_if_fail(ctx != NULL, CKR_ARGUMENTS_BAD);
    return p11_ctx_ensure(ctx);
}

CK_RV p11_ctx_load_module_path(p11_ctx *ctx, const char *path,
                               struct p11_module **out)
{
    CK_RV rv;

    pthread_mutex_lock(&ctx->lock);
    rv = load_path_locked(ctx, path, out);
    pthread_mutex_unlock(&ctx->lock);
    return rv;
}

/* ------------------------------------------------------------------ */
/* Tokens                                                              */
/* ------------------------------------------------------------------ */

static void token_set_info(p11_token *tok, const CK_SLOT_INFO *si,
                           const CK_TOKEN_INFO *ti)
{
    /*
     * Threads read these without the context lock (labels in messages,
     * flags at login): a rescan writes only what changed, which for a
     * token that is simply still there is nothing.
     */
    if (memcmp(&tok->slot_info, si, sizeof(*si)) != 0)
        tok->slot_info = *si;
    if (memcmp(&tok->info, ti, sizeof(*ti)) == 0)
        return;
    tok->info = *ti;
    p11_copy_padded(tok->label, sizeof(tok->label), ti->label,
                    sizeof(ti->label));
    p11_copy_padded(tok->serial, sizeof(tok->serial), ti->serialNumber,
                    sizeof(ti->serialNumber));
    p11_copy_padded(tok->model, sizeof(tok->model), ti->model,
                    sizeof(ti->model));
    p11_copy_padded(tok->manufacturer, sizeof(tok->manufacturer),
                    ti->manufacturerID, sizeof(ti->manufacturerID));
}

static p11_token *token_new(p11_ctx *ctx, struct p11_module *mod,
                            CK_SLOT_ID slot)
{
    p11_token *tok = calloc(1, sizeof(*tok));

    if (!tok)
        return NULL;
    tok->ctx = ctx;
    tok->mod = mod;
    tok->slot = slot;
    pthread_mutex_init(&tok->lock, NULL);
    pthread_mutex_init(&tok->login_lock, NULL);
    pthread_cond_init(&tok->cond, NULL);
    atomic_init(&tok->gen, 1);
    return tok;
}

void p11_token_free(p11_token *tok)
{
    struct p11_session *s;

    if (!tok)
        return;
    while ((s = tok->idle) != NULL) {
        tok->idle = s->next;
        P11_C(tok->mod->funcs, C_CloseSession, s->h);
        free(s);
    }
    p11_token_drop_pin(tok);
    free(tok->mechs);
    free(tok->mech_info);
    free(tok->mech_state);
    pthread_cond_destroy(&tok->cond);
    pthread_mutex_destroy(&tok->login_lock);
    pthread_mutex_destroy(&tok->lock);
    free(tok);
}

static p11_token *token_lookup_locked(p11_ctx *ctx, struct p11_module *mod,
                                      CK_SLOT_ID slot)
{
    for (size_t i = 0; i < ctx->n_tokens; i++)
        if (ctx->tokens[i]->mod == mod && ctx->tokens[i]->slot == slot)
            return ctx->tokens[i];
    return NULL;
}

/* Refresh the token list of one module; caller holds ctx->lock. */
static CK_RV scan_module_locked(p11_ctx *ctx, struct p11_module *mod)
{
    CK_FUNCTION_LIST *f = mod->funcs;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_RV rv;

    /* A reader plugged in between the two calls: ask again (a few times). */
    for (int tries = 0; tries < 4; tries++) {
        free(slots);
        slots = NULL;
        rv = P11_C(f, C_GetSlotList, CK_TRUE, NULL, &n);
        if (rv != CKR_OK || n == 0)
            break;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
            return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
        rv = P11_C(f, C_GetSlotList, CK_TRUE, slots, &n);
        if (rv != CKR_BUFFER_TOO_SMALL)
            break;
    }
    if (rv != CKR_OK) {
        free(slots);
        return p11_error_set(rv, "C_GetSlotList", NULL, NULL, "module %s",
                             mod->name);
    }
    for (size_t i = 0; i < ctx->n_tokens; i++)
        if (ctx->tokens[i]->mod == mod)
            ctx->tokens[i]->present = false;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        p11_token *tok, **grown;

        rv = P11_C(f, C_GetSlotInfo, slots[i], &si);
        if (rv == CKR_OK)
            rv = P11_C(f, C_GetTokenInfo, slots[i], &ti);
        if (rv != CKR_OK) {
            /*
             * The token went away while we looked, or is being rewritten
             * (SoftHSM2 answers CKR_GENERAL_ERROR while another process
             * saves the token at its C_Login): not there for this scan.
             */
            LOG_DBG(P11,
                    "slot %lu of module %s: no token there now (%s): skipped",
                    (unsigned long)slots[i], mod->name, p11_rv_name(rv));
            ctx->scan_lost++;
            continue;
        }
        tok = token_lookup_locked(ctx, mod, slots[i]);
        if (!tok) {
            grown = realloc(ctx->tokens, (ctx->n_tokens + 1) * sizeof(*grown));
            if (!grown || !(tok = token_new(ctx, mod, slots[i]))) {
                if (grown)
                    ctx->tokens = grown;
                free(slots);
                return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
            }
            ctx->tokens = grown;
            ctx->tokens[ctx->n_tokens++] = tok;
        }
        token_set_info(tok, &si, &ti);
        tok->present = true;
        if (ti.flags & CKF_TOKEN_INITIALIZED)
            tok->was_usable = true;
    }
    free(slots);
    return CKR_OK;
}

static CK_RV scan_locked(p11_ctx *ctx, const struct p11_module *only)
{
    CK_RV rv, first = CKR_OK;
    size_t ok = 0;

    ctx->scan_lost = 0;
    for (size_t i = 0; i < ctx->n_mods; i++) {
        if (only && ctx->mods[i] != only)
            continue;
        rv = scan_module_locked(ctx, ctx->mods[i]);
        if (rv == CKR_OK)
            ok++;
        else if (first == CKR_OK)
            first = rv;
    }
    /* One broken module must not hide the tokens of the others. */
    return ok > 0 || first == CKR_OK ? CKR_OK : first;
}

static bool module_matches(const struct p11_module *m, const p11_uri *uri)
{
    const char *name = uri ? p11_uri_get0_module_name(uri) : NULL;
    const char *path = uri ? p11_uri_get0_module_path(uri) : NULL;

    if (name && (!m->name || strcmp(name, m->name) != 0)) {
        /* module-name= may also name the file ("libsofthsm2"). */
        const char *base = m->path ? strrchr(m->path, '/') : NULL;
        base = base ? base + 1 : m->path;
        if (!base || strncmp(base, name, strlen(name)) != 0)
            return false;
    }
    if (path && !same_file(m, path))
        return false;
    if (uri && m->has_info
        && !p11_kit_uri_match_module_info(p11_uri_get0_kit(uri),
                                          (CK_INFO *)&m->info))
        return false;
    return true;
}

static bool token_matches(const p11_token *tok, const p11_uri *uri)
{
    P11KitUri *k;

    if (!tok->present)
        return false;
    if (!uri)
        return true;
    k = p11_uri_get0_kit(uri);
    if (!module_matches(tok->mod, uri))
        return false;
    if (!p11_kit_uri_match_slot_info(k, &tok->slot_info))
        return false;
    if (p11_kit_uri_get_slot_id(k) != (CK_SLOT_ID)-1
        && p11_kit_uri_get_slot_id(k) != tok->slot)
        return false;
    return p11_kit_uri_match_token_info(k, &tok->info) != 0;
}

static CK_RV collect_locked(p11_ctx *ctx, const p11_uri *uri, unsigned flags,
                            p11_token ***out, size_t *n, struct skipped *sk)
{
    p11_token **list = NULL;
    size_t cnt = 0;

    memset(sk, 0, sizeof(*sk));
    for (size_t i = 0; i < ctx->n_tokens; i++) {
        p11_token *tok = ctx->tokens[i];

        if (!token_matches(tok, uri))
            continue;
        if ((flags & P11_TOKENS_USABLE)
            && !(tok->info.flags & CKF_TOKEN_INITIALIZED)) {
            /* Listed by `token list` (to be initialised), never searched. */
            LOG_DBG(P11, "%s of module %s: not initialised: skipped",
                    p11_token_describe(tok), tok->mod->name);
            if (sk->uninitialised++ == 0)
                snprintf(sk->first, sizeof(sk->first), "%s",
                         p11_token_describe(tok));
            continue;
        }
        p11_token **grown = realloc(list, (cnt + 1) * sizeof(*list));
        if (!grown) {
            free(list);
            return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
        }
        list = grown;
        list[cnt++] = tok;
    }
    *out = list;
    *n = cnt;
    return CKR_OK;
}

/* The loaded module that @path names (symlinks resolved), or NULL. */
static struct p11_module *loaded_module(p11_ctx *ctx, const char *path)
{
    struct p11_module *m = NULL;

    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->n_mods && !m; i++)
        if (same_file(ctx->mods[i], path))
            m = ctx->mods[i];
    pthread_mutex_unlock(&ctx->lock);
    return m;
}

CK_RV p11_find_prepare(p11_ctx *ctx, const p11_uri *uri,
                       struct p11_module **only)
{
    const char *mpath = uri ? p11_uri_get0_module_path(uri) : NULL;
    CK_RV rv;

    *only = NULL;
    rv = p11_ctx_ensure(ctx);
    if (rv != CKR_OK || !mpath)
        return rv;
    /*
     * module-path= selects one of the loaded modules.  Loading the file it
     * names would run its code: whoever writes a URI (a less trusted input
     * than the configuration) could make the application dlopen anything.
     */
    *only = loaded_module(ctx, mpath);
    if (*only)
        return CKR_OK;
    if (!ctx->allow_uri_module_path)
        return p11_error_set(
            P11_RV_URI_MODULE, NULL, NULL, NULL,
            "module-path=%s in the URI names a module that is not loaded, and a URI does not load code: configure the module (p11ca-module-path, --module, P11CA_MODULE) or register it with p11-kit and select it with module-name=; p11ca-allow-uri-module-path = yes in the provider's openssl.cnf section, or P11CA_ALLOW_URI_MODULE_PATH=yes, lets URIs load modules",
            mpath);
    return p11_ctx_load_module_path(ctx, mpath, only);
}

CK_RV p11_find_look(p11_ctx *ctx, const p11_uri *uri,
                    const struct p11_module *only, unsigned flags, bool rescan,
                    p11_token ***out, size_t *n, struct skipped *sk)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&ctx->lock);
    if (rescan)
        rv = scan_locked(ctx, only);
    if (rv == CKR_OK)
        rv = collect_locked(ctx, uri, flags, out, n, sk);
    /* Not known yet: a token may have been inserted since the last scan. */
    if (rv == CKR_OK && *n == 0 && !rescan) {
        free(*out);
        *out = NULL;
        rv = scan_locked(ctx, only);
        if (rv == CKR_OK)
            rv = collect_locked(ctx, uri, flags, out, n, sk);
    }
    pthread_mutex_unlock(&ctx->lock);
    return rv;
}

/* 'token "CA1" ' or 'token with serial 01ab ' for a URI that names one. */
static void uri_token_name(const p11_uri *uri, char *buf, size_t len)
{
    const CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(p11_uri_get0_kit(uri));
    char label[33], serial[17];

    p11_copy_padded(label, sizeof(label), ti->label, sizeof(ti->label));
    p11_copy_padded(serial, sizeof(serial), ti->serialNumber,
                    sizeof(ti->serialNumber));
    buf[0] = '\0';
    if (label[0])
        snprintf(buf, len, "token \"%s\" ", label);
    else if (serial[0])
        snprintf(buf, len, "token with serial %s ", serial);
}

CK_RV p11_find_no_token(p11_ctx *ctx, const p11_uri *uri, bool named,
                        const struct skipped *sk, const struct p11_wait *w)
{
    char *desc = uri ? p11_uri_format(uri) : NULL;
    char name[80] = "", waited[96] = "", skip[128] = "";
    CK_RV rv;

    (void)ctx;
    if (named)
        uri_token_name(uri, name, sizeof(name));
    if (w->started)
        snprintf(waited, sizeof(waited), "; waited %.1f s for it (token wait)",
                 (double)p11_wait_elapsed(w, p11_now_ms()) / 1000.0);
    /* An empty slot that "pkcs11:" matches is no news; a named one is. */
    if (named && sk->uninitialised)
        snprintf(skip, sizeof(skip), " (%s%s matches but is not initialised)",
                 sk->first, sk->uninitialised > 1 ? " and others" : "");
    if (name[0] && !sk->uninitialised)
        rv = p11_error_set(P11_RV_NO_TOKEN, NULL, NULL, NULL,
                           "%sis not present: no token matches %s%s", name,
                           desc ? desc : "pkcs11:", waited);
    else
        rv = p11_error_set(P11_RV_NO_TOKEN, NULL, NULL, NULL,
                           "no %stoken matches %s%s%s",
                           sk->uninitialised ? "initialised " : "",
                           desc ? desc : "pkcs11:", skip, waited);
    free(desc);
    return rv;
}

CK_RV p11_token_find_ex(p11_ctx *ctx, const p11_uri *uri, unsigned flags,
                        p11_token ***out, size_t *n)
{
    struct p11_module *only = NULL;
    struct p11_wait w = {0};
    bool named = p11_uri_names_token(uri), wait;
    struct skipped sk;
    CK_RV rv;

    return_val_if_fail(ctx && out && n, CKR_ARGUMENTS_BAD);
    *out = NULL;
    *n = 0;
    rv = p11_find_prepare(ctx, uri, &only);
    if (rv != CKR_OK)
        return rv;
    wait =
        (flags & P11_TOKENS_WAIT) && ((flags & P11_TOKENS_WAIT_ANY) || named);
    for (;;) {
        rv = p11_find_look(ctx, uri, only, flags, w.started, out, n, &sk);
        if (rv != CKR_OK || *n > 0)
            return rv;
        free(*out);
        *out = NULL;
        /*
         * PKCS#11 cannot tell a token pulled for a moment (a reader that
         * blinks, SoftHSM2 rewriting its file) from one that never was:
         * the token wait bounds the cost of a misspelt name.  The token a
         * URI names that is there but not initialised is not away.
         */
        if (!wait || (named && sk.uninitialised)
            || !p11_wait_pause(&w, ctx->token_wait_ms))
            break;
        p11_wait_refresh(ctx, &w, only, false);
    }
    if (!(flags & P11_TOKENS_WAIT))
        return CKR_OK;
    return p11_find_no_token(ctx, uri, named, &sk, &w);
}

CK_RV p11_token_find(p11_ctx *ctx, const p11_uri *uri, p11_token ***out,
                     size_t *n)
{
    return p11_token_find_ex(ctx, uri, 0, out, n);
}

bool p11_tokens_seem_away(p11_ctx *ctx)
{
    bool away;

    pthread_mutex_lock(&ctx->lock);
    away = ctx->scan_lost > 0;
    for (size_t i = 0; i < ctx->n_tokens && !away; i++)
        away = ctx->tokens[i]->was_usable && !ctx->tokens[i]->present;
    pthread_mutex_unlock(&ctx->lock);
    return away;
}

static void list_tokens(p11_token **toks, size_t n, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < len; i++) {
        int r = snprintf(buf + o, len - o, "%s%s (serial %s)", i ? ", " : "",
                         p11_token_describe(toks[i]), toks[i]->serial);
        if (r < 0)
            break;
        o += (size_t)r;
    }
}

CK_RV p11_token_list_ambiguous(p11_token **toks, size_t n, const p11_uri *uri,
                               const char *why)
{
    char names[512];
    char *desc = uri ? p11_uri_format(uri) : NULL;
    CK_RV rv;

    list_tokens(toks, n, names, sizeof(names));
    rv = p11_error_set(
        P11_RV_AMBIGUOUS, NULL, NULL, NULL,
        "%s%zu tokens match %s: %s; add token= or serial= to the URI",
        why ? why : "", n, desc ? desc : "pkcs11:", names);
    free(desc);
    return rv;
}

CK_RV p11_token_find_one(p11_ctx *ctx, const p11_uri *uri, p11_token **out)
{
    p11_token **toks = NULL;
    size_t n = 0;
    CK_RV rv;

    return_val_if_fail(out != NULL, CKR_ARGUMENTS_BAD);
    *out = NULL;
    rv = p11_token_find_ex(
        ctx, uri, P11_TOKENS_USABLE | P11_TOKENS_WAIT | P11_TOKENS_WAIT_ANY,
        &toks, &n);
    if (rv != CKR_OK)
        return rv;
    if (n == 1)
        *out = toks[0];
    else
        rv = p11_token_list_ambiguous(toks, n, uri, NULL);
    free(toks);
    return rv;
}

/*
 * Lock the session pools of every token of @m, if none has a session out
 * of its pool (in use by a thread): then no thread of this context is
 * inside a call of @m on a session, nor can start one.  Caller holds
 * ctx->lock.
 */
static bool module_lock_idle(p11_ctx *ctx, const struct p11_module *m)
{
    size_t i;

    for (i = 0; i < ctx->n_tokens; i++) {
        p11_token *t = ctx->tokens[i];

        if (t->mod != m)
            continue;
        pthread_mutex_lock(&t->lock);
        if (t->n_open != t->n_idle) {
            pthread_mutex_unlock(&t->lock);
            break;
        }
    }
    if (i == ctx->n_tokens)
        return true;
    while (i-- > 0)
        if (ctx->tokens[i]->mod == m)
            pthread_mutex_unlock(&ctx->tokens[i]->lock);
    return false;
}

/* C_Finalize and C_Initialize @m; its tokens' pools are locked and idle. */
static void module_reinit_locked(p11_ctx *ctx, struct p11_module *m)
{
    CK_RV rv;

    for (size_t i = 0; i < ctx->n_tokens; i++) {
        p11_token *t = ctx->tokens[i];
        struct p11_session *s;

        if (t->mod != m)
            continue;
        /* Closed by C_Finalize: forget them, as after fork(). */
        while ((s = t->idle) != NULL) {
            t->idle = s->next;
            free(s);
        }
        t->n_idle = t->n_open = 0;
        atomic_store(&t->logged_in, false);
        atomic_fetch_add(&t->gen, 1);
    }
    (void)P11_IN_MODULE(p11_kit_module_finalize(m->funcs));
    rv = P11_IN_MODULE(p11_kit_module_initialize(m->funcs));
    LOG_DBG(P11, "module %s initialised again: %s", m->name, p11_rv_name(rv));
    for (size_t i = 0; i < ctx->n_tokens; i++)
        if (ctx->tokens[i]->mod == m) {
            pthread_cond_broadcast(&ctx->tokens[i]->cond);
            pthread_mutex_unlock(&ctx->tokens[i]->lock);
        }
}

size_t p11_ctx_refresh(p11_ctx *ctx, const struct p11_module *only)
{
    size_t done = 0;

    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->n_mods; i++) {
        struct p11_module *m = ctx->mods[i];

        /*
         * An unmanaged module (p11-kit's "managed: no") is the same
         * instance for every context of the process: another one may be
         * inside a call right now.  A managed one starts again only when
         * no other context holds it.
         */
        if ((only && m != only)
            || (p11_kit_module_get_flags(m->funcs) & P11_KIT_MODULE_UNMANAGED)
            || !module_lock_idle(ctx, m))
            continue;
        module_reinit_locked(ctx, m);
        done++;
    }
    if (done)
        (void)scan_locked(ctx, only);
    pthread_mutex_unlock(&ctx->lock);
    return done;
}

void p11_wait_refresh(p11_ctx *ctx, struct p11_wait *w,
                      const struct p11_module *only, bool now)
{
    unsigned r = w->rounds;

    if (w->refreshed == r
        || (!now && (r < 2 || (r & (r - 1)) != 0))) /* not a power of 2 */
        return;
    w->refreshed = r;
    p11_ctx_refresh(ctx, only);
}

CK_RV p11_token_wait_back(p11_token *tok, struct p11_wait *w, long bound_ms)
{
    p11_ctx *ctx = tok->ctx;
    char serial[sizeof(tok->serial)];
    bool back;

    memcpy(serial, tok->serial, sizeof(serial));
    for (;;) {
        /*
         * A full scan of its module, not C_GetTokenInfo on its slot: some
         * modules (SoftHSM2) look for tokens again only when listed.
         */
        pthread_mutex_lock(&ctx->lock);
        (void)scan_locked(ctx, tok->mod);
        back = tok->present && (tok->info.flags & CKF_TOKEN_INITIALIZED)
               && strcmp(tok->serial, serial) == 0;
        pthread_mutex_unlock(&ctx->lock);
        if (back) {
            LOG_DBG(P11, "%s is back after %ld ms", p11_token_describe(tok),
                    p11_wait_elapsed(w, p11_now_ms()));
            return CKR_OK;
        }
        if (!p11_wait_pause(w, bound_ms))
            return P11_RV_NO_TOKEN;
        p11_wait_refresh(ctx, w, tok->mod, false);
    }
}

/*
 * Forget every session and the login of @tok without closing anything:
 * used after fork() and after the token was removed.  Cached object handles
 * become stale through the generation counter.
 */
void p11_token_reset(p11_token *tok)
{
    struct p11_session *s;

    pthread_mutex_lock(&tok->lock);
    while ((s = tok->idle) != NULL) {
        tok->idle = s->next;
        free(s);
    }
    tok->n_idle = 0;
    tok->n_open = 0;
    atomic_store(&tok->logged_in, false);
    atomic_fetch_add(&tok->gen, 1);
    pthread_cond_broadcast(&tok->cond);
    pthread_mutex_unlock(&tok->lock);
}

const CK_TOKEN_INFO *p11_token_info(const p11_token *tok)
{
    return &tok->info;
}

const char *p11_token_label(const p11_token *tok)
{
    return tok->label;
}

const char *p11_token_serial(const p11_token *tok)
{
    return tok->serial;
}

const char *p11_token_model(const p11_token *tok)
{
    return tok->model;
}

const char *p11_token_manufacturer(const p11_token *tok)
{
    return tok->manufacturer;
}

const char *p11_token_module_name(const p11_token *tok)
{
    return tok->mod->name ? tok->mod->name : "";
}

CK_SLOT_ID p11_token_slot(const p11_token *tok)
{
    return tok->slot;
}

const char *p11_token_describe(const p11_token *tok)
{
    static _Thread_local char buf[96];

    if (tok->label[0])
        snprintf(buf, sizeof(buf), "token \"%s\"", tok->label);
    else
        snprintf(buf, sizeof(buf), "slot %lu", (unsigned long)tok->slot);
    return buf;
}

/* Read the mechanism list of @tok; false if the token did not answer. */
static bool load_mechs(p11_token *tok)
{
    CK_FUNCTION_LIST *f = tok->mod->funcs;
    /* Room for what tokens list (SoftHSM2: 70); a longer list is sized. */
    CK_MECHANISM_TYPE first[192];
    CK_ULONG n = sizeof(first) / sizeof(*first);
    CK_RV rv;
    bool have;

    rv = P11_C(f, C_GetMechanismList, tok->slot, first, &n);
    have = rv == CKR_OK && n <= sizeof(first) / sizeof(*first);
    if (!have && (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_OK))
        rv = P11_C(f, C_GetMechanismList, tok->slot, NULL, &n);
    if (rv != CKR_OK) {
        LOG_DBG(P11, "%s: no mechanism list (%s); asked again at next use",
                p11_token_describe(tok), p11_rv_name(rv));
        return false;
    }
    if (n == 0)
        return true;
    tok->mechs = calloc(n, sizeof(*tok->mechs));
    tok->mech_info = calloc(n, sizeof(*tok->mech_info));
    tok->mech_state = calloc(n, sizeof(*tok->mech_state));
    if (tok->mechs && have)
        memcpy(tok->mechs, first, n * sizeof(*first));
    if (!tok->mechs || !tok->mech_info || !tok->mech_state
        || (!have
            && P11_C(f, C_GetMechanismList, tok->slot, tok->mechs, &n)
                   != CKR_OK)) {
        free(tok->mechs);
        free(tok->mech_info);
        free(tok->mech_state);
        tok->mechs = NULL;
        tok->mech_info = NULL;
        tok->mech_state = NULL;
        return false;
    }
    /* Mechanism details are read when someone asks (a token lists dozens). */
    tok->n_mechs = n;
    return true;
}

/* The info of mechanism @i, read on first use and then kept; NULL if the
 * token did not answer. */
static const CK_MECHANISM_INFO *mech_info(p11_token *tok, CK_ULONG i)
{
    const CK_MECHANISM_INFO *ret = &tok->mech_info[i];
    CK_MECHANISM_INFO mi;

    if (atomic_load_explicit(&tok->mech_state[i], memory_order_acquire))
        return ret;
    /*
     * Asked under the pool lock, once per mechanism: a call without a
     * session must not run while p11_ctx_refresh initialises the module
     * again (it holds the pool locks of the module's tokens).
     */
    pthread_mutex_lock(&tok->lock);
    if (!atomic_load(&tok->mech_state[i])) {
        if (P11_C(tok->mod->funcs, C_GetMechanismInfo, tok->slot, tok->mechs[i],
                  &mi)
            == CKR_OK) {
            tok->mech_info[i] = mi;
            atomic_store_explicit(&tok->mech_state[i], 1, memory_order_release);
        } else {
            ret = NULL; /* not kept: asked again next time */
        }
    }
    pthread_mutex_unlock(&tok->lock);
    return ret;
}

bool p11_token_has_mechanism(p11_token *tok, CK_MECHANISM_TYPE mech,
                             CK_FLAGS flags, CK_MECHANISM_INFO *info)
{
    return_val_if_fail(tok != NULL, false);
    /*
     * Read once per token; the pool lock is taken only that first time.
     * A token that cannot answer now (busy, just removed) is not taken to
     * support nothing for the rest of the process: the answer is "maybe",
     * the operation itself tells, and the list is asked for again next time.
     */
    if (!atomic_load_explicit(&tok->mechs_loaded, memory_order_acquire)) {
        bool loaded;

        pthread_mutex_lock(&tok->lock);
        loaded = atomic_load(&tok->mechs_loaded) || load_mechs(tok);
        if (loaded)
            atomic_store_explicit(&tok->mechs_loaded, true,
                                  memory_order_release);
        pthread_mutex_unlock(&tok->lock);
        if (!loaded) {
            if (info)
                memset(info, 0, sizeof(*info));
            return true;
        }
    }
    for (CK_ULONG i = 0; i < tok->n_mechs; i++) {
        const CK_MECHANISM_INFO *mi;
        if (tok->mechs[i] != mech)
            continue;
        if (!flags && !info)
            return true;
        mi = mech_info(tok, i);
        if (!mi) { /* unknown now: let the operation tell */
            if (info)
                memset(info, 0, sizeof(*info));
            return true;
        }
        if (flags && (mi->flags & flags) != flags)
            return false;
        if (info)
            *info = *mi;
        return true;
    }
    return false;
}

/* Close the idle sessions of @tok; fails if some are in use. */
static CK_RV close_idle(p11_token *tok)
{
    struct p11_session *s;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&tok->lock);
    while ((s = tok->idle) != NULL) {
        tok->idle = s->next;
        P11_C(tok->mod->funcs, C_CloseSession, s->h);
        free(s);
        tok->n_open--;
    }
    tok->n_idle = 0;
    if (tok->n_open > 0)
        rv = p11_error_set(CKR_SESSION_EXISTS, "C_InitToken", tok, NULL,
                           "sessions are in use");
    atomic_store(&tok->logged_in, false);
    atomic_fetch_add(&tok->gen, 1);
    pthread_mutex_unlock(&tok->lock);
    return rv;
}

/* After C_InitToken: the token labelled @label, wherever it is now. */
static p11_token *find_initialised(p11_ctx *ctx, p11_token *old,
                                   const char *label)
{
    p11_token *found = NULL;

    pthread_mutex_lock(&ctx->lock);
    if (scan_locked(ctx, old->mod) == CKR_OK) {
        for (size_t i = 0; i < ctx->n_tokens; i++) {
            p11_token *t = ctx->tokens[i];
            if (t->mod != old->mod || !t->present
                || strcmp(t->label, label) != 0
                || !(t->info.flags & CKF_TOKEN_INITIALIZED)
                || (t->info.flags & CKF_USER_PIN_INITIALIZED))
                continue;
            /* The same slot wins; else the first fresh one. */
            if (!found || t == old)
                found = t;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return found;
}

static CK_RV init_user_pin(p11_token *tok, const char *so_pin,
                           const char *user_pin)
{
    CK_FUNCTION_LIST *f = tok->mod->funcs;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = P11_C(f, C_OpenSession, tok->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
               NULL, NULL, &h);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_OpenSession", tok, NULL, NULL);
    rv = P11_C(f, C_Login, h, CKU_SO, (CK_UTF8CHAR *)so_pin, strlen(so_pin));
    if (rv != CKR_OK) {
        p11_error_set(rv, "C_Login", tok, NULL, "as security officer");
    } else {
        rv = P11_C(f, C_InitPIN, h, (CK_UTF8CHAR *)user_pin, strlen(user_pin));
        if (rv != CKR_OK)
            p11_error_set(rv, "C_InitPIN", tok, NULL, NULL);
        P11_C(f, C_Logout, h);
    }
    P11_C(f, C_CloseSession, h);
    return rv;
}

CK_RV p11_token_init(p11_token *tok, const char *so_pin, const char *label,
                     const char *user_pin, p11_token **out)
{
    CK_UTF8CHAR padded[32];
    p11_token *now;
    CK_RV rv;

    return_val_if_fail(tok && so_pin && label && user_pin, CKR_ARGUMENTS_BAD);
    if (out)
        *out = NULL;
    if (strlen(label) == 0 || strlen(label) > sizeof(padded))
        return p11_error_set(P11_RV_BAD_INPUT, "C_InitToken", tok, NULL,
                             "a token label has 1 to 32 bytes");
    memset(padded, ' ', sizeof(padded));
    memcpy(padded, label, strlen(label));
    rv = close_idle(tok);
    if (rv != CKR_OK)
        return rv;
    p11_token_drop_pin(tok);
    tok->has_refused = false;
    rv = P11_C(tok->mod->funcs, C_InitToken, tok->slot, (CK_UTF8CHAR *)so_pin,
               strlen(so_pin), padded);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_InitToken", tok, NULL, NULL);
    now = find_initialised(tok->ctx, tok, label);
    if (!now)
        return p11_error_set(P11_RV_NO_TOKEN, "C_InitToken", NULL, NULL,
                             "the initialised token \"%s\" is not listed",
                             label);
    rv = init_user_pin(now, so_pin, user_pin);
    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&tok->ctx->lock);
    (void)scan_locked(tok->ctx, now->mod);
    pthread_mutex_unlock(&tok->ctx->lock);
    if (out)
        *out = now;
    return CKR_OK;
}
