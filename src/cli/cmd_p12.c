/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca export-p12 (software keys only) and export-chain (PEM bundle,
 * PKCS#7, zip): the downloads a client of a CA expects. */
#include "config.h"

#include "cli.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/ui.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ca/ca.h"

#define MAX_FILE (1024 * 1024)
#define P12_ITER 2048

/* A key that lives on a token: a pkcs11: URI, or a file holding one (what
 * the provider writes for a token key's "PEM"). */
static bool is_token_key(const char *arg)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    bool token;

    if (strncasecmp(arg, "pkcs11:", 7) == 0)
        return true;
    if (cli_read_file(arg, MAX_FILE, &buf, &len) != P11CA_OK)
        return false;
    token = len > 7 && strncasecmp((char *)buf, "pkcs11:", 7) == 0;
    free(buf);
    return token;
}

static int read_password(const char *file, char *pw, size_t max)
{
    int n;

    if (file) {
        n = p11_pin_read_file(file, pw, max - 1);
        if (n < 0)
            return cli_error(P11CA_E_INPUT, "%s", p11_error_message());
        pw[n] = '\0';
        return P11CA_OK;
    }
    if (EVP_read_pw_string(pw, (int)max, "PKCS#12 export password:", 1) != 0)
        return cli_error(P11CA_E_INPUT,
                         "no export password (give --password-file FILE)");
    return P11CA_OK;
}

static int load_key_file(const char *path, EVP_PKEY **out)
{
    BIO *b = BIO_new_file(path, "r");

    *out = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (!*out)
        return cli_error(P11CA_E_INPUT, "%s: not a PEM private key", path);
    return P11CA_OK;
}

/* Every certificate of a PEM file (bounded), appended to @sk. */
static int load_certs(const char *path, STACK_OF(X509) * sk)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x;
    int n = 0;

    if (!b)
        return cli_error(P11CA_E_INPUT, "cannot open %s", path);
    while (n < 16 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(sk, x);
        n++;
    }
    BIO_free(b);
    ERR_clear_error();
    return n ? P11CA_OK
             : cli_error(P11CA_E_INPUT, "%s: no PEM certificate", path);
}

/* Mode 0600: the file holds a private key, encrypted or not. */
static int write_p12(struct cli *cli, PKCS12 *p12, const char *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = -1;
    int rc;

    if (b && i2d_PKCS12_bio(b, p12) == 1)
        len = BIO_get_mem_data(b, &data);
    rc = len < 0 ? cli_error(P11CA_E_NOMEM, "cannot encode the PKCS#12")
                 : cli_write_out(cli, out, 0600, data, (size_t)len);
    BIO_free(b);
    return rc;
}

