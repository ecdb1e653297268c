/* rpc.c - ONC RPC over TCP: record marking, XID matching, and replies read
 * by the callers themselves.
 *
 * Receiving: there is no thread that reads every reply and hands it on (each
 * reply would cost two wake-ups: the reader's, then the caller's). Instead
 * one of the threads waiting in rpc_wait at a time is the reader: it reads
 * whole records and delivers each to the call with its XID, and it stops
 * reading as soon as its own reply is in, handing the role to another
 * waiter. A caller alone on the connection thus sleeps in poll(2) on the
 * socket and is woken by its reply directly. A watcher thread per connection
 * sleeps on the socket's hang-up only (POLLRDHUP, which data does not
 * trigger): when the server closes, it reads what is left and fails the
 * calls in flight, so a broken connection is noticed while idle too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rpc.h"

#include "tls.h"
#include "wait.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RPC_VERSION 2
#define RPC_MSG_CALL 0
#define RPC_MSG_REPLY 1
#define RPC_MSG_ACCEPTED 0
#define RPC_MSG_DENIED 1
#define RPC_AUTH_NONE 0
#define RPC_AUTH_SYS 1
#define RPC_MAX_AUTH_BYTES 400
#define RPC_MACHINE_NAME_MAX 255
#define RPC_RM_LAST 0x80000000u
#define RPC_RM_LEN_MASK 0x7fffffffu
#define RPC_HASH_BUCKETS 256
#define RPC_MIN_RECORD 4096
#define RPC_INBUF 16384 /* read-ahead on plain TCP: a small reply in one recv */

/* accept_stat and reject_stat values (RFC 5531 section 9). */
enum { ACC_SUCCESS, ACC_PROG_UNAVAIL, ACC_PROG_MISMATCH, ACC_PROC_UNAVAIL, ACC_GARBAGE_ARGS,
       ACC_SYSTEM_ERR };
enum { REJ_RPC_MISMATCH, REJ_AUTH_ERROR };

struct rpc_conn {
	int fd;
	struct tls_conn *tls; /* NULL: plain TCP */
	pthread_t rx_thread; /* the watcher */
	int rx_started;
	pthread_mutex_t lock; /* pending, npending, dead, reading, watcher_waits */
	pthread_mutex_t send_lock;
	struct rpc_call *pending[RPC_HASH_BUCKETS];
	unsigned npending;
	int dead;
	int reading;          /* a thread owns the receive side (below) */
	int watcher_waits;    /* the watcher waits on idle for the reader */
	pthread_cond_t idle;
	/* The receive side, used only by the thread that set reading: */
	size_t in_off, in_len;
	uint8_t inbuf[RPC_INBUF];
	uint32_t next_xid;
	int timeout_ms;
	size_t max_record;
	struct rpc_conn *reg_prev, *reg_next; /* every live connection, for fork */
};

/* fork(2) (the daemon goes to the background after mounting) copies the
 * connections but not their receive threads, and parent and child would
 * share each socket: the child marks every inherited connection dead (its
 * owner reconnects) and never touches the parent's threads. The handlers
 * hold every connection's locks across fork so that none is copied held. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rpc_conn *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	for (struct rpc_conn *c = registry; c; c = c->reg_next) {
		pthread_mutex_lock(&c->send_lock);
		pthread_mutex_lock(&c->lock);
		if (c->tls)
			tls_conn_lock(c->tls);
	}
}

static void fork_parent(void)
{
	for (struct rpc_conn *c = registry; c; c = c->reg_next) {
		if (c->tls)
			tls_conn_unlock(c->tls);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&c->send_lock);
	}
	pthread_mutex_unlock(&registry_lock);
}

/* Single-threaded here, with a new thread id: fresh locks, not unlocks. */
static void fork_child(void)
{
	for (struct rpc_conn *c = registry; c; c = c->reg_next) {
		if (!c->dead)
			c->dead = -ECHILD;
		c->rx_started = 0; /* the thread stayed in the parent */
		memset(c->pending, 0, sizeof c->pending);
		c->npending = 0;
		c->reading = 0;
		c->watcher_waits = 0;
		pthread_cond_init(&c->idle, NULL);
		pthread_mutex_init(&c->lock, NULL);
		pthread_mutex_init(&c->send_lock, NULL);
		if (c->tls)
			tls_conn_reinit_lock(c->tls);
	}
	pthread_mutex_init(&registry_lock, NULL);
}

