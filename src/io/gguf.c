/* GGUF reader: maps the file, then parses and validates header, metadata and
 * tensor infos through a bounds-checked cursor, so no length, count or offset
 * from the file is used before it is known to fit. */
#define _POSIX_C_SOURCE 200809L
#include "rewardc/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32u
/* Longest key or tensor name accepted (ggml's own limit for names is 64;
 * keys have none, this only guards against nonsense). */
#define GGUF_MAX_NAME_BYTES 65536u

struct rc_gguf {
    char *path;
    void *map; /* owned mapping (NULL for rc_gguf_open_memory) */
    size_t map_len;
    const unsigned char *base;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    size_t data_start;
    rc_gguf_kv *kvs;
    size_t n_kvs;
    rc_gguf_tensor *tensors;
    size_t n_tensors;
};

/* ---- Bounds-checked cursor ------------------------------------------------ */

typedef struct {
    const rc_gguf *g;
    size_t pos;
} cursor;

static size_t remaining(const cursor *c) { return c->g->size - c->pos; }

static uint64_t load_le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* `what` describes the field for the error ("key 'x'", "tensor 'y'"). */
static rc_status take(cursor *c, uint64_t n, const char *what, const unsigned char **out) {
    if (n > remaining(c))
        return rc_fail(RC_ERR_FORMAT, "%s: %s needs %" PRIu64 " bytes at offset %zu, but the file ends after %zu",
                       c->g->path, what, n, c->pos, remaining(c));
    *out = c->g->base + c->pos;
    c->pos += (size_t)n;
    return RC_OK;
}

static rc_status read_u32(cursor *c, const char *what, uint32_t *out) {
    const unsigned char *p = NULL;
    rc_status st = take(c, 4, what, &p);
    if (st == RC_OK) *out = (uint32_t)load_le(p, 4);
    return st;
}

static rc_status read_u64(cursor *c, const char *what, uint64_t *out) {
    const unsigned char *p = NULL;
    rc_status st = take(c, 8, what, &p);
    if (st == RC_OK) *out = load_le(p, 8);
    return st;
}

static rc_status read_string(cursor *c, const char *what, rc_gguf_string *out) {
    uint64_t len;
    rc_status st = read_u64(c, what, &len);
    const unsigned char *p = NULL;
    if (st == RC_OK) st = take(c, len, what, &p);
    if (st != RC_OK) return st;
    out->ptr = (const char *)p;
    out->len = len;
    return RC_OK;
}

/* A key or tensor name as a C string: no NUL inside, bounded length. */
static rc_status read_name(cursor *c, const char *what, char **out) {
    rc_gguf_string s;
    rc_status st = read_string(c, what, &s);
    if (st != RC_OK) return st;
    if (s.len > GGUF_MAX_NAME_BYTES)
        return rc_fail(RC_ERR_FORMAT, "%s: %s is %" PRIu64 " bytes long", c->g->path, what, s.len);
    if (memchr(s.ptr, '\0', (size_t)s.len))
        return rc_fail(RC_ERR_FORMAT, "%s: %s contains a NUL byte", c->g->path, what);
    char *name = malloc((size_t)s.len + 1);
    if (!name) return rc_fail(RC_ERR_OOM, "%s: out of memory reading %s", c->g->path, what);
    memcpy(name, s.ptr, (size_t)s.len);
    name[s.len] = '\0';
    *out = name;
    return RC_OK;
}

/* ---- Metadata ------------------------------------------------------------------ */

static const char *const value_type_names[RC_GGUF_VALUE_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};

