/* nfs4_int.h - inside the NFS module: COMPOUND building (raw and by
 * operation, nfs4_compound.c) and running (nfs4_client.c), the client and
 * its session (nfs4_client.c, nfs4_session.c). */
#ifndef EFSMT_NFS4_INT_H
#define EFSMT_NFS4_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "nfs4.h"
#include "xdr.h"

/* The operations of one COMPOUND after its SEQUENCE, which the runner adds.
 * One payload (WRITE data) may be sent from the caller's memory without a
 * copy: comp_payload() puts its length and marks where it goes. */
struct nfs_compound {
	struct xdr_enc x;
	uint32_t nops;
	int cachethis; /* ask the server to cache the reply (non-idempotent ops) */
	const void *payload;
	size_t payload_len;
	size_t split; /* x.buf offset where the payload goes */
	uint32_t main_op; /* what the RPC counts as (nfs4.h, NFS_RPC_SLOTS); 0: SEQUENCE alone */
};

struct nfs_res {
	struct rpc_reply rep;
	struct xdr_dec d; /* at the first result after SEQUENCE's */
	uint32_t status;  /* the COMPOUND's status */
	uint32_t left;	  /* results not read yet */
};

void comp_init(struct nfs_compound *cp);
void comp_free(struct nfs_compound *cp);
void comp_op(struct nfs_compound *cp, uint32_t op);
void comp_payload(struct nfs_compound *cp, const void *data, size_t len);
void res_free(struct nfs_res *r);
/* Read the next result's opcode and status: the nfsstat4 (>= 0), or
 * -EBADMSG if the opcode is not op or no result is left. */
int res_op(struct nfs_res *r, uint32_t op);

/* Run one COMPOUND (retrying NFS4ERR_DELAY and rebuilding a lost session);
 * 0 with res filled, whatever the COMPOUND's status, or -errno. */
int nfs_compound_run(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_compound *cp,
		     struct nfs_res *res);
/* Run n COMPOUNDs at once (in flight together); each res[i] filled or
 * errs[i] set to -errno. */
void nfs_compound_batch(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_compound *cps,
			struct nfs_res *res, int *errs, int n);

/* Limits of the current session. */
uint32_t nfs_max_ops(struct nfs_client *c);
uint32_t nfs_io_read(struct nfs_client *c);
/* READ data that fits in a reply the server caches (cachethis): 0 if none
 * worth asking. */
uint32_t nfs_cached_read_max(struct nfs_client *c);
uint32_t nfs_io_write(struct nfs_client *c);
uint64_t nfs_client_id(struct nfs_client *c);
uint64_t nfs_next_owner(struct nfs_client *c);

/* A name this client sends: 0, -ENOENT if empty, -ENAMETOOLONG past
 * NFS4_MAXNAME (nfs4_ops.c). */
int nfs_check_name(const char *name);

/* ---- the client and its session (nfs4_client.c, nfs4_session.c) ---- */

/* RPCs sent by main operation (nfs4.h); shared by the clients of one
 * nfs_clid. */
struct nfs_rpcstats {
	atomic_uint_fast64_t n[NFS_RPC_SLOTS];
};

static inline void rpcstats_count(struct nfs_rpcstats *s, uint32_t op)
{
	atomic_fetch_add_explicit(&s->n[op < NFS_RPC_SLOTS ? op : 0], 1, memory_order_relaxed);
}

#define NFS_HDR_ROOM (16u << 10)     /* request/reply bytes besides READ/WRITE data */
/* Replies the server keeps for a retry (cachethis, non-idempotent calls):
 * an OPEN that reads a small file's start (nfs_open_read) is one, so this
 * is its data plus room for the rest; a server may grant less. */
#define NFS_CACHED_REPLY_MAX (68u << 10)
#define NFS_CACHED_REPLY_ROOM (4u << 10) /* of a cached reply, besides READ data */
#define NFS_REBUILDS_PER_CALL 3
#define NFS_CLIENT_OWNER_MAX 256

/* What the connections of one client share (nfs4.h, nfs_clid): its owner
 * and verifier, and a lock that lets one connection at a time run
 * EXCHANGE_ID and CREATE_SESSION, whose sequence id the client ID has one
 * of (RFC 8881 18.36.4). */
struct nfs_clid {
	pthread_mutex_t lock;
	char owner[NFS_CLIENT_OWNER_MAX];
	uint8_t verifier[NFS4_VERIFIER_SIZE];
	struct nfs_rpcstats rpcs; /* of every connection opened with it */
};

struct nfs_slot {
	uint32_t seqid;
	int busy;
};

/* One client: its connection, session and slot table. Only nfs4_client.c
 * and nfs4_session.c use its fields. */
struct nfs_client {
	char host[256];
	struct nfs_opts opts;

