/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca: the command table, global options and dispatch. */
#include "config.h"

#include "cli.h"
#include "common/log.h"

#include <openssl/crypto.h>
#include <signal.h>
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
    {"registry", "move a registry to another location or backend",
     cli_registry_cmds},
    {"import-index", "migrate from an openssl ca database", cli_index_cmds + 0},
    {"export-index", "write an openssl ca database", cli_index_cmds + 1},
    {"ca", "create, install and show a certificate authority", cli_ca_cmds},
    {"issue", "issue certificates from CSRs under a profile", cli_issue_cmds},
    {"crl", "make the CA's certificate revocation list", cli_crl_cmds},
    {"ocsp", "answer OCSP requests; the delegated OCSP signer", cli_ocsp_cmds},
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

/* The secure heap for PINs: a few buffers of P11_MAX_PIN_LEN bytes. */
#define CLI_SECURE_HEAP 65536

#define EXIT_CODES                                                             \
    "Exit codes: 0 ok, 1 usage, 2 input rejected, 3 token or PIN problem,\n"   \
    "4 registry problem, 5 internal error.\n"

/* The first sentence of @s (up to ". "), cut to @max columns ("..." when
 * cut). */
static void print_brief(FILE *f, const char *s, int max)
{
    const char *end = strstr(s, ". ");
    int n = end ? (int)(end - s) + 1 : (int)strlen(s);

    if (n <= max) {
        fprintf(f, "%.*s\n", n, s);
        return;
    }
    n = max - 3;
    while (n > 0 && s[n] != ' ')
        n--;
    fprintf(f, "%.*s...\n", n > 0 ? n : max - 3, s);
}

/*
 * Group @g under its heading: each command's name and the first sentence
 * of its summary (@brief), or its usage line and whole summary.
 */
static void group_list(FILE *f, size_t g, bool brief)
{
    fprintf(f, "\n%s: %s\n", groups[g].group, groups[g].summary);
    for (const struct cli_cmd *c = groups[g].cmds; c->group; c++) {
        char name[48];

        snprintf(name, sizeof(name), "p11ca %s%s%s", c->group,
                 c->verb ? " " : "", c->verb ? c->verb : "");
        if (brief) {
            fprintf(f, "  %-24s ", name);
            print_brief(f, c->summary, 80 - 27);
        } else {
            fprintf(f, "  %s %s\n      %s\n", name, c->args, c->summary);
        }
        if (!c->verb)
            break;
    }
}

/* `p11ca` alone: the commands under their group headings. */
static void usage(FILE *f)
{
    fprintf(f, "usage: p11ca [COMMON OPTIONS] GROUP COMMAND [ARGS]\n");
    for (size_t g = 0; g < N_GROUPS; g++)
        group_list(f, g, true);
    fprintf(
        f,
        "\n'p11ca help' describes every command and the common options,\n'p11ca help GROUP' one group, 'p11ca GROUP COMMAND --help' one command.\n" EXIT_CODES);
}

static void help_all(void)
{
    printf(
        "p11ca %s - certificate authority and token tool for PKCS#11 keys\n\nusage: p11ca [COMMON OPTIONS] GROUP COMMAND [ARGS]\n",
        PACKAGE_VERSION);
    for (size_t g = 0; g < N_GROUPS; g++)
        group_list(stdout, g, false);
    printf(
        "\ncommon options (before or after the command):\n"
        "  --module PATH        PKCS#11 module; else $P11CA_MODULE; else p11-kit's modules\n"
        "  --pin-source FILE    read the PIN from FILE (mode 0600)\n"
        "  --json               print results as JSON (and errors as JSON on standard error)\n"
        "  --single-session     one session per token (PIV cards)\n"
        "  --follow-symlinks    let an output file be a symbolic link\n"
        "\nPINs: pin-value= or pin-source= in the URI, --pin-source, or a prompt on the terminal.\n"
        "Tokens: a URI without a token searches every initialised token; one that is away is waited for up to $P11CA_TOKEN_WAIT seconds (default 5; ca.cnf: token_wait).\n" EXIT_CODES);
}

static ssize_t group_find(const char *name)
{
    for (size_t g = 0; g < N_GROUPS; g++)
        if (strcmp(name, groups[g].group) == 0)
            return (ssize_t)g;
    return -1;
}

