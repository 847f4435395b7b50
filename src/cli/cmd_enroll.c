/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca enroll: options, the user's token and its PIN, the report; the
 * flow itself (enroll, resume, cleanup, renew, re-key) is enroll_run of
 * src/ca/enroll_flow.c, which the service calls too. */
#include "config.h"

#include "cmd_enroll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ca/enroll_remote.h"

enum {
    OPT_TOKEN = 1,
    OPT_PROFILE,
    OPT_SUBJECT,
    OPT_CLIENT_ID,
    OPT_TYPE,
    OPT_LABEL,
    OPT_CA,
    OPT_DAYS,
    OPT_WITH_CHAIN,
    OPT_RESUME,
    OPT_CLEANUP,
    OPT_RENEW,
    OPT_REKEY,
    OPT_REMOVE_OLD,
    OPT_CA_PIN_SOURCE,
    OPT_CA_MODULE,
    OPT_WAIT,
    OPT_SERVER,
    OPT_CODE,
    OPT_CODE_FILE,
    OPT_CACERT,
};

/* The options of one run. */
struct enr_args {
    const char *token;
    const char *profile;
    const char *subject;
    const char *client_id;
    const char *type;
    const char *label;
    const char *dir;
    const char *ca_pin_source;
    const char *ca_module;
    const char *server; /* --server URL: the registry service issues */
    const char *code;   /* --code: code_copy (enr_hide_code) */
    char *code_copy;    /* secure heap; the argv text is overwritten */
    size_t code_copy_size;
    const char *code_file; /* --code-file */
    const char *cacert;    /* --cacert: the service's CA bundle */
    unsigned days;
    unsigned wait; /* --wait: seconds for a slot under a rate limit */
    bool with_chain;
    bool resume;
    bool cleanup;
    bool renew;
    bool rekey;
    bool remove_old;
};

/* One run of p11ca enroll: the token, its PIN, the issuer, the outcome. */
struct enr {
    struct cli *cli;
    struct enr_args a;
    enroll_issuer *is;
    p11_uri *turi;
    p11_token *tok;
    p11_auth auth;
    char *pin; /* a PIN typed at the prompt (secure heap), for the provider */
    int pin_len;
    enroll_result r;
};

static int enr_opt(const struct cli_cmd *me, int o, struct enr_args *a);
static int enr_args_check(const struct cli_cmd *me, struct enr_args *a);
static int enr_prompt(const char *what, bool ctx_specific, char *pin,
                      size_t max, void *arg);
static int enr_open_token(struct enr *e);
static int enr_store_pin(char *pin, size_t max, void *arg);
static void enr_note(int rc, const char *msg, void *arg);
static void enr_report(struct enr *e);
static void enr_free(struct enr *e);

/*
 * --code: the code is copied to the secure heap and its text in argv
 * overwritten, so that ps and /proc/PID/cmdline show "(hidden)" once the
 * options are read (the short time before that is why --code-file is
 * recommended); as registry migrate does for passwords.
 */
static int enr_hide_code(struct enr_args *a, char *arg)
{
    size_t len = strlen(arg);

    OPENSSL_secure_clear_free(a->code_copy, a->code_copy_size);
    a->code = a->code_copy = NULL;
    a->code_copy_size = 0;
    if (!(a->code_copy = OPENSSL_secure_malloc(len + 1)))
        return cli_error(P11CA_E_NOMEM, "out of memory");
    a->code_copy_size = len + 1;
    memcpy(a->code_copy, arg, len + 1);
    a->code = a->code_copy;
    OPENSSL_cleanse(arg, len);
    snprintf(arg, len + 1, "%s", "(hidden)");
    return P11CA_OK;
}

static void enr_args_clear(struct enr_args *a)
{
    OPENSSL_secure_clear_free(a->code_copy, a->code_copy_size);
    a->code = a->code_copy = NULL;
    a->code_copy_size = 0;
}

