/* Small helpers for the subcommands' option parsing: every flag takes the
 * form --name VALUE (or --name=VALUE), and numbers are checked in full.
 * Names are spelled --snake_case; past the leading "--" a '-' matches a '_',
 * so --kebab-case is accepted as the same flag. */
#ifndef REWARDC_CLI_ARGS_H
#define REWARDC_CLI_ARGS_H

#include <stddef.h>

/* If argv[*i] is --name or --name=VALUE, stores the value (advancing *i past a
 * separate value) and returns 1; returns -1 (after printing) when the value is
 * missing; 0 when argv[*i] is another flag. */
int arg_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Whether argv's arg is the value-less flag name (a switch such as --force). */
int arg_is(const char *arg, const char *name);
int arg_is_help(const char *arg);

/* Strict conversions; print "rewardc <cmd>: --name: ..." and return 0 on error. */
int parse_long(const char *cmd, const char *name, const char *text, long min, long max, long *out);
int parse_double(const char *cmd, const char *name, const char *text, double *out);

#endif
