/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca ocsp: answer one OCSP request offline (respond) and set up the
 * delegated OCSP signer (signer init). */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ocsp.h"

extern const struct cli_cmd cli_ocsp_cmds[];

enum {
    OPT_DIR = 1,
    OPT_REQIN,
    OPT_RESPOUT,
    OPT_KEY_URI,
    OPT_KEY,
    OPT_GENERATE,
    OPT_SUBJECT,
    OPT_DAYS,
    OPT_PROFILE,
};

/*
 * The request: at most CA_OCSP_MAX_REQUEST + 1 bytes are read, so that a
 * longer one reaches the responder as too long (malformedRequest) without
 * being read whole.
 */
static int req_read(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = P11CA_OK;

    *out = NULL;
    *len = 0;
    if (!f)
        return p11ca_err_set(P11CA_E_INPUT, "cannot open %s: %s", path,
                             strerror(errno));
    buf = malloc(CA_OCSP_MAX_REQUEST + 1);
    if (!buf)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    else
        n = fread(buf, 1, CA_OCSP_MAX_REQUEST + 1, f);
    if (rc == P11CA_OK && ferror(f))
        rc = p11ca_err_set(P11CA_E_INPUT, "cannot read %s", path);
    if (f != stdin)
        fclose(f);
    if (rc != P11CA_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return P11CA_OK;
}

static int resp_write(struct cli *cli, const ca_ocsp_resp *resp,
                      const char *path)
{
    ca_outfile *f = NULL;
    size_t len;
    const unsigned char *der = ca_ocsp_resp_der(resp, &len);
    int rc;

    if (strcmp(path, "-") == 0)
        return fwrite(der, 1, len, stdout) == len && fflush(stdout) == 0
                   ? P11CA_OK
                   : p11ca_err_set(P11CA_E_IO, "cannot write the response");
    rc = ca_outfile_open(path, 0644, cli_out_flags(cli), &f);
    if (rc == P11CA_OK
        && BIO_write(ca_outfile_bio(f), der, (int)len) != (int)len)
        rc = p11ca_err_set(P11CA_E_IO, "cannot write %s", path);
    if (rc == P11CA_OK)
        rc = ca_outfile_commit(f);
    ca_outfile_free(f);
    return rc;
}

/* What the response says, on stderr (or as JSON on stdout). */
static void resp_report(struct cli *cli, const ca_ocsp_resp *resp,
                        const ca_ocsp_info *info, const char *path)
{
    int st = ca_ocsp_resp_status(resp);

    if (cli->json) {
        (void)cli_json_print(
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:s?, s:s}",
                      "response_status", ca_ocsp_rstatus_name(st), "certs",
                      (json_int_t)info->n_certs, "good", (json_int_t)info->good,
                      "revoked", (json_int_t)info->revoked, "unknown",
                      (json_int_t)info->unknown, "nonce", info->nonce, "why",
                      info->why[0] ? info->why : NULL, "file", path));
    } else if (st == CA_OCSP_SUCCESSFUL) {
        fprintf(
            stderr,
            "p11ca: OCSP response for %zu certificate(s): %zu good, %zu revoked, %zu unknown%s\n",
            info->n_certs, info->good, info->revoked, info->unknown,
            info->nonce ? "; nonce echoed" : "");
    }
}

/* The exit status of an answer: 0 for a successful response, else what
 * made it an error (the response is written in every case). */
static int resp_rc(const ca_ocsp_resp *resp, const ca_ocsp_info *info)
{
    switch (ca_ocsp_resp_status(resp)) {
    case CA_OCSP_SUCCESSFUL:
        return P11CA_OK;
    case CA_OCSP_MALFORMED:
    case CA_OCSP_UNAUTHORIZED:
        return P11CA_E_INPUT;
    case CA_OCSP_TRY_LATER:
        /* The token (exit 3) or the registry (exit 4). */
        return info->rc;
    default:
        return P11CA_E_INTERNAL;
    }
}

