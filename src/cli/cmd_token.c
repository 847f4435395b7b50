/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca token list|init|show */
#include "config.h"

#include "cli.h"
#include "cmd_enroll.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EXPIRY_WARN_DAYS 30

static const char *jstr(json_t *j, const char *key, const char *dflt);

static json_t *token_json(p11_token *tok)
{
    const CK_TOKEN_INFO *ti = p11_token_info(tok);
    char *uri = p11_uri_for_token(tok);
    json_t *flags = json_array();
    json_t *j;
    static const struct {
        CK_FLAGS bit;
        const char *name;
    } fl[] = {
        {CKF_TOKEN_INITIALIZED, "initialized"},
        {CKF_LOGIN_REQUIRED, "login-required"},
        {CKF_USER_PIN_INITIALIZED, "user-pin-initialized"},
        {CKF_PROTECTED_AUTHENTICATION_PATH, "pin-pad"},
        {CKF_WRITE_PROTECTED, "write-protected"},
        {CKF_USER_PIN_COUNT_LOW, "user-pin-count-low"},
        {CKF_USER_PIN_FINAL_TRY, "user-pin-final-try"},
        {CKF_USER_PIN_LOCKED, "user-pin-locked"},
        {CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed"},
        {CKF_RNG, "rng"},
    };

    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
        if (ti->flags & fl[i].bit)
            json_array_append_new(flags, json_string(fl[i].name));
    j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:s?}", "label",
                  p11_token_label(tok), "serial", p11_token_serial(tok),
                  "model", p11_token_model(tok), "manufacturer",
                  p11_token_manufacturer(tok), "module",
                  p11_token_module_name(tok), "slot",
                  (json_int_t)p11_token_slot(tok), "flags", flags, "uri", uri);
    free(uri);
    return j;
}

static void token_print(json_t *t)
{
    json_t *f;
    size_t i;

    printf("Token \"%s\"\n", cli_esc(jstr(t, "label", "")));
    printf("  serial:       %s\n", cli_esc(jstr(t, "serial", "")));
    printf("  model:        %s\n", cli_esc(jstr(t, "model", "")));
    printf("  manufacturer: %s\n", cli_esc(jstr(t, "manufacturer", "")));
    printf("  module:       %s (slot %lld)\n", cli_esc(jstr(t, "module", "")),
           (long long)json_integer_value(json_object_get(t, "slot")));
    printf("  flags:       ");
    json_array_foreach(json_object_get(t, "flags"), i, f)
        printf("%s %s", i ? "," : "", json_string_value(f));
    printf("\n  uri:          %s\n", cli_esc(jstr(t, "uri", "")));
}

static int cmd_token_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {0}};
    p11_token **toks = NULL;
    p11_uri *uri = NULL;
    json_t *arr = NULL;
    size_t n = 0;
    int c, rc;
    CK_RV rv;

    while ((c = cli_getopt(cli, argc, argv, "h", opts)) != -1)
        if (c == 'h')
            return cli_help(&cli_token_cmds[0]);
        else
            return cli_usage_error(&cli_token_cmds[0], "bad option");
    if (argc - optind > 1)
        return cli_usage_error(&cli_token_cmds[0], "too many arguments");
    rc = cli_parse_uri(argv[optind], &uri);
    if (rc != P11CA_OK)
        return rc;
    if (!cli_p11(cli)) {
        rc = P11CA_E_NOMEM;
        goto out;
    }
    rv = p11_token_find(cli->p11, uri, &toks, &n);
    if (rv != CKR_OK) {
        rc = cli_fail(rv, "listing tokens");
        goto out;
    }
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, token_json(toks[i]));
    if (cli->json) {
        rc = cli_json_print(arr);
        arr = NULL;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        token_print(json_array_get(arr, i));
    if (n == 0)
        fprintf(stderr, "p11ca: no token found\n");
    rc = P11CA_OK;
out:
    json_decref(arr);
    free(toks);
    p11_uri_free(uri);
    return rc;
}

