/* SPDX-License-Identifier: Apache-2.0 */
/* Issuance profiles: the [ profiles ] of ca.cnf, their sections, the
 * default profiles written at init, and the subject key rules. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "ca/internal.h"

#define RSA_MAX_BITS 16384

static const char *const profile_keys[] = {
    "description",     "basic_constraints", "pathlen",          "key_usage",
    "key_usage_rsa",   "ext_key_usage",     "ocsp_nocheck",     "san",
    "allowed_dns",     "allowed_ip",        "allowed_email",    "allowed_uri",
    "subject_allowed", "subject_required",  "cn_in_san",        "key_types",
    "default_days",    "max_days",          "subject_override", "extensions",
    "client_id",       "supersede",         "rate_limit",
};

static int profile_load(ca *c, const char *name, const char *section,
                        ca_profile *p);
static int profile_strings(ca *c, ca_profile *p);
static int profile_numbers(ca *c, ca_profile *p);
static int profile_check_keys(ca *c, const char *section);
static int check_ext_text(const ca_profile *p, int nid, const char *key,
                          const char *value);
static int rules_parse(ca_profile *p);
static int rule_parse(const char *tok, ca_key_rule *r);
static int curve_nid(const char *name);
static void profile_clear(ca_profile *p);
static bool rule_matches(const ca_key_rule *r, EVP_PKEY *pk);
static bool eku_for_clients(const char *eku);
static int profile_client_id(ca *c, ca_profile *p);
static int profile_supersede(ca *c, ca_profile *p);

size_t ca_profile_count(ca *c)
{
    return c->n_profiles;
}

const ca_profile *ca_profile_at(ca *c, size_t i)
{
    return i < c->n_profiles ? &c->profiles[i] : NULL;
}

const ca_profile *ca_profile_find(ca *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_profiles; i++)
        if (strcmp(c->profiles[i].name, name) == 0)
            return &c->profiles[i];
    return NULL;
}

const char *ca_client_id_rule_name(ca_client_id_rule rule)
{
    switch (rule) {
    case CA_CLIENT_ID_NONE:
        return "none";
    case CA_CLIENT_ID_REQUIRED:
        return "required";
    default:
        return "cn";
    }
}

int ca_profiles_load(ca *c)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(c->conf, "profiles");
    int n = sk ? sk_CONF_VALUE_num(sk) : 0, rc = P11CA_OK;

    ERR_clear_error();
    if (n == 0)
        return P11CA_OK;
    c->profiles = calloc((size_t)n, sizeof(*c->profiles));
    if (!c->profiles)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (int i = 0; i < n && rc == P11CA_OK; i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(sk, i);
        rc = profile_load(c, v->name, v->value, &c->profiles[i]);
        c->n_profiles = (size_t)i + 1;
    }
    return rc;
}

void ca_profiles_free(ca *c)
{
    for (size_t i = 0; i < c->n_profiles; i++)
        profile_clear(&c->profiles[i]);
    free(c->profiles);
    c->profiles = NULL;
    c->n_profiles = 0;
}

static void profile_clear(ca_profile *p)
{
    free(p->name);
    free(p->section);
    free(p->description);
    free(p->key_usage);
    free(p->key_usage_rsa);
    free(p->ext_key_usage);
    free(p->allowed_dns);
    free(p->allowed_ip);
    free(p->allowed_email);
    free(p->allowed_uri);
    free(p->subject_allowed);
    free(p->subject_required);
    free(p->key_types);
    free(p->extensions);
    memset(p, 0, sizeof(*p));
}

/* Refuse keys a profile section does not know (typos would be ignored). */
static int profile_check_keys(ca *c, const char *section)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(c->conf, section);
    size_t nk = sizeof(profile_keys) / sizeof(profile_keys[0]), j;

    ERR_clear_error();
    if (!sk)
        return p11ca_err_set(P11CA_E_INPUT,
                             "ca.cnf: the profile section [ %s ] is missing",
                             section);
    for (int i = 0; i < sk_CONF_VALUE_num(sk); i++) {
        const char *name = sk_CONF_VALUE_value(sk, i)->name;
        for (j = 0; j < nk && strcmp(name, profile_keys[j]) != 0; j++)
            ;
        if (j == nk)
            return p11ca_err_set(P11CA_E_INPUT,
                                 "ca.cnf [ %s ]: unknown key \"%s\"", section,
                                 name);
    }
    return P11CA_OK;
}

