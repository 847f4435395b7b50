/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment over the network: one-time enrollment codes (POST
 * /v1/enrollment-codes), a certificate for a CSR authenticated by a code
 * or an operator (POST /v1/enroll), and renewal by the device's current
 * certificate (POST /v1/renew).  The CSR is read on the loop; the code,
 * the CA's checks, the signature and the record run on a worker, through
 * the enrollment issuer that p11ca enroll uses (ca/enroll.h). */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/enroll.h"
#include "common/timeparse.h"
#include "server/internal.h"

/* The one answer to a code that is unknown, used or expired. */
#define CODE_REFUSED "the enrollment code is unknown, used or expired"

enum enroll_op {
    OP_CODE_NEW,
    OP_ENROLL,
    OP_RENEW,
};

/* One enrollment step, run by a worker. */
struct enroll_job {
    struct srv_job j;
    struct srv_req *r;
    enum enroll_op op;
    /* In (strings owned). */
    unsigned char *csr; /* DER */
    size_t csr_len;
    char *profile;
    char *client_id;
    char *subject; /* OP_CODE_NEW: RFC 2253, or NULL */
    char hash[65]; /* of the code; "" without one */
    int64_t ttl;
    int64_t old_ca_id; /* OP_RENEW: the caller's certificate */
    char old_serial[64];
    /* Out. */
    char code[2 * SRV_CODE_SECRET_BYTES + 1];
    int64_t expires;
    bool forbidden;    /* 403: the code (or the caller) may not do this */
    bool signup_taken; /* a token of the CA's sign-up limit */
    bool code_refused; /* the code was refused: the token goes back */
    /* The profile's sign-up limit refused it (a code's profile is known
     * on the worker): the CA's token goes back; Retry-After. */
    bool profile_refused;
    unsigned retry_s;
    X509 *cert;
    STACK_OF(X509) * chain;
    char serial[REG_SERIAL_TEXT_MAX];
    bool old_revoked;
    char revoked_serial[64]; /* one it revoked (the registry's form) */
    bool replayed;           /* a retry: the certificate given the first time */
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void job_free(struct enroll_job *ej)
{
    if (!ej)
        return;
    OPENSSL_free(ej->csr);
    free(ej->profile);
    free(ej->client_id);
    free(ej->subject);
    OPENSSL_cleanse(ej->code, sizeof(ej->code));
    X509_free(ej->cert);
    sk_X509_pop_free(ej->chain, X509_free);
    free(ej);
}

/* A string member of @body (NULL when absent); false when answered. */
static bool str_member(struct srv_req *r, json_t *body, const char *name,
                       size_t max, const char **out)
{
    json_t *v = json_object_get(body, name);

    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v) || !json_string_length(v)
        || json_string_length(v) > max) {
        srv_problem(r, 400, "bad-request", "%s is a string of 1 to %zu bytes",
                    name, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* Hex SHA-256 of the code's text: what the registry keeps. */
static void code_hash(const char *code, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    EVP_Digest(code, strlen(code), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    OPENSSL_cleanse(md, sizeof(md));
}

/* The PEM CSR of "csr" into DER (@ej->csr); false when answered (400). */
static bool csr_read(struct srv_req *r, const char *pem, struct enroll_job *ej)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    int n = req ? i2d_X509_REQ(req, &ej->csr) : -1;

    BIO_free(b);
    X509_REQ_free(req);
    ERR_clear_error();
    if (n <= 0) {
        srv_problem(r, 400, "bad-csr",
                    "\"csr\" must hold one PEM certificate request "
                    "(-----BEGIN CERTIFICATE REQUEST-----)");
        return false;
    }
    ej->csr_len = (size_t)n;
    return true;
}

static char *name_cn(const X509_NAME *name)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *u = NULL;
    char *cn = NULL;
    X509_NAME_ENTRY *e = i >= 0 ? X509_NAME_get_entry(name, i) : NULL;

    if (e && ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e)) > 0)
        cn = strdup((char *)u);
    OPENSSL_free(u);
    return cn;
}

static struct enroll_job *job_new(struct srv_req *r, enum enroll_op op,
                                  srv_job_run_fn *run, srv_job_done_fn *done)
{
    struct enroll_job *ej = calloc(1, sizeof(*ej));

    if (!ej) {
        srv_problem(r, 503, "busy", "out of memory");
        return NULL;
    }
    ej->r = r;
    ej->op = op;
    ej->j.kind = op == OP_CODE_NEW ? "enrollment code"
                 : op == OP_ENROLL ? "enrollment"
                                   : "renewal";
    ej->j.run = run;
    ej->j.done = done;
    snprintf(ej->j.actor, sizeof(ej->j.actor), "%s", r->actor);
    return ej;
}

static void job_submit(struct srv_req *r, struct enroll_job *ej)
{
    if (!srv_submit_or_answer(r, &ej->j))
        job_free(ej);
}

/* Refuse with 403 from a worker (@fmt: why); the job's error. */
static int job_forbid(struct enroll_job *ej, const char *msg)
{
    ej->forbidden = true;
    ej->j.rc = P11CA_E_INPUT;
    snprintf(ej->j.msg, sizeof(ej->j.msg), "%s", msg);
    return P11CA_E_INPUT;
}

static char *pem_of(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *pem = NULL;
    long n;

    if (b && PEM_write_bio_X509(b, x) && (n = BIO_get_mem_data(b, &data)) > 0)
        pem = strndup(data, (size_t)n);
    BIO_free(b);
    return pem;
}

