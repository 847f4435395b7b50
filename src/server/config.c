/* SPDX-License-Identifier: Apache-2.0 */
/* The [serve] section of ca.cnf: listen addresses, TLS key and
 * certificate, workers, limits, sign-up rates, operators' roles and the
 * defaults of auto-registration.  Unknown keys are refused (typos). */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/conf.h>
#include <openssl/err.h>

#include "server/internal.h"

#define SECTION "serve"

static const char *const serve_keys[] = {
    "listen",
    "tls_key",
    "tls_certificate",
    "workers",
    "max_connections",
    "max_queued_jobs",
    "max_body_bytes",
    "max_header_bytes",
    "request_timeout_ms",
    "idle_timeout_ms",
    "shutdown_timeout_ms",
    "audit_denied_interval_s",
    "access_log",
    "signup_limit",
    "signup_limits",
    "roles",
    "auto_register",
    "auto_register_status",
    "ocsp_path",
    "ocsp_listen",
    "ocsp_max_signing",
};

static const char *conf_get(CONF *conf, const char *section, const char *name)
{
    const char *v;

    ERR_set_mark();
    v = NCONF_get_string(conf, section, name);
    ERR_pop_to_mark();
    return v && *v ? v : NULL;
}

static int bad_key(const char *section, const char *name, const char *value,
                   const char *want)
{
    return p11ca_err_set(P11CA_E_INPUT, "ca.cnf [ %s ] %s = %s: %s", section,
                         name, value ? value : "", want);
}

static int conf_uint(CONF *conf, const char *name, unsigned min, unsigned max,
                     unsigned *out)
{
    const char *v = conf_get(conf, SECTION, name);
    char want[64];
    char *end = NULL;
    unsigned long n;

    if (!v)
        return P11CA_OK;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || errno || n < min || n > max) {
        snprintf(want, sizeof(want), "not a number from %u to %u", min, max);
        return bad_key(SECTION, name, v, want);
    }
    *out = (unsigned)n;
    return P11CA_OK;
}

static int conf_size(CONF *conf, const char *name, unsigned min, unsigned max,
                     size_t *out)
{
    unsigned v = (unsigned)*out;
    int rc = conf_uint(conf, name, min, max, &v);

    *out = v;
    return rc;
}

