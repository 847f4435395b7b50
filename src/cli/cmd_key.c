/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca key gen|list */
#include "config.h"

#include "cli.h"

#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

static const char *key_type_name(CK_KEY_TYPE kt)
{
    switch (kt) {
    case CKK_RSA:
        return "RSA";
    case CKK_EC:
        return "EC";
    case CKK_EC_EDWARDS:
        return "EdDSA";
    case CKK_AES:
        return "AES";
    case CKK_GENERIC_SECRET:
        return "generic-secret";
    default:
        return "other";
    }
}

static const char *curve_name(int nid)
{
    switch (nid) {
    case NID_X9_62_prime256v1:
        return "P-256";
    case NID_secp384r1:
        return "P-384";
    case NID_secp521r1:
        return "P-521";
    case NID_ED25519:
        return "Ed25519";
    case NID_ED448:
        return "Ed448";
    case NID_undef:
        return NULL;
    default:
        return OBJ_nid2sn(nid);
    }
}

/* JSON description of a key object: type, size, id, label, URI, flags. */
static json_t *key_json(p11_obj *k)
{
    static const struct {
        CK_ATTRIBUTE_TYPE type;
        const char *name;
    } attrs[] = {
        {CKA_SENSITIVE, "sensitive"},
        {CKA_ALWAYS_SENSITIVE, "always-sensitive"},
        {CKA_EXTRACTABLE, "extractable"},
        {CKA_NEVER_EXTRACTABLE, "never-extractable"},
        {CKA_ALWAYS_AUTHENTICATE, "always-authenticate"},
        {CKA_SIGN, "sign"},
        {CKA_DECRYPT, "decrypt"},
        {CKA_DERIVE, "derive"},
        {CKA_VERIFY, "verify"},
        {CKA_ENCRYPT, "encrypt"},
        {CKA_TOKEN, "token"},
        {CKA_PRIVATE, "private"},
    };
    bool priv = p11_obj_class(k) == CKO_PRIVATE_KEY;
    unsigned bits = 0;
    int nid = 0;
    size_t id_len;
    const unsigned char *id = p11_obj_id(k, &id_len);
    char *hex = cli_hex(id, id_len), *uri = p11_obj_uri(k);
    json_t *flags = json_object(), *j;

    if (p11_obj_key_info(k, &bits, &nid) != CKR_OK)
        bits = 0;
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        if (!priv
            && (attrs[i].type == CKA_SENSITIVE
                || attrs[i].type == CKA_ALWAYS_SENSITIVE
                || attrs[i].type == CKA_EXTRACTABLE
                || attrs[i].type == CKA_NEVER_EXTRACTABLE
                || attrs[i].type == CKA_ALWAYS_AUTHENTICATE
                || attrs[i].type == CKA_SIGN || attrs[i].type == CKA_DECRYPT
                || attrs[i].type == CKA_DERIVE))
            continue;
        if (priv
            && (attrs[i].type == CKA_VERIFY || attrs[i].type == CKA_ENCRYPT))
            continue;
        json_object_set_new(
            flags, attrs[i].name,
            json_boolean(p11_obj_get_bool(k, attrs[i].type, false)));
    }
    j = json_pack("{s:s, s:s, s:i, s:s?, s:s, s:s, s:s, s:s?, s:o}", "class",
                  priv ? "private" : "public", "type",
                  key_type_name(p11_obj_key_type(k)), "bits", (int)bits,
                  "curve", curve_name(nid), "label", p11_obj_label(k), "id",
                  hex ? hex : "", "token", p11_token_label(p11_obj_token(k)),
                  "uri", uri, "attributes", flags);
    free(hex);
    free(uri);
    return j;
}

static void key_print(json_t *k)
{
    const char *curve = json_string_value(json_object_get(k, "curve"));
    const char *key;
    json_t *v;
    int first = 1;

    bool priv =
        strcmp(json_string_value(json_object_get(k, "class")), "private") == 0;

    printf("%s key  %s ", priv ? "Private" : "Public",
           json_string_value(json_object_get(k, "type")));
    if (curve)
        printf("%s\n", curve);
    else
        printf("%lld\n",
               (long long)json_integer_value(json_object_get(k, "bits")));
    printf("  label:      %s\n",
           cli_esc(json_string_value(json_object_get(k, "label"))));
    printf("  id:         %s\n", json_string_value(json_object_get(k, "id")));
    printf("  token:      %s\n",
           cli_esc(json_string_value(json_object_get(k, "token"))));
    printf("  uri:        %s\n",
           cli_esc(json_string_value(json_object_get(k, "uri"))));
    printf("  attributes:");
    json_object_foreach(json_object_get(k, "attributes"), key, v)
    {
        if (json_is_true(v)) {
            printf("%s %s", first ? "" : ",", key);
            first = 0;
        }
    }
    printf("\n");
}

