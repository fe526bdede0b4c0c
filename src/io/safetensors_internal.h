/* Internals shared by the safetensors reader files (src/io/safetensors_*.c):
 * the reader object, built by adding mapped files one at a time and then
 * finished (sorted, checked for duplicate names). */
#ifndef REWARDC_IO_SAFETENSORS_INTERNAL_H
#define REWARDC_IO_SAFETENSORS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "rewardc/safetensors.h"

/* Largest header the reader accepts, as the safetensors library (100 MB). */
#define RC_ST_MAX_HEADER_BYTES 100000000ull

/* The hint every "this is PyTorch, not safetensors" error ends with. */
#define RC_ST_CONVERTER_HINT                                                                             \
    "rewardc reads weights only in safetensors format; convert the folder with "                        \
    "`python3 tools/convert_to_safetensors.py <model_dir>` (needs torch and safetensors)"

typedef struct {
    char *path;
    void *map; /* NULL when the file is empty of data (never mapped) */
    size_t map_len;
} rc_st_mapped_file;

typedef struct {
    char *key, *value;
} rc_st_meta_entry;

struct rc_safetensors {
    char *source; /* the path given to rc_st_open */
    rc_st_mapped_file **files;
    size_t n_files, cap_files;
    rc_tensor_view *tensors; /* sorted by name after rc_st_finish */
    size_t n_tensors, cap_tensors;
    rc_st_meta_entry *meta; /* sorted by key after rc_st_finish */
    size_t n_meta, cap_meta;
};

/* malloc'd copy of s (NULL when out of memory). */
char *rc_st_copy_string(const char *s);
/* Grows *array (of `elem` bytes each) so that index `needed - 1` is valid. */
bool rc_st_reserve(void **array, size_t *cap, size_t needed, size_t elem);

rc_status rc_st_create(const char *source, rc_safetensors **out);
/* Maps `path`, validates its header and appends its tensors and metadata. */
rc_status rc_st_add_file(rc_safetensors *st, const char *path);
/* Sorts tensors and metadata; duplicate tensor names are an error. */
rc_status rc_st_finish(rc_safetensors *st);

/* "[2, 3]" into buf (truncated to fit). */
void rc_st_format_shape(const rc_tensor_view *t, char *buf, size_t size);

#endif
