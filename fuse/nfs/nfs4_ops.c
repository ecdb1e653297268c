/* nfs4_ops.c - the file operations on names, attributes and locks, each
 * one COMPOUND listed with the requests of nfs4_compound.c (open files and
 * their data: nfs4_io.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "nfs4_int.h"

#define NFS_READDIR_MAXCOUNT (128u << 10) /* bytes in one READDIR reply */
#define NFS_READDIR_MIN	     (4u << 10)
#define NFS_LOOKUP_OVERHEAD  4 /* SEQUENCE, PUTFH, GETFH, GETATTR */

int nfs_check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -ENOENT;
	if (n > NFS4_MAXNAME)
		return -ENAMETOOLONG;
	return 0;
}

static int check_names(const char *a, const char *b)
{
	int err = nfs_check_name(a);
	return err ? err : nfs_check_name(b);
}

/* ---- names ---- */

int nfs_resolve(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *base,
		const char *path, struct nfs_fh *fh, struct nfs_attr *attr)
{
	char *copy = strdup(path ? path : "");
	if (!copy)
		return -ENOMEM;
	uint32_t per =
	    nfs_max_ops(c) > NFS_LOOKUP_OVERHEAD ? nfs_max_ops(c) - NFS_LOOKUP_OVERHEAD : 1;
	struct nfs_fh cur;
	const struct nfs_fh *from = base;
	char *save = NULL;
	char *comp = strtok_r(copy, "/", &save);
	int err = 0;
	do {
		/* As many LOOKUPs as fit in one COMPOUND, from where the last
		 * one ended; the attributes at the end of the path. */
		struct nfs_req rq;
		req_begin(&rq, c, cr, 0);
		req_putfh(&rq, from);
		uint32_t nl = 0;
		while (comp && nl < per) {
			if (strcmp(comp, ".") != 0) {
				if ((err = nfs_check_name(comp)))
					break;
				if (strcmp(comp, "..") == 0)
					req_lookupp(&rq);
				else
					req_lookup(&rq, comp);
				nl++;
			}
			comp = strtok_r(NULL, "/", &save);
		}
		if (!err) {
			req_getfh(&rq, &cur);
			if (!comp)
				req_getattr(&rq, attr);
			err = req_run(&rq);
		}
		req_end(&rq);
		from = &cur;
	} while (!err && comp);
	if (!err)
		*fh = cur;
	free(copy);
	return err;
}

int nfs_lookup(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, struct nfs_fh *fh, struct nfs_attr *attr)
{
	struct nfs_req rq;
	int err = nfs_check_name(name);
	if (err)
		return err;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, dir);
	req_lookup(&rq, name);
	req_getfh(&rq, fh);
	req_getattr(&rq, attr);
	return req_call(&rq);
}

int nfs_getattr(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		struct nfs_attr *attr)
{
	struct nfs_req rq;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	req_getattr(&rq, attr);
	return req_call(&rq);
}

int nfs_setattr(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		const struct nfs_stateid *sid, const struct nfs_sattr *sa, struct nfs_attr *attr)
{
	struct nfs_req rq;
	struct nfs_attr tmp;
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, fh);
	req_setattr(&rq, sid, sa);
	req_getattr(&rq, attr ? attr : &tmp);
	return req_call(&rq);
}

/* ACCESS, with the attributes in the same COMPOUND when attr is given. */
static int access_compound(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
			   uint32_t want, uint32_t *allowed, struct nfs_attr *attr)
{
	struct nfs_req rq;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	if (attr)
		req_getattr(&rq, attr);
	req_access(&rq, want, allowed);
	return req_call(&rq);
}

int nfs_access(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       uint32_t want, uint32_t *allowed)
{
	return access_compound(c, cr, fh, want, allowed, NULL);
}

int nfs_getattr_access(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		       uint32_t want, uint32_t *allowed, struct nfs_attr *attr)
{
	return access_compound(c, cr, fh, want, allowed, attr);
}

