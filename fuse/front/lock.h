/*
 * lock.h - fcntl record locks (POSIX and OFD) and flock, taken on the
 * targets so that every mount of the file system sees them.
 *
 * The kernel hands every lock request to the daemon with a lock owner: the
 * process's file table for POSIX locks, the open file description for OFD
 * locks and flock. Each (inode, owner, kind) gets one lock state in the
 * backend (backend.h: lock_new), made through the handle it first locked
 * with and used for all its later requests, whichever descriptor they come
 * through, so an owner's locks never conflict with each other. A state
 * ends, dropping its locks, when its owner closes any descriptor of the
 * file whose close sends FLUSH (POSIX: the FLUSH of close(2)), when the
 * handle its last lock was asked through is released (the last close of
 * the description: OFD locks, flock, and POSIX locks asked through an open
 * made before the file's first lock, whose close sends no FLUSH:
 * op_file.c), or at unmount. A state made through one handle and last
 * locked through another ends with the other's release.
 *
 * FUSE sends that release just after close(2) returns. A request of this
 * mount that would fail at once (F_SETLK, F_GETLK) on such a lock waits up
 * to LOCK_GRACE_MS for it, so a process that learns of the close (a pipe,
 * wait(2)) finds the lock gone.
 *
 * A blocking request (F_SETLKW, flock without LOCK_NB) does not hold a
 * worker thread: it waits in a list that one thread polls with back-off
 * (LOCK_POLL_MIN_MS to LOCK_POLL_MAX_MS) until the lock is granted, the
 * request is interrupted (a signal: EINTR), or the state ends.
 *
 * A lock the target lost (server restart, lease expired while it was cut
 * off) is not taken again: the holder's reads and writes through that
 * handle fail with EIO until it unlocks or closes, as the Linux NFS client
 * does with recover_lost_locks off.
 */
#ifndef EFSMT_LOCK_H
#define EFSMT_LOCK_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "handle.h"

/* -o local_lock=: which kinds stay local to this mount (the kernel's own,
 * as before locks went to the targets), as nfs(5) names them. */
enum { LOCK_LOCAL_NONE = 0, LOCK_LOCAL_FLOCK = 1, LOCK_LOCAL_POSIX = 2, LOCK_LOCAL_ALL = 3 };
extern int lock_local; /* set once, before the mount */

/* The operations (fuse_lowlevel_ops getlk, setlk, flock). */
void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lk);
void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lk,
	      int sleep);
void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);

/* close(2) of a descriptor of ino by the POSIX owner: drop its locks. */
void lock_drop_owner(fuse_ino_t ino, uint64_t owner);
/* The handle is released: end every state made through it. */
void lock_drop_handle(struct efsmt_handle *h);
/* Whether a lock held through h was lost (then its I/O fails with EIO).
 * Cheap when h never took a lock. */
int lock_lost(struct efsmt_handle *h);

/* At the end of the session loop: answer the waiting requests, then drop
 * every state (before the handles are released). */
void lock_shutdown(void);
void lock_release_all(void);

#endif
