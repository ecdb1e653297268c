/*
 * pario: parallel sequential writers or readers, one thread per file.
 *
 *   pario -p write|read [-b KIB] FILE:MIB [FILE:MIB...]
 *
 * write: every thread creates its FILE (O_CREAT|O_WRONLY|O_TRUNC), writes MIB
 *        MiB in blocks of KIB KiB, fsyncs and closes it.
 * read:  every thread opens its FILE, reads it to EOF and checks that it is
 *        exactly what write wrote (every block carries its file and block
 *        number; the rest of the block is compared whole).
 * A file's number is its place in the list: read with the list and -b that
 * write had.
 * The threads start together (a barrier); the clock runs from the start to
 * the end of the last thread, so the aggregate is bytes of all files over
 * that time. The page cache is left alone: the caller drops it (or mounts
 * afresh) between the phases.
 *
 * Output, MB = 10^6 bytes, MiB = 2^20 bytes: one line per file, then the total
 *
 *   file=PATH bytes=... seconds=... MB_per_s=...
 *   phase=parwrite files=8 bytes=... seconds=... MB_per_s=... MiB_per_s=... slowest_s=... fastest_s=...
 *
 * Exit 1 on any error or wrong content, 2 on bad usage.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"

#define PARIO_MAX_FILES 256
#define PARIO_MAX_MIB (1L << 20)
#define PARIO_MAX_KIB (64L * 1024)
#define PARIO_STAMP_BYTES (2 * sizeof(uint64_t)) /* file number, block number */

static const char *prog = "pario";

struct job {
	const char *path;
	uint64_t bytes;
	size_t block;
	uint64_t index;
	int write;
	pthread_barrier_t *start;
	double t_end;
	int err; /* 0 or an errno-style reason already reported */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s -p write|read [-b KIB] FILE:MIB [FILE:MIB...]\n"
		"  -p PHASE  write (create, write, fsync, close) or read (and check)\n"
		"  -b KIB    block size in KiB (default 1024)\n"
		"  FILE:MIB  a file and its size in MiB; one thread per file, at most %d\n",
		prog, PARIO_MAX_FILES);
}

/* The expected content of block b of file j: a stamp, then a pattern. */
static void fill(unsigned char *blk, size_t len, uint64_t j, uint64_t b)
{
	uint64_t x = (j + 1) * 0x9e3779b97f4a7c15ull;

	for (size_t i = PARIO_STAMP_BYTES; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		blk[i] = (unsigned char)x;
	}
	if (len >= PARIO_STAMP_BYTES) {
		memcpy(blk, &j, sizeof j);
		memcpy(blk + sizeof j, &b, sizeof b);
	}
}

