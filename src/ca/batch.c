/* SPDX-License-Identifier: Apache-2.0 */
/* Bulk issuance as a pipeline: CSRs from a directory or a PEM stream are
 * read, checked and built by worker threads (one per CPU), signed by
 * signer threads (one session each), recorded in group commits by a
 * recorder thread and written out by the calling thread, each one only
 * once recorded, and reported in the order they came.  The files of what
 * the recorder has done are synced together: each is written to its
 * temporary file, then all are synced, then put in place in order, then
 * their directory synced once.  A ring of slots
 * bounds what is in flight, so a stream of any length runs in constant
 * memory. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"
#include "common/log.h"

#define LINE_MAX_LEN 4096
#define STREAM_BUF   65536
#define MAX_THREADS  64
/* RSA's default signers, one per CPU: at most this many sessions. */
#define MAX_DEFAULT_SIGNERS 8
/* Slots per thread beyond two groups: work that waits for the recorder. */
#define SLOTS_PER_THREAD 4
/* Output files open at once before they are closed and synced. */
#define OUT_CHUNK 128

/* Standard input through a buffer, polled together with a wake-up pipe:
 * a batch that stops does not wait for a producer that keeps the pipe
 * open and writes nothing. */
struct lines {
    int fd, wake;
    char buf[STREAM_BUF];
    size_t pos, len;
    bool eof;
};

/* Where the CSRs come from. */
struct batch_src {
    const char *dir; /* NULL: standard input */
    struct dirent **list;
    int n, i;
    size_t count; /* CSRs read from the stream */
    char *block;  /* the PEM block being read */
    size_t len;
    char name[512];
    struct lines *in;
};

enum slot_state { SLOT_FREE, SLOT_TO_SIGN, SLOT_DONE };

/* One CSR on its way; slot seq % cap of the ring holds CSR number seq. */
struct slot {
    size_t seq;
    char *name;
    ca_req *r;  /* NULL when refused, or when the batch stops here */
    int rc;     /* why it was refused, or why the batch stops */
    char *msg;  /* ... in words */
    bool fatal; /* the batch stops here (CA key, token, memory, source) */
    enum slot_state state;
};

/* A window of CSRs the recorder is done with, for the writer. */
struct rec_window {
    size_t k;  /* its CSRs: the next k of the ring */
    int rc;    /* 0, or the registry's error (nothing of it recorded) */
    char *msg; /* ... in words */
};

/* A CSR of the recorded windows the writer has taken, to report in order:
 * with @f, a certificate whose file is staged; without, a refusal. */
struct out_entry {
    struct slot *sl;
    ca_outfile *f;
    char *path;                       /* OUTDIR/SERIAL.pem */
    char serial[REG_SERIAL_TEXT_MAX]; /* with @f */
    int rc;                           /* a refusal's; or the file's error */
    const char *msg;                  /* a refusal's (the slot's) */
    char *err;                        /* the file could not be staged */
};

struct signer_arg {
    struct pipe *p;
    ca_signer *s;
};

struct pipe {
    ca *c;
    const ca_issue_opts *o;
    const char *outdir;
    size_t group;
    ca_batch_fn fn;
    void *arg;
    size_t issued, rejected;
    /* Under @lock. */
    pthread_mutex_t lock;
    pthread_cond_t room;     /* a slot was retired (workers wait) */
    pthread_cond_t to_sign;  /* a request waits for a signer */
    pthread_cond_t done;     /* the slot the recorder waits for is done */
    pthread_cond_t recorded; /* a window is recorded (the writer waits) */
    struct slot *ring;
    size_t cap;
    size_t tail;     /* the oldest CSR not retired (by the writer) */
    size_t rec_tail; /* the first CSR of the recorder's next window */
    size_t rec_want; /* with @rec_waits: the CSR it waits for */
    bool rec_waits;
    size_t taken; /* slots reserved or in use */
    size_t peak;  /* the most ever taken */
    size_t busy;  /* CSRs being checked or signed */
    size_t end;   /* with @ended: the number of CSRs */
    bool ended, stop;
    size_t *signq; /* CSRs waiting for a signer, in order */
    size_t sq_head, sq_n;
    unsigned workers_left;
    struct rec_window *wq; /* recorded windows, in order */
    size_t wq_head, wq_n;
    /* The writer's: the windows it took, their entries (@n_out, of which
     * @n_open files staged and not yet synced). */
    struct rec_window *wtaken;
    struct out_entry *out;
    size_t n_out, n_open;
    bool rec_done; /* the recorder has finished */
    /* Under @src_lock: one worker reads at a time, in order. */
    pthread_mutex_t src_lock;
    struct batch_src src;
    size_t next_seq;
    int wake[2]; /* written when the batch stops */
    /* The threads: @nw workers, @ns signers (with @sa), the recorder. */
    unsigned nw, ns;
    struct signer_arg sa[MAX_THREADS];
    pthread_t threads[2 * MAX_THREADS + 1];
    unsigned n_threads;
};

