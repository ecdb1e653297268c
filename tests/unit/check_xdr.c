/*
 * check_xdr.c - XDR (RFC 4506), the RPC message header (RFC 5531), fattr4
 * (RFC 8881) and URI parsing, against byte sequences worked out by hand
 * from the RFC definitions; malformed input must give an error, never a
 * crash or a read past the buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "nfs/nfs4.h"
#include "nfs/rpc.h"
#include "nfs/xdr.h"
#include "check_run.h"

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ })

static void expect_bytes(const struct xdr_enc *x, const uint8_t *want, size_t n)
{
	ck_assert_int_eq(x->err, 0);
	ck_assert_uint_eq(x->len, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(x->buf[i] == want[i], "byte %zu: got 0x%02x want 0x%02x", i,
			      x->buf[i], want[i]);
}

START_TEST(enc_integers)
{
	struct xdr_enc x;
	xdr_enc_init(&x);
	xdr_put_u32(&x, 0x01020304);
	xdr_put_u64(&x, 0x1122334455667788ull);
	xdr_put_bool(&x, 7); /* any true value is 1 on the wire */
	xdr_put_bool(&x, 0);
	expect_bytes(&x, BYTES(1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
			       0, 0, 0, 1, 0, 0, 0, 0), 20);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(enc_opaque_padding)
{
	/* RFC 4506 4.10: length, bytes, zero padding to a multiple of four. */
	struct xdr_enc x;
	xdr_enc_init(&x);
	xdr_put_opaque(&x, "abcde", 5);
	xdr_put_string(&x, "");
	xdr_put_fixed(&x, "xy", 2); /* fixed-length: no length word */
	xdr_put_string(&x, "abcd");
	expect_bytes(&x, BYTES(0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0, /* opaque<> */
			       0, 0, 0, 0,				 /* "" */
			       'x', 'y', 0, 0,				 /* opaque[2] */
			       0, 0, 0, 4, 'a', 'b', 'c', 'd'),		 /* no pad */
		     28);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(enc_patch_slot)
{
	struct xdr_enc x;
	xdr_enc_init(&x);
	size_t at = xdr_put_u32_slot(&x);
	xdr_put_u32(&x, 9);
	xdr_patch_u32(&x, at, 0xdeadbeef);
	expect_bytes(&x, BYTES(0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9), 8);
	xdr_enc_reset(&x);
	ck_assert_uint_eq(x.len, 0);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(enc_grows)
{
	struct xdr_enc x;
	xdr_enc_init(&x);
	for (uint32_t i = 0; i < 100000; i++)
		xdr_put_u32(&x, i);
	ck_assert_int_eq(x.err, 0);
	ck_assert_uint_eq(x.len, 400000);
	ck_assert_uint_eq(x.buf[399999], 99999 & 0xff);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(dec_values)
{
	const uint8_t in[] = { 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1,
			       0, 0, 0, 3, 'a', 'b', 'c', 0 };
	struct xdr_dec d;
	xdr_dec_init(&d, in, sizeof in);
	ck_assert_uint_eq(xdr_get_u32(&d), 0xfffffffeu);
	ck_assert_uint_eq(xdr_get_u64(&d), 0x100000002ull);
	ck_assert_int_eq(xdr_get_bool(&d), 1);
	char s[8];
	ck_assert_int_eq(xdr_get_string(&d, s, sizeof s, 255), 0);
	ck_assert_str_eq(s, "abc");
	ck_assert_int_eq(d.err, 0);
	ck_assert_uint_eq(xdr_remaining(&d), 0);
	/* Reading past the end: error, zero, and it stays an error. */
	ck_assert_uint_eq(xdr_get_u32(&d), 0);
	ck_assert_int_eq(d.err, -EBADMSG);
	ck_assert_uint_eq(xdr_get_u32(&d), 0);
}
END_TEST

START_TEST(dec_truncated)
{
	const uint8_t in[] = { 0, 0, 0, 1, 0, 0 };
	struct xdr_dec d;
	for (size_t n = 0; n < 8; n++) {
		xdr_dec_init(&d, in, n < sizeof in ? n : sizeof in);
		(void)xdr_get_u64(&d);
		ck_assert_int_eq(d.err, -EBADMSG);
	}
	xdr_dec_init(&d, in, 3);
	(void)xdr_get_u32(&d);
	ck_assert_int_eq(d.err, -EBADMSG);
	xdr_dec_init(&d, NULL, 100); /* no buffer: nothing to read */
	(void)xdr_get_u32(&d);
	ck_assert_int_eq(d.err, -EBADMSG);
}
END_TEST

START_TEST(dec_length_past_buffer)
{
	/* opaque<> claiming 0xfffffff0 bytes in an 8-byte buffer. */
	const uint8_t in[] = { 0xff, 0xff, 0xff, 0xf0, 'a', 'b', 'c', 'd' };
	struct xdr_dec d;
	size_t n = 99;
	xdr_dec_init(&d, in, sizeof in);
	ck_assert_ptr_null(xdr_get_opaque(&d, &n, SIZE_MAX));
	ck_assert_int_eq(d.err, -EBADMSG);
	ck_assert_uint_eq(n, 0);
	/* Within the buffer but the padding is missing. */
	const uint8_t in2[] = { 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e' };
	xdr_dec_init(&d, in2, sizeof in2);
	ck_assert_ptr_null(xdr_get_opaque(&d, &n, 100));
	ck_assert_int_eq(d.err, -EBADMSG);
	/* Over the protocol limit. */
	const uint8_t in3[] = { 0, 0, 0, 4, 'a', 'b', 'c', 'd' };
	xdr_dec_init(&d, in3, sizeof in3);
	ck_assert_ptr_null(xdr_get_opaque(&d, &n, 3));
	ck_assert_int_eq(d.err, -EBADMSG);
	xdr_dec_init(&d, in3, sizeof in3);
	const uint8_t *p = xdr_get_opaque(&d, &n, 4);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(memcmp(p, "abcd", 4), 0);
	/* A fixed-length opaque near SIZE_MAX must not wrap. */
	xdr_dec_init(&d, in3, sizeof in3);
	ck_assert_ptr_null(xdr_get_fixed(&d, SIZE_MAX - 1));
	ck_assert_int_eq(d.err, -EBADMSG);
}
END_TEST

START_TEST(dec_bad_strings_and_bools)
{
	struct xdr_dec d;
	char s[4];
	const uint8_t nul[] = { 0, 0, 0, 3, 'a', 0, 'b', 0 };
	xdr_dec_init(&d, nul, sizeof nul);
	ck_assert_int_eq(xdr_get_string(&d, s, sizeof s, 255), -EBADMSG);
	const uint8_t longer[] = { 0, 0, 0, 4, 'a', 'b', 'c', 'd' };
	xdr_dec_init(&d, longer, sizeof longer);
	ck_assert_int_eq(xdr_get_string(&d, s, sizeof s, 255), -EBADMSG); /* buffer of 4 */
	const uint8_t two[] = { 0, 0, 0, 2 };
	xdr_dec_init(&d, two, sizeof two);
	(void)xdr_get_bool(&d);
	ck_assert_int_eq(d.err, -EBADMSG);
}
END_TEST

START_TEST(rpc_call_header_auth_sys)
{
	/* RFC 5531 section 9 call_body and appendix A authsys_parms. */
	struct rpc_auth a = { .uid = 1000, .gid = 100, .ngroups = 2, .groups = { 4, 27 } };
	struct xdr_enc x;
	xdr_enc_init(&x);
	rpc_encode_call_header(&x, 0x01020304, 100003, 4, 1, &a);
	expect_bytes(&x,
		     BYTES(1, 2, 3, 4,		   /* xid */
			   0, 0, 0, 0,		   /* CALL */
			   0, 0, 0, 2,		   /* rpcvers */
			   0, 1, 0x86, 0xa3,	   /* prog 100003 */
			   0, 0, 0, 4,		   /* vers */
			   0, 0, 0, 1,		   /* proc COMPOUND */
			   0, 0, 0, 1,		   /* AUTH_SYS */
			   0, 0, 0, 36,		   /* body length */
			   0, 0, 0, 0,		   /* stamp */
			   0, 0, 0, 5, 'e', 'f', 's', 'm', 't', 0, 0, 0, /* machinename */
			   0, 0, 0x03, 0xe8,	   /* uid 1000 */
			   0, 0, 0, 100,	   /* gid */
			   0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 27, /* gids */
			   0, 0, 0, 0, 0, 0, 0, 0), /* verifier AUTH_NONE */
		     76);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(rpc_call_header_caps_groups)
{
	struct rpc_auth a = { .uid = 1, .gid = 1, .ngroups = 40 };
	struct xdr_enc x;
	xdr_enc_init(&x);
	rpc_encode_call_header(&x, 1, 100003, 4, 1, &a);
	/* 16 groups at most: body = 4 + 12 + 4 + 4 + 4 + 64 = 92. */
	ck_assert_uint_eq(x.buf[31], 92);
	ck_assert_uint_eq(x.len, 32 + 92 + 8);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(rpc_reply_parse)
{
	const uint8_t ok[] = { 0, 0, 0, 9, 0, 0, 0, 1, /* xid 9, REPLY */
			       0, 0, 0, 0,		/* MSG_ACCEPTED */
			       0, 0, 0, 0, 0, 0, 0, 0,	/* verifier AUTH_NONE */
			       0, 0, 0, 0,		/* SUCCESS */
			       0xaa, 0xbb, 0xcc, 0xdd };
	size_t off = 0;
	ck_assert_int_eq(rpc_parse_reply(ok, sizeof ok, 9, &off), 0);
	ck_assert_uint_eq(off, 24);
	ck_assert_int_eq(rpc_parse_reply(ok, sizeof ok, 10, &off), -EPROTO); /* wrong XID */
	for (size_t n = 0; n < 24; n++)
		ck_assert_int_eq(rpc_parse_reply(ok, n, 9, &off), -EBADMSG);

	const uint8_t call[] = { 0, 0, 0, 9, 0, 0, 0, 0 }; /* a CALL, not a reply */
	ck_assert_int_eq(rpc_parse_reply(call, sizeof call, 9, &off), -EPROTO);

	const uint8_t auth[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, /* MSG_DENIED */
				 0, 0, 0, 1, 0, 0, 0, 5 };	     /* AUTH_ERROR, TOOWEAK */
	ck_assert_int_eq(rpc_parse_reply(auth, sizeof auth, 9, &off), -EACCES);
	const uint8_t mism[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2,
				 0, 0, 0, 2 };
	ck_assert_int_eq(rpc_parse_reply(mism, sizeof mism, 9, &off), -EPROTONOSUPPORT);
	const uint8_t prog[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4 };
	ck_assert_int_eq(rpc_parse_reply(prog, sizeof prog, 9, &off), -EPROTONOSUPPORT);
	const uint8_t garbage[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				    0, 0, 0, 4 };
	ck_assert_int_eq(rpc_parse_reply(garbage, sizeof garbage, 9, &off), -EINVAL);
	const uint8_t badacc[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				   0, 0, 0, 77 };
	ck_assert_int_eq(rpc_parse_reply(badacc, sizeof badacc, 9, &off), -EBADMSG);
	/* A verifier longer than the 400 bytes RFC 5531 allows. */
	const uint8_t bigverf[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
				    0, 0, 0x01, 0x94, 0, 0, 0, 0 };
	ck_assert_int_eq(rpc_parse_reply(bigverf, sizeof bigverf, 9, &off), -EBADMSG);
	const uint8_t badstat[] = { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 7 };
	ck_assert_int_eq(rpc_parse_reply(badstat, sizeof badstat, 9, &off), -EBADMSG);
}
END_TEST

START_TEST(fattr_decode)
{
	/* bitmap4 {2 words: type(1), size(4) | mode(33), owner(36)}, then
	 * attrlist4 of 4 + 8 + 4 + 8 = 24 bytes, values in bit order. */
	const uint8_t in[] = { 0, 0, 0, 2, 0, 0, 0, 0x12, 0, 0, 0, 0x12, /* bitmap */
			       0, 0, 0, 24,				  /* attrlist length */
			       0, 0, 0, 2,				  /* NF4DIR */
			       0, 0, 0, 0, 0, 0, 0x10, 0,		  /* size 4096 */
			       0, 0, 0x01, 0xed,			  /* mode 0755 */
			       0, 0, 0, 4, '1', '0', '0', '0',		  /* owner "1000" */
			       0xee };					  /* next item */
	struct xdr_dec d;
	struct nfs_attr a;
	xdr_dec_init(&d, in, sizeof in);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), 0);
	ck_assert_uint_eq(a.st.st_mode, S_IFDIR | 0755);
	ck_assert_int_eq(a.st.st_size, 4096);
	ck_assert_uint_eq(a.st.st_uid, 1000);
	ck_assert_uint_eq(a.have & (NFS_A_TYPE | NFS_A_SIZE | NFS_A_MODE | NFS_A_UID),
			  NFS_A_TYPE | NFS_A_SIZE | NFS_A_MODE | NFS_A_UID);
	ck_assert_uint_eq(xdr_remaining(&d), 1);
}
END_TEST

START_TEST(fattr_decode_times_and_rawdev)
{
	/* word 1: rawdev(41 -> bit 9), time_modify(53 -> bit 21). */
	const uint8_t in[] = { 0, 0, 0, 2, 0, 0, 0, 0, 0, 0x20, 0x02, 0x00, 0, 0, 0, 20,
			       0, 0, 0, 8, 0, 0, 0, 1,			/* rawdev 8:1 */
			       0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00,	/* seconds */
			       0, 0, 0, 5 };				/* nseconds */
	struct xdr_dec d;
	struct nfs_attr a;
	xdr_dec_init(&d, in, sizeof in);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), 0);
	ck_assert_uint_eq(major(a.st.st_rdev), 8);
	ck_assert_uint_eq(minor(a.st.st_rdev), 1);
	ck_assert_int_eq(a.st.st_mtim.tv_sec, 0x6553f100);
	ck_assert_int_eq(a.st.st_mtim.tv_nsec, 5);
}
END_TEST

START_TEST(fattr_decode_malformed)
{
	struct xdr_dec d;
	struct nfs_attr a;
	/* An attribute we cannot size (bit 90). */
	const uint8_t unknown[] = { 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0,
				    0, 0, 0, 4, 0, 0, 0, 1 };
	xdr_dec_init(&d, unknown, sizeof unknown);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	/* A bit in a word past the ones we know. */
	const uint8_t word4[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
				  0, 0, 0, 0 };
	xdr_dec_init(&d, word4, sizeof word4);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	/* A bitmap of a billion words. */
	const uint8_t huge[] = { 0x40, 0, 0, 0, 0, 0, 0, 0 };
	xdr_dec_init(&d, huge, sizeof huge);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	/* attrlist shorter than the attributes the bitmap names. */
	const uint8_t shortvals[] = { 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 4, 0, 0, 0, 0 };
	xdr_dec_init(&d, shortvals, sizeof shortvals);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	/* attrlist length past the buffer. */
	const uint8_t past[] = { 0, 0, 0, 1, 0, 0, 0, 0x02, 0, 0, 1, 0, 0, 0, 0, 1 };
	xdr_dec_init(&d, past, sizeof past);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	/* nseconds out of range. */
	const uint8_t nsec[] = { 0, 0, 0, 2, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 12,
				 0, 0, 0, 0, 0, 0, 0, 1, 0x3b, 0x9a, 0xca, 0x00 };
	xdr_dec_init(&d, nsec, sizeof nsec);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	/* Every truncation of a good one fails cleanly. */
	const uint8_t good[] = { 0, 0, 0, 1, 0, 0, 0, 0x12, 0, 0, 0, 12, 0, 0, 0, 1,
				 0, 0, 0, 0, 0, 0, 0, 9 };
	for (size_t n = 0; n < sizeof good; n++) {
		xdr_dec_init(&d, good, n);
		ck_assert_int_eq(nfs4_decode_fattr(&d, &a), -EBADMSG);
	}
	xdr_dec_init(&d, good, sizeof good);
	ck_assert_int_eq(nfs4_decode_fattr(&d, &a), 0);
	ck_assert_uint_eq(a.st.st_mode, S_IFREG);
	ck_assert_int_eq(a.st.st_size, 9);
}
END_TEST

struct names {
	char got[64];
	uint64_t cookies[4];
	int n;
	int stop_after;
};

static int collect(void *ctx, const char *name, uint64_t cookie, const struct nfs_attr *a)
{
	struct names *nm = ctx;
	strcat(nm->got, name);
	strcat(nm->got, S_ISDIR(a->st.st_mode) ? "/ " : " ");
	nm->cookies[nm->n++ % 4] = cookie;
	return nm->stop_after && nm->n >= nm->stop_after;
}

START_TEST(readdir_decode)
{
	/* READDIR4resok: cookieverf, then entry4 list (value_follows, cookie,
	 * name, fattr4) ended by FALSE, then eof. */
	const uint8_t in[] = { 1, 2, 3, 4, 5, 6, 7, 8,			/* cookieverf */
			       0, 0, 0, 1,				/* an entry follows */
			       0, 0, 0, 0, 0, 0, 0, 3,			/* cookie 3 */
			       0, 0, 0, 1, 'a', 0, 0, 0,		/* "a" */
			       0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, /* type REG */
			       0, 0, 0, 1,				/* another */
			       0, 0, 0, 0, 0, 0, 0, 9,			/* cookie 9 */
			       0, 0, 0, 3, 'd', 'i', 'r', 0,		/* "dir" */
			       0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 2, /* type DIR */
			       0, 0, 0, 0,				/* no more */
			       0, 0, 0, 1 };				/* eof */
	struct xdr_dec d;
	struct names nm = { "", { 0 }, 0, 0 };
	uint8_t verf[8];
	int eof = 0;
	xdr_dec_init(&d, in, sizeof in);
	ck_assert_int_eq(nfs4_decode_readdir(&d, verf, collect, &nm, &eof), 0);
	ck_assert_str_eq(nm.got, "a dir/ ");
	ck_assert_uint_eq(nm.cookies[0], 3);
	ck_assert_uint_eq(nm.cookies[1], 9);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(memcmp(verf, "\1\2\3\4\5\6\7\10", 8), 0);
	/* The callback stops early: not eof, the rest still parses. */
	struct names one = { "", { 0 }, 0, 1 };
	xdr_dec_init(&d, in, sizeof in);
	ck_assert_int_eq(nfs4_decode_readdir(&d, verf, collect, &one, &eof), 0);
	ck_assert_str_eq(one.got, "a ");
	ck_assert_int_eq(eof, 0);
	/* Every truncation fails cleanly. */
	for (size_t n = 0; n < sizeof in; n++) {
		struct names t = { "", { 0 }, 0, 0 };
		xdr_dec_init(&d, in, n);
		ck_assert_int_eq(nfs4_decode_readdir(&d, verf, collect, &t, &eof), -EBADMSG);
	}
	/* A name longer than NFS4_MAXNAME. */
	uint8_t big[8 + 4 + 8 + 4 + 300 + 12];
	memset(big, 0, sizeof big);
	big[11] = 1;
	big[22] = 0x01;
	big[23] = 0x2c; /* 300 */
	xdr_dec_init(&d, big, sizeof big);
	struct names t = { "", { 0 }, 0, 0 };
	ck_assert_int_eq(nfs4_decode_readdir(&d, verf, collect, &t, &eof), -EBADMSG);
}
END_TEST

START_TEST(sattr_encode)
{
	struct nfs_sattr sa = { .valid = NFS_SA_MODE | NFS_SA_SIZE | NFS_SA_UID |
					 NFS_SA_MTIME_NOW,
				.mode = 0100644, .uid = 42, .size = 0 };
	struct xdr_enc x;
	xdr_enc_init(&x);
	nfs4_encode_sattr(&x, &sa);
	/* size(4) in word 0; mode(33), owner(36), time_modify_set(54) in word 1. */
	expect_bytes(&x,
		     BYTES(0, 0, 0, 2, 0, 0, 0, 0x10, 0, 0x40, 0, 0x12, /* bitmap */
			   0, 0, 0, 24,					 /* attrlist: 8+4+8+4 */
			   0, 0, 0, 0, 0, 0, 0, 0,			 /* size 0 */
			   0, 0, 0x01, 0xa4,				 /* mode 0644 */
			   0, 0, 0, 2, '4', '2', 0, 0,			 /* owner "42" */
			   0, 0, 0, 0),					 /* SET_TO_SERVER_TIME4 */
		     40);
	xdr_enc_reset(&x);
	nfs4_encode_sattr(&x, NULL); /* nothing: an empty bitmap, empty list */
	expect_bytes(&x, BYTES(0, 0, 0, 0, 0, 0, 0, 0), 8);
	xdr_enc_free(&x);
}
END_TEST

START_TEST(errno_map)
{
	ck_assert_int_eq(nfs4_errno(0), 0);
	ck_assert_int_eq(nfs4_errno(2), -ENOENT);
	ck_assert_int_eq(nfs4_errno(13), -EACCES);
	ck_assert_int_eq(nfs4_errno(17), -EEXIST);
	ck_assert_int_eq(nfs4_errno(20), -ENOTDIR);
	ck_assert_int_eq(nfs4_errno(21), -EISDIR);
	ck_assert_int_eq(nfs4_errno(66), -ENOTEMPTY);
	ck_assert_int_eq(nfs4_errno(70), -ESTALE);
	ck_assert_int_eq(nfs4_errno(63), -ENAMETOOLONG);
	ck_assert_int_eq(nfs4_errno(10004), -EOPNOTSUPP);
	ck_assert_int_eq(nfs4_errno(10029), -ELOOP);
	ck_assert_int_eq(nfs4_errno(10045), -EDEADLK);
	ck_assert_int_eq(nfs4_errno(123456), -EIO); /* unknown */
}
END_TEST

START_TEST(uri_parse)
{
	char host[64], path[64];
	uint16_t port;
	ck_assert_int_eq(nfs_parse_uri("nfs://10.0.1.5", host, sizeof host, &port, path, sizeof path), 0);
	ck_assert_str_eq(host, "10.0.1.5");
	ck_assert_uint_eq(port, 2049);
	ck_assert_str_eq(path, "/");
	ck_assert_int_eq(nfs_parse_uri("nfs://127.0.0.2:2050/export/", host, sizeof host, &port, path, sizeof path), 0);
	ck_assert_str_eq(host, "127.0.0.2");
	ck_assert_uint_eq(port, 2050);
	ck_assert_str_eq(path, "/export");
	ck_assert_int_eq(nfs_parse_uri("fs-1.efs.example", host, sizeof host, &port, path, sizeof path), 0);
	ck_assert_str_eq(host, "fs-1.efs.example");
	ck_assert_int_eq(nfs_parse_uri("nfs://[fd00::1]:2049/x", host, sizeof host, &port, path, sizeof path), 0);
	ck_assert_str_eq(host, "fd00::1");
	ck_assert_str_eq(path, "/x");
	ck_assert_int_eq(nfs_parse_uri("dir:///x", host, sizeof host, &port, path, sizeof path), -EINVAL);
	ck_assert_int_eq(nfs_parse_uri("nfs://", host, sizeof host, &port, path, sizeof path), -EINVAL);
	ck_assert_int_eq(nfs_parse_uri("nfs://h:0/", host, sizeof host, &port, path, sizeof path), -EINVAL);
	ck_assert_int_eq(nfs_parse_uri("nfs://h:70000", host, sizeof host, &port, path, sizeof path), -EINVAL);
	ck_assert_int_eq(nfs_parse_uri("nfs://h:2049x", host, sizeof host, &port, path, sizeof path), -EINVAL);
	ck_assert_int_eq(nfs_parse_uri("nfs://[::1", host, sizeof host, &port, path, sizeof path), -EINVAL);
}
END_TEST

static Suite *xdr_suite(void)
{
	Suite *s = suite_create("xdr");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, enc_integers);
	tcase_add_test(tc, enc_opaque_padding);
	tcase_add_test(tc, enc_patch_slot);
	tcase_add_test(tc, enc_grows);
	tcase_add_test(tc, dec_values);
	tcase_add_test(tc, dec_truncated);
	tcase_add_test(tc, dec_length_past_buffer);
	tcase_add_test(tc, dec_bad_strings_and_bools);
	tcase_add_test(tc, rpc_call_header_auth_sys);
	tcase_add_test(tc, rpc_call_header_caps_groups);
	tcase_add_test(tc, rpc_reply_parse);
	tcase_add_test(tc, fattr_decode);
	tcase_add_test(tc, fattr_decode_times_and_rawdev);
	tcase_add_test(tc, fattr_decode_malformed);
	tcase_add_test(tc, readdir_decode);
	tcase_add_test(tc, sattr_encode);
	tcase_add_test(tc, errno_map);
	tcase_add_test(tc, uri_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(xdr_suite());
}
