/* The EFS and SSM calls the provisioner makes.
 *
 *   struct aws_error err;
 *   struct aws_client *c = aws_client_new(&err);   region, endpoints, credentials
 *   aws_efs_describe_mount_targets(c, "fs-1234", &mts, &n, &err);
 *   aws_client_free(c);
 *
 * Endpoints: EFSMT_EFS_ENDPOINT (default
 * https://elasticfilesystem.REGION.amazonaws.com) and EFSMT_SSM_ENDPOINT
 * (default https://ssm.REGION.amazonaws.com), for tests and VPC endpoints.
 * Every call returns 0 or a negative errno (see aws_call) with err filled;
 * err.code is the AWS error code ("MountTargetConflict", "SubnetNotFound",
 * ...) or an AWS_ERR_* code. */
#ifndef EFSMT_AWS_EFS_H
#define EFSMT_AWS_EFS_H

#include <stddef.h>

#include "aws_call.h"
#include "aws_creds.h"

#define AWS_EFS_API_VERSION "2015-02-01"

struct aws_client {
	struct aws_creds_provider *creds;
	char *region;
	struct aws_service efs;
	struct aws_service ssm;
};

struct aws_client *aws_client_new(struct aws_error *err);
void aws_client_free(struct aws_client *c);

struct aws_mount_target {
	char id[64];
	char fs_id[64];
	char subnet_id[64];
	char state[32]; /* creating|available|updating|deleting|deleted|error */
	char ip[64];
	char az_id[32];
	char az_name[32];
	char vpc_id[32];
};

struct aws_file_system {
	char id[64];
	char state[32];
	char name[256];
	long mount_targets;
};

/* Every mount target of fs_id, following NextMarker. *out is malloc'd. */
int aws_efs_describe_mount_targets(struct aws_client *c, const char *fs_id,
				   struct aws_mount_target **out, size_t *n, struct aws_error *err);
int aws_efs_create_mount_target(struct aws_client *c, const char *fs_id, const char *subnet_id,
				const char *const *security_groups, size_t nsg, const char *ip,
				struct aws_mount_target *out, struct aws_error *err);
int aws_efs_delete_mount_target(struct aws_client *c, const char *mt_id, struct aws_error *err);
int aws_efs_describe_file_system(struct aws_client *c, const char *fs_id,
				 struct aws_file_system *out, struct aws_error *err);
/* Polls until mt_id is "available" (0) or "error"/gone/deadline (-EIO,
 * -ENOENT, -ETIMEDOUT). */
int aws_efs_wait_mount_target(struct aws_client *c, const char *fs_id, const char *mt_id,
			      long deadline_ms, long poll_ms, struct aws_mount_target *out,
			      struct aws_error *err);

/* SSM Parameter Store: a String parameter. *value is malloc'd. */
int aws_ssm_get_parameter(struct aws_client *c, const char *name, char **value,
			  struct aws_error *err);
int aws_ssm_put_parameter(struct aws_client *c, const char *name, const char *value,
			  struct aws_error *err);

#endif
