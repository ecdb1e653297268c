/*
 * smallfiles: small-file benchmark for efsmt.
 *
 *   smallfiles DIR [-n FILES] [-s BYTES] [-d SUBDIRS] [-p PHASES] [-j THREADS] [-f]
 *
 * Creates FILES files of BYTES bytes each, spread round-robin over SUBDIRS
 * subdirectories of DIR (DIR/dNNNN/fNNNNNNN), in four timed phases:
 *
 *   write   open(O_CREAT|O_WRONLY|O_TRUNC), write, close     for each file
 *   read    open(O_RDONLY), read to EOF, close, verify bytes  for each file
 *   stat    stat, verify it is a regular file of BYTES bytes  for each file
 *   delete  unlink each file, then rmdir each subdirectory
 *
 * With -j THREADS, each phase runs in THREADS threads at once, thread t
 * taking files t, t+THREADS, t+2*THREADS, ... (the subdirectories are
 * removed after every thread's unlinks); a phase ends when its last thread
 * does. One thread (the default) is a program doing one file at a time, which
 * is timed to the latency of each call; several are many programs (or one
 * parallel one) sharing the file system, timed to its throughput.
 * The subdirectories are created (untimed) before the write phase.
 * Each phase prints one line on stdout:
 *
 *   phase=write files=10000 bytes=4096 seconds=0.123456 files_per_s=81004.2 start=812.061234 end=812.184690
 *
 * start and end are the CLOCK_MONOTONIC times (seconds) at which the phase
 * began and ended, so that events recorded elsewhere with the same clock (a
 * kernel trace with trace_clock=mono) can be assigned to phases.
 * -p PHASES (comma list, default write,read,stat,delete) runs a subset, so the
 * phases can be run as separate processes on files left by an earlier one.
 * Any error is reported on stderr and the exit status is 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

enum { PH_WRITE = 1, PH_READ = 2, PH_STAT = 4, PH_DELETE = 8 };

static const char *prog = "smallfiles";

struct cfg {
	const char *dir;
	long files;
	long size;
	long subdirs;
	unsigned phases;
	int fsync_each; /* -f: fsync(2) each file before closing it */
	long threads;   /* -j: threads per phase */
};

/* One thread's share of a phase: files first, first + step, ... */
struct share {
	const struct cfg *c;
	const unsigned char *pattern;
	long first, step;
	int (*fn)(const struct share *sh);
	pthread_t tid;
	int rc;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s DIR [-n FILES] [-s BYTES] [-d SUBDIRS] [-p PHASES] [-j THREADS] [-f]\n"
		"  -n FILES    number of files (default 10000)\n"
		"  -s BYTES    bytes per file (default 4096)\n"
		"  -d SUBDIRS  subdirectories the files are spread over (default 100)\n"
		"  -p PHASES   comma list of write,read,stat,delete (default all)\n"
		"  -j THREADS  run each phase in THREADS threads, each taking every\n"
		"              THREADS-th file (default 1)\n"
		"  -f          write phase: fsync each file before closing it (the\n"
		"              durability an NFS close gives, for a local peer)\n",
		prog);
}

static int parse_phases(const char *s, unsigned *out)
{
	unsigned ph = 0;
	char *copy = strdup(s), *save = NULL, *tok;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "write") == 0)
			ph |= PH_WRITE;
		else if (strcmp(tok, "read") == 0)
			ph |= PH_READ;
		else if (strcmp(tok, "stat") == 0)
			ph |= PH_STAT;
		else if (strcmp(tok, "delete") == 0)
			ph |= PH_DELETE;
		else {
			free(copy);
			return -1;
		}
	}
	free(copy);
	if (ph == 0)
		return -1;
	*out = ph;
	return 0;
}

static void subdir_path(const struct cfg *c, long d, char *buf, size_t len)
{
	snprintf(buf, len, "%s/d%04ld", c->dir, d);
}

static void file_path(const struct cfg *c, long i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/d%04ld/f%07ld", c->dir, i % c->subdirs, i);
}

/* Expected contents of file i start at pattern + i % BENCH_PAT_PERIOD. */
static const unsigned char *file_data(const unsigned char *pattern, long i)
{
	return pattern + (size_t)(i % BENCH_PAT_PERIOD);
}

