/*
 * backend_nfs.c - a target reached with efsmt's own NFSv4.1 client
 * (nfs/nfs4.h): nfs://HOST[:PORT][/EXPORT-PATH].
 *
 * Identity: every call goes out as AUTH_SYS with the identity of the
 * process that made the request: the be_caller where the call has one, else
 * the calling thread's fsuid, fsgid and supplementary groups (the core takes
 * the caller's on each worker thread, see cred.h). The server thus checks
 * permissions and owns new files as for a kernel client. AUTH_SYS carries
 * 16 groups at most: a caller's further groups are not seen by the server.
 * An open file keeps its opener's identity for READ, WRITE, COMMIT and
 * CLOSE, as the kernel client uses the open file's credentials.
 *
 * Filehandle cache: path -> filehandle (per uid, so that a cached handle
 * never skips a directory search permission check), each entry trusted for
 * NFS_FH_CACHE_TTL_MS after it was learned (the same order as the default
 * entry_timeout, so it adds little staleness to what the kernel caches
 * anyway). Our own unlink, rmdir and rename drop the affected paths (a
 * directory's whole subtree); a cached handle the server calls stale is
 * dropped and the call retried once from a fresh lookup. A change made
 * through another target can thus be unseen here for at most the TTL.
 * Devices and sockets are always looked up by name (fh_cacheable).
 * Attributes are not cached: every getattr asks the server.
 *
 * Writes go out UNSTABLE4; flush (close(2)), fsync and release COMMIT them
 * (release in the same round trip as CLOSE, as the kernel client commits on
 * close; EFS answers every WRITE as FILE_SYNC4, so there it costs nothing)
 * and a changed write verifier (the server lost uncommitted data) turns
 * into EIO there. backend_nfs_set_commit_on_close(0) leaves it to fsync.
 * The first write of an empty file, if small, asks FILE_SYNC4 instead
 * (NFS_SYNC_FIRST_MAX): a small file then needs no COMMIT at all, as on EFS.
 *
 * Write-behind: a write is copied, queued to a pool of writer threads and
 * answered at once, so one writer keeps several WRITEs in flight (the
 * kernel sends one FUSE write at a time per writer). Each open file has a
 * window of NFS_WB_WINDOW writes; past it the write waits. The first WRITE
 * that fails becomes the file's sticky error, returned by every later
 * write, flush and fsync. Read-your-writes: an operation that reads data or
 * attributes of a file (READ, GETATTR, SETATTR, OPEN, readdirplus) first
 * waits until that file's writes in flight are answered, whichever handle
 * sent them (matched by filehandle; readdirplus waits for every write
 * queued before it), so neither the kernel nor another reader ever sees a
 * size or data older than a write that was already acknowledged.
 * Overlapping writes never fly together. Other clients see the data after
 * close(2) or fsync(2), as with the kernel NFS client (close-to-open).
 *
 * Gathering: the kernel sends each write(2) as it comes (no writeback
 * cache), so a file written in 4 KiB pieces would cost a WRITE per piece.
 * A small write is instead held, unsent, in a buffer of NFS_GATHER_MAX
 * bytes, and the writes that continue it are added to it; it goes to the
 * writers when it is full, when a write elsewhere in the file comes, when
 * anyone waits for the file's writes (the waits above), or after
 * NFS_GATHER_MS. close(2) and fsync(2) send it from their own thread, as
 * FILE_SYNC4 when it is all the file has uncommitted (no COMMIT after it).
 *
 * Lanes: NFS_LANES connections (each its own client ID and session) per
 * target; path operations take them in turn, an open file stays on the
 * lane that opened it (its state belongs to that client ID).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backend_nfs.h"
#include "base/procgroups.h"
#include "base/log.h"
#include "nfs/nfs4.h"
#include "nfs/wait.h"
#include "backends/target.h"

#define NFS_FH_CACHE_TTL_MS 1000
#define NFS_FH_CACHE_BUCKETS 4096
#define NFS_FH_CACHE_MAX 65536 /* entries; past this the cache is emptied */
#define NFS_LANES_DEFAULT 2
#define NFS_LANES_MAX 16
#define NFS_HINT_UNREACHABLE "is port 2049 open in the mount target's security group?"
#define NFS_DIR_DOT 1    /* readdir offset after "." */
#define NFS_DIR_DOTDOT 2 /* readdir offset after ".."; NFS cookies are > 2 */
#define NFS_THREAD_GROUPS_MAX 1024
#define NFS_DOTDOT_INO 1 /* the parent's number is not known here */
#define NFS_FALLOCATE_CHUNK (1u << 20) /* zeros per WRITE when allocating */
/* A read-only OPEN also reads this much (less if the server's reply cache
 * takes less, see nfs_cached_read_max): a small file is then opened and
 * read in one round trip (its data as of the open: close-to-open). */
#define NFS_PREFETCH_BYTES (64u << 10)
/* The kernel asks an open file's attributes right after opening it (its
 * own have expired): the ones the OPEN returned answer that for this long,
 * unless a write or setattr through the handle, or any write or change of
 * names or attributes through this daemon (nfs_attr_gen), came in between. */
#define NFS_OPEN_ATTR_TTL_MS 200
/* Write-behind: writes in flight per open file (each up to a FUSE write,
 * 1 MiB), and writer threads for the whole daemon (started as needed). */
#define NFS_WB_WINDOW 8
#define NFS_WB_THREADS_MAX 32
/* Large writes' copies are kept for reuse, up to this many: a fresh
 * megabyte from malloc is a fresh mmap, and faulting its pages in cost more
 * than copying into it. */
#define NFS_WB_BIG (1u << 20) /* bytes: writes this large take a pooled copy */
#define NFS_WB_POOL_MAX 16
/* The first write to an empty file, at offset 0 and at most this long, is
 * sent FILE_SYNC4: a small file written whole is then durable when that
 * WRITE is answered, and the COMMIT that close(2) would wait for (one more
 * round trip) is not needed. A file that goes on growing pays one server
 * sync of its first bytes. */
#define NFS_SYNC_FIRST_MAX (256u << 10) /* bytes */
/* Gathering (see the top): writes of at most half NFS_GATHER_MAX are held;
 * held buffers in the whole daemon at most NFS_GATHER_FILES_MAX (64 MiB). */
#define NFS_GATHER_MAX (64u << 10)
#define NFS_GATHER_MS 100
#define NFS_GATHER_FILES_MAX 1024

static atomic_int nfs_lanes = NFS_LANES_DEFAULT;
static const struct tls_conf *nfs_tls; /* set once before any target attaches */
static int (*nfs_tls_prepare)(char *err, size_t errlen);
static atomic_int nfs_commit_on_close = 1;
/* Counts writes through this daemon: a file's start read with its OPEN
 * serves reads only while no write came in since. */
static atomic_uint nfs_write_gen;
/* Counts the other changes through this daemon that move some file's
 * attributes (a name removed or added: nlink; a setattr; a truncating
 * open): the attributes an OPEN returned answer fgetattr only while
 * neither count moved (an unlinked open file must show nlink 0 at once). */
static atomic_uint nfs_attr_gen;

static void attrs_changed(void)
{
	atomic_fetch_add(&nfs_attr_gen, 1);
}

/* For the option parser: connections per target opened from now on. */
void backend_nfs_set_lanes(int n)
{
	atomic_store(&nfs_lanes, n < 1 ? 1 : n > NFS_LANES_MAX ? NFS_LANES_MAX : n);
}

void backend_nfs_set_tls(const struct tls_conf *conf, int (*prepare)(char *err, size_t errlen))
{
	nfs_tls = conf;
	nfs_tls_prepare = prepare;
}

void backend_nfs_set_commit_on_close(int on)
{
	atomic_store(&nfs_commit_on_close, on ? 1 : 0);
}

struct fh_entry {
	struct fh_entry *next;
	long long expires_ms;
	uint64_t who; /* who looked it up: auth_key of its credentials */
	struct nfs_fh fh;
	char path[]; /* NUL-terminated */
};

struct nfs_target {
	struct nfs_client *lane[NFS_LANES_MAX];
	int nlanes;
	struct tls_target *tls; /* shared by the lanes: one session cache */
	char probe_err[256];	/* the reconnect failure last logged (probe thread) */
	atomic_uint next_lane;
	struct nfs_fh root;
	uint32_t maxname; /* the export's f_namemax, from the attach */
	pthread_mutex_t cache_lock;
	struct fh_entry *bucket[NFS_FH_CACHE_BUCKETS];
	size_t cached;
};

struct nfs_file {
	struct nfs_open of; /* of.stateid changes on a re-open: read it with file_sid() */
	const char *tid;    /* the target's id, for the log */
	unsigned state_gen; /* re-opens so far, under lock */
	struct rpc_auth auth; /* the opener's */
	int lane;
	int append; /* O_APPEND: each write goes to the server's end of file */
	int direct; /* O_DIRECT: no prefetch; each write stable on the server before it returns */
	struct stat open_attr; /* from the OPEN, for an fgetattr right after it */
	long long open_attr_ms; /* when; 0 once a change through us made it stale */
	uint8_t *pre;	/* read-only opens: the file's start, read with the OPEN */
	size_t pre_len;
	int pre_eof;
	/* nfs_write_gen at the open: pre and open_attr are stale once it moved */
	unsigned pre_gen;
	unsigned attr_gen; /* nfs_attr_gen at the open: open_attr is stale once it moved */
	pthread_mutex_t append_lock;
	pthread_mutex_t lock;
	int unstable; /* writes not yet committed */
	int have_verf;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	int lost; /* the verifier changed: uncommitted data is gone */
	int sync_first; /* empty at open, not written yet: see NFS_SYNC_FIRST_MAX */
	/* Write-behind, under wb_lock: jobs queued, in flight or held, the first
	 * error one of them met, and the held (gathering) one. */
	int wb_jobs;
	int wb_err;
	struct wb_job *held;
	/* Lock states holding server locks through this open: such an open
	 * is not opened again after the server lost it (see file_reopen). */
	atomic_int locked;
};

struct dir_entry {
	char *name;
	uint64_t cookie;
	struct nfs_attr attr;
};

