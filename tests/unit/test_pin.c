/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of PIN files: owner-only regular files, bounded, one newline. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "p11/p11.h"

/* A private directory per test, removed with everything in it. */
struct fixture {
    char dir[64];
    char path[128];
    char pin[P11_MAX_PIN_LEN + 8];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/p11ca-test-pin.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/pin", f->dir);
    p11_error_clear();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char sub[160];

    unlink(f->path);
    snprintf(sub, sizeof(sub), "%s/subdir", f->dir);
    rmdir(sub);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Write @len bytes of @data to the fixture's file with @mode (not umask'd). */
static void write_pin(struct fixture *f, const char *data, size_t len,
                      mode_t mode)
{
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(f->path, mode), 0);
}

/* Write @n copies of 'a' followed by @tail. */
static void write_repeated(struct fixture *f, size_t n, const char *tail)
{
    size_t tl = strlen(tail);
    char *buf = malloc(n + tl);

    assert_non_null(buf);
    memset(buf, 'a', n);
    memcpy(buf + n, tail, tl);
    write_pin(f, buf, n + tl, 0600);
    free(buf);
}

/* Expect a refusal whose message contains @what. */
static void read_fails(struct fixture *f, size_t max, const char *what)
{
    assert_int_equal(p11_pin_read_file(f->path, f->pin, max), -1);
    assert_int_equal(p11_error_rv(), P11_RV_PIN_SOURCE);
    assert_non_null(strstr(p11_error_message(), what));
}

static void test_pin_reads_owner_only_file(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234", 4, 0600);
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 16), 4);
    assert_memory_equal(f->pin, "1234", 4);
}

static void test_pin_reads_owner_read_only_file(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234", 4, 0400);
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 16), 4);
    assert_memory_equal(f->pin, "1234", 4);
}

static void test_pin_strips_trailing_newline(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234\n", 5, 0600);
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 16), 4);
    assert_memory_equal(f->pin, "1234", 4);
}

static void test_pin_strips_trailing_crlf(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234\r\n", 6, 0600);
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 16), 4);
    assert_memory_equal(f->pin, "1234", 4);
}

static void test_pin_strips_only_one_newline(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234\n\n", 6, 0600);
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 16), 5);
    assert_memory_equal(f->pin, "1234\n", 5);
}

static void test_pin_keeps_inner_and_trailing_spaces(void **state)
{
    struct fixture *f = *state;

    write_pin(f, " 12 34 \n", 8, 0600);
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 16), 7);
    assert_memory_equal(f->pin, " 12 34 ", 7);
}

static void test_pin_refuses_group_readable_file(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234", 4, 0640);
    read_fails(f, 16, "group or others");
    assert_non_null(strstr(p11_error_message(), "0640"));
    assert_non_null(strstr(p11_error_message(), f->path));
}

static void test_pin_refuses_world_readable_file(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234", 4, 0604);
    read_fails(f, 16, "group or others");
    assert_non_null(strstr(p11_error_message(), "0604"));
}

static void test_pin_refuses_mode_0644(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234", 4, 0644);
    read_fails(f, 16, "group or others");
    assert_non_null(strstr(p11_error_message(), "0644"));
}

static void test_pin_refuses_group_writable_file(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234", 4, 0620);
    read_fails(f, 16, "group or others");
    assert_non_null(strstr(p11_error_message(), "0620"));
}

static void test_pin_refuses_directory(void **state)
{
    struct fixture *f = *state;

    snprintf(f->path, sizeof(f->path), "%s/subdir", f->dir);
    assert_int_equal(mkdir(f->path, 0700), 0);
    read_fails(f, 16, "not a regular file");
    /* teardown unlinks f->path: point it back at the (absent) file. */
    snprintf(f->path, sizeof(f->path), "%s/pin", f->dir);
}

static void test_pin_refuses_missing_file(void **state)
{
    struct fixture *f = *state;

    read_fails(f, 16, f->path);
    assert_non_null(strstr(p11_error_message(), strerror(ENOENT)));
}

static void test_pin_refuses_empty_path(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(p11_pin_read_file("", f->pin, 16), -1);
    assert_int_equal(p11_error_rv(), P11_RV_PIN_SOURCE);
}

static void test_pin_refuses_empty_file(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "", 0, 0600);
    read_fails(f, 16, "empty");
}

