/*
 * backend_dir.c - a target that is a directory already mounted on this host
 * (a bind mount, a kernel NFS mount, any local file system).
 *
 * Every call resolves the path relative to an O_PATH descriptor of the
 * target's root, on a thread that has taken the caller's identity (cred.h):
 * the target's file system checks access and owns new files to the caller.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "backend_kernel.h"
#include "target.h"

struct dir_target {
	int rootfd;
	char *root; /* absolute, for the calls that only take full paths */
	void *ext;  /* the state of a backend built on this one (kernel://) */
};

struct dir_handle {
	DIR *dp;
	off_t off;
	struct dirent *pending; /* read but not yet taken by the caller */
};

#define D(t) ((struct dir_target *)(t)->priv)

/* A file handle is its descriptor; an O_DIRECT one has DIR_FH_DIRECT set
 * too, and its reads and writes go through dir_direct_io. */
#define DIR_FH_DIRECT (1ull << 62)
#define DIR_FD(fh) ((int)(uint32_t)(fh))
/* O_DIRECT wants buffers, offsets and sizes aligned to the device's
 * logical block: buffers get DIR_DIRECT_MEM_ALIGN; requests whose offset
 * or size is not a multiple of DIR_DIRECT_BLOCK (or that the target still
 * refuses) go through a descriptor without O_DIRECT, written O_DSYNC. */
#define DIR_DIRECT_MEM_ALIGN 4096
#define DIR_DIRECT_BLOCK 512
#define NEG(x) ((x) < 0 ? -errno : 0)

/* "/" -> ".", "/a/b" -> "a/b" */
static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

/* A name for the calls that take no directory descriptor (truncate, the
 * xattr calls): /proc/self/fd/N/NAME, N an O_PATH descriptor of the parent
 * opened below the target's root, which the caller closes (*pfd). The
 * caller's search permissions are thus checked from the target's root
 * down, as for every other call, never on the directories above it (a
 * kernel:// target's private mount directory is root's alone), and the
 * path may be as long as a path below the root can be. */
