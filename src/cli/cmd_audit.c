/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca audit verify|head|sign: the audit trail's chain, its signed heads
 * and the certificates' audited statuses (audit list is cmd_certreg.c's). */
#include "config.h"

#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"

enum {
    OPT_DIR = 1,
    OPT_OUT,
};

static void iso_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "--dir DIR" and no argument: the options of the three verbs. */
static int audit_args(struct cli *cli, int argc, char **argv, const char *verb,
                      const char **dir, const char **out)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"out", required_argument, NULL, OPT_OUT},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_audit_cmds, verb);
    int o;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me) == P11CA_OK ? 1 : -1;
        if (o == OPT_DIR)
            *dir = optarg;
        else if (o == OPT_OUT && out)
            *out = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    if (out && !*out)
        return cli_usage_error(me, "give --out FILE (- for standard output)");
    return P11CA_OK;
}

/* A note, not the command's error: text on stderr even with --json. */
void cli_audit_checkpoint(ca *c)
{
    if (ca_audit_checkpoint(c, false, NULL) != P11CA_OK)
        fprintf(
            stderr,
            "p11ca: warning: the audit trail's head was not signed (the next command that signs will): %s\n",
            cli_esc(p11ca_err_message()));
}

static void verify_report(struct cli *cli, ca *c, const ca_audit_report *rep)
{
    char at[32] = "";

    if (rep->heads)
        iso_time(rep->head_at, at, sizeof(at));
    if (cli->json) {
        (void)cli_json_print(json_pack(
            "{s:I, s:I, s:I, s:I, s:o, s:I}", "entries",
            (json_int_t)rep->entries, "certificates", (json_int_t)rep->certs,
            "heads", (json_int_t)rep->heads, "other_heads",
            (json_int_t)rep->other_heads, "head",
            rep->heads ? json_pack("{s:I, s:s}", "entry",
                                   (json_int_t)rep->head_seq, "signed_at", at)
                       : json_null(),
            "after_head", (json_int_t)rep->after_head));
        return;
    }
    printf("audit trail intact: %zu entries\n", rep->entries);
    if (rep->heads)
        printf(
            "signed head: entry %lld, signed %s with the CA key (%zu head(s) verified); %zu entries after the last signed head\n",
            (long long)rep->head_seq, at, rep->heads, rep->after_head);
    else if (!ca_cert(c))
        printf("signed head: none (the CA has no certificate yet)\n");
    if (rep->other_heads)
        printf("heads of other CAs in this registry: %zu (not checked)\n",
               rep->other_heads);
    printf(
        "certificates: %zu, each with the status its audited history leads to\n",
        rep->certs);
}

static int cmd_audit_verify(struct cli *cli, int argc, char **argv)
{
    const char *dir = NULL;
    ca_audit_report rep;
    ca *c = NULL;
    int rc = audit_args(cli, argc, argv, "verify", &dir, NULL);

    if (rc != P11CA_OK)
        return rc > 0 ? P11CA_OK : rc;
    rc = cli_open_ca_ro(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    rc = ca_audit_verify(c, &rep);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "audit verify: %s", p11ca_err_message());
    else
        verify_report(cli, c, &rep);
    ca_close(c);
    return rc;
}

static int cmd_audit_head(struct cli *cli, int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    ca_audit_head_info info;
    ca_outfile *f = NULL;
    BIO *std = NULL;
    char at[32];
    ca *c = NULL;
    int rc = audit_args(cli, argc, argv, "head", &dir, &out);

    if (rc != P11CA_OK)
        return rc > 0 ? P11CA_OK : rc;
    rc = cli_open_ca_ro(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    if (strcmp(out, "-") == 0)
        rc = (std = BIO_new_fp(stdout, BIO_NOCLOSE))
                 ? P11CA_OK
                 : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    else
        rc = ca_outfile_open(out, 0644, cli_out_flags(cli), &f);
    if (rc == P11CA_OK)
        rc = ca_audit_head_export(c, std ? std : ca_outfile_bio(f), &info);
    if (rc == P11CA_OK && f)
        rc = ca_outfile_commit(f);
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "audit head: %s", p11ca_err_message());
    } else if (f) {
        iso_time(info.at, at, sizeof(at));
        if (cli->json)
            (void)cli_json_print(
                json_pack("{s:I, s:s, s:s, s:s}", "entry", (json_int_t)info.seq,
                          "hash", info.hash, "signed_at", at, "file", out));
        else
            printf(
                "audit head: entry %lld (hash %s), signed %s, written to %s\n",
                (long long)info.seq, info.hash, at, cli_esc(out));
    }
    BIO_free(std);
    ca_outfile_free(f);
    ca_close(c);
    return rc;
}