static int enr_opt(const struct cli_cmd *me, int o, struct enr_args *a)
{
    char *end = NULL;
    unsigned long n;

    switch (o) {
    case OPT_TOKEN:
        a->token = optarg;
        break;
    case OPT_PROFILE:
        a->profile = optarg;
        break;
    case OPT_SUBJECT:
        a->subject = optarg;
        break;
    case OPT_CLIENT_ID:
        a->client_id = optarg;
        break;
    case OPT_TYPE:
        a->type = optarg;
        break;
    case OPT_LABEL:
        a->label = optarg;
        break;
    case OPT_CA:
        a->dir = optarg;
        break;
    case OPT_WITH_CHAIN:
        a->with_chain = true;
        break;
    case OPT_RESUME:
        a->resume = true;
        break;
    case OPT_CLEANUP:
        a->cleanup = true;
        break;
    case OPT_RENEW:
        a->renew = true;
        break;
    case OPT_REKEY:
        a->rekey = true;
        break;
    case OPT_REMOVE_OLD:
        a->remove_old = true;
        break;
    case OPT_CA_PIN_SOURCE:
        a->ca_pin_source = optarg;
        break;
    case OPT_CA_MODULE:
        a->ca_module = optarg;
        break;
    case OPT_SERVER:
        a->server = optarg;
        break;
    case OPT_CODE:
        return enr_hide_code(a, optarg);
    case OPT_CODE_FILE:
        a->code_file = optarg;
        break;
    case OPT_CACERT:
        a->cacert = optarg;
        break;
    case OPT_WAIT:
        return cli_parse_wait(me, optarg, &a->wait);
    case OPT_DAYS:
        n = strtoul(optarg, &end, 10);
        if (!*optarg || *end || optarg[0] == '-' || n == 0 || n > 36500)
            return cli_usage_error(me, "--days: a number from 1 to 36500");
        a->days = (unsigned)n;
        break;
    default:
        return cli_usage_error(me, "bad option");
    }
    return P11CA_OK;
}

/* --server: what goes with it and what does not. */
static int enr_args_server(const struct cli_cmd *me, const struct enr_args *a)
{
    bool renewal = a->renew || a->rekey;

    if (a->dir || a->ca_pin_source || a->ca_module)
        return cli_usage_error(
            me,
            "--server and --ca exclude each other: the service at --server issues, not a CA directory (no --ca, --ca-pin-source or --ca-module)");
    if (!a->token)
        return cli_usage_error(me, "give --token URI");
    if (a->code && a->code_file)
        return cli_usage_error(me, "--code and --code-file exclude each other");
    if (!renewal && !a->code && !a->code_file)
        return cli_usage_error(
            me,
            "--server: give --code-file FILE (or --code) with the enrollment code from the operator, or --renew / --rekey");
    if (renewal && (a->code || a->code_file))
        return cli_usage_error(
            me,
            "--renew and --rekey authenticate with the card's certificate: no --code");
    if (a->resume)
        return cli_usage_error(
            me,
            "--resume is not supported with --server: the service has no look-up of the certificate issued for a key; use --cleanup");
    if (a->days)
        return cli_usage_error(
            me, "--days is not supported with --server: the profile decides");
    return P11CA_OK;
}

static int enr_args_check(const struct cli_cmd *me, struct enr_args *a)
{
    if ((a->code || a->code_file || a->cacert) && !a->server)
        return cli_usage_error(
            me, "--code, --code-file and --cacert go with --server");
    if (a->server && enr_args_server(me, a) != P11CA_OK)
        return P11CA_E_USAGE;
    if (!a->server)
        a->dir = cli_ca_dir(a->dir);
    if (!a->token || (!a->dir && !a->server))
        return cli_usage_error(me, "give --token URI and --ca DIR");
    if (a->resume && a->cleanup)
        return cli_usage_error(me, "--resume and --cleanup exclude each other");
    if (a->renew && a->rekey)
        return cli_usage_error(me, "--renew and --rekey exclude each other");
    if (a->renew && (a->resume || a->cleanup || a->type))
        return cli_usage_error(
            me, "--renew keeps the key: no --type, --resume or --cleanup");
    if (a->remove_old && !a->rekey)
        return cli_usage_error(me, "--remove-old goes with --rekey");
    if (!a->renew && !a->rekey && !a->profile && !a->server)
        return cli_usage_error(me, "give --profile NAME (e.g. client)");
    if (a->label && (!*a->label || strlen(a->label) > P11_MAX_LABEL_LEN - 16))
        return cli_usage_error(me, "--label: 1 to %d bytes",
                               P11_MAX_LABEL_LEN - 16);
    if (a->client_id && !*a->client_id)
        return cli_usage_error(me, "--client-id is empty");
    return P11CA_OK;
}

