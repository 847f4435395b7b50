/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: a CSR (PEM or DER) through ca_req_new against each profile
 * of a fixed ca.cnf (the default profiles and one that restricts every
 * name and the subject).  Each decision is a request or a refusal with a
 * message, input or policy; an accepted request obeys its profile.
 *
 * A mutated CSR no longer verifies, so its names would never reach the
 * policy: a CSR whose key is one of the seed keys below and whose
 * signature fails is decided twice, as it is and signed again. */
#include "config.h"

#include "fuzz.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "fuzz-ca.h"

/* The keys of the seed CSRs (tests/fuzz/corpus/csr-policy; made for that
 * corpus only, see docs/internals/fuzzing.md). */
static const char *const seed_keys_pem[] = {
    /* P-256 */
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCLCkF7FIr3weqA4/\n"
    "S+wI6XEtDZWEvI8H7A7tu8QYsIyhRANCAAQG2J5rBbR0yvO/u06MaSZYRL2ZcHyS\n"
    "F9uLM1PZS3aBjIAIwohAfU4fsOmRlRdyoG2JrTit7G/hHnEEZqRQZlaM\n"
    "-----END PRIVATE KEY-----\n",
    /* Ed25519 */
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIgdLSOej2uFEPU5XotjBNx2SP8JkRDEVMVNUgSayV5E\n"
    "-----END PRIVATE KEY-----\n",
};
#define N_SEED_KEYS (sizeof(seed_keys_pem) / sizeof(seed_keys_pem[0]))
static EVP_PKEY *seed_keys[N_SEED_KEYS];

/* The default profiles (ca_profiles_write_default) and this one. */
static const char restricted[] =
    "[ profiles ]\n"
    "restricted = profile_restricted\n"
    "[ profile_restricted ]\n"
    "san = optional\n"
    "allowed_dns = example.com, .example.net\n"
    "allowed_ip = 192.0.2.0/24, 2001:db8::/32\n"
    "allowed_email = example.com, a@example.org\n"
    "allowed_uri = https://example.com/\n"
    "subject_allowed = CN, O, OU, C\n"
    "subject_required = CN\n"
    "cn_in_san = yes\n"
    "key_types = rsa:2048+, ec:P-256, ec:P-384, ed25519, ed448\n"
    "max_days = 90\n";

static ca *the_ca;
/* FUZZ_VERBOSE=1: print each decision (to read what a seed does). */
static bool verbose;

static void cleanup(void)
{
    ca_close(the_ca);
    for (size_t i = 0; i < N_SEED_KEYS; i++)
        EVP_PKEY_free(seed_keys[i]);
}

static void load_seed_keys(void)
{
    for (size_t i = 0; i < N_SEED_KEYS; i++) {
        BIO *b = BIO_new_mem_buf(seed_keys_pem[i], -1);

        FUZZ_CHECK(b != NULL);
        seed_keys[i] = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        FUZZ_CHECK(seed_keys[i] != NULL);
        BIO_free(b);
    }
}

/* The request of @data (exactly one, PEM or DER), or NULL. */
static X509_REQ *req_read(const uint8_t *data, size_t size, bool *pem)
{
    const unsigned char *p = data;
    X509_REQ *req = NULL;
    BIO *b;

    *pem = memmem(data, size, "-----BEGIN", 10) != NULL;
    if (!*pem) {
        req = d2i_X509_REQ(NULL, &p, (long)size);
        if (req && p != data + size) {
            X509_REQ_free(req);
            req = NULL;
        }
        return req;
    }
    b = BIO_new_mem_buf(data, (int)size);
    FUZZ_CHECK(b != NULL);
    req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    return req;
}

/*
 * @data signed again with its seed key, in its own encoding (PEM or DER),
 * when it is a request of a seed key whose signature fails; else NULL.
 * The result is malloc'd, its length in @len.
 */
