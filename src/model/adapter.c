/* LoRA adapter folders in PEFT's format: adapter_config.json and
 * adapter_model.safetensors, the tensors under PEFT's saved keys
 * (base_model.model.<module>.lora_A.weight / .lora_B.weight, and the head,
 * a SEQ_CLS modules_to_save, as base_model.model.score.weight: PEFT 0.17
 * drops ".modules_to_save" and the adapter name when it saves). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/family.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"

static const char KEY_PREFIX[] = "base_model.model.";
static const char HEAD_KEY[] = "base_model.model.score.weight";

int rc_model_is_adapter_dir(const char *dir) {
    char path[4096];
    if (rc_path_join(path, sizeof path, dir, "adapter_config.json") != RC_OK) return 0;
    return access(path, R_OK) == 0;
}

static cJSON *target_modules_json(const rc_model *m) {
    const char *targets = m->lora_targets ? m->lora_targets : "";
    if (!strcmp(targets, "all-linear")) return cJSON_CreateString(targets);
    cJSON *list = cJSON_CreateArray();
    for (const char *t = targets; list && *t;) {
        const char *end = strchr(t, ',');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        char name[RC_PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)len, t);
        cJSON_AddItemToArray(list, cJSON_CreateString(name));
        if (!end) break;
        t = end + 1;
    }
    return list;
}

/* The keys PEFT 0.17's LoraConfig writes that change what loads. */
static cJSON *adapter_config_json(const rc_model *m) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "SEQ_CLS");
    cJSON_AddStringToObject(j, "base_model_name_or_path", m->source_dir ? m->source_dir : "");
    cJSON_AddNumberToObject(j, "r", m->lora_r);
    cJSON_AddNumberToObject(j, "lora_alpha", m->trainable.lora_alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", 0.0);
    cJSON_AddBoolToObject(j, "use_rslora", m->trainable.use_rslora);
    cJSON_AddItemToObject(j, "target_modules", target_modules_json(m));
    cJSON *save = cJSON_AddArrayToObject(j, "modules_to_save");
    cJSON_AddItemToArray(save, cJSON_CreateString("classifier")); /* as PEFT's SEQ_CLS adds them */
    cJSON_AddItemToArray(save, cJSON_CreateString("score"));
    cJSON_AddStringToObject(j, "bias", "none");
    /* PEFT sets it for GPT-2's Conv1D weights, stored [in, out] */
    cJSON_AddBoolToObject(j, "fan_in_fan_out", m->cfg.family == RC_FAMILY_GPT2);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddBoolToObject(j, "lora_bias", 0);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "revision");
    return j;
}

rc_status decoder_save_adapter(rc_model *m, const char *dir) {
    rc_status st = rc_mkdir_p(dir);
    if (st != RC_OK) return st;
    size_t largest = m->table[m->p.score].size;
    for (int i = m->n_base_params; i < m->n_params; i++)
        if (m->table[i].size > largest) largest = m->table[i].size;
    const size_t n_tensors = (size_t)(m->n_params - m->n_base_params) + 1;
    float **host = calloc(n_tensors, sizeof *host);
    rc_st_writer *writer = NULL;
    if (!host) return rc_fail(RC_ERR_OOM, "cannot allocate the adapter's host copy");
    st = rc_st_writer_new(&writer);
    char key[RC_PARAM_NAME_MAX + sizeof KEY_PREFIX];
    for (size_t k = 0; k < n_tensors && st == RC_OK; k++) {
        const int i = k + 1 == n_tensors ? m->p.score : m->n_base_params + (int)k;
        const rc_param_info *p = &m->table[i];
        host[k] = malloc(p->size * sizeof **host);
        if (!host[k]) {
            st = rc_fail(RC_ERR_OOM, "cannot allocate %zu floats for %s", p->size, p->name);
            break;
        }
        st = rc_model_get_param(m, i, host[k], p->size);
        if (i == m->p.score) snprintf(key, sizeof key, "%s", HEAD_KEY);
        else snprintf(key, sizeof key, "%s%s", KEY_PREFIX, p->name);
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        if (st == RC_OK) st = rc_st_writer_add(writer, key, RC_DTYPE_F32, p->ndim, shape, host[k]);
    }
    if (st == RC_OK) st = rc_st_writer_add_metadata(writer, "format", "pt");
    char path[4096];
    if (st == RC_OK) st = rc_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    if (st == RC_OK) st = rc_st_writer_write(writer, path); /* atomically */
    rc_st_writer_free(writer);
    for (size_t k = 0; k < n_tensors; k++) free(host[k]);
    free(host);
    if (st != RC_OK) return st;
    cJSON *config = adapter_config_json(m);
    if (!config) return rc_fail(RC_ERR_OOM, "cannot build adapter_config.json");
    st = rc_path_join(path, sizeof path, dir, "adapter_config.json");
    if (st == RC_OK) st = rc_json_save_file(path, config);
    cJSON_Delete(config);
    /* the base's config.json too, so the folder carries rewardc's settings
     * (its "rewardc" entry) as every model folder does; loaders look for
     * adapter_config.json first */
    config = st == RC_OK ? rc_model_config_to_json(&m->cfg) : NULL;
    if (st == RC_OK && !config) st = rc_fail(RC_ERR_OOM, "cannot build config.json");
    if (st == RC_OK) st = rc_path_join(path, sizeof path, dir, "config.json");
    if (st == RC_OK) st = rc_json_save_file(path, config);
    cJSON_Delete(config);
    return st;
}

