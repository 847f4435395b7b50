/* SPDX-License-Identifier: Apache-2.0 */
/* Status codes of the ca/registry/server/cli layers and the exit codes
 * of the p11ca command. */
#ifndef P11CA_RC_H
#define P11CA_RC_H

/* 0 = ok; failures are negative.  Text from p11ca_strerror(). */
enum p11ca_rc {
    P11CA_OK = 0,
    P11CA_E_USAGE = -1,        /* bad command line */
    P11CA_E_INPUT = -2,        /* input rejected: URI, file, policy */
    P11CA_E_TOKEN = -3,        /* token, object or module problem */
    P11CA_E_PIN = -4,          /* PIN missing, refused or locked */
    P11CA_E_REGISTRY = -5,     /* registry problem */
    P11CA_E_INTERNAL = -6,     /* bug or unexpected library failure */
    P11CA_E_NOMEM = -7,        /* out of memory */
    P11CA_E_IO = -8,           /* file or network I/O */
    P11CA_E_NOTFOUND = -9,     /* no such certificate, CA or entry */
    P11CA_E_EXISTS = -10,      /* already there (serial, client ID, CA) */
    P11CA_E_STATE = -11,       /* the lifecycle forbids this change */
    P11CA_E_RATE = -12,        /* rate limit reached: try again later */
    P11CA_E_POLICY = -13,      /* refused by the CA's policy or profile */
    P11CA_E_CAKEY = -14,       /* the CA key is not the one it should be */
    P11CA_E_UNAVAILABLE = -15, /* the registry's database server is down or
                                * unreachable: try again later */
};

/*
 * The last error of the calling thread for these layers: a status code and
 * a message.  p11ca_err_set() records it (and returns @rc, so that callers
 * can `return p11ca_err_set(...)`); the CLI prints p11ca_err_message().
 * Never put a PIN or key material in a message.
 */
int p11ca_err_set(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * The same as a macro that evaluates to @rc where the caller sees it, so
 * that clang's static analyzer (which does not follow calls to variadic
 * functions) knows that `rc = p11ca_err_set(P11CA_E_NOMEM, ...)` is a
 * failure.  @rc is evaluated once.
 */
#define p11ca_err_set(rc, ...)                                                 \
    __extension__({                                                            \
        int p11ca_err_rc_ = (rc);                                              \
        (void)(p11ca_err_set)(p11ca_err_rc_, __VA_ARGS__);                     \
        p11ca_err_rc_;                                                         \
    })
const char *p11ca_err_message(void);
int p11ca_err_rc(void);
void p11ca_err_clear(void);

/* Process exit codes (documented in p11ca(1)). */
enum p11ca_exit {
    P11CA_EXIT_OK = 0,
    P11CA_EXIT_USAGE = 1,
    P11CA_EXIT_INPUT = 2,
    P11CA_EXIT_TOKEN = 3,
    P11CA_EXIT_REGISTRY = 4,
    P11CA_EXIT_INTERNAL = 5,
};

/* p11ca_rc_name - a stable name for @rc, for machines ("input",
 * "not-found", "registry", ...; static string). */
const char *p11ca_rc_name(int rc);

/* p11ca_strerror - a short sentence for @rc (static string). */
const char *p11ca_strerror(int rc);

/* p11ca_exit_code - the exit code of the p11ca command for @rc. */
int p11ca_exit_code(int rc);

#endif
