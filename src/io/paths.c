/* Path helpers: joining, recursive mkdir, and type checks. */
#define _POSIX_C_SOURCE 200809L

#include "rewardc/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

rc_status rc_path_join(char *out, size_t out_size, const char *dir, const char *name) {
    if (!out || out_size == 0) return rc_fail(RC_ERR_INVALID_ARG, "path join: no output buffer");
    out[0] = '\0';
    size_t dir_len = (dir && name[0] != '/') ? strlen(dir) : 0;
    size_t name_len = strlen(name);
    bool slash = dir_len > 0 && dir[dir_len - 1] != '/' && name_len > 0;
    size_t total = dir_len + (slash ? 1 : 0) + name_len;
    if (total + 1 > out_size)
        return rc_fail(RC_ERR_INVALID_ARG, "path too long (%zu bytes, limit %zu): %s/%s", total, out_size - 1,
                       dir ? dir : "", name);
    if (dir_len > 0) memcpy(out, dir, dir_len);
    if (slash) out[dir_len] = '/';
    memcpy(out + dir_len + (slash ? 1 : 0), name, name_len + 1);
    return RC_OK;
}

bool rc_path_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool rc_path_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static rc_status make_one(const char *path) {
    if (mkdir(path, 0755) == 0) return RC_OK;
    int err = errno;
    if (err == EEXIST) {
        if (rc_path_is_dir(path)) return RC_OK;
        return rc_fail(RC_ERR_IO, "cannot create directory %s: a file of that name exists", path);
    }
    return rc_fail(RC_ERR_IO, "cannot create directory %s: %s", path, strerror(err));
}

rc_status rc_mkdir_p(const char *path) {
    if (!path || !*path) return rc_fail(RC_ERR_INVALID_ARG, "mkdir: empty path");
    size_t len = strlen(path);
    char *copy = malloc(len + 1);
    if (!copy) return rc_fail(RC_ERR_OOM, "mkdir %s: out of memory", path);
    memcpy(copy, path, len + 1);
    rc_status st = RC_OK;
    /* Create each prefix that ends before a '/', then the whole path. */
    for (size_t i = 1; i < len && st == RC_OK; i++) {
        if (copy[i] != '/' || copy[i - 1] == '/') continue;
        copy[i] = '\0';
        st = make_one(copy);
        copy[i] = '/';
    }
    if (st == RC_OK) st = make_one(copy);
    free(copy);
    return st;
}
