/* SPDX-License-Identifier: Apache-2.0 */
/* What the CA's own files share: the CA handle, the key, extensions,
 * ca.cnf text, and small OpenSSL helpers. */
#ifndef P11CA_CA_INTERNAL_H
#define P11CA_CA_INTERNAL_H

#include <pthread.h>

#include <openssl/conf.h>
#include <openssl/ocsp.h>
#include <openssl/ui.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"

#define CA_CNF                   "ca.cnf"
#define CA_CERT                  "ca.pem"
#define CA_CHAIN                 "chain.pem"
#define CA_CSR                   "ca.csr"
#define CA_CRL                   "crl.pem"
#define CA_CRL_NUMBER            "last-crl-number"
#define CA_REGISTRY_DEFAULT      "registry.db"
#define CA_RATE_DEFAULT          15
#define CA_CRL_DAYS_DEFAULT      7
#define CA_AUDIT_EVERY_DEFAULT   100
#define CA_AUDIT_MINUTES_DEFAULT 60

/* ------------------------------------------------------------------ */
/* The CA key (keys.c)                                                 */
/* ------------------------------------------------------------------ */

/*
 * The CA's signing key: its own OSSL_LIB_CTX with the "p11ca" (for
 * pkcs11: URIs) and "default" providers, the EVP_PKEY loaded through
 * OSSL_STORE, a PKCS#11 context for the token checks, and the PIN, asked
 * once (pin source or terminal) and kept in the secure heap.
 */
typedef struct ca_key ca_key;

/* A library context of its own with OpenSSL's "default" provider, plus
 * "p11ca" for keys on a token: where the CA and enrollment sign. */
typedef struct ca_evp {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *deflt;
    OSSL_PROVIDER *p11ca;
} ca_evp;

/*
 * What the CA hands the p11ca provider it loads, as the provider's section
 * of openssl.cnf would (p11ca-provider(7)); unset values leave the
 * provider's defaults (and environment fallbacks) in place.
 */
typedef struct ca_prov_conf {
    const char *module; /* p11ca-module-path; NULL: the provider's default */
    long token_wait_ms; /* p11ca-token-wait (p11_config.token_wait_ms); 0:
                           the provider's default */
    /* p11ca-cache-pin = yes: the process keeps the PIN anyway (the CA key's,
     * asked once; the card's during an enrollment), so the provider may
     * log in again with it after a card reset. */
    bool cache_pin;
    /* p11ca-single-session = yes: one session per token (PIV cards), as
     * the CLI's --single-session; passed here, never through the
     * environment. */
    bool single_session;
} ca_prov_conf;

/*
 * ca_evp_setup - make @e (again: what is there stays); with @token the
 * p11ca provider too, configured with @token through an openssl.cnf made
 * in memory for @e's library context (no environment variable is set:
 * OpenSSL 3.0 has no other way to hand parameters to a provider a program
 * loads, and setenv is not safe in a threaded process).
 */
int ca_evp_setup(ca_evp *e, const ca_prov_conf *token) CA_WUR;
void ca_evp_clear(ca_evp *e);

/* ca_store_load_pkey - the first private key OSSL_STORE finds at
 * @location (a pkcs11: URI or a key file), asking @ui for the PIN or
 * passphrase; NULL with OpenSSL's errors queued. */
EVP_PKEY *ca_store_load_pkey(OSSL_LIB_CTX *libctx, const char *location,
                             const UI_METHOD *ui, void *ui_data);

/* ca_sign_digest - @digest if given, else the digest matching @pk's
 * strength (SHA-384 for P-384, SHA-512 for P-521, SHA-256 otherwise);
 * NULL for EdDSA, which takes none. */
const char *ca_sign_digest(EVP_PKEY *pk, const char *digest);

/* ca_key_new - an empty key handle.  Strings are copied. */
int ca_key_new(const char *module, const char *pin_source, ca_key **out) CA_WUR;
/* ca_key_up_ref - one more owner of @k (thread-safe); returns @k.
 * ca_key_free drops one, and frees the key with the last. */
