/* The device backends' ops for the newer model families -- rmsnorm_forward,
 * rmsnorm_backward, rope, gated_forward, gated_backward and SiLU in the
 * activations -- against a double-precision reference computed here on the
 * host from the same float inputs (not against the CPU backend:
 * test_backend_ops does that, op by op).
 *
 * As in test_backend_ops, every tensor is a view at a non-zero offset into
 * its own buffer with NaN sentinels before and after it, outputs that must be
 * overwritten start as NaN, and after each op:
 *   - lead and guard elements (and, for rope, the gaps between rows) are
 *     bit-for-bit untouched, inputs bit-for-bit unchanged,
 *   - outputs are finite,
 *   - NMSE(reference, device) = sum (r-d)^2 / sum r^2 is within the op's bound,
 *   - reductions give the same bits when rerun.
 * Bounds are set from the float roundings each op makes against an exact
 * reference; the values measured on PoCL are in the comments.
 *
 * Exits 77 (skipped) when no device backend is compiled in or none has a
 * device. REWARDC_BACKENDS=opencl (comma-separated) limits the backends run;
 * naming cpu there runs the same checks on the CPU reference backend too. */
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

/* A handful of correctly rounded float operations against the exact value:
 * each costs at most 2^-24 relative, so NMSE stays below ~(10 * 6e-8)^2.
 * RMSNorm (its sums in double on the device), rope, relu-gated products.
 * Measured on PoCL: at most 8.3e-15. */
static const double TOL_ROUNDING = 1e-12;
/* exp, erf and tanh may be off by 3, 16 and 5 ulp in OpenCL (CUDA: 2, 2, 2);
 * SiLU's derivative and GELU-tanh's (1 - t^2) lose a few bits more where
 * they cancel, as in test_backend_ops. Measured on PoCL: silu 2e-15 (its
 * derivative 7.3e-15, the gated one 6.1e-14), gated gelu 9.1e-15, gated
 * gelu_tanh 3.1e-15 (its gate gradient 7.9e-12, at n = 13). */
static const double TOL_TRANSCENDENTAL = 1e-10;

enum { GUARD = 17, MAX_LEAD = 7 };
static const uint32_t SENTINEL_BITS = 0x7fc0beefu; /* a quiet NaN with a recognisable payload */

static rc_backend *dev;
static const char *dev_name;

/* ------------------------------------------------------------ randomness */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
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

/* [lead sentinels | n elements | guards] in one device buffer; `bits` is
 * what the buffer should hold (the upload, then each checked output). */
typedef struct {
    size_t lead, n, total;
    uint32_t *bits;
    rc_buffer *buf;
} tensor;

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_backend_ops_families: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static tensor t_new(size_t n) {
    tensor t;
    t.lead = 1 + (size_t)below(MAX_LEAD);
    t.n = n;
    t.total = t.lead + n + GUARD;
    t.bits = xmalloc(t.total * sizeof(uint32_t));
    for (size_t i = 0; i < t.total; i++) t.bits[i] = SENTINEL_BITS;
    if (dev->alloc(dev, t.total, &t.buf) != RC_OK) {
        fprintf(stderr, "test_backend_ops_families: %s alloc of %zu elements failed: %s\n",
                dev_name, t.total, rc_last_error());
        exit(1);
    }
    return t;
}

static void t_free(tensor *t) {
    dev->free(dev, t->buf);
    free(t->bits);
}

static rc_view V(const tensor *t) {
    rc_view v = {t->buf, t->lead};
    return v;
}
static const rc_view ABSENT = {NULL, 0};

static void t_set(tensor *t, size_t i, float v) { memcpy(&t->bits[t->lead + i], &v, 4); }
static void t_set_int(tensor *t, size_t i, int32_t v) { memcpy(&t->bits[t->lead + i], &v, 4); }
static float t_get(const tensor *t, size_t i) {
    float v;
    memcpy(&v, &t->bits[t->lead + i], 4);
    return v;
}
static void t_normal(tensor *t, float scale, float shift) {
    for (size_t i = 0; i < t->n; i++) t_set(t, i, shift + scale * normal());
}

