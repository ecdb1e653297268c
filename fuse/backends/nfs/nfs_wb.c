/*
 * nfs_wb.c - writes answered before the server has them, so that a
 * writer's speed is not one round trip per write(2).
 *
 * Write-behind: a write is copied, queued to a pool of writer threads and
 * answered at once, so one writer keeps several WRITEs in flight (the
 * kernel sends one FUSE write at a time per writer). Each open file has a
 * window of writes in flight (nfsb_wb_window); past it the write waits. The first WRITE
 * that fails becomes the file's sticky error, returned by every later
 * write, flush and fsync. Read-your-writes: an operation that reads data or
 * attributes of a file (READ, GETATTR, SETATTR, OPEN, readdirplus) first
 * waits until that file's writes in flight are answered, whichever handle
 * sent them (matched by filehandle; readdirplus waits for every write
 * queued before it), so neither the kernel nor another reader ever sees a
 * size or data older than a write that was already acknowledged.
 * Overlapping writes never fly together. Other clients see the data after
 * close(2) or fsync(2), as with the kernel NFS client (close-to-open).
 *
 * Gathering: the kernel sends each write(2) as it comes (no writeback
 * cache), so a file written in 4 KiB pieces would cost a WRITE per piece.
 * A small write is instead held, unsent, in a buffer of NFS_GATHER_MAX
 * bytes, and the writes that continue it are added to it; it goes to the
 * writers when it is full, when a write elsewhere in the file comes, when
 * anyone waits for the file's writes (the waits above), or after
 * NFS_GATHER_MS. close(2) and fsync(2) send it from their own thread, as
 * FILE_SYNC4 when it is all the file has uncommitted (no COMMIT after it).
 *
 * Kept data: an answered WRITE's copy is not freed while the server holds
 * it only in memory (answered UNSTABLE4): it stays on the file's kept list
 * until a COMMIT answers with the verifier the WRITE did. A WRITE that
 * failed because the target did not answer is kept too, unsent, and the
 * file's sticky error tells the front (front/outlive.c), which sends it
 * again once the target answers (resume) or hands it to the file's new
 * handle on another target (pending). A COMMIT whose verifier differs
 * (the server restarted and lost what it had not written to disk) sends
 * the pieces written under the old one again. Memory: past
 * NFS_KEPT_COMMIT_AT a file's COMMIT starts in the background (a writer
 * thread sends it, and the pieces it covers go back to the pool of large
 * buffers); a file keeps at most NFS_KEPT_FILE_MAX, the daemon
 * NFS_KEPT_TOTAL_MAX, and a write past either waits for its own file's
 * COMMIT. On EFS, which answers every WRITE FILE_SYNC4, nothing is ever
 * kept.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "nfs/nfs4.h"
#include "nfs/wait.h"
#include "nfs_be.h"

/* Write-behind: writes in flight per open file (each up to a FUSE write,
 * 1 MiB) with one or two lanes, NFS_WB_WINDOW_LANE more per lane past
 * two (the lanes carry one file's WRITEs together), and writer threads
 * for the whole daemon (started as needed). */
#define NFS_WB_WINDOW	   8
#define NFS_WB_WINDOW_LANE 4
#define NFS_WB_THREADS_MAX 32
/* Large writes' copies are kept for reuse, up to this many: a fresh
 * megabyte from malloc is a fresh mmap, and faulting its pages in cost more
 * than copying into it. */
#define NFS_WB_BIG	(1u << 20) /* bytes: writes this large take a pooled copy */
#define NFS_WB_POOL_MAX 32
/* Gathering (see the top): writes of at most half NFS_GATHER_MAX are held;
 * held buffers in the whole daemon at most NFS_GATHER_FILES_MAX (64 MiB). */
#define NFS_GATHER_MAX	     (64u << 10)
#define NFS_GATHER_MS	     100
#define NFS_GATHER_FILES_MAX 1024
/* Kept data (see the top), bytes: per open file, and in the whole daemon. */
#define NFS_KEPT_FILE_MAX  (64u << 20)
#define NFS_KEPT_COMMIT_AT (16u << 20) /* a COMMIT starts in the background */
#define NFS_KEPT_TOTAL_MAX ((size_t)512 << 20)

/* ---- write-behind ---- */

