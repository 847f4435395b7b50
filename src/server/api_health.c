/* SPDX-License-Identifier: Apache-2.0 */
/* GET /healthz and GET /metrics: answered on the loop thread, so they
 * answer while the workers are busy with a slow token. */
#include "config.h"

#include <event2/buffer.h>

#include "server/internal.h"

/* GET /healthz: the loop runs; what waits for the workers. */
static void health_get(struct srv_req *r)
{
    struct srv *s = r->s;
    json_t *j;

    /* 1. parse: nothing.  2. authorize: anyone (route table). */
    if (!srv_req_authorize(r, false))
        return;
    /* 3. no registry call: liveness of the service itself. */
    j = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I}", "status", "ok", "workers",
                  (int)s->cfg.workers, "queued", (json_int_t)srv_pool_queued(s),
                  "running", (json_int_t)srv_pool_running(s), "connections",
                  (json_int_t)s->n_conns, "uptime_s",
                  (json_int_t)((srv_now_ms() - s->started_ms) / 1000));
    /* 4. respond */
    srv_reply_json(r, 200, j);
}

/* GET /metrics: Prometheus text format. */
static void metrics_get(struct srv_req *r)
{
    struct evbuffer *b = evbuffer_new();
    size_t len;
    int rc;

    if (!srv_req_authorize(r, false)) {
        evbuffer_free(b);
        return;
    }
    if (!b) {
        srv_problem(r, 503, "busy", "out of memory");
        return;
    }
    rc = srv_metrics_text(r->s, b);
    if (rc != P11CA_OK) {
        evbuffer_free(b);
        srv_problem_rc(r, rc, p11ca_err_message());
        return;
    }
    len = evbuffer_get_length(b);
    srv_reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                    evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

const struct srv_route srv_routes_health[] = {
    {EVHTTP_REQ_GET, "/healthz", health_get, SRV_ROLE_ANON, false},
    {EVHTTP_REQ_GET, "/metrics", metrics_get, SRV_ROLE_ANON, false},
    {0},
};
