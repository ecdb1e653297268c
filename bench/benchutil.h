/* benchutil.h - what the benchmark programs share. */
#ifndef EFSMT_BENCHUTIL_H
#define EFSMT_BENCHUTIL_H

#include <stddef.h>

/* Monotonic time in seconds; exits on failure. */
double bench_now(void);
/* Parse a decimal in [min, max]; 0 or -1. */
int bench_parse_long(const char *s, long min, long max, long *out);
/* The small-file contents (smallfiles.c, nfsfiles.c): a malloc'd stream of
 * len + BENCH_PAT_PERIOD bytes; file i holds the size bytes at i % period. */
#define BENCH_PAT_PERIOD 251 /* prime: neighbouring files get different contents */
unsigned char *bench_pattern(size_t len);

#endif
