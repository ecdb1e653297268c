/*
 * op_dir.c - directory handles: opendir, readdir, readdirplus.
 *
 * A directory is listed wholly by the target of its path; the handle stays
 * there until releasedir, so cookies stay valid whatever reloads happen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "node.h"

struct fill_ctx {
	fuse_req_t req;
	fuse_ino_t dir;
	char *buf;
	size_t size;
	size_t used;
	int plus;
};

static int is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static int fill(void *vctx, const struct be_dirent *ent)
{
	struct fill_ctx *c = vctx;
	size_t rem = c->size - c->used;
	size_t need;

	if (!c->plus) {
		struct stat st = {.st_ino = ent->ino, .st_mode = ent->type};
		need = fuse_add_direntry(c->req, c->buf + c->used, rem, ent->name, &st, ent->next);
		if (need > rem)
			return 1;
		c->used += need;
		return 0;
	}
	/* Check the room first: a node must not be learned for an entry the
	 * kernel will not receive. */
	need = fuse_add_direntry_plus(c->req, NULL, 0, ent->name, NULL, 0);
	if (need > rem)
		return 1;
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.attr = ent->attr;
	if (!is_dot(ent->name) && ent->attr.st_mode) {
		e.ino = node_learn(c->dir, ent->name, &ent->attr);
		if (e.ino) {
			e.attr_timeout = fs_attr_timeout(e.ino, &ent->attr);
			e.entry_timeout = fs.entry_timeout;
		}
	}
	fuse_add_direntry_plus(c->req, c->buf + c->used, rem, ent->name, &e, ent->next);
	c->used += need;
	return 0;
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	uint64_t dh;

	NODE_OR_REPLY(req, ino, path, t);
	int rc;
	FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc, t->ops->opendir(t, path, &dh));
	rc = fs_count(t, rc);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct efsmt_handle *h = handle_new(t, dh, 1);
	if (!h) {
		t->ops->releasedir(t, dh);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0)
		handle_put(h);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	struct fill_ctx c = {.req = req, .dir = ino, .size = size, .plus = plus};
	int rc;

	c.buf = malloc(size);
	if (!c.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct handle_at *a = handle_at(h);
	rc = fs_count(a->t, a->t->ops->readdir(a->t, a->bh, off, plus, fill, &c));
	/* Entries already packed count as success; the error shows next time. */
	if (rc < 0 && c.used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, c.buf, c.used);
	free(c.buf);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_put(FS_HANDLE(fi));
	fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct handle_at *a = handle_at(FS_HANDLE(fi));

	fuse_reply_err(req, -fs_count(a->t, a->t->ops->fsyncdir(a->t, a->bh, datasync)));
}
