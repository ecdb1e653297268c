/* nfs4_io.c - open files and their data: OPEN (with its truncation,
 * exclusive create and read-ahead), CLOSE, READ and WRITE (large ones as a
 * batch of COMPOUNDs in flight), COMMIT; the requests of nfs4_compound.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "nfs4_int.h"

#define NFS_MAX_CHUNKS 256 /* READ/WRITE pieces per call */

/* The "current stateid" (RFC 8881 16.2.3.1.2): the one the OPEN before it
 * in the COMPOUND returned. */
static const struct nfs_stateid current_sid = {1, {0}};

/* ---- open files ---- */

static void delegreturn(struct nfs_client *c, const struct nfs_fh *fh,
			const struct nfs_stateid *sid)
{
	struct nfs_req rq;
	req_begin(&rq, c, NULL, 0);
	req_putfh(&rq, fh);
	req_delegreturn(&rq, sid);
	(void)req_call(&rq);
}

int nfs_reopen(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of)
{
	struct nfs_req rq;
	struct nfs_stateid sid;
	struct req_open_res res = {.sid = &sid};
	uint64_t owner = nfs_next_owner(c);
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, &of->fh);
	req_open(&rq, &(struct req_open_args){.access = (uint32_t)of->access, .owner = owner},
		 &res);
	int err = req_call(&rq);
	if (err)
		return err;
	of->stateid = sid;
	of->owner = owner;
	if (res.has_deleg)
		delegreturn(c, &of->fh, &res.deleg);
	return 0;
}

int nfs_open(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	     const char *name, int flags, uint32_t mode, struct nfs_open *of, struct nfs_attr *attr)
{
	return nfs_open_read(c, cr, dir, name, flags, mode, of, attr, NULL, 0, NULL, NULL);
}

/* After an exclusive create: the server may have kept the verifier in
 * atime/mtime and not applied the mode; set what it did not (RFC 8881
 * 18.16.3). */
static int excl_fixup(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of,
		      const uint32_t attrset[3], uint32_t mode, struct nfs_attr *attr)
{
	struct nfs_sattr fix = {0};
	if (!(attrset[1] & 1u << (FATTR4_MODE - 32))) {
		fix.valid |= NFS_SA_MODE;
		fix.mode = mode & 07777;
	}
	if (attrset[1] & 1u << (FATTR4_TIME_ACCESS - 32))
		fix.valid |= NFS_SA_ATIME_NOW;
	if (attrset[1] & 1u << (FATTR4_TIME_MODIFY - 32))
		fix.valid |= NFS_SA_MTIME_NOW;
	return fix.valid ? nfs_setattr(c, cr, &of->fh, &of->stateid, &fix, attr) : 0;
}

int nfs_open_read(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
		  const char *name, int flags, uint32_t mode, struct nfs_open *of,
		  struct nfs_attr *attr, void *buf, size_t size, size_t *got, int *eof)
{
	int err = nfs_check_name(name);
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
	 * stateid. */
	int trunc = (flags & O_TRUNC) && acc != OPEN4_SHARE_ACCESS_READ && !excl;
	memset(of, 0, sizeof *of);
	of->owner = nfs_next_owner(c);
	of->access = acc;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	if (excl && getrandom(verf, sizeof verf, 0) != sizeof verf)
		memcpy(verf, &of->owner, sizeof verf);

	struct nfs_req rq;
	struct req_open_res res = {.sid = &of->stateid};
	struct req_read pre = {0};
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, dir);
	req_open(&rq,
		 &(struct req_open_args){.access = (uint32_t)acc,
					 .owner = of->owner,
					 .name = name,
					 .create = flags & O_CREAT,
					 .verf = excl ? verf : NULL,
					 .mode = mode},
		 &res);
	if (trunc) {
		struct nfs_sattr zero = {.valid = NFS_SA_SIZE, .size = 0};
		req_setattr(&rq, &current_sid, &zero);
	}
	req_getfh(&rq, &of->fh);
	req_getattr(&rq, attr);
	/* The reply is kept for a retry (cachethis): one the server would not
	 * keep fails the READ (NFS4ERR_REP_TOO_BIG_TO_CACHE). */
	uint32_t cacheable = nfs_cached_read_max(c);
	if (size > cacheable)
		size = cacheable;
	if (size) {
		/* The start of the file with the new open's stateid; a failed
		 * READ only loses the prefetch, not the open. */
		req_read(&rq, &current_sid, 0, (uint32_t)size, &pre);
		req_optional(&rq);
	}
	if (got)
		*got = 0;
	err = req_run(&rq);
	if (size && pre.data) {
		memcpy(buf, pre.data, pre.len);
		*got = pre.len;
		if (eof)
			*eof = pre.eof;
	}
	req_end(&rq);
	if (res.ok && res.has_deleg)
		delegreturn(c, err ? dir : &of->fh, &res.deleg);
	if (!err && excl)
		err = excl_fixup(c, cr, of, res.attrset, mode, attr);
	if (err && res.ok && of->fh.len)
		(void)nfs_close(c, cr, of);
	return err;
}

int nfs_close(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of)
{
	return nfs_commit_close(c, cr, of, 0, NULL);
}

int nfs_commit_close(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of,
		     int commit, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct nfs_req rq;
	req_begin(&rq, c, cr, 1);
	req_putfh(&rq, &of->fh);
	if (commit)
		req_commit(&rq, 0, 0, verf);
	req_close(&rq, &of->stateid);
	return req_call(&rq);
}

