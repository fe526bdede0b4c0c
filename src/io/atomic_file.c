/* Atomic file replacement: write to a temporary file in the target's
 * directory, fsync it, rename it over the target, then fsync the directory so
 * the rename itself survives a crash. */
#define _DEFAULT_SOURCE /* flock */

#include "rewardc/io.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct rc_atomic_file {
    char *final_path;
    char *temp_path;
    FILE *stream;
};

/* Directory part of `path` ("." when it has none), malloc'd. */
static char *directory_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        char *dot = malloc(2);
        if (dot) memcpy(dot, ".", 2);
        return dot;
    }
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (!dir) return NULL;
    memcpy(dir, path, len);
    dir[len] = '\0';
    return dir;
}

static void free_handle(rc_atomic_file *file) {
    free(file->final_path);
    free(file->temp_path);
    free(file);
}

rc_status rc_atomic_open(const char *path, rc_atomic_file **out) {
    *out = NULL;
    if (!path || !*path) return rc_fail(RC_ERR_INVALID_ARG, "atomic write: empty output path");
    size_t len = strlen(path);
    if (path[len - 1] == '/') return rc_fail(RC_ERR_INVALID_ARG, "atomic write: %s names a directory", path);

    rc_atomic_file *file = calloc(1, sizeof *file);
    static const char suffix[] = ".tmp.XXXXXX";
    if (file) {
        file->final_path = malloc(len + 1);
        file->temp_path = malloc(len + sizeof suffix);
    }
    if (!file || !file->final_path || !file->temp_path) {
        if (file) free_handle(file);
        return rc_fail(RC_ERR_OOM, "atomic write %s: out of memory", path);
    }
    memcpy(file->final_path, path, len + 1);
    memcpy(file->temp_path, path, len);
    memcpy(file->temp_path + len, suffix, sizeof suffix);

    int fd = mkstemp(file->temp_path);
    if (fd < 0) {
        int err = errno;
        free_handle(file);
        return rc_fail(RC_ERR_IO, "cannot create a temporary file next to %s: %s", path, strerror(err));
    }
    /* Held while the file is written, released by the kernel however this
     * process ends: rc_atomic_remove_stale tells a leftover of a killed
     * writer (unlocked) from one being written now (locked). */
    (void)flock(fd, LOCK_EX | LOCK_NB);
    /* mkstemp creates 0600; outputs are ordinary readable files. */
    (void)fchmod(fd, 0644);
    file->stream = fdopen(fd, "wb");
    if (!file->stream) {
        int err = errno;
        close(fd);
        unlink(file->temp_path);
        free_handle(file);
        return rc_fail(RC_ERR_IO, "cannot open a stream on %s: %s", path, strerror(err));
    }
    *out = file;
    return RC_OK;
}

FILE *rc_atomic_stream(rc_atomic_file *file) { return file ? file->stream : NULL; }

const char *rc_atomic_temp_path(const rc_atomic_file *file) { return file ? file->temp_path : NULL; }

void rc_atomic_abort(rc_atomic_file *file) {
    if (!file) return;
    if (file->stream) fclose(file->stream);
    unlink(file->temp_path);
    free_handle(file);
}

/* Makes the rename durable. Some file systems refuse fsync on a directory
 * (EINVAL); the data itself is already on disk then, so that is not an error. */
static rc_status sync_directory_of(const char *path) {
    char *dir = directory_of(path);
    if (!dir) return rc_fail(RC_ERR_OOM, "atomic write %s: out of memory", path);
    int fd = open(dir, O_RDONLY);
    if (fd < 0) {
        int err = errno;
        rc_status st = rc_fail(RC_ERR_IO, "cannot open directory %s to sync %s: %s", dir, path, strerror(err));
        free(dir);
        return st;
    }
    rc_status st = RC_OK;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        st = rc_fail(RC_ERR_IO, "cannot fsync directory %s after writing %s: %s", dir, path, strerror(errno));
    close(fd);
    free(dir);
    return st;
}

rc_status rc_atomic_commit(rc_atomic_file *file) {
    if (!file) return rc_fail(RC_ERR_INVALID_ARG, "atomic commit: no file");
    FILE *stream = file->stream;
    file->stream = NULL;
    const char *path = file->final_path;
    rc_status st = RC_OK;

    if (ferror(stream)) {
        /* the first failed write's errno is long gone: flushing again gives
         * the reason (ENOSPC, EDQUOT, EIO) for the message */
        int err = fflush(stream) != 0 && errno ? errno : EIO;
        st = rc_fail(RC_ERR_IO, "writing %s failed (write error on %s): %s", path, file->temp_path, strerror(err));
    }
    else if (fflush(stream) != 0)
        st = rc_fail(RC_ERR_IO, "writing %s failed: %s", path, strerror(errno));
    else if (fsync(fileno(stream)) != 0)
        st = rc_fail(RC_ERR_IO, "cannot fsync %s: %s", file->temp_path, strerror(errno));
    /* fclose can report a deferred write error (e.g. on NFS), so check it. */
    if (fclose(stream) != 0 && st == RC_OK)
        st = rc_fail(RC_ERR_IO, "closing %s failed: %s", file->temp_path, strerror(errno));
    if (st == RC_OK && rename(file->temp_path, path) != 0)
        st = rc_fail(RC_ERR_IO, "cannot rename %s to %s: %s", file->temp_path, path, strerror(errno));
    if (st != RC_OK) {
        unlink(file->temp_path);
        free_handle(file);
        return st;
    }
    st = sync_directory_of(path);
    free_handle(file);
    return st;
}

rc_status rc_write_file_atomic(const char *path, const void *data, size_t len) {
    rc_atomic_file *file;
    rc_status st = rc_atomic_open(path, &file);
    if (st != RC_OK) return st;
    if (len > 0 && fwrite(data, 1, len, rc_atomic_stream(file)) != len) {
        int err = errno;
        rc_atomic_abort(file);
        return rc_fail(RC_ERR_IO, "writing %zu bytes to %s failed: %s", len, path, strerror(err));
    }
    return rc_atomic_commit(file);
}

rc_status rc_atomic_remove_stale(const char *path, int *removed) {
    *removed = 0;
    char *dir = directory_of(path);
    if (!dir) return rc_fail(RC_ERR_OOM, "atomic write %s: out of memory", path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const size_t base_len = strlen(base);
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return RC_OK; /* nothing to clean where nothing can be listed */
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strncmp(name, base, base_len) || strncmp(name + base_len, ".tmp.", 5) ||
            strlen(name + base_len + 5) != 6)
            continue;
        char full[4096];
        if (rc_path_join(full, sizeof full, slash ? dir : "", name) != RC_OK) continue;
        int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat sb;
        /* unlocked: its writer is gone (locked: another process writes it now) */
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlink(full) == 0) {
            fprintf(stderr, "rewardc: note: removed %s, left by an interrupted write of %s\n", full, path);
            (*removed)++;
        }
        close(fd);
    }
    closedir(d);
    free(dir);
    return RC_OK;
}
