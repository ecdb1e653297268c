/*
 * fs.h - state shared by the FUSE operation files (op_*.c).
 */
#ifndef EFSMT_FS_H
#define EFSMT_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdatomic.h>

#include "backends/backend.h"
#include "handle.h"
#include "routing/health.h"
#include "routing/route.h"
#include "backends/target.h"

#define EFSMT_XATTR_TARGET "user.efsmt.target"
#define EFSMT_XATTR_OPEN "user.efsmt.open"

struct efsmt_fs {
	double entry_timeout;
	double negative_timeout;
	/* Attribute timeouts (nfs(5) names): files and directories, from min
	 * after a change, doubling to max while unchanged (fs_attr_timeout). */
	double acregmin, acregmax, acdirmin, acdirmax;
	int nocto; /* opens keep the file's cached pages */
};

extern struct efsmt_fs fs;
/* How long the kernel may trust st, the attributes of ino (0: not known
 * yet, as for a name not learned). */
double fs_attr_timeout(fuse_ino_t ino, const struct stat *st);
/* The attributes the kernel was last given for ino, while they are still
 * within the timeout it was given and nothing changed through this mount
 * since they were read: 1 with *st and the seconds left, else 0. The
 * kernel asks again after a READ (it drops its copy for the access time);
 * the kernel NFS client answers such a stat from its cache, so efsmt
 * does too, without a request to the target. */
int fs_attr_cached(fuse_ino_t ino, struct stat *st, double *left);
/* The FUSE session, for notifications (set before the loop starts). */
extern struct fuse_session *fs_session;

/* Path of an inode (or of NAME under it): fills path[BE_PATH_MAX], returns
 * the length or -errno. */
int fs_path(fuse_ino_t ino, char *path);
int fs_child_path(fuse_ino_t parent, const char *name, char *path);
/* Take the caller's identity on this thread (cred.h); 0 or -errno. */
int fs_enter(fuse_req_t req);
#define ENTER_OR_REPLY(req)                                                            \
	do {                                                                           \
		int enter_rc_ = fs_enter(req);                                         \
		if (enter_rc_ < 0) {                                                   \
			fuse_reply_err(req, -enter_rc_);                               \
			return;                                                        \
		}                                                                      \
	} while (0)
/* Clear the set-ID bits kill from ino (through h when not NULL), whose
 * attributes are *st, with the daemon's privilege: what Linux would have
 * cleared and the target left (setid.h). 0 or -errno; *st is updated. */
int fs_clear_setid(fuse_ino_t ino, struct efsmt_handle *h, mode_t kill, struct stat *st);
/* Take the daemon's own identity (root) on this thread, for what the
 * kernel asks on a caller's behalf but the caller may not do itself. */
int fs_enter_privileged(void);
/* Take the caller's identity and resolve PARENT/NAME (or the node INO) to a
 * path and its target, declared as path, path_len and t; or reply with the
 * error and return. */
#define CHILD_OR_REPLY(req, parent, name, path, t)                                     \
	ENTER_OR_REPLY(req);                                                           \
	char path[BE_PATH_MAX];                                                        \
	int path##_len = fs_child_path(parent, name, path);                            \
	if (path##_len < 0) {                                                          \
		fuse_reply_err(req, -path##_len);                                      \
		return;                                                                \
	}                                                                              \
	struct target *t = fs_route(path, (size_t)path##_len)

#define NODE_OR_REPLY(req, ino, path, t)                                               \
	ENTER_OR_REPLY(req);                                                           \
	char path[BE_PATH_MAX];                                                        \
	int path##_len = fs_path(ino, path);                                           \
	if (path##_len < 0) {                                                          \
		fuse_reply_err(req, -path##_len);                                      \
		return;                                                                \
	}                                                                              \
	struct target *t = fs_route(path, (size_t)path##_len)

/* Whether the caller may use privileges that identity switching does not
 * drop (device nodes, trusted.* and security.* attributes). */
int fs_caller_is_root(fuse_req_t req);

/* The target a path routes to under the current table. */
struct target *fs_route(const char *path, size_t len);
void fs_caller(fuse_req_t req, struct be_caller *c);
/* Reply with an entry for PARENT/NAME whose attributes are st. */
void fs_reply_entry(fuse_req_t req, fuse_ino_t parent, const char *name, const struct stat *st);
/* Count an operation and its failure on a target, and tell the health
 * monitor (a target that did not answer is marked down at once). Returns
 * rc, except that "the target did not answer" becomes -EIO. */
int fs_count(struct target *t, int rc);

/* An idempotent call by path (lookup, getattr, readlink, access, statfs,
 * opendir, reading xattrs): when its target does not answer, that target is
 * marked down and the call is made again on the next target in rendezvous
 * order, at most FS_FAILOVERS times. `call` uses t; rc gets its result. */
#define FS_FAILOVERS 2
#define FS_RETRY_ELSEWHERE(t, path, len, rc, call)                                     \
	for (int fs_try_ = 0;; fs_try_++) {                                            \
		rc = (call);                                                           \
		if (!health_is_unreachable((int)(rc)) || fs_try_ == FS_FAILOVERS)    \
			break;                                                         \
		health_note(t, (int)(rc));                                             \
		struct target *fs_next_ = fs_route(path, len);                         \
		if (fs_next_ == t)                                                     \
			break;                                                         \
		t = fs_next_;                                                          \
	}

/* op_guard.c: every request runs in an epoch section (epoch.h) and is
 * timed; fs_count() tells it which target served the request and
 * op_guard_bytes() how many bytes moved. */
extern const struct fuse_lowlevel_ops efsmt_guarded_ops;
void op_guard_note(struct target *t, int rc);
void op_guard_bytes(uint64_t n);
/* When the request this thread serves began (CLOCK_MONOTONIC, ms). */
long long op_guard_started_ms(void);
/* Changes through this mount: a generation that moves before and after
 * every request that may change some file's attributes (write, setattr,
 * create, unlink, rename, ...; op_guard_change() for an O_TRUNC open).
 * op_guard_gen() is its value when this thread's request began;
 * op_guard_unchanged(g) whether it still is g. */
unsigned op_guard_gen(void);
int op_guard_unchanged(unsigned gen);
void op_guard_change(void);

#define FS_HANDLE(fi) ((struct efsmt_handle *)(uintptr_t)(fi)->fh)

/* The operation families. */
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void op_readlink(fuse_req_t req, fuse_ino_t ino);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void op_statfs(fuse_req_t req, fuse_ino_t ino);
void op_access(fuse_req_t req, fuse_ino_t ino, int mask);

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
		  struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		  struct fuse_file_info *fi);
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags);

void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lk);
void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lk,
	      int sleep);
void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
