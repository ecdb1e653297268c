/*
 * procgroups.h - the supplementary groups of a thread, as the kernel has
 * them (/proc/PID/task/TID/status): the identity a FUSE request comes
 * with is uid, gid and pid only.
 */
#ifndef EFSMT_PROCGROUPS_H
#define EFSMT_PROCGROUPS_H

#include <sys/types.h>

/* The groups of thread tid: their count (which may exceed max: then only
 * max were stored) or -errno. */
int proc_thread_groups(pid_t tid, gid_t *list, int max);

#endif
