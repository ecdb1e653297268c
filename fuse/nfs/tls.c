/* tls.c - TLS under the RPC stream: contexts, handshake, locked I/O. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tls.h"
#include "wait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_RECORD_MAX 16384 /* bytes of plaintext in one TLS record */
#define TLS_WANT_READ_WAIT_MS 10 /* a write waiting on a read: poll again this soon */
/* With read-ahead one read(2) takes in several records: a 1 MiB READ
 * reply is 64 records, which cost two read(2)s each without it. */
#define TLS_READ_BUFFER 65536 /* bytes */
/* Records are gathered and sent with one write(2) per this many bytes (and
 * at the end of every call) instead of one per 16 KiB record. */
#define TLS_WRITE_BUFFER 131072 /* bytes */
#define TLS_CERT_VERDICT_WAIT_MS 300 /* await_cert_verdict: a round trip and then some */

struct tls_target {
	SSL_CTX *ctx;
	char *name; /* checked against the certificate; NULL with verify off */
	int name_is_ip;
	int verify;
	pthread_mutex_t lock; /* sess */
	SSL_SESSION *sess;    /* the newest session the server gave */
	unsigned sess_cert_gen; /* the client certificate it was made with */
	const struct tls_client_cert *client_cert; /* NULL: none */
	atomic_uint resumed;
};

struct tls_conn {
	SSL *ssl;
	int fd;
	pthread_mutex_t lock; /* every SSL call */
	struct tls_target *target;
	unsigned cert_gen; /* of the client certificate presented */
	int got_ticket;	   /* the server sent a session ticket (await_cert_verdict) */
	uint8_t out[TLS_RECORD_MAX]; /* small iovecs gathered into full records */
};

static int target_index = -1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The socket BIO writes with write(2): a peer that closed would raise
 * SIGPIPE. The daemon ignores it (libfuse does too); so do the tools. */
static void init_once_fn(void)
{
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	target_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* TLS 1.3 sends tickets after the handshake, TLS 1.2 in it: keep the
 * newest per target for the next connection. A copy: OpenSSL marks the
 * session of a connection that fails (cut mid-record) not resumable, and
 * the ticket in it is still good for the lanes that reconnect then. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_target *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), target_index);
	if (!t)
		return 0;
	struct tls_conn *c = SSL_get_app_data(ssl);
	if (c)
		c->got_ticket = 1;
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (!copy)
		return 0;
	pthread_mutex_lock(&t->lock);
	SSL_SESSION *old = t->sess;
	t->sess = copy;
	t->sess_cert_gen = c ? c->cert_gen : 0;
	pthread_mutex_unlock(&t->lock);
	SSL_SESSION_free(old);
	return 0; /* OpenSSL keeps (and drops) its own reference */
}

void tls_ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "no further detail");
	ERR_clear_error();
}

int tls_target_new(const struct tls_conf *conf, const char *host, struct tls_target **out,
		   char *err, size_t errlen)
{
	pthread_once(&init_once, init_once_fn);
	struct tls_target *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "TLS: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->verify = conf->verify;
	t->client_cert = conf->client_cert;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		goto ssl_fail;
	SSL_CTX_set_ex_data(t->ctx, target_index, t);
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
	/* Retries of a write that would block may come from a moved buffer. */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(t->ctx, TLS_READ_BUFFER);
	SSL_CTX_set_session_cache_mode(t->ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(t->ctx, new_session);
	if (conf->verify) {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
		int ok = conf->cafile ? SSL_CTX_load_verify_locations(t->ctx, conf->cafile, NULL)
				      : SSL_CTX_set_default_verify_paths(t->ctx);
		if (ok != 1) {
			char why[256];
			tls_ssl_reason(why, sizeof why);
			snprintf(err, errlen, "TLS: cannot load CA certificates from %s: %s%s",
				 conf->cafile ? conf->cafile : "the system store", why,
				 conf->cafile ? " (cafile= must be a PEM file of CA certificates)"
					      : "");
			tls_target_free(t);
			return -EINVAL;
		}
		t->name = strdup(conf->name && *conf->name ? conf->name : host);
		if (!t->name) {
			tls_target_free(t);
			snprintf(err, errlen, "TLS: out of memory");
			return -ENOMEM;
		}
		unsigned char a[16];
		t->name_is_ip = inet_pton(AF_INET, t->name, a) == 1 ||
				inet_pton(AF_INET6, t->name, a) == 1;
	} else {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	}
	*out = t;
	return 0;
ssl_fail:
	snprintf(err, errlen, "TLS: cannot create a context (OpenSSL)");
	tls_target_free(t);
	return -ENOMEM;
}

void tls_target_free(struct tls_target *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	SSL_SESSION_free(t->sess);
	free(t->name);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

unsigned tls_target_resumptions(struct tls_target *t)
{
	return atomic_load(&t->resumed);
}

static void cert_refused(const char *where, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "TLS handshake with %s: the server refused the client certificate: %s (with "
		 "-o iam: the IAM signature was rejected, check the credentials, their policy and "
		 "this host's clock; with -o accesspoint: check the access point id)",
		 where, why);
}

/* TLS 1.3 ends the client's side of the handshake before the server has
 * judged its certificate: a refusal comes as an alert afterwards, which
 * the NFS layer would report as a bare protocol error. Wait a little for
 * the server's first record (a session ticket, or the alert); a server
 * that sends no ticket costs the whole wait, once per connection.
 * 0, or -1 with the reason in why. */
static int await_cert_verdict(struct tls_conn *c, int wait_ms, char *why, size_t whylen)
{
	long long end = nfs_now_ms() + wait_ms;
	char b;
	for (;;) {
		ERR_clear_error();
		int r = SSL_peek(c->ssl, &b, 1);
		if (r > 0)
			return 0;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_SSL) {
			tls_ssl_reason(why, whylen);
			return -1;
		}
		if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
			snprintf(why, whylen, "the connection was closed after the handshake");
			return -1;
		}
		if (e != SSL_ERROR_WANT_READ || c->got_ticket)
			return 0;
		long long left = end - nfs_now_ms();
		if (left <= 0 || nfs_wait_fd(c->fd, POLLIN, (int)left))
			return 0;
	}
}

