/* An exclusive lock on a folder (see rewardc/io.h): flock on DIR/.rewardc.lock,
 * which the kernel releases when the holder dies, however it dies; the file
 * holds the holder's pid for the message a second process gets. */
#define _DEFAULT_SOURCE /* flock */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rewardc/io.h"

#define LOCK_NAME ".rewardc.lock"

struct rc_dir_lock {
    int fd;
    char path[4096];
    char dir[4096];
    int created_dir;
};

static long read_pid(int fd) {
    char text[32] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    return n > 0 ? strtol(text, NULL, 10) : 0;
}

rc_status rc_dir_lock_acquire(const char *dir, rc_dir_lock **out) {
    *out = NULL;
    rc_dir_lock *lock = calloc(1, sizeof *lock);
    if (!lock) return rc_fail(RC_ERR_OOM, "locking %s", dir);
    lock->fd = -1;
    snprintf(lock->dir, sizeof lock->dir, "%s", dir);
    rc_status st = rc_path_join(lock->path, sizeof lock->path, dir, LOCK_NAME);
    lock->created_dir = !rc_path_is_dir(dir);
    if (st == RC_OK) st = rc_mkdir_p(dir);
    /* The file may be unlinked by a holder releasing it between our open and
     * our flock: then we hold a lock on a file nobody else will open, so try
     * again until the locked file is the one the path names. */
    for (int attempt = 0; st == RC_OK; attempt++) {
        int fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            st = rc_fail(RC_ERR_IO, "cannot create the lock file %s: %s", lock->path, strerror(errno));
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            long pid = read_pid(fd);
            close(fd);
            if (err == EWOULDBLOCK) {
                if (pid > 0)
                    st = rc_fail(RC_ERR_INVALID_ARG, "%s is in use by another rewardc process (pid %ld); "
                                 "wait for it to finish or use another folder", dir, pid);
                else
                    st = rc_fail(RC_ERR_INVALID_ARG, "%s is in use by another rewardc process (%s is locked)",
                                 dir, lock->path);
            } else {
                st = rc_fail(RC_ERR_IO, "cannot lock %s: %s", lock->path, strerror(err));
            }
            break;
        }
        struct stat held, named;
        if (fstat(fd, &held) != 0 || stat(lock->path, &named) != 0 || held.st_ino != named.st_ino ||
            held.st_dev != named.st_dev) {
            close(fd);
            if (attempt < 100) continue;
            st = rc_fail(RC_ERR_IO, "cannot lock %s: it keeps being replaced", lock->path);
            break;
        }
        long previous = read_pid(fd);
        if (previous > 0 && previous != (long)getpid())
            fprintf(stderr, "rewardc: note: taking over the lock on %s left by pid %ld, which is no "
                    "longer holds it\n", dir, previous);
        char text[32];
        int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
            st = rc_fail(RC_ERR_IO, "cannot write %s: %s", lock->path, strerror(errno));
            close(fd);
            break;
        }
        lock->fd = fd;
        break;
    }
    if (st != RC_OK) {
        if (lock->created_dir) rmdir(dir);
        free(lock);
        return st;
    }
    *out = lock;
    return RC_OK;
}

void rc_dir_lock_release(rc_dir_lock *lock) {
    if (!lock) return;
    /* unlink while still holding it, so no one locks the old file after us */
    unlink(lock->path);
    close(lock->fd);
    if (lock->created_dir) rmdir(lock->dir); /* only if the run left it empty */
    free(lock);
}
