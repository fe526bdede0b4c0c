/* The CUDA backend's constructor, memory management, error state and op
 * table. Everything runs in order on one non-blocking stream; ops only queue
 * work. The first failure (a bad view, a launch error, an execution error,
 * an index outside a table) is kept, later ops are skipped, and the next
 * sync() or download() returns it and clears it -- as the CPU backend does.
 * An execution error that breaks the CUDA context keeps coming back from
 * every later wait, so it cannot be lost.
 *
 * Environment:
 *   REWARDC_CUDA_DEVICE=<i>  use device i whatever index the caller passed
 *   REWARDC_CUDA_SYNC=1      wait after every op, so an execution error names
 *                            the op that caused it (slow; for debugging) */
#include <cublas_v2.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#ifndef RC_CUDA_ARCHS
#define RC_CUDA_ARCHS "unknown"
#endif

static const size_t SCRATCH_GRANULE = (size_t)1 << 20;

void cuda_record_error(rc_backend *be, rc_status code, const char *fmt, ...) {
    cuda_state *st = cuda_state_of(be);
    if (st->pending != RC_OK) return; /* later failures are usually consequences */
    va_list args;
    va_start(args, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, args);
    va_end(args);
    st->pending = code;
}

/* Reads the device flag raised by the row kernels and rope (kernels_rows.cu,
 * kernels_rope.cu). */
static void check_index_flag(rc_backend *be) {
    cuda_state *st = cuda_state_of(be);
    int flag[4] = {0, 0, 0, 0};
    cudaError_t e = cudaMemcpyAsync(flag, st->flag, sizeof flag, cudaMemcpyDeviceToHost,
                                    st->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cuda_record_error(be, RC_ERR_BACKEND, "cuda: reading the index-check flag failed: %s",
                          cudaGetErrorString(e));
        return;
    }
    const char *op = NULL, *arg = "ids";
    switch (flag[0]) {
    case CUDA_FLAG_NONE: return;
    case CUDA_FLAG_EMBEDDING_FORWARD: op = "embedding_forward"; break;
    case CUDA_FLAG_EMBEDDING_BACKWARD: op = "embedding_backward"; break;
    case CUDA_FLAG_GATHER_ROWS: op = "gather_rows", arg = "rows"; break;
    case CUDA_FLAG_SCATTER_ROWS_ADD: op = "scatter_rows_add", arg = "rows"; break;
    case CUDA_FLAG_ROPE: op = "rope", arg = "positions"; break;
    default: op = "a row op"; break;
    }
    cuda_record_error(be, RC_ERR_INVALID_ARG, "%s: %s[%d] = %d is outside the table's %d rows",
                      op, arg, flag[1], flag[2], flag[3]);
    /* Reported once, like every other failure; later ops start clean. */
    e = cudaMemsetAsync(st->flag, 0, 4 * sizeof(int), st->stream);
    if (e != cudaSuccess) (void)cudaGetLastError();
}

/* Waits for the stream; an execution error is recorded with the last op. */
static void wait_stream(rc_backend *be, const char *where) {
    cuda_state *st = cuda_state_of(be);
    const cudaError_t e = cudaStreamSynchronize(st->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cuda_record_error(be, RC_ERR_BACKEND,
                          "cuda: %s (reported at %s; last op queued: %s; rerun with "
                          "REWARDC_CUDA_SYNC=1 to name the failing op)",
                          cudaGetErrorString(e), where, st->last_op ? st->last_op : "none");
        return;
    }
    check_index_flag(be);
}

/* Returns the recorded failure, if any, and clears it. */
static rc_status take_pending(rc_backend *be) {
    cuda_state *st = cuda_state_of(be);
    if (st->pending == RC_OK) return RC_OK;
    const rc_status code = st->pending;
    st->pending = RC_OK;
    return rc_fail(code, "%s", st->message);
}

/* Transfers check their views directly: the caller gets the error now. */
static rc_status check_transfer(const char *what, rc_view v, const void *host, size_t n) {
    if (!v.buf || !host)
        return rc_fail(RC_ERR_INVALID_ARG, "cuda %s: NULL buffer or host pointer (%zu elements)",
                       what, n);
    if (v.offset > v.buf->n_elements || n > v.buf->n_elements - v.offset)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "cuda %s: %zu elements from offset %zu exceed the buffer's %zu", what, n,
                       v.offset, v.buf->n_elements);
    return RC_OK;
}

