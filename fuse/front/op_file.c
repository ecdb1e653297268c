/*
 * op_file.c - open files: create, open, read, write, fsync, release and the
 * range operations. A file stays on the target it was opened on, unless
 * that target fails (outlive.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cred.h"
#include "fs.h"
#include "lock.h"
#include "node.h"
#include "outlive.h"
#include "setid.h"

/* Below this a read is copied: splicing a small reply costs more system
 * calls (pipe, vmsplice, two splices) than one pread and one writev. */
#define READ_SPLICE_MIN (64 * 1024) /* bytes */

/* Wrap a backend handle; on failure the backend handle is released. */
static struct efsmt_handle *wrap(fuse_req_t req, struct target *t, uint64_t bh)
{
	struct efsmt_handle *h = handle_new(t, bh, 0);

	if (!h) {
		t->ops->release(t, bh);
		fuse_reply_err(req, ENOMEM);
	}
	return h;
}

/* Whether writes through bh must run as the caller and be checked for
 * set-ID bits to clear (handle.h, killpriv): a file with set-ID bits opened
 * by a caller other than root (root's writes keep the bits). */
static int needs_killpriv(fuse_req_t req, struct target *t, uint64_t bh, const struct stat *known)
{
	struct stat st;

	if (!cred_enabled() || fuse_req_ctx(req)->uid == 0)
		return 0;
	if (!known) {
		if (t->ops->fgetattr(t, bh, &st) < 0)
			return 1; /* not known: the safe side */
		known = &st;
	}
	return S_ISREG(known->st_mode) && (known->st_mode & (S_ISUID | S_ISGID));
}

/* Whether close(2) of this open must reach the daemon (FUSE FLUSH): where
 * writes are deferred and it can write, and where POSIX locks go to the
 * targets on a file that had one asked through this mount (node.h): close
 * drops the closing process's locks, and FLUSH is its only notice. Any other
 * open gets FOPEN_NOFLUSH, sparing close a round trip; a lock later taken
 * through it ends when the open file is released (lock.h). */
static int needs_flush(const struct target *t, int flags, fuse_ino_t ino)
{
	if (t->ops->flush && (flags & O_ACCMODE) != O_RDONLY)
		return 1;
	return !(lock_local & LOCK_LOCAL_POSIX) && t->ops->lock_new && node_ever_locked(ino);
}

/* Tell the kernel whether close(2) of h's open sends FLUSH. */
static void set_noflush(struct fuse_file_info *fi, struct efsmt_handle *h, fuse_ino_t ino)
{
	fi->noflush = !needs_flush(handle_at(h)->t, fi->flags, ino);
	h->noflush = fi->noflush;
}

/* The handle of an open that returned rc: wrapped, with what its flags and
 * file ask (st: the file's attributes, if known); NULL once replied to. */
static struct efsmt_handle *opened(fuse_req_t req, struct target *t, int rc, uint64_t bh,
				   struct fuse_file_info *fi, const struct stat *st)
{
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return NULL;
	}
	struct efsmt_handle *h = wrap(req, t, bh);
	if (!h)
		return NULL;
	/* Close-to-open (cto, the default): the kernel drops the file's pages
	 * at every open. nocto keeps them; auto_inval_data (main.c) drops them
	 * when its attributes show another size or mtime. */
	fi->keep_cache = fs.nocto && !(fi->flags & O_TRUNC);
	h->rdonly = (fi->flags & O_ACCMODE) == O_RDONLY;
	h->flags = fi->flags;
	h->uid = fuse_req_ctx(req)->uid;
	h->gid = fuse_req_ctx(req)->gid;
	h->pid = fuse_req_ctx(req)->pid;
	h->killpriv = !h->rdonly && needs_killpriv(req, t, bh, st);
	return h;
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct be_caller c;
	struct stat st;
	uint64_t bh;

	CHILD_OR_REPLY(req, parent, name, path, t);
	fs_caller(req, &c);
	int rc = fs_count(t, t->ops->create(t, &c, path, fi->flags, mode, &bh, &st));
	struct efsmt_handle *h = opened(req, t, rc, bh, fi, &st);
	if (!h)
		return;
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = node_learn(parent, name, &st);
	e.attr = st;
	e.attr_timeout = e.ino ? fs_attr_timeout(e.ino, &st) : 0;
	e.entry_timeout = fs.entry_timeout;
	fi->fh = (uint64_t)(uintptr_t)h;
	if (!e.ino) {
		fuse_reply_err(req, ENOMEM);
		handle_put(h);
		return;
	}
	set_noflush(fi, h, e.ino);
	node_add_handle(e.ino, h);
	if (fuse_reply_create(req, &e, fi) != 0) {
		node_remove_handle(e.ino, h);
		node_forget(e.ino, 1);
		handle_put(h);
	}
}

