/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only PKCS#11 forwarder that injects faults, logs calls, checks forks. */
#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE    "/usr/lib/softhsm/libsofthsm2.so"
#define ENV_MODULE        "FAULTY_PKCS11_MODULE"
#define ENV_FAULTS        "FAULTY_PKCS11_FAULTS"
#define ENV_LOG           "FAULTY_PKCS11_LOG"
#define ENV_GETATTR_STOPS "FAULTY_PKCS11_GETATTR_STOPS"
#define ENV_HOLD          "FAULTY_PKCS11_HOLD"
#define HOLD_POLL_MS      10UL
#define ENV_VANISH        "FAULTY_PKCS11_VANISH"
#define ENV_TOKEN_FLAGS   "FAULTY_PKCS11_TOKEN_FLAGS"
#define MAX_SLEEP_MS      600000UL

/* Every hooked function of the 2.40 list (C_GetFunctionList is not hooked). */
/* clang-format off */
#define FAULTY_FUNCTIONS(X) \
    X(C_Initialize) \
    X(C_Finalize) \
    X(C_GetInfo) \
    X(C_GetSlotList) \
    X(C_GetSlotInfo) \
    X(C_GetTokenInfo) \
    X(C_GetMechanismList) \
    X(C_GetMechanismInfo) \
    X(C_InitToken) \
    X(C_InitPIN) \
    X(C_SetPIN) \
    X(C_OpenSession) \
    X(C_CloseSession) \
    X(C_CloseAllSessions) \
    X(C_GetSessionInfo) \
    X(C_GetOperationState) \
    X(C_SetOperationState) \
    X(C_Login) \
    X(C_Logout) \
    X(C_CreateObject) \
    X(C_CopyObject) \
    X(C_DestroyObject) \
    X(C_GetObjectSize) \
    X(C_GetAttributeValue) \
    X(C_SetAttributeValue) \
    X(C_FindObjectsInit) \
    X(C_FindObjects) \
    X(C_FindObjectsFinal) \
    X(C_EncryptInit) \
    X(C_Encrypt) \
    X(C_EncryptUpdate) \
    X(C_EncryptFinal) \
    X(C_DecryptInit) \
    X(C_Decrypt) \
    X(C_DecryptUpdate) \
    X(C_DecryptFinal) \
    X(C_DigestInit) \
    X(C_Digest) \
    X(C_DigestUpdate) \
    X(C_DigestKey) \
    X(C_DigestFinal) \
    X(C_SignInit) \
    X(C_Sign) \
    X(C_SignUpdate) \
    X(C_SignFinal) \
    X(C_SignRecoverInit) \
    X(C_SignRecover) \
    X(C_VerifyInit) \
    X(C_Verify) \
    X(C_VerifyUpdate) \
    X(C_VerifyFinal) \
    X(C_VerifyRecoverInit) \
    X(C_VerifyRecover) \
    X(C_DigestEncryptUpdate) \
    X(C_DecryptDigestUpdate) \
    X(C_SignEncryptUpdate) \
    X(C_DecryptVerifyUpdate) \
    X(C_GenerateKey) \
    X(C_GenerateKeyPair) \
    X(C_WrapKey) \
    X(C_UnwrapKey) \
    X(C_DeriveKey) \
    X(C_SeedRandom) \
    X(C_GenerateRandom) \
    X(C_GetFunctionStatus) \
    X(C_CancelFunction) \
    X(C_WaitForSlotEvent)
/* clang-format on */

enum fn_id {
#define X(name) FN_##name,
    FAULTY_FUNCTIONS(X)
#undef X
        FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
#define X(name) #name,
    FAULTY_FUNCTIONS(X)
#undef X
};

struct rv_name {
    CK_RV rv;
    const char *name;
};

#define R(code)                                                                \
    {                                                                          \
        code, #code                                                            \
    }
