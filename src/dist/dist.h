/* Data-parallel processes: this process's rank in the job, the job's size,
 * and the few collectives data-parallel training needs, on host memory.
 * With RC_MPI and a process started by mpirun these are MPI's (comm_mpi.c);
 * otherwise the job is this one process and every collective is a copy or
 * nothing (comm_single.c), so callers never test which build they are in.
 *
 * Failure policy: a collective cannot finish once a peer has failed, so a
 * rank that hits an error ends the whole job (rc_dist_abort) instead of
 * returning to a loop its peers still wait in. */
#ifndef REWARDC_DIST_H
#define REWARDC_DIST_H

#include <stddef.h>

#include "rewardc/status.h"

/* Joins the job when the process was started by an MPI launcher (mpirun's
 * environment), else stays a job of one. Idempotent. */
rc_status rc_dist_init(void);
/* Leaves the job cleanly (every rank, after its last collective). */
void rc_dist_finalize(void);
int rc_dist_rank(void);
int rc_dist_size(void);
/* "MPI (Open MPI 4.1.4)" or "none": for rewardc version */
const char *rc_dist_library(void);

/* Ends every rank of the job: prints "rewardc: rank R of N: message" on
 * stderr and never returns. In a job of one it only exits(1). */
void rc_dist_abort(const char *message)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((noreturn))
#endif
    ;

/* Sums over ranks, in place (any n; split into pieces MPI's int counts hold). */
rc_status rc_dist_allreduce_sum_f32(float *buf, size_t n);
rc_status rc_dist_allreduce_sum_f64(double *buf, size_t n);
/* Sums send[0..Σcounts) over ranks; rank r receives the counts[r] elements
 * that start at counts[0] + ... + counts[r-1]. */
rc_status rc_dist_reduce_scatter_sum_f32(const float *send, float *recv, const int *counts);
/* In place: rank r's counts[r] elements sit at their offset in buf; afterwards
 * every rank holds all of them. */
rc_status rc_dist_allgather_f32(float *buf, const int *counts);
/* Root receives each rank's `count` elements (mine) at `offsets[r]` of whole;
 * other ranks may pass whole = NULL. Any sizes (sent in pieces). */
rc_status rc_dist_gather_f32(const float *mine, size_t count, float *whole, const size_t *offsets,
                             const size_t *counts, int root);
rc_status rc_dist_broadcast(void *buf, size_t bytes, int root);
rc_status rc_dist_barrier(void);

/* The slice [*lo, *hi) of n elements that rank `rank` of `size` owns under
 * ZeRO-1: contiguous, in rank order, sizes differing by at most one. */
static inline void rc_dist_shard(size_t n, int rank, int size, size_t *lo, size_t *hi) {
    *lo = n / (size_t)size * (size_t)rank + ((size_t)rank < n % (size_t)size ? (size_t)rank : n % (size_t)size);
    *hi = *lo + n / (size_t)size + ((size_t)rank < n % (size_t)size ? 1 : 0);
}

#endif