ca_key *ca_key_up_ref(ca_key *k);
void ca_key_free(ca_key *k);

/*
 * ca_key_load_other - another private key (the service's TLS key) at
 * @location, through OSSL_STORE in @k's library context (the provider
 * added when @location is a pkcs11: URI).  No PIN is offered: a key on
 * the CA key's token uses its login, a key on another token needs
 * pin-source= in its URI.  ca_key_load_cert - the same for a certificate.
 * @out gets the object (caller frees).  P11CA_E_TOKEN or P11CA_E_INPUT.
 */
int ca_key_load_other(ca_key *k, const char *location, EVP_PKEY **out) CA_WUR;
int ca_key_load_cert(ca_key *k, const char *location, X509 **out) CA_WUR;

/*
 * ca_key_set_token_wait - how long to wait for the key's token when it is
 * away (p11_config.token_wait_ms: 0 default, P11_TOKEN_WAIT_NONE).  Takes
 * effect for the next token access.
 */
void ca_key_set_token_wait(ca_key *k, long ms);

/*
 * ca_key_generate - make a key of @spec ("ec:P-384"): on the token that
 * @where (a pkcs11: URI with object= and maybe id=) names, or in the new
 * key file @where (mode 0600, refused if it exists).  *@location gets what
 * ca.cnf records: the private key's URI, or the file's absolute path.
 */
int ca_key_generate(ca_key *k, const char *where, const char *spec,
                    char **location) CA_WUR;

/*
 * ca_location_shown - @location (a key's pkcs11: URI or file path) as
 * ca.cnf, the audit trail and the output record it: a URI without its PIN
 * attributes (pin-value=, pin-source=: the one formatting of p11_uri_format),
 * anything else, and a URI without them, as given.  *@shown is malloc'd;
 * *@pin_source (@pin_source may be NULL) gets the URI's pin-source= or NULL.
 * Returns 0, P11CA_E_INPUT (a URI that does not parse) or P11CA_E_NOMEM.
 */
int ca_location_shown(const char *location, char **shown,
                      char **pin_source) CA_WUR;

/*
 * ca_key_discard_generated - undo ca_key_generate after a later step
 * failed: destroy the private and public key objects it made (or remove
 * its key file).  @what gets a description of what was removed ("" when
 * nothing was generated).  P11CA_E_TOKEN / P11CA_E_IO when it cannot.
 */
int ca_key_discard_generated(ca_key *k, char *what, size_t len) CA_WUR;

/* ca_key_keep_generated - the generated key is the CA's now: forget it. */
void ca_key_keep_generated(ca_key *k);

/*
 * ca_key_load - check and load the key at @location: on a token, the key
 * must be CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE (else
 * P11CA_E_CAKEY); then OSSL_STORE loads it.  @want_sha256 (may be NULL at
 * init) must equal the SHA-256 of the loaded public key (else
 * P11CA_E_CAKEY).
 */
int ca_key_load(ca_key *k, const char *location,
                const char *want_sha256) CA_WUR;

EVP_PKEY *ca_key_pkey(ca_key *k);
OSSL_LIB_CTX *ca_key_libctx(ca_key *k);
/* Hex SHA-256 of the loaded key's SubjectPublicKeyInfo. */
const char *ca_key_sha256(ca_key *k);

/* ca_pubkey_sha256 - hex SHA-256 of @pk's SPKI into @hex (65 bytes). */
int ca_pubkey_sha256(EVP_PKEY *pk, char hex[65]) CA_WUR;

/*
 * ca_key_sign_cert / _req / _crl - sign through EVP_DigestSignInit_ex with
 * @digest (NULL: by key: SHA-256, SHA-384 for P-384 and RSA >= 4096,
 * SHA-512 for P-521, none for EdDSA).
 */
