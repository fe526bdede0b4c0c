/* The CPU backend: host memory (one aligned allocation per buffer), the
 * sticky error slot that ops report into, and the op table that ties the
 * cpu_*.c kernels together. This backend is the reference the others are
 * checked against. */
#define _DEFAULT_SOURCE /* madvise's MADV_DONTNEED */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cpu_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* 64 bytes: a cache line, and enough for any SIMD load OpenBLAS issues. */
enum { CPU_ALIGNMENT = 64 };

static cpu_state *state_of(rc_backend *be) { return (cpu_state *)be->ctx; }

void cpu_record_error(rc_backend *be, rc_status code, const char *fmt, ...) {
    cpu_state *st = state_of(be);
    if (st->pending != RC_OK) return;
    st->pending = code;
    va_list args;
    va_start(args, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, args);
    va_end(args);
}

int cpu_view_fits(rc_backend *be, const char *op, const char *arg, rc_view v, size_t extent) {
    if (extent == 0) return 1;
    if (!v.buf) {
        cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: %s is absent but %zu elements are needed",
                         op, arg, extent);
        return 0;
    }
    if (v.offset > v.buf->n_elements || extent > v.buf->n_elements - v.offset) {
        cpu_record_error(be, RC_ERR_INVALID_ARG,
                         "cpu %s: %s needs %zu elements from offset %zu but its buffer holds %zu",
                         op, arg, extent, v.offset, v.buf->n_elements);
        return 0;
    }
    return 1;
}

int cpu_sizes_ok(rc_backend *be, const char *op, int a, int b, int c) {
    if (a >= 0 && b >= 0 && c >= 0) return 1;
    cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: negative size (%d, %d, %d)", op, a, b, c);
    return 0;
}

int cpu_queries_ok(rc_backend *be, const char *op, int Tq, int Tk) {
    if (Tq >= 0 && Tq <= Tk) return 1;
    cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: %d queries over %d keys", op, Tq, Tk);
    return 0;
}

/* Hands a remembered op failure to the caller (once) through rc_fail. */
static rc_status take_pending(rc_backend *be) {
    cpu_state *st = state_of(be);
    if (st->pending == RC_OK) return RC_OK;
    rc_status code = st->pending;
    st->pending = RC_OK;
    return rc_fail(code, "%s", st->message);
}

static rc_status cpu_alloc(rc_backend *be, size_t n_elements, rc_buffer **out) {
    (void)be;
    *out = NULL;
    /* Round the byte size up to the alignment (aligned_alloc requires a
     * multiple) and never ask for zero bytes. */
    const size_t max_elements = (SIZE_MAX - CPU_ALIGNMENT) / sizeof(float);
    if (n_elements > max_elements)
        return rc_fail(RC_ERR_OOM, "cpu alloc: %zu elements (4 bytes each) overflow size_t",
                       n_elements);
    size_t bytes = n_elements * sizeof(float);
    bytes = (bytes + CPU_ALIGNMENT - 1) / CPU_ALIGNMENT * CPU_ALIGNMENT;
    if (bytes == 0) bytes = CPU_ALIGNMENT;
    rc_buffer *buf = malloc(sizeof *buf);
    if (!buf) return rc_fail(RC_ERR_OOM, "cpu alloc: cannot allocate a buffer handle");
    buf->data = aligned_alloc(CPU_ALIGNMENT, bytes);
    if (!buf->data) {
        free(buf);
        return rc_fail(RC_ERR_OOM, "cpu alloc: cannot allocate %zu bytes (%zu elements)", bytes,
                       n_elements);
    }
    buf->n_elements = n_elements;
    *out = buf;
    return RC_OK;
}

/* Buffers are private anonymous memory (from malloc), where Linux's
 * MADV_DONTNEED frees whole pages and later reads see zeros: the pages inside
 * x are handed back, and the partial pages at its ends are cleared. */
static void cpu_fill_zero_sparse(rc_backend *be, rc_view x, size_t n) {
    if (!cpu_view_fits(be, "fill_zero_sparse", "x", x, n) || n == 0) return;
    char *begin = (char *)cpu_f32(x), *end = begin + n * sizeof(float);
#ifdef __linux__
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    char *first = (char *)(((uintptr_t)begin + page - 1) & ~(page - 1));
    char *last = (char *)((uintptr_t)end & ~(page - 1));
    if (first < last && madvise(first, (size_t)(last - first), MADV_DONTNEED) == 0) {
        memset(begin, 0, (size_t)(first - begin));
        memset(last, 0, (size_t)(end - last));
        return;
    }
#endif
    memset(begin, 0, (size_t)(end - begin));
}

static void cpu_free(rc_backend *be, rc_buffer *buf) {
    (void)be;
    if (!buf) return;
    free(buf->data);
    free(buf);
}

