/*
 * aws_call.h - signed calls to an AWS service: SigV4 with credentials from
 * a provider (aws_creds.h), over aws_http.h's transport, retried.
 */
#ifndef EFSMT_AWS_CALL_H
#define EFSMT_AWS_CALL_H

#include "aws_http.h"

struct aws_creds_provider;

/* A signed AWS service at one endpoint. */
struct aws_service {
	struct aws_endpoint *ep;
	char *name; /* signing name: "elasticfilesystem", "ssm" */
	char *region;
	char *host; /* the Host header, from the endpoint URL */
	struct aws_http_conf conf;
};
int aws_service_init(struct aws_service *svc, const char *name, const char *region,
		     const char *url);
void aws_service_destroy(struct aws_service *svc);

/* Signs and sends, retrying throttling, 5xx and network errors. 0 on a 2xx
 * (resp filled, caller frees), else -EREMOTEIO (an AWS error answer),
 * -EIO (network), -ETIMEDOUT (deadline), -EACCES (no credentials), with err
 * filled from x-amzn-ErrorType, {"ErrorCode","Message"} or
 * {"__type":"...#Code","message"}. */
int aws_call(struct aws_service *svc, struct aws_creds_provider *creds,
	     const struct aws_http_req *req, struct aws_http_resp *resp, struct aws_error *err);

#endif
