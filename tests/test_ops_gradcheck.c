/* Finite-difference check of every backward op of the CPU backend.
 *
 * For each op a tiny forward is written here in double precision, the loss is
 * L = sum(out * W) with random weights W (so dL/dout = W), and dL/d(input) is
 * taken by central differences in double with h = 1e-6. The backend's float
 * backward op, fed dout = W, must agree. Backward ops accumulate, so gradient
 * buffers start out holding random values and must end up holding those
 * values plus the gradient. The float forward op is also compared with the
 * double forward, so the derivative checked is that of the op itself.
 *
 * Tolerance. Central differences in double have truncation error ~h^2 f'''
 * and rounding error ~1e-16 |L| / h, both below 1e-8 here. The float backward
 * rounds each term a handful of times and sums at most a few dozen terms, a
 * relative error below ~50 u = 3e-6 per term. Elements that come out of
 * cancellation (layernorm dinp, softmax) keep that error relative to the
 * tensor's largest gradient, not to themselves. So an element passes when
 * |got - fd| <= 1e-4 (|fd| + 1e-2 max|fd|): 30x above the float error, and far
 * below what a wrong formula (a missing term, a wrong sign or index) gives.
 * AdamW is checked against an independent double implementation instead. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testlib.h"

static const double U = 1.0 / 16777216.0; /* float32 unit roundoff, 2^-24 */
static const double FD_STEP = 1e-6;
static const double GRAD_RTOL = 1e-4;
static const double GRAD_FLOOR = 1e-2; /* times the tensor's largest gradient */

static rc_backend *be;

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static double uniform(double lo, double hi) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) / 9007199254740992.0;
}

/* n floats in [lo, hi), and their exact double copies for the references. */
static float *random_floats(size_t n, double lo, double hi, double **as_double) {
    float *f = malloc(n * sizeof *f);
    *as_double = malloc(n * sizeof **as_double);
    for (size_t i = 0; i < n; i++) f[i] = (float)uniform(lo, hi), (*as_double)[i] = f[i];
    return f;
}

static rc_view dev_from(const void *host, size_t n) {
    rc_view v = {NULL, 0};
    rc_status st = be->alloc(be, n, &v.buf);
    CHECK(st == RC_OK, "alloc: %s", rc_last_error());
    if (st != RC_OK) exit(1);
    if (host) {
        st = be->upload(be, v, host, n);
        CHECK(st == RC_OK, "upload: %s", rc_last_error());
    }
    return v;
}
static float *dev_get(rc_view v, size_t n) {
    float *host = malloc(n * sizeof *host);
    rc_status st = be->download(be, host, v, n);
    CHECK(st == RC_OK, "download: %s", rc_last_error());
    return host;
}
static void dev_free(rc_view v) { be->free(be, v.buf); }

/* The loss as a function of whatever double arrays `ctx` holds. */
typedef double (*loss_fn)(const void *ctx);

/* dL/dparam[i] for every i, by central differences. */
static double *finite_diff(loss_fn loss, const void *ctx, double *param, size_t n) {
    double *grad = malloc(n * sizeof *grad);
    for (size_t i = 0; i < n; i++) {
        const double saved = param[i];
        param[i] = saved + FD_STEP;
        const double up = loss(ctx);
        param[i] = saved - FD_STEP;
        const double down = loss(ctx);
        param[i] = saved;
        grad[i] = (up - down) / (2 * FD_STEP);
    }
    return grad;
}

/* got = before + fd within the tolerance in the header comment; `before`
 * NULL means the op writes rather than accumulates. The 2u|want| term is the
 * final rounding of the accumulated float. */
static void check_grad(const char *what, const double *fd, const float *got, const float *before,
                       size_t n) {
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(fd[i]));
    size_t bad = 0, first = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double want = (before ? before[i] : 0.0) + fd[i];
        const double tol = GRAD_RTOL * (fabs(fd[i]) + GRAD_FLOOR * scale) + 2 * U * fabs(want);
        const double err = fabs((double)got[i] - want);
        if (!(err <= tol) && bad++ == 0) first = i;
        if (tol > 0 && err / tol > worst) worst = err / tol;
    }
    CHECK(bad == 0, "%s: %zu of %zu gradients wrong; first [%zu] got %.9g want %.9g (fd %.9g)",
          what, bad, n, first, bad ? (double)got[first] : 0.0,
          bad ? (before ? before[first] : 0.0) + fd[first] : 0.0, bad ? fd[first] : 0.0);
    CHECK(scale > 0 || n == 0, "%s: all gradients are zero, the check proves nothing", what);
    if (getenv("GRADCHECK_VERBOSE")) printf("  %-40s worst err/tol %.3f\n", what, worst);
}

/* The float forward op against the double forward: a few u per element,
 * relative to the output's scale (the forward is not what is under test
 * here, only that it is the function being differentiated). */
static void check_forward(const char *what, const double *ref, const float *got, size_t n) {
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - ref[i]) <= 64 * U * (fabs(ref[i]) + scale))) bad++;
    CHECK(bad == 0, "%s forward: %zu of %zu outputs differ from the double forward", what, bad, n);
}

static double weighted_sum(const double *out, const double *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += out[i] * w[i];
    return s;
}

