/* Element-wise ops for the CPU backend: fill, activations (ReLU, exact GELU,
 * tanh-approximated GELU, SiLU) with their derivatives, the gated products
 * of SwiGLU/GeGLU MLPs, add, axpy and scale. Formulas follow PyTorch: relu'
 * uses inp > 0; GELU exact is 0.5 x (1 + erf(x/sqrt2)); GELU tanh is
 * 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))); SiLU is x sigmoid(x). */
#include <math.h>

#include "cpu_internal.h"

static const float INV_SQRT2 = 0.70710678118654752440f;
static const float INV_SQRT_2PI = 0.39894228040143267794f;
static const float SQRT_2_OVER_PI = 0.79788456080286535588f;
static const float GELU_TANH_CUBIC = 0.044715f;

void cpu_fill(rc_backend *be, rc_view x, float value, size_t n) {
    if (!cpu_view_fits(be, "fill", "x", x, n) || n == 0) return;
    float *p = cpu_f32(x);
    CPU_PARALLEL_FOR_SIMD_IF(n)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) p[i] = value;
}

static float gelu_exact(float x) { return 0.5f * x * (1.0f + erff(x * INV_SQRT2)); }

/* d/dx [x Phi(x)] = Phi(x) + x phi(x) */
static float gelu_exact_grad(float x) {
    const float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
    const float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
    return cdf + x * pdf;
}

static float gelu_tanh(float x) {
    const float inner = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
}

/* With u = sqrt(2/pi)(x + k x^3) and t = tanh(u):
 * d/dx [0.5 x (1+t)] = 0.5 (1+t) + 0.5 x (1-t^2) sqrt(2/pi)(1 + 3k x^2) */
static float gelu_tanh_grad(float x) {
    const float inner = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    const float t = tanhf(inner);
    const float dinner = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_CUBIC * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * dinner;
}

/* sigmoid(x) from e = e^-|x| <= 1, which exp_nonpositive computes in float
 * operations that vectorise (relative error ~1e-7, as expf's): 1 / (1 + e)
 * for x >= 0 and e / (1 + e) below, so nothing overflows. NaN stays NaN. */
static inline float sigmoid(float x) {
    const float e = exp_nonpositive(x < 0.0f ? x : -x);
    const float numerator = x < 0.0f ? e : 1.0f;
    return numerator / (1.0f + e);
}

static inline float silu(float x) { return x * sigmoid(x); }

/* d/dx [x s(x)] = s (1 + x (1 - s)), as torch's silu_backward */
static inline float silu_grad(float x) {
    const float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

static int known_activation(rc_backend *be, const char *op, rc_activation kind) {
    if (kind == RC_ACT_RELU || kind == RC_ACT_GELU || kind == RC_ACT_GELU_TANH ||
        kind == RC_ACT_SILU)
        return 1;
    cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: unknown activation %d", op, (int)kind);
    return 0;
}

/* out may alias inp (each element is read, then written). */
void cpu_activation_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view inp,
                            size_t n) {
    static const char op[] = "activation_forward";
    if (!known_activation(be, op, kind) || !cpu_view_fits(be, op, "out", out, n) ||
        !cpu_view_fits(be, op, "inp", inp, n) || n == 0)
        return;
    float *y = cpu_f32(out);
    const float *x = cpu_f32(inp);
    const ptrdiff_t count = (ptrdiff_t)n;
    switch (kind) {
    case RC_ACT_RELU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        /* Written so that NaN passes through, as in torch.relu. */
        for (ptrdiff_t i = 0; i < count; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    }
    case RC_ACT_GELU: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = gelu_exact(x[i]);
        break;
    }
    case RC_ACT_GELU_TANH: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = gelu_tanh(x[i]);
        break;
    }
    case RC_ACT_SILU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = silu(x[i]);
        break;
    }
    }
}

/* dinp += act'(inp) * dout */
void cpu_activation_backward(rc_backend *be, rc_activation kind, rc_view dinp, rc_view dout,
                             rc_view inp, size_t n) {
    static const char op[] = "activation_backward";
    if (!known_activation(be, op, kind) || !cpu_view_fits(be, op, "dinp", dinp, n) ||
        !cpu_view_fits(be, op, "dout", dout, n) || !cpu_view_fits(be, op, "inp", inp, n) ||
        n == 0)
        return;
    float *dx = cpu_f32(dinp);
    const float *dy = cpu_f32(dout);
    const float *x = cpu_f32(inp);
    const ptrdiff_t count = (ptrdiff_t)n;
    switch (kind) {
    case RC_ACT_RELU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) {
            const float g = dy[i]; /* read unconditionally, so the select vectorises */
            dx[i] += x[i] > 0.0f ? g : 0.0f;
        }
        break;
    }
    case RC_ACT_GELU: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) dx[i] += gelu_exact_grad(x[i]) * dy[i];
        break;
    }
    case RC_ACT_GELU_TANH: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) dx[i] += gelu_tanh_grad(x[i]) * dy[i];
        break;
    }
    case RC_ACT_SILU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) dx[i] += silu_grad(x[i]) * dy[i];
        break;
    }
    }
}

