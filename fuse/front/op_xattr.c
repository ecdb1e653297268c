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
	if ((t = resolve(req, ino, path)))
		fuse_reply_err(req, -fs_count(t, t->ops->removexattr(t, path, name)));
}
