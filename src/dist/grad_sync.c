/* Bucketed gradient all-reduce / reduce-scatter and parameter all-gather
 * over the flat parameter and gradient buffers (see grad_sync.h). */
#include "dist/grad_sync.h"

#include <math.h>
#include <stdlib.h>

#include "dist/dist.h"
#include "rewardc/train.h"

/* 4 Mi floats (16 MB) per collective: large enough that MPI runs at its
 * bandwidth, small enough that the host staging stays small */
#define DEFAULT_BUCKET ((size_t)1 << 22)

struct rc_grad_sync {
    rc_model *model;
    rc_backend *be;
    int zero_stage, rank, size;
    size_t n;           /* elements of the gradient buffer (the trainable parameters') */
    size_t n_params;    /* elements of the parameter buffer */
    size_t lo, hi;      /* this rank's ZeRO-1 slice */
    size_t bucket;
    float *send, *recv; /* host staging, one bucket each */
    int *counts;        /* per rank, of one bucket */
};

rc_status rc_grad_sync_create(rc_model *m, int zero_stage, size_t bucket_elements,
                              rc_grad_sync **out) {
    *out = NULL;
    if (zero_stage != 0 && zero_stage != 1)
        return rc_fail(RC_ERR_INVALID_ARG, "--zero must be 0 or 1, not %d", zero_stage);
    /* ZeRO-1 slices one layout shared by parameters and gradients */
    if (zero_stage == 1 && !rc_model_trains_everything(m))
        return rc_fail(RC_ERR_UNSUPPORTED, "--zero 1 shards the optimizer of a model that trains "
                       "every parameter; with a frozen part or LoRA adapters use --zero 0");
    rc_grad_sync *s = calloc(1, sizeof *s);
    if (!s) return rc_fail(RC_ERR_OOM, "cannot allocate the gradient synchronisation");
    s->model = m;
    s->be = rc_model_backend(m);
    s->zero_stage = zero_stage;
    s->rank = rc_dist_rank();
    s->size = rc_dist_size();
    s->n = rc_model_grad_elements(m);
    rc_model_params_all(m, &s->n_params);
    rc_dist_shard(s->n, s->rank, s->size, &s->lo, &s->hi);
    s->bucket = bucket_elements ? bucket_elements : DEFAULT_BUCKET;
    if (s->bucket > s->n_params) s->bucket = s->n_params;
    if (s->size > 1) {
        s->send = malloc(s->bucket * sizeof *s->send);
        s->recv = malloc(s->bucket * sizeof *s->recv);
        s->counts = malloc((size_t)s->size * sizeof *s->counts);
        if (!s->send || !s->recv || !s->counts) {
            size_t bucket = s->bucket;
            rc_grad_sync_free(s);
            return rc_fail(RC_ERR_OOM, "cannot allocate %zu-element gradient buckets", bucket);
        }
    }
    *out = s;
    return RC_OK;
}

void rc_grad_sync_free(rc_grad_sync *s) {
    if (!s) return;
    free(s->send);
    free(s->recv);
    free(s->counts);
    free(s);
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* How much of the bucket [at, at + len) each rank's slice holds. */
static void bucket_counts(rc_grad_sync *s, size_t at, size_t len) {
    for (int r = 0; r < s->size; r++) {
        size_t lo, hi;
        rc_dist_shard(s->n, r, s->size, &lo, &hi);
        size_t a = max_size(lo, at), b = min_size(hi, at + len);
        s->counts[r] = b > a ? (int)(b - a) : 0;
    }
}

rc_status rc_grad_sync_broadcast_params(rc_grad_sync *s) {
    if (s->size == 1) return RC_OK;
    size_t n;
    rc_view params = rc_model_params_all(s->model, &n);
    rc_status st = RC_OK;
    for (size_t at = 0; at < n && st == RC_OK; at += s->bucket) {
        size_t len = min_size(s->bucket, n - at);
        if (s->rank == 0) st = s->be->download(s->be, s->send, rc_view_at(params, at), len);
        if (st == RC_OK) st = rc_dist_broadcast(s->send, len * sizeof *s->send, 0);
        if (st == RC_OK && s->rank != 0) st = s->be->upload(s->be, rc_view_at(params, at), s->send, len);
    }
    return st == RC_OK ? RC_OK : rc_fail_context(st, "broadcasting the parameters");
}

rc_status rc_grad_sync_reduce(rc_grad_sync *s) {
    if (s->size == 1) return RC_OK;
    rc_view grads = rc_model_grads_all(s->model);
    rc_status st = RC_OK;
    for (size_t at = 0; at < s->n && st == RC_OK; at += s->bucket) {
        size_t len = min_size(s->bucket, s->n - at);
        st = s->be->download(s->be, s->send, rc_view_at(grads, at), len);
        if (st != RC_OK) break;
        if (s->zero_stage == 0) {
            st = rc_dist_allreduce_sum_f32(s->send, len);
            if (st == RC_OK) st = s->be->upload(s->be, rc_view_at(grads, at), s->send, len);
            continue;
        }
        /* ZeRO-1: only this rank's part of the bucket comes back summed;
         * the rest of its gradient buffer is left stale and never read */
        bucket_counts(s, at, len);
        st = rc_dist_reduce_scatter_sum_f32(s->send, s->recv, s->counts);
        if (st == RC_OK && s->counts[s->rank] > 0)
            st = s->be->upload(s->be, rc_view_at(grads, max_size(at, s->lo)), s->recv,
                               (size_t)s->counts[s->rank]);
    }
    return st == RC_OK ? RC_OK : rc_fail_context(st, "summing gradients over %d ranks", s->size);
}

rc_status rc_grad_sync_norm(rc_grad_sync *s, double *norm) {
    if (s->zero_stage == 0 || s->size == 1) {
        *norm = rc_grad_norm(s->model);
        return RC_OK;
    }
    /* the squares of this rank's slice, parameter by parameter as
     * rc_grad_norm sums them, then the sum over ranks */
    rc_view grads = rc_model_grads_all(s->model);
    double sum = 0.0;
    for (int i = 0; i < rc_model_param_count(s->model); i++) {
        const rc_param_info *p = rc_model_param(s->model, i);
        size_t a = max_size(p->offset, s->lo), b = min_size(p->offset + p->size, s->hi);
        if (b > a) sum += s->be->sum_squares(s->be, rc_view_at(grads, a), b - a);
    }
    rc_status st = rc_dist_allreduce_sum_f64(&sum, 1);
    *norm = sqrt(sum);
    return st;
}

rc_status rc_grad_sync_gather_params(rc_grad_sync *s) {
    if (s->zero_stage == 0 || s->size == 1) return RC_OK;
    size_t n;
    rc_view params = rc_model_params_all(s->model, &n); /* the gradients' layout (ZeRO-1) */
    rc_status st = RC_OK;
    for (size_t at = 0; at < s->n && st == RC_OK; at += s->bucket) {
        size_t len = min_size(s->bucket, s->n - at);
        bucket_counts(s, at, len);
        size_t mine = max_size(at, s->lo);
        if (s->counts[s->rank] > 0)
            st = s->be->download(s->be, s->send + (mine - at), rc_view_at(params, mine),
                                 (size_t)s->counts[s->rank]);
        if (st == RC_OK) st = rc_dist_allgather_f32(s->send, s->counts);
        if (st == RC_OK) st = s->be->upload(s->be, rc_view_at(params, at), s->send, len);
    }
    return st == RC_OK ? RC_OK : rc_fail_context(st, "gathering the updated parameters");
}
