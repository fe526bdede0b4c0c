/* The CPU backend's ops against straightforward double-precision references
 * written here, on awkward shapes (1, odd, prime, past the 64-column tiles
 * and the OpenMP threshold). Every buffer is surrounded by guard elements
 * holding a NaN sentinel: outputs' guards (and the gaps between strided
 * rows) must come back bit-for-bit untouched, and an op that reads past its
 * inputs picks up NaN, which the finiteness checks catch.
 *
 * Tolerances are error bounds, not fudge factors: each reference also
 * computes the magnitude `mag` of the terms an element is made of (e.g.
 * sum |a||b| for a dot product), and an element may differ from the exact
 * value by a small multiple of u * mag, with u = 2^-24 the float32 unit
 * roundoff and the multiple the number of float roundings on the element's
 * path (K + a few for a length-K dot product). A single rounding is allowed
 * 2u: round-to-nearest guarantees u|x|, and the factor 2 keeps a correct
 * result that lands exactly on the bound from failing on the last bit.
 * Anything bigger is a bug. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <unistd.h>
#endif

#include "backend.h"
#include "testlib.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* The huge-allocation check must see NULL from the allocator, not an ASan
 * abort; this hook is read by ASan at startup and ignored otherwise. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static const double U = 1.0 / 16777216.0; /* 2^-24 */
static rc_backend *be;

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(double lo, double hi) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) / 9007199254740992.0;
}
static int uniform_int(int n) { return (int)uniform(0, n) % n; }

static float sentinel(void) {
    const uint32_t bits = 0x7fc0deadu; /* a quiet NaN with a recognisable payload */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A device buffer and its host mirror; `size` counts guard elements too. */
typedef struct {
    rc_buffer *buf;
    float *host;
    size_t size;
} tensor;

static tensor t_new(size_t size) {
    tensor t = {NULL, malloc(size * sizeof(float)), size};
    if (!t.host) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    const float s = sentinel();
    for (size_t i = 0; i < size; i++) t.host[i] = s;
    rc_status st = be->alloc(be, size, &t.buf);
    CHECK(st == RC_OK, "alloc %zu: %s", size, rc_last_error());
    if (st != RC_OK) exit(1);
    return t;
}
static void t_free(tensor *t) {
    be->free(be, t->buf);
    free(t->host);
}
static rc_view t_at(const tensor *t, size_t offset) {
    rc_view v = {t->buf, offset};
    return v;
}
static void t_push(const tensor *t) {
    rc_status st = be->upload(be, t_at(t, 0), t->host, t->size);
    CHECK(st == RC_OK, "upload: %s", rc_last_error());
}
static float *t_pull(const tensor *t) {
    float *got = malloc(t->size * sizeof(float));
    rc_status st = be->download(be, got, t_at(t, 0), t->size);
    CHECK(st == RC_OK, "download: %s", rc_last_error());
    return got;
}
static void t_fill_random(tensor *t, size_t offset, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) t->host[offset + i] = (float)uniform(lo, hi);
}
static void t_set_int(tensor *t, size_t i, int32_t v) { memcpy(&t->host[i], &v, sizeof v); }

/* Expected contents of a tensor after an op: tol < 0 marks elements the op
 * must not touch (compared bitwise with the host mirror). */
typedef struct {
    double *ref, *tol;
} expect;
static expect expect_new(size_t size) {
    expect e = {calloc(size, sizeof(double)), malloc(size * sizeof(double))};
    for (size_t i = 0; i < size; i++) e.tol[i] = -1.0;
    return e;
}
static void expect_free(expect *e) {
    free(e->ref);
    free(e->tol);
}

/* Downloads t and compares every element with e; one CHECK per tensor. */
static void check_tensor(const char *what, const tensor *t, const expect *e) {
    float *got = t_pull(t);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < t->size; i++) {
        int ok;
        if (e->tol[i] < 0) ok = !memcmp(&got[i], &t->host[i], sizeof(float));
        else ok = isfinite(got[i]) && fabs((double)got[i] - e->ref[i]) <= e->tol[i];
        if (!ok && bad++ == 0) first = i;
    }
    CHECK(bad == 0, "%s: %zu of %zu elements wrong; first [%zu] got %.9g want %.9g tol %.3g%s",
          what, bad, t->size, first, bad ? (double)got[first] : 0.0, bad ? e->ref[first] : 0.0,
          bad ? e->tol[first] : 0.0,
          bad && e->tol[first] < 0 ? " (guard or gap: must be untouched)" : "");
    free(got);
}

static void check_no_pending_error(const char *what) {
    rc_status st = be->sync(be);
    CHECK(st == RC_OK, "%s: sync reported %s", what, rc_last_error());
}

/* ------------------------------------------------------------------ gemm */

static size_t stored_extent(int trans, int rows_op, int cols_op, int ld) {
    int rows = trans ? cols_op : rows_op, cols = trans ? rows_op : cols_op;
    return rows && cols ? (size_t)(rows - 1) * (size_t)ld + (size_t)cols : 0;
}
static int stored_cols(int trans, int rows_op, int cols_op) { return trans ? rows_op : cols_op; }
static double op_elem(const float *X, int trans, int ld, int r, int c) {
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* C-product `p` of a batch: expected values and bounds into e. */
static void ref_gemm(int ta, int tb, int M, int N, int K, double alpha, const float *A, int lda,
                     const float *B, int ldb, double beta, const float *C0, int ldc, double *ref,
                     double *tol) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double prod = op_elem(A, ta, lda, i, k) * op_elem(B, tb, ldb, k, j);
                sum += prod;
                mag += fabs(prod);
            }
            size_t at = (size_t)i * ldc + j;
            double c0 = beta != 0.0 ? C0[at] : 0.0;
            ref[at] = alpha * sum + beta * c0;
            tol[at] = (K + 4) * U * (fabs(alpha) * mag + fabs(beta * c0));
        }
}

/* layout 0: matrices one after another with gaps; layout 1: interleaved
 * (matrix p starts p*cols into each row of a wide matrix, as attention heads
 * do); batch 0 means plain gemm. */
static void test_gemm_case(int ta, int tb, int M, int N, int K, float alpha, float beta,
                           int batch, int layout) {
    const int nb = batch ? batch : 1;
    const int a_cols = stored_cols(ta, M, K), b_cols = stored_cols(tb, K, N);
    int lda, ldb, ldc;
    size_t sa, sb, sc;
    if (layout == 0) {
        lda = a_cols + 3, ldb = b_cols + 1, ldc = N + 2;
        sa = stored_extent(ta, M, K, lda) + 4;
        sb = stored_extent(tb, K, N, ldb) + 1;
        sc = stored_extent(0, M, N, ldc) + 3;
    } else {
        lda = nb * a_cols + 1, ldb = nb * b_cols + 2, ldc = nb * N + 1;
        sa = (size_t)a_cols, sb = (size_t)b_cols, sc = (size_t)N;
    }
    const size_t oa = 5, ob = 2, oc = 3, tail = 7;
    tensor A = t_new(oa + (nb - 1) * sa + stored_extent(ta, M, K, lda) + tail);
    tensor B = t_new(ob + (nb - 1) * sb + stored_extent(tb, K, N, ldb) + tail);
    tensor C = t_new(oc + (nb - 1) * sc + stored_extent(0, M, N, ldc) + tail);
    expect e = expect_new(C.size);
    for (int p = 0; p < nb; p++) {
        int ar = ta ? K : M, br = tb ? N : K;
        for (int r = 0; r < ar; r++) t_fill_random(&A, oa + p * sa + (size_t)r * lda, a_cols, -1, 1);
        for (int r = 0; r < br; r++) t_fill_random(&B, ob + p * sb + (size_t)r * ldb, b_cols, -1, 1);
        /* With beta == 0 the C elements keep their NaN: BLAS must not read them. */
        if (beta != 0.0f)
            for (int r = 0; r < M; r++) t_fill_random(&C, oc + p * sc + (size_t)r * ldc, N, -1, 1);
    }
    for (int p = 0; p < nb; p++)
        ref_gemm(ta, tb, M, N, K, alpha, A.host + oa + p * sa, lda, B.host + ob + p * sb, ldb,
                 beta, C.host + oc + p * sc, ldc, e.ref + oc + p * sc, e.tol + oc + p * sc);
    t_push(&A);
    t_push(&B);
    t_push(&C);
    if (batch)
        be->gemm_batched(be, ta, tb, M, N, K, alpha, t_at(&A, oa), lda, sa, t_at(&B, ob), ldb, sb,
                         beta, t_at(&C, oc), ldc, sc, batch);
    else
        be->gemm(be, ta, tb, M, N, K, alpha, t_at(&A, oa), lda, t_at(&B, ob), ldb, beta,
                 t_at(&C, oc), ldc);
    char what[160];
    snprintf(what, sizeof what, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g batch=%d layout=%d",
             batch ? "gemm_batched" : "gemm", ta, tb, M, N, K, (double)alpha, (double)beta, batch,
             layout);
    check_tensor(what, &C, &e);
    check_no_pending_error(what);
    expect_free(&e);
    t_free(&A);
    t_free(&B);
    t_free(&C);
}

