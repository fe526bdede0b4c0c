/* Whole-file reads into a NUL-terminated heap buffer. */
#include "rewardc/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

rc_status rc_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rc_fail(RC_ERR_IO, "cannot open %s: %s", path, strerror(errno));

    /* Grow as we go rather than trusting a size from stat: pipes and
     * /proc-style files report 0, and the file may change under us. */
    size_t cap = 64 * 1024, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return rc_fail(RC_ERR_OOM, "reading %s: cannot allocate %zu bytes", path, cap + 1);
    }
    for (;;) {
        if (used == cap) {
            if (cap > ((size_t)-1 - 1) / 2) {
                free(buf);
                fclose(f);
                return rc_fail(RC_ERR_OOM, "reading %s: file too large", path);
            }
            size_t new_cap = cap * 2;
            char *grown = realloc(buf, new_cap + 1);
            if (!grown) {
                free(buf);
                fclose(f);
                return rc_fail(RC_ERR_OOM, "reading %s: cannot allocate %zu bytes", path, new_cap + 1);
            }
            buf = grown;
            cap = new_cap;
        }
        size_t got = fread(buf + used, 1, cap - used, f);
        used += got;
        if (got == 0 || used < cap) {
            if (ferror(f)) {
                int err = errno;
                free(buf);
                fclose(f);
                return rc_fail(RC_ERR_IO, "reading %s failed: %s", path, strerror(err));
            }
            if (feof(f)) break;
        }
    }
    fclose(f);
    buf[used] = '\0';
    *data = buf;
    if (len) *len = used;
    return RC_OK;
}
