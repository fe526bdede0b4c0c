/* Dynamic padding: a batch is as long as its longest sequence. */
#include <string.h>

#include "rewardc/workflow.h"

int rc_pad_batch(const int32_t *const *seqs, const size_t *lens, int n, int32_t pad_id,
                 int32_t *ids, int32_t *mask) {
    size_t T = 1;
    for (int i = 0; i < n; i++)
        if (lens[i] > T) T = lens[i];
    for (int i = 0; i < n; i++) {
        int32_t *row = ids + (size_t)i * T, *row_mask = mask + (size_t)i * T;
        memcpy(row, seqs[i], lens[i] * sizeof *row);
        for (size_t t = 0; t < T; t++) {
            if (t >= lens[i]) row[t] = pad_id;
            row_mask[t] = t < lens[i];
        }
    }
    return (int)T;
}