static uint8_t *resign(const uint8_t *data, size_t size, size_t *len)
{
    X509_REQ *req = NULL;
    EVP_PKEY *pub, *key = NULL;
    uint8_t *out = NULL;
    unsigned char *der = NULL;
    char *pem_data;
    bool pem;
    BIO *b;
    int n;

    if (size > CA_MAX_CSR || !(req = req_read(data, size, &pem)))
        goto out;
    pub = X509_REQ_get0_pubkey(req);
    for (size_t i = 0; pub && !key && i < N_SEED_KEYS; i++)
        if (EVP_PKEY_eq(pub, seed_keys[i]) == 1)
            key = seed_keys[i];
    if (!key || X509_REQ_verify(req, pub) == 1
        || X509_REQ_sign(req, key,
                         EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256())
               <= 0)
        goto out;
    if (pem) {
        FUZZ_CHECK((b = BIO_new(BIO_s_mem())) != NULL);
        if (PEM_write_bio_X509_REQ(b, req) == 1
            && (n = (int)BIO_get_mem_data(b, &pem_data)) > 0) {
            out = (uint8_t *)fuzz_strndup((const uint8_t *)pem_data, (size_t)n);
            *len = (size_t)n;
        }
        BIO_free(b);
    } else if ((n = i2d_X509_REQ(req, &der)) > 0) {
        out = (uint8_t *)fuzz_strndup(der, (size_t)n);
        *len = (size_t)n;
    }
out:
    OPENSSL_free(der);
    X509_REQ_free(req);
    ERR_clear_error();
    return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *text = NULL;
    long len;

    (void)argc;
    (void)argv;
    FUZZ_CHECK(b != NULL);
    ca_profiles_write_default(b);
    FUZZ_CHECK(BIO_write(b, restricted, sizeof(restricted) - 1) > 0);
    len = BIO_get_mem_data(b, &text);
    FUZZ_CHECK(fuzz_ca_load(text, (size_t)len, &the_ca) == P11CA_OK);
    FUZZ_CHECK(the_ca != NULL && ca_profile_count(the_ca) == 5);
    BIO_free(b);
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    load_seed_keys();
    atexit(cleanup);
    return 0;
}

/* What an accepted request must satisfy under @p. */
static void check_request(const ca_profile *p, const ca_req *r)
{
    int n = r->san ? sk_GENERAL_NAME_num(r->san) : 0;

    FUZZ_CHECK(r->csr != NULL && r->pub != NULL && r->subject != NULL);
    FUZZ_CHECK(r->profile == p);
    FUZZ_CHECK(r->days == p->default_days && r->days <= p->max_days);
    FUZZ_CHECK(p->san != CA_SAN_REQUIRED || n > 0);
    FUZZ_CHECK(p->san != CA_SAN_FORBIDDEN || n == 0);
    FUZZ_CHECK(ca_profile_check_key(p, r->pub) == P11CA_OK);
    /* EC keys by the name of their curve only (RFC 5480). */
    if (EVP_PKEY_is_a(r->pub, "EC")) {
        char enc[32] = "";
        FUZZ_CHECK(EVP_PKEY_get_utf8_string_param(
            r->pub, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), NULL));
        FUZZ_CHECK(strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0);
    }
    for (int i = 0; i < n; i++) {
        int type = sk_GENERAL_NAME_value(r->san, i)->type;
        FUZZ_CHECK(type == GEN_DNS || type == GEN_IPADD || type == GEN_EMAIL
                   || type == GEN_URI);
    }
    FUZZ_CHECK(X509_NAME_entry_count(r->subject) > 0 || n > 0);
    for (size_t i = 0; i < p->n_subject_required; i++)
        FUZZ_CHECK(X509_NAME_get_index_by_NID(r->subject,
                                              p->subject_required_nids[i], -1)
                   >= 0);
}

/* The decision of every profile about the CSR @data. */
static void decide(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < ca_profile_count(the_ca); i++) {
        const ca_profile *p = ca_profile_at(the_ca, i);
        ca_issue_opts o = {.profile = p->name};
        ca_req *r = NULL;
        int rc;

        p11ca_err_clear();
        rc = ca_req_new(the_ca, data, size, "the CSR", &o, &r);
        if (rc == P11CA_OK) {
            FUZZ_CHECK(r != NULL);
            check_request(p, r);
        } else {
            /* Refused: why, in a message, as bad input or by policy. */
            FUZZ_CHECK(r == NULL);
            FUZZ_CHECK(rc == P11CA_E_INPUT || rc == P11CA_E_POLICY);
            FUZZ_CHECK(p11ca_err_rc() == rc);
            FUZZ_CHECK(p11ca_err_message()[0] != '\0');
        }
        if (verbose)
            printf("  %s: %s\n", p->name,
                   rc == P11CA_OK ? "accepted" : p11ca_err_message());
        ca_req_free(r);
        ERR_clear_error();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = 0;
    uint8_t *again;

    decide(data, size);
    again = resign(data, size, &len);
    if (again) {
        if (verbose)
            printf("signed again with its seed key:\n");
        decide(again, len);
        free(again);
    }
    return 0;
}