/* Bytes of one fixed-size value; 0 for STRING and ARRAY. */
static uint64_t scalar_size(rc_gguf_value_type t) {
    switch (t) {
    case RC_GGUF_UINT8: case RC_GGUF_INT8: case RC_GGUF_BOOL: return 1;
    case RC_GGUF_UINT16: case RC_GGUF_INT16: return 2;
    case RC_GGUF_UINT32: case RC_GGUF_INT32: case RC_GGUF_FLOAT32: return 4;
    case RC_GGUF_UINT64: case RC_GGUF_INT64: case RC_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static rc_status read_value_type(cursor *c, const char *key, rc_gguf_value_type *out) {
    uint32_t t;
    rc_status st = read_u32(c, key, &t);
    if (st != RC_OK) return st;
    if (t >= RC_GGUF_VALUE_TYPE_COUNT)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' has unknown value type %" PRIu32, c->g->path, key, t);
    *out = (rc_gguf_value_type)t;
    return RC_OK;
}

static rc_status skip_value(cursor *c, const char *key, rc_gguf_value_type t, int depth);

/* Skips (validating) `count` array elements of type elem. */
static rc_status skip_elements(cursor *c, const char *key, rc_gguf_value_type elem, uint64_t count, int depth) {
    uint64_t size = scalar_size(elem);
    if (size) {
        const unsigned char *p;
        if (count > remaining(c) / size)
            return rc_fail(RC_ERR_FORMAT, "%s: key '%s' claims %" PRIu64 " elements of %s, more than the file holds",
                           c->g->path, key, count, value_type_names[elem]);
        return take(c, count * size, key, &p);
    }
    /* each string or array element takes at least 8 bytes: a cheap bound first */
    if (count > remaining(c) / 8)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' claims %" PRIu64 " elements, more than the file holds",
                       c->g->path, key, count);
    rc_status st = RC_OK;
    for (uint64_t i = 0; i < count && st == RC_OK; i++) st = skip_value(c, key, elem, depth);
    return st;
}

/* Skips (validating) one value of type t; arrays may nest. */
static rc_status skip_value(cursor *c, const char *key, rc_gguf_value_type t, int depth) {
    if (t == RC_GGUF_STRING) {
        rc_gguf_string s;
        return read_string(c, key, &s);
    }
    if (t != RC_GGUF_ARRAY) {
        const unsigned char *p;
        return take(c, scalar_size(t), key, &p);
    }
    if (depth > 8) return rc_fail(RC_ERR_FORMAT, "%s: key '%s' nests arrays too deeply", c->g->path, key);
    rc_gguf_value_type elem;
    uint64_t count;
    rc_status st = read_value_type(c, key, &elem);
    if (st == RC_OK) st = read_u64(c, key, &count);
    if (st != RC_OK) return st;
    return skip_elements(c, key, elem, count, depth + 1);
}

static rc_status read_kv(cursor *c, size_t index, rc_gguf_kv *kv) {
    char what[64];
    snprintf(what, sizeof what, "key #%zu", index);
    rc_status st = read_name(c, what, (char **)&kv->key);
    if (st == RC_OK) st = read_value_type(c, kv->key, &kv->type);
    if (st != RC_OK) return st;
    kv->elem_type = kv->type;
    kv->count = 1;
    if (kv->type == RC_GGUF_ARRAY) {
        st = read_value_type(c, kv->key, &kv->elem_type);
        if (st == RC_OK) st = read_u64(c, kv->key, &kv->count);
        if (st != RC_OK) return st;
    }
    kv->data = c->g->base + c->pos;
    if (kv->elem_type != RC_GGUF_STRING) {
        if (kv->type != RC_GGUF_ARRAY) return skip_value(c, kv->key, kv->type, 0);
        return skip_elements(c, kv->key, kv->elem_type, kv->count, 1);
    }
    /* strings: every one is at least its 8-byte length, which bounds the count */
    if (kv->count > remaining(c) / 8)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' claims %" PRIu64 " strings, more than the file holds",
                       c->g->path, kv->key, kv->count);
    kv->strings = malloc((size_t)(kv->count ? kv->count : 1) * sizeof *kv->strings);
    if (!kv->strings)
        return rc_fail(RC_ERR_OOM, "%s: out of memory for the %" PRIu64 " strings of key '%s'", c->g->path, kv->count,
                       kv->key);
    for (uint64_t i = 0; i < kv->count && st == RC_OK; i++) st = read_string(c, kv->key, &kv->strings[i]);
    return st;
}