struct nfs_dir {
	struct nfs_fh fh;
	struct stat self;
	struct rpc_auth auth; /* the opener's */
	int lane;
	pthread_mutex_t lock;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	/* The last READDIR's entries, so a small FUSE buffer does not cost a
	 * READDIR per call. */
	struct dir_entry *ents;
	size_t n, cap;
	uint64_t batch_cookie; /* the cookie this batch was read from */
	int batch_valid;
	int batch_eof;
};

#define NT(t) ((struct nfs_target *)(t)->priv)

static struct nfs_client *pick_lane(struct nfs_target *nt, int *lane)
{
	unsigned i = atomic_fetch_add(&nt->next_lane, 1) % (unsigned)nt->nlanes;
	if (lane)
		*lane = (int)i;
	return nt->lane[i];
}

/* ---- credentials ---- */

/* AUTH_SYS carries RPC_AUTH_SYS_MAX_GROUPS groups. For a caller with more,
 * the ones that can matter go first: the groups of the files a call is
 * about and of their directories, learned just before with a GETATTR as
 * root (prefer_groups, NFS_PREFER_MAX of them); then the rest, in the
 * caller's order, while room is left. */
#define NFS_PREFER_MAX 4
static __thread gid_t prefer[NFS_PREFER_MAX];
static __thread int nprefer;
static __thread int many_groups; /* the caller has more than AUTH_SYS carries */

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
static const struct rpc_auth *req_auth(const struct be_caller *c, struct rpc_auth *a)
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
		auth_groups(a, list, n < 0 ? 0 : n > NFS_THREAD_GROUPS_MAX ? NFS_THREAD_GROUPS_MAX : n);
	}
	return a;
}

/* A filehandle cached for one identity is not used for another: the
 * lookups that found it checked that identity's search permissions. */
static uint64_t auth_key(const struct rpc_auth *a)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over uid, gid, groups */
	uint32_t v[2 + RPC_AUTH_SYS_MAX_GROUPS];
	size_t n = 0;
	v[n++] = a->uid;
	v[n++] = a->gid;
	for (uint32_t i = 0; i < a->ngroups && i < RPC_AUTH_SYS_MAX_GROUPS; i++)
		v[n++] = a->groups[i];
	for (size_t i = 0; i < n * sizeof(uint32_t); i++)
		h = (h ^ ((const uint8_t *)v)[i]) * 1099511628211ull;
	return h;
}

/* ---- filehandle cache ---- */

static unsigned path_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return (unsigned)(h % NFS_FH_CACHE_BUCKETS);
}

static void cache_clear_locked(struct nfs_target *nt)
{
	for (int b = 0; b < NFS_FH_CACHE_BUCKETS; b++) {
		struct fh_entry *e = nt->bucket[b];
		while (e) {
			struct fh_entry *n = e->next;
			free(e);
			e = n;
		}
		nt->bucket[b] = NULL;
	}
	nt->cached = 0;
}

static int cache_get(struct nfs_target *nt, uint64_t who, const char *path, size_t n,
		     struct nfs_fh *fh)
{
	int hit = 0;
	long long now = nfs_now_ms();
	pthread_mutex_lock(&nt->cache_lock);
	for (struct fh_entry *e = nt->bucket[path_hash(path, n)]; e; e = e->next) {
		if (strncmp(e->path, path, n) == 0 && e->path[n] == '\0') {
			if (e->expires_ms > now && e->who == who) {
				*fh = e->fh;
				hit = 1;
			}
			break;
		}
	}
	pthread_mutex_unlock(&nt->cache_lock);
	return hit;
}

static void cache_put(struct nfs_target *nt, uint64_t who, const char *path,
		      const struct nfs_fh *fh)
{
	size_t n = strlen(path);
	unsigned b = path_hash(path, n);
	pthread_mutex_lock(&nt->cache_lock);
	struct fh_entry *e;
	for (e = nt->bucket[b]; e; e = e->next)
		if (strcmp(e->path, path) == 0)
			break;
	if (!e) {
		if (nt->cached >= NFS_FH_CACHE_MAX)
			cache_clear_locked(nt);
		e = malloc(sizeof *e + n + 1);
		if (!e) {
			pthread_mutex_unlock(&nt->cache_lock);
			return;
		}
		memcpy(e->path, path, n + 1);
		e->next = nt->bucket[b];
		nt->bucket[b] = e;
		nt->cached++;
	}
	e->fh = *fh;
	e->who = who;
	e->expires_ms = nfs_now_ms() + NFS_FH_CACHE_TTL_MS;
	pthread_mutex_unlock(&nt->cache_lock);
}

/* Drop path and, if subtree, everything below it. */
static void cache_forget(struct nfs_target *nt, const char *path, int subtree)
{
	size_t n = strlen(path);
	pthread_mutex_lock(&nt->cache_lock);
	if (subtree) {
		for (int b = 0; b < NFS_FH_CACHE_BUCKETS; b++) {
			struct fh_entry **pp = &nt->bucket[b];
			while (*pp) {
				struct fh_entry *e = *pp;
				if (strncmp(e->path, path, n) == 0 &&
				    (e->path[n] == '\0' || e->path[n] == '/')) {
					*pp = e->next;
					free(e);
					nt->cached--;
				} else {
					pp = &e->next;
				}
			}
		}
	} else {
		struct fh_entry **pp = &nt->bucket[path_hash(path, n)];
		while (*pp) {
			struct fh_entry *e = *pp;
			if (strcmp(e->path, path) == 0) {
				*pp = e->next;
				free(e);
				nt->cached--;
				break;
			}
			pp = &e->next;
		}
	}
	pthread_mutex_unlock(&nt->cache_lock);
}

