/* SPDX-License-Identifier: Apache-2.0 */
/* Signing throughput in one run, interleaved: raw C_SignInit+C_Sign on the
 * token (the limit), the p11ca provider through EVP_DigestSign, and a
 * software key; printed as signatures per second and ratios. */
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

#define ROUNDS 5

struct bench {
    const char *module; /* PKCS#11 module for the raw loop */
    const char *token;  /* token label */
    const char *label;  /* key label */
    const char *pin;    /* PIN (benchmark token only) */
    const char *uri;    /* key URI for the provider */
    const char *kind;   /* "ec", "rsa" or "ed25519" */
    double seconds;
    int threads;
    long iter; /* > 0: a fixed number of signatures (instruction counts) */
};

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
    double cpu; /* CPU seconds this thread spent */
    long count;
};

static int raw_setup(struct raw_ctx *r, const struct bench *b)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16, found = 0;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_LABEL, (void *)b->label, strlen(b->label)}};

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
    r->mech = strcmp(b->kind, "rsa") == 0       ? CKM_RSA_PKCS
              : strcmp(b->kind, "ed25519") == 0 ? 0x1057UL /* CKM_EDDSA */
                                                : CKM_ECDSA;
    return found == 1;
}

static void *raw_loop(void *arg)
{
    struct raw_ctx *r = arg;
    unsigned char in[64], sig[1024];
    CK_MECHANISM m = {r->mech, NULL, 0};
    CK_SESSION_HANDLE s;
    CK_ULONG siglen;
    /* A SHA-256 DigestInfo, a SHA-256 value, or the whole 64-byte message */
    size_t inlen = r->mech == CKM_RSA_PKCS ? 51
                   : r->mech == CKM_ECDSA  ? 32
                                           : 64;
    double end = now() + r->b->seconds;

    double c0;

    RAND_bytes(in, sizeof(in));
    if (r->f->C_OpenSession(r->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)
        != CKR_OK)
        return NULL;
    c0 = cpu_now();
    while (r->b->iter ? r->count < r->b->iter : now() < end) {
        siglen = sizeof(sig);
        if (r->f->C_SignInit(s, &m, r->key) != CKR_OK
            || r->f->C_Sign(s, in, inlen, sig, &siglen) != CKR_OK)
            break;
        r->count++;
    }
    r->cpu = cpu_now() - c0;
    r->f->C_CloseSession(s);
    return NULL;
}

/* ---- EVP: the provider (token) or the default provider (software) ---- */

struct evp_ctx {
    OSSL_LIB_CTX *lib;
    EVP_PKEY *pk;
    const struct bench *b;
    int fresh;
    double cpu;
    long count;
    const char *what; /* which count_ function runs it (keeps them apart) */
};

/*
 * One context per thread, initialised once; EVP_DigestSign per signature
 * (the provider's one-shot digest_sign: hash in software, one C_Sign).
 * With fresh=1, a new EVP_DigestSignInit on the same EVP_MD_CTX per
 * signature; with fresh=2, the TLS-server way: a new EVP_MD_CTX, a new
 * EVP_DigestSignInit, EVP_DigestSign and EVP_MD_CTX_free per signature, as
 * libssl does per handshake.
 */
static void *evp_loop(void *arg)
{
    struct evp_ctx *e = arg;
    unsigned char msg[64], sig[1024];
    size_t siglen;
    double end = now() + e->b->seconds;
    const char *md = strcmp(e->b->kind, "ed25519") == 0 ? NULL : "SHA256";
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int inited = 0;
    double c0 = cpu_now();

    RAND_bytes(msg, sizeof(msg));
    while (m && (e->b->iter ? e->count < e->b->iter : now() < end)) {
        siglen = sizeof(sig);
        if (e->fresh == 2) {
            EVP_MD_CTX_free(m);
            if (!(m = EVP_MD_CTX_new()))
                break;
        }
        if ((e->fresh || !inited)
            && EVP_DigestSignInit_ex(m, NULL, md, e->lib, NULL, e->pk, NULL)
                   != 1) {
            ERR_print_errors_fp(stderr);
            break;
        }
        inited = 1;
        if (EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1) {
            ERR_print_errors_fp(stderr);
            break;
        }
        e->count++;
    }
    e->cpu = cpu_now() - c0;
    EVP_MD_CTX_free(m);
    return NULL;
}

