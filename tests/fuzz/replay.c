/* SPDX-License-Identifier: Apache-2.0 */
/* The main of the fuzz targets outside a fuzzing build: it feeds files
 * (a directory: each regular file in it, in name order) to
 * LLVMFuzzerTestOneInput once each, so that every build replays the seed
 * corpus under its compiler, sanitizers or valgrind.  Options in
 * libFuzzer's form (-runs=0) are accepted and ignored, so that scripts
 * call both mains alike. */
#include "config.h"

#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* No target has to define it: weak, as in libFuzzer. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* The largest input replayed (libFuzzer's -max_len is far below). */
#define REPLAY_MAX_BYTES (1024 * 1024)

/*
 * Run one file; 0, or -1 when it cannot be read.  The target gets exactly
 * the file's bytes in a buffer of that size, as libFuzzer gives them, so
 * that ASan sees a read past the end.
 */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    struct stat st;
    size_t n = 0;
    int ret = -1;

    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (st.st_size > REPLAY_MAX_BYTES) {
        fprintf(stderr, "replay: %s: larger than %d bytes\n", path,
                REPLAY_MAX_BYTES);
        goto out;
    }
    n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        fprintf(stderr, "replay: %s: cannot read it\n", path);
        goto out;
    }
    /* Say which input runs: a crash leaves this line last in the log. */
    printf("replay: %s (%zu bytes)\n", path, n);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, n);
    ret = 0;
out:
    free(buf);
    if (f)
        fclose(f);
    return ret;
}

static int regular_file(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Every non-hidden regular file of @dir; @count gets how many ran. */
static int replay_dir(const char *dir, unsigned *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, regular_file, alphasort), ret = 0;

    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (ret == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            ret = replay_file(path);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return ret;
}

int main(int argc, char **argv)
{
    unsigned count = 0, paths = 0;
    struct stat st;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        paths++;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) != 0
                                : (count++, replay_file(argv[i]) != 0))
            return 1;
    }
    if (paths == 0) {
        fprintf(stderr, "usage: %s [-flag=value...] FILE|DIR...\n", argv[0]);
        fprintf(stderr, "runs each input once (--enable-fuzzing: libFuzzer)\n");
        return 2;
    }
    printf("replay: %u inputs, no failure\n", count);
    return 0;
}
