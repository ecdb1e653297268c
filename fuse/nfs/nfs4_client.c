/*
 * nfs4_client.c - one client: its lifetime (open, close, fork), the slot
 * table and SEQUENCE, COMPOUNDs run with retries, lease renewal. Setting
 * up the session and getting it back are nfs4_session.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "nfs4_int.h"
#include "wait.h"

#define NFS_RENEW_TICK_MS 1000
#define NFS_LEASE_DEFAULT_S 90
#define NFS_BATCH_WINDOW 16	     /* COMPOUNDs one batch keeps in flight */

/* After fork(2) the child has the clients but not their renewal threads,
 * and its connections are dead (rpc.c): it rebuilds the sessions on its
 * own connections and starts renewal again on first use. The handlers hold
 * each client's locks across fork so that none is copied held. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nfs_client *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	for (struct nfs_client *c = registry; c; c = c->reg_next) {
		pthread_rwlock_wrlock(&c->state);
		pthread_mutex_lock(&c->conn_lock);
		pthread_mutex_lock(&c->slot_lock);
		pthread_mutex_lock(&c->renew_lock);
	}
}

static void fork_parent(void)
{
	for (struct nfs_client *c = registry; c; c = c->reg_next) {
		pthread_mutex_unlock(&c->renew_lock);
		pthread_mutex_unlock(&c->slot_lock);
		pthread_mutex_unlock(&c->conn_lock);
		pthread_rwlock_unlock(&c->state);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void init_locks(struct nfs_client *c);

/* The child is single-threaded here; its thread id is new, so the locks
 * are made afresh rather than unlocked (a rwlock remembers its writer). */
static void fork_child(void)
{
	for (struct nfs_client *c = registry; c; c = c->reg_next) {
		c->renew_started = 0;
		atomic_store(&c->broken, 1);
		for (uint32_t i = 0; i < c->nslots; i++)
			c->slots[i].busy = 0;
		init_locks(c);
	}
	pthread_mutex_init(&registry_lock, NULL);
}

static void atfork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void registry_add(struct nfs_client *c)
{
	pthread_once(&atfork_once, atfork_init);
	pthread_mutex_lock(&registry_lock);
	c->reg_prev = NULL;
	c->reg_next = registry;
	if (registry)
		registry->reg_prev = c;
	registry = c;
	pthread_mutex_unlock(&registry_lock);
}

static void registry_del(struct nfs_client *c)
{
	pthread_mutex_lock(&registry_lock);
	if (c->reg_prev)
		c->reg_prev->reg_next = c->reg_next;
	else if (registry == c)
		registry = c->reg_next;
	if (c->reg_next)
		c->reg_next->reg_prev = c->reg_prev;
	pthread_mutex_unlock(&registry_lock);
}

const struct rpc_auth machine_cred = { 0, 0, 0, { 0 } };

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- slots ---- */

static uint32_t slot_get(struct nfs_client *c)
{
	pthread_mutex_lock(&c->slot_lock);
	for (;;) {
		for (uint32_t i = 0; i < c->nslots; i++) {
			if (!c->slots[i].busy) {
				c->slots[i].busy = 1;
				pthread_mutex_unlock(&c->slot_lock);
				return i;
			}
		}
		pthread_cond_wait(&c->slot_cond, &c->slot_lock);
	}
}

/* n slots at once (n <= nslots), so that a batch never holds some while
 * waiting for more. */
static void slot_get_many(struct nfs_client *c, uint32_t *out, uint32_t n)
{
	pthread_mutex_lock(&c->slot_lock);
	for (;;) {
		uint32_t got = 0;
		for (uint32_t i = 0; i < c->nslots && got < n; i++)
			if (!c->slots[i].busy)
				out[got++] = i;
		if (got == n)
			break;
		pthread_cond_wait(&c->slot_cond, &c->slot_lock);
	}
	for (uint32_t i = 0; i < n; i++)
		c->slots[out[i]].busy = 1;
	pthread_mutex_unlock(&c->slot_lock);
}

static void slot_put(struct nfs_client *c, uint32_t i, int advance)
{
	pthread_mutex_lock(&c->slot_lock);
	if (advance)
		c->slots[i].seqid++;
	c->slots[i].busy = 0;
	pthread_cond_broadcast(&c->slot_cond);
	pthread_mutex_unlock(&c->slot_lock);
}