/* ------------------------------------------------------------------ */
/* POST /v1/enrollment-codes                                           */
/* ------------------------------------------------------------------ */

static void code_run(struct srv_job *j, ca *wc)
{
    struct enroll_job *ej = (struct enroll_job *)j;
    unsigned char raw[SRV_CODE_SECRET_BYTES];
    int64_t id = 0;
    int rc;

    /* At least 128 random bits, shown once, kept as a hash. */
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        srv_job_set_error(
            j, p11ca_err_set(P11CA_E_INTERNAL, "no random bytes for a code"));
        return;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(ej->code + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    code_hash(ej->code, ej->hash);
    rc = reg_code_add(ca_registry(wc), ca_registry_id(wc), ej->hash,
                      ej->profile, ej->client_id, ej->subject, ej->ttl,
                      j->actor, &id, &ej->expires);
    if (rc != P11CA_OK) {
        OPENSSL_cleanse(ej->code, sizeof(ej->code));
        srv_job_set_error(j, rc);
    }
}

static void code_done(struct srv_job *j)
{
    struct enroll_job *ej = (struct enroll_job *)j;

    if (j->rc != P11CA_OK)
        srv_problem_job(ej->r, j);
    else
        srv_reply_json_secret(
            ej->r, 201,
            json_pack("{s:s, s:o, s:s, s:s, s:s?}", "code", ej->code, "expires",
                      srv_time_json(ej->expires), "profile", ej->profile,
                      "client_id", ej->client_id, "subject", ej->subject));
    job_free(ej);
}

/* Why @p is no profile that enrollment serves (NULL: it is one).  Only
 * end-entity TLS client and server certificates are enrolled: no CA, no
 * OCSP signer (its "good" would be believed for any certificate), no other
 * key purpose, no extensions of the profile's own (they may add any). */
static const char *profile_refusal(const ca_profile *p)
{
    X509_EXTENSION *ext = NULL;
    EXTENDED_KEY_USAGE *ku = NULL;
    const char *why = NULL;

    if (p->is_ca)
        return "it makes CA certificates";
    if (p->ocsp_nocheck)
        return "it makes OCSP signers (ocsp_nocheck)";
    if (p->extensions)
        return "it adds extensions of its own (extensions =)";
    if (!p->ext_key_usage)
        return "it sets no ext_key_usage (any key purpose)";
    ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage, p->ext_key_usage);
    ku = ext ? X509V3_EXT_d2i(ext) : NULL;
    if (!ku || !sk_ASN1_OBJECT_num(ku))
        why = "its ext_key_usage does not parse";
    for (int i = 0; ku && i < sk_ASN1_OBJECT_num(ku) && !why; i++) {
        int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(ku, i));

        if (nid == NID_OCSP_sign)
            why = "it makes OCSP signers (OCSPSigning)";
        else if (nid != NID_client_auth && nid != NID_server_auth)
            why =
                "its ext_key_usage allows more than serverAuth and clientAuth";
    }
    EXTENDED_KEY_USAGE_free(ku);
    X509_EXTENSION_free(ext);
    ERR_clear_error();
    return why;
}

/* The profile of a request: known, and one that enrollment can serve. */
static bool profile_ok(struct srv_req *r, const char *name)
{
    const ca_profile *p = ca_profile_find(r->s->ca, name);
    const char *why = p ? profile_refusal(p) : NULL;

    if (!p)
        srv_problem(r, 400, "unknown-profile",
                    "the CA has no profile \"%s\" (see p11ca ca show)", name);
    else if (why)
        srv_problem(
            r, 400, "policy",
            "profile \"%s\" is not enrolled over the network: %s; enrollment is for end-entity TLS client and server certificates (p11ca issue makes the others)",
            name, why);
    return p && !why;
}

/* The role that the roles config gives to certificates of this CA with
 * the subject @text (RFC 2253), by its label; NULL when none.  Compared
 * without case: a near miss is refused too. */
static const char *subject_role(const struct srv *s, const char *text)
{
    for (size_t i = 0; text && i < s->cfg.n_ops; i++) {
        const struct srv_operator *op = &s->cfg.ops[i];

        if (!op->by_sha256 && op->subject && strcasecmp(op->subject, text) == 0)
            return op->label;
    }
    return NULL;
}

/* Refuse (403) a subject that the roles config maps to a role: no API
 * caller mints a certificate that carries a role. */
static bool subject_no_role(struct srv_req *r, const char *text)
{
    const char *label = subject_role(r->s, text);

    if (!label)
        return true;
    r->s->m.refusals[SRV_REFUSE_FORBIDDEN]++;
    srv_audit_denied(r->s, r->actor, r->path, "the subject has a role");
    srv_problem(
        r, 403, "forbidden",
        "the subject \"%s\" has a role in [ serve ] roles (%s): certificates with a role are made by p11ca issue, not enrolled",
        text, label);
    return false;
}