/* A path: absolute, or relative to the CA directory; pkcs11: as is. */
static int conf_path(CONF *conf, const char *dir, const char *name, char **out)
{
    const char *v = conf_get(conf, SECTION, name);

    *out = NULL;
    if (!v)
        return P11CA_OK;
    if (strncmp(v, "pkcs11:", 7) == 0 || v[0] == '/')
        *out = strdup(v);
    else if ((*out = malloc(strlen(dir) + strlen(v) + 2)))
        sprintf(*out, "%s/%s", dir, v);
    return *out ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

int srv_listen_parse(const char *text, struct srv_listen *l)
{
    const char *colon;
    char *end = NULL;
    unsigned long port;
    size_t hl;
    unsigned char addr[sizeof(struct in6_addr)];

    memset(l, 0, sizeof(*l));
    if (text[0] == '[') {
        colon = strstr(text, "]:");
        if (!colon)
            return -1;
        hl = (size_t)(colon - text - 1);
        if (hl == 0 || hl >= sizeof(l->host))
            return -1;
        memcpy(l->host, text + 1, hl);
        colon++;
        if (inet_pton(AF_INET6, l->host, addr) != 1)
            return -1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - text);
        if (hl >= sizeof(l->host))
            return -1;
        memcpy(l->host, text, hl);
        if (hl == 0)
            strcpy(l->host, "0.0.0.0");
        if (inet_pton(AF_INET, l->host, addr) != 1)
            return -1;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (!isdigit((unsigned char)colon[1]) || *end || errno || port == 0
        || port > 65535)
        return -1;
    l->port = (unsigned)port;
    return 0;
}

/* @key = ADDRESS:PORT[, ...] into @out (at most SRV_MAX_LISTEN). */
static int listen_load(const char *key, const char *spec,
                       struct srv_listen *out, size_t *n)
{
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = copy ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");

    for (tok = copy ? strtok_r(copy, ", \t", &save) : NULL;
         tok && rc == P11CA_OK; tok = strtok_r(NULL, ", \t", &save)) {
        if (*n == SRV_MAX_LISTEN)
            rc = bad_key(SECTION, key, spec, "at most 8 addresses");
        else if (srv_listen_parse(tok, &out[*n]) != 0)
            rc = p11ca_err_set(
                P11CA_E_INPUT,
                "%s address \"%s\": write ADDRESS:PORT (127.0.0.1:8443, [::1]:8443, :8443)",
                key, tok);
        else
            (*n)++;
    }
    if (rc == P11CA_OK && *n == 0)
        rc = bad_key(SECTION, key, spec, "no address");
    free(copy);
    return rc;
}

/* Whether a responder at @path would take the requests of @pattern (a
 * route's): @path is the pattern, or a parent of it ("{name}" segments
 * match any one segment). */
static bool path_shadows(const char *path, const char *pattern)
{
    const char *p = path, *q = pattern;

    while (*p) {
        size_t lp, lq;

        if (*p != '/' || *q != '/')
            return false;
        p++;
        q++;
        lp = strcspn(p, "/");
        lq = strcspn(q, "/");
        if (*q != '{' && (lp != lq || memcmp(p, q, lp) != 0))
            return false;
        p += lp;
        q += lq;
    }
    return true;
}

/* The route @path would hide (srv_dispatch_req asks the responder
 * first), or NULL. */
static const struct srv_route *ocsp_shadowed(const char *path)
{
    const struct srv_route *rt;

    for (size_t i = 0; (rt = srv_route_at(i)) != NULL; i++)
        if (!rt->by_prefix && path_shadows(path, rt->pattern))
            return rt;
    return NULL;
}

/*
 * ocsp_path: where the responder answers (POST PATH, GET PATH/{base64});
 * an absolute path of at most SRV_OCSP_PATH_MAX bytes, of the characters
 * of a path segment, not "/" alone nor ending in "/", not under /v1.
 * ocsp_listen: plain-HTTP addresses that serve nothing but it.
 */
static int ocsp_load(CONF *conf, struct srv_config *cfg)
{
    const char *path = conf_get(conf, SECTION, "ocsp_path");
    const char *listen = conf_get(conf, SECTION, "ocsp_listen");
    size_t len = path ? strlen(path) : 0;
    const struct srv_route *rt;
    char want[256];

    if (path) {
        bool ok = path[0] == '/' && len > 1 && len <= SRV_OCSP_PATH_MAX
                  && path[len - 1] != '/' && strncmp(path, "/v1/", 4) != 0
                  && strcmp(path, "/v1") != 0;

        for (size_t i = 0; ok && i < len; i++)
            ok = isalnum((unsigned char)path[i]) || strchr("/-._~", path[i]);
        if (!ok)
            return bad_key(SECTION, "ocsp_path", path,
                           "an absolute path such as /ocsp (letters, digits, "
                           "- . _ ~ and /; not ending in /, not under /v1)");
        if ((rt = ocsp_shadowed(path)) != NULL) {
            snprintf(
                want, sizeof(want),
                "the responder would take the requests of %s %s; choose another path, such as /ocsp",
                srv_method_name(rt->method), rt->pattern);
            return bad_key(SECTION, "ocsp_path", path, want);
        }
        snprintf(cfg->ocsp_path, sizeof(cfg->ocsp_path), "%s", path);
    }
    return listen ? listen_load("ocsp_listen", listen, cfg->ocsp_listen,
                                &cfg->n_ocsp_listen)
                  : P11CA_OK;
}

int srv_rate_parse(const char *text, struct srv_rate *r)
{
    char *end = NULL;
    double rate, burst;

    memset(r, 0, sizeof(*r));
    if (strcasecmp(text, "off") == 0) {
        r->unlimited = true;
        return 0;
    }
    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    rate = strtod(text, &end);
    if (errno || rate < 0 || rate > 1e6)
        return -1;
    burst = rate < 1 ? 1 : rate;
    if (*end == '/') {
        if (!isdigit((unsigned char)end[1]))
            return -1;
        burst = strtod(end + 1, &end);
        if (errno || burst < 1 || burst > 1e6)
            return -1;
    }
    if (*end)
        return -1;
    r->per_sec = rate;
    r->burst = burst;
    return 0;
}

const struct srv_rate *srv_config_rate(const struct srv_config *cfg,
                                       int64_t ca_id)
{
    for (size_t i = 0; i < cfg->n_ca_rates; i++)
        if (cfg->ca_rates[i].ca_id == ca_id)
            return &cfg->ca_rates[i].rate;
    return &cfg->signup;
}

/* profile.NAME = RATE[/BURST] | off: @name is the key. */
static int profile_rate_load(const char *section, const CONF_VALUE *v,
                             struct srv_config *cfg)
{
    struct srv_profile_rate *pr = &cfg->profile_rates[cfg->n_profile_rates];
    const char *name = v->name + 8;

    if (!*name)
        return bad_key(section, v->name, v->value,
                       "keys are profile.NAME (a profile of ca.cnf)");
    for (size_t i = 0; i < cfg->n_profile_rates; i++)
        if (cfg->profile_rates[i].profile
            && strcmp(cfg->profile_rates[i].profile, name) == 0)
            return bad_key(section, v->name, v->value, "given twice");
    if (srv_rate_parse(v->value, &pr->rate) != 0)
        return bad_key(section, v->name, v->value,
                       "write RATE[/BURST] (per second) or off");
    if (!(pr->profile = strdup(name)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    cfg->n_profile_rates++;
    return P11CA_OK;
}

/* [ signup_limits ]: ca.ID = RATE[/BURST] | off, and
 * profile.NAME = RATE[/BURST] | off. */
static int rates_load(CONF *conf, struct srv_config *cfg, const char *section)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(conf, section);
    CONF_VALUE *v;
    char *end = NULL;
    long long id;
    int n = sk ? sk_CONF_VALUE_num(sk) : 0, rc;

    if (!sk)
        return p11ca_err_set(
            P11CA_E_INPUT,
            "ca.cnf [ serve ] signup_limits = %s: no such section", section);
    cfg->ca_rates = calloc((size_t)n + 1, sizeof(*cfg->ca_rates));
    cfg->profile_rates = calloc((size_t)n + 1, sizeof(*cfg->profile_rates));
    if (!cfg->ca_rates || !cfg->profile_rates)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        struct srv_ca_rate *cr = &cfg->ca_rates[cfg->n_ca_rates];

        v = sk_CONF_VALUE_value(sk, i);
        if (strncmp(v->name, "profile.", 8) == 0) {
            if ((rc = profile_rate_load(section, v, cfg)) != P11CA_OK)
                return rc;
            continue;
        }
        end = NULL;
        id = strncmp(v->name, "ca.", 3) == 0 ? strtoll(v->name + 3, &end, 10)
                                             : 0;
        if (id <= 0 || !end || *end)
            return bad_key(section, v->name, v->value,
                           "keys are ca.ID (the id p11ca serve and GET "
                           "/v1/cas show) and profile.NAME (a profile of "
                           "ca.cnf)");
        if (srv_rate_parse(v->value, &cr->rate) != 0)
            return bad_key(section, v->name, v->value,
                           "write RATE[/BURST] (per second) or off");
        cr->ca_id = id;
        cfg->n_ca_rates++;
    }
    return P11CA_OK;
}

int srv_config_profiles_check(const struct srv_config *cfg, ca *c)
{
    for (size_t i = 0; i < cfg->n_profile_rates; i++)
        if (!ca_profile_find(c, cfg->profile_rates[i].profile))
            return p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf signup_limits: profile.%s: the CA has no profile \"%s\" (see p11ca ca show)",
                cfg->profile_rates[i].profile, cfg->profile_rates[i].profile);
    return P11CA_OK;
}

