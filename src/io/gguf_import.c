/* rc_gguf_import: GGUF file -> Hugging Face folder, assembled in a temporary
 * folder beside the target and renamed into place, so an interrupted import
 * never leaves a partial model. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/gguf_hf_internal.h"
#include "rewardc/io.h"

enum { PATH_CAP = 4096 };

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* 1 if dir exists and holds entries, 0 if absent or empty, -1 if not a folder. */
static int folder_state(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return -1;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int any = 0;
    for (struct dirent *e; !any && (e = readdir(d)) != NULL;)
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

/* Puts the finished temporary folder at out_dir (an old one is moved aside
 * first and removed after). */
static rc_status move_into_place(const char *tmp, const char *out_dir, bool overwrite) {
    int state = folder_state(out_dir);
    if (state < 0) return rc_fail(RC_ERR_IO, "%s exists and is not a folder", out_dir);
    if (state > 0 && !overwrite)
        return rc_fail(RC_ERR_IO, "%s already holds files (use --force to replace them)", out_dir);
    char old[PATH_CAP] = "";
    if (state > 0) {
        snprintf(old, sizeof old, "%s.old-%ld", out_dir, (long)getpid());
        if (rename(out_dir, old) != 0)
            return rc_fail(RC_ERR_IO, "cannot move %s aside: %s", out_dir, strerror(errno));
    } else if (state == 0) {
        rmdir(out_dir); /* an empty folder of that name, if any */
    }
    if (rename(tmp, out_dir) != 0) {
        rc_status st = rc_fail(RC_ERR_IO, "cannot rename %s to %s: %s", tmp, out_dir, strerror(errno));
        if (old[0]) rename(old, out_dir);
        return st;
    }
    if (old[0]) remove_tree(old);
    return RC_OK;
}

static rc_status write_folder(const rc_gguf *g, const rc_gguf_hf_model *m, const char *dir,
                              const rc_gguf_import_options *opt, rc_gguf_import_summary *summary) {
    char path[PATH_CAP];
    cJSON *config = NULL;
    rc_status st = rc_gguf_hf_config(g, m, &config);
    if (st == RC_OK) st = rc_path_join(path, sizeof path, dir, "config.json");
    if (st == RC_OK) st = rc_json_save_file(path, config);
    cJSON_Delete(config);
    if (st == RC_OK) st = rc_gguf_hf_tokenizer(g, m, dir, summary);
    if (st != RC_OK) return st;

    rc_st_writer *writer = NULL;
    rc_gguf_hf_tensor_set set = {0};
    st = rc_st_writer_new(&writer);
    if (st == RC_OK) st = rc_gguf_hf_tensors(g, m, opt->seed, opt->progress, writer, &set, summary);
    if (st == RC_OK) st = rc_st_writer_add_metadata(writer, "format", "pt");
    if (st == RC_OK) st = rc_path_join(path, sizeof path, dir, "model.safetensors");
    if (st == RC_OK && opt->progress) fprintf(opt->progress, "rewardc import: writing %s\n", path);
    if (st == RC_OK) st = rc_st_writer_write(writer, path);
    rc_st_writer_free(writer);
    rc_gguf_hf_tensor_set_free(&set);
    return st;
}

rc_status rc_gguf_import(const char *gguf_path, const char *out_dir, const rc_gguf_import_options *options,
                         rc_gguf_import_summary *summary) {
    rc_gguf_import_options opt = {.seed = GGUF_HF_INIT_SEED_DEFAULT};
    if (options) opt = *options;
    rc_gguf_import_summary local;
    if (!summary) summary = &local;
    memset(summary, 0, sizeof *summary);

    int state = folder_state(out_dir);
    if (state < 0) return rc_fail(RC_ERR_IO, "%s exists and is not a folder", out_dir);
    if (state > 0 && !opt.overwrite)
        return rc_fail(RC_ERR_IO, "%s already holds files (use --force to replace them)", out_dir);

    rc_gguf *g = NULL;
    rc_status st = rc_gguf_open(gguf_path, &g);
    if (st != RC_OK) return st;
    rc_gguf_hf_model m;
    st = rc_gguf_hf_describe(g, &m);
    if (st == RC_OK) {
        snprintf(summary->architecture, sizeof summary->architecture, "%s", m.arch->gguf_arch);
        snprintf(summary->hf_class, sizeof summary->hf_class, "%s", m.arch->hf_class);
        summary->tied = m.tied;
    }
    char tmp[PATH_CAP];
    if (st == RC_OK && (size_t)snprintf(tmp, sizeof tmp, "%s.tmp-import-%ld", out_dir, (long)getpid()) >= sizeof tmp)
        st = rc_fail(RC_ERR_INVALID_ARG, "output path too long: %s", out_dir);
    if (st == RC_OK) {
        remove_tree(tmp); /* a leftover of an earlier process with our pid */
        st = rc_mkdir_p(tmp);
        if (st == RC_OK) st = write_folder(g, &m, tmp, &opt, summary);
        if (st == RC_OK) st = move_into_place(tmp, out_dir, opt.overwrite);
        if (st != RC_OK) remove_tree(tmp);
    }
    rc_gguf_close(g);
    return st;
}
