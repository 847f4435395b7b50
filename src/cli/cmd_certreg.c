/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca cert list|show|activate|deactivate|revoke|delete|register and
 * p11ca audit list: the certificate registry of a CA directory. */
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

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

const char *cli_ca_dir(const char *dir)
{
    const char *env = getenv("P11CA_CA_DIR");

    return dir ? dir : env && *env ? env : NULL;
}

static int open_ca(const char *dir, bool readonly, ca **out)
{
    int rc;

    dir = cli_ca_dir(dir);
    if (!dir)
        return cli_error(
            P11CA_E_USAGE,
            "give the CA directory with --dir DIR (or P11CA_CA_DIR)");
    rc = readonly ? ca_open_readonly(dir, out) : ca_open(dir, out);
    if (rc != P11CA_OK)
        return cli_error(rc, "%s", p11ca_err_message());
    return P11CA_OK;
}

int cli_open_ca(const char *dir, ca **out)
{
    return open_ca(dir, false, out);
}

int cli_open_ca_ro(const char *dir, ca **out)
{
    return open_ca(dir, true, out);
}

int cli_parse_wait(const struct cli_cmd *cmd, const char *arg, unsigned *out)
{
    char *end = NULL;
    unsigned long n;

    errno = 0;
    n = strtoul(arg, &end, 10);
    if (!*arg || *end || arg[0] == '-' || errno || n > CA_WAIT_MAX)
        return cli_usage_error(cmd, "--wait: a number of seconds from 0 to %d",
                               CA_WAIT_MAX);
    *out = (unsigned)n;
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

/* How a registry certificate's fields are shown: the serial as openssl
 * prints it, the names in the certificate's order (from its DER; the
 * registry's RFC 2253 text if that does not decode).  Text output passes
 * them through cli_esc like every name; JSON takes them as they are. */
struct shown {
    char serial[REG_SERIAL_TEXT_MAX];
    char replaces[REG_SERIAL_TEXT_MAX];
    char *subject;
    char *issuer;
};

static void shown_init(struct shown *s, const reg_cert *c)
{
    reg_serial_text(c->serial, s->serial, sizeof(s->serial));
    s->replaces[0] = '\0';
    if (c->replaces)
        reg_serial_text(c->replaces, s->replaces, sizeof(s->replaces));
    cli_der_names(c->der, c->der_len, &s->subject, &s->issuer);
}

static const char *shown_subject(const struct shown *s, const reg_cert *c)
{
    return s->subject ? s->subject : c->subject ? c->subject : "";
}

static const char *shown_issuer(const struct shown *s, const reg_cert *c)
{
    return s->issuer ? s->issuer : c->issuer ? c->issuer : "";
}

static void shown_clear(struct shown *s)
{
    free(s->subject);
    free(s->issuer);
}

static json_t *cert_json(const reg_cert *c)
{
    struct shown s;
    json_t *j;

    shown_init(&s, c);
    j = json_pack(
        "{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, "
        "s:o, s:o, s:o, s:s?, s:o, s:s?, s:s?}",
        "serial", s.serial, "status", reg_status_name(c->status), "subject",
        shown_subject(&s, c), "issuer", shown_issuer(&s, c), "cn", c->cn, "ou",
        c->ou, "client_id", c->client_id, "profile", c->profile, "not_before",
        json_time(c->not_before), "not_after", json_time(c->not_after),
        "recorded_at", json_time(c->recorded_at), "revoked_at",
        json_time(c->revoked_at), "reason",
        c->reason >= 0 ? reg_reason_name(c->reason) : NULL, "invalidity",
        json_time(c->invalidity), "origin", c->origin, "replaces",
        c->replaces ? s.replaces : NULL);
    shown_clear(&s);
    if (j)
        json_object_set_new(j, "ca_id",
                            c->ca_id ? json_integer(c->ca_id) : json_null());
    if (j && c->revoke_after)
        json_object_set_new(j, "revoke_after", json_time(c->revoke_after));
    return j;
}

/* The issuer that --issuer names (NULL: 0, any), as a registered CA id. */
static int issuer_id(ca *c, const char *issuer, int64_t *id)
{
    int rc;

    *id = 0;
    if (!issuer)
        return P11CA_OK;
    rc = reg_ca_find(ca_registry(c), issuer, id);
    if (rc != P11CA_OK)
        return cli_error(rc, "--issuer: %s", p11ca_err_message());
    return P11CA_OK;
}

/* ------------------------------------------------------------------ */
/* cert list                                                           */
/* ------------------------------------------------------------------ */

enum list_format { LIST_TEXT, LIST_JSON, LIST_CSV };

struct list_out {
    enum list_format format;
    json_t *arr;
    size_t n;
};

/* One CSV field (RFC 4180): escaped for the terminal as all text output
 * (cli_esc: names are data), then quoted when it holds a comma, a quote,
 * CR or LF, its quotes doubled; NULL is an empty field. */
static void csv_field(const char *raw, bool last)
{
    const char *s = raw ? cli_esc(raw) : NULL;
    bool quote = s && strpbrk(s, ",\"\r\n") != NULL;

    if (quote) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else if (s) {
        fputs(s, stdout);
    }
    fputs(last ? "\r\n" : ",", stdout);
}

static void csv_time(int64_t t, bool last)
{
    char buf[32];

    fmt_time(t, buf, sizeof(buf));
    csv_field(t ? buf : NULL, last);
}

static void csv_header(void)
{
    fputs(
        "serial,status,ca_id,client_id,cn,ou,profile,not_before,not_after,recorded_at,revoked_at,reason,issuer,subject\r\n",
        stdout);
}

static void csv_row(const reg_cert *c)
{
    char ca_id[24];
    struct shown s;

    shown_init(&s, c);
    snprintf(ca_id, sizeof(ca_id), "%lld", (long long)c->ca_id);
    csv_field(s.serial, false);
    csv_field(reg_status_name(c->status), false);
    csv_field(c->ca_id ? ca_id : NULL, false);
    csv_field(c->client_id, false);
    csv_field(c->cn, false);
    csv_field(c->ou, false);
    csv_field(c->profile, false);
    csv_time(c->not_before, false);
    csv_time(c->not_after, false);
    csv_time(c->recorded_at, false);
    csv_time(c->revoked_at, false);
    csv_field(c->reason >= 0 ? reg_reason_name(c->reason) : NULL, false);
    csv_field(shown_issuer(&s, c), false);
    csv_field(shown_subject(&s, c), true);
    shown_clear(&s);
}

static int list_one(const reg_cert *c, void *arg)
{
    struct list_out *lo = arg;
    struct shown s;
    char na[32];

    lo->n++;
    if (lo->format == LIST_JSON)
        return json_array_append_new(lo->arr, cert_json(c)) ? 1 : 0;
    if (lo->format == LIST_CSV) {
        csv_row(c);
        return 0;
    }
    fmt_time(c->not_after, na, sizeof(na));
    shown_init(&s, c);
    printf("%-40s  %-24s  %-20s  %s  %s\n", s.serial,
           reg_status_name(c->status),
           c->client_id ? cli_esc(c->client_id) : "-", na,
           cli_esc(shown_subject(&s, c)));
    shown_clear(&s);
    return 0;
}

enum {
    OPT_DIR = 1,
    OPT_SERIAL,
    OPT_CN,
    OPT_CN_LIKE,
    OPT_OU,
    OPT_OU_LIKE,
    OPT_STATUS,
    OPT_CLIENT,
    OPT_PROFILE,
    OPT_ISSUER,
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
    OPT_SORT,
    OPT_FORMAT,
    OPT_YES,
    OPT_DRY_RUN,
};

/* --issuer is resolved once the CA is open (filter_issuer). */
#define FILTER_OPTIONS                                                         \
    {"serial", required_argument, NULL, OPT_SERIAL},                           \
        {"cn", required_argument, NULL, OPT_CN},                               \
        {"cn-like", required_argument, NULL, OPT_CN_LIKE},                     \
        {"ou", required_argument, NULL, OPT_OU},                               \
        {"ou-like", required_argument, NULL, OPT_OU_LIKE},                     \
        {"status", required_argument, NULL, OPT_STATUS},                       \
        {"client-id", required_argument, NULL, OPT_CLIENT},                    \
        {"profile", required_argument, NULL, OPT_PROFILE},                     \
        {"issuer", required_argument, NULL, OPT_ISSUER},                       \
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

/* A filter and what needs the open CA (the issuer's name). */
struct filter_args {
    reg_filter f;
    const char *issuer;
    bool any; /* a criterion was given */
};

/* --limit: a whole number, at least 1. */
static int parse_limit(const struct cli_cmd *me, const char *arg, size_t *n)
{
    unsigned long long v;
    char *e = NULL;

    errno = 0;
    v = isdigit((unsigned char)arg[0]) ? strtoull(arg, &e, 10) : 0;
    if (!e || *e || errno || v == 0 || v > INT64_MAX || v > SIZE_MAX)
        return cli_usage_error(
            me, "--limit \"%s\": give a whole number from 1 to %lld", arg,
            (long long)INT64_MAX);
    *n = (size_t)v;
    return P11CA_OK;
}

/* --expiring DURATION: still valid now, expiring within it. */
static int parse_expiring(const struct cli_cmd *me, const char *arg,
                          int64_t now, reg_filter *f)
{
    int64_t v = 0;
    int bad = cli_parse_duration(arg, &v);

    if (bad == -1)
        return cli_usage_error(
            me,
            "--expiring \"%s\": give a duration with its unit, like 30d, 12h, 90m, 3600s or 2w",
            arg);
    if (bad || v > CLI_TIME_MAX - now)
        return cli_usage_error(
            me,
            "--expiring %s reaches past 9999-12-31T23:59:59Z, the last time a certificate can carry",
            arg);
    f->expires_after = now;
    f->expires_before = now + v;
    f->not_revoked = true;
    return P11CA_OK;
}

/* Apply one filter option to @fa; P11CA_OK, or a usage error. */
static int filter_opt(const struct cli_cmd *me, int c, const char *arg,
                      struct filter_args *fa)
{
    reg_filter *f = &fa->f;
    int64_t v, now = (int64_t)time(NULL);

    fa->any = true;
    switch (c) {
    case OPT_SERIAL:
        f->serial = arg;
        return P11CA_OK;
    case OPT_CN:
        f->cn = arg;
        return P11CA_OK;
    case OPT_CN_LIKE:
        f->cn_match = arg;
        return P11CA_OK;
    case OPT_OU:
        f->ou = arg;
        return P11CA_OK;
    case OPT_OU_LIKE:
        f->ou_match = arg;
        return P11CA_OK;
    case OPT_CLIENT:
        f->client_id = arg;
        return P11CA_OK;
    case OPT_PROFILE:
        f->profile = arg;
        return P11CA_OK;
    case OPT_ISSUER:
        fa->issuer = arg;
        return P11CA_OK;
    case OPT_STATUS:
        if (reg_status_parse(arg, &f->status) != P11CA_OK)
            return cli_usage_error(
                me,
                "unknown status \"%s\": activated, not-activated, registered-not-activated, revoked",
                arg);
        return P11CA_OK;
    case OPT_EXPIRED:
        f->expires_before = now;
        return P11CA_OK;
    case OPT_VALID:
        /* Valid means usable: within its validity and not revoked. */
        f->valid_at = now;
        f->not_revoked = true;
        return P11CA_OK;
    case OPT_LIMIT:
        fa->any = false; /* paging, not a criterion */
        return parse_limit(me, arg, &f->limit);
    case OPT_EXPIRING:
        return parse_expiring(me, arg, now, f);
    default:
        break;
    }
    if (cli_parse_time(arg, &v) != 0)
        return cli_usage_error(
            me,
            "bad date \"%s\": use a real date as YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @unix (up to 9999-12-31)",
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

/* --issuer NAME|ID into the filter, once the CA is open. */
static int filter_issuer(ca *c, struct filter_args *fa)
{
    return issuer_id(c, fa->issuer, &fa->f.ca_id);
}

/* --sort FIELD or -FIELD (descending), from a fixed list. */
static int parse_sort(const struct cli_cmd *me, const char *arg, reg_filter *f)
{
    static const struct {
        const char *name;
        reg_sort sort;
    } fields[] = {
        {"issued", REG_SORT_RECORDED},
        {"serial", REG_SORT_SERIAL},
        {"cn", REG_SORT_CN},
        {"client-id", REG_SORT_CLIENT_ID},
        {"status", REG_SORT_STATUS},
        {"profile", REG_SORT_PROFILE},
        {"not-before", REG_SORT_NOT_BEFORE},
        {"not-after", REG_SORT_NOT_AFTER},
    };
    const char *name = arg[0] == '-' ? arg + 1 : arg;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(name, fields[i].name) == 0) {
            f->sort = fields[i].sort;
            f->descending = arg[0] == '-';
            return P11CA_OK;
        }
    return cli_usage_error(
        me,
        "--sort \"%s\": one of issued, serial, cn, client-id, status, profile, not-before, not-after (-FIELD: descending)",
        arg);
}

static int parse_format(const struct cli_cmd *me, const char *arg,
                        enum list_format *fmt)
{
    if (strcmp(arg, "text") == 0)
        *fmt = LIST_TEXT;
    else if (strcmp(arg, "json") == 0)
        *fmt = LIST_JSON;
    else if (strcmp(arg, "csv") == 0)
        *fmt = LIST_CSV;
    else
        return cli_usage_error(me, "--format \"%s\": text, json or csv", arg);
    return P11CA_OK;
}

/* The certificates of @fa in @fmt on stdout (the count on stderr). */
static int list_print(ca *c, const reg_filter *f, enum list_format fmt)
{
    struct list_out lo = {.format = fmt};
    int rc;

    if (fmt == LIST_JSON && !(lo.arr = json_array()))
        return cli_error(P11CA_E_NOMEM, "out of memory");
    if (fmt == LIST_TEXT)
        printf("%-40s  %-24s  %-20s  %-20s  %s\n", "SERIAL", "STATUS",
               "CLIENT ID", "NOT AFTER", "SUBJECT");
    else if (fmt == LIST_CSV)
        csv_header();
    rc = reg_search(ca_registry(c), f, list_one, &lo);
    if (rc < 0) {
        rc = cli_error(rc, "%s", p11ca_err_message());
    } else if (fmt == LIST_JSON) {
        rc = cli_json_print(lo.arr);
        lo.arr = NULL;
    } else {
        fprintf(stderr, "%zu certificate(s)\n", lo.n);
        rc = P11CA_OK;
    }
    json_decref(lo.arr);
    return rc;
}

int cmd_certreg_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"count", no_argument, NULL, OPT_COUNT},
        {"sort", required_argument, NULL, OPT_SORT},
        {"format", required_argument, NULL, OPT_FORMAT},
        FILTER_OPTIONS,
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "list");
    enum list_format fmt = LIST_TEXT;
    struct filter_args fa = {0};
    const char *dir = NULL;
    bool count = false, fmt_given = false;
    ca *c = NULL;
    size_t n = 0;
    int o, rc;

    optind = 0;
    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        rc = P11CA_OK;
        switch (o) {
        case 'h':
            return cli_help(me);
        case OPT_DIR:
            dir = optarg;
            break;
        case OPT_COUNT:
            count = true;
            break;
        case OPT_SORT:
            rc = parse_sort(me, optarg, &fa.f);
            break;
        case OPT_FORMAT:
            rc = parse_format(me, optarg, &fmt);
            fmt_given = true;
            break;
        default:
            if (o < OPT_SERIAL || o > OPT_LIMIT)
                return cli_usage_error(me, "bad option");
            rc = filter_opt(me, o, optarg, &fa);
        }
        if (rc != P11CA_OK)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    if (cli->json && fmt_given && fmt != LIST_JSON)
        return cli_usage_error(
            me,
            "--json asks for JSON and --format for another format: give one of them");
    if (cli->json)
        fmt = LIST_JSON;
    rc = cli_open_ca_ro(dir, &c);
    if (rc == P11CA_OK)
        rc = filter_issuer(c, &fa);
    if (rc != P11CA_OK)
        goto out;
    if (!count) {
        rc = list_print(c, &fa.f, fmt);
        goto out;
    }
    rc = reg_count(ca_registry(c), &fa.f, &n);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "%s", p11ca_err_message());
    else if (fmt == LIST_JSON)
        rc = cli_json_print(json_pack("{s:I}", "count", (json_int_t)n));
    else
        printf("%zu\n", n);
