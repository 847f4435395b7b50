/* SPDX-License-Identifier: Apache-2.0 */
/* Signing throughput in one run: raw C_Sign on the token (the floor), the
 * p11ca provider through EVP, and software OpenSSL; printed as ratios. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <p11-kit/p11-kit.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
    const char *module;    /* PKCS#11 module for the raw loop */
    const char *token;     /* token label */
    const char *label;     /* key label */
    const char *pin;       /* PIN (benchmark token only) */
    const char *uri;       /* key URI for the provider */
    const char *kind;      /* "ec" or "rsa" */
    double seconds;
    int threads;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- raw PKCS#11: C_SignInit + C_Sign of a SHA-256 value ---- */

struct raw_ctx {
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE key;
    CK_MECHANISM_TYPE mech;
    const struct bench *b;
    long count;
};

static int raw_setup(struct raw_ctx *r, const struct bench *b)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16, found = 0;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) },
                          { CKA_LABEL, (void *)b->label, strlen(b->label) } };

    r->b = b;
    r->f = p11_kit_module_load(b->module, 0);
    if (!r->f || p11_kit_module_initialize(r->f) != CKR_OK)
        return 0;
    if (r->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char label[33];
        if (r->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        memcpy(label, ti.label, 32);
        label[32] = '\0';
        for (int j = 31; j >= 0 && label[j] == ' '; j--)
            label[j] = '\0';
        if (strcmp(label, b->token) == 0)
            r->slot = slots[i];
    }
    if (r->f->C_OpenSession(r->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)
            != CKR_OK
        || r->f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)b->pin, strlen(b->pin))
               != CKR_OK
        || r->f->C_FindObjectsInit(s, t, 2) != CKR_OK
        || r->f->C_FindObjects(s, &r->key, 1, &found) != CKR_OK)
        return 0;
    r->f->C_FindObjectsFinal(s);
    /* This session stays open: it keeps the token logged in. */
    r->mech = strcmp(b->kind, "rsa") == 0 ? CKM_RSA_PKCS : CKM_ECDSA;
    return found == 1;
}

static void *raw_loop(void *arg)
{
    struct raw_ctx *r = arg;
    unsigned char in[51], sig[1024];
    CK_MECHANISM m = { r->mech, NULL, 0 };
    CK_SESSION_HANDLE s;
    CK_ULONG siglen;
    size_t inlen = r->mech == CKM_RSA_PKCS ? 51 : 32; /* DigestInfo or hash */
    double end = now() + r->b->seconds;

    RAND_bytes(in, sizeof(in));
    if (r->f->C_OpenSession(r->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)
        != CKR_OK)
        return NULL;
    while (now() < end) {
        siglen = sizeof(sig);
        if (r->f->C_SignInit(s, &m, r->key) != CKR_OK
            || r->f->C_Sign(s, in, inlen, sig, &siglen) != CKR_OK)
            break;
        r->count++;
    }
    r->f->C_CloseSession(s);
    return NULL;
}

/* ---- EVP: the provider (token) or the default provider (software) ---- */

struct evp_ctx {
    OSSL_LIB_CTX *lib;
    EVP_PKEY *pk;
    const struct bench *b;
    long count;
};

static void *evp_loop(void *arg)
{
    struct evp_ctx *e = arg;
    unsigned char msg[64], sig[1024];
    size_t siglen;
    double end = now() + e->b->seconds;
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    RAND_bytes(msg, sizeof(msg));
    while (m && now() < end) {
        siglen = sizeof(sig);
        if (EVP_DigestSignInit_ex(m, NULL, "SHA256", e->lib, NULL, e->pk,
                                  NULL) != 1
            || EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1) {
            ERR_print_errors_fp(stderr);
            break;
        }
        e->count++;
    }
    EVP_MD_CTX_free(m);
    return NULL;
}

