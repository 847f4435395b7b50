/* SPDX-License-Identifier: Apache-2.0 */
/* Objects: finding keys and certificates by URI, their cached handles and
 * attributes. */
#include "config.h"

#include "internal.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CK_RV p11_find_handles(p11_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE **out, CK_ULONG *count)
{
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_OBJECT_HANDLE *list = NULL, *grown;
    CK_ULONG cnt = 0, got = 0;
    CK_RV rv;

    *out = NULL;
    *count = 0;
    rv = P11_C(f, C_FindObjectsInit, s->h, tmpl, n);
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_FindObjectsInit", s->tok, NULL, NULL);
    do {
        grown = realloc(list, (cnt + 64) * sizeof(*list));
        if (!grown) {
            rv = p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
            break;
        }
        list = grown;
        rv = P11_C(f, C_FindObjects, s->h, list + cnt, 64, &got);
        if (rv != CKR_OK) {
            p11_error_set(rv, "C_FindObjects", s->tok, NULL, NULL);
            break;
        }
        cnt += got;
    } while (got == 64);
    /* Always end the search, or the session stays busy. */
    P11_C(f, C_FindObjectsFinal, s->h);
    if (rv != CKR_OK) {
        free(list);
        return rv;
    }
    *out = list;
    *count = cnt;
    return CKR_OK;
}

static void obj_free(p11_obj *obj)
{
    pthread_mutex_destroy(&obj->lock);
    free(obj->id);
    free(obj->label);
    free(obj);
}

/*
 * Read CKA_ID and CKA_LABEL of @h into @obj.  @a holds their lengths when
 * the caller read them already; otherwise (NULL) they are asked first.
 */
