/*
 * outlive.h - an open file outlives its target: what a call on an open
 * file does when its target does not answer (nfs(5)'s hard and soft).
 *
 * The call waits. If the target answers again within probe_timeout of the
 * failure, the file goes on there: the backend sends again what write(2)
 * accepted and the target does not hold on stable storage (reopening the
 * file if the server lost its open state). Otherwise the file is opened
 * again, by path, on the next target that is up in rendezvous order (every
 * target serves the same file system), what the old target held unstable
 * is written there and made stable, and the handle moves for good. A
 * read-only file moves at once: reading is safe anywhere. With every
 * target down the call waits until one returns; a fatal signal (SIGKILL)
 * ends the wait with EINTR. A file holding locks never moves (its locks
 * would not come with it): it waits for its own target, whose backend
 * fails its calls with EIO if the locks were lost meanwhile.
 *
 * soft: the same, but a call that has not recovered timeo × (retrans + 1)
 * after the failure fails with EIO.
 */
#ifndef EFSMT_OUTLIVE_H
#define EFSMT_OUTLIVE_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include "handle.h"

struct outlive_conf {
	int soft;
	int timeo_ds;	      /* deciseconds (nfs(5) timeo) */
	int retrans;	      /* nfs(5) retrans */
	int probe_timeout_ms; /* how long a failed target is waited for */
};

void outlive_configure(const struct outlive_conf *c);

/* A call on h through at (what handle_at() gave) returned rc: 0 when it is
 * to be made again, through handle_at(h); else the -errno to answer. */
int outlive_recover(fuse_req_t req, fuse_ino_t ino, struct efsmt_handle *h,
		    struct handle_at *at, int rc);

/* Whether rc may be recovered from (a target that did not answer). */
int outlive_can(int rc);

/* rc = call, made through where h is open now (a, a struct handle_at *
 * the call uses), again after each failure outlive_recover recovers from. */
#define OUTLIVE_CALL(req, ino, h, a, rc, call)                                         \
	for (struct handle_at *a;;) {                                                  \
		a = handle_at(h);                                                      \
		rc = (call);                                                           \
		if (rc >= 0 || !outlive_can((int)(rc)))                                \
			break;                                                         \
		int outlive_rc_ = outlive_recover(req, ino, h, a, (int)(rc));          \
		if (outlive_rc_) {                                                     \
			rc = outlive_rc_;                                              \
			break;                                                         \
		}                                                                      \
	}

#endif
