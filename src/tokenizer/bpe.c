/* Byte-pair encoding of one pre-token: start from one id per byte and apply
 * the lowest-ranked merge, leftmost first, until none applies (what HF's
 * tokenizers BPE::merge_word and GPT2Tokenizer.bpe compute). Short words use a
 * flat array; long ones a linked list plus a min-heap of candidate merges, so
 * a megabyte-long word costs O(n log n) instead of O(n^2). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* ---- merge table: (left id, right id) -> (rank, merged id) ---- */

static const uint64_t EMPTY_PAIR = UINT64_MAX;

static size_t pair_hash(uint64_t pair) {
    pair ^= pair >> 29;
    pair *= UINT64_C(0xbf58476d1ce4e5b9);
    pair ^= pair >> 32;
    return (size_t)pair;
}

rc_status rc_merge_table_init(rc_merge_table *table, size_t expected) {
    table->n_slots = 1024;
    while (table->n_slots < expected * 2) table->n_slots <<= 1;
    table->n_used = 0;
    table->slots = malloc(table->n_slots * sizeof *table->slots);
    if (!table->slots)
        return rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate %zu merge slots", table->n_slots);
    for (size_t i = 0; i < table->n_slots; i++) table->slots[i].pair = EMPTY_PAIR;
    return RC_OK;
}

void rc_merge_table_free(rc_merge_table *table) {
    free(table->slots);
    memset(table, 0, sizeof *table);
}

static rc_merge_slot *merge_slot(const rc_merge_table *table, uint64_t pair) {
    size_t mask = table->n_slots - 1;
    for (size_t i = pair_hash(pair) & mask;; i = (i + 1) & mask) {
        rc_merge_slot *slot = &table->slots[i];
        if (slot->pair == pair || slot->pair == EMPTY_PAIR) return slot;
    }
}

rc_status rc_merge_table_put(rc_merge_table *table, int32_t left, int32_t right, int32_t rank,
                             int32_t merged_id) {
    if ((table->n_used + 1) * 2 > table->n_slots) {
        rc_merge_table bigger;
        rc_status st = rc_merge_table_init(&bigger, table->n_slots);
        if (st != RC_OK) return st;
        for (size_t i = 0; i < table->n_slots; i++) {
            if (table->slots[i].pair == EMPTY_PAIR) continue;
            *merge_slot(&bigger, table->slots[i].pair) = table->slots[i];
            bigger.n_used++;
        }
        rc_merge_table_free(table);
        *table = bigger;
    }
    uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    rc_merge_slot *slot = merge_slot(table, pair);
    if (slot->pair == EMPTY_PAIR) table->n_used++;
    slot->pair = pair;
    slot->rank = rank;
    slot->merged_id = merged_id;
    return RC_OK;
}

/* Rank of merging left+right (INT32_MAX when no merge exists). */
static inline int32_t merge_rank(const rc_merge_table *table, int32_t left, int32_t right,
                                 int32_t *merged) {
    uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    const rc_merge_slot *slot = merge_slot(table, pair);
    if (slot->pair == EMPTY_PAIR) {
        *merged = -1;
        return INT32_MAX;
    }
    *merged = slot->merged_id;
    return slot->rank;
}

/* ---- short words: flat arrays, rescanned per merge ---- */

enum { SHORT_WORD = 64 };

static size_t merge_short(const rc_merge_table *table, int32_t *sym, size_t n) {
    int32_t rank[SHORT_WORD], merged[SHORT_WORD];
    for (size_t i = 0; i + 1 < n; i++) rank[i] = merge_rank(table, sym[i], sym[i + 1], &merged[i]);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == INT32_MAX) break;
        sym[best] = merged[best];
        /* drop symbol best+1 and pair best; pair best+1 slides into slot best */
        size_t tail = n - best - 2;
        memmove(sym + best + 1, sym + best + 2, tail * sizeof *sym);
        memmove(rank + best, rank + best + 1, tail * sizeof *rank);
        memmove(merged + best, merged + best + 1, tail * sizeof *merged);
        n--;
        if (best > 0) rank[best - 1] = merge_rank(table, sym[best - 1], sym[best], &merged[best - 1]);
        if (best + 1 < n) rank[best] = merge_rank(table, sym[best], sym[best + 1], &merged[best]);
    }
    return n;
}

/* ---- long words: linked list + binary min-heap on (rank, position) ---- */

typedef struct {
    int32_t rank;
    int32_t pos; /* index of the left symbol */
} candidate;

