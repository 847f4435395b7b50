/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what p11ca serve reads from a request before it does
 * anything (src/server): the input as a JSON body (srv_json_parse, then
 * the members of POST /v1/certs and PATCH /v1/cas/{id}), as the query
 * string of GET /v1/certs (libevent's parser, then
 * srv_certs_filter_parse) and as a request path (srv_route_match, with
 * each method).  Each is refused with a reason or gives values the
 * handlers may use as they stand. */
#include "config.h"

#include "fuzz.h"

#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "server/internal.h"

static const enum evhttp_cmd_type methods[] = {
    EVHTTP_REQ_GET, EVHTTP_REQ_POST, EVHTTP_REQ_DELETE,  EVHTTP_REQ_PATCH,
    EVHTTP_REQ_PUT, EVHTTP_REQ_HEAD, EVHTTP_REQ_OPTIONS,
};

static bool status_settable(reg_status st)
{
    return st == REG_ACTIVATED || st == REG_REGISTERED_NOT_ACTIVATED;
}

/* The input as the JSON body of a request. */
static void fuzz_json(const char *buf, size_t len)
{
    struct srv_register_body rb;
    char detail[SRV_MSG_MAX];
    reg_status st = REG_REGISTERED_NOT_ACTIVATED;
    bool on = false, set = false;
    json_t *body;

    for (int empty_ok = 0; empty_ok < 2; empty_ok++) {
        body = srv_json_parse(buf, len, empty_ok, detail, sizeof(detail));
        FUZZ_CHECK(body ? json_is_object(body) : detail[0] != '\0');
        FUZZ_CHECK(body || len > 0 || !empty_ok);
        if (!body || !empty_ok) {
            json_decref(body);
            continue;
        }
        /* POST /v1/certs */
        detail[0] = '\0';
        if (srv_register_body_parse(body, &rb, detail, sizeof(detail)) == 0) {
            FUZZ_CHECK(rb.x != NULL);
            FUZZ_CHECK(status_settable(rb.to));
            FUZZ_CHECK(!rb.client_id
                       || (rb.client_id[0] && strlen(rb.client_id) <= 255));
            X509_free(rb.x);
        } else {
            FUZZ_CHECK(detail[0] != '\0');
        }
        /* POST /v1/cas (its auto_* members), PATCH /v1/cas/{id} */
        detail[0] = '\0';
        if (srv_cas_auto_parse(body, &on, &st, &set, detail, sizeof(detail))
            == 0)
            FUZZ_CHECK(status_settable(st));
        else
            FUZZ_CHECK(detail[0] != '\0');
        on = true;
        st = REG_ACTIVATED;
        detail[0] = '\0';
        if (srv_cas_patch_parse(body, &on, &st, detail, sizeof(detail)) == 0)
            FUZZ_CHECK(status_settable(st)
                       && (json_object_get(body, "auto_register")
                           || json_object_get(body, "auto_status")));
        else
            FUZZ_CHECK(detail[0] != '\0');
        json_decref(body);
    }
}

/* A cursor read back from what srv_cursor_make wrote. */
static void check_cursor(size_t offset)
{
    char text[64];
    size_t back = 0;

    srv_cursor_make(offset, text, sizeof(text));
    FUZZ_CHECK(srv_cursor_read(text, &back) == 0 && back == offset);
    /* certs_list writes the next page's cursor at offset + limit, and
     * the registry takes a signed 64-bit offset. */
    FUZZ_CHECK(offset <= (uint64_t)INT64_MAX - SRV_PAGE_LIMIT_MAX);
}

/* The input as the query string of GET /v1/certs (what srv_req_query
 * parses). */
static void fuzz_query(const char *q)
{
    struct evkeyvalq kv;
    const char *issuer = NULL;
    reg_filter f = {0};
    size_t offset = 0;
    enum srv_param_rc rc;

    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q, &kv) != 0) {
        evhttp_clear_headers(&kv);
        return;
    }
    for (struct evkeyval *p = kv.tqh_first; p; p = p->next.tqe_next) {
        rc = srv_certs_filter_parse(p->key, p->value, 1700000000, &f, &offset,
                                    &issuer);
        FUZZ_CHECK(rc == SRV_PARAM_OK || rc == SRV_PARAM_BAD_VALUE
                   || rc == SRV_PARAM_UNKNOWN);
        if (rc != SRV_PARAM_OK)
            break;
        FUZZ_CHECK(f.limit <= SRV_PAGE_LIMIT_MAX);
        if (strcmp(p->key, "cursor") == 0)
            check_cursor(offset);
        if (strcmp(p->key, "issuer") == 0)
            FUZZ_CHECK(issuer == p->value);
    }
    evhttp_clear_headers(&kv);
}

/* A route @idx matched @path with @params: they fit its pattern. */
static void check_route(int idx, enum evhttp_cmd_type m, const char *buf,
                        const char **params)
{
    const struct srv_route *rt = srv_route_at((size_t)idx);
    size_t want = 0, got = 0;

    FUZZ_CHECK(rt != NULL && rt->method == m && !rt->by_prefix);
    for (const char *p = rt->pattern; (p = strchr(p, '{')); p++)
        want++;
    for (size_t i = 0; i < SRV_MAX_PARAMS; i++) {
        if (!params[i])
            continue;
        got++;
        FUZZ_CHECK(params[i] >= buf && params[i] < buf + SRV_MAX_PATH_BYTES);
        FUZZ_CHECK(params[i][0] != '\0' && !strchr(params[i], '/'));
    }
    FUZZ_CHECK(got == want);
}

/* The input as a request path, with each method. */
static void fuzz_path(const char *path)
{
    char buf[SRV_MAX_PATH_BYTES], allow[128];
    size_t n = srv_route_count();

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        const char *params[SRV_MAX_PARAMS] = {NULL};
        int idx = srv_route_match(methods[i], path, buf, sizeof(buf), params,
                                  allow, sizeof(allow));

        FUZZ_CHECK(idx >= -2 && idx < (int)n);
        if (idx >= 0)
            check_route(idx, methods[i], buf, params);
        else if (idx == -2)
            FUZZ_CHECK(allow[0] != '\0');
        else
            FUZZ_CHECK(allow[0] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *str = fuzz_strndup(data, size);

    fuzz_json((const char *)data, size);
    fuzz_query(str);
    fuzz_path(str);
    free(str);
    return 0;
}
