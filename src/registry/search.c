/* SPDX-License-Identifier: Apache-2.0 */
/* The registry's reads: one certificate (by issuer and serial), searches
 * and counts, status history, the revoked list for CRLs, the CA list. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

/* How many issuers of one serial a message names. */
#define SEARCH_ISSUERS_MAX 8

/* The longest pattern of a filter (a name is far shorter; SQLite refuses
 * LIKE patterns past 50,000 bytes as an error of its own). */
#define SEARCH_PATTERN_MAX 1024

/* The CAs that have one serial, while reg_search walks. */
struct search_issuers {
    int64_t ids[SEARCH_ISSUERS_MAX];
    size_t n;
};

/* The registered CAs one name matches, while reg_ca_list walks. */
struct search_ca {
    const char *what;
    int64_t by_id;
    int64_t ids[SEARCH_ISSUERS_MAX];
    size_t n;
};

static int search_issuers_cb(const reg_cert *c, void *arg);
static void search_ids_text(const int64_t *ids, size_t n, char *buf,
                            size_t len);
static int search_ca_cb(const reg_ca *ca, void *arg);

static int search_issuers_cb(const reg_cert *c, void *arg)
{
    struct search_issuers *s = arg;

    if (s->n < SEARCH_ISSUERS_MAX)
        s->ids[s->n] = c->ca_id;
    s->n++;
    return 0;
}

/* "2, 3 and 7" (an unknown issuer is "none"). */
static void search_ids_text(const int64_t *ids, size_t n, char *buf, size_t len)
{
    size_t shown = n < SEARCH_ISSUERS_MAX ? n : SEARCH_ISSUERS_MAX, used;

    buf[0] = '\0';
    for (size_t i = 0; i < shown; i++) {
        used = strlen(buf);
        if (ids[i])
            snprintf(buf + used, len - used, "%s%lld",
                     i == 0       ? ""
                     : i + 1 == n ? " and "
                                  : ", ",
                     (long long)ids[i]);
        else
            snprintf(buf + used, len - used, "%snone",
                     i == 0       ? ""
                     : i + 1 == n ? " and "
                                  : ", ");
    }
    if (shown < n) {
        used = strlen(buf);
        snprintf(buf + used, len - used, " and %zu more", n - shown);
    }
}

int reg_resolve(reg *r, int64_t ca_id, const char *serial, int64_t *found)
{
    struct search_issuers s = {.n = 0};
    reg_filter f = {.serial = serial};
    char ids[256];
    int rc;

    *found = ca_id;
    if (ca_id)
        return 0;
    if ((rc = r->be->cert_search(r->db, &f, search_issuers_cb, &s)))
        return rc;
    if (s.n == 1) {
        *found = s.ids[0];
        return 0;
    }
    if (s.n == 0)
        return p11ca_err_set(P11CA_E_NOTFOUND, "no certificate with serial %s",
                             reg_serial_shown(serial));
    search_ids_text(s.ids, s.n, ids, sizeof(ids));
    return p11ca_err_set(
        P11CA_E_INPUT,
        "serial %s is ambiguous: the CAs %s each have a certificate with it; give the issuer (its CA id or name)",
        reg_serial_shown(serial), ids);
}

int reg_get(reg *r, int64_t ca_id, const char *serial, reg_cert *out)
{
    char norm[sizeof(out->serial)];
    int64_t found = 0;
    int rc;

    return_val_if_fail(r && out, P11CA_E_INTERNAL);
    memset(out, 0, sizeof(*out));
    if ((rc = reg_serial_normalise(serial, norm, sizeof(norm))))
        return rc;
    if (ca_id < 0)
        return p11ca_err_set(P11CA_E_INPUT, "bad CA id %lld", (long long)ca_id);
    if ((rc = reg_resolve(r, ca_id, norm, &found)))
        return rc;
    return r->be->cert_get(r->db, found, norm, out);
}

int reg_filter_check(const reg_filter *f, reg_filter *copy, char *serial,
                     size_t len)
{
    static const reg_filter none;
    int rc;

    *copy = f ? *f : none;
    if ((unsigned)copy->status > REG_REVOKED)
        return p11ca_err_set(P11CA_E_INPUT, "bad filter: unknown status %d",
                             copy->status);
    if ((unsigned)copy->sort > REG_SORT_NOT_AFTER)
        return p11ca_err_set(P11CA_E_INPUT, "bad filter: unknown order %d",
                             copy->sort);
    if (copy->ca_id < 0 || copy->revoke_due < 0)
        return p11ca_err_set(P11CA_E_INPUT,
                             "bad filter: negative CA id or time");
    if ((copy->cn_match && strlen(copy->cn_match) > SEARCH_PATTERN_MAX)
        || (copy->ou_match && strlen(copy->ou_match) > SEARCH_PATTERN_MAX))
        return p11ca_err_set(P11CA_E_INPUT,
                             "bad filter: a pattern longer than %d bytes",
                             SEARCH_PATTERN_MAX);
    if (copy->serial) {
        if ((rc = reg_serial_normalise(copy->serial, serial, len)))
            return rc;
        copy->serial = serial;
    }
    return 0;
}