/*
 * The PIN prompt of the p11 layer.  The PIN typed is kept (secure heap)
 * for the provider, which logs in on its own and asks again; the p11
 * layer never replays it to C_Login once refused.
 */
static int enr_prompt(const char *what, bool ctx_specific, char *pin,
                      size_t max, void *arg)
{
    struct enr *e = arg;
    int n = cli_pin_prompt(what, ctx_specific, pin, max, NULL);

    if (n >= 0 && e->pin && n <= P11_MAX_PIN_LEN) {
        memcpy(e->pin, pin, (size_t)n);
        e->pin_len = n;
    }
    return n;
}

/* The PIN for the provider's login while it signs the CSR
 * (enroll_pin_fn): the URI's, the PIN file, the one typed, or a prompt. */
static int enr_store_pin(char *pin, size_t max, void *arg)
{
    struct enr *e = arg;
    const char *src =
        e->auth.pin_source ? e->auth.pin_source : e->cli->pin_source;
    size_t n;

    if (e->auth.pin_value) {
        n = strlen(e->auth.pin_value);
        if (n > max)
            return -1;
        memcpy(pin, e->auth.pin_value, n);
        return (int)n;
    }
    if (src)
        return p11_pin_read_file(src, pin, max);
    if (e->pin_len >= 0 && (size_t)e->pin_len <= max) {
        memcpy(pin, e->pin, (size_t)e->pin_len);
        return e->pin_len;
    }
    return enr_prompt(p11_token_describe(e->tok), false, pin, max, e);
}

/* The user's token, logged in: a wrong PIN stops everything here. */
static int enr_open_token(struct enr *e)
{
    int rc = cli_parse_uri(e->a.token, &e->turi);
    CK_RV rv;

    if (rc != P11CA_OK)
        return rc;
    if (!cli_p11(e->cli))
        return P11CA_E_NOMEM;
    p11_auth_from_uri(&e->auth, e->turi);
    e->auth.prompt = enr_prompt;
    e->auth.prompt_arg = e;
    rv = p11_token_find_one(e->cli->p11, e->turi, &e->tok);
    if (rv != CKR_OK)
        return cli_fail(rv, "enroll: the user's token");
    rv = p11_token_login(e->tok, &e->auth);
    if (rv != CKR_OK)
        return cli_fail(rv, "enroll: logging in to the user's token");
    return P11CA_OK;
}

char *enr_subject(X509 *x)
{
    return cli_name_show(X509_get_subject_name(x));
}

/* The flow's notices and earlier errors, on stderr as before the move. */
static void enr_note(int rc, const char *msg, void *arg)
{
    (void)arg;
    if (rc != P11CA_OK)
        cli_error(rc, "%s", msg);
    else
        fprintf(stderr, "p11ca: %s\n", msg);
}

static json_t *report_json(struct enr *e, const char *id, const char *subj,
                           const char *key_uri, const char *cert_uri,
                           const char *until, const char *kdesc)
{
    const enroll_result *r = &e->r;
    char old[REG_SERIAL_TEXT_MAX];

    reg_serial_text(r->old_serial, old, sizeof(old));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, "
                     "s:s?, s:s?, s:b, s:i, s:s}",
                     "action", r->action, "token", p11_token_label(e->tok),
                     "label", r->label, "id", id ? id : "", "key", kdesc,
                     "serial", r->serial, "subject", subj ? subj : "",
                     "client_id", r->client_id, "profile", r->profile,
                     "replaces", r->old_serial[0] ? old : NULL, "key_uri",
                     key_uri, "cert_uri", cert_uri, "reused", r->reused,
                     "chain_written", r->chain_written, "not_after", until);
}

