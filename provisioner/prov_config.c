#include "prov_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

#define MAX_LINE 4096

enum kind { K_STR, K_LIST, K_SECS, K_COUNT, K_U64, K_BOOL, K_FRAC, K_LOGFMT };

struct setting {
	const char *key;
	enum kind kind;
	size_t off;
	long min, max; /* K_SECS, K_COUNT */
	const char *def;
	const char *help;
};

#define OFF(f) offsetof(struct prov_config, f)

/* The one table: defaults, limits and the help text (also the man page's). */
static const struct setting settings[] = {
    {"file_system", K_STR, OFF(file_system), 0, 0, NULL,
     "the EFS file system id (fs-0123456789abcdef0); needed by once, run, describe, follow"},
    {"region", K_STR, OFF(region), 0, 0, NULL,
     "AWS region (default: AWS_REGION, the profile, or the instance's)"},
    {"endpoint_url", K_STR, OFF(endpoint_url), 0, 0, NULL,
     "send EFS and SSM calls here instead of AWS (a VPC endpoint, a test server)"},
    {"mountpoint", K_STR, OFF(mountpoint), 0, 0, NULL,
     "the efsmt mount to count under (default: the local efsmt of file_system)"},
    {"watch", K_STR, OFF(watch), 0, 0, "data",
     "the directory whose files are counted; relative to mountpoint"},
    {"interval", K_SECS, OFF(interval_s), 1, 86400 * 7, "300", "seconds between cycles of run"},
    {"follow_interval", K_SECS, OFF(follow_interval_s), 1, 86400, "60",
     "seconds between polls of follow"},
    {"files_per_target", K_U64, OFF(files_per_target), 1, 0, "100000",
     "files per mount target: want ceil(files / this) targets"},
    {"min_targets", K_COUNT, OFF(min_targets), 1, 1000, "1", "never fewer mount targets"},
    {"max_targets", K_COUNT, OFF(max_targets), 0, 1000, "0",
     "never more (0: one per candidate subnet)"},
    {"subnets", K_LIST, OFF(subnets), 0, 0, NULL,
     "candidate subnets in the order to use them, one per AZ (subnet-a subnet-b ...)"},
    {"security_groups", K_LIST, OFF(security_groups), 0, 5, NULL,
     "security groups for new mount targets (up to 5; default: the VPC's default)"},
    {"cooldown", K_SECS, OFF(cooldown_s), 0, 86400 * 7, "600",
     "seconds after a change before the next one"},
    {"scale_in", K_BOOL, OFF(scale_in), 0, 0, "false",
     "delete mount targets when the count falls (default: never)"},
    {"scale_in_below", K_FRAC, OFF(scale_in_below), 0, 0, "0.8",
     "scale in when files < this x (targets - 1) x files_per_target"},
    {"create_timeout", K_SECS, OFF(create_timeout_s), 1, 3600, "300",
     "seconds to wait for a new mount target to become available"},
    {"retry_backoff", K_SECS, OFF(retry_backoff_s), 0, 86400, "300",
     "seconds without changes after a failed one; doubles per failure up to 1 hour"},
    {"state_file", K_STR, OFF(state_file), 0, 0, "/var/lib/efsmt/targets.json",
     "the published target list (efsmt -o targets_file= reads it at start)"},
    {"socket_dir", K_STR, OFF(socket_dir), 0, 0, NULL,
     "where efsmt control sockets are found (default " CTL_SOCKET_DIR_ROOT " for root)"},
    {"sockets", K_LIST, OFF(sockets), 0, 0, NULL,
     "push to exactly these control sockets instead of scanning socket_dir"},
    {"uri_template", K_STR, OFF(uri_template), 0, 0, "nfs://{ip}",
     "a mount target's efsmt URI; fields {ip} {id} {az} {subnet}"},
    {"ssm_parameter", K_STR, OFF(ssm_parameter), 0, 0, NULL,
     "publish the list to this SSM parameter for followers (e.g. /efs-mount-autoscaling/mount-targets)"},
    {"count_threads", K_COUNT, OFF(count_threads), 0, 256, "0",
     "threads of the file count (0: the default)"},
    {"log_format", K_LOGFMT, OFF(log_format), 0, 0, "text", "text or json (one object per line)"},
    {"dry_run", K_BOOL, OFF(dry_run), 0, 0, "false",
     "decide and log, but create, delete, write and push nothing"},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting *find(const char *key)
{
	char k[64];
	size_t i;
	for (i = 0; key[i] && i < sizeof(k) - 1; i++)
		k[i] = key[i] == '-' ? '_' : key[i];
	k[i] = 0;
	if (key[i])
		return NULL;
	for (size_t j = 0; j < NSETTINGS; j++)
		if (strcmp(settings[j].key, k) == 0)
			return &settings[j];
	return NULL;
}

int prov_config_known(const char *key, int *is_bool)
{
	const struct setting *s = find(key);
	if (s && is_bool)
		*is_bool = s->kind == K_BOOL;
	return s != NULL;
}

static void list_clear(struct prov_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static int parse_list(const struct setting *s, struct prov_list *l, const char *v, char *err,
		      size_t errlen)
{
	char *copy = strdup(v), *save = NULL;
	size_t max = s->max ? (size_t)s->max : PROV_MAX_LIST;
	list_clear(l);
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (l->n == max) {
			snprintf(err, errlen, "%s: at most %zu entries", s->key, max);
			free(copy);
			return -1;
		}
		l->v[l->n++] = strdup(t);
	}
	free(copy);
	return 0;
}

static int parse_long(const struct setting *s, const char *v, long *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < s->min || (s->max && x > s->max)) {
		if (s->max)
			snprintf(err, errlen, "%s: '%s' is not a whole number from %ld to %ld", s->key,
				 v, s->min, s->max);
		else
			snprintf(err, errlen, "%s: '%s' is not a whole number >= %ld", s->key, v,
				 s->min);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static int has_ctl(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 1;
	return 0;
}

int prov_config_set(struct prov_config *c, const char *key, const char *value, char *err,
		    size_t errlen)
{
	const struct setting *s = find(key);
	void *p;
	if (!s) {
		snprintf(err, errlen, "unknown setting '%s' (see --help)", key);
		return -1;
	}
	if (!value || has_ctl(value)) {
		snprintf(err, errlen, "%s: needs a value without control characters", s->key);
		return -1;
	}
	p = (char *)c + s->off;
	switch (s->kind) {
	case K_STR:
		free(*(char **)p);
		*(char **)p = *value ? strdup(value) : NULL;
		return 0;
	case K_LIST:
		return parse_list(s, p, value, err, errlen);
	case K_SECS:
	case K_COUNT:
		return parse_long(s, value, p, err, errlen);
	case K_U64: {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(value, &end, 10);
		if (errno || end == value || *end || *value == '-' || x < (unsigned long long)s->min) {
			snprintf(err, errlen, "%s: '%s' is not a whole number >= %ld", s->key, value,
				 s->min);
			return -1;
		}
		*(uint64_t *)p = x;
		return 0;
	}
	case K_BOOL:
		if (parse_bool(value, p) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not true or false", s->key, value);
		return -1;
	case K_FRAC: {
		char *end;
		double x = strtod(value, &end);
		if (end == value || *end || !(x > 0 && x <= 1)) {
			snprintf(err, errlen, "%s: '%s' is not a number in (0, 1]", s->key, value);
			return -1;
		}
		*(double *)p = x;
		return 0;
	}
	case K_LOGFMT:
		if (strcmp(value, "text") == 0 || strcmp(value, "json") == 0) {
			*(int *)p = strcmp(value, "json") == 0 ? PROV_LOG_JSON : PROV_LOG_TEXT;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not text or json", s->key, value);
		return -1;
	}
	return -1;
}

void prov_config_init(struct prov_config *c)
{
	char err[256];
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].def)
			prov_config_set(c, settings[i].key, settings[i].def, err, sizeof(err));
}

void prov_config_free(struct prov_config *c)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		void *p = (char *)c + settings[i].off;
		if (settings[i].kind == K_STR)
			free(*(char **)p);
		else if (settings[i].kind == K_LIST)
			list_clear(p);
	}
	memset(c, 0, sizeof(*c));
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

int prov_config_load(struct prov_config *c, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	char line[MAX_LINE], es[400];
	int lineno = 0, rc = 0;
	if (!f) {
		snprintf(err, errlen, "config %s: %s", file, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", file, lineno,
				 MAX_LINE - 2);
			rc = -1;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'key = value', got '%s'", file, lineno,
				 s);
			rc = -1;
			break;
		}
		*eq = 0;
		if (prov_config_set(c, trim(s), trim(eq + 1), es, sizeof(es)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", file, lineno, es);
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

static int valid_id(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(s, prefix, n) != 0 || !s[n] || strlen(s) > n + 40)
		return 0;
	for (s += n; *s; s++)
		if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'z'))
			return 0;
	return 1;
}

