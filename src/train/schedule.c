/* Learning-rate schedules, as transformers' get_scheduler lambdas. */
#include <math.h>
#include <string.h>

#include "rewardc/train.h"

static const struct {
    const char *name;
    rc_schedule_kind kind;
} schedules[] = {
    {"constant", RC_SCHED_CONSTANT},
    {"constant_with_warmup", RC_SCHED_CONSTANT_WITH_WARMUP},
    {"linear", RC_SCHED_LINEAR},
    {"cosine", RC_SCHED_COSINE},
};
enum { N_SCHEDULES = sizeof schedules / sizeof schedules[0] };

rc_status rc_schedule_parse(const char *name, rc_schedule_kind *out) {
    for (int i = 0; i < N_SCHEDULES; i++)
        if (!strcmp(name, schedules[i].name)) {
            *out = schedules[i].kind;
            return RC_OK;
        }
    return rc_fail(RC_ERR_INVALID_ARG,
                   "unknown lr_scheduler_type '%s' (constant, constant_with_warmup, linear, cosine)",
                   name);
}

const char *rc_schedule_name(rc_schedule_kind kind) {
    for (int i = 0; i < N_SCHEDULES; i++)
        if (schedules[i].kind == kind) return schedules[i].name;
    return "?";
}

double rc_schedule_factor(rc_schedule_kind kind, long step, long warmup, long total) {
    if (kind == RC_SCHED_CONSTANT) return 1.0;
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    long decay_steps = total - warmup > 1 ? total - warmup : 1;
    switch (kind) {
    case RC_SCHED_CONSTANT_WITH_WARMUP: return 1.0;
    case RC_SCHED_LINEAR: {
        double f = (double)(total - step) / (double)decay_steps;
        return f > 0.0 ? f : 0.0;
    }
    case RC_SCHED_COSINE: {
        const double pi = 3.14159265358979323846;
        double progress = (double)(step - warmup) / (double)decay_steps;
        double f = 0.5 * (1.0 + cos(pi * 0.5 * 2.0 * progress)); /* num_cycles = 0.5 */
        return f > 0.0 ? f : 0.0;
    }
    default: return 1.0;
    }
}
