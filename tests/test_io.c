/* Tests for the I/O layer: half-precision conversions against independently
 * computed values, safetensors round trips of every dtype, sharded folders,
 * rejection of malformed files, atomic writes, and (when python3 with torch
 * and safetensors is installed) interoperability with the Python package. */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "testlib.h"

static char work_dir[1024];

static const char *tmp_path(const char *name) {
    static char buf[4][2048];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", work_dir, name);
    return buf[slot];
}

static float f32_from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Deterministic pseudo-random numbers (xorshift) so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Removes the regular files in `dir` (the test's own scratch folders). */
static void clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[2048];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0'))) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (rc_path_is_file(path)) unlink(path);
    }
    closedir(d);
}

static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* ---- Half-precision conversions ------------------------------------------ */

/* Value of an IEEE binary16 pattern computed arithmetically (not by bit moves). */
static double f16_reference(uint16_t h) {
    int sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    double magnitude;
    if (exponent == 31) magnitude = mantissa ? NAN : INFINITY;
    else if (exponent == 0) magnitude = ldexp(mantissa, -24);
    else magnitude = ldexp(1024 + mantissa, exponent - 25);
    return sign ? -magnitude : magnitude;
}

static double bf16_reference(uint16_t h) {
    int sign = h >> 15, exponent = (h >> 7) & 0xFF, mantissa = h & 0x7F;
    double magnitude;
    if (exponent == 255) magnitude = mantissa ? NAN : INFINITY;
    else if (exponent == 0) magnitude = ldexp(mantissa, -133);
    else magnitude = ldexp(128 + mantissa, exponent - 134);
    return sign ? -magnitude : magnitude;
}

static bool same_value(double expected, float got) {
    if (isnan(expected)) return isnan(got);
    return (double)got == expected && !!signbit(got) == !!signbit(expected);
}

/* Checks that `h` is the correctly rounded (nearest, ties to even) encoding
 * of finite x among its neighbours, using only the reference decoder. */
static bool is_nearest_even(float x, uint16_t h, double (*decode)(uint16_t), uint16_t inf_bits) {
    uint16_t magnitude = h & 0x7FFF;
    double value = decode(h);
    if (magnitude == inf_bits) {
        /* Overflow: x must be at least halfway past the largest finite value. */
        double largest = decode((uint16_t)(inf_bits - 1));
        double next = 2 * largest - decode((uint16_t)(inf_bits - 2));
        return fabs((double)x) >= (largest + next) / 2;
    }
    double err = fabs((double)x - value);
    for (int step = -1; step <= 1; step += 2) {
        int m = (int)magnitude + step;
        if (m < 0 || m >= inf_bits) continue;
        uint16_t neighbour = (uint16_t)((h & 0x8000) | m);
        double other = fabs((double)x - decode(neighbour));
        if (other < err) return false;
        if (other == err && (magnitude & 1)) return false;
    }
    return true;
}

static void test_f16(void) {
    int decode_bad = 0, roundtrip_bad = 0;
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float got = rc_f16_to_f32((uint16_t)h);
        if (!same_value(f16_reference((uint16_t)h), got)) decode_bad++;
        uint16_t back = rc_f32_to_f16(got);
        bool is_nan = ((h >> 10) & 0x1F) == 31 && (h & 0x3FF);
        if (is_nan ? !(((back >> 10) & 0x1F) == 31 && (back & 0x3FF)) : back != h) roundtrip_bad++;
    }
    CHECK(decode_bad == 0, "f16 decode differs from the arithmetic reference for %d patterns", decode_bad);
    CHECK(roundtrip_bad == 0, "f16 -> f32 -> f16 not the identity for %d patterns", roundtrip_bad);

    CHECK(rc_f16_to_f32(0x3C00) == 1.0f, "f16 0x3C00 should be 1.0");
    CHECK(rc_f16_to_f32(0xC000) == -2.0f, "f16 0xC000 should be -2.0");
    CHECK(rc_f16_to_f32(0x7BFF) == 65504.0f, "f16 0x7BFF should be 65504");
    CHECK(rc_f16_to_f32(0x0001) == (float)ldexp(1.0, -24), "f16 0x0001 should be 2^-24");
    CHECK(rc_f16_to_f32(0x03FF) == (float)ldexp(1023.0, -24), "f16 0x03FF should be 1023*2^-24");
    CHECK(isinf(rc_f16_to_f32(0x7C00)) && rc_f16_to_f32(0x7C00) > 0, "f16 0x7C00 should be +inf");
    CHECK(isinf(rc_f16_to_f32(0xFC00)) && rc_f16_to_f32(0xFC00) < 0, "f16 0xFC00 should be -inf");
    CHECK(isnan(rc_f16_to_f32(0x7E00)), "f16 0x7E00 should be NaN");
    CHECK(rc_f16_to_f32(0x8000) == 0.0f && signbit(rc_f16_to_f32(0x8000)), "f16 0x8000 should be -0");

    /* Rounding from float32, expected encodings worked out by hand. */
    CHECK(rc_f32_to_f16(1.0f / 3.0f) == 0x3555, "1/3 -> f16 0x%04x, expected 0x3555", rc_f32_to_f16(1.0f / 3.0f));
    CHECK(rc_f32_to_f16(65519.0f) == 0x7BFF, "65519 should round down to 65504");
    CHECK(rc_f32_to_f16(65520.0f) == 0x7C00, "65520 (halfway to 65536) should round to inf");
    CHECK(rc_f32_to_f16(-1e6f) == 0xFC00, "-1e6 should overflow to -inf");
    CHECK(rc_f32_to_f16((float)ldexp(1.0, -25)) == 0x0000, "2^-25 (tie) should round to even 0");
    CHECK(rc_f32_to_f16((float)ldexp(3.0, -26)) == 0x0001, "1.5*2^-25 should round to 2^-24");
    CHECK(rc_f32_to_f16((float)ldexp(3.0, -25)) == 0x0002, "1.5*2^-24 (tie) should round to even 2*2^-24");
    CHECK(rc_f32_to_f16((float)ldexp(5.0, -25)) == 0x0002, "2.5*2^-24 (tie) should round to even 2*2^-24");
    CHECK(rc_f32_to_f16(1.0f + (float)ldexp(1.0, -11)) == 0x3C00, "1+2^-11 (tie) should round to 1.0");
    CHECK(rc_f32_to_f16(1.0f + (float)ldexp(3.0, -11)) == 0x3C02, "1+3*2^-11 (tie) should round up to even");
    CHECK(rc_f32_to_f16((float)ldexp(2047.0, -25)) == 0x0400, "just below 2^-14 should round up to the smallest normal");
    CHECK(rc_f32_to_f16(-0.0f) == 0x8000, "-0 should keep its sign");
    CHECK(rc_f32_to_f16(FLT_MIN / 4) == 0x0000, "a float subnormal should flush to +0");
    uint16_t nan_half = rc_f32_to_f16(NAN);
    CHECK((nan_half & 0x7C00) == 0x7C00 && (nan_half & 0x3FF), "NaN should stay NaN (got 0x%04x)", nan_half);

    int not_nearest = 0;
    for (int i = 0; i < 200000; i++) {
        /* Exponents spanning the subnormal range to beyond the overflow point. */
        uint32_t bits = (rng_u32() & 0x807FFFFFu) | ((uint32_t)(127 - 27 + rng_u32() % 45) << 23);
        float x = f32_from_bits(bits);
        if (!is_nearest_even(x, rc_f32_to_f16(x), f16_reference, 0x7C00)) not_nearest++;
    }
    CHECK(not_nearest == 0, "f32 -> f16 not nearest-even for %d random values", not_nearest);
}