int reg_search(reg *r, const reg_filter *f, reg_cert_cb cb, void *arg)
{
    char serial[sizeof(((reg_cert *)0)->serial)];
    reg_filter copy;
    int rc;

    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    if ((rc = reg_filter_check(f, &copy, serial, sizeof(serial))))
        return rc;
    return r->be->cert_search(r->db, &copy, cb, arg);
}

int reg_count(reg *r, const reg_filter *f, size_t *n)
{
    char serial[sizeof(((reg_cert *)0)->serial)];
    reg_filter copy;
    int rc;

    return_val_if_fail(r && n, P11CA_E_INTERNAL);
    *n = 0;
    if ((rc = reg_filter_check(f, &copy, serial, sizeof(serial))))
        return rc;
    return r->be->cert_count(r->db, &copy, n);
}

int reg_history_list(reg *r, int64_t ca_id, const char *serial,
                     reg_history_cb cb, void *arg)
{
    reg_cert c = {0};
    int rc;

    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    /* NOTFOUND for an unknown serial rather than an empty list. */
    if ((rc = reg_get(r, ca_id, serial, &c)))
        goto out;
    rc = r->be->history_list(r->db, c.ca_id, c.serial, cb, arg);
out:
    reg_cert_clear(&c);
    return rc;
}

/* Streams: the backend hands over one row at a time. */
int reg_revoked_list(reg *r, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                     void *arg)
{
    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    if (ca_id < 0 || now < 0)
        return p11ca_err_set(P11CA_E_INPUT,
                             "bad CA id or time for the revoked list");
    return r->be->revoked_list(r->db, ca_id, now, cb, arg);
}

int reg_ca_list(reg *r, reg_ca_cb cb, void *arg)
{
    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    return r->be->ca_list(r->db, cb, arg);
}

static int search_ca_cb(const reg_ca *ca, void *arg)
{
    struct search_ca *s = arg;

    if (ca->id != s->by_id && !(ca->name && strcmp(ca->name, s->what) == 0)
        && !(ca->subject && strcmp(ca->subject, s->what) == 0))
        return 0;
    if (s->n < SEARCH_ISSUERS_MAX)
        s->ids[s->n] = ca->id;
    s->n++;
    return 0;
}

int reg_ca_find(reg *r, const char *what, int64_t *id)
{
    struct search_ca s = {.what = what};
    char ids[256], *end = NULL;
    long long v;
    int rc;

    return_val_if_fail(r && id, P11CA_E_INTERNAL);
    *id = 0;
    if (!what || !*what)
        return p11ca_err_set(P11CA_E_INPUT, "no CA named");
    errno = 0;
    v = strtoll(what, &end, 10);
    if (!errno && !*end && v > 0)
        s.by_id = v;
    if ((rc = r->be->ca_list(r->db, search_ca_cb, &s)) < 0)
        return rc;
    if (s.n == 0)
        return p11ca_err_set(
            P11CA_E_NOTFOUND,
            "no registered CA \"%.200s\" (by id, name or subject)", what);
    if (s.n > 1) {
        search_ids_text(s.ids, s.n, ids, sizeof(ids));
        return p11ca_err_set(
            P11CA_E_INPUT,
            "\"%.200s\" names several registered CAs (ids %s): give the id",
            what, ids);
    }
    *id = s.ids[0];
    return 0;
}

/*
 * A reg_filter pattern ('*', '?', '\' escapes; no wildcard: anywhere) as
 * LIKE text with '\' as the ESCAPE character: '%', '_' and '\' of the
 * pattern are matched literally.  At most 2 bytes per input byte, plus
 * the two '%' of a substring match.
 */
int reg_like_pattern(const char *pattern, char **out)
{
    size_t n = strlen(pattern);
    bool wild = false;
    char *q;

    *out = NULL;
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '*' || *p == '?')
            wild = true;
    }
    if (n > (SIZE_MAX - 3) / 2 || !(q = malloc(2 * n + 3)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    *out = q;
    if (!wild)
        *q++ = '%';
    for (const char *p = pattern; *p; p++) {
        char ch = *p;

        if (ch == '\\' && p[1])
            ch = *++p;
        else if (ch == '*' || ch == '?') {
            *q++ = ch == '*' ? '%' : '_';
            continue;
        }
        if (ch == '%' || ch == '_' || ch == '\\')
            *q++ = '\\';
        *q++ = ch;
    }
    if (!wild)
        *q++ = '%';
    *q = '\0';
    return 0;
}
