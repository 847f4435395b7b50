/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca import-index|export-index: migration from and to an `openssl ca`
 * database (index.txt and its certificates directory). */
#include "config.h"

#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "ca/ca.h"

#define MAX_INDEX_FILE (512L * 1024 * 1024)
#define MAX_CERT_FILE  (1024 * 1024)

/* openssl ca's reason names (crypto/x509/v3_crld.c spelling). */
static const char *const index_reasons[] = {
    "unspecified",     "keyCompromise",
    "CACompromise",    "affiliationChanged",
    "superseded",      "cessationOfOperation",
    "certificateHold", NULL,
    "removeFromCRL",
};

/* "YYMMDDHHMMSSZ" or "YYYYMMDDHHMMSSZ" into Unix time. */
static int parse_asn1_time(const char *s, size_t n, int64_t *t)
{
    ASN1_TIME *at = ASN1_TIME_new();
    struct tm tm;
    char buf[20];
    int ok;

    if (!at || n >= sizeof(buf)) {
        ASN1_TIME_free(at);
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    ok = ASN1_TIME_set_string(at, buf) && ASN1_TIME_to_tm(at, &tm);
    ASN1_TIME_free(at);
    if (!ok)
        return -1;
    *t = (int64_t)timegm(&tm);
    return 0;
}

static void format_asn1_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    /* UTCTime (two-digit year) until 2049, as openssl ca writes it. */
    if (tm.tm_year < 150)
        snprintf(buf, len, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        strftime(buf, len, "%Y%m%d%H%M%SZ", &tm);
}

/* One line of index.txt, split in place into its six fields. */
struct index_line {
    char *f[6];
};

static int split_line(char *line, struct index_line *il)
{
    int n = 0;

    il->f[n++] = line;
    for (char *p = line; *p && n < 6; p++) {
        if (*p == '\t') {
            *p = '\0';
            il->f[n++] = p + 1;
        }
    }
    return n == 6 ? 0 : -1;
}

static int read_cert_der(const char *path, unsigned char **der, int *len)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    X509 *x = NULL;
    BIO *b;
    int rc;

    *der = NULL;
    rc = cli_read_file(path, MAX_CERT_FILE, &buf, &n);
    if (rc != P11CA_OK)
        return rc;
    b = BIO_new_mem_buf(buf, (int)n);
    if (b)
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    free(buf);
    if (!x)
        return cli_error(P11CA_E_INPUT, "%s: not a PEM certificate", path);
    *len = i2d_X509(x, der);
    X509_free(x);
    return *len > 0 ? P11CA_OK : cli_error(P11CA_E_INPUT, "%s: bad", path);
}

/* Lower-case hex without leading zeros, as the registry keeps serials. */
static void norm_serial(const char *in, char *out, size_t len)
{
    size_t o = 0;

    while (*in == '0' && in[1])
        in++;
    for (; *in && o + 1 < len; in++)
        out[o++] = (char)tolower((unsigned char)*in);
    out[o] = '\0';
}

struct import_state {
    ca *c;
    const char *certs_dir;
    reg_cert *certs;
    size_t n, cap;
    char **clients; /* client IDs made activated by this import */
    size_t n_clients;
};

static bool client_taken(struct import_state *st, const char *id)
{
    reg_filter f = {0};
    size_t n = 0;

    if (!id)
        return false;
    for (size_t i = 0; i < st->n_clients; i++)
        if (strcmp(st->clients[i], id) == 0)
            return true;
    f.client_id = id;
    f.status = REG_ACTIVATED;
    return reg_count(ca_registry(st->c), &f, &n) == P11CA_OK && n > 0;
}

