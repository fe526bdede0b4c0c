/* rewardc: the command-line entry point; dispatches to subcommands. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli/commands.h"

static const rc_command commands[] = {
    {"bench", "measure training-step, scoring and GEMM throughput", cmd_bench},
    {"eval", "evaluate a reward model on pairs or labelled responses", cmd_eval},
    {"export", "merge a LoRA run's adapters into a plain Hugging Face folder", cmd_export},
    {"import", "turn a GGUF model (llama.cpp) into a Hugging Face reward-model folder", cmd_import},
    {"init", "create a randomly initialised reward model (any family) from a named shape", cmd_init},
    {"prepare", "turn labelled texts, rankings or preference JSONL into chosen/rejected pairs",
     cmd_prepare},
    {"score", "score responses with a reward model and accept or block them", cmd_score},
    {"serve", "serve a reward model over HTTP, batching concurrent requests", cmd_serve},
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
 * machine has other work (a laptop, CI), and libgomp's default spin lasts
 * milliseconds: under load, training steps slow down several times over.
 * Waits that sleep at once cost a futex wake-up per parallel region instead,
 * which a small model runs thousands of per step. So waits spin briefly, then
 * sleep: GOMP_SPINCOUNT 3000 (tens of microseconds) with
 * OMP_WAIT_POLICY=PASSIVE, which measured best both alone and beside a busy
 * process (the figures are in docs/performance.md).
 * The OpenMP runtime reads both when it loads, before main, so the process
 * re-executes itself once with them set; a user's own setting of either wins. */
static void set_openmp_waits(char **argv) {
#ifdef RC_HAVE_OPENMP
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    setenv("GOMP_SPINCOUNT", "3000", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then carry on */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    set_openmp_waits(argv);
#ifdef __linux__
    prctl(PR_SET_NAME, "rewardc", 0, 0, 0); /* not "exe", after the re-execution */
#endif
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
