/* The queue between the HTTP threads and the one model thread. The model
 * thread takes the jobs at the head that fit one batch (bounded by texts and
 * tokens), after waiting up to max_wait for more to arrive, and scores all
 * their sequences with one rc_reward_model_score call, which orders them by
 * length and shares common prompt prefixes exactly as `rewardc score` does
 * for a window of lines. Reloads are jobs in the same queue, so they happen
 * between batches, on the thread that owns the backends. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve.h"

void serve_job_free(serve_job *job) {
    if (!job) return;
    for (size_t i = 0; job->seqs && i < job->n; i++) free(job->seqs[i]);
    free(job->seqs);
    free(job->lens);
    free(job->outcomes);
    free(job->rewards);
    free(job->reload_dir);
    free(job);
}

static void finish(serve_job *job, serve_job_state state) {
    job->state = state;
    if (job->done) job->done(job, job->done_ctx);
}

/* Whether the compatible jobs at the head already fill a batch. Lock held. */
static int batch_full(const serve_batcher *b) {
    size_t texts = 0, tokens = 0;
    for (const serve_job *j = b->head; j && j->kind == JOB_SCORE && j->model == b->head->model;
         j = j->next) {
        texts += j->n;
        tokens += j->tokens;
        if (texts >= (size_t)b->opt->max_batch_texts || tokens >= b->opt->max_batch_tokens)
            return 1;
    }
    return 0;
}

static void wait_until(serve_batcher *b, double until) {
    /* the condition variable's clock is CLOCK_MONOTONIC (set in start) */
    struct timespec ts;
    ts.tv_sec = (time_t)floor(until);
    ts.tv_nsec = (long)((until - floor(until)) * 1e9);
    pthread_cond_timedwait(&b->wake, &b->lock, &ts);
}

static void run_reload(serve_batcher *b, serve_job *job) {
    /* a copy: loading frees the replaced model, and with it its dir */
    char *dir = strdup(job->reload_dir ? job->reload_dir : b->registry->current->dir);
    if (!dir) {
        snprintf(job->error, sizeof job->error, "out of memory");
        finish(job, JOB_FAILED);
        return;
    }
    rc_status st = serve_registry_load(b->registry, dir);
    if (st == RC_OK) {
        job->reload_version = b->registry->current->version;
        serve_metrics_count(b->metrics, &b->metrics->reloads_ok);
        fprintf(stderr, "rewardc serve: loaded %s as model version %d\n", dir, job->reload_version);
        finish(job, JOB_DONE);
    } else {
        snprintf(job->error, sizeof job->error, "%s", rc_last_error());
        serve_metrics_count(b->metrics, &b->metrics->reloads_failed);
        fprintf(stderr, "rewardc serve: reload of %s failed, version %d keeps serving: %s\n", dir,
                b->registry->current->version, job->error);
        finish(job, JOB_FAILED);
    }
    free(dir);
}

/* Scores the jobs of one batch (a list through ->next, all of one model). */
static void score_batch(serve_batcher *b, serve_job *jobs) {
    const double now = serve_now();
    size_t n = 0, n_jobs = 0, tokens = 0;
    serve_job *live = NULL, **tail = &live;
    for (serve_job *j = jobs, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        if (now > j->deadline) { /* waited too long: answered 504, not scored */
            serve_metrics_count(b->metrics, &b->metrics->expired);
            finish(j, JOB_EXPIRED);
            continue;
        }
        *tail = j;
        tail = &j->next;
        n += j->n;
        tokens += j->tokens;
        n_jobs++;
    }
    if (!live) return;
    const int32_t **seqs = malloc(n * sizeof *seqs);
    size_t *lens = malloc(n * sizeof *lens);
    float *rewards = malloc(n * sizeof *rewards);
    rc_status st = seqs && lens && rewards ? RC_OK
                                           : rc_fail(RC_ERR_OOM, "cannot gather a batch of %zu", n);
    if (st == RC_OK) {
        size_t k = 0;
        for (serve_job *j = live; j; j = j->next)
            for (size_t i = 0; i < j->n; i++, k++) {
                seqs[k] = j->seqs[i];
                lens[k] = j->lens[i];
            }
        const double start = serve_now();
        st = rc_reward_model_score(&live->model->rm, seqs, lens, n, rewards);
        if (st == RC_OK) serve_metrics_batch(b->metrics, n, n_jobs, tokens, serve_now() - start);
    }
    size_t k = 0;
    for (serve_job *j = live, *next; j; j = next) {
        next = j->next; /* the job is its owner's once finished */
        if (st == RC_OK) {
            memcpy(j->rewards, rewards + k, j->n * sizeof *rewards);
            k += j->n;
            finish(j, JOB_DONE);
        } else {
            snprintf(j->error, sizeof j->error, "scoring failed: %s", rc_last_error());
            finish(j, JOB_FAILED);
        }
    }
    free(seqs);
    free(lens);
    free(rewards);
}

