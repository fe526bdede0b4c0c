/* Kernel launching for the OpenCL ops: argument setting, work sizes, view
 * range checks and the shared scratch buffer for reductions. */
#include <stdint.h>

#include "opencl_internal.h"

int rc_ocl_begin(rc_ocl_launch *l, rc_ocl_ctx *ctx, rc_ocl_kernel_id id, const char *op) {
    l->ctx = ctx;
    l->id = id;
    l->op = op;
    l->next_arg = 0;
    l->err = CL_SUCCESS;
    if (ctx->error_code != RC_OK) return 0;
    ctx->last_op = op;
    return 1;
}

static void set_arg(rc_ocl_launch *l, size_t size, const void *value) {
    if (l->err != CL_SUCCESS) return;
    l->err = clSetKernelArg(l->ctx->kernels[l->id], l->next_arg, size, value);
    l->next_arg++;
}

void rc_ocl_arg_mem(rc_ocl_launch *l, cl_mem mem) { set_arg(l, sizeof mem, &mem); }

void rc_ocl_arg_view(rc_ocl_launch *l, rc_view v) {
    rc_ocl_arg_mem(l, v.buf ? v.buf->mem : l->ctx->dummy);
    rc_ocl_arg_ulong(l, v.buf ? (cl_ulong)v.offset : 0);
}

void rc_ocl_arg_int(rc_ocl_launch *l, int value) {
    cl_int v = value;
    set_arg(l, sizeof v, &v);
}

void rc_ocl_arg_ulong(rc_ocl_launch *l, cl_ulong value) { set_arg(l, sizeof value, &value); }

void rc_ocl_arg_float(rc_ocl_launch *l, float value) {
    cl_float v = value;
    set_arg(l, sizeof v, &v);
}

void rc_ocl_arg_local(rc_ocl_launch *l, size_t bytes) { set_arg(l, bytes, NULL); }

void rc_ocl_enqueue(rc_ocl_launch *l, cl_uint dims, const size_t *global, const size_t *local) {
    rc_ocl_ctx *ctx = l->ctx;
    const char *kernel = rc_ocl_kernel_names[l->id];
    if (l->err != CL_SUCCESS) {
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "%s: setting argument %u of kernel %s failed: %s",
                         l->op, (unsigned)(l->next_arg - 1), kernel, rc_ocl_error_name(l->err));
        return;
    }
    size_t rounded[3];
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0) return; /* nothing to do */
        rounded[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] : global[d];
    }
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, ctx->kernels[l->id], dims, NULL, rounded,
                                        local, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        rc_ocl_set_error(ctx, err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? RC_ERR_OOM : RC_ERR_BACKEND,
                         "%s: enqueueing kernel %s failed: %s", l->op, kernel,
                         rc_ocl_error_name(err));
}

size_t rc_ocl_group_size(rc_ocl_ctx *ctx, rc_ocl_kernel_id id, size_t want) {
    size_t limit = ctx->kernel_group_size[id] < want ? ctx->kernel_group_size[id] : want;
    size_t size = 1;
    while (size * 2 <= limit) size *= 2;
    return size;
}

int rc_ocl_check_view(rc_ocl_ctx *ctx, const char *op, const char *operand, rc_view v,
                      size_t extent, int optional) {
    if (ctx->error_code != RC_OK) return 0;
    if (!v.buf) {
        if (optional || extent == 0) return 1;
        rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG, "%s: %s is absent (NULL buffer)", op, operand);
        return 0;
    }
    if (v.offset > v.buf->n_elements || extent > v.buf->n_elements - v.offset) {
        rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG,
                         "%s: %s needs elements [%zu, %zu) but its buffer holds %zu", op, operand,
                         v.offset, v.offset + extent, v.buf->n_elements);
        return 0;
    }
    return 1;
}

int rc_ocl_sizes_ok(rc_ocl_ctx *ctx, const char *op, long long a, long long b, long long c) {
    if (a >= 0 && b >= 0 && c >= 0) return 1;
    rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG, "%s: negative size (%lld, %lld, %lld)", op, a, b, c);
    return 0;
}

size_t rc_ocl_matrix_extent(size_t rows, size_t cols, size_t ld, size_t stride, size_t batch) {
    if (rows == 0 || cols == 0 || batch == 0) return 0;
    return (batch - 1) * stride + (rows - 1) * ld + cols;
}

cl_mem rc_ocl_scratch(rc_ocl_ctx *ctx, size_t bytes, const char *op) {
    if (bytes <= ctx->scratch_bytes) return ctx->scratch;
    /* Released memory stays alive until queued commands using it finish, so
     * growing never disturbs work already in flight. */
    if (ctx->scratch) clReleaseMemObject(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_bytes = 0;
    size_t grown = bytes < SIZE_MAX / 2 ? bytes + bytes / 2 : bytes;
    if (grown > ctx->max_alloc_bytes && bytes <= ctx->max_alloc_bytes)
        grown = (size_t)ctx->max_alloc_bytes;
    cl_int err;
    ctx->scratch = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, grown, NULL, &err);
    if (err != CL_SUCCESS) {
        ctx->scratch = NULL;
        rc_ocl_set_error(ctx, RC_ERR_OOM, "%s: cannot allocate %zu bytes of scratch: %s", op,
                         grown, rc_ocl_error_name(err));
        return NULL;
    }
    ctx->scratch_bytes = grown;
    return ctx->scratch;
}