static int cmd_key_gen(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"uri", required_argument, NULL, 'u'},
        {"type", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'l'},
        {"id", required_argument, NULL, 'i'},
        {"allowed-mechanisms", required_argument, NULL, 'm'},
        {0},
    };
    const struct cli_cmd *me = &cli_key_cmds[0];
    const char *allowed = NULL;
    const char *uristr = NULL, *type = NULL, *label = NULL, *idstr = NULL;
    unsigned char idbuf[P11_MAX_ID_LEN];
    const unsigned char *id = NULL;
    size_t id_len = 0;
    p11_obj *pub = NULL, *priv = NULL;
    p11_token *tok = NULL;
    p11_uri *uri = NULL;
    p11_key_spec spec;
    p11_auth auth;
    json_t *out;
    int c, rc, n;
    CK_RV rv;

    while ((c = cli_getopt(cli, argc, argv, "hu:t:l:i:m:", opts)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(me);
        case 'u':
            uristr = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        case 'i':
            idstr = optarg;
            break;
        case 'm':
            allowed = optarg;
            break;
        default:
            return cli_usage_error(me, "bad option");
        }
    }
    if (!uristr && optind < argc)
        uristr = argv[optind++];
    if (!uristr || !type)
        return cli_usage_error(me, "--uri and --type are required");
    if (optind < argc)
        return cli_usage_error(me, "too many arguments");
    if (p11_key_spec_parse(type, &spec) != CKR_OK)
        return cli_fail(p11_error_rv(), "--type");
    if (allowed && p11_key_spec_allow(&spec, allowed) != CKR_OK)
        return cli_fail(p11_error_rv(), "--allowed-mechanisms");
    rc = cli_parse_uri(uristr, &uri);
    if (rc != P11CA_OK)
        return rc;
    if (idstr) {
        n = cli_parse_hex(idstr, idbuf, sizeof(idbuf));
        if (n < 0) {
            rc = cli_error(P11CA_E_INPUT, "--id must be hex (up to %d bytes)",
                           P11_MAX_ID_LEN);
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
        rv = p11_keygen(tok, &auth, &spec, label, id, id_len, false, &pub,
                        &priv);
    }
    if (rv != CKR_OK) {
        rc = cli_fail(rv, "key gen");
        goto out;
    }
    out = json_pack("{s:s, s:o, s:o}", "type", p11_key_spec_name(&spec),
                    "private", key_json(priv), "public", key_json(pub));
    if (cli->json) {
        rc = cli_json_print(out);
    } else {
        printf("generated %s key pair on %s\n", p11_key_spec_name(&spec),
               p11_token_describe(tok));
        key_print(json_object_get(out, "private"));
        key_print(json_object_get(out, "public"));
        json_decref(out);
        rc = P11CA_OK;
    }
out:
    p11_obj_unref(pub);
    p11_obj_unref(priv);
    p11_uri_free(uri);
    return rc;
}

/* Append every key of class @cls matching @uri to @arr. */
static int list_class(struct cli *cli, const p11_uri *uri, CK_OBJECT_CLASS cls,
                      bool login, json_t *arr)
{
    p11_obj **objs = NULL;
    size_t n = 0;
    CK_RV rv;

    rv = p11_obj_find(cli->p11, uri, cls, login, &objs, &n);
    if (rv != CKR_OK)
        return cli_fail(rv, "key list");
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, key_json(objs[i]));
        p11_obj_unref(objs[i]);
    }
    free(objs);
    return P11CA_OK;
}

static int cmd_key_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"no-login", no_argument, NULL, 'n'},
        {0},
    };
    const struct cli_cmd *me = &cli_key_cmds[1];
    CK_OBJECT_CLASS cls;
    bool login = true;
    p11_uri *uri = NULL;
    json_t *arr;
    int c, rc;

    while ((c = cli_getopt(cli, argc, argv, "hn", opts)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(me);
        case 'n':
            login = false;
            break;
        default:
            return cli_usage_error(me, "bad option");
        }
    }
    if (argc - optind > 1)
        return cli_usage_error(me, "too many arguments");
    rc = cli_parse_uri(argv[optind], &uri);
    if (rc != P11CA_OK)
        return rc;
    if (!cli_p11(cli)) {
        p11_uri_free(uri);
        return P11CA_E_NOMEM;
    }
    arr = json_array();
    cls = uri ? p11_uri_get_class(uri) : (CK_OBJECT_CLASS)-1;
    if (cls != (CK_OBJECT_CLASS)-1 && cls != CKO_PRIVATE_KEY
        && cls != CKO_PUBLIC_KEY) {
        rc = cli_error(P11CA_E_INPUT,
                       "key list: type= must be private or public");
        goto out;
    }
    if (login && (cls == (CK_OBJECT_CLASS)-1 || cls == CKO_PRIVATE_KEY))
        rc = list_class(cli, uri, CKO_PRIVATE_KEY, true, arr);
    if (rc == P11CA_OK && (cls == (CK_OBJECT_CLASS)-1 || cls == CKO_PUBLIC_KEY))
        rc = list_class(cli, uri, CKO_PUBLIC_KEY, login, arr);
    if (rc != P11CA_OK)
        goto out;
    if (cli->json) {
        rc = cli_json_print(arr);
        arr = NULL;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++)
        key_print(json_array_get(arr, i));
    if (json_array_size(arr) == 0)
        fprintf(stderr, "p11ca: no key found\n");
