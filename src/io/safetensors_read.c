/* Safetensors reader core: maps one file read-only, validates its header in
 * full and records views of its tensors; plus lookup, iteration and
 * metadata access. Folder and shard handling is in safetensors_open.c. */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors_internal.h"
#include "rewardc/safetensors.h"

char *rc_st_copy_string(const char *s) {
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy) memcpy(copy, s, len + 1);
    return copy;
}

bool rc_st_reserve(void **array, size_t *cap, size_t needed, size_t elem) {
    if (needed <= *cap) return true;
    size_t new_cap = *cap ? *cap * 2 : 16;
    while (new_cap < needed) new_cap *= 2;
    void *grown = realloc(*array, new_cap * elem);
    if (!grown) return false;
    *array = grown;
    *cap = new_cap;
    return true;
}

rc_status rc_st_create(const char *source, rc_safetensors **out) {
    *out = NULL;
    rc_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->source = rc_st_copy_string(source))) {
        free(st);
        return rc_fail(RC_ERR_OOM, "opening %s: out of memory", source);
    }
    *out = st;
    return RC_OK;
}

void rc_st_close(rc_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_files; i++) {
        rc_st_mapped_file *f = st->files[i];
        if (f->map) munmap(f->map, f->map_len);
        free(f->path);
        free(f);
    }
    for (size_t i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].name);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->files);
    free(st->tensors);
    free(st->meta);
    free(st->source);
    free(st);
}

/* ---- Header validation ------------------------------------------------- */

/* Header numbers are JSON doubles; accept only exact non-negative integers
 * up to 2^53 so nothing is silently rounded. */
static bool json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= 9007199254740992.0)) return false;
    uint64_t v = (uint64_t)d;
    if ((double)v != d) return false;
    *out = v;
    return true;
}

/* A tensor's byte range within the data area, for the tiling check. */
typedef struct {
    uint64_t begin, end;
    size_t tensor_index;
} byte_range;

static int compare_ranges(const void *a, const void *b) {
    const byte_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static rc_status parse_metadata(rc_safetensors *st, const char *path, const cJSON *object) {
    if (!cJSON_IsObject(object)) return rc_fail(RC_ERR_FORMAT, "%s: __metadata__ is not a JSON object", path);
    for (const cJSON *entry = object->child; entry; entry = entry->next) {
        if (!cJSON_IsString(entry))
            return rc_fail(RC_ERR_FORMAT, "%s: __metadata__ value for \"%s\" is not a string", path, entry->string);
        if (!rc_st_reserve((void **)&st->meta, &st->cap_meta, st->n_meta + 1, sizeof *st->meta))
            return rc_fail(RC_ERR_OOM, "%s: out of memory reading __metadata__", path);
        char *key = rc_st_copy_string(entry->string), *value = rc_st_copy_string(entry->valuestring);
        if (!key || !value) {
            free(key);
            free(value);
            return rc_fail(RC_ERR_OOM, "%s: out of memory reading __metadata__", path);
        }
        st->meta[st->n_meta].key = key;
        st->meta[st->n_meta].value = value;
        st->n_meta++;
    }
    return RC_OK;
}

/* Fills everything of `view` but the data pointer from one header entry;
 * returns the entry's byte range through begin/end. */
static rc_status parse_tensor_entry(const char *path, const cJSON *entry, uint64_t data_len, rc_tensor_view *view,
                                    uint64_t *begin, uint64_t *end) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry)) return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype)) return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': missing \"dtype\" string", path, name);
    if (rc_dtype_parse(dtype->valuestring, &view->dtype) != RC_OK)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, name, dtype->valuestring);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape)) return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': missing \"shape\" array", path, name);
    int n_dims = cJSON_GetArraySize(shape);
    if (n_dims > RC_ST_MAX_DIMS)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d supported", path, name, n_dims,
                       RC_ST_MAX_DIMS);
    view->n_dims = n_dims;
    uint64_t n_elements = 1;
    int dim = 0;
    for (const cJSON *extent = shape->child; extent; extent = extent->next, dim++) {
        uint64_t v;
        if (!json_to_u64(extent, &v))
            return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, dim);
        if (v != 0 && n_elements > UINT64_MAX / v)
            return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': element count overflows", path, name);
        n_elements *= v;
        view->shape[dim] = (int64_t)v;
    }
    view->n_elements = n_elements;
    size_t elem = rc_dtype_size(view->dtype);
    if (n_elements > UINT64_MAX / elem)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, name);
    uint64_t n_bytes = n_elements * elem;

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 || !json_to_u64(offsets->child, begin) ||
        !json_to_u64(offsets->child->next, end))
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be two non-negative integers", path,
                       name);
    if (*begin > *end)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", path, name,
                       (unsigned long long)*begin, (unsigned long long)*end);
    if (*end > data_len)
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run past the data area (%llu bytes)",
                       path, name, (unsigned long long)*begin, (unsigned long long)*end,
                       (unsigned long long)data_len);
    if (*end - *begin != n_bytes) {
        char shape_text[160];
        rc_st_format_shape(view, shape_text, sizeof shape_text);
        return rc_fail(RC_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets span %llu bytes but %s %s needs %llu", path, name,
                       (unsigned long long)(*end - *begin), rc_dtype_name(view->dtype), shape_text,
                       (unsigned long long)n_bytes);
    }
    view->n_bytes = (size_t)n_bytes;
    return RC_OK;
}