static int line_get(struct lines *l, char *line, size_t max);
static int src_filter(const struct dirent *d);
static int src_open(struct batch_src *s, const char *source, int wake);
static void src_close(struct batch_src *s);
static int src_next_file(struct batch_src *s, unsigned char **buf, size_t *len);
static int src_next_pem(struct batch_src *s, unsigned char **buf, size_t *len);
static int src_next(struct batch_src *s, unsigned char **buf, size_t *len);
static void slot_refuse(struct slot *sl, int rc, bool fatal);
static void check_one(struct pipe *p, struct slot *sl, int got,
                      unsigned char *buf, size_t len);
static bool reserve(struct pipe *p);
static void done_wake(struct pipe *p, size_t seq);
static void *worker(void *arg);
static void *signer(void *arg);
static void tell(struct pipe *p, const char *name, const char *serial, int rc,
                 const char *msg);
static int out_stage(struct pipe *p, struct slot *sl);
static int out_syncfs(struct pipe *p);
static int out_flush(struct pipe *p);
static size_t window(struct pipe *p, ca_req **reqs, size_t *n, bool *end);
static void *recorder(void *arg);
static int window_stage(struct pipe *p, const struct rec_window *w,
                        size_t first, int rc);
static void retire(struct pipe *p, size_t k);
static void pipe_stop(struct pipe *p);
static unsigned cpus(void);

/*
 * The next line of @l into @line as fgets would (at most @max - 1 bytes,
 * the newline kept).  1: a line, 0: the end, -1: the batch stopped (or a
 * read error, with the message set).
 */
static int line_get(struct lines *l, char *line, size_t max)
{
    struct pollfd fds[2] = {{l->fd, POLLIN, 0}, {l->wake, POLLIN, 0}};
    size_t n = 0;
    ssize_t got;

    while (n + 1 < max) {
        if (l->pos == l->len && !l->eof) {
            if (poll(fds, 2, -1) < 0 && errno != EINTR)
                goto fail;
            if (fds[1].revents)
                return -1;
            if (!fds[0].revents)
                continue;
            got = read(l->fd, l->buf, sizeof(l->buf));
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got < 0)
                goto fail;
            l->eof = got == 0;
            l->pos = 0;
            l->len = (size_t)got;
        }
        if (l->pos == l->len)
            break;
        line[n++] = l->buf[l->pos++];
        if (line[n - 1] == '\n')
            break;
    }
    line[n] = '\0';
    return n > 0;
fail:
    p11ca_err_set(P11CA_E_IO, "standard input: %s", strerror(errno));
    return -1;
}

static int src_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int src_open(struct batch_src *s, const char *source, int wake)
{
    memset(s, 0, sizeof(*s));
    if (strcmp(source, "-") == 0) {
        s->in = malloc(sizeof(*s->in));
        s->block = malloc(CA_MAX_CSR + 1);
        if (!s->in || !s->block)
            return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        *s->in = (struct lines){.fd = STDIN_FILENO, .wake = wake};
        return P11CA_OK;
    }
    s->dir = source;
    s->n = scandir(source, &s->list, src_filter, alphasort);
    if (s->n < 0)
        return p11ca_err_set(P11CA_E_INPUT, "cannot read the directory %s: %s",
                             source, strerror(errno));
    return P11CA_OK;
}

static void src_close(struct batch_src *s)
{
    for (int i = 0; s->list && i < s->n; i++)
        free(s->list[i]);
    free(s->list);
    free(s->block);
    free(s->in);
}

/* The next regular file of the directory. 1: got one, 0: end, <0: a bad
 * item (named in s->name, message set). */
