/* File helpers shared by every module: atomic writes (temp file, fsync,
 * rename, fsync of the directory), whole-file reads, JSON files with errors
 * that name the line and column, and small path utilities.
 * The safetensors reader and writer live in rewardc/safetensors.h. */
#ifndef REWARDC_IO_H
#define REWARDC_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON; /* from <cjson/cJSON.h>; callers that use the JSON helpers include it */

/* ---- Atomic writes ------------------------------------------------------
 * rc_atomic_open creates a temporary file next to `path` (same directory, so
 * the final rename cannot cross file systems) and hands out a FILE* to it.
 * Exactly one of rc_atomic_commit / rc_atomic_abort must follow; both free
 * the handle. Readers of `path` see either the old file or the complete new
 * one, never a partial write. */
typedef struct rc_atomic_file rc_atomic_file;

rc_status rc_atomic_open(const char *path, rc_atomic_file **out);
FILE *rc_atomic_stream(rc_atomic_file *file);
/* Path of the temporary file (for messages and tests). */
const char *rc_atomic_temp_path(const rc_atomic_file *file);
/* fflush, fsync, close, rename over `path`, fsync the directory. On any
 * failure (including an earlier write error on the stream) the temporary file
 * is removed, `path` is left untouched and an error is returned. */
rc_status rc_atomic_commit(rc_atomic_file *file);
/* Closes and removes the temporary file; `path` is left untouched. NULL is a no-op. */
void rc_atomic_abort(rc_atomic_file *file);

/* The temporary file is named "<path>.tmp.XXXXXX" and locked (flock) while
 * it is written. A writer killed with SIGKILL leaves it behind; this removes
 * every such leftover of `path` that no living process holds, with a note on
 * stderr, and counts them. Files being written by another process stay. */
rc_status rc_atomic_remove_stale(const char *path, int *removed);

/* Writes `len` bytes atomically to `path`. */
rc_status rc_write_file_atomic(const char *path, const void *data, size_t len);

/* ---- Reading ------------------------------------------------------------- */

/* Reads a whole file into a malloc'd buffer, NUL-terminated for convenience
 * (the terminator is not counted in *len). The caller frees *data. */
rc_status rc_read_file(const char *path, char **data, size_t *len);

/* Parses a JSON file. Errors name the file and the line:column of the parse
 * error. The caller frees *out with cJSON_Delete. */
rc_status rc_json_load_file(const char *path, struct cJSON **out);

/* Parses text[0..len) (text[len] must be its NUL terminator, as rc_read_file
 * and getline leave it) as exactly one JSON value, the way every reader in
 * rewardc does: only whitespace may follow it; a NUL byte or a "\u0000"
 * escape is refused (a C string would end there and lose the rest of the
 * text); of an object's duplicate keys the LAST wins, as in Python's json
 * (cJSON alone answers with the first). On failure the message (without a
 * location) is set, *error_offset is the byte at fault and the caller adds
 * where it was (file, line). The caller frees *out with cJSON_Delete. */
rc_status rc_json_parse(const char *text, size_t len, struct cJSON **out, size_t *error_offset);

/* ---- Typed JSON fields, range-checked (src/io/json_fields.c) --------------
 * Each reads obj[key], fails with RC_ERR_FORMAT naming `where` (the file),
 * the key, the allowed range and what was found when the key is missing, of
 * the wrong type or out of range, and converts only after the check (no
 * undefined behaviour on 1e10 or 1e300). Integers must be whole numbers.
 * rc_json_has says whether the key is present and not null: optional fields
 * are read as `if (rc_json_has(obj, key)) st = rc_json_get_int(...)`. */
bool rc_json_has(const struct cJSON *obj, const char *key);
rc_status rc_json_get_int(const struct cJSON *obj, const char *where, const char *key, int min,
                          int max, int *value);
rc_status rc_json_get_long(const struct cJSON *obj, const char *where, const char *key, long min,
                           long max, long *value);
/* Finite and within [min, max]. */
rc_status rc_json_get_double(const struct cJSON *obj, const char *where, const char *key,
                             double min, double max, double *value);
rc_status rc_json_get_bool(const struct cJSON *obj, const char *where, const char *key, bool *value);
/* A string (not copied: it lives as long as obj). */
rc_status rc_json_get_string(const struct cJSON *obj, const char *where, const char *key,
                             const char **value);
/* "a string", "a number", "an array", ... for messages. */
const char *rc_json_type_name(const struct cJSON *item);

/* Every element of data[0..n) is finite; otherwise RC_ERR_FORMAT naming the
 * tensor, the first bad index and its value (NaN or Inf weights would make
 * every reward NaN without a word). */
rc_status rc_check_finite(const char *name, const float *data, size_t n);

/* Writes `json` atomically, pretty-printed, with a trailing newline. */
rc_status rc_json_save_file(const char *path, const struct cJSON *json);

/* ---- Folder locks (src/io/dir_lock.c) ------------------------------------
 * An exclusive lock on a folder, held until released or until the process
 * dies (flock on DIR/.rewardc.lock, released by the kernel even after
 * kill -9; the file holds the pid, named in the error a second process gets,
 * and a lock file left by a dead process is taken over with a note). The
 * folder is created when missing, and removed again at release if it was
 * created here and is still empty. */
typedef struct rc_dir_lock rc_dir_lock;
rc_status rc_dir_lock_acquire(const char *dir, rc_dir_lock **out);
void rc_dir_lock_release(rc_dir_lock *lock); /* NULL is a no-op */

/* ---- Paths ---------------------------------------------------------------- */

/* Creates `path` and any missing parents (mode 0755). Existing directories are fine. */
rc_status rc_mkdir_p(const char *path);

/* out = dir + "/" + name (no doubled slash; an absolute `name` replaces `dir`,
 * as os.path.join does). Fails with RC_ERR_INVALID_ARG if it does not fit. */
rc_status rc_path_join(char *out, size_t out_size, const char *dir, const char *name);

bool rc_path_is_dir(const char *path);
bool rc_path_is_file(const char *path); /* a regular file (symlinks followed) */

#ifdef __cplusplus
}
#endif
#endif