static EVP_PKEY *load_uri(OSSL_LIB_CTX *lib, const char *uri)
{
    OSSL_STORE_CTX *sc =
        OSSL_STORE_open_ex(uri, lib, NULL, NULL, NULL, NULL, NULL, NULL);
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
 * counter is at @off and CPU time at @cpuoff; return signatures per
 * second and set *@cpu_per_op (CPU seconds per signature). */
static double run(void *(*fn)(void *), void *ctxs, size_t size, size_t off,
                  size_t cpuoff, int n, double seconds, double *cpu_per_op)
{
    pthread_t t[64];
    long total = 0;
    double cpu = 0;

    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, fn, (char *)ctxs + (size_t)i * size);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < n; i++) {
        total += *(long *)((char *)ctxs + (size_t)i * size + off);
        cpu += *(double *)((char *)ctxs + (size_t)i * size + cpuoff);
    }
    *cpu_per_op = total ? cpu / (double)total : 0;
    return (double)total / seconds;
}

/*
 * Instruction mode (under callgrind): the same loops with a fixed count, in
 * functions of their own so that their inclusive costs can be compared.
 */
__attribute__((noinline)) static void *count_raw(void *arg)
{
    return raw_loop(arg);
}

__attribute__((noinline)) static void *count_p11ca(void *arg)
{
    return evp_loop(arg);
}

__attribute__((noinline)) static void *count_fresh(void *arg)
{
    ((struct evp_ctx *)arg)->fresh = 1; /* (and not folded into the above) */
    return evp_loop(arg);
}

__attribute__((noinline)) static void *count_tls(void *arg)
{
    ((struct evp_ctx *)arg)->fresh = 2;
    return evp_loop(arg);
}

/* The same two with a software key: what OpenSSL's default provider costs
 * per signature with a context reused, and the TLS-server way. */
__attribute__((noinline)) static void *count_sw(void *arg)
{
    ((struct evp_ctx *)arg)->fresh = 0;
    ((struct evp_ctx *)arg)->what = "software";
    return evp_loop(arg);
}

