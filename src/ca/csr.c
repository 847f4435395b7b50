/* SPDX-License-Identifier: Apache-2.0 */
/* CSR policy: parsing one request, its signature, its key, its names and
 * the validity against the profile (the name rules are policy.c's),
 * before anything is signed. */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"

static int csr_exts(ca_req *r, GENERAL_NAMES **csr_san);
static bool dns_ok(const char *name);
static bool email_ok(const char *v);
static bool uri_ok(const char *v);
static int gn_check(const GENERAL_NAME *gn, const char *what);
static int san_check(ca_req *r, const char *from);
static int req_subject(ca *c, ca_req *r, const ca_issue_opts *o);
static int req_client_id(ca_req *r, const ca_issue_opts *o);
static int subject_policy(const ca_req *r, const X509_NAME *subject);
static int req_validity(ca *c, ca_req *r, const ca_issue_opts *o);
static int unknown_profile(ca *c, const char *name);

/* Look at what the CSR asks for: CA:TRUE, and its subjectAltName. */
static int csr_exts(ca_req *r, GENERAL_NAMES **csr_san)
{
    STACK_OF(X509_EXTENSION) *exts = ca_csr_extensions(r->csr);
    BASIC_CONSTRAINTS *bc;
    int rc = P11CA_OK, crit = 0;

    *csr_san = NULL;
    ERR_clear_error();
    bc = X509V3_get_d2i(exts, NID_basic_constraints, &crit, NULL);
    if (bc && bc->ca && !r->profile->is_ca)
        rc = p11ca_err_set(
            P11CA_E_POLICY,
            "%s asks for CA:TRUE (basicConstraints); profile \"%s\" issues end-entity certificates only",
            r->what, r->profile->name);
    if (rc == P11CA_OK) {
        *csr_san = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
        if (!*csr_san && crit == -2)
            rc = p11ca_err_set(P11CA_E_INPUT,
                               "%s has more than one subjectAltName", r->what);
        else if (!*csr_san && crit >= 0)
            rc = p11ca_err_set(P11CA_E_INPUT, "%s has a damaged subjectAltName",
                               r->what);
    }
    BASIC_CONSTRAINTS_free(bc);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return rc;
}

/* A host name: LDH labels of 1-63 characters, 253 in all; "*." first ok. */
static bool dns_ok(const char *name)
{
    size_t len = strlen(name), label = 0;
    const char *p = name;

    if (len == 0 || len > 253)
        return false;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    for (; *p; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
        if ((*p == '-' && label == 0) || ++label > 63)
            return false;
    }
    return label > 0 && p[-1] != '-';
}

static bool email_ok(const char *v)
{
    const char *at = strrchr(v, '@');

    if (!at || at == v || at - v > 64)
        return false;
    for (const char *p = v; p < at; p++)
        if (!isgraph((unsigned char)*p) || strchr("<>()[],;:\\\"", *p))
            return false;
    return dns_ok(at + 1) && at[1] != '*';
}

static bool uri_ok(const char *v)
{
    const char *p = v;

    if (!isalpha((unsigned char)*p))
        return false;
    while (isalnum((unsigned char)*p) || (*p && strchr("+-.", *p)))
        p++;
    if (*p != ':' || !p[1])
        return false;
    for (; *p; p++)
        if (!isgraph((unsigned char)*p))
            return false;
    return true;
}

/* One name: DNS, IP, email or URI, each well-formed. */
static int gn_check(const GENERAL_NAME *gn, const char *what)
{
    const ASN1_STRING *s = NULL;
    const char *v = "";
    bool text = false;

    /* d.ia5 is the string of these three types only: the union holds an
     * X509_NAME, an OTHERNAME, an ASN1_OBJECT... for the others. */
    if (gn->type == GEN_DNS || gn->type == GEN_EMAIL || gn->type == GEN_URI) {
        s = gn->d.ia5;
        v = s ? (const char *)ASN1_STRING_get0_data(s) : "";
        text = s && v && (size_t)ASN1_STRING_length(s) == strlen(v);
    }
    switch (gn->type) {
    case GEN_DNS:
        if (text && dns_ok(v))
            return P11CA_OK;
        return p11ca_err_set(P11CA_E_INPUT, "%s: \"DNS:%s\" is not a host name",
                             what, text ? v : "(binary)");
    case GEN_EMAIL:
        if (text && email_ok(v))
            return P11CA_OK;
        return p11ca_err_set(P11CA_E_INPUT,
                             "%s: \"email:%s\" is not an e-mail address", what,
                             text ? v : "(binary)");
    case GEN_URI:
        if (text && uri_ok(v))
            return P11CA_OK;
        return p11ca_err_set(P11CA_E_INPUT, "%s: \"URI:%s\" is not a URI", what,
                             text ? v : "(binary)");
    case GEN_IPADD:
        if (gn->d.ip->length == 4 || gn->d.ip->length == 16)
            return P11CA_OK;
        return p11ca_err_set(P11CA_E_INPUT, "%s: an IP address of %d bytes",
                             what, gn->d.ip->length);
    default:
        return p11ca_err_set(
            P11CA_E_POLICY,
            "%s: subjectAltName names of type %d are not issued (DNS, IP, email and URI are)",
            what, gn->type);
    }
}

