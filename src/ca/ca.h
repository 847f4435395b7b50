/* SPDX-License-Identifier: Apache-2.0 */
/* The certificate authority: its directory and configuration, profiles,
 * CSR policy, issuance, CRLs.  Signs only through OpenSSL EVP with a key
 * loaded by OSSL_STORE (the p11ca provider makes that the token). */
#ifndef P11CA_CA_H
#define P11CA_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/rc.h"
#include "registry/registry.h"

#define CA_WUR __attribute__((warn_unused_result))

/*
 * A CA directory:
 *   DIR/ca.cnf     configuration in OpenSSL's config syntax (NCONF): the key
 *                  URI or file, the certificate, the chain, the registry,
 *                  the PIN source (never a PIN), the key's public-key hash
 *                  recorded at init, CRL/AIA URLs, and the profiles;
 *   DIR/ca.pem     the CA certificate;  DIR/chain.pem  the issuers above it;
 *   DIR/registry.db  the SQLite registry (unless ca.cnf names another);
 *   DIR/ca.csr     for an intermediate waiting for its certificate;
 *   DIR/crl.pem    the last CRL;
 *   DIR/last-crl-number  the number of the last CRL, kept outside the
 *                  registry too: a CRL is refused if the registry's numbers
 *                  are behind it (a registry older than the last CRL).
 * Status codes are P11CA_E_* with the message in p11ca_err_message().
 */
typedef struct ca ca;

/* Limits on what the CA reads. */
#define CA_MAX_CSR       (64 * 1024)   /* one CSR, PEM or DER */
#define CA_MAX_CERT_FILE (1024 * 1024) /* a certificate or chain file */
#define CA_MAX_CNF       (1024 * 1024) /* ca.cnf */

/*
 * ca_open - read DIR/ca.cnf and open the registry.  Does NOT load the key
 * or ask for a PIN (listing and registry commands need neither); the key is
 * loaded and checked by the first operation that signs.  @out gets the CA.
 * The registry must exist and hold this CA's trail: one that is missing or
 * empty is refused (P11CA_E_REGISTRY, saying how to restore it), never made
 * again; only ca_init creates one.
 * Returns 0, P11CA_E_NOTFOUND (no CA in DIR), P11CA_E_INPUT (a bad
 * ca.cnf: the message names the key and the section) or a registry error.
 */
int ca_open(const char *dir, ca **out) CA_WUR;

/*
 * ca_open_readonly - ca_open for commands that only read (list, show,
 * verify, export): the registry is opened read-only (REG_OPEN_READONLY),
 * so a user who may read the CA directory but not write it can use them;
 * nothing is written, not even this CA's registry entry (ca_registry_id
 * is 0 if it is not there).
 */
int ca_open_readonly(const char *dir, ca **out) CA_WUR;
void ca_close(ca *c);

/*
 * ca_set_access - how the key is reached, before the first signature:
 * @module (may be NULL) is the PKCS#11 module for the token checks and the
 * provider; @pin_source (may be NULL) overrides ca.cnf's pin_source.
 * Strings are copied.  Returns 0 or P11CA_E_NOMEM.
 */
int ca_set_access(ca *c, const char *module, const char *pin_source) CA_WUR;

/* ca_set_out_flags - ca_outfile_open @flags for the files the CA writes
 * into its directory (DIR/crl.pem); default 0. */
void ca_set_out_flags(ca *c, unsigned flags);

/* Borrowed accessors. */
reg *ca_registry(ca *c);
int64_t ca_registry_id(ca *c); /* this CA in the registry's cas table */
X509 *ca_cert(ca *c);          /* NULL while an intermediate waits */
const char *ca_dir(ca *c);
/* The issuers above the CA certificate (DIR/chain.pem), maybe empty. */
STACK_OF(X509) * ca_chain(ca *c);

/*
 * ca_actor - "user@host" of the running process, for the audit trail
 * (static buffer; the service passes its own actor instead).
 */
const char *ca_actor(void);

