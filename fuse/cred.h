/*
 * cred.h - act as the process that made a FUSE request.
 *
 * When efsmt runs as root it does not ask the kernel to check permissions
 * (no default_permissions: that costs a GETATTR of the parent directory
 * after every create and unlink). Instead each worker thread takes the
 * caller's fsuid, fsgid and supplementary groups before it touches a
 * target, so the target's own file system checks access and new files get
 * the caller as owner, exactly as for a local process.
 *
 * Linux keeps these per thread when set with raw syscalls. A thread only
 * switches when the caller differs from its last one; groups come from the
 * group database (getgrouplist), cached per uid for CRED_GROUPS_TTL_S.
 */
#ifndef EFSMT_CRED_H
#define EFSMT_CRED_H

#include <sys/types.h>

#define CRED_GROUPS_TTL_S 60
#define CRED_MAX_GROUPS 256

/* 1 when the daemon can switch identities (it runs as root). */
int cred_enabled(void);
void cred_init(void);
void cred_cleanup(void);
/* Take uid/gid (and uid's groups) on this thread; 0 or -errno. */
int cred_become(uid_t uid, gid_t gid);

#endif