static void test_bf16(void) {
    int decode_bad = 0, roundtrip_bad = 0;
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float got = rc_bf16_to_f32((uint16_t)h);
        if (!same_value(bf16_reference((uint16_t)h), got)) decode_bad++;
        bool is_nan = ((h >> 7) & 0xFF) == 255 && (h & 0x7F);
        uint16_t back = rc_f32_to_bf16(got);
        if (is_nan ? !isnan(rc_bf16_to_f32(back)) : back != h) roundtrip_bad++;
    }
    CHECK(decode_bad == 0, "bf16 decode differs from the arithmetic reference for %d patterns", decode_bad);
    CHECK(roundtrip_bad == 0, "bf16 -> f32 -> bf16 not the identity for %d patterns", roundtrip_bad);

    /* 1/3 = 0x3EAAAAAB: the dropped half 0xAAAB is above halfway, so it rounds up
     * to 0x3EAB = (1 + 43/128) / 4 = 171/512. */
    CHECK(rc_f32_to_bf16(1.0f / 3.0f) == 0x3EAB, "1/3 -> bf16 0x%04x, expected 0x3EAB", rc_f32_to_bf16(1.0f / 3.0f));
    CHECK(rc_bf16_to_f32(0x3EAB) == 171.0f / 512.0f, "bf16 0x3EAB should be 171/512");
    CHECK(rc_bf16_to_f32(0x3F80) == 1.0f && rc_bf16_to_f32(0xC000) == -2.0f, "bf16 1.0 / -2.0 patterns");
    CHECK(rc_f32_to_bf16(f32_from_bits(0x3F808000u)) == 0x3F80, "bf16 tie should round to even (down)");
    CHECK(rc_f32_to_bf16(f32_from_bits(0x3F818000u)) == 0x3F82, "bf16 tie should round to even (up)");
    CHECK(rc_f32_to_bf16(FLT_MAX) == 0x7F80, "FLT_MAX should round to bf16 inf");
    CHECK(rc_f32_to_bf16(-INFINITY) == 0xFF80, "-inf should stay -inf");
    CHECK(rc_bf16_to_f32(0x0001) == (float)ldexp(1.0, -133), "bf16 0x0001 should be 2^-133");
    CHECK(isnan(rc_bf16_to_f32(rc_f32_to_bf16(f32_from_bits(0x7F800001u)))),
          "a NaN whose payload is only in the low bits must stay NaN");

    int not_nearest = 0;
    for (int i = 0; i < 200000; i++) {
        float x = f32_from_bits(rng_u32() & 0xFF7FFFFFu); /* any finite float */
        if (isnan(x) || isinf(x)) continue;
        if (!is_nearest_even(x, rc_f32_to_bf16(x), bf16_reference, 0x7F80)) not_nearest++;
    }
    CHECK(not_nearest == 0, "f32 -> bf16 not nearest-even for %d random values", not_nearest);
}

/* ---- Round trip of every dtype --------------------------------------------- */

enum { N_ROUND = 13 };

