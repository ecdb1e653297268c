/* AWS Signature Version 4: canonical request, string to sign, signing key. */
#include "aws_sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SHA256_LEN 32
#define ALGORITHM  "AWS4-HMAC-SHA256"

/* A growable string; on allocation failure it remembers and stays empty. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_chr(struct sbuf *b, char c)
{
	sb_add(b, &c, 1);
}

/* Hands the string over (or NULL after an allocation failure). */
static char *sb_take(struct sbuf *b)
{
	if (b->oom || !b->p) {
		free(b->p);
		b->p = NULL;
		return b->oom ? NULL : strdup("");
	}
	char *p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void aws_sha256_hex(const void *buf, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(buf ? buf : "", len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, SHA256_LEN, hex);
}

/* out may alias key. */
static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[SHA256_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), md, &mdlen);
	memcpy(out, md, SHA256_LEN);
	OPENSSL_cleanse(md, sizeof md);
}

void aws_sigv4_now(char date[AWS_SIGV4_DATE_LEN + 1])
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, AWS_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static void sb_encode(struct sbuf *b, const char *s, size_t len, int keep_slash)
{
	char esc[4];
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_chr(b, (char)c);
		} else {
			snprintf(esc, sizeof esc, "%%%02X", c);
			sb_add(b, esc, 3);
		}
	}
}

char *aws_uri_encode(const char *s, size_t len, int keep_slash)
{
	struct sbuf b = {0};
	sb_encode(&b, s, len, keep_slash);
	return sb_take(&b);
}

int aws_query_add(char **q, const char *key, const char *value)
{
	char *enc = aws_uri_encode(value, strlen(value), 0), *n = NULL;
	if (!enc)
		return -ENOMEM;
	int empty = !*q || !**q;
	int r = asprintf(&n, "%s%s%s=%s", empty ? "" : *q, empty ? "" : "&", key, enc);
	OPENSSL_cleanse(enc, strlen(enc));
	free(enc);
	if (r < 0)
		return -ENOMEM;
	if (*q) {
		OPENSSL_cleanse(*q, strlen(*q));
		free(*q);
	}
	*q = n;
	return 0;
}

/* RFC 3986 dot-segment removal and empty-segment collapse, then one more
 * encoding of every byte (a '%' already there becomes %25, as AWS expects
 * for every service but S3). */
static char *canonical_uri(const char *path)
{
	size_t len = strlen(path);
	const char **seg = calloc(len / 2 + 2, sizeof *seg);
	size_t *seglen = calloc(len / 2 + 2, sizeof *seglen);
	size_t n = 0;
	struct sbuf b = {0};
	if (!seg || !seglen)
		goto out;
	for (const char *p = path; *p;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0 || (l == 1 && p[0] == '.')) {
			/* empty or "." */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (n)
				n--;
		} else {
			seg[n] = p;
			seglen[n++] = l;
		}
		p += l;
		if (*p == '/')
			p++;
	}
	sb_chr(&b, '/');
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_chr(&b, '/');
		sb_encode(&b, seg[i], seglen[i], 0);
	}
	if (n && len && path[len - 1] == '/')
		sb_chr(&b, '/');
out:
	free(seg);
	free(seglen);
	if (!seg || !seglen)
		b.oom = 1;
	return sb_take(&b);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX escapes (anything else as is), then encodes per SigV4. */
static char *reencode(const char *s, size_t len)
{
	char *raw = malloc(len + 1);
	size_t n = 0;
	if (!raw)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)s[i + 2])) >= 0) {
			raw[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			raw[n++] = s[i];
		}
	}
	char *enc = aws_uri_encode(raw, n, 0);
	free(raw);
	return enc;
}

struct qparam {
	char *key, *val;
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->val, y->val);
}

