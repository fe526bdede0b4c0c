/* Safetensors: the weight format rewardc reads and writes.
 *
 * Reader: rc_st_open maps a .safetensors file read-only, or a Hugging Face
 * model folder (model.safetensors, or shards listed by
 * model.safetensors.index.json). The header is validated in full (length vs
 * file size, dtypes, shapes, offsets that tile the data area without overlap
 * or holes) and errors name the file and tensor. Tensors are views into the
 * mapping; their data may be unaligned, so read it through the conversion
 * functions below (or memcpy).
 *
 * Writer: collect tensors and metadata, then rc_st_writer_write writes the
 * file atomically in the layout the `safetensors` Python package produces
 * (tensors ordered by dtype then name, header padded with spaces to 8 bytes).
 *
 * File format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
 * {str: str}}, then the data area; offsets are relative to its start. */
#ifndef REWARDC_SAFETENSORS_H
#define REWARDC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Declared in the order the safetensors library ranks them (it lays out
 * tensors by descending rank so larger element types come first). */
typedef enum {
    RC_DTYPE_BOOL,
    RC_DTYPE_U8,
    RC_DTYPE_I8,
    RC_DTYPE_F8_E5M2,
    RC_DTYPE_F8_E4M3,
    RC_DTYPE_I16,
    RC_DTYPE_U16,
    RC_DTYPE_F16,
    RC_DTYPE_BF16,
    RC_DTYPE_I32,
    RC_DTYPE_U32,
    RC_DTYPE_F32,
    RC_DTYPE_F64,
    RC_DTYPE_I64,
    RC_DTYPE_U64,
    RC_DTYPE_COUNT
} rc_dtype;

const char *rc_dtype_name(rc_dtype dtype);  /* "F32"...; "?" if out of range */
size_t rc_dtype_size(rc_dtype dtype);       /* bytes per element; 0 if out of range */
/* Parses a safetensors dtype string; RC_ERR_FORMAT if unknown. */
rc_status rc_dtype_parse(const char *name, rc_dtype *out);

/* Exact scalar conversions by bit manipulation (subnormals, +-inf and NaN kept). */
float rc_f16_to_f32(uint16_t bits);
float rc_bf16_to_f32(uint16_t bits);
/* Round to nearest, ties to even; overflow gives inf; NaN stays a (quiet) NaN. */
uint16_t rc_f32_to_f16(float value);
uint16_t rc_f32_to_bf16(float value);

enum { RC_ST_MAX_DIMS = 8 };

typedef struct {
    const char *name;
    rc_dtype dtype;
    int n_dims;
    int64_t shape[RC_ST_MAX_DIMS];
    uint64_t n_elements;       /* product of shape (1 for a scalar) */
    const unsigned char *data; /* little-endian elements, possibly unaligned */
    size_t n_bytes;
    const char *file;          /* the file the tensor lives in */
} rc_tensor_view;

/* ---- Reader ---------------------------------------------------------------- */

typedef struct rc_safetensors rc_safetensors;

/* `path` is a .safetensors file or a model folder. A folder holding only
 * PyTorch .bin weights gets an error naming tools/convert_to_safetensors.py. */
rc_status rc_st_open(const char *path, rc_safetensors **out);
void rc_st_close(rc_safetensors *st); /* NULL is a no-op */

/* Iteration: tensors are sorted by name, index 0 .. count-1. */
size_t rc_st_count(const rc_safetensors *st);
const rc_tensor_view *rc_st_tensor_at(const rc_safetensors *st, size_t index);
/* NULL if absent (no error set). */
const rc_tensor_view *rc_st_find(const rc_safetensors *st, const char *name);
/* Like rc_st_find but a missing tensor is an RC_ERR_FORMAT naming it and the source. */
rc_status rc_st_get(const rc_safetensors *st, const char *name, const rc_tensor_view **out);

/* __metadata__ (merged over shards; the first shard to define a key wins),
 * sorted by key. rc_st_metadata returns NULL for a missing key. */
size_t rc_st_metadata_count(const rc_safetensors *st);
void rc_st_metadata_at(const rc_safetensors *st, size_t index, const char **key, const char **value);
const char *rc_st_metadata(const rc_safetensors *st, const char *key);

/* Checks the view's shape; the error shows both shapes. */
rc_status rc_tensor_check_shape(const rc_tensor_view *t, int n_dims, const int64_t *shape);

/* Converts a float tensor (F32, F16, BF16, F64, F8_E5M2, F8_E4M3) into dst,
 * which holds `expected_count` floats; a different element count is an error. */
rc_status rc_tensor_to_f32(const rc_tensor_view *t, float *dst, size_t expected_count);
/* Converts an integer or BOOL tensor into int32, failing on values outside
 * the int32 range (the error names the element). */
rc_status rc_tensor_to_i32(const rc_tensor_view *t, int32_t *dst, size_t expected_count);

/* rc_st_get + rc_tensor_to_f32 / rc_tensor_to_i32. */
rc_status rc_st_read_f32(const rc_safetensors *st, const char *name, float *dst, size_t expected_count);
rc_status rc_st_read_i32(const rc_safetensors *st, const char *name, int32_t *dst, size_t expected_count);

/* ---- Writer ------------------------------------------------------------------ */

typedef struct rc_st_writer rc_st_writer;

rc_status rc_st_writer_new(rc_st_writer **out);
void rc_st_writer_free(rc_st_writer *w); /* NULL is a no-op */

/* Adds a tensor. `data` holds product(shape) elements of `dtype` in host
 * order (written little-endian) and is borrowed: it must stay valid until
 * rc_st_writer_write returns. The name is copied. Duplicate names fail. */
rc_status rc_st_writer_add(rc_st_writer *w, const char *name, rc_dtype dtype, int n_dims,
                           const int64_t *shape, const void *data);
/* Adds a __metadata__ entry (both strings copied; a repeated key replaces the value). */
rc_status rc_st_writer_add_metadata(rc_st_writer *w, const char *key, const char *value);
/* Writes everything collected so far to `path` atomically. */
rc_status rc_st_writer_write(const rc_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
