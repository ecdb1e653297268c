/* xdr.c - XDR (RFC 4506): big-endian four-byte units, padded opaques. */
#include "xdr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XDR_ENC_MIN_CAP 512

void xdr_enc_init(struct xdr_enc *x)
{
	x->buf = NULL;
	x->len = 0;
	x->cap = 0;
	x->err = 0;
}

void xdr_enc_reset(struct xdr_enc *x)
{
	x->len = 0;
	x->err = 0;
}

void xdr_enc_free(struct xdr_enc *x)
{
	free(x->buf);
	xdr_enc_init(x);
}

/* Make room for n more bytes; NULL (err set) if that fails. */
static uint8_t *enc_room(struct xdr_enc *x, size_t n)
{
	if (x->err)
		return NULL;
	if (n > SIZE_MAX / 2 - x->len) {
		x->err = -ENOMEM;
		return NULL;
	}
	if (x->len + n > x->cap) {
		size_t cap = x->cap ? x->cap : XDR_ENC_MIN_CAP;
		while (cap < x->len + n)
			cap *= 2;
		uint8_t *nb = realloc(x->buf, cap);
		if (!nb) {
			x->err = -ENOMEM;
			return NULL;
		}
		x->buf = nb;
		x->cap = cap;
	}
	uint8_t *p = x->buf + x->len;
	x->len += n;
	return p;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void xdr_put_u32(struct xdr_enc *x, uint32_t v)
{
	uint8_t *p = enc_room(x, 4);
	if (p)
		be32(p, v);
}

void xdr_put_u64(struct xdr_enc *x, uint64_t v)
{
	uint8_t *p = enc_room(x, 8);
	if (p) {
		be32(p, (uint32_t)(v >> 32));
		be32(p + 4, (uint32_t)v);
	}
}

void xdr_put_bool(struct xdr_enc *x, int v)
{
	xdr_put_u32(x, v ? 1 : 0);
}

void xdr_put_fixed(struct xdr_enc *x, const void *src, size_t n)
{
	size_t padded = xdr_pad4(n);
	uint8_t *p = enc_room(x, padded);
	if (!p)
		return;
	if (n)
		memcpy(p, src, n);
	memset(p + n, 0, padded - n);
}

void xdr_put_opaque(struct xdr_enc *x, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		x->err = -ENOMEM;
		return;
	}
	xdr_put_u32(x, (uint32_t)n);
	xdr_put_fixed(x, p, n);
}

void xdr_put_string_n(struct xdr_enc *x, const char *s, size_t n)
{
	xdr_put_opaque(x, s, n);
}

void xdr_put_string(struct xdr_enc *x, const char *s)
{
	xdr_put_opaque(x, s, strlen(s));
}

size_t xdr_put_u32_slot(struct xdr_enc *x)
{
	size_t off = x->len;
	xdr_put_u32(x, 0);
	return off;
}

void xdr_patch_u32(struct xdr_enc *x, size_t off, uint32_t v)
{
	if (!x->err && off + 4 <= x->len)
		be32(x->buf + off, v);
}

void xdr_dec_init(struct xdr_dec *d, const void *buf, size_t len)
{
	d->buf = buf;
	d->len = buf ? len : 0;
	d->pos = 0;
	d->err = 0;
}

/* n bytes at the cursor, advancing past them; NULL (err set) if short. */
static const uint8_t *dec_take(struct xdr_dec *d, size_t n)
{
	if (d->err)
		return NULL;
	if (n > d->len - d->pos) {
		d->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = d->buf + d->pos;
	d->pos += n;
	return p;
}

uint32_t xdr_get_u32(struct xdr_dec *d)
{
	const uint8_t *p = dec_take(d, 4);
	return p ? rd32(p) : 0;
}

uint64_t xdr_get_u64(struct xdr_dec *d)
{
	const uint8_t *p = dec_take(d, 8);
	return p ? (uint64_t)rd32(p) << 32 | rd32(p + 4) : 0;
}

int xdr_get_bool(struct xdr_dec *d)
{
	uint32_t v = xdr_get_u32(d);
	if (v > 1) {
		d->err = -EBADMSG;
		return 0;
	}
	return (int)v;
}

const uint8_t *xdr_get_fixed(struct xdr_dec *d, size_t n)
{
	if (n > SIZE_MAX - 3) {
		d->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = dec_take(d, xdr_pad4(n));
	return p;
}

const uint8_t *xdr_get_opaque(struct xdr_dec *d, size_t *n, size_t max)
{
	uint32_t len = xdr_get_u32(d);
	*n = 0;
	if (d->err)
		return NULL;
	if (len > max) {
		d->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = xdr_get_fixed(d, len);
	if (p)
		*n = len;
	return p;
}

int xdr_get_string(struct xdr_dec *d, char *buf, size_t size, size_t max)
{
	size_t n;
	if (size == 0) {
		d->err = -EBADMSG;
		return d->err;
	}
	buf[0] = '\0';
	const uint8_t *p = xdr_get_opaque(d, &n, max < size - 1 ? max : size - 1);
	if (!p)
		return d->err;
	if (memchr(p, 0, n)) {
		d->err = -EBADMSG;
		return d->err;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

void xdr_skip(struct xdr_dec *d, size_t n)
{
	(void)xdr_get_fixed(d, n);
}
