/* The HTTP front, on libmicrohttpd: a fixed pool of polling threads (epoll)
 * with keep-alive, each request's body read up to the size limit, routed,
 * parsed, tokenized and queued; the connection is then suspended, so an HTTP
 * thread never waits for the model, and resumed by the model thread when its
 * job is done. A second listener (loopback only) takes /admin/reload. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "serve/serve.h"

struct serve_server {
    struct MHD_Daemon *daemon, *admin;
    const serve_options *opt;
    serve_batcher *batcher;
    serve_registry *registry;
    serve_metrics *metrics;
    pthread_mutex_t lock;
    int in_flight; /* requests queued for the model and not yet answered */
    int draining;
};

/* One request on a connection (libmicrohttpd's per-request pointer). */
typedef struct {
    serve_server *server;
    struct MHD_Connection *conn;
    serve_endpoint ep;
    int admin;
    char *body;
    size_t len, cap;
    int too_large;
    double started;
    serve_input input;
    serve_job *job;
    int counted; /* in in_flight */
    int status;  /* answered with */
} request_ctx;

static const char *const JSON_TYPE = "application/json";

static serve_endpoint route(const char *url) {
    static const serve_endpoint known[] = {EP_SCORE, EP_GATE, EP_CLASSIFY, EP_HEALTH,
                                           EP_MODELS, EP_METRICS, EP_RELOAD};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(url, serve_endpoint_path(known[i]))) return known[i];
    if (!strcmp(url, "/v1/classify")) return EP_CLASSIFY; /* vLLM serves both */
    return EP_OTHER;
}

/* Queues body (malloc'd; NULL means out of memory) with status. */
static enum MHD_Result respond(request_ctx *ctx, int status, char *body, const char *type,
                               const char *retry_after) {
    static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                        "\"param\":null,\"code\":500}}";
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
    if (!body) status = 500;
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (retry_after) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    if (ctx->server->draining) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == 405) {
        const int get = ctx->ep == EP_HEALTH || ctx->ep == EP_MODELS || ctx->ep == EP_METRICS;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, get ? "GET, HEAD" : "POST");
    }
    const enum MHD_Result ret = MHD_queue_response(ctx->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    ctx->status = status;
    serve_metrics_request(ctx->server->metrics, ctx->ep, status, serve_now() - ctx->started);
    return ret;
}

static enum MHD_Result respond_error(request_ctx *ctx, int status, const char *message,
                                     const char *param) {
    return respond(ctx, status, serve_render_error(status, message, param), JSON_TYPE,
                   status == 503 ? "1" : NULL);
}

/* Model thread: the job is final; wake its connection. */
static void job_done(serve_job *job, void *arg) {
    (void)job;
    request_ctx *ctx = arg;
    MHD_resume_connection(ctx->conn);
}

static void leave_flight(request_ctx *ctx) {
    if (!ctx->counted) return;
    serve_server *s = ctx->server;
    pthread_mutex_lock(&s->lock);
    s->in_flight--;
    pthread_mutex_unlock(&s->lock);
    ctx->counted = 0;
}

/* Suspends the connection and queues the job; 0 on success, else the
 * connection is resumed again and ctx->status says why (503). */
static int enqueue(request_ctx *ctx, serve_job *job) {
    serve_server *s = ctx->server;
    job->done = job_done;
    job->done_ctx = ctx;
    ctx->job = job;
    pthread_mutex_lock(&s->lock);
    s->in_flight++;
    ctx->counted = 1;
    pthread_mutex_unlock(&s->lock);
    /* suspended before it is queued, so the model thread cannot resume it first */
    MHD_suspend_connection(ctx->conn);
    const int refused = serve_batcher_submit(s->batcher, job);
    if (refused) {
        if (refused == 1) serve_metrics_count(s->metrics, &s->metrics->rejected_full);
        ctx->job = NULL;
        ctx->status = refused == 1 ? 503 : 599; /* 599: stopping, told on the next call */
        serve_job_free(job);
        MHD_resume_connection(ctx->conn);
        return 1;
    }
    return 0;
}

