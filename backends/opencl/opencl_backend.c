/* The OpenCL backend's constructor and memory: device choice, context and
 * queue, buffers (cl_mem), upload/download/fill, sync and teardown. The ops
 * live in opencl_ops.c (kernels) and opencl_gemm.c (CLBlast). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "opencl_internal.h"

enum { MAX_PLATFORMS = 16, MAX_DEVICES = 64 };

/* New buffers are filled with this quiet NaN, so code that reads memory it
 * never wrote sees NaN on every run instead of whatever the driver left there
 * (PoCL leaves old heap contents, GPUs old tensors). */
static const uint32_t POISON_BITS = 0x7fc0bad0u;

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
} device_slot;

/* Every device of every platform, in platform order: the index space of
 * rc_backend_opencl_create and REWARDC_OPENCL_DEVICE. */
static rc_status list_devices(device_slot *slots, int *count) {
    *count = 0;
    cl_platform_id platforms[MAX_PLATFORMS];
    cl_uint n_platforms = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, platforms, &n_platforms);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && n_platforms == 0))
        return rc_fail(RC_ERR_BACKEND,
                       "opencl: no OpenCL platform found (no driver registered in "
                       "/etc/OpenCL/vendors; on a CPU-only machine install pocl-opencl-icd)");
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "opencl: clGetPlatformIDs failed: %s",
                       rc_ocl_error_name(err));
    if (n_platforms > MAX_PLATFORMS) n_platforms = MAX_PLATFORMS;
    for (cl_uint p = 0; p < n_platforms; p++) {
        cl_device_id devices[MAX_DEVICES];
        cl_uint n_devices = 0;
        err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices, &n_devices);
        if (err == CL_DEVICE_NOT_FOUND) continue;
        if (err != CL_SUCCESS) continue; /* a broken platform should not hide the others */
        if (n_devices > MAX_DEVICES) n_devices = MAX_DEVICES;
        for (cl_uint d = 0; d < n_devices && *count < MAX_DEVICES; d++) {
            slots[*count].platform = platforms[p];
            slots[*count].device = devices[d];
            (*count)++;
        }
    }
    if (*count == 0)
        return rc_fail(RC_ERR_BACKEND, "opencl: %u OpenCL platform(s) found but no device",
                       (unsigned)n_platforms);
    return RC_OK;
}

static void describe(const device_slot *slot, char *out, size_t size) {
    char platform[128] = "?", device[200] = "?";
    clGetPlatformInfo(slot->platform, CL_PLATFORM_NAME, sizeof platform, platform, NULL);
    clGetDeviceInfo(slot->device, CL_DEVICE_NAME, sizeof device, device, NULL);
    platform[sizeof platform - 1] = device[sizeof device - 1] = '\0';
    snprintf(out, size, "%s / %s", platform, device);
}

/* REWARDC_OPENCL_DEVICE, when set, overrides the caller's device index. */
static rc_status device_index_from_env(int *index) {
    const char *text = getenv("REWARDC_OPENCL_DEVICE");
    if (!text || !*text) return RC_OK;
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end != '\0' || value < 0 || value > INT32_MAX)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "opencl: REWARDC_OPENCL_DEVICE='%s' is not a device index (expected 0, 1, ...)",
                       text);
    *index = (int)value;
    return RC_OK;
}

/* ---- memory ---- */

static rc_status ocl_alloc(rc_backend *be, size_t n_elements, rc_buffer **out) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    *out = NULL;
    if (n_elements > SIZE_MAX / 4)
        return rc_fail(RC_ERR_OOM, "opencl: cannot allocate %zu elements: size overflows", n_elements);
    /* OpenCL has no empty buffers; one element keeps a zero-sized request valid */
    size_t bytes = (n_elements ? n_elements : 1) * 4;
    if (bytes > ctx->max_alloc_bytes)
        return rc_fail(RC_ERR_OOM,
                       "opencl: cannot allocate %zu bytes on %s: the device's largest single "
                       "allocation is %llu bytes",
                       bytes, be->device, (unsigned long long)ctx->max_alloc_bytes);
    rc_buffer *buf = calloc(1, sizeof *buf);
    if (!buf) return rc_fail(RC_ERR_OOM, "opencl: out of host memory for a buffer handle");
    cl_int err;
    buf->mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        free(buf);
        return rc_fail(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                               err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE
                           ? RC_ERR_OOM
                           : RC_ERR_BACKEND,
                       "opencl: cannot allocate %zu bytes on %s: %s", bytes, be->device,
                       rc_ocl_error_name(err));
    }
    buf->n_elements = n_elements;
    /* Drivers allocate lazily; filling now both poisons the buffer and makes an
     * out-of-memory show up here, where the caller can handle it. */
    float poison;
    memcpy(&poison, &POISON_BITS, sizeof poison);
    err = clEnqueueFillBuffer(ctx->queue, buf->mem, &poison, sizeof poison, 0, bytes, 0, NULL, NULL);
    if (err == CL_SUCCESS) err = clFinish(ctx->queue);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(buf->mem);
        free(buf);
        return rc_fail(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES
                           ? RC_ERR_OOM
                           : RC_ERR_BACKEND,
                       "opencl: cannot allocate %zu bytes on %s: %s", bytes, be->device,
                       rc_ocl_error_name(err));
    }
    *out = buf;
    return RC_OK;
}

