/*
 * nfsprobe - exercise the NFSv4.1 client against a server and time it.
 *
 *   nfsprobe [-s MIB] [-n FILES] [-t THREADS] nfs://HOST[:PORT]/EXPORT
 *
 * Connects, makes a scratch directory under the export, writes a file of
 * MIB MiB and reads it back (checking every byte), lists the directory,
 * creates FILES small files from THREADS threads, removes everything and
 * disconnects, printing one line per step with its time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nfs4.h"

#define PROBE_IO_BYTES (4u << 20) /* one nfs_write/nfs_read call */
#define PROBE_SMALL_BYTES 1024
#define PROBE_MAX_THREADS 64
#define PROBE_PINGS 1000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, int err)
{
	fprintf(stderr, "nfsprobe: %s: %s\n", what, strerror(-err));
	exit(1);
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 2654435761u >> 13);
}

struct small_job {
	struct nfs_client *c;
	const struct nfs_fh *dir;
	int first, count;
	int err;
};

static void *small_worker(void *arg)
{
	struct small_job *j = arg;
	char buf[PROBE_SMALL_BYTES];
	memset(buf, 'x', sizeof buf);
	for (int i = j->first; i < j->first + j->count; i++) {
		char name[32];
		struct nfs_open of;
		snprintf(name, sizeof name, "f%06d", i);
		int e = nfs_open(j->c, NULL, j->dir, name, O_CREAT | O_WRONLY | O_TRUNC, 0644, &of,
				 NULL);
		if (!e) {
			ssize_t w = nfs_write(j->c, NULL, &of.fh, &of.stateid, buf, sizeof buf, 0,
					      FILE_SYNC4, NULL, NULL);
			if (w != (ssize_t)sizeof buf)
				e = w < 0 ? (int)w : -EIO;
			int ce = nfs_close(j->c, NULL, &of);
			if (!e)
				e = ce;
		}
		if (e) {
			j->err = e;
			return NULL;
		}
	}
	return NULL;
}

struct lister {
	int n;
	int shown;
};

static int list_cb(void *ctx, const char *name, uint64_t cookie, const struct nfs_attr *a)
{
	struct lister *l = ctx;
	(void)cookie;
	if (l->shown < 5) {
		printf("    %-12s mode=%o size=%lld uid=%u\n", name, (unsigned)a->st.st_mode,
		       (long long)a->st.st_size, (unsigned)a->st.st_uid);
		l->shown++;
	}
	l->n++;
	return 0;
}

/* Readdir walking all pages, remembering the last cookie. */
struct pager {
	struct lister *l;
	uint64_t last;
};

static int page_cb(void *ctx, const char *name, uint64_t cookie, const struct nfs_attr *a)
{
	struct pager *p = ctx;
	p->last = cookie;
	return list_cb(p->l, name, cookie, a);
}

