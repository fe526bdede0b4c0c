/* Backend conformance: every op of every compiled device backend (opencl,
 * and cuda when built with it), forward and backward, against the CPU
 * reference backend on the same random inputs -- in the spirit of ggml's
 * test-backend-ops.
 *
 * Shapes are awkward on purpose: 1, odd, prime, and past 1000 (several work
 * groups, several reduction chunks, ragged tiles). Every tensor is a view at
 * a non-zero offset into its own buffer, with a NaN sentinel before it and
 * GUARD sentinel elements after it; outputs that an op must overwrite start
 * as NaN too. After each op, on both backends:
 *   - the lead and guard elements of every tensor are bit-for-bit untouched,
 *   - inputs are bit-for-bit unchanged,
 *   - outputs are finite (a read of a sentinel, or an output left unwritten,
 *     shows up as NaN),
 *   - NMSE(cpu, device) = sum (a-b)^2 / sum a^2 is within the op's bound.
 * One line per case prints the NMSE of each output.
 *
 * Bounds (ggml uses 1e-7 for element-wise ops and 5e-4 for matrix products)
 * are tightened to what conforming fp32 implementations reach; the worst
 * values measured with PoCL 3.1 (OpenCL on this CPU, fp64 accumulation,
 * CLBlast 1.5.3) are in the comments. A bound of 0 means the op must
 * reproduce the CPU bit for bit. Reductions and scatter-adds are also run
 * twice on the device and must give the same bits.
 *
 * Exits 77 (skipped) when no device backend is compiled in or none has a
 * device. REWARDC_BACKENDS=opencl (comma-separated) limits the backends run. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testlib.h"

#ifdef RC_HAVE_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#endif

/* Copies and single correctly rounded operations: fill, add, scale, relu,
 * bias_forward, gathers. Measured 0. */
static const double TOL_EXACT = 0.0;
/* Element-wise chains (axpy, adamw), which a compiler may contract into fma
 * or reassociate by a rounding. Measured 0 (PoCL follows the CPU's order). */
static const double TOL_ELEMENTWISE = 1e-12;
/* Transcendentals: OpenCL allows erf 16 ulp, tanh 5, exp 3, so NMSE stays
 * below ~1e-11 for any conforming device. Measured: gelu 1e-16, gelu_tanh
 * 1.3e-15 (its backward 4.8e-13: one ulp of tanh near +-1 in 1 - t^2),
 * softmax 3.7e-16. */
static const double TOL_TRANSCENDENTAL = 1e-10;
/* Row/column reductions (LayerNorm, bias and softmax gradients, sum of
 * squares, scatter-adds of repeated rows): summation order only, accumulated
 * in double on both. Measured 0 (sum_squares 4e-28). */
static const double TOL_REDUCTION = 1e-11;
/* fp32 matrix products with K up to ~1000: summation order only; TF32 or
 * half-precision products land near 1e-7 and fail. Measured 1.3e-14. */
static const double TOL_GEMM = 1e-10;

enum { GUARD = 19, MAX_LEAD = 7 };
static const uint32_t SENTINEL_BITS = 0x7fc0beefu; /* a quiet NaN with a recognisable payload */

static rc_backend *ref; /* cpu */
static rc_backend *dev; /* the backend under test */
static const char *dev_name;

