/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca cert list|show|activate|deactivate|revoke|delete|register and
 * p11ca audit: the certificate registry of a CA directory. */
#include "config.h"

#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"

#define MAX_CERT_FILE (1024 * 1024)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

const char *cli_ca_dir(const char *dir)
{
    const char *env = getenv("P11CA_CA_DIR");

    return dir ? dir : env && *env ? env : NULL;
}

int cli_open_ca(const char *dir, ca **out)
{
    int rc;

    dir = cli_ca_dir(dir);
    if (!dir)
        return cli_error(P11CA_E_USAGE, "give the CA directory with --dir "
                                        "DIR (or P11CA_CA_DIR)");
    rc = ca_open(dir, out);
    if (rc != P11CA_OK)
        return cli_error(rc, "%s", p11ca_err_message());
    return P11CA_OK;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!t) {
        snprintf(buf, len, "-");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *json_time(int64_t t)
{
    char buf[32];

    if (!t)
        return json_null();
    fmt_time(t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *cert_json(const reg_cert *c)
{
    return json_pack(
        "{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, "
        "s:o, s:o, s:o, s:s?, s:o, s:s?, s:s?}",
        "serial", c->serial, "status", reg_status_name(c->status), "subject",
        c->subject, "issuer", c->issuer, "cn", c->cn, "ou", c->ou, "client_id",
        c->client_id, "profile", c->profile, "not_before",
        json_time(c->not_before), "not_after", json_time(c->not_after),
        "recorded_at", json_time(c->recorded_at), "revoked_at",
        json_time(c->revoked_at), "reason",
        c->reason >= 0 ? reg_reason_name(c->reason) : NULL, "invalidity",
        json_time(c->invalidity), "origin", c->origin, "replaces", c->replaces);
}

/* ------------------------------------------------------------------ */
/* cert list                                                           */
/* ------------------------------------------------------------------ */

struct list_out {
    bool json;
    json_t *arr;
    size_t n;
};

static int list_one(const reg_cert *c, void *arg)
{
    struct list_out *lo = arg;
    char na[32];

    lo->n++;
    if (lo->json)
        return json_array_append_new(lo->arr, cert_json(c)) ? 1 : 0;
    fmt_time(c->not_after, na, sizeof(na));
    printf("%-40s  %-24s  %-20s  %s  %s\n", c->serial,
           reg_status_name(c->status), c->client_id ? c->client_id : "-", na,
           c->subject ? c->subject : "");
    return 0;
}

enum {
    OPT_DIR = 1,
    OPT_SERIAL,
    OPT_CN,
    OPT_OU,
    OPT_STATUS,
    OPT_CLIENT,
    OPT_PROFILE,
    OPT_ISSUED_AFTER,
    OPT_ISSUED_BEFORE,
    OPT_EXPIRES_AFTER,
    OPT_EXPIRES_BEFORE,
    OPT_EXPIRING,
    OPT_EXPIRED,
    OPT_VALID,
    OPT_LIMIT,
    OPT_REASON,
    OPT_INVALIDITY,
    OPT_WHY,
    OPT_PEM,
    OPT_SINCE,
    OPT_FORCE,
    OPT_COUNT,
};

#define FILTER_OPTIONS                                                         \
    {"serial", required_argument, NULL, OPT_SERIAL},                           \
        {"cn", required_argument, NULL, OPT_CN},                               \
        {"ou", required_argument, NULL, OPT_OU},                               \
        {"status", required_argument, NULL, OPT_STATUS},                       \
        {"client-id", required_argument, NULL, OPT_CLIENT},                    \
        {"profile", required_argument, NULL, OPT_PROFILE},                     \
        {"issued-after", required_argument, NULL, OPT_ISSUED_AFTER},           \
        {"issued-before", required_argument, NULL, OPT_ISSUED_BEFORE},         \
        {"expires-after", required_argument, NULL, OPT_EXPIRES_AFTER},         \
        {"expires-before", required_argument, NULL, OPT_EXPIRES_BEFORE},       \
        {"expiring", required_argument, NULL, OPT_EXPIRING},                   \
        {"expired", no_argument, NULL, OPT_EXPIRED},                           \
        {"valid", no_argument, NULL, OPT_VALID},                               \
    {                                                                          \
        "limit", required_argument, NULL, OPT_LIMIT                            \
    }

/* Apply one filter option to @f; P11CA_OK, or a usage error. */
static int filter_opt(const struct cli_cmd *me, int c, const char *arg,
                      reg_filter *f, bool *any)
{
    int64_t v, now = (int64_t)time(NULL);

    *any = true;
    switch (c) {
    case OPT_SERIAL:
        f->serial = arg;
        return P11CA_OK;
    case OPT_CN:
        f->cn = arg;
        return P11CA_OK;
    case OPT_OU:
        f->ou = arg;
        return P11CA_OK;
    case OPT_CLIENT:
        f->client_id = arg;
        return P11CA_OK;
    case OPT_PROFILE:
        f->profile = arg;
        return P11CA_OK;
    case OPT_STATUS:
        if (reg_status_parse(arg, &f->status) != P11CA_OK)
            return cli_usage_error(me,
                                   "unknown status \"%s\": activated, "
                                   "not-activated, "
                                   "registered-not-activated, revoked",
                                   arg);
        return P11CA_OK;
    case OPT_EXPIRED:
        f->expires_before = now;
        return P11CA_OK;
    case OPT_VALID:
        f->valid_at = now;
        return P11CA_OK;
    case OPT_LIMIT:
        f->limit = (size_t)strtoul(arg, NULL, 10);
        return P11CA_OK;
    case OPT_EXPIRING:
        if (cli_parse_duration(arg, &v) != 0)
            return cli_usage_error(me, "--expiring takes a duration like "
                                       "30d, 12h or 90m");
        /* Still valid now, expiring within the window. */
        f->expires_after = now;
        f->expires_before = now + v;
        return P11CA_OK;
    default:
        break;
    }
    if (cli_parse_time(arg, &v) != 0)
        return cli_usage_error(me,
                               "bad date \"%s\": use YYYY-MM-DD, "
                               "YYYY-MM-DDTHH:MM:SSZ or @unix",
                               arg);
    if (c == OPT_ISSUED_AFTER)
        f->issued_after = v;
    else if (c == OPT_ISSUED_BEFORE)
        f->issued_before = v;
    else if (c == OPT_EXPIRES_AFTER)
        f->expires_after = v;
    else
        f->expires_before = v;
    return P11CA_OK;
}

int cmd_certreg_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"count", no_argument, NULL, OPT_COUNT},
        FILTER_OPTIONS,
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "list");
    struct list_out lo = {0};
    const char *dir = NULL;
    reg_filter f = {0};
    ca *c = NULL;
    bool any = false, count = false;
    size_t n = 0;
    int o, rc;

    optind = 0;
    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_COUNT)
            count = true;
        else if (o >= OPT_SERIAL && o <= OPT_LIMIT) {
            rc = filter_opt(me, o, optarg, &f, &any);
            if (rc != P11CA_OK)
                return rc;
        } else
            return cli_usage_error(me, "bad option");
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    if (count) {
        rc = reg_count(ca_registry(c), &f, &n);
        if (rc != P11CA_OK)
            rc = cli_error(rc, "%s", p11ca_err_message());
        else if (cli->json)
            rc = cli_json_print(json_pack("{s:I}", "count", (json_int_t)n));
        else
            printf("%zu\n", n);
        ca_close(c);
        return rc;
    }
    lo.json = cli->json;
    lo.arr = json_array();
    if (!cli->json)
        printf("%-40s  %-24s  %-20s  %-20s  %s\n", "SERIAL", "STATUS",
               "CLIENT ID", "NOT AFTER", "SUBJECT");
    rc = reg_search(ca_registry(c), &f, list_one, &lo);
    if (rc < 0) {
        rc = cli_error(rc, "%s", p11ca_err_message());
    } else if (cli->json) {
        rc = cli_json_print(lo.arr);
        lo.arr = NULL;
    } else {
        fprintf(stderr, "%zu certificate(s)\n", lo.n);
        rc = P11CA_OK;
    }
    json_decref(lo.arr);
    ca_close(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cert show                                                           */
/* ------------------------------------------------------------------ */

static int history_one(const reg_history *h, void *arg)
{
    json_t *arr = arg;
    char at[32];

    if (arr)
        return json_array_append_new(
                   arr, json_pack("{s:o, s:s?, s:s, s:s?, s:s?}", "at",
                                  json_time(h->at), "from",
                                  h->from ? reg_status_name(h->from) : NULL,
                                  "to", reg_status_name(h->to), "actor",
                                  h->actor, "reason", h->reason))
                   ? 1
                   : 0;
    fmt_time(h->at, at, sizeof(at));
    printf("  %s  %-24s -> %-24s  %s%s%s\n", at,
           h->from ? reg_status_name(h->from) : "(recorded)",
           reg_status_name(h->to), h->actor ? h->actor : "",
           h->reason && *h->reason ? ": " : "", h->reason ? h->reason : "");
    return 0;
}

static void print_cert_text(const reg_cert *c)
{
    char nb[32], na[32], rec[32], rev[32];

    fmt_time(c->not_before, nb, sizeof(nb));
    fmt_time(c->not_after, na, sizeof(na));
    fmt_time(c->recorded_at, rec, sizeof(rec));
    fmt_time(c->revoked_at, rev, sizeof(rev));
    printf("serial:      %s\nstatus:      %s\nsubject:     %s\n"
           "issuer:      %s\nclient id:   %s\nprofile:     %s\n"
           "origin:      %s\nnot before:  %s\nnot after:   %s\n"
           "recorded:    %s\n",
           c->serial, reg_status_name(c->status), c->subject ? c->subject : "",
           c->issuer ? c->issuer : "", c->client_id ? c->client_id : "-",
           c->profile ? c->profile : "-", c->origin ? c->origin : "-", nb, na,
           rec);
    if (c->status == REG_REVOKED)
        printf("revoked:     %s (%s)\n", rev,
               c->reason >= 0 ? reg_reason_name(c->reason) : "unspecified");
    if (c->replaces)
        printf("replaces:    %s\n", c->replaces);
    printf("history:\n");
}

int cmd_cert_show(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"pem", no_argument, NULL, OPT_PEM},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "show");
    const char *dir = NULL;
    reg_cert rc_cert = {0};
    json_t *j = NULL, *hist = NULL;
    bool pem = false;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_PEM)
            pem = true;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one serial number");
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    rc = reg_get(ca_registry(c), argv[optind], &rc_cert);
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "%s", p11ca_err_message());
        goto out;
    }
    if (cli->json) {
        j = cert_json(&rc_cert);
        hist = json_array();
        rc =
            reg_history_list(ca_registry(c), rc_cert.serial, history_one, hist);
        json_object_set_new(j, "history", hist);
        rc = rc < 0 ? cli_error(rc, "%s", p11ca_err_message())
                    : cli_json_print(j);
        goto out;
    }
    print_cert_text(&rc_cert);
    rc = reg_history_list(ca_registry(c), rc_cert.serial, history_one, NULL);
    if (rc < 0) {
        rc = cli_error(rc, "%s", p11ca_err_message());
        goto out;
    }
    if (pem) {
        const unsigned char *p = rc_cert.der;
        X509 *x = d2i_X509(NULL, &p, (long)rc_cert.der_len);
        if (x)
            PEM_write_X509(stdout, x);
        X509_free(x);
    }
    rc = P11CA_OK;
