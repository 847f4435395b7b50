/* SPDX-License-Identifier: Apache-2.0 */
/* CK_RV names and sentences, and the per-thread "last error" of the layer. */
#include "config.h"

#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct rv_desc {
    CK_RV rv;
    const char *name;
    const char *text;
};

#define RV(code, text)                                                         \
    {                                                                          \
        code, #code, text                                                      \
    }

static const struct rv_desc rv_table[] = {
    RV(CKR_OK, "success"),
    RV(CKR_CANCEL, "the operation was cancelled"),
    RV(CKR_HOST_MEMORY, "the host ran out of memory"),
    RV(CKR_SLOT_ID_INVALID, "the slot does not exist"),
    RV(CKR_GENERAL_ERROR, "the module reported an unrecoverable error"),
    RV(CKR_FUNCTION_FAILED, "the requested function could not be performed"),
    RV(CKR_ARGUMENTS_BAD, "the module rejected the arguments of the call"),
    RV(CKR_NO_EVENT, "no slot event is pending"),
    RV(CKR_NEED_TO_CREATE_THREADS,
       "the module needs to create threads but may not"),
    RV(CKR_CANT_LOCK, "the module cannot provide the requested locking"),
    RV(CKR_ATTRIBUTE_READ_ONLY, "the attribute is read-only"),
    RV(CKR_ATTRIBUTE_SENSITIVE,
       "the attribute is sensitive and cannot be revealed"),
    RV(CKR_ATTRIBUTE_TYPE_INVALID, "the object has no such attribute"),
    RV(CKR_ATTRIBUTE_VALUE_INVALID, "an attribute value is invalid"),
    RV(CKR_ACTION_PROHIBITED, "the token's policy prohibits this action"),
    RV(CKR_DATA_INVALID, "the input data is invalid"),
    RV(CKR_DATA_LEN_RANGE, "the input data has the wrong length"),
    RV(CKR_DEVICE_ERROR, "the token or its reader failed"),
    RV(CKR_DEVICE_MEMORY, "the token ran out of memory"),
    RV(CKR_DEVICE_REMOVED, "the token was removed"),
    RV(CKR_ENCRYPTED_DATA_INVALID, "the ciphertext is invalid"),
    RV(CKR_ENCRYPTED_DATA_LEN_RANGE, "the ciphertext has the wrong length"),
    RV(CKR_FUNCTION_CANCELED, "the function was cancelled"),
    RV(CKR_FUNCTION_NOT_PARALLEL, "no function is running in parallel"),
    RV(CKR_FUNCTION_NOT_SUPPORTED, "the module does not support this function"),
    RV(CKR_KEY_HANDLE_INVALID, "the key handle is no longer valid"),
    RV(CKR_KEY_SIZE_RANGE,
       "the key size is outside the range the token supports"),
    RV(CKR_KEY_TYPE_INCONSISTENT, "the key type does not fit the mechanism"),
    RV(CKR_KEY_NOT_NEEDED, "no key is needed for this operation"),
    RV(CKR_KEY_CHANGED, "the key changed"),
    RV(CKR_KEY_NEEDED, "a key is needed"),
    RV(CKR_KEY_INDIGESTIBLE, "the key cannot be digested"),
    RV(CKR_KEY_FUNCTION_NOT_PERMITTED,
       "the key's attributes do not permit this use"),
    RV(CKR_KEY_NOT_WRAPPABLE, "the key cannot be wrapped"),
    RV(CKR_KEY_UNEXTRACTABLE, "the key is not extractable"),
    RV(CKR_MECHANISM_INVALID, "the token does not support this mechanism"),
    RV(CKR_MECHANISM_PARAM_INVALID,
       "the token does not accept these mechanism parameters"),
    RV(CKR_OBJECT_HANDLE_INVALID, "the object handle is no longer valid"),
    RV(CKR_OPERATION_ACTIVE, "another operation is active in the session"),
    RV(CKR_OPERATION_NOT_INITIALIZED, "no operation is active in the session"),
    RV(CKR_PIN_INCORRECT, "the PIN is incorrect"),
    RV(CKR_PIN_INVALID, "the PIN contains invalid characters"),
    RV(CKR_PIN_LEN_RANGE, "the PIN is too long or too short"),
    RV(CKR_PIN_EXPIRED, "the PIN has expired"),
    RV(CKR_PIN_LOCKED, "the PIN is locked"),
    RV(CKR_SESSION_CLOSED, "the session was closed"),
    RV(CKR_SESSION_COUNT, "the token has too many open sessions"),
    RV(CKR_SESSION_HANDLE_INVALID, "the session is no longer valid"),
    RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED,
       "parallel sessions are not supported"),
    RV(CKR_SESSION_READ_ONLY, "the session is read-only"),
    RV(CKR_SESSION_EXISTS, "a session is open on the token"),
    RV(CKR_SESSION_READ_ONLY_EXISTS, "a read-only session exists"),
    RV(CKR_SESSION_READ_WRITE_SO_EXISTS, "a read-write SO session exists"),
    RV(CKR_SIGNATURE_INVALID, "the signature is invalid"),
    RV(CKR_SIGNATURE_LEN_RANGE, "the signature has the wrong length"),
    RV(CKR_TEMPLATE_INCOMPLETE, "the object template is incomplete"),
    RV(CKR_TEMPLATE_INCONSISTENT, "the object template is inconsistent"),
    RV(CKR_TOKEN_NOT_PRESENT, "no token is present in the slot"),
    RV(CKR_TOKEN_NOT_RECOGNIZED, "the token is not recognized"),
    RV(CKR_TOKEN_WRITE_PROTECTED, "the token is write-protected"),
    RV(CKR_UNWRAPPING_KEY_SIZE_RANGE, "the unwrapping key has the wrong size"),
    RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
       "the unwrapping key has the wrong type"),
    RV(CKR_USER_ALREADY_LOGGED_IN, "the user is already logged in"),
    RV(CKR_USER_NOT_LOGGED_IN, "the user is not logged in"),
    RV(CKR_USER_PIN_NOT_INITIALIZED, "the user PIN was never set"),
    RV(CKR_USER_TYPE_INVALID, "the user type is invalid"),
    RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "another user is already logged in"),
    RV(CKR_USER_TOO_MANY_TYPES, "too many user types are logged in"),
    RV(CKR_WRAPPED_KEY_INVALID, "the wrapped key is invalid"),
    RV(CKR_WRAPPED_KEY_LEN_RANGE, "the wrapped key has the wrong length"),
    RV(CKR_WRAPPING_KEY_HANDLE_INVALID, "the wrapping key handle is invalid"),
    RV(CKR_WRAPPING_KEY_SIZE_RANGE, "the wrapping key has the wrong size"),
    RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
       "the wrapping key has the wrong type"),
    RV(CKR_RANDOM_SEED_NOT_SUPPORTED, "the token's generator cannot be seeded"),
    RV(CKR_RANDOM_NO_RNG, "the token has no random number generator"),
    RV(CKR_DOMAIN_PARAMS_INVALID, "the domain parameters are invalid"),
    RV(CKR_CURVE_NOT_SUPPORTED, "the token does not support this curve"),
    RV(CKR_BUFFER_TOO_SMALL, "the output buffer is too small"),
    RV(CKR_SAVED_STATE_INVALID, "the saved state is invalid"),
    RV(CKR_INFORMATION_SENSITIVE, "the information is sensitive"),
    RV(CKR_STATE_UNSAVEABLE, "the operation state cannot be saved"),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED, "the module is not initialized"),
    RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, "the module is already initialized"),
    RV(CKR_MUTEX_BAD, "a mutex is invalid"),
    RV(CKR_MUTEX_NOT_LOCKED, "a mutex is not locked"),
    RV(CKR_NEW_PIN_MODE, "the token asks for a new PIN"),
    RV(CKR_NEXT_OTP, "the token asks for the next one-time password"),
    RV(CKR_EXCEEDED_MAX_ITERATIONS, "the iteration count is too high"),
    RV(CKR_FIPS_SELF_TEST_FAILED, "the FIPS self-test failed"),
    RV(CKR_LIBRARY_LOAD_FAILED,
       "a library the module needs could not be loaded"),
    RV(CKR_PIN_TOO_WEAK, "the PIN is too weak"),
    RV(CKR_PUBLIC_KEY_INVALID, "the public key is invalid"),
    RV(CKR_FUNCTION_REJECTED, "the user rejected the function"),
    {0xF0UL, "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
     "the unwrapping key handle is invalid"},
    {0x201UL, "CKR_TOKEN_RESOURCE_EXCEEDED", "the token ran out of resources"},
    {0x202UL, "CKR_OPERATION_CANCEL_FAILED",
     "the operation could not be cancelled"},
    {0x203UL, "CKR_KEY_EXHAUSTED", "the key has been used up"},
    {P11_RV_URI_INVALID, "P11CA_URI_INVALID", "the pkcs11: URI is invalid"},
    {P11_RV_NO_TOKEN, "P11CA_NO_TOKEN", "no token matches"},
    {P11_RV_NO_OBJECT, "P11CA_NO_OBJECT", "no object matches"},
    {P11_RV_AMBIGUOUS, "P11CA_AMBIGUOUS",
     "several objects match where one is needed"},
    {P11_RV_PIN_SOURCE, "P11CA_PIN_SOURCE", "the PIN source cannot be used"},
    {P11_RV_PIN_REFUSED, "P11CA_PIN_REFUSED",
     "this PIN was refused before and is not tried again automatically, so that the token is not locked"},
    {P11_RV_NO_PIN, "P11CA_NO_PIN", "a PIN is needed but none was given"},
    {P11_RV_BAD_INPUT, "P11CA_BAD_INPUT", "the input is invalid"},
    {P11_RV_NO_MODULE, "P11CA_NO_MODULE",
     "the PKCS#11 module cannot be loaded"},
    {P11_RV_NO_KEY_MATCH, "P11CA_NO_KEY_MATCH",
     "no key on the token matches the certificate"},
    {P11_RV_EXISTS, "P11CA_EXISTS",
     "an object with this id or label exists already"},
    {P11_RV_URI_MODULE, "P11CA_URI_MODULE",
     "a pkcs11: URI may not load a PKCS#11 module"},
};