static void enr_report(struct enr *e)
{
    const enroll_result *r = &e->r;
    size_t id_len = 0;
    const unsigned char *idb = p11_obj_id(r->key, &id_len);
    char *id = cli_hex(idb, id_len), *subj = enr_subject(r->cert);
    char *key_uri = p11_obj_uri(r->key);
    char *cert_uri = r->cert_obj ? p11_obj_uri(r->cert_obj) : NULL;
    char until[64], kdesc[64];

    enroll_time(X509_get0_notAfter(r->cert), until, sizeof(until));
    enroll_key_desc(r->key, kdesc, sizeof(kdesc));
    if (e->cli->json) {
        (void)cli_json_print(
            report_json(e, id, subj, key_uri, cert_uri, until, kdesc));
    } else {
        printf(
            "%s \"%s\" on %s: %s key (id %s), certificate %s for %s (client ID %s, profile %s) valid until %s, from %s\n",
            r->action, cli_esc(r->label), cli_esc(p11_token_describe(e->tok)),
            kdesc, id ? id : "", r->serial, cli_esc(subj),
            cli_esc(r->client_id), cli_esc(r->profile), until,
            cli_esc(enroll_issuer_name(e->is)));
        if (r->old_serial[0]) {
            char old[REG_SERIAL_TEXT_MAX];
            reg_serial_text(r->old_serial, old, sizeof(old));
            printf("  replaces:    %s\n", old);
        }
        if (r->reused)
            printf(
                "  (issued before the enrollment was interrupted: no new certificate)\n");
        printf("  key:         %s\n  certificate: %s\n", cli_esc(key_uri),
               cli_esc(cert_uri));
        if (e->a.with_chain)
            printf("  CA certificates written: %d\n", r->chain_written);
    }
    free(id);
    free(subj);
    free(key_uri);
    free(cert_uri);
}

static void enr_free(struct enr *e)
{
    enroll_result_clear(&e->r);
    enroll_issuer_free(e->is);
    p11_uri_free(e->turi);
    OPENSSL_secure_clear_free(e->pin, P11_MAX_PIN_LEN + 1);
    enr_args_clear(&e->a);
}

/*
 * The enrollment code: --code, or the first line of --code-file (a regular
 * file or a pipe that only its owner may read, as a PIN file), into @buf
 * (at least ENROLL_REMOTE_MAX_CODE_LEN + 1 bytes).  The code is never
 * shown.
 */
static int enr_read_code(const struct enr_args *a, char *buf)
{
    size_t max = ENROLL_REMOTE_MAX_CODE_LEN, n = 0;
    struct stat st;
    ssize_t r = 1;
    int fd;

    if (a->code) {
        n = strlen(a->code);
        if (n > max)
            return cli_usage_error(&cli_enroll_cmds[0],
                                   "--code: at most %zu bytes", max);
        memcpy(buf, a->code, n);
    } else {
        fd = open(a->code_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            return cli_error(P11CA_E_INPUT, "--code-file %s: %s", a->code_file,
                             strerror(errno));
        if (fstat(fd, &st) != 0
            || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))
            || (st.st_mode & (S_IRWXG | S_IRWXO))) {
            close(fd);
            return cli_error(
                P11CA_E_INPUT,
                "--code-file %s: not a regular file or pipe, or group or others may read it (chmod 600 %s)",
                a->code_file, a->code_file);
        }
        /* One byte at a time up to the first newline: the rest is not
         * read, and nothing beyond the bound is buffered. */
        while (n <= max && (r = read(fd, buf + n, 1)) == 1 && buf[n] != '\n')
            n++;
        close(fd);
        if (r < 0)
            return cli_error(P11CA_E_INPUT, "--code-file %s: %s", a->code_file,
                             strerror(errno));
        if (n > max) {
            OPENSSL_cleanse(buf, max + 1);
            return cli_error(
                P11CA_E_INPUT,
                "--code-file %s: the code is longer than %zu bytes",
                a->code_file, max);
        }
        if (n && buf[n - 1] == '\r')
            n--;
    }
    buf[n] = '\0';
    if (!n)
        return cli_error(P11CA_E_INPUT, "the enrollment code is empty");
    return P11CA_OK;
}

/* The label enroll_run will use: --label, object= of the URI, the client
 * ID, the CN of --subject (as names() in enroll_flow.c). */
static void enr_label(const struct enr *e, const enroll_opts *o, char *buf,
                      size_t len)
{
    X509_NAME *n = NULL;

    buf[0] = '\0';
    if (o->label)
        snprintf(buf, len, "%s", o->label);
    else if (o->client_id)
        snprintf(buf, len, "%s", o->client_id);
    else if (o->subject && enroll_name_parse(o->subject, &n) == P11CA_OK)
        X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int)len);
    X509_NAME_free(n);
    p11ca_err_clear();
    (void)e;
}

/*
 * The issuer at --server.  A renewal authenticates with the card's current
 * certificate (the newest of the key labelled as enroll_run will look for)
 * and its key, which signs the handshake on the card; when the label holds
 * no such pair, enroll_run says so.
 */
