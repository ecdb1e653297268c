/*
 * nfs_meta.c - the calls on a path rather than on an open file: its
 * attributes, and the names made, removed and renamed. Each resolves the
 * path (nfs_fhcache.c) and tries once more from a fresh lookup when a
 * cached handle went stale.
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
#include <unistd.h>

#include "backends/backend.h"
#include "backend_nfs.h"
#include "nfs/nfs4.h"
#include "backends/target.h"
#include "nfs_be.h"

/* ---- attributes ---- */

int nfs_be_getattr(struct target *t, const char *path, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(NULL, &au);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fh;
		struct nfs_attr a;
		int fresh;
		int e = nfsb_resolve(nt, cl, cr, path, &fh, &a, &fresh);
		if (!e && nfsb_wb_wait_fh(&fh))
			fresh = 0; /* the lookup's size may predate those writes */
		if (!e && !fresh)
			e = nfs_getattr(cl, cr, &fh, &a);
		if (e == -ESTALE && !fresh && attempt == 0) {
			nfsb_cache_forget_chain(nt, path);
			continue;
		}
		if (!e)
			to_stat(&a, st);
		return e;
	}
	return -ESTALE;
}

static void to_sattr(const struct be_setattr *in, struct nfs_sattr *out)
{
	memset(out, 0, sizeof *out);
	if (in->valid & BE_SET_MODE) {
		out->valid |= NFS_SA_MODE;
		out->mode = in->mode & 07777;
	}
	if ((in->valid & BE_SET_UID) && in->uid != (uid_t)-1) {
		out->valid |= NFS_SA_UID;
		out->uid = in->uid;
	}
	if ((in->valid & BE_SET_GID) && in->gid != (gid_t)-1) {
		out->valid |= NFS_SA_GID;
		out->gid = in->gid;
	}
	if (in->valid & BE_SET_SIZE) {
		out->valid |= NFS_SA_SIZE;
		out->size = (uint64_t)in->size;
	}
	if (in->valid & BE_SET_ATIME_NOW) {
		out->valid |= NFS_SA_ATIME_NOW;
	} else if (in->valid & BE_SET_ATIME) {
		out->valid |= NFS_SA_ATIME;
		out->atime = in->atime;
	}
	if (in->valid & BE_SET_MTIME_NOW) {
		out->valid |= NFS_SA_MTIME_NOW;
	} else if (in->valid & BE_SET_MTIME) {
		out->valid |= NFS_SA_MTIME;
		out->mtime = in->mtime;
	}
}

int nfs_be_setattr(struct target *t, const struct be_caller *c, const char *path, uint64_t fh,
		   int has_fh, const struct be_setattr *sa, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(c, &au);
	struct nfs_sattr s;
	struct nfs_attr a;
	to_sattr(sa, &s);
	/* Other handles' attributes from their OPEN (and, for a new size,
	 * the data read with it) are stale from now on. */
	nfsb_attrs_changed();
	if (sa->valid & BE_SET_SIZE)
		atomic_fetch_add(&nfs_write_gen, 1);
	if (has_fh) {
		struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
		pthread_mutex_lock(&f->lock);
		f->open_attr_ms = 0;
		pthread_mutex_unlock(&f->lock);
		nfsb_wb_wait_fh(&f->of.fh); /* a late WRITE must not undo a truncate */
		int e = nfs_setattr(nt->lane[f->lane], cr, &f->of.fh, &f->of.stateid, &s, &a);
		if (!e)
			to_stat(&a, st);
		return e;
	}
	struct nfs_client *cl = pick_lane(nt, NULL);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh nfh;
		int fresh;
		int e = nfsb_resolve(nt, cl, cr, path, &nfh, NULL, &fresh);
		if (!e) {
			nfsb_wb_wait_fh(&nfh);
			e = nfs_setattr(cl, cr, &nfh, NULL, &s, &a);
		}
		if (e == -ESTALE && attempt == 0) {
			nfsb_cache_forget_chain(nt, path);
			continue;
		}
		if (!e)
			to_stat(&a, st);
		return e;
	}
	return -ESTALE;
}