static rc_status check_transfer(const char *what, rc_view v, const void *host, size_t n) {
    if (n == 0) return RC_OK;
    if (!v.buf || !host)
        return rc_fail(RC_ERR_INVALID_ARG, "cpu %s: NULL buffer or host pointer (%zu elements)",
                       what, n);
    if (v.offset > v.buf->n_elements || n > v.buf->n_elements - v.offset)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "cpu %s: %zu elements from offset %zu exceed the buffer's %zu", what, n,
                       v.offset, v.buf->n_elements);
    return RC_OK;
}

static rc_status cpu_upload(rc_backend *be, rc_view dst, const void *src, size_t n_elements) {
    (void)be;
    rc_status st = check_transfer("upload", dst, src, n_elements);
    if (st != RC_OK) return st;
    if (n_elements) memcpy(cpu_f32(dst), src, n_elements * sizeof(float));
    return RC_OK;
}

static rc_status cpu_download(rc_backend *be, void *dst, rc_view src, size_t n_elements) {
    rc_status st = take_pending(be);
    if (st != RC_OK) return st;
    st = check_transfer("download", src, dst, n_elements);
    if (st != RC_OK) return st;
    if (n_elements) memcpy(dst, cpu_f32(src), n_elements * sizeof(float));
    return RC_OK;
}

static rc_status cpu_sync(rc_backend *be) { return take_pending(be); }

float *cpu_scratch(rc_backend *be, const char *op, size_t n) {
    cpu_state *st = state_of(be);
    if (n <= st->scratch_floats) return st->scratch;
    free(st->scratch);
    st->scratch = NULL;
    st->scratch_floats = 0;
    if (n > SIZE_MAX / sizeof(float) || !(st->scratch = malloc(n * sizeof(float)))) {
        cpu_record_error(be, RC_ERR_OOM, "cpu %s: cannot allocate %zu floats of scratch", op, n);
        return NULL;
    }
    st->scratch_floats = n;
    return st->scratch;
}

static void cpu_destroy(rc_backend *be) {
    if (!be) return;
    if (be->ctx) free(state_of(be)->scratch);
    free(be->ctx);
    free(be);
}

static void describe_device(rc_backend *be) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
#ifdef RC_HAVE_BLAS
    const char *gemm = "OpenBLAS sgemm";
#else
    const char *gemm = "built-in gemm";
#endif
    snprintf(be->device, sizeof be->device, "host CPU, %d thread%s, %s", threads,
             threads == 1 ? "" : "s", gemm);
}

rc_status rc_backend_cpu_create(rc_backend **out) {
    *out = NULL;
    rc_backend *be = calloc(1, sizeof *be);
    cpu_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        return rc_fail(RC_ERR_OOM, "cpu backend: cannot allocate %zu bytes of state",
                       sizeof *be + sizeof *st);
    }
    st->pending = RC_OK;
    be->name = "cpu";
    be->ctx = st;
    describe_device(be);

    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_upload;
    be->download = cpu_download;
    be->fill = cpu_fill;
    be->fill_zero_sparse = cpu_fill_zero_sparse;
    be->sync = cpu_sync;
    be->destroy = cpu_destroy;

    be->gemm = cpu_gemm;
    be->gemm_batched = cpu_gemm_batched;
    be->bias_forward = cpu_bias_forward;
    be->bias_backward = cpu_bias_backward;

    be->embedding_forward = cpu_embedding_forward;
    be->embedding_backward = cpu_embedding_backward;

    be->layernorm_forward = cpu_layernorm_forward;
    be->layernorm_backward = cpu_layernorm_backward;
    be->rmsnorm_forward = cpu_rmsnorm_forward;
    be->rmsnorm_backward = cpu_rmsnorm_backward;
    be->rope = cpu_rope;

    be->gated_forward = cpu_gated_forward;
    be->gated_backward = cpu_gated_backward;

    be->activation_forward = cpu_activation_forward;
    be->activation_backward = cpu_activation_backward;
    be->add = cpu_add;
    be->axpy = cpu_axpy;
    be->scale = cpu_scale;

    be->attention_softmax_forward = cpu_attention_softmax_forward;
    be->attention_softmax_backward = cpu_attention_softmax_backward;
    be->attention_forward = cpu_attention_forward;
    be->attention_backward = cpu_attention_backward;
    be->fused_attention_max_head_dim = CPU_FUSED_ATTENTION_MAX_HEAD_DIM;

    be->gather_rows = cpu_gather_rows;
    be->scatter_rows_add = cpu_scatter_rows_add;

    be->sum_squares = cpu_sum_squares;
    be->adamw = cpu_adamw;

    *out = be;
    return RC_OK;
}
