/*
 * tls.h - TLS (1.2 or newer, OpenSSL) under the RPC byte stream.
 *
 * A tls_target is what every connection to one server shares: the
 * context (trust store, expected name) and the last session the server
 * gave, so a reconnect resumes instead of doing a full handshake. A
 * tls_conn is one connection's SSL object on a non-blocking socket.
 *
 * Threads: an SSL object must never be used by two threads at once, but
 * in rpc.c one thread reads (a caller waiting for its reply) while others
 * write. Every SSL call
 * here runs under the connection's mutex and never blocks inside it (the
 * socket is non-blocking; waiting is a poll(2) outside the lock), so a
 * reader waiting for data never holds up a writer.
 */
#ifndef EFSMT_NFS_TLS_H
#define EFSMT_NFS_TLS_H

#include <stddef.h>
#include <sys/uio.h>

struct x509_st;
struct evp_pkey_st;

/* The client certificate to present when the server asks for one
 * (tls_cert.h makes them). get gives references to the current
 * certificate and key (the caller frees both) and its generation, which
 * changes with every new certificate: a session made under another
 * generation is not resumed, so the server sees the new one. */
struct tls_client_cert {
	int (*get)(void *arg, struct x509_st **cert, struct evp_pkey_st **key,
		   unsigned *generation, char *err, size_t errlen);
	void *arg;
};

/* The -o options (fuse/daemon/config.c). */
struct tls_conf {
	int verify;	    /* 0: tls_verify=0, the certificate is not checked */
	const char *cafile; /* NULL: the system CA store */
	const char *name;   /* the name the certificate must carry; NULL: the host */
	const struct tls_client_cert *client_cert; /* NULL: none */
};

struct tls_target;
struct tls_conn;

/* What `efsmtctl targets` shows of one connection. */
struct tls_info {
	char version[16]; /* "TLSv1.3" */
	char cipher[64];  /* "TLS_AES_256_GCM_SHA384" */
	int resumed;	  /* this connection's handshake resumed a session */
	int client_cert;  /* a client certificate was presented (tls_cert.h) */
};

/* A context for connections to host; 0 or -errno with a one-line reason. */
int tls_target_new(const struct tls_conf *conf, const char *host, struct tls_target **out,
		   char *err, size_t errlen);
void tls_target_free(struct tls_target *t);
/* Handshakes that resumed a session, since tls_target_new. */
unsigned tls_target_resumptions(struct tls_target *t);

/* Handshake on a connected socket (left non-blocking) within timeout_ms;
 * 0, or -ECONNABORTED (the target is unusable: fail over) with one line in
 * err: the reason (unknown CA, name mismatch,
 * expired, protocol, plaintext server) and what to do. port is for the
 * message only. */
int tls_handshake(struct tls_target *t, int fd, unsigned port, int timeout_ms,
		  struct tls_conn **out, char *err, size_t errlen);
/* Up to n bytes (> 0), 0 at the peer's end of stream, or -errno. Waits
 * for data at most timeout_ms at a time (-1: no limit; -ETIMEDOUT after). */
long tls_read(struct tls_conn *c, void *buf, size_t n, int timeout_ms);
/* All of the iovecs, or -errno. One writer at a time (rpc.c's send_lock). */
int tls_writev(struct tls_conn *c, const struct iovec *iov, int n);
void tls_conn_info(struct tls_conn *c, struct tls_info *info);
/* Free without sending close_notify (the socket is the caller's). */
void tls_conn_free(struct tls_conn *c);
/* fork(2): held across it by the parent, made fresh in the child. */
void tls_conn_lock(struct tls_conn *c);
void tls_conn_unlock(struct tls_conn *c);
void tls_conn_reinit_lock(struct tls_conn *c);

/* OpenSSL's last error as text (or "no further detail"); clears the queue. */
void tls_ssl_reason(char *buf, size_t len);

#endif
