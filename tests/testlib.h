/* Minimal test harness shared by the tests/test_*.c binaries.
 * CHECK records a failure and continues; test_finish() prints a summary line
 * and returns the process exit code (non-zero if any check failed). */
#ifndef REWARDC_TESTLIB_H
#define REWARDC_TESTLIB_H

#include <stddef.h>
#include <stdio.h>

extern int test_checks_passed;
extern int test_checks_failed;

void test_fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define CHECK(cond, ...)                                        \
    do {                                                        \
        if (cond) test_checks_passed++;                         \
        else test_fail_at(__FILE__, __LINE__, __VA_ARGS__);     \
    } while (0)

/* Paths from the environment set by tests/CMakeLists.txt, with fallbacks
 * relative to the build directory. Returned strings are static. */
const char *test_data_dir(void);   /* REWARDC_DATA   (../shared/data)   */
const char *test_golden_dir(void); /* REWARDC_GOLDEN (<repo>/golden)    */
const char *test_tmp_dir(void);    /* REWARDC_TMP, created on first use */

/* Normalised mean squared error sum((a-b)^2)/sum(a^2) (a is the reference);
 * 0 when both are all zeros. max_abs receives the largest |a-b|. */
double test_nmse(const float *ref, const float *got, size_t n, double *max_abs);

/* Prints "<name>: N passed, N failed" and returns the exit code. */
int test_finish(const char *name);

/* Exit code ctest treats as "skipped" (SKIP_RETURN_CODE). */
enum { TEST_SKIP = 77 };

#endif
