/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal zip writer (stored entries only) for certificate downloads:
 * none of the project's libraries writes zip files. */
#include "config.h"

#include "cli.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put16(FILE *f, unsigned v)
{
    fputc((int)(v & 0xff), f);
    fputc((int)((v >> 8) & 0xff), f);
}

static void put32(FILE *f, uint32_t v)
{
    put16(f, v & 0xffff);
    put16(f, v >> 16);
}

/* MS-DOS time and date of now, as zip headers carry them. */
static void dos_now(unsigned *tm_out, unsigned *date_out)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    *tm_out = (unsigned)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
    *date_out =
        (unsigned)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
}

/* The fields local and central headers share (from "version needed"). */
static void common_fields(FILE *f, const struct zip_entry *e, uint32_t crc,
                          unsigned dt, unsigned dd)
{
    put16(f, 10); /* version needed: stored */
    put16(f, 0);  /* flags */
    put16(f, 0);  /* method: stored */
    put16(f, dt);
    put16(f, dd);
    put32(f, crc);
    put32(f, (uint32_t)e->len);
    put32(f, (uint32_t)e->len);
    put16(f, (unsigned)strlen(e->name));
    put16(f, 0); /* extra length */
}

int zip_write(FILE *f, const struct zip_entry *e, size_t n)
{
    uint32_t offs[16], crcs[16], cd_start, cd_len;
    unsigned dt, dd;

    if (n > 16)
        return P11CA_E_INPUT;
    dos_now(&dt, &dd);
    for (size_t i = 0; i < n; i++) {
        offs[i] = (uint32_t)ftell(f);
        crcs[i] = crc32_of(e[i].data, e[i].len);
        put32(f, 0x04034b50u);
        common_fields(f, &e[i], crcs[i], dt, dd);
        fputs(e[i].name, f);
        fwrite(e[i].data, 1, e[i].len, f);
    }
    cd_start = (uint32_t)ftell(f);
    for (size_t i = 0; i < n; i++) {
        put32(f, 0x02014b50u);
        put16(f, 20); /* version made by */
        common_fields(f, &e[i], crcs[i], dt, dd);
        put16(f, 0); /* comment length */
        put16(f, 0); /* disk number */
        put16(f, 0); /* internal attributes */
        put32(f, 0); /* external attributes */
        put32(f, offs[i]);
        fputs(e[i].name, f);
    }
    cd_len = (uint32_t)ftell(f) - cd_start;
    put32(f, 0x06054b50u);
    put16(f, 0);
    put16(f, 0);
    put16(f, (unsigned)n);
    put16(f, (unsigned)n);
    put32(f, cd_len);
    put32(f, cd_start);
    put16(f, 0);
    return ferror(f) ? P11CA_E_IO : P11CA_OK;
}
