/* SPDX-License-Identifier: Apache-2.0 */
/* A CA directory: ca.cnf (NCONF) read into the CA handle, the registry and
 * the certificates opened, the key loaded on first use; ca.cnf's format. */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"
#include "p11/p11.h"

static int settings_load(ca *c);
static int settings_urls(ca *c);
static int dup_value(ca *c, const char *name, bool path, const char **out);
static int certs_load(ca *c);
static bool directive(const char *line, size_t len);
static int conf_check(const char *name, const unsigned char *text, size_t len);

char *ca_path(const char *dir, const char *name)
{
    char *p;

    if (name[0] == '/')
        return strdup(name);
    p = malloc(strlen(dir) + strlen(name) + 2);
    if (p)
        sprintf(p, "%s/%s", dir, name);
    return p;
}

const char *ca_conf_get(CONF *conf, const char *section, const char *name)
{
    const char *v;

    ERR_set_mark();
    v = NCONF_get_string(conf, section, name);
    ERR_pop_to_mark();
    return v && *v ? v : NULL;
}

int ca_conf_uint(CONF *conf, const char *section, const char *name,
                 unsigned dflt, unsigned max, unsigned *out)
{
    const char *v = ca_conf_get(conf, section, name);
    char *end = NULL;
    unsigned long n;

    *out = dflt;
    if (!v)
        return P11CA_OK;
    n = strtoul(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || n > max)
        return p11ca_err_set(P11CA_E_INPUT,
                             "ca.cnf [ %s ] %s = %s: not a number from 0 to %u",
                             section, name, v, max);
    *out = (unsigned)n;
    return P11CA_OK;
}

int ca_conf_bool(CONF *conf, const char *section, const char *name, bool dflt,
                 bool *out)
{
    static const char *const yes[] = {"yes", "true", "1", "on"};
    static const char *const no[] = {"no", "false", "0", "off"};
    const char *v = ca_conf_get(conf, section, name);

    *out = dflt;
    if (!v)
        return P11CA_OK;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return P11CA_OK;
        }
    }
    return p11ca_err_set(P11CA_E_INPUT, "ca.cnf [ %s ] %s = %s: say yes or no",
                         section, name, v);
}

/* A string of [ ca ], copied; @path: made absolute against the CA dir. */
static int dup_value(ca *c, const char *name, bool path, const char **out)
{
    const char *v = ca_conf_get(c->conf, "ca", name);
    char *copy;

    *out = NULL;
    if (!v)
        return P11CA_OK;
    copy =
        path && strncmp(v, "pkcs11:", 7) != 0 ? ca_path(c->dir, v) : strdup(v);
    if (!copy)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    *out = copy;
    return P11CA_OK;
}

static int settings_urls(ca *c)
{
    int rc = dup_value(c, "crl_url", false, &c->s.crl_url);

    if (rc == P11CA_OK)
        rc = dup_value(c, "ocsp_url", false, &c->s.ocsp_url);
    if (rc == P11CA_OK)
        rc = dup_value(c, "issuers_url", false, &c->s.issuers_url);
    if (rc == P11CA_OK)
        rc = dup_value(c, "digest", false, &c->s.digest);
    if (rc == P11CA_OK && c->s.digest && !EVP_get_digestbyname(c->s.digest))
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "ca.cnf [ ca ] digest = %s: unknown digest",
                           c->s.digest);
    return rc;
}

/* token_wait: seconds to wait for the key's token when it is away. */
static int settings_token_wait(ca *c)
{
    const char *v = ca_conf_get(c->conf, "ca", "token_wait");

    c->s.token_wait_ms = 0;
    if (v && p11_token_wait_parse(v, &c->s.token_wait_ms) != CKR_OK)
        return p11ca_err_set(P11CA_E_INPUT, "ca.cnf [ ca ] token_wait = %s: %s",
                             v, p11_error_message());
    return P11CA_OK;
}