static int enr_remote(struct enr *e, const enroll_opts *o)
{
    const struct enr_args *a = &e->a;
    enroll_remote_conf c = {
        .url = a->server,
        .cacert = a->cacert,
        .profile = a->profile,
        .client_id = a->client_id,
        .cleanup = a->cleanup,
        .module = e->cli->module,
        .single_session = e->cli->single_session,
        .pin = enr_store_pin,
        .pin_arg = e,
    };
    char label[P11_MAX_LABEL_LEN + 1], *code = NULL, *uri = NULL;
    enroll_pair p = {0};
    int i, rc = P11CA_OK;

    if (o->mode == ENROLL_NEW) {
        code = OPENSSL_secure_zalloc(ENROLL_REMOTE_MAX_CODE_LEN + 1);
        rc = code ? enr_read_code(a, code)
                  : cli_error(P11CA_E_NOMEM, "out of memory");
        c.code = code;
    } else {
        enr_label(e, o, label, sizeof(label));
        if (label[0]
            && enroll_pair_load(e->cli->p11, e->tok, label, &p) == CKR_OK
            && p.priv && (i = enroll_pair_newest(&p)) >= 0) {
            uri = p11_obj_uri(p.priv);
            c.key_uri = uri;
            c.cert = p.x509[i];
        }
        p11_error_clear();
    }
    if (rc == P11CA_OK && a->cleanup)
        fprintf(
            stderr,
            "p11ca: note: with --server, --cleanup deletes what an earlier run left on the card, but cannot revoke a certificate the service may have issued for it: an operator can (p11ca cert list --client-id ID)\n");
    if (rc == P11CA_OK && (rc = enroll_issuer_remote(&c, &e->is)) != P11CA_OK)
        rc = rc == P11CA_E_USAGE
                 ? cli_usage_error(&cli_enroll_cmds[0], "%s",
                                   p11ca_err_message())
                 : cli_error(rc, "enroll: %s", p11ca_err_message());
    if (code)
        OPENSSL_secure_clear_free(code, ENROLL_REMOTE_MAX_CODE_LEN + 1);
    free(uri);
    enroll_pair_clear(&p);
    return rc;
}

/*
 * After a failed enrollment or re-key with --server: the key made for it,
 * when the service surely issued nothing for it (an error answer, or the
 * request never sent), is deleted, so that nothing is left on the card.
 */
static void enr_discard(struct enr *e, const enroll_opts *o)
{
    char label[P11_MAX_LABEL_LEN + 1], hex[65];
    enroll_pair p = {0};
    EVP_PKEY *pk = NULL;

    if (!e->a.server || o->mode == ENROLL_RENEW || !e->is)
        return;
    enr_label(e, o, label, sizeof(label) - 8);
    if (o->mode == ENROLL_REKEY)
        strcat(label, ".rekey");
    if (label[0] && enroll_pair_load(e->cli->p11, e->tok, label, &p) == CKR_OK
        && p.priv && !p.n
        && p11_obj_public_key(p.priv, NULL, NULL, &pk) == CKR_OK
        && enroll_spki_sha256(pk, hex) == P11CA_OK
        && enroll_remote_refused(e->is, hex)) {
        if (enroll_pair_destroy(&p, &e->auth, NULL, true) == CKR_OK)
            fprintf(
                stderr,
                "p11ca: deleted key \"%s\" again: the service issued no certificate for it\n",
                cli_esc(label));
        else
            cli_error(P11CA_E_TOKEN, "enroll: deleting key \"%s\": %s",
                      cli_esc(label), p11_error_message());
    }
    p11_error_clear();
    p11ca_err_clear();
    EVP_PKEY_free(pk);
    enroll_pair_clear(&p);
}