/* Step 1 of POST /v1/enrollment-codes: @body into @ej. */
static bool code_parse(struct srv_req *r, json_t *body, struct enroll_job *ej)
{
    static const char *const members[] = {"profile", "client_id", "subject",
                                          "expires_in", NULL};
    const char *profile, *client, *subject;
    json_t *ttl = json_object_get(body, "expires_in");
    X509_NAME *name = NULL;
    bool ok = false;

    if (!srv_json_only(r, body, members)
        || !str_member(r, body, "profile", 64, &profile)
        || !str_member(r, body, "client_id", ENROLL_CLIENT_ID_MAX, &client)
        || !str_member(r, body, "subject", 1024, &subject))
        return false;
    /* Seconds, or a duration as the CLI writes them ("30m", "24h"). */
    ej->ttl = SRV_CODE_TTL_S;
    if (ttl && json_is_integer(ttl))
        ej->ttl = json_integer_value(ttl);
    else if (ttl
             && (!json_is_string(ttl)
                 || p11ca_parse_duration(json_string_value(ttl), &ej->ttl)
                        != 0))
        ej->ttl = -1;
    if (ej->ttl < SRV_CODE_TTL_MIN_S || ej->ttl > SRV_CODE_TTL_MAX_S) {
        srv_problem(
            r, 400, "bad-request",
            "expires_in is a number of seconds from %d to %d, or a duration (30m, 24h, 7d)",
            SRV_CODE_TTL_MIN_S, SRV_CODE_TTL_MAX_S);
        return false;
    }
    if (!profile || (!client && !subject)) {
        srv_problem(r, 400, "bad-request",
                    "give a profile and a client_id or a subject");
        return false;
    }
    if (!profile_ok(r, profile))
        return false;
    if (subject && enroll_name_parse(subject, &name) != P11CA_OK) {
        srv_problem(r, 400, "bad-request", "subject: %s", p11ca_err_message());
        return false;
    }
    if (name && reg_name_text(name, &ej->subject) != P11CA_OK)
        srv_problem(r, 503, "busy", "out of memory");
    else if (ej->subject && !subject_no_role(r, ej->subject))
        ; /* answered */
    else if (!client && !(ej->client_id = name_cn(name)))
        srv_problem(r, 400, "bad-request",
                    "the subject has no CN: give a client_id");
    else if (client && !(ej->client_id = strdup(client)))
        srv_problem(r, 503, "busy", "out of memory");
    else if (!(ej->profile = strdup(profile)))
        srv_problem(r, 503, "busy", "out of memory");
    else
        ok = true;
    X509_NAME_free(name);
    return ok;
}

static void code_create(struct srv_req *r)
{
    struct enroll_job *ej = NULL;
    json_t *body = NULL;

    /* 2. authorize (before reading the body) */
    if (!srv_req_authorize(r, false))
        return;
    /* 1. parse */
    if (!(body = srv_req_json(r, false))
        || !(ej = job_new(r, OP_CODE_NEW, code_run, code_done))
        || !code_parse(r, body, ej)) {
        job_free(ej);
        json_decref(body);
        return;
    }
    json_decref(body);
    /* 3. the registry, through a worker; 4. code_done responds */
    job_submit(r, ej);
}

/* ------------------------------------------------------------------ */
/* POST /v1/enroll                                                     */
/* ------------------------------------------------------------------ */

/* The code @c against what the request and its CSR (@subj) say; 0 or the
 * 403 refusal. */
static int code_matches(struct enroll_job *ej, const reg_code *c,
                        const X509_NAME *subj)
{
    char *text = NULL, *cn = NULL, msg[SRV_MSG_MAX];
    int rc = P11CA_OK;

    if (ej->profile && strcmp(ej->profile, c->profile) != 0)
        snprintf(msg, sizeof(msg),
                 "the enrollment code is for profile \"%s\", not \"%s\"",
                 c->profile, ej->profile);
    else if (ej->client_id && strcmp(ej->client_id, c->client_id) != 0)
        snprintf(msg, sizeof(msg),
                 "the enrollment code is for client ID \"%s\", not \"%s\"",
                 c->client_id, ej->client_id);
    else if (c->subject
             && (reg_name_text(subj, &text) != P11CA_OK
                 || strcmp(text, c->subject) != 0))
        snprintf(msg, sizeof(msg),
                 "the enrollment code is for the subject \"%s\", not \"%s\"",
                 c->subject, text ? text : "?");
    /* A code for a client ID names the CSR's CN too: its holder cannot
     * choose a name (an operator's, say). */
    else if (!c->subject
             && (!(cn = name_cn(subj)) || strcmp(cn, c->client_id) != 0))
        snprintf(
            msg, sizeof(msg),
            "the enrollment code is for client ID \"%s\": the CSR's subject must have CN=%s",
            c->client_id, c->client_id);
    else
        msg[0] = '\0';
    if (msg[0])
        rc = job_forbid(ej, msg);
    free(text);
    free(cn);
    return rc;
}

/* The request's CSR subject; NULL (answered in the job) when it does not
 * parse, which ca_req_new would refuse anyway. */
static X509_REQ *job_csr(struct enroll_job *ej)
{
    const unsigned char *p = ej->csr;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)ej->csr_len);

    if (!req)
        srv_job_set_error(
            &ej->j, p11ca_err_set(P11CA_E_INPUT, "the CSR does not parse"));
    return req;
}

/* Issue for @rq with @is: check, sign, record (activated), the chain. */
static int job_issue(struct enroll_job *ej, enroll_issuer *is,
                     const enroll_req *rq)
{
    int rc = enroll_check(is, rq, NULL);

    if (rc == P11CA_OK)
        rc = enroll_issue(is, rq, ej->csr, ej->csr_len, &ej->cert);
    if (rc == P11CA_OK)
        enroll_serial(ej->cert, ej->serial, sizeof(ej->serial));
    return rc;
}

