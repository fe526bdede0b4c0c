/* Error names for OpenCL and CLBlast status codes, and the backend's pending
 * error: ops cannot return a status, so the first failure is kept (later ones
 * are usually its consequences), ops are skipped while it is pending, and
 * sync() or download() hands it to the caller once, as the CPU and CUDA
 * backends do. */
#include <stdarg.h>
#include <stdio.h>

#include "opencl_internal.h"

const char *rc_ocl_error_name(cl_int err) {
    switch (err) {
    case 0: return "CL_SUCCESS";
    case -1: return "CL_DEVICE_NOT_FOUND";
    case -2: return "CL_DEVICE_NOT_AVAILABLE";
    case -3: return "CL_COMPILER_NOT_AVAILABLE";
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case -5: return "CL_OUT_OF_RESOURCES";
    case -6: return "CL_OUT_OF_HOST_MEMORY";
    case -7: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case -8: return "CL_MEM_COPY_OVERLAP";
    case -9: return "CL_IMAGE_FORMAT_MISMATCH";
    case -10: return "CL_IMAGE_FORMAT_NOT_SUPPORTED";
    case -11: return "CL_BUILD_PROGRAM_FAILURE";
    case -12: return "CL_MAP_FAILURE";
    case -13: return "CL_MISALIGNED_SUB_BUFFER_OFFSET";
    case -14: return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
    case -15: return "CL_COMPILE_PROGRAM_FAILURE";
    case -16: return "CL_LINKER_NOT_AVAILABLE";
    case -17: return "CL_LINK_PROGRAM_FAILURE";
    case -18: return "CL_DEVICE_PARTITION_FAILED";
    case -19: return "CL_KERNEL_ARG_INFO_NOT_AVAILABLE";
    case -30: return "CL_INVALID_VALUE";
    case -31: return "CL_INVALID_DEVICE_TYPE";
    case -32: return "CL_INVALID_PLATFORM";
    case -33: return "CL_INVALID_DEVICE";
    case -34: return "CL_INVALID_CONTEXT";
    case -35: return "CL_INVALID_QUEUE_PROPERTIES";
    case -36: return "CL_INVALID_COMMAND_QUEUE";
    case -37: return "CL_INVALID_HOST_PTR";
    case -38: return "CL_INVALID_MEM_OBJECT";
    case -39: return "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR";
    case -40: return "CL_INVALID_IMAGE_SIZE";
    case -41: return "CL_INVALID_SAMPLER";
    case -42: return "CL_INVALID_BINARY";
    case -43: return "CL_INVALID_BUILD_OPTIONS";
    case -44: return "CL_INVALID_PROGRAM";
    case -45: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case -46: return "CL_INVALID_KERNEL_NAME";
    case -47: return "CL_INVALID_KERNEL_DEFINITION";
    case -48: return "CL_INVALID_KERNEL";
    case -49: return "CL_INVALID_ARG_INDEX";
    case -50: return "CL_INVALID_ARG_VALUE";
    case -51: return "CL_INVALID_ARG_SIZE";
    case -52: return "CL_INVALID_KERNEL_ARGS";
    case -53: return "CL_INVALID_WORK_DIMENSION";
    case -54: return "CL_INVALID_WORK_GROUP_SIZE";
    case -55: return "CL_INVALID_WORK_ITEM_SIZE";
    case -56: return "CL_INVALID_GLOBAL_OFFSET";
    case -57: return "CL_INVALID_EVENT_WAIT_LIST";
    case -58: return "CL_INVALID_EVENT";
    case -59: return "CL_INVALID_OPERATION";
    case -60: return "CL_INVALID_GL_OBJECT";
    case -61: return "CL_INVALID_BUFFER_SIZE";
    case -62: return "CL_INVALID_MIP_LEVEL";
    case -63: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case -64: return "CL_INVALID_PROPERTY";
    case -65: return "CL_INVALID_IMAGE_DESCRIPTOR";
    case -66: return "CL_INVALID_COMPILER_OPTIONS";
    case -67: return "CL_INVALID_LINKER_OPTIONS";
    case -68: return "CL_INVALID_DEVICE_PARTITION_COUNT";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    /* CLBlast's own status codes (clblast_c.h) */
    case -1024: return "CLBlastNotImplemented";
    case -1022: return "CLBlastInvalidMatrixA";
    case -1021: return "CLBlastInvalidMatrixB";
    case -1020: return "CLBlastInvalidMatrixC";
    case -1017: return "CLBlastInvalidDimension";
    case -1016: return "CLBlastInvalidLeadDimA";
    case -1015: return "CLBlastInvalidLeadDimB";
    case -1014: return "CLBlastInvalidLeadDimC";
    case -1011: return "CLBlastInsufficientMemoryA";
    case -1010: return "CLBlastInsufficientMemoryB";
    case -1009: return "CLBlastInsufficientMemoryC";
    case -2050: return "CLBlastInsufficientMemoryTemp";
    case -2049: return "CLBlastInvalidBatchCount";
    case -2046: return "CLBlastInvalidLocalMemUsage";
    case -2041: return "CLBlastDatabaseError";
    case -2040: return "CLBlastUnknownError";
    case -2039: return "CLBlastUnexpectedError";
    default: return "unknown OpenCL/CLBlast error";
    }
}

void rc_ocl_set_error(rc_ocl_ctx *ctx, rc_status code, const char *fmt, ...) {
    if (ctx->error_code != RC_OK) return;
    ctx->error_code = code;
    va_list args;
    va_start(args, fmt);
    vsnprintf(ctx->error_message, sizeof ctx->error_message, fmt, args);
    va_end(args);
}

rc_status rc_ocl_report_error(rc_ocl_ctx *ctx) {
    if (ctx->error_code == RC_OK) return RC_OK;
    rc_status code = ctx->error_code;
    ctx->error_code = RC_OK;
    return rc_fail(code, "opencl: %s", ctx->error_message);
}

void rc_ocl_collect_index_error(rc_ocl_ctx *ctx) {
    if (ctx->error_code != RC_OK || !ctx->index_error) return;
    cl_int record[4] = {0, 0, 0, 0};
    cl_int err = clEnqueueReadBuffer(ctx->queue, ctx->index_error, CL_TRUE, 0, sizeof record,
                                     record, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "reading the index check failed: %s (last op: %s)",
                         rc_ocl_error_name(err), ctx->last_op ? ctx->last_op : "none");
        return;
    }
    if (record[0] == 0) return;
    /* re-arm the check for the ops that follow the report */
    const cl_int cleared[4] = {0, 0, 0, 0};
    err = clEnqueueWriteBuffer(ctx->queue, ctx->index_error, CL_TRUE, 0, sizeof cleared, cleared, 0,
                               NULL, NULL);
    if (err != CL_SUCCESS) {
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "resetting the index check failed: %s",
                         rc_ocl_error_name(err));
        return;
    }
    static const char *const ops[] = {"?", "embedding_forward", "embedding_backward",
                                      "gather_rows", "scatter_rows_add", "rope"};
    static const char *const index_names[] = {"?", "ids", "ids", "rows", "rows", "positions"};
    int code = record[0] >= 1 && record[0] <= RC_OCL_OP_ROPE ? record[0] : 0;
    rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG,
                     "%s: %s[%d] = %d is outside the table (%d rows); the row was skipped",
                     ops[code], index_names[code], (int)record[1], (int)record[2],
                     (int)record[3]);
}