static int call_path(struct target *t, const char *path, char *buf, size_t size, int *pfd)
{
	char parent[BE_PATH_MAX];
	const char *slash = strrchr(path, '/');

	*pfd = -1;
	if (!slash || (size_t)(slash - path) >= sizeof(parent))
		return -ENAMETOOLONG;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	int fd = openat(D(t)->rootfd, parent[0] ? rel(parent) : ".",
			O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = snprintf(buf, size, "/proc/self/fd/%d/%s", fd, slash[1] ? slash + 1 : ".");
	if (n < 0 || (size_t)n >= size) {
		close(fd);
		return -ENAMETOOLONG;
	}
	*pfd = fd;
	return 0;
}

static void call_path_done(int fd)
{
	if (fd >= 0)
		close(fd);
}

int backend_dir_attach_root(struct target *t, const char *dir, void *ext, char *err,
			    size_t errlen)
{
	struct dir_target *d = calloc(1, sizeof(*d));
	struct stat st;
	size_t len = strlen(dir) + strlen(t->subdir) + 1;

	if (!d)
		return -ENOMEM;
	d->root = malloc(len);
	if (!d->root) {
		free(d);
		return -ENOMEM;
	}
	d->ext = ext;
	snprintf(d->root, len, "%s%s", strcmp(dir, "/") == 0 ? "" : dir, t->subdir);
	if (!d->root[0])
		strcpy(d->root, "/");
	d->rootfd = open(d->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->rootfd < 0) {
		int e = errno;
		if (e == ENOTDIR)
			snprintf(err, errlen, "%s is not a directory (a target must be one)",
				 d->root);
		else
			snprintf(err, errlen, "%s: %s (create it, or fix target=)", d->root,
				 strerror(e));
		free(d->root);
		free(d);
		return -e;
	}
	if (fstat(d->rootfd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", d->root);
		close(d->rootfd);
		free(d->root);
		free(d);
		return -ENOTDIR;
	}
	t->priv = d;
	return 0;
}

static int dir_attach(struct target *t, char *err, size_t errlen)
{
	return backend_dir_attach_root(t, t->path, NULL, err, errlen);
}

void *backend_dir_ext(struct target *t)
{
	return t->priv ? D(t)->ext : NULL;
}

void backend_dir_detach(struct target *t)
{
	struct dir_target *d = D(t);

	if (!d)
		return;
	close(d->rootfd);
	free(d->root);
	free(d);
	t->priv = NULL;
}

/* kernel:// targets are mounts of one file system, each with a device
 * number of its own: their files carry this one instead, so that two names
 * of one file reached through two targets are one node (node.h matches
 * files by device and inode number). */
#define KERNEL_TARGETS_DEV ((dev_t)-2)

/* rc, after giving a kernel:// target's attributes the shared device. */
static int with_dev(struct target *t, int rc, struct stat *st)
{
	if (rc == 0 && D(t)->ext)
		st->st_dev = KERNEL_TARGETS_DEV;
	return rc;
}

static int dir_getattr(struct target *t, const char *path, struct stat *st)
{
	return with_dev(t, NEG(fstatat(D(t)->rootfd, rel(path), st, AT_SYMLINK_NOFOLLOW)), st);
}

/* After creating: report the attributes; undo on failure. */
static int finish_create(struct target *t, const char *path, struct stat *st, int is_dir)
{
	int rc = dir_getattr(t, path, st);

	if (rc < 0)
		unlinkat(D(t)->rootfd, rel(path), is_dir ? AT_REMOVEDIR : 0);
	return rc;
}

static int dir_setattr(struct target *t, const struct be_caller *c, const char *path,
		       uint64_t fh, int has_fh, const struct be_setattr *sa, struct stat *st)
{
	int fd = has_fh ? DIR_FD(fh) : -1;
	int dfd = D(t)->rootfd;
	const char *r = rel(path);
	int rc = 0;

	if (sa->valid & BE_SET_MODE)
		rc = NEG(fd >= 0 ? fchmod(fd, sa->mode) : fchmodat(dfd, r, sa->mode, 0));
	if (rc == 0 && (sa->valid & (BE_SET_UID | BE_SET_GID))) {
		uid_t u = (sa->valid & BE_SET_UID) ? sa->uid : (uid_t)-1;
		gid_t g = (sa->valid & BE_SET_GID) ? sa->gid : (gid_t)-1;
		rc = NEG(fd >= 0 ? fchown(fd, u, g) : fchownat(dfd, r, u, g, AT_SYMLINK_NOFOLLOW));
	}
	if (rc == 0 && (sa->valid & BE_SET_SIZE)) {
		if (fd >= 0) {
			rc = NEG(ftruncate(fd, sa->size));
		} else {
			char full[PATH_MAX];
			int pfd;
			rc = call_path(t, path, full, sizeof(full), &pfd);
			if (rc == 0)
				rc = NEG(truncate(full, sa->size));
			call_path_done(pfd);
		}
	}
	if (rc == 0 && (sa->valid & (BE_SET_ATIME | BE_SET_MTIME | BE_SET_ATIME_NOW |
				     BE_SET_MTIME_NOW))) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
		if (sa->valid & BE_SET_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (sa->valid & BE_SET_ATIME)
			ts[0] = sa->atime;
		if (sa->valid & BE_SET_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (sa->valid & BE_SET_MTIME)
			ts[1] = sa->mtime;
		rc = NEG(fd >= 0 ? futimens(fd, ts) : utimensat(dfd, r, ts, AT_SYMLINK_NOFOLLOW));
	}
	if (rc == 0)
		rc = fd >= 0 ? with_dev(t, NEG(fstat(fd, st)), st) : dir_getattr(t, path, st);
	return rc;
}

static int dir_readlink(struct target *t, const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(D(t)->rootfd, rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int dir_mknod(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		     dev_t rdev, struct stat *st)
{
	int rc = NEG(mknodat(D(t)->rootfd, rel(path), mode, rdev));
	return rc ? rc : finish_create(t, path, st, 0);
}

static int dir_mkdir(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		     struct stat *st)
{
	int rc = NEG(mkdirat(D(t)->rootfd, rel(path), mode));
	return rc ? rc : finish_create(t, path, st, 1);
}

static int dir_symlink(struct target *t, const struct be_caller *c, const char *linkto,
		       const char *path, struct stat *st)
{
	int rc = NEG(symlinkat(linkto, D(t)->rootfd, rel(path)));
	return rc ? rc : finish_create(t, path, st, 0);
}

static int dir_link(struct target *t, const struct be_caller *c, const char *oldpath,
		    const char *newpath, struct stat *st)
{
	int rc = NEG(linkat(D(t)->rootfd, rel(oldpath), D(t)->rootfd, rel(newpath), 0));
	return rc ? rc : dir_getattr(t, newpath, st);
}

static int dir_unlink(struct target *t, const char *path)
{
	return NEG(unlinkat(D(t)->rootfd, rel(path), 0));
}

static int dir_rmdir(struct target *t, const char *path)
{
	return NEG(unlinkat(D(t)->rootfd, rel(path), AT_REMOVEDIR));
}

static int dir_rename(struct target *t, const char *from, const char *to, unsigned flags)
{
	return NEG(renameat2(D(t)->rootfd, rel(from), D(t)->rootfd, rel(to), flags));
}

static int dir_statfs(struct target *t, const char *path, struct statvfs *sv)
{
	return NEG(fstatvfs(D(t)->rootfd, sv));
}

static int dir_access(struct target *t, const char *path, int mask)
{
	return NEG(faccessat(D(t)->rootfd, rel(path), mask, AT_EACCESS));
}

/* open(2) for a file handle: 0 or -errno. */
static int open_file(struct target *t, const char *path, int flags, mode_t mode, uint64_t *fh)
{
	uint64_t direct = (flags & O_DIRECT) ? DIR_FH_DIRECT : 0;
	int fd = openat(D(t)->rootfd, rel(path), flags | O_CLOEXEC, mode);

	if (fd < 0 && errno == EINVAL && direct) {
		/* A file system without O_DIRECT: synchronous writes still put
		 * the data on the target before write returns. An O_EXCL create
		 * that got this far made the file. */
		fd = openat(D(t)->rootfd, rel(path), (flags & ~(O_DIRECT | O_EXCL)) | O_DSYNC | O_CLOEXEC,
			    mode);
		direct = 0;
	}
	if (fd < 0)
		return -errno;
	*fh = (uint64_t)fd | direct;
	return 0;
}

static int dir_create(struct target *t, const struct be_caller *c, const char *path, int flags,
		      mode_t mode, uint64_t *fh, struct stat *st)
{
	int rc = open_file(t, path, flags | O_CREAT, mode, fh);

	if (rc < 0)
		return rc;
	rc = with_dev(t, NEG(fstat(DIR_FD(*fh), st)), st);
	if (rc < 0)
		close(DIR_FD(*fh));
	return rc;
}

static int dir_open(struct target *t, const char *path, int flags, uint64_t *fh)
{
	return open_file(t, path, flags & ~O_CREAT, 0, fh);
}

struct direct_buf {
	void *buf;
	size_t have;
};

static pthread_key_t direct_key;
static pthread_once_t direct_once = PTHREAD_ONCE_INIT;

/* A FUSE worker that exits (the pool shrinks, or unmount) frees its buffer. */
static void direct_buf_free(void *p)
{
	struct direct_buf *d = p;

	free(d->buf);
	free(d);
}

static void direct_key_init(void)
{
	if (pthread_key_create(&direct_key, direct_buf_free) != 0)
		abort(); /* only when the process is out of keys (PTHREAD_KEYS_MAX) */
}

/* An aligned buffer of at least size bytes, this thread's own: the FUSE
 * request's buffer is not aligned as O_DIRECT wants. */
static void *direct_buffer(size_t size)
{
	struct direct_buf *d;

	pthread_once(&direct_once, direct_key_init);
	d = pthread_getspecific(direct_key);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return NULL;
		if (pthread_setspecific(direct_key, d) != 0) {
			free(d);
			return NULL;
		}
	}
	if (size > d->have) {
		void *b;
		if (posix_memalign(&b, DIR_DIRECT_MEM_ALIGN, size) != 0)
			return NULL;
		free(d->buf);
		d->buf = b;
		d->have = size;
	}
	return d->buf;
}

/* pread or pwrite on an O_DIRECT handle: the count or -errno. */
static ssize_t dir_direct_io(int fd, char *buf, size_t size, off_t off, int write)
{
	ssize_t n;

	if (off % DIR_DIRECT_BLOCK == 0 && size % DIR_DIRECT_BLOCK == 0 && size > 0) {
		char *b = direct_buffer(size);
		if (!b)
			return -ENOMEM;
		if (write)
			memcpy(b, buf, size);
		n = write ? pwrite(fd, b, size, off) : pread(fd, b, size, off);
		if (n > 0 && !write)
			memcpy(buf, b, (size_t)n);
		if (n >= 0 || errno != EINVAL)
			return n < 0 ? -errno : n;
	}
	/* Not aligned as the target needs: the same file without O_DIRECT,
	 * writes synchronous (the kernel keeps the two views coherent). */
	char proc[64];
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int bfd = open(proc, (fl & (O_ACCMODE | O_APPEND)) | O_DSYNC | O_CLOEXEC | O_NOCTTY);
	if (bfd < 0)
		return -errno;
	n = write ? pwrite(bfd, buf, size, off) : pread(bfd, buf, size, off);
	int e = errno;
	close(bfd);
	return n < 0 ? -e : n;
}

static ssize_t dir_read(struct target *t, uint64_t fh, char *buf, size_t size, off_t off)
{
	if (fh & DIR_FH_DIRECT)
		return dir_direct_io(DIR_FD(fh), buf, size, off, 0);
	ssize_t n = pread(DIR_FD(fh), buf, size, off);
	return n < 0 ? -errno : n;
}

static ssize_t dir_write(struct target *t, uint64_t fh, const char *buf, size_t size, off_t off)
{
	if (fh & DIR_FH_DIRECT)
		return dir_direct_io(DIR_FD(fh), (char *)buf, size, off, 1);
	ssize_t n = pwrite(DIR_FD(fh), buf, size, off);
	return n < 0 ? -errno : n;
}

/* No descriptor for O_DIRECT handles: splicing into or out of them fails
 * (EINVAL), so their I/O takes dir_read and dir_write. */
static int dir_handle_fd(struct target *t, uint64_t fh)
{
	return (fh & DIR_FH_DIRECT) ? -1 : DIR_FD(fh);
}

static int dir_fgetattr(struct target *t, uint64_t fh, struct stat *st)
{
	return with_dev(t, NEG(fstat(DIR_FD(fh), st)), st);
}

static int dir_fsync(struct target *t, uint64_t fh, int datasync)
{
	return NEG(datasync ? fdatasync(DIR_FD(fh)) : fsync(DIR_FD(fh)));
}

static int dir_release(struct target *t, uint64_t fh)
{
	return NEG(close(DIR_FD(fh)));
}

static int dir_fallocate(struct target *t, uint64_t fh, int mode, off_t off, off_t len)
{
	return NEG(fallocate(DIR_FD(fh), mode, off, len));
}

static off_t dir_lseek(struct target *t, uint64_t fh, off_t off, int whence)
{
	off_t r = lseek(DIR_FD(fh), off, whence);
	return r < 0 ? -errno : r;
}

static ssize_t dir_copy_range(struct target *t, uint64_t fh_in, off_t off_in, uint64_t fh_out,
			      off_t off_out, size_t len, int flags)
{
	ssize_t n = copy_file_range(DIR_FD(fh_in), &off_in, DIR_FD(fh_out), &off_out, len,
				    (unsigned)flags);
	return n < 0 ? -errno : n;
}

static int dir_opendir(struct target *t, const char *path, uint64_t *dh)
{
	struct dir_handle *h = calloc(1, sizeof(*h));
	int fd;

	if (!h)
		return -ENOMEM;
	fd = openat(D(t)->rootfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(h->dp = fdopendir(fd))) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(h);
		return -e;
	}
	*dh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int dir_readdir(struct target *t, uint64_t dh, off_t off, int plus, be_fill_fn fill,
		       void *ctx)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)dh;

	if (off != h->off) {
		seekdir(h->dp, off);
		h->pending = NULL;
		h->off = off;
	}
	for (;;) {
		struct be_dirent ent;
		if (!h->pending) {
			errno = 0;
			h->pending = readdir(h->dp);
			if (!h->pending)
				return errno ? -errno : 0;
		}
		memset(&ent, 0, sizeof(ent));
		ent.name = h->pending->d_name;
		ent.ino = h->pending->d_ino;
		ent.type = (mode_t)DTTOIF(h->pending->d_type);
		ent.next = h->pending->d_off;
		if (plus && fstatat(dirfd(h->dp), ent.name, &ent.attr, AT_SYMLINK_NOFOLLOW) < 0) {
			/* Gone since readdir: list it without attributes. */
			ent.attr.st_ino = ent.ino;
			ent.attr.st_mode = ent.type;
		} else if (plus) {
			with_dev(t, 0, &ent.attr);
		}
		if (fill(ctx, &ent))
			return 0; /* full: keep the entry for the next call */
		h->off = ent.next;
		h->pending = NULL;
	}
}

static int dir_fsyncdir(struct target *t, uint64_t dh, int datasync)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)dh;
	int fd = dirfd(h->dp);
	return NEG(datasync ? fdatasync(fd) : fsync(fd));
}

