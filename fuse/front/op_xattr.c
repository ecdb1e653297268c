/*
 * op_xattr.c - extended attributes, and user.efsmt.target: a read-only
 * attribute on every path naming the target the path routes to, and
 * user.efsmt.open naming the targets that hold the file's open handles
 * (empty when it is not open). They are not listed, so cp -a, rsync -X and
 * tar --xattrs never try to copy them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "node.h"

#define XATTR_MAX (64 * 1024) /* Linux's limit on one value and on a list */

/* trusted.* needs CAP_SYS_ADMIN and security.* writes need privileges the
 * identity switch does not drop: only root callers get them. */
static int privileged_name(const char *name)
{
	return strncmp(name, "trusted.", 8) == 0 || strncmp(name, "security.", 9) == 0;
}

/* efsmt's own read-only attributes. */
static int efsmt_name(const char *name)
{
	return strcmp(name, EFSMT_XATTR_TARGET) == 0 || strcmp(name, EFSMT_XATTR_OPEN) == 0;
}

/*
 * Names no target of the mount can hold (backend.h, xattr_cannot_hold: on
 * nfs://, security.* and system.posix_acl_*) are answered here, without
 * the caller's identity or the target: EOPNOTSUPP, as a file system
 * without that namespace answers. Not ENODATA: ls -l asks
 * security.selinux and system.posix_acl_access of every entry, and
 * coreutils' ls remembers "not supported" per device (getfilecon_cache,
 * file_has_acl_cache) but asks again after "no data", so ENODATA cost two
 * FUSE round trips per entry (100,000 files: 8.2 s against 0.8 s on the
 * exported directory). The kernel itself remembers no answer but ENOSYS,
 * which turns off every getxattr of the mount, user.efsmt.target included.
 * So security.capability, which the kernel asks before every write(2)
 * (file_remove_privs), still comes each time: only FUSE_HANDLE_KILLPRIV_V2
 * (SB_NOSEC, then S_NOSEC per inode) spares it, which libfuse 3.14 cannot
 * grant; this is its cheapest answer. (A getxattr(2) of that very name
 * comes twice on EOPNOTSUPP, once from the capability module and once from
 * the VFS; the write path asks once.) A mount with a target that may hold
 * the name (dir://, kernel://) asks that target, as before.
 */
static int mount_cannot_hold(const char *name)
{
	const struct route_table *rt = route_current();

	if (rt->n == 0)
		return 0;
	for (size_t i = 0; i < rt->n; i++) {
		const struct backend_ops *ops = rt->t[i]->ops;
		if (!ops->xattr_cannot_hold || !ops->xattr_cannot_hold(rt->t[i], name))
			return 0;
	}
	return 1;
}

/* Answer EOPNOTSUPP when no target can hold name (1: answered). Counted on
 * the target the path routes to, so that the statistics still show every
 * request (not as an error: nothing failed). */
static int answered_unheld(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[BE_PATH_MAX];

	if (!mount_cannot_hold(name))
		return 0;
	int len = fs_path(ino, path);
	if (len >= 0)
		op_guard_note(fs_route(path, (size_t)len), 0);
	fuse_reply_err(req, EOPNOTSUPP);
	return 1;
}

/* Enter as the caller and find the path and target of ino; replies and
 * returns NULL on error. */
static struct target *resolve(fuse_req_t req, fuse_ino_t ino, char *path)
{
	int rc = fs_enter(req);
	int len = rc < 0 ? rc : fs_path(ino, path);

	if (len < 0) {
		fuse_reply_err(req, -len);
		return NULL;
	}
	return fs_route(path, (size_t)len);
}

static void reply_sized(fuse_req_t req, size_t want, const char *buf, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (want == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > want)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static char *alloc_cap(fuse_req_t req, size_t size, size_t *cap)
{
	char *buf;

	*cap = size < XATTR_MAX ? size : XATTR_MAX;
	if (*cap == 0)
		return NULL;
	buf = malloc(*cap);
	if (!buf)
		fuse_reply_err(req, ENOMEM);
	return buf;
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (answered_unheld(req, ino, name))
		return;

	char path[BE_PATH_MAX];
	struct target *t = resolve(req, ino, path);
	size_t cap;

	if (!t)
		return;
	if (strcmp(name, EFSMT_XATTR_TARGET) == 0) {
		char val[2048];
		int n = snprintf(val, sizeof(val), "id=%s uri=%s", t->id, t->uri);
		reply_sized(req, size, val, n < (int)sizeof(val) ? n : -ERANGE);
		return;
	}
	if (strcmp(name, EFSMT_XATTR_OPEN) == 0) {
		char val[2048];
		int n = node_handle_targets(ino, val, sizeof(val));
		reply_sized(req, size, val, n);
		return;
	}
	if (strncmp(name, "trusted.", 8) == 0 && !fs_caller_is_root(req)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	char *buf = alloc_cap(req, size, &cap);
	if (cap && !buf)
		return;
	ssize_t n = t->ops->getxattr(t, path, name, buf, cap);
	fs_count(t, n == -ENODATA ? 0 : (int)n);
	reply_sized(req, size, buf, n);
	free(buf);
}

/* Drop trusted.* names from a list for callers who may not see them. */
static ssize_t filter_list(char *buf, ssize_t n)
{
	ssize_t out = 0;

	for (ssize_t i = 0; i < n;) {
		size_t len = strnlen(buf + i, (size_t)(n - i)) + 1;
		if (strncmp(buf + i, "trusted.", 8) != 0) {
			memmove(buf + out, buf + i, len);
			out += (ssize_t)len;
		}
		i += (ssize_t)len;
	}
	return out;
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char path[BE_PATH_MAX];
	struct target *t = resolve(req, ino, path);
	size_t cap;

	if (!t)
		return;
	char *buf = alloc_cap(req, size ? size : XATTR_MAX, &cap);
	if (!buf)
		return;
	/* Read the whole list even for a size query, so filtering is exact. */
	ssize_t n = fs_count(t, (int)t->ops->listxattr(t, path, buf, cap));
	if (n > 0 && !fs_caller_is_root(req))
		n = filter_list(buf, n);
	reply_sized(req, size, buf, n);
	free(buf);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	char path[BE_PATH_MAX];
	struct target *t;

	if (efsmt_name(name) || (privileged_name(name) && !fs_caller_is_root(req))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (answered_unheld(req, ino, name))
		return;
	if ((t = resolve(req, ino, path)))
		fuse_reply_err(req,
			       -fs_count(t, t->ops->setxattr(t, path, name, value, size, flags)));
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[BE_PATH_MAX];
	struct target *t;

	if (efsmt_name(name) || (privileged_name(name) && !fs_caller_is_root(req))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (answered_unheld(req, ino, name))
		return;
	if ((t = resolve(req, ino, path)))
		fuse_reply_err(req, -fs_count(t, t->ops->removexattr(t, path, name)));
}
