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

/* Writes `len` bytes atomically to `path`. */
rc_status rc_write_file_atomic(const char *path, const void *data, size_t len);

/* ---- Reading ------------------------------------------------------------- */

/* Reads a whole file into a malloc'd buffer, NUL-terminated for convenience
 * (the terminator is not counted in *len). The caller frees *data. */
rc_status rc_read_file(const char *path, char **data, size_t *len);

/* Parses a JSON file. Errors name the file and the line:column of the parse
 * error. The caller frees *out with cJSON_Delete. */
rc_status rc_json_load_file(const char *path, struct cJSON **out);

/* Writes `json` atomically, pretty-printed, with a trailing newline. */
rc_status rc_json_save_file(const char *path, const struct cJSON *json);

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