static CK_RV read_id_label(p11_session *s, CK_OBJECT_HANDLE h, p11_obj *obj,
                           const CK_ATTRIBUTE *known)
{
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    CK_ATTRIBUTE a[2] = {{CKA_ID, NULL, 0}, {CKA_LABEL, NULL, 0}};
    CK_RV rv;

    if (known) {
        a[0].ulValueLen = known[0].ulValueLen;
        a[1].ulValueLen = known[1].ulValueLen;
    } else {
        rv = P11_C(f, C_GetAttributeValue, s->h, h, a, 2);
        if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID
            && rv != CKR_ATTRIBUTE_SENSITIVE)
            return p11_error_set(rv, "C_GetAttributeValue", s->tok, NULL,
                                 "reading CKA_ID and CKA_LABEL");
    }
    for (int i = 0; i < 2; i++) {
        if (a[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
            a[i].ulValueLen = 0;
        a[i].pValue = calloc(1, a[i].ulValueLen + 1);
    }
    obj->id = a[0].pValue;
    obj->label = a[1].pValue;
    if (!obj->id || !obj->label)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    if (a[0].ulValueLen || a[1].ulValueLen) {
        CK_ATTRIBUTE b[2];
        CK_ULONG nb = 0;
        if (a[0].ulValueLen)
            b[nb++] = a[0];
        if (a[1].ulValueLen)
            b[nb++] = a[1];
        rv = P11_C(f, C_GetAttributeValue, s->h, h, b, nb);
        if (rv != CKR_OK)
            return p11_error_set(rv, "C_GetAttributeValue", s->tok, NULL,
                                 "reading CKA_ID and CKA_LABEL");
    }
    obj->id_len = a[0].ulValueLen;
    return CKR_OK;
}

/*
 * A length no token writes: an attribute whose length still reads this
 * after C_GetAttributeValue was not processed.  The specification has a
 * token process every attribute of a template, marking the ones an object
 * lacks; some stop at the first one instead.
 */
#define LEN_UNSEEN ((CK_ULONG)-2)

CK_RV p11_obj_from_handle(p11_token *tok, p11_session *s, CK_OBJECT_HANDLE h,
                          p11_obj **out)
{
    CK_FUNCTION_LIST *f = tok->mod->funcs;
    CK_BBOOL priv = CK_FALSE, always = CK_FALSE;
    CK_ULONG key_type = (CK_ULONG)-1, cert_type = (CK_ULONG)-1;
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    /* One call for what the object is, and the lengths of its id and
     * label: a second one reads those (most tokens: two calls, not five). */
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_PRIVATE, &priv, sizeof(priv)},
        {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
        {CKA_CERTIFICATE_TYPE, &cert_type, sizeof(cert_type)},
        {CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always)},
        {CKA_ID, NULL, LEN_UNSEEN},
        {CKA_LABEL, NULL, LEN_UNSEEN},
    };
    p11_obj *obj = NULL;
    bool all = true;
    CK_RV rv;

    *out = NULL;
    rv = P11_C(f, C_GetAttributeValue, s->h, h, a, 7);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID
        && rv != CKR_ATTRIBUTE_SENSITIVE)
        return p11_error_set(rv, "C_GetAttributeValue", tok, NULL, NULL);
    if (a[5].ulValueLen == LEN_UNSEEN || a[6].ulValueLen == LEN_UNSEEN) {
        /* A token that stopped early: one question at a time. */
        CK_ATTRIBUTE t = {CKA_KEY_TYPE, &key_type, sizeof(key_type)};
        CK_ATTRIBUTE c = {CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always)};

        all = false;
        key_type = cert_type = (CK_ULONG)-1;
        always = CK_FALSE;
        a[0].ulValueLen = sizeof(cls);
        a[1].ulValueLen = sizeof(priv);
        rv = P11_C(f, C_GetAttributeValue, s->h, h, a, 2);
        if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
            return p11_error_set(rv, "C_GetAttributeValue", tok, NULL, NULL);
        if (cls == CKO_CERTIFICATE)
            t = (CK_ATTRIBUTE){CKA_CERTIFICATE_TYPE, &cert_type,
                               sizeof(cert_type)};
        if (cls == CKO_CERTIFICATE || cls == CKO_PUBLIC_KEY
            || cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY)
            (void)P11_C(f, C_GetAttributeValue, s->h, h, &t, 1);
        if (cls == CKO_PRIVATE_KEY)
            (void)P11_C(f, C_GetAttributeValue, s->h, h, &c, 1);
    }
    if (all) {
        /* What an object lacks reads CK_UNAVAILABLE_INFORMATION. */
        if (a[1].ulValueLen != sizeof(priv))
            priv = CK_FALSE;
        if (a[2].ulValueLen != sizeof(key_type))
            key_type = (CK_ULONG)-1;
        if (a[3].ulValueLen != sizeof(cert_type))
            cert_type = (CK_ULONG)-1;
        if (a[4].ulValueLen != sizeof(always))
            always = CK_FALSE;
    }
    obj = calloc(1, sizeof(*obj));
    if (!obj)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    atomic_init(&obj->refs, 1);
    pthread_mutex_init(&obj->lock, NULL);
    obj->tok = tok;
    obj->cls = cls;
    obj->subtype = cls == CKO_CERTIFICATE ? cert_type : key_type;
    obj->is_private = priv == CK_TRUE;
    obj->always_auth = cls == CKO_PRIVATE_KEY && always == CK_TRUE;
    obj->h = h;
    obj->gen = s->gen;
    rv = read_id_label(s, h, obj, all ? &a[5] : NULL);
    if (rv != CKR_OK) {
        obj_free(obj);
        return rv;
    }
    *out = obj;
    return CKR_OK;
}

p11_obj *p11_obj_ref(p11_obj *obj)
{
    if (obj)
        atomic_fetch_add(&obj->refs, 1);
    return obj;
}

void p11_obj_unref(p11_obj *obj)
{
    if (obj && atomic_fetch_sub(&obj->refs, 1) == 1)
        obj_free(obj);
}

void p11_obj_invalidate(p11_obj *obj)
{
    pthread_mutex_lock(&obj->lock);
    obj->gen = 0;
    pthread_mutex_unlock(&obj->lock);
}

/* Template that identifies @obj: class, id, label and key type. */
static CK_ULONG obj_template(p11_obj *obj, CK_ATTRIBUTE *t)
{
    CK_ULONG n = 0;

    t[n++] = (CK_ATTRIBUTE){CKA_CLASS, &obj->cls, sizeof(obj->cls)};
    if (obj->id_len)
        t[n++] = (CK_ATTRIBUTE){CKA_ID, obj->id, obj->id_len};
    if (obj->label[0])
        t[n++] = (CK_ATTRIBUTE){CKA_LABEL, obj->label, strlen(obj->label)};
    if (obj->subtype != (CK_ULONG)-1)
        t[n++] = (CK_ATTRIBUTE){
            obj->cls == CKO_CERTIFICATE ? CKA_CERTIFICATE_TYPE : CKA_KEY_TYPE,
            &obj->subtype, sizeof(obj->subtype)};
    return n;
}

