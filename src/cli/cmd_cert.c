/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca cert import|list (certificate objects on tokens) */
#include "config.h"

#include "cli.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry/registry.h"

#define MAX_CERT_FILE (1024 * 1024)

/* The serial as openssl prints it (reg_serial_text). */
static char *serial_text(const ASN1_INTEGER *i)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(i, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL, buf[REG_SERIAL_TEXT_MAX];

    reg_serial_text(hex ? hex : "?", buf, sizeof(buf));
    OPENSSL_free(hex);
    BN_free(bn);
    return strdup(buf);
}

/* JSON description of a certificate object (and its parsed fields). */
static json_t *cert_json(p11_obj *o)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0, id_len;
    const unsigned char *id = p11_obj_id(o, &id_len);
    char *hex = cli_hex(id, id_len), *uri = p11_obj_uri(o);
    char *subj = NULL, *iss = NULL, *nb = NULL, *na = NULL, *ser = NULL;
    X509 *x = NULL;
    json_t *j;

    if (p11_obj_get_attr(o, CKA_VALUE, &der, &len) == CKR_OK) {
        p = der;
        x = d2i_X509(NULL, &p, (long)len);
    }
    if (x) {
        subj = cli_name_show(X509_get_subject_name(x));
        iss = cli_name_show(X509_get_issuer_name(x));
        nb = cli_time_iso(X509_get0_notBefore(x));
        na = cli_time_iso(X509_get0_notAfter(x));
        ser = serial_text(X509_get0_serialNumber(x));
    }
    j = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}",
                  "label", p11_obj_label(o), "id", hex ? hex : "", "token",
                  p11_token_label(p11_obj_token(o)), "subject", subj, "issuer",
                  iss, "serial", ser, "not_before", nb, "not_after", na, "uri",
                  uri);
    X509_free(x);
    free(der);
    free(hex);
    free(uri);
    free(subj);
    free(iss);
    free(nb);
    free(na);
    free(ser);
    return j;
}

static void cert_print(json_t *c)
{
    static const char *const keys[] = {"label",      "id",        "token",
                                       "subject",    "issuer",    "serial",
                                       "not_before", "not_after", "uri"};

    printf("Certificate \"%s\"\n",
           cli_esc(json_string_value(json_object_get(c, "label"))));
    for (size_t i = 1; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = json_string_value(json_object_get(c, keys[i]));
        printf("  %-11s %s\n", keys[i], v ? cli_esc(v) : "-");
    }
}

/* Read exactly one certificate (PEM or DER) from @path into @der. */
static int read_cert(const char *path, unsigned char **der, size_t *der_len)
{
    unsigned char *buf = NULL, *out = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509 *x = NULL, *extra = NULL;
    BIO *b = NULL;
    int rc, n;

    *der = NULL;
    rc = cli_read_file(path, MAX_CERT_FILE, &buf, &len);
    if (rc != P11CA_OK)
        return rc;
    b = BIO_new_mem_buf(buf, (int)len);
    if (b && strstr((char *)buf, "-----BEGIN")) {
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        ERR_set_mark();
        extra = x ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        ERR_pop_to_mark();
    } else {
        p = buf;
        x = d2i_X509(NULL, &p, (long)len);
        if (x && p != buf + len) {
            X509_free(x);
            x = NULL;
        }
    }
    ERR_clear_error();
    if (!x) {
        rc = cli_error(P11CA_E_INPUT, "%s: not a PEM or DER X.509 certificate",
                       path);
        goto out;
    }
    if (extra) {
        rc = cli_error(
            P11CA_E_INPUT,
            "%s holds more than one certificate; import them one by one", path);
        goto out;
    }
    n = i2d_X509(x, &out);
    if (n <= 0) {
        rc =
            cli_error(P11CA_E_INPUT, "%s: cannot encode the certificate", path);
        goto out;
    }
    *der = out;
    *der_len = (size_t)n;
    rc = P11CA_OK;
out:
    X509_free(x);
    X509_free(extra);
    BIO_free(b);
    free(buf);
    return rc;
}

