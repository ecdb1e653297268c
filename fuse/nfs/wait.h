/* wait.h - the monotonic clock in milliseconds, and waiting for one file
 * descriptor: shared by the NFS client (rpc.c, tls.c, nfs4_client.c, nfs4_session.c) and
 * its backend (../backends/nfs/). */
#ifndef EFSMT_NFS_WAIT_H
#define EFSMT_NFS_WAIT_H

/* CLOCK_MONOTONIC in milliseconds. */
long long nfs_now_ms(void);
/* Wait until fd is ready for events (poll(2) flags) or timeout_ms passes
 * (-1: no limit); 0, -ETIMEDOUT, or -errno. Signals do not end the wait
 * early (it restarts with the whole timeout). */
int nfs_wait_fd(int fd, short events, int timeout_ms);

#endif