/* Whether the session is logged in as the user (state from the token). */
static bool session_logged_in(p11_session *s)
{
    CK_SESSION_INFO si;

    if (P11_C(s->tok->mod->funcs, C_GetSessionInfo, s->h, &si) != CKR_OK)
        return false;
    return si.state == CKS_RO_USER_FUNCTIONS
           || si.state == CKS_RW_USER_FUNCTIONS;
}

CK_RV p11_obj_handle(p11_obj *obj, p11_session *s, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_HANDLE *found = NULL;
    CK_ATTRIBUTE t[4];
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    bool in_before = true;

    pthread_mutex_lock(&obj->lock);
    if (obj->gen == s->gen) {
        *h = obj->h;
        pthread_mutex_unlock(&obj->lock);
        return CKR_OK;
    }
    /*
     * The token was reset, or the handle went stale: find it again.  The
     * login state is the token's, shared by every session and thread: it
     * is read before and after the search, so that a login by another
     * thread in between does not turn a hidden object into a missing one.
     */
    if (obj->is_private)
        in_before = session_logged_in(s);
    rv = p11_find_handles(s, t, obj_template(obj, t), &found, &n);
    if (rv == CKR_OK && n == 0 && obj->is_private
        && (!in_before || !session_logged_in(s)))
        /* Logged out elsewhere: private objects are hidden, not gone. */
        rv = p11_error_set(CKR_USER_NOT_LOGGED_IN, "C_FindObjects", obj->tok,
                           p11_obj_describe(obj), "the token logged us out");
    else if (rv == CKR_OK && n == 0)
        rv = p11_error_set(P11_RV_NO_OBJECT, NULL, obj->tok,
                           p11_obj_describe(obj),
                           "the object is no longer on the token");
    if (rv == CKR_OK) {
        obj->h = found[0];
        obj->gen = s->gen;
        *h = obj->h;
        LOG_DBG(P11, "found %s again", p11_obj_describe(obj));
    }
    pthread_mutex_unlock(&obj->lock);
    free(found);
    return rv;
}

struct find_arg {
    CK_ATTRIBUTE *tmpl;
    CK_ULONG n;
    p11_obj **objs;
    size_t count;
};

static CK_RV find_fn(p11_session *s, CK_OBJECT_HANDLE unused, void *arg)
{
    struct find_arg *fa = arg;
    CK_OBJECT_HANDLE *hs = NULL;
    CK_ULONG n = 0;
    p11_obj **grown;
    CK_RV rv;

    rv = p11_find_handles(s, fa->tmpl, fa->n, &hs, &n);
    if (rv != CKR_OK)
        return rv;
    grown = realloc(fa->objs, (fa->count + n + 1) * sizeof(*grown));
    if (!grown) {
        free(hs);
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    }
    fa->objs = grown;
    for (CK_ULONG i = 0; i < n; i++) {
        p11_obj *o;
        rv = p11_obj_from_handle(s->tok, s, hs[i], &o);
        if (rv == CKR_OBJECT_HANDLE_INVALID)
            continue; /* deleted meanwhile */
        if (rv != CKR_OK)
            break;
        fa->objs[fa->count++] = o;
    }
    free(hs);
    return rv;
}

static void free_objs(p11_obj **objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p11_obj_unref(objs[i]);
    free(objs);
}

/* Whether @type is among the @n attributes of @match. */
static bool has_type(const CK_ATTRIBUTE *match, size_t n,
                     CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < n; i++)
        if (match[i].type == type)
            return true;
    return false;
}

/*
 * Build the search template: the URI's object attributes (but those the
 * caller's @f->match replaces), the caller's, and @cls.
 */
static CK_ULONG find_template(const p11_uri *uri, const p11_find *f,
                              CK_OBJECT_CLASS *cls, CK_ATTRIBUTE *t,
                              CK_ULONG max)
{
    CK_ATTRIBUTE *ua = NULL;
    CK_ULONG un = 0, n = 0;

    if (uri)
        ua = p11_kit_uri_get_attributes(p11_uri_get0_kit(uri), &un);
    for (CK_ULONG i = 0; i < un && n < max - 1; i++) {
        if (ua[i].type == CKA_CLASS && *cls != (CK_OBJECT_CLASS)-1)
            continue;
        if (has_type(f->match, f->n_match, ua[i].type))
            continue;
        t[n++] = ua[i];
    }
    for (size_t i = 0; i < f->n_match && n < max - 1; i++)
        t[n++] = f->match[i];
    if (*cls != (CK_OBJECT_CLASS)-1)
        t[n++] = (CK_ATTRIBUTE){CKA_CLASS, cls, sizeof(*cls)};
    return n;
}