	/* Readers use conn and session; the writer rebuilds them. */
	pthread_rwlock_t state;
	struct rpc_conn *conn;  /* replaced under state (write) and conn_lock */
	pthread_mutex_t conn_lock; /* lets nfs_client_abort reach conn at any time */
	unsigned gen;
	atomic_int broken;
	atomic_int down; /* nfs_client_abort: fail calls at once until a probe answers */
	uint64_t clientid;
	uint32_t cs_seq;
	uint8_t sessionid[NFS4_SESSIONID_SIZE];
	uint32_t max_ops, max_req, max_resp;
	atomic_uint max_cached; /* maxresponsesize_cached granted */

	pthread_mutex_t slot_lock;
	pthread_cond_t slot_cond;
	struct nfs_slot *slots;
	uint32_t nslots;

	char owner[NFS_CLIENT_OWNER_MAX];
	uint8_t verifier[NFS4_VERIFIER_SIZE];
	struct nfs_rpcstats *rpcs; /* the clid's, else own_rpcs */
	struct nfs_rpcstats own_rpcs;
	uint32_t lease_s;
	uint32_t maxread, maxwrite;
	atomic_llong last_ok_ms;
	unsigned reconnects;
	char last_err[256]; /* why the last reconnect failed; under conn_lock */

	pthread_t renew_thread;
	int renew_started;
	pthread_mutex_t renew_lock;
	pthread_cond_t renew_cond;
	int stopping;
	struct nfs_client *reg_prev, *reg_next; /* every open client, for fork */
};

/* What compound_once came to (else -errno). */
enum { FIN_DONE = 0, FIN_DELAY = 1, FIN_REBUILD = 2 };

/* AUTH_SYS root: the session's own calls (nfs4_client.c). */
extern const struct rpc_auth machine_cred;
/* One COMPOUND without retries; caller holds the state lock (nfs4_client.c). */
int compound_once(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_compound *cp,
		  struct nfs_res *res);
/* Start the lease renewal thread unless it runs; 0 or -EAGAIN (nfs4_client.c). */
int renew_start(struct nfs_client *c);
/* One operation without SEQUENCE; 0 with res->d at its result (nfs4_session.c). */
int call_single(struct nfs_client *c, struct xdr_enc *args, uint32_t op, struct nfs_res *res);
/* Connect and set up a session; caller holds the state lock for writing (nfs4_session.c). */
int establish(struct nfs_client *c, char *err, size_t errlen);
/* Rebuild the connection and session unless done since generation seen (nfs4_session.c). */
int rebuild(struct nfs_client *c, unsigned seen);
/* Take the state lock for reading with a working session; 0 or -errno (nfs4_session.c). */
int acquire(struct nfs_client *c, unsigned *gen);

/* ---- requests (nfs4_compound.c) ----
 *
 * A COMPOUND built one operation at a time: each req_<op> appends that
 * operation's arguments and notes where its result goes. req_run sends it
 * (SEQUENCE first) and reads the results back in the same order, each
 * decoded into the place noted, up to the first that failed: 0, or that
 * status as -errno (-EBADMSG when the reply does not match the request).
 * One encoder and one decoder per operation, so a file operation reads as
 * the list of its operations:
 *
 *	struct nfs_req rq;
 *	req_begin(&rq, c, cr, 1);
 *	req_putfh(&rq, fh);
 *	req_setattr(&rq, sid, sa);
 *	req_getattr(&rq, attr);
 *	return req_call(&rq);
 *
 * A struct nfs_req is built in place and never copied; the places results
 * go must live until req_run returns. */
struct req_op {
	uint32_t op;
	int optional; /* a failure ends the reading but not the request */
	void *out;    /* where the result goes (the decoder's to know) */
};

#define REQ_INLINE_OPS 8

struct nfs_req {
	struct nfs_client *c;
	const struct rpc_auth *cr;
	struct nfs_compound cp;
	struct nfs_res r;
	int ran;	 /* r holds a reply (req_end frees it) */
	int err;	 /* building failed: req_run returns this and sends nothing */
	uint32_t n, cap; /* operations noted; room for */
	uint32_t nread;	 /* results read: a last GETATTR without a place is not */
	struct req_op *ops;
	struct req_op inline_ops[REQ_INLINE_OPS];
};

/* cachethis: the server keeps the reply for a retry (non-idempotent). */
void req_begin(struct nfs_req *rq, struct nfs_client *c, const struct rpc_auth *cr, int cachethis);
/* Send and read the results; the reply stays readable until req_end. */
int req_run(struct nfs_req *rq);
void req_end(struct nfs_req *rq);
/* req_run then req_end. */
int req_call(struct nfs_req *rq);
/* n requests of one client and caller (rq[0]'s) in flight together; ret[i]
 * gets what req_run would have returned for rq[i]. 0, or -errno with
 * nothing sent. */
int req_run_batch(struct nfs_req *rq, int n, int *ret);
/* The last operation noted is optional: its failure leaves its result
 * unset and the request successful (a prefetch). */
