/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates from elsewhere: p11ca cert register (checked against the
 * registered CA that issued it), cert register-ca, and ca list. */
#include "config.h"

#include "cli.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"

#define MAX_CERT_FILE (1024 * 1024)

enum {
    OPT_DIR = 1,
    OPT_CLIENT,
    OPT_ISSUER,
    OPT_ALLOW_EXPIRED,
    OPT_NAME,
    OPT_WAIT,
};

static int load_cert(const char *path, X509 **out);
static int register_check(ca *c, const char *path, X509 *x, ca_reg_check *chk);
static int register_record(struct cli *cli, ca *c, X509 *x, int64_t ca_id,
                           const char *client, unsigned wait);

/* Read one certificate (PEM or DER) from @path. */
static int load_cert(const char *path, X509 **out)
{
    unsigned char *buf = NULL;
    const unsigned char *p;
    size_t len = 0;
    BIO *b;
    int rc;

    *out = NULL;
    rc = cli_read_file(path, MAX_CERT_FILE, &buf, &len);
    if (rc != P11CA_OK)
        return rc;
    if (strstr((char *)buf, "-----BEGIN")) {
        b = BIO_new_mem_buf(buf, (int)len);
        *out = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else {
        p = buf;
        *out = d2i_X509(NULL, &p, (long)len);
    }
    free(buf);
    ERR_clear_error();
    if (!*out)
        return cli_error(P11CA_E_INPUT,
                         "%s: not a PEM or DER X.509 certificate", path);
    return P11CA_OK;
}

/*
 * The checks every registration passes (ca_register_check, shared with the
 * service's POST /v1/certs), with the CLI's remedies added to its
 * refusals, and a note on an expired or expiring certificate.
 */
static int register_check(ca *c, const char *path, X509 *x, ca_reg_check *chk)
{
    char *until = NULL;
    int rc = ca_register_check(c, x, path, chk);

    if (rc != P11CA_OK && chk->refusal == CA_REG_IS_CA)
        return cli_error(
            rc, "cert register: %s: register a CA with p11ca cert register-ca",
            p11ca_err_message());
    if (rc != P11CA_OK && chk->refusal == CA_REG_EXPIRED)
        return cli_error(
            rc,
            "cert register: %s (--allow-expired records it, never to be activated)",
            p11ca_err_message());
    if (rc != P11CA_OK && chk->refusal == CA_REG_NO_ISSUER && !chk->want)
        return cli_error(
            rc,
            "cert register: %s (register its CA with 'p11ca cert register-ca')",
            p11ca_err_message());
    if (rc != P11CA_OK)
        return cli_error(rc, "cert register: %s", p11ca_err_message());
    if (chk->expired || chk->expires_soon)
        until = cli_time_iso(X509_get0_notAfter(x));
    if (chk->expired)
        fprintf(
            stderr,
            "p11ca: note: %s expired on %s: it is registered for the record and can never be activated\n",
            cli_esc(path), until ? until : "?");
    else if (chk->expires_soon)
        fprintf(stderr, "p11ca: warning: %s expires on %s, within %d days\n",
                cli_esc(path), until ? until : "?", CA_REGISTER_WARN_DAYS);
    free(until);
    return P11CA_OK;
}

/* A registration is a sign-up: the sign-up limit holds it, waiting up to
 * @wait seconds for a free second. */
static int register_record(struct cli *cli, ca *c, X509 *x, int64_t ca_id,
                           const char *client, unsigned wait)
{
    char shown[REG_SERIAL_TEXT_MAX];
    unsigned char *der = NULL;
    reg_cert rcert = {0};
    reg_limit lim;
    int n = i2d_X509(x, &der);
    int rc = n > 0 ? reg_cert_from_der(&rcert, der, (size_t)n) : P11CA_E_INPUT;

    rcert.ca_id = ca_id;
    if (rc == P11CA_OK && client) {
        free(rcert.client_id);
        if (!(rcert.client_id = strdup(client)))
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    ca_set_wait(c, wait);
    ca_signup_limit(c, &lim);
    if (rc == P11CA_OK)
        rc = reg_register(ca_registry(c), &rcert, ca_actor(), &lim);
    reg_serial_text(rcert.serial, shown, sizeof(shown));
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert register: %s", p11ca_err_message());
    else if (cli->json)
        rc = cli_json_print(json_pack(
            "{s:s, s:I, s:s}", "serial", shown, "ca_id", (json_int_t)ca_id,
            "status", reg_status_name(REG_REGISTERED_NOT_ACTIVATED)));
    else
        printf("%s: %s (CA %lld)\n", shown,
               reg_status_name(REG_REGISTERED_NOT_ACTIVATED), (long long)ca_id);
    OPENSSL_free(der);
    reg_cert_clear(&rcert);
    return rc;
}

int cmd_cert_register(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"client-id", required_argument, NULL, OPT_CLIENT},
        {"issuer", required_argument, NULL, OPT_ISSUER},
        {"allow-expired", no_argument, NULL, OPT_ALLOW_EXPIRED},
        {"wait", required_argument, NULL, OPT_WAIT},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "register");
    const char *dir = NULL, *client = NULL, *issuer = NULL;
    ca_reg_check chk = {0};
    unsigned wait = CA_WAIT_DEFAULT;
    X509 *x = NULL;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_CLIENT)
            client = optarg;
        else if (o == OPT_ISSUER)
            issuer = optarg;
        else if (o == OPT_ALLOW_EXPIRED)
            chk.allow_expired = true;
        else if (o == OPT_WAIT) {
            if ((rc = cli_parse_wait(me, optarg, &wait)) != P11CA_OK)
                return rc;
        } else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one certificate file");
    if (client && !*client)
        return cli_usage_error(me, "--client-id is empty");
    rc = load_cert(argv[optind], &x);
    if (rc == P11CA_OK)
        rc = cli_open_ca(dir, &c);
    if (rc == P11CA_OK && issuer
        && (rc = reg_ca_find(ca_registry(c), issuer, &chk.want)) != P11CA_OK)
        rc = cli_error(rc, "cert register: --issuer: %s", p11ca_err_message());
    if (rc == P11CA_OK)
        rc = register_check(c, argv[optind], x, &chk);
    if (rc == P11CA_OK)
        rc = register_record(cli, c, x, chk.ca_id, client, wait);
    X509_free(x);
    ca_close(c);
    return rc;
}

