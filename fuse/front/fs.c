/*
 * fs.c - what the operation files share: paths, routing, replies, handles.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cred.h"
#include "routing/health.h"
#include "node.h"

struct efsmt_fs fs;
struct fuse_session *fs_session;

int fs_path(fuse_ino_t ino, char *path)
{
	return node_path(ino, path, BE_PATH_MAX);
}

int fs_child_path(fuse_ino_t parent, const char *name, char *path)
{
	return node_child_path(parent, name, path, BE_PATH_MAX);
}

int fs_enter(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	return cred_become(ctx->uid, ctx->gid, ctx->pid);
}

int fs_enter_privileged(void)
{
	return cred_become(0, 0, 0);
}

int fs_caller_is_root(fuse_req_t req)
{
	return fuse_req_ctx(req)->uid == 0;
}

struct target *fs_route(const char *path, size_t len)
{
	/* The table is immutable and only replaced whole (see route.h); the
	 * request's epoch section (op_guard.c) keeps it and its targets alive
	 * until the reply is sent. */
	return route_pick(route_current(), path, len);
}

void fs_caller(fuse_req_t req, struct be_caller *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	c->uid = ctx->uid;
	c->gid = ctx->gid;
	c->pid = ctx->pid;
	c->umask = ctx->umask;
	c->ngroups = -1;
	c->groups = NULL;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double fs_attr_timeout(fuse_ino_t ino, const struct stat *st)
{
	int dir = S_ISDIR(st->st_mode);
	double lo = dir ? fs.acdirmin : fs.acregmin, hi = dir ? fs.acdirmax : fs.acregmax;
	/* Also what the kernel now holds, for close-to-open (op_open) and
	 * fs_attr_cached. */
	return ino ? node_attr_timeout(ino, st, lo, hi, op_guard_gen(), now_ms()) : lo;
}

int fs_attr_cached(fuse_ino_t ino, struct stat *st, double *left)
{
	unsigned gen;
	long long until = node_attr_cached(ino, st, &gen), now = now_ms();
	if (until <= now || !op_guard_unchanged(gen))
		return 0;
	*left = (double)(until - now) / 1000;
	return 1;
}

void fs_reply_entry(fuse_req_t req, fuse_ino_t parent, const char *name, const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = node_learn(parent, name, st);
	if (!e.ino) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.attr = *st;
	e.attr_timeout = fs_attr_timeout(e.ino, st);
	e.entry_timeout = fs.entry_timeout;
	if (fuse_reply_entry(req, &e) != 0)
		node_forget(e.ino, 1); /* the kernel never saw it */
}

int fs_count(struct target *t, int rc)
{
	op_guard_note(t, rc);
	health_note(t, rc);
	return health_is_unreachable(rc) ? -EIO : rc;
}

