#include "ctl_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define CTL_READ_CHUNK (64 * 1024) /* bytes read per call */
#define CTL_NAME_MAX 48            /* characters of the name part of a socket */
#define CTL_FIELD_MAX 4096         /* bytes in one string field (uri, id) */

static const char *const cmd_names[CTL_NCMDS] = {
	[CTL_STATUS] = "status",	       [CTL_TARGETS] = "targets",
	[CTL_SET_TARGETS] = "set-targets",     [CTL_ADD_TARGET] = "add-target",
	[CTL_REMOVE_TARGET] = "remove-target", [CTL_STATS] = "stats",
	[CTL_METRICS] = "metrics",	       [CTL_HEALTH] = "health",
	[CTL_RPCS] = "rpcs",
};

const char *ctl_cmd_name(enum ctl_cmd cmd)
{
	return (unsigned)cmd < CTL_NCMDS ? cmd_names[cmd] : "?";
}

#define CTL_ECHO_MAX 64 /* characters of a client's string quoted in an error */

/* A client's string fit to quote in a one-line error: control characters
 * become '?', and it is cut to CTL_ECHO_MAX. */
static const char *echo(const char *in, char out[CTL_ECHO_MAX + 1])
{
	size_t i = 0;

	for (; in[i] && i < CTL_ECHO_MAX; i++)
		out[i] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
	out[i] = '\0';
	return out;
}

/* The fields each command takes besides "cmd". */
static const char *const cmd_fields[CTL_NCMDS][3] = {
	[CTL_SET_TARGETS] = {"generation", "targets", NULL},
	[CTL_ADD_TARGET] = {"uri", "id", NULL},
	[CTL_REMOVE_TARGET] = {"id", NULL},
};

static int field_allowed(enum ctl_cmd cmd, const char *key)
{
	for (const char *const *f = cmd_fields[cmd]; *f; f++)
		if (strcmp(*f, key) == 0)
			return 1;
	return 0;
}

/* A non-empty string without control characters, at most CTL_FIELD_MAX. */
static const char *string_field(json_t *root, const char *key, int required, char *err,
				size_t errlen)
{
	json_t *v = json_object_get(root, key);

	if (!v) {
		if (required)
			snprintf(err, errlen, "\"%s\" is missing", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"%s\" must be a string", key);
		return NULL;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > CTL_FIELD_MAX || strlen(s) != n) {
		snprintf(err, errlen, "\"%s\" must be 1-%d bytes without NUL", key, CTL_FIELD_MAX);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(err, errlen, "\"%s\" must not contain control characters", key);
			return NULL;
		}
	return s;
}

/* Shape only: each entry a string or {"uri":S[,"id":S]}; the daemon parses
 * the URIs (target_parse_list) because only it knows the backends. */
static int check_targets(json_t *list, char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	char es[256];

	if (!json_is_array(list)) {
		snprintf(err, errlen, "\"targets\" must be a list");
		return -1;
	}
	if (json_array_size(list) == 0 || json_array_size(list) > CTL_MAX_TARGETS) {
		snprintf(err, errlen, "\"targets\" must hold 1-%d targets", CTL_MAX_TARGETS);
		return -1;
	}
	json_array_foreach(list, i, e)
	{
		if (json_is_string(e))
			continue;
		if (!json_is_object(e)) {
			snprintf(err, errlen, "target %zu: must be a URI string or an object", i);
			return -1;
		}
		const char *key;
		json_t *v;
		char ek[CTL_ECHO_MAX + 1];
		json_object_foreach(e, key, v)
		{
			if (strcmp(key, "uri") != 0 && strcmp(key, "id") != 0) {
				snprintf(err, errlen,
					 "target %zu: unexpected field \"%s\" (a target is "
					 "{\"id\":STRING,\"uri\":STRING})",
					 i, echo(key, ek));
				return -1;
			}
		}
		if (!string_field(e, "uri", 1, es, sizeof(es)) ||
		    (json_object_get(e, "id") && !string_field(e, "id", 1, es, sizeof(es)))) {
			snprintf(err, errlen, "target %zu: %s", i, es);
			return -1;
		}
	}
	return 0;
}