/* Drop path and all its ancestors (one of them went stale). */
static void cache_forget_chain(struct nfs_target *nt, const char *path)
{
	char buf[BE_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (;;) {
		cache_forget(nt, buf, 0);
		char *slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			break;
		*slash = '\0';
	}
}

/* ---- path resolution ---- */

/* Whether a filehandle may be cached (used later without a LOOKUP). Not
 * a device or socket: nfs-ganesha's VFS backend reaches those through the
 * directory and name it last looked them up by, and a GETATTR by handle
 * after that name went (an unlink of one hard link, here or through
 * another server) fails with NFS4ERR_INVAL, after which even a LOOKUP of
 * the remaining name does. Reached by name in the same COMPOUND (LOOKUP,
 * GETATTR), such a file works; it costs a LOOKUP per call, and such
 * files are few. */
static int fh_cacheable(mode_t mode)
{
	return !S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISSOCK(mode);
}

/* path -> filehandle: the cache, else one COMPOUND of LOOKUPs from the
 * nearest cached ancestor. attr (may be NULL) is filled only when a lookup
 * was made (*fresh set). */
static int resolve(struct nfs_target *nt, struct nfs_client *cl, const struct rpc_auth *cr,
		   const char *path, struct nfs_fh *fh, struct nfs_attr *attr, int *fresh)
{
	size_t len = strlen(path);
	*fresh = 0;
	if (len >= BE_PATH_MAX)
		return -ENAMETOOLONG;
	if (len <= 1) {
		*fh = nt->root;
		return 0;
	}
	if (cache_get(nt, auth_key(cr), path, len, fh))
		return 0;
	/* Nearest cached ancestor. */
	struct nfs_fh base = nt->root;
	size_t cut = 0;
	for (size_t i = len; i > 1; i--) {
		if (path[i - 1] != '/' || i - 1 == 0)
			continue;
		if (cache_get(nt, cr->uid, path, i - 1, &base)) {
			cut = i - 1;
			break;
		}
	}
	struct nfs_attr tmp;
	int err = nfs_resolve(cl, cr, &base, path + cut, fh, attr ? attr : &tmp);
	if (err == -ESTALE && cut) {
		cache_forget_chain(nt, path);
		err = nfs_resolve(cl, cr, &nt->root, path, fh, attr ? attr : &tmp);
	}
	if (err)
		return err;
	*fresh = 1;
	if (fh_cacheable((attr ? attr : &tmp)->st.st_mode))
		cache_put(nt, auth_key(cr), path, fh);
	return 0;
}

/* The parent directory's handle and the last component of path. */
static int resolve_parent(struct nfs_target *nt, struct nfs_client *cl,
			  const struct rpc_auth *cr, const char *path, struct nfs_fh *dir,
			  const char **name)
{
	char buf[BE_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fresh;
	if (!slash || !slash[1])
		return -EINVAL;
	size_t n = (size_t)(slash - path);
	if (n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n);
	buf[n] = '\0';
	*name = slash + 1;
	return resolve(nt, cl, cr, n ? buf : "/", dir, NULL, &fresh);
}

static void forget_parent(struct nfs_target *nt, const char *path)
{
	char buf[BE_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	char *slash = strrchr(buf, '/');
	if (slash && slash != buf) {
		*slash = '\0';
		cache_forget_chain(nt, buf);
	}
}

/* ---- write-behind ---- */

struct wb_job {
	struct wb_job *next;  /* the queue */
	struct wb_job *fnext; /* every job not yet answered */
	struct nfs_file *f;
	struct nfs_client *cl;
	uint64_t seq; /* order of queueing */
	uint64_t off;
	size_t len;
	int stable; /* UNSTABLE4 or FILE_SYNC4 */
	int held;   /* gathering (f->held): in wb_flying but not queued */
	long long held_ms; /* when it began to gather */
	uint8_t data[];
};

static pthread_mutex_t wb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wb_work = PTHREAD_COND_INITIALIZER; /* a job was queued */
static pthread_cond_t wb_done = PTHREAD_COND_INITIALIZER; /* a job was answered */
static struct wb_job *wb_head, *wb_tail; /* queued, not yet taken by a writer */
static struct wb_job *wb_flying;	 /* queued or in flight */
static uint64_t wb_seq;			 /* jobs ever queued */
/* wb_idle: idle writers less queued jobs (below 0: jobs wait for a writer) */
static int wb_threads, wb_idle;
static int wb_held; /* held (gathering) jobs */
static atomic_int wb_count; /* jobs in wb_flying: the hot paths' cheap test */
static struct wb_job *wb_pool; /* spare jobs of NFS_WB_BIG bytes, chained by next */
static int wb_pooled;

static struct wb_job *wb_job_new(size_t size)
{
	if (size > NFS_WB_BIG / 2 && size <= NFS_WB_BIG) {
		pthread_mutex_lock(&wb_lock);
		struct wb_job *j = wb_pool;
		if (j) {
			wb_pool = j->next;
			wb_pooled--;
		}
		pthread_mutex_unlock(&wb_lock);
		return j ? j : malloc(sizeof *j + NFS_WB_BIG);
	}
	return malloc(sizeof(struct wb_job) + size);
}

/* Caller holds wb_lock. */
static void wb_job_free_locked(struct wb_job *j)
{
	if (j->len > NFS_WB_BIG / 2 && j->len <= NFS_WB_BIG && wb_pooled < NFS_WB_POOL_MAX) {
		j->next = wb_pool;
		wb_pool = j;
		wb_pooled++;
	} else {
		free(j);
	}
}

static int same_fh(const struct nfs_fh *a, const struct nfs_fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Whether a job of the file fh (and, if len, one overlapping [off, off+len))
 * is queued or in flight; caller holds wb_lock. */
static int wb_busy_locked(const struct nfs_fh *fh, uint64_t off, size_t len)
{
	for (struct wb_job *j = wb_flying; j; j = j->fnext)
		if (same_fh(&j->f->of.fh, fh) &&
		    (!len || (off < j->off + j->len && j->off < off + len)))
			return 1;
	return 0;
}

static void *wb_main(void *arg);

/* Make sure a writer thread will take a queued job: start one if none is
 * idle (up to NFS_WB_THREADS_MAX); 0, or -1 if there is no writer at all.
 * Caller holds wb_lock. */
static int wb_writer_locked(void)
{
	if (wb_idle <= 0 && wb_threads < NFS_WB_THREADS_MAX) {
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &at, wb_main, NULL) == 0) {
			wb_threads++;
			wb_idle++;
		}
		pthread_attr_destroy(&at);
	}
	return wb_threads > 0 ? 0 : -1;
}

/* Queue j (already in wb_flying) for the writers; caller holds wb_lock and
 * made sure of a writer. */
static void wb_enqueue_locked(struct wb_job *j)
{
	j->next = NULL;
	if (wb_tail)
		wb_tail->next = j;
	else
		wb_head = j;
	wb_tail = j;
	/* Taken by an idle writer: the next write starts another. */
	wb_idle--;
	pthread_cond_signal(&wb_work);
}

/* Stop gathering j: it is sent as it is. Caller holds wb_lock. */
static void wb_unhold_locked(struct wb_job *j)
{
	j->f->held = NULL;
	j->held = 0;
	wb_held--;
}

/* Hand the held jobs to the writers: those of the file fh (every one if fh
 * is NULL), or those older than NFS_GATHER_MS if expired_only. A writer
 * exists: one was made sure of when each began. Caller holds wb_lock. */
static void wb_hand_over_locked(const struct nfs_fh *fh, int expired_only)
{
	if (wb_held == 0)
		return;
	long long now = expired_only ? nfs_now_ms() : 0;
	for (struct wb_job *j = wb_flying; j; j = j->fnext) {
		if (!j->held || (fh && !same_fh(&j->f->of.fh, fh)) ||
		    (expired_only && now - j->held_ms < NFS_GATHER_MS))
			continue;
		wb_unhold_locked(j);
		(void)wb_writer_locked();
		wb_enqueue_locked(j);
	}
}

/* Wait until no write to the file fh is in flight; 1 if it had to wait. */
static int wb_wait_fh(const struct nfs_fh *fh)
{
	int waited = 0;
	if (atomic_load(&wb_count) == 0)
		return 0;
	pthread_mutex_lock(&wb_lock);
	while (wb_busy_locked(fh, 0, 0)) {
		waited = 1;
		wb_hand_over_locked(fh, 0);
		pthread_cond_wait(&wb_done, &wb_lock);
	}
	pthread_mutex_unlock(&wb_lock);
	return waited;
}

/* Wait until every write queued so far (by any file) is answered; later
 * ones may still be in flight, so a busy writer never starves the caller. */
static void wb_wait_queued(void)
{
	if (atomic_load(&wb_count) == 0)
		return;
	pthread_mutex_lock(&wb_lock);
	uint64_t upto = wb_seq;
	wb_hand_over_locked(NULL, 0);
	for (;;) {
		struct wb_job *j;
		for (j = wb_flying; j && j->seq > upto; j = j->fnext)
			;
		if (!j)
			break;
		pthread_cond_wait(&wb_done, &wb_lock);
	}
	pthread_mutex_unlock(&wb_lock);
}

static int write_all(struct nfs_client *cl, struct nfs_file *f, const uint8_t *buf, size_t len,
		     uint64_t off, int stable);
static void wb_finish(struct wb_job *j, int err);

/* Wait until every write of f is answered; the sticky error or 0. The held
 * (gathered) job is sent by this thread; commit_next: the caller COMMITs
 * next, so if that job is all f has uncommitted it goes FILE_SYNC4 and the
 * COMMIT has nothing to do. */
static int wb_drain(struct nfs_file *f, int commit_next)
{
	pthread_mutex_lock(&wb_lock);
	struct wb_job *h = f->held;
	int alone = f->wb_jobs == 1;
	if (h)
		wb_unhold_locked(h);
	pthread_mutex_unlock(&wb_lock);
	if (h) {
		if (commit_next && alone && h->stable != FILE_SYNC4) {
			pthread_mutex_lock(&f->lock);
			if (!f->unstable)
				h->stable = FILE_SYNC4;
			pthread_mutex_unlock(&f->lock);
		}
		wb_finish(h, write_all(h->cl, f, h->data, h->len, h->off, h->stable));
	}
	pthread_mutex_lock(&wb_lock);
	while (f->wb_jobs)
		pthread_cond_wait(&wb_done, &wb_lock);
	int e = f->wb_err;
	pthread_mutex_unlock(&wb_lock);
	return e;
}

/* The file's current stateid and how many re-opens it has seen. */
static unsigned file_sid(struct nfs_file *f, struct nfs_stateid *sid)
{
	pthread_mutex_lock(&f->lock);
	*sid = f->of.stateid;
	unsigned gen = f->state_gen;
	pthread_mutex_unlock(&f->lock);
	return gen;
}

/* The server no longer knows the file's open (-EBADF: it restarted, or the
 * lease expired while it was unreachable): open it again by its handle,
 * once per loss, so that the handle goes on working. 0 to try the call
 * again, else -EIO (and the loss is in the log). */
static int file_reopen(struct nfs_client *cl, struct nfs_file *f, unsigned seen)
{
	int e = 0;
	if (atomic_load(&f->locked)) {
		/* Its locks are gone with it: going on would write without them. */
		log_warn("msg=open-file-lost target=%s (the server forgot an open file that "
			 "holds locks; its locks are lost and its reads and writes fail with EIO)",
			 f->tid);
		return -EIO;
	}
	pthread_mutex_lock(&f->lock);
	if (f->state_gen == seen) {
		struct nfs_open of = f->of;
		e = nfs_reopen(cl, &f->auth, &of);
		if (!e) {
			f->of.stateid = of.stateid;
			f->of.owner = of.owner;
			f->state_gen++;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (e)
		log_warn("msg=open-file-lost target=%s error=\"%s\" (the server forgot an open "
			 "file and refused to open it again; its reads and writes fail with EIO)",
			 f->tid, strerror(-e));
	else
		log_info("msg=open-file-reopened target=%s (the server had lost its open state)",
			 f->tid);
	return e ? -EIO : 0;
}

/* Note what a WRITE answered: whether a COMMIT is due, and whether the
 * server lost uncommitted data (a new verifier). */
static void note_written(struct nfs_file *f, int how, const uint8_t verf[NFS4_VERIFIER_SIZE])
{
	if (how == FILE_SYNC4)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->have_verf && memcmp(f->verf, verf, NFS4_VERIFIER_SIZE) != 0)
		f->lost = 1;
	memcpy(f->verf, verf, NFS4_VERIFIER_SIZE);
	f->have_verf = 1;
	f->unstable = 1;
	pthread_mutex_unlock(&f->lock);
}

/* All of buf at off, as WRITEs asking for stable (UNSTABLE4, FILE_SYNC4);
 * 0 or -errno. */
static int write_all(struct nfs_client *cl, struct nfs_file *f, const uint8_t *buf, size_t len,
		     uint64_t off, int stable)
{
	int reopened = 0;
	while (len) {
		uint8_t verf[NFS4_VERIFIER_SIZE];
		int how;
		struct nfs_stateid sid;
		unsigned gen = file_sid(f, &sid);
		ssize_t n = nfs_write(cl, &f->auth, &f->of.fh, &sid, buf, len, off, stable, &how,
				      verf);
		if (n == -EBADF && !reopened++) {
			int e = file_reopen(cl, f, gen);
			if (e)
				return e;
			continue;
		}
		if (n <= 0)
			return n == -EBADF ? -EIO : n < 0 ? (int)n : -EIO;
		note_written(f, how, verf);
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void wb_finish(struct wb_job *j, int err)
{
	pthread_mutex_lock(&wb_lock);
	for (struct wb_job **pp = &wb_flying; *pp; pp = &(*pp)->fnext) {
		if (*pp == j) {
			*pp = j->fnext;
			break;
		}
	}
	atomic_fetch_sub(&wb_count, 1);
	if (err && !j->f->wb_err)
		j->f->wb_err = err;
	j->f->wb_jobs--;
	wb_job_free_locked(j);
	pthread_cond_broadcast(&wb_done);
	pthread_mutex_unlock(&wb_lock);
}

static void *wb_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wb_lock);
	for (;;) {
		while (!wb_head) {
			if (wb_held == 0) {
				pthread_cond_wait(&wb_work, &wb_lock);
				continue;
			}
			/* Held jobs go out after NFS_GATHER_MS at the latest. */
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl); /* wb_work's clock */
			dl.tv_nsec += (long)NFS_GATHER_MS * 1000000L / 2;
			if (dl.tv_nsec >= 1000000000L) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&wb_work, &wb_lock, &dl);
			wb_hand_over_locked(NULL, 1);
		}
		struct wb_job *j = wb_head;
		wb_head = j->next;
		if (!wb_head)
			wb_tail = NULL;
		pthread_mutex_unlock(&wb_lock);
		wb_finish(j, write_all(j->cl, j->f, j->data, j->len, j->off, j->stable));
		pthread_mutex_lock(&wb_lock);
		wb_idle++;
	}
	return NULL;
}

/* A job writing a copy of buf at off through cl. */
static void wb_job_fill(struct wb_job *j, struct nfs_client *cl, struct nfs_file *f,
			const char *buf, size_t size, uint64_t off, int stable)
{
	memcpy(j->data, buf, size);
	j->f = f;
	j->cl = cl;
	j->off = off;
	j->len = size;
	j->stable = stable;
	j->held = 0;
	j->next = NULL;
}

/* Count j among f's jobs and list it in wb_flying (the waits see it from
 * now on); caller holds wb_lock. */
static void wb_fly_locked(struct wb_job *j)
{
	j->f->wb_jobs++;
	j->seq = ++wb_seq;
	j->fnext = wb_flying;
	wb_flying = j;
	atomic_fetch_add(&wb_count, 1);
}

/* Queue a copy of buf for the writers; size, or -errno (the file's sticky
 * error). Waits while the file's window is full or an earlier write to the
 * same bytes is in flight. */
static ssize_t wb_queue(struct nfs_client *cl, struct nfs_file *f, const char *buf, size_t size,
			uint64_t off, int stable)
{
	struct wb_job *j = wb_job_new(size);
	int e;
	if (!j) {
		/* Short of memory: write it through, after what is in flight. */
		e = wb_drain(f, 0);
		if (!e)
			e = write_all(cl, f, (const uint8_t *)buf, size, off, stable);
		return e ? e : (ssize_t)size;
	}
	wb_job_fill(j, cl, f, buf, size, off, stable);
	pthread_mutex_lock(&wb_lock);
	while (!f->wb_err && (f->wb_jobs >= NFS_WB_WINDOW || wb_busy_locked(&f->of.fh, off, size))) {
		wb_hand_over_locked(&f->of.fh, 0);
		pthread_cond_wait(&wb_done, &wb_lock);
	}
	e = f->wb_err;
	if (e) {
		wb_job_free_locked(j);
		pthread_mutex_unlock(&wb_lock);
		return e;
	}
	wb_fly_locked(j);
	int inline_write = wb_writer_locked() != 0; /* no writer could be started */
	if (!inline_write)
		wb_enqueue_locked(j);
	pthread_mutex_unlock(&wb_lock);
	if (inline_write)
		wb_finish(j, write_all(cl, f, j->data, j->len, off, stable));
	return (ssize_t)size;
}

/* Gather a small write (see the top): added to f's held job if it
 * continues it, else held as a new one if it is small; size if so, else 0
 * (then the caller queues it, the held job having been handed on). */
static ssize_t wb_gather(struct nfs_client *cl, struct nfs_file *f, const char *buf,
			 size_t size, uint64_t off, int stable)
{
	ssize_t took = 0;
	pthread_mutex_lock(&wb_lock);
	struct wb_job *h = f->held;
	if (h && !f->wb_err && off == h->off + h->len && size <= NFS_GATHER_MAX - h->len &&
	    !wb_busy_locked(&f->of.fh, off, size)) {
		memcpy(h->data + h->len, buf, size);
		h->len += size;
		if (h->len == NFS_GATHER_MAX)
			wb_hand_over_locked(&f->of.fh, 0);
		took = (ssize_t)size;
	} else {
		if (h)
			wb_hand_over_locked(&f->of.fh, 0);
		struct wb_job *j = NULL;
		if (size <= NFS_GATHER_MAX / 2 && !f->wb_err && wb_held < NFS_GATHER_FILES_MAX &&
		    f->wb_jobs < NFS_WB_WINDOW && !wb_busy_locked(&f->of.fh, off, size) &&
		    wb_writer_locked() == 0)
			j = malloc(sizeof *j + NFS_GATHER_MAX);
		if (j) {
			wb_job_fill(j, cl, f, buf, size, off, stable);
			wb_fly_locked(j);
			j->held = 1;
			j->held_ms = nfs_now_ms();
			f->held = j;
			/* an idle writer sleeps without a limit while none is held */
			if (wb_held++ == 0)
				pthread_cond_signal(&wb_work);
			took = (ssize_t)size;
		}
	}
	pthread_mutex_unlock(&wb_lock);
	return took;
}

/* ---- attach / detach ---- */

static void close_lanes(struct nfs_target *nt)
{
	for (int i = 0; i < nt->nlanes; i++)
		nfs_client_close(nt->lane[i]);
	nt->nlanes = 0;
}

static int nfs_attach(struct target *t, char *err, size_t errlen)
{
	char host[256], path[PATH_MAX], why[256];
	uint16_t port;
	if (nfs_parse_uri(t->uri, host, sizeof host, &port, path, sizeof path)) {
		snprintf(err, errlen, "not an nfs://HOST[:PORT][/PATH] URI");
		return -EINVAL;
	}
	if (t->subdir && t->subdir[0]) {
		size_t pl = strlen(path);
		int n = snprintf(path + (pl == 1 ? 0 : pl), sizeof path - pl, "%s", t->subdir);
		if (n < 0 || (size_t)n >= sizeof path - pl) {
			snprintf(err, errlen, "path too long");
			return -ENAMETOOLONG;
		}
	}
	struct nfs_target *nt = calloc(1, sizeof *nt);
	if (!nt)
		return -ENOMEM;
	pthread_mutex_init(&nt->cache_lock, NULL);
	struct nfs_opts o = { .port = port };
	int lanes = atomic_load(&nfs_lanes);
	int e = 0;
	if (nfs_tls) {
		if (nfs_tls_prepare)
			e = nfs_tls_prepare(err, errlen);
		if (!e)
			e = tls_target_new(nfs_tls, host, &nt->tls, err, errlen);
		if (e)
			goto fail;
		o.tls = nt->tls;
	}
	for (int i = 0; i < lanes && !e; i++) {
		e = nfs_client_open(host, &o, &nt->lane[i], why, sizeof why);
		if (!e)
			nt->nlanes++;
	}
	if (e) {
		int refused = e == -ECONNREFUSED || e == -ETIMEDOUT || e == -EHOSTUNREACH ||
			      e == -ENETUNREACH;
		snprintf(err, errlen, "%s%s%s%s", why, refused ? " (" : "",
			 refused ? NFS_HINT_UNREACHABLE : "", refused ? ")" : "");
		goto fail;
	}
	struct nfs_attr a;
	e = nfs_resolve(nt->lane[0], NULL, NULL, path, &nt->root, &a);
	if (!e && !S_ISDIR(a.st.st_mode))
		e = -ENOTDIR;
	if (e == -EACCES || e == -EPERM) {
		/* What EFS answers when its file system policy or an access
		 * point's rules refuse this client. */
		snprintf(err, errlen,
			 "export path %s: access denied by the server (does the file system "
			 "policy require TLS, -o iam, or an access point (-o accesspoint=) this "
			 "client's IAM role may use?)",
			 path);
		goto fail;
	}
	if (e) {
		snprintf(err, errlen, "export path %s: %s (the export's pseudo path, e.g. /)", path,
			 strerror(-e));
		goto fail;
	}
	/* The export's name limit, for statfs (see nfs_be_statfs). */
	struct statvfs sv;
	if (nfs_statfs(nt->lane[0], NULL, &nt->root, &sv) == 0)
		nt->maxname = (uint32_t)sv.f_namemax;
	else
		nt->maxname = NFS4_MAXNAME;
	t->priv = nt;
	return 0;
fail:
	close_lanes(nt);
	tls_target_free(nt->tls);
	pthread_mutex_destroy(&nt->cache_lock);
	free(nt);
	return e;
}

static void nfs_detach(struct target *t)
{
	struct nfs_target *nt = NT(t);
	if (!nt)
		return;
	close_lanes(nt);
	tls_target_free(nt->tls);
	pthread_mutex_lock(&nt->cache_lock);
	cache_clear_locked(nt);
	pthread_mutex_unlock(&nt->cache_lock);
	pthread_mutex_destroy(&nt->cache_lock);
	free(nt);
	t->priv = NULL;
}

int backend_nfs_tls_info(struct target *t, struct tls_info *info, unsigned *resumptions)
{
	struct nfs_target *nt = t->ops == &backend_nfs_ops ? NT(t) : NULL;
	if (!nt || !nt->tls)
		return 0;
	memset(info, 0, sizeof *info);
	if (nt->nlanes)
		nfs_client_tls_info(nt->lane[0], info);
	*resumptions = tls_target_resumptions(nt->tls);
	return 1;
}

/* ---- attributes ---- */

static void to_stat(const struct nfs_attr *a, struct stat *st)
{
	*st = a->st;
}

static int nfs_be_getattr(struct target *t, const char *path, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(NULL, &au);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fh;
		struct nfs_attr a;
		int fresh;
		int e = resolve(nt, cl, cr, path, &fh, &a, &fresh);
		if (!e && wb_wait_fh(&fh))
			fresh = 0; /* the lookup's size may predate those writes */
		if (!e && !fresh)
			e = nfs_getattr(cl, cr, &fh, &a);
		if (e == -ESTALE && !fresh && attempt == 0) {
			cache_forget_chain(nt, path);
			continue;
		}
		if (!e)
			to_stat(&a, st);
		return e;
	}
	return -ESTALE;
}

