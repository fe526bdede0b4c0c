/* The job on MPI (see dist.h). MPI_COMM_WORLD with MPI's default error
 * handler, MPI_ERRORS_ARE_FATAL: a peer that dies ends the job (mpirun
 * names the rank) rather than leaving the others waiting. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

static int initialised, started_mpi, world_rank, world_size = 1;

/* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK,
 * MPICH's Hydra PMI_SIZE: without one of them this is a plain process and
 * MPI is not started at all (a singleton MPI_Init is slow and may warn). */
static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

rc_status rc_dist_init(void) {
    if (initialised) return RC_OK;
    initialised = 1;
    if (!launched_by_mpirun()) return RC_OK;
    int provided = 0;
    /* one thread calls MPI; OpenMP threads never do */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return rc_fail(RC_ERR_BACKEND, "MPI_Init failed");
    started_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    return RC_OK;
}

void rc_dist_finalize(void) {
    if (started_mpi) MPI_Finalize();
    started_mpi = 0;
}

int rc_dist_rank(void) { return world_rank; }
int rc_dist_size(void) { return world_size; }

const char *rc_dist_library(void) {
    static char text[MPI_MAX_LIBRARY_VERSION_STRING + 8];
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(version, &len);
    char *comma = strchr(version, ',');
    if (comma) *comma = '\0';
    snprintf(text, sizeof text, "MPI (%s)", version);
    return text;
}

void rc_dist_abort(const char *message) {
    fprintf(stderr, "rewardc: rank %d of %d: %s\n", world_rank, world_size, message);
    fflush(stderr);
    if (started_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static rc_status check(int code, const char *what) {
    if (code == MPI_SUCCESS) return RC_OK;
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    return rc_fail(RC_ERR_BACKEND, "%s failed on rank %d: %s", what, world_rank, text);
}

/* MPI counts are ints: larger buffers go in pieces of this many elements */
#define PIECE ((size_t)1 << 30)

rc_status rc_dist_allreduce_sum_f32(float *buf, size_t n) {
    if (!started_mpi) return RC_OK;
    rc_status st = RC_OK;
    for (size_t at = 0; at < n && st == RC_OK; at += PIECE) {
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        st = check(MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                   "MPI_Allreduce");
    }
    return st;
}

rc_status rc_dist_allreduce_sum_f64(double *buf, size_t n) {
    if (!started_mpi) return RC_OK;
    rc_status st = RC_OK;
    for (size_t at = 0; at < n && st == RC_OK; at += PIECE) {
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        st = check(MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                   "MPI_Allreduce");
    }
    return st;
}

rc_status rc_dist_reduce_scatter_sum_f32(const float *send, float *recv, const int *counts) {
    if (!started_mpi) {
        if (recv != send) memmove(recv, send, (size_t)counts[0] * sizeof *recv);
        return RC_OK;
    }
    return check(MPI_Reduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                 "MPI_Reduce_scatter");
}

rc_status rc_dist_allgather_f32(float *buf, const int *counts) {
    if (!started_mpi) return RC_OK;
    int *offsets = malloc((size_t)world_size * sizeof *offsets);
    if (!offsets) return rc_fail(RC_ERR_OOM, "cannot allocate all-gather offsets");
    long total = 0;
    for (int r = 0; r < world_size; r++) {
        offsets[r] = (int)total;
        total += counts[r];
    }
    rc_status st = total > INT_MAX ? rc_fail(RC_ERR_INVALID_ARG, "all-gather of %ld elements", total)
                                   : check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf,
                                                          counts, offsets, MPI_FLOAT, MPI_COMM_WORLD),
                                           "MPI_Allgatherv");
    free(offsets);
    return st;
}

rc_status rc_dist_gather_f32(const float *mine, size_t count, float *whole, const size_t *offsets,
                             const size_t *counts, int root) {
    if (world_rank == root && whole + offsets[root] != mine)
        memmove(whole + offsets[root], mine, count * sizeof *mine);
    if (!started_mpi) return RC_OK;
    /* point to point, rank by rank, in pieces: any size, and only the root
     * holds the whole */
    rc_status st = RC_OK;
    for (int r = 0; r < world_size && st == RC_OK; r++) {
        if (r == root || (world_rank != root && world_rank != r)) continue;
        for (size_t at = 0; at < counts[r] && st == RC_OK; at += PIECE) {
            int piece = (int)(counts[r] - at < PIECE ? counts[r] - at : PIECE);
            if (world_rank == root)
                st = check(MPI_Recv(whole + offsets[r] + at, piece, MPI_FLOAT, r, 0, MPI_COMM_WORLD,
                                    MPI_STATUS_IGNORE), "MPI_Recv");
            else
                st = check(MPI_Send(mine + at, piece, MPI_FLOAT, root, 0, MPI_COMM_WORLD), "MPI_Send");
        }
    }
    return st;
}

rc_status rc_dist_broadcast(void *buf, size_t bytes, int root) {
    if (!started_mpi) return RC_OK;
    rc_status st = RC_OK;
    for (size_t at = 0; at < bytes && st == RC_OK; at += PIECE) {
        int count = (int)(bytes - at < PIECE ? bytes - at : PIECE);
        st = check(MPI_Bcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
    return st;
}

rc_status rc_dist_barrier(void) {
    if (!started_mpi) return RC_OK;
    return check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}
