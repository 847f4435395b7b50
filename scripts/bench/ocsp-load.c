/* SPDX-License-Identifier: Apache-2.0 */
/* The OCSP benchmark's load generator: plain HTTP/1.1 keep-alive POSTs of
 * one pre-built DER request to an OCSP responder on 127.0.0.1, over N
 * connections from one thread (poll), bounded by a count and a time;
 * prints the rate, the latencies (p50, p99, max), the OCSP response
 * statuses seen and its own CPU time per response.  With "until-revoked" it asks once every 5 ms until the
 * first single response says revoked, and prints the milliseconds since
 * a given CLOCK_REALTIME instant (the benchmark's revocation). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ocsp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_RESP  65536

struct conn {
    int fd;
    double sent; /* when the request went */
    size_t got;  /* bytes of the response read */
    unsigned char buf[MAX_RESP];
};

/* A benchmark tool: any failure ends the run. */
__attribute__((noreturn)) static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now_s(int clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b = malloc(MAX_RESP);

    if (!f || !b)
        die(path);
    *len = fread(b, 1, MAX_RESP, f);
    fclose(f);
    return b;
}

/* The whole HTTP request for @der. */
static char *http_request(const unsigned char *der, size_t len, size_t *out)
{
    char *r = malloc(len + 256);
    int n = snprintf(r, 256,
                     "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/ocsp-request\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     len);

    memcpy(r + n, der, len);
    *out = (size_t)n + len;
    return r;
}

/* The body of a complete response in @c, or NULL while incomplete. */
static const unsigned char *body_of(struct conn *c, size_t *blen, size_t *total,
                                    int *code)
{
    const char *end, *cl;
    size_t hl;

    c->buf[c->got < MAX_RESP ? c->got : MAX_RESP - 1] = 0;
    end = strstr((char *)c->buf, "\r\n\r\n");
    if (!end)
        return NULL;
    hl = (size_t)(end - (char *)c->buf) + 4;
    cl = strcasestr((char *)c->buf, "\r\nContent-Length:");
    if (!cl || cl > end)
        return NULL;
    *blen = strtoul(cl + 17, NULL, 10);
    if (c->got < hl + *blen)
        return NULL;
    *code = atoi((char *)c->buf + 9);
    *total = hl + *blen;
    return c->buf + hl;
}

/* The OCSPResponseStatus of a DER response (0..6), -1: not one. */
static int ocsp_status(const unsigned char *b, size_t len)
{
    size_t i = 2;

    if (len < 5 || b[0] != 0x30)
        return -1;
    if (b[1] & 0x80)
        i += b[1] & 0x7f;
    if (i + 3 > len || b[i] != 0x0a || b[i + 1] != 1)
        return -1;
    return b[i + 2];
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int load_run(int port, const char *reqf, int nconn, long count,
                    double secs)
{
    size_t dlen, rlen;
    unsigned char *der = slurp(reqf, &dlen);
    char *req = http_request(der, dlen, &rlen);
    static struct conn cs[MAX_CONNS];
    struct pollfd pf[MAX_CONNS];
    double *lat = malloc(sizeof(double) * (size_t)count), t0, t, c0;
    long done = 0, sent = 0, errors = 0, st[8] = {0};

    if (!lat)
        die("malloc");
    t0 = now_s(CLOCK_MONOTONIC);
    c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = dial(port);
        pf[i].fd = cs[i].fd;
        pf[i].events = POLLIN;
    }
    for (int i = 0; i < nconn && sent < count; i++, sent++) {
        cs[i].sent = now_s(CLOCK_MONOTONIC);
        if (write(cs[i].fd, req, rlen) != (ssize_t)rlen)
            die("write");
    }
    while (done < sent) {
        if (poll(pf, (nfds_t)nconn, 1000) < 0 && errno != EINTR)
            die("poll");
        for (int i = 0; i < nconn; i++) {
            struct conn *c = &cs[i];
            const unsigned char *body;
            size_t blen, total;
            int code = 0, s;
            ssize_t n;

            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(c->fd, c->buf + c->got, MAX_RESP - 1 - c->got);
            if (n <= 0) {
                fprintf(stderr, "connection %d closed after %ld\n", i, done);
                exit(1);
            }
            c->got += (size_t)n;
            body = body_of(c, &blen, &total, &code);
            if (!body)
                continue;
            t = now_s(CLOCK_MONOTONIC);
            lat[done++] = t - c->sent;
            s = code == 200 ? ocsp_status(body, blen) : -1;
            if (s < 0 || s > 6)
                errors++;
            else
                st[s]++;
            memmove(c->buf, c->buf + total, c->got - total);
            c->got -= total;
            if (sent < count && t - t0 < secs) {
                c->sent = t;
                if (write(c->fd, req, rlen) != (ssize_t)rlen)
                    die("write");
                sent++;
            }
        }
    }
    t = now_s(CLOCK_MONOTONIC) - t0;
    c0 = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    qsort(lat, (size_t)done, sizeof(double), cmp_d);
    printf("%ld responses in %.2f s over %d connections = %.0f/s; latency "
           "p50 %.2f ms, p99 %.2f ms, max %.2f ms; successful %ld (%.0f/s), "
           "tryLater %ld, other %ld, errors %ld; load client CPU %.0f us "
           "per response\n",
           done, t, nconn, (double)done / t, lat[done / 2] * 1e3,
           lat[(size_t)((double)done * 0.99)] * 1e3, lat[done - 1] * 1e3, st[0],
           (double)st[0] / t, st[3], st[1] + st[2] + st[5] + st[6], errors,
           c0 * 1e6 / (double)done);
    free(lat);
    free(req);
    free(der);
    return 0;
}

static int load(int port, const char *reqf, int nconn, long count, double secs)
{
    if (nconn < 1 || nconn > MAX_CONNS || count < 1 || secs <= 0) {
        fprintf(stderr, "ocsp-load: 1 to %d connections, a count and a time\n",
                MAX_CONNS);
        return 2;
    }
    return load_run(port, reqf, nconn, count, secs);
}

/* The first single response's status, -1 if none. */
static int cert_status(const unsigned char *b, size_t len)
{
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &b, (long)len);
    OCSP_BASICRESP *bs = r ? OCSP_response_get1_basic(r) : NULL;
    OCSP_SINGLERESP *one = bs ? OCSP_resp_get0(bs, 0) : NULL;
    int s = one ? OCSP_single_get0_status(one, NULL, NULL, NULL, NULL) : -1;

    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(r);
    return s;
}