static void test_round_trip(void) {
    const char *path = tmp_path("all_dtypes.safetensors");
    float f32[N_ROUND];
    double f64[N_ROUND];
    uint16_t f16[N_ROUND], bf16[N_ROUND], u16[N_ROUND];
    int16_t i16[N_ROUND];
    int32_t i32[N_ROUND];
    uint32_t u32[N_ROUND];
    int64_t i64[N_ROUND];
    uint64_t u64[N_ROUND];
    int8_t i8[N_ROUND];
    uint8_t u8[N_ROUND], boolean[N_ROUND], f8a[4] = {0x38, 0x7E, 0x01, 0xFF}, f8b[4] = {0x3C, 0x7B, 0x01, 0x7C};
    for (int i = 0; i < N_ROUND; i++) {
        f32[i] = (float)(i - 6) * 0.7f;
        f64[i] = (i - 6) * 1e-3;
        f16[i] = rc_f32_to_f16(f32[i]);
        bf16[i] = rc_f32_to_bf16(f32[i]);
        i8[i] = (int8_t)(i * 20 - 128);
        u8[i] = (uint8_t)(i * 19);
        boolean[i] = (uint8_t)(i % 2);
        i16[i] = (int16_t)(i * 5000 - 32000);
        u16[i] = (uint16_t)(i * 5000);
        i32[i] = (int32_t)((int64_t)i * 300000000 - 2000000000);
        u32[i] = (uint32_t)i * 100u;
        i64[i] = (int64_t)i * 1000 - 5000;
        u64[i] = (uint64_t)i * 7;
    }
    const int64_t shape_13[1] = {N_ROUND}, shape_4[1] = {4}, shape_empty[2] = {3, 0};
    const float scalar = 42.5f;
    struct {
        const char *name;
        rc_dtype dtype;
        const void *data;
    } list[] = {
        {"f32", RC_DTYPE_F32, f32}, {"f64", RC_DTYPE_F64, f64},   {"f16", RC_DTYPE_F16, f16},
        {"bf16", RC_DTYPE_BF16, bf16}, {"i8", RC_DTYPE_I8, i8},   {"u8", RC_DTYPE_U8, u8},
        {"bool", RC_DTYPE_BOOL, boolean}, {"i16", RC_DTYPE_I16, i16}, {"u16", RC_DTYPE_U16, u16},
        {"i32", RC_DTYPE_I32, i32}, {"u32", RC_DTYPE_U32, u32},   {"i64", RC_DTYPE_I64, i64},
        {"u64", RC_DTYPE_U64, u64},
    };
    size_t n_list = sizeof list / sizeof list[0];

    rc_st_writer *w;
    CHECK(rc_st_writer_new(&w) == RC_OK, "writer_new");
    for (size_t i = 0; i < n_list; i++)
        CHECK(rc_st_writer_add(w, list[i].name, list[i].dtype, 1, shape_13, list[i].data) == RC_OK, "add %s: %s",
              list[i].name, rc_last_error());
    CHECK(rc_st_writer_add(w, "f8_e4m3", RC_DTYPE_F8_E4M3, 1, shape_4, f8a) == RC_OK, "add f8_e4m3");
    CHECK(rc_st_writer_add(w, "f8_e5m2", RC_DTYPE_F8_E5M2, 1, shape_4, f8b) == RC_OK, "add f8_e5m2");
    CHECK(rc_st_writer_add(w, "scalar", RC_DTYPE_F32, 0, NULL, &scalar) == RC_OK, "add scalar: %s", rc_last_error());
    CHECK(rc_st_writer_add(w, "empty", RC_DTYPE_F32, 2, shape_empty, NULL) == RC_OK, "add empty: %s", rc_last_error());
    CHECK(rc_st_writer_add(w, "f32", RC_DTYPE_F32, 1, shape_13, f32) != RC_OK, "a duplicate name must fail");
    CHECK(rc_st_writer_add(w, "__metadata__", RC_DTYPE_F32, 1, shape_13, f32) != RC_OK, "__metadata__ is reserved");
    CHECK(rc_st_writer_add(w, "bad\xff", RC_DTYPE_F32, 1, shape_13, f32) != RC_OK, "non-UTF-8 names must fail");
    const int64_t negative[1] = {-1};
    CHECK(rc_st_writer_add(w, "neg", RC_DTYPE_F32, 1, negative, f32) != RC_OK, "negative extents must fail");
    CHECK(rc_st_writer_add_metadata(w, "format", "pt") == RC_OK, "metadata");
    CHECK(rc_st_writer_add_metadata(w, "note", "quote \" backslash \\ newline \n tab \t ctl \x01 é") == RC_OK,
          "metadata with escapes");
    CHECK(rc_st_writer_add_metadata(w, "format", "pt") == RC_OK, "repeated metadata key replaces");
    CHECK(rc_st_writer_write(w, path) == RC_OK, "write: %s", rc_last_error());
    rc_st_writer_free(w);

    /* Layout as the Python package writes it. */
    char *raw;
    size_t raw_len;
    CHECK(rc_read_file(path, &raw, &raw_len) == RC_OK, "read back raw bytes");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | (unsigned char)raw[i];
    CHECK(header_len % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)header_len);
    CHECK(raw[8] == '{' && strncmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\",", 31) == 0,
          "header should start with sorted __metadata__: %.60s", raw + 8);
    /* dtype rank descending: U64, I64, F64, F32..., then name order within F32. */
    const char *order[] = {"\"u64\"", "\"i64\"", "\"f64\"", "\"empty\"", "\"f32\"", "\"scalar\"", "\"u32\"",
                           "\"i32\"", "\"bf16\"", "\"f16\"", "\"u16\"", "\"i16\"", "\"f8_e4m3\"",
                           "\"f8_e5m2\"", "\"i8\"", "\"u8\"", "\"bool\""};
    const char *prev = raw;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *at = strstr(raw + 8, order[i]);
        CHECK(at && at > prev, "tensor %s out of the safetensors layout order", order[i]);
        if (at) prev = at;
    }
    CHECK(strstr(raw + 8, "\"u64\":{\"dtype\":\"U64\",\"shape\":[13],\"data_offsets\":[0,104]}") != NULL,
          "widest dtype first, at offset 0");
    CHECK(strstr(raw + 8, "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],") != NULL, "scalar has shape []");
    free(raw);

    rc_safetensors *st;
    CHECK(rc_st_open(path, &st) == RC_OK, "open: %s", rc_last_error());
    if (!st) return;
    CHECK(rc_st_count(st) == n_list + 4, "count %zu, expected %zu", rc_st_count(st), n_list + 4);
    for (size_t i = 1; i < rc_st_count(st); i++)
        CHECK(strcmp(rc_st_tensor_at(st, i - 1)->name, rc_st_tensor_at(st, i)->name) < 0, "iteration sorted by name");
    for (size_t i = 0; i < n_list; i++) {
        const rc_tensor_view *t = rc_st_find(st, list[i].name);
        CHECK(t != NULL, "tensor %s missing", list[i].name);
        if (!t) continue;
        CHECK(t->dtype == list[i].dtype, "%s dtype %s", list[i].name, rc_dtype_name(t->dtype));
        CHECK(t->n_dims == 1 && t->shape[0] == N_ROUND && t->n_elements == N_ROUND, "%s shape", list[i].name);
        CHECK(t->n_bytes == N_ROUND * rc_dtype_size(list[i].dtype), "%s bytes", list[i].name);
        CHECK(memcmp(t->data, list[i].data, t->n_bytes) == 0, "%s data differs after the round trip", list[i].name);
        CHECK(strcmp(t->file, path) == 0, "%s file name", list[i].name);
    }
    CHECK(strcmp(rc_st_metadata(st, "format"), "pt") == 0, "metadata format");
    CHECK(rc_st_metadata(st, "note") && strcmp(rc_st_metadata(st, "note"),
                                               "quote \" backslash \\ newline \n tab \t ctl \x01 é") == 0,
          "escaped metadata round trip");
    CHECK(rc_st_metadata(st, "absent") == NULL, "missing metadata key");
    CHECK(rc_st_metadata_count(st) == 2, "metadata count");
    const char *key, *value;
    rc_st_metadata_at(st, 0, &key, &value);
    CHECK(strcmp(key, "format") == 0 && strcmp(value, "pt") == 0, "metadata sorted by key");

    const rc_tensor_view *t = rc_st_find(st, "scalar");
    float got_scalar = 0;
    CHECK(t && t->n_dims == 0 && t->n_elements == 1, "scalar view");
    CHECK(t && rc_tensor_to_f32(t, &got_scalar, 1) == RC_OK && got_scalar == 42.5f, "scalar value");
    t = rc_st_find(st, "empty");
    CHECK(t && t->n_elements == 0 && t->n_bytes == 0 && t->shape[0] == 3 && t->shape[1] == 0, "empty tensor");
    CHECK(t && rc_tensor_to_f32(t, NULL, 0) == RC_OK, "empty tensor converts with no buffer");

    /* Conversions to float32 and int32. */
    float fl[N_ROUND];
    CHECK(rc_st_read_f32(st, "f32", fl, N_ROUND) == RC_OK && memcmp(fl, f32, sizeof fl) == 0, "F32 -> f32");
    int bad = 0;
    CHECK(rc_st_read_f32(st, "f16", fl, N_ROUND) == RC_OK, "F16 -> f32");
    for (int i = 0; i < N_ROUND; i++) bad += fl[i] != (float)f16_reference(f16[i]);
    CHECK(rc_st_read_f32(st, "bf16", fl, N_ROUND) == RC_OK, "BF16 -> f32");
    for (int i = 0; i < N_ROUND; i++) bad += fl[i] != (float)bf16_reference(bf16[i]);
    CHECK(rc_st_read_f32(st, "f64", fl, N_ROUND) == RC_OK, "F64 -> f32");
    for (int i = 0; i < N_ROUND; i++) bad += fl[i] != (float)f64[i];
    CHECK(bad == 0, "%d float conversion mismatches", bad);
    float f8[4];
    CHECK(rc_st_read_f32(st, "f8_e4m3", f8, 4) == RC_OK, "F8_E4M3 -> f32");
    CHECK(f8[0] == 1.0f && f8[1] == 448.0f && f8[2] == (float)ldexp(1.0, -9) && isnan(f8[3]),
          "F8_E4M3 values %g %g %g %g", f8[0], f8[1], f8[2], f8[3]);
    CHECK(rc_st_read_f32(st, "f8_e5m2", f8, 4) == RC_OK, "F8_E5M2 -> f32");
    CHECK(f8[0] == 1.0f && f8[1] == 57344.0f && f8[2] == (float)ldexp(1.0, -16) && isinf(f8[3]),
          "F8_E5M2 values %g %g %g %g", f8[0], f8[1], f8[2], f8[3]);

    int32_t iv[N_ROUND];
    const char *ints[] = {"i8", "u8", "bool", "i16", "u16", "i32", "u32", "i64", "u64"};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        CHECK(rc_st_read_i32(st, ints[k], iv, N_ROUND) == RC_OK, "%s -> i32: %s", ints[k], rc_last_error());
        int mismatches = 0;
        for (int i = 0; i < N_ROUND; i++) {
            int64_t want = 0;
            switch (k) {
            case 0: want = i8[i]; break;
            case 1: want = u8[i]; break;
            case 2: want = boolean[i]; break;
            case 3: want = i16[i]; break;
            case 4: want = u16[i]; break;
            case 5: want = i32[i]; break;
            case 6: want = u32[i]; break;
            case 7: want = i64[i]; break;
            default: want = (int64_t)u64[i]; break;
            }
            mismatches += iv[i] != want;
        }
        CHECK(mismatches == 0, "%s -> i32: %d mismatches", ints[k], mismatches);
    }

    /* Errors: wrong count, wrong kind, missing tensor, shapes. */
    CHECK(rc_st_read_f32(st, "f32", fl, N_ROUND - 1) == RC_ERR_FORMAT, "wrong element count must fail");
    CHECK(strstr(rc_last_error(), "'f32'") && strstr(rc_last_error(), "expected 12"), "count message: %s",
          rc_last_error());
    CHECK(rc_st_read_f32(st, "i32", fl, N_ROUND) != RC_OK, "int tensor into float must fail");
    CHECK(rc_st_read_i32(st, "f32", iv, N_ROUND) != RC_OK, "float tensor into int must fail");
    CHECK(rc_st_read_f32(st, "nope", fl, N_ROUND) != RC_OK && strstr(rc_last_error(), "'nope'"),
          "missing tensor names it: %s", rc_last_error());
    CHECK(rc_st_find(st, "nope") == NULL, "find missing");
    const int64_t want_shape[1] = {N_ROUND}, wrong_shape[2] = {13, 1};
    t = rc_st_find(st, "f32");
    CHECK(rc_tensor_check_shape(t, 1, want_shape) == RC_OK, "shape matches");
    CHECK(rc_tensor_check_shape(t, 2, wrong_shape) != RC_OK && strstr(rc_last_error(), "[13, 1]"),
          "shape mismatch message: %s", rc_last_error());
    rc_st_close(st);

    /* Int64 values beyond int32 are refused, naming the element. */
    int64_t big[3] = {1, (int64_t)INT32_MAX + 1, 3};
    const int64_t shape_3[1] = {3};
    CHECK(rc_st_writer_new(&w) == RC_OK, "writer");
    CHECK(rc_st_writer_add(w, "ids", RC_DTYPE_I64, 1, shape_3, big) == RC_OK, "add ids");
    CHECK(rc_st_writer_write(w, tmp_path("big.safetensors")) == RC_OK, "write big");
    rc_st_writer_free(w);
    CHECK(rc_st_open(tmp_path("big.safetensors"), &st) == RC_OK, "open big");
    CHECK(rc_st_read_i32(st, "ids", iv, 3) == RC_ERR_FORMAT && strstr(rc_last_error(), "element 1"),
          "int64 out of int32 range: %s", rc_last_error());
    rc_st_close(st);
}

