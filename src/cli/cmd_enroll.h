/* SPDX-License-Identifier: Apache-2.0 */
/* What p11ca enroll and p11ca token show share: the token's key and
 * certificate pairs (src/ca/enroll.h) and the subjects as the CLI shows
 * them. */
#ifndef P11CA_CLI_CMD_ENROLL_H
#define P11CA_CLI_CMD_ENROLL_H

#include <openssl/x509.h>

#include "ca/enroll.h"
#include "cli.h"

/* enr_subject - RFC 2253 text of @x's subject (malloc'd). */
char *enr_subject(X509 *x);

#endif