/* ------------------------------------------------------------------ */
/* A service's handles (service.c)                                     */
/* ------------------------------------------------------------------ */

/*
 * A ca handle is used by one thread at a time (its registry connection is
 * the registry's: see reg_open).  A service gives each thread a handle of
 * its own with ca_open_shared: every handle opened from one handle shares
 * its loaded signing key, which several threads may sign with at once
 * (one EVP_PKEY in one library context; the p11ca provider is
 * thread-safe), so the PIN is asked and the token logged in once.
 */

/*
 * ca_load_key - load and check the signing key now (see ca_key_load;
 * the PIN is asked now) rather than at the first signature.  Returns 0,
 * P11CA_E_STATE (no certificate yet), P11CA_E_CAKEY, P11CA_E_TOKEN, ...
 */
int ca_load_key(ca *c) CA_WUR;

/*
 * ca_open_shared - another handle on @c's directory: ca.cnf read again, a
 * registry connection of its own, @c's module, PIN source, actor and
 * wait (ca_set_wait), and @c's signing key (when loaded) shared rather
 * than loaded again.  Refuses
 * (P11CA_E_CAKEY) when ca.cnf or the CA certificate now name another key
 * than the one loaded.  @out gets the handle; ca_close it.
 */
int ca_open_shared(ca *c, ca **out) CA_WUR;

/*
 * ca_open_shared_readonly - ca_open_shared with the registry opened
 * read-only (as ca_open_readonly): for a thread that only reads, such as
 * the service's event loop answering look-ups.  The key is shared all
 * the same, so handles opened from this one (ca_open_shared) can sign.
 */
int ca_open_shared_readonly(ca *c, ca **out) CA_WUR;

/*
 * ca_set_actor - who the audit trail names for what this handle does
 * (issuance, CRLs): "api:..." for a service; NULL: ca_actor().  Copied.
 * ca_get_actor - that actor.  Returns 0 or P11CA_E_NOMEM.
 */
int ca_set_actor(ca *c, const char *actor) CA_WUR;
const char *ca_get_actor(ca *c);

/*
 * ca_libctx - the library context the signing key lives in (its providers:
 * "default", and "p11ca" for keys on a token); NULL before ca_load_key.
 * Borrowed: valid while a handle sharing the key is open.
 */
OSSL_LIB_CTX *ca_libctx(ca *c);

/*
 * ca_load_pkey - another private key at @location (a pkcs11: URI or a key
 * file) through OSSL_STORE in ca_libctx(@c), e.g. the service's TLS key:
 * a key on the CA key's token uses its login; one on another token needs
 * pin-source= in its URI (the CA's PIN is never offered to it).
 * ca_load_cert - a certificate the same way (a pkcs11: URI or a file).
 * Call ca_load_key first.  @out gets the object (caller frees).
 */
int ca_load_pkey(ca *c, const char *location, EVP_PKEY **out) CA_WUR;
int ca_load_cert(ca *c, const char *location, X509 **out) CA_WUR;

/* The [ ca ] section of ca.cnf (borrowed strings; NULL when not set). */
typedef struct ca_settings {
    const char *name;
    const char *key;        /* pkcs11: URI or a key file (absolute) */
    const char *key_sha256; /* hex SHA-256 of the key's SPKI */
    const char *pin_source; /* PIN file, or NULL: prompt */
    long token_wait_ms;     /* p11_config.token_wait_ms (0: default) */
    const char *registry;   /* as written in ca.cnf */
    const char *digest;     /* NULL: chosen by the key */
    bool intermediate;
    unsigned crl_days; /* default 7 */
    const char *crl_url;
    const char *ocsp_url;
    const char *issuers_url;
    unsigned rate_limit; /* the sign-up limit, per second; 0: none; 15 */
    /* A signed audit head is due after this many entries / minutes since
     * the last one (0: never for that reason); see ca_audit_checkpoint. */
    unsigned audit_sign_every;   /* default 100 */
    unsigned audit_sign_minutes; /* default 60 */
} ca_settings;