static int cmd_cert_import(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"label", required_argument, NULL, 'l'},
        {"id", required_argument, NULL, 'i'},
        {"authority", no_argument, NULL, 'a'},
        {0},
    };
    const struct cli_cmd *me = &cli_cert_cmds[0];
    const char *label = NULL, *idstr = NULL;
    unsigned char idbuf[P11_MAX_ID_LEN], *der = NULL;
    const unsigned char *id = NULL;
    size_t id_len = 0, der_len = 0;
    bool authority = false;
    p11_token *tok = NULL;
    p11_obj *obj = NULL;
    p11_uri *uri = NULL;
    p11_auth auth;
    int c, rc, n;
    CK_RV rv;

    while ((c = cli_getopt(cli, argc, argv, "hl:i:a", opts)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(me);
        case 'l':
            label = optarg;
            break;
        case 'i':
            idstr = optarg;
            break;
        case 'a':
            authority = true;
            break;
        default:
            return cli_usage_error(me, "bad option");
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(me, "give a token URI and a certificate file");
    rc = cli_parse_uri(argv[optind], &uri);
    if (rc == P11CA_OK)
        rc = read_cert(argv[optind + 1], &der, &der_len);
    if (rc != P11CA_OK)
        goto out;
    if (idstr) {
        n = cli_parse_hex(idstr, idbuf, sizeof(idbuf));
        if (n < 0) {
            rc = cli_error(P11CA_E_INPUT, "--id must be hex");
            goto out;
        }
        id = idbuf;
        id_len = (size_t)n;
    } else {
        id = p11_uri_get0_id(uri, &id_len);
    }
    if (!label)
        label = p11_uri_get0_label(uri);
    if (!cli_p11(cli)) {
        rc = P11CA_E_NOMEM;
        goto out;
    }
    rv = p11_token_find_one(cli->p11, uri, &tok);
    if (rv == CKR_OK) {
        p11_auth_from_uri(&auth, uri);
        rv = p11_cert_import(tok, &auth, der, der_len, label, id, id_len,
                             authority, &obj);
    }
    if (rv != CKR_OK) {
        rc = cli_fail(rv, "cert import");
        goto out;
    }
    if (cli->json) {
        rc = cli_json_print(cert_json(obj));
    } else {
        json_t *j = cert_json(obj);
        printf("imported certificate on %s\n",
               cli_esc(p11_token_describe(tok)));
        cert_print(j);
        json_decref(j);
    }
out:
    p11_obj_unref(obj);
    OPENSSL_free(der);
    p11_uri_free(uri);
    return rc;
}

/* A pkcs11: URI or --token means the certificates on tokens. */
static bool lists_tokens(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncasecmp(argv[i], "pkcs11:", 7) == 0
            || strcmp(argv[i], "--token") == 0)
            return true;
    return false;
}

static int cmd_token_certs(struct cli *cli, int argc, char **argv);

static int cmd_cert_list(struct cli *cli, int argc, char **argv)
{
    if (!lists_tokens(argc, argv))
        return cmd_certreg_list(cli, argc, argv);
    return cmd_token_certs(cli, argc, argv);
}

static int cmd_token_certs(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"token", no_argument, NULL, 't'},
        {0},
    };
    const struct cli_cmd *me = &cli_cert_cmds[1];
    p11_obj **objs = NULL;
    p11_uri *uri = NULL;
    size_t n = 0;
    json_t *arr;
    int c, rc;
    CK_RV rv;

    while ((c = cli_getopt(cli, argc, argv, "h", opts)) != -1)
        if (c != 't')
            return c == 'h' ? cli_help(me) : cli_usage_error(me, "bad option");
    if (argc - optind > 1)
        return cli_usage_error(me, "too many arguments");
    rc = cli_parse_uri(argv[optind], &uri);
    if (rc != P11CA_OK)
        return rc;
    if (!cli_p11(cli)) {
        p11_uri_free(uri);
        return P11CA_E_NOMEM;
    }
    rv = p11_obj_find(cli->p11, uri, CKO_CERTIFICATE, false, &objs, &n);
    if (rv != CKR_OK) {
        rc = cli_fail(rv, "cert list");
        goto out;
    }
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, cert_json(objs[i]));
    if (cli->json) {
        rc = cli_json_print(arr);
    } else {
        for (size_t i = 0; i < n; i++)
            cert_print(json_array_get(arr, i));
        if (n == 0)
            fprintf(stderr, "p11ca: no certificate found\n");
        json_decref(arr);
    }
