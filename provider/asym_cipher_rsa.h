/* SPDX-License-Identifier: Apache-2.0 */
/* The RSA asym cipher context, shared by asym_cipher_rsa.c (context,
 * parameters, encryption) and asym_cipher_rsa_dec.c (decryption). */
#ifndef P11CA_ASYM_CIPHER_RSA_H
#define P11CA_ASYM_CIPHER_RSA_H

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "prov.h"

/* SSL_MAX_MASTER_KEY_LENGTH: the TLS RSA premaster secret. */
#define TLS_PREMASTER_LEN 48

/*
 * Implicit rejection on or off (OpenSSL 3.2's
 * OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION).  OpenSSL 3.0 has no
 * translation for `-pkeyopt rsa_pkcs1_implicit_rejection:N`: it passes
 * the name as it is, so that name is a parameter too.
 */
#define PARAM_IMPLICIT_REJECTION      "implicit-rejection"
#define PARAM_IMPLICIT_REJECTION_CTRL "rsa_pkcs1_implicit_rejection"

/* The digests that PKCS#11 OAEP can name, for the label hash and MGF1. */
typedef struct oaep_md {
    const char *name;    /* OpenSSL's canonical name */
    const char *display; /* for messages */
    CK_MECHANISM_TYPE ckm;
    CK_RSA_PKCS_MGF_TYPE mgf;
} oaep_md;

typedef struct rsa_enc_ctx {
    prov_ctx *ctx;
    prov_key *key;
    int pad;             /* RSA_*_PADDING */
    const oaep_md *md;   /* OAEP label hash; NULL: SHA-1 */
    const oaep_md *mgf1; /* MGF1 hash; NULL: the OAEP hash */
    char *md_props;      /* kept for get_ctx_params only */
    char *mgf1_props;
    unsigned char *label; /* OAEP label; NULL: empty */
    size_t label_len;
    unsigned int client_version;     /* TLS: version in the ClientHello */
    unsigned int alt_version;        /* TLS: negotiated (rollback bug) */
    unsigned int implicit_rejection; /* PKCS#1 v1.5: 1 (default) or 0 */
} rsa_enc_ctx;

/* The OAEP digest in effect (SHA-1 when unset), and MGF1's. */
const oaep_md *prov_rsa_enc_md(const rsa_enc_ctx *c);
const oaep_md *prov_rsa_enc_mgf1(const rsa_enc_ctx *c);

/* The modulus length in bytes. */
static inline size_t prov_rsa_enc_size(const rsa_enc_ctx *c)
{
    int n = EVP_PKEY_get_size(c->key->pub);

    return n > 0 ? (size_t)n : 0;
}

/* The key's URI, for messages. */
static inline const char *prov_rsa_enc_key_name(const prov_key *key)
{
    return key->uri ? key->uri : "the imported public key";
}

/* prov_rsa_enc_sw_params - the context's settings as parameters for the
 * default provider (@p: room for 5). */
void prov_rsa_enc_sw_params(rsa_enc_ctx *c, OSSL_PARAM *p);

/* The decrypt callback (asym_cipher_rsa_dec.c). */
OSSL_FUNC_asym_cipher_decrypt_fn prov_rsa_enc_decrypt;

#endif