/* ------------------------------------------------------------ randomness */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uniform01(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }
static int below(int n) { return (int)(next_u64() % (uint64_t)n); }
static float normal(void) {
    double u1 = uniform01(), u2 = uniform01();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* --------------------------------------------------------------- tensors */

/* One buffer per tensor on each backend: [lead sentinels | region | guards].
 * `init` holds the bits to upload to both; `now[s]` the contents side s
 * should hold (the upload, then each checked output as downloaded), against
 * which inputs and guards are compared bit for bit. */
typedef struct {
    size_t lead, n, total;
    uint32_t *init;
    uint32_t *now[2];
    rc_buffer *buf[2]; /* [0] on ref, [1] on dev */
} tensor;

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_backend_ops: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static tensor t_new(size_t n) {
    tensor t;
    t.lead = 1 + (size_t)below(MAX_LEAD);
    t.n = n;
    t.total = t.lead + n + GUARD;
    t.init = xmalloc(t.total * sizeof(uint32_t));
    for (size_t i = 0; i < t.total; i++) t.init[i] = SENTINEL_BITS;
    t.now[0] = xmalloc(t.total * sizeof(uint32_t));
    t.now[1] = xmalloc(t.total * sizeof(uint32_t));
    rc_backend *bes[2] = {ref, dev};
    for (int s = 0; s < 2; s++) {
        rc_status st = bes[s]->alloc(bes[s], t.total, &t.buf[s]);
        if (st != RC_OK) {
            fprintf(stderr, "test_backend_ops: %s alloc of %zu elements failed: %s\n",
                    bes[s]->name, t.total, rc_last_error());
            exit(1);
        }
    }
    return t;
}

static void t_free(tensor *t) {
    ref->free(ref, t->buf[0]);
    dev->free(dev, t->buf[1]);
    free(t->init);
    free(t->now[0]);
    free(t->now[1]);
}

static void t_set(tensor *t, size_t i, float v) { memcpy(&t->init[t->lead + i], &v, sizeof v); }
static void t_set_int(tensor *t, size_t i, int32_t v) { memcpy(&t->init[t->lead + i], &v, 4); }

static void t_normal(tensor *t, float scale, float shift) {
    for (size_t i = 0; i < t->n; i++) t_set(t, i, shift + scale * normal());
}
/* An output the op must overwrite: NaN until written. */
static void t_poison(tensor *t) {
    for (size_t i = 0; i < t->n; i++) t->init[t->lead + i] = SENTINEL_BITS;
}

static void t_upload(const tensor *t) {
    rc_backend *bes[2] = {ref, dev};
    for (int s = 0; s < 2; s++) {
        rc_view whole = {t->buf[s], 0};
        rc_status st = bes[s]->upload(bes[s], whole, t->init, t->total);
        CHECK(st == RC_OK, "%s upload: %s", bes[s]->name, rc_last_error());
        memcpy(t->now[s], t->init, t->total * sizeof(uint32_t));
    }
}

/* The side the op runs on: ON_BOTH sets it, V() reads it, so one call
 * expression runs the op on the CPU and on the device with matching views. */
static int side;
#define ON_BOTH(b)                     \
    for (side = 0; side < 2; side++)   \
        for (rc_backend *b = side ? dev : ref, *once_ = b; once_; once_ = NULL)
/* The same for the device alone: reruns for the repeatability checks. */
#define ON_DEV(b)                      \
    for (side = 1; side < 2; side++)   \
        for (rc_backend *b = dev, *once_ = b; once_; once_ = NULL)
static rc_view V(const tensor *t) {
    rc_view v = {t->buf[side], t->lead};
    return v;
}
static const rc_view ABSENT = {NULL, 0};

/* Puts t's initial contents back on the device only, before a rerun. */
static void t_reset_dev(tensor *t) {
    rc_view whole = {t->buf[1], 0};
    rc_status st = dev->upload(dev, whole, t->init, t->total);
    CHECK(st == RC_OK, "%s upload: %s", dev_name, rc_last_error());
}

/* ---------------------------------------------------------------- report */

/* One printed line per case: the op, its shape, and each output's NMSE. */
typedef struct {
    char line[600];
    int failed_before;
} report;

static report report_begin(const char *op, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static report report_begin(const char *op, const char *fmt, ...) {
    report r;
    char shape[200];
    va_list args;
    va_start(args, fmt);
    vsnprintf(shape, sizeof shape, fmt, args);
    va_end(args);
    snprintf(r.line, sizeof r.line, "%-7s %-27s %-40s", dev_name, op, shape);
    r.failed_before = test_checks_failed;
    return r;
}

static void report_append(report *r, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void report_append(report *r, const char *fmt, ...) {
    size_t used = strlen(r->line);
    if (used >= sizeof r->line - 1) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(r->line + used, sizeof r->line - used, fmt, args);
    va_end(args);
}

static void report_end(report *r) {
    printf("%s %s\n", r->line, test_checks_failed > r->failed_before ? "FAIL" : "ok");
    fflush(stdout);
}

/* Waits for both backends and checks that neither reported an error. */
static void sync_both(const char *op) {
    rc_status st = ref->sync(ref);
    CHECK(st == RC_OK, "%s: cpu sync: %s", op, rc_last_error());
    st = dev->sync(dev);
    CHECK(st == RC_OK, "%s: %s sync: %s", op, dev_name, rc_last_error());
}

static uint32_t *download_all(int s, const tensor *t) {
    rc_backend *b = s ? dev : ref;
    uint32_t *got = xmalloc(t->total * sizeof(uint32_t));
    rc_view whole = {t->buf[s], 0};
    rc_status st = b->download(b, got, whole, t->total);
    CHECK(st == RC_OK, "%s download: %s", b->name, rc_last_error());
    if (st != RC_OK) memset(got, 0xff, t->total * sizeof(uint32_t)); /* NaN: fails later checks */
    return got;
}

/* Lead and guard elements must come back exactly as uploaded. */
static void check_guards(const char *what, const tensor *t, const uint32_t *got, int s) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < t->total; i++) {
        if (i >= t->lead && i < t->lead + t->n) continue;
        if (got[i] != t->now[s][i] && bad++ == 0) first = i;
    }
    CHECK(bad == 0, "%s on %s: %zu lead/guard elements overwritten (first at %zu of %zu)", what,
          s ? dev_name : "cpu", bad, first, t->total);
}

/* An input: must be bit-for-bit unchanged on both backends. */
static void check_input(const char *what, const tensor *t) {
    for (int s = 0; s < 2; s++) {
        uint32_t *got = download_all(s, t);
        size_t bad = 0;
        for (size_t i = 0; i < t->total; i++) bad += got[i] != t->now[s][i];
        CHECK(bad == 0, "input %s changed on %s (%zu elements)", what, s ? dev_name : "cpu", bad);
        free(got);
    }
}

/* An output: guards intact, finite on both, NMSE within `tol`. Returns NMSE.
 * Afterwards the downloaded values are what each side is expected to hold. */
static double check_output(report *r, const char *what, tensor *t, double tol) {
    uint32_t *got[2];
    for (int s = 0; s < 2; s++) {
        got[s] = download_all(s, t);
        check_guards(what, t, got[s], s);
    }
    const float *a = (const float *)(const void *)(got[0] + t->lead);
    const float *b = (const float *)(const void *)(got[1] + t->lead);
    size_t nonfinite[2] = {0, 0};
    for (size_t i = 0; i < t->n; i++) {
        nonfinite[0] += !isfinite(a[i]);
        nonfinite[1] += !isfinite(b[i]);
    }
    CHECK(nonfinite[0] == 0, "%s: %zu of %zu cpu outputs are not finite", what, nonfinite[0], t->n);
    CHECK(nonfinite[1] == 0, "%s: %zu of %zu %s outputs are not finite", what, nonfinite[1], t->n,
          dev_name);
    double max_abs = 0.0;
    double nmse = test_nmse(a, b, t->n, &max_abs);
    CHECK(nmse <= tol, "%s: NMSE %.3g exceeds %.3g (max |diff| %.3g)", what, nmse, tol, max_abs);
    report_append(r, " %s=%.2g", what, nmse);
    for (int s = 0; s < 2; s++) {
        memcpy(t->now[s], got[s], t->total * sizeof(uint32_t));
        free(got[s]);
    }
    return nmse;
}

/* Reductions and scatter-adds promise the same bits on every run: after a
 * rerun on the device from the same inputs, t must equal its first result. */
static void check_repeatable(const char *what, const tensor *t) {
    rc_status st = dev->sync(dev);
    CHECK(st == RC_OK, "%s rerun: %s", what, rc_last_error());
    uint32_t *got = download_all(1, t);
    size_t differ = 0;
    for (size_t i = 0; i < t->total; i++) differ += got[i] != t->now[1][i];
    CHECK(differ == 0, "%s: a second run on %s differs in %zu elements", what, dev_name, differ);
    free(got);
}

/* ------------------------------------------------------------------ gemm */

/* Extent of an op(rows x cols) matrix stored with row stride ld. */
static size_t stored(int trans, int rows_op, int cols_op, int ld) {
    int rows = trans ? cols_op : rows_op, cols = trans ? rows_op : cols_op;
    return rows && cols ? (size_t)(rows - 1) * (size_t)ld + (size_t)cols : 0;
}

/* Fills a strided matrix region; gaps between rows keep the sentinel and are
 * checked as part of the "input unchanged" / output comparisons. */
static void fill_matrices(tensor *t, int rows, int cols, int ld, size_t stride, int batch,
                          float scale) {
    for (int p = 0; p < batch; p++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                t_set(t, (size_t)p * stride + (size_t)r * (size_t)ld + (size_t)c, scale * normal());
}

/* Is element i of a strided batch of rows x cols matrices part of a matrix
 * (rather than a gap between rows or between matrices)? */
static int in_matrix(size_t i, int rows, int cols, int ld, size_t stride, int batch) {
    size_t p = stride ? i / stride : 0, in = stride ? i % stride : i;
    size_t r = in / (size_t)ld, c = in % (size_t)ld;
    return (int)p < batch && (int)r < rows && (int)c < cols;
}

/* Gaps inside an output view are not outputs but lie inside the compared
 * region, so they get finite values (the finite check then covers the view),
 * and check_gaps verifies the op left them bit for bit alone. */
static void fill_gaps(tensor *t, int rows, int cols, int ld, size_t stride, int batch) {
    for (size_t i = 0; i < t->n; i++)
        if (!in_matrix(i, rows, cols, ld, stride, batch)) t_set(t, i, 1000.0f + (float)(i % 97));
}

static void check_gaps(const tensor *t, int rows, int cols, int ld, size_t stride, int batch) {
    for (int s = 0; s < 2; s++) {
        size_t bad = 0;
        for (size_t i = 0; i < t->n; i++)
            if (!in_matrix(i, rows, cols, ld, stride, batch))
                bad += t->now[s][t->lead + i] != t->init[t->lead + i];
        CHECK(bad == 0, "C: %zu elements between rows/matrices were written on %s", bad,
              s ? dev_name : "cpu");
    }
}

static void gemm_case(int batch, int ta, int tb, int M, int N, int K, int pad, float alpha,
                      float beta, int nan_in_a) {
    const char *op = batch > 0 ? "gemm_batched" : "gemm";
    int nb = batch > 0 ? batch : 1;
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    size_t ea = stored(ta, M, K, lda), eb = stored(tb, K, N, ldb), ec = stored(0, M, N, ldc);
    /* matrices of a batch sit `pad` elements apart, so strides are not extents */
    size_t sa = ea + (size_t)pad, sb = eb + (size_t)pad, sc = ec + (size_t)pad;
    tensor A = t_new((size_t)(nb - 1) * sa + ea), B = t_new((size_t)(nb - 1) * sb + eb);
    tensor C = t_new((size_t)(nb - 1) * sc + ec);
    fill_matrices(&A, ta ? K : M, ta ? M : K, lda, sa, nb, 1.0f);
    fill_matrices(&B, tb ? N : K, tb ? K : N, ldb, sb, nb, 1.0f);
    if (nan_in_a) t_poison(&A); /* alpha == 0: BLAS must not read A */
    if (beta == 0.0f) t_poison(&C); /* beta == 0: BLAS must not read C */
    else fill_matrices(&C, M, N, ldc, sc, nb, 1.0f);
    fill_gaps(&C, M, N, ldc, sc, nb);
    t_upload(&A);
    t_upload(&B);
    t_upload(&C);
    report r = report_begin(op, "%c%c b=%d M=%d N=%d K=%d ld+%d a=%g b=%g", ta ? 'T' : 'N',
                            tb ? 'T' : 'N', nb, M, N, K, pad, (double)alpha, (double)beta);
    if (batch > 0) {
        ON_BOTH(b) b->gemm_batched(b, ta, tb, M, N, K, alpha, V(&A), lda, sa, V(&B), ldb, sb, beta,
                                   V(&C), ldc, sc, batch);
    } else {
        ON_BOTH(b) b->gemm(b, ta, tb, M, N, K, alpha, V(&A), lda, V(&B), ldb, beta, V(&C), ldc);
    }
    sync_both(op);
    check_output(&r, "C", &C, TOL_GEMM);
    check_gaps(&C, M, N, ldc, sc, nb);
    check_input("A", &A);
    check_input("B", &B);
    report_end(&r);
    t_free(&A);
    t_free(&B);
    t_free(&C);
}

static void test_gemm(void) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {61, 127, 257}, {1031, 67, 129},
                                    {33, 17, 1031}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float beta = (s + (size_t)t) % 2 ? 0.0f : 0.75f;
            gemm_case(0, t >> 1, t & 1, M, N, K, (int)(s % 3) * 2, s == 3 ? 0.125f : 1.0f, beta, 0);
        }
    /* BLAS corner cases: alpha == 0 and K == 0 only scale C */
    gemm_case(0, 0, 1, 9, 11, 5, 1, 0.0f, 0.5f, 1);
    gemm_case(0, 1, 0, 9, 11, 0, 2, 1.0f, 0.0f, 0);
    gemm_case(0, 0, 0, 9, 11, 0, 0, 1.0f, 2.0f, 0);

    /* the attention shapes: scores = Q K^T, out = P V, and their gradients */
    static const int bshapes[][4] = {{1, 1, 1, 1}, {6, 13, 13, 8}, {12, 37, 37, 64},
                                     {3, 129, 65, 33}};
    for (size_t s = 0; s < sizeof bshapes / sizeof bshapes[0]; s++)
        for (int t = 0; t < 4; t++)
            gemm_case(bshapes[s][0], t >> 1, t & 1, bshapes[s][1], bshapes[s][2], bshapes[s][3],
                      (int)s % 2 * 3, 1.0f, t == 2 ? 1.0f : 0.0f, 0);
}

