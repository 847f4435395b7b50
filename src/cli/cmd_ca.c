/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca ca init|import-chain|show: making and inspecting a CA directory. */
#include "config.h"

#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"

extern const struct cli_cmd cli_ca_cmds[];

enum {
    OPT_DIR = 1,
    OPT_SUBJECT,
    OPT_KEY_URI,
    OPT_KEY,
    OPT_GENERATE,
    OPT_DAYS,
    OPT_PATHLEN,
    OPT_NC,
    OPT_INTER,
    OPT_REGISTRY,
    OPT_NAME,
};

static int parse_uint(const struct cli_cmd *me, const char *opt, const char *v,
                      unsigned max, unsigned *out);
static json_t *profile_json(const ca_profile *p);
static json_t *ca_json(ca *c);
static void ca_print(json_t *j);
static int show_dir(struct cli *cli, const char *dir);

static int parse_uint(const struct cli_cmd *me, const char *opt, const char *v,
                      unsigned max, unsigned *out)
{
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);

    if (!*v || *end || v[0] == '-' || n > max)
        return cli_usage_error(me, "%s: a number from 0 to %u", opt, max);
    *out = (unsigned)n;
    return P11CA_OK;
}

static int ca_init_opt(const struct cli_cmd *me, int o, ca_init_opts *io)
{
    unsigned n = 0;
    int rc = P11CA_OK;

    switch (o) {
    case OPT_DIR:
        io->dir = optarg;
        break;
    case OPT_SUBJECT:
        io->subject = optarg;
        break;
    case OPT_KEY_URI:
        io->key_uri = optarg;
        break;
    case OPT_KEY:
        io->key_file = optarg;
        break;
    case OPT_GENERATE:
        io->generate = optarg;
        break;
    case OPT_NC:
        io->name_constraints = optarg;
        break;
    case OPT_INTER:
        io->intermediate = true;
        break;
    case OPT_REGISTRY:
        io->registry = optarg;
        break;
    case OPT_NAME:
        io->name = optarg;
        break;
    case OPT_DAYS:
        rc = parse_uint(me, "--days", optarg, 36500, &io->days);
        break;
    case OPT_PATHLEN:
        rc = parse_uint(me, "--pathlen", optarg, 32, &n);
        io->pathlen = (int)n;
        break;
    default:
        rc = cli_usage_error(me, "bad option");
    }
    return rc;
}

static int cmd_ca_init(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"key-uri", required_argument, NULL, OPT_KEY_URI},
        {"key", required_argument, NULL, OPT_KEY},
        {"generate", required_argument, NULL, OPT_GENERATE},
        {"days", required_argument, NULL, OPT_DAYS},
        {"pathlen", required_argument, NULL, OPT_PATHLEN},
        {"name-constraints", required_argument, NULL, OPT_NC},
        {"intermediate", no_argument, NULL, OPT_INTER},
        {"registry", required_argument, NULL, OPT_REGISTRY},
        {"name", required_argument, NULL, OPT_NAME},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_ca_cmds, "init");
    ca_init_opts io = {0};
    int o, rc;

    io.pathlen = -1;
    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        rc = ca_init_opt(me, o, &io);
        if (rc != P11CA_OK)
            return rc;
    }
    io.dir = cli_ca_dir(io.dir);
    if (optind < argc)
        return cli_usage_error(me, "too many arguments");
    if (!io.dir || !io.subject || !io.key_uri == !io.key_file)
        return cli_usage_error(
            me, "give --dir, --subject and one of --key-uri and --key");
    io.pin_source = cli->pin_source;
    io.module = cli->module;
    rc = ca_init(&io);
    if (rc != P11CA_OK)
        return cli_error(rc, "ca init: %s", p11ca_err_message());
    if (io.intermediate && !cli->json) {
        printf(
            "intermediate CA prepared in %s: its CSR is %s/ca.csr\n"
            "have it signed (p11ca issue --profile intermediate on the parent CA), then run\n  p11ca ca import-chain --dir %s CERT.pem CHAIN.pem\n",
            io.dir, io.dir, io.dir);
        return P11CA_OK;
    }
    return show_dir(cli, io.dir);
}