/* Tokenizes the parsed texts with the current model and queues them. */
static enum MHD_Result start_scoring(request_ctx *ctx) {
    serve_server *s = ctx->server;
    serve_input *in = &ctx->input;
    serve_model *m = serve_registry_acquire(s->registry);
    if (!m) return respond_error(ctx, 503, "the model is still loading", NULL);
    if (in->model && strcmp(in->model, m->name)) {
        char message[300];
        snprintf(message, sizeof message, "no model '%s' here (this server serves '%s')", in->model,
                 m->name);
        serve_registry_release(s->registry, m);
        return respond_error(ctx, 404, message, "model");
    }
    if (ctx->ep == EP_GATE && !in->has_threshold && !m->rm.meta.has_threshold) {
        serve_registry_release(s->registry, m);
        return respond_error(ctx, 400,
                             "is required: the model folder has none (rewardc eval sets one)",
                             "threshold");
    }
    serve_job *job = calloc(1, sizeof *job);
    if (job) {
        job->kind = JOB_SCORE;
        job->model = m;
        job->n = in->n;
        job->seqs = calloc(in->n, sizeof *job->seqs);
        job->lens = calloc(in->n, sizeof *job->lens);
        job->outcomes = calloc(in->n, sizeof *job->outcomes);
        job->rewards = calloc(in->n, sizeof *job->rewards);
    }
    if (!job || !job->seqs || !job->lens || !job->outcomes || !job->rewards) {
        serve_job_free(job);
        serve_registry_release(s->registry, m);
        return respond_error(ctx, 500, "out of memory", NULL);
    }
    for (size_t i = 0; i < in->n; i++) {
        const serve_text *t = &in->texts[i];
        rc_status st =
            t->messages ? rc_reward_model_encode_messages(&m->rm, t->messages, t->n_messages,
                                                          &job->seqs[i], &job->lens[i], &job->outcomes[i])
            : t->text   ? rc_reward_model_encode_text(&m->rm, t->text, &job->seqs[i], &job->lens[i],
                                                      &job->outcomes[i])
                        : rc_reward_model_encode(&m->rm, t->prompt, t->response, &job->seqs[i],
                                                 &job->lens[i], &job->outcomes[i]);
        if (st != RC_OK) {
            char param[32];
            snprintf(param, sizeof param, ctx->ep == EP_GATE ? "response" : "input[%zu]", i);
            serve_job_free(job);
            serve_registry_release(s->registry, m);
            return respond_error(ctx, 400, rc_last_error(), param);
        }
        job->tokens += job->lens[i];
    }
    if (enqueue(ctx, job)) serve_registry_release(s->registry, m);
    return MHD_YES;
}

static enum MHD_Result start_reload(request_ctx *ctx) {
    serve_job *job = calloc(1, sizeof *job);
    if (!job) return respond_error(ctx, 500, "out of memory", NULL);
    job->kind = JOB_RELOAD;
    if (ctx->len) {
        cJSON *root = cJSON_ParseWithLength(ctx->body, ctx->len);
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        const int bad = !cJSON_IsObject(root) || (model && !cJSON_IsString(model));
        if (!bad && model) job->reload_dir = strdup(model->valuestring);
        cJSON_Delete(root);
        if (bad) {
            serve_job_free(job);
            return respond_error(ctx, 400, "must be {\"model\": \"DIR\"} or empty", "body");
        }
    }
    enqueue(ctx, job);
    return MHD_YES;
}

