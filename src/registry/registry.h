/* SPDX-License-Identifier: Apache-2.0 */
/* The certificate registry: every issued and registered certificate, its
 * lifecycle, the audit trail; rules here, storage behind a backend. */
#ifndef P11CA_REGISTRY_H
#define P11CA_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

#define REG_WUR __attribute__((warn_unused_result))

/*
 * Status codes: 0 ok, negative P11CA_E_* (common/rc.h) with the message in
 * p11ca_err_message():
 *   P11CA_E_NOTFOUND  no such certificate / CA / entry
 *   P11CA_E_EXISTS    serial taken, client ID taken by an activated cert
 *   P11CA_E_STATE     the lifecycle forbids the change (text says why)
 *   P11CA_E_RATE      a rate limit is reached (reg_limit)
 *   P11CA_E_INPUT     a bad argument (unknown status name, bad filter), or
 *                     a serial that several issuers have (text names them)
 *   P11CA_E_REGISTRY  the database failed (text names the SQL error)
 *   P11CA_E_UNAVAILABLE  the database server is down or unreachable
 *                     (REG_FAULT_UNREACHABLE below; PostgreSQL only)
 *
 * A certificate is identified by its issuer and serial: the issuer is a
 * registered CA (reg_ca_add), named by its id.  Calls that take a @ca_id
 * and a @serial accept @ca_id 0 for "whichever CA has this serial", and
 * refuse it (P11CA_E_INPUT, "ambiguous") when several have.
 */

typedef struct reg reg;

typedef enum reg_status {
    REG_STATUS_ANY = 0,
    REG_ACTIVATED = 1,
    REG_NOT_ACTIVATED,
    REG_REGISTERED_NOT_ACTIVATED,
    REG_REVOKED,
} reg_status;

/* "activated", "not-activated", "registered-not-activated", "revoked". */
const char *reg_status_name(reg_status st);
/* reg_status_parse - the reverse; P11CA_E_INPUT for an unknown name. */
int reg_status_parse(const char *name, reg_status *st) REG_WUR;

/*
 * reg_serial_text - a serial as `openssl x509 -serial` prints it, the one
 * way p11ca prints serials: upper-case hex, an even number of digits ("0A",
 * "00" for zero).  @hex is hex in any case, with or without "0x", colons or
 * leading zeros (the registry's own lower-case form, user input).  @out
 * gets at most @len - 1 characters; "?" when @hex is not hex.
 */
#define REG_SERIAL_TEXT_MAX 80
void reg_serial_text(const char *hex, char *out, size_t len);

/*
 * reg_serial_normalise - a serial as a user or a client gives it (hex in
 * any case, an optional "0x", colons between the digits as openssl and
 * browsers show them, leading zeros, an odd number of digits) to the
 * registry's own form in @out: lower-case hex without leading zeros ("0"
 * for zero), what reg_cert.serial holds.  Every command and the service
 * read serials through it, so all accept the same forms.  Returns 0 or
 * P11CA_E_INPUT (empty, not hex, longer than @outlen - 1), with a message
 * that says which forms are accepted.
 */
int reg_serial_normalise(const char *in, char *out, size_t outlen) REG_WUR;

/*
 * reg_cert_shown - a certificate as every message names it: its serial as
 * reg_serial_text prints it, then " of CA N" when @ca_id is not 0 (a
 * registered CA; 0 is a certificate whose issuer is unknown): "4E of CA
 * 2", "4E".  Messages say "certificate %s", "no certificate with serial
 * %s".  The text is in a buffer of the calling thread, valid until its
 * next call there: one per message.
 */
const char *reg_cert_shown(int64_t ca_id, const char *serial);

/* CRL reason codes (RFC 5280) by name: "keyCompromise" -> 1, ... */
int reg_reason_parse(const char *name, int *reason) REG_WUR;
const char *reg_reason_name(int reason);

/*
 * One certificate as the registry knows it.  Strings and @der are owned by
 * the struct (reg_cert_clear frees them).  Times are Unix seconds (UTC).
 */
typedef struct reg_cert {
    char serial[64]; /* lower-case hex of the serial, no leading zeros */
    int64_t ca_id;   /* the issuing CA (reg_ca_add), 0 if unknown */
    char *subject;   /* RFC 2253 text */
    char *issuer;    /* RFC 2253 text */
    char *cn;        /* first CN of the subject, or NULL */
    char *ou;        /* first OU of the subject, or NULL */
    char *client_id; /* default: the CN */
    char *profile;   /* profile name; NULL for registered certs */
    char *origin;    /* "issued" or "registered" */
    reg_status status;
    int64_t not_before;
    int64_t not_after;
    int64_t recorded_at;  /* when the registry recorded it */
    int64_t revoked_at;   /* 0 unless revoked */
    int reason;           /* CRL reason code, -1 unless revoked */
    int64_t invalidity;   /* invalidity date, 0 when not given */
    char *replaces;       /* serial this one renews/re-keys (same CA) */
    int64_t revoke_after; /* a scheduled revocation (reg_supersede), or 0 */
    char *key_hash;       /* hex SHA-256 of the SubjectPublicKeyInfo */
    unsigned char *der;
    size_t der_len;
} reg_cert;

/* reg_cert_clear - free what @c owns and zero it (accepts a zeroed one). */
void reg_cert_clear(reg_cert *c);

/*
 * reg_cert_from_der - fill @c from a DER certificate: serial, subject,
 * issuer, cn, ou, validity, key_hash, der (copied).  client_id defaults to
 * the CN.  Status, profile, origin are left for the caller.  Returns 0 or
 * P11CA_E_INPUT (not a certificate).
 */