/* ---- Sharded and folder layouts ------------------------------------------- */

static void write_shard(const char *path, const char *const *names, size_t n, const float *values) {
    rc_st_writer *w;
    const int64_t shape[2] = {2, 2};
    CHECK(rc_st_writer_new(&w) == RC_OK, "writer");
    for (size_t i = 0; i < n; i++) CHECK(rc_st_writer_add(w, names[i], RC_DTYPE_F32, 2, shape, values + 4 * i) == RC_OK, "add");
    CHECK(rc_st_writer_add_metadata(w, "format", "pt") == RC_OK, "metadata");
    CHECK(rc_st_writer_write(w, path) == RC_OK, "write shard %s: %s", path, rc_last_error());
    rc_st_writer_free(w);
}

static void write_text(const char *path, const char *text) {
    CHECK(rc_write_file_atomic(path, text, strlen(text)) == RC_OK, "write %s: %s", path, rc_last_error());
}

static void expect_open_error(const char *path, const char *what, const char *needle) {
    rc_safetensors *st = (rc_safetensors *)&st; /* must be reset to NULL on failure */
    rc_status status = rc_st_open(path, &st);
    CHECK(status != RC_OK, "%s: expected an error", what);
    CHECK(st == NULL, "%s: handle must be NULL on failure", what);
    if (status != RC_OK && needle)
        CHECK(strstr(rc_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, rc_last_error(), needle);
    if (status == RC_OK) rc_st_close(st);
}

static void test_folders(void) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/sharded", work_dir);
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir sharded");
    clear_dir(dir);
    char shard1[1300], shard2[1300], index[1300];
    snprintf(shard1, sizeof shard1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(shard2, sizeof shard2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    float values[12];
    for (int i = 0; i < 12; i++) values[i] = (float)i + 0.25f;
    const char *first[] = {"layer.0.weight", "layer.1.weight"}, *second[] = {"score.weight"};
    write_shard(shard1, first, 2, values);
    write_shard(shard2, second, 1, values + 8);
    const char *good_index =
        "{\"metadata\": {\"total_size\": 48}, \"weight_map\": {\n"
        "  \"layer.0.weight\": \"model-00001-of-00002.safetensors\",\n"
        "  \"layer.1.weight\": \"model-00001-of-00002.safetensors\",\n"
        "  \"score.weight\": \"model-00002-of-00002.safetensors\"}}\n";
    write_text(index, good_index);

    rc_safetensors *st;
    CHECK(rc_st_open(dir, &st) == RC_OK, "open sharded folder: %s", rc_last_error());
    if (st) {
        CHECK(rc_st_count(st) == 3, "sharded count %zu", rc_st_count(st));
        float got[4];
        CHECK(rc_st_read_f32(st, "score.weight", got, 4) == RC_OK && got[0] == 8.25f && got[3] == 11.25f,
              "score.weight from the second shard");
        CHECK(rc_st_read_f32(st, "layer.1.weight", got, 4) == RC_OK && got[0] == 4.25f, "layer.1 from shard 1");
        const rc_tensor_view *t = rc_st_find(st, "score.weight");
        CHECK(t && strcmp(t->file, shard2) == 0, "tensor records its shard file");
        CHECK(rc_st_metadata(st, "format") && strcmp(rc_st_metadata(st, "format"), "pt") == 0, "shard metadata");
        rc_st_close(st);
    }

    write_text(index, "{\"weight_map\": {\"layer.0.weight\": \"model-00001-of-00002.safetensors\","
                      " \"layer.1.weight\": \"model-00001-of-00002.safetensors\","
                      " \"score.weight\": \"model-00002-of-00002.safetensors\", \"ghost\": "
                      "\"model-00002-of-00002.safetensors\"}}");
    expect_open_error(dir, "index lists a missing tensor", "ghost");
    write_text(index, "{\"weight_map\": {\"layer.0.weight\": \"model-00001-of-00002.safetensors\","
                      " \"layer.1.weight\": \"model-00002-of-00002.safetensors\","
                      " \"score.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_open_error(dir, "index names the wrong shard", "layer.1.weight");
    write_text(index, "{\"weight_map\": {\"layer.0.weight\": \"model-00001-of-00002.safetensors\","
                      " \"score.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_open_error(dir, "shard holds an unlisted tensor", "layer.1.weight");
    write_text(index, "{\"weight_map\": {\"a\": \"model-00003-of-00002.safetensors\"}}");
    expect_open_error(dir, "missing shard file", "model-00003-of-00002.safetensors");
    write_text(index, "{\"weight_map\": {\"a\": \"../all_dtypes.safetensors\"}}");
    expect_open_error(dir, "shard outside the folder", "not a file name");
    write_text(index, "{\"weight_map\": {\n  \"a\": \"x\",\n  \"b\" \"y\"}}");
    expect_open_error(dir, "invalid index JSON", ":3:");
    write_text(index, "{\"metadata\": {}}");
    expect_open_error(dir, "index without weight_map", "weight_map");
    /* The same tensor in two shards. */
    write_shard(shard2, first, 1, values);
    write_text(index, "{\"weight_map\": {\"layer.0.weight\": \"model-00001-of-00002.safetensors\","
                      " \"layer.1.weight\": \"model-00001-of-00002.safetensors\"}}");
    CHECK(rc_st_open(dir, &st) == RC_OK, "unreferenced shard files are ignored: %s", rc_last_error());
    rc_st_close(st);
    write_text(index, "{\"weight_map\": {\"layer.0.weight\": \"model-00002-of-00002.safetensors\","
                      " \"layer.1.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_open_error(dir, "tensor in two shards", "both");

    /* A folder with a single model.safetensors. */
    snprintf(dir, sizeof dir, "%s/single", work_dir);
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir single");
    clear_dir(dir);
    char single[1300];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    write_shard(single, first, 2, values);
    CHECK(rc_st_open(dir, &st) == RC_OK && rc_st_count(st) == 2, "open single-file folder: %s", rc_last_error());
    rc_st_close(st);

    /* A folder with only PyTorch weights points at the converter. */
    snprintf(dir, sizeof dir, "%s/pytorch_only", work_dir);
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir pytorch_only");
    clear_dir(dir);
    char bin[1300];
    snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
    write_text(bin, "PK\x03\x04 not really a zip");
    snprintf(bin, sizeof bin, "%s/config.json", dir);
    write_text(bin, "{}");
    expect_open_error(dir, "pytorch-only folder", "tools/convert_to_safetensors.py");
    expect_open_error(dir, "pytorch-only folder names the file", "pytorch_model.bin");
    snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
    expect_open_error(bin, "a .bin file opened directly", "convert_to_safetensors.py");

    snprintf(dir, sizeof dir, "%s/empty_folder", work_dir);
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir empty");
    clear_dir(dir);
    expect_open_error(dir, "folder without weights", "model.safetensors");
    expect_open_error(tmp_path("does-not-exist.safetensors"), "missing file", "does-not-exist");
}

/* ---- Malformed files --------------------------------------------------------- */

/* Writes 8-byte length + header + data; header_len < 0 means the real length. */
static void write_raw(const char *path, const char *header, long long header_len, const void *data, size_t data_len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s", path);
    if (!f) return;
    uint64_t len = header_len < 0 ? strlen(header) : (uint64_t)header_len;
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(len >> (8 * i));
    fwrite(bytes, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

static void test_malformed(void) {
    const char *path = tmp_path("bad.safetensors");
    unsigned char data[64];
    for (int i = 0; i < 64; i++) data[i] = (unsigned char)i;

    /* Baseline: the hand-built form is accepted, so the failures below are
     * caused by the one thing each breaks. */
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", -1, data, 16);
    rc_safetensors *st;
    CHECK(rc_st_open(path, &st) == RC_OK, "hand-built file opens: %s", rc_last_error());
    rc_st_close(st);

    FILE *f = fopen(path, "wb");
    fwrite("\x10\x00\x00", 1, 3, f);
    fclose(f);
    expect_open_error(path, "file shorter than 8 bytes", "too short");

    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 1000, data, 16);
    expect_open_error(path, "header length beyond the file", "header length 1000");
    write_raw(path, "{}", (long long)1 << 40, NULL, 0);
    expect_open_error(path, "huge header length", "exceeds");

    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", -1, data, 12);
    expect_open_error(path, "truncated data", "run past the data area");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[32,48]}}", -1, data, 16);
    expect_open_error(path, "offsets out of range", "'a'");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}",
              -1, data, 24);
    expect_open_error(path, "overlapping tensors", "overlaps");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
              -1, data, 8);
    expect_open_error(path, "two names for the same bytes", "overlaps");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
              -1, data, 24);
    expect_open_error(path, "hole between tensors", "unused bytes");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, data, 12);
    expect_open_error(path, "trailing bytes after the last tensor", "cover only");
    write_raw(path, "{\"a\":{\"dtype\":\"F24\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", -1, data, 16);
    expect_open_error(path, "unknown dtype", "F24");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", -1, data, 16);
    expect_open_error(path, "element count does not match the byte range", "needs 24");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}", -1, data, 16);
    expect_open_error(path, "invalid JSON", "invalid JSON");
    write_raw(path, "[1, 2]", -1, NULL, 0);
    expect_open_error(path, "header not an object", "JSON object");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2,2],\"data_offsets\":[0,16]}}", -1, data, 16);
    expect_open_error(path, "negative extent", "shape[0]");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,16]}}", -1, data, 16);
    expect_open_error(path, "fractional extent", "shape[0]");
    write_raw(path, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", -1, data, 1);
    expect_open_error(path, "too many dimensions", "dimensions");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", -1, data, 16);
    expect_open_error(path, "offsets reversed", "'a'");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16,32]}}", -1, data, 16);
    expect_open_error(path, "three offsets", "data_offsets");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2]}}", -1, data, 16);
    expect_open_error(path, "missing offsets", "data_offsets");
    write_raw(path, "{\"a\":{\"shape\":[2,2],\"data_offsets\":[0,16]}}", -1, data, 16);
    expect_open_error(path, "missing dtype", "dtype");
    write_raw(path, "{\"a\":[1]}", -1, NULL, 0);
    expect_open_error(path, "tensor entry not an object", "'a'");
    write_raw(path,
              "{\"__metadata__\":{\"n\":3},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", -1,
              data, 16);
    expect_open_error(path, "non-string metadata", "__metadata__");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              -1, data, 16);
    expect_open_error(path, "duplicate tensor name", "twice");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}  x", -1, data, 16);
    expect_open_error(path, "garbage after the header JSON", "after the JSON");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}",
              -1, data, 16);
    expect_open_error(path, "element count overflow", "overflows");
    write_raw(path, " {}", -1, NULL, 0);
    expect_open_error(path, "header not starting with '{'", "JSON object");

    /* Padding with spaces (as the writer does) is accepted. */
    write_raw(path, "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}     ", -1, data, 3);
    CHECK(rc_st_open(path, &st) == RC_OK, "space padding accepted: %s", rc_last_error());
    rc_st_close(st);

    /* A zero-length tensor may sit at the boundary of another. */
    write_raw(path,
              "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
              -1, data, 8);
    CHECK(rc_st_open(path, &st) == RC_OK, "empty tensor at the end accepted: %s", rc_last_error());
    rc_st_close(st);

    /* Every truncation of a valid file is rejected without crashing. */
    const char *good = tmp_path("all_dtypes.safetensors");
    char *bytes;
    size_t len;
    CHECK(rc_read_file(good, &bytes, &len) == RC_OK, "read %s", good);
    int accepted = 0;
    for (size_t cut = 0; bytes && cut < len; cut += 1 + cut / 16) {
        FILE *out = fopen(path, "wb");
        fwrite(bytes, 1, cut, out);
        fclose(out);
        if (rc_st_open(path, &st) == RC_OK) {
            accepted++;
            rc_st_close(st);
        }
    }
    CHECK(accepted == 0, "%d truncated files were accepted", accepted);
    free(bytes);
}

