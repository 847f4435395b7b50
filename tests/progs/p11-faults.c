/* SPDX-License-Identifier: Apache-2.0 */
/* Fault driver: signs through faulty-pkcs11 under one fault rule and checks
 * what p11_sign recovers from, what it reports, and how often it calls the
 * token. */
#include "config.h"

#include "drive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "[-m faulty-module] [-p pinfile] [-w wrong-pinfile] [-t token]\n"
    "    setup | MODE RULE\n"
    "MODE: recover fatal permanent latency pin-refused pin-locked\n"
    "    pin-flags always-auth logout-elsewhere open-fails\n"
    "RULE: FUNC:WHEN:EFFECT for FAULTY_PKCS11_FAULTS (recover and fatal\n"
    "    expect it to hit the third signature)";

struct run {
    const struct drive_opts *o;
    char func[48];      /* FUNC of the rule */
    const char *effect; /* EFFECT of the rule, "" without a rule */
    p11_ctx *ctx;
    struct drive_key key;
};

/* Calls made by one operation, from the faulty module's log. */
struct tally {
    long func;  /* the rule's function */
    long login; /* C_Login */
    long open;  /* C_OpenSession */
    long find;  /* C_FindObjectsInit */
};

static void tally_take(const struct run *r, struct tally *t)
{
    t->func = drive_log_count(r->func);
    t->login = drive_log_count("C_Login");
    t->open = drive_log_count("C_OpenSession");
    t->find = drive_log_count("C_FindObjectsInit");
}

/* Signature number @n with @auth (NULL: the right PIN); @d gets its calls. */
static CK_RV op(struct run *r, int n, const p11_auth *auth, struct tally *d)
{
    struct tally a, b;
    double start, ms;
    CK_RV rv;

    tally_take(r, &a);
    p11_error_clear();
    start = drive_now();
    rv = drive_sign_verify(&r->key, auth);
    ms = (drive_now() - start) * 1000;
    tally_take(r, &b);
    d->func = b.func - a.func;
    d->login = b.login - a.login;
    d->open = b.open - a.open;
    d->find = b.find - a.find;
    printf("signature %d: %s in %.1f ms;", n, p11_rv_name(rv), ms);
    printf(" %s %ld, C_Login %ld, C_OpenSession %ld, C_FindObjectsInit %ld\n",
           r->func, d->func, d->login, d->open, d->find);
    if (rv != CKR_OK)
        printf("  error: %s\n", p11_error_message());
    return rv;
}

/* Signatures @from..@to must all work. */
static int ops_ok(struct run *r, int from, int to)
{
    struct tally t;

    for (int i = from; i <= to; i++)
        if (op(r, i, NULL, &t) != CKR_OK)
            return drive_fail("signature %d: %s", i, p11_error_message());
    return DRIVE_PASS;
}

/* The error of this thread: code @rv named @want, message holding @words. */
static int expect_error(CK_RV rv, const char *want, const char *const *words)
{
    const char *msg = p11_error_message();

    if (rv == CKR_OK)
        return drive_fail("the operation succeeded, wanted %s", want);
    if (strcmp(p11_rv_name(rv), want) != 0)
        return drive_fail("got %s, wanted %s: %s", p11_rv_name(rv), want, msg);
    for (; *words; words++)
        if (!strcasestr(msg, *words))
            return drive_fail("the message does not say \"%s\": %s", *words,
                              msg);
    return DRIVE_PASS;
}

/* ---- recover: the third signature meets the fault and still works ---- */

/* What a recovery must show in the log; -1: not checked. */
struct recovery {
    const char *effect;
    long login; /* exactly this many C_Login */
    long open;  /* at least this many C_OpenSession */
    long find;  /* at least this many C_FindObjectsInit */
};