static int dup_opt(ca *c, const char *section, const char *key, char **out)
{
    const char *v = ca_conf_get(c->conf, section, key);

    *out = v ? strdup(v) : NULL;
    return v && !*out ? p11ca_err_set(P11CA_E_NOMEM, "out of memory")
                      : P11CA_OK;
}

static int profile_strings(ca *c, ca_profile *p)
{
    const char *s = p->section;
    int rc = dup_opt(c, s, "description", &p->description);

    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "key_usage", &p->key_usage);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "key_usage_rsa", &p->key_usage_rsa);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "ext_key_usage", &p->ext_key_usage);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "allowed_dns", &p->allowed_dns);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "allowed_ip", &p->allowed_ip);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "allowed_email", &p->allowed_email);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "allowed_uri", &p->allowed_uri);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "subject_allowed", &p->subject_allowed);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "subject_required", &p->subject_required);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "key_types", &p->key_types);
    if (rc == P11CA_OK)
        rc = dup_opt(c, s, "extensions", &p->extensions);
    if (rc == P11CA_OK)
        rc = check_ext_text(p, NID_key_usage, "key_usage", p->key_usage);
    if (rc == P11CA_OK)
        rc =
            check_ext_text(p, NID_key_usage, "key_usage_rsa", p->key_usage_rsa);
    if (rc == P11CA_OK)
        rc = check_ext_text(p, NID_ext_key_usage, "ext_key_usage",
                            p->ext_key_usage);
    if (rc == P11CA_OK && p->extensions
        && !NCONF_get_section(c->conf, p->extensions))
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "ca.cnf [ %s ] extensions = %s: no such section", s,
                           p->extensions);
    ERR_clear_error();
    return rc;
}

/* A keyUsage / extendedKeyUsage value must parse as openssl config text. */
static int check_ext_text(const ca_profile *p, int nid, const char *key,
                          const char *value)
{
    X509_EXTENSION *ext;

    if (!value)
        return P11CA_OK;
    ext = X509V3_EXT_nconf_nid(NULL, NULL, nid, value);
    if (!ext)
        return ca_ossl_err(P11CA_E_INPUT, "ca.cnf [ %s ] %s = %s", p->section,
                           key, value);
    X509_EXTENSION_free(ext);
    return P11CA_OK;
}

static int profile_numbers(ca *c, ca_profile *p)
{
    const char *s = p->section, *bc, *san;
    unsigned pathlen = 0, dd = 0, md = 0;
    int rc;

    bc = ca_conf_get(c->conf, s, "basic_constraints");
    if (bc && strcmp(bc, "ca") != 0 && strcmp(bc, "leaf") != 0)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ %s ] basic_constraints = %s: say ca or leaf", s, bc);
    p->is_ca = bc && strcmp(bc, "ca") == 0;
    san = ca_conf_get(c->conf, s, "san");
    if (san && strcmp(san, "required") != 0 && strcmp(san, "optional") != 0
        && strcmp(san, "forbidden") != 0)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ %s ] san = %s: say required, optional or forbidden", s,
            san);
    p->san = !san || strcmp(san, "optional") == 0 ? CA_SAN_OPTIONAL
             : strcmp(san, "required") == 0       ? CA_SAN_REQUIRED
                                                  : CA_SAN_FORBIDDEN;
    p->pathlen = -1;
    rc = ca_conf_uint(c->conf, s, "pathlen", 0, 32, &pathlen);
    if (rc == P11CA_OK && ca_conf_get(c->conf, s, "pathlen"))
        p->pathlen = (int)pathlen;
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, s, "default_days", 0, 36500, &dd);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, s, "max_days", 0, 36500, &md);
    p->max_days = md ? md : dd ? dd : 365;
    p->default_days = dd ? dd : p->max_days < 365 ? p->max_days : 365;
    if (rc == P11CA_OK && p->default_days > p->max_days)
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ %s ]: default_days %u is more than max_days %u", s,
            p->default_days, p->max_days);
    if (rc == P11CA_OK)
        rc = ca_conf_bool(c->conf, s, "ocsp_nocheck", false, &p->ocsp_nocheck);
    if (rc == P11CA_OK)
        rc = ca_conf_bool(c->conf, s, "subject_override", false,
                          &p->subject_override);
    if (rc == P11CA_OK)
        rc = ca_conf_bool(c->conf, s, "cn_in_san", false, &p->cn_in_san);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, s, "rate_limit", 0, 1000000, &p->rate_limit);
    return rc;
}

