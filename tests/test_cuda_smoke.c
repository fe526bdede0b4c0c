/* The CUDA backend on its own: every op against a plain double-precision
 * host computation written here, plus what the CPU comparison in
 * test_backend_ops.c cannot see -- bitwise determinism of the reductions and
 * scatter-adds, no TF32 in matrix products (the tolerance below is ~1000x
 * tighter than TF32 can meet), guard elements after every output, the
 * sticky-error reporting, and a clean OOM.
 *
 * Without a CUDA build or a usable device it checks the argument handling
 * that needs no device, then exits 77 (skipped).
 *
 * REWARDC_SMOKE_BACKEND=cpu runs the same op checks on the CPU backend, to
 * check the test itself on a machine without a GPU. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/rng.h"
#include "testlib.h"

/* fp32 results against a double reference: rounding leaves NMSE near 1e-13;
 * TF32 products or a wrong formula land far above this. */
static const double TIGHT_NMSE = 1e-9;
enum { GUARD = 17 };
static const float GUARD_VALUE = -1234.5f;
static const double PI = 3.14159265358979323846;

static rc_rng rng;

static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)rc_rng_uniform(&rng); }
static void random_fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = uniform(lo, hi);
}
static float *host(size_t n) {
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of host memory\n");
        exit(2);
    }
    return p;
}

/* A device array of n elements followed by GUARD sentinel elements. */
typedef struct {
    rc_buffer *buf;
    size_t n;
} darray;

static rc_backend *be;
static const char *backend_name = "cuda";

static darray dnew(size_t n) {
    darray a = {NULL, n};
    rc_status rc = be->alloc(be, n + GUARD, &a.buf);
    CHECK(rc == RC_OK, "alloc %zu: %s", n, rc_last_error());
    if (rc != RC_OK) exit(test_finish("test_cuda_smoke"));
    float *init = host(n + GUARD);
    for (size_t i = 0; i < n + GUARD; i++) init[i] = i < n ? 0.0f : GUARD_VALUE;
    rc = be->upload(be, (rc_view){a.buf, 0}, init, n + GUARD);
    CHECK(rc == RC_OK, "upload: %s", rc_last_error());
    free(init);
    return a;
}
static rc_view V(darray a) { return (rc_view){a.buf, 0}; }
static void dput(darray a, const void *src) {
    rc_status rc = be->upload(be, V(a), src, a.n);
    CHECK(rc == RC_OK, "upload: %s", rc_last_error());
}
/* Downloads a, checks its guards, returns a host copy (caller frees). */
static float *dfetch(darray a, const char *what) {
    float *all = host(a.n + GUARD);
    rc_status rc = be->download(be, all, V(a), a.n + GUARD);
    CHECK(rc == RC_OK, "%s: download: %s", what, rc_last_error());
    int intact = 1;
    for (size_t i = a.n; i < a.n + GUARD; i++) intact &= all[i] == GUARD_VALUE;
    CHECK(intact, "%s: wrote past its %zu elements", what, a.n);
    return all;
}
static void dfree(darray a) { be->free(be, a.buf); }

static void expect_close(const char *what, const float *ref, const float *got, size_t n,
                         double limit) {
    double max_abs = 0.0;
    const double nmse = test_nmse(ref, got, n, &max_abs);
    CHECK(nmse <= limit, "%s: NMSE %.3e > %.1e (max |diff| %.3e)", what, nmse, limit, max_abs);
}

/* ---------------------------------------------------------------- gemm */