static const struct rv_desc *rv_lookup(CK_RV rv)
{
    for (size_t i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++)
        if (rv_table[i].rv == rv)
            return &rv_table[i];
    return NULL;
}

enum p11_class p11_rv_class(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return P11_CLASS_OK;
    case P11_RV_URI_INVALID:
    case P11_RV_BAD_INPUT:
    case P11_RV_AMBIGUOUS:
    case P11_RV_EXISTS:
    case P11_RV_NO_KEY_MATCH:
    case P11_RV_URI_MODULE:
        return P11_CLASS_INPUT;
    case P11_RV_NO_TOKEN:
    case P11_RV_NO_OBJECT:
        return P11_CLASS_NOT_FOUND;
    case P11_RV_PIN_SOURCE:
    case P11_RV_PIN_REFUSED:
    case P11_RV_NO_PIN:
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
        return P11_CLASS_PIN;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
        return P11_CLASS_UNSUPPORTED;
    case CKR_HOST_MEMORY:
        return P11_CLASS_NO_MEMORY;
    default:
        return P11_CLASS_TOKEN;
    }
}

const char *p11_rv_name(CK_RV rv)
{
    static _Thread_local char buf[32];
    const struct rv_desc *d = rv_lookup(rv);

    if (d)
        return d->name;
    snprintf(buf, sizeof(buf), "CKR_0x%08lx", (unsigned long)rv);
    return buf;
}

