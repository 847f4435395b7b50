/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca enroll: options, the user's token and its PIN, the report; the
 * flow itself (enroll, resume, cleanup, renew, re-key) is enroll_run of
 * src/ca/enroll_flow.c, which the service calls too. */
#include "config.h"

#include "cmd_enroll.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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

static int enr_args_check(const struct cli_cmd *me, struct enr_args *a)
{
    a->dir = cli_ca_dir(a->dir);
    if (!a->token || !a->dir)
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
    if (!a->renew && !a->rekey && !a->profile)
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

    rc = enroll_issuer_local(a->dir,
                             a->ca_module ? a->ca_module : e->cli->module,
                             a->ca_pin_source, &e->is);
    if (rc != P11CA_OK)
        return cli_error(rc, "enroll: %s", p11ca_err_message());
    rc = enr_open_token(e);
    if (rc != P11CA_OK)
        return rc;
    /* The label: --label, else object= of the URI, else the client ID. */
    if (!o.label)
        o.label = p11_uri_get0_label(e->turi);
    env.p11 = e->cli->p11;
    env.tok = e->tok;
    env.is = e->is;
    rc = enroll_run(&env, &o, &e->r);
    if (rc == P11CA_E_USAGE)
        return cli_usage_error(&cli_enroll_cmds[0], "%s", p11ca_err_message());
    if (rc != P11CA_OK)
        return cli_error(rc, "%s", p11ca_err_message());
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
        {0},
    };
    const struct cli_cmd *me = &cli_enroll_cmds[0];
    struct enr e = {.cli = cli, .pin_len = -1, .a.wait = CA_WAIT_DEFAULT};
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me);
        rc = enr_opt(me, o, &e.a);
        if (rc != P11CA_OK)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    rc = enr_args_check(me, &e.a);
    if (rc != P11CA_OK)
        return rc;
    e.pin = OPENSSL_secure_zalloc(P11_MAX_PIN_LEN + 1);
    rc = e.pin ? enr_run(&e) : cli_error(P11CA_E_NOMEM, "out of memory");
    enr_free(&e);
    return rc;
}

const struct cli_cmd cli_enroll_cmds[] = {
    {"enroll", NULL,
     "--token URI --ca DIR --profile NAME [--subject /CN=..] [--client-id ID] "
     "[--type TYPE] [--label LABEL] [--days N] [--with-chain] [--resume | "
     "--cleanup] [--renew | --rekey [--remove-old]] [--wait SECONDS]",
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
     "--wait as for p11ca issue.",
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
     "--module)\n" CLI_WAIT_HELP,
     cmd_enroll},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
