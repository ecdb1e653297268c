/*
 * check_rpc.c - ONC RPC over a stream (record marking, XID matching, many
 * calls in flight) against a scripted server on a socketpair. Malformed
 * streams (wrong XID, truncated or oversized records, garbage headers, a
 * closed peer) must end in an error, never a crash or a hang.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nfs/rpc.h"
#include "fdio.h"
#include "check_run.h"

#define SHORT_TIMEOUT_MS 300

static void write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One whole record (all fragments); its length, or -1. */
static ssize_t read_record(int fd, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		uint8_t h[4];
		if (read_full(fd, h, 4))
			return -1;
		uint32_t m = be32(h);
		size_t n = m & 0x7fffffff;
		if (len + n > cap || read_full(fd, buf + len, n))
			return -1;
		len += n;
		if (m & 0x80000000u)
			return (ssize_t)len;
	}
}

/* An accepted, successful reply to xid carrying body, as one record. */
static size_t make_reply(uint8_t *out, uint32_t xid, const void *body, size_t blen)
{
	put32(out + 4, xid);
	put32(out + 8, 1);  /* REPLY */
	put32(out + 12, 0); /* MSG_ACCEPTED */
	put32(out + 16, 0); /* verifier */
	put32(out + 20, 0);
	put32(out + 24, 0); /* SUCCESS */
	memcpy(out + 28, body, blen);
	put32(out, 0x80000000u | (uint32_t)(24 + blen));
	return 28 + blen;
}

struct pair {
	int client, server;
	struct rpc_conn *c;
};

static void pair_open(struct pair *p)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->client = sv[0];
	p->server = sv[1];
	p->c = rpc_conn_from_fd(p->client);
	ck_assert_ptr_nonnull(p->c);
	rpc_conn_set_timeout(p->c, SHORT_TIMEOUT_MS);
}

static void pair_close(struct pair *p)
{
	rpc_conn_close(p->c); /* closes the client end */
	close(p->server);
}

static int call(struct pair *p, const char *arg, struct rpc_reply *rep)
{
	struct rpc_auth a = { .uid = 1000, .gid = 1000 };
	struct iovec iov = { (void *)arg, strlen(arg) };
	return rpc_call(p->c, 100003, 4, 1, &a, &iov, 1, rep);
}

/* ---- scripted servers ---- */

struct script {
	int fd;
	int mode;
	uint8_t seen[4096];
	ssize_t seen_len;
};

enum { S_ECHO, S_WRONG_XID, S_TRUNCATED, S_HUGE, S_FRAGMENTS, S_SHORT_THEN_OK, S_CALL_TYPE,
       S_CLOSE };

