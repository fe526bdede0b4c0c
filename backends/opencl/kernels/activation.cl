/* ReLU, GELU (exact erf form, and the tanh approximation) and SiLU with
 * their derivatives, matching torch.nn.functional.relu/gelu/silu, and the
 * gated form act(gate) * up of SwiGLU/GeGLU MLPs. The kind numbers are
 * rc_activation's values in backends/backend.h. */

#define RC_ACT_RELU 0
#define RC_ACT_GELU 1
#define RC_ACT_GELU_TANH 2
#define RC_ACT_SILU 3

#define RC_INV_SQRT2 0.70710678118654752f
#define RC_INV_SQRT_2PI 0.39894228040143268f
#define RC_SQRT_2_OVER_PI 0.79788456080286536f
#define RC_GELU_CUBIC 0.044715f

/* From e = e^-|x| <= 1, so nothing overflows: 1 / (1 + e) for x >= 0 and
 * e / (1 + e) below (the CPU backend's form). */
float rc_sigmoid(float x) {
    const float e = exp(-fabs(x));
    return (x < 0.0f ? e : 1.0f) / (1.0f + e);
}

float rc_activate(int kind, float x) {
    if (kind == RC_ACT_RELU) return x > 0.0f ? x : 0.0f;
    if (kind == RC_ACT_GELU) return 0.5f * x * (1.0f + erf(x * RC_INV_SQRT2));
    if (kind == RC_ACT_SILU) return x * rc_sigmoid(x);
    const float inner = RC_SQRT_2_OVER_PI * (x + RC_GELU_CUBIC * x * x * x);
    return 0.5f * x * (1.0f + tanh(inner));
}

float rc_activation_slope(int kind, float x) {
    /* torch's relu backward passes the gradient only where x > 0 */
    if (kind == RC_ACT_RELU) return x > 0.0f ? 1.0f : 0.0f;
    if (kind == RC_ACT_GELU) {
        const float cdf = 0.5f * (1.0f + erf(x * RC_INV_SQRT2));
        const float pdf = RC_INV_SQRT_2PI * exp(-0.5f * x * x);
        return cdf + x * pdf;
    }
    /* d/dx [x s(x)] = s + x s (1 - s) = s (1 + x (1 - s)) */
    if (kind == RC_ACT_SILU) {
        const float s = rc_sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    const float inner = RC_SQRT_2_OVER_PI * (x + RC_GELU_CUBIC * x * x * x);
    const float t = tanh(inner);
    const float d_inner = RC_SQRT_2_OVER_PI * (1.0f + 3.0f * RC_GELU_CUBIC * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * d_inner;
}

__kernel void rc_activation_forward(int kind, __global float *out, ulong out_off,
                                    __global const float *inp, ulong inp_off, ulong n) {
    out += out_off;
    inp += inp_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0))
        out[i] = rc_activate(kind, inp[i]);
}

__kernel void rc_activation_backward(int kind, __global float *dinp, ulong dinp_off,
                                     __global const float *dout, ulong dout_off,
                                     __global const float *inp, ulong inp_off, ulong n) {
    dinp += dinp_off;
    dout += dout_off;
    inp += inp_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0))
        dinp[i] += rc_activation_slope(kind, inp[i]) * dout[i];
}

/* out = act(gate) * up; out may alias up (or gate) */
__kernel void rc_gated_forward(int kind, __global float *out, ulong out_off,
                               __global const float *gate, ulong gate_off,
                               __global const float *up, ulong up_off, ulong n) {
    out += out_off;
    gate += gate_off;
    up += up_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0))
        out[i] = rc_activate(kind, gate[i]) * up[i];
}

/* dgate += act'(gate) * (up * dout) ; dup += act(gate) * dout, in autograd's
 * order (the product's gradient first), as the CPU backend rounds them */
__kernel void rc_gated_backward(int kind, __global float *dgate, ulong dgate_off,
                                __global float *dup, ulong dup_off,
                                __global const float *dout, ulong dout_off,
                                __global const float *gate, ulong gate_off,
                                __global const float *up, ulong up_off, ulong n) {
    dgate += dgate_off;
    dup += dup_off;
    dout += dout_off;
    gate += gate_off;
    up += up_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float g = gate[i], u = up[i], dy = dout[i];
        const float slope = rc_activation_slope(kind, g), value = rc_activate(kind, g);
        dgate[i] += slope * (u * dy);
        dup[i] += value * dy;
    }
}
