/* AWS Signature Version 4 (AWS4-HMAC-SHA256).
 *
 *   struct aws_sigv4_in in = { .method = "GET", .path = "/x", ... };
 *   struct aws_sigv4_out out;
 *   if (aws_sigv4_sign(&in, &out) == 0) { use out.authz; aws_sigv4_out_free(&out); }
 *
 * The caller supplies every header to sign, including Host and X-Amz-Date.
 * With a session_token the signer also signs X-Amz-Security-Token (unless
 * hdrs already hold it), and the caller must send that header too. Paths are normalised
 * and URI-encoded once more, as every AWS service except S3 expects. */
#ifndef EFSMT_AWS_SIGV4_H
#define EFSMT_AWS_SIGV4_H

#include <stddef.h>

#define AWS_SIGV4_DATE_LEN 16 /* "YYYYMMDDTHHMMSSZ" */

struct aws_hdr {
	const char *name;
	const char *value;
};

struct aws_sigv4_in {
	const char *method;
	const char *path;  /* as on the request line, before '?' */
	const char *query; /* after '?', without it; NULL or "" for none */
	const struct aws_hdr *hdrs;
	size_t nhdrs;
	const void *body;
	size_t body_len;
	const char *amz_date; /* the X-Amz-Date value */
	const char *region;
	const char *service;
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL for long-term credentials */
};

struct aws_sigv4_out {
	char *creq;	      /* canonical request */
	char *sts;	      /* string to sign */
	char *signed_headers; /* "host;x-amz-date" */
	char *authz;	      /* the Authorization header value */
	char signature[65];
};

/* 0, -EINVAL on a malformed input (bad date, header without name), -ENOMEM. */
int aws_sigv4_sign(const struct aws_sigv4_in *in, struct aws_sigv4_out *out);
void aws_sigv4_out_free(struct aws_sigv4_out *out);

/* The string to sign (*sts, malloc'd) and the signature of a canonical
 * request the caller built, for signatures over something other than an
 * HTTP request (the EFS IAM client certificate, tls_cert.c). 0, -EINVAL on
 * a bad date or a missing input, -ENOMEM. */
int aws_sigv4_sign_creq(const char *creq, const char *amz_date, const char *region,
			const char *service, const char *secret_key, char **sts,
			char signature[65]);

/* Lowercase hex SHA-256 of buf into hex[65]. */
void aws_sha256_hex(const void *buf, size_t len, char hex[65]);

/* The current UTC time as an X-Amz-Date value into date[17]. */
void aws_sigv4_now(char date[AWS_SIGV4_DATE_LEN + 1]);

/* URI-encode per SigV4 (unreserved A-Za-z0-9-._~ kept; '/' kept if keep_slash).
 * Returns a malloc'd string or NULL. */
char *aws_uri_encode(const char *s, size_t len, int keep_slash);

/* Append "key=<value URI-encoded>" to the query or form *q (malloc'd, or
 * NULL for an empty one), after an '&' unless *q is empty. The old string
 * and the encoded value are wiped: values may be secrets (tokens). 0 or
 * -ENOMEM (*q unchanged). */
int aws_query_add(char **q, const char *key, const char *value);

#endif
