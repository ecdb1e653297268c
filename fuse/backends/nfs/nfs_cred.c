/*
 * nfs_cred.c - the identity each call carries: the server, not this daemon,
 * checks permissions and owns new files, so it must see the caller.
 *
 * Identity: every call goes out as AUTH_SYS with the identity of the
 * process that made the request: the be_caller where the call has one, else
 * the calling thread's fsuid, fsgid and supplementary groups (the core takes
 * the caller's on each worker thread, see cred.h). The server thus checks
 * permissions and owns new files as for a kernel client. AUTH_SYS carries
 * 16 groups at most: a caller's further groups are not seen by the server.
 * An open file keeps its opener's identity for READ, WRITE, COMMIT and
 * CLOSE, as the kernel client uses the open file's credentials.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backends/backend.h"
#include "base/procgroups.h"
#include "nfs/nfs4.h"
#include "backends/target.h"
#include "nfs_be.h"

#define NFS_THREAD_GROUPS_MAX 1024

/* AUTH_SYS carries RPC_AUTH_SYS_MAX_GROUPS groups. For a caller with more,
 * the ones that can matter go first: the groups of the files a call is
 * about and of their directories, learned with a GETATTR as root when the
 * call first takes its credentials (prefer_pending, NFS_PREFER_MAX of
 * them); then the rest, in the caller's order, while room is left. */
#define NFS_PREFER_MAX 4
static __thread gid_t prefer[NFS_PREFER_MAX];
static __thread int nprefer;
/* What the call being made names (set by the MANY_GROUPS wrappers), for
 * prefer_pending; done once prefer[] was filled for it. */
static __thread struct {
	struct target *t;
	const char *p1, *p2;
	int has_gid, done;
	gid_t gid;
} pending;

static void prefer_pending(void);

static int preferred(gid_t g)
{
	for (int i = 0; i < nprefer; i++)
		if (prefer[i] == g)
			return 1;
	return 0;
}

/* Fill a's groups from list (n of them; a->gid is not repeated). */
static void auth_groups(struct rpc_auth *a, const gid_t *list, long n)
{
	if (n > RPC_AUTH_SYS_MAX_GROUPS)
		prefer_pending();
	for (int pass = nprefer ? 0 : 1; pass < 2; pass++)
		for (long i = 0; i < n && a->ngroups < RPC_AUTH_SYS_MAX_GROUPS; i++)
			if (list[i] != a->gid && preferred(list[i]) == (pass == 0))
				a->groups[a->ngroups++] = list[i];
}

/* The identity this thread acts as: fsuid, fsgid and groups (per thread
 * when set with raw syscalls, as cred.c does). */
static void thread_auth(struct rpc_auth *a)
{
	static __thread gid_t list[NFS_THREAD_GROUPS_MAX];
	memset(a, 0, sizeof *a);
	a->uid = (uint32_t)setfsuid((uid_t)-1);
	a->gid = (uint32_t)setfsgid((gid_t)-1);
	long n = syscall(SYS_getgroups, NFS_THREAD_GROUPS_MAX, list);
	auth_groups(a, list, n < 0 ? 0 : n);
}

/* Who this request runs as: the thread's identity, or the be_caller's
 * when the thread did not take it (the daemon runs unprivileged). */
const struct rpc_auth *nfsb_req_auth(const struct be_caller *c, struct rpc_auth *a)
{
	thread_auth(a);
	if (!c || (a->uid == c->uid && a->gid == c->gid))
		return a;
	memset(a, 0, sizeof *a);
	a->uid = c->uid;
	a->gid = c->gid;
	if (c->ngroups >= 0) {
		auth_groups(a, c->groups, c->ngroups);
	} else if (c->pid > 0 && c->uid != 0) {
		gid_t list[NFS_THREAD_GROUPS_MAX];
		int n = proc_thread_groups(c->pid, list, NFS_THREAD_GROUPS_MAX);
		auth_groups(a, list,
			    n < 0			? 0
			    : n > NFS_THREAD_GROUPS_MAX ? NFS_THREAD_GROUPS_MAX
							: n);
	}
	return a;
}

/* The group of path as root sees it, to be sent first. */
static void prefer_gid_of(struct nfs_target *nt, const char *path)
{
	static const struct rpc_auth root; /* uid 0, gid 0, no groups */
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct nfs_fh fh;
	struct nfs_attr a;
	int fresh;

	if (nprefer >= NFS_PREFER_MAX)
		return;
	int e = nfsb_resolve(nt, cl, &root, path, &fh, &a, &fresh);
	if (!e && !fresh)
		e = nfs_getattr(cl, &root, &fh, &a);
	if (!e && !preferred(a.st.st_gid))
		prefer[nprefer++] = a.st.st_gid;
}

