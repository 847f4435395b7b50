/* SPDX-License-Identifier: Apache-2.0 */
/* Drives the provider through EVP and OSSL_STORE from many threads and
 * from forked children; every signature is verified in software. */
#include "config.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *verify_key; /* software copy of the public key */
static _Atomic int failures;
static int iterations = 100;
static const char *key_uri;
static const char *other_uri; /* "modules": the key through another module */

static void tap(int ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int tap_n;

static void tap(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("%sok %d - ", ok ? "" : "not ", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void print_errors(void)
{
    unsigned long e;
    char buf[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        printf("# %s\n", buf);
    }
}

/*
 * PROV_EVP_PASSIN=FILE: the passphrase callback answers with the content of
 * FILE, as a user typing the PIN at a prompt would (the provider cannot
 * tell the two apart).
 */
static int passin_read(UI *ui, UI_STRING *uis)
{
    const char *path = getenv("PROV_EVP_PASSIN");
    char pin[256] = "";
    size_t n = 0;
    FILE *f;
    int ok;

    if (UI_get_string_type(uis) != UIT_PROMPT)
        return 1;
    f = path ? fopen(path, "r") : NULL;
    if (f) {
        n = fread(pin, 1, sizeof(pin) - 1, f);
        fclose(f);
    }
    pin[n] = '\0';
    pin[strcspn(pin, "\r\n")] = '\0';
    ok = f && UI_set_result(ui, uis, pin) == 0;
    OPENSSL_cleanse(pin, sizeof(pin));
    return ok;
}

/* Load the private key at @uri through OSSL_STORE in our library context. */
static EVP_PKEY *load_key(const char *uri)
{
    static UI_METHOD *ui;
    OSSL_STORE_CTX *sc;
    EVP_PKEY *pk = NULL;

    if (!ui && getenv("PROV_EVP_PASSIN")) {
        ui = UI_create_method("prov-evp passin");
        if (ui)
            UI_method_set_reader(ui, passin_read);
    }
    sc = OSSL_STORE_open_ex(uri, libctx, NULL, ui, NULL, NULL, NULL, NULL);
    if (!sc)
        return NULL;
    OSSL_STORE_expect(sc, OSSL_STORE_INFO_PKEY);
    while (!pk && !OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(sc);
        if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
        if (!info)
            break;
    }
    OSSL_STORE_close(sc);
    return pk;
}

/* A software public key (default library context) to check signatures. */
static EVP_PKEY *software_public(EVP_PKEY *pk)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int n = i2d_PUBKEY(pk, &der);

    if (n > 0) {
        p = der;
        pub = d2i_PUBKEY(NULL, &p, n);
    }
    OPENSSL_free(der);
    return pub;
}

/* Sign a random message with @pk and verify it in software. */
static int sign_once(EVP_PKEY *pk)
{
    unsigned char msg[64], sig[1024];
    size_t siglen = sizeof(sig);
    const char *md = EVP_PKEY_is_a(pk, "ED25519") ? NULL : "SHA256";
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    int ok = 0;

    if (!m || !v || RAND_bytes(msg, sizeof(msg)) != 1)
        goto out;
    if (EVP_DigestSignInit_ex(m, NULL, md, libctx, NULL, pk, NULL) != 1
        || EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1)
        goto out;
    if (EVP_DigestVerifyInit_ex(v, NULL, md, NULL, NULL, verify_key, NULL) != 1
        || EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) != 1)
        goto out;
    ok = 1;
out:
    if (!ok)
        print_errors();
    EVP_MD_CTX_free(m);
    EVP_MD_CTX_free(v);
    return ok;
}

static void *signer(void *arg)
{
    EVP_PKEY *pk = arg;

    for (int i = 0; i < iterations; i++)
        if (!sign_once(pk))
            atomic_fetch_add(&failures, 1);
    return NULL;
}

/* Open and free the key again and again while others sign with it. */
static void *churner(void *arg)
{
    for (int i = 0; i < iterations / 4 + 1; i++) {
        EVP_PKEY *pk = load_key(key_uri);
        if (!pk || !sign_once(pk)) {
            print_errors();
            atomic_fetch_add(&failures, 1);
        }
        EVP_PKEY_free(pk);
    }
    return NULL;
}

static void run_threads(EVP_PKEY *pk, int nthreads)
{
    pthread_t t[64];
    int n = nthreads > 32 ? 32 : nthreads;

    atomic_store(&failures, 0);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, signer, pk);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    tap(atomic_load(&failures) == 0,
        "%d threads x %d signatures with one key, all verified (%d failed)", n,
        iterations, atomic_load(&failures));

    atomic_store(&failures, 0);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, i % 2 ? churner : signer, pk);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    tap(atomic_load(&failures) == 0,
        "%d threads opening/freeing the key while others sign (%d failed)", n,
        atomic_load(&failures));
}

