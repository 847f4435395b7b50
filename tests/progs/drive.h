/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the p11 test drivers: options, test keys, sign+verify. */
#ifndef P11CA_TEST_DRIVE_H
#define P11CA_TEST_DRIVE_H

#include <openssl/evp.h>

#include "p11/p11.h"

/* Test keys that "setup" generates on the token. */
#define DRIVE_EC_LABEL  "drive-ec"  /* ec:P-256 */
#define DRIVE_RSA_LABEL "drive-rsa" /* rsa:2048 */
/* A P-256 key with CKA_ALWAYS_AUTHENTICATE (tests/progs/weak-key makes it). */
#define DRIVE_AA_LABEL "drive-aa"

/* Exit codes of the drivers: all checks passed, some failed, bad usage. */
enum { DRIVE_PASS = 0, DRIVE_FAIL = 1, DRIVE_USAGE = 2 };

struct drive_opts {
    const char *module;    /* -m: p11_config.module_path (NULL: env) */
    const char *pin_file;  /* -p, else $PINFILE */
    const char *wrong_pin; /* -w: a PIN file the token refuses */
    const char *token;     /* -t, else $TOKEN, else "p11ca-test" */
    unsigned iterations;   /* -n */
    unsigned threads;      /* -j */
    unsigned rounds;       /* -r */
    const char *cmd;       /* the scenario */
    char **args;           /* operands after the scenario */
    int n_args;
};

/* A private key on the token with what is needed to check its signatures. */
struct drive_key {
    p11_obj *obj;
    EVP_PKEY *pub;          /* from p11_obj_public_key */
    CK_MECHANISM_TYPE mech; /* CKM_ECDSA or CKM_RSA_PKCS */
    p11_auth auth;          /* pin-source: the -p file (borrowed) */
};

/*
 * drive_opts_parse - read "[-m module] [-p pinfile] [-w pinfile] [-t token]
 * [-n iterations] [-j threads] [-r rounds] SCENARIO [ARG...]" into @o, whose
 * numeric fields hold the defaults on entry.  Returns 0, or -1 after
 * printing @usage.
 */
int drive_opts_parse(int argc, char **argv, struct drive_opts *o,
                     const char *usage);

/* drive_ctx_new - a context for @o's module; NULL only without memory. */
p11_ctx *drive_ctx_new(const struct drive_opts *o);

/*
 * drive_key_uri - "pkcs11:token=..;object=@label;type=private?pin-source=.."
 * (malloc'd, NULL without memory).  The PIN itself is never in it.
 */
char *drive_key_uri(const struct drive_opts *o, const char *label);

/* drive_key_uri_module - drive_key_uri with "&module-path=@module_path". */
char *drive_key_uri_module(const struct drive_opts *o, const char *label,
                           const char *module_path);

/*
 * drive_key_open - find the private key @label (logging in with the -p
 * file) and its public key.  @k is filled; close it with drive_key_close.
 * Returns CKR_OK or the error, with p11_error_message() set.
 */
CK_RV drive_key_open(p11_ctx *ctx, const struct drive_opts *o,
                     const char *label, struct drive_key *k);

/* drive_key_close - drop the references held by @k; accepts a zeroed key. */
void drive_key_close(struct drive_key *k);

/*
 * drive_sign_verify - p11_sign a random SHA-256 hash with @k (ECDSA on the
 * hash, RSA PKCS#1 v1.5 on its DigestInfo) using @auth (NULL: @k's) and
 * verify the signature in software with EVP_PKEY_verify.  Returns CKR_OK,
 * the error of p11_sign, or CKR_SIGNATURE_INVALID; p11_error_message() of
 * this thread says why.
 */
CK_RV drive_sign_verify(struct drive_key *k, const p11_auth *auth);

/*
 * drive_setup - generate the DRIVE_EC_LABEL and DRIVE_RSA_LABEL keys on the
 * token unless they exist.  Returns DRIVE_PASS or DRIVE_FAIL.
 */
int drive_setup(const struct drive_opts *o);

/*
 * drive_log_count - lines of this process for @func ("C_Login") in the
 * faulty-pkcs11 call log named by $FAULTY_PKCS11_LOG; -1 when there is no
 * log to read.
 */
long drive_log_count(const char *func);

/* drive_now - a monotonic clock in seconds. */
double drive_now(void);

/* drive_fail - print "FAIL: ..." on stderr; returns DRIVE_FAIL. */
int drive_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
