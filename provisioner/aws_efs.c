/* EFS (REST-JSON) and SSM (JSON 1.1) calls over aws_call. */
#include "aws_efs.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_sigv4.h"
#include "aws_region.h"

#define EFS_SIGNING_NAME "elasticfilesystem"
#define SSM_SIGNING_NAME "ssm"
#define MT_PATH		 "/" AWS_EFS_API_VERSION "/mount-targets"
#define FS_PATH		 "/" AWS_EFS_API_VERSION "/file-systems"
#define MAX_PAGES	 1000
#define JSON_CT		 "Content-Type: application/json"
#define SSM_CT		 "Content-Type: application/x-amz-json-1.1"

struct aws_client *aws_client_new(struct aws_error *err)
{
	struct aws_client *c = calloc(1, sizeof *c);
	char *efs_url = NULL, *ssm_url = NULL;
	const char *e;
	memset(err, 0, sizeof *err);
	if (!c || !(c->creds = aws_creds_provider_new())) {
		aws_error_set(err, 0, AWS_ERR_INTERNAL, "out of memory");
		free(c);
		return NULL;
	}
	c->region = aws_region_resolve(c->creds, err);
	if (!c->region)
		goto fail;
	if ((e = getenv("EFSMT_EFS_ENDPOINT")) && *e)
		efs_url = strdup(e);
	else if (asprintf(&efs_url, "https://elasticfilesystem.%s.%s", c->region,
			  aws_dns_suffix(c->region)) < 0)
		efs_url = NULL;
	if ((e = getenv("EFSMT_SSM_ENDPOINT")) && *e)
		ssm_url = strdup(e);
	else if (asprintf(&ssm_url, "https://ssm.%s.%s", c->region, aws_dns_suffix(c->region)) < 0)
		ssm_url = NULL;
	if (!efs_url || !ssm_url ||
	    aws_service_init(&c->efs, EFS_SIGNING_NAME, c->region, efs_url) ||
	    aws_service_init(&c->ssm, SSM_SIGNING_NAME, c->region, ssm_url)) {
		aws_error_set(err, 0, AWS_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	free(efs_url);
	free(ssm_url);
	return c;
fail:
	free(efs_url);
	free(ssm_url);
	aws_client_free(c);
	return NULL;
}

void aws_client_free(struct aws_client *c)
{
	if (!c)
		return;
	aws_service_destroy(&c->efs);
	aws_service_destroy(&c->ssm);
	aws_creds_provider_free(c->creds);
	free(c->region);
	free(c);
}

static int malformed(struct aws_error *err, const char *call, const char *why)
{
	aws_error_set(err, 200, AWS_ERR_MALFORMED, "%s: malformed response: %s", call, why);
	return -EPROTO;
}

/* The JSON object of a 2xx answer, or NULL with err filled. */
static json_t *parse_body(struct aws_http_resp *resp, const char *call, struct aws_error *err)
{
	json_error_t je;
	json_t *j = json_loadb(resp->body, resp->body_len, 0, &je);
	if (!j) {
		char why[300];
		snprintf(why, sizeof why, "not JSON (%s at byte %d)", je.text, je.position);
		malformed(err, call, why);
	} else if (!json_is_object(j)) {
		malformed(err, call, "not a JSON object");
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Make one call and parse its JSON object answer; NULL with *rc set
 * (the call's error, or -EPROTO for a malformed answer). */
static json_t *call_json(struct aws_service *svc, struct aws_creds_provider *creds,
			 struct aws_http_req *req, const char *call, struct aws_error *err, int *rc)
{
	struct aws_http_resp resp;

	*rc = aws_call(svc, creds, req, &resp, err);
	if (*rc)
		return NULL;
	json_t *j = parse_body(&resp, call, err);
	aws_http_resp_free(&resp);
	if (!j)
		*rc = -EPROTO;
	return j;
}

/* A string field into dst; required fields must be strings, optional ones
 * may also be absent or null. 0 or -1. */
static int field(json_t *o, const char *key, char *dst, size_t size, int required)
{
	json_t *v = json_object_get(o, key);
	dst[0] = '\0';
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) >= size)
			return -1;
		snprintf(dst, size, "%s", json_string_value(v));
		return 0;
	}
	return required || (v && !json_is_null(v)) ? -1 : 0;
}

static int parse_mt(json_t *o, struct aws_mount_target *mt)
{
	if (!json_is_object(o))
		return -1;
	return field(o, "MountTargetId", mt->id, sizeof mt->id, 1) |
	       field(o, "FileSystemId", mt->fs_id, sizeof mt->fs_id, 1) |
	       field(o, "SubnetId", mt->subnet_id, sizeof mt->subnet_id, 1) |
	       field(o, "LifeCycleState", mt->state, sizeof mt->state, 1) |
	       field(o, "IpAddress", mt->ip, sizeof mt->ip, 0) |
	       field(o, "AvailabilityZoneId", mt->az_id, sizeof mt->az_id, 0) |
	       field(o, "AvailabilityZoneName", mt->az_name, sizeof mt->az_name, 0) |
	       field(o, "VpcId", mt->vpc_id, sizeof mt->vpc_id, 0);
}

static char *enc(const char *s)
{
	return aws_uri_encode(s, strlen(s), 0);
}

int aws_efs_describe_mount_targets(struct aws_client *c, const char *fs_id,
				   struct aws_mount_target **out, size_t *n, struct aws_error *err)
{
	static const char call[] = "EFS DescribeMountTargets";
	struct aws_mount_target *v = NULL;
	size_t cnt = 0;
	char *marker = NULL, *efs = enc(fs_id);
	int rc = 0;

	*out = NULL;
	*n = 0;
	for (int page = 0; efs && page < MAX_PAGES; page++) {
		char *query = NULL, *em = marker ? enc(marker) : NULL;
		if (asprintf(&query, "FileSystemId=%s%s%s", efs, em ? "&Marker=" : "",
			     em ? em : "") < 0)
			query = NULL;
		free(em);
		struct aws_http_req req = {.method = "GET", .path = MT_PATH, .query = query};
		rc = -ENOMEM;
		json_t *j = query ? call_json(&c->efs, c->creds, &req, call, err, &rc) : NULL;
		free(query);
		free(marker);
		marker = NULL;
		if (!j)
			break;
		json_t *mts = json_object_get(j, "MountTargets");
		json_t *next = json_object_get(j, "NextMarker");
		size_t i;
		json_t *o;
		if (!json_is_array(mts) || (next && !json_is_null(next) && !json_is_string(next))) {
			rc = malformed(err, call, "MountTargets is not a list");
		} else {
			struct aws_mount_target *nv =
			    realloc(v, (cnt + json_array_size(mts) + 1) * sizeof *v);
			if (!nv)
				rc = -ENOMEM;
			else
				v = nv;
			json_array_foreach(mts, i, o)
			{
				if (rc)
					break;
				memset(&v[cnt], 0, sizeof v[cnt]);
				if (parse_mt(o, &v[cnt]))
					rc = malformed(
					    err, call,
					    "a mount target lacks its id, subnet or state");
				else
					cnt++;
			}
			if (!rc && json_is_string(next) && *json_string_value(next))
				marker = strdup(json_string_value(next));
		}
		json_decref(j);
		if (rc || !marker)
			break;
	}
	free(marker);
	free(efs);
	if (rc == -ENOMEM)
		aws_error_set(err, 0, AWS_ERR_INTERNAL, "out of memory");
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int aws_efs_create_mount_target(struct aws_client *c, const char *fs_id, const char *subnet_id,
				const char *const *security_groups, size_t nsg, const char *ip,
				struct aws_mount_target *out, struct aws_error *err)
{
	static const char call[] = "EFS CreateMountTarget";
	json_t *body = json_pack("{s:s, s:s}", "FileSystemId", fs_id, "SubnetId", subnet_id);
	if (!body)
		return -ENOMEM;
	if (nsg) {
		json_t *sg = json_array();
		for (size_t i = 0; i < nsg; i++)
			json_array_append_new(sg, json_string(security_groups[i]));
		json_object_set_new(body, "SecurityGroups", sg);
	}
	if (ip && *ip)
		json_object_set_new(body, "IpAddress", json_string(ip));
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return -ENOMEM;
	const char *hdrs[] = {JSON_CT, NULL};
	struct aws_http_req req = {
	    .method = "POST", .path = MT_PATH, .headers = hdrs, .body = s, .body_len = strlen(s)};
	int rc;
	json_t *j = call_json(&c->efs, c->creds, &req, call, err, &rc);
	free(s);
	if (!j)
		return rc;
	memset(out, 0, sizeof *out);
	rc = parse_mt(j, out)
		 ? malformed(err, call, "the mount target lacks its id, subnet or state")
		 : 0;
	json_decref(j);
	return rc;
}

int aws_efs_delete_mount_target(struct aws_client *c, const char *mt_id, struct aws_error *err)
{
	char *e = enc(mt_id), *path = NULL;
	struct aws_http_resp resp;
	if (!e || asprintf(&path, MT_PATH "/%s", e) < 0) {
		free(e);
		return -ENOMEM;
	}
	free(e);
	struct aws_http_req req = {.method = "DELETE", .path = path};
	int rc = aws_call(&c->efs, c->creds, &req, &resp, err);
	free(path);
	if (rc == 0)
		aws_http_resp_free(&resp);
	return rc;
}

int aws_efs_describe_file_system(struct aws_client *c, const char *fs_id,
				 struct aws_file_system *out, struct aws_error *err)
{
	static const char call[] = "EFS DescribeFileSystems";
	char *e = enc(fs_id), *query = NULL;
	if (!e || asprintf(&query, "FileSystemId=%s", e) < 0) {
		free(e);
		return -ENOMEM;
	}
	free(e);
	struct aws_http_req req = {.method = "GET", .path = FS_PATH, .query = query};
	int rc;
	json_t *j = call_json(&c->efs, c->creds, &req, call, err, &rc);
	free(query);
	if (!j)
		return rc;
	json_t *fss = json_object_get(j, "FileSystems");
	json_t *fs = json_array_get(fss, 0);
	json_t *nmt = json_object_get(fs, "NumberOfMountTargets");
	memset(out, 0, sizeof *out);
	if (!json_is_array(fss) || json_array_size(fss) != 1 || !json_is_object(fs) ||
	    field(fs, "FileSystemId", out->id, sizeof out->id, 1) ||
	    field(fs, "LifeCycleState", out->state, sizeof out->state, 1) ||
	    field(fs, "Name", out->name, sizeof out->name, 0) || (nmt && !json_is_integer(nmt)))
		rc = malformed(err, call, "FileSystems is not one file system with id and state");
	else
		out->mount_targets = nmt ? (long)json_integer_value(nmt) : 0;
	json_decref(j);
	return rc;
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int aws_efs_wait_mount_target(struct aws_client *c, const char *fs_id, const char *mt_id,
			      long deadline_ms, long poll_ms, struct aws_mount_target *out,
			      struct aws_error *err)
{
	long end = mono_ms() + deadline_ms;
	for (;;) {
		struct aws_mount_target *v;
		size_t n, i;
		int rc = aws_efs_describe_mount_targets(c, fs_id, &v, &n, err);
		if (rc)
			return rc;
		for (i = 0; i < n && strcmp(v[i].id, mt_id); i++)
			;
		if (i < n)
			*out = v[i];
		free(v);
		if (i == n) {
			aws_error_set(err, 404, "MountTargetNotFound",
				      "mount target %s of %s is gone", mt_id, fs_id);
			return -ENOENT;
		}
		if (strcmp(out->state, "available") == 0)
			return 0;
		if (strcmp(out->state, "creating") && strcmp(out->state, "updating")) {
			aws_error_set(err, 0, "MountTargetFailed", "mount target %s of %s is %s",
				      mt_id, fs_id, out->state);
			return -EIO;
		}
		if (mono_ms() + poll_ms > end) {
			aws_error_set(err, 0, AWS_ERR_TIMEOUT,
				      "mount target %s of %s still %s after %ld ms", mt_id, fs_id,
				      out->state, deadline_ms);
			return -ETIMEDOUT;
		}
		struct timespec ts = {.tv_sec = poll_ms / 1000,
				      .tv_nsec = (poll_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int ssm_call(struct aws_client *c, const char *target, json_t *body,
		    struct aws_http_resp *resp, struct aws_error *err)
{
	char th[128];
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return -ENOMEM;
	snprintf(th, sizeof th, "X-Amz-Target: AmazonSSM.%s", target);
	const char *hdrs[] = {SSM_CT, th, NULL};
	struct aws_http_req req = {
	    .method = "POST", .path = "/", .headers = hdrs, .body = s, .body_len = strlen(s)};
	int rc = aws_call(&c->ssm, c->creds, &req, resp, err);
	free(s);
	return rc;
}

int aws_ssm_get_parameter(struct aws_client *c, const char *name, char **value,
			  struct aws_error *err)
{
	static const char call[] = "SSM GetParameter";
	struct aws_http_resp resp;
	*value = NULL;
	json_t *body = json_pack("{s:s}", "Name", name);
	int rc = body ? ssm_call(c, "GetParameter", body, &resp, err) : -ENOMEM;
	if (rc)
		return rc;
	json_t *j = parse_body(&resp, call, err);
	aws_http_resp_free(&resp);
	if (!j)
		return -EPROTO;
	json_t *v = json_object_get(json_object_get(j, "Parameter"), "Value");
	if (!json_is_string(v))
		rc = malformed(err, call, "no Parameter.Value");
	else if (!(*value = strdup(json_string_value(v))))
		rc = -ENOMEM;
	json_decref(j);
	return rc;
}

int aws_ssm_put_parameter(struct aws_client *c, const char *name, const char *value,
			  struct aws_error *err)
{
	static const char call[] = "SSM PutParameter";
	struct aws_http_resp resp;
	json_t *body = json_pack("{s:s, s:s, s:s, s:b}", "Name", name, "Value", value, "Type",
				 "String", "Overwrite", 1);
	int rc = body ? ssm_call(c, "PutParameter", body, &resp, err) : -ENOMEM;
	if (rc)
		return rc;
	json_t *j = parse_body(&resp, call, err);
	aws_http_resp_free(&resp);
	if (!j)
		return -EPROTO;
	if (!json_is_integer(json_object_get(j, "Version")))
		rc = malformed(err, call, "no Version");
	json_decref(j);
	return rc;
}
