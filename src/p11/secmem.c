/* SPDX-License-Identifier: Apache-2.0 */
/* Memory for PINs that are kept: OpenSSL's secure heap when the application
 * has one, else locked pages of our own, left out of core dumps. */
#include "config.h"

#include "internal.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

/* The size of our own mapping for @n bytes: whole pages. */
static size_t pages_for(size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t p = page > 0 ? (size_t)page : 4096;

    return (n + p - 1) / p * p;
}

void *p11_secure_zalloc(size_t n)
{
    size_t len;
    void *p;

    if (n == 0)
        return NULL;
    /*
     * A provider cannot set up OpenSSL's secure heap (the application owns
     * its libcrypto); the CLI does, at start.  Where there is one, use it.
     */
    if (CRYPTO_secure_malloc_initialized())
        return OPENSSL_secure_zalloc(n);
    len = pages_for(n);
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
             0);
    if (p == MAP_FAILED)
        return NULL;
    /* Not swapped out, not in a core dump; neither is fatal if refused
     * (RLIMIT_MEMLOCK): the buffer is still wiped when freed. */
    if (mlock(p, len) != 0)
        LOG_DBG(P11, "mlock of a PIN buffer refused: it may be swapped out");
#ifdef MADV_DONTDUMP
    (void)madvise(p, len, MADV_DONTDUMP);
#endif
    return p; /* mmap gives zeroed pages */
}

void p11_secure_free(void *p, size_t n)
{
    size_t len;

    if (!p)
        return;
    /* The secure heap may have been set up since: ask where @p is. */
    if (CRYPTO_secure_allocated(p)) {
        OPENSSL_secure_clear_free(p, n);
        return;
    }
    len = pages_for(n);
    OPENSSL_cleanse(p, len);
    (void)munlock(p, len);
    (void)munmap(p, len);
}