static int profile_load(ca *c, const char *name, const char *section,
                        ca_profile *p)
{
    int rc = profile_check_keys(c, section);

    if (rc != P11CA_OK)
        return rc;
    p->name = strdup(name);
    p->section = strdup(section);
    if (!p->name || !p->section)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = profile_strings(c, p);
    if (rc == P11CA_OK)
        rc = profile_numbers(c, p);
    if (rc == P11CA_OK)
        rc = rules_parse(p);
    if (rc == P11CA_OK)
        rc = ca_policy_load(p);
    if (rc == P11CA_OK)
        rc = profile_client_id(c, p);
    if (rc == P11CA_OK)
        rc = profile_supersede(c, p);
    return rc;
}

/* Whether an ext_key_usage value (already checked to parse) lets the
 * certificate authenticate a client: clientAuth or anyExtendedKeyUsage. */
static bool eku_for_clients(const char *eku)
{
    X509_EXTENSION *ext =
        X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage, eku);
    EXTENDED_KEY_USAGE *ku = ext ? X509V3_EXT_d2i(ext) : NULL;
    bool yes = false;

    for (int i = 0; ku && i < sk_ASN1_OBJECT_num(ku) && !yes; i++) {
        int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(ku, i));

        yes = nid == NID_client_auth || nid == NID_anyExtendedKeyUsage;
    }
    EXTENDED_KEY_USAGE_free(ku);
    X509_EXTENSION_free(ext);
    ERR_clear_error();
    return yes;
}

/* client_id = cn | none | required; the default by the key usage. */
static int profile_client_id(ca *c, ca_profile *p)
{
    const char *v = ca_conf_get(c->conf, p->section, "client_id");

    if (!v)
        p->client_id =
            !p->is_ca
                    && (!p->ext_key_usage || eku_for_clients(p->ext_key_usage))
                ? CA_CLIENT_ID_CN
                : CA_CLIENT_ID_NONE;
    else if (strcmp(v, "cn") == 0)
        p->client_id = CA_CLIENT_ID_CN;
    else if (strcmp(v, "none") == 0)
        p->client_id = CA_CLIENT_ID_NONE;
    else if (strcmp(v, "required") == 0)
        p->client_id = CA_CLIENT_ID_REQUIRED;
    else
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ %s ] client_id = %s: say cn, none or required",
            p->section, v);
    return P11CA_OK;
}

int ca_duration_parse(const char *s, int64_t max, int64_t *secs)
{
    static const struct {
        char unit;
        int64_t secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
    char *end = NULL;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || v == 0 || !end[0] || end[1])
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (*end == units[i].unit) {
            if (v > (unsigned long long)(max / units[i].secs))
                return -1;
            *secs = (int64_t)v * units[i].secs;
            return 0;
        }
    return -1;
}

/* supersede = revoke | keep | grace:DURATION */
static int profile_supersede(ca *c, ca_profile *p)
{
    const char *v = ca_conf_get(c->conf, p->section, "supersede");

    p->supersede = REG_SUPERSEDE_REVOKE;
    p->supersede_grace = 0;
    if (!v || strcmp(v, "revoke") == 0)
        return P11CA_OK;
    if (strcmp(v, "keep") == 0) {
        p->supersede = REG_SUPERSEDE_KEEP;
        return P11CA_OK;
    }
    if (strncmp(v, "grace:", 6) == 0
        && ca_duration_parse(v + 6, CA_SUPERSEDE_GRACE_MAX, &p->supersede_grace)
               == 0) {
        p->supersede = REG_SUPERSEDE_GRACE;
        return P11CA_OK;
    }
    return p11ca_err_set(
        P11CA_E_INPUT,
        "ca.cnf [ %s ] supersede = %s: say revoke, keep or grace:DURATION (1s to 3650d, e.g. grace:7d)",
        p->section, v);
}