/* Turn one index line into a registry entry of @st. */
static int import_line(struct import_state *st, struct index_line *il,
                       const char *where)
{
    char path[4096], serial[64];
    unsigned char *der = NULL;
    reg_cert *rc_cert;
    int len = 0, rc;

    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        reg_cert *g = realloc(st->certs, cap * sizeof(*g));
        char **cl;

        /* Each array is st's as soon as it moved: the caller frees it. */
        if (g)
            st->certs = g;
        cl = g ? realloc(st->clients, cap * sizeof(*cl)) : NULL;
        if (cl)
            st->clients = cl;
        if (!g || !cl)
            return cli_error(P11CA_E_NOMEM, "out of memory");
        st->cap = cap;
    }
    snprintf(path, sizeof(path), "%s/%s.pem", st->certs_dir, il->f[3]);
    rc = read_cert_der(path, &der, &len);
    if (rc != P11CA_OK)
        return cli_error(rc, "%s: certificate %s missing (%s)", where, il->f[3],
                         path);
    rc_cert = &st->certs[st->n];
    memset(rc_cert, 0, sizeof(*rc_cert));
    rc = reg_cert_from_der(rc_cert, der, (size_t)len);
    OPENSSL_free(der);
    norm_serial(il->f[3], serial, sizeof(serial));
    if (rc != P11CA_OK || strcmp(serial, rc_cert->serial) != 0) {
        reg_cert_clear(rc_cert);
        return cli_error(P11CA_E_INPUT, "%s: %s does not hold serial %s", where,
                         path, il->f[3]);
    }
    st->n++;
    rc_cert->ca_id = ca_registry_id(st->c);
    rc_cert->origin = strdup("issued");
    rc_cert->profile = strdup("openssl-ca");
    if (il->f[0][0] == 'R') {
        char *comma = strchr(il->f[2], ',');
        rc_cert->status = REG_REVOKED;
        rc_cert->reason = 0;
        if (parse_asn1_time(
                il->f[2], comma ? (size_t)(comma - il->f[2]) : strlen(il->f[2]),
                &rc_cert->revoked_at)
            != 0)
            return cli_error(P11CA_E_INPUT, "%s: bad revocation date", where);
        for (int i = 0; comma && i < 9; i++)
            if (index_reasons[i]
                && strcasecmp(comma + 1, index_reasons[i]) == 0)
                rc_cert->reason = i;
        return P11CA_OK;
    }
    /* One activated certificate per client ID; older duplicates wait. */
    rc_cert->reason = -1;
    if (client_taken(st, rc_cert->client_id)) {
        rc_cert->status = REG_NOT_ACTIVATED;
        fprintf(
            stderr,
            "p11ca: %s: client ID \"%s\" is taken; %s imported as not-activated\n",
            where, rc_cert->client_id, rc_cert->serial);
    } else {
        rc_cert->status = REG_ACTIVATED;
        if (rc_cert->client_id)
            st->clients[st->n_clients++] = rc_cert->client_id;
    }
    return P11CA_OK;
}

static int parse_index(struct import_state *st, char *text, const char *name)
{
    char where[256];
    int lineno = 0, rc;

    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        struct index_line il;
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", name, lineno);
        if (!*line)
            continue;
        if (split_line(line, &il) != 0 || !il.f[0][0]
            || !strchr("VRE", il.f[0][0]) || il.f[0][1])
            return cli_error(
                P11CA_E_INPUT,
                "%s: not an index.txt line (six tab-separated fields, status V, R or E)",
                where);
        rc = import_line(st, &il, where);
        if (rc != P11CA_OK)
            return rc;
    }
    return P11CA_OK;
}

static int cmd_import_index(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, 'd'},
        {"certs", required_argument, NULL, 'c'},
        {0},
    };
    const struct cli_cmd *me = &cli_index_cmds[0];
    struct import_state st = {0};
    const char *dir = NULL;
    char *certs_default = NULL, *copy = NULL, details[64];
    unsigned char *text = NULL;
    size_t len = 0, bad = 0;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == 'd')
            dir = optarg;
        else if (o == 'c')
            st.certs_dir = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give the index.txt file");
    if (!st.certs_dir) {
        copy = strdup(argv[optind]);
        if (!copy || asprintf(&certs_default, "%s/newcerts", dirname(copy)) < 0)
            certs_default = NULL;
        st.certs_dir = certs_default ? certs_default : "newcerts";
    }
    rc = cli_read_file(argv[optind], MAX_INDEX_FILE, &text, &len);
    if (rc == P11CA_OK)
        rc = cli_open_ca(dir, &st.c);
    if (rc == P11CA_OK)
        rc = parse_index(&st, (char *)text, argv[optind]);
    if (rc == P11CA_OK && st.n) {
        /* All or nothing: one transaction.  History brought in is no
         * issuance of today: no rate limit. */
        rc = reg_record_batch(ca_registry(st.c), st.certs, st.n, ca_actor(),
                              NULL, &bad);
        if (rc != P11CA_OK)
            rc = cli_error(
                rc, "import-index: %s (entry %zu, serial %s); nothing imported",
                p11ca_err_message(), bad + 1, st.certs[bad].serial);
    }
    if (rc == P11CA_OK) {
        snprintf(details, sizeof(details), "%zu certificates", st.n);
        if (reg_audit_add(ca_registry(st.c), ca_actor(), "import-index",
                          argv[optind], details)
            != P11CA_OK)
            rc = cli_error(P11CA_E_REGISTRY, "%s", p11ca_err_message());
        else
            printf("imported %zu certificate(s) from %s\n", st.n, argv[optind]);
    }
    for (size_t i = 0; i < st.n; i++)
        reg_cert_clear(&st.certs[i]);
    free(st.certs);
    free(st.clients);
    free(text);
    free(copy);
    free(certs_default);
    ca_close(st.c);
    return rc;
}

struct export_state {
    struct cli *cli;
    FILE *index; /* open_memstream: written out with cli_write_out */
    const char *certs_dir;
    int64_t now;
    int rc;
};