static void test_gemm(void) {
    /* The last three take the packed kernel's blocks past one: op(B) in two
     * blocks of columns and three of k, many slivers of rows split between
     * threads (neither a whole number of tiles), and whole tiles over three
     * blocks of k. */
    static const int shapes[][3] = {
        {1, 1, 1},    {1, 7, 5},   {7, 1, 13},     {13, 11, 1},   {37, 70, 29}, {5, 130, 3},
        {33, 65, 131}, {2, 3, 257}, {3, 5, 0}, {61, 300, 530}, {301, 40, 70}, {45, 64, 600}};
    static const float betas[] = {0.0f, 1.0f, -0.5f};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 3; bi++)
                    test_gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.75f,
                                   betas[bi], 0, 0);
    static const int bshapes[][3] = {{7, 11, 5}, {1, 70, 13}, {4, 4, 1}, {17, 33, 29}, {19, 32, 17}};
    for (size_t s = 0; s < sizeof bshapes / sizeof bshapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int layout = 0; layout < 2; layout++) {
                    test_gemm_case(ta, tb, bshapes[s][0], bshapes[s][1], bshapes[s][2], 1.0f, 0.0f,
                                   3, layout);
                    test_gemm_case(ta, tb, bshapes[s][0], bshapes[s][1], bshapes[s][2], -1.25f,
                                   1.0f, 3, layout);
                }
    /* alpha == 0 must not read A or B (they hold NaN here), only scale C. */
    tensor A = t_new(20), B = t_new(20), C = t_new(12);
    t_fill_random(&C, 1, 6, -1, 1);
    expect e = expect_new(C.size);
    for (int i = 1; i < 7; i++) e.ref[i] = 2.0 * C.host[i], e.tol[i] = 0;
    t_push(&A);
    t_push(&B);
    t_push(&C);
    be->gemm(be, 0, 0, 2, 3, 4, 0.0f, t_at(&A, 0), 4, t_at(&B, 0), 3, 2.0f, t_at(&C, 1), 3);
    check_tensor("gemm alpha=0", &C, &e);
    expect_free(&e);
    t_free(&A);
    t_free(&B);
    t_free(&C);
}

/* ------------------------------------------------------------------ bias */

static void test_bias(void) {
    static const int shapes[][2] = {{1, 1}, {7, 13}, {301, 67}};
    for (size_t s = 0; s < 3; s++) {
        const int N = shapes[s][0], C = shapes[s][1];
        const size_t nc = (size_t)N * C, off = 3, tail = 5;
        tensor out = t_new(off + nc + tail), bias = t_new(off + C + tail);
        t_fill_random(&out, off, nc, -2, 2);
        t_fill_random(&bias, off, C, -2, 2);
        expect e = expect_new(out.size);
        for (size_t i = 0; i < nc; i++) {
            double a = out.host[off + i], b = bias.host[off + i % C];
            e.ref[off + i] = a + b;
            e.tol[off + i] = 2 * U * (fabs(a) + fabs(b)); /* one rounding: <= u|sum| */
        }
        t_push(&out);
        t_push(&bias);
        be->bias_forward(be, t_at(&out, off), t_at(&bias, off), N, C);
        check_tensor("bias_forward", &out, &e);
        expect_free(&e);

        /* backward: dbias (pre-filled, accumulated into) += column sums */
        expect eb = expect_new(bias.size);
        for (int c = 0; c < C; c++) {
            double sum = bias.host[off + c], mag = fabs(sum);
            for (int n = 0; n < N; n++) {
                sum += out.host[off + (size_t)n * C + c];
                mag += fabs(out.host[off + (size_t)n * C + c]);
            }
            eb.ref[off + c] = sum;
            eb.tol[off + c] = (N + 2) * U * mag;
        }
        t_push(&out);
        be->bias_backward(be, t_at(&bias, off), t_at(&out, off), N, C);
        check_tensor("bias_backward", &bias, &eb);
        check_no_pending_error("bias");
        expect_free(&eb);
        t_free(&out);
        t_free(&bias);
    }
}

/* ------------------------------------------- embedding and row gathers */

/* Ids repeat on purpose (row 0 and the last row many times). */
static void test_lookup(int N, int V, int C, int kind) {
    const size_t off = 2, tail = 6, nc = (size_t)N * C;
    tensor ids = t_new(off + N + tail), table = t_new(off + (size_t)V * C + tail),
           dense = t_new(off + nc + tail);
    for (int n = 0; n < N; n++)
        t_set_int(&ids, off + n, n % 3 == 0 ? 0 : n % 5 == 0 ? V - 1 : uniform_int(V));
    t_fill_random(&table, off, (size_t)V * C, -1, 1);
    t_fill_random(&dense, off, nc, -1, 1);
    int32_t *idv = malloc(N * sizeof *idv);
    memcpy(idv, ids.host + off, N * sizeof *idv);
    t_push(&ids);
    t_push(&table);
    t_push(&dense);
    /* forward: kind 0 embedding (overwrite), 1 embedding accumulate, 2 gather_rows */
    expect e = expect_new(dense.size);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            size_t at = off + (size_t)n * C + c;
            double t = table.host[off + (size_t)idv[n] * C + c];
            double prev = kind == 1 ? dense.host[at] : 0.0;
            e.ref[at] = prev + t;
            e.tol[at] = 2 * U * fabs(prev + t); /* a copy is exact, an add rounds once */
        }
    if (kind == 2) be->gather_rows(be, t_at(&dense, off), t_at(&table, off), t_at(&ids, off), N, C);
    else be->embedding_forward(be, t_at(&dense, off), t_at(&ids, off), t_at(&table, off), N, C, kind);
    check_tensor(kind == 2 ? "gather_rows" : kind ? "embedding_forward accumulate"
                                                  : "embedding_forward",
                 &dense, &e);
    expect_free(&e);

    /* backward: table rows receive the sum of all dense rows naming them */
    t_fill_random(&dense, off, nc, -1, 1);
    t_push(&dense);
    expect eb = expect_new(table.size);
    int *count = calloc(V, sizeof *count);
    for (int n = 0; n < N; n++) count[idv[n]]++;
    for (int v = 0; v < V; v++)
        for (int c = 0; c < C; c++) {
            size_t at = off + (size_t)v * C + c;
            double sum = table.host[at], mag = fabs(sum);
            for (int n = 0; n < N; n++)
                if (idv[n] == v) {
                    sum += dense.host[off + (size_t)n * C + c];
                    mag += fabs(dense.host[off + (size_t)n * C + c]);
                }
            eb.ref[at] = sum;
            eb.tol[at] = (count[v] + 1) * U * mag;
        }
    if (kind == 2)
        be->scatter_rows_add(be, t_at(&table, off), t_at(&dense, off), t_at(&ids, off), N, C);
    else be->embedding_backward(be, t_at(&table, off), t_at(&dense, off), t_at(&ids, off), N, C);
    check_tensor(kind == 2 ? "scatter_rows_add" : "embedding_backward", &table, &eb);
    check_no_pending_error("lookup");
    expect_free(&eb);
    free(count);
    free(idv);
    t_free(&ids);
    t_free(&table);
    t_free(&dense);
}

/* ------------------------------------------------------------- layernorm */

