/* nfs4_ops.c - the file operations, each one COMPOUND (or a batch of
 * them for large reads and writes) on the client's session. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sysmacros.h>

#include "nfs4_int.h"

#define NFS_READDIR_MAXCOUNT (128u << 10) /* bytes in one READDIR reply */
#define NFS_READDIR_MIN (4u << 10)
#define NFS_OPEN_OWNER_PREFIX "efsmt-open-"
#define NFS_LOOKUP_OVERHEAD 4 /* SEQUENCE, PUTFH, GETFH, GETATTR */
#define NFS_MAX_CHUNKS 256     /* READ/WRITE pieces per call */

/* Attributes for struct stat (word 0, word 1). */
static const uint32_t stat_mask0 = 1u << FATTR4_TYPE | 1u << FATTR4_CHANGE |
				   1u << FATTR4_SIZE | 1u << FATTR4_FILEID;
static const uint32_t stat_mask1 =
	1u << (FATTR4_MODE - 32) | 1u << (FATTR4_NUMLINKS - 32) | 1u << (FATTR4_OWNER - 32) |
	1u << (FATTR4_OWNER_GROUP - 32) | 1u << (FATTR4_RAWDEV - 32) |
	1u << (FATTR4_SPACE_USED - 32) | 1u << (FATTR4_TIME_ACCESS - 32) |
	1u << (FATTR4_TIME_METADATA - 32) | 1u << (FATTR4_TIME_MODIFY - 32);

static int st_err(int st)
{
	return st < 0 ? st : nfs4_errno((uint32_t)st);
}

static int check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -ENOENT;
	if (n > NFS4_MAXNAME)
		return -ENAMETOOLONG;
	return 0;
}

static void put_fh(struct nfs_compound *cp, const struct nfs_fh *fh)
{
	if (!fh) {
		comp_op(cp, NFS4_OP_PUTROOTFH);
		return;
	}
	comp_op(cp, NFS4_OP_PUTFH);
	xdr_put_opaque(&cp->x, fh->data, fh->len);
}

static void put_getattr(struct nfs_compound *cp, uint32_t w0, uint32_t w1)
{
	comp_op(cp, NFS4_OP_GETATTR);
	xdr_put_u32(&cp->x, 2);
	xdr_put_u32(&cp->x, w0);
	xdr_put_u32(&cp->x, w1);
}

static void put_stat_getattr(struct nfs_compound *cp)
{
	put_getattr(cp, stat_mask0, stat_mask1);
}

static void put_stateid(struct xdr_enc *x, const struct nfs_stateid *sid)
{
	static const struct nfs_stateid anon;
	if (!sid)
		sid = &anon;
	xdr_put_u32(x, sid->seqid);
	xdr_put_fixed(x, sid->other, NFS4_OTHER_SIZE);
}

static void get_stateid(struct xdr_dec *d, struct nfs_stateid *sid)
{
	sid->seqid = xdr_get_u32(d);
	const uint8_t *p = xdr_get_fixed(d, NFS4_OTHER_SIZE);
	if (p)
		memcpy(sid->other, p, NFS4_OTHER_SIZE);
}

/* GETFH's result body. */
static int get_fh(struct xdr_dec *d, struct nfs_fh *fh)
{
	size_t n;
	const uint8_t *p = xdr_get_opaque(d, &n, NFS4_FHSIZE);
	if (!p || n == 0)
		return -EBADMSG;
	fh->len = (uint32_t)n;
	memcpy(fh->data, p, n);
	return 0;
}

/* The next results: GETFH (if fh) then GETATTR (if attr). */
static int res_fh_attr(struct nfs_res *r, struct nfs_fh *fh, struct nfs_attr *attr)
{
	int st;
	if (fh) {
		if ((st = res_op(r, NFS4_OP_GETFH)) != 0)
			return st_err(st);
		if (get_fh(&r->d, fh))
			return -EBADMSG;
	}
	if (attr) {
		struct nfs_attr tmp;
		if ((st = res_op(r, NFS4_OP_GETATTR)) != 0)
			return st_err(st);
		if (nfs4_decode_fattr(&r->d, attr ? attr : &tmp))
			return -EBADMSG;
	}
	return 0;
}

static void skip_cinfo(struct xdr_dec *d)
{
	(void)xdr_get_bool(d);
	(void)xdr_get_u64(d);
	(void)xdr_get_u64(d);
}

static void skip_bitmap(struct xdr_dec *d)
{
	uint32_t n = xdr_get_u32(d);
	if (n > 8) {
		d->err = -EBADMSG;
		return;
	}
	xdr_skip(d, 4 * (size_t)n);
}

/* ---- names ---- */

/* Send cp (freed here) and read the status of its PUTFH (PUTROOTFH for a
 * NULL fh) and then, unless op is 0, of op. Returns 0 with r after op's
 * status, or an NFS4ERR_* with r after that status (NFS4ERR_DENIED carries
 * a body): r is then the caller's to free; or -errno, r already freed. */
static int run_fh_op(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_compound *cp,
		     struct nfs_res *r, const struct nfs_fh *fh, uint32_t op)
{
	int err = nfs_compound_run(c, cr, cp, r);
	comp_free(cp);
	if (err)
		return err;
	int st = res_op(r, fh ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH);
	if (!st && op)
		st = res_op(r, op);
	if (st < 0)
		res_free(r);
	return st;
}

