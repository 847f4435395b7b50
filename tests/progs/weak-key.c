/* SPDX-License-Identifier: Apache-2.0 */
/* Test helper that puts the kind of key p11ca must refuse as a CA key on a
 * token: one generated extractable, or one imported from a key file (never
 * "always sensitive"); or one that needs the PIN at every use (always-auth);
 * or takes the public key object away from a key pair (drop-public).  Raw
 * PKCS#11, PIN from a file, nothing on argv. */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <p11-kit/p11-kit.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11/p11.h"

struct ctx {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
};

static int open_token(struct ctx *c, const char *module, const char *label,
                      const char *pinfile)
{
    char pin[P11_MAX_PIN_LEN + 1];
    CK_SLOT_ID slots[32];
    CK_ULONG n = 32;
    int len = p11_pin_read_file(pinfile, pin, P11_MAX_PIN_LEN);
    CK_RV rv = CKR_GENERAL_ERROR;

    c->f = p11_kit_module_load(module, 0);
    if (len < 0 || !c->f || p11_kit_module_initialize(c->f) != CKR_OK
        || c->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        size_t l = strlen(label);
        if (c->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && l <= 32
            && memcmp(ti.label, label, l) == 0
            && (l == 32 || ti.label[l] == ' ')) {
            rv = c->f->C_OpenSession(slots[i],
                                     CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                     NULL, &c->s);
            if (rv == CKR_OK)
                rv = c->f->C_Login(c->s, CKU_USER, (CK_UTF8CHAR *)pin,
                                   (CK_ULONG)len);
            break;
        }
    }
    memset(pin, 0, sizeof(pin));
    return rv == CKR_OK;
}

/* An EC P-256 key pair generated with CKA_EXTRACTABLE=TRUE, or (when
 * @always_auth) a sensitive one with CKA_ALWAYS_AUTHENTICATE=TRUE: every
 * use needs a context-specific login (as on PIV cards). */
static int generate(struct ctx *c, const char *label, unsigned char id,
                    bool always_auth)
{
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &t, sizeof(t)},
        {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, &id, 1},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &t, sizeof(t)},
        {CKA_PRIVATE, &t, sizeof(t)},
        {CKA_SENSITIVE, &t, sizeof(t)},
        {CKA_EXTRACTABLE, always_auth ? &f : &t, sizeof(t)},
        {CKA_SIGN, &t, sizeof(t)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, &id, 1},
        {CKA_ALWAYS_AUTHENTICATE, &t, sizeof(t)},
    };

    return c->f->C_GenerateKeyPair(c->s, &m, pub, 4, priv, always_auth ? 8 : 7,
                                   &hpub, &hpriv)
           == CKR_OK;
}

/* The RSA key of a PEM file created on the token (sensitive from now on,
 * but not "always sensitive"). */
static int import_rsa(struct ctx *c, const char *label, unsigned char id,
                      const char *keyfile)
{
    static const char *const names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    static const CK_ATTRIBUTE_TYPE types[] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT,
    };
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE a[16] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &t, sizeof(t)},
        {CKA_PRIVATE, &t, sizeof(t)},
        {CKA_SENSITIVE, &t, sizeof(t)},
        {CKA_SIGN, &t, sizeof(t)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, &id, 1},
    };
    unsigned char bufs[8][1024];
    CK_OBJECT_HANDLE h;
    FILE *fp = fopen(keyfile, "r");
    EVP_PKEY *pk = fp ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;
    int ok = pk != NULL;

    if (fp)
        fclose(fp);
    for (int i = 0; ok && i < 8; i++) {
        BIGNUM *bn = NULL;
        int n;
        ok = EVP_PKEY_get_bn_param(pk, names[i], &bn);
        n = ok ? BN_bn2bin(bn, bufs[i]) : 0;
        a[8 + i] = (CK_ATTRIBUTE){types[i], bufs[i], (CK_ULONG)n};
        BN_free(bn);
    }
    ok = ok && c->f->C_CreateObject(c->s, a, 16, &h) == CKR_OK;
    EVP_PKEY_free(pk);
    return ok;
}

/* Destroy the public key object labelled @label: a private key alone. */
static int drop_public(struct ctx *c, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    int ok = c->f->C_FindObjectsInit(c->s, t, 2) == CKR_OK
             && c->f->C_FindObjects(c->s, &h, 1, &n) == CKR_OK;

    c->f->C_FindObjectsFinal(c->s);
    return ok && n == 1 && c->f->C_DestroyObject(c->s, h) == CKR_OK;
}

int main(int argc, char **argv)
{
    struct ctx c = {0};
    int ok;

    if (argc < 7) {
        fprintf(
            stderr,
            "usage: weak-key MODULE TOKEN PINFILE extractable|always-auth|import|drop-public LABEL ID [KEYFILE]\n");
        return 2;
    }
    if (!open_token(&c, argv[1], argv[2], argv[3])) {
        fprintf(stderr, "weak-key: cannot open token %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[4], "extractable") == 0
        || strcmp(argv[4], "always-auth") == 0)
        ok = generate(&c, argv[5], (unsigned char)strtoul(argv[6], NULL, 16),
                      strcmp(argv[4], "always-auth") == 0);
    else if (strcmp(argv[4], "drop-public") == 0)
        ok = drop_public(&c, argv[5]);
    else
        ok = argc > 7
             && import_rsa(&c, argv[5],
                           (unsigned char)strtoul(argv[6], NULL, 16), argv[7]);
    c.f->C_Logout(c.s);
    c.f->C_CloseSession(c.s);
    p11_kit_module_finalize(c.f);
    p11_kit_module_release(c.f);
    if (!ok)
        fprintf(stderr, "weak-key: %s failed\n", argv[4]);
    return ok ? 0 : 1;
}
