/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca issue: one CSR (or a batch) through the CA's policy to a recorded,
 * signed certificate, written out only after the registry has it. */
#include "config.h"

#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ca/ca.h"

extern const struct cli_cmd cli_issue_cmds[];

enum {
    OPT_DIR = 1,
    OPT_PROFILE,
    OPT_SAN,
    OPT_DAYS,
    OPT_CLIENT_ID,
    OPT_SUBJECT,
    OPT_OUT,
    OPT_CHAIN,
    OPT_P7B,
    OPT_NOT_ACTIVATED,
    OPT_BATCH,
    OPT_OUTDIR,
    OPT_GROUP,
    OPT_WAIT,
    OPT_SIGNERS,
};

struct issue_args {
    const char *dir;
    ca_issue_opts o;
    const char *out;
    bool chain;
    const char *p7b;
    const char *batch;
    const char *outdir;
    unsigned group;
    unsigned signers;
    unsigned wait;
    const char *csr;
};

struct progress {
    bool tty;
    bool json;
    json_t *items;
    size_t issued, rejected;
    double start, shown; /* monotonic seconds */
};

/* The progress line is redrawn this often at most (seconds). */
#define PROGRESS_EVERY 0.1

static int issue_opt(const struct cli_cmd *me, int o, struct issue_args *a);
static int issue_args_check(const struct cli_cmd *me, struct issue_args *a);
static int issue_outputs(ca *c, ca_req *r, struct issue_args *a,
                         ca_outfile *out, ca_outfile *p7b);
static void issue_report(struct cli *cli, ca_req *r, struct issue_args *a,
                         bool written);
static int issue_undelivered(struct cli *cli, ca *c, ca_req *r,
                             struct issue_args *a, int rc);
static int issue_one(struct cli *cli, ca *c, struct issue_args *a);
static void batch_item(const char *name, const char *serial, int rc,
                       const char *msg, void *arg);
static int issue_batch(struct cli *cli, ca *c, struct issue_args *a);

static int parse_num(const struct cli_cmd *me, const char *opt, unsigned max,
                     unsigned *out)
{
    char *end = NULL;
    unsigned long n = strtoul(optarg, &end, 10);

    if (!*optarg || *end || optarg[0] == '-' || n == 0 || n > max)
        return cli_usage_error(me, "%s: a number from 1 to %u", opt, max);
    *out = (unsigned)n;
    return P11CA_OK;
}

static int issue_opt(const struct cli_cmd *me, int o, struct issue_args *a)
{
    switch (o) {
    case OPT_DIR:
        a->dir = optarg;
        return P11CA_OK;
    case OPT_PROFILE:
        a->o.profile = optarg;
        return P11CA_OK;
    case OPT_SAN:
        a->o.san = optarg;
        return P11CA_OK;
    case OPT_DAYS:
        return parse_num(me, "--days", 36500, &a->o.days);
    case OPT_CLIENT_ID:
        a->o.client_id = optarg;
        return P11CA_OK;
    case OPT_SUBJECT:
        a->o.subject = optarg;
        return P11CA_OK;
    case OPT_OUT:
        a->out = optarg;
        return P11CA_OK;
    case OPT_CHAIN:
        a->chain = true;
        return P11CA_OK;
    case OPT_P7B:
        a->p7b = optarg;
        return P11CA_OK;
    case OPT_NOT_ACTIVATED:
        a->o.not_activated = true;
        return P11CA_OK;
    case OPT_BATCH:
        a->batch = optarg;
        return P11CA_OK;
    case OPT_OUTDIR:
        a->outdir = optarg;
        return P11CA_OK;
    case OPT_GROUP:
        return parse_num(me, "--group", 10000, &a->group);
    case OPT_SIGNERS:
        return parse_num(me, "--signers", 64, &a->signers);
    case OPT_WAIT:
        return cli_parse_wait(me, optarg, &a->wait);
    default:
        return cli_usage_error(me, "bad option");
    }
}

static int issue_args_check(const struct cli_cmd *me, struct issue_args *a)
{
    a->dir = cli_ca_dir(a->dir);
    if (!a->dir || !a->o.profile)
        return cli_usage_error(me, "give --dir DIR and --profile NAME");
    if (a->batch && (a->csr || !a->outdir))
        return cli_usage_error(
            me, "--batch takes --outdir DIR and no CSR argument");
    if (a->batch
        && (a->out || a->p7b || a->chain || a->o.client_id || a->o.subject
            || a->o.san))
        return cli_usage_error(
            me,
            "--batch takes none of --out, --p7b, --chain, --client-id, --subject, --san");
    if (!a->batch && !a->csr)
        return cli_usage_error(me,
                               "give the CSR file (or - for standard input)");
    if (!a->batch && a->outdir)
        return cli_usage_error(me, "--outdir goes with --batch");
    if (!a->batch && a->signers)
        return cli_usage_error(me, "--signers goes with --batch");
    return P11CA_OK;
}