/* `p11ca help [GROUP [COMMAND]]`. */
static int help(int argc, char **argv)
{
    const struct cli_cmd *cmd;
    ssize_t g;

    if (argc < 2) {
        help_all();
        return P11CA_OK;
    }
    g = group_find(argv[1]);
    if (g < 0)
        return cli_usage_error(NULL, "no command group \"%s\"", argv[1]);
    if (argc < 3 || !groups[g].cmds[0].verb) {
        printf("usage: p11ca %s%s [ARGS]\n", argv[1],
               groups[g].cmds[0].verb ? " COMMAND" : "");
        group_list(stdout, (size_t)g, false);
        printf("\n'p11ca %s%s --help' describes one.\n", argv[1],
               groups[g].cmds[0].verb ? " COMMAND" : "");
        return P11CA_OK;
    }
    cmd = cli_cmd_find(groups[g].cmds, argv[2]);
    if (!cmd)
        return cli_usage_error(NULL, "no command \"%s %s\"", argv[1], argv[2]);
    return cli_help(cmd);
}

/* Every variable the code reads (getenv), for the man page's
 * ENVIRONMENT; tests/integration/cli-help.sh checks that none is missing. */
static const struct {
    const char *name;
    const char *text;
} env_vars[] = {
    {"P11CA_MODULE", "PKCS#11 module to load instead of the modules "
                     "registered with p11-kit (--module comes first)."},
    {"P11CA_ALLOW_URI_MODULE_PATH",
     "yes: module-path= in a URI may load a module that is not loaded "
     "(default: no, such a URI is refused with exit 2). Also read by the "
     "provider when openssl.cnf does not set p11ca-allow-uri-module-path."},
    {"P11CA_STATE_DIR", "The directory of the PIN state files (see PINS); "
                        "default $XDG_STATE_HOME/p11ca, else "
                        "~/.local/state/p11ca."},
    {"P11CA_CA_DIR", "The CA directory of the commands that take --dir, "
                     "when --dir is not given."},
    {"P11CA_TOKEN_WAIT", "Seconds to wait for a token that is away (0 to "
                         "600, up to three decimals; 0: do not wait; default "
                         "5). A value that is not a number of seconds is "
                         "refused (exit 1)."},
    {"PGPASSFILE, PGSERVICEFILE, PGHOST, PGUSER, ...",
     "libpq's own, for a PostgreSQL registry (registry = postgresql:... "
     "in ca.cnf): what its location leaves out comes from them, e.g. the "
     "password from ~/.pgpass. Messages name such a registry by its "
     "service, host, port, database and user, never its password. See "
     "docs/registry-postgresql.md."},
    {"P11CA_DEBUG", "Comma-separated debug subsystems: p11 (PKCS#11 calls), "
                    "prov (the provider), ca (the CA key), reg (the "
                    "registry), or all; written to standard error or to "
                    "P11CA_DEBUG_FILE. Never holds a PIN."},
    {"P11CA_DEBUG_FILE", "Append the debug output to this file instead."},
    {"P11CA_DEBUG_LEVEL", "1 errors, 2 information, 3 debug (default)."},
    {"P11CA_PIN_SOURCE", "For the p11ca provider, which p11ca loads to sign "
                         "with a token key: a PIN file to use when neither "
                         "the URI nor the command gives a PIN. See "
                         "p11ca-provider(7)."},
    {"P11CA_PIN_ENV", "For the p11ca provider: the name of an environment "
                      "variable that holds the PIN. See p11ca-provider(7)."},
    {"P11CA_SINGLE_SESSION", "For the p11ca provider: yes to use one "
                             "session per token, as --single-session."},
    {"P11CA_DEFAULT_TOKEN", "For the p11ca provider: the token a URI "
                            "without token attributes means."},
    {"P11CA_LOGIN_BEHAVIOR", "For the p11ca provider: auto, always or "
                             "never. See p11ca-provider(7)."},
    {"P11CA_CACHE_PIN", "For the p11ca provider: yes to keep the PIN that "
                        "logged in to a token, to log in again after the "
                        "token logged the application out (default no). See "
                        "p11ca-provider(7)."},
    {"P11CA_CACHE_KEYS", "For the p11ca provider: yes (default) or no, "
                         "keep the keys it made for later loads. See "
                         "p11ca-provider(7)."},
    {"P11CA_RSA_PSS_KEYS", "For the p11ca provider: yes (default) or no, "
                           "RSA keys that may sign with PSS only are RSA-PSS "
                           "keys. See p11ca-provider(7)."},
    {"P11CA_RAND", "For the p11ca provider: yes to offer P11CA-RAND, the "
                   "token's random generator (default no). See "
                   "p11ca-provider(7)."},
    {"P11CA_RAND_TOKEN", "For the p11ca provider: the token whose generator "
                         "P11CA-RAND uses."},
    {"P11CA_KEY_FILE", "For the p11ca provider: uri (default) or uri-pem, "
                       "what the PEM key file of a token key holds. See "
                       "p11ca-provider(7)."},
    {"P11CA_PIN_PROMPT", "For the p11ca provider: yes (default) or no, ask "
                         "for a PIN on the terminal when the application "
                         "gives no way to ask. See p11ca-provider(7)."},
    {"P11CA_STRICT", "1: abort on a broken internal precondition instead of "
                     "reporting it (for the test suite)."},
    {"P11CA_TEST_CLOCK", "For the test suite only: the registry's clock "
                         "starts at these Unix seconds and moves only when a "
                         "command waits for a rate-limit slot, without "
                         "sleeping (docs/internals/registry.md). Never set it "
                         "in production."},
    {"OPENSSL_MODULES", "Where OpenSSL (and so p11ca) finds the p11ca "
                        "provider, p11ca.so, when it is not installed in "
                        "OpenSSL's modules directory."},
};

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
    printf(
        ".SH CA.CNF\n"
        "p11ca ca init writes DIR/ca.cnf (OpenSSL config syntax) with a comment block that describes every key. ca.cnf reads no other file: a ca.cnf with an .include directive or .pragma includedir (however its lines are joined with a backslash), or with a NUL byte, is refused with its line (exit 2) before anything is signed or recorded; write the settings into ca.cnf itself. Other pragmas (.pragma dollarid:on) are allowed. Keys of the [ ca ] section for the audit trail:\n");
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
    printf(
        ".PP\nKeys of the [ ocsp ] section (the OCSP responder of p11ca ocsp respond and p11ca serve; docs/ocsp.md). ocsp_url of [ ca ] puts the responder's URL in the authorityInfoAccess of issued certificates. An unknown key is refused.\n");
    man_options(
        "next_update = DURATION\tnextUpdate minus thisUpdate of every "
        "response (1m to 366d; default 1d): how long a client may rely on "
        "it. A response is never later than the delegated signer's "
        "certificate or a scheduled revocation (supersede = grace).\n"
        "refresh_before = DURATION\tthe service signs a cached response "
        "again when its nextUpdate is this close (default: half of "
        "next_update; less than next_update).\n"
        "not_activated = good|hold\twhat a not-activated (deactivated, or "
        "issued with --not-activated) certificate is: good (default: it is "
        "not revoked, and the CRL does not list it either) or hold (revoked "
        "with reason certificateHold, from the time it was deactivated; good "
        "again once activated; RFC 6960 2.2, RFC 5280 5.3.1).\n"
        "ignore_nonce = yes|no\tyes: a request's nonce is ignored, so that "
        "the service answers it from its cache of signed responses, as large "
        "responders do (the response has no nonce; default no: signed for "
        "the request, nonce echoed).\n"
        "cache_entries = N\tthe service's cache of signed responses holds at "
        "most N (default 100000: 55 to 150 MB at most; 0: no cache).\n"
        "signer_key = URI|FILE\tthe delegated OCSP signer's key (written by "
        "p11ca ocsp signer init); without it the CA key signs.\n"
        "signer_cert = FILE\tits certificate (default ocsp-signer.pem), "
        "which must be issued by this CA with extendedKeyUsage OCSPSigning.\n"
        "digest = NAME\tthe digest of the responses' signatures (default: "
        "digest of [ ca ], else by key).\n");
}

