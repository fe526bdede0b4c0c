/* The per-thread cache from a pre-token's bytes to its BPE ids. Words repeat
 * heavily in text, so most pre-tokens skip BPE entirely. Each worker owns one
 * cache (no locking); it has fixed capacity and is emptied when full, which
 * bounds memory without the bookkeeping of an LRU. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

enum {
    CACHE_SLOTS = 1 << 16,          /* power of two */
    CACHE_MAX_WORDS = CACHE_SLOTS / 2,
    CACHE_KEY_BYTES = 1 << 20,
    CACHE_ID_COUNT = 1 << 18
};

typedef struct {
    uint64_t hash;
    uint32_t key_offset;
    uint32_t ids_offset;
    uint16_t key_len; /* 0: empty slot (pre-tokens are never empty) */
    uint16_t n_ids;
} cache_slot;

struct rc_word_cache {
    cache_slot *slots;
    size_t n_words;
    char *keys;
    size_t keys_len;
    int32_t *ids;
    size_t ids_len;
};

rc_word_cache *rc_word_cache_create(void) {
    rc_word_cache *cache = calloc(1, sizeof *cache);
    if (!cache) return NULL;
    cache->slots = calloc(CACHE_SLOTS, sizeof *cache->slots);
    cache->keys = malloc(CACHE_KEY_BYTES);
    cache->ids = malloc(CACHE_ID_COUNT * sizeof *cache->ids);
    if (!cache->slots || !cache->keys || !cache->ids) {
        rc_word_cache_free(cache);
        return NULL;
    }
    return cache;
}

void rc_word_cache_free(rc_word_cache *cache) {
    if (!cache) return;
    free(cache->slots);
    free(cache->keys);
    free(cache->ids);
    free(cache);
}

const int32_t *rc_word_cache_get(const rc_word_cache *cache, const char *word, size_t len,
                                 uint64_t hash, size_t *n_ids) {
    if (len > RC_WORD_CACHE_MAX_KEY) return NULL;
    for (size_t i = (size_t)hash & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        const cache_slot *slot = &cache->slots[i];
        if (!slot->key_len) return NULL;
        if (slot->hash == hash && slot->key_len == len &&
            memcmp(cache->keys + slot->key_offset, word, len) == 0) {
            *n_ids = slot->n_ids;
            return cache->ids + slot->ids_offset;
        }
    }
}

static void clear(rc_word_cache *cache) {
    memset(cache->slots, 0, CACHE_SLOTS * sizeof *cache->slots);
    cache->n_words = cache->keys_len = cache->ids_len = 0;
}

void rc_word_cache_put(rc_word_cache *cache, const char *word, size_t len, uint64_t hash,
                       const int32_t *ids, size_t n_ids) {
    if (len == 0 || len > RC_WORD_CACHE_MAX_KEY || n_ids > RC_WORD_CACHE_MAX_KEY) return;
    if (cache->n_words + 1 > CACHE_MAX_WORDS || cache->keys_len + len > CACHE_KEY_BYTES ||
        cache->ids_len + n_ids > CACHE_ID_COUNT)
        clear(cache);
    size_t i = (size_t)hash & (CACHE_SLOTS - 1);
    while (cache->slots[i].key_len) {
        const cache_slot *slot = &cache->slots[i];
        if (slot->hash == hash && slot->key_len == len &&
            memcmp(cache->keys + slot->key_offset, word, len) == 0)
            return; /* already cached */
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
    cache_slot *slot = &cache->slots[i];
    memcpy(cache->keys + cache->keys_len, word, len);
    memcpy(cache->ids + cache->ids_len, ids, n_ids * sizeof *ids);
    slot->hash = hash;
    slot->key_offset = (uint32_t)cache->keys_len;
    slot->ids_offset = (uint32_t)cache->ids_len;
    slot->key_len = (uint16_t)len;
    slot->n_ids = (uint16_t)n_ids;
    cache->keys_len += len;
    cache->ids_len += n_ids;
    cache->n_words++;
}