static void gemm_reference(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                           int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                const double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

static void check_gemm(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta,
                       int batch) {
    char what[160];
    snprintf(what, sizeof what, "gemm%s ta=%d tb=%d M=%d N=%d K=%d pad=%d beta=%g",
             batch > 1 ? "_batched" : "", ta, tb, M, N, K, pad, beta);
    const int a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int b_rows = tb ? N : K, b_cols = tb ? K : N;
    const int lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
    /* Batch strides leave a gap between matrices, which must stay untouched. */
    const size_t sa = (size_t)a_rows * lda + 5, sb = (size_t)b_rows * ldb + 3,
                 sc = (size_t)M * ldc + 2;
    const size_t na = sa * batch, nb = sb * batch, nc = sc * batch;
    float *A = host(na), *B = host(nb), *C = host(nc), *ref = host(nc);
    random_fill(A, na, -1, 1);
    random_fill(B, nb, -1, 1);
    random_fill(C, nc, -1, 1);
    if (beta == 0.0f) /* BLAS: beta = 0 must not read C, so NaN there vanishes */
        for (int i = 0; i < M; i++) C[(size_t)i * ldc] = NAN;
    memcpy(ref, C, nc * sizeof *C);
    for (int b = 0; b < batch; b++)
        gemm_reference(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta,
                       ref + b * sc, ldc);
    darray dA = dnew(na), dB = dnew(nb), dC = dnew(nc);
    dput(dA, A);
    dput(dB, B);
    dput(dC, C);
    if (batch > 1)
        be->gemm_batched(be, ta, tb, M, N, K, alpha, V(dA), lda, sa, V(dB), ldb, sb, beta, V(dC),
                         ldc, sc, batch);
    else
        be->gemm(be, ta, tb, M, N, K, alpha, V(dA), lda, V(dB), ldb, beta, V(dC), ldc);
    CHECK(be->sync(be) == RC_OK, "%s: %s", what, rc_last_error());
    float *got = dfetch(dC, what);
    expect_close(what, ref, got, nc, TIGHT_NMSE);
    int untouched = 1; /* padding columns and gaps between batch matrices */
    for (int b = 0; b < batch; b++)
        for (size_t e = 0; e < sc; e++) {
            const size_t row = e / ldc, col = e % ldc;
            if (row >= (size_t)M || col >= (size_t)N)
                untouched &= memcmp(&got[b * sc + e], &C[b * sc + e], sizeof(float)) == 0;
        }
    CHECK(untouched, "%s: wrote outside the M x N matrices", what);
    free(A), free(B), free(C), free(ref), free(got);
    dfree(dA), dfree(dB), dfree(dC);
}

static void test_gemm(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(ta, tb, 37, 23, 129, 0, 0.7f, 0.3f, 1);
            check_gemm(ta, tb, 1, 1, 1, 0, 1.0f, 0.0f, 1);
            check_gemm(ta, tb, 64, 50, 7, 3, -1.3f, 1.0f, 1);
            check_gemm(ta, tb, 5, 130, 1, 1, 1.0f, 0.0f, 1);
            check_gemm(ta, tb, 12, 9, 31, 2, 0.5f, 0.25f, 3);
            check_gemm(ta, tb, 17, 17, 17, 0, 1.0f, 0.0f, 7);
        }
    check_gemm(0, 1, 9, 11, 0, 1, 1.0f, 0.5f, 1); /* K = 0: C = beta * C */
    check_gemm(1, 0, 9, 11, 0, 0, 1.0f, 0.0f, 2);
    /* A product big enough for cuBLAS to pick its tensor-core kernels, the
     * ones that would use TF32 if the math mode allowed it. */
    check_gemm(0, 1, 256, 384, 512, 0, 1.0f, 0.0f, 1);
}

/* ---------------------------------------------------- rows and embeddings */

