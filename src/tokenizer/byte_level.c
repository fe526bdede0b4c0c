/* GPT-2's byte-level alphabet: each of the 256 bytes is written in vocabulary
 * strings as a printable code point. Printable Latin-1 bytes ('!'..'~',
 * '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes, in increasing
 * order, take the code points 256, 257, ... (so ' ' is 'Ġ' = U+0120). */
#include "tokenizer/tokenizer_internal.h"

static int is_self_mapped(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t rc_byte_to_codepoint(unsigned char b) {
    if (is_self_mapped(b)) return b;
    /* rank of b among the bytes that are not self-mapped */
    uint32_t rank = 0;
    for (unsigned x = 0; x < b; x++)
        if (!is_self_mapped(x)) rank++;
    return 256 + rank;
}

int rc_codepoint_to_byte(uint32_t cp) {
    if (cp < 256) return is_self_mapped(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t rank = cp - 256;
    for (unsigned x = 0; x < 256; x++) {
        if (is_self_mapped(x)) continue;
        if (rank == 0) return (int)x;
        rank--;
    }
    return -1;
}
