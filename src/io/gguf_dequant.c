/* ggml tensor types: names, block sizes, and dequantisation to float32.
 *
 * Block layouts are those of ggml-common.h (all fields little-endian, f16
 * scales). Each formula performs the float operations of ggml's reference
 * dequantize_row_* in the same order (and so those of gguf-py's numpy
 * version): a product of a scale and a small integer, then the minimum added
 * or subtracted. With -ffp-contract=off (CMakeLists.txt) nothing is fused,
 * so the results are bit-identical to both. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rewardc/gguf.h"
#include "rewardc/safetensors.h"

#define QK 32   /* elements per block of the 32-element types */
#define QK_K 256 /* elements per super-block of the K types */

typedef struct {
    const char *name;
    uint32_t block_elements, block_bytes;
} type_info;

static const type_info types[RC_GGML_TYPE_LIMIT] = {
    [0] = {"F32", 1, 4},
    [1] = {"F16", 1, 2},
    [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},
    [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},
    [9] = {"Q8_1", 32, 40},
    [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},
    [12] = {"Q4_K", 256, 144},
    [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},
    [15] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98},
    [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},
    [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136},
    [24] = {"I8", 1, 1},
    [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},
    [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},
    [39] = {"MXFP4", 32, 17},
};

const char *rc_ggml_type_name(uint32_t type) { return type < RC_GGML_TYPE_LIMIT ? types[type].name : NULL; }

bool rc_ggml_type_block(uint32_t type, uint32_t *block_elements, uint32_t *block_bytes) {
    if (!rc_ggml_type_name(type)) return false;
    *block_elements = types[type].block_elements;
    *block_bytes = types[type].block_bytes;
    return true;
}

bool rc_ggml_type_dequantizable(uint32_t type) {
    switch (type) {
    case RC_GGML_F32: case RC_GGML_F16: case RC_GGML_BF16: case RC_GGML_Q8_0: case RC_GGML_Q4_0:
    case RC_GGML_Q4_1: case RC_GGML_Q5_0: case RC_GGML_Q5_1: case RC_GGML_Q4_K: case RC_GGML_Q5_K:
    case RC_GGML_Q6_K:
        return true;
    default:
        return false;
    }
}

static uint16_t u16_at(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t u32_at(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static float f16_at(const unsigned char *p) { return rc_f16_to_f32(u16_at(p)); }

/* ---- 32-element blocks --------------------------------------------------------
 * The 16 bytes of 4-bit codes hold elements j (low nibble) and j + 16 (high). */

/* Q4_0 {f16 d; u8 qs[16]}: y = d * (q - 8) */
static void block_q4_0(const unsigned char *b, float *y) {
    float d = f16_at(b);
    const unsigned char *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)((qs[j] & 0x0F) - 8);
        y[j + QK / 2] = d * (float)((qs[j] >> 4) - 8);
    }
}

/* Q4_1 {f16 d; f16 m; u8 qs[16]}: y = d * q + m */
static void block_q4_1(const unsigned char *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    const unsigned char *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)(qs[j] & 0x0F) + m;
        y[j + QK / 2] = d * (float)(qs[j] >> 4) + m;
    }
}

/* Bit j of qh is the fifth bit of element j. */
static int fifth_bit(uint32_t qh, int j) { return (int)((qh >> j) & 1u) << 4; }

/* Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: y = d * (q - 16), q five bits */
static void block_q5_0(const unsigned char *b, float *y) {
    float d = f16_at(b);
    uint32_t qh = u32_at(b + 2);
    const unsigned char *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)(((qs[j] & 0x0F) | fifth_bit(qh, j)) - 16);
        y[j + QK / 2] = d * (float)(((qs[j] >> 4) | fifth_bit(qh, j + QK / 2)) - 16);
    }
}

/* Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: y = d * q + m */
static void block_q5_1(const unsigned char *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = u32_at(b + 4);
    const unsigned char *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)((qs[j] & 0x0F) | fifth_bit(qh, j)) + m;
        y[j + QK / 2] = d * (float)((qs[j] >> 4) | fifth_bit(qh, j + QK / 2)) + m;
    }
}

