/* PLACEHOLDER: a simple walk until the parallel one lands. */
#include "walk.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
static struct walk_result *cur;
static int visit(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)p; (void)st; (void)f;
	if (flag == FTW_F) cur->files++;
	else if (flag == FTW_D || flag == FTW_DP) cur->dirs++;
	else if (flag == FTW_DNR) { cur->dirs++; cur->unreadable++; }
	else cur->other++;
	return 0;
}
int walk_count(const char *root, int nthreads, struct walk_result *res,
	       void (*on_error)(const char *path, int err, void *arg), void *arg)
{
	struct timespec a, b;
	(void)nthreads; (void)on_error; (void)arg;
	memset(res, 0, sizeof(*res));
	cur = res;
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (nftw(root, visit, 64, FTW_PHYS) < 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &b);
	res->seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	return 0;
}
int walk_cmd_count(const char *path, int nthreads, int json)
{
	struct walk_result r;
	int rc = walk_count(path, nthreads, &r, NULL, NULL);
	if (rc < 0) { fprintf(stderr, "efsmt-provisioner: count: %s: %s\n", path, strerror(-rc)); return 2; }
	printf(json ? "{\"files\":%llu,\"dirs\":%llu,\"other\":%llu,\"unreadable\":%llu,\"seconds\":%.3f}\n"
		    : "files=%llu dirs=%llu other=%llu unreadable=%llu seconds=%.3f\n",
	       (unsigned long long)r.files, (unsigned long long)r.dirs, (unsigned long long)r.other,
	       (unsigned long long)r.unreadable, r.seconds);
	return r.unreadable ? 1 : 0;
}
