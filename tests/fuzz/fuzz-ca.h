/* SPDX-License-Identifier: Apache-2.0 */
/* A CA handle for the fuzz targets of src/ca: ca.cnf text and its
 * profiles, without directory, registry, certificate or key. */
#ifndef P11CA_TEST_FUZZ_CA_H
#define P11CA_TEST_FUZZ_CA_H

#include <string.h>

#include <openssl/err.h>

#include "ca/internal.h"

/*
 * fuzz_ca_load - a CA whose ca.cnf is @text (@len bytes), with its
 * profiles loaded as ca_open loads them (ca_open goes on to the registry
 * and the certificates, which these targets do without).  @out gets the
 * CA (free it with ca_close), or NULL when NCONF refused the text.
 * Returns 0, or what ca_profiles_load returned.
 */
static inline int fuzz_ca_load(const void *text, size_t len, ca **out)
{
    ca *c = ca_alloc();
    BIO *b = BIO_new_mem_buf(text, (int)len);
    long eline = 0;
    int rc = P11CA_OK;

    *out = NULL;
    FUZZ_CHECK(c != NULL && b != NULL);
    c->dir = strdup("fuzz");
    c->conf = NCONF_new_ex(NULL, NULL);
    FUZZ_CHECK(c->dir != NULL && c->conf != NULL);
    if (NCONF_load_bio(c->conf, b, &eline) > 0) {
        rc = ca_profiles_load(c);
        *out = c;
        c = NULL;
    }
    BIO_free(b);
    ca_close(c);
    ERR_clear_error();
    return rc;
}

#endif
