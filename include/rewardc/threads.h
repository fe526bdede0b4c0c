/* Thread count for OpenMP loops and OpenBLAS, set once by the CLI. */
#ifndef REWARDC_THREADS_H
#define REWARDC_THREADS_H

/* n <= 0 keeps the defaults. Returns the count in effect. */
int rc_set_num_threads(int n);

#endif