static int dir_releasedir(struct target *t, uint64_t dh)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)dh;

	closedir(h->dp);
	free(h);
	return 0;
}

static ssize_t dir_getxattr(struct target *t, const char *path, const char *name, char *buf,
			    size_t size)
{
	char full[PATH_MAX];
	int pfd, rc = call_path(t, path, full, sizeof(full), &pfd);
	ssize_t n;

	if (rc < 0)
		return rc;
	n = lgetxattr(full, name, buf, size);
	rc = n < 0 ? -errno : 0;
	call_path_done(pfd);
	return rc < 0 ? rc : n;
}

static int dir_setxattr(struct target *t, const char *path, const char *name, const char *value,
			size_t size, int flags)
{
	char full[PATH_MAX];
	int pfd, rc = call_path(t, path, full, sizeof(full), &pfd);

	if (rc == 0)
		rc = NEG(lsetxattr(full, name, value, size, flags));
	call_path_done(pfd);
	return rc;
}

static ssize_t dir_listxattr(struct target *t, const char *path, char *buf, size_t size)
{
	char full[PATH_MAX];
	int pfd, rc = call_path(t, path, full, sizeof(full), &pfd);
	ssize_t n;

	if (rc < 0)
		return rc;
	n = llistxattr(full, buf, size);
	rc = n < 0 ? -errno : 0;
	call_path_done(pfd);
	return rc < 0 ? rc : n;
}