/* base_model_name_or_path: absolute, or relative to the adapter folder,
 * or else to the working directory. */
static rc_status resolve_base(const char *dir, const char *where, const char *base, char *out,
                              size_t size) {
    if (!base[0])
        return rc_fail(RC_ERR_FORMAT, "%s: base_model_name_or_path is empty (which base model "
                       "does the adapter belong to?)", where);
    if (base[0] != '/' && rc_path_join(out, size, dir, base) == RC_OK && rc_path_is_dir(out))
        return RC_OK;
    if (!rc_path_is_dir(base))
        return rc_fail(RC_ERR_IO, "%s: base model %s is not a local folder (rewardc does not "
                       "download models: point base_model_name_or_path at the base's folder)",
                       where, base);
    snprintf(out, size, "%s", base);
    return RC_OK;
}

/* The adapted modules, from the keys: every <prefix><module>.lora_A.weight. */
static rc_status adapted_modules(const rc_safetensors *st, const char *where, char **out) {
    size_t cap = 1;
    for (size_t i = 0; i < rc_st_count(st); i++) cap += strlen(rc_st_tensor_at(st, i)->name) + 1;
    char *list = calloc(cap, 1);
    if (!list) return rc_fail(RC_ERR_OOM, "cannot list the adapter's modules");
    const char *suffix = ".lora_A.weight";
    for (size_t i = 0; i < rc_st_count(st); i++) {
        const char *name = rc_st_tensor_at(st, i)->name;
        const size_t len = strlen(name);
        if (len <= strlen(suffix) || strcmp(name + len - strlen(suffix), suffix)) continue;
        if (strncmp(name, KEY_PREFIX, strlen(KEY_PREFIX))) {
            free(list);
            return rc_fail(RC_ERR_FORMAT, "%s: tensor %s does not start with %s", where, name,
                           KEY_PREFIX);
        }
        if (list[0]) strcat(list, ",");
        strncat(list, name + strlen(KEY_PREFIX), len - strlen(KEY_PREFIX) - strlen(suffix));
    }
    if (!list[0]) {
        free(list);
        return rc_fail(RC_ERR_FORMAT, "%s holds no *.lora_A.weight tensor", where);
    }
    *out = list;
    return RC_OK;
}

static rc_status load_tensor(rc_model *m, const rc_safetensors *st, const char *where,
                             const char *key, int index) {
    const rc_param_info *p = &m->table[index];
    const rc_tensor_view *t = rc_st_find(st, key);
    if (!t) return rc_fail(RC_ERR_FORMAT, "%s: tensor %s is missing", where, key);
    int64_t shape[2] = {p->shape[0], p->shape[1]};
    rc_status s = rc_tensor_check_shape(t, p->ndim, shape);
    float *buf = s == RC_OK ? malloc(p->size * sizeof *buf) : NULL;
    if (s == RC_OK && !buf) s = rc_fail(RC_ERR_OOM, "cannot allocate %zu floats", p->size);
    if (s == RC_OK) s = rc_tensor_to_f32(t, buf, p->size);
    if (s == RC_OK) s = rc_check_finite(key, buf, p->size);
    if (s == RC_OK) s = rc_model_set_param(m, index, buf, p->size);
    free(buf);
    return s == RC_OK ? RC_OK : rc_fail_context(s, "%s", where);
}