static void to_sattr(const struct be_setattr *in, struct nfs_sattr *out)
{
	memset(out, 0, sizeof *out);
	if (in->valid & BE_SET_MODE) {
		out->valid |= NFS_SA_MODE;
		out->mode = in->mode & 07777;
	}
	if ((in->valid & BE_SET_UID) && in->uid != (uid_t)-1) {
		out->valid |= NFS_SA_UID;
		out->uid = in->uid;
	}
	if ((in->valid & BE_SET_GID) && in->gid != (gid_t)-1) {
		out->valid |= NFS_SA_GID;
		out->gid = in->gid;
	}
	if (in->valid & BE_SET_SIZE) {
		out->valid |= NFS_SA_SIZE;
		out->size = (uint64_t)in->size;
	}
	if (in->valid & BE_SET_ATIME_NOW) {
		out->valid |= NFS_SA_ATIME_NOW;
	} else if (in->valid & BE_SET_ATIME) {
		out->valid |= NFS_SA_ATIME;
		out->atime = in->atime;
	}
	if (in->valid & BE_SET_MTIME_NOW) {
		out->valid |= NFS_SA_MTIME_NOW;
	} else if (in->valid & BE_SET_MTIME) {
		out->valid |= NFS_SA_MTIME;
		out->mtime = in->mtime;
	}
}

