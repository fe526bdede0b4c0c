/* A linear layer as gemm calls on the op table, reading the weight where the
 * checkpoint keeps it: [out, in] (nn.Linear) or [in, out] (GPT-2's Conv1D),
 * possibly one block of a fused parameter. */
#include "model/decoder.h"

static rc_view weight_view(const rc_model *m, const linear_ref *l, int grad) {
    rc_view v = grad ? dec_grad(m, l->weight) : dec_param(m, l->weight);
    return rc_view_at(v, l->offset);
}

static int weight_ld(const linear_ref *l, int in, int out) {
    return l->ld ? l->ld : (l->in_out ? out : in);
}

void decoder_linear_forward(rc_model *m, const linear_ref *l, rc_view y, rc_view x, int N,
                            int in, int out) {
    rc_backend *be = m->be;
    be->gemm(be, 0, !l->in_out, N, out, in, 1.0f, x, in, weight_view(m, l, 0),
             weight_ld(l, in, out), 0.0f, y, out);
    if (l->bias != RC_NO_PARAM)
        be->bias_forward(be, y, rc_view_at(dec_param(m, l->bias), l->bias_offset), N, out);
}

void decoder_linear_backward_input(rc_model *m, const linear_ref *l, rc_view dx,
                                   int accumulate_dx, rc_view dy, int N, int in, int out) {
    rc_backend *be = m->be;
    be->gemm(be, 0, l->in_out, N, in, out, 1.0f, dy, out, weight_view(m, l, 0),
             weight_ld(l, in, out), accumulate_dx ? 1.0f : 0.0f, dx, in);
}

void decoder_linear_backward_weights(rc_model *m, const linear_ref *l, int which, rc_view dy,
                                     rc_view x, int N, int in, int out) {
    rc_backend *be = m->be;
    const int ld = weight_ld(l, in, out);
    if (which & LINEAR_DW) {
        if (l->in_out) /* dW[in, out] += x^T dy */
            be->gemm(be, 1, 0, in, out, N, 1.0f, x, in, dy, out, 1.0f, weight_view(m, l, 1), ld);
        else /* dW[out, in] += dy^T x */
            be->gemm(be, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, weight_view(m, l, 1), ld);
    }
    if ((which & LINEAR_DB) && l->bias != RC_NO_PARAM)
        be->bias_backward(be, rc_view_at(dec_grad(m, l->bias), l->bias_offset), dy, N, out);
}

void decoder_linear_backward(rc_model *m, const linear_ref *l, rc_view dx, int accumulate_dx,
                             rc_view dy, rc_view x, int N, int in, int out) {
    if (rc_view_present(dx)) decoder_linear_backward_input(m, l, dx, accumulate_dx, dy, N, in, out);
    decoder_linear_backward_weights(m, l, LINEAR_DW | LINEAR_DB, dy, x, N, in, out);
}