/* Read a PIN for token init from a file (never from the command line). */
static int read_pin_opt(const char *path, const char *what, char *pin)
{
    int n = p11_pin_read_file(path, pin, P11_MAX_PIN_LEN);

    if (n < 0)
        return cli_fail(p11_error_rv(), what);
    pin[n] = '\0';
    return P11CA_OK;
}

/* The token to initialise: the URI's, else the first uninitialised one. */
static int pick_uninitialised(struct cli *cli, const p11_uri *uri, bool force,
                              p11_token **out)
{
    p11_token **toks = NULL;
    size_t n = 0;
    CK_RV rv;
    int rc = P11CA_OK;

    *out = NULL;
    rv = p11_token_find(cli->p11, uri, &toks, &n);
    if (rv != CKR_OK)
        return cli_fail(rv, "token init");
    for (size_t i = 0; i < n && !*out; i++) {
        bool inited = p11_token_info(toks[i])->flags & CKF_TOKEN_INITIALIZED;
        if (uri && n > 1)
            break;
        if (!inited || (uri && force))
            *out = toks[i];
        else if (uri)
            rc = cli_error(P11CA_E_INPUT,
                           "%s is initialised already; --force erases it",
                           p11_token_describe(toks[i]));
    }
    if (!*out && rc == P11CA_OK)
        rc = cli_error(P11CA_E_TOKEN, n > 1 && uri
                                          ? "several tokens match; name one"
                                          : "no uninitialised token found");
    free(toks);
    return rc;
}

static int cmd_token_init(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"label", required_argument, NULL, 'l'},
        {"so-pin-source", required_argument, NULL, 's'},
        {"force", no_argument, NULL, 'f'},
        {0},
    };
    const struct cli_cmd *me = &cli_token_cmds[1];
    const char *label = NULL, *so_src = NULL;
    char so_pin[P11_MAX_PIN_LEN + 1], pin[P11_MAX_PIN_LEN + 1];
    p11_token *tok = NULL, *now = NULL;
    p11_uri *uri = NULL;
    bool force = false;
    int c, rc;
    CK_RV rv;

    while ((c = cli_getopt(cli, argc, argv, "hl:s:f", opts)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(me);
        case 'l':
            label = optarg;
            break;
        case 's':
            so_src = optarg;
            break;
        case 'f':
            force = true;
            break;
        default:
            return cli_usage_error(me, "bad option");
        }
    }
    if (!label || !so_src || !cli->pin_source)
        return cli_usage_error(
            me, "--label, --so-pin-source and --pin-source are required");
    if (argc - optind > 1)
        return cli_usage_error(me, "too many arguments");
    rc = read_pin_opt(so_src, "SO PIN", so_pin);
    if (rc == P11CA_OK)
        rc = read_pin_opt(cli->pin_source, "user PIN", pin);
    if (rc == P11CA_OK)
        rc = cli_parse_uri(argv[optind], &uri);
    if (rc == P11CA_OK && !cli_p11(cli))
        rc = P11CA_E_NOMEM;
    if (rc == P11CA_OK)
        rc = pick_uninitialised(cli, uri, force, &tok);
    if (rc == P11CA_OK) {
        rv = p11_token_init(tok, so_pin, label, pin, &now);
        if (rv != CKR_OK)
            rc = cli_fail(rv, "token init");
    }
    if (rc == P11CA_OK) {
        if (cli->json) {
            rc = cli_json_print(token_json(now));
        } else {
            printf("initialised token \"%s\" (serial %s)\n", cli_esc(label),
                   cli_esc(p11_token_serial(now)));
        }
    }
    OPENSSL_cleanse(so_pin, sizeof(so_pin));
    OPENSSL_cleanse(pin, sizeof(pin));
    p11_uri_free(uri);
    return rc;
}

