/* JSONL line reader with transparent gzip support. gzip runs as a child
 * process (posix_spawnp, no shell, so any path is safe) writing into a pipe;
 * linking zlib for one input format was not worth a new dependency. */
#define _POSIX_C_SOURCE 200809L

#include "data/jsonl_input.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int has_gz_suffix(const char *path) {
    size_t len = strlen(path);
    return len > 3 && strcmp(path + len - 3, ".gz") == 0;
}

static rc_status open_gzip_pipe(rc_jsonl_input *input, const char *path) {
    FILE *probe = fopen(path, "rb");
    if (!probe) return rc_fail(RC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    fclose(probe);
    int fds[2];
    if (pipe(fds) != 0) return rc_fail(RC_ERR_IO, "%s: pipe failed: %s", path, strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    char *argv[] = {"gzip", "-dc", "--", (char *)path, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "gzip", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (err != 0) {
        close(fds[0]);
        return rc_fail(RC_ERR_IO, "%s: cannot run gzip -dc: %s", path, strerror(err));
    }
    input->stream = fdopen(fds[0], "rb");
    if (!input->stream) {
        close(fds[0]);
        waitpid(pid, NULL, 0);
        return rc_fail(RC_ERR_IO, "%s: fdopen failed", path);
    }
    input->gzip_pid = pid;
    return RC_OK;
}

rc_status rc_jsonl_open(rc_jsonl_input *input, const char *path) {
    memset(input, 0, sizeof *input);
    input->path = path;
    if (has_gz_suffix(path)) return open_gzip_pipe(input, path);
    input->stream = fopen(path, "rb");
    if (!input->stream) return rc_fail(RC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    return RC_OK;
}

rc_status rc_jsonl_next(rc_jsonl_input *input, char **line, size_t *len) {
    errno = 0;
    ssize_t n;
    /* blank lines are not records: skip them, still counting their numbers */
    while ((n = getline(&input->line, &input->line_capacity, input->stream)) >= 0) {
        if (strspn(input->line, " \t\r\n") != (size_t)n) break;
        input->line_number++;
    }
    if (n < 0) {
        if (ferror(input->stream))
            return rc_fail(RC_ERR_IO, "%s: read failed after line %zu: %s", input->path,
                           input->line_number, strerror(errno));
        *line = NULL;
        *len = 0;
        return RC_OK;
    }
    input->line_number++;
    size_t length = (size_t)n;
    while (length > 0 && (input->line[length - 1] == '\n' || input->line[length - 1] == '\r'))
        input->line[--length] = '\0';
    if (strlen(input->line) != length)
        return rc_fail(RC_ERR_FORMAT, "%s:%zu: line contains a NUL byte", input->path,
                       input->line_number);
    *line = input->line;
    *len = length;
    return RC_OK;
}

static int finish(rc_jsonl_input *input, int kill_child) {
    int status = 0, child_ok = 1;
    if (input->stream) fclose(input->stream);
    if (input->gzip_pid > 0) {
        if (kill_child) kill(input->gzip_pid, SIGTERM);
        while (waitpid(input->gzip_pid, &status, 0) < 0 && errno == EINTR) {
        }
        child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    free(input->line);
    memset(input, 0, sizeof *input);
    return child_ok;
}

rc_status rc_jsonl_close(rc_jsonl_input *input) {
    const char *path = input->path;
    if (!finish(input, 0))
        return rc_fail(RC_ERR_FORMAT, "%s: gzip -dc failed (corrupt or truncated archive?)", path);
    return RC_OK;
}

void rc_jsonl_abort(rc_jsonl_input *input) { (void)finish(input, 1); }