static void ocl_free(rc_backend *be, rc_buffer *buf) {
    (void)be;
    if (!buf) return;
    clReleaseMemObject(buf->mem);
    free(buf);
}

/* Checks a host transfer's range before touching the device. */
static rc_status check_transfer(const char *what, rc_view v, const void *host, size_t n) {
    if (n == 0) return RC_OK;
    if (!host) return rc_fail(RC_ERR_INVALID_ARG, "opencl: %s with a NULL host pointer", what);
    if (!v.buf) return rc_fail(RC_ERR_INVALID_ARG, "opencl: %s with an absent (NULL) buffer", what);
    if (v.offset > v.buf->n_elements || n > v.buf->n_elements - v.offset)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "opencl: %s of elements [%zu, %zu) but the buffer holds %zu", what,
                       v.offset, v.offset + n, v.buf->n_elements);
    return RC_OK;
}

static rc_status ocl_upload(rc_backend *be, rc_view dst, const void *src, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    rc_status st = check_transfer("upload", dst, src, n);
    if (st != RC_OK || n == 0) return st;
    /* blocking: the caller may reuse `src` as soon as this returns. A pending
     * op error is left for sync()/download(), as on the CPU. */
    cl_int err = clEnqueueWriteBuffer(ctx->queue, dst.buf->mem, CL_TRUE, dst.offset * 4, n * 4, src,
                                      0, NULL, NULL);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "opencl: upload of %zu elements failed: %s (last op: %s)",
                       n, rc_ocl_error_name(err), ctx->last_op ? ctx->last_op : "none");
    return RC_OK;
}

static rc_status ocl_download(rc_backend *be, void *dst, rc_view src, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    rc_status st = check_transfer("download", src, dst, n);
    if (st != RC_OK) return st;
    if ((st = rc_ocl_report_error(ctx)) != RC_OK) return st;
    if (n == 0) return RC_OK;
    cl_int err = clEnqueueReadBuffer(ctx->queue, src.buf->mem, CL_TRUE, src.offset * 4, n * 4, dst,
                                     0, NULL, NULL);
    if (err != CL_SUCCESS)
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "download of %zu elements failed: %s (last op: %s)",
                         n, rc_ocl_error_name(err), ctx->last_op ? ctx->last_op : "none");
    rc_ocl_collect_index_error(ctx);
    return rc_ocl_report_error(ctx);
}

static void ocl_fill(rc_backend *be, rc_view x, float value, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    if (!rc_ocl_check_view(ctx, "fill", "x", x, n, 0) || n == 0) return;
    ctx->last_op = "fill";
    cl_float pattern = value;
    cl_int err = clEnqueueFillBuffer(ctx->queue, x.buf->mem, &pattern, sizeof pattern, x.offset * 4,
                                     n * 4, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "fill of %zu elements failed: %s", n,
                         rc_ocl_error_name(err));
}

static void ocl_fill_zero_sparse(rc_backend *be, rc_view x, size_t n) { ocl_fill(be, x, 0.0f, n); }

static rc_status ocl_sync(rc_backend *be) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    cl_int err = clFinish(ctx->queue);
    if (err != CL_SUCCESS)
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "waiting for queued work failed: %s (last op: %s)",
                         rc_ocl_error_name(err), ctx->last_op ? ctx->last_op : "none");
    rc_ocl_collect_index_error(ctx);
    return rc_ocl_report_error(ctx);
}

static void release_context(rc_ocl_ctx *ctx) {
    if (ctx->queue) clFinish(ctx->queue);
    rc_ocl_release_program(ctx);
    if (ctx->scratch) clReleaseMemObject(ctx->scratch);
    if (ctx->dummy) clReleaseMemObject(ctx->dummy);
    if (ctx->index_error) clReleaseMemObject(ctx->index_error);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    free(ctx);
}

