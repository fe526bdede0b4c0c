/* Status codes and the last-error message every library call sets on failure.
 * Library code never exits on user input: it returns an rc_status and leaves a
 * message naming the file, line, field or tensor at fault. */
#ifndef REWARDC_STATUS_H
#define REWARDC_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    RC_OK = 0,
    RC_ERR_IO,          /* a file could not be opened, read or written */
    RC_ERR_FORMAT,      /* input exists but is malformed */
    RC_ERR_INVALID_ARG, /* a caller-supplied value is out of range */
    RC_ERR_OOM,         /* an allocation failed (message gives the size) */
    RC_ERR_UNSUPPORTED, /* valid input this build cannot handle */
    RC_ERR_BACKEND      /* a compute backend or device failed */
} rc_status;

/* Formats a message into the calling thread's error slot and returns `code`,
 * so a failing path reads: return rc_fail(RC_ERR_IO, "cannot open %s", path); */
rc_status rc_fail(rc_status code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prefixes the current message with more context ("loading model: ..."). */
rc_status rc_fail_context(rc_status code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

const char *rc_last_error(void);
const char *rc_status_name(rc_status code);
void rc_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
