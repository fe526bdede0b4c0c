/* The thread-local last-error slot behind rc_fail(). */
#include "rewardc/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MESSAGE_CAP = 1024 };
static _Thread_local char last_message[MESSAGE_CAP];

rc_status rc_fail(rc_status code, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, args);
    va_end(args);
    return code;
}

rc_status rc_fail_context(rc_status code, const char *fmt, ...) {
    char previous[MESSAGE_CAP];
    memcpy(previous, last_message, sizeof previous);
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(last_message, sizeof last_message, fmt, args);
    va_end(args);
    if (n >= 0 && (size_t)n < sizeof last_message && previous[0])
        snprintf(last_message + n, sizeof last_message - (size_t)n, ": %s", previous);
    return code;
}

const char *rc_last_error(void) { return last_message[0] ? last_message : "no error"; }

void rc_clear_error(void) { last_message[0] = '\0'; }

const char *rc_status_name(rc_status code) {
    switch (code) {
    case RC_OK: return "ok";
    case RC_ERR_IO: return "I/O error";
    case RC_ERR_FORMAT: return "format error";
    case RC_ERR_INVALID_ARG: return "invalid argument";
    case RC_ERR_OOM: return "out of memory";
    case RC_ERR_UNSUPPORTED: return "unsupported";
    case RC_ERR_BACKEND: return "backend error";
    }
    return "unknown status";
}
