/* Optimizer support for the CPU backend: the sum of squares behind global
 * gradient-norm clipping, and one AdamW step for one tensor, written in the
 * same order of float operations as torch.optim.AdamW's single-tensor path
 * (the one PyTorch uses for CPU tensors), so trajectories track the goldens. */
#include <math.h>

#include "cpu_internal.h"

/* The reduction is split into a fixed number of contiguous chunks whatever
 * the thread count, and the chunk sums are added in order: the result is the
 * same on 1 or 64 threads. Within a chunk, vector lanes keep their own sums
 * (a scalar chain of double additions ran at a third of an element per cycle). */
enum { SUM_CHUNKS = 64 };

/* Returns NaN (and records the error for sync) if the view is too short, so
 * a caller that forgets to check cannot clip with a made-up norm. */
double cpu_sum_squares(rc_backend *be, rc_view x, size_t n) {
    if (!cpu_view_fits(be, "sum_squares", "x", x, n)) return NAN;
    if (n == 0) return 0.0;
    const float *p = cpu_f32(x);
    double partial[SUM_CHUNKS];
    CPU_PARALLEL_FOR_IF(n)
    for (ptrdiff_t chunk = 0; chunk < SUM_CHUNKS; chunk++) {
        const size_t begin = n / SUM_CHUNKS * (size_t)chunk + (n % SUM_CHUNKS) * (size_t)chunk / SUM_CHUNKS;
        const size_t end = n / SUM_CHUNKS * (size_t)(chunk + 1) +
                           (n % SUM_CHUNKS) * (size_t)(chunk + 1) / SUM_CHUNKS;
        double acc = 0.0;
        CPU_SIMD_WITH(reduction(+ : acc))
        for (size_t i = begin; i < end; i++) acc += (double)p[i] * p[i];
        partial[chunk] = acc;
    }
    double total = 0.0;
    for (int chunk = 0; chunk < SUM_CHUNKS; chunk++) total += partial[chunk];
    return total;
}

typedef struct {
    float grad_scale, decay, m_weight, beta2, v_weight, bc2_sqrt, eps, neg_step_size;
} adamw_constants;

/* One element. torch's lerp is start + w (end - start) for |w| < 0.5,
 * otherwise end - (end - start)(1 - w), exact at w == 1; lerp_from_start
 * picks the branch for the whole tensor (a constant after inlining, so the
 * loop has no branch and vectorises). */
static inline void adamw_element(float *p, const float *g, float *pm, float *pv, ptrdiff_t i,
                                 const adamw_constants *k, int lerp_from_start) {
    const float gi = g[i] * k->grad_scale;
    const float pi = p[i] * k->decay;
    const float mi = lerp_from_start ? pm[i] + k->m_weight * (gi - pm[i])
                                     : gi - (gi - pm[i]) * (1.0f - k->m_weight);
    const float vi = pv[i] * k->beta2 + k->v_weight * gi * gi;
    const float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;
    p[i] = pi + k->neg_step_size * mi / denom;
    pm[i] = mi;
    pv[i] = vi;
}

/* torch (single tensor, not capturable), with Python-double scalars rounded
 * to float where they meet a float tensor, after clip_grad_norm_'s
 * grad.mul_(clip_coef):
 *   param.mul_(1 - lr*wd)
 *   m.lerp_(grad, 1 - beta1)
 *   v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *   denom = (v.sqrt() / sqrt(bias_correction2)).add_(eps)
 *   param.addcdiv_(m, denom, value=-lr/bias_correction1) */
void cpu_adamw(rc_backend *be, rc_view param, rc_view grad, float grad_scale, rc_view m, rc_view v,
               size_t n, double lr, double beta1, double beta2, double eps, double weight_decay,
               double bias_correction1, double bias_correction2) {
    static const char op[] = "adamw";
    if (!cpu_view_fits(be, op, "param", param, n) || !cpu_view_fits(be, op, "grad", grad, n) ||
        !cpu_view_fits(be, op, "m", m, n) || !cpu_view_fits(be, op, "v", v, n) || n == 0)
        return;
    if (!(bias_correction1 > 0.0f) || !(bias_correction2 > 0.0f)) {
        cpu_record_error(be, RC_ERR_INVALID_ARG,
                         "cpu adamw: bias corrections must be positive (got %g, %g; was the "
                         "step counted?)",
                         (double)bias_correction1, (double)bias_correction2);
        return;
    }
    const adamw_constants k = {
        .grad_scale = grad_scale,
        .decay = (float)(1.0 - (double)lr * (double)weight_decay),
        .m_weight = (float)(1.0 - (double)beta1),
        .beta2 = beta2,
        .v_weight = (float)(1.0 - (double)beta2),
        .bc2_sqrt = (float)sqrt((double)bias_correction2),
        .eps = eps,
        .neg_step_size = (float)(-((double)lr / (double)bias_correction1)),
    };
    float *p = cpu_f32(param);
    const float *g = cpu_f32(grad);
    float *pm = cpu_f32(m);
    float *pv = cpu_f32(v);
    if (fabsf(k.m_weight) < 0.5f) {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) adamw_element(p, g, pm, pv, i, &k, 1);
    } else {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) adamw_element(p, g, pm, pv, i, &k, 0);
    }
}
