/* SPDX-License-Identifier: Apache-2.0 */
/* The registry's reads: one certificate, searches and counts, status
 * history, the revoked list for CRLs, the CA list. */
#include "config.h"

#include <string.h>

#include "registry/internal.h"

int reg_get(reg *r, const char *serial, reg_cert *out)
{
    char norm[sizeof(out->serial)];
    int rc;

    return_val_if_fail(r && out, P11CA_E_INTERNAL);
    memset(out, 0, sizeof(*out));
    if ((rc = reg_serial_normalise(serial, norm, sizeof(norm))))
        return rc;
    return r->be->cert_get(r->db, norm, out);
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
    if (copy->ca_id < 0)
        return p11ca_err_set(P11CA_E_INPUT, "bad filter: negative CA id");
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

int reg_history_list(reg *r, const char *serial, reg_history_cb cb, void *arg)
{
    reg_cert c = {0};
    int rc;

    return_val_if_fail(r && cb, P11CA_E_INTERNAL);
    /* NOTFOUND for an unknown serial rather than an empty list. */
    if ((rc = reg_get(r, serial, &c)))
        goto out;
    rc = r->be->history_list(r->db, c.serial, cb, arg);
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