out:
    json_decref(arr);
    p11_uri_free(uri);
    return rc;
}

static int cmd_key_pubout(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"out", required_argument, NULL, 'o'},
        {0},
    };
    const struct cli_cmd *me = &cli_key_cmds[2];
    const char *outpath = NULL;
    EVP_PKEY *pk = NULL;
    p11_obj *obj = NULL;
    p11_uri *uri = NULL;
    CK_OBJECT_CLASS cls;
    BIO *b = NULL;
    char *pem = NULL;
    long len = -1;
    int c, rc;
    CK_RV rv;

    while ((c = cli_getopt(cli, argc, argv, "ho:", opts)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(me);
        case 'o':
            outpath = optarg;
            break;
        default:
            return cli_usage_error(me, "bad option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(me, "give one key URI");
    rc = cli_parse_uri(argv[optind], &uri);
    if (rc != P11CA_OK)
        return rc;
    if (!cli_p11(cli)) {
        p11_uri_free(uri);
        return P11CA_E_NOMEM;
    }
    /* The public key object, read without a login; else the private key. */
    cls = p11_uri_get_class(uri);
    if (cls == (CK_OBJECT_CLASS)-1)
        cls = CKO_PUBLIC_KEY;
    rv = p11_obj_find_one(cli->p11, uri, cls, cls == CKO_PRIVATE_KEY, &obj);
    if (rv == CKR_OK)
        rv = p11_obj_public_key(obj, NULL, NULL, &pk);
    if (rv != CKR_OK) {
        rc = cli_fail(rv, "key pubout");
        goto out;
    }
    b = BIO_new(BIO_s_mem());
    if (b && PEM_write_bio_PUBKEY(b, pk))
        len = BIO_get_mem_data(b, &pem);
    if (len < 0)
        rc = cli_error(P11CA_E_INTERNAL, "cannot encode the public key");
    else if (outpath)
        rc = cli_write_out(cli, outpath, 0644, pem, (size_t)len);
    else if (fwrite(pem, 1, (size_t)len, stdout) != (size_t)len
             || fflush(stdout) != 0)
        rc = cli_error(P11CA_E_IO, "cannot write to standard output");
    else
        rc = P11CA_OK;
out:
    BIO_free(b);
    EVP_PKEY_free(pk);
    p11_obj_unref(obj);
    p11_uri_free(uri);
    return rc;
}

const struct cli_cmd cli_key_cmds[] = {
    {"key", "gen", "--uri URI --type TYPE [--label LABEL] [--id HEX]",
     "Generate a key pair on the token that URI names. The private key is "
     "sensitive and never extractable; the public key has the same id and "
     "label.",
     "--uri URI\tthe token (object= and id= in it name the key)\n"
     "--type TYPE\trsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384, "
     "ec:P-521, ed25519 or ed448\n"
     "--label LABEL\tthe key label (default: object= of the URI)\n"
     "--id HEX\tthe CKA_ID (default: id= of the URI, else 20 random bytes)\n"
     "--allowed-mechanisms LIST\trestrict the private key to these "
     "mechanisms (CKA_ALLOWED_MECHANISMS), e.g. SHA256-RSA-PKCS,RSA-PKCS-PSS",
     cmd_key_gen},
    {"key", "list", "[--no-login] [URI]",
     "List the key pairs on the tokens that URI matches (all tokens without "
     "it), with their attributes.",
     "--no-login\tdo not log in: public keys only", cmd_key_list},
    {"key", "pubout", "[--out FILE] URI",
     "Write the public key of the key that URI names as PEM "
     "(SubjectPublicKeyInfo). Private keys are never exported.",
     "--out FILE\twrite to FILE instead of standard output", cmd_key_pubout},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
