/* SPDX-License-Identifier: Apache-2.0 */
/* The PIN prompt of the command: /dev/tty without echo, read with read(2)
 * (no stdio buffer holds the PIN), the terminal restored on every path. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/*
 * Signals that end or stop a process at a terminal.  While the prompt has
 * echo off they are caught, the terminal is put back, and the signal is
 * raised again with its old disposition: ^C at the prompt leaves a terminal
 * that echoes (readpassphrase(3) does the same).  After a stop (^Z) the
 * prompt starts again.
 */
static const int prompt_signals[] = {SIGALRM, SIGHUP,  SIGINT,
                                     SIGPIPE, SIGQUIT, SIGTERM,
                                     SIGTSTP, SIGTTIN, SIGTTOU};
#define N_SIGNALS (sizeof(prompt_signals) / sizeof(prompt_signals[0]))

static volatile sig_atomic_t caught[NSIG];

static void on_signal(int sig)
{
    caught[sig] = 1;
}

/*
 * Block the signals and install on_signal, keeping the old actions in @old
 * and the old mask in @mask.  They are let in only while read_line waits
 * (ppoll), so that one that comes just before the wait is not missed.
 */
static void catch_signals(struct sigaction old[N_SIGNALS], sigset_t *mask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (size_t i = 0; i < N_SIGNALS; i++)
        sigaddset(&block, prompt_signals[i]);
    pthread_sigmask(SIG_BLOCK, &block, mask);
    for (size_t i = 0; i < N_SIGNALS; i++) {
        caught[prompt_signals[i]] = 0;
        sigaction(prompt_signals[i], &sa, &old[i]);
    }
}

/* Put the old actions and mask back (what is pending arrives now), then
 * raise what was caught with the old actions; true when the prompt should
 * start again (the process was stopped). */
static bool release_signals(const struct sigaction old[N_SIGNALS],
                            const sigset_t *mask)
{
    bool again = false;

    for (size_t i = 0; i < N_SIGNALS; i++)
        sigaction(prompt_signals[i], &old[i], NULL);
    pthread_sigmask(SIG_SETMASK, mask, NULL);
    for (size_t i = 0; i < N_SIGNALS; i++) {
        int sig = prompt_signals[i];

        if (!caught[sig])
            continue;
        caught[sig] = 0;
        kill(getpid(), sig);
        if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
            again = true;
    }
    return again;
}

static bool any_caught(void)
{
    for (size_t i = 0; i < N_SIGNALS; i++)
        if (caught[prompt_signals[i]])
            return true;
    return false;
}

static void put(int fd, const char *s)
{
    size_t len = strlen(s);
    ssize_t w;

    while (len > 0) {
        w = write(fd, s, len);
        if (w < 0 && errno == EINTR && !any_caught())
            continue;
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

/*
 * Read one line from @fd into @buf (at most @max bytes kept; a longer line
 * is read to its end and refused), waiting with the signal mask @mask (the
 * prompt's signals come in only then).  Returns the length, -1 on EOF,
 * error, a signal, or a line longer than @max.
 */
static int read_line(int fd, char *buf, size_t max, const sigset_t *mask)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    size_t n = 0;
    bool long_line = false;
    ssize_t r;
    char c;

    for (;;) {
        if (ppoll(&pfd, 1, NULL, mask) < 0) {
            if (errno == EINTR && !any_caught())
                continue;
            return -1;
        }
        r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (c == '\n' || c == '\r')
            break;
        if (n < max)
            buf[n++] = c;
        else
            long_line = true;
    }
    return long_line ? -1 : (int)n;
}

/* One prompt with echo off; true in @again when a stop interrupted it. */
static int prompt_once(int fd, const char *text, char *pin, size_t max,
                       bool *again)
{
    struct sigaction old[N_SIGNALS];
    struct termios saved, noecho;
    sigset_t mask;
    int n;

    *again = false;
    if (tcgetattr(fd, &saved) != 0) {
        /* Without echo control the PIN would show: do not ask. */
        fprintf(
            stderr,
            "p11ca: cannot turn echo off on the terminal (%s): not asking for the PIN\n",
            strerror(errno));
        return -1;
    }
    noecho = saved;
    noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    catch_signals(old, &mask);
    /*
     * Echo off before the prompt shows, and TCSANOW, not TCSAFLUSH: what
     * was typed ahead, or once the prompt is visible, is neither echoed
     * nor thrown away.
     */
    if (tcsetattr(fd, TCSANOW, &noecho) != 0) {
        fprintf(
            stderr,
            "p11ca: cannot turn echo off on the terminal (%s): not asking for the PIN\n",
            strerror(errno));
        *again = release_signals(old, &mask);
        return -1;
    }
    put(fd, text);
    n = read_line(fd, pin, max, &mask);
    /* Every path restores the terminal, before any signal takes effect. */
    (void)tcsetattr(fd, TCSANOW, &saved);
    put(fd, "\n");
    *again = release_signals(old, &mask);
    if (*again || n < 0)
        OPENSSL_cleanse(pin, max);
    return n;
}

int cli_pin_prompt(const char *what, bool ctx_specific, char *pin, size_t max,
                   void *arg)
{
    char text[256];
    bool again;
    int fd, n;

    (void)arg;
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    snprintf(text, sizeof(text),
             "Enter %sPIN for %s: ", ctx_specific ? "signature " : "",
             cli_esc(what));
    do
        n = prompt_once(fd, text, pin, max, &again);
    while (again);
    close(fd);
    return n;
}
