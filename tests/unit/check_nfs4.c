/*
 * check_nfs4.c - the NFSv4.1 session and COMPOUND layer against a scripted
 * fake server on 127.0.0.1: session setup, retries (NFS4ERR_DELAY), a lost
 * session rebuilt on a new connection, and malformed COMPOUND replies
 * (unknown opcodes, truncation, lying counts, lengths past the buffer, a
 * foreign session id) that must give an error, never a crash or a hang.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nfs/nfs4.h"
#include "nfs/xdr.h"
#include "fdio.h"

static const uint8_t SESSION[16] = "sessionsession!!";

enum mode {
	M_OK,
	M_UNKNOWN_OP,
	M_TRUNCATED,
	M_NRES_LIE,
	M_STALE,
	M_FOREIGN_SESSION,
	M_DELAY_ONCE,
	M_BADSESSION_ONCE,
	M_HUGE_ATTRLIST,
	M_WRONG_XID,
};

static atomic_int mode;
static atomic_int specials;    /* times the mode's misbehaviour was applied */
static atomic_int connections; /* accepted so far */
static int listen_fd;
static uint16_t listen_port;
static pthread_t server_thread;

static void send_reply(int fd, uint32_t xid, struct xdr_enc *body)
{
	struct xdr_enc x;
	xdr_enc_init(&x);
	xdr_put_u32(&x, 0x80000000u | (uint32_t)(24 + body->len));
	xdr_put_u32(&x, xid);
	xdr_put_u32(&x, 1); /* REPLY */
	xdr_put_u32(&x, 0); /* accepted */
	xdr_put_u32(&x, 0);
	xdr_put_u32(&x, 0);
	xdr_put_u32(&x, 0); /* SUCCESS */
	xdr_put_fixed(&x, body->buf, body->len);
	ssize_t w = write(fd, x.buf, x.len);
	(void)w;
	xdr_enc_free(&x);
}

static void seq_ok(struct xdr_enc *b, uint32_t seqid, uint32_t slot, const uint8_t *sid)
{
	xdr_put_u32(b, 53);
	xdr_put_u32(b, 0);
	xdr_put_fixed(b, sid, 16);
	xdr_put_u32(b, seqid);
	xdr_put_u32(b, slot);
	xdr_put_u32(b, 7);
	xdr_put_u32(b, 7);
	xdr_put_u32(b, 0);
}

static void compound_head(struct xdr_enc *b, uint32_t status, uint32_t nres)
{
	xdr_put_u32(b, status);
	xdr_put_u32(b, 0); /* tag */
	xdr_put_u32(b, nres);
}