/* ------------------------------------------------------------------ */
/* token show                                                          */
/* ------------------------------------------------------------------ */

struct show {
    struct cli *cli;
    p11_token *tok;
    enroll_issuer *is; /* NULL: no registry */
    json_t *keys, *lone, *cas, *warnings;
};

static void show_warn(struct show *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void show_warn(struct show *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(s->warnings, json_string(buf));
}

/* What the registry says of @serial: null when none is reachable. */
static json_t *show_registry(struct show *s, const char *serial)
{
    reg_cert rec = {0};
    json_t *j;
    int rc;

    if (!s->is)
        return json_null();
    rc = enroll_get(s->is, serial, &rec);
    if (rc == P11CA_E_NOTFOUND)
        return json_pack("{s:s}", "status", "unknown");
    if (rc != P11CA_OK)
        return json_pack("{s:s, s:s}", "status", "error", "error",
                         p11ca_err_message());
    j = json_pack("{s:s, s:s?, s:s?, s:s?}", "status",
                  reg_status_name(rec.status), "client_id", rec.client_id,
                  "profile", rec.profile, "replaces", rec.replaces);
    reg_cert_clear(&rec);
    return j;
}

/* A certificate; @user: a user certificate (registry status, expiry
 * warnings), else a CA certificate. */
static json_t *show_cert(struct show *s, p11_obj *obj, X509 *x, bool user)
{
    size_t id_len = 0;
    const unsigned char *idb = p11_obj_id(obj, &id_len);
    char *id = cli_hex(idb, id_len), *uri = p11_obj_uri(obj);
    char *subj = x ? enr_subject(x) : NULL, serial[64] = "", until[64] = "";
    int days = x ? enroll_days_left(x) : 0;
    json_t *j;

    if (x) {
        enroll_serial(x, serial, sizeof(serial));
        enroll_time(X509_get0_notAfter(x), until, sizeof(until));
    }
    j = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:i, s:s?, s:o}", "label",
                  p11_obj_label(obj), "id", id ? id : "", "subject", subj,
                  "serial", serial, "not_after", until, "days_left", days,
                  "uri", uri, "registry",
                  x && user ? show_registry(s, serial) : json_null());
    if (user && x && days < 0)
        show_warn(s, "certificate \"%s\" (serial %s) expired on %s",
                  p11_obj_label(obj), serial, until);
    else if (user && x && days <= EXPIRY_WARN_DAYS)
        show_warn(
            s,
            "certificate \"%s\" (serial %s) expires in %d day(s), on %s: renew it (p11ca enroll --renew --label %s)",
            p11_obj_label(obj), serial, days, until, p11_obj_label(obj));
    free(id);
    free(uri);
    free(subj);
    return j;
}

static int show_key(struct show *s, p11_obj *priv)
{
    enroll_pair p = {0};
    size_t id_len = 0;
    const unsigned char *idb = p11_obj_id(priv, &id_len);
    char *id = cli_hex(idb, id_len), *uri = p11_obj_uri(priv), desc[64];
    json_t *certs = json_array();
    CK_RV rv = enroll_pair_for_key(s->cli->p11, priv, &p);

    for (size_t i = 0; rv == CKR_OK && i < p.n; i++)
        json_array_append_new(certs, show_cert(s, p.certs[i], p.x509[i], true));
    if (rv == CKR_OK && !p.n)
        show_warn(
            s,
            "key \"%s\" (id %s) has no certificate: an enrollment did not finish (p11ca enroll --resume or --cleanup)",
            p11_obj_label(priv), id ? id : "");
    json_array_append_new(
        s->keys, json_pack("{s:s, s:s, s:s, s:s?, s:o}", "label",
                           p11_obj_label(priv), "id", id ? id : "", "type",
                           enroll_key_desc(priv, desc, sizeof(desc)), "uri",
                           uri, "certificates", certs));
    enroll_pair_clear(&p);
    free(id);
    free(uri);
    return rv == CKR_OK ? P11CA_OK : cli_fail(rv, "token show");
}