static int cmd_ca_import_chain(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_ca_cmds, "import-chain");
    const char *dir = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o != OPT_DIR)
            return cli_usage_error(me, "bad option");
        dir = optarg;
    }
    dir = cli_ca_dir(dir);
    if (!dir || argc - optind < 1 || argc - optind > 2)
        return cli_usage_error(me,
                               "give --dir DIR, the certificate and the chain");
    rc = ca_import_chain(dir, argv[optind],
                         argc - optind == 2 ? argv[optind + 1] : NULL);
    if (rc != P11CA_OK)
        return cli_error(rc, "ca import-chain: %s", p11ca_err_message());
    return show_dir(cli, dir);
}

/* "revoke", "keep", "grace:7d" (the grace period in whole days, else
 * seconds). */
static void supersede_text(const ca_profile *p, char *buf, size_t len)
{
    if (p->supersede == REG_SUPERSEDE_KEEP)
        snprintf(buf, len, "keep");
    else if (p->supersede != REG_SUPERSEDE_GRACE)
        snprintf(buf, len, "revoke");
    else if (p->supersede_grace % 86400 == 0)
        snprintf(buf, len, "grace:%lldd",
                 (long long)(p->supersede_grace / 86400));
    else
        snprintf(buf, len, "grace:%llds", (long long)p->supersede_grace);
}

static json_t *profile_json(const ca_profile *p)
{
    static const char *const san[] = {"optional", "required", "forbidden"};
    char supersede[32];
    json_t *j, *pol;

    supersede_text(p, supersede, sizeof(supersede));
    j = json_pack(
        "{s:s, s:s?, s:b, s:i, s:s?, s:s?, s:s?, s:b, s:s, "
        "s:s?, s:s?, s:i, s:i, s:b, s:s?, s:i}",
        "name", p->name, "description", p->description, "ca", p->is_ca,
        "pathlen", p->pathlen, "key_usage", p->key_usage, "key_usage_rsa",
        p->key_usage_rsa, "ext_key_usage", p->ext_key_usage, "ocsp_nocheck",
        p->ocsp_nocheck, "san", san[p->san], "allowed_dns", p->allowed_dns,
        "key_types", p->key_types, "default_days", (int)p->default_days,
        "max_days", (int)p->max_days, "subject_override", p->subject_override,
        "extensions", p->extensions, "rate_limit", (int)p->rate_limit);
    if (j) {
        json_object_set_new(j, "client_id",
                            json_string(ca_client_id_rule_name(p->client_id)));
        json_object_set_new(j, "supersede", json_string(supersede));
    }
    /* The name policy (policy.c's keys). */
    pol = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:b}", "allowed_ip",
                    p->allowed_ip, "allowed_email", p->allowed_email,
                    "allowed_uri", p->allowed_uri, "subject_allowed",
                    p->subject_allowed, "subject_required", p->subject_required,
                    "cn_in_san", p->cn_in_san);
    if (!j || !pol || json_object_update(j, pol) != 0) {
        json_decref(j);
        j = NULL;
    }
    json_decref(pol);
    return j;
}

