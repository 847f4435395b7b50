/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the enrollment flow (src/ca/enroll_flow.c) driven without
 * the CLI: a per-run SoftHSM2 token, a CA in a temporary directory, and an
 * issuer of the test's own behind the issuer seam that fails on demand. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca/enroll.h"

#define TOKEN_LABEL "enroll-unit"
#define USER_PIN    "4711"
#define MAX_NOTES   8

/* An issuer in front of the local CA: what item 7's network issuer will
 * be, with faults.  @fail_issue: the next issue calls fail before the CA
 * signs (a network error); @lose_issued: they fail after it recorded the
 * certificate (the answer lost on the way back). */
struct test_issuer {
    enroll_issuer base;
    enroll_issuer *inner;
    int fail_issue;
    int lose_issued;
    int issued;
};

/* Per-run state: the token, the CA, the flow's environment. */
struct fixture {
    char dir[256];
    p11_ctx *p11;
    p11_uri *uri;
    p11_token *tok;
    p11_auth auth;
    struct test_issuer *is;
    enroll_env env;
    char notes[MAX_NOTES][512];
    int note_rc[MAX_NOTES];
    int n_notes;
};

static struct fixture fx;

static struct test_issuer *ti(enroll_issuer *is)
{
    return (struct test_issuer *)is;
}

static int ti_default_key(enroll_issuer *is, const char *profile,
                          p11_key_spec *out)
{
    return enroll_default_key(ti(is)->inner, profile, out);
}

static int ti_check(enroll_issuer *is, const enroll_req *rq,
                    const p11_key_spec *spec)
{
    return enroll_check(ti(is)->inner, rq, spec);
}

static int ti_find_for_key(enroll_issuer *is, const char *client_id,
                           const char *key_sha256, X509 **out)
{
    return enroll_find_for_key(ti(is)->inner, client_id, key_sha256, out);
}

static int ti_issue(enroll_issuer *is, const enroll_req *rq,
                    const unsigned char *csr, size_t len, X509 **out)
{
    struct test_issuer *t = ti(is);
    int rc;

    *out = NULL;
    if (t->fail_issue > 0) {
        t->fail_issue--;
        return p11ca_err_set(P11CA_E_IO, "the issuer is unreachable");
    }
    rc = enroll_issue(t->inner, rq, csr, len, out);
    if (rc == P11CA_OK)
        t->issued++;
    if (rc == P11CA_OK && t->lose_issued > 0) {
        t->lose_issued--;
        X509_free(*out);
        *out = NULL;
        rc = p11ca_err_set(P11CA_E_IO, "the issuer's answer was lost");
    }
    return rc;
}

static int ti_chain(enroll_issuer *is, STACK_OF(X509) * *out)
{
    return enroll_chain(ti(is)->inner, out);
}

static int ti_get(enroll_issuer *is, const char *serial, reg_cert *out)
{
    return enroll_get(ti(is)->inner, serial, out);
}

static int ti_supersede(enroll_issuer *is, const char *serial, const char *old,
                        const char *key_uri)
{
    return enroll_supersede(ti(is)->inner, serial, old, key_uri);
}

static int ti_retire(enroll_issuer *is, const char *serial, const char *why)
{
    return enroll_retire(ti(is)->inner, serial, why);
}

static void ti_free(enroll_issuer *is)
{
    enroll_issuer_free(ti(is)->inner);
    free(is);
}

static const struct enroll_issuer_ops ti_ops = {
    .kind = "test issuer",
    .default_key = ti_default_key,
    .check = ti_check,
    .find_for_key = ti_find_for_key,
    .issue = ti_issue,
    .chain = ti_chain,
    .get = ti_get,
    .supersede = ti_supersede,
    .retire = ti_retire,
    .free = ti_free,
};

static int pin_cb(char *pin, size_t max, void *arg)
{
    (void)arg;
    if (max < strlen(USER_PIN))
        return -1;
    memcpy(pin, USER_PIN, strlen(USER_PIN));
    return (int)strlen(USER_PIN);
}