int nfs_commit(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       uint64_t off, uint32_t count, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct nfs_req rq;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	req_commit(&rq, off, count, verf);
	return req_call(&rq);
}

/* ---- data ---- */

/* One large READ or WRITE as a batch of COMPOUNDs in flight together, one
 * piece of at most chunk bytes each; the count is what succeeded before
 * the first error or short piece, or the error when nothing did. */
struct io {
	const struct nfs_stateid *sid;
	uint64_t off;
	size_t size;
	uint32_t chunk;
	void *rbuf;	  /* READ into, or */
	const void *wbuf; /* WRITE from */
	int *eof;
	int stable;
	int *committed;
	uint8_t *verf;
};

union io_piece {
	struct req_read r;
	struct req_write w;
};

/* How many pieces of chunk bytes; size is cut to NFS_MAX_CHUNKS of them. */
static int chunk_count(size_t *size, uint32_t chunk)
{
	if (chunk == 0)
		chunk = 1;
	if (*size / chunk >= NFS_MAX_CHUNKS)
		*size = (size_t)chunk * NFS_MAX_CHUNKS;
	return (int)((*size + chunk - 1) / chunk);
}

/* The bytes of the piece at o. */
static uint32_t piece_len(const struct io *io, size_t o)
{
	return (uint32_t)(io->size - o < io->chunk ? io->size - o : io->chunk);
}

/* Piece i's result (at o, want bytes asked): bytes done; *stop after a
 * short one. */
static ssize_t read_piece(struct io *io, const struct req_read *r, size_t o, size_t want, int *stop)
{
	memcpy((uint8_t *)io->rbuf + o, r->data, r->len);
	if (r->eof && io->eof)
		*io->eof = 1;
	if (r->eof || r->len < want)
		*stop = 1; /* the rest is past a hole in the reply */
	return (ssize_t)r->len;
}

static ssize_t write_piece(struct io *io, const struct req_write *w, int i, size_t want, int *stop)
{
	if (io->committed && (int)w->how < *io->committed)
		*io->committed = (int)w->how;
	if (io->verf && i == 0)
		memcpy(io->verf, w->verf, NFS4_VERIFIER_SIZE);
	if (w->count < want)
		*stop = 1;
	return (ssize_t)w->count;
}

static ssize_t io_run(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		      struct io *io)
{
	int n = chunk_count(&io->size, io->chunk);
	struct nfs_req *rq = calloc((size_t)n, sizeof *rq);
	union io_piece *p = calloc((size_t)n, sizeof *p);
	int *ret = calloc((size_t)n, sizeof *ret);
	ssize_t total = -ENOMEM;
	int stop = 0;

	if (rq && p && ret) {
		for (int i = 0; i < n; i++) {
			size_t o = (size_t)i * io->chunk;
			uint32_t len = piece_len(io, o);
			req_begin(&rq[i], c, cr, 0); /* WRITE is idempotent at a given offset */
			req_putfh(&rq[i], fh);
			if (io->wbuf)
				req_write(&rq[i], io->sid, io->off + o, io->stable,
					  (const uint8_t *)io->wbuf + o, len, &p[i].w);
			else
				req_read(&rq[i], io->sid, io->off + o, len, &p[i].r);
		}
		total = req_run_batch(rq, n, ret);
		stop = total < 0;
		for (int i = 0; i < n; i++) {
			size_t o = (size_t)i * io->chunk;
			uint32_t want = piece_len(io, o);
			if (!stop) {
				ssize_t got = ret[i];
				if (!got)
					got = io->wbuf ? write_piece(io, &p[i].w, i, want, &stop)
						       : read_piece(io, &p[i].r, o, want, &stop);
				if (got < 0) {
					if (total == 0)
						total = got;
					stop = 1;
				} else {
					total += got;
				}
			}
			req_end(&rq[i]);
		}
	}
	free(rq);
	free(p);
	free(ret);
	return total;
}

ssize_t nfs_read(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		 const struct nfs_stateid *sid, void *buf, size_t size, uint64_t off, int *eof)
{
	struct io io = {
	    .sid = sid, .off = off, .size = size, .chunk = nfs_io_read(c), .rbuf = buf, .eof = eof};
	if (eof)
		*eof = 0;
	return size == 0 ? 0 : io_run(c, cr, fh, &io);
}

ssize_t nfs_write(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		  const struct nfs_stateid *sid, const void *buf, size_t size, uint64_t off,
		  int stable, int *committed, uint8_t verf[NFS4_VERIFIER_SIZE])
{
	struct io io = {.sid = sid,
			.off = off,
			.size = size,
			.chunk = nfs_io_write(c),
			.wbuf = buf,
			.stable = stable,
			.committed = committed,
			.verf = verf};
	if (committed)
		*committed = FILE_SYNC4;
	return size == 0 ? 0 : io_run(c, cr, fh, &io);
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
	struct nfs_req rq;
	struct req_read r;
	req_begin(&rq, c, cr, 0);
	req_putfh(&rq, fh);
	req_read(&rq, sid, off, (uint32_t)size, &r);
	ssize_t n = req_run(&rq);
	if (!n) {
		*data = r.data;
		*keep = req_keep_reply(&rq); /* the data stays in the reply's buffer */
		if (eof)
			*eof = r.eof;
		n = (ssize_t)r.len;
	}
	req_end(&rq);
	return n;
}