/* The CA: settings, certificate, profiles. */
static json_t *ca_json(ca *c)
{
    const ca_settings *s = ca_get_settings(c);
    X509 *x = ca_cert(c);
    json_t *profiles = json_array(), *j;
    char *subj = NULL, *iss = NULL, *nb = NULL, *na = NULL, *hex = NULL;
    char ser[REG_SERIAL_TEXT_MAX] = "";
    BIGNUM *bn = NULL;

    for (size_t i = 0; i < ca_profile_count(c); i++)
        json_array_append_new(profiles, profile_json(ca_profile_at(c, i)));
    if (x) {
        subj = cli_name_show(X509_get_subject_name(x));
        iss = cli_name_show(X509_get_issuer_name(x));
        nb = cli_time_iso(X509_get0_notBefore(x));
        na = cli_time_iso(X509_get0_notAfter(x));
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        if (hex)
            reg_serial_text(hex, ser, sizeof(ser));
    }
    j = json_pack("{s:s?, s:s, s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, "
                  "s:s?, s:s?, s:I, s:i, s:i, s:s?, s:s?, s:s?, s:s?, "
                  "s:i, s:o}",
                  "name", s->name, "dir", ca_dir(c), "type",
                  s->intermediate ? "intermediate" : "root", "status",
                  x ? "ready" : "waiting for its certificate", "key", s->key,
                  "key_sha256", s->key_sha256, "subject", subj, "issuer", iss,
                  "serial", ser[0] ? ser : NULL, "not_before", nb, "not_after",
                  na, "registry_id", (json_int_t)ca_registry_id(c), "chain",
                  (int)sk_X509_num(ca_chain(c)), "crl_days", (int)s->crl_days,
                  "crl_url", s->crl_url, "ocsp_url", s->ocsp_url, "issuers_url",
                  s->issuers_url, "pin_source", s->pin_source, "rate_limit",
                  (int)s->rate_limit, "profiles", profiles);
    OPENSSL_free(hex);
    BN_free(bn);
    free(subj);
    free(iss);
    free(nb);
    free(na);
    return j;
}

static void ca_print(json_t *j)
{
    static const char *const keys[] = {
        "name",       "dir",        "type",       "status",    "subject",
        "issuer",     "serial",     "not_before", "not_after", "key",
        "key_sha256", "pin_source", "crl_url",    "ocsp_url",  "issuers_url",
    };
    json_t *v, *p;
    size_t i;

    printf("CA \"%s\"\n",
           cli_esc(json_string_value(json_object_get(j, "name"))));
    for (i = 1; i < sizeof(keys) / sizeof(keys[0]); i++)
        if ((v = json_object_get(j, keys[i])) && json_is_string(v))
            printf("  %-12s %s\n", keys[i], cli_esc(json_string_value(v)));
    printf("  %-12s %lld issuer certificate(s) above it\n", "chain",
           (long long)json_integer_value(json_object_get(j, "chain")));
    printf("  %-12s %lld days\n  %-12s %lld sign-ups per second\n", "crl_days",
           (long long)json_integer_value(json_object_get(j, "crl_days")),
           "rate_limit",
           (long long)json_integer_value(json_object_get(j, "rate_limit")));
    printf("  profiles:\n");
    json_array_foreach(json_object_get(j, "profiles"), i, p)
    {
        printf(
            "    %-14s %s (%lld days, at most %lld; client ID %s; renewal: %s",
            json_string_value(json_object_get(p, "name")),
            json_string_value(json_object_get(p, "description"))
                ? json_string_value(json_object_get(p, "description"))
                : "",
            (long long)json_integer_value(json_object_get(p, "default_days")),
            (long long)json_integer_value(json_object_get(p, "max_days")),
            json_string_value(json_object_get(p, "client_id")),
            json_string_value(json_object_get(p, "supersede")));
        if (json_integer_value(json_object_get(p, "rate_limit")))
            printf("; at most %lld per second",
                   (long long)json_integer_value(
                       json_object_get(p, "rate_limit")));
        printf(")\n");
    }
}

static int show_dir(struct cli *cli, const char *dir)
{
    ca *c = NULL;
    json_t *j;
    int rc = ca_open_readonly(dir, &c);

    if (rc != P11CA_OK)
        return cli_error(rc, "%s", p11ca_err_message());
    j = ca_json(c);
    if (cli->json) {
        rc = cli_json_print(j);
    } else if (j) {
        ca_print(j);
        json_decref(j);
    }
    ca_close(c);
    return rc;
}

static int cmd_ca_show(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_ca_cmds, "show");
    const char *dir = NULL;
    int o;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o != OPT_DIR)
            return cli_usage_error(me, "bad option");
        dir = optarg;
    }
    dir = cli_ca_dir(dir);
    if (!dir || optind < argc)
        return cli_usage_error(me, "give --dir DIR (or P11CA_CA_DIR)");
    return show_dir(cli, dir);
}

