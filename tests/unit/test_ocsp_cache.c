/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the OCSP response cache: hits and misses, nextUpdate, the
 * change epochs that keep an older registry read out, invalidation, the
 * refresh window on a clock passed in, the bounds, and threads. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "ca/ocsp.h"

#define T0 INT64_C(1900000000) /* the tests' clock starts here */

static const ca_ocsp_state GOOD = {V_OCSP_CERTSTATUS_GOOD, -1, 0, 0, 0};
static const ca_ocsp_state REVOKED = {V_OCSP_CERTSTATUS_REVOKED, 1, T0, 0, 0};

/* A response whose bytes name @tag, valid from @at to @next. */
static ca_ocsp_resp *resp(const char *tag, int64_t at, int64_t next)
{
    ca_ocsp_resp *r = ca_ocsp_resp_new((const unsigned char *)tag, strlen(tag),
                                       CA_OCSP_SUCCESSFUL, at, at, next);

    assert_non_null(r);
    return r;
}

static bool put(ca_ocsp_cache *c, const char *serial, const char *certid,
                const ca_ocsp_state *st, uint64_t epoch, ca_ocsp_resp *r)
{
    bool ok = ca_ocsp_cache_put(c, 1, serial, (const unsigned char *)certid,
                                strlen(certid), st, epoch, r);

    ca_ocsp_resp_unref(r);
    return ok;
}

/* The tag of the cached response, or NULL on a miss. */
static char *get(ca_ocsp_cache *c, const char *serial, const char *certid,
                 int64_t now)
{
    static char buf[64];
    ca_ocsp_resp *r = NULL;
    const unsigned char *der;
    size_t len;

    if (!ca_ocsp_cache_get(c, 1, serial, (const unsigned char *)certid,
                           strlen(certid), now, &r))
        return NULL;
    der = ca_ocsp_resp_der(r, &len);
    snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)der);
    ca_ocsp_resp_unref(r);
    return buf;
}

static int setup(void **state)
{
    ca_ocsp_cache *c = NULL;

    if (ca_ocsp_cache_new(100, &c) != P11CA_OK)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ca_ocsp_cache_free(*state);
    return 0;
}

static void test_ocsp_cache_miss_then_hit(void **state)
{
    ca_ocsp_cache *c = *state;
    uint64_t e = ca_ocsp_cache_epoch(c);

    assert_null(get(c, "1a", "sha1", T0));
    assert_true(put(c, "1a", "sha1", &GOOD, e, resp("A", T0, T0 + 100)));
    assert_string_equal(get(c, "1a", "sha1", T0 + 1), "A");
    /* Another CertID form, serial or CA is another response. */
    assert_null(get(c, "1a", "sha256", T0 + 1));
    assert_null(get(c, "1b", "sha1", T0 + 1));
    assert_false(ca_ocsp_cache_get(c, 2, "1a", (const unsigned char *)"sha1", 4,
                                   T0, &(ca_ocsp_resp *){NULL}));
}

static void test_ocsp_cache_stale_at_next_update(void **state)
{
    ca_ocsp_cache *c = *state;

    assert_true(put(c, "1a", "sha1", &GOOD, 0, resp("A", T0, T0 + 100)));
    assert_string_equal(get(c, "1a", "sha1", T0 + 99), "A");
    assert_null(get(c, "1a", "sha1", T0 + 100));
}

static void test_ocsp_cache_invalidate_drops_and_gives_certids(void **state)
{
    ca_ocsp_cache *c = *state;
    ca_ocsp_certid ids[CA_OCSP_CACHE_FORMS];
    size_t n = 0;
    bool sha1 = false, sha256 = false;

    assert_true(put(c, "1a", "sha1", &GOOD, 0, resp("A", T0, T0 + 100)));
    assert_true(put(c, "1a", "sha256", &GOOD, 0, resp("B", T0, T0 + 100)));
    assert_true(put(c, "2b", "sha1", &GOOD, 0, resp("C", T0, T0 + 100)));
    assert_int_equal(ca_ocsp_cache_invalidate(c, 1, "1a", ids, &n), P11CA_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ids[i].ca_id, 1);
        assert_string_equal(ids[i].serial, "1a");
        sha1 |= ids[i].len == 4 && memcmp(ids[i].der, "sha1", 4) == 0;
        sha256 |= ids[i].len == 6 && memcmp(ids[i].der, "sha256", 6) == 0;
    }
    assert_true(sha1 && sha256);
    ca_ocsp_certids_free(ids, n);
    assert_null(get(c, "1a", "sha1", T0));
    assert_null(get(c, "1a", "sha256", T0));
    assert_string_equal(get(c, "2b", "sha1", T0), "C");
}