static int src_next_file(struct batch_src *s, unsigned char **buf, size_t *len)
{
    char *path;
    int rc;

    if (s->i >= s->n)
        return 0;
    path = ca_path(s->dir, s->list[s->i++]->d_name);
    if (!path)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    snprintf(s->name, sizeof(s->name), "%s", path);
    rc = ca_file_read(path, CA_MAX_CSR, buf, len);
    free(path);
    return rc == P11CA_OK ? 1 : rc;
}

/* The next "-----BEGIN ... -----END" block of standard input, at most
 * CA_MAX_CSR bytes (a copy in *@buf); lines outside blocks are ignored. */
static int src_next_pem(struct batch_src *s, unsigned char **buf, size_t *len)
{
    char line[LINE_MAX_LEN];
    bool in = false, bol = true, big = false;
    size_t n;
    int got;

    s->len = 0;
    while ((got = line_get(s->in, line, sizeof(line))) > 0) {
        n = strlen(line);
        if (bol && !in && strncmp(line, "-----BEGIN", 10) == 0)
            in = true;
        if (in && !big && s->len + n <= CA_MAX_CSR) {
            memcpy(s->block + s->len, line, n);
            s->len += n;
        } else if (in) {
            big = true;
        }
        if (in && bol && strncmp(line, "-----END", 8) == 0)
            break;
        bol = n > 0 && line[n - 1] == '\n';
    }
    if (got < 0)
        return p11ca_err_rc() ? p11ca_err_rc() : 0;
    if (!in)
        return 0;
    snprintf(s->name, sizeof(s->name), "CSR #%zu of standard input",
             ++s->count);
    if (big)
        return p11ca_err_set(P11CA_E_INPUT,
                             "%s is too large (more than %d bytes)", s->name,
                             CA_MAX_CSR);
    if (!(*buf = malloc(s->len + 1)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    memcpy(*buf, s->block, s->len);
    (*buf)[s->len] = '\0';
    *len = s->len;
    return 1;
}

static int src_next(struct batch_src *s, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    p11ca_err_clear();
    return s->dir ? src_next_file(s, buf, len) : src_next_pem(s, buf, len);
}

/* @sl is refused with @rc and the thread's message (@fatal: the batch
 * stops there). */
static void slot_refuse(struct slot *sl, int rc, bool fatal)
{
    ca_req_free(sl->r);
    sl->r = NULL;
    sl->rc = rc;
    sl->fatal = fatal;
    sl->msg = strdup(p11ca_err_message());
}

/*
 * Check and build one CSR (@got as src_next returned it).  A bad CSR is
 * refused; what the certificate could not hold is that CSR's problem too;
 * an error of the CA (key, memory) or of the source stops the batch.
 */
static void check_one(struct pipe *p, struct slot *sl, int got,
                      unsigned char *buf, size_t len)
{
    int rc = got;

    if (got < 0) {
        slot_refuse(sl, got, got != P11CA_E_INPUT);
        return;
    }
    rc = ca_req_new(p->c, buf, len, sl->name, p->o, &sl->r);
    if (rc != P11CA_OK) {
        slot_refuse(sl, rc, false);
        return;
    }
    rc = ca_req_build(p->c, sl->r);
    if (rc != P11CA_OK)
        slot_refuse(sl, rc, rc != P11CA_E_INPUT && rc != P11CA_E_POLICY);
}

/* A slot for the next CSR, once one is free; false when there is no next
 * one to read. */
static bool reserve(struct pipe *p)
{
    bool ok;

    pthread_mutex_lock(&p->lock);
    while (!p->stop && !p->ended && p->taken >= p->cap)
        pthread_cond_wait(&p->room, &p->lock);
    ok = !p->stop && !p->ended;
    if (ok && ++p->taken > p->peak)
        p->peak = p->taken;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* Wake the recorder (under the lock) when CSR @seq is the one it waits
 * for, or when nothing is being processed any more (see window). */
static void done_wake(struct pipe *p, size_t seq)
{
    if (p->rec_waits && (seq == p->rec_want || p->busy == 0))
        pthread_cond_signal(&p->done);
}

static void *worker(void *arg)
{
    struct pipe *p = arg;
    unsigned char *buf;
    struct slot *sl;
    size_t len, seq;
    char *name;
    int got;

    while (reserve(p)) {
        pthread_mutex_lock(&p->src_lock);
        got = src_next(&p->src, &buf, &len);
        seq = p->next_seq;
        if (got != 0)
            p->next_seq++;
        name = got != 0 ? strdup(p->src.name) : NULL;
        pthread_mutex_unlock(&p->src_lock);
        pthread_mutex_lock(&p->lock);
        p->taken -= got == 0;
        if (got == 0 && !p->ended) {
            p->ended = true;
            p->end = seq;
        }
        p->busy += got != 0;
        if (got == 0) { /* the others see the end too */
            pthread_cond_broadcast(&p->done);
            pthread_cond_broadcast(&p->room);
        }
        pthread_mutex_unlock(&p->lock);
        if (got == 0)
            break;
        sl = &p->ring[seq % p->cap];
        sl->name = name;
        if (!name) /* the name is what tells the CSR: without memory, stop */
            got = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        check_one(p, sl, got, buf, len);
        free(buf);
        pthread_mutex_lock(&p->lock);
        sl->seq = seq;
        if (sl->r) {
            sl->state = SLOT_TO_SIGN;
            p->signq[(p->sq_head + p->sq_n++) % p->cap] = seq;
            pthread_cond_signal(&p->to_sign);
        } else {
            sl->state = SLOT_DONE;
            p->busy--;
            done_wake(p, seq);
        }
        /* A source that fails (not a bad CSR) is read no further. */
        if (sl->fatal && !p->ended) {
            p->ended = true;
            p->end = seq + 1;
        }
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    if (--p->workers_left == 0)
        pthread_cond_broadcast(&p->to_sign);
    pthread_mutex_unlock(&p->lock);
    ERR_clear_error();
    return NULL;
}

static void *signer(void *arg)
{
    struct signer_arg *a = arg;
    struct pipe *p = a->p;
    struct slot *sl;
    size_t seq;
    int rc;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->sq_n == 0 && p->workers_left > 0)
            pthread_cond_wait(&p->to_sign, &p->lock);
        if (p->stop || p->sq_n == 0) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        seq = p->signq[p->sq_head];
        p->sq_head = (p->sq_head + 1) % p->cap;
        p->sq_n--;
        pthread_mutex_unlock(&p->lock);
        sl = &p->ring[seq % p->cap];
        rc = ca_req_sign_tbs(p->c, sl->r, a->s);
        if (rc != P11CA_OK)
            slot_refuse(sl, rc, rc != P11CA_E_INPUT && rc != P11CA_E_POLICY);
        pthread_mutex_lock(&p->lock);
        sl->state = SLOT_DONE;
        p->busy--;
        done_wake(p, seq);
        pthread_mutex_unlock(&p->lock);
    }
    ERR_clear_error();
    return NULL;
}

static void tell(struct pipe *p, const char *name, const char *serial, int rc,
                 const char *msg)
{
    if (rc != P11CA_OK)
        p->rejected++;
    else
        p->issued++;
    if (p->fn)
        p->fn(name, serial, rc, msg, p->arg);
}

/* The "recorded, not written" error of entry @e, whose file failed with
 * @why. */
static int out_error(struct pipe *p, const struct out_entry *e, const char *why)
{
    return p11ca_err_set(
        e->rc ? e->rc : P11CA_E_IO,
        "certificate %s is recorded, but %s could not be written (%s); `p11ca cert show --pem %s` gives it",
        e->serial, e->path ? e->path : p->outdir, why, e->serial);
}

/* OUTDIR/<SERIAL>.pem of the recorded certificate of @sl (the serial as
 * openssl prints it, as `openssl ca` names its newcerts files), staged:
 * written to its temporary file, not yet synced or in place.  A file that
 * cannot be staged is an entry with its error, for out_flush. */
static int out_stage(struct pipe *p, struct slot *sl)
{
    struct out_entry *e = &p->out[p->n_out++];
    ca_req *r = sl->r;
    int rc = P11CA_E_NOMEM;

    *e = (struct out_entry){.sl = sl};
    reg_serial_text(ca_req_serial(r), e->serial, sizeof(e->serial));
    e->path = malloc(strlen(p->outdir) + sizeof(e->serial) + 6);
    if (e->path) {
        sprintf(e->path, "%s/%s.pem", p->outdir, e->serial);
        rc = ca_outfile_open(e->path, 0644, 0, &e->f);
        if (rc == P11CA_OK) /* synced with the others: out_flush */
            ca_outfile_set_sync(e->f, false);
    } else {
        p11ca_err_set(rc, "out of memory");
    }
    if (rc == P11CA_OK
        && PEM_write_bio(ca_outfile_bio(e->f), PEM_STRING_X509, "", r->der,
                         (long)r->der_len)
               <= 0)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (rc == P11CA_OK)
        rc = ca_outfile_stage(e->f);
    if (rc == P11CA_OK) {
        p->n_open++;
        return P11CA_OK;
    }
    e->rc = rc;
    e->err = strdup(p11ca_err_message());
    ca_outfile_free(e->f); /* its temporary file removed */
    e->f = NULL;
    return rc;
}

/* syncfs(2) of the file system of --outdir. */
static int out_syncfs(struct pipe *p)
{
    int fd = open(p->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;

    if (fd < 0 || syncfs(fd) != 0)
        e = errno;
    if (fd >= 0)
        close(fd);
    if (e)
        return p11ca_err_set(P11CA_E_IO, "cannot sync %s: %s", p->outdir,
                             strerror(e));
    return P11CA_OK;
}

/*
 * The entries so far, in order: the staged files closed, the file system
 * synced once (syncfs: an fsync of each file is a metadata write and a
 * device flush each, 2.5 x the wall time), the files put in place in order,
 * their directory synced once, and each CSR reported.  The first file
 * that fails stops it: the certificates before it are in place and told,
 * those after it are not written (each is recorded: `cert show` gives
 * it); the refusals are told all the same.  Returns 0 or that error.
 */
static int out_flush(struct pipe *p)
{
    size_t bad = p->n_out, placed = 0, one = 0, closed = 0;
    struct out_entry *e;
    char *why = NULL;
    int rc = P11CA_OK;

    for (size_t i = 0; i < p->n_out && bad == p->n_out; i++) {
        e = &p->out[i];
        if (e->err || (e->f && ca_outfile_sync(e->f) != P11CA_OK))
            bad = i;
        else if (e->f)
            closed++;
    }
    /* Their data on disk, with one sync of the file system. */
    if (closed > 0 && out_syncfs(p) != P11CA_OK) {
        why = strdup(p11ca_err_message());
        for (bad = 0; bad < p->n_out && !p->out[bad].f; bad++)
            ;
    }
    for (size_t i = 0; i < bad; i++) {
        e = &p->out[i];
        if (!e->f)
            continue;
        if (ca_outfile_place(e->f) != P11CA_OK) {
            bad = i;
            break;
        }
        if (placed++ == 0)
            one = i;
    }
    if (bad < p->n_out && !why)
        why = strdup(p->out[bad].err ? p->out[bad].err : p11ca_err_message());
    if (placed && ca_outfile_dir_sync(p->out[one].path) != P11CA_OK) {
        /* In place, but not known to stay: none is told as written. */
        free(why);
        why = strdup(p11ca_err_message());
        for (bad = 0; bad < p->n_out && !p->out[bad].f; bad++)
            ;
    }
    for (size_t i = 0; i < p->n_out; i++) {
        e = &p->out[i];
        if (!e->f && !e->err)
            tell(p, e->sl->name, NULL, e->rc, e->msg);
        else if (i < bad)
            tell(p, ca_req_name(e->sl->r), e->serial, P11CA_OK, e->path);
    }
    if (bad < p->n_out)
        rc = out_error(p, &p->out[bad], why ? why : "out of memory");
    free(why);
    for (size_t i = 0; i < p->n_out; i++) {
        ca_outfile_free(p->out[i].f); /* removes what was not placed */
        free(p->out[i].path);
        free(p->out[i].err);
    }
    p->n_out = p->n_open = 0;
    return rc;
}

/*
 * The recorder's next window of CSRs, in order: up to @p->group requests
 * to record (in @reqs, *@n of them) with the refusals between them, ending
 * early at the end of the source or a CSR that stops the batch (*@end
 * set), or, for a stream, when nothing more is on its way (so that a slow
 * producer gets its certificates).  Returns the window's length.
 */
static size_t window(struct pipe *p, ca_req **reqs, size_t *n, bool *end)
{
    size_t k = 0;
    struct slot *sl;

    *n = 0;
    *end = false;
    pthread_mutex_lock(&p->lock);
    while (k < p->cap && *n < p->group) {
        sl = &p->ring[(p->rec_tail + k) % p->cap];
        if (p->stop || (p->ended && p->rec_tail + k >= p->end)) {
            *end = true;
            break;
        }
        /* Until the writer retires it, the slot holds an older CSR. */
        if (sl->state != SLOT_DONE || sl->seq != p->rec_tail + k) {
            if (!p->src.dir && *n > 0 && p->busy == 0)
                break;
            p->rec_want = p->rec_tail + k;
            p->rec_waits = true;
            pthread_cond_wait(&p->done, &p->lock);
            p->rec_waits = false;
            continue;
        }
        k++;
        if (sl->fatal) {
            *end = true;
            break;
        }
        if (sl->r)
            reqs[(*n)++] = sl->r;
    }
    pthread_mutex_unlock(&p->lock);
    return k;
}

/*
 * Record window after window in group commits (one transaction per group,
 * each under the profile's rate limit), handing each one to the writer.
 * A registry error ends it: that window is not recorded.
 */
static void *recorder(void *arg)
{
    struct pipe *p = arg;
    ca_req **reqs = calloc(p->group, sizeof(*reqs));
    struct rec_window w = {0};
    bool end = false;
    size_t n;

    if (!reqs) { /* told to the writer as a window that failed */
        w.rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        w.msg = strdup(p11ca_err_message());
        end = true;
        pthread_mutex_lock(&p->lock);
        p->wq[(p->wq_head + p->wq_n++) % (p->cap + 1)] = w;
        pthread_mutex_unlock(&p->lock);
    }
    while (!end) {
        w = (struct rec_window){0};
        w.k = window(p, reqs, &n, &end);
        w.rc = ca_req_record_batch(p->c, reqs, n, p->group);
        if (w.rc != P11CA_OK) {
            w.msg = strdup(p11ca_err_message());
            end = true;
        }
        pthread_mutex_lock(&p->lock);
        p->rec_tail += w.k;
        p->wq[(p->wq_head + p->wq_n++) % (p->cap + 1)] = w;
        pthread_cond_signal(&p->recorded);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    p->rec_done = true;
    pthread_cond_signal(&p->recorded);
    pthread_mutex_unlock(&p->lock);
    free(reqs);
    ERR_clear_error();
    return NULL;
}

/*
 * Stage the files of a recorded window (its first CSR is number @first)
 * and its refusals, as entries in order, flushing them when OUT_CHUNK
 * files are staged: a certificate is written only once recorded, and not
 * at all when its window could not be recorded.  @rc: the error that
 * already stops the batch (later certificates not written).  Returns @rc,
 * or the error that stops the batch.
 */
static int window_stage(struct pipe *p, const struct rec_window *w,
                        size_t first, int rc)
{
    const char *msg = NULL;
    struct slot *sl;
    struct out_entry *e;
    int st = P11CA_OK;

    for (size_t i = 0; i < w->k; i++) {
        sl = &p->ring[(first + i) % p->cap];
        if (sl->fatal) {
            if (rc == P11CA_OK && w->rc == P11CA_OK)
                rc = p11ca_err_set(sl->rc, "%s", sl->msg ? sl->msg : "");
            break;
        }
        if (!sl->r
            || (w->rc == P11CA_OK && rc == P11CA_OK
                && (st = ca_req_status(sl->r, &msg)) != P11CA_OK)) {
            e = &p->out[p->n_out++];
            *e = (struct out_entry){.sl = sl};
            e->rc = sl->r ? st : sl->rc;
            e->msg = sl->r ? msg : sl->msg ? sl->msg : p11ca_strerror(sl->rc);
            continue;
        }
        if (w->rc != P11CA_OK || rc != P11CA_OK)
            continue; /* not recorded, or the output failed: not told */
        if (out_stage(p, sl) != P11CA_OK || p->n_open == OUT_CHUNK)
            rc = out_flush(p);
    }
    if (w->rc != P11CA_OK) { /* what is staged still goes out */
        if (p->n_out > 0)
            (void)out_flush(p);
        rc = p11ca_err_set(w->rc, "%s", w->msg ? w->msg : "out of memory");
    }
    return rc;
}

/* The window's @k slots are free again. */
static void retire(struct pipe *p, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        struct slot *sl = &p->ring[(p->tail + i) % p->cap];

        ca_req_free(sl->r);
        free(sl->name);
        free(sl->msg);
        memset(sl, 0, sizeof(*sl));
    }
    pthread_mutex_lock(&p->lock);
    p->tail += k;
    p->taken -= k;
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->lock);
}

/* Every thread is to finish; a worker waiting for standard input too. */
static void pipe_stop(struct pipe *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->room);
    pthread_cond_broadcast(&p->to_sign);
    pthread_cond_broadcast(&p->done);
    pthread_cond_broadcast(&p->recorded);
    pthread_mutex_unlock(&p->lock);
    if (write(p->wake[1], "", 1) < 0) {
        /* nothing to do: the pipe is ours and empty */
    }
}

static unsigned cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

/* Start the workers, the signers and the recorder.  When one cannot be
 * started, those running are stopped by pipe_stop and joined. */
static int pipe_start(struct pipe *p)
{
    bool ok = true;

    p->workers_left = p->nw;
    for (unsigned i = 0; ok && i < p->nw; i++)
        ok = pthread_create(&p->threads[p->n_threads++], NULL, worker, p) == 0;
    for (unsigned i = 0; ok && i < p->ns; i++)
        ok =
            pthread_create(&p->threads[p->n_threads++], NULL, signer, &p->sa[i])
            == 0;
    if (ok)
        ok =
            pthread_create(&p->threads[p->n_threads++], NULL, recorder, p) == 0;
    if (ok)
        return P11CA_OK;
    p->n_threads--;
    return p11ca_err_set(P11CA_E_INTERNAL, "cannot start a thread: %s",
                         strerror(errno));
}

/* The output of the whole batch: each time, the windows the recorder is
 * done with (all of them: while the writer syncs, the next ones gather),
 * their files synced together. */
static int pipe_run(struct pipe *p)
{
    size_t n, k, first;
    int rc = P11CA_OK;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->wq_n == 0 && !p->rec_done)
            pthread_cond_wait(&p->recorded, &p->lock);
        for (n = 0; p->wq_n > 0; n++) {
            p->wtaken[n] = p->wq[p->wq_head];
            p->wq[p->wq_head].msg = NULL; /* ours now: freed below */
            p->wq_head = (p->wq_head + 1) % (p->cap + 1);
            p->wq_n--;
        }
        pthread_mutex_unlock(&p->lock);
        if (n == 0)
            break;
        first = p->tail;
        k = 0;
        for (size_t i = 0; i < n; i++) {
            if (rc == P11CA_OK)
                rc = window_stage(p, &p->wtaken[i], first + k, rc);
            k += p->wtaken[i].k;
        }
        if (p->n_out > 0) {
            int frc = out_flush(p);

            if (rc == P11CA_OK)
                rc = frc;
        }
        retire(p, k);
        for (size_t i = 0; i < n; i++) {
            free(p->wtaken[i].msg);
            p->wtaken[i].msg = NULL;
        }
        if (rc != P11CA_OK)
            break;
    }
    return rc;
}

