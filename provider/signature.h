/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
#ifndef P11CA_SIGNATURE_H
#define P11CA_SIGNATURE_H
#endif