int reg_cert_from_der(reg_cert *c, const unsigned char *der,
                      size_t len) REG_WUR;

/*
 * reg_cert_from_x509 - the same from a certificate object, without
 * parsing it again (issuance: the CA has just built it).
 */
struct x509_st;
int reg_cert_from_x509(reg_cert *c, struct x509_st *x) REG_WUR;

/* What a CA knows of a certificate it has just encoded. */
struct X509_name_st;
typedef struct reg_cert_parts {
    const char *serial; /* lower-case hex, no leading zeros */
    const struct X509_name_st *subject;
    const char *issuer; /* RFC 2253 text (reg_name_text) */
    int64_t not_before, not_after;
    const unsigned char *spki; /* DER SubjectPublicKeyInfo */
    size_t spki_len;
    const unsigned char *der; /* the certificate (copied) */
    size_t der_len;
} reg_cert_parts;

/*
 * reg_cert_from_parts - fill @c as reg_cert_from_der would, from the parts
 * @p a CA has just put into a certificate, without decoding it (decoding
 * makes OpenSSL 3.0 build the subject's key).  Returns 0, P11CA_E_INPUT
 * (a subject attribute that is not text) or P11CA_E_NOMEM.
 */
int reg_cert_from_parts(reg_cert *c, const reg_cert_parts *p) REG_WUR;

/* reg_name_text - @name as the registry stores names: RFC 2253 text
 * (malloc'd, in *@out).  Returns 0 or P11CA_E_NOMEM. */
int reg_name_text(const struct X509_name_st *name, char **out) REG_WUR;

/* The orders a search can return; every one ends with the recording
 * order, so that equal keys come in a stable order. */
typedef enum reg_sort {
    REG_SORT_RECORDED = 0, /* when the registry recorded them (default) */
    REG_SORT_SERIAL,       /* numerically */
    REG_SORT_CN,
    REG_SORT_CLIENT_ID,
    REG_SORT_STATUS,
    REG_SORT_PROFILE,
    REG_SORT_NOT_BEFORE,
    REG_SORT_NOT_AFTER,
} reg_sort;

/*
 * Search filter; zero fields do not filter.  Strings match exactly except
 * @cn_match/@ou_match, which are patterns: '*' matches any run of
 * characters, '?' one character, '\' takes the next one literally; a
 * pattern without '*' or '?' matches anywhere in the value.  Patterns are
 * ASCII case-insensitive.  Times are Unix seconds; ranges are
 * after <= t < before.
 */
typedef struct reg_filter {
    const char *serial;
    const char *cn;
    const char *cn_match;
    const char *ou;
    const char *ou_match;
    const char *client_id;
    const char *profile;
    const char *origin;   /* "issued" or "registered" */
    const char *replaces; /* the serial it renews, as reg_cert.serial holds
                             it (lower-case hex, no leading zeros) */
    reg_status status;
    bool not_revoked; /* leave revoked certificates out */
    int64_t ca_id;
    int64_t issued_after, issued_before;   /* recorded_at range */
    int64_t expires_after, expires_before; /* not_after range */
    int64_t valid_at;                      /* not_before <= t < not_after */
    int64_t revoke_due; /* revoke_after set and <= this time */
    size_t limit;       /* 0: no limit */
    size_t offset;
    reg_sort sort;
    bool descending;
} reg_filter;

/* Called for each match; return non-zero to stop (that value is returned). */
typedef int (*reg_cert_cb)(const reg_cert *c, void *arg);

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

/*
 * reg_open - open (creating and migrating as needed) the registry at
 * @location, whose prefix names the backend:
 *   "sqlite:/path/file.db", or a bare path: SQLite;
 *   "postgresql://..." or "postgres://...": PostgreSQL, the whole location
 *     being a libpq connection URI;
 *   "postgresql:..." or "postgres:..." (without "//"): PostgreSQL, the rest
 *     being a libpq keyword/value connection string ("postgresql:host=/run/
 *     postgresql dbname=p11ca", "postgresql:service=p11ca") or a database
 *     name.
 * Messages never show a PostgreSQL password (the userinfo's or password=).
 * SQLite runs in WAL mode with synchronous=FULL (a commit is durable),
 * foreign keys on, secure_delete on, and a busy timeout so that several
 * processes can issue at once.  PostgreSQL runs write transactions one at
 * a time (a transaction-level advisory lock: the audit chain is one
 * sequence) and enforces the lifecycle's uniqueness and finality itself
 * (schema/pg/).  @out gets the registry.  Returns 0 or an error.  A reg is
 * used by one thread at a time; a forked child opens its own (never the
 * parent's).
 */
int reg_open(const char *location, reg **out) REG_WUR;

/*
 * reg_open_ex - reg_open with @flags:
 *   REG_OPEN_CREATE    create the file and its schema when missing, and
 *                      migrate (what reg_open does; only `ca init` and
 *                      explicit migrations should ask for it);
 *   REG_OPEN_READONLY  read only: no migration, no journal-mode change, no
 *                      file created; works for a user who may read the
 *                      registry but not write its directory (the writers
 *                      keep the WAL's -wal and -shm files, which SQLite
 *                      needs then).  Every change is refused by SQLite.
 * Without REG_OPEN_CREATE, a missing file, one without a schema or one
 * without any audit entry (every registry starts with one) is
 * P11CA_E_NOTFOUND (the message names the file) and nothing is created;
 * an older schema is migrated, unless REG_OPEN_READONLY (P11CA_E_REGISTRY).
 */