/* An open with O_TRUNC truncates as a truncate(2) does: clear the set-ID
 * bits the target left. */
static void trunc_clear_setid(fuse_req_t req, fuse_ino_t ino, struct efsmt_handle *h)
{
	struct stat st;
	uid_t uid = fuse_req_ctx(req)->uid;

	struct handle_at *a = handle_at(h);

	if (uid == 0 || a->t->ops->fgetattr(a->t, a->bh, &st) < 0)
		return;
	fs_clear_setid(ino, h, setid_kill_on_write(&st, uid) & st.st_mode, &st);
}

/*
 * Close-to-open: an open reads what the last close on any host left. The
 * open drops the kernel's cached pages (no keep_cache), but the kernel
 * still trusts the size it cached (attr_timeout): a file another host
 * grew would read short. So when the attributes the open brought (the
 * OPEN's own, no extra request: nfs_be_fgetattr; an fstat for dir://)
 * differ from those the kernel holds, its cached attributes are dropped
 * and the next read or stat asks again, through this handle.
 */
static void cto_revalidate(fuse_ino_t ino, struct target *t, uint64_t bh)
{
	struct stat st;

	if (t->ops->fgetattr(t, bh, &st) == 0 && node_attr_changed(ino, &st)) {
		node_attr_drop(ino);
		fuse_lowlevel_notify_inval_inode(fs_session, ino, -1, 0);
	}
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	uint64_t bh;

	NODE_OR_REPLY(req, ino, path, t);
	int rc;
	if (fi->flags & O_TRUNC) {
		/* Not again elsewhere: a server that comes back may still run
		 * the truncation after writes made through another target. */
		op_guard_change();
		rc = t->ops->open(t, path, fi->flags, &bh);
		op_guard_change();
	} else {
		FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc,
				   t->ops->open(t, path, fi->flags, &bh));
	}
	struct efsmt_handle *h = opened(req, t, fs_count(t, rc), bh, fi, NULL);
	if (!h)
		return;
	if (fi->flags & O_TRUNC)
		trunc_clear_setid(req, ino, h);
	else if (!fs.nocto)
		cto_revalidate(ino, t, bh);
	fi->fh = (uint64_t)(uintptr_t)h;
	set_noflush(fi, h, ino);
	node_add_handle(ino, h);
	if (fuse_reply_open(req, fi) != 0) {
		node_remove_handle(ino, h);
		handle_put(h);
	}
}

/* One read through t, the bytes at *data; *keep is to free(3) afterwards.
 * Backends that receive data in buffers of their own hand those over
 * (read_ref) instead of copying them into one of ours. */