int nfs_resolve(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *base,
		const char *path, struct nfs_fh *fh, struct nfs_attr *attr)
{
	char *copy = strdup(path ? path : "");
	if (!copy)
		return -ENOMEM;
	uint32_t per = nfs_max_ops(c) > NFS_LOOKUP_OVERHEAD ? nfs_max_ops(c) - NFS_LOOKUP_OVERHEAD : 1;
	struct nfs_fh cur;
	const struct nfs_fh *from = base;
	char *save = NULL;
	char *comp = strtok_r(copy, "/", &save);
	int err = 0;
	do {
		struct nfs_compound cp;
		struct nfs_res r;
		comp_init(&cp);
		put_fh(&cp, from);
		uint32_t nl = 0;
		while (comp && nl < per) {
			if (strcmp(comp, ".") != 0) {
				if (strlen(comp) > NFS4_MAXNAME) {
					err = -ENAMETOOLONG;
					break;
				}
				if (strcmp(comp, "..") == 0) {
					comp_op(&cp, NFS4_OP_LOOKUPP);
				} else {
					comp_op(&cp, NFS4_OP_LOOKUP);
					xdr_put_string(&cp.x, comp);
				}
				nl++;
			}
			comp = strtok_r(NULL, "/", &save);
		}
		if (err) {
			comp_free(&cp);
			break;
		}
		comp_op(&cp, NFS4_OP_GETFH);
		if (!comp)
			put_stat_getattr(&cp);
		err = nfs_compound_run(c, cr, &cp, &r);
		comp_free(&cp);
		if (err)
			break;
		int st = res_op(&r, from ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH);
		/* Walk the LOOKUP results: their opcodes were recorded in order. */
		for (uint32_t i = 0; st == 0 && i < nl; i++) {
			uint32_t op = xdr_get_u32(&r.d);
			uint32_t s = xdr_get_u32(&r.d);
			if (r.left == 0 || r.d.err || (op != NFS4_OP_LOOKUP && op != NFS4_OP_LOOKUPP)) {
				st = -EBADMSG;
				break;
			}
			r.left--;
			st = s > INT32_MAX ? -EBADMSG : (int)s;
		}
		err = st_err(st);
		if (!err)
			err = res_fh_attr(&r, &cur, comp ? NULL : attr);
		res_free(&r);
		from = &cur;
	} while (!err && comp);
	if (!err)
		*fh = from ? *from : cur;
	free(copy);
	return err;
}

int nfs_lookup(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, struct nfs_fh *fh, struct nfs_attr *attr)
{
	int err = check_name(name);
	if (err)
		return err;
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, dir);
	comp_op(&cp, NFS4_OP_LOOKUP);
	xdr_put_string(&cp.x, name);
	comp_op(&cp, NFS4_OP_GETFH);
	put_stat_getattr(&cp);
	int st = run_fh_op(c, cr, &cp, &r, dir, NFS4_OP_LOOKUP);
	if (st < 0)
		return st;
	err = st_err(st);
	if (!err)
		err = res_fh_attr(&r, fh, attr);
	res_free(&r);
	return err;
}

int nfs_getattr(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		struct nfs_attr *attr)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	put_stat_getattr(&cp);
	int st = run_fh_op(c, cr, &cp, &r, fh, 0);
	if (st < 0)
		return st;
	int err = st_err(st);
	if (!err)
		err = res_fh_attr(&r, NULL, attr);
	res_free(&r);
	return err;
}

int nfs_setattr(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		const struct nfs_stateid *sid, const struct nfs_sattr *sa, struct nfs_attr *attr)
{
	struct nfs_compound cp;
	struct nfs_res r;
	struct nfs_attr tmp;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_SETATTR);
	put_stateid(&cp.x, sid);
	nfs4_encode_sattr(&cp.x, sa);
	put_stat_getattr(&cp);
	int st = run_fh_op(c, cr, &cp, &r, fh, NFS4_OP_SETATTR);
	if (st < 0)
		return st;
	int err = st_err(st);
	if (!err) {
		skip_bitmap(&r.d);
		err = res_fh_attr(&r, NULL, attr ? attr : &tmp);
	}
	res_free(&r);
	return err;
}

/* ACCESS, with the attributes in the same COMPOUND when attr is given. */
static int access_compound(struct nfs_client *c, const struct rpc_auth *cr,
			   const struct nfs_fh *fh, uint32_t want, uint32_t *allowed,
			   struct nfs_attr *attr)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	if (attr)
		put_stat_getattr(&cp);
	comp_op(&cp, NFS4_OP_ACCESS);
	xdr_put_u32(&cp.x, want);
	int st = run_fh_op(c, cr, &cp, &r, fh, 0);
	if (st < 0)
		return st;
	int err = st_err(st);
	if (!err && attr)
		err = res_fh_attr(&r, NULL, attr);
	if (!err)
		err = st_err(res_op(&r, NFS4_OP_ACCESS));
	if (!err) {
		(void)xdr_get_u32(&r.d); /* supported */
		*allowed = xdr_get_u32(&r.d);
		if (r.d.err)
			err = -EBADMSG;
	}
	res_free(&r);
	return err;
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
	struct nfs_compound cp;
	struct nfs_res r;
	struct nfs_attr a;
	comp_init(&cp);
	put_fh(&cp, fh);
	put_getattr(&cp,
		    1u << FATTR4_FILES_AVAIL | 1u << FATTR4_FILES_FREE | 1u << FATTR4_FILES_TOTAL |
			    1u << FATTR4_MAXNAME,
		    1u << (FATTR4_SPACE_AVAIL - 32) | 1u << (FATTR4_SPACE_FREE - 32) |
			    1u << (FATTR4_SPACE_TOTAL - 32));
	int st = run_fh_op(c, cr, &cp, &r, fh, 0);
	if (st < 0)
		return st;
	int err = st_err(st);
	if (!err)
		err = res_fh_attr(&r, NULL, &a);
	res_free(&r);
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
	 * (check_name): a longer name would be refused here. The server's
	 * figure may also promise more than it takes: nfs-ganesha reports
	 * 1024 and answers NAMETOOLONG to any name over 255 bytes. */
	sv->f_namemax = a.maxname && a.maxname < NFS4_MAXNAME ? a.maxname : NFS4_MAXNAME;
	return 0;
}

ssize_t nfs_readlink(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		     char *buf, size_t size)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_READLINK);
	int st = run_fh_op(c, cr, &cp, &r, fh, NFS4_OP_READLINK);
	if (st < 0)
		return st;
	ssize_t ret = st_err(st);
	if (!ret) {
		size_t n;
		const uint8_t *p = xdr_get_opaque(&r.d, &n, r.d.len);
		if (!p) {
			ret = -EBADMSG;
		} else {
			if (size) {
				size_t k = n < size - 1 ? n : size - 1;
				memcpy(buf, p, k);
				buf[k] = '\0';
			}
			ret = (ssize_t)n;
		}
	}
	res_free(&r);
	return ret;
}

