/* An open-addressing hash map from byte strings to int32 values (the
 * vocabulary), and the byte hash the word cache shares. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= UINT64_C(0xd6e8feb86659fd93);
    x ^= x >> 32;
    x *= UINT64_C(0xd6e8feb86659fd93);
    x ^= x >> 32;
    return x;
}

uint64_t rc_hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * UINT64_C(0xff51afd7ed558ccd);
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++) tail |= (uint64_t)p[i] << (8 * i);
    return mix64(h ^ tail ^ (tail << 17));
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

rc_status rc_string_map_init(rc_string_map *map, size_t expected) {
    memset(map, 0, sizeof *map);
    map->n_slots = pow2_at_least(expected * 2);
    map->slots = calloc(map->n_slots, sizeof *map->slots);
    if (!map->slots)
        return rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate a hash map of %zu slots",
                       map->n_slots);
    return RC_OK;
}

void rc_string_map_free(rc_string_map *map) {
    free(map->slots);
    free(map->keys);
    memset(map, 0, sizeof *map);
}

static rc_string_map_slot *find_slot(const rc_string_map *map, const char *key, size_t len,
                                     uint64_t hash) {
    size_t mask = map->n_slots - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        rc_string_map_slot *slot = &map->slots[i];
        if (!slot->used) return slot;
        if (slot->hash == hash && slot->key_len == len &&
            memcmp(map->keys + slot->key_offset, key, len) == 0)
            return slot;
    }
}

static rc_status grow(rc_string_map *map) {
    rc_string_map bigger = *map;
    bigger.n_slots = map->n_slots * 2;
    bigger.slots = calloc(bigger.n_slots, sizeof *bigger.slots);
    if (!bigger.slots)
        return rc_fail(RC_ERR_OOM, "tokenizer: cannot grow a hash map to %zu slots",
                       bigger.n_slots);
    size_t mask = bigger.n_slots - 1;
    for (size_t s = 0; s < map->n_slots; s++) {
        if (!map->slots[s].used) continue;
        size_t i = (size_t)map->slots[s].hash & mask;
        while (bigger.slots[i].used) i = (i + 1) & mask;
        bigger.slots[i] = map->slots[s];
    }
    free(map->slots);
    *map = bigger;
    return RC_OK;
}

rc_status rc_string_map_put(rc_string_map *map, const char *key, size_t len, int32_t value) {
    if (len > UINT32_MAX || map->keys_len + len > UINT32_MAX)
        return rc_fail(RC_ERR_INVALID_ARG, "tokenizer: vocabulary strings exceed 4 GiB");
    if ((map->n_used + 1) * 2 > map->n_slots) {
        rc_status st = grow(map);
        if (st != RC_OK) return st;
    }
    uint64_t hash = rc_hash_bytes(key, len);
    rc_string_map_slot *slot = find_slot(map, key, len, hash);
    if (slot->used) {
        slot->value = value;
        return RC_OK;
    }
    if (map->keys_len + len > map->keys_cap) {
        size_t cap = map->keys_cap ? map->keys_cap : 4096;
        while (cap < map->keys_len + len) cap *= 2;
        char *keys = realloc(map->keys, cap);
        if (!keys) return rc_fail(RC_ERR_OOM, "tokenizer: cannot grow key storage to %zu bytes", cap);
        map->keys = keys;
        map->keys_cap = cap;
    }
    if (len) memcpy(map->keys + map->keys_len, key, len);
    slot->used = 1;
    slot->hash = hash;
    slot->key_offset = (uint32_t)map->keys_len;
    slot->key_len = (uint32_t)len;
    slot->value = value;
    map->keys_len += len;
    map->n_used++;
    return RC_OK;
}

int32_t rc_string_map_get(const rc_string_map *map, const char *key, size_t len) {
    if (!map->slots) return -1;
    const rc_string_map_slot *slot = find_slot(map, key, len, rc_hash_bytes(key, len));
    return slot->used ? slot->value : -1;
}