/* ------------------------------------------------ linear layer (gemm + bias) */

typedef struct {
    int N, I, O;
    double *x, *weight, *bias, *w_out, *out;
} linear_ctx;

/* out = x W^T + b, HF Linear with weight [O, I] */
static double linear_loss(const void *p) {
    const linear_ctx *c = p;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++) {
            double s = c->bias[o];
            for (int i = 0; i < c->I; i++) s += c->x[n * c->I + i] * c->weight[o * c->I + i];
            c->out[n * c->O + o] = s;
        }
    return weighted_sum(c->out, c->w_out, (size_t)c->N * c->O);
}

static void test_linear(int N, int I, int O) {
    linear_ctx c = {N, I, O, NULL, NULL, NULL, NULL, malloc((size_t)N * O * sizeof(double))};
    const size_t nx = (size_t)N * I, nw = (size_t)O * I, no = (size_t)N * O;
    float *x = random_floats(nx, -1, 1, &c.x), *w = random_floats(nw, -1, 1, &c.weight),
          *b = random_floats(O, -1, 1, &c.bias), *dout = random_floats(no, -1, 1, &c.w_out);
    double *unused;
    float *dx0 = random_floats(nx, -1, 1, &unused);
    free(unused);
    float *dw0 = random_floats(nw, -1, 1, &unused);
    free(unused);
    float *db0 = random_floats(O, -1, 1, &unused);
    free(unused);

    rc_view vx = dev_from(x, nx), vw = dev_from(w, nw), vb = dev_from(b, O), vout = dev_from(NULL, no),
            vdout = dev_from(dout, no), vdx = dev_from(dx0, nx), vdw = dev_from(dw0, nw),
            vdb = dev_from(db0, O);
    be->gemm(be, 0, 1, N, O, I, 1.0f, vx, I, vw, I, 0.0f, vout, O);
    be->bias_forward(be, vout, vb, N, O);
    /* dx += dout W ; dW += dout^T x ; db += column sums of dout */
    be->gemm(be, 0, 0, N, I, O, 1.0f, vdout, O, vw, I, 1.0f, vdx, I);
    be->gemm(be, 1, 0, O, I, N, 1.0f, vdout, O, vx, I, 1.0f, vdw, I);
    be->bias_backward(be, vdb, vdout, N, O);

    linear_loss(&c);
    float *out = dev_get(vout, no);
    check_forward("linear", c.out, out, no);
    double *fd_x = finite_diff(linear_loss, &c, c.x, nx);
    double *fd_w = finite_diff(linear_loss, &c, c.weight, nw);
    double *fd_b = finite_diff(linear_loss, &c, c.bias, O);
    float *gx = dev_get(vdx, nx), *gw = dev_get(vdw, nw), *gb = dev_get(vdb, O);
    check_grad("linear dinp (gemm nn)", fd_x, gx, dx0, nx);
    check_grad("linear dweight (gemm tn)", fd_w, gw, dw0, nw);
    check_grad("linear dbias (bias_backward)", fd_b, gb, db0, O);

    rc_view views[] = {vx, vw, vb, vout, vdout, vdx, vdw, vdb};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {x, w, b, dout, dx0, dw0, db0, c.x, c.weight, c.bias, c.w_out, c.out,
                    fd_x, fd_w, fd_b, gx, gw, gb, out};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------ batched products (attention's Q K^T shape) */

typedef struct {
    int batch, M, N, K;
    double alpha, *a, *b, *w_out, *out;
} batched_ctx;

/* out_p = alpha A_p B_p^T, A_p [M,K], B_p [N,K] */
static double batched_loss(const void *p) {
    const batched_ctx *c = p;
    for (int q = 0; q < c->batch; q++)
        for (int i = 0; i < c->M; i++)
            for (int j = 0; j < c->N; j++) {
                double s = 0;
                for (int k = 0; k < c->K; k++)
                    s += c->a[((size_t)q * c->M + i) * c->K + k] *
                         c->b[((size_t)q * c->N + j) * c->K + k];
                c->out[((size_t)q * c->M + i) * c->N + j] = c->alpha * s;
            }
    return weighted_sum(c->out, c->w_out, (size_t)c->batch * c->M * c->N);
}

static void test_batched(int batch, int M, int N, int K) {
    const size_t na = (size_t)batch * M * K, nb = (size_t)batch * N * K, no = (size_t)batch * M * N;
    batched_ctx c = {batch, M, N, K, 0.5, NULL, NULL, NULL, malloc(no * sizeof(double))};
    float *a = random_floats(na, -1, 1, &c.a), *b = random_floats(nb, -1, 1, &c.b),
          *dout = random_floats(no, -1, 1, &c.w_out);
    double *unused;
    float *da0 = random_floats(na, -1, 1, &unused);
    free(unused);
    float *db0 = random_floats(nb, -1, 1, &unused);
    free(unused);
    rc_view va = dev_from(a, na), vb = dev_from(b, nb), vout = dev_from(NULL, no),
            vdout = dev_from(dout, no), vda = dev_from(da0, na), vdb = dev_from(db0, nb);
    const float alpha = (float)c.alpha;
    be->gemm_batched(be, 0, 1, M, N, K, alpha, va, K, (size_t)M * K, vb, K, (size_t)N * K, 0.0f,
                     vout, N, (size_t)M * N, batch);
    /* dA_p += alpha dout_p B_p ; dB_p += alpha dout_p^T A_p */
    be->gemm_batched(be, 0, 0, M, K, N, alpha, vdout, N, (size_t)M * N, vb, K, (size_t)N * K, 1.0f,
                     vda, K, (size_t)M * K, batch);
    be->gemm_batched(be, 1, 0, N, K, M, alpha, vdout, N, (size_t)M * N, va, K, (size_t)M * K, 1.0f,
                     vdb, K, (size_t)N * K, batch);
    batched_loss(&c);
    float *out = dev_get(vout, no);
    check_forward("gemm_batched", c.out, out, no);
    double *fd_a = finite_diff(batched_loss, &c, c.a, na);
    double *fd_b = finite_diff(batched_loss, &c, c.b, nb);
    float *ga = dev_get(vda, na), *gb = dev_get(vdb, nb);
    check_grad("gemm_batched dA (nn)", fd_a, ga, da0, na);
    check_grad("gemm_batched dB (tn)", fd_b, gb, db0, nb);
    rc_view views[] = {va, vb, vout, vdout, vda, vdb};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {a, b, dout, da0, db0, c.a, c.b, c.w_out, c.out, fd_a, fd_b, ga, gb, out};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------------------- embedding and gather/scatter */

typedef struct {
    int n_rows, C;
    const int32_t *rows;
    double *table, *w_out, *out;
} lookup_ctx;

static double lookup_loss(const void *p) {
    const lookup_ctx *c = p;
    for (int n = 0; n < c->n_rows; n++)
        for (int j = 0; j < c->C; j++)
            c->out[(size_t)n * c->C + j] = c->table[(size_t)c->rows[n] * c->C + j];
    return weighted_sum(c->out, c->w_out, (size_t)c->n_rows * c->C);
}

/* gather: 0 = embedding_forward/backward, 1 = gather_rows/scatter_rows_add */
static void test_lookup(int gather, int n_rows, int V, int C) {
    int32_t *rows = malloc(n_rows * sizeof *rows);
    for (int n = 0; n < n_rows; n++) rows[n] = n % 2 ? 0 : (int32_t)((n * 7) % V); /* repeats */
    const size_t nt = (size_t)V * C, no = (size_t)n_rows * C;
    lookup_ctx c = {n_rows, C, rows, NULL, NULL, malloc(no * sizeof(double))};
    float *table = random_floats(nt, -1, 1, &c.table), *dout = random_floats(no, -1, 1, &c.w_out);
    double *unused;
    float *dt0 = random_floats(nt, -1, 1, &unused);
    free(unused);
    rc_view vrows = dev_from(rows, n_rows), vt = dev_from(table, nt), vout = dev_from(NULL, no),
            vdout = dev_from(dout, no), vdt = dev_from(dt0, nt);
    if (gather) {
        be->gather_rows(be, vout, vt, vrows, n_rows, C);
        be->scatter_rows_add(be, vdt, vdout, vrows, n_rows, C);
    } else {
        be->embedding_forward(be, vout, vrows, vt, n_rows, C, 0);
        be->embedding_backward(be, vdt, vdout, vrows, n_rows, C);
    }
    const char *name = gather ? "gather_rows/scatter_rows_add" : "embedding";
    lookup_loss(&c);
    float *out = dev_get(vout, no);
    check_forward(name, c.out, out, no);
    double *fd = finite_diff(lookup_loss, &c, c.table, nt);
    float *got = dev_get(vdt, nt);
    check_grad(gather ? "scatter_rows_add dinp" : "embedding dtable", fd, got, dt0, nt);
    rc_view views[] = {vrows, vt, vout, vdout, vdt};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {rows, table, dout, dt0, c.table, c.w_out, c.out, fd, out, got};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* -------------------------------------------------------------- layernorm */

typedef struct {
    int N, C, affine;
    double eps, *x, *weight, *bias, *w_out, *out;
} layernorm_ctx;

static double layernorm_loss(const void *p) {
    const layernorm_ctx *c = p;
    for (int n = 0; n < c->N; n++) {
        const double *xr = c->x + (size_t)n * c->C;
        double mu = 0, var = 0;
        for (int j = 0; j < c->C; j++) mu += xr[j] / c->C;
        for (int j = 0; j < c->C; j++) var += (xr[j] - mu) * (xr[j] - mu) / c->C;
        const double rstd = 1 / sqrt(var + c->eps);
        for (int j = 0; j < c->C; j++)
            c->out[(size_t)n * c->C + j] =
                (xr[j] - mu) * rstd * (c->affine ? c->weight[j] : 1) + (c->affine ? c->bias[j] : 0);
    }
    return weighted_sum(c->out, c->w_out, (size_t)c->N * c->C);
}

static void test_layernorm(int N, int C, int affine) {
    const size_t nx = (size_t)N * C;
    layernorm_ctx c = {N, C, affine, 1e-5, NULL, NULL, NULL, NULL, malloc(nx * sizeof(double))};
    float *x = random_floats(nx, -1, 1, &c.x), *w = random_floats(C, 0.5, 1.5, &c.weight),
          *b = random_floats(C, -1, 1, &c.bias), *dout = random_floats(nx, -1, 1, &c.w_out);
    double *unused;
    float *dx0 = random_floats(nx, -1, 1, &unused);
    free(unused);
    float *dw0 = random_floats(C, -1, 1, &unused);
    free(unused);
    float *db0 = random_floats(C, -1, 1, &unused);
    free(unused);
    rc_view none = {NULL, 0};
    rc_view vx = dev_from(x, nx), vw = dev_from(w, C), vb = dev_from(b, C), vout = dev_from(NULL, nx),
            vmean = dev_from(NULL, N), vrstd = dev_from(NULL, N), vdout = dev_from(dout, nx),
            vdx = dev_from(dx0, nx), vdw = dev_from(dw0, C), vdb = dev_from(db0, C);
    be->layernorm_forward(be, vout, vmean, vrstd, vx, affine ? vw : none, affine ? vb : none, N, C,
                          (float)c.eps);
    be->layernorm_backward(be, vdx, affine ? vdw : none, affine ? vdb : none, vdout, vx,
                           affine ? vw : none, vmean, vrstd, N, C);
    char what[64];
    snprintf(what, sizeof what, "layernorm%s", affine ? "" : " (no affine)");
    layernorm_loss(&c);
    float *out = dev_get(vout, nx);
    check_forward(what, c.out, out, nx);
    double *fd_x = finite_diff(layernorm_loss, &c, c.x, nx);
    float *gx = dev_get(vdx, nx);
    snprintf(what, sizeof what, "layernorm%s dinp", affine ? "" : " (no affine)");
    check_grad(what, fd_x, gx, dx0, nx);
    free(fd_x);
    free(gx);
    if (affine) {
        double *fd_w = finite_diff(layernorm_loss, &c, c.weight, C);
        double *fd_b = finite_diff(layernorm_loss, &c, c.bias, C);
        float *gw = dev_get(vdw, C), *gb = dev_get(vdb, C);
        check_grad("layernorm dweight", fd_w, gw, dw0, C);
        check_grad("layernorm dbias", fd_b, gb, db0, C);
        free(fd_w);
        free(fd_b);
        free(gw);
        free(gb);
    }
    rc_view views[] = {vx, vw, vb, vout, vmean, vrstd, vdout, vdx, vdw, vdb};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {x, w, b, dout, dx0, dw0, db0, c.x, c.weight, c.bias, c.w_out, c.out, out};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------------------------------------ activations */

typedef struct {
    rc_activation kind;
    size_t n;
    double *x, *w_out, *out;
} activation_ctx;

static double activation_loss(const void *p) {
    const activation_ctx *c = p;
    const double tanh_scale = sqrt(2 / acos(-1.0));
    for (size_t i = 0; i < c->n; i++) {
        const double x = c->x[i];
        switch (c->kind) {
        case RC_ACT_RELU: c->out[i] = x > 0 ? x : 0; break;
        case RC_ACT_GELU: c->out[i] = 0.5 * x * (1 + erf(x / sqrt(2.0))); break;
        case RC_ACT_GELU_TANH:
            c->out[i] = 0.5 * x * (1 + tanh(tanh_scale * (x + 0.044715 * x * x * x)));
            break;
        case RC_ACT_SILU: c->out[i] = x / (1 + exp(-x)); break;
        }
    }
    return weighted_sum(c->out, c->w_out, c->n);
}

static void test_activation(rc_activation kind, size_t n) {
    activation_ctx c = {kind, n, NULL, NULL, malloc(n * sizeof(double))};
    float *x = random_floats(n, -4, 4, &c.x), *dout = random_floats(n, -1, 1, &c.w_out);
    /* Keep ReLU's inputs well away from its kink, where differences lie. */
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) < 0.05) x[i] += 0.1f, c.x[i] = x[i];
    double *unused;
    float *dx0 = random_floats(n, -1, 1, &unused);
    free(unused);
    rc_view vx = dev_from(x, n), vout = dev_from(NULL, n), vdout = dev_from(dout, n),
            vdx = dev_from(dx0, n);
    be->activation_forward(be, kind, vout, vx, n);
    be->activation_backward(be, kind, vdx, vdout, vx, n);
    static const char *names[] = {"relu", "gelu", "gelu_tanh", "silu"};
    activation_loss(&c);
    float *out = dev_get(vout, n);
    check_forward(names[kind], c.out, out, n);
    double *fd = finite_diff(activation_loss, &c, c.x, n);
    float *got = dev_get(vdx, n);
    char what[64];
    snprintf(what, sizeof what, "%s dinp", names[kind]);
    check_grad(what, fd, got, dx0, n);
    rc_view views[] = {vx, vout, vdout, vdx};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {x, dout, dx0, c.x, c.w_out, c.out, fd, out, got};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ---------------------------------------------------------------- rmsnorm */

typedef struct {
    int N, C, weighted;
    double eps, *x, *weight, *w_out, *out;
} rmsnorm_ctx;

/* out = weight * x / sqrt(mean(x^2) + eps), LlamaRMSNorm */
static double rmsnorm_loss(const void *p) {
    const rmsnorm_ctx *c = p;
    for (int n = 0; n < c->N; n++) {
        const double *xr = c->x + (size_t)n * c->C;
        double ms = 0;
        for (int j = 0; j < c->C; j++) ms += xr[j] * xr[j] / c->C;
        const double rstd = 1 / sqrt(ms + c->eps);
        for (int j = 0; j < c->C; j++)
            c->out[(size_t)n * c->C + j] = xr[j] * rstd * (c->weighted ? c->weight[j] : 1);
    }
    return weighted_sum(c->out, c->w_out, (size_t)c->N * c->C);
}

static void test_rmsnorm(int N, int C, int weighted) {
    const size_t nx = (size_t)N * C;
    rmsnorm_ctx c = {N, C, weighted, 1e-6, NULL, NULL, NULL, malloc(nx * sizeof(double))};
    float *x = random_floats(nx, -1, 1, &c.x), *w = random_floats(C, 0.5, 1.5, &c.weight),
          *dout = random_floats(nx, -1, 1, &c.w_out);
    double *unused;
    float *dx0 = random_floats(nx, -1, 1, &unused);
    free(unused);
    float *dw0 = random_floats(C, -1, 1, &unused);
    free(unused);
    rc_view none = {NULL, 0};
    rc_view vx = dev_from(x, nx), vw = dev_from(w, C), vout = dev_from(NULL, nx),
            vrstd = dev_from(NULL, N), vdout = dev_from(dout, nx), vdx = dev_from(dx0, nx),
            vdw = dev_from(dw0, C);
    be->rmsnorm_forward(be, vout, vrstd, vx, weighted ? vw : none, N, C, (float)c.eps);
    be->rmsnorm_backward(be, vdx, weighted ? vdw : none, vdout, vx, weighted ? vw : none, vrstd,
                         N, C);
    char what[64];
    snprintf(what, sizeof what, "rmsnorm%s", weighted ? "" : " (no weight)");
    rmsnorm_loss(&c);
    float *out = dev_get(vout, nx);
    check_forward(what, c.out, out, nx);
    double *fd_x = finite_diff(rmsnorm_loss, &c, c.x, nx);
    float *gx = dev_get(vdx, nx);
    snprintf(what, sizeof what, "rmsnorm%s dinp", weighted ? "" : " (no weight)");
    check_grad(what, fd_x, gx, dx0, nx);
    free(fd_x);
    free(gx);
    if (weighted) {
        double *fd_w = finite_diff(rmsnorm_loss, &c, c.weight, C);
        float *gw = dev_get(vdw, C);
        check_grad("rmsnorm dweight", fd_w, gw, dw0, C);
        free(fd_w);
        free(gw);
    }
    rc_view views[] = {vx, vw, vout, vrstd, vdout, vdx, vdw};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {x, w, dout, dx0, dw0, c.x, c.weight, c.w_out, c.out, out};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------------------------------------------- rope */

typedef struct {
    int N, H, D, ld;
    const int32_t *pos;
    const float *cos_t, *sin_t; /* [n_positions, D/2] */
    double *x, *w_out, *out;
} rope_ctx;

/* rotate-half: (x_i, x_{i+D/2}) -> (x_i c - x_{i+D/2} s, x_{i+D/2} c + x_i s) */
static double rope_loss(const void *p) {
    const rope_ctx *c = p;
    const int half = c->D / 2;
    double loss = 0;
    for (int n = 0; n < c->N; n++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < half; i++) {
                const size_t lo = (size_t)n * c->ld + (size_t)h * c->D + i, hi = lo + half;
                const double cs = c->cos_t[(size_t)c->pos[n] * half + i],
                             sn = c->sin_t[(size_t)c->pos[n] * half + i];
                loss += (c->x[lo] * cs - c->x[hi] * sn) * c->w_out[lo] +
                        (c->x[hi] * cs + c->x[lo] * sn) * c->w_out[hi];
            }
    return loss;
}

/* Forward in place on x, and the backward (the inverse rotation, in place on
 * a copy of dout) against differences; the gaps of ld > H*D play no part. */
static void test_rope(int N, int H, int D, int ld, int n_positions) {
    const int half = D / 2;
    const size_t nx = (size_t)N * ld, nt = (size_t)n_positions * half;
    int32_t *pos = malloc(N * sizeof *pos);
    for (int n = 0; n < N; n++) pos[n] = (n * 5 + 3) % n_positions; /* out of order, repeats */
    float *cos_t = malloc(nt * sizeof *cos_t), *sin_t = malloc(nt * sizeof *sin_t);
    for (int p = 0; p < n_positions; p++)
        for (int i = 0; i < half; i++) {
            const double angle = p * pow(10000.0, -2.0 * i / D);
            cos_t[(size_t)p * half + i] = (float)cos(angle);
            sin_t[(size_t)p * half + i] = (float)sin(angle);
        }
    rope_ctx c = {N, H, D, ld, pos, cos_t, sin_t, NULL, NULL, NULL};
    float *x = random_floats(nx, -1, 1, &c.x), *dout = random_floats(nx, -1, 1, &c.w_out);
    rc_view vx = dev_from(x, nx), vg = dev_from(dout, nx), vpos = dev_from(pos, N),
            vcos = dev_from(cos_t, nt), vsin = dev_from(sin_t, nt);
    be->rope(be, vx, ld, vpos, vcos, vsin, N, H, D, 0);
    be->rope(be, vg, ld, vpos, vcos, vsin, N, H, D, 1);
    /* The forward as a double reference, element by element. */
    double *ref = malloc(nx * sizeof *ref);
    for (size_t i = 0; i < nx; i++) ref[i] = c.x[i]; /* gap columns stay as they were */
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < half; i++) {
                const size_t lo = (size_t)n * ld + (size_t)h * D + i, hi = lo + half;
                const double cs = cos_t[(size_t)pos[n] * half + i],
                             sn = sin_t[(size_t)pos[n] * half + i];
                ref[lo] = c.x[lo] * cs - c.x[hi] * sn;
                ref[hi] = c.x[hi] * cs + c.x[lo] * sn;
            }
    float *out = dev_get(vx, nx);
    char what[80];
    snprintf(what, sizeof what, "rope N=%d H=%d D=%d ld=%d", N, H, D, ld);
    check_forward(what, ref, out, nx);
    double *fd = finite_diff(rope_loss, &c, c.x, nx);
    /* Gap columns of the gradient are not the op's: it must leave them as
     * dout had them, and the loss gives them gradient 0. */
    float *got = dev_get(vg, nx);
    for (int n = 0; n < N; n++)
        for (int j = H * D; j < ld; j++) {
            const size_t at = (size_t)n * ld + j;
            CHECK(memcmp(&got[at], &dout[at], sizeof(float)) == 0,
                  "%s: gap element [%zu] of the gradient was touched", what, at);
            got[at] = 0.0f;
        }
    snprintf(what, sizeof what, "rope N=%d H=%d D=%d ld=%d inverse (dx)", N, H, D, ld);
    check_grad(what, fd, got, NULL, nx);
    rc_view views[] = {vx, vg, vpos, vcos, vsin};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {pos, cos_t, sin_t, x, dout, c.x, c.w_out, ref, out, fd, got};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------------------------- gated MLP activations */

typedef struct {
    activation_ctx act; /* act.x is the gate; act.out receives act(gate) */
    double *up, *w_out, *out;
} gated_ctx;

/* out = act(gate) * up */
static double gated_loss(const void *p) {
    const gated_ctx *c = p;
    activation_loss(&c->act);
    for (size_t i = 0; i < c->act.n; i++) c->out[i] = c->act.out[i] * c->up[i];
    return weighted_sum(c->out, c->w_out, c->act.n);
}

static void test_gated(rc_activation kind, size_t n) {
    double *zeros = calloc(n, sizeof *zeros); /* activation_loss's weights: unused here */
    gated_ctx c = {{kind, n, NULL, zeros, malloc(n * sizeof(double))}, NULL, NULL,
                   malloc(n * sizeof(double))};
    float *gate = random_floats(n, -4, 4, &c.act.x), *up = random_floats(n, -2, 2, &c.up),
          *dout = random_floats(n, -1, 1, &c.w_out);
    for (size_t i = 0; i < n; i++) /* away from ReLU's kink */
        if (fabs(gate[i]) < 0.05) gate[i] += 0.1f, c.act.x[i] = gate[i];
    double *unused;
    float *dg0 = random_floats(n, -1, 1, &unused);
    free(unused);
    float *du0 = random_floats(n, -1, 1, &unused);
    free(unused);
    rc_view vg = dev_from(gate, n), vu = dev_from(up, n), vout = dev_from(NULL, n),
            vdout = dev_from(dout, n), vdg = dev_from(dg0, n), vdu = dev_from(du0, n);
    be->gated_forward(be, kind, vout, vg, vu, n);
    be->gated_backward(be, kind, vdg, vdu, vdout, vg, vu, n);
    static const char *names[] = {"gated relu", "gated gelu", "gated gelu_tanh", "gated silu"};
    gated_loss(&c);
    float *out = dev_get(vout, n);
    check_forward(names[kind], c.out, out, n);
    double *fd_g = finite_diff(gated_loss, &c, c.act.x, n);
    double *fd_u = finite_diff(gated_loss, &c, c.up, n);
    float *gg = dev_get(vdg, n), *gu = dev_get(vdu, n);
    char what[64];
    snprintf(what, sizeof what, "%s dgate", names[kind]);
    check_grad(what, fd_g, gg, dg0, n);
    snprintf(what, sizeof what, "%s dup", names[kind]);
    check_grad(what, fd_u, gu, du0, n);
    rc_view views[] = {vg, vu, vout, vdout, vdg, vdu};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {zeros, c.act.out, c.out, gate, up, dout, dg0, du0, c.act.x, c.up, c.w_out,
                    out, fd_g, fd_u, gg, gu};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------------------------------- attention softmax */

typedef struct {
    int B, H, T;
    const int32_t *mask;
    double *scores, *w_out, *out;
} softmax_ctx;

static int visible(const softmax_ctx *c, int b, int i, int j) {
    return j <= i && c->mask[b * c->T + j];
}

static double softmax_loss(const void *p) {
    const softmax_ctx *c = p;
    for (int r = 0; r < c->B * c->H * c->T; r++) {
        const int i = r % c->T, b = r / (c->H * c->T);
        const double *s = c->scores + (size_t)r * c->T;
        double *o = c->out + (size_t)r * c->T;
        double max = -INFINITY, sum = 0;
        for (int j = 0; j < c->T; j++)
            if (visible(c, b, i, j)) max = fmax(max, s[j]);
        for (int j = 0; j < c->T; j++) sum += visible(c, b, i, j) ? exp(s[j] - max) : 0;
        for (int j = 0; j < c->T; j++) o[j] = visible(c, b, i, j) ? exp(s[j] - max) / sum : 0;
    }
    return weighted_sum(c->out, c->w_out, (size_t)c->B * c->H * c->T * c->T);
}

static void test_softmax(int B, int H, int T) {
    int32_t *mask = malloc((size_t)B * T * sizeof *mask);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < T; j++)
            mask[b * T + j] = b % 3 == 1 ? j >= 2        /* left padding: queries 0, 1 see nothing */
                            : b % 3 == 2 ? j < T - 1     /* right padding */
                                         : 1;
    const size_t n = (size_t)B * H * T * T;
    softmax_ctx c = {B, H, T, mask, NULL, NULL, malloc(n * sizeof(double))};
    float *scores = random_floats(n, -3, 3, &c.scores), *dprobs = random_floats(n, -1, 1, &c.w_out);
    double *unused;
    float *garbage = random_floats(n, -1, 1, &unused); /* dscores is written, not added to */
    free(unused);
    rc_view vs = dev_from(scores, n), vmask = dev_from(mask, (size_t)B * T),
            vp = dev_from(NULL, n), vdp = dev_from(dprobs, n), vds = dev_from(garbage, n);
    be->attention_softmax_forward(be, vp, vs, vmask, B, H, T, T);
    be->attention_softmax_backward(be, vds, vdp, vp, B, H, T, T);
    softmax_loss(&c);
    float *out = dev_get(vp, n);
    check_forward("attention_softmax", c.out, out, n);
    double *fd = finite_diff(softmax_loss, &c, c.scores, n);
    float *got = dev_get(vds, n);
    check_grad("attention_softmax dscores", fd, got, NULL, n);
    rc_view views[] = {vs, vmask, vp, vdp, vds};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {mask, scores, dprobs, garbage, c.scores, c.w_out, c.out, fd, out, got};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ---------------------------------------------------- add, axpy and scale */

typedef struct {
    size_t n;
    double alpha, *a, *b, *w_out, *out;
    int op; /* 0: out = a + b, 1: out = a + alpha b (axpy), 2: out = alpha a (scale) */
} vector_ctx;

static double vector_loss(const void *p) {
    const vector_ctx *c = p;
    for (size_t i = 0; i < c->n; i++)
        c->out[i] = c->op == 0 ? c->a[i] + c->b[i]
                  : c->op == 1 ? c->a[i] + c->alpha * c->b[i]
                               : c->alpha * c->a[i];
    return weighted_sum(c->out, c->w_out, c->n);
}

/* The backward of each is built from the same ops, as model code does:
 * add and axpy pass dout to their inputs with axpy, scale scales a copy. */
static void test_vector(int op, size_t n) {
    static const char *names[] = {"add", "axpy", "scale"};
    vector_ctx c = {n, -0.625, NULL, NULL, NULL, malloc(n * sizeof(double)), op};
    const float alpha = (float)c.alpha;
    float *a = random_floats(n, -2, 2, &c.a), *b = random_floats(n, -2, 2, &c.b),
          *dout = random_floats(n, -1, 1, &c.w_out);
    double *unused;
    float *da0 = random_floats(n, -1, 1, &unused);
    free(unused);
    float *db0 = random_floats(n, -1, 1, &unused);
    free(unused);
    rc_view va = dev_from(a, n), vb = dev_from(b, n), vout = dev_from(NULL, n),
            vdout = dev_from(dout, n), vda = dev_from(op == 2 ? dout : da0, n),
            vdb = dev_from(db0, n);
    if (op == 0) {
        be->add(be, vout, va, vb, n);
        be->axpy(be, vda, 1.0f, vdout, n);
        be->axpy(be, vdb, 1.0f, vdout, n);
    } else if (op == 1) {
        be->add(be, vout, va, va, n); /* scratch, overwritten below */
        be->axpy(be, vout, -1.0f, va, n);
        be->axpy(be, vout, alpha, vb, n); /* out = a + alpha b, computed as (2a - a) + alpha b */
        be->axpy(be, vda, 1.0f, vdout, n);
        be->axpy(be, vdb, alpha, vdout, n);
    } else {
        be->fill(be, vout, 0.0f, n);
        be->axpy(be, vout, 1.0f, va, n);
        be->scale(be, vout, alpha, n);
        be->scale(be, vda, alpha, n); /* vda holds a copy of dout */
    }
    vector_loss(&c);
    float *out = dev_get(vout, n);
    check_forward(names[op], c.out, out, n);
    char what[64];
    double *fd_a = finite_diff(vector_loss, &c, c.a, n);
    float *ga = dev_get(vda, n);
    snprintf(what, sizeof what, "%s da", names[op]);
    check_grad(what, fd_a, ga, op == 2 ? NULL : da0, n);
    if (op != 2) {
        double *fd_b = finite_diff(vector_loss, &c, c.b, n);
        float *gb = dev_get(vdb, n);
        snprintf(what, sizeof what, "%s db", names[op]);
        check_grad(what, fd_b, gb, db0, n);
        free(fd_b);
        free(gb);
    }
    rc_view views[] = {va, vb, vout, vdout, vda, vdb};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {a, b, dout, da0, db0, c.a, c.b, c.w_out, c.out, out, fd_a, ga};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ------------------------------------------------------------------ AdamW */

/* torch.optim.AdamW's update written out in double, independently of the op:
 *   p <- p (1 - lr wd); m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2
 *   p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * run for several steps with a changing learning rate (as a warmup would). The
 * float op rounds each of its ~10 operations per step once, so after t steps
 * an element may be off by ~4u |p| per step plus ~16u of each step's update
 * (the float m and v it reads carry their own few-u errors). */
static void test_adamw(void) {
    const size_t n = 257;
    const int steps = 6;
    const float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-6f, wd = 0.1f;
    double *p, *unused;
    float *pf = random_floats(n, -1, 1, &p);
    double *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v), *update_sum = calloc(n, sizeof *update_sum);
    float *zeros = calloc(n, sizeof *zeros);
    rc_view vp = dev_from(pf, n), vg = dev_from(NULL, n), vm = dev_from(zeros, n),
            vv = dev_from(zeros, n);
    for (int t = 1; t <= steps; t++) {
        const float lr = 1e-2f * (float)t / steps;
        float *g = random_floats(n, -1, 1, &unused);
        free(unused);
        g[0] = 0.0f;                   /* never a gradient: only decay moves it */
        if (t > 2) g[1] = 0.0f;        /* gradient stops: momentum carries on */
        g[2] = 1e-7f * (float)t;       /* sqrt(v) comparable to eps */
        const double bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t);
        CHECK(be->upload(be, vg, g, n) == RC_OK, "upload grad: %s", rc_last_error());
        be->adamw(be, vp, vg, 1.0f, vm, vv, n, lr, beta1, beta2, eps, wd, (float)bc1, (float)bc2);
        for (size_t i = 0; i < n; i++) {
            p[i] *= 1 - (double)lr * wd;
            m[i] = beta1 * m[i] + (1 - (double)beta1) * g[i];
            v[i] = beta2 * v[i] + (1 - (double)beta2) * g[i] * g[i];
            const double update = lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
            p[i] -= update;
            update_sum[i] += fabs(update);
        }
        float *gp = dev_get(vp, n), *gm = dev_get(vm, n), *gv = dev_get(vv, n);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++) {
            const int ok = fabs(gp[i] - p[i]) <= 4 * U * t * fabs(p[i]) + 16 * U * update_sum[i] &&
                           fabs(gm[i] - m[i]) <= 4 * U * t * (fabs(m[i]) + 1) &&
                           fabs(gv[i] - v[i]) <= 4 * U * t * (fabs(v[i]) + 1e-30);
            if (!ok && bad++ == 0) first = i;
        }
        CHECK(bad == 0, "adamw step %d: %zu of %zu elements off; first [%zu] p %.9g vs %.9g, "
              "m %.9g vs %.9g, v %.9g vs %.9g", t, bad, n, first, gp[first], p[first], gm[first],
              m[first], gv[first], v[first]);
        free(g);
        free(gp);
        free(gm);
        free(gv);
    }
    rc_view views[] = {vp, vg, vm, vv};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) dev_free(views[i]);
    void *ptrs[] = {pf, p, m, v, update_sum, zeros};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

int main(void) {
    rc_status st = rc_backend_cpu_create(&be);
    CHECK(st == RC_OK, "rc_backend_cpu_create: %s", rc_last_error());
    if (st != RC_OK) return test_finish("test_ops_gradcheck");
    test_linear(3, 5, 4);
    test_linear(1, 7, 1);
    test_batched(3, 4, 5, 2);
    test_lookup(0, 7, 5, 3);
    test_lookup(1, 5, 4, 6);
    test_layernorm(3, 6, 1);
    test_layernorm(2, 7, 0);
    test_layernorm(1, 9, 1);
    test_rmsnorm(3, 6, 1);
    test_rmsnorm(2, 7, 0);
    test_rmsnorm(1, 9, 1);
    test_rope(3, 2, 6, 12, 4); /* ld > H*D: gap columns */
    test_rope(1, 1, 2, 2, 1);  /* one row, D = 2 */
    test_rope(4, 3, 8, 24, 7);
    for (int k = 0; k < 4; k++) test_activation((rc_activation)k, 23);
    for (int k = 0; k < 4; k++) test_gated((rc_activation)k, 19);
    test_softmax(3, 2, 5);
    for (int op = 0; op < 3; op++) test_vector(op, 11);
    test_adamw();
    st = be->sync(be);
    CHECK(st == RC_OK, "no op reported an error: %s", rc_last_error());
    rc_backend_destroy(be);
    return test_finish("test_ops_gradcheck");
}