/* A worker read "good" before a revocation and puts after it: dropped. */
static void test_ocsp_cache_put_older_than_change_dropped(void **state)
{
    ca_ocsp_cache *c = *state;
    uint64_t before;
    ca_ocsp_cache_stats st;

    assert_true(put(c, "1a", "sha1", &GOOD, 0, resp("A", T0, T0 + 100)));
    before = ca_ocsp_cache_epoch(c);
    assert_int_equal(ca_ocsp_cache_invalidate(c, 1, "1a", NULL, NULL),
                     P11CA_OK);
    assert_false(put(c, "1a", "sha1", &GOOD, before, resp("old", T0, T0 + 9)));
    assert_null(get(c, "1a", "sha1", T0));
    assert_true(put(c, "1a", "sha1", &REVOKED, ca_ocsp_cache_epoch(c),
                    resp("new", T0, T0 + 9)));
    assert_string_equal(get(c, "1a", "sha1", T0), "new");
    ca_ocsp_cache_get_stats(c, &st);
    assert_int_equal(st.dropped, 1);
}

/* The same for a certificate that was not cached when it changed. */
static void test_ocsp_cache_put_older_than_uncached_change(void **state)
{
    ca_ocsp_cache *c = *state;
    uint64_t before = ca_ocsp_cache_epoch(c);

    assert_int_equal(ca_ocsp_cache_invalidate(c, 1, "3c", NULL, NULL),
                     P11CA_OK);
    assert_false(put(c, "3c", "sha1", &GOOD, before, resp("old", T0, T0 + 9)));
    assert_true(put(c, "3c", "sha1", &REVOKED, ca_ocsp_cache_epoch(c),
                    resp("new", T0, T0 + 9)));
    assert_string_equal(get(c, "3c", "sha1", T0), "new");
}

