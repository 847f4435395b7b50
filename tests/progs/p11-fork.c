/* SPDX-License-Identifier: Apache-2.0 */
/* Fork driver: a parent that logged in and signed forks children that sign
 * with the same context and key, then signs again itself; or forks before
 * the context's first use. */
#include "config.h"

#include "drive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
    "[-m module] [-p pinfile] [-t token] [-j children] [-n signatures]\n"
    "    setup|fork|fork-fresh";

/* Sign @n times with @k, verifying each signature. */
static int sign_n(struct drive_key *k, unsigned n, const char *who)
{
    for (unsigned i = 0; i < n; i++)
        if (drive_sign_verify(k, NULL) != CKR_OK)
            return drive_fail("%s: signature %u of %u: %s", who, i + 1, n,
                              p11_error_message());
    printf("%s: %u signature%s verified\n", who, n, n == 1 ? "" : "s");
    return DRIVE_PASS;
}

/* Block until the parent closes @fd (EOF): every child has logged in. */
static void wait_for_go(int fd)
{
    char c;
    ssize_t r;

    do {
        r = read(fd, &c, 1);
    } while (r > 0 || (r < 0 && errno == EINTR));
}

/*
 * From the call log, when there is one: this process logged in exactly
 * once (a child with the PIN it inherited) and closed every session it
 * opened.  Run after p11_ctx_free.
 */
static int check_calls(const char *who)
{
    long login = drive_log_count("C_Login");
    long opened = drive_log_count("C_OpenSession");
    long closed = drive_log_count("C_CloseSession");

    if (login < 0)
        return DRIVE_PASS;
    printf("%s: C_Login %ld, C_OpenSession %ld, C_CloseSession %ld\n", who,
           login, opened, closed);
    if (login != 1)
        return drive_fail("%s: %ld C_Login calls, wanted 1", who, login);
    if (opened != closed)
        return drive_fail("%s: %ld sessions opened, %ld closed", who, opened,
                          closed);
    return DRIVE_PASS;
}

struct forker {
    const struct drive_opts *o;
    p11_ctx *ctx;
    struct drive_key key; /* empty until first use */
    bool fresh;           /* fork before the context's first use */
    int go[2];            /* closed by the parent: all children are ready */
    pid_t *pids;          /* the children's pids (o->threads of them) */
};

/*
 * In a child: one signature (its first use of the inherited context logs
 * in; with @fresh it finds the key first), a byte to the parent saying how
 * it went, then, once all children are there, the other signatures while
 * the siblings sign too.
 */
static int child_main(struct forker *f, const char *who, int ready_fd)
{
    int ret = DRIVE_PASS;
    char c;

    if (f->fresh
        && drive_key_open(f->ctx, f->o, DRIVE_EC_LABEL, &f->key) != CKR_OK)
        ret = drive_fail("%s: %s", who, p11_error_message());
    if (ret == DRIVE_PASS)
        ret = sign_n(&f->key, 1, who);
    c = ret == DRIVE_PASS ? 'y' : 'n';
    if (write(ready_fd, &c, 1) != 1)
        ret = drive_fail("%s: cannot write to the parent", who);
    wait_for_go(f->go[0]);
    if (ret == DRIVE_PASS && f->o->iterations > 1)
        ret = sign_n(&f->key, f->o->iterations - 1, who);
    return ret;
}

/*
 * Fork one child; the child never returns.  Returns its pid or -1.  The
 * child exits from here, so it frees what the parent's frames own too
 * (the pid array): at -O2 nothing on its stack points there any more, and
 * LeakSanitizer rightly reports it.
 */
static pid_t spawn(struct forker *f, const int ready[2])
{
    char who[32];
    pid_t pid;
    int rc;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid != 0)
        return pid;
    close(ready[0]);
    close(f->go[1]); /* or no sibling would ever see EOF */
    snprintf(who, sizeof(who), "child %ld", (long)getpid());
    rc = child_main(f, who, ready[1]);
    drive_key_close(&f->key);
    p11_ctx_free(f->ctx);
    free(f->pids);
    if (check_calls(who) != DRIVE_PASS)
        rc = DRIVE_FAIL;
    exit(rc);
}

