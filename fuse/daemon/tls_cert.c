/* tls_cert.c - the EFS client certificate: key, IAM signature, extensions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tls_cert.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "aws_creds.h"
#include "aws_sigv4.h"
#include "base/log.h"
#include "base/paths.h"

#define SHA256_EMPTY	 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define KEY_DIR_MODE	 0700
#define KEY_FILE_MODE	 0400
#define KEY_CREATE_TRIES 3 /* a key file that vanished between link and open */

/* ---- the key ---- */

int tls_cert_key_default_path(char *buf, size_t len)
{
	int n;
	if (geteuid() == 0) {
		n = snprintf(buf, len, "%s", TLS_CERT_KEY_ROOT);
	} else {
		const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
		if (state && state[0] == '/')
			n = snprintf(buf, len, "%s/%s", state, TLS_CERT_KEY_USER);
		else if (home && home[0] == '/')
			n = snprintf(buf, len, "%s/.local/state/%s", home, TLS_CERT_KEY_USER);
		else
			return -ENOENT;
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static EVP_PKEY *generate_key(void)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
	if (ctx && EVP_PKEY_keygen_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, TLS_CERT_KEY_BITS) == 1)
		EVP_PKEY_keygen(ctx, &k);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* Write a new key to a private temporary file, then link(2) it to path:
 * link fails when another process got there first, and then both use its
 * key (a rename would replace it under the other). */
static int create_key(const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX], why[256];
	unsigned r = 0;
	RAND_bytes((unsigned char *)&r, sizeof r);
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d.%08x", path, (int)getpid(), r) >=
	    (int)sizeof tmp) {
		snprintf(err, errlen, "client key %s: path too long (give -o keyfile=PATH)", path);
		return -ENAMETOOLONG;
	}
	int e = paths_mkdir_parent(path, KEY_DIR_MODE);
	if (e) {
		snprintf(err, errlen,
			 "client key %s: cannot create its directory: %s (give -o keyfile=PATH "
			 "in a writable directory)",
			 path, strerror(-e));
		return e;
	}
	EVP_PKEY *k = generate_key();
	if (!k) {
		tls_ssl_reason(why, sizeof why);
		snprintf(err, errlen, "client key: cannot generate an RSA-%d key: %s",
			 TLS_CERT_KEY_BITS, why);
		return -ENOMEM;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, KEY_FILE_MODE);
	if (fd < 0) {
		e = -errno;
		EVP_PKEY_free(k);
		snprintf(err, errlen,
			 "client key %s: cannot create: %s (give -o keyfile=PATH in a writable "
			 "directory)",
			 path, strerror(-e));
		return e;
	}
	FILE *f = fdopen(fd, "w");
	int ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1 &&
		 fflush(f) == 0 && fsync(fd) == 0;
	e = ok ? 0 : errno ? -errno : -EIO;
	if (f)
		fclose(f);
	else
		close(fd);
	EVP_PKEY_free(k);
	if (ok && link(tmp, path) < 0 && errno != EEXIST)
		e = -errno;
	unlink(tmp);
	if (e)
		snprintf(err, errlen, "client key %s: cannot write: %s", path, strerror(-e));
	return e;
}

int tls_cert_key_load(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	char why[256];
	for (int i = 0; i < KEY_CREATE_TRIES; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT) {
			int e = create_key(path, err, errlen);
			if (e)
				return e;
			continue;
		}
		if (fd < 0) {
			int e = -errno;
			snprintf(err, errlen, "client key %s: %s", path, strerror(-e));
			return e;
		}
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
		    st.st_uid != geteuid()) {
			close(fd);
			snprintf(err, errlen,
				 "client key %s: must be a regular file of this user that no one "
				 "else can read (chmod 0400 %s, or remove it to make a new one)",
				 path, path);
			return -EPERM;
		}
		FILE *f = fdopen(fd, "r");
		EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		else
			close(fd);
		if (!k || EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
			tls_ssl_reason(why, sizeof why);
			EVP_PKEY_free(k);
			snprintf(err, errlen,
				 "client key %s: not a PEM RSA private key (%s; remove it to make "
				 "a new one)",
				 path, why);
			return -EINVAL;
		}
		*out = k;
		return 0;
	}
	snprintf(err, errlen, "client key %s: it keeps disappearing", path);
	return -ENOENT;
}

