/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca crl: a CRL of the CA's revoked certificates, signed with its key. */
#include "config.h"

#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ca/ca.h"

extern const struct cli_cmd cli_crl_cmds[];

enum { OPT_DIR = 1, OPT_OUT, OPT_DAYS };

static void crl_progress(size_t done, void *arg);
static int crl_write(X509_CRL *crl, ca_outfile *f);
static void crl_report(struct cli *cli, ca *c, X509_CRL *crl, uint64_t num,
                       size_t n, const char *out);

static void crl_progress(size_t done, void *arg)
{
    (void)arg;
    fprintf(stderr, "\r\033[KCRL: %zu entries", done);
}

/* Into @f (--out, opened before signing), else standard output. */
static int crl_write(X509_CRL *crl, ca_outfile *f)
{
    if (!f)
        return PEM_write_X509_CRL(stdout, crl) && fflush(stdout) == 0
                   ? P11CA_OK
                   : p11ca_err_set(P11CA_E_IO, "cannot write the CRL");
    if (!PEM_write_bio_X509_CRL(ca_outfile_bio(f), crl))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return ca_outfile_commit(f);
}

static void crl_report(struct cli *cli, ca *c, X509_CRL *crl, uint64_t num,
                       size_t n, const char *out)
{
    char *next = cli_time_iso(X509_CRL_get0_nextUpdate(crl));
    char *last = cli_time_iso(X509_CRL_get0_lastUpdate(crl));

    if (cli->json)
        (void)cli_json_print(json_pack(
            "{s:I, s:I, s:s?, s:s?, s:s?, s:s}", "number", (json_int_t)num,
            "entries", (json_int_t)n, "last_update", last, "next_update", next,
            "file", out, "dir", ca_dir(c)));
    else
        fprintf(
            stderr,
            "p11ca: CRL number %llu with %zu revoked certificate(s), next update %s; also in %s/crl.pem\n",
            (unsigned long long)num, n, next ? next : "?", ca_dir(c));
    free(next);
    free(last);
}

static int cmd_crl(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"out", required_argument, NULL, OPT_OUT},
        {"days", required_argument, NULL, OPT_DAYS},
        {0},
    };
    const struct cli_cmd *me = &cli_crl_cmds[0];
    const char *dir = NULL, *out = NULL;
    unsigned long days = 0;
    ca_outfile *f = NULL;
    X509_CRL *crl = NULL;
    uint64_t num = 0;
    size_t n = 0;
    char *end;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_OUT)
            out = optarg;
        else if (o == OPT_DAYS && (days = strtoul(optarg, &end, 10)) > 0
                 && days <= 3650 && !*end && optarg[0] != '-')
            continue;
        else
            return cli_usage_error(me, o == OPT_DAYS ? "--days: 1 to 3650"
                                                     : "bad option");
    }
    dir = cli_ca_dir(dir);
    if (!dir || !*dir || optind < argc)
        return cli_usage_error(me, "give --dir DIR (or P11CA_CA_DIR)");
    rc = ca_open(dir, &c);
    if (rc == P11CA_OK)
        rc = ca_set_access(c, cli->module, cli->pin_source);
    if (rc == P11CA_OK)
        ca_set_out_flags(c, cli_out_flags(cli));
    /* --out is checked before a CRL number is taken or anything signed. */
    if (rc == P11CA_OK && out)
        rc = ca_outfile_open(out, 0644, cli_out_flags(cli), &f);
    if (rc == P11CA_OK)
        rc = ca_crl_make(c, (unsigned)days,
                         isatty(STDERR_FILENO) ? crl_progress : NULL, NULL,
                         &crl, &num, &n);
    if (rc == P11CA_OK && isatty(STDERR_FILENO) && n >= 10000)
        fputs("\r\033[K", stderr);
    if (rc == P11CA_OK && ca_warning(c))
        fprintf(stderr, "p11ca: warning: %s\n", ca_warning(c));
    if (rc == P11CA_OK && (out || !cli->json))
        rc = crl_write(crl, f);
    if (rc == P11CA_OK)
        crl_report(cli, c, crl, num, n, out);
    else
        rc = cli_error(rc, "crl: %s", p11ca_err_message());
    ca_outfile_free(f);
    X509_CRL_free(crl);
    ca_close(c);
    return rc;
}

const struct cli_cmd cli_crl_cmds[] = {
    {"crl", NULL, "--dir DIR [--out FILE] [--days N]",
     "Make a CRL (v2) of every revoked, unexpired certificate of the CA: "
     "the next CRL number, lastUpdate now, nextUpdate after crl_days of "
     "ca.cnf, the authority key identifier, each entry's reason code and "
     "invalidity date; signed with the CA key (after the same key checks "
     "as issue). Written to DIR/crl.pem and to FILE (or standard output), "
     "and audited. Progress on a terminal. CRL numbers never go back: "
     "DIR/last-crl-number keeps the last one outside the registry, and a "
     "registry whose numbers are behind it (restored from an older backup) "
     "is refused with exit 4. The audit trail's head is signed after the "
     "CRL; if that signature fails, the CRL stands and a warning says so "
     "(p11ca audit sign signs the head later).",
     "--dir DIR\tthe CA directory (default $P11CA_CA_DIR)\n"
     "--out FILE\twrite the CRL (PEM) to FILE instead of standard output "
     "(see OUTPUT FILES)\n"
     "--days N\tvalidity (default crl_days of ca.cnf, 7)",
     cmd_crl},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
