/* SPDX-License-Identifier: Apache-2.0 */
/* What a service needs of the CA: handles for several threads sharing one
 * loaded signing key, its library context for other keys (the TLS key),
 * and the actor the audit trail names. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ca/internal.h"

int ca_load_key(ca *c)
{
    ca_key *k = NULL;

    return ca_signing_key(c, &k);
}

/* @n's certificate and ca.cnf must name the key @k holds. */
static int shared_key_check(ca *n, ca_key *k)
{
    char hex[65];
    int rc;

    if (strcmp(n->s.key_sha256, ca_key_sha256(k)) != 0)
        return p11ca_err_set(
            P11CA_E_CAKEY,
            "%s/ca.cnf now records key_sha256 = %s, not the key loaded (%s): restart the service to change the CA key",
            n->dir, n->s.key_sha256, ca_key_sha256(k));
    if (!n->cert)
        return P11CA_OK;
    rc = ca_pubkey_sha256(X509_get0_pubkey(n->cert), hex);
    if (rc == P11CA_OK && strcmp(hex, ca_key_sha256(k)) != 0)
        rc = p11ca_err_set(
            P11CA_E_CAKEY,
            "the CA certificate in %s does not carry the loaded CA key (its public key has SHA-256 %s)",
            n->dir, hex);
    return rc;
}

/* ca_open_shared and ca_open_shared_readonly. */
static int open_shared(ca *c, bool readonly, ca **out)
{
    ca *n = NULL;
    int rc;

    *out = NULL;
    rc = readonly ? ca_open_readonly(c->dir, &n) : ca_open(c->dir, &n);
    if (rc == P11CA_OK)
        rc = ca_set_access(n, c->module, c->pin_source);
    if (rc == P11CA_OK)
        rc = ca_set_actor(n, c->actor);
    if (rc == P11CA_OK)
        n->wait = c->wait;
    if (rc == P11CA_OK && c->key)
        rc = shared_key_check(n, c->key);
    if (rc == P11CA_OK && c->key)
        n->key = ca_key_up_ref(c->key);
    if (rc == P11CA_OK) {
        *out = n;
        n = NULL;
    }
    ca_close(n);
    return rc;
}

int ca_open_shared(ca *c, ca **out)
{
    return open_shared(c, false, out);
}

int ca_open_shared_readonly(ca *c, ca **out)
{
    return open_shared(c, true, out);
}

int ca_set_actor(ca *c, const char *actor)
{
    char *copy = actor ? strdup(actor) : NULL;

    if (actor && !copy)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    free(c->actor);
    c->actor = copy;
    return P11CA_OK;
}

const char *ca_get_actor(ca *c)
{
    return c->actor ? c->actor : ca_actor();
}

OSSL_LIB_CTX *ca_libctx(ca *c)
{
    return c->key ? ca_key_libctx(c->key) : NULL;
}

int ca_load_pkey(ca *c, const char *location, EVP_PKEY **out)
{
    *out = NULL;
    if (!c->key)
        return p11ca_err_set(P11CA_E_INTERNAL, "load the CA key first");
    return ca_key_load_other(c->key, location, out);
}

int ca_load_cert(ca *c, const char *location, X509 **out)
{
    *out = NULL;
    if (!c->key)
        return p11ca_err_set(P11CA_E_INTERNAL, "load the CA key first");
    return ca_key_load_cert(c->key, location, out);
}