/* ---- Atomic writes, file and path helpers ---------------------------------- */

static void test_atomic_and_files(void) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/atomic", work_dir);
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir atomic");
    clear_dir(dir);
    char path[1300];
    snprintf(path, sizeof path, "%s/out.txt", dir);

    rc_atomic_file *file;
    CHECK(rc_atomic_open(path, &file) == RC_OK, "atomic open: %s", rc_last_error());
    fputs("partial", rc_atomic_stream(file));
    fflush(rc_atomic_stream(file));
    char temp[1400];
    snprintf(temp, sizeof temp, "%s", rc_atomic_temp_path(file));
    CHECK(rc_path_is_file(temp) && !rc_path_is_file(path), "before commit only the temp file exists");
    rc_atomic_abort(file);
    CHECK(!rc_path_is_file(temp) && !rc_path_is_file(path), "abort removes the temp file and creates nothing");
    CHECK(count_temp_files(dir) == 0, "no temp files after abort");

    CHECK(rc_write_file_atomic(path, "old", 3) == RC_OK, "first write");
    CHECK(rc_atomic_open(path, &file) == RC_OK, "atomic open 2");
    fputs("new contents", rc_atomic_stream(file));
    char *text;
    size_t len;
    CHECK(rc_read_file(path, &text, &len) == RC_OK && len == 3 && strcmp(text, "old") == 0,
          "the old file is intact while the new one is written");
    free(text);
    CHECK(rc_atomic_commit(file) == RC_OK, "commit: %s", rc_last_error());
    CHECK(rc_read_file(path, &text, &len) == RC_OK && len == 12 && strcmp(text, "new contents") == 0,
          "commit replaced the file");
    free(text);
    CHECK(count_temp_files(dir) == 0, "no temp files after commit");

    /* A commit that cannot rename (target is a non-empty directory) fails and cleans up. */
    char sub[1300], inner[1400];
    snprintf(sub, sizeof sub, "%s/subdir", dir);
    snprintf(inner, sizeof inner, "%s/keep", sub);
    CHECK(rc_mkdir_p(sub) == RC_OK, "mkdir subdir");
    write_text(inner, "x");
    CHECK(rc_write_file_atomic(sub, "data", 4) == RC_ERR_IO, "renaming over a directory must fail");
    CHECK(count_temp_files(dir) == 0, "failed commit leaves no temp file");
    rc_st_writer *w;
    const float v[2] = {1, 2};
    const int64_t shape[1] = {2};
    CHECK(rc_st_writer_new(&w) == RC_OK, "writer");
    CHECK(rc_st_writer_add(w, "v", RC_DTYPE_F32, 1, shape, v) == RC_OK, "add");
    CHECK(rc_st_writer_write(w, sub) != RC_OK, "safetensors over a directory must fail");
    CHECK(count_temp_files(dir) == 0, "failed safetensors write leaves no temp file");
    snprintf(inner, sizeof inner, "%s/missing/dir/x.safetensors", dir);
    CHECK(rc_st_writer_write(w, inner) == RC_ERR_IO && strstr(rc_last_error(), "missing/dir"),
          "writing into a missing directory names it: %s", rc_last_error());
    rc_st_writer_free(w);
    unlink(tmp_path("atomic/subdir/keep"));
    rmdir(sub);

    CHECK(rc_read_file(tmp_path("nope.txt"), &text, &len) == RC_ERR_IO && strstr(rc_last_error(), "nope.txt"),
          "missing file named: %s", rc_last_error());
    CHECK(rc_write_file_atomic(path, "", 0) == RC_OK && rc_read_file(path, &text, &len) == RC_OK && len == 0 &&
              text[0] == '\0',
          "empty file round trip");
    free(text);

    /* JSON helpers. */
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\n  \"a\": 1,\n  \"b\": [1, 2,,]\n}\n");
    cJSON *json = (cJSON *)&json;
    CHECK(rc_json_load_file(path, &json) == RC_ERR_FORMAT && json == NULL, "invalid JSON rejected");
    CHECK(strstr(rc_last_error(), "config.json:3:") != NULL, "JSON error names line 3: %s", rc_last_error());
    write_text(path, "{\"a\": 1");
    CHECK(rc_json_load_file(path, &json) == RC_ERR_FORMAT && strstr(rc_last_error(), "end of file"),
          "truncated JSON: %s", rc_last_error());
    write_text(path, "{\"a\": 1} trailing");
    CHECK(rc_json_load_file(path, &json) == RC_ERR_FORMAT && strstr(rc_last_error(), ":1:10"),
          "trailing text after JSON: %s", rc_last_error());
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "n_layer", 12);
    cJSON_AddStringToObject(obj, "name", "opt");
    CHECK(rc_json_save_file(path, obj) == RC_OK, "save JSON");
    cJSON_Delete(obj);
    CHECK(rc_json_load_file(path, &json) == RC_OK, "load saved JSON: %s", rc_last_error());
    if (json) {
        CHECK(cJSON_GetObjectItem(json, "n_layer")->valuedouble == 12, "JSON value round trip");
        cJSON_Delete(json);
    }

    /* Paths. */
    char joined[16];
    CHECK(rc_path_join(joined, sizeof joined, "a/b", "c") == RC_OK && strcmp(joined, "a/b/c") == 0, "join");
    CHECK(rc_path_join(joined, sizeof joined, "a/b/", "c") == RC_OK && strcmp(joined, "a/b/c") == 0, "join slash");
    CHECK(rc_path_join(joined, sizeof joined, "a", "/abs") == RC_OK && strcmp(joined, "/abs") == 0, "join absolute");
    CHECK(rc_path_join(joined, sizeof joined, "", "c") == RC_OK && strcmp(joined, "c") == 0, "join empty dir");
    CHECK(rc_path_join(joined, sizeof joined, "0123456789", "abcdef") == RC_ERR_INVALID_ARG, "join overflow");
    CHECK(rc_path_join(joined, 13, "0123456789", "a") == RC_OK && strcmp(joined, "0123456789/a") == 0,
          "join exact fit");
    CHECK(rc_path_join(joined, 12, "0123456789", "a") == RC_ERR_INVALID_ARG, "join one byte short");
    snprintf(path, sizeof path, "%s/deep/er/dirs/", dir);
    CHECK(rc_mkdir_p(path) == RC_OK && rc_path_is_dir(path), "mkdir -p nested: %s", rc_last_error());
    CHECK(rc_mkdir_p(path) == RC_OK, "mkdir -p existing");
    snprintf(path, sizeof path, "%s/config.json/sub", dir);
    CHECK(rc_mkdir_p(path) != RC_OK, "mkdir -p through a file must fail");
}

