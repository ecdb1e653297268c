/* backend_nfs.h - the nfs:// backend (backend_nfs.c) beyond backend_ops. */
#ifndef EFSMT_BACKEND_NFS_H
#define EFSMT_BACKEND_NFS_H

#include "backend.h"

extern const struct backend_ops backend_nfs_ops;

/* -o lanes=N: TCP connections (each its own NFSv4.1 session) per nfs://
 * target attached from now on; clamped to 1..16, default 1. */
void backend_nfs_set_lanes(int n);

/* 1 (default): release COMMITs unstable writes with the CLOSE, so data is
 * on the server's stable storage when close(2) returns (the kernel NFS
 * client's behaviour); 0: only fsync commits (faster small-file writes on
 * servers that answer UNSTABLE4; EFS answers FILE_SYNC4 anyway). */
void backend_nfs_set_commit_on_close(int on);

#endif