int nfs_statfs(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       struct statvfs *sv)
{
	const uint32_t frsize = 4096;
	struct nfs_req rq;
	struct nfs_attr a;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	req_getattr_mask(&rq,
			 1u << FATTR4_FILES_AVAIL | 1u << FATTR4_FILES_FREE |
			     1u << FATTR4_FILES_TOTAL | 1u << FATTR4_MAXNAME,
			 1u << (FATTR4_SPACE_AVAIL - 32) | 1u << (FATTR4_SPACE_FREE - 32) |
			     1u << (FATTR4_SPACE_TOTAL - 32),
			 &a);
	int err = req_call(&rq);
	if (err)
		return err;
	memset(sv, 0, sizeof *sv);
	sv->f_bsize = frsize; /* the server's block size is not in NFSv4 */
	sv->f_frsize = frsize;
	sv->f_blocks = a.space_total / frsize;
	sv->f_bfree = a.space_free / frsize;
	sv->f_bavail = a.space_avail / frsize;
	sv->f_files = a.files_total;
	sv->f_ffree = a.files_free;
	sv->f_favail = a.files_avail;
	/* The server's maxname, but never more than this client sends
	 * (nfs_check_name): a longer name would be refused here. The server's
	 * figure may also promise more than it takes: nfs-ganesha reports
	 * 1024 and answers NAMETOOLONG to any name over 255 bytes. */
	sv->f_namemax = a.maxname && a.maxname < NFS4_MAXNAME ? a.maxname : NFS4_MAXNAME;
	return 0;
}

ssize_t nfs_readlink(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		     char *buf, size_t size)
{
	struct nfs_req rq;
	struct req_readlink res = {.buf = buf, .size = size};
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	req_readlink(&rq, &res);
	int err = req_call(&rq);
	return err ? err : (ssize_t)res.len;
}

/* ---- namespace ---- */

int nfs_create(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, uint32_t type, const char *linkdata, dev_t rdev, uint32_t mode,
	       struct nfs_fh *fh, struct nfs_attr *attr)
{
	struct nfs_req rq;
	struct nfs_fh tfh;
	struct nfs_attr tattr;
	int err = nfs_check_name(name);
	if (err)
		return err;
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, dir);
	req_create(&rq, type, linkdata, rdev, name, mode);
	req_getfh(&rq, fh ? fh : &tfh);
	req_getattr(&rq, attr ? attr : &tattr);
	return req_call(&rq);
}

int nfs_remove(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, int kind)
{
	struct nfs_req rq;
	int err = nfs_check_name(name);
	if (err)
		return err;
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, dir);
	if (kind != NFS_RM_ANY) {
		/* The type checked in the same COMPOUND. */
		req_lookup(&rq, name);
		req_check_dir(&rq, kind == NFS_RM_DIR);
		req_putfh(&rq, dir);
	}
	req_remove(&rq, name);
	return req_call(&rq);
}

struct rename_step {
	const struct nfs_fh *from_dir, *to_dir;
	const char *from, *to;
};

/* RENAMEs in one COMPOUND, in order; *done gets how many took effect. */
static int rename_steps(struct nfs_client *c, const struct rpc_auth *cr,
			const struct rename_step *s, int n, int *done)
{
	struct nfs_req rq;
	*done = 0;
	req_begin(&rq, c, cr, 1);
	for (int i = 0; i < n; i++) {
		req_putfh(&rq, s[i].from_dir);
		req_savefh(&rq);
		req_putfh(&rq, s[i].to_dir);
		req_rename(&rq, s[i].from, s[i].to, done);
	}
	return req_call(&rq);
}

int nfs_rename(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *from_dir,
	       const char *from, const struct nfs_fh *to_dir, const char *to)
{
	const struct rename_step step = {from_dir, to_dir, from, to};
	int done;
	int err = check_names(from, to);
	return err ? err : rename_steps(c, cr, &step, 1, &done);
}