static int nfs_be_setattr(struct target *t, const struct be_caller *c, const char *path,
			  uint64_t fh, int has_fh, const struct be_setattr *sa, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(c, &au);
	struct nfs_sattr s;
	struct nfs_attr a;
	to_sattr(sa, &s);
	/* Other handles' attributes from their OPEN (and, for a new size,
	 * the data read with it) are stale from now on. */
	attrs_changed();
	if (sa->valid & BE_SET_SIZE)
		atomic_fetch_add(&nfs_write_gen, 1);
	if (has_fh) {
		struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
		pthread_mutex_lock(&f->lock);
		f->open_attr_ms = 0;
		pthread_mutex_unlock(&f->lock);
		wb_wait_fh(&f->of.fh); /* a late WRITE must not undo a truncate */
		int e = nfs_setattr(nt->lane[f->lane], cr, &f->of.fh, &f->of.stateid, &s, &a);
		if (!e)
			to_stat(&a, st);
		return e;
	}
	struct nfs_client *cl = pick_lane(nt, NULL);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh nfh;
		int fresh;
		int e = resolve(nt, cl, cr, path, &nfh, NULL, &fresh);
		if (!e) {
			wb_wait_fh(&nfh);
			e = nfs_setattr(cl, cr, &nfh, NULL, &s, &a);
		}
		if (e == -ESTALE && attempt == 0) {
			cache_forget_chain(nt, path);
			continue;
		}
		if (!e)
			to_stat(&a, st);
		return e;
	}
	return -ESTALE;
}

static int nfs_be_readlink(struct target *t, const char *path, char *buf, size_t size)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct nfs_fh fh;
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(NULL, &au);
	int fresh;
	if (size == 0)
		return -EINVAL;
	int e = resolve(nt, cl, cr, path, &fh, NULL, &fresh);
	if (e)
		return e;
	ssize_t n = nfs_readlink(cl, cr, &fh, buf, size);
	if (n == -ESTALE) {
		cache_forget_chain(nt, path);
		if (!(e = resolve(nt, cl, cr, path, &fh, NULL, &fresh)))
			n = nfs_readlink(cl, cr, &fh, buf, size);
		else
			n = e;
	}
	return n < 0 ? (int)n : 0;
}

static int nfs_be_access(struct target *t, const char *path, int mask)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(NULL, &au);
	uint32_t want = 0, got = 0;
	if (mask & R_OK)
		want |= ACCESS4_READ;
	if (mask & W_OK)
		want |= ACCESS4_MODIFY;
	if (mask & X_OK)
		want |= ACCESS4_EXECUTE | ACCESS4_LOOKUP; /* a file's or a directory's */
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fh;
		int fresh;
		int e = resolve(nt, cl, cr, path, &fh, NULL, &fresh);
		if (!e && want)
			e = nfs_access(cl, cr, &fh, want, &got);
		if (e == -ESTALE && attempt == 0) {
			cache_forget_chain(nt, path);
			continue;
		}
		if (e)
			return e;
		if (((mask & R_OK) && !(got & ACCESS4_READ)) ||
		    ((mask & W_OK) && !(got & ACCESS4_MODIFY)) ||
		    ((mask & X_OK) && !(got & (ACCESS4_EXECUTE | ACCESS4_LOOKUP))))
			return -EACCES;
		return 0;
	}
	return -ESTALE;
}

static void least_maxname(struct target *t, void *arg)
{
	unsigned long *least = arg;
	if (t->ops == &backend_nfs_ops && t->priv && atomic_load(&t->state) != TARGET_DRAINING &&
	    NT(t)->maxname && NT(t)->maxname < *least)
		*least = NT(t)->maxname;
}

/* f_namemax is the least of every nfs:// target's (each learned at its
 * attach, nfs_statfs: the server's maxname, at most the NFS4_MAXNAME
 * bytes this client sends), so that a name of that length works whichever
 * target a path goes to. */
static int nfs_be_statfs(struct target *t, const char *path, struct statvfs *sv)
{
	(void)path;
	struct nfs_target *nt = NT(t);
	struct rpc_auth au;
	int e = nfs_statfs(pick_lane(nt, NULL), req_auth(NULL, &au), &nt->root, sv);
	if (!e)
		target_foreach(least_maxname, &sv->f_namemax);
	return e;
}

static void nfs_be_abort(struct target *t)
{
	struct nfs_target *nt = NT(t);
	for (int i = 0; i < nt->nlanes; i++)
		nfs_client_abort(nt->lane[i]);
}

/* Every lane must answer: an open file may be on any of them. */
static int nfs_be_probe(struct target *t)
{
	struct nfs_target *nt = NT(t);
	for (int i = 0; i < nt->nlanes; i++) {
		int e = nfs_client_probe(nt->lane[i]);
		if (e) {
			/* Say why a reconnect fails (a TLS handshake's reason and
			 * fix), once per change rather than once per probe. */
			char why[sizeof nt->probe_err];
			nfs_client_last_error(nt->lane[i], why, sizeof why);
			if (why[0] && strcmp(why, nt->probe_err) != 0)
				log_warn("msg=target-reconnect-failed id=%s error=\"%s\"", t->id, why);
			snprintf(nt->probe_err, sizeof nt->probe_err, "%s", why);
			return e;
		}
	}
	nt->probe_err[0] = '\0';
	return 0;
}

/* ---- creating ---- */

/* CREATE of a non-regular object under path's parent; retried once when the
 * cached parent went stale. */
static int make_node(struct target *t, const struct be_caller *c, const char *path,
		     uint32_t type, const char *linkdata, dev_t rdev, mode_t mode, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(c, &au);
	mode_t um = c ? c->umask : 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh dir, fh;
		struct nfs_attr a;
		const char *name;
		int e = resolve_parent(nt, cl, cr, path, &dir, &name);
		if (!e)
			e = nfs_create(cl, cr, &dir, name, type, linkdata, rdev,
				       type == NF4LNK ? 0777 : (uint32_t)(mode & ~um & 07777), &fh, &a);
		if (e == -ESTALE && attempt == 0) {
			forget_parent(nt, path);
			continue;
		}
		if (e)
			return e;
		if (fh_cacheable(a.st.st_mode))
			cache_put(nt, auth_key(cr), path, &fh);
		to_stat(&a, st);
		return 0;
	}
	return -ESTALE;
}

static int nfs_be_mkdir(struct target *t, const struct be_caller *c, const char *path,
			mode_t mode, struct stat *st)
{
	return make_node(t, c, path, NF4DIR, NULL, 0, mode, st);
}

static int nfs_be_symlink(struct target *t, const struct be_caller *c, const char *linkto,
			  const char *path, struct stat *st)
{
	return make_node(t, c, path, NF4LNK, linkto, 0, 0777, st);
}

static int open_at(struct target *t, const struct rpc_auth *cr, const char *path, int flags,
		   mode_t mode, struct nfs_file **out, struct stat *st);

static int nfs_be_mknod(struct target *t, const struct be_caller *c, const char *path,
			mode_t mode, dev_t rdev, struct stat *st)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return make_node(t, c, path, NF4FIFO, NULL, 0, mode, st);
	case S_IFSOCK:
		return make_node(t, c, path, NF4SOCK, NULL, 0, mode, st);
	case S_IFCHR:
		return make_node(t, c, path, NF4CHR, NULL, rdev, mode, st);
	case S_IFBLK:
		return make_node(t, c, path, NF4BLK, NULL, rdev, mode, st);
	case S_IFREG:
	case 0: {
		struct rpc_auth au;
		struct nfs_file *f;
		mode_t um = c ? c->umask : 0;
		int e = open_at(t, req_auth(c, &au), path, O_CREAT | O_EXCL | O_WRONLY,
				mode & ~um, &f, st);
		if (e)
			return e;
		(void)nfs_close(NT(t)->lane[f->lane], &f->auth, &f->of);
		pthread_mutex_destroy(&f->lock);
		pthread_mutex_destroy(&f->append_lock);
		free(f->pre);
		free(f);
		return 0;
	}
	default:
		return -EINVAL;
	}
}

static int nfs_be_link(struct target *t, const struct be_caller *c, const char *oldpath,
		       const char *newpath, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(c, &au);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fh, dir;
		struct nfs_attr a;
		const char *name;
		int fresh;
		int e = resolve(nt, cl, cr, oldpath, &fh, NULL, &fresh);
		if (!e)
			e = resolve_parent(nt, cl, cr, newpath, &dir, &name);
		if (!e)
			e = nfs_link(cl, cr, &fh, &dir, name, &a);
		if (e == -ESTALE && attempt == 0) {
			cache_forget_chain(nt, oldpath);
			forget_parent(nt, newpath);
			continue;
		}
		if (e)
			return e;
		attrs_changed(); /* nlink */
		if (fh_cacheable(a.st.st_mode))
			cache_put(nt, auth_key(cr), newpath, &fh);
		to_stat(&a, st);
		return 0;
	}
	return -ESTALE;
}

/* ---- removing and renaming ---- */

static int remove_kind(struct target *t, const char *path, int kind)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(NULL, &au);
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh dir;
		const char *name;
		int e = resolve_parent(nt, cl, cr, path, &dir, &name);
		if (!e)
			e = nfs_remove(cl, cr, &dir, name, kind);
		if (e == -ESTALE && attempt == 0) {
			forget_parent(nt, path);
			continue;
		}
		if (!e)
			attrs_changed(); /* nlink: an open file keeps no name */
		if (!e || e == -ENOENT)
			cache_forget(nt, path, kind == NFS_RM_DIR);
		return e;
	}
	return -ESTALE;
}

static int nfs_be_unlink(struct target *t, const char *path)
{
	return remove_kind(t, path, NFS_RM_NONDIR);
}

static int nfs_be_rmdir(struct target *t, const char *path)
{
	return remove_kind(t, path, NFS_RM_DIR);
}

