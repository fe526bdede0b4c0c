/* UTF-8 helpers for the tokenizer: validation, replacement of invalid bytes
 * with U+FFFD by the "maximal subpart" rule (what Python's errors="replace"
 * and Rust's String::from_utf8_lossy do), and the White_Space property. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* Bytes at s[i..] that form one code point, or the maximal subpart of an
 * ill-formed one. *valid says which. Always returns >= 1. */
static size_t scan_sequence(const unsigned char *s, size_t len, size_t i, int *valid) {
    unsigned char lead = s[i];
    if (lead < 0x80) {
        *valid = 1;
        return 1;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (lead >= 0xC2 && lead <= 0xDF) need = 1;
    else if (lead == 0xE0) need = 2, lo = 0xA0;
    else if (lead >= 0xE1 && lead <= 0xEC) need = 2;
    else if (lead == 0xED) need = 2, hi = 0x9F;
    else if (lead >= 0xEE && lead <= 0xEF) need = 2;
    else if (lead == 0xF0) need = 3, lo = 0x90;
    else if (lead >= 0xF1 && lead <= 0xF3) need = 3;
    else if (lead == 0xF4) need = 3, hi = 0x8F;
    else {
        *valid = 0;
        return 1;
    }
    size_t k = 1;
    for (; k <= need; k++) {
        if (i + k >= len) break;
        unsigned char c = s[i + k];
        unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
        if (c < min || c > max) break;
    }
    *valid = k == need + 1;
    return k;
}

size_t rc_utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        /* ASCII runs are the common case: test eight bytes at a time */
        while (i + 8 <= len) {
            uint64_t chunk;
            memcpy(&chunk, s + i, 8);
            if (chunk & UINT64_C(0x8080808080808080)) break;
            i += 8;
        }
        if (i >= len) break;
        int valid;
        size_t n = scan_sequence(s, len, i, &valid);
        if (!valid) return i;
        i += n;
    }
    return len;
}

char *rc_utf8_replace_invalid(const unsigned char *s, size_t len, size_t *out_len) {
    /* each invalid byte becomes at most 3 bytes (U+FFFD) */
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        int valid;
        size_t n = scan_sequence(s, len, i, &valid);
        if (valid) {
            memcpy(out + o, s + i, n);
            o += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += n;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

size_t rc_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80 || len < 2) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0 || len < 4) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t rc_utf8_prev_start(const unsigned char *s, size_t end) {
    size_t i = end;
    while (i > 0) {
        i--;
        if ((s[i] & 0xC0) != 0x80) break;
    }
    return i;
}

size_t rc_utf8_encode(uint32_t cp, char *buf) {
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int rc_unicode_is_white_space(uint32_t cp) {
    /* PropList.txt, White_Space (stable since Unicode 6.3) */
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}
