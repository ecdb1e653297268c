/* awsprobe: drive the AWS client from the command line (tests, debugging).
 *   awsprobe creds | region
 *   awsprobe describe FS_ID | fs FS_ID | delete MT_ID
 *   awsprobe create FS_ID SUBNET SG[,SG...] [IP]
 *   awsprobe wait FS_ID MT_ID DEADLINE_MS
 *   awsprobe get NAME | put NAME VALUE
 *   awsprobe repeat N describe FS_ID       (for leak checks)
 *   awsprobe sign < JSON lines             (signer only, for comparison tests:
 *     {"method","path","query","headers":[[name,value]...],"body","date",
 *      "region","service","access_key","secret_key","token"} in,
 *     {"creq","sts","authz","signature"} out, one line each)
 * On failure: one line "awsprobe: CODE: message (HTTP n, k attempts)", exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aws_efs.h"
#include "aws_sigv4.h"

#define WAIT_POLL_MS	 200
#define MAX_SGS		 5
#define SIGN_MAX_HEADERS 64

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int sign_one(json_t *j)
{
	struct aws_hdr h[SIGN_MAX_HEADERS];
	json_t *hs = json_object_get(j, "headers"), *pair;
	size_t i, n = 0;
	json_array_foreach(hs, i, pair)
	{
		if (n == SIGN_MAX_HEADERS)
			return -1;
		h[n].name = json_string_value(json_array_get(pair, 0));
		h[n++].value = json_string_value(json_array_get(pair, 1));
	}
	const char *body = jstr(j, "body");
	struct aws_sigv4_in in = {
	    .method = jstr(j, "method"),
	    .path = jstr(j, "path"),
	    .query = jstr(j, "query"),
	    .hdrs = h,
	    .nhdrs = n,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .amz_date = jstr(j, "date"),
	    .region = jstr(j, "region"),
	    .service = jstr(j, "service"),
	    .access_key = jstr(j, "access_key"),
	    .secret_key = jstr(j, "secret_key"),
	    .session_token = jstr(j, "token"),
	};
	struct aws_sigv4_out out;
	if (!in.path || aws_sigv4_sign(&in, &out))
		return -1;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "creq", out.creq, "sts", out.sts, "authz",
			      out.authz, "signature", out.signature);
	aws_sigv4_out_free(&out);
	if (!o)
		return -1;
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	return 0;
}

/* Signs each JSON line of stdin; no client, no network. */
static int sign_lines(void)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	while (rc == 0 && getline(&line, &cap, stdin) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		rc = j ? sign_one(j) : -1;
		json_decref(j);
	}
	free(line);
	fflush(stdout);
	if (rc)
		fprintf(stderr, "awsprobe: sign: bad input line\n");
	return rc ? 1 : 0;
}

static void print_mt(const struct aws_mount_target *m)
{
	printf("%s %s %s %s %s %s\n", m->id, m->subnet_id, m->state, m->ip[0] ? m->ip : "-",
	       m->az_name[0] ? m->az_name : "-", m->az_id[0] ? m->az_id : "-");
}

static int describe(struct aws_client *c, const char *fs, int quiet, struct aws_error *err)
{
	struct aws_mount_target *v;
	size_t n;
	int rc = aws_efs_describe_mount_targets(c, fs, &v, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; !quiet && i < n; i++)
		print_mt(&v[i]);
	free(v);
	return 0;
}

static int run(struct aws_client *c, int argc, char **argv, struct aws_error *err)
{
	const char *cmd = argv[1];
	if (strcmp(cmd, "creds") == 0) {
		struct aws_creds cr = {0};
		int rc = aws_creds_get(c->creds, &cr, err);
		if (rc == 0)
			printf("source=%s access_key=%s token=%s\n", cr.source, cr.access_key,
			       cr.token ? "yes" : "no");
		aws_creds_clear(&cr);
		return rc;
	}
	if (strcmp(cmd, "region") == 0) {
		printf("%s\n", c->region);
		return 0;
	}
	if (strcmp(cmd, "describe") == 0 && argc == 3)
		return describe(c, argv[2], 0, err);
	if (strcmp(cmd, "repeat") == 0 && argc == 5 && strcmp(argv[3], "describe") == 0) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++) {
			int rc = describe(c, argv[4], 1, err);
			if (rc)
				return rc;
		}
		printf("ok %ld\n", n);
		return 0;
	}
	if (strcmp(cmd, "fs") == 0 && argc == 3) {
		struct aws_file_system fs;
		int rc = aws_efs_describe_file_system(c, argv[2], &fs, err);
		if (rc == 0)
			printf("%s %s %ld %s\n", fs.id, fs.state, fs.mount_targets, fs.name);
		return rc;
	}
	if (strcmp(cmd, "create") == 0 && (argc == 5 || argc == 6)) {
		const char *sgs[MAX_SGS];
		size_t nsg = 0;
		char *list = strdup(argv[4]), *save = NULL;
		for (char *s = strtok_r(list, ",", &save); s && nsg < MAX_SGS;
		     s = strtok_r(NULL, ",", &save))
			sgs[nsg++] = s;
		struct aws_mount_target mt;
		int rc = aws_efs_create_mount_target(c, argv[2], argv[3], sgs, nsg,
						     argc == 6 ? argv[5] : NULL, &mt, err);
		if (rc == 0)
			print_mt(&mt);
		free(list);
		return rc;
	}
	if (strcmp(cmd, "delete") == 0 && argc == 3)
		return aws_efs_delete_mount_target(c, argv[2], err);
	if (strcmp(cmd, "wait") == 0 && argc == 5) {
		struct aws_mount_target mt;
		int rc = aws_efs_wait_mount_target(c, argv[2], argv[3], atol(argv[4]), WAIT_POLL_MS,
						   &mt, err);
		if (rc == 0)
			print_mt(&mt);
		return rc;
	}
	if (strcmp(cmd, "get") == 0 && argc == 3) {
		char *v;
		int rc = aws_ssm_get_parameter(c, argv[2], &v, err);
		if (rc == 0)
			printf("%s\n", v);
		free(v);
		return rc;
	}
	if (strcmp(cmd, "put") == 0 && argc == 4)
		return aws_ssm_put_parameter(c, argv[2], argv[3], err);
	aws_error_set(err, 0, "Usage", "unknown command or wrong arguments: %s", cmd);
	return -1;
}

int main(int argc, char **argv)
{
	struct aws_error err;
	if (argc == 2 && strcmp(argv[1], "sign") == 0)
		return sign_lines();
	if (argc < 2) {
		fprintf(
		    stderr,
		    "usage: awsprobe creds|region|describe|fs|create|delete|wait|get|put ...\n");
		return 2;
	}
	struct aws_client *c = aws_client_new(&err);
	if (!c) {
		fprintf(stderr, "awsprobe: %s: %s\n", err.code, err.message);
		return 1;
	}
	memset(&err, 0, sizeof err);
	int rc = run(c, argc, argv, &err);
	aws_client_free(c);
	if (rc) {
		fprintf(stderr, "awsprobe: %s: %s (HTTP %ld, %d attempts)\n", err.code, err.message,
			err.status, err.attempts);
		return 1;
	}
	return 0;
}