const struct cli_cmd cli_ca_cmds[] = {
    {"ca", "init",
     "--dir DIR --subject /CN=NAME (--key-uri URI | --key FILE) "
     "[--generate TYPE] [--days N] [--pathlen N] [--name-constraints SPEC] "
     "[--intermediate] [--pin-source FILE] [--registry LOCATION]",
     "Create a CA in DIR: a root (self-signed DIR/ca.pem: CA:TRUE, "
     "keyCertSign, cRLSign, SKI/AKI) or, with --intermediate, a CSR in "
     "DIR/ca.csr for a parent CA to sign. Writes DIR/ca.cnf (OpenSSL config "
     "syntax: the key, its public-key hash, the registry, the profiles "
     "server, client, intermediate and ocsp; the syntax is explained in a "
     "comment block inside) and creates the registry. A token key must be "
     "CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE. An existing CA is "
     "never overwritten.",
     "--dir DIR\tthe CA directory (made with mode 0700; default "
     "$P11CA_CA_DIR)\n"
     "--subject /CN=NAME\tthe CA's subject, e.g. '/CN=Example Root/O=Example'"
     "\n"
     "--key-uri URI\tthe CA key on a token (pkcs11: URI); with --generate, "
     "the token and the new key's object= label (and id=). ca.cnf, the "
     "audit trail and the output record it without PIN attributes: a "
     "pin-value= logs in for this command only, a pin-source= becomes "
     "pin_source (unless --pin-source is given)\n"
     "--key FILE\ta key file instead (with --generate: a new file, mode "
     "0600)\n"
     "--generate TYPE\tgenerate the key: rsa:3072, rsa:4096, ec:P-256, "
     "ec:P-384, ec:P-521, ed25519; removed again if a later step fails\n"
     "--days N\tvalidity of a root certificate (default 3650)\n"
     "--pathlen N\tthe path length constraint (default: none)\n"
     "--name-constraints SPEC\tcritical nameConstraints, e.g. "
     "'permitted;DNS:.example.com,DNS:.example.org,excluded;IP:10.0.0.0/"
     "255.0.0.0'\n"
     "--intermediate\twrite DIR/ca.csr instead of a self-signed "
     "certificate\n"
     "--pin-source FILE\tthe token PIN (or key passphrase) file, recorded "
     "in ca.cnf as pin_source (never the PIN itself)\n"
     "--registry LOCATION\tthe registry (default DIR/registry.db; "
     "sqlite:PATH; postgresql://USER@HOST/DB, postgresql:KEYWORD=VALUE ... "
     "or postgresql:service=NAME for PostgreSQL, see "
     "docs/registry-postgresql.md; written to ca.cnf as it is given, so "
     "keep passwords in ~/.pgpass or a service file)\n"
     "--name NAME\tthe CA's name in listings (default: the subject's CN)",
     cmd_ca_init},
    {"ca", "import-chain", "--dir DIR CERT.pem [CHAIN.pem]",
     "Install the certificate a parent CA issued for the intermediate "
     "waiting in DIR: it must carry the key recorded at init, be a CA "
     "certificate with keyCertSign, and verify against the chain (the "
     "issuers up to a self-signed root, in CHAIN.pem or after the "
     "certificate in CERT.pem). Writes DIR/ca.pem and DIR/chain.pem and "
     "registers the CA.",
     "--dir DIR\tthe CA directory", cmd_ca_import_chain},
    {"ca", "show", "--dir DIR [--json]",
     "Describe the CA: its certificate, key, registry, CRL and AIA "
     "settings and its profiles. Needs no PIN.",
     "--dir DIR\tthe CA directory (default $P11CA_CA_DIR)", cmd_ca_show},
    {"ca", "list", "[--dir DIR] [--json]",
     "List the CAs the registry knows: this CA and the external CAs "
     "registered with p11ca cert register-ca, each with its id (what "
     "--issuer takes, as well as its name), its kind (this CA; issuing: "
     "another CA whose issuance this registry records; external), name, "
     "end of validity, number of certificates and subject. Needs no PIN.",
     "--dir DIR\tthe CA directory (default $P11CA_CA_DIR)", cmd_ca_list},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