static void t_upload(const tensor *t) {
    rc_view whole = {t->buf, 0};
    rc_status st = dev->upload(dev, whole, t->bits, t->total);
    CHECK(st == RC_OK, "%s upload: %s", dev_name, rc_last_error());
}

/* The whole buffer as the device holds it (NaN where the download failed). */
static uint32_t *t_download(const tensor *t) {
    uint32_t *got = xmalloc(t->total * sizeof(uint32_t));
    rc_view whole = {t->buf, 0};
    rc_status st = dev->download(dev, got, whole, t->total);
    CHECK(st == RC_OK, "%s download: %s", dev_name, rc_last_error());
    if (st != RC_OK) memset(got, 0xff, t->total * sizeof(uint32_t));
    return got;
}

static void sync_ok(const char *op) {
    rc_status st = dev->sync(dev);
    CHECK(st == RC_OK, "%s: %s sync: %s", op, dev_name, rc_last_error());
}

/* ---------------------------------------------------------------- checks */

typedef struct {
    char line[400];
    int failed_before;
} report;

static report report_begin(const char *op, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static report report_begin(const char *op, const char *fmt, ...) {
    report r;
    char shape[160];
    va_list args;
    va_start(args, fmt);
    vsnprintf(shape, sizeof shape, fmt, args);
    va_end(args);
    snprintf(r.line, sizeof r.line, "%-7s %-20s %-38s", dev_name, op, shape);
    r.failed_before = test_checks_failed;
    return r;
}

static void report_end(const report *r) {
    printf("%s %s\n", r->line, test_checks_failed > r->failed_before ? "FAIL" : "ok");
    fflush(stdout);
}

/* An input: bit-for-bit as uploaded, sentinels included. */
static void check_unchanged(const char *what, const tensor *t) {
    uint32_t *got = t_download(t);
    size_t bad = 0;
    for (size_t i = 0; i < t->total; i++) bad += got[i] != t->bits[i];
    CHECK(bad == 0, "input %s changed on %s (%zu elements)", what, dev_name, bad);
    free(got);
}

/* An output against its exact reference ref[0..n): elements outside the
 * region (and inside it where `skip` says so: gaps between strided rows)
 * must keep their bits; the rest must be finite and within `tol` in NMSE.
 * Afterwards t->bits holds what was downloaded. */
static void check_output(report *r, const char *what, tensor *t, const double *ref, double tol,
                         int (*skip)(size_t i, const void *shape), const void *shape) {
    uint32_t *got = t_download(t);
    size_t moved = 0, nonfinite = 0;
    double err = 0.0, norm = 0.0, worst = 0.0;
    for (size_t i = 0; i < t->total; i++) {
        int outside = i < t->lead || i >= t->lead + t->n;
        if (outside || (skip && skip(i - t->lead, shape))) {
            moved += got[i] != t->bits[i];
            continue;
        }
        float v;
        memcpy(&v, &got[i], 4);
        if (!isfinite(v)) {
            nonfinite++;
            continue;
        }
        double d = ref[i - t->lead] - (double)v;
        err += d * d;
        norm += ref[i - t->lead] * ref[i - t->lead];
        if (fabs(d) > worst) worst = fabs(d);
    }
    double nmse = norm > 0.0 ? err / norm : (err == 0.0 ? 0.0 : INFINITY);
    CHECK(moved == 0, "%s on %s: %zu elements outside the output overwritten", what, dev_name,
          moved);
    CHECK(nonfinite == 0, "%s: %zu of %zu %s outputs are not finite", what, nonfinite, t->n,
          dev_name);
    CHECK(nmse <= tol, "%s: NMSE %.3g exceeds %.3g (max |diff| %.3g)", what, nmse, tol, worst);
    size_t used = strlen(r->line);
    snprintf(r->line + used, sizeof r->line - used, " %s=%.2g", what, nmse);
    memcpy(t->bits, got, t->total * sizeof(uint32_t));
    free(got);
}

/* A rerun from the same inputs must leave the same bits as the first run. */
static void check_repeatable(const char *what, const tensor *t, const uint32_t *first) {
    sync_ok(what);
    uint32_t *got = t_download(t);
    size_t differ = 0;
    for (size_t i = 0; i < t->total; i++) differ += got[i] != first[i];
    CHECK(differ == 0, "%s: a second run on %s differs in %zu elements", what, dev_name, differ);
    free(got);
}

static double *ref_new(size_t n) { return xmalloc(n * sizeof(double)); }

/* --------------------------------------------------------------- RMSNorm */

static void rmsnorm_case(int N, int C, int affine, float eps, float shift) {
    size_t n = (size_t)N * (size_t)C;
    tensor inp = t_new(n), out = t_new(n), rstd = t_new((size_t)N), w = t_new((size_t)C);
    t_normal(&inp, 2.0f, shift);
    if (N > 2) /* an all-zero row: rstd = 1/sqrt(eps), output 0 */
        for (int c = 0; c < C; c++) t_set(&inp, (size_t)C + (size_t)c, 0.0f);
    t_normal(&w, 0.5f, 1.0f);
    t_upload(&inp);
    t_upload(&out);
    t_upload(&rstd);
    t_upload(&w);

    /* exact reference from the float inputs */
    double *ref_out = ref_new(n), *ref_rstd = ref_new((size_t)N);
    for (int r = 0; r < N; r++) {
        double sq = 0.0;
        for (int c = 0; c < C; c++) {
            double x = t_get(&inp, (size_t)r * C + c);
            sq += x * x;
        }
        ref_rstd[r] = 1.0 / sqrt(sq / C + (double)eps);
        for (int c = 0; c < C; c++) {
            double y = t_get(&inp, (size_t)r * C + c) * ref_rstd[r];
            ref_out[(size_t)r * C + c] = affine ? y * t_get(&w, (size_t)c) : y;
        }
    }

    report rep = report_begin("rmsnorm_forward", "N=%d C=%d affine=%d shift=%g", N, C, affine,
                              (double)shift);
    dev->rmsnorm_forward(dev, V(&out), V(&rstd), V(&inp), affine ? V(&w) : ABSENT, N, C, eps);
    sync_ok("rmsnorm_forward");
    /* measured on PoCL: out 2.4e-15, rstd 1.7e-15 */
    check_output(&rep, "out", &out, ref_out, TOL_ROUNDING, NULL, NULL);
    check_output(&rep, "rstd", &rstd, ref_rstd, TOL_ROUNDING, NULL, NULL);
    check_unchanged("inp", &inp);
    check_unchanged("weight", &w);
    report_end(&rep);

    /* in place, without saving rstd (inference) */
    tensor inplace = t_new(n);
    memcpy(inplace.bits + inplace.lead, inp.bits + inp.lead, n * sizeof(uint32_t));
    t_upload(&inplace);
    rep = report_begin("rmsnorm_forward", "N=%d C=%d affine=%d in-place", N, C, affine);
    dev->rmsnorm_forward(dev, V(&inplace), ABSENT, V(&inplace), affine ? V(&w) : ABSENT, N, C,
                         eps);
    sync_ok("rmsnorm_forward");
    check_output(&rep, "out", &inplace, ref_out, TOL_ROUNDING, NULL, NULL);
    report_end(&rep);
    t_free(&inplace);

    /* backward from the device's rstd, accumulating onto random gradients */
    tensor dout = t_new(n), dinp = t_new(n), dw = t_new((size_t)C);
    t_normal(&dout, 1.0f, 0.0f);
    t_normal(&dinp, 0.5f, 0.0f);
    t_normal(&dw, 0.5f, 0.0f);
    t_upload(&dout);
    t_upload(&dinp);
    t_upload(&dw);
    double *ref_dinp = ref_new(n), *ref_dw = ref_new((size_t)C);
    for (int c = 0; c < C; c++) ref_dw[c] = t_get(&dw, (size_t)c);
    for (int r = 0; r < N; r++) {
        const double s = t_get(&rstd, (size_t)r);
        double sum_g_xhat = 0.0;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            double g = (double)t_get(&dout, i) * (affine ? t_get(&w, (size_t)c) : 1.0f);
            sum_g_xhat += g * (t_get(&inp, i) * s);
        }
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            double g = (double)t_get(&dout, i) * (affine ? t_get(&w, (size_t)c) : 1.0f);
            double xhat = t_get(&inp, i) * s;
            ref_dinp[i] = t_get(&dinp, i) + s * (g - xhat * (sum_g_xhat / C));
            ref_dw[c] += t_get(&dout, i) * xhat;
        }
    }
    uint32_t *dinp_init = xmalloc(dinp.total * sizeof(uint32_t));
    uint32_t *dw_init = xmalloc(dw.total * sizeof(uint32_t));
    memcpy(dinp_init, dinp.bits, dinp.total * sizeof(uint32_t));
    memcpy(dw_init, dw.bits, dw.total * sizeof(uint32_t));

    rep = report_begin("rmsnorm_backward", "N=%d C=%d affine=%d", N, C, affine);
    dev->rmsnorm_backward(dev, V(&dinp), affine ? V(&dw) : ABSENT, V(&dout), V(&inp),
                          affine ? V(&w) : ABSENT, V(&rstd), N, C);
    sync_ok("rmsnorm_backward");
    /* measured on PoCL: dinp 5.1e-15, dweight 8.3e-15 (both at N = C = 1) */
    check_output(&rep, "dinp", &dinp, ref_dinp, TOL_ROUNDING, NULL, NULL);
    if (affine) check_output(&rep, "dweight", &dw, ref_dw, TOL_ROUNDING, NULL, NULL);
    else check_unchanged("dweight (absent)", &dw);
    check_unchanged("dout", &dout);
    check_unchanged("rstd", &rstd);
    report_end(&rep);

    /* the same inputs again: the same bits (fixed reduction orders) */
    rc_view whole_dinp = {dinp.buf, 0}, whole_dw = {dw.buf, 0};
    CHECK(dev->upload(dev, whole_dinp, dinp_init, dinp.total) == RC_OK, "upload: %s",
          rc_last_error());
    CHECK(dev->upload(dev, whole_dw, dw_init, dw.total) == RC_OK, "upload: %s", rc_last_error());
    dev->rmsnorm_backward(dev, V(&dinp), affine ? V(&dw) : ABSENT, V(&dout), V(&inp),
                          affine ? V(&w) : ABSENT, V(&rstd), N, C);
    check_repeatable("rmsnorm_backward dinp", &dinp, dinp.bits);
    check_repeatable("rmsnorm_backward dweight", &dw, dw.bits);

    /* dinp absent: the weight gradient alone, the same bits again */
    if (affine) {
        CHECK(dev->upload(dev, whole_dw, dw_init, dw.total) == RC_OK, "upload: %s",
              rc_last_error());
        dev->rmsnorm_backward(dev, ABSENT, V(&dw), V(&dout), V(&inp), V(&w), V(&rstd), N, C);
        check_repeatable("rmsnorm_backward dweight without dinp", &dw, dw.bits);
        check_unchanged("dinp (absent)", &dinp);
    }

    free(dinp_init);
    free(dw_init);
    free(ref_out);
    free(ref_rstd);
    free(ref_dinp);
    free(ref_dw);
    t_free(&inp);
    t_free(&out);
    t_free(&rstd);
    t_free(&w);
    t_free(&dout);
    t_free(&dinp);
    t_free(&dw);
}

