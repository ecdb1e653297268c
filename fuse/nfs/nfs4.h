/*
 * nfs4.h - a user-space NFSv4.1 client (RFC 8881): the module's API.
 *
 * One nfs_client is one TCP connection carrying one session. Clients
 * opened with the same nfs_clid (the lanes of one target) are one NFSv4.1
 * client of the server: the same owner and verifier make every
 * EXCHANGE_ID answer the same client ID, each connection creates its own
 * session on it, and so an open's stateid and its locks are good on every
 * one of them. Without an nfs_clid a client has an owner of its own. Any
 * number of threads may call into one client at once: each call takes a
 * slot of the session's slot table, so up to the negotiated number of
 * COMPOUNDs are in flight on the connection. A lost connection or session
 * is rebuilt on the next call (same client owner and verifier, so the
 * server keeps the client ID and its open state while the lease lasts).
 * The lease is renewed by a background thread when the client is idle.
 *
 * Every function returns 0 (or a byte count where documented) or -errno;
 * NFS4ERR_* codes are mapped to errno by nfs4_errno(). Credentials are
 * AUTH_SYS (struct rpc_auth): pass the identity of whoever asked, or NULL
 * for the client's own (uid 0, gid 0).
 */
#ifndef EFSMT_NFS4_H
#define EFSMT_NFS4_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "nfs4_const.h"
#include "rpc.h"
#include "tls.h"

#define NFS_DEFAULT_PORT 2049
#define NFS_DEFAULT_SLOTS 64	      /* session slots asked for */
#define NFS_IO_MAX (1u << 20)	      /* bytes in one READ or WRITE, at most */
#define NFS_CONNECT_TIMEOUT_MS 5000
#define NFS_DELAY_RETRY_MS 20	      /* first wait after NFS4ERR_DELAY; doubles */
#define NFS_DELAY_RETRY_MAX_MS 2000
#define NFS_DELAY_RETRIES 30

struct nfs_client;
struct nfs_clid;

struct nfs_opts {
	uint16_t port;	  /* 0: NFS_DEFAULT_PORT */
	int timeout_ms;	  /* one call; 0: RPC_DEFAULT_TIMEOUT_MS */
	uint32_t slots;	  /* 0: NFS_DEFAULT_SLOTS */
	uint32_t max_io;  /* 0: NFS_IO_MAX */
	struct tls_target *tls; /* tls.h: TLS on every connection; NULL: plain TCP */
	struct nfs_clid *clid;	/* one client ID shared with other connections; NULL: own */
};

/* A client identity (owner and verifier) for the connections that are one
 * client of a server; it outlives every nfs_client opened with it. */
struct nfs_clid *nfs_clid_new(void);
void nfs_clid_free(struct nfs_clid *id);

struct nfs_fh {
	uint32_t len;
	uint8_t data[NFS4_FHSIZE];
};

struct nfs_stateid {
	uint32_t seqid;
	uint8_t other[NFS4_OTHER_SIZE];
};

/* Which attributes a reply carried (NFS_A_*), and their values. Owners come
 * back as numeric ids ("1000") or user@domain, mapped through the local
 * passwd/group files, else to 65534. */
enum {
	NFS_A_TYPE = 1 << 0,
	NFS_A_MODE = 1 << 1,
	NFS_A_NLINK = 1 << 2,
	NFS_A_UID = 1 << 3,
	NFS_A_GID = 1 << 4,
	NFS_A_SIZE = 1 << 5,
	NFS_A_SPACE = 1 << 6,
	NFS_A_FILEID = 1 << 7,
	NFS_A_ATIME = 1 << 8,
	NFS_A_MTIME = 1 << 9,
	NFS_A_CTIME = 1 << 10,
	NFS_A_RDEV = 1 << 11,
	NFS_A_CHANGE = 1 << 12,
	NFS_A_FSSTAT = 1 << 13, /* space_* and files_* */
	NFS_A_LEASE = 1 << 14,
	NFS_A_MAXIO = 1 << 15,
	NFS_A_MAXNAME = 1 << 16,
	NFS_A_RDATTR_ERROR = 1 << 17,
};

struct nfs_attr {
	uint32_t have; /* NFS_A_* */
	struct stat st; /* st_mode carries S_IFMT from type plus mode bits */
	uint64_t change;
	uint64_t space_avail, space_free, space_total;
	uint64_t files_avail, files_free, files_total;
	uint32_t lease_time;
	uint64_t maxread, maxwrite;
	uint32_t maxname;
	uint32_t rdattr_error;
};