const char *p11_rv_text(CK_RV rv)
{
    const struct rv_desc *d = rv_lookup(rv);

    if (d)
        return d->text;
    if (rv & CKR_VENDOR_DEFINED)
        return "vendor-defined error of the module";
    return "unknown error code";
}

static _Thread_local char err_msg[1024];
static _Thread_local CK_RV err_rv;

const char *p11_error_message(void)
{
    return err_msg[0] ? err_msg : "no error";
}

CK_RV p11_error_rv(void)
{
    return err_rv;
}

void p11_error_clear(void)
{
    err_msg[0] = '\0';
    err_rv = CKR_OK;
}

void p11_error_restore(CK_RV rv, const char *msg)
{
    snprintf(err_msg, sizeof(err_msg), "%s", msg);
    err_rv = rv;
}

/* Append to @buf at *@n, never past @size; keeps @buf NUL-terminated. */
static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void vappend(char *buf, size_t size, size_t *n, const char *fmt,
                    va_list ap) __attribute__((format(printf, 4, 0)));
static void vappend(char *buf, size_t size, size_t *n, const char *fmt,
                    va_list ap)
{
    int r;

    if (*n + 1 >= size)
        return;
    r = vsnprintf(buf + *n, size - *n, fmt, ap);
    if (r > 0)
        *n = *n + (size_t)r >= size ? size - 1 : *n + (size_t)r;
}