static void test_layernorm_case(int N, int C, int affine) {
    const size_t off = 3, tail = 5, nc = (size_t)N * C;
    const float eps = 1e-5f;
    tensor x = t_new(off + nc + tail), y = t_new(off + nc + tail), w = t_new(off + C + tail),
           b = t_new(off + C + tail), mean = t_new(off + N + tail), rstd = t_new(off + N + tail);
    /* A mean far from zero makes a one-pass E[x^2]-E[x]^2 variance fail. */
    for (int n = 0; n < N; n++) t_fill_random(&x, off + (size_t)n * C, C, 40 + n, 42 + n);
    t_fill_random(&w, off, C, 0.5, 1.5);
    t_fill_random(&b, off, C, -1, 1);
    t_push(&x);
    t_push(&y);
    t_push(&w);
    t_push(&b);
    t_push(&mean);
    t_push(&rstd);
    rc_view none = {NULL, 0};
    be->layernorm_forward(be, t_at(&y, off), t_at(&mean, off), t_at(&rstd, off), t_at(&x, off),
                          affine ? t_at(&w, off) : none, affine ? t_at(&b, off) : none, N, C, eps);
    expect ey = expect_new(y.size), em = expect_new(mean.size), er = expect_new(rstd.size);
    for (int n = 0; n < N; n++) {
        const float *xr = x.host + off + (size_t)n * C;
        double mu = 0, var = 0;
        for (int c = 0; c < C; c++) mu += xr[c];
        mu /= C;
        for (int c = 0; c < C; c++) var += (xr[c] - mu) * (xr[c] - mu);
        var /= C;
        const double rs = 1.0 / sqrt(var + eps);
        em.ref[off + n] = mu, em.tol[off + n] = 2 * U * fabs(mu); /* rounded once */
        er.ref[off + n] = rs, er.tol[off + n] = 2 * U * rs;     /* sqrt/divide, rounded */
        for (int c = 0; c < C; c++) {
            const double wc = affine ? w.host[off + c] : 1.0, bc = affine ? b.host[off + c] : 0.0;
            const double xhat = (xr[c] - mu) * rs;
            /* The float mean is off by u|mu|, and x - mean, * rstd, * w, + b
             * round once each: 8u of the terms' magnitudes bounds it. */
            const double mag = fabs(wc) * rs * (fabs(xr[c] - mu) + fabs(mu)) + fabs(bc);
            ey.ref[off + (size_t)n * C + c] = xhat * wc + bc;
            ey.tol[off + (size_t)n * C + c] = 8 * U * mag;
        }
    }
    char what[96];
    snprintf(what, sizeof what, "layernorm_forward N=%d C=%d affine=%d", N, C, affine);
    check_tensor(what, &y, &ey);
    check_tensor("layernorm_forward mean", &mean, &em);
    check_tensor("layernorm_forward rstd", &rstd, &er);
    expect_free(&ey);
    expect_free(&em);
    expect_free(&er);

    /* backward, from the op's own saved (float) mean/rstd */
    float *mean_f = t_pull(&mean), *rstd_f = t_pull(&rstd);
    tensor dy = t_new(off + nc + tail), dx = t_new(off + nc + tail), dw = t_new(off + C + tail),
           db = t_new(off + C + tail);
    t_fill_random(&dy, off, nc, -1, 1);
    t_fill_random(&dx, off, nc, -1, 1);
    t_fill_random(&dw, off, C, -1, 1);
    t_fill_random(&db, off, C, -1, 1);
    t_push(&dy);
    t_push(&dx);
    t_push(&dw);
    t_push(&db);
    be->layernorm_backward(be, t_at(&dx, off), affine ? t_at(&dw, off) : none,
                           affine ? t_at(&db, off) : none, t_at(&dy, off), t_at(&x, off),
                           affine ? t_at(&w, off) : none, t_at(&mean, off), t_at(&rstd, off), N,
                           C);
    expect edx = expect_new(dx.size), edw = expect_new(dw.size), edb = expect_new(db.size);
    double *xhat = malloc(nc * sizeof *xhat), *g = malloc(nc * sizeof *g);
    for (int n = 0; n < N; n++) {
        const double mu = mean_f[off + n], rs = rstd_f[off + n];
        double mean_g = 0, mean_gx = 0, mean_abs_g = 0, mean_abs_gx = 0;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            xhat[i] = (x.host[off + i] - mu) * rs;
            g[i] = dy.host[off + i] * (affine ? w.host[off + c] : 1.0);
            mean_g += g[i] / C, mean_gx += g[i] * xhat[i] / C;
            mean_abs_g += fabs(g[i]) / C, mean_abs_gx += fabs(g[i] * xhat[i]) / C;
        }
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            const double prev = dx.host[off + i];
            const double grad = rs * (g[i] - mean_g - xhat[i] * mean_gx);
            /* x - mean and the products round a handful of times per term;
             * the means carry the same relative error as their terms. */
            const double mag =
                rs * (fabs(g[i]) + mean_abs_g + fabs(xhat[i]) * mean_abs_gx) + fabs(prev);
            edx.ref[off + i] = prev + grad;
            edx.tol[off + i] = 16 * U * mag;
        }
    }
    if (affine)
        for (int c = 0; c < C; c++) {
            double sw = dw.host[off + c], sb = db.host[off + c];
            double mw = fabs(sw), mb = fabs(sb);
            for (int n = 0; n < N; n++) {
                size_t i = (size_t)n * C + c;
                sw += dy.host[off + i] * xhat[i], mw += fabs(dy.host[off + i] * xhat[i]);
                sb += dy.host[off + i], mb += fabs(dy.host[off + i]);
            }
            edw.ref[off + c] = sw, edw.tol[off + c] = (N + 6) * U * mw;
            edb.ref[off + c] = sb, edb.tol[off + c] = (N + 2) * U * mb;
        }
    snprintf(what, sizeof what, "layernorm_backward dinp N=%d C=%d affine=%d", N, C, affine);
    check_tensor(what, &dx, &edx);
    check_tensor("layernorm_backward dweight", &dw, &edw); /* untouched without affine */
    check_tensor("layernorm_backward dbias", &db, &edb);
    check_no_pending_error("layernorm");
    free(xhat);
    free(g);
    free(mean_f);
    free(rstd_f);
    expect_free(&edx);
    expect_free(&edw);
    expect_free(&edb);
    tensor *all[] = {&x, &y, &w, &b, &mean, &rstd, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_free(all[i]);
}

static void test_layernorm(void) {
    static const int shapes[][2] = {{1, 1}, {3, 1}, {5, 7}, {257, 131}, {2, 1024}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int affine = 0; affine < 2; affine++)
            test_layernorm_case(shapes[s][0], shapes[s][1], affine);
}

/* ------------------------------------------------------------ activations */

static double ref_act(rc_activation kind, double x) {
    if (kind == RC_ACT_RELU) return x > 0 ? x : 0;
    if (kind == RC_ACT_SILU) return x / (1 + exp(-x));
    if (kind == RC_ACT_GELU) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    const double k = sqrt(2.0 / acos(-1.0));
    return 0.5 * x * (1 + tanh(k * (x + 0.044715 * x * x * x)));
}
/* Derivatives by hand (the gradcheck test confirms them numerically). */
static double ref_act_grad(rc_activation kind, double x) {
    if (kind == RC_ACT_RELU) return x > 0 ? 1 : 0;
    if (kind == RC_ACT_SILU) {
        const double s = 1 / (1 + exp(-x));
        return s * (1 + x * (1 - s));
    }
    if (kind == RC_ACT_GELU)
        return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * acos(-1.0));
    const double k = sqrt(2.0 / acos(-1.0)), inner = k * (x + 0.044715 * x * x * x);
    const double t = tanh(inner);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
}
/* Error bounds. Float erf/tanh/exp are good to about an ulp, but 1 + erf(..)
 * and 1 + tanh(..) cancel for negative x, leaving an absolute error of a few
 * u, times |x| through the leading 0.5x. The arguments' own roundings are
 * harmless where they are damped (x^3 e^{-x^2/2}, (1 - t^2) u are bounded),
 * except in the tanh-GELU derivative, where 1 - t^2 carries an absolute
 * error of a few u that 0.5x * sqrt(2/pi)(1 + 3*0.044715x^2) multiplies.
 * SiLU's sigmoid carries a few u relative (the exponential, 1 + e, the
 * division), so x s does too; its derivative s (1 + x (1 - s)) loses that
 * to cancellation in 1 - s, an absolute few u times |x|: both within
 * 8u (1 + |x|). */
static double act_bound(rc_activation kind, double x, int backward) {
    if (kind == RC_ACT_RELU) return 0;
    if (backward && kind == RC_ACT_GELU_TANH) return 8 * U * (1 + fabs(x) * (1 + x * x));
    return 8 * U * (1 + fabs(x));
}

static void test_activation_case(rc_activation kind, size_t n) {
    const size_t off = 4, tail = 3;
    tensor x = t_new(off + n + tail), y = t_new(off + n + tail), dy = t_new(off + n + tail),
           dx = t_new(off + n + tail);
    t_fill_random(&x, off, n, -6, 6);
    if (n > 4) x.host[off] = 0.0f, x.host[off + 1] = -0.0f, x.host[off + 2] = 1e-30f,
               x.host[off + 3] = -1e-30f;
    t_fill_random(&dy, off, n, -1, 1);
    t_fill_random(&dx, off, n, -1, 1);
    t_push(&x);
    t_push(&y);
    t_push(&dy);
    t_push(&dx);
    be->activation_forward(be, kind, t_at(&y, off), t_at(&x, off), n);
    be->activation_backward(be, kind, t_at(&dx, off), t_at(&dy, off), t_at(&x, off), n);
    expect ey = expect_new(y.size), edx = expect_new(dx.size);
    for (size_t i = off; i < off + n; i++) {
        const double xi = x.host[i], prev = dx.host[i], d = ref_act_grad(kind, xi) * dy.host[i];
        ey.ref[i] = ref_act(kind, xi);
        ey.tol[i] = act_bound(kind, xi, 0);
        edx.ref[i] = prev + d;
        edx.tol[i] = 2 * U * (fabs(prev) + fabs(d)) + act_bound(kind, xi, 1) * fabs(dy.host[i]);
    }
    char what[64];
    snprintf(what, sizeof what, "activation_forward kind=%d n=%zu", (int)kind, n);
    check_tensor(what, &y, &ey);
    snprintf(what, sizeof what, "activation_backward kind=%d n=%zu", (int)kind, n);
    check_tensor(what, &dx, &edx);
    /* out may alias inp */
    be->activation_forward(be, kind, t_at(&x, off), t_at(&x, off), n);
    snprintf(what, sizeof what, "activation_forward in place kind=%d", (int)kind);
    check_tensor(what, &x, &ey);
    check_no_pending_error("activation");
    expect_free(&ey);
    expect_free(&edx);
    t_free(&x);
    t_free(&y);
    t_free(&dy);
    t_free(&dx);
}

static void test_activations(void) {
    static const size_t sizes[] = {1, 17, 20011};
    for (int k = 0; k < 4; k++)
        for (size_t s = 0; s < 3; s++) test_activation_case((rc_activation)k, sizes[s]);
    /* NaN propagates through every activation (as in PyTorch), so a diverged
     * run shows up in the loss instead of being masked by ReLU. */
    tensor x = t_new(3);
    x.host[0] = NAN, x.host[1] = -1.0f, x.host[2] = 2.0f;
    t_push(&x);
    for (int k = 0; k < 4; k++) {
        be->activation_forward(be, (rc_activation)k, t_at(&x, 0), t_at(&x, 0), 1);
        float *got = t_pull(&x);
        CHECK(isnan(got[0]), "activation %d of NaN is %g, not NaN", k, (double)got[0]);
        free(got);
    }
    t_free(&x);
}

/* ---------------------------------------------------- gated activations */

/* out = act(gate) * up and its backward, for every activation, against the
 * references above: act's own bound (act_bound) times |up|, and 2u for each
 * further rounding (the product, u * dout, the accumulation). */