out:
    reg_cert_clear(&rc_cert);
    ca_close(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Status changes                                                      */
/* ------------------------------------------------------------------ */

/* Common parsing of "cert activate|deactivate|delete SERIAL [--why T]". */
static int simple_change(struct cli *cli, int argc, char **argv,
                         const char *verb, reg_status to, bool del)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"why", required_argument, NULL, OPT_WHY},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, verb);
    const char *dir = NULL, *why = NULL;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_WHY)
            why = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one serial number");
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    rc = del ? reg_delete(ca_registry(c), argv[optind], ca_actor(), why)
             : reg_set_status(ca_registry(c), argv[optind], to, -1, 0,
                              ca_actor(), why);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert %s: %s", verb, p11ca_err_message());
    else if (!cli->json)
        printf("%s: %s\n", argv[optind], del ? "deleted" : reg_status_name(to));
    ca_close(c);
    return rc;
}

int cmd_cert_activate(struct cli *cli, int argc, char **argv)
{
    return simple_change(cli, argc, argv, "activate", REG_ACTIVATED, false);
}

int cmd_cert_deactivate(struct cli *cli, int argc, char **argv)
{
    return simple_change(cli, argc, argv, "deactivate", REG_NOT_ACTIVATED,
                         false);
}

int cmd_cert_delete(struct cli *cli, int argc, char **argv)
{
    return simple_change(cli, argc, argv, "delete", REG_STATUS_ANY, true);
}

