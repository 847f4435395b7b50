/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
#include "config.h"

#include "prov.h"

const OSSL_DISPATCH prov_rsa_asym_cipher_functions[] = {
    { 0, NULL },
};
