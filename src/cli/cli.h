/* SPDX-License-Identifier: Apache-2.0 */
/* The p11ca command: shared state, the command table and helpers. */
#ifndef P11CA_CLI_H
#define P11CA_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc.h"
#include "common/timeparse.h"
#include "p11/p11.h"

struct cli {
    const char *module;     /* --module */
    const char *pin_source; /* --pin-source */
    bool json;              /* --json */
    bool single_session;    /* --single-session */
    bool follow_symlinks;   /* --follow-symlinks */
    p11_ctx *p11;           /* made on first use */
};

/*
 * A command: "group verb" (verb NULL for single-word commands), a one-line
 * usage, a summary and the option help.  The help text and the man page
 * are both made from this table.
 */
struct cli_cmd {
    const char *group;
    const char *verb;
    const char *args;
    const char *summary;
    const char *options; /* "--opt ARG\tdescription\n" lines */
    int (*run)(struct cli *cli, int argc, char **argv);
};

extern const struct cli_cmd cli_token_cmds[];
extern const struct cli_cmd cli_key_cmds[];
extern const struct cli_cmd cli_cert_cmds[];
extern const struct cli_cmd cli_audit_cmds[];
extern const struct cli_cmd cli_index_cmds[];
extern const struct cli_cmd cli_p12_cmds[];
extern const struct cli_cmd cli_ca_cmds[];       /* cmd_ca.c */
extern const struct cli_cmd cli_issue_cmds[];    /* cmd_issue.c */
extern const struct cli_cmd cli_crl_cmds[];      /* cmd_crl.c */
extern const struct cli_cmd cli_enroll_cmds[];   /* cmd_enroll.c */
extern const struct cli_cmd cli_ocsp_cmds[];     /* cmd_ocsp.c */
extern const struct cli_cmd cli_serve_cmds[];    /* cmd_serve.c */
extern const struct cli_cmd cli_registry_cmds[]; /* cmd_registry.c */

/* Registry verbs of the cert group (cmd_certreg.c). */
int cmd_certreg_list(struct cli *cli, int argc, char **argv);
int cmd_cert_show(struct cli *cli, int argc, char **argv);
int cmd_cert_activate(struct cli *cli, int argc, char **argv);
int cmd_cert_deactivate(struct cli *cli, int argc, char **argv);
int cmd_cert_revoke(struct cli *cli, int argc, char **argv);
int cmd_cert_delete(struct cli *cli, int argc, char **argv);
/* cert register, register-ca and ca list (cmd_register.c). */
int cmd_cert_register(struct cli *cli, int argc, char **argv);
int cmd_cert_register_ca(struct cli *cli, int argc, char **argv);
int cmd_ca_list(struct cli *cli, int argc, char **argv);
/* p11ca audit list (cmd_certreg.c); verify, head, sign are cmd_audit.c's. */
int cmd_audit_list(struct cli *cli, int argc, char **argv);

struct ca;
/* cli_ca_dir - the CA directory: @dir (--dir), else a non-empty
 * $P11CA_CA_DIR, else NULL. */
const char *cli_ca_dir(const char *dir);
/* cli_open_ca - open the CA directory cli_ca_dir(@dir); prints the error
 * itself. */
int cli_open_ca(const char *dir, struct ca **out);
/* cli_open_ca_ro - the same with ca_open_readonly, for the commands that
 * only read (list, show, verify, export). */
int cli_open_ca_ro(const char *dir, struct ca **out);
/*
 * cli_parse_wait - the SECONDS of --wait (0 to CA_WAIT_MAX) into @out;
 * a usage error of @cmd otherwise.  CLI_WAIT_HELP is its help line.
 */
int cli_parse_wait(const struct cli_cmd *cmd, const char *arg, unsigned *out);
#define CLI_WAIT_HELP                                                          \
    "--wait SECONDS\twhen a rate limit of ca.cnf is full, wait up to "         \
    "SECONDS for a free second, then fail (exit 4); default 5, 0: fail at "    \
    "once"
/* cli_audit_checkpoint - at the end of a command that signed with the CA
 * key: sign the audit trail's head if it is due (ca_audit_checkpoint); a
 * failure is a warning, the command's result stands. */
void cli_audit_checkpoint(struct ca *c);
/* The last time a certificate can carry: 9999-12-31T23:59:59Z. */
#define CLI_TIME_MAX P11CA_TIME_MAX
/* Dates: YYYY-MM-DD[THH:MM:SS[Z]] or @unix, a real date up to
 * CLI_TIME_MAX; durations: a positive number and a unit, 30d, 12h, 90m,
 * 3600s, 2w.  0, -1 (not a date or duration), or -2 (a duration longer
 * than CLI_TIME_MAX seconds).  common/timeparse.h, shared with the
 * service's queries. */
static inline int cli_parse_time(const char *s, int64_t *t)
{
    return p11ca_parse_time(s, t);
}
static inline int cli_parse_duration(const char *s, int64_t *secs)
{
    return p11ca_parse_duration(s, secs);
}

/* Options every command accepts; their values start at CLI_OPT_COMMON. */
#define CLI_OPT_COMMON 1000
#define CLI_COMMON_OPTIONS                                                     \
    {"module", required_argument, NULL, CLI_OPT_COMMON + 0},                   \
        {"pin-source", required_argument, NULL, CLI_OPT_COMMON + 1},           \
        {"json", no_argument, NULL, CLI_OPT_COMMON + 2},                       \
        {"single-session", no_argument, NULL, CLI_OPT_COMMON + 3},             \
        {"follow-symlinks", no_argument, NULL, CLI_OPT_COMMON + 4},            \
    {                                                                          \
        "help", no_argument, NULL, 'h'                                         \
    }