/* path's group and its directory's (a call to be made may not find the
 * path itself: a create). */
static void prefer_path(struct nfs_target *nt, const char *path)
{
	char dir[BE_PATH_MAX];

	if (!path)
		return;
	prefer_gid_of(nt, path);
	const char *slash = strrchr(path, '/');
	if (!slash || strcmp(path, "/") == 0)
		return;
	snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	prefer_gid_of(nt, dir);
}

static void prefer_pending(void)
{
	if (!pending.t || pending.done)
		return;
	pending.done = 1;
	nprefer = 0;
	prefer_path(NT(pending.t), pending.p1);
	prefer_path(NT(pending.t), pending.p2);
	if (pending.has_gid && nprefer < NFS_PREFER_MAX && !preferred(pending.gid))
		prefer[nprefer++] = pending.gid;
}

/* A call that names p1 and p2 (and a chgrp's new group) begins, and ends. */
static void call_begin(struct target *t, const char *p1, const char *p2, const gid_t *gid)
{
	pending.t = t;
	pending.p1 = p1;
	pending.p2 = p2;
	pending.has_gid = gid != NULL;
	pending.gid = gid ? *gid : 0;
	pending.done = 0;
	nprefer = 0;
}

static void call_end(void)
{
	pending.t = NULL;
	nprefer = 0;
}

/* The calls that check the caller's permissions: for a caller with more
 * groups than AUTH_SYS carries, the groups of the paths they name and of
 * their directories are sent first (prefer_pending). */
#define MANY_GROUPS(name, params, args, p1, p2)                                                    \
	int nfs_g_##name params                                                                    \
	{                                                                                          \
		call_begin(t, p1, p2, NULL);                                                       \
		int rc = nfs_be_##name args;                                                       \
		call_end();                                                                        \
		return rc;                                                                         \
	}

/* Unformatted: clang-format takes T *t in these arguments for a product. */
/* clang-format off */
typedef struct target T;
typedef const struct be_caller C;
typedef struct stat S;
MANY_GROUPS(getattr, (T *t, const char *p, S *st), (t, p, st), p, NULL)
/* A chgrp also needs the new group among those sent. */
int nfs_g_setattr(T *t, C *c, const char *p, uint64_t fh, int has, const struct be_setattr *sa,
		  S *st)
{
	call_begin(t, has ? NULL : p, NULL, (sa->valid & BE_SET_GID) ? &sa->gid : NULL);
	int rc = nfs_be_setattr(t, c, p, fh, has, sa, st);
	call_end();
	return rc;
}
MANY_GROUPS(readlink, (T *t, const char *p, char *b, size_t n), (t, p, b, n), p, NULL)
MANY_GROUPS(mknod, (T *t, C *c, const char *p, mode_t m, dev_t d, S *st), (t, c, p, m, d, st), p,
	    NULL)
MANY_GROUPS(mkdir, (T *t, C *c, const char *p, mode_t m, S *st), (t, c, p, m, st), p, NULL)
MANY_GROUPS(symlink, (T *t, C *c, const char *to, const char *p, S *st), (t, c, to, p, st), p,
	    NULL)
MANY_GROUPS(link, (T *t, C *c, const char *from, const char *p, S *st), (t, c, from, p, st), from,
	    p)
MANY_GROUPS(unlink, (T *t, const char *p), (t, p), p, NULL)
MANY_GROUPS(rmdir, (T *t, const char *p), (t, p), p, NULL)
MANY_GROUPS(rename, (T *t, const char *from, const char *to, unsigned fl), (t, from, to, fl), from,
	    to)
MANY_GROUPS(access, (T *t, const char *p, int mask), (t, p, mask), p, NULL)
MANY_GROUPS(create, (T *t, C *c, const char *p, int fl, mode_t m, uint64_t *fh, S *st),
	    (t, c, p, fl, m, fh, st), p, NULL)
MANY_GROUPS(open, (T *t, const char *p, int fl, uint64_t *fh), (t, p, fl, fh), p, NULL)
MANY_GROUPS(opendir, (T *t, const char *p, uint64_t *dh), (t, p, dh), p, NULL)
/* clang-format on */