int nfsb_wb_window(int lanes)
{
	int w = NFS_WB_WINDOW + (lanes > 2 ? (lanes - 2) * NFS_WB_WINDOW_LANE : 0);
	return w < NFS_WB_THREADS_MAX ? w : NFS_WB_THREADS_MAX;
}

struct wb_job {
	struct wb_job *next;  /* the queue */
	struct wb_job *fnext; /* every job not yet answered */
	struct nfs_file *f;
	struct nfs_client *cl;
	uint64_t seq; /* order of queueing */
	uint64_t off;
	size_t len;
	int stable;	   /* UNSTABLE4 or FILE_SYNC4 */
	int held;	   /* gathering (f->held): in wb_flying but not queued */
	long long held_ms; /* when it began to gather */
	/* Once answered and kept (f->kept, chained by next): whether the
	 * server took it, and the verifier it answered with. */
	int sent;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	int commit; /* not a WRITE: the background COMMIT of f's kept pieces */
	uint8_t data[];
};

static pthread_mutex_t wb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wb_work = PTHREAD_COND_INITIALIZER; /* a job was queued */
static pthread_cond_t wb_done = PTHREAD_COND_INITIALIZER; /* a job was answered */
static struct wb_job *wb_head, *wb_tail;		  /* queued, not yet taken by a writer */
static struct wb_job *wb_flying;			  /* queued or in flight */
static uint64_t wb_seq;					  /* jobs ever queued */
/* wb_idle: idle writers less queued jobs (below 0: jobs wait for a writer) */
static int wb_threads, wb_idle;
static int wb_held;	       /* held (gathering) jobs */
atomic_int nfsb_wb_count;      /* jobs in wb_flying: the hot paths' cheap test */
static struct wb_job *wb_pool; /* spare jobs of NFS_WB_BIG bytes, chained by next */
static int wb_pooled;
atomic_size_t nfsb_kept_total;

static struct wb_job *wb_job_new(size_t size)
{
	if (size > NFS_WB_BIG / 2 && size <= NFS_WB_BIG) {
		pthread_mutex_lock(&wb_lock);
		struct wb_job *j = wb_pool;
		if (j) {
			wb_pool = j->next;
			wb_pooled--;
		}
		pthread_mutex_unlock(&wb_lock);
		return j ? j : malloc(sizeof *j + NFS_WB_BIG);
	}
	return malloc(sizeof(struct wb_job) + size);
}

/* Caller holds wb_lock. */
static void wb_job_free_locked(struct wb_job *j)
{
	if (j->len > NFS_WB_BIG / 2 && j->len <= NFS_WB_BIG && wb_pooled < NFS_WB_POOL_MAX) {
		j->next = wb_pool;
		wb_pool = j;
		wb_pooled++;
	} else {
		free(j);
	}
}

static int same_fh(const struct nfs_fh *a, const struct nfs_fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Whether a job of the file fh (and, if len, one overlapping [off, off+len))
 * is queued or in flight; caller holds wb_lock. */
static int wb_busy_locked(const struct nfs_fh *fh, uint64_t off, size_t len)
{
	for (struct wb_job *j = wb_flying; j; j = j->fnext)
		if (!j->commit && same_fh(&j->f->of.fh, fh) &&
		    (!len || (off < j->off + j->len && j->off < off + len)))
			return 1;
	return 0;
}

static void *wb_main(void *arg);

/* Make sure a writer thread will take a queued job: start one if none is
 * idle (up to NFS_WB_THREADS_MAX); 0, or -1 if there is no writer at all.
 * Caller holds wb_lock. */
static int wb_writer_locked(void)
{
	if (wb_idle <= 0 && wb_threads < NFS_WB_THREADS_MAX) {
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &at, wb_main, NULL) == 0) {
			wb_threads++;
			wb_idle++;
		}
		pthread_attr_destroy(&at);
	}
	return wb_threads > 0 ? 0 : -1;
}

/* Queue j (already in wb_flying) for the writers; caller holds wb_lock and
 * made sure of a writer. */
static void wb_enqueue_locked(struct wb_job *j)
{
	j->next = NULL;
	if (wb_tail)
		wb_tail->next = j;
	else
		wb_head = j;
	wb_tail = j;
	/* Taken by an idle writer: the next write starts another. */
	wb_idle--;
	pthread_cond_signal(&wb_work);
}

/* Stop gathering j: it is sent as it is. Caller holds wb_lock. */
static void wb_unhold_locked(struct wb_job *j)
{
	j->f->held = NULL;
	j->held = 0;
	wb_held--;
}