static int curve_nid(const char *name)
{
    int nid = EC_curve_nist2nid(name);

    if (nid == NID_undef)
        nid = OBJ_sn2nid(name);
    return nid;
}

/* "rsa", "rsa:2048+", "rsa:3072", "ec:P-256", "ed25519", "ed448". */
static int rule_parse(const char *tok, ca_key_rule *r)
{
    char *end = NULL;
    unsigned long bits;

    memset(r, 0, sizeof(*r));
    if (strcasecmp(tok, "ed25519") == 0 || strcasecmp(tok, "ed448") == 0) {
        r->base_id =
            strcasecmp(tok, "ed25519") == 0 ? EVP_PKEY_ED25519 : EVP_PKEY_ED448;
        return 0;
    }
    if (strncasecmp(tok, "ec:", 3) == 0) {
        r->base_id = EVP_PKEY_EC;
        r->curve_nid = curve_nid(tok + 3);
        return r->curve_nid == NID_undef ? -1 : 0;
    }
    if (strncasecmp(tok, "rsa", 3) != 0 || (tok[3] && tok[3] != ':'))
        return -1;
    r->base_id = EVP_PKEY_RSA;
    r->min_bits = 2048;
    r->max_bits = RSA_MAX_BITS;
    if (!tok[3])
        return 0;
    bits = strtoul(tok + 4, &end, 10);
    if (!isdigit((unsigned char)tok[4]) || bits < 1024 || bits > RSA_MAX_BITS
        || (*end && strcmp(end, "+") != 0))
        return -1;
    r->min_bits = (unsigned)bits;
    r->max_bits = *end ? RSA_MAX_BITS : (unsigned)bits;
    return 0;
}

static int rules_parse(ca_profile *p)
{
    const char *list = p->key_types ? p->key_types
                                    : "rsa:2048+, ec:P-256, ec:P-384, "
                                      "ec:P-521, ed25519";
    char *copy = strdup(list), *save = NULL, *tok;
    int rc = copy ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    for (tok = copy ? strtok_r(copy, ", \t", &save) : NULL;
         tok && rc == P11CA_OK; tok = strtok_r(NULL, ", \t", &save)) {
        if (p->n_rules == CA_MAX_KEY_RULES)
            rc = p11ca_err_set(P11CA_E_INPUT,
                               "ca.cnf [ %s ] key_types: more than %d types",
                               p->section, CA_MAX_KEY_RULES);
        else if (rule_parse(tok, &p->rules[p->n_rules++]) != 0)
            rc = p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ %s ] key_types: \"%s\" is not one of rsa, rsa:BITS, rsa:BITS+, ec:CURVE, ed25519, ed448",
                p->section, tok);
    }
    if (rc == P11CA_OK && p->n_rules == 0)
        rc = p11ca_err_set(P11CA_E_INPUT, "ca.cnf [ %s ] key_types is empty",
                           p->section);
    free(copy);
    return rc;
}

/*
 * The named curve of an EC key, NID_undef for explicit parameters: OpenSSL
 * names the curve of explicit parameters that equal a named curve's, but a
 * certificate may carry only the name (RFC 5480; openssl verify refuses
 * the others with X509 error 94).
 */
static int key_curve(EVP_PKEY *pk)
{
    char group[64], enc[32];

    if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING, enc,
                                        sizeof(enc), NULL)
        || strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0
        || !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), NULL))
        return NID_undef;
    return curve_nid(group);
}