static void test_gated_case(rc_activation kind, size_t n, int out_aliases_up) {
    const size_t off = 2, tail = 5;
    tensor gate = t_new(off + n + tail), up = t_new(off + n + tail), y = t_new(off + n + tail),
           dy = t_new(off + n + tail), dg = t_new(off + n + tail), du = t_new(off + n + tail);
    t_fill_random(&gate, off, n, -6, 6);
    if (n > 2) gate.host[off] = 0.0f, gate.host[off + 1] = -0.0f;
    t_fill_random(&up, off, n, -2, 2);
    t_fill_random(&dy, off, n, -1, 1);
    t_fill_random(&dg, off, n, -1, 1);
    t_fill_random(&du, off, n, -1, 1);
    tensor *all[] = {&gate, &up, &y, &dy, &dg, &du};
    for (size_t i = 0; i < 6; i++) t_push(all[i]);
    expect ey = expect_new(y.size), edg = expect_new(dg.size), edu = expect_new(du.size);
    for (size_t i = off; i < off + n; i++) {
        const double g = gate.host[i], u = up.host[i], d = dy.host[i];
        const double a = ref_act(kind, g), da = ref_act_grad(kind, g);
        ey.ref[i] = a * u, ey.tol[i] = act_bound(kind, g, 0) * fabs(u) + 2 * U * fabs(a * u);
        const double step_g = da * u * d, step_u = a * d;
        edg.ref[i] = dg.host[i] + step_g;
        edg.tol[i] = act_bound(kind, g, 1) * fabs(u * d) + 4 * U * fabs(step_g) +
                     2 * U * (fabs(dg.host[i]) + fabs(step_g));
        edu.ref[i] = du.host[i] + step_u;
        edu.tol[i] = act_bound(kind, g, 0) * fabs(d) + 2 * U * fabs(step_u) +
                     2 * U * (fabs(du.host[i]) + fabs(step_u));
    }
    /* backward first: the aliased forward below overwrites up */
    be->gated_backward(be, kind, t_at(&dg, off), t_at(&du, off), t_at(&dy, off),
                       t_at(&gate, off), t_at(&up, off), n);
    tensor *out = out_aliases_up ? &up : &y;
    be->gated_forward(be, kind, t_at(out, off), t_at(&gate, off), t_at(&up, off), n);
    char what[80];
    snprintf(what, sizeof what, "gated_backward dgate kind=%d n=%zu", (int)kind, n);
    check_tensor(what, &dg, &edg);
    snprintf(what, sizeof what, "gated_backward dup kind=%d n=%zu", (int)kind, n);
    check_tensor(what, &du, &edu);
    snprintf(what, sizeof what, "gated_forward kind=%d n=%zu out=up %d", (int)kind, n,
             out_aliases_up);
    check_tensor(what, out, &ey);
    check_no_pending_error("gated");
    expect_free(&ey);
    expect_free(&edg);
    expect_free(&edu);
    for (size_t i = 0; i < 6; i++) t_free(all[i]);
}

static void test_gated(void) {
    static const size_t sizes[] = {1, 17, 20011};
    for (int k = 0; k < 4; k++)
        for (size_t s = 0; s < 3; s++) test_gated_case((rc_activation)k, sizes[s], (int)s == 1);
    test_gated_case(RC_ACT_SILU, 20011, 1);
}

/* --------------------------------------------------------------- rmsnorm */

/* out = weight * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps). The float rstd
 * is rounded once from a double computation; x * rstd and * weight round
 * once each: 3 roundings of the result, allowed 2u each. */
static void test_rmsnorm_case(int N, int C, int weighted) {
    const size_t off = 3, tail = 5, nc = (size_t)N * C;
    const float eps = 1e-6f;
    tensor x = t_new(off + nc + tail), y = t_new(off + nc + tail), w = t_new(off + C + tail),
           rstd = t_new(off + N + tail);
    for (int n = 0; n < N; n++) t_fill_random(&x, off + (size_t)n * C, C, -2 - n, 2 + 3 * n);
    if (N > 2) /* a row of zeros: rstd is 1/sqrt(eps) */
        for (int c = 0; c < C; c++) x.host[off + C + c] = 0.0f;
    t_fill_random(&w, off, C, -1.5, 1.5);
    tensor *fwd[] = {&x, &y, &w, &rstd};
    for (size_t i = 0; i < 4; i++) t_push(fwd[i]);
    rc_view none = {NULL, 0};
    be->rmsnorm_forward(be, t_at(&y, off), t_at(&rstd, off), t_at(&x, off),
                        weighted ? t_at(&w, off) : none, N, C, eps);
    expect ey = expect_new(y.size), er = expect_new(rstd.size);
    for (int n = 0; n < N; n++) {
        const float *xr = x.host + off + (size_t)n * C;
        double ms = 0;
        for (int c = 0; c < C; c++) ms += (double)xr[c] * xr[c];
        const double rs = 1.0 / sqrt(ms / C + eps);
        er.ref[off + n] = rs, er.tol[off + n] = 2 * U * rs;
        for (int c = 0; c < C; c++) {
            const double ref = xr[c] * rs * (weighted ? w.host[off + c] : 1.0);
            ey.ref[off + (size_t)n * C + c] = ref;
            ey.tol[off + (size_t)n * C + c] = 6 * U * fabs(ref);
        }
    }
    char what[96];
    snprintf(what, sizeof what, "rmsnorm_forward N=%d C=%d weighted=%d", N, C, weighted);
    check_tensor(what, &y, &ey);
    check_tensor("rmsnorm_forward rstd", &rstd, &er);
    /* in place (out aliases inp), and without saving rstd (inference) */
    tensor x2 = t_new(x.size);
    memcpy(x2.host, x.host, x.size * sizeof(float));
    t_push(&x2);
    be->rmsnorm_forward(be, t_at(&x2, off), none, t_at(&x2, off),
                        weighted ? t_at(&w, off) : none, N, C, eps);
    check_tensor("rmsnorm_forward in place, no rstd", &x2, &ey);
    t_free(&x2);
    expect_free(&ey);
    expect_free(&er);

    /* backward from the op's own float rstd: with xhat = x rstd, g = dout w,
     * dx = rstd (g - xhat mean(g xhat)), dweight = sum_n dout xhat */
    float *rstd_f = t_pull(&rstd);
    tensor dy = t_new(off + nc + tail), dx = t_new(off + nc + tail), dw = t_new(off + C + tail);
    t_fill_random(&dy, off, nc, -1, 1);
    t_fill_random(&dx, off, nc, -1, 1);
    t_fill_random(&dw, off, C, -1, 1);
    t_push(&dy);
    t_push(&dx);
    t_push(&dw);
    be->rmsnorm_backward(be, t_at(&dx, off), weighted ? t_at(&dw, off) : none, t_at(&dy, off),
                         t_at(&x, off), weighted ? t_at(&w, off) : none, t_at(&rstd, off), N, C);
    expect edx = expect_new(dx.size), edw = expect_new(dw.size);
    for (int n = 0; n < N; n++) {
        const double rs = rstd_f[off + n];
        double mean_gx = 0, mean_abs_gx = 0;
        for (int c = 0; c < C; c++) {
            const size_t i = off + (size_t)n * C + c;
            const double g = dy.host[i] * (weighted ? w.host[off + c] : 1.0);
            mean_gx += g * x.host[i] * rs / C, mean_abs_gx += fabs(g * x.host[i] * rs) / C;
        }
        for (int c = 0; c < C; c++) {
            const size_t i = off + (size_t)n * C + c;
            const double g = dy.host[i] * (weighted ? w.host[off + c] : 1.0);
            const double xhat = x.host[i] * rs, prev = dx.host[i];
            /* g, xhat, the mean, their product, the difference, * rstd and the
             * accumulation round once each, on terms of these magnitudes */
            const double mag = rs * (fabs(g) + fabs(xhat) * mean_abs_gx) + fabs(prev);
            edx.ref[i] = prev + rs * (g - xhat * mean_gx);
            edx.tol[i] = 8 * U * mag;
        }
    }
    if (weighted)
        for (int c = 0; c < C; c++) {
            double sw = dw.host[off + c], mw = fabs(sw);
            for (int n = 0; n < N; n++) {
                const size_t i = off + (size_t)n * C + c;
                const double term = dy.host[i] * (x.host[i] * (double)rstd_f[off + n]);
                sw += term, mw += fabs(term);
            }
            /* each xhat rounds once; the double sum, its rounding to float and
             * the accumulation once each */
            edw.ref[off + c] = sw, edw.tol[off + c] = 4 * U * mw;
        }
    snprintf(what, sizeof what, "rmsnorm_backward dinp N=%d C=%d weighted=%d", N, C, weighted);
    check_tensor(what, &dx, &edx);
    check_tensor("rmsnorm_backward dweight", &dw, &edw); /* untouched without weight */
    check_no_pending_error("rmsnorm");
    free(rstd_f);
    expect_free(&edx);
    expect_free(&edw);
    tensor *all[] = {&x, &y, &w, &rstd, &dy, &dx, &dw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_free(all[i]);
}

static void test_rmsnorm(void) {
    /* 1 and odd widths, Qwen3's per-head norm (many rows of 64), past the
     * 64-column blocks of dweight and the OpenMP threshold */
    static const int shapes[][2] = {{1, 1}, {3, 1}, {5, 7}, {1, 64}, {300, 64}, {257, 131},
                                    {2, 1024}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int weighted = 0; weighted < 2; weighted++)
            test_rmsnorm_case(shapes[s][0], shapes[s][1], weighted);
}

/* ------------------------------------------------------------------ rope */

/* Rows of H heads of width D in a matrix of row stride ld (the gaps, and the
 * guards, must stay untouched), at out-of-order repeating positions, over
 * tables of n_positions rows. Each output is a c - b s (or b c + a s): two
 * products and a sum, one rounding each. Then the inverse, on the forward's
 * float output, against the inverse rotation of that output. */
static void test_rope_case(int N, int H, int D, int ld, int n_positions) {
    const int half = D / 2;
    const size_t off = 3, tail = 4, nt = (size_t)n_positions * half;
    const size_t extent = N ? (size_t)(N - 1) * ld + (size_t)H * D : 0;
    tensor x = t_new(off + extent + tail), pos = t_new(off + N + tail), cs = t_new(off + nt + tail),
           sn = t_new(off + nt + tail);
    for (int n = 0; n < N; n++) {
        t_fill_random(&x, off + (size_t)n * ld, (size_t)H * D, -3, 3);
        t_set_int(&pos, off + n, n == N - 1 ? n_positions - 1 : uniform_int(n_positions));
    }
    for (int p = 0; p < n_positions; p++)
        for (int i = 0; i < half; i++) {
            const double angle = p * pow(500000.0, -2.0 * i / D);
            cs.host[off + (size_t)p * half + i] = (float)cos(angle);
            sn.host[off + (size_t)p * half + i] = (float)sin(angle);
        }
    tensor *all[] = {&x, &pos, &cs, &sn};
    for (size_t i = 0; i < 4; i++) t_push(all[i]);
    for (int inverse = 0; inverse < 2; inverse++) {
        const float *in = x.host; /* the forward's output for the inverse */
        float *got = inverse ? t_pull(&x) : NULL;
        if (got) in = got;
        expect e = expect_new(x.size);
        for (int n = 0; n < N; n++) {
            int32_t p;
            memcpy(&p, &pos.host[off + n], sizeof p);
            for (int h = 0; h < H; h++)
                for (int i = 0; i < half; i++) {
                    const size_t lo = off + (size_t)n * ld + (size_t)h * D + i, hi = lo + half;
                    const double c = cs.host[off + (size_t)p * half + i];
                    const double s = (inverse ? -1.0 : 1.0) * sn.host[off + (size_t)p * half + i];
                    const double a = in[lo], b = in[hi];
                    e.ref[lo] = a * c - b * s, e.tol[lo] = 4 * U * (fabs(a * c) + fabs(b * s));
                    e.ref[hi] = b * c + a * s, e.tol[hi] = 4 * U * (fabs(b * c) + fabs(a * s));
                }
        }
        /* gaps and guards: compared bitwise with the host mirror */
        if (got) memcpy(x.host, got, x.size * sizeof(float));
        be->rope(be, t_at(&x, off), ld, t_at(&pos, off), t_at(&cs, off), t_at(&sn, off), N, H, D,
                 inverse);
        char what[96];
        snprintf(what, sizeof what, "rope N=%d H=%d D=%d ld=%d inverse=%d", N, H, D, ld, inverse);
        check_tensor(what, &x, &e);
        check_no_pending_error(what);
        expect_free(&e);
        free(got);
    }
    for (size_t i = 0; i < 4; i++) t_free(all[i]);
}

static void test_rope(void) {
    test_rope_case(1, 1, 2, 2, 1);        /* one row, D = 2 */
    test_rope_case(7, 3, 6, 23, 11);      /* ld > H*D, a half of 3 */
    test_rope_case(5, 2, 64, 3 * 128, 9); /* a fused qkv matrix: q's heads of a wider row */
    test_rope_case(301, 9, 64, 9 * 64 + 2 * 3 * 64, 512); /* past the OpenMP threshold */
    /* misuse is reported, not acted on */
    tensor x = t_new(16), pos = t_new(2), table = t_new(8);
    t_fill_random(&x, 0, 16, -1, 1);
    t_fill_random(&table, 0, 8, -1, 1);
    t_set_int(&pos, 0, 1);
    t_set_int(&pos, 1, 4); /* tables of 4 rows of D/2 = 2: position 4 is past them */
    tensor *all[] = {&x, &pos, &table};
    for (size_t i = 0; i < 3; i++) t_push(all[i]);
    expect e = expect_new(x.size); /* untouched */
    be->rope(be, t_at(&x, 0), 8, t_at(&pos, 0), t_at(&table, 0), t_at(&table, 0), 2, 2, 4, 0);
    rc_status st = be->sync(be);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "cos_table"),
          "rope: a position past the tables is reported: %s", rc_last_error());
    t_set_int(&pos, 1, -1);
    t_push(&pos);
    be->rope(be, t_at(&x, 0), 8, t_at(&pos, 0), t_at(&table, 0), t_at(&table, 0), 2, 2, 4, 0);
    st = be->sync(be);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "positions[1] = -1"),
          "rope: a negative position is reported: %s", rc_last_error());
    be->rope(be, t_at(&x, 0), 8, t_at(&pos, 0), t_at(&table, 0), t_at(&table, 0), 2, 3, 3, 0);
    st = be->sync(be);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "odd"),
          "rope: an odd head width is reported: %s", rc_last_error());
    be->rope(be, t_at(&x, 0), 7, t_at(&pos, 0), t_at(&table, 0), t_at(&table, 0), 2, 2, 4, 0);
    st = be->sync(be);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "ld"),
          "rope: ld < H*D is reported: %s", rc_last_error());
    check_tensor("rope misuse leaves x alone", &x, &e);
    expect_free(&e);
    for (size_t i = 0; i < 3; i++) t_free(all[i]);
}

