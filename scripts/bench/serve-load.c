/* SPDX-License-Identifier: Apache-2.0 */
/* The load generator of scripts/bench/serve: TLS (mTLS with a client key
 * file) HTTP/1.1 clients of `p11ca serve`, plain threads and blocking
 * sockets, bounded by a count and a time, connections spread round-robin
 * over one or more addresses (-a 127.0.0.1:8443,127.0.0.1:8444: a
 * two-node bench reuses it).  Requests come from a fixed template;
 * responses are read by Content-Length and their status checked.
 *
 *   serve-load enroll -a ADDRS -c CERT -k KEY -n CONNS -N COUNT -t SECS
 *              -f CSRS.pem [-P PROFILE]
 *       CONNS keep-alive connections, each on its thread, POST /v1/enroll
 *       {"csr": CSR i, "profile": PROFILE} one after the other, each CSR
 *       of the file once (COUNT at most); 201 expected.
 *   serve-load handshake -a ADDRS [-c CERT -k KEY] -n THREADS -N COUNT
 *              -t SECS
 *       each thread: a new connection, the TLS handshake, GET /healthz
 *       (200 expected: with TLS 1.3 the server checks the client's
 *       certificate after the client's side of the handshake is done, so
 *       the answer is what says it was admitted), close_notify, close.
 *   serve-load idle -a ADDRS [-c CERT -k KEY] -n CONNS -t SECS [-i MS]
 *              [-p PID]
 *       opens CONNS connections (4 threads), each makes one GET /healthz
 *       and is then held idle (the TLS state is freed on this side, the
 *       socket kept); then GET /healthz every MS ms (default 10) on one
 *       more keep-alive connection for SECS; the server's VmRSS (from
 *       /proc/PID/status) after opening and the most while probing.
 *
 * The server's certificate is not verified (SSL_VERIFY_NONE): that is the
 * client's work, and the client shares the CPUs with the server.  Any
 * failure of the tool itself ends the run (exit 1). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADDRS   16
#define MAX_THREADS 512
#define MAX_RESP    65536

static struct sockaddr_in addrs[MAX_ADDRS];
static int n_addrs;
static atomic_long next_addr;

static SSL_CTX *ctx;
static double t0, secs;
static long count;

/* enroll */
static char **reqs;
static size_t *req_len;
static atomic_long next_req;
/* every mode: latencies in seconds, by request (or handshake) index */
static double *lat;
static atomic_long n_ok, n_bad;
static atomic_int first_bad_code;

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "serve-load: %s: %s\n", what,
            errno ? strerror(errno) : "failed");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void parse_addrs(const char *list)
{
    char *copy = strdup(list), *save = NULL, *tok;

    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        struct sockaddr_in *a = &addrs[n_addrs];

        if (!colon || n_addrs == MAX_ADDRS) {
            fprintf(stderr,
                    "serve-load: -a HOST:PORT[,...] (IPv4, at most %d)\n",
                    MAX_ADDRS);
            exit(2);
        }
        *colon = '\0';
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)atoi(colon + 1));
        if (inet_pton(AF_INET, tok, &a->sin_addr) != 1) {
            fprintf(stderr, "serve-load: not an IPv4 address: %s\n", tok);
            exit(2);
        }
        n_addrs++;
    }
    free(copy);
}

/* A connected socket to the next address (round-robin). */
static int dial(void)
{
    long i = atomic_fetch_add(&next_addr, 1) % n_addrs;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0
        || connect(fd, (struct sockaddr *)&addrs[i], sizeof(addrs[i])) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static SSL *tls_open(int fd)
{
    SSL *ssl = SSL_new(ctx);

    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
        die("TLS handshake");
    return ssl;
}

static void write_all(SSL *ssl, const char *b, size_t len)
{
    size_t n;

    if (SSL_write_ex(ssl, b, len, &n) != 1 || n != len)
        die("write");
}

/* Reads one response on @ssl into @buf; its status code, or -1 when the
 * connection closed or failed before a whole response. */
static int read_response(SSL *ssl, char *buf, size_t cap)
{
    size_t got = 0, n, hl, blen;
    char *end, *cl;

    for (;;) {
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end) {
            hl = (size_t)(end - buf) + 4;
            cl = strcasestr(buf, "\r\nContent-Length:");
            if (!cl || cl > end) {
                fprintf(stderr,
                        "serve-load: a response without Content-Length\n");
                exit(1);
            }
            blen = strtoul(cl + 17, NULL, 10);
            if (got >= hl + blen)
                return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
        }
        if (got + 1 >= cap) {
            fprintf(stderr, "serve-load: a response over %zu bytes\n", cap);
            exit(1);
        }
        if (SSL_read_ex(ssl, buf + got, cap - 1 - got, &n) != 1)
            return -1;
        got += n;
    }
}

