#include "readahead.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/mountinfo.h"

/* FUSE's INIT can only lower the default 128 KiB; with a window this size
 * sequential reads keep several 1 MiB READs in flight instead of one
 * 128 KiB READ at a time. Past two lanes, 4 MiB more per lane, so that
 * one file's READs keep every lane busy (bench/run-lanes.sh, 4 lanes: 2 MiB
 * per lane read 0.83 of 4 lanes' worth, 3 MiB 0.87, 4 MiB 0.91), up to
 * EFSMT_READ_AHEAD_MAX_KB. The
 * kernel holds back reads past 3/4 of max_background (default 12), so
 * INIT raises it to fit the window (readahead_background). */
#define EFSMT_READ_AHEAD_KB	4096
#define EFSMT_READ_AHEAD_LANE_KB 4096
#define EFSMT_READ_AHEAD_MAX_KB	16384
#define EFSMT_BACKGROUND_MIN	12 /* FUSE's default */

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

unsigned readahead_background(void)
{
	/* the window's 1 MiB READs and room for writes and releases */
	unsigned n = (unsigned)readahead_kb / 1024 + 8;
	return n > EFSMT_BACKGROUND_MIN ? n : EFSMT_BACKGROUND_MIN;
}
