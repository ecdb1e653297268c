/* benchutil.h - what the benchmark programs share. */
#ifndef EFSMT_BENCHUTIL_H
#define EFSMT_BENCHUTIL_H

/* Monotonic time in seconds; exits on failure. */
double bench_now(void);
/* Parse a decimal in [min, max]; 0 or -1. */
int bench_parse_long(const char *s, long min, long max, long *out);

#endif
