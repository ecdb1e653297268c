/*
 * seqio: sequential write/read throughput benchmark for efsmt.
 *
 *   seqio FILE [-m MIB] [-b KIB] [-p PHASES] [--no-drop]
 *
 * write: open(O_CREAT|O_WRONLY|O_TRUNC), write MIB MiB in blocks of KIB KiB,
 *        fsync, close; the timer covers all of it, fsync included.
 * read:  sync and drop the page cache (echo 3 > /proc/sys/vm/drop_caches, so
 *        root is needed; this drops the FUSE mount's cache and the backing
 *        file system's cache alike), then open, read to EOF, close, timed.
 *        Every block carries its index, checked with a sample of its
 *        bytes, so a short or misordered read is an error.
 *
 * Each phase prints one line on stdout, MB = 10^6 bytes, MiB = 2^20 bytes:
 *
 *   phase=seqwrite bytes=1073741824 block=1048576 seconds=1.234567 MB_per_s=869.7 MiB_per_s=829.4
 *
 * -p PHASES: comma list of write,read (default write,read). The file is
 * left in place (the caller removes it). --no-drop skips the cache drop
 * (the read then measures cached data; the output says dropped=0).
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

static const char *prog = "seqio";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s FILE [-m MIB] [-b KIB] [-p PHASES] [--no-drop]\n"
		"  -m MIB     file size in MiB (default 1024)\n"
		"  -b KIB     block size in KiB (default 1024)\n"
		"  -p PHASES  comma list of write,read (default write,read)\n"
		"  --no-drop  do not drop the page cache before reading\n",
		prog);
}

static void report(const char *phase, uint64_t bytes, size_t block, double secs,
		   int dropped)
{
	double mb = secs > 0 ? (double)bytes / secs / 1e6 : 0.0;
	double mib = secs > 0 ? (double)bytes / secs / 1048576.0 : 0.0;

	printf("phase=%s bytes=%llu block=%zu seconds=%.6f MB_per_s=%.1f MiB_per_s=%.1f",
	       phase, (unsigned long long)bytes, block, secs, mb, mib);
	if (dropped >= 0)
		printf(" dropped=%d", dropped);
	printf("\n");
	fflush(stdout);
}

/* Block b starts with its index (8 bytes) and the rest is a fixed pattern. */
static void stamp(unsigned char *blk, uint64_t b)
{
	memcpy(blk, &b, sizeof b);
}

static int drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3\n", 2) != 2) {
		fprintf(stderr, "%s: cannot drop the page cache (/proc/sys/vm/drop_caches: %s); "
			"run as root or pass --no-drop\n", prog, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int do_write(const char *path, uint64_t nblocks, size_t block, unsigned char *blk)
{
	double t0, t1;
	int fd;

	sync(); /* untimed: start without other dirty data in flight */
	t0 = bench_now();
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "%s: create %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	for (uint64_t b = 0; b < nblocks; b++) {
		size_t off = 0;

		stamp(blk, b);
		while (off < block) {
			ssize_t n = write(fd, blk + off, block - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "%s: write %s: %s\n", prog, path,
					n < 0 ? strerror(errno) : "wrote nothing");
				close(fd);
				return -1;
			}
			off += (size_t)n;
		}
	}
	if (fsync(fd) != 0) {
		fprintf(stderr, "%s: fsync %s: %s\n", prog, path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) != 0) {
		fprintf(stderr, "%s: close %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	t1 = bench_now();
	report("seqwrite", nblocks * block, block, t1 - t0, -1);
	return 0;
}

static int do_read(const char *path, uint64_t nblocks, size_t block, unsigned char *blk,
		   const unsigned char *ref, int drop)
{
	size_t tail = block - sizeof(uint64_t) < 256 ? block - sizeof(uint64_t) : 256;
	uint64_t b = 0;
	double t0, t1;
	int fd;

	if (drop && drop_caches() != 0)
		return -1;
	t0 = bench_now();
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t off = 0;

		while (off < block) {
			ssize_t n = read(fd, blk + off, block - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				fprintf(stderr, "%s: read %s: %s\n", prog, path, strerror(errno));
				close(fd);
				return -1;
			}
			if (n == 0)
				break;
			off += (size_t)n;
		}
		if (off == 0)
			break;
		if (off != block || b >= nblocks) {
			fprintf(stderr, "%s: %s: size is not the %llu bytes written\n", prog,
				path, (unsigned long long)(nblocks * block));
			close(fd);
			return -1;
		}
		{
			uint64_t idx;

			memcpy(&idx, blk, sizeof idx);
			/* index plus a sample at the end of the block: cheap enough
			 * that the check does not weigh on the throughput */
			if (idx != b || memcmp(blk + block - tail, ref + block - tail,
					       tail) != 0) {
				fprintf(stderr, "%s: %s: block %llu has wrong content\n", prog,
					path, (unsigned long long)b);
				close(fd);
				return -1;
			}
		}
		b++;
	}
	if (close(fd) != 0) {
		fprintf(stderr, "%s: close %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	t1 = bench_now();
	if (b != nblocks) {
		fprintf(stderr, "%s: %s: read %llu blocks, expected %llu\n", prog, path,
			(unsigned long long)b, (unsigned long long)nblocks);
		return -1;
	}
	report("seqread", nblocks * block, block, t1 - t0, drop);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	long mib = 1024, kib = 1024;
	int do_w = 1, do_r = 1, drop = 1, rc = 0;
	unsigned char *blk, *ref;
	uint64_t nblocks;
	size_t block;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--no-drop") == 0) {
			drop = 0;
		} else if (strcmp(a, "-m") == 0 || strcmp(a, "-b") == 0 || strcmp(a, "-p") == 0) {
			const char *v;

			if (i + 1 >= argc) {
				fprintf(stderr, "%s: option %s needs a value\n", prog, a);
				return 2;
			}
			v = argv[++i];
			if (a[1] == 'm' && bench_parse_long(v, 1, 1L << 20, &mib) == 0)
				continue;
			if (a[1] == 'b' && bench_parse_long(v, 1, 1L << 20, &kib) == 0)
				continue;
			if (a[1] == 'p') {
				do_w = strstr(v, "write") != NULL;
				do_r = strstr(v, "read") != NULL;
				if ((do_w || do_r) && strspn(v, "writead,") == strlen(v))
					continue;
			}
			fprintf(stderr, "%s: bad value for %s: %s\n", prog, a, v);
			return 2;
		} else if (a[0] == '-') {
			fprintf(stderr, "%s: unknown option %s\n", prog, a);
			usage(stderr);
			return 2;
		} else if (path == NULL) {
			path = a;
		} else {
			fprintf(stderr, "%s: more than one FILE given\n", prog);
			return 2;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	block = (size_t)kib * 1024;
	if (((uint64_t)mib * 1048576) % block != 0) {
		fprintf(stderr, "%s: the size (%ld MiB) must be a multiple of the block size (%ld KiB)\n",
			prog, mib, kib);
		return 2;
	}
	nblocks = (uint64_t)mib * 1048576 / block;

	blk = malloc(block);
	ref = malloc(block);
	if (!blk || !ref) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	for (size_t j = 0; j < block; j++)
		ref[j] = (unsigned char)((j * 2654435761u) >> 11);
	memcpy(blk, ref, block);

	if (do_w && do_write(path, nblocks, block, blk) != 0)
		rc = 1;
	if (rc == 0 && do_r && do_read(path, nblocks, block, blk, ref, drop) != 0)
		rc = 1;

	free(blk);
	free(ref);
	return rc;
}
