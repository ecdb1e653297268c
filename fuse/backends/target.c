#include "target.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_kernel.h"
#include "backends/nfs/backend_nfs.h"
#include "nfs/nfs4.h"
#include "base/epoch.h"
#include "base/hrw.h"

#define TARGET_ID_MAX 256

static const struct backend_ops *const backends[] = {&backend_dir_ops, &backend_nfs_ops,
						     &backend_kernel_ops};

/* Every live target, so that the control socket can show draining ones
 * without holding a reference (which would keep them from disconnecting). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct target *registry;

const struct backend_ops *backend_for_scheme(const char *scheme)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->scheme, scheme) == 0)
			return backends[i];
	return NULL;
}

/* Canonical absolute path: no empty or "." components, no trailing slash;
 * ".." is refused so that two spellings of one directory cannot hide. */
static char *normalize_path(const char *in, char *err, size_t errlen)
{
	size_t len = strlen(in);
	char *out = malloc(len + 2);
	size_t o = 0;

	if (!out) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (const char *p = in; *p;) {
		const char *q = p;
		while (*q && *q != '/')
			q++;
		size_t n = (size_t)(q - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(err, errlen, "'..' is not allowed in a target path");
			free(out);
			return NULL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = *q ? q + 1 : q;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

int path_has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return 1;
	return 0;
}

static int spec_set(struct target_spec *out, const char *scheme, const char *path,
		    char *err, size_t errlen)
{
	char *norm = normalize_path(path, err, errlen);

	if (!norm)
		return -1;
	size_t ulen = strlen(scheme) + 3 + strlen(norm) + 1;
	out->uri = malloc(ulen);
	out->scheme = strdup(scheme);
	out->path = norm;
	out->id = NULL;
	if (!out->uri || !out->scheme) {
		target_spec_free(out);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(out->uri, ulen, "%s://%s", scheme, norm);
	return 0;
}

/* nfs://HOST[:PORT][/PATH] or a bare HOST: canonical "nfs://HOST[:PORT]/PATH",
 * the port only when it is not 2049. */
static int parse_nfs(const char *in, struct target_spec *out, char *err, size_t errlen)
{
	char host[256], path[1024];
	uint16_t port;

	if (nfs_parse_uri(in, host, sizeof(host), &port, path, sizeof(path)) < 0) {
		snprintf(err, errlen,
			 "target '%s': not a directory path nor an NFS address "
			 "(nfs://HOST[:PORT][/PATH] or dir:///PATH)",
			 in);
		return -1;
	}
	if (path_has_dotdot(path)) {
		snprintf(err, errlen, "target '%s': '..' is not allowed in a target path", in);
		return -1;
	}
	int v6 = strchr(host, ':') != NULL;
	char portbuf[8] = "";
	if (port != NFS_DEFAULT_PORT)
		snprintf(portbuf, sizeof(portbuf), ":%u", port);
	size_t ulen = strlen(host) + strlen(path) + sizeof(portbuf) + 16;
	out->uri = malloc(ulen);
	out->scheme = strdup("nfs");
	out->path = strdup(path);
	if (!out->uri || !out->scheme || !out->path) {
		target_spec_free(out);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(out->uri, ulen, "nfs://%s%s%s%s%s", v6 ? "[" : "", host, v6 ? "]" : "", portbuf,
		 path);
	return 0;
}

/* kernel://IP[:PORT][/PATH]: as nfs://, canonical "kernel://IP[:PORT]/PATH";
 * the kernel mounts addresses, so the host must be one. */
static int parse_kernel(const char *rest, struct target_spec *out, char *err, size_t errlen)
{
	char nfsuri[1200];
	struct in6_addr a6;
	struct in_addr a4;

	char es[400];

	snprintf(nfsuri, sizeof(nfsuri), "nfs://%s", rest);
	if (parse_nfs(nfsuri, out, es, sizeof(es)) < 0) {
		snprintf(err, errlen, "target 'kernel://%s': %s", rest,
			 strstr(es, "'..'") ? "'..' is not allowed in a target path"
					    : "not kernel://IP[:PORT][/PATH]");
		return -1;
	}
	/* "nfs://" -> "kernel://", and the host checked */
	const char *h = out->uri + strlen("nfs://");
	char host[256];
	if (*h == '[') {
		size_t n = strcspn(h + 1, "]");
		snprintf(host, sizeof(host), "%.*s", (int)n, h + 1);
	} else {
		size_t n = strcspn(h, ":/");
		snprintf(host, sizeof(host), "%.*s", (int)n, h);
	}
	if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1) {
		snprintf(err, errlen,
			 "target 'kernel://%s': '%s' is not an IP address (kernel:// mounts an "
			 "address: give the mount target's IP)",
			 rest, host);
		target_spec_free(out);
		return -1;
	}
	size_t ulen = strlen(out->uri) + sizeof("kernel");
	char *uri = malloc(ulen);
	char *scheme = strdup("kernel");
	if (!uri || !scheme) {
		free(uri);
		free(scheme);
		target_spec_free(out);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(uri, ulen, "kernel://%s", h);
	free(out->uri);
	free(out->scheme);
	out->uri = uri;
	out->scheme = scheme;
	return 0;
}

int target_parse_uri(const char *in, struct target_spec *out, char *err, size_t errlen)
{
	char es[200] = "";

	memset(out, 0, sizeof(*out));
	if (!in || !*in) {
		snprintf(err, errlen, "empty target (use target=dir:///path)");
		return -1;
	}
	if (in[0] == '/') {
		if (spec_set(out, "dir", in, es, sizeof(es)) < 0)
			goto bad;
		return 0;
	}
	const char *sep = strstr(in, "://");
	if (!sep && strchr(in, '/')) {
		snprintf(err, errlen,
			 "target '%s': a relative path? give an absolute directory (/abs/path) or "
			 "nfs://HOST/PATH",
			 in);
		return -1;
	}
	if (!sep)
		return parse_nfs(in, out, err, errlen); /* a bare host or IP */
	char scheme[16];
	size_t slen = (size_t)(sep - in);
	if (slen == 0 || slen >= sizeof(scheme)) {
		snprintf(err, errlen, "target '%s': bad URI scheme", in);
		return -1;
	}
	memcpy(scheme, in, slen);
	scheme[slen] = '\0';
	for (char *c = scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!backend_for_scheme(scheme)) {
		snprintf(err, errlen,
			 "target '%s': unsupported scheme '%s' (this build supports: dir, nfs, kernel)", in,
			 scheme);
		return -1;
	}
	const char *rest = sep + 3;
	if (strcmp(scheme, "dir") == 0) {
		if (rest[0] != '/') {
			snprintf(es, sizeof(es), "a dir URI has no host part: write dir:///abs/path");
			goto bad;
		}
		if (spec_set(out, "dir", rest, es, sizeof(es)) < 0)
			goto bad;
		return 0;
	}
	if (strcmp(scheme, "nfs") == 0)
		return parse_nfs(in, out, err, errlen);
	if (strcmp(scheme, "kernel") == 0)
		return parse_kernel(rest, out, err, errlen);
	snprintf(es, sizeof(es), "no parser for scheme '%s'", scheme);
bad:
	snprintf(err, errlen, "target '%s': %s", in, es);
	return -1;
}

static int id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > TARGET_ID_MAX)
		return 0;
	for (const char *c = id; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
			return 0;
	return 1;
}

static int parse_entry(json_t *e, size_t idx, struct target_spec *s, char *err, size_t errlen)
{
	const char *uri = NULL, *id = NULL;
	char es[400];

	if (json_is_string(e)) {
		uri = json_string_value(e);
	} else if (json_is_object(e)) {
		const char *key;
		json_t *v;
		json_object_foreach(e, key, v)
		{
			if (strcmp(key, "uri") == 0 && json_is_string(v))
				uri = json_string_value(v);
			else if (strcmp(key, "id") == 0 && json_is_string(v))
				id = json_string_value(v);
			else {
				snprintf(err, errlen,
					 "target %zu: unexpected field \"%s\" (a target is "
					 "{\"id\":STRING,\"uri\":STRING})",
					 idx, key);
				return -1;
			}
		}
		if (!uri) {
			snprintf(err, errlen, "target %zu: \"uri\" is missing", idx);
			return -1;
		}
	} else {
		snprintf(err, errlen, "target %zu: must be a URI string or an object", idx);
		return -1;
	}
	if (target_parse_uri(uri, s, es, sizeof(es)) < 0) {
		snprintf(err, errlen, "target %zu: %s", idx, es);
		return -1;
	}
	if (id) {
		if (!id_valid(id)) {
			snprintf(err, errlen, "target %zu: id must be 1-%d characters without spaces",
				 idx, TARGET_ID_MAX);
			target_spec_free(s);
			return -1;
		}
		s->id = strdup(id);
	}
	return 0;
}

int target_parse_list(json_t *list, struct target_spec **specs, size_t *n, char *err,
		      size_t errlen)
{
	*specs = NULL;
	*n = 0;
	if (!json_is_array(list)) {
		snprintf(err, errlen, "expected a JSON list of targets or {\"targets\":[...]}");
		return -1;
	}
	size_t cnt = json_array_size(list);
	*specs = calloc(cnt ? cnt : 1, sizeof(**specs));
	if (!*specs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (parse_entry(json_array_get(list, i), i, &(*specs)[i], err, errlen) < 0) {
			for (size_t j = 0; j < i; j++)
				target_spec_free(&(*specs)[j]);
			free(*specs);
			*specs = NULL;
			return -1;
		}
	}
	*n = cnt;
	return 0;
}

int target_parse_file(const char *file, struct target_spec **specs, size_t *n,
		      uint64_t *generation, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_load_file(file, 0, &je);
	json_t *list = root;
	char es[512];

	*specs = NULL;
	*n = 0;
	*generation = 0;
	if (!root) {
		snprintf(err, errlen, "targets file %s: line %d: %s", file, je.line, je.text);
		return -1;
	}
	if (json_is_object(root)) {
		json_t *g = json_object_get(root, "generation");
		list = json_object_get(root, "targets");
		if (g && (!json_is_integer(g) || json_integer_value(g) < 0)) {
			snprintf(err, errlen, "targets file %s: \"generation\" must be a number >= 0",
				 file);
			goto fail;
		}
		if (g)
			*generation = (uint64_t)json_integer_value(g);
	}
	if (target_parse_list(list, specs, n, es, sizeof(es)) < 0) {
		snprintf(err, errlen, "targets file %s: %s", file, es);
		goto fail;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

void target_spec_free(struct target_spec *s)
{
	free(s->id);
	free(s->uri);
	free(s->scheme);
	free(s->path);
	memset(s, 0, sizeof(*s));
}

struct target *target_open(const struct target_spec *spec, const char *subdir, char *err,
			   size_t errlen)
{
	struct target *t = calloc(1, sizeof(*t));
	char es[400] = "";

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->uri = strdup(spec->uri);
	t->id = strdup(spec->id ? spec->id : spec->uri);
	t->path = strdup(spec->path);
	t->subdir = strdup(subdir ? subdir : "");
	t->ops = backend_for_scheme(spec->scheme);
	atomic_init(&t->refs, 1);
	if (!t->uri || !t->id || !t->path || !t->subdir || !t->ops) {
		snprintf(err, errlen, "target %s: cannot set up", spec->uri);
		goto fail;
	}
	t->seed = route_seed(t->id);
	if (t->ops->attach(t, es, sizeof(es)) < 0) {
		snprintf(err, errlen, "target %s: %s", t->uri, es);
		goto fail;
	}
	atomic_init(&t->state, TARGET_UP);
	pthread_mutex_lock(&registry_lock);
	t->reg_next = registry;
	registry = t;
	pthread_mutex_unlock(&registry_lock);
	return t;
fail:
	free(t->uri);
	free(t->id);
	free(t->path);
	free(t->subdir);
	free(t);
	return NULL;
}

static void target_free(void *p)
{
	struct target *t = p;

	free(t->uri);
	free(t->id);
	free(t->path);
	free(t->subdir);
	free(t);
}

void target_get(struct target *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void target_put(struct target *t)
{
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_lock(&registry_lock);
	for (struct target **p = &registry; *p; p = &(*p)->reg_next)
		if (*p == t) {
			*p = t->reg_next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	/* Disconnect now; the memory waits for the requests that may still
	 * count into t->op after replying (op_guard.c). */
	t->ops->detach(t);
	epoch_defer(target_free, t);
}

void target_foreach(void (*fn)(struct target *t, void *arg), void *arg)
{
	pthread_mutex_lock(&registry_lock);
	for (struct target *t = registry; t; t = t->reg_next)
		fn(t, arg);
	pthread_mutex_unlock(&registry_lock);
}

const char *target_state_name(int state)
{
	switch (state) {
	case TARGET_UP:
		return "up";
	case TARGET_DOWN:
		return "down";
	case TARGET_DRAINING:
		return "draining";
	}
	return "?";
}