/* ------------------------------------------------------------------ bias */

static void test_bias(void) {
    static const int shapes[][2] = {{1, 1}, {7, 13}, {1009, 67}, {130, 769}, {4099, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        size_t n = (size_t)N * (size_t)C;

        tensor out = t_new(n), bias = t_new((size_t)C);
        t_normal(&out, 1.0f, 0.0f);
        t_normal(&bias, 1.0f, 0.0f);
        t_upload(&out);
        t_upload(&bias);
        report r = report_begin("bias_forward", "N=%d C=%d", N, C);
        ON_BOTH(b) b->bias_forward(b, V(&out), V(&bias), N, C);
        sync_both("bias_forward");
        check_output(&r, "out", &out, TOL_EXACT);
        check_input("bias", &bias);
        report_end(&r);
        t_free(&out);
        t_free(&bias);

        /* dbias accumulates into what is already there */
        tensor dbias = t_new((size_t)C), dout = t_new(n);
        t_normal(&dbias, 1.0f, 0.0f);
        t_normal(&dout, 1.0f, 0.5f);
        t_upload(&dbias);
        t_upload(&dout);
        r = report_begin("bias_backward", "N=%d C=%d", N, C);
        ON_BOTH(b) b->bias_backward(b, V(&dbias), V(&dout), N, C);
        sync_both("bias_backward");
        check_output(&r, "dbias", &dbias, TOL_REDUCTION);
        check_input("dout", &dout);
        t_reset_dev(&dbias);
        ON_DEV(b) b->bias_backward(b, V(&dbias), V(&dout), N, C);
        check_repeatable("bias_backward", &dbias);
        report_end(&r);
        t_free(&dbias);
        t_free(&dout);
    }
}

/* ------------------------------------------------------- rows/embeddings */

static void test_rows(void) {
    /* N lookups of C columns from a table of V rows; V < N forces repeats */
    static const int shapes[][3] = {{1, 1, 1}, {17, 13, 5}, {1031, 67, 97}, {300, 769, 50}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1], Vr = shapes[s][2];
        size_t n = (size_t)N * (size_t)C;
        tensor ids = t_new((size_t)N), table = t_new((size_t)Vr * (size_t)C);
        for (int i = 0; i < N; i++) t_set_int(&ids, (size_t)i, below(Vr));
        t_set_int(&ids, (size_t)N - 1, Vr - 1); /* the last row of the table */
        t_normal(&table, 1.0f, 0.0f);
        t_upload(&ids);
        t_upload(&table);

        for (int accumulate = 0; accumulate < 2; accumulate++) {
            tensor out = t_new(n);
            if (accumulate) t_normal(&out, 1.0f, 0.0f);
            t_upload(&out);
            report r = report_begin("embedding_forward", "N=%d C=%d V=%d acc=%d", N, C, Vr,
                                    accumulate);
            ON_BOTH(b) b->embedding_forward(b, V(&out), V(&ids), V(&table), N, C, accumulate);
            sync_both("embedding_forward");
            check_output(&r, "out", &out, TOL_EXACT);
            check_input("table", &table);
            check_input("ids", &ids);
            report_end(&r);
            t_free(&out);
        }

        tensor dtable = t_new((size_t)Vr * (size_t)C), dout = t_new(n);
        t_normal(&dtable, 1.0f, 0.0f);
        t_normal(&dout, 1.0f, 0.0f);
        t_upload(&dtable);
        t_upload(&dout);
        report r = report_begin("embedding_backward", "N=%d C=%d V=%d (repeats)", N, C, Vr);
        ON_BOTH(b) b->embedding_backward(b, V(&dtable), V(&dout), V(&ids), N, C);
        sync_both("embedding_backward");
        /* index order is not part of the contract: a reduction's bound */
        check_output(&r, "dtable", &dtable, TOL_REDUCTION);
        check_input("dout", &dout);
        t_reset_dev(&dtable);
        ON_DEV(b) b->embedding_backward(b, V(&dtable), V(&dout), V(&ids), N, C);
        check_repeatable("embedding_backward", &dtable);
        report_end(&r);

        tensor picked = t_new(n);
        t_upload(&picked);
        r = report_begin("gather_rows", "rows=%d C=%d from %d", N, C, Vr);
        ON_BOTH(b) b->gather_rows(b, V(&picked), V(&table), V(&ids), N, C);
        sync_both("gather_rows");
        check_output(&r, "out", &picked, TOL_EXACT);
        report_end(&r);

        r = report_begin("scatter_rows_add", "rows=%d C=%d into %d", N, C, Vr);
        ON_BOTH(b) b->scatter_rows_add(b, V(&dtable), V(&dout), V(&ids), N, C);
        sync_both("scatter_rows_add");
        check_output(&r, "dinp", &dtable, TOL_REDUCTION);
        check_input("rows", &ids);
        report_end(&r);

        t_free(&picked);
        t_free(&dtable);
        t_free(&dout);
        t_free(&ids);
        t_free(&table);
    }
}