static int nfs_be_rename(struct target *t, const char *from, const char *to, unsigned flags)
{
	struct nfs_target *nt = NT(t);
	struct nfs_client *cl = pick_lane(nt, NULL);
	struct rpc_auth au;
	const struct rpc_auth *cr = req_auth(NULL, &au);
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh fdir, tdir;
		const char *fname, *tname;
		int e = resolve_parent(nt, cl, cr, from, &fdir, &fname);
		if (!e)
			e = resolve_parent(nt, cl, cr, to, &tdir, &tname);
		if (!e && (flags & RENAME_NOREPLACE)) {
			/* Not atomic: NFSv4 RENAME always replaces. */
			struct nfs_fh x;
			struct nfs_attr xa;
			int le = nfs_lookup(cl, cr, &tdir, tname, &x, &xa);
			e = le == 0 ? -EEXIST : le == -ENOENT ? 0 : le;
		}
		if (!e && (flags & RENAME_EXCHANGE))
			e = nfs_rename_exchange(cl, cr, &fdir, fname, &tdir, tname);
		else if (!e)
			e = nfs_rename(cl, cr, &fdir, fname, &tdir, tname);
		if (e == -ESTALE && attempt == 0) {
			forget_parent(nt, from);
			forget_parent(nt, to);
			continue;
		}
		if (!e) {
			attrs_changed(); /* a replaced file's nlink; ctime */
			cache_forget(nt, from, 1);
			cache_forget(nt, to, 1);
		}
		return e;
	}
	return -ESTALE;
}

/* ---- files ---- */

static int open_at(struct target *t, const struct rpc_auth *cr, const char *path, int flags,
		   mode_t mode, struct nfs_file **out, struct stat *st)
{
	struct nfs_target *nt = NT(t);
	struct nfs_file *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	struct nfs_client *cl = pick_lane(nt, &f->lane);
	f->auth = *cr;
	f->tid = t->id;
	if ((flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_DIRECT)))
		f->pre = malloc(NFS_PREFETCH_BYTES); /* none if short of memory */
	if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
		/* The file's other handles: their OPEN's size and data go stale. */
		atomic_fetch_add(&nfs_write_gen, 1);
		attrs_changed();
	}
	f->pre_gen = atomic_load(&nfs_write_gen);
	f->attr_gen = atomic_load(&nfs_attr_gen);
	if (atomic_load(&wb_count)) {
		/* Open (truncate, prefetch) after the file's writes in flight. */
		struct nfs_fh cur;
		int fresh;
		if (resolve(nt, cl, cr, path, &cur, NULL, &fresh) == 0)
			wb_wait_fh(&cur);
	}
	int e = -ESTALE;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_fh dir;
		struct nfs_attr a;
		const char *name;
		e = resolve_parent(nt, cl, cr, path, &dir, &name);
		if (!e && f->pre)
			e = nfs_open_read(cl, cr, &dir, name, flags, (uint32_t)mode, &f->of, &a, f->pre,
					  NFS_PREFETCH_BYTES, &f->pre_len, &f->pre_eof);
		else if (!e)
			e = nfs_open(cl, cr, &dir, name, flags, (uint32_t)mode, &f->of, &a);
		if (e == -ESTALE && attempt == 0) {
			forget_parent(nt, path);
			continue;
		}
		if (!e) {
			cache_put(nt, auth_key(cr), path, &f->of.fh);
			if (st)
				to_stat(&a, st);
			to_stat(&a, &f->open_attr);
			f->open_attr_ms = nfs_now_ms();

		}
		break;
	}
	if (e) {
		free(f->pre);
		free(f);
		return e;
	}
	if (f->pre && f->pre_len == 0 && !f->pre_eof) {
		free(f->pre);
		f->pre = NULL;
	} else if (f->pre && f->pre_len < NFS_PREFETCH_BYTES) {
		uint8_t *small = realloc(f->pre, f->pre_len ? f->pre_len : 1);
		if (small)
			f->pre = small;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->append_lock, NULL);
	f->append = (flags & O_APPEND) != 0;
	f->direct = (flags & O_DIRECT) != 0;
	f->sync_first = (flags & O_ACCMODE) != O_RDONLY && f->open_attr.st_size == 0;
	*out = f;
	return 0;
}

static int nfs_be_create(struct target *t, const struct be_caller *c, const char *path,
			 int flags, mode_t mode, uint64_t *fh, struct stat *st)
{
	struct rpc_auth au;
	struct nfs_file *f;
	mode_t um = c ? c->umask : 0;
	int e = open_at(t, req_auth(c, &au), path, flags | O_CREAT, mode & ~um, &f, st);
	if (e)
		return e;
	*fh = (uint64_t)(uintptr_t)f;
	return 0;
}

static int nfs_be_open(struct target *t, const char *path, int flags, uint64_t *fh)
{
	struct nfs_file *f;
	struct rpc_auth au;
	int e = open_at(t, req_auth(NULL, &au), path, flags & ~(O_CREAT | O_EXCL), 0, &f, NULL);
	if (e)
		return e;
	*fh = (uint64_t)(uintptr_t)f;
	return 0;
}

/* A read, with the data left where it arrived: in the OPEN's prefetch (no
 * keep) or in the READ reply (*keep). */
static ssize_t nfs_be_read_ref(struct target *t, uint64_t fh, size_t size, off_t off,
			       const char **data, void **keep)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	int eof;
	*keep = NULL;
	if (off < 0)
		return -EINVAL;
	wb_wait_fh(&f->of.fh);
	if (f->pre && atomic_load(&nfs_write_gen) == f->pre_gen) {
		/* Served from what the OPEN read, when it covers the request. A
		 * copy: the reply may still be on its way when the kernel, which
		 * has its data already, sends the release that frees f. */
		uint64_t o = (uint64_t)off;
		size_t n = 0;
		int hit = 1;
		if (o + size <= f->pre_len)
			n = size;
		else if (f->pre_eof)
			n = o < f->pre_len ? f->pre_len - (size_t)o : 0;
		else
			hit = 0;
		if (hit) {
			char *copy = malloc(n ? n : 1);
			if (copy) {
				if (n)
					memcpy(copy, f->pre + o, n);
				*keep = copy;
				*data = copy;
				return (ssize_t)n;
			}
		}
	}
	struct nfs_client *cl = NT(t)->lane[f->lane];
	struct nfs_stateid sid;
	unsigned gen = file_sid(f, &sid);
	const uint8_t **d = (const uint8_t **)data;
	ssize_t n = nfs_read_ref(cl, &f->auth, &f->of.fh, &sid, size, (uint64_t)off, &eof, d, keep);
	if (n == -EBADF) {
		int e = file_reopen(cl, f, gen);
		if (e)
			return e;
		file_sid(f, &sid);
		n = nfs_read_ref(cl, &f->auth, &f->of.fh, &sid, size, (uint64_t)off, &eof, d, keep);
		if (n == -EBADF)
			n = -EIO;
	}
	return n;
}

static ssize_t nfs_be_write(struct target *t, uint64_t fh, const char *buf, size_t size,
			    off_t off)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	if (off < 0)
		return -EINVAL;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	pthread_mutex_lock(&f->lock);
	f->open_attr_ms = 0;
	int sync = f->sync_first && off == 0 && size <= NFS_SYNC_FIRST_MAX &&
		   atomic_load(&nfs_commit_on_close);
	f->sync_first = 0;
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&nfs_write_gen, 1);
	if (f->direct && !f->append) {
		/* O_DIRECT: on the server and stable when write returns, as the
		 * kernel client does (nothing gathered, queued or left for a
		 * COMMIT). Several such writes fly at once from several workers. */
		int e = wb_drain(f, 0);
		if (!e)
			e = write_all(cl, f, (const uint8_t *)buf, size, (uint64_t)off, FILE_SYNC4);
		return e ? e : (ssize_t)size;
	}
	if (!f->append) {
		int stable = sync ? FILE_SYNC4 : UNSTABLE4;
		ssize_t took = wb_gather(cl, f, buf, size, (uint64_t)off, stable);
		return took ? took : wb_queue(cl, f, buf, size, (uint64_t)off, stable);
	}
	/* The kernel's offset is its cached size; another client may have
	 * grown the file since. Like the kernel NFS client: the server's size,
	 * then the write (not atomic across clients), so appends go through. */
	struct nfs_attr a;
	pthread_mutex_lock(&f->append_lock);
	int e = wb_drain(f, 0);
	if (!e)
		e = nfs_getattr(cl, &f->auth, &f->of.fh, &a);
	if (!e)
		e = write_all(cl, f, (const uint8_t *)buf, size, (uint64_t)a.st.st_size,
			      f->direct ? FILE_SYNC4 : UNSTABLE4);
	pthread_mutex_unlock(&f->append_lock);
	return e ? e : (ssize_t)size;
}

static int nfs_be_handle_fd(struct target *t, uint64_t fh)
{
	(void)t;
	(void)fh;
	return -1;
}

static int nfs_be_fgetattr(struct target *t, uint64_t fh, struct stat *st)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	struct nfs_attr a;
	pthread_mutex_lock(&f->lock);
	long long at = f->open_attr_ms;
	/* Not after a write through any handle (its size may have moved) nor
	 * another change through us (a name gone: nlink). */
	if (at && nfs_now_ms() - at < NFS_OPEN_ATTR_TTL_MS &&
	    atomic_load(&nfs_write_gen) == f->pre_gen &&
	    atomic_load(&nfs_attr_gen) == f->attr_gen) {
		*st = f->open_attr;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	f->open_attr_ms = 0;
	pthread_mutex_unlock(&f->lock);
	wb_wait_fh(&f->of.fh);
	int e = nfs_getattr(NT(t)->lane[f->lane], &f->auth, &f->of.fh, &a);
	if (!e)
		to_stat(&a, st);
	return e;
}

