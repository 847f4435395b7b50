/* SPDX-License-Identifier: Apache-2.0 */
/* DECODER for key files that name a token key: pkcs11-provider's
 * "PKCS#11 PROVIDER URI" PEM files (a SEQUENCE of a description and the
 * key's URI), read as the key the URI names; and the writer of such files
 * for the encoder (p11ca-key-file = uri-pem). */
#include "config.h"

#include <openssl/asn1t.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

/* The DER structure name between our two decoders (pkcs11-provider's). */
#define URI_STRUCTURE "pk11-uri"
/* A URI longer than this is not a key file of ours (RFC 7512 URIs of
 * tokens and objects are far shorter). */
#define URI_FILE_MAX 4096

/*
 * The file's content, as pkcs11-provider defines it:
 *   SEQUENCE { desc VisibleString ("PKCS#11 Provider URI v1.0"),
 *              uri  UTF8String }
 */
typedef struct prov_uri_file {
    ASN1_VISIBLESTRING *desc;
    ASN1_UTF8STRING *uri;
} PROV_URI_FILE;

/* clang-format off */
ASN1_SEQUENCE(PROV_URI_FILE) = {
    ASN1_SIMPLE(PROV_URI_FILE, desc, ASN1_VISIBLESTRING),
    ASN1_SIMPLE(PROV_URI_FILE, uri, ASN1_UTF8STRING),
} static_ASN1_SEQUENCE_END(PROV_URI_FILE)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(PROV_URI_FILE)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(PROV_URI_FILE)
/* The macros end without a semicolon: a declaration ends their block. */
int prov_uri_pem_write(prov_ctx *ctx, BIO *out, const char *uri);
/* clang-format on */

int prov_uri_pem_write(prov_ctx *ctx, BIO *out, const char *uri)
{
    PROV_URI_FILE *f = PROV_URI_FILE_new();
    unsigned char *der = NULL;
    int len = -1, ok = 0;

    if (f
        && ASN1_STRING_set(f->desc, PROV_URI_PEM_DESC,
                           (int)strlen(PROV_URI_PEM_DESC))
        && ASN1_STRING_set(f->uri, uri, (int)strlen(uri)))
        len = i2d_PROV_URI_FILE(f, &der);
    if (len > 0)
        ok = PEM_write_bio(out, PROV_URI_PEM_LABEL, "", der, len) > 0;
    if (!ok)
        prov_raise(ctx, PROV_R_INTERNAL, "%s: cannot write the URI file", uri);
    OPENSSL_free(der);
    PROV_URI_FILE_free(f);
    return ok;
}

static OSSL_FUNC_decoder_newctx_fn dec_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_decode_fn pem_decode;

static void *dec_newctx(void *provctx)
{
    return provctx; /* no state of its own */
}

static void dec_freectx(void *vctx)
{
}

/*
 * The URI of a pk11-uri DER file (malloc'd), or NULL when the DER is not
 * one: another structure, another description, a URI that is not a
 * bounded string of printable characters.
 */
static char *file_uri(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    PROV_URI_FILE *f = d2i_PROV_URI_FILE(NULL, &p, len);
    const unsigned char *u;
    char *uri = NULL;
    int n;

    if (!f || p != der + len
        || ASN1_STRING_length(f->desc) != (int)strlen(PROV_URI_PEM_DESC)
        || memcmp(ASN1_STRING_get0_data(f->desc), PROV_URI_PEM_DESC,
                  strlen(PROV_URI_PEM_DESC))
               != 0)
        goto out;
    u = ASN1_STRING_get0_data(f->uri);
    n = ASN1_STRING_length(f->uri);
    if (n <= 0 || n > URI_FILE_MAX || memchr(u, '\0', (size_t)n))
        goto out;
    uri = strndup((const char *)u, (size_t)n);
out:
    PROV_URI_FILE_free(f);
    return uri;
}

/*
 * Whether the file's URI names a key this provider can load: the key is
 * loaded here once (and kept by the key cache), so that what is wrong
 * reaches the application.  The key decoders below run where OpenSSL's
 * store discards their errors ("unsupported"); this one's errors stay.
 * Returns 1, or 0 with the reason raised.
 */
static int check_file(prov_ctx *ctx, const unsigned char *der, long len,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    char *uri = file_uri(der, len);
    prov_key *key = NULL;

    if (!uri) {
        prov_raise(
            ctx, PROV_R_BAD_INPUT,
            "a " PROV_URI_PEM_LABEL
            " file that is not SEQUENCE { VisibleString \"" PROV_URI_PEM_DESC
            "\", UTF8String URI }");
        return 0;
    }
    if (strncmp(uri, "pkcs11:", 7) != 0)
        prov_raise(ctx, PROV_R_BAD_URI,
                   "a " PROV_URI_PEM_LABEL " file that names no pkcs11: URI");
    else
        key = prov_store_fetch_key(ctx, uri, pw_cb, pw_cbarg);
    free(uri);
    prov_key_unref(key);
    return key != NULL;
}

/*
 * PEM to DER: a "PKCS#11 PROVIDER URI" block becomes DER of structure
 * pk11-uri for the key decoders below, once its key is found; anything
 * else is not ours (carry on, nothing raised: OpenSSL tries every PEM
 * decoder on every PEM).
 */
