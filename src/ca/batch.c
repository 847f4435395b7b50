/* SPDX-License-Identifier: Apache-2.0 */
/* Bulk issuance: CSRs from a directory or a PEM stream, signed, recorded
 * in group commits, and written out only once recorded. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ca/internal.h"

#define LINE_MAX_LEN 4096

/* Where the CSRs come from. */
struct batch_src {
    const char *dir; /* NULL: standard input */
    struct dirent **list;
    int n, i;
    size_t count; /* CSRs read from the stream */
    char *block;  /* the PEM block being read */
    size_t len;
    char name[512];
};

struct batch {
    ca *c;
    const char *outdir;
    const ca_issue_opts *o;
    ca_batch_fn fn;
    void *arg;
    size_t issued, rejected;
};

static int src_filter(const struct dirent *d);
static int src_open(struct batch_src *s, const char *source);
static void src_close(struct batch_src *s);
static int src_next_file(struct batch_src *s, unsigned char **buf, size_t *len);
static int src_next_pem(struct batch_src *s, unsigned char **buf, size_t *len);
static int src_next(struct batch_src *s, unsigned char **buf, size_t *len);
static void tell(struct batch *b, const char *name, const char *serial, int rc,
                 const char *msg);
static int write_cert(struct batch *b, ca_req *r);
static int group_fill(struct batch *b, struct batch_src *s, ca_req **reqs,
                      size_t max, size_t *n, bool *end);
static int group_finish(struct batch *b, ca_req **reqs, size_t n);

static int src_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int src_open(struct batch_src *s, const char *source)
{
    memset(s, 0, sizeof(*s));
    if (strcmp(source, "-") == 0)
        return P11CA_OK;
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
 * CA_MAX_CSR bytes; lines outside blocks are ignored. */
static int src_next_pem(struct batch_src *s, unsigned char **buf, size_t *len)
{
    char line[LINE_MAX_LEN];
    bool in = false, bol = true, big = false;
    size_t n;

    if (!s->block && !(s->block = malloc(CA_MAX_CSR + 1)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    s->len = 0;
    while (fgets(line, sizeof(line), stdin)) {
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
    if (!in)
        return 0;
    snprintf(s->name, sizeof(s->name), "CSR #%zu of standard input",
             ++s->count);
    if (big)
        return p11ca_err_set(P11CA_E_INPUT,
                             "%s is too large (more than %d bytes)", s->name,
                             CA_MAX_CSR);
    *buf = (unsigned char *)s->block;
    *len = s->len;
    return 1;
}

static int src_next(struct batch_src *s, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    return s->dir ? src_next_file(s, buf, len) : src_next_pem(s, buf, len);
}

static void tell(struct batch *b, const char *name, const char *serial, int rc,
                 const char *msg)
{
    if (rc != P11CA_OK)
        b->rejected++;
    else
        b->issued++;
    if (b->fn)
        b->fn(name, serial, rc, msg, b->arg);
}

/* OUTDIR/<SERIAL>.pem of a recorded certificate (the serial as openssl
 * prints it, as `openssl ca` names its newcerts files). */
static int write_cert(struct batch *b, ca_req *r)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char serial[REG_SERIAL_TEXT_MAX];
    char *path = malloc(strlen(b->outdir) + sizeof(serial) + 6);
    char *data = NULL;
    long n;
    int rc = P11CA_E_NOMEM;

    reg_serial_text(ca_req_serial(r), serial, sizeof(serial));
    if (mem && path && PEM_write_bio_X509(mem, ca_req_cert(r))) {
        sprintf(path, "%s/%s.pem", b->outdir, serial);
        n = BIO_get_mem_data(mem, &data);
        rc = ca_write_file_nosync(path, data, (size_t)n, 0644);
    }
    if (rc == P11CA_OK)
        tell(b, ca_req_name(r), serial, rc, path);
    else
        rc = p11ca_err_set(
            rc,
            "certificate %s is recorded, but %s could not be written (%s); `p11ca cert show --pem %s` gives it",
            serial, path ? path : b->outdir, p11ca_err_message(), serial);
    BIO_free(mem);
    free(path);
    return rc;
}

/* Read, check and sign up to @max requests.  A rejected CSR is reported
 * and skipped; an error of the CA (key, token) stops everything. */
static int group_fill(struct batch *b, struct batch_src *s, ca_req **reqs,
                      size_t max, size_t *n, bool *end)
{
    unsigned char *buf;
    size_t len;
    int got, rc;

    *n = 0;
    while (*n < max) {
        got = src_next(s, &buf, &len);
        if (got == 0) {
            *end = true;
            break;
        }
        if (got < 0 && got != P11CA_E_INPUT)
            return got;
        rc = got < 0 ? got
                     : ca_req_new(b->c, buf, len, s->name, b->o, &reqs[*n]);
        if (s->dir)
            free(buf);
        if (rc != P11CA_OK) {
            tell(b, s->name, NULL, rc, p11ca_err_message());
            continue;
        }
        rc = ca_req_sign(b->c, reqs[*n]);
        /* What the certificate could not hold is that CSR's problem. */
        if (rc == P11CA_E_INPUT || rc == P11CA_E_POLICY) {
            tell(b, s->name, NULL, rc, p11ca_err_message());
            ca_req_free(reqs[*n]);
            reqs[*n] = NULL;
            continue;
        }
        (*n)++;
        if (rc != P11CA_OK)
            return rc;
    }
    return P11CA_OK;
}

/* Record the group in one transaction, then write what was recorded. */
static int group_finish(struct batch *b, ca_req **reqs, size_t n)
{
    const char *msg;
    int rc, fd;

    rc = ca_req_record_batch(b->c, reqs, n, n);
    for (size_t i = 0; rc == P11CA_OK && i < n; i++) {
        int st = ca_req_status(reqs[i], &msg);
        if (st == P11CA_OK)
            rc = write_cert(b, reqs[i]);
        else
            tell(b, ca_req_name(reqs[i]), NULL, st, msg);
    }
    fd = open(b->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)syncfs(fd);
        close(fd);
    }
    return rc;
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
                   const ca_issue_opts *o, size_t group, ca_batch_fn fn,
                   void *arg, size_t *issued, size_t *rejected)
{
    struct batch b = {c, outdir, o, fn, arg, 0, 0};
    const ca_profile *p;
    struct batch_src s;
    ca_req **reqs;
    bool end = false;
    size_t n = 0;
    int rc;

    group = group ? group : 64;
    /* Groups are transactions: under a profile's rate limit each must fit
     * in one second (ca_req_record_batch). */
    p = ca_profile_find(c, o->profile);
    if (p && p->rate_limit && group > p->rate_limit)
        group = p->rate_limit;
    reqs = calloc(group, sizeof(*reqs));
    if (!reqs)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    rc = outdir_check(outdir);
    if (rc != P11CA_OK) {
        free(reqs);
        return rc;
    }
    rc = src_open(&s, source);
    while (rc == P11CA_OK && !end) {
        rc = group_fill(&b, &s, reqs, group, &n, &end);
        if (rc == P11CA_OK && n > 0)
            rc = group_finish(&b, reqs, n);
        for (size_t i = 0; i < n; i++)
            ca_req_free(reqs[i]);
        n = 0;
    }
    src_close(&s);
    free(reqs);
    *issued = b.issued;
    *rejected = b.rejected;
    return rc;
}