static const struct rv_name rv_names[] = {
    R(CKR_OK),
    R(CKR_CANCEL),
    R(CKR_HOST_MEMORY),
    R(CKR_SLOT_ID_INVALID),
    R(CKR_GENERAL_ERROR),
    R(CKR_FUNCTION_FAILED),
    R(CKR_ARGUMENTS_BAD),
    R(CKR_NO_EVENT),
    R(CKR_NEED_TO_CREATE_THREADS),
    R(CKR_CANT_LOCK),
    R(CKR_ATTRIBUTE_READ_ONLY),
    R(CKR_ATTRIBUTE_SENSITIVE),
    R(CKR_ATTRIBUTE_TYPE_INVALID),
    R(CKR_ATTRIBUTE_VALUE_INVALID),
    R(CKR_ACTION_PROHIBITED),
    R(CKR_DATA_INVALID),
    R(CKR_DATA_LEN_RANGE),
    R(CKR_DEVICE_ERROR),
    R(CKR_DEVICE_MEMORY),
    R(CKR_DEVICE_REMOVED),
    R(CKR_ENCRYPTED_DATA_INVALID),
    R(CKR_ENCRYPTED_DATA_LEN_RANGE),
    R(CKR_FUNCTION_CANCELED),
    R(CKR_FUNCTION_NOT_PARALLEL),
    R(CKR_FUNCTION_NOT_SUPPORTED),
    R(CKR_KEY_HANDLE_INVALID),
    R(CKR_KEY_SIZE_RANGE),
    R(CKR_KEY_TYPE_INCONSISTENT),
    R(CKR_KEY_NOT_NEEDED),
    R(CKR_KEY_CHANGED),
    R(CKR_KEY_NEEDED),
    R(CKR_KEY_INDIGESTIBLE),
    R(CKR_KEY_FUNCTION_NOT_PERMITTED),
    R(CKR_KEY_NOT_WRAPPABLE),
    R(CKR_KEY_UNEXTRACTABLE),
    R(CKR_MECHANISM_INVALID),
    R(CKR_MECHANISM_PARAM_INVALID),
    R(CKR_OBJECT_HANDLE_INVALID),
    R(CKR_OPERATION_ACTIVE),
    R(CKR_OPERATION_NOT_INITIALIZED),
    R(CKR_PIN_INCORRECT),
    R(CKR_PIN_INVALID),
    R(CKR_PIN_LEN_RANGE),
    R(CKR_PIN_EXPIRED),
    R(CKR_PIN_LOCKED),
    R(CKR_SESSION_CLOSED),
    R(CKR_SESSION_COUNT),
    R(CKR_SESSION_HANDLE_INVALID),
    R(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    R(CKR_SESSION_READ_ONLY),
    R(CKR_SESSION_EXISTS),
    R(CKR_SESSION_READ_ONLY_EXISTS),
    R(CKR_SESSION_READ_WRITE_SO_EXISTS),
    R(CKR_SIGNATURE_INVALID),
    R(CKR_SIGNATURE_LEN_RANGE),
    R(CKR_TEMPLATE_INCOMPLETE),
    R(CKR_TEMPLATE_INCONSISTENT),
    R(CKR_TOKEN_NOT_PRESENT),
    R(CKR_TOKEN_NOT_RECOGNIZED),
    R(CKR_TOKEN_WRITE_PROTECTED),
    R(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    R(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    R(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    R(CKR_USER_ALREADY_LOGGED_IN),
    R(CKR_USER_NOT_LOGGED_IN),
    R(CKR_USER_PIN_NOT_INITIALIZED),
    R(CKR_USER_TYPE_INVALID),
    R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    R(CKR_USER_TOO_MANY_TYPES),
    R(CKR_WRAPPED_KEY_INVALID),
    R(CKR_WRAPPED_KEY_LEN_RANGE),
    R(CKR_WRAPPING_KEY_HANDLE_INVALID),
    R(CKR_WRAPPING_KEY_SIZE_RANGE),
    R(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    R(CKR_RANDOM_SEED_NOT_SUPPORTED),
    R(CKR_RANDOM_NO_RNG),
    R(CKR_DOMAIN_PARAMS_INVALID),
    R(CKR_CURVE_NOT_SUPPORTED),
    R(CKR_BUFFER_TOO_SMALL),
    R(CKR_SAVED_STATE_INVALID),
    R(CKR_INFORMATION_SENSITIVE),
    R(CKR_STATE_UNSAVEABLE),
    R(CKR_CRYPTOKI_NOT_INITIALIZED),
    R(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    R(CKR_MUTEX_BAD),
    R(CKR_MUTEX_NOT_LOCKED),
    R(CKR_NEW_PIN_MODE),
    R(CKR_NEXT_OTP),
    R(CKR_EXCEEDED_MAX_ITERATIONS),
    R(CKR_FIPS_SELF_TEST_FAILED),
    R(CKR_LIBRARY_LOAD_FAILED),
    R(CKR_PIN_TOO_WEAK),
    R(CKR_PUBLIC_KEY_INVALID),
    R(CKR_FUNCTION_REJECTED),
};
#undef R

/* One parsed FUNC:WHEN:EFFECT rule; calls lo..hi (1-based) of fn match. */
struct rule {
    enum fn_id fn;
    unsigned long lo;
    unsigned long hi;
    bool is_sleep;
    unsigned long sleep_ms;
    bool is_hold;
    CK_RV rv;
};

/* A session handle opened through us, with the slot and opening process. */
struct session {
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    pid_t pid;
};

enum arg_kind { ARG_NONE, ARG_SLOT, ARG_SESSION };

/* Per-call state passed from call_begin() to call_end(). */
struct call {
    enum fn_id fn;
    enum arg_kind kind;
    CK_ULONG handle; /* slot id or session handle, per kind */
    bool injected;
    bool end_op; /* injected error must end the real operation */
    bool violation;
    bool vanished;     /* answered for a token that is away (see vanish) */
    unsigned long nth; /* this call's number among the calls of @fn */
    const char *note;  /* added to the log line (C_Login: the user type) */
};

/*
 * FAULTY_PKCS11_VANISH=FUNC:N:DURATION: the token goes away at the Nth
 * call of FUNC and comes back after DURATION, "NNNms" (monotonic clock) or
 * "NNNcalls" (calls of any function after the Nth).  One window per
 * process; the state survives C_Finalize/C_Initialize in the process.
 */
struct vanish {
    bool set;
    enum fn_id fn;
    unsigned long nth;
    bool by_time;
    unsigned long amount; /* ms or calls */
    /* The window: */
    bool active, over;
    bool all_slots; /* the trigger named no slot: every slot is away */
    CK_SLOT_ID slot;
    uint64_t start_ms;
    unsigned long start_call;
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static void *real_dl;             /* never dlclose()d */
static CK_FUNCTION_LIST_PTR real; /* the real module's function list */

static atomic_ulong call_counts[FN_COUNT];
static atomic_ulong total_calls; /* every call, for vanish windows */
static _Atomic pid_t init_pid;   /* pid of last successful C_Initialize */

/*
 * Every call into the real module holds removal_lock for reading; a
 * simulated removal or logout of the whole token (real C_CloseAllSessions,
 * C_Logout of every session) holds it for writing, so that it lands
 * between calls.  A real module copes with its device vanishing while a
 * thread is inside one of its calls; SoftHSM2 crashes when its sessions
 * are closed under such a thread, which is not what the tests are about.
 * Writers are preferred, so that a removal is not starved by signers.
 */
static pthread_rwlock_t removal_lock;

static void real_enter(void)
{
    pthread_rwlock_rdlock(&removal_lock);
}

static void real_leave(void)
{
    pthread_rwlock_unlock(&removal_lock);
}

/* state_lock guards everything below it. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t counts_pid;
static struct rule *rules;
static size_t n_rules;
static struct session *sessions;
static size_t n_sessions;
static size_t cap_sessions;
static struct vanish vanish;

/* ---- output helpers ---------------------------------------------------- */

static const char *rv_to_name(CK_RV rv, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
        if (rv_names[i].rv == rv)
            return rv_names[i].name;
    snprintf(buf, len, "0x%lx", (unsigned long)rv);
    return buf;
}

/* Appends one line to $FAULTY_PKCS11_LOG with a single O_APPEND write. */
static void log_write(const char *line, size_t len)
{
    const char *path = getenv(ENV_LOG);
    int saved = errno;
    int fd;

    if (path == NULL || *path == '\0')
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, line, len);
        (void)w;
        close(fd);
    }
    errno = saved;
}

enum { TO_STDERR = 1, TO_LOG = 2 };

/* Writes one formatted line to stderr and/or the log, one write(2) each. */
__attribute__((format(printf, 2, 3))) static void emit(int where,
                                                       const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (where & TO_STDERR) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
    if (where & TO_LOG)
        log_write(line, (size_t)n);
}

/* ---- session tracking (caller holds state_lock) ------------------------ */

static struct session *session_find(CK_SESSION_HANDLE handle)
{
    for (size_t i = 0; i < n_sessions; i++)
        if (sessions[i].handle == handle)
            return &sessions[i];
    return NULL;
}

static void session_add(CK_SESSION_HANDLE handle, CK_SLOT_ID slot, pid_t pid)
{
    struct session *s = session_find(handle);

    if (s == NULL) {
        if (n_sessions == cap_sessions) {
            size_t cap = cap_sessions ? cap_sessions * 2 : 16;
            struct session *n = realloc(sessions, cap * sizeof(*n));

            if (n == NULL)
                return;
            sessions = n;
            cap_sessions = cap;
        }
        s = &sessions[n_sessions++];
    }
    s->handle = handle;
    s->slot = slot;
    s->pid = pid;
}

static void session_remove_at(size_t i)
{
    sessions[i] = sessions[--n_sessions];
    if (n_sessions == 0) {
        free(sessions);
        sessions = NULL;
        cap_sessions = 0;
    }
}

static void session_forget(CK_SESSION_HANDLE handle)
{
    for (size_t i = 0; i < n_sessions; i++) {
        if (sessions[i].handle == handle) {
            session_remove_at(i);
            return;
        }
    }
}

/* Forgets our pid's sessions, on one slot or (all_slots) on every slot. */
static void session_forget_pid(pid_t pid, bool all_slots, CK_SLOT_ID slot)
{
    size_t i = 0;

    while (i < n_sessions) {
        if (sessions[i].pid == pid && (all_slots || sessions[i].slot == slot))
            session_remove_at(i);
        else
            i++;
    }
}

/* Copies our pid's sessions (optionally one slot's) out; caller frees. */
static size_t session_snapshot(pid_t pid, bool all_slots, CK_SLOT_ID slot,
                               struct session **out)
{
    size_t n = 0;

    *out = NULL;
    if (n_sessions == 0)
        return 0;
    *out = malloc(n_sessions * sizeof(**out));
    if (*out == NULL)
        return 0;
    for (size_t i = 0; i < n_sessions; i++)
        if (sessions[i].pid == pid && (all_slots || sessions[i].slot == slot))
            (*out)[n++] = sessions[i];
    return n;
}

/* ---- rule parsing ------------------------------------------------------ */

static bool parse_ulong(const char *s, char **end, unsigned long *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    *out = strtoul(s, end, 10);
    return errno == 0;
}

static const char *parse_when(const char *s, struct rule *r)
{
    char *end;

    if (strcmp(s, "*") == 0) {
        r->lo = 1;
        r->hi = ULONG_MAX;
        return NULL;
    }
    if (!parse_ulong(s, &end, &r->lo) || r->lo == 0)
        return "WHEN must be N, N+, N-M or * with N >= 1";
    if (*end == '\0') {
        r->hi = r->lo;
    } else if (strcmp(end, "+") == 0) {
        r->hi = ULONG_MAX;
    } else if (*end == '-') {
        char *end2;

        if (!parse_ulong(end + 1, &end2, &r->hi) || *end2 != '\0')
            return "WHEN range must be N-M";
        if (r->hi < r->lo)
            return "WHEN range N-M needs M >= N";
    } else {
        return "WHEN must be N, N+, N-M or *";
    }
    return NULL;
}

static const char *parse_effect(const char *s, struct rule *r)
{
    char *end;

    if (strcmp(s, "hold") == 0) {
        r->is_hold = true;
        return NULL;
    }
    if (strncmp(s, "sleep=", 6) == 0) {
        if (!parse_ulong(s + 6, &end, &r->sleep_ms) || strcmp(end, "ms") != 0)
            return "sleep must be sleep=NNms";
        if (r->sleep_ms > MAX_SLEEP_MS)
            return "sleep too long";
        r->is_sleep = true;
        return NULL;
    }
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        if (!isxdigit((unsigned char)s[2]))
            return "bad hex CKR value";
        errno = 0;
        r->rv = strtoul(s + 2, &end, 16);
        if (errno != 0 || *end != '\0')
            return "bad hex CKR value";
    } else {
        size_t i, n = sizeof(rv_names) / sizeof(rv_names[0]);

        for (i = 0; i < n; i++)
            if (strcmp(s, rv_names[i].name) == 0)
                break;
        if (i == n)
            return "unknown CKR name";
        r->rv = rv_names[i].rv;
    }
    if (r->rv == CKR_OK)
        return "CKR_OK cannot be injected";
    return NULL;
}

/* Parses one FUNC:WHEN:EFFECT rule in place; returns an error or NULL. */
static const char *parse_rule(char *text, struct rule *r)
{
    char *when = strchr(text, ':');
    char *effect;
    const char *err;
    int i;

    if (when == NULL)
        return "expected FUNC:WHEN:EFFECT";
    *when++ = '\0';
    effect = strchr(when, ':');
    if (effect == NULL)
        return "expected FUNC:WHEN:EFFECT";
    *effect++ = '\0';
    if (strchr(effect, ':') != NULL)
        return "expected FUNC:WHEN:EFFECT";

    memset(r, 0, sizeof(*r));
    for (i = 0; i < FN_COUNT; i++)
        if (strcmp(text, fn_names[i]) == 0)
            break;
    if (i == FN_COUNT)
        return "unknown function";
    r->fn = (enum fn_id)i;
    err = parse_when(when, r);
    if (err == NULL)
        err = parse_effect(effect, r);
    return err;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Parses $FAULTY_PKCS11_FAULTS; on error reports the bad rule and fails. */
static bool parse_rules(const char *spec, struct rule **out, size_t *n_out)
{
    char *copy, *tok, *save = NULL;
    struct rule *list = NULL;
    size_t n = 0;
    bool ok = true;

    *out = NULL;
    *n_out = 0;
    if (spec == NULL || *spec == '\0')
        return true;
    copy = strdup(spec);
    if (copy == NULL)
        return false;
    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *item = trim(tok);
        char shown[256];
        struct rule *grown;
        const char *err;

        if (*item == '\0')
            continue;
        snprintf(shown, sizeof(shown), "%s", item);
        grown = realloc(list, (n + 1) * sizeof(*list));
        if (grown == NULL) {
            ok = false;
            break;
        }
        list = grown;
        err = parse_rule(item, &list[n]);
        if (err != NULL) {
            emit(TO_STDERR, "faulty-pkcs11: bad rule \"%s\" (%s)", shown, err);
            ok = false;
            break;
        }
        n++;
    }
    free(copy);
    if (!ok) {
        free(list);
        return false;
    }
    *out = list;
    *n_out = n;
    return true;
}

/* Parses $FAULTY_PKCS11_VANISH into @v; on error reports it and fails. */
static bool parse_vanish(const char *spec, struct vanish *v)
{
    char copy[256], *when, *dur, *end;
    const char *err = NULL;
    struct rule r;
    int i;

    memset(v, 0, sizeof(*v));
    if (spec == NULL || *spec == '\0')
        return true;
    snprintf(copy, sizeof(copy), "%s", spec);
    when = strchr(copy, ':');
    dur = when ? strchr(when + 1, ':') : NULL;
    if (!when || !dur) {
        err = "expected FUNC:N:NNNms or FUNC:N:NNNcalls";
        goto out;
    }
    *when++ = '\0';
    *dur++ = '\0';
    for (i = 0; i < FN_COUNT; i++)
        if (strcmp(copy, fn_names[i]) == 0)
            break;
    if (i == FN_COUNT) {
        err = "unknown function";
        goto out;
    }
    v->fn = (enum fn_id)i;
    memset(&r, 0, sizeof(r));
    if (parse_when(when, &r) != NULL || r.lo != r.hi) {
        err = "N must be one call number, N >= 1";
        goto out;
    }
    v->nth = r.lo;
    if (!parse_ulong(dur, &end, &v->amount)) {
        err = "DURATION must be NNNms or NNNcalls";
    } else if (strcmp(end, "ms") == 0) {
        v->by_time = true;
        if (v->amount > MAX_SLEEP_MS)
            err = "a window of at most 600000ms";
    } else if (strcmp(end, "calls") != 0) {
        err = "DURATION must be NNNms or NNNcalls";
    }
out:
    if (err != NULL) {
        emit(TO_STDERR, "faulty-pkcs11: bad %s \"%s\" (%s)", ENV_VANISH, spec,
             err);
        memset(v, 0, sizeof(*v));
        return false;
    }
    v->set = true;
    return true;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Ends the window when its time or calls are used up; state_lock held. */
static void vanish_expire_locked(unsigned long call_no)
{
    if (!vanish.active)
        return;
    if (vanish.by_time ? now_ms() - vanish.start_ms < vanish.amount
                       : call_no - vanish.start_call <= vanish.amount)
        return;
    vanish.active = false;
    vanish.over = true;
    emit(TO_LOG, "%ld vanish-end", (long)getpid());
}

/* Whether @slot is away now; state_lock held. */
static bool vanished_slot_locked(CK_SLOT_ID slot)
{
    return vanish.active && (vanish.all_slots || vanish.slot == slot);
}

static bool vanish_active(void)
{
    bool active;

    pthread_mutex_lock(&state_lock);
    active = vanish.active;
    pthread_mutex_unlock(&state_lock);
    return active;
}

static bool vanished_slot(CK_SLOT_ID slot)
{
    bool away;

    pthread_mutex_lock(&state_lock);
    away = vanished_slot_locked(slot);
    pthread_mutex_unlock(&state_lock);
    return away;
}

static void rules_free(void)
{
    free(rules);
    rules = NULL;
    n_rules = 0;
}

static const struct flag_name {
    const char *name;
    CK_FLAGS flag;
} flag_names[] = {
    {"CKF_USER_PIN_COUNT_LOW", CKF_USER_PIN_COUNT_LOW},
    {"CKF_USER_PIN_FINAL_TRY", CKF_USER_PIN_FINAL_TRY},
    {"CKF_USER_PIN_LOCKED", CKF_USER_PIN_LOCKED},
    {"CKF_USER_PIN_TO_BE_CHANGED", CKF_USER_PIN_TO_BE_CHANGED},
    {"CKF_SO_PIN_COUNT_LOW", CKF_SO_PIN_COUNT_LOW},
    {"CKF_SO_PIN_FINAL_TRY", CKF_SO_PIN_FINAL_TRY},
    {"CKF_SO_PIN_LOCKED", CKF_SO_PIN_LOCKED},
    {"CKF_PROTECTED_AUTHENTICATION_PATH", CKF_PROTECTED_AUTHENTICATION_PATH},
};

/* One flag: a CKF_* name above or a hex value; NULL, or what is wrong. */
static const char *parse_flag(const char *s, CK_FLAGS *out)
{
    unsigned long v;
    char *end;

    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (strcmp(s, flag_names[i].name) == 0) {
            *out = flag_names[i].flag;
            return NULL;
        }
    if (strncmp(s, "0x", 2) != 0 || !isxdigit((unsigned char)s[2]))
        return "FLAGS must be CKF_* names or 0x... values joined by |";
    errno = 0;
    v = strtoul(s + 2, &end, 16);
    if (errno != 0 || *end != '\0' || v == 0)
        return "a hex flag must be 0x followed by hex digits, not 0";
    *out = (CK_FLAGS)v;
    return NULL;
}

/*
 * Parses $FAULTY_PKCS11_TOKEN_FLAGS, "FLAGS[:WHEN]", into @flags and the
 * range of C_GetTokenInfo calls (every call without WHEN).
 */
static bool parse_token_flags(const char *spec, CK_FLAGS *flags,
                              unsigned long *lo, unsigned long *hi)
{
    char *copy, *when, *tok, *save = NULL;
    const char *err = NULL;
    struct rule r = {0};

    *flags = 0;
    *lo = 1;
    *hi = ULONG_MAX;
    if (spec == NULL || *spec == '\0')
        return true;
    copy = strdup(spec);
    if (copy == NULL)
        return false;
    when = strchr(copy, ':');
    if (when != NULL) {
        *when++ = '\0';
        err = parse_when(when, &r);
        *lo = r.lo;
        *hi = r.hi;
    }
    for (tok = strtok_r(copy, "|", &save); tok != NULL && err == NULL;
         tok = strtok_r(NULL, "|", &save)) {
        CK_FLAGS f = 0;

        err = parse_flag(trim(tok), &f);
        *flags |= f;
    }
    if (err == NULL && *flags == 0)
        err = "no flag given";
    free(copy);
    if (err != NULL) {
        emit(TO_STDERR, "faulty-pkcs11: bad %s \"%s\" (%s)", ENV_TOKEN_FLAGS,
             spec, err);
        *flags = 0;
        return false;
    }
    return true;
}

/* ---- the common hooks -------------------------------------------------- */

static void sleep_ms(unsigned long ms)
{
    struct timespec ts = {
        .tv_sec = (time_t)(ms / 1000),
        .tv_nsec = (long)(ms % 1000) * 1000000L,
    };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A "hold" rule: wait while the file FAULTY_PKCS11_HOLD names exists
 * (polled, at most MAX_SLEEP_MS), so that a test decides when a slow
 * token answers instead of guessing how long it takes. */
static void hold_while_gate(void)
{
    const char *gate = getenv(ENV_HOLD);
    unsigned long waited = 0;

    while (gate && *gate && access(gate, F_OK) == 0 && waited < MAX_SLEEP_MS) {
        sleep_ms(HOLD_POLL_MS);
        waited += HOLD_POLL_MS;
    }
}

static bool report_violation(struct call *c, CK_RV *rv, CK_RV code,
                             const char *detail)
{
    emit(TO_STDERR | TO_LOG, "faulty-pkcs11: FORK VIOLATION pid=%ld func=%s %s",
         (long)getpid(), fn_names[c->fn], detail);
    c->violation = true;
    *rv = code;
    return false;
}

/* Finds the slot behind a session: ask the module, else our table. */
static bool session_slot(CK_SESSION_HANDLE handle, CK_SLOT_ID *slot)
{
    CK_SESSION_INFO info;
    struct session *s;
    bool found = false;

    if (real->C_GetSessionInfo(handle, &info) == CKR_OK) {
        *slot = info.slotID;
        return true;
    }
    pthread_mutex_lock(&state_lock);
    s = session_find(handle);
    if (s != NULL) {
        *slot = s->slot;
        found = true;
    }
    pthread_mutex_unlock(&state_lock);
    return found;
}

/*
 * A failed C_Encrypt/C_Sign/... call ends the active operation (PKCS#11
 * 2.40, section 5.2) but we did not forward it, so the real module would
 * still have it active.  Single-part calls are finished by the forwarder
 * (drain_single); multi-part ones here, through the family's Final with a
 * scratch buffer.  Results are discarded.
 */
static void drain_single(CK_C_Sign fn, CK_SESSION_HANDLE session,
                         CK_BYTE_PTR in, CK_ULONG in_len)
{
    unsigned char *buf;
    CK_ULONG len = 0;

    if (fn(session, in, in_len, NULL, &len) != CKR_OK)
        return; /* an error already ended it */
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return;
    fn(session, in, in_len, buf, &len);
    explicit_bzero(buf, len);
    free(buf);
}

static void terminate_operation(CK_SESSION_HANDLE session, enum fn_id fn)
{
    CK_C_SignFinal finish;
    unsigned char *buf, dummy_sig[1] = {0};
    CK_ULONG len = 0;

    switch (fn) {
    case FN_C_EncryptUpdate:
    case FN_C_EncryptFinal:
        finish = real->C_EncryptFinal;
        break;
    case FN_C_DecryptUpdate:
    case FN_C_DecryptFinal:
        finish = real->C_DecryptFinal;
        break;
    case FN_C_DigestUpdate:
    case FN_C_DigestKey:
    case FN_C_DigestFinal:
        finish = real->C_DigestFinal;
        break;
    case FN_C_SignUpdate:
    case FN_C_SignFinal:
        finish = real->C_SignFinal;
        break;
    case FN_C_VerifyUpdate:
    case FN_C_VerifyFinal:
        /* Any answer but CKR_BUFFER_TOO_SMALL ends the operation. */
        real->C_VerifyFinal(session, dummy_sig, sizeof(dummy_sig));
        return;
    default:
        return;
    }
    if (finish(session, NULL, &len) != CKR_OK)
        return; /* an error already ended it */
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return;
    finish(session, buf, &len);
    explicit_bzero(buf, len);
    free(buf);
}

/* Makes the real module's state match the injected error code. */
static void inject_side_effects(const struct call *c, CK_RV fault)
{
    pid_t pid = getpid();
    struct session *snap;
    size_t n;
    CK_SLOT_ID slot;

    switch (fault) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
        if (c->kind != ARG_SESSION)
            break;
        real->C_CloseSession(c->handle);
        pthread_mutex_lock(&state_lock);
        session_forget(c->handle);
        pthread_mutex_unlock(&state_lock);
        break;
    case CKR_USER_NOT_LOGGED_IN:
        if (c->kind == ARG_SESSION) {
            terminate_operation(c->handle, c->fn);
            real->C_Logout(c->handle);
            break;
        }
        pthread_mutex_lock(&state_lock);
        n = session_snapshot(pid, c->kind != ARG_SLOT, c->handle, &snap);
        pthread_mutex_unlock(&state_lock);
        pthread_rwlock_wrlock(&removal_lock);
        for (size_t i = 0; i < n; i++)
            real->C_Logout(snap[i].handle);
        pthread_rwlock_unlock(&removal_lock);
        free(snap);
        break;
    case CKR_DEVICE_REMOVED:
        if (c->kind == ARG_SLOT || c->kind == ARG_SESSION) {
            if (c->kind == ARG_SLOT)
                slot = c->handle;
            else if (!session_slot(c->handle, &slot))
                break;
            pthread_rwlock_wrlock(&removal_lock);
            real->C_CloseAllSessions(slot);
            pthread_rwlock_unlock(&removal_lock);
            pthread_mutex_lock(&state_lock);
            session_forget_pid(pid, false, slot);
            pthread_mutex_unlock(&state_lock);
            break;
        }
        /* No slot argument: remove every token we have sessions on. */
        pthread_mutex_lock(&state_lock);
        n = session_snapshot(pid, true, 0, &snap);
        session_forget_pid(pid, true, 0);
        pthread_mutex_unlock(&state_lock);
        pthread_rwlock_wrlock(&removal_lock);
        for (size_t i = 0; i < n; i++)
            real->C_CloseAllSessions(snap[i].slot);
        pthread_rwlock_unlock(&removal_lock);
        free(snap);
        break;
    default:
        if (c->end_op)
            terminate_operation(c->handle, c->fn);
        break;
    }
}

/*
 * The vanish window: it starts at the Nth call of its function (a removal:
 * that call fails with CKR_DEVICE_REMOVED and the sessions on the slot are
 * closed; a call that names no slot, such as C_GetSlotList, removes every
 * token and goes on), and while it lasts the token is away: C_GetSlotList
 * leaves its slot out, C_GetSlotInfo clears CKF_TOKEN_PRESENT, calls on the
 * slot answer CKR_TOKEN_NOT_PRESENT and calls on its sessions
 * CKR_DEVICE_REMOVED.  Returns true when @rv holds the answer.
 */
static bool vanish_call(struct call *c, unsigned long nth,
                        unsigned long call_no, CK_RV *rv)
{
    struct call all = {.fn = c->fn, .kind = ARG_NONE};
    CK_SLOT_ID slot = 0;
    bool have_slot = false, start = false, away = false;
    struct session *s;

    pthread_mutex_lock(&state_lock);
    if (!vanish.set) {
        pthread_mutex_unlock(&state_lock);
        return false;
    }
    if (c->kind == ARG_SLOT) {
        slot = c->handle;
        have_slot = true;
    } else if (c->kind == ARG_SESSION && (s = session_find(c->handle))) {
        slot = s->slot;
        have_slot = true;
    }
    vanish_expire_locked(call_no);
    if (!vanish.active && !vanish.over && c->fn == vanish.fn
        && nth == vanish.nth) {
        vanish.active = start = true;
        vanish.all_slots = !have_slot;
        vanish.slot = slot;
        vanish.start_ms = now_ms();
        vanish.start_call = call_no;
    } else if (have_slot && vanished_slot_locked(slot)) {
        away = true;
    }
    pthread_mutex_unlock(&state_lock);
    if (start) {
        emit(TO_LOG, "%ld vanish-start %s", (long)getpid(),
             have_slot ? "slot" : "all-slots");
        if (!have_slot) {
            inject_side_effects(&all, CKR_DEVICE_REMOVED);
            return false;
        }
        c->injected = true;
        *rv = CKR_DEVICE_REMOVED;
        return true;
    }
    if (!away || c->fn == FN_C_GetSlotInfo)
        return false; /* C_GetSlotInfo: its wrapper clears the flag */
    c->vanished = true;
    *rv = c->kind == ARG_SESSION ? CKR_DEVICE_REMOVED : CKR_TOKEN_NOT_PRESENT;
    return true;
}

/*
 * Runs before every forwarded call: fork checks, counting, latency and the
 * fault decision.  Returns true if the call should be forwarded; otherwise
 * *rv holds the code to return (side effects follow in call_end).
 */
static bool call_begin(struct call *c, CK_RV *rv)
{
    pid_t pid = getpid();
    pid_t ipid = atomic_load(&init_pid);
    unsigned long nth, total_sleep = 0;
    bool fault = false, hold = false;
    CK_RV fault_rv = CKR_OK;

    if (c->fn != FN_C_Initialize && ipid != 0 && ipid != pid) {
        char detail[64];

        snprintf(detail, sizeof(detail), "initialized_pid=%ld", (long)ipid);
        return report_violation(c, rv, CKR_CRYPTOKI_NOT_INITIALIZED, detail);
    }
    if (c->kind == ARG_SESSION) {
        struct session *s;
        pid_t owner = 0;

        pthread_mutex_lock(&state_lock);
        s = session_find(c->handle);
        if (s != NULL)
            owner = s->pid;
        pthread_mutex_unlock(&state_lock);
        if (owner != 0 && owner != pid) {
            char detail[96];

            snprintf(detail, sizeof(detail), "session=%lu opened_by_pid=%ld",
                     (unsigned long)c->handle, (long)owner);
            return report_violation(c, rv, CKR_SESSION_HANDLE_INVALID, detail);
        }
    }
    if (real == NULL) {
        *rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        return false;
    }

    nth = atomic_fetch_add(&call_counts[c->fn], 1) + 1;
    c->nth = nth;
    if (vanish_call(c, nth, atomic_fetch_add(&total_calls, 1) + 1, rv))
        return false;

    pthread_mutex_lock(&state_lock);
    for (size_t i = 0; i < n_rules; i++) {
        const struct rule *r = &rules[i];

        if (r->fn != c->fn || nth < r->lo || nth > r->hi)
            continue;
        if (r->is_sleep) {
            total_sleep += r->sleep_ms;
        } else if (r->is_hold) {
            hold = true;
        } else if (!fault) {
            fault = true;
            fault_rv = r->rv;
        }
    }
    pthread_mutex_unlock(&state_lock);

    if (total_sleep > 0)
        sleep_ms(total_sleep);
    if (hold)
        hold_while_gate();
    if (!fault)
        return true;
    c->injected = true;
    /* Lost sessions take their operations with them. */
    c->end_op = c->kind == ARG_SESSION && fault_rv != CKR_BUFFER_TOO_SMALL
                && fault_rv != CKR_SESSION_HANDLE_INVALID
                && fault_rv != CKR_SESSION_CLOSED
                && fault_rv != CKR_DEVICE_REMOVED;
    *rv = fault_rv;
    return false;
}

/*
 * Runs after every call: applies the side effects of an injected fault and
 * logs "<pid> <FUNC> <CKR> [injected]".
 */
static CK_RV call_end(const struct call *c, CK_RV rv)
{
    char buf[200], rvbuf[24];
    int n;

    if (c->violation)
        return rv;
    if (c->injected)
        inject_side_effects(c, rv);
    n = snprintf(buf, sizeof(buf), "%ld %s %s%s%s\n", (long)getpid(),
                 fn_names[c->fn], rv_to_name(rv, rvbuf, sizeof(rvbuf)),
                 c->note ? c->note : "",
                 c->injected   ? " [injected]"
                 : c->vanished ? " [vanished]"
                               : "");
    if (n > 0 && (size_t)n < sizeof(buf))
        log_write(buf, (size_t)n);
    return rv;
}

#define CALL(name, kind_, handle_)                                             \
    {                                                                          \
        .fn = FN_##name, .kind = (kind_), .handle = (CK_ULONG)(handle_)        \
    }

/* ---- generated forwarders ---------------------------------------------- */

/* drain: statement that ends the real operation after an injected fault. */
#define FORWARD_DRAIN(name, kind_, handle_, decl, args, drain)                 \
    static CK_RV fw_##name decl                                                \
    {                                                                          \
        struct call c = CALL(name, kind_, handle_);                            \
        CK_RV rv;                                                              \
                                                                               \
        if (call_begin(&c, &rv)) {                                             \
            real_enter();                                                      \
            rv = real->name != NULL ? real->name args                          \
                                    : CKR_FUNCTION_NOT_SUPPORTED;              \
            real_leave();                                                      \
        } else if (c.end_op && real->name != NULL) {                           \
            real_enter();                                                      \
            drain;                                                             \
            real_leave();                                                      \
        }                                                                      \
        return call_end(&c, rv);                                               \
    }
#define FORWARD(name, kind_, handle_, decl, args)                              \
    FORWARD_DRAIN(name, kind_, handle_, decl, args, (void)0)

#define FWD_NONE(name, decl, args) FORWARD(name, ARG_NONE, 0, decl, args)
#define FWD_SLOT(name, decl, args) FORWARD(name, ARG_SLOT, slot, decl, args)
#define FWD_SESS(name, decl, args)                                             \
    FORWARD(name, ARG_SESSION, session, decl, args)

/* Common session-function shapes. */
#define FWD_SESS_ONLY(name)                                                    \
    FWD_SESS(name, (CK_SESSION_HANDLE session), (session))
#define FWD_OP_INIT(name)                                                      \
    FWD_SESS(name,                                                             \
             (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,                \
              CK_OBJECT_HANDLE key),                                           \
             (session, mech, key))
#define FWD_IN_OUT(name)                                                       \
    FWD_SESS(name,                                                             \
             (CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,      \
              CK_BYTE_PTR out, CK_ULONG_PTR out_len),                          \
             (session, in, in_len, out, out_len))
/* Single-part operation: an injected error finishes the real one. */
#define FWD_SINGLE(name)                                                       \
    FORWARD_DRAIN(name, ARG_SESSION, session,                                  \
                  (CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len, \
                   CK_BYTE_PTR out, CK_ULONG_PTR out_len),                     \
                  (session, in, in_len, out, out_len),                         \
                  drain_single(real->name, session, in, in_len))
#define FWD_IN(name)                                                           \
    FWD_SESS(name,                                                             \
             (CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len),     \
             (session, in, in_len))
#define FWD_OUT(name)                                                          \
    FWD_SESS(                                                                  \
        name,                                                                  \
        (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len),    \
        (session, out, out_len))

/* General and slot/token management. */
FWD_NONE(C_WaitForSlotEvent,
         (CK_FLAGS flags, CK_SLOT_ID_PTR slot_out, CK_VOID_PTR rsv),
         (flags, slot_out, rsv))
/*
 * FAULTY_PKCS11_TOKEN_FLAGS=FLAGS[:WHEN]: the token also reports FLAGS
 * (a PIN at its last try, or locked: SoftHSM2 never says so) in the calls
 * WHEN numbers.  Read at every call, so that a test program can change it
 * between two operations.
 */
static CK_RV fw_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    struct call c = CALL(C_GetTokenInfo, ARG_SLOT, slot);
    unsigned long lo, hi;
    CK_FLAGS add;
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        real_enter();
        rv = real->C_GetTokenInfo(slot, info);
        real_leave();
        if (!parse_token_flags(getenv(ENV_TOKEN_FLAGS), &add, &lo, &hi))
            rv = CKR_GENERAL_ERROR;
        else if (rv == CKR_OK && info != NULL && c.nth >= lo && c.nth <= hi)
            info->flags |= add;
    }
    return call_end(&c, rv);
}
FWD_SLOT(C_GetMechanismList,
         (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR n),
         (slot, list, n))
FWD_SLOT(C_GetMechanismInfo,
         (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info),
         (slot, type, info))
FWD_SLOT(C_InitToken,
         (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
          CK_UTF8CHAR_PTR label),
         (slot, pin, pin_len, label))
FWD_SESS(C_InitPIN,
         (CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len),
         (session, pin, pin_len))
FWD_SESS(C_SetPIN,
         (CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
          CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len),
         (session, old_pin, old_len, new_pin, new_len))

/* Session management (open/close are written out below). */
FWD_SESS(C_GetSessionInfo,
         (CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info), (session, info))
FWD_SESS(C_GetOperationState,
         (CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG_PTR state_len),
         (session, state, state_len))
FWD_SESS(C_SetOperationState,
         (CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len,
          CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key),
         (session, state, state_len, enc_key, auth_key))
/* The log line says which user logged in, when it is not CKU_USER:
 * " so" or " context-specific" (never the PIN). */
static CK_RV fw_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user,
                        CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    struct call c = CALL(C_Login, ARG_SESSION, session);
    CK_RV rv;

    c.note = user == CKU_SO                 ? " so"
             : user == CKU_CONTEXT_SPECIFIC ? " context-specific"
                                            : NULL;
    if (call_begin(&c, &rv)) {
        real_enter();
        rv = real->C_Login(session, user, pin, pin_len);
        real_leave();
    }
    return call_end(&c, rv);
}
FWD_SESS_ONLY(C_Logout)

/* Objects. */
FWD_SESS(C_CreateObject,
         (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
          CK_OBJECT_HANDLE_PTR obj),
         (session, tmpl, n, obj))
FWD_SESS(C_CopyObject,
         (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj,
          CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR new_obj),
         (session, obj, tmpl, n, new_obj))
FWD_SESS(C_DestroyObject, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj),
         (session, obj))
FWD_SESS(C_GetObjectSize,
         (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size),
         (session, obj, size))
/*
 * FAULTY_PKCS11_GETATTR_STOPS=1: C_GetAttributeValue behaves like the
 * tokens that stop at the first attribute they cannot return (one the
 * object lacks, a sensitive one, a buffer too small), leaving the rest of
 * the template as the caller set it; the specification has them go on.
 */
static CK_RV fw_C_GetAttributeValue(CK_SESSION_HANDLE session,
                                    CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
                                    CK_ULONG n)
{
    struct call c = CALL(C_GetAttributeValue, ARG_SESSION, session);
    const char *stops = getenv(ENV_GETATTR_STOPS);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        real_enter();
        if (real->C_GetAttributeValue == NULL) {
            rv = CKR_FUNCTION_NOT_SUPPORTED;
        } else if (!stops || strcmp(stops, "1") != 0 || tmpl == NULL) {
            rv = real->C_GetAttributeValue(session, obj, tmpl, n);
        } else {
            rv = CKR_OK;
            for (CK_ULONG i = 0; i < n && rv == CKR_OK; i++)
                rv = real->C_GetAttributeValue(session, obj, &tmpl[i], 1);
        }
        real_leave();
    }
    return call_end(&c, rv);
}
FWD_SESS(C_SetAttributeValue,
         (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj,
          CK_ATTRIBUTE_PTR tmpl, CK_ULONG n),
         (session, obj, tmpl, n))
