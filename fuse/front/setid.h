/*
 * setid.h - which set-user-ID and set-group-ID bits Linux clears when a
 * file is written, truncated or given a new owner, so that efsmt can clear
 * what a target left (an NFS server need not clear them as Linux does).
 *
 * The caller is the identity this thread has taken (cred.h): its fsuid,
 * fsgid and supplementary groups decide "in the file's group". Root stands
 * for a caller with CAP_FSETID.
 */
#ifndef EFSMT_SETID_H
#define EFSMT_SETID_H

#include <sys/stat.h>
#include <sys/types.h>

/* The bits a write or truncate by caller clears from a file in state st. */
mode_t setid_kill_on_write(const struct stat *st, uid_t caller);
/* The bits a chown (also chown(-1, -1)) clears from a file that was in
 * state before: set-user-ID always, set-group-ID when group-executable or
 * when the caller is neither in the file's group nor root. */
mode_t setid_kill_on_chown(const struct stat *before, uid_t caller);

#endif