int ca_key_sign_cert(ca_key *k, const char *digest, X509 *x) CA_WUR;
int ca_key_sign_req(ca_key *k, const char *digest, X509_REQ *r) CA_WUR;
int ca_key_sign_crl(ca_key *k, const char *digest, X509_CRL *crl) CA_WUR;

/*
 * ca_key_sign_asn1 - sign the DER of @tbs, of ASN.1 type @it, as X.509
 * signs a certificate (ASN1_item_sign_ctx): @alg gets the algorithm, @sig
 * the signature.  @what names it in the error.
 */
/*
 * ca_key_sign_ocsp - sign the OCSP response @br with OCSP_basic_sign_ctx
 * as @signer (the certificate of @k's key) with @flags (OCSP_NOCERTS,
 * OCSP_RESPID_KEY, OCSP_NOTIME) and @certs (may be NULL) included.
 * P11CA_E_TOKEN when the signature fails.
 */
int ca_key_sign_ocsp(ca_key *k, const char *digest, OCSP_BASICRESP *br,
                     X509 *signer, STACK_OF(X509) * certs,
                     unsigned long flags) CA_WUR;
/*
 * ca_key_sign_ocsp_ctx - ca_key_sign_ocsp with a context kept by the
 * caller for the next signature with @k and @digest: *@mctx NULL makes
 * one, else it is initialised again (the provider keeps its key and
 * digest: cheaper than a new one).  After a failure *@mctx is freed and
 * NULL.
 */
int ca_key_sign_ocsp_ctx(ca_key *k, const char *digest, EVP_MD_CTX **mctx,
                         OCSP_BASICRESP *br, X509 *signer,
                         STACK_OF(X509) * certs, unsigned long flags) CA_WUR;

int ca_key_sign_asn1(ca_key *k, const char *digest, const ASN1_ITEM *it,
                     void *tbs, X509_ALGOR *alg, ASN1_BIT_STRING *sig,
                     const char *what) CA_WUR;

/*
 * A signing context of the CA key for one thread: the certificates of a
 * batch are signed by several at once.  Each signature starts a new
 * EVP_DigestSignInit on the context's EVP_MD_CTX (OpenSSL 3.2 and later
 * refuse a second EVP_DigestSign without one).
 */
typedef struct ca_signer ca_signer;

/* ca_signer_new - a signer for @k (loaded) with @digest (see
 * ca_key_sign_cert).  P11CA_E_INTERNAL when the key cannot sign. */
int ca_signer_new(ca_key *k, const char *digest, ca_signer **out) CA_WUR;
void ca_signer_free(ca_signer *s);

/* ca_signer_algid - the DER AlgorithmIdentifier of its signatures, as
 * X509_sign_ctx would put it in a certificate (borrowed). */
const unsigned char *ca_signer_algid(const ca_signer *s, size_t *len);

/*
 * ca_signer_sign - sign @len bytes of @tbs; *@sig gets the signature
 * (borrowed: valid until the next call), *@siglen its length.  Returns 0
 * or P11CA_E_TOKEN with OpenSSL's (the provider's) reason.
 */
int ca_signer_sign(ca_signer *s, const unsigned char *tbs, size_t len,
                   const unsigned char **sig, size_t *siglen) CA_WUR;

/* ------------------------------------------------------------------ */
/* CSRs read without OpenSSL's decoder (csr_parse.c)                   */
/* ------------------------------------------------------------------ */

#define CA_CSR_MDS    3 /* SHA-256, SHA-384, SHA-512 */
#define CA_CSR_CURVES 3 /* P-256, P-384, P-521 */

/*
 * What reading and issuing fetch once per CA rather than per request:
 * digests, and for each common curve a key holding only its domain
 * parameters, which a CSR's EC key is a copy of.  Read-only once made:
 * shared by every thread.
 */
typedef struct ca_csr_cache {
    EVP_MD *md[CA_CSR_MDS];
    EVP_MD *sha1; /* the subject key identifier (RFC 5280, method 1) */
    EVP_PKEY *ec[CA_CSR_CURVES];
} ca_csr_cache;