/* The highest slot id now in use (for sa_highest_slotid). */
static uint32_t slot_highest(struct nfs_client *c)
{
	uint32_t hi = 0;
	pthread_mutex_lock(&c->slot_lock);
	for (uint32_t i = 0; i < c->nslots; i++)
		if (c->slots[i].busy)
			hi = i;
	pthread_mutex_unlock(&c->slot_lock);
	return hi;
}

/* ---- one COMPOUND on the current session ---- */

struct inflight {
	struct rpc_call call;
	struct xdr_enc hdr;
	uint32_t slot;
	int sent;
};

static int compound_send(struct nfs_client *c, const struct rpc_auth *cr,
			 struct nfs_compound *cp, struct inflight *f)
{
	static const uint8_t zero_pad[4];
	xdr_enc_init(&f->hdr);
	f->sent = 0;
	uint32_t seqid;
	pthread_mutex_lock(&c->slot_lock);
	seqid = c->slots[f->slot].seqid + 1;
	pthread_mutex_unlock(&c->slot_lock);
	struct xdr_enc *h = &f->hdr;
	xdr_put_u32(h, 0); /* tag: empty */
	xdr_put_u32(h, NFS4_MINOR_VERSION);
	xdr_put_u32(h, cp->nops + 1);
	xdr_put_u32(h, NFS4_OP_SEQUENCE);
	xdr_put_fixed(h, c->sessionid, NFS4_SESSIONID_SIZE);
	xdr_put_u32(h, seqid);
	xdr_put_u32(h, f->slot);
	xdr_put_u32(h, slot_highest(c));
	xdr_put_bool(h, cp->cachethis);
	if (h->err || cp->x.err)
		return h->err ? h->err : cp->x.err;
	struct iovec iov[5];
	int n = 0;
	iov[n++] = (struct iovec){ h->buf, h->len };
	if (cp->payload) {
		iov[n++] = (struct iovec){ cp->x.buf, cp->split };
		iov[n++] = (struct iovec){ (void *)cp->payload, cp->payload_len };
		size_t pad = xdr_pad4(cp->payload_len) - cp->payload_len;
		if (pad)
			iov[n++] = (struct iovec){ (void *)zero_pad, pad };
		if (cp->x.len > cp->split)
			iov[n++] = (struct iovec){ cp->x.buf + cp->split, cp->x.len - cp->split };
	} else if (cp->x.len) {
		iov[n++] = (struct iovec){ cp->x.buf, cp->x.len };
	}
	int err = rpc_send(c->conn, &f->call, NFS4_PROGRAM, NFS4_VERSION, NFS4_PROC_COMPOUND,
			   cr ? cr : &machine_cred, iov, n);
	if (!err) {
		f->sent = 1;
		rpcstats_count(c->rpcs, cp->main_op ? cp->main_op : NFS4_OP_SEQUENCE);
	}
	return err;
}

/* Wait for a sent COMPOUND and check its SEQUENCE; FIN_* or -errno. The
 * slot is released here. */