static int hex_sha256(const char *hex, unsigned char out[32])
{
    size_t n = 0;

    for (const char *p = hex; *p; p++) {
        int hi, lo;

        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1])
            || n == 32)
            return -1;
        hi = isdigit((unsigned char)p[0])
                 ? p[0] - '0'
                 : (tolower((unsigned char)p[0]) - 'a' + 10);
        lo = isdigit((unsigned char)p[1])
                 ? p[1] - '0'
                 : (tolower((unsigned char)p[1]) - 'a' + 10);
        out[n++] = (unsigned char)(hi << 4 | lo);
        p++;
    }
    return n == 32 ? 0 : -1;
}

static int role_parse(const char *name, enum srv_role *r)
{
    if (strcmp(name, "admin") == 0)
        *r = SRV_ROLE_ADMIN;
    else if (strcmp(name, "operator") == 0)
        *r = SRV_ROLE_OPERATOR;
    else if (strcmp(name, "auditor") == 0)
        *r = SRV_ROLE_AUDITOR;
    else
        return -1;
    return 0;
}

/* One operator: "ROLE sha256:HEX" or "ROLE subject:DN". */
static int operator_parse(const char *section, const CONF_VALUE *v,
                          struct srv_operator *op)
{
    static const char want[] = "write ROLE sha256:HEX or ROLE subject:DN "
                               "(ROLE: admin, operator, auditor)";
    const char *sp = strchr(v->value, ' ');
    char role[16];

