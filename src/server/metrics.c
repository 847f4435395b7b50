/* SPDX-License-Identifier: Apache-2.0 */
/* Metrics in the Prometheus text format (version 0.0.4): requests by route
 * and status, latency histograms, sign-ups, refusals by reason, token
 * errors, the registry's size by status, the worker queue.  Counted on the
 * loop thread only (workers' results are counted when posted back). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "server/internal.h"

static const int codes[SRV_N_CODES] = {
    200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 414, 429, 500, 503, 0,
};

static const double buckets[SRV_N_BUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static const char *const refusal_names[SRV_REFUSE_N] = {
    [SRV_REFUSE_UNKNOWN_CA] = "unknown-ca",
    [SRV_REFUSE_INVALID] = "invalid",
    [SRV_REFUSE_EXPIRED] = "expired",
    [SRV_REFUSE_NOT_ACTIVATED] = "not-activated",
    [SRV_REFUSE_REVOKED] = "revoked",
    [SRV_REFUSE_UNKNOWN_CERT] = "unknown-certificate",
    [SRV_REFUSE_MISMATCH] = "serial-mismatch",
    [SRV_REFUSE_RATE] = "rate-limit",
    [SRV_REFUSE_REGISTRATION] = "registration-failed",
    [SRV_REFUSE_REGISTRY] = "registry-error",
    [SRV_REFUSE_FORBIDDEN] = "forbidden",
    [SRV_REFUSE_UNAUTHENTICATED] = "unauthenticated",
};

const char *srv_refusal_name(enum srv_refusal r)
{
    return (unsigned)r < SRV_REFUSE_N ? refusal_names[r] : "?";
}

int srv_metrics_init(struct srv_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->routes = calloc(srv_route_count() + 1, sizeof(*m->routes));
    return m->routes ? P11CA_OK : p11ca_err_set(P11CA_E_NOMEM, "out of memory");
}

void srv_metrics_clear(struct srv_metrics *m)
{
    free(m->routes);
    memset(m, 0, sizeof(*m));
}

static size_t code_index(int status)
{
    for (size_t i = 0; codes[i]; i++)
        if (codes[i] == status)
            return i;
    return SRV_N_CODES - 1; /* "other" */
}

void srv_metrics_request(struct srv_metrics *m, int route, int status,
                         double seconds)
{
    size_t n = srv_route_count();
    struct srv_route_stats *rs;

    if (!m->routes)
        return;
    rs = &m->routes[route >= 0 && (size_t)route < n ? (size_t)route : n];
    rs->by_code[code_index(status)]++;
    rs->count++;
    rs->sum_s += seconds;
    for (size_t b = 0; b < SRV_N_BUCKETS; b++)
        if (seconds <= buckets[b]) {
            rs->hist[b]++;
            break;
        }
}

/* "GET /v1/certs/{serial}", or "unmatched". */
static void route_label(size_t i, char *buf, size_t len)
{
    const struct srv_route *r = srv_route_at(i);

    if (r)
        snprintf(buf, len, "%s %s", srv_method_name(r->method), r->pattern);
    else
        snprintf(buf, len, "unmatched");
}

static void requests_text(struct srv *s, struct evbuffer *out)
{
    size_t n = srv_route_count();
    char label[160], code[16];

    evbuffer_add_printf(out, "# HELP p11ca_requests_total HTTP requests "
                             "answered, by route and status code.\n"
                             "# TYPE p11ca_requests_total counter\n");
    for (size_t i = 0; i <= n; i++) {
        route_label(i, label, sizeof(label));
        for (size_t c = 0; c < SRV_N_CODES; c++) {
            if (!s->m.routes[i].by_code[c])
                continue;
            if (codes[c])
                snprintf(code, sizeof(code), "%d", codes[c]);
            else
                snprintf(code, sizeof(code), "other");
            evbuffer_add_printf(
                out, "p11ca_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
                label, code, (unsigned long long)s->m.routes[i].by_code[c]);
        }
    }
}

