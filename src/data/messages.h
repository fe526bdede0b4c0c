/* Message lists of conversational preference records ({"role", "content"}
 * arrays, as TRL stores them): checking a record's field, the shared leading
 * messages of two lists, and slices of a list as compact JSON. */
#ifndef REWARDC_DATA_MESSAGES_H
#define REWARDC_DATA_MESSAGES_H

#include <stddef.h>

struct cJSON;

/* Checks that field of object is a non-empty array of objects with string
 * (valid UTF-8) "role" and "content"; sets *out to it (borrowed). Returns
 * RECORD_OK or a drop reason with the message in rc_last_error(). */
int record_messages(const struct cJSON *object, const char *field, const struct cJSON **out);

/* Number of leading messages two lists share (same role and content). */
size_t messages_shared_count(const struct cJSON *a, const struct cJSON *b);

/* Messages [from, to) of list as a compact JSON array (malloc'd), or NULL (OOM). */
char *messages_slice_json(const struct cJSON *list, size_t from, size_t to);

#endif