out:
    for (size_t i = 0; i < n; i++)
        p11_obj_unref(objs[i]);
    free(objs);
    p11_uri_free(uri);
    return rc;
}

const struct cli_cmd cli_cert_cmds[] = {
    {"cert", "import", "[--label LABEL] [--id HEX] [--authority] URI FILE",
     "Write the certificate in FILE (PEM or DER) to the token that URI "
     "names, with the CKA_ID and label of its key (found by public key) "
     "unless --id/--label or id=/object= in the URI say otherwise.",
     "--label LABEL\tthe certificate label\n"
     "--id HEX\tthe CKA_ID\n"
     "--authority\tmark it as a CA certificate (CKA_CERTIFICATE_CATEGORY "
     "2); no key needed",
     cmd_cert_import},
    {"cert", "list",
     "[--dir DIR] [FILTERS] [--sort FIELD] [--format text|json|csv] "
     "[--count] | [--token] [URI]",
     "List the certificates of the CA's registry, filtered; or, with a "
     "pkcs11: URI (or --token), the certificates on the tokens it matches. "
     "A certificate is identified by its issuer and serial: registered "
     "certificates of other CAs may have the serial of one of ours.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--serial HEX, --cn CN, --ou OU, --client-id ID, --profile P\texact "
     "matches\n"
     "--cn-like PATTERN, --ou-like PATTERN\tthe CN (OU) contains PATTERN; "
     "with * (any run) or ? (one character) PATTERN matches the whole "
     "value; \\ takes the next character literally; ASCII case is "
     "ignored\n"
     "--issuer CA\tcertificates of one CA: its id or name (p11ca ca list)\n"
     "--status S\tactivated, not-activated, registered-not-activated, "
     "revoked\n"
     "--issued-after DATE, --issued-before DATE\twhen recorded "
     "(YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @unix; a real date)\n"
     "--expires-after DATE, --expires-before DATE\tnot-after range\n"
     "--expiring DURATION\tvalid now, not revoked, and expiring within "
     "DURATION: a number and its unit, 30d, 12h, 90m, 3600s, 2w\n"
     "--expired\talready expired (revoked or not)\n"
     "--valid\tvalid now and not revoked\n"
     "--limit N\tat most N (a whole number, 1 or more)\n"
     "--sort FIELD\tissued (default), serial, cn, client-id, status, "
     "profile, not-before, not-after; -FIELD sorts descending\n"
     "--format F\ttext (default), json (as --json) or csv (RFC 4180: a "
     "header line, CRLF line ends, fields with commas or quotes quoted; "
     "control characters of names escaped as \\xHH, as in text); "
     "--json with text or csv is refused\n"
     "--count\tprint how many match, not the certificates\n"
     "--token\tlist certificates on tokens (all of them without a URI)",
     cmd_cert_list},
    {"cert", "show", "[--dir DIR] [--issuer CA] [--pem] SERIAL",
     "Show a certificate of the registry: its fields, status and status "
     "history. A serial that certificates of several CAs have is refused as "
     "ambiguous: --issuer chooses.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--issuer CA\tthe issuing CA: its id or name (p11ca ca list)\n"
     "--pem\talso print the certificate",
     cmd_cert_show},
    {"cert", "activate", "[--dir DIR] [--issuer CA] [--why TEXT] SERIAL",
     "Activate a not-activated or registered-not-activated certificate "
     "(its client ID must not be held by another activated certificate; an "
     "expired certificate is never activated). An activated one is left as "
     "it is: \"already activated\", exit 0.",
     "--issuer CA\tthe issuing CA, when the serial is ambiguous\n"
     "--why TEXT\tthe reason, for the audit trail",
     cmd_cert_activate},
    {"cert", "deactivate", "[--dir DIR] [--issuer CA] [--why TEXT] SERIAL",
     "Deactivate an activated certificate. A not-activated or "
     "registered-not-activated one is left as it is: \"already "
     "not-activated\", exit 0.",
     "--issuer CA\tthe issuing CA, when the serial is ambiguous\n"
     "--why TEXT\tthe reason, for the audit trail",
     cmd_cert_deactivate},
    {"cert", "revoke",
     "[--dir DIR] [--reason R] [--invalidity DATE] [--why TEXT] "
     "([--issuer CA] SERIAL | FILTERS [--yes | --dry-run])",
     "Revoke a certificate, or every certificate the filters match. "
     "Revocation is final: revoking a revoked certificate with the same "
     "reason says \"already revoked\" (exit 0); with another reason it is "
     "refused (exit 2), the first reason stays. Filters (other than --serial "
     "alone) need --yes, or a \"yes\" typed at the terminal after the count "
     "is shown; --dry-run lists what would be revoked. A bulk revocation is "
     "one audited action naming every certificate; if the count changed "
     "since it was confirmed, nothing is revoked. Lost card: --client-id ID "
     "--yes.",
     "--reason R\tRFC 5280 reason: unspecified, keyCompromise, "
     "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
     "certificateHold, privilegeWithdrawn, aACompromise\n"
     "--invalidity DATE\twhen the key is believed compromised\n"
     "--why TEXT\tfree text for the audit trail\n"
     "--issuer CA\twith SERIAL: the issuing CA, when the serial is "
     "ambiguous; alone: every certificate of that CA\n"
     "--client-id ID, --ou OU, --profile P, --issued-before DATE, ...\tbulk "
     "revocation filters (as for cert list; not --limit)\n"
     "--yes\trevoke what the filters match without asking\n"
     "--dry-run\tlist what the filters match, revoke nothing",
     cmd_cert_revoke},
    {"cert", "delete", "[--dir DIR] [--issuer CA] [--why TEXT] SERIAL",
     "Delete a certificate from the registry. Refused while it is activated, "
     "and for a revoked certificate that has not expired when this CA's CRL "
     "lists it (a revoked certificate of an external CA can be deleted).",
     "--issuer CA\tthe issuing CA, when the serial is ambiguous\n"
     "--why TEXT\tthe reason, for the audit trail",
     cmd_cert_delete},
    {"cert", "register",
     "[--dir DIR] [--issuer CA] [--client-id ID] [--allow-expired] "
     "[--wait SECONDS] CERT",
     "Register a client certificate issued elsewhere (status "
     "registered-not-activated). It must chain to a registered CA (the one "
     "--issuer names, else the first that verifies it, signature and CA "
     "constraints checked by OpenSSL) and must not be a CA certificate "
     "(basicConstraints CA:TRUE: use register-ca). An expired certificate is "
     "refused unless --allow-expired (then it is kept for the record and "
     "can never be activated); one that expires within 30 days is "
     "registered with a warning. A registration is a sign-up: the sign-up "
     "limit of ca.cnf (rate_limit in [ ca ], default 15 per second) holds "
     "it; when a second is full, the command waits for the next one "
     "(--wait), then fails with exit 4 and records nothing.",
     "--issuer CA\tthe registered CA it must chain to: its id or name\n"
     "--client-id ID\tthe client ID (default: the subject CN)\n"
     "--allow-expired\tregister an expired certificate, for the "
     "record\n" CLI_WAIT_HELP,
     cmd_cert_register},
    {"cert", "register-ca", "[--dir DIR] [--name NAME] CA-CERT",
     "Register an external CA whose client certificates may be registered "
     "(p11ca ca list shows its id). Its certificates are identified by this "
     "CA and their serial; this CA's CRL never lists them.",
     "--name NAME\ta name for it (what --issuer takes, as well as the id)",
     cmd_cert_register_ca},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