/* ------------------------------------------------------------- layernorm */

static void test_layernorm(void) {
    static const int shapes[][2] = {{1, 1}, {3, 7}, {17, 768}, {1031, 65}, {5, 2049}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        size_t n = (size_t)N * (size_t)C;
        /* affine = 0: no weight/bias and no saved stats (inference);
         * a large mean tests the two-pass variance */
        for (int affine = 0; affine < 2; affine++) {
            tensor inp = t_new(n), out = t_new(n), mean = t_new((size_t)N), rstd = t_new((size_t)N);
            tensor w = t_new((size_t)C), bias = t_new((size_t)C);
            t_normal(&inp, 2.0f, affine ? 0.5f : 300.0f);
            t_normal(&w, 0.5f, 1.0f);
            t_normal(&bias, 0.5f, 0.0f);
            tensor *all[] = {&inp, &out, &mean, &rstd, &w, &bias};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_upload(all[i]);
            report r = report_begin("layernorm_forward", "N=%d C=%d affine=%d", N, C, affine);
            ON_BOTH(b) b->layernorm_forward(b, V(&out), affine ? V(&mean) : ABSENT,
                                            affine ? V(&rstd) : ABSENT, V(&inp),
                                            affine ? V(&w) : ABSENT, affine ? V(&bias) : ABSENT, N,
                                            C, 1e-5f);
            sync_both("layernorm_forward");
            check_output(&r, "out", &out, TOL_REDUCTION);
            if (affine) {
                check_output(&r, "mean", &mean, TOL_REDUCTION);
                check_output(&r, "rstd", &rstd, TOL_REDUCTION);
            } else {
                check_input("mean (absent)", &mean);
            }
            check_input("inp", &inp);
            report_end(&r);

            /* backward from the same saved statistics on both backends: the
             * CPU's, downloaded and uploaded as inputs */
            if (affine) {
                tensor *stats[] = {&mean, &rstd};
                for (int i = 0; i < 2; i++) {
                    memcpy(stats[i]->init, stats[i]->now[0], stats[i]->total * sizeof(uint32_t));
                    t_upload(stats[i]);
                }
            }
            for (int grads = 0; grads < 2; grads++) {
                if (!affine && grads) break;
                tensor dinp = t_new(n), dout = t_new(n), dw = t_new((size_t)C),
                       db = t_new((size_t)C);
                t_normal(&dinp, 1.0f, 0.0f);
                t_normal(&dout, 1.0f, 0.0f);
                t_normal(&dw, 1.0f, 0.0f);
                t_normal(&db, 1.0f, 0.0f);
                if (!affine) { /* stats for the no-affine backward */
                    for (int i = 0; i < N; i++) {
                        t_set(&mean, (size_t)i, 300.0f + 0.01f * normal());
                        t_set(&rstd, (size_t)i, 0.5f);
                    }
                    t_upload(&mean);
                    t_upload(&rstd);
                }
                t_upload(&dinp);
                t_upload(&dout);
                t_upload(&dw);
                t_upload(&db);
                /* grads == 1: only the parameter gradients (dinp absent) */
                r = report_begin("layernorm_backward", "N=%d C=%d affine=%d dinp=%d", N, C,
                                 affine, !grads);
                ON_BOTH(b) b->layernorm_backward(
                    b, grads ? ABSENT : V(&dinp), affine ? V(&dw) : ABSENT,
                    affine ? V(&db) : ABSENT, V(&dout), V(&inp), affine ? V(&w) : ABSENT,
                    V(&mean), V(&rstd), N, C);
                sync_both("layernorm_backward");
                if (!grads) check_output(&r, "dinp", &dinp, TOL_REDUCTION);
                else check_input("dinp (absent)", &dinp);
                if (affine) {
                    check_output(&r, "dweight", &dw, TOL_REDUCTION);
                    check_output(&r, "dbias", &db, TOL_REDUCTION);
                    t_reset_dev(&dw);
                    t_reset_dev(&db);
                    ON_DEV(b) b->layernorm_backward(b, ABSENT, V(&dw), V(&db), V(&dout), V(&inp),
                                                    V(&w), V(&mean), V(&rstd), N, C);
                    check_repeatable("layernorm_backward dweight", &dw);
                    check_repeatable("layernorm_backward dbias", &db);
                } else {
                    check_input("dweight (absent)", &dw);
                }
                check_input("dout", &dout);
                check_input("mean", &mean);
                report_end(&r);
                t_free(&dinp);
                t_free(&dout);
                t_free(&dw);
                t_free(&db);
            }
            t_free(&inp);
            t_free(&out);
            t_free(&mean);
            t_free(&rstd);
            t_free(&w);
            t_free(&bias);
        }
    }
}