/* ---- open files ---- */

static void put_open_owner(struct xdr_enc *x, uint64_t clientid, uint64_t owner)
{
	uint8_t o[sizeof NFS_OPEN_OWNER_PREFIX - 1 + 8];
	memcpy(o, NFS_OPEN_OWNER_PREFIX, sizeof NFS_OPEN_OWNER_PREFIX - 1);
	for (int i = 0; i < 8; i++)
		o[sizeof NFS_OPEN_OWNER_PREFIX - 1 + i] = (uint8_t)(owner >> (56 - 8 * i));
	xdr_put_u64(x, clientid);
	xdr_put_opaque(x, o, sizeof o);
}

static void skip_nfsace(struct xdr_dec *d)
{
	size_t n;
	(void)xdr_get_u32(d);
	(void)xdr_get_u32(d);
	(void)xdr_get_u32(d);
	(void)xdr_get_opaque(d, &n, NFS4_OPAQUE_LIMIT);
}

/* open_delegation4; *deleg gets a granted delegation's stateid. */
static int get_delegation(struct xdr_dec *d, int *has, struct nfs_stateid *deleg)
{
	uint32_t t = xdr_get_u32(d);
	*has = 0;
	switch (t) {
	case OPEN_DELEGATE_NONE:
		break;
	case OPEN_DELEGATE_READ:
	case OPEN_DELEGATE_WRITE:
		get_stateid(d, deleg);
		(void)xdr_get_bool(d); /* recall */
		if (t == OPEN_DELEGATE_WRITE) {
			uint32_t by = xdr_get_u32(d);
			if (by == NFS_LIMIT_SIZE)
				(void)xdr_get_u64(d);
			else if (by == NFS_LIMIT_BLOCKS)
				(void)xdr_get_u64(d);
			else
				d->err = -EBADMSG;
		}
		skip_nfsace(d);
		*has = 1;
		break;
	case OPEN_DELEGATE_NONE_EXT: {
		uint32_t why = xdr_get_u32(d);
		if (why == WND4_CONTENTION || why == WND4_RESOURCE)
			(void)xdr_get_bool(d);
		break;
	}
	default:
		d->err = -EBADMSG;
	}
	return d->err;
}

/* OPEN4resok after the status: the stateid, change info, flags, the
 * attributes set (first 3 words kept when attrset is not NULL), delegation. */
static void get_open_ok(struct xdr_dec *d, struct nfs_stateid *sid, uint32_t *attrset,
			int *has_deleg, struct nfs_stateid *deleg)
{
	get_stateid(d, sid);
	skip_cinfo(d);
	(void)xdr_get_u32(d); /* rflags */
	uint32_t n = xdr_get_u32(d);
	for (uint32_t i = 0; i < n && !d->err; i++) {
		uint32_t w = xdr_get_u32(d);
		if (attrset && i < 3)
			attrset[i] = w;
	}
	get_delegation(d, has_deleg, deleg);
}

static void delegreturn(struct nfs_client *c, const struct nfs_fh *fh,
			const struct nfs_stateid *sid)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_DELEGRETURN);
	put_stateid(&cp.x, sid);
	if (nfs_compound_run(c, NULL, &cp, &r) == 0)
		res_free(&r);
	comp_free(&cp);
}

int nfs_reopen(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of)
{
	struct nfs_compound cp;
	struct nfs_res r;
	uint64_t owner = nfs_next_owner(c);
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, &of->fh);
	comp_op(&cp, NFS4_OP_OPEN);
	xdr_put_u32(&cp.x, 0); /* seqid: unused in 4.1 */
	xdr_put_u32(&cp.x, (uint32_t)of->access | OPEN4_SHARE_ACCESS_WANT_NO_DELEG);
	xdr_put_u32(&cp.x, OPEN4_SHARE_DENY_NONE);
	put_open_owner(&cp.x, nfs_client_id(c), owner);
	xdr_put_u32(&cp.x, OPEN4_NOCREATE);
	xdr_put_u32(&cp.x, CLAIM_FH); /* the file by its handle, whatever its name now */
	int st = run_fh_op(c, cr, &cp, &r, &of->fh, NFS4_OP_OPEN);
	if (st < 0)
		return st;
	if (!st) {
		struct nfs_stateid sid;
		int has_deleg = 0;
		struct nfs_stateid deleg;
		get_open_ok(&r.d, &sid, NULL, &has_deleg, &deleg);
		if (r.d.err) {
			st = -EBADMSG;
		} else {
			of->stateid = sid;
			of->owner = owner;
			if (has_deleg) {
				res_free(&r);
				delegreturn(c, &of->fh, &deleg);
				return 0;
			}
		}
	}
	int err = st_err(st);
	res_free(&r);
	return err;
}

int nfs_open(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	     const char *name, int flags, uint32_t mode, struct nfs_open *of,
	     struct nfs_attr *attr)
{
	return nfs_open_read(c, cr, dir, name, flags, mode, of, attr, NULL, 0, NULL, NULL);
}

