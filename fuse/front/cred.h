/*
 * cred.h - act as the process that made a FUSE request.
 *
 * When efsmt runs as root it does not ask the kernel to check permissions
 * (no default_permissions: that costs a GETATTR of the parent directory
 * after every create and unlink). Instead each worker thread takes the
 * caller's fsuid, fsgid and supplementary groups before it touches a
 * target, so the target's own file system checks access, clears set-user-ID
 * bits and owns new files to the caller, exactly as for a local process.
 *
 * The groups are the calling thread's own, read from the kernel
 * (/proc/PID/task/TID/status) for a caller other than root, again after a
 * second or as soon as its uid or gid changes (cred.c, recall):
 * a process that set its groups itself (setgroups, newgrp, a container
 * runtime's --group-add) is served with exactly those, and the daemon's
 * /etc/group (another container's, in a sidecar) plays no part. Only a
 * caller whose pid the daemon cannot see (another pid namespace: FUSE then
 * reports pid 0) falls back to the daemon's group database, and that is
 * logged once. Root is served with no supplementary groups: its
 * capabilities decide.
 *
 * Linux keeps these per thread when set with raw syscalls. A thread only
 * switches when the caller's uid, gid or groups differ from its last ones.
 */
#ifndef EFSMT_CRED_H
#define EFSMT_CRED_H

#include <sys/types.h>

/* The group database fallback (pid not visible) caches a uid's groups. */
#define CRED_GROUPS_TTL_S 60
/* Linux's NGROUPS_MAX: the most groups a process can have. */
#define CRED_MAX_GROUPS 65536

/* 1 when the daemon can switch identities (it runs as root). */
int cred_enabled(void);
void cred_init(void);
void cred_cleanup(void);
/* Take uid/gid and the supplementary groups of thread tid (0: not visible
 * to this daemon) on this thread; 0 or -errno. */
int cred_become(uid_t uid, gid_t gid, pid_t tid);

#endif
