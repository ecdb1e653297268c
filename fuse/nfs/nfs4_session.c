/* nfs4_session.c - setting up the session (EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE)
 * and getting it back (rebuild, fail-over); nfs4_client.c runs COMPOUNDs on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfs4_int.h"
#include "wait.h"

#define NFS_MAX_OPS_ASKED 32
#define NFS_BACK_CHAN_MAX 4096

/* ---- session setup (caller holds the state lock for writing) ---- */

/* A COMPOUND of one operation without SEQUENCE (EXCHANGE_ID and friends);
 * 0 with res->d at the operation's result body, or -errno. */
int call_single(struct nfs_client *c, struct xdr_enc *args, uint32_t op, struct nfs_res *res)
{
	struct xdr_enc h;
	size_t n;
	xdr_enc_init(&h);
	xdr_put_u32(&h, 0);
	xdr_put_u32(&h, NFS4_MINOR_VERSION);
	xdr_put_u32(&h, 1);
	xdr_put_u32(&h, op);
	struct iovec iov[2] = {{h.buf, h.len}, {args->buf, args->len}};
	int err = h.err ? h.err : args->err;
	if (!err) {
		rpcstats_count(c->rpcs, op);
		err = rpc_call(c->conn, NFS4_PROGRAM, NFS4_VERSION, NFS4_PROC_COMPOUND,
			       &machine_cred, iov, args->len ? 2 : 1, &res->rep);
	}
	xdr_enc_free(&h);
	if (err)
		return err;
	xdr_dec_init(&res->d, res->rep.body, res->rep.body_len);
	res->status = xdr_get_u32(&res->d);
	(void)xdr_get_opaque(&res->d, &n, NFS4_OPAQUE_LIMIT);
	res->left = xdr_get_u32(&res->d);
	if (res->d.err) {
		res_free(res);
		return -EBADMSG;
	}
	if (res->left == 0) {
		res_free(res);
		return res->status ? nfs4_errno(res->status) : -EBADMSG;
	}
	int st = res_op(res, op);
	if (st != 0) {
		res_free(res);
		return st < 0 ? st : nfs4_errno((uint32_t)st);
	}
	return 0;
}

static int exchange_id(struct nfs_client *c, char *err, size_t errlen)
{
	struct xdr_enc a;
	struct nfs_res r;
	xdr_enc_init(&a);
	xdr_put_fixed(&a, c->verifier, NFS4_VERIFIER_SIZE);
	xdr_put_string(&a, c->owner);
	xdr_put_u32(&a, 0);	   /* flags: no pNFS, no migration */
	xdr_put_u32(&a, SP4_NONE); /* state protection */
	xdr_put_u32(&a, 0);	   /* no implementation id */
	int e = call_single(c, &a, NFS4_OP_EXCHANGE_ID, &r);
	xdr_enc_free(&a);
	if (e) {
		snprintf(err, errlen, "EXCHANGE_ID: %s", strerror(-e));
		return e;
	}
	__atomic_store_n(&c->clientid, xdr_get_u64(&r.d), __ATOMIC_RELAXED);
	c->cs_seq = xdr_get_u32(&r.d);
	(void)xdr_get_u32(&r.d); /* flags */
	uint32_t sp = xdr_get_u32(&r.d);
	e = r.d.err ? -EBADMSG : 0;
	if (!e && sp != SP4_NONE)
		e = -EPROTO;
	res_free(&r);
	if (e)
		snprintf(err, errlen, "EXCHANGE_ID: %s",
			 e == -EPROTO ? "server insists on state protection" : "malformed reply");
	return e;
}

static void put_channel(struct xdr_enc *a, uint32_t req, uint32_t resp, uint32_t cached,
			uint32_t ops, uint32_t reqs)
{
	xdr_put_u32(a, 0); /* headerpadsize */
	xdr_put_u32(a, req);
	xdr_put_u32(a, resp);
	xdr_put_u32(a, cached);
	xdr_put_u32(a, ops);
	xdr_put_u32(a, reqs);
	xdr_put_u32(a, 0); /* no RDMA ird */
}