int nfs_open_read(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
		  const char *name, int flags, uint32_t mode, struct nfs_open *of,
		  struct nfs_attr *attr, void *buf, size_t size, size_t *got, int *eof)
{
	int err = check_name(name);
	if (err)
		return err;
	struct nfs_attr tmp;
	if (!attr)
		attr = &tmp;
	int acc = (flags & O_ACCMODE) == O_RDONLY   ? OPEN4_SHARE_ACCESS_READ
		  : (flags & O_ACCMODE) == O_WRONLY ? OPEN4_SHARE_ACCESS_WRITE
						    : OPEN4_SHARE_ACCESS_BOTH;
	int excl = (flags & O_CREAT) && (flags & O_EXCL);
	/* Truncating an existing file takes a SETATTR with the new open's
	 * stateid (the "current stateid", RFC 8881 16.2.3.1.2). */
	int trunc = (flags & O_TRUNC) && acc != OPEN4_SHARE_ACCESS_READ && !excl;
	memset(of, 0, sizeof *of);
	of->owner = nfs_next_owner(c);
	of->access = acc;

	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, dir);
	comp_op(&cp, NFS4_OP_OPEN);
	xdr_put_u32(&cp.x, 0); /* seqid: unused in 4.1 */
	xdr_put_u32(&cp.x, (uint32_t)acc | OPEN4_SHARE_ACCESS_WANT_NO_DELEG);
	xdr_put_u32(&cp.x, OPEN4_SHARE_DENY_NONE);
	put_open_owner(&cp.x, nfs_client_id(c), of->owner);
	struct nfs_sattr sa = { .valid = NFS_SA_MODE, .mode = mode & 07777 };
	if (flags & O_CREAT) {
		xdr_put_u32(&cp.x, OPEN4_CREATE);
		if (excl) {
			uint8_t verf[NFS4_VERIFIER_SIZE];
			if (getrandom(verf, sizeof verf, 0) != sizeof verf)
				memcpy(verf, &of->owner, sizeof verf);
			xdr_put_u32(&cp.x, EXCLUSIVE4_1);
			xdr_put_fixed(&cp.x, verf, sizeof verf);
		} else {
			xdr_put_u32(&cp.x, UNCHECKED4);
		}
		nfs4_encode_sattr(&cp.x, &sa);
	} else {
		xdr_put_u32(&cp.x, OPEN4_NOCREATE);
	}
	xdr_put_u32(&cp.x, CLAIM_NULL);
	xdr_put_string(&cp.x, name);
	if (trunc) {
		static const struct nfs_stateid current = { 1, { 0 } };
		struct nfs_sattr zero = { .valid = NFS_SA_SIZE, .size = 0 };
		comp_op(&cp, NFS4_OP_SETATTR);
		put_stateid(&cp.x, &current);
		nfs4_encode_sattr(&cp.x, &zero);
	}
	comp_op(&cp, NFS4_OP_GETFH);
	put_stat_getattr(&cp);
	/* The reply is kept for a retry (cachethis): one the server would not
	 * keep fails the READ (NFS4ERR_REP_TOO_BIG_TO_CACHE). */
	uint32_t cacheable = nfs_cached_read_max(c);
	if (size > cacheable)
		size = cacheable;
	if (size) {
		/* Read the start of the file with the new open's stateid. */
		static const struct nfs_stateid current = { 1, { 0 } };
		comp_op(&cp, NFS4_OP_READ);
		put_stateid(&cp.x, &current);
		xdr_put_u64(&cp.x, 0);
		xdr_put_u32(&cp.x, (uint32_t)size);
	}
	if (got)
		*got = 0;
	err = nfs_compound_run(c, cr, &cp, &r);
	comp_free(&cp);
	if (err)
		return err;

	uint32_t attrset[3] = { 0, 0, 0 };
	int has_deleg = 0;
	struct nfs_stateid deleg;
	int opened = 0;
	int st = res_op(&r, NFS4_OP_PUTFH);
	if (!st)
		st = res_op(&r, NFS4_OP_OPEN);
	if (!st) {
		get_open_ok(&r.d, &of->stateid, attrset, &has_deleg, &deleg);
		st = r.d.err ? -EBADMSG : 0;
		opened = !st;
	}
	if (!st && trunc) {
		st = res_op(&r, NFS4_OP_SETATTR);
		if (!st)
			skip_bitmap(&r.d);
	}
	err = st_err(st);
	if (!err)
		err = res_fh_attr(&r, &of->fh, attr);
	if (!err && size && res_op(&r, NFS4_OP_READ) == 0) {
		/* A failed READ only loses the prefetch, not the open. */
		size_t n;
		int e = xdr_get_bool(&r.d);
		const uint8_t *p = xdr_get_opaque(&r.d, &n, size);
		if (p) {
			memcpy(buf, p, n);
			*got = n;
			if (eof)
				*eof = e;
		}
	}
	res_free(&r);
	if (opened && has_deleg)
		delegreturn(c, err ? dir : &of->fh, &deleg);
	if (err) {
		if (opened && of->fh.len)
			(void)nfs_close(c, cr, of);
		return err;
	}
	if (excl) {
		/* The server may have kept the verifier in atime/mtime and not
		 * applied the mode: set what it did not (RFC 8881 18.16.3). */
		struct nfs_sattr fix = { 0 };
		if (!(attrset[1] & 1u << (FATTR4_MODE - 32))) {
			fix.valid |= NFS_SA_MODE;
			fix.mode = mode & 07777;
		}
		if (attrset[1] & 1u << (FATTR4_TIME_ACCESS - 32))
			fix.valid |= NFS_SA_ATIME_NOW;
		if (attrset[1] & 1u << (FATTR4_TIME_MODIFY - 32))
			fix.valid |= NFS_SA_MTIME_NOW;
		if (fix.valid) {
			err = nfs_setattr(c, cr, &of->fh, &of->stateid, &fix, attr);
			if (err) {
				(void)nfs_close(c, cr, of);
				return err;
			}
		}
	}
	return 0;
}

int nfs_close(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of)
{
	return nfs_commit_close(c, cr, of, 0, NULL);
}

int nfs_commit_close(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of,
		     int commit, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, &of->fh);
	if (commit) {
		comp_op(&cp, NFS4_OP_COMMIT);
		xdr_put_u64(&cp.x, 0);
		xdr_put_u32(&cp.x, 0);
	}
	comp_op(&cp, NFS4_OP_CLOSE);
	xdr_put_u32(&cp.x, 0);
	put_stateid(&cp.x, &of->stateid);
	int err = nfs_compound_run(c, cr, &cp, &r);
	comp_free(&cp);
	if (err)
		return err;
	int st = res_op(&r, NFS4_OP_PUTFH);
	if (!st && commit) {
		st = res_op(&r, NFS4_OP_COMMIT);
		if (!st) {
			const uint8_t *v = xdr_get_fixed(&r.d, NFS4_VERIFIER_SIZE);
			if (!v)
				st = -EBADMSG;
			else if (verf)
				memcpy(verf, v, NFS4_VERIFIER_SIZE);
		}
	}
	if (!st)
		st = res_op(&r, NFS4_OP_CLOSE);
	res_free(&r);
	return st_err(st);
}

