/* One AdamW step for one tensor, in the order of float operations of
 * torch.optim.AdamW's single-tensor path (and so of the CPU backend), on
 * grad * grad_scale (clip_grad_norm_'s factor):
 *   param *= decay                       decay = 1 - lr * weight_decay
 *   m = lerp(m, grad, 1 - beta1)
 *   v = v * beta2 + (1 - beta2) * grad * grad
 *   param += neg_step * m / (sqrt(v) / sqrt(bias_correction2) + eps)
 * The host computes the scalars in double and rounds them to float once, as
 * PyTorch does with Python floats. */

/* torch's lerp, exact at weight == 1 */
float rc_lerp(float start, float end, float weight) {
    return fabs(weight) < 0.5f ? start + weight * (end - start)
                               : end - (end - start) * (1.0f - weight);
}

__kernel void rc_adamw(__global float *param, ulong param_off, __global const float *grad,
                       ulong grad_off, float grad_scale, __global float *m, ulong m_off,
                       __global float *v, ulong v_off, ulong n, float decay, float m_weight,
                       float beta2, float v_weight, float neg_step, float bc2_sqrt, float eps) {
    param += param_off;
    grad += grad_off;
    m += m_off;
    v += v_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float g = grad[i] * grad_scale;
        const float p = param[i] * decay;
        const float m_new = rc_lerp(m[i], g, m_weight);
        const float v_new = v[i] * beta2 + v_weight * g * g;
        const float denom = sqrt(v_new) / bc2_sqrt + eps;
        param[i] = p + neg_step * m_new / denom;
        m[i] = m_new;
        v[i] = v_new;
    }
}
