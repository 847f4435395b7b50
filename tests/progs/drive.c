/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the p11 test drivers: options, test keys, sign+verify. */
#include "config.h"

#include "drive.h"

#include <errno.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* DER prefix of a SHA-256 DigestInfo (RFC 8017, section 9.2, note 1). */
static const unsigned char sha256_info[] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

int drive_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("FAIL: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return DRIVE_FAIL;
}

double drive_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_count(const char *s, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v == 0 || v > 1000000)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int drive_opts_parse(int argc, char **argv, struct drive_opts *o,
                     const char *usage)
{
    int c, bad = 0;

    o->pin_file = getenv("PINFILE");
    o->token = getenv("TOKEN");
    if (!o->token || !*o->token)
        o->token = "p11ca-test";
    while ((c = getopt(argc, argv, "m:p:w:t:n:j:r:")) != -1) {
        switch (c) {
        case 'm':
            o->module = optarg;
            break;
        case 'p':
            o->pin_file = optarg;
            break;
        case 'w':
            o->wrong_pin = optarg;
            break;
        case 't':
            o->token = optarg;
            break;
        case 'n':
            bad |= parse_count(optarg, &o->iterations);
            break;
        case 'j':
            bad |= parse_count(optarg, &o->threads);
            break;
        case 'r':
            bad |= parse_count(optarg, &o->rounds);
            break;
        default:
            bad = -1;
            break;
        }
    }
    if (bad || optind >= argc || !o->pin_file) {
        fprintf(stderr,
                "usage: %s %s\n(the PIN file comes from -p or $PINFILE)\n",
                argv[0], usage);
        return -1;
    }
    o->cmd = argv[optind];
    o->args = argv + optind + 1;
    o->n_args = argc - optind - 1;
    return 0;
}

p11_ctx *drive_ctx_new(const struct drive_opts *o)
{
    p11_config cfg = {.module_path = o->module};

    return p11_ctx_new(&cfg);
}

/* Append @s to @out, percent-encoding what a URI value may not hold. */
static size_t uri_encode(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
            || (ch >= '0' && ch <= '9') || strchr("-._~/", ch)) {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
    return n;
}

char *drive_key_uri_module(const struct drive_opts *o, const char *label,
                           const char *module_path)
{
    size_t max = 80
                 + 3
                       * (strlen(o->token) + strlen(label) + strlen(o->pin_file)
                          + (module_path ? strlen(module_path) : 0));
    char *uri = malloc(max);
    size_t n;

    if (!uri)
        return NULL;
    n = (size_t)sprintf(uri, "pkcs11:token=");
    n += uri_encode(uri + n, o->token);
    n += (size_t)sprintf(uri + n, ";object=");
    n += uri_encode(uri + n, label);
    n += (size_t)sprintf(uri + n, ";type=private?pin-source=");
    n += uri_encode(uri + n, o->pin_file);
    if (module_path) {
        n += (size_t)sprintf(uri + n, "&module-path=");
        n += uri_encode(uri + n, module_path);
    }
    uri[n] = '\0';
    return uri;
}

char *drive_key_uri(const struct drive_opts *o, const char *label)
{
    return drive_key_uri_module(o, label, NULL);
}

CK_RV drive_key_open(p11_ctx *ctx, const struct drive_opts *o,
                     const char *label, struct drive_key *k)
{
    p11_uri *uri = NULL;
    char *str = NULL;
    CK_RV rv = CKR_HOST_MEMORY;

    memset(k, 0, sizeof(*k));
    str = drive_key_uri(o, label);
    if (!str) {
        p11_error_set(rv, NULL, NULL, NULL, NULL);
        goto out;
    }
    rv = p11_uri_parse(str, &uri);
    if (rv != CKR_OK)
        goto out;
    rv = p11_obj_find_one(ctx, uri, CKO_PRIVATE_KEY, true, &k->obj);
    if (rv != CKR_OK)
        goto out;
    rv = p11_obj_public_key(k->obj, NULL, NULL, &k->pub);
    if (rv != CKR_OK)
        goto out;
    k->mech = p11_obj_key_type(k->obj) == CKK_RSA ? CKM_RSA_PKCS : CKM_ECDSA;
    k->auth.pin_source = o->pin_file;
out:
    if (rv != CKR_OK)
        drive_key_close(k);
    p11_uri_free(uri);
    free(str);
    return rv;
}

void drive_key_close(struct drive_key *k)
{
    p11_obj_unref(k->obj);
    EVP_PKEY_free(k->pub);
    memset(k, 0, sizeof(*k));
}

/* PKCS#11 gives ECDSA signatures as r || s; OpenSSL wants DER. */
static int ecdsa_to_der(const unsigned char *sig, size_t len,
                        unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)(len / 2), NULL);
    BIGNUM *s = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
    int n = -1;

    *der = NULL;
    if (es && r && s && len % 2 == 0 && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by @es now */
        n = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n;
}