__attribute__((noinline)) static void *count_sw_tls(void *arg)
{
    ((struct evp_ctx *)arg)->fresh = 2;
    ((struct evp_ctx *)arg)->what = "software, TLS-server way";
    return evp_loop(arg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median of ROUNDS values (sorted in place). */
static double median(double *v)
{
    qsort(v, ROUNDS, sizeof(*v), cmp_double);
    return v[ROUNDS / 2];
}

/* Software key of the same kind, in the default library context. */
static EVP_PKEY *software_key(const char *kind, EVP_PKEY *like)
{
    EVP_PKEY_CTX *g;
    EVP_PKEY *k = NULL;
    int ok;

    if (strcmp(kind, "ed25519") == 0)
        g = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
    else
        g = EVP_PKEY_CTX_new_from_name(
            NULL, strcmp(kind, "rsa") == 0 ? "RSA" : "EC", NULL);
    ok = g && EVP_PKEY_keygen_init(g) > 0;
    if (ok && strcmp(kind, "rsa") == 0)
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(g, EVP_PKEY_get_bits(like)) > 0;
    if (ok && strcmp(kind, "ec") == 0)
        ok = EVP_PKEY_CTX_set_group_name(g, "P-256") > 0;
    if (ok)
        ok = EVP_PKEY_keygen(g, &k) > 0;
    EVP_PKEY_CTX_free(g);
    return ok ? k : NULL;
}

int main(int argc, char **argv)
{
    struct bench b = {0};
    struct raw_ctx raw[64];
    struct evp_ctx tok[64], sw[64], fresh[64];
    OSSL_LIB_CTX *lib = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *p11ca, *deflt;
    EVP_PKEY *pk, *swkey;
    double r_raw[ROUNDS], r_tok[ROUNDS], r_sw[ROUNDS], r_fresh[ROUNDS];
    double q_tok[ROUNDS], q_fresh[ROUNDS], q_sw[ROUNDS];
    double k_tok[ROUNDS], k_fresh[ROUNDS];
    double c_raw, c_tok, c_fresh, c_sw;

    if (argc != 9) {
        fprintf(stderr, "usage: provider-bench MODULE TOKEN LABEL PINFILE URI "
                        "ec|rsa|ed25519 SECONDS THREADS\n");
        return 2;
    }
    b.module = argv[1];
    b.token = argv[2];
    b.label = argv[3];
    b.uri = argv[5];
    b.kind = argv[6];
    b.seconds = atof(argv[7]);
    b.threads = atoi(argv[8]);
    b.iter = getenv("P11CA_BENCH_ITER") ? atol(getenv("P11CA_BENCH_ITER")) : 0;
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
        fprintf(stderr, "provider-bench: raw PKCS#11 setup failed\n");
        return 1;
    }
    for (int i = 1; i < b.threads; i++)
        raw[i] = raw[0];
    p11ca = OSSL_PROVIDER_load(lib, "p11ca");
    deflt = OSSL_PROVIDER_load(lib, "default");
    pk = load_uri(lib, b.uri);
    swkey = pk ? software_key(b.kind, pk) : NULL;
    if (!p11ca || !deflt || !pk || !swkey) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    if (b.iter > 0) {
        long iter = b.iter;

        /* Warm up first: fetches and caches are not per-signature costs. */
        b.iter = 10;
        tok[0] = (struct evp_ctx){lib, pk, &b, 0, 0, 0};
        raw_loop(&raw[0]);
        evp_loop(&tok[0]);
        fresh[1] = (struct evp_ctx){lib, pk, &b, 2, 0, 0};
        evp_loop(&fresh[1]);
        sw[1] = (struct evp_ctx){NULL, swkey, &b, 2, 0, 0};
        evp_loop(&sw[1]);
        b.iter = iter;
        tok[0] = (struct evp_ctx){lib, pk, &b, 0, 0, 0};
        raw[0].count = 0;
        count_raw(&raw[0]);
        count_p11ca(&tok[0]);
        fresh[0] = (struct evp_ctx){lib, pk, &b, 1, 0, 0};
        count_fresh(&fresh[0]);
        fresh[1] = (struct evp_ctx){lib, pk, &b, 2, 0, 0};
        count_tls(&fresh[1]);
        sw[0] = (struct evp_ctx){NULL, swkey, &b, 0, 0, 0};
        count_sw(&sw[0]);
        sw[1] = (struct evp_ctx){NULL, swkey, &b, 2, 0, 0};
        count_sw_tls(&sw[1]);
        printf("%s: %ld raw and %ld + %ld + %ld provider signatures, %ld + "
               "%ld software (compare the inclusive costs of count_raw, "
               "count_p11ca, count_fresh, count_tls, count_sw and "
               "count_sw_tls)\n",
               b.kind, raw[0].count, tok[0].count, fresh[0].count,
               fresh[1].count, sw[0].count, sw[1].count);
        return 0;
    }
    /*
     * Interleaved rounds, so that drift hits all of them alike; each round
     * gives ratios, and the median round is reported.
     */
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < b.threads; i++) {
            raw[i].count = 0;
            tok[i] = (struct evp_ctx){lib, pk, &b, 0, 0, 0};
            fresh[i] = (struct evp_ctx){lib, pk, &b, 1, 0, 0};
            sw[i] = (struct evp_ctx){NULL, swkey, &b, 0, 0, 0};
        }
        r_raw[round] =
            run(raw_loop, raw, sizeof(raw[0]), offsetof(struct raw_ctx, count),
                offsetof(struct raw_ctx, cpu), b.threads, b.seconds, &c_raw);
        r_tok[round] =
            run(evp_loop, tok, sizeof(tok[0]), offsetof(struct evp_ctx, count),
                offsetof(struct evp_ctx, cpu), b.threads, b.seconds, &c_tok);
        r_fresh[round] = run(
            evp_loop, fresh, sizeof(fresh[0]), offsetof(struct evp_ctx, count),
            offsetof(struct evp_ctx, cpu), b.threads, b.seconds, &c_fresh);
        r_sw[round] =
            run(evp_loop, sw, sizeof(sw[0]), offsetof(struct evp_ctx, count),
                offsetof(struct evp_ctx, cpu), b.threads, b.seconds, &c_sw);
        q_tok[round] = r_tok[round] / r_raw[round];
        q_fresh[round] = r_fresh[round] / r_raw[round];
        q_sw[round] = r_raw[round] / r_sw[round];
        /* CPU cost ratios: the same figure without scheduling noise. */
        k_tok[round] = c_raw / c_tok;
        k_fresh[round] = c_raw / c_fresh;
    }
    printf("%-8s %d  raw C_Sign %7.0f/s | p11ca %7.0f/s = %.3f x raw "
           "(CPU %.3f) | new ctx each %7.0f/s = %.3f x raw (CPU %.3f) | "
           "software %7.0f/s, raw = %.2f x software\n",
           b.kind, b.threads, median(r_raw), median(r_tok), median(q_tok),
           median(k_tok), median(r_fresh), median(q_fresh), median(k_fresh),
           median(r_sw), median(q_sw));
    EVP_PKEY_free(swkey);
    EVP_PKEY_free(pk);
    OSSL_PROVIDER_unload(p11ca);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(lib);
    return 0;
}