static int cmd_export_p12(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"key", required_argument, NULL, 'k'},
        {"cert", required_argument, NULL, 'c'},
        {"chain", required_argument, NULL, 'C'},
        {"out", required_argument, NULL, 'o'},
        {"password-file", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"legacy", no_argument, NULL, 'l'},
        {0},
    };
    const struct cli_cmd *me = &cli_p12_cmds[0];
    const char *keyf = NULL, *certf = NULL, *chainf = NULL, *out = NULL;
    const char *pwf = NULL, *name = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null(), *chain = sk_X509_new_null();
    char pw[256];
    EVP_PKEY *key = NULL;
    PKCS12 *p12 = NULL;
    bool legacy = false;
    int o, rc, nid;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        switch (o) {
        case 'h':
            rc = cli_help(me);
            goto out;
        case 'k':
            keyf = optarg;
            break;
        case 'c':
            certf = optarg;
            break;
        case 'C':
            chainf = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'p':
            pwf = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'l':
            legacy = true;
            break;
        default:
            rc = cli_usage_error(me, "bad option");
            goto out;
        }
    }
    if (!keyf || !certf || !out || optind < argc) {
        rc = cli_usage_error(me, "give --key, --cert and --out");
        goto out;
    }
    if (is_token_key(keyf)) {
        rc = cli_error(
            P11CA_E_INPUT,
            "export-p12: %s is a key on a token; it cannot leave the token, so it cannot go into a PKCS#12 file (use the token itself, e.g. for mTLS, with its pkcs11: URI)",
            keyf);
        goto out;
    }
    rc = load_key_file(keyf, &key);
    if (rc == P11CA_OK)
        rc = load_certs(certf, certs);
    if (rc == P11CA_OK && chainf)
        rc = load_certs(chainf, chain);
    if (rc == P11CA_OK
        && X509_check_private_key(sk_X509_value(certs, 0), key) != 1)
        rc = cli_error(P11CA_E_INPUT, "export-p12: %s is not the key of %s",
                       keyf, certf);
    if (rc == P11CA_OK)
        rc = read_password(pwf, pw, sizeof(pw));
    if (rc != P11CA_OK)
        goto out;
    /* Modern: AES-256-CBC + PBKDF2 and a SHA-256 MAC; legacy: 3DES + SHA-1
     * for older Windows/IIS imports. */
    nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
    p12 = PKCS12_create_ex(pw, name, key, sk_X509_value(certs, 0), chain, nid,
                           nid, P12_ITER, -1, 0, NULL, NULL);
    if (p12
        && PKCS12_set_mac(p12, pw, -1, NULL, 0, P12_ITER,
                          legacy ? EVP_sha1() : EVP_sha256())
               != 1) {
        PKCS12_free(p12);
        p12 = NULL;
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    if (!p12) {
        rc = cli_error(P11CA_E_INTERNAL,
                       "export-p12: cannot build the PKCS#12 file");
        goto out;
    }
    rc = write_p12(cli, p12, out);
    if (rc == P11CA_OK && !cli->json)
        printf("wrote %s (%s)\n", out,
               legacy ? "3DES/SHA-1, legacy" : "AES-256-CBC/PBKDF2/SHA-256");
out:
    PKCS12_free(p12);
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* ------------------------------------------------------------------ */
/* export-chain                                                        */
/* ------------------------------------------------------------------ */

/* Leaf (from the registry), then the CA certificate, then chain.pem. */
static int build_chain(ca *c, const char *serial, bool root,
                       STACK_OF(X509) * sk)
{
    reg_cert rcert = {0};
    const unsigned char *p;
    char path[4096];
    X509 *x;
    int rc;

    /* The chain is this CA's: the certificate must be one it issued. */
    rc = reg_get(ca_registry(c), ca_registry_id(c), serial, &rcert);
    if (rc != P11CA_OK)
        return cli_error(rc, "%s", p11ca_err_message());
    p = rcert.der;
    x = d2i_X509(NULL, &p, (long)rcert.der_len);
    reg_cert_clear(&rcert);
    if (!x)
        return cli_error(P11CA_E_REGISTRY,
                         "%s: bad certificate in the registry", serial);
    sk_X509_push(sk, x);
    if (ca_cert(c) && X509_up_ref(ca_cert(c)))
        sk_X509_push(sk, ca_cert(c));
    snprintf(path, sizeof(path), "%s/chain.pem", ca_dir(c));
    if (access(path, R_OK) == 0 && load_certs(path, sk) != P11CA_OK)
        return P11CA_E_INPUT;
    /* A self-signed top is the root: left out unless asked for. */
    x = sk_X509_value(sk, sk_X509_num(sk) - 1);
    if (!root && sk_X509_num(sk) > 1 && X509_self_signed(x, 0) == 1)
        X509_free(sk_X509_pop(sk));
    return P11CA_OK;
}

static int write_pem_bundle(STACK_OF(X509) * sk, FILE *f)
{
    for (int i = 0; i < sk_X509_num(sk); i++)
        if (!PEM_write_X509(f, sk_X509_value(sk, i)))
            return P11CA_E_IO;
    return P11CA_OK;
}

static int write_p7b(STACK_OF(X509) * sk, FILE *f, bool pem)
{
    PKCS7 *p7 = PKCS7_new();
    int ok = 0;

    /* A certs-only SignedData, as CAs publish chains (.p7b). */
    if (p7 && PKCS7_set_type(p7, NID_pkcs7_signed)
        && PKCS7_content_new(p7, NID_pkcs7_data)) {
        ok = 1;
        for (int i = 0; ok && i < sk_X509_num(sk); i++)
            ok = PKCS7_add_certificate(p7, sk_X509_value(sk, i));
    }
    if (ok)
        ok = pem ? PEM_write_PKCS7(f, p7) : i2d_PKCS7_fp(f, p7);
    PKCS7_free(p7);
    return ok ? P11CA_OK : P11CA_E_IO;
}

static int write_zip(STACK_OF(X509) * sk, FILE *f)
{
    struct zip_entry ents[16];
    char names[16][32];
    int n = sk_X509_num(sk), rc;

    for (int i = 0; i < n && i < 16; i++) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long len;
        PEM_write_bio_X509(b, sk_X509_value(sk, i));
        len = BIO_get_mem_data(b, &data);
        if (i == 0)
            snprintf(names[i], sizeof(names[i]), "certificate.crt");
        else if (i == n - 1 && X509_self_signed(sk_X509_value(sk, i), 0) == 1)
            snprintf(names[i], sizeof(names[i]), "root.crt");
        else
            snprintf(names[i], sizeof(names[i]), "intermediate%d.crt", i);
        ents[i].name = names[i];
        ents[i].data = (unsigned char *)OPENSSL_memdup(data, (size_t)len);
        ents[i].len = (size_t)len;
        BIO_free(b);
    }
    rc = zip_write(f, ents, (size_t)(n < 16 ? n : 16));
    for (int i = 0; i < n && i < 16; i++)
        OPENSSL_free(ents[i].data);
    return rc;
}

