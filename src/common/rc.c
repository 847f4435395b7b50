/* SPDX-License-Identifier: Apache-2.0 */
/* Text and exit code of every status code. */
#include "config.h"

#include "rc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int rc;
    int exit_code;
    const char *name; /* stable: the "code" of --json errors */
    const char *text;
} rc_table[] = {
    {P11CA_OK, P11CA_EXIT_OK, "ok", "success"},
    {P11CA_E_USAGE, P11CA_EXIT_USAGE, "usage", "invalid usage"},
    {P11CA_E_INPUT, P11CA_EXIT_INPUT, "input", "input rejected"},
    {P11CA_E_TOKEN, P11CA_EXIT_TOKEN, "token", "token error"},
    {P11CA_E_PIN, P11CA_EXIT_TOKEN, "pin", "PIN error"},
    {P11CA_E_REGISTRY, P11CA_EXIT_REGISTRY, "registry", "registry error"},
    {P11CA_E_INTERNAL, P11CA_EXIT_INTERNAL, "internal", "internal error"},
    {P11CA_E_NOMEM, P11CA_EXIT_INTERNAL, "no-memory", "out of memory"},
    {P11CA_E_IO, P11CA_EXIT_INPUT, "io", "input/output error"},
    {P11CA_E_NOTFOUND, P11CA_EXIT_INPUT, "not-found", "not found"},
    {P11CA_E_EXISTS, P11CA_EXIT_INPUT, "exists", "already exists"},
    {P11CA_E_STATE, P11CA_EXIT_INPUT, "state", "not allowed in this state"},
    {P11CA_E_RATE, P11CA_EXIT_REGISTRY, "rate", "rate limit reached"},
    {P11CA_E_POLICY, P11CA_EXIT_INPUT, "policy", "refused by policy"},
    {P11CA_E_CAKEY, P11CA_EXIT_TOKEN, "ca-key", "CA key check failed"},
    {P11CA_E_UNAVAILABLE, P11CA_EXIT_REGISTRY, "registry-unavailable",
     "the registry's database is unavailable"},
};

/* As long as the CLI prints (CLI_ESC_MAX): the enrollment's messages name
 * a token, a label, an issuer and the token's own error at once. */
static _Thread_local char err_msg[4096];
static _Thread_local int err_rc;

/* The function behind the macro of rc.h. */
#undef p11ca_err_set
int p11ca_err_set(int rc, const char *fmt, ...)
{
    char buf[sizeof(err_msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* @buf may quote the previous message: copy at the end. */
    memcpy(err_msg, buf, sizeof(err_msg));
    err_rc = rc;
    return rc;
}

const char *p11ca_err_message(void)
{
    return err_msg[0] ? err_msg : p11ca_strerror(err_rc);
}

int p11ca_err_rc(void)
{
    return err_rc;
}

void p11ca_err_clear(void)
{
    err_msg[0] = '\0';
    err_rc = P11CA_OK;
}

const char *p11ca_rc_name(int rc)
{
    for (unsigned i = 0; i < sizeof(rc_table) / sizeof(rc_table[0]); i++)
        if (rc_table[i].rc == rc)
            return rc_table[i].name;
    return "internal";
}

const char *p11ca_strerror(int rc)
{
    for (unsigned i = 0; i < sizeof(rc_table) / sizeof(rc_table[0]); i++)
        if (rc_table[i].rc == rc)
            return rc_table[i].text;
    return "unknown error";
}

int p11ca_exit_code(int rc)
{
    for (unsigned i = 0; i < sizeof(rc_table) / sizeof(rc_table[0]); i++)
        if (rc_table[i].rc == rc)
            return rc_table[i].exit_code;
    return P11CA_EXIT_INTERNAL;
}