/* Fill the output files (opened before signing) and stdout. */
static int issue_outputs(ca *c, ca_req *r, struct issue_args *a,
                         ca_outfile *out, ca_outfile *p7b)
{
    BIO *std = NULL;
    int rc = P11CA_OK;

    if (out) {
        rc = ca_output_pem(c, ca_req_cert(r), a->chain, ca_outfile_bio(out));
        if (rc == P11CA_OK)
            rc = ca_outfile_commit(out);
    } else {
        std = BIO_new_fp(stdout, BIO_NOCLOSE);
        rc = std ? ca_output_pem(c, ca_req_cert(r), a->chain, std)
                 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        BIO_free(std);
        if (rc == P11CA_OK && (fflush(stdout) != 0 || ferror(stdout)))
            rc =
                p11ca_err_set(P11CA_E_IO, "cannot write to standard output: %s",
                              strerror(errno));
    }
    if (rc == P11CA_OK && p7b) {
        rc = ca_output_p7b(c, ca_req_cert(r), ca_outfile_bio(p7b));
        if (rc == P11CA_OK)
            rc = ca_outfile_commit(p7b);
    }
    return rc;
}

static void issue_report(struct cli *cli, ca_req *r, struct issue_args *a,
                         bool written)
{
    char serial[REG_SERIAL_TEXT_MAX];
    json_t *j;

    reg_serial_text(ca_req_serial(r), serial, sizeof(serial));
    if (cli->json) {
        j = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s?, s:b}", "serial",
                      serial, "profile", a->o.profile, "client_id",
                      ca_req_client_id(r), "status",
                      a->o.not_activated ? "not-activated" : "activated",
                      "file", a->out, "p7b", a->p7b, "written", written);
        (void)cli_json_print(j);
    } else if (a->out || !written) {
        printf("issued %s (profile %s, client ID %s, %s)%s%s\n", serial,
               cli_esc(a->o.profile),
               ca_req_client_id(r) ? cli_esc(ca_req_client_id(r)) : "-",
               a->o.not_activated ? "not-activated" : "activated",
               written ? " to " : ", NOT written",
               written ? cli_esc(a->out) : "");
    }
}

/*
 * The certificate is recorded (and activated unless --not-activated) but
 * an output failed: say so, with its serial and where to get it, on
 * standard output and in the error.
 */
static int issue_undelivered(struct cli *cli, ca *c, ca_req *r,
                             struct issue_args *a, int rc)
{
    char serial[REG_SERIAL_TEXT_MAX], why[512];

    reg_serial_text(ca_req_serial(r), serial, sizeof(serial));
    snprintf(why, sizeof(why), "%s", p11ca_err_message());
    issue_report(cli, r, a, false);
    return cli_error(
        rc,
        "issue: certificate %s is issued and recorded in the registry, but was not delivered: %s; 'p11ca cert show --dir %s --pem %s' prints it",
        serial, why, ca_dir(c), serial);
}

static int issue_one(struct cli *cli, ca *c, struct issue_args *a)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    ca_outfile *out = NULL, *p7b = NULL;
    ca_req *r = NULL;
    bool recorded;
    int rc;

    assert(a->csr != NULL); /* issue_args_check refused no CSR */
    rc = ca_file_read(a->csr, CA_MAX_CSR, &buf, &len);
    if (rc == P11CA_OK)
        rc = ca_req_new(c, buf, len,
                        strcmp(a->csr, "-") == 0 ? "the CSR on standard input"
                                                 : a->csr,
                        &a->o, &r);
    /* Output files are checked (and made) before anything is signed or
     * recorded: a directory, a symbolic link or an unwritable place is
     * refused here. */
    if (rc == P11CA_OK && a->out)
        rc = ca_outfile_open(a->out, 0644, cli_out_flags(cli), &out);
    if (rc == P11CA_OK && a->p7b)
        rc = ca_outfile_open(a->p7b, 0644, cli_out_flags(cli), &p7b);
    if (rc == P11CA_OK)
        rc = ca_req_sign(c, r);
    if (rc == P11CA_OK)
        rc = ca_req_record(c, r);
    recorded = rc == P11CA_OK;
    if (rc == P11CA_OK)
        rc = issue_outputs(c, r, a, out, p7b);
    if (rc == P11CA_OK)
        issue_report(cli, r, a, true);
    else if (recorded)
        rc = issue_undelivered(cli, c, r, a, rc);
    else
        rc = cli_error(rc, "issue: %s", p11ca_err_message());
    /* A recorded certificate is an audit entry, delivered or not. */
    if (recorded)
        cli_audit_checkpoint(c);
    ca_outfile_free(out);
    ca_outfile_free(p7b);
    ca_req_free(r);
    free(buf);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "issued N, rejected M, R certificates/s" on a terminal. */