/* Hand the held jobs to the writers: those of the file fh (every one if fh
 * is NULL), or those older than NFS_GATHER_MS if expired_only. A writer
 * exists: one was made sure of when each began. Caller holds wb_lock. */
static void wb_hand_over_locked(const struct nfs_fh *fh, int expired_only)
{
	if (wb_held == 0)
		return;
	long long now = expired_only ? nfs_now_ms() : 0;
	for (struct wb_job *j = wb_flying; j; j = j->fnext) {
		if (!j->held || (fh && !same_fh(&j->f->of.fh, fh)) ||
		    (expired_only && now - j->held_ms < NFS_GATHER_MS))
			continue;
		wb_unhold_locked(j);
		(void)wb_writer_locked();
		wb_enqueue_locked(j);
	}
}

/* Wait until no write to the file fh is in flight; 1 if it had to wait. */
int nfsb_wb_wait_fh(const struct nfs_fh *fh)
{
	int waited = 0;
	if (atomic_load(&nfsb_wb_count) == 0)
		return 0;
	pthread_mutex_lock(&wb_lock);
	while (wb_busy_locked(fh, 0, 0)) {
		waited = 1;
		wb_hand_over_locked(fh, 0);
		pthread_cond_wait(&wb_done, &wb_lock);
	}
	pthread_mutex_unlock(&wb_lock);
	return waited;
}

/* Wait until every write queued so far (by any file) is answered; later
 * ones may still be in flight, so a busy writer never starves the caller. */
void nfsb_wb_wait_queued(void)
{
	if (atomic_load(&nfsb_wb_count) == 0)
		return;
	pthread_mutex_lock(&wb_lock);
	uint64_t upto = wb_seq;
	wb_hand_over_locked(NULL, 0);
	for (;;) {
		struct wb_job *j;
		for (j = wb_flying; j && j->seq > upto; j = j->fnext)
			;
		if (!j)
			break;
		pthread_cond_wait(&wb_done, &wb_lock);
	}
	pthread_mutex_unlock(&wb_lock);
}

static void wb_send(struct wb_job *j);

/* Wait until every write of f is answered; the sticky error or 0. The held
 * (gathered) job is sent by this thread; commit_next: the caller COMMITs
 * next, so if that job is all f has uncommitted it goes FILE_SYNC4 and the
 * COMMIT has nothing to do. */
int nfsb_wb_drain(struct nfs_file *f, int commit_next)
{
	pthread_mutex_lock(&wb_lock);
	struct wb_job *h = f->held;
	int alone = f->wb_jobs == 1;
	if (h)
		wb_unhold_locked(h);
	pthread_mutex_unlock(&wb_lock);
	if (h) {
		if (commit_next && alone && h->stable != FILE_SYNC4 && !nfsb_kept_any(f))
			h->stable = FILE_SYNC4;
		wb_send(h);
	}
	pthread_mutex_lock(&wb_lock);
	while (f->wb_jobs)
		pthread_cond_wait(&wb_done, &wb_lock);
	int e = f->wb_err;
	pthread_mutex_unlock(&wb_lock);
	return e;
}

/* Put j at the end of f's kept list; caller holds wb_lock. */
static void kept_add_locked(struct nfs_file *f, struct wb_job *j)
{
	j->next = NULL;
	if (!f->kept)
		f->kept_tail = &f->kept;
	*f->kept_tail = j;
	f->kept_tail = &j->next;
	f->kept_bytes += j->len;
	atomic_fetch_add(&nfsb_kept_total, j->len);
}

/* Put the list l (oldest first) back before what f kept since; caller
 * holds wb_lock. */
static void kept_put_back_locked(struct nfs_file *f, struct wb_job *l)
{
	if (!l)
		return;
	struct wb_job *last = l;
	size_t bytes = l->len;
	for (; last->next; last = last->next)
		bytes += last->next->len;
	last->next = f->kept;
	if (!f->kept)
		f->kept_tail = &last->next;
	f->kept = l;
	f->kept_bytes += bytes;
}

/* Take f's whole kept list (the bytes stay counted in nfsb_kept_total
 * until freed); caller holds wb_lock. */
static struct wb_job *kept_take_locked(struct nfs_file *f)
{
	struct wb_job *l = f->kept;
	f->kept = NULL;
	f->kept_tail = &f->kept;
	f->kept_bytes = 0;
	return l;
}

