/* SPDX-License-Identifier: Apache-2.0 */
/* Dates and durations as users write them: the CLI's filters and the
 * service's query parameters share one reading. */
#include "config.h"

#include "timeparse.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int p11ca_parse_time(const char *s, int64_t *t)
{
    struct tm tm;
    const char *end;
    char *e = NULL;

    memset(&tm, 0, sizeof(tm));
    if (s[0] == '@') {
        long long v = strtoll(s + 1, &e, 10);
        if (e == s + 1 || *e)
            return -1;
        *t = v;
        return 0;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end && (*end == 'T' || *end == ' '))
        end = strptime(end + 1, "%H:%M:%S", &tm);
    if (end && *end == 'Z')
        end++;
    if (!end || *end)
        return -1;
    *t = (int64_t)timegm(&tm);
    return 0;
}

int p11ca_parse_duration(const char *s, int64_t *secs)
{
    char *e = NULL;
    long long v = strtoll(s, &e, 10);
    int64_t unit = 1;

    if (e == s || v < 0)
        return -1;
    switch (*e) {
    case 'w':
        unit = 7 * 86400;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'm':
        unit = 60;
        break;
    case 's':
    case '\0':
        unit = 1;
        break;
    default:
        return -1;
    }
    if (*e && e[1])
        return -1;
    *secs = (int64_t)v * unit;
    return 0;
}