/* The chain for the reply of a certificate recorded already: a failure
 * is logged, never the client's (it holds what the registry says it has);
 * then the CA certificate in memory alone, or no chain at all. */
static void job_chain(struct enroll_job *ej, enroll_issuer *is, ca *wc)
{
    X509 *cac = ca_cert(wc);

    if (enroll_chain(is, &ej->chain) == P11CA_OK)
        return;
    srv_log("certificate %s was issued; its chain is sent short: %s",
            ej->serial, p11ca_err_message());
    if (cac && (ej->chain = sk_X509_new_null())
        && (!X509_up_ref(cac) || sk_X509_push(ej->chain, cac) <= 0)) {
        sk_X509_pop_free(ej->chain, X509_free);
        ej->chain = NULL;
    }
}

/* A code that gave a certificate, asked again with a CSR of the same key
 * (signed by it) and subject (a client whose answer was lost asks again, as docs/api.md
 * says): the certificate it gave, still activated, within the code's
 * validity.  Nothing is recorded.  True when @ej holds it. */
static bool code_replay(struct enroll_job *ej, ca *wc, X509_REQ *req)
{
    reg *rg = ca_registry(wc);
    reg_code code = {0};
    reg_cert c = {0};
    char key[65], *subj = NULL;
    const unsigned char *p;
    bool ok = false;

    /* The CSR proves its key: else anyone who saw the certificate (its
     * key and subject are public) could ask which code gave it. */
    if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1
        || reg_code_given(rg, ca_registry_id(wc), ej->hash, &code) != P11CA_OK
        || enroll_spki_sha256(X509_REQ_get0_pubkey(req), key) != P11CA_OK
        || reg_name_text(X509_REQ_get_subject_name(req), &subj) != P11CA_OK
        || reg_get(rg, ca_registry_id(wc), code.issued, &c) != P11CA_OK)
        goto out;
    if (c.status != REG_ACTIVATED || !c.key_hash || strcmp(c.key_hash, key)
        || !c.subject || strcmp(c.subject, subj) || !c.der)
        goto out;
    p = c.der;
    ej->cert = d2i_X509(NULL, &p, (long)c.der_len);
    if (ej->cert) {
        enroll_serial(ej->cert, ej->serial, sizeof(ej->serial));
        ej->replayed = true;
        ok = true;
        srv_log("enrollment code %lld asked again with the same key: "
                "certificate %s given again",
                (long long)code.id, ej->serial);
    }
out:
    ERR_clear_error();
    free(subj);
    reg_cert_clear(&c);
    reg_code_clear(&code);
    return ok;
}

static void enroll_run_job(struct srv_job *j, ca *wc)
{
    struct enroll_job *ej = (struct enroll_job *)j;
    reg *rg = ca_registry(wc);
    enroll_issuer *is = NULL;
    reg_code code = {0};
    X509_REQ *req = NULL;
    const X509_NAME *subj;
    char *cn = NULL, why[SRV_MSG_MAX + 16], serial[64];
    enroll_req rq = {.wait = 0};
    const ca_profile *prof;
    const char *why_not;
    bool taken = false, issued = false;
    int rc;

    if (!(req = job_csr(ej)))
        return;
    subj = X509_REQ_get_subject_name(req);
    rc = ca_set_actor(wc, j->actor);
    if (rc == P11CA_OK && ej->hash[0]) {
        rc = reg_code_take(rg, ca_registry_id(wc), ej->hash, j->actor, &code);
        if (rc == P11CA_E_NOTFOUND && code_replay(ej, wc, req)) {
            rc = enroll_issuer_for_ca(wc, &is);
            if (rc == P11CA_OK)
                job_chain(ej, is, wc);
            goto out;
        }
        if (rc == P11CA_E_NOTFOUND) {
            ej->code_refused = true;
            rc = job_forbid(ej, CODE_REFUSED);
            goto out;
        }
        taken = rc == P11CA_OK;
        if (taken && (rc = code_matches(ej, &code, subj))) {
            ej->code_refused = ej->forbidden;
            goto out;
        }
        /* The profile may have changed since the code was made. */
        if (taken && (prof = ca_profile_find(wc, code.profile))
            && (why_not = profile_refusal(prof))) {
            rc = p11ca_err_set(
                P11CA_E_POLICY,
                "profile \"%s\" is not enrolled over the network: %s",
                code.profile, why_not);
            goto out;
        }
        /* The profile's own sign-up limit: a code names its profile. */
        if (taken
            && !srv_profile_take(&j->s->profile_buckets, code.profile,
                                 &ej->retry_s)) {
            ej->profile_refused = true;
            rc = p11ca_err_set(
                P11CA_E_RATE,
                "sign-up limit of profile \"%s\" reached; retry in %u s",
                code.profile, ej->retry_s);
            goto out;
        }
        rq.profile = code.profile;
        rq.client_id = code.client_id;
    } else if (rc == P11CA_OK) {
        rq.profile = ej->profile;
        rq.client_id = ej->client_id ? ej->client_id : (cn = name_cn(subj));
        if (!rq.client_id)
            rc = p11ca_err_set(P11CA_E_INPUT,
                               "the CSR's subject has no CN: give a client_id");
    }
    rq.subject = subj;
    if (rc == P11CA_OK)
        rc = enroll_issuer_for_ca(wc, &is);
    if (rc == P11CA_OK)
        rc = job_issue(ej, is, &rq);
    /* Recorded (activated, the client ID its own): from here on the
     * client gets the certificate, whatever fails after. */
    issued = rc == P11CA_OK;
    if (issued && taken
        && (reg_serial_normalise(ej->serial, serial, sizeof(serial)) != P11CA_OK
            || reg_code_issued(rg, code.id, ca_registry_id(wc), serial,
                               j->actor)
                   != P11CA_OK))
        srv_log("enrollment code %lld gave certificate %s, not linked to it: "
                "%s",
                (long long)code.id, ej->serial, p11ca_err_message());
    if (issued) { /* OCSP knows it at once */
        srv_ocsp_cert_changed(j->s, wc, ca_registry_id(wc), ej->serial, true);
        job_chain(ej, is, wc);
    }
out:
    if (rc != P11CA_OK && !ej->forbidden)
        srv_job_set_error(j, rc);
    /* Nothing issued: the code may be used again (until it expires). */
    if (taken && !issued) {
        snprintf(why, sizeof(why), "refused: %s", j->msg);
        if (reg_code_release(rg, code.id, j->actor, why) != P11CA_OK)
            srv_log("enrollment code %lld stays used: %s", (long long)code.id,
                    p11ca_err_message());
    }
    enroll_issuer_free(is);
    reg_code_clear(&code);
    X509_REQ_free(req);
    free(cn);
}