void req_optional(struct nfs_req *rq);
/* The reply's buffer, now the caller's to free(3) (data of a READ). */
void *req_keep_reply(struct nfs_req *rq);

/* Results with more than one part. */
struct req_read {
	size_t max;	     /* asked for */
	const uint8_t *data; /* inside the reply; NULL until a READ succeeded */
	size_t len;
	int eof;
};
struct req_write {
	uint32_t max; /* sent */
	uint32_t count, how;
	uint8_t verf[NFS4_VERIFIER_SIZE];
};
struct req_readlink {
	char *buf; /* NUL-terminated when it fits */
	size_t size;
	size_t len;
};
struct req_readdir {
	uint8_t *verf; /* the cookie verifier sent, and the one received */
	nfs_readdir_fn fn;
	void *ctx;
	int *eof;
};
struct req_open_args {
	uint32_t access; /* OPEN4_SHARE_ACCESS_* */
	uint64_t owner;
	const char *name; /* CLAIM_NULL in the current directory; NULL: CLAIM_FH */
	int create;	  /* with mode: EXCLUSIVE4_1 when verf, else UNCHECKED4 */
	const uint8_t *verf;
	uint32_t mode;
};
struct req_open_res {
	struct nfs_stateid *sid;
	uint32_t attrset[3]; /* what the server set of the create's attributes */
	int has_deleg;	     /* a delegation we must give back */
	struct nfs_stateid deleg;
	int ok; /* the OPEN succeeded and decoded */
};
/* LOCK: the lock-owner's state; LOCK and LOCKT: a conflict's details. */
struct req_lock {
	struct nfs_lock *lk;
	struct nfs_lock_conflict *conflict; /* may be NULL */
};

/* One per operation, in RFC 8881's terms. fh NULL is the root (PUTROOTFH);
 * sid NULL the anonymous stateid. */
void req_putfh(struct nfs_req *rq, const struct nfs_fh *fh);
void req_getfh(struct nfs_req *rq, struct nfs_fh *fh);
/* The attributes for struct stat; attr NULL: not read if last. */
void req_getattr(struct nfs_req *rq, struct nfs_attr *attr);
void req_getattr_mask(struct nfs_req *rq, uint32_t w0, uint32_t w1, struct nfs_attr *attr);
void req_savefh(struct nfs_req *rq);
void req_restorefh(struct nfs_req *rq);
void req_lookup(struct nfs_req *rq, const char *name);
void req_lookupp(struct nfs_req *rq);
void req_setattr(struct nfs_req *rq, const struct nfs_stateid *sid, const struct nfs_sattr *sa);
void req_access(struct nfs_req *rq, uint32_t want, uint32_t *allowed);
void req_readlink(struct nfs_req *rq, struct req_readlink *res);
void req_open(struct nfs_req *rq, const struct req_open_args *a, struct req_open_res *res);
void req_close(struct nfs_req *rq, const struct nfs_stateid *sid);
void req_delegreturn(struct nfs_req *rq, const struct nfs_stateid *sid);
void req_read(struct nfs_req *rq, const struct nfs_stateid *sid, uint64_t off, uint32_t count,
	      struct req_read *res);
/* The data is sent from the caller's memory (comp_payload). */
void req_write(struct nfs_req *rq, const struct nfs_stateid *sid, uint64_t off, int stable,
	       const void *data, uint32_t len, struct req_write *res);
void req_commit(struct nfs_req *rq, uint64_t off, uint32_t count, uint8_t verf[NFS4_VERIFIER_SIZE]);
/* type NF4DIR, NF4LNK (linkdata), NF4FIFO, NF4SOCK, NF4BLK/NF4CHR (rdev);
 * any other fails the request with -EINVAL. */
void req_create(struct nfs_req *rq, uint32_t type, const char *linkdata, dev_t rdev,
		const char *name, uint32_t mode);
/* VERIFY (dir) or NVERIFY (!dir) that the current filehandle is a
 * directory: -ENOTDIR or -EISDIR when not as expected. */
void req_check_dir(struct nfs_req *rq, int dir);
void req_remove(struct nfs_req *rq, const char *name);
/* *done (may be NULL) counts the RENAMEs that succeeded. */
void req_rename(struct nfs_req *rq, const char *from, const char *to, int *done);
void req_link(struct nfs_req *rq, const char *name);
void req_readdir(struct nfs_req *rq, uint64_t cookie, uint32_t maxcount, struct req_readdir *res);
void req_lock(struct nfs_req *rq, const struct nfs_open *of, uint32_t type, uint64_t off,
	      uint64_t len, struct req_lock *res);
void req_locku(struct nfs_req *rq, struct nfs_lock *lk, uint64_t off, uint64_t len);
void req_lockt(struct nfs_req *rq, uint64_t owner, uint32_t type, uint64_t off, uint64_t len,
	       struct req_lock *res);
void req_free_stateid(struct nfs_req *rq, const struct nfs_stateid *sid);

#endif
