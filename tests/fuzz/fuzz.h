/* SPDX-License-Identifier: Apache-2.0 */
/* What every fuzz target of tests/fuzz shares: libFuzzer's entry points
 * and a check that stops the run with the place that failed. */
#ifndef P11CA_TEST_FUZZ_H
#define P11CA_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Each target defines LLVMFuzzerTestOneInput (one input, returns 0) and
 * may define LLVMFuzzerInitialize (once, before the first input).  A
 * fuzzing build (--enable-fuzzing) links libFuzzer's engine; other builds
 * link tests/fuzz/replay.c, which feeds the seed corpus to the target.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * FUZZ_CHECK - a property of the code under test.  When it does not hold,
 * say which and abort: libFuzzer keeps the input as a crash, the replay
 * driver fails.
 */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* fuzz_strndup - @data as a NUL-terminated string (malloc'd); aborts
 * without memory, since a fuzz run is no place to test that. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    FUZZ_CHECK(s != NULL);
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

#endif
