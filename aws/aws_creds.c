/* The AWS credential chain and region lookup (aws_creds.h). */
#include "aws_creds.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aws_sigv4.h"
#include "aws_region.h"

#define METADATA_CONNECT_TIMEOUT_MS 1000
#define METADATA_REQUEST_TIMEOUT_MS 3000
#define IMDS_TOKEN_MARGIN_S	    60
#define TOKEN_FILE_MAX		    4096
#define INI_LINE_MAX		    4096
#define STS_TIMEOUT_MS		    10000
#define STS_VERSION		    "2011-06-15"
#define STS_SESSION_NAME_MAX	    64 /* AWS's limit on RoleSessionName */

struct aws_creds_provider {
	pthread_mutex_t lock;
	struct aws_creds cached;
	int have;
	struct aws_endpoint *imds;
	char *imds_token;
	time_t imds_token_exp;
	struct aws_endpoint *ecs;
	struct aws_endpoint *sts;
	char *profile; /* aws_creds_provider_set_profile; NULL: AWS_PROFILE or default */
};

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void aws_creds_clear(struct aws_creds *c)
{
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->token);
	memset(c, 0, sizeof *c);
}

static int creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	*dst = *src;
	dst->access_key = xstrdup(src->access_key);
	dst->secret_key = xstrdup(src->secret_key);
	dst->token = xstrdup(src->token);
	if (!dst->access_key || !dst->secret_key || (src->token && !dst->token)) {
		aws_creds_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

time_t aws_parse_iso8601(const char *s)
{
	struct tm tm = {0};
	const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!rest)
		return -1;
	if (*rest == '.')
		for (rest++; isdigit((unsigned char)*rest); rest++)
			;
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0 && *rest)
		return -1;
	return timegm(&tm);
}

struct aws_creds_provider *aws_creds_provider_new(void)
{
	struct aws_creds_provider *p = calloc(1, sizeof *p);
	if (p)
		pthread_mutex_init(&p->lock, NULL);
	return p;
}

void aws_creds_provider_free(struct aws_creds_provider *p)
{
	if (!p)
		return;
	aws_creds_clear(&p->cached);
	aws_endpoint_free(p->imds);
	aws_endpoint_free(p->ecs);
	wipe_free(p->imds_token);
	aws_endpoint_free(p->sts);
	free(p->profile);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- environment ---- */

static int from_env(struct aws_creds *out)
{
	const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
	if (!ak || !sk)
		return -ENOENT;
	out->access_key = strdup(ak);
	out->secret_key = strdup(sk);
	out->token = xstrdup(env("AWS_SESSION_TOKEN"));
	snprintf(out->source, sizeof out->source, "env");
	return 0;
}

/* ---- shared files ---- */

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t l = strlen(s);
	while (l && isspace((unsigned char)s[l - 1]))
		s[--l] = '\0';
	return s;
}

/* The value of key in [section] of an INI file, malloc'd, or NULL. */
static char *ini_get(const char *path, const char *section, const char *key)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	char line[INI_LINE_MAX];
	char *val = NULL;
	int in = 0;
	if (!f)
		return NULL;
	while (!val && fgets(line, sizeof line, f)) {
		char *l = trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (end)
				*end = '\0';
			in = strcmp(trim(l + 1), section) == 0;
			continue;
		}
		char *eq = strchr(l, '=');
		if (!in || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(l), key) == 0)
			val = strdup(trim(eq + 1));
	}
	OPENSSL_cleanse(line, sizeof line);
	fclose(f);
	return val;
}

static char *home_path(const char *envname, const char *rel)
{
	const char *v = env(envname), *home = env("HOME");
	char *p = NULL;
	if (v)
		return strdup(v);
	if (home && asprintf(&p, "%s/%s", home, rel) < 0)
		p = NULL;
	return p;
}

static const char *profile_name(const struct aws_creds_provider *p)
{
	const char *n = p->profile ? p->profile : env("AWS_PROFILE");
	return n ? n : "default";
}