/*
 * reg_location_shown - @location as a message may show it: a PostgreSQL
 * location as "postgresql:" and its service, host, hostaddr, port, dbname
 * and user (never a password; "postgresql:(not a connection string)"
 * when libpq cannot parse it), any other as it is.  In a buffer of the
 * calling thread, valid until its next call there.
 */
const char *reg_location_shown(const char *location);
/* reg_location_is_pg - whether @location names a PostgreSQL registry. */
bool reg_location_is_pg(const char *location);
/* reg_location_has_password - whether @location is a PostgreSQL location
 * that carries a password (a file that holds it must not be readable by
 * others). */
bool reg_location_has_password(const char *location);

#define REG_OPEN_CREATE   0x1u
#define REG_OPEN_READONLY 0x2u
int reg_open_ex(const char *location, unsigned flags, reg **out) REG_WUR;
void reg_close(reg *r);

/* reg_schema_version - the schema version after migrations (for tests). */
int reg_schema_version(reg *r);

/*
 * What kind of failure the last failed call on a registry met, for callers
 * that decide whether to try again (a service answers 503 and Retry-After
 * for REG_FAULT_UNREACHABLE):
 *   REG_FAULT_NONE         none, or a failure that trying again will not
 *                          cure (a rule, bad input, a damaged database);
 *   REG_FAULT_CONFLICT     a concurrent transaction won (serialization
 *                          failure, deadlock); reg_tx has already tried
 *                          again a bounded number of times;
 *   REG_FAULT_UNREACHABLE  the database server could not be reached or the
 *                          connection was lost; the next call reconnects
 *                          (a transaction in progress was rolled back by
 *                          the server: nothing of it was recorded).
 * SQLite reports REG_FAULT_NONE.
 */
typedef enum reg_fault {
    REG_FAULT_NONE = 0,
    REG_FAULT_CONFLICT,
    REG_FAULT_UNREACHABLE,
} reg_fault;
reg_fault reg_last_fault(reg *r);

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

/*
 * A rate limit on recording: at most @per_sec certificates of its kind are
 * recorded in one second of the registry's clock (recorded_at has
 * one-second resolution).  Its kind is what it counts: with @profile, the
 * certificates issued under that profile; without, sign-ups (registered
 * certificates).  The count is taken inside the write transaction, so
 * concurrent recorders cannot both slip under the limit.  When the second
 * is full, recording waits for the next one, up to @wait seconds (0: it
 * refuses at once), then refuses with P11CA_E_RATE, changing nothing; the
 * message names the limit (@what, e.g. "the sign-up limit (rate_limit in
 * [ ca ] of ca.cnf)"), how many were recorded in the second and how long
 * it waited.  Strings are borrowed for the call.
 */
typedef struct reg_limit {
    unsigned per_sec;    /* 0: no limit */
    unsigned wait;       /* seconds to wait for a slot */
    const char *profile; /* NULL: count sign-ups */
    const char *what;    /* names the limit in messages */
} reg_limit;

/*
 * reg_record_issued - record a certificate the CA just signed, in one
 * durable transaction with its first status-history entry and an audit
 * entry, BEFORE the caller hands the certificate out.  @c->status is
 * usually REG_ACTIVATED.  Refuses (changing nothing):
 *  - a serial that the same CA (@c->ca_id) has already (P11CA_E_EXISTS: the
 *    caller picks a new serial),
 *  - an activated cert whose client ID is held by another activated cert
 *    (P11CA_E_EXISTS),
 *  - a full second under @limit (P11CA_E_RATE after its wait; NULL: no
 *    limit),
 *  - a status other than activated / not-activated, a missing subject,
 *    issuer or DER, an unknown @c->ca_id (P11CA_E_INPUT/P11CA_E_NOTFOUND).
 * The serial is normalised; recorded_at is set here, origin is "issued",
 * and revocation fields are ignored.  A certificate without a client ID
 * (@c->client_id NULL: a server) holds none.
 * @actor names who did it (user@host, "api:<client>").
 */
int reg_record_issued(reg *r, const reg_cert *c, const char *actor,
                      const reg_limit *limit) REG_WUR;

/*
 * reg_record_batch - record @n certificates in one transaction (group
 * commit for bulk issuance); all or nothing.  Same checks as above; under
 * @limit (may be NULL) the whole group must fit in one second, so a
 * caller keeps groups at most @limit->per_sec long.  On P11CA_E_EXISTS
 * *@bad is the index of the culprit.  (@bad may be NULL; on any error tied
 * to one certificate it is that index, otherwise @n.)
 */
int reg_record_batch(reg *r, const reg_cert *certs, size_t n, const char *actor,
                     const reg_limit *limit, size_t *bad) REG_WUR;

/*
 * reg_register - record an externally issued certificate (status
 * registered-not-activated, origin "registered"): a sign-up, under
 * @limit (may be NULL; its @profile must be NULL).  The caller has checked
 * it against a registered CA and sets @c->ca_id.
 */
int reg_register(reg *r, const reg_cert *c, const char *actor,
                 const reg_limit *limit) REG_WUR;

/*
 * reg_register_as - the same with status @st: REG_REGISTERED_NOT_ACTIVATED
 * or REG_ACTIVATED (auto-registration of a CA whose default status is
 * activated; refused with P11CA_E_EXISTS when an activated certificate
 * holds the client ID), a sign-up under @limit as reg_register's.
 * Other statuses: P11CA_E_INPUT.
 */
int reg_register_as(reg *r, const reg_cert *c, reg_status st, const char *actor,
                    const reg_limit *limit) REG_WUR;

