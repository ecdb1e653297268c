/* The parallel directory walk behind `efsmt-provisioner count` (walk.h).
 *
 * Threads share one stack of directories to read (mutex + condvar; one lock
 * round per directory, not per entry). A directory is a node: its parent,
 * its name and, while some of its subdirectories are not opened yet, its open
 * descriptor, so that they are opened with openat(parent, name) and no path
 * is ever built except for an error message: depth and PATH_MAX do not
 * matter. The descriptor is closed when the last subdirectory has been
 * opened. How many are kept at once is bounded by a budget taken from
 * RLIMIT_NOFILE; above it a directory closes its descriptor at once and its
 * subdirectories are reopened name by name from the root (slow, but only on
 * trees that are both wide and very deep). Counters are per thread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "walk.h"

/* With a warm cache the walk is CPU bound: on 2 cores, 2 threads count 1 M
 * files in 0.09 s and 4 to 16 threads neither help nor hurt. When each
 * getdents64 waits for I/O (a cold cache here; on EFS every call is a network
 * round trip) threads overlap the waits: cold, 8 threads took 0.29 s against
 * 0.54 s for 2 (bench/run-walk.sh). Hence 8. */
#define WALK_DEFAULT_THREADS 8
#define WALK_MAX_THREADS     256
/* getdents64 buffer per thread: ~8,000 short names per call. On a directory
 * of 200,000 entries 32 KiB took 2x and 64 KiB 1.3x as long; 1 MiB no less. */
#define WALK_BUF_BYTES (256 * 1024)
/* Descriptors a worker holds besides the kept ones: the directory it reads
 * and the two of a reopen from the root. */
#define WALK_FDS_PER_THREAD 3
#define WALK_STACK_MIN	    1024

#define WALK_ROOT_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#define WALK_DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define WALK_ENV_STAT	"EFSMT_WALK_FORCE_STAT"

/* The kernel's record, as getdents64(2) returns it. */
struct walk_dirent {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

struct wnode {
	struct wnode *parent; /* NULL for the root */
	atomic_uint refs;     /* 1 until read, plus one per child node */
	atomic_uint unopened; /* children not opened yet, while fd is kept */
	int fd;		      /* kept for the children (the root: to read), or -1 */
	size_t depth;	      /* the root is 0 */
	char name[];
};

struct walk {
	const char *root;
	bool force_stat;
	int fd_budget;
	atomic_int kept_fds;

	pthread_mutex_t lock; /* the stack, busy, waiting, failed */
	pthread_cond_t cond;
	struct wnode **stack;
	size_t n, cap;
	int busy, waiting;
	int failed; /* 0 or -errno: stop */