static int list_all(struct nfs_client *c, const struct nfs_fh *dir, struct lister *l,
		    int *pages)
{
	uint8_t verf[NFS4_VERIFIER_SIZE] = { 0 };
	struct pager p = { l, 0 };
	int eof = 0;
	*pages = 0;
	while (!eof) {
		int e = nfs_readdir(c, NULL, dir, p.last, verf, 0, page_cb, &p, &eof);
		if (e)
			return e;
		(*pages)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int mib = 64, nfiles = 1000, nthreads = 8, opt;
	while ((opt = getopt(argc, argv, "s:n:t:")) != -1) {
		switch (opt) {
		case 's': mib = atoi(optarg); break;
		case 'n': nfiles = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: nfsprobe [-s MIB] [-n FILES] [-t THREADS] nfs://HOST/EXPORT\n");
			return 2;
		}
	}
	if (optind != argc - 1 || mib < 0 || nfiles < 0 || nthreads < 1 ||
	    nthreads > PROBE_MAX_THREADS) {
		fprintf(stderr, "usage: nfsprobe [-s MIB] [-n FILES] [-t THREADS] nfs://HOST/EXPORT\n");
		return 2;
	}
	char host[256], path[1024], err[256];
	uint16_t port;
	if (nfs_parse_uri(argv[optind], host, sizeof host, &port, path, sizeof path)) {
		fprintf(stderr, "nfsprobe: bad URI %s\n", argv[optind]);
		return 2;
	}
	struct nfs_opts o = { .port = port };
	struct nfs_client *c;
	double t0 = now_s();
	int e = nfs_client_open(host, &o, &c, err, sizeof err);
	if (e) {
		fprintf(stderr, "nfsprobe: %s:%u: %s\n", host, port, err);
		return 1;
	}
	struct nfs_info info;
	nfs_client_info(c, &info);
	printf("connect+session    %8.3f ms  clientid=%016llx slots=%u lease=%us maxread=%u maxwrite=%u maxops=%u\n",
	       (now_s() - t0) * 1e3, (unsigned long long)info.clientid, info.slots,
	       info.lease_time, info.maxread, info.maxwrite, info.max_ops);

	struct nfs_fh root, dir;
	struct nfs_attr a;
	double dt;
	t0 = now_s();
	if ((e = nfs_resolve(c, NULL, NULL, path, &root, &a)))
		fail("resolve export", e);
	printf("resolve %-10s %8.3f ms  fh=%u bytes mode=%o\n", path, (now_s() - t0) * 1e3,
	       root.len, (unsigned)a.st.st_mode);

	/* Round-trip latency: one GETATTR COMPOUND at a time. */
	t0 = now_s();
	for (int i = 0; i < PROBE_PINGS; i++)
		if ((e = nfs_getattr(c, NULL, &root, &a)))
			fail("getattr", e);
	dt = now_s() - t0;
	printf("getattr x%d       %8.3f ms  %.1f us per round trip\n", PROBE_PINGS, dt * 1e3,
	       dt * 1e6 / PROBE_PINGS);

	char dname[64];
	snprintf(dname, sizeof dname, "efsmt-probe-%d", (int)getpid());
	t0 = now_s();
	if ((e = nfs_create(c, NULL, &root, dname, NF4DIR, NULL, 0, 0755, &dir, &a)))
		fail("mkdir", e);
	printf("mkdir              %8.3f ms  %s\n", (now_s() - t0) * 1e3, dname);

	/* Sequential write and read back. */
	size_t total = (size_t)mib << 20;
	uint8_t *buf = malloc(PROBE_IO_BYTES);
	uint8_t *rbuf = malloc(PROBE_IO_BYTES);
	if (!buf || !rbuf)
		fail("malloc", -ENOMEM);
	struct nfs_open of;
	t0 = now_s();
	if ((e = nfs_open(c, NULL, &dir, "big", O_CREAT | O_RDWR | O_TRUNC, 0644, &of, &a)))
		fail("create big", e);
	uint8_t verf[NFS4_VERIFIER_SIZE], cverf[NFS4_VERIFIER_SIZE];
	int unstable = 0;
	for (size_t off = 0; off < total; off += PROBE_IO_BYTES) {
		size_t n = total - off < PROBE_IO_BYTES ? total - off : PROBE_IO_BYTES;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		int how;
		ssize_t w = nfs_write(c, NULL, &of.fh, &of.stateid, buf, n, off, UNSTABLE4, &how, verf);
		if (w != (ssize_t)n)
			fail("write", w < 0 ? (int)w : -EIO);
		unstable |= how != FILE_SYNC4;
	}
	if (unstable) {
		if ((e = nfs_commit(c, NULL, &of.fh, 0, 0, cverf)))
			fail("commit", e);
		if (memcmp(verf, cverf, sizeof verf))
			fail("commit verifier changed", -EIO);
	}
	dt = now_s() - t0;
	printf("write %4d MiB      %8.3f ms  %.1f MiB/s (%s)\n", mib, dt * 1e3, mib / dt,
	       unstable ? "unstable+commit" : "stable");
	t0 = now_s();
	for (size_t off = 0; off < total; off += PROBE_IO_BYTES) {
		size_t n = total - off < PROBE_IO_BYTES ? total - off : PROBE_IO_BYTES;
		int eof;
		ssize_t r = nfs_read(c, NULL, &of.fh, &of.stateid, rbuf, n, off, &eof);
		if (r != (ssize_t)n)
			fail("read", r < 0 ? (int)r : -EIO);
		for (size_t i = 0; i < n; i++)
			if (rbuf[i] != pattern(off + i))
				fail("read back: data differs", -EIO);
	}
	dt = now_s() - t0;
	printf("read  %4d MiB      %8.3f ms  %.1f MiB/s (verified)\n", mib, dt * 1e3, mib / dt);
	if ((e = nfs_getattr(c, NULL, &of.fh, &a)))
		fail("getattr", e);
	if ((size_t)a.st.st_size != total)
		fail("size after write", -EIO);
	/* Byte-range locks: ours, then a second client (another lane) tests. */
	struct nfs_lock lk = { .owner = 0 };
	struct nfs_lock_conflict cf;
	struct nfs_client *c2;
	t0 = now_s();
	if ((e = nfs_lock(c, NULL, &of, &lk, WRITE_LT, 0, 4096, &cf)))
		fail("lock", e);
	if ((e = nfs_client_open(host, &o, &c2, err, sizeof err)))
		fail("second client", e);
	e = nfs_testlock(c2, NULL, &of.fh, 1, READ_LT, 100, 10, &cf);
	if (e != -EAGAIN || cf.offset != 0 || cf.length != 4096 || cf.type != WRITE_LT)
		fail("lockt from another client should see our lock", e ? e : -EIO);
	if ((e = nfs_testlock(c2, NULL, &of.fh, 1, WRITE_LT, 4096, NFS_LOCK_TO_EOF, &cf)))
		fail("lockt past our range", e);
	if ((e = nfs_unlock(c, NULL, &of, &lk, 0, 4096)))
		fail("locku", e);
	if ((e = nfs_testlock(c2, NULL, &of.fh, 1, WRITE_LT, 0, NFS_LOCK_TO_EOF, &cf)))
		fail("lockt after unlock", e);
	nfs_client_close(c2);
	printf("lock/lockt/locku   %8.3f ms  conflict seen from a second client, gone after unlock\n",
	       (now_s() - t0) * 1e3);
	if ((e = nfs_close(c, NULL, &of)))
		fail("close", e);

	/* Small files from several threads. */
	pthread_t th[PROBE_MAX_THREADS];
	struct small_job jobs[PROBE_MAX_THREADS];
	t0 = now_s();
	for (int i = 0; i < nthreads; i++) {
		jobs[i] = (struct small_job){ c, &dir, nfiles * i / nthreads,
					      nfiles * (i + 1) / nthreads - nfiles * i / nthreads, 0 };
		pthread_create(&th[i], NULL, small_worker, &jobs[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].err)
			fail("small files", jobs[i].err);
	}
	dt = now_s() - t0;
	printf("create %5d files %8.3f ms  %.0f files/s (open+write 1 KiB+close, %d threads)\n",
	       nfiles, dt * 1e3, nfiles / dt, nthreads);

	struct lister l = { 0, 0 };
	int pages;
	t0 = now_s();
	if ((e = list_all(c, &dir, &l, &pages)))
		fail("readdir", e);
	printf("readdir            %8.3f ms  %d entries in %d READDIRs\n", (now_s() - t0) * 1e3,
	       l.n, pages);
	if (l.n != nfiles + 1)
		fail("readdir count", -EIO);

	t0 = now_s();
	for (int i = 0; i < nfiles; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%06d", i);
		if ((e = nfs_remove(c, NULL, &dir, name, NFS_RM_NONDIR)))
			fail("remove", e);
	}
	if ((e = nfs_remove(c, NULL, &dir, "big", NFS_RM_NONDIR)) ||
	    (e = nfs_remove(c, NULL, &root, dname, NFS_RM_DIR)))
		fail("remove", e);
	dt = now_s() - t0;
	printf("remove %5d files %8.3f ms  %.0f files/s (1 thread)\n", nfiles + 2, dt * 1e3,
	       (nfiles + 2) / dt);
	t0 = now_s();
	nfs_client_close(c);
	printf("destroy session    %8.3f ms\n", (now_s() - t0) * 1e3);
	free(buf);
	free(rbuf);
	return 0;
}
