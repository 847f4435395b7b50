/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the commands: options, errors, URIs, PIN prompt. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/enroll.h"

/* Errors as JSON (--json anywhere on the command line). */
static bool json_errors;

/* What getopt_long found wrong, for the next cli_usage_error. */
static char getopt_msg[256];

void cli_set_json_errors(bool on)
{
    json_errors = on;
}

/*
 * The message for the option getopt_long refused (it prints nothing:
 * opterr is 0), naming the option as the user wrote it.
 */
static void getopt_problem(int argc, char **argv, const char *shortopts,
                           const struct option *opts)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    const struct option *hit = NULL;
    size_t n;
    int hits = 0;

    if (strncmp(arg, "--", 2) != 0) {
        const char *p = optopt ? strchr(shortopts, optopt) : NULL;
        snprintf(getopt_msg, sizeof(getopt_msg),
                 p && p[1] == ':' ? "option -%c needs an argument"
                                  : "unknown option -%c",
                 optopt ? optopt : '?');
        return;
    }
    n = strcspn(arg + 2, "=");
    for (const struct option *o = opts; o->name; o++) {
        if (strncmp(o->name, arg + 2, n) != 0)
            continue;
        hit = o;
        if (strlen(o->name) == n) {
            hits = 1;
            break;
        }
        hits++;
    }
    if (!hit)
        snprintf(getopt_msg, sizeof(getopt_msg), "unknown option --%.*s",
                 (int)(n > 100 ? 100 : n), arg + 2);
    else if (hits > 1)
        snprintf(getopt_msg, sizeof(getopt_msg), "option --%.*s is ambiguous",
                 (int)(n > 100 ? 100 : n), arg + 2);
    else if (hit->has_arg == required_argument)
        snprintf(getopt_msg, sizeof(getopt_msg),
                 "option --%s needs an argument", hit->name);
    else
        snprintf(getopt_msg, sizeof(getopt_msg),
                 "option --%s takes no argument", hit->name);
}

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
               const struct option *opts)
{
    int c;

    getopt_msg[0] = '\0';
    opterr = 0;
    for (;;) {
        c = getopt_long(argc, argv, shortopts, opts, NULL);
        switch (c) {
        case CLI_OPT_COMMON + 0:
            cli->module = optarg;
            continue;
        case CLI_OPT_COMMON + 1:
            cli->pin_source = optarg;
            continue;
        case CLI_OPT_COMMON + 2:
            cli->json = true;
            json_errors = true;
            continue;
        case CLI_OPT_COMMON + 3:
            cli->single_session = true;
            continue;
        case CLI_OPT_COMMON + 4:
            cli->follow_symlinks = true;
            continue;
        case '?':
        case ':':
            getopt_problem(argc, argv, shortopts, opts);
            return '?';
        default:
            return c;
        }
    }
}

/* A string for JSON: jansson takes UTF-8 only, so other bytes become '?'
 * (a file name or a subject may hold anything). */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j || !s || !(copy = strdup(s)))
        return j;
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

/* One error: "WHO: MESSAGE" on stderr (MESSAGE through cli_esc), or
 * with --json one line {"error": {"code", "message", "exit"}} on stderr
 * (jansson escapes it). */