/* ------------------------------------------------------ add, axpy, scale */

static void test_vector_ops(void) {
    static const size_t sizes[] = {1, 13, 40009};
    for (size_t s = 0; s < 3; s++) {
        const size_t n = sizes[s], off = 1, tail = 4;
        tensor a = t_new(off + n + tail), b = t_new(off + n + tail), out = t_new(off + n + tail);
        t_fill_random(&a, off, n, -3, 3);
        t_fill_random(&b, off, n, -3, 3);
        t_push(&a);
        t_push(&b);
        t_push(&out);
        expect e = expect_new(out.size);
        for (size_t i = off; i < off + n; i++)
            e.ref[i] = (double)a.host[i] + b.host[i], e.tol[i] = 2 * U * fabs(e.ref[i]);
        be->add(be, t_at(&out, off), t_at(&a, off), t_at(&b, off), n);
        check_tensor("add", &out, &e);
        be->add(be, t_at(&a, off), t_at(&a, off), t_at(&b, off), n); /* out aliases a */
        check_tensor("add out=a", &a, &e);
        t_push(&a);
        be->add(be, t_at(&b, off), t_at(&a, off), t_at(&b, off), n); /* out aliases b */
        check_tensor("add out=b", &b, &e);
        t_push(&b);
        expect_free(&e);

        const float alpha = -0.37f;
        e = expect_new(a.size);
        for (size_t i = off; i < off + n; i++) {
            const double ax = (double)alpha * b.host[i];
            e.ref[i] = a.host[i] + ax;
            e.tol[i] = 2 * U * (fabs(a.host[i]) + fabs(ax)); /* product, sum */
        }
        be->axpy(be, t_at(&a, off), alpha, t_at(&b, off), n);
        check_tensor("axpy", &a, &e);
        expect_free(&e);

        e = expect_new(b.size);
        for (size_t i = off; i < off + n; i++)
            e.ref[i] = (double)alpha * b.host[i], e.tol[i] = 2 * U * fabs(e.ref[i]);
        be->scale(be, t_at(&b, off), alpha, n);
        check_tensor("scale", &b, &e);
        expect_free(&e);

        e = expect_new(out.size);
        for (size_t i = off; i < off + n; i++) e.ref[i] = 2.5, e.tol[i] = 0;
        be->fill(be, t_at(&out, off), 2.5f, n);
        check_tensor("fill", &out, &e);
        check_no_pending_error("vector ops");
        expect_free(&e);
        t_free(&a);
        t_free(&b);
        t_free(&out);
    }
}

/* ------------------------------------------------------- sparse zeroing */

#ifdef __linux__
/* Resident memory of this process in bytes (/proc/self/statm), 0 if unknown. */
static double resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f) return 0.0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}
#endif

/* fill_zero_sparse zeros exactly its view, partial pages at both ends
 * included, and on Linux hands the whole pages inside back to the OS. */
static void test_fill_zero_sparse(void) {
    const size_t off = 3, n = ((size_t)32 << 20) / sizeof(float) + 5, tail = 7;
    tensor t = t_new(off + n + tail);
    t_fill_random(&t, off, n, 1, 2);
    t_push(&t);
#ifdef __linux__
    const double before = resident_bytes();
#endif
    be->fill_zero_sparse(be, t_at(&t, off), n);
#ifdef __linux__
    const double released = before - resident_bytes();
    CHECK(released >= 0.9 * (double)n * sizeof(float),
          "fill_zero_sparse released %.1f MiB of a %.1f MiB view", released / 1048576.0,
          (double)n * sizeof(float) / 1048576.0);
#endif
    expect e = expect_new(t.size);
    for (size_t i = off; i < off + n; i++) e.ref[i] = 0.0, e.tol[i] = 0.0;
    check_tensor("fill_zero_sparse", &t, &e);
    /* written again after the release, the memory holds what is written */
    t_fill_random(&t, off, n, -1, 1);
    t_push(&t);
    for (size_t i = off; i < off + n; i++) e.ref[i] = t.host[i];
    check_tensor("fill_zero_sparse, then written", &t, &e);
    check_no_pending_error("fill_zero_sparse");
    expect_free(&e);
    t_free(&t);
}

/* ------------------------------------------------------- attention softmax */

/* mask rows by batch: 0 all visible, 1 right padding, 2 left padding (early
 * queries see nothing), 3 nothing visible at all, 4 a packed pair (shared
 * prefix 1, branches 2 and 3, one padding key), then all visible again. */
static int mask_value(int b, int j, int T) {
    switch (b % 6) {
    case 1: return j < T - 2;
    case 2: return j >= 3;
    case 3: return 0;
    case 4: return j == T - 1 && T > 3 ? 0 : j < T / 3 ? 1 : j < 2 * T / 3 ? 2 : 3;
    default: return 1;
    }
}

/* the rule of backend.h, written out independently of the backends */
static int key_visible_ref(int b, int i, int j, int T) {
    const int key = mask_value(b, j, T), query = mask_value(b, i, T);
    return j <= i && key != 0 && (key == 1 || key == query);
}

