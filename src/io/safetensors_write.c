/* Safetensors writer. Produces the layout of the `safetensors` Python package:
 * tensors ordered by dtype (widest-ranked first) then name, compact JSON
 * header with __metadata__ first, padded with spaces to a multiple of 8 bytes
 * so the data area starts aligned, written atomically. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors_internal.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"

typedef struct {
    char *name;
    rc_dtype dtype;
    int n_dims;
    int64_t shape[RC_ST_MAX_DIMS];
    uint64_t n_bytes;
    const void *data;
} writer_tensor;

struct rc_st_writer {
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    rc_st_meta_entry *meta;
    size_t n_meta, cap_meta;
};

/* JSON strings must be UTF-8; Python's reader rejects anything else. */
static bool is_valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        int extra;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        static const uint32_t min_for_length[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_for_length[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        p += extra + 1;
    }
    return true;
}

rc_status rc_st_writer_new(rc_st_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? RC_OK : rc_fail(RC_ERR_OOM, "safetensors writer: out of memory");
}

void rc_st_writer_free(rc_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->tensors);
    free(w->meta);
    free(w);
}

rc_status rc_st_writer_add(rc_st_writer *w, const char *name, rc_dtype dtype, int n_dims, const int64_t *shape,
                           const void *data) {
    if (!name || !*name) return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: empty tensor name");
    if (strcmp(name, "__metadata__") == 0 || !is_valid_utf8(name))
        return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: invalid tensor name '%s'", name);
    if ((unsigned)dtype >= RC_DTYPE_COUNT)
        return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: tensor '%s': unknown dtype %d", name, (int)dtype);
    if (n_dims < 0 || n_dims > RC_ST_MAX_DIMS || (n_dims > 0 && !shape))
        return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: tensor '%s': %d dimensions (0..%d allowed)", name,
                       n_dims, RC_ST_MAX_DIMS);
    uint64_t n_bytes = rc_dtype_size(dtype);
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] < 0)
            return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: tensor '%s': negative shape[%d]", name, i);
        uint64_t extent = (uint64_t)shape[i];
        if (extent != 0 && n_bytes > SIZE_MAX / extent)
            return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: tensor '%s': size overflows", name);
        n_bytes *= extent;
    }
    if (n_bytes > 0 && !data)
        return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: tensor '%s': no data", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: tensor '%s' added twice", name);
    if (!rc_st_reserve((void **)&w->tensors, &w->cap_tensors, w->n_tensors + 1, sizeof *w->tensors))
        return rc_fail(RC_ERR_OOM, "safetensors writer: out of memory");
    writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = rc_st_copy_string(name))) return rc_fail(RC_ERR_OOM, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) t->shape[i] = shape[i];
    t->n_bytes = n_bytes;
    t->data = data;
    w->n_tensors++;
    return RC_OK;
}

rc_status rc_st_writer_add_metadata(rc_st_writer *w, const char *key, const char *value) {
    if (!key || !value || !is_valid_utf8(key) || !is_valid_utf8(value))
        return rc_fail(RC_ERR_INVALID_ARG, "safetensors writer: metadata key and value must be UTF-8 strings");
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta[i].key, key) == 0) {
            char *copy = rc_st_copy_string(value);
            if (!copy) return rc_fail(RC_ERR_OOM, "safetensors writer: out of memory");
            free(w->meta[i].value);
            w->meta[i].value = copy;
            return RC_OK;
        }
    }
    if (!rc_st_reserve((void **)&w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta))
        return rc_fail(RC_ERR_OOM, "safetensors writer: out of memory");
    char *k = rc_st_copy_string(key), *v = rc_st_copy_string(value);
    if (!k || !v) {
        free(k);
        free(v);
        return rc_fail(RC_ERR_OOM, "safetensors writer: out of memory");
    }
    w->meta[w->n_meta].key = k;
    w->meta[w->n_meta].value = v;
    w->n_meta++;
    return RC_OK;
}

/* ---- Header text ---------------------------------------------------------- */

typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} text_buffer;

static void append(text_buffer *b, const char *s, size_t n) {
    if (b->failed) return;
    if (!rc_st_reserve((void **)&b->text, &b->cap, b->len + n + 1, 1)) {
        b->failed = true;
        return;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
}

static void append_str(text_buffer *b, const char *s) { append(b, s, strlen(s)); }

static void append_u64(text_buffer *b, uint64_t v) {
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    append(b, digits, (size_t)n);
}

static void append_json_string(text_buffer *b, const char *s) {
    append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char escaped[8];
        switch (*p) {
        case '"': append(b, "\\\"", 2); break;
        case '\\': append(b, "\\\\", 2); break;
        case '\n': append(b, "\\n", 2); break;
        case '\r': append(b, "\\r", 2); break;
        case '\t': append(b, "\\t", 2); break;
        case '\b': append(b, "\\b", 2); break;
        case '\f': append(b, "\\f", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(escaped, sizeof escaped, "\\u%04x", *p);
                append(b, escaped, 6);
            } else {
                append(b, (const char *)p, 1);
            }
        }
    }
    append(b, "\"", 1);
}