/* ---- data ---- */

/* How many pieces of chunk bytes; size is cut to NFS_MAX_CHUNKS of them. */
static int chunk_count(size_t *size, uint32_t chunk)
{
	if (chunk == 0)
		chunk = 1;
	if (*size / chunk >= NFS_MAX_CHUNKS)
		*size = (size_t)chunk * NFS_MAX_CHUNKS;
	return (int)((*size + chunk - 1) / chunk);
}

/* One large READ or WRITE as a batch of COMPOUNDs in flight together, one
 * piece of at most `chunk` bytes each. The op fills in its part of piece i
 * and decodes its reply; the driver keeps the rest: allocation, the
 * PUTFH/op status, and stopping at the first error or short piece (the
 * count is what succeeded before it, or the error when nothing did). */
struct io_batch {
	int op;				 /* NFS4_OP_READ or NFS4_OP_WRITE */
	const struct nfs_stateid *sid;
	uint64_t off;
	size_t size;
	uint32_t chunk;
	/* Encode piece i's arguments after its stateid and offset. */
	void (*encode)(struct io_batch *b, struct nfs_compound *cp, size_t o, size_t len);
	/* Decode piece i's result: bytes done, -errno; *stop after a short one. */
	ssize_t (*decode)(struct io_batch *b, struct nfs_res *r, int i, size_t o, size_t want,
			  int *stop);
};

static ssize_t io_batch_run(struct nfs_client *c, const struct rpc_auth *cr,
			    const struct nfs_fh *fh, struct io_batch *b)
{
	int n = chunk_count(&b->size, b->chunk);
	struct nfs_compound *cps = calloc((size_t)n, sizeof *cps);
	struct nfs_res *res = calloc((size_t)n, sizeof *res);
	int *errs = calloc((size_t)n, sizeof *errs);
	ssize_t total = 0;
	int stop = 0;

	if (!cps || !res || !errs) {
		free(cps);
		free(res);
		free(errs);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		size_t o = (size_t)i * b->chunk;
		comp_init(&cps[i]);
		if (b->op == NFS4_OP_WRITE)
			cps[i].cachethis = 0; /* WRITE is idempotent at a given offset */
		put_fh(&cps[i], fh);
		comp_op(&cps[i], b->op);
		put_stateid(&cps[i].x, b->sid);
		xdr_put_u64(&cps[i].x, b->off + o);
		b->encode(b, &cps[i], o, b->size - o < b->chunk ? b->size - o : b->chunk);
	}
	nfs_compound_batch(c, cr, cps, res, errs, n);
	for (int i = 0; i < n; i++) {
		size_t o = (size_t)i * b->chunk;
		comp_free(&cps[i]);
		int st = errs[i];
		if (!st) {
			st = res_op(&res[i], NFS4_OP_PUTFH);
			if (!st)
				st = res_op(&res[i], b->op);
			st = st ? st_err(st) : 0;
		}
		if (!stop && st < 0) {
			if (total == 0)
				total = st;
			stop = 1;
		} else if (!stop) {
			size_t want = b->size - o < b->chunk ? b->size - o : b->chunk;
			ssize_t got = b->decode(b, &res[i], i, o, want, &stop);
			if (got < 0) {
				if (total == 0)
					total = got;
				stop = 1;
			} else {
				total += got;
			}
		}
		if (!errs[i])
			res_free(&res[i]);
	}
	free(cps);
	free(res);
	free(errs);
	return total;
}

struct read_batch {
	struct io_batch b;
	void *buf;
	int *eof;
};

static void read_encode(struct io_batch *b, struct nfs_compound *cp, size_t o, size_t len)
{
	xdr_put_u32(&cp->x, (uint32_t)len);
}

static ssize_t read_decode(struct io_batch *b, struct nfs_res *r, int i, size_t o, size_t want,
			   int *stop)
{
	struct read_batch *rb = (struct read_batch *)b;
	size_t got;
	int e = xdr_get_bool(&r->d);
	const uint8_t *p = xdr_get_opaque(&r->d, &got, want);

	if (!p)
		return -EBADMSG;
	memcpy((uint8_t *)rb->buf + o, p, got);
	if (e && rb->eof)
		*rb->eof = 1;
	if (e || got < want)
		*stop = 1; /* the rest is past a hole in the reply */
	return (ssize_t)got;
}

ssize_t nfs_read(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		 const struct nfs_stateid *sid, void *buf, size_t size, uint64_t off, int *eof)
{
	struct read_batch rb = {
		.b = {.op = NFS4_OP_READ, .sid = sid, .off = off, .size = size,
		      .chunk = nfs_io_read(c), .encode = read_encode, .decode = read_decode},
		.buf = buf,
		.eof = eof,
	};

	if (eof)
		*eof = 0;
	return size == 0 ? 0 : io_batch_run(c, cr, fh, &rb.b);
}

ssize_t nfs_read_ref(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		     const struct nfs_stateid *sid, size_t size, uint64_t off, int *eof,
		     const uint8_t **data, void **keep)
{
	*keep = NULL;
	if (eof)
		*eof = 0;
	if (size > nfs_io_read(c)) {
		/* Several READs: their data is gathered into one buffer. */
		uint8_t *buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		ssize_t n = nfs_read(c, cr, fh, sid, buf, size, off, eof);
		if (n < 0) {
			free(buf);
			return n;
		}
		*data = buf;
		*keep = buf;
		return n;
	}
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_READ);
	put_stateid(&cp.x, sid);
	xdr_put_u64(&cp.x, off);
	xdr_put_u32(&cp.x, (uint32_t)size);
	int st = run_fh_op(c, cr, &cp, &r, fh, NFS4_OP_READ);
	if (st < 0)
		return st;
	ssize_t n = st_err(st);
	if (!n) {
		int at_end = xdr_get_bool(&r.d);
		size_t got;
		const uint8_t *p = xdr_get_opaque(&r.d, &got, size);
		if (!p) {
			n = -EBADMSG;
		} else {
			*data = p;
			*keep = r.rep.buf; /* the reply's buffer is now the caller's */
			r.rep.buf = NULL;
			if (eof)
				*eof = at_end;
			n = (ssize_t)got;
		}
	}
	res_free(&r);
	return n;
}

