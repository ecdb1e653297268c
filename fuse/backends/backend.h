/*
 * backend.h - the interface every kind of target implements.
 *
 * The FUSE layer speaks only to this table. A backend sees full paths from
 * the mount root ("/" is the root, "/a/b" a file below it) and the identity
 * of the caller; it never sees FUSE types. Every call returns 0 (or a
 * non-negative count where documented) or -errno: no errno crosses this line.
 *
 * File handles are opaque 64-bit values chosen by the backend; the FUSE
 * layer keeps them together with the target they belong to, so a handle is
 * only ever given back to the target that made it.
 */
#ifndef EFSMT_BACKEND_H
#define EFSMT_BACKEND_H

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct target;

/* The longest path a backend is given, with its NUL: "/" and then up to
 * PATH_MAX - 1 bytes, the most a local file system takes relative to its
 * own root (a process whose working directory is the mount root). */
#define BE_PATH_MAX (PATH_MAX + 1)

/* Who asked: backends that check permissions themselves (NFS AUTH_SYS) or
 * create files (ownership) need it. */
struct be_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	mode_t umask;
	int ngroups; /* -1: not known */
	const gid_t *groups;
};

/* Which fields of be_setattr are set. */
enum {
	BE_SET_MODE = 1 << 0,
	BE_SET_UID = 1 << 1,
	BE_SET_GID = 1 << 2,
	BE_SET_SIZE = 1 << 3,
	BE_SET_ATIME = 1 << 4,
	BE_SET_MTIME = 1 << 5,
	BE_SET_ATIME_NOW = 1 << 6,
	BE_SET_MTIME_NOW = 1 << 7,
};

struct be_setattr {
	unsigned valid; /* BE_SET_* */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	off_t size;
	struct timespec atime;
	struct timespec mtime;
};

/* One directory entry; attr is filled when the caller asked for it (plus). */
struct be_dirent {
	const char *name;
	ino_t ino;
	mode_t type; /* S_IFMT bits, 0 if unknown */
	off_t next;  /* cookie that resumes after this entry */
	struct stat attr;
};

/* A lock request or answer (lock_set, lock_get). */
struct be_lock {
	short type; /* F_RDLCK, F_WRLCK or F_UNLCK */
	off_t start;
	off_t len; /* 0: to the end of the file, however long it grows */
	pid_t pid; /* lock_get's answer: the holder, 0 when not on this host */
};

/* What a lock state holds: fcntl record locks (POSIX and OFD) or flock. */
enum { BE_LOCK_POSIX, BE_LOCK_FLOCK };

/* Return 1 to stop (the buffer is full), 0 to go on. */
typedef int (*be_fill_fn)(void *ctx, const struct be_dirent *ent);
/* One piece of a file's data: 0 when taken, else -errno. */
typedef int (*be_data_fn)(void *ctx, const void *buf, size_t len, uint64_t off);

/* Whether rc means "the target did not answer" (a timeout, a dropped or
 * refused connection), not an answer. */
static inline int be_unreachable(int rc)
{
	switch (-rc) {
	case ETIMEDOUT:
	case ENOTCONN:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case EPIPE:
		return 1;
	default:
		return 0;
	}
}

struct backend_ops {
	const char *scheme; /* "dir" */

	/* Open the target (root directory, connections); 0 or -errno with a
	 * one-line reason in err. */
	int (*attach)(struct target *t, char *err, size_t errlen);
	void (*detach)(struct target *t);

	int (*getattr)(struct target *t, const char *path, struct stat *st);
	int (*setattr)(struct target *t, const struct be_caller *c, const char *path,
		       uint64_t fh, int has_fh, const struct be_setattr *sa, struct stat *st);
	int (*readlink)(struct target *t, const char *path, char *buf, size_t size);
	int (*mknod)(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		     dev_t rdev, struct stat *st);
	int (*mkdir)(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		     struct stat *st);
	int (*symlink)(struct target *t, const struct be_caller *c, const char *linkto,
		       const char *path, struct stat *st);
	int (*link)(struct target *t, const struct be_caller *c, const char *oldpath,
		    const char *newpath, struct stat *st);
	int (*unlink)(struct target *t, const char *path);
	int (*rmdir)(struct target *t, const char *path);
	/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE */
	int (*rename)(struct target *t, const char *from, const char *to, unsigned flags);
	int (*statfs)(struct target *t, const char *path, struct statvfs *sv);
	/* access(2) for the calling thread's identity; mask as for access(2). */
	int (*access)(struct target *t, const char *path, int mask);

