/* Option parsing helpers shared by the subcommands. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Flags are spelled --snake_case (transformers' TrainingArguments style);
 * --kebab-case is accepted as its alias so older scripts keep working. So past
 * the leading "--", '-' and '_' are the same letter. Returns the length of the
 * name matched at the start of arg (the arg's next char is then '=' or '\0'),
 * or 0 when arg is not that flag. */
static size_t flag_match(const char *arg, const char *name) {
    size_t i = 0;
    for (; name[i]; i++) {
        char a = arg[i], n = name[i];
        int dashes = i >= 2 && (a == '-' || a == '_') && (n == '-' || n == '_');
        if (a != n && !dashes) return 0;
    }
    return arg[i] == '=' || arg[i] == '\0' ? i : 0;
}

int arg_is(const char *arg, const char *name) {
    size_t len = flag_match(arg, name);
    return len > 0 && arg[len] == '\0';
}

int arg_value(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *arg = argv[*i];
    size_t len = flag_match(arg, name);
    if (len == 0) return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
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