/* One line for a failed handshake: what went wrong and what to do. */
static void handshake_error(struct tls_target *t, SSL *ssl, int sslerr, int sys, int eof,
			    const char *where, char *err, size_t errlen)
{
	long v = SSL_get_verify_result(ssl);
	char why[256];
	tls_ssl_reason(why, sizeof why);
	const char *name = t->name ? t->name : "";
	switch (v) {
	case X509_V_OK:
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		snprintf(err, errlen,
			 "TLS handshake with %s: unknown CA: %s (give -o cafile=PATH with the CA "
			 "that signed the server's certificate)",
			 where, X509_verify_cert_error_string(v));
		return;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(err, errlen,
			 "TLS handshake with %s: name mismatch: the certificate is not for %s "
			 "(give -o tls_name=NAME with a name the certificate carries)",
			 where, name);
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(err, errlen,
			 "TLS handshake with %s: certificate %s (renew the server's certificate, "
			 "or check this host's clock)",
			 where, v == X509_V_ERR_CERT_HAS_EXPIRED ? "expired" : "not yet valid");
		return;
	default:
		snprintf(err, errlen,
			 "TLS handshake with %s: certificate rejected: %s (check the server's "
			 "certificate, -o cafile= and -o tls_name=)",
			 where, X509_verify_cert_error_string(v));
		return;
	}
	if (t->client_cert && (strstr(why, "alert bad certificate") ||
			       strstr(why, "alert certificate required") ||
			       strstr(why, "alert access denied") ||
			       strstr(why, "alert certificate unknown") ||
			       strstr(why, "alert unknown ca"))) {
		cert_refused(where, why, err, errlen);
		return;
	}
	if (sys == ETIMEDOUT || eof || strstr(why, "wrong version number") ||
	    strstr(why, "packet length too long") || strstr(why, "record layer failure")) {
		snprintf(err, errlen,
			 "TLS handshake with %s: %s: the server does not speak TLS (a plaintext "
			 "NFS server? mount it with -o notls, or point the target at its TLS "
			 "port)",
			 where, sys == ETIMEDOUT ? "no answer" : eof ? "connection closed" : why);
		return;
	}
	if (strstr(why, "protocol version") || strstr(why, "unsupported protocol")) {
		snprintf(err, errlen,
			 "TLS handshake with %s: protocol: %s (the server must offer TLS 1.2 or "
			 "newer)",
			 where, why);
		return;
	}
	if (sslerr == SSL_ERROR_SYSCALL && sys)
		snprintf(err, errlen, "TLS handshake with %s: %s", where, strerror(sys));
	else
		snprintf(err, errlen, "TLS handshake with %s: protocol: %s", where, why);
}

/* After the handshake (OpenSSL buffers its own flights): a buffering BIO
 * in front of the socket for writes; tls_writev flushes it. */