out:
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
           reg_status_name(h->to), cli_esc(h->actor),
           h->reason && *h->reason ? ": " : "", cli_esc(h->reason));
    return 0;
}

static void print_cert_text(const reg_cert *c)
{
    char nb[32], na[32], rec[32], rev[32];
    struct shown s;

    shown_init(&s, c);
    fmt_time(c->not_before, nb, sizeof(nb));
    fmt_time(c->not_after, na, sizeof(na));
    fmt_time(c->recorded_at, rec, sizeof(rec));
    fmt_time(c->revoked_at, rev, sizeof(rev));
    printf("serial:      %s\nstatus:      %s\nsubject:     %s\n"
           "issuer:      %s (CA %lld)\nclient id:   %s\nprofile:     %s\n"
           "origin:      %s\nnot before:  %s\nnot after:   %s\n"
           "recorded:    %s\n",
           s.serial, reg_status_name(c->status), cli_esc(shown_subject(&s, c)),
           cli_esc(shown_issuer(&s, c)), (long long)c->ca_id,
           c->client_id ? cli_esc(c->client_id) : "-",
           c->profile ? cli_esc(c->profile) : "-",
           c->origin ? cli_esc(c->origin) : "-", nb, na, rec);
    if (c->status == REG_REVOKED)
        printf("revoked:     %s (%s)\n", rev,
               c->reason >= 0 ? reg_reason_name(c->reason) : "unspecified");
    if (c->replaces)
        printf("replaces:    %s\n", s.replaces);
    if (c->revoke_after) {
        fmt_time(c->revoke_after, rev, sizeof(rev));
        printf("revoke at:   %s (superseded; grace period)\n", rev);
    }
    printf("history:\n");
    shown_clear(&s);
}