static int settings_load(ca *c)
{
    const char *type = ca_conf_get(c->conf, "ca", "type");
    int rc = dup_value(c, "key", true, &c->s.key);

    if (rc == P11CA_OK)
        rc = dup_value(c, "key_sha256", false, &c->s.key_sha256);
    if (rc == P11CA_OK
        && (!c->s.key || !c->s.key_sha256 || strlen(c->s.key_sha256) != 64))
        return p11ca_err_set(
            P11CA_E_INPUT,
            "%s/ca.cnf: [ ca ] needs key and key_sha256 (64 hex digits)",
            c->dir);
    if (rc == P11CA_OK)
        rc = dup_value(c, "name", false, &c->s.name);
    if (rc == P11CA_OK)
        rc = dup_value(c, "pin_source", true, &c->s.pin_source);
    if (rc == P11CA_OK)
        rc = settings_token_wait(c);
    if (rc == P11CA_OK)
        rc = dup_value(c, "registry", false, &c->s.registry);
    if (rc == P11CA_OK)
        rc = settings_urls(c);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, "ca", "crl_days", CA_CRL_DAYS_DEFAULT, 3650,
                          &c->s.crl_days);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, "ca", "rate_limit", CA_RATE_DEFAULT, 1000000,
                          &c->s.rate_limit);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, "ca", "audit_sign_every",
                          CA_AUDIT_EVERY_DEFAULT, 1000000,
                          &c->s.audit_sign_every);
    if (rc == P11CA_OK)
        rc = ca_conf_uint(c->conf, "ca", "audit_sign_minutes",
                          CA_AUDIT_MINUTES_DEFAULT, 525600,
                          &c->s.audit_sign_minutes);
    if (rc == P11CA_OK && type && strcmp(type, "root") != 0
        && strcmp(type, "intermediate") != 0)
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "ca.cnf [ ca ] type = %s: say root or intermediate",
                           type);
    c->s.intermediate = type && strcmp(type, "intermediate") == 0;
    return rc;
}

/* "registry.db" and "sqlite:registry.db" are relative to the CA dir. */
char *ca_registry_resolve(const char *dir, const char *loc)
{
    const char *colon = strchr(loc, ':'), *slash = strchr(loc, '/');
    char *p, *r;

    if (strncmp(loc, "sqlite:", 7) == 0) {
        p = ca_path(dir, loc + 7);
        r = p ? malloc(strlen(p) + 8) : NULL;
        if (r)
            sprintf(r, "sqlite:%s", p);
        free(p);
        return r;
    }
    if (colon && (!slash || colon < slash))
        return strdup(loc);
    return ca_path(dir, loc);
}