/* Answer one call; 0 to go on, -1 to drop the connection. */
static int answer(int fd, const uint8_t *rec, size_t len)
{
	struct xdr_dec d;
	size_t n;
	xdr_dec_init(&d, rec, len);
	uint32_t xid = xdr_get_u32(&d);
	xdr_skip(&d, 20);		/* type, rpcvers, prog, vers, proc */
	(void)xdr_get_u32(&d);		/* cred flavor */
	(void)xdr_get_opaque(&d, &n, 400);
	(void)xdr_get_u32(&d);		/* verifier */
	(void)xdr_get_opaque(&d, &n, 400);
	(void)xdr_get_opaque(&d, &n, 1024); /* tag */
	(void)xdr_get_u32(&d);		/* minor version */
	uint32_t nops = xdr_get_u32(&d);
	uint32_t op = xdr_get_u32(&d);
	if (d.err)
		return -1;
	struct xdr_enc b;
	xdr_enc_init(&b);
	int m = atomic_load(&mode);
	switch (op) {
	case 42: /* EXCHANGE_ID */
		compound_head(&b, 0, 1);
		xdr_put_u32(&b, 42);
		xdr_put_u32(&b, 0);
		xdr_put_u64(&b, 0x1122334455667788ull);
		xdr_put_u32(&b, 1);
		xdr_put_u32(&b, 0);
		xdr_put_u32(&b, 0); /* SP4_NONE */
		xdr_put_u64(&b, 0);
		xdr_put_string(&b, "fake");
		xdr_put_string(&b, "fake");
		xdr_put_u32(&b, 0);
		break;
	case 43: /* CREATE_SESSION */
		compound_head(&b, 0, 1);
		xdr_put_u32(&b, 43);
		xdr_put_u32(&b, 0);
		xdr_put_fixed(&b, SESSION, 16);
		xdr_put_u32(&b, 1);
		xdr_put_u32(&b, 0);
		for (int i = 0; i < 2; i++) {
			xdr_put_u32(&b, 0);
			xdr_put_u32(&b, 1u << 20);
			xdr_put_u32(&b, 1u << 20);
			xdr_put_u32(&b, 4096);
			xdr_put_u32(&b, 16);
			xdr_put_u32(&b, 8);
			xdr_put_u32(&b, 0);
		}
		break;
	case 44: /* DESTROY_SESSION */
	case 57: /* DESTROY_CLIENTID */
		compound_head(&b, 0, 1);
		xdr_put_u32(&b, op);
		xdr_put_u32(&b, 0);
		break;
	case 53: { /* SEQUENCE, then the rest */
		const uint8_t *sid = xdr_get_fixed(&d, 16);
		uint32_t seqid = xdr_get_u32(&d);
		uint32_t slot = xdr_get_u32(&d);
		xdr_skip(&d, 8);
		uint32_t op2 = nops > 1 ? xdr_get_u32(&d) : 0;
		if (d.err || !sid)
			return -1;
		if (m == M_DELAY_ONCE && op2 == 22 && atomic_fetch_add(&specials, 1) == 0) {
			compound_head(&b, 10008, 1);
			xdr_put_u32(&b, 53);
			xdr_put_u32(&b, 10008);
			break;
		}
		if (m == M_BADSESSION_ONCE && op2 == 22 && atomic_fetch_add(&specials, 1) == 0) {
			compound_head(&b, 10052, 1);
			xdr_put_u32(&b, 53);
			xdr_put_u32(&b, 10052);
			break;
		}
		if (op2 == 58) { /* RECLAIM_COMPLETE */
			compound_head(&b, 0, 2);
			seq_ok(&b, seqid, slot, sid);
			xdr_put_u32(&b, 58);
			xdr_put_u32(&b, 0);
		} else if (op2 == 24) { /* PUTROOTFH GETATTR: the limits */
			compound_head(&b, 0, 3);
			seq_ok(&b, seqid, slot, sid);
			xdr_put_u32(&b, 24);
			xdr_put_u32(&b, 0);
			xdr_put_u32(&b, 9);
			xdr_put_u32(&b, 0);
			xdr_put_u32(&b, 1);
			xdr_put_u32(&b, 1u << 10); /* lease_time */
			xdr_put_u32(&b, 4);
			xdr_put_u32(&b, 30);
		} else if (op2 == 22) { /* PUTFH GETATTR: the test's call */
			int nres = m == M_NRES_LIE ? 9 : 3;
			uint32_t st = m == M_STALE ? 70 : 0;
			compound_head(&b, st, m == M_STALE ? 2 : (uint32_t)nres);
			seq_ok(&b, seqid, slot, m == M_FOREIGN_SESSION ? (const uint8_t *)"otherotherother!" : sid);
			xdr_put_u32(&b, 22);
			xdr_put_u32(&b, st);
			if (m == M_STALE)
				break;
			if (m == M_TRUNCATED) {
				xdr_put_u32(&b, 9);
				break;
			}
			xdr_put_u32(&b, m == M_UNKNOWN_OP ? 9999 : 9);
			xdr_put_u32(&b, 0);
			xdr_put_u32(&b, 1);
			xdr_put_u32(&b, 1u << 1 | 1u << 4); /* type, size */
			xdr_put_u32(&b, m == M_HUGE_ATTRLIST ? 0xffffff00u : 12);
			xdr_put_u32(&b, 1); /* NF4REG */
			xdr_put_u64(&b, 5);
		} else if (nops == 1) { /* a lone SEQUENCE: renewal */
			compound_head(&b, 0, 1);
			seq_ok(&b, seqid, slot, sid);
		} else {
			compound_head(&b, 10004, 1);
			seq_ok(&b, seqid, slot, sid);
		}
		break;
	}
	default:
		compound_head(&b, 10044, 1);
		xdr_put_u32(&b, 10044);
		xdr_put_u32(&b, 10044);
	}
	if (m == M_WRONG_XID && op == 53 && nops > 1)
		xid ^= 0x5a5a5a5a;
	send_reply(fd, xid, &b);
	xdr_enc_free(&b);
	return 0;
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *rec = malloc(1 << 16);
	if (rec) {
		for (;;) {
			uint8_t h[4];
			if (read_full(fd, h, 4))
				break;
			uint32_t mark = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
					(uint32_t)h[2] << 8 | h[3];
			size_t len = mark & 0x7fffffff;
			if (!(mark & 0x80000000u) || len > (1 << 16) || read_full(fd, rec, len))
				break;
			if (answer(fd, rec, len))
				break;
		}
	}
	free(rec);
	close(fd);
	return NULL;
}

