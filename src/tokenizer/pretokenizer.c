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

/* Rust regex's Unicode \w, which PCRE2's \w (letters, digits, _) is not quite. */
static const char word_char_class[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";

rc_status rc_tokenizer_compile_word_char(rc_tokenizer *tok) {
    int error_code;
    PCRE2_SIZE error_offset;
    tok->word_char = pcre2_compile((PCRE2_SPTR)word_char_class, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error_code, &error_offset, NULL);
    if (!tok->word_char) return rc_fail(RC_ERR_UNSUPPORTED, "tokenizer: PCRE2 cannot compile the word-character class");
    return RC_OK;
}

int rc_tokenizer_is_word_char(const rc_tokenizer *tok, uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (!tok->word_char) return 0;
    char buf[4];
    size_t n = rc_utf8_encode(cp, buf);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return 0;
    int rc = pcre2_match(tok->word_char, (PCRE2_SPTR)buf, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}
