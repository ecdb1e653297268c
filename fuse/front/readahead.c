#include "readahead.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/mountinfo.h"

/* FUSE's INIT can only lower the default 128 KiB; with a window this size
 * sequential reads keep several 1 MiB READs in flight instead of one
 * 128 KiB READ at a time. Past two lanes, 2 MiB more per lane, so that
 * one file's READs keep every lane busy, up to EFSMT_READ_AHEAD_MAX_KB:
 * the kernel holds back more than 9 reads in flight (3/4 of FUSE's
 * default max_background of 12). */
#define EFSMT_READ_AHEAD_KB	4096
#define EFSMT_READ_AHEAD_LANE_KB 2048
#define EFSMT_READ_AHEAD_MAX_KB	8192

static char readahead_path[64]; /* the mount's read_ahead_kb in sysfs */
static int readahead_kb = EFSMT_READ_AHEAD_KB;
static atomic_int readahead_set;

/* The mount's backing device from mountinfo (a stat of the mount point
 * would need this daemon to answer it). */
void readahead_find(const char *mountpoint, int lanes)
{
	int kb = lanes > 2 ? lanes * EFSMT_READ_AHEAD_LANE_KB : EFSMT_READ_AHEAD_KB;
	readahead_kb = kb < EFSMT_READ_AHEAD_MAX_KB ? kb : EFSMT_READ_AHEAD_MAX_KB;
	char line[8192], dev[32] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char majmin[32], mnt[4096];
		if (sscanf(line, "%*s %*s %31s %*s %4095s", majmin, mnt) != 2)
			continue;
		mountinfo_unescape(mnt);
		if (strcmp(mnt, mountpoint) == 0)
			snprintf(dev, sizeof(dev), "%s", majmin); /* the last one is ours */
	}
	fclose(f);
	if (dev[0])
		snprintf(readahead_path, sizeof(readahead_path), "/sys/class/bdi/%s/read_ahead_kb",
			 dev);
}

void readahead_raise(void)
{
	if (atomic_load_explicit(&readahead_set, memory_order_relaxed) ||
	    atomic_exchange(&readahead_set, 1) || !readahead_path[0])
		return;
	const char *path = readahead_path;
	FILE *f = fopen(path, "we");
	int ok = f && fprintf(f, "%d\n", readahead_kb) > 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok)
		log_debug("msg=readahead-unchanged path=%s", path);
}