static int certs_load(ca *c)
{
    const char *name = ca_conf_get(c->conf, "ca", "certificate");
    char *cert = ca_path(c->dir, name ? name : CA_CERT);
    char *chain = NULL;
    STACK_OF(X509) *sk = NULL;
    int rc = cert ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    if (rc == P11CA_OK && ca_exists(cert)) {
        rc = ca_read_certs(cert, &sk);
        if (rc == P11CA_OK)
            c->cert = X509_dup(sk_X509_value(sk, 0));
        if (rc == P11CA_OK && !c->cert)
            rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    name = ca_conf_get(c->conf, "ca", "chain");
    if (rc == P11CA_OK)
        chain = ca_path(c->dir, name ? name : CA_CHAIN);
    if (rc == P11CA_OK && chain && ca_exists(chain))
        rc = ca_read_certs(chain, &c->chain);
    if (rc == P11CA_OK && !c->chain && !(c->chain = sk_X509_new_null()))
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    sk_X509_pop_free(sk, X509_free);
    free(cert);
    free(chain);
    return rc;
}

struct find_ca {
    unsigned char *der;
    int len;
    int64_t id;
};

static int find_ca_cb(const reg_ca *rc, void *arg)
{
    struct find_ca *f = arg;

    if (rc->der_len == (size_t)f->len
        && memcmp(rc->der, f->der, rc->der_len) == 0) {
        f->id = rc->id;
        return 1;
    }
    return 0;
}

/* This CA's id in the registry, if it is there (0 if not). */
static int registry_find_self(ca *c)
{
    struct find_ca f = {NULL, 0, 0};
    int rc;

    c->reg_id = 0;
    if (!c->cert)
        return P11CA_OK;
    f.len = i2d_X509(c->cert, &f.der);
    if (f.len <= 0)
        return ca_ossl_err(P11CA_E_INTERNAL,
                           "cannot encode the CA certificate");
    rc = reg_ca_list(c->reg, find_ca_cb, &f);
    if (rc > 0)
        rc = P11CA_OK;
    c->reg_id = f.id;
    OPENSSL_free(f.der);
    return rc;
}

/* This CA's id in the registry: found, or added on first use. */
int ca_registry_self(ca *c)
{
    unsigned char *der = NULL;
    int rc = registry_find_self(c), n;

    if (rc != P11CA_OK || !c->cert || c->reg_id != 0)
        return rc;
    n = i2d_X509(c->cert, &der);
    rc = n > 0 ? reg_ca_add(c->reg, der, (size_t)n, c->s.name, &c->reg_id)
               : ca_ossl_err(P11CA_E_INTERNAL,
                             "cannot encode the CA certificate");
    OPENSSL_free(der);
    return rc;
}

/*
 * ca.cnf exists, so this CA was initialised and its registry holds every
 * certificate it issued and revoked: a registry that is missing or empty
 * is refused, never started again (a new one would forget revocations,
 * restart CRL numbers and the audit trail).
 */
static int registry_open(ca *c, bool readonly)
{
    int rc =
        reg_open_ex(c->registry_loc, readonly ? REG_OPEN_READONLY : 0, &c->reg);

    if (rc == P11CA_E_NOTFOUND && reg_location_is_pg(c->registry_loc))
        rc = p11ca_err_set(
            P11CA_E_REGISTRY,
            "%s; the CA in %s was initialised (ca.cnf), so p11ca will not start a new registry: that would forget its certificates and revocations. Restore the registry from your backup (pg_restore of the pg_dump backup, see docs/registry-postgresql.md) or correct the registry location in ca.cnf",
            p11ca_err_message(), c->dir);
    else if (rc == P11CA_E_NOTFOUND)
        rc = p11ca_err_set(
            P11CA_E_REGISTRY,
            "%s; the CA in %s was initialised (ca.cnf), so p11ca will not start a new registry: that would forget its certificates and revocations. Restore the registry from your backup (e.g. cp BACKUP.db %s, the backup made with sqlite3 \".backup\")",
            p11ca_err_message(), c->dir, c->registry_loc);
    return rc;
}

/*
 * Whether the logical line @line (@len bytes, NUL-terminated) is a
 * directive that reads other files: .include, or .pragma includedir.
 * OpenSSL takes a directive where a name starts, after blanks and an
 * optional "section::"; the part before the first '=' holding ".include"
 * or ".pragma" is taken for one, which refuses more than OpenSSL would
 * run, never less.
 */
static bool directive(const char *line, size_t len)
{
    size_t name = 0, i = 0;

    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i < len && line[i] == '#')
        return false;
    while (name < len && line[name] != '=')
        name++;
    if (memmem(line, name, ".include", 8))
        return true;
    return memmem(line, name, ".pragma", 7) && strcasestr(line, "includedir");
}

/* The logical line @line of @name that starts at line @start. */
static int directive_check(const char *name, long start, const char *line,
                           size_t len)
{
    if (!directive(line, len))
        return P11CA_OK;
    return p11ca_err_set(
        P11CA_E_INPUT,
        "%s line %ld: .include and .pragma includedir are not allowed in ca.cnf: p11ca reads no other file (write the settings into ca.cnf)",
        name, start);
}

