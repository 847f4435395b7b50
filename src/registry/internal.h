/* SPDX-License-Identifier: Apache-2.0 */
/* What the registry's own files share: the handle, serial normalisation,
 * the audit append used inside transactions, the bounded details buffer. */
#ifndef P11CA_REG_INTERNAL_H
#define P11CA_REG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "registry/registry.h"

/* The opened registry: a backend and its connection. */
struct reg {
    const struct reg_backend *be;
    void *db;
};

/* Hex SHA-256 as text: 64 digits and a NUL. */
#define REG_HASH_HEX_LEN  64
#define REG_HASH_HEX_SIZE (REG_HASH_HEX_LEN + 1)

/* reg_serial_shown - reg_serial_text of @serial in a buffer of the calling
 * thread, for messages (valid until its next call on the thread). */
const char *reg_serial_shown(const char *serial);

/*
 * reg_filter_check - a checked copy of @f in @copy (NULL @f: match
 * everything), its serial normalised into @serial (@len bytes).
 * Returns 0 or P11CA_E_INPUT.
 */
int reg_filter_check(const reg_filter *f, reg_filter *copy, char *serial,
                     size_t len) REG_WUR;

/*
 * reg_pg_shown - the PostgreSQL connection string or URI @conninfo as
 * messages show it (backend_pg.c): "postgresql:" and its service, host,
 * hostaddr, port, dbname and user, never a password, in @out (@len
 * bytes).  0, or P11CA_E_INPUT when libpq cannot parse it.
 */
int reg_pg_shown(const char *conninfo, char *out, size_t len) REG_WUR;
/* reg_pg_has_password - whether @conninfo sets a password. */
bool reg_pg_has_password(const char *conninfo);

/*
 * reg_like_pattern - a reg_filter pattern ('*', '?', '\' escapes; no
 * wildcard: anywhere) as LIKE text with '\' as its ESCAPE character
 * (malloc'd in *@out): '%', '_' and '\' of the pattern match literally.
 */
int reg_like_pattern(const char *pattern, char **out) REG_WUR;

/*
 * reg_now - the registry's clock: Unix seconds (clock.c; the test suite's
 * virtual clock when P11CA_TEST_CLOCK is set).
 */
/* reg_copy_sql - the SQL of a row operation of reg_copy (fixed table and
 * column names only) into @sql; P11CA_E_INTERNAL when it does not fit. */
int reg_copy_sql(char *sql, size_t len, const char *fmt, ...) REG_WUR
    __attribute__((format(printf, 3, 4)));

int64_t reg_now(void);

/*
 * reg_clock_wait - return once reg_now() is past @now: sleeps to the next
 * second on the real clock; moves the virtual clock and returns at once.
 */
void reg_clock_wait(int64_t now);

/*
 * reg_clock_test_set - unit tests only: the virtual clock of
 * P11CA_TEST_CLOCK, set to @base (0: the real clock again); a test of a
 * time-dependent rule moves the clock by setting it again.
 */
void reg_clock_test_set(int64_t base);

/* reg_tx - run @fn in a write transaction: scheduled revocations that are
 * due go first (reg_supersede), then @fn; commit on success, else roll
 * back everything.  A transaction that lost to a concurrent one
 * (REG_FAULT_CONFLICT) is run again from the start, up to REG_TX_TRIES
 * times in all, so @fn must leave nothing behind in @arg that a new run
 * does not set again.  Returns what @fn or the database returned. */
#define REG_TX_TRIES 5
int reg_tx(reg *r, int (*fn)(reg *r, void *arg), void *arg) REG_WUR;

/*
 * reg_resolve - the CA of the certificate with (normalised) @serial: @ca_id
 * itself when it is not 0, else the one CA that has this serial (*@found
 * 0 when its issuer is unknown).  P11CA_E_NOTFOUND when no CA has it,
 * P11CA_E_INPUT (ambiguous, naming the CAs) when several have.
 */
int reg_resolve(reg *r, int64_t ca_id, const char *serial,
                int64_t *found) REG_WUR;

/*
 * reg_change_tx - move @c (read in the current write transaction) to @to
 * at @now, checking the lifecycle (reg_set_status), with its status
 * history and an audit entry (@actor, @why).  @reason and @invalidity are
 * for a revocation.  A revocation also drops a scheduled one.
 */
int reg_change_tx(reg *r, int64_t now, const reg_cert *c, reg_status to,
                  int reason, int64_t invalidity, const char *actor,
                  const char *why) REG_WUR;

/* reg_revoke_due_tx - revoke (superseded) every certificate whose
 * scheduled revocation is at or before @now, inside a write transaction;
 * *@count (may be NULL) gets how many. */
int reg_revoke_due_tx(reg *r, int64_t now, size_t *count) REG_WUR;

/* reg_audit_verify_status_tx - reg_audit_verify_status inside the
 * caller's transaction (reg_copy checks a copy before it commits). */
int reg_audit_verify_status_tx(reg *r, size_t *certs) REG_WUR;

/* The CRL reason "superseded" (RFC 5280 5.3.1). */
#define REG_REASON_SUPERSEDED 4

/*
 * reg_x509_subject - the RFC 2253 subject of DER certificate @der, in
 * *@subject (caller frees).  Returns 0 or P11CA_E_INPUT.
 */
int reg_x509_subject(const unsigned char *der, size_t len,
                     char **subject) REG_WUR;

/*
 * reg_audit_append_tx - append one entry to the hash chain.  The caller
 * holds a write transaction (so the sequence number and the previous hash
 * cannot change underneath).  Returns 0 or an error.
 */
int reg_audit_append_tx(reg *r, int64_t at, const char *actor,
                        const char *action, const char *object,
                        const char *details) REG_WUR;

/*
 * Audit details as JSON, in a buffer that grows up to REG_DETAILS_MAX.
 * Calls after a failure do nothing; reg_details_finish reports it.
 */
#define REG_DETAILS_MAX (64 * 1024)
struct reg_details {
    char *data;
    size_t len;
    size_t cap;
    int rc;
    bool first;
};

void reg_details_init(struct reg_details *d);
void reg_details_str(struct reg_details *d, const char *key, const char *val);
void reg_details_int(struct reg_details *d, const char *key, int64_t val);
/* An array of certificates: "key": [{"ca_id": 1, "serial": "4e"}, ...],
 * opened, filled and closed in that order. */
void reg_details_certs_open(struct reg_details *d, const char *key);
void reg_details_cert(struct reg_details *d, int64_t ca_id, const char *serial);
void reg_details_certs_close(struct reg_details *d);
/* reg_details_finish - close the object; 0 and the text in d->data, or
 * the first error (P11CA_E_INPUT: too long, P11CA_E_NOMEM). */
int reg_details_finish(struct reg_details *d) REG_WUR;
void reg_details_free(struct reg_details *d);

#endif