static ssize_t target_read(struct target *t, uint64_t bh, size_t size, off_t off,
			   const char **data, void **keep)
{
	*keep = NULL;
	if (t->ops->read_ref)
		return t->ops->read_ref(t, bh, size, off, data, keep);
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	*keep = buf;
	*data = buf;
	return t->ops->read(t, bh, buf, size, off);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	struct handle_at *at = handle_at(h);
	struct target *t = at->t;
	int fd = t->ops->handle_fd ? t->ops->handle_fd(t, at->bh) : -1;

	if (lock_lost(h)) {
		fuse_reply_err(req, EIO);
		return;
	}
	fs_count(t, 0);
	if (fd >= 0 && size >= READ_SPLICE_MIN) {
		/* libfuse splices straight from the backing file. */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = fd;
		bv.buf[0].pos = off;
		/* Counted as asked: a splice reply does not say how much it moved. */
		op_guard_bytes(size);
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	const char *data = NULL;
	void *keep = NULL;
	ssize_t n;
	OUTLIVE_CALL(req, ino, h, a, n, (free(keep), target_read(a->t, a->bh, size, off, &data, &keep)));
	t = handle_at(h)->t;
	if (n < 0) {
		fuse_reply_err(req, (int)-fs_count(t, (int)n));
	} else {
		op_guard_bytes((uint64_t)n);
		fuse_reply_buf(req, data, (size_t)n);
	}
	free(keep);
}

/* After a write as the caller to a set-ID file: clear what Linux would
 * have and the target left, and, the bits gone, drop the kernel's cached
 * mode (it clears only what it knows of: set-group-ID without group
 * execute is left to the file system). */
static void killpriv_done(fuse_req_t req, fuse_ino_t ino, struct efsmt_handle *h)
{
	struct stat st;
	struct handle_at *a = handle_at(h);

	if (a->t->ops->fgetattr(a->t, a->bh, &st) < 0)
		return;
	mode_t had = st.st_mode & (S_ISUID | S_ISGID);
	fs_clear_setid(ino, h, setid_kill_on_write(&st, fuse_req_ctx(req)->uid) & st.st_mode,
		       &st);
	if ((st.st_mode & (S_ISUID | S_ISGID)) == had)
		return;
	if (!(st.st_mode & (S_ISUID | S_ISGID)))
		h->killpriv = 0;
	fuse_lowlevel_notify_inval_inode(fs_session, ino, -1, 0);
}

/* One write through a: straight from the request's memory (libfuse reads
 * requests into memory: no splice in), or into a file descriptor. */
static ssize_t write_at(struct handle_at *a, const char *buf, size_t size, off_t off)
{
	int fd = a->t->ops->handle_fd ? a->t->ops->handle_fd(a->t, a->bh) : -1;

	if (fd >= 0) {
		ssize_t n = pwrite(fd, buf, size, off);
		return n < 0 ? -errno : n;
	}
	return a->t->ops->write(a->t, a->bh, buf, size, off);
}

void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
		  struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	size_t size = fuse_buf_size(in);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	const char *buf;
	ssize_t n;

	if (lock_lost(h)) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (h->killpriv)
		ENTER_OR_REPLY(req);
	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		buf = in->buf[0].mem;
	} else {
		mem.buf[0].mem = malloc(size ? size : 1);
		if (!mem.buf[0].mem) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = fuse_buf_copy(&mem, in, 0);
		if (n < 0) {
			free(mem.buf[0].mem);
			fuse_reply_err(req, (int)-n);
			return;
		}
		size = (size_t)n;
		buf = mem.buf[0].mem;
	}
	OUTLIVE_CALL(req, ino, h, a, n, write_at(a, buf, size, off));
	free(mem.buf[0].mem);
	int rc = fs_count(handle_at(h)->t, n < 0 ? (int)n : 0);
	if (n > 0 && h->killpriv)
		killpriv_done(req, ino, h);
	if (n < 0) {
		fuse_reply_err(req, -rc);
	} else {
		op_guard_bytes((uint64_t)n);
		fuse_reply_write(req, (size_t)n);
	}
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);

	/* The backend handle closes with the last reference (node.h); the
	 * locks taken through it (OFD, flock, and POSIX ones whose close sent
	 * no FLUSH) end here (lock.h). */
	lock_drop_handle(h);
	node_remove_handle(ino, h);
	handle_put(h);
	fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	int rc;

	OUTLIVE_CALL(req, ino, h, a, rc, a->t->ops->fsync(a->t, a->bh, datasync));
	fuse_reply_err(req, -fs_count(handle_at(h)->t, rc));
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	int rc;

	OUTLIVE_CALL(req, ino, h, a, rc, a->t->ops->flush ? a->t->ops->flush(a->t, a->bh) : 0);
	/* close(2) drops the closing process's POSIX locks on the file,
	 * after its writes are on the target. */
	lock_drop_owner(ino, fi->lock_owner);
	fuse_reply_err(req, -fs_count(handle_at(h)->t, rc));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		  struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	int rc;

	OUTLIVE_CALL(req, ino, h, a, rc, a->t->ops->fallocate(a->t, a->bh, mode, offset, length));
	fuse_reply_err(req, -fs_count(handle_at(h)->t, rc));
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	struct handle_at *a = handle_at(h);
	off_t r = a->t->ops->lseek(a->t, a->bh, off, whence);

	if (r < 0)
		fuse_reply_err(req, (int)-fs_count(a->t, (int)r));
	else
		fuse_reply_lseek(req, r);
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct handle_at *in = handle_at(FS_HANDLE(fi_in)), *out = handle_at(FS_HANDLE(fi_out));

	/* Handles on two targets: let the kernel fall back to read and write. */
	if (in->t != out->t) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	ssize_t n = in->t->ops->copy_range(in->t, in->bh, off_in, out->bh, off_out, len, flags);
	if (n < 0)
		fuse_reply_err(req, (int)-fs_count(in->t, (int)n));
	else
		fuse_reply_write(req, (size_t)n);
}