/* The safetensors format requires the tensors to cover the data area exactly:
 * no overlaps (aliasing) and no holes (room for hidden content). */
static rc_status check_tiling(const char *path, byte_range *ranges, size_t n, const rc_tensor_view *views,
                              uint64_t data_len) {
    if (n > 1) qsort(ranges, n, sizeof *ranges, compare_ranges);
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = views[ranges[i].tensor_index].name;
        if (ranges[i].begin < covered)
            return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s'", path, name,
                           (unsigned long long)ranges[i].begin, (unsigned long long)ranges[i].end,
                           views[ranges[i - 1].tensor_index].name);
        if (ranges[i].begin > covered)
            return rc_fail(RC_ERR_FORMAT, "%s: unused bytes %llu..%llu in the data area before tensor '%s'", path,
                           (unsigned long long)covered, (unsigned long long)ranges[i].begin, name);
        covered = ranges[i].end;
    }
    if (covered != data_len)
        return rc_fail(RC_ERR_FORMAT, "%s: data area has %llu bytes but the tensors cover only %llu", path,
                       (unsigned long long)data_len, (unsigned long long)covered);
    return RC_OK;
}

static bool looks_like_pytorch(const unsigned char *bytes, size_t len) {
    /* torch.save writes a zip archive ("PK\3\4"); older versions a raw pickle (0x80, protocol). */
    if (len >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4) return true;
    return len >= 2 && bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

static rc_status parse_header(rc_safetensors *st, rc_st_mapped_file *file) {
    const unsigned char *bytes = file->map;
    size_t size = file->map_len;
    const char *path = file->path;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | bytes[i];
    if (header_len > size - 8 || header_len > RC_ST_MAX_HEADER_BYTES) {
        if (looks_like_pytorch(bytes, size))
            return rc_fail(RC_ERR_FORMAT, "%s looks like a PyTorch checkpoint, not safetensors; " RC_ST_CONVERTER_HINT,
                           path);
        return rc_fail(RC_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes) or the %llu-byte limit",
                       path, (unsigned long long)header_len, size, RC_ST_MAX_HEADER_BYTES);
    }
    const char *text = (const char *)bytes + 8;
    if (header_len < 2 || text[0] != '{')
        return rc_fail(RC_ERR_FORMAT, "%s: header does not start with a JSON object", path);

    const char *end = NULL;
    cJSON *header = cJSON_ParseWithLengthOpts(text, (size_t)header_len, &end, 0);
    if (!header) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return rc_fail(RC_ERR_FORMAT, "%s: invalid JSON in header near byte %zu of %llu", path, at,
                       (unsigned long long)header_len);
    }
    for (const char *p = end; p < text + header_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(header);
            return rc_fail(RC_ERR_FORMAT, "%s: unexpected bytes after the JSON header (byte %zu)", path,
                           (size_t)(p - text));
        }
    }
    if (!cJSON_IsObject(header)) {
        cJSON_Delete(header);
        return rc_fail(RC_ERR_FORMAT, "%s: header is not a JSON object", path);
    }

    uint64_t data_len = size - 8 - header_len;
    const unsigned char *data = bytes + 8 + header_len;
    size_t first = st->n_tensors;
    size_t n_entries = 0;
    for (const cJSON *entry = header->child; entry; entry = entry->next) n_entries++;
    byte_range *ranges = malloc((n_entries ? n_entries : 1) * sizeof *ranges);
    if (!ranges || !rc_st_reserve((void **)&st->tensors, &st->cap_tensors, first + n_entries, sizeof *st->tensors)) {
        free(ranges);
        cJSON_Delete(header);
        return rc_fail(RC_ERR_OOM, "%s: out of memory for %zu header entries", path, n_entries);
    }

    rc_status status = RC_OK;
    size_t n_ranges = 0;
    for (const cJSON *entry = header->child; entry && status == RC_OK; entry = entry->next) {
        if (strcmp(entry->string, "__metadata__") == 0) {
            status = parse_metadata(st, path, entry);
            continue;
        }
        rc_tensor_view *view = &st->tensors[st->n_tensors];
        memset(view, 0, sizeof *view);
        uint64_t begin = 0, end_offset = 0;
        status = parse_tensor_entry(path, entry, data_len, view, &begin, &end_offset);
        if (status != RC_OK) break;
        view->name = rc_st_copy_string(entry->string);
        if (!view->name) {
            status = rc_fail(RC_ERR_OOM, "%s: out of memory", path);
            break;
        }
        view->data = data + begin;
        view->file = file->path;
        ranges[n_ranges].begin = begin;
        ranges[n_ranges].end = end_offset;
        ranges[n_ranges].tensor_index = st->n_tensors;
        n_ranges++;
        st->n_tensors++;
    }
    if (status == RC_OK) status = check_tiling(path, ranges, n_ranges, st->tensors, data_len);
    free(ranges);
    cJSON_Delete(header);
    return status;
}

