/* HTTP for the AWS client: one reused libcurl handle per endpoint
 * (keep-alive), TLS verification always on, timeouts, and the capped
 * exponential backoff with full jitter that retries use.
 *
 *   struct aws_endpoint *ep = aws_endpoint_new("https://ssm.us-east-1.amazonaws.com");
 *   aws_http_do(ep, &req, &resp, &err);       one unsigned attempt (IMDS, ECS)
 *
 * Signed, retried calls (EFS, SSM) are aws_call.h's.
 *
 * Errors come back as an aws_error: a code the caller can act on (an AWS
 * error code such as "MountTargetConflict", or one of the AWS_ERR_* below)
 * and one line of message. Nothing here logs; no secret enters a message. */
#ifndef EFSMT_AWS_HTTP_H
#define EFSMT_AWS_HTTP_H

#include <stddef.h>

#define AWS_ERR_NETWORK	    "NetworkError"
#define AWS_ERR_MALFORMED   "MalformedResponse"
#define AWS_ERR_CREDENTIALS "NoCredentials"
#define AWS_ERR_TIMEOUT	    "DeadlineExceeded"
#define AWS_ERR_INTERNAL    "InternalError"

struct aws_error {
	long status; /* HTTP status, 0 if none arrived */
	char code[96];
	char message[512];
	int attempts;
};

struct aws_http_conf {
	long connect_timeout_ms;
	long request_timeout_ms; /* one attempt */
	int max_attempts;
	long backoff_base_ms;
	long backoff_cap_ms;
	long deadline_ms; /* all attempts of one call */
};

/* Defaults, each overridable by an environment variable (README.md):
 * EFSMT_AWS_CONNECT_TIMEOUT_MS, EFSMT_AWS_REQUEST_TIMEOUT_MS,
 * EFSMT_AWS_MAX_ATTEMPTS, EFSMT_AWS_BACKOFF_BASE_MS, EFSMT_AWS_BACKOFF_CAP_MS,
 * EFSMT_AWS_DEADLINE_MS. */
void aws_http_conf_default(struct aws_http_conf *conf);

struct aws_endpoint;
struct aws_endpoint *aws_endpoint_new(const char *base_url, const struct aws_http_conf *conf);
void aws_endpoint_free(struct aws_endpoint *ep);
const char *aws_endpoint_url(const struct aws_endpoint *ep);

struct aws_http_req {
	const char *method;
	const char *path;	    /* already URI-encoded, starts with '/' */
	const char *query;	    /* already encoded, without '?'; NULL for none */
	const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
	const char *body;
	size_t body_len;
	long timeout_ms; /* 0, or less than the endpoint's request timeout */
};

struct aws_http_resp {
	long status;
	char *body; /* NUL-terminated */
	size_t body_len;
	char *error_type; /* x-amzn-ErrorType, cut at the first ':' */
};
void aws_http_resp_free(struct aws_http_resp *resp);

/* One attempt, unsigned. 0 when a response arrived (any status), else -EIO
 * with err filled (code AWS_ERR_NETWORK). */
int aws_http_do(struct aws_endpoint *ep, const struct aws_http_req *req, struct aws_http_resp *resp,
		struct aws_error *err);

/* Fills err from an error answer (status, header, body). */
void aws_error_from_resp(const struct aws_http_resp *resp, struct aws_error *err);

/* Whether an error is worth another attempt. */
int aws_error_retryable(const struct aws_error *err);

/* Backoff before attempt n (1-based retry count): uniform in [0, min(cap, base*2^n)]. */
long aws_backoff_ms(const struct aws_http_conf *conf, int n);

void aws_error_set(struct aws_error *err, long status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