/* Revoke what @f matches (one audited action), or the client's certs. */
static int revoke_bulk(struct cli *cli, ca *c, const reg_filter *f, int reason,
                       const char *why)
{
    size_t n = 0;
    int rc = reg_revoke_bulk(ca_registry(c), f, reason, ca_actor(), why, &n);

    if (rc != P11CA_OK)
        return cli_error(rc, "cert revoke: %s", p11ca_err_message());
    if (cli->json)
        return cli_json_print(json_pack("{s:I}", "revoked", (json_int_t)n));
    printf("revoked %zu certificate(s)\n", n);
    return n ? P11CA_OK
             : cli_error(P11CA_E_NOTFOUND,
                         "cert revoke: no certificate matched");
}

int cmd_cert_revoke(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"reason", required_argument, NULL, OPT_REASON},
        {"invalidity", required_argument, NULL, OPT_INVALIDITY},
        {"why", required_argument, NULL, OPT_WHY},
        FILTER_OPTIONS,
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "revoke");
    const char *dir = NULL, *why = NULL;
    int64_t invalidity = 0;
    reg_filter f = {0};
    bool filtered = false;
    int reason = 0, o, rc;
    ca *c = NULL;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        switch (o) {
        case OPT_DIR:
            dir = optarg;
            break;
        case OPT_WHY:
            why = optarg;
            break;
        case OPT_REASON:
            if (reg_reason_parse(optarg, &reason) != P11CA_OK)
                return cli_usage_error(me,
                                       "unknown reason \"%s\" (e.g. "
                                       "keyCompromise, superseded, "
                                       "cessationOfOperation)",
                                       optarg);
            break;
        case OPT_INVALIDITY:
            if (cli_parse_time(optarg, &invalidity) != 0)
                return cli_usage_error(me, "bad --invalidity date");
            break;
        default:
            if (o < OPT_SERIAL || o > OPT_LIMIT)
                return cli_usage_error(me, "bad option");
            rc = filter_opt(me, o, optarg, &f, &filtered);
            if (rc != P11CA_OK)
                return rc;
        }
    }
    if (argc - optind > 1 || (argc - optind == 1) == filtered)
        return cli_usage_error(me, "give one serial number, or filters "
                                   "(--client-id, --ou, --profile, "
                                   "--issued-before, ...) for a bulk "
                                   "revocation");
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    if (filtered) {
        rc = revoke_bulk(cli, c, &f, reason, why);
    } else {
        rc = reg_set_status(ca_registry(c), argv[optind], REG_REVOKED, reason,
                            invalidity, ca_actor(), why);
        if (rc != P11CA_OK)
            rc = cli_error(rc, "cert revoke: %s", p11ca_err_message());
        else if (!cli->json)
            printf("%s: revoked (%s)\n", argv[optind], reg_reason_name(reason));
    }
    ca_close(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cert register, cert register-ca                                     */
/* ------------------------------------------------------------------ */

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
    if (!*out)
        return cli_error(P11CA_E_INPUT,
                         "%s: not a PEM or DER X.509 "
                         "certificate",
                         path);
    return P11CA_OK;
}

