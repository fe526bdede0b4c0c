/* The server's counters and histograms, and their Prometheus text form
 * (text exposition format 0.0.4). One mutex: every update is a few adds. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve.h"

double serve_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const endpoint_paths[EP_COUNT] = {
    "/v1/score", "/v1/gate", "/classify", "/health", "/v1/models", "/metrics", "/admin/reload",
    "other"};

const char *serve_endpoint_path(serve_endpoint ep) { return endpoint_paths[ep]; }

/* the statuses the server answers with; anything else counts as the last */
static const int status_codes[STATUS_SLOTS] = {200, 400, 404, 405, 413, 415, 500, 503, 504, 0};

static const double latency_bounds[LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1,    2.5,   5,
                                                       10,    30};
static const unsigned batch_bounds[BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

void serve_metrics_init(serve_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
}

void serve_metrics_destroy(serve_metrics *m) { pthread_mutex_destroy(&m->lock); }

void serve_metrics_request(serve_metrics *m, serve_endpoint ep, int status, double seconds) {
    int slot = STATUS_SLOTS - 1;
    for (int i = 0; i < STATUS_SLOTS - 1; i++)
        if (status_codes[i] == status) slot = i;
    pthread_mutex_lock(&m->lock);
    m->requests[ep][slot]++;
    if (ep == EP_SCORE || ep == EP_GATE || ep == EP_CLASSIFY) {
        int b = 0;
        while (b < LATENCY_BUCKETS && seconds > latency_bounds[b]) b++;
        m->latency[b]++;
        m->latency_sum += seconds;
        m->latency_count++;
    }
    pthread_mutex_unlock(&m->lock);
}

void serve_metrics_batch(serve_metrics *m, size_t texts, size_t requests, size_t tokens,
                         double seconds) {
    int b = 0;
    while (b < BATCH_BUCKETS && texts > batch_bounds[b]) b++;
    pthread_mutex_lock(&m->lock);
    m->batch_texts[b]++;
    m->batches++;
    m->batch_texts_sum += texts;
    m->batch_requests_sum += requests;
    m->texts += texts;
    m->tokens += tokens;
    m->model_seconds += seconds;
    pthread_mutex_unlock(&m->lock);
}

void serve_metrics_count(serve_metrics *m, unsigned long *counter) {
    pthread_mutex_lock(&m->lock);
    (*counter)++;
    pthread_mutex_unlock(&m->lock);
}

/* A growing string; on allocation failure it turns NULL and stays so. */
typedef struct {
    char *data;
    size_t len, cap;
} text_buffer;

static void put(text_buffer *t, const char *fmt, ...) {
    if (!t->data && t->cap) return; /* failed before */
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int need = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0,
                                   fmt, ap);
        va_end(ap);
        if (need < 0) return;
        if (t->data && t->len + (size_t)need < t->cap) {
            t->len += (size_t)need;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap <= t->len + (size_t)need) cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            free(t->data);
            t->data = NULL;
            t->cap = 1;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

char *serve_metrics_render(serve_metrics *m, size_t queue_texts, size_t queue_jobs,
                           int model_version) {
    text_buffer t = {0};
    pthread_mutex_lock(&m->lock);
    put(&t, "# HELP rewardc_requests_total HTTP requests answered, by endpoint and status.\n"
            "# TYPE rewardc_requests_total counter\n");
    for (int ep = 0; ep < EP_COUNT; ep++)
        for (int s = 0; s < STATUS_SLOTS; s++)
            if (m->requests[ep][s])
                put(&t, "rewardc_requests_total{endpoint=\"%s\",code=\"%s%.0d\"} %lu\n",
                    endpoint_paths[ep], status_codes[s] ? "" : "other", status_codes[s],
                    m->requests[ep][s]);
    put(&t, "# HELP rewardc_queue_texts Texts waiting for the model.\n"
            "# TYPE rewardc_queue_texts gauge\nrewardc_queue_texts %zu\n"
            "# HELP rewardc_queue_requests Requests waiting for the model.\n"
            "# TYPE rewardc_queue_requests gauge\nrewardc_queue_requests %zu\n",
        queue_texts, queue_jobs);
    put(&t, "# HELP rewardc_batch_texts Texts per model batch (requests batched together).\n"
            "# TYPE rewardc_batch_texts histogram\n");
    unsigned long cumulative = 0;
    for (int b = 0; b < BATCH_BUCKETS; b++) {
        cumulative += m->batch_texts[b];
        put(&t, "rewardc_batch_texts_bucket{le=\"%u\"} %lu\n", batch_bounds[b], cumulative);
    }
    cumulative += m->batch_texts[BATCH_BUCKETS];
    put(&t, "rewardc_batch_texts_bucket{le=\"+Inf\"} %lu\nrewardc_batch_texts_sum %lu\n"
            "rewardc_batch_texts_count %lu\n",
        cumulative, m->batch_texts_sum, m->batches);
    put(&t, "# HELP rewardc_batch_requests_total Requests scored, summed over batches.\n"
            "# TYPE rewardc_batch_requests_total counter\nrewardc_batch_requests_total %lu\n",
        m->batch_requests_sum);
    put(&t, "# HELP rewardc_request_duration_seconds Latency of scoring requests, arrival to answer.\n"
            "# TYPE rewardc_request_duration_seconds histogram\n");
    cumulative = 0;
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        cumulative += m->latency[b];
        put(&t, "rewardc_request_duration_seconds_bucket{le=\"%g\"} %lu\n", latency_bounds[b],
            cumulative);
    }
    cumulative += m->latency[LATENCY_BUCKETS];
    put(&t, "rewardc_request_duration_seconds_bucket{le=\"+Inf\"} %lu\n"
            "rewardc_request_duration_seconds_sum %.6f\nrewardc_request_duration_seconds_count %lu\n",
        cumulative, m->latency_sum, m->latency_count);
    put(&t, "# HELP rewardc_texts_scored_total Texts scored.\n"
            "# TYPE rewardc_texts_scored_total counter\nrewardc_texts_scored_total %lu\n"
            "# HELP rewardc_tokens_scored_total Tokens scored.\n"
            "# TYPE rewardc_tokens_scored_total counter\nrewardc_tokens_scored_total %lu\n"
            "# HELP rewardc_model_seconds_total Time the model thread spent scoring.\n"
            "# TYPE rewardc_model_seconds_total counter\nrewardc_model_seconds_total %.6f\n"
            "# HELP rewardc_tokens_per_second Tokens scored per second of model time.\n"
            "# TYPE rewardc_tokens_per_second gauge\nrewardc_tokens_per_second %.1f\n",
        m->texts, m->tokens, m->model_seconds,
        m->model_seconds > 0 ? (double)m->tokens / m->model_seconds : 0.0);
    put(&t, "# HELP rewardc_rejected_total Requests refused or abandoned, by reason.\n"
            "# TYPE rewardc_rejected_total counter\n"
            "rewardc_rejected_total{reason=\"queue_full\"} %lu\n"
            "rewardc_rejected_total{reason=\"timeout\"} %lu\n"
            "rewardc_rejected_total{reason=\"disconnected\"} %lu\n",
        m->rejected_full, m->expired, m->disconnected);
    put(&t, "# HELP rewardc_model_reloads_total Model reloads, by result.\n"
            "# TYPE rewardc_model_reloads_total counter\n"
            "rewardc_model_reloads_total{result=\"ok\"} %lu\n"
            "rewardc_model_reloads_total{result=\"failed\"} %lu\n"
            "# HELP rewardc_model_version Version of the model now serving (0: none yet).\n"
            "# TYPE rewardc_model_version gauge\nrewardc_model_version %d\n",
        m->reloads_ok, m->reloads_failed, model_version);
    pthread_mutex_unlock(&m->lock);
    return t.data;
}
