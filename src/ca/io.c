/* SPDX-License-Identifier: Apache-2.0 */
/* The CA's file I/O: bounded reads, atomic writes, certificate files, and
 * OpenSSL error text for messages. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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

/* Symbolic links followed (with CA_OUT_FOLLOW_SYMLINKS) before giving up,
 * as the kernel's limit for path lookups. */
#define OUT_MAX_LINKS 40

/*
 * An output: a regular file (new or existing) is written to @tmp and
 * renamed over @path; a character device or a FIFO is written through
 * (@through: @fd is the device itself, opened at ca_outfile_open).
 */
struct ca_outfile {
    char *path; /* the file written: a symbolic link resolved */
    char *tmp;  /* NULL when written through */
    int fd;
    bool sync;
    bool through;
    BIO *mem;
};

static int read_fd(int fd, const char *name, size_t max, unsigned char **out,
                   size_t *len);
static int write_all(int fd, const void *data, size_t len);
static int sync_dir(const char *path);
static int out_resolve(ca_outfile *f, unsigned flags, struct stat *st);
static int out_through(ca_outfile *f, const struct stat *st);
static int out_temp(ca_outfile *f, int mode);
static int write_file(const char *path, const void *data, size_t len, int mode,
                      bool sync, unsigned flags);

/* "LIB: REASON: DATA" of one queued error (the parts it has). */
static void err_text(char *buf, size_t len, unsigned long e, const char *data,
                     int flags)
{
    const char *lib = ERR_lib_error_string(e);
    const char *why = ERR_reason_error_string(e);
    char num[32];

    if (!why) {
        snprintf(num, sizeof(num), "error %d", ERR_GET_REASON(e));
        why = num;
    }
    snprintf(buf, len, "%s%s%s%s%s", lib ? lib : "", lib ? ": " : "", why,
             (flags & ERR_TXT_STRING) && data && *data ? ": " : "",
             (flags & ERR_TXT_STRING) && data ? data : "");
}

static bool err_ours(unsigned long e)
{
    const char *lib = ERR_lib_error_string(e);

    return lib && strcmp(lib, "p11ca") == 0;
}

/*
 * The OpenSSL error queue as one message: the p11ca provider's errors, in
 * the order raised (they say what the token did); only without them the
 * newest other error.  With a pkcs11: URI, OSSL_STORE goes on to its other
 * loaders after ours failed ("scheme=file", "calling stat(pkcs11:...)"),
 * and libcrypto queues what it tried on the way (engines): the last error
 * is then not the reason a user needs to read.
 */
static void err_queue(char *out, size_t len)
{
    unsigned long e[16];
    char text[16][512];
    const char *data;
    size_t n = 0, used = 0;
    bool any = false;
    int flags;

    out[0] = '\0';
    while (n < 16
           && (e[n] = ERR_get_error_all(NULL, NULL, NULL, &data, &flags))
                  != 0) {
        err_text(text[n], sizeof(text[n]), e[n], data, flags);
        any = any || err_ours(e[n]);
        n++;
    }
    ERR_clear_error();
    for (size_t i = 0; any && i < n && used + 1 < len; i++) {
        if (!err_ours(e[i]))
            continue;
        snprintf(out + used, len - used, "%s%s", used ? "; " : "", text[i]);
        used = strlen(out);
    }
    if (!any && n > 0)
        snprintf(out, len, "%s", text[n - 1]);
}

int ca_ossl_err(int rc, const char *fmt, ...)
{
    char msg[512], detail[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_queue(detail, sizeof(detail));
    return p11ca_err_set(rc, "%s%s%s", msg, detail[0] ? ": " : "", detail);
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
                           "%s is too large (%lld bytes, at most %zu)", path,
                           (long long)st.st_size, max);
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
                           "%s is too large (more than %zu bytes)", name, max);
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

/* The path a symbolic link points to, relative to the link's directory
 * (malloc'd; NULL with errno set). */