static int parse_fields(struct ctl_request *req, char *err, size_t errlen)
{
	json_t *root = req->root;

	switch (req->cmd) {
	case CTL_SET_TARGETS: {
		json_t *g = json_object_get(root, "generation");
		if (!g) {
			snprintf(err, errlen, "\"generation\" is missing");
			return -1;
		}
		if (!json_is_integer(g) || json_integer_value(g) < 0) {
			snprintf(err, errlen, "\"generation\" must be a whole number >= 0");
			return -1;
		}
		req->generation = (uint64_t)json_integer_value(g);
		req->targets = json_object_get(root, "targets");
		if (!req->targets) {
			snprintf(err, errlen, "\"targets\" is missing");
			return -1;
		}
		return check_targets(req->targets, err, errlen);
	}
	case CTL_ADD_TARGET:
		req->uri = string_field(root, "uri", 1, err, errlen);
		if (!req->uri)
			return -1;
		if (json_object_get(root, "id")) {
			req->id = string_field(root, "id", 1, err, errlen);
			if (!req->id)
				return -1;
		}
		return 0;
	case CTL_REMOVE_TARGET:
		req->id = string_field(root, "id", 1, err, errlen);
		return req->id ? 0 : -1;
	default:
		return 0;
	}
}

static int parse_request(const char *buf, size_t len, struct ctl_request *req, char *err,
			 size_t errlen);

int ctl_parse_request(const char *buf, size_t len, struct ctl_request *req, char *err,
		      size_t errlen)
{
	int rc = parse_request(buf, len, req, err, errlen);

	/* jansson quotes the input near a syntax error: keep it one line. */
	for (char *p = err; rc < 0 && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return rc;
}

static int parse_request(const char *buf, size_t len, struct ctl_request *req, char *err,
			 size_t errlen)
{
	json_error_t je;

	memset(req, 0, sizeof(*req));
	if (len >= CTL_MAX_LINE) {
		snprintf(err, errlen, "request larger than %d bytes", CTL_MAX_LINE);
		return -1;
	}
	req->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!req->root) {
		snprintf(err, errlen, "malformed JSON at byte %d: %s", je.position, je.text);
		return -1;
	}
	if (!json_is_object(req->root)) {
		snprintf(err, errlen, "a request must be a JSON object");
		goto fail;
	}
	json_t *c = json_object_get(req->root, "cmd");
	if (!c || !json_is_string(c)) {
		snprintf(err, errlen, "\"cmd\" must be a string naming a command");
		goto fail;
	}
	const char *name = json_string_value(c);
	char ek[CTL_ECHO_MAX + 1];
	req->cmd = CTL_NCMDS;
	for (int i = 0; i < CTL_NCMDS; i++)
		if (strlen(name) == json_string_length(c) && strcmp(name, cmd_names[i]) == 0)
			req->cmd = (enum ctl_cmd)i;
	if (req->cmd == CTL_NCMDS) {
		snprintf(err, errlen,
			 "unknown command \"%s\" (status, targets, set-targets, add-target, "
			 "remove-target, stats, rpcs, metrics, health)",
			 echo(name, ek));
		goto fail;
	}
	const char *key;
	json_t *v;
	json_object_foreach(req->root, key, v)
	{
		if (strcmp(key, "cmd") != 0 && !field_allowed(req->cmd, key)) {
			snprintf(err, errlen, "%s: unexpected field \"%s\"", name, echo(key, ek));
			goto fail;
		}
	}
	char es[400];
	if (parse_fields(req, es, sizeof(es)) < 0) {
		snprintf(err, errlen, "%s: %s", name, es);
		goto fail;
	}
	return 0;
fail:
	ctl_request_free(req);
	return -1;
}