static void test_rows(void) {
    const int N = 300, C = 515, rows = 37;
    int32_t *ids = malloc(N * sizeof *ids);
    for (int n = 0; n < N; n++) ids[n] = (int32_t)rc_rng_below(&rng, rows);
    ids[N - 1] = ids[0]; /* repeats at both ends */
    float *table = host((size_t)rows * C), *src = host((size_t)N * C), *out0 = host((size_t)N * C);
    random_fill(table, (size_t)rows * C, -1, 1);
    random_fill(src, (size_t)N * C, -1, 1);
    random_fill(out0, (size_t)N * C, -1, 1);
    darray dids = dnew(N), dtable = dnew((size_t)rows * C), dsrc = dnew((size_t)N * C),
           dout = dnew((size_t)N * C);
    dput(dids, ids);

    /* forward, plain and accumulating: exact copies / one float add */
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        dput(dtable, table);
        dput(dout, out0);
        be->embedding_forward(be, V(dout), V(dids), V(dtable), N, C, accumulate);
        float *got = dfetch(dout, "embedding_forward");
        int exact = 1;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                const float want = accumulate ? out0[(size_t)n * C + c] + table[(size_t)ids[n] * C + c]
                                              : table[(size_t)ids[n] * C + c];
                exact &= got[(size_t)n * C + c] == want;
            }
        CHECK(exact, "embedding_forward accumulate=%d differs from the lookup", accumulate);
        free(got);
    }
    /* gather_rows is the same lookup */
    be->gather_rows(be, V(dout), V(dtable), V(dids), N, C);
    float *gathered = dfetch(dout, "gather_rows");
    int exact = 1;
    for (int n = 0; n < N; n++)
        exact &= memcmp(&gathered[(size_t)n * C], &table[(size_t)ids[n] * C], C * sizeof(float)) == 0;
    CHECK(exact, "gather_rows differs from the lookup");
    free(gathered);

    /* backward: the documented order (serial in n, from the current value)
     * gives the same bits as this loop, twice in a row */
    float *want = host((size_t)rows * C);
    memcpy(want, table, (size_t)rows * C * sizeof *want);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) want[(size_t)ids[n] * C + c] += src[(size_t)n * C + c];
    dput(dsrc, src);
    for (int round = 0; round < 2; round++) {
        dput(dtable, table);
        if (round == 0) be->embedding_backward(be, V(dtable), V(dsrc), V(dids), N, C);
        else be->scatter_rows_add(be, V(dtable), V(dsrc), V(dids), N, C);
        float *got = dfetch(dtable, "scatter-add");
        CHECK(memcmp(got, want, (size_t)rows * C * sizeof *got) == 0,
              "%s is not bitwise equal to the serial loop",
              round == 0 ? "embedding_backward" : "scatter_rows_add");
        free(got);
    }
    CHECK(be->sync(be) == RC_OK, "rows: %s", rc_last_error());
    free(ids), free(table), free(src), free(out0), free(want);
    dfree(dids), dfree(dtable), dfree(dsrc), dfree(dout);
}

/* ------------------------------------------------------------- layernorm */

static void layernorm_reference(float *out, float *mean, float *rstd, const float *x,
                                const float *w, const float *b, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *r = x + (size_t)n * C;
        double mu = 0.0, var = 0.0;
        for (int c = 0; c < C; c++) mu += r[c];
        mu /= C;
        for (int c = 0; c < C; c++) var += (r[c] - mu) * (r[c] - mu);
        var /= C;
        const double rs = 1.0 / sqrt(var + eps);
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = (float)((r[c] - mu) * rs * (w ? w[c] : 1.0) + (b ? b[c] : 0.0));
        mean[n] = (float)mu;
        rstd[n] = (float)rs;
    }
}

/* d/dx of sum(dout * LN(x)) written out per row, accumulated onto inputs. */
static void layernorm_backward_reference(float *dx, float *dw, float *db, const float *dy,
                                         const float *x, const float *w, const float *mean,
                                         const float *rstd, int N, int C) {
    for (int c = 0; c < C; c++) {
        double sw = 0.0, sb = 0.0;
        for (int n = 0; n < N; n++) {
            const size_t i = (size_t)n * C + c;
            sw += (double)dy[i] * (x[i] - mean[n]) * rstd[n];
            sb += dy[i];
        }
        if (dw) dw[c] += (float)sw;
        if (db) db[c] += (float)sb;
    }
    for (int n = 0; n < N; n++) {
        double a = 0.0, bsum = 0.0;
        for (int c = 0; c < C; c++) {
            const size_t i = (size_t)n * C + c;
            const double g = (double)dy[i] * (w ? w[c] : 1.0);
            a += g;
            bsum += g * (x[i] - mean[n]) * rstd[n];
        }
        a /= C;
        bsum /= C;
        for (int c = 0; c < C; c++) {
            const size_t i = (size_t)n * C + c;
            const double g = (double)dy[i] * (w ? w[c] : 1.0);
            const double xhat = (x[i] - mean[n]) * (double)rstd[n];
            dx[i] += (float)(rstd[n] * (g - a - xhat * bsum));
        }
    }
}

