/* SPDX-License-Identifier: Apache-2.0 */
/* A profile's name policy: the subjectAltName names each type allows
 * (allowed_dns, allowed_ip, allowed_email, allowed_uri), the subject's
 * allowed and required attributes, and the CN among the SAN names. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "ca/internal.h"

/* Items of a list ("a, b c") are at most this long. */
#define POLICY_ITEM_MAX 1024

typedef bool (*item_match_fn)(const char *item, size_t len, const void *arg);

static bool list_next(const char **p, const char **item, size_t *len);
static bool list_any(const char *list, item_match_fn fn, const void *arg);
static bool is_star(const char *item, size_t len, const void *arg);
static bool dns_match(const char *item, size_t len, const void *arg);
static bool email_match(const char *item, size_t len, const void *arg);
static bool uri_match(const char *item, size_t len, const void *arg);
static bool ip_match(const ca_profile *p, const ASN1_OCTET_STRING *ip);
static int ip_range_parse(const char *item, size_t len, ca_ip_range *r);
static int ip_load(ca_profile *p);
static bool email_item_ok(const char *item, size_t len, const void *arg);
static bool uri_item_ok(const char *item, size_t len, const void *arg);
static const char *list_bad(const char *list, item_match_fn fn, size_t *len);
static int email_load(const ca_profile *p);
static int uri_load(const ca_profile *p);
static bool nid_in(int nid, const int *nids, size_t n);
static int attrs_load(const ca_profile *p, const char *key, const char *list,
                      int *nids, size_t *n);
static const char *gn_text(const GENERAL_NAME *gn, char *buf, size_t len);
static void restricted_keys(const ca_profile *p, char *buf, size_t len);
static bool cn_matches(const char *cn, const GENERAL_NAME *gn);
static int subject_allowed(const ca_profile *p, const X509_NAME *subject,
                           const char *what);
static int subject_required(const ca_profile *p, const X509_NAME *subject,
                            const char *what);
static int cn_in_san(const ca_profile *p, const X509_NAME *subject,
                     const GENERAL_NAMES *san, const char *what);

/* The next item of @*p: its start and length; false after the last. */
static bool list_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p + strspn(*p, ", \t");

    if (!*s)
        return false;
    *item = s;
    *len = strcspn(s, ", \t");
    *p = s + *len;
    return true;
}

/* Whether @fn holds for some item of @list. */
static bool list_any(const char *list, item_match_fn fn, const void *arg)
{
    const char *p = list, *item;
    size_t len;

    while (list_next(&p, &item, &len))
        if (fn(item, len, arg))
            return true;
    return false;
}

static bool is_star(const char *item, size_t len, const void *arg)
{
    (void)arg;
    return len == 1 && item[0] == '*';
}

/* "example.com" allows it and below; ".example.com" only below. */
static bool dns_match(const char *item, size_t len, const void *arg)
{
    const char *name = arg;
    size_t nl = strlen(name);

    if (item[0] == '.')
        return nl > len && strncasecmp(name + nl - len, item, len) == 0;
    return (nl == len && strncasecmp(name, item, len) == 0)
           || (nl > len + 1 && name[nl - len - 1] == '.'
               && strncasecmp(name + nl - len, item, len) == 0);
}

/*
 * As rfc822Name name constraints (RFC 5280, 4.2.1.10): "a@example.com"
 * allows that mailbox (the local part exactly, the domain in any case),
 * "example.com" every mailbox at that host, ".example.com" every mailbox
 * at a host below it (not at example.com itself).
 */
static bool email_match(const char *item, size_t len, const void *arg)
{
    const char *addr = arg, *at = strrchr(addr, '@');
    const char *iat = memchr(item, '@', len);
    const char *dom = at ? at + 1 : "";
    size_t dl = strlen(dom);

    if (iat)
        return at && (size_t)(at - addr) == (size_t)(iat - item)
               && memcmp(addr, item, (size_t)(at - addr)) == 0
               && dl == len - (size_t)(iat - item) - 1
               && strncasecmp(dom, iat + 1, dl) == 0;
    if (item[0] == '.')
        return dl > len && strncasecmp(dom + dl - len, item, len) == 0;
    return dl == len && strncasecmp(dom, item, len) == 0;
}

