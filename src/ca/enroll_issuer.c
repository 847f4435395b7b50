/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment issuer: the dispatch of its operations and the local
 * implementation on a CA directory (profiles, issuance, registry). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>

#include "ca/enroll.h"
#include "ca/internal.h"
#include "common/log.h"

#define CRL_REASON_CESSATION 5

struct local_issuer {
    enroll_issuer base;
    ca *c;
    bool borrowed; /* enroll_issuer_for_ca: the caller closes @c */
};

/* The newest live certificate of one key, while reg_search walks. */
struct key_find {
    const char *key_sha256;
    int64_t now;
    int64_t best_at;
    unsigned char *der;
    size_t der_len;
};

/* Who holds a client ID (activated), while reg_search walks. */
struct holder {
    int64_t ca_id; /* the CA of @except */
    const char *except;
    int64_t holder_ca_id;
    char serial[64];
};

static ca *lca(enroll_issuer *is)
{
    return ((struct local_issuer *)is)->c;
}

static const ca_profile *profile_get(ca *c, const char *name)
{
    const ca_profile *p = ca_profile_find(c, name ? name : "");

    if (!p)
        p11ca_err_set(P11CA_E_POLICY,
                      "the CA in %s has no profile \"%s\" (see p11ca ca show)",
                      ca_dir(c), name ? name : "");
    return p;
}

/* A key type the token can make for rule @r, as text ("rsa:2048"). */
static bool rule_spec(const ca_key_rule *r, char *buf, size_t len)
{
    const char *nist;

    switch (r->base_id) {
    case EVP_PKEY_RSA:
        snprintf(buf, len, "rsa:%u", r->min_bits < 2048 ? 2048 : r->min_bits);
        return r->max_bits >= 2048;
    case EVP_PKEY_EC:
        nist = EC_curve_nid2nist(r->curve_nid);
        snprintf(buf, len, "ec:%s", nist ? nist : "");
        return nist != NULL;
    case EVP_PKEY_ED25519:
        snprintf(buf, len, "ed25519");
        return true;
    default:
        return false;
    }
}

static int local_default_key(enroll_issuer *is, const char *profile,
                             p11_key_spec *out)
{
    const ca_profile *p = profile_get(lca(is), profile);
    char buf[64];

    if (!p)
        return P11CA_E_POLICY;
    for (size_t i = 0; i < p->n_rules; i++)
        if (rule_spec(&p->rules[i], buf, sizeof(buf))
            && p11_key_spec_parse(buf, out) == CKR_OK)
            return P11CA_OK;
    if (p11_key_spec_parse("ec:P-256", out) != CKR_OK)
        return p11ca_err_set(P11CA_E_INTERNAL, "no default key type");
    return P11CA_OK;
}

static bool rule_allows(const ca_key_rule *r, const p11_key_spec *s)
{
    switch (r->base_id) {
    case EVP_PKEY_RSA:
        return s->kind == P11_KEY_RSA && s->bits >= r->min_bits
               && s->bits <= r->max_bits;
    case EVP_PKEY_EC:
        return s->kind == P11_KEY_EC && s->curve_nid == r->curve_nid;
    case EVP_PKEY_ED25519:
        return s->kind == P11_KEY_ED25519;
    default:
        return false;
    }
}

static int check_key(const ca_profile *p, const p11_key_spec *spec)
{
    for (size_t i = 0; i < p->n_rules; i++)
        if (rule_allows(&p->rules[i], spec))
            return P11CA_OK;
    return p11ca_err_set(
        P11CA_E_POLICY, "profile \"%s\" does not allow %s keys (key_types: %s)",
        p->name, p11_key_spec_name(spec),
        p->key_types ? p->key_types : "the default list");
}

/* What the enrollment CSR cannot satisfy, refused before a key is made. */
static int check_profile(const ca_profile *p)
{
    if (p->is_ca)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" makes CA certificates; enrollment is for end-entity certificates",
            p->name);
    if (p->san == CA_SAN_REQUIRED)
        return p11ca_err_set(
            P11CA_E_POLICY,
            "profile \"%s\" requires a subjectAltName, which an enrollment request does not carry",
            p->name);
    return P11CA_OK;
}

