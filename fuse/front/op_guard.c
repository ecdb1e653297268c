/*
 * op_guard.c - the FUSE operation table as libfuse sees it: each request
 * runs inside an epoch section (epoch.h), so the route table and targets it
 * routed with outlive it, and is timed into the serving target's per-op
 * statistics (opstats.h). A new operation goes here and in main.c.
 */
#include <stdatomic.h>
#include <time.h>

#include "base/epoch.h"
#include "fs.h"
#include "readahead.h"

struct op_ctx {
	struct target *t; /* the target that served the request, if any */
	unsigned gen0;	  /* change_gen when the request began */
	uint64_t bytes;
	int failed;
	struct timespec t0;
};

static _Thread_local struct op_ctx ctx;
/* Moved before and after every request that may change some file's
 * attributes through this mount (op_guard_gen, fs.h). */
static atomic_uint change_gen;

unsigned op_guard_gen(void)
{
	return ctx.gen0;
}

int op_guard_unchanged(unsigned gen)
{
	return atomic_load_explicit(&change_gen, memory_order_acquire) == gen;
}

void op_guard_change(void)
{
	atomic_fetch_add_explicit(&change_gen, 1, memory_order_acq_rel);
}

void op_guard_note(struct target *t, int rc)
{
	ctx.t = t;
	if (rc < 0)
		ctx.failed = 1;
}

void op_guard_bytes(uint64_t n)
{
	ctx.bytes += n;
}

long long op_guard_started_ms(void)
{
	return (long long)ctx.t0.tv_sec * 1000 + ctx.t0.tv_nsec / 1000000;
}

static void begin(void)
{
	readahead_raise();
	ctx.t = NULL;
	ctx.bytes = 0;
	ctx.failed = 0;
	ctx.gen0 = atomic_load_explicit(&change_gen, memory_order_acquire);
	clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
	epoch_enter();
}

static void end(enum opstats_op op)
{
	if (ctx.t) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int64_t us = (t1.tv_sec - ctx.t0.tv_sec) * 1000000 +
			     (t1.tv_nsec - ctx.t0.tv_nsec) / 1000;
		opstats_record(&ctx.t->op[op], us > 0 ? (uint64_t)us : 0, ctx.bytes, ctx.failed);
	}
	/* Last: after this the target may be freed by a reload. */
	epoch_exit();
}