static int cmd_export_chain(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"dir", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},
        {"root", no_argument, NULL, 'r'},
        {0},
    };
    const struct cli_cmd *me = &cli_p12_cmds[1];
    const char *dir = NULL, *fmt = "pem", *out = NULL;
    STACK_OF(X509) *sk = sk_X509_new_null();
    bool root = false;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;
    ca *c = NULL;
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        switch (o) {
        case 'h':
            rc = cli_help(me);
            goto out;
        case 'd':
            dir = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'r':
            root = true;
            break;
        default:
            rc = cli_usage_error(me, "bad option");
            goto out;
        }
    }
    if (argc - optind != 1 || !out) {
        rc = cli_usage_error(me, "give --out FILE and one serial");
        goto out;
    }
    if (strcmp(fmt, "pem") && strcmp(fmt, "p7b") && strcmp(fmt, "p7b-pem")
        && strcmp(fmt, "zip")) {
        rc = cli_usage_error(me, "--format is pem, p7b, p7b-pem or zip");
        goto out;
    }
    rc = cli_open_ca_ro(dir, &c);
    if (rc == P11CA_OK)
        rc = build_chain(c, argv[optind], root || !strcmp(fmt, "zip"), sk);
    if (rc != P11CA_OK)
        goto out;
    /* Made in memory, then written like every output (cli_write_out). */
    f = open_memstream(&buf, &len);
    if (!f) {
        rc = cli_error(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    rc = !strcmp(fmt, "pem")   ? write_pem_bundle(sk, f)
         : !strcmp(fmt, "zip") ? write_zip(sk, f)
                               : write_p7b(sk, f, !strcmp(fmt, "p7b-pem"));
    if (fclose(f) != 0 || rc != P11CA_OK)
        rc = cli_error(P11CA_E_INTERNAL, "cannot encode the chain");
    else
        rc = cli_write_out(cli, out, 0644, buf, len);
    if (rc == P11CA_OK && !cli->json)
        printf("wrote %s (%d certificates, %s)\n", out, sk_X509_num(sk), fmt);
out:
    sk_X509_pop_free(sk, X509_free);
    free(buf);
    ca_close(c);
    return rc;
}

const struct cli_cmd cli_p12_cmds[] = {
    {"export-p12", NULL,
     "--key KEY.pem --cert CERT.pem [--chain CHAIN.pem] --out OUT.p12 "
     "[--password-file FILE] [--name NAME] [--legacy]",
     "Bundle a SOFTWARE key with its certificate (and chain) as PKCS#12, "
     "AES-256-CBC with PBKDF2 and a SHA-256 MAC; --legacy gives 3DES and "
     "SHA-1 for older Windows/IIS. Token keys are refused: they cannot "
     "leave the token.",
     "--key KEY.pem\tthe private key file (never a pkcs11: URI)\n"
     "--cert CERT.pem\tits certificate\n"
     "--chain CHAIN.pem\tissuer certificates to include\n"
     "--out OUT.p12\twhere to write\n"
     "--password-file FILE\tthe export password (mode 0600); else asked\n"
     "--name NAME\tthe friendly name\n"
     "--legacy\t3DES/SHA-1 instead of AES-256/SHA-256",
     cmd_export_p12},
    {"export-chain", NULL,
     "[--dir DIR] --out FILE [--format pem|p7b|p7b-pem|zip] [--root] SERIAL",
     "Write a certificate of the registry with its chain: a PEM bundle, a "
     "PKCS#7 (.p7b), or a zip of certificate.crt, intermediate*.crt and "
     "root.crt like commercial CAs' downloads.",
     "--dir DIR\tthe CA directory (or P11CA_CA_DIR)\n"
     "--format F\tpem (default), p7b (DER), p7b-pem, zip\n"
     "--root\tinclude the root certificate (always in a zip)",
     cmd_export_chain},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