static void kept_free_locked(struct wb_job *j)
{
	atomic_fetch_sub(&nfsb_kept_total, j->len);
	wb_job_free_locked(j);
}

/* j is over: out of wb_flying and of its file's jobs; caller holds
 * wb_lock and broadcasts wb_done. */
static void wb_unfly_locked(struct wb_job *j)
{
	for (struct wb_job **pp = &wb_flying; *pp; pp = &(*pp)->fnext) {
		if (*pp == j) {
			*pp = j->fnext;
			break;
		}
	}
	atomic_fetch_sub(&nfsb_wb_count, 1);
	j->f->wb_jobs--;
}

/* j's WRITE is over: err, else the server answered how (its verifier
 * verf). Kept while the server may lose it (see the top). */
static void wb_finish(struct wb_job *j, int err, int how, const uint8_t *verf)
{
	struct nfs_file *f = j->f;
	pthread_mutex_lock(&wb_lock);
	wb_unfly_locked(j);
	if (err && !f->wb_err)
		f->wb_err = err;
	if (!err && how != FILE_SYNC4) {
		j->sent = 1;
		memcpy(j->verf, verf, NFS4_VERIFIER_SIZE);
		kept_add_locked(f, j);
	} else if (err && be_unreachable(err)) {
		j->sent = 0;
		kept_add_locked(f, j);
	} else {
		wb_job_free_locked(j);
	}
	pthread_cond_broadcast(&wb_done);
	pthread_mutex_unlock(&wb_lock);
}

/* The background COMMIT j is over (what it covered is freed, the rest kept:
 * a failure shows in the file's next call). */
static void wb_commit_done(struct wb_job *j)
{
	pthread_mutex_lock(&wb_lock);
	wb_unfly_locked(j);
	j->f->committing = 0;
	free(j);
	pthread_cond_broadcast(&wb_done);
	pthread_mutex_unlock(&wb_lock);
}

static void wb_send(struct wb_job *j)
{
	if (j->commit) {
		(void)nfsb_settle(j->cl, j->f);
		wb_commit_done(j);
		return;
	}
	int how = FILE_SYNC4;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	int e = nfsb_write_all(j->cl, j->f, j->data, j->len, j->off, j->stable, &how, verf);
	wb_finish(j, e, how, verf);
}

void nfsb_kept_copy(struct nfs_file *f, const void *buf, size_t len, uint64_t off,
		    const uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct wb_job *j = wb_job_new(len);
	if (!j)
		return; /* short of memory: as before kept data, the COMMIT tells */
	memcpy(j->data, buf, len);
	j->f = f;
	j->off = off;
	j->len = len;
	j->sent = 1;
	memcpy(j->verf, verf, NFS4_VERIFIER_SIZE);
	pthread_mutex_lock(&wb_lock);
	kept_add_locked(f, j);
	pthread_mutex_unlock(&wb_lock);
}

int nfsb_kept_any(struct nfs_file *f)
{
	pthread_mutex_lock(&wb_lock);
	int any = f->kept != NULL;
	pthread_mutex_unlock(&wb_lock);
	return any;
}

int nfsb_settle(struct nfs_client *cl, struct nfs_file *f)
{
	int e = 0;
	for (int round = 0; !e; round++) {
		pthread_mutex_lock(&wb_lock);
		struct wb_job *l = kept_take_locked(f);
		pthread_mutex_unlock(&wb_lock);
		if (!l)
			return 0;
		/* Unsent pieces go out first, in the order they were written
		 * (pieces that overlap were never in flight together). */
		for (struct wb_job *j = l; j && !e; j = j->next) {
			int how = FILE_SYNC4;
			if (j->sent)
				continue;
			e = nfsb_write_all(cl, f, j->data, j->len, j->off, UNSTABLE4, &how,
					   j->verf);
			if (!e)
				j->sent = how == FILE_SYNC4 ? 2 : 1;
		}
		uint8_t cverf[NFS4_VERIFIER_SIZE];
		if (!e)
			e = nfs_commit(cl, &f->auth, &f->of.fh, 0, 0, cverf);
		int resend = 0;
		pthread_mutex_lock(&wb_lock);
		struct wb_job *rest = NULL, **tail = &rest;
		while (l) {
			struct wb_job *j = l;
			l = j->next;
			if (!e && (j->sent == 2 ||
				   memcmp(j->verf, cverf, NFS4_VERIFIER_SIZE) == 0)) {
				kept_free_locked(j);
				continue;
			}
			if (!e) {
				j->sent = 0; /* the server restarted and lost it */
				resend = 1;
			}
			j->next = NULL;
			*tail = j;
			tail = &j->next;
		}
		kept_put_back_locked(f, rest);
		pthread_mutex_unlock(&wb_lock);
		if (resend && round == 0)
			log_info("msg=unstable-resent target=%s (the server restarted and lost "
				 "writes it had not committed; they were sent again)",
				 f->tid);
		if (resend && round >= 8)
			e = -EIO; /* the verifier changes at every COMMIT */
	}
	return e;
}

