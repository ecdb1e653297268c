/* nfs_be.h - what the files of the nfs:// backend share: its target and
 * open-file state and the helpers more than one of them calls. Private to
 * fuse/backends/nfs/ (the rest of the daemon includes backend_nfs.h). */
#ifndef EFSMT_NFS_BE_H
#define EFSMT_NFS_BE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "backends/backend.h"
#include "nfs/nfs4.h"
#include "backends/target.h"

#define NFS_FH_CACHE_BUCKETS 4096
#define NFS_LANES_MAX	     16

struct fh_entry; /* nfs_fhcache.c */
struct wb_job;	 /* nfs_wb.c */

struct nfs_target {
	struct nfs_client *lane[NFS_LANES_MAX];
	int nlanes;
	struct tls_target *tls; /* shared by the lanes: one session cache */
	struct nfs_clid *clid;	/* the lanes' one client ID (nfs4.h) */
	char probe_err[256];	/* the reconnect failure last logged (probe thread) */
	atomic_uint next_lane;
	struct nfs_fh root;
	uint32_t maxname; /* the export's f_namemax, from the attach */
	pthread_mutex_t cache_lock;
	struct fh_entry *bucket[NFS_FH_CACHE_BUCKETS];
	size_t cached;
};

struct nfs_file {
	struct nfs_open of;   /* of.stateid changes on a re-open: read it with nfsb_file_sid() */
	const char *tid;      /* the target's id, for the log */
	unsigned state_gen;   /* re-opens so far, under lock */
	struct rpc_auth auth; /* the opener's */
	int lane;   /* of the OPEN, and of CLOSE, COMMIT, locks; READ and WRITE use any */
	int window; /* writes in flight at most (nfsb_wb_window) */
	atomic_int reads; /* READs in flight */
	int append; /* O_APPEND: each write goes to the server's end of file */
	int direct; /* O_DIRECT: no prefetch; each write stable on the server before it returns */
	struct stat open_attr;	/* from the OPEN, for an fgetattr right after it */
	long long open_attr_ms; /* when; 0 once a change through us made it stale */
	uint8_t *pre;		/* read-only opens: the file's start, read with the OPEN */
	size_t pre_len;
	int pre_eof;
	/* nfs_write_gen at the open: pre and open_attr are stale once it moved */
	unsigned pre_gen;
	unsigned attr_gen; /* nfs_attr_gen at the open: open_attr is stale once it moved */
	pthread_mutex_t append_lock;
	pthread_mutex_t lock;
	int sync_first; /* empty at open, not written yet: see NFS_SYNC_FIRST_MAX */
	/* Write-behind, under wb_lock: jobs queued, in flight or held, the first
	 * error one of them met, and the held (gathering) one. */
	atomic_int wb_jobs; /* also read without the lock, by io_lane's callers */
	int wb_err;
	struct wb_job *held;
	/* Kept, under wb_lock (nfs_wb.c): what write(2) accepted and the
	 * server does not yet hold on stable storage, oldest first, and its
	 * size. A COMMIT with the verifier a piece was written under frees it;
	 * a piece whose WRITE failed or whose verifier changed is sent again. */
	struct wb_job *kept, **kept_tail;
	size_t kept_bytes;
	int committing; /* a background COMMIT of them is queued or running */
	/* Lock states holding server locks through this open: such an open
	 * is not opened again after the server lost it (see nfsb_file_reopen). */
	atomic_int locked;
};

#define NT(t) ((struct nfs_target *)(t)->priv)

static inline struct nfs_client *pick_lane(struct nfs_target *nt, int *lane)
{
	unsigned i = atomic_fetch_add(&nt->next_lane, 1) % (unsigned)nt->nlanes;
	if (lane)
		*lane = (int)i;
	return nt->lane[i];
}

/* READs and WRITEs at least this large go over every lane in turn. */
#define NFS_SPREAD_MIN (128u << 10)

