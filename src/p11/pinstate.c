/* SPDX-License-Identifier: Apache-2.0 */
/* Refused PIN sources remembered across processes: a small state file per
 * token that says which source the token refused and when, never a PIN. */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The file, DIR/pin-<32 hex digits of the token's identity>, is text:
 *
 *   p11ca pin state 1
 *   refused <64 hex: the source's id> <unix time> <the source, for people>
 *
 * A source's id is a SHA-256 of what names it and of its version (a PIN
 * file's device, inode, size and modification time; a pipe's name; "a PIN
 * given as a value"), never of the PIN: a PIN has too few possible values
 * for any hash of it to be safe to store.  A refused source is not offered
 * again automatically until it changes (a PIN file edited), the token takes
 * a PIN (the count of tries starts again), or the file is removed.
 */
#define STATE_MAGIC     "p11ca pin state 1\n"
#define STATE_MAX_BYTES 8192
#define STATE_MAX_LINES 32
/* How long to wait for another process that is logging in to the token. */
#define STATE_LOCK_WAIT_MS 30000

struct p11_pinstate {
    int fd;
    char path[PATH_MAX];
    char buf[STATE_MAX_BYTES + 1]; /* the file's content */
    size_t len;
};

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 of @n strings, each followed by a NUL. */
static bool digest(unsigned char out[32], const char *const *parts, size_t n)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);

    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, parts[i], strlen(parts[i]) + 1);
    ok = ok && EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    return ok;
}

void p11_pin_src_file(struct p11_pin_src *src, const char *path,
                      const struct stat *st)
{
    char ver[160];
    const char *parts[3] = {"file", path, ver};

    memset(src, 0, sizeof(*src));
    if (S_ISREG(st->st_mode)) {
        snprintf(ver, sizeof(ver), "%ju %ju %jd %jd.%09ld",
                 (uintmax_t)st->st_dev, (uintmax_t)st->st_ino,
                 (intmax_t)st->st_size, (intmax_t)st->st_mtim.tv_sec,
                 (long)st->st_mtim.tv_nsec);
        snprintf(src->desc, sizeof(src->desc), "PIN file %s", path);
    } else {
        /* A pipe has no version: its name stands for what comes through. */
        parts[0] = "pipe";
        ver[0] = '\0';
        snprintf(src->desc, sizeof(src->desc), "PIN pipe %s", path);
    }
    src->known = digest(src->id, parts, 3);
}

void p11_pin_src_value(struct p11_pin_src *src)
{
    const char *parts[1] = {"value"};

    memset(src, 0, sizeof(*src));
    snprintf(src->desc, sizeof(src->desc),
             "pin-value= (or another PIN given as a value)");
    src->known = digest(src->id, parts, 1);
}

/* The state directory: P11CA_STATE_DIR, $XDG_STATE_HOME/p11ca or
 * ~/.local/state/p11ca.  False when there is no home to put it in. */
static bool state_dir(char *out, size_t len)
{
    const char *d = secure_getenv("P11CA_STATE_DIR");
    const char *xdg = secure_getenv("XDG_STATE_HOME");
    const char *home = secure_getenv("HOME");
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    int n;

    if (d && *d)
        n = snprintf(out, len, "%s", d);
    else if (xdg && *xdg == '/')
        n = snprintf(out, len, "%s/p11ca", xdg);
    else {
        if ((!home || *home != '/')
            && getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0
            && res)
            home = pw.pw_dir;
        if (!home || *home != '/')
            return false;
        n = snprintf(out, len, "%s/.local/state/p11ca", home);
    }
    return n > 0 && (size_t)n < len;
}

/* mkdir -p @path, new directories 0700; the last one must be ours and
 * writable by nobody else (no one else may plant or swap our files). */
static bool make_dir(char *path)
{
    struct stat st;

    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            *p = '/';
            return false;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return false;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()
        || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        LOG_DBG(P11, "PIN state directory %s is not ours alone: not used",
                path);
        return false;
    }
    return true;
}

/* The file name for @tok: its manufacturer, model, serial and label. */
static bool state_name(const p11_token *tok, char *out, size_t len)
{
    const char *parts[4] = {tok->manufacturer, tok->model, tok->serial,
                            tok->label};
    unsigned char id[32];
    char h[65];

    if (!digest(id, parts, 4))
        return false;
    hex(id, 16, h);
    return (size_t)snprintf(out, len, "pin-%s", h) < len;
}

/* flock @fd, waiting for another process up to STATE_LOCK_WAIT_MS. */
static bool lock_wait(int fd)
{
    struct p11_wait w = {0};

    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return true;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return false;
        if (!p11_wait_pause(&w, STATE_LOCK_WAIT_MS))
            return false;
    }
}

static bool read_all(struct p11_pinstate *st)
{
    ssize_t r;

    st->len = 0;
    while (st->len < STATE_MAX_BYTES) {
        r = pread(st->fd, st->buf + st->len, STATE_MAX_BYTES - st->len,
                  (off_t)st->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0)
            break;
        st->len += (size_t)r;
    }
    st->buf[st->len] = '\0';
    /* Another format, or none: start afresh (it is only a memory). */
    if (strncmp(st->buf, STATE_MAGIC, strlen(STATE_MAGIC)) != 0)
        st->len = 0, st->buf[0] = '\0';
    return true;
}