/*
 * cli_getopt - getopt_long over a command's @opts (which include
 * CLI_COMMON_OPTIONS), handling the common ones itself.  Returns the next
 * command-specific option, -1 at the end, 'h' for --help, '?' on error.
 */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
               const struct option *opts);

/*
 * cli_usage_error - "p11ca GROUP VERB: @fmt" with the usage and a hint to
 * --help (a JSON error with --json); when cli_getopt has just refused an
 * option, its message (naming the option) replaces @fmt.  Returns
 * P11CA_E_USAGE.
 */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cli_help - print the help of @cmd on stdout; returns P11CA_OK. */
int cli_help(const struct cli_cmd *cmd);

/* cli_cmd_find - the entry of @table for @verb, or NULL. */
const struct cli_cmd *cli_cmd_find(const struct cli_cmd *table,
                                   const char *verb);

/* cli_p11 - the PKCS#11 context (made on first use); NULL on no memory. */
p11_ctx *cli_p11(struct cli *cli);

/*
 * cli_fail - print "p11ca: <p11 layer message>" (with @what as context when
 * given) and return the status code for @rv.
 */
int cli_fail(CK_RV rv, const char *what);

/*
 * cli_error - print "p11ca: <message>" to stderr, through cli_esc; with
 * --json, one line {"error": {"code": p11ca_rc_name(@rc), "message": ...,
 * "exit": N}} on stderr instead (jansson escapes it).  Returns @rc.
 */
int cli_error(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cli_set_json_errors - errors as JSON (main sets it when --json is
 * anywhere on the command line, so that even option errors are JSON). */
void cli_set_json_errors(bool on);

/*
 * cli_esc - @s (NULL: "") as text for a terminal.  Names from CSRs,
 * certificates, tokens and the registry are data, not terminal control:
 * every human-readable output passes them through here (JSON output is
 * escaped by jansson).  Control characters (C0 and DEL) and bytes that are
 * not UTF-8 become \xHH; C1 controls and the invisible code points that
 * reorder or break a line (bidi marks, embeddings, overrides, isolates,
 * U+2028/U+2029) become \uXXXX; other UTF-8 text is kept.  Backslashes are
 * kept, so RFC 2253 names read as before.  The result lives in one of
 * CLI_ESC_SLOTS static buffers, reused round-robin (so up to that many may
 * appear in one printf; single-threaded use only), and is cut with "..."
 * past CLI_ESC_MAX bytes.
 */
#define CLI_ESC_MAX   4096
#define CLI_ESC_SLOTS 8
const char *cli_esc(const char *s);

/* cli_rc_from_rv - status code (exit-code class) for a p11 layer result
 * (enroll_rc_from_rv). */
int cli_rc_from_rv(CK_RV rv);

/* cli_parse_uri - parse @str or print the reason; NULL @str gives NULL. */
int cli_parse_uri(const char *str, p11_uri **out);

/* cli_parse_hex - "01ab" or "01:ab" into @buf; returns length or -1. */
int cli_parse_hex(const char *str, unsigned char *buf, size_t max);

/* cli_hex - lower-case hex of @p into a malloc'd string. */
char *cli_hex(const unsigned char *p, size_t n);

struct X509_name_st;
struct asn1_string_st;
/* cli_name_text - @n printed with X509_NAME_print_ex @flags (malloc'd;
 * NULL when it cannot be printed). */
char *cli_name_text(const struct X509_name_st *n, unsigned long flags);
/*
 * cli_name_show - @n as p11ca prints every subject and issuer: in the
 * certificate's order, as `openssl x509 -nameopt utf8,sep_comma_plus_space`
 * prints it ("C=US, O=Example, CN=www.example.com"), RFC 2253 specials
 * escaped.  Control characters are left as they are (a NUL byte becomes
 * the text \x00): text output passes the result through cli_esc like any
 * name, JSON takes it as it is.  Malloc'd; NULL when it cannot be printed.
 */
char *cli_name_show(const struct X509_name_st *n);

/*
 * cli_der_names - the subject and issuer of the DER certificate @der as
 * cli_name_show prints them (malloc'd; both NULL when @der does not decode).
 */
void cli_der_names(const unsigned char *der, size_t len, char **subject,
                   char **issuer);

/* cli_time_iso - "2026-11-22T10:00:00Z" of @t (malloc'd; NULL if bad). */
char *cli_time_iso(const struct asn1_string_st *t);

/* cli_pin_prompt - the p11_pin_prompt_fn of the command: reads /dev/tty
 * without echo.  Never prints the PIN. */
int cli_pin_prompt(const char *what, bool ctx_specific, char *pin, size_t max,
                   void *arg);

/* Output: json mode prints @j, text mode is printed by the caller. */
int cli_json_print(json_t *j);

/* cli_out_flags - the ca_outfile_open flags of the common options. */
unsigned cli_out_flags(const struct cli *cli);

/*
 * cli_write_out - write @len bytes to @path through a ca_outfile (see
 * ca_outfile_open in ca/ca.h: regular files atomically, devices and FIFOs
 * written through, symbolic links only with --follow-symlinks); prints
 * the error.  Returns P11CA_OK or the error's status.
 */
int cli_write_out(struct cli *cli, const char *path, int mode, const void *data,
                  size_t len);

/* cli_read_file - read at most @max bytes of @path; malloc'd, NUL-ended. */
int cli_read_file(const char *path, size_t max, unsigned char **out,
                  size_t *len);

/* A file for zip_write. */
struct zip_entry {
    const char *name;
    unsigned char *data;
    size_t len;
};

/*
 * zip_write - a zip archive of @n stored (uncompressed) files to @f, for
 * certificate downloads.  Returns P11CA_OK or P11CA_E_IO.
 */
int zip_write(FILE *f, const struct zip_entry *e, size_t n);

#endif