/* ca_csr_cache_new - fetch and make the above (in the default library
 * context, where CSRs are read).  P11CA_E_INTERNAL when OpenSSL cannot. */
int ca_csr_cache_new(ca_csr_cache **out) CA_WUR;
void ca_csr_cache_free(ca_csr_cache *cc);

/* ca_csr_cache_get - @c's cache, made at the first call (thread-safe);
 * NULL with the error set. */
const ca_csr_cache *ca_csr_cache_get(ca *c);

/* A decoded CSR: its DER fields, the public key still as bits. */
typedef struct ca_csr ca_csr;

/*
 * ca_csr_parse - exactly one CSR of @buf (PEM or DER, at most CA_MAX_CSR
 * bytes; for DER nothing may follow it, for PEM no second request), read
 * with an ASN.1 template that leaves the key as bits.  @what names it in
 * messages.  P11CA_E_INPUT when it is not one request.
 */
int ca_csr_parse(const unsigned char *buf, size_t len, const char *what,
                 ca_csr **out) CA_WUR;
void ca_csr_free(ca_csr *csr);

/* ca_csr_take_subject - the subject, handed over (the CSR keeps none). */
X509_NAME *ca_csr_take_subject(ca_csr *csr);

/*
 * ca_csr_key - the CSR's public key (caller frees), made from its bits: a
 * copy of @cc's key for P-256, P-384 and P-521 with the point set (checked
 * to be on the curve), EVP_PKEY_fromdata for rsaEncryption, a raw key for
 * Ed25519 and Ed448; any other key through OpenSSL's decoders, as
 * d2i_X509_REQ would.  @cc may be NULL (no copies).  NULL when the key
 * cannot be read (OpenSSL's error queued).
 */
EVP_PKEY *ca_csr_key(const ca_csr_cache *cc, const ca_csr *csr);

/*
 * ca_csr_verify - whether the CSR's signature verifies with @pk over the
 * request's own DER: ECDSA and RSA with SHA-2 digests of @cc (may be
 * NULL) and EVP_PKEY_verify, the others as X509_REQ_verify does.
 */
bool ca_csr_verify(const ca_csr_cache *cc, const ca_csr *csr, EVP_PKEY *pk);

/* ca_csr_extensions - the extensions the CSR asks for, as
 * X509_REQ_get_extensions (an empty stack when none; NULL when damaged). */
STACK_OF(X509_EXTENSION) * ca_csr_extensions(const ca_csr *csr);

/* ca_csr_spki_der - the DER SubjectPublicKeyInfo (malloc'd with
 * OPENSSL_malloc, in *@der), as a certificate carries it; its length, or
 * <= 0.  ca_csr_key_bits - the key's bits (borrowed). */
int ca_csr_spki_der(const ca_csr *csr, unsigned char **der);
const ASN1_BIT_STRING *ca_csr_key_bits(const ca_csr *csr);

/* ca_csr_copy_key - the CSR's key into @to as it is, field by field (no
 * EVP_PKEY is made).  1, or 0 without memory. */
int ca_csr_copy_key(const ca_csr *csr, X509_PUBKEY *to);

/* ------------------------------------------------------------------ */
/* A request on its way to a certificate (csr.c, issue.c, cert_tmpl.c) */
/* ------------------------------------------------------------------ */

#define CA_REQ_PENDING 1 /* ca_req.status before it is recorded */

/* A serial: 20 random bytes, as lower-case hex without leading zeros. */
#define CA_SERIAL_BYTES 20