static void check_layernorm(int N, int C, int affine) {
    char what[96];
    snprintf(what, sizeof what, "layernorm N=%d C=%d affine=%d", N, C, affine);
    const size_t nc = (size_t)N * C;
    const float eps = 1e-5f;
    float *x = host(nc), *w = host(C), *b = host(C), *dy = host(nc), *dx0 = host(nc),
          *dw0 = host(C), *db0 = host(C);
    random_fill(x, nc, -2, 3);
    random_fill(w, C, 0.5f, 1.5f);
    random_fill(b, C, -0.5f, 0.5f);
    random_fill(dy, nc, -1, 1);
    random_fill(dx0, nc, -1, 1);
    random_fill(dw0, C, -1, 1);
    random_fill(db0, C, -1, 1);
    float *out = host(nc), *mean = host(N), *rstd = host(N);
    layernorm_reference(out, mean, rstd, x, affine ? w : NULL, affine ? b : NULL, N, C, eps);
    float *dx = host(nc), *dw = host(C), *db = host(C);
    memcpy(dx, dx0, nc * sizeof *dx);
    memcpy(dw, dw0, C * sizeof *dw);
    memcpy(db, db0, C * sizeof *db);
    layernorm_backward_reference(dx, affine ? dw : NULL, affine ? db : NULL, dy, x,
                                 affine ? w : NULL, mean, rstd, N, C);

    darray dX = dnew(nc), dW = dnew(C), dB = dnew(C), dOut = dnew(nc), dMean = dnew(N),
           dRstd = dnew(N), dDy = dnew(nc), dDx = dnew(nc), dDw = dnew(C), dDb = dnew(C);
    dput(dX, x), dput(dW, w), dput(dB, b), dput(dDy, dy);
    const rc_view none = {NULL, 0};
    be->layernorm_forward(be, V(dOut), V(dMean), V(dRstd), V(dX), affine ? V(dW) : none,
                          affine ? V(dB) : none, N, C, eps);
    float *got = dfetch(dOut, what), *got_mean = dfetch(dMean, what),
          *got_rstd = dfetch(dRstd, what);
    expect_close(what, out, got, nc, TIGHT_NMSE);
    expect_close("layernorm mean", mean, got_mean, N, TIGHT_NMSE);
    expect_close("layernorm rstd", rstd, got_rstd, N, TIGHT_NMSE);

    float *first_dw = NULL;
    for (int round = 0; round < 2; round++) { /* twice: parameter grads bitwise repeatable */
        dput(dDx, dx0), dput(dDw, dw0), dput(dDb, db0);
        be->layernorm_backward(be, V(dDx), affine ? V(dDw) : none, affine ? V(dDb) : none,
                               V(dDy), V(dX), affine ? V(dW) : none, V(dMean), V(dRstd), N, C);
        float *gdx = dfetch(dDx, "layernorm dinp"), *gdw = dfetch(dDw, "layernorm dweight"),
              *gdb = dfetch(dDb, "layernorm dbias");
        expect_close("layernorm dinp", dx, gdx, nc, TIGHT_NMSE);
        if (affine) {
            expect_close("layernorm dweight", dw, gdw, C, TIGHT_NMSE);
            expect_close("layernorm dbias", db, gdb, C, TIGHT_NMSE);
        } else {
            CHECK(memcmp(gdw, dw0, C * sizeof *gdw) == 0, "dweight touched although absent");
        }
        if (round == 0) first_dw = gdw, gdw = NULL;
        else CHECK(memcmp(first_dw, gdw, C * sizeof *gdw) == 0, "%s: dweight not repeatable", what);
        free(gdx), free(gdw), free(gdb);
    }
    free(first_dw);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0), free(out), free(mean),
        free(rstd), free(dx), free(dw), free(db), free(got), free(got_mean), free(got_rstd);
    dfree(dX), dfree(dW), dfree(dB), dfree(dOut), dfree(dMean), dfree(dRstd), dfree(dDy),
        dfree(dDx), dfree(dDw), dfree(dDb);
}