/* The lane for a READ or WRITE of size bytes of f, busy: whether others
 * of its kind are in flight. A small one alone goes over the lane that
 * opened f: a small file's OPEN, WRITE and CLOSE follow one another on one
 * connection (spreading them cost the small-file phases a tenth on
 * loopback). Large or many go over every lane in turn, since the lanes are
 * one client and f's stateid is good on each. */
static inline struct nfs_client *io_lane(struct nfs_target *nt, const struct nfs_file *f,
					 size_t size, int busy)
{
	return busy || size >= NFS_SPREAD_MIN ? pick_lane(nt, NULL) : nt->lane[f->lane];
}

static inline void to_stat(const struct nfs_attr *a, struct stat *st)
{
	*st = a->st;
}

/* ---- nfs_cred.c ---- */

/* Who this request runs as: the thread's identity, or the be_caller's. */
const struct rpc_auth *nfsb_req_auth(const struct be_caller *c, struct rpc_auth *a);

/* The backend_ops that check the caller's permissions, as nfs_be_* of the
 * same name but with the groups of the paths concerned sent first. */
int nfs_g_getattr(struct target *t, const char *path, struct stat *st);
int nfs_g_setattr(struct target *t, const struct be_caller *c, const char *path, uint64_t fh,
		  int has_fh, const struct be_setattr *sa, struct stat *st);
int nfs_g_readlink(struct target *t, const char *path, char *buf, size_t size);
int nfs_g_mknod(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		dev_t rdev, struct stat *st);
int nfs_g_mkdir(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		struct stat *st);
int nfs_g_symlink(struct target *t, const struct be_caller *c, const char *linkto, const char *path,
		  struct stat *st);
int nfs_g_link(struct target *t, const struct be_caller *c, const char *oldpath,
	       const char *newpath, struct stat *st);
int nfs_g_unlink(struct target *t, const char *path);
int nfs_g_rmdir(struct target *t, const char *path);
int nfs_g_rename(struct target *t, const char *from, const char *to, unsigned flags);
int nfs_g_access(struct target *t, const char *path, int mask);
int nfs_g_create(struct target *t, const struct be_caller *c, const char *path, int flags,
		 mode_t mode, uint64_t *fh, struct stat *st);
int nfs_g_open(struct target *t, const char *path, int flags, uint64_t *fh);
int nfs_g_opendir(struct target *t, const char *path, uint64_t *dh);

/* ---- nfs_fhcache.c ---- */

/* The cache's key for an identity: a handle found by one is not used by another. */
uint64_t nfsb_auth_key(const struct rpc_auth *a);
/* Empty nt's cache; caller holds nt->cache_lock. */
void nfsb_cache_clear_locked(struct nfs_target *nt);
/* Remember path's handle, looked up by who, for NFS_FH_CACHE_TTL_MS. */
void nfsb_cache_put(struct nfs_target *nt, uint64_t who, const char *path, const struct nfs_fh *fh);
/* Drop path and, if subtree, everything below it. */
void nfsb_cache_forget(struct nfs_target *nt, const char *path, int subtree);
/* Drop path and all its ancestors (one of them went stale). */
void nfsb_cache_forget_chain(struct nfs_target *nt, const char *path);
/* Whether a file of this mode may be reached by a cached handle. */
int nfsb_fh_cacheable(mode_t mode);
/* path -> filehandle: the cache, else LOOKUPs; attr filled only if *fresh. */
int nfsb_resolve(struct nfs_target *nt, struct nfs_client *cl, const struct rpc_auth *cr,
		 const char *path, struct nfs_fh *fh, struct nfs_attr *attr, int *fresh);
/* The parent directory's handle and the last component of path. */
int nfsb_resolve_parent(struct nfs_target *nt, struct nfs_client *cl, const struct rpc_auth *cr,
			const char *path, struct nfs_fh *dir, const char **name);
/* Drop the cached handles of path's parent and its ancestors. */
void nfsb_forget_parent(struct nfs_target *nt, const char *path);

