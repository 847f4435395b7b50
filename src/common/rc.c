/* SPDX-License-Identifier: Apache-2.0 */
/* Text and exit code of every status code. */
#include "config.h"

#include "rc.h"

static const struct {
    int rc;
    int exit_code;
    const char *text;
} rc_table[] = {
    { P11CA_OK, P11CA_EXIT_OK, "success" },
    { P11CA_E_USAGE, P11CA_EXIT_USAGE, "invalid usage" },
    { P11CA_E_INPUT, P11CA_EXIT_INPUT, "input rejected" },
    { P11CA_E_TOKEN, P11CA_EXIT_TOKEN, "token error" },
    { P11CA_E_PIN, P11CA_EXIT_TOKEN, "PIN error" },
    { P11CA_E_REGISTRY, P11CA_EXIT_REGISTRY, "registry error" },
    { P11CA_E_INTERNAL, P11CA_EXIT_INTERNAL, "internal error" },
    { P11CA_E_NOMEM, P11CA_EXIT_INTERNAL, "out of memory" },
    { P11CA_E_IO, P11CA_EXIT_INPUT, "input/output error" },
};

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