FWD_SESS(C_FindObjectsInit,
         (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n),
         (session, tmpl, n))
FWD_SESS(C_FindObjects,
         (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max,
          CK_ULONG_PTR n),
         (session, objs, max, n))
FWD_SESS_ONLY(C_FindObjectsFinal)

/* Encryption, decryption, digests. */
FWD_OP_INIT(C_EncryptInit)
FWD_SINGLE(C_Encrypt)
FWD_IN_OUT(C_EncryptUpdate)
FWD_OUT(C_EncryptFinal)
FWD_OP_INIT(C_DecryptInit)
FWD_SINGLE(C_Decrypt)
FWD_IN_OUT(C_DecryptUpdate)
FWD_OUT(C_DecryptFinal)
FWD_SESS(C_DigestInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech),
         (session, mech))
FWD_SINGLE(C_Digest)
FWD_IN(C_DigestUpdate)
FWD_SESS(C_DigestKey, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key),
         (session, key))
FWD_OUT(C_DigestFinal)

/* Signatures. */
FWD_OP_INIT(C_SignInit)
FWD_SINGLE(C_Sign)
FWD_IN(C_SignUpdate)
FWD_OUT(C_SignFinal)
FWD_OP_INIT(C_SignRecoverInit)
FWD_SINGLE(C_SignRecover)
FWD_OP_INIT(C_VerifyInit)
FORWARD_DRAIN(C_Verify, ARG_SESSION, session,
              (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
               CK_BYTE_PTR sig, CK_ULONG sig_len),
              (session, data, data_len, sig, sig_len),
              real->C_Verify(session, data, data_len, sig, sig_len))