static int enr_run(struct enr *e)
{
    const struct enr_args *a = &e->a;
    enroll_opts o = {
        .mode = a->renew   ? ENROLL_RENEW
                : a->rekey ? ENROLL_REKEY
                           : ENROLL_NEW,
        .profile = a->profile,
        .subject = a->subject,
        .client_id = a->client_id,
        .key_type = a->type,
        .label = a->label,
        .days = a->days,
        .wait = a->wait,
        .with_chain = a->with_chain,
        .resume = a->resume,
        .cleanup = a->cleanup,
        .remove_old = a->remove_old,
    };
    enroll_env env = {
        .auth = &e->auth,
        .module = e->cli->module,
        .single_session = e->cli->single_session,
        .pin = enr_store_pin,
        .pin_arg = e,
        .note = enr_note,
    };
    int rc;

    /* A local CA is opened first: its errors come before the token's. */
    if (!a->server) {
        rc = enroll_issuer_local(a->dir,
                                 a->ca_module ? a->ca_module : e->cli->module,
                                 a->ca_pin_source, &e->is);
        if (rc != P11CA_OK)
            return cli_error(rc, "enroll: %s", p11ca_err_message());
    }
    rc = enr_open_token(e);
    if (rc != P11CA_OK)
        return rc;
    /* The label: --label, else object= of the URI, else the client ID. */
    if (!o.label)
        o.label = p11_uri_get0_label(e->turi);
    /* The code decides the profile; the report says so. */
    if (a->server && !o.profile && o.mode == ENROLL_NEW)
        o.profile = "(set by the code)";
    if (a->server && (rc = enr_remote(e, &o)) != P11CA_OK)
        return rc;
    env.p11 = e->cli->p11;
    env.tok = e->tok;
    env.is = e->is;
    rc = enroll_run(&env, &o, &e->r);
    if (rc != P11CA_OK) {
        /* The message first: enr_discard may overwrite it. */
        rc = rc == P11CA_E_USAGE ? cli_usage_error(&cli_enroll_cmds[0], "%s",
                                                   p11ca_err_message())
                                 : cli_error(rc, "%s", p11ca_err_message());
        enr_discard(e, &o);
        return rc;
    }
    enr_report(e);
    return P11CA_OK;
}

static int cmd_enroll(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"token", required_argument, NULL, OPT_TOKEN},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"client-id", required_argument, NULL, OPT_CLIENT_ID},
        {"type", required_argument, NULL, OPT_TYPE},
        {"label", required_argument, NULL, OPT_LABEL},
        {"ca", required_argument, NULL, OPT_CA},
        {"dir", required_argument, NULL, OPT_CA},
        {"days", required_argument, NULL, OPT_DAYS},
        {"with-chain", no_argument, NULL, OPT_WITH_CHAIN},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"cleanup", no_argument, NULL, OPT_CLEANUP},
        {"renew", no_argument, NULL, OPT_RENEW},
        {"rekey", no_argument, NULL, OPT_REKEY},
        {"remove-old", no_argument, NULL, OPT_REMOVE_OLD},
        {"ca-pin-source", required_argument, NULL, OPT_CA_PIN_SOURCE},
        {"ca-module", required_argument, NULL, OPT_CA_MODULE},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"server", required_argument, NULL, OPT_SERVER},
        {"code", required_argument, NULL, OPT_CODE},
        {"code-file", required_argument, NULL, OPT_CODE_FILE},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {0},
    };
    const struct cli_cmd *me = &cli_enroll_cmds[0];
    struct enr e = {.cli = cli, .pin_len = -1, .a.wait = CA_WAIT_DEFAULT};
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        rc = o == 'h' ? cli_help(me) : enr_opt(me, o, &e.a);
        if (o == 'h' || rc != P11CA_OK) {
            enr_args_clear(&e.a);
            return rc;
        }
    }
    if (optind < argc)
        rc = cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    else
        rc = enr_args_check(me, &e.a);
    if (rc != P11CA_OK) {
        enr_args_clear(&e.a);
        return rc;
    }
    e.pin = OPENSSL_secure_zalloc(P11_MAX_PIN_LEN + 1);
    rc = e.pin ? enr_run(&e) : cli_error(P11CA_E_NOMEM, "out of memory");
    enr_free(&e);
    return rc;
}