/* Attributes to set (SETATTR, or the initial ones of a new object). */
enum {
	NFS_SA_MODE = 1 << 0,
	NFS_SA_UID = 1 << 1,
	NFS_SA_GID = 1 << 2,
	NFS_SA_SIZE = 1 << 3,
	NFS_SA_ATIME = 1 << 4,	   /* to atime */
	NFS_SA_MTIME = 1 << 5,	   /* to mtime */
	NFS_SA_ATIME_NOW = 1 << 6, /* to the server's time */
	NFS_SA_MTIME_NOW = 1 << 7,
};

struct nfs_sattr {
	unsigned valid;
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime;
};

/* An open file: the state the server gave for one OPEN. */
struct nfs_open {
	struct nfs_fh fh;
	struct nfs_stateid stateid;
	uint64_t owner;	  /* open-owner id, unique per OPEN */
	int access;	  /* OPEN4_SHARE_ACCESS_* */
};

struct nfs_info {
	uint64_t clientid;
	uint32_t slots;	     /* negotiated */
	uint32_t lease_time; /* seconds */
	uint32_t maxread, maxwrite; /* per READ/WRITE, after splitting limits */
	uint32_t max_ops;    /* operations per COMPOUND */
	unsigned reconnects;
};

/* Called per directory entry; return nonzero to stop early. */
typedef int (*nfs_readdir_fn)(void *ctx, const char *name, uint64_t cookie,
			      const struct nfs_attr *attr);

/* Client lifetime. */
int nfs_client_open(const char *host, const struct nfs_opts *opts, struct nfs_client **out,
		    char *err, size_t errlen);
void nfs_client_close(struct nfs_client *c); /* DESTROY_SESSION, DESTROY_CLIENTID */
void nfs_client_info(struct nfs_client *c, struct nfs_info *info);
/* Why the last reconnect failed (one line), "" after a success. */
void nfs_client_last_error(struct nfs_client *c, char *buf, size_t len);
/* 1 with info filled when the current connection is TLS, else 0. */
int nfs_client_tls_info(struct nfs_client *c, struct tls_info *info);
/* 0 while the connection and session work (a SEQUENCE round trip). */
int nfs_ping(struct nfs_client *c);
/* The server stopped answering: fail every call in flight (the connection
 * is cut) and every later call with -ENOTCONN, without reconnecting, until
 * nfs_client_probe succeeds. Safe from any thread at any time. */
void nfs_client_abort(struct nfs_client *c);
/* Reconnect if needed and ping, even while aborted; 0 clears the abort. */
int nfs_client_probe(struct nfs_client *c);
/* How long (ms) the server may still hold this client's state valid: the
 * lease from its last answer, less the time since; 0 once it ran out. */
long long nfs_client_lease_left_ms(struct nfs_client *c);

/* RPCs sent (every COMPOUND, resends included), counted per client ID
 * (nfs_clid: so the lanes of one target add up) by main operation: the
 * first operation after SEQUENCE that is not a filehandle operation
 * (PUTFH, PUTROOTFH, PUTPUBFH, SAVEFH, RESTOREFH, GETFH) or a helper
 * (LOOKUP, LOOKUPP, VERIFY, NVERIFY, GETATTR, ACCESS, COMMIT); failing
 * that the first helper, failing that the first operation. So PUTFH OPEN
 * GETFH GETATTR READ is one OPEN, PUTFH LOOKUP NVERIFY PUTFH REMOVE one
 * REMOVE, PUTFH COMMIT CLOSE one CLOSE, PUTFH SETATTR GETATTR one SETATTR,
 * PUTFH LOOKUP GETFH GETATTR one LOOKUP, PUTFH GETATTR one GETATTR, PUTFH
 * COMMIT one COMMIT. A COMPOUND of SEQUENCE alone (lease
 * renewal, health probe) is SEQUENCE; the session's own calls
 * (EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE, DESTROY_*) are counted
 * by their operation. Index: the operation's number (nfs4_const.h); 0:
 * anything past NFS_RPC_SLOTS. Relaxed atomic adds: a snapshot is not
 * one instant, each count is exact. */
#define NFS_RPC_SLOTS 76 /* operations up to REMOVEXATTR (RFC 8276) */
struct nfs_rpc_counts {
	uint64_t n[NFS_RPC_SLOTS];
};
void nfs_clid_rpcs(const struct nfs_clid *id, struct nfs_rpc_counts *out);
/* The same for one client opened without a shared client ID. */
void nfs_client_rpcs(const struct nfs_client *c, struct nfs_rpc_counts *out);
/* An operation's name ("OPEN"), "OTHER" for 0, NULL for numbers that are
 * no operation. */