static void *script_main(void *arg)
{
	struct script *s = arg;
	uint8_t rec[4096], out[4200];
	ssize_t n = read_record(s->fd, rec, sizeof rec);
	if (n < 4)
		return NULL;
	memcpy(s->seen, rec, (size_t)n);
	s->seen_len = n;
	uint32_t xid = be32(rec);
	size_t len;
	switch (s->mode) {
	case S_ECHO:
		len = make_reply(out, xid, "\xaa\xbb\xcc\xdd", 4);
		write_full(s->fd, out, len);
		break;
	case S_WRONG_XID:
		len = make_reply(out, xid ^ 0x80000000u, "\0\0\0\0", 4);
		write_full(s->fd, out, len);
		break;
	case S_TRUNCATED:
		put32(out, 0x80000000u | 100);
		put32(out + 4, xid);
		write_full(s->fd, out, 14);
		shutdown(s->fd, SHUT_WR);
		break;
	case S_HUGE:
		put32(out, 0xffffffffu);
		put32(out + 4, xid);
		write_full(s->fd, out, 8);
		break;
	case S_FRAGMENTS: {
		len = make_reply(out, xid, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
		const uint8_t *body = out + 4;
		size_t blen = len - 4;
		uint8_t m[4];
		put32(m, 5); /* 5 bytes, not last */
		write_full(s->fd, m, 4);
		write_full(s->fd, body, 5);
		put32(m, 0); /* an empty fragment */
		write_full(s->fd, m, 4);
		put32(m, 0x80000000u | (uint32_t)(blen - 5));
		write_full(s->fd, m, 4);
		write_full(s->fd, body + 5, blen - 5);
		break;
	}
	case S_SHORT_THEN_OK: {
		uint8_t tiny[6] = { 0x80, 0, 0, 2, 0xff, 0xff };
		write_full(s->fd, tiny, sizeof tiny);
		len = make_reply(out, xid, "\xaa\xbb\xcc\xdd", 4);
		write_full(s->fd, out, len);
		break;
	}
	case S_CALL_TYPE:
		len = make_reply(out, xid, "\0\0\0\0", 4);
		put32(out + 8, 0); /* msg_type CALL in a reply */
		write_full(s->fd, out, len);
		break;
	case S_CLOSE:
		shutdown(s->fd, SHUT_RDWR);
		break;
	}
	return NULL;
}

static int run_script(int mode, struct script *s, struct rpc_reply *rep, size_t max_record)
{
	struct pair p;
	pthread_t th;
	pair_open(&p);
	if (max_record)
		rpc_conn_set_max_record(p.c, max_record);
	s->fd = p.server;
	s->mode = mode;
	s->seen_len = 0;
	pthread_create(&th, NULL, script_main, s);
	int e = call(&p, "argsargs", rep);
	pthread_join(th, NULL);
	if (e == 0) {
		/* Copy out before the connection goes away. */
		static uint8_t keep[64];
		size_t n = rep->body_len < sizeof keep ? rep->body_len : sizeof keep;
		memcpy(keep, rep->body, n);
		rpc_reply_free(rep);
		rep->body = keep;
		rep->body_len = n;
	}
	pair_close(&p);
	return e;
}

START_TEST(basic_call)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_ECHO, &s, &rep, 0), 0);
	ck_assert_uint_eq(rep.body_len, 4);
	ck_assert_int_eq(memcmp(rep.body, "\xaa\xbb\xcc\xdd", 4), 0);
	/* What the server got: the call header, AUTH_SYS uid 1000, our args. */
	ck_assert_int_eq(s.seen_len, 4 * 6 + 8 + 28 + 8 + 8); /* no groups: body 28 */
	ck_assert_uint_eq(be32(s.seen + 4), 0);	     /* CALL */
	ck_assert_uint_eq(be32(s.seen + 8), 2);	     /* RPC version */
	ck_assert_uint_eq(be32(s.seen + 12), 100003); /* NFS */
	ck_assert_uint_eq(be32(s.seen + 24), 1);     /* AUTH_SYS */
	ck_assert_uint_eq(be32(s.seen + 48), 1000);  /* uid */
	ck_assert_int_eq(memcmp(s.seen + s.seen_len - 8, "argsargs", 8), 0);
}
END_TEST

START_TEST(wrong_xid_times_out)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_WRONG_XID, &s, &rep, 0), -ETIMEDOUT);
}
END_TEST

START_TEST(truncated_record)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_TRUNCATED, &s, &rep, 0), -ECONNRESET);
}
END_TEST

START_TEST(oversized_record)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_HUGE, &s, &rep, 4096), -EMSGSIZE);
}
END_TEST

START_TEST(fragmented_reply)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_FRAGMENTS, &s, &rep, 0), 0);
	ck_assert_uint_eq(rep.body_len, 8);
	ck_assert_int_eq(memcmp(rep.body, "\x01\x02\x03\x04\x05\x06\x07\x08", 8), 0);
}
END_TEST

START_TEST(short_record_ignored)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_SHORT_THEN_OK, &s, &rep, 0), 0);
	ck_assert_uint_eq(rep.body_len, 4);
}
END_TEST

START_TEST(garbage_header)
{
	struct script s;
	struct rpc_reply rep;
	ck_assert_int_eq(run_script(S_CALL_TYPE, &s, &rep, 0), -EPROTO);
}
END_TEST

START_TEST(peer_closes)
{
	struct script s;
	struct rpc_reply rep;
	int e = run_script(S_CLOSE, &s, &rep, 0);
	ck_assert_msg(e == -ECONNRESET || e == -EPIPE, "got %d", e);
}
END_TEST

START_TEST(dead_conn_fails_fast)
{
	struct pair p;
	struct rpc_reply rep;
	pair_open(&p);
	close(p.server);
	p.server = -1;
	int e = call(&p, "x", &rep);
	ck_assert_int_lt(e, 0);
	ck_assert_int_ne(e, -ETIMEDOUT);
	ck_assert_int_lt(rpc_conn_error(p.c), 0);
	ck_assert_int_lt(call(&p, "y", &rep), 0);
	rpc_conn_close(p.c);
}
END_TEST