    if (!sp || (size_t)(sp - v->value) >= sizeof(role))
        return bad_key(section, v->name, v->value, want);
    memcpy(role, v->value, (size_t)(sp - v->value));
    role[sp - v->value] = '\0';
    sp += strspn(sp, " ");
    if (role_parse(role, &op->role) != 0)
        return bad_key(section, v->name, v->value, want);
    if (strncmp(sp, "sha256:", 7) == 0) {
        op->by_sha256 = true;
        if (hex_sha256(sp + 7, op->sha256) != 0)
            return bad_key(section, v->name, v->value,
                           "sha256: takes the certificate's SHA-256 "
                           "fingerprint (64 hex digits, colons allowed)");
    } else if (strncmp(sp, "subject:", 8) == 0 && sp[8]) {
        op->subject = strdup(sp + 8);
    } else {
        return bad_key(section, v->name, v->value, want);
    }
    op->label = strdup(v->name);
    if (!op->label || (!op->by_sha256 && !op->subject))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    return P11CA_OK;
}

static int roles_load(CONF *conf, struct srv_config *cfg, const char *section)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(conf, section);
    int n = sk ? sk_CONF_VALUE_num(sk) : 0, rc = P11CA_OK;

    if (!sk)
        return p11ca_err_set(P11CA_E_INPUT,
                             "ca.cnf [ serve ] roles = %s: no such section",
                             section);
    cfg->ops = calloc((size_t)n + 1, sizeof(*cfg->ops));
    if (!cfg->ops)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    for (int i = 0; i < n && rc == P11CA_OK; i++) {
        rc = operator_parse(section, sk_CONF_VALUE_value(sk, i),
                            &cfg->ops[cfg->n_ops]);
        cfg->n_ops++;
    }
    return rc;
}

static int keys_check(CONF *conf)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(conf, SECTION);
    size_t nk = sizeof(serve_keys) / sizeof(serve_keys[0]), k;

    for (int i = 0; sk && i < sk_CONF_VALUE_num(sk); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(sk, i);

        for (k = 0; k < nk; k++)
            if (strcmp(v->name, serve_keys[k]) == 0)
                break;
        if (k == nk)
            return p11ca_err_set(
                P11CA_E_INPUT,
                "ca.cnf [ serve ]: unknown key \"%s\" (see p11ca serve --help)",
                v->name);
    }
    return P11CA_OK;
}