static void note_cb(int rc, const char *msg, void *arg)
{
    struct fixture *f = arg;

    if (f->n_notes < MAX_NOTES) {
        snprintf(f->notes[f->n_notes], sizeof(f->notes[0]), "%s", msg);
        f->note_rc[f->n_notes++] = rc;
    }
}

static bool noted(const char *what)
{
    for (int i = 0; i < fx.n_notes; i++)
        if (strstr(fx.notes[i], what))
            return true;
    return false;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A SoftHSM2 token and a CA (software key) in a new directory. */
static int setup(void **state)
{
    const char *module = getenv("SOFTHSM_MODULE");
    const char *builddir = getenv("top_builddir");
    const char *tmp = getenv("TMPDIR");
    char path[320], cadir[288];
    FILE *f;
    p11_config cfg = {0};
    ca_init_opts io = {0};

    (void)state;
    if (!module || !*module || access(module, R_OK) != 0 || !builddir)
        return -1;
    if (!tmp || !*tmp)
        tmp = "/tmp";
    /* Under $TMPDIR, as every test; the name goes into rm -rf '...'. */
    if (strchr(tmp, '\'')
        || snprintf(fx.dir, sizeof(fx.dir), "%s/p11ca-enroll-unit.XXXXXX", tmp)
               >= (int)sizeof(fx.dir)
        || !mkdtemp(fx.dir))
        return -1;
    snprintf(path, sizeof(path), "%s/softhsm2.conf", fx.dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "directories.tokendir = %s\nobjectstore.backend = file\n"
            "log.level = ERROR\nslots.removable = false\n",
            fx.dir);
    fclose(f);
    /* The test's own token and PIN state, and the p11ca.so just built. */
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(path, sizeof(path), "%s/state", fx.dir);
    setenv("XDG_STATE_HOME", path, 1);
    snprintf(path, sizeof(path), "%s/provider/.libs", builddir);
    setenv("OPENSSL_MODULES", path, 1);
    if (run("softhsm2-util --init-token --free --label %s --pin %s "
            "--so-pin 123456 >/dev/null",
            TOKEN_LABEL, USER_PIN)
        != 0)
        return -1;
    snprintf(cadir, sizeof(cadir), "%s/ca", fx.dir);
    snprintf(path, sizeof(path), "%s/ca.key", fx.dir);
    io.dir = cadir;
    io.subject = "/CN=Enroll Unit CA";
    io.key_file = path;
    io.generate = "ec:P-256";
    if (ca_init(&io) != P11CA_OK) {
        fprintf(stderr, "# ca_init: %s\n", p11ca_err_message());
        return -1;
    }
    cfg.module_path = module;
    fx.p11 = p11_ctx_new(&cfg);
    fx.auth.pin_value = USER_PIN;
    if (!fx.p11 || p11_uri_parse("pkcs11:token=" TOKEN_LABEL, &fx.uri) != CKR_OK
        || p11_token_find_one(fx.p11, fx.uri, &fx.tok) != CKR_OK
        || p11_token_login(fx.tok, &fx.auth) != CKR_OK)
        return -1;
    fx.env.p11 = fx.p11;
    fx.env.tok = fx.tok;
    fx.env.auth = &fx.auth;
    fx.env.module = module;
    fx.env.pin = pin_cb;
    fx.env.note = note_cb;
    fx.env.note_arg = &fx;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    p11_uri_free(fx.uri);
    p11_ctx_free(fx.p11);
    if (fx.dir[0])
        run("rm -rf '%s'", fx.dir);
    return 0;
}

/* A fresh test issuer on the CA for each test. */
static int issuer_setup(void **state)
{
    char cadir[288];

    (void)state;
    snprintf(cadir, sizeof(cadir), "%s/ca", fx.dir);
    fx.is = calloc(1, sizeof(*fx.is));
    if (!fx.is || enroll_issuer_local(cadir, NULL, NULL, &fx.is->inner))
        return -1;
    fx.is->base.ops = &ti_ops;
    snprintf(fx.is->base.name, sizeof(fx.is->base.name), "the test issuer");
    fx.env.is = &fx.is->base;
    fx.n_notes = 0;
    return 0;
}

static int issuer_teardown(void **state)
{
    (void)state;
    enroll_issuer_free(&fx.is->base);
    fx.is = NULL;
    fx.env.is = NULL;
    return 0;
}

static enroll_opts opts_new(const char *cn)
{
    static char subj[64];
    enroll_opts o = {
        .mode = ENROLL_NEW, .profile = "client", .key_type = "ec:P-256"};

    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    o.subject = subj;
    return o;
}

/* The pair under @label: a key (0/1) and how many certificates. */
static void assert_pair(const char *label, bool key, size_t certs)
{
    enroll_pair p = {0};

    assert_int_equal(enroll_pair_load(fx.p11, fx.tok, label, &p), CKR_OK);
    assert_int_equal(p.priv != NULL, key);
    assert_int_equal(p.n, certs);
    enroll_pair_clear(&p);
}

/* The certificate carries the token key's public key. */
static void assert_cert_matches_key(const enroll_result *r)
{
    EVP_PKEY *pk = NULL;
    char want[65], got[65];

    assert_int_equal(p11_obj_public_key(r->key, NULL, NULL, &pk), CKR_OK);
    assert_int_equal(enroll_spki_sha256(pk, want), P11CA_OK);
    assert_int_equal(enroll_spki_sha256(X509_get0_pubkey(r->cert), got),
                     P11CA_OK);
    assert_string_equal(want, got);
    EVP_PKEY_free(pk);
}

static void test_enroll_step_for_each_state(void **state)
{
    (void)state;
    /* Nothing under the label. */
    assert_int_equal(enroll_step_for(false, 0, false, false),
                     ENROLL_STEP_NEW_KEY);
    assert_int_equal(enroll_step_for(false, 0, false, true),
                     ENROLL_STEP_NEW_KEY);
    assert_int_equal(enroll_step_for(false, 0, true, false),
                     ENROLL_STEP_NO_RESUME);
    /* A key without certificate. */
    assert_int_equal(enroll_step_for(true, 0, false, false),
                     ENROLL_STEP_UNFINISHED);
    assert_int_equal(enroll_step_for(true, 0, true, false), ENROLL_STEP_RESUME);
    assert_int_equal(enroll_step_for(true, 0, false, true),
                     ENROLL_STEP_CLEANUP);
    /* Certificates without key: nothing to resume with. */
    assert_int_equal(enroll_step_for(false, 1, false, false),
                     ENROLL_STEP_UNFINISHED);
    assert_int_equal(enroll_step_for(false, 1, true, false),
                     ENROLL_STEP_UNFINISHED);
    assert_int_equal(enroll_step_for(false, 2, false, true),
                     ENROLL_STEP_CLEANUP);
}

static void test_enroll_new_writes_key_and_cert(void **state)
{
    enroll_opts o = opts_new("new-user");
    enroll_result r;

    (void)state;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    assert_string_equal(r.action, "enrolled");
    assert_string_equal(r.label, "new-user");
    assert_string_equal(r.client_id, "new-user");
    assert_string_equal(r.profile, "client");
    assert_non_null(r.cert_obj);
    assert_false(r.reused);
    assert_string_equal(r.old_serial, "");
    assert_int_equal(fx.is->issued, 1);
    assert_cert_matches_key(&r);
    assert_pair("new-user", true, 1);
    enroll_result_clear(&r);
}

static void test_enroll_refuses_an_enrolled_label(void **state)
{
    enroll_opts o = opts_new("twice-user");
    enroll_result r;

    (void)state;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    enroll_result_clear(&r);
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_INPUT);
    assert_non_null(strstr(p11ca_err_message(), "with a certificate already"));
    assert_null(r.cert);
    assert_int_equal(fx.is->issued, 1);
    assert_pair("twice-user", true, 1);
}