static void test_rmsnorm(void) {
    rmsnorm_case(1, 1, 1, 1e-6f, 0.0f);
    rmsnorm_case(3, 7, 1, 1e-5f, 0.0f);
    rmsnorm_case(4, 13, 0, 1e-6f, 0.0f);
    rmsnorm_case(130, 64, 1, 1e-6f, 0.0f); /* Qwen3's q/k norm: rows x heads of head_dim */
    rmsnorm_case(67, 576, 1, 1e-5f, 0.0f); /* SmolLM2-135M's width */
    rmsnorm_case(5, 1031, 1, 1e-6f, 300.0f); /* large mean: squares near 1e5 */
    rmsnorm_case(300, 33, 1, 1e-6f, 0.0f);  /* several row chunks of the weight gradient */
}

/* ------------------------------------------------------------------ rope */

typedef struct {
    int ld, width;
} row_shape;

/* Elements between rows of a strided matrix are not part of it. */
static int in_row_gap(size_t i, const void *shape) {
    const row_shape *s = shape;
    return (int)(i % (size_t)s->ld) >= s->width;
}

/* cos/sin tables [P, D/2] as HF builds them (theta^(-2i/D) frequencies),
 * rounded to float once. */
static void fill_tables(tensor *cos_t, tensor *sin_t, int P, int D, double theta) {
    for (int p = 0; p < P; p++)
        for (int i = 0; i < D / 2; i++) {
            double angle = p * pow(theta, -2.0 * i / D);
            t_set(cos_t, (size_t)p * (D / 2) + i, (float)cos(angle));
            t_set(sin_t, (size_t)p * (D / 2) + i, (float)sin(angle));
        }
}