int prov_config_check(const struct prov_config *c, int need_aws, char *err, size_t errlen)
{
	char uri[256];
	if (need_aws && !c->file_system) {
		snprintf(err, errlen, "file_system: not set (--file-system fs-... or in the config file)");
		return -1;
	}
	if (c->file_system && !valid_id(c->file_system, "fs-")) {
		snprintf(err, errlen, "file_system: '%s' is not a file system id (fs-0123abcd...)",
			 c->file_system);
		return -1;
	}
	for (size_t i = 0; i < c->subnets.n; i++) {
		if (!valid_id(c->subnets.v[i], "subnet-")) {
			snprintf(err, errlen, "subnets: '%s' is not a subnet id (subnet-...)",
				 c->subnets.v[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->subnets.v[i], c->subnets.v[j]) == 0) {
				snprintf(err, errlen, "subnets: '%s' is listed twice", c->subnets.v[i]);
				return -1;
			}
	}
	for (size_t i = 0; i < c->security_groups.n; i++)
		if (!valid_id(c->security_groups.v[i], "sg-")) {
			snprintf(err, errlen, "security_groups: '%s' is not a security group id (sg-...)",
				 c->security_groups.v[i]);
			return -1;
		}
	if (c->max_targets && c->max_targets < c->min_targets) {
		snprintf(err, errlen, "max_targets: %ld is below min_targets %ld", c->max_targets,
			 c->min_targets);
		return -1;
	}
	if (prov_uri_expand(c->uri_template, "10.0.0.1", "fsmt-1", "az", "subnet-1", uri,
			    sizeof(uri)) < 0 ||
	    (!strstr(c->uri_template, "{ip}") && !strstr(c->uri_template, "{id}"))) {
		snprintf(err, errlen,
			 "uri_template: '%s' must name {ip} or {id} and only {ip} {id} {az} {subnet}",
			 c->uri_template);
		return -1;
	}
	if (!c->state_file || c->state_file[0] != '/') {
		snprintf(err, errlen, "state_file: give an absolute path");
		return -1;
	}
	if (c->endpoint_url && strncmp(c->endpoint_url, "https://", 8) != 0 &&
	    strncmp(c->endpoint_url, "http://", 7) != 0) {
		snprintf(err, errlen, "endpoint_url: '%s' is not an http:// or https:// URL",
			 c->endpoint_url);
		return -1;
	}
	if (c->ssm_parameter && c->ssm_parameter[0] != '/') {
		snprintf(err, errlen, "ssm_parameter: '%s' must start with '/'", c->ssm_parameter);
		return -1;
	}
	return 0;
}

static void value_str(const struct prov_config *c, const struct setting *s, char *out, size_t n)
{
	const void *p = (const char *)c + s->off;
	out[0] = 0;
	switch (s->kind) {
	case K_STR:
		snprintf(out, n, "%s", *(char *const *)p ? *(char *const *)p : "");
		break;
	case K_LIST: {
		const struct prov_list *l = p;
		size_t used = 0;
		for (size_t i = 0; i < l->n && used < n; i++)
			used += (size_t)snprintf(out + used, n - used, "%s%s", i ? " " : "", l->v[i]);
		break;
	}
	case K_SECS:
	case K_COUNT:
		snprintf(out, n, "%ld", *(const long *)p);
		break;
	case K_U64:
		snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)p);
		break;
	case K_BOOL:
		snprintf(out, n, "%s", *(const int *)p ? "true" : "false");
		break;
	case K_FRAC:
		snprintf(out, n, "%g", *(const double *)p);
		break;
	case K_LOGFMT:
		snprintf(out, n, "%s", *(const int *)p == PROV_LOG_JSON ? "json" : "text");
		break;
	}
}