static void progress_show(struct progress *p, double t)
{
    double secs = t - p->start;

    p->shown = t;
    fprintf(stderr, "\r\033[Kissued %zu, rejected %zu, %.0f certificates/s",
            p->issued, p->rejected, secs > 0 ? (double)p->issued / secs : 0.0);
}

static void batch_item(const char *name, const char *serial, int rc,
                       const char *msg, void *arg)
{
    struct progress *p = arg;
    double t = p->tty ? now_s() : 0;

    if (rc == P11CA_OK)
        p->issued++;
    else
        p->rejected++;
    if (p->tty && rc != P11CA_OK)
        fputs("\r\033[K", stderr);
    /* A rejection is an error of its own (JSON with --json). */
    if (rc != P11CA_OK && strstr(msg, name))
        (void)cli_error(rc, "%s", msg);
    else if (rc != P11CA_OK)
        (void)cli_error(rc, "%s: %s", name, msg);
    if (rc == P11CA_OK && p->json)
        json_array_append_new(p->items,
                              json_pack("{s:s, s:s, s:s}", "csr", name,
                                        "serial", serial, "file", msg));
    else if (rc == P11CA_OK)
        printf("%s\t%s\n", serial, cli_esc(msg));
    /* Redrawn at most every PROGRESS_EVERY: a terminal is slower than a
     * batch. */
    if (p->tty && (rc != P11CA_OK || t - p->shown >= PROGRESS_EVERY))
        progress_show(p, t);
}

static int issue_batch(struct cli *cli, ca *c, struct issue_args *a)
{
    struct progress p = {
        isatty(STDERR_FILENO) == 1, cli->json, json_array(), 0, 0, now_s(), 0};
    ca_batch_opts bo = {.group = a->group, .signers = a->signers};
    size_t issued = 0, rejected = 0;
    char why[1024] = "";
    int rc;

    rc = ca_issue_batch(c, a->batch, a->outdir, &a->o, &bo, batch_item, &p,
                        &issued, &rejected);
    /* Kept: the audit checkpoint below sets a message of its own. */
    if (rc != P11CA_OK)
        snprintf(why, sizeof(why), "%s", p11ca_err_message());
    if (p.tty)
        fputs("\r\033[K", stderr);
    if (!cli->json)
        fprintf(stderr,
                "p11ca: issued %zu certificate(s) into %s, rejected %zu\n",
                issued, a->outdir, rejected);
    if (cli->json)
        (void)cli_json_print(p.items);
    else
        json_decref(p.items);
    if (issued)
        cli_audit_checkpoint(c);
    if (rc != P11CA_OK)
        return cli_error(rc, "issue --batch stopped: %s", why);
    return rejected ? P11CA_E_POLICY : P11CA_OK;
}

static int cmd_issue(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"san", required_argument, NULL, OPT_SAN},
        {"days", required_argument, NULL, OPT_DAYS},
        {"client-id", required_argument, NULL, OPT_CLIENT_ID},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"out", required_argument, NULL, OPT_OUT},
        {"chain", no_argument, NULL, OPT_CHAIN},
        {"p7b", required_argument, NULL, OPT_P7B},
        {"not-activated", no_argument, NULL, OPT_NOT_ACTIVATED},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"outdir", required_argument, NULL, OPT_OUTDIR},
        {"group", required_argument, NULL, OPT_GROUP},
        {"signers", required_argument, NULL, OPT_SIGNERS},
        {"wait", required_argument, NULL, OPT_WAIT},
        {0},
    };
    const struct cli_cmd *me = &cli_issue_cmds[0];
    struct issue_args a = {.wait = CA_WAIT_DEFAULT};
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        rc = issue_opt(me, o, &a);
        if (rc != P11CA_OK)
            return rc;
    }
    if (argc - optind > 1)
        return cli_usage_error(me, "give one CSR");
    a.csr = optind < argc ? argv[optind] : NULL;
    rc = issue_args_check(me, &a);
    if (rc != P11CA_OK)
        return rc;
    rc = ca_open(a.dir, &c);
    if (rc == P11CA_OK) {
        ca_set_wait(c, a.wait);
        rc = ca_set_access(c, cli->module, cli->pin_source);
    }
    if (rc != P11CA_OK)
        rc = cli_error(rc, "%s", p11ca_err_message());
    else if (a.batch)
        rc = issue_batch(cli, c, &a);
    else
        rc = issue_one(cli, c, &a);
    ca_close(c);
    return rc;
}

