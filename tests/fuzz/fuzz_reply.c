/*
 * fuzz_reply.c - libFuzzer target for the NFS client's reply decoders: the
 * RPC reply header, a COMPOUND reply's results walked with res_op, fattr4
 * and READDIR4resok. Any input must decode or fail cleanly.
 *
 *   make fuzz          (clang, -fsanitize=fuzzer,address)
 *   ./fuzz_reply -max_total_time=60 CORPUS_DIR
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nfs/nfs4.h"
#include "nfs/nfs4_int.h"
#include "nfs/rpc.h"
#include "nfs/xdr.h"

static int count_entry(void *ctx, const char *name, uint64_t cookie, const struct nfs_attr *a)
{
	(void)cookie;
	*(size_t *)ctx += strlen(name) + (size_t)(a->have & 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, names = 0;
	uint32_t xid = size >= 4 ? (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
					   (uint32_t)data[2] << 8 | data[3]
				 : 0;
	/* As a whole reply record. */
	if (rpc_parse_reply(data, size, xid, &off) == 0) {
		/* The body as COMPOUND4res: status, tag, results. */
		struct nfs_res r;
		size_t n;
		memset(&r, 0, sizeof r);
		xdr_dec_init(&r.d, data + off, size - off);
		r.status = xdr_get_u32(&r.d);
		(void)xdr_get_opaque(&r.d, &n, NFS4_OPAQUE_LIMIT);
		r.left = xdr_get_u32(&r.d);
		static const uint32_t ops[] = { NFS4_OP_SEQUENCE, NFS4_OP_PUTFH, NFS4_OP_GETATTR, NFS4_OP_READDIR };
		for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
			if (res_op(&r, ops[i]) != 0)
				break;
			struct nfs_attr a;
			uint8_t verf[NFS4_VERIFIER_SIZE];
			int eof;
			if (ops[i] == NFS4_OP_GETATTR)
				(void)nfs4_decode_fattr(&r.d, &a);
			else if (ops[i] == NFS4_OP_READDIR)
				(void)nfs4_decode_readdir(&r.d, verf, count_entry, &names, &eof);
			else if (ops[i] == NFS4_OP_SEQUENCE)
				xdr_skip(&r.d, 16 + 5 * 4);
		}
	}
	/* As a bare fattr4 and a bare READDIR4resok. */
	struct xdr_dec d;
	struct nfs_attr a;
	xdr_dec_init(&d, data, size);
	(void)nfs4_decode_fattr(&d, &a);
	uint8_t verf[NFS4_VERIFIER_SIZE];
	int eof;
	xdr_dec_init(&d, data, size);
	(void)nfs4_decode_readdir(&d, verf, count_entry, &names, &eof);
	return 0;
}