FWD_IN(C_VerifyUpdate)
FWD_IN(C_VerifyFinal)
FWD_OP_INIT(C_VerifyRecoverInit)
FWD_SINGLE(C_VerifyRecover)

/* Dual-function operations. */
FWD_IN_OUT(C_DigestEncryptUpdate)
FWD_IN_OUT(C_DecryptDigestUpdate)
FWD_IN_OUT(C_SignEncryptUpdate)
FWD_IN_OUT(C_DecryptVerifyUpdate)

/* Key management. */
FWD_SESS(C_GenerateKey,
         (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
          CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR key),
         (session, mech, tmpl, n, key))
FWD_SESS(C_GenerateKeyPair,
         (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
          CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_n, CK_ATTRIBUTE_PTR priv_tmpl,
          CK_ULONG priv_n, CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv),
         (session, mech, pub_tmpl, pub_n, priv_tmpl, priv_n, pub, priv))
FWD_SESS(C_WrapKey,
         (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
          CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key,
          CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len),
         (session, mech, wrapping_key, key, wrapped, wrapped_len))
FWD_SESS(C_UnwrapKey,
         (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
          CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR wrapped,
          CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
          CK_OBJECT_HANDLE_PTR key),
         (session, mech, unwrapping_key, wrapped, wrapped_len, tmpl, n, key))
