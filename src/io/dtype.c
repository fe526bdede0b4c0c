/* Safetensors dtypes: names and sizes, exact half-precision conversions by
 * bit manipulation, and conversion of tensor views into float32 / int32
 * buffers with element-count and range checks. */
#include "rewardc/safetensors.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors_internal.h"

static const struct {
    const char *name;
    size_t size;
} dtype_table[RC_DTYPE_COUNT] = {
    [RC_DTYPE_BOOL] = {"BOOL", 1},   [RC_DTYPE_U8] = {"U8", 1},
    [RC_DTYPE_I8] = {"I8", 1},       [RC_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [RC_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [RC_DTYPE_I16] = {"I16", 2},
    [RC_DTYPE_U16] = {"U16", 2},     [RC_DTYPE_F16] = {"F16", 2},
    [RC_DTYPE_BF16] = {"BF16", 2},   [RC_DTYPE_I32] = {"I32", 4},
    [RC_DTYPE_U32] = {"U32", 4},     [RC_DTYPE_F32] = {"F32", 4},
    [RC_DTYPE_F64] = {"F64", 8},     [RC_DTYPE_I64] = {"I64", 8},
    [RC_DTYPE_U64] = {"U64", 8},
};

const char *rc_dtype_name(rc_dtype dtype) {
    return (unsigned)dtype < RC_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

size_t rc_dtype_size(rc_dtype dtype) {
    return (unsigned)dtype < RC_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

rc_status rc_dtype_parse(const char *name, rc_dtype *out) {
    for (int i = 0; i < RC_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (rc_dtype)i;
            return RC_OK;
        }
    }
    return rc_fail(RC_ERR_FORMAT, "unknown dtype \"%s\"", name);
}

/* ---- Scalar conversions ------------------------------------------------- */

static float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t bits_from_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

float rc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13); /* inf, or NaN with its payload */
    } else if (exponent != 0) {
        bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign; /* +-0 */
    } else {
        /* Subnormal half: mantissa * 2^-24. Normalise until the implicit bit
         * (bit 10) is set; every half subnormal is a normal float. */
        uint32_t biased = 127 - 14;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            biased--;
        }
        bits = sign | (biased << 23) | ((mantissa & 0x3FFu) << 13);
    }
    return float_from_bits(bits);
}

float rc_bf16_to_f32(uint16_t bits) { return float_from_bits((uint32_t)bits << 16); }

uint16_t rc_f32_to_f16(float value) {
    uint32_t x = bits_from_float(value);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exponent = (x >> 23) & 0xFFu;
    uint32_t mantissa = x & 0x7FFFFFu;
    if (exponent == 0xFF) {
        if (mantissa) return (uint16_t)(sign | 0x7E00u | (mantissa >> 13)); /* quiet NaN */
        return (uint16_t)(sign | 0x7C00u);
    }
    int32_t half_exponent = (int32_t)exponent - 127 + 15;
    if (half_exponent >= 0x1F) return (uint16_t)(sign | 0x7C00u);
    if (half_exponent <= 0) {
        /* Result is a half subnormal (or rounds up to the smallest normal):
         * count units of 2^-24 with round-to-nearest-even. Below 2^-25 the
         * value rounds to zero. */
        if (half_exponent < -10) return sign;
        uint32_t significand = mantissa | 0x800000u;
        uint32_t shift = (uint32_t)(14 - half_exponent);
        uint32_t quotient = significand >> shift;
        uint32_t remainder = significand & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (remainder > halfway || (remainder == halfway && (quotient & 1u))) quotient++;
        return (uint16_t)(sign | quotient);
    }
    uint32_t result = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
    uint32_t remainder = mantissa & 0x1FFFu;
    /* A carry out of the mantissa correctly bumps the exponent (up to inf). */
    if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) result++;
    return (uint16_t)(sign | result);
}

uint16_t rc_f32_to_bf16(float value) {
    uint32_t x = bits_from_float(value);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu))
        return (uint16_t)((x >> 16) | 0x40u); /* keep it a (quiet) NaN after truncation */
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static float f8_e5m2_to_f32(uint8_t b) { return rc_f16_to_f32((uint16_t)(b << 8)); }

/* E4M3 "FN" (the variant safetensors means): bias 7, no infinities, NaN only
 * at S.1111.111. */
static float f8_e4m3_to_f32(uint8_t b) {
    uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    uint32_t exponent = (b >> 3) & 0xFu;
    uint32_t mantissa = b & 0x7u;
    if (exponent == 0xF && mantissa == 0x7) return float_from_bits(sign | 0x7FC00000u);
    if (exponent == 0) {
        float magnitude = (float)mantissa * (1.0f / 512.0f); /* mantissa * 2^-9, exact */
        return sign ? -magnitude : magnitude;
    }
    return float_from_bits(sign | ((exponent + 120) << 23) | (mantissa << 20));
}

/* ---- Little-endian loads (data in a mapping may be unaligned) ----------- */

static uint16_t load_u16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_u32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_u64(const unsigned char *p) {
    return (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32);
}

/* ---- Tensor conversions ------------------------------------------------ */

void rc_st_format_shape(const rc_tensor_view *t, char *buf, size_t size) {
    size_t used = 0;
    int n = snprintf(buf, size, "[");
    if (n > 0) used = (size_t)n;
    for (int i = 0; i < t->n_dims && used < size; i++) {
        n = snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (n > 0) used += (size_t)n;
    }
    if (used < size) snprintf(buf + used, size - used, "]");
}