static char *canonical_query(const char *q)
{
	struct sbuf b = {0};
	size_t cap = 1, n = 0;
	if (!q)
		q = "";
	for (const char *p = q; *p; p++)
		cap += *p == '&';
	struct qparam *v = calloc(cap, sizeof *v);
	if (!v)
		return NULL;
	for (const char *p = q; *p;) {
		const char *e = strchr(p, '&');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l) {
			const char *eq = memchr(p, '=', l);
			size_t kl = eq ? (size_t)(eq - p) : l;
			v[n].key = reencode(p, kl);
			v[n].val = eq ? reencode(eq + 1, l - kl - 1) : strdup("");
			if (!v[n].key || !v[n].val)
				b.oom = 1;
			n++;
		}
		p += l;
		if (*p == '&')
			p++;
	}
	if (!b.oom) {
		qsort(v, n, sizeof *v, qparam_cmp);
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_chr(&b, '&');
			sb_str(&b, v[i].key);
			sb_chr(&b, '=');
			sb_str(&b, v[i].val);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].val);
	}
	free(v);
	return sb_take(&b);
}

struct chdr {
	char *name;
	const char *value;
	size_t order;
};

static int chdr_cmp(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Value trimmed, inner runs of blanks collapsed to one space. */
static void sb_trimmed(struct sbuf *b, const char *v)
{
	int pending = 0, any = 0;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			pending = any;
			continue;
		}
		if (pending)
			sb_chr(b, ' ');
		pending = 0;
		any = 1;
		sb_chr(b, *v);
	}
}

#define TOKEN_HEADER "X-Amz-Security-Token"

static int has_header(const struct aws_sigv4_in *in, const char *name)
{
	for (size_t i = 0; i < in->nhdrs; i++)
		if (in->hdrs[i].name && strcasecmp(in->hdrs[i].name, name) == 0)
			return 1;
	return 0;
}