static const struct recovery recoveries[] = {
    {"CKR_DEVICE_REMOVED", 1, 1, 1},       /* all rebuilt */
    {"CKR_USER_NOT_LOGGED_IN", 1, -1, -1}, /* logged in again */
    {"CKR_SESSION_HANDLE_INVALID", -1, 1, -1},
    {"CKR_SESSION_CLOSED", -1, 1, -1},
    {"CKR_OBJECT_HANDLE_INVALID", 0, -1, 1}, /* key found again */
    {"CKR_KEY_HANDLE_INVALID", 0, -1, 1},
};

static int check_recovery(const struct run *r, const struct tally *t)
{
    const struct recovery *rec = NULL;

    for (size_t i = 0; i < sizeof(recoveries) / sizeof(*recoveries); i++)
        if (strcmp(recoveries[i].effect, r->effect) == 0)
            rec = &recoveries[i];
    if (t->func != 2)
        return drive_fail("%ld %s calls, wanted 2 (the fault, one retry)",
                          t->func, r->func);
    if (!rec)
        return DRIVE_PASS;
    if ((rec->login >= 0 && t->login != rec->login)
        || (rec->open >= 0 && t->open < rec->open)
        || (rec->find >= 0 && t->find < rec->find))
        return drive_fail(
            "recovery from %s: C_Login %ld, C_OpenSession %ld, C_FindObjectsInit %ld",
            r->effect, t->login, t->open, t->find);
    return DRIVE_PASS;
}

