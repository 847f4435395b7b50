/* SPDX-License-Identifier: Apache-2.0 */
/* Dates and durations as users write them (CLI options, API queries). */
#ifndef P11CA_TIMEPARSE_H
#define P11CA_TIMEPARSE_H

#include <stdint.h>

/*
 * p11ca_parse_time - "2026-11-22", "2026-11-22T10:00:00Z",
 * "2026-11-22 10:00:00" (UTC) or "@1795000000" into Unix seconds @t.
 * Returns 0, or -1 when @s is none of these.
 */
int p11ca_parse_time(const char *s, int64_t *t);

/*
 * p11ca_parse_duration - "30d", "12h", "90m", "3600s", "2w" or plain
 * seconds into @secs.  Returns 0, or -1 (negative, bad unit, trailing text).
 */
int p11ca_parse_duration(const char *s, int64_t *secs);

#endif
