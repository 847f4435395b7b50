/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca token list|init */
#include "config.h"

#include "cli.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

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
        { CKF_TOKEN_INITIALIZED, "initialized" },
        { CKF_LOGIN_REQUIRED, "login-required" },
        { CKF_USER_PIN_INITIALIZED, "user-pin-initialized" },
        { CKF_PROTECTED_AUTHENTICATION_PATH, "pin-pad" },
        { CKF_WRITE_PROTECTED, "write-protected" },
        { CKF_USER_PIN_COUNT_LOW, "user-pin-count-low" },
        { CKF_USER_PIN_FINAL_TRY, "user-pin-final-try" },
        { CKF_USER_PIN_LOCKED, "user-pin-locked" },
        { CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed" },
        { CKF_RNG, "rng" },
    };

    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
        if (ti->flags & fl[i].bit)
            json_array_append_new(flags, json_string(fl[i].name));
    j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:s?}",
                  "label", p11_token_label(tok),
                  "serial", p11_token_serial(tok),
                  "model", p11_token_model(tok),
                  "manufacturer", p11_token_manufacturer(tok),
                  "module", p11_token_module_name(tok),
                  "slot", (json_int_t)p11_token_slot(tok),
                  "flags", flags,
                  "uri", uri);
    free(uri);
    return j;
}

static void token_print(json_t *t)
{
    json_t *f;
    size_t i;

    printf("Token \"%s\"\n", json_string_value(json_object_get(t, "label")));
    printf("  serial:       %s\n", json_string_value(json_object_get(t, "serial")));
    printf("  model:        %s\n", json_string_value(json_object_get(t, "model")));
    printf("  manufacturer: %s\n",
           json_string_value(json_object_get(t, "manufacturer")));
    printf("  module:       %s (slot %lld)\n",
           json_string_value(json_object_get(t, "module")),
           (long long)json_integer_value(json_object_get(t, "slot")));
    printf("  flags:       ");
    json_array_foreach(json_object_get(t, "flags"), i, f)
        printf("%s %s", i ? "," : "", json_string_value(f));
    printf("\n  uri:          %s\n",
           json_string_value(json_object_get(t, "uri")));
}

static int cmd_token_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = { CLI_COMMON_OPTIONS, { 0 } };
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
static int pick_uninitialised(struct cli *cli, const p11_uri *uri,
                              bool force, p11_token **out)
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
        { "label", required_argument, NULL, 'l' },
        { "so-pin-source", required_argument, NULL, 's' },
        { "force", no_argument, NULL, 'f' },
        { 0 },
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
        return cli_usage_error(me, "--label, --so-pin-source and "
                                   "--pin-source are required");
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
            printf("initialised token \"%s\" (serial %s)\n", label,
                   p11_token_serial(now));
        }
    }
    OPENSSL_cleanse(so_pin, sizeof(so_pin));
    OPENSSL_cleanse(pin, sizeof(pin));
    p11_uri_free(uri);
    return rc;
}

const struct cli_cmd cli_token_cmds[] = {
    { "token", "list", "[URI]", "List the tokens (all, or those matching URI).",
      "", cmd_token_list },
    { "token", "init", "--label LABEL --so-pin-source FILE --pin-source FILE [URI]",
      "Initialise a token (C_InitToken, then C_InitPIN): the token URI "
      "names, else the first uninitialised one. Erases the token: meant for "
      "test tokens such as SoftHSM2.",
      "--label LABEL\tthe new token label (1 to 32 bytes)\n"
      "--so-pin-source FILE\tfile with the security officer PIN\n"
      "--pin-source FILE\tfile with the new user PIN\n"
      "--force\tre-initialise a token that is initialised already",
      cmd_token_init },
    { NULL, NULL, NULL, NULL, NULL, NULL },
};