/* SHA-1 of the DER RSAPublicKey: the subjectKeyIdentifier, and in hex the
 * IAM signature's PublicKeyHash. */
static int pubkey_sha1(EVP_PKEY *key, unsigned char md[SHA_DIGEST_LENGTH])
{
	unsigned char *der = NULL;
	int n = i2d_PublicKey(key, &der);
	if (n <= 0)
		return -EINVAL;
	SHA1(der, (size_t)n, md);
	OPENSSL_free(der);
	return 0;
}

int tls_cert_pubkey_hash(EVP_PKEY *key, char hex[41])
{
	unsigned char md[SHA_DIGEST_LENGTH];
	if (pubkey_sha1(key, md))
		return -EINVAL;
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ---- the IAM signature ---- */

void tls_cert_sig_free(struct tls_cert_sig *s)
{
	free(s->creq);
	free(s->sts);
	memset(s, 0, sizeof *s);
}

int tls_cert_iam_sign(const char *fs_id, const char *pubkey_hash, const struct tls_cert_iam *iam,
		      time_t now, struct tls_cert_sig *out)
{
	char date[AWS_SIGV4_DATE_LEN + 1], cred[512];
	struct tm tm;
	char *q = NULL;
	int e;

	memset(out, 0, sizeof *out);
	if (!fs_id || !pubkey_hash || !iam->access_key || !iam->secret_key || !iam->region ||
	    !gmtime_r(&now, &tm))
		return -EINVAL;
	strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
	if ((size_t)snprintf(cred, sizeof cred, "%s/%.8s/%s/%s/aws4_request", iam->access_key, date,
			     iam->region, TLS_CERT_IAM_SERVICE) >= sizeof cred)
		return -EINVAL;
	/* The keys in sorted order, as SigV4's canonical query wants. */
	char expires[16];
	snprintf(expires, sizeof expires, "%d", TLS_CERT_IAM_EXPIRES_S);
	e = aws_query_add(&q, "Action", "Connect");
	if (!e)
		e = aws_query_add(&q, "PublicKeyHash", pubkey_hash);
	if (!e)
		e = aws_query_add(&q, "X-Amz-Algorithm", "AWS4-HMAC-SHA256");
	if (!e)
		e = aws_query_add(&q, "X-Amz-Credential", cred);
	if (!e)
		e = aws_query_add(&q, "X-Amz-Date", date);
	if (!e)
		e = aws_query_add(&q, "X-Amz-Expires", expires);
	if (!e && iam->token)
		e = aws_query_add(&q, "X-Amz-Security-Token", iam->token);
	if (!e)
		e = aws_query_add(&q, "X-Amz-SignedHeaders", "host");
	/* EFS's form: the one header line is not followed by a blank line. */
	if (!e &&
	    asprintf(&out->creq, "GET\n/\n%s\nhost:%s\nhost\n%s", q, fs_id, SHA256_EMPTY) < 0) {
		out->creq = NULL;
		e = -ENOMEM;
	}
	free(q);
	if (!e)
		e = aws_sigv4_sign_creq(out->creq, date, iam->region, TLS_CERT_IAM_SERVICE,
					iam->secret_key, &out->sts, out->signature);
	if (e)
		tls_cert_sig_free(out);
	return e;
}

/* ---- DER for the EFS extensions ---- */

struct der {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static void der_raw(struct der *d, const void *s, size_t n)
{
	if (d->oom)
		return;
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		while (cap < d->len + n)
			cap *= 2;
		unsigned char *p = realloc(d->p, cap);
		if (!p) {
			d->oom = 1;
			return;
		}
		d->p = p;
		d->cap = cap;
	}
	memcpy(d->p + d->len, s, n);
	d->len += n;
}

/* One TLV: tag, definite length (short or long form), contents. */
static void der_tlv(struct der *d, unsigned char tag, const void *s, size_t n)
{
	unsigned char h[6];
	size_t hl = 0;
	h[hl++] = tag;
	if (n < 0x80) {
		h[hl++] = (unsigned char)n;
	} else {
		int bytes = n > 0xffffff ? 4 : n > 0xffff ? 3 : n > 0xff ? 2 : 1;
		h[hl++] = (unsigned char)(0x80 | bytes);
		for (int i = bytes - 1; i >= 0; i--)
			h[hl++] = (unsigned char)(n >> (8 * i));
	}
	der_raw(d, h, hl);
	der_raw(d, s, n);
}

#define DER_UTF8     0x0c
#define DER_OCTETS   0x04
#define DER_UTCTIME  0x17
#define DER_SEQUENCE 0x30
#define DER_CONTEXT0 0xa0 /* [0], constructed: EXPLICIT */

static void der_str(struct der *d, unsigned char tag, const char *s)
{
	der_tlv(d, tag, s, strlen(s));
}

/* Wrap what d holds into one TLV of tag. */
static void der_wrap(struct der *d, unsigned char tag)
{
	struct der w = {0};
	der_tlv(&w, tag, d->p, d->len);
	w.oom |= d->oom;
	free(d->p);
	*d = w;
}

static int add_ext(X509 *x, const char *oid, const struct der *d)
{
	if (d->oom)
		return -ENOMEM;
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int ok = obj && os && ASN1_OCTET_STRING_set(os, d->p, (int)d->len) == 1 &&
		 (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) &&
		 X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return ok ? 0 : -ENOMEM;
}

static int add_string_ext(X509 *x, const char *oid, const char *value)
{
	struct der d = {0};
	der_str(&d, DER_UTF8, value);
	int e = add_ext(x, oid, &d);
	free(d.p);
	return e;
}

static int add_iam_ext(X509 *x, const struct tls_cert_params *p, const char *pubkey_hash, char *err,
		       size_t errlen)
{
	struct tls_cert_sig sig;
	int e = tls_cert_iam_sign(p->fs_id, pubkey_hash, p->iam, p->now, &sig);
	if (e) {
		snprintf(err, errlen, "IAM signature: cannot compute it: %s", strerror(-e));
		return e;
	}
	char utc[16];
	struct tm tm;
	gmtime_r(&p->now, &tm);
	strftime(utc, sizeof utc, "%y%m%d%H%M%SZ", &tm);
	struct der d = {0}, tok = {0};
	der_str(&d, DER_UTF8, p->iam->access_key);
	der_str(&d, DER_OCTETS, sig.signature);
	der_str(&d, DER_UTCTIME, utc);
	if (p->iam->token) {
		der_str(&tok, DER_UTF8, p->iam->token);
		der_wrap(&tok, DER_CONTEXT0);
		der_raw(&d, tok.p, tok.len);
		d.oom |= tok.oom;
	}
	der_wrap(&d, DER_SEQUENCE);
	e = add_ext(x, TLS_CERT_OID_IAM, &d);
	free(d.p);
	free(tok.p);
	tls_cert_sig_free(&sig);
	return e;
}

static int add_client_info_ext(X509 *x)
{
	struct der d = {0};
	der_str(&d, DER_UTF8, TLS_CERT_CLIENT_SOURCE);
	der_str(&d, DER_UTF8, PACKAGE_VERSION);
	der_wrap(&d, DER_SEQUENCE);
	int e = add_ext(x, TLS_CERT_OID_CLIENT_INFO, &d);
	free(d.p);
	return e;
}

static int add_ski(X509 *x, EVP_PKEY *key)
{
	unsigned char md[SHA_DIGEST_LENGTH];
	if (pubkey_sha1(key, md))
		return -EINVAL;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	int ok = os && ASN1_OCTET_STRING_set(os, md, sizeof md) == 1 &&
		 X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, 0) == 1;
	ASN1_OCTET_STRING_free(os);
	return ok ? 0 : -ENOMEM;
}