/* reg_get - the certificate @serial (hex, any case, leading zeros ok) of
 * the CA @ca_id (0: whichever has it; refused when ambiguous).  @out is
 * overwritten (not freed first); free it with reg_cert_clear. */
int reg_get(reg *r, int64_t ca_id, const char *serial, reg_cert *out) REG_WUR;

/* reg_search - every certificate matching @f, in the order of @f->sort
 * (@f NULL: all, oldest first).  The callback must not change the
 * registry. */
int reg_search(reg *r, const reg_filter *f, reg_cert_cb cb, void *arg) REG_WUR;

/* reg_count - how many match @f (limit and offset ignored). */
int reg_count(reg *r, const reg_filter *f, size_t *n) REG_WUR;

/*
 * reg_set_status - move the certificate (@ca_id, @serial) to @to, checking
 * the lifecycle:
 *  - revoked is final: nothing leaves it (P11CA_E_STATE);
 *  - activate: from not-activated or registered-not-activated, not once it
 *    has expired, and only if no other activated cert holds its client ID
 *    (P11CA_E_EXISTS);
 *  - deactivate (to not-activated): from activated;
 *  - revoke: from any other status; @reason is a CRL reason code (0..10,
 *    not 7), @invalidity 0 or a time.
 * Records status history and an audit entry with @actor and @why.
 */
int reg_set_status(reg *r, int64_t ca_id, const char *serial, reg_status to,
                   int reason, int64_t invalidity, const char *actor,
                   const char *why) REG_WUR;

/*
 * reg_change_status - reg_set_status as a request to be somewhere: asked
 * for what is already so (to not-activated from either not-activated
 * form, to revoked with the reason it was revoked with), nothing is
 * written (no audit entry: the trail records changes only) and
 * *@changed is false; a revoked certificate asked to be revoked with
 * another reason is refused (P11CA_E_STATE: revocation is final and keeps
 * its first reason).  @reason -1 for revoked means 0 (unspecified).  The
 * certificate as it is afterwards in @out (overwritten, not freed first;
 * free it with reg_cert_clear, on failure too).  p11ca cert
 * activate|deactivate|revoke and the service's lifecycle routes both
 * change a status through it, so both answer the same.
 */
int reg_change_status(reg *r, int64_t ca_id, const char *serial, reg_status to,
                      int reason, int64_t invalidity, const char *actor,
                      const char *why, reg_cert *out, bool *changed) REG_WUR;

/*
 * reg_delete - remove the certificate (@ca_id, @serial): refused while
 * activated (P11CA_E_STATE), and for a revoked certificate that has not
 * expired when its CA is not external (that CA's CRL must keep listing
 * it).  Audited; its status history goes with it.
 */
int reg_delete(reg *r, int64_t ca_id, const char *serial, const char *actor,
               const char *why) REG_WUR;

/*
 * reg_revoke_bulk - revoke every non-revoked certificate matching @f in one
 * transaction, recorded as one audited action: a "revoke" entry per
 * certificate (as reg_set_status writes, with "via":"revoke-bulk"; the
 * audit trail is each certificate's history), then one "revoke-bulk"
 * entry with the count, the reason, @why, the filter and every
 * certificate revoked ("certs": [{"ca_id": 1, "serial": "4e"}, ...]);
 * past REG_BULK_AUDIT_CERTS certificates the list continues in further
 * "revoke-bulk" entries ("part" i of "parts" n).  @expect (0: any) is the
 * count the caller confirmed: if the filter matches another number now,
 * nothing changes (P11CA_E_STATE).  *@count gets how many were revoked.
 * A filter without any criterion (only limit/offset/order) is refused
 * (P11CA_E_INPUT).
 */
#define REG_BULK_AUDIT_CERTS 400
int reg_revoke_bulk(reg *r, const reg_filter *f, int reason, const char *actor,
                    const char *why, size_t expect, size_t *count) REG_WUR;

/* What happens to the certificate a renewal or re-key supersedes. */
typedef enum reg_supersede_how {
    REG_SUPERSEDE_REVOKE = 0, /* revoked now, reason superseded */
    REG_SUPERSEDE_GRACE,      /* revoked once a grace period has passed */
    REG_SUPERSEDE_KEEP,       /* left not-activated, unrevoked */
} reg_supersede_how;

/*
 * reg_supersede - the certificate (@ca_id, @serial) renews @old (of the
 * same CA), in one transaction: the link is recorded, @old is deactivated
 * if it was activated and @serial activated if it was not (each with its
 * history and audit entry), then @old is revoked with reason superseded
 * (@how REVOKE), or scheduled for that revocation @grace seconds from now
 * (@how GRACE; audited as "schedule-revoke"), or left as it is (KEEP).
 * A scheduled revocation is carried out by the first registry write at or
 * after its time (every write transaction starts with it; actor
 * "registry:scheduled"), or by reg_revoke_due (the next CRL).  Refuses a revoked @serial or
 * @old (P11CA_E_STATE) and @serial == @old (P11CA_E_INPUT).
 */
int reg_supersede(reg *r, int64_t ca_id, const char *serial, const char *old,
                  reg_supersede_how how, int64_t grace,
                  const char *actor) REG_WUR;

/*
 * reg_revoke_due - carry out the scheduled revocations that are due now
 * (what every write does first), in a transaction of their own: a CRL run
 * calls it before it reads the revoked list.  *@count (may be NULL) gets
 * how many were revoked.
 */
int reg_revoke_due(reg *r, size_t *count) REG_WUR;

