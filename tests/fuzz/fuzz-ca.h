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
 * and the certificates, which these targets do without).  The text goes
 * through ca_conf_parse, as ca_open's does, so a .include is refused
 * before it reads a file.  @out gets the CA (free it with ca_close), or
 * NULL when the text was refused.  Returns 0, what ca_conf_parse returned
 * (P11CA_E_INPUT, or P11CA_E_NOMEM) or what ca_profiles_load returned.
 */
static inline int fuzz_ca_load(const void *text, size_t len, ca **out)
{
    ca *c = ca_alloc();
    int rc;

    *out = NULL;
    FUZZ_CHECK(c != NULL);
    c->dir = strdup("fuzz");
    c->conf = NCONF_new_ex(NULL, NULL);
    FUZZ_CHECK(c->dir != NULL && c->conf != NULL);
    rc = ca_conf_parse(c, "fuzz/ca.cnf", text, len);
    if (rc == P11CA_OK) {
        rc = ca_profiles_load(c);
        *out = c;
        c = NULL;
    }
    ca_close(c);
    ERR_clear_error();
    return rc;
}

#endif
