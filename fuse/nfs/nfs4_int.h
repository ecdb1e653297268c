/* nfs4_int.h - inside the NFS module: COMPOUND building and running. */
#ifndef EFSMT_NFS4_INT_H
#define EFSMT_NFS4_INT_H

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
void nfs_compound_batch(struct nfs_client *c, const struct rpc_auth *cr,
			struct nfs_compound *cps, struct nfs_res *res, int *errs, int n);

/* Limits of the current session. */
uint32_t nfs_max_ops(struct nfs_client *c);
uint32_t nfs_io_read(struct nfs_client *c);
/* READ data that fits in a reply the server caches (cachethis): 0 if none
 * worth asking. */
uint32_t nfs_cached_read_max(struct nfs_client *c);
uint32_t nfs_io_write(struct nfs_client *c);
uint64_t nfs_client_id(struct nfs_client *c);
uint64_t nfs_next_owner(struct nfs_client *c);

#endif