/* Status history of one certificate, oldest first. */
typedef struct reg_history {
    int64_t at;
    reg_status from; /* REG_STATUS_ANY for the first entry */
    reg_status to;
    const char *actor;
    const char *reason;
} reg_history;
typedef int (*reg_history_cb)(const reg_history *h, void *arg);
int reg_history_list(reg *r, int64_t ca_id, const char *serial,
                     reg_history_cb cb, void *arg) REG_WUR;

/* ------------------------------------------------------------------ */
/* CRL support                                                         */
/* ------------------------------------------------------------------ */

/* A revoked certificate, as a CRL entry needs it. */
typedef struct reg_revoked {
    const char *serial;
    int64_t revoked_at;
    int reason;
    int64_t invalidity;
} reg_revoked;
typedef int (*reg_revoked_cb)(const reg_revoked *e, void *arg);

/*
 * reg_revoked_list - the revoked certificates of @ca_id (0: all) that had
 * not expired at @now (0: include expired ones), in serial order; streams,
 * so 100,000 entries take no more memory than one.
 */
int reg_revoked_list(reg *r, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                     void *arg) REG_WUR;

/* reg_crl_number_next - the next CRL number of @ca_id (1, 2, ...), durably
 * (a write: scheduled revocations that are due happen first). */
int reg_crl_number_next(reg *r, int64_t ca_id, uint64_t *n) REG_WUR;

/* reg_crl_number_last - the last CRL number reg_crl_number_next gave for
 * @ca_id (0: none yet), without taking one. */
int reg_crl_number_last(reg *r, int64_t ca_id, uint64_t *n) REG_WUR;

/* ------------------------------------------------------------------ */
/* Certification authorities                                           */
/* ------------------------------------------------------------------ */

/*
 * reg_ca_add - register the certificate of a CA whose issuance this
 * registry records and whose CRLs it makes.  reg_ca_add_external - an
 * external CA, whose certificates are only registered (reg_register).
 * @id gets its id; an existing identical certificate gives its id (not an
 * error); reg_ca_add marks an existing external one as ours.
 */
int reg_ca_add(reg *r, const unsigned char *der, size_t len, const char *name,
               int64_t *id) REG_WUR;
int reg_ca_add_external(reg *r, const unsigned char *der, size_t len,
                        const char *name, int64_t *id) REG_WUR;

typedef struct reg_ca {
    int64_t id;
    const char *name;
    const char *subject;
    const unsigned char *der;
    size_t der_len;
    bool external;
    /* Auto-registration (p11ca serve): a certificate of this CA that the
     * registry does not know is recorded at its first connection with
     * @auto_status (activated or registered-not-activated). */
    bool auto_register;
    reg_status auto_status;
} reg_ca;
typedef int (*reg_ca_cb)(const reg_ca *ca, void *arg);
int reg_ca_list(reg *r, reg_ca_cb cb, void *arg) REG_WUR;

/*
 * reg_ca_find - the id of the registered CA that @what names: its id in
 * decimal, its name, or its subject (RFC 2253).  P11CA_E_NOTFOUND when
 * none does, P11CA_E_INPUT when several do (the message names their ids).
 */
int reg_ca_find(reg *r, const char *what, int64_t *id) REG_WUR;

/*
 * reg_ca_set_auto - turn auto-registration of CA @id on or off, with the
 * status its devices get (@st: REG_ACTIVATED or
 * REG_REGISTERED_NOT_ACTIVATED, else P11CA_E_INPUT); audited
 * ("ca-auto-register") with @actor.  P11CA_E_NOTFOUND for an unknown id.
 */
int reg_ca_set_auto(reg *r, int64_t id, bool on, reg_status st,
                    const char *actor) REG_WUR;

/* ------------------------------------------------------------------ */
/* Enrollment codes (enroll_codes.c)                                   */
/* ------------------------------------------------------------------ */

/*
 * A one-time enrollment code as the registry keeps it: never the code,
 * only its SHA-256 (hex); bound to a profile and a client ID, and to a
 * subject when @subject is not NULL.  Strings owned (reg_code_clear).
 */
typedef struct reg_code {
    int64_t id;
    int64_t ca_id; /* the CA whose service made it: only it takes it */
    char *profile;
    char *client_id;
    char *subject; /* NULL: any subject the profile allows */
    int64_t expires;
    char *issued; /* reg_code_given: the serial of what it gave */
} reg_code;

/* reg_code_clear - free what @c owns and zero it. */
void reg_code_clear(reg_code *c);

/*
 * reg_code_add - record a code by its hash @hash (64 hex digits) for the CA
 * @ca_id (registered in cas: only that CA's service takes it), bound to
 * @profile, @client_id and @subject (may be NULL), valid for @ttl seconds
 * from now on the registry's clock; audited ("enroll-code-create", with
 * the id, never the code or its hash) with @actor.  *@id gets its id and
 * *@expires when it expires (Unix seconds).  Returns 0, P11CA_E_INPUT or
 * a registry error.
 */
int reg_code_add(reg *r, int64_t ca_id, const char *hash, const char *profile,
                 const char *client_id, const char *subject, int64_t ttl,
                 const char *actor, int64_t *id, int64_t *expires) REG_WUR;

/*
 * reg_code_take - use the code of the CA @ca_id whose hash is @hash (a code
 * of another CA is unknown here), once: one conditional
 * UPDATE (not used, not expired at reg_now()) marks it used, so that of
 * two callers with the same code exactly one gets it.  @out gets what the
 * code is bound to.  Audited ("enroll-code-use").  P11CA_E_NOTFOUND, with
 * one message, when the code is unknown, used or expired.
 */