/* Tq queries, the last Tq of T positions (Tq == T: whole sequences) */
static void test_softmax_case(int B, int H, int Tq, int T, double score_scale, int in_place) {
    const size_t off = 3, tail = 5, total = (size_t)B * H * Tq * T;
    tensor scores = t_new(off + total + tail), probs = t_new(off + total + tail),
           mask = t_new(off + (size_t)B * T + tail);
    t_fill_random(&scores, off, total, -4 * score_scale, 4 * score_scale);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < T; j++) t_set_int(&mask, off + (size_t)b * T + j, mask_value(b, j, T));
    t_push(&scores);
    t_push(&probs);
    t_push(&mask);
    tensor *out = in_place ? &scores : &probs;
    be->attention_softmax_forward(be, t_at(out, off), t_at(&scores, off), t_at(&mask, off), B, H,
                                  Tq, T);
    expect e = expect_new(out->size);
    for (size_t r = 0; r < (size_t)B * H * Tq; r++) {
        const int i = T - Tq + (int)(r % Tq), b = (int)(r / ((size_t)H * Tq));
        const float *s = scores.host + off + r * T;
        double max = -INFINITY, sum = 0, spread = 0;
        for (int j = 0; j <= i; j++)
            if (key_visible_ref(b, i, j, T) && s[j] > max) max = s[j];
        for (int j = 0; j <= i; j++)
            if (key_visible_ref(b, i, j, T)) sum += exp(s[j] - max);
        for (int j = 0; j <= i; j++)
            if (key_visible_ref(b, i, j, T)) spread += exp(s[j] - max) / sum * (fabs(s[j] - max) + 2);
        for (int j = 0; j < T; j++) {
            const size_t at = off + r * T + j;
            const int visible = key_visible_ref(b, i, j, T);
            e.ref[at] = visible ? exp(s[j] - max) / sum : 0.0;
            /* exp(s - max) has relative error ~u(|s - max| + 1); the sum
             * inherits the p-weighted average of those; one final rounding. */
            /* Below FLT_MIN (2^-126) float loses relative precision and may flush to 0. */
            e.tol[at] = visible ? 4 * U * e.ref[at] * (fabs(s[j] - max) + 2 + spread) + 0x1p-126
                                : 0.0;
        }
    }
    char what[96];
    snprintf(what, sizeof what, "attention_softmax_forward B=%d H=%d Tq=%d T=%d scale=%g in_place=%d",
             B, H, Tq, T, score_scale, in_place);
    check_tensor(what, out, &e);
    expect_free(&e);

    /* backward from the op's own probabilities */
    float *p = t_pull(out);
    tensor dprobs = t_new(off + total + tail), dscores = t_new(off + total + tail);
    t_fill_random(&dprobs, off, total, -1, 1);
    t_fill_random(&dscores, off, total, -1, 1); /* garbage: the op writes, not adds */
    t_push(&dprobs);
    t_push(&dscores);
    tensor *dout = in_place ? &dprobs : &dscores;
    be->attention_softmax_backward(be, t_at(dout, off), t_at(&dprobs, off), t_at(out, off), B, H,
                                   Tq, T);
    expect ed = expect_new(dout->size);
    for (size_t r = 0; r < (size_t)B * H * Tq; r++) {
        const float *pr = p + off + r * T, *dp = dprobs.host + off + r * T;
        double dot = 0, dot_mag = 0;
        for (int j = 0; j < T; j++) dot += (double)pr[j] * dp[j], dot_mag += fabs(pr[j] * dp[j]);
        for (int j = 0; j < T; j++) {
            ed.ref[off + r * T + j] = pr[j] * (dp[j] - dot);
            ed.tol[off + r * T + j] = 4 * U * fabs(pr[j]) * (fabs(dp[j]) + dot_mag);
        }
    }
    snprintf(what, sizeof what, "attention_softmax_backward B=%d H=%d Tq=%d T=%d in_place=%d", B, H,
             Tq, T, in_place);
    check_tensor(what, dout, &ed);
    check_no_pending_error("softmax");
    expect_free(&ed);
    free(p);
    t_free(&scores);
    t_free(&probs);
    t_free(&mask);
    t_free(&dprobs);
    t_free(&dscores);
}

static void test_softmax(void) {
    test_softmax_case(1, 1, 1, 1, 1.0, 0);
    test_softmax_case(5, 2, 7, 7, 1.0, 0);
    test_softmax_case(5, 2, 7, 7, 1.0, 1);
    test_softmax_case(4, 3, 5, 5, 1e4, 0); /* large scores: needs the max subtracted */
    test_softmax_case(2, 3, 61, 61, 1.0, 0);
    test_softmax_case(6, 1, 29, 29, 1.0, 1);
    /* only the last queries: one (where a score is read) or a few */
    test_softmax_case(6, 2, 1, 9, 1.0, 0);
    test_softmax_case(6, 3, 1, 61, 1.0, 1);
    test_softmax_case(5, 2, 3, 8, 1.0, 0);
}

/* ------------------------------------------------------- fused attention */

/* q, k, v, dout (g) as [B, T, H*D] host arrays */
typedef struct {
    const float *q, *k, *v, *g;
    int B, T, H, D;
    double scale;
} attention_case;

static const float *head_row(const attention_case *c, const float *x, int b, int i, int h) {
    return x + ((size_t)b * c->T + i) * c->H * c->D + (size_t)h * c->D;
}

/* One query's softmax in double: p over keys 0..T-1 (0 where hidden) and
 * rel, a bound on each p's relative error. The scores' own error (a D-term
 * dot product, then the scale), at most `err` each, moves a probability by
 * a factor within e^(2 err); the softmax adds what test_softmax_case allows.
 * Returns the stats attention_forward must write: max and 1/sum with their
 * bounds, both exactly 0 for a query that sees no key. */
typedef struct {
    double max, max_tol, inverse, inverse_tol;
} query_stats;

static query_stats ref_softmax(const attention_case *c, int b, int h, int i, double *p,
                               double *rel) {
    double max = -INFINITY, err = 0;
    for (int j = 0; j < c->T; j++) p[j] = rel[j] = 0;
    for (int j = 0; j <= i; j++) {
        if (!key_visible_ref(b, i, j, c->T)) continue;
        const float *q = head_row(c, c->q, b, i, h), *k = head_row(c, c->k, b, j, h);
        double dot = 0, mag = 0;
        for (int d = 0; d < c->D; d++) dot += (double)q[d] * k[d], mag += fabs((double)q[d] * k[d]);
        p[j] = dot * c->scale;
        err = fmax(err, (c->D + 3) * U * mag * c->scale);
        max = fmax(max, p[j]);
    }
    if (max == -INFINITY) return (query_stats){0, 0, 0, 0};
    double sum = 0, spread = 0;
    for (int j = 0; j <= i; j++)
        if (key_visible_ref(b, i, j, c->T)) sum += exp(p[j] - max);
    for (int j = 0; j <= i; j++)
        if (key_visible_ref(b, i, j, c->T))
            spread += exp(p[j] - max) / sum * (fabs(p[j] - max) + 2);
    for (int j = 0; j <= i; j++) {
        if (!key_visible_ref(b, i, j, c->T)) continue;
        rel[j] = 4 * err + 4 * U * (fabs(p[j] - max) + 2 + spread);
        p[j] = exp(p[j] - max) / sum;
    }
    return (query_stats){max, 2 * err + 2 * U * fabs(max), 1 / sum,
                         (4 * err + 4 * U * (2 + spread)) / sum};
}

/* Expected values and bounds of every output of attention_forward (out,
 * stats) and attention_backward (dq, dk, dv, from that forward's out and
 * stats), computed in double per (sequence, head). The bounds follow each
 * value's path: a dot product of n terms gets (n + 3) u of its magnitude on
 * top of what its factors carry, all doubled as elsewhere in this file. */
typedef struct {
    expect out, stats, dq, dk, dv;
} attention_expect;

