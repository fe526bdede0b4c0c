/* Backend selection and misuse must give clear errors, never a crash:
 * unknown backend names, bad device indices (argument and the
 * REWARDC_OPENCL_DEVICE override), and, on every backend that starts
 * (cpu, opencl, cuda), transfers outside a buffer, an op whose view runs past
 * its buffer, a row index outside its table and an impossible allocation.
 * An op's error is reported once by the next sync() or download(), and the
 * backend works normally afterwards. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testlib.h"

/* The impossible allocation must come back as an error, not an ASan abort;
 * ASan reads this hook at startup, other builds ignore it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static int mentions(const char *text, const char *word) { return text && strstr(text, word); }

static void check_creation_errors(void) {
    rc_backend *be = (rc_backend *)&be; /* not NULL: the call must reset it */
    rc_status st = rc_backend_create("tpu", 0, &be);
    CHECK(st == RC_ERR_INVALID_ARG && be == NULL, "unknown backend: status %s", rc_status_name(st));
    CHECK(mentions(rc_last_error(), "tpu"), "unknown backend: message '%s' should name it",
          rc_last_error());

    st = rc_backend_create("cpu", -1, &be);
    CHECK(st == RC_ERR_INVALID_ARG && be == NULL, "negative index: status %s", rc_status_name(st));
    st = rc_backend_create("cpu", 1, &be);
    CHECK(st == RC_ERR_INVALID_ARG && be == NULL, "cpu device 1: status %s", rc_status_name(st));

    /* opencl: not compiled in, no device, or index out of range -- never OK */
    st = rc_backend_create("opencl", 9999, &be);
    CHECK(st != RC_OK && be == NULL, "opencl device 9999 was accepted");
#ifdef RC_HAVE_OPENCL
    CHECK(st == RC_ERR_INVALID_ARG || st == RC_ERR_BACKEND, "opencl device 9999: status %s (%s)",
          rc_status_name(st), rc_last_error());
    if (st == RC_ERR_INVALID_ARG)
        CHECK(mentions(rc_last_error(), "out of range") && mentions(rc_last_error(), "found"),
              "opencl device 9999: message '%s' should say how many devices exist",
              rc_last_error());
    printf("opencl device 9999: %s\n", rc_last_error());

    setenv("REWARDC_OPENCL_DEVICE", "not-a-number", 1);
    st = rc_backend_create("opencl", 0, &be);
    CHECK(st == RC_ERR_INVALID_ARG && be == NULL, "REWARDC_OPENCL_DEVICE=not-a-number: status %s",
          rc_status_name(st));
    CHECK(mentions(rc_last_error(), "REWARDC_OPENCL_DEVICE"),
          "bad REWARDC_OPENCL_DEVICE: message '%s' should name the variable", rc_last_error());
    setenv("REWARDC_OPENCL_DEVICE", "9999", 1);
    st = rc_backend_create("opencl", 0, &be); /* the variable overrides the argument */
    CHECK(st != RC_OK && be == NULL, "REWARDC_OPENCL_DEVICE=9999 was accepted");
    unsetenv("REWARDC_OPENCL_DEVICE");
#else
    CHECK(st == RC_ERR_UNSUPPORTED, "opencl not compiled in: status %s", rc_status_name(st));
#endif

    st = rc_backend_create("cuda", 9999, &be);
    CHECK(st != RC_OK && be == NULL, "cuda device 9999 was accepted");
#ifndef RC_HAVE_CUDA
    CHECK(st == RC_ERR_UNSUPPORTED, "cuda not compiled in: status %s", rc_status_name(st));
#endif
}

/* An op error must surface at the next sync (naming `what`), once. */
static void expect_reported(rc_backend *be, const char *op, const char *what) {
    rc_status st = be->sync(be);
    CHECK(st != RC_OK, "%s %s: sync did not report the error", be->name, op);
    CHECK(mentions(rc_last_error(), what), "%s %s: message '%s' should mention '%s'", be->name, op,
          rc_last_error(), what);
    st = be->sync(be);
    CHECK(st == RC_OK, "%s %s: the error was reported twice (%s)", be->name, op, rc_last_error());
}