/* The connection came back from the model thread (or was refused). */
static enum MHD_Result finish_resumed(request_ctx *ctx) {
    serve_job *job = ctx->job;
    if (!job) {
        return respond_error(ctx, 503,
                             ctx->status == 503 ? "the queue is full; retry shortly"
                                                : "the server is shutting down",
                             NULL);
    }
    if (job->state == JOB_EXPIRED)
        return respond_error(ctx, 504, "timed out waiting for the model (--timeout)", NULL);
    if (job->state == JOB_FAILED) return respond_error(ctx, 500, job->error, NULL);
    if (job->kind == JOB_RELOAD) {
        serve_model *m = serve_registry_acquire(ctx->server->registry);
        char body[512];
        snprintf(body, sizeof body, "{\"status\":\"ok\",\"model\":\"%s\",\"model_version\":%d}",
                 m ? m->name : "", job->reload_version);
        serve_registry_release(ctx->server->registry, m);
        return respond(ctx, 200, strdup(body), JSON_TYPE, NULL);
    }
    return respond(ctx, 200, serve_render_result(ctx->ep, &ctx->input, job), JSON_TYPE, NULL);
}

static enum MHD_Result on_get(request_ctx *ctx) {
    serve_server *s = ctx->server;
    serve_model *m = serve_registry_acquire(s->registry);
    enum MHD_Result ret;
    if (ctx->ep == EP_HEALTH) {
        ret = respond(ctx, m && !s->draining ? 200 : 503, serve_render_health(m, s->draining),
                      JSON_TYPE, m && !s->draining ? NULL : "1");
    } else if (ctx->ep == EP_MODELS) {
        ret = respond(ctx, 200, serve_render_models(m), JSON_TYPE, NULL);
    } else {
        size_t texts, jobs;
        serve_batcher_depth(s->batcher, &texts, &jobs);
        ret = respond(ctx, 200, serve_metrics_render(s->metrics, texts, jobs, m ? m->version : 0),
                      "text/plain; version=0.0.4; charset=utf-8", NULL);
    }
    serve_registry_release(s->registry, m);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    (void)version;
    serve_server *s = cls;
    request_ctx *ctx = *req_cls;
    if (!ctx) { /* headers are in; the body (if any) follows */
        ctx = calloc(1, sizeof *ctx);
        if (!ctx) return MHD_NO;
        ctx->server = s;
        ctx->conn = conn;
        ctx->started = serve_now();
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        ctx->admin = info && info->daemon == s->admin;
        ctx->ep = route(url);
        if (ctx->admin != (ctx->ep == EP_RELOAD) && !(ctx->admin && ctx->ep == EP_HEALTH))
            ctx->ep = EP_OTHER; /* each listener serves its own paths */
        *req_cls = ctx;
        return MHD_YES;
    }
    if (*upload_data_size) {
        const size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (ctx->too_large || ctx->len + n > s->opt->max_body_bytes) {
            ctx->too_large = 1; /* read on and drop, then answer 413 */
            free(ctx->body);
            ctx->body = NULL;
            return MHD_YES;
        }
        if (ctx->len + n + 1 > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap : 4096;
            while (cap < ctx->len + n + 1) cap *= 2;
            char *grown = realloc(ctx->body, cap);
            if (!grown) return MHD_NO;
            ctx->body = grown;
            ctx->cap = cap;
        }
        memcpy(ctx->body + ctx->len, upload_data, n);
        ctx->len += n;
        ctx->body[ctx->len] = '\0';
        return MHD_YES;
    }
    if (ctx->job || ctx->status) return finish_resumed(ctx);