struct ca_req {
    char *what;                /* names the CSR in messages */
    const ca_profile *profile; /* borrowed from the CA */
    ca_csr *csr;
    EVP_PKEY *pub; /* the CSR's key */
    X509_NAME *subject;
    GENERAL_NAMES *san; /* NULL: none */
    unsigned days;
    char *client_id; /* NULL: the CN */
    bool not_activated;
    char *replaces; /* the serial it renews, or NULL */
    /* After ca_req_build: the TBSCertificate's DER and what the registry
     * is told about it. */
    unsigned char *tbs;
    size_t tbs_len;
    unsigned char *spki; /* its SubjectPublicKeyInfo */
    size_t spki_len;
    const char *issuer_text; /* borrowed from the profile's template */
    char serial[2 * CA_SERIAL_BYTES + 1];
    int64_t not_before, not_after;
    /* After ca_req_sign_tbs: the certificate's DER; after ca_req_sign
     * also decoded (ca_req_cert). */
    unsigned char *der;
    size_t der_len;
    X509 *cert;
    reg_cert rec; /* what the registry records */
    int status;   /* CA_REQ_PENDING, 0 recorded, or error */
    char *msg;    /* why it was refused */
};

/*
 * ca_req_build - the TBSCertificate of the checked request @r into r->tbs:
 * a fresh random serial, the validity from now, the subject and key, and
 * the extensions: the profile's own (basicConstraints, keyUsage,
 * extendedKeyUsage, OCSP no-check, AKI, CRL and AIA URLs) from a template
 * of DER made once per profile, the subjectAltName and the SKI of this
 * key, the profile's extensions section evaluated for this request.  Loads
 * the CA key at the first call (the template holds its signature
 * algorithm).  Thread-safe.  P11CA_E_INPUT for what the profile's
 * extensions cannot make, else an error of the key or memory.
 */
int ca_req_build(ca *c, ca_req *r) CA_WUR;

/*
 * ca_req_sign_tbs - sign r->tbs with @s and make the certificate (r->der)
 * and its record for the registry of @c (r->rec).  P11CA_E_TOKEN when the
 * signature fails.
 */
int ca_req_sign_tbs(ca *c, ca_req *r, ca_signer *s) CA_WUR;

/* ca_tmpls_free - the templates of @c (at ca_close). */
void ca_tmpls_free(ca *c);

/* ca_san_parse - "DNS:a,IP:1.2.3.4,email:x@y,URI:u" into @out, checked. */
int ca_san_parse(const char *spec, GENERAL_NAMES **out) CA_WUR;

/* ------------------------------------------------------------------ */
/* A profile's name policy (policy.c)                                  */
/* ------------------------------------------------------------------ */

/*
 * ca_policy_load - check and parse @p's allowed_ip, allowed_email,
 * allowed_uri, subject_allowed and subject_required (read already) into
 * @p.  P11CA_E_INPUT naming the section, the key and the bad item.
 */
int ca_policy_load(ca_profile *p) CA_WUR;

/*
 * ca_policy_san - whether @p allows the (well-formed) name @gn.  With none
 * of allowed_dns, allowed_ip, allowed_email and allowed_uri every name is
 * allowed; with any of them a name must match the key of its type, and a
 * type without its key is refused.  P11CA_E_POLICY names the name, the
 * profile and the rule; @what names the request.
 */
int ca_policy_san(const ca_profile *p, const GENERAL_NAME *gn,
                  const char *what) CA_WUR;

/*
 * ca_policy_subject - @subject against @p: every attribute in
 * subject_allowed (when set), every attribute of subject_required present,
 * and with cn_in_san every CN equal to one of @san's names (DNS ignoring
 * case, IP by address, email and URI exactly).  P11CA_E_POLICY naming the
 * rule and the value.
 */
int ca_policy_subject(const ca_profile *p, const X509_NAME *subject,
                      const GENERAL_NAMES *san, const char *what) CA_WUR;

/*
 * ca_audit_sign_head - sign the head of @r's trail (its newest entry) with
 * @k for the CA certificate @cacert (@ca_id in the registry) and store it;
 * @info (may be NULL) gets what was signed.  For ca_init, which has no CA
 * handle yet; others use ca_audit_checkpoint.
 */