FWD_SESS(C_DeriveKey,
         (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
          CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
          CK_OBJECT_HANDLE_PTR key),
         (session, mech, base_key, tmpl, n, key))

/* Random numbers and legacy parallel functions. */
FWD_IN(C_SeedRandom)
FWD_SESS(C_GenerateRandom,
         (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len),
         (session, out, out_len))
FWD_SESS_ONLY(C_GetFunctionStatus)
FWD_SESS_ONLY(C_CancelFunction)

/* ---- hand-written forwarders ------------------------------------------- */

/* The real slot list without the slots that are away (a vanish window). */
static CK_RV slot_list_present(CK_SLOT_ID_PTR list, CK_ULONG_PTR n)
{
    CK_SLOT_ID *all = NULL;
    CK_ULONG cnt = 0, kept = 0;
    CK_RV rv;

    do { /* the list may grow between the two calls */
        free(all);
        all = NULL;
        rv = real->C_GetSlotList(CK_TRUE, NULL, &cnt);
        if (rv == CKR_OK && cnt > 0 && !(all = calloc(cnt, sizeof(*all))))
            return CKR_HOST_MEMORY;
        if (rv == CKR_OK && cnt > 0)
            rv = real->C_GetSlotList(CK_TRUE, all, &cnt);
    } while (rv == CKR_BUFFER_TOO_SMALL);
    for (CK_ULONG i = 0; rv == CKR_OK && i < cnt; i++)
        if (!vanished_slot(all[i]))
            all[kept++] = all[i];
    if (rv == CKR_OK && list != NULL && *n < kept)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (rv == CKR_OK && list != NULL && kept > 0)
        memcpy(list, all, kept * sizeof(*all));
    if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
        *n = kept;
    free(all);
    return rv;
}