/*
 * Whether a login on @tok would use an automatic PIN: the search's
 * pin-value or pin-source, else the context's PIN source (see get_pin in
 * login.c); a prompt names the token it asks for, and a PIN pad is its own.
 */
static bool pin_automatic(const p11_ctx *ctx, const p11_auth *auth)
{
    return (auth && (auth->pin_value || auth->pin_source))
           || ctx->pin_source != NULL;
}

/* One pass over the tokens of a search. */
struct pass {
    p11_token **toks;
    size_t ntok;
    unsigned *tflags; /* per token: P11_SESSION_* for p11_run, or SKIP */
    bool answered_away;
    bool transient; /* a token answered as if being rewritten */
    bool hard_err;  /* an error that waiting will not cure */
    CK_RV first_err;
    char err[1024];
    /* The search template of the class at hand: the URI's class, label
     * and id, the caller's attributes, the class. */
    CK_ATTRIBUTE tmpl[4 + P11_FIND_MAX_MATCH];
};

#define TOKEN_SKIP (1u << 31)

static void pass_free(struct pass *ps)
{
    free(ps->toks);
    free(ps->tflags);
    memset(ps, 0, sizeof(*ps));
}

/*
 * Who gets logged in.  A PIN that comes by itself is tried on one token
 * only: on several it would cost a try on each card it does not belong to
 * (a PIV card locks after three).
 */
static CK_RV pass_logins(p11_ctx *ctx, const p11_uri *uri, p11_find *f,
                         const p11_auth *auth, struct pass *ps)
{
    p11_token **need;
    size_t n = 0;
    CK_RV rv = CKR_OK;

    if (!(f->flags & P11_FIND_LOGIN))
        return CKR_OK;
    need = calloc(ps->ntok ? ps->ntok : 1, sizeof(*need));
    if (!need)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    for (size_t i = 0; i < ps->ntok; i++)
        if (p11_token_needs_login(ps->toks[i])
            && !p11_token_is_logged_in(ps->toks[i]))
            need[n++] = ps->toks[i];
    if (n > 1 && pin_automatic(ctx, auth)) {
        if (!(f->flags & P11_FIND_PUBLIC_IF_SHARED)) {
            rv = p11_token_list_ambiguous(
                need, n, uri,
                "a PIN from pin-value=, pin-source= or a PIN source option "
                "is used on one token only, and ");
            free(need);
            return rv;
        }
        LOG_DBG(
            P11,
            "not logging in: one PIN for %zu tokens; objects visible without a login only",
            n);
        f->pin_withheld = true;
        free(need);
        return CKR_OK;
    }
    free(need);
    for (size_t i = 0; i < ps->ntok; i++)
        if (p11_token_needs_login(ps->toks[i]))
            ps->tflags[i] |= P11_SESSION_LOGIN;
    return rv;
}

/* A failed login, as opposed to a token that failed. */
static bool rv_login_failed(CK_RV rv)
{
    return p11_rv_class(rv) == P11_CLASS_PIN;
}

/*
 * An error that a token being rewritten gives: SoftHSM2 answers C_Login
 * and C_GetTokenInfo with CKR_GENERAL_ERROR, or says its user PIN is not
 * initialised, while another process saves the token file (at every
 * C_Login).  Searches that expect an object look again after a pause.
 */
static bool rv_transient(const p11_token *tok, CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR
           || (rv == CKR_USER_PIN_NOT_INITIALIZED
               && (tok->info.flags & CKF_USER_PIN_INITIALIZED));
}

static void pass_error(struct pass *ps, CK_RV rv)
{
    if (ps->first_err != CKR_OK)
        return;
    ps->first_err = rv;
    snprintf(ps->err, sizeof(ps->err), "%s", p11_error_message());
}

/*
 * Search one token for one class.  A token that is not there is skipped; a
 * token whose login failed is searched without it (its public objects),
 * and not asked for a PIN again for the next class.
 */
static void pass_token(struct pass *ps, size_t i, const p11_auth *auth,
                       struct find_arg *fa)
{
    CK_RV rv;