static rc_status read_config(const char *path, cJSON **json, int *r, double *alpha, bool *rslora) {
    rc_status st = rc_json_load_file(path, json);
    if (st != RC_OK) return st;
    const char *type = NULL;
    st = rc_json_get_string(*json, path, "peft_type", &type);
    if (st == RC_OK && strcmp(type, "LORA"))
        st = rc_fail(RC_ERR_UNSUPPORTED, "%s: peft_type %s: only LORA adapters load", path, type);
    if (st == RC_OK) st = rc_json_get_int(*json, path, "r", 1, 1 << 20, r);
    if (st == RC_OK) st = rc_json_get_double(*json, path, "lora_alpha", 1e-12, 1e12, alpha);
    *rslora = false;
    if (st == RC_OK && rc_json_has(*json, "use_rslora"))
        st = rc_json_get_bool(*json, path, "use_rslora", rslora);
    const char *unsupported[] = {"use_dora", "lora_bias"};
    for (size_t i = 0; i < 2 && st == RC_OK; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(*json, unsupported[i]);
        if (cJSON_IsTrue(v))
            st = rc_fail(RC_ERR_UNSUPPORTED, "%s: %s is not supported", path, unsupported[i]);
    }
    const char *patterns[] = {"rank_pattern", "alpha_pattern"};
    for (size_t i = 0; i < 2 && st == RC_OK; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(*json, patterns[i]);
        if (cJSON_IsObject(v) && v->child)
            st = rc_fail(RC_ERR_UNSUPPORTED, "%s: a per-module %s is not supported", path,
                         patterns[i]);
    }
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(*json, "bias");
    if (st == RC_OK && cJSON_IsString(bias) && strcmp(bias->valuestring, "none"))
        st = rc_fail(RC_ERR_UNSUPPORTED, "%s: bias \"%s\": only \"none\" is supported", path,
                     bias->valuestring);
    return st;
}

rc_status decoder_load_adapter(const char *dir, rc_backend *be, uint64_t seed, rc_model **out,
                               rc_load_report *report) {
    *out = NULL;
    char path[4096], base[4096], weights_path[4096];
    rc_status st = rc_path_join(path, sizeof path, dir, "adapter_config.json");
    if (st != RC_OK) return st;
    cJSON *json = NULL;
    int r = 0;
    double alpha = 0.0;
    bool rslora = false;
    st = read_config(path, &json, &r, &alpha, &rslora);
    const char *base_name = NULL;
    if (st == RC_OK) st = rc_json_get_string(json, path, "base_model_name_or_path", &base_name);
    if (st == RC_OK) st = resolve_base(dir, path, base_name, base, sizeof base);
    cJSON_Delete(json);
    if (st == RC_OK && rc_model_is_adapter_dir(base))
        st = rc_fail(RC_ERR_FORMAT, "%s: the base model %s is itself an adapter", path, base);
    if (st == RC_OK) st = rc_path_join(weights_path, sizeof weights_path, dir,
                                       "adapter_model.safetensors");
    if (st != RC_OK) return st;
    rc_safetensors *weights = NULL;
    if ((st = rc_st_open(weights_path, &weights)) != RC_OK) return st;
    rc_model *m = NULL;
    char *modules = NULL;
    st = adapted_modules(weights, weights_path, &modules);
    if (st == RC_OK) st = rc_model_load(base, be, seed, &m, report);
    if (st == RC_OK) st = decoder_attach_lora(m, modules, 0, r, alpha, rslora, seed);
    char key[RC_PARAM_NAME_MAX + sizeof KEY_PREFIX];
    for (int i = m ? m->n_base_params : 0; m && i < m->n_params && st == RC_OK; i++) {
        snprintf(key, sizeof key, "%s%s", KEY_PREFIX, m->table[i].name);
        st = load_tensor(m, weights, weights_path, key, i);
    }
    /* a head saved with the adapter replaces the base's */
    if (st == RC_OK && rc_st_find(weights, HEAD_KEY)) {
        st = load_tensor(m, weights, weights_path, HEAD_KEY, m->p.score);
        if (st == RC_OK && report) report->score_initialised = 0;
    }
    size_t expected = m ? (size_t)(m->n_params - m->n_base_params) : 0;
    expected += rc_st_find(weights, HEAD_KEY) != NULL;
    if (st == RC_OK && rc_st_count(weights) != expected)
        st = rc_fail(RC_ERR_FORMAT, "%s holds %zu tensors; rewardc reads %zu (LoRA A/B and %s)",
                     weights_path, rc_st_count(weights), expected, HEAD_KEY);
    free(modules);
    rc_st_close(weights);
    if (st != RC_OK) {
        rc_model_free(m);
        return rc_fail_context(st, "loading the adapter in %s", dir);
    }
    *out = m;
    return RC_OK;
}