/* ------------------------------------------------------------- attention */

static void test_softmax(int B, int H, int T) {
    char what[96];
    snprintf(what, sizeof what, "attention softmax B=%d H=%d T=%d", B, H, T);
    const size_t n = (size_t)B * H * T * T;
    float *scores = host(n), *dprobs = host(n), *probs = host(n), *dscores = host(n);
    int32_t *mask = malloc((size_t)B * T * sizeof *mask);
    random_fill(scores, n, -4, 4);
    random_fill(dprobs, n, -1, 1);
    for (int b = 0; b < B; b++) /* left padding: sequence b starts at b % T */
        for (int t = 0; t < T; t++) mask[b * T + t] = t >= b % T;
    for (size_t r = 0; r < (size_t)B * H * T; r++) {
        const int i = (int)(r % T), b = (int)(r / ((size_t)H * T));
        const float *s = scores + r * T;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j <= i; j++)
            if (mask[b * T + j]) mx = fmax(mx, s[j]);
        for (int j = 0; j <= i; j++)
            if (mask[b * T + j]) sum += exp(s[j] - mx);
        double dot = 0.0;
        for (int j = 0; j < T; j++) {
            const int visible = j <= i && mask[b * T + j];
            probs[r * T + j] = visible ? (float)(exp(s[j] - mx) / sum) : 0.0f;
            dot += (double)probs[r * T + j] * dprobs[r * T + j];
        }
        for (int j = 0; j < T; j++)
            dscores[r * T + j] = (float)(probs[r * T + j] * (dprobs[r * T + j] - dot));
    }
    darray dS = dnew(n), dM = dnew((size_t)B * T), dDp = dnew(n), dP = dnew(n);
    dput(dS, scores), dput(dM, mask), dput(dDp, dprobs);
    /* forward in place (probs aliases scores), backward out of place */
    be->attention_softmax_forward(be, V(dS), V(dS), V(dM), B, H, T, T);
    float *got = dfetch(dS, what);
    expect_close(what, probs, got, n, TIGHT_NMSE);
    int zero_rows_ok = 1; /* padding queries see nothing: all-zero rows */
    for (size_t r = 0; r < (size_t)B * H * T; r++) {
        const int i = (int)(r % T), b = (int)(r / ((size_t)H * T));
        if (i < b % T)
            for (int j = 0; j < T; j++) zero_rows_ok &= got[r * T + j] == 0.0f;
    }
    CHECK(zero_rows_ok, "%s: a row with no visible key is not all zeros", what);
    be->attention_softmax_backward(be, V(dP), V(dDp), V(dS), B, H, T, T);
    float *gds = dfetch(dP, "softmax backward");
    expect_close("attention softmax backward", dscores, gds, n, TIGHT_NMSE);
    free(scores), free(dprobs), free(probs), free(dscores), free(mask), free(got), free(gds);
    dfree(dS), dfree(dM), dfree(dDp), dfree(dP);
}

/* ------------------------------------------------------ element-wise ops */

static double act_ref(rc_activation kind, double x, double *deriv) {
    if (kind == RC_ACT_RELU) {
        *deriv = x > 0 ? 1.0 : 0.0;
        return x > 0 ? x : 0.0;
    }
    if (kind == RC_ACT_GELU) {
        const double cdf = 0.5 * (1.0 + erf(x / sqrt(2.0)));
        *deriv = cdf + x * exp(-0.5 * x * x) / sqrt(2.0 * PI);
        return x * cdf;
    }
    const double k = sqrt(2.0 / PI), u = k * (x + 0.044715 * x * x * x), t = tanh(u);
    *deriv = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * x * (1.0 + t);
}

