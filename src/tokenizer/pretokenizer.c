/* Pre-tokenizer regexes. HF tokenizers runs its split patterns with
 * Oniguruma; we run them with PCRE2 (UTF + Unicode properties, JIT compiled).
 * The one dialect difference that matters for byte-level BPE patterns is \s:
 * Oniguruma's \s is the Unicode White_Space property, which includes U+0085
 * (NEXT LINE), while PCRE2's \s (category Z plus the ASCII controls) does not.
 * So \s and \S are rewritten to \p{White_Space} and \P{White_Space}. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* GPT-2's pattern: contractions (lower case only, as in GPT-2), letters,
 * numbers, other symbols (each optionally after one space), whitespace not
 * followed by a non-space, other whitespace. */
const char rc_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Rewrites \s and \S (outside of \Q..\E, which HF patterns do not use). */
static char *translate_pattern(const char *pattern, size_t len, size_t *out_len) {
    static const char space[] = "\\p{White_Space}", non_space[] = "\\P{White_Space}";
    char *out = malloc(len * (sizeof space) + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (pattern[i] == '\\' && i + 1 < len) {
            char next = pattern[i + 1];
            if (next == 's' || next == 'S') {
                const char *repl = next == 's' ? space : non_space;
                memcpy(out + o, repl, sizeof space - 1);
                o += sizeof space - 1;
            } else {
                out[o++] = '\\';
                out[o++] = next;
            }
            i++;
            continue;
        }
        out[o++] = pattern[i];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

rc_status rc_split_stage_compile(rc_split_stage *stage, const char *pattern, size_t len,
                                 rc_split_behavior behavior, const char *where) {
    size_t translated_len;
    char *translated = translate_pattern(pattern, len, &translated_len);
    if (!translated) return rc_fail(RC_ERR_OOM, "%s: cannot copy a regex of %zu bytes", where, len);
    int error_code;
    PCRE2_SIZE error_offset;
    stage->regex = pcre2_compile((PCRE2_SPTR)translated, translated_len, PCRE2_UTF | PCRE2_UCP,
                                 &error_code, &error_offset, NULL);
    free(translated);
    if (!stage->regex) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error_code, message, sizeof message);
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: PCRE2 cannot compile the pre-tokenizer regex "
                       "'%.*s' (offset %zu): %s", where, (int)len, pattern,
                       (size_t)error_offset, (const char *)message);
    }
    /* without JIT (an unsupported CPU) PCRE2's interpreter gives the same results */
    stage->jit = pcre2_jit_compile(stage->regex, PCRE2_JIT_COMPLETE) == 0;
    stage->behavior = behavior;
    return RC_OK;
}