int reg_code_take(reg *r, int64_t ca_id, const char *hash, const char *actor,
                  reg_code *out) REG_WUR;

/*
 * reg_code_issued - the code @id (taken) gave the certificate (@ca_id,
 * @serial): recorded with it and audited ("enroll-code-issued").
 * P11CA_E_STATE unless the code is of @ca_id, taken and not linked yet.
 */
int reg_code_issued(reg *r, int64_t id, int64_t ca_id, const char *serial,
                    const char *actor) REG_WUR;

/*
 * reg_code_release - the code @id was taken but nothing was issued with it
 * (the request was refused): usable again until it expires.  Audited
 * ("enroll-code-release") with @why.
 */
int reg_code_release(reg *r, int64_t id, const char *actor,
                     const char *why) REG_WUR;

/*
 * reg_code_given - the code of the CA @ca_id whose hash is @hash, when it
 * was taken and gave a certificate (reg_code_issued) and has not expired
 * (reg_now()): @out gets what it is bound to and, in @out->issued, the
 * serial of that certificate.  A read: a client that got no answer to an
 * enrollment asks again with the same code, and gets what it was given.
 * P11CA_E_NOTFOUND, with reg_code_take's one message, when there is none.
 */
int reg_code_given(reg *r, int64_t ca_id, const char *hash,
                   reg_code *out) REG_WUR;

/* ------------------------------------------------------------------ */
/* Audit trail                                                         */
/* ------------------------------------------------------------------ */

/*
 * Every issuance and status change leaves an entry; each entry carries the
 * SHA-256 of the previous entry and its own hash, so editing or deleting an
 * entry breaks the chain.  reg_audit_add is for actions outside the
 * certificate calls above (CA init, CRL made, import).
 */
typedef struct reg_audit {
    int64_t seq;
    int64_t at;
    const char *actor;
    const char *action;  /* "issue", "revoke", "activate", "crl", ... */
    const char *object;  /* usually a serial */
    const char *details; /* free text / JSON */
    const char *prev_hash;
    const char *hash;
} reg_audit;
typedef int (*reg_audit_cb)(const reg_audit *a, void *arg);

int reg_audit_add(reg *r, const char *actor, const char *action,
                  const char *object, const char *details) REG_WUR;
int reg_audit_list(reg *r, int64_t since_seq, reg_audit_cb cb,
                   void *arg) REG_WUR;

/*
 * reg_audit_verify - recompute the chain.  Returns 0 when intact; else
 * P11CA_E_STATE with the message naming the first broken entry (edited,
 * deleted, reordered).  *@entries (may be NULL) gets how many were checked.
 */
int reg_audit_verify(reg *r, size_t *entries) REG_WUR;

/*
 * reg_audit_verify_status - replay the audit trail: each certificate
 * (CA id and serial) has the status its entries lead to ("issue"/"register"
 * with their "status", then every entry with a "to", "delete", and the
 * "certs" of "revoke-bulk"), and so is its revocation reason when an entry
 * names it.  Entries of schema 1 registries, which name a serial only,
 * are about the one certificate with that serial the trail had then (see
 * audit_replay.c).  Every certificate of the registry must have that
 * status, and every certificate the trail has not deleted must be in the
 * registry.  Run in one read transaction.  Returns 0, or P11CA_E_STATE
 * naming the first certificate that differs (changed, added or removed
 * outside the registry's rules) or the entry that does not say which
 * certificate it changes; *@certs (may be NULL) gets how many
 * certificates were checked.  Check the chain first (reg_audit_verify):
 * the replay trusts the entries' text.
 */
int reg_audit_verify_status(reg *r, size_t *certs) REG_WUR;

/* reg_audit_tip - the newest entry: *@seq (0 when the trail is empty) and
 * its hash in @hash ("" then). */
int reg_audit_tip(reg *r, int64_t *seq, char hash[65]) REG_WUR;

/* reg_audit_entry_hash - the hash of entry @seq; P11CA_E_NOTFOUND when the
 * trail has no such entry. */
int reg_audit_entry_hash(reg *r, int64_t seq, char hash[65]) REG_WUR;

/*
 * A signed head of the audit trail: the CA's signature over an entry's
 * sequence number and hash.  The registry stores the signed bytes as the
 * CA made them (@der) with @seq, @hash, @at and @ca_id for look-ups; it
 * does not check signatures (the CA does, with its certificate).
 */
typedef struct reg_audit_head {
    int64_t id;       /* given by reg_audit_head_add */
    int64_t seq;      /* the newest entry it covers */
    const char *hash; /* that entry's hash (64 hex digits) */
    int64_t at;       /* when it was signed (Unix seconds) */
    int64_t ca_id;    /* the CA that signed it */
    const unsigned char *der;
    size_t der_len;
} reg_audit_head;
typedef int (*reg_audit_head_cb)(const reg_audit_head *h, void *arg);

/*
 * reg_audit_head_add - store @h (its id is ignored) after checking, in the
 * same write transaction, that entry @h->seq exists with @h->hash
 * (P11CA_E_STATE otherwise: the trail changed under the signer).
 */
int reg_audit_head_add(reg *r, const reg_audit_head *h) REG_WUR;

/*
 * reg_audit_heads - the stored heads of @ca_id (0: every CA) in the order
 * they were added, or newest first; @cb may stop the walk by returning
 * non-zero (that value is returned).  Strings and bytes are borrowed for
 * the call.
 */
int reg_audit_heads(reg *r, int64_t ca_id, bool newest_first,
                    reg_audit_head_cb cb, void *arg) REG_WUR;