static int export_one(const reg_cert *c, void *arg)
{
    struct export_state *st = arg;
    const unsigned char *p = c->der;
    char exp[20], rev[40] = "", path[4096], serial[80], *subj = NULL, *pem;
    X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
    char status = c->status == REG_REVOKED ? 'R'
                  : c->not_after < st->now ? 'E'
                                           : 'V';
    BIO *b = BIO_new(BIO_s_mem());
    long len;

    /* openssl ca writes serials in upper case, an even number of digits. */
    reg_serial_text(c->serial, serial, sizeof(serial));
    if (!x || !b) {
        st->rc = cli_error(x ? P11CA_E_NOMEM : P11CA_E_REGISTRY, "%s: bad DER",
                           serial);
        X509_free(x);
        BIO_free(b);
        return 1;
    }
    format_asn1_time(c->not_after, exp, sizeof(exp));
    if (status == 'R') {
        format_asn1_time(c->revoked_at, rev, sizeof(rev));
        if (c->reason > 0 && c->reason < 9 && index_reasons[c->reason]) {
            strcat(rev, ",");
            strcat(rev, index_reasons[c->reason]);
        }
    }
    subj = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    fprintf(st->index, "%c\t%s\t%s\t%s\tunknown\t%s\n", status, exp, rev,
            serial, subj ? subj : "");
    snprintf(path, sizeof(path), "%s/%s.pem", st->certs_dir, serial);
    if (!PEM_write_bio_X509(b, x) || (len = BIO_get_mem_data(b, &pem)) < 0)
        st->rc = cli_error(P11CA_E_NOMEM, "out of memory");
    else
        st->rc = cli_write_out(st->cli, path, 0644, pem, (size_t)len);
    OPENSSL_free(subj);
    X509_free(x);
    BIO_free(b);
    return st->rc != P11CA_OK;
}

/* mkdir -p */
static int mkdir_p(const char *path)
{
    char buf[4096];

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int cmd_export_index(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, 'd'},
        {"certs", required_argument, NULL, 'c'},
        {0},
    };
    const struct cli_cmd *me = &cli_index_cmds[1];
    struct export_state st = {0};
    static const char attr_text[] = "unique_subject = no\n";
    reg_filter f = {0};
    char attr[4096], *text = NULL;
    size_t len = 0;
    const char *dir = NULL;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        if (o == 'd')
            dir = optarg;
        else if (o == 'c')
            st.certs_dir = optarg;
        else
            return cli_usage_error(me, "bad option");
    }
    if (argc - optind != 1 || !st.certs_dir)
        return cli_usage_error(me,
                               "give --certs DIR and the index.txt to write");
    if (mkdir_p(st.certs_dir) != 0)
        return cli_error(P11CA_E_IO, "cannot create %s: %s", st.certs_dir,
                         strerror(errno));
    rc = cli_open_ca_ro(dir, &c);
    if (rc != P11CA_OK)
        return rc;
    st.cli = cli;
    st.index = open_memstream(&text, &len);
    if (!st.index) {
        rc = cli_error(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    st.now = (int64_t)time(NULL);
    /* An openssl ca database is one CA's: registered certificates of other
     * CAs (which may reuse its serials) stay out. */
    f.ca_id = ca_registry_id(c);
    rc = reg_search(ca_registry(c), &f, export_one, &st);
    if (rc < 0)
        rc = cli_error(rc, "%s", p11ca_err_message());
    else
        rc = st.rc;
    if (fclose(st.index) != 0 && rc == P11CA_OK)
        rc = cli_error(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = cli_write_out(cli, argv[optind], 0644, text, len);
    snprintf(attr, sizeof(attr), "%s.attr", argv[optind]);
    if (rc == P11CA_OK)
        rc = cli_write_out(cli, attr, 0644, attr_text, strlen(attr_text));
    if (rc == P11CA_OK)
        printf("wrote %s and the certificates in %s\n", argv[optind],
               st.certs_dir);
out:
    free(text);
    ca_close(c);
    return rc;
}

const struct cli_cmd cli_index_cmds[] = {
    {"import-index", NULL, "[--dir DIR] [--certs CERTDIR] INDEX",
     "Load an `openssl ca` database (index.txt and its certificates, "
     "CERTDIR/SERIAL.pem, default: newcerts next to INDEX) into the "
     "registry, all or nothing.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--certs CERTDIR\twhere the certificates are",
     cmd_import_index},
    {"export-index", NULL, "[--dir DIR] --certs CERTDIR INDEX",
     "Write the registry as an `openssl ca` database: INDEX (and "
     "INDEX.attr) and CERTDIR/SERIAL.pem, so that existing scripts keep "
     "working.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--certs CERTDIR\twhere to write the certificates",
     cmd_export_index},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