const ca_settings *ca_get_settings(ca *c);

/*
 * Rate limits.  The sign-up limit (rate_limit in [ ca ], default 15 per
 * second) holds devices and clients signing up: registrations (`p11ca cert
 * register`; p11ca serve's auto-registrations and POST /v1/certs, with
 * a wait of 0).  An operator's own issuance (`p11ca issue`, `issue
 * --batch`, `p11ca enroll`) is limited only by its profile's rate_limit,
 * when ca.cnf sets one.
 * Where a limit applies, recording waits for a free second, up to the
 * CA's wait (default CA_WAIT_DEFAULT seconds), then fails with
 * P11CA_E_RATE naming the limit and how long it waited.
 */
#define CA_WAIT_DEFAULT 5
#define CA_WAIT_MAX     3600

/* ca_set_wait - how long recording waits for a slot (0: refuse at once). */
void ca_set_wait(ca *c, unsigned seconds);

/*
 * ca_signup_limit - the sign-up limit with the CA's wait, for
 * reg_register() through this CA (strings borrowed from @c).
 */
void ca_signup_limit(ca *c, reg_limit *out);

/* ------------------------------------------------------------------ */
/* Registration of certificates issued elsewhere (register.c)          */
/* ------------------------------------------------------------------ */

/* A certificate registered this close to its end deserves a warning. */
#define CA_REGISTER_WARN_DAYS 30

/* Why ca_register_check refused a certificate. */
typedef enum ca_reg_refusal {
    CA_REG_OK = 0,
    CA_REG_IS_CA,     /* a CA certificate: registered as a CA instead */
    CA_REG_EXPIRED,   /* expired, and allow_expired not set */
    CA_REG_NO_ISSUER, /* not issued by a registered CA (or not by want) */
} ca_reg_refusal;

typedef struct ca_reg_check {
    /* In. */
    int64_t want;       /* the registered CA that must have issued it; 0: any */
    bool allow_expired; /* an expired one passes (recorded for the record) */
    /* Out. */
    int64_t ca_id;          /* the registered CA that issued it */
    ca_reg_refusal refusal; /* with P11CA_E_POLICY: which check refused */
    bool expired;           /* it has expired (allow_expired let it pass) */
    bool expires_soon;      /* within CA_REGISTER_WARN_DAYS */
} ca_reg_check;

/*
 * ca_register_check - what p11ca cert register and the service's POST
 * /v1/certs check before they record @x, a certificate issued elsewhere:
 * it is not a CA certificate, it has not expired (unless
 * @chk->allow_expired), and a CA registered in @c's registry issued it
 * (@chk->want, or any), its chain to that CA verified by OpenSSL (the
 * signature, the CA's constraints and key usage; the CA as trust anchor
 * even when it is an intermediate; times left out).  @what names the
 * certificate in messages ("dev.pem", "the certificate").  Fills
 * @chk->ca_id, expired and expires_soon.  Returns 0; P11CA_E_POLICY with
 * @chk->refusal and a message without a remedy, which differs between
 * the callers ("WHAT is a CA certificate (basicConstraints CA:TRUE)",
 * "WHAT expired on DATE: nothing was registered", "WHAT is not issued by
 * a registered CA[: REASON]", "WHAT does not chain to CA N (NAME):
 * REASON"); or a registry error.  Reads the registry only.
 */
int ca_register_check(ca *c, X509 *x, const char *what,
                      ca_reg_check *chk) CA_WUR;

/* ------------------------------------------------------------------ */
/* Profiles (profile.c)                                                */
/* ------------------------------------------------------------------ */

typedef enum ca_san_rule {
    CA_SAN_OPTIONAL = 0,
    CA_SAN_REQUIRED,
    CA_SAN_FORBIDDEN,
} ca_san_rule;

