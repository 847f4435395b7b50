/* SPDX-License-Identifier: Apache-2.0 */
/* Drives provider APIs that the openssl command does not reach: a key
 * import with the selection OpenSSL 3.5's libssl uses for a peer's EC
 * share, and OpenSSL 3.4's message-signing API with a token key. */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static OSSL_LIB_CTX *libctx;

static int usage(void)
{
    fprintf(stderr, "usage: prov-api import-ec-public\n");
    fprintf(
        stderr,
        "       prov-api sign-message ALGORITHM PROPQ KEY-URI IN OUT [oneshot]\n");
    return 2;
}

/*
 * Import a P-256 public key into p11ca's EC key management with the
 * selection DOMAIN_PARAMETERS | PRIVATE_KEY and no private key, as
 * OpenSSL 3.5 does for the EC half of a hybrid TLS group: the public key
 * must be there afterwards.
 */
static int import_ec_public(void)
{
    EVP_PKEY_CTX *gen =
        EVP_PKEY_CTX_new_from_name(libctx, "EC", "provider=default");
    EVP_PKEY_CTX *imp = NULL;
    EVP_PKEY *sw = NULL, *pk = NULL;
    unsigned char pub[200], got[200];
    size_t publen = 0, gotlen = 0;
    char group[] = "prime256v1";
    OSSL_PARAM p[3];
    int ok = 0;

    if (!gen || EVP_PKEY_keygen_init(gen) <= 0
        || EVP_PKEY_CTX_set_group_name(gen, group) <= 0
        || EVP_PKEY_generate(gen, &sw) <= 0
        || !EVP_PKEY_get_octet_string_param(sw, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                            sizeof(pub), &publen))
        goto out;
    p[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    p[1] =
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, publen);
    p[2] = OSSL_PARAM_construct_end();
    imp = EVP_PKEY_CTX_new_from_name(libctx, "EC", "provider=p11ca");
    if (!imp || EVP_PKEY_fromdata_init(imp) <= 0
        || EVP_PKEY_fromdata(imp, &pk,
                             OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS
                                 | OSSL_KEYMGMT_SELECT_PRIVATE_KEY,
                             p)
               <= 0) {
        fprintf(stderr, "import failed\n");
        goto out;
    }
    if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, got,
                                         sizeof(got), &gotlen)) {
        printf("public key dropped\n");
        goto out;
    }
    ok = gotlen == publen && memcmp(got, pub, publen) == 0;
    printf("%s\n", ok ? "public key imported" : "public key differs");
out:
    ERR_print_errors_fp(stderr);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(sw);
    EVP_PKEY_CTX_free(imp);
    EVP_PKEY_CTX_free(gen);
    return ok;
}

#if OPENSSL_VERSION_NUMBER >= 0x30400000L
static EVP_PKEY *load_key(const char *uri)
{
    OSSL_STORE_CTX *sc =
        OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pk = NULL;

    if (!sc)
        return NULL;
    OSSL_STORE_expect(sc, OSSL_STORE_INFO_PKEY);
    while (!pk && !OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(sc);

        if (info)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
        if (!info && OSSL_STORE_error(sc))
            break;
    }
    OSSL_STORE_close(sc);
    return pk;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0
        && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))
        && fread(buf, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    else {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

/*
 * EVP_PKEY_sign_message_init with ALGORITHM (fetched with PROPQ), then the
 * message in pieces of 7 bytes (update/final) or at once (EVP_PKEY_sign).
 */
static int sign_message(const char *alg, const char *propq, const char *uri,
                        const char *in, const char *out, int oneshot)
{
    EVP_SIGNATURE *sig = EVP_SIGNATURE_fetch(libctx, alg, propq);
    EVP_PKEY *pk = load_key(uri);
    EVP_PKEY_CTX *ctx =
        pk ? EVP_PKEY_CTX_new_from_pkey(libctx, pk, NULL) : NULL;
    unsigned char *msg = NULL, sigbuf[1024];
    size_t len = 0, siglen = sizeof(sigbuf);
    FILE *f = NULL;
    int ok = 0;

    if (!sig || !ctx || !(msg = read_file(in, &len))) {
        fprintf(stderr, "cannot set up %s\n", alg);
        goto out;
    }
    if (EVP_PKEY_sign_message_init(ctx, sig, NULL) <= 0) {
        fprintf(stderr, "EVP_PKEY_sign_message_init(%s) failed\n", alg);
        goto out;
    }
    if (oneshot) {
        ok = EVP_PKEY_sign(ctx, sigbuf, &siglen, msg, len) > 0;
    } else {
        ok = 1;
        for (size_t o = 0; ok && o < len; o += 7)
            ok = EVP_PKEY_sign_message_update(ctx, msg + o,
                                              len - o < 7 ? len - o : 7)
                 > 0;
        ok = ok && EVP_PKEY_sign_message_final(ctx, sigbuf, &siglen) > 0;
    }
    if (!ok) {
        fprintf(stderr, "signing with %s failed\n", alg);
        goto out;
    }
    ok = (f = fopen(out, "wb")) != NULL
         && fwrite(sigbuf, 1, siglen, f) == siglen;
    printf("%s: %zu-byte signature from %s\n", alg, siglen,
           OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(sig)));
out:
    if (f)
        fclose(f);
    ERR_print_errors_fp(stderr);
    free(msg);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    EVP_SIGNATURE_free(sig);
    return ok;
}
#endif

int main(int argc, char **argv)
{
    OSSL_PROVIDER *p11ca, *deflt;
    int ok;

    if (argc < 2)
        return usage();
    libctx = OSSL_LIB_CTX_new();
    p11ca = OSSL_PROVIDER_load(libctx, "p11ca");
    deflt = OSSL_PROVIDER_load(libctx, "default");
    if (!p11ca || !deflt) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "cannot load the providers\n");
        return 1;
    }
    if (strcmp(argv[1], "import-ec-public") == 0) {
        ok = import_ec_public();
    } else if (strcmp(argv[1], "sign-message") == 0 && argc >= 7) {
#if OPENSSL_VERSION_NUMBER >= 0x30400000L
        ok = sign_message(argv[2], argv[3], argv[4], argv[5], argv[6],
                          argc > 7 && strcmp(argv[7], "oneshot") == 0);
#else
        printf(
            "built with OpenSSL headers older than 3.4: no message-signing API\n");
        return 77;
#endif
    } else {
        return usage();
    }
    OSSL_PROVIDER_unload(deflt);
    OSSL_PROVIDER_unload(p11ca);
    OSSL_LIB_CTX_free(libctx);
    return ok ? 0 : 1;
}