    if (ps->tflags[i] & TOKEN_SKIP)
        return;
    rv = p11_run(ps->toks[i], ps->tflags[i], auth, NULL, find_fn, fa);
    if (rv != CKR_OK && (ps->tflags[i] & P11_SESSION_LOGIN)
        && rv_login_failed(rv)) {
        pass_error(ps, rv);
        ps->hard_err = true;
        ps->tflags[i] &= ~(unsigned)P11_SESSION_LOGIN;
        rv = p11_run(ps->toks[i], ps->tflags[i], auth, NULL, find_fn, fa);
    }
    if (rv == CKR_OK)
        return;
    ps->tflags[i] |= TOKEN_SKIP;
    if (p11_rv_token_away(rv)) {
        LOG_DBG(P11, "%s: %s: skipped", p11_token_describe(ps->toks[i]),
                p11_error_message());
        ps->answered_away = true;
        return;
    }
    if (rv_transient(ps->toks[i], rv))
        ps->answered_away = ps->transient = true;
    else
        ps->hard_err = true;
    pass_error(ps, rv);
}

static CK_RV pass_run(p11_ctx *ctx, const p11_uri *uri, p11_find *f,
                      const p11_auth *auth, struct pass *ps,
                      struct find_arg *fa)
{
    CK_OBJECT_CLASS any = (CK_OBJECT_CLASS)-1;
    const CK_OBJECT_CLASS *cls = f->n_classes ? f->classes : &any;
    size_t ncls = f->n_classes ? f->n_classes : 1;
    CK_RV rv;

    ps->tflags = calloc(ps->ntok, sizeof(*ps->tflags));
    if (!ps->tflags)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    for (size_t i = 0; i < ps->ntok; i++)
        ps->tflags[i] = P11_SESSION_NO_WAIT;
    rv = pass_logins(ctx, uri, f, auth, ps);
    if (rv != CKR_OK)
        return rv;
    for (size_t c = 0; c < ncls; c++) {
        CK_OBJECT_CLASS want = cls[c];

        fa->tmpl = ps->tmpl;
        fa->n = find_template(uri, f, &want, ps->tmpl,
                              sizeof(ps->tmpl) / sizeof(ps->tmpl[0]));
        for (size_t i = 0; i < ps->ntok; i++)
            pass_token(ps, i, auth, fa);
        fa->tmpl = NULL; /* @want is gone */
    }
    return CKR_OK;
}

CK_RV p11_obj_search(p11_ctx *ctx, const p11_uri *uri, p11_find *f,
                     p11_obj ***out, size_t *n)
{
    bool named = p11_uri_names_token(uri);
    struct p11_module *only = NULL;
    struct find_arg fa = {0};
    struct p11_wait w = {0};
    struct skipped sk;
    struct pass ps = {0};
    p11_auth uauth;
    const p11_auth *auth;
    CK_RV rv;

    return_val_if_fail(ctx && f && out && n, CKR_ARGUMENTS_BAD);
    return_val_if_fail(f->n_match <= P11_FIND_MAX_MATCH, CKR_ARGUMENTS_BAD);
    *out = NULL;
    *n = 0;
    f->pin_withheld = false;
    f->n_tokens = 0;
    p11_auth_from_uri(&uauth, uri);
    auth = f->auth ? f->auth : &uauth;
    rv = p11_find_prepare(ctx, uri, &only);
    if (rv != CKR_OK)
        return rv;
    for (;;) {
        rv = p11_find_look(ctx, uri, only, P11_TOKENS_USABLE, w.started,
                           &ps.toks, &ps.ntok, &sk);
        if (rv == CKR_OK && ps.ntok > 0)
            rv = pass_run(ctx, uri, f, auth, &ps, &fa);
        if (rv != CKR_OK)
            break;
        f->n_tokens = ps.ntok;
        /*
         * Nothing, where something was expected or a token was named, and a
         * token seems away: look again after a pause (see P11_FIND_EXPECT).
         * A token named and present but not initialised is not away.
         */
        if (fa.count > 0 || ps.hard_err || (named && sk.uninitialised))
            break;
        if (ps.ntok == 0
                ? !(named || (f->flags & P11_FIND_EXPECT))
                : !((f->flags & P11_FIND_EXPECT)
                    && (ps.answered_away || p11_tokens_seem_away(ctx))))
            break;
        if (!p11_wait_pause(&w, ctx->token_wait_ms))
            break;
        p11_wait_refresh(ctx, &w, only, ps.transient);
        pass_free(&ps);
    }
    if (rv == CKR_OK && ps.ntok == 0)
        rv = p11_find_no_token(ctx, uri, named, &sk, &w);
    /*
     * With several tokens, one that refuses us does not hide the objects of
     * the others; with none found, its error is the answer.
     */
    if (rv == CKR_OK && fa.count == 0 && ps.first_err != CKR_OK) {
        size_t len = strlen(ps.err);

        if (w.started)
            snprintf(ps.err + len, sizeof(ps.err) - len,
                     "; waited %.1f s for the token (token wait)",
                     (double)p11_wait_elapsed(&w, p11_now_ms()) / 1000.0);
        p11_error_restore(ps.first_err, ps.err);
        rv = ps.first_err;
    }
    pass_free(&ps);
    if (rv != CKR_OK) {
        free_objs(fa.objs, fa.count);
        return rv;
    }
    if (fa.count == 0 && w.started)
        LOG_DBG(P11, "nothing found after waiting %ld ms for a token",
                p11_wait_elapsed(&w, p11_now_ms()));
    *out = fa.objs;
    *n = fa.count;
    return CKR_OK;
}

