/* Growable lists of preference pairs and of labelled texts. */
#include <stdlib.h>
#include <string.h>

#include "rewardc/data.h"

static char *copy_string(const char *text) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (copy) memcpy(copy, text, len + 1);
    return copy;
}

/* Doubles the capacity of an array of `item_size` items when it is full. */
static rc_status grow(void **items, size_t n, size_t *capacity, size_t item_size) {
    if (n < *capacity) return RC_OK;
    size_t wanted = *capacity ? *capacity * 2 : 64;
    void *bigger = realloc(*items, wanted * item_size);
    if (!bigger) return rc_fail(RC_ERR_OOM, "cannot grow a list to %zu items", wanted);
    *items = bigger;
    *capacity = wanted;
    return RC_OK;
}

rc_status rc_pair_list_append(rc_pair_list *list, const char *prompt, const char *chosen,
                              const char *rejected) {
    void *items = list->items;
    rc_status st = grow(&items, list->n, &list->capacity, sizeof(rc_pair));
    list->items = items;
    if (st != RC_OK) return st;
    rc_pair pair = {0};
    pair.weight = 1.0; /* neutral values for sources without them */
    pair.prompt = copy_string(prompt ? prompt : "");
    pair.chosen = copy_string(chosen);
    pair.rejected = copy_string(rejected);
    if (!pair.prompt || !pair.chosen || !pair.rejected) {
        free(pair.prompt);
        free(pair.chosen);
        free(pair.rejected);
        return rc_fail(RC_ERR_OOM, "cannot copy the texts of pair %zu", list->n + 1);
    }
    list->items[list->n++] = pair;
    return RC_OK;
}

rc_status rc_pair_list_append_messages(rc_pair_list *list, const char *prompt_messages,
                                       const char *chosen_messages, const char *rejected_messages) {
    rc_status st = rc_pair_list_append(list, "", "", "");
    if (st != RC_OK) return st;
    rc_pair *pair = &list->items[list->n - 1];
    pair->prompt_messages = prompt_messages ? copy_string(prompt_messages) : NULL;
    pair->chosen_messages = copy_string(chosen_messages);
    pair->rejected_messages = copy_string(rejected_messages);
    if ((prompt_messages && !pair->prompt_messages) || !pair->chosen_messages || !pair->rejected_messages) {
        rc_status fail = rc_fail(RC_ERR_OOM, "cannot copy the messages of pair %zu", list->n);
        list->n--;
        free(pair->prompt);
        free(pair->chosen);
        free(pair->rejected);
        free(pair->prompt_messages);
        free(pair->chosen_messages);
        free(pair->rejected_messages);
        return fail;
    }
    return RC_OK;
}

int rc_pair_is_conversational(const rc_pair *pair) { return pair->chosen_messages != NULL; }

void rc_pair_list_free(rc_pair_list *list) {
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].prompt);
        free(list->items[i].chosen);
        free(list->items[i].rejected);
        free(list->items[i].prompt_messages);
        free(list->items[i].chosen_messages);
        free(list->items[i].rejected_messages);
    }
    free(list->items);
    list->items = NULL;
    list->n = list->capacity = 0;
}

rc_status rc_labeled_texts_append(rc_labeled_texts *set, const char *text, int label) {
    if (label != 0 && label != 1)
        return rc_fail(RC_ERR_INVALID_ARG, "label must be 0 or 1, got %d", label);
    size_t capacity = set->capacity;
    void *texts = set->texts;
    rc_status st = grow(&texts, set->n, &capacity, sizeof(char *));
    set->texts = texts;
    if (st != RC_OK) return st;
    void *labels = set->labels;
    size_t label_capacity = set->capacity;
    st = grow(&labels, set->n, &label_capacity, sizeof(int));
    set->labels = labels;
    if (st != RC_OK) return st;
    set->capacity = capacity;
    char *copy = copy_string(text);
    if (!copy) return rc_fail(RC_ERR_OOM, "cannot copy text %zu", set->n + 1);
    set->texts[set->n] = copy;
    set->labels[set->n] = label;
    set->n++;
    return RC_OK;
}

void rc_labeled_texts_free(rc_labeled_texts *set) {
    for (size_t i = 0; i < set->n; i++) free(set->texts[i]);
    free(set->texts);
    free(set->labels);
    set->texts = NULL;
    set->labels = NULL;
    set->n = set->capacity = 0;
}