/* ---- nfs_wb.c ---- */

/* Writes in flight per open file over a target of this many lanes. */
int nfsb_wb_window(int lanes);
/* Jobs queued, in flight or held: the hot paths' cheap test for "any?". */
extern atomic_int nfsb_wb_count;
/* Wait until no write to the file fh is in flight; 1 if it had to wait. */
int nfsb_wb_wait_fh(const struct nfs_fh *fh);
/* Wait until every write queued so far (by any file) is answered. */
void nfsb_wb_wait_queued(void);
/* Wait until every write of f is answered; its sticky error or 0. */
int nfsb_wb_drain(struct nfs_file *f, int commit_next);
/* Queue a copy of buf for the writers; size, or the file's sticky error. */
ssize_t nfsb_wb_queue(struct nfs_client *cl, struct nfs_file *f, const char *buf, size_t size,
		      uint64_t off, int stable);
/* Hold a small write to be sent with those that continue it; size, or 0. */
ssize_t nfsb_wb_gather(struct nfs_client *cl, struct nfs_file *f, const char *buf, size_t size,
		       uint64_t off, int stable);
/* Keep a copy of what a WRITE the caller sent itself left unstable. */
void nfsb_kept_copy(struct nfs_file *f, const void *buf, size_t len, uint64_t off,
		    const uint8_t verf[NFS4_VERIFIER_SIZE]);
/* Whether f holds data not yet stable on the server. */
int nfsb_kept_any(struct nfs_file *f);
/* Make everything f kept stable through cl: send what is unsent, COMMIT,
 * send again what the COMMIT's verifier does not cover, until none is
 * left; 0, or -errno with the rest still kept. */
int nfsb_settle(struct nfs_client *cl, struct nfs_file *f);
/* Bytes kept by every open file of the daemon. */
extern atomic_size_t nfsb_kept_total;
/* A file whose target failed (backend.h, resume and pending): clear its
 * sticky error so that it writes again; or stop it writing (every later
 * write fails with -ENOTCONN) and wait for its writes in flight. */
void nfsb_wb_resume(struct nfs_file *f);
void nfsb_wb_freeze(struct nfs_file *f);
/* Each kept piece, oldest first, to fn until it fails; fn's error or 0. */
int nfsb_kept_walk(struct nfs_file *f, be_data_fn fn, void *ctx);
/* Forget every kept piece (another handle now holds them). */
void nfsb_kept_drop(struct nfs_file *f);

/* ---- nfs_file.c ---- */

/* Counts writes through this daemon (see nfs_file.c). */
extern atomic_uint nfs_write_gen;
/* Note a change through this daemon that moves some file's attributes. */
void nfsb_attrs_changed(void);
/* The file's current stateid and how many re-opens it has seen. */
unsigned nfsb_file_sid(struct nfs_file *f, struct nfs_stateid *sid);
/* Open f again after the server lost its open; 0 to retry, else -EIO. */
int nfsb_file_reopen(struct nfs_client *cl, struct nfs_file *f, unsigned seen);
/* All of buf at off, as WRITEs asking for stable; 0 or -errno. *how gets
 * the weakest level the server answered with, verf its verifier. */
int nfsb_write_all(struct nfs_client *cl, struct nfs_file *f, const uint8_t *buf, size_t len,
		   uint64_t off, int stable, int *how, uint8_t verf[NFS4_VERIFIER_SIZE]);
/* OPEN path as cr into a new *out (st, if not NULL, gets its attributes). */
int nfsb_open_at(struct target *t, const struct rpc_auth *cr, const char *path, int flags,
		 mode_t mode, struct nfs_file **out, struct stat *st);
/* Make what f wrote stable (nfsb_settle through f's lane). */
int nfsb_commit_file(struct target *t, struct nfs_file *f);

/* ---- the backend_ops (backend.h), by file ---- */