int ca_san_parse(const char *spec, GENERAL_NAMES **out)
{
    static const struct {
        const char *prefix;
        int type;
    } types[] = {{"DNS:", GEN_DNS},
                 {"IP:", GEN_IPADD},
                 {"email:", GEN_EMAIL},
                 {"URI:", GEN_URI}};
    GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
    char *copy = strdup(spec), *save = NULL, *tok;
    GENERAL_NAME *gn;
    int rc = gns && copy ? P11CA_OK : P11CA_E_NOMEM;
    size_t i;

    for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && rc == P11CA_OK;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        for (i = 0;
             i < 4
             && strncasecmp(tok, types[i].prefix, strlen(types[i].prefix)) != 0;
             i++)
            ;
        if (i == 4) {
            rc = p11ca_err_set(
                P11CA_E_INPUT,
                "--san: \"%s\" is not DNS:, IP:, email: or URI:", tok);
            break;
        }
        gn = a2i_GENERAL_NAME(NULL, NULL, NULL, types[i].type,
                              tok + strlen(types[i].prefix), 0);
        if (!gn || !sk_GENERAL_NAME_push(gns, gn)) {
            GENERAL_NAME_free(gn);
            rc = ca_ossl_err(P11CA_E_INPUT, "--san: \"%s\" is not valid", tok);
        } else {
            rc = gn_check(gn, "--san");
        }
    }
    if (rc == P11CA_OK && sk_GENERAL_NAME_num(gns) == 0)
        rc = p11ca_err_set(P11CA_E_INPUT, "--san is empty");
    if (rc == P11CA_E_NOMEM)
        p11ca_err_set(rc, "out of memory");
    free(copy);
    *out = rc == P11CA_OK ? gns : NULL;
    if (rc != P11CA_OK)
        GENERAL_NAMES_free(gns);
    return rc;
}

/* The names against the profile: presence, syntax, the allowed names of
 * each type; @from names where they came from (the CSR or --san). */
static int san_check(ca_req *r, const char *from)
{
    const ca_profile *p = r->profile;
    int n = r->san ? sk_GENERAL_NAME_num(r->san) : 0, rc = P11CA_OK;

    if (n == 0 && p->san == CA_SAN_REQUIRED)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" requires a subjectAltName: give --san DNS:name or put it in %s",
            p->name, r->what);
    if (n > 0 && p->san == CA_SAN_FORBIDDEN)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" issues no subjectAltName (%s has one)", p->name,
            from);
    for (int i = 0; rc == P11CA_OK && i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(r->san, i);
        rc = gn_check(gn, from);
        if (rc == P11CA_OK)
            rc = ca_policy_san(p, gn, from);
    }
    return rc;
}

static int req_subject(ca *c, ca_req *r, const ca_issue_opts *o)
{
    int rc = P11CA_OK;

    (void)c;
    if (o->subject && !r->profile->subject_override)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" does not allow --subject (subject_override = no)",
            r->profile->name);
    if (o->subject)
        rc = ca_name_parse(o->subject, &r->subject);
    else
        r->subject = ca_csr_take_subject(r->csr);
    if (rc == P11CA_OK)
        rc = subject_policy(r, r->subject);
    if (rc == P11CA_OK)
        rc = req_client_id(r, o);
    return rc;
}

/* What the profile of @r allows as a subject (its names are checked
 * already): the one place for subject rules, used before a CSR exists
 * too (ca_req_precheck). */
static int subject_policy(const ca_req *r, const X509_NAME *subject)
{
    if (X509_NAME_entry_count(subject) == 0 && !r->san)
        return p11ca_err_set(P11CA_E_POLICY,
                             "%s has an empty subject and no subjectAltName",
                             r->what);
    return P11CA_OK;
}

/* The client ID the profile's client_id rule gives (see ca_client_id_rule);
 * for CA_CLIENT_ID_CN without --client-id, rec_fill takes the CN. */
static int req_client_id(ca_req *r, const ca_issue_opts *o)
{
    const ca_profile *p = r->profile;

    if (o->client_id && !*o->client_id)
        return p11ca_err_set(P11CA_E_INPUT, "--client-id is empty");
    if (o->client_id && p->client_id == CA_CLIENT_ID_NONE)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" issues certificates without a client ID (client_id = none): drop --client-id",
            p->name);
    if (!o->client_id && p->client_id == CA_CLIENT_ID_REQUIRED)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" requires a client ID (client_id = required): give --client-id",
            p->name);
    if (o->client_id && !(r->client_id = strdup(o->client_id)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

static int req_validity(ca *c, ca_req *r, const ca_issue_opts *o)
{
    const ca_profile *p = r->profile;
    time_t end;

    r->days = o->days ? o->days : p->default_days;
    if (r->days > p->max_days)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "a validity of %u days is more than profile \"%s\" allows (max_days %u)",
            r->days, p->name, p->max_days);
    end = time(NULL) + (time_t)r->days * 86400;
    if (c->cert && X509_cmp_time(X509_get0_notAfter(c->cert), &end) < 0)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "a validity of %u days would outlive the CA certificate", r->days);
    return P11CA_OK;
}

