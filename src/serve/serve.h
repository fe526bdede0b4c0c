/* rewardc serve: the pieces of the HTTP reward service and how they meet.
 *
 *   http.c     the libmicrohttpd front: routing, bodies, limits, responses
 *   request.c  JSON request bodies -> texts (errors name the field), and
 *              rewards -> JSON response bodies
 *   models.c   loaded model generations: the current one, and replaced ones
 *              kept until the last request encoded with them is answered
 *   batcher.c  the bounded queue and the one model thread that scores its
 *              jobs in batches (also loads models, so reloads queue in order)
 *   metrics.c  counters and histograms, rendered as Prometheus text
 *
 * HTTP threads parse, tokenize (the tokenizer is read-only, see
 * rc_reward_model_encode) and queue a job, then suspend the connection; the
 * model thread scores a batch of jobs with rc_reward_model_score, the same
 * call `rewardc score` makes, and resumes their connections. */
#ifndef REWARDC_SERVE_H
#define REWARDC_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rewardc/tokenizer.h"
#include "rewardc/workflow.h"

/* ---- options (cmd_serve.c fills them) ---- */
typedef struct {
    const char *model_dir, *backend, *host;
    int device, port, admin_port; /* port 0: any free one; admin_port -1: no admin listener */
    int batch_rows;               /* sequences per forward pass, as score --batch_size */
    int share_prefix;
    int http_threads, max_connections;
    size_t max_body_bytes;
    int max_texts;                /* per request */
    int max_batch_texts;          /* per model batch */
    size_t max_batch_tokens;
    double max_wait_s;            /* how long the first job of a batch waits for company */
    int queue_texts;              /* texts queued at most; then 503 */
    double timeout_s;             /* a job still queued after this is answered 504 */
} serve_options;

double serve_now(void); /* monotonic seconds */

/* ---- metrics.c ---- */
typedef enum { EP_SCORE, EP_GATE, EP_CLASSIFY, EP_HEALTH, EP_MODELS, EP_METRICS, EP_RELOAD,
               EP_OTHER, EP_COUNT } serve_endpoint;
const char *serve_endpoint_path(serve_endpoint ep);

enum { LATENCY_BUCKETS = 14, BATCH_BUCKETS = 10, STATUS_SLOTS = 10 };
typedef struct {
    pthread_mutex_t lock;
    unsigned long requests[EP_COUNT][STATUS_SLOTS];
    unsigned long latency[LATENCY_BUCKETS + 1]; /* scoring endpoints; last: +Inf */
    double latency_sum;
    unsigned long latency_count;
    unsigned long batch_texts[BATCH_BUCKETS + 1];
    unsigned long batches, batch_texts_sum, batch_requests_sum;
    unsigned long texts, tokens, rejected_full, expired, disconnected;
    unsigned long reloads_ok, reloads_failed;
    double model_seconds; /* time the model thread spent scoring */
} serve_metrics;

void serve_metrics_init(serve_metrics *m);
void serve_metrics_destroy(serve_metrics *m);
void serve_metrics_request(serve_metrics *m, serve_endpoint ep, int status, double seconds);
void serve_metrics_batch(serve_metrics *m, size_t texts, size_t requests, size_t tokens,
                         double seconds);
void serve_metrics_count(serve_metrics *m, unsigned long *counter); /* ++ under the lock */
/* queue_* and model_version are read by the caller (they live elsewhere) */
char *serve_metrics_render(serve_metrics *m, size_t queue_texts, size_t queue_jobs,
                           int model_version);

/* ---- models.c ---- */
typedef struct serve_model {
    rc_reward_model rm;
    char *dir, *name;
    int version; /* 1 for the first load, +1 per successful reload */
    int refs;    /* jobs holding it, guarded by the registry's lock */
    struct serve_model *next_retired;
} serve_model;

typedef struct {
    pthread_mutex_t lock;
    serve_model *current; /* NULL until the first load succeeds */
    serve_model *retired; /* replaced; freed by the model thread at refs 0 */
    int last_version;
    const char *backend;
    int device, batch_rows, share_prefix;
} serve_registry;

void serve_registry_init(serve_registry *reg, const serve_options *opt);
/* Opens dir and makes it current; on failure the current one keeps serving.
 * Model thread only (a backend lives on the thread that made it). */