struct issuer_find {
    X509 *cert;
    int64_t id;
};

/* Is @ca the issuer of the certificate, with a signature that verifies? */
static int issuer_one(const reg_ca *rca, void *arg)
{
    struct issuer_find *f = arg;
    const unsigned char *p = rca->der;
    X509 *x = d2i_X509(NULL, &p, (long)rca->der_len);
    int hit = 0;

    if (x && X509_check_issued(x, f->cert) == X509_V_OK
        && X509_verify(f->cert, X509_get0_pubkey(x)) == 1) {
        f->id = rca->id;
        hit = 1;
    }
    X509_free(x);
    return hit;
}

int cmd_cert_register(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"client-id", required_argument, NULL, OPT_CLIENT},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "register");
    const char *dir = NULL, *client = NULL;
    struct issuer_find f = {0};
    unsigned char *der = NULL;
    reg_cert rcert = {0};
    ca *c = NULL;
    int o, rc, n;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_CLIENT)
            client = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one certificate file");
    rc = load_cert(argv[optind], &f.cert);
    if (rc == P11CA_OK)
        rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        goto out;
    rc = reg_ca_list(ca_registry(c), issuer_one, &f);
    if (rc < 0) {
        rc = cli_error(rc, "%s", p11ca_err_message());
        goto out;
    }
    if (!f.id) {
        rc = cli_error(P11CA_E_POLICY,
                       "cert register: %s is not issued by "
                       "a registered CA (register its CA with 'p11ca cert "
                       "register-ca')",
                       argv[optind]);
        goto out;
    }
    n = i2d_X509(f.cert, &der);
    rc = n > 0 ? reg_cert_from_der(&rcert, der, (size_t)n) : P11CA_E_INPUT;
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "%s", p11ca_err_message());
        goto out;
    }
    rcert.ca_id = f.id;
    if (client) {
        free(rcert.client_id);
        rcert.client_id = strdup(client);
    }
    rc = reg_register(ca_registry(c), &rcert, ca_actor());
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert register: %s", p11ca_err_message());
    else if (cli->json)
        rc = cli_json_print(
            json_pack("{s:s, s:s}", "serial", rcert.serial, "status",
                      reg_status_name(REG_REGISTERED_NOT_ACTIVATED)));
    else
        printf("%s: %s\n", rcert.serial,
               reg_status_name(REG_REGISTERED_NOT_ACTIVATED));