/*
 * ca.cnf reads no other file: p11ca touches no file it does not own, and
 * ".include /dev/zero" would never end.  The lines are joined as NCONF
 * joins them (a line that ends in one backslash goes on in the next); a
 * CR also starts a line here, as it may for NCONF at the end of one of
 * its read buffers.
 */
static int conf_check(const char *name, const unsigned char *text, size_t len)
{
    char *buf = malloc(len + 1);
    size_t i = 0, n = 0, seg;
    long line = 1, start = 1;
    int rc = P11CA_OK;

    if (!buf)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (memchr(text, '\0', len))
        rc = p11ca_err_set(P11CA_E_INPUT,
                           "%s holds a NUL byte: it is not a text file", name);
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        i = 3; /* a UTF-8 byte order mark, which NCONF skips */
    while (rc == P11CA_OK && i < len) {
        for (seg = i; seg < len && text[seg] != '\n' && text[seg] != '\r';)
            seg++;
        memcpy(buf + n, text + i, seg - i);
        n += seg - i;
        if (seg < len && text[seg] == '\n')
            line++;
        i = seg + (seg < len);
        if (n > 0 && buf[n - 1] == '\\' && (n == 1 || buf[n - 2] != '\\')) {
            n--;
            continue;
        }
        buf[n] = '\0';
        rc = directive_check(name, start, buf, n);
        n = 0;
        start = line;
    }
    /* The last line may end in a backslash: NCONF still reads it. */
    buf[n] = '\0';
    if (rc == P11CA_OK)
        rc = directive_check(name, start, buf, n);
    free(buf);
    return rc;
}