static CK_RV verify(const struct drive_key *k, const unsigned char *hash,
                    const unsigned char *sig, size_t siglen)
{
    EVP_PKEY_CTX *pc = NULL;
    unsigned char *der = NULL;
    int n, ok = 0;

    if (k->mech == CKM_ECDSA) {
        n = ecdsa_to_der(sig, siglen, &der);
        if (n <= 0)
            goto out;
        sig = der;
        siglen = (size_t)n;
    }
    pc = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL);
    if (!pc || EVP_PKEY_verify_init(pc) != 1)
        goto out;
    if (k->mech == CKM_RSA_PKCS
        && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1)
        goto out;
    if (EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1)
        goto out;
    ok = EVP_PKEY_verify(pc, sig, siglen, hash, 32) == 1;
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(pc);
    OPENSSL_free(der);
    if (ok)
        return CKR_OK;
    return p11_error_set(CKR_SIGNATURE_INVALID, "EVP_PKEY_verify",
                         p11_obj_token(k->obj), p11_obj_describe(k->obj),
                         "the signature from the token does not verify");
}

CK_RV drive_sign_verify(struct drive_key *k, const p11_auth *auth)
{
    unsigned char data[sizeof(sha256_info) + 32], sig[512];
    unsigned char *hash = data + sizeof(sha256_info);
    CK_MECHANISM mech = {k->mech, NULL, 0};
    size_t off = k->mech == CKM_RSA_PKCS ? 0 : sizeof(sha256_info);
    size_t siglen = sizeof(sig);
    CK_RV rv;

    memcpy(data, sha256_info, sizeof(sha256_info));
    if (RAND_bytes(hash, 32) != 1)
        return p11_error_set(CKR_FUNCTION_FAILED, "RAND_bytes", NULL, NULL,
                             NULL);
    /* ECDSA signs the bare hash, RSA PKCS#1 v1.5 its DigestInfo. */
    rv = p11_sign(k->obj, auth ? auth : &k->auth, &mech, data + off,
                  sizeof(data) - off, sig, &siglen);
    if (rv != CKR_OK)
        return rv;
    return verify(k, hash, sig, siglen);
}

/* Find the key @label, or generate it as @spec_str when there is none. */
static CK_RV ensure_key(p11_ctx *ctx, const struct drive_opts *o,
                        const char *label, const char *spec_str)
{
    p11_uri *uri = NULL;
    p11_obj *obj = NULL;
    p11_token *tok = NULL;
    p11_key_spec spec;
    p11_auth auth;
    char *str = drive_key_uri(o, label);
    CK_RV rv = CKR_HOST_MEMORY;

    if (!str)
        goto out;
    rv = p11_uri_parse(str, &uri);
    if (rv == CKR_OK)
        rv = p11_obj_find_one(ctx, uri, CKO_PRIVATE_KEY, true, &obj);
    if (rv != P11_RV_NO_OBJECT)
        goto out; /* there already, or a real error */
    rv = p11_key_spec_parse(spec_str, &spec);
    if (rv == CKR_OK)
        rv = p11_token_find_one(ctx, uri, &tok);
    if (rv != CKR_OK)
        goto out;
    p11_auth_from_uri(&auth, uri);
    rv = p11_keygen(tok, &auth, &spec, label, NULL, 0, false, NULL, NULL);
    if (rv == CKR_OK)
        printf("generated %s key \"%s\"\n", p11_key_spec_name(&spec), label);
out:
    p11_obj_unref(obj);
    p11_uri_free(uri);
    free(str);
    return rv;
}

int drive_setup(const struct drive_opts *o)
{
    p11_ctx *ctx = drive_ctx_new(o);
    int ret = DRIVE_FAIL;

    if (!ctx)
        return drive_fail("out of memory");
    if (ensure_key(ctx, o, DRIVE_EC_LABEL, "ec:P-256") != CKR_OK
        || ensure_key(ctx, o, DRIVE_RSA_LABEL, "rsa:2048") != CKR_OK) {
        drive_fail("setup: %s", p11_error_message());
        goto out;
    }
    ret = DRIVE_PASS;
out:
    p11_ctx_free(ctx);
    return ret;
}

long drive_log_count(const char *func)
{
    const char *path = getenv("FAULTY_PKCS11_LOG");
    char prefix[96], *line = NULL;
    size_t cap = 0, plen;
    long n = 0;
    FILE *f;

    if (!path || !*path)
        return -1;
    f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1; /* nothing logged yet */
    snprintf(prefix, sizeof(prefix), "%ld %s ", (long)getpid(), func);
    plen = strlen(prefix);
    while (getline(&line, &cap, f) > 0)
        if (strncmp(line, prefix, plen) == 0)
            n++;
    free(line);
    fclose(f);
    return n;
}