static void print_error(const char *who, int rc, const char *msg)
{
    json_t *j;

    if (!json_errors) {
        fprintf(stderr, "%s: %s\n", who, cli_esc(msg));
        return;
    }
    j = json_pack("{s:{s:s, s:o, s:i}}", "error", "code", p11ca_rc_name(rc),
                  "message", json_text(msg), "exit", p11ca_exit_code(rc));
    if (!j || json_dumpf(j, stderr, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0)
        fprintf(stderr, "%s: %s\n", who, cli_esc(msg));
    else
        fputc('\n', stderr);
    json_decref(j);
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
    char who[128], msg[CLI_ESC_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* getopt's own finding says more than the command's "bad option". */
    if (getopt_msg[0]) {
        snprintf(msg, sizeof(msg), "%s", getopt_msg);
        getopt_msg[0] = '\0';
    }
    snprintf(who, sizeof(who), "p11ca%s%s%s%s", cmd ? " " : "",
             cmd ? cmd->group : "", cmd && cmd->verb ? " " : "",
             cmd && cmd->verb ? cmd->verb : "");
    if (json_errors) {
        char full[sizeof(who) + sizeof(msg) + 2];

        snprintf(full, sizeof(full), "%s: %s", who, msg);
        print_error(who, P11CA_E_USAGE, full);
    } else if (cmd) {
        fprintf(stderr, "%s: %s\nusage: %s %s\nsee: %s --help\n", who,
                cli_esc(msg), who, cmd->args, who);
    } else {
        fprintf(stderr, "%s: %s\nsee: p11ca help\n", who, cli_esc(msg));
    }
    return P11CA_E_USAGE;
}

static void print_options(FILE *f, const char *opts)
{
    const char *line = opts;

    while (line && *line) {
        const char *nl = strchr(line, '\n');
        const char *tab = strchr(line, '\t');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        if (tab && (!nl || tab < nl))
            fprintf(f, "  %-26.*s %.*s\n", (int)(tab - line), line,
                    (int)(n - (tab - line) - 1), tab + 1);
        else
            fprintf(f, "  %.*s\n", n, line);
        line = nl ? nl + 1 : NULL;
    }
}

int cli_help(const struct cli_cmd *cmd)
{
    printf("usage: p11ca %s%s%s %s\n\n%s\n", cmd->group, cmd->verb ? " " : "",
           cmd->verb ? cmd->verb : "", cmd->args, cmd->summary);
    if (cmd->options && *cmd->options) {
        printf("\noptions:\n");
        print_options(stdout, cmd->options);
    }
    printf("\ncommon options:\n");
    print_options(stdout,
                  "--module PATH\tuse this PKCS#11 module (default: "
                  "$P11CA_MODULE, else every module registered with p11-kit)\n"
                  "--pin-source FILE\tread the PIN from FILE (mode 0600)\n"
                  "--json\tprint results as JSON (errors: JSON on stderr)\n"
                  "--single-session\tuse one session per token (PIV cards)\n"
                  "--follow-symlinks\tlet an output file name be a symbolic "
                  "link (written to its target)\n"
                  "-h, --help\tthis help");
    return P11CA_OK;
}

const struct cli_cmd *cli_cmd_find(const struct cli_cmd *table,
                                   const char *verb)
{
    for (; table->group; table++)
        if (verb && table->verb && strcmp(table->verb, verb) == 0)
            return table;
    return NULL;
}

p11_ctx *cli_p11(struct cli *cli)
{
    p11_config cfg = {0};

    if (cli->p11)
        return cli->p11;
    cfg.module_path = cli->module;
    cfg.pin_source = cli->pin_source;
    cfg.single_session = cli->single_session;
    /* A command lives seconds; a PIN typed once serves a re-login after a
     * card reset (in the secure heap main() set up). */
    cfg.cache_pin = true;
    cli->p11 = p11_ctx_new(&cfg);
    if (cli->p11)
        p11_ctx_set_prompt(cli->p11, cli_pin_prompt, NULL);
    else
        cli_error(P11CA_E_NOMEM, "out of memory");
    return cli->p11;
}

int cli_rc_from_rv(CK_RV rv)
{
    return enroll_rc_from_rv(rv);
}

/* Messages quote names from CSRs, certificates and tokens: escaped. */
int cli_error(int rc, const char *fmt, ...)
{
    char msg[CLI_ESC_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_error("p11ca", rc, msg);
    return rc;
}

/* Whether code point @u is printed as \uXXXX: C1 controls, and the
 * invisible ones that reorder or break lines (bidi marks, embeddings,
 * overrides and isolates; line and paragraph separators). */
static bool esc_code_point(unsigned long u)
{
    return (u >= 0x80 && u <= 0x9f) || u == 0x061c || u == 0x200e || u == 0x200f
           || (u >= 0x2028 && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069);
}

/* Append @add to @out (@len used of CLI_ESC_MAX); false when it is full. */
static bool esc_put(char *out, size_t *len, const char *add, size_t n)
{
    if (*len + n + sizeof("...") > CLI_ESC_MAX) {
        memcpy(out + *len, "...", sizeof("..."));
        *len += 3;
        return false;
    }
    memcpy(out + *len, add, n);
    *len += n;
    out[*len] = '\0';
    return true;
}

/* The length of the UTF-8 character at @p (at most @rest bytes) and its
 * code point; 0 when it is not well-formed UTF-8 (surrogates and code
 * points past U+10FFFF included). */
static int esc_utf8(const unsigned char *p, size_t rest, unsigned long *u)
{
    int n = UTF8_getc(p, (int)(rest < 6 ? rest : 6), u);

    if (n < 2 || *u > 0x10ffff || (*u >= 0xd800 && *u <= 0xdfff))
        return 0;
    return n;
}

const char *cli_esc(const char *s)
{
    static char slots[CLI_ESC_SLOTS][CLI_ESC_MAX];
    static unsigned next;
    const unsigned char *p = (const unsigned char *)s;
    char *out = slots[next++ % CLI_ESC_SLOTS], hex[12];
    size_t len = 0, rest = s ? strlen(s) : 0, n;
    unsigned long u = 0;
    bool ok = true;

    out[0] = '\0';
    while (ok && rest > 0) {
        n = *p < 0x80 ? 1 : (size_t)esc_utf8(p, rest, &u);
        if ((n == 1 && (*p < 0x20 || *p == 0x7f)) || n == 0) {
            snprintf(hex, sizeof(hex), "\\x%02x", *p);
            n = 1;
        } else if (n > 1 && esc_code_point(u)) {
            snprintf(hex, sizeof(hex), "\\u%04lx", u);
        } else {
            hex[0] = '\0';
        }
        ok = hex[0] ? esc_put(out, &len, hex, strlen(hex))
                    : esc_put(out, &len, (const char *)p, n);
        p += n;
        rest -= n;
    }
    return out;
}

int cli_fail(CK_RV rv, const char *what)
{
    if (what)
        return cli_error(cli_rc_from_rv(rv), "%s: %s", what,
                         p11_error_message());
    return cli_error(cli_rc_from_rv(rv), "%s", p11_error_message());
}

int cli_parse_uri(const char *str, p11_uri **out)
{
    CK_RV rv;

    *out = NULL;
    if (!str)
        return P11CA_OK;
    rv = p11_uri_parse(str, out);
    if (rv != CKR_OK)
        return cli_fail(rv, "bad URI");
    return P11CA_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cli_parse_hex(const char *str, unsigned char *buf, size_t max)
{
    size_t n = 0;

    while (*str) {
        int hi, lo;
        if (*str == ':') {
            str++;
            continue;
        }
        hi = hexval(str[0]);
        lo = str[1] ? hexval(str[1]) : -1;
        if (hi < 0 || lo < 0 || n >= max)
            return -1;
        buf[n++] = (unsigned char)(hi << 4 | lo);
        str += 2;
    }
    return n ? (int)n : -1;
}

/* A NUL byte in a name becomes the text \x00, so that nothing after it
 * is hidden; every other byte is left for cli_esc or jansson. */
char *cli_name_text(const X509_NAME *n, unsigned long flags)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL, *p = NULL;
    size_t nuls = 0, j = 0;
    long len = 0;

    if (!b || X509_NAME_print_ex(b, n, 0, flags) < 0)
        goto out;
    len = BIO_get_mem_data(b, &p);
    for (long i = 0; i < len; i++)
        nuls += p[i] == '\0';
    if (len < 0 || !(s = malloc((size_t)len + 3 * nuls + 1)))
        goto out;
    for (long i = 0; i < len; i++) {
        if (p[i] == '\0') {
            memcpy(s + j, "\\x00", 4);
            j += 4;
        } else {
            s[j++] = p[i];
        }
    }
    s[j] = '\0';
out:
    BIO_free(b);
    return s;
}

/*
 * openssl's -nameopt utf8,sep_comma_plus_space without esc_ctrl: RFC 2253
 * specials are escaped here, control characters are not, since every
 * output escapes them in one place (cli_esc for text, jansson for JSON).
 */
char *cli_name_show(const X509_NAME *n)
{
    return cli_name_text(n, XN_FLAG_SEP_CPLUS_SPC | ASN1_STRFLGS_ESC_2253
                                | ASN1_STRFLGS_UTF8_CONVERT
                                | ASN1_STRFLGS_DUMP_UNKNOWN
                                | ASN1_STRFLGS_DUMP_DER);
}

void cli_der_names(const unsigned char *der, size_t len, char **subject,
                   char **issuer)
{
    const unsigned char *p = der;
    X509 *x = der ? d2i_X509(NULL, &p, (long)len) : NULL;

    *subject = x ? cli_name_show(X509_get_subject_name(x)) : NULL;
    *issuer = x ? cli_name_show(X509_get_issuer_name(x)) : NULL;
    X509_free(x);
}

char *cli_time_iso(const ASN1_TIME *t)
{
    struct tm tm;
    char buf[32];

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return NULL;
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return strdup(buf);
}

char *cli_hex(const unsigned char *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);

    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hx[p[i] >> 4];
        s[2 * i + 1] = hx[p[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

int cli_json_print(json_t *j)
{
    int r;

    if (!j)
        return cli_error(P11CA_E_NOMEM, "out of memory");
    r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(j);
    return r == 0 ? P11CA_OK : cli_error(P11CA_E_IO, "cannot write output");
}

int cli_read_file(const char *path, size_t max, unsigned char **out,
                  size_t *len)
{
    unsigned char *buf = NULL;
    struct stat st;
    size_t n = 0;
    ssize_t r;
    int fd, rc = P11CA_E_IO;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_error(P11CA_E_INPUT, "cannot open %s: %s", path,
                         strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cli_error(P11CA_E_INPUT, "%s is not a regular file", path);
        goto out;
    }
    if ((size_t)st.st_size > max) {
        rc = cli_error(P11CA_E_INPUT, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = cli_error(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    while (n < (size_t)st.st_size) {
        r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = cli_error(P11CA_E_IO, "cannot read %s: %s", path,
                           r < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = P11CA_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

unsigned cli_out_flags(const struct cli *cli)
{
    return cli->follow_symlinks ? CA_OUT_FOLLOW_SYMLINKS : 0;
}

int cli_write_out(struct cli *cli, const char *path, int mode, const void *data,
                  size_t len)
{
    ca_outfile *f = NULL;
    int rc;

    rc = ca_outfile_open(path, mode, cli_out_flags(cli), &f);
    if (rc == P11CA_OK
        && BIO_write(ca_outfile_bio(f), data, (int)len) != (int)len)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_outfile_commit(f);
    ca_outfile_free(f);
    return rc == P11CA_OK ? rc : cli_error(rc, "%s", p11ca_err_message());
}