static void enroll_done(struct srv_job *j)
{
    struct enroll_job *ej = (struct enroll_job *)j;
    struct srv_req *r = ej->r;
    json_t *chain = NULL, *o = NULL;
    char *pem = NULL, *p;

    /* A refused code costs no sign-up: the limit is the CA's, shared with
     * the auto-registration of devices, and not for anyone to drain with
     * made-up codes.  Nor does a certificate given again to a code's
     * retry, nor a request its profile's limit refused. */
    if (ej->signup_taken
        && (ej->code_refused || ej->replayed || ej->profile_refused)) {
        struct srv_ca *sca = srv_ca_by_id(j->s, ca_registry_id(j->s->ca));

        if (sca)
            srv_signup_refund(j->s, sca);
    }
    if (j->rc == P11CA_OK && ej->cert && !ej->replayed)
        j->s->m.signups_api++;
    /* A renewal (retried with another key) revoked the one it asked for
     * first: a new CRL, made once, here or when the registry announces
     * the revocation (srv_crl_first). */
    if (ej->old_revoked && srv_crl_first(j->s, ej->revoked_serial, true))
        srv_crl_regenerate(j->s, j->actor);
    if (ej->forbidden) {
        j->s->m.refusals[SRV_REFUSE_FORBIDDEN]++;
        srv_audit_denied(
            j->s, j->actor,
            ej->op == OP_RENEW ? "POST /v1/renew" : "POST /v1/enroll", j->msg);
        srv_problem(r, 403, "forbidden", "%s", j->msg);
        goto out;
    }
    if (ej->profile_refused) {
        char ra[16];

        j->s->m.refusals[SRV_REFUSE_RATE]++;
        snprintf(ra, sizeof(ra), "%u", ej->retry_s);
        srv_set_header(r, "Retry-After", ra);
        srv_problem(r, 429, "rate-limited", "%s", j->msg);
        goto out;
    }
    if (j->rc != P11CA_OK) {
        if (j->rc == P11CA_E_RATE)
            j->s->m.refusals[SRV_REFUSE_RATE]++;
        srv_problem_job(r, j);
        goto out;
    }
    chain = json_array();
    for (int i = 0; chain && i < sk_X509_num(ej->chain); i++) {
        p = pem_of(sk_X509_value(ej->chain, i));
        if (!p || json_array_append_new(chain, json_string(p)) != 0) {
            free(p);
            json_decref(chain);
            chain = NULL;
            break;
        }
        free(p);
    }
    pem = pem_of(ej->cert);
    if (chain && pem)
        o = json_pack("{s:s, s:s, s:o}", "serial", ej->serial, "certificate",
                      pem, "chain", chain);
    else
        json_decref(chain);
    /* Recorded already: a reply that fails leaves it in the registry. */
    srv_reply_json(r, 201, o);
out:
    free(pem);
    job_free(ej);
}