int nfs_rename_exchange(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir_a,
			const char *a, const struct nfs_fh *dir_b, const char *b)
{
	int err = check_names(a, b);
	if (err)
		return err;
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = nfs_next_owner(c) * 0x9e3779b97f4a7c15ull;
	char tmp[40];
	snprintf(tmp, sizeof tmp, ".efsmt-xchg-%016llx", (unsigned long long)rnd);
	const struct rename_step steps[3] = {
	    {dir_a, dir_a, a, tmp},
	    {dir_b, dir_a, b, a},
	    {dir_a, dir_b, tmp, b},
	};
	int done = 0;
	int ops_per_step = 4;
	if (nfs_max_ops(c) >= (uint32_t)(1 + 3 * ops_per_step)) {
		err = rename_steps(c, cr, steps, 3, &done);
	} else {
		for (int i = 0; i < 3 && done == i; i++) {
			int one;
			err = rename_steps(c, cr, &steps[i], 1, &one);
			done += one;
			if (err)
				break;
		}
	}
	if (!err || done == 0)
		return err;
	/* Put back what moved, newest first (best effort). */
	int undone;
	if (done == 2) {
		const struct rename_step back = {dir_a, dir_b, a, b};
		(void)rename_steps(c, cr, &back, 1, &undone);
	}
	const struct rename_step back1 = {dir_a, dir_a, tmp, a};
	(void)rename_steps(c, cr, &back1, 1, &undone);
	return err;
}

int nfs_link(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	     const struct nfs_fh *dir, const char *name, struct nfs_attr *attr)
{
	struct nfs_req rq;
	struct nfs_attr tmp;
	int err = nfs_check_name(name);
	if (err)
		return err;
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, fh);
	req_savefh(&rq);
	req_putfh(&rq, dir);
	req_link(&rq, name);
	req_restorefh(&rq);
	req_getattr(&rq, attr ? attr : &tmp);
	return req_call(&rq);
}

int nfs_readdir(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
		uint64_t cookie, uint8_t verf[NFS4_VERIFIER_SIZE], uint32_t maxcount,
		nfs_readdir_fn fn, void *ctx, int *eof)
{
	struct nfs_req rq;
	struct req_readdir res = {.verf = verf, .fn = fn, .ctx = ctx, .eof = eof};
	uint32_t lim = nfs_io_read(c);
	if (maxcount == 0 || maxcount > NFS_READDIR_MAXCOUNT)
		maxcount = NFS_READDIR_MAXCOUNT;
	if (maxcount > lim)
		maxcount = lim;
	if (maxcount < NFS_READDIR_MIN)
		maxcount = NFS_READDIR_MIN;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, dir);
	req_readdir(&rq, cookie, maxcount, &res);
	return req_call(&rq);
}

/* ---- byte-range locks ---- */

int nfs_lock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_open *of,
	     struct nfs_lock *lk, uint32_t type, uint64_t off, uint64_t len,
	     struct nfs_lock_conflict *conflict)
{
	struct nfs_req rq;
	struct req_lock res = {.lk = lk, .conflict = conflict};
	if (!lk->have && !lk->owner)
		lk->owner = nfs_next_owner(c);
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, &of->fh);
	req_lock(&rq, of, type, off, len, &res);
	return req_call(&rq);
}

int nfs_unlock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_open *of,
	       struct nfs_lock *lk, uint64_t off, uint64_t len)
{
	struct nfs_req rq;
	if (!lk->have)
		return 0;
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, &of->fh);
	req_locku(&rq, lk, off, len);
	return req_call(&rq);
}

int nfs_free_stateid(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_stateid *sid)
{
	struct nfs_req rq;
	req_begin(&rq, c, cr, 0);
	req_free_stateid(&rq, sid);
	return req_call(&rq);
}

int nfs_testlock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		 uint64_t owner, uint32_t type, uint64_t off, uint64_t len,
		 struct nfs_lock_conflict *conflict)
{
	struct nfs_req rq;
	struct req_lock res = {.conflict = conflict};
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	req_lockt(&rq, owner, type, off, len, &res);
	return req_call(&rq);
}