/* The rules of the certificate registry that several commands share. */
static void print_man_registry(void)
{
    printf(
        ".SH CERTIFICATE REGISTRY\n"
        "A certificate is identified by its issuer and serial: the issuer is a CA of the registry (\\fBp11ca ca list\\fR shows their ids and names), and registered certificates of other CAs may have the serial of one of ours. A serial that several CAs have is refused as ambiguous; \\-\\-issuer (an id or a name) chooses.\n"
        ".PP\n"
        "Client IDs: one activated certificate per client ID. The profile key \\fBclient_id\\fR of ca.cnf says which certificates take one: \\fBcn\\fR (\\-\\-client\\-id, else the subject CN; the default of profiles whose ext_key_usage allows clientAuth or that have none), \\fBnone\\fR (no client ID, \\-\\-client\\-id refused; the default otherwise, so that a server certificate can be renewed while the old one is in use), \\fBrequired\\fR (\\-\\-client\\-id must be given).\n"
        ".PP\n"
        "Renewal: after \\fBp11ca enroll \\-\\-renew\\fR or \\fB\\-\\-rekey\\fR the old certificate is revoked with reason superseded (profile key \\fBsupersede = revoke\\fR, the default), or left not-activated and revoked by the first registry write after a grace period (\\fBsupersede = grace:7d\\fR; \\fBp11ca crl\\fR carries such revocations out before it lists the revoked certificates, audited with the actor registry:scheduled), or kept (\\fBsupersede = keep\\fR).\n"
        ".PP\n"
        "Bulk revocation: \\fBp11ca cert revoke\\fR with filters (other than \\-\\-serial alone) revokes only with \\-\\-yes or after \\fByes\\fR is typed at the terminal, where it shows how many certificates match; \\-\\-dry\\-run lists them. The audit trail gets a revoke entry for each certificate (its history) and a revoke\\-bulk entry that names them all.\n"
        ".PP\n"
        "Only \\fBp11ca ca init\\fR creates a CA's registry. Every other command refuses a CA whose registry is missing or empty (exit 4) and says how to restore it: copy back the backup made with sqlite3 DIR/registry.db \".backup FILE\". CRL numbers never go back: DIR/last\\-crl\\-number keeps the last one, and \\fBp11ca crl\\fR refuses a registry whose CRL number is below it.\n"
        ".PP\n"
        "Commands that only read (cert list, cert show, audit list, audit verify, audit head, ca show, ca list, export\\-chain, export\\-index) open the registry read-only and work for a user who may read the CA directory but not write it; the commands that write keep the registry's \\-wal and \\-shm files for them. A read-only command never migrates: a registry made by an older p11ca is refused (exit 4) until a command that writes (\\fBp11ca audit sign\\fR, which an upgraded registry needs anyway) has migrated it.\n");
}