CK_RV p11_obj_find(p11_ctx *ctx, const p11_uri *uri, CK_OBJECT_CLASS cls,
                   bool login, p11_obj ***out, size_t *n)
{
    p11_find f = {
        .classes = &cls,
        .n_classes = cls == (CK_OBJECT_CLASS)-1 ? 0 : 1,
        .flags = login ? P11_FIND_LOGIN : 0,
    };

    return p11_obj_search(ctx, uri, &f, out, n);
}

/* "pkcs11:...;object=a, pkcs11:...;object=b" into @buf (cut with "..."). */
static void list_objs(p11_obj **objs, size_t n, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char *u = p11_obj_uri(objs[i]);
        int r = snprintf(buf + o, len - o, "%s%s", i ? ", " : "",
                         u ? u : p11_obj_describe(objs[i]));
        free(u);
        if (r < 0 || (size_t)r >= len - o) {
            if (len > 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        o += (size_t)r;
    }
}

CK_RV p11_obj_find_one(p11_ctx *ctx, const p11_uri *uri, CK_OBJECT_CLASS cls,
                       bool login, p11_obj **out)
{
    p11_find f = {
        .classes = &cls,
        .n_classes = cls == (CK_OBJECT_CLASS)-1 ? 0 : 1,
        .flags = (login ? P11_FIND_LOGIN : 0) | P11_FIND_EXPECT,
    };
    p11_obj **objs = NULL;
    char names[1024];
    size_t n = 0;
    char *d;
    CK_RV rv;

    return_val_if_fail(out != NULL, CKR_ARGUMENTS_BAD);
    *out = NULL;
    rv = p11_obj_search(ctx, uri, &f, &objs, &n);
    if (rv != CKR_OK)
        return rv;
    if (n == 1) {
        *out = objs[0];
        free(objs);
        return CKR_OK;
    }
    d = uri ? p11_uri_format(uri) : NULL;
    if (n == 0) {
        rv = p11_error_set(
            P11_RV_NO_OBJECT, NULL, NULL, NULL, "no %s matches %s%s",
            cls == CKO_PRIVATE_KEY   ? "private key"
            : cls == CKO_PUBLIC_KEY  ? "public key"
            : cls == CKO_CERTIFICATE ? "certificate"
                                     : "object",
            d ? d : "pkcs11:", login ? "" : " (without logging in)");
    } else {
        list_objs(objs, n, names, sizeof(names));
        rv = p11_error_set(
            P11_RV_AMBIGUOUS, NULL, NULL, NULL,
            "%zu objects match %s: %s; add object= or id= to the URI", n,
            d ? d : "pkcs11:", names);
    }
    free(d);
    free_objs(objs, n);
    return rv;
}

CK_RV p11_obj_find_peer(p11_obj *obj, CK_OBJECT_CLASS cls, p11_obj **out)
{
    struct find_arg fa = {0};
    CK_ATTRIBUTE t[2];
    CK_RV rv;

    return_val_if_fail(obj && out, CKR_ARGUMENTS_BAD);
    *out = NULL;
    t[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    if (obj->id_len)
        t[1] = (CK_ATTRIBUTE){CKA_ID, obj->id, obj->id_len};
    else
        t[1] = (CK_ATTRIBUTE){CKA_LABEL, obj->label, strlen(obj->label)};
    fa.tmpl = t;
    fa.n = 2;
    rv = p11_run(obj->tok, cls == CKO_PRIVATE_KEY ? P11_SESSION_LOGIN : 0, NULL,
                 NULL, find_fn, &fa);
    if (rv == CKR_OK && fa.count == 0)
        rv = p11_error_set(P11_RV_NO_OBJECT, NULL, obj->tok,
                           p11_obj_describe(obj), "no %s with the same id",
                           cls == CKO_PUBLIC_KEY    ? "public key"
                           : cls == CKO_CERTIFICATE ? "certificate"
                                                    : "object");
    if (rv == CKR_OK) {
        *out = fa.objs[0];
        fa.objs[0] = NULL;
        for (size_t i = 1; i < fa.count; i++)
            p11_obj_unref(fa.objs[i]);
        free(fa.objs);
        return CKR_OK;
    }
    free_objs(fa.objs, fa.count);
    return rv;
}

p11_token *p11_obj_token(const p11_obj *obj)
{
    return obj->tok;
}

CK_OBJECT_CLASS p11_obj_class(const p11_obj *obj)
{
    return obj->cls;
}

CK_KEY_TYPE p11_obj_key_type(const p11_obj *obj)
{
    return obj->subtype;
}

CK_CERTIFICATE_TYPE p11_obj_cert_type(const p11_obj *obj)
{
    return obj->subtype;
}

const unsigned char *p11_obj_id(const p11_obj *obj, size_t *len)
{
    *len = obj->id_len;
    return obj->id;
}

const char *p11_obj_label(const p11_obj *obj)
{
    return obj->label;
}

bool p11_obj_always_authenticate(const p11_obj *obj)
{
    return obj->always_auth;
}

const char *p11_obj_describe(const p11_obj *obj)
{
    static _Thread_local char buf[256];
    char hex[40];
    const char *kind;

    switch (obj->cls) {
    case CKO_PRIVATE_KEY:
        kind = "private key";
        break;
    case CKO_PUBLIC_KEY:
        kind = "public key";
        break;
    case CKO_CERTIFICATE:
        kind = "certificate";
        break;
    default:
        kind = "object";
        break;
    }
    p11_hex(obj->id, obj->id_len, hex, sizeof(hex));
    if (obj->label[0])
        snprintf(buf, sizeof(buf), "%s \"%s\" (id %s)", kind, obj->label,
                 obj->id_len ? hex : "none");
    else
        snprintf(buf, sizeof(buf), "%s with id %s", kind,
                 obj->id_len ? hex : "none");
    return buf;
}

char *p11_obj_uri(const p11_obj *obj)
{
    return p11_uri_for_object(obj->tok, obj->cls, obj->id, obj->id_len,
                              obj->label);
}

struct attr_arg {
    CK_ATTRIBUTE_TYPE type;
    unsigned char *val;
    size_t len;
};

static CK_RV get_attr_fn(p11_session *s, CK_OBJECT_HANDLE h, void *arg)
{
    CK_FUNCTION_LIST *f = s->tok->mod->funcs;
    struct attr_arg *aa = arg;
    /* Most values (EC parameters and points, an RSA-2048 modulus, flags)
     * fit here: one call; a longer one is sized first. */
    unsigned char small[320];
    CK_ATTRIBUTE a = {aa->type, small, sizeof(small)};
    CK_RV rv;

    free(aa->val);
    aa->val = NULL;
    rv = P11_C(f, C_GetAttributeValue, s->h, h, &a, 1);
    if (rv == CKR_OK && a.ulValueLen <= sizeof(small)) {
        aa->val = malloc(a.ulValueLen ? a.ulValueLen : 1);
        if (!aa->val)
            return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
        memcpy(aa->val, small, a.ulValueLen);
        aa->len = a.ulValueLen;
        OPENSSL_cleanse(small, sizeof(small));
        return CKR_OK;
    }
    a = (CK_ATTRIBUTE){aa->type, NULL, 0};
    if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_OK)
        rv = P11_C(f, C_GetAttributeValue, s->h, h, &a, 1);
    if (rv == CKR_OK && a.ulValueLen == (CK_ULONG)-1)
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
    if (rv == CKR_OK) {
        a.pValue = aa->val = malloc(a.ulValueLen ? a.ulValueLen : 1);
        if (!a.pValue)
            return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
        rv = P11_C(f, C_GetAttributeValue, s->h, h, &a, 1);
    }
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
        return rv;
    if (rv != CKR_OK)
        return p11_error_set(rv, "C_GetAttributeValue", s->tok, NULL,
                             "attribute 0x%lx", (unsigned long)aa->type);
    aa->len = a.ulValueLen;
    return CKR_OK;
}

CK_RV p11_obj_get_attr(p11_obj *obj, CK_ATTRIBUTE_TYPE type,
                       unsigned char **out, size_t *len)
{
    struct attr_arg aa = {type, NULL, 0};
    CK_RV rv;

    return_val_if_fail(obj && out && len, CKR_ARGUMENTS_BAD);
    *out = NULL;
    *len = 0;
    rv = p11_run(obj->tok, obj->is_private ? P11_SESSION_LOGIN : 0, NULL, obj,
                 get_attr_fn, &aa);
    if (rv != CKR_OK) {
        free(aa.val);
        return rv;
    }
    *out = aa.val;
    *len = aa.len;
    return CKR_OK;
}

bool p11_obj_get_bool(p11_obj *obj, CK_ATTRIBUTE_TYPE type, bool dflt)
{
    unsigned char *v = NULL;
    size_t n = 0;
    bool r = dflt;

    if (p11_obj_get_attr(obj, type, &v, &n) == CKR_OK && n == sizeof(CK_BBOOL))
        r = v[0] == CK_TRUE;
    free(v);
    return r;
}

static CK_RV destroy_fn(p11_session *s, CK_OBJECT_HANDLE h, void *arg)
{
    CK_RV rv = P11_C(s->tok->mod->funcs, C_DestroyObject, s->h, h);

    if (rv != CKR_OK)
        return p11_error_set(rv, "C_DestroyObject", s->tok,
                             p11_obj_describe(arg), NULL);
    return CKR_OK;
}

CK_RV p11_obj_destroy(p11_obj *obj, const p11_auth *auth)
{
    return_val_if_fail(obj != NULL, CKR_ARGUMENTS_BAD);
    return p11_run(obj->tok, P11_SESSION_RW | P11_SESSION_LOGIN, auth, obj,
                   destroy_fn, obj);
}

struct label_arg {
    p11_obj *obj;
    const char *label;
};

static CK_RV set_label_fn(p11_session *s, CK_OBJECT_HANDLE h, void *arg)
{
    struct label_arg *la = arg;
    CK_ATTRIBUTE a = {CKA_LABEL, (void *)la->label, strlen(la->label)};
    CK_RV rv = P11_C(s->tok->mod->funcs, C_SetAttributeValue, s->h, h, &a, 1);

    if (rv != CKR_OK)
        return p11_error_set(rv, "C_SetAttributeValue", s->tok,
                             p11_obj_describe(la->obj), "setting CKA_LABEL");
    return CKR_OK;
}

CK_RV p11_obj_set_label(p11_obj *obj, const p11_auth *auth, const char *label)
{
    struct label_arg la = {obj, label};
    char *copy, *old;
    CK_RV rv;

    return_val_if_fail(obj && label, CKR_ARGUMENTS_BAD);
    copy = strdup(label);
    if (!copy)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    rv = p11_run(obj->tok, P11_SESSION_RW | P11_SESSION_LOGIN, auth, obj,
                 set_label_fn, &la);
    if (rv != CKR_OK) {
        free(copy);
        return rv;
    }
    /* The cached label finds the object again after a token reset. */
    pthread_mutex_lock(&obj->lock);
    old = obj->label;
    obj->label = copy;
    pthread_mutex_unlock(&obj->lock);
    free(old);
    return CKR_OK;
}

bool p11_obj_same(p11_obj *a, p11_obj *b)
{
    CK_OBJECT_HANDLE ha, hb;

    if (a == b)
        return true;
    if (!a || !b || a->tok != b->tok || a->cls != b->cls
        || a->subtype != b->subtype || a->id_len != b->id_len
        || memcmp(a->id, b->id, a->id_len) != 0
        || strcmp(a->label, b->label) != 0)
        return false;
    pthread_mutex_lock(&a->lock);
    ha = a->gen ? a->h : CK_INVALID_HANDLE;
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_lock(&b->lock);
    hb = b->gen ? b->h : CK_INVALID_HANDLE;
    pthread_mutex_unlock(&b->lock);
    /* A key deleted and made again under the same name has a new handle. */
    return ha != CK_INVALID_HANDLE && ha == hb;
}
