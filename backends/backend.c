/* Backend selection by name; constructors for backends not compiled in
 * report that clearly instead of failing to link. */
#include <string.h>

#include "backend.h"

#ifndef RC_HAVE_OPENCL
rc_status rc_backend_opencl_create(int device_index, rc_backend **out) {
    (void)device_index;
    *out = NULL;
    return rc_fail(RC_ERR_UNSUPPORTED,
                   "the opencl backend is not compiled in (rebuild with -DRC_OPENCL=ON)");
}
#endif

#ifndef RC_HAVE_CUDA
rc_status rc_backend_cuda_create(int device_index, rc_backend **out) {
    (void)device_index;
    *out = NULL;
    return rc_fail(RC_ERR_UNSUPPORTED,
                   "the cuda backend is not compiled in (rebuild with -DRC_CUDA=ON)");
}
#endif

rc_status rc_backend_create(const char *name, int device_index, rc_backend **out) {
    *out = NULL;
    if (device_index < 0)
        return rc_fail(RC_ERR_INVALID_ARG, "device index %d is negative", device_index);
    if (!strcmp(name, "cpu")) {
        if (device_index != 0)
            return rc_fail(RC_ERR_INVALID_ARG, "the cpu backend has only device 0 (asked for %d)",
                           device_index);
        return rc_backend_cpu_create(out);
    }
    if (!strcmp(name, "opencl")) return rc_backend_opencl_create(device_index, out);
    if (!strcmp(name, "cuda")) return rc_backend_cuda_create(device_index, out);
    return rc_fail(RC_ERR_INVALID_ARG, "unknown backend '%s' (expected cpu, opencl or cuda)", name);
}

void rc_backend_destroy(rc_backend *be) {
    if (be) be->destroy(be);
}