void prov_config_print(const struct prov_config *c, FILE *f)
{
	char v[2048];
	for (size_t i = 0; i < NSETTINGS; i++) {
		value_str(c, &settings[i], v, sizeof(v));
		fprintf(f, "# %s\n%s%s = %s\n\n", settings[i].help, v[0] ? "" : "#", settings[i].key, v);
	}
}

void prov_config_help(FILE *f)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		char flag[64];
		size_t j;
		for (j = 0; settings[i].key[j] && j < sizeof(flag) - 1; j++)
			flag[j] = settings[i].key[j] == '_' ? '-' : settings[i].key[j];
		flag[j] = 0;
		fprintf(f, "  --%-18s %s%s%s%s\n", flag, settings[i].help,
			settings[i].def ? " [" : "", settings[i].def ? settings[i].def : "",
			settings[i].def ? "]" : "");
	}
}

int prov_uri_expand(const char *tmpl, const char *ip, const char *id, const char *az,
		    const char *subnet, char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *p = tmpl; *p;) {
		const char *v = NULL;
		size_t skip = 1;
		if (*p == '{') {
			static const char *const names[] = {"{ip}", "{id}", "{az}", "{subnet}"};
			const char *vals[] = {ip, id, az, subnet};
			for (int i = 0; i < 4; i++)
				if (strncmp(p, names[i], strlen(names[i])) == 0) {
					v = vals[i] ? vals[i] : "";
					skip = strlen(names[i]);
				}
			if (!v)
				return -1;
		}
		size_t n = v ? strlen(v) : 1;
		if (o + n >= outlen)
			return -1;
		memcpy(out + o, v ? v : p, n);
		o += n;
		p += skip;
	}
	out[o] = 0;
	return 0;
}