	pthread_mutex_t err_lock;
	unsigned reported;
	void (*on_error)(const char *path, int err, void *arg);
	void *arg;
};

struct worker {
	struct walk *w;
	pthread_t tid;
	uint64_t files, dirs, other, unreadable;
	uint64_t untyped; /* counted in dirs by a parent, but find has no type for them */
	char *buf;
	struct wnode **kids; /* subdirectories of the directory just read */
	size_t nkids, kidcap;
} __attribute__((aligned(64))); /* counters of two threads never share a line */

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- nodes */

static struct wnode *node_new(struct wnode *parent, const char *name, size_t len)
{
	struct wnode *n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return NULL;
	n->parent = parent;
	atomic_init(&n->refs, 1);
	atomic_init(&n->unopened, 0);
	n->fd = -1;
	n->depth = parent ? parent->depth + 1 : 0;
	memcpy(n->name, name, len + 1);
	return n;
}

/* Drops one reference; a node freed drops its reference on its parent. */
static void node_release(struct wnode *n)
{
	while (n && atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1) {
		struct wnode *parent = n->parent;
		if (n->fd >= 0)
			close(n->fd);
		free(n);
		n = parent;
	}
}

/* Child n no longer needs its parent's descriptor: the last one closes it. */
static void node_opened(struct walk *w, struct wnode *n)
{
	struct wnode *p = n->parent;
	if (!p || p->fd < 0)
		return;
	if (atomic_fetch_sub_explicit(&p->unopened, 1, memory_order_acq_rel) == 1) {
		close(p->fd);
		p->fd = -1;
		atomic_fetch_sub_explicit(&w->kept_fds, 1, memory_order_relaxed);
	}
}

/* ROOT/a/b/..., for error messages only; NULL without memory. */
static char *node_path(const struct walk *w, const struct wnode *n)
{
	size_t rlen = strlen(w->root), len = rlen;
	bool slash = rlen > 0 && w->root[rlen - 1] == '/';
	for (const struct wnode *c = n; c->parent; c = c->parent)
		len += 1 + strlen(c->name);
	if (slash && n->parent)
		len--;
	char *path = malloc(len + 1);
	if (!path)
		return NULL;
	path[len] = '\0';
	size_t end = len;
	for (const struct wnode *c = n; c->parent; c = c->parent) {
		size_t l = strlen(c->name);
		end -= l;
		memcpy(path + end, c->name, l);
		if (c->parent->parent || !slash)
			path[--end] = '/';
	}
	memcpy(path, w->root, rlen);
	return path;
}

static void walk_report(struct walk *w, const struct wnode *n, int err)
{
	pthread_mutex_lock(&w->err_lock);
	if (w->on_error && w->reported < WALK_MAX_ERRORS) {
		w->reported++;
		char *path = node_path(w, n);
		w->on_error(path ? path : n->name, err, w->arg);
		free(path);
	}
	pthread_mutex_unlock(&w->err_lock);
}

/* ---------------------------------------------------------------- opening */

/* The slow way, for a directory whose parent kept no descriptor: from the
 * root, one name at a time (never a path, so PATH_MAX does not apply). */
static int open_from_root(struct walk *w, const struct wnode *n)
{
	const struct wnode **chain = malloc((n->depth + 1) * sizeof(*chain));
	if (!chain)
		return -ENOMEM;
	const struct wnode *c = n;
	for (size_t i = n->depth; i > 0; i--, c = c->parent)
		chain[i - 1] = c;
	int fd = open(w->root, WALK_ROOT_FLAGS);
	for (size_t i = 0; i < n->depth && fd >= 0; i++) {
		int next = openat(fd, chain[i]->name, WALK_DIR_FLAGS);
		int err = errno;
		close(fd);
		errno = err;
		fd = next;
	}
	free(chain);
	return fd >= 0 ? fd : -errno;
}

/* A descriptor to read n, or -errno. */
static int node_open(struct walk *w, struct wnode *n)
{
	struct wnode *p = n->parent;
	if (!p) { /* opened by walk_count */
		int fd = n->fd;
		n->fd = -1;
		return fd;
	}
	if (p->fd < 0)
		return open_from_root(w, n);
	int fd = openat(p->fd, n->name, WALK_DIR_FLAGS);
	return fd >= 0 ? fd : -errno;
}

/* find lstat()s every directory it meets; when that fails (its parent has r
 * but not x) it gives the entry no type: neither -type f nor -type d. */
static bool lstat_works(struct walk *w, const struct wnode *n)
{
	const struct wnode *p = n->parent;
	struct stat st;
	if (!p)
		return true;
	int pfd = p->fd >= 0 ? p->fd : open_from_root(w, p);
	if (pfd < 0)
		return true; /* cannot tell: leave it a directory */
	bool ok = fstatat(pfd, n->name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno == ENOENT;
	if (pfd != p->fd)
		close(pfd);
	return ok;
}

/* ---------------------------------------------------------------- reading */

static bool take_fd_slot(struct walk *w)
{
	if (atomic_fetch_add_explicit(&w->kept_fds, 1, memory_order_relaxed) < w->fd_budget)
		return true;
	atomic_fetch_sub_explicit(&w->kept_fds, 1, memory_order_relaxed);
	return false;
}

static int add_kid(struct worker *wk, struct wnode *n, const char *name)
{
	if (wk->nkids == wk->kidcap) {
		size_t cap = wk->kidcap ? 2 * wk->kidcap : WALK_STACK_MIN;
		struct wnode **k = realloc(wk->kids, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		wk->kids = k;
		wk->kidcap = cap;
	}
	struct wnode *kid = node_new(n, name, strlen(name));
	if (!kid)
		return -ENOMEM;
	wk->kids[wk->nkids++] = kid;
	return 0;
}

/* DT_UNKNOWN (some file systems, or the testing hook): ask the inode. */
static int entry_type(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return IFTODT(st.st_mode);
}

static inline bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Counts the entries of the open directory n and collects its
 * subdirectories in wk->kids. Returns 0, -errno for an error of this
 * directory (already counted and reported), or -ENOMEM (fatal). */
static int read_dir(struct worker *wk, struct wnode *n, int fd)
{
	struct walk *w = wk->w;
	int type_err = 0;
	for (;;) {
		long got = syscall(SYS_getdents64, fd, wk->buf, WALK_BUF_BYTES);
		if (got == 0)
			break;
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (long off = 0; off < got;) {
			struct walk_dirent *d = (struct walk_dirent *)(wk->buf + off);
			off += d->d_reclen;
			if (is_dot_or_dotdot(d->d_name))
				continue;
			int type = w->force_stat ? DT_UNKNOWN : d->d_type;
			if (type == DT_UNKNOWN) {
				type = entry_type(fd, d->d_name);
				/* Gone since the listing: find would not see it either. A
				 * type that cannot be learnt is "other" to find, and an error. */
				if (type == -ENOENT)
					continue;
				if (type < 0)
					type_err = type;
			}
			if (type == DT_REG) {
				wk->files++;
			} else if (type == DT_DIR) {
				wk->dirs++;
				if (add_kid(wk, n, d->d_name) < 0)
					return -ENOMEM;
			} else {
				wk->other++;
			}
		}
	}
	return type_err;
}

/* Opens, reads and releases n; its subdirectories are left in wk->kids. */
static int visit(struct worker *wk, struct wnode *n)
{
	struct walk *w = wk->w;
	int fd = node_open(w, n);
	int err = fd < 0 ? fd : 0;
	if (fd < 0 && !lstat_works(w, n))
		wk->untyped++;
	node_opened(w, n);
	wk->nkids = 0;
	if (fd >= 0)
		err = read_dir(wk, n, fd);
	if (err == -ENOMEM) {
		for (size_t i = 0; i < wk->nkids; i++)
			node_release(wk->kids[i]);
		wk->nkids = 0;
		if (fd >= 0)
			close(fd);
		node_release(n);
		return -ENOMEM;
	}
	if (err < 0) {
		wk->unreadable++;
		walk_report(w, n, -err);
	}
	if (fd >= 0) {
		if (wk->nkids && take_fd_slot(w)) {
			atomic_store_explicit(&n->unopened, wk->nkids, memory_order_relaxed);
			n->fd = fd; /* published with the children, under w->lock */
		} else {
			close(fd);
		}
	}
	if (wk->nkids)
		atomic_fetch_add_explicit(&n->refs, wk->nkids, memory_order_relaxed);
	node_release(n);
	return 0;
}

/* ---------------------------------------------------------------- the stack */

/* Under w->lock. */
static int push_kids(struct walk *w, struct worker *wk)
{
	if (wk->nkids == 0)
		return 0;
	if (w->n + wk->nkids > w->cap) {
		size_t cap = w->cap;
		while (cap < w->n + wk->nkids)
			cap *= 2;
		struct wnode **s = realloc(w->stack, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		w->stack = s;
		w->cap = cap;
	}
	memcpy(w->stack + w->n, wk->kids, wk->nkids * sizeof(*wk->kids));
	w->n += wk->nkids;
	wk->nkids = 0;
	return 0;
}

/* Under w->lock, after pushing: the pusher takes one itself. */
static void wake_for(struct walk *w, size_t pushed)
{
	size_t idle = w->waiting;
	for (size_t i = 1; i < pushed && i <= idle; i++)
		pthread_cond_signal(&w->cond);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct walk *w = wk->w;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->n == 0 && w->busy > 0 && !w->failed) {
			w->waiting++;
			pthread_cond_wait(&w->cond, &w->lock);
			w->waiting--;
		}
		if (w->n == 0 || w->failed)
			break;
		struct wnode *n = w->stack[--w->n];
		w->busy++;
		pthread_mutex_unlock(&w->lock);
		int err = visit(wk, n);
		pthread_mutex_lock(&w->lock);
		w->busy--;
		size_t pushed = wk->nkids;
		if (!err && !w->failed)
			err = push_kids(w, wk);
		if (err && !w->failed)
			w->failed = err;
		if (w->failed) {
			for (size_t i = 0; i < wk->nkids; i++)
				node_release(wk->kids[i]);
			wk->nkids = 0;
			break;
		}
		wake_for(w, pushed);
	}
	/* the walk is over (or failed): nobody waits for nothing */
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---------------------------------------------------------------- the walk */

/* Half of RLIMIT_NOFILE for kept directories, the rest for the workers and
 * for the caller (the provisioner's sockets and logs). */
static int fd_budget(int nthreads)
{
	struct rlimit rl;
	long limit = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1 << 20) ? (1 << 20)
										: (long)rl.rlim_cur;
	long budget = limit / 2 - (long)nthreads * WALK_FDS_PER_THREAD;
	return budget > 0 ? (int)budget : 0;
}

static void walk_free(struct walk *w, struct worker *wk, int nthreads)
{
	for (size_t i = 0; i < w->n; i++)
		node_release(w->stack[i]);
	for (int i = 0; i < nthreads; i++) {
		free(wk[i].buf);
		free(wk[i].kids);
	}
	free(wk);
	free(w->stack);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->err_lock);
}

static int walk_init(struct walk *w, const char *root, int fd, int nthreads)
{
	memset(w, 0, sizeof(*w));
	w->root = root;
	const char *force = getenv(WALK_ENV_STAT);
	w->force_stat = force && strcmp(force, "1") == 0;
	w->fd_budget = fd_budget(nthreads);
	atomic_init(&w->kept_fds, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_init(&w->err_lock, NULL);
	w->stack = malloc(WALK_STACK_MIN * sizeof(*w->stack));
	struct wnode *top = node_new(NULL, "", 0);
	if (!w->stack || !top) {
		free(top);
		close(fd);
		walk_free(w, NULL, 0);
		return -ENOMEM;
	}
	w->cap = WALK_STACK_MIN;
	top->fd = fd;
	w->stack[w->n++] = top;
	return 0;
}

int walk_count(const char *root, int nthreads, struct walk_result *res,
	       void (*on_error)(const char *path, int err, void *arg), void *arg)
{
	memset(res, 0, sizeof(*res));
	double start = now_seconds();
	if (nthreads <= 0)
		nthreads = WALK_DEFAULT_THREADS;
	if (nthreads > WALK_MAX_THREADS)
		nthreads = WALK_MAX_THREADS;
	int fd = open(root, WALK_ROOT_FLAGS);
	if (fd < 0)
		return -errno;

	/* fd belongs to the walk from here on */
	struct walk w;
	int rc = walk_init(&w, root, fd, nthreads);
	if (rc < 0)
		return rc;
	w.on_error = on_error;
	w.arg = arg;
	struct worker *wk = aligned_alloc(64, nthreads * sizeof(*wk));
	if (!wk) {
		walk_free(&w, NULL, 0);
		return -ENOMEM;
	}
	memset(wk, 0, nthreads * sizeof(*wk));
	int started = 0;
	for (; started < nthreads; started++) {
		wk[started].w = &w;
		wk[started].buf = malloc(WALK_BUF_BYTES);
		if (!wk[started].buf ||
		    pthread_create(&wk[started].tid, NULL, worker_main, &wk[started]) != 0)
			break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(wk[i].tid, NULL);
	rc = started ? w.failed : -EAGAIN;

	res->dirs = 1; /* root */
	for (int i = 0; i < nthreads; i++) {
		res->files += wk[i].files;
		res->dirs += wk[i].dirs - wk[i].untyped;
		res->other += wk[i].other + wk[i].untyped;
		res->unreadable += wk[i].unreadable;
	}
	walk_free(&w, wk, nthreads);
	if (rc < 0)
		memset(res, 0, sizeof(*res));
	res->seconds = now_seconds() - start;
	return rc;
}

/* ---------------------------------------------------------------- the command */

#define CMD_PREFIX "efsmt-provisioner: count: "

/* A path on one line: control characters as \xHH. */
static char *escape_line(const char *s)
{
	char *out = malloc(4 * strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static void cmd_error(const char *path, int err, void *arg)
{
	char *p = escape_line(path);
	fprintf(stderr, CMD_PREFIX "cannot read %s: %s\n", p ? p : path, strerror(err));
	free(p);
}

int walk_cmd_count(const char *path, int nthreads, int json)
{
	struct walk_result r;
	int rc = walk_count(path, nthreads, &r, cmd_error, NULL);
	if (rc < 0) {
		char *p = escape_line(path);
		const char *what = rc == -ENOMEM || rc == -EAGAIN ? "cannot count" : "cannot open";
		fprintf(stderr, CMD_PREFIX "%s %s: %s%s\n", what, p ? p : path, strerror(-rc),
			rc == -ENOTDIR ? " (count needs a directory)" : "");
		free(p);
		return 2;
	}
	if (r.unreadable > WALK_MAX_ERRORS)
		fprintf(stderr, CMD_PREFIX "%" PRIu64 " more directories could not be read\n",
			r.unreadable - WALK_MAX_ERRORS);
	if (json)
		printf("{\"files\":%" PRIu64 ",\"dirs\":%" PRIu64 ",\"other\":%" PRIu64
		       ",\"unreadable\":%" PRIu64 ",\"seconds\":%.3f}\n",
		       r.files, r.dirs, r.other, r.unreadable, r.seconds);
	else
		printf("files=%" PRIu64 " dirs=%" PRIu64 " other=%" PRIu64 " unreadable=%" PRIu64
		       " seconds=%.3f\n",
		       r.files, r.dirs, r.other, r.unreadable, r.seconds);
	if (fflush(stdout) != 0) {
		fprintf(stderr, CMD_PREFIX "cannot write the result: %s\n", strerror(errno));
		return 2;
	}
	return r.unreadable ? 1 : 0;
}