static char *link_next(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    char buf[PATH_MAX], *next;
    ssize_t n = readlink(path, buf, sizeof(buf) - 1);

    if (n < 0)
        return NULL;
    buf[n] = '\0';
    if (buf[0] == '/')
        dlen = 0;
    next = malloc(dlen + (size_t)n + 1);
    if (next) {
        memcpy(next, path, dlen);
        memcpy(next + dlen, buf, (size_t)n + 1);
    }
    return next;
}

/*
 * What @f->path is: nothing yet (0 in st_mode) or a regular file (renamed
 * over), a character device or FIFO (written through), a symbolic link
 * (refused unless CA_OUT_FOLLOW_SYMLINKS; then what it points to, which
 * may not exist yet), or something never written (a directory, a block
 * device, a socket).
 */
static int out_resolve(ca_outfile *f, unsigned flags, struct stat *st)
{
    char *next;

    for (int depth = 0;; depth++) {
        if (lstat(f->path, st) != 0) {
            memset(st, 0, sizeof(*st));
            if (errno == ENOENT)
                return P11CA_OK;
            return p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", f->path,
                                 strerror(errno));
        }
        if (!S_ISLNK(st->st_mode))
            break;
        if (!(flags & CA_OUT_FOLLOW_SYMLINKS))
            return p11ca_err_set(
                P11CA_E_INPUT,
                "%s is a symbolic link: not replaced, not followed (--follow-symlinks writes to the file it points to)",
                f->path);
        /* What the kernel reaches through the link (/dev/stdout's
         * /proc/self/fd/1 too): a regular file is then known by its real
         * name, a device or FIFO is opened through the link. */
        if (stat(f->path, st) == 0) {
            if (S_ISREG(st->st_mode) && (next = realpath(f->path, NULL))) {
                free(f->path);
                f->path = next;
            }
            break;
        }
        /* A link to nothing yet: its target is made, as `>` would. */
        if (errno != ENOENT || depth == OUT_MAX_LINKS
            || !(next = link_next(f->path)))
            return p11ca_err_set(
                P11CA_E_INPUT, "cannot follow the symbolic link %s: %s",
                f->path,
                depth == OUT_MAX_LINKS ? strerror(ELOOP) : strerror(errno));
        free(f->path);
        f->path = next;
    }
    if (S_ISDIR(st->st_mode))
        return p11ca_err_set(P11CA_E_INPUT,
                             "%s is a directory: give a file name", f->path);
    if (!S_ISREG(st->st_mode) && !S_ISCHR(st->st_mode)
        && !S_ISFIFO(st->st_mode))
        return p11ca_err_set(
            P11CA_E_INPUT,
            "%s is a %s: p11ca writes regular files, character devices and FIFOs only",
            f->path, S_ISBLK(st->st_mode) ? "block device" : "socket");
    return P11CA_OK;
}

/*
 * Open the device or FIFO @f->path for writing, as a shell redirection
 * would (a FIFO waits here for its reader, before anything is signed);
 * never created, truncated or replaced.
 */
static int out_through(ca_outfile *f, const struct stat *st)
{
    struct stat now;

    f->fd = open(f->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (f->fd < 0)
        return p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", f->path,
                             strerror(errno));
    /* Still the device or FIFO that was checked? */
    if (fstat(f->fd, &now) != 0 || now.st_dev != st->st_dev
        || now.st_ino != st->st_ino)
        return p11ca_err_set(P11CA_E_IO, "%s changed while it was opened",
                             f->path);
    f->through = true;
    f->sync = false; /* fsync means nothing to a device or a pipe */
    return P11CA_OK;
}

/* The hidden temporary file next to @f->path, renamed over it at commit. */
static int out_temp(ca_outfile *f, int mode)
{
    f->tmp = tmp_name(f->path);
    if (!f->tmp)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        return p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", f->path,
                             strerror(e));
    }
    (void)fchmod(f->fd, (mode_t)mode);
    return P11CA_OK;
}

