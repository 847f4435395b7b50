/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca: the command table, global options and dispatch. */
#include "config.h"

#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *group;
    const char *summary;
    const struct cli_cmd *cmds;
} groups[] = {
    {"token", "list and initialise tokens", cli_token_cmds},
    {"key", "generate and list key pairs on a token", cli_key_cmds},
    {"cert", "certificates: the CA's registry and those on tokens",
     cli_cert_cmds},
    {"audit", "the CA's tamper-evident audit trail", cli_audit_cmds},
    {"import-index", "migrate from an openssl ca database", cli_index_cmds + 0},
    {"export-index", "write an openssl ca database", cli_index_cmds + 1},
    {"ca", "create, install and show a certificate authority", cli_ca_cmds},
    {"issue", "issue certificates from CSRs under a profile", cli_issue_cmds},
    {"crl", "make the CA's certificate revocation list", cli_crl_cmds},
    {"export-p12", "PKCS#12 of a software key and its certificate",
     cli_p12_cmds + 0},
    {"export-chain", "a certificate with its chain: PEM, PKCS#7, zip",
     cli_p12_cmds + 1},
    {"enroll", "enroll a smartcard: key on the token, certificate from the CA",
     cli_enroll_cmds},
    {"serve", "run the registry service (HTTPS with client certificates)",
     cli_serve_cmds},
};

#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: p11ca [--module PATH] [--pin-source FILE] [--json] "
               "COMMAND [ARGS]\n\ncommands:\n");
    for (size_t g = 0; g < N_GROUPS; g++)
        for (const struct cli_cmd *c = groups[g].cmds; c->group; c++) {
            fprintf(f, "  %-14s %s\n", c->verb ? c->verb : c->group,
                    c->summary);
            if (!c->verb)
                break;
        }
    fprintf(f, "\n'p11ca help' lists the commands by group; "
               "'p11ca COMMAND --help' describes one.\n"
               "Exit codes: 0 ok, 1 usage, 2 input rejected, 3 token or PIN "
               "problem, 4 registry problem, 5 internal error.\n");
}

static void help_all(void)
{
    printf("p11ca %s - certificate authority and token tool for PKCS#11 "
           "keys\n\nusage: p11ca [COMMON OPTIONS] GROUP COMMAND [ARGS]\n",
           PACKAGE_VERSION);
    for (size_t g = 0; g < N_GROUPS; g++) {
        printf("\n%s: %s\n", groups[g].group, groups[g].summary);
        for (const struct cli_cmd *c = groups[g].cmds; c->group; c++) {
            printf("  p11ca %s%s%s %s\n      %s\n", c->group,
                   c->verb ? " " : "", c->verb ? c->verb : "", c->args,
                   c->summary);
            if (!c->verb)
                break;
        }
    }
    printf("\ncommon options (before or after the command):\n"
           "  --module PATH        PKCS#11 module; else $P11CA_MODULE; else "
           "p11-kit's modules\n"
           "  --pin-source FILE    read the PIN from FILE (mode 0600)\n"
           "  --json               print results as JSON\n"
           "  --single-session     one session per token (PIV cards)\n"
           "\nPINs: pin-value= or pin-source= in the URI, --pin-source, or a "
           "prompt on the terminal.\n"
           "Tokens: a URI without a token searches every initialised token; "
           "one that is away is waited for up to $P11CA_TOKEN_WAIT seconds "
           "(default 5; ca.cnf: token_wait).\n"
           "Exit codes: 0 ok, 1 usage, 2 input rejected, 3 token or PIN "
           "problem, 4 registry problem, 5 internal error.\n");
}

/* Roff escape: backslashes and leading dots/quotes. */
static void roff(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            fputc(*s, stdout);
    }
}

static void man_options(const char *opts)
{
    const char *line = opts;

    while (line && *line) {
        const char *nl = strchr(line, '\n');
        const char *tab = strchr(line, '\t');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *l = strndup(line, n);
        if (l && tab && (!nl || tab < nl)) {
            l[tab - line] = '\0';
            fputs(".TP\n.B ", stdout);
            roff(l);
            fputs("\n", stdout);
            roff(l + (tab - line) + 1);
            fputs("\n", stdout);
        }
        free(l);
        line = nl ? nl + 1 : NULL;
    }
}

/* ca.cnf keys that the comment block of a new ca.cnf does not show to
 * every reader: the signed audit head, the name policy of a profile. */
