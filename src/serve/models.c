/* Model generations. Jobs hold the generation whose tokenizer encoded them
 * and are scored by it, so a reload never mixes one model's ids with
 * another's weights; a replaced generation lives until its last job is
 * answered. Loading and freeing happen on the model thread only. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

void serve_registry_init(serve_registry *reg, const serve_options *opt) {
    memset(reg, 0, sizeof *reg);
    pthread_mutex_init(&reg->lock, NULL);
    reg->backend = opt->backend;
    reg->device = opt->device;
    reg->batch_rows = opt->batch_rows;
    reg->share_prefix = opt->share_prefix;
}

static void model_free(serve_model *m) {
    rc_reward_model_close(&m->rm);
    free(m->dir);
    free(m->name);
    free(m);
}

/* The folder's last path component: what /v1/models calls the model. */
static char *model_name(const char *dir) {
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    char *name = malloc(end - start + 1);
    if (name) {
        memcpy(name, dir + start, end - start);
        name[end - start] = '\0';
    }
    return name;
}

rc_status serve_registry_load(serve_registry *reg, const char *dir) {
    serve_model *m = calloc(1, sizeof *m);
    if (!m) return rc_fail(RC_ERR_OOM, "cannot allocate a model");
    rc_status st = rc_reward_model_open(dir, reg->backend, reg->device, reg->batch_rows, &m->rm);
    if (st != RC_OK) {
        free(m);
        return st;
    }
    m->rm.share_prefix = reg->share_prefix;
    m->dir = strdup(dir);
    m->name = model_name(dir);
    if (!m->dir || !m->name) {
        model_free(m);
        return rc_fail(RC_ERR_OOM, "cannot allocate a model's name");
    }
    pthread_mutex_lock(&reg->lock);
    m->version = ++reg->last_version;
    m->refs = 1; /* the registry's own reference, dropped when replaced */
    serve_model *old = reg->current;
    reg->current = m;
    if (old) {
        old->refs--;
        old->next_retired = reg->retired;
        reg->retired = old;
    }
    pthread_mutex_unlock(&reg->lock);
    serve_registry_collect(reg);
    return RC_OK;
}

serve_model *serve_registry_acquire(serve_registry *reg) {
    pthread_mutex_lock(&reg->lock);
    serve_model *m = reg->current;
    if (m) m->refs++;
    pthread_mutex_unlock(&reg->lock);
    return m;
}

void serve_registry_release(serve_registry *reg, serve_model *m) {
    if (!m) return;
    pthread_mutex_lock(&reg->lock);
    m->refs--;
    pthread_mutex_unlock(&reg->lock);
}

void serve_registry_collect(serve_registry *reg) {
    serve_model *unused = NULL;
    pthread_mutex_lock(&reg->lock);
    for (serve_model **p = &reg->retired; *p;) {
        serve_model *m = *p;
        if (m->refs == 0) {
            *p = m->next_retired;
            m->next_retired = unused;
            unused = m;
        } else {
            p = &m->next_retired;
        }
    }
    pthread_mutex_unlock(&reg->lock);
    while (unused) {
        serve_model *next = unused->next_retired;
        model_free(unused);
        unused = next;
    }
}

void serve_registry_destroy(serve_registry *reg) {
    for (serve_model *m = reg->retired; m;) {
        serve_model *next = m->next_retired;
        model_free(m);
        m = next;
    }
    if (reg->current) model_free(reg->current);
    pthread_mutex_destroy(&reg->lock);
    memset(reg, 0, sizeof *reg);
}
