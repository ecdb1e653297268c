/*
 * handle.h - an open file or directory: the target it was opened on and the
 * backend's handle. It holds a target reference; it is itself reference
 * counted because an inode's open handles also answer fstat(2) and
 * fchmod(2) on files whose name is gone (node.h).
 */
#ifndef EFSMT_HANDLE_H
#define EFSMT_HANDLE_H

#include <stdatomic.h>
#include <stdint.h>

struct target;
struct lock_state;

struct efsmt_handle {
	struct target *t;
	uint64_t bh;
	int is_dir;
	int rdonly; /* opened O_RDONLY: reads may move to another target */
	/* A set-user-ID or set-group-ID file on a target whose writes the
	 * thread's identity governs: writes run as the caller, so that the
	 * target's kernel clears the bits as it would for a local writer. */
	int killpriv;
	/* Where reads go once t stopped answering (handle_failover): set once,
	 * published by alt_set, never changed again, so readers need no lock;
	 * t and bh stay valid for the requests still using them. */
	struct target *alt_t;
	uint64_t alt_bh;
	atomic_int alt_set;
	atomic_int refs;
	/* Lock states made through this handle (lock.c, under its table
	 * lock) and how many: reads and writes check them only when some. */
	struct lock_state *locks;
	atomic_int nlocks;
	struct efsmt_handle *next; /* the node's list of open handles */
	struct efsmt_handle *all_prev, *all_next; /* every live handle */
};

/* A new handle with one reference; NULL when out of memory. */
struct efsmt_handle *handle_new(struct target *t, uint64_t bh, int is_dir);
void handle_get(struct efsmt_handle *h);
/* Drop a reference; the last one releases the backend handle. */
void handle_put(struct efsmt_handle *h);
/* The target and backend handle that reads use now. */
void handle_read_target(struct efsmt_handle *h, struct target **t, uint64_t *bh);
/* A read-only handle whose target did not answer: open path again on t2
 * (the next target) for its reads. 0 (or when another thread did it
 * already), else -errno. Call inside a request (epoch section). */
int handle_failover(struct efsmt_handle *h, struct target *t2, const char *path);

/* At exit, once no request runs: release what the kernel never released
 * (an unmount drops the RELEASE requests still queued). */
void handle_release_all(void);

#endif