/* x rotated (sign -1: inverse) at the given positions, exactly. */
static void rope_reference(double *ref, const tensor *x, const tensor *pos, const tensor *cos_t,
                           const tensor *sin_t, int N, int H, int D, int ld, int sign) {
    int half = D / 2;
    for (size_t i = 0; i < x->n; i++) ref[i] = t_get(x, i); /* gaps: ignored */
    for (int r = 0; r < N; r++) {
        int32_t p;
        memcpy(&p, &pos->bits[pos->lead + (size_t)r], 4);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < half; i++) {
                size_t a_at = (size_t)r * ld + (size_t)h * D + i, b_at = a_at + half;
                double c = t_get(cos_t, (size_t)p * half + i);
                double s = sign * (double)t_get(sin_t, (size_t)p * half + i);
                double a = t_get(x, a_at), b = t_get(x, b_at);
                ref[a_at] = a * c - b * s;
                ref[b_at] = b * c + a * s;
            }
    }
}

static void rope_case(int N, int H, int D, int pad, int P) {
    int ld = H * D + pad;
    size_t n = (size_t)(N - 1) * ld + (size_t)H * D;
    tensor x = t_new(n), pos = t_new((size_t)N);
    tensor cos_t = t_new((size_t)P * (D / 2)), sin_t = t_new((size_t)P * (D / 2));
    for (int r = 0; r < N; r++)
        for (int c = 0; c < H * D; c++) t_set(&x, (size_t)r * ld + c, normal());
    for (int r = 0; r < N; r++) t_set_int(&pos, (size_t)r, r == N - 1 ? P - 1 : below(P));
    fill_tables(&cos_t, &sin_t, P, D, 10000.0);
    t_upload(&x);
    t_upload(&pos);
    t_upload(&cos_t);
    t_upload(&sin_t);
    row_shape shape = {ld, H * D};
    double *ref = ref_new(n);

    rope_reference(ref, &x, &pos, &cos_t, &sin_t, N, H, D, ld, 1);
    report rep = report_begin("rope", "N=%d H=%d D=%d ld=%d P=%d", N, H, D, ld, P);
    dev->rope(dev, V(&x), ld, V(&pos), V(&cos_t), V(&sin_t), N, H, D, 0);
    sync_ok("rope");
    /* measured on PoCL: 1.5e-15 */
    check_output(&rep, "x", &x, ref, TOL_ROUNDING, in_row_gap, &shape);
    check_unchanged("positions", &pos);
    check_unchanged("cos_table", &cos_t);
    check_unchanged("sin_table", &sin_t);
    report_end(&rep);

    /* the inverse, on the rotated values: exact inverse rotation of them,
     * and (the tables being rounded) close to where x started */
    rope_reference(ref, &x, &pos, &cos_t, &sin_t, N, H, D, ld, -1);
    rep = report_begin("rope", "N=%d H=%d D=%d ld=%d inverse", N, H, D, ld);
    dev->rope(dev, V(&x), ld, V(&pos), V(&cos_t), V(&sin_t), N, H, D, 1);
    sync_ok("rope");
    check_output(&rep, "x", &x, ref, TOL_ROUNDING, in_row_gap, &shape);
    report_end(&rep);

    free(ref);
    t_free(&x);
    t_free(&pos);
    t_free(&cos_t);
    t_free(&sin_t);
}