static int holder_cb(const reg_cert *c, void *arg)
{
    struct holder *h = arg;

    if (h->except && c->ca_id == h->ca_id && strcmp(h->except, c->serial) == 0)
        return 0;
    snprintf(h->serial, sizeof(h->serial), "%s", c->serial);
    h->holder_ca_id = c->ca_id;
    return 1;
}

static int check_client_id(ca *c, const ca_profile *p, const enroll_req *rq)
{
    struct holder h = {.ca_id = ca_registry_id(c), .except = rq->replaces};
    reg_filter f = {.client_id = rq->client_id, .status = REG_ACTIVATED};
    int rc;

    if (p->client_id == CA_CLIENT_ID_NONE)
        return P11CA_OK;
    rc = reg_search(ca_registry(c), &f, holder_cb, &h);
    if (rc < 0)
        return rc;
    if (!h.serial[0])
        return P11CA_OK;
    return p11ca_err_set(
        P11CA_E_EXISTS,
        "client ID \"%s\" is held by activated certificate %s. On the card that holds it, use --renew or --rekey; if that card is lost, revoke it first (p11ca cert revoke --client-id %s)",
        rq->client_id, reg_cert_shown(h.holder_ca_id, h.serial), rq->client_id);
}

static int check_replaces(ca *c, const char *serial)
{
    reg_cert old = {0};
    int rc = reg_get(ca_registry(c), ca_registry_id(c), serial, &old);

    if (rc == P11CA_OK && old.status == REG_REVOKED)
        rc = p11ca_err_set(
            P11CA_E_STATE,
            "certificate %s is revoked: it cannot be renewed; enroll again (with --cleanup to remove the old objects from the card)",
            reg_cert_shown(old.ca_id, old.serial));
    reg_cert_clear(&old);
    return rc;
}

/* The issue options of @rq under @p: no client ID for client_id = none. */
static ca_issue_opts issue_opts(const ca_profile *p, const enroll_req *rq)
{
    ca_issue_opts o = {
        .profile = rq->profile,
        .days = rq->days,
        .client_id = p->client_id == CA_CLIENT_ID_NONE ? NULL : rq->client_id,
    };

    return o;
}

/* Everything the CA side can refuse, before the card makes a key: the
 * request against the profile and the policy, then the CA key itself. */
static int local_check(enroll_issuer *is, const enroll_req *rq,
                       const p11_key_spec *spec)
{
    ca *c = lca(is);
    const ca_profile *p = profile_get(c, rq->profile);
    ca_issue_opts o;
    int rc = p ? P11CA_OK : P11CA_E_POLICY;

    if (rc == P11CA_OK && !ca_cert(c))
        rc = p11ca_err_set(P11CA_E_STATE, "the CA in %s has no certificate yet",
                           ca_dir(c));
    if (rc == P11CA_OK)
        rc = check_profile(p);
    if (rc == P11CA_OK) {
        o = issue_opts(p, rq);
        rc = ca_req_precheck(c, &o, rq->subject);
    }
    if (rc == P11CA_OK && spec)
        rc = check_key(p, spec);
    if (rc == P11CA_OK && rq->replaces)
        rc = check_replaces(c, rq->replaces);
    if (rc == P11CA_OK)
        rc = check_client_id(c, p, rq);
    if (rc == P11CA_OK)
        rc = ca_check_signing(c);
    return rc;
}

static int key_find_cb(const reg_cert *c, void *arg)
{
    struct key_find *kf = arg;
    unsigned char *copy;

    if ((c->status != REG_ACTIVATED && c->status != REG_NOT_ACTIVATED)
        || !c->key_hash || strcmp(c->key_hash, kf->key_sha256) != 0
        || c->not_after <= kf->now || c->recorded_at < kf->best_at || !c->der)
        return 0;
    copy = malloc(c->der_len);
    if (!copy)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    memcpy(copy, c->der, c->der_len);
    free(kf->der);
    kf->der = copy;
    kf->der_len = c->der_len;
    kf->best_at = c->recorded_at;
    return 0;
}