static CK_RV fw_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list,
                              CK_ULONG_PTR n)
{
    struct call c = CALL(C_GetSlotList, ARG_NONE, 0);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        real_enter();
        if (present && n != NULL && vanish_active())
            rv = slot_list_present(list, n);
        else
            rv = real->C_GetSlotList(present, list, n);
        real_leave();
    }
    return call_end(&c, rv);
}

static CK_RV fw_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    struct call c = CALL(C_GetSlotInfo, ARG_SLOT, slot);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        real_enter();
        rv = real->C_GetSlotInfo(slot, info);
        real_leave();
        if (rv == CKR_OK && info != NULL && vanished_slot(slot)) {
            info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
            c.vanished = true;
        }
    }
    return call_end(&c, rv);
}

static void load_real(void)
{
    const char *path = getenv(ENV_MODULE);
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR list = NULL;

    if (path == NULL || *path == '\0')
        path = DEFAULT_MODULE;
    real_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (real_dl == NULL) {
        emit(TO_STDERR, "faulty-pkcs11: cannot load %s: %s", path, dlerror());
        return;
    }
    get_list = (CK_C_GetFunctionList)dlsym(real_dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&list) != CKR_OK || list == NULL) {
        emit(TO_STDERR, "faulty-pkcs11: %s has no usable C_GetFunctionList",
             path);
        return;
    }
    real = list;
}