/* A position outside the tables is an error at sync naming the op, and
 * leaves its row alone; an odd head width is refused. (Negative here: a
 * device sees only buffers, so rows the buffer holds past the table's end,
 * our guards, count as the table's, as they do for embedding ids.) */
static void rope_misuse(void) {
    int N = 3, H = 2, D = 4, P = 5;
    tensor x = t_new((size_t)N * H * D), pos = t_new((size_t)N);
    tensor cos_t = t_new((size_t)P * (D / 2)), sin_t = t_new((size_t)P * (D / 2));
    t_normal(&x, 1.0f, 0.0f);
    t_set_int(&pos, 0, 1);
    t_set_int(&pos, 1, -1);
    t_set_int(&pos, 2, 2);
    fill_tables(&cos_t, &sin_t, P, D, 10000.0);
    t_upload(&x);
    t_upload(&pos);
    t_upload(&cos_t);
    t_upload(&sin_t);
    report rep = report_begin("rope", "position -1, then D=3");
    dev->rope(dev, V(&x), H * D, V(&pos), V(&cos_t), V(&sin_t), N, H, D, 0);
    rc_status st = dev->sync(dev);
    const char *message = rc_last_error();
    CHECK(st == RC_ERR_INVALID_ARG, "rope with a bad position: status %d, expected %d", (int)st,
          (int)RC_ERR_INVALID_ARG);
    CHECK(st != RC_OK && strstr(message, "rope") && strstr(message, "positions"),
          "rope with a bad position: the message should name rope and positions: %s", message);
    uint32_t *got = t_download(&x);
    size_t moved = 0;
    for (int c = 0; c < H * D; c++)
        moved += got[x.lead + (size_t)H * D + c] != x.bits[x.lead + (size_t)H * D + c];
    CHECK(moved == 0, "rope: the row with a bad position changed (%zu elements)", moved);
    free(got);
    CHECK(dev->sync(dev) == RC_OK, "rope: the error should be reported once: %s", rc_last_error());

    dev->rope(dev, V(&x), H * D, V(&pos), V(&cos_t), V(&sin_t), N, H, 3, 0);
    st = dev->sync(dev);
    CHECK(st == RC_ERR_INVALID_ARG, "rope with D = 3: status %d, expected %d", (int)st,
          (int)RC_ERR_INVALID_ARG);
    report_end(&rep);
    t_free(&x);
    t_free(&pos);
    t_free(&cos_t);
    t_free(&sin_t);
}