static int local_find_for_key(enroll_issuer *is, const char *client_id,
                              const char *key_sha256, X509 **out)
{
    struct key_find kf = {.key_sha256 = key_sha256, .now = time(NULL)};
    reg_filter f = {.client_id = client_id, .ca_id = ca_registry_id(lca(is))};
    const unsigned char *p;
    int rc;

    *out = NULL;
    rc = reg_search(ca_registry(lca(is)), &f, key_find_cb, &kf);
    if (rc == P11CA_OK && kf.der) {
        p = kf.der;
        *out = d2i_X509(NULL, &p, (long)kf.der_len);
        if (!*out)
            rc = p11ca_err_set(
                P11CA_E_REGISTRY,
                "the registry holds a certificate that does not parse");
    }
    free(kf.der);
    return rc;
}

/* Whether the certificate @serial is activated (it holds its client ID). */
static bool is_activated(ca *c, const char *serial)
{
    reg_cert rec = {0};
    bool yes =
        reg_get(ca_registry(c), ca_registry_id(c), serial, &rec) == P11CA_OK
        && rec.status == REG_ACTIVATED;

    reg_cert_clear(&rec);
    return yes;
}

static int local_issue(enroll_issuer *is, const enroll_req *rq,
                       const unsigned char *csr, size_t len, X509 **out)
{
    ca *c = lca(is);
    const ca_profile *p = profile_get(c, rq->profile);
    ca_issue_opts o;
    ca_req *r = NULL;
    int rc;

    *out = NULL;
    if (!p)
        return P11CA_E_POLICY;
    o = issue_opts(p, rq);
    /* The old certificate keeps the client ID until the new one is on the
     * token: enroll_supersede swaps them. */
    o.not_activated = rq->replaces && is_activated(c, rq->replaces);
    o.replaces = rq->replaces;
    ca_set_wait(c, rq->wait);
    rc = ca_req_new(c, csr, len, "the enrollment request", &o, &r);
    if (rc == P11CA_OK)
        rc = ca_req_sign(c, r);
    if (rc == P11CA_OK)
        rc = ca_req_record(c, r);
    /* Recorded: issued.  A reference, not a copy: nothing may fail after
     * the record (the caller would release what was given). */
    if (rc == P11CA_OK && X509_up_ref(ca_req_cert(r)))
        *out = ca_req_cert(r);
    /* The key is loaded: sign the audit head if it is due.  A failure
     * does not undo the issuance; the next signing command signs it. */
    if (rc == P11CA_OK && ca_audit_checkpoint(c, false, NULL) != P11CA_OK)
        LOG_ERR(CA, "enroll: the audit head was not signed: %s",
                p11ca_err_message());
    ca_req_free(r);
    return rc;
}

static int local_chain(enroll_issuer *is, STACK_OF(X509) * *out)
{
    ca *c = lca(is);
    STACK_OF(X509) *sk = sk_X509_new_null();
    STACK_OF(X509) *above = ca_chain(c);
    bool ok = sk != NULL;

    if (ok && ca_cert(c))
        ok = sk_X509_push(sk, ca_cert(c)) > 0 && X509_up_ref(ca_cert(c));
    for (int i = 0; ok && i < sk_X509_num(above); i++)
        ok = sk_X509_push(sk, sk_X509_value(above, i)) > 0
             && X509_up_ref(sk_X509_value(above, i));
    if (!ok) {
        sk_X509_pop_free(sk, X509_free);
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    }
    *out = sk;
    return P11CA_OK;
}

static int local_get(enroll_issuer *is, const char *serial, reg_cert *out)
{
    ca *c = lca(is);

    return reg_get(ca_registry(c), ca_registry_id(c), serial, out);
}

/* The renewal as the new certificate's profile wants it (a profile gone
 * from ca.cnf since: the default, revoke). */