/* One allowed subject key type: RSA bit range, a curve, or EdDSA. */
typedef struct ca_key_rule {
    int base_id;       /* EVP_PKEY_RSA, EVP_PKEY_EC, EVP_PKEY_ED25519, ... */
    unsigned min_bits; /* RSA */
    unsigned max_bits; /* RSA */
    int curve_nid;     /* EC */
} ca_key_rule;

#define CA_MAX_KEY_RULES 16

/* One allowed_ip entry: a network, IPv4 (4 bytes) or IPv6 (16 bytes). */
typedef struct ca_ip_range {
    unsigned char addr[16];
    int len;         /* 4 or 16 */
    unsigned prefix; /* bits of @addr that must match */
} ca_ip_range;

#define CA_MAX_IP_RANGES     64
#define CA_MAX_SUBJECT_ATTRS 32

/*
 * Whether a profile's certificates take a client ID (the registry's key of
 * a client: one activated certificate per client ID).  Default: CN for a
 * profile whose certificates can authenticate clients (ext_key_usage with
 * clientAuth or anyExtendedKeyUsage, or none at all), NONE otherwise (a
 * server renews while its old certificate is still in use).
 */
typedef enum ca_client_id_rule {
    CA_CLIENT_ID_CN = 0,   /* --client-id, else the subject CN */
    CA_CLIENT_ID_NONE,     /* no client ID; --client-id is refused */
    CA_CLIENT_ID_REQUIRED, /* --client-id must be given */
} ca_client_id_rule;

/* The longest grace period of supersede = grace:DURATION (10 years). */
#define CA_SUPERSEDE_GRACE_MAX ((int64_t)3650 * 86400)

/* A profile: one section of ca.cnf named in [ profiles ]. */
typedef struct ca_profile {
    char *name;
    char *section;
    char *description;
    bool is_ca;          /* basic_constraints = ca */
    int pathlen;         /* -1: none */
    char *key_usage;     /* e.g. "digitalSignature" */
    char *key_usage_rsa; /* added for RSA subject keys */
    char *ext_key_usage; /* e.g. "serverAuth" */
    bool ocsp_nocheck;
    ca_san_rule san;
    /* subjectAltName names by type, as written (see ca_policy_san).  A
     * profile that sets any of the four refuses the types it does not set;
     * "*" allows every name of its type. */
    char *allowed_dns;   /* "example.com" and below, ".example.com" below */
    char *allowed_ip;    /* CIDR networks, IPv4 and IPv6 */
    char *allowed_email; /* mailbox, "example.com" or ".example.com" */
    char *allowed_uri;   /* prefixes */
    ca_ip_range ip_ranges[CA_MAX_IP_RANGES]; /* allowed_ip parsed */
    size_t n_ip_ranges;
    /* The subject (see ca_policy_subject); NULL: any, none. */
    char *subject_allowed;  /* attribute names, as written */
    char *subject_required; /* attribute names, as written */
    int subject_allowed_nids[CA_MAX_SUBJECT_ATTRS];
    size_t n_subject_allowed;
    int subject_required_nids[CA_MAX_SUBJECT_ATTRS];
    size_t n_subject_required;
    bool cn_in_san;  /* every CN must be one of the subjectAltName names */
    char *key_types; /* as written */
    ca_key_rule rules[CA_MAX_KEY_RULES];
    size_t n_rules;
    unsigned default_days;
    unsigned max_days;
    bool subject_override;
    char *extensions;    /* an x509v3_config section, or NULL */
    unsigned rate_limit; /* issuances per second; 0: none (default) */
    ca_client_id_rule client_id;
    /* What a renewal does to the certificate it replaces: supersede =
     * revoke (default) | keep | grace:DURATION (e.g. 7d, 12h). */
    reg_supersede_how supersede;
    int64_t supersede_grace; /* seconds, for REG_SUPERSEDE_GRACE */
} ca_profile;

/* The profiles of @c, in ca.cnf order (borrowed). */
size_t ca_profile_count(ca *c);
const ca_profile *ca_profile_at(ca *c, size_t i);
/* ca_profile_find - the profile @name, or NULL. */
const ca_profile *ca_profile_find(ca *c, const char *name);