int tls_cert_build(EVP_PKEY *key, const struct tls_cert_params *p, X509 **out, char *err,
		   size_t errlen)
{
	char hash[41], cn[TLS_CERT_CN_MAX + 1], why[256];
	uint64_t serial = 0;
	int e = -ENOMEM;

	if (!p->fs_id || !p->hostname || tls_cert_pubkey_hash(key, hash)) {
		snprintf(err, errlen, "client certificate: no file system id or no key");
		return -EINVAL;
	}
	snprintf(cn, sizeof cn, "%s", p->hostname);
	time_t now = p->now;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIGNUM *bn = BN_new();
	if (!x || !name || !bn)
		goto fail;
	RAND_bytes((unsigned char *)&serial, sizeof serial);
	serial &= INT64_MAX; /* positive */
	if (!BN_set_word(bn, serial ? serial : 1) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	if (X509_set_version(x, 2) != 1 || /* v3 */
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -TLS_CERT_BACKDATE_S, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 0, TLS_CERT_VALID_S, &now) ||
	    X509_set_pubkey(x, key) != 1)
		goto fail;
	if ((e = add_ski(x, key)))
		goto fail;
	if (p->access_point && (e = add_string_ext(x, TLS_CERT_OID_ACCESS_POINT, p->access_point)))
		goto fail;
	if (p->iam && (e = add_iam_ext(x, p, hash, err, errlen)))
		goto out;
	if ((e = add_string_ext(x, TLS_CERT_OID_FS_ID, p->fs_id)) || (e = add_client_info_ext(x)))
		goto fail;
	e = -ENOMEM;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	BN_free(bn);
	*out = x;
	return 0;
fail:
	tls_ssl_reason(why, sizeof why);
	snprintf(err, errlen, "client certificate: cannot build it: %s", why);
out:
	X509_free(x);
	X509_NAME_free(name);
	BN_free(bn);
	return e;
}

