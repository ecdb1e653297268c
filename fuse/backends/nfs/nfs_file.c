/*
 * nfs_file.c - open files: each holds an NFSv4 open of its own on the
 * server, which its reads and writes go through and which the COMMIT on
 * close makes durable, as with the kernel client (close-to-open).
 *
 * Writes go out UNSTABLE4; flush (close(2)), fsync and release COMMIT them
 * (as the kernel client commits on close; EFS answers every WRITE as
 * FILE_SYNC4, so there it costs nothing). What the server may still lose
 * is kept until then (nfs_wb.c) and sent again when a COMMIT's verifier
 * shows the server lost it. backend_nfs_set_commit_on_close(0) leaves the
 * COMMIT to fsync and release.
 * The first write of an empty file, if small, asks FILE_SYNC4 instead
 * (NFS_SYNC_FIRST_MAX): a small file then needs no COMMIT at all, as on EFS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backend_nfs.h"
#include "base/log.h"
#include "nfs/nfs4.h"
#include "nfs/wait.h"
#include "backends/target.h"
#include "nfs_be.h"

#define NFS_FALLOCATE_CHUNK (1u << 20) /* zeros per WRITE when allocating */
/* A read-only OPEN also reads this much (less if the server's reply cache
 * takes less, see nfs_cached_read_max): a small file is then opened and
 * read in one round trip (its data as of the open: close-to-open). */
#define NFS_PREFETCH_BYTES (64u << 10)
/* The kernel asks an open file's attributes right after opening it (its
 * own have expired): the ones the OPEN returned answer that for this long,
 * unless a write or setattr through the handle, or any write or change of
 * names or attributes through this daemon (nfs_attr_gen), came in between. */
#define NFS_OPEN_ATTR_TTL_MS 200
/* The first write to an empty file, at offset 0 and at most this long, is
 * sent FILE_SYNC4: a small file written whole is then durable when that
 * WRITE is answered, and the COMMIT that close(2) would wait for (one more
 * round trip) is not needed. A file that goes on growing pays one server
 * sync of its first bytes. */
#define NFS_SYNC_FIRST_MAX (256u << 10) /* bytes */

static atomic_int nfs_commit_on_close = 1;
/* Counts writes through this daemon: a file's start read with its OPEN
 * serves reads only while no write came in since. */
atomic_uint nfs_write_gen;
/* Counts the other changes through this daemon that move some file's
 * attributes (a name removed or added: nlink; a setattr; a truncating
 * open): the attributes an OPEN returned answer fgetattr only while
 * neither count moved (an unlinked open file must show nlink 0 at once). */
static atomic_uint nfs_attr_gen;

void nfsb_attrs_changed(void)
{
	atomic_fetch_add(&nfs_attr_gen, 1);
}

void backend_nfs_set_commit_on_close(int on)
{
	atomic_store(&nfs_commit_on_close, on ? 1 : 0);
}

/* The file's current stateid and how many re-opens it has seen. */
unsigned nfsb_file_sid(struct nfs_file *f, struct nfs_stateid *sid)
{
	pthread_mutex_lock(&f->lock);
	*sid = f->of.stateid;
	unsigned gen = f->state_gen;
	pthread_mutex_unlock(&f->lock);
	return gen;
}

/* The server no longer knows the file's open (-EBADF: it restarted, or the
 * lease expired while it was unreachable): open it again by its handle,
 * once per loss, so that the handle goes on working. 0 to try the call
 * again, else -EIO (and the loss is in the log). */