static void test_elementwise(void) {
    const size_t n = 100003;
    float *x = host(n), *y = host(n), *z = host(n), *ref = host(n);
    random_fill(x, n, -5, 5);
    random_fill(y, n, -1, 1);
    random_fill(z, n, -1, 1);
    darray dx = dnew(n), dy = dnew(n), dz = dnew(n);
    dput(dx, x);
    const rc_activation kinds[] = {RC_ACT_RELU, RC_ACT_GELU, RC_ACT_GELU_TANH};
    for (int k = 0; k < 3; k++) {
        double d;
        for (size_t i = 0; i < n; i++) ref[i] = (float)act_ref(kinds[k], x[i], &d);
        be->activation_forward(be, kinds[k], V(dy), V(dx), n);
        float *got = dfetch(dy, "activation_forward");
        expect_close("activation_forward", ref, got, n, TIGHT_NMSE);
        free(got);
        for (size_t i = 0; i < n; i++) {
            act_ref(kinds[k], x[i], &d);
            ref[i] = (float)(z[i] + d * y[i]);
        }
        dput(dy, y), dput(dz, z);
        be->activation_backward(be, kinds[k], V(dz), V(dy), V(dx), n);
        got = dfetch(dz, "activation_backward");
        expect_close("activation_backward", ref, got, n, TIGHT_NMSE);
        free(got);
    }
    /* add in place, axpy, scale, fill */
    dput(dy, y), dput(dz, z);
    be->add(be, V(dy), V(dy), V(dx), n);
    be->axpy(be, V(dz), -0.75f, V(dx), n);
    be->scale(be, V(dx), 3.0f, n);
    float *gy = dfetch(dy, "add"), *gz = dfetch(dz, "axpy"), *gx = dfetch(dx, "scale");
    for (size_t i = 0; i < n; i++) ref[i] = y[i] + x[i];
    expect_close("add", ref, gy, n, TIGHT_NMSE);
    for (size_t i = 0; i < n; i++) ref[i] = (float)(z[i] - 0.75 * x[i]);
    expect_close("axpy", ref, gz, n, TIGHT_NMSE);
    for (size_t i = 0; i < n; i++) ref[i] = 3.0f * x[i];
    expect_close("scale", ref, gx, n, TIGHT_NMSE);
    be->fill(be, (rc_view){dx.buf, 5}, 2.5f, n - 5);
    free(gx);
    gx = dfetch(dx, "fill");
    int filled = 1;
    for (size_t i = 0; i < n; i++) filled &= gx[i] == (i < 5 ? 3.0f * x[i] : 2.5f);
    CHECK(filled, "fill at an offset wrote the wrong elements");
    free(x), free(y), free(z), free(ref), free(gy), free(gz), free(gx);
    dfree(dx), dfree(dy), dfree(dz);
}

static void test_bias(int N, int C) {
    const size_t nc = (size_t)N * C;
    float *out = host(nc), *bias = host(C), *dbias = host(C), *ref = host(nc), *refb = host(C);
    random_fill(out, nc, -1, 1);
    random_fill(bias, C, -1, 1);
    random_fill(dbias, C, -1, 1);
    for (size_t i = 0; i < nc; i++) ref[i] = out[i] + bias[i % C];
    for (int c = 0; c < C; c++) {
        double s = dbias[c];
        for (int n = 0; n < N; n++) s += out[(size_t)n * C + c];
        refb[c] = (float)s;
    }
    darray dOut = dnew(nc), dBias = dnew(C), dDb = dnew(C);
    dput(dOut, out), dput(dBias, bias), dput(dDb, dbias);
    be->bias_backward(be, V(dDb), V(dOut), N, C); /* before the forward changes out */
    be->bias_forward(be, V(dOut), V(dBias), N, C);
    float *got = dfetch(dOut, "bias_forward"), *gotb = dfetch(dDb, "bias_backward");
    expect_close("bias_forward", ref, got, nc, TIGHT_NMSE);
    expect_close("bias_backward", refb, gotb, C, TIGHT_NMSE);
    free(out), free(bias), free(dbias), free(ref), free(refb), free(got), free(gotb);
    dfree(dOut), dfree(dBias), dfree(dDb);
}

