/* SPDX-License-Identifier: Apache-2.0 */
/* Draws from the provider's RAND "P11CA-RAND" (the token's generator):
 * directly, as the parent of OpenSSL's CTR-DRBG, and measures bytes per
 * second against OpenSSL's default generator (scripts/bench). */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static OSSL_LIB_CTX *libctx;

/* The error queue with each error's data (the provider's message). */
static void print_errors(void)
{
    ERR_print_errors_fp(stderr);
}

static int usage(void)
{
    fprintf(stderr, "usage: prov-rand source|drbg BYTES\n"
                    "       prov-rand bench SECONDS REQUEST-BYTES\n");
    return 2;
}

/* P11CA-RAND, instantiated: the token's generator. */
static EVP_RAND_CTX *source(void)
{
    EVP_RAND *r = EVP_RAND_fetch(libctx, "P11CA-RAND", NULL);
    EVP_RAND_CTX *c = r ? EVP_RAND_CTX_new(r, NULL) : NULL;

    EVP_RAND_free(r);
    if (c && !EVP_RAND_instantiate(c, 256, 0, NULL, 0, NULL)) {
        EVP_RAND_CTX_free(c);
        c = NULL;
    }
    return c;
}

/* OpenSSL's CTR-DRBG (AES-256) with @parent as its seed source. */
static EVP_RAND_CTX *drbg(EVP_RAND_CTX *parent)
{
    EVP_RAND *r = EVP_RAND_fetch(libctx, "CTR-DRBG", "provider=default");
    EVP_RAND_CTX *c = r ? EVP_RAND_CTX_new(r, parent) : NULL;
    OSSL_PARAM p[2];

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER,
                                            (char *)"AES-256-CTR", 0);
    p[1] = OSSL_PARAM_construct_end();
    EVP_RAND_free(r);
    if (c && !EVP_RAND_instantiate(c, 256, 0, NULL, 0, p)) {
        EVP_RAND_CTX_free(c);
        c = NULL;
    }
    return c;
}

/* Write @n bytes of @c as hex on one line. */
static int draw(EVP_RAND_CTX *c, size_t n)
{
    unsigned char *buf = malloc(n ? n : 1);
    int ok = buf && EVP_RAND_generate(c, buf, n, 256, 0, NULL, 0);

    for (size_t i = 0; ok && i < n; i++)
        printf("%02x", buf[i]);
    if (ok)
        printf("\n");
    free(buf);
    return ok;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes per second of @c (NULL: RAND_bytes) in requests of @req bytes. */
static double rate(EVP_RAND_CTX *c, double seconds, size_t req)
{
    unsigned char *buf = malloc(req);
    double t0 = now(), t;
    size_t total = 0;

    if (!buf)
        return 0;
    do {
        int ok = c ? EVP_RAND_generate(c, buf, req, 256, 0, NULL, 0)
                   : RAND_bytes_ex(libctx, buf, req, 256);
        if (!ok) {
            free(buf);
            return 0;
        }
        total += req;
    } while ((t = now() - t0) < seconds);
    free(buf);
    return (double)total / t;
}

static int bench(double seconds, size_t req)
{
    EVP_RAND_CTX *src = source(), *d = src ? drbg(src) : NULL;
    double token, seeded, deflt;

    if (!d) {
        EVP_RAND_CTX_free(src);
        return 0;
    }
    token = rate(src, seconds, req);
    seeded = rate(d, seconds, req);
    deflt = rate(NULL, seconds, req);
    printf("P11CA-RAND %zu-byte requests: %.0f bytes/s\n", req, token);
    printf("CTR-DRBG seeded from P11CA-RAND: %.0f bytes/s\n", seeded);
    printf("default DRBG (RAND_bytes): %.0f bytes/s\n", deflt);
    printf("token / default: %.4f\n", deflt > 0 ? token / deflt : 0);
    EVP_RAND_CTX_free(d);
    EVP_RAND_CTX_free(src);
    return token > 0 && seeded > 0 && deflt > 0;
}

int main(int argc, char **argv)
{
    OSSL_PROVIDER *p11ca, *deflt;
    EVP_RAND_CTX *src = NULL, *d = NULL;
    int ok = 0;

    if (argc < 3)
        return usage();
    libctx = OSSL_LIB_CTX_new();
    p11ca = OSSL_PROVIDER_load(libctx, "p11ca");
    deflt = OSSL_PROVIDER_load(libctx, "default");
    if (!p11ca || !deflt) {
        print_errors();
        fprintf(stderr, "cannot load the providers\n");
        return 1;
    }
    if (strcmp(argv[1], "bench") == 0 && argc == 4) {
        ok = bench(atof(argv[2]), (size_t)atol(argv[3]));
    } else if (strcmp(argv[1], "source") == 0) {
        ok = (src = source()) != NULL && draw(src, (size_t)atol(argv[2]));
    } else if (strcmp(argv[1], "drbg") == 0) {
        ok = (src = source()) != NULL && (d = drbg(src)) != NULL
             && draw(d, (size_t)atol(argv[2]));
    } else {
        return usage();
    }
    if (!ok)
        print_errors();
    EVP_RAND_CTX_free(d);
    EVP_RAND_CTX_free(src);
    OSSL_PROVIDER_unload(deflt);
    OSSL_PROVIDER_unload(p11ca);
    OSSL_LIB_CTX_free(libctx);
    return ok ? 0 : 1;
}