/* 429 with Retry-After: @retry seconds; false. */
static bool signup_refused(struct srv_req *r, unsigned retry, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

static bool signup_refused(struct srv_req *r, unsigned retry, const char *fmt,
                           ...)
{
    char ra[16], msg[SRV_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->s->m.refusals[SRV_REFUSE_RATE]++;
    snprintf(ra, sizeof(ra), "%u", retry);
    srv_set_header(r, "Retry-After", ra);
    srv_problem(r, 429, "rate-limited", "%s", msg);
    return false;
}

/* The sign-up limits: the profile's own (when it has one), then this
 * CA's; false when answered (429), nothing taken.  With a code the
 * profile is the code's: the worker takes its token (enroll_run_job), and
 * enroll_done gives the CA's token back when the code or the profile's
 * limit refuses it. */
static bool signup_take(struct srv_req *r, struct enroll_job *ej)
{
    struct srv_ca *sca = srv_ca_by_id(r->s, ca_registry_id(r->s->ca));
    bool by_profile = !ej->hash[0] && ej->profile;
    unsigned retry = 0;
    int taken;

    if (by_profile
        && !srv_profile_take(&r->s->profile_buckets, ej->profile, &retry))
        return signup_refused(
            r, retry, "sign-up limit of profile \"%s\" reached; retry in %u s",
            ej->profile, retry);
    if (!sca)
        return true;
    taken = srv_signup_take(r->s, sca, &retry);
    if (taken == 1) {
        ej->signup_taken = true;
        return true;
    }
    if (by_profile)
        srv_profile_refund(&r->s->profile_buckets, ej->profile);
    if (taken < 0) {
        srv_problem_rc(r, taken, p11ca_err_message());
        return false;
    }
    return signup_refused(r, retry,
                          "sign-up limit of CA %lld reached; retry in %u s",
                          (long long)sca->id, retry);
}

/* The CSR's subjectAltName extension (DER of its value), or NULL. */
static ASN1_OCTET_STRING *csr_san(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int i = exts ? X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) : -1;
    ASN1_OCTET_STRING *san = NULL;

    if (i >= 0)
        san = ASN1_OCTET_STRING_dup(
            X509_EXTENSION_get_data(sk_X509_EXTENSION_value(exts, i)));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return san;
}

/* The CSR of @ej before anything is taken: its subject has no role (403);
 * with a code (@by_code), it asks for no subjectAltName (400 policy): a
 * code binds the name, and its holder chooses none.  False when answered. */
static bool csr_screen(struct srv_req *r, struct enroll_job *ej, bool by_code)
{
    const unsigned char *p = ej->csr;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)ej->csr_len);
    ASN1_OCTET_STRING *san = NULL;
    char *text = NULL;
    bool ok = false;

    if (!req
        || reg_name_text(X509_REQ_get_subject_name(req), &text) != P11CA_OK)
        srv_problem(r, 400, "bad-csr", "the CSR's subject cannot be read");
    else if (!subject_no_role(r, text))
        ; /* answered */
    else if (by_code && (san = csr_san(req)))
        srv_problem(
            r, 400, "policy",
            "a CSR enrolled with a code may not ask for a subjectAltName: the code binds the name; ask an operator for a certificate with names");
    else
        ok = true;
    ASN1_OCTET_STRING_free(san);
    X509_REQ_free(req);
    free(text);
    ERR_clear_error();
    return ok;
}

/* Step 1 of POST /v1/enroll: @body into @ej; false when answered. */
static bool enroll_parse(struct srv_req *r, json_t *body, struct enroll_job *ej)
{
    static const char *const members[] = {"csr", "profile", "client_id", "code",
                                          NULL};
    const char *csr, *profile, *client, *code;

    if (!srv_json_only(r, body, members)
        || !str_member(r, body, "csr", r->s->cfg.max_body_bytes, &csr)
        || !str_member(r, body, "profile", 64, &profile)
        || !str_member(r, body, "client_id", ENROLL_CLIENT_ID_MAX, &client)
        || !str_member(r, body, "code", 256, &code))
        return false;
    /* 2. authorize: a code, or an operator */
    if (!code
        && !srv_req_require(r, SRV_ROLE_OPERATOR,
                            "an enrollment code or the operator role"))
        return false;
    if (!csr) {
        srv_problem(r, 400, "bad-csr", "give the CSR in \"csr\" (PEM)");
        return false;
    }
    if (!code && !profile) {
        srv_problem(r, 400, "bad-request", "give a profile");
        return false;
    }
    if (!code && !profile_ok(r, profile))
        return false;
    if (!csr_read(r, csr, ej) || !csr_screen(r, ej, code != NULL))
        return false;
    if (code)
        code_hash(code, ej->hash);
    if ((profile && !(ej->profile = strdup(profile)))
        || (client && !(ej->client_id = strdup(client)))) {
        srv_problem(r, 503, "busy", "out of memory");
        return false;
    }
    return true;
}

static void enroll_post(struct srv_req *r)
{
    struct enroll_job *ej = NULL;
    json_t *body = NULL;

    if (!(body = srv_req_json(r, false))
        || !(ej = job_new(r, OP_ENROLL, enroll_run_job, enroll_done))
        || !enroll_parse(r, body, ej) || !signup_take(r, ej)) {
        job_free(ej);
        json_decref(body);
        return;
    }
    json_decref(body);
    /* 3. the CA, through a worker; 4. enroll_done responds */
    job_submit(r, ej);
}

/* ------------------------------------------------------------------ */
/* POST /v1/renew                                                      */
/* ------------------------------------------------------------------ */

/* The old certificate @old against the CSR: same subject (a device does
 * not rename itself), issued here under a profile; 0 or the refusal. */
static int renew_checks(struct enroll_job *ej, const reg_cert *old,
                        const X509_NAME *subj)
{
    char *text = NULL, msg[SRV_MSG_MAX];
    int rc = P11CA_OK;

    if (!old->profile)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s was registered, not issued under a profile of this CA: it cannot be renewed here",
            reg_cert_shown(old->ca_id, old->serial));
    if (old->status != REG_ACTIVATED)
        return p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is %s: only an activated certificate is renewed",
            reg_cert_shown(old->ca_id, old->serial),
            reg_status_name(old->status));
    if (reg_name_text(subj, &text) != P11CA_OK)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    if (!old->subject || strcmp(text, old->subject) != 0) {
        snprintf(msg, sizeof(msg),
                 "a renewal keeps the subject \"%s\"; the CSR has \"%s\"",
                 old->subject ? old->subject : "", text);
        rc = job_forbid(ej, msg);
    }
    free(text);
    return rc;
}

/* A renewal keeps the names: the CSR's subjectAltName must be the old
 * certificate's, byte for byte (none if none), and the profile one that
 * enrollment serves; 0 or the refusal. */
