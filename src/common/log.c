/* SPDX-License-Identifier: Apache-2.0 */
/* Debug logging: parses P11CA_DEBUG once, writes whole lines to a file or stderr. */
#include "config.h"

#include "log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned log_subs;
static int log_level = LOG_LVL_DBG;
static int log_fd = -1; /* -1: stderr */

static const struct {
    const char *name;
    unsigned bit;
} sub_names[] = {
    /* Only subsystems that log something are named (p11ca(1)): "srv"
     * comes with the service. */
    {"p11", LOG_SUB_P11}, {"prov", LOG_SUB_PROV}, {"ca", LOG_SUB_CA},
    {"reg", LOG_SUB_REG}, {"all", LOG_SUB_ALL},
};

static unsigned parse_subs(const char *s)
{
    unsigned bits = 0;

    while (s && *s) {
        size_t n = strcspn(s, ",: ");
        for (size_t i = 0; i < sizeof(sub_names) / sizeof(sub_names[0]); i++)
            if (strlen(sub_names[i].name) == n
                && strncmp(sub_names[i].name, s, n) == 0)
                bits |= sub_names[i].bit;
        if (n == 1 && s[0] == '1')
            bits |= LOG_SUB_ALL;
        s += n;
        s += strspn(s, ",: ");
    }
    return bits;
}

static void open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

    if (fd < 0)
        return;
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
}

static void log_init(void)
{
    const char *s = getenv("P11CA_DEBUG");
    const char *f = getenv("P11CA_DEBUG_FILE");
    const char *l = getenv("P11CA_DEBUG_LEVEL");

    log_subs = parse_subs(s);
    if (f && *f)
        open_file(f);
    if (l && *l >= '1' && *l <= '3')
        log_level = *l - '0';
}

void log_configure(const char *subs, const char *file, int level)
{
    pthread_once(&log_once, log_init);
    pthread_mutex_lock(&log_lock);
    if (subs)
        log_subs = parse_subs(subs);
    if (file && *file)
        open_file(file);
    if (level >= LOG_LVL_ERR && level <= LOG_LVL_DBG)
        log_level = level;
    pthread_mutex_unlock(&log_lock);
}

int log_enabled(enum log_sub sub, enum log_level level)
{
    pthread_once(&log_once, log_init);
    return (log_subs & (unsigned)sub) != 0 && (int)level <= log_level;
}

void log_write(enum log_sub sub, enum log_level level, const char *file,
               int line, const char *func, const char *fmt, ...)
{
    static const char *lvl[] = {"", "error", "info", "debug"};
    char buf[1024];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n, m;

    if (!log_enabled(sub, level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(buf, sizeof(buf),
                 "p11ca[%ld] %02d:%02d:%02d.%06ld %s %s:%d %s: ",
                 (long)getpid(), tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (long)tv.tv_usec, lvl[level], file, line, func);
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = 0;
    va_start(ap, fmt);
    m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    /* One write per line so that threads and processes do not interleave. */
    if (write(log_fd >= 0 ? log_fd : STDERR_FILENO, buf, (size_t)n) < 0)
        return;
}

void log_precondition_failed(const char *expr, const char *file, int line,
                             const char *func)
{
    const char *strict = getenv("P11CA_STRICT");

    fprintf(stderr, "p11ca: precondition failed in %s (%s:%d): %s\n", func,
            file, line, expr);
    if (strict && strcmp(strict, "1") == 0)
        abort();
}