static int compound_finish(struct nfs_client *c, struct inflight *f, struct nfs_res *res,
			   int send_err)
{
	int advance = 0, fin;
	memset(res, 0, sizeof *res);
	xdr_enc_free(&f->hdr);
	if (!f->sent) {
		slot_put(c, f->slot, 0);
		return send_err == -ENOMEM ? -ENOMEM : FIN_REBUILD;
	}
	int err = rpc_wait(c->conn, &f->call, &res->rep);
	if (err) {
		/* No reply: the slot's state on the server is unknown. */
		slot_put(c, f->slot, 0);
		if (err == -EACCES || err == -EINVAL || err == -EOPNOTSUPP ||
		    err == -EPROTONOSUPPORT)
			return err;
		return FIN_REBUILD;
	}
	struct xdr_dec *d = &res->d;
	size_t n;
	xdr_dec_init(d, res->rep.body, res->rep.body_len);
	res->status = xdr_get_u32(d);
	(void)xdr_get_opaque(d, &n, NFS4_OPAQUE_LIMIT);
	uint32_t nres = xdr_get_u32(d);
	uint32_t op = xdr_get_u32(d);
	uint32_t st = xdr_get_u32(d);
	if (d->err || nres == 0 || op != NFS4_OP_SEQUENCE) {
		fin = d->err || op != NFS4_OP_SEQUENCE ? -EBADMSG : nfs4_errno(res->status);
		if (!d->err && nres == 0 && res->status == NFS4ERR_BADSESSION)
			fin = FIN_REBUILD;
		goto out;
	}
	if (st == NFS4_OK) {
		const uint8_t *sid = xdr_get_fixed(d, NFS4_SESSIONID_SIZE);
		(void)xdr_get_u32(d); /* sequenceid */
		uint32_t slotid = xdr_get_u32(d);
		(void)xdr_get_u32(d); /* highest_slotid */
		(void)xdr_get_u32(d); /* target_highest_slotid */
		(void)xdr_get_u32(d); /* status_flags: no back channel, so ignored */
		if (d->err || memcmp(sid, c->sessionid, NFS4_SESSIONID_SIZE) || slotid != f->slot) {
			fin = -EBADMSG;
			goto out;
		}
		advance = 1;
		res->left = nres - 1;
		fin = FIN_DONE;
		atomic_store(&c->last_ok_ms, nfs_now_ms());
	} else if (st == NFS4ERR_DELAY) {
		fin = FIN_DELAY;
	} else if (st == NFS4ERR_BADSESSION || st == NFS4ERR_DEADSESSION ||
		   st == NFS4ERR_BADSLOT || st == NFS4ERR_SEQ_MISORDERED ||
		   st == NFS4ERR_STALE_CLIENTID || st == NFS4ERR_EXPIRED) {
		fin = FIN_REBUILD;
	} else {
		fin = nfs4_errno(st);
	}
out:
	slot_put(c, f->slot, advance);
	if (fin != FIN_DONE)
		res_free(res);
	if (fin == -EBADMSG)
		rpc_conn_kill(c->conn, -EBADMSG);
	return fin;
}

/* One COMPOUND without retries; caller holds the state lock. */
int compound_once(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_compound *cp,
		  struct nfs_res *res)
{
	struct inflight f;
	f.slot = slot_get(c);
	int e = compound_send(c, cr, cp, &f);
	return compound_finish(c, &f, res, e);
}

static int retry_status(uint32_t st)
{
	return st == NFS4ERR_DELAY || st == NFS4ERR_GRACE;
}

static void backoff(unsigned *delay)
{
	sleep_ms(*delay);
	*delay = *delay * 2 > NFS_DELAY_RETRY_MAX_MS ? NFS_DELAY_RETRY_MAX_MS : *delay * 2;
}

int nfs_compound_run(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_compound *cp,
		     struct nfs_res *res)
{
	unsigned delay = NFS_DELAY_RETRY_MS;
	int rebuilds = 0;
	for (int attempt = 0;; attempt++) {
		unsigned gen;
		int e = acquire(c, &gen);
		if (e)
			return e;
		e = compound_once(c, cr, cp, res);
		pthread_rwlock_unlock(&c->state);
		if (e == FIN_DONE) {
			if (!retry_status(res->status) || attempt >= NFS_DELAY_RETRIES)
				return 0;
			res_free(res);
			backoff(&delay);
		} else if (e == FIN_DELAY) {
			if (attempt >= NFS_DELAY_RETRIES)
				return -EAGAIN;
			backoff(&delay);
		} else if (e == FIN_REBUILD) {
			atomic_store(&c->broken, 1);
			if (++rebuilds > NFS_REBUILDS_PER_CALL)
				return -EIO;
			e = rebuild(c, gen);
			if (e)
				return e;
		} else {
			return e;
		}
	}
}

