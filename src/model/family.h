/* What a model family provides to the shared decoder: its config.json
 * dialect, its Hugging Face tensor names and layouts, and how its
 * PreTrainedModel initialises weights. Everything else (the forward and
 * backward, score rows, prefix sharing, attention, memory plan, checkpoints)
 * is shared and reads only rc_model_config and the parameter table. */
#ifndef REWARDC_FAMILY_H
#define REWARDC_FAMILY_H

#include <cjson/cJSON.h>

#include "model/decoder.h"

/* Builds the parameter table. */
typedef struct {
    rc_param_info *table;
    int count, capacity;
    size_t offset;
    int failed; /* allocation failed: nothing more is added */
} param_table_builder;

/* Appends a parameter ([rows] when cols == 0, else [rows, cols]) and returns
 * its index; no_decay marks biases and norm weights (transformers' Trainer
 * gives them no weight decay). The name is printf-formatted. */
int family_add_param(param_table_builder *tb, int rows, int cols, int no_decay, const char *fmt,
                     ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* A linear layer whose weight is a plain [out, in] parameter (and bias). */
linear_ref family_linear(int weight, int bias);

/* Config helpers for config.json fields: absent or null keeps the default. */
rc_status family_get_int(const cJSON *json, const char *where, const char *key, int *value);
rc_status family_get_bool(const cJSON *json, const char *where, const char *key, int *value);
rc_status family_get_double(const cJSON *json, const char *where, const char *key,
                            double *value);
/* A config.json key and the field it sets. */
typedef struct {
    const char *key;
    int *value;
} family_field;
/* Reads each of n integer (or, with family_get_bools, true/false) fields. */
rc_status family_get_ints(const cJSON *json, const char *where, const family_field *fields,
                          size_t n);
rc_status family_get_bools(const cJSON *json, const char *where, const family_field *fields,
                           size_t n);
rc_status family_get_activation(const cJSON *json, const char *where, const char *key,
                                rc_activation *value);
const char *family_activation_name(rc_activation kind);
/* rope_theta / rope_scaling (transformers 4.x) or rope_parameters (5.x). */
rc_status family_get_rope(const cJSON *json, const char *where, rc_model_config *c);
void family_put_rope(cJSON *j, const rc_model_config *c);
/* The keys every *ForSequenceClassification config.json carries. */
void family_put_common(cJSON *j, const rc_model_config *c);

typedef struct rc_family {
    const char *model_type;    /* config.json's model_type */
    const char *architecture;  /* e.g. LlamaForSequenceClassification */
    const char *base_prefix;   /* base_model_prefix + ".": "model.", "transformer." */
    int embedding_padding_idx; /* nn.Embedding(..., padding_idx=pad_token_id) */
    void (*defaults)(rc_model_config *c);
    /* reads the family's fields over the defaults */
    rc_status (*config_from_json)(const cJSON *json, const char *where, rc_model_config *c);
    /* adds the family's fields to a config.json under construction */
    void (*config_to_json)(cJSON *j, const rc_model_config *c);
    /* lays out the table in transformers' module order, filling m->p */
    void (*build_table)(rc_model *m, param_table_builder *tb);
    /* the standard deviation a 2-D tensor is initialised with (GPT-2 scales
     * its residual projections); NULL: cfg.init_std for all */
    double (*init_std)(const rc_model *m, const rc_param_info *p);
} rc_family;

extern const rc_family rc_family_opt, rc_family_gpt2, rc_family_llama, rc_family_qwen2,
    rc_family_qwen3, rc_family_falcon;
const rc_family *rc_family_of(rc_family_id id);

#endif
