/* rc_dist_compare A B MAX_NMSE: compares two safetensors files (or model
 * folders) as the data-parallel tests need: the normalised MSE of all their
 * elements together, sum((a-b)^2) / sum(a^2), the parameters as one vector.
 * Prints it and the worst single tensor's (for information: a tensor whose
 * true gradient is zero, as a key projection's bias, moves by AdamW-scaled
 * rounding noise alone, which no two summation orders share); exits 1 when
 * the whole is above MAX_NMSE or the files hold different tensors or shapes,
 * 2 on usage or read errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/safetensors.h"

static double ratio(double err, double norm) {
    if (norm == 0.0) return err == 0.0 ? 0.0 : INFINITY;
    return err / norm;
}

/* Adds the squared differences and squares of one tensor. */
static void accumulate(const float *a, const float *b, size_t n, double *err, double *norm) {
    for (size_t i = 0; i < n; i++) {
        double d = isfinite(b[i]) ? (double)a[i] - (double)b[i] : INFINITY;
        *err += d * d;
        *norm += (double)a[i] * (double)a[i];
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: rc_dist_compare A.safetensors B.safetensors MAX_NMSE\n");
        return 2;
    }
    double limit = atof(argv[3]);
    rc_safetensors *a = NULL, *b = NULL;
    if (rc_st_open(argv[1], &a) != RC_OK || rc_st_open(argv[2], &b) != RC_OK) {
        fprintf(stderr, "rc_dist_compare: %s\n", rc_last_error());
        return 2;
    }
    int status = rc_st_count(a) == rc_st_count(b) ? 0 : 1;
    if (status) fprintf(stderr, "rc_dist_compare: %zu tensors against %zu\n", rc_st_count(a), rc_st_count(b));
    double worst = 0.0, total_err = 0.0, total_norm = 0.0;
    const char *worst_name = "";
    for (size_t i = 0; i < rc_st_count(a) && status == 0; i++) {
        const rc_tensor_view *ta = rc_st_tensor_at(a, i), *tb = rc_st_find(b, ta->name);
        if (!tb || tb->n_elements != ta->n_elements) {
            fprintf(stderr, "rc_dist_compare: %s missing or reshaped in %s\n", ta->name, argv[2]);
            status = 1;
            break;
        }
        size_t n = (size_t)ta->n_elements;
        float *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
        if (!x || !y || rc_tensor_to_f32(ta, x, n) != RC_OK || rc_tensor_to_f32(tb, y, n) != RC_OK) {
            fprintf(stderr, "rc_dist_compare: %s: %s\n", ta->name, rc_last_error());
            status = 2;
        } else {
            double err = 0.0, norm = 0.0;
            accumulate(x, y, n, &err, &norm);
            total_err += err;
            total_norm += norm;
            double e = ratio(err, norm);
            if (e > worst || i == 0) {
                worst = e;
                worst_name = ta->name;
            }
        }
        free(x);
        free(y);
    }
    if (status == 0) {
        double whole = ratio(total_err, total_norm);
        printf("NMSE %.3e (worst tensor %.3e: %s)\n", whole, worst, worst_name);
        if (!(whole <= limit)) status = 1;
    }
    rc_st_close(a);
    rc_st_close(b);
    return status;
}