rc_status serve_registry_load(serve_registry *reg, const char *dir);
serve_model *serve_registry_acquire(serve_registry *reg); /* NULL: none loaded yet */
void serve_registry_release(serve_registry *reg, serve_model *m);
void serve_registry_collect(serve_registry *reg); /* frees retired models nobody holds */
void serve_registry_destroy(serve_registry *reg);

/* ---- batcher.c ---- */
typedef enum { JOB_QUEUED, JOB_DONE, JOB_FAILED, JOB_EXPIRED } serve_job_state;
typedef enum { JOB_SCORE, JOB_RELOAD } serve_job_kind;

typedef struct serve_job {
    serve_job_kind kind;
    /* JOB_SCORE: n sequences encoded by `model`'s tokenizer */
    serve_model *model;
    size_t n, tokens;
    int32_t **seqs;
    size_t *lens;
    rc_encode_outcome *outcomes;
    float *rewards;
    /* JOB_RELOAD: the folder to load (NULL: the current one's) */
    char *reload_dir;
    int reload_version;
    double queued_at, deadline;
    serve_job_state state;
    char error[512];
    /* called on the model thread once state is final; the job is the
     * caller's again from then on */
    void (*done)(struct serve_job *job, void *ctx);
    void *done_ctx;
    struct serve_job *next;
} serve_job;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    serve_job *head, *tail;
    size_t queued_texts, queued_jobs;
    int stopping; /* no new jobs; drain then exit */
    const serve_options *opt;
    serve_registry *registry;
    serve_metrics *metrics;
    pthread_t thread;
    int started;
    int first_load_done, first_load_failed; /* a failed one: the server exits */
} serve_batcher;

rc_status serve_batcher_start(serve_batcher *b, const serve_options *opt, serve_registry *reg,
                              serve_metrics *metrics);
/* 0 queued; 1 queue full (503); 2 stopping (503). Reload jobs are never refused for space. */
int serve_batcher_submit(serve_batcher *b, serve_job *job);
/* The first load: -1 still under way, 0 loaded, 1 failed (the thread said why). */
int serve_batcher_first_load(serve_batcher *b);
void serve_batcher_depth(serve_batcher *b, size_t *texts, size_t *jobs);
/* Stops taking jobs, finishes the queued ones, joins the model thread. */
void serve_batcher_stop(serve_batcher *b);
void serve_job_free(serve_job *job); /* frees the arrays; releases nothing */

/* ---- request.c ---- */
/* One text to score: prompt + response, a literal text, or a conversation
 * (messages pointing into messages_json), encoded as rewardc score does. */
typedef struct {
    char *prompt, *response, *text;
    cJSON *messages_json;
    rc_chat_message *messages;
    size_t n_messages;
} serve_text;

typedef struct {
    serve_text *texts;
    size_t n;
    int has_threshold;
    double threshold;
    char *model; /* the "model" the client named, or NULL */
    /* on error: */
    int status;  /* 400 or 413 */
    char param[96], message[256];
} serve_input;

/* Parses the body of a POST to ep (EP_SCORE, EP_GATE, EP_CLASSIFY): 0 ok. */
int serve_parse_request(serve_endpoint ep, const char *body, size_t len, int max_texts,
                        serve_input *in);
void serve_input_free(serve_input *in);
/* The success body for a finished job; NULL when out of memory. */
char *serve_render_result(serve_endpoint ep, const serve_input *in, const serve_job *job);
char *serve_render_error(int status, const char *message, const char *param);
char *serve_render_models(const serve_model *m);
char *serve_render_health(const serve_model *m, int draining);

/* ---- http.c ---- */
typedef struct serve_server serve_server;
rc_status serve_server_start(const serve_options *opt, serve_batcher *b, serve_registry *reg,
                             serve_metrics *metrics, serve_server **out);
int serve_server_port(const serve_server *s);
int serve_server_admin_port(const serve_server *s);
/* Refuses new requests (503) and waits (up to grace_s) until the ones taken
 * have been answered; then the batcher may stop. */
void serve_server_drain(serve_server *s, double grace_s);
void serve_server_stop(serve_server *s);

#endif