static void count_status(int code, int want)
{
    if (code == want) {
        atomic_fetch_add(&n_ok, 1);
    } else {
        int zero = 0;

        atomic_fetch_add(&n_bad, 1);
        atomic_compare_exchange_strong(&first_bad_code, &zero, code);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sorts @v[0..n) and prints p50, p99, max and a histogram (ms). */
static void latencies(const char *what, double *v, long n)
{
    static const double edges[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
    const int ne = (int)(sizeof(edges) / sizeof(edges[0]));
    long h[sizeof(edges) / sizeof(edges[0]) + 1] = {0};

    if (n <= 0) {
        printf("%s: no latency (nothing done)\n", what);
        return;
    }
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    for (long i = 0; i < n; i++) {
        int b = 0;

        while (b < ne && v[i] * 1e3 >= edges[b])
            b++;
        h[b]++;
    }
    printf("%s latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; histogram (ms):",
           what, v[n / 2] * 1e3, v[(long)((double)(n - 1) * 0.99)] * 1e3,
           v[n - 1] * 1e3);
    for (int b = 0; b <= ne; b++)
        if (h[b]) {
            if (b < ne)
                printf(" <%g: %ld", edges[b], h[b]);
            else
                printf(" >=%g: %ld", edges[ne - 1], h[b]);
        }
    printf("\n");
}

/* ---------------------------------------------------------------- */
/* enroll                                                            */
/* ---------------------------------------------------------------- */

/* The requests: one per PEM CSR of @path, as a JSON string. */
static long load_csrs(const char *path, const char *profile)
{
    FILE *f = fopen(path, "r");
    const char *endm = "-----END CERTIFICATE REQUEST-----";
    char line[256], body[8192];
    size_t bl = 0;
    long n = 0, cap = 0;

    if (!f)
        die(path);
    while (fgets(line, sizeof(line), f)) {
        size_t l = strcspn(line, "\r\n");

        if (bl + l + 2 >= sizeof(body))
            die("a CSR over 8 KiB");
        memcpy(body + bl, line, l);
        bl += l;
        memcpy(body + bl, "\\n", 2);
        bl += 2;
        if (strncmp(line, endm, strlen(endm)) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            reqs = realloc(reqs, sizeof(*reqs) * (size_t)cap);
            req_len = realloc(req_len, sizeof(*req_len) * (size_t)cap);
            if (!reqs || !req_len)
                die("malloc");
        }
        {
            size_t jl = bl + strlen(profile) + 64;
            char *r = malloc(jl + 256), *j = malloc(jl);
            int bn, h;

            if (!r || !j)
                die("malloc");
            bn = snprintf(j, jl, "{\"csr\":\"%.*s\",\"profile\":\"%s\"}",
                          (int)bl, body, profile);
            h = snprintf(r, 256,
                         "POST /v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n",
                         bn);
            memcpy(r + h, j, (size_t)bn);
            req_len[n] = (size_t)h + (size_t)bn;
            reqs[n++] = r;
            free(j);
        }
        bl = 0;
    }
    fclose(f);
    return n;
}

static void *enroll_thread(void *arg)
{
    char *buf = malloc(MAX_RESP);
    int fd = dial();
    SSL *ssl = tls_open(fd);
    long i;

    (void)arg;
    if (!buf)
        die("malloc");
    while ((i = atomic_fetch_add(&next_req, 1)) < count) {
        double s = now_s();
        int code;

        if (s - t0 >= secs)
            break;
        write_all(ssl, reqs[i], req_len[i]);
        code = read_response(ssl, buf, MAX_RESP);
        lat[i] = now_s() - s;
        count_status(code, 201);
        if (code < 0)
            die("the server closed a keep-alive connection");
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    free(buf);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* handshake                                                         */
/* ---------------------------------------------------------------- */

static const char healthz[] =
    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static void *handshake_thread(void *arg)
{
    char buf[4096];
    long i;

    (void)arg;
    while ((i = atomic_fetch_add(&next_req, 1)) < count) {
        double s = now_s();
        int fd, code;
        SSL *ssl;

        if (s - t0 >= secs)
            break;
        fd = dial();
        ssl = SSL_new(ctx);
        if (!ssl || SSL_set_fd(ssl, fd) != 1)
            die("SSL_new");
        if (SSL_connect(ssl) == 1) {
            size_t n;

            code = SSL_write_ex(ssl, healthz, sizeof(healthz) - 1, &n) == 1
                       ? read_response(ssl, buf, sizeof(buf))
                       : -1;
        } else {
            code = -1;
        }
        ERR_clear_error();
        lat[i] = now_s() - s;
        count_status(code, 200);
        if (code > 0)
            SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

/* ---------------------------------------------------------------- */
/* idle                                                              */
/* ---------------------------------------------------------------- */

static int *idle_fds;
static long n_idle;
static atomic_long n_idle_failed;
static char idle_error[512];

static void *idle_thread(void *arg)
{
    long step = (long)(intptr_t)arg, i;
    char buf[4096];

    for (i = step; i < n_idle; i += 4) {
        int fd = dial(), code = -1;
        SSL *ssl = SSL_new(ctx);
        size_t n;

        if (!ssl || SSL_set_fd(ssl, fd) != 1)
            die("SSL_new");
        if (SSL_connect(ssl) == 1
            && SSL_write_ex(ssl, healthz, sizeof(healthz) - 1, &n) == 1)
            code = read_response(ssl, buf, sizeof(buf));
        if (code != 200) {
            /* Counted, the first one kept: the others are still held. */
            char e[256] = "";
            long first = atomic_fetch_add(&n_idle_failed, 1);

            ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
            if (first == 0)
                snprintf(idle_error, sizeof(idle_error),
                         "connection %ld: status %d %s", i, code, e);
            ERR_clear_error();
            SSL_free(ssl);
            close(fd);
            idle_fds[i] = -1;
            continue;
        }
        /* Nothing sent: the server keeps its side of the session. */
        SSL_free(ssl);
        idle_fds[i] = fd;
    }
    return NULL;
}

static long vmrss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int idle_run(long pid, int interval_ms)
{
    pthread_t th[4];
    double topen, tp, end;
    long rss0, rss, rss_max, probes = 0, conns = -1, cap;
    char *buf = malloc(MAX_RESP), *c;
    struct timespec gap = {interval_ms / 1000,
                           (long)(interval_ms % 1000) * 1000000L};
    int fd, code;
    SSL *ssl;

    idle_fds = calloc((size_t)n_idle, sizeof(int));
    if (!buf || !idle_fds)
        die("malloc");
    for (long t = 0; t < 4; t++)
        if (pthread_create(&th[t], NULL, idle_thread, (void *)(intptr_t)t))
            die("pthread_create");
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    topen = now_s() - t0;
    rss0 = rss_max = vmrss_kb(pid);
    if (atomic_load(&n_idle_failed))
        printf(
            "idle: %ld of the %ld connections failed (the first: %s); server VmRSS %ld kB\n",
            atomic_load(&n_idle_failed), n_idle, idle_error, rss0);
    fflush(stdout);
    cap = (long)(secs * 1000 / (interval_ms > 0 ? interval_ms : 1)) + 16;
    lat = malloc(sizeof(double) * (size_t)cap);
    if (!lat)
        die("malloc");
    fd = dial();
    ssl = tls_open(fd);
    tp = now_s();
    end = tp + secs;
    while (now_s() < end && probes < cap) {
        double s = now_s();

        write_all(ssl, healthz, sizeof(healthz) - 1);
        code = read_response(ssl, buf, MAX_RESP);
        lat[probes++] = now_s() - s;
        count_status(code, 200);
        if (code < 0)
            die("the server closed the probe connection");
        if ((c = strstr(buf, "\"connections\":")))
            conns = strtol(c + 14, NULL, 10);
        if (probes % 50 == 0 && (rss = vmrss_kb(pid)) > rss_max)
            rss_max = rss;
        nanosleep(&gap, NULL);
    }
    tp = now_s() - tp;
    rss = vmrss_kb(pid);
    if (rss > rss_max)
        rss_max = rss;
    printf(
        "idle: %ld connections held over %d address(es), opened in %.1f s (a handshake and one GET /healthz each); /healthz every %d ms on one more: %ld probes in %.1f s, 200: %ld, other %ld; the server counts %ld connections; server VmRSS %ld kB after opening, %ld kB at most while probing (%.1f MB)\n",
        n_idle - atomic_load(&n_idle_failed), n_addrs, topen, interval_ms,
        probes, tp, atomic_load(&n_ok), atomic_load(&n_bad), conns, rss0,
        rss_max, (double)rss_max / 1024);
    latencies("/healthz", lat, probes);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    for (long i = 0; i < n_idle; i++)
        if (idle_fds[i] >= 0)
            close(idle_fds[i]);
    free(idle_fds);
    free(buf);
    return atomic_load(&n_bad) || atomic_load(&n_idle_failed) ? 1 : 0;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: serve-load enroll -a ADDRS -c CERT -k KEY -n CONNS -N COUNT -t SECS -f CSRS.pem [-P PROFILE]\n"
        "       serve-load handshake -a ADDRS [-c CERT -k KEY] -n THREADS -N COUNT -t SECS\n"
        "       serve-load idle -a ADDRS [-c CERT -k KEY] -n CONNS -t SECS [-i MS] [-p PID]\n"
        "ADDRS: HOST:PORT[,HOST:PORT...] (IPv4), connections spread round-robin\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *mode, *cert = NULL, *key = NULL, *csrs = NULL,
                      *profile = "client";
    int opt, n = 0, interval = 10;
    long pid = 0;
    struct rlimit rl;
    pthread_t *th;
    double el;

    if (argc < 2)
        usage();
    mode = argv[1];
    optind = 2;
    while ((opt = getopt(argc, argv, "a:c:k:n:N:t:f:P:p:i:")) != -1) {
        switch (opt) {
        case 'a':
            parse_addrs(optarg);
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'n':
            n = atoi(optarg);
            break;
        case 'N':
            count = atol(optarg);
            break;
        case 't':
            secs = atof(optarg);
            break;
        case 'f':
            csrs = optarg;
            break;
        case 'P':
            profile = optarg;
            break;
        case 'p':
            pid = atol(optarg);
            break;
        case 'i':
            interval = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (n_addrs == 0 || n < 1 || secs <= 0 || !cert != !key)
        usage();
    /* Every idle connection is a descriptor. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (cert
        && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1))
        die("the client certificate or key");
    t0 = now_s();
    if (strcmp(mode, "idle") == 0) {
        n_idle = n;
        return idle_run(pid, interval);
    }
    if (count < 1 || n > MAX_THREADS)
        usage();
    if (strcmp(mode, "enroll") == 0) {
        long have;

        if (!csrs || !cert)
            usage();
        have = load_csrs(csrs, profile);
        if (have < count)
            count = have;
        t0 = now_s();
    } else if (strcmp(mode, "handshake") != 0) {
        usage();
    }
    lat = calloc((size_t)count, sizeof(double));
    th = calloc((size_t)n, sizeof(*th));
    if (!lat || !th)
        die("malloc");
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL,
                           mode[0] == 'e' ? enroll_thread : handshake_thread,
                           NULL))
            die("pthread_create");
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    el = now_s() - t0;
    {
        long ok = atomic_load(&n_ok), bad = atomic_load(&n_bad),
             done = ok + bad, k = 0;
        double *v = malloc(sizeof(double) * (size_t)(done ? done : 1));

        if (!v)
            die("malloc");
        /* the latencies of the requests made (the indexes taken) */
        for (long i = 0; i < count && k < done; i++)
            if (lat[i] > 0)
                v[k++] = lat[i];
        if (mode[0] == 'e')
            printf(
                "enroll: %ld requests in %.2f s over %d connections = %.0f/s; 201: %ld (%.0f/s), other %ld (first: %d)\n",
                done, el, n, (double)done / el, ok, (double)ok / el, bad,
                atomic_load(&first_bad_code));
        else
            printf(
                "handshake: %ld new connections (handshake + GET /healthz) in %.2f s over %d threads = %.0f/s; 200: %ld (%.0f/s), refused or failed %ld\n",
                done, el, n, (double)done / el, ok, (double)ok / el, bad);
        latencies(mode[0] == 'e' ? "enroll" : "handshake", v, k);
        free(v);
        return bad ? 1 : 0;
    }
}