/* ----------------------------------------------------------- element-wise */

static const char *activation_name(rc_activation kind) {
    return kind == RC_ACT_RELU ? "relu" : kind == RC_ACT_GELU ? "gelu" : "gelu_tanh";
}

static void test_elementwise(void) {
    static const size_t sizes[] = {1, 13, 1009, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        for (int k = 0; k < 3; k++) {
            rc_activation kind = (rc_activation)k;
            double tol = kind == RC_ACT_RELU ? TOL_EXACT : TOL_TRANSCENDENTAL;
            tensor inp = t_new(n), out = t_new(n), dinp = t_new(n), dout = t_new(n);
            t_normal(&inp, 3.0f, 0.0f);
            if (n > 2) t_set(&inp, n / 2, 0.0f); /* relu'(0) = 0, as in torch */
            /* A lone input deep in GELU's negative tail has a reference of
             * exactly 0, and NMSE would call one ulp of tanh an infinite
             * error; larger n carry such tails among ordinary values. */
            if (n == 1) t_set(&inp, 0, 1.3f);
            t_normal(&dinp, 1.0f, 0.0f);
            t_normal(&dout, 1.0f, 0.0f);
            t_upload(&inp);
            t_upload(&out);
            t_upload(&dinp);
            t_upload(&dout);
            report r = report_begin("activation_forward", "%s n=%zu", activation_name(kind), n);
            ON_BOTH(b) b->activation_forward(b, kind, V(&out), V(&inp), n);
            sync_both("activation_forward");
            check_output(&r, "out", &out, tol);
            check_input("inp", &inp);
            report_end(&r);

            r = report_begin("activation_backward", "%s n=%zu", activation_name(kind), n);
            ON_BOTH(b) b->activation_backward(b, kind, V(&dinp), V(&dout), V(&inp), n);
            sync_both("activation_backward");
            check_output(&r, "dinp", &dinp, tol);
            check_input("dout", &dout);
            report_end(&r);

            /* in place: out aliases inp */
            r = report_begin("activation_forward", "%s n=%zu in-place", activation_name(kind), n);
            ON_BOTH(b) b->activation_forward(b, kind, V(&inp), V(&inp), n);
            sync_both("activation_forward");
            check_output(&r, "out", &inp, tol);
            report_end(&r);
            t_free(&inp);
            t_free(&out);
            t_free(&dinp);
            t_free(&dout);
        }

        tensor a = t_new(n), b2 = t_new(n), out = t_new(n);
        t_normal(&a, 1.0f, 0.0f);
        t_normal(&b2, 2.0f, 1.0f);
        t_upload(&a);
        t_upload(&b2);
        t_upload(&out);
        report r = report_begin("add", "n=%zu", n);
        ON_BOTH(b) b->add(b, V(&out), V(&a), V(&b2), n);
        sync_both("add");
        check_output(&r, "out", &out, TOL_EXACT);
        check_input("a", &a);
        check_input("b", &b2);
        report_end(&r);

        r = report_begin("add", "n=%zu out=b (residual)", n);
        ON_BOTH(b) b->add(b, V(&b2), V(&a), V(&b2), n);
        sync_both("add");
        check_output(&r, "out", &b2, TOL_EXACT);
        report_end(&r);

        r = report_begin("axpy", "n=%zu alpha=-0.37", n);
        ON_BOTH(b) b->axpy(b, V(&a), -0.37f, V(&out), n);
        sync_both("axpy");
        check_output(&r, "y", &a, TOL_ELEMENTWISE);
        check_input("x", &out);
        report_end(&r);

        r = report_begin("scale", "n=%zu alpha=0.3", n);
        ON_BOTH(b) b->scale(b, V(&out), 0.3f, n);
        sync_both("scale");
        check_output(&r, "x", &out, TOL_EXACT);
        report_end(&r);

        r = report_begin("fill", "n=%zu value=-2.5", n);
        ON_BOTH(b) b->fill(b, V(&out), -2.5f, n);
        sync_both("fill");
        check_output(&r, "x", &out, TOL_EXACT);
        report_end(&r);

        r = report_begin("fill_zero_sparse", "n=%zu, over -2.5", n);
        ON_BOTH(b) b->fill_zero_sparse(b, V(&out), n);
        sync_both("fill_zero_sparse");
        check_output(&r, "x", &out, TOL_EXACT);
        report_end(&r);
        t_free(&a);
        t_free(&b2);
        t_free(&out);
    }
}

