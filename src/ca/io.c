/* SPDX-License-Identifier: Apache-2.0 */
/* The CA's file I/O: bounded reads, atomic writes, certificate files, and
 * OpenSSL error text for messages. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"

struct ca_outfile {
    char *path;
    char *tmp;
    int fd;
    bool sync;
    BIO *mem;
};

static int read_fd(int fd, const char *name, size_t max, unsigned char **out,
                   size_t *len);
static int write_all(int fd, const void *data, size_t len);
static int sync_dir(const char *path);
static int write_file(const char *path, const void *data, size_t len, int mode,
                      bool sync);

int ca_ossl_err(int rc, const char *fmt, ...)
{
    char msg[512], detail[256] = "";
    const char *data = NULL;
    int flags = 0;
    /* The first error is the cause (the provider's, naming the token call
     * and its CKR code); the last one says where OpenSSL gave up. */
    unsigned long first = ERR_peek_error_data(&data, &flags);
    unsigned long e = ERR_peek_last_error();
    bool cause =
        first && first != e && data && *data && (flags & ERR_TXT_STRING);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (e)
        ERR_error_string_n(e, detail, sizeof(detail));
    if (cause)
        p11ca_err_set(rc, "%s: %s (%s)", msg, data, detail);
    else
        p11ca_err_set(rc, "%s%s%s", msg, e ? ": " : "", detail);
    ERR_clear_error();
    return rc;
}

int ca_file_read(const char *path, size_t max, unsigned char **out, size_t *len)
{
    struct stat st;
    int fd, rc;

    *out = NULL;
    *len = 0;
    if (strcmp(path, "-") == 0)
        return read_fd(STDIN_FILENO, "standard input", max, out, len);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return p11ca_err_set(P11CA_E_INPUT, "cannot open %s: %s", path,
                             strerror(errno));
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode))
        rc = p11ca_err_set(P11CA_E_INPUT, "%s is not a file", path);
    else if (S_ISREG(st.st_mode) && (size_t)st.st_size > max)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "%s is too large (%lld bytes, at "
                           "most %zu)",
                           path, (long long)st.st_size, max);
    else
        rc = read_fd(fd, path, max, out, len);
    close(fd);
    return rc;
}

/* Read at most @max bytes of @fd: one byte more means "too large". */
static int read_fd(int fd, const char *name, size_t max, unsigned char **out,
                   size_t *len)
{
    size_t cap = max < 65536 ? max + 1 : 65536, n = 0;
    unsigned char *buf = malloc(cap + 1), *nb;
    ssize_t r = 1;
    int rc = P11CA_E_NOMEM;

    while (buf && r != 0 && n <= max) {
        if (n == cap) {
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            if (!(nb = realloc(buf, cap + 1)))
                goto out;
            buf = nb;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = p11ca_err_set(P11CA_E_IO, "cannot read %s: %s", name,
                               strerror(errno));
            goto out;
        }
        n += (size_t)r;
    }
    if (!buf)
        goto out;
    if (n > max) {
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "%s is too large (more than %zu "
                           "bytes)",
                           name, max);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = P11CA_OK;
out:
    if (rc == P11CA_E_NOMEM)
        p11ca_err_set(rc, "out of memory");
    free(buf);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    ssize_t w;

    while (len > 0) {
        w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsync the directory of @path, so that a rename survives a crash. */
static int sync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd = -1, rc = -1;

    if (copy)
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

/* DIR/.NAME.XXXXXX for @path. */
static char *tmp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dlen;
    char *t = malloc(strlen(path) + 10);

    if (t)
        sprintf(t, "%.*s.%s.XXXXXX", (int)dlen, path, base);
    return t;
}

int ca_outfile_open(const char *path, int mode, ca_outfile **out)
{
    ca_outfile *f = calloc(1, sizeof(*f));
    int rc = P11CA_E_NOMEM;

    *out = NULL;
    if (!f)
        return p11ca_err_set(rc, "out of memory");
    f->fd = -1;
    f->sync = true;
    f->path = strdup(path);
    f->tmp = tmp_name(path);
    f->mem = BIO_new(BIO_s_mem());
    if (!f->path || !f->tmp || !f->mem) {
        rc = p11ca_err_set(rc, "out of memory");
        goto out;
    }
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        rc = p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", path,
                           strerror(errno));
        goto out;
    }
    (void)fchmod(f->fd, (mode_t)mode);
    *out = f;
    f = NULL;
    rc = P11CA_OK;