static void atfork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void registry_add(struct rpc_conn *c)
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

static void registry_del(struct rpc_conn *c)
{
	pthread_mutex_lock(&registry_lock);
	if (c->reg_prev)
		c->reg_prev->reg_next = c->reg_next;
	else
		registry = c->reg_next;
	if (c->reg_next)
		c->reg_next->reg_prev = c->reg_prev;
	pthread_mutex_unlock(&registry_lock);
}

static unsigned xid_bucket(uint32_t xid)
{
	return (xid ^ (xid >> 8) ^ (xid >> 16)) % RPC_HASH_BUCKETS;
}

void rpc_encode_call_header(struct xdr_enc *x, uint32_t xid, uint32_t prog, uint32_t vers,
			    uint32_t proc, const struct rpc_auth *auth)
{
	xdr_put_u32(x, xid);
	xdr_put_u32(x, RPC_MSG_CALL);
	xdr_put_u32(x, RPC_VERSION);
	xdr_put_u32(x, prog);
	xdr_put_u32(x, vers);
	xdr_put_u32(x, proc);
	if (auth) {
		uint32_t n = auth->ngroups < RPC_AUTH_SYS_MAX_GROUPS ? auth->ngroups
								    : RPC_AUTH_SYS_MAX_GROUPS;
		xdr_put_u32(x, RPC_AUTH_SYS);
		size_t lenpos = xdr_put_u32_slot(x);
		size_t start = x->len;
		xdr_put_u32(x, 0); /* stamp: the server ignores it */
		xdr_put_string(x, "efsmt");
		xdr_put_u32(x, auth->uid);
		xdr_put_u32(x, auth->gid);
		xdr_put_u32(x, n);
		for (uint32_t i = 0; i < n; i++)
			xdr_put_u32(x, auth->groups[i]);
		xdr_patch_u32(x, lenpos, (uint32_t)(x->len - start));
	} else {
		xdr_put_u32(x, RPC_AUTH_NONE);
		xdr_put_u32(x, 0);
	}
	xdr_put_u32(x, RPC_AUTH_NONE); /* verifier */
	xdr_put_u32(x, 0);
}

int rpc_parse_reply(const uint8_t *buf, size_t len, uint32_t xid, size_t *body_off)
{
	struct xdr_dec d;
	size_t n;
	xdr_dec_init(&d, buf, len);
	uint32_t rxid = xdr_get_u32(&d);
	uint32_t mtype = xdr_get_u32(&d);
	if (d.err)
		return -EBADMSG;
	if (rxid != xid || mtype != RPC_MSG_REPLY)
		return -EPROTO;
	uint32_t stat = xdr_get_u32(&d);
	if (d.err)
		return -EBADMSG;
	if (stat == RPC_MSG_DENIED) {
		uint32_t why = xdr_get_u32(&d);
		if (d.err)
			return -EBADMSG;
		if (why == REJ_RPC_MISMATCH)
			return -EPROTONOSUPPORT;
		if (why == REJ_AUTH_ERROR)
			return -EACCES;
		return -EBADMSG;
	}
	if (stat != RPC_MSG_ACCEPTED)
		return -EBADMSG;
	(void)xdr_get_u32(&d); /* verifier flavor */
	(void)xdr_get_opaque(&d, &n, RPC_MAX_AUTH_BYTES);
	uint32_t acc = xdr_get_u32(&d);
	if (d.err)
		return -EBADMSG;
	switch (acc) {
	case ACC_SUCCESS:
		*body_off = d.pos;
		return 0;
	case ACC_PROG_UNAVAIL:
	case ACC_PROG_MISMATCH:
		return -EPROTONOSUPPORT;
	case ACC_PROC_UNAVAIL:
		return -EOPNOTSUPP;
	case ACC_GARBAGE_ARGS:
		return -EINVAL;
	case ACC_SYSTEM_ERR:
		return -EIO;
	default:
		return -EBADMSG;
	}
}

