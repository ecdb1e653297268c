#include "prov_push.h"

#include <stdlib.h>
#include <string.h>

#include "ctl_client.h"
#include "prov_log.h"

#define ERR_LEN 600

static int add(struct prov_daemon **v, size_t *n, const char *sock, json_t *status)
{
	struct prov_daemon *g = realloc(*v, (*n + 1) * sizeof(**v));
	if (!g)
		return -1;
	*v = g;
	g[*n].socket = strdup(sock);
	g[*n].mountpoint = strdup(json_string_value(json_object_get(status, "mountpoint")) ?: "");
	g[*n].generation = (uint64_t)json_integer_value(json_object_get(status, "generation"));
	(*n)++;
	return 0;
}

static int ours(const struct prov_config *c, json_t *status)
{
	const char *fs = json_string_value(json_object_get(status, "fs_id"));
	return fs && c->file_system && strcmp(fs, c->file_system) == 0;
}

size_t prov_daemons_find(const struct prov_config *c, struct prov_daemon **out)
{
	size_t n = 0;
	*out = NULL;
	if (c->sockets.n) {
		for (size_t i = 0; i < c->sockets.n; i++) {
			char err[ERR_LEN];
			int code;
			json_t *st = ctl_call(c->sockets.v[i], json_pack("{s:s}", "cmd", "status"),
					      &code, err, sizeof(err));
			if (!st || !json_is_true(json_object_get(st, "ok")))
				plog_warn("daemon", "%s", st ? "status refused" : err);
			else if (add(out, &n, c->sockets.v[i], st) < 0)
				plog_error("daemon", "out of memory");
			json_decref(st);
		}
		return n;
	}
	struct ctl_found *f;
	size_t nf = ctl_scan(c->socket_dir, &f);
	for (size_t i = 0; i < nf; i++)
		if (f[i].status && ours(c, f[i].status) && add(out, &n, f[i].path, f[i].status) < 0)
			plog_error("daemon", "out of memory");
	ctl_found_free(f, nf);
	return n;
}

void prov_daemons_free(struct prov_daemon *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].socket);
		free(d[i].mountpoint);
	}
	free(d);
}

void prov_push(struct prov_daemon *d, size_t n, uint64_t generation, json_t *targets,
	       struct prov_push_result *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		char err[ERR_LEN];
		int code;
		json_t *req = json_pack("{s:s, s:I, s:O}", "cmd", "set-targets", "generation",
					(json_int_t)generation, "targets", targets);
		json_t *a = ctl_call(d[i].socket, req, &code, err, sizeof(err));
		if (!a) {
			r->failed++;
			plog_warn("push", "%s", err);
			continue;
		}
		r->daemons++;
		if (!json_is_true(json_object_get(a, "ok"))) {
			struct plog l;
			r->failed++;
			plog_start(&l, "warn", "push");
			plog_str(&l, "socket", d[i].socket);
			plog_int(&l, "generation", (long long)generation);
			plog_str(&l, "error", json_string_value(json_object_get(a, "error")));
			plog_end(&l);
		} else if (json_is_true(json_object_get(a, "changed"))) {
			r->changed++;
			d[i].generation = generation;
		}
		json_decref(a);
	}
}
