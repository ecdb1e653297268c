/*
 * nfsfiles: the small-file benchmark of smallfiles.c, done by libnfs over
 * NFSv3 without FUSE or the kernel: a peer user-space client for efsmt's
 * small-file numbers on the same server.
 *
 *   nfsfiles [-n FILES] [-s BYTES] [-d SUBDIRS] [-j THREADS] [-p PHASES] [-f]
 *            SERVER EXPORT
 *
 * Files and phases are smallfiles's (EXPORT/dNNNN/fNNNNNNN, round-robin over
 * SUBDIRS subdirectories created untimed first), phases write and delete:
 *
 *   write   create (O_CREAT|O_WRONLY|O_TRUNC), write, [-f: fsync,] close
 *   delete  unlink each file, then rmdir each subdirectory
 *
 * libnfs writes UNSTABLE and its close sends no COMMIT, so without -f a
 * written file may still be only in the server's memory at close; with -f
 * each file is committed before close, the durability a kernel NFS client's
 * close (and efsmt's) gives. Each of the THREADS threads has its own libnfs
 * context (one TCP connection) and takes every THREADS-th file.
 * Output: one line per phase, as smallfiles prints it. Exit 1 on any error,
 * 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h> /* libnfs.h uses struct timeval without it */
#include <sys/types.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#include "benchutil.h"

enum { PH_WRITE = 1, PH_DELETE = 2 };

static const char *prog = "nfsfiles";

struct cfg {
	const char *server, *export;
	long files, size, subdirs, threads;
	unsigned phases;
	int fsync_each;
	const unsigned char *pattern;
};

struct worker {
	const struct cfg *c;
	struct nfs_context *nfs;
	long first;
	unsigned phase;
	pthread_t tid;
	int rc;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-n FILES] [-s BYTES] [-d SUBDIRS] [-j THREADS] [-p PHASES] [-f]\n"
		"          SERVER EXPORT\n"
		"  SERVER      NFS server address (NFSv3 with MOUNT, through rpcbind)\n"
		"  EXPORT      exported path, e.g. /export\n"
		"  -n FILES    number of files (default 10000)\n"
		"  -s BYTES    bytes per file (default 4096)\n"
		"  -d SUBDIRS  subdirectories the files are spread over (default 100)\n"
		"  -j THREADS  threads, each with its own connection (default 1)\n"
		"  -p PHASES   comma list of write,delete (default both)\n"
		"  -f          commit (fsync) each file before closing it\n",
		prog);
}

static struct nfs_context *connect_export(const struct cfg *c)
{
	struct nfs_context *nfs = nfs_init_context();

	if (!nfs) {
		fprintf(stderr, "%s: cannot create a libnfs context\n", prog);
		return NULL;
	}
	/* NFSv3 is libnfs's default version */
	if (nfs_mount(nfs, c->server, c->export) != 0) {
		fprintf(stderr, "%s: mount %s:%s: %s\n", prog, c->server, c->export,
			nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return NULL;
	}
	return nfs;
}

static void file_path(const struct cfg *c, long i, char *buf, size_t len)
{
	snprintf(buf, len, "/d%04ld/f%07ld", i % c->subdirs, i);
}

static int fail(struct nfs_context *nfs, const char *what, const char *path)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, nfs_get_error(nfs));
	return -1;
}

static int write_files(const struct worker *w)
{
	const struct cfg *c = w->c;
	char path[PATH_MAX];

	for (long i = w->first; i < c->files; i += c->threads) {
		struct nfsfh *fh;
		long done = 0;

		file_path(c, i, path, sizeof path);
		if (nfs_create(w->nfs, path, O_WRONLY | O_TRUNC, 0644, &fh) != 0)
			return fail(w->nfs, "create", path);
		while (done < c->size) {
			int n = nfs_write(w->nfs, fh, (uint64_t)(c->size - done),
					  c->pattern + i % BENCH_PAT_PERIOD + done);
			if (n <= 0) {
				nfs_close(w->nfs, fh);
				return fail(w->nfs, "write", path);
			}
			done += n;
		}
		if (c->fsync_each && nfs_fsync(w->nfs, fh) != 0) {
			nfs_close(w->nfs, fh);
			return fail(w->nfs, "fsync", path);
		}
		if (nfs_close(w->nfs, fh) != 0)
			return fail(w->nfs, "close", path);
	}
	return 0;
}

