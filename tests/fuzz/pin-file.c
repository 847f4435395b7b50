/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what a PIN file holds, through p11_pin_read_file.  The
 * input is written to a file of mode 0600 in a directory of this process
 * (the checks of the file's type and mode are not what is fuzzed), read
 * back with two limits, and the result compared with the rule: one
 * trailing newline or CRLF dropped, empty or too long refused, a NUL byte
 * in the PIN refused, the PIN never in the message. */
#include "config.h"

#include "fuzz.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "p11/p11.h"

static char pin_path[64];

static void cleanup(void)
{
    char dir[sizeof(pin_path)];

    if (!pin_path[0])
        return;
    unlink(pin_path);
    memcpy(dir, pin_path, sizeof(dir));
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/p11ca-fuzz-pin.XXXXXX";

    (void)argc;
    (void)argv;
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(pin_path, sizeof(pin_path), "%s/pin", dir);
    atexit(cleanup);
    return 0;
}

/* The PIN the rule gives for @data, as a length; -1 when refused. */
static long expected_pin(const uint8_t *data, size_t size, size_t max)
{
    if (size > 0 && data[size - 1] == '\n')
        size--;
    if (size > 0 && data[size - 1] == '\r')
        size--;
    if (size == 0 || size > max || memchr(data, '\0', size))
        return -1;
    return (long)size;
}

static void write_pin_file(const uint8_t *data, size_t size)
{
    int fd = open(pin_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
    FUZZ_CHECK(close(fd) == 0);
}

/* @data with every byte but the newline the rule drops and NUL bytes
 * replaced: a PIN file refused for the same reason (malloc'd). */
static uint8_t *masked(const uint8_t *data, size_t size)
{
    uint8_t *m = malloc(size ? size : 1);
    size_t keep = size;

    FUZZ_CHECK(m != NULL);
    if (keep > 0 && data[keep - 1] == '\n')
        keep--;
    if (keep > 0 && data[keep - 1] == '\r')
        keep--;
    for (size_t i = 0; i < keep; i++)
        m[i] = data[i] == '\0' ? '\0' : 'x';
    memcpy(m + keep, data + keep, size - keep);
    return m;
}

/* The file holds @data: read it with @max, as the rule says.  A refusal
 * names the file and says why, and never shows what the file holds: the
 * message is the same for a file of 'x's refused for the same reason. */
static void read_back(const uint8_t *data, size_t size, size_t max)
{
    char pin[P11_MAX_PIN_LEN + 1], *msg;
    long want = expected_pin(data, size, max);
    uint8_t *m;
    int got;

    memset(pin, 0, sizeof(pin));
    p11_error_clear();
    got = p11_pin_read_file(pin_path, pin, max);
    FUZZ_CHECK(got == want);
    if (got > 0) {
        FUZZ_CHECK(memcmp(pin, data, (size_t)got) == 0);
        /* Nothing past the PIN was written. */
        FUZZ_CHECK(pin[got] == '\0');
        return;
    }
    FUZZ_CHECK(p11_error_rv() == P11_RV_PIN_SOURCE);
    FUZZ_CHECK(strstr(p11_error_message(), pin_path) != NULL);
    msg = fuzz_strndup((const uint8_t *)p11_error_message(),
                       strlen(p11_error_message()));
    m = masked(data, size);
    write_pin_file(m, size);
    FUZZ_CHECK(p11_pin_read_file(pin_path, pin, max) == -1);
    FUZZ_CHECK(strcmp(msg, p11_error_message()) == 0);
    write_pin_file(data, size);
    free(m);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_pin_file(data, size);
    read_back(data, size, P11_MAX_PIN_LEN);
    read_back(data, size, 8);
    return 0;
}
