/*
 * nfs_lock.c - POSIX and flock locks held on the server, so that they
 * exclude other hosts as well as this one.
 *
 * Each lock state is an NFSv4 lock-owner of its own on the lane of the
 * open it was made through (backend.h); its first LOCK turns that open's
 * stateid into a lock stateid. The server keeps the locks while the
 * client's lease lives: a new client ID (the server restarted, or forgot
 * us while unreachable) or a re-open of the file means they are gone.
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

#include "backends/backend.h"
#include "nfs/nfs4.h"
#include "backends/target.h"
#include "nfs_be.h"

struct nfs_lockstate {
	struct nfs_file *f;
	struct nfs_lock lk;
	uint64_t clientid;  /* when the first lock was granted */
	unsigned state_gen; /* f's re-opens then */
};

#define LS(ls) ((struct nfs_lockstate *)(uintptr_t)(ls))

int nfs_be_lock_new(struct target *t, uint64_t fh, int kind, uint64_t *ls)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	struct nfs_lockstate *s = calloc(1, sizeof *s);
	(void)kind; /* flock is a whole-file lock of an owner of its own, as on Linux */
	if (!s)
		return -ENOMEM;
	s->f = f;
	s->lk.owner = nfs_next_owner(NT(t)->lane[f->lane]);
	*ls = (uint64_t)(uintptr_t)s;
	return 0;
}

static int lock_lapsed(struct target *t, struct nfs_lockstate *s)
{
	if (!s->lk.have)
		return 0;
	struct nfs_stateid sid;
	unsigned gen = nfsb_file_sid(s->f, &sid);
	return gen != s->state_gen || nfs_client_current_id(NT(t)->lane[s->f->lane]) != s->clientid;
}

int nfs_be_lock_check(struct target *t, uint64_t ls)
{
	return lock_lapsed(t, LS(ls)) ? -ENOLCK : 0;
}

static uint64_t nfs_lock_len(off_t len)
{
	return len == 0 ? NFS_LOCK_TO_EOF : (uint64_t)len;
}

/* What was written through the lock's open is answered and committed, so
 * the next holder, on any host, reads it. */
static int lock_sync(struct target *t, struct nfs_lockstate *s)
{
	nfsb_wb_wait_fh(&s->f->of.fh); /* other handles' writes to the file */
	int e = nfsb_wb_drain(s->f, 1);
	return e ? e : nfsb_commit_file(t, s->f);
}

int nfs_be_lock_set(struct target *t, uint64_t ls, const struct be_lock *lk, int waiting)
{
	struct nfs_lockstate *s = LS(ls);
	struct nfs_file *f = s->f;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	uint64_t off = (uint64_t)lk->start, len = nfs_lock_len(lk->len);
	if (lock_lapsed(t, s))
		return -ENOLCK;
	if (lk->type == F_UNLCK) {
		if (!s->lk.have)
			return 0;
		int e = lock_sync(t, s);
		if (e)
			return e;
		e = nfs_unlock(cl, &f->auth, &f->of, &s->lk, off, len);
		return e == -EBADF ? -ENOLCK : e;
	}
	uint32_t type =
	    lk->type == F_RDLCK ? (waiting ? READW_LT : READ_LT) : (waiting ? WRITEW_LT : WRITE_LT);
	int had = s->lk.have;
	for (int attempt = 0;; attempt++) {
		struct nfs_open of;
		pthread_mutex_lock(&f->lock);
		of = f->of;
		unsigned gen = f->state_gen;
		pthread_mutex_unlock(&f->lock);
		int e = nfs_lock(cl, &f->auth, &of, &s->lk, type, off, len, NULL);
		if (e == -EBADF && had)
			return -ENOLCK; /* our lock stateid is gone: so are its locks */
		if (e == -EBADF && attempt == 0) {
			/* The open itself was lost, and no lock with it. */
			if (nfsb_file_reopen(cl, f, gen))
				return -EIO;
			continue;
		}
		if (e)
			return e;
		if (!had) {
			s->clientid = nfs_client_current_id(cl);
			s->state_gen = gen;
			atomic_fetch_add(&f->locked, 1);
		}
		/* Another host may have written under the lock we now hold: what
		 * the OPEN read ahead, and its attributes, are no longer enough. */
		atomic_fetch_add(&nfs_write_gen, 1);
		return 0;
	}
}

int nfs_be_lock_get(struct target *t, uint64_t ls, struct be_lock *lk)
{
	struct nfs_lockstate *s = LS(ls);
	struct nfs_file *f = s->f;
	struct nfs_lock_conflict cf;
	uint32_t type = lk->type == F_RDLCK ? READ_LT : WRITE_LT;
	int e = nfs_testlock(NT(t)->lane[f->lane], &f->auth, &f->of.fh, s->lk.owner, type,
			     (uint64_t)lk->start, nfs_lock_len(lk->len), &cf);
	if (e == 0) {
		lk->type = F_UNLCK;
		return 0;
	}
	if (e != -EAGAIN)
		return e;
	lk->type = cf.type == READ_LT || cf.type == READW_LT ? F_RDLCK : F_WRLCK;
	lk->start = (off_t)cf.offset;
	lk->len =
	    cf.length == NFS_LOCK_TO_EOF || cf.length > (uint64_t)INT64_MAX ? 0 : (off_t)cf.length;
	lk->pid = 0; /* another client's: no process of this host */
	return 0;
}

void nfs_be_lock_free(struct target *t, uint64_t ls)
{
	struct nfs_lockstate *s = LS(ls);
	struct nfs_file *f = s->f;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	if (s->lk.have) {
		if (!lock_lapsed(t, s)) {
			(void)lock_sync(t, s);
			if (nfs_unlock(cl, &f->auth, &f->of, &s->lk, 0, NFS_LOCK_TO_EOF) == 0)
				(void)nfs_free_stateid(cl, &f->auth, &s->lk.stateid);
		}
		atomic_fetch_sub(&f->locked, 1);
	}
	free(s);
}
