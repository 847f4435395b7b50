/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation failures for the p11 layer: the program is linked with
 * ALLOC_FAIL_LINK (tests/progs/local.mk), which sends every allocation
 * call of the objects linked into it (src/p11, src/common, the driver) to
 * the counting wrappers of alloc-fail.c.  Libraries loaded at run time
 * (libcrypto, p11-kit, the PKCS#11 module) keep their own allocator. */
#ifndef P11CA_TEST_ALLOC_FAIL_H
#define P11CA_TEST_ALLOC_FAIL_H

#include <stdbool.h>

/*
 * alloc_fail_arm - count allocation calls from now on, and make number
 * @fail_at (1 for the first; 0: none) fail as it would without memory.
 * alloc_fail_disarm - stop counting; returns how many calls were counted.
 */
void alloc_fail_arm(unsigned long fail_at);
unsigned long alloc_fail_disarm(void);

/* alloc_fail_hit - whether the planned failure happened. */
bool alloc_fail_hit(void);

/* alloc_fail_what - the call that failed ("strdup"), or NULL. */
const char *alloc_fail_what(void);

#endif