static EVP_PKEY *load_uri(OSSL_LIB_CTX *lib, const char *uri)
{
    OSSL_STORE_CTX *sc = OSSL_STORE_open_ex(uri, lib, NULL, NULL, NULL, NULL,
                                            NULL, NULL);
    EVP_PKEY *pk = NULL;

    while (sc && !pk && !OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *i = OSSL_STORE_load(sc);
        if (!i)
            break;
        if (OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(i);
        OSSL_STORE_INFO_free(i);
    }
    OSSL_STORE_close(sc);
    return pk;
}

/* Run @fn in @n threads over per-thread contexts of @size bytes whose
 * counter is at @off; return signatures per second. */
static double run(void *(*fn)(void *), void *ctxs, size_t size, size_t off,
                  int n, double seconds)
{
    pthread_t t[64];
    long total = 0;

    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, fn, (char *)ctxs + (size_t)i * size);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < n; i++)
        total += *(long *)((char *)ctxs + (size_t)i * size + off);
    return (double)total / seconds;
}

int main(int argc, char **argv)
{
    struct bench b = { 0 };
    struct raw_ctx raw[64];
    struct evp_ctx tok[64], sw[64];
    OSSL_LIB_CTX *lib = OSSL_LIB_CTX_new();
    EVP_PKEY *pk, *swkey = NULL;
    EVP_PKEY_CTX *g;
    double r_raw, r_tok, r_sw;

    if (argc != 9) {
        fprintf(stderr, "usage: sign-bench MODULE TOKEN LABEL PINFILE URI "
                        "ec|rsa SECONDS THREADS\n");
        return 2;
    }
    b.module = argv[1];
    b.token = argv[2];
    b.label = argv[3];
    b.uri = argv[5];
    b.kind = argv[6];
    b.seconds = atof(argv[7]);
    b.threads = atoi(argv[8]);
    if (b.threads < 1 || b.threads > 64)
        b.threads = 1;
    {
        static char pin[256];
        FILE *f = fopen(argv[4], "r");
        if (!f || !fgets(pin, sizeof(pin), f))
            return 2;
        fclose(f);
        pin[strcspn(pin, "\r\n")] = '\0';
        b.pin = pin;
    }
    memset(raw, 0, sizeof(raw));
    if (!raw_setup(&raw[0], &b)) {
        fprintf(stderr, "sign-bench: raw PKCS#11 setup failed\n");
        return 1;
    }
    for (int i = 1; i < b.threads; i++)
        raw[i] = raw[0];
    OSSL_PROVIDER_load(lib, "p11ca");
    OSSL_PROVIDER_load(lib, "default");
    pk = load_uri(lib, b.uri);
    g = EVP_PKEY_CTX_new_from_name(NULL, strcmp(b.kind, "rsa") == 0 ? "RSA"
                                                                    : "EC",
                                   NULL);
    if (!pk || !g || EVP_PKEY_keygen_init(g) <= 0
        || (strcmp(b.kind, "rsa") == 0
                ? EVP_PKEY_CTX_set_rsa_keygen_bits(g, EVP_PKEY_get_bits(pk))
                : EVP_PKEY_CTX_set_group_name(g, "P-256")) <= 0
        || EVP_PKEY_keygen(g, &swkey) <= 0) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    for (int i = 0; i < b.threads; i++) {
        tok[i] = (struct evp_ctx){ lib, pk, &b, 0 };
        sw[i] = (struct evp_ctx){ NULL, swkey, &b, 0 };
    }
    r_raw = run(raw_loop, raw, sizeof(raw[0]), offsetof(struct raw_ctx, count),
                b.threads, b.seconds);
    r_tok = run(evp_loop, tok, sizeof(tok[0]),
                offsetof(struct evp_ctx, count), b.threads, b.seconds);
    r_sw = run(evp_loop, sw, sizeof(sw[0]), offsetof(struct evp_ctx, count),
               b.threads, b.seconds);
    printf("%s %d thread(s): raw C_Sign %.0f/s, p11ca provider %.0f/s, "
           "software %.0f/s\n", b.kind, b.threads, r_raw, r_tok, r_sw);
    printf("%s %d thread(s): provider/raw = %.3f, raw/software = %.3f\n",
           b.kind, b.threads, r_tok / r_raw, r_raw / r_sw);
    EVP_PKEY_CTX_free(g);
    EVP_PKEY_free(swkey);
    EVP_PKEY_free(pk);
    OSSL_LIB_CTX_free(lib);
    return 0;
}