/* No call in flight, the server closes: the connection is marked dead
 * without a call having to find out (the watcher thread). */
START_TEST(idle_close_noticed)
{
	struct pair p;
	pair_open(&p);
	close(p.server);
	p.server = -1;
	int e = 0;
	for (int i = 0; i < 500 && e == 0; i++) {
		e = rpc_conn_error(p.c);
		if (e == 0)
			usleep(10000);
	}
	ck_assert_msg(e == -ECONNRESET, "rpc_conn_error after the peer closed: %d", e);
	rpc_conn_close(p.c);
}
END_TEST

/* The server answers and closes at once, before the caller waits: the
 * answer is still delivered, the connection dead only after it. */
START_TEST(reply_then_close)
{
	struct pair p;
	struct rpc_call c;
	struct rpc_reply rep;
	struct rpc_auth a = { .uid = 0, .gid = 0 };
	struct iovec iov = { "argsargs", 8 };
	uint8_t rec[512], out[600];
	pair_open(&p);
	ck_assert_int_eq(rpc_send(p.c, &c, 100003, 4, 1, &a, &iov, 1), 0);
	ssize_t n = read_record(p.server, rec, sizeof rec);
	ck_assert_int_gt(n, 8);
	size_t len = make_reply(out, be32(rec), "\x11\x22\x33\x44", 4);
	write_full(p.server, out, len);
	close(p.server);
	p.server = -1;
	usleep(100000); /* the watcher sees the close first */
	ck_assert_int_eq(rpc_wait(p.c, &c, &rep), 0);
	ck_assert_int_eq(rep.body_len, 4);
	ck_assert_mem_eq(rep.body, "\x11\x22\x33\x44", 4);
	rpc_reply_free(&rep);
	ck_assert_int_eq(rpc_conn_error(p.c), -ECONNRESET);
	rpc_conn_close(p.c);
}
END_TEST

/* The reader role passes to a caller that waits, not to one that sent a
 * call but is not waiting yet: HANDOFF_X calls are sent and not waited for
 * (so the first pending calls are theirs), Y reads, R waits. The server
 * answers Y and R, and the X calls only once R has its answer. (Handing
 * the role to any pending call fails here whenever an X call comes first
 * in the pending table, which depends on the XIDs: most runs, not all.) */
#define HANDOFF_X 64
struct handoff {
	int server;
	struct pair *p;
	atomic_int r_done, x_answered, r_saw_x;
	int r_err;
};

static void *handoff_server(void *arg)
{
	struct handoff *h = arg;
	enum { N = HANDOFF_X + 2 };
	uint8_t rec[N][512], out[600];
	ssize_t n[N];
	int is_x[N];
	for (int i = 0; i < N; i++) {
		n[i] = read_record(h->server, rec[i], sizeof rec[i]);
		if (n[i] < 8)
			return NULL;
		is_x[i] = memcmp(rec[i] + n[i] - 8, "xxxxxxxx", 8) == 0;
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (int i = 0; i < 300 && !atomic_load(&h->r_done); i++)
				usleep(10000);
			atomic_store(&h->x_answered, 1);
		}
		for (int i = 0; i < N; i++) {
			if (is_x[i] != pass)
				continue;
			size_t len = make_reply(out, be32(rec[i]), rec[i] + n[i] - 8, 8);
			write_full(h->server, out, len);
		}
	}
	return NULL;
}

struct handoff_arg {
	struct handoff *h;
	char role; /* 'y' or 'r' */
};

static void *handoff_caller(void *arg)
{
	struct handoff_arg *ha = arg;
	struct handoff *h = ha->h;
	struct rpc_reply rep;
	int e = call(h->p, ha->role == 'r' ? "rrrrrrrr" : "yyyyyyyy", &rep);
	if (e == 0)
		rpc_reply_free(&rep);
	if (ha->role == 'r') {
		h->r_err = e;
		atomic_store(&h->r_saw_x, atomic_load(&h->x_answered));
		atomic_store(&h->r_done, 1);
	}
	return NULL;
}