/* ca_client_id_rule_name - "cn", "none" or "required". */
const char *ca_client_id_rule_name(ca_client_id_rule rule);

/* ------------------------------------------------------------------ */
/* Creating a CA (init.c)                                              */
/* ------------------------------------------------------------------ */

typedef struct ca_init_opts {
    const char *dir;              /* created (0700) unless it exists */
    const char *subject;          /* "/CN=Example Root/O=Example" */
    const char *key_uri;          /* a pkcs11: URI (the token key) */
    const char *key_file;         /* or a key file */
    const char *generate;         /* "ec:P-384", "rsa:3072", "ed25519" */
    unsigned days;                /* 0: 3650 */
    int pathlen;                  /* -1: none */
    const char *name_constraints; /* "permitted;DNS:.example.com,..." */
    bool intermediate;            /* write DIR/ca.csr, no certificate */
    const char *pin_source;       /* recorded in ca.cnf */
    const char *registry;         /* NULL: registry.db in DIR */
    const char *module;           /* PKCS#11 module (may be NULL) */
    const char *name;             /* NULL: the subject's CN */
} ca_init_opts;

/*
 * ca_init - make a CA in @o->dir: a key (generated on the token when
 * @o->generate and @o->key_uri are given, in a new key file with
 * @o->generate and @o->key_file, else the existing key), checked like every
 * signing key; a self-signed certificate (DIR/ca.pem) or, with
 * @o->intermediate, a CSR (DIR/ca.csr); the registry with this CA and an
 * audit entry; DIR/ca.cnf last.  Refuses a directory that holds a CA
 * (P11CA_E_EXISTS).  Returns 0 or an error; nothing is left in DIR that
 * would make it look like a CA when it fails.
 */
int ca_init(const ca_init_opts *o) CA_WUR;

/*
 * ca_import_chain - install the certificate of an intermediate waiting in
 * @dir: @cert_pem holds its certificate (and maybe the issuers after it),
 * @chain_pem (may be NULL) the issuers up to a self-signed root.  The
 * certificate must carry the key recorded at init, be a CA certificate
 * with keyCertSign, and verify against the chain.  Writes DIR/chain.pem
 * and DIR/ca.pem, registers the CA and audits.  P11CA_E_EXISTS when the
 * CA has its certificate already.
 */
int ca_import_chain(const char *dir, const char *cert_pem,
                    const char *chain_pem) CA_WUR;

/* ------------------------------------------------------------------ */
/* Issuing (csr.c, issue.c)                                            */
/* ------------------------------------------------------------------ */

typedef struct ca_issue_opts {
    const char *profile;
    const char *san;       /* "DNS:a,IP:1.2.3.4,email:x@y,URI:u"; NULL: CSR's */
    unsigned days;         /* 0: the profile's default_days */
    const char *client_id; /* NULL: the CN */
    const char *subject;   /* "/CN=..": replaces the CSR's if allowed */
    bool not_activated;    /* status not-activated instead of activated */
    const char *replaces;  /* recorded as the serial it renews, or NULL */
} ca_issue_opts;

/* A request on its way to a certificate. */
typedef struct ca_req ca_req;

/*
 * ca_req_new - parse @buf (one CSR, PEM or DER, at most CA_MAX_CSR bytes;
 * @what names it in messages) and check it against the profile and @o: the
 * CSR's signature, the key type and size, the names, the validity.  Needs
 * no key and no PIN.  Rejections are P11CA_E_INPUT (not a CSR, bad
 * signature, bad SAN syntax) or P11CA_E_POLICY (what the profile forbids),
 * with a message that says why.  @out gets the request.
 */
int ca_req_new(ca *c, const unsigned char *buf, size_t len, const char *what,
               const ca_issue_opts *o, ca_req **out) CA_WUR;