static int renew_names(struct enroll_job *ej, ca *wc, const reg_cert *old,
                       X509_REQ *req)
{
    const unsigned char *p = old->der;
    X509 *x = d2i_X509(NULL, &p, (long)old->der_len);
    int i = x ? X509_get_ext_by_NID(x, NID_subject_alt_name, -1) : -1;
    const ASN1_OCTET_STRING *had =
        i >= 0 ? X509_EXTENSION_get_data(X509_get_ext(x, i)) : NULL;
    ASN1_OCTET_STRING *asks = csr_san(req);
    const ca_profile *prof = ca_profile_find(wc, old->profile);
    const char *why = prof ? profile_refusal(prof) : NULL;
    int rc = P11CA_OK;

    if (!x)
        rc = p11ca_err_set(P11CA_E_INTERNAL, "certificate %s does not parse",
                           reg_cert_shown(old->ca_id, old->serial));
    else if (why)
        rc = p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" is not enrolled over the network: %s; renew with p11ca issue",
            old->profile, why);
    else if ((had || asks)
             && (!had || !asks || ASN1_OCTET_STRING_cmp(had, asks) != 0))
        rc = job_forbid(
            ej,
            had ? "a renewal keeps the subjectAltName of the old certificate: the CSR must ask for exactly its names"
                : "a renewal keeps the subjectAltName of the old certificate, which has none: the CSR may not ask for one");
    ASN1_OCTET_STRING_free(asks);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

static int history_activated_cb(const reg_history *h, void *arg)
{
    (void)arg;
    return h->to == REG_ACTIVATED;
}

int srv_renewal_pending(reg *rg, const reg_cert *c, reg_cert *old, bool *yes)
{
    int rc;

    *yes = false;
    memset(old, 0, sizeof(*old));
    if (c->status != REG_NOT_ACTIVATED || !c->replaces || !c->ca_id)
        return P11CA_OK;
    /* Once activated, then deactivated: an operator's choice, not a
     * renewal waiting for its card. */
    rc = reg_history_list(rg, c->ca_id, c->serial, history_activated_cb, NULL);
    if (rc != P11CA_OK)
        return rc == 1 ? P11CA_OK : rc;
    rc = reg_get(rg, c->ca_id, c->replaces, old);
    if (rc == P11CA_E_NOTFOUND) {
        reg_cert_clear(old);
        return P11CA_OK;
    }
    if (rc != P11CA_OK)
        return rc;
    *yes = old->status == REG_ACTIVATED
           && (old->client_id
                   ? c->client_id && strcmp(old->client_id, c->client_id) == 0
                   : !c->client_id);
    return P11CA_OK;
}

/* The pending renewals of one certificate (at most this many). */
#define RENEW_PENDING_MAX 16

struct pending_serials {
    size_t n;
    char v[RENEW_PENDING_MAX][64];
    bool retire[RENEW_PENDING_MAX];
};

static int pending_serial_cb(const reg_cert *c, void *arg)
{
    struct pending_serials *ps = arg;

    if (ps->n < RENEW_PENDING_MAX)
        snprintf(ps->v[ps->n++], sizeof(ps->v[0]), "%s", c->serial);
    return 0;
}

/* One pending renewal (@serial) of @old: with the key @key (SPKI SHA-256)
 * and still valid, it is the answer (@ej->cert: a retry gets what it was
 * given); with another key, marked to be retired.  0 or an error. */
static int renew_pending_one(struct enroll_job *ej, reg *rg,
                             const reg_cert *old, const char *serial,
                             const char *key, bool *retire)
{
    reg_cert c = {0}, was = {0};
    const unsigned char *p;
    bool pending = false;
    int rc = reg_get(rg, old->ca_id, serial, &c);

    *retire = false;
    if (rc == P11CA_OK)
        rc = srv_renewal_pending(rg, &c, &was, &pending);
    if (rc == P11CA_OK && pending && !ej->cert && c.key_hash && c.der
        && strcmp(c.key_hash, key) == 0 && c.not_after > time(NULL)) {
        p = c.der;
        ej->cert = d2i_X509(NULL, &p, (long)c.der_len);
        if (!ej->cert)
            rc = p11ca_err_set(P11CA_E_REGISTRY,
                               "certificate %s in the registry does not parse",
                               reg_cert_shown(c.ca_id, c.serial));
        else
            enroll_serial(ej->cert, ej->serial, sizeof(ej->serial));
    } else if (rc == P11CA_OK && pending) {
        *retire = true;
    }
    reg_cert_clear(&c);
    reg_cert_clear(&was);
    return rc;
}

/* The renewals of @old that wait for their card's first connection
 * (@ps): a retry with the same key (SPKI SHA-256 @key) gets the one it was
 * given (@ej->cert, nothing recorded); the others are marked for
 * renew_retire.  0 or an error. */
static int renew_pending(struct enroll_job *ej, reg *rg, const reg_cert *old,
                         const char *key, struct pending_serials *ps)
{
    reg_filter f = {.ca_id = old->ca_id,
                    .replaces = old->serial,
                    .status = REG_NOT_ACTIVATED,
                    .limit = RENEW_PENDING_MAX};
    int rc = reg_search(rg, &f, pending_serial_cb, ps);

    for (size_t i = 0; rc == P11CA_OK && i < ps->n; i++)
        rc = renew_pending_one(ej, rg, old, ps->v[i], key, &ps->retire[i]);
    ej->replayed = rc == P11CA_OK && ej->cert != NULL;
    return rc;
}

