/* The rewardc subcommands. Each lives in its own src/cli/cmd_<name>.c and
 * returns the process exit code: 0 success, 1 runtime failure, 2 usage error. */
#ifndef REWARDC_CLI_COMMANDS_H
#define REWARDC_CLI_COMMANDS_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} rc_command;

int cmd_version(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
