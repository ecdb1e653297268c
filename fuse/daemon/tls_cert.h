/*
 * tls_cert.h - the client certificate EFS expects on every TLS connection.
 *
 * EFS asks every TLS client for a certificate, and reads the file system
 * id, the access point and the IAM authorization from its extensions.
 * The certificate is self-signed with a key kept on this host:
 *
 *   X.509 v3, sha256WithRSAEncryption, subject = issuer = CN=<hostname>,
 *   valid from 15 minutes ago for 3 hours, extensions (none critical):
 *     subjectKeyIdentifier     SHA-1 of the RSAPublicKey
 *     1.3.6.1.4.1.4843.7.1     UTF8String access point id (only with one)
 *     1.3.6.1.4.1.4843.7.2     SEQUENCE { UTF8String access key id,
 *                              OCTET STRING signature (64 hex digits),
 *                              UTCTime signing time,
 *                              [0] EXPLICIT UTF8String session token
 *                              (only with one) }       (only with -o iam)
 *     1.3.6.1.4.1.4843.7.3     UTF8String file system id
 *     1.3.6.1.4.1.4843.7.4     SEQUENCE { UTF8String "efsmt",
 *                              UTF8String PACKAGE_VERSION }
 *
 * The IAM signature is SigV4 (service elasticfilesystem) over
 *   GET\n/\n<query>\nhost:<fs id>\nhost\n<sha256 of "">
 * with <query> the sorted Action=Connect, PublicKeyHash, X-Amz-* pairs
 * (tls_cert_iam_sign). One instant is the signing time and the start of
 * the validity window.
 *
 * A provider (tls_cert_provider_new) holds the key and the current
 * certificate, and makes a new one when it is older than the renew
 * interval or when the temporary credentials it was signed with changed;
 * tls.c asks it for the current one at each handshake, so new connections
 * use a new certificate and open ones keep theirs.
 */
#ifndef EFSMT_NFS_TLS_CERT_H
#define EFSMT_NFS_TLS_CERT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "nfs/tls.h"

#define TLS_CERT_KEY_BITS      3072
#define TLS_CERT_BACKDATE_S    (15 * 60)     /* notBefore: clocks a little behind ours */
#define TLS_CERT_VALID_S       (3 * 60 * 60) /* notAfter - now */
#define TLS_CERT_RENEW_S       (60 * 60)     /* default age at which a new one is made */
#define TLS_CERT_MIN_LEFT_S    60 /* an old certificate this close to expiry is not used */
#define TLS_CERT_CN_MAX	       64 /* characters of the hostname in the subject */
#define TLS_CERT_IAM_SERVICE   "elasticfilesystem"
#define TLS_CERT_IAM_EXPIRES_S 86400   /* X-Amz-Expires of the connect signature */
#define TLS_CERT_CLIENT_SOURCE "efsmt" /* the client information's source */

#define TLS_CERT_OID_ACCESS_POINT "1.3.6.1.4.1.4843.7.1"
#define TLS_CERT_OID_IAM	  "1.3.6.1.4.1.4843.7.2"
#define TLS_CERT_OID_FS_ID	  "1.3.6.1.4.1.4843.7.3"
#define TLS_CERT_OID_CLIENT_INFO  "1.3.6.1.4.1.4843.7.4"

/* The key's place when -o keyfile= is not given: root's
 * /var/lib/efsmt/client-key.pem, else $XDG_STATE_HOME/efsmt/client-key.pem
 * ($HOME/.local/state when XDG_STATE_HOME is unset). */
#define TLS_CERT_KEY_ROOT "/var/lib/efsmt/client-key.pem"
#define TLS_CERT_KEY_USER "efsmt/client-key.pem"

/* 0, or -ENAMETOOLONG / -ENOENT (no HOME) with nothing in buf. */
int tls_cert_key_default_path(char *buf, size_t len);

/* The key at path, made (RSA-3072, mode 0400, parent directories 0700)
 * when there is none; two processes making it at once end up with the
 * same key. A key file that others may read is refused. 0 or -errno with
 * one line in err. */
int tls_cert_key_load(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* Lowercase hex SHA-1 of the DER RSAPublicKey (the subjectPublicKey bits):
 * the PublicKeyHash of the signature and the subjectKeyIdentifier. */
int tls_cert_pubkey_hash(EVP_PKEY *key, char hex[41]);

struct tls_cert_iam {
	const char *access_key;
	const char *secret_key;
	const char *token; /* NULL: long-term keys */
	const char *region;
};

struct tls_cert_sig {
	char *creq; /* canonical request */
	char *sts;  /* string to sign */
	char signature[65];
};

/* The IAM connect signature at now: pure, for the unit tests. 0, -EINVAL,
 * -ENOMEM. */
int tls_cert_iam_sign(const char *fs_id, const char *pubkey_hash, const struct tls_cert_iam *iam,
		      time_t now, struct tls_cert_sig *out);
void tls_cert_sig_free(struct tls_cert_sig *s);

struct tls_cert_params {
	const char *fs_id;
	const char *access_point;	/* NULL: no access point extension */
	const char *hostname;		/* the CN, cut to TLS_CERT_CN_MAX */
	const struct tls_cert_iam *iam; /* NULL: no IAM extension */
	time_t now;
};

/* A certificate for key as the header describes. 0 or -errno with err. */
int tls_cert_build(EVP_PKEY *key, const struct tls_cert_params *p, X509 **out, char *err,
		   size_t errlen);

/* What the daemon's options ask for (fuse/daemon/config.c). */
struct tls_cert_conf {
	const char *keyfile; /* NULL: tls_cert_key_default_path */
	const char *fs_id;
	const char *access_point; /* NULL: none */
	int iam;
	const char *region;	/* for the signature; required with iam */
	const char *awsprofile; /* NULL: AWS_PROFILE or default */
	unsigned renew_s;	/* 0: TLS_CERT_RENEW_S */
};

struct tls_cert_provider;

/* Loads (or makes) the key, fetches credentials with iam, and makes the
 * first certificate, so that every problem stops the mount. 0 or -errno
 * with one line in err (-EACCES: no credentials, and where it looked). */
int tls_cert_provider_new(const struct tls_cert_conf *conf, struct tls_cert_provider **out,
			  char *err, size_t errlen);
void tls_cert_provider_free(struct tls_cert_provider *p);
/* What tls_conf.client_cert points at. */
const struct tls_client_cert *tls_cert_provider_hook(struct tls_cert_provider *p);
/* The current certificate (a reference the caller frees) and its
 * generation, renewed first when due. */
int tls_cert_provider_get(struct tls_cert_provider *p, X509 **cert, EVP_PKEY **key,
			  unsigned *generation, char *err, size_t errlen);

#endif