static void defaults(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = SRV_WORKERS;
    cfg->max_connections = SRV_MAX_CONNECTIONS;
    cfg->max_queued_jobs = SRV_MAX_QUEUED_JOBS;
    cfg->max_body_bytes = SRV_MAX_BODY_BYTES;
    cfg->max_header_bytes = SRV_MAX_HEADER_BYTES;
    cfg->request_timeout_ms = SRV_REQUEST_TIMEOUT_MS;
    cfg->idle_timeout_ms = SRV_IDLE_TIMEOUT_MS;
    cfg->shutdown_timeout_ms = SRV_SHUTDOWN_TIMEOUT_MS;
    cfg->audit_denied_interval_s = SRV_DENIED_INTERVAL_S;
    cfg->signup.per_sec = SRV_SIGNUPS_PER_SEC;
    cfg->signup.burst = SRV_SIGNUP_BURST;
    snprintf(cfg->ocsp_path, sizeof(cfg->ocsp_path), "%s", SRV_OCSP_PATH);
    cfg->auto_status = REG_REGISTERED_NOT_ACTIVATED;
}

static int numbers_load(CONF *conf, struct srv_config *cfg)
{
    int rc = conf_uint(conf, "workers", 1, SRV_MAX_WORKERS, &cfg->workers);

    if (rc == P11CA_OK)
        rc = conf_uint(conf, "max_connections", 1, 1000000,
                       &cfg->max_connections);
    if (rc == P11CA_OK)
        rc = conf_uint(conf, "max_queued_jobs", 1, 1000000,
                       &cfg->max_queued_jobs);
    if (rc == P11CA_OK)
        rc = conf_size(conf, "max_body_bytes", 1024, 64 * 1024 * 1024,
                       &cfg->max_body_bytes);
    if (rc == P11CA_OK)
        rc = conf_size(conf, "max_header_bytes", 1024, 1024 * 1024,
                       &cfg->max_header_bytes);
    if (rc == P11CA_OK)
        rc = conf_uint(conf, "request_timeout_ms", 100, 3600000,
                       &cfg->request_timeout_ms);
    if (rc == P11CA_OK)
        rc = conf_uint(conf, "idle_timeout_ms", 100, 3600000,
                       &cfg->idle_timeout_ms);
    if (rc == P11CA_OK)
        rc = conf_uint(conf, "shutdown_timeout_ms", 0, 3600000,
                       &cfg->shutdown_timeout_ms);
    if (rc == P11CA_OK)
        rc = conf_uint(conf, "audit_denied_interval_s", 1, 86400,
                       &cfg->audit_denied_interval_s);
    if (rc == P11CA_OK)
        rc = conf_uint(conf, "ocsp_max_signing", 1, 1000000,
                       &cfg->ocsp_max_signing);
    return rc;
}

static int signup_load(CONF *conf, struct srv_config *cfg)
{
    const char *v = conf_get(conf, SECTION, "signup_limit");
    const char *auto_reg = conf_get(conf, SECTION, "auto_register");
    const char *st = conf_get(conf, SECTION, "auto_register_status");

    if (v && srv_rate_parse(v, &cfg->signup) != 0)
        return bad_key(SECTION, "signup_limit", v,
                       "write RATE[/BURST] (per second) or off");
    if (auto_reg && strcmp(auto_reg, "yes") != 0 && strcmp(auto_reg, "no") != 0)
        return bad_key(SECTION, "auto_register", auto_reg, "say yes or no");
    cfg->auto_register = auto_reg && strcmp(auto_reg, "yes") == 0;
    if (st
        && (reg_status_parse(st, &cfg->auto_status) != P11CA_OK
            || (cfg->auto_status != REG_ACTIVATED
                && cfg->auto_status != REG_REGISTERED_NOT_ACTIVATED)))
        return bad_key(SECTION, "auto_register_status", st,
                       "say activated or registered-not-activated");
    return P11CA_OK;
}