/*
 * The pipe for @c: its threads' numbers, the ring (@bo and the profile's
 * rate limit), the signers, the source.  The CA key must be loaded.
 */
static int pipe_init(struct pipe *p, ca_key *k, const char *source,
                     const ca_batch_opts *bo)
{
    const ca_profile *prof = ca_profile_find(p->c, p->o->profile);
    int rc = P11CA_OK;

    p->group = bo && bo->group ? bo->group : 64;
    /* Groups are transactions: under a profile's rate limit each must fit
     * in one second (ca_req_record_batch). */
    if (prof && prof->rate_limit && p->group > prof->rate_limit)
        p->group = prof->rate_limit;
    p->nw = bo && bo->workers ? bo->workers : cpus();
    p->ns = bo && bo->signers                      ? bo->signers
            : EVP_PKEY_is_a(ca_key_pkey(k), "RSA") ? cpus()
                                                   : 1;
    if (!(bo && bo->signers) && p->ns > MAX_DEFAULT_SIGNERS)
        p->ns = MAX_DEFAULT_SIGNERS;
    p->nw = p->nw > MAX_THREADS ? MAX_THREADS : p->nw;
    p->ns = p->ns > MAX_THREADS ? MAX_THREADS : p->ns;
    p->cap = 2 * p->group + SLOTS_PER_THREAD * (p->nw + p->ns);
    p->ring = calloc(p->cap, sizeof(*p->ring));
    p->signq = calloc(p->cap, sizeof(*p->signq));
    p->wq = calloc(p->cap + 1, sizeof(*p->wq));
    p->wtaken = calloc(p->cap + 1, sizeof(*p->wtaken));
    p->out = calloc(p->cap, sizeof(*p->out));
    if (!p->ring || !p->signq || !p->wq || !p->wtaken || !p->out
        || pipe2(p->wake, O_CLOEXEC) != 0)
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (unsigned i = 0; rc == P11CA_OK && i < p->ns; i++) {
        p->sa[i].p = p;
        rc = ca_signer_new(k, p->c->s.digest, &p->sa[i].s);
    }
    if (rc == P11CA_OK)
        rc = src_open(&p->src, source, p->wake[0]);
    LOG_DBG(CA, "batch: %u workers, %u signers, %zu slots, groups of %zu",
            p->nw, p->ns, p->cap, p->group);
    return rc;
}

