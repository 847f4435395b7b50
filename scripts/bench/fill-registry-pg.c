/* SPDX-License-Identifier: Apache-2.0 */
/* The rows of a synthetic registry as PostgreSQL's COPY text, for
 * `COPY certs (...) FROM STDIN` (scripts/bench/registry): what
 * fill-registry.py makes for SQLite, in C because 10,000,000 rows in
 * Python take longer than the load.  Random lower-case hex serials (160
 * bits, no leading zero), CNs host-0..N-1, validity spread over two years,
 * REVOKED certificates revoked (spread evenly, not yet expired: all in the
 * CRL), 5 % not-activated, 1 % registered-not-activated, the rest
 * activated.  The DER of every row is one real certificate (the file
 * DER), enough for listing and CRLs; the key hash is random.
 * With SECONDS (not 0), it stops after that many seconds, at whatever
 * row it has reached (a fill bounded in time); it says how many it wrote.
 *   fill-registry-pg N REVOKED CA_ID ISSUER DER NOW [SECONDS] >rows.copy
 * Columns: id, serial, ca_id, subject, issuer, cn, ou, client_id, profile,
 * origin, status, not_before, not_after, recorded_at, revoked_at, reason,
 * key_hash, der. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rnd_state = 42;

/* splitmix64: fast, repeatable. */
static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void hex_random(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        if (i % 16 == 0)
            v = rnd();
        out[i] = digits[v & 15];
        v >>= 4;
    }
    out[n] = '\0';
}

int main(int argc, char **argv)
{
    static const int reasons[] = {1, 3, 4, 5};
    static const char digits[] = "0123456789abcdef";
    const int64_t day = 86400;
    char serial[41], key_hash[65], *der_hex;
    unsigned char der[8192];
    long long n, revoked, step, done = 0, i;
    int64_t now, nb, na, stop = 0;
    size_t der_len;
    FILE *f;

    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: fill-registry-pg N REVOKED CA_ID ISSUER DER "
                        "NOW [SECONDS]\n");
        return 2;
    }
    n = atoll(argv[1]);
    revoked = atoll(argv[2]);
    now = atoll(argv[6]);
    if (argc == 8 && atoll(argv[7]) > 0)
        stop = (int64_t)time(NULL) + atoll(argv[7]);
    if (n <= 0 || revoked < 0 || revoked > n || !(f = fopen(argv[5], "rb")))
        return 2;
    der_len = fread(der, 1, sizeof(der), f);
    fclose(f);
    if (der_len == 0 || der_len == sizeof(der))
        return 2;
    /* COPY text: "\\x" then hex is a bytea. */
    der_hex = malloc(der_len * 2 + 4);
    if (!der_hex)
        return 1;
    memcpy(der_hex, "\\\\x", 3);
    for (size_t k = 0; k < der_len; k++) {
        der_hex[3 + 2 * k] = digits[der[k] >> 4];
        der_hex[4 + 2 * k] = digits[der[k] & 15];
    }
    der_hex[3 + 2 * der_len] = '\0';
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    step = revoked ? n / revoked : 0;
    for (i = 0; i < n; i++) {
        const char *status = "activated", *origin = "issued";
        const char *profile = "client", *suffix = "";
        char rev_at[24] = "\\N", reason[8] = "\\N";

        if (stop && i % 10000 == 0 && (int64_t)time(NULL) >= stop)
            break;

        hex_random(serial, 40);
        serial[0] = digits[1 + rnd() % 15];
        hex_random(key_hash, 64);
        nb = now - (int64_t)(rnd() % (uint64_t)(365 * day));
        na = nb + 30 * day + (int64_t)(rnd() % (uint64_t)(700 * day));
        if (step && i % step == 0 && done < revoked) {
            /* Revoked and not yet expired: every one goes into the CRL. */
            status = "revoked";
            suffix = "#old";
            if (na < now + 60 * day)
                na = now + 60 * day;
            snprintf(rev_at, sizeof(rev_at), "%" PRId64, nb + 3600);
            snprintf(reason, sizeof(reason), "%d", reasons[done % 4]);
            done++;
        } else if (i % 20 == 3) {
            status = "not-activated";
        } else if (i % 100 == 7) {
            status = "registered-not-activated";
            origin = "registered";
            profile = "\\N";
        }
        printf("%lld\t%s\t%s\tCN=host-%lld,OU=fleet\t%s\thost-%lld\tfleet\t"
               "host-%lld%s\t%s\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64
               "\t%s\t%s\t%s\t%s\n",
               i + 1, serial, argv[3], i, argv[4], i, i, suffix, profile,
               origin, status, nb, na, nb, rev_at, reason, key_hash, der_hex);
    }
    free(der_hex);
    if (fflush(stdout) != 0)
        return 1;
    fprintf(stderr, "rows: %lld certificates, %lld revoked%s\n", i, done,
            i < n ? " (stopped: out of time)" : "");
    return 0;
}