/* nfs_meta.c */
int nfs_be_getattr(struct target *t, const char *path, struct stat *st);
int nfs_be_setattr(struct target *t, const struct be_caller *c, const char *path, uint64_t fh,
		   int has_fh, const struct be_setattr *sa, struct stat *st);
int nfs_be_readlink(struct target *t, const char *path, char *buf, size_t size);
int nfs_be_access(struct target *t, const char *path, int mask);
int nfs_be_statfs(struct target *t, const char *path, struct statvfs *sv);
int nfs_be_mkdir(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		 struct stat *st);
int nfs_be_symlink(struct target *t, const struct be_caller *c, const char *linkto,
		   const char *path, struct stat *st);
int nfs_be_mknod(struct target *t, const struct be_caller *c, const char *path, mode_t mode,
		 dev_t rdev, struct stat *st);
int nfs_be_link(struct target *t, const struct be_caller *c, const char *oldpath,
		const char *newpath, struct stat *st);
int nfs_be_unlink(struct target *t, const char *path);
int nfs_be_rmdir(struct target *t, const char *path);
int nfs_be_rename(struct target *t, const char *from, const char *to, unsigned flags);

/* nfs_file.c */
int nfs_be_create(struct target *t, const struct be_caller *c, const char *path, int flags,
		  mode_t mode, uint64_t *fh, struct stat *st);
int nfs_be_open(struct target *t, const char *path, int flags, uint64_t *fh);
ssize_t nfs_be_read_ref(struct target *t, uint64_t fh, size_t size, off_t off, const char **data,
			void **keep);
ssize_t nfs_be_write(struct target *t, uint64_t fh, const char *buf, size_t size, off_t off);
int nfs_be_handle_fd(struct target *t, uint64_t fh);
int nfs_be_fgetattr(struct target *t, uint64_t fh, struct stat *st);
int nfs_be_fsync(struct target *t, uint64_t fh, int datasync);
int nfs_be_flush(struct target *t, uint64_t fh);
int nfs_be_release(struct target *t, uint64_t fh);
int nfs_be_resume(struct target *t, uint64_t fh);
int nfs_be_pending(struct target *t, uint64_t fh, be_data_fn fn, void *ctx);
long long nfs_be_fence_ms(struct target *t, uint64_t fh);
int nfs_be_fallocate(struct target *t, uint64_t fh, int mode, off_t off, off_t len);
off_t nfs_be_lseek(struct target *t, uint64_t fh, off_t off, int whence);
ssize_t nfs_be_copy_range(struct target *t, uint64_t fh_in, off_t off_in, uint64_t fh_out,
			  off_t off_out, size_t len, int flags);

/* nfs_lock.c */
int nfs_be_lock_new(struct target *t, uint64_t fh, int kind, uint64_t *ls);
int nfs_be_lock_check(struct target *t, uint64_t ls);
int nfs_be_lock_set(struct target *t, uint64_t ls, const struct be_lock *lk, int waiting);
int nfs_be_lock_get(struct target *t, uint64_t ls, struct be_lock *lk);
void nfs_be_lock_free(struct target *t, uint64_t ls);

/* nfs_dir.c */
int nfs_be_opendir(struct target *t, const char *path, uint64_t *dh);
int nfs_be_readdir(struct target *t, uint64_t dh, off_t off, int plus, be_fill_fn fill, void *ctx);
int nfs_be_fsyncdir(struct target *t, uint64_t dh, int datasync);
int nfs_be_releasedir(struct target *t, uint64_t dh);

/* nfs_xattr.c */
ssize_t nfs_be_getxattr(struct target *t, const char *path, const char *name, char *buf,
			size_t size);
int nfs_be_setxattr(struct target *t, const char *path, const char *name, const char *value,
		    size_t size, int flags);
ssize_t nfs_be_listxattr(struct target *t, const char *path, char *buf, size_t size);
int nfs_be_removexattr(struct target *t, const char *path, const char *name);
int nfs_be_xattr_cannot_hold(struct target *t, const char *name);

#endif