static int pem_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
                      OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    prov_ctx *ctx = vctx;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    BIO *in;
    int ok = 1, found;

    if (!(in = BIO_new_from_core_bio(ctx->corectx, cin)))
        return 1;
    prov_set_mark(ctx);
    found = PEM_read_bio(in, &name, &header, &der, &len) > 0
            && strcmp(name, PROV_URI_PEM_LABEL) == 0;
    prov_pop_to_mark(ctx);
    if (found && !(ok = check_file(ctx, der, len, pw_cb, pw_cbarg)))
        found = false;
    if (found) {
        OSSL_PARAM params[3];

        params[0] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA,
                                                      der, (size_t)len);
        params[1] = OSSL_PARAM_construct_utf8_string(
            OSSL_OBJECT_PARAM_DATA_STRUCTURE, (char *)URI_STRUCTURE, 0);
        params[2] = OSSL_PARAM_construct_end();
        ok = object_cb(params, object_cbarg);
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(in);
    return ok;
}

/*
 * DER of structure pk11-uri to the token key it names, for the decoder of
 * key type @type: a key of another type is left to that type's decoder.
 * A file whose key cannot be loaded (no such key, PIN refused, a
 * module-path= that may not load a module) fails with the reason.
 */
/*
 * What a URI file can hold, read from @in into @buf (@size bytes): the
 * number of bytes, or -1 when there is more (not a URI file).  Read, never
 * BIO_get_mem_data: the core BIO may be a file, whose BIO_CTRL_INFO is its
 * position and leaves the pointer unset.  OpenSSL rewinds the input for
 * the next decoder.
 */
static long read_input(BIO *in, unsigned char *buf, size_t size)
{
    size_t n = 0;
    int r;

    while (n < size && (r = BIO_read(in, buf + n, (int)(size - n))) > 0)
        n += (size_t)r;
    return n < size ? (long)n : -1;
}

static int key_decode(prov_ctx *ctx, prov_key_type type, OSSL_CORE_BIO *cin,
                      OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    unsigned char der[URI_FILE_MAX + 256];
    prov_key *key = NULL;
    char *uri = NULL;
    long len;
    BIO *in;
    int ok = 1;

    if (!(in = BIO_new_from_core_bio(ctx->corectx, cin)))
        return 1;
    len = read_input(in, der, sizeof(der));
    prov_set_mark(ctx);
    uri = len > 0 ? file_uri(der, len) : NULL;
    prov_pop_to_mark(ctx);
    if (!uri)
        goto out;
    if (strncmp(uri, "pkcs11:", 7) != 0)
        goto out; /* the PEM decoder said why */
    key = prov_store_fetch_key(ctx, uri, pw_cb, pw_cbarg);
    if (!key) {
        ok = 0;
        goto out;
    }
    if (key->type == type) {
        int otype = OSSL_OBJECT_PKEY;
        OSSL_PARAM params[4];

        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &otype);
        params[1] = OSSL_PARAM_construct_utf8_string(
            OSSL_OBJECT_PARAM_DATA_TYPE, (char *)prov_key_type_name(type), 0);
        /* As from the store: the key pointer; keymgmt load() takes a ref. */
        params[2] = OSSL_PARAM_construct_octet_string(
            OSSL_OBJECT_PARAM_REFERENCE, &key, sizeof(key));
        params[3] = OSSL_PARAM_construct_end();
        ok = object_cb(params, object_cbarg);
    }
out:
    prov_key_unref(key);
    free(uri);
    BIO_free(in);
    return ok;
}

#define IMPL_KEY_DECODER(prefix, TYPE)                                         \
    static OSSL_FUNC_decoder_decode_fn prefix##_decode;                        \
    static int prefix##_decode(                                                \
        void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *cb,      \
        void *cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)          \
    {                                                                          \
        if (!(selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && selection != 0)  \
            return 1; /* a public key is asked for: not a key file's */        \
        return key_decode(vctx, TYPE, cin, cb, cbarg, pw_cb, pw_cbarg);        \
    }                                                                          \
    static const OSSL_DISPATCH prefix##_decoder_functions[] = {                \
        {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx},                \
        {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},              \
        {OSSL_FUNC_DECODER_DECODE, (void (*)(void))prefix##_decode},           \
        {0, NULL},                                                             \
    }

IMPL_KEY_DECODER(rsa, PROV_KEY_RSA);
IMPL_KEY_DECODER(rsapss, PROV_KEY_RSA_PSS);
IMPL_KEY_DECODER(ec, PROV_KEY_EC);
IMPL_KEY_DECODER(ed25519, PROV_KEY_ED25519);
IMPL_KEY_DECODER(ed448, PROV_KEY_ED448);

static const OSSL_DISPATCH pem_decoder_functions[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem_decode},
    {0, NULL},
};

#define KEY_DEC(names, prefix)                                                 \
    {                                                                          \
        names, PROV_PROPS ",input=der,structure=" URI_STRUCTURE,               \
            prefix##_decoder_functions, NULL                                   \
    }

const OSSL_ALGORITHM prov_decoders[] = {
    {"DER", PROV_PROPS ",input=pem", pem_decoder_functions,
     "PKCS#11 PROVIDER URI PEM files to DER"},
    KEY_DEC("RSA:rsaEncryption:1.2.840.113549.1.1.1", rsa),
    KEY_DEC("RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", rsapss),
    KEY_DEC("EC:id-ecPublicKey:1.2.840.10045.2.1", ec),
    KEY_DEC("ED25519:1.3.101.112", ed25519),
    KEY_DEC("ED448:1.3.101.113", ed448),
    {NULL, NULL, NULL, NULL},
};
