/* rc_st_open: a single .safetensors file, or a Hugging Face model folder with
 * model.safetensors or shards listed in model.safetensors.index.json. A folder
 * that holds only PyTorch .bin weights gets an error naming the converter. */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors_internal.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"

enum { PATH_CAP = 4096 };

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Name of a PyTorch weight file in `dir` (pytorch_model.bin, its shards or
 * index, any *.bin), written into `found`; false if there is none. */
static bool find_pytorch_weights(const char *dir, char *found, size_t found_size) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool any = false;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (ends_with(e->d_name, ".bin") || ends_with(e->d_name, ".bin.index.json") || ends_with(e->d_name, ".pt") ||
            ends_with(e->d_name, ".pth")) {
            /* Prefer the canonical name in the message when several exist. */
            if (!any || strcmp(e->d_name, "pytorch_model.bin") == 0) {
                snprintf(found, found_size, "%s", e->d_name);
                any = true;
            }
        }
    }
    closedir(d);
    return any;
}

/* Shard names come from a file we did not write: keep them inside the folder. */
static bool is_plain_file_name(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static rc_status open_sharded(rc_safetensors *st, const char *dir, const char *index_path) {
    cJSON *index;
    rc_status status = rc_json_load_file(index_path, &index);
    if (status != RC_OK) return status;
    const cJSON *weight_map = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    if (!cJSON_IsObject(weight_map)) {
        cJSON_Delete(index);
        return rc_fail(RC_ERR_FORMAT, "%s: missing \"weight_map\" object", index_path);
    }
    size_t n_entries = (size_t)cJSON_GetArraySize(weight_map);
    const char **shards = malloc((n_entries ? n_entries : 1) * sizeof *shards);
    if (!shards) {
        cJSON_Delete(index);
        return rc_fail(RC_ERR_OOM, "%s: out of memory", index_path);
    }
    size_t n_shards = 0;
    for (const cJSON *e = weight_map->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !is_plain_file_name(e->valuestring)) {
            status = rc_fail(RC_ERR_FORMAT, "%s: weight_map entry for '%s' is not a file name in the folder",
                             index_path, e->string);
            break;
        }
        shards[n_shards++] = e->valuestring;
    }
    /* Open each distinct shard once, in sorted order (stable metadata precedence). */
    if (status == RC_OK) qsort(shards, n_shards, sizeof *shards, compare_strings);
    char path[PATH_CAP];
    for (size_t i = 0; i < n_shards && status == RC_OK; i++) {
        if (i > 0 && strcmp(shards[i], shards[i - 1]) == 0) continue;
        status = rc_path_join(path, sizeof path, dir, shards[i]);
        if (status == RC_OK && !rc_path_is_file(path))
            status = rc_fail(RC_ERR_IO, "%s lists shard %s, which does not exist", index_path, path);
        if (status == RC_OK) status = rc_st_add_file(st, path);
    }
    free(shards);
    if (status == RC_OK) status = rc_st_finish(st);

    /* The index and the shards must agree exactly: every listed tensor lives in
     * its listed shard, and no shard holds a tensor the index does not list. */
    size_t listed = 0;
    for (const cJSON *e = weight_map->child; e && status == RC_OK; e = e->next, listed++) {
        const rc_tensor_view *t = rc_st_find(st, e->string);
        if (status == RC_OK) status = rc_path_join(path, sizeof path, dir, e->valuestring);
        if (status != RC_OK) break;
        if (!t)
            status = rc_fail(RC_ERR_FORMAT, "%s lists tensor '%s' in %s, but no shard has it", index_path, e->string,
                             e->valuestring);
        else if (strcmp(t->file, path) != 0)
            status = rc_fail(RC_ERR_FORMAT, "%s lists tensor '%s' in %s, but it is in %s", index_path, e->string,
                             e->valuestring, t->file);
    }
    if (status == RC_OK && listed != st->n_tensors) {
        for (size_t i = 0; i < st->n_tensors; i++) {
            if (!cJSON_GetObjectItemCaseSensitive(weight_map, st->tensors[i].name)) {
                status = rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' is not listed in %s", st->tensors[i].file,
                                 st->tensors[i].name, index_path);
                break;
            }
        }
        /* Same count mismatch without a missing name means duplicate index keys. */
        if (status == RC_OK) status = rc_fail(RC_ERR_FORMAT, "%s: weight_map lists a tensor twice", index_path);
    }
    cJSON_Delete(index);
    return status;
}

static rc_status open_folder(rc_safetensors *st, const char *dir) {
    char path[PATH_CAP];
    rc_status status = rc_path_join(path, sizeof path, dir, "model.safetensors.index.json");
    if (status != RC_OK) return status;
    if (rc_path_is_file(path)) return open_sharded(st, dir, path);

    status = rc_path_join(path, sizeof path, dir, "model.safetensors");
    if (status != RC_OK) return status;
    if (rc_path_is_file(path)) {
        status = rc_st_add_file(st, path);
        return status == RC_OK ? rc_st_finish(st) : status;
    }

    char found[256];
    if (find_pytorch_weights(dir, found, sizeof found))
        return rc_fail(RC_ERR_UNSUPPORTED, "%s has PyTorch weights (%s) but no model.safetensors; " RC_ST_CONVERTER_HINT,
                       dir, found);
    return rc_fail(RC_ERR_IO, "%s has no model.safetensors or model.safetensors.index.json", dir);
}

rc_status rc_st_open(const char *path, rc_safetensors **out) {
    *out = NULL;
    if (!path || !*path) return rc_fail(RC_ERR_INVALID_ARG, "safetensors: empty path");
    rc_safetensors *st;
    rc_status status = rc_st_create(path, &st);
    if (status != RC_OK) return status;
    if (rc_path_is_dir(path)) {
        status = open_folder(st, path);
    } else {
        status = rc_st_add_file(st, path);
        if (status == RC_OK) status = rc_st_finish(st);
    }
    if (status != RC_OK) {
        rc_st_close(st);
        return status;
    }
    *out = st;
    return RC_OK;
}