/* ---- Tensor infos -------------------------------------------------------------- */

static rc_status read_tensor_info(cursor *c, size_t index, rc_gguf_tensor *t) {
    char what[64];
    snprintf(what, sizeof what, "tensor #%zu's name", index);
    rc_status st = read_name(c, what, (char **)&t->name);
    if (st != RC_OK) return st;
    const char *path = c->g->path;
    uint32_t n_dims;
    st = read_u32(c, t->name, &n_dims);
    if (st != RC_OK) return st;
    if (n_dims < 1 || n_dims > RC_GGUF_MAX_DIMS)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' has %" PRIu32 " dimensions (1 to %d allowed)", path, t->name,
                       n_dims, RC_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    t->n_elements = 1;
    for (int i = 0; i < RC_GGUF_MAX_DIMS; i++) t->dims[i] = 1;
    for (int i = 0; i < t->n_dims; i++) {
        st = read_u64(c, t->name, &t->dims[i]);
        if (st != RC_OK) return st;
        /* ggml counts elements in int64_t */
        if (t->dims[i] > (uint64_t)INT64_MAX ||
            (t->dims[i] != 0 && t->n_elements > (uint64_t)INT64_MAX / t->dims[i]))
            return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': dimensions overflow (dim %d = %" PRIu64 ")", path,
                           t->name, i, t->dims[i]);
        t->n_elements *= t->dims[i];
    }
    st = read_u32(c, t->name, &t->type);
    if (st == RC_OK) st = read_u64(c, t->name, &t->offset);
    if (st != RC_OK) return st;
    uint32_t block_elems, block_bytes;
    if (!rc_ggml_type_block(t->type, &block_elems, &block_bytes))
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' has unknown ggml type %" PRIu32, path, t->name, t->type);
    if (t->dims[0] % block_elems != 0)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': row length %" PRIu64 " is not a multiple of %s's block of %" PRIu32,
                       path, t->name, t->dims[0], rc_ggml_type_name(t->type), block_elems);
    uint64_t blocks = t->n_elements / block_elems;
    if (blocks > SIZE_MAX / block_bytes)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' is too large", path, t->name);
    t->n_bytes = (size_t)(blocks * block_bytes);
    return RC_OK;
}