static int unlink_files(const struct worker *w)
{
	const struct cfg *c = w->c;
	char path[PATH_MAX];

	for (long i = w->first; i < c->files; i += c->threads) {
		file_path(c, i, path, sizeof path);
		if (nfs_unlink(w->nfs, path) != 0)
			return fail(w->nfs, "unlink", path);
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->rc = w->phase == PH_WRITE ? write_files(w) : unlink_files(w);
	return NULL;
}

static int subdirs(const struct cfg *c, struct nfs_context *nfs, int make)
{
	char path[PATH_MAX];

	for (long d = 0; d < c->subdirs; d++) {
		int r;

		snprintf(path, sizeof path, "/d%04ld", d);
		r = make ? nfs_mkdir(nfs, path) : nfs_rmdir(nfs, path);
		if (r != 0 && !(make && r == -EEXIST))
			return fail(nfs, make ? "mkdir" : "rmdir", path);
	}
	return 0;
}

/* One timed phase over every worker; delete also removes the subdirs. */
static int run_phase(const struct cfg *c, struct worker *ws, unsigned phase)
{
	double t0 = bench_now(), secs;
	long started = 0;
	int rc = 0;

	for (long t = 0; t < c->threads; t++) {
		ws[t].phase = phase;
		if ((errno = pthread_create(&ws[t].tid, NULL, worker_main, &ws[t])) != 0) {
			fprintf(stderr, "%s: pthread_create: %s\n", prog, strerror(errno));
			rc = -1;
			break;
		}
		started++;
	}
	for (long t = 0; t < started; t++) {
		pthread_join(ws[t].tid, NULL);
		if (ws[t].rc != 0)
			rc = -1;
	}
	if (rc == 0 && phase == PH_DELETE)
		rc = subdirs(c, ws[0].nfs, 0);
	if (rc != 0)
		return -1;
	secs = bench_now() - t0;
	printf("phase=%s files=%ld bytes=%ld seconds=%.6f files_per_s=%.1f\n",
	       phase == PH_WRITE ? "write" : "delete", c->files, c->size, secs,
	       secs > 0 ? (double)c->files / secs : 0.0);
	fflush(stdout);
	return 0;
}

static int parse_phases(const char *s, unsigned *out)
{
	if (strcmp(s, "write") == 0)
		*out = PH_WRITE;
	else if (strcmp(s, "delete") == 0)
		*out = PH_DELETE;
	else if (strcmp(s, "write,delete") == 0)
		*out = PH_WRITE | PH_DELETE;
	else
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c = { NULL, NULL, 10000, 4096, 100, 1, PH_WRITE | PH_DELETE, 0, NULL };
	const char *pos[2];
	int rc = 0;
	unsigned char *pattern;
	struct worker *ws;

	for (int o; (o = getopt(argc, argv, "hfn:s:d:j:p:")) != -1;) {
		int bad;

		switch (o) {
		case 'h':
			usage(stdout);
			return 0;
		case 'f':
			c.fsync_each = 1;
			continue;
		case 'n':
			bad = bench_parse_long(optarg, 1, 100000000L, &c.files);
			break;
		case 's':
			bad = bench_parse_long(optarg, 0, 1L << 30, &c.size);
			break;
		case 'd':
			bad = bench_parse_long(optarg, 1, 10000, &c.subdirs);
			break;
		case 'j':
			bad = bench_parse_long(optarg, 1, 1024, &c.threads);
			break;
		case 'p':
			bad = parse_phases(optarg, &c.phases);
			break;
		default: /* getopt said what is wrong */
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "%s: bad value for -%c: %s\n", prog, o, optarg);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	pos[0] = argv[optind];
	pos[1] = argv[optind + 1];
	c.server = pos[0];
	c.export = pos[1];

	pattern = bench_pattern((size_t)c.size); /* the bytes smallfiles writes */
	ws = calloc((size_t)c.threads, sizeof *ws);
	if (!pattern || !ws) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	c.pattern = pattern;

	for (long t = 0; t < c.threads && rc == 0; t++) {
		ws[t] = (struct worker){ .c = &c, .first = t };
		ws[t].nfs = connect_export(&c);
		if (!ws[t].nfs)
			rc = 1;
	}
	if (rc == 0 && (c.phases & PH_WRITE) &&
	    (subdirs(&c, ws[0].nfs, 1) != 0 || run_phase(&c, ws, PH_WRITE) != 0))
		rc = 1;
	if (rc == 0 && (c.phases & PH_DELETE) && run_phase(&c, ws, PH_DELETE) != 0)
		rc = 1;

	for (long t = 0; t < c.threads; t++) {
		if (ws[t].nfs) {
			nfs_umount(ws[t].nfs);
			nfs_destroy_context(ws[t].nfs);
		}
	}
	free(ws);
	free(pattern);
	return rc;
}
