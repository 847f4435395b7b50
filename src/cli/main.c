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
    printf(".SH PINS\nA PIN comes from pin\\-value= or pin\\-source= in the "
           "URI, from \\-\\-pin\\-source, or from a prompt on the terminal "
           "(without echo). PINs are never printed or logged. A PIN that the "
           "token refused is never tried again automatically.\n"
           ".SH ENVIRONMENT\n.TP\n.B P11CA_MODULE\nPKCS#11 module to load "
           "instead of the p11-kit registered modules.\n.TP\n.B P11CA_DEBUG\n"
           "Comma-separated debug subsystems (p11, prov, ca, reg, srv, cli, "
           "all), written to stderr or to P11CA_DEBUG_FILE.\n"
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
