/* SPDX-License-Identifier: Apache-2.0 */
/* PIN sources: files that only their owner may read. */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int p11_pin_read_file(const char *path, char *pin, size_t max)
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
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "cannot open PIN file %s: %s", path, strerror(errno));
        goto out;
    }
    /* A pipe is fine too: `--pin-source <(pass show token)`. */
    if (fstat(fd, &st) != 0
        || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "PIN file %s is not a regular file or pipe", path);
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                      "PIN file %s is accessible by group or others (mode "
                      "%04o); refusing to use it: run chmod 600 %s", path,
                      (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    while ((size_t)n < sizeof(buf)) {
        r = read(fd, buf + n, sizeof(buf) - (size_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            p11_error_set(P11_RV_PIN_SOURCE, NULL, NULL, NULL,
                          "cannot read PIN file %s: %s", path,
                          strerror(errno));
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
    memcpy(pin, buf, (size_t)n);
    ret = (int)n;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return ret;
}
