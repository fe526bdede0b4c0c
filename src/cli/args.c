/* Option parsing helpers shared by the subcommands. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_value(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0) return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "rewardc: %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int arg_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

int parse_long(const char *cmd, const char *name, const char *text, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf(stderr, "rewardc %s: %s: '%s' is not an integer in [%ld, %ld]\n", cmd, name, text,
                min, max);
        return 0;
    }
    *out = v;
    return 1;
}

int parse_double(const char *cmd, const char *name, const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) {
        fprintf(stderr, "rewardc %s: %s: '%s' is not a number\n", cmd, name, text);
        return 0;
    }
    *out = v;
    return 1;
}