/* One thread per connection: a forked client holds two at once. */
static void *server_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		atomic_fetch_add(&connections, 1);
		pthread_t th;
		if (pthread_create(&th, NULL, conn_main, (void *)(intptr_t)fd) == 0)
			pthread_detach(th);
		else
			close(fd);
	}
}

static void server_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(listen_fd, 4) != 0) {
		perror("check_nfs4: fake server");
		exit(EXIT_FAILURE);
	}
	getsockname(listen_fd, (struct sockaddr *)&sa, &sl);
	listen_port = ntohs(sa.sin_port);
	pthread_create(&server_thread, NULL, server_main, NULL);
}

static struct nfs_client *client_open(void)
{
	char err[256] = "";
	struct nfs_client *c = NULL;
	struct nfs_opts o = { .port = listen_port, .timeout_ms = 500 };
	int e = nfs_client_open("127.0.0.1", &o, &c, err, sizeof err);
	ck_assert_msg(e == 0, "open: %d %s", e, err);
	return c;
}

static int getattr_in_mode(int m, struct nfs_attr *a)
{
	atomic_store(&mode, M_OK);
	atomic_store(&specials, 0);
	struct nfs_client *c = client_open();
	atomic_store(&mode, m);
	struct nfs_fh fh = { .len = 4, .data = "abcd" };
	int e = nfs_getattr(c, NULL, &fh, a);
	atomic_store(&mode, M_OK);
	nfs_client_close(c);
	return e;
}

START_TEST(session_setup)
{
	struct nfs_client *c = client_open();
	struct nfs_info info;
	nfs_client_info(c, &info);
	ck_assert_uint_eq(info.clientid, 0x1122334455667788ull);
	ck_assert_uint_eq(info.slots, 8);
	ck_assert_uint_eq(info.lease_time, 30);
	ck_assert_uint_eq(info.max_ops, 16);
	ck_assert_uint_le(info.maxwrite, 1u << 20);
	ck_assert_int_eq(nfs_ping(c), 0);
	nfs_client_close(c);
}
END_TEST

START_TEST(getattr_ok)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_OK, &a), 0);
	ck_assert_uint_eq(a.st.st_mode & S_IFMT, S_IFREG);
	ck_assert_int_eq(a.st.st_size, 5);
}
END_TEST

START_TEST(unknown_opcode)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_UNKNOWN_OP, &a), -EBADMSG);
}
END_TEST

START_TEST(truncated_compound)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_TRUNCATED, &a), -EBADMSG);
}
END_TEST

START_TEST(result_count_lies)
{
	struct nfs_attr a;
	/* Says 9 results, carries 3: the ones we read decode; nothing reads
	 * past the end. */
	ck_assert_int_eq(getattr_in_mode(M_NRES_LIE, &a), 0);
}
END_TEST

START_TEST(attrlist_past_buffer)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_HUGE_ATTRLIST, &a), -EBADMSG);
}
END_TEST

START_TEST(error_status)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_STALE, &a), -ESTALE);
}
END_TEST

START_TEST(foreign_session)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_FOREIGN_SESSION, &a), -EBADMSG);
}
END_TEST

START_TEST(delay_is_retried)
{
	struct nfs_attr a;
	ck_assert_int_eq(getattr_in_mode(M_DELAY_ONCE, &a), 0);
	ck_assert_int_eq(atomic_load(&specials), 2);
	ck_assert_int_eq(a.st.st_size, 5);
}
END_TEST

/* RPCs are counted once per send, by main operation (nfs4.h). */
static uint64_t rpcs_sum(const struct nfs_rpc_counts *r)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < NFS_RPC_SLOTS; i++)
		n += r->n[i];
	return n;
}