void cuda_after_launch(rc_backend *be, const char *op, cudaError_t launch_status) {
    cuda_state *st = cuda_state_of(be);
    st->last_op = op;
    if (launch_status != cudaSuccess) {
        (void)cudaGetLastError();
        cuda_record_error(be, RC_ERR_BACKEND, "%s: kernel launch failed: %s", op,
                          cudaGetErrorString(launch_status));
        return;
    }
    if (st->sync_each) {
        const cudaError_t e = cudaStreamSynchronize(st->stream);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            cuda_record_error(be, RC_ERR_BACKEND, "%s: %s", op, cudaGetErrorString(e));
            return;
        }
        check_index_flag(be);
    }
}

int cuda_view_fits(rc_backend *be, const char *op, const char *arg, rc_view v, size_t extent) {
    if (extent == 0) return 1;
    if (!v.buf) {
        cuda_record_error(be, RC_ERR_INVALID_ARG, "%s: %s is absent but %zu elements are needed",
                          op, arg, extent);
        return 0;
    }
    if (v.offset > v.buf->n_elements || extent > v.buf->n_elements - v.offset) {
        cuda_record_error(be, RC_ERR_INVALID_ARG,
                          "%s: %s needs %zu elements from offset %zu but its buffer holds %zu",
                          op, arg, extent, v.offset, v.buf->n_elements);
        return 0;
    }
    return 1;
}

int cuda_sizes_ok(rc_backend *be, const char *op, long long a, long long b, long long c) {
    if (a >= 0 && b >= 0 && c >= 0) return 1;
    cuda_record_error(be, RC_ERR_INVALID_ARG, "%s: negative size (%lld, %lld, %lld)", op, a, b, c);
    return 0;
}

void *cuda_scratch(rc_backend *be, size_t bytes, const char *op) {
    cuda_state *st = cuda_state_of(be);
    if (bytes <= st->scratch_bytes) return st->scratch;
    /* Kernels already queued may still read the old scratch. */
    wait_stream(be, op);
    if (st->pending != RC_OK) return NULL;
    if (st->scratch) cudaFree(st->scratch);
    st->scratch = NULL;
    st->scratch_bytes = 0;
    const size_t rounded = (bytes + SCRATCH_GRANULE - 1) / SCRATCH_GRANULE * SCRATCH_GRANULE;
    const cudaError_t e = cudaMalloc(&st->scratch, rounded);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        st->scratch = NULL;
        cuda_record_error(be, e == cudaErrorMemoryAllocation ? RC_ERR_OOM : RC_ERR_BACKEND,
                          "%s: cannot allocate %zu bytes of device scratch: %s", op, rounded,
                          cudaGetErrorString(e));
        return NULL;
    }
    st->scratch_bytes = rounded;
    return st->scratch;
}

/* ---- memory ---- */

static rc_status cuda_alloc(rc_backend *be, size_t n_elements, rc_buffer **out) {
    *out = NULL;
    if (n_elements > ((size_t)-1) / 4)
        return rc_fail(RC_ERR_OOM, "cuda alloc: %zu elements overflow a byte count", n_elements);
    rc_buffer *buf = malloc(sizeof *buf);
    if (!buf) return rc_fail(RC_ERR_OOM, "cuda alloc: out of host memory for a buffer handle");
    /* A zero-element buffer still gets a real allocation so views stay valid. */
    const size_t bytes = (n_elements ? n_elements : 1) * 4;
    const cudaError_t e = cudaMalloc((void **)&buf->data, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        free(buf);
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
        return rc_fail(e == cudaErrorMemoryAllocation ? RC_ERR_OOM : RC_ERR_BACKEND,
                       "cuda alloc of %zu bytes (%zu elements) failed: %s (%.1f MiB free of "
                       "%.1f MiB on %s)",
                       bytes, n_elements, cudaGetErrorString(e), free_bytes / 1048576.0,
                       total_bytes / 1048576.0, be->device);
    }
    buf->n_elements = n_elements;
    *out = buf;
    return RC_OK;
}

static void cuda_free_buffer(rc_backend *be, rc_buffer *buf) {
    if (!buf) return;
    cuda_state *st = cuda_state_of(be);
    /* Queued kernels may still use it. */
    if (cudaStreamSynchronize(st->stream) != cudaSuccess) (void)cudaGetLastError();
    if (cudaFree(buf->data) != cudaSuccess) (void)cudaGetLastError();
    free(buf);
}

static rc_status cuda_upload(rc_backend *be, rc_view dst, const void *src, size_t n) {
    if (n == 0) return RC_OK;
    rc_status rc = check_transfer("upload", dst, src, n);
    if (rc != RC_OK) return rc;
    cuda_state *st = cuda_state_of(be);
    cudaError_t e = cudaMemcpyAsync(cuda_f32(dst), src, n * 4, cudaMemcpyHostToDevice,
                                    st->stream);
    /* The caller may reuse src as soon as we return. */
    if (e == cudaSuccess) e = cudaStreamSynchronize(st->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rc_fail(RC_ERR_BACKEND, "cuda upload of %zu elements: %s (last op queued: %s)", n,
                       cudaGetErrorString(e), st->last_op ? st->last_op : "none");
    }
    return RC_OK;
}

