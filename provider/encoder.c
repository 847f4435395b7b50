/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
#include "config.h"

#include "prov.h"

const OSSL_ALGORITHM prov_encoders[] = {
    { NULL, NULL, NULL, NULL },
};
