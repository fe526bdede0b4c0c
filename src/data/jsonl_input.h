/* Line-by-line input for the JSONL readers, counting line numbers for error
 * messages; ".gz" files are decompressed by a `gzip -dc` child process. */
#ifndef REWARDC_DATA_JSONL_INPUT_H
#define REWARDC_DATA_JSONL_INPUT_H

#include <stdio.h>
#include <sys/types.h>

#include "rewardc/status.h"

typedef struct {
    const char *path;
    FILE *stream;
    pid_t gzip_pid; /* 0 for a plain file */
    char *line;
    size_t line_capacity;
    size_t line_number; /* 1-based number of the line last returned */
} rc_jsonl_input;

rc_status rc_jsonl_open(rc_jsonl_input *input, const char *path);
/* Reads the next non-blank line (without its newline) into *line / *len;
 * *line is NULL at the end of the input. Blank lines still count in
 * line_number. The buffer is reused by the next call. */
rc_status rc_jsonl_next(rc_jsonl_input *input, char **line, size_t *len);
/* Closes the input; for gzip input, fails if gzip reported an error (a
 * truncated or corrupt archive), so a short read is never taken as complete. */
rc_status rc_jsonl_close(rc_jsonl_input *input);
/* Closes without checking (after an error elsewhere). */
void rc_jsonl_abort(rc_jsonl_input *input);

#endif
