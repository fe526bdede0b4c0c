/* Dynamic padding: a batch is as long as its longest sequence; and packed
 * pairs, whose shared prompt prefix is laid out once. */
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

/* The prefix a pair shares, stopping one token short of the shorter sequence
 * so each response keeps at least its last token, where its score is read. */
static size_t shared_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t limit = na < nb ? na : nb;
    limit = limit ? limit - 1 : 0;
    size_t k = 0;
    while (k < limit && a[k] == b[k]) k++;
    return k;
}

/* Where rc_model_forward reads the score: the rightmost token that is not pad. */
static size_t score_token(const int32_t *seq, size_t len, int32_t pad_id) {
    size_t last = 0;
    for (size_t t = 0; t < len; t++)
        if (seq[t] != pad_id) last = t;
    return last;
}

int rc_packed_pairs_length(const int32_t *const *seqs, const size_t *lens, int n) {
    size_t T = 1;
    for (int i = 0; i < n; i++) {
        size_t prefix = shared_prefix(seqs[i], lens[i], seqs[n + i], lens[n + i]);
        size_t len = lens[i] + lens[n + i] - prefix;
        if (len > T) T = len;
    }
    return (int)T;
}

int rc_pack_pairs(const int32_t *const *seqs, const size_t *lens, int n, int32_t pad_id,
                  int32_t *ids, int32_t *mask, int32_t *pos, int32_t *score_at, size_t *shared) {
    const int T = rc_packed_pairs_length(seqs, lens, n);
    *shared = 0;
    for (int i = 0; i < n; i++) {
        const int32_t *chosen = seqs[i], *rejected = seqs[n + i];
        const size_t nc = lens[i], nr = lens[n + i];
        const size_t prefix = shared_prefix(chosen, nc, rejected, nr);
        int32_t *row = ids + (size_t)i * T, *row_mask = mask + (size_t)i * T;
        int32_t *row_pos = pos + (size_t)i * T;
        size_t slot = 0;
        for (size_t t = 0; t < nc; t++, slot++) { /* the prefix, then the rest of chosen */
            row[slot] = chosen[t];
            row_mask[slot] = t < prefix ? 1 : 2;
            row_pos[slot] = (int32_t)t;
        }
        const size_t rejected_start = slot;
        for (size_t t = prefix; t < nr; t++, slot++) {
            row[slot] = rejected[t];
            row_mask[slot] = 3;
            row_pos[slot] = (int32_t)t;
        }
        for (; slot < (size_t)T; slot++) {
            row[slot] = pad_id;
            row_mask[slot] = 0;
            row_pos[slot] = -1;
        }
        size_t sc = score_token(chosen, nc, pad_id), sr = score_token(rejected, nr, pad_id);
        score_at[i] = (int32_t)((size_t)i * T + sc);
        score_at[n + i] = (int32_t)((size_t)i * T + (sr < prefix ? sr : rejected_start + sr - prefix));
        *shared += prefix;
    }
    return T;
}