void nfs_compound_batch(struct nfs_client *c, const struct rpc_auth *cr,
			struct nfs_compound *cps, struct nfs_res *res, int *errs, int n)
{
	struct inflight f[NFS_BATCH_WINDOW];
	for (int base = 0; base < n; base += NFS_BATCH_WINDOW) {
		int m = n - base < NFS_BATCH_WINDOW ? n - base : NFS_BATCH_WINDOW;
		unsigned gen;
		int e = acquire(c, &gen);
		if (e) {
			for (int i = base; i < n; i++)
				errs[i] = e;
			return;
		}
		/* Never hold more than half the slots, so batches cannot starve
		 * each other. */
		uint32_t window = c->nslots / 2 ? c->nslots / 2 : 1;
		if ((uint32_t)m > window)
			m = (int)window;
		int fin[NFS_BATCH_WINDOW];
		int serr[NFS_BATCH_WINDOW];
		uint32_t slots[NFS_BATCH_WINDOW];
		slot_get_many(c, slots, (uint32_t)m);
		for (int i = 0; i < m; i++) {
			f[i].slot = slots[i];
			serr[i] = compound_send(c, cr, &cps[base + i], &f[i]);
		}
		for (int i = 0; i < m; i++)
			fin[i] = compound_finish(c, &f[i], &res[base + i], serr[i]);
		pthread_rwlock_unlock(&c->state);
		for (int i = 0; i < m; i++) {
			int k = base + i;
			if (fin[i] == FIN_DONE && !retry_status(res[k].status)) {
				errs[k] = 0;
				continue;
			}
			if (fin[i] == FIN_DONE)
				res_free(&res[k]);
			if (fin[i] < 0) {
				errs[k] = fin[i];
				continue;
			}
			if (fin[i] == FIN_REBUILD)
				atomic_store(&c->broken, 1);
			/* Slow path: this one again on its own, with retries. */
			errs[k] = nfs_compound_run(c, cr, &cps[k], &res[k]);
		}
		base -= NFS_BATCH_WINDOW - m;
	}
}

/* ---- lease renewal ---- */

static void *renew_main(void *arg)
{
	struct nfs_client *c = arg;
	pthread_mutex_lock(&c->renew_lock);
	while (!c->stopping) {
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += NFS_RENEW_TICK_MS / 1000;
		pthread_cond_timedwait(&c->renew_cond, &c->renew_lock, &dl);
		if (c->stopping)
			break;
		long long idle = nfs_now_ms() - atomic_load(&c->last_ok_ms);
		/* Renew at a third of the lease, so two lost renewals still
		 * leave time. */
		if (idle < (long long)c->lease_s * 1000 / 3)
			continue;
		pthread_mutex_unlock(&c->renew_lock);
		(void)nfs_ping(c);
		pthread_mutex_lock(&c->renew_lock);
	}
	pthread_mutex_unlock(&c->renew_lock);
	return NULL;
}

/* Start the renewal thread unless it runs; 0 or -EAGAIN. */
int renew_start(struct nfs_client *c)
{
	int e = 0;
	pthread_mutex_lock(&c->renew_lock);
	if (!c->renew_started && !c->stopping) {
		if (pthread_create(&c->renew_thread, NULL, renew_main, c) == 0)
			c->renew_started = 1;
		else
			e = -EAGAIN;
	}
	pthread_mutex_unlock(&c->renew_lock);
	return e;
}

int nfs_ping(struct nfs_client *c)
{
	struct nfs_compound cp;
	struct nfs_res r;
	comp_init(&cp);
	int e = nfs_compound_run(c, NULL, &cp, &r);
	comp_free(&cp);
	if (!e) {
		e = nfs4_errno(r.status);
		res_free(&r);
	}
	return e;
}

/* ---- lifetime ---- */

/* An owner unique to this daemon and call, and a random verifier. */
static void make_owner(char *owner, size_t len, uint8_t verifier[NFS4_VERIFIER_SIZE])
{
	static atomic_uint counter;
	char host[64] = "localhost";
	uint64_t rnd = 0;
	gethostname(host, sizeof host - 1);
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint64_t)nfs_now_ms() ^ (uint64_t)(uintptr_t)owner;
	snprintf(owner, len, "efsmt:%s:%d:%u:%016llx", host, (int)getpid(),
		 atomic_fetch_add(&counter, 1), (unsigned long long)rnd);
	if (getrandom(verifier, NFS4_VERIFIER_SIZE, 0) != NFS4_VERIFIER_SIZE)
		memcpy(verifier, &rnd, NFS4_VERIFIER_SIZE);
}

struct nfs_clid *nfs_clid_new(void)
{
	struct nfs_clid *id = calloc(1, sizeof *id);
	if (!id)
		return NULL;
	pthread_mutex_init(&id->lock, NULL);
	make_owner(id->owner, sizeof id->owner, id->verifier);
	return id;
}