static void latency_text(struct srv *s, struct evbuffer *out)
{
    size_t n = srv_route_count();
    char label[160];
    uint64_t cum;

    evbuffer_add_printf(out, "# HELP p11ca_request_duration_seconds From a "
                             "whole request to its response.\n"
                             "# TYPE p11ca_request_duration_seconds "
                             "histogram\n");
    for (size_t i = 0; i <= n; i++) {
        const struct srv_route_stats *rs = &s->m.routes[i];

        if (!rs->count)
            continue;
        route_label(i, label, sizeof(label));
        cum = 0;
        for (size_t b = 0; b < SRV_N_BUCKETS; b++) {
            cum += rs->hist[b];
            evbuffer_add_printf(out,
                                "p11ca_request_duration_seconds_bucket{route="
                                "\"%s\",le=\"%g\"} %llu\n",
                                label, buckets[b], (unsigned long long)cum);
        }
        evbuffer_add_printf(
            out,
            "p11ca_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
            "%llu\n"
            "p11ca_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
            "p11ca_request_duration_seconds_count{route=\"%s\"} %llu\n",
            label, (unsigned long long)rs->count, label, rs->sum_s, label,
            (unsigned long long)rs->count);
    }
}

static void counters_text(struct srv *s, struct evbuffer *out)
{
    evbuffer_add_printf(
        out,
        "# HELP p11ca_signups_total Certificates recorded by sign-ups.\n"
        "# TYPE p11ca_signups_total counter\n"
        "p11ca_signups_total{kind=\"auto-registration\"} %llu\n"
        "p11ca_signups_total{kind=\"registration\"} %llu\n"
        "# HELP p11ca_refusals_total Handshakes and calls refused, by "
        "reason.\n"
        "# TYPE p11ca_refusals_total counter\n",
        (unsigned long long)s->m.signups_auto,
        (unsigned long long)s->m.signups_api);
    for (size_t i = 0; i < SRV_REFUSE_N; i++)
        evbuffer_add_printf(out, "p11ca_refusals_total{reason=\"%s\"} %llu\n",
                            refusal_names[i],
                            (unsigned long long)s->m.refusals[i]);
    evbuffer_add_printf(
        out,
        "# HELP p11ca_token_errors_total Jobs that failed on the token.\n"
        "# TYPE p11ca_token_errors_total counter\n"
        "p11ca_token_errors_total %llu\n"
        "# HELP p11ca_tls_client_certificates_total Client certificates "
        "checked at a handshake.\n"
        "# TYPE p11ca_tls_client_certificates_total counter\n"
        "p11ca_tls_client_certificates_total %llu\n"
        "# HELP p11ca_timeouts_total Connections closed by "
        "request_timeout_ms or idle_timeout_ms.\n"
        "# TYPE p11ca_timeouts_total counter\n"
        "p11ca_timeouts_total %llu\n",
        (unsigned long long)s->m.token_errors,
        (unsigned long long)s->m.handshakes, (unsigned long long)s->m.timeouts);
}

static int registry_text(struct srv *s, struct evbuffer *out)
{
    static const reg_status sts[] = {REG_ACTIVATED, REG_NOT_ACTIVATED,
                                     REG_REGISTERED_NOT_ACTIVATED, REG_REVOKED};
    reg_filter f = {0};
    size_t n = 0;
    int rc;

    evbuffer_add_printf(out, "# HELP p11ca_registry_certificates "
                             "Certificates in the registry, by status.\n"
                             "# TYPE p11ca_registry_certificates gauge\n");
    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++) {
        f.status = sts[i];
        rc = reg_count(ca_registry(s->ca), &f, &n);
        if (rc != P11CA_OK)
            return rc;
        evbuffer_add_printf(out,
                            "p11ca_registry_certificates{status=\"%s\"} %zu\n",
                            reg_status_name(sts[i]), n);
    }
    return P11CA_OK;
}