START_TEST(reader_role_goes_to_a_waiter)
{
	struct pair p;
	struct handoff h = { 0 };
	struct handoff_arg ay = { &h, 'y' }, ar = { &h, 'r' };
	struct rpc_call x[HANDOFF_X];
	struct rpc_reply rep;
	struct rpc_auth a = { .uid = 0, .gid = 0 };
	struct iovec iov = { "xxxxxxxx", 8 };
	pthread_t srv, ty, tr;
	pair_open(&p);
	rpc_conn_set_timeout(p.c, 5000);
	h.server = p.server;
	h.p = &p;
	h.r_err = -1;
	pthread_create(&srv, NULL, handoff_server, &h);
	for (int i = 0; i < HANDOFF_X; i++)
		ck_assert_int_eq(rpc_send(p.c, &x[i], 100003, 4, 1, &a, &iov, 1), 0);
	pthread_create(&ty, NULL, handoff_caller, &ay);
	usleep(50000); /* Y waits first: it reads */
	pthread_create(&tr, NULL, handoff_caller, &ar);
	pthread_join(ty, NULL);
	pthread_join(tr, NULL);
	ck_assert_msg(h.r_err == 0, "R's call failed: %d (no reader after Y's answer)", h.r_err);
	ck_assert_msg(!atomic_load(&h.r_saw_x), "R got its answer only after X was answered");
	for (int i = 0; i < HANDOFF_X; i++) {
		ck_assert_int_eq(rpc_wait(p.c, &x[i], &rep), 0);
		ck_assert_mem_eq(rep.body, "xxxxxxxx", 8);
		rpc_reply_free(&rep);
	}
	pthread_join(srv, NULL);
	pair_close(&p);
}
END_TEST

/* ---- many calls in flight, answered out of order ---- */

#define MANY_THREADS 8
#define MANY_CALLS 200

static void *reorder_server(void *arg)
{
	int fd = *(int *)arg;
	uint8_t rec[2][512], out[600];
	ssize_t n[2];
	for (;;) {
		n[0] = read_record(fd, rec[0], sizeof rec[0]);
		if (n[0] < 0)
			return NULL;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int more = poll(&pf, 1, 20) > 0;
		n[1] = more ? read_record(fd, rec[1], sizeof rec[1]) : -1;
		/* Answer the second first; each reply echoes the call's args
		 * (the last 8 bytes of the record). */
		for (int i = 1; i >= 0; i--) {
			if (n[i] < 8)
				continue;
			size_t len = make_reply(out, be32(rec[i]), rec[i] + n[i] - 8, 8);
			write_full(fd, out, len);
		}
		if (more && n[1] < 0)
			return NULL;
	}
}

struct caller {
	struct pair *p;
	int id;
	int bad;
};

static void *many_caller(void *arg)
{
	struct caller *k = arg;
	for (int i = 0; i < MANY_CALLS; i++) {
		char a[24];
		struct rpc_reply rep;
		snprintf(a, sizeof a, "%02u%06u", (unsigned)k->id % 100, (unsigned)i % 1000000);
		if (call(k->p, a, &rep) != 0) {
			k->bad++;
			continue;
		}
		if (rep.body_len != 8 || memcmp(rep.body, a, 8) != 0)
			k->bad++;
		rpc_reply_free(&rep);
	}
	return NULL;
}

START_TEST(many_in_flight)
{
	struct pair p;
	pthread_t srv, th[MANY_THREADS];
	struct caller k[MANY_THREADS];
	pair_open(&p);
	rpc_conn_set_timeout(p.c, 10000);
	pthread_create(&srv, NULL, reorder_server, &p.server);
	for (int i = 0; i < MANY_THREADS; i++) {
		k[i] = (struct caller){ &p, i, 0 };
		pthread_create(&th[i], NULL, many_caller, &k[i]);
	}
	for (int i = 0; i < MANY_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(k[i].bad, 0);
	}
	shutdown(p.server, SHUT_RDWR);
	pthread_join(srv, NULL);
	pair_close(&p);
}
END_TEST

static Suite *rpc_suite(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("stream");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, basic_call);
	tcase_add_test(tc, wrong_xid_times_out);
	tcase_add_test(tc, truncated_record);
	tcase_add_test(tc, oversized_record);
	tcase_add_test(tc, fragmented_reply);
	tcase_add_test(tc, short_record_ignored);
	tcase_add_test(tc, garbage_header);
	tcase_add_test(tc, peer_closes);
	tcase_add_test(tc, dead_conn_fails_fast);
	tcase_add_test(tc, idle_close_noticed);
	tcase_add_test(tc, reply_then_close);
	tcase_add_test(tc, reader_role_goes_to_a_waiter);
	tcase_add_test(tc, many_in_flight);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(rpc_suite());
}