void nfsb_wb_resume(struct nfs_file *f)
{
	pthread_mutex_lock(&wb_lock);
	f->wb_err = 0;
	pthread_mutex_unlock(&wb_lock);
}

void nfsb_wb_freeze(struct nfs_file *f)
{
	pthread_mutex_lock(&wb_lock);
	f->wb_err = -ENOTCONN;
	pthread_mutex_unlock(&wb_lock);
	nfsb_wb_drain(f, 0);
}

int nfsb_kept_walk(struct nfs_file *f, be_data_fn fn, void *ctx)
{
	/* Frozen (nfsb_wb_freeze): the list grows no more, so it can be
	 * walked without the lock while fn waits on another target. */
	pthread_mutex_lock(&wb_lock);
	struct wb_job *l = f->kept;
	pthread_mutex_unlock(&wb_lock);
	for (struct wb_job *j = l; j; j = j->next) {
		int e = fn(ctx, j->data, j->len, j->off);
		if (e)
			return e;
	}
	return 0;
}

void nfsb_kept_drop(struct nfs_file *f)
{
	pthread_mutex_lock(&wb_lock);
	struct wb_job *l = kept_take_locked(f);
	while (l) {
		struct wb_job *j = l;
		l = j->next;
		kept_free_locked(j);
	}
	pthread_mutex_unlock(&wb_lock);
}

static void *wb_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wb_lock);
	for (;;) {
		while (!wb_head) {
			if (wb_held == 0) {
				pthread_cond_wait(&wb_work, &wb_lock);
				continue;
			}
			/* Held jobs go out after NFS_GATHER_MS at the latest. */
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl); /* wb_work's clock */
			dl.tv_nsec += (long)NFS_GATHER_MS * 1000000L / 2;
			if (dl.tv_nsec >= 1000000000L) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&wb_work, &wb_lock, &dl);
			wb_hand_over_locked(NULL, 1);
		}
		struct wb_job *j = wb_head;
		wb_head = j->next;
		if (!wb_head)
			wb_tail = NULL;
		pthread_mutex_unlock(&wb_lock);
		wb_send(j);
		pthread_mutex_lock(&wb_lock);
		wb_idle++;
	}
	return NULL;
}

/* A job writing a copy of buf at off through cl. */
static void wb_job_fill(struct wb_job *j, struct nfs_client *cl, struct nfs_file *f,
			const char *buf, size_t size, uint64_t off, int stable)
{
	memcpy(j->data, buf, size);
	j->f = f;
	j->cl = cl;
	j->off = off;
	j->len = size;
	j->stable = stable;
	j->held = 0;
	j->commit = 0;
	j->next = NULL;
}

/* Count j among f's jobs and list it in wb_flying (the waits see it from
 * now on); caller holds wb_lock. */
static void wb_fly_locked(struct wb_job *j)
{
	j->f->wb_jobs++;
	j->seq = ++wb_seq;
	j->fnext = wb_flying;
	wb_flying = j;
	atomic_fetch_add(&nfsb_wb_count, 1);
}

/* Whether f keeps more than it may (see the top); caller holds wb_lock. */
static int kept_over_locked(const struct nfs_file *f)
{
	return f->kept_bytes > NFS_KEPT_FILE_MAX ||
	       atomic_load(&nfsb_kept_total) > NFS_KEPT_TOTAL_MAX;
}

/* Past NFS_KEPT_COMMIT_AT, queue f's COMMIT for a writer thread, unless one
 * is on its way or f met an error; caller holds wb_lock. */