static rc_status cuda_download(rc_backend *be, void *dst, rc_view src, size_t n) {
    rc_status rc = take_pending(be);
    if (rc != RC_OK) return rc;
    if (n == 0) return RC_OK;
    rc = check_transfer("download", src, dst, n);
    if (rc != RC_OK) return rc;
    cuda_state *st = cuda_state_of(be);
    cudaError_t e = cudaMemcpyAsync(dst, cuda_f32(src), n * 4, cudaMemcpyDeviceToHost,
                                    st->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rc_fail(RC_ERR_BACKEND, "cuda download of %zu elements: %s (last op queued: %s)",
                       n, cudaGetErrorString(e), st->last_op ? st->last_op : "none");
    }
    wait_stream(be, "download");
    return take_pending(be);
}

static rc_status cuda_sync(rc_backend *be) {
    rc_status rc = take_pending(be);
    if (rc != RC_OK) return rc;
    wait_stream(be, "sync");
    return take_pending(be);
}

/* ---- lifetime ---- */

static void release_state(rc_backend *be) {
    cuda_state *st = cuda_state_of(be);
    if (st) {
        if (st->stream && cudaStreamSynchronize(st->stream) != cudaSuccess)
            (void)cudaGetLastError();
        if (st->scratch) cudaFree(st->scratch);
        if (st->reduce) cudaFree(st->reduce);
        if (st->flag) cudaFree(st->flag);
        if (st->blas) cublasDestroy((cublasHandle_t)st->blas);
        if (st->stream) cudaStreamDestroy(st->stream);
        (void)cudaGetLastError();
        free(st);
    }
    free(be);
}

static void cuda_destroy(rc_backend *be) {
    if (be) release_state(be);
}

static void cuda_fill_zero_sparse(rc_backend *be, rc_view x, size_t n) {
    cuda_fill(be, x, 0.0f, n);
}

static void fill_table(rc_backend *be) {
    be->alloc = cuda_alloc;
    be->free = cuda_free_buffer;
    be->upload = cuda_upload;
    be->download = cuda_download;
    be->fill = cuda_fill;
    be->fill_zero_sparse = cuda_fill_zero_sparse;
    be->sync = cuda_sync;
    be->destroy = cuda_destroy;
    be->gemm = cuda_gemm;
    be->gemm_batched = cuda_gemm_batched;
    be->bias_forward = cuda_bias_forward;
    be->bias_backward = cuda_bias_backward;
    be->embedding_forward = cuda_embedding_forward;
    be->embedding_backward = cuda_embedding_backward;
    be->layernorm_forward = cuda_layernorm_forward;
    be->layernorm_backward = cuda_layernorm_backward;
    be->rmsnorm_forward = cuda_rmsnorm_forward;
    be->rmsnorm_backward = cuda_rmsnorm_backward;
    be->rope = cuda_rope;
    be->gated_forward = cuda_gated_forward;
    be->gated_backward = cuda_gated_backward;
    be->activation_forward = cuda_activation_forward;
    be->activation_backward = cuda_activation_backward;
    be->add = cuda_add;
    be->axpy = cuda_axpy;
    be->scale = cuda_scale;
    be->attention_softmax_forward = cuda_attention_softmax_forward;
    be->attention_softmax_backward = cuda_attention_softmax_backward;
    be->gather_rows = cuda_gather_rows;
    be->scatter_rows_add = cuda_scatter_rows_add;
    be->sum_squares = cuda_sum_squares;
    be->adamw = cuda_adamw;
}

/* REWARDC_CUDA_DEVICE, when set, replaces the caller's index. */
static rc_status device_index_from_env(int *index) {
    const char *text = getenv("REWARDC_CUDA_DEVICE");
    if (!text || !*text) return RC_OK;
    char *end = NULL;
    errno = 0;
    const long value = strtol(text, &end, 10);
    if (errno || *end || value < 0 || value > 1000000)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "REWARDC_CUDA_DEVICE='%s' is not a device index (expected 0, 1, ...)", text);
    *index = (int)value;
    return RC_OK;
}

static rc_status fail_setup(rc_backend *be, const char *what, cudaError_t e) {
    (void)cudaGetLastError();
    rc_status code = e == cudaErrorMemoryAllocation ? RC_ERR_OOM : RC_ERR_BACKEND;
    rc_status rc = rc_fail(code, "cuda backend on %s: %s failed: %s", be->device, what,
                           cudaGetErrorString(e));
    release_state(be);
    return rc;
}

/* Explains a failed cudaGetDeviceCount; without any driver the runtime
 * says "driver version is insufficient", which misleads. */