int nfsb_file_reopen(struct nfs_client *cl, struct nfs_file *f, unsigned seen)
{
	int e = 0;
	if (atomic_load(&f->locked)) {
		/* Its locks are gone with it: going on would write without them. */
		log_warn("msg=open-file-lost target=%s (the server forgot an open file that "
			 "holds locks; its locks are lost and its reads and writes fail with EIO)",
			 f->tid);
		return -EIO;
	}
	pthread_mutex_lock(&f->lock);
	if (f->state_gen == seen) {
		struct nfs_open of = f->of;
		e = nfs_reopen(cl, &f->auth, &of);
		if (!e) {
			f->of.stateid = of.stateid;
			f->of.owner = of.owner;
			f->state_gen++;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (be_unreachable(e))
		return e; /* not an answer: the front waits for the target */
	if (e)
		log_warn("msg=open-file-lost target=%s error=\"%s\" (the server forgot an open "
			 "file and refused to open it again; its reads and writes fail with EIO)",
			 f->tid, strerror(-e));
	else
		log_info("msg=open-file-reopened target=%s (the server had lost its open state)",
			 f->tid);
	return e ? -EIO : 0;
}

/* All of buf at off, as WRITEs asking for stable (UNSTABLE4, FILE_SYNC4);
 * 0 or -errno. *how (if not NULL) gets the weakest level answered, verf
 * the verifier of the last WRITE. */
int nfsb_write_all(struct nfs_client *cl, struct nfs_file *f, const uint8_t *buf, size_t len,
		   uint64_t off, int stable, int *how_out, uint8_t verf_out[NFS4_VERIFIER_SIZE])
{
	int reopened = 0;
	if (how_out)
		*how_out = FILE_SYNC4;
	while (len) {
		uint8_t verf[NFS4_VERIFIER_SIZE];
		int how;
		struct nfs_stateid sid;
		unsigned gen = nfsb_file_sid(f, &sid);
		ssize_t n =
		    nfs_write(cl, &f->auth, &f->of.fh, &sid, buf, len, off, stable, &how, verf);
		if (n == -EBADF && !reopened++) {
			int e = nfsb_file_reopen(cl, f, gen);
			if (e)
				return e;
			continue;
		}
		if (n <= 0)
			return n == -EBADF ? -EIO : n < 0 ? (int)n : -EIO;
		if (how_out && how < *how_out)
			*how_out = how;
		if (verf_out)
			memcpy(verf_out, verf, NFS4_VERIFIER_SIZE);
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- files ---- */

int nfsb_open_at(struct target *t, const struct rpc_auth *cr, const char *path, int flags,
		 mode_t mode, struct nfs_file **out, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_file *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	struct nfs_client *cl = pick_lane(nt, &f->lane);
	f->window = nfsb_wb_window(nt->nlanes);
	f->auth = *cr;
	f->tid = t->id;
	if ((flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_DIRECT)))
		f->pre = malloc(NFS_PREFETCH_BYTES); /* none if short of memory */
	f->pre_gen = atomic_load(&nfs_write_gen);
	f->attr_gen = atomic_load(&nfs_attr_gen);
	if (atomic_load(&nfsb_wb_count)) {
		/* Open (truncate, prefetch) after the file's writes in flight. */
		struct nfs_fh cur;
		int fresh;
		if (nfsb_resolve(nt, cl, cr, path, &cur, NULL, &fresh) == 0)
			nfsb_wb_wait_fh(&cur);
	}
	int e = -ESTALE;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh dir;
		struct nfs_attr a;
		const char *name;
		e = nfsb_resolve_parent(nt, cl, cr, path, &dir, &name);
		if (!e && f->pre)
			e = nfs_open_read(cl, cr, &dir, name, flags, (uint32_t)mode, &f->of, &a,
					  f->pre, NFS_PREFETCH_BYTES, &f->pre_len, &f->pre_eof);
		else if (!e)
			e = nfs_open(cl, cr, &dir, name, flags, (uint32_t)mode, &f->of, &a);
		if (e == -ESTALE && attempt == 0) {
			nfsb_forget_parent(nt, path);
			continue;
		}
		if (!e) {
			nfsb_cache_put(nt, nfsb_auth_key(cr), path, &f->of.fh);
			if (st)
				to_stat(&a, st);
			to_stat(&a, &f->open_attr);
			f->open_attr_ms = nfs_now_ms();
		}
		break;
	}
	if (e) {
		free(f->pre);
		free(f);
		return e;
	}
	if (f->pre && f->pre_len == 0 && !f->pre_eof) {
		free(f->pre);
		f->pre = NULL;
	} else if (f->pre && f->pre_len < NFS_PREFETCH_BYTES) {
		uint8_t *small = realloc(f->pre, f->pre_len ? f->pre_len : 1);
		if (small)
			f->pre = small;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->append_lock, NULL);
	f->append = (flags & O_APPEND) != 0;
	f->direct = (flags & O_DIRECT) != 0;
	f->sync_first = (flags & O_ACCMODE) != O_RDONLY && f->open_attr.st_size == 0;
	*out = f;
	return 0;
}

int nfs_be_create(struct target *t, const struct be_caller *c, const char *path, int flags,
		  mode_t mode, uint64_t *fh, struct stat *st)
{
	struct rpc_auth au;
	struct nfs_file *f;
	mode_t um = c ? c->umask : 0;
	int e = nfsb_open_at(t, nfsb_req_auth(c, &au), path, flags | O_CREAT, mode & ~um, &f, st);
	if (e)
		return e;
	*fh = (uint64_t)(uintptr_t)f;
	return 0;
}

int nfs_be_open(struct target *t, const char *path, int flags, uint64_t *fh)
{
	struct nfs_file *f;
	struct rpc_auth au;
	int e = nfsb_open_at(t, nfsb_req_auth(NULL, &au), path, flags & ~(O_CREAT | O_EXCL), 0, &f,
			     NULL);
	if (e)
		return e;
	*fh = (uint64_t)(uintptr_t)f;
	return 0;
}

/* A read, with the data left where it arrived: in the OPEN's prefetch (no
 * keep) or in the READ reply (*keep). */
ssize_t nfs_be_read_ref(struct target *t, uint64_t fh, size_t size, off_t off, const char **data,
			void **keep)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	int eof;
	*keep = NULL;
	if (off < 0)
		return -EINVAL;
	nfsb_wb_wait_fh(&f->of.fh);
	if (f->pre && atomic_load(&nfs_write_gen) == f->pre_gen) {
		/* Served from what the OPEN read, when it covers the request. A
		 * copy: the reply may still be on its way when the kernel, which
		 * has its data already, sends the release that frees f. */
		uint64_t o = (uint64_t)off;
		size_t n = 0;
		int hit = 1;
		if (o + size <= f->pre_len)
			n = size;
		else if (f->pre_eof)
			n = o < f->pre_len ? f->pre_len - (size_t)o : 0;
		else
			hit = 0;
		if (hit) {
			char *copy = malloc(n ? n : 1);
			if (copy) {
				if (n)
					memcpy(copy, f->pre + o, n);
				*keep = copy;
				*data = copy;
				return (ssize_t)n;
			}
		}
	}
	struct nfs_client *cl = io_lane(NT(t), f, size, atomic_fetch_add(&f->reads, 1) > 0);
	struct nfs_stateid sid;
	unsigned gen = nfsb_file_sid(f, &sid);
	const uint8_t **d = (const uint8_t **)data;
	ssize_t n = nfs_read_ref(cl, &f->auth, &f->of.fh, &sid, size, (uint64_t)off, &eof, d, keep);
	atomic_fetch_sub(&f->reads, 1);
	if (n == -EBADF) {
		int e = nfsb_file_reopen(cl, f, gen);
		if (e)
			return e;
		nfsb_file_sid(f, &sid);
		n = nfs_read_ref(cl, &f->auth, &f->of.fh, &sid, size, (uint64_t)off, &eof, d, keep);
		if (n == -EBADF)
			n = -EIO;
	}
	return n;
}

ssize_t nfs_be_write(struct target *t, uint64_t fh, const char *buf, size_t size, off_t off)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	if (off < 0)
		return -EINVAL;
	struct nfs_client *cl = io_lane(NT(t), f, size, atomic_load(&f->wb_jobs) > 0);
	pthread_mutex_lock(&f->lock);
	f->open_attr_ms = 0;
	int sync = f->sync_first && off == 0 && size <= NFS_SYNC_FIRST_MAX &&
		   atomic_load(&nfs_commit_on_close);
	f->sync_first = 0;
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&nfs_write_gen, 1);
	if (f->direct && !f->append) {
		/* O_DIRECT: on the server and stable when write returns, as the
		 * kernel client does (nothing gathered, queued or left for a
		 * COMMIT). Several such writes fly at once from several workers. */
		int e = nfsb_wb_drain(f, 0);
		if (!e)
			e = nfsb_write_all(cl, f, (const uint8_t *)buf, size, (uint64_t)off,
					   FILE_SYNC4, NULL, NULL);
		return e ? e : (ssize_t)size;
	}
	if (!f->append) {
		int stable = sync ? FILE_SYNC4 : UNSTABLE4;
		ssize_t took = nfsb_wb_gather(cl, f, buf, size, (uint64_t)off, stable);
		return took ? took : nfsb_wb_queue(cl, f, buf, size, (uint64_t)off, stable);
	}
	/* The kernel's offset is its cached size; another client may have
	 * grown the file since. Like the kernel NFS client: the server's size,
	 * then the write (not atomic across clients), so appends go through. */
	struct nfs_attr a;
	int how = FILE_SYNC4;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	pthread_mutex_lock(&f->append_lock);
	int e = nfsb_wb_drain(f, 0);
	if (!e)
		e = nfs_getattr(cl, &f->auth, &f->of.fh, &a);
	if (!e)
		e = nfsb_write_all(cl, f, (const uint8_t *)buf, size, (uint64_t)a.st.st_size,
				   f->direct ? FILE_SYNC4 : UNSTABLE4, &how, verf);
	if (!e && how != FILE_SYNC4)
		nfsb_kept_copy(f, buf, size, (uint64_t)a.st.st_size, verf);
	pthread_mutex_unlock(&f->append_lock);
	return e ? e : (ssize_t)size;
}