struct write_batch {
	struct io_batch b;
	const void *buf;
	int stable;
	int *committed;
	uint8_t *verf;
};

static void write_encode(struct io_batch *b, struct nfs_compound *cp, size_t o, size_t len)
{
	struct write_batch *wb = (struct write_batch *)b;

	xdr_put_u32(&cp->x, (uint32_t)wb->stable);
	comp_payload(cp, (const uint8_t *)wb->buf + o, len);
}

static ssize_t write_decode(struct io_batch *b, struct nfs_res *r, int i, size_t o, size_t want,
			    int *stop)
{
	struct write_batch *wb = (struct write_batch *)b;
	uint32_t cnt = xdr_get_u32(&r->d);
	uint32_t how = xdr_get_u32(&r->d);
	const uint8_t *v = xdr_get_fixed(&r->d, NFS4_VERIFIER_SIZE);

	if (!v || cnt > want || how > FILE_SYNC4)
		return -EBADMSG;
	if (wb->committed && (int)how < *wb->committed)
		*wb->committed = (int)how;
	if (wb->verf && i == 0)
		memcpy(wb->verf, v, NFS4_VERIFIER_SIZE);
	if (cnt < want)
		*stop = 1;
	return (ssize_t)cnt;
}

ssize_t nfs_write(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		  const struct nfs_stateid *sid, const void *buf, size_t size, uint64_t off,
		  int stable, int *committed, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct write_batch wb = {
		.b = {.op = NFS4_OP_WRITE, .sid = sid, .off = off, .size = size,
		      .chunk = nfs_io_write(c), .encode = write_encode, .decode = write_decode},
		.buf = buf,
		.stable = stable,
		.committed = committed,
		.verf = verf,
	};

	if (committed)
		*committed = FILE_SYNC4;
	return size == 0 ? 0 : io_batch_run(c, cr, fh, &wb.b);
}

int nfs_commit(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       uint64_t off, uint32_t count, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_COMMIT);
	xdr_put_u64(&cp.x, off);
	xdr_put_u32(&cp.x, count);
	int st = run_fh_op(c, cr, &cp, &r, fh, NFS4_OP_COMMIT);
	if (st < 0)
		return st;
	int err = st_err(st);
	if (!err) {
		const uint8_t *v = xdr_get_fixed(&r.d, NFS4_VERIFIER_SIZE);
		if (!v)
			err = -EBADMSG;
		else if (verf)
			memcpy(verf, v, NFS4_VERIFIER_SIZE);
	}
	res_free(&r);
	return err;
}

/* ---- namespace ---- */

int nfs_create(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, uint32_t type, const char *linkdata, dev_t rdev, uint32_t mode,
	       struct nfs_fh *fh, struct nfs_attr *attr)
{
	int err = check_name(name);
	if (err)
		return err;
	struct nfs_fh tfh;
	struct nfs_attr tattr;
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, dir);
	comp_op(&cp, NFS4_OP_CREATE);
	xdr_put_u32(&cp.x, type);
	switch (type) {
	case NF4LNK:
		xdr_put_string(&cp.x, linkdata ? linkdata : "");
		break;
	case NF4BLK:
	case NF4CHR:
		xdr_put_u32(&cp.x, major(rdev));
		xdr_put_u32(&cp.x, minor(rdev));
		break;
	case NF4DIR:
	case NF4SOCK:
	case NF4FIFO:
		break;
	default:
		comp_free(&cp);
		return -EINVAL;
	}
	xdr_put_string(&cp.x, name);
	struct nfs_sattr sa = { .valid = NFS_SA_MODE, .mode = mode & 07777 };
	nfs4_encode_sattr(&cp.x, &sa);
	comp_op(&cp, NFS4_OP_GETFH);
	put_stat_getattr(&cp);
	int st = run_fh_op(c, cr, &cp, &r, dir, NFS4_OP_CREATE);
	if (st < 0)
		return st;
	err = st_err(st);
	if (!err) {
		skip_cinfo(&r.d);
		skip_bitmap(&r.d);
		err = res_fh_attr(&r, fh ? fh : &tfh, attr ? attr : &tattr);
	}
	res_free(&r);
	return err;
}

int nfs_remove(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, int kind)
{
	int err = check_name(name);
	if (err)
		return err;
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, dir);
	if (kind != NFS_RM_ANY) {
		/* Check the type in the same COMPOUND: VERIFY stops it with
		 * NOT_SAME, NVERIFY with SAME. */
		comp_op(&cp, NFS4_OP_LOOKUP);
		xdr_put_string(&cp.x, name);
		comp_op(&cp, kind == NFS_RM_DIR ? NFS4_OP_VERIFY : NFS4_OP_NVERIFY);
		xdr_put_u32(&cp.x, 1);
		xdr_put_u32(&cp.x, 1u << FATTR4_TYPE);
		xdr_put_u32(&cp.x, 4);
		xdr_put_u32(&cp.x, NF4DIR);
		put_fh(&cp, dir);
	}
	comp_op(&cp, NFS4_OP_REMOVE);
	xdr_put_string(&cp.x, name);
	err = nfs_compound_run(c, cr, &cp, &r);
	comp_free(&cp);
	if (err)
		return err;
	uint32_t putop = dir ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH;
	int st = res_op(&r, putop);
	if (!st && kind != NFS_RM_ANY) {
		st = res_op(&r, NFS4_OP_LOOKUP);
		if (!st) {
			st = res_op(&r, kind == NFS_RM_DIR ? NFS4_OP_VERIFY : NFS4_OP_NVERIFY);
			if (st == NFS4ERR_NOT_SAME)
				st = -ENOTDIR;
			else if (st == NFS4ERR_SAME)
				st = -EISDIR;
		}
		if (!st)
			st = res_op(&r, putop);
	}
	if (!st)
		st = res_op(&r, NFS4_OP_REMOVE);
	res_free(&r);
	return st_err(st);
}