/* A prefix, compared byte for byte. */
static bool uri_match(const char *item, size_t len, const void *arg)
{
    return strncmp(arg, item, len) == 0;
}

/* Whether @ip (4 or 16 bytes) is in one of @p's networks. */
static bool ip_match(const ca_profile *p, const ASN1_OCTET_STRING *ip)
{
    const unsigned char *a = ASN1_STRING_get0_data(ip);
    int len = ASN1_STRING_length(ip);

    for (size_t i = 0; i < p->n_ip_ranges; i++) {
        const ca_ip_range *r = &p->ip_ranges[i];
        unsigned full = r->prefix / 8, rest = r->prefix % 8;
        unsigned char mask = (unsigned char)(0xff << (8 - rest));

        if (r->len != len || memcmp(a, r->addr, full) != 0)
            continue;
        if (rest == 0 || ((a[full] ^ r->addr[full]) & mask) == 0)
            return true;
    }
    return false;
}

/* "10.0.0.0/8", "2001:db8::/32", or one address (a /32 or /128). */
static int ip_range_parse(const char *item, size_t len, ca_ip_range *r)
{
    char buf[64], *slash, *end = NULL;
    ASN1_OCTET_STRING *ip = NULL;
    unsigned long bits;
    int rc = -1;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, item, len);
    buf[len] = '\0';
    slash = strchr(buf, '/');
    if (slash)
        *slash++ = '\0';
    ip = a2i_IPADDRESS(buf);
    if (!ip)
        goto out;
    r->len = ASN1_STRING_length(ip);
    memcpy(r->addr, ASN1_STRING_get0_data(ip), (size_t)r->len);
    bits = (unsigned long)r->len * 8;
    if (slash) {
        bits = strtoul(slash, &end, 10);
        if (!isdigit((unsigned char)*slash) || *end
            || bits > (unsigned long)r->len * 8)
            goto out;
    }
    r->prefix = (unsigned)bits;
    /* No bits set past the prefix: "10.0.0.1/8" is a typo, not a net. */
    for (unsigned i = r->prefix; i < (unsigned)r->len * 8; i++)
        if (r->addr[i / 8] & (0x80 >> (i % 8)))
            goto out;
    rc = 0;
out:
    ASN1_OCTET_STRING_free(ip);
    ERR_clear_error();
    return rc;
}

static int ip_load(ca_profile *p)
{
    const char *s = p->allowed_ip, *item;
    size_t len;

    if (!s || list_any(s, is_star, NULL))
        return P11CA_OK;
    while (list_next(&s, &item, &len)) {
        if (p->n_ip_ranges == CA_MAX_IP_RANGES)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ %s ] allowed_ip: more than %d networks", p->section,
                CA_MAX_IP_RANGES);
        if (ip_range_parse(item, len, &p->ip_ranges[p->n_ip_ranges++]) != 0)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ %s ] allowed_ip: \"%.*s\" is not an IP address or network (write 10.0.0.0/8, 192.0.2.7, 2001:db8::/32; no bits set after the prefix)",
                p->section, (int)len, item);
    }
    if (p->n_ip_ranges == 0)
        return p11ca_err_set(P11CA_E_INPUT, "ca.cnf [ %s ] allowed_ip is empty",
                             p->section);
    return P11CA_OK;
}

/* An allowed_email item: "*", "a@example.com", "example.com" or
 * ".example.com" (one '@' at most, with text on both sides). */