/* Everything of @p, its threads joined first. */
static void pipe_free(struct pipe *p)
{
    pipe_stop(p);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    LOG_DBG(CA, "batch: at most %zu of %zu slots in use", p->peak, p->cap);
    /* What was read and not retired (the batch stopped). */
    for (size_t i = 0; p->ring && i < p->cap; i++) {
        ca_req_free(p->ring[i].r);
        free(p->ring[i].name);
        free(p->ring[i].msg);
    }
    /* Windows the writer did not take (the batch stopped). */
    for (; p->wq_n > 0; p->wq_n--) {
        free(p->wq[p->wq_head].msg);
        p->wq[p->wq_head].msg = NULL;
        p->wq_head = (p->wq_head + 1) % (p->cap + 1);
    }
    for (unsigned i = 0; i < p->ns; i++)
        ca_signer_free(p->sa[i].s);
    pthread_cond_destroy(&p->room);
    pthread_cond_destroy(&p->to_sign);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->recorded);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->src_lock);
    src_close(&p->src);
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    free(p->ring);
    free(p->signq);
    free(p->wq);
    free(p->wtaken);
    free(p->out);
}

/* --outdir is a directory we may write into: checked before anything is
 * signed or recorded. */
static int outdir_check(const char *outdir)
{
    struct stat st;

    if (stat(outdir, &st) == 0 && !S_ISDIR(st.st_mode))
        return p11ca_err_set(
            P11CA_E_INPUT, "%s is not a directory: --outdir takes one", outdir);
    if (stat(outdir, &st) != 0 || access(outdir, W_OK | X_OK) != 0)
        return p11ca_err_set(P11CA_E_INPUT, "cannot write into %s: %s", outdir,
                             strerror(errno));
    return P11CA_OK;
}

