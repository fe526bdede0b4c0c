/* Hugging Face checkpoints in and out, any family: config.json +
 * safetensors, tensors under the table's HF names. */
#define _XOPEN_SOURCE 700 /* realpath, strdup */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/family.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"

/* Table names are *ForSequenceClassification's, as *ForCausalLM stores them
 * too ("model.layers.*", "transformer.h.*"); the bare base model stores the
 * same tensors without the family's prefix ("layers.*", "h.*"). */
static const char *unprefixed(const rc_model *m, const char *name) {
    const char *prefix = m->family->base_prefix;
    return strncmp(name, prefix, strlen(prefix)) ? NULL : name + strlen(prefix);
}

static const rc_tensor_view *find_tensor(const rc_model *m, const rc_safetensors *st,
                                         const char *name) {
    const rc_tensor_view *t = rc_st_find(st, name);
    const char *bare = unprefixed(m, name);
    if (!t && bare) t = rc_st_find(st, bare);
    return t;
}

static int is_known_tensor(const rc_model *m, const char *name) {
    if (!strncmp(name, "lm_head.", 8)) return 0; /* the LM head is not part of a reward model */
    if (rc_model_find_param(m, name) != RC_NO_PARAM) return 1;
    char with_prefix[RC_PARAM_NAME_MAX + 16];
    snprintf(with_prefix, sizeof with_prefix, "%s%s", m->family->base_prefix, name);
    return rc_model_find_param(m, with_prefix) != RC_NO_PARAM;
}

static rc_status load_weights(rc_model *m, const rc_safetensors *st, const char *dir,
                              uint64_t seed, rc_load_report *report) {
    float *buffer = NULL;
    size_t capacity = 0;
    rc_status status = RC_OK;
    for (int i = 0; i < m->n_base_params && status == RC_OK; i++) {
        const rc_param_info *p = &m->table[i];
        const rc_tensor_view *t = find_tensor(m, st, p->name);
        if (!t) {
            if (i == m->p.score) { /* a base-model checkpoint: a new head, as HF makes one */
                report->score_initialised = 1;
                status = decoder_init_param(m, i, seed ^ 0x73636f7265ull); /* "score" */
                continue;
            }
            const char *bare = unprefixed(m, p->name);
            status = bare ? rc_fail(RC_ERR_FORMAT, "%s: tensor %s (or %s) is missing", dir,
                                    p->name, bare)
                          : rc_fail(RC_ERR_FORMAT, "%s: tensor %s is missing", dir, p->name);
            break;
        }
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        if ((status = rc_tensor_check_shape(t, p->ndim, shape)) != RC_OK) break;
        if (!report->dtype[0]) snprintf(report->dtype, sizeof report->dtype, "%s", rc_dtype_name(t->dtype));
        if (p->size > capacity) {
            float *grown = realloc(buffer, p->size * sizeof *grown);
            if (!grown) {
                status = rc_fail(RC_ERR_OOM, "cannot allocate %zu floats for %s", p->size, p->name);
                break;
            }
            buffer = grown;
            capacity = p->size;
        }
        status = rc_tensor_to_f32(t, buffer, p->size);
        /* NaN or Inf weights would make every reward NaN without a word */
        if (status == RC_OK) status = rc_check_finite(p->name, buffer, p->size);
        if (status != RC_OK) status = rc_fail_context(status, "%s", dir);
        if (status == RC_OK) status = rc_model_set_param(m, i, buffer, p->size);
    }
    free(buffer);
    if (status != RC_OK) return status;
    for (size_t i = 0; i < rc_st_count(st); i++) {
        const rc_tensor_view *t = rc_st_tensor_at(st, i);
        if (is_known_tensor(m, t->name)) continue;
        if (report->n_ignored++ == 0)
            snprintf(report->first_ignored, sizeof report->first_ignored, "%s", t->name);
    }
    return RC_OK;
}

rc_status rc_model_load(const char *dir, rc_backend *be, uint64_t seed, rc_model **out,
                        rc_load_report *report) {
    *out = NULL;
    rc_load_report local;
    if (!report) report = &local;
    memset(report, 0, sizeof *report);
    if (!rc_path_is_dir(dir))
        return rc_fail(RC_ERR_IO, "model folder %s does not exist or is not a folder", dir);
    if (rc_model_is_adapter_dir(dir)) return decoder_load_adapter(dir, be, seed, out, report);
    char path[4096];
    rc_status st = rc_path_join(path, sizeof path, dir, "config.json");
    if (st != RC_OK) return st;
    cJSON *json = NULL;
    if ((st = rc_json_load_file(path, &json)) != RC_OK) return st;
    rc_model_config cfg;
    st = rc_model_config_from_json(json, path, &cfg);
    cJSON_Delete(json);
    if (st != RC_OK) return st;

    rc_safetensors *weights = NULL;
    if ((st = rc_st_open(dir, &weights)) != RC_OK) return st;
    rc_model *m = NULL;
    st = decoder_model_new(&cfg, be, seed, 0, &m); /* every weight comes from the file */
    if (st == RC_OK) st = load_weights(m, weights, dir, seed, report);
    rc_st_close(weights);
    if (st == RC_OK) { /* an adapter saved from it names it as its base */
        char resolved[PATH_MAX];
        m->source_dir = strdup(realpath(dir, resolved) ? resolved : dir);
        if (!m->source_dir) st = rc_fail(RC_ERR_OOM, "cannot record the model folder");
    }
    if (st != RC_OK) {
        rc_model_free(m);
        return st;
    }
    *out = m;
    return RC_OK;
}

rc_status rc_model_save(rc_model *m, const char *dir) {
    if (m->lora_r) return decoder_save_adapter(m, dir);
    rc_status st = rc_mkdir_p(dir);
    if (st != RC_OK) return st;
    float *host = malloc(m->n_elements * sizeof *host);
    rc_st_writer *writer = NULL;
    if (!host) return rc_fail(RC_ERR_OOM, "cannot allocate %zu bytes to save the model",
                              m->n_elements * sizeof *host);
    st = m->be->download(m->be, host, (rc_view){m->params, 0}, m->n_elements);
    if (st == RC_OK) st = rc_st_writer_new(&writer);
    for (int i = 0; i < m->n_base_params && st == RC_OK; i++) {
        const rc_param_info *p = &m->table[i];
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        st = rc_st_writer_add(writer, p->name, RC_DTYPE_F32, p->ndim, shape, host + p->offset);
    }
    if (st == RC_OK) st = rc_st_writer_add_metadata(writer, "format", "pt");
    char path[4096];
    if (st == RC_OK) st = rc_path_join(path, sizeof path, dir, "model.safetensors");
    if (st == RC_OK) st = rc_st_writer_write(writer, path);
    rc_st_writer_free(writer);
    free(host);
    if (st != RC_OK) return st;

    cJSON *config = rc_model_config_to_json(&m->cfg);
    if (!config) return rc_fail(RC_ERR_OOM, "cannot build config.json");
    st = rc_path_join(path, sizeof path, dir, "config.json");
    if (st == RC_OK) st = rc_json_save_file(path, config);
    cJSON_Delete(config);
    return st;
}
