/* Dynamic padding: a batch is as long as its longest sequence; and packed
 * rows, in which sequences that share a beginning (a chosen/rejected pair's
 * prompt, responses to one prompt) lay it out once. */
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

/* The prefix two sequences share, stopping one token short of the shorter
 * so each keeps at least its last token on its own branch, where its score
 * may be read. */
size_t rc_shared_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
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

size_t rc_packed_row_length(const size_t *lens, int k, size_t prefix) {
    size_t total = prefix;
    for (int j = 0; j < k; j++) total += lens[j] - prefix;
    return total;
}

void rc_pack_row(const int32_t *const *seqs, const size_t *lens, int k, size_t prefix,
                 int32_t pad_id, int T, int row, int32_t *ids, int32_t *mask, int32_t *pos,
                 int32_t *score_at) {
    int32_t *row_ids = ids + (size_t)row * T, *row_mask = mask + (size_t)row * T;
    int32_t *row_pos = pos + (size_t)row * T;
    size_t slot = 0;
    for (size_t t = 0; t < prefix; t++, slot++) { /* taken from the first member */
        row_ids[slot] = seqs[0][t];
        row_mask[slot] = 1;
        row_pos[slot] = (int32_t)t;
    }
    for (int j = 0; j < k; j++) {
        const size_t rest_start = slot;
        for (size_t t = prefix; t < lens[j]; t++, slot++) {
            row_ids[slot] = seqs[j][t];
            row_mask[slot] = 2 + j;
            row_pos[slot] = (int32_t)t;
        }
        const size_t s = score_token(seqs[j], lens[j], pad_id);
        score_at[j] = (int32_t)((size_t)row * T + (s < prefix ? s : rest_start + s - prefix));
    }
    for (; slot < (size_t)T; slot++) {
        row_ids[slot] = pad_id;
        row_mask[slot] = 0;
        row_pos[slot] = -1;
    }
}

int rc_packed_pairs_length(const int32_t *const *seqs, const size_t *lens, int n) {
    size_t T = 1;
    for (int i = 0; i < n; i++) {
        size_t prefix = rc_shared_prefix(seqs[i], lens[i], seqs[n + i], lens[n + i]);
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
        const int32_t *pair[2] = {seqs[i], seqs[n + i]};
        const size_t pair_lens[2] = {lens[i], lens[n + i]};
        const size_t prefix = rc_shared_prefix(pair[0], pair_lens[0], pair[1], pair_lens[1]);
        int32_t slots[2];
        rc_pack_row(pair, pair_lens, 2, prefix, pad_id, T, i, ids, mask, pos, slots);
        score_at[i] = slots[0];
        score_at[n + i] = slots[1];
        *shared += prefix;
    }
    return T;
}