/* ---------------------------------------------------------------- softmax */

/* mask kinds: 0 all visible, 1 left padding (some queries see nothing),
 * 2 random holes, 3 packed pairs (a shared prefix marked 1, branches 2 and 3,
 * right padding) */
/* Tq queries, the last Tq of the T positions */
static void softmax_case(int B, int H, int Tq, int T, int mask_kind, int in_place) {
    size_t n = (size_t)B * (size_t)H * (size_t)Tq * (size_t)T;
    tensor scores = t_new(n), probs = t_new(n), mask = t_new((size_t)B * (size_t)T);
    t_normal(&scores, 3.0f, 0.0f);
    for (int b = 0; b < B; b++) {
        int pad = mask_kind == 1 ? (b * 3 + 1) % (T + 1) : 0; /* b's first `pad` keys hidden */
        int prefix = below(T + 1), split = prefix + below(T - prefix + 1);
        int end = split + below(T - split + 1);
        for (int j = 0; j < T; j++) {
            int value = mask_kind == 2 ? below(4) != 0 : j >= pad;
            if (mask_kind == 3) value = j < prefix ? 1 : j < split ? 2 : j < end ? 3 : 0;
            t_set_int(&mask, (size_t)b * (size_t)T + (size_t)j, value);
        }
    }
    t_upload(&scores);
    t_upload(&probs);
    t_upload(&mask);
    static const char *const kinds[] = {"causal", "left-padded", "holes", "packed pairs"};
    report r = report_begin("attention_softmax_forward", "B=%d H=%d Tq=%d T=%d %s%s", B, H, Tq, T,
                            kinds[mask_kind], in_place ? " in-place" : "");
    tensor *p = in_place ? &scores : &probs;
    ON_BOTH(b) b->attention_softmax_forward(b, V(p), V(&scores), V(&mask), B, H, Tq, T);
    sync_both("attention_softmax_forward");
    check_output(&r, "probs", p, TOL_TRANSCENDENTAL);
    check_input("key_mask", &mask);
    report_end(&r);

    /* backward from the CPU's probabilities on both */
    tensor P = t_new(n), dprobs = t_new(n), dscores = t_new(n);
    memcpy(P.init + P.lead, p->now[0] + p->lead, n * sizeof(uint32_t));
    t_normal(&dprobs, 1.0f, 0.0f);
    t_upload(&P);
    t_upload(&dprobs);
    t_upload(&dscores);
    r = report_begin("attention_softmax_backward", "B=%d H=%d Tq=%d T=%d %s%s", B, H, Tq, T,
                     kinds[mask_kind], in_place ? " in-place" : "");
    tensor *ds = in_place ? &dprobs : &dscores;
    ON_BOTH(b) b->attention_softmax_backward(b, V(ds), V(&dprobs), V(&P), B, H, Tq, T);
    sync_both("attention_softmax_backward");
    check_output(&r, "dscores", ds, TOL_REDUCTION);
    check_input("probs", &P);
    report_end(&r);
    t_free(&P);
    t_free(&dprobs);
    t_free(&dscores);
    t_free(&scores);
    t_free(&probs);
    t_free(&mask);
}

