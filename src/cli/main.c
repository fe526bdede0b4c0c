/* rewardc: the command-line entry point; dispatches to subcommands. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"

static const rc_command commands[] = {
    {"bench", "measure training-step, scoring and GEMM throughput", cmd_bench},
    {"eval", "evaluate a reward model on pairs or labelled responses", cmd_eval},
    {"init", "create a randomly initialised OPT reward model from a named shape", cmd_init},
    {"prepare", "turn labelled texts, rankings or preference JSONL into chosen/rejected pairs",
     cmd_prepare},
    {"score", "score responses with a reward model and accept or block them", cmd_score},
    {"tokenize", "encode text with a Hugging Face byte-level BPE tokenizer", cmd_tokenize},
    {"train", "fine-tune a reward model on chosen/rejected pairs", cmd_train},
    {"version", "print the version, build options and compiled-in backends", cmd_version},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void print_usage(FILE *out) {
    fprintf(out,
            "rewardc: train and serve reward models for LLM outputs\n\n"
            "usage: rewardc <command> [options]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nrun 'rewardc <command> --help' for a command's options\n");
}

/* OpenMP threads that spin while waiting lose their time slice whenever the
 * machine has other work (a laptop, CI): training steps measured 6x slower
 * under load. Sleeping waits cost little here, so they are the default. The
 * OpenMP runtime reads OMP_WAIT_POLICY when it loads, before main, so the
 * process re-executes itself once with it set; a user's own setting wins. */
static void use_passive_openmp_waits(char **argv) {
#ifdef RC_HAVE_OPENMP
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then carry on */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    use_passive_openmp_waits(argv);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv + 1);
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "rewardc: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
