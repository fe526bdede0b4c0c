/* Removing a command's temporary file when it is interrupted: SIGINT, SIGTERM,
 * SIGHUP or SIGPIPE unlink the registered path, then the signal takes its
 * default course (the exit status still says which signal ended it).
 * SIGKILL cannot be caught: rc_atomic_remove_stale cleans up after it. */
#ifndef REWARDC_CLI_SIGNAL_CLEANUP_H
#define REWARDC_CLI_SIGNAL_CLEANUP_H

/* Registers `path` (copied; one at a time) and installs the handlers. */
void cli_remove_on_signal(const char *path);
/* Restores the default handlers and forgets the path. */
void cli_remove_on_signal_clear(void);

#endif