static bool email_item_ok(const char *item, size_t len, const void *arg)
{
    const char *at = memchr(item, '@', len);
    size_t rest = at ? len - (size_t)(at - item) - 1 : 0;

    (void)arg;
    if (len >= POLICY_ITEM_MAX)
        return false;
    if (at)
        return at > item && rest > 0 && !memchr(at + 1, '@', rest);
    return !(item[0] == '.' && len == 1);
}

/* An allowed_uri item: "*" or a prefix that starts with a scheme and
 * its colon ("https://example.com/", "spiffe://example.org/"). */
static bool uri_item_ok(const char *item, size_t len, const void *arg)
{
    size_t i = 0;

    (void)arg;
    if (is_star(item, len, NULL))
        return true;
    if (len >= POLICY_ITEM_MAX || !isalpha((unsigned char)item[0]))
        return false;
    while (i < len
           && (isalnum((unsigned char)item[i])
               || (item[i] && strchr("+-.", item[i]))))
        i++;
    return i < len && item[i] == ':';
}

/* The first item of @list for which @fn fails (NULL: none). */
static const char *list_bad(const char *list, item_match_fn fn, size_t *len)
{
    const char *p = list, *item;

    while (p && list_next(&p, &item, len))
        if (!fn(item, *len, NULL))
            return item;
    return NULL;
}

static int email_load(const ca_profile *p)
{
    size_t len = 0;
    const char *bad = list_bad(p->allowed_email, email_item_ok, &len);

    if (bad)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ %s ] allowed_email: \"%.*s\" is not a mailbox, a domain or .domain",
            p->section, (int)len, bad);
    return P11CA_OK;
}

static int uri_load(const ca_profile *p)
{
    size_t len = 0;
    const char *bad = list_bad(p->allowed_uri, uri_item_ok, &len);

    if (bad)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ %s ] allowed_uri: \"%.*s\" is not a URI prefix (write it with its scheme, e.g. https://example.com/)",
            p->section, (int)len, bad);
    return P11CA_OK;
}

/* Whether @nid is one of @nids. */
static bool nid_in(int nid, const int *nids, size_t n)
{
    for (size_t i = 0; nid != NID_undef && i < n; i++)
        if (nids[i] == nid)
            return true;
    return false;
}

/* subject_allowed / subject_required: "CN, O, OU, C" or OIDs. */
static int attrs_load(const ca_profile *p, const char *key, const char *list,
                      int *nids, size_t *n)
{
    const char *s = list, *item;
    char buf[128];
    size_t len;

    while (s && list_next(&s, &item, &len)) {
        if (*n == CA_MAX_SUBJECT_ATTRS)
            return p11ca_err_set(P11CA_E_INPUT,
                                 "ca.cnf [ %s ] %s: more than %d attributes",
                                 p->section, key, CA_MAX_SUBJECT_ATTRS);
        snprintf(buf, sizeof(buf), "%.*s", (int)len, item);
        nids[*n] = len < sizeof(buf) ? OBJ_txt2nid(buf) : NID_undef;
        if (nids[(*n)++] == NID_undef)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ %s ] %s: \"%.*s\" is not a subject attribute (CN, O, OU, C, L, ST, emailAddress, serialNumber, an OID, ...)",
                p->section, key, (int)len, item);
    }
    ERR_clear_error();
    if (list && *n == 0)
        return p11ca_err_set(P11CA_E_INPUT, "ca.cnf [ %s ] %s is empty",
                             p->section, key);
    return P11CA_OK;
}

int ca_policy_load(ca_profile *p)
{
    int rc = ip_load(p);

    if (rc == P11CA_OK)
        rc = email_load(p);
    if (rc == P11CA_OK)
        rc = uri_load(p);
    if (rc == P11CA_OK)
        rc = attrs_load(p, "subject_allowed", p->subject_allowed,
                        p->subject_allowed_nids, &p->n_subject_allowed);
    if (rc == P11CA_OK)
        rc = attrs_load(p, "subject_required", p->subject_required,
                        p->subject_required_nids, &p->n_subject_required);
    for (size_t i = 0;
         rc == P11CA_OK && p->subject_allowed && i < p->n_subject_required; i++)
        if (!nid_in(p->subject_required_nids[i], p->subject_allowed_nids,
                    p->n_subject_allowed))
            rc = p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ %s ]: subject_required names %s, which subject_allowed does not allow",
                p->section, OBJ_nid2sn(p->subject_required_nids[i]));
    return rc;
}

