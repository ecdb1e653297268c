/* nfs4_compound.c - requests: a COMPOUND built one operation at a time,
 * run, and its results read back in the order they were asked for
 * (nfs4_int.h). One encoder (req_<op>) and one decoder per operation; the
 * decoders are found by opcode in one table, so the reading is the same
 * loop for every request. Under them, the raw COMPOUND (comp_*, res_*). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "nfs4_int.h"

#define NFS_OPEN_OWNER_PREFIX "efsmt-open-"
#define NFS_LOCK_OWNER_PREFIX "efsmt-lock-"
#define NFS_OWNER_PREFIX_MAX  16

/* Attributes for struct stat (word 0, word 1). */
static const uint32_t stat_mask0 =
    1u << FATTR4_TYPE | 1u << FATTR4_CHANGE | 1u << FATTR4_SIZE | 1u << FATTR4_FILEID;
static const uint32_t stat_mask1 =
    1u << (FATTR4_MODE - 32) | 1u << (FATTR4_NUMLINKS - 32) | 1u << (FATTR4_OWNER - 32) |
    1u << (FATTR4_OWNER_GROUP - 32) | 1u << (FATTR4_RAWDEV - 32) | 1u << (FATTR4_SPACE_USED - 32) |
    1u << (FATTR4_TIME_ACCESS - 32) | 1u << (FATTR4_TIME_METADATA - 32) |
    1u << (FATTR4_TIME_MODIFY - 32);

/* ---- COMPOUND building ---- */

void comp_init(struct nfs_compound *cp)
{
	memset(cp, 0, sizeof *cp);
	xdr_enc_init(&cp->x);
}

void comp_free(struct nfs_compound *cp)
{
	xdr_enc_free(&cp->x);
}

/* How much an operation names what an RPC is for (nfs4.h, NFS_RPC_SLOTS):
 * 0 for those that only set or save the current filehandle; 1 for those
 * that find or check what a later operation works on (LOOKUP and VERIFY
 * before a REMOVE, a COMMIT before a CLOSE, a GETATTR after a SETATTR) but
 * are the RPC's purpose when nothing else comes; 2 for the rest. */
static int op_rank(uint32_t op)
{
	switch (op) {
	case NFS4_OP_PUTFH:
	case NFS4_OP_PUTROOTFH:
	case NFS4_OP_PUTPUBFH:
	case NFS4_OP_SAVEFH:
	case NFS4_OP_RESTOREFH:
	case NFS4_OP_GETFH:
		return 0;
	case NFS4_OP_LOOKUP:
	case NFS4_OP_LOOKUPP:
	case NFS4_OP_VERIFY:
	case NFS4_OP_NVERIFY:
	case NFS4_OP_GETATTR:
	case NFS4_OP_ACCESS:
	case NFS4_OP_COMMIT:
		return 1;
	default:
		return 2;
	}
}

void comp_op(struct nfs_compound *cp, uint32_t op)
{
	xdr_put_u32(&cp->x, op);
	cp->nops++;
	/* The first operation of the highest rank. */
	if (!cp->main_op || op_rank(op) > op_rank(cp->main_op))
		cp->main_op = op;
}

void comp_payload(struct nfs_compound *cp, const void *data, size_t len)
{
	xdr_put_u32(&cp->x, (uint32_t)len);
	cp->payload = data;
	cp->payload_len = len;
	cp->split = cp->x.len;
}

void res_free(struct nfs_res *r)
{
	rpc_reply_free(&r->rep);
}

int res_op(struct nfs_res *r, uint32_t op)
{
	if (r->left == 0)
		return -EBADMSG;
	r->left--;
	uint32_t got = xdr_get_u32(&r->d);
	uint32_t st = xdr_get_u32(&r->d);
	if (r->d.err || got != op)
		return -EBADMSG;
	if (st > INT32_MAX)
		return -EBADMSG;
	return (int)st;
}

/* ---- pieces of arguments and results ---- */

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

/* An open-owner or lock-owner: the client ID, then prefix and the owner
 * number big-endian. */
