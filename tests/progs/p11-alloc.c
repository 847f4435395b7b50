/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation-failure driver: one p11 scenario (load the module, find the
 * token, find the key with a login, sign) with allocation number N of
 * src/p11 and src/common failing (see alloc-fail.h).  It must end in a
 * signature or in a clean error: a code and a message, every object
 * freed (ASan/LSan or valgrind say the rest). */
#include "config.h"

#include "alloc-fail.h"
#include "drive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "[-m module] [-p pinfile] [-t token] setup | run [N]\n"
    "  run N: allocation call N of the scenario fails (none: no failure);\n"
    "  prints the calls counted; exits 0 signed, 3 refused cleanly";

enum { ALLOC_REFUSED = 3 };

/* The scenario; CKR_OK and a signature, or the error with its message. */
static CK_RV scenario(const struct drive_opts *o, const char *key_uri)
{
    static const unsigned char hash[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[132];
    size_t siglen = sizeof(sig);
    p11_ctx *ctx = NULL;
    p11_uri *uri = NULL;
    p11_token *tok = NULL;
    p11_obj *key = NULL;
    p11_auth auth;
    CK_RV rv = CKR_HOST_MEMORY;

    ctx = drive_ctx_new(o);
    if (!ctx) {
        /* Documented: NULL only without memory, and nothing to report. */
        p11_error_set(rv, "p11_ctx_new", NULL, NULL, NULL);
        goto out;
    }
    rv = p11_uri_parse(key_uri, &uri);
    if (rv == CKR_OK)
        rv = p11_token_find_one(ctx, uri, &tok);
    if (rv == CKR_OK)
        rv = p11_obj_find_one(ctx, uri, CKO_PRIVATE_KEY, true, &key);
    if (rv == CKR_OK) {
        p11_auth_from_uri(&auth, uri);
        rv = p11_sign(key, &auth, &mech, hash, sizeof(hash), sig, &siglen);
    }
    if (rv == CKR_OK && siglen != 64)
        rv = p11_error_set(CKR_GENERAL_ERROR, "p11_sign", tok, NULL,
                           "a P-256 signature of %zu bytes", siglen);
out:
    p11_obj_unref(key);
    p11_uri_free(uri);
    p11_ctx_free(ctx);
    return rv;
}

static int run(const struct drive_opts *o)
{
    unsigned long fail_at = o->n_args > 0 ? strtoul(o->args[0], NULL, 10) : 0;
    char *key_uri = drive_key_uri(o, DRIVE_EC_LABEL);
    unsigned long calls;
    CK_RV rv;

    if (!key_uri)
        return drive_fail("out of memory");
    p11_error_clear();
    alloc_fail_arm(fail_at);
    rv = scenario(o, key_uri);
    calls = alloc_fail_disarm();
    free(key_uri);
    printf("calls: %lu\n", calls);
    if (alloc_fail_hit())
        printf("failed: call %lu, %s\n", fail_at, alloc_fail_what());
    if (rv == CKR_OK) {
        printf("signed\n");
        return DRIVE_PASS;
    }
    printf("error: %s\n", p11_error_message());
    if (!alloc_fail_hit())
        return drive_fail("failed with no failed allocation: %s",
                          p11_error_message());
    if (!p11_error_message()[0])
        return drive_fail("%s refused with no message", p11_rv_name(rv));
    return ALLOC_REFUSED;
}

int main(int argc, char **argv)
{
    struct drive_opts o = {0};

    if (drive_opts_parse(argc, argv, &o, usage) != 0)
        return DRIVE_USAGE;
    if (strcmp(o.cmd, "setup") == 0)
        return drive_setup(&o);
    if (strcmp(o.cmd, "run") == 0)
        return run(&o);
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return DRIVE_USAGE;
}
