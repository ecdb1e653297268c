/*
 * xdr.h - XDR encoding and decoding (RFC 4506) for the NFS client.
 *
 * Encoder: a growable buffer; every put appends big-endian data padded to
 * four bytes. Decoder: a cursor over a received buffer. Both keep a sticky
 * error: once a call fails (no memory, data past the end, a length over its
 * limit) every later call does nothing, and the caller checks err once at
 * the end. A decoder never reads past len, whatever the input says.
 */
#ifndef EFSMT_NFS_XDR_H
#define EFSMT_NFS_XDR_H

#include <stddef.h>
#include <stdint.h>

struct xdr_enc {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int err; /* 0 or -ENOMEM */
};

struct xdr_dec {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	int err; /* 0 or -EBADMSG */
};

/* Encoder. init never fails (the first put allocates). */
void xdr_enc_init(struct xdr_enc *x);
void xdr_enc_reset(struct xdr_enc *x); /* keep the memory, drop the data */
void xdr_enc_free(struct xdr_enc *x);
void xdr_put_u32(struct xdr_enc *x, uint32_t v);
void xdr_put_u64(struct xdr_enc *x, uint64_t v);
void xdr_put_bool(struct xdr_enc *x, int v);
void xdr_put_fixed(struct xdr_enc *x, const void *p, size_t n);  /* opaque[n] */
void xdr_put_opaque(struct xdr_enc *x, const void *p, size_t n); /* opaque<> */
void xdr_put_string(struct xdr_enc *x, const char *s);
void xdr_put_string_n(struct xdr_enc *x, const char *s, size_t n);
/* Room for one u32 to fill in later (a count not known yet); its offset. */
size_t xdr_put_u32_slot(struct xdr_enc *x);
void xdr_patch_u32(struct xdr_enc *x, size_t off, uint32_t v);

/* Decoder. */
void xdr_dec_init(struct xdr_dec *d, const void *buf, size_t len);
uint32_t xdr_get_u32(struct xdr_dec *d);
uint64_t xdr_get_u64(struct xdr_dec *d);
int xdr_get_bool(struct xdr_dec *d); /* values other than 0 and 1 are an error */
/* opaque[n]: a pointer into the buffer, or NULL (and err set). */
const uint8_t *xdr_get_fixed(struct xdr_dec *d, size_t n);
/* opaque<max>: a pointer into the buffer and its length in *n, or NULL. */
const uint8_t *xdr_get_opaque(struct xdr_dec *d, size_t *n, size_t max);
/* string<max> copied NUL-terminated into buf (size > max); -EBADMSG if the
 * string holds a NUL or is longer than max or size - 1. */
int xdr_get_string(struct xdr_dec *d, char *buf, size_t size, size_t max);
void xdr_skip(struct xdr_dec *d, size_t n); /* n bytes plus padding */
static inline size_t xdr_remaining(const struct xdr_dec *d)
{
	return d->err ? 0 : d->len - d->pos;
}

/* Round n up to a multiple of four. */
static inline size_t xdr_pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

#endif
