/*
 * op_xattr.c - extended attributes, and user.efsmt.target: a read-only
 * attribute on every path naming the target the path routes to. It is not
 * listed, so cp -a, rsync -X and tar --xattrs never try to copy it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define XATTR_MAX (64 * 1024) /* Linux's limit on one value and on a list */

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

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char path[PATH_MAX];
	int len = fs_path(ino, path);

	if (len < 0) {
		fuse_reply_err(req, -len);
		return;
	}
	struct target *t = fs_route(path, (size_t)len);
	if (strcmp(name, EFSMT_XATTR_TARGET) == 0) {
		char val[2048];
		int n = snprintf(val, sizeof(val), "id=%s uri=%s", t->id, t->uri);
		reply_sized(req, size, val, n < (int)sizeof(val) ? n : -ERANGE);
		return;
	}
	size_t cap = size ? (size < XATTR_MAX ? size : XATTR_MAX) : 0;
	char *buf = cap ? malloc(cap) : NULL;
	if (cap && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = t->ops->getxattr(t, path, name, buf, cap);
	fs_count(t, n == -ENODATA ? 0 : (int)n);
	reply_sized(req, size, buf, n);
	free(buf);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char path[PATH_MAX];
	int len = fs_path(ino, path);

	if (len < 0) {
		fuse_reply_err(req, -len);
		return;
	}
	struct target *t = fs_route(path, (size_t)len);
	size_t cap = size ? (size < XATTR_MAX ? size : XATTR_MAX) : 0;
	char *buf = cap ? malloc(cap) : NULL;
	if (cap && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = fs_count(t, (int)t->ops->listxattr(t, path, buf, cap));
	reply_sized(req, size, buf, n);
	free(buf);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	char path[PATH_MAX];
	int len = fs_path(ino, path);

	if (strcmp(name, EFSMT_XATTR_TARGET) == 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (len < 0) {
		fuse_reply_err(req, -len);
		return;
	}
	struct target *t = fs_route(path, (size_t)len);
	fuse_reply_err(req, -fs_count(t, t->ops->setxattr(t, path, name, value, size, flags)));
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[PATH_MAX];
	int len = fs_path(ino, path);

	if (strcmp(name, EFSMT_XATTR_TARGET) == 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (len < 0) {
		fuse_reply_err(req, -len);
		return;
	}
	struct target *t = fs_route(path, (size_t)len);
	fuse_reply_err(req, -fs_count(t, t->ops->removexattr(t, path, name)));
}