CK_RV p11_pinstate_open(p11_token *tok, bool create, struct p11_pinstate **out)
{
    struct p11_pinstate *st = NULL;
    char dir[PATH_MAX - 64], name[48];
    struct stat sb;
    CK_RV rv = CKR_OK;

    *out = NULL;
    if (!state_dir(dir, sizeof(dir)) || !state_name(tok, name, sizeof(name))
        || (create && !make_dir(dir))) {
        LOG_DBG(
            P11,
            "no PIN state directory: refused PINs are remembered by this process only");
        return CKR_OK;
    }
    st = calloc(1, sizeof(*st));
    if (!st)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    snprintf(st->path, sizeof(st->path), "%s/%s", dir, name);
    st->fd =
        open(st->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0),
             0600);
    if (st->fd < 0) {
        if (errno != ENOENT)
            LOG_DBG(P11, "PIN state %s: %s", st->path, strerror(errno));
        goto out;
    }
    if (fstat(st->fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || sb.st_uid != geteuid() || (sb.st_mode & 077)) {
        LOG_DBG(P11, "PIN state %s is not a private file of ours: not used",
                st->path);
        goto out;
    }
    if (!lock_wait(st->fd)) {
        rv = p11_error_set(
            CKR_FUNCTION_FAILED, "C_Login", tok, NULL,
            "another process has been logging in to the token for %d s (it holds %s)",
            STATE_LOCK_WAIT_MS / 1000, st->path);
        goto out;
    }
    if (!read_all(st)) {
        LOG_DBG(P11, "PIN state %s: %s", st->path, strerror(errno));
        goto out;
    }
    *out = st;
    st = NULL;
out:
    p11_pinstate_close(st);
    return rv;
}

/* The line of @src in @st (NULL if none) and its time. */
static const char *find_line(const struct p11_pinstate *st,
                             const struct p11_pin_src *src, int64_t *when)
{
    char h[65], *end;
    const char *p = st->buf;

    hex(src->id, sizeof(src->id), h);
    while ((p = strstr(p, "\nrefused ")) != NULL) {
        p += 1;
        if (strncmp(p + 8, h, 64) == 0 && p[72] == ' ') {
            *when = (int64_t)strtoll(p + 73, &end, 10);
            return p;
        }
    }
    return NULL;
}

int64_t p11_pinstate_refused(const struct p11_pinstate *st,
                             const struct p11_pin_src *src)
{
    int64_t when = 0;

    if (!st || !src->known || !find_line(st, src, &when))
        return 0;
    return when > 0 ? when : 1;
}

/* Replace the file's content with @text. */
static void write_all(struct p11_pinstate *st, const char *text, size_t len)
{
    ssize_t w;
    size_t done = 0;

    if (ftruncate(st->fd, 0) != 0)
        goto fail;
    while (done < len) {
        w = pwrite(st->fd, text + done, len - done, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        done += (size_t)w;
    }
    return;
fail:
    LOG_DBG(P11, "PIN state %s not written: %s", st->path, strerror(errno));
}

void p11_pinstate_record(struct p11_pinstate *st, const struct p11_pin_src *src)
{
    char text[STATE_MAX_BYTES + 1], h[65], desc[sizeof(src->desc)];
    const char *p, *keep;
    size_t len, lines = 0;
    int64_t when;
    int n;

    if (!st || !src->known || find_line(st, src, &when))
        return;
    /* A description on one line of printable ASCII. */
    for (size_t i = 0; i <= strlen(src->desc); i++)
        desc[i] = src->desc[i] && (src->desc[i] < 0x20 || src->desc[i] > 0x7e)
                      ? '?'
                      : src->desc[i];
    hex(src->id, sizeof(src->id), h);
    /* The newest STATE_MAX_LINES - 1 lines stay, then this one. */
    keep = st->len ? st->buf + strlen(STATE_MAGIC) : "";
    for (p = keep + strlen(keep); p > keep; p--)
        if (p[-1] == '\n' && ++lines >= STATE_MAX_LINES)
            break;
    keep = p;
    n = snprintf(text, sizeof(text), "%s%srefused %s %lld %s\n", STATE_MAGIC,
                 keep, h, (long long)time(NULL), desc);
    if (n < 0 || (size_t)n >= sizeof(text))
        n = snprintf(text, sizeof(text), "%srefused %s %lld %s\n", STATE_MAGIC,
                     h, (long long)time(NULL), desc);
    len = n > 0 ? (size_t)n : 0;
    write_all(st, text, len);
    memcpy(st->buf, text, len + 1);
    st->len = len;
}

void p11_pinstate_clear(struct p11_pinstate *st)
{
    if (!st || st->len == 0)
        return;
    write_all(st, "", 0);
    st->len = 0;
    st->buf[0] = '\0';
}

const char *p11_pinstate_path(const struct p11_pinstate *st)
{
    return st ? st->path : "";
}

void p11_pinstate_close(struct p11_pinstate *st)
{
    if (!st)
        return;
    if (st->fd >= 0)
        close(st->fd); /* drops the lock */
    free(st);
}