int cmd_cert_show(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"pem", no_argument, NULL, OPT_PEM},
        {"issuer", required_argument, NULL, OPT_ISSUER},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "show");
    const char *dir = NULL, *issuer = NULL;
    reg_cert rc_cert = {0};
    json_t *j = NULL, *hist = NULL;
    int64_t ca_id = 0;
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
        else if (o == OPT_ISSUER)
            issuer = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one serial number");
    rc = cli_open_ca_ro(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    if ((rc = issuer_id(c, issuer, &ca_id)) != P11CA_OK)
        goto out;
    rc = reg_get(ca_registry(c), ca_id, argv[optind], &rc_cert);
    if (rc != P11CA_OK) {
        rc = cli_error(rc, "%s", p11ca_err_message());
        goto out;
    }
    if (cli->json) {
        j = cert_json(&rc_cert);
        hist = json_array();
        rc = reg_history_list(ca_registry(c), rc_cert.ca_id, rc_cert.serial,
                              history_one, hist);
        json_object_set_new(j, "history", hist);
        rc = rc < 0 ? cli_error(rc, "%s", p11ca_err_message())
                    : cli_json_print(j);
        goto out;
    }
    print_cert_text(&rc_cert);
    rc = reg_history_list(ca_registry(c), rc_cert.ca_id, rc_cert.serial,
                          history_one, NULL);
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

/*
 * "SERIAL: activated", or "SERIAL: already activated" when nothing
 * changed (@to REG_STATUS_ANY: deleted); with --json an object saying
 * the same, with the certificate's CA.
 */
static int change_done(struct cli *cli, const reg_cert *c, reg_status to,
                       bool changed)
{
    char serial[REG_SERIAL_TEXT_MAX], reason[64] = "";

    reg_serial_text(c->serial, serial, sizeof(serial));
    if (to == REG_REVOKED)
        snprintf(reason, sizeof(reason), " (%s)",
                 reg_reason_name(c->reason >= 0 ? c->reason : 0));
    if (cli->json)
        return cli_json_print(
            json_pack("{s:s, s:o, s:s, s:b}", "serial", serial, "ca_id",
                      c->ca_id ? json_integer(c->ca_id) : json_null(), "status",
                      to == REG_STATUS_ANY ? "deleted" : reg_status_name(to),
                      "changed", changed));
    printf("%s: %s%s%s\n", serial, changed ? "" : "already ",
           to == REG_STATUS_ANY ? "deleted" : reg_status_name(to), reason);
    return P11CA_OK;
}

/*
 * Change the certificate (@ca_id, @serial) to @to (delete with @del).
 * Asked for what is already so, nothing is written (no audit entry: the
 * trail records changes only) and the answer says "already".  The change
 * addresses the certificate by the CA id it was found under, so that a
 * serial the issuer resolved once cannot name another one.
 */
static int change_one(struct cli *cli, ca *c, int64_t ca_id, const char *serial,
                      reg_status to, bool del, const char *why)
{
    reg_cert cur = {0};
    bool changed = false;
    int rc;

    if (del) {
        rc = reg_get(ca_registry(c), ca_id, serial, &cur);
        if (rc == P11CA_OK)
            rc = reg_delete(ca_registry(c), cur.ca_id, cur.serial, ca_actor(),
                            why);
        if (rc == P11CA_OK)
            rc = change_done(cli, &cur, REG_STATUS_ANY, true);
    } else {
        rc = reg_change_status(ca_registry(c), ca_id, serial, to, -1, 0,
                               ca_actor(), why, &cur, &changed);
        if (rc == P11CA_OK)
            rc = change_done(cli, &cur, changed ? to : cur.status, changed);
    }
    reg_cert_clear(&cur);
    return rc;
}

/* Common parsing of "cert activate|deactivate|delete SERIAL [--why T]". */
static int simple_change(struct cli *cli, int argc, char **argv,
                         const char *verb, reg_status to, bool del)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"why", required_argument, NULL, OPT_WHY},
        {"issuer", required_argument, NULL, OPT_ISSUER},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, verb);
    const char *dir = NULL, *why = NULL, *issuer = NULL;
    int64_t ca_id = 0;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_DIR)
            dir = optarg;
        else if (o == OPT_WHY)
            why = optarg;
        else if (o == OPT_ISSUER)
            issuer = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one serial number");
    rc = cli_open_ca(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    if ((rc = issuer_id(c, issuer, &ca_id)) != P11CA_OK)
        goto out;
    rc = change_one(cli, c, ca_id, argv[optind], to, del, why);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert %s: %s", verb, p11ca_err_message());
out:
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

/* Options of a bulk revocation. */
struct bulk_args {
    int reason;
    const char *why;
    bool yes;
    bool dry_run;
};

/* Ask at the terminal to revoke @n certificates: 1 when the answer is
 * "yes", 0 for another answer, -1 without a terminal to ask at. */
static int bulk_confirmed(size_t n, int reason)
{
    char answer[16] = "";

    if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
        return -1;
    fprintf(
        stderr,
        "p11ca: revoke %zu certificate(s) with reason %s? This is final. Type yes to go on: ",
        n, reg_reason_name(reason));
    fflush(stderr);
    if (!fgets(answer, sizeof(answer), stdin))
        return 0;
    answer[strcspn(answer, "\r\n")] = '\0';
    return strcmp(answer, "yes") == 0;
}

/* Revoke what @f matches, once confirmed (--yes, or at a terminal), as
 * one audited action that names every certificate; --dry-run lists them. */
static int revoke_bulk(struct cli *cli, const struct cli_cmd *me, ca *c,
                       reg_filter *f, const struct bulk_args *b)
{
    size_t n = 0, done = 0;
    int rc, yes;

    f->not_revoked = true;
    rc = reg_count(ca_registry(c), f, &n);
    if (rc != P11CA_OK)
        return cli_error(rc, "cert revoke: %s", p11ca_err_message());
    if (b->dry_run) {
        rc = list_print(c, f, cli->json ? LIST_JSON : LIST_TEXT);
        if (rc == P11CA_OK && !cli->json)
            printf(
                "would revoke %zu certificate(s) (--dry-run: nothing changed)\n",
                n);
        return rc;
    }
    if (n == 0)
        return cli_error(
            P11CA_E_NOTFOUND,
            "cert revoke: no certificate matched (revoked ones are left out)");
    yes = b->yes ? 1 : bulk_confirmed(n, b->reason);
    if (yes < 0)
        return cli_usage_error(
            me,
            "%zu certificate(s) match: nothing was revoked; add --yes to revoke them (--dry-run lists them)",
            n);
    if (!yes)
        return cli_error(P11CA_E_USAGE,
                         "cert revoke: not confirmed: nothing was revoked");
    rc = reg_revoke_bulk(ca_registry(c), f, b->reason, ca_actor(), b->why, n,
                         &done);
    if (rc != P11CA_OK)
        return cli_error(rc, "cert revoke: %s", p11ca_err_message());
    if (cli->json)
        return cli_json_print(json_pack("{s:I}", "revoked", (json_int_t)done));
    printf("revoked %zu certificate(s)\n", done);
    return P11CA_OK;
}

/*
 * Revoke one certificate: SERIAL, or a filter that is only --serial.
 * Revoking it again with the same reason is done already (exit 0,
 * "already revoked", nothing written); with another reason it is refused,
 * since revocation is final and its reason is the one recorded first.
 */
static int revoke_one(struct cli *cli, ca *c, int64_t ca_id, const char *serial,
                      const struct bulk_args *b, int64_t invalidity)
{
    reg_cert cur = {0};
    bool changed = false;
    int rc =
        reg_change_status(ca_registry(c), ca_id, serial, REG_REVOKED, b->reason,
                          invalidity, ca_actor(), b->why, &cur, &changed);

    if (rc == P11CA_OK)
        rc = change_done(cli, &cur, REG_REVOKED, changed);
    if (rc != P11CA_OK)
        rc = cli_error(rc, "cert revoke: %s", p11ca_err_message());
    reg_cert_clear(&cur);
    return rc;
}

static int revoke_opt(const struct cli_cmd *me, int o, struct bulk_args *b,
                      int64_t *invalidity)
{
    switch (o) {
    case OPT_WHY:
        b->why = optarg;
        return P11CA_OK;
    case OPT_YES:
        b->yes = true;
        return P11CA_OK;
    case OPT_DRY_RUN:
        b->dry_run = true;
        return P11CA_OK;
    case OPT_REASON:
        if (reg_reason_parse(optarg, &b->reason) != P11CA_OK)
            return cli_usage_error(
                me,
                "unknown reason \"%s\" (e.g. keyCompromise, superseded, cessationOfOperation)",
                optarg);
        return P11CA_OK;
    case OPT_INVALIDITY:
        if (cli_parse_time(optarg, invalidity) != 0)
            return cli_usage_error(me, "bad --invalidity date");
        return P11CA_OK;
    default:
        return cli_usage_error(me, "bad option");
    }
}

int cmd_cert_revoke(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, OPT_DIR},
        {"reason", required_argument, NULL, OPT_REASON},
        {"invalidity", required_argument, NULL, OPT_INVALIDITY},
        {"why", required_argument, NULL, OPT_WHY},
        {"yes", no_argument, NULL, OPT_YES},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        FILTER_OPTIONS,
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_cert_cmds, "revoke");
    struct bulk_args b = {0};
    struct filter_args fa = {0};
    const char *dir = NULL, *serial;
    int64_t invalidity = 0;
    unsigned criteria = 0;
    int o, rc;
    ca *c = NULL;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        rc = P11CA_OK;
        if (o == 'h')
            return cli_help(me);
        if (o == OPT_LIMIT)
            return cli_usage_error(
                me, "--limit is for listing: narrow the filters instead");
        if (o == OPT_DIR)
            dir = optarg;
        else if (o >= OPT_SERIAL && o <= OPT_LIMIT)
            rc = filter_opt(me, o, optarg, &fa);
        else
            rc = revoke_opt(me, o, &b, &invalidity);
        /* --issuer chooses among serials or is a filter of its own. */
        criteria += o >= OPT_SERIAL && o <= OPT_LIMIT && o != OPT_ISSUER;
        if (rc != P11CA_OK)
            return rc;
    }
    if (argc - optind > 1 || (argc - optind == 1 && criteria)
        || (argc - optind == 0 && !fa.any))
        return cli_usage_error(
            me,
            "give one serial number, or filters (--client-id, --ou, --profile, --issued-before, ...) for a bulk revocation");
    /* A filter of --serial alone (and --issuer) names one certificate. */
    serial = optind < argc                  ? argv[optind]
             : fa.f.serial && criteria == 1 ? fa.f.serial
                                            : NULL;
    if (serial && (b.yes || b.dry_run))
        return cli_usage_error(
            me,
            "--yes and --dry-run go with filters, not with one serial number");
    rc = cli_open_ca(dir, &c);
    if (rc == P11CA_OK)
        rc = filter_issuer(c, &fa);
    if (rc == P11CA_OK && serial)
        rc = revoke_one(cli, c, fa.f.ca_id, serial, &b, invalidity);
    else if (rc == P11CA_OK)
        rc = revoke_bulk(cli, me, c, &fa.f, &b);
    ca_close(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* audit                                                               */
/* ------------------------------------------------------------------ */

/* The entries whose object is a certificate's serial. */
static bool audit_on_cert(const reg_audit *a)
{
    static const char *const acts[] = {
        "issue",  "register", "activate",        "deactivate",
        "revoke", "delete",   "schedule-revoke",
    };

    for (size_t i = 0; a->action && i < sizeof(acts) / sizeof(acts[0]); i++)
        if (strcmp(a->action, acts[i]) == 0)
            return a->object != NULL;
    return false;
}

/* Text: a certificate's serial as openssl prints it; JSON: "object" as
 * recorded (it is hashed into the chain) and "serial" as printed. */
static int audit_one(const reg_audit *a, void *arg)
{
    char serial[REG_SERIAL_TEXT_MAX] = "";
    json_t *arr = arg;
    char at[32];

    if (audit_on_cert(a))
        reg_serial_text(a->object, serial, sizeof(serial));
    if (arr)
        return json_array_append_new(
                   arr,
                   json_pack("{s:I, s:o, s:s?, s:s?, s:s?, s:s?, s:s?, "
                             "s:s?}",
                             "seq", (json_int_t)a->seq, "at", json_time(a->at),
                             "actor", a->actor, "action", a->action, "object",
                             a->object, "serial", serial[0] ? serial : NULL,
                             "details", a->details, "hash", a->hash))
                   ? 1
                   : 0;
    fmt_time(a->at, at, sizeof(at));
    printf("%6lld  %s  %-18s %-12s %s%s%s\n", (long long)a->seq, at,
           a->actor ? cli_esc(a->actor) : "-",
           a->action ? cli_esc(a->action) : "-",
           serial[0] ? serial : cli_esc(a->object),
           a->details && *a->details ? "  " : "", cli_esc(a->details));
    return 0;
}

int cmd_audit_list(struct cli *cli, int argc, char **argv)
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
    rc = cli_open_ca_ro(dir, &c);
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