int ca_outfile_open(const char *path, int mode, unsigned flags,
                    ca_outfile **out)
{
    ca_outfile *f = calloc(1, sizeof(*f));
    struct stat st;
    int rc = P11CA_E_NOMEM;

    *out = NULL;
    if (!f)
        return p11ca_err_set(rc, "out of memory");
    f->fd = -1;
    f->sync = true;
    f->path = strdup(path);
    f->mem = BIO_new(BIO_s_mem());
    if (!f->path || !f->mem) {
        rc = p11ca_err_set(rc, "out of memory");
        goto out;
    }
    rc = out_resolve(f, flags, &st);
    if (rc == P11CA_OK && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
        rc = out_through(f, &st);
    else if (rc == P11CA_OK)
        rc = out_temp(f, mode);
    if (rc == P11CA_OK) {
        *out = f;
        f = NULL;
    }
out:
    ca_outfile_free(f);
    return rc;
}

BIO *ca_outfile_bio(ca_outfile *f)
{
    return f->mem;
}

int ca_outfile_stage(ca_outfile *f)
{
    char *data = NULL;
    long n = BIO_get_mem_data(f->mem, &data);
    int e = 0;

    if (n < 0 || write_all(f->fd, data, (size_t)n) != 0)
        e = n < 0 ? EINVAL : errno;
    if (e)
        return p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", f->path,
                             strerror(e));
    return P11CA_OK;
}

int ca_outfile_sync(ca_outfile *f)
{
    int e = 0;

    if (f->sync && fsync(f->fd) != 0)
        e = errno;
    if (close(f->fd) != 0 && !e)
        e = errno;
    f->fd = -1;
    if (e)
        return p11ca_err_set(P11CA_E_IO, "cannot write %s: %s", f->path,
                             strerror(e));
    return P11CA_OK;
}

int ca_outfile_place(ca_outfile *f)
{
    struct stat st;

    if (f->through)
        return P11CA_OK;
    /* Only a regular file (or nothing) is ever replaced. */
    if (lstat(f->path, &st) == 0 && !S_ISREG(st.st_mode))
        return p11ca_err_set(P11CA_E_IO,
                             "%s is no longer a regular file: not replaced",
                             f->path);
    if (rename(f->tmp, f->path) != 0)
        return p11ca_err_set(P11CA_E_IO, "cannot rename to %s: %s", f->path,
                             strerror(errno));
    free(f->tmp);
    f->tmp = NULL;
    return P11CA_OK;
}

int ca_outfile_dir_sync(const char *path)
{
    if (sync_dir(path) != 0)
        return p11ca_err_set(P11CA_E_IO, "cannot sync the directory of %s",
                             path);
    return P11CA_OK;
}

int ca_outfile_commit(ca_outfile *f)
{
    int rc = ca_outfile_stage(f);

    if (rc != P11CA_OK) {
        close(f->fd);
        f->fd = -1;
        return rc;
    }
    rc = ca_outfile_sync(f);
    if (rc == P11CA_OK)
        rc = ca_outfile_place(f);
    if (rc == P11CA_OK && f->sync && !f->through)
        rc = ca_outfile_dir_sync(f->path);
    return rc;
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
                      bool sync, unsigned flags)
{
    ca_outfile *f = NULL;
    int rc;

    rc = ca_outfile_open(path, mode, flags, &f);
    if (rc == P11CA_OK)
        f->sync = f->sync && sync;
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
    return write_file(path, data, len, mode, true, 0);
}

int ca_write_bio_file(const char *path, BIO *b, int mode, unsigned flags)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);

    if (n < 0)
        return p11ca_err_set(P11CA_E_INTERNAL, "no data for %s", path);
    return write_file(path, data, (size_t)n, mode, true, flags);
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