void ctl_request_free(struct ctl_request *req)
{
	json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

static char *dump_line(json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	char *line = NULL;

	if (s) {
		size_t n = strlen(s);
		line = malloc(n + 2);
		if (line) {
			memcpy(line, s, n);
			line[n] = '\n';
			line[n + 1] = '\0';
		}
	}
	free(s);
	json_decref(obj);
	return line;
}

char *ctl_answer_ok(json_t *obj)
{
	/* "ok" first, so that a reader of the raw line sees the outcome first. */
	json_t *a = json_pack("{s:b}", "ok", 1);

	if (!a || (obj && json_object_update(a, obj) < 0)) {
		json_decref(a);
		a = NULL;
	}
	json_decref(obj);
	return a ? dump_line(a) : NULL;
}

char *ctl_answer_error(const char *msg)
{
	return dump_line(json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

long ctl_lb_read(struct ctl_linebuf *lb, int fd)
{
	if (lb->used) {
		memmove(lb->buf, lb->buf + lb->used, lb->len - lb->used);
		lb->len -= lb->used;
		lb->used = 0;
	}
	/* Never hold more than one line's worth: the caller refuses the line
	 * once it reaches CTL_MAX_LINE bytes without a newline. */
	size_t want = lb->len + CTL_READ_CHUNK;
	if (want > CTL_MAX_LINE)
		want = CTL_MAX_LINE;
	if (want <= lb->len)
		return -ENOBUFS;
	if (lb->cap < want + 1) {
		/* Doubling: few reallocations on the way to a large line. */
		size_t cap = lb->cap ? lb->cap * 2 : CTL_READ_CHUNK + 1;
		if (cap < want + 1)
			cap = want + 1;
		if (cap > CTL_MAX_LINE + 1)
			cap = CTL_MAX_LINE + 1;
		char *n = realloc(lb->buf, cap);
		if (!n)
			return -ENOMEM;
		lb->buf = n;
		lb->cap = cap;
	}
	ssize_t r = read(fd, lb->buf + lb->len, want - lb->len);
	if (r < 0)
		return -errno;
	lb->len += (size_t)r;
	return r;
}

int ctl_lb_next(struct ctl_linebuf *lb, char **line, size_t *len)
{
	if (lb->used) {
		memmove(lb->buf, lb->buf + lb->used, lb->len - lb->used);
		lb->len -= lb->used;
		lb->used = 0;
	}
	char *nl = lb->len ? memchr(lb->buf, '\n', lb->len) : NULL;
	if (!nl)
		return lb->len >= CTL_MAX_LINE ? -1 : 0;
	*nl = '\0';
	*line = lb->buf;
	*len = (size_t)(nl - lb->buf);
	lb->used = *len + 1;
	return 1;
}

void ctl_lb_free(struct ctl_linebuf *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}

int ctl_socket_dir(char *out, size_t outlen)
{
	int n;

	if (geteuid() == 0) {
		n = snprintf(out, outlen, "%s", CTL_SOCKET_DIR_ROOT);
	} else {
		const char *xdg = getenv("XDG_RUNTIME_DIR");
		if (xdg && xdg[0] == '/')
			n = snprintf(out, outlen, "%s/efsmt", xdg);
		else
			n = snprintf(out, outlen, "/tmp/efsmt-%u", (unsigned)geteuid());
	}
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int ctl_default_socket(const char *fs_id, const char *mountpoint, char *out, size_t outlen)
{
	char dir[256], name[CTL_NAME_MAX + 1];
	size_t i = 0;

	if (ctl_socket_dir(dir, sizeof(dir)) < 0)
		return -1;
	for (const char *p = fs_id; *p && i < CTL_NAME_MAX; p++, i++) {
		char c = *p;
		int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		name[i] = keep ? c : '_';
	}
	name[i] = '\0';
	/* The hash covers both parts: two mounts of one file system, or two
	 * labels that clean to the same name, never share a socket. */
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return -1;
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, fs_id, strlen(fs_id) + 1);
	XXH3_64bits_update(st, mountpoint, strlen(mountpoint));
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	int n = snprintf(out, outlen, "%s/%s-%016" PRIx64 ".sock", dir, name, h);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