/* "DNS:name", "IP:192.0.2.7" ... for messages (the value is escaped by
 * whoever prints it to a terminal). */
static const char *gn_text(const GENERAL_NAME *gn, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const ASN1_STRING *s = gn->d.ia5;

    switch (gn->type) {
    case GEN_IPADD:
        inet_ntop(s->length == 4 ? AF_INET : AF_INET6, s->data, ip, sizeof(ip));
        snprintf(buf, len, "IP:%s", ip);
        break;
    case GEN_DNS:
    case GEN_EMAIL:
    case GEN_URI:
        snprintf(buf, len, "%s:%.*s",
                 gn->type == GEN_DNS     ? "DNS"
                 : gn->type == GEN_EMAIL ? "email"
                                         : "URI",
                 s->length, (const char *)s->data);
        break;
    default:
        snprintf(buf, len, "a name of type %d", gn->type);
    }
    return buf;
}

/* "allowed_dns, allowed_uri": the keys that restrict @p's names. */
static void restricted_keys(const ca_profile *p, char *buf, size_t len)
{
    const char *keys[] = {p->allowed_dns ? "allowed_dns" : NULL,
                          p->allowed_ip ? "allowed_ip" : NULL,
                          p->allowed_email ? "allowed_email" : NULL,
                          p->allowed_uri ? "allowed_uri" : NULL};

    buf[0] = '\0';
    for (size_t i = 0; i < 4; i++)
        if (keys[i])
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
                     buf[0] ? ", " : "", keys[i]);
}

int ca_policy_san(const ca_profile *p, const GENERAL_NAME *gn, const char *what)
{
    const char *key, *list, *v = (const char *)ASN1_STRING_get0_data(gn->d.ia5);
    char name[512], keys[128];
    bool ok;

    switch (gn->type) {
    case GEN_DNS:
        key = "allowed_dns", list = p->allowed_dns;
        break;
    case GEN_IPADD:
        key = "allowed_ip", list = p->allowed_ip;
        break;
    case GEN_EMAIL:
        key = "allowed_email", list = p->allowed_email;
        break;
    default:
        key = "allowed_uri", list = p->allowed_uri;
    }
    if (!p->allowed_dns && !p->allowed_ip && !p->allowed_email
        && !p->allowed_uri)
        return P11CA_OK;
    gn_text(gn, name, sizeof(name));
    if (!list) {
        restricted_keys(p, keys, sizeof(keys));
        return p11ca_err_set(
            P11CA_E_POLICY,
            "%s: %s is not allowed by profile \"%s\": its subjectAltName names are restricted (%s) and it sets no %s",
            what, name, p->name, keys, key);
    }
    if (list_any(list, is_star, NULL))
        return P11CA_OK;
    switch (gn->type) {
    case GEN_DNS:
        ok = list_any(list, dns_match, v);
        break;
    case GEN_IPADD:
        ok = ip_match(p, gn->d.ip);
        break;
    case GEN_EMAIL:
        ok = list_any(list, email_match, v);
        break;
    default:
        ok = list_any(list, uri_match, v);
    }
    if (ok)
        return P11CA_OK;
    return p11ca_err_set(P11CA_E_POLICY,
                         "%s: %s is not allowed by profile \"%s\" (%s: %s)",
                         what, name, p->name, key, list);
}