int nfs_be_handle_fd(struct target *t, uint64_t fh)
{
	(void)t;
	(void)fh;
	return -1;
}

int nfs_be_fgetattr(struct target *t, uint64_t fh, struct stat *st)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	struct nfs_attr a;
	pthread_mutex_lock(&f->lock);
	long long at = f->open_attr_ms;
	/* Not after a write through any handle (its size may have moved) nor
	 * another change through us (a name gone: nlink). */
	if (at && nfs_now_ms() - at < NFS_OPEN_ATTR_TTL_MS &&
	    atomic_load(&nfs_write_gen) == f->pre_gen &&
	    atomic_load(&nfs_attr_gen) == f->attr_gen) {
		*st = f->open_attr;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	f->open_attr_ms = 0;
	pthread_mutex_unlock(&f->lock);
	nfsb_wb_wait_fh(&f->of.fh);
	int e = nfs_getattr(NT(t)->lane[f->lane], &f->auth, &f->of.fh, &a);
	if (!e)
		to_stat(&a, st);
	return e;
}

/* Make what f wrote stable on the server (nfs_wb.c, nfsb_settle). */
int nfsb_commit_file(struct target *t, struct nfs_file *f)
{
	return nfsb_settle(NT(t)->lane[f->lane], f);
}

int nfs_be_fsync(struct target *t, uint64_t fh, int datasync)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	(void)datasync;
	int e = nfsb_wb_drain(f, 1);
	return e ? e : nfsb_commit_file(t, f);
}