START_TEST(rpcs_counted)
{
	struct nfs_rpc_counts a, b;
	struct nfs_attr at;
	struct nfs_fh fh = { .len = 4, .data = "abcd" };
	atomic_store(&mode, M_OK);
	struct nfs_client *c = client_open();
	nfs_client_rpcs(c, &a);
	ck_assert_uint_eq(a.n[NFS4_OP_EXCHANGE_ID], 1);
	ck_assert_uint_eq(a.n[NFS4_OP_CREATE_SESSION], 1);
	ck_assert_uint_ge(a.n[NFS4_OP_GETATTR], 1); /* the root's limits */
	ck_assert_int_eq(nfs_getattr(c, NULL, &fh, &at), 0);
	ck_assert_int_eq(nfs_ping(c), 0);
	nfs_client_rpcs(c, &b);
	ck_assert_uint_eq(b.n[NFS4_OP_GETATTR], a.n[NFS4_OP_GETATTR] + 1);
	ck_assert_uint_eq(b.n[NFS4_OP_SEQUENCE], a.n[NFS4_OP_SEQUENCE] + 1);
	ck_assert_uint_eq(rpcs_sum(&b), rpcs_sum(&a) + 2);
	/* NFS4ERR_DELAY once: the GETATTR is sent twice */
	atomic_store(&specials, 0);
	atomic_store(&mode, M_DELAY_ONCE);
	ck_assert_int_eq(nfs_getattr(c, NULL, &fh, &at), 0);
	atomic_store(&mode, M_OK);
	nfs_client_rpcs(c, &a);
	ck_assert_uint_eq(a.n[NFS4_OP_GETATTR], b.n[NFS4_OP_GETATTR] + 2);
	nfs_client_close(c);
	ck_assert_str_eq(nfs4_op_name(NFS4_OP_OPEN), "OPEN");
	ck_assert_str_eq(nfs4_op_name(NFS4_OP_RECLAIM_COMPLETE), "RECLAIM_COMPLETE");
	ck_assert_str_eq(nfs4_op_name(0), "OTHER");
	ck_assert_ptr_null(nfs4_op_name(1));
	ck_assert_ptr_null(nfs4_op_name(NFS_RPC_SLOTS));
	ck_assert(nfs4_op_is_session(NFS4_OP_SEQUENCE));
	ck_assert(!nfs4_op_is_session(NFS4_OP_GETATTR));
}
END_TEST

START_TEST(badsession_rebuilds)
{
	struct nfs_attr a;
	int before = atomic_load(&connections);
	ck_assert_int_eq(getattr_in_mode(M_BADSESSION_ONCE, &a), 0);
	ck_assert_int_eq(a.st.st_size, 5);
	/* The client's own connection, then one more for the new session. */
	ck_assert_int_eq(atomic_load(&connections) - before, 2);
}
END_TEST

START_TEST(wrong_xid)
{
	struct nfs_attr a;
	/* Every reply to the call carries a wrong XID: the call times out,
	 * each rebuilt connection too, and the error comes back. */
	int e = getattr_in_mode(M_WRONG_XID, &a);
	ck_assert_msg(e == -ETIMEDOUT || e == -EIO, "got %d", e);
}
END_TEST

START_TEST(usable_after_fork)
{
	/* The daemon forks into the background after mounting: the child
	 * must get a working client (its own connection and session). */
	atomic_store(&mode, M_OK);
	struct nfs_client *c = client_open();
	int before = atomic_load(&connections);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct nfs_fh fh = { .len = 4, .data = "abcd" };
		struct nfs_attr a;
		int e = nfs_getattr(c, NULL, &fh, &a);
		nfs_client_close(c);
		_exit(e == 0 && a.st.st_size == 5 ? 0 : 10 - e);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	ck_assert_int_eq(atomic_load(&connections) - before, 1);
	/* The parent's own client still works. */
	struct nfs_fh fh = { .len = 4, .data = "abcd" };
	struct nfs_attr a;
	ck_assert_int_eq(nfs_getattr(c, NULL, &fh, &a), 0);
	nfs_client_close(c);
}
END_TEST

START_TEST(connect_refused)
{
	char err[256] = "";
	struct nfs_client *c = NULL;
	struct nfs_opts o = { .port = 1 };
	int e = nfs_client_open("127.0.0.1", &o, &c, err, sizeof err);
	ck_assert_int_eq(e, -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err, "127.0.0.1:1"));
}
END_TEST

static Suite *nfs4_suite(void)
{
	Suite *s = suite_create("nfs4");
	TCase *tc = tcase_create("fake-server");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, session_setup);
	tcase_add_test(tc, getattr_ok);
	tcase_add_test(tc, unknown_opcode);
	tcase_add_test(tc, truncated_compound);
	tcase_add_test(tc, result_count_lies);
	tcase_add_test(tc, attrlist_past_buffer);
	tcase_add_test(tc, error_status);
	tcase_add_test(tc, foreign_session);
	tcase_add_test(tc, delay_is_retried);
	tcase_add_test(tc, rpcs_counted);
	tcase_add_test(tc, badsession_rebuilds);
	tcase_add_test(tc, wrong_xid);
	tcase_add_test(tc, usable_after_fork);
	tcase_add_test(tc, connect_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	server_start();
	SRunner *sr = srunner_create(nfs4_suite());
	srunner_set_fork_status(sr, CK_NOFORK); /* the fake server lives in this process */
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