static int mode_recover(struct run *r)
{
    struct tally t;

    if (ops_ok(r, 1, 2) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (op(r, 3, NULL, &t) != CKR_OK)
        return drive_fail("signature 3 did not recover from %s: %s", r->effect,
                          p11_error_message());
    if (check_recovery(r, &t) != DRIVE_PASS)
        return DRIVE_FAIL;
    return ops_ok(r, 4, 5);
}

/* ---- fatal: the third signature fails, the fourth works --------------- */

static int mode_fatal(struct run *r)
{
    const char *words[] = {r->func, p11_token_label(p11_obj_token(r->key.obj)),
                           r->effect, NULL};
    struct tally t;

    if (ops_ok(r, 1, 2) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (expect_error(op(r, 3, NULL, &t), r->effect, words) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (t.func != 1)
        return drive_fail("%ld %s calls, wanted 1 (no retry)", t.func, r->func);
    /* The session that failed must not come back from the pool. */
    if (op(r, 4, NULL, &t) != CKR_OK)
        return drive_fail("signature 4 after %s: %s", r->effect,
                          p11_error_message());
    if (t.open < 1)
        return drive_fail("signature 4 reused the session that failed");
    return DRIVE_PASS;
}

/* ---- permanent: every signature fails, each after at most one retry -- */

static int mode_permanent(struct run *r)
{
    const char *words[] = {r->func, r->effect, NULL};
    struct tally t;

    for (int i = 1; i <= 2; i++) {
        if (expect_error(op(r, i, NULL, &t), r->effect, words) != DRIVE_PASS)
            return DRIVE_FAIL;
        if (t.func < 1 || t.func > 2)
            return drive_fail("signature %d: %ld %s calls, wanted 1 or 2", i,
                              t.func, r->func);
    }
    return DRIVE_PASS;
}

/* ---- latency: slow calls still work ----------------------------------- */

static int mode_latency(struct run *r)
{
    unsigned long ms = 0;
    double t0, secs;
    struct tally t;

    if (sscanf(r->effect, "sleep=%lums", &ms) != 1)
        return drive_fail("latency needs a sleep=NNms rule");
    for (int i = 1; i <= 5; i++) {
        t0 = drive_now();
        if (op(r, i, NULL, &t) != CKR_OK)
            return drive_fail("signature %d: %s", i, p11_error_message());
        secs = drive_now() - t0;
        if (secs * 1000 < (double)ms)
            return drive_fail(
                "signature %d took %.1f ms: the %lu ms delay did not apply", i,
                secs * 1000, ms);
    }
    return DRIVE_PASS;
}

/* ---- pin-refused / pin-locked: after a logout the PIN is refused ----- */

/* Sign once (logged in by the search), then log out: the next signature
 * has to log in again. */
static int sign_then_logout(struct run *r)
{
    if (ops_ok(r, 1, 1) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (p11_token_logout(p11_obj_token(r->key.obj)) != CKR_OK)
        return drive_fail("p11_token_logout: %s", p11_error_message());
    return DRIVE_PASS;
}

static int mode_pin_refused(struct run *r)
{
    const char *first[] = {"C_Login", "refused", NULL};
    const char *again[] = {"C_Login", "refused before", NULL};
    p11_auth wrong = {NULL, r->o->wrong_pin};
    const p11_auth *auth = r->o->wrong_pin ? &wrong : NULL;
    const char *code = *r->effect ? r->effect : "CKR_PIN_INCORRECT";
    struct tally t2, t3, t4;

    if (sign_then_logout(r) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (expect_error(op(r, 2, auth, &t2), code, first) != DRIVE_PASS
        || expect_error(op(r, 3, auth, &t3), "P11CA_PIN_REFUSED", again)
               != DRIVE_PASS)
        return DRIVE_FAIL;
    if (t2.login + t3.login != 1)
        return drive_fail("%ld C_Login calls for two signatures, wanted 1",
                          t2.login + t3.login);
    if (!r->o->wrong_pin)
        return DRIVE_PASS;
    /* Only the refused PIN is barred: the right one still logs in. */
    if (op(r, 4, NULL, &t4) != CKR_OK || t4.login != 1)
        return drive_fail("the right PIN after a wrong one: %s, %ld C_Login",
                          p11_error_message(), t4.login);
    return DRIVE_PASS;
}

static int mode_pin_locked(struct run *r)
{
    const char *words[] = {"C_Login", "refused", "locked", NULL};
    struct tally t;

    if (sign_then_logout(r) != DRIVE_PASS)
        return DRIVE_FAIL;
    return expect_error(op(r, 2, NULL, &t), r->effect, words);
}

/* ---- pin-flags: the token at its last try, then locked --------------- */

/*
 * The key was found (and the token logged in) while the token reported no
 * PIN flag; after a logout it reports CKF_USER_PIN_FINAL_TRY, then
 * CKF_USER_PIN_LOCKED (faulty-pkcs11 reads FAULTY_PKCS11_TOKEN_FLAGS at
 * every C_GetTokenInfo): the PIN file is not sent, no C_Login at all, and
 * the message says why.  Without the flags it logs in again.
 */
static int mode_pin_flags(struct run *r)
{
    const char *final[] = {"not sending", "ONE try left", NULL};
    const char *locked[] = {"not logging in", "LOCKED", NULL};
    struct tally t2, t3, t4;

    if (sign_then_logout(r) != DRIVE_PASS)
        return DRIVE_FAIL;
    setenv("FAULTY_PKCS11_TOKEN_FLAGS", "CKF_USER_PIN_FINAL_TRY", 1);
    if (expect_error(op(r, 2, NULL, &t2), "P11CA_PIN_REFUSED", final)
        != DRIVE_PASS)
        return DRIVE_FAIL;
    setenv("FAULTY_PKCS11_TOKEN_FLAGS",
           "CKF_USER_PIN_LOCKED|CKF_USER_PIN_COUNT_LOW", 1);
    if (expect_error(op(r, 3, NULL, &t3), "CKR_PIN_LOCKED", locked)
        != DRIVE_PASS)
        return DRIVE_FAIL;
    unsetenv("FAULTY_PKCS11_TOKEN_FLAGS");
    if (t2.login + t3.login != 0)
        return drive_fail(
            "%ld C_Login calls at the last try and locked, wanted none",
            t2.login + t3.login);
    if (op(r, 4, NULL, &t4) != CKR_OK || t4.login != 1)
        return drive_fail("without the flags: %s, %ld C_Login",
                          p11_error_message(), t4.login);
    return DRIVE_PASS;
}

/* ---- always-auth: a context-specific login for every signature ------- */

struct prompt_count {
    const char *pin_file;
    int calls;
    bool ctx_specific;
};

/* A prompt that answers with the PIN file and counts its questions. */
static int count_prompt(const char *what, bool ctx_specific, char *pin,
                        size_t max, void *arg)
{
    struct prompt_count *pc = arg;

    (void)what;
    pc->calls++;
    pc->ctx_specific = ctx_specific;
    return p11_pin_read_file(pc->pin_file, pin, max);
}

/*
 * The DRIVE_AA_LABEL key (CKA_ALWAYS_AUTHENTICATE, made by the script) on
 * a context that caches PINs: each signature logs in for itself with the
 * key's PIN file; without any PIN source the cached login PIN is not
 * replayed (NO_PIN, no C_Login); a prompt is asked for each signature.
 */
static int mode_always_auth(struct run *r)
{
    const char *words[] = {"CKA_ALWAYS_AUTHENTICATE", "not replayed",
                           "drive-aa", NULL};
    p11_config cfg = {.module_path = r->o->module, .cache_pin = true};
    struct prompt_count pc = {.pin_file = r->o->pin_file};
    p11_auth none = {0}, asked = {0};
    struct tally t1, t2, t3;

    p11_ctx_free(r->ctx);
    r->ctx = p11_ctx_new(&cfg);
    if (!r->ctx
        || drive_key_open(r->ctx, r->o, DRIVE_AA_LABEL, &r->key) != CKR_OK)
        return drive_fail("finding the key: %s", p11_error_message());
    if (!p11_obj_always_authenticate(r->key.obj))
        return drive_fail("the key is not CKA_ALWAYS_AUTHENTICATE");
    if (op(r, 1, NULL, &t1) != CKR_OK || t1.login != 1)
        return drive_fail("signature 1 with the PIN file: %s, %ld C_Login",
                          p11_error_message(), t1.login);
    if (expect_error(op(r, 2, &none, &t2), "P11CA_NO_PIN", words) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (t2.login != 0)
        return drive_fail(
            "%ld C_Login without a PIN source: the cached PIN was replayed",
            t2.login);
    asked.prompt = count_prompt;
    asked.prompt_arg = &pc;
    /*
     * The session of the failed login was closed, and with it the login
     * (the last session): signature 3 may log in as the user first.
     */
    for (int i = 3; i <= 4; i++)
        if (op(r, i, &asked, &t3) != CKR_OK || t3.login < 1
            || t3.login > (i == 3 ? 2 : 1))
            return drive_fail("signature %d with a prompt: %s, %ld C_Login", i,
                              p11_rv_name(p11_error_rv()), t3.login);
    if (pc.calls != 2 || !pc.ctx_specific)
        return drive_fail(
            "the prompt was asked %d times (context-specific: %d), wanted 2",
            pc.calls, pc.ctx_specific);
    return DRIVE_PASS;
}

/* ---- logout-elsewhere: another context of this process logs out ----- */

/*
 * Login state belongs to the process, so a second context that logs out
 * (like another library in the application, or a card reset) logs the
 * first one out too.  Its next signatures must log in again and find the
 * key again, not fail forever (PITFALLS.md).
 */
static int mode_logout_elsewhere(struct run *r)
{
    struct drive_key other = {0};
    p11_ctx *ctx2 = drive_ctx_new(r->o);
    int ret = DRIVE_FAIL;
    struct tally t;

    if (!ctx2 || ops_ok(r, 1, 1) != DRIVE_PASS)
        goto out;
    if (drive_key_open(ctx2, r->o, DRIVE_EC_LABEL, &other) != CKR_OK
        || p11_token_logout(p11_obj_token(other.obj)) != CKR_OK) {
        drive_fail("second context: %s", p11_error_message());
        goto out;
    }
    printf("a second context logged the process out\n");
    ret = DRIVE_PASS;
    for (int i = 2; i <= 3; i++)
        if (op(r, i, NULL, &t) != CKR_OK)
            ret = drive_fail("signature %d after a logout elsewhere: %s", i,
                             p11_error_message());
out:
    drive_key_close(&other);
    p11_ctx_free(ctx2);
    return ret;
}

/* ---- open-fails: no session at all ----------------------------------- */

static int mode_open_fails(struct run *r)
{
    const char *words[] = {"C_OpenSession", r->o->token, r->effect, NULL};
    long before = drive_log_count("C_OpenSession"), calls;
    CK_RV rv;

    p11_error_clear();
    rv = drive_key_open(r->ctx, r->o, DRIVE_EC_LABEL, &r->key);
    calls = drive_log_count("C_OpenSession") - before;
    printf("finding the key: %s, C_OpenSession %ld\n  error: %s\n",
           p11_rv_name(rv), calls, p11_error_message());
    if (expect_error(rv, r->effect, words) != DRIVE_PASS)
        return DRIVE_FAIL;
    if (calls < 1 || calls > 2)
        return drive_fail("%ld C_OpenSession calls, wanted 1 or 2", calls);
    return DRIVE_PASS;
}

static const struct mode {
    const char *name;
    int (*fn)(struct run *r);
    bool needs_key; /* find the key before the scenario */
} modes[] = {
    {"recover", mode_recover, true},
    {"fatal", mode_fatal, true},
    {"permanent", mode_permanent, true},
    {"latency", mode_latency, true},
    {"pin-refused", mode_pin_refused, true},
    {"pin-locked", mode_pin_locked, true},
    {"pin-flags", mode_pin_flags, true},
    {"always-auth", mode_always_auth, false},
    {"logout-elsewhere", mode_logout_elsewhere, true},
    {"open-fails", mode_open_fails, false},
};

/* FUNC and EFFECT of "FUNC:WHEN:EFFECT" ("" for an empty rule). */
static int parse_rule(struct run *r, const char *rule)
{
    const char *colon = strchr(rule, ':');
    const char *last = strrchr(rule, ':');

    r->effect = "";
    if (!*rule)
        return 0;
    if (!colon || colon == last || (size_t)(colon - rule) >= sizeof(r->func))
        return -1;
    memcpy(r->func, rule, (size_t)(colon - rule));
    r->func[colon - rule] = '\0';
    r->effect = last + 1;
    return 0;
}

static int run_mode(const struct drive_opts *o, const struct mode *m,
                    const char *rule)
{
    struct run r = {.o = o, .func = "C_Sign"};
    int ret = DRIVE_FAIL;

    if (parse_rule(&r, rule) != 0) {
        fprintf(stderr, "bad rule \"%s\"\n", rule);
        return DRIVE_USAGE;
    }
    /* faulty-pkcs11 reads its rules at C_Initialize, i.e. at first use. */
    setenv("FAULTY_PKCS11_FAULTS", rule, 1);
    printf("%s with FAULTY_PKCS11_FAULTS=%s\n", m->name, rule);
    r.ctx = drive_ctx_new(o);
    if (!r.ctx) {
        drive_fail("out of memory");
        goto out;
    }
    if (m->needs_key
        && drive_key_open(r.ctx, o, DRIVE_EC_LABEL, &r.key) != CKR_OK) {
        drive_fail("finding the key: %s", p11_error_message());
        goto out;
    }
    ret = m->fn(&r);
out:
    drive_key_close(&r.key);
    p11_ctx_free(r.ctx);
    return ret;
}

int main(int argc, char **argv)
{
    struct drive_opts o = {.iterations = 1, .threads = 1, .rounds = 1};

    if (drive_opts_parse(argc, argv, &o, usage) != 0)
        return DRIVE_USAGE;
    if (strcmp(o.cmd, "setup") == 0)
        return drive_setup(&o);
    if (drive_log_count("C_Login") < 0) {
        fprintf(stderr,
                "%s: set FAULTY_PKCS11_LOG (the checks count calls in it)\n",
                argv[0]);
        return DRIVE_USAGE;
    }
    for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++)
        if (strcmp(o.cmd, modes[i].name) == 0)
            return run_mode(&o, &modes[i], o.n_args ? o.args[0] : "");
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return DRIVE_USAGE;
}