static inline int candidate_less(candidate a, candidate b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(candidate *heap, size_t *n, candidate c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!candidate_less(c, heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = c;
}

static candidate heap_pop(candidate *heap, size_t *n) {
    candidate top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && candidate_less(heap[child + 1], heap[child])) child++;
        if (!candidate_less(heap[child], last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n) heap[i] = last;
    return top;
}

/* Merges sym[0..n) in place; returns the new count. Scratch from the worker. */
static rc_status merge_long(const rc_merge_table *table, rc_tok_worker *w, int32_t *sym,
                            size_t n, size_t *n_out) {
    /* next/prev links (n each) and a heap that holds at most n-1 initial
     * candidates plus 2 per merge (< 3n) */
    size_t need = n * 2 * sizeof(int32_t) + 3 * n * sizeof(candidate);
    if (need > w->bpe_scratch_cap) {
        void *p = realloc(w->bpe_scratch, need);
        if (!p) return rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate %zu bytes for BPE of a %zu-byte word", need, n);
        w->bpe_scratch = p;
        w->bpe_scratch_cap = need;
    }
    candidate *heap = w->bpe_scratch;
    int32_t *next = (int32_t *)(heap + 3 * n);
    int32_t *prev = next + n;
    size_t heap_n = 0;
    for (size_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
    }
    int32_t merged;
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = merge_rank(table, sym[i], sym[i + 1], &merged);
        if (r != INT32_MAX) heap_push(heap, &heap_n, (candidate){r, (int32_t)i});
    }
    while (heap_n) {
        candidate c = heap_pop(heap, &heap_n);
        int32_t left = c.pos, right = next[left];
        if (sym[left] < 0 || right < 0) continue;
        /* ranks are unique per pair, so an equal rank means the same pair is
         * still there; otherwise this candidate went stale */
        if (merge_rank(table, sym[left], sym[right], &merged) != c.rank) continue;
        sym[left] = merged;
        sym[right] = -1;
        next[left] = next[right];
        if (next[right] >= 0) prev[next[right]] = left;
        if (prev[left] >= 0) {
            int32_t r = merge_rank(table, sym[prev[left]], sym[left], &merged);
            if (r != INT32_MAX) heap_push(heap, &heap_n, (candidate){r, prev[left]});
        }
        if (next[left] >= 0) {
            int32_t r = merge_rank(table, sym[left], sym[next[left]], &merged);
            if (r != INT32_MAX) heap_push(heap, &heap_n, (candidate){r, left});
        }
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
    *n_out = k;
    return RC_OK;
}

/* Appends the ids of a word found whole in the vocabulary (ignore_merges). */
static int lookup_whole_word(const rc_tokenizer *tok, rc_tok_worker *w, const unsigned char *word,
                             size_t len, rc_id_vec *out) {
    if (len > 256) return 0; /* no vocabulary holds tokens this long */
    char buf[256 * 2];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) k += rc_utf8_encode(rc_byte_to_codepoint(word[i]), buf + k);
    int32_t id = rc_string_map_get(&tok->vocab, buf, k);
    (void)w;
    if (id < 0) return 0;
    out->data[out->len++] = id;
    return 1;
}

rc_status rc_bpe_word(const rc_tokenizer *tok, rc_tok_worker *w, const unsigned char *word,
                      size_t len, rc_id_vec *out) {
    if (len > INT32_MAX) return rc_fail(RC_ERR_INVALID_ARG, "tokenizer: a pre-token of %zu bytes is too long", len);
    rc_status st = rc_id_vec_reserve(out, len);
    if (st != RC_OK) return st;
    if (tok->ignore_merges && lookup_whole_word(tok, w, word, len, out)) return RC_OK;

    uint64_t hash = 0;
    if (len <= RC_WORD_CACHE_MAX_KEY) {
        hash = rc_hash_bytes(word, len);
        size_t n_cached;
        const int32_t *cached = rc_word_cache_get(w->cache, (const char *)word, len, hash, &n_cached);
        if (cached) {
            memcpy(out->data + out->len, cached, n_cached * sizeof *cached);
            out->len += n_cached;
            return RC_OK;
        }
    }

    /* one symbol per byte, written straight into the output and merged there */
    int32_t *sym = out->data + out->len;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = tok->byte_ids[word[i]];
        if (id < 0) id = tok->model_unk_id; /* a byte missing from the vocab */
        if (id >= 0) sym[n++] = id;
    }
    if (n <= SHORT_WORD) {
        n = merge_short(&tok->merges, sym, n);
    } else {
        st = merge_long(&tok->merges, w, sym, n, &n);
        if (st != RC_OK) return st;
    }
    if (len <= RC_WORD_CACHE_MAX_KEY) rc_word_cache_put(w->cache, (const char *)word, len, hash, sym, n);
    out->len += n;
    return RC_OK;
}
