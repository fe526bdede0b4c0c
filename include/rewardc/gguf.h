/* GGUF: the llama.cpp / ggml model file, read so that a pretrained model
 * published as GGUF can become a Hugging Face folder (rewardc import).
 *
 * Reader: rc_gguf_open maps a GGUF v2 or v3 file (little-endian) read-only
 * and validates all of it before handing anything out: every string length,
 * array count, dimension and tensor offset is checked against the file size
 * (overflow-safe), general.alignment must be a power of two, tensors must lie
 * inside the data area without overlapping. Errors name the file and the key
 * or tensor at fault.
 *
 * File layout: "GGUF", u32 version, u64 tensor count, u64 key/value count,
 * the key/value pairs (key string, u32 value type, value), the tensor infos
 * (name, u32 n_dims, u64 dims innermost first, u32 ggml type, u64 offset
 * into the data area), padding to the alignment, then the data area.
 * A string is a u64 byte length and that many bytes (no terminator); an
 * array is a u32 element type, a u64 count and the elements. */
#ifndef REWARDC_GGUF_H
#define REWARDC_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Metadata value types, numbered as in the file. */
typedef enum {
    RC_GGUF_UINT8 = 0,
    RC_GGUF_INT8 = 1,
    RC_GGUF_UINT16 = 2,
    RC_GGUF_INT16 = 3,
    RC_GGUF_UINT32 = 4,
    RC_GGUF_INT32 = 5,
    RC_GGUF_FLOAT32 = 6,
    RC_GGUF_BOOL = 7,
    RC_GGUF_STRING = 8,
    RC_GGUF_ARRAY = 9,
    RC_GGUF_UINT64 = 10,
    RC_GGUF_INT64 = 11,
    RC_GGUF_FLOAT64 = 12,
    RC_GGUF_VALUE_TYPE_COUNT
} rc_gguf_value_type;

/* Tensor element types, numbered as ggml's enum ggml_type (gaps are
 * retired types). rc_ggml_type_name knows every type; the ones
 * rc_gguf_tensor_to_f32 converts are listed at that function. */
typedef enum {
    RC_GGML_F32 = 0,
    RC_GGML_F16 = 1,
    RC_GGML_Q4_0 = 2,
    RC_GGML_Q4_1 = 3,
    RC_GGML_Q5_0 = 6,
    RC_GGML_Q5_1 = 7,
    RC_GGML_Q8_0 = 8,
    RC_GGML_Q8_1 = 9,
    RC_GGML_Q2_K = 10,
    RC_GGML_Q3_K = 11,
    RC_GGML_Q4_K = 12,
    RC_GGML_Q5_K = 13,
    RC_GGML_Q6_K = 14,
    RC_GGML_Q8_K = 15,
    RC_GGML_BF16 = 30,
    RC_GGML_TYPE_LIMIT = 64 /* above every type number in use */
} rc_ggml_type;

/* "Q4_K", ...; NULL for a number ggml does not define. */
const char *rc_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block; false for an unknown type. */
bool rc_ggml_type_block(uint32_t type, uint32_t *block_elements, uint32_t *block_bytes);
/* Whether rc_gguf_tensor_to_f32 converts this type. */
bool rc_ggml_type_dequantizable(uint32_t type);

/* A string inside the mapping: `len` bytes, not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} rc_gguf_string;

typedef struct {
    const char *key;              /* NUL-terminated copy */
    rc_gguf_value_type type;      /* the value's type; RC_GGUF_ARRAY for arrays */
    rc_gguf_value_type elem_type; /* arrays: the elements' type; else == type */
    uint64_t count;               /* arrays: element count; scalars: 1 */
    const unsigned char *data;    /* the raw little-endian value (array: first element) */
    rc_gguf_string *strings;      /* STRING and arrays of STRING: `count` entries; else NULL */
} rc_gguf_kv;

enum { RC_GGUF_MAX_DIMS = 4 };

typedef struct {
    const char *name;              /* NUL-terminated copy */
    uint32_t type;                 /* an rc_ggml_type number */
    int n_dims;
    uint64_t dims[RC_GGUF_MAX_DIMS]; /* innermost (contiguous) first; unused ones are 1 */
    uint64_t n_elements;
    uint64_t offset;               /* from the start of the data area */
    const unsigned char *data;     /* inside the mapping */
    size_t n_bytes;
} rc_gguf_tensor;

typedef struct rc_gguf rc_gguf;

rc_status rc_gguf_open(const char *path, rc_gguf **out);
/* Parses a GGUF image in memory (borrowed: it must outlive the handle);
 * `name` stands for the file in messages. */
rc_status rc_gguf_open_memory(const void *data, size_t size, const char *name, rc_gguf **out);
void rc_gguf_close(rc_gguf *g); /* NULL is a no-op */

const char *rc_gguf_path(const rc_gguf *g);
uint32_t rc_gguf_version(const rc_gguf *g);
uint64_t rc_gguf_alignment(const rc_gguf *g);

/* Key/value pairs in file order. rc_gguf_find returns NULL when absent. */
size_t rc_gguf_kv_count(const rc_gguf *g);
const rc_gguf_kv *rc_gguf_kv_at(const rc_gguf *g, size_t index);
const rc_gguf_kv *rc_gguf_find(const rc_gguf *g, const char *key);

/* Typed reads of a scalar key. Any integer type reads as an integer (an
 * error if out of range), any integer or float type as a double. A missing
 * key or another type is an RC_ERR_FORMAT naming the key and the file. */
rc_status rc_gguf_get_u64(const rc_gguf *g, const char *key, uint64_t *out);
rc_status rc_gguf_get_i64(const rc_gguf *g, const char *key, int64_t *out);
rc_status rc_gguf_get_f64(const rc_gguf *g, const char *key, double *out);
rc_status rc_gguf_get_bool(const rc_gguf *g, const char *key, bool *out);
rc_status rc_gguf_get_string(const rc_gguf *g, const char *key, rc_gguf_string *out);
/* Element `index` of an integer scalar or array (an array of arrays is not read). */
rc_status rc_gguf_kv_int(const rc_gguf_kv *kv, uint64_t index, int64_t *out);
/* True when `s` equals the C string `text`. */
bool rc_gguf_string_is(rc_gguf_string s, const char *text);

/* Tensors in file order. rc_gguf_find_tensor returns NULL when absent. */
size_t rc_gguf_tensor_count(const rc_gguf *g);
const rc_gguf_tensor *rc_gguf_tensor_at(const rc_gguf *g, size_t index);
const rc_gguf_tensor *rc_gguf_find_tensor(const rc_gguf *g, const char *name);

/* Dequantises a tensor into `dst` (expected_count floats, which must equal
 * its element count), in ggml's element order (dims[0] fastest). Converts
 * F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K with the
 * float operations of ggml's reference dequantize_row_* (which gguf-py's
 * numpy code repeats), so results are bit-identical to both; another type is
 * an RC_ERR_UNSUPPORTED naming it and the tensor. */
rc_status rc_gguf_tensor_to_f32(const rc_gguf *g, const rc_gguf_tensor *t, float *dst, size_t expected_count);
/* The same on a bare run of `n` elements of `type` (n a multiple of the block). */
rc_status rc_ggml_dequantize(uint32_t type, const unsigned char *src, size_t n, float *dst);

#ifdef __cplusplus
}
#endif
#endif