/* A renewal with another key (a re-key asked again) was issued: the
 * pending ones it replaces are revoked (superseded).  Each may be in a
 * client's hands, so none is deleted; and one left not-activated would
 * still be swapped in at its first connection.  A failure is logged: the
 * new certificate is issued and recorded already. */
static void renew_retire(struct enroll_job *ej, ca *wc, const reg_cert *old,
                         const struct pending_serials *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (!ps->retire[i])
            continue;
        if (reg_set_status(
                ca_registry(wc), old->ca_id, ps->v[i], REG_REVOKED,
                CRL_REASON_SUPERSEDED, 0, ej->j.actor,
                "a renewal with another key replaces this one, never confirmed")
            != P11CA_OK) {
            srv_log("renewal %s stays pending: %s",
                    reg_cert_shown(old->ca_id, ps->v[i]), p11ca_err_message());
            continue;
        }
        srv_ocsp_cert_changed(ej->j.s, wc, old->ca_id, ps->v[i], false);
        snprintf(ej->revoked_serial, sizeof(ej->revoked_serial), "%s",
                 ps->v[i]);
        ej->old_revoked = true;
    }
}

static void renew_run(struct srv_job *j, ca *wc)
{
    struct enroll_job *ej = (struct enroll_job *)j;
    reg *rg = ca_registry(wc);
    enroll_issuer *is = NULL;
    reg_cert old = {0};
    X509_REQ *req = NULL;
    enroll_req rq = {.wait = 0};
    struct pending_serials ps = {0};
    char key[65];
    int rc;

    if (!(req = job_csr(ej)))
        return;
    rc = ca_set_actor(wc, j->actor);
    if (rc == P11CA_OK)
        rc = reg_get(rg, ej->old_ca_id, ej->old_serial, &old);
    if (rc == P11CA_OK
        && (rc = renew_checks(ej, &old, X509_REQ_get_subject_name(req))))
        goto out;
    if (rc == P11CA_OK && (rc = renew_names(ej, wc, &old, req)))
        goto out;
    if (rc == P11CA_OK)
        rc = enroll_spki_sha256(X509_REQ_get0_pubkey(req), key);
    if (rc == P11CA_OK)
        rc = renew_pending(ej, rg, &old, key, &ps);
    rq.profile = old.profile;
    rq.client_id = old.client_id ? old.client_id : "";
    rq.replaces = old.serial;
    rq.subject = X509_REQ_get_subject_name(req);
    if (rc == P11CA_OK)
        rc = enroll_issuer_for_ca(wc, &is);
    /* The new certificate is recorded not-activated, linked to the old
     * one, which keeps the client ID and keeps working: an answer lost on
     * the way locks no device out.  The swap (enroll_supersede) happens
     * at the new certificate's first TLS connection (tls.c,
     * confirm_decide), which proves the device holds it. */
    if (rc == P11CA_OK && !ej->cert) {
        rc = job_issue(ej, is, &rq);
        if (rc == P11CA_OK) {
            srv_ocsp_cert_changed(j->s, wc, old.ca_id, ej->serial, true);
            renew_retire(ej, wc, &old, &ps);
        }
    }
    if (rc == P11CA_OK)
        job_chain(ej, is, wc);
out:
    if (rc != P11CA_OK && !ej->forbidden)
        srv_job_set_error(j, rc);
    enroll_issuer_free(is);
    reg_cert_clear(&old);
    X509_REQ_free(req);
}

static void renew_post(struct srv_req *r)
{
    static const char *const members[] = {"csr", NULL};
    struct enroll_job *ej = NULL;
    json_t *body = NULL;
    const char *csr;

    /* 2. authorize: the caller's own certificate, of this CA */
    if (!srv_req_authorize(r, false))
        return;
    if (r->conn->ca_id != ca_registry_id(r->s->ca)) {
        srv_problem(r, 403, "forbidden",
                    "only a certificate of this CA is renewed here");
        return;
    }
    /* 1. parse */
    if (!(body = srv_req_json(r, false))
        || !(ej = job_new(r, OP_RENEW, renew_run, enroll_done))
        || !srv_json_only(r, body, members)
        || !str_member(r, body, "csr", r->s->cfg.max_body_bytes, &csr)) {
        job_free(ej);
        json_decref(body);
        return;
    }
    if (!csr)
        srv_problem(r, 400, "bad-csr", "give the CSR in \"csr\" (PEM)");
    if (!csr || !csr_read(r, csr, ej)) {
        job_free(ej);
        json_decref(body);
        return;
    }
    json_decref(body);
    ej->old_ca_id = r->conn->ca_id;
    snprintf(ej->old_serial, sizeof(ej->old_serial), "%s", r->conn->serial);
    /* 3. the CA, through a worker; 4. enroll_done responds */
    job_submit(r, ej);
}

const struct srv_route srv_routes_enroll[] = {
    {EVHTTP_REQ_POST, "/v1/enrollment-codes", code_create, SRV_ROLE_OPERATOR,
     false},
    /* A code or an operator: enroll_parse decides. */
    {EVHTTP_REQ_POST, "/v1/enroll", enroll_post, SRV_ROLE_ANON, false},
    /* Any verified client, for itself only (renew_post). */
    {EVHTTP_REQ_POST, "/v1/renew", renew_post, SRV_ROLE_DEVICE, false},
    {0},
};