static int cmd_ocsp_respond(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"reqin", required_argument, NULL, OPT_REQIN},
        {"respout", required_argument, NULL, OPT_RESPOUT},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_ocsp_cmds, "respond");
    const char *dir = NULL, *reqin = NULL, *respout = NULL;
    unsigned char *req = NULL;
    ca_ocsp_resp *resp = NULL;
    ca_ocsp_info info = {0};
    ca_ocsp *o = NULL;
    size_t len = 0;
    ca *c = NULL;
    int opt, rc;

    while ((opt = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (opt == 'h')
            return cli_help(me);
        if (opt == OPT_DIR)
            dir = optarg;
        else if (opt == OPT_REQIN)
            reqin = optarg;
        else if (opt == OPT_RESPOUT)
            respout = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    dir = cli_ca_dir(dir);
    if (!dir || !reqin || !respout || optind < argc)
        return cli_usage_error(
            me, "give --dir DIR, --reqin FILE and --respout FILE");
    rc = req_read(reqin, &req, &len);
    if (rc == P11CA_OK)
        rc = ca_open(dir, &c);
    if (rc == P11CA_OK)
        rc = ca_set_access(c, cli->module, cli->pin_source);
    if (rc == P11CA_OK)
        rc = ca_ocsp_new(c, &o);
    if (rc == P11CA_OK)
        rc = ca_ocsp_respond(o, ca_registry(c), req, len, (int64_t)time(NULL),
                             &resp, &info);
    if (rc == P11CA_OK)
        rc = resp_write(cli, resp, respout);
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "ocsp respond: %s", p11ca_err_message());
        goto out;
    }
    resp_report(cli, resp, &info, respout);
    rc = resp_rc(resp, &info);
    if (rc != P11CA_OK && !cli->json)
        cli_error(rc, "ocsp respond: answered %s: %s",
                  ca_ocsp_rstatus_name(ca_ocsp_resp_status(resp)), info.why);
out:
    ca_ocsp_resp_unref(resp);
    ca_ocsp_free(o);
    ca_close(c);
    free(req);
    return rc;
}

static int signer_opt(const struct cli_cmd *me, int o, const char **dir,
                      ca_ocsp_signer_opts *so)
{
    char *end = NULL;
    unsigned long n;

    switch (o) {
    case OPT_DIR:
        *dir = optarg;
        return P11CA_OK;
    case OPT_KEY_URI:
        so->key_uri = optarg;
        return P11CA_OK;
    case OPT_KEY:
        so->key_file = optarg;
        return P11CA_OK;
    case OPT_GENERATE:
        so->generate = optarg;
        return P11CA_OK;
    case OPT_SUBJECT:
        so->subject = optarg;
        return P11CA_OK;
    case OPT_PROFILE:
        so->profile = optarg;
        return P11CA_OK;
    case OPT_DAYS:
        n = strtoul(optarg, &end, 10);
        if (!*optarg || *end || optarg[0] == '-' || n == 0 || n > 36500)
            return cli_usage_error(me, "--days: a number from 1 to 36500");
        so->days = (unsigned)n;
        return P11CA_OK;
    default:
        return cli_usage_error(me, "bad option");
    }
}

static int cmd_ocsp_signer(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"key-uri", required_argument, NULL, OPT_KEY_URI},
        {"key", required_argument, NULL, OPT_KEY},
        {"generate", required_argument, NULL, OPT_GENERATE},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"days", required_argument, NULL, OPT_DAYS},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_ocsp_cmds, "signer");
    ca_ocsp_signer_opts so = {0};
    const char *dir = NULL;
    char *serial = NULL, shown[REG_SERIAL_TEXT_MAX] = "";
    ca *c = NULL;
    int o, rc;

    /* "signer init": the only signer command so far. */
    if (argc < 2 || (strcmp(argv[1], "init") != 0 && argv[1][0] != '-'))
        return cli_usage_error(me, "say p11ca ocsp signer init");
    if (strcmp(argv[1], "init") == 0) {
        argc--;
        argv++;
    }
    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if ((rc = signer_opt(me, o, &dir, &so)) != P11CA_OK)
            return rc;
    }
    dir = cli_ca_dir(dir);
    if (!dir || optind < argc || !so.key_uri == !so.key_file)
        return cli_usage_error(me,
                               "give --dir DIR and one of --key-uri and --key");
    rc = ca_open(dir, &c);
    if (rc == P11CA_OK) {
        ca_set_out_flags(c, cli_out_flags(cli));
        rc = ca_set_access(c, cli->module, cli->pin_source);
    }
    if (rc == P11CA_OK)
        rc = ca_ocsp_signer_init(c, &so, &serial);
    if (serial)
        reg_serial_text(serial, shown, sizeof(shown));
    if (rc == P11CA_OK)
        cli_audit_checkpoint(c);
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "ocsp signer init: %s", p11ca_err_message());
    } else if (cli->json) {
        (void)cli_json_print(json_pack("{s:s, s:s, s:s}", "serial", shown,
                                       "certificate", "ocsp-signer.pem", "dir",
                                       dir));
    } else {
        printf(
            "OCSP signer %s: certificate %s/ocsp-signer.pem; [ ocsp ] signer_key and signer_cert set in %s/ca.cnf\n",
            shown, cli_esc(dir), cli_esc(dir));
    }
    free(serial);
    ca_close(c);
    return rc;
}

