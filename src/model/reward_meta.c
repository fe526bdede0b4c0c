/* The "rewardc" entry of a model folder's config.json, and tokenizer files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/workflow.h"

static const char *META_KEY = "rewardc";

static int read_number(const cJSON *obj, const char *key, double *value) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(item)) return 0;
    *value = item->valuedouble;
    return 1;
}

rc_status rc_reward_meta_load(const char *model_dir, rc_reward_meta *meta) {
    memset(meta, 0, sizeof *meta);
    meta->policy = rc_encode_policy_default();
    char path[4096];
    rc_status st = rc_path_join(path, sizeof path, model_dir, "config.json");
    cJSON *config = NULL;
    if (st == RC_OK) st = rc_json_load_file(path, &config);
    if (st != RC_OK) return st;
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(config, META_KEY);
    if (cJSON_IsObject(entry)) {
        const cJSON *policy = cJSON_GetObjectItemCaseSensitive(entry, "encode_policy");
        if (policy) st = rc_encode_policy_from_cjson(policy, &meta->policy);
        if (st != RC_OK) st = rc_fail_context(st, "%s: \"rewardc.encode_policy\"", path);
        meta->has_reward_stats = read_number(entry, "reward_mean", &meta->reward_mean) &&
                                 read_number(entry, "reward_std", &meta->reward_std);
        meta->has_threshold = read_number(entry, "threshold", &meta->threshold);
        meta->chat = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(entry, "chat_template"));
    }
    cJSON_Delete(config);
    return st;
}

rc_status rc_reward_meta_save(const char *model_dir, const rc_reward_meta *meta) {
    char path[4096];
    rc_status st = rc_path_join(path, sizeof path, model_dir, "config.json");
    cJSON *config = NULL;
    if (st == RC_OK) st = rc_json_load_file(path, &config);
    if (st != RC_OK) return st;
    cJSON *entry = cJSON_CreateObject();
    cJSON *policy = NULL;
    st = rc_encode_policy_to_cjson(&meta->policy, &policy);
    if (st == RC_OK) {
        cJSON_AddItemToObject(entry, "encode_policy", policy);
        if (meta->has_reward_stats) {
            cJSON_AddNumberToObject(entry, "reward_mean", meta->reward_mean);
            cJSON_AddNumberToObject(entry, "reward_std", meta->reward_std);
        }
        if (meta->has_threshold) cJSON_AddNumberToObject(entry, "threshold", meta->threshold);
        if (meta->chat) cJSON_AddBoolToObject(entry, "chat_template", 1);
        cJSON_DeleteItemFromObjectCaseSensitive(config, META_KEY);
        cJSON_AddItemToObject(config, META_KEY, entry);
        entry = NULL;
        st = rc_json_save_file(path, config);
    }
    cJSON_Delete(entry);
    cJSON_Delete(config);
    return st;
}

rc_status rc_copy_tokenizer_files(const char *src_dir, const char *dst_dir) {
    static const char *files[] = {"vocab.json", "merges.txt", "tokenizer.json",
                                  "tokenizer_config.json", "special_tokens_map.json"};
    int copied = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[4096], dst[4096];
        rc_status st = rc_path_join(src, sizeof src, src_dir, files[i]);
        if (st == RC_OK) st = rc_path_join(dst, sizeof dst, dst_dir, files[i]);
        if (st != RC_OK) return st;
        if (!rc_path_is_file(src)) {
            /* a stale file from another tokenizer would take precedence on load */
            if (rc_path_is_file(dst) && remove(dst) != 0)
                return rc_fail(RC_ERR_IO, "cannot remove stale %s", dst);
            continue;
        }
        char *data = NULL;
        size_t len = 0;
        if ((st = rc_read_file(src, &data, &len)) != RC_OK) return st;
        st = rc_write_file_atomic(dst, data, len);
        free(data);
        if (st != RC_OK) return st;
        copied++;
    }
    if (!copied)
        return rc_fail(RC_ERR_IO, "%s has no tokenizer files (vocab.json + merges.txt or "
                                  "tokenizer.json)", src_dir);
    return RC_OK;
}
