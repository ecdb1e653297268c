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

struct efsmt_handle {
	struct target *t;
	uint64_t bh;
	int is_dir;
	atomic_int refs;
	struct efsmt_handle *next; /* the node's list of open handles */
	struct efsmt_handle *all_prev, *all_next; /* every live handle */
};

/* A new handle with one reference; NULL when out of memory. */
struct efsmt_handle *handle_new(struct target *t, uint64_t bh, int is_dir);
void handle_get(struct efsmt_handle *h);
/* Drop a reference; the last one releases the backend handle. */
void handle_put(struct efsmt_handle *h);
/* At exit, once no request runs: release what the kernel never released
 * (an unmount drops the RELEASE requests still queued). */
void handle_release_all(void);

#endif