int nfs_rename(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *from_dir,
	       const char *from, const struct nfs_fh *to_dir, const char *to)
{
	int err = check_name(from);
	if (!err)
		err = check_name(to);
	if (err)
		return err;
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, from_dir);
	comp_op(&cp, NFS4_OP_SAVEFH);
	put_fh(&cp, to_dir);
	comp_op(&cp, NFS4_OP_RENAME);
	xdr_put_string(&cp.x, from);
	xdr_put_string(&cp.x, to);
	int st = run_fh_op(c, cr, &cp, &r, from_dir, NFS4_OP_SAVEFH);
	if (st < 0)
		return st;
	if (!st)
		st = res_op(&r, to_dir ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH);
	if (!st)
		st = res_op(&r, NFS4_OP_RENAME);
	res_free(&r);
	return st_err(st);
}

struct rename_step {
	const struct nfs_fh *from_dir, *to_dir;
	const char *from, *to;
};

/* RENAMEs in one COMPOUND, in order; *done gets how many took effect. */
static int rename_steps(struct nfs_client *c, const struct rpc_auth *cr,
			const struct rename_step *s, int n, int *done)
{
	struct nfs_compound cp;
	struct nfs_res r;
	*done = 0;
	comp_init(&cp);
	cp.cachethis = 1;
	for (int i = 0; i < n; i++) {
		put_fh(&cp, s[i].from_dir);
		comp_op(&cp, NFS4_OP_SAVEFH);
		put_fh(&cp, s[i].to_dir);
		comp_op(&cp, NFS4_OP_RENAME);
		xdr_put_string(&cp.x, s[i].from);
		xdr_put_string(&cp.x, s[i].to);
	}
	int err = nfs_compound_run(c, cr, &cp, &r);
	comp_free(&cp);
	if (err)
		return err;
	int st = 0;
	for (int i = 0; i < n && !st; i++) {
		st = res_op(&r, s[i].from_dir ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH);
		if (!st)
			st = res_op(&r, NFS4_OP_SAVEFH);
		if (!st)
			st = res_op(&r, s[i].to_dir ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH);
		if (!st)
			st = res_op(&r, NFS4_OP_RENAME);
		if (!st) {
			skip_cinfo(&r.d);
			skip_cinfo(&r.d);
			(*done)++;
		}
	}
	res_free(&r);
	return st_err(st);
}

int nfs_rename_exchange(struct nfs_client *c, const struct rpc_auth *cr,
			const struct nfs_fh *dir_a, const char *a, const struct nfs_fh *dir_b,
			const char *b)
{
	int err = check_name(a);
	if (!err)
		err = check_name(b);
	if (err)
		return err;
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = nfs_next_owner(c) * 0x9e3779b97f4a7c15ull;
	char tmp[40];
	snprintf(tmp, sizeof tmp, ".efsmt-xchg-%016llx", (unsigned long long)rnd);
	const struct rename_step steps[3] = {
		{ dir_a, dir_a, a, tmp },
		{ dir_b, dir_a, b, a },
		{ dir_a, dir_b, tmp, b },
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
		const struct rename_step back = { dir_a, dir_b, a, b };
		(void)rename_steps(c, cr, &back, 1, &undone);
	}
	const struct rename_step back1 = { dir_a, dir_a, tmp, a };
	(void)rename_steps(c, cr, &back1, 1, &undone);
	return err;
}

int nfs_link(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	     const struct nfs_fh *dir, const char *name, struct nfs_attr *attr)
{
	int err = check_name(name);
	if (err)
		return err;
	struct nfs_attr tmp;
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_SAVEFH);
	put_fh(&cp, dir);
	comp_op(&cp, NFS4_OP_LINK);
	xdr_put_string(&cp.x, name);
	comp_op(&cp, NFS4_OP_RESTOREFH);
	put_stat_getattr(&cp);
	int st = run_fh_op(c, cr, &cp, &r, fh, NFS4_OP_SAVEFH);
	if (st < 0)
		return st;
	if (!st)
		st = res_op(&r, dir ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH);
	if (!st)
		st = res_op(&r, NFS4_OP_LINK);
	if (!st) {
		skip_cinfo(&r.d);
		st = res_op(&r, NFS4_OP_RESTOREFH);
	}
	err = st_err(st);
	if (!err)
		err = res_fh_attr(&r, NULL, attr ? attr : &tmp);
	res_free(&r);
	return err;
}

int nfs_readdir(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
		uint64_t cookie, uint8_t verf[NFS4_VERIFIER_SIZE], uint32_t maxcount,
		nfs_readdir_fn fn, void *ctx, int *eof)
{
	uint32_t lim = nfs_io_read(c);
	if (maxcount == 0 || maxcount > NFS_READDIR_MAXCOUNT)
		maxcount = NFS_READDIR_MAXCOUNT;
	if (maxcount > lim)
		maxcount = lim;
	if (maxcount < NFS_READDIR_MIN)
		maxcount = NFS_READDIR_MIN;
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, dir);
	comp_op(&cp, NFS4_OP_READDIR);
	xdr_put_u64(&cp.x, cookie);
	xdr_put_fixed(&cp.x, verf, NFS4_VERIFIER_SIZE);
	xdr_put_u32(&cp.x, maxcount); /* dircount */
	xdr_put_u32(&cp.x, maxcount);
	xdr_put_u32(&cp.x, 2);
	xdr_put_u32(&cp.x, stat_mask0 | 1u << FATTR4_RDATTR_ERROR);
	xdr_put_u32(&cp.x, stat_mask1);
	int st = run_fh_op(c, cr, &cp, &r, dir, NFS4_OP_READDIR);
	if (st < 0)
		return st;
	int err = st_err(st);
	if (err) {
		res_free(&r);
		return err;
	}
	err = nfs4_decode_readdir(&r.d, verf, fn, ctx, eof);
	res_free(&r);
	return err;
}