static void test_pin_refuses_nul_byte(void **state)
{
    struct fixture *f = *state;

    write_pin(f,
              "12\0"
              "34",
              5, 0600);
    read_fails(f, 16, "NUL byte");
}

static void test_pin_refuses_nul_byte_before_newline(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "1234\0\n", 6, 0600);
    read_fails(f, 16, "NUL byte");
}

static void test_pin_refuses_file_with_only_a_newline(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "\n", 1, 0600);
    read_fails(f, 16, "empty");
}

static void test_pin_refuses_file_longer_than_max(void **state)
{
    struct fixture *f = *state;

    write_pin(f, "123456789", 9, 0600);
    read_fails(f, 8, "longer than 8 bytes");
}

static void test_pin_accepts_exactly_max_bytes(void **state)
{
    struct fixture *f = *state;

    write_repeated(f, 8, "");
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 8), 8);
    assert_memory_equal(f->pin, "aaaaaaaa", 8);
}

static void test_pin_accepts_max_bytes_and_newline(void **state)
{
    struct fixture *f = *state;

    write_repeated(f, 8, "\n");
    assert_int_equal(p11_pin_read_file(f->path, f->pin, 8), 8);
}

static void test_pin_refuses_max_plus_one_bytes(void **state)
{
    struct fixture *f = *state;

    write_repeated(f, 9, "");
    read_fails(f, 8, "longer than");
}

static void test_pin_accepts_largest_pin(void **state)
{
    struct fixture *f = *state;

    write_repeated(f, P11_MAX_PIN_LEN, "\r\n");
    assert_int_equal(p11_pin_read_file(f->path, f->pin, P11_MAX_PIN_LEN),
                     P11_MAX_PIN_LEN);
}

static void test_pin_refuses_largest_pin_plus_one(void **state)
{
    struct fixture *f = *state;

    write_repeated(f, P11_MAX_PIN_LEN + 1, "\n");
    read_fails(f, P11_MAX_PIN_LEN, "longer than");
}

static void test_pin_caps_max_at_p11_max_pin_len(void **state)
{
    struct fixture *f = *state;

    /* A caller's larger @max does not lift the layer's limit. */
    write_repeated(f, 4096, "");
    read_fails(f, 100000, "longer than");
}

static void test_pin_reads_from_a_pipe(void **state)
{
    struct fixture *f = *state;
    int fd, n;
    pid_t pid;

    assert_int_equal(mkfifo(f->path, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fd = open(f->path, O_WRONLY);
        _exit(fd >= 0 && write(fd, "pipe-pin\n", 9) == 9 ? 0 : 1);
    }
    n = p11_pin_read_file(f->path, f->pin, P11_MAX_PIN_LEN);
    assert_int_equal(n, 8);
    assert_memory_equal(f->pin, "pipe-pin", 8);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_pin_pipe_without_writer_does_not_hang(void **state)
{
    struct fixture *f = *state;

    /* Nobody writes: an error after a bounded wait, not a stuck open(). */
    assert_int_equal(mkfifo(f->path, 0600), 0);
    read_fails(f, P11_MAX_PIN_LEN, "no PIN arrived");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pin_reads_owner_only_file),
        T(test_pin_reads_owner_read_only_file),
        T(test_pin_strips_trailing_newline),
        T(test_pin_strips_trailing_crlf),
        T(test_pin_strips_only_one_newline),
        T(test_pin_keeps_inner_and_trailing_spaces),
        T(test_pin_refuses_group_readable_file),
        T(test_pin_refuses_world_readable_file),
        T(test_pin_refuses_mode_0644),
        T(test_pin_refuses_group_writable_file),
        T(test_pin_refuses_directory),
        T(test_pin_refuses_missing_file),
        T(test_pin_refuses_empty_path),
        T(test_pin_refuses_empty_file),
        T(test_pin_refuses_nul_byte),
        T(test_pin_refuses_nul_byte_before_newline),
        T(test_pin_refuses_file_with_only_a_newline),
        T(test_pin_refuses_file_longer_than_max),
        T(test_pin_accepts_exactly_max_bytes),
        T(test_pin_accepts_max_bytes_and_newline),
        T(test_pin_refuses_max_plus_one_bytes),
        T(test_pin_accepts_largest_pin),
        T(test_pin_refuses_largest_pin_plus_one),
        T(test_pin_caps_max_at_p11_max_pin_len),
        T(test_pin_reads_from_a_pipe),
        T(test_pin_pipe_without_writer_does_not_hang),
    };
#undef T

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
