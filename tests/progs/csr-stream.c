/* SPDX-License-Identifier: Apache-2.0 */
/* Test helper: N PEM CSRs on standard output, signed with one key file
 * (thousands a second, where `openssl req` makes a few hundred), some of
 * them bad on purpose:
 *   csr-stream KEYFILE N PREFIX [BAD DUP]
 * CSR i (1..N) has the subject /CN=PREFIX-i; with BAD > 0 every BAD-th has
 * its signature altered; with DUP > 0 every DUP-th (not a bad one) has the
 * CN of the CSR before it, so that its client ID is taken. */
#include "config.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static X509_REQ *make(EVP_PKEY *key, const char *prefix, long cn, bool bad)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    const ASN1_BIT_STRING *sig = NULL;
    char buf[256];

    snprintf(buf, sizeof(buf), "%s-%ld", prefix, cn);
    if (!req || !name
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)buf, -1, -1, 0)
        || !X509_REQ_set_subject_name(req, name)
        || !X509_REQ_set_pubkey(req, key)
        || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        X509_REQ_free(req);
        req = NULL;
    }
    X509_NAME_free(name);
    if (req && bad) {
        X509_REQ_get0_signature(req, &sig, NULL);
        /* The last byte of s: still DER, no longer the signature. */
        ((ASN1_BIT_STRING *)sig)->data[sig->length - 1] ^= 0x01;
    }
    return req;
}

int main(int argc, char **argv)
{
    long n, bad = 0, dup = 0;
    EVP_PKEY *key = NULL;
    X509_REQ *req;
    FILE *f;
    int rc = 1;

    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: csr-stream KEYFILE N PREFIX [BAD DUP]\n");
        return 2;
    }
    n = atol(argv[2]);
    if (argc == 6) {
        bad = atol(argv[4]);
        dup = atol(argv[5]);
    }
    if ((f = fopen(argv[1], "r"))) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    for (long i = 1; key && i <= n; i++) {
        bool is_bad = bad > 0 && i % bad == 0;
        bool is_dup = !is_bad && dup > 0 && i % dup == 0;

        req = make(key, argv[3], is_dup ? i - 1 : i, is_bad);
        if (!req || !PEM_write_X509_REQ(stdout, req)) {
            X509_REQ_free(req);
            goto out;
        }
        X509_REQ_free(req);
    }
    rc = key && fflush(stdout) == 0 ? 0 : 1;
out:
    if (rc)
        ERR_print_errors_fp(stderr);
    EVP_PKEY_free(key);
    return rc;
}