/*
 * Load the key through @key_uri and @other_uri in turn (the same token key
 * through two PKCS#11 modules) and sign with what was loaded: every load
 * matches the URI against the tokens of both modules.
 */
static void *module_loader(void *arg)
{
    int first = (int)(intptr_t)arg;

    for (int i = 0; i < iterations; i++) {
        EVP_PKEY *pk = load_key((first + i) % 2 ? other_uri : key_uri);
        if (!pk || !sign_once(pk)) {
            print_errors();
            atomic_fetch_add(&failures, 1);
        }
        EVP_PKEY_free(pk);
    }
    return NULL;
}

/*
 * modules: the first load through @other_uri loads a second module while
 * the tokens of the first one are known; then @n threads load through both
 * URIs at once.
 */
static void run_modules(EVP_PKEY *pk, int n)
{
    pthread_t t[32];
    EVP_PKEY *other = load_key(other_uri);

    tap(other && sign_once(other) && sign_once(pk),
        "the key through a second module, then through the first again");
    if (!other)
        print_errors();
    EVP_PKEY_free(other);
    n = n < 1 ? 1 : n > 32 ? 32 : n;
    atomic_store(&failures, 0);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, module_loader, (void *)(intptr_t)i);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    tap(atomic_load(&failures) == 0,
        "%d threads x %d loads through the two modules in turn, signed and verified (%d failed)",
        n, iterations, atomic_load(&failures));
}

static void run_fork(EVP_PKEY *pk, int children)
{
    int good = 0;

    tap(sign_once(pk), "parent signs before fork");
    for (int i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int ok = 1;
            for (int j = 0; j < 10; j++)
                ok &= sign_once(pk);
            fflush(stdout);
            _exit(ok ? 0 : 1);
        }
        if (pid > 0) {
            int st = 0;
            waitpid(pid, &st, 0);
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                good++;
        }
    }
    tap(good == children,
        "%d of %d forked children signed with the parent's key", good,
        children);
    tap(sign_once(pk), "parent signs after its children exited");
}

/* Threads that ask a freshly loaded key for its public half at once. */
struct pub_arg {
    EVP_PKEY *pk;
    unsigned char *der;
    int len;
};

static void *pub_reader(void *arg)
{
    struct pub_arg *a = arg;

    a->len = i2d_PUBKEY(a->pk, &a->der);
    return NULL;
}

/*
 * info: what OpenSSL caches of a token key at load (bits, security bits,
 * maximum size, group) equals what its public half says once read; @n
 * threads read that public half at the same moment, and all get one key.
 */
