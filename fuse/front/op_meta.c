/*
 * op_meta.c - names and attributes: lookup, getattr, setattr, the creating
 * operations other than create, unlink, rename, link, statfs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "node.h"
#include "outlive.h"
#include "setid.h"

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	CHILD_OR_REPLY(req, parent, name, path, t);
	int rc;
	FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc, t->ops->getattr(t, path, &st));

	rc = rc == -ENOENT ? (fs_count(t, 0), rc) : fs_count(t, rc);
	if (rc == -ENOENT && fs.negative_timeout > 0) {
		/* A negative entry: the kernel skips the next lookup of this name. */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs.negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_reply_entry(req, parent, name, &st);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(ino, nlookup);
	fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc;

	/* An open file is asked through its handle, on its own target: its
	 * name may be gone (unlinked, renamed by another host). */
	struct efsmt_handle *h = fi ? FS_HANDLE(fi) : node_get_handle(ino);
	if (h) {
		struct handle_at *a = handle_at(h);
		struct target *t = a->t;
		rc = t->ops->fgetattr(t, a->bh, &st);
		if (health_is_unreachable(rc)) {
			/* Its target went away: ask by name elsewhere. */
			health_note(t, rc);
			char path[BE_PATH_MAX];
			int len = fs_path(ino, path);
			if (len >= 0) {
				t = fs_route(path, (size_t)len);
				FS_RETRY_ELSEWHERE(t, path, (size_t)len, rc,
						   t->ops->getattr(t, path, &st));
			}
		}
		rc = fs_count(t, rc);
		if (!fi)
			handle_put(h);
	} else {
		double left;
		if (fs_attr_cached(ino, &st, &left)) {
			fuse_reply_attr(req, &st, left);
			return;
		}
		NODE_OR_REPLY(req, ino, path, t);
		FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc, t->ops->getattr(t, path, &st));
		rc = fs_count(t, rc);
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_attr_timeout(ino, &st));
}

/* Set attributes through the open handle h, or by path (falling back to an
 * open handle of ino when its name is gone); *tp is the target used. */
static int setattr_on(fuse_req_t req, fuse_ino_t ino, struct efsmt_handle *h,
		      const struct be_caller *c, const struct be_setattr *sa, struct stat *st,
		      struct target **tp)
{
	char path[BE_PATH_MAX] = "";
	int rc;

	if (h) {
		OUTLIVE_CALL(req, ino, h, a, rc, a->t->ops->setattr(a->t, c, path, a->bh, 1, sa, st));
		*tp = handle_at(h)->t;
		return rc;
	}
	int len = fs_path(ino, path);
	struct target *t = len < 0 ? NULL : fs_route(path, (size_t)len);
	*tp = t;
	rc = t ? t->ops->setattr(t, c, path, 0, 0, sa, st) : len;
	/* fchmod(2) and the like on a file whose name is gone: use one of its
	 * open handles. */
	struct efsmt_handle *oh = rc == -ENOENT ? node_get_handle(ino) : NULL;
	if (oh) {
		struct handle_at *a = handle_at(oh);
		*tp = a->t;
		rc = a->t->ops->setattr(a->t, c, path, a->bh, 1, sa, st);
		handle_put(oh);
	}
	return rc;
}

/*
 * Set-user-ID and set-group-ID bits. libfuse 3.14 never grants the kernel
 * FUSE_CAP_HANDLE_KILLPRIV, so the kernel clears the bits itself: it adds
 * the cleared MODE to the SETATTR of a truncate or chown, and sends a
 * SETATTR of the MODE alone before a write. Both come with the identity of
 * a caller who need not own the file, as a chmod would be refused to it.
 * So: the truncate's MODE is dropped, and the target truncates as the
 * caller; the write's SETATTR is recognised by its shape (the mode, with
 * only set-ID bits removed, of a regular file that is open) and, refused
 * to the caller, done with the daemon's privilege. Then whatever bits
 * Linux would have cleared and the target left (an NFS server need not
 * clear them as Linux does) are cleared with the daemon's privilege
 * (setid.h).
 */
static int killpriv_shaped(fuse_ino_t ino, const struct be_setattr *sa)
{
	struct stat cur;
	struct efsmt_handle *h = node_get_handle(ino);

	if (!h)
		return 0;
	struct handle_at *a = handle_at(h);
	int rc = a->t->ops->fgetattr(a->t, a->bh, &cur);
	handle_put(h);
	mode_t was = cur.st_mode & 07777, now = sa->mode & 07777;
	return rc == 0 && S_ISREG(cur.st_mode) && now != was &&
	       now == (was & ~(mode_t)(S_ISUID | S_ISGID));
}