static int buffer_writes(struct tls_conn *c)
{
	BIO *sock = SSL_get_wbio(c->ssl);
	BIO *buf = BIO_new(BIO_f_buffer());
	if (!buf || BIO_set_write_buffer_size(buf, TLS_WRITE_BUFFER) != 1 || !BIO_up_ref(sock)) {
		BIO_free(buf);
		return -ENOMEM;
	}
	BIO_push(buf, sock);
	SSL_set0_wbio(c->ssl, buf); /* drops the SSL's own reference to sock as wbio */
	return 0;
}

/* The provider's current certificate for this connection only, so that
 * a renewed one goes to new connections while open ones keep theirs. */
static int attach_client_cert(const struct tls_client_cert *cc, struct tls_conn *c, char *err,
			      size_t errlen)
{
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	char why[256];
	if (cc->get(cc->arg, &x, &k, &c->cert_gen, err, errlen))
		return -1;
	int ok = SSL_use_certificate(c->ssl, x) == 1 && SSL_use_PrivateKey(c->ssl, k) == 1;
	X509_free(x);
	EVP_PKEY_free(k);
	if (!ok) {
		tls_ssl_reason(why, sizeof why);
		snprintf(err, errlen, "TLS: cannot use the client certificate: %s", why);
		return -1;
	}
	return 0;
}

int tls_handshake(struct tls_target *t, int fd, unsigned port, int timeout_ms,
		  struct tls_conn **out, char *err, size_t errlen)
{
	char where[300];
	snprintf(where, sizeof where, "%s:%u", t->name ? t->name : "server", port);
	struct tls_conn *c = calloc(1, sizeof *c);
	if (!c || !(c->ssl = SSL_new(t->ctx))) {
		free(c);
		snprintf(err, errlen, "TLS: out of memory");
		return -ENOMEM;
	}
	c->fd = fd;
	c->target = t;
	pthread_mutex_init(&c->lock, NULL);
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	SSL_set_fd(c->ssl, fd);
	SSL_set_app_data(c->ssl, c);
	if (t->client_cert && attach_client_cert(t->client_cert, c, err, errlen)) {
		tls_conn_free(c);
		return -ECONNABORTED;
	}
	if (t->name) {
		if (t->name_is_ip) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->name);
		} else {
			SSL_set_tlsext_host_name(c->ssl, t->name);
			X509_VERIFY_PARAM_set1_host(SSL_get0_param(c->ssl), t->name, 0);
		}
	}
	pthread_mutex_lock(&t->lock);
	/* A session made under an older client certificate would show the
	 * server that one: renewed certificates need a full handshake. */
	if (t->sess && t->sess_cert_gen == c->cert_gen)
		SSL_set_session(c->ssl, t->sess);
	pthread_mutex_unlock(&t->lock);

	long long deadline = nfs_now_ms() + timeout_ms;
	int sys = 0, eof = 0, sslerr = 0;
	ERR_clear_error();
	for (;;) {
		int r = SSL_connect(c->ssl);
		if (r == 1)
			break;
		sslerr = SSL_get_error(c->ssl, r);
		short ev = sslerr == SSL_ERROR_WANT_READ    ? POLLIN
			   : sslerr == SSL_ERROR_WANT_WRITE ? POLLOUT
							    : 0;
		if (!ev) {
			sys = sslerr == SSL_ERROR_SYSCALL ? errno : 0;
			eof = sslerr == SSL_ERROR_SYSCALL && !sys;
			/* OpenSSL 3 reports an EOF as an SSL error. */
			if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
				eof = 1;
			break;
		}
		long long left = deadline - nfs_now_ms();
		int w = left > 0 ? nfs_wait_fd(fd, ev, (int)left) : -ETIMEDOUT;
		if (w) {
			sys = -w;
			break;
		}
	}
	if (!SSL_is_init_finished(c->ssl)) {
		handshake_error(t, c->ssl, sslerr, sys, eof, where, err, errlen);
		tls_conn_free(c);
		return -ECONNABORTED; /* unreachable for health.c: routed around */
	}
	char why[256];
	if (t->client_cert && !SSL_session_reused(c->ssl) &&
	    SSL_version(c->ssl) >= TLS1_3_VERSION &&
	    await_cert_verdict(c, TLS_CERT_VERDICT_WAIT_MS, why, sizeof why)) {
		cert_refused(where, why, err, errlen);
		tls_conn_free(c);
		return -ECONNABORTED;
	}
	if (SSL_session_reused(c->ssl))
		atomic_fetch_add(&t->resumed, 1);
	if (buffer_writes(c) != 0) {
		tls_conn_free(c);
		snprintf(err, errlen, "TLS: out of memory");
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

long tls_read(struct tls_conn *c, void *buf, size_t n, int timeout_ms)
{
	if (n > INT32_MAX)
		n = INT32_MAX;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		ERR_clear_error();
		int r = SSL_read(c->ssl, buf, (int)n);
		int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
		int sys = errno;
		pthread_mutex_unlock(&c->lock);
		if (r > 0)
			return r;
		int w;
		switch (e) {
		case SSL_ERROR_WANT_READ:
			w = nfs_wait_fd(c->fd, POLLIN, timeout_ms);
			break;
		case SSL_ERROR_WANT_WRITE:
			w = nfs_wait_fd(c->fd, POLLOUT, timeout_ms);
			break;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SYSCALL:
			return sys ? -sys : 0;
		default:
			/* An EOF without close_notify is an SSL error in OpenSSL 3. */
			if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
				return 0;
			return -EPROTO;
		}
		if (w)
			return w;
	}
}

