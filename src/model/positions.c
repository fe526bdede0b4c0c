/* Rotary position embeddings (RoPE): the inverse frequencies as transformers
 * computes them (default, linear and Llama-3 scaling), the cos/sin tables the
 * backend's rope op reads, and its use on q and k. Learned positions are an
 * embedding table instead (decoder_forward.c). */
#include <math.h>
#include <stdlib.h>

#include "model/decoder.h"

/* transformers' _compute_default_rope_parameters and the scaled variants of
 * modeling_rope_utils, in float32 as there: inv_freq[i] =
 * 1 / theta^(2i / D), then divided by the factor (linear) or, for llama3,
 * divided where the wavelength is long, kept where it is short and blended
 * in between. */
static void inverse_frequencies(const rc_model_config *c, float *inv_freq) {
    const int D = c->head_dim;
    for (int i = 0; i < D / 2; i++) {
        const float exponent = (float)(2 * i) / (float)D;
        inv_freq[i] = 1.0f / (float)pow(c->rope_theta, (double)exponent);
    }
    if (c->rope_type == RC_ROPE_LINEAR) {
        for (int i = 0; i < D / 2; i++) inv_freq[i] = (float)(inv_freq[i] / c->rope_factor);
    } else if (c->rope_type == RC_ROPE_LLAMA3) {
        const double old_context = c->rope_original_max_position;
        const double low = c->rope_low_freq_factor, high = c->rope_high_freq_factor;
        const double low_freq_wavelen = old_context / low, high_freq_wavelen = old_context / high;
        const float factor = (float)c->rope_factor;
        for (int i = 0; i < D / 2; i++) {
            const float wavelen = (float)(2.0 * 3.14159265358979323846 / inv_freq[i]);
            float scaled = wavelen > low_freq_wavelen ? inv_freq[i] / factor : inv_freq[i];
            if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
                const float smooth = (float)(((float)(old_context / wavelen) - low) / (high - low));
                scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
            }
            inv_freq[i] = scaled;
        }
    }
}

rc_status decoder_rope_tables(rc_model *m, int n) {
    const rc_model_config *c = &m->cfg;
    if (c->positions != RC_POS_ROPE || n <= m->rope_positions) return RC_OK;
    const int half = c->head_dim / 2;
    const size_t entries = (size_t)n * half;
    float *inv_freq = malloc((size_t)half * sizeof *inv_freq);
    float *table = malloc(2 * entries * sizeof *table);
    rc_buffer *buf = NULL;
    rc_status st = inv_freq && table ? RC_OK : rc_fail(RC_ERR_OOM, "cannot allocate RoPE tables");
    if (st == RC_OK) {
        inverse_frequencies(c, inv_freq);
        for (int p = 0; p < n; p++)
            for (int i = 0; i < half; i++) {
                /* the angle as a float32 product, as transformers' matmul forms it */
                const double angle = (float)p * inv_freq[i];
                table[(size_t)p * half + i] = (float)cos(angle);
                table[entries + (size_t)p * half + i] = (float)sin(angle);
            }
        st = m->be->alloc(m->be, 2 * entries, &buf);
    }
    if (st == RC_OK) st = m->be->upload(m->be, (rc_view){buf, 0}, table, 2 * entries);
    free(inv_freq);
    free(table);
    if (st != RC_OK) {
        if (buf) m->be->free(m->be, buf);
        return rc_fail_context(st, "RoPE tables for %d positions", n);
    }
    if (m->rope) m->be->free(m->be, m->rope);
    m->rope = buf;
    m->rope_positions = n;
    return RC_OK;
}

void decoder_rope(rc_model *m, rc_view x, int heads, size_t pos, int rows, int inverse) {
    if (m->cfg.positions != RC_POS_ROPE) return;
    const int D = m->cfg.head_dim;
    const size_t entries = (size_t)m->rope_positions * (D / 2);
    m->be->rope(m->be, x, heads * D, dec_act(m, pos), (rc_view){m->rope, 0},
                (rc_view){m->rope, entries}, rows, heads, D, inverse);
}