/* A change seen in the audit trail: responses kept, older puts refused. */
static void test_ocsp_cache_mark(void **state)
{
    ca_ocsp_cache *c = *state;
    ca_ocsp_state st;
    uint64_t before;

    assert_false(ca_ocsp_cache_mark(c, 1, "1a", &st));
    assert_true(put(c, "1a", "sha1", &REVOKED, ca_ocsp_cache_epoch(c),
                    resp("A", T0, T0 + 100)));
    before = ca_ocsp_cache_epoch(c);
    assert_true(ca_ocsp_cache_mark(c, 1, "1a", &st));
    assert_int_equal(st.status, V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(st.reason, 1);
    assert_string_equal(get(c, "1a", "sha1", T0), "A");
    assert_false(
        put(c, "1a", "sha256", &REVOKED, before, resp("B", T0, T0 + 100)));
}

/* Responses from another registry state are not kept side by side. */
static void test_ocsp_cache_new_state_replaces_forms(void **state)
{
    ca_ocsp_cache *c = *state;

    assert_true(put(c, "1a", "sha1", &GOOD, 0, resp("A", T0, T0 + 100)));
    assert_true(put(c, "1a", "sha256", &REVOKED, 0, resp("B", T0, T0 + 100)));
    assert_null(get(c, "1a", "sha1", T0));
    assert_string_equal(get(c, "1a", "sha256", T0), "B");
    /* The same CertID again replaces its response. */
    assert_true(put(c, "1a", "sha256", &REVOKED, 0, resp("C", T0, T0 + 100)));
    assert_string_equal(get(c, "1a", "sha256", T0), "C");
}

static void test_ocsp_cache_forms_bounded(void **state)
{
    ca_ocsp_cache *c = *state;
    char id[16];
    ca_ocsp_cache_stats st;

    for (int i = 0; i <= CA_OCSP_CACHE_FORMS; i++) {
        snprintf(id, sizeof(id), "form%d", i);
        assert_true(put(c, "1a", id, &GOOD, 0, resp(id, T0 + i, T0 + 100)));
    }
    assert_null(get(c, "1a", "form0", T0)); /* the oldest went */
    assert_string_equal(get(c, "1a", "form1", T0), "form1");
    ca_ocsp_cache_get_stats(c, &st);
    assert_int_equal(st.responses, CA_OCSP_CACHE_FORMS);
    assert_int_equal(st.certs, 1);
}

/* At most @max responses: the least recently used certificate goes. */
static void test_ocsp_cache_lru_eviction(void **state)
{
    ca_ocsp_cache *c = NULL;
    ca_ocsp_cache_stats st;
    ca_ocsp_state cached;
    char serial[16];
    uint64_t before;

    (void)state;
    assert_int_equal(ca_ocsp_cache_new(CA_OCSP_CACHE_FORMS, &c), P11CA_OK);
    for (int i = 1; i <= CA_OCSP_CACHE_FORMS; i++) {
        snprintf(serial, sizeof(serial), "%x", i);
        assert_true(put(c, serial, "sha1", &GOOD, 0, resp(serial, T0, T0 + 9)));
    }
    assert_string_equal(get(c, "1", "sha1", T0), "1"); /* 1 used: 2 oldest */
    assert_true(put(c, "ff", "sha1", &GOOD, 0, resp("ff", T0, T0 + 9)));
    assert_null(get(c, "2", "sha1", T0));
    assert_string_equal(get(c, "1", "sha1", T0), "1");
    assert_string_equal(get(c, "ff", "sha1", T0), "ff");
    ca_ocsp_cache_get_stats(c, &st);
    assert_int_equal(st.responses, CA_OCSP_CACHE_FORMS);
    assert_int_equal(st.evicted, 1);
    /* A certificate changed, then evicted: a put older than its change is
     * still refused. */
    before = ca_ocsp_cache_epoch(c);
    assert_true(ca_ocsp_cache_mark(c, 1, "3", &cached));
    for (int i = 0x10; i < 0x10 + CA_OCSP_CACHE_FORMS; i++) {
        snprintf(serial, sizeof(serial), "%x", i);
        assert_true(put(c, serial, "sha1", &GOOD, ca_ocsp_cache_epoch(c),
                        resp(serial, T0, T0 + 9)));
    }
    assert_null(get(c, "3", "sha1", T0));
    assert_false(put(c, "3", "sha1", &GOOD, before, resp("old", T0, T0 + 9)));
    ca_ocsp_cache_free(c);
}

/* The refresh window on the clock passed in: due once within it, dropped
 * once past nextUpdate. */
static void test_ocsp_cache_due_window(void **state)
{
    ca_ocsp_cache *c = *state;
    ca_ocsp_certid *ids = NULL;
    ca_ocsp_cache_stats st;
    size_t n = 0;

    assert_true(put(c, "1", "sha1", &GOOD, 0, resp("1", T0, T0 + 100)));
    assert_true(put(c, "2", "sha1", &GOOD, 0, resp("2", T0, T0 + 200)));
    assert_true(put(c, "3", "sha1", &GOOD, 0, resp("3", T0, T0 + 300)));
    assert_int_equal(ca_ocsp_cache_due(c, T0, T0 + 50, 10, &ids, &n), P11CA_OK);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(ca_ocsp_cache_due(c, T0 + 10, T0 + 150, 10, &ids, &n),
                     P11CA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0].serial, "1");
    ca_ocsp_certids_free(ids, n);
    free(ids);
    /* Signed again: it goes to the end of the due order. */
    assert_true(put(c, "1", "sha1", &GOOD, 0, resp("1'", T0 + 10, T0 + 110)));
    /* At T0 + 200, "2" is past its nextUpdate: dropped, not due. */
    assert_int_equal(ca_ocsp_cache_due(c, T0 + 200, T0 + 400, 10, &ids, &n),
                     P11CA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0].serial, "3");
    ca_ocsp_certids_free(ids, n);
    free(ids);
    ca_ocsp_cache_get_stats(c, &st);
    assert_int_equal(st.expired, 2); /* "1'" (T0 + 110) and "2" */
    assert_int_equal(st.responses, 1);
    /* @max bounds the answer. */
    assert_int_equal(ca_ocsp_cache_due(c, T0, T0 + 400, 0, &ids, &n), P11CA_OK);
    assert_int_equal(n, 0);
    free(ids);
}