static void put_owner(struct xdr_enc *x, const char *prefix, uint64_t clientid, uint64_t owner)
{
	uint8_t o[NFS_OWNER_PREFIX_MAX + 8];
	size_t n = strlen(prefix);
	memcpy(o, prefix, n);
	for (int i = 0; i < 8; i++)
		o[n + i] = (uint8_t)(owner >> (56 - 8 * i));
	xdr_put_u64(x, clientid);
	xdr_put_opaque(x, o, n + 8);
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

static void skip_nfsace(struct xdr_dec *d)
{
	size_t n;
	(void)xdr_get_u32(d);
	(void)xdr_get_u32(d);
	(void)xdr_get_u32(d);
	(void)xdr_get_opaque(d, &n, NFS4_OPAQUE_LIMIT);
}

static int dec_ok(struct xdr_dec *d)
{
	return d->err ? -EBADMSG : 0;
}

/* ---- building ---- */

void req_begin(struct nfs_req *rq, struct nfs_client *c, const struct rpc_auth *cr, int cachethis)
{
	memset(rq, 0, sizeof *rq);
	rq->c = c;
	rq->cr = cr;
	rq->ops = rq->inline_ops;
	rq->cap = REQ_INLINE_OPS;
	comp_init(&rq->cp);
	rq->cp.cachethis = cachethis;
}

/* Append operation op, whose result is to be decoded into out. */
static void note(struct nfs_req *rq, uint32_t op, void *out)
{
	if (rq->n == rq->cap) {
		struct req_op *ops = malloc(2 * rq->cap * sizeof *ops);
		if (!ops) {
			rq->err = -ENOMEM;
			return;
		}
		memcpy(ops, rq->ops, rq->n * sizeof *ops);
		if (rq->ops != rq->inline_ops)
			free(rq->ops);
		rq->ops = ops;
		rq->cap *= 2;
	}
	comp_op(&rq->cp, op);
	rq->ops[rq->n++] = (struct req_op){.op = op, .out = out};
	rq->nread = rq->n;
}

void req_optional(struct nfs_req *rq)
{
	if (rq->n)
		rq->ops[rq->n - 1].optional = 1;
}

/* ---- the operations: encoders ---- */

void req_putfh(struct nfs_req *rq, const struct nfs_fh *fh)
{
	note(rq, fh ? NFS4_OP_PUTFH : NFS4_OP_PUTROOTFH, NULL);
	if (fh)
		xdr_put_opaque(&rq->cp.x, fh->data, fh->len);
}

void req_getfh(struct nfs_req *rq, struct nfs_fh *fh)
{
	note(rq, NFS4_OP_GETFH, fh);
}

void req_getattr_mask(struct nfs_req *rq, uint32_t w0, uint32_t w1, struct nfs_attr *attr)
{
	note(rq, NFS4_OP_GETATTR, attr);
	xdr_put_u32(&rq->cp.x, 2);
	xdr_put_u32(&rq->cp.x, w0);
	xdr_put_u32(&rq->cp.x, w1);
	if (!attr && rq->n)
		rq->nread = rq->n - 1; /* unless a later result is read */
}

void req_getattr(struct nfs_req *rq, struct nfs_attr *attr)
{
	req_getattr_mask(rq, stat_mask0, stat_mask1, attr);
}

void req_savefh(struct nfs_req *rq)
{
	note(rq, NFS4_OP_SAVEFH, NULL);
}

void req_restorefh(struct nfs_req *rq)
{
	note(rq, NFS4_OP_RESTOREFH, NULL);
}

void req_lookup(struct nfs_req *rq, const char *name)
{
	note(rq, NFS4_OP_LOOKUP, NULL);
	xdr_put_string(&rq->cp.x, name);
}

void req_lookupp(struct nfs_req *rq)
{
	note(rq, NFS4_OP_LOOKUPP, NULL);
}

void req_setattr(struct nfs_req *rq, const struct nfs_stateid *sid, const struct nfs_sattr *sa)
{
	note(rq, NFS4_OP_SETATTR, NULL);
	put_stateid(&rq->cp.x, sid);
	nfs4_encode_sattr(&rq->cp.x, sa);
}

void req_access(struct nfs_req *rq, uint32_t want, uint32_t *allowed)
{
	note(rq, NFS4_OP_ACCESS, allowed);
	xdr_put_u32(&rq->cp.x, want);
}

void req_readlink(struct nfs_req *rq, struct req_readlink *res)
{
	note(rq, NFS4_OP_READLINK, res);
}

void req_open(struct nfs_req *rq, const struct req_open_args *a, struct req_open_res *res)
{
	struct xdr_enc *x = &rq->cp.x;
	note(rq, NFS4_OP_OPEN, res);
	xdr_put_u32(x, 0); /* seqid: unused in 4.1 */
	xdr_put_u32(x, a->access | OPEN4_SHARE_ACCESS_WANT_NO_DELEG);
	xdr_put_u32(x, OPEN4_SHARE_DENY_NONE);
	put_owner(x, NFS_OPEN_OWNER_PREFIX, nfs_client_id(rq->c), a->owner);
	if (a->create) {
		struct nfs_sattr sa = {.valid = NFS_SA_MODE, .mode = a->mode & 07777};
		xdr_put_u32(x, OPEN4_CREATE);
		if (a->verf) {
			xdr_put_u32(x, EXCLUSIVE4_1);
			xdr_put_fixed(x, a->verf, NFS4_VERIFIER_SIZE);
		} else {
			xdr_put_u32(x, UNCHECKED4);
		}
		nfs4_encode_sattr(x, &sa);
	} else {
		xdr_put_u32(x, OPEN4_NOCREATE);
	}
	if (a->name) {
		xdr_put_u32(x, CLAIM_NULL);
		xdr_put_string(x, a->name);
	} else {
		xdr_put_u32(x, CLAIM_FH); /* the file by its handle, whatever its name now */
	}
}

void req_close(struct nfs_req *rq, const struct nfs_stateid *sid)
{
	note(rq, NFS4_OP_CLOSE, NULL);
	xdr_put_u32(&rq->cp.x, 0); /* seqid */
	put_stateid(&rq->cp.x, sid);
}

void req_delegreturn(struct nfs_req *rq, const struct nfs_stateid *sid)
{
	note(rq, NFS4_OP_DELEGRETURN, NULL);
	put_stateid(&rq->cp.x, sid);
}

void req_read(struct nfs_req *rq, const struct nfs_stateid *sid, uint64_t off, uint32_t count,
	      struct req_read *res)
{
	res->max = count;
	res->data = NULL;
	note(rq, NFS4_OP_READ, res);
	put_stateid(&rq->cp.x, sid);
	xdr_put_u64(&rq->cp.x, off);
	xdr_put_u32(&rq->cp.x, count);
}

void req_write(struct nfs_req *rq, const struct nfs_stateid *sid, uint64_t off, int stable,
	       const void *data, uint32_t len, struct req_write *res)
{
	res->max = len;
	note(rq, NFS4_OP_WRITE, res);
	put_stateid(&rq->cp.x, sid);
	xdr_put_u64(&rq->cp.x, off);
	xdr_put_u32(&rq->cp.x, (uint32_t)stable);
	comp_payload(&rq->cp, data, len);
}

void req_commit(struct nfs_req *rq, uint64_t off, uint32_t count, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	note(rq, NFS4_OP_COMMIT, verf);
	xdr_put_u64(&rq->cp.x, off);
	xdr_put_u32(&rq->cp.x, count);
}

void req_create(struct nfs_req *rq, uint32_t type, const char *linkdata, dev_t rdev,
		const char *name, uint32_t mode)
{
	struct xdr_enc *x = &rq->cp.x;
	struct nfs_sattr sa = {.valid = NFS_SA_MODE, .mode = mode & 07777};
	if (type != NF4DIR && type != NF4LNK && type != NF4FIFO && type != NF4SOCK &&
	    type != NF4BLK && type != NF4CHR) {
		rq->err = -EINVAL;
		return;
	}
	note(rq, NFS4_OP_CREATE, NULL);
	xdr_put_u32(x, type);
	if (type == NF4LNK) {
		xdr_put_string(x, linkdata ? linkdata : "");
	} else if (type == NF4BLK || type == NF4CHR) {
		xdr_put_u32(x, major(rdev));
		xdr_put_u32(x, minor(rdev));
	}
	xdr_put_string(x, name);
	nfs4_encode_sattr(x, &sa);
}

void req_check_dir(struct nfs_req *rq, int dir)
{
	/* VERIFY stops the COMPOUND with NOT_SAME, NVERIFY with SAME. */
	note(rq, dir ? NFS4_OP_VERIFY : NFS4_OP_NVERIFY, NULL);
	xdr_put_u32(&rq->cp.x, 1);
	xdr_put_u32(&rq->cp.x, 1u << FATTR4_TYPE);
	xdr_put_u32(&rq->cp.x, 4);
	xdr_put_u32(&rq->cp.x, NF4DIR);
}

void req_remove(struct nfs_req *rq, const char *name)
{
	note(rq, NFS4_OP_REMOVE, NULL);
	xdr_put_string(&rq->cp.x, name);
}

void req_rename(struct nfs_req *rq, const char *from, const char *to, int *done)
{
	note(rq, NFS4_OP_RENAME, done);
	xdr_put_string(&rq->cp.x, from);
	xdr_put_string(&rq->cp.x, to);
}

void req_link(struct nfs_req *rq, const char *name)
{
	note(rq, NFS4_OP_LINK, NULL);
	xdr_put_string(&rq->cp.x, name);
}

void req_readdir(struct nfs_req *rq, uint64_t cookie, uint32_t maxcount, struct req_readdir *res)
{
	struct xdr_enc *x = &rq->cp.x;
	note(rq, NFS4_OP_READDIR, res);
	xdr_put_u64(x, cookie);
	xdr_put_fixed(x, res->verf, NFS4_VERIFIER_SIZE);
	xdr_put_u32(x, maxcount); /* dircount */
	xdr_put_u32(x, maxcount);
	xdr_put_u32(x, 2);
	xdr_put_u32(x, stat_mask0 | 1u << FATTR4_RDATTR_ERROR);
	xdr_put_u32(x, stat_mask1);
}

void req_lock(struct nfs_req *rq, const struct nfs_open *of, uint32_t type, uint64_t off,
	      uint64_t len, struct req_lock *res)
{
	struct xdr_enc *x = &rq->cp.x;
	const struct nfs_lock *lk = res->lk;
	note(rq, NFS4_OP_LOCK, res);
	xdr_put_u32(x, type);
	xdr_put_bool(x, 0); /* not a reclaim */
	xdr_put_u64(x, off);
	xdr_put_u64(x, len);
	if (!lk->have) {
		xdr_put_bool(x, 1); /* a new lock-owner, from the open */
		xdr_put_u32(x, 0);  /* open seqid: unused in 4.1 */
		put_stateid(x, &of->stateid);
		xdr_put_u32(x, 0); /* lock seqid */
		put_owner(x, NFS_LOCK_OWNER_PREFIX, nfs_client_id(rq->c), lk->owner);
	} else {
		xdr_put_bool(x, 0);
		put_stateid(x, &lk->stateid);
		xdr_put_u32(x, 0);
	}
}

void req_locku(struct nfs_req *rq, struct nfs_lock *lk, uint64_t off, uint64_t len)
{
	note(rq, NFS4_OP_LOCKU, &lk->stateid);
	xdr_put_u32(&rq->cp.x, WRITE_LT);
	xdr_put_u32(&rq->cp.x, 0);
	put_stateid(&rq->cp.x, &lk->stateid);
	xdr_put_u64(&rq->cp.x, off);
	xdr_put_u64(&rq->cp.x, len);
}

void req_lockt(struct nfs_req *rq, uint64_t owner, uint32_t type, uint64_t off, uint64_t len,
	       struct req_lock *res)
{
	note(rq, NFS4_OP_LOCKT, res);
	xdr_put_u32(&rq->cp.x, type);
	xdr_put_u64(&rq->cp.x, off);
	xdr_put_u64(&rq->cp.x, len);
	put_owner(&rq->cp.x, NFS_LOCK_OWNER_PREFIX, nfs_client_id(rq->c), owner);
}

void req_free_stateid(struct nfs_req *rq, const struct nfs_stateid *sid)
{
	note(rq, NFS4_OP_FREE_STATEID, NULL);
	put_stateid(&rq->cp.x, sid);
}

/* ---- the operations: decoders ---- */

static int dec_getfh(struct xdr_dec *d, void *out)
{
	struct nfs_fh tmp, *fh = out ? out : &tmp;
	size_t n;
	const uint8_t *p = xdr_get_opaque(d, &n, NFS4_FHSIZE);
	if (!p || n == 0)
		return -EBADMSG;
	fh->len = (uint32_t)n;
	memcpy(fh->data, p, n);
	return 0;
}

static int dec_getattr(struct xdr_dec *d, void *out)
{
	struct nfs_attr tmp;
	return nfs4_decode_fattr(d, out ? out : &tmp) ? -EBADMSG : 0;
}

static int dec_setattr(struct xdr_dec *d, void *out)
{
	skip_bitmap(d); /* attrsset */
	return dec_ok(d);
}

static int dec_access(struct xdr_dec *d, void *out)
{
	(void)xdr_get_u32(d); /* supported */
	*(uint32_t *)out = xdr_get_u32(d);
	return dec_ok(d);
}

static int dec_readlink(struct xdr_dec *d, void *out)
{
	struct req_readlink *res = out;
	size_t n;
	const uint8_t *p = xdr_get_opaque(d, &n, d->len);
	if (!p)
		return -EBADMSG;
	if (res->size) {
		size_t k = n < res->size - 1 ? n : res->size - 1;
		memcpy(res->buf, p, k);
		res->buf[k] = '\0';
	}
	res->len = n;
	return 0;
}

/* open_delegation4; *deleg gets a granted delegation's stateid. */
static void get_delegation(struct xdr_dec *d, int *has, struct nfs_stateid *deleg)
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
			if (by == NFS_LIMIT_SIZE || by == NFS_LIMIT_BLOCKS)
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
}