static int dir_removexattr(struct target *t, const char *path, const char *name)
{
	char full[PATH_MAX];
	int pfd, rc = call_path(t, path, full, sizeof(full), &pfd);

	if (rc == 0)
		rc = NEG(lremovexattr(full, name));
	call_path_done(pfd);
	return rc;
}

/* Every call but attach, detach, rename, fallocate and getxattr: kernel:// targets pass
 * through as dir:// ones. */

/* ---- locks ----
 *
 * The host's own locks: each lock state is an open file description of
 * its own (the handle's file opened again), holding OFD record locks or a
 * flock. Other processes and mounts on this host see them as the kernel's
 * locks; on a kernel NFS mount (kernel://, or a dir:// over one) the
 * kernel client takes them on the server. */
struct dir_lockstate {
	int fd;
	int kind; /* BE_LOCK_POSIX or BE_LOCK_FLOCK */
};

static int dir_lock_new(struct target *t, uint64_t fh, int kind, uint64_t *ls)
{
	char proc[64];
	int hfd = DIR_FD(fh);
	int fl = fcntl(hfd, F_GETFL);
	if (fl < 0)
		return -errno;
	struct dir_lockstate *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", hfd);
	/* Read-write when we may, so that one description takes both kinds of
	 * record lock (the kernel checked the caller's own descriptor). */
	s->fd = open(proc, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (s->fd < 0)
		s->fd = open(proc, (fl & O_ACCMODE) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (s->fd < 0) {
		int e = errno;
		free(s);
		return -e;
	}
	s->kind = kind;
	*ls = (uint64_t)(uintptr_t)s;
	return 0;
}

static int dir_lock_set(struct target *t, uint64_t ls, const struct be_lock *lk, int waiting)
{
	struct dir_lockstate *s = (struct dir_lockstate *)(uintptr_t)ls;
	(void)t;
	(void)waiting;
	if (s->kind == BE_LOCK_FLOCK) {
		int op = lk->type == F_UNLCK ? LOCK_UN : lk->type == F_RDLCK ? LOCK_SH : LOCK_EX;
		if (flock(s->fd, op | LOCK_NB) == 0)
			return 0;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	struct flock fl = {.l_type = lk->type, .l_whence = SEEK_SET, .l_start = lk->start,
			   .l_len = lk->len};
	if (fcntl(s->fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EACCES ? -EAGAIN : -errno;
}

static int dir_lock_get(struct target *t, uint64_t ls, struct be_lock *lk)
{
	struct dir_lockstate *s = (struct dir_lockstate *)(uintptr_t)ls;
	(void)t;
	struct flock fl = {.l_type = lk->type, .l_whence = SEEK_SET, .l_start = lk->start,
			   .l_len = lk->len};
	if (fcntl(s->fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	lk->type = fl.l_type;
	lk->start = fl.l_start;
	lk->len = fl.l_len;
	lk->pid = fl.l_pid > 0 ? fl.l_pid : 0; /* -1: an OFD lock, no process */
	return 0;
}

/* The kernel keeps the locks for as long as the description is open. */
static int dir_lock_check(struct target *t, uint64_t ls)
{
	(void)t;
	(void)ls;
	return 0;
}

static void dir_lock_free(struct target *t, uint64_t ls)
{
	struct dir_lockstate *s = (struct dir_lockstate *)(uintptr_t)ls;
	(void)t;
	close(s->fd); /* drops its locks */
	free(s);
}

#define DIR_PASSTHROUGH_OPS \
	.lock_new = dir_lock_new, \
	.lock_set = dir_lock_set, \
	.lock_get = dir_lock_get, \
	.lock_check = dir_lock_check, \
	.lock_free = dir_lock_free, \
	.getattr = dir_getattr, \
	.setattr = dir_setattr, \
	.readlink = dir_readlink, \
	.mknod = dir_mknod, \
	.mkdir = dir_mkdir, \
	.symlink = dir_symlink, \
	.link = dir_link, \
	.unlink = dir_unlink, \
	.rmdir = dir_rmdir, \
	.statfs = dir_statfs, \
	.access = dir_access, \
	.create = dir_create, \
	.open = dir_open, \
	.read = dir_read, \
	.write = dir_write, \
	.handle_fd = dir_handle_fd, \
	.fgetattr = dir_fgetattr, \
	.fsync = dir_fsync, \
	.release = dir_release, \
	.lseek = dir_lseek, \
	.copy_range = dir_copy_range, \
	.opendir = dir_opendir, \
	.readdir = dir_readdir, \
	.fsyncdir = dir_fsyncdir, \
	.releasedir = dir_releasedir, \
	.setxattr = dir_setxattr, \
	.listxattr = dir_listxattr, \
	.removexattr = dir_removexattr,

const struct backend_ops backend_dir_ops = {
	.scheme = "dir",
	.attach = dir_attach,
	.detach = backend_dir_detach,
	.rename = dir_rename,
	.fallocate = dir_fallocate,
	.getxattr = dir_getxattr,
	DIR_PASSTHROUGH_OPS
};

/* close(2) of a descriptor of fh: the kernel NFS client writes the file's
 * dirty pages back and reports a failed write there (close-to-open), so a
 * close through efsmt reports it too and another mount then reads the data.
 * A directory target is a local file system: its close has nothing to say. */
static int kernel_flush(struct target *t, uint64_t fh)
{
	int fd = dup(DIR_FD(fh));

	(void)t;
	if (fd < 0)
		return -errno;
	return NEG(close(fd));
}

/* The kernel NFS client has no renameat2 flags (EINVAL): done as efsmt's own
 * NFS client does them, NOREPLACE as a lookup then a rename, EXCHANGE as
 * three renames through a temporary name, undone as far as possible when a
 * step fails. Neither is atomic: NFSv4 has no such RENAME. */
static int kernel_rename(struct target *t, const char *from, const char *to, unsigned flags)
{
	int dfd = D(t)->rootfd;
	struct stat st;

	if (flags == 0 || (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    flags == (RENAME_NOREPLACE | RENAME_EXCHANGE))
		return dir_rename(t, from, to, flags);
	if (flags & RENAME_NOREPLACE) {
		if (fstatat(dfd, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0)
			return -EEXIST;
		if (errno != ENOENT)
			return -errno;
		return dir_rename(t, from, to, 0);
	}
	/* EXCHANGE: both must exist, as renameat2 requires */
	if (fstatat(dfd, rel(from), &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstatat(dfd, rel(to), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	char tmp[BE_PATH_MAX];
	const char *slash = strrchr(from, '/');
	unsigned long long rnd = ((unsigned long long)random() << 31) ^ (unsigned long long)random();
	int n = snprintf(tmp, sizeof(tmp), "%.*s/.efsmt-xchg-%016llx", (int)(slash - from), from,
			 rnd);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	int rc = dir_rename(t, from, tmp, 0);
	if (rc < 0)
		return rc;
	rc = dir_rename(t, to, from, 0);
	if (rc < 0) {
		dir_rename(t, tmp, from, 0);
		return rc;
	}
	rc = dir_rename(t, tmp, to, 0);
	if (rc < 0) {
		dir_rename(t, from, to, 0);
		dir_rename(t, tmp, from, 0);
	}
	return rc;
}

/* NFSv4.1 has no ALLOCATE: plain allocation (mode 0) writes zeros from the
 * end of the file to the end of the range, as efsmt's own NFS client does;
 * other modes stay EOPNOTSUPP. */
#define KERNEL_FALLOCATE_CHUNK (1 << 20) /* bytes per write */
static int kernel_fallocate(struct target *t, uint64_t fh, int mode, off_t off, off_t len)
{
	int fd = DIR_FD(fh);
	int rc = dir_fallocate(t, fh, mode, off, len);
	struct stat st;

	if (rc != -EOPNOTSUPP || mode != 0)
		return rc;
	if (off < 0 || len <= 0 || off > INT64_MAX - len)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	off_t from = st.st_size, end = off + len;
	char *zeros = from < end ? calloc(1, KERNEL_FALLOCATE_CHUNK) : NULL;
	if (from < end && !zeros)
		return -ENOMEM;
	while (from < end) {
		size_t n = end - from < KERNEL_FALLOCATE_CHUNK ? (size_t)(end - from)
							       : KERNEL_FALLOCATE_CHUNK;
		ssize_t w = pwrite(fd, zeros, n, from);
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			free(zeros);
			return rc;
		}
		from += w;
	}
	free(zeros);
	/* allocated means on the server, as ALLOCATE would have it */
	return NEG(fdatasync(fd));
}

/* NFSv4.1 has no user extended attributes: every file has none (ENODATA),
 * as on nfs:// targets, rather than the kernel client's EOPNOTSUPP. */
static ssize_t kernel_getxattr(struct target *t, const char *path, const char *name, char *buf,
			       size_t size)
{
	ssize_t rc = dir_getxattr(t, path, name, buf, size);

	return rc == -EOPNOTSUPP ? -ENODATA : rc;
}

const struct backend_ops backend_kernel_ops = {
	.scheme = "kernel",
	.attach = backend_kernel_attach,
	.detach = backend_kernel_detach,
	.flush = kernel_flush,
	.abort = backend_kernel_abort,
	.rename = kernel_rename,
	.fallocate = kernel_fallocate,
	.getxattr = kernel_getxattr,
	DIR_PASSTHROUGH_OPS
};