static void ref_attention_head(const attention_case *c, int b, int h, attention_expect *e,
                               size_t off) {
    const int T = c->T, D = c->D, ld = c->H * c->D;
    double *P = calloc((size_t)T * T, sizeof *P), *rel = calloc((size_t)T * T, sizeof *rel);
    double *ds = calloc((size_t)T * T, sizeof *ds), *ds_err = calloc((size_t)T * T, sizeof *ds_err);
    double *O = calloc((size_t)T * D, sizeof *O), *O_tol = calloc((size_t)T * D, sizeof *O_tol);
    const size_t head0 = off + (size_t)b * T * ld + (size_t)h * D;
    for (int i = 0; i < T; i++) {
        const query_stats st = ref_softmax(c, b, h, i, P + (size_t)i * T, rel + (size_t)i * T);
        const size_t at = off + (((size_t)b * c->H + h) * T + i) * 2;
        e->stats.ref[at] = st.max, e->stats.tol[at] = st.max_tol;
        e->stats.ref[at + 1] = st.inverse, e->stats.tol[at + 1] = st.inverse_tol;
        for (int d = 0; d < D; d++) {
            double sum = 0, tol = 0;
            for (int j = 0; j <= i; j++) {
                const double term = P[(size_t)i * T + j] * head_row(c, c->v, b, j, h)[d];
                sum += term;
                tol += fabs(term) * (rel[(size_t)i * T + j] + (i + 3) * U);
            }
            O[(size_t)i * D + d] = sum, O_tol[(size_t)i * D + d] = tol;
            e->out.ref[head0 + (size_t)i * ld + d] = sum;
            e->out.tol[head0 + (size_t)i * ld + d] = 2 * tol;
        }
    }
    /* ds = p (dp - delta), dp_j = g . v_j, delta = g . out (the forward's out) */
    for (int i = 0; i < T; i++) {
        const float *g = head_row(c, c->g, b, i, h);
        const double *o = O + (size_t)i * D, *o_tol = O_tol + (size_t)i * D;
        double delta = 0, delta_err = 0;
        for (int d = 0; d < D; d++) {
            delta += g[d] * o[d];
            delta_err += fabs(g[d]) * (o_tol[d] + (D + 3) * U * fabs(o[d]));
        }
        for (int j = 0; j <= i; j++) {
            const double p = P[(size_t)i * T + j];
            const float *v = head_row(c, c->v, b, j, h);
            double dp = 0, mag = 0;
            for (int d = 0; d < D; d++) dp += (double)g[d] * v[d], mag += fabs((double)g[d] * v[d]);
            ds[(size_t)i * T + j] = p * (dp - delta);
            ds_err[(size_t)i * T + j] = p * ((D + 3) * U * mag + delta_err +
                                             rel[(size_t)i * T + j] * fabs(dp - delta)) +
                                        2 * U * fabs(ds[(size_t)i * T + j]);
        }
    }
    for (int i = 0; i < T; i++)
        for (int d = 0; d < D; d++) {
            double dq = 0, dq_tol = 0, dk = 0, dk_tol = 0, dv = 0, dv_tol = 0;
            for (int j = 0; j <= i; j++) { /* dq_i: over keys j <= i */
                const double kj = head_row(c, c->k, b, j, h)[d], dsj = ds[(size_t)i * T + j];
                dq += dsj * kj;
                dq_tol += fabs(kj) * ds_err[(size_t)i * T + j] + (i + 3) * U * fabs(dsj * kj);
            }
            for (int r = i; r < T; r++) { /* dk_i, dv_i: over the queries r >= i that see key i */
                const double qr = head_row(c, c->q, b, r, h)[d], gr = head_row(c, c->g, b, r, h)[d];
                const double dsr = ds[(size_t)r * T + i], pr = P[(size_t)r * T + i];
                dk += dsr * qr;
                dk_tol += fabs(qr) * ds_err[(size_t)r * T + i] + (T + 3) * U * fabs(dsr * qr);
                dv += pr * gr;
                dv_tol += fabs(pr * gr) * (rel[(size_t)r * T + i] + (T + 3) * U);
            }
            const size_t at = head0 + (size_t)i * ld + d;
            e->dq.ref[at] = c->scale * dq, e->dq.tol[at] = 2 * c->scale * dq_tol;
            e->dk.ref[at] = c->scale * dk, e->dk.tol[at] = 2 * c->scale * dk_tol;
            e->dv.ref[at] = dv, e->dv.tol[at] = 2 * dv_tol;
        }
    free(P), free(rel), free(ds), free(ds_err), free(O), free(O_tol);
}

/* Both fused ops on B sequences (masks of mask_value: padding on either
 * side, a query that sees nothing, a packed pair), against the references. */
static void test_fused_attention_case(int B, int H, int T, int D, double score_scale) {
    const size_t off = 3, tail = 5, n = (size_t)B * T * H * D, n_stats = (size_t)B * H * T * 2;
    tensor q = t_new(off + n + tail), k = t_new(off + n + tail), v = t_new(off + n + tail),
           g = t_new(off + n + tail), out = t_new(off + n + tail),
           stats = t_new(off + n_stats + tail), mask = t_new(off + (size_t)B * T + tail),
           dq = t_new(off + n + tail), dk = t_new(off + n + tail), dv = t_new(off + n + tail);
    t_fill_random(&q, off, n, -score_scale, score_scale);
    t_fill_random(&k, off, n, -1, 1);
    t_fill_random(&v, off, n, -1, 1);
    t_fill_random(&g, off, n, -1, 1);
    t_fill_random(&dq, off, n, -1, 1); /* garbage: the ops write, not add */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < T; j++) t_set_int(&mask, off + (size_t)b * T + j, mask_value(b, j, T));
    const tensor *all[] = {&q, &k, &v, &g, &out, &stats, &mask, &dq, &dk, &dv};
    for (int t = 0; t < 10; t++) t_push(all[t]);

    const attention_case c = {q.host + off, k.host + off, v.host + off, g.host + off,
                              B, T, H, D, 1.0f / sqrtf((float)D)};
    attention_expect e = {expect_new(out.size), expect_new(stats.size), expect_new(dq.size),
                          expect_new(dk.size), expect_new(dv.size)};
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) ref_attention_head(&c, b, h, &e, off);

    be->attention_forward(be, t_at(&out, off), t_at(&stats, off), t_at(&q, off), t_at(&k, off),
                          t_at(&v, off), t_at(&mask, off), B, T, H, H, D, (float)c.scale);
    be->attention_backward(be, t_at(&dq, off), t_at(&dk, off), t_at(&dv, off), t_at(&g, off),
                           t_at(&out, off), t_at(&stats, off), t_at(&q, off), t_at(&k, off),
                           t_at(&v, off), t_at(&mask, off), B, T, H, H, D, (float)c.scale);
    char what[128];
    const char *names[] = {"out", "stats", "dq", "dk", "dv"};
    const tensor *got[] = {&out, &stats, &dq, &dk, &dv};
    const expect *want[] = {&e.out, &e.stats, &e.dq, &e.dk, &e.dv};
    for (int t = 0; t < 5; t++) {
        snprintf(what, sizeof what, "fused attention %s B=%d H=%d T=%d D=%d scale=%g", names[t],
                 B, H, T, D, score_scale);
        check_tensor(what, got[t], want[t]);
    }
    check_no_pending_error("fused attention");
    expect_free(&e.out), expect_free(&e.stats), expect_free(&e.dq), expect_free(&e.dk),
        expect_free(&e.dv);
    for (int t = 0; t < 10; t++) t_free((tensor *)all[t]);
}

static void test_fused_attention(void) {
    CHECK(be->attention_forward && be->attention_backward && be->fused_attention_max_head_dim > 0,
          "the cpu backend offers fused attention");
    test_fused_attention_case(1, 1, 1, 16, 1.0);  /* one position */
    /* register tiles: heads up to 16 wide */
    test_fused_attention_case(6, 2, 7, 16, 1.0);  /* every mask kind; a partial query block */
    test_fused_attention_case(6, 3, 37, 12, 1.0); /* a width with no 16-column chunk */
    test_fused_attention_case(3, 2, 19, 16, 30.0); /* large scores: needs the max subtracted */
    /* banded products: wider heads, in query blocks of 96 */
    test_fused_attention_case(6, 2, 45, 20, 1.0);  /* a short column sliver */
    test_fused_attention_case(5, 2, 70, 64, 1.0);  /* OPT-125m's width */
    test_fused_attention_case(4, 2, 19, 32, 30.0); /* large scores */
    /* several query blocks, and keys past one block of the packed kernel's
     * columns and of its k (256 each) */
    test_fused_attention_case(6, 2, 300, 64, 1.0);
    test_fused_attention_case(6, 2, 101, 40, 1.0);
}

/* ---------------------------------------------------- optimizer helpers */

static void test_sum_squares(void) {
    static const size_t sizes[] = {1, 13, 100003};
    for (size_t s = 0; s < 3; s++) {
        const size_t n = sizes[s], off = 2;
        tensor x = t_new(off + n + 3);
        t_fill_random(&x, off, n, -2, 2);
        t_push(&x);
        double ref = 0;
        for (size_t i = off; i < off + n; i++) ref += (double)x.host[i] * x.host[i];
        const double got = be->sum_squares(be, t_at(&x, off), n);
        /* double accumulation of n non-negative terms: n * 2^-53 relative */
        CHECK(fabs(got - ref) <= (double)n * 2.3e-16 * ref, "sum_squares n=%zu: %.17g vs %.17g",
              n, got, ref);
        t_free(&x);
    }
    check_no_pending_error("sum_squares");
}

/* One AdamW step, on a clipped gradient, against the exact (double) update.
 * The float op rounds
 * each of its ~10 operations once; the step is lr-sized, so the bound is a
 * few u on |p| plus a few u on the update. */
static void test_adamw(void) {
    const size_t n = 20011, off = 1, tail = 2;
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    const float clip = 0.7f; /* clip_grad_norm_'s factor, applied inside the op */
    const int step = 3;
    const float bc1 = (float)(1 - pow(beta1, step)), bc2 = (float)(1 - pow(beta2, step));
    tensor p = t_new(off + n + tail), g = t_new(off + n + tail), m = t_new(off + n + tail),
           v = t_new(off + n + tail);
    t_fill_random(&p, off, n, -1, 1);
    t_fill_random(&g, off, n, -1, 1);
    t_fill_random(&m, off, n, -0.1, 0.1);
    t_fill_random(&v, off, n, 0, 0.01);
    g.host[off] = 0, m.host[off] = 0, v.host[off] = 0; /* denom = eps, update 0 */
    g.host[off + 1] = 1e-6f, v.host[off + 1] = 0;       /* v tiny next to eps */
    t_push(&p);
    t_push(&g);
    t_push(&m);
    t_push(&v);
    be->adamw(be, t_at(&p, off), t_at(&g, off), clip, t_at(&m, off), t_at(&v, off), n, lr, beta1,
              beta2, eps, wd, bc1, bc2);
    expect ep = expect_new(p.size), em = expect_new(m.size), ev = expect_new(v.size);
    for (size_t i = off; i < off + n; i++) {
        const double gi = (double)g.host[i] * clip;
        const double mi = (double)beta1 * m.host[i] + (1 - (double)beta1) * gi;
        const double vi = (double)beta2 * v.host[i] + (1 - (double)beta2) * gi * gi;
        const double decayed = p.host[i] * (1 - (double)lr * wd);
        const double update = (double)lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
        ep.ref[i] = decayed - update, ep.tol[i] = 4 * U * fabs(decayed) + 8 * U * fabs(update);
        em.ref[i] = mi, em.tol[i] = 3 * U * (fabs(m.host[i]) + fabs(gi));
        ev.ref[i] = vi, ev.tol[i] = 3 * U * (fabs(v.host[i]) + gi * gi);
    }
    check_tensor("adamw param", &p, &ep);
    check_tensor("adamw m", &m, &em);
    check_tensor("adamw v", &v, &ev);
    check_no_pending_error("adamw");
    expect_free(&ep);
    expect_free(&em);
    expect_free(&ev);
    t_free(&p);
    t_free(&g);
    t_free(&m);
    t_free(&v);
}