const struct cli_cmd cli_issue_cmds[] = {
    {"issue", NULL,
     "--dir DIR --profile NAME [--san NAMES] [--days N] [--client-id ID] "
     "[--subject /CN=..] [--out FILE] [--chain] [--p7b FILE] "
     "[--not-activated] [--wait SECONDS] CSR.pem | --batch DIR|- --outdir "
     "DIR [--group N] [--signers N] [--wait SECONDS]",
     "Issue a certificate for a CSR under a profile of the CA in DIR. The "
     "CSR's signature, key type and size, names (syntax; the profile's "
     "allowed_dns, allowed_ip, allowed_email and allowed_uri), subject "
     "(subject_allowed, subject_required, cn_in_san), requested CA:TRUE and "
     "validity are checked first, for the CSR's names and subject and for "
     "--san and --subject alike: a rejection says why, exits 2 and records "
     "nothing. The serial is 20 random bytes; "
     "extensions come from the profile (CSR extensions are not copied, "
     "except the subjectAltName when --san is not given), with SKI/AKI and "
     "the CRL and AIA URLs of ca.cnf. The certificate is recorded in the "
     "registry before it is written out. Without --out the certificate goes "
     "to standard output. Output files are checked before anything is "
     "signed (a directory or a symbolic link is refused); if one still "
     "cannot be written once the certificate is recorded, p11ca prints its "
     "serial, says so and exits 2: p11ca cert show --pem SERIAL gives it. "
     "The sign-up limit of ca.cnf (rate_limit in [ ca ]) is for "
     "registrations and does not hold an operator's issuance; a profile "
     "with a rate_limit of its own does: when its second is full, the "
     "command waits for the next one (--wait), then fails with exit 4 and "
     "records nothing.",
     "--dir DIR\tthe CA directory (default $P11CA_CA_DIR)\n"
     "--profile NAME\ta profile of ca.cnf: server, client, intermediate, "
     "ocsp or your own\n"
     "--san NAMES\tthe subjectAltName instead of the CSR's: "
     "DNS:host,IP:1.2.3.4,email:a@b,URI:https://x (checked against the "
     "profile like the CSR's)\n"
     "--days N\tvalidity (default: the profile's default_days; at most "
     "max_days)\n"
     "--client-id ID\tthe registry's client ID, unique among activated "
     "certificates (default: the subject CN under a profile with client_id "
     "= cn; refused by client_id = none, the default of server profiles; "
     "required by client_id = required)\n"
     "--subject /CN=..\treplace the CSR's subject (profiles with "
     "subject_override = yes; checked against the profile like the CSR's)\n"
     "--out FILE\twrite the certificate (PEM) to FILE (see OUTPUT FILES)\n"
     "--chain\tadd the CA certificate and its issuers after the leaf\n"
     "--p7b FILE\talso write a PKCS#7 (DER, certs-only) of the leaf and "
     "its chain\n"
     "--not-activated\trecord it as not-activated (activate later with "
     "p11ca cert activate)\n"
     "--batch DIR|-\tissue every CSR file of DIR (or the PEM CSRs on "
     "standard input), recorded in group commits before each certificate "
     "is written to OUTDIR/SERIAL.pem; prints SERIAL and file per "
     "certificate, in the order of the CSRs, and on a terminal the "
     "progress (certificates per second); exit 2 if any CSR was rejected. "
     "CSRs are read and checked by one thread per CPU while the token "
     "signs; memory stays constant whatever the length of the stream\n"
     "--outdir DIR\twhere --batch writes the certificates\n"
     "--group N\tcertificates per registry transaction in a batch "
     "(default 64; at most the profile's rate_limit)\n"
     "--signers N\tthreads signing on the token in a batch, one session "
     "each (default: one per CPU, at most 8, for an RSA CA key, whose token "
     "signatures scale over sessions; 1 for EC and EdDSA keys, which "
     "SoftHSM2 signs one at a time)\n" CLI_WAIT_HELP,
     cmd_issue},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
