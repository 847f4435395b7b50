/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: ca.cnf text through NCONF and ca_profiles_load.  The text
 * gives profiles or a clean refusal (P11CA_E_INPUT with a message); the
 * profiles it gives are coherent, and their name policy answers for a
 * fixed set of well-formed names and subjects. */
#include "config.h"

#include "fuzz.h"

#include <openssl/x509v3.h>

#include "fuzz-ca.h"

/* Names as ca_req_new hands them to the policy (checked already). */
static const char *const names[] = {
    "DNS:example.com",
    "DNS:www.example.net",
    "DNS:a.b.example.org",
    "IP:192.0.2.7",
    "IP:10.1.2.3",
    "IP:2001:db8::1",
    "email:a@example.org",
    "email:b@x.example.com",
    "URI:https://example.com/x",
    "URI:spiffe://example.org/w",
};
static const char *const subjects[] = {
    "/CN=example.com",
    "/CN=www.example.net/O=Example/C=DE",
    "/O=no common name",
    "/CN=192.0.2.7/OU=x/serialNumber=42",
};

static GENERAL_NAMES *san;
static X509_NAME *subject[sizeof(subjects) / sizeof(subjects[0])];

static void cleanup(void)
{
    GENERAL_NAMES_free(san);
    for (size_t i = 0; i < sizeof(subject) / sizeof(subject[0]); i++)
        X509_NAME_free(subject[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    GENERAL_NAMES *one;

    (void)argc;
    (void)argv;
    FUZZ_CHECK((san = sk_GENERAL_NAME_new_null()) != NULL);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        FUZZ_CHECK(ca_san_parse(names[i], &one) == P11CA_OK);
        FUZZ_CHECK(sk_GENERAL_NAME_push(san, sk_GENERAL_NAME_shift(one)) > 0);
        GENERAL_NAMES_free(one);
    }
    for (size_t i = 0; i < sizeof(subject) / sizeof(subject[0]); i++)
        FUZZ_CHECK(ca_name_parse(subjects[i], &subject[i]) == P11CA_OK);
    atexit(cleanup);
    return 0;
}

/* A profile that loaded: what the rest of the CA relies on. */
static void check_profile(ca *c, const ca_profile *p)
{
    FUZZ_CHECK(p->name != NULL && p->section != NULL);
    FUZZ_CHECK(ca_profile_find(c, p->name) != NULL);
    FUZZ_CHECK(p->n_rules > 0 && p->n_rules <= CA_MAX_KEY_RULES);
    FUZZ_CHECK(p->default_days > 0 && p->default_days <= p->max_days);
    FUZZ_CHECK(p->n_ip_ranges <= CA_MAX_IP_RANGES);
    FUZZ_CHECK(p->n_subject_allowed <= CA_MAX_SUBJECT_ATTRS);
    FUZZ_CHECK(p->n_subject_required <= CA_MAX_SUBJECT_ATTRS);
    FUZZ_CHECK(p->pathlen >= -1 && p->pathlen <= 32);
    FUZZ_CHECK(p->supersede != REG_SUPERSEDE_GRACE
               || (p->supersede_grace > 0
                   && p->supersede_grace <= CA_SUPERSEDE_GRACE_MAX));
    for (size_t i = 0; i < p->n_ip_ranges; i++)
        FUZZ_CHECK((p->ip_ranges[i].len == 4 || p->ip_ranges[i].len == 16)
                   && p->ip_ranges[i].prefix
                          <= (unsigned)p->ip_ranges[i].len * 8);
}

/* The policy answers, yes or no with a message, for every name. */
static void check_policy(const ca_profile *p)
{
    int rc;

    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        p11ca_err_clear();
        rc = ca_policy_san(p, sk_GENERAL_NAME_value(san, i), "fuzz");
        FUZZ_CHECK(rc == P11CA_OK
                   || (rc == P11CA_E_POLICY && p11ca_err_message()[0]));
    }
    for (size_t i = 0; i < sizeof(subject) / sizeof(subject[0]); i++) {
        p11ca_err_clear();
        rc = ca_policy_subject(p, subject[i], san, "fuzz");
        FUZZ_CHECK(rc == P11CA_OK
                   || (rc == P11CA_E_POLICY && p11ca_err_message()[0]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ca *c = NULL;
    int rc;

    p11ca_err_clear();
    rc = fuzz_ca_load(data, size, &c);
    if (rc != P11CA_OK) {
        FUZZ_CHECK(rc == P11CA_E_INPUT);
        FUZZ_CHECK(p11ca_err_rc() == rc && p11ca_err_message()[0] != '\0');
    } else {
        for (size_t i = 0; c && i < ca_profile_count(c); i++) {
            check_profile(c, ca_profile_at(c, i));
            check_policy(ca_profile_at(c, i));
        }
    }
    ca_close(c);
    return 0;
}