rc_status rc_st_add_file(rc_safetensors *st, const char *path) {
    if (!rc_st_reserve((void **)&st->files, &st->cap_files, st->n_files + 1, sizeof *st->files))
        return rc_fail(RC_ERR_OOM, "opening %s: out of memory", path);
    rc_st_mapped_file *file = calloc(1, sizeof *file);
    if (!file || !(file->path = rc_st_copy_string(path))) {
        free(file);
        return rc_fail(RC_ERR_OOM, "opening %s: out of memory", path);
    }
    /* Registered before mapping so rc_st_close releases it on any error. */
    st->files[st->n_files++] = file;

    int fd = open(path, O_RDONLY);
    if (fd < 0) return rc_fail(RC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return rc_fail(RC_ERR_IO, "cannot stat %s: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return rc_fail(RC_ERR_IO, "%s is not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return rc_fail(RC_ERR_FORMAT, "%s: %lld bytes is too short for a safetensors file (8-byte header length)",
                       path, (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: too large to map on this platform", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping stays valid after close */
    if (map == MAP_FAILED) return rc_fail(RC_ERR_IO, "cannot map %s: %s", path, strerror(err));
    file->map = map;
    file->map_len = (size_t)sb.st_size;
    return parse_header(st, file);
}

static int compare_views(const void *a, const void *b) {
    return strcmp(((const rc_tensor_view *)a)->name, ((const rc_tensor_view *)b)->name);
}

rc_status rc_st_finish(rc_safetensors *st) {
    /* a header of "{}" leaves no table at all: qsort(NULL, 0) is undefined */
    if (st->n_tensors > 1) qsort(st->tensors, st->n_tensors, sizeof *st->tensors, compare_views);
    for (size_t i = 1; i < st->n_tensors; i++) {
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
            if (st->tensors[i - 1].file == st->tensors[i].file)
                return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' is defined twice", st->tensors[i].file,
                               st->tensors[i].name);
            return rc_fail(RC_ERR_FORMAT, "tensor '%s' is defined in both %s and %s", st->tensors[i].name,
                           st->tensors[i - 1].file, st->tensors[i].file);
        }
    }
    /* Metadata: stable insertion sort by key (few entries), keeping the first
     * occurrence of each key so the earliest file wins. */
    size_t kept = 0;
    for (size_t i = 0; i < st->n_meta; i++) {
        rc_st_meta_entry entry = st->meta[i];
        size_t pos = kept;
        bool duplicate = false;
        for (size_t j = 0; j < kept; j++) {
            int cmp = strcmp(st->meta[j].key, entry.key);
            if (cmp == 0) duplicate = true;
            if (cmp >= 0) {
                pos = j;
                break;
            }
        }
        if (duplicate) {
            free(entry.key);
            free(entry.value);
            continue;
        }
        memmove(st->meta + pos + 1, st->meta + pos, (kept - pos) * sizeof *st->meta);
        st->meta[pos] = entry;
        kept++;
    }
    st->n_meta = kept;
    return RC_OK;
}

/* ---- Access ------------------------------------------------------------- */

size_t rc_st_count(const rc_safetensors *st) { return st ? st->n_tensors : 0; }

const rc_tensor_view *rc_st_tensor_at(const rc_safetensors *st, size_t index) {
    return (st && index < st->n_tensors) ? &st->tensors[index] : NULL;
}

const rc_tensor_view *rc_st_find(const rc_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(st->tensors[mid].name, name);
        if (cmp == 0) return &st->tensors[mid];
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

rc_status rc_st_get(const rc_safetensors *st, const char *name, const rc_tensor_view **out) {
    *out = rc_st_find(st, name);
    if (!*out) return rc_fail(RC_ERR_FORMAT, "tensor '%s' not found in %s", name, st ? st->source : "(none)");
    return RC_OK;
}

size_t rc_st_metadata_count(const rc_safetensors *st) { return st ? st->n_meta : 0; }

void rc_st_metadata_at(const rc_safetensors *st, size_t index, const char **key, const char **value) {
    bool valid = st && index < st->n_meta;
    if (key) *key = valid ? st->meta[index].key : NULL;
    if (value) *value = valid ? st->meta[index].value : NULL;
}

const char *rc_st_metadata(const rc_safetensors *st, const char *key) {
    for (size_t i = 0; st && i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

rc_status rc_st_read_f32(const rc_safetensors *st, const char *name, float *dst, size_t expected_count) {
    const rc_tensor_view *t;
    rc_status status = rc_st_get(st, name, &t);
    return status != RC_OK ? status : rc_tensor_to_f32(t, dst, expected_count);
}

rc_status rc_st_read_i32(const rc_safetensors *st, const char *name, int32_t *dst, size_t expected_count) {
    const rc_tensor_view *t;
    rc_status status = rc_st_get(st, name, &t);
    return status != RC_OK ? status : rc_tensor_to_i32(t, dst, expected_count);
}