static void ocl_destroy(rc_backend *be) {
    if (!be) return;
    if (be->ctx) release_context(rc_ocl(be));
    /* CLBlast keeps every program it built (holding their contexts) in a
     * process-wide cache; emptying it lets this context go. Another live
     * backend only pays a rebuild, which the driver's cache makes cheap. */
    CLBlastClearCache();
    free(be);
}

/* ---- constructor ---- */

static rc_status open_device(rc_ocl_ctx *ctx, const device_slot *slot, const char *name) {
    ctx->platform = slot->platform;
    ctx->device = slot->device;
    cl_bool available = CL_FALSE;
    clGetDeviceInfo(ctx->device, CL_DEVICE_AVAILABLE, sizeof available, &available, NULL);
    if (!available) return rc_fail(RC_ERR_BACKEND, "opencl: device %s is not available", name);

    char extensions[4096] = "";
    clGetDeviceInfo(ctx->device, CL_DEVICE_EXTENSIONS, sizeof extensions, extensions, NULL);
    extensions[sizeof extensions - 1] = '\0';
    ctx->has_fp64 = strstr(extensions, "cl_khr_fp64") != NULL;
    ctx->acc_size = ctx->has_fp64 ? sizeof(cl_double) : sizeof(cl_float);
    clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ctx->max_alloc_bytes,
                    &ctx->max_alloc_bytes, NULL);

    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "opencl: clCreateContext on %s failed: %s", name,
                       rc_ocl_error_name(err));
    /* clCreateCommandQueue is the OpenCL 1.2 call (deprecated, not removed, in 2.0+) */
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, 0, &err);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "opencl: clCreateCommandQueue on %s failed: %s", name,
                       rc_ocl_error_name(err));
    ctx->dummy = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, 64, NULL, &err);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_OOM, "opencl: cannot allocate 64 bytes on %s: %s", name,
                       rc_ocl_error_name(err));
    ctx->index_error = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, 4 * sizeof(cl_int), NULL, &err);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_OOM, "opencl: cannot allocate the index check on %s: %s", name,
                       rc_ocl_error_name(err));
    const cl_int no_error[4] = {0, 0, 0, 0};
    err = clEnqueueWriteBuffer(ctx->queue, ctx->index_error, CL_TRUE, 0, sizeof no_error, no_error,
                               0, NULL, NULL);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "opencl: initialising the index check on %s failed: %s",
                       name, rc_ocl_error_name(err));
    rc_status st = rc_ocl_build_program(ctx);
    if (st != RC_OK) return rc_fail_context(st, "on %s", name);
    return RC_OK;
}

rc_status rc_backend_opencl_create(int device_index, rc_backend **out) {
    *out = NULL;
    const int asked = device_index;
    rc_status st = device_index_from_env(&device_index);
    if (st != RC_OK) return st;
    const char *source = device_index != asked ? " (from REWARDC_OPENCL_DEVICE)" : "";
    if (device_index < 0)
        return rc_fail(RC_ERR_INVALID_ARG, "opencl: device index %d is negative", device_index);

    device_slot slots[MAX_DEVICES];
    int count = 0;
    if ((st = list_devices(slots, &count)) != RC_OK) return st;
    if (device_index >= count) {
        char names[600] = "";
        size_t used = 0;
        for (int i = 0; i < count && used < sizeof names - 1; i++) {
            char one[260];
            describe(&slots[i], one, sizeof one);
            int w = snprintf(names + used, sizeof names - used, "%s%d: %s", i ? "; " : "", i, one);
            if (w < 0) break;
            used += (size_t)w;
        }
        return rc_fail(RC_ERR_INVALID_ARG,
                       "opencl: device index %d%s is out of range: %d OpenCL device(s) found (%s)",
                       device_index, source, count, names);
    }

    rc_backend *be = calloc(1, sizeof *be);
    rc_ocl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return rc_fail(RC_ERR_OOM, "opencl: out of host memory creating the backend");
    }
    be->name = "opencl";
    be->ctx = ctx;
    describe(&slots[device_index], be->device, sizeof be->device);
    ctx->error_code = RC_OK;

    st = open_device(ctx, &slots[device_index], be->device);
    if (st != RC_OK) {
        release_context(ctx);
        free(be);
        return st;
    }
    be->alloc = ocl_alloc;
    be->free = ocl_free;
    be->upload = ocl_upload;
    be->download = ocl_download;
    be->fill = ocl_fill;
    be->fill_zero_sparse = ocl_fill_zero_sparse;
    be->sync = ocl_sync;
    be->destroy = ocl_destroy;
    rc_ocl_install_gemm(be);
    rc_ocl_install_ops(be);
    *out = be;
    return RC_OK;
}