static rc_status check_count(const rc_tensor_view *t, size_t expected_count, const void *dst) {
    if (!dst && expected_count > 0)
        return rc_fail(RC_ERR_INVALID_ARG, "tensor '%s' in %s: no destination buffer", t->name, t->file);
    if (t->n_elements != (uint64_t)expected_count) {
        char shape[160];
        rc_st_format_shape(t, shape, sizeof shape);
        return rc_fail(RC_ERR_FORMAT, "tensor '%s' in %s: has %llu elements (shape %s), expected %zu", t->name,
                       t->file, (unsigned long long)t->n_elements, shape, expected_count);
    }
    return RC_OK;
}

rc_status rc_tensor_check_shape(const rc_tensor_view *t, int n_dims, const int64_t *shape) {
    bool same = t->n_dims == n_dims;
    for (int i = 0; same && i < n_dims; i++) same = t->shape[i] == shape[i];
    if (same) return RC_OK;
    rc_tensor_view wanted = *t;
    wanted.n_dims = n_dims < RC_ST_MAX_DIMS ? n_dims : RC_ST_MAX_DIMS;
    for (int i = 0; i < wanted.n_dims; i++) wanted.shape[i] = shape[i];
    char have[160], want[160];
    rc_st_format_shape(t, have, sizeof have);
    rc_st_format_shape(&wanted, want, sizeof want);
    return rc_fail(RC_ERR_FORMAT, "tensor '%s' in %s: shape %s, expected %s", t->name, t->file, have, want);
}

rc_status rc_tensor_to_f32(const rc_tensor_view *t, float *dst, size_t expected_count) {
    rc_status st = check_count(t, expected_count, dst);
    if (st != RC_OK) return st;
    const unsigned char *src = t->data;
    size_t n = expected_count;
    switch (t->dtype) {
    case RC_DTYPE_F32:
        for (size_t i = 0; i < n; i++) dst[i] = float_from_bits(load_u32(src + 4 * i));
        return RC_OK;
    case RC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = rc_f16_to_f32(load_u16(src + 2 * i));
        return RC_OK;
    case RC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = rc_bf16_to_f32(load_u16(src + 2 * i));
        return RC_OK;
    case RC_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t bits = load_u64(src + 8 * i);
            double d;
            memcpy(&d, &bits, sizeof d);
            dst[i] = (float)d;
        }
        return RC_OK;
    case RC_DTYPE_F8_E5M2:
        for (size_t i = 0; i < n; i++) dst[i] = f8_e5m2_to_f32(src[i]);
        return RC_OK;
    case RC_DTYPE_F8_E4M3:
        for (size_t i = 0; i < n; i++) dst[i] = f8_e4m3_to_f32(src[i]);
        return RC_OK;
    default:
        return rc_fail(RC_ERR_FORMAT, "tensor '%s' in %s: dtype %s is not a floating-point type", t->name, t->file,
                       rc_dtype_name(t->dtype));
    }
}

static rc_status out_of_range(const rc_tensor_view *t, size_t index, const char *value) {
    return rc_fail(RC_ERR_FORMAT, "tensor '%s' in %s: element %zu = %s does not fit in int32", t->name, t->file,
                   index, value);
}

rc_status rc_tensor_to_i32(const rc_tensor_view *t, int32_t *dst, size_t expected_count) {
    rc_status st = check_count(t, expected_count, dst);
    if (st != RC_OK) return st;
    const unsigned char *src = t->data;
    size_t n = expected_count;
    char text[32];
    switch (t->dtype) {
    case RC_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) {
            if (src[i] > 1)
                return rc_fail(RC_ERR_FORMAT, "tensor '%s' in %s: BOOL element %zu has byte value %u", t->name,
                               t->file, i, src[i]);
            dst[i] = src[i];
        }
        return RC_OK;
    case RC_DTYPE_U8:
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
        return RC_OK;
    case RC_DTYPE_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (int8_t)src[i];
        return RC_OK;
    case RC_DTYPE_I16:
        for (size_t i = 0; i < n; i++) dst[i] = (int16_t)load_u16(src + 2 * i);
        return RC_OK;
    case RC_DTYPE_U16:
        for (size_t i = 0; i < n; i++) dst[i] = load_u16(src + 2 * i);
        return RC_OK;
    case RC_DTYPE_I32:
        for (size_t i = 0; i < n; i++) dst[i] = (int32_t)load_u32(src + 4 * i);
        return RC_OK;
    case RC_DTYPE_U32:
        for (size_t i = 0; i < n; i++) {
            uint32_t v = load_u32(src + 4 * i);
            if (v > (uint32_t)INT32_MAX) {
                snprintf(text, sizeof text, "%lu", (unsigned long)v);
                return out_of_range(t, i, text);
            }
            dst[i] = (int32_t)v;
        }
        return RC_OK;
    case RC_DTYPE_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v = (int64_t)load_u64(src + 8 * i);
            if (v < INT32_MIN || v > INT32_MAX) {
                snprintf(text, sizeof text, "%lld", (long long)v);
                return out_of_range(t, i, text);
            }
            dst[i] = (int32_t)v;
        }
        return RC_OK;
    case RC_DTYPE_U64:
        for (size_t i = 0; i < n; i++) {
            uint64_t v = load_u64(src + 8 * i);
            if (v > (uint64_t)INT32_MAX) {
                snprintf(text, sizeof text, "%llu", (unsigned long long)v);
                return out_of_range(t, i, text);
            }
            dst[i] = (int32_t)v;
        }
        return RC_OK;
    default:
        return rc_fail(RC_ERR_FORMAT, "tensor '%s' in %s: dtype %s is not an integer type", t->name, t->file,
                       rc_dtype_name(t->dtype));
    }
}