/* ------------------------------------------- memory and error reporting */

static void test_memory_and_errors(void) {
    rc_buffer *buf = NULL;
    rc_status st = be->alloc(be, SIZE_MAX / 2, &buf);
    CHECK(st == RC_ERR_OOM && buf == NULL, "absurd alloc should fail with OOM, got %d", (int)st);
    CHECK(strstr(rc_last_error(), "elements") != NULL, "OOM message names the size: %s",
          rc_last_error());
    st = be->alloc(be, (size_t)1 << 46, &buf); /* 256 TiB: more than x86-64 can map */
    CHECK(st == RC_ERR_OOM && buf == NULL, "256 TiB alloc should fail with OOM, got %d", (int)st);
    CHECK(strstr(rc_last_error(), "281474976710656 bytes") != NULL,
          "OOM message gives the byte count: %s", rc_last_error());

    st = be->alloc(be, 0, &buf);
    CHECK(st == RC_OK && buf != NULL, "zero-element alloc is valid");
    be->free(be, buf);
    be->free(be, NULL);

    tensor t = t_new(10);
    float host[16] = {0};
    st = be->upload(be, t_at(&t, 4), host, 7);
    CHECK(st == RC_ERR_INVALID_ARG, "upload past the end must fail");
    st = be->download(be, host, t_at(&t, 11), 0);
    CHECK(st == RC_ERR_INVALID_ARG || st == RC_OK, "empty download past the end is harmless");
    st = be->download(be, host, t_at(&t, 0), 11);
    CHECK(st == RC_ERR_INVALID_ARG, "download past the end must fail");

    /* An op whose view runs past its buffer does nothing and reports at sync. */
    t_fill_random(&t, 0, 10, -1, 1);
    t_push(&t);
    expect e = expect_new(t.size); /* all untouched */
    be->scale(be, t_at(&t, 5), 2.0f, 6);
    st = be->sync(be);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "scale"),
          "out-of-range op reported at sync: %d %s", (int)st, rc_last_error());
    CHECK(be->sync(be) == RC_OK, "an error is reported once");
    check_tensor("out-of-range scale leaves the buffer alone", &t, &e);

    /* An embedding id outside the table is reported by the next download. */
    tensor ids = t_new(2), table = t_new(6), out = t_new(6);
    t_set_int(&ids, 0, 1);
    t_set_int(&ids, 1, 3); /* the table has 3 rows of 2 */
    t_push(&ids);
    be->embedding_forward(be, t_at(&out, 0), t_at(&ids, 0), t_at(&table, 0), 2, 2, 0);
    float got[6];
    st = be->download(be, got, t_at(&out, 0), 6);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "ids[1] = 3"),
          "bad id reported at download: %d %s", (int)st, rc_last_error());
    t_set_int(&ids, 1, -1);
    t_push(&ids);
    be->scatter_rows_add(be, t_at(&table, 0), t_at(&out, 0), t_at(&ids, 0), 2, 2);
    CHECK(be->sync(be) == RC_ERR_INVALID_ARG, "negative row index reported");
    be->gemm(be, 0, 0, 2, 2, 2, 1.0f, t_at(&table, 0), 1, t_at(&table, 0), 2, 0.0f,
             t_at(&out, 0), 2);
    CHECK(be->sync(be) == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "lda"),
          "lda smaller than K reported: %s", rc_last_error());

    /* Empty ops are fine and touch nothing. */
    be->gemm(be, 0, 1, 0, 5, 3, 1.0f, t_at(&t, 0), 3, t_at(&t, 0), 3, 0.0f, t_at(&t, 0), 5);
    be->bias_backward(be, t_at(&t, 0), t_at(&t, 0), 0, 4);
    be->layernorm_forward(be, t_at(&t, 0), t_at(&t, 0), t_at(&t, 0), t_at(&t, 0), t_at(&t, 0),
                          t_at(&t, 0), 0, 8, 1e-5f);
    be->attention_softmax_forward(be, t_at(&t, 0), t_at(&t, 0), t_at(&t, 0), 0, 2, 3, 3);
    CHECK(be->sync(be) == RC_OK, "empty ops are not errors: %s", rc_last_error());
    check_tensor("empty ops leave the buffer alone", &t, &e);
    expect_free(&e);
    t_free(&t);
    t_free(&ids);
    t_free(&table);
    t_free(&out);
}

/* ---------------------------------------------- thread-count determinism */

#ifdef _OPENMP
/* Runs the reductions with 1 and with 3 threads: results must be identical
 * bit for bit, so a run repeats exactly whatever the machine's core count. */
static void run_reductions(float *result, size_t *n_result) {
    const int N = 397, C = 131, V = 7;
    const size_t nc = (size_t)N * C;
    rng_state = 12345;
    tensor x = t_new(nc), dy = t_new(nc), ids = t_new(N), acc = t_new(nc + 4 * C + (size_t)V * C),
           mean = t_new(N), rstd = t_new(N), w = t_new(C), prod = t_new((size_t)C * C);
    t_fill_random(&x, 0, nc, -1, 1);
    t_fill_random(&dy, 0, nc, -1, 1);
    t_fill_random(&w, 0, C, -1, 1);
    for (int n = 0; n < N; n++) t_set_int(&ids, n, uniform_int(V));
    for (size_t i = 0; i < acc.size; i++) acc.host[i] = 0;
    tensor *all[] = {&x, &dy, &ids, &acc, &w, &prod};
    for (size_t i = 0; i < 6; i++) t_push(all[i]);
    be->bias_backward(be, t_at(&acc, nc), t_at(&dy, 0), N, C);
    be->embedding_backward(be, t_at(&acc, nc + 3 * (size_t)C), t_at(&dy, 0), t_at(&ids, 0), N, C);
    be->layernorm_forward(be, t_at(&acc, 0), t_at(&mean, 0), t_at(&rstd, 0), t_at(&x, 0),
                          t_at(&w, 0), t_at(&w, 0), N, C, 1e-5f);
    be->layernorm_backward(be, t_at(&acc, 0), t_at(&acc, nc + C), t_at(&acc, nc + 2 * (size_t)C),
                           t_at(&dy, 0), t_at(&x, 0), t_at(&w, 0), t_at(&mean, 0),
                           t_at(&rstd, 0), N, C);
#ifndef RC_HAVE_BLAS
    /* Only our own gemm: OpenBLAS (its OpenMP build shares our thread count)
     * partitions the product by thread count and is not bitwise stable. */
    be->gemm(be, 1, 0, C, C, N, 1.0f, t_at(&x, 0), C, t_at(&dy, 0), C, 0.0f, t_at(&prod, 0), C);
#endif
    float *got = t_pull(&acc);
    memcpy(result, got, acc.size * sizeof(float));
    float *gx = t_pull(&prod);
    memcpy(result + acc.size, gx, prod.size * sizeof(float));
    const double ss = be->sum_squares(be, t_at(&dy, 0), nc);
    memcpy(result + acc.size + prod.size, &ss, sizeof ss);
    *n_result = acc.size + prod.size + 2;
    free(got);
    free(gx);
    for (size_t i = 0; i < 6; i++) t_free(all[i]);
    t_free(&mean);
    t_free(&rstd);
}

static void test_determinism(void) {
    const size_t cap = 4 * 397 * 131 + 8 * 131 + 16;
    float *one = malloc(cap * sizeof(float)), *three = malloc(cap * sizeof(float));
    size_t n1 = 0, n3 = 0;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_reductions(one, &n1);
    omp_set_num_threads(3);
    run_reductions(three, &n3);
    omp_set_num_threads(saved);
    CHECK(n1 == n3 && !memcmp(one, three, n1 * sizeof(float)),
          "reductions differ between 1 and 3 threads");
    free(one);
    free(three);
}
#endif

int main(void) {
    rc_status st = rc_backend_cpu_create(&be);
    CHECK(st == RC_OK, "rc_backend_cpu_create: %s", rc_last_error());
    if (st != RC_OK) return test_finish("test_cpu_ops");
    CHECK(!strcmp(be->name, "cpu") && be->device[0], "backend names itself");
    printf("device: %s\n", be->device);
    test_gemm();
    test_bias();
    test_lookup(1, 1, 1, 0);
    test_lookup(9, 11, 13, 0);
    test_lookup(9, 11, 13, 1);
    test_lookup(9, 4, 13, 2);
    test_lookup(300, 17, 70, 0);
    test_lookup(300, 17, 70, 2);
    test_layernorm();
    test_activations();
    test_gated();
    test_rmsnorm();
    test_rope();
    test_vector_ops();
    test_fill_zero_sparse();
    test_softmax();
    test_fused_attention();
    test_sum_squares();
    test_adamw();
    test_memory_and_errors();
#ifdef _OPENMP
    test_determinism();
#endif
    rc_backend_destroy(be);
    return test_finish("test_cpu_ops");
}