/* ---- Interoperability with the Python safetensors package ------------------- */

static bool python_available(void) {
    return system("python3 -c 'import torch, safetensors.torch' >/dev/null 2>&1") == 0;
}

static const char *python_check =
    "import sys, torch\n"
    "from safetensors import safe_open\n"
    "from safetensors.torch import load_file, save_file\n"
    "c_file, py_file = sys.argv[1], sys.argv[2]\n"
    "t = load_file(c_file)\n"
    "with safe_open(c_file, framework='pt') as f:\n"
    "    meta = f.metadata()\n"
    "assert meta == {'format': 'pt', 'written_by': 'rewardc'}, meta\n"
    "src = t['src']\n"
    "assert src.dtype == torch.float32 and src.shape == (4, 250)\n"
    "def same(a, b):\n"
    "    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a[~a.isnan()], b[~b.isnan()])\n"
    "assert t['half'].dtype == torch.float16 and same(t['half'], src.flatten().half()), 'f16 rounding differs from torch'\n"
    "assert t['brain'].dtype == torch.bfloat16 and same(t['brain'], src.flatten().bfloat16()), 'bf16 rounding differs'\n"
    "assert t['ids'].dtype == torch.int64 and t['ids'].tolist() == [-3, 0, 5, 2**40]\n"
    "assert t['mask'].dtype == torch.bool and t['mask'].tolist() == [True, False, True]\n"
    "assert t['i32'].dtype == torch.int32 and t['i32'].tolist() == [[-7, 8], [9, -2147483648]]\n"
    "g = torch.Generator().manual_seed(0)\n"
    "x = torch.cat([torch.randn(300, generator=g) * s for s in (1e-6, 1e-3, 1.0, 1e3, 3e4, 7e4)])\n"
    "x = torch.cat([x, torch.tensor([0.0, -0.0, float('inf'), float('-inf'), 65520.0, 2**-25, 3*2**-26])])\n"
    "out = {'src': x.reshape(1, -1), 'half': x.half(), 'brain': x.bfloat16(), 'double': x.double() / 3,\n"
    "       'ids': torch.tensor([1, -1, 50264], dtype=torch.int64), 'u8': torch.arange(5, dtype=torch.uint8),\n"
    "       'scalar': torch.tensor(2.5)}\n"
    "save_file(out, py_file, metadata={'format': 'pt'})\n";