static int sections_load(CONF *conf, struct srv_config *cfg)
{
    const char *rates = conf_get(conf, SECTION, "signup_limits");
    const char *roles = conf_get(conf, SECTION, "roles");
    int rc = P11CA_OK;

    if (rates)
        rc = rates_load(conf, cfg, rates);
    if (rc == P11CA_OK && roles)
        rc = roles_load(conf, cfg, roles);
    return rc;
}

static int tls_load(CONF *conf, const char *dir, struct srv_config *cfg)
{
    int rc = conf_path(conf, dir, "tls_key", &cfg->tls_key);

    if (rc == P11CA_OK)
        rc = conf_path(conf, dir, "tls_certificate", &cfg->tls_cert);
    if (rc == P11CA_OK)
        rc = conf_path(conf, dir, "access_log", &cfg->access_log);
    if (rc == P11CA_OK && (!cfg->tls_key || !cfg->tls_cert))
        rc = p11ca_err_set(
            P11CA_E_INPUT,
            "%s/ca.cnf: [ serve ] needs tls_key and tls_certificate (a pkcs11: URI or a file)",
            dir);
    return rc;
}

int srv_config_load(const char *dir, const char *listen, struct srv_config *cfg)
{
    CONF *conf = NCONF_new_ex(NULL, NULL);
    char *path = malloc(strlen(dir) + sizeof("/ca.cnf"));
    int rc = P11CA_OK;

    defaults(cfg);
    if (!conf || !path) {
        rc = p11ca_err_set(P11CA_E_NOMEM, "out of memory");
        goto out;
    }
    sprintf(path, "%s/ca.cnf", dir);
    rc = ca_cnf_load(conf, path);
    if (rc == P11CA_OK)
        rc = keys_check(conf);
    if (rc == P11CA_OK) {
        if (!listen)
            listen = conf_get(conf, SECTION, "listen");
        rc = listen_load("listen", listen ? listen : "127.0.0.1:8443",
                         cfg->listen, &cfg->n_listen);
    }
    if (rc == P11CA_OK)
        rc = ocsp_load(conf, cfg);
    if (rc == P11CA_OK)
        rc = tls_load(conf, dir, cfg);
    if (rc == P11CA_OK)
        rc = numbers_load(conf, cfg);
    if (rc == P11CA_OK)
        rc = signup_load(conf, cfg);
    if (rc == P11CA_OK)
        rc = sections_load(conf, cfg);
out:
    if (rc != P11CA_OK)
        srv_config_clear(cfg);
    ERR_clear_error();
    NCONF_free(conf);
    free(path);
    return rc;
}

void srv_config_clear(struct srv_config *cfg)
{
    for (size_t i = 0; i < cfg->n_ops; i++) {
        free(cfg->ops[i].label);
        free(cfg->ops[i].subject);
    }
    free(cfg->ops);
    free(cfg->ca_rates);
    for (size_t i = 0; i < cfg->n_profile_rates; i++)
        free(cfg->profile_rates[i].profile);
    free(cfg->profile_rates);
    free(cfg->tls_key);
    free(cfg->tls_cert);
    free(cfg->access_log);
    defaults(cfg);
}

const char *srv_role_name(enum srv_role r)
{
    static const char *const names[] = {
        [SRV_ROLE_ANON] = "anonymous",  [SRV_ROLE_DEVICE] = "device",
        [SRV_ROLE_AUDITOR] = "auditor", [SRV_ROLE_OPERATOR] = "operator",
        [SRV_ROLE_ADMIN] = "admin",
    };

    return (unsigned)r <= SRV_ROLE_ADMIN ? names[r] : "?";
}