static CK_RV fw_C_Initialize(CK_VOID_PTR init_args)
{
    struct call c = CALL(C_Initialize, ARG_NONE, 0);
    CK_C_INITIALIZE_ARGS_PTR args = init_args;
    pid_t pid = getpid();
    struct rule *parsed;
    struct vanish v;
    size_t n_parsed;
    CK_FLAGS flags;
    unsigned long flags_lo, flags_hi;
    CK_RV rv;

    pthread_once(&load_once, load_real);
    if (real == NULL)
        return call_end(&c, CKR_GENERAL_ERROR);
    if (!parse_rules(getenv(ENV_FAULTS), &parsed, &n_parsed))
        return call_end(&c, CKR_GENERAL_ERROR);
    if (!parse_vanish(getenv(ENV_VANISH), &v)
        || !parse_token_flags(getenv(ENV_TOKEN_FLAGS), &flags, &flags_lo,
                              &flags_hi)) {
        free(parsed);
        return call_end(&c, CKR_GENERAL_ERROR);
    }

    pthread_mutex_lock(&state_lock);
    rules_free();
    rules = parsed;
    n_rules = n_parsed;
    if (counts_pid != pid) {
        /* First C_Initialize in this process (e.g. a forked child); a
         * later one (C_Finalize, C_Initialize) keeps the vanish window. */
        for (int i = 0; i < FN_COUNT; i++)
            atomic_store(&call_counts[i], 0);
        atomic_store(&total_calls, 0);
        vanish = v;
        counts_pid = pid;
    }
    pthread_mutex_unlock(&state_lock);

    emit(TO_LOG, "%ld C_Initialize-args flags=0x%lx%s", (long)pid,
         args != NULL ? (unsigned long)args->flags : 0UL,
         args != NULL ? "" : " args=NULL");

    if (call_begin(&c, &rv)) {
        pid_t ipid = atomic_load(&init_pid);

        rv = real->C_Initialize(init_args);
        /* A forked child of a module that kept its state (no reset). */
        if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && ipid != 0 && ipid != pid)
            rv = CKR_OK;
        if (rv == CKR_OK)
            atomic_store(&init_pid, pid);
    }
    return call_end(&c, rv);
}

