/* The Llama block's config fields and tensor layout, shared by the families
 * built on it (llama.c, qwen.c). */
#ifndef REWARDC_LLAMA_BLOCK_H
#define REWARDC_LLAMA_BLOCK_H

#include "model/family.h"

/* Every LlamaConfig field but the attention biases. */
rc_status llama_block_from_json(const cJSON *json, const char *where, rc_model_config *c);
void llama_block_to_json(cJSON *j, const rc_model_config *c);
/* model.embed_tokens, model.layers.N.{self_attn,mlp,*_layernorm}, model.norm */
void llama_block_table(rc_model *m, param_table_builder *tb);

#endif