const struct cli_cmd cli_enroll_cmds[] = {
    {"enroll", NULL,
     "--token URI --ca DIR --profile NAME [--subject /CN=..] [--client-id ID] "
     "[--type TYPE] [--label LABEL] [--days N] [--with-chain] [--resume | "
     "--cleanup] [--renew | --rekey [--remove-old]] [--wait SECONDS] | "
     "--token URI --server https://HOST[:PORT] (--code-file FILE | --renew | "
     "--rekey) [--cacert FILE] [--client-id ID] ...",
     "Enroll a smartcard or token: generate the key pair ON the token "
     "(sensitive, never extractable), sign a CSR with it through the p11ca "
     "provider, have the CA in DIR check, sign and record the certificate, "
     "verify that it carries the token's public key, and write it to the "
     "token with the key's CKA_ID and label (what OpenSSL, GnuTLS and NSS "
     "look for). An enrollment that did not finish (a key labelled LABEL "
     "without a certificate) is reported and refused (exit 2) until it is "
     "finished with --resume or removed with --cleanup. --renew gets a new "
     "certificate for the same key; --rekey a new key and certificate. "
     "Both link the new certificate to the old one in the registry, write "
     "the new one before removing the old and move the client ID to it; "
     "then the old certificate is revoked (reason superseded), or kept for "
     "a grace period or for good, as the profile's supersede key says. "
     "Before a key is made, the CA side is checked: the CA key loads with "
     "its PIN, the profile exists and allows the subject, client ID, key "
     "type and validity. After a lost card, revoke its certificate (p11ca "
     "cert revoke --client-id ID --yes) and enroll a new card. An enrollment "
     "by the operator is issuance, not a sign-up: the sign-up limit of "
     "ca.cnf does not hold it, the profile's rate_limit (if set) does, with "
     "--wait as for p11ca issue. With --server instead of --ca, the registry "
     "service (p11ca serve) issues: a first enrollment is authenticated by "
     "a one-time code from an operator (POST /v1/enroll; the code decides "
     "the profile and the client ID), --renew and --rekey by the card's "
     "current certificate over mTLS, its key signing the handshake on the "
     "card (POST /v1/renew: the new certificate waits not-activated, the "
     "old one keeps working; once the new one is on the card, one "
     "connection with it makes the service supersede the old one, so a "
     "renewal cut short locks no card out). "
     "The service's certificate is checked against --cacert (default: the "
     "system's CA store) and the host name or address of the URL; the "
     "service is asked before a key is made, and a key made for a request "
     "the service refused is deleted again. --resume and --days are not "
     "available with --server.",
     "--token URI\tthe user's token (pkcs11:token=..); pin-source= in it, "
     "--pin-source or a prompt gives its PIN\n"
     "--ca DIR\tthe CA directory (default $P11CA_CA_DIR; --dir too)\n"
     "--profile NAME\tthe CA's profile (client); renewals default to the "
     "old certificate's\n"
     "--subject /CN=..\tthe subject (default: one CN holding the client "
     "ID as it is, '/', '=' and ',' included, at most 64 characters; "
     "renewals: the old certificate's)\n"
     "--client-id ID\tthe registry's client ID (default: the CN); at most 255 bytes, a longer one is refused\n"
     "--type TYPE\tec:P-256, rsa:2048, ed25519, ... (default: the first "
     "key_types entry of the profile, else ec:P-256)\n"
     "--label LABEL\tlabel of the key and certificate (default: object= of "
     "the URI, else the client ID)\n"
     "--days N\tvalidity (default: the profile's default_days)\n"
     "--with-chain\talso write the CA certificates (CKA_CERTIFICATE_CATEGORY "
     "authority), unless the token has them\n"
     "--resume\tfinish an enrollment that stopped after the key was made: "
     "the certificate the CA issued for that key, else a new one\n"
     "--cleanup\tdelete the key of an unfinished enrollment (revoking what "
     "was issued for it) and enroll afresh\n"
     "--renew\ta new certificate for the enrolled key\n"
     "--rekey\ta new key and certificate; the old objects stay on the token "
     "(relabelled LABEL.old-SERIAL) unless --remove-old\n"
     "--remove-old\twith --rekey: delete the old key and certificate once "
     "the new certificate is on the token\n"
     "--ca-pin-source FILE\tthe PIN of the CA key (default: pin_source of "
     "ca.cnf)\n"
     "--ca-module PATH\tPKCS#11 module of the CA key (default: "
     "--module)\n" CLI_WAIT_HELP "\n"
     "--server URL\thttps://HOST[:PORT] of p11ca serve: it issues instead "
     "of a CA directory (excludes --ca)\n"
     "--code-file FILE\tthe one-time enrollment code, first line of FILE "
     "(mode 600, or a pipe); never shown\n"
     "--code CODE\tthe code on the command line (other users may see it "
     "in ps until it is read and hidden: prefer --code-file)\n"
     "--cacert FILE\tPEM bundle of the CAs that may issue the service's "
     "TLS certificate (default: the system's store)\n",
     cmd_enroll},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