/* ------------------------------------------------------------------ */
/* Moving a registry                                                   */
/* ------------------------------------------------------------------ */

/* How many rows of one table reg_copy copied. */
typedef struct reg_copy_count {
    const char *table; /* "cas", "certs", ... (static) */
    size_t rows;
} reg_copy_count;

/* The tables reg_copy copies, in the order it copies them. */
#define REG_COPY_TABLES 7

/*
 * reg_copy - copy the whole registry @from into the empty registry @to
 * (another backend or the same), in one write transaction on @to: every
 * row of every table (CAs, certificates with their status history, CRL
 * numbers, the audit trail, its signed heads) with its stored values and
 * ids as they are, so that hashes, signatures and references stay valid.
 * @from is read in one read transaction and never changed (open it with
 * REG_OPEN_READONLY).  Before committing, @to is checked: as many rows
 * per table as @from has, the same newest audit entry, an intact audit
 * chain (reg_audit_verify) and every certificate with the status its
 * audited history leads to (reg_audit_verify_status).  @counts (may be
 * NULL) gets the rows per table.  Returns 0; P11CA_E_EXISTS when @to holds
 * any row (the message names the table; nothing is written); P11CA_E_STATE
 * when a check fails (nothing is written); or the error of either
 * registry.
 */
int reg_copy(reg *from, reg *to,
             reg_copy_count counts[REG_COPY_TABLES]) REG_WUR;

/* ------------------------------------------------------------------ */
/* Storage backends                                                    */
/* ------------------------------------------------------------------ */

/*
 * A table as reg_copy moves it: its name, its columns (fixed text, in the
 * order of @kinds) and the column(s) that order its rows.  @identity is
 * the column whose values the database gives new rows (a backend that
 * keeps a sequence for it sets that past the copied rows), or NULL.
 */
typedef enum reg_col_kind {
    REG_COL_INT,
    REG_COL_TEXT,
    REG_COL_BYTES,
} reg_col_kind;
#define REG_ROW_MAX_COLS 24
typedef struct reg_table {
    const char *name;
    const char *cols;
    const char *order;
    const char *identity;
    size_t ncols;
    const reg_col_kind *kinds;
} reg_table;
/* One value of a row: @null, else @i (INT), @s (TEXT) or @b/@len (BYTES),
 * borrowed for the call. */
typedef struct reg_value {
    bool null;
    int64_t i;
    const char *s;
    const unsigned char *b;
    size_t len;
} reg_value;
typedef int (*reg_row_cb)(const reg_value *row, void *arg);

/* ------------------------------------------------------------------ */
/* Several nodes on one registry (PostgreSQL; nodes.c, pg_nodes.c)     */
/* ------------------------------------------------------------------ */

/* reg_shared - whether the registry may be shared by several processes
 * that cache what it holds (PostgreSQL): it then announces its changes
 * (reg_listener) and counts sign-ups itself (reg_signup_take). */
bool reg_shared(reg *r);

/*
 * reg_signup_take - take one sign-up from the token bucket @scope
 * ("ca ID"), which the database holds for every node: @per_sec a second,
 * at most @burst, on the database server's clock.  *@ok false when
 * there was none, and *@wait_s the seconds until the next one (-1 when
 * nothing refills).  One conditional UPDATE decides, so two nodes never
 * both take the last one.  P11CA_E_STATE when !reg_shared(@r).
 */
int reg_signup_take(reg *r, const char *scope, double per_sec, double burst,
                    bool *ok, double *wait_s) REG_WUR;
/* reg_signup_refund - give one back (a sign-up that recorded nothing). */
int reg_signup_refund(reg *r, const char *scope, double burst) REG_WUR;

/* A change announced by the registry (PostgreSQL: NOTIFY p11ca_registry,
 * sent at the commit of the transaction that made it). */
typedef enum reg_change_kind {
    REG_CHANGE_CERT, /* a certificate's status, or the certificate deleted */
    REG_CHANGE_CA,   /* a CA added or changed */
    REG_CHANGE_ALL,  /* listening again: changes may have been missed */
} reg_change_kind;

typedef struct reg_change {
    reg_change_kind kind;
    int64_t ca_id;
    char serial[64];
    bool deleted;
    reg_status status; /* REG_CHANGE_CERT, unless @deleted */
} reg_change;
typedef void (*reg_change_cb)(const reg_change *c, void *arg);

/*
 * The announcements of changes, on a connection of their own that never
 * blocks: reg_listen starts connecting (P11CA_E_STATE when
 * !reg_shared(@r)); the caller waits for reg_listener_fd to be ready for
 * what reg_listener_step asks (REG_WANT_READ, REG_WANT_WRITE) and calls
 * it again.  Once listening, it calls @cb with REG_CHANGE_ALL first, then
 * with each change.  A lost or refused connection is P11CA_E_UNAVAILABLE:
 * free it and listen again later.  The fd may change between steps.
 */
typedef struct reg_listener reg_listener;
#define REG_WANT_READ  1
#define REG_WANT_WRITE 2
int reg_listen(reg *r, reg_listener **out) REG_WUR;
int reg_listener_fd(const reg_listener *l);
int reg_listener_step(reg_listener *l, reg_change_cb cb, void *arg,
                      int *want) REG_WUR;
/* reg_listener_up - whether it listens now (changes are not missed). */
bool reg_listener_up(const reg_listener *l);
void reg_listener_free(reg_listener *l);