static int cmd_audit_sign(struct cli *cli, int argc, char **argv)
{
    const char *dir = NULL;
    ca_audit_head_info info;
    char hash[65];
    int64_t tip = 0;
    ca *c = NULL;
    int rc = audit_args(cli, argc, argv, "sign", &dir, NULL);

    if (rc != P11CA_OK)
        return rc > 0 ? P11CA_OK : rc;
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    rc = ca_set_access(c, cli->module, cli->pin_source);
    if (rc == P11CA_OK && !ca_cert(c))
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "the CA in %s has no certificate yet: install it with p11ca ca import-chain",
            ca_dir(c));
    if (rc == P11CA_OK)
        rc = ca_audit_checkpoint(c, true, &info);
    if (rc == P11CA_OK && info.seq == 0)
        rc = reg_audit_tip(ca_registry(c), &tip, hash);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "audit sign: %s", p11ca_err_message());
    else if (cli->json)
        (void)cli_json_print(json_pack("{s:I, s:b}", "entry",
                                       (json_int_t)(info.seq ? info.seq : tip),
                                       "signed", info.seq != 0));
    else if (info.seq)
        printf("signed the audit trail's head at entry %lld\n",
               (long long)info.seq);
    else
        printf("the audit trail's head (entry %lld) is signed already\n",
               (long long)tip);
    ca_close(c);
    return rc;
}

const struct cli_cmd cli_audit_cmds[] = {
    {"audit", "list", "[--dir DIR] [--since SEQ]",
     "List the audit trail of the CA: every issuance and status change with "
     "its time, actor and reason.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--since SEQ\tentries after this sequence number",
     cmd_audit_list},
    {"audit", "verify", "[--dir DIR]",
     "Check the audit trail: its SHA-256 hash chain (an edited or deleted "
     "entry is named); every head the CA key signed, with the CA "
     "certificate (a forged head, a deleted tail or a rewritten trail is "
     "found; entries after the last signed head are counted); and every "
     "certificate's status against the one its audited history leads to "
     "(a status written into the database directly is found). Needs no "
     "PIN. Exit 2 when something is wrong.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)", cmd_audit_verify},
    {"audit", "head", "[--dir DIR] --out FILE",
     "Write the newest signed head of the audit trail (DER) to FILE for an "
     "external witness, after checking its signature. It is a "
     "SignedAuditHead: SEQUENCE { tbsHead, signatureAlgorithm, signature "
     "BIT STRING } like a certificate, where tbsHead is SEQUENCE { label "
     "UTF8String \"p11ca audit head\", version INTEGER 1, entry INTEGER, "
     "entryHash OCTET STRING (the entry's SHA-256 chain hash), signedAt "
     "GeneralizedTime, caCertSha256 OCTET STRING, caSubject Name } and the "
     "signature covers the DER of tbsHead; openssl asn1parse -strparse "
     "extracts both for openssl pkeyutl -verify (see "
     "docs/ca-operator-guide.md). Heads are signed at init, with every CRL, "
     "at the end of issue and enroll once audit_sign_every entries or "
     "audit_sign_minutes have passed (ca.cnf, default 100 and 60), and by "
     "p11ca audit sign.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--out FILE\twhere to write it (see OUTPUT FILES; - for standard "
     "output)",
     cmd_audit_head},
    {"audit", "sign", "[--dir DIR]",
     "Sign the audit trail's head now with the CA key (asks for the PIN "
     "like issue), unless the newest entry is signed already: for cron, so "
     "that a head follows every audit_sign_minutes even without issuance, "
     "and once after an upgrade from a registry without signed heads.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)", cmd_audit_sign},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