const char *nfs4_op_name(unsigned op);
/* 1 for the operations that keep the session rather than serve a file
 * request: SEQUENCE alone, EXCHANGE_ID, CREATE_SESSION, DESTROY_SESSION,
 * DESTROY_CLIENTID, RECLAIM_COMPLETE, BIND_CONN_TO_SESSION. */
int nfs4_op_is_session(unsigned op);

/* Names. base NULL is the server's root; path is '/'-separated, relative
 * to base ("" or "/" is base itself). */
int nfs_resolve(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *base,
		const char *path, struct nfs_fh *fh, struct nfs_attr *attr);
int nfs_lookup(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, struct nfs_fh *fh, struct nfs_attr *attr);
int nfs_getattr(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		struct nfs_attr *attr);
/* sid NULL: the anonymous stateid. attr (may be NULL) gets the new attributes. */
int nfs_setattr(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		const struct nfs_stateid *sid, const struct nfs_sattr *sa, struct nfs_attr *attr);
/* want: ACCESS4_* bits; *allowed gets the granted subset. */
int nfs_access(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       uint32_t want, uint32_t *allowed);
/* GETATTR and ACCESS in one COMPOUND. */
int nfs_getattr_access(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		       uint32_t want, uint32_t *allowed, struct nfs_attr *attr);
int nfs_statfs(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       struct statvfs *sv);
/* Returns the target's length; buf is NUL-terminated when it fits. */
ssize_t nfs_readlink(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		     char *buf, size_t size);

/* Files. flags are open(2) flags: O_ACCMODE, O_CREAT (UNCHECKED4, or with
 * O_EXCL EXCLUSIVE4_1), O_TRUNC. mode is used when a file is created. */
/* Open the file of->fh again (CLAIM_FH, same access) for a new stateid,
 * after the server lost the old one (a restart: -EBADF from READ/WRITE). */
int nfs_reopen(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of);
int nfs_open(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	     const char *name, int flags, uint32_t mode, struct nfs_open *of,
	     struct nfs_attr *attr);
/* nfs_open, and in the same COMPOUND a READ of up to size bytes from the
 * start into buf (*got bytes, *eof): a small file opened to be read costs
 * one round trip less. A failed READ leaves *got 0. */
int nfs_open_read(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
		  const char *name, int flags, uint32_t mode, struct nfs_open *of,
		  struct nfs_attr *attr, void *buf, size_t size, size_t *got, int *eof);
int nfs_close(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of);
/* COMMIT (if commit) and CLOSE in one COMPOUND; verf gets COMMIT's verifier. */
int nfs_commit_close(struct nfs_client *c, const struct rpc_auth *cr, struct nfs_open *of,
		     int commit, uint8_t verf[NFS4_VERIFIER_SIZE]);
/* Read/write up to size bytes at off, split into parallel READs/WRITEs of
 * at most maxread/maxwrite; return the byte count. write: stable is
 * UNSTABLE4/DATA_SYNC4/FILE_SYNC4; *committed (may be NULL) gets the
 * weakest level the server used, verf (may be NULL) its write verifier. */
ssize_t nfs_read(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		 const struct nfs_stateid *sid, void *buf, size_t size, uint64_t off, int *eof);
ssize_t nfs_write(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		  const struct nfs_stateid *sid, const void *buf, size_t size, uint64_t off,
		  int stable, int *committed, uint8_t verf[NFS4_VERIFIER_SIZE]);
/* nfs_read without the copy: *data points at the bytes inside the reply
 * itself, and *keep is what to free(3) once they are used. */
ssize_t nfs_read_ref(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		     const struct nfs_stateid *sid, size_t size, uint64_t off, int *eof,
		     const uint8_t **data, void **keep);
int nfs_commit(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	       uint64_t off, uint32_t count, uint8_t verf[NFS4_VERIFIER_SIZE]);

/* Namespace changes. create: type NF4DIR, NF4LNK (linkdata), NF4FIFO,
 * NF4SOCK, NF4BLK/NF4CHR (rdev). */
int nfs_create(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, uint32_t type, const char *linkdata, dev_t rdev, uint32_t mode,
	       struct nfs_fh *fh, struct nfs_attr *attr);