/* The man page, made from the same table as the help text. */
static void print_man(void)
{
    printf(
        ".TH P11CA 1 \"\" \"p11ca %s\" \"User Commands\"\n"
        ".SH NAME\np11ca \\- certificate authority and token tool for PKCS#11 keys\n.SH SYNOPSIS\n.B p11ca\n[\\-\\-module PATH] [\\-\\-pin\\-source FILE] [\\-\\-json] GROUP COMMAND [ARGS]\n"
        ".SH DESCRIPTION\nManages keys and certificates on PKCS#11 tokens (HSMs, smartcards) addressed by RFC 7512 pkcs11: URIs. Private keys are generated on the token and never leave it.\n",
        PACKAGE_VERSION);
    printf(".SH COMMON OPTIONS\n");
    man_options(
        "--module PATH\tLoad this PKCS#11 module. Precedence: --module, then the environment variable P11CA_MODULE, then every module registered with p11-kit. module-name= and module-path= in a URI select one of the loaded modules; module-path= loads another file only with P11CA_ALLOW_URI_MODULE_PATH=yes (a URI does not load code), and is refused otherwise (exit 2).\n"
        "--pin-source FILE\tRead the PIN from FILE, which must not be readable by group or others.\n"
        "--json\tPrint results as JSON on standard output, and each error as one line of JSON on standard error (see JSON).\n"
        "--single-session\tUse one session per token, for tokens that misbehave with several (PIV cards).\n"
        "--follow-symlinks\tAn output file given on the command line (--out, --p7b, export files) may be a symbolic link: write to the file it points to. Without it a symbolic link is refused (exit 2).\n");
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
    printf(
        ".SH JSON\nWith \\-\\-json, results are JSON on standard output and each error is one line on standard error: {\"error\": {\"code\": \"not\\-found\", \"message\": \"...\", \"exit\": 2}}, where code is one of usage, input, token, pin, registry, internal, no\\-memory, io, not\\-found, exists, state, rate, policy, ca\\-key, registry\\-unavailable (the registry's database server is down or unreachable: try again later; exit 4), and exit the exit status. Standard output then holds nothing, except for a certificate that was issued but not written (its serial, \"written\": false). Every time is ISO 8601 UTC (2026\\-11\\-22T10:00:00Z). Progress and notes on standard error stay text.\n"
        ".SH SERIALS AND NAMES\nSerials are printed as openssl x509 \\-serial prints them: upper\\-case hexadecimal, an even number of digits (0A1B...). Commands accept them in any common form: lower case, colons between the digits (0a:1b), an odd number of digits, a leading 0x. Subjects and issuers are printed in the certificate's order, as openssl x509 \\-nameopt utf8,sep_comma_plus_space prints them (C=US, O=Example, CN=www.example.com), with one difference: a control character in a name, a client ID or any other text from a CSR, a certificate or a token is printed as \\ex1b (C1 controls and invisible bidi marks as \\eu009b, \\eu202e), the same everywhere, CSV included; JSON has the exact value.\n");
    printf(
        ".SH OUTPUT FILES\nEvery command writes the files it is given the same way, after checking the place before anything is signed or recorded. A new or existing regular file is written to a temporary file next to it, synced, and renamed over it. A character device (/dev/null) or a FIFO is written through and stays what it is; p11ca waits for a FIFO's reader before it signs. A symbolic link is refused unless \\-\\-follow\\-symlinks is given; a directory, a block device or a socket is refused. When a certificate was recorded but its file could not be written, p11ca says so with its serial (exit 2), and \\fBp11ca cert show \\-\\-pem\\fR SERIAL prints it.\n");
    print_man_cnf();
    print_man_registry();
    printf(
        ".SH PINS\nA PIN comes from pin\\-value= or pin\\-source= in the URI, from \\-\\-pin\\-source, or from a prompt on the terminal (without echo; what was typed ahead is kept, and the terminal is given back as it was on every path, ^C included). PINs are never printed, logged or stored. A PIN from the URI or \\-\\-pin\\-source is used on one token only: when a command would log in to several tokens with it, it fails and names them (exit 2); add token= or serial= to the URI.\n.PP\nSuch a PIN is not sent when the token reports its last try (CKF_USER_PIN_FINAL_TRY: the prompt is still offered and says LAST TRY) or a locked PIN (then nothing is sent, exit 3). When the token refuses it, p11ca notes which source that was (a PIN file by its name, inode, size and time; any pin\\-value= as one source) and when, in a file per token in $P11CA_STATE_DIR, else $XDG_STATE_HOME/p11ca, else ~/.local/state/p11ca (directory 0700, file 0600; never a PIN or a hash of one). No later command sends that source again until it changes (the PIN file edited), a login on that token succeeds, or that file is removed; the error says so and names the file (exit 3). A PIN typed at the prompt is always sent.\n.PP\nKeys with CKA_ALWAYS_AUTHENTICATE need the PIN again for each use: it is read again from the PIN source or asked again at the prompt (\"Enter signature PIN\"), never replayed from the login. The command keeps a PIN that worked in OpenSSL's secure heap, to log in again after a card reset.\n");
    printf(
        ".SH TOKENS\nA URI without a token (pkcs11:object=LABEL, pkcs11:id=%%01, pkcs11:) searches every initialised token. A slot without a token, with a token that is not initialised (SoftHSM2 always shows one), or whose token answers that it is absent, unrecognised or removed is skipped; P11CA_DEBUG=p11 prints a line for each. token list shows uninitialised tokens (to find one for token init). When nothing matches, the error names the URI.\n"
        ".PP\nA token that is away for a moment (a card reader that blinks; SoftHSM2 while another process logs in) is waited for: when a URI names a token that is not present, when a command that needs one object (key pubout, the CA key of issue and crl) finds none while a token seems away, and when a token goes away under an operation. The slots are looked at again after 10 ms, 20 ms, 40 ms and so on, then every 200 ms, up to P11CA_TOKEN_WAIT seconds (default 5; for the CA key, token_wait in ca.cnf); then the error names the token and how long it waited. PKCS#11 cannot tell a token away for a moment from one that never existed: a misspelt token= costs the wait (P11CA_TOKEN_WAIT=0 fails at once).\n");
    printf(
        ".SH RATE LIMITS\nThe sign-up limit, rate_limit in [ ca ] of ca.cnf (default 15 per second, 0: none), holds devices and clients signing up: p11ca cert register, and p11ca serve's auto-registrations, POST /v1/certs and POST /v1/enroll (behind the service's own signup_limit per CA; the service does not wait for a slot and answers 429 with Retry-After: 1). An operator's own p11ca issue, issue \\-\\-batch and p11ca enroll are not held by it; a profile of ca.cnf may set a rate_limit of its own, which then holds every issuance under that profile (a batch records at most that many certificates per second). Each limit counts the certificates of its kind recorded in one second of the registry's clock. When the second is full, the command waits for the next one, up to \\-\\-wait SECONDS (default 5; 0: not at all), then fails with exit 4, records nothing, and says which limit was reached and how long it waited.\n");
    printf(".SH ENVIRONMENT\n");
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
        printf(".TP\n.B %s\n", env_vars[i].name);
        roff(env_vars[i].text);
        printf("\n");
    }
    printf(
        ".SH EXIT STATUS\n.TP\n0\nsuccess\n.TP\n1\nusage error\n.TP\n2\n"
        "input rejected (bad URI, bad file, policy)\n.TP\n3\ntoken or PIN problem (no token, no object, PIN refused or missing, module error)\n.TP\n4\nregistry problem\n.TP\n5\ninternal error\n");
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
        fprintf(f, "usage: p11ca %s COMMAND [ARGS]\n", groups[g].group);
        group_list(f, g, false);
        fprintf(f, "\n'p11ca %s COMMAND --help' describes one.\n",
                groups[g].group);
        return argc < 2 ? P11CA_E_USAGE : P11CA_OK;
    }
    cmd = cli_cmd_find(groups[g].cmds, argv[1]);
    if (!cmd)
        return cli_usage_error(
            NULL, "unknown command \"%s %s\" (p11ca help %s lists them)",
            groups[g].group, argv[1], groups[g].group);
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
    int secure_heap;
    const char *wait;
    long wait_ms;

    /* A reader that goes away (a FIFO given to --out, `| head`) is a write
     * error to report, not a reason to die half-way. */
    signal(SIGPIPE, SIG_IGN);
    /* Errors are JSON as soon as --json is anywhere, even an error about
     * an option that comes before it. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli_set_json_errors(true);

    /*
     * PINs that are kept (the PKCS#11 layer's cache, the CA key's PIN, the
     * enrollment's) go to OpenSSL's secure heap: locked in memory, out of
     * core dumps.  Without it (RLIMIT_MEMLOCK) OpenSSL falls back to plain
     * memory, which the p11 layer replaces with pages of its own.
     */
    secure_heap = CRYPTO_secure_malloc_init(CLI_SECURE_HEAP, 16);
    if (secure_heap == 0)
        LOG_DBG(CLI, "no secure heap: PIN buffers in locked pages instead");
    while ((c = cli_getopt(&cli, argc, argv, "+hV", opts)) != -1) {
        switch (c) {
        case 'h':
            help_all();
            return P11CA_EXIT_OK;
        case 'V':
            printf("p11ca %s\n", PACKAGE_VERSION);
            return P11CA_EXIT_OK;
        default:
            return p11ca_exit_code(cli_usage_error(NULL, "bad option"));
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return P11CA_EXIT_USAGE;
    }
    if (strcmp(argv[0], "help") == 0) {
        rc = help(argc, argv);
        goto out;
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
    if (group_find(argv[0]) >= 0)
        rc = run_group(&cli, (size_t)group_find(argv[0]), argc, argv);
    else
        rc = cli_usage_error(
            NULL, "unknown command \"%s\" (p11ca help lists them)", argv[0]);
out:
    p11_ctx_free(cli.p11);
    if (secure_heap)
        CRYPTO_secure_malloc_done();
    return p11ca_exit_code(rc);
}
