#define _POSIX_C_SOURCE 200809L
#include "benchutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double bench_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime");
		exit(1);
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

unsigned char *bench_pattern(size_t len)
{
	unsigned char *p = malloc(len + BENCH_PAT_PERIOD);

	/* a non-repeating-looking byte stream */
	for (size_t j = 0; p && j < len + BENCH_PAT_PERIOD; j++)
		p[j] = (unsigned char)((j * 2654435761u) >> 13);
	return p;
}
