/* PLACEHOLDER until the parallel walk lands (same API). */
#ifndef EFSMT_WALK_H
#define EFSMT_WALK_H
#include <stdint.h>
struct walk_result {
	uint64_t files, dirs, other, unreadable;
	double seconds;
};
int walk_count(const char *root, int nthreads, struct walk_result *res,
	       void (*on_error)(const char *path, int err, void *arg), void *arg);
int walk_cmd_count(const char *path, int nthreads, int json);
#endif