/*
 * What a storage backend provides: plain storage, no rules.  The rules
 * (lifecycle, uniqueness of activated client IDs, rate limit, audit chain,
 * ambiguous serials, scheduled revocations) live in lifecycle.c, search.c
 * and audit.c on top of these: SQLite and PostgreSQL (libpq).
 *
 * A certificate is addressed by (@ca_id, @serial), exactly: @ca_id 0 is
 * the certificate whose issuer is unknown (stored without a CA), never
 * "any"; @serial is normalised.  A missing certificate is
 * P11CA_E_NOTFOUND.  Filters come checked (reg_filter_check); the
 * patterns of reg_filter are the backend's to translate, and the order of
 * @f->sort is the backend's to apply, with the recording order last.
 */
struct reg_backend {
    const char *scheme;
    int (*open)(const char *location, unsigned flags, void **db);
    void (*close)(void *db);
    int (*schema_version)(void *db);
    /* Transactions: write=true takes the write lock at once. */
    int (*begin)(void *db, bool write);
    int (*commit)(void *db);
    void (*rollback)(void *db);
    int (*cert_insert)(void *db, const reg_cert *c);
    int (*cert_get)(void *db, int64_t ca_id, const char *serial, reg_cert *out);
    int (*cert_set_status)(void *db, int64_t ca_id, const char *serial,
                           reg_status st, int64_t revoked_at, int reason,
                           int64_t invalidity);
    int (*cert_delete)(void *db, int64_t ca_id, const char *serial);
    int (*cert_set_replaces)(void *db, int64_t ca_id, const char *serial,
                             const char *old);
    /* @at 0 clears the scheduled revocation. */
    int (*cert_set_revoke_after)(void *db, int64_t ca_id, const char *serial,
                                 int64_t at);
    int (*cert_search)(void *db, const reg_filter *f, reg_cert_cb cb,
                       void *arg);
    int (*cert_count)(void *db, const reg_filter *f, size_t *n);
    /* Whether an activated certificate other than (@except_ca_id,
     * @except_serial) (NULL serial: no exception) holds @client_id. */
    int (*client_id_active)(void *db, const char *client_id,
                            int64_t except_ca_id, const char *except_serial,
                            bool *taken);
    int (*history_add)(void *db, int64_t ca_id, const char *serial, int64_t at,
                       reg_status from, reg_status to, const char *actor,
                       const char *reason);
    int (*history_list)(void *db, int64_t ca_id, const char *serial,
                        reg_history_cb cb, void *arg);
    int (*revoked_list)(void *db, int64_t ca_id, int64_t now, reg_revoked_cb cb,
                        void *arg);
    int (*crl_number_next)(void *db, int64_t ca_id, uint64_t *n);
    int (*crl_number_last)(void *db, int64_t ca_id, uint64_t *n);
    /* Insert the CA unless its DER is there; @external only for a new
     * row, except that !@external makes an existing row ours. */
    int (*ca_add)(void *db, const unsigned char *der, size_t len,
                  const char *name, const char *subject, bool external,
                  int64_t *id);
    int (*ca_list)(void *db, reg_ca_cb cb, void *arg);
    /* P11CA_E_NOTFOUND when no CA has @id. */
    int (*ca_set_auto)(void *db, int64_t id, bool on, reg_status st);
    /* Enrollment codes: insert; take (a conditional UPDATE: *@taken
     * false when no unused code with @hash is valid at @now); the serial
     * issued with one; release a taken one that issued nothing. */
    int (*code_insert)(void *db, const char *hash, const reg_code *c,
                       int64_t now, const char *actor, int64_t *id);
    int (*code_take)(void *db, const char *hash, int64_t ca_id, int64_t now,
                     reg_code *out, bool *taken);
    int (*code_issued)(void *db, int64_t id, int64_t ca_id, const char *serial);
    int (*code_release)(void *db, int64_t id);
    /* The code with @hash of @ca_id that gave a certificate (used_by set)
     * and is valid at @now, with the serial in @out->issued; *@found
     * false when there is none. */
    int (*code_given)(void *db, const char *hash, int64_t ca_id, int64_t now,
                      reg_code *out, bool *found);
    int (*audit_append)(void *db, const reg_audit *a);
    int (*audit_last)(void *db, int64_t *seq, char *hash, size_t hashlen);
    int (*audit_list)(void *db, int64_t since_seq, reg_audit_cb cb, void *arg);
    /* Signed heads: @h->id is ignored by head_add. */
    int (*head_add)(void *db, const reg_audit_head *h);
    int (*head_list)(void *db, int64_t ca_id, bool newest_first,
                     reg_audit_head_cb cb, void *arg);
    /* Rows as they are stored (reg_copy): every row of @t in its order,
     * an insert of one with every column given, a count, and the end of
     * a copy into @t (a sequence set past its rows; NULL: nothing to do).
     * In the caller's transaction. */
    int (*rows_walk)(void *db, const reg_table *t, reg_row_cb cb, void *arg);
    int (*row_insert)(void *db, const reg_table *t, const reg_value *row);
    int (*rows_count)(void *db, const reg_table *t, size_t *n);
    int (*rows_done)(void *db, const reg_table *t);
    /* The kind of the last failure (reg_last_fault); NULL: always none. */
    reg_fault (*fault)(void *db);
    /* Several nodes (NULL: a registry of one process, SQLite). */
    int (*signup_take)(void *db, const char *scope, double per_sec,
                       double burst, bool *ok, double *wait_s);
    int (*signup_refund)(void *db, const char *scope, double burst);
    int (*listen)(void *db, reg_listener **out);
};

extern const struct reg_backend reg_backend_sqlite;
extern const struct reg_backend reg_backend_pg;

#endif