/* The OCSP responder's cache (ca_ocsp_cache_get_stats). */
static void ocsp_text(struct srv *s, struct evbuffer *out)
{
    ca_ocsp_cache *cache = s->ocsp ? ca_ocsp_cache_of(s->ocsp) : NULL;
    ca_ocsp_cache_stats st = {0};

    if (!cache)
        return;
    ca_ocsp_cache_get_stats(cache, &st);
    evbuffer_add_printf(
        out,
        "# HELP p11ca_ocsp_cache_responses Signed OCSP responses in the "
        "cache.\n"
        "# TYPE p11ca_ocsp_cache_responses gauge\n"
        "p11ca_ocsp_cache_responses %zu\n"
        "# HELP p11ca_ocsp_cache_lookups_total OCSP cache look-ups, by "
        "result (a worker's second look counts too).\n"
        "# TYPE p11ca_ocsp_cache_lookups_total counter\n"
        "p11ca_ocsp_cache_lookups_total{result=\"hit\"} %llu\n"
        "p11ca_ocsp_cache_lookups_total{result=\"miss\"} %llu\n"
        "# HELP p11ca_ocsp_cache_dropped_total OCSP responses dropped, by "
        "reason.\n"
        "# TYPE p11ca_ocsp_cache_dropped_total counter\n"
        "p11ca_ocsp_cache_dropped_total{reason=\"evicted\"} %llu\n"
        "p11ca_ocsp_cache_dropped_total{reason=\"stale-put\"} %llu\n"
        "p11ca_ocsp_cache_dropped_total{reason=\"expired\"} %llu\n"
        "p11ca_ocsp_cache_dropped_total{reason=\"unknown-share\"} %llu\n"
        "# HELP p11ca_ocsp_cache_unknown Serials cached as unknown (the "
        "negative cache; at most a quarter of cache_entries).\n"
        "# TYPE p11ca_ocsp_cache_unknown gauge\n"
        "p11ca_ocsp_cache_unknown %zu\n",
        st.responses, (unsigned long long)st.hits,
        (unsigned long long)st.misses, (unsigned long long)st.evicted,
        (unsigned long long)st.dropped, (unsigned long long)st.expired,
        (unsigned long long)st.unknown_refused, st.unknown);
}

/* The responder's fresh signatures and its tryLater answers. */
static void ocsp_signing_text(struct srv *s, struct evbuffer *out)
{
    if (!s->ocsp)
        return;
    evbuffer_add_printf(
        out,
        "# HELP p11ca_ocsp_signatures_total OCSP responses signed for a "
        "request (a nonce, a miss, several CertIDs).\n"
        "# TYPE p11ca_ocsp_signatures_total counter\n"
        "p11ca_ocsp_signatures_total %llu\n"
        "# HELP p11ca_ocsp_signing_in_flight OCSP signatures queued or on a "
        "worker now.\n"
        "# TYPE p11ca_ocsp_signing_in_flight gauge\n"
        "p11ca_ocsp_signing_in_flight %zu\n"
        "# HELP p11ca_ocsp_signing_limit ocsp_max_signing: OCSP signatures "
        "in flight at most.\n"
        "# TYPE p11ca_ocsp_signing_limit gauge\n"
        "p11ca_ocsp_signing_limit %zu\n"
        "# HELP p11ca_ocsp_try_later_total OCSP tryLater answers, by reason "
        "(busy: ocsp_max_signing in flight; signer: the delegated signer's "
        "certificate is not valid; error: the token or the registry).\n"
        "# TYPE p11ca_ocsp_try_later_total counter\n"
        "p11ca_ocsp_try_later_total{reason=\"busy\"} %llu\n"
        "p11ca_ocsp_try_later_total{reason=\"signer\"} %llu\n"
        "p11ca_ocsp_try_later_total{reason=\"error\"} %llu\n"
        "# HELP p11ca_ocsp_signer_valid 1 when the OCSP signer can sign now "
        "(the CA, or a delegated signer whose certificate is valid).\n"
        "# TYPE p11ca_ocsp_signer_valid gauge\n"
        "p11ca_ocsp_signer_valid %d\n",
        (unsigned long long)s->ocsp_signed, s->ocsp_in_flight,
        srv_ocsp_max_signing(s), (unsigned long long)s->ocsp_try_later_n[0],
        (unsigned long long)s->ocsp_try_later_n[1],
        (unsigned long long)s->ocsp_try_later_n[2],
        ca_ocsp_signer_valid(s->ocsp, (int64_t)time(NULL)) ? 1 : 0);
}

int srv_metrics_text(struct srv *s, struct evbuffer *out)
{
    requests_text(s, out);
    latency_text(s, out);
    counters_text(s, out);
    ocsp_text(s, out);
    ocsp_signing_text(s, out);
    evbuffer_add_printf(
        out,
        "# HELP p11ca_worker_queue_depth Jobs waiting for a worker.\n"
        "# TYPE p11ca_worker_queue_depth gauge\n"
        "p11ca_worker_queue_depth %zu\n"
        "# HELP p11ca_worker_jobs_running Jobs on a worker now.\n"
        "# TYPE p11ca_worker_jobs_running gauge\n"
        "p11ca_worker_jobs_running %zu\n"
        "# HELP p11ca_connections Open connections (TLS, and plain HTTP of "
        "ocsp_listen).\n"
        "# TYPE p11ca_connections gauge\n"
        "p11ca_connections %zu\n",
        srv_pool_queued(s), srv_pool_running(s), s->n_conns);
    return registry_text(s, out);
}
