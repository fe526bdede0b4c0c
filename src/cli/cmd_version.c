/* rewardc version: version, build options, and the backends compiled in. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cli/commands.h"
#include "dist/dist.h"
#ifdef RC_HAVE_SERVE
#include <microhttpd.h>
#endif

#ifdef RC_HAVE_BLAS
#include <cblas.h>
#endif
#ifdef RC_HAVE_OPENMP
#include <omp.h>
#endif

static const char *on_off(int flag) { return flag ? "on" : "off"; }

int cmd_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: rewardc version\n\nPrints the version, build options and the backends "
               "compiled in, with the devices each one sees.\n");
        return 0;
    }
    int openmp = 0, blas = 0, opencl = 0, cuda = 0, native = 0, mpi = 0;
#ifdef RC_HAVE_OPENMP
    openmp = 1;
#endif
#ifdef RC_HAVE_BLAS
    blas = 1;
#endif
#ifdef RC_HAVE_OPENCL
    opencl = 1;
#endif
#ifdef RC_HAVE_CUDA
    cuda = 1;
#endif
#ifdef RC_NATIVE_BUILD
    native = 1;
#endif
#ifdef RC_HAVE_MPI
    mpi = 1;
#endif
    printf("rewardc %s\n", RC_VERSION);
    printf("build: RC_OPENMP=%s RC_BLAS=%s RC_OPENCL=%s RC_CUDA=%s RC_NATIVE=%s RC_MPI=%s\n",
           on_off(openmp), on_off(blas), on_off(opencl), on_off(cuda), on_off(native), on_off(mpi));
    if (mpi) printf("data parallel: %s (mpirun -np N rewardc train|eval|score)\n", rc_dist_library());
#ifdef RC_HAVE_OPENMP
    printf("openmp: %d threads available\n", omp_get_max_threads());
#endif
#ifdef RC_HAVE_BLAS
    printf("blas: %s\n", openblas_get_config());
#endif
#ifdef RC_HAVE_SERVE
    printf("serve: libmicrohttpd %s\n", MHD_get_version());
#else
    printf("serve: not built (no libmicrohttpd at configure time)\n");
#endif
    printf("backends:\n");
    const char *names[] = {"cpu", "opencl", "cuda"};
    const int compiled[] = {1, opencl, cuda};
    for (int i = 0; i < 3; i++) {
        if (!compiled[i]) {
            printf("  %-7s not compiled in\n", names[i]);
            continue;
        }
        rc_backend *be = NULL;
        if (rc_backend_create(names[i], 0, &be) == RC_OK) {
            printf("  %-7s device 0: %s\n", names[i], be->device);
            rc_backend_destroy(be);
        } else {
            printf("  %-7s compiled in, no usable device: %s\n", names[i], rc_last_error());
        }
    }
    return 0;
}
