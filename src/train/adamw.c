/* AdamW over the model's parameter table (torch.optim.AdamW semantics), and
 * global-norm gradient clipping (torch.nn.utils.clip_grad_norm_). */
#include <math.h>
#include <stdlib.h>

#include "rewardc/train.h"

struct rc_adamw {
    rc_model *model;
    rc_adamw_config cfg;
    rc_buffer *moments; /* [2, n]: first moments, then second moments, laid out as the
                           gradients (of the trainable parameters only) */
    size_t n;
    long step;
};

rc_status rc_adamw_create(rc_model *m, const rc_adamw_config *cfg, rc_adamw **out) {
    *out = NULL;
    rc_adamw *opt = calloc(1, sizeof *opt);
    if (!opt) return rc_fail(RC_ERR_OOM, "cannot allocate the optimizer");
    opt->model = m;
    opt->cfg = *cfg;
    opt->n = rc_model_grad_elements(m);
    rc_backend *be = rc_model_backend(m);
    rc_status st = be->alloc(be, opt->n ? 2 * opt->n : 1, &opt->moments);
    if (st != RC_OK) {
        double megabytes = 2.0 * opt->n * 4 / 1e6;
        free(opt);
        return rc_fail_context(st, "allocating AdamW moments (%.1f MB)", megabytes);
    }
    be->fill(be, (rc_view){opt->moments, 0}, 0.0f, 2 * opt->n);
    *out = opt;
    return RC_OK;
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
    rc_view first = {opt->moments, 0}, second = {opt->moments, opt->n};
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const rc_param_info *p = rc_model_param(m, i);
        if (!p->trainable) continue; /* frozen: no gradient, no moments */
        double decay = p->no_weight_decay ? 0.0 : opt->cfg.weight_decay;
        /* the scalars stay doubles, as torch's are: 1 - beta2 from a beta2
         * already rounded to float is 1.3e-5 off, which moved every step */
        be->adamw(be, rc_model_param_view(m, i), rc_model_grad_view(m, i), (float)grad_scale,
                  rc_view_at(first, p->grad_offset), rc_view_at(second, p->grad_offset),
                  p->size, lr, opt->cfg.beta1, opt->cfg.beta2, opt->cfg.epsilon, decay,
                  bias_correction1, bias_correction2);
    }
    rc_status st = be->sync(be);
    return st == RC_OK ? RC_OK : rc_fail_context(st, "AdamW step %ld", opt->step);
}

long rc_adamw_steps_taken(const rc_adamw *opt) { return opt->step; }
size_t rc_adamw_state_size(const rc_adamw *opt) { return opt->n; }

rc_status rc_adamw_get_state(rc_adamw *opt, float *m, float *v, size_t n, long *step) {
    if (n != opt->n)
        return rc_fail(RC_ERR_INVALID_ARG, "optimizer state has %zu elements, not %zu", opt->n, n);
    rc_backend *be = rc_model_backend(opt->model);
    rc_status st = be->download(be, m, (rc_view){opt->moments, 0}, n);
    if (st == RC_OK) st = be->download(be, v, (rc_view){opt->moments, n}, n);
    *step = opt->step;
    return st;
}

rc_status rc_adamw_set_state(rc_adamw *opt, const float *m, const float *v, size_t n, long step) {
    if (n != opt->n)
        return rc_fail(RC_ERR_INVALID_ARG, "optimizer state has %zu elements, not %zu", opt->n, n);
    rc_backend *be = rc_model_backend(opt->model);
    rc_status st = be->upload(be, (rc_view){opt->moments, 0}, m, n);
    if (st == RC_OK) st = be->upload(be, (rc_view){opt->moments, n}, v, n);
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