#define GUARD(OP, fn, params, args)                                                    \
	static void g_##fn params                                                      \
	{                                                                              \
		begin();                                                               \
		op_##fn args;                                                          \
		end(OP_##OP);                                                          \
	}

/* A request that may change attributes: the same, inside two moves of
 * change_gen, so that attributes read while it ran are never served from
 * the daemon's copy (node_attr_cached). */
#define GUARD_CHANGE(OP, fn, params, args)                                             \
	static void g_##fn params                                                      \
	{                                                                              \
		begin();                                                               \
		op_guard_change();                                                     \
		op_##fn args;                                                          \
		op_guard_change();                                                     \
		end(OP_##OP);                                                          \
	}

typedef fuse_req_t R;
typedef fuse_ino_t I;
typedef struct fuse_file_info FI;

GUARD(LOOKUP, lookup, (R r, I p, const char *n), (r, p, n))
GUARD(FORGET, forget, (R r, I i, uint64_t n), (r, i, n))
GUARD(FORGET, forget_multi, (R r, size_t c, struct fuse_forget_data *f), (r, c, f))
GUARD(GETATTR, getattr, (R r, I i, FI *fi), (r, i, fi))
GUARD_CHANGE(SETATTR, setattr, (R r, I i, struct stat *a, int s, FI *fi), (r, i, a, s, fi))
GUARD(READLINK, readlink, (R r, I i), (r, i))
GUARD_CHANGE(MKNOD, mknod, (R r, I p, const char *n, mode_t m, dev_t d), (r, p, n, m, d))
GUARD_CHANGE(MKDIR, mkdir, (R r, I p, const char *n, mode_t m), (r, p, n, m))
GUARD_CHANGE(UNLINK, unlink, (R r, I p, const char *n), (r, p, n))
GUARD_CHANGE(RMDIR, rmdir, (R r, I p, const char *n), (r, p, n))
GUARD_CHANGE(SYMLINK, symlink, (R r, const char *l, I p, const char *n), (r, l, p, n))
GUARD_CHANGE(RENAME, rename, (R r, I p, const char *n, I np, const char *nn, unsigned f),
      (r, p, n, np, nn, f))
GUARD_CHANGE(LINK, link, (R r, I i, I np, const char *nn), (r, i, np, nn))
GUARD(OPEN, open, (R r, I i, FI *fi), (r, i, fi))
GUARD(READ, read, (R r, I i, size_t s, off_t o, FI *fi), (r, i, s, o, fi))
GUARD_CHANGE(WRITE, write_buf, (R r, I i, struct fuse_bufvec *b, off_t o, FI *fi), (r, i, b, o, fi))
GUARD(RELEASE, release, (R r, I i, FI *fi), (r, i, fi))
GUARD(FSYNC, fsync, (R r, I i, int d, FI *fi), (r, i, d, fi))
GUARD(FLUSH, flush, (R r, I i, FI *fi), (r, i, fi))
GUARD(OPENDIR, opendir, (R r, I i, FI *fi), (r, i, fi))
GUARD(READDIR, readdir, (R r, I i, size_t s, off_t o, FI *fi), (r, i, s, o, fi))
GUARD(READDIRPLUS, readdirplus, (R r, I i, size_t s, off_t o, FI *fi), (r, i, s, o, fi))
GUARD(RELEASEDIR, releasedir, (R r, I i, FI *fi), (r, i, fi))
GUARD(FSYNCDIR, fsyncdir, (R r, I i, int d, FI *fi), (r, i, d, fi))
GUARD(STATFS, statfs, (R r, I i), (r, i))
GUARD(ACCESS, access, (R r, I i, int m), (r, i, m))
GUARD_CHANGE(SETXATTR, setxattr, (R r, I i, const char *n, const char *v, size_t s, int f),
      (r, i, n, v, s, f))
GUARD(GETXATTR, getxattr, (R r, I i, const char *n, size_t s), (r, i, n, s))
GUARD(LISTXATTR, listxattr, (R r, I i, size_t s), (r, i, s))
GUARD_CHANGE(REMOVEXATTR, removexattr, (R r, I i, const char *n), (r, i, n))
GUARD_CHANGE(CREATE, create, (R r, I p, const char *n, mode_t m, FI *fi), (r, p, n, m, fi))
GUARD_CHANGE(FALLOCATE, fallocate, (R r, I i, int m, off_t o, off_t l, FI *fi), (r, i, m, o, l, fi))
GUARD(LSEEK, lseek, (R r, I i, off_t o, int w, FI *fi), (r, i, o, w, fi))
GUARD(LOCK, getlk, (R r, I i, FI *fi, struct flock *l), (r, i, fi, l))
GUARD(LOCK, setlk, (R r, I i, FI *fi, struct flock *l, int s), (r, i, fi, l, s))
GUARD(LOCK, flock, (R r, I i, FI *fi, int o), (r, i, fi, o))
GUARD_CHANGE(COPY_FILE_RANGE, copy_file_range,
      (R r, I i, off_t oi, FI *fi, I o, off_t oo, FI *fo, size_t l, int f),
      (r, i, oi, fi, o, oo, fo, l, f))

const struct fuse_lowlevel_ops efsmt_guarded_ops = {
	.lookup = g_lookup,
	.forget = g_forget,
	.forget_multi = g_forget_multi,
	.getattr = g_getattr,
	.setattr = g_setattr,
	.readlink = g_readlink,
	.mknod = g_mknod,
	.mkdir = g_mkdir,
	.unlink = g_unlink,
	.rmdir = g_rmdir,
	.symlink = g_symlink,
	.rename = g_rename,
	.link = g_link,
	.open = g_open,
	.read = g_read,
	.write_buf = g_write_buf,
	.release = g_release,
	.fsync = g_fsync,
	.flush = g_flush,
	.opendir = g_opendir,
	.readdir = g_readdir,
	.readdirplus = g_readdirplus,
	.releasedir = g_releasedir,
	.fsyncdir = g_fsyncdir,
	.statfs = g_statfs,
	.access = g_access,
	.setxattr = g_setxattr,
	.getxattr = g_getxattr,
	.listxattr = g_listxattr,
	.removexattr = g_removexattr,
	.create = g_create,
	.fallocate = g_fallocate,
	.lseek = g_lseek,
	.copy_file_range = g_copy_file_range,
	.getlk = g_getlk,
	.setlk = g_setlk,
	.flock = g_flock,
};