int ca_issue_batch(ca *c, const char *source, const char *outdir,
                   const ca_issue_opts *o, const ca_batch_opts *bo,
                   ca_batch_fn fn, void *arg, size_t *issued, size_t *rejected)
{
    struct pipe p = {.c = c,
                     .o = o,
                     .outdir = outdir,
                     .fn = fn,
                     .arg = arg,
                     .wake = {-1, -1}};
    ca_key *k = NULL;
    int rc;

    *issued = *rejected = 0;
    rc = outdir_check(outdir);
    if (rc != P11CA_OK)
        return rc;
    pthread_mutex_init(&p.lock, NULL);
    pthread_mutex_init(&p.src_lock, NULL);
    pthread_cond_init(&p.room, NULL);
    pthread_cond_init(&p.to_sign, NULL);
    pthread_cond_init(&p.done, NULL);
    pthread_cond_init(&p.recorded, NULL);
    /* The key first: its PIN is asked before anything is read. */
    rc = ca_signing_key(c, &k);
    if (rc == P11CA_OK)
        rc = pipe_init(&p, k, source, bo);
    if (rc == P11CA_OK)
        rc = pipe_start(&p);
    if (rc == P11CA_OK)
        rc = pipe_run(&p);
    pipe_free(&p);
    *issued = p.issued;
    *rejected = p.rejected;
    return rc;
}