/* COMMIT what was written unstable; -EIO if the server lost some of it. */
static int commit_file(struct target *t, struct nfs_file *f)
{
	pthread_mutex_lock(&f->lock);
	int need = f->unstable, lost = f->lost;
	uint8_t verf[NFS4_VERIFIER_SIZE];
	memcpy(verf, f->verf, sizeof verf);
	f->unstable = 0;
	pthread_mutex_unlock(&f->lock);
	if (lost)
		return -EIO;
	if (!need)
		return 0;
	uint8_t cverf[NFS4_VERIFIER_SIZE];
	int e = nfs_commit(NT(t)->lane[f->lane], &f->auth, &f->of.fh, 0, 0, cverf);
	if (!e && memcmp(cverf, verf, sizeof verf) != 0)
		e = -EIO; /* the server restarted: uncommitted writes are gone */
	pthread_mutex_lock(&f->lock);
	if (e) {
		f->unstable = 1;
		if (e == -EIO)
			f->lost = 1;
	} else if (!f->unstable) {
		/* Nothing is uncommitted: the next WRITE's verifier starts afresh
		 * (a server restarted since lost nothing of ours). */
		f->have_verf = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return e;
}

static int nfs_be_fsync(struct target *t, uint64_t fh, int datasync)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	(void)datasync;
	int e = wb_drain(f, 1);
	return e ? e : commit_file(t, f);
}

/* close(2): what was written is answered and, unless commit-on-close is
 * off, committed; a write that failed on the way is reported here. */
static int nfs_be_flush(struct target *t, uint64_t fh)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	int commit = atomic_load(&nfs_commit_on_close);
	int e = wb_drain(f, commit);
	if (!e && commit)
		e = commit_file(t, f);
	return e;
}

static int nfs_be_release(struct target *t, uint64_t fh)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	uint8_t cverf[NFS4_VERIFIER_SIZE];
	int e = wb_drain(f, atomic_load(&nfs_commit_on_close));
	if (!e && f->lost)
		e = -EIO;
	/* COMMIT and CLOSE in one round trip. */
	int commit = f->unstable && atomic_load(&nfs_commit_on_close);
	int ce = nfs_commit_close(NT(t)->lane[f->lane], &f->auth, &f->of, commit, cverf);
	if (!ce && commit && !e && memcmp(cverf, f->verf, sizeof cverf) != 0)
		e = -EIO; /* the server restarted: uncommitted writes are gone */
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->append_lock);
	free(f->pre);
	free(f);
	return e ? e : ce;
}

/* ---- locks ----
 *
 * Each lock state is an NFSv4 lock-owner of its own on the lane of the
 * open it was made through (backend.h); its first LOCK turns that open's
 * stateid into a lock stateid. The server keeps the locks while the
 * client's lease lives: a new client ID (the server restarted, or forgot
 * us while unreachable) or a re-open of the file means they are gone. */
struct nfs_lockstate {
	struct nfs_file *f;
	struct nfs_lock lk;
	uint64_t clientid;  /* when the first lock was granted */
	unsigned state_gen; /* f's re-opens then */
};

#define LS(ls) ((struct nfs_lockstate *)(uintptr_t)(ls))

static int nfs_be_lock_new(struct target *t, uint64_t fh, int kind, uint64_t *ls)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	struct nfs_lockstate *s = calloc(1, sizeof *s);
	(void)kind; /* flock is a whole-file lock of an owner of its own, as on Linux */
	if (!s)
		return -ENOMEM;
	s->f = f;
	s->lk.owner = nfs_next_owner(NT(t)->lane[f->lane]);
	*ls = (uint64_t)(uintptr_t)s;
	return 0;
}

static int lock_lapsed(struct target *t, struct nfs_lockstate *s)
{
	if (!s->lk.have)
		return 0;
	struct nfs_stateid sid;
	unsigned gen = file_sid(s->f, &sid);
	return gen != s->state_gen || nfs_client_current_id(NT(t)->lane[s->f->lane]) != s->clientid;
}

static int nfs_be_lock_check(struct target *t, uint64_t ls)
{
	return lock_lapsed(t, LS(ls)) ? -ENOLCK : 0;
}

static uint64_t nfs_lock_len(off_t len)
{
	return len == 0 ? NFS_LOCK_TO_EOF : (uint64_t)len;
}

/* What was written through the lock's open is answered and committed, so
 * the next holder, on any host, reads it. */
static int lock_sync(struct target *t, struct nfs_lockstate *s)
{
	wb_wait_fh(&s->f->of.fh); /* other handles' writes to the file */
	int e = wb_drain(s->f, 1);
	return e ? e : commit_file(t, s->f);
}

static int nfs_be_lock_set(struct target *t, uint64_t ls, const struct be_lock *lk, int waiting)
{
	struct nfs_lockstate *s = LS(ls);
	struct nfs_file *f = s->f;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	uint64_t off = (uint64_t)lk->start, len = nfs_lock_len(lk->len);
	if (lock_lapsed(t, s))
		return -ENOLCK;
	if (lk->type == F_UNLCK) {
		if (!s->lk.have)
			return 0;
		int e = lock_sync(t, s);
		if (e)
			return e;
		e = nfs_unlock(cl, &f->auth, &f->of, &s->lk, off, len);
		return e == -EBADF ? -ENOLCK : e;
	}
	uint32_t type = lk->type == F_RDLCK ? (waiting ? READW_LT : READ_LT)
					    : (waiting ? WRITEW_LT : WRITE_LT);
	int had = s->lk.have;
	for (int attempt = 0;; attempt++) {
		struct nfs_open of;
		pthread_mutex_lock(&f->lock);
		of = f->of;
		unsigned gen = f->state_gen;
		pthread_mutex_unlock(&f->lock);
		int e = nfs_lock(cl, &f->auth, &of, &s->lk, type, off, len, NULL);
		if (e == -EBADF && had)
			return -ENOLCK; /* our lock stateid is gone: so are its locks */
		if (e == -EBADF && attempt == 0) {
			/* The open itself was lost, and no lock with it. */
			if (file_reopen(cl, f, gen))
				return -EIO;
			continue;
		}
		if (e)
			return e;
		if (!had) {
			s->clientid = nfs_client_current_id(cl);
			s->state_gen = gen;
			atomic_fetch_add(&f->locked, 1);
		}
		/* Another host may have written under the lock we now hold: what
		 * the OPEN read ahead, and its attributes, are no longer enough. */
		atomic_fetch_add(&nfs_write_gen, 1);
		return 0;
	}
}

static int nfs_be_lock_get(struct target *t, uint64_t ls, struct be_lock *lk)
{
	struct nfs_lockstate *s = LS(ls);
	struct nfs_file *f = s->f;
	struct nfs_lock_conflict cf;
	uint32_t type = lk->type == F_RDLCK ? READ_LT : WRITE_LT;
	int e = nfs_testlock(NT(t)->lane[f->lane], &f->auth, &f->of.fh, s->lk.owner, type,
			     (uint64_t)lk->start, nfs_lock_len(lk->len), &cf);
	if (e == 0) {
		lk->type = F_UNLCK;
		return 0;
	}
	if (e != -EAGAIN)
		return e;
	lk->type = cf.type == READ_LT || cf.type == READW_LT ? F_RDLCK : F_WRLCK;
	lk->start = (off_t)cf.offset;
	lk->len = cf.length == NFS_LOCK_TO_EOF || cf.length > (uint64_t)INT64_MAX ? 0
										 : (off_t)cf.length;
	lk->pid = 0; /* another client's: no process of this host */
	return 0;
}

static void nfs_be_lock_free(struct target *t, uint64_t ls)
{
	struct nfs_lockstate *s = LS(ls);
	struct nfs_file *f = s->f;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	if (s->lk.have) {
		if (!lock_lapsed(t, s)) {
			(void)lock_sync(t, s);
			if (nfs_unlock(cl, &f->auth, &f->of, &s->lk, 0, NFS_LOCK_TO_EOF) == 0)
				(void)nfs_free_stateid(cl, &f->auth, &s->lk.stateid);
		}
		atomic_fetch_sub(&f->locked, 1);
	}
	free(s);
}

/* ALLOCATE and DEALLOCATE are NFSv4.2 (EFS speaks 4.1). Mode 0 past the
 * end of file is done by writing zeros there, which allocates as well; the
 * rest (keep-size, punching, allocating inside the file) is EOPNOTSUPP. */
static int nfs_be_fallocate(struct target *t, uint64_t fh, int mode, off_t off, off_t len)
{
	struct nfs_file *f = (struct nfs_file *)(uintptr_t)fh;
	struct nfs_client *cl = NT(t)->lane[f->lane];
	struct nfs_attr a;
	if (mode != 0)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0 || off > INT64_MAX - len)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	f->open_attr_ms = 0;
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&nfs_write_gen, 1); /* it writes: as nfs_be_write */
	int e = wb_drain(f, 0);
	if (!e)
		e = nfs_getattr(cl, &f->auth, &f->of.fh, &a);
	if (e)
		return e;
	uint64_t from = (uint64_t)a.st.st_size > (uint64_t)off ? (uint64_t)a.st.st_size : (uint64_t)off;
	uint64_t end = (uint64_t)off + (uint64_t)len;
	if (from >= end)
		return 0;
	if (from > (uint64_t)a.st.st_size)
		from = (uint64_t)a.st.st_size; /* fill the gap too: no holes to allocate later */
	size_t chunk = NFS_FALLOCATE_CHUNK;
	char *zeros = calloc(1, chunk);
	if (!zeros)
		return -ENOMEM;
	while (!e && from < end) {
		size_t n = end - from < chunk ? (size_t)(end - from) : chunk;
		ssize_t w = nfs_write(cl, &f->auth, &f->of.fh, &f->of.stateid, zeros, n, from,
				      FILE_SYNC4, NULL, NULL);
		if (w <= 0)
			e = w < 0 ? (int)w : -EIO;
		else
			from += (uint64_t)w;
	}
	free(zeros);
	return e;
}

static off_t nfs_be_lseek(struct target *t, uint64_t fh, off_t off, int whence)
{
	(void)t, (void)fh, (void)off, (void)whence;
	return -ENOSYS; /* SEEK is NFSv4.2; the kernel falls back to its own */
}

static ssize_t nfs_be_copy_range(struct target *t, uint64_t fh_in, off_t off_in, uint64_t fh_out,
				 off_t off_out, size_t len, int flags)
{
	(void)t, (void)fh_in, (void)off_in, (void)fh_out, (void)off_out, (void)len, (void)flags;
	return -ENOSYS; /* COPY is NFSv4.2; the kernel copies through read/write */
}