static void run_info(EVP_PKEY *pk, int n)
{
    int bits = EVP_PKEY_get_bits(pk), sec = EVP_PKEY_get_security_bits(pk);
    int size = EVP_PKEY_get_size(pk);
    char g1[64] = "", g2[64] = "";
    struct pub_arg args[16];
    pthread_t th[16];
    int same = 1;
    EVP_PKEY *pub;

    EVP_PKEY_get_group_name(pk, g1, sizeof(g1), NULL);
    n = n < 1 ? 1 : n > 16 ? 16 : n;
    for (int i = 0; i < n; i++) {
        args[i] = (struct pub_arg){pk, NULL, 0};
        pthread_create(&th[i], NULL, pub_reader, &args[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++)
        same = same && args[i].len > 0 && args[i].len == args[0].len
               && memcmp(args[i].der, args[0].der, (size_t)args[0].len) == 0;
    for (int i = 0; i < n; i++)
        OPENSSL_free(args[i].der);
    tap(same, "%d threads read the public half at once and agree", n);
    pub = software_public(pk);
    tap(pub != NULL, "the public half exports");
    if (!pub)
        return;
    EVP_PKEY_get_group_name(pub, g2, sizeof(g2), NULL);
    tap(bits == EVP_PKEY_get_bits(pub), "bits at load %d = %d", bits,
        EVP_PKEY_get_bits(pub));
    tap(sec == EVP_PKEY_get_security_bits(pub), "security bits at load %d = %d",
        sec, EVP_PKEY_get_security_bits(pub));
    tap(size == EVP_PKEY_get_size(pub), "maximum size at load %d = %d", size,
        EVP_PKEY_get_size(pub));
    tap(strcmp(g1, g2) == 0, "group at load '%s' = '%s'", g1, g2);
    EVP_PKEY_free(pub);
}

int main(int argc, char **argv)
{
    OSSL_PROVIDER *p11ca, *deflt;
    EVP_PKEY *pk;
    const char *mode;
    int n;

    if (argc < 4) {
        fprintf(stderr, "usage: prov-evp threads|fork|sign|info URI N [ITER]\n"
                        "       prov-evp modules URI N ITER URI2\n");
        return 2;
    }
    mode = argv[1];
    key_uri = argv[2];
    n = atoi(argv[3]);
    if (argc > 4)
        iterations = atoi(argv[4]);
    if (strcmp(mode, "modules") == 0 && argc < 6) {
        fprintf(stderr, "usage: prov-evp modules URI N ITER URI2\n");
        return 2;
    }
    other_uri = argc > 5 ? argv[5] : NULL;
    /* PROV_EVP_DEFAULT_CTX: the providers in OpenSSL's default context
     * (as openssl.cnf or `openssl -provider` load them), else in one of
     * the program's own. */
    libctx = getenv("PROV_EVP_DEFAULT_CTX") ? NULL : OSSL_LIB_CTX_new();
    p11ca = OSSL_PROVIDER_load(libctx, "p11ca");
    deflt = OSSL_PROVIDER_load(libctx, "default");
    if (!p11ca || !deflt) {
        print_errors();
        printf("Bail out! cannot load the providers\n");
        return 1;
    }
    pk = load_key(key_uri);
    if (pk && strcmp(mode, "info") == 0) {
        tap(1, "key loaded through OSSL_STORE");
        run_info(pk, n);
        EVP_PKEY_free(pk);
        OSSL_PROVIDER_unload(p11ca);
        OSSL_PROVIDER_unload(deflt);
        OSSL_LIB_CTX_free(libctx);
        printf("1..%d\n", tap_n);
        return 0;
    }
    verify_key = pk ? software_public(pk) : NULL;
    tap(pk && verify_key, "key loaded through OSSL_STORE");
    if (!pk || !verify_key) {
        print_errors();
        return 1;
    }
    if (strcmp(mode, "threads") == 0) {
        run_threads(pk, n);
    } else if (strcmp(mode, "modules") == 0) {
        run_modules(pk, n);
    } else if (strcmp(mode, "sign") == 0) {
        int good = 0;
        for (int i = 0; i < n; i++)
            good += sign_once(pk);
        tap(good == n, "%d of %d signatures made and verified", good, n);
    } else {
        run_fork(pk, n);
    }
    EVP_PKEY_free(pk);
    EVP_PKEY_free(verify_key);
    OSSL_PROVIDER_unload(p11ca);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(libctx);
    printf("1..%d\n", tap_n);
    return 0;
}