/* Whether the CN @cn is the name @gn. */
static bool cn_matches(const char *cn, const GENERAL_NAME *gn)
{
    const ASN1_STRING *s = gn->d.ia5;
    ASN1_OCTET_STRING *ip;
    bool same;

    switch (gn->type) {
    case GEN_DNS:
        return (size_t)s->length == strlen(cn)
               && strncasecmp(cn, (const char *)s->data, strlen(cn)) == 0;
    case GEN_EMAIL:
    case GEN_URI:
        return (size_t)s->length == strlen(cn)
               && memcmp(cn, s->data, strlen(cn)) == 0;
    case GEN_IPADD:
        ERR_set_mark();
        ip = a2i_IPADDRESS(cn);
        ERR_pop_to_mark();
        same = ip && ASN1_OCTET_STRING_cmp(ip, s) == 0;
        ASN1_OCTET_STRING_free(ip);
        return same;
    default:
        return false;
    }
}

/* subject_allowed: every attribute of @subject is in the list. */
static int subject_allowed(const ca_profile *p, const X509_NAME *subject,
                           const char *what)
{
    const ASN1_OBJECT *obj;
    char attr[80];

    for (int i = 0; p->subject_allowed && i < X509_NAME_entry_count(subject);
         i++) {
        obj = X509_NAME_ENTRY_get_object(X509_NAME_get_entry(subject, i));
        if (nid_in(OBJ_obj2nid(obj), p->subject_allowed_nids,
                   p->n_subject_allowed))
            continue;
        if (OBJ_obj2nid(obj) != NID_undef)
            snprintf(attr, sizeof(attr), "%s", OBJ_nid2sn(OBJ_obj2nid(obj)));
        else
            OBJ_obj2txt(attr, sizeof(attr), obj, 1);
        return p11ca_err_set(
            P11CA_E_POLICY,
            "%s: the subject attribute %s is not allowed by profile \"%s\" (subject_allowed: %s)",
            what, attr, p->name, p->subject_allowed);
    }
    return P11CA_OK;
}

/* subject_required: every attribute of the list is in @subject. */
static int subject_required(const ca_profile *p, const X509_NAME *subject,
                            const char *what)
{
    int nid;

    for (size_t i = 0; i < p->n_subject_required; i++) {
        nid = p->subject_required_nids[i];
        if (X509_NAME_get_index_by_NID(subject, nid, -1) < 0)
            return p11ca_err_set(
                P11CA_E_POLICY,
                "%s: the subject has no %s, which profile \"%s\" requires (subject_required: %s)",
                what, OBJ_nid2sn(nid), p->name, p->subject_required);
    }
    return P11CA_OK;
}

/* cn_in_san: each CN of @subject is one of the names of @san. */
static int cn_in_san(const ca_profile *p, const X509_NAME *subject,
                     const GENERAL_NAMES *san, const char *what)
{
    unsigned char *cn = NULL;
    bool found = false;
    int i = -1, len, rc = P11CA_OK;

    while (rc == P11CA_OK && p->cn_in_san
           && (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i))
                  >= 0) {
        len = ASN1_STRING_to_UTF8(
            &cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
        /* A CN with a NUL in it matches nothing. */
        found = false;
        for (int k = 0; len >= 0 && (size_t)len == strlen((char *)cn) && !found
                        && k < sk_GENERAL_NAME_num(san);
             k++)
            found = cn_matches((char *)cn, sk_GENERAL_NAME_value(san, k));
        if (!found)
            rc = p11ca_err_set(
                P11CA_E_POLICY,
                "%s: the CN \"%s\" is not one of the subjectAltName names, which profile \"%s\" requires (cn_in_san = yes)",
                what, len >= 0 ? (char *)cn : "(unreadable)", p->name);
        OPENSSL_free(cn);
        cn = NULL;
    }
    return rc;
}

int ca_policy_subject(const ca_profile *p, const X509_NAME *subject,
                      const GENERAL_NAMES *san, const char *what)
{
    int rc = subject_allowed(p, subject, what);

    if (rc == P11CA_OK)
        rc = subject_required(p, subject, what);
    if (rc == P11CA_OK)
        rc = cn_in_san(p, subject, san, what);
    return rc;
}
