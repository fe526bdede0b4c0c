/* AdamW over the model's parameter table (torch.optim.AdamW semantics), and
 * global-norm gradient clipping (torch.nn.utils.clip_grad_norm_). */
#include <math.h>
#include <stdlib.h>

#include "dist/dist.h"
#include "rewardc/train.h"

struct rc_adamw {
    rc_model *model;
    rc_adamw_config cfg;
    rc_buffer *moments; /* [2, hi - lo]: first moments, then second moments, laid out
                           as the gradients (of the trainable parameters only) */
    size_t n;           /* elements of the gradient buffer */
    size_t lo, hi;      /* the slice of it this optimizer updates (all but under ZeRO-1) */
    int sharded;
    long step;
};

static rc_status create(rc_model *m, const rc_adamw_config *cfg, int sharded, rc_adamw **out) {
    *out = NULL;
    rc_adamw *opt = calloc(1, sizeof *opt);
    if (!opt) return rc_fail(RC_ERR_OOM, "cannot allocate the optimizer");
    opt->model = m;
    opt->cfg = *cfg;
    opt->n = rc_model_grad_elements(m);
    opt->sharded = sharded;
    opt->hi = opt->n;
    if (sharded) rc_dist_shard(opt->n, rc_dist_rank(), rc_dist_size(), &opt->lo, &opt->hi);
    size_t kept = opt->hi - opt->lo;
    rc_backend *be = rc_model_backend(m);
    size_t elements = kept ? 2 * kept : 1; /* a rank's slice may be empty */
    rc_status st = be->alloc(be, elements, &opt->moments);
    if (st != RC_OK) {
        double megabytes = 2.0 * kept * 4 / 1e6;
        free(opt);
        return rc_fail_context(st, "allocating AdamW moments (%.1f MB)", megabytes);
    }
    be->fill(be, (rc_view){opt->moments, 0}, 0.0f, elements);
    *out = opt;
    return RC_OK;
}

rc_status rc_adamw_create(rc_model *m, const rc_adamw_config *cfg, rc_adamw **out) {
    return create(m, cfg, 0, out);
}

rc_status rc_adamw_create_sharded(rc_model *m, const rc_adamw_config *cfg, rc_adamw **out) {
    return create(m, cfg, 1, out);
}

void rc_adamw_free(rc_adamw *opt) {
    if (!opt) return;
    rc_backend *be = rc_model_backend(opt->model);
    if (opt->moments) be->free(be, opt->moments);
    free(opt);
}

rc_status rc_adamw_step(rc_adamw *opt, double lr, double grad_scale) {
    rc_model *m = opt->model;
    rc_backend *be = rc_model_backend(m);
    opt->step++;
    /* torch computes these in Python doubles */
    double bias_correction1 = 1.0 - pow(opt->cfg.beta1, (double)opt->step);
    double bias_correction2 = 1.0 - pow(opt->cfg.beta2, (double)opt->step);
    rc_view first = {opt->moments, 0}, second = {opt->moments, opt->hi - opt->lo};
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const rc_param_info *p = rc_model_param(m, i);
        if (!p->trainable) continue; /* frozen: no gradient, no moments */
        /* the part of this parameter's gradient inside the optimizer's slice */
        const size_t g = p->grad_offset;
        size_t a = g > opt->lo ? g : opt->lo;
        size_t b = g + p->size < opt->hi ? g + p->size : opt->hi;
        if (a >= b) continue;
        double decay = p->no_weight_decay ? 0.0 : opt->cfg.weight_decay;
        /* the scalars stay doubles, as torch's are: 1 - beta2 from a beta2
         * already rounded to float is 1.3e-5 off, which moved every step */
        be->adamw(be, rc_view_at(rc_model_param_view(m, i), a - g),
                  rc_view_at(rc_model_grad_view(m, i), a - g), (float)grad_scale,
                  rc_view_at(first, a - opt->lo), rc_view_at(second, a - opt->lo), b - a, lr,
                  opt->cfg.beta1, opt->cfg.beta2, opt->cfg.epsilon, decay, bias_correction1,
                  bias_correction2);
    }
    rc_status st = be->sync(be);
    return st == RC_OK ? RC_OK : rc_fail_context(st, "AdamW step %ld", opt->step);
}

long rc_adamw_steps_taken(const rc_adamw *opt) { return opt->step; }
size_t rc_adamw_state_size(const rc_adamw *opt) { return opt->n; }

/* A sharded optimizer's moments, every rank's slice, into rank 0's whole
 * arrays (each in turn, through one slice of host memory here). */
static rc_status gather_shards(rc_adamw *opt, float *whole, size_t moment) {
    int size = rc_dist_size(), rank = rc_dist_rank();
    size_t *offsets = malloc((size_t)size * sizeof *offsets);
    size_t *counts = malloc((size_t)size * sizeof *counts);
    size_t kept = opt->hi - opt->lo;
    float *mine = rank == 0 ? whole + opt->lo : malloc((kept + 1) * sizeof *mine);
    rc_status st = offsets && counts && mine ? RC_OK
                                             : rc_fail(RC_ERR_OOM, "cannot allocate the optimizer slice");
    for (int r = 0; r < size && st == RC_OK; r++) {
        size_t lo, hi;
        rc_dist_shard(opt->n, r, size, &lo, &hi);
        offsets[r] = lo;
        counts[r] = hi - lo;
    }
    rc_backend *be = rc_model_backend(opt->model);
    if (st == RC_OK) st = be->download(be, mine, (rc_view){opt->moments, moment * kept}, kept);
    if (st == RC_OK) st = rc_dist_gather_f32(mine, kept, whole, offsets, counts, 0);
    if (rank != 0) free(mine);
    free(offsets);
    free(counts);
    return st;
}

rc_status rc_adamw_get_state(rc_adamw *opt, float *m, float *v, size_t n, long *step) {
    if (n != opt->n)
        return rc_fail(RC_ERR_INVALID_ARG, "optimizer state has %zu elements, not %zu", opt->n, n);
    *step = opt->step;
    if (opt->sharded) {
        rc_status st = gather_shards(opt, m, 0);
        return st == RC_OK ? gather_shards(opt, v, 1) : st;
    }
    rc_backend *be = rc_model_backend(opt->model);
    rc_status st = be->download(be, m, (rc_view){opt->moments, 0}, n);
    if (st == RC_OK) st = be->download(be, v, (rc_view){opt->moments, n}, n);
    return st;
}

rc_status rc_adamw_set_state(rc_adamw *opt, const float *m, const float *v, size_t n, long step) {
    if (n != opt->n)
        return rc_fail(RC_ERR_INVALID_ARG, "optimizer state has %zu elements, not %zu", opt->n, n);
    rc_backend *be = rc_model_backend(opt->model);
    size_t kept = opt->hi - opt->lo;
    rc_status st = be->upload(be, (rc_view){opt->moments, 0}, m + opt->lo, kept);
    if (st == RC_OK) st = be->upload(be, (rc_view){opt->moments, kept}, v + opt->lo, kept);
    opt->step = step;
    return st;
}

double rc_grad_norm(rc_model *m) {
    rc_backend *be = rc_model_backend(m);
    double sum = 0.0;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const rc_param_info *p = rc_model_param(m, i);
        if (p->trainable) sum += be->sum_squares(be, rc_model_grad_view(m, i), p->size);
    }
    return sqrt(sum);
}

double rc_clip_factor(double norm, double max_norm) {
    if (!(max_norm > 0.0)) return 1.0;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? coef : 1.0;
}
