/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca serve: run the registry service of a CA directory (src/server). */
#include "config.h"

#include "cli.h"

#include "ca/ca.h"
#include "server/server.h"

enum {
    OPT_DIR = 1,
    OPT_LISTEN,
};

static int cmd_serve(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {0},
    };
    const struct cli_cmd *me = cli_serve_cmds;
    const char *dir = NULL, *listen = NULL;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_LISTEN)
            listen = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    rc = ca_set_access(c, cli->module, cli->pin_source);
    if (rc == P11CA_OK)
        rc = srv_run(c, listen);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "serve: %s", p11ca_err_message());
    ca_close(c);
    return rc;
}

/* The help text and the man page of the command and of [serve]. */
const struct cli_cmd cli_serve_cmds[] = {
    {"serve", NULL, "[--dir DIR] [--listen ADDR:PORT]",
     "Run the registry service of the CA: an HTTPS API (docs/serve.md) with "
     "client certificates, checked at every handshake against the registry "
     "(a deactivated or revoked certificate is refused at its next "
     "connection), devices of registered CAs recorded at their first "
     "connection, sign-up limits, and the OCSP responder (answered from "
     "pre-signed responses).  Token signatures and registry changes "
     "run on worker threads.  Settings come from the [serve] section of "
     "ca.cnf (below).  Prints \"p11ca serve: listening on URL\" when it "
     "accepts connections.  SIGTERM or SIGINT: stop accepting, finish the "
     "requests in flight, exit 0.  SIGHUP: read [serve], the registered "
     "CAs, the TLS key and certificate and the CRL again without dropping "
     "connections (listen, ocsp_listen and workers need a restart).",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--listen ADDR:PORT\tlisten here instead of [serve] listen "
     "(comma-separated; [::1]:8443 for IPv6)\n"
     "[serve] listen = ADDR:PORT,...\twhere to listen, up to 8 addresses "
     "(default 127.0.0.1:8443; IPv6 as [::1]:8443, all IPv4 as :8443)\n"
     "[serve] tls_key = URI|FILE\tthe service's TLS key (required): a "
     "pkcs11: URI, used through the p11ca provider in the CA key's library "
     "context (a key on the CA's token uses its login; one on another token "
     "needs pin-source= in the URI), or an unencrypted key file (mode "
     "0600)\n"
     "[serve] tls_certificate = FILE|URI\tits certificate (required): a PEM "
     "file with its chain after it, or a pkcs11: URI (this CA's certificate "
     "and chain are sent after it when this CA issued it)\n"
     "[serve] workers = N\tthreads for token and registry work (default 4, "
     "at most 64)\n"
     "[serve] max_connections = N\topen connections, TLS and plain "
     "(ocsp_listen) alike, counted from their accept; at the cap new ones "
     "wait in the kernel's backlog (default 1024)\n"
     "[serve] max_queued_jobs = N\tjobs waiting for a worker; beyond, calls "
     "are answered 503 with Retry-After (default 1024)\n"
     "[serve] max_body_bytes = N\tthe largest request body read (default "
     "65536): larger ones are answered 413; libevent closes a connection "
     "whose body is over 4 times this\n"
     "[serve] max_header_bytes = N\tthe largest request header block "
     "(default 8192)\n"
     "[serve] request_timeout_ms = N\ta new connection completes its TLS "
     "handshake (none on ocsp_listen) and its first request within this "
     "(default 10000), or is closed\n"
     "[serve] idle_timeout_ms = N\ta kept-alive connection sends its next "
     "whole request within this (default 30000), or is closed\n"
     "[serve] shutdown_timeout_ms = N\tafter SIGTERM, how long the requests "
     "in flight may take (default 30000)\n"
     "[serve] audit_denied_interval_s = N\tone api-denied audit entry per "
     "caller in N seconds (default 60); the calls refused in between are "
     "counted into the caller's next entry\n"
     "[serve] access_log = FILE\tone line per request and per refused "
     "handshake (default: standard error); reopened at SIGHUP\n"
     "[serve] signup_limit = RATE[/BURST]|off\tsign-ups (auto-registrations, "
     "POST /v1/certs and POST /v1/enroll) per second and per CA: a token bucket of BURST "
     "(default 15/15); 0/N admits N and never refills.  Behind it, the "
     "registry's sign-up limit (rate_limit in [ ca ]) counts every CA's "
     "sign-ups in a second and refuses with 429 and Retry-After: 1\n"
     "[serve] signup_limits = SECTION\tlimits of single CAs: ca.ID = "
     "RATE[/BURST]|off in SECTION (ID as GET /v1/cas shows it); and of "
     "single profiles: profile.NAME = RATE[/BURST]|off, which POST "
     "/v1/enroll under profile NAME takes from besides its CA's (NAME a "
     "profile of ca.cnf, else p11ca serve does not start and SIGHUP keeps "
     "the old settings)\n"
     "[serve] roles = SECTION\toperators: NAME = ROLE sha256:FINGERPRINT or "
     "NAME = ROLE subject:DN in SECTION, ROLE admin, operator or auditor; "
     "subject: matches certificates of this CA only; other verified clients "
     "are devices\n"
     "[serve] auto_register = yes|no\tthe default of POST /v1/cas without "
     "auto_register (no)\n"
     "[serve] auto_register_status = STATUS\tthe default of POST /v1/cas "
     "without auto_status: activated or registered-not-activated (the "
     "default).  An auto-registered device's client ID is the one the first "
     "request of its first connection names (header P11ca-Client-Id, or "
     "query parameter client_id), else its CN\n"
     "[serve] ocsp_path = PATH\twhere the OCSP responder answers (default "
     "/ocsp): POST PATH (application/ocsp-request) and GET PATH/BASE64 "
     "(RFC 6960 Appendix A, RFC 5019), on every listener and without a "
     "client certificate; not under /v1 nor one that would take another "
     "route's requests (/healthz, /metrics); [ ocsp ] of ca.cnf sets up "
     "the responder (docs/ocsp.md)\n"
     "[serve] ocsp_listen = ADDR:PORT,...\tplain-HTTP addresses that serve "
     "the OCSP responder and nothing else (default: none), for the http:// "
     "URL relying parties ask (ocsp_url in [ ca ]); read at start\n"
     "[serve] ocsp_max_signing = N\tOCSP responses signed for a request "
     "(a nonce, a miss) queued or on a worker at once (default: workers); "
     "beyond, OCSP answers tryLater at once",
     cmd_serve},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