static CK_RV fw_C_Finalize(CK_VOID_PTR rsv)
{
    struct call c = CALL(C_Finalize, ARG_NONE, 0);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        rv = real->C_Finalize(rsv);
        if (rv == CKR_OK) {
            pthread_mutex_lock(&state_lock);
            session_forget_pid(getpid(), true, 0);
            rules_free();
            pthread_mutex_unlock(&state_lock);
            atomic_store(&init_pid, 0);
        }
    }
    return call_end(&c, rv);
}

static void blank_pad(unsigned char *field, size_t len, const char *text)
{
    size_t n = strlen(text);

    memset(field, ' ', len);
    memcpy(field, text, n < len ? n : len);
}

static CK_RV fw_C_GetInfo(CK_INFO_PTR info)
{
    struct call c = CALL(C_GetInfo, ARG_NONE, 0);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        rv = real->C_GetInfo(info);
        if (rv == CKR_OK && info != NULL) {
            blank_pad(info->manufacturerID, sizeof(info->manufacturerID),
                      "p11ca faulty");
            blank_pad(info->libraryDescription,
                      sizeof(info->libraryDescription), "p11ca fault injector");
        }
    }
    return call_end(&c, rv);
}

static CK_RV fw_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,
                              CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
    struct call c = CALL(C_OpenSession, ARG_SLOT, slot);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        real_enter();
        rv = real->C_OpenSession(slot, flags, app, notify, session);
        real_leave();
        if (rv == CKR_OK && session != NULL) {
            pthread_mutex_lock(&state_lock);
            session_add(*session, slot, getpid());
            pthread_mutex_unlock(&state_lock);
        }
    }
    return call_end(&c, rv);
}

static CK_RV fw_C_CloseSession(CK_SESSION_HANDLE session)
{
    struct call c = CALL(C_CloseSession, ARG_SESSION, session);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        real_enter();
        rv = real->C_CloseSession(session);
        real_leave();
        if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID
            || rv == CKR_SESSION_CLOSED) {
            pthread_mutex_lock(&state_lock);
            session_forget(session);
            pthread_mutex_unlock(&state_lock);
        }
    }
    return call_end(&c, rv);
}

static CK_RV fw_C_CloseAllSessions(CK_SLOT_ID slot)
{
    struct call c = CALL(C_CloseAllSessions, ARG_SLOT, slot);
    CK_RV rv;

    if (call_begin(&c, &rv)) {
        pthread_rwlock_wrlock(&removal_lock);
        rv = real->C_CloseAllSessions(slot);
        pthread_rwlock_unlock(&removal_lock);
        if (rv == CKR_OK) {
            pthread_mutex_lock(&state_lock);
            session_forget_pid(getpid(), false, slot);
            pthread_mutex_unlock(&state_lock);
        }
    }
    return call_end(&c, rv);
}

/* ---- the exported function list ---------------------------------------- */

static CK_FUNCTION_LIST function_list = {
    .version = {2, 40},
#define X(name) .name = fw_##name,
    FAULTY_FUNCTIONS(X)
#undef X
        .C_GetFunctionList = C_GetFunctionList,
};

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    *list = &function_list;
    return CKR_OK;
}

/* ---- process lifetime -------------------------------------------------- */

static void atfork_prepare(void)
{
    pthread_rwlock_wrlock(&removal_lock);
    pthread_mutex_lock(&state_lock);
}

static void removal_lock_init(void)
{
    pthread_rwlockattr_t a;

    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&removal_lock, &a);
    pthread_rwlockattr_destroy(&a);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&state_lock);
    pthread_rwlock_unlock(&removal_lock);
}

/* The child's one thread has a new thread id, which glibc's rwlock would
 * not recognise as its writer: a fresh lock instead of an unlock. */
static void atfork_child(void)
{
    pthread_mutex_unlock(&state_lock);
    removal_lock_init();
}

__attribute__((constructor)) static void faulty_init(void)
{
    removal_lock_init();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

__attribute__((destructor)) static void faulty_fini(void)
{
    pthread_mutex_lock(&state_lock);
    rules_free();
    free(sessions);
    sessions = NULL;
    n_sessions = 0;
    cap_sessions = 0;
    pthread_mutex_unlock(&state_lock);
}