int nfs_be_readlink(struct target *t, const char *path, char *buf, size_t size)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct nfs_fh fh;
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(NULL, &au);
	int fresh;
	if (size == 0)
		return -EINVAL;
	int e = nfsb_resolve(nt, cl, cr, path, &fh, NULL, &fresh);
	if (e)
		return e;
	ssize_t n = nfs_readlink(cl, cr, &fh, buf, size);
	if (n == -ESTALE) {
		nfsb_cache_forget_chain(nt, path);
		if (!(e = nfsb_resolve(nt, cl, cr, path, &fh, NULL, &fresh)))
			n = nfs_readlink(cl, cr, &fh, buf, size);
		else
			n = e;
	}
	return n < 0 ? (int)n : 0;
}

int nfs_be_access(struct target *t, const char *path, int mask)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(NULL, &au);
	uint32_t want = 0, got = 0;
	if (mask & R_OK)
		want |= ACCESS4_READ;
	if (mask & W_OK)
		want |= ACCESS4_MODIFY;
	if (mask & X_OK)
		want |= ACCESS4_EXECUTE | ACCESS4_LOOKUP; /* a file's or a directory's */
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fh;
		int fresh;
		int e = nfsb_resolve(nt, cl, cr, path, &fh, NULL, &fresh);
		if (!e && want)
			e = nfs_access(cl, cr, &fh, want, &got);
		if (e == -ESTALE && attempt == 0) {
			nfsb_cache_forget_chain(nt, path);
			continue;
		}
		if (e)
			return e;
		if (((mask & R_OK) && !(got & ACCESS4_READ)) ||
		    ((mask & W_OK) && !(got & ACCESS4_MODIFY)) ||
		    ((mask & X_OK) && !(got & (ACCESS4_EXECUTE | ACCESS4_LOOKUP))))
			return -EACCES;
		return 0;
	}
	return -ESTALE;
}

static void least_maxname(struct target *t, void *arg)
{
	unsigned long *least = arg;
	if (t->ops == &backend_nfs_ops && t->priv && atomic_load(&t->state) != TARGET_DRAINING &&
	    NT(t)->maxname && NT(t)->maxname < *least)
		*least = NT(t)->maxname;
}

/* f_namemax is the least of every nfs:// target's (each learned at its
 * attach, nfs_statfs: the server's maxname, at most the NFS4_MAXNAME
 * bytes this client sends), so that a name of that length works whichever
 * target a path goes to. */
int nfs_be_statfs(struct target *t, const char *path, struct statvfs *sv)
{
	(void)path;
	struct nfs_target *nt = NT(t);
	struct rpc_auth au;
	int e = nfs_statfs(pick_lane(nt, NULL), nfsb_req_auth(NULL, &au), &nt->root, sv);
	if (!e)
		target_foreach(least_maxname, &sv->f_namemax);
	return e;
}

/* ---- creating ---- */

/* CREATE of a non-regular object under path's parent; retried once when the
 * cached parent went stale. */
static int make_node(struct target *t, const struct be_caller *c, const char *path, uint32_t type,
		     const char *linkdata, dev_t rdev, mode_t mode, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(c, &au);
	mode_t um = c ? c->umask : 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh dir, fh;
		struct nfs_attr a;
		const char *name;
		int e = nfsb_resolve_parent(nt, cl, cr, path, &dir, &name);
		if (!e)
			e = nfs_create(cl, cr, &dir, name, type, linkdata, rdev,
				       type == NF4LNK ? 0777 : (uint32_t)(mode & ~um & 07777), &fh,
				       &a);
		if (e == -ESTALE && attempt == 0) {
			nfsb_forget_parent(nt, path);
			continue;
		}
		if (e)
			return e;
		if (nfsb_fh_cacheable(a.st.st_mode))
			nfsb_cache_put(nt, nfsb_auth_key(cr), path, &fh);
		to_stat(&a, st);
		return 0;
	}
	return -ESTALE;
}

int nfs_be_mkdir(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		 struct stat *st)
{
	return make_node(t, c, path, NF4DIR, NULL, 0, mode, st);
}

int nfs_be_symlink(struct target *t, const struct be_caller *c, const char *linkto,
		   const char *path, struct stat *st)
{
	return make_node(t, c, path, NF4LNK, linkto, 0, 0777, st);
}

