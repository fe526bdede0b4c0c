/* Gradient synchronisation for data-parallel training: after every rank's
 * backward over its share of the global batch, the gradients are summed over
 * ranks, in buckets staged through host memory (any backend), with
 * MPI_Allreduce (ZeRO-0: every rank then takes the same optimizer step on
 * the same numbers, so the parameters stay identical) or MPI_Reduce_scatter
 * (ZeRO-1: each rank receives the sum for its own slice of the flat
 * parameter buffer, updates that slice with the moments it alone keeps, and
 * the updated slices are all-gathered). In a job of one every call is
 * nothing but the plain gradient norm, so a one-process run is unchanged. */
#ifndef REWARDC_DIST_GRAD_SYNC_H
#define REWARDC_DIST_GRAD_SYNC_H

#include "rewardc/model.h"

typedef struct rc_grad_sync rc_grad_sync;

/* zero_stage: 0 or 1. bucket_elements: floats per collective (0: default). */
rc_status rc_grad_sync_create(rc_model *m, int zero_stage, size_t bucket_elements,
                              rc_grad_sync **out);
void rc_grad_sync_free(rc_grad_sync *s);
/* Rank 0's parameters to every rank: all start from the same numbers even
 * where a model's initialisation could differ. */
rc_status rc_grad_sync_broadcast_params(rc_grad_sync *s);
/* Sums the gradients over ranks: all of them (ZeRO-0) or this rank's slice. */
rc_status rc_grad_sync_reduce(rc_grad_sync *s);
/* The L2 norm of the summed gradients of the whole model, the same on every
 * rank (what clipping needs). */
rc_status rc_grad_sync_norm(rc_grad_sync *s, double *norm);
/* ZeRO-1, after this rank updated its slice: every slice to every rank. */
rc_status rc_grad_sync_gather_params(rc_grad_sync *s);

#endif