int aws_creds_provider_set_profile(struct aws_creds_provider *p, const char *name)
{
	char *n = name ? strdup(name) : NULL;
	if (name && !n)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	free(p->profile);
	p->profile = n;
	aws_creds_clear(&p->cached);
	p->have = 0;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* key from the credentials file's [name], else the config file's
 * [profile name] ([default] for the default profile). */
static char *profile_get(const struct aws_creds_provider *p, const char *key)
{
	const char *name = profile_name(p);
	char *cpath = home_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	char *v = ini_get(cpath, name, key);
	free(cpath);
	if (v)
		return v;
	char *fpath = home_path("AWS_CONFIG_FILE", ".aws/config");
	char section[256];
	if (strcmp(name, "default") == 0)
		snprintf(section, sizeof section, "default");
	else
		snprintf(section, sizeof section, "profile %s", name);
	v = ini_get(fpath, section, key);
	free(fpath);
	return v;
}

static int from_profile(const struct aws_creds_provider *p, struct aws_creds *out)
{
	char *ak = profile_get(p, "aws_access_key_id");
	char *sk = profile_get(p, "aws_secret_access_key");
	if (!ak || !sk) {
		wipe_free(ak);
		wipe_free(sk);
		return -ENOENT;
	}
	out->access_key = ak;
	out->secret_key = sk;
	out->token = profile_get(p, "aws_session_token");
	snprintf(out->source, sizeof out->source, "profile");
	return 0;
}

/* ---- ECS and IMDS ---- */

static struct aws_endpoint *metadata_endpoint(const char *url)
{
	struct aws_http_conf conf;
	aws_http_conf_default(&conf);
	conf.connect_timeout_ms = METADATA_CONNECT_TIMEOUT_MS;
	conf.request_timeout_ms = METADATA_REQUEST_TIMEOUT_MS;
	return aws_endpoint_new(url, &conf);
}

/* {AccessKeyId, SecretAccessKey, Token, Expiration[, Code]} into out. */
static int parse_creds_json(const char *body, const char *what, struct aws_creds *out,
			    struct aws_error *err)
{
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	json_t *ak = json_object_get(j, "AccessKeyId"), *sk = json_object_get(j, "SecretAccessKey");
	json_t *tok = json_object_get(j, "Token"), *exp = json_object_get(j, "Expiration");
	json_t *code = json_object_get(j, "Code");
	int rc = -EPROTO;
	if (!json_is_object(j)) {
		aws_error_set(err, 0, AWS_ERR_MALFORMED,
			      "%s: malformed credentials: not a JSON object", what);
	} else if (code && (!json_is_string(code) || strcmp(json_string_value(code), "Success"))) {
		aws_error_set(err, 0, AWS_ERR_CREDENTIALS,
			      "%s: credentials not available (Code %s)", what,
			      json_is_string(code) ? json_string_value(code) : "?");
	} else if (!json_is_string(ak) || !json_is_string(sk) ||
		   (tok && !json_is_null(tok) && !json_is_string(tok))) {
		aws_error_set(err, 0, AWS_ERR_MALFORMED,
			      "%s: malformed credentials: AccessKeyId or SecretAccessKey missing",
			      what);
	} else if (exp && !json_is_null(exp) &&
		   (!json_is_string(exp) || aws_parse_iso8601(json_string_value(exp)) < 0)) {
		aws_error_set(err, 0, AWS_ERR_MALFORMED,
			      "%s: malformed credentials: bad Expiration", what);
	} else {
		out->access_key = strdup(json_string_value(ak));
		out->secret_key = strdup(json_string_value(sk));
		out->token = json_is_string(tok) ? strdup(json_string_value(tok)) : NULL;
		out->expiration =
		    json_is_string(exp) ? aws_parse_iso8601(json_string_value(exp)) : 0;
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static char *read_token_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[TOKEN_FILE_MAX];
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *t = strdup(trim(buf));
	OPENSSL_cleanse(buf, sizeof buf);
	return t;
}

/* As the AWS SDKs do: a full URI over plain http may only name a loopback
 * or the ECS/EKS link-local address, so the token never crosses a network. */
static int full_uri_allowed(const char *url)
{
	static const char *const hosts[] = {"localhost", "[::1]", "169.254.170.2", "169.254.170.23",
					    "[fd00:ec2::23]"};
	if (strncmp(url, "https://", 8) == 0)
		return 1;
	if (strncmp(url, "http://", 7) != 0)
		return 0;
	const char *h = url + 7;
	size_t l = strcspn(h, "/?#");
	const char *br = memchr(h, ']', l);
	size_t hl = br ? (size_t)(br - h) + 1 : strcspn(h, ":/?#");
	if (hl > l)
		hl = l;
	if (hl > 4 && strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") >= hl)
		return 1;
	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
		if (strlen(hosts[i]) == hl && strncasecmp(h, hosts[i], hl) == 0)
			return 1;
	return 0;
}

static int from_ecs(struct aws_creds_provider *p, struct aws_creds *out, struct aws_error *err)
{
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tfile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char *url = NULL, *token = NULL, *authz = NULL;
	struct aws_http_resp resp;
	int rc;

	if (!rel && !full)
		return -ENOENT;
	if (rel) {
		const char *base = env("EFSMT_ECS_ENDPOINT");
		if (asprintf(&url, "%s%s", base ? base : AWS_ECS_DEFAULT, rel) < 0)
			return -ENOMEM;
	} else if (!full_uri_allowed(full)) {
		aws_error_set(
		    err, 0, AWS_ERR_CREDENTIALS,
		    "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: http only to a loopback or the "
		    "ECS/EKS link-local address (or use https)",
		    full);
		return -EACCES;
	} else {
		url = strdup(full);
	}
	if (tfile) {
		token = read_token_file(tfile);
		if (!token) {
			aws_error_set(err, 0, AWS_ERR_CREDENTIALS,
				      "ECS credentials: cannot read "
				      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
				      tfile);
			free(url);
			return -EACCES;
		}
	} else {
		token = xstrdup(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	}
	if (token && asprintf(&authz, "Authorization: %s", token) < 0)
		authz = NULL;
	wipe_free(token);
	const char *hdrs[] = {authz, NULL};
	/* the whole URL is the endpoint: one handle, path empty */
	aws_endpoint_free(p->ecs);
	p->ecs = metadata_endpoint(url);
	struct aws_http_req req = {.method = "GET", .path = "", .headers = authz ? hdrs : NULL};
	rc = p->ecs ? aws_http_do(p->ecs, &req, &resp, err) : -ENOMEM;
	if (rc == 0) {
		if (resp.status != 200) {
			aws_error_set(err, resp.status, AWS_ERR_CREDENTIALS,
				      "ECS credentials: %s answered HTTP %ld", url, resp.status);
			rc = -EACCES;
		} else {
			rc = parse_creds_json(resp.body, "ECS credentials", out, err);
		}
		aws_http_resp_free(&resp);
	}
	wipe_free(authz);
	free(url);
	snprintf(out->source, sizeof out->source, "ecs");
	return rc;
}

/* ---- web identity (EKS IAM roles for service accounts) ---- */

/* The text of <tag>...</tag> in an STS answer, entities decoded; malloc'd
 * or NULL. STS answers are flat enough that the first match is the one. */
static char *xml_text(const char *body, const char *tag)
{
	char open[64], close[64];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *a = strstr(body, open);
	const char *b = a ? strstr(a, close) : NULL;
	if (!b)
		return NULL;
	a += strlen(open);
	char *out = malloc((size_t)(b - a) + 1), *o = out;
	if (!out)
		return NULL;
	static const struct { const char *ent; char c; } ents[] = {
		{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	while (a < b) {
		size_t i, n = sizeof ents / sizeof ents[0];
		for (i = 0; i < n && strncmp(a, ents[i].ent, strlen(ents[i].ent)); i++)
			;
		if (i < n) {
			*o++ = ents[i].c;
			a += strlen(ents[i].ent);
		} else {
			*o++ = *a++;
		}
	}
	*o = '\0';
	return out;
}

/* The STS endpoint: EFSMT_STS_ENDPOINT, else the region's (as the SDKs
 * now default to), else the global one. */
static char *sts_url(void)
{
	const char *u = env("EFSMT_STS_ENDPOINT"), *r = env("AWS_REGION");
	char *out = NULL;
	if (u)
		return strdup(u);
	if (!r)
		r = env("AWS_DEFAULT_REGION");
	if (!r)
		return strdup("https://sts.amazonaws.com");
	if (asprintf(&out, "https://sts.%s.%s", r, aws_dns_suffix(r)) < 0)
		return NULL;
	return out;
}

/* AssumeRoleWithWebIdentity with the token in AWS_WEB_IDENTITY_TOKEN_FILE
 * (re-read every time: the kubelet rotates it) for AWS_ROLE_ARN. The call
 * is not signed: the token is the proof. */
static int from_web_identity(struct aws_creds_provider *p, struct aws_creds *out,
			     struct aws_error *err)
{
	const char *tfile = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
	const char *sname = env("AWS_ROLE_SESSION_NAME");
	char defname[STS_SESSION_NAME_MAX + 1];
	if (!tfile || !role)
		return -ENOENT;
	snprintf(out->source, sizeof out->source, "webidentity");
	char *token = read_token_file(tfile);
	if (!token || !*token) {
		wipe_free(token);
		aws_error_set(err, 0, AWS_ERR_CREDENTIALS,
			      "web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE %s", tfile);
		return -EACCES;
	}
	if (!sname) {
		snprintf(defname, sizeof defname, "efsmt-%ld-%ld", (long)getpid(), (long)time(NULL));
		sname = defname;
	}
	char *body = strdup("Action=AssumeRoleWithWebIdentity&Version=" STS_VERSION);
	int rc = body ? 0 : -ENOMEM;
	if (!rc)
		rc = aws_query_add(&body, "RoleArn", role);
	if (!rc)
		rc = aws_query_add(&body, "RoleSessionName", sname);
	if (!rc)
		rc = aws_query_add(&body, "WebIdentityToken", token);
	wipe_free(token);
	char *url = sts_url();
	if (!rc && !url)
		rc = -ENOMEM;
	if (!rc && !p->sts) {
		struct aws_http_conf conf;
		aws_http_conf_default(&conf);
		conf.request_timeout_ms = STS_TIMEOUT_MS;
		p->sts = aws_endpoint_new(url, &conf);
		if (!p->sts)
			rc = -ENOMEM;
	}
	struct aws_http_resp resp;
	if (!rc) {
		const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
				      NULL};
		struct aws_http_req req = {.method = "POST", .path = "/", .headers = hdrs,
					   .body = body, .body_len = strlen(body)};
		rc = aws_http_do(p->sts, &req, &resp, err);
	}
	wipe_free(body);
	if (rc) {
		free(url);
		return rc == -ENOMEM ? rc : -EACCES;
	}
	char *ak = xml_text(resp.body, "AccessKeyId"), *sk = xml_text(resp.body, "SecretAccessKey");
	char *tok = xml_text(resp.body, "SessionToken"), *exp = xml_text(resp.body, "Expiration");
	if (resp.status != 200) {
		char *code = xml_text(resp.body, "Code"), *msg = xml_text(resp.body, "Message");
		aws_error_set(err, resp.status, AWS_ERR_CREDENTIALS,
			      "web identity: STS %s refused AssumeRoleWithWebIdentity for %s: HTTP "
			      "%ld %s: %s",
			      url, role, resp.status, code ? code : "?", msg ? msg : "");
		free(code);
		free(msg);
		rc = -EACCES;
	} else if (!ak || !sk || !tok || !exp || aws_parse_iso8601(exp) < 0) {
		aws_error_set(err, 0, AWS_ERR_MALFORMED,
			      "web identity: STS %s: malformed answer (credentials or Expiration "
			      "missing)",
			      url);
		rc = -EPROTO;
	} else {
		out->access_key = ak;
		out->secret_key = sk;
		out->token = tok;
		out->expiration = aws_parse_iso8601(exp);
		ak = sk = tok = NULL;
	}
	free(ak);
	wipe_free(sk);
	wipe_free(tok);
	free(exp);
	aws_http_resp_free(&resp);
	free(url);
	return rc;
}

static const char *imds_url(void)
{
	const char *u = env("EFSMT_IMDS_ENDPOINT");
	return u ? u : AWS_IMDS_DEFAULT;
}

static int imds_token(struct aws_creds_provider *p, struct aws_error *err)
{
	char ttl[80];
	struct aws_http_resp resp;
	time_t now = time(NULL);
	if (p->imds_token && now < p->imds_token_exp)
		return 0;
	wipe_free(p->imds_token);
	p->imds_token = NULL;
	snprintf(ttl, sizeof ttl, "X-aws-ec2-metadata-token-ttl-seconds: %d", AWS_IMDS_TOKEN_TTL_S);
	const char *hdrs[] = {ttl, NULL};
	struct aws_http_req req = {.method = "PUT", .path = "/latest/api/token", .headers = hdrs};
	int rc = aws_http_do(p->imds, &req, &resp, err);
	if (rc)
		return rc;
	if (resp.status != 200 || !resp.body_len) {
		aws_error_set(err, resp.status, AWS_ERR_CREDENTIALS,
			      "IMDS %s: token request answered HTTP %ld", imds_url(), resp.status);
		rc = -EACCES;
	} else {
		p->imds_token = strdup(trim(resp.body));
		p->imds_token_exp = now + AWS_IMDS_TOKEN_TTL_S - IMDS_TOKEN_MARGIN_S;
	}
	aws_http_resp_free(&resp);
	return rc;
}

/* GET a metadata path with the session token; a 401 (token expired or
 * revoked) fetches a new token once. body is malloc'd and trimmed. */
static int imds_get(struct aws_creds_provider *p, const char *path, char **body,
		    struct aws_error *err)
{
	struct aws_http_resp resp;
	if (!p->imds && !(p->imds = metadata_endpoint(imds_url())))
		return -ENOMEM;
	for (int round = 0; round < 2; round++) {
		int rc = imds_token(p, err);
		if (rc)
			return rc;
		char *h;
		if (asprintf(&h, "X-aws-ec2-metadata-token: %s", p->imds_token) < 0)
			return -ENOMEM;
		const char *hdrs[] = {h, NULL};
		struct aws_http_req req = {.method = "GET", .path = path, .headers = hdrs};
		rc = aws_http_do(p->imds, &req, &resp, err);
		wipe_free(h);
		if (rc)
			return rc;
		if (resp.status == 200) {
			*body = strdup(trim(resp.body));
			aws_http_resp_free(&resp);
			return *body ? 0 : -ENOMEM;
		}
		long st = resp.status;
		aws_http_resp_free(&resp);
		if (st == 401 && round == 0) {
			p->imds_token_exp = 0;
			continue;
		}
		aws_error_set(err, st, AWS_ERR_CREDENTIALS, "IMDS %s%s: HTTP %ld", imds_url(), path,
			      st);
		return -EACCES;
	}
	return -EACCES;
}

#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

static int from_imds(struct aws_creds_provider *p, struct aws_creds *out, struct aws_error *err)
{
	const char *off = env("AWS_EC2_METADATA_DISABLED");
	char *role = NULL, *path = NULL, *body = NULL;
	if (off && strcasecmp(off, "true") == 0)
		return -ENOENT;
	int rc = imds_get(p, IMDS_CREDS_PATH, &role, err);
	if (rc)
		return rc;
	role[strcspn(role, "\r\n")] = '\0';
	if (!*role || strchr(role, '/')) {
		aws_error_set(err, 0, AWS_ERR_CREDENTIALS, "IMDS: no instance role attached");
		rc = -EACCES;
	} else if (asprintf(&path, IMDS_CREDS_PATH "%s", role) < 0) {
		path = NULL;
		rc = -ENOMEM;
	} else if ((rc = imds_get(p, path, &body, err)) == 0) {
		rc = parse_creds_json(body, "IMDS credentials", out, err);
	}
	free(role);
	free(path);
	wipe_free(body);
	snprintf(out->source, sizeof out->source, "imds");
	return rc;
}

/* ---- the chain ---- */

static int fresh(const struct aws_creds *c)
{
	return c->expiration == 0 || c->expiration - time(NULL) > AWS_CREDS_REFRESH_S;
}

static int resolve(struct aws_creds_provider *p, struct aws_error *err)
{
	struct aws_creds c = {0};
	int rc = -ENOENT;
	if (!env("AWS_PROFILE") && !p->profile)
		rc = from_env(&c);
	if (rc == -ENOENT)
		rc = from_web_identity(p, &c, err);
	if (rc == -ENOENT)
		rc = from_profile(p, &c);
	if (rc == -ENOENT)
		rc = from_ecs(p, &c, err);
	if (rc == -ENOENT)
		rc = from_imds(p, &c, err);
	if (rc == 0 && (!c.access_key || !c.secret_key))
		rc = -ENOMEM;
	if (rc) {
		int at_imds = strcmp(c.source, "imds") == 0;
		aws_creds_clear(&c);
		if (rc == -ENOENT)
			aws_error_set(err, 0, AWS_ERR_CREDENTIALS,
				      "no AWS credentials: none in the environment%s, web identity "
				      "(AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), profile %s "
				      "(AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, "
				      "AWS_CONFIG_FILE or ~/.aws/config), the ECS container "
				      "endpoint (AWS_CONTAINER_CREDENTIALS_*) or IMDS%s",
				      env("AWS_PROFILE") || p->profile ? " (skipped: a profile is named)"
								       : "",
				      profile_name(p),
				      env("AWS_EC2_METADATA_DISABLED") ? " (disabled)" : "");
		else if (at_imds) {
			/* IMDS is the last place: say where else it looked */
			char m[sizeof err->message];
			snprintf(m, sizeof m, "%s", err->message);
			snprintf(err->message, sizeof err->message,
				 "no AWS credentials in the environment, profile %.64s or ECS; "
				 "%.380s",
				 profile_name(p), m);
		}
		if (rc != -ENOENT && strcmp(err->code, AWS_ERR_MALFORMED) &&
			 strcmp(err->code, AWS_ERR_CREDENTIALS)) {
			/* a network error reaching the metadata service */
			snprintf(err->code, sizeof err->code, "%s", AWS_ERR_CREDENTIALS);
		}
		return -EACCES;
	}
	aws_creds_clear(&p->cached);
	p->cached = c;
	p->have = 1;
	return 0;
}

int aws_creds_get(struct aws_creds_provider *p, struct aws_creds *out, struct aws_error *err)
{
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	if (!p->have || !fresh(&p->cached))
		rc = resolve(p, err);
	if (rc == 0)
		rc = creds_copy(out, &p->cached);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

char *aws_region_resolve(struct aws_creds_provider *p, struct aws_error *err)
{
	const char *r = env("AWS_REGION");
	char *v;
	if (!r)
		r = env("AWS_DEFAULT_REGION");
	if (r)
		return strdup(r);
	if ((v = profile_get(p, "region")))
		return v;
	pthread_mutex_lock(&p->lock);
	int rc = imds_get(p, "/latest/meta-data/placement/region", &v, err);
	pthread_mutex_unlock(&p->lock);
	if (rc) {
		size_t l = strlen(err->message);
		snprintf(err->message + l, sizeof err->message - l,
			 " (set AWS_REGION, or region in the config file)");
		return NULL;
	}
	return v;
}
