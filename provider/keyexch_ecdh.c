/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
#include "config.h"

#include "prov.h"

const OSSL_DISPATCH prov_ecdh_keyexch_functions[] = {
    { 0, NULL },
};