static int local_supersede(enroll_issuer *is, const char *serial,
                           const char *old, const char *key_uri)
{
    ca *c = lca(is);
    reg_supersede_how how = REG_SUPERSEDE_REVOKE;
    const ca_profile *p;
    int64_t grace = 0;
    reg_cert rec = {0};
    int rc = reg_get(ca_registry(c), ca_registry_id(c), serial, &rec);

    (void)key_uri;
    p = rc == P11CA_OK ? ca_profile_find(c, rec.profile) : NULL;
    if (p) {
        how = p->supersede;
        grace = p->supersede_grace;
    }
    if (rc == P11CA_OK)
        rc = reg_supersede(ca_registry(c), ca_registry_id(c), serial, old, how,
                           grace, ca_get_actor(c));
    reg_cert_clear(&rec);
    return rc;
}

static int local_retire(enroll_issuer *is, const char *serial, const char *why)
{
    ca *c = lca(is);

    return reg_set_status(ca_registry(c), ca_registry_id(c), serial,
                          REG_REVOKED, CRL_REASON_CESSATION, 0, ca_get_actor(c),
                          why);
}

static void local_free(enroll_issuer *is)
{
    if (!((struct local_issuer *)is)->borrowed)
        ca_close(lca(is));
    free(is);
}

static const struct enroll_issuer_ops local_ops = {
    .kind = "local CA",
    .default_key = local_default_key,
    .check = local_check,
    .find_for_key = local_find_for_key,
    .issue = local_issue,
    .chain = local_chain,
    .get = local_get,
    .supersede = local_supersede,
    .retire = local_retire,
    .free = local_free,
};

int enroll_issuer_local(const char *dir, const char *module,
                        const char *pin_source, enroll_issuer **out)
{
    struct local_issuer *li = calloc(1, sizeof(*li));
    int rc;

    *out = NULL;
    if (!li)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    li->base.ops = &local_ops;
    rc = ca_open(dir, &li->c);
    if (rc == P11CA_OK)
        rc = ca_set_access(li->c, module, pin_source);
    if (rc != P11CA_OK) {
        local_free(&li->base);
        return rc;
    }
    snprintf(li->base.name, sizeof(li->base.name), "the CA in %s",
             ca_dir(li->c));
    *out = &li->base;
    return P11CA_OK;
}

int enroll_issuer_for_ca(ca *c, enroll_issuer **out)
{
    struct local_issuer *li = calloc(1, sizeof(*li));

    *out = NULL;
    if (!li)
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    li->base.ops = &local_ops;
    li->c = c;
    li->borrowed = true;
    snprintf(li->base.name, sizeof(li->base.name), "the CA in %s", ca_dir(c));
    *out = &li->base;
    return P11CA_OK;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

void enroll_issuer_free(enroll_issuer *is)
{
    if (is)
        is->ops->free(is);
}

const char *enroll_issuer_name(enroll_issuer *is)
{
    return is->name;
}

int enroll_default_key(enroll_issuer *is, const char *profile,
                       p11_key_spec *out)
{
    return is->ops->default_key(is, profile, out);
}

int enroll_check(enroll_issuer *is, const enroll_req *rq,
                 const p11_key_spec *spec)
{
    return is->ops->check(is, rq, spec);
}

int enroll_find_for_key(enroll_issuer *is, const char *client_id,
                        const char *key_sha256, X509 **out)
{
    return is->ops->find_for_key(is, client_id, key_sha256, out);
}

int enroll_issue(enroll_issuer *is, const enroll_req *rq,
                 const unsigned char *csr, size_t len, X509 **out)
{
    return is->ops->issue(is, rq, csr, len, out);
}

int enroll_chain(enroll_issuer *is, STACK_OF(X509) * *out)
{
    *out = NULL;
    return is->ops->chain(is, out);
}

int enroll_get(enroll_issuer *is, const char *serial, reg_cert *out)
{
    return is->ops->get(is, serial, out);
}

int enroll_supersede(enroll_issuer *is, const char *serial, const char *old,
                     const char *key_uri)
{
    return is->ops->supersede(is, serial, old, key_uri);
}

int enroll_retire(enroll_issuer *is, const char *serial, const char *why)
{
    return is->ops->retire(is, serial, why);
}