const struct cli_cmd cli_ocsp_cmds[] = {
    {"ocsp", "respond", "--dir DIR --reqin FILE --respout FILE",
     "Answer one OCSP request (DER, as openssl ocsp -reqout writes it) from "
     "the registry, as the responder of p11ca serve does: each CertID good, "
     "revoked (time, reason, invalidity date) or unknown, thisUpdate now, "
     "nextUpdate after next_update of [ ocsp ] in ca.cnf, the nonce echoed "
     "(1 to 128 octets, RFC 9654), signed by the delegated signer of "
     "[ ocsp ] (its certificate included) or else the CA key, responder ID "
     "by key hash. The response (DER) is written in every case; the exit "
     "status says what it is: 0 successful; 2 malformedRequest (not DER, "
     "longer than 65536 bytes, no or more than 100 CertIDs, a bad nonce, an "
     "unknown critical extension) or unauthorized (a CertID of another "
     "issuer); 3 tryLater (the token failed) and 4 tryLater (the registry "
     "failed); 5 internalError (the signer's certificate is not valid).",
     "--dir DIR\tthe CA directory (default $P11CA_CA_DIR)\n"
     "--reqin FILE\tthe request, DER (- for standard input)\n"
     "--respout FILE\twrite the response, DER, to FILE (- for standard "
     "output)",
     cmd_ocsp_respond},
    {"ocsp", "signer",
     "init --dir DIR (--key-uri URI | --key FILE) [--generate TYPE] "
     "[--subject /CN=NAME] [--days N] [--profile NAME]",
     "Make the CA's delegated OCSP signer: its key (generated on the token "
     "with --generate, else the existing key, which on a token must be "
     "CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE), its certificate "
     "issued by the CA under the ocsp profile (id-kp-OCSPSigning, "
     "id-pkix-ocsp-nocheck) and recorded in the registry, written to "
     "DIR/ocsp-signer.pem; signer_key and signer_cert of [ ocsp ] in "
     "ca.cnf name them, and responses are signed with that key from then on "
     "(its certificate included). Run it again before the certificate "
     "expires: the new signer replaces the old one in ca.cnf (the old key "
     "and certificate are left as they are).",
     "--dir DIR\tthe CA directory (default $P11CA_CA_DIR)\n"
     "--key-uri URI\tthe signer's key on a token (pkcs11: URI); with "
     "--generate, the token and the new key's object= label (and id=); "
     "ca.cnf records it without PIN attributes (pin-value=, pin-source=)\n"
     "--key FILE\ta key file instead (with --generate: a new file, mode "
     "0600)\n"
     "--generate TYPE\tgenerate the key: ec:P-256, ec:P-384, rsa:3072, "
     "ed25519, ...; removed again if a later step fails\n"
     "--subject /CN=NAME\tthe signer's subject (default: the CA's, with CN "
     "= OCSP Responder)\n"
     "--days N\tvalidity (default: default_days of the profile, 30)\n"
     "--profile NAME\tthe profile to issue under (default ocsp); it must "
     "give extendedKeyUsage OCSPSigning",
     cmd_ocsp_signer},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