/* ---- directories ---- */

static void dir_drop_batch(struct nfs_dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	d->n = 0;
	d->batch_valid = 0;
}

static int nfs_be_opendir(struct target *t, const char *path, uint64_t *dh)
{
	struct nfs_target *nt = NT(t);
	struct nfs_dir *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	struct nfs_client *cl = pick_lane(nt, &d->lane);
	const struct rpc_auth *cr = req_auth(NULL, &d->auth);
	int e = -ESTALE;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct nfs_attr a;
		int fresh;
		uint32_t allowed = 0;
		e = resolve(nt, cl, cr, path, &d->fh, &a, &fresh);
		/* Listing needs read permission, as opendir(3) checks locally. */
		if (!e)
			e = nfs_getattr_access(cl, cr, &d->fh, ACCESS4_READ, &allowed, &a);
		if (e == -ESTALE && attempt == 0) {
			cache_forget_chain(nt, path);
			continue;
		}
		if (!e && !S_ISDIR(a.st.st_mode))
			e = -ENOTDIR;
		if (!e && !(allowed & ACCESS4_READ))
			e = -EACCES;
		if (!e)
			to_stat(&a, &d->self);
		break;
	}
	if (e) {
		free(d);
		return e;
	}
	pthread_mutex_init(&d->lock, NULL);
	*dh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int batch_add(void *ctx, const char *name, uint64_t cookie, const struct nfs_attr *a)
{
	struct nfs_dir *d = ctx;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct dir_entry *ne = realloc(d->ents, cap * sizeof *ne);
		if (!ne)
			return 1;
		d->ents = ne;
		d->cap = cap;
	}
	char *nm = strdup(name);
	if (!nm)
		return 1;
	d->ents[d->n++] = (struct dir_entry){ nm, cookie, *a };
	return 0;
}

/* Make the batch hold the entries after cookie; *start gets the index of
 * the first of them. */
static int dir_fetch(struct target *t, struct nfs_dir *d, uint64_t cookie, size_t *start)
{
	if (d->batch_valid) {
		if (d->batch_cookie == cookie) {
			*start = 0;
			return 0;
		}
		for (size_t i = 0; i < d->n; i++) {
			if (d->ents[i].cookie == cookie) {
				if (i + 1 < d->n || d->batch_eof) {
					*start = i + 1;
					return 0;
				}
				break;
			}
		}
	}
	dir_drop_batch(d);
	if (cookie == 0)
		memset(d->verf, 0, sizeof d->verf);
	int eof = 0;
	int e = nfs_readdir(NT(t)->lane[d->lane], &d->auth, &d->fh, cookie, d->verf, 0, batch_add, d,
			    &eof);
	if (e) {
		dir_drop_batch(d);
		return e;
	}
	d->batch_valid = 1;
	d->batch_cookie = cookie;
	d->batch_eof = eof;
	*start = 0;
	return 0;
}

static int emit_dot(struct nfs_dir *d, const char *name, off_t next, int plus,
		    be_fill_fn fill, void *ctx)
{
	struct be_dirent ent;
	memset(&ent, 0, sizeof ent);
	ent.name = name;
	ent.type = S_IFDIR;
	ent.next = next;
	/* readdir(3) hides entries of inode 0: ".." needs some number. */
	ent.ino = NFS_DOTDOT_INO;
	if (name[1] == '\0' && d->self.st_ino)
		ent.ino = d->self.st_ino;
	if (plus && name[1] == '\0')
		ent.attr = d->self;
	/* readdirplus takes the number from the attributes. */
	ent.attr.st_ino = ent.ino;
	ent.attr.st_mode |= S_IFDIR;
	return fill(ctx, &ent);
}

static int nfs_be_readdir(struct target *t, uint64_t dh, off_t off, int plus, be_fill_fn fill,
			  void *ctx)
{
	struct nfs_dir *d = (struct nfs_dir *)(uintptr_t)dh;
	int e = 0;
	pthread_mutex_lock(&d->lock);
	if (off == 0) {
		if (emit_dot(d, ".", NFS_DIR_DOT, plus, fill, ctx))
			goto out;
		off = NFS_DIR_DOT;
	}
	if (off == NFS_DIR_DOT) {
		if (emit_dot(d, "..", NFS_DIR_DOTDOT, plus, fill, ctx))
			goto out;
		off = NFS_DIR_DOTDOT;
	}
	uint64_t cookie = off == NFS_DIR_DOTDOT ? 0 : (uint64_t)off;
	/* The sizes listed must not predate a write already acknowledged. */
	if (plus)
		wb_wait_queued();
	for (;;) {
		size_t i;
		e = dir_fetch(t, d, cookie, &i);
		if (e)
			break;
		for (; i < d->n; i++) {
			struct dir_entry *de = &d->ents[i];
			struct be_dirent ent;
			memset(&ent, 0, sizeof ent);
			ent.name = de->name;
			ent.ino = de->attr.st.st_ino;
			ent.type = de->attr.st.st_mode & S_IFMT;
			ent.next = (off_t)de->cookie;
			if (plus && !de->attr.rdattr_error)
				ent.attr = de->attr.st;
			if (fill(ctx, &ent))
				goto out;
			cookie = de->cookie;
		}
		if (d->batch_eof || d->n == 0)
			break;
	}
out:
	pthread_mutex_unlock(&d->lock);
	return e;
}

static int nfs_be_fsyncdir(struct target *t, uint64_t dh, int datasync)
{
	(void)t, (void)dh, (void)datasync;
	return 0; /* directory changes are synchronous on the server */
}

static int nfs_be_releasedir(struct target *t, uint64_t dh)
{
	(void)t;
	struct nfs_dir *d = (struct nfs_dir *)(uintptr_t)dh;
	dir_drop_batch(d);
	free(d->ents);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return 0;
}

/* ---- extended attributes: NFSv4.1 has none (they came in 4.2): files
 * list none and setting one fails with EOPNOTSUPP ---- */

static ssize_t nfs_be_getxattr(struct target *t, const char *path, const char *name, char *buf,
			       size_t size)
{
	(void)t, (void)path, (void)name, (void)buf, (void)size;
	return -ENODATA; /* every file has none */
}

static int nfs_be_setxattr(struct target *t, const char *path, const char *name,
			   const char *value, size_t size, int flags)
{
	(void)t, (void)path, (void)name, (void)value, (void)size, (void)flags;
	return -EOPNOTSUPP;
}

static ssize_t nfs_be_listxattr(struct target *t, const char *path, char *buf, size_t size)
{
	(void)t, (void)path, (void)buf, (void)size;
	return 0; /* an empty list */
}

static int nfs_be_removexattr(struct target *t, const char *path, const char *name)
{
	(void)t, (void)path, (void)name;
	return -EOPNOTSUPP;
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
	int e = resolve(nt, cl, &root, path, &fh, &a, &fresh);
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

static void prefer_groups(struct target *t, const char *p1, const char *p2)
{
	nprefer = 0;
	many_groups = syscall(SYS_getgroups, 0, NULL) > RPC_AUTH_SYS_MAX_GROUPS;
	if (!many_groups)
		return;
	prefer_path(NT(t), p1);
	prefer_path(NT(t), p2);
}

/* The calls that check the caller's permissions: for a caller with more
 * groups than AUTH_SYS carries, the groups of the paths they name and of
 * their directories are sent first (prefer_groups). */
#define MANY_GROUPS(name, params, args, p1, p2)                                        \
	static int nfs_g_##name params                                                 \
	{                                                                              \
		prefer_groups(t, p1, p2);                                              \
		int rc = nfs_be_##name args;                                           \
		nprefer = 0;                                                           \
		return rc;                                                             \
	}

typedef struct target T;
typedef const struct be_caller C;
typedef struct stat S;
MANY_GROUPS(getattr, (T *t, const char *p, S *st), (t, p, st), p, NULL)
/* A chgrp also needs the new group among those sent. */
static int nfs_g_setattr(T *t, C *c, const char *p, uint64_t fh, int has,
			 const struct be_setattr *sa, S *st)
{
	prefer_groups(t, has ? NULL : p, NULL);
	if (many_groups && (sa->valid & BE_SET_GID) && nprefer < NFS_PREFER_MAX &&
	    !preferred(sa->gid))
		prefer[nprefer++] = sa->gid;
	int rc = nfs_be_setattr(t, c, p, fh, has, sa, st);
	nprefer = 0;
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

const struct backend_ops backend_nfs_ops = {
	.scheme = "nfs",
	.attach = nfs_attach,
	.detach = nfs_detach,
	.getattr = nfs_g_getattr,
	.setattr = nfs_g_setattr,
	.readlink = nfs_g_readlink,
	.mknod = nfs_g_mknod,
	.mkdir = nfs_g_mkdir,
	.symlink = nfs_g_symlink,
	.link = nfs_g_link,
	.unlink = nfs_g_unlink,
	.rmdir = nfs_g_rmdir,
	.rename = nfs_g_rename,
	.statfs = nfs_be_statfs,
	.abort = nfs_be_abort,
	.probe = nfs_be_probe,
	.access = nfs_g_access,
	.create = nfs_g_create,
	.open = nfs_g_open,
	.read_ref = nfs_be_read_ref,
	.write = nfs_be_write,
	.handle_fd = nfs_be_handle_fd,
	.fgetattr = nfs_be_fgetattr,
	.fsync = nfs_be_fsync,
	.flush = nfs_be_flush,
	.lock_new = nfs_be_lock_new,
	.lock_set = nfs_be_lock_set,
	.lock_get = nfs_be_lock_get,
	.lock_check = nfs_be_lock_check,
	.lock_free = nfs_be_lock_free,
	.release = nfs_be_release,
	.fallocate = nfs_be_fallocate,
	.lseek = nfs_be_lseek,
	.copy_range = nfs_be_copy_range,
	.opendir = nfs_g_opendir,
	.readdir = nfs_be_readdir,
	.fsyncdir = nfs_be_fsyncdir,
	.releasedir = nfs_be_releasedir,
	.getxattr = nfs_be_getxattr,
	.setxattr = nfs_be_setxattr,
	.listxattr = nfs_be_listxattr,
	.removexattr = nfs_be_removexattr,
};