static int create_session(struct nfs_client *c, char *err, size_t errlen)
{
	struct xdr_enc a;
	struct nfs_res r;
	uint32_t io = c->opts.max_io;
	xdr_enc_init(&a);
	xdr_put_u64(&a, c->clientid);
	xdr_put_u32(&a, c->cs_seq);
	xdr_put_u32(&a, 0); /* flags: no persistence, no back channel */
	put_channel(&a, io + NFS_HDR_ROOM, io + NFS_HDR_ROOM, NFS_CACHED_REPLY_MAX,
		    NFS_MAX_OPS_ASKED, c->opts.slots);
	put_channel(&a, NFS_BACK_CHAN_MAX, NFS_BACK_CHAN_MAX, 0, 2, 1);
	xdr_put_u32(&a, NFS4_CALLBACK_PROGRAM);
	xdr_put_u32(&a, 1); /* one callback security parameter: AUTH_SYS root */
	xdr_put_u32(&a, 1);
	xdr_put_u32(&a, 0);
	xdr_put_string(&a, "efsmt");
	xdr_put_u32(&a, 0);
	xdr_put_u32(&a, 0);
	xdr_put_u32(&a, 0);
	int e = call_single(c, &a, NFS4_OP_CREATE_SESSION, &r);
	xdr_enc_free(&a);
	if (e) {
		snprintf(err, errlen, "CREATE_SESSION: %s", strerror(-e));
		return e;
	}
	const uint8_t *sid = xdr_get_fixed(&r.d, NFS4_SESSIONID_SIZE);
	(void)xdr_get_u32(&r.d); /* sequence */
	(void)xdr_get_u32(&r.d); /* flags */
	(void)xdr_get_u32(&r.d); /* headerpadsize */
	uint32_t maxreq = xdr_get_u32(&r.d);
	uint32_t maxresp = xdr_get_u32(&r.d);
	uint32_t maxcached = xdr_get_u32(&r.d);
	uint32_t maxops = xdr_get_u32(&r.d);
	uint32_t maxreqs = xdr_get_u32(&r.d);
	if (r.d.err || maxreqs == 0 || maxops < 3 || maxreq < NFS_HDR_ROOM / 4) {
		res_free(&r);
		snprintf(err, errlen, "CREATE_SESSION: malformed or unusable reply");
		return -EBADMSG;
	}
	memcpy(c->sessionid, sid, NFS4_SESSIONID_SIZE);
	res_free(&r);
	c->cs_seq++;
	c->max_req = maxreq;
	c->max_resp = maxresp;
	atomic_store(&c->max_cached, maxcached);
	c->max_ops = maxops;
	uint32_t n = maxreqs < c->opts.slots ? maxreqs : c->opts.slots;
	struct nfs_slot *s = calloc(n, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&c->slot_lock);
	free(c->slots);
	c->slots = s;
	c->nslots = n;
	pthread_mutex_unlock(&c->slot_lock);
	return 0;
}

static int reclaim_complete(struct nfs_client *c)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	comp_op(&cp, NFS4_OP_RECLAIM_COMPLETE);
	xdr_put_bool(&cp.x, 0); /* rca_one_fs */
	int e = compound_once(c, NULL, &cp, &r);
	comp_free(&cp);
	if (e == FIN_DONE) {
		int st = res_op(&r, NFS4_OP_RECLAIM_COMPLETE);
		e = st == 0 || st == NFS4ERR_COMPLETE_ALREADY ? 0
		    : st < 0				      ? st
							      : nfs4_errno((uint32_t)st);
		res_free(&r);
	} else if (e > 0) {
		e = -EIO;
	}
	return e;
}

/* Connect and set up a session; caller holds the state lock for writing. */
static void set_conn(struct nfs_client *c, struct rpc_conn *conn)
{
	pthread_mutex_lock(&c->conn_lock);
	struct rpc_conn *old = c->conn;
	c->conn = conn;
	pthread_mutex_unlock(&c->conn_lock);
	if (old)
		rpc_conn_close(old);
}