/* Hand every pending call the error; caller holds c->lock. */
static void fail_all_locked(struct rpc_conn *c, int err)
{
	for (int b = 0; b < RPC_HASH_BUCKETS; b++) {
		for (struct rpc_call *k = c->pending[b]; k; k = k->next) {
			k->done = 1;
			k->err = err;
			pthread_cond_signal(&k->cond);
		}
		c->pending[b] = NULL;
	}
	c->npending = 0;
}

/* Mark dead (the first error stays), wake whoever reads or watches the
 * socket, fail every call in flight; caller holds c->lock. */
static void kill_locked(struct rpc_conn *c, int err)
{
	if (!c->dead)
		c->dead = err ? err : -ECONNABORTED;
	/* Reset, not close in order: requests still queued to send are
	 * dropped, so none reaches the server later (a link that comes back
	 * would deliver a WRITE the caller has sent elsewhere since). */
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	(void)connect(c->fd, &unspec, sizeof unspec);
	shutdown(c->fd, SHUT_RDWR);
	fail_all_locked(c, c->dead);
	pthread_cond_signal(&c->idle);
}

void rpc_conn_kill(struct rpc_conn *c, int err)
{
	pthread_mutex_lock(&c->lock);
	kill_locked(c, err);
	pthread_mutex_unlock(&c->lock);
}

int rpc_conn_tls_info(struct rpc_conn *c, struct tls_info *info)
{
	if (!c->tls)
		return 0;
	tls_conn_info(c->tls, info);
	return 1;
}

