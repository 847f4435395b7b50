/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca serve: the certificate registry as an HTTPS service with client
 * certificates (REST API, status checked at the handshake, devices of
 * registered CAs recorded at their first connection, sign-up limits). */
#ifndef P11CA_SERVER_H
#define P11CA_SERVER_H

#include "ca/ca.h"

#define SRV_WUR __attribute__((warn_unused_result))

/*
 * srv_run - serve the CA @c (opened by ca_open, its module and PIN source
 * set) until SIGTERM or SIGINT: read the [serve] section of its ca.cnf
 * (@listen, may be NULL, replaces its listen key), load the CA key and the
 * TLS key, bind, print "p11ca serve: listening on ..." on standard error,
 * and run.  SIGHUP reloads [serve], the registered CAs and the CRL.
 * Returns 0 after a clean shutdown (every request in flight answered), or
 * the error that kept the service from starting, with its message in
 * p11ca_err_message().
 */
int srv_run(ca *c, const char *listen) SRV_WUR;

#endif