/*
 * ca_req_precheck - what ca_req_new would refuse about a request before
 * there is a CSR (an enrollment checks before it makes a key on a card):
 * an unknown profile, a @subject (NULL: not checked; no subjectAltName
 * assumed) that the profile's policy refuses, the client ID @o->client_id
 * against the profile's client_id rule, the validity @o->days.  Same codes
 * and messages as ca_req_new.
 */
int ca_req_precheck(ca *c, const ca_issue_opts *o,
                    const X509_NAME *subject) CA_WUR;

/*
 * ca_check_signing - load and check the CA key now, as the first signature
 * would (the PIN, the key's hash and attributes): P11CA_E_STATE (no
 * certificate yet), P11CA_E_PIN, P11CA_E_TOKEN or P11CA_E_CAKEY when the
 * CA could not sign.  The key stays loaded for the signatures.
 */
int ca_check_signing(ca *c) CA_WUR;

/*
 * ca_req_sign - build the certificate (a fresh random serial) and sign it
 * with the CA key, loading and checking the key on first use (P11CA_E_CAKEY
 * when it is not the CA's key).  Nothing is recorded yet.
 */
int ca_req_sign(ca *c, ca_req *r) CA_WUR;

/*
 * ca_req_record - record the signed certificate in the registry (durably,
 * under its profile's rate limit, if any) BEFORE the caller may hand it
 * out; a serial that exists already gets a new serial and a new signature.
 * Returns 0, P11CA_E_RATE (after the CA's wait), P11CA_E_EXISTS (the
 * client ID is held by an activated certificate) or a registry error.
 */
int ca_req_record(ca *c, ca_req *r) CA_WUR;

/*
 * ca_req_record_batch - record @n signed requests (all of one profile:
 * P11CA_E_INTERNAL otherwise) in transactions of at
 * most @group (group commit; under a profile's rate limit at most that
 * limit, and each transaction waits for a second with room for it, like
 * ca_req_record).  A request that cannot be recorded (client ID
 * taken) is left unrecorded with its status and message in it (see
 * ca_req_status); serial collisions are re-signed.  Returns 0 when the
 * database worked (even if some requests were refused), else the error.
 */
int ca_req_record_batch(ca *c, ca_req **reqs, size_t n, size_t group) CA_WUR;

/* After signing: the certificate (borrowed), its serial (lower-case hex). */
X509 *ca_req_cert(const ca_req *r);
const char *ca_req_serial(const ca_req *r);
const char *ca_req_name(const ca_req *r); /* @what given to ca_req_new */
const char *ca_req_client_id(const ca_req *r);
/* ca_req_status - 0 once recorded, else the error that stopped it. */
int ca_req_status(const ca_req *r, const char **msg);
void ca_req_free(ca_req *r);

/*
 * ca_output_pem - @leaf as PEM, with @chain the CA certificate and its
 * issuers after it, into @out.  ca_output_p7b - a PKCS#7 certs-only
 * (DER) of the leaf, the CA certificate and its issuers.  Both return 0 or
 * P11CA_E_INTERNAL.
 */
int ca_output_pem(ca *c, X509 *leaf, bool chain, BIO *out) CA_WUR;
int ca_output_p7b(ca *c, X509 *leaf, BIO *out) CA_WUR;

/* How a batch runs (0 in a field: its default). */
typedef struct ca_batch_opts {
    size_t group;     /* certificates per registry transaction (64) */
    unsigned signers; /* signing threads, a token session each (RSA CA
                         key: one per CPU, at most 8; others: 1) */
    unsigned workers; /* threads reading and checking CSRs (one per CPU) */
} ca_batch_opts;

/*
 * ca_issue_batch - issue every CSR of @source: a directory (each regular,
 * non-hidden file, in name order) or "-" (PEM CSRs one after another on
 * standard input).  The CA key is loaded first.  Worker threads read,
 * check and build the requests, signer threads sign them, and this thread
 * records them in groups of @bo->group (at most the profile's rate_limit
 * when it has one) in one transaction each, and only then writes them to
 * @outdir/<serial>.pem; a bounded ring of requests keeps the memory
 * constant, whatever the length of the source.  @fn (may be NULL) hears
 * of every CSR, in the order of @source, from this thread: @serial and
 * @msg (the file written) when issued, else @rc and @msg (why not).  A
 * rejected CSR does not stop the batch; *@rejected counts them.  Returns
 * 0, or the error that stopped the batch (CA key, registry, output); what
 * was recorded before it is written and reported.
 */