out:
    ca_outfile_free(f);
    return rc;
}

BIO *ca_outfile_bio(ca_outfile *f)
{
    return f->mem;
}

int ca_outfile_commit(ca_outfile *f)
{
    char *data = NULL;
    long n = BIO_get_mem_data(f->mem, &data);

    if (n < 0 || write_all(f->fd, data, (size_t)n) != 0
        || (f->sync && fsync(f->fd) != 0) || close(f->fd) != 0) {
        f->fd = -1;
        return p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", f->path,
                             strerror(errno));
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) != 0)
        return p11ca_err_set(P11CA_E_IO, "cannot rename to %s: %s", f->path,
                             strerror(errno));
    free(f->tmp);
    f->tmp = NULL;
    if (f->sync && sync_dir(f->path) != 0)
        return p11ca_err_set(P11CA_E_IO, "cannot sync the directory of %s",
                             f->path);
    return P11CA_OK;
}

void ca_outfile_free(ca_outfile *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    BIO_free(f->mem);
    free(f);
}

void ca_outfile_set_sync(ca_outfile *f, bool sync)
{
    f->sync = sync;
}

static int write_file(const char *path, const void *data, size_t len, int mode,
                      bool sync)
{
    ca_outfile *f = NULL;
    int rc;

    rc = ca_outfile_open(path, mode, &f);
    if (rc == P11CA_OK)
        f->sync = sync;
    if (rc == P11CA_OK
        && BIO_write(ca_outfile_bio(f), data, (int)len) != (int)len)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_outfile_commit(f);
    ca_outfile_free(f);
    return rc;
}

int ca_write_file(const char *path, const void *data, size_t len, int mode)
{
    return write_file(path, data, len, mode, true);
}

int ca_write_file_nosync(const char *path, const void *data, size_t len,
                         int mode)
{
    return write_file(path, data, len, mode, false);
}

int ca_write_bio_file(const char *path, BIO *b, int mode)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);

    if (n < 0)
        return p11ca_err_set(P11CA_E_INTERNAL, "no data for %s", path);
    return ca_write_file(path, data, (size_t)n, mode);
}

bool ca_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

char *ca_serial_hex(const ASN1_INTEGER *i)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(i, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL, *s = NULL;

    if (hex) {
        s = strdup(hex);
        for (char *p = s; p && *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
    }
    OPENSSL_free(hex);
    BN_free(bn);
    return s;
}

int ca_read_certs(const char *path, STACK_OF(X509) * *out)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    unsigned char *buf = NULL;
    size_t len = 0;
    X509 *x;
    BIO *b = NULL;
    int rc;

    *out = NULL;
    rc = sk ? ca_file_read(path, CA_MAX_CERT_FILE, &buf, &len)
            : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc != P11CA_OK)
        goto out;
    b = BIO_new_mem_buf(buf, (int)len);
    ERR_set_mark();
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(sk, x))
            X509_free(x);
    ERR_pop_to_mark();
    if (sk_X509_num(sk) == 0) {
        rc = p11ca_err_set(P11CA_E_INPUT, "%s holds no PEM certificate", path);
        goto out;
    }
    *out = sk;
    sk = NULL;
out:
    sk_X509_pop_free(sk, X509_free);
    BIO_free(b);
    free(buf);
    return rc;
}
