/* The kernel sources embedded at build time (generated opencl_kernels.c, made
 * by embed_kernels.cmake from backends/opencl/kernels/ (every .cl file there)). */
#ifndef REWARDC_OPENCL_KERNELS_H
#define REWARDC_OPENCL_KERNELS_H

typedef struct {
    const char *file_name;       /* e.g. "layernorm.cl" */
    const unsigned char *source; /* NUL-terminated OpenCL C text */
} rc_ocl_kernel_source;

/* common.cl first, then the other files in name order */
extern const rc_ocl_kernel_source rc_ocl_kernel_sources[];
extern const int rc_ocl_kernel_source_count;

#endif
