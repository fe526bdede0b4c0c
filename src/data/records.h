/* Helpers the JSONL readers share: typed field access that classifies what is
 * wrong with a record (for the report's per-reason counts), UTF-8 checks, and
 * the abort-or-skip decision for a bad record. */
#ifndef REWARDC_DATA_RECORDS_H
#define REWARDC_DATA_RECORDS_H

#include <stddef.h>

#include "data/jsonl_input.h"
#include "rewardc/data.h"

struct cJSON;

/* Returned by the record helpers: RECORD_OK when the record is fine,
 * RECORD_FATAL when the run must stop whatever skip_bad says (out of memory),
 * otherwise the rc_drop_reason; the message is left in rc_last_error(). */
enum { RECORD_OK = -1, RECORD_FATAL = -2 };

/* Parses a line as a JSON object. The caller frees *object with cJSON_Delete. */
int record_parse_object(const char *line, size_t len, struct cJSON **object);
/* A required string field (valid UTF-8). */
int record_string(const struct cJSON *object, const char *field, const char **out);
/* An optional string field: *out stays NULL when absent (null counts as absent). */
int record_optional_string(const struct cJSON *object, const char *field, const char **out);
/* An optional finite number: *present = 0 when absent. */
int record_optional_number(const struct cJSON *object, const char *field, double *out,
                           int *present);

/* 1 when text[0..len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
int utf8_is_valid(const char *text, size_t len);

/* A record at the input's current line failed with `reason` (message in
 * rc_last_error()). With skip_bad the report counts it and RC_OK is returned;
 * otherwise RC_ERR_FORMAT with "path:line: message". RECORD_FATAL is always
 * returned as RC_ERR_OOM. */
rc_status record_reject(const rc_jsonl_input *input, int reason, const rc_read_options *options,
                        rc_prepare_report *report);

/* Ends a pairs reader: on success (st == RC_OK) closes the input (a gzip
 * failure still fails) and hands the pairs to *out; otherwise, or if closing
 * fails, abandons the input and frees the pairs. Returns the final status. */
rc_status records_finish_pairs(rc_jsonl_input *input, rc_status st, rc_pair_list *pairs,
                               rc_pair_list *out, rc_prepare_report *report);

#endif