typedef void (*ca_batch_fn)(const char *name, const char *serial, int rc,
                            const char *msg, void *arg);
int ca_issue_batch(ca *c, const char *source, const char *outdir,
                   const ca_issue_opts *o, const ca_batch_opts *bo,
                   ca_batch_fn fn, void *arg, size_t *issued,
                   size_t *rejected) CA_WUR;

/* ------------------------------------------------------------------ */
/* CRL (crl.c)                                                         */
/* ------------------------------------------------------------------ */

/*
 * ca_crl_make - a v2 CRL of every revoked, unexpired certificate of the CA
 * with the next CRL number, valid for @days (0: crl_days of ca.cnf), signed
 * with the CA key; also written to DIR/crl.pem, and audited.  CRL numbers
 * never go back: DIR/last-crl-number records the last one, and a registry
 * whose last number is below it is refused (P11CA_E_REGISTRY: it is older
 * than the last CRL and may lack revocations).  @out gets the
 * CRL, @number (may be NULL) its number, @entries (may be NULL) its size.
 * @progress (may be NULL) is called every 10,000 entries.  The audit
 * trail's head is signed after the CRL; when that fails the CRL stands
 * and ca_warning says so (not an error).
 */
typedef void (*ca_progress_fn)(size_t done, void *arg);
int ca_crl_make(ca *c, unsigned days, ca_progress_fn progress, void *arg,
                X509_CRL **out, uint64_t *number, size_t *entries) CA_WUR;

/*
 * ca_warning - what the last ca_crl_make on @c did not do although it
 * succeeded (the audit trail's head could not be signed after the CRL),
 * for the caller to show; NULL when nothing.  Borrowed: valid until the
 * next ca_crl_make or ca_close.
 */
const char *ca_warning(ca *c);

/* ------------------------------------------------------------------ */
/* The signed head of the audit trail (audit.c)                        */
/* ------------------------------------------------------------------ */

/*
 * The registry chains its audit entries with SHA-256; anyone who can write
 * the database can still rewrite the chain or cut its tail.  The CA key
 * signs the chain's head: a DER SignedAuditHead (shaped like a
 * certificate: the signed AuditHead, the algorithm, the signature) over
 * the newest entry's sequence number and hash, the time, and the CA
 * certificate's SHA-256 and subject.  Heads are stored in the registry;
 * a witness keeps copies (ca_audit_head_export).
 */
typedef struct ca_audit_head_info {
    int64_t seq;   /* the newest entry it covers; 0: none */
    char hash[65]; /* that entry's hash */
    int64_t at;    /* when it was signed */
} ca_audit_head_info;

/*
 * ca_audit_checkpoint - sign the head when it is due: with @force (every
 * CRL; p11ca audit sign), when this CA has no head yet, or when
 * audit_sign_every entries or audit_sign_minutes have passed since its
 * last head; never when no entry was added since.  Loads the CA key if
 * this process has not (asking for the PIN).  Commands that sign call it
 * at their end, where the key is loaded anyway.  @info (may be NULL) gets
 * the head signed (seq 0: none was due).  Does nothing for a CA without
 * its certificate.  Returns 0 or an error (the key, the registry).
 */
int ca_audit_checkpoint(ca *c, bool force, ca_audit_head_info *info) CA_WUR;

/* What ca_audit_verify found. */
typedef struct ca_audit_report {
    size_t entries;     /* entries in the chain, all verified */
    size_t certs;       /* certificates, each at its audited status */
    size_t heads;       /* heads of this CA, each verified */
    size_t other_heads; /* heads of other CAs sharing the registry */
    int64_t head_seq;   /* the newest head's entry; 0: none */
    int64_t head_at;    /* when it was signed */
    size_t after_head;  /* entries after it (covered by the chain only) */
} ca_audit_report;