static void test_enroll_without_names_is_a_usage_error(void **state)
{
    enroll_opts o = {.mode = ENROLL_NEW, .profile = "client"};
    enroll_result r;

    (void)state;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_USAGE);
    assert_string_equal(p11ca_err_message(),
                        "give --subject /CN=.., --client-id or --label");
    assert_int_equal(fx.is->issued, 0);
}

/* The issuer cannot be reached: the key stays, nothing was issued; a
 * plain enroll is refused, --resume issues for that key. */
static void test_enroll_issuer_down_then_resume(void **state)
{
    enroll_opts o = opts_new("down-user");
    enroll_result r;

    (void)state;
    fx.is->fail_issue = 1;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_IO);
    assert_string_equal(p11ca_err_message(),
                        "enroll: the issuer is unreachable");
    assert_pair("down-user", true, 0);

    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_INPUT);
    assert_non_null(strstr(p11ca_err_message(), "did not finish"));
    assert_pair("down-user", true, 0);

    o.resume = true;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    assert_string_equal(r.action, "resumed");
    assert_false(r.reused);
    assert_int_equal(fx.is->issued, 1);
    assert_cert_matches_key(&r);
    assert_pair("down-user", true, 1);
    enroll_result_clear(&r);
}

/* The issuer recorded the certificate but its answer was lost: --resume
 * writes that certificate, without a second issuance. */
