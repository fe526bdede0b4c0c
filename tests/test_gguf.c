/* The GGUF reader and dequantisation: golden/gguf/types.gguf (written by
 * tools/gen_gguf_test.py with the gguf package) read back key by key, every
 * tensor dequantised and compared bit for bit with gguf.quants.dequantize's
 * floats (rewardc repeats the same float operations, so 0 ulp), GGUF v2, and
 * malformed files (every truncation of the header, huge counts and lengths,
 * a tensor past the end, bad alignment, unknown and unsupported types) that
 * must fail with a message, never crash (run under RC_SANITIZE too). */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/gguf.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "testlib.h"

static char types_path[2048];

static void check_metadata(const rc_gguf *g) {
    CHECK(rc_gguf_version(g) == 3, "version %u", rc_gguf_version(g));
    CHECK(rc_gguf_alignment(g) == 64, "alignment %llu", (unsigned long long)rc_gguf_alignment(g));
    int64_t i;
    uint64_t u;
    double f;
    bool b;
    rc_gguf_string s;
    CHECK(rc_gguf_get_u64(g, "test.u8", &u) == RC_OK && u == 200, "u8");
    CHECK(rc_gguf_get_i64(g, "test.i8", &i) == RC_OK && i == -100, "i8");
    CHECK(rc_gguf_get_u64(g, "test.u16", &u) == RC_OK && u == 60000, "u16");
    CHECK(rc_gguf_get_i64(g, "test.i16", &i) == RC_OK && i == -30000, "i16");
    CHECK(rc_gguf_get_u64(g, "test.u32", &u) == RC_OK && u == 4000000000u, "u32");
    CHECK(rc_gguf_get_i64(g, "test.i32", &i) == RC_OK && i == -2000000000, "i32");
    CHECK(rc_gguf_get_f64(g, "test.f32", &f) == RC_OK && f == 0.25, "f32");
    CHECK(rc_gguf_get_bool(g, "test.bool", &b) == RC_OK && b, "bool");
    CHECK(rc_gguf_get_string(g, "test.string", &s) == RC_OK && rc_gguf_string_is(s, "h\xc3\xa9llo"), "string");
    CHECK(rc_gguf_get_u64(g, "test.u64", &u) == RC_OK && u == (1ull << 40) + 3, "u64");
    CHECK(rc_gguf_get_i64(g, "test.i64", &i) == RC_OK && i == -(1ll << 40) - 3, "i64");
    CHECK(rc_gguf_get_f64(g, "test.f64", &f) == RC_OK && f == 1e-300, "f64");
    CHECK(rc_gguf_get_string(g, "general.architecture", &s) == RC_OK && rc_gguf_string_is(s, "test"), "arch");

    const rc_gguf_kv *kv = rc_gguf_find(g, "test.strings");
    CHECK(kv && kv->type == RC_GGUF_ARRAY && kv->elem_type == RC_GGUF_STRING && kv->count == 3, "strings array");
    if (kv && kv->strings && kv->count == 3) {
        CHECK(rc_gguf_string_is(kv->strings[0], "a"), "strings[0]");
        CHECK(kv->strings[1].len == 0, "strings[1] empty");
        CHECK(rc_gguf_string_is(kv->strings[2], "\xc4\xa0\xc4\xa0 xyz"), "strings[2]");
    }
    kv = rc_gguf_find(g, "test.ints");
    CHECK(kv && kv->elem_type != RC_GGUF_STRING && kv->count == 3, "ints array");
    if (kv) {
        int64_t v[3] = {0};
        for (int k = 0; k < 3; k++) CHECK(rc_gguf_kv_int(kv, (uint64_t)k, &v[k]) == RC_OK, "ints[%d]", k);
        CHECK(v[0] == 1 && v[1] == -2 && v[2] == 3, "ints values %lld %lld %lld", (long long)v[0],
              (long long)v[1], (long long)v[2]);
        CHECK(rc_gguf_kv_int(kv, 3, &v[0]) != RC_OK, "ints[3] is out of range");
    }
    kv = rc_gguf_find(g, "test.nested");
    CHECK(kv && kv->elem_type == RC_GGUF_ARRAY && kv->count == 2, "nested array parsed");
    /* wrong types and missing keys are errors naming the key */
    CHECK(rc_gguf_get_string(g, "test.u8", &s) == RC_ERR_FORMAT && strstr(rc_last_error(), "test.u8"),
          "u8 read as string: %s", rc_last_error());
    CHECK(rc_gguf_get_u64(g, "test.i8", &u) == RC_ERR_FORMAT, "negative read as unsigned");
    CHECK(rc_gguf_get_u64(g, "no.such.key", &u) == RC_ERR_FORMAT && strstr(rc_last_error(), "no.such.key"),
          "missing key: %s", rc_last_error());
}

