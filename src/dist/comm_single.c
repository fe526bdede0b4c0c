/* The job of one process, for builds without MPI (see dist.h): every
 * collective over one rank is a copy or nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

rc_status rc_dist_init(void) { return RC_OK; }
void rc_dist_finalize(void) {}
int rc_dist_rank(void) { return 0; }
int rc_dist_size(void) { return 1; }
const char *rc_dist_library(void) { return "none"; }

void rc_dist_abort(const char *message) {
    fprintf(stderr, "rewardc: %s\n", message);
    exit(1);
}

rc_status rc_dist_allreduce_sum_f32(float *buf, size_t n) {
    (void)buf, (void)n;
    return RC_OK;
}

rc_status rc_dist_allreduce_sum_f64(double *buf, size_t n) {
    (void)buf, (void)n;
    return RC_OK;
}

rc_status rc_dist_reduce_scatter_sum_f32(const float *send, float *recv, const int *counts) {
    if (recv != send) memmove(recv, send, (size_t)counts[0] * sizeof *recv);
    return RC_OK;
}

rc_status rc_dist_allgather_f32(float *buf, const int *counts) {
    (void)buf, (void)counts;
    return RC_OK;
}

rc_status rc_dist_gather_f32(const float *mine, size_t count, float *whole, const size_t *offsets,
                             const size_t *counts, int root) {
    (void)counts, (void)root;
    if (whole + offsets[0] != mine) memmove(whole + offsets[0], mine, count * sizeof *mine);
    return RC_OK;
}

rc_status rc_dist_broadcast(void *buf, size_t bytes, int root) {
    (void)buf, (void)bytes, (void)root;
    return RC_OK;
}

rc_status rc_dist_barrier(void) { return RC_OK; }