/* close(2): what was written is answered and, unless commit-on-close is
 * off, committed; a write that failed on the way is reported here. */
int nfs_be_flush(struct target *t, uint64_t fh)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	int commit = atomic_load(&nfs_commit_on_close);
	int e = nfsb_wb_drain(f, commit);
	if (!e && commit)
		e = nfsb_commit_file(t, f);
	return e;
}

int nfs_be_release(struct target *t, uint64_t fh)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	int e = nfsb_wb_drain(f, 1);
	/* What is still kept (the front settles a handle with kept data
	 * before it lets go of it: this is what a failed target left). */
	if (!e)
		e = nfsb_commit_file(t, f);
	nfsb_kept_drop(f);
	int ce = nfs_close(NT(t)->lane[f->lane], &f->auth, &f->of);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->append_lock);
	free(f->pre);
	free(f);
	return e ? e : ce;
}

/* The target answers again after a failure: what f kept goes out again
 * (the open reopened by its handle if the server lost it) and is made
 * stable. */
int nfs_be_resume(struct target *t, uint64_t fh)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	nfsb_wb_resume(f);
	int e = nfsb_wb_drain(f, 0);
	return e ? e : nfsb_commit_file(t, f);
}

/* f is left for a handle on another target: it writes no more, and what
 * it kept goes to fn (or, fn NULL, is forgotten: the other has it). */
