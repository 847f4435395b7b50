/* SPDX-License-Identifier: Apache-2.0 */
/* Dates and durations as users write them: the CLI's filters and the
 * service's query parameters share one reading. */
#include "config.h"

#include "timeparse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int p11ca_parse_time(const char *s, int64_t *t)
{
    struct tm tm, back;
    const char *end;
    char *e = NULL;
    long long u;
    time_t v;

    memset(&tm, 0, sizeof(tm));
    if (s[0] == '@') {
        errno = 0;
        u = strtoll(s + 1, &e, 10);
        if (e == s + 1 || *e || errno || u < 0 || u > P11CA_TIME_MAX)
            return -1;
        *t = u;
        return 0;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end && (*end == 'T' || *end == ' '))
        end = strptime(end + 1, "%H:%M:%S", &tm);
    if (end && *end == 'Z')
        end++;
    if (!end || *end)
        return -1;
    back = tm;
    v = timegm(&tm);
    /* timegm normalises: a day or second that does not exist moves. */
    if (v < 0 || (int64_t)v > P11CA_TIME_MAX || tm.tm_mday != back.tm_mday
        || tm.tm_mon != back.tm_mon || tm.tm_year != back.tm_year
        || tm.tm_hour != back.tm_hour || tm.tm_min != back.tm_min
        || tm.tm_sec != back.tm_sec)
        return -1;
    *t = (int64_t)v;
    return 0;
}

int p11ca_parse_duration(const char *s, int64_t *secs)
{
    static const struct {
        char unit;
        int64_t secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
    unsigned long long v;
    char *e = NULL;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (v == 0 || !e[0] || e[1])
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (*e == units[i].unit) {
            if (errno
                || v > (unsigned long long)(P11CA_TIME_MAX / units[i].secs))
                return -2;
            *secs = (int64_t)v * units[i].secs;
            return 0;
        }
    return -1;
}
