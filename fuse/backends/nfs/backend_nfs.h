/* backend_nfs.h - the nfs:// backend (backend_nfs.c and the nfs_*.c beside it) beyond
 * backend_ops. */
#ifndef EFSMT_BACKEND_NFS_H
#define EFSMT_BACKEND_NFS_H

#include "backends/backend.h"
#include "nfs/nfs4.h"
#include "nfs/tls.h"

extern const struct backend_ops backend_nfs_ops;

/* -o lanes=N: TCP connections (one NFSv4.1 client, a session on each) per
 * nfs:// target attached from now on; clamped to 1..16, default 2. */
void backend_nfs_set_lanes(int n);

/* -o timeo: how long one RPC of targets attached from now on waits for its
 * reply (ms; 0: the default, 60 s). */
void backend_nfs_set_timeout(int ms);

/* 1 (default): release COMMITs unstable writes with the CLOSE, so data is
 * on the server's stable storage when close(2) returns (the kernel NFS
 * client's behaviour); 0: only fsync commits (faster small-file writes on
 * servers that answer UNSTABLE4; EFS answers FILE_SYNC4 anyway). */
void backend_nfs_set_commit_on_close(int on);

/* -o tls and friends: TLS on every connection of nfs:// targets attached
 * from now on (conf NULL: plain TCP). The strings are kept, not copied.
 * prepare (may be NULL) runs before each nfs:// target attaches and may
 * complete conf then (the client certificate of a daemon that started
 * without nfs:// targets); 0, or -errno with one line in err, which fails
 * the attach. */
void backend_nfs_set_tls(const struct tls_conf *conf, int (*prepare)(char *err, size_t errlen));

/* For `efsmtctl targets`: 0 when t is not an nfs:// target with TLS on;
 * else 1, with info of its first connection (version "" while it is not
 * connected) and the handshakes that resumed a session. */
int backend_nfs_tls_info(struct target *t, struct tls_info *info, unsigned *resumptions);

/* For `efsmtctl rpcs`: 0 when t is not an nfs:// target; else 1, with the
 * NFS RPCs its lanes sent (one client ID, one set of counts: nfs4.h). */
int backend_nfs_rpcs(struct target *t, struct nfs_rpc_counts *out);

#endif