int ca_audit_sign_head(reg *r, ca_key *k, const char *digest, X509 *cacert,
                       int64_t ca_id, ca_audit_head_info *info) CA_WUR;

/* ------------------------------------------------------------------ */
/* The CA handle (config.c)                                            */
/* ------------------------------------------------------------------ */

struct ca {
    char *dir;
    CONF *conf;
    ca_settings s;      /* strings owned (freed at close) */
    char *registry_loc; /* resolved location */
    ca_profile *profiles;
    size_t n_profiles;
    reg *reg;
    int64_t reg_id;
    X509 *cert;
    STACK_OF(X509) * chain;
    char *module;
    char *pin_source; /* override of s.pin_source */
    ca_key *key;      /* loaded by the first signature; maybe shared */
    char *actor;      /* ca_set_actor; NULL: ca_actor() */
    unsigned wait;    /* seconds recording waits for a slot (ca_set_wait) */
    /* Made at first use, by whichever thread comes first, under @lock. */
    pthread_mutex_t lock;
    ca_csr_cache *csr_cache;
    struct ca_tmpl **tmpls; /* per profile, RSA subject key or not */
    unsigned char *algid;   /* the CA key's AlgorithmIdentifier */
    size_t algid_len;
    unsigned out_flags; /* ca_outfile_open flags for DIR/crl.pem */
    char *warning;      /* ca_warning */
};

/* ca_alloc - an empty CA handle (its lock made); NULL without memory. */
ca *ca_alloc(void);

/*
 * ca_profile_limit - the rate limit of profile @p with the CA's wait in
 * @out (per_sec 0 when the profile has none); @what (@len bytes) holds
 * its name for messages.
 */
void ca_profile_limit(ca *c, const ca_profile *p, reg_limit *out, char *what,
                      size_t len);

/* ca_signing_key - load and check the key on first use (see ca_key_load). */
int ca_signing_key(ca *c, ca_key **out) CA_WUR;

/*
 * ca_registry_resolve - the registry location @loc of ca.cnf with a
 * relative file ("registry.db", "sqlite:registry.db") made relative to @dir
 * (malloc'd).
 */
char *ca_registry_resolve(const char *dir, const char *loc);

/* ca_registry_self - set c->reg_id: this CA's certificate in the registry,
 * found or added. */
int ca_registry_self(ca *c) CA_WUR;

/*
 * ca_conf_parse - the @len bytes of @text (ca.cnf; @name for messages) into
 * c->conf.  A ca.cnf that would make OpenSSL read other files (.include,
 * .pragma includedir) or that holds a NUL byte is refused before NCONF sees
 * it: P11CA_E_INPUT naming the line.  P11CA_E_INPUT too for what NCONF
 * refuses.  The caller keeps @text.
 */
int ca_conf_parse(ca *c, const char *name, const unsigned char *text,
                  size_t len) CA_WUR;

/* ca_path - DIR/@name, or @name when absolute (malloc'd; NULL: no memory). */
char *ca_path(const char *dir, const char *name);

/* ca_conf_get - a value of ca.cnf, or NULL (no error left queued). */
const char *ca_conf_get(CONF *conf, const char *section, const char *name);

/* ca_conf_uint - a number of ca.cnf: @dflt when absent; P11CA_E_INPUT. */
int ca_conf_uint(CONF *conf, const char *section, const char *name,
                 unsigned dflt, unsigned max, unsigned *out) CA_WUR;

/*
 * ca_duration_parse - "7d", "12h", "90m", "3600s", "2w" (a unit is
 * required) into *@secs: at least a second, at most @max seconds.
 * Returns 0, or -1 (nothing set) for anything else.
 */
int ca_duration_parse(const char *s, int64_t max, int64_t *secs);

/* ca_conf_bool - yes/no/true/false/1/0; P11CA_E_INPUT otherwise. */
int ca_conf_bool(CONF *conf, const char *section, const char *name, bool dflt,
                 bool *out) CA_WUR;