static void test_rope(void) {
    rope_case(1, 1, 2, 0, 1);
    rope_case(7, 3, 8, 5, 11);
    rope_case(37, 9, 64, 0, 64);      /* SmolLM2-135M: 9 heads of 64 */
    rope_case(33, 2, 128, 2 * 128, 40); /* the k part of a fused qkv row: ld past the heads */
    rope_case(300, 1, 6, 1, 301);
    rope_misuse();
}

/* -------------------------------------------- activations and gated MLPs */

static double act_exact(rc_activation kind, double x) {
    switch (kind) {
    case RC_ACT_RELU: return x > 0.0 ? x : 0.0;
    case RC_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case RC_ACT_GELU_TANH: {
        double u = sqrt(2.0 / 3.141592653589793) * (x + 0.044715 * x * x * x);
        return 0.5 * x * (1.0 + tanh(u));
    }
    case RC_ACT_SILU: return x / (1.0 + exp(-x));
    }
    return NAN;
}

static double act_slope_exact(rc_activation kind, double x) {
    switch (kind) {
    case RC_ACT_RELU: return x > 0.0 ? 1.0 : 0.0;
    case RC_ACT_GELU:
        return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * 3.141592653589793);
    case RC_ACT_GELU_TANH: {
        double k = sqrt(2.0 / 3.141592653589793);
        double t = tanh(k * (x + 0.044715 * x * x * x));
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case RC_ACT_SILU: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 + x * (1.0 - s));
    }
    }
    return NAN;
}

static const char *act_name(rc_activation kind) {
    static const char *const names[] = {"relu", "gelu", "gelu_tanh", "silu"};
    return names[kind];
}

