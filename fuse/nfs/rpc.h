/*
 * rpc.h - ONC RPC version 2 (RFC 5531) over one TCP connection.
 *
 * Calls are framed with record marking (one fragment per call), carry
 * AUTH_SYS credentials, and are matched to replies by XID, so any number of
 * threads may have calls in flight on one connection at once. The callers
 * waiting in rpc_wait take turns reading records and hand each to the call
 * with its XID (rpc.c explains why); a record whose XID nobody waits for is
 * dropped. A watcher thread per connection notices a server's close while
 * no call is in flight.
 *
 * Failure model: a broken connection (EOF, a read or write error, a record
 * over the size limit, a reply header that makes no sense) or a call that
 * times out kills the connection: every call in flight and every later call
 * fail with the first error, and the owner opens a new connection. Retrying
 * on the same connection is never right for NFSv4.1 (RFC 8881 2.9.2).
 */
#ifndef EFSMT_NFS_RPC_H
#define EFSMT_NFS_RPC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "xdr.h"

#define RPC_AUTH_SYS_MAX_GROUPS 16 /* RFC 5531 appendix A: gids<16> */
#define RPC_DEFAULT_TIMEOUT_MS 60000
#define RPC_MAX_RECORD_DEFAULT (4u << 20) /* bytes in one reply */

/* AUTH_SYS credentials; groups past RPC_AUTH_SYS_MAX_GROUPS are dropped. */
struct rpc_auth {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[RPC_AUTH_SYS_MAX_GROUPS];
};

/* A reply: buf holds the whole record (malloc'd); the procedure's results
 * start at body. */
struct rpc_reply {
	uint8_t *buf;
	size_t len;
	const uint8_t *body;
	size_t body_len;
};

struct rpc_conn;

/* One call in flight; lives on the caller's stack between send and wait. */
struct rpc_call {
	uint32_t xid;
	int done;
	int waiting; /* its caller sleeps in rpc_wait (may take the reader role) */
	int err;
	uint8_t *buf;
	size_t len;
	pthread_cond_t cond;
	struct rpc_call *next;
};

/* Connect to host:port (TCP, TCP_NODELAY) within timeout_ms; 0 or -errno
 * with a one-line reason in err. */
int rpc_connect(const char *host, uint16_t port, int timeout_ms, struct rpc_conn **out,
		char *err, size_t errlen);
struct tls_target;
struct tls_info;
/* The same with TLS (tls.h) over the TCP connection when tls is not NULL:
 * a failed handshake is -ECONNABORTED with its reason in err. */
int rpc_connect_tls(const char *host, uint16_t port, int timeout_ms, struct tls_target *tls,
		    struct rpc_conn **out, char *err, size_t errlen);
/* 1 with info filled when the connection is TLS, else 0. */
int rpc_conn_tls_info(struct rpc_conn *c, struct tls_info *info);
/* Wrap a connected stream socket (tests use a socketpair); NULL on ENOMEM. */
struct rpc_conn *rpc_conn_from_fd(int fd);
void rpc_conn_set_timeout(struct rpc_conn *c, int timeout_ms);
void rpc_conn_set_max_record(struct rpc_conn *c, size_t bytes);
/* 0 while usable, else the -errno that killed it. */
int rpc_conn_error(struct rpc_conn *c);
/* Fail every call in flight and every later call with err. */
void rpc_conn_kill(struct rpc_conn *c, int err);
/* Kill, join the watcher thread, close and free. No call may be in flight. */
void rpc_conn_close(struct rpc_conn *c);

/* Send a call whose arguments are the iovecs; 0 or -errno. On success the
 * call must be waited for with rpc_wait. */
int rpc_send(struct rpc_conn *c, struct rpc_call *call, uint32_t prog, uint32_t vers,
	     uint32_t proc, const struct rpc_auth *auth, const struct iovec *args, int nargs);
/* Wait for the reply to a sent call and check its header; 0 with rep filled
 * (free it with rpc_reply_free) or -errno. */
int rpc_wait(struct rpc_conn *c, struct rpc_call *call, struct rpc_reply *rep);
/* rpc_send then rpc_wait. */
int rpc_call(struct rpc_conn *c, uint32_t prog, uint32_t vers, uint32_t proc,
	     const struct rpc_auth *auth, const struct iovec *args, int nargs,
	     struct rpc_reply *rep);
void rpc_reply_free(struct rpc_reply *rep);

/* Pure parts, exposed for the tests. */
/* The call header (RFC 5531 section 9 call_body up to the verifier). */
void rpc_encode_call_header(struct xdr_enc *x, uint32_t xid, uint32_t prog, uint32_t vers,
			    uint32_t proc, const struct rpc_auth *auth);
/* Check a reply record against the XID; 0 with *body_off set, or -errno:
 * -EBADMSG malformed, -EPROTO wrong XID or not a reply, -EACCES auth error,
 * -EPROTONOSUPPORT program/version mismatch, -EOPNOTSUPP no such procedure,
 * -EINVAL garbage args, -EIO system error. */
int rpc_parse_reply(const uint8_t *buf, size_t len, uint32_t xid, size_t *body_off);

#endif