static void test_softmax(void) {
    softmax_case(1, 1, 1, 1, 0, 0);
    softmax_case(2, 3, 7, 7, 0, 0);
    softmax_case(4, 2, 33, 33, 1, 0);
    softmax_case(3, 2, 33, 33, 2, 1);
    softmax_case(5, 2, 37, 37, 3, 0);
    softmax_case(4, 3, 130, 130, 3, 1);
    softmax_case(1, 2, 300, 300, 1, 0);
    softmax_case(2, 1, 1031, 1031, 0, 1);
    /* the last query only (where a score is read), and the last few */
    softmax_case(6, 3, 1, 37, 1, 0);
    softmax_case(5, 2, 1, 130, 3, 1);
    softmax_case(4, 2, 5, 61, 2, 0);
}

/* -------------------------------------------------------------- optimizer */

static void test_optimizer(void) {
    static const size_t sizes[] = {1, 1009, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        tensor x = t_new(n);
        t_normal(&x, 0.01f, 0.0f);
        t_upload(&x);
        report r = report_begin("sum_squares", "n=%zu", n);
        double got[2];
        ON_BOTH(b) got[side] = b->sum_squares(b, V(&x), n);
        sync_both("sum_squares");
        CHECK(isfinite(got[0]) && isfinite(got[1]), "sum_squares: not finite (%g, %g)", got[0],
              got[1]);
        double rel2 = got[0] != 0.0 ? (got[0] - got[1]) * (got[0] - got[1]) / (got[0] * got[0])
                                    : (got[1] == 0.0 ? 0.0 : INFINITY);
        CHECK(rel2 <= TOL_REDUCTION, "sum_squares: cpu %.17g vs %s %.17g (NMSE %.3g)", got[0],
              dev_name, got[1], rel2);
        report_append(&r, " sum=%.2g", rel2);
        double again = NAN;
        ON_DEV(b) again = b->sum_squares(b, V(&x), n);
        CHECK(memcmp(&again, &got[1], sizeof again) == 0,
              "sum_squares: a second run on %s gives %.17g, the first %.17g", dev_name, again,
              got[1]);
        check_input("x", &x);
        report_end(&r);
        t_free(&x);

        for (int decay = 0; decay < 2; decay++) {
            tensor p = t_new(n), g = t_new(n), m = t_new(n), v = t_new(n);
            t_normal(&p, 0.5f, 0.0f);
            t_normal(&g, 0.1f, 0.0f);
            t_normal(&m, 0.01f, 0.0f);
            for (size_t i = 0; i < n; i++) t_set(&v, i, 1e-4f * (float)uniform01());
            t_upload(&p);
            t_upload(&g);
            t_upload(&m);
            t_upload(&v);
            int step = 3;
            float beta1 = 0.9f, beta2 = 0.999f;
            float bc1 = (float)(1.0 - pow(beta1, step)), bc2 = (float)(1.0 - pow(beta2, step));
            /* with weight decay, a clipped gradient too */
            float clip = decay ? 0.7f : 1.0f;
            r = report_begin("adamw", "n=%zu step=%d wd=%g clip=%g", n, step, decay ? 0.01 : 0.0,
                             clip);
            ON_BOTH(b) b->adamw(b, V(&p), V(&g), clip, V(&m), V(&v), n, 1e-3f, beta1, beta2,
                                1e-8f, decay ? 0.01f : 0.0f, bc1, bc2);
            sync_both("adamw");
            check_output(&r, "param", &p, TOL_ELEMENTWISE);
            check_output(&r, "m", &m, TOL_ELEMENTWISE);
            check_output(&r, "v", &v, TOL_ELEMENTWISE);
            check_input("grad", &g);
            report_end(&r);
            t_free(&p);
            t_free(&g);
            t_free(&m);
            t_free(&v);
        }
    }
}