static void print_man_cnf(void)
{
    printf(".SH CA.CNF\n"
           "p11ca ca init writes DIR/ca.cnf (OpenSSL config syntax) with a "
           "comment block that describes every key. Keys of the [ ca ] "
           "section for the audit trail:\n");
    man_options(
        "audit_sign_every = N\tThe CA key signs the audit trail's head "
        "(the newest entry's number and hash, the time, the CA certificate's "
        "SHA-256 and subject) at ca init, with every CRL, and at the end of "
        "issue and enroll once N entries (default 100) have been added since "
        "its last head; 0: not by count.\n"
        "audit_sign_minutes = M\tthe same once M minutes (default 60) have "
        "passed since the last head and entries were added; 0: not by time. "
        "Commands that do not sign (revoke, activate, delete) leave entries "
        "after the last head until the next signing command or p11ca audit "
        "sign (run it from cron for a head at least every M minutes). p11ca "
        "audit verify reports those entries; p11ca audit head exports the "
        "newest head for a witness.\n");
    printf(".PP\nKeys of a profile section that restrict what is issued:\n");
    man_options(
        "allowed_dns = LIST\tDNS names of the subjectAltName: example.com "
        "allows it and the names below it, .example.com only the names below "
        "it.\n"
        "allowed_ip = LIST\tIP addresses of the subjectAltName: networks in "
        "CIDR notation or single addresses, IPv4 and IPv6 (192.0.2.0/24, "
        "2001:db8::/32). An IPv4 network does not match IPv4-mapped IPv6 "
        "addresses.\n"
        "allowed_email = LIST\te-mail addresses of the subjectAltName, as in "
        "RFC 5280 name constraints: a mailbox (alice@example.com; the local "
        "part compared exactly), a host (example.com: mailboxes at that host, "
        "not below it) or .example.com (mailboxes at hosts below it).\n"
        "allowed_uri = LIST\tURIs of the subjectAltName: prefixes compared "
        "byte for byte; end a prefix with / after the host (https://"
        "id.example.com/) so that it cannot be extended "
        "(https://id.example.com.evil.test).\n"
        "(the four allowed_ keys)\tA profile with none of them issues every "
        "well-formed DNS, IP, email and URI name. A profile with any of them "
        "is restricted: a name must match the key of its type, and a type "
        "whose key is absent is refused (allowed_dns alone refuses IP, email "
        "and URI names). * allows every name of its type.\n"
        "subject_allowed = LIST\tthe subject attributes allowed (CN, O, OU, "
        "C, ... or OIDs); absent: any.\n"
        "subject_required = LIST\tthe subject attributes that must be "
        "present; a subset of subject_allowed.\n"
        "cn_in_san = yes|no\tevery CN of the subject must be one of the "
        "subjectAltName names (DNS in any case, IP by address, email and URI "
        "exactly). The server profile of a new CA sets it.\n"
        "(all of them)\tapply to the CSR's names and subject and to --san "
        "and --subject alike; a refusal exits 2, names the rule and the "
        "value, and records nothing.\n");
}

/* The rules of the certificate registry that several commands share. */
static void print_man_registry(void)
{
    printf(
        ".SH CERTIFICATE REGISTRY\n"
        "A certificate is identified by its issuer and serial: the issuer is "
        "a CA of the registry (\\fBp11ca ca list\\fR shows their ids and "
        "names), and registered certificates of other CAs may have the serial "
        "of one of ours. A serial that several CAs have is refused as "
        "ambiguous; \\-\\-issuer (an id or a name) chooses.\n"
        ".PP\n"
        "Client IDs: one activated certificate per client ID. The profile "
        "key \\fBclient_id\\fR of ca.cnf says which certificates take one: "
        "\\fBcn\\fR (\\-\\-client\\-id, else the subject CN; the default "
        "of profiles whose ext_key_usage allows clientAuth or that have "
        "none), \\fBnone\\fR (no client ID, \\-\\-client\\-id refused; "
        "the default otherwise, so that a server certificate can be renewed "
        "while the old one is in use), \\fBrequired\\fR (\\-\\-client\\-id "
        "must be given).\n"
        ".PP\n"
        "Renewal: after \\fBp11ca enroll \\-\\-renew\\fR or "
        "\\fB\\-\\-rekey\\fR the old certificate is revoked with reason "
        "superseded (profile key \\fBsupersede = revoke\\fR, the default), "
        "or left not-activated and revoked by the first registry write after "
        "a grace period (\\fBsupersede = grace:7d\\fR; \\fBp11ca crl\\fR "
        "carries such revocations out before it lists the revoked "
        "certificates, audited with the actor registry:scheduled), or kept "
        "(\\fBsupersede = keep\\fR).\n"
        ".PP\n"
        "Bulk revocation: \\fBp11ca cert revoke\\fR with filters (other "
        "than \\-\\-serial alone) revokes only with \\-\\-yes or after "
        "\\fByes\\fR is typed at the terminal, where it shows how many "
        "certificates match; \\-\\-dry\\-run lists them. The audit trail "
        "gets a revoke entry for each certificate (its history) and a "
        "revoke\\-bulk entry that names them all.\n");
}