/* ---- the provider ---- */

struct tls_cert_provider {
	pthread_mutex_t lock; /* everything below */
	struct tls_client_cert hook;
	EVP_PKEY *key;
	X509 *cert;
	time_t built; /* cert's signing time */
	unsigned gen; /* counts certificates made */
	char *fs_id, *access_point, *region;
	int iam;
	unsigned renew_s;
	struct aws_creds_provider *creds;
	char creds_id[65]; /* SHA-256 of the credentials cert was signed with */
	int warned;	   /* a failed renewal was logged */
};

static void creds_fingerprint(const struct aws_creds *c, char hex[65])
{
	char *s = NULL;
	if (asprintf(&s, "%s\n%s\n%s", c->access_key, c->secret_key, c->token ? c->token : "") <
	    0) {
		hex[0] = '\0';
		return;
	}
	aws_sha256_hex(s, strlen(s), hex);
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* A new certificate in p (lock held). With iam, creds are the ones to sign
 * with. */
static int renew(struct tls_cert_provider *p, const struct aws_creds *creds, time_t now, char *err,
		 size_t errlen)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) < 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	struct tls_cert_iam iam = {0};
	if (creds) {
		iam.access_key = creds->access_key;
		iam.secret_key = creds->secret_key;
		iam.token = creds->token;
		iam.region = p->region;
	}
	struct tls_cert_params params = {.fs_id = p->fs_id,
					 .access_point = p->access_point,
					 .hostname = host,
					 .iam = creds ? &iam : NULL,
					 .now = now};
	X509 *x = NULL;
	int e = tls_cert_build(p->key, &params, &x, err, errlen);
	if (e)
		return e;
	X509_free(p->cert);
	p->cert = x;
	p->built = now;
	p->gen++;
	if (creds)
		creds_fingerprint(creds, p->creds_id);
	return 0;
}

/* Whether the current certificate may still go out. */
static int usable(const struct tls_cert_provider *p, time_t now)
{
	return p->cert && p->built + TLS_CERT_VALID_S - now > TLS_CERT_MIN_LEFT_S;
}