/* A reference taken by a hit outlives the entry. */
static void test_ocsp_cache_reference_outlives_entry(void **state)
{
    ca_ocsp_cache *c = *state;
    ca_ocsp_resp *r = NULL;
    const unsigned char *der;
    size_t len;

    assert_true(put(c, "1a", "sha1", &GOOD, 0, resp("A", T0, T0 + 100)));
    assert_true(ca_ocsp_cache_get(c, 1, "1a", (const unsigned char *)"sha1", 4,
                                  T0, &r));
    assert_int_equal(ca_ocsp_cache_invalidate(c, 1, "1a", NULL, NULL),
                     P11CA_OK);
    der = ca_ocsp_resp_der(r, &len);
    assert_int_equal(len, 1);
    assert_memory_equal(der, "A", 1);
    ca_ocsp_resp_unref(r);
}

static void test_ocsp_resp_etag_is_sha256(void **state)
{
    unsigned char md[32];
    char hex[65];
    ca_ocsp_resp *r = resp("abc", T0, T0 + 1);

    (void)state;
    assert_true(EVP_Digest("abc", 3, md, NULL, EVP_sha256(), NULL));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(ca_ocsp_resp_etag(r), hex);
    assert_int_equal(ca_ocsp_resp_next_update(r), T0 + 1);
    ca_ocsp_resp_unref(r);
}

struct hammer {
    ca_ocsp_cache *c;
    int id;
};

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    char serial[16], tag[32];
    ca_ocsp_resp *r;

    for (int i = 0; i < 20000; i++) {
        snprintf(serial, sizeof(serial), "%x", i % 300);
        switch ((i + h->id) % 4) {
        case 0:
        case 1:
            if (ca_ocsp_cache_get(h->c, 1, serial,
                                  (const unsigned char *)"sha1", 4, T0, &r))
                ca_ocsp_resp_unref(r);
            break;
        case 2:
            snprintf(tag, sizeof(tag), "%d-%d", h->id, i);
            r = ca_ocsp_resp_new((const unsigned char *)tag, strlen(tag),
                                 CA_OCSP_SUCCESSFUL, T0, T0, T0 + 100);
            if (r)
                ca_ocsp_cache_put(h->c, 1, serial,
                                  (const unsigned char *)"sha1", 4, &GOOD,
                                  ca_ocsp_cache_epoch(h->c), r);
            ca_ocsp_resp_unref(r);
            break;
        default:
            if (ca_ocsp_cache_invalidate(h->c, 1, serial, NULL, NULL) != 0)
                return NULL;
        }
    }
    return h;
}

/* Readers, writers and invalidations at once (ASan/TSan find the rest). */
static void test_ocsp_cache_threads(void **state)
{
    ca_ocsp_cache *c = *state;
    struct hammer h[4];
    pthread_t th[4];
    ca_ocsp_cache_stats st;
    void *ret;

    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){c, i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_ptr_equal(ret, &h[i]);
    }
    ca_ocsp_cache_get_stats(c, &st);
    assert_true(st.responses <= 100);
    assert_true(st.hits + st.misses == 40000);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ocsp_cache_miss_then_hit),
        T(test_ocsp_cache_stale_at_next_update),
        T(test_ocsp_cache_invalidate_drops_and_gives_certids),
        T(test_ocsp_cache_put_older_than_change_dropped),
        T(test_ocsp_cache_put_older_than_uncached_change),
        T(test_ocsp_cache_mark),
        T(test_ocsp_cache_new_state_replaces_forms),
        T(test_ocsp_cache_forms_bounded),
        T(test_ocsp_cache_lru_eviction),
        T(test_ocsp_cache_due_window),
        T(test_ocsp_cache_reference_outlives_entry),
        T(test_ocsp_resp_etag_is_sha256),
        T(test_ocsp_cache_threads),
    };
#undef T

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
