/* One knob for OpenMP and OpenBLAS threads, so "--threads 2" means 2 everywhere. */
#include "rewardc/threads.h"

#ifdef RC_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef RC_HAVE_BLAS
#include <cblas.h>
#endif

int rc_set_num_threads(int n) {
#ifdef RC_HAVE_OPENMP
    if (n > 0) omp_set_num_threads(n);
    n = omp_get_max_threads();
#else
    n = 1;
#endif
#ifdef RC_HAVE_BLAS
    openblas_set_num_threads(n);
#endif
    return n;
}