int cmd_cert_register_ca(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"name", required_argument, NULL, OPT_NAME},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "register-ca");
    const char *dir = NULL, *name = NULL;
    unsigned char *der = NULL;
    int64_t id = 0;
    X509 *x = NULL;
    ca *c = NULL;
    int o, rc, n;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_NAME)
            name = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one CA certificate file");
    rc = load_cert(argv[optind], &x);
    if (rc == P11CA_OK && X509_check_ca(x) < 1)
        rc = cli_error(P11CA_E_POLICY, "%s is not a CA certificate",
                       argv[optind]);
    if (rc == P11CA_OK)
        rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        goto out;
    n = i2d_X509(x, &der);
    rc = n > 0 ? reg_ca_add_external(ca_registry(c), der, (size_t)n, name, &id)
               : P11CA_E_INPUT;
    if (rc == P11CA_OK)
        rc = reg_audit_add(ca_registry(c), ca_actor(), "register-ca",
                           name ? name : argv[optind], NULL);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert register-ca: %s", p11ca_err_message());
    else if (cli->json)
        rc = cli_json_print(json_pack("{s:I}", "id", (json_int_t)id));
    else
        printf("registered CA %lld\n", (long long)id);
out:
    OPENSSL_free(der);
    X509_free(x);
    ca_close(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* ca list                                                             */
/* ------------------------------------------------------------------ */

struct ca_list_out {
    ca *c;
    json_t *arr;
    int rc;
};

static int ca_list_one(const reg_ca *rca, void *arg)
{
    struct ca_list_out *lo = arg;
    const unsigned char *p = rca->der;
    X509 *x = d2i_X509(NULL, &p, (long)rca->der_len);
    char *until = x ? cli_time_iso(X509_get0_notAfter(x)) : NULL;
    /* In the certificate's order, as every subject is printed. */
    char *shown = x ? cli_name_show(X509_get_subject_name(x)) : NULL;
    const char *subject = shown ? shown : rca->subject;
    reg_filter f = {.ca_id = rca->id};
    const char *kind = rca->id == ca_registry_id(lo->c) ? "this CA"
                       : rca->external                  ? "external"
                                                        : "issuing";
    size_t n = 0;

    lo->rc = reg_count(ca_registry(lo->c), &f, &n);
    if (lo->rc == P11CA_OK && lo->arr)
        json_array_append_new(
            lo->arr,
            json_pack("{s:I, s:s?, s:s?, s:s, s:b, s:s?, s:I}", "id",
                      (json_int_t)rca->id, "name", rca->name, "subject",
                      subject, "kind", kind, "external", rca->external,
                      "not_after", until, "certificates", (json_int_t)n));
    else if (lo->rc == P11CA_OK)
        printf("%-4lld  %-8s  %-20s  %-20s  %8zu  %s\n", (long long)rca->id,
               kind, rca->name ? cli_esc(rca->name) : "-", until ? until : "-",
               n, cli_esc(subject));
    free(shown);
    free(until);
    X509_free(x);
    return lo->rc;
}

int cmd_ca_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_ca_cmds, "list");
    struct ca_list_out lo = {0};
    const char *dir = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    rc = cli_open_ca_ro(dir, &lo.c);
    if (rc != P11CA_OK)
        return rc;
    if (cli->json && !(lo.arr = json_array()))
        rc = cli_error(P11CA_E_NOMEM, "out of memory");
    else if (!cli->json)
        printf("%-4s  %-8s  %-20s  %-20s  %8s  %s\n", "ID", "KIND", "NAME",
               "NOT AFTER", "CERTS", "SUBJECT");
    if (rc == P11CA_OK)
        rc = reg_ca_list(ca_registry(lo.c), ca_list_one, &lo);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "ca list: %s", p11ca_err_message());
    else if (lo.arr) {
        rc = cli_json_print(lo.arr);
        lo.arr = NULL;
    }
    json_decref(lo.arr);
    ca_close(lo.c);
    return rc;
}