int nfs_be_pending(struct target *t, uint64_t fh, be_data_fn fn, void *ctx)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	(void)t;
	if (!fn) {
		nfsb_kept_drop(f);
		return 0;
	}
	nfsb_wb_freeze(f);
	return nfsb_kept_walk(f, fn, ctx);
}

/* A WRITE sent before the failure may still be carried out by the server
 * (stuck in a queue, a server that was paused) while it holds the open
 * state valid: until the lease from its last answer runs out. */
long long nfs_be_fence_ms(struct target *t, uint64_t fh)
{
	struct nfs_target *nt = NT(t);
	long long left = 0;
	(void)fh;
	/* Any lane's answer renewed the lease of the one client they are. */
	for (int i = 0; i < nt->nlanes; i++) {
		long long l = nfs_client_lease_left_ms(nt->lane[i]);
		if (l > left)
			left = l;
	}
	return left;
}

/* ALLOCATE and DEALLOCATE are NFSv4.2 (EFS speaks 4.1). Mode 0 past the
 * end of file is done by writing zeros there, which allocates as well; the
 * rest (keep-size, punching, allocating inside the file) is EOPNOTSUPP. */
int nfs_be_fallocate(struct target *t, uint64_t fh, int mode, off_t off, off_t len)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	struct nfs_attr a;
	if (mode != 0)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0 || off > INT64_MAX - len)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	f->open_attr_ms = 0;
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&nfs_write_gen, 1); /* it writes: as nfs_be_write */
	int e = nfsb_wb_drain(f, 0);
	if (!e)
		e = nfs_getattr(cl, &f->auth, &f->of.fh, &a);
	if (e)
		return e;
	uint64_t from =
	    (uint64_t)a.st.st_size > (uint64_t)off ? (uint64_t)a.st.st_size : (uint64_t)off;
	uint64_t end = (uint64_t)off + (uint64_t)len;
	if (from >= end)
		return 0;
	if (from > (uint64_t)a.st.st_size)
		from = (uint64_t)a.st.st_size; /* fill the gap too: no holes to allocate later */
	size_t chunk = NFS_FALLOCATE_CHUNK;
	char *zeros = calloc(1, chunk);
	if (!zeros)
		return -ENOMEM;
	while (!e && from < end) {
		size_t n = end - from < chunk ? (size_t)(end - from) : chunk;
		ssize_t w = nfs_write(cl, &f->auth, &f->of.fh, &f->of.stateid, zeros, n, from,
				      FILE_SYNC4, NULL, NULL);
		if (w <= 0)
			e = w < 0 ? (int)w : -EIO;
		else
			from += (uint64_t)w;
	}
	free(zeros);
	return e;
}

off_t nfs_be_lseek(struct target *t, uint64_t fh, off_t off, int whence)
{
	(void)t, (void)fh, (void)off, (void)whence;
	return -ENOSYS; /* SEEK is NFSv4.2; the kernel falls back to its own */
}

ssize_t nfs_be_copy_range(struct target *t, uint64_t fh_in, off_t off_in, uint64_t fh_out,
			  off_t off_out, size_t len, int flags)
{
	(void)t, (void)fh_in, (void)off_in, (void)fh_out, (void)off_out, (void)len, (void)flags;
	return -ENOSYS; /* COPY is NFSv4.2; the kernel copies through read/write */
}