/* ------------------------------------------------------------------ */
/* ca.cnf text (profile.c, config.c)                                   */
/* ------------------------------------------------------------------ */

/* ca_profiles_load - parse [ profiles ] and every profile section. */
int ca_profiles_load(ca *c) CA_WUR;
void ca_profiles_free(ca *c);

/* ca_profiles_default_text - the default profiles, as ca.cnf text. */
void ca_profiles_write_default(BIO *out);

/* ca_cnf_escape_write - "key = value" with NCONF's special characters
 * escaped. */
void ca_cnf_write_kv(BIO *out, const char *key, const char *value);

/* ca_cnf_write_header - the comment block that documents ca.cnf. */
void ca_cnf_write_header(BIO *out);

/*
 * ca_key_rule_match - whether @pk is allowed by @p's key_types; else
 * P11CA_E_POLICY with a message naming the key and the allowed types.
 */
int ca_profile_check_key(const ca_profile *p, EVP_PKEY *pk) CA_WUR;

/* ca_key_describe - "RSA 2048", "EC P-256", "ED25519" into @buf. */
const char *ca_key_describe(EVP_PKEY *pk, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Extensions and names (ext.c)                                        */
/* ------------------------------------------------------------------ */

/* ca_ext_add - add extension @nid with openssl config text @value. */
int ca_ext_add(X509V3_CTX *ctx, X509 *x, int nid, const char *value) CA_WUR;

/* ca_ext_add_ski_aki - SKI (hash of the key) and AKI (keyid of @issuer). */
int ca_ext_add_ski_aki(X509V3_CTX *ctx, X509 *x) CA_WUR;

/* ca_ext_add_urls - CRL distribution point and AIA from ca.cnf. */
int ca_ext_add_urls(ca *c, X509V3_CTX *ctx, X509 *x) CA_WUR;

/*
 * ca_name_parse - "/CN=a/O=b" (with \/ escapes) into a new X509_NAME
 * (UTF-8 strings); P11CA_E_INPUT with the reason.
 */
int ca_name_parse(const char *str, X509_NAME **out) CA_WUR;

/*
 * ca_serial_random - a serial of 20 random bytes with the top bit clear
 * (and a non-zero first byte, so it always has 20 octets).
 */
int ca_serial_random(X509 *x) CA_WUR;

/* ca_name_cn - the first CN of @n as a malloc'd string, or NULL. */
char *ca_name_cn(const X509_NAME *n);

/*
 * ca_name_constraints - openssl's nameConstraints text from "permitted;
 * DNS:.a.com,DNS:.b.com,excluded;IP:..." (a prefix carries over to the
 * items after it); malloc'd, or NULL with P11CA_E_INPUT set.
 */
char *ca_name_constraints(const char *spec);

/* ------------------------------------------------------------------ */
/* Small helpers (io.c)                                                */
/* ------------------------------------------------------------------ */

/* ca_ossl_err - append OpenSSL's last error text to @fmt; returns @rc. */
int ca_ossl_err(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ca_write_file - write @len bytes through a ca_outfile (atomically for a
 * regular file: tmp + fsync + rename). */
int ca_write_file(const char *path, const void *data, size_t len,
                  int mode) CA_WUR;

/* ca_write_bio_file - the contents of memory BIO @b, as ca_write_file,
 * with ca_outfile_open's @flags. */
int ca_write_bio_file(const char *path, BIO *b, int mode,
                      unsigned flags) CA_WUR;

/* ca_exists - whether @path exists. */
bool ca_exists(const char *path);

/* ca_serial_hex - lower-case hex of @i without leading zeros (malloc'd). */
char *ca_serial_hex(const ASN1_INTEGER *i);

/* ca_read_certs - every certificate of the PEM file @path (at least one). */
int ca_read_certs(const char *path, STACK_OF(X509) * *out) CA_WUR;

#endif
