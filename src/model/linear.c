/* A Linear layer (HF weight layout [out, in]) as gemm calls on the op table. */
#include "model/opt_internal.h"

void opt_linear_forward(rc_backend *be, rc_view y, rc_view x, rc_view w, rc_view b, int N,
                        int in, int out) {
    be->gemm(be, 0, 1, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (rc_view_present(b)) be->bias_forward(be, y, b, N, out);
}

void opt_linear_backward(rc_backend *be, rc_view dx, int accumulate_dx, rc_view dw, rc_view db,
                         rc_view dy, rc_view x, rc_view w, int N, int in, int out) {
    if (rc_view_present(dx))
        be->gemm(be, 0, 0, N, in, out, 1.0f, dy, out, w, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    if (rc_view_present(dw)) be->gemm(be, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (rc_view_present(db)) be->bias_backward(be, db, dy, N, out);
}