/* Whether one of @keys has the CKA_ID of @cert. */
static bool has_key(p11_obj *cert, p11_obj **keys, size_t n)
{
    size_t a = 0, b = 0;
    const unsigned char *ida = p11_obj_id(cert, &a);

    for (size_t i = 0; a && i < n; i++) {
        const unsigned char *idb = p11_obj_id(keys[i], &b);
        if (a == b && memcmp(ida, idb, a) == 0)
            return true;
    }
    return false;
}

/* CA certificates, and user certificates whose key is not here. */
static int show_other_certs(struct show *s, p11_obj **keys, size_t nkeys)
{
    p11_obj **certs = NULL;
    size_t n = 0;
    CK_RV rv = enroll_find_objs(s->cli->p11, s->tok, CKO_CERTIFICATE, NULL, 0,
                                NULL, false, &certs, &n);

    for (size_t i = 0; rv == CKR_OK && i < n; i++) {
        X509 *x = enroll_cert_x509(certs[i]);
        if (enroll_cert_is_authority(certs[i])) {
            json_array_append_new(s->cas, show_cert(s, certs[i], x, false));
        } else if (!has_key(certs[i], keys, nkeys)) {
            json_array_append_new(s->lone, show_cert(s, certs[i], x, true));
            show_warn(s, "certificate \"%s\" has no key on this token",
                      p11_obj_label(certs[i]));
        }
        X509_free(x);
    }
    enroll_objs_free(certs, n);
    return rv == CKR_OK ? P11CA_OK : cli_fail(rv, "token show");
}

/* A string member of @j, or @dflt. */
static const char *jstr(json_t *j, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(j, key));

    return v ? v : dflt;
}

static void show_print_cert(json_t *c, const char *indent)
{
    json_t *rg = json_object_get(c, "registry");

    printf("%scertificate \"%s\": %s\n", indent, cli_esc(jstr(c, "label", "")),
           cli_esc(jstr(c, "subject", "(unreadable)")));
    printf("%s  serial %s, expires %s (in %lld days)\n", indent,
           cli_esc(jstr(c, "serial", "")), jstr(c, "not_after", ""),
           (long long)json_integer_value(json_object_get(c, "days_left")));
    if (json_is_object(rg))
        printf("%s  registry: %s%s%s%s%s\n", indent, jstr(rg, "status", ""),
               jstr(rg, "client_id", NULL) ? ", client ID " : "",
               cli_esc(jstr(rg, "client_id", "")),
               jstr(rg, "replaces", NULL) ? ", replaces " : "",
               jstr(rg, "replaces", ""));
}

static void show_print(struct show *s)
{
    json_t *k, *c;
    size_t i, j;

    printf("token \"%s\" (serial %s, %s)\n", cli_esc(p11_token_label(s->tok)),
           cli_esc(p11_token_serial(s->tok)), cli_esc(p11_token_model(s->tok)));
    json_array_foreach(s->keys, i, k)
    {
        printf("key \"%s\" (id %s): %s\n", cli_esc(jstr(k, "label", "")),
               json_string_value(json_object_get(k, "id")),
               json_string_value(json_object_get(k, "type")));
        json_array_foreach(json_object_get(k, "certificates"), j, c)
            show_print_cert(c, "  ");
    }
    json_array_foreach(s->lone, i, c) show_print_cert(c, "");
    json_array_foreach(s->cas, i, c)
    {
        printf("CA ");
        show_print_cert(c, "");
    }
    json_array_foreach(s->warnings, i, c)
        printf("warning: %s\n", cli_esc(json_string_value(c)));
}