/* Write one buffer whole; caller is the only writer. */
static int write_buf(struct tls_conn *c, const uint8_t *p, size_t n)
{
	while (n) {
		int chunk = n > TLS_RECORD_MAX ? TLS_RECORD_MAX : (int)n;
		pthread_mutex_lock(&c->lock);
		ERR_clear_error();
		int r = SSL_write(c->ssl, p, chunk);
		int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
		int sys = errno;
		pthread_mutex_unlock(&c->lock);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		int w;
		switch (e) {
		case SSL_ERROR_WANT_WRITE:
			w = nfs_wait_fd(c->fd, POLLOUT, -1);
			break;
		case SSL_ERROR_WANT_READ: /* rpc.c's reader will read */
			w = nfs_wait_fd(c->fd, POLLIN, TLS_WANT_READ_WAIT_MS);
			if (w == -ETIMEDOUT)
				w = 0;
			break;
		case SSL_ERROR_SYSCALL:
			return sys ? -sys : -EPIPE;
		default:
			return -EPROTO;
		}
		if (w)
			return w;
	}
	return 0;
}

/* Send what the write buffer holds. */
static int flush_writes(struct tls_conn *c)
{
	for (;;) {
		pthread_mutex_lock(&c->lock);
		BIO *w = SSL_get_wbio(c->ssl);
		errno = 0;
		long r = BIO_flush(w);
		int retry = r <= 0 && BIO_should_retry(w);
		int sys = errno;
		pthread_mutex_unlock(&c->lock);
		if (r > 0)
			return 0;
		if (!retry)
			return sys ? -sys : -EPIPE;
		int e = nfs_wait_fd(c->fd, POLLOUT, -1);
		if (e)
			return e;
	}
}

int tls_writev(struct tls_conn *c, const struct iovec *iov, int n)
{
	size_t used = 0;
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		/* Large pieces go out as they are; small ones are gathered so
		 * that a call header does not cost a record of its own. */
		while (len) {
			if (used == 0 && len >= TLS_RECORD_MAX) {
				size_t whole = len - len % TLS_RECORD_MAX;
				int e = write_buf(c, p, whole);
				if (e)
					return e;
				p += whole;
				len -= whole;
				continue;
			}
			size_t take = sizeof c->out - used;
			if (take > len)
				take = len;
			memcpy(c->out + used, p, take);
			used += take;
			p += take;
			len -= take;
			if (used == sizeof c->out) {
				int e = write_buf(c, c->out, used);
				if (e)
					return e;
				used = 0;
			}
		}
	}
	if (used) {
		int e = write_buf(c, c->out, used);
		if (e)
			return e;
	}
	return flush_writes(c);
}

void tls_conn_info(struct tls_conn *c, struct tls_info *info)
{
	pthread_mutex_lock(&c->lock);
	snprintf(info->version, sizeof info->version, "%s", SSL_get_version(c->ssl));
	const char *ci = SSL_get_cipher_name(c->ssl);
	snprintf(info->cipher, sizeof info->cipher, "%s", ci ? ci : "");
	info->resumed = SSL_session_reused(c->ssl);
	info->client_cert = SSL_get_certificate(c->ssl) != NULL;
	pthread_mutex_unlock(&c->lock);
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void tls_conn_lock(struct tls_conn *c)
{
	pthread_mutex_lock(&c->lock);
}

void tls_conn_unlock(struct tls_conn *c)
{
	pthread_mutex_unlock(&c->lock);
}

void tls_conn_reinit_lock(struct tls_conn *c)
{
	pthread_mutex_init(&c->lock, NULL);
}