static bool rule_matches(const ca_key_rule *r, EVP_PKEY *pk)
{
    unsigned bits = (unsigned)EVP_PKEY_get_bits(pk);

    switch (r->base_id) {
    case EVP_PKEY_RSA:
        return EVP_PKEY_is_a(pk, "RSA") && bits >= r->min_bits
               && bits <= r->max_bits;
    case EVP_PKEY_EC:
        return EVP_PKEY_is_a(pk, "EC") && key_curve(pk) == r->curve_nid;
    case EVP_PKEY_ED25519:
        return EVP_PKEY_is_a(pk, "ED25519");
    case EVP_PKEY_ED448:
        return EVP_PKEY_is_a(pk, "ED448");
    default:
        return false;
    }
}

const char *ca_key_describe(EVP_PKEY *pk, char *buf, size_t len)
{
    int nid;

    if (EVP_PKEY_is_a(pk, "RSA")) {
        snprintf(buf, len, "RSA %d", EVP_PKEY_get_bits(pk));
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        nid = key_curve(pk);
        snprintf(buf, len, "EC %s",
                 nid == NID_undef         ? "with explicit parameters"
                 : EC_curve_nid2nist(nid) ? EC_curve_nid2nist(nid)
                                          : OBJ_nid2sn(nid));
    } else {
        snprintf(buf, len, "%s",
                 EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk)
                                             : "unknown");
    }
    return buf;
}

int ca_profile_check_key(const ca_profile *p, EVP_PKEY *pk)
{
    char desc[64];

    for (size_t i = 0; i < p->n_rules; i++)
        if (rule_matches(&p->rules[i], pk))
            return P11CA_OK;
    return p11ca_err_set(
        P11CA_E_POLICY,
        "the CSR's key (%s) is not allowed by profile \"%s\" (key_types: %s)",
        ca_key_describe(pk, desc, sizeof(desc)), p->name,
        p->key_types ? p->key_types
                     : "rsa:2048+, ec:P-256, ec:P-384, ec:P-521, ed25519");
}

static const char default_profiles[] =
    "[ profiles ]\n"
    "server           = profile_server\n"
    "client           = profile_client\n"
    "intermediate     = profile_intermediate\n"
    "ocsp             = profile_ocsp\n\n"
    "[ profile_server ]\n"
    "description      = TLS server (SAN required)\n"
    "basic_constraints = leaf\n"
    "key_usage        = digitalSignature\n"
    "key_usage_rsa    = keyEncipherment\n"
    "ext_key_usage    = serverAuth\n"
    "san              = required\n"
    "cn_in_san        = yes\n"
    "key_types        = rsa:2048+, ec:P-256, ec:P-384, ec:P-521, "
    "ed25519\n"
    "default_days     = 397\n"
    "max_days         = 397\n"
    "subject_override = no\n"
    "client_id        = none\n"
    "supersede        = revoke\n\n"
    "[ profile_client ]\n"
    "description      = TLS client\n"
    "basic_constraints = leaf\n"
    "key_usage        = digitalSignature\n"
    "ext_key_usage    = clientAuth\n"
    "san              = optional\n"
    "key_types        = rsa:2048+, ec:P-256, ec:P-384, ec:P-521, "
    "ed25519\n"
    "default_days     = 365\n"
    "max_days         = 825\n"
    "subject_override = yes\n"
    "client_id        = cn\n"
    "supersede        = revoke\n\n"
    "[ profile_intermediate ]\n"
    "description      = subordinate CA\n"
    "basic_constraints = ca\n"
    "pathlen          = 0\n"
    "key_usage        = keyCertSign, cRLSign\n"
    "san              = forbidden\n"
    "key_types        = rsa:2048+, ec:P-256, ec:P-384, ec:P-521, "
    "ed25519\n"
    "default_days     = 1825\n"
    "max_days         = 3650\n"
    "subject_override = no\n\n"
    "[ profile_ocsp ]\n"
    "description      = OCSP responder\n"
    "basic_constraints = leaf\n"
    "key_usage        = digitalSignature\n"
    "ext_key_usage    = OCSPSigning\n"
    "ocsp_nocheck     = yes\n"
    "san              = optional\n"
    "key_types        = rsa:2048+, ec:P-256, ec:P-384, ec:P-521, "
    "ed25519\n"
    "default_days     = 30\n"
    "max_days         = 90\n"
    "subject_override = no\n";

void ca_profiles_write_default(BIO *out)
{
    BIO_puts(out, default_profiles);
}