static int compare_by_offset(const void *a, const void *b) {
    const rc_gguf_tensor *x = *(const rc_gguf_tensor *const *)a, *y = *(const rc_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places every tensor in the data area: aligned, inside the file, no overlaps. */
static rc_status place_tensors(rc_gguf *g) {
    uint64_t data_size = g->size - g->data_start;
    for (size_t i = 0; i < g->n_tensors; i++) {
        rc_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' at offset %" PRIu64 " is not aligned to %" PRIu64, g->path,
                           t->name, t->offset, g->alignment);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return rc_fail(RC_ERR_FORMAT,
                           "%s: tensor '%s' (%zu bytes at data offset %" PRIu64 ") runs past the end of the file "
                           "(data area of %" PRIu64 " bytes)",
                           g->path, t->name, t->n_bytes, t->offset, data_size);
        t->data = g->base + g->data_start + t->offset;
    }
    if (g->n_tensors < 2) return RC_OK;
    const rc_gguf_tensor **order = malloc(g->n_tensors * sizeof *order);
    if (!order) return rc_fail(RC_ERR_OOM, "%s: out of memory", g->path);
    for (size_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
    qsort(order, g->n_tensors, sizeof *order, compare_by_offset);
    rc_status st = RC_OK;
    for (size_t i = 1; i < g->n_tensors && st == RC_OK; i++)
        if (order[i - 1]->offset + order[i - 1]->n_bytes > order[i]->offset)
            st = rc_fail(RC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data area", g->path, order[i - 1]->name,
                         order[i]->name);
    free(order);
    return st;
}

/* ---- Whole file ------------------------------------------------------------------ */

static rc_status check_unique(const rc_gguf *g) {
    /* quadratic only in the number of keys (tens); tensors get a sorted check */
    for (size_t i = 0; i < g->n_kvs; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(g->kvs[i].key, g->kvs[j].key) == 0)
                return rc_fail(RC_ERR_FORMAT, "%s: key '%s' appears twice", g->path, g->kvs[i].key);
    return RC_OK;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static rc_status check_unique_tensors(const rc_gguf *g) {
    if (g->n_tensors < 2) return RC_OK;
    const char **names = malloc(g->n_tensors * sizeof *names);
    if (!names) return rc_fail(RC_ERR_OOM, "%s: out of memory", g->path);
    for (size_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    qsort(names, g->n_tensors, sizeof *names, compare_names);
    rc_status st = RC_OK;
    for (size_t i = 1; i < g->n_tensors && st == RC_OK; i++)
        if (strcmp(names[i], names[i - 1]) == 0)
            st = rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' appears twice", g->path, names[i]);
    free(names);
    return st;
}

static rc_status read_alignment(rc_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const rc_gguf_kv *kv = rc_gguf_find(g, "general.alignment");
    if (!kv) return RC_OK;
    if (kv->type != RC_GGUF_UINT32)
        return rc_fail(RC_ERR_FORMAT, "%s: key 'general.alignment' must be UINT32, not %s", g->path,
                       value_type_names[kv->type]);
    uint64_t a = load_le(kv->data, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return rc_fail(RC_ERR_FORMAT, "%s: general.alignment %" PRIu64 " is not a power of two", g->path, a);
    g->alignment = a;
    return RC_OK;
}

static rc_status parse(rc_gguf *g) {
    cursor c = {g, 0};
    const unsigned char *magic = NULL;
    rc_status st = take(&c, 4, "the magic", &magic);
    if (st != RC_OK) return rc_fail(RC_ERR_FORMAT, "%s: too short for a GGUF file (%zu bytes)", g->path, g->size);
    if (memcmp(magic, "GGUF", 4) != 0) return rc_fail(RC_ERR_FORMAT, "%s: not a GGUF file (bad magic)", g->path);
    st = read_u32(&c, "the version", &g->version);
    if (st != RC_OK) return st;
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: a big-endian GGUF file; rewardc reads little-endian ones", g->path);
    if (g->version == 1)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: GGUF version 1 (32-bit counts) is not supported; convert it to v3",
                       g->path);
    if (g->version != 2 && g->version != 3)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: unknown GGUF version %" PRIu32, g->path, g->version);
    uint64_t n_tensors, n_kvs;
    st = read_u64(&c, "the tensor count", &n_tensors);
    if (st == RC_OK) st = read_u64(&c, "the key/value count", &n_kvs);
    if (st != RC_OK) return st;
    /* A key/value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8. */
    if (n_kvs > remaining(&c) / 14)
        return rc_fail(RC_ERR_FORMAT, "%s: header claims %" PRIu64 " keys, more than the file can hold", g->path, n_kvs);
    if (n_tensors > remaining(&c) / 33)
        return rc_fail(RC_ERR_FORMAT, "%s: header claims %" PRIu64 " tensors, more than the file can hold", g->path,
                       n_tensors);
    g->kvs = calloc(n_kvs ? (size_t)n_kvs : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors) return rc_fail(RC_ERR_OOM, "%s: out of memory for the header", g->path);
    for (size_t i = 0; i < n_kvs && st == RC_OK; i++) {
        g->n_kvs = i + 1; /* counted before reading, so a partial entry is freed */
        st = read_kv(&c, i, &g->kvs[i]);
    }
    if (st == RC_OK) st = check_unique(g);
    if (st == RC_OK) st = read_alignment(g);
    for (size_t i = 0; i < n_tensors && st == RC_OK; i++) {
        g->n_tensors = i + 1;
        st = read_tensor_info(&c, i, &g->tensors[i]);
    }
    if (st == RC_OK) st = check_unique_tensors(g);
    if (st != RC_OK) return st;
    /* the data area starts at the next multiple of the alignment */
    uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (n_tensors > 0 && pad > remaining(&c))
        return rc_fail(RC_ERR_FORMAT, "%s: the file ends inside the padding before the tensor data", g->path);
    g->data_start = c.pos + (size_t)(pad <= remaining(&c) ? pad : remaining(&c));
    return place_tensors(g);
}

rc_status rc_gguf_open_memory(const void *data, size_t size, const char *name, rc_gguf **out) {
    *out = NULL;
    rc_gguf *g = calloc(1, sizeof *g);
    char *path = g ? malloc(strlen(name) + 1) : NULL;
    if (!path) {
        free(g);
        return rc_fail(RC_ERR_OOM, "%s: out of memory", name);
    }
    strcpy(path, name);
    g->path = path;
    g->base = data;
    g->size = size;
    rc_status st = parse(g);
    if (st != RC_OK) {
        rc_gguf_close(g);
        return st;
    }
    *out = g;
    return RC_OK;
}

rc_status rc_gguf_open(const char *path, rc_gguf **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rc_fail(RC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rc_fail(RC_ERR_IO, "%s is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return rc_fail(RC_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    rc_status st = rc_gguf_open_memory(map ? map : empty, size, path, out);
    if (st != RC_OK) {
        if (map) munmap(map, size);
        return st;
    }
    (*out)->map = map;
    (*out)->map_len = size;
    return RC_OK;
}

void rc_gguf_close(rc_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kvs; i++) {
        free((char *)g->kvs[i].key);
        free(g->kvs[i].strings);
    }
    for (size_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    if (g->map) munmap(g->map, g->map_len);
    free(g->path);
    free(g);
}

/* ---- Accessors ------------------------------------------------------------------- */

const char *rc_gguf_path(const rc_gguf *g) { return g->path; }
uint32_t rc_gguf_version(const rc_gguf *g) { return g->version; }
uint64_t rc_gguf_alignment(const rc_gguf *g) { return g->alignment; }
size_t rc_gguf_kv_count(const rc_gguf *g) { return g->n_kvs; }
const rc_gguf_kv *rc_gguf_kv_at(const rc_gguf *g, size_t i) { return i < g->n_kvs ? &g->kvs[i] : NULL; }
size_t rc_gguf_tensor_count(const rc_gguf *g) { return g->n_tensors; }
const rc_gguf_tensor *rc_gguf_tensor_at(const rc_gguf *g, size_t i) { return i < g->n_tensors ? &g->tensors[i] : NULL; }

const rc_gguf_kv *rc_gguf_find(const rc_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kvs; i++)
        if (strcmp(g->kvs[i].key, key) == 0) return &g->kvs[i];
    return NULL;
}

const rc_gguf_tensor *rc_gguf_find_tensor(const rc_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

bool rc_gguf_string_is(rc_gguf_string s, const char *text) {
    return s.len == strlen(text) && memcmp(s.ptr, text, (size_t)s.len) == 0;
}

static bool is_integer_type(rc_gguf_value_type t) {
    return t == RC_GGUF_UINT8 || t == RC_GGUF_INT8 || t == RC_GGUF_UINT16 || t == RC_GGUF_INT16 ||
           t == RC_GGUF_UINT32 || t == RC_GGUF_INT32 || t == RC_GGUF_UINT64 || t == RC_GGUF_INT64;
}

/* Element i of an integer value as a signed value (u64 above INT64_MAX clamps
 * to a flag the callers reject). */
static bool element_int(const rc_gguf_kv *kv, uint64_t i, int64_t *out, bool *too_big) {
    uint64_t size = scalar_size(kv->elem_type);
    if (!is_integer_type(kv->elem_type) || i >= kv->count) return false;
    uint64_t raw = load_le(kv->data + i * size, (int)size);
    *too_big = false;
    switch (kv->elem_type) {
    case RC_GGUF_INT8: *out = (int8_t)raw; break;
    case RC_GGUF_INT16: *out = (int16_t)raw; break;
    case RC_GGUF_INT32: *out = (int32_t)raw; break;
    case RC_GGUF_INT64: *out = (int64_t)raw; break;
    default:
        *too_big = raw > (uint64_t)INT64_MAX;
        *out = (int64_t)(raw & (uint64_t)INT64_MAX);
    }
    return true;
}

rc_status rc_gguf_kv_int(const rc_gguf_kv *kv, uint64_t index, int64_t *out) {
    bool too_big;
    if (!element_int(kv, index, out, &too_big))
        return rc_fail(RC_ERR_FORMAT, "key '%s': element %" PRIu64 " is not an integer (type %s, %" PRIu64 " elements)",
                       kv->key, index, value_type_names[kv->elem_type], kv->count);
    if (too_big) return rc_fail(RC_ERR_FORMAT, "key '%s': element %" PRIu64 " is out of range", kv->key, index);
    return RC_OK;
}

static rc_status find_scalar(const rc_gguf *g, const char *key, const rc_gguf_kv **out) {
    const rc_gguf_kv *kv = rc_gguf_find(g, key);
    if (!kv) return rc_fail(RC_ERR_FORMAT, "%s: missing key '%s'", g->path, key);
    if (kv->type == RC_GGUF_ARRAY)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' is an array, expected a single value", g->path, key);
    *out = kv;
    return RC_OK;
}

rc_status rc_gguf_get_i64(const rc_gguf *g, const char *key, int64_t *out) {
    const rc_gguf_kv *kv;
    rc_status st = find_scalar(g, key, &kv);
    if (st != RC_OK) return st;
    if (!is_integer_type(kv->type))
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' is %s, expected an integer", g->path, key,
                       value_type_names[kv->type]);
    bool too_big;
    element_int(kv, 0, out, &too_big);
    if (too_big) return rc_fail(RC_ERR_FORMAT, "%s: key '%s' is out of range", g->path, key);
    return RC_OK;
}

rc_status rc_gguf_get_u64(const rc_gguf *g, const char *key, uint64_t *out) {
    int64_t v;
    rc_status st = rc_gguf_get_i64(g, key, &v);
    if (st != RC_OK) return st;
    if (v < 0) return rc_fail(RC_ERR_FORMAT, "%s: key '%s' is negative (%" PRId64 ")", g->path, key, v);
    *out = (uint64_t)v;
    return RC_OK;
}

rc_status rc_gguf_get_f64(const rc_gguf *g, const char *key, double *out) {
    const rc_gguf_kv *kv;
    rc_status st = find_scalar(g, key, &kv);
    if (st != RC_OK) return st;
    if (kv->type == RC_GGUF_FLOAT32 || kv->type == RC_GGUF_FLOAT64) {
        uint64_t bits = load_le(kv->data, kv->type == RC_GGUF_FLOAT32 ? 4 : 8);
        if (kv->type == RC_GGUF_FLOAT32) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, sizeof f);
            *out = f;
        } else {
            memcpy(out, &bits, sizeof *out);
        }
        return RC_OK;
    }
    int64_t v;
    st = rc_gguf_get_i64(g, key, &v);
    if (st == RC_OK) *out = (double)v;
    return st;
}

rc_status rc_gguf_get_bool(const rc_gguf *g, const char *key, bool *out) {
    const rc_gguf_kv *kv;
    rc_status st = find_scalar(g, key, &kv);
    if (st != RC_OK) return st;
    if (kv->type != RC_GGUF_BOOL)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' is %s, expected BOOL", g->path, key, value_type_names[kv->type]);
    *out = kv->data[0] != 0;
    return RC_OK;
}

rc_status rc_gguf_get_string(const rc_gguf *g, const char *key, rc_gguf_string *out) {
    const rc_gguf_kv *kv;
    rc_status st = find_scalar(g, key, &kv);
    if (st != RC_OK) return st;
    if (kv->type != RC_GGUF_STRING)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' is %s, expected STRING", g->path, key, value_type_names[kv->type]);
    *out = kv->strings[0];
    return RC_OK;
}