	/* Files. create returns the new file's attributes in st. An open
	 * with O_DIRECT keeps its meaning: reads come from the target (no
	 * cache or read-ahead of the backend's), and a write is on the target,
	 * stable, when it returns; I/O the target cannot take unaligned is
	 * done another way, never refused for its alignment. */
	int (*create)(struct target *t, const struct be_caller *c, const char *path, int flags,
		      mode_t mode, uint64_t *fh, struct stat *st);
	int (*open)(struct target *t, const char *path, int flags, uint64_t *fh);
	/* read/write return the byte count. */
	ssize_t (*read)(struct target *t, uint64_t fh, char *buf, size_t size, off_t off);
	/* Instead of read, for backends that receive data into buffers of
	 * their own: no copy into a caller's buffer. *data points at the bytes;
	 * *keep is what to free(3) after they are sent, and must own them: the
	 * kernel has the data before the reply's write(2) returns and may send
	 * the handle's release meanwhile, so bytes that live only as long as
	 * the handle are not enough. A backend has one of the two. */
	ssize_t (*read_ref)(struct target *t, uint64_t fh, size_t size, off_t off,
			    const char **data, void **keep);
	ssize_t (*write)(struct target *t, uint64_t fh, const char *buf, size_t size, off_t off);
	/* A file descriptor for zero-copy (splice) I/O on fh, or -1. */
	int (*handle_fd)(struct target *t, uint64_t fh);
	int (*fgetattr)(struct target *t, uint64_t fh, struct stat *st);
	int (*fsync)(struct target *t, uint64_t fh, int datasync);
	/* close(2) of one descriptor of fh: finish and report writes the
	 * backend deferred. NULL when writes are never deferred: then the
	 * kernel is told not to send flushes at all. */
	int (*flush)(struct target *t, uint64_t fh);
	int (*release)(struct target *t, uint64_t fh);
	int (*fallocate)(struct target *t, uint64_t fh, int mode, off_t off, off_t len);
	/* returns the new offset */
	off_t (*lseek)(struct target *t, uint64_t fh, off_t off, int whence);
	ssize_t (*copy_range)(struct target *t, uint64_t fh_in, off_t off_in, uint64_t fh_out,
			      off_t off_out, size_t len, int flags);

	/* Directories. */
	int (*opendir)(struct target *t, const char *path, uint64_t *dh);
	int (*readdir)(struct target *t, uint64_t dh, off_t off, int plus, be_fill_fn fill,
		       void *ctx);
	int (*fsyncdir)(struct target *t, uint64_t dh, int datasync);
	int (*releasedir)(struct target *t, uint64_t dh);

	/* Extended attributes; get/list return the size (or the size needed
	 * when size is 0). */
	ssize_t (*getxattr)(struct target *t, const char *path, const char *name, char *buf,
			    size_t size);
	int (*setxattr)(struct target *t, const char *path, const char *name, const char *value,
			size_t size, int flags);
	ssize_t (*listxattr)(struct target *t, const char *path, char *buf, size_t size);
	int (*removexattr)(struct target *t, const char *path, const char *name);
	/* 1 when no file on the target can ever hold the attribute name (the
	 * protocol has no such namespace), else 0; no round trip. NULL: any
	 * name may be held. When every target of the mount says 1, the core
	 * answers the name itself (op_xattr.c). */
	int (*xattr_cannot_hold)(struct target *t, const char *name);

	/* Locks (lock.h). A lock state is one lock owner's locks on one file:
	 * made through an open handle fh (and valid no longer than fh), used
	 * for every lock the owner takes on that file, freed by lock_free,
	 * which drops every lock it holds. The core serialises calls on one
	 * state. All five are NULL when the target has no locks of its own:
	 * then the core refuses lock requests (ENOLCK).
	 *
	 * lock_set never waits: -EAGAIN when another owner's lock is in the
	 * way (the core polls for a blocking request; waiting says it will,
	 * which lets an NFS server queue the request). Locks of one state
	 * never conflict with each other: a new lock over the state's own
	 * replaces them (upgrade, downgrade, split), as fcntl(2) says. An
	 * unlock (F_UNLCK) first puts the file's writes on the target, and a
	 * granted lock makes later reads go to the target, so that a lock
	 * orders data between hosts. lock_get answers F_GETLK: lk becomes the
	 * first conflicting lock, or its type F_UNLCK. lock_check is cheap (no
	 * round trip): -ENOLCK once the target is known to have lost the
	 * state's locks (a server restart, an expired lease), else 0. */
	int (*lock_new)(struct target *t, uint64_t fh, int kind, uint64_t *ls);
	int (*lock_set)(struct target *t, uint64_t ls, const struct be_lock *lk, int waiting);
	int (*lock_get)(struct target *t, uint64_t ls, struct be_lock *lk);
	int (*lock_check)(struct target *t, uint64_t ls);
	void (*lock_free)(struct target *t, uint64_t ls);

	/* Fail-over (health.h); both may be NULL. abort: the target stopped
	 * answering; fail calls in flight and later ones at once (-ENOTCONN)
	 * until a probe succeeds; callable from any thread. probe: 0 when the
	 * target answers (reconnecting if needed); without it, statfs("/"). */
	void (*abort)(struct target *t);
	int (*probe)(struct target *t);

	/* An open file whose target failed (front/outlive.c); both NULL where
	 * the backend keeps no data of its own for write(2) (dir://: the
	 * kernel's page cache has it). resume: the target answers again; send
	 * again what fh accepted and the target does not hold on stable
	 * storage, and make it stable (reopening the file if the server lost
	 * its open); 0, or -errno with the data still kept. pending: fh is to
	 * be left for another handle; once fh writes no more (its later
	 * writes fail with -ENOTCONN) and its writes in flight are over, hand
	 * each piece it keeps, oldest first, to fn (0 or fn's first error);
	 * with fn NULL, forget them (the other handle has them stable). */
	int (*resume)(struct target *t, uint64_t fh);
	int (*pending)(struct target *t, uint64_t fh, be_data_fn fn, void *ctx);
	/* How long (ms) the target may still carry out a request fh sent
	 * before it failed (its lease on fh's open state); 0 when none can
	 * land any more. NULL: none can. */
	long long (*fence_ms)(struct target *t, uint64_t fh);
};

/* Registered backends, found by URI scheme. */
extern const struct backend_ops backend_dir_ops;

const struct backend_ops *backend_for_scheme(const char *scheme);

#endif