int rpc_conn_error(struct rpc_conn *c)
{
	pthread_mutex_lock(&c->lock);
	int e = c->dead;
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* Milliseconds left until dl (rounded up), 0 when past it, -1 without one. */
static int ms_left(const struct timespec *dl)
{
	if (!dl)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ns = (long long)(dl->tv_sec - now.tv_sec) * 1000000000LL +
		       (dl->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	long long ms = (ns + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Some bytes into buf, waiting until dl (NULL: no limit): the count, 0 at
 * EOF, or -errno (-ETIMEDOUT when dl passed). */
static long read_some(struct rpc_conn *c, void *buf, size_t n, const struct timespec *dl)
{
	if (c->tls)
		return tls_read(c->tls, buf, n, ms_left(dl));
	for (;;) {
		ssize_t r = recv(c->fd, buf, n, MSG_DONTWAIT);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int w = nfs_wait_fd(c->fd, POLLIN, ms_left(dl));
		if (w)
			return w;
	}
}

/* Read exactly n bytes; 0, or -errno (-ECONNRESET on EOF). Plain TCP reads
 * ahead into c->inbuf; TLS reads ahead in tls.c. */
static int read_full(struct rpc_conn *c, void *buf, size_t n, const struct timespec *dl)
{
	uint8_t *p = buf;
	while (n) {
		if (c->in_off < c->in_len) {
			size_t k = c->in_len - c->in_off;
			if (k > n)
				k = n;
			memcpy(p, c->inbuf + c->in_off, k);
			c->in_off += k;
			p += k;
			n -= k;
			continue;
		}
		int direct = c->tls || n >= sizeof c->inbuf;
		long r = read_some(c, direct ? p : c->inbuf, direct ? n : sizeof c->inbuf, dl);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return (int)r;
		if (direct) {
			p += r;
			n -= (size_t)r;
		} else {
			c->in_off = 0;
			c->in_len = (size_t)r;
		}
	}
	return 0;
}

/* Read one whole record (all its fragments) into *rec (malloc'd); 0 or
 * -errno. Only the thread that set c->reading calls this. */
static int read_record(struct rpc_conn *c, const struct timespec *dl, uint8_t **rec,
		       size_t *len)
{
	uint8_t *r = NULL;
	size_t n = 0;
	int err;
	for (;;) {
		uint8_t hdr[4];
		err = read_full(c, hdr, sizeof hdr, dl);
		if (err)
			break;
		uint32_t mark = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
				(uint32_t)hdr[2] << 8 | hdr[3];
		size_t frag = mark & RPC_RM_LEN_MASK;
		if (frag > c->max_record - n) {
			err = -EMSGSIZE;
			break;
		}
		uint8_t *nr = realloc(r, n + frag ? n + frag : 1);
		if (!nr) {
			err = -ENOMEM;
			break;
		}
		r = nr;
		err = read_full(c, r + n, frag, dl);
		if (err)
			break;
		n += frag;
		if (mark & RPC_RM_LAST) {
			*rec = r;
			*len = n;
			return 0;
		}
	}
	free(r);
	return err;
}

/* Deliver one complete record to its call; takes ownership of rec; caller
 * holds c->lock. */
static void deliver_locked(struct rpc_conn *c, uint8_t *rec, size_t len)
{
	if (len < 4) {
		free(rec);
		return;
	}
	uint32_t xid = (uint32_t)rec[0] << 24 | (uint32_t)rec[1] << 16 | (uint32_t)rec[2] << 8 | rec[3];
	struct rpc_call **pp = &c->pending[xid_bucket(xid)];
	while (*pp && (*pp)->xid != xid)
		pp = &(*pp)->next;
	struct rpc_call *k = *pp;
	if (k) {
		*pp = k->next;
		c->npending--;
		k->buf = rec;
		k->len = len;
		k->done = 1;
		k->err = 0;
		pthread_cond_signal(&k->cond);
		rec = NULL;
	}
	free(rec); /* nobody waits for this XID (timed out, or a stray) */
}

/* The reader stepped down: wake a caller sleeping in rpc_wait to take over
 * reading (one still sending will read when it comes to wait), else the
 * watcher if it waits; caller holds c->lock. */
static void hand_off_locked(struct rpc_conn *c)
{
	if (c->npending) {
		for (int b = 0; b < RPC_HASH_BUCKETS; b++) {
			for (struct rpc_call *k = c->pending[b]; k; k = k->next) {
				if (k->waiting) {
					pthread_cond_signal(&k->cond);
					return;
				}
			}
		}
	}
	if (c->watcher_waits)
		pthread_cond_signal(&c->idle);
}

/* The watcher: sleeps until the server closes the connection (or it
 * breaks), then reads the replies still buffered and fails the rest. */
static void *rx_main(void *arg)
{
	struct rpc_conn *c = arg;
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };
		int r = poll(&p, 1, -1);
		if (r < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&c->lock);
		while (c->reading && !c->dead) {
			c->watcher_waits = 1;
			pthread_cond_wait(&c->idle, &c->lock);
			c->watcher_waits = 0;
		}
		if (c->dead) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		c->reading = 1;
		pthread_mutex_unlock(&c->lock);
		int err;
		for (;;) {
			uint8_t *rec;
			size_t len;
			err = read_record(c, NULL, &rec, &len);
			if (err)
				break;
			pthread_mutex_lock(&c->lock);
			deliver_locked(c, rec, len);
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_lock(&c->lock);
		c->reading = 0;
		kill_locked(c, err);
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
}

static struct rpc_conn *conn_new(int fd, struct tls_conn *tls)
{
	struct rpc_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	c->tls = tls;
	c->timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	c->max_record = RPC_MAX_RECORD_DEFAULT;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	uint32_t seed = (uint32_t)getpid() ^ (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)c;
	c->next_xid = seed * 2654435761u;
	if (pthread_create(&c->rx_thread, NULL, rx_main, c) != 0) {
		pthread_mutex_destroy(&c->lock);
		pthread_mutex_destroy(&c->send_lock);
		pthread_cond_destroy(&c->idle);
		free(c);
		return NULL;
	}
	c->rx_started = 1;
	registry_add(c);
	return c;
}

struct rpc_conn *rpc_conn_from_fd(int fd)
{
	return conn_new(fd, NULL);
}

void rpc_conn_set_timeout(struct rpc_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

void rpc_conn_set_max_record(struct rpc_conn *c, size_t bytes)
{
	c->max_record = bytes < RPC_MIN_RECORD ? RPC_MIN_RECORD : bytes;
}

/* Nonblocking connect bounded by timeout_ms; the socket or -errno. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (r < 0 && errno == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		r = poll(&p, 1, timeout_ms);
		if (r == 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			close(fd);
			return -soerr;
		}
	} else if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	return fd;
}

int rpc_connect(const char *host, uint16_t port, int timeout_ms, struct rpc_conn **out,
		char *err, size_t errlen)
{
	return rpc_connect_tls(host, port, timeout_ms, NULL, out, err, errlen);
}

int rpc_connect_tls(const char *host, uint16_t port, int timeout_ms, struct tls_target *tls,
		    struct rpc_conn **out, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char portstr[8];
	snprintf(portstr, sizeof portstr, "%u", port);
	int g = getaddrinfo(host, portstr, &hints, &res);
	if (g != 0) {
		snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	int fd = -ENOENT;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, timeout_ms);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "connect %s:%u: %s", host, port, strerror(-fd));
		return fd;
	}
	struct tls_conn *tc = NULL;
	if (tls) {
		int e = tls_handshake(tls, fd, port, timeout_ms, &tc, err, errlen);
		if (e) {
			close(fd);
			return e;
		}
	}
	struct rpc_conn *c = conn_new(fd, tc);
	if (!c) {
		tls_conn_free(tc);
		close(fd);
		snprintf(err, errlen, "connect %s:%u: out of memory", host, port);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void rpc_conn_close(struct rpc_conn *c)
{
	if (!c)
		return;
	registry_del(c);
	rpc_conn_kill(c, -ESHUTDOWN);
	if (c->rx_started)
		pthread_join(c->rx_thread, NULL);
	tls_conn_free(c->tls);
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	pthread_cond_destroy(&c->idle);
	free(c);
}

/* Send all iovecs; 0 or -errno. Caller holds send_lock. */
static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

#define RPC_MAX_IOV 8

int rpc_send(struct rpc_conn *c, struct rpc_call *call, uint32_t prog, uint32_t vers,
	     uint32_t proc, const struct rpc_auth *auth, const struct iovec *args, int nargs)
{
	if (nargs < 0 || nargs > RPC_MAX_IOV - 1)
		return -EINVAL;
	struct xdr_enc x;
	xdr_enc_init(&x);
	memset(call, 0, sizeof *call);
	pthread_cond_t *cond = &call->cond;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);

	pthread_mutex_lock(&c->lock);
	int dead = c->dead;
	call->xid = c->next_xid++;
	if (!dead) {
		unsigned b = xid_bucket(call->xid);
		call->next = c->pending[b];
		c->pending[b] = call;
		c->npending++;
	}
	pthread_mutex_unlock(&c->lock);
	if (dead) {
		pthread_cond_destroy(cond);
		return dead;
	}

	xdr_put_u32(&x, 0); /* record mark, filled below */
	rpc_encode_call_header(&x, call->xid, prog, vers, proc, auth);
	struct iovec iov[RPC_MAX_IOV];
	size_t total = x.len - 4;
	iov[0].iov_base = x.buf;
	iov[0].iov_len = x.len;
	for (int i = 0; i < nargs; i++) {
		iov[i + 1] = args[i];
		total += args[i].iov_len;
	}
	int err = x.err;
	if (!err && total > RPC_RM_LEN_MASK)
		err = -EMSGSIZE;
	if (!err) {
		xdr_patch_u32(&x, 0, RPC_RM_LAST | (uint32_t)total);
		pthread_mutex_lock(&c->send_lock);
		err = c->tls ? tls_writev(c->tls, iov, nargs + 1)
			     : send_all(c->fd, iov, nargs + 1);
		pthread_mutex_unlock(&c->send_lock);
	}
	xdr_enc_free(&x);
	if (err) {
		/* A partial record leaves the stream unusable. */
		rpc_conn_kill(c, err);
		struct rpc_reply rep;
		(void)rpc_wait(c, call, &rep);
		return err;
	}
	return 0;
}

/* Remove call from the pending table if it is still there; holds lock. */
static void unlink_locked(struct rpc_conn *c, struct rpc_call *call)
{
	struct rpc_call **pp = &c->pending[xid_bucket(call->xid)];
	while (*pp && *pp != call)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = call->next;
		c->npending--;
	}
}

int rpc_wait(struct rpc_conn *c, struct rpc_call *call, struct rpc_reply *rep)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += c->timeout_ms / 1000;
	dl.tv_nsec += (long)(c->timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	int timed_out = 0;
	pthread_mutex_lock(&c->lock);
	while (!call->done) {
		if (!c->reading) {
			/* Read until this call's reply is in (see the top). */
			c->reading = 1;
			pthread_mutex_unlock(&c->lock);
			uint8_t *rec;
			size_t len;
			int e = read_record(c, &dl, &rec, &len);
			pthread_mutex_lock(&c->lock);
			c->reading = 0;
			if (e == 0) {
				deliver_locked(c, rec, len);
			} else if (e == -ETIMEDOUT) {
				if (!call->done) {
					unlink_locked(c, call);
					timed_out = 1;
				}
				/* a record may be cut in half: the stream is lost */
				kill_locked(c, -ETIMEDOUT);
				if (timed_out)
					break;
			} else {
				kill_locked(c, e);
			}
			continue;
		}
		call->waiting = 1;
		int w = pthread_cond_timedwait(&call->cond, &c->lock, &dl);
		call->waiting = 0;
		if (w == ETIMEDOUT && !call->done) {
			unlink_locked(c, call);
			timed_out = 1;
			break;
		}
	}
	if (!c->reading)
		hand_off_locked(c);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&call->cond);
	memset(rep, 0, sizeof *rep);
	if (timed_out) {
		rpc_conn_kill(c, -ETIMEDOUT);
		return -ETIMEDOUT;
	}
	if (call->err) {
		free(call->buf);
		return call->err;
	}
	size_t off = 0;
	int err = rpc_parse_reply(call->buf, call->len, call->xid, &off);
	if (err) {
		free(call->buf);
		if (err == -EBADMSG || err == -EPROTO)
			rpc_conn_kill(c, err); /* the stream cannot be trusted */
		return err;
	}
	rep->buf = call->buf;
	rep->len = call->len;
	rep->body = call->buf + off;
	rep->body_len = call->len - off;
	return 0;
}

int rpc_call(struct rpc_conn *c, uint32_t prog, uint32_t vers, uint32_t proc,
	     const struct rpc_auth *auth, const struct iovec *args, int nargs,
	     struct rpc_reply *rep)
{
	struct rpc_call call;
	int err = rpc_send(c, &call, prog, vers, proc, auth, args, nargs);
	if (err) {
		memset(rep, 0, sizeof *rep);
		return err;
	}
	return rpc_wait(c, &call, rep);
}

void rpc_reply_free(struct rpc_reply *rep)
{
	free(rep->buf);
	memset(rep, 0, sizeof *rep);
}
