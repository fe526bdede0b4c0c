/* See signal_cleanup.h. The handler only calls async-signal-safe functions
 * (unlink, sigaction, raise) on a path copied beforehand. */
#define _POSIX_C_SOURCE 200809L
#include "cli/signal_cleanup.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const int caught[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
enum { N_CAUGHT = sizeof caught / sizeof caught[0] };
static char doomed_path[4096];
static volatile sig_atomic_t armed;

static struct sigaction previous[N_CAUGHT];
static int installed[N_CAUGHT];

static void remove_and_reraise(int sig) {
    if (armed) unlink(doomed_path);
    armed = 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, NULL);
    raise(sig);
}

void cli_remove_on_signal(const char *path) {
    if ((size_t)snprintf(doomed_path, sizeof doomed_path, "%s", path) >= sizeof doomed_path) return;
    armed = 1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = remove_and_reraise;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < N_CAUGHT; i++) {
        if (installed[i] || sigaction(caught[i], NULL, &previous[i]) != 0) continue;
        /* a signal the parent ignores (SIGINT of a background job) stays ignored */
        if (previous[i].sa_handler == SIG_IGN) continue;
        installed[i] = sigaction(caught[i], &action, NULL) == 0;
    }
}

void cli_remove_on_signal_clear(void) {
    armed = 0;
    for (int i = 0; i < N_CAUGHT; i++)
        if (installed[i]) {
            sigaction(caught[i], &previous[i], NULL);
            installed[i] = 0;
        }
}