static void test_python_interop(void) {
    if (!python_available()) {
        printf("test_io: python3 with torch + safetensors not found; skipping the interop part\n");
        return;
    }
    const char *c_file = tmp_path("from_c.safetensors"), *py_file = tmp_path("from_python.safetensors");
    const char *script = tmp_path("interop.py");
    write_text(script, python_check);

    enum { N = 1000 };
    static float src[N];
    static uint16_t half[N], brain[N];
    for (int i = 0; i < N; i++) {
        /* Random bit patterns over many magnitudes, so rounding and ties are exercised. */
        int exponent = 127 - 30 + (int)(rng_u32() % 50);
        uint32_t mantissa = (i % 7 == 0) ? (rng_u32() & 0x7FE000u) | 0x1000u : (rng_u32() & 0x7FFFFFu);
        src[i] = f32_from_bits(((rng_u32() & 1u) << 31) | ((uint32_t)exponent << 23) | mantissa);
    }
    src[0] = NAN;
    src[1] = INFINITY;
    src[2] = 65520.0f;
    src[3] = 1.0f / 3.0f;
    for (int i = 0; i < N; i++) {
        half[i] = rc_f32_to_f16(src[i]);
        brain[i] = rc_f32_to_bf16(src[i]);
    }
    int64_t ids[4] = {-3, 0, 5, (int64_t)1 << 40};
    uint8_t mask[3] = {1, 0, 1};
    int32_t i32[4] = {-7, 8, 9, INT32_MIN};
    const int64_t shape_src[2] = {4, 250}, shape_flat[1] = {N}, shape_ids[1] = {4}, shape_mask[1] = {3},
                  shape_i32[2] = {2, 2};
    rc_st_writer *w;
    CHECK(rc_st_writer_new(&w) == RC_OK, "writer");
    rc_st_writer_add(w, "src", RC_DTYPE_F32, 2, shape_src, src);
    rc_st_writer_add(w, "half", RC_DTYPE_F16, 1, shape_flat, half);
    rc_st_writer_add(w, "brain", RC_DTYPE_BF16, 1, shape_flat, brain);
    rc_st_writer_add(w, "ids", RC_DTYPE_I64, 1, shape_ids, ids);
    rc_st_writer_add(w, "mask", RC_DTYPE_BOOL, 1, shape_mask, mask);
    rc_st_writer_add(w, "i32", RC_DTYPE_I32, 2, shape_i32, i32);
    rc_st_writer_add_metadata(w, "written_by", "rewardc");
    rc_st_writer_add_metadata(w, "format", "pt");
    CHECK(rc_st_writer_write(w, c_file) == RC_OK, "write for python: %s", rc_last_error());
    rc_st_writer_free(w);

    char command[8192];
    unlink(py_file);
    snprintf(command, sizeof command, "python3 '%s' '%s' '%s'", script, c_file, py_file);
    CHECK(system(command) == 0, "python could not read the C file, or its checks failed (see above)");

    rc_safetensors *st;
    CHECK(rc_st_open(py_file, &st) == RC_OK, "open the python file: %s", rc_last_error());
    if (!st) return;
    const rc_tensor_view *x = rc_st_find(st, "src");
    CHECK(x && x->dtype == RC_DTYPE_F32 && x->n_dims == 2 && x->shape[0] == 1, "python src tensor");
    if (!x) {
        rc_st_close(st);
        return;
    }
    size_t n = x->n_elements;
    float *values = malloc(n * sizeof *values), *converted = malloc(n * sizeof *converted);
    CHECK(rc_tensor_to_f32(x, values, n) == RC_OK, "read src");
    int half_bad = 0, brain_bad = 0, double_bad = 0;
    const rc_tensor_view *h = rc_st_find(st, "half"), *b = rc_st_find(st, "brain");
    CHECK(h && h->dtype == RC_DTYPE_F16 && b && b->dtype == RC_DTYPE_BF16, "python half tensors");
    for (size_t i = 0; h && b && i < n; i++) {
        uint16_t torch_half = (uint16_t)(h->data[2 * i] | (h->data[2 * i + 1] << 8));
        uint16_t torch_brain = (uint16_t)(b->data[2 * i] | (b->data[2 * i + 1] << 8));
        half_bad += rc_f32_to_f16(values[i]) != torch_half;
        brain_bad += rc_f32_to_bf16(values[i]) != torch_brain;
    }
    CHECK(half_bad == 0, "%d f16 roundings differ from torch", half_bad);
    CHECK(brain_bad == 0, "%d bf16 roundings differ from torch", brain_bad);
    CHECK(rc_st_read_f32(st, "half", converted, n) == RC_OK, "read half");
    for (size_t i = 0; i < n; i++) half_bad += !same_value((double)rc_f16_to_f32(rc_f32_to_f16(values[i])), converted[i]);
    CHECK(half_bad == 0, "F16 tensor conversion differs in %d places", half_bad);
    CHECK(rc_st_read_f32(st, "double", converted, n) == RC_OK, "read double");
    for (size_t i = 0; i < n; i++) double_bad += !same_value((double)(float)((double)values[i] / 3), converted[i]);
    CHECK(double_bad == 0, "F64 conversion differs in %d places", double_bad);
    int32_t ids_back[3];
    CHECK(rc_st_read_i32(st, "ids", ids_back, 3) == RC_OK && ids_back[0] == 1 && ids_back[1] == -1 &&
              ids_back[2] == 50264,
          "python int64 ids");
    int32_t u8_back[5];
    CHECK(rc_st_read_i32(st, "u8", u8_back, 5) == RC_OK && u8_back[4] == 4, "python uint8");
    float scalar;
    CHECK(rc_st_read_f32(st, "scalar", &scalar, 1) == RC_OK && scalar == 2.5f, "python scalar");
    CHECK(rc_st_metadata(st, "format") && strcmp(rc_st_metadata(st, "format"), "pt") == 0, "python metadata");
    free(values);
    free(converted);
    rc_st_close(st);
}

int main(void) {
    snprintf(work_dir, sizeof work_dir, "%s/io", test_tmp_dir());
    if (rc_mkdir_p(work_dir) != RC_OK) {
        fprintf(stderr, "cannot create %s: %s\n", work_dir, rc_last_error());
        return 1;
    }
    test_f16();
    test_bf16();
    test_round_trip();
    test_folders();
    test_malformed();
    test_atomic_and_files();
    test_python_interop();
    return test_finish("test_io");
}