int nfs_be_mknod(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		 dev_t rdev, struct stat *st)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return make_node(t, c, path, NF4FIFO, NULL, 0, mode, st);
	case S_IFSOCK:
		return make_node(t, c, path, NF4SOCK, NULL, 0, mode, st);
	case S_IFCHR:
		return make_node(t, c, path, NF4CHR, NULL, rdev, mode, st);
	case S_IFBLK:
		return make_node(t, c, path, NF4BLK, NULL, rdev, mode, st);
	case S_IFREG:
	case 0: {
		struct rpc_auth au;
		struct nfs_file *f;
		mode_t um = c ? c->umask : 0;
		int e = nfsb_open_at(t, nfsb_req_auth(c, &au), path, O_CREAT | O_EXCL | O_WRONLY,
				     mode & ~um, &f, st);
		if (e)
			return e;
		(void)nfs_close(NT(t)->lane[f->lane], &f->auth, &f->of);
		pthread_mutex_destroy(&f->lock);
		pthread_mutex_destroy(&f->append_lock);
		free(f->pre);
		free(f);
		return 0;
	}
	default:
		return -EINVAL;
	}
}

int nfs_be_link(struct target *t, const struct be_caller *c, const char *oldpath,
		const char *newpath, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(c, &au);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fh, dir;
		struct nfs_attr a;
		const char *name;
		int fresh;
		int e = nfsb_resolve(nt, cl, cr, oldpath, &fh, NULL, &fresh);
		if (!e)
			e = nfsb_resolve_parent(nt, cl, cr, newpath, &dir, &name);
		if (!e)
			e = nfs_link(cl, cr, &fh, &dir, name, &a);
		if (e == -ESTALE && attempt == 0) {
			nfsb_cache_forget_chain(nt, oldpath);
			nfsb_forget_parent(nt, newpath);
			continue;
		}
		if (e)
			return e;
		nfsb_attrs_changed(); /* nlink */
		if (nfsb_fh_cacheable(a.st.st_mode))
			nfsb_cache_put(nt, nfsb_auth_key(cr), newpath, &fh);
		to_stat(&a, st);
		return 0;
	}
	return -ESTALE;
}

/* ---- removing and renaming ---- */

static int remove_kind(struct target *t, const char *path, int kind)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(NULL, &au);
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh dir;
		const char *name;
		int e = nfsb_resolve_parent(nt, cl, cr, path, &dir, &name);
		if (!e)
			e = nfs_remove(cl, cr, &dir, name, kind);
		if (e == -ESTALE && attempt == 0) {
			nfsb_forget_parent(nt, path);
			continue;
		}
		if (!e)
			nfsb_attrs_changed(); /* nlink: an open file keeps no name */
		if (!e || e == -ENOENT)
			nfsb_cache_forget(nt, path, kind == NFS_RM_DIR);
		return e;
	}
	return -ESTALE;
}

int nfs_be_unlink(struct target *t, const char *path)
{
	return remove_kind(t, path, NFS_RM_NONDIR);
}

int nfs_be_rmdir(struct target *t, const char *path)
{
	return remove_kind(t, path, NFS_RM_DIR);
}

int nfs_be_rename(struct target *t, const char *from, const char *to, unsigned flags)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = nfsb_req_auth(NULL, &au);
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fdir, tdir;
		const char *fname, *tname;
		int e = nfsb_resolve_parent(nt, cl, cr, from, &fdir, &fname);
		if (!e)
			e = nfsb_resolve_parent(nt, cl, cr, to, &tdir, &tname);
		if (!e && (flags & RENAME_NOREPLACE)) {
			/* Not atomic: NFSv4 RENAME always replaces. */
			struct nfs_fh x;
			struct nfs_attr xa;
			int le = nfs_lookup(cl, cr, &tdir, tname, &x, &xa);
			e = le == 0 ? -EEXIST : le == -ENOENT ? 0 : le;
		}
		if (!e && (flags & RENAME_EXCHANGE))
			e = nfs_rename_exchange(cl, cr, &fdir, fname, &tdir, tname);
		else if (!e)
			e = nfs_rename(cl, cr, &fdir, fname, &tdir, tname);
		if (e == -ESTALE && attempt == 0) {
			nfsb_forget_parent(nt, from);
			nfsb_forget_parent(nt, to);
			continue;
		}
		if (!e) {
			nfsb_attrs_changed(); /* a replaced file's nlink; ctime */
			nfsb_cache_forget(nt, from, 1);
			nfsb_cache_forget(nt, to, 1);
		}
		return e;
	}
	return -ESTALE;
}