/* The man page, made from the same table as the help text. */
static void print_man(void)
{
    printf(".TH P11CA 1 \"\" \"p11ca %s\" \"User Commands\"\n"
           ".SH NAME\np11ca \\- certificate authority and token tool for "
           "PKCS#11 keys\n.SH SYNOPSIS\n.B p11ca\n[\\-\\-module PATH] "
           "[\\-\\-pin\\-source FILE] [\\-\\-json] GROUP COMMAND [ARGS]\n"
           ".SH DESCRIPTION\nManages keys and certificates on PKCS#11 tokens "
           "(HSMs, smartcards) addressed by RFC 7512 pkcs11: URIs. Private "
           "keys are generated on the token and never leave it.\n",
           PACKAGE_VERSION);
    printf(".SH COMMON OPTIONS\n");
    man_options("--module PATH\tLoad this PKCS#11 module. Precedence: "
                "module-path= in a URI, then --module, then the environment "
                "variable P11CA_MODULE, then every module registered with "
                "p11-kit.\n"
                "--pin-source FILE\tRead the PIN from FILE, which must not be "
                "readable by group or others.\n"
                "--json\tPrint results as JSON.\n"
                "--single-session\tUse one session per token, for tokens "
                "that misbehave with several (PIV cards).\n");
    printf(".SH COMMANDS\n");
    for (size_t g = 0; g < N_GROUPS; g++) {
        for (const struct cli_cmd *c = groups[g].cmds; c->group; c++) {
            const char *v = c->verb ? c->verb : "";
            printf(".SS p11ca %s%s%s\n.B p11ca %s%s%s\n", c->group,
                   *v ? " " : "", v, c->group, *v ? " " : "", v);
            roff(c->args);
            printf("\n.PP\n");
            roff(c->summary);
            printf("\n");
            man_options(c->options);
            if (!c->verb)
                break;
        }
    }
    print_man_cnf();
    print_man_registry();
    printf(".SH PINS\nA PIN comes from pin\\-value= or pin\\-source= in the "
           "URI, from \\-\\-pin\\-source, or from a prompt on the terminal "
           "(without echo). PINs are never printed or logged. A PIN that the "
           "token refused is never tried again automatically. A PIN from the "
           "URI or \\-\\-pin\\-source is used on one token only: when a "
           "command would log in to several tokens with it, it fails and "
           "names them (exit 2); add token= or serial= to the URI.\n");
    printf(".SH TOKENS\nA URI without a token (pkcs11:object=LABEL, "
           "pkcs11:id=%%01, pkcs11:) searches every initialised token. A slot "
           "without a token, with a token that is not initialised (SoftHSM2 "
           "always shows one), or whose token answers that it is absent, "
           "unrecognised or removed is skipped; P11CA_DEBUG=p11 prints a line "
           "for each. token list shows uninitialised tokens (to find one for "
           "token init). When nothing matches, the error names the URI.\n"
           ".PP\nA token that is away for a moment (a card reader that blinks; "
           "SoftHSM2 while another process logs in) is waited for: when a URI "
           "names a token that is not present, when a command that needs one "
           "object (key pubout, the CA key of issue and crl) finds none while "
           "a token seems away, and when a token goes away under an "
           "operation. The slots are looked at again after 10 ms, 20 ms, 40 "
           "ms and so on, then every 200 ms, up to P11CA_TOKEN_WAIT seconds "
           "(default 5; for the CA key, token_wait in ca.cnf); then the error "
           "names the token and how long it waited. PKCS#11 cannot tell a "
           "token away for a moment from one that never existed: a misspelt "
           "token= costs the wait (P11CA_TOKEN_WAIT=0 fails at once).\n");
    printf(".SH RATE LIMITS\nThe sign-up limit, rate_limit in [ ca ] of "
           "ca.cnf (default 15 per second, 0: none), holds devices and "
           "clients signing up: p11ca cert register, and p11ca serve's "
           "auto-registrations and POST /v1/certs (behind the service's own "
           "signup_limit per CA; the service does not wait for a slot and "
           "answers 429 with Retry-After: 1). An operator's own "
           "p11ca issue, issue \\-\\-batch and p11ca enroll are not held by "
           "it; a profile of ca.cnf may set a rate_limit of its own, which "
           "then holds every issuance under that profile (a batch records at "
           "most that many certificates per second). Each limit counts the "
           "certificates of its kind recorded in one second of the "
           "registry's clock. When the second is full, the command waits for "
           "the next one, up to \\-\\-wait SECONDS (default 5; 0: not at "
           "all), then fails with exit 4, records nothing, and says which "
           "limit was reached and how long it waited.\n");
    printf(".SH ENVIRONMENT\n.TP\n.B P11CA_MODULE\nPKCS#11 module to load "
           "instead of the p11-kit registered modules.\n.TP\n"
           ".B P11CA_TOKEN_WAIT\nSeconds to wait for a token that is away "
           "(0 to 600, up to three decimals; 0: do not wait; default 5). A "
           "value that is not a number of seconds is refused (exit 1).\n"
           ".TP\n.B P11CA_DEBUG\n"
           "Comma-separated debug subsystems (p11, prov, ca, reg, srv, cli, "
           "all), written to stderr or to P11CA_DEBUG_FILE.\n.TP\n"
           ".B P11CA_TEST_CLOCK\nFor the test suite only: the registry's "
           "clock starts at these Unix seconds and moves only when a command "
           "waits for a rate-limit slot, without sleeping "
           "(docs/internals/registry.md). Never set it in production.\n"
           ".SH EXIT STATUS\n.TP\n0\nsuccess\n.TP\n1\nusage error\n.TP\n2\n"
           "input rejected (bad URI, bad file, policy)\n.TP\n3\ntoken or PIN "
           "problem (no token, no object, PIN refused or missing, module "
           "error)\n.TP\n4\nregistry problem\n.TP\n5\ninternal error\n");
}