/* ------------------------------------------------------------------- main */

/* Counted independently of the backend, so that a backend failing to start
 * on a machine that has a device is a failure, not a skip. -1: unknown. */
static int devices_present(const char *name) {
#ifdef RC_HAVE_OPENCL
    if (!strcmp(name, "opencl")) {
        cl_platform_id platforms[16];
        cl_uint n_platforms = 0;
        if (clGetPlatformIDs(16, platforms, &n_platforms) != CL_SUCCESS) return 0;
        int count = 0;
        for (cl_uint p = 0; p < n_platforms && p < 16; p++) {
            cl_uint n = 0;
            if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n) == CL_SUCCESS)
                count += (int)n;
        }
        return count;
    }
#endif
    (void)name;
    return -1;
}

static int wanted(const char *name) {
    const char *list = getenv("REWARDC_BACKENDS");
    if (!list || !*list) return 1;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == '\0' || p[len] == ',')) return 1;
    return 0;
}

int main(void) {
    const char *candidates[] = {
#ifdef RC_HAVE_OPENCL
        "opencl",
#endif
#ifdef RC_HAVE_CUDA
        "cuda",
#endif
        NULL};
    rc_status st = rc_backend_create("cpu", 0, &ref);
    CHECK(st == RC_OK, "cpu backend: %s", rc_last_error());
    if (st != RC_OK) return test_finish("test_backend_ops");

    int tested = 0;
    for (int c = 0; candidates[c]; c++) {
        if (!wanted(candidates[c])) {
            printf("%s: not in REWARDC_BACKENDS, skipped\n", candidates[c]);
            continue;
        }
        st = rc_backend_create(candidates[c], 0, &dev);
        if (st != RC_OK) {
            int present = devices_present(candidates[c]);
            CHECK(present <= 0, "%s: %d device(s) present but the backend failed to start: %s",
                  candidates[c], present, rc_last_error());
            printf("%s: no usable device, skipped: %s\n", candidates[c], rc_last_error());
            continue;
        }
        dev_name = candidates[c];
        printf("%s: %s against cpu: %s\n", dev_name, dev->device, ref->device);
        rng_state = 0x243f6a8885a308d3ull; /* the same inputs for every backend */
        test_elementwise();
        test_bias();
        test_rows();
        test_layernorm();
        test_softmax();
        test_optimizer();
        test_gemm();
        rc_backend_destroy(dev);
        dev = NULL;
        tested++;
    }
    rc_backend_destroy(ref);
    if (!tested && test_checks_failed == 0) {
        printf("test_backend_ops: no device backend to test (%s); skipped\n",
               candidates[0] ? "none has a usable device"
                             : "built without -DRC_OPENCL=ON or -DRC_CUDA=ON");
        return TEST_SKIP;
    }
    return test_finish("test_backend_ops");
}