/* Every tensor of types.gguf against gguf.quants.dequantize, bit for bit. */
static void check_dequantisation(const rc_gguf *g) {
    char path[2048];
    snprintf(path, sizeof path, "%s/gguf/types_expected.safetensors", test_golden_dir());
    rc_safetensors *st = NULL;
    CHECK(rc_st_open(path, &st) == RC_OK, "open %s: %s", path, rc_last_error());
    if (!st) return;
    size_t n = rc_st_count(st);
    CHECK(n == rc_gguf_tensor_count(g) && n >= 16, "%zu expected tensors, %zu in the GGUF", n,
          rc_gguf_tensor_count(g));
    unsigned types_seen[RC_GGML_TYPE_LIMIT] = {0};
    for (size_t k = 0; k < n; k++) {
        const rc_tensor_view *want = rc_st_tensor_at(st, k);
        const rc_gguf_tensor *t = rc_gguf_find_tensor(g, want->name);
        CHECK(t != NULL, "tensor %s in the GGUF", want->name);
        if (!t) continue;
        /* the name says the type: "Q4_K.raw" */
        CHECK(strncmp(want->name, rc_ggml_type_name(t->type), strlen(rc_ggml_type_name(t->type))) == 0 &&
                  want->name[strlen(rc_ggml_type_name(t->type))] == '.',
              "%s has type %s", want->name, rc_ggml_type_name(t->type));
        types_seen[t->type]++;
        /* numpy shape is the GGUF dims reversed */
        CHECK(want->n_dims == t->n_dims && (uint64_t)want->shape[0] == t->dims[1] &&
                  (uint64_t)want->shape[1] == t->dims[0],
              "%s: dims", want->name);
        size_t count = (size_t)want->n_elements;
        float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
        CHECK(rc_tensor_to_f32(want, ref, count) == RC_OK, "read expected %s", want->name);
        CHECK(rc_gguf_tensor_to_f32(g, t, got, count) == RC_OK, "dequantize %s: %s", want->name, rc_last_error());
        size_t diff = 0, first = 0;
        for (size_t j = 0; j < count; j++)
            if (memcmp(&ref[j], &got[j], sizeof(float)) != 0 && diff++ == 0) first = j;
        CHECK(diff == 0, "%s: %zu of %zu values differ from gguf's (first at %zu: %.9g vs %.9g)", want->name, diff,
              count, first, diff ? ref[first] : 0.0, diff ? got[first] : 0.0);
        CHECK(rc_gguf_tensor_to_f32(g, t, got, count - 1) == RC_ERR_FORMAT, "%s: wrong count refused", want->name);
        free(ref);
        free(got);
    }
    const uint32_t all[] = {RC_GGML_F32, RC_GGML_F16, RC_GGML_BF16, RC_GGML_Q8_0, RC_GGML_Q4_0, RC_GGML_Q4_1,
                            RC_GGML_Q5_0, RC_GGML_Q5_1, RC_GGML_Q4_K, RC_GGML_Q5_K, RC_GGML_Q6_K};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        CHECK(types_seen[all[k]] > 0, "type %s tested", rc_ggml_type_name(all[k]));
    rc_st_close(st);
}

/* ---- Malformed files --------------------------------------------------------------- */

static unsigned char *image;
static size_t image_size;

/* Opens a private, exactly sized copy (so ASan sees any read past it). */
static rc_status open_copy(const unsigned char *data, size_t size, rc_gguf **g) {
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    rc_status st = rc_gguf_open_memory(copy, size, "bad.gguf", g);
    if (st == RC_OK) {
        rc_gguf_close(*g);
        *g = NULL;
    }
    free(copy);
    return st;
}

static size_t find_bytes(const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= image_size; i++)
        if (memcmp(image + i, needle, n) == 0) return i;
    return 0;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Patches a copy of the image, opens it, expects failure mentioning `word`. */
static void expect_error(const char *label, size_t offset, int width, uint64_t value, const char *word) {
    unsigned char *copy = malloc(image_size);
    memcpy(copy, image, image_size);
    if (width == 8) put_u64(copy + offset, value);
    else put_u32(copy + offset, (uint32_t)value);
    rc_gguf *g = NULL;
    rc_status st = open_copy(copy, image_size, &g);
    CHECK(st != RC_OK && strstr(rc_last_error(), word), "%s: status %s, message '%s' (want '%s')", label,
          rc_status_name(st), rc_last_error(), word);
    free(copy);
}