/* Whether ino is a file open here (a write may be what clears its bits). */
static int killpriv_open(fuse_ino_t ino)
{
	struct efsmt_handle *h = node_get_handle(ino);

	if (h)
		handle_put(h);
	return h != NULL;
}

/* Attributes of ino before a chown, through h or by path (as the caller). */
static int attrs_before(fuse_ino_t ino, struct efsmt_handle *h, struct stat *st)
{
	char path[BE_PATH_MAX];

	if (h) {
		struct handle_at *a = handle_at(h);
		return a->t->ops->fgetattr(a->t, a->bh, st);
	}
	int len = fs_path(ino, path);
	if (len < 0)
		return len;
	struct target *t = fs_route(path, (size_t)len);
	return t->ops->getattr(t, path, st);
}

/* Set ino's mode with the daemon's privilege; *st is updated. */
static int fs_set_mode(fuse_ino_t ino, struct efsmt_handle *h, mode_t mode, struct stat *st)
{
	struct be_setattr sa = {.valid = BE_SET_MODE, .mode = mode};
	struct be_caller root = {.ngroups = 0};
	struct target *t;
	struct stat after;

	if (fs_enter_privileged() < 0)
		return 0;
	int rc = setattr_on(NULL, ino, h, &root, &sa, &after, &t);
	if (rc == 0)
		*st = after;
	return rc;
}

/* Clear the bits kill from a file whose attributes are *st, with the
 * daemon's privilege; *st is updated. */
int fs_clear_setid(fuse_ino_t ino, struct efsmt_handle *h, mode_t kill, struct stat *st)
{
	return kill ? fs_set_mode(ino, h, st->st_mode & 07777 & ~kill, st) : 0;
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	static const struct {
		int fuse;
		unsigned be;
	} bits[] = {
		{FUSE_SET_ATTR_MODE, BE_SET_MODE},	 {FUSE_SET_ATTR_UID, BE_SET_UID},
		{FUSE_SET_ATTR_GID, BE_SET_GID},	 {FUSE_SET_ATTR_SIZE, BE_SET_SIZE},
		{FUSE_SET_ATTR_ATIME, BE_SET_ATIME},	 {FUSE_SET_ATTR_MTIME, BE_SET_MTIME},
		{FUSE_SET_ATTR_ATIME_NOW, BE_SET_ATIME_NOW}, {FUSE_SET_ATTR_MTIME_NOW, BE_SET_MTIME_NOW},
	};
	struct be_setattr sa = {.mode = attr->st_mode, .uid = attr->st_uid, .gid = attr->st_gid,
				.size = attr->st_size, .atime = attr->st_atim,
				.mtime = attr->st_mtim};
	struct efsmt_handle *h = fi ? FS_HANDLE(fi) : NULL;
	struct be_caller c;
	struct stat st, before;
	struct target *t;
	int rc;

	ENTER_OR_REPLY(req);
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (to_set & bits[i].fuse)
			sa.valid |= bits[i].be;
	/* A truncate never carries a mode but the kernel's set-ID clearing. */
	if ((sa.valid & BE_SET_MODE) && (sa.valid & BE_SET_SIZE))
		sa.valid &= ~(unsigned)BE_SET_MODE;
	/* Nothing to set is chown(-1, -1), which still clears set-ID bits, or
	 * the kernel's notice that a write is to clear them (see above). */
	int noop = sa.valid == 0;
	if (noop) {
		sa.valid = BE_SET_UID | BE_SET_GID;
		sa.uid = (uid_t)-1;
		sa.gid = (gid_t)-1;
	}
	int chown = (sa.valid & (BE_SET_UID | BE_SET_GID)) != 0;
	int have_before = chown && attrs_before(ino, h, &before) == 0;
	fs_caller(req, &c);
	rc = setattr_on(req, ino, h, &c, &sa, &st, &t);
	if (rc == -EPERM && t && sa.valid == BE_SET_MODE && c.uid != 0 &&
	    killpriv_shaped(ino, &sa) && fs_enter_privileged() == 0) {
		struct be_caller root = {.ngroups = 0};
		rc = setattr_on(req, ino, h, &root, &sa, &st, &t);
	}
	if (rc == -EPERM && noop && have_before && c.uid != 0 && killpriv_open(ino)) {
		/* A writer who does not own the file: its write clears. */
		st = before;
		rc = fs_clear_setid(ino, h, setid_kill_on_write(&st, c.uid) & st.st_mode, &st);
	} else if (rc == 0) {
		mode_t kill = have_before ? setid_kill_on_chown(&before, c.uid) : 0;
		if (sa.valid & BE_SET_SIZE)
			kill |= setid_kill_on_write(&st, c.uid);
		rc = fs_clear_setid(ino, h, kill & st.st_mode, &st);
		/* Linux keeps a directory's set-ID bits through a chown; some
		 * NFS servers (nfs-ganesha) clear set-group-ID: put it back. */
		if (rc == 0 && have_before && S_ISDIR(st.st_mode) && !(sa.valid & BE_SET_MODE) &&
		    (st.st_mode & 07000) != (before.st_mode & 07000))
			rc = fs_set_mode(ino, h, (st.st_mode & 0777) | (before.st_mode & 07000), &st);
	}
	if (!t) {
		fuse_reply_err(req, -rc);
		return;
	}
	if ((rc = fs_count(t, rc)) < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_attr_timeout(ino, &st));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX];
	NODE_OR_REPLY(req, ino, path, t);
	int rc;
	FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc,
			   t->ops->readlink(t, path, buf, sizeof(buf)));
	rc = fs_count(t, rc);

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

