/* A linear layer as gemm calls on the op table, reading the weight where the
 * checkpoint keeps it: [out, in] (nn.Linear) or [in, out] (GPT-2's Conv1D),
 * possibly one block of a fused parameter. With a LoRA adapter (PEFT's
 * Linear: y = base(x) + lora_B(lora_A(x)) * s) the low-rank path is added
 * here, once, for every family and backend: t = x A^T [N, r], y += s t B^T.
 * A fused module's adapter is one A and one B for its whole output: each
 * block reads its rows of B (lora_b_offset), and A's gradient sums over the
 * blocks. Frozen weights get no gradient product. */
#include "model/decoder.h"

static rc_view weight_view(const rc_model *m, const linear_ref *l, int grad) {
    rc_view v = grad ? dec_grad(m, l->weight) : dec_param(m, l->weight);
    return rc_view_at(v, l->offset);
}

static int weight_ld(const linear_ref *l, int in, int out) {
    return l->ld ? l->ld : (l->in_out ? out : in);
}

static int has_lora(const linear_ref *l) { return l->lora_a != RC_NO_PARAM; }

static rc_view lora_b_view(const rc_model *m, const linear_ref *l, int grad) {
    rc_view v = grad ? dec_grad(m, l->lora_b) : dec_param(m, l->lora_b);
    return rc_view_at(v, l->lora_b_offset);
}

/* t[N, r] = x A^T */
static rc_view lora_down(rc_model *m, const linear_ref *l, rc_view x, int N, int in) {
    rc_backend *be = m->be;
    const int r = m->lora_r;
    rc_view t = dec_act(m, m->plan.lora_t);
    be->gemm(be, 0, 1, N, r, in, 1.0f, x, in, dec_param(m, l->lora_a), in, 0.0f, t, r);
    return t;
}

/* u[N, r] = dy B_block: dLoss/dt, before the scaling */
static rc_view lora_up_backward(rc_model *m, const linear_ref *l, rc_view dy, int N, int out) {
    rc_backend *be = m->be;
    const int r = m->lora_r;
    rc_view u = dec_act(m, m->plan.lora_u);
    be->gemm(be, 0, 0, N, r, out, 1.0f, dy, out, lora_b_view(m, l, 0), r, 0.0f, u, r);
    return u;
}

void decoder_linear_forward(rc_model *m, const linear_ref *l, rc_view y, rc_view x, int N,
                            int in, int out) {
    rc_backend *be = m->be;
    be->gemm(be, 0, !l->in_out, N, out, in, 1.0f, x, in, weight_view(m, l, 0),
             weight_ld(l, in, out), 0.0f, y, out);
    if (l->bias != RC_NO_PARAM)
        be->bias_forward(be, y, rc_view_at(dec_param(m, l->bias), l->bias_offset), N, out);
    if (has_lora(l)) { /* y += s t B^T */
        rc_view t = lora_down(m, l, x, N, in);
        be->gemm(be, 0, 1, N, out, m->lora_r, (float)m->lora_scale, t, m->lora_r,
                 lora_b_view(m, l, 0), m->lora_r, 1.0f, y, out);
    }
}

void decoder_linear_backward_input(rc_model *m, const linear_ref *l, rc_view dx,
                                   int accumulate_dx, rc_view dy, int N, int in, int out) {
    rc_backend *be = m->be;
    be->gemm(be, 0, l->in_out, N, in, out, 1.0f, dy, out, weight_view(m, l, 0),
             weight_ld(l, in, out), accumulate_dx ? 1.0f : 0.0f, dx, in);
    if (has_lora(l)) { /* dx += s u A */
        rc_view u = lora_up_backward(m, l, dy, N, out);
        be->gemm(be, 0, 0, N, in, m->lora_r, (float)m->lora_scale, u, m->lora_r,
                 dec_param(m, l->lora_a), in, 1.0f, dx, in);
    }
}

void decoder_linear_backward_weights(rc_model *m, const linear_ref *l, int which, rc_view dy,
                                     rc_view x, int N, int in, int out) {
    rc_backend *be = m->be;
    const int ld = weight_ld(l, in, out);
    if ((which & LINEAR_DW) && decoder_param_trainable(m, l->weight)) {
        if (l->in_out) /* dW[in, out] += x^T dy */
            be->gemm(be, 1, 0, in, out, N, 1.0f, x, in, dy, out, 1.0f, weight_view(m, l, 1), ld);
        else /* dW[out, in] += dy^T x */
            be->gemm(be, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, weight_view(m, l, 1), ld);
    }
    if ((which & LINEAR_DB) && decoder_param_trainable(m, l->bias))
        be->bias_backward(be, rc_view_at(dec_grad(m, l->bias), l->bias_offset), dy, N, out);
    if ((which & LINEAR_DW) && has_lora(l)) {
        const int r = m->lora_r;
        const float s = (float)m->lora_scale;
        if (decoder_param_trainable(m, l->lora_b)) { /* dB_block[out, r] += s dy^T t */
            rc_view t = lora_down(m, l, x, N, in);
            be->gemm(be, 1, 0, out, r, N, s, dy, out, t, r, 1.0f, lora_b_view(m, l, 1), r);
        }
        if (decoder_param_trainable(m, l->lora_a)) { /* dA[r, in] += s u^T x */
            rc_view u = lora_up_backward(m, l, dy, N, out);
            be->gemm(be, 1, 0, r, in, N, s, u, r, x, in, 1.0f, dec_grad(m, l->lora_a), in);
        }
    }
}

void decoder_linear_backward(rc_model *m, const linear_ref *l, rc_view dx, int accumulate_dx,
                             rc_view dy, rc_view x, int N, int in, int out) {
    if (rc_view_present(dx)) decoder_linear_backward_input(m, l, dx, accumulate_dx, dy, N, in, out);
    decoder_linear_backward_weights(m, l, LINEAR_DW | LINEAR_DB, dy, x, N, in, out);
}