static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vappend(buf, size, n, fmt, ap);
    va_end(ap);
}

/* The function behind the macro of p11.h. */
#undef p11_error_set
CK_RV p11_error_set(CK_RV rv, const char *call, const p11_token *tok,
                    const char *what, const char *fmt, ...)
{
    char buf[sizeof(err_msg)];
    size_t n = 0;
    va_list ap;

    buf[0] = '\0';
    if (call)
        append(buf, sizeof(buf), &n, "%s", call);
    if (tok)
        append(buf, sizeof(buf), &n, "%s%s", n ? " on " : "",
               p11_token_describe(tok));
    if (what && *what)
        append(buf, sizeof(buf), &n, "%s%s", n ? ", " : "", what);
    if (n)
        append(buf, sizeof(buf), &n, ": ");
    if (rv >= P11_RV_BASE && rv < P11_RV_BASE + 0x100 && fmt) {
        /* Our own codes: the detail says it all, the name is for grep. */
        va_start(ap, fmt);
        vappend(buf, sizeof(buf), &n, fmt, ap);
        va_end(ap);
        append(buf, sizeof(buf), &n, " (%s)", p11_rv_name(rv));
    } else {
        append(buf, sizeof(buf), &n, "%s (%s)", p11_rv_name(rv),
               p11_rv_text(rv));
        if (fmt) {
            append(buf, sizeof(buf), &n, ": ");
            va_start(ap, fmt);
            vappend(buf, sizeof(buf), &n, fmt, ap);
            va_end(ap);
        }
    }
    /* @buf may be built from the old message; copy at the end. */
    memcpy(err_msg, buf, sizeof(err_msg));
    err_rv = rv;
    LOG_DBG(P11, "%s", err_msg);
    return rv;
}

void p11_copy_padded(char *dst, size_t dstlen, const CK_UTF8CHAR *src,
                     size_t srclen)
{
    size_t n = srclen;

    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
        n--;
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

const char *p11_hex(const unsigned char *p, size_t n, char *buf, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    bool fits = 2 * n + 1 <= len;

    for (size_t i = 0; i < n; i++) {
        if (!fits && o + 6 > len) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        buf[o++] = hx[p[i] >> 4];
        buf[o++] = hx[p[i] & 15];
    }
    buf[o] = '\0';
    return buf;
}