/* SiLU through the plain activation ops (the others are in test_backend_ops). */
static void silu_case(size_t n) {
    tensor inp = t_new(n), out = t_new(n), dinp = t_new(n), dout = t_new(n);
    t_normal(&inp, 4.0f, 0.0f);
    if (n > 3) {
        t_set(&inp, 0, -100.0f); /* e^-x overflows: silu is -0, its slope 0 */
        t_set(&inp, 1, 100.0f);
        t_set(&inp, 2, 0.0f);
    }
    t_normal(&dinp, 1.0f, 0.0f);
    t_normal(&dout, 1.0f, 0.0f);
    t_upload(&inp);
    t_upload(&out);
    t_upload(&dinp);
    t_upload(&dout);
    double *ref = ref_new(n);

    for (size_t i = 0; i < n; i++) ref[i] = act_exact(RC_ACT_SILU, t_get(&inp, i));
    report rep = report_begin("activation_forward", "silu n=%zu", n);
    dev->activation_forward(dev, RC_ACT_SILU, V(&out), V(&inp), n);
    sync_ok("activation_forward");
    check_output(&rep, "out", &out, ref, TOL_TRANSCENDENTAL, NULL, NULL);
    check_unchanged("inp", &inp);
    report_end(&rep);

    for (size_t i = 0; i < n; i++)
        ref[i] = t_get(&dinp, i) + act_slope_exact(RC_ACT_SILU, t_get(&inp, i)) * t_get(&dout, i);
    rep = report_begin("activation_backward", "silu n=%zu", n);
    dev->activation_backward(dev, RC_ACT_SILU, V(&dinp), V(&dout), V(&inp), n);
    sync_ok("activation_backward");
    check_output(&rep, "dinp", &dinp, ref, TOL_TRANSCENDENTAL, NULL, NULL);
    check_unchanged("dout", &dout);
    report_end(&rep);

    for (size_t i = 0; i < n; i++) ref[i] = act_exact(RC_ACT_SILU, t_get(&inp, i));
    rep = report_begin("activation_forward", "silu n=%zu in-place", n);
    dev->activation_forward(dev, RC_ACT_SILU, V(&inp), V(&inp), n);
    sync_ok("activation_forward");
    check_output(&rep, "out", &inp, ref, TOL_TRANSCENDENTAL, NULL, NULL);
    report_end(&rep);

    free(ref);
    t_free(&inp);
    t_free(&out);
    t_free(&dinp);
    t_free(&dout);
}