static void report(const char *phase, const struct cfg *c, double t0, double t1)
{
	double secs = t1 - t0;

	printf("phase=%s files=%ld bytes=%ld seconds=%.6f files_per_s=%.1f start=%.6f end=%.6f\n",
	       phase, c->files, c->size, secs,
	       secs > 0 ? (double)c->files / secs : 0.0, t0, t1);
	fflush(stdout);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int make_subdirs(const struct cfg *c)
{
	char path[PATH_MAX];

	for (long d = 0; d < c->subdirs; d++) {
		subdir_path(c, d, path, sizeof path);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "%s: mkdir %s: %s\n", prog, path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int write_files(const struct share *sh)
{
	const struct cfg *c = sh->c;
	char path[PATH_MAX];

	for (long i = sh->first; i < c->files; i += sh->step) {
		int fd;

		file_path(c, i, path, sizeof path);
		fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0) {
			fprintf(stderr, "%s: create %s: %s\n", prog, path, strerror(errno));
			return -1;
		}
		if (write_all(fd, file_data(sh->pattern, i), (size_t)c->size) != 0) {
			fprintf(stderr, "%s: write %s: %s\n", prog, path, strerror(errno));
			close(fd);
			return -1;
		}
		if (c->fsync_each && fsync(fd) != 0) {
			fprintf(stderr, "%s: fsync %s: %s\n", prog, path, strerror(errno));
			close(fd);
			return -1;
		}
		if (close(fd) != 0) {
			fprintf(stderr, "%s: close %s: %s\n", prog, path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int read_files(const struct share *sh)
{
	const struct cfg *c = sh->c;
	char path[PATH_MAX];
	/* one spare byte so a file longer than expected is noticed */
	size_t cap = (size_t)c->size + 1;
	unsigned char *buf = malloc(cap);
	int rc = -1;

	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return -1;
	}
	for (long i = sh->first; i < c->files; i += sh->step) {
		size_t got = 0;
		int fd;

		file_path(c, i, path, sizeof path);
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "%s: open %s: %s\n", prog, path, strerror(errno));
			goto out;
		}
		for (;;) {
			ssize_t n = read(fd, buf + got, cap - got);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "%s: read %s: %s\n", prog, path,
					strerror(errno));
				close(fd);
				goto out;
			}
			if (n == 0)
				break;
			got += (size_t)n;
			if (got == cap)
				break;
		}
		if (close(fd) != 0) {
			fprintf(stderr, "%s: close %s: %s\n", prog, path, strerror(errno));
			goto out;
		}
		if (got != (size_t)c->size) {
			fprintf(stderr, "%s: %s: read %s%zu bytes, expected %ld\n", prog,
				path, got == cap ? "more than " : "", got == cap ? got - 1 : got,
				c->size);
			goto out;
		}
		if (memcmp(buf, file_data(sh->pattern, i), (size_t)c->size) != 0) {
			fprintf(stderr, "%s: %s: content differs from what was written\n",
				prog, path);
			goto out;
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static int stat_files(const struct share *sh)
{
	const struct cfg *c = sh->c;
	char path[PATH_MAX];
	struct stat st;

	for (long i = sh->first; i < c->files; i += sh->step) {
		file_path(c, i, path, sizeof path);
		if (stat(path, &st) != 0) {
			fprintf(stderr, "%s: stat %s: %s\n", prog, path, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode) || st.st_size != (off_t)c->size) {
			fprintf(stderr,
				"%s: stat %s: expected a regular file of %ld bytes, got mode 0%o size %lld\n",
				prog, path, c->size, (unsigned)st.st_mode,
				(long long)st.st_size);
			return -1;
		}
	}
	return 0;
}

static int unlink_files(const struct share *sh)
{
	const struct cfg *c = sh->c;
	char path[PATH_MAX];

	for (long i = sh->first; i < c->files; i += sh->step) {
		file_path(c, i, path, sizeof path);
		if (unlink(path) != 0) {
			fprintf(stderr, "%s: unlink %s: %s\n", prog, path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int remove_subdirs(const struct cfg *c)
{
	char path[PATH_MAX];

	for (long d = 0; d < c->subdirs; d++) {
		subdir_path(c, d, path, sizeof path);
		if (rmdir(path) != 0) {
			fprintf(stderr, "%s: rmdir %s: %s\n", prog, path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void *share_main(void *arg)
{
	struct share *sh = arg;

	sh->rc = sh->fn(sh);
	return NULL;
}

/*
 * Times one phase: fn over every file in c->threads threads (in this thread
 * when there is one), then `after` (if any) once they are all done.
 */
static int run_phase(const char *name, const struct cfg *c, const unsigned char *pattern,
		     int (*fn)(const struct share *sh), int (*after)(const struct cfg *c))
{
	struct share *sh = calloc((size_t)c->threads, sizeof *sh);
	long started = 0;
	int rc = 0;
	double t0;

	if (!sh) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return -1;
	}
	t0 = bench_now();
	for (long t = 0; t < c->threads; t++) {
		sh[t] = (struct share){ .c = c, .pattern = pattern, .first = t,
					.step = c->threads, .fn = fn };
		if (c->threads == 1) {
			share_main(&sh[t]);
		} else if ((errno = pthread_create(&sh[t].tid, NULL, share_main, &sh[t])) != 0) {
			fprintf(stderr, "%s: pthread_create: %s\n", prog, strerror(errno));
			rc = -1;
			break;
		}
		started++;
	}
	for (long t = 0; t < started; t++) {
		if (c->threads > 1)
			pthread_join(sh[t].tid, NULL);
		if (sh[t].rc != 0)
			rc = -1;
	}
	if (rc == 0 && after && after(c) != 0)
		rc = -1;
	if (rc == 0)
		report(name, c, t0, bench_now());
	free(sh);
	return rc;
}

int main(int argc, char **argv)
{
	struct cfg c = { NULL, 10000, 4096, 100, PH_WRITE | PH_READ | PH_STAT | PH_DELETE, 0, 1 };
	unsigned char *pattern;
	struct stat st;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "-f") == 0) {
			c.fsync_each = 1;
			continue;
		}
		if (a[0] == '-' && a[1] != '\0' && a[2] == '\0' && strchr("nsdpj", a[1])) {
			const char *v;

			if (i + 1 >= argc) {
				fprintf(stderr, "%s: option %s needs a value\n", prog, a);
				return 2;
			}
			v = argv[++i];
			if ((a[1] == 'n' && bench_parse_long(v, 1, 100000000L, &c.files) != 0) ||
			    (a[1] == 's' && bench_parse_long(v, 0, 1L << 30, &c.size) != 0) ||
			    (a[1] == 'd' && bench_parse_long(v, 1, 10000, &c.subdirs) != 0) ||
			    (a[1] == 'j' && bench_parse_long(v, 1, 1024, &c.threads) != 0) ||
			    (a[1] == 'p' && parse_phases(v, &c.phases) != 0)) {
				fprintf(stderr, "%s: bad value for %s: %s\n", prog, a, v);
				return 2;
			}
		} else if (a[0] == '-') {
			fprintf(stderr, "%s: unknown option %s\n", prog, a);
			usage(stderr);
			return 2;
		} else if (c.dir == NULL) {
			c.dir = a;
		} else {
			fprintf(stderr, "%s: more than one DIR given\n", prog);
			return 2;
		}
	}
	if (c.dir == NULL) {
		usage(stderr);
		return 2;
	}
	if (stat(c.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: %s is not a directory\n", prog, c.dir);
		return 1;
	}

	pattern = bench_pattern((size_t)c.size);
	if (!pattern) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}

	if ((c.phases & PH_WRITE) &&
	    (make_subdirs(&c) != 0 || run_phase("write", &c, pattern, write_files, NULL) != 0))
		rc = 1;
	if (rc == 0 && (c.phases & PH_READ) &&
	    run_phase("read", &c, pattern, read_files, NULL) != 0)
		rc = 1;
	if (rc == 0 && (c.phases & PH_STAT) &&
	    run_phase("stat", &c, pattern, stat_files, NULL) != 0)
		rc = 1;
	if (rc == 0 && (c.phases & PH_DELETE) &&
	    run_phase("delete", &c, pattern, unlink_files, remove_subdirs) != 0)
		rc = 1;

	free(pattern);
	return rc;
}