static void check_malformed(const rc_gguf *g) {
    rc_gguf *h = NULL;
    /* every cut inside the header and tensor infos, and some inside the data */
    const rc_gguf_tensor *first = rc_gguf_tensor_at(g, 0);
    size_t data_start = (size_t)(first->data - image) - (size_t)first->offset;
    int fails = 0;
    for (size_t cut = 0; cut < data_start + 300 && cut < image_size; cut++)
        if (open_copy(image, cut, &h) != RC_OK) fails++;
    CHECK(fails == (int)(data_start + 300 < image_size ? data_start + 300 : image_size),
          "all %zu truncations refused (%d were)", data_start + 300, fails);
    CHECK(open_copy(image, 10, &h) != RC_OK && strstr(rc_last_error(), "bad.gguf"), "truncated header: %s",
          rc_last_error());
    size_t data_end = 0;
    for (size_t k = 0; k < rc_gguf_tensor_count(g); k++) {
        const rc_gguf_tensor *t = rc_gguf_tensor_at(g, k);
        size_t end = (size_t)(t->data - image) + t->n_bytes;
        if (end > data_end) data_end = end;
    }
    CHECK(open_copy(image, data_end - 1, &h) != RC_OK && strstr(rc_last_error(), "past the end"),
          "last tensor cut short: %s", rc_last_error());

    expect_error("bad magic", 0, 4, 0x46554748u, "magic");
    expect_error("big-endian", 4, 4, 0x03000000u, "big-endian");
    expect_error("version 1", 4, 4, 1, "version 1");
    expect_error("huge tensor count", 8, 8, 1ull << 60, "tensors");
    expect_error("huge key count", 16, 8, UINT64_MAX, "keys");
    expect_error("huge key length", 24, 8, 1ull << 62, "key #0");

    size_t at = find_bytes("general.alignment");
    CHECK(at > 0, "alignment key found");
    if (at) {
        expect_error("alignment 48", at + 17 + 4, 4, 48, "power of two");
        expect_error("alignment 0", at + 17 + 4, 4, 0, "power of two");
        expect_error("alignment not u32", at + 17, 4, RC_GGUF_INT32, "general.alignment");
    }
    at = find_bytes("test.strings");
    if (at) expect_error("huge string array", at + 12 + 4 + 4, 8, 1ull << 61, "test.strings");
    at = find_bytes("test.ints");
    if (at) expect_error("huge int array", at + 9 + 4 + 4, 8, 1ull << 61, "test.ints");
    if (at) expect_error("unknown value type", at + 9, 4, 77, "test.ints");

    /* tensor info of "F32.raw" (2 dims): n_dims, dims[2], type, offset */
    at = find_bytes("F32.raw");
    CHECK(at > 0, "tensor info found");
    if (at) {
        size_t info = at + 7;
        expect_error("unknown ggml type", info + 4 + 16, 4, 99, "F32.raw");
        expect_error("five dims", info, 4, 5, "dimensions");
        expect_error("overflowing dims", info + 4, 8, 1ull << 62, "F32.raw");
        expect_error("misaligned offset", info + 4 + 16 + 4, 8, 4, "aligned");
        expect_error("offset past the end", info + 4 + 16 + 4, 8, 1ull << 40, "past the end");
        expect_error("row not whole blocks", info + 4 + 16, 4, RC_GGML_Q4_K, "block");
        expect_error("overlap", info + 4 + 16 + 4, 8, rc_gguf_tensor_at(g, 1)->offset, "overlap");
    }

    /* GGUF v2 is the same layout */
    unsigned char *copy = malloc(image_size);
    memcpy(copy, image, image_size);
    put_u32(copy + 4, 2);
    CHECK(rc_gguf_open_memory(copy, image_size, "v2.gguf", &h) == RC_OK && rc_gguf_version(h) == 2,
          "v2 opens: %s", rc_last_error());
    rc_gguf_close(h);
    free(copy);

    /* a type ggml knows but rewardc does not dequantise, and one it does not know */
    unsigned char block[84] = {0};
    float out[256];
    CHECK(rc_ggml_dequantize(RC_GGML_Q2_K, block, 256, out) == RC_ERR_UNSUPPORTED &&
              strstr(rc_last_error(), "Q2_K"),
          "Q2_K: %s", rc_last_error());
    CHECK(rc_ggml_dequantize(57, block, 1, out) == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "57"),
          "type 57: %s", rc_last_error());
    CHECK(rc_ggml_dequantize(RC_GGML_Q4_0, block, 31, out) == RC_ERR_INVALID_ARG, "partial block refused");
    CHECK(rc_gguf_open("/nonexistent/x.gguf", &h) == RC_ERR_IO, "missing file");
}

int main(void) {
    snprintf(types_path, sizeof types_path, "%s/gguf/types.gguf", test_golden_dir());
    rc_gguf *g = NULL;
    CHECK(rc_gguf_open(types_path, &g) == RC_OK, "open %s: %s", types_path, rc_last_error());
    if (!g) return test_finish("test_gguf");
    CHECK(rc_read_file(types_path, (char **)&image, &image_size) == RC_OK, "read %s", types_path);
    check_metadata(g);
    check_dequantisation(g);
    rc_gguf *in_memory = NULL;
    CHECK(rc_gguf_open_memory(image, image_size, "image", &in_memory) == RC_OK, "open in memory");
    if (in_memory) check_malformed(in_memory);
    rc_gguf_close(in_memory);
    rc_gguf_close(g);
    free(image);
    return test_finish("test_gguf");
}