static void test_enroll_lost_answer_resume_reuses(void **state)
{
    enroll_opts o = opts_new("lost-user");
    enroll_result r;

    (void)state;
    fx.is->lose_issued = 1;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_IO);
    assert_int_equal(fx.is->issued, 1);
    assert_pair("lost-user", true, 0);

    o.resume = true;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    assert_string_equal(r.action, "resumed");
    assert_true(r.reused);
    assert_int_equal(fx.is->issued, 1);
    assert_cert_matches_key(&r);
    assert_pair("lost-user", true, 1);
    enroll_result_clear(&r);
}

/* --cleanup revokes what was issued for the left key, deletes it and
 * enrolls afresh; the notices come through the callback. */
static void test_enroll_cleanup_revokes_and_starts_over(void **state)
{
    enroll_opts o = opts_new("clean-user");
    enroll_result r;
    reg_cert rec = {0};
    char old[64] = "";

    (void)state;
    fx.is->lose_issued = 1;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_IO);
    assert_int_equal(fx.is->issued, 1);

    o.cleanup = true;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    assert_string_equal(r.action, "enrolled");
    assert_int_equal(fx.is->issued, 2);
    assert_true(noted("revoked certificate "));
    assert_true(noted("removed the unfinished enrollment \"clean-user\""));
    for (int i = 0; i < fx.n_notes; i++)
        assert_int_equal(fx.note_rc[i], P11CA_OK);
    assert_pair("clean-user", true, 1);

    /* The first certificate is revoked: the new key's is the live one. */
    sscanf(fx.notes[0], "revoked certificate %63[0-9a-fA-F]", old);
    assert_true(old[0] != '\0');
    assert_int_equal(enroll_get(fx.env.is, old, &rec), P11CA_OK);
    assert_int_equal(rec.status, REG_REVOKED);
    reg_cert_clear(&rec);
    assert_int_equal(enroll_get(fx.env.is, r.serial, &rec), P11CA_OK);
    assert_int_equal(rec.status, REG_ACTIVATED);
    reg_cert_clear(&rec);
    enroll_result_clear(&r);
}

static void test_enroll_resume_without_key_is_refused(void **state)
{
    enroll_opts o = opts_new("nothing-user");
    enroll_result r;

    (void)state;
    o.resume = true;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_E_INPUT);
    assert_non_null(strstr(p11ca_err_message(), "nothing to resume"));
    assert_pair("nothing-user", false, 0);
}

/* --renew: a new certificate for the same key, linked to the old one,
 * which leaves the token. */