/* Q8_0 {f16 d; i8 qs[32]}: y = d * q */
static void block_q8_0(const unsigned char *b, float *y) {
    float d = f16_at(b);
    for (int j = 0; j < QK; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

/* ---- 256-element super-blocks --------------------------------------------------- */

/* Q4_K / Q5_K: eight sub-blocks of 32, each with a 6-bit scale and 6-bit min
 * packed in 12 bytes: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scale)
 * and 4-7 (min); 4-7 in the nibbles of bytes 8-11, their top 2 bits in the
 * top 2 bits of bytes 0-3 (scale) and 4-7 (min). */
static void scale_min_k4(int j, const unsigned char *q, int *scale, int *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: per 64 elements, the low
 * nibbles of 32 bytes are sub-block 2i, the high nibbles sub-block 2i + 1;
 * y = (d * scale) * q - (dmin * min). */
static void block_q4_k(const unsigned char *b, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const unsigned char *scales = b + 4, *qs = b + 16;
    for (int pair = 0; pair < 4; pair++, qs += 32, y += 64) {
        int sc, mn;
        scale_min_k4(2 * pair, scales, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(2 * pair + 1, scales, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)(qs[l] & 0x0F) - m1;
        for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)(qs[l] >> 4) - m2;
    }
}

/* Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K, with
 * bit s of qh[l] the fifth bit of element l of sub-block s. */
static void block_q5_k(const unsigned char *b, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const unsigned char *scales = b + 4, *qh = b + 16, *qs = b + 48;
    for (int pair = 0; pair < 4; pair++, qs += 32, y += 64) {
        int sc, mn;
        scale_min_k4(2 * pair, scales, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(2 * pair + 1, scales, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        int lo_bit = 2 * pair, hi_bit = 2 * pair + 1;
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)((qs[l] & 0x0F) | (((qh[l] >> lo_bit) & 1) << 4)) - m1;
        for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)((qs[l] >> 4) | (((qh[l] >> hi_bit) & 1) << 4)) - m2;
    }
}

/* Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: per 128 elements, 64
 * bytes of ql (low nibbles: elements 0-63, high: 64-127) and 32 of qh (2 bits
 * each for elements l, l+32, l+64, l+96); 16 elements share a scale;
 * y = (d * scale) * (q - 32). */
static void block_q6_k(const unsigned char *b, float *y) {
    const unsigned char *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

typedef void (*block_fn)(const unsigned char *block, float *out);

static block_fn block_function(uint32_t type) {
    switch (type) {
    case RC_GGML_Q4_0: return block_q4_0;
    case RC_GGML_Q4_1: return block_q4_1;
    case RC_GGML_Q5_0: return block_q5_0;
    case RC_GGML_Q5_1: return block_q5_1;
    case RC_GGML_Q8_0: return block_q8_0;
    case RC_GGML_Q4_K: return block_q4_k;
    case RC_GGML_Q5_K: return block_q5_k;
    case RC_GGML_Q6_K: return block_q6_k;
    default: return NULL;
    }
}

static rc_status unsupported(uint32_t type, const char *what) {
    const char *name = rc_ggml_type_name(type);
    if (!name)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: unknown ggml type %" PRIu32, what, type);
    return rc_fail(RC_ERR_UNSUPPORTED,
                   "%s: ggml type %s is not dequantised by rewardc (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                   "Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)",
                   what, name);
}

static rc_status dequantize(uint32_t type, const unsigned char *src, size_t n, float *dst, const char *what) {
    if (!rc_ggml_type_dequantizable(type)) return unsupported(type, what);
    uint32_t block_elems = types[type].block_elements, block_bytes = types[type].block_bytes;
    if (n % block_elems != 0)
        return rc_fail(RC_ERR_INVALID_ARG, "%s: %zu elements are not whole %s blocks of %" PRIu32, what, n,
                       types[type].name, block_elems);
    switch (type) {
    case RC_GGML_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = u32_at(src + 4 * i);
            memcpy(&dst[i], &bits, sizeof bits);
        }
        return RC_OK;
    case RC_GGML_F16:
        for (size_t i = 0; i < n; i++) dst[i] = rc_f16_to_f32(u16_at(src + 2 * i));
        return RC_OK;
    case RC_GGML_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = rc_bf16_to_f32(u16_at(src + 2 * i));
        return RC_OK;
    default: {
        block_fn fn = block_function(type);
        for (size_t blk = 0; blk < n / block_elems; blk++) fn(src + blk * block_bytes, dst + blk * block_elems);
        return RC_OK;
    }
    }
}

rc_status rc_ggml_dequantize(uint32_t type, const unsigned char *src, size_t n, float *dst) {
    return dequantize(type, src, n, dst, "dequantize");
}

rc_status rc_gguf_tensor_to_f32(const rc_gguf *g, const rc_gguf_tensor *t, float *dst, size_t expected_count) {
    char what[512];
    snprintf(what, sizeof what, "%s: tensor '%s'", rc_gguf_path(g), t->name);
    if (t->n_elements != (uint64_t)expected_count)
        return rc_fail(RC_ERR_FORMAT, "%s has %" PRIu64 " elements, expected %zu", what, t->n_elements, expected_count);
    if (!dst && expected_count) return rc_fail(RC_ERR_INVALID_ARG, "%s: no destination buffer", what);
    return dequantize(t->type, t->data, expected_count, dst, what);
}