int establish(struct nfs_client *c, char *err, size_t errlen)
{
	struct rpc_conn *conn = NULL;
	set_conn(c, NULL);
	int e = rpc_connect_tls(c->host, c->opts.port, NFS_CONNECT_TIMEOUT_MS, c->opts.tls, &conn,
				err, errlen);
	if (e)
		return e;
	set_conn(c, conn);
	rpc_conn_set_timeout(c->conn, c->opts.timeout_ms);
	rpc_conn_set_max_record(c->conn, c->opts.max_io + 2 * NFS_HDR_ROOM);
	/* The connections of one client ID take turns: CREATE_SESSION must
	 * carry the sequence id that the EXCHANGE_ID before it answered. */
	if (c->opts.clid)
		pthread_mutex_lock(&c->opts.clid->lock);
	e = exchange_id(c, err, errlen);
	if (!e)
		e = create_session(c, err, errlen);
	if (c->opts.clid)
		pthread_mutex_unlock(&c->opts.clid->lock);
	if (!e) {
		e = reclaim_complete(c);
		if (e)
			snprintf(err, errlen, "RECLAIM_COMPLETE: %s", strerror(-e));
	}
	if (e) {
		set_conn(c, NULL);
		return e;
	}
	c->gen++;
	atomic_store(&c->broken, 0);
	atomic_store(&c->last_ok_ms, nfs_now_ms());
	return 0;
}

/* ---- recovery: rebuilding a lost session, fail-over ---- */

/* Set while this thread probes a client that is down (nfs_client_probe). */
static __thread int probing;

/* Rebuild the connection and session unless another thread already did
 * since generation seen. */
int rebuild(struct nfs_client *c, unsigned seen)
{
	char err[256];
	int e = 0;
	if (atomic_load(&c->down) && !probing)
		return -ENOTCONN; /* only a probe reconnects to a server that went away */
	pthread_rwlock_wrlock(&c->state);
	if (c->gen == seen || atomic_load(&c->broken)) {
		e = establish(c, err, sizeof err);
		if (!e)
			c->reconnects++;
		pthread_mutex_lock(&c->conn_lock);
		snprintf(c->last_err, sizeof c->last_err, "%s", e ? err : "");
		pthread_mutex_unlock(&c->conn_lock);
	}
	pthread_rwlock_unlock(&c->state);
	return e;
}

/* Take the state lock for reading with a working session; 0 or -errno. */
int acquire(struct nfs_client *c, unsigned *gen)
{
	if (!c->renew_started)
		(void)renew_start(c);
	for (int i = 0; i < NFS_REBUILDS_PER_CALL; i++) {
		if (atomic_load(&c->down) && !probing)
			return -ENOTCONN; /* fail fast: the daemon routes around it */
		pthread_rwlock_rdlock(&c->state);
		if (!atomic_load(&c->broken) && c->conn && !rpc_conn_error(c->conn)) {
			*gen = c->gen;
			return 0;
		}
		unsigned g = c->gen;
		pthread_rwlock_unlock(&c->state);
		int e = rebuild(c, g);
		if (e)
			return e;
	}
	return -EIO;
}

void nfs_client_abort(struct nfs_client *c)
{
	atomic_store(&c->down, 1);
	atomic_store(&c->broken, 1);
	pthread_mutex_lock(&c->conn_lock);
	if (c->conn)
		rpc_conn_kill(c->conn, -ECONNABORTED);
	pthread_mutex_unlock(&c->conn_lock);
}

long long nfs_client_lease_left_ms(struct nfs_client *c)
{
	pthread_rwlock_rdlock(&c->state);
	long long lease = (long long)c->lease_s * 1000;
	pthread_rwlock_unlock(&c->state);
	long long left = atomic_load(&c->last_ok_ms) + lease - nfs_now_ms();
	return left > 0 ? left : 0;
}

int nfs_client_probe(struct nfs_client *c)
{
	probing = 1;
	int e = nfs_ping(c);
	probing = 0;
	if (!e)
		atomic_store(&c->down, 0);
	return e;
}