static void test_enroll_renew_keeps_the_key(void **state)
{
    enroll_opts o = opts_new("renew-user");
    enroll_opts ro = {.mode = ENROLL_RENEW, .label = "renew-user"};
    enroll_result r, rr;
    reg_cert rec = {0};
    char text[REG_SERIAL_TEXT_MAX];

    (void)state;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    assert_int_equal(enroll_run(&fx.env, &ro, &rr), P11CA_OK);
    assert_string_equal(rr.action, "renewed");
    /* The registry's form of the serial printed before. */
    reg_serial_text(rr.old_serial, text, sizeof(text));
    assert_string_equal(text, r.serial);
    assert_string_equal(rr.profile, "client");
    assert_string_equal(rr.client_id, "renew-user");
    assert_true(p11_obj_same(rr.key, r.key));
    assert_string_not_equal(rr.serial, r.serial);
    assert_pair("renew-user", true, 1);
    assert_int_equal(enroll_get(fx.env.is, r.serial, &rec), P11CA_OK);
    assert_int_equal(rec.status, REG_REVOKED);
    reg_cert_clear(&rec);
    enroll_result_clear(&r);
    enroll_result_clear(&rr);
}

/* --rekey: a new key takes the label; the old pair steps aside. */
static void test_enroll_rekey_relabels_the_old_pair(void **state)
{
    enroll_opts o = opts_new("rekey-user");
    enroll_opts ko = {.mode = ENROLL_REKEY, .label = "rekey-user"};
    enroll_result r, kr;
    char old[300], text[REG_SERIAL_TEXT_MAX];

    (void)state;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    assert_int_equal(enroll_run(&fx.env, &ko, &kr), P11CA_OK);
    assert_string_equal(kr.action, "rekeyed");
    reg_serial_text(kr.old_serial, text, sizeof(text));
    assert_string_equal(text, r.serial);
    assert_false(p11_obj_same(kr.key, r.key));
    assert_cert_matches_key(&kr);
    assert_pair("rekey-user", true, 1);
    reg_serial_text(r.serial, text, sizeof(text));
    snprintf(old, sizeof(old), "rekey-user.old-%.8s", text);
    assert_pair(old, true, 1);
    assert_pair("rekey-user.rekey", false, 0);
    assert_true(noted("stay on the token as"));
    enroll_result_clear(&r);
    enroll_result_clear(&kr);
}

static void test_enroll_renew_of_nothing_is_refused(void **state)
{
    enroll_opts ro = {.mode = ENROLL_RENEW, .label = "absent-user"};
    enroll_result r;

    (void)state;
    assert_int_equal(enroll_run(&fx.env, &ro, &r), P11CA_E_INPUT);
    assert_non_null(strstr(p11ca_err_message(), "nothing to renew"));
}

/* One session per token for the CSR's provider (PIV cards): passed to
 * it, not through the environment. */
static void test_enroll_single_session_sets_no_environment(void **state)
{
    enroll_opts o = opts_new("single-user");
    enroll_result r;

    (void)state;
    unsetenv("P11CA_SINGLE_SESSION");
    fx.env.single_session = true;
    assert_int_equal(enroll_run(&fx.env, &o, &r), P11CA_OK);
    fx.env.single_session = false;
    assert_null(getenv("P11CA_SINGLE_SESSION"));
    assert_cert_matches_key(&r);
    assert_pair("single-user", true, 1);
    enroll_result_clear(&r);
}

#define T(f) cmocka_unit_test_setup_teardown(f, issuer_setup, issuer_teardown)

int main(void)
{
    const char *module = getenv("SOFTHSM_MODULE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll_step_for_each_state),
        T(test_enroll_new_writes_key_and_cert),
        T(test_enroll_refuses_an_enrolled_label),
        T(test_enroll_without_names_is_a_usage_error),
        T(test_enroll_issuer_down_then_resume),
        T(test_enroll_lost_answer_resume_reuses),
        T(test_enroll_cleanup_revokes_and_starts_over),
        T(test_enroll_resume_without_key_is_refused),
        T(test_enroll_renew_keeps_the_key),
        T(test_enroll_rekey_relabels_the_old_pair),
        T(test_enroll_renew_of_nothing_is_refused),
        T(test_enroll_single_session_sets_no_environment),
    };

    if (!module || !*module || access(module, R_OK) != 0
        || system("command -v softhsm2-util >/dev/null") != 0) {
        printf("1..0 # SKIP SoftHSM2 is not installed\n");
        return 0;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