/* @text (@len bytes of @name), checked, into @conf. */
static int conf_parse(CONF *conf, const char *name, const unsigned char *text,
                      size_t len)
{
    BIO *b = NULL;
    long eline = 0;
    int rc = conf_check(name, text, len);

    if (rc != P11CA_OK)
        return rc;
    if (len > INT_MAX || !(b = BIO_new_mem_buf(text, (int)len)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (NCONF_load_bio(conf, b, &eline) <= 0)
        rc = ca_ossl_err(P11CA_E_INPUT, "%s: cannot read it (line %ld)", name,
                         eline);
    BIO_free(b);
    return rc;
}

int ca_conf_parse(ca *c, const char *name, const unsigned char *text,
                  size_t len)
{
    return conf_parse(c->conf, name, text, len);
}

int ca_cnf_load(CONF *conf, const char *path)
{
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = ca_file_read(path, CA_MAX_CNF, &text, &len);

    if (rc == P11CA_OK)
        rc = conf_parse(conf, path, text, len);
    /* ca.cnf may hold the registry's password. */
    if (text)
        OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

ca *ca_alloc(void)
{
    ca *c = calloc(1, sizeof(*c));

    if (c && pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

static int open_dir(const char *dir, bool readonly, ca **out)
{
    ca *c = ca_alloc();
    char *cnf = NULL;
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = P11CA_E_NOMEM;

    *out = NULL;
    if (!c || !(c->dir = strdup(dir)) || !(cnf = ca_path(dir, CA_CNF))
        || !(c->conf = NCONF_new_ex(NULL, NULL))) {
        rc = p11ca_err_set(rc, "out of memory");
        goto out;
    }
    c->wait = CA_WAIT_DEFAULT;
    if (!ca_exists(cnf)) {
        rc = p11ca_err_set(
            P11CA_E_NOTFOUND,
            "no CA in %s (no ca.cnf; make one with p11ca ca init)", dir);
        goto out;
    }
    if ((rc = ca_file_read(cnf, CA_MAX_CNF, &text, &len))
        || (rc = ca_conf_parse(c, cnf, text, len)))
        goto out;
    rc = settings_load(c);
    if (rc == P11CA_OK)
        rc = ca_profiles_load(c);
    if (rc == P11CA_OK) {
        c->registry_loc = ca_registry_resolve(
            dir, c->s.registry ? c->s.registry : CA_REGISTRY_DEFAULT);
        rc = c->registry_loc ? registry_open(c, readonly)
                             : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    if (rc == P11CA_OK)
        rc = certs_load(c);
    if (rc == P11CA_OK)
        rc = readonly ? registry_find_self(c) : ca_registry_self(c);
    if (rc == P11CA_OK) {
        *out = c;
        c = NULL;
    }
out:
    /* ca.cnf may hold the registry's password. */
    if (text)
        OPENSSL_cleanse(text, len);
    free(text);
    free(cnf);
    ca_close(c);
    return rc;
}

int ca_open(const char *dir, ca **out)
{
    return open_dir(dir, false, out);
}

int ca_open_readonly(const char *dir, ca **out)
{
    return open_dir(dir, true, out);
}

const char *ca_warning(ca *c)
{
    return c->warning;
}

void ca_close(ca *c)
{
    if (!c)
        return;
    ca_tmpls_free(c);
    ca_csr_cache_free(c->csr_cache);
    OPENSSL_free(c->algid);
    pthread_mutex_destroy(&c->lock);
    ca_key_free(c->key);
    reg_close(c->reg);
    ca_profiles_free(c);
    X509_free(c->cert);
    sk_X509_pop_free(c->chain, X509_free);
    NCONF_free(c->conf);
    free((char *)c->s.name);
    free((char *)c->s.key);
    free((char *)c->s.key_sha256);
    free((char *)c->s.pin_source);
    /* The registry location may hold a password. */
    if (c->s.registry)
        OPENSSL_cleanse((char *)c->s.registry, strlen(c->s.registry));
    free((char *)c->s.registry);
    free((char *)c->s.digest);
    free((char *)c->s.crl_url);
    free((char *)c->s.ocsp_url);
    free((char *)c->s.issuers_url);
    if (c->registry_loc)
        OPENSSL_cleanse(c->registry_loc, strlen(c->registry_loc));
    free(c->registry_loc);
    free(c->module);
    free(c->pin_source);
    free(c->actor);
    free(c->warning);
    free(c->dir);
    free(c);
}

int ca_set_access(ca *c, const char *module, const char *pin_source)
{
    free(c->module);
    free(c->pin_source);
    c->module = module ? strdup(module) : NULL;
    c->pin_source = pin_source ? strdup(pin_source) : NULL;
    if ((module && !c->module) || (pin_source && !c->pin_source))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

void ca_set_out_flags(ca *c, unsigned flags)
{
    c->out_flags = flags;
}

int ca_check_signing(ca *c)
{
    ca_key *k = NULL;

    return ca_signing_key(c, &k);
}

int ca_signing_key(ca *c, ca_key **out)
{
    char hex[65];
    int rc;

    *out = c->key;
    if (c->key)
        return P11CA_OK;
    if (!c->cert)
        return p11ca_err_set(
            P11CA_E_STATE,
            "the CA in %s has no certificate yet: have %s/ca.csr signed, then run p11ca ca import-chain",
            c->dir, c->dir);
    rc = ca_key_new(c->module, c->pin_source ? c->pin_source : c->s.pin_source,
                    &c->key);
    if (rc == P11CA_OK) {
        ca_key_set_token_wait(c->key, c->s.token_wait_ms);
        rc = ca_key_load(c->key, c->s.key, c->s.key_sha256);
    }
    if (rc == P11CA_OK)
        rc = ca_pubkey_sha256(X509_get0_pubkey(c->cert), hex);
    if (rc == P11CA_OK && strcmp(hex, c->s.key_sha256) != 0)
        rc = p11ca_err_set(
            P11CA_E_CAKEY,
            "the CA certificate in %s does not carry the CA key (its public key has SHA-256 %s); refusing to sign",
            c->dir, hex);
    if (rc != P11CA_OK) {
        ca_key_free(c->key);
        c->key = NULL;
    }
    *out = c->key;
    return rc;
}

reg *ca_registry(ca *c)
{
    return c->reg;
}

int64_t ca_registry_id(ca *c)
{
    return c->reg_id;
}

X509 *ca_cert(ca *c)
{
    return c->cert;
}

STACK_OF(X509) * ca_chain(ca *c)
{
    return c->chain;
}

const char *ca_dir(ca *c)
{
    return c->dir;
}

const ca_settings *ca_get_settings(ca *c)
{
    return &c->s;
}

void ca_set_wait(ca *c, unsigned seconds)
{
    c->wait = seconds < CA_WAIT_MAX ? seconds : CA_WAIT_MAX;
}

void ca_signup_limit(ca *c, reg_limit *out)
{
    *out = (reg_limit){
        .per_sec = c->s.rate_limit,
        .wait = c->wait,
        .what = "the sign-up limit (rate_limit in [ ca ] of ca.cnf)",
    };
}

void ca_profile_limit(ca *c, const ca_profile *p, reg_limit *out, char *what,
                      size_t len)
{
    snprintf(what, len,
             "the limit of profile \"%s\" (rate_limit in [ %s ] of ca.cnf)",
             p->name, p->section);
    *out = (reg_limit){
        .per_sec = p->rate_limit,
        .wait = c->wait,
        .profile = p->name,
        .what = what,
    };
}

const char *ca_actor(void)
{
    static char buf[320];
    struct passwd *pw = getpwuid(geteuid());
    char host[256] = "localhost";

    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    if (pw && pw->pw_name)
        snprintf(buf, sizeof(buf), "%s@%s", pw->pw_name, host);
    else
        snprintf(buf, sizeof(buf), "uid%u@%s", (unsigned)geteuid(), host);
    return buf;
}

void ca_cnf_write_kv(BIO *out, const char *key, const char *value)
{
    BIO_printf(out, "%-16s = ", key);
    for (const char *p = value; *p; p++) {
        if (strchr("\\$#\"'", *p))
            BIO_write(out, "\\", 1);
        BIO_write(out, p, 1);
    }
    BIO_write(out, "\n", 1);
}

static const char cnf_header[] =
    "# p11ca certificate authority, written by `p11ca ca init`.\n"
    "# OpenSSL config syntax (NCONF), as in openssl.cnf and `openssl ca`\n"
    "# configurations: [ section ], key = value, # comments; write \\$ "
    "\\# \\\\\n"
    "# for those characters.  Relative paths are relative to this "
    "directory.\n"
    "#\n"
    "# [ ca ]  the CA itself\n"
    "#   name          a label for listings and the registry\n"
    "#   type          root | intermediate\n"
    "#   key           the CA private key: a pkcs11: URI (the key stays "
    "on the\n"
    "#                 token) or a key file.  Never a PIN here.\n"
    "#   key_sha256    SHA-256 of the key's SubjectPublicKeyInfo, recorded "
    "at\n"
    "#                 init.  The CA refuses to sign when the key it loads "
    "has\n"
    "#                 another hash, and, on a token, unless the key is\n"
    "#                 CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE.\n"
    "#   pin_source    a file (mode 0600) with the token PIN or the key "
    "file's\n"
    "#                 passphrase; without it the PIN is asked on the "
    "terminal\n"
    "#   token_wait    seconds to wait for the key's token when it is away "
    "for a\n"
    "#                 moment (a reader that blinks; SoftHSM2 while another "
    "process\n"
    "#                 logs in), default 5 (or $P11CA_TOKEN_WAIT); 0: do not "
    "wait\n"
    "#   certificate   the CA certificate (default ca.pem)\n"
    "#   chain         the issuers above it, up to the root (default "
    "chain.pem)\n"
    "#   registry      the certificate registry: a SQLite file, "
    "sqlite:PATH,\n"
    "#                 or PostgreSQL: postgresql://USER@HOST/DB, "
    "postgresql:KEYWORD=VALUE\n"
    "#                 ... (libpq keywords), postgresql:service=NAME; "
    "keep its password\n"
    "#                 in ~/.pgpass or the service file, not here\n"
    "#   digest        sha256 | sha384 | sha512 (default: by key size; "
    "none\n"
    "#                 for Ed25519)\n"
    "#   crl_days      how long a CRL is valid (nextUpdate), default 7\n"
    "#   crl_url       CRL distribution point in issued certificates\n"
    "#   ocsp_url      OCSP responder (authorityInfoAccess OCSP)\n"
    "#   issuers_url   where the CA certificate is published "
    "(authorityInfoAccess\n"
    "#                 caIssuers)\n"
    "#   rate_limit    the sign-up limit: most registrations (p11ca cert\n"
    "#                 register; the service's enrollments and\n"
    "#                 auto-registrations) per second, 0 = no limit\n"
    "#                 (default 15).  An operator's own issuance is not\n"
    "#                 held by it; see rate_limit of a profile.\n"
    "#   audit_sign_every   the CA key signs the audit trail's head at\n"
    "#                 init, with every CRL, and at the end of a command that\n"
    "#                 signs (issue, enroll) once this many entries (default\n"
    "#                 100) or audit_sign_minutes (default 60) have passed\n"
    "#                 since the last head; 0 turns a trigger off.  p11ca\n"
    "#                 audit sign signs one now (from cron, say).\n"
    "#\n"
    "# [ ocsp ]  the OCSP responder (p11ca ocsp respond, p11ca serve), all\n"
    "#   optional; p11ca(1) and docs/ocsp.md say more\n"
    "#   next_update    nextUpdate - thisUpdate of responses (default 1d)\n"
    "#   refresh_before cached responses are signed again this long before\n"
    "#                  their nextUpdate (default half of next_update)\n"
    "#   not_activated  good (default) | hold: a not-activated certificate\n"
    "#                  is revoked with reason certificateHold\n"
    "#   ignore_nonce   yes: nonces are ignored, answers come from the cache\n"
    "#   cache_entries  signed responses the service keeps (default 100000)\n"
    "#   signer_key, signer_cert  the delegated signer (p11ca ocsp signer\n"
    "#                  init); without them the CA key signs\n"
    "#   digest         of the responses' signatures (default: as [ ca ])\n"
    "#\n"
    "# [ profiles ]  NAME = SECTION, one line per profile; `p11ca issue\n"
    "#   --profile NAME` applies SECTION.  Keys of a profile section:\n"
    "#   description       free text\n"
    "#   basic_constraints leaf (CA:FALSE, default) | ca (CA:TRUE, "
    "critical)\n"
    "#   pathlen           the path length constraint of a ca profile\n"
    "#   key_usage         keyUsage bits (critical), e.g. "
    "digitalSignature\n"
    "#   key_usage_rsa     bits added when the subject key is RSA, e.g.\n"
    "#                     keyEncipherment\n"
    "#   ext_key_usage     extendedKeyUsage: serverAuth, clientAuth,\n"
    "#                     OCSPSigning, codeSigning, emailProtection, an "
    "OID\n"
    "#   ocsp_nocheck      yes: add id-pkix-ocsp-nocheck (and no CRL or AIA\n"
    "#                     URLs: an OCSP signer is not checked)\n"
    "#   san               required | optional | forbidden "
    "(subjectAltName)\n"
    "#   allowed_dns       DNS names allowed in the SAN, comma-separated:\n"
    "#                     \"example.com\" allows it and its subdomains,\n"
    "#                     \".example.com\" only subdomains\n"
    "#   allowed_ip        IP addresses allowed in the SAN: networks\n"
    "#                     (10.0.0.0/8, 2001:db8::/32) or addresses\n"
    "#   allowed_email     e-mail addresses allowed in the SAN: a mailbox\n"
    "#                     (a@example.com), a host (example.com: mailboxes\n"
    "#                     there, not below) or .example.com (mailboxes\n"
    "#                     at hosts below it), as in RFC 5280\n"
    "#   allowed_uri       URIs allowed in the SAN: prefixes, compared\n"
    "#                     byte for byte (end one with / to pin the host)\n"
    "#                     A profile without any allowed_* key issues\n"
    "#                     every well-formed DNS, IP, email and URI name;\n"
    "#                     one with any of them refuses the types it does\n"
    "#                     not name.  \"*\" allows every name of a type.\n"
    "#   subject_allowed   subject attributes allowed, e.g. CN, O, OU, C\n"
    "#                     (absent: any)\n"
    "#   subject_required  subject attributes required, e.g. CN\n"
    "#   cn_in_san         yes: every CN of the subject must be one of\n"
    "#                     the SAN names (DNS in any case, IP by address,\n"
    "#                     email and URI exactly)\n"
    "#                     allowed_*, subject_* and cn_in_san apply to\n"
    "#                     the CSR's names and subject and to those given\n"
    "#                     with --san and --subject alike\n"
    "#   key_types         subject keys allowed: rsa:2048+ (at least), "
    "rsa:3072\n"
    "#                     (exactly), ec:P-256, ec:P-384, ec:P-521, "
    "ed25519,\n"
    "#                     ed448\n"
    "#   default_days      validity when --days is not given\n"
    "#   max_days          the longest validity allowed\n"
    "#   subject_override  yes: --subject may replace the CSR's subject\n"
    "#   extensions        the name of an openssl x509v3_config section "
    "applied\n"
    "#                     last, as with `openssl ca -extensions` (e.g.\n"
    "#                     certificatePolicies)\n"
    "#   rate_limit        most certificates issued under this profile per\n"
    "#                     second (p11ca issue, issue --batch, enroll);\n"
    "#                     absent or 0: no limit.  A command waits for a\n"
    "#                     free second (--wait, default 5 s), then fails.\n"
    "#   client_id         cn: the client ID is --client-id, else the CN\n"
    "#                     (one activated certificate per client ID);\n"
    "#                     none: no client ID (servers); required:\n"
    "#                     --client-id must be given.  Default: cn when\n"
    "#                     ext_key_usage allows clientAuth (or is absent),\n"
    "#                     else none\n"
    "#   supersede         what a renewal (p11ca enroll --renew/--rekey)\n"
    "#                     does to the old certificate: revoke (default:\n"
    "#                     reason superseded), keep (not-activated, still\n"
    "#                     valid), grace:DURATION (revoked by the first\n"
    "#                     registry write after e.g. grace:7d, such as the\n"
    "#                     next p11ca crl)\n"
    "# Extensions a CSR asks for are never copied, except its\n"
    "# subjectAltName when --san is not given; a CSR asking for CA:TRUE "
    "is\n"
    "# refused by leaf profiles.  SKI and AKI are always set; the CRL\n"
    "# distribution point and AIA come from [ ca ] (not for ocsp_nocheck\n"
    "# profiles: a responder's certificate is not checked).\n"
    "#\n"
    "# A profile of your own, for example:\n"
    "#   [ profiles ]     ...   web = profile_web\n"
    "#   [ profile_web ]\n"
    "#   ext_key_usage   = serverAuth\n"
    "#   key_usage       = digitalSignature\n"
    "#   san             = required\n"
    "#   allowed_dns     = example.com, .example.net\n"
    "#   allowed_ip      = 192.0.2.0/24, 2001:db8::/32\n"
    "#   subject_allowed = CN, O, OU, C\n"
    "#   subject_required = CN\n"
    "#   cn_in_san       = yes\n"
    "#   key_types       = ec:P-256, ec:P-384\n"
    "#   default_days    = 90\n"
    "#   max_days        = 90\n"
    "#   extensions      = web_ext\n"
    "#   [ web_ext ]\n"
    "#   certificatePolicies = 2.23.140.1.2.1\n\n";

void ca_cnf_write_header(BIO *out)
{
    BIO_puts(out, cnf_header);
}
