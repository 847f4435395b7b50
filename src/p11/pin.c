/* SPDX-License-Identifier: Apache-2.0 */
/* PIN sources: files that only their owner may read. */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a PIN pipe (mkfifo) may keep us waiting for its writer. */
#define PIPE_WAIT_MS 5000

int p11_pin_read_file_st(const char *path, char *pin, size_t max,
                         struct stat *st_out)
{
    char buf[P11_MAX_PIN_LEN + 3];
    struct stat st;
    ssize_t n = 0, r;
    int fd = -1, ret = -1;

    if (!path || !*path) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "empty pin-source file name");
        return -1;
    }
    if (max > P11_MAX_PIN_LEN)
        max = P11_MAX_PIN_LEN;
    /* Non-blocking, so that a FIFO without a writer cannot hang us here. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "cannot open PIN file %s: %s", path, strerror(errno));
        goto out;
    }
    /* A pipe is fine too: `--pin-source <(pass show token)`. */
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "PIN file %s is not a regular file or pipe", path);
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        p11_error_set(
            P11_RV_PIN_SOURCE, NULL, NULL, NULL,
            "PIN file %s is accessible by group or others (mode %04o); refusing to use it: run chmod 600 %s",
            path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st_out)
        *st_out = st; /* what was read, for the PIN state (pinstate.c) */
    /*
     * A pipe reads as empty until its writer connects: wait for data (or
     * the writer's hang-up), but not forever.
     */
    if (S_ISFIFO(st.st_mode)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, PIPE_WAIT_MS) <= 0) {
            p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                          "no PIN arrived from pipe %s within %d s", path,
                          PIPE_WAIT_MS / 1000);
            goto out;
        }
    }
    while ((size_t)n < sizeof(buf)) {
        r = read(fd, buf + n, sizeof(buf) - (size_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        /* A pipe whose writer has not written yet: wait, but not forever. */
        if (r < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLIN, 0};
            if (poll(&pfd, 1, PIPE_WAIT_MS) > 0)
                continue;
            p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                          "no PIN arrived from pipe %s within %d s", path,
                          PIPE_WAIT_MS / 1000);
            goto out;
        }
        if (r < 0) {
            p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                          "cannot read PIN file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += r;
    }
    /* One trailing newline (or CRLF) is not part of the PIN. */
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if ((size_t)n > max) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "PIN file %s is longer than %zu bytes", path, max);
        goto out;
    }
    if (n == 0) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "PIN file %s is empty", path);
        goto out;
    }
    /* C_Login takes a length, but every other reader of the PIN stops at
     * a NUL: a PIN is text, and the token never sees this one. */
    if (memchr(buf, '\0', (size_t)n)) {
        p11_error_set(
            P11_RV_PIN_SOURCE, NULL, NULL, NULL,
            "PIN file %s holds a NUL byte: a PIN is text; refusing it before it reaches the token",
            path);
        goto out;
    }
    memcpy(pin, buf, (size_t)n);
    ret = (int)n;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return ret;
}

int p11_pin_read_file(const char *path, char *pin, size_t max)
{
    return p11_pin_read_file_st(path, pin, max, NULL);
}
