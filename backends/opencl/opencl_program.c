/* Builds the OpenCL program from the embedded kernel sources, once per
 * context, and creates every kernel.
 *
 * Compilation is the slow part on CPU drivers. PoCL keeps compiled programs in
 * its kernel cache (POCL_CACHE_DIR, by default ~/.cache/pocl/kcache, keyed by
 * source text, options and device), so only the first run after a kernel
 * change pays for it; GPU drivers keep similar caches of their own. */
#include <stdio.h>
#include <string.h>

#include "opencl_internal.h"
#include "opencl_kernels.h"

const char *const rc_ocl_kernel_names[K_COUNT] = {
    [K_SCALE_MATRICES] = "rc_scale_matrices",
    [K_BIAS_FORWARD] = "rc_bias_forward",
    [K_COLUMN_PARTIAL_SUMS] = "rc_column_partial_sums",
    [K_COLUMN_FINISH] = "rc_column_finish",
    [K_ROWS_GATHER] = "rc_rows_gather",
    [K_ROWS_SCATTER_ADD] = "rc_rows_scatter_add",
    [K_LAYERNORM_FORWARD] = "rc_layernorm_forward",
    [K_LAYERNORM_BACKWARD_INPUT] = "rc_layernorm_backward_input",
    [K_LAYERNORM_PARAM_PARTIALS] = "rc_layernorm_param_partials",
    [K_RMSNORM_FORWARD] = "rc_rmsnorm_forward",
    [K_RMSNORM_BACKWARD_INPUT] = "rc_rmsnorm_backward_input",
    [K_RMSNORM_WEIGHT_PARTIALS] = "rc_rmsnorm_weight_partials",
    [K_ROPE] = "rc_rope",
    [K_ACTIVATION_FORWARD] = "rc_activation_forward",
    [K_ACTIVATION_BACKWARD] = "rc_activation_backward",
    [K_GATED_FORWARD] = "rc_gated_forward",
    [K_GATED_BACKWARD] = "rc_gated_backward",
    [K_ADD] = "rc_add",
    [K_AXPY] = "rc_axpy",
    [K_SCALE] = "rc_scale",
    [K_SOFTMAX_FORWARD] = "rc_softmax_forward",
    [K_SOFTMAX_BACKWARD] = "rc_softmax_backward",
    [K_SUM_SQUARES_PARTIALS] = "rc_sum_squares_partials",
    [K_ADAMW] = "rc_adamw",
};

/* The device's build log, trimmed to fit an error message. */
static void build_log(rc_ocl_ctx *ctx, char *log, size_t size) {
    log[0] = '\0';
    size_t needed = 0;
    if (clGetProgramBuildInfo(ctx->program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &needed) !=
            CL_SUCCESS ||
        needed == 0)
        return;
    char big[8192];
    size_t got = needed < sizeof big ? needed : sizeof big;
    if (clGetProgramBuildInfo(ctx->program, ctx->device, CL_PROGRAM_BUILD_LOG, got, big, NULL) !=
        CL_SUCCESS)
        return;
    big[got - 1] = '\0';
    snprintf(log, size, "%.*s", (int)(size - 1), big);
}

rc_status rc_ocl_build_program(rc_ocl_ctx *ctx) {
    const char *sources[32];
    if (rc_ocl_kernel_source_count > (int)(sizeof sources / sizeof sources[0]))
        return rc_fail(RC_ERR_BACKEND, "opencl: %d kernel files, at most %d supported",
                       rc_ocl_kernel_source_count, (int)(sizeof sources / sizeof sources[0]));
    for (int i = 0; i < rc_ocl_kernel_source_count; i++)
        sources[i] = (const char *)rc_ocl_kernel_sources[i].source;

    cl_int err;
    ctx->program = clCreateProgramWithSource(ctx->context, (cl_uint)rc_ocl_kernel_source_count,
                                             sources, NULL, &err);
    if (err != CL_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "opencl: clCreateProgramWithSource failed: %s",
                       rc_ocl_error_name(err));

    /* Correctly rounded division and sqrt (where offered) keep LayerNorm and
     * AdamW within rounding of the CPU reference; no fast-math options. */
    char options[256];
    cl_device_fp_config fp_config = 0;
    clGetDeviceInfo(ctx->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp_config, &fp_config, NULL);
    snprintf(options, sizeof options, "-cl-std=CL1.2 -DRC_ACC_DOUBLE=%d%s", ctx->has_fp64,
             (fp_config & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT)
                 ? " -cl-fp32-correctly-rounded-divide-sqrt"
                 : "");
    err = clBuildProgram(ctx->program, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[600];
        build_log(ctx, log, sizeof log);
        return rc_fail(RC_ERR_BACKEND,
                       "opencl: building the kernels (backends/opencl/kernels/) failed: %s; "
                       "build log: %s",
                       rc_ocl_error_name(err), log[0] ? log : "(empty)");
    }

    for (int k = 0; k < K_COUNT; k++) {
        ctx->kernels[k] = clCreateKernel(ctx->program, rc_ocl_kernel_names[k], &err);
        if (err != CL_SUCCESS)
            return rc_fail(RC_ERR_BACKEND, "opencl: clCreateKernel(%s) failed: %s",
                           rc_ocl_kernel_names[k], rc_ocl_error_name(err));
        size_t group = 1;
        err = clGetKernelWorkGroupInfo(ctx->kernels[k], ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof group, &group, NULL);
        ctx->kernel_group_size[k] = (err == CL_SUCCESS && group > 0) ? group : 1;
    }
    return RC_OK;
}

void rc_ocl_release_program(rc_ocl_ctx *ctx) {
    for (int k = 0; k < K_COUNT; k++) {
        if (ctx->kernels[k]) clReleaseKernel(ctx->kernels[k]);
        ctx->kernels[k] = NULL;
    }
    if (ctx->program) clReleaseProgram(ctx->program);
    ctx->program = NULL;
}