static void gated_case(rc_activation kind, size_t n) {
    double tol = kind == RC_ACT_RELU ? TOL_ROUNDING : TOL_TRANSCENDENTAL;
    tensor gate = t_new(n), up = t_new(n), out = t_new(n);
    tensor dout = t_new(n), dgate = t_new(n), dup = t_new(n);
    t_normal(&gate, 3.0f, 0.0f);
    if (n > 2) t_set(&gate, n / 2, 0.0f); /* relu'(0) = 0, as in torch */
    if (n == 1) t_set(&gate, 0, 0.7f);    /* a lone deep-tail gate has a reference of 0 */
    t_normal(&up, 1.5f, 0.0f);
    t_normal(&dout, 1.0f, 0.0f);
    t_normal(&dgate, 0.5f, 0.0f);
    t_normal(&dup, 0.5f, 0.0f);
    t_upload(&gate);
    t_upload(&up);
    t_upload(&out);
    t_upload(&dout);
    t_upload(&dgate);
    t_upload(&dup);
    double *ref = ref_new(n), *ref_up = ref_new(n);

    for (size_t i = 0; i < n; i++)
        ref[i] = act_exact(kind, t_get(&gate, i)) * (double)t_get(&up, i);
    report rep = report_begin("gated_forward", "%s n=%zu", act_name(kind), n);
    dev->gated_forward(dev, kind, V(&out), V(&gate), V(&up), n);
    sync_ok("gated_forward");
    check_output(&rep, "out", &out, ref, tol, NULL, NULL);
    check_unchanged("gate", &gate);
    check_unchanged("up", &up);
    report_end(&rep);

    for (size_t i = 0; i < n; i++) {
        double g = t_get(&gate, i), u = t_get(&up, i), dy = t_get(&dout, i);
        ref[i] = t_get(&dgate, i) + act_slope_exact(kind, g) * u * dy;
        ref_up[i] = t_get(&dup, i) + act_exact(kind, g) * dy;
    }
    rep = report_begin("gated_backward", "%s n=%zu", act_name(kind), n);
    dev->gated_backward(dev, kind, V(&dgate), V(&dup), V(&dout), V(&gate), V(&up), n);
    sync_ok("gated_backward");
    check_output(&rep, "dgate", &dgate, ref, tol, NULL, NULL);
    check_output(&rep, "dup", &dup, ref_up, tol, NULL, NULL);
    check_unchanged("dout", &dout);
    check_unchanged("gate", &gate);
    check_unchanged("up", &up);
    report_end(&rep);

    /* out aliasing up, as the MLP does to save a buffer */
    for (size_t i = 0; i < n; i++)
        ref[i] = act_exact(kind, t_get(&gate, i)) * (double)t_get(&up, i);
    rep = report_begin("gated_forward", "%s n=%zu out=up", act_name(kind), n);
    dev->gated_forward(dev, kind, V(&up), V(&gate), V(&up), n);
    sync_ok("gated_forward");
    check_output(&rep, "out", &up, ref, tol, NULL, NULL);
    report_end(&rep);

    free(ref);
    free(ref_up);
    t_free(&gate);
    t_free(&up);
    t_free(&out);
    t_free(&dout);
    t_free(&dgate);
    t_free(&dup);
}

static void test_activations(void) {
    static const size_t sizes[] = {1, 13, 1009, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        silu_case(sizes[s]);
        for (int k = 0; k <= RC_ACT_SILU; k++) gated_case((rc_activation)k, sizes[s]);
    }
}

/* ------------------------------------------------------------------- main */

/* Counted apart from the backend, so that a backend failing to start on a
 * machine with a device is a failure, not a skip. -1: unknown. */
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
    if (!list || !*list) return strcmp(name, "cpu") != 0;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == '\0' || p[len] == ',')) return 1;
    return 0;
}

int main(void) {
    const char *candidates[] = {
        "cpu", /* only when REWARDC_BACKENDS names it */
#ifdef RC_HAVE_OPENCL
        "opencl",
#endif
#ifdef RC_HAVE_CUDA
        "cuda",
#endif
        NULL};
    int tested = 0;
    for (int c = 0; candidates[c]; c++) {
        if (!wanted(candidates[c])) {
            if (strcmp(candidates[c], "cpu") != 0)
                printf("%s: not in REWARDC_BACKENDS, skipped\n", candidates[c]);
            continue;
        }
        rc_status st = rc_backend_create(candidates[c], 0, &dev);
        if (st != RC_OK) {
            int present = devices_present(candidates[c]);
            CHECK(present <= 0, "%s: %d device(s) present but the backend failed to start: %s",
                  candidates[c], present, rc_last_error());
            printf("%s: no usable device, skipped: %s\n", candidates[c], rc_last_error());
            continue;
        }
        dev_name = candidates[c];
        printf("%s: %s against a double-precision host reference\n", dev_name, dev->device);
        if (!dev->rmsnorm_forward || !dev->rmsnorm_backward || !dev->rope ||
            !dev->gated_forward || !dev->gated_backward) {
            CHECK(0, "%s: the family ops are missing from the op table", dev_name);
        } else {
            rng_state = 0x9e3779b97f4a7c15ull; /* the same inputs for every backend */
            test_rmsnorm();
            test_rope();
            test_activations();
        }
        rc_backend_destroy(dev);
        dev = NULL;
        tested++;
    }
    if (!tested && test_checks_failed == 0) {
        printf("test_backend_ops_families: no device backend to test (%s); skipped\n",
               candidates[1] ? "none has a usable device"
                             : "built without -DRC_OPENCL=ON or -DRC_CUDA=ON");
        return TEST_SKIP;
    }
    return test_finish("test_backend_ops_families");
}
