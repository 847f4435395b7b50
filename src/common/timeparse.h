/* SPDX-License-Identifier: Apache-2.0 */
/* Dates and durations as users write them (CLI options, API queries). */
#ifndef P11CA_TIMEPARSE_H
#define P11CA_TIMEPARSE_H

#include <stdint.h>

/* The last time a certificate can carry: 9999-12-31T23:59:59Z. */
#define P11CA_TIME_MAX INT64_C(253402300799)

/*
 * p11ca_parse_time - "2026-11-22", "2026-11-22T10:00:00Z",
 * "2026-11-22 10:00:00" (UTC) or "@1795000000" into Unix seconds @t: a
 * date that exists (2027-02-30 does not), from 1970 to P11CA_TIME_MAX.
 * Returns 0, or -1 when @s is none of these.
 */
int p11ca_parse_time(const char *s, int64_t *t);

/*
 * p11ca_parse_duration - "30d", "12h", "90m", "3600s", "2w": a positive
 * number and its unit, into @secs.  Returns 0, -1 (no number, no or a
 * bad unit, trailing text), or -2 (longer than P11CA_TIME_MAX seconds).
 */
int p11ca_parse_duration(const char *s, int64_t *secs);

#endif
