/* The aclImdb folder layout (Maas et al. 2011): DIR/pos and DIR/neg hold one
 * review per file named ID_RATING.txt (ratings 7-10 positive, 1-4 negative).
 * Files are read in ascending id order so the result does not depend on the
 * order the file system lists them in. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/records.h"
#include "rewardc/data.h"
#include "rewardc/io.h"

typedef struct {
    unsigned long id;
    int rating;
    char *name;
} review_file;

/* Parses "ID_RATING.txt"; 0 if the name does not have that form. */
static int parse_review_name(const char *name, unsigned long *id, int *rating) {
    const char *p = name;
    if (*p < '0' || *p > '9') return 0;
    unsigned long value = 0;
    while (*p >= '0' && *p <= '9') {
        if (value > 400000000ul) return 0; /* far beyond any IMDB id; avoids overflow */
        value = value * 10 + (unsigned long)(*p++ - '0');
    }
    if (*p++ != '_') return 0;
    if (*p < '0' || *p > '9') return 0;
    int r = 0;
    while (*p >= '0' && *p <= '9' && r < 100) r = r * 10 + (*p++ - '0');
    if (strcmp(p, ".txt") != 0) return 0;
    *id = value;
    *rating = r;
    return 1;
}

static int compare_review_files(const void *a, const void *b) {
    const review_file *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static void free_review_files(review_file *files, size_t n) {
    for (size_t i = 0; i < n; i++) free(files[i].name);
    free(files);
}

/* Lists the review files of one class folder, sorted by id. */
static rc_status list_reviews(const char *folder, review_file **out, size_t *n_out,
                              rc_prepare_report *report) {
    DIR *dir = opendir(folder);
    if (!dir) return rc_fail(RC_ERR_IO, "cannot open folder %s: %s", folder, strerror(errno));
    review_file *files = NULL;
    size_t n = 0, capacity = 0;
    rc_status st = RC_OK;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        unsigned long id;
        int rating;
        if (!parse_review_name(entry->d_name, &id, &rating)) {
            if (report) report->dropped[RC_DROP_IGNORED_FILE]++;
            continue;
        }
        if (n == capacity) {
            capacity = capacity ? capacity * 2 : 1024;
            review_file *bigger = realloc(files, capacity * sizeof *files);
            if (!bigger) {
                st = rc_fail(RC_ERR_OOM, "cannot list %s", folder);
                break;
            }
            files = bigger;
        }
        files[n].id = id;
        files[n].rating = rating;
        files[n].name = malloc(strlen(entry->d_name) + 1);
        if (!files[n].name) {
            st = rc_fail(RC_ERR_OOM, "cannot list %s", folder);
            break;
        }
        strcpy(files[n].name, entry->d_name);
        n++;
    }
    closedir(dir);
    if (st != RC_OK) {
        free_review_files(files, n);
        return st;
    }
    if (n > 1) qsort(files, n, sizeof *files, compare_review_files);
    *out = files;
    *n_out = n;
    return RC_OK;
}

/* A bad review file aborts the read, or is counted and skipped under skip_bad. */
static rc_status reject_file(const char *path, rc_drop_reason reason,
                             const rc_read_options *options, rc_prepare_report *report) {
    char message[600];
    snprintf(message, sizeof message, "%s: %s", path, rc_last_error());
    if (options->skip_bad) {
        if (report) rc_prepare_report_skip(report, reason, message);
        return RC_OK;
    }
    return rc_fail(RC_ERR_FORMAT, "%s", message);
}

static rc_status read_class(const char *dir, const char *class_name, int label,
                            const rc_read_options *options, rc_labeled_texts *texts,
                            rc_prepare_report *report) {
    char folder[4096];
    rc_status st = rc_path_join(folder, sizeof folder, dir, class_name);
    if (st != RC_OK) return st;
    review_file *files = NULL;
    size_t n = 0;
    st = list_reviews(folder, &files, &n, report);
    if (st != RC_OK) return st;
    for (size_t i = 0; i < n && st == RC_OK; i++) {
        char path[4096];
        st = rc_path_join(path, sizeof path, folder, files[i].name);
        if (st != RC_OK) break;
        if (report) report->records_read++;
        /* The rating decides the class; a mismatch means a misplaced file. */
        int rating_ok = label ? (files[i].rating >= 7 && files[i].rating <= 10)
                              : (files[i].rating >= 1 && files[i].rating <= 4);
        if (!rating_ok) {
            rc_fail(RC_ERR_FORMAT, "rating %d does not belong in %s/ (pos is 7-10, neg 1-4)",
                    files[i].rating, class_name);
            st = reject_file(path, RC_DROP_INVALID_VALUE, options, report);
            continue;
        }
        char *text = NULL;
        size_t len = 0;
        st = rc_read_file(path, &text, &len);
        if (st != RC_OK) break;
        if (len == 0 || strlen(text) != len || !utf8_is_valid(text, len)) {
            rc_fail(RC_ERR_FORMAT, "%s", len == 0 ? "empty review" : "not valid UTF-8 text");
            free(text);
            st = reject_file(path, RC_DROP_INVALID_VALUE, options, report);
            continue;
        }
        st = rc_labeled_texts_append(texts, text, label);
        free(text);
    }
    free_review_files(files, n);
    return st;
}

rc_status rc_imdb_read_dir(const char *dir, const rc_read_options *options,
                           rc_labeled_texts *out, rc_prepare_report *report) {
    static const rc_read_options defaults = {0, 0, 0};
    if (!options) options = &defaults;
    rc_labeled_texts texts = {0};
    rc_status st = read_class(dir, "neg", 0, options, &texts, report);
    if (st == RC_OK) st = read_class(dir, "pos", 1, options, &texts, report);
    if (st != RC_OK) {
        rc_labeled_texts_free(&texts);
        return st;
    }
    *out = texts;
    return RC_OK;
}