/*
 * ca_audit_verify - the chain (reg_audit_verify); every signed head of this
 * CA: its signature with the CA certificate, in order, its entry present
 * with the hash it signs (a deleted tail or a rewritten trail fails);
 * at least one head when the CA has its certificate; and every
 * certificate's status against its audited history
 * (reg_audit_verify_status).  Needs no key.  Returns 0 or P11CA_E_STATE
 * saying what is wrong; @rep is filled as far as it got.
 */
int ca_audit_verify(ca *c, ca_audit_report *rep) CA_WUR;

/*
 * ca_audit_head_export - write the newest signed head of this CA (DER,
 * verified first) to @out; @info gets what it says.  P11CA_E_NOTFOUND
 * when the CA has signed none.
 */
int ca_audit_head_export(ca *c, BIO *out, ca_audit_head_info *info) CA_WUR;

/* ------------------------------------------------------------------ */
/* Files (io.c)                                                        */
/* ------------------------------------------------------------------ */

/*
 * ca_file_read - read @path ("-": standard input) into a malloc'd,
 * NUL-terminated buffer; refuses more than @max bytes (P11CA_E_INPUT).
 */
int ca_file_read(const char *path, size_t max, unsigned char **out,
                 size_t *len) CA_WUR;

/*
 * ca_cnf_load - read the ca.cnf at @path into @conf as every command reads
 * it: at most CA_MAX_CNF bytes, no .include or .pragma includedir (no
 * other file is read), the text wiped after.
 */
int ca_cnf_load(CONF *conf, const char *path) CA_WUR;

/*
 * An output file: the one way every command writes a file it was given.
 * ca_outfile_open looks at @path before anything is signed or recorded:
 *  - nothing there, or a regular file: a hidden temporary file is made
 *    next to it now and renamed over @path at ca_outfile_commit, after an
 *    fsync (only a regular file is ever replaced);
 *  - a character device or a FIFO (/dev/null, a named pipe): opened now
 *    (a FIFO waits for its reader here) and written through at commit,
 *    never replaced;
 *  - a symbolic link: refused (P11CA_E_INPUT) unless @flags has
 *    CA_OUT_FOLLOW_SYMLINKS, which applies the rules above to its target;
 *  - a directory, a block device, a socket: refused (P11CA_E_INPUT).
 * Until commit nothing reaches @path; ca_outfile_free without commit
 * removes the temporary file.  P11CA_E_IO when the place is not writable.
 */
#define CA_OUT_FOLLOW_SYMLINKS 0x1u
typedef struct ca_outfile ca_outfile;
int ca_outfile_open(const char *path, int mode, unsigned flags,
                    ca_outfile **out) CA_WUR;
BIO *ca_outfile_bio(ca_outfile *f);
/* ca_outfile_set_sync - false: no fsync at commit (default true). */
void ca_outfile_set_sync(ca_outfile *f, bool sync);
int ca_outfile_commit(ca_outfile *f) CA_WUR;
/*
 * ca_outfile_commit in its steps, for many files made durable together
 * (issue --batch): ca_outfile_stage writes the data (to the temporary
 * file, or through); ca_outfile_sync fsyncs it (unless set off: then the
 * caller syncs the file system, syncfs(2), before placing) and closes it;
 * ca_outfile_place renames the temporary file over @path;
 * ca_outfile_dir_sync then makes the renames of the directory holding
 * @path durable, once for all of them.  Each file is staged, synced and
 * placed in that order, so that a file is never in place before its data
 * is on disk.
 */
int ca_outfile_stage(ca_outfile *f) CA_WUR;
int ca_outfile_sync(ca_outfile *f) CA_WUR;
int ca_outfile_place(ca_outfile *f) CA_WUR;
int ca_outfile_dir_sync(const char *path) CA_WUR;
void ca_outfile_free(ca_outfile *f);

#endif