static int show_run(struct show *s, const p11_uri *uri)
{
    p11_obj **keys = NULL;
    size_t n = 0;
    p11_auth auth;
    int rc = P11CA_OK;
    CK_RV rv = p11_token_find_one(s->cli->p11, uri, &s->tok);

    p11_auth_from_uri(&auth, uri);
    if (rv == CKR_OK)
        rv = p11_token_login(s->tok, &auth);
    if (rv == CKR_OK)
        rv = enroll_find_objs(s->cli->p11, s->tok, CKO_PRIVATE_KEY, NULL, 0,
                              NULL, true, &keys, &n);
    if (rv != CKR_OK)
        return cli_fail(rv, "token show");
    for (size_t i = 0; i < n && rc == P11CA_OK; i++)
        rc = show_key(s, keys[i]);
    if (rc == P11CA_OK)
        rc = show_other_certs(s, keys, n);
    enroll_objs_free(keys, n);
    if (rc == P11CA_OK && s->cli->json)
        rc = cli_json_print(json_pack(
            "{s:s, s:s, s:O, s:O, s:O, s:O}", "token", p11_token_label(s->tok),
            "serial", p11_token_serial(s->tok), "keys", s->keys,
            "certificates_without_key", s->lone, "ca_certificates", s->cas,
            "warnings", s->warnings));
    else if (rc == P11CA_OK)
        show_print(s);
    return rc;
}

static int cmd_token_show(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, 'd'},
        {0},
    };
    const struct cli_cmd *me = &cli_token_cmds[2];
    struct show s = {.cli = cli};
    const char *dir = NULL;
    p11_uri *uri = NULL;
    int c, rc;

    while ((c = cli_getopt(cli, argc, argv, "hd:", opts)) != -1) {
        if (c == 'h')
            return cli_help(me);
        if (c != 'd')
            return cli_usage_error(me, "bad option");
        dir = optarg;
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one token URI");
    dir = cli_ca_dir(dir);
    rc = cli_parse_uri(argv[optind], &uri);
    if (rc == P11CA_OK && dir && *dir
        && (rc = enroll_issuer_local(dir, NULL, NULL, &s.is)) != P11CA_OK)
        rc = cli_error(rc, "token show: %s", p11ca_err_message());
    if (rc == P11CA_OK && !cli_p11(cli))
        rc = P11CA_E_NOMEM;
    s.keys = json_array();
    s.lone = json_array();
    s.cas = json_array();
    s.warnings = json_array();
    if (rc == P11CA_OK)
        rc = show_run(&s, uri);
    json_decref(s.keys);
    json_decref(s.lone);
    json_decref(s.cas);
    json_decref(s.warnings);
    enroll_issuer_free(s.is);
    p11_uri_free(uri);
    return rc;
}

const struct cli_cmd cli_token_cmds[] = {
    {"token", "list", "[URI]", "List the tokens (all, or those matching URI).",
     "", cmd_token_list},
    {"token", "init",
     "--label LABEL --so-pin-source FILE --pin-source FILE [URI]",
     "Initialise a token (C_InitToken, then C_InitPIN): the token URI "
     "names, else the first uninitialised one. Erases the token: meant for "
     "test tokens such as SoftHSM2.",
     "--label LABEL\tthe new token label (1 to 32 bytes)\n"
     "--so-pin-source FILE\tfile with the security officer PIN\n"
     "--pin-source FILE\tfile with the new user PIN\n"
     "--force\tre-initialise a token that is initialised already",
     cmd_token_init},
    {"token", "show", "[--dir CA] URI",
     "Show the key/certificate pairs on the token URI names: each private "
     "key (label, id, type) with the certificates of the same CKA_ID "
     "(subject, serial, expiry) and, with a CA directory, their status in "
     "its registry; then the CA certificates. Warns about keys without a "
     "certificate (an unfinished enrollment), certificates without a key "
     "and certificates that expire within 30 days.",
     "--dir CA\tthe CA directory whose registry gives each certificate's "
     "status (default $P11CA_CA_DIR)",
     cmd_token_show},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