/* --------------------------------------------------------------- optimizer */

static void test_optimizer(void) {
    const size_t n = 1000003;
    float *x = host(n);
    random_fill(x, n, -3, 3);
    double want = 0.0;
    for (size_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    darray dx = dnew(n);
    dput(dx, x);
    const double got = be->sum_squares(be, V(dx), n), again = be->sum_squares(be, V(dx), n);
    CHECK(fabs(got - want) <= 1e-11 * want, "sum_squares %.17g, want %.17g", got, want);
    CHECK(memcmp(&got, &again, sizeof got) == 0, "sum_squares not repeatable");
    CHECK(be->sum_squares(be, V(dx), 0) == 0.0, "sum_squares of nothing is not 0");

    float *p = host(n), *g = host(n), *m = host(n), *v = host(n);
    random_fill(p, n, -1, 1);
    random_fill(g, n, -1, 1);
    random_fill(m, n, -0.1f, 0.1f);
    random_fill(v, n, 0.0f, 0.01f);
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, clip = 0.7f;
    const int step = 3;
    const float bc1 = 1.0f - powf(b1, step), bc2 = 1.0f - powf(b2, step);
    float *rp = host(n), *rm = host(n), *rv = host(n);
    for (size_t i = 0; i < n; i++) {
        double pp = p[i] - (double)lr * wd * p[i];
        const double gi = (double)g[i] * clip;
        const double mm = b1 * (double)m[i] + (1.0 - b1) * gi;
        const double vv = b2 * (double)v[i] + (1.0 - b2) * gi * gi;
        pp -= lr * (mm / bc1) / (sqrt(vv / bc2) + eps);
        rp[i] = (float)pp, rm[i] = (float)mm, rv[i] = (float)vv;
    }
    darray dp = dnew(n), dg = dnew(n), dm = dnew(n), dv = dnew(n);
    dput(dp, p), dput(dg, g), dput(dm, m), dput(dv, v);
    be->adamw(be, V(dp), V(dg), clip, V(dm), V(dv), n, lr, b1, b2, eps, wd, bc1, bc2);
    float *gp = dfetch(dp, "adamw param"), *gm = dfetch(dm, "adamw m"), *gv = dfetch(dv, "adamw v");
    expect_close("adamw param", rp, gp, n, TIGHT_NMSE);
    expect_close("adamw m", rm, gm, n, TIGHT_NMSE);
    expect_close("adamw v", rv, gv, n, TIGHT_NMSE);
    /* the update itself, not just the barely-moved parameters */
    for (size_t i = 0; i < n; i++) rp[i] -= p[i], gp[i] -= p[i];
    expect_close("adamw param change", rp, gp, n, 1e-6);
    free(x), free(p), free(g), free(m), free(v), free(rp), free(rm), free(rv), free(gp), free(gm),
        free(gv);
    dfree(dx), dfree(dp), dfree(dg), dfree(dm), dfree(dv);
}

/* ---------------------------------------------------------------- errors */

static void test_errors(void) {
    /* An allocation far beyond any GPU fails cleanly and leaves it usable. */
    rc_buffer *huge = NULL;
    rc_status rc = be->alloc(be, (size_t)1 << 42, &huge);
    CHECK(rc == RC_ERR_OOM && huge == NULL, "16 TiB alloc gave %s: %s", rc_status_name(rc),
          rc_last_error());
    CHECK(strstr(rc_last_error(), "bytes") != NULL, "OOM message lacks the size: %s",
          rc_last_error());
    CHECK(be->sync(be) == RC_OK, "sync after a failed alloc: %s", rc_last_error());

    /* A bad token id is reported by the next sync, naming the op and the id;
     * once reported it is cleared, and the backend works on. */
    darray table = dnew(4 * 8), out = dnew(3 * 8), ids = dnew(3);
    const int32_t bad_ids[3] = {1, 1000, 0}; /* the table holds 6 rows with its guards */
    dput(ids, bad_ids);
    be->embedding_forward(be, V(out), V(ids), V(table), 3, 8, 0);
    rc = be->sync(be);
    CHECK(rc == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "embedding_forward"),
          "out-of-table id: %s: %s", rc_status_name(rc), rc_last_error());
    CHECK(strstr(rc_last_error(), "1000") != NULL, "message lacks the bad id: %s", rc_last_error());
    const int32_t good_ids[3] = {3, 0, 2};
    dput(ids, good_ids);
    be->fill(be, V(table), 0.5f, 4 * 8);
    be->embedding_forward(be, V(out), V(ids), V(table), 3, 8, 0);
    float *got = dfetch(out, "embedding_forward after an error");
    int all_half = 1;
    for (int i = 0; i < 3 * 8; i++) all_half &= got[i] == 0.5f;
    CHECK(all_half, "the backend did not recover after reporting a bad id");
    CHECK(be->sync(be) == RC_OK, "the reported error came back: %s", rc_last_error());
    free(got);

    /* A view running past its buffer: reported with the op's name. */
    be->fill(be, (rc_view){out.buf, 5}, 1.0f, 3 * 8 - 5 + GUARD + 1);
    rc = be->sync(be);
    CHECK(rc == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "fill"),
          "overlong view: %s: %s", rc_status_name(rc), rc_last_error());
    CHECK(be->sync(be) == RC_OK, "the view error came back: %s", rc_last_error());
    dfree(table), dfree(out), dfree(ids);
}

