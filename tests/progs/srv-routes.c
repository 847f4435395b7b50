/* SPDX-License-Identifier: Apache-2.0 */
/* Prints the routes of p11ca serve's route tables (src/server/api_*.c),
 * one "METHOD PATTERN" a line, for tests/integration/openapi.sh to compare
 * with docs/openapi.yaml. */
#include "config.h"

#include <stdio.h>

#include "server/internal.h"

int main(void)
{
    for (size_t i = 0; i < srv_route_count(); i++) {
        const struct srv_route *rt = srv_route_at(i);

        printf("%s %s\n", srv_method_name(rt->method), rt->pattern);
    }
    return ferror(stdout) || fflush(stdout) != 0 ? 1 : 0;
}