/* The safetensors library sorts by dtype rank descending, then name, so
 * wider types come first and stay aligned. */
static int compare_layout(const void *a, const void *b) {
    const writer_tensor *x = *(const writer_tensor *const *)a, *y = *(const writer_tensor *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_meta(const void *a, const void *b) {
    return strcmp(((const rc_st_meta_entry *)a)->key, ((const rc_st_meta_entry *)b)->key);
}

static bool host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Writes `t`'s elements little-endian. */
static bool write_tensor_data(FILE *out, const writer_tensor *t) {
    if (t->n_bytes == 0) return true;
    size_t elem = rc_dtype_size(t->dtype);
    if (elem == 1 || host_is_little_endian()) return fwrite(t->data, 1, (size_t)t->n_bytes, out) == t->n_bytes;
    unsigned char chunk[1 << 14];
    const unsigned char *src = t->data;
    for (size_t done = 0; done < t->n_bytes;) {
        size_t n = t->n_bytes - done < sizeof chunk ? (size_t)(t->n_bytes - done) : sizeof chunk;
        for (size_t i = 0; i < n; i += elem)
            for (size_t k = 0; k < elem; k++) chunk[i + k] = src[done + i + elem - 1 - k];
        if (fwrite(chunk, 1, n, out) != n) return false;
        done += n;
    }
    return true;
}

rc_status rc_st_writer_write(const rc_st_writer *w, const char *path) {
    const writer_tensor **order = malloc((w->n_tensors ? w->n_tensors : 1) * sizeof *order);
    rc_st_meta_entry *meta = malloc((w->n_meta ? w->n_meta : 1) * sizeof *meta);
    if (!order || !meta) {
        free(order);
        free(meta);
        return rc_fail(RC_ERR_OOM, "writing %s: out of memory", path);
    }
    for (size_t i = 0; i < w->n_tensors; i++) order[i] = &w->tensors[i];
    qsort(order, w->n_tensors, sizeof *order, compare_layout);
    if (w->n_meta) memcpy(meta, w->meta, w->n_meta * sizeof *meta);
    qsort(meta, w->n_meta, sizeof *meta, compare_meta);

    text_buffer header = {0};
    append_str(&header, "{");
    if (w->n_meta) {
        append_str(&header, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i) append_str(&header, ",");
            append_json_string(&header, meta[i].key);
            append_str(&header, ":");
            append_json_string(&header, meta[i].value);
        }
        append_str(&header, "}");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = order[i];
        if (i || w->n_meta) append_str(&header, ",");
        append_json_string(&header, t->name);
        append_str(&header, ":{\"dtype\":\"");
        append_str(&header, rc_dtype_name(t->dtype));
        append_str(&header, "\",\"shape\":[");
        for (int d = 0; d < t->n_dims; d++) {
            if (d) append_str(&header, ",");
            append_u64(&header, (uint64_t)t->shape[d]);
        }
        append_str(&header, "],\"data_offsets\":[");
        append_u64(&header, offset);
        append_str(&header, ",");
        offset += t->n_bytes;
        append_u64(&header, offset);
        append_str(&header, "]}");
    }
    append_str(&header, "}");
    while (!header.failed && header.len % 8 != 0) append_str(&header, " ");
    free(meta);
    if (header.failed) {
        free(header.text);
        free(order);
        return rc_fail(RC_ERR_OOM, "writing %s: out of memory for the header", path);
    }

    rc_atomic_file *file;
    rc_status status = rc_atomic_open(path, &file);
    if (status != RC_OK) {
        free(header.text);
        free(order);
        return status;
    }
    FILE *out = rc_atomic_stream(file);
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; i++) length_bytes[i] = (unsigned char)((uint64_t)header.len >> (8 * i));
    bool ok = fwrite(length_bytes, 1, 8, out) == 8 && fwrite(header.text, 1, header.len, out) == header.len;
    for (size_t i = 0; ok && i < w->n_tensors; i++) ok = write_tensor_data(out, order[i]);
    free(header.text);
    free(order);
    if (!ok) {
        rc_atomic_abort(file);
        return rc_fail(RC_ERR_IO, "writing %s failed (disk full?)", path);
    }
    return rc_atomic_commit(file);
}
