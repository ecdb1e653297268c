/*
 * handle.h - an open file or directory: the target it is open on and the
 * backend's handle there. It holds a target reference; it is itself reference
 * counted because an inode's open handles also answer fstat(2) and
 * fchmod(2) on files whose name is gone (node.h).
 */
#ifndef EFSMT_HANDLE_H
#define EFSMT_HANDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

struct target;
struct lock_state;

/* Where a handle is open: a target and the backend's handle there. An
 * open file that moves to another target (outlive.h) gets a new one; the
 * ones it left stay valid, for the requests still using them, until the
 * handle is freed. */
struct handle_at {
	struct target *t;
	uint64_t bh;
	struct handle_at *older;
};

struct efsmt_handle {
	_Atomic(struct handle_at *) at; /* where it is open now: handle_at() */
	struct handle_at first;
	int is_dir;
	int rdonly;  /* opened O_RDONLY */
	int noflush; /* opened with FOPEN_NOFLUSH: close(2) sends no FLUSH */
	int flags;   /* open(2) flags, for opening it again elsewhere */
	uid_t uid;   /* the opener, who opens it again; uid -1: unknown */
	gid_t gid;
	pid_t pid;
	/* A set-user-ID or set-group-ID file on a target whose writes the
	 * thread's identity governs: writes run as the caller, so that the
	 * target's kernel clears the bits as it would for a local writer. */
	int killpriv;
	/* outlive.c, under move_lock: when its target failed, while it has
	 * not recovered yet (ms, monotonic), else 0. */
	pthread_mutex_t move_lock;
	long long failed_ms;
	atomic_int refs;
	/* Lock states made through this handle (lock.c, under its table
	 * lock) and how many: reads and writes check them only when some. */
	struct lock_state *locks;
	atomic_int nlocks;
	/* A lock was asked through it on a state made through another
	 * handle (lock.c). */
	atomic_int lent;
	struct efsmt_handle *next; /* the node's list of open handles */
	struct efsmt_handle *all_prev, *all_next; /* every live handle */
};

/* A new handle with one reference; NULL when out of memory. */
struct efsmt_handle *handle_new(struct target *t, uint64_t bh, int is_dir);
void handle_get(struct efsmt_handle *h);
/* Drop a reference; the last one releases the backend handles. */
void handle_put(struct efsmt_handle *h);
/* Where h is open now. */
static inline struct handle_at *handle_at(struct efsmt_handle *h)
{
	return atomic_load_explicit(&h->at, memory_order_acquire);
}
/* h is open on t2 as bh2 from now on (takes a target reference); 0 or
 * -ENOMEM. Caller holds h->move_lock. */
int handle_move(struct efsmt_handle *h, struct target *t2, uint64_t bh2);

/* At exit, once no request runs: release what the kernel never released
 * (an unmount drops the RELEASE requests still queued). */
void handle_release_all(void);

#endif
