/*
 * nfs_dir.c - directory listing: a READDIR reads many entries, kept for
 * the next calls, while FUSE asks for as many as fit in its small buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "nfs/nfs4.h"
#include "backends/target.h"
#include "nfs_be.h"

#define NFS_DIR_DOT    1 /* readdir offset after "." */
#define NFS_DIR_DOTDOT 2 /* readdir offset after ".."; NFS cookies are > 2 */
#define NFS_DOTDOT_INO 1 /* the parent's number is not known here */

struct dir_entry {
	char *name;
	uint64_t cookie;
	struct nfs_attr attr;
};

struct nfs_dir {
	struct nfs_fh fh;
	struct stat self;
	struct rpc_auth auth; /* the opener's */
	int lane;
	pthread_mutex_t lock;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	/* The last READDIR's entries, so a small FUSE buffer does not cost a
	 * READDIR per call. */
	struct dir_entry *ents;
	size_t n, cap;
	uint64_t batch_cookie; /* the cookie this batch was read from */
	int batch_valid;
	int batch_eof;
};

static void dir_drop_batch(struct nfs_dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	d->n = 0;
	d->batch_valid = 0;
}

int nfs_be_opendir(struct target *t, const char *path, uint64_t *dh)
{
	struct nfs_target *nt = NT(t);
	struct nfs_dir *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	struct nfs_client *cl = pick_lane(nt, &d->lane);
	const struct rpc_auth *cr = nfsb_req_auth(NULL, &d->auth);
	int e = -ESTALE;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_attr a;
		int fresh;
		uint32_t allowed = 0;
		e = nfsb_resolve(nt, cl, cr, path, &d->fh, &a, &fresh);
		/* Listing needs read permission, as opendir(3) checks locally. */
		if (!e)
			e = nfs_getattr_access(cl, cr, &d->fh, ACCESS4_READ, &allowed, &a);
		if (e == -ESTALE && attempt == 0) {
			nfsb_cache_forget_chain(nt, path);
			continue;
		}
		if (!e && !S_ISDIR(a.st.st_mode))
			e = -ENOTDIR;
		if (!e && !(allowed & ACCESS4_READ))
			e = -EACCES;
		if (!e)
			to_stat(&a, &d->self);
		break;
	}
	if (e) {
		free(d);
		return e;
	}
	pthread_mutex_init(&d->lock, NULL);
	*dh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int batch_add(void *ctx, const char *name, uint64_t cookie, const struct nfs_attr *a)
{
	struct nfs_dir *d = ctx;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct dir_entry *ne = realloc(d->ents, cap * sizeof *ne);
		if (!ne)
			return 1;
		d->ents = ne;
		d->cap = cap;
	}
	char *nm = strdup(name);
	if (!nm)
		return 1;
	d->ents[d->n++] = (struct dir_entry){nm, cookie, *a};
	return 0;
}

/* Make the batch hold the entries after cookie; *start gets the index of
 * the first of them. */
static int dir_fetch(struct target *t, struct nfs_dir *d, uint64_t cookie, size_t *start)
{
	if (d->batch_valid) {
		if (d->batch_cookie == cookie) {
			*start = 0;
			return 0;
		}
		for (size_t i = 0; i < d->n; i++) {
			if (d->ents[i].cookie == cookie) {
				if (i + 1 < d->n || d->batch_eof) {
					*start = i + 1;
					return 0;
				}
				break;
			}
		}
	}
	dir_drop_batch(d);
	if (cookie == 0)
		memset(d->verf, 0, sizeof d->verf);
	int eof = 0;
	int e = nfs_readdir(NT(t)->lane[d->lane], &d->auth, &d->fh, cookie, d->verf, 0, batch_add,
			    d, &eof);
	if (e) {
		dir_drop_batch(d);
		return e;
	}
	d->batch_valid = 1;
	d->batch_cookie = cookie;
	d->batch_eof = eof;
	*start = 0;
	return 0;
}

static int emit_dot(struct nfs_dir *d, const char *name, off_t next, int plus, be_fill_fn fill,
		    void *ctx)
{
	struct be_dirent ent;
	memset(&ent, 0, sizeof ent);
	ent.name = name;
	ent.type = S_IFDIR;
	ent.next = next;
	/* readdir(3) hides entries of inode 0: ".." needs some number. */
	ent.ino = NFS_DOTDOT_INO;
	if (name[1] == '\0' && d->self.st_ino)
		ent.ino = d->self.st_ino;
	if (plus && name[1] == '\0')
		ent.attr = d->self;
	/* readdirplus takes the number from the attributes. */
	ent.attr.st_ino = ent.ino;
	ent.attr.st_mode |= S_IFDIR;
	return fill(ctx, &ent);
}

int nfs_be_readdir(struct target *t, uint64_t dh, off_t off, int plus, be_fill_fn fill, void *ctx)
{
	struct nfs_dir *d = (struct nfs_dir *)(uintptr_t)dh;
	int e = 0;
	pthread_mutex_lock(&d->lock);
	if (off == 0) {
		if (emit_dot(d, ".", NFS_DIR_DOT, plus, fill, ctx))
			goto out;
		off = NFS_DIR_DOT;
	}
	if (off == NFS_DIR_DOT) {
		if (emit_dot(d, "..", NFS_DIR_DOTDOT, plus, fill, ctx))
			goto out;
		off = NFS_DIR_DOTDOT;
	}
	uint64_t cookie = off == NFS_DIR_DOTDOT ? 0 : (uint64_t)off;
	/* The sizes listed must not predate a write already acknowledged. */
	if (plus)
		nfsb_wb_wait_queued();
	for (;;) {
		size_t i;
		e = dir_fetch(t, d, cookie, &i);
		if (e)
			break;
		for (; i < d->n; i++) {
			struct dir_entry *de = &d->ents[i];
			struct be_dirent ent;
			memset(&ent, 0, sizeof ent);
			ent.name = de->name;
			ent.ino = de->attr.st.st_ino;
			ent.type = de->attr.st.st_mode & S_IFMT;
			ent.next = (off_t)de->cookie;
			if (plus && !de->attr.rdattr_error)
				ent.attr = de->attr.st;
			if (fill(ctx, &ent))
				goto out;
			cookie = de->cookie;
		}
		if (d->batch_eof || d->n == 0)
			break;
	}
out:
	pthread_mutex_unlock(&d->lock);
	return e;
}

int nfs_be_fsyncdir(struct target *t, uint64_t dh, int datasync)
{
	(void)t, (void)dh, (void)datasync;
	return 0; /* directory changes are synchronous on the server */
}

int nfs_be_releasedir(struct target *t, uint64_t dh)
{
	(void)t;
	struct nfs_dir *d = (struct nfs_dir *)(uintptr_t)dh;
	dir_drop_batch(d);
	free(d->ents);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return 0;
}