static rc_status no_device(cudaError_t e) {
    (void)cudaGetLastError();
    int driver = 0, runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0;
    (void)cudaGetLastError();
    if (driver == 0)
        return rc_fail(RC_ERR_BACKEND, "no CUDA device: no NVIDIA driver is installed (%s)",
                       cudaGetErrorName(e));
    if (e == cudaErrorInsufficientDriver)
        return rc_fail(RC_ERR_BACKEND,
                       "no CUDA device: the NVIDIA driver supports CUDA %d.%d, this build needs "
                       "%d.%d",
                       driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    return rc_fail(RC_ERR_BACKEND, "no CUDA device: %s", cudaGetErrorString(e));
}

rc_status rc_backend_cuda_create(int device_index, rc_backend **out) {
    *out = NULL;
    rc_status rc = device_index_from_env(&device_index);
    if (rc != RC_OK) return rc;
    if (device_index < 0)
        return rc_fail(RC_ERR_INVALID_ARG, "CUDA device index %d is negative", device_index);

    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return no_device(e);
    if (count <= 0) return rc_fail(RC_ERR_BACKEND, "no CUDA device: the driver reports none");
    if (device_index >= count)
        return rc_fail(RC_ERR_INVALID_ARG, "CUDA device %d does not exist (%d device%s found)",
                       device_index, count, count == 1 ? "" : "s");

    struct cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device_index);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rc_fail(RC_ERR_BACKEND, "CUDA device %d: cannot read its properties: %s",
                       device_index, cudaGetErrorString(e));
    }
    e = cudaSetDevice(device_index);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rc_fail(RC_ERR_BACKEND, "CUDA device %d (%s): cannot be used: %s", device_index,
                       prop.name, cudaGetErrorString(e));
    }
    e = cuda_probe_kernels();
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rc_fail(RC_ERR_BACKEND,
                       "CUDA device %d (%s, compute capability %d.%d) cannot run this build's "
                       "kernels, built for CUDA architectures %s (rebuild with "
                       "-DCMAKE_CUDA_ARCHITECTURES=%d%d): %s",
                       device_index, prop.name, prop.major, prop.minor, RC_CUDA_ARCHS,
                       prop.major, prop.minor, cudaGetErrorString(e));
    }

    rc_backend *be = calloc(1, sizeof *be);
    cuda_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        return rc_fail(RC_ERR_OOM, "cuda backend: out of host memory");
    }
    be->name = "cuda";
    be->ctx = st;
    snprintf(be->device, sizeof be->device,
             "%.160s (CUDA device %d, %.1f GiB, compute capability %d.%d)",
             prop.name, device_index, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             prop.major, prop.minor);
    st->device = device_index;
    st->pending = RC_OK;
    const char *sync_env = getenv("REWARDC_CUDA_SYNC");
    st->sync_each = sync_env && *sync_env && strcmp(sync_env, "0") != 0;

    e = cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) return fail_setup(be, "cudaStreamCreate", e);
    e = cudaMalloc((void **)&st->flag, 4 * sizeof(int));
    if (e != cudaSuccess) return fail_setup(be, "allocating the index-check flag", e);
    e = cudaMemsetAsync(st->flag, 0, 4 * sizeof(int), st->stream);
    if (e != cudaSuccess) return fail_setup(be, "clearing the index-check flag", e);
    e = cudaMalloc((void **)&st->reduce, (CUDA_REDUCE_BLOCKS + 1) * sizeof(double));
    if (e != cudaSuccess) return fail_setup(be, "allocating reduction space", e);
    e = cudaStreamSynchronize(st->stream);
    if (e != cudaSuccess) return fail_setup(be, "cudaStreamSynchronize", e);

    cublasHandle_t handle = NULL;
    cublasStatus_t bs = cublasCreate(&handle);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        (void)cudaGetLastError();
        rc = rc_fail(bs == CUBLAS_STATUS_ALLOC_FAILED ? RC_ERR_OOM : RC_ERR_BACKEND,
                     "cuda backend on %s: cublasCreate failed: %s", be->device,
                     cublasGetStatusString(bs));
        release_state(be);
        return rc;
    }
    st->blas = handle;
    bs = cublasSetStream(handle, st->stream);
    /* Full fp32 products: no TF32, so results match the CPU reference. */
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        (void)cudaGetLastError();
        rc = rc_fail(RC_ERR_BACKEND, "cuda backend on %s: configuring cuBLAS failed: %s",
                     be->device, cublasGetStatusString(bs));
        release_state(be);
        return rc;
    }
    (void)cudaGetLastError(); /* start with a clean slate for the launch checks */
    fill_table(be);
    *out = be;
    return RC_OK;
}