/* Reply to a creating operation: an entry, or the error. */
static void reply_made(fuse_req_t req, struct target *t, int rc, fuse_ino_t parent,
		       const char *name, const struct stat *st)
{
	if ((rc = fs_count(t, rc)) < 0)
		fuse_reply_err(req, -rc);
	else
		fs_reply_entry(req, parent, name, st);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct be_caller c;
	struct stat st;
	CHILD_OR_REPLY(req, parent, name, path, t);

	/* CAP_MKNOD survives the identity switch: check it here. */
	if ((S_ISCHR(mode) || S_ISBLK(mode)) && !fs_caller_is_root(req)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fs_caller(req, &c);
	reply_made(req, t, t->ops->mknod(t, &c, path, mode, rdev, &st), parent, name, &st);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct be_caller c;
	struct stat st;
	CHILD_OR_REPLY(req, parent, name, path, t);

	fs_caller(req, &c);
	reply_made(req, t, t->ops->mkdir(t, &c, path, mode, &st), parent, name, &st);
}

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct be_caller c;
	struct stat st;
	CHILD_OR_REPLY(req, parent, name, path, t);

	fs_caller(req, &c);
	reply_made(req, t, t->ops->symlink(t, &c, link, path, &st), parent, name, &st);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct be_caller c;
	struct stat st;
	char newpath[BE_PATH_MAX];
	/* Done wholly on the source's target: one file system, never EXDEV. */
	NODE_OR_REPLY(req, ino, path, t);
	int rc = fs_child_path(newparent, newname, newpath);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_caller(req, &c);
	rc = fs_count(t, t->ops->link(t, &c, path, newpath, &st));
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* The new name is one more name of the same node: one kernel inode. */
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = node_link(ino, newparent, newname);
	e.attr = st;
	e.attr_timeout = e.ino ? fs_attr_timeout(e.ino, &st) : 0;
	e.entry_timeout = fs.entry_timeout;
	if (!e.ino)
		fuse_reply_err(req, ENOMEM);
	else if (fuse_reply_entry(req, &e) != 0)
		node_forget(e.ino, 1);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CHILD_OR_REPLY(req, parent, name, path, t);
	int rc = fs_count(t, t->ops->unlink(t, path));

	if (rc == 0)
		node_unlinked(parent, name);
	fuse_reply_err(req, -rc);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CHILD_OR_REPLY(req, parent, name, path, t);
	int rc = fs_count(t, t->ops->rmdir(t, path));

	if (rc == 0)
		node_unlinked(parent, name);
	fuse_reply_err(req, -rc);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	char newpath[BE_PATH_MAX];
	CHILD_OR_REPLY(req, parent, name, path, t);
	int rc = fs_child_path(newparent, newname, newpath);

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (rc >= 0)
		rc = fs_count(t, t->ops->rename(t, path, newpath, flags));
	if (rc >= 0)
		node_renamed(parent, name, newparent, newname, !!(flags & RENAME_EXCHANGE));
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	NODE_OR_REPLY(req, ino, path, t);
	int rc;
	FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc, t->ops->statfs(t, path, &sv));
	rc = fs_count(t, rc);

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	NODE_OR_REPLY(req, ino, path, t);
	int rc;
	FS_RETRY_ELSEWHERE(t, path, (size_t)path_len, rc, t->ops->access(t, path, mask));
	fuse_reply_err(req, -fs_count(t, rc));
}