/* OPEN4resok: the stateid, change info, flags, the attributes set (the
 * first 3 words kept), the delegation. */
static int dec_open(struct xdr_dec *d, void *out)
{
	struct req_open_res *res = out;
	get_stateid(d, res->sid);
	skip_cinfo(d);
	(void)xdr_get_u32(d); /* rflags */
	uint32_t n = xdr_get_u32(d);
	for (uint32_t i = 0; i < n && !d->err; i++) {
		uint32_t w = xdr_get_u32(d);
		if (i < 3)
			res->attrset[i] = w;
	}
	get_delegation(d, &res->has_deleg, &res->deleg);
	if (d->err)
		return -EBADMSG;
	res->ok = 1;
	return 0;
}

static int dec_commit(struct xdr_dec *d, void *out)
{
	const uint8_t *v = xdr_get_fixed(d, NFS4_VERIFIER_SIZE);
	if (!v)
		return -EBADMSG;
	if (out)
		memcpy(out, v, NFS4_VERIFIER_SIZE);
	return 0;
}

static int dec_read(struct xdr_dec *d, void *out)
{
	struct req_read *res = out;
	size_t n;
	int eof = xdr_get_bool(d);
	const uint8_t *p = xdr_get_opaque(d, &n, res->max);
	if (!p)
		return -EBADMSG;
	res->data = p;
	res->len = n;
	res->eof = eof;
	return 0;
}

