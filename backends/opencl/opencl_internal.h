/* Private state of the OpenCL backend, shared by its .c files.
 *
 * One context, one in-order command queue and one program (all kernels in
 * backends/opencl/kernels/, built once per context). Ops only enqueue work; the
 * first failure is remembered and later ops are skipped until sync() or
 * download() reports it (once), so the caller hears about the error that
 * started the trouble rather than its consequences. The backend is not
 * thread-safe: kernel arguments are set on shared cl_kernel objects. */
#ifndef REWARDC_OPENCL_INTERNAL_H
#define REWARDC_OPENCL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

/* the ICD loader's "no platform registered" code (cl_khr_icd, in cl_ext.h) */
#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

#include "backend.h"

struct rc_buffer {
    cl_mem mem;
    size_t n_elements;
};

/* Kernels by name, in the order of rc_ocl_kernel_names (opencl_program.c). */
typedef enum {
    K_SCALE_MATRICES,
    K_BIAS_FORWARD,
    K_COLUMN_PARTIAL_SUMS,
    K_COLUMN_FINISH,
    K_ROWS_GATHER,
    K_ROWS_SCATTER_ADD,
    K_LAYERNORM_FORWARD,
    K_LAYERNORM_BACKWARD_INPUT,
    K_LAYERNORM_PARAM_PARTIALS,
    K_RMSNORM_FORWARD,
    K_RMSNORM_BACKWARD_INPUT,
    K_RMSNORM_WEIGHT_PARTIALS,
    K_ROPE,
    K_ACTIVATION_FORWARD,
    K_ACTIVATION_BACKWARD,
    K_GATED_FORWARD,
    K_GATED_BACKWARD,
    K_ADD,
    K_AXPY,
    K_SCALE,
    K_SOFTMAX_FORWARD,
    K_SOFTMAX_BACKWARD,
    K_SUM_SQUARES_PARTIALS,
    K_ADAMW,
    K_COUNT
} rc_ocl_kernel_id;

extern const char *const rc_ocl_kernel_names[K_COUNT];

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    cl_program program;
    cl_kernel kernels[K_COUNT];
    size_t kernel_group_size[K_COUNT]; /* largest usable work-group per kernel */
    int has_fp64;      /* reductions accumulate in double, as on the CPU */
    size_t acc_size;   /* bytes of one accumulator: 8 with fp64, else 4 */
    cl_ulong max_alloc_bytes;
    cl_mem dummy;   /* bound in place of absent views (weights of a LayerNorm without affine) */
    cl_mem scratch; /* partial sums of reductions; grows, reused by every op */
    size_t scratch_bytes;
    /* 4 ints {op code, position, value, table rows} set by a kernel that met
     * a row index outside its table; checked at sync() and download() */
    cl_mem index_error;

    /* the first failure, pending until sync() or download() reports it */
    rc_status error_code;
    char error_message[768];
    const char *last_op; /* names the op when an asynchronous fault surfaces at clFinish */
} rc_ocl_ctx;

static inline rc_ocl_ctx *rc_ocl(rc_backend *be) { return (rc_ocl_ctx *)be->ctx; }

/* Error names for messages ("CL_OUT_OF_RESOURCES", CLBlast's own codes too). */
const char *rc_ocl_error_name(cl_int err);

/* Records the first failure; later ones are dropped. */
void rc_ocl_set_error(rc_ocl_ctx *ctx, rc_status code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Returns the pending error as an rc_status (with its message) and clears it,
 * or returns RC_OK. */
rc_status rc_ocl_report_error(rc_ocl_ctx *ctx);

/* Op codes the row kernels (and rope, for its positions) write into
 * index_error, and their names. */
enum { RC_OCL_OP_EMBEDDING_FORWARD = 1, RC_OCL_OP_EMBEDDING_BACKWARD, RC_OCL_OP_GATHER_ROWS,
       RC_OCL_OP_SCATTER_ROWS_ADD, RC_OCL_OP_ROPE };
/* Reads index_error (blocking) and turns a recorded bad index into the
 * pending error. */
void rc_ocl_collect_index_error(rc_ocl_ctx *ctx);

/* Builds the program from the embedded kernel sources and creates every kernel. */
rc_status rc_ocl_build_program(rc_ocl_ctx *ctx);
void rc_ocl_release_program(rc_ocl_ctx *ctx);

/* Returns a scratch buffer of at least `bytes`, or NULL after recording an error. */
cl_mem rc_ocl_scratch(rc_ocl_ctx *ctx, size_t bytes, const char *op);

/* ---- launching kernels ----
 * An op checks its views (rc_ocl_check_view), then sets arguments in order and
 * enqueues. Argument errors accumulate in the launch and surface once, at enqueue. */
typedef struct {
    rc_ocl_ctx *ctx;
    rc_ocl_kernel_id id;
    const char *op;
    cl_uint next_arg;
    cl_int err;
} rc_ocl_launch;

/* Starts a launch; returns 0 (and does nothing more) while an error is pending. */
int rc_ocl_begin(rc_ocl_launch *l, rc_ocl_ctx *ctx, rc_ocl_kernel_id id, const char *op);
/* A view becomes two arguments: the buffer (the dummy when absent) and its offset. */
void rc_ocl_arg_view(rc_ocl_launch *l, rc_view v);
void rc_ocl_arg_mem(rc_ocl_launch *l, cl_mem mem);
void rc_ocl_arg_int(rc_ocl_launch *l, int value);
void rc_ocl_arg_ulong(rc_ocl_launch *l, cl_ulong value);
void rc_ocl_arg_float(rc_ocl_launch *l, float value);
void rc_ocl_arg_local(rc_ocl_launch *l, size_t bytes);
/* Enqueues over `dims` dimensions; global sizes are rounded up to the local size. */
void rc_ocl_enqueue(rc_ocl_launch *l, cl_uint dims, const size_t *global, const size_t *local);

/* The largest power of two <= min(want, what the kernel allows on this device). */
size_t rc_ocl_group_size(rc_ocl_ctx *ctx, rc_ocl_kernel_id id, size_t want);

/* Checks that elements [v.offset, v.offset + extent) lie inside v's buffer; records
 * an RC_ERR_INVALID_ARG naming the op and operand otherwise. Absent views pass
 * when `optional`. Returns 1 when the view is usable. */
int rc_ocl_check_view(rc_ocl_ctx *ctx, const char *op, const char *operand, rc_view v,
                      size_t extent, int optional);
/* Records an error naming the op when a size is negative; returns 1 when all are >= 0. */
int rc_ocl_sizes_ok(rc_ocl_ctx *ctx, const char *op, long long a, long long b, long long c);
/* Extent in elements of a rows x cols matrix stored with row stride ld
 * (batch copies `stride` apart); 0 when rows or cols is 0. */
size_t rc_ocl_matrix_extent(size_t rows, size_t cols, size_t ld, size_t stride, size_t batch);

/* Ops, installed into the table by opencl_backend.c. */
void rc_ocl_install_ops(rc_backend *be);
void rc_ocl_install_gemm(rc_backend *be);
/* C_i = beta * C_i for `batch` matrices (beta == 0 writes zeros, never reads C). */
void rc_ocl_scale_matrices(rc_ocl_ctx *ctx, const char *op, rc_view C, int ldc, size_t stride_c,
                           int M, int N, int batch, float beta);

#endif