void nfs_clid_free(struct nfs_clid *id)
{
	if (!id)
		return;
	pthread_mutex_destroy(&id->lock);
	free(id);
}

static void init_locks(struct nfs_client *c)
{
	pthread_rwlock_init(&c->state, NULL);
	pthread_mutex_init(&c->conn_lock, NULL);
	pthread_mutex_init(&c->slot_lock, NULL);
	pthread_cond_init(&c->slot_cond, NULL);
	pthread_mutex_init(&c->renew_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->renew_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void client_free(struct nfs_client *c)
{
	if (c->conn)
		rpc_conn_close(c->conn);
	free(c->slots);
	pthread_rwlock_destroy(&c->state);
	pthread_mutex_destroy(&c->conn_lock);
	pthread_mutex_destroy(&c->slot_lock);
	pthread_cond_destroy(&c->slot_cond);
	pthread_mutex_destroy(&c->renew_lock);
	pthread_cond_destroy(&c->renew_cond);
	free(c);
}

/* Lease time and I/O sizes from the root's attributes. */
static int read_limits(struct nfs_client *c, char *err, size_t errlen)
{
	struct nfs_compound cp;
	struct nfs_res r;
	struct nfs_attr a;
	comp_init(&cp);
	comp_op(&cp, NFS4_OP_PUTROOTFH);
	comp_op(&cp, NFS4_OP_GETATTR);
	xdr_put_u32(&cp.x, 1);
	xdr_put_u32(&cp.x, 1u << FATTR4_LEASE_TIME | 1u << FATTR4_MAXNAME |
				   1u << FATTR4_MAXREAD | 1u << FATTR4_MAXWRITE);
	int e = nfs_compound_run(c, NULL, &cp, &r);
	comp_free(&cp);
	if (e) {
		snprintf(err, errlen, "GETATTR of the root: %s", strerror(-e));
		return e;
	}
	int st = res_op(&r, NFS4_OP_PUTROOTFH);
	if (st == 0)
		st = res_op(&r, NFS4_OP_GETATTR);
	if (st == 0)
		st = nfs4_decode_fattr(&r.d, &a);
	res_free(&r);
	if (st) {
		e = st < 0 ? st : nfs4_errno((uint32_t)st);
		snprintf(err, errlen, "GETATTR of the root: %s", strerror(-e));
		return e;
	}
	uint32_t io = c->opts.max_io;
	c->lease_s = (a.have & NFS_A_LEASE) && a.lease_time ? a.lease_time : NFS_LEASE_DEFAULT_S;
	c->maxread = c->maxwrite = io;
	if ((a.have & NFS_A_MAXIO) && a.maxread && a.maxread < c->maxread)
		c->maxread = (uint32_t)a.maxread;
	if ((a.have & NFS_A_MAXIO) && a.maxwrite && a.maxwrite < c->maxwrite)
		c->maxwrite = (uint32_t)a.maxwrite;
	if (c->max_resp > NFS_HDR_ROOM && c->max_resp - NFS_HDR_ROOM < c->maxread)
		c->maxread = c->max_resp - NFS_HDR_ROOM;
	if (c->max_req > NFS_HDR_ROOM && c->max_req - NFS_HDR_ROOM < c->maxwrite)
		c->maxwrite = c->max_req - NFS_HDR_ROOM;
	return 0;
}

int nfs_client_open(const char *host, const struct nfs_opts *opts, struct nfs_client **out,
		    char *err, size_t errlen)
{
	struct nfs_client *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(c->host, sizeof c->host, "%s", host);
	if (opts)
		c->opts = *opts;
	if (!c->opts.port)
		c->opts.port = NFS_DEFAULT_PORT;
	if (c->opts.timeout_ms <= 0)
		c->opts.timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	if (!c->opts.slots)
		c->opts.slots = NFS_DEFAULT_SLOTS;
	if (!c->opts.max_io || c->opts.max_io > NFS_IO_MAX)
		c->opts.max_io = NFS_IO_MAX;
	init_locks(c);
	c->rpcs = c->opts.clid ? &c->opts.clid->rpcs : &c->own_rpcs;
	if (c->opts.clid) {
		memcpy(c->owner, c->opts.clid->owner, sizeof c->owner);
		memcpy(c->verifier, c->opts.clid->verifier, sizeof c->verifier);
	} else {
		make_owner(c->owner, sizeof c->owner, c->verifier);
	}

	pthread_rwlock_wrlock(&c->state);
	int e = establish(c, err, errlen);
	pthread_rwlock_unlock(&c->state);
	if (!e)
		e = read_limits(c, err, errlen);
	if (!e && renew_start(c) != 0) {
		snprintf(err, errlen, "cannot start the lease renewal thread");
		e = -EAGAIN;
	}
	if (e) {
		client_free(c);
		return e;
	}
	registry_add(c);
	*out = c;
	return 0;
}

void nfs_client_close(struct nfs_client *c)
{
	if (!c)
		return;
	registry_del(c);
	pthread_mutex_lock(&c->renew_lock);
	c->stopping = 1;
	int joinable = c->renew_started;
	pthread_cond_signal(&c->renew_cond);
	pthread_mutex_unlock(&c->renew_lock);
	if (joinable)
		pthread_join(c->renew_thread, NULL);
	pthread_rwlock_wrlock(&c->state);
	if (c->conn && !atomic_load(&c->broken) && !rpc_conn_error(c->conn)) {
		struct xdr_enc a;
		struct nfs_res r;
		xdr_enc_init(&a);
		xdr_put_fixed(&a, c->sessionid, NFS4_SESSIONID_SIZE);
		if (call_single(c, &a, NFS4_OP_DESTROY_SESSION, &r) == 0)
			res_free(&r);
		xdr_enc_reset(&a);
		xdr_put_u64(&a, c->clientid);
		if (call_single(c, &a, NFS4_OP_DESTROY_CLIENTID, &r) == 0)
			res_free(&r);
		xdr_enc_free(&a);
	}
	pthread_rwlock_unlock(&c->state);
	client_free(c);
}

void nfs_client_info(struct nfs_client *c, struct nfs_info *info)
{
	pthread_rwlock_rdlock(&c->state);
	info->clientid = c->clientid;
	info->slots = c->nslots;
	info->lease_time = c->lease_s;
	info->maxread = c->maxread;
	info->maxwrite = c->maxwrite;
	info->max_ops = c->max_ops;
	info->reconnects = c->reconnects;
	pthread_rwlock_unlock(&c->state);
}

void nfs_client_last_error(struct nfs_client *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->conn_lock);
	snprintf(buf, len, "%s", c->last_err);
	pthread_mutex_unlock(&c->conn_lock);
}

int nfs_client_tls_info(struct nfs_client *c, struct tls_info *info)
{
	pthread_mutex_lock(&c->conn_lock);
	int on = c->conn ? rpc_conn_tls_info(c->conn, info) : 0;
	pthread_mutex_unlock(&c->conn_lock);
	return on;
}

uint32_t nfs_max_ops(struct nfs_client *c)
{
	return c->max_ops;
}

uint32_t nfs_io_read(struct nfs_client *c)
{
	return c->maxread;
}

uint32_t nfs_cached_read_max(struct nfs_client *c)
{
	uint32_t cached = atomic_load(&c->max_cached);
	/* less than a page is not worth the OPEN's bigger reply */
	if (cached < NFS_CACHED_REPLY_ROOM + 4096)
		return 0;
	return cached - NFS_CACHED_REPLY_ROOM;
}

uint32_t nfs_io_write(struct nfs_client *c)
{
	return c->maxwrite;
}

uint64_t nfs_client_id(struct nfs_client *c)
{
	return c->clientid;
}

uint64_t nfs_client_current_id(struct nfs_client *c)
{
	/* Without the state lock: a rebuild holds it while it connects. */
	return __atomic_load_n(&c->clientid, __ATOMIC_RELAXED);
}

uint64_t nfs_next_owner(struct nfs_client *c)
{
	/* One counter for the daemon: open and lock owners stay unique when
	 * several connections are one client (nfs_clid). */
	static atomic_uint_fast64_t next = 1;
	(void)c;
	return atomic_fetch_add(&next, 1);
}

/* ---- RPC counts ---- */

static void rpcs_snapshot(const struct nfs_rpcstats *s, struct nfs_rpc_counts *out)
{
	for (unsigned i = 0; i < NFS_RPC_SLOTS; i++)
		out->n[i] = atomic_load_explicit(&s->n[i], memory_order_relaxed);
}

void nfs_clid_rpcs(const struct nfs_clid *id, struct nfs_rpc_counts *out)
{
	rpcs_snapshot(&id->rpcs, out);
}

void nfs_client_rpcs(const struct nfs_client *c, struct nfs_rpc_counts *out)
{
	rpcs_snapshot(c->rpcs, out);
}

/* RFC 8881 (NFSv4.1, with the NFSv4.0 numbers it keeps), RFC 7862 (4.2),
 * RFC 8276 (extended attributes). */
static const char *const op_names[NFS_RPC_SLOTS] = {
	[0] = "OTHER",
	[3] = "ACCESS",
	[4] = "CLOSE",
	[5] = "COMMIT",
	[6] = "CREATE",
	[7] = "DELEGPURGE",
	[8] = "DELEGRETURN",
	[9] = "GETATTR",
	[10] = "GETFH",
	[11] = "LINK",
	[12] = "LOCK",
	[13] = "LOCKT",
	[14] = "LOCKU",
	[15] = "LOOKUP",
	[16] = "LOOKUPP",
	[17] = "NVERIFY",
	[18] = "OPEN",
	[19] = "OPENATTR",
	[20] = "OPEN_CONFIRM",
	[21] = "OPEN_DOWNGRADE",
	[22] = "PUTFH",
	[23] = "PUTPUBFH",
	[24] = "PUTROOTFH",
	[25] = "READ",
	[26] = "READDIR",
	[27] = "READLINK",
	[28] = "REMOVE",
	[29] = "RENAME",
	[30] = "RENEW",
	[31] = "RESTOREFH",
	[32] = "SAVEFH",
	[33] = "SECINFO",
	[34] = "SETATTR",
	[35] = "SETCLIENTID",
	[36] = "SETCLIENTID_CONFIRM",
	[37] = "VERIFY",
	[38] = "WRITE",
	[39] = "RELEASE_LOCKOWNER",
	[40] = "BACKCHANNEL_CTL",
	[41] = "BIND_CONN_TO_SESSION",
	[42] = "EXCHANGE_ID",
	[43] = "CREATE_SESSION",
	[44] = "DESTROY_SESSION",
	[45] = "FREE_STATEID",
	[46] = "GET_DIR_DELEGATION",
	[47] = "GETDEVICEINFO",
	[48] = "GETDEVICELIST",
	[49] = "LAYOUTCOMMIT",
	[50] = "LAYOUTGET",
	[51] = "LAYOUTRETURN",
	[52] = "SECINFO_NO_NAME",
	[53] = "SEQUENCE",
	[54] = "SET_SSV",
	[55] = "TEST_STATEID",
	[56] = "WANT_DELEGATION",
	[57] = "DESTROY_CLIENTID",
	[58] = "RECLAIM_COMPLETE",
	[59] = "ALLOCATE",
	[60] = "COPY",
	[61] = "COPY_NOTIFY",
	[62] = "DEALLOCATE",
	[63] = "IO_ADVISE",
	[64] = "LAYOUTERROR",
	[65] = "LAYOUTSTATS",
	[66] = "OFFLOAD_CANCEL",
	[67] = "OFFLOAD_STATUS",
	[68] = "READ_PLUS",
	[69] = "SEEK",
	[70] = "WRITE_SAME",
	[71] = "CLONE",
	[72] = "GETXATTR",
	[73] = "SETXATTR",
	[74] = "LISTXATTRS",
	[75] = "REMOVEXATTR",
};

const char *nfs4_op_name(unsigned op)
{
	return op < NFS_RPC_SLOTS ? op_names[op] : NULL;
}

int nfs4_op_is_session(unsigned op)
{
	return op == NFS4_OP_SEQUENCE || op == NFS4_OP_EXCHANGE_ID ||
	       op == NFS4_OP_CREATE_SESSION || op == NFS4_OP_DESTROY_SESSION ||
	       op == NFS4_OP_DESTROY_CLIENTID || op == NFS4_OP_RECLAIM_COMPLETE ||
	       op == NFS4_OP_BIND_CONN_TO_SESSION;
}