/* out = act(gate) * up, as HF's act_fn(gate_proj(x)) * up_proj(x); out may
 * alias up (each element is read, then written). */
void cpu_gated_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view gate, rc_view up,
                       size_t n) {
    static const char op[] = "gated_forward";
    if (!known_activation(be, op, kind) || !cpu_view_fits(be, op, "out", out, n) ||
        !cpu_view_fits(be, op, "gate", gate, n) || !cpu_view_fits(be, op, "up", up, n) || n == 0)
        return;
    float *y = cpu_f32(out);
    const float *g = cpu_f32(gate);
    const float *u = cpu_f32(up);
    const ptrdiff_t count = (ptrdiff_t)n;
    switch (kind) {
    case RC_ACT_RELU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = (g[i] < 0.0f ? 0.0f : g[i]) * u[i];
        break;
    }
    case RC_ACT_GELU: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = gelu_exact(g[i]) * u[i];
        break;
    }
    case RC_ACT_GELU_TANH: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = gelu_tanh(g[i]) * u[i];
        break;
    }
    case RC_ACT_SILU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) y[i] = silu(g[i]) * u[i];
        break;
    }
    }
}

/* dgate += act'(gate) * (up * dout), dup += act(gate) * dout: autograd's
 * order (the product's gradient first, then the activation's). */
void cpu_gated_backward(rc_backend *be, rc_activation kind, rc_view dgate, rc_view dup,
                        rc_view dout, rc_view gate, rc_view up, size_t n) {
    static const char op[] = "gated_backward";
    if (!known_activation(be, op, kind) || !cpu_view_fits(be, op, "dgate", dgate, n) ||
        !cpu_view_fits(be, op, "dup", dup, n) || !cpu_view_fits(be, op, "dout", dout, n) ||
        !cpu_view_fits(be, op, "gate", gate, n) || !cpu_view_fits(be, op, "up", up, n) ||
        n == 0)
        return;
    float *dg = cpu_f32(dgate);
    float *du = cpu_f32(dup);
    const float *dy = cpu_f32(dout);
    const float *g = cpu_f32(gate);
    const float *u = cpu_f32(up);
    const ptrdiff_t count = (ptrdiff_t)n;
    switch (kind) {
    case RC_ACT_RELU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) {
            const float d_act = u[i] * dy[i];
            dg[i] += g[i] > 0.0f ? d_act : 0.0f;
            du[i] += (g[i] < 0.0f ? 0.0f : g[i]) * dy[i];
        }
        break;
    }
    case RC_ACT_GELU: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) {
            dg[i] += gelu_exact_grad(g[i]) * (u[i] * dy[i]);
            du[i] += gelu_exact(g[i]) * dy[i];
        }
        break;
    }
    case RC_ACT_GELU_TANH: {
        CPU_PARALLEL_FOR_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) {
            dg[i] += gelu_tanh_grad(g[i]) * (u[i] * dy[i]);
            du[i] += gelu_tanh(g[i]) * dy[i];
        }
        break;
    }
    case RC_ACT_SILU: {
        CPU_PARALLEL_FOR_SIMD_IF(n)
        for (ptrdiff_t i = 0; i < count; i++) {
            const float s = sigmoid(g[i]);
            dg[i] += s * (1.0f + g[i] * (1.0f - s)) * (u[i] * dy[i]);
            du[i] += g[i] * s * dy[i];
        }
        break;
    }
    }
}

/* out = a + b; out may alias a or b. */
void cpu_add(rc_backend *be, rc_view out, rc_view a, rc_view b, size_t n) {
    if (!cpu_view_fits(be, "add", "out", out, n) || !cpu_view_fits(be, "add", "a", a, n) ||
        !cpu_view_fits(be, "add", "b", b, n) || n == 0)
        return;
    float *o = cpu_f32(out);
    const float *pa = cpu_f32(a);
    const float *pb = cpu_f32(b);
    CPU_PARALLEL_FOR_SIMD_IF(n)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) o[i] = pa[i] + pb[i];
}

/* y += alpha * x */
void cpu_axpy(rc_backend *be, rc_view y, float alpha, rc_view x, size_t n) {
    if (!cpu_view_fits(be, "axpy", "y", y, n) || !cpu_view_fits(be, "axpy", "x", x, n) || n == 0)
        return;
    float *py = cpu_f32(y);
    const float *px = cpu_f32(x);
    CPU_PARALLEL_FOR_SIMD_IF(n)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) py[i] += alpha * px[i];
}

/* x *= alpha */
void cpu_scale(rc_backend *be, rc_view x, float alpha, size_t n) {
    if (!cpu_view_fits(be, "scale", "x", x, n) || n == 0) return;
    float *p = cpu_f32(x);
    CPU_PARALLEL_FOR_SIMD_IF(n)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) p[i] *= alpha;
}