static int run_group(struct cli *cli, size_t g, int argc, char **argv)
{
    const struct cli_cmd *cmd;

    /* A command of one word: its table has one entry, without a verb. */
    if (!groups[g].cmds[0].verb) {
        optind = 0;
        return groups[g].cmds[0].run(cli, argc, argv);
    }

    /* "p11ca audit" or "p11ca audit --dir D" means "p11ca audit list". */
    if ((argc < 2
         || (argv[1][0] == '-' && strcmp(argv[1], "--help") != 0
             && strcmp(argv[1], "-h") != 0))
        && (cmd = cli_cmd_find(groups[g].cmds, "list")) != NULL
        && strcmp(groups[g].group, "audit") == 0) {
        optind = 0;
        return cmd->run(cli, argc, argv);
    }
    if (argc < 2 || strcmp(argv[1], "help") == 0
        || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: p11ca %s COMMAND\n\n", groups[g].group);
        for (cmd = groups[g].cmds; cmd->group; cmd++)
            fprintf(f, "  p11ca %s %s %s\n      %s\n", cmd->group, cmd->verb,
                    cmd->args, cmd->summary);
        return argc < 2 ? P11CA_E_USAGE : P11CA_OK;
    }
    cmd = cli_cmd_find(groups[g].cmds, argv[1]);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command \"%s %s\"",
                               groups[g].group, argv[1]);
    optind = 0; /* GNU getopt: start over for the command's options */
    return cmd->run(cli, argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli cli = {0};
    int c, rc = P11CA_E_USAGE;
    const char *wait;
    long wait_ms;

    while ((c = cli_getopt(&cli, argc, argv, "+hV", opts)) != -1) {
        switch (c) {
        case 'h':
            help_all();
            return P11CA_EXIT_OK;
        case 'V':
            printf("p11ca %s\n", PACKAGE_VERSION);
            return P11CA_EXIT_OK;
        default:
            usage(stderr);
            return P11CA_EXIT_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return P11CA_EXIT_USAGE;
    }
    if (strcmp(argv[0], "help") == 0) {
        help_all();
        return P11CA_EXIT_OK;
    }
    if (strcmp(argv[0], "version") == 0) {
        printf("p11ca %s\n", PACKAGE_VERSION);
        return P11CA_EXIT_OK;
    }
    if (strcmp(argv[0], "man") == 0) {
        print_man();
        return P11CA_EXIT_OK;
    }
    /* The p11 layer falls back to the default on a bad value: say it. */
    wait = getenv("P11CA_TOKEN_WAIT");
    if (wait && *wait && p11_token_wait_parse(wait, &wait_ms) != CKR_OK) {
        rc = cli_error(P11CA_E_USAGE, "P11CA_TOKEN_WAIT: %s",
                       p11_error_message());
        goto out;
    }
    for (size_t g = 0; g < N_GROUPS; g++)
        if (strcmp(argv[0], groups[g].group) == 0) {
            rc = run_group(&cli, g, argc, argv);
            goto out;
        }
    rc = cli_usage_error(NULL, "unknown command \"%s\"", argv[0]);
out:
    p11_ctx_free(cli.p11);
    return p11ca_exit_code(rc);
}