int tls_cert_provider_get(struct tls_cert_provider *p, X509 **cert, EVP_PKEY **key,
			  unsigned *generation, char *err, size_t errlen)
{
	struct aws_creds c = {0};
	struct aws_error ae = {0};
	int e = 0, have_creds = 0;

	pthread_mutex_lock(&p->lock);
	time_t now = time(NULL);
	int due = !p->cert || now - p->built >= (time_t)p->renew_s || now < p->built;
	if (p->iam) {
		/* Cached by libaws and fetched again before they expire: a
		 * change means new temporary credentials, so a new signature. */
		if (aws_creds_get(p->creds, &c, &ae) == 0) {
			char id[65];
			creds_fingerprint(&c, id);
			have_creds = 1;
			due |= strcmp(id, p->creds_id) != 0;
		} else {
			snprintf(err, errlen, "-o iam: %s", ae.message);
			e = -EACCES;
		}
	}
	if (due && (!p->iam || have_creds))
		e = renew(p, have_creds ? &c : NULL, now, err, errlen);
	aws_creds_clear(&c);
	if (e && usable(p, now)) {
		/* Better the certificate we have than no connection; its
		 * validity window leaves hours to fix the cause. */
		if (!p->warned)
			log_warn("msg=client-cert-renewal-failed reason=\"%s\" (the current "
				 "certificate is used until it expires)",
				 err);
		p->warned = 1;
		e = 0;
	} else if (!e) {
		p->warned = 0;
	}
	if (!e) {
		X509_up_ref(p->cert);
		EVP_PKEY_up_ref(p->key);
		*cert = p->cert;
		*key = p->key;
		*generation = p->gen;
	}
	pthread_mutex_unlock(&p->lock);
	return e;
}

static int hook_get(void *arg, struct x509_st **cert, struct evp_pkey_st **key,
		    unsigned *generation, char *err, size_t errlen)
{
	return tls_cert_provider_get(arg, cert, key, generation, err, errlen);
}

const struct tls_client_cert *tls_cert_provider_hook(struct tls_cert_provider *p)
{
	return &p->hook;
}

void tls_cert_provider_free(struct tls_cert_provider *p)
{
	if (!p)
		return;
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
	aws_creds_provider_free(p->creds);
	free(p->fs_id);
	free(p->access_point);
	free(p->region);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int tls_cert_provider_new(const struct tls_cert_conf *conf, struct tls_cert_provider **out,
			  char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct tls_cert_provider *p = calloc(1, sizeof *p);
	int e;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->hook.get = hook_get;
	p->hook.arg = p;
	p->iam = conf->iam;
	p->renew_s = conf->renew_s ? conf->renew_s : TLS_CERT_RENEW_S;
	p->fs_id = conf->fs_id ? strdup(conf->fs_id) : NULL;
	p->access_point = conf->access_point ? strdup(conf->access_point) : NULL;
	p->region = conf->region ? strdup(conf->region) : NULL;
	if (!p->fs_id || (conf->access_point && !p->access_point) || (conf->region && !p->region)) {
		e = conf->fs_id ? -ENOMEM : -EINVAL;
		snprintf(err, errlen, "client certificate: %s",
			 conf->fs_id ? "out of memory" : "no file system id");
		goto fail;
	}
	if (p->iam && !p->region) {
		snprintf(err, errlen, "-o iam: no region to sign for (give -o region=)");
		e = -EINVAL;
		goto fail;
	}
	const char *kf = conf->keyfile;
	if (!kf) {
		if ((e = tls_cert_key_default_path(path, sizeof path))) {
			snprintf(err, errlen,
				 "client key: no place for it (no HOME; give -o keyfile=PATH)");
			goto fail;
		}
		kf = path;
	}
	if ((e = tls_cert_key_load(kf, &p->key, err, errlen)))
		goto fail;
	if (p->iam) {
		p->creds = aws_creds_provider_new();
		if (!p->creds || (conf->awsprofile &&
				  aws_creds_provider_set_profile(p->creds, conf->awsprofile))) {
			snprintf(err, errlen, "out of memory");
			e = -ENOMEM;
			goto fail;
		}
	}
	X509 *x;
	EVP_PKEY *k;
	unsigned g;
	if ((e = tls_cert_provider_get(p, &x, &k, &g, err, errlen)))
		goto fail;
	X509_free(x);
	EVP_PKEY_free(k);
	*out = p;
	return 0;
fail:
	tls_cert_provider_free(p);
	return e;
}