static void check_misuse(rc_backend *be) {
    enum { N = 64, C = 8, ROWS = 4 };
    rc_buffer *buf = NULL, *ids = NULL;
    rc_status st = be->alloc(be, N, &buf);
    CHECK(st == RC_OK, "%s alloc: %s", be->name, rc_last_error());
    st = be->alloc(be, ROWS, &ids);
    CHECK(st == RC_OK, "%s alloc: %s", be->name, rc_last_error());
    if (!buf || !ids) return;
    float host[N + 8];
    for (int i = 0; i < N + 8; i++) host[i] = (float)i;
    rc_view at0 = {buf, 0};

    /* transfers outside the buffer */
    rc_view near_end = {buf, N - 4};
    st = be->upload(be, near_end, host, 5);
    CHECK(st == RC_ERR_INVALID_ARG, "%s upload past the end: status %s", be->name,
          rc_status_name(st));
    st = be->download(be, host, near_end, 5);
    CHECK(st == RC_ERR_INVALID_ARG, "%s download past the end: status %s", be->name,
          rc_status_name(st));
    rc_view beyond = {buf, N + 1};
    st = be->upload(be, beyond, host, 1);
    CHECK(st == RC_ERR_INVALID_ARG, "%s upload at offset > size: status %s", be->name,
          rc_status_name(st));

    /* an op whose view runs past its buffer: skipped, reported at sync */
    st = be->upload(be, at0, host, N);
    CHECK(st == RC_OK, "%s upload: %s", be->name, rc_last_error());
    rc_view half = {buf, N / 2};
    be->add(be, half, at0, half, N / 2 + 1);
    expect_reported(be, "add past the end", "add");
    float back[N];
    st = be->download(be, back, at0, N);
    CHECK(st == RC_OK, "%s download after a reported error: %s", be->name, rc_last_error());
    int intact = 1;
    for (int i = 0; i < N; i++) intact &= back[i] == (float)i;
    CHECK(intact, "%s: the rejected add still wrote to the buffer", be->name);

    /* more attention queries than keys: refused by name */
    be->attention_softmax_forward(be, at0, at0, (rc_view){ids, 0}, 1, 1, 3, 2);
    expect_reported(be, "softmax with Tq > Tk", "queries");
    be->attention_softmax_backward(be, at0, at0, at0, 1, 1, 3, 2);
    expect_reported(be, "softmax backward with Tq > Tk", "queries");

    /* a row index outside the table ([N/C] rows of C): reported by download */
    int32_t bad_ids[ROWS] = {0, 1, N / C, 2};
    st = be->upload(be, (rc_view){ids, 0}, bad_ids, ROWS);
    CHECK(st == RC_OK, "%s upload ids: %s", be->name, rc_last_error());
    rc_buffer *out = NULL;
    st = be->alloc(be, ROWS * C, &out);
    CHECK(st == RC_OK, "%s alloc: %s", be->name, rc_last_error());
    if (out) {
        be->embedding_forward(be, (rc_view){out, 0}, (rc_view){ids, 0}, at0, ROWS, C, 0);
        float rows_back[ROWS * C];
        st = be->download(be, rows_back, (rc_view){out, 0}, ROWS * C);
        CHECK(st == RC_ERR_INVALID_ARG, "%s embedding with id %d of %d rows: status %s", be->name,
              N / C, N / C, rc_status_name(st));
        CHECK(mentions(rc_last_error(), "ids"), "%s bad id: message '%s' should name the ids",
              be->name, rc_last_error());
        printf("%s bad id: %s\n", be->name, rc_last_error());
        st = be->sync(be);
        CHECK(st == RC_OK, "%s: the bad id was reported twice (%s)", be->name, rc_last_error());
        be->free(be, out);
    }

    /* the backend still works: a valid op after the reports */
    be->scale(be, at0, 2.0f, N);
    st = be->download(be, back, at0, N);
    CHECK(st == RC_OK, "%s download: %s", be->name, rc_last_error());
    CHECK(back[N - 1] == 2.0f * (float)(N - 1), "%s scale after errors: got %g", be->name,
          (double)back[N - 1]);

    /* an allocation no machine can satisfy */
    rc_buffer *huge = (rc_buffer *)&huge;
    st = be->alloc(be, SIZE_MAX / 8, &huge);
    CHECK(st == RC_ERR_OOM && huge == NULL, "%s alloc of SIZE_MAX/8 elements: status %s",
          be->name, rc_status_name(st));
    printf("%s huge alloc: %s\n", be->name, rc_last_error());

    be->free(be, ids);
    be->free(be, buf);
}

int main(void) {
    check_creation_errors();
    const char *names[] = {"cpu", "opencl", "cuda"};
    for (int i = 0; i < 3; i++) {
        rc_backend *be = NULL;
        if (rc_backend_create(names[i], 0, &be) != RC_OK) {
            printf("%s: not available (%s)\n", names[i], rc_last_error());
            continue;
        }
        printf("%s: %s\n", names[i], be->device);
        check_misuse(be);
        rc_backend_destroy(be);
    }
    return test_finish("test_backend_errors");
}