static void kept_commit_soon_locked(struct nfs_client *cl, struct nfs_file *f)
{
	if (f->kept_bytes < NFS_KEPT_COMMIT_AT || f->committing || f->wb_err)
		return;
	struct wb_job *j = calloc(1, sizeof *j);
	if (!j || wb_writer_locked() != 0) {
		free(j);
		return; /* the bound above makes the writer commit */
	}
	j->commit = 1;
	j->f = f;
	j->cl = cl;
	f->committing = 1;
	wb_fly_locked(j);
	wb_enqueue_locked(j);
}

/* A writer past the bound on kept data waits for its file's COMMIT. */
static ssize_t kept_bound(struct nfs_client *cl, struct nfs_file *f, ssize_t took)
{
	pthread_mutex_lock(&wb_lock);
	int over = kept_over_locked(f);
	if (!over)
		kept_commit_soon_locked(cl, f);
	pthread_mutex_unlock(&wb_lock);
	if (!over)
		return took;
	int e = nfsb_wb_drain(f, 0);
	if (!e)
		e = nfsb_settle(cl, f);
	return e ? e : took;
}

/* Queue a copy of buf for the writers; size, or -errno (the file's sticky
 * error). Waits while the file's window is full or an earlier write to the
 * same bytes is in flight. */
ssize_t nfsb_wb_queue(struct nfs_client *cl, struct nfs_file *f, const char *buf, size_t size,
		      uint64_t off, int stable)
{
	struct wb_job *j = wb_job_new(size);
	int e;
	if (!j) {
		/* Short of memory: write it through, after what is in flight,
		 * and stable (there is no copy to keep). */
		e = nfsb_wb_drain(f, 0);
		if (!e)
			e = nfsb_write_all(cl, f, (const uint8_t *)buf, size, off, FILE_SYNC4,
					   NULL, NULL);
		return e ? e : (ssize_t)size;
	}
	wb_job_fill(j, cl, f, buf, size, off, stable);
	pthread_mutex_lock(&wb_lock);
	while (!f->wb_err &&
	       (f->wb_jobs >= f->window || wb_busy_locked(&f->of.fh, off, size))) {
		wb_hand_over_locked(&f->of.fh, 0);
		pthread_cond_wait(&wb_done, &wb_lock);
	}
	e = f->wb_err;
	if (e) {
		wb_job_free_locked(j);
		pthread_mutex_unlock(&wb_lock);
		return e;
	}
	wb_fly_locked(j);
	int inline_write = wb_writer_locked() != 0; /* no writer could be started */
	if (!inline_write)
		wb_enqueue_locked(j);
	pthread_mutex_unlock(&wb_lock);
	if (inline_write)
		wb_send(j);
	return kept_bound(cl, f, (ssize_t)size);
}

/* Gather a small write (see the top): added to f's held job if it
 * continues it, else held as a new one if it is small; size if so, else 0
 * (then the caller queues it, the held job having been handed on). */
ssize_t nfsb_wb_gather(struct nfs_client *cl, struct nfs_file *f, const char *buf, size_t size,
		       uint64_t off, int stable)
{
	ssize_t took = 0;
	pthread_mutex_lock(&wb_lock);
	struct wb_job *h = f->held;
	if (h && !f->wb_err && off == h->off + h->len && size <= NFS_GATHER_MAX - h->len &&
	    !wb_busy_locked(&f->of.fh, off, size)) {
		memcpy(h->data + h->len, buf, size);
		h->len += size;
		if (h->len == NFS_GATHER_MAX)
			wb_hand_over_locked(&f->of.fh, 0);
		took = (ssize_t)size;
	} else {
		if (h)
			wb_hand_over_locked(&f->of.fh, 0);
		struct wb_job *j = NULL;
		if (size <= NFS_GATHER_MAX / 2 && !f->wb_err && wb_held < NFS_GATHER_FILES_MAX &&
		    f->wb_jobs < f->window && !wb_busy_locked(&f->of.fh, off, size) &&
		    wb_writer_locked() == 0)
			j = malloc(sizeof *j + NFS_GATHER_MAX);
		if (j) {
			wb_job_fill(j, cl, f, buf, size, off, stable);
			wb_fly_locked(j);
			j->held = 1;
			j->held_ms = nfs_now_ms();
			f->held = j;
			/* an idle writer sleeps without a limit while none is held */
			if (wb_held++ == 0)
				pthread_cond_signal(&wb_work);
			took = (ssize_t)size;
		}
	}
	pthread_mutex_unlock(&wb_lock);
	return took ? kept_bound(cl, f, took) : 0;
}
