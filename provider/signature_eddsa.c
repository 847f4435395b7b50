/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
#include "config.h"

#include "prov.h"

const OSSL_DISPATCH prov_ed25519_signature_functions[] = {
    { 0, NULL },
};