out:
    OPENSSL_free(der);
    reg_cert_clear(&rcert);
    X509_free(f.cert);
    ca_close(c);
    return rc;
}

int cmd_cert_register_ca(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"name", required_argument, NULL, OPT_WHY},
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
        else if (o == OPT_WHY)
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
    rc = n > 0 ? reg_ca_add(ca_registry(c), der, (size_t)n, name, &id)
               : P11CA_E_INPUT;
    if (rc == P11CA_OK)
        rc = reg_audit_add(ca_registry(c), ca_actor(), "register-ca",
                           name ? name : argv[optind], NULL);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert register-ca: %s", p11ca_err_message());
    else
        printf("registered CA %lld\n", (long long)id);
out:
    OPENSSL_free(der);
    X509_free(x);
    ca_close(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* audit                                                               */
/* ------------------------------------------------------------------ */

static int audit_one(const reg_audit *a, void *arg)
{
    json_t *arr = arg;
    char at[32];

    if (arr)
        return json_array_append_new(
                   arr,
                   json_pack("{s:I, s:o, s:s?, s:s?, s:s?, s:s?, s:s?}", "seq",
                             (json_int_t)a->seq, "at", json_time(a->at),
                             "actor", a->actor, "action", a->action, "object",
                             a->object, "details", a->details, "hash", a->hash))
                   ? 1
                   : 0;
    fmt_time(a->at, at, sizeof(at));
    printf("%6lld  %s  %-18s %-12s %s%s%s\n", (long long)a->seq, at,
           a->actor ? a->actor : "-", a->action ? a->action : "-",
           a->object ? a->object : "", a->details && *a->details ? "  " : "",
           a->details ? a->details : "");
    return 0;
}

static int cmd_audit_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"since", required_argument, NULL, OPT_SINCE},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_audit_cmds, "list");
    const char *dir = NULL;
    int64_t since = 0;
    json_t *arr = NULL;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_SINCE)
            since = strtoll(optarg, NULL, 10);
        else
            return cli_usage_error(me, "bad option");
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument");
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    if (cli->json)
        arr = json_array();
    rc = reg_audit_list(ca_registry(c), since, audit_one, arr);
    if (rc < 0)
        rc = cli_error(rc, "%s", p11ca_err_message());
    else if (arr) {
        rc = cli_json_print(arr);
        arr = NULL;
    } else
        rc = P11CA_OK;
    json_decref(arr);
    ca_close(c);
    return rc;
}

static int cmd_audit_verify(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_audit_cmds, "verify");
    const char *dir = NULL;
    size_t n = 0;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    rc = reg_audit_verify(ca_registry(c), &n);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "audit verify: %s", p11ca_err_message());
    else
        printf("audit trail intact: %zu entries\n", n);
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
     "Check the audit trail's hash chain: an edited or deleted entry is "
     "named (exit 2).",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)", cmd_audit_verify},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