/* Appends the canonical headers block to creq and builds the signed list. */
static int canonical_headers(const struct aws_sigv4_in *in, struct sbuf *creq, char **signed_out)
{
	size_t n = in->nhdrs;
	int add_token = in->session_token && !has_header(in, TOKEN_HEADER);
	struct chdr *h = calloc(n + 1, sizeof *h);
	struct sbuf sh = {0};
	int rc = 0;
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < n + (size_t)add_token; i++) {
		const char *name = i < n ? in->hdrs[i].name : TOKEN_HEADER;
		const char *value = i < n ? in->hdrs[i].value : in->session_token;
		if (!name || !*name || !value) {
			rc = -EINVAL;
			goto out;
		}
		h[i].name = strdup(name);
		if (!h[i].name) {
			rc = -ENOMEM;
			goto out;
		}
		for (char *c = h[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		h[i].value = value;
		h[i].order = i;
	}
	n += (size_t)add_token;
	qsort(h, n, sizeof *h, chdr_cmp);
	for (size_t i = 0; i < n; i++) {
		int same = i && strcmp(h[i].name, h[i - 1].name) == 0;
		if (same) {
			sb_chr(creq, ',');
		} else {
			if (i) {
				sb_chr(creq, '\n');
				sb_chr(&sh, ';');
			}
			sb_str(creq, h[i].name);
			sb_chr(creq, ':');
			sb_str(&sh, h[i].name);
		}
		sb_trimmed(creq, h[i].value);
	}
	if (n)
		sb_chr(creq, '\n');
	*signed_out = sb_take(&sh);
	if (!*signed_out)
		rc = -ENOMEM;
out:
	for (size_t i = 0; i <= in->nhdrs; i++)
		free(h[i].name);
	free(h);
	return rc;
}

static int valid_date(const char *d)
{
	if (!d || strlen(d) != AWS_SIGV4_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

static char *build_creq(const struct aws_sigv4_in *in, char **signed_headers, int *rc)
{
	struct sbuf b = {0};
	char hash[65];
	char *uri = canonical_uri(in->path && *in->path ? in->path : "/");
	char *query = canonical_query(in->query);
	*signed_headers = NULL;
	if (!uri || !query) {
		*rc = -ENOMEM;
		goto out;
	}
	sb_str(&b, in->method);
	sb_chr(&b, '\n');
	sb_str(&b, uri);
	sb_chr(&b, '\n');
	sb_str(&b, query);
	sb_chr(&b, '\n');
	*rc = canonical_headers(in, &b, signed_headers);
	if (*rc)
		goto out;
	sb_chr(&b, '\n');
	sb_str(&b, *signed_headers);
	sb_chr(&b, '\n');
	aws_sha256_hex(in->body, in->body_len, hash);
	sb_str(&b, hash);
out:
	free(uri);
	free(query);
	if (*rc) {
		free(b.p);
		return NULL;
	}
	char *s = sb_take(&b);
	if (!s)
		*rc = -ENOMEM;
	return s;
}

int aws_sigv4_sign_creq(const char *creq, const char *amz_date, const char *region,
			const char *service, const char *secret_key, char **sts,
			char signature[65])
{
	struct sbuf b = {0};
	char scope[256], hash[65];
	unsigned char k[SHA256_LEN], sig[SHA256_LEN];

	*sts = NULL;
	if (!creq || !valid_date(amz_date) || !region || !service || !secret_key)
		return -EINVAL;
	if ((size_t)snprintf(scope, sizeof scope, "%.8s/%s/%s/aws4_request", amz_date, region,
			     service) >= sizeof scope)
		return -EINVAL;
	aws_sha256_hex(creq, strlen(creq), hash);
	sb_str(&b, ALGORITHM "\n");
	sb_str(&b, amz_date);
	sb_chr(&b, '\n');
	sb_str(&b, scope);
	sb_chr(&b, '\n');
	sb_str(&b, hash);
	char *s = sb_take(&b);
	if (!s)
		return -ENOMEM;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
	 */
	char date8[9];
	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	sb_str(&b, "AWS4");
	sb_str(&b, secret_key);
	char *kinit = sb_take(&b);
	if (!kinit) {
		free(s);
		return -ENOMEM;
	}
	hmac(kinit, strlen(kinit), date8, k);
	OPENSSL_cleanse(kinit, strlen(kinit));
	free(kinit);
	hmac(k, sizeof k, region, k);
	hmac(k, sizeof k, service, k);
	hmac(k, sizeof k, "aws4_request", k);
	hmac(k, sizeof k, s, sig);
	OPENSSL_cleanse(k, sizeof k);
	hex_encode(sig, sizeof sig, signature);
	*sts = s;
	return 0;
}

int aws_sigv4_sign(const struct aws_sigv4_in *in, struct aws_sigv4_out *out)
{
	struct sbuf b = {0};
	char scope[256];
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (!in->method || !valid_date(in->amz_date) || !in->region || !in->service ||
	    !in->access_key || !in->secret_key)
		return -EINVAL;
	if ((size_t)snprintf(scope, sizeof scope, "%.8s/%s/%s/aws4_request", in->amz_date,
			     in->region, in->service) >= sizeof scope)
		return -EINVAL;

	out->creq = build_creq(in, &out->signed_headers, &rc);
	if (rc)
		goto fail;
	rc = aws_sigv4_sign_creq(out->creq, in->amz_date, in->region, in->service,
				 in->secret_key, &out->sts, out->signature);
	if (rc)
		goto fail;

	sb_str(&b, ALGORITHM " Credential=");
	sb_str(&b, in->access_key);
	sb_chr(&b, '/');
	sb_str(&b, scope);
	sb_str(&b, ", SignedHeaders=");
	sb_str(&b, out->signed_headers);
	sb_str(&b, ", Signature=");
	sb_str(&b, out->signature);
	out->authz = sb_take(&b);
	if (!out->authz) {
		rc = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	aws_sigv4_out_free(out);
	return rc;
}

void aws_sigv4_out_free(struct aws_sigv4_out *out)
{
	free(out->creq);
	free(out->sts);
	free(out->signed_headers);
	free(out->authz);
	memset(out, 0, sizeof *out);
}