static int until_revoked(int port, const char *reqf, double t0, double limit)
{
    size_t dlen, rlen;
    unsigned char *der = slurp(reqf, &dlen);
    char *req = http_request(der, dlen, &rlen);
    static struct conn c;
    const unsigned char *body;
    size_t blen, total;
    int code;
    ssize_t n;

    c.fd = dial(port);
    for (;;) {
        if (write(c.fd, req, rlen) != (ssize_t)rlen)
            die("write");
        c.got = 0;
        while (!(body = body_of(&c, &blen, &total, &code))) {
            n = read(c.fd, c.buf + c.got, MAX_RESP - 1 - c.got);
            if (n <= 0)
                die("read");
            c.got += (size_t)n;
        }
        if (cert_status(body, blen) == V_OCSP_CERTSTATUS_REVOKED)
            break;
        if (now_s(CLOCK_REALTIME) - t0 > limit) {
            printf("timeout\n");
            exit(1);
        }
        usleep(5000);
    }
    printf("%.1f\n", (now_s(CLOCK_REALTIME) - t0) * 1e3);
    close(c.fd);
    free(req);
    free(der);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "load") == 0)
        return load(atoi(argv[2]), argv[3], atoi(argv[4]), atol(argv[5]),
                    atof(argv[6]));
    if (argc == 6 && strcmp(argv[1], "until-revoked") == 0)
        return until_revoked(atoi(argv[2]), argv[3], atof(argv[4]) / 1e9,
                             atof(argv[5]));
    fprintf(stderr,
            "usage: ocsp-load load PORT REQ.der CONNECTIONS COUNT SECONDS\n"
            "       ocsp-load until-revoked PORT REQ.der T0-NS LIMIT-S\n");
    return 2;
}