int main(void) {
    /* Argument handling that needs no device. */
    setenv("REWARDC_CUDA_DEVICE", "first", 1);
    rc_backend *probe = NULL;
    rc_status rc = rc_backend_create("cuda", 0, &probe);
    const rc_status want = RC_ERR_INVALID_ARG;
#ifdef RC_HAVE_CUDA
    CHECK(rc == want && probe == NULL && strstr(rc_last_error(), "REWARDC_CUDA_DEVICE"),
          "REWARDC_CUDA_DEVICE=first: %s: %s", rc_status_name(rc), rc_last_error());
#else
    CHECK(rc == RC_ERR_UNSUPPORTED, "cuda not compiled in, yet create gave %s",
          rc_status_name(rc));
    (void)want;
#endif
    unsetenv("REWARDC_CUDA_DEVICE");
    rc = rc_backend_create("cuda", 100000, &probe);
    CHECK(rc != RC_OK && probe == NULL, "device 100000 exists?");

    const char *override = getenv("REWARDC_SMOKE_BACKEND");
    if (override && *override) backend_name = override;
    rc = rc_backend_create(backend_name, 0, &be);
    if (rc != RC_OK) {
        printf("test_cuda_smoke: skipped: %s\n", rc_last_error());
        if (test_checks_failed) return test_finish("test_cuda_smoke");
        return TEST_SKIP;
    }
    printf("%s device: %s\n", be->name, be->device);
    CHECK(strcmp(be->name, backend_name) == 0, "backend name %s", be->name);
    rc_rng_seed(&rng, 20240607);

    test_gemm();
    test_rows();
    check_layernorm(7, 1, 1);
    check_layernorm(33, 769, 1);
    check_layernorm(5, 64, 0);
    check_layernorm(4100, 96, 1); /* more rows than one column-sum chunk */
    test_softmax(3, 2, 5);
    test_softmax(2, 3, 67);
    test_softmax(1, 1, 1);
    test_elementwise();
    test_bias(1, 1);
    test_bias(4099, 37);
    test_optimizer();
    CHECK(be->sync(be) == RC_OK, "sync after all ops: %s", rc_last_error());

    test_errors();
    rc_backend_destroy(be);
    return test_finish("test_cuda_smoke");
}