    const int get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    const int post = !strcmp(method, MHD_HTTP_METHOD_POST);
    switch (ctx->ep) {
    case EP_OTHER: {
        char message[300];
        snprintf(message, sizeof message, "no endpoint %.200s %s", url,
                 ctx->admin ? "here (the admin listener serves POST /admin/reload)"
                            : "(see docs/openapi.yaml)");
        return respond_error(ctx, 404, message, NULL);
    }
    case EP_HEALTH:
    case EP_MODELS:
    case EP_METRICS:
        if (!get) return respond_error(ctx, 405, "this endpoint takes GET", NULL);
        return on_get(ctx);
    default:
        break;
    }
    if (!post) return respond_error(ctx, 405, "this endpoint takes POST", NULL);
    if (ctx->too_large) {
        char message[128];
        snprintf(message, sizeof message, "is larger than %zu bytes (--max_body_bytes)",
                 s->opt->max_body_bytes);
        return respond_error(ctx, 413, message, "body");
    }
    if (s->draining) return respond_error(ctx, 503, "the server is shutting down", NULL);
    if (ctx->ep == EP_RELOAD) return start_reload(ctx);
    if (serve_parse_request(ctx->ep, ctx->body ? ctx->body : "", ctx->len, s->opt->max_texts,
                            &ctx->input))
        return respond_error(ctx, ctx->input.status, ctx->input.message, ctx->input.param);
    return start_scoring(ctx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode why) {
    (void)conn;
    serve_server *s = cls;
    request_ctx *ctx = *req_cls;
    if (!ctx) return;
    if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && (ctx->job || ctx->counted))
        serve_metrics_count(s->metrics, &s->metrics->disconnected);
    if (ctx->job) {
        if (ctx->job->kind == JOB_SCORE) serve_registry_release(s->registry, ctx->job->model);
        serve_job_free(ctx->job);
    }
    leave_flight(ctx);
    serve_input_free(&ctx->input);
    free(ctx->body);
    free(ctx);
    *req_cls = NULL;
}

static struct MHD_Daemon *listen_on(serve_server *s, const char *host, int port, int threads,
                                    int connections) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        rc_fail(RC_ERR_INVALID_ARG, "--host %s: not an IPv4 address", host);
        return NULL;
    }
    /* a pool of one is no pool to libmicrohttpd (it warns): leave the option out */
    struct MHD_OptionItem options[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_CONNECTION_LIMIT, connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL}, /* idle keep-alive connections, seconds */
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL}};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
        (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, options, MHD_OPTION_END);
    if (!d) rc_fail(RC_ERR_IO, "cannot listen on %s:%d (in use, or not this machine's address?)", host, port);
    return d;
}

rc_status serve_server_start(const serve_options *opt, serve_batcher *b, serve_registry *reg,
                             serve_metrics *metrics, serve_server **out) {
    serve_server *s = calloc(1, sizeof *s);
    if (!s) return rc_fail(RC_ERR_OOM, "cannot allocate the server");
    s->opt = opt;
    s->batcher = b;
    s->registry = reg;
    s->metrics = metrics;
    pthread_mutex_init(&s->lock, NULL);
    s->daemon = listen_on(s, opt->host, opt->port, opt->http_threads, opt->max_connections);
    if (s->daemon && opt->admin_port >= 0)
        s->admin = listen_on(s, "127.0.0.1", opt->admin_port, 1, 16);
    if (!s->daemon || (opt->admin_port >= 0 && !s->admin)) {
        rc_status st = rc_fail_context(RC_ERR_IO, "rewardc serve");
        serve_server_stop(s);
        return st;
    }
    *out = s;
    return RC_OK;
}

static int bound_port(struct MHD_Daemon *d) {
    const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return info ? info->port : -1;
}

int serve_server_port(const serve_server *s) { return bound_port(s->daemon); }
int serve_server_admin_port(const serve_server *s) { return bound_port(s->admin); }

void serve_server_drain(serve_server *s, double grace_s) {
    pthread_mutex_lock(&s->lock);
    s->draining = 1;
    const double until = serve_now() + grace_s;
    while (s->in_flight > 0 && serve_now() < until) {
        pthread_mutex_unlock(&s->lock);
        const struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&s->lock);
    }
    const int left = s->in_flight;
    pthread_mutex_unlock(&s->lock);
    if (left) fprintf(stderr, "rewardc serve: %d requests still unanswered after %.0f s\n", left, grace_s);
}

void serve_server_stop(serve_server *s) {
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    if (s->admin) MHD_stop_daemon(s->admin);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
