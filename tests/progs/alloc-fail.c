/* SPDX-License-Identifier: Apache-2.0 */
/* Counting wrappers (ld --wrap) for the allocation calls of the code
 * linked into a test driver: libc's and OpenSSL's allocators, and the
 * p11-kit calls that fail without memory; the Nth call counted fails. */
#include "config.h"

#include "alloc-fail.h"

#include <stdatomic.h>
#include <stddef.h>

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

static atomic_bool armed;
static atomic_ulong calls;
static unsigned long fail_at;
static const char *_Atomic failed;

void alloc_fail_arm(unsigned long n)
{
    fail_at = n;
    failed = NULL;
    atomic_store(&calls, 0);
    atomic_store(&armed, true);
}

unsigned long alloc_fail_disarm(void)
{
    atomic_store(&armed, false);
    return atomic_load(&calls);
}

bool alloc_fail_hit(void)
{
    return failed != NULL;
}

const char *alloc_fail_what(void)
{
    return failed;
}

/* Count the call @what; whether it is the one that fails. */
static bool fail_now(const char *what)
{
    if (!atomic_load(&armed) || atomic_fetch_add(&calls, 1) + 1 != fail_at)
        return false;
    failed = what;
    return true;
}

/* What the wrappers call when they do not fail (ld --wrap's names). */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_CRYPTO_malloc(size_t n, const char *file, int line);
void *__real_CRYPTO_zalloc(size_t n, const char *file, int line);
void *__real_CRYPTO_realloc(void *p, size_t n, const char *file, int line);
char *__real_CRYPTO_strdup(const char *s, const char *file, int line);
char *__real_CRYPTO_strndup(const char *s, size_t n, const char *file,
                            int line);
void *__real_CRYPTO_memdup(const void *p, size_t n, const char *file, int line);
void *__real_CRYPTO_secure_malloc(size_t n, const char *file, int line);
void *__real_CRYPTO_secure_zalloc(size_t n, const char *file, int line);
P11KitUri *__real_p11_kit_uri_new(void);
int __real_p11_kit_uri_parse(const char *s, P11KitUriType type, P11KitUri *uri);
int __real_p11_kit_uri_format(P11KitUri *uri, P11KitUriType type, char **s);
CK_FUNCTION_LIST *__real_p11_kit_module_load(const char *path, int flags);
CK_FUNCTION_LIST **__real_p11_kit_modules_load_and_initialize(int flags);
CK_RV __real_p11_kit_module_initialize(CK_FUNCTION_LIST *module);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_CRYPTO_malloc(size_t n, const char *file, int line);
void *__wrap_CRYPTO_zalloc(size_t n, const char *file, int line);
void *__wrap_CRYPTO_realloc(void *p, size_t n, const char *file, int line);
char *__wrap_CRYPTO_strdup(const char *s, const char *file, int line);
char *__wrap_CRYPTO_strndup(const char *s, size_t n, const char *file,
                            int line);
void *__wrap_CRYPTO_memdup(const void *p, size_t n, const char *file, int line);
void *__wrap_CRYPTO_secure_malloc(size_t n, const char *file, int line);
void *__wrap_CRYPTO_secure_zalloc(size_t n, const char *file, int line);
P11KitUri *__wrap_p11_kit_uri_new(void);
int __wrap_p11_kit_uri_parse(const char *s, P11KitUriType type, P11KitUri *uri);
int __wrap_p11_kit_uri_format(P11KitUri *uri, P11KitUriType type, char **s);
CK_FUNCTION_LIST *__wrap_p11_kit_module_load(const char *path, int flags);
CK_FUNCTION_LIST **__wrap_p11_kit_modules_load_and_initialize(int flags);
CK_RV __wrap_p11_kit_module_initialize(CK_FUNCTION_LIST *module);

void *__wrap_malloc(size_t n)
{
    return fail_now("malloc") ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now("calloc") ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now("realloc") ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now("strdup") ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now("strndup") ? NULL : __real_strndup(s, n);
}

void *__wrap_CRYPTO_malloc(size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_malloc") ? NULL
                                      : __real_CRYPTO_malloc(n, file, line);
}

void *__wrap_CRYPTO_zalloc(size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_zalloc") ? NULL
                                      : __real_CRYPTO_zalloc(n, file, line);
}

void *__wrap_CRYPTO_realloc(void *p, size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_realloc")
               ? NULL
               : __real_CRYPTO_realloc(p, n, file, line);
}

char *__wrap_CRYPTO_strdup(const char *s, const char *file, int line)
{
    return fail_now("OPENSSL_strdup") ? NULL
                                      : __real_CRYPTO_strdup(s, file, line);
}

char *__wrap_CRYPTO_strndup(const char *s, size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_strndup")
               ? NULL
               : __real_CRYPTO_strndup(s, n, file, line);
}

void *__wrap_CRYPTO_memdup(const void *p, size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_memdup") ? NULL
                                      : __real_CRYPTO_memdup(p, n, file, line);
}

void *__wrap_CRYPTO_secure_malloc(size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_secure_malloc")
               ? NULL
               : __real_CRYPTO_secure_malloc(n, file, line);
}

void *__wrap_CRYPTO_secure_zalloc(size_t n, const char *file, int line)
{
    return fail_now("OPENSSL_secure_zalloc")
               ? NULL
               : __real_CRYPTO_secure_zalloc(n, file, line);
}

P11KitUri *__wrap_p11_kit_uri_new(void)
{
    return fail_now("p11_kit_uri_new") ? NULL : __real_p11_kit_uri_new();
}

int __wrap_p11_kit_uri_parse(const char *s, P11KitUriType type, P11KitUri *uri)
{
    return fail_now("p11_kit_uri_parse")
               ? P11_KIT_URI_NO_MEMORY
               : __real_p11_kit_uri_parse(s, type, uri);
}

int __wrap_p11_kit_uri_format(P11KitUri *uri, P11KitUriType type, char **s)
{
    return fail_now("p11_kit_uri_format")
               ? P11_KIT_URI_NO_MEMORY
               : __real_p11_kit_uri_format(uri, type, s);
}

CK_FUNCTION_LIST *__wrap_p11_kit_module_load(const char *path, int flags)
{
    return fail_now("p11_kit_module_load")
               ? NULL
               : __real_p11_kit_module_load(path, flags);
}

CK_FUNCTION_LIST **__wrap_p11_kit_modules_load_and_initialize(int flags)
{
    return fail_now("p11_kit_modules_load_and_initialize")
               ? NULL
               : __real_p11_kit_modules_load_and_initialize(flags);
}

CK_RV __wrap_p11_kit_module_initialize(CK_FUNCTION_LIST *module)
{
    return fail_now("p11_kit_module_initialize")
               ? CKR_HOST_MEMORY
               : __real_p11_kit_module_initialize(module);
}