static int dec_write(struct xdr_dec *d, void *out)
{
	struct req_write *res = out;
	uint32_t cnt = xdr_get_u32(d);
	uint32_t how = xdr_get_u32(d);
	const uint8_t *v = xdr_get_fixed(d, NFS4_VERIFIER_SIZE);
	if (!v || cnt > res->max || how > FILE_SYNC4)
		return -EBADMSG;
	res->count = cnt;
	res->how = how;
	memcpy(res->verf, v, NFS4_VERIFIER_SIZE);
	return 0;
}

static int dec_create(struct xdr_dec *d, void *out)
{
	skip_cinfo(d);
	skip_bitmap(d); /* attrset */
	return dec_ok(d);
}

static int dec_link(struct xdr_dec *d, void *out)
{
	skip_cinfo(d);
	return dec_ok(d);
}

static int dec_rename(struct xdr_dec *d, void *out)
{
	int *done = out;
	skip_cinfo(d);
	skip_cinfo(d);
	if (done)
		(*done)++;
	return 0; /* it took effect: a bad body shows in the next result */
}

static int dec_readdir(struct xdr_dec *d, void *out)
{
	struct req_readdir *res = out;
	return nfs4_decode_readdir(d, res->verf, res->fn, res->ctx, res->eof);
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

static int dec_lock(struct xdr_dec *d, void *out)
{
	struct nfs_lock *lk = ((struct req_lock *)out)->lk;
	get_stateid(d, &lk->stateid);
	if (d->err)
		return -EBADMSG;
	lk->have = 1;
	return 0;
}

static int dec_stateid(struct xdr_dec *d, void *out)
{
	get_stateid(d, out);
	return dec_ok(d);
}

/* LOCK4denied: the conflicting lock. */
static int fail_denied(struct xdr_dec *d, uint32_t status, void *out)
{
	struct nfs_lock_conflict tmp, *cf = ((struct req_lock *)out)->conflict;
	size_t n;
	if (status != NFS4ERR_DENIED)
		return (int)status;
	if (!cf)
		cf = &tmp;
	cf->offset = xdr_get_u64(d);
	cf->length = xdr_get_u64(d);
	cf->type = xdr_get_u32(d);
	(void)xdr_get_u64(d); /* owner's client ID */
	(void)xdr_get_opaque(d, &n, NFS4_OPAQUE_LIMIT);
	return d->err ? -EBADMSG : (int)status;
}

/* req_check_dir's answer. */
static int fail_type(struct xdr_dec *d, uint32_t status, void *out)
{
	if (status == NFS4ERR_NOT_SAME)
		return -ENOTDIR;
	if (status == NFS4ERR_SAME)
		return -EISDIR;
	return (int)status;
}

/* The decoders by operation. ok reads the body after NFS4_OK into the
 * operation's out: 0 or -EBADMSG (none: no body, or none we need). fail
 * reads what follows an error status and gives the request's answer: a
 * status, or -errno (none: the status as it is, mapped to errno). */
struct op_dec {
	int (*ok)(struct xdr_dec *d, void *out);
	int (*fail)(struct xdr_dec *d, uint32_t status, void *out);
};

/* clang-format off */
static const struct op_dec decoders[NFS4_OP_RECLAIM_COMPLETE + 1] = {
	[NFS4_OP_ACCESS]   = { dec_access,   NULL },
	[NFS4_OP_COMMIT]   = { dec_commit,   NULL },
	[NFS4_OP_CREATE]   = { dec_create,   NULL },
	[NFS4_OP_GETATTR]  = { dec_getattr,  NULL },
	[NFS4_OP_GETFH]    = { dec_getfh,    NULL },
	[NFS4_OP_LINK]     = { dec_link,     NULL },
	[NFS4_OP_LOCK]     = { dec_lock,     fail_denied },
	[NFS4_OP_LOCKT]    = { NULL,         fail_denied },
	[NFS4_OP_LOCKU]    = { dec_stateid,  NULL },
	[NFS4_OP_NVERIFY]  = { NULL,         fail_type },
	[NFS4_OP_OPEN]     = { dec_open,     NULL },
	[NFS4_OP_READ]     = { dec_read,     NULL },
	[NFS4_OP_READDIR]  = { dec_readdir,  NULL },
	[NFS4_OP_READLINK] = { dec_readlink, NULL },
	[NFS4_OP_RENAME]   = { dec_rename,   NULL },
	[NFS4_OP_SETATTR]  = { dec_setattr,  NULL },
	[NFS4_OP_VERIFY]   = { NULL,         fail_type },
	[NFS4_OP_WRITE]    = { dec_write,    NULL },
	/* none: PUTFH, PUTROOTFH, SAVEFH, RESTOREFH, LOOKUP, LOOKUPP,
	 * DELEGRETURN, FREE_STATEID; REMOVE and CLOSE (results unused) */
};
/* clang-format on */

/* ---- running ---- */

/* Read the results of the operations noted, in order, up to the first
 * failure. */
static int read_results(struct nfs_req *rq)
{
	for (uint32_t i = 0; i < rq->nread; i++) {
		const struct req_op *o = &rq->ops[i];
		const struct op_dec *dc = &decoders[o->op];
		int st = res_op(&rq->r, o->op);
		if (st == 0 && dc->ok)
			st = dc->ok(&rq->r.d, o->out);
		else if (st > 0 && dc->fail)
			st = dc->fail(&rq->r.d, (uint32_t)st, o->out);
		if (st != 0)
			return o->optional ? 0 : st < 0 ? st : nfs4_errno((uint32_t)st);
	}
	return 0;
}

int req_run(struct nfs_req *rq)
{
	if (rq->err)
		return rq->err;
	int err = nfs_compound_run(rq->c, rq->cr, &rq->cp, &rq->r);
	if (err)
		return err;
	rq->ran = 1;
	return read_results(rq);
}

int req_run_batch(struct nfs_req *rq, int n, int *ret)
{
	struct nfs_compound *cps = calloc((size_t)n, sizeof *cps);
	struct nfs_res *res = calloc((size_t)n, sizeof *res);
	int err = cps && res ? 0 : -ENOMEM;

	for (int i = 0; i < n && !err; i++) {
		err = rq[i].err;
		cps[i] = rq[i].cp;
	}
	if (!err) {
		nfs_compound_batch(rq->c, rq->cr, cps, res, ret, n);
		for (int i = 0; i < n; i++) {
			if (ret[i])
				continue;
			rq[i].r = res[i];
			rq[i].ran = 1;
			ret[i] = read_results(&rq[i]);
		}
	}
	free(cps);
	free(res);
	return err;
}

void req_end(struct nfs_req *rq)
{
	comp_free(&rq->cp);
	if (rq->ran)
		res_free(&rq->r);
	if (rq->ops != rq->inline_ops)
		free(rq->ops);
}

int req_call(struct nfs_req *rq)
{
	int err = req_run(rq);
	req_end(rq);
	return err;
}

void *req_keep_reply(struct nfs_req *rq)
{
	void *buf = rq->r.rep.buf;
	rq->r.rep.buf = NULL;
	return buf;
}