static void *model_thread(void *arg) {
    serve_batcher *b = arg;
    rc_status st = serve_registry_load(b->registry, b->opt->model_dir);
    if (st != RC_OK) fprintf(stderr, "rewardc serve: %s\n", rc_last_error());
    pthread_mutex_lock(&b->lock);
    b->first_load_done = 1;
    b->first_load_failed = st != RC_OK;
    pthread_mutex_unlock(&b->lock);
    if (st != RC_OK) return NULL;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (!b->head && !b->stopping) pthread_cond_wait(&b->wake, &b->lock);
        if (!b->head) { /* stopping and drained */
            pthread_mutex_unlock(&b->lock);
            break;
        }
        if (b->head->kind == JOB_RELOAD) {
            serve_job *job = b->head;
            b->head = job->next;
            if (!b->head) b->tail = NULL;
            b->queued_jobs--;
            pthread_mutex_unlock(&b->lock);
            job->next = NULL;
            run_reload(b, job);
            continue;
        }
        /* wait for company, unless the batch is full already or we are draining */
        const double until = b->head->queued_at + b->opt->max_wait_s;
        while (!b->stopping && !batch_full(b) && serve_now() < until) wait_until(b, until);
        serve_job *first = b->head, *last = NULL;
        size_t texts = 0, tokens = 0;
        for (serve_job *j = first; j && j->kind == JOB_SCORE && j->model == first->model; j = j->next) {
            if (last && (texts + j->n > (size_t)b->opt->max_batch_texts ||
                         tokens + j->tokens > b->opt->max_batch_tokens))
                break;
            texts += j->n;
            tokens += j->tokens;
            last = j;
        }
        b->head = last->next;
        if (!b->head) b->tail = NULL;
        last->next = NULL;
        for (serve_job *j = first; j; j = j->next) b->queued_jobs--;
        b->queued_texts -= texts;
        pthread_mutex_unlock(&b->lock);
        score_batch(b, first);
        serve_registry_collect(b->registry);
    }
    return NULL;
}

rc_status serve_batcher_start(serve_batcher *b, const serve_options *opt, serve_registry *reg,
                              serve_metrics *metrics) {
    memset(b, 0, sizeof *b);
    b->opt = opt;
    b->registry = reg;
    b->metrics = metrics;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &attr);
    pthread_condattr_destroy(&attr);
    int err = pthread_create(&b->thread, NULL, model_thread, b);
    if (err) return rc_fail(RC_ERR_IO, "cannot start the model thread: %s", strerror(err));
    b->started = 1;
    return RC_OK;
}

int serve_batcher_first_load(serve_batcher *b) {
    pthread_mutex_lock(&b->lock);
    const int state = !b->first_load_done ? -1 : b->first_load_failed;
    pthread_mutex_unlock(&b->lock);
    return state;
}

int serve_batcher_submit(serve_batcher *b, serve_job *job) {
    pthread_mutex_lock(&b->lock);
    int refused = 0;
    if (b->stopping || b->first_load_failed) refused = 2;
    else if (job->kind == JOB_SCORE && b->queued_texts + job->n > (size_t)b->opt->queue_texts)
        refused = 1;
    if (!refused) {
        job->state = JOB_QUEUED;
        job->queued_at = serve_now();
        job->deadline = job->queued_at + b->opt->timeout_s;
        job->next = NULL;
        if (b->tail) b->tail->next = job;
        else b->head = job;
        b->tail = job;
        b->queued_jobs++;
        if (job->kind == JOB_SCORE) b->queued_texts += job->n;
        pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->lock);
    return refused;
}

void serve_batcher_depth(serve_batcher *b, size_t *texts, size_t *jobs) {
    pthread_mutex_lock(&b->lock);
    *texts = b->queued_texts;
    *jobs = b->queued_jobs;
    pthread_mutex_unlock(&b->lock);
}

void serve_batcher_stop(serve_batcher *b) {
    if (!b->started) return;
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    b->started = 0;
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
}
