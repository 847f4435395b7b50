/* SPDX-License-Identifier: Apache-2.0 */
/* Drives the provider's OSSL_STORE as a program does, without a UI method:
 * which searches it supports, OSSL_STORE_find, and what a load delivers. */
#include "config.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The error queue with each error's data (the provider's message). */
static void print_errors(void)
{
    ERR_print_errors_fp(stderr);
}

static int usage(void)
{
    fprintf(stderr, "usage: prov-store supports URI\n"
                    "       prov-store find-alias URI ALIAS\n"
                    "       prov-store load URI\n");
    return 2;
}

/* One line per object: its type and the store's description (its URI). */
static void print_info(OSSL_STORE_INFO *info)
{
    int type = OSSL_STORE_INFO_get_type(info);
    const char *what = OSSL_STORE_INFO_type_string(type);
    char name[256] = "";

    if (type == OSSL_STORE_INFO_CERT) {
        X509_NAME_oneline(
            X509_get_subject_name(OSSL_STORE_INFO_get0_CERT(info)), name,
            sizeof(name));
    } else if (type == OSSL_STORE_INFO_PKEY) {
        snprintf(name, sizeof(name), "%s",
                 EVP_PKEY_get0_type_name(OSSL_STORE_INFO_get0_PKEY(info)));
    }
    printf("%s %s\n", what, name);
}

/*
 * Open @uri without a UI method, optionally find by @alias, load every
 * object.  Exit 0 when the store ended without error, 1 otherwise.
 */
static int load_all(OSSL_LIB_CTX *libctx, const char *uri, const char *alias)
{
    OSSL_STORE_SEARCH *search = NULL;
    OSSL_STORE_CTX *sc;
    int n = 0, rc = 1;

    sc = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!sc)
        goto out;
    /* libcrypto looks for an ENGINE named like the scheme first. */
    ERR_clear_error();
    if (alias) {
        if (!OSSL_STORE_supports_search(sc, OSSL_STORE_SEARCH_BY_ALIAS)) {
            fprintf(stderr, "the store does not support by_alias\n");
            goto out;
        }
        search = OSSL_STORE_SEARCH_by_alias(alias);
        if (!search || !OSSL_STORE_find(sc, search))
            goto out;
    }
    while (!OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(sc);

        if (!info) {
            if (OSSL_STORE_error(sc) && ERR_peek_error() != 0)
                goto out;
            continue;
        }
        print_info(info);
        OSSL_STORE_INFO_free(info);
        n++;
    }
    printf("found %d\n", n);
    rc = 0;
out:
    if (rc)
        print_errors();
    OSSL_STORE_SEARCH_free(search);
    OSSL_STORE_close(sc);
    return rc;
}

static int supports(OSSL_LIB_CTX *libctx, const char *uri)
{
    OSSL_STORE_CTX *sc;

    sc = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!sc) {
        print_errors();
        return 1;
    }
    printf("by_name %d\n",
           OSSL_STORE_supports_search(sc, OSSL_STORE_SEARCH_BY_NAME));
    printf("by_issuer_serial %d\n",
           OSSL_STORE_supports_search(sc, OSSL_STORE_SEARCH_BY_ISSUER_SERIAL));
    printf(
        "by_key_fingerprint %d\n",
        OSSL_STORE_supports_search(sc, OSSL_STORE_SEARCH_BY_KEY_FINGERPRINT));
    printf("by_alias %d\n",
           OSSL_STORE_supports_search(sc, OSSL_STORE_SEARCH_BY_ALIAS));
    OSSL_STORE_close(sc);
    return 0;
}

int main(int argc, char **argv)
{
    OSSL_PROVIDER *p11ca, *deflt;
    OSSL_LIB_CTX *libctx;
    int rc;

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
    if (strcmp(argv[1], "supports") == 0)
        rc = supports(libctx, argv[2]);
    else if (strcmp(argv[1], "find-alias") == 0 && argc == 4)
        rc = load_all(libctx, argv[2], argv[3]);
    else if (strcmp(argv[1], "load") == 0)
        rc = load_all(libctx, argv[2], NULL);
    else
        rc = usage();
    OSSL_PROVIDER_unload(deflt);
    OSSL_PROVIDER_unload(p11ca);
    OSSL_LIB_CTX_free(libctx);
    return rc;
}