static void stamp(unsigned char *blk, size_t len, uint64_t j, uint64_t b)
{
	if (len >= PARIO_STAMP_BYTES)
		memcpy(blk + sizeof j, &b, sizeof b);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to len bytes; the count, short only at EOF, or -errno. */
static ssize_t read_full(int fd, unsigned char *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int do_write(struct job *jb, unsigned char *blk)
{
	int fd = open(jb->path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	int e = 0;

	if (fd < 0) {
		fprintf(stderr, "%s: create %s: %s\n", prog, jb->path, strerror(errno));
		return -1;
	}
	for (uint64_t off = 0, b = 0; off < jb->bytes && !e; off += jb->block, b++) {
		size_t len = jb->bytes - off < jb->block ? (size_t)(jb->bytes - off) : jb->block;

		stamp(blk, len, jb->index, b);
		e = write_all(fd, blk, len);
	}
	if (e)
		fprintf(stderr, "%s: write %s: %s\n", prog, jb->path, strerror(-e));
	else if (fsync(fd) != 0)
		fprintf(stderr, "%s: fsync %s: %s\n", prog, jb->path, strerror(e = errno));
	if (close(fd) != 0 && !e)
		fprintf(stderr, "%s: close %s: %s\n", prog, jb->path, strerror(e = errno));
	return e ? -1 : 0;
}

static int do_read(struct job *jb, unsigned char *blk, unsigned char *ref)
{
	int fd = open(jb->path, O_RDONLY);
	uint64_t off = 0, b = 0;
	int bad = 0;

	if (fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", prog, jb->path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read_full(fd, blk, jb->block);
		size_t want;

		if (n < 0) {
			fprintf(stderr, "%s: read %s: %s\n", prog, jb->path, strerror((int)-n));
			bad = 1;
			break;
		}
		if (n == 0)
			break;
		want = jb->bytes - off < jb->block ? (size_t)(jb->bytes - off) : jb->block;
		if (off >= jb->bytes || (size_t)n != want) {
			fprintf(stderr, "%s: %s: longer or shorter than the %llu bytes written\n",
				prog, jb->path, (unsigned long long)jb->bytes);
			bad = 1;
			break;
		}
		stamp(ref, want, jb->index, b);
		if (memcmp(blk, ref, want) != 0) {
			fprintf(stderr, "%s: %s: block %llu has wrong content\n", prog, jb->path,
				(unsigned long long)b);
			bad = 1;
			break;
		}
		off += (uint64_t)n;
		b++;
	}
	if (close(fd) != 0 && !bad) {
		fprintf(stderr, "%s: close %s: %s\n", prog, jb->path, strerror(errno));
		bad = 1;
	}
	if (!bad && off != jb->bytes) {
		fprintf(stderr, "%s: %s: read %llu bytes, %llu were written\n", prog, jb->path,
			(unsigned long long)off, (unsigned long long)jb->bytes);
		bad = 1;
	}
	return bad ? -1 : 0;
}

static void *run_job(void *arg)
{
	struct job *jb = arg;
	unsigned char *blk = malloc(jb->block), *ref = malloc(jb->block);

	if (!blk || !ref) {
		fprintf(stderr, "%s: out of memory\n", prog);
		jb->err = 1;
	} else {
		fill(jb->write ? blk : ref, jb->block, jb->index, 0);
	}
	pthread_barrier_wait(jb->start);
	if (!jb->err)
		jb->err = (jb->write ? do_write(jb, blk) : do_read(jb, blk, ref)) != 0;
	jb->t_end = bench_now();
	free(blk);
	free(ref);
	return NULL;
}

/* "PATH:MIB" -> path (in place) and bytes; 0 or -1. */
static int parse_file_arg(char *arg, uint64_t *bytes)
{
	char *colon = strrchr(arg, ':');
	long mib;

	if (!colon || colon == arg || bench_parse_long(colon + 1, 1, PARIO_MAX_MIB, &mib) != 0)
		return -1;
	*colon = '\0';
	*bytes = (uint64_t)mib * 1048576;
	return 0;
}

static void report(struct job *jobs, int n, const char *phase, double t0)
{
	uint64_t total = 0;
	double slowest = 0, fastest = 0, secs;

	for (int i = 0; i < n; i++) {
		double s = jobs[i].t_end - t0;

		printf("file=%s bytes=%llu seconds=%.6f MB_per_s=%.1f\n", jobs[i].path,
		       (unsigned long long)jobs[i].bytes, s, s > 0 ? jobs[i].bytes / s / 1e6 : 0.0);
		total += jobs[i].bytes;
		if (i == 0 || s > slowest)
			slowest = s;
		if (i == 0 || s < fastest)
			fastest = s;
	}
	secs = slowest;
	printf("phase=%s files=%d bytes=%llu seconds=%.6f MB_per_s=%.1f MiB_per_s=%.1f "
	       "slowest_s=%.3f fastest_s=%.3f\n",
	       phase, n, (unsigned long long)total, secs, secs > 0 ? total / secs / 1e6 : 0.0,
	       secs > 0 ? total / secs / 1048576.0 : 0.0, slowest, fastest);
}

int main(int argc, char **argv)
{
	static struct job jobs[PARIO_MAX_FILES];
	pthread_t tids[PARIO_MAX_FILES];
	pthread_barrier_t start;
	int n = 0, do_write_phase = -1, failed = 0;
	long kib = 1024;
	double t0;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-p") == 0 && i + 1 < argc) {
			a = argv[++i];
			if (strcmp(a, "write") != 0 && strcmp(a, "read") != 0) {
				fprintf(stderr, "%s: -p takes write or read, not %s\n", prog, a);
				return 2;
			}
			do_write_phase = strcmp(a, "write") == 0;
		} else if (strcmp(a, "-b") == 0 && i + 1 < argc) {
			if (bench_parse_long(argv[++i], 1, PARIO_MAX_KIB, &kib) != 0) {
				fprintf(stderr, "%s: bad block size %s (KiB)\n", prog, argv[i]);
				return 2;
			}
		} else if (a[0] == '-') {
			fprintf(stderr, "%s: unknown option or missing value: %s\n", prog, a);
			usage(stderr);
			return 2;
		} else if (n == PARIO_MAX_FILES) {
			fprintf(stderr, "%s: more than %d files\n", prog, PARIO_MAX_FILES);
			return 2;
		} else {
			if (parse_file_arg(a, &jobs[n].bytes) != 0) {
				fprintf(stderr, "%s: %s is not FILE:MIB (MIB 1 to %ld)\n", prog, a,
					PARIO_MAX_MIB);
				return 2;
			}
			jobs[n].path = a;
			n++;
		}
	}
	if (do_write_phase < 0 || n == 0) {
		usage(stderr);
		return 2;
	}
	if (pthread_barrier_init(&start, NULL, (unsigned)n + 1) != 0) {
		fprintf(stderr, "%s: pthread_barrier_init failed\n", prog);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		jobs[i].block = (size_t)kib * 1024;
		jobs[i].index = (uint64_t)i;
		jobs[i].write = do_write_phase;
		jobs[i].start = &start;
		if (pthread_create(&tids[i], NULL, run_job, &jobs[i]) != 0) {
			fprintf(stderr, "%s: pthread_create failed\n", prog);
			return 1; /* the threads made wait at the barrier: exit ends them */
		}
	}
	pthread_barrier_wait(&start);
	t0 = bench_now();
	for (int i = 0; i < n; i++) {
		pthread_join(tids[i], NULL);
		failed |= jobs[i].err;
	}
	pthread_barrier_destroy(&start);
	if (failed)
		return 1;
	report(jobs, n, do_write_phase ? "parwrite" : "parread", t0);
	return 0;
}