/*
 * Fork one child and wait for the byte that says how its first signature
 * went.  The child holds the only write end of its pipe, so a child that
 * dies first gives EOF rather than a hang.
 */
static pid_t spawn_and_wait(struct forker *f, bool *ready_ok)
{
    int ready[2];
    pid_t pid;
    char c = 'n';

    *ready_ok = false;
    if (pipe(ready) != 0)
        return -1;
    pid = spawn(f, ready);
    close(ready[1]);
    if (pid > 0)
        *ready_ok = read(ready[0], &c, 1) == 1 && c == 'y';
    close(ready[0]);
    return pid;
}

/* Reap the children; all of them must have exited with 0. */
static int reap(const pid_t *pids, unsigned n)
{
    int ret = DRIVE_PASS, st;

    for (unsigned i = 0; i < n; i++) {
        if (waitpid(pids[i], &st, 0) != pids[i])
            ret = drive_fail("waitpid %ld: %s", (long)pids[i], strerror(errno));
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ret = drive_fail("child %ld: %s %d", (long)pids[i],
                             WIFEXITED(st) ? "exit" : "signal",
                             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    return ret;
}

/*
 * Fork the children one after another: each one's first signature (and
 * login) completes before the next child exists, since SoftHSM2 rewrites
 * its token file around a login and a concurrent login may find no token
 * (PITFALLS.md).  Then let them all sign at once.
 */
static int fork_children(struct forker *f)
{
    pid_t *pids = f->pids;
    int ret = DRIVE_PASS;
    unsigned n = 0;
    bool ready_ok;

    if (pipe(f->go) != 0)
        return drive_fail("pipe: %s", strerror(errno));
    for (; n < f->o->threads; n++) {
        pids[n] = spawn_and_wait(f, &ready_ok);
        if (pids[n] < 0) {
            ret = drive_fail("fork: %s", strerror(errno));
            break;
        }
        if (!ready_ok)
            ret = drive_fail("child %ld: the first signature failed",
                             (long)pids[n]);
    }
    /* EOF for every child: all have logged in, sign concurrently now. */
    close(f->go[1]);
    close(f->go[0]);
    if (reap(pids, n) != DRIVE_PASS)
        ret = DRIVE_FAIL;
    printf("%u children forked and reaped\n", n);
    return ret;
}

/* The parent's signatures before (unless @fresh) or after the children. */
static int parent_signs(struct forker *f, const char *who)
{
    if (!f->key.obj
        && drive_key_open(f->ctx, f->o, DRIVE_EC_LABEL, &f->key) != CKR_OK)
        return drive_fail("%s: %s", who, p11_error_message());
    return sign_n(&f->key, f->o->iterations, who);
}

static int scenario_fork(const struct drive_opts *o, bool fresh)
{
    struct forker f = {.o = o, .fresh = fresh};
    unsigned idle, open;
    int ret = DRIVE_FAIL;

    f.pids = calloc(o->threads, sizeof(*f.pids));
    f.ctx = drive_ctx_new(o);
    if (!f.ctx || !f.pids) {
        drive_fail("out of memory");
        goto out;
    }
    if (!fresh && parent_signs(&f, "parent before fork") != DRIVE_PASS)
        goto out;
    ret = fork_children(&f);
    if (parent_signs(&f, "parent after the children") != DRIVE_PASS)
        ret = DRIVE_FAIL;
    p11_session_count(p11_obj_token(f.key.obj), &idle, &open);
    printf("parent sessions: %u open, %u idle\n", open, idle);
out:
    drive_key_close(&f.key);
    p11_ctx_free(f.ctx);
    free(f.pids);
    if (ret == DRIVE_PASS)
        ret = check_calls("parent");
    return ret;
}

int main(int argc, char **argv)
{
    struct drive_opts o = {.iterations = 20, .threads = 4, .rounds = 1};

    if (drive_opts_parse(argc, argv, &o, usage) != 0)
        return DRIVE_USAGE;
    if (strcmp(o.cmd, "setup") == 0)
        return drive_setup(&o);
    if (strcmp(o.cmd, "fork") == 0)
        return scenario_fork(&o, false);
    if (strcmp(o.cmd, "fork-fresh") == 0)
        return scenario_fork(&o, true);
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return DRIVE_USAGE;
}
