/* SPDX-License-Identifier: Apache-2.0 */
/* Several nodes on one registry: what a shared backend (PostgreSQL)
 * provides, and P11CA_E_STATE on a registry of one process (SQLite). */
#include "config.h"

#include "registry/internal.h"

bool reg_shared(reg *r)
{
    return r && r->be->listen && r->be->signup_take && r->be->signup_refund;
}

static int not_shared(void)
{
    return p11ca_err_set(P11CA_E_STATE,
                         "this registry is not shared by several nodes");
}

int reg_signup_take(reg *r, const char *scope, double per_sec, double burst,
                    bool *ok, double *wait_s)
{
    return_val_if_fail(r && scope && ok && wait_s, P11CA_E_INTERNAL);
    *ok = false;
    *wait_s = -1;
    if (!reg_shared(r))
        return not_shared();
    return r->be->signup_take(r->db, scope, per_sec, burst, ok, wait_s);
}

int reg_signup_refund(reg *r, const char *scope, double burst)
{
    return_val_if_fail(r && scope, P11CA_E_INTERNAL);
    if (!reg_shared(r))
        return not_shared();
    return r->be->signup_refund(r->db, scope, burst);
}

int reg_listen(reg *r, reg_listener **out)
{
    return_val_if_fail(r && out, P11CA_E_INTERNAL);
    *out = NULL;
    if (!reg_shared(r))
        return not_shared();
    return r->be->listen(r->db, out);
}