int nfs4_decode_readdir(struct xdr_dec *d, uint8_t verf[NFS4_VERIFIER_SIZE], nfs_readdir_fn fn,
			void *ctx, int *eof)
{
	const uint8_t *v = xdr_get_fixed(d, NFS4_VERIFIER_SIZE);
	if (v)
		memcpy(verf, v, NFS4_VERIFIER_SIZE);
	int stopped = 0;
	while (!d->err && xdr_get_bool(d)) {
		char name[NFS4_MAXNAME + 1];
		struct nfs_attr a;
		uint64_t ck = xdr_get_u64(d);
		if (xdr_get_string(d, name, sizeof name, NFS4_MAXNAME))
			break;
		if (nfs4_decode_fattr(d, &a)) {
			d->err = -EBADMSG;
			break;
		}
		if (!stopped && fn(ctx, name, ck, &a))
			stopped = 1;
	}
	int e = xdr_get_bool(d);
	if (eof)
		*eof = e && !stopped;
	return d->err ? -EBADMSG : 0;
}

/* ---- byte-range locks ---- */

#define NFS_LOCK_OWNER_PREFIX "efsmt-lock-"

static void put_lock_owner(struct xdr_enc *x, uint64_t clientid, uint64_t owner)
{
	uint8_t o[sizeof NFS_LOCK_OWNER_PREFIX - 1 + 8];
	memcpy(o, NFS_LOCK_OWNER_PREFIX, sizeof NFS_LOCK_OWNER_PREFIX - 1);
	for (int i = 0; i < 8; i++)
		o[sizeof NFS_LOCK_OWNER_PREFIX - 1 + i] = (uint8_t)(owner >> (56 - 8 * i));
	xdr_put_u64(x, clientid);
	xdr_put_opaque(x, o, sizeof o);
}

/* LOCK4denied: the conflicting lock. */
static void get_denied(struct xdr_dec *d, struct nfs_lock_conflict *cf)
{
	size_t n;
	struct nfs_lock_conflict tmp;
	if (!cf)
		cf = &tmp;
	cf->offset = xdr_get_u64(d);
	cf->length = xdr_get_u64(d);
	cf->type = xdr_get_u32(d);
	(void)xdr_get_u64(d); /* owner's client ID */
	(void)xdr_get_opaque(d, &n, NFS4_OPAQUE_LIMIT);
}

int nfs_lock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_open *of,
	     struct nfs_lock *lk, uint32_t type, uint64_t off, uint64_t len,
	     struct nfs_lock_conflict *conflict)
{
	struct nfs_compound cp;
	struct nfs_res r;
	if (!lk->have && !lk->owner)
		lk->owner = nfs_next_owner(c);
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, &of->fh);
	comp_op(&cp, NFS4_OP_LOCK);
	xdr_put_u32(&cp.x, type);
	xdr_put_bool(&cp.x, 0); /* not a reclaim */
	xdr_put_u64(&cp.x, off);
	xdr_put_u64(&cp.x, len);
	if (!lk->have) {
		xdr_put_bool(&cp.x, 1); /* a new lock-owner, from the open */
		xdr_put_u32(&cp.x, 0);	/* open seqid: unused in 4.1 */
		put_stateid(&cp.x, &of->stateid);
		xdr_put_u32(&cp.x, 0); /* lock seqid */
		put_lock_owner(&cp.x, nfs_client_id(c), lk->owner);
	} else {
		xdr_put_bool(&cp.x, 0);
		put_stateid(&cp.x, &lk->stateid);
		xdr_put_u32(&cp.x, 0);
	}
	int st = run_fh_op(c, cr, &cp, &r, &of->fh, NFS4_OP_LOCK);
	if (st < 0)
		return st;
	if (st == 0) {
		get_stateid(&r.d, &lk->stateid);
		if (!r.d.err)
			lk->have = 1;
		else
			st = -EBADMSG;
	} else if (st == NFS4ERR_DENIED) {
		get_denied(&r.d, conflict);
		st = r.d.err ? -EBADMSG : st;
	}
	res_free(&r);
	return st_err(st);
}

int nfs_unlock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_open *of,
	       struct nfs_lock *lk, uint64_t off, uint64_t len)
{
	struct nfs_compound cp;
	struct nfs_res r;
	if (!lk->have)
		return 0;
	comp_init(&cp);
	cp.cachethis = 1;
	put_fh(&cp, &of->fh);
	comp_op(&cp, NFS4_OP_LOCKU);
	xdr_put_u32(&cp.x, WRITE_LT);
	xdr_put_u32(&cp.x, 0);
	put_stateid(&cp.x, &lk->stateid);
	xdr_put_u64(&cp.x, off);
	xdr_put_u64(&cp.x, len);
	int st = run_fh_op(c, cr, &cp, &r, &of->fh, NFS4_OP_LOCKU);
	if (st < 0)
		return st;
	if (!st) {
		get_stateid(&r.d, &lk->stateid);
		if (r.d.err)
			st = -EBADMSG;
	}
	res_free(&r);
	return st_err(st);
}

int nfs_free_stateid(struct nfs_client *c, const struct rpc_auth *cr,
		     const struct nfs_stateid *sid)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	comp_op(&cp, NFS4_OP_FREE_STATEID);
	put_stateid(&cp.x, sid);
	int e = nfs_compound_run(c, cr, &cp, &r);
	comp_free(&cp);
	if (e)
		return e;
	int st = res_op(&r, NFS4_OP_FREE_STATEID);
	res_free(&r);
	return st_err(st);
}

int nfs_testlock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		 uint64_t owner, uint32_t type, uint64_t off, uint64_t len,
		 struct nfs_lock_conflict *conflict)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	put_fh(&cp, fh);
	comp_op(&cp, NFS4_OP_LOCKT);
	xdr_put_u32(&cp.x, type);
	xdr_put_u64(&cp.x, off);
	xdr_put_u64(&cp.x, len);
	put_lock_owner(&cp.x, nfs_client_id(c), owner);
	int st = run_fh_op(c, cr, &cp, &r, fh, NFS4_OP_LOCKT);
	if (st < 0)
		return st;
	if (st == NFS4ERR_DENIED) {
		get_denied(&r.d, conflict);
		st = r.d.err ? -EBADMSG : st;
	}
	res_free(&r);
	return st_err(st);
}