/* kind: NFS_RM_ANY, or NFS_RM_DIR (rmdir: -ENOTDIR unless a directory),
 * NFS_RM_NONDIR (unlink: -EISDIR for a directory), checked in the same
 * COMPOUND as the REMOVE. */
enum { NFS_RM_ANY, NFS_RM_DIR, NFS_RM_NONDIR };
int nfs_remove(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
	       const char *name, int kind);
int nfs_rename(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *from_dir,
	       const char *from, const struct nfs_fh *to_dir, const char *to);
/* Swap two names (RENAME_EXCHANGE) with three RENAMEs through a temporary
 * name in one COMPOUND: not atomic for other clients; on failure what
 * moved is put back. */
int nfs_rename_exchange(struct nfs_client *c, const struct rpc_auth *cr,
			const struct nfs_fh *dir_a, const char *a, const struct nfs_fh *dir_b,
			const char *b);
int nfs_link(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
	     const struct nfs_fh *dir, const char *name, struct nfs_attr *attr);
/* One READDIR from cookie (0: the start) with the cookie verifier verf (in
 * and out; zero at the start); entries (without "." and "..") go to fn with
 * their attributes. maxcount bounds the reply (0: a default). */
int nfs_readdir(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *dir,
		uint64_t cookie, uint8_t verf[NFS4_VERIFIER_SIZE], uint32_t maxcount,
		nfs_readdir_fn fn, void *ctx, int *eof);

/* A target URI nfs://HOST[:PORT][/PATH] (or a bare HOST, or [IPv6]) into
 * its parts; path defaults to "/". 0 or -EINVAL. */
int nfs_parse_uri(const char *uri, char *host, size_t hostlen, uint16_t *port, char *path,
		  size_t pathlen);

/* Byte-range locks (LOCK, LOCKU, LOCKT). A lock-owner's state on one open
 * file: zero it before the first nfs_lock. type: READ_LT or WRITE_LT (the
 * W variants ask the server to queue us; the caller still polls). len
 * NFS_LOCK_TO_EOF means to the end of file. A conflict gives -EAGAIN
 * (NFS4ERR_DENIED) and, if conflict is not NULL, the lock in the way. */
#define NFS_LOCK_TO_EOF UINT64_MAX
struct nfs_lock {
	struct nfs_stateid stateid;
	uint64_t owner; /* 0: a new owner is taken at the first lock */
	int have;	/* stateid is valid */
};
struct nfs_lock_conflict {
	uint64_t offset, length;
	uint32_t type;
};
int nfs_lock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_open *of,
	     struct nfs_lock *lk, uint32_t type, uint64_t off, uint64_t len,
	     struct nfs_lock_conflict *conflict);
int nfs_unlock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_open *of,
	       struct nfs_lock *lk, uint64_t off, uint64_t len);
/* FREE_STATEID: the server forgets a lock stateid that holds no locks. */
int nfs_free_stateid(struct nfs_client *c, const struct rpc_auth *cr,
		     const struct nfs_stateid *sid);
/* The client ID now: it changes when the server forgot this client (a
 * restart, an expired lease), and with it every open and lock. */
uint64_t nfs_client_current_id(struct nfs_client *c);
/* A number no other owner of this client has (for struct nfs_lock). */
uint64_t nfs_next_owner(struct nfs_client *c);
/* Would owner get this lock? 0, or -EAGAIN with the conflict. */
int nfs_testlock(struct nfs_client *c, const struct rpc_auth *cr, const struct nfs_fh *fh,
		 uint64_t owner, uint32_t type, uint64_t off, uint64_t len,
		 struct nfs_lock_conflict *conflict);

/* NFS4ERR_* (and NFS4_OK) to a negative errno (0 for NFS4_OK). */
int nfs4_errno(uint32_t status);

/* Wire helpers, exposed for the tests. */
struct xdr_enc;
struct xdr_dec;
/* Decode a fattr4 (bitmap4 then attrlist4 opaque) into attr; 0 or -EBADMSG. */
int nfs4_decode_fattr(struct xdr_dec *d, struct nfs_attr *attr);
/* Decode READDIR4resok (cookie verifier, entries, eof), calling fn per
 * entry; 0 or -EBADMSG. */
int nfs4_decode_readdir(struct xdr_dec *d, uint8_t verf[NFS4_VERIFIER_SIZE], nfs_readdir_fn fn,
			void *ctx, int *eof);
/* Encode the settable attributes of sa as a fattr4. */
void nfs4_encode_sattr(struct xdr_enc *x, const struct nfs_sattr *sa);

#endif
