/* SPDX-License-Identifier: Apache-2.0 */
/* Audit details: a small JSON object built in a bounded, growing buffer. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

static void details_add(struct reg_details *d, const char *s, size_t n);
static void details_add_escaped(struct reg_details *d, const char *s);
static void details_key(struct reg_details *d, const char *key);

void reg_details_init(struct reg_details *d)
{
    memset(d, 0, sizeof(*d));
    d->first = true;
    details_add(d, "{", 1);
}

/* Append @n bytes, keeping a NUL after them; never past REG_DETAILS_MAX. */
static void details_add(struct reg_details *d, const char *s, size_t n)
{
    size_t cap;
    char *p;

    if (d->rc)
        return;
    if (n >= REG_DETAILS_MAX - d->len) {
        d->rc =
            p11ca_err_set(P11CA_E_INPUT, "audit details would exceed %d bytes",
                          REG_DETAILS_MAX);
        return;
    }
    if (d->len + n + 1 > d->cap) {
        cap = d->cap ? d->cap : 256;
        while (cap < d->len + n + 1)
            cap *= 2;
        if (cap > REG_DETAILS_MAX)
            cap = REG_DETAILS_MAX;
        p = realloc(d->data, cap);
        if (!p) {
            d->rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
            return;
        }
        d->data = p;
        d->cap = cap;
    }
    memcpy(d->data + d->len, s, n);
    d->len += n;
    d->data[d->len] = '\0';
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void details_add_escaped(struct reg_details *d, const char *s)
{
    char esc[8];
    size_t run;

    details_add(d, "\"", 1);
    while (*s) {
        run = strcspn(s, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"
                         "\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15"
                         "\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f");
        details_add(d, s, run);
        s += run;
        if (!*s)
            break;
        if (*s == '"' || *s == '\\')
            snprintf(esc, sizeof(esc), "\\%c", *s);
        else
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*s);
        details_add(d, esc, strlen(esc));
        s++;
    }
    details_add(d, "\"", 1);
}

static void details_key(struct reg_details *d, const char *key)
{
    if (!d->first)
        details_add(d, ",", 1);
    d->first = false;
    details_add_escaped(d, key);
    details_add(d, ":", 1);
}

/* A NULL @val leaves the key out. */
void reg_details_str(struct reg_details *d, const char *key, const char *val)
{
    if (!val)
        return;
    details_key(d, key);
    details_add_escaped(d, val);
}

void reg_details_int(struct reg_details *d, const char *key, int64_t val)
{
    char num[32];

    details_key(d, key);
    snprintf(num, sizeof(num), "%" PRId64, val);
    details_add(d, num, strlen(num));
}

void reg_details_certs_open(struct reg_details *d, const char *key)
{
    details_key(d, key);
    details_add(d, "[", 1);
    d->first = true;
}

void reg_details_cert(struct reg_details *d, int64_t ca_id, const char *serial)
{
    char num[32];

    if (!d->first)
        details_add(d, ",", 1);
    d->first = false;
    snprintf(num, sizeof(num), "%" PRId64, ca_id);
    details_add(d, "{\"ca_id\":", 9);
    details_add(d, num, strlen(num));
    details_add(d, ",\"serial\":", 10);
    details_add_escaped(d, serial);
    details_add(d, "}", 1);
}

void reg_details_certs_close(struct reg_details *d)
{
    details_add(d, "]", 1);
    d->first = false;
}

int reg_details_finish(struct reg_details *d)
{
    details_add(d, "}", 1);
    return d->rc;
}

void reg_details_free(struct reg_details *d)
{
    free(d->data);
    memset(d, 0, sizeof(*d));
}
