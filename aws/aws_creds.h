/* AWS credentials and region.
 *
 * The chain, first source that answers wins:
 *   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY [/ AWS_SESSION_TOKEN]
 *      (skipped when AWS_PROFILE names a profile)
 *   2. web identity (EKS IAM roles for service accounts): the token in
 *      AWS_WEB_IDENTITY_TOKEN_FILE traded for AWS_ROLE_ARN's credentials by
 *      STS AssumeRoleWithWebIdentity (EFSMT_STS_ENDPOINT, default the
 *      region's STS), session name AWS_ROLE_SESSION_NAME or efsmt-PID-TIME
 *   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials) then the config file (AWS_CONFIG_FILE, default
 *      ~/.aws/config), profile AWS_PROFILE or "default"
 *   4. the ECS container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI at
 *      EFSMT_ECS_ENDPOINT (default http://169.254.170.2), or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI, with the Authorization header
 *      from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN
 *   5. IMDSv2 at EFSMT_IMDS_ENDPOINT (default http://169.254.169.254):
 *      a session token, then the instance role's credentials
 * Temporary credentials are fetched again AWS_CREDS_REFRESH_S before their
 * Expiration. Thread-safe. */
#ifndef EFSMT_AWS_CREDS_H
#define EFSMT_AWS_CREDS_H

#include <time.h>

#include "aws_http.h"

#define AWS_CREDS_REFRESH_S  300
#define AWS_IMDS_TOKEN_TTL_S 21600
#define AWS_IMDS_DEFAULT     "http://169.254.169.254"
#define AWS_ECS_DEFAULT	     "http://169.254.170.2"

struct aws_creds {
	char *access_key;
	char *secret_key;
	char *token;	   /* NULL for long-term keys */
	time_t expiration; /* 0: does not expire */
	char source[16];   /* "env", "webidentity", "profile", "ecs", "imds" */
};
void aws_creds_clear(struct aws_creds *c); /* wipes and frees */

struct aws_creds_provider;
struct aws_creds_provider *aws_creds_provider_new(void);
void aws_creds_provider_free(struct aws_creds_provider *p);
/* Use the shared files' profile name (efsmt -o awsprofile=) instead of
 * AWS_PROFILE; like AWS_PROFILE, it skips the environment's keys. 0 or
 * -ENOMEM. */
int aws_creds_provider_set_profile(struct aws_creds_provider *p, const char *name);

/* A copy of valid credentials (caller clears), or -EACCES with err saying
 * which sources were tried. */
int aws_creds_get(struct aws_creds_provider *p, struct aws_creds *out, struct aws_error *err);

/* AWS_REGION, AWS_DEFAULT_REGION, the profile's region in the config file,
 * then IMDS placement/region. Returns a malloc'd name or NULL with err. */
char *aws_region_resolve(struct aws_creds_provider *p, struct aws_error *err);

/* ISO 8601 "2026-01-01T00:00:00Z" to time_t; -1 when malformed. */
time_t aws_parse_iso8601(const char *s);

#endif
