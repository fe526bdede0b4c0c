/* Shared test harness: failure counting, paths, NMSE. */
#include "testlib.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

int test_checks_passed = 0;
int test_checks_failed = 0;

void test_fail_at(const char *file, int line, const char *fmt, ...) {
    test_checks_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

const char *test_data_dir(void) { return env_or("REWARDC_DATA", "../shared/data"); }
const char *test_golden_dir(void) { return env_or("REWARDC_GOLDEN", "golden"); }

const char *test_tmp_dir(void) {
    const char *dir = env_or("REWARDC_TMP", "/tmp/rewardc-test");
    mkdir(dir, 0755);
    return dir;
}

double test_nmse(const float *ref, const float *got, size_t n, double *max_abs) {
    double err = 0.0, norm = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)ref[i] - (double)got[i];
        if (!isfinite(got[i])) d = INFINITY;
        err += d * d;
        norm += (double)ref[i] * (double)ref[i];
        if (fabs(d) > worst) worst = fabs(d);
    }
    if (max_abs) *max_abs = worst;
    if (norm == 0.0) return err == 0.0 ? 0.0 : INFINITY;
    return err / norm;
}

int test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_checks_passed, test_checks_failed);
    return test_checks_failed ? 1 : 0;
}