static int unknown_profile(ca *c, const char *name)
{
    char list[512] = "";

    for (size_t i = 0; i < c->n_profiles; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 i ? ", " : "", c->profiles[i].name);
    return p11ca_err_set(P11CA_E_POLICY,
                         "unknown profile \"%s\" (this CA has: %s)",
                         name ? name : "", list[0] ? list : "none");
}

const ca_csr_cache *ca_csr_cache_get(ca *c)
{
    ca_csr_cache *cc;

    pthread_mutex_lock(&c->lock);
    if (!c->csr_cache && ca_csr_cache_new(&c->csr_cache) != P11CA_OK)
        c->csr_cache = NULL;
    cc = c->csr_cache;
    pthread_mutex_unlock(&c->lock);
    return cc;
}

int ca_req_new(ca *c, const unsigned char *buf, size_t len, const char *what,
               const ca_issue_opts *o, ca_req **out)
{
    ca_req *r = calloc(1, sizeof(*r));
    GENERAL_NAMES *csr_san = NULL;
    const ca_csr_cache *cc = NULL;
    int rc = P11CA_OK;

    *out = NULL;
    if (!r || !(r->what = strdup(what))) {
        free(r);
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    r->status = CA_REQ_PENDING;
    r->rec.reason = -1;
    r->not_activated = o->not_activated;
    if (o->replaces && !(r->replaces = strdup(o->replaces)))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    r->profile = ca_profile_find(c, o->profile);
    if (!r->profile)
        rc = unknown_profile(c, o->profile);
    /* For clang's analyzer, which does not follow unknown_profile's loop:
     * it always fails. */
    assert(r->profile || rc != P11CA_OK);
    if (rc == P11CA_OK && !(cc = ca_csr_cache_get(c)))
        rc = p11ca_err_rc();
    if (rc == P11CA_OK)
        rc = ca_csr_parse(buf, len, what, &r->csr);
    if (rc == P11CA_OK && !(r->pub = ca_csr_key(cc, r->csr)))
        rc = ca_ossl_err(P11CA_E_INPUT, "%s: its public key cannot be read",
                         what);
    if (rc == P11CA_OK && !ca_csr_verify(cc, r->csr, r->pub))
        rc = ca_ossl_err(
            P11CA_E_INPUT,
            "%s: the CSR's signature does not verify (altered, or not signed by its key)",
            what);
    if (rc == P11CA_OK)
        rc = ca_profile_check_key(r->profile, r->pub);
    if (rc == P11CA_OK)
        rc = csr_exts(r, &csr_san);
    if (rc == P11CA_OK && o->san)
        rc = ca_san_parse(o->san, &r->san);
    else if (rc == P11CA_OK) {
        r->san = csr_san;
        csr_san = NULL;
    }
    if (rc == P11CA_OK)
        rc = san_check(r, o->san ? "--san" : what);
    if (rc == P11CA_OK)
        rc = req_subject(c, r, o);
    if (rc == P11CA_OK)
        rc = ca_policy_subject(r->profile, r->subject, r->san,
                               o->subject ? "--subject" : what);
    if (rc == P11CA_OK)
        rc = req_validity(c, r, o);
    GENERAL_NAMES_free(csr_san);
    if (rc != P11CA_OK)
        ca_req_free(r);
    else
        *out = r;
    return rc;
}

int ca_req_precheck(ca *c, const ca_issue_opts *o, const X509_NAME *subject)
{
    char what[] = "the request";
    ca_req r = {.what = what, .status = CA_REQ_PENDING};
    int rc = P11CA_OK;

    r.profile = ca_profile_find(c, o->profile);
    if (!r.profile)
        return unknown_profile(c, o->profile);
    if (subject)
        rc = subject_policy(&r, subject);
    if (rc == P11CA_OK)
        rc = req_client_id(&r, o);
    if (rc == P11CA_OK)
        rc = req_validity(c, &r, o);
    free(r.client_id);
    return rc;
}

void ca_req_free(ca_req *r)
{
    if (!r)
        return;
    free(r->what);
    ca_csr_free(r->csr);
    EVP_PKEY_free(r->pub);
    X509_NAME_free(r->subject);
    GENERAL_NAMES_free(r->san);
    free(r->client_id);
    free(r->replaces);
    OPENSSL_free(r->tbs);
    OPENSSL_free(r->spki);
    OPENSSL_free(r->der);
    X509_free(r->cert);
    reg_cert_clear(&r->rec);
    free(r->msg);
    free(r);
}
