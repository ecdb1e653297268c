/*
 * control_cmd.c - the control socket's commands, run on the control thread
 * (the only writer of the route table).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "backends/backend_kernel.h"
#include "backends/nfs/backend_nfs.h"
#include "control_server.h"
#include "ctl_proto.h"
#include "front/fs.h"
#include "base/log.h"
#include "routing/reload.h"

extern const struct efsmt_config *ctl_cfg; /* control_server.c */
extern double ctl_started;		   /* CLOCK_MONOTONIC seconds */
extern const char *ctl_socket_path;

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A target's totals: the sums of its per-operation counters. */
struct totals {
	uint64_t ops, bytes, errors;
};

static struct totals target_totals(struct target *t)
{
	struct totals s = {0, 0, 0};
	for (int i = 0; i < OP_COUNT; i++) {
		s.ops += atomic_load_explicit(&t->op[i].count, memory_order_relaxed);
		s.bytes += atomic_load_explicit(&t->op[i].bytes, memory_order_relaxed);
		s.errors += atomic_load_explicit(&t->op[i].errors, memory_order_relaxed);
	}
	return s;
}

static json_t *cmd_status(void)
{
	struct route_table *rt = reload_current();

	return json_pack("{s:s,s:s,s:s?,s:s,s:s?,s:I,s:f,s:I,s:I,s:b,s:b,s:s?}", "version",
			 PACKAGE_VERSION, "source", ctl_cfg->source, "fs_id", ctl_cfg->fs_id,
			 "mountpoint", ctl_cfg->mountpoint, "socket", ctl_socket_path, "pid",
			 (json_int_t)getpid(), "uptime_s", now_mono() - ctl_started, "generation",
			 (json_int_t)rt->generation, "targets", (json_int_t)rt->n, "tls",
			 ctl_cfg->tls, "iam", ctl_cfg->iam, "access_point", ctl_cfg->access_point);
}

static json_t *target_json(struct target *t)
{
	struct totals s = target_totals(t);
	struct tls_info ti;
	unsigned resumed = 0;
	int tls = backend_nfs_tls_info(t, &ti, &resumed);

	/* tls_version and tls_cipher: null while TLS is off or not connected. */
	json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:I,s:I,s:I,s:b,s:s?,s:s?,s:i,s:b}", "id",
			      t->id, "uri", t->uri, "state", target_state_name(atomic_load(&t->state)),
			      "open_handles", atomic_load(&t->open_handles), "locks",
			      atomic_load(&t->locks_held), "ops", (json_int_t)s.ops,
			      "bytes", (json_int_t)s.bytes, "errors", (json_int_t)s.errors, "tls", tls,
			      "tls_version", tls && ti.version[0] ? ti.version : NULL, "tls_cipher",
			      tls && ti.cipher[0] ? ti.cipher : NULL, "tls_resumed", (int)resumed,
			      "tls_client_cert", tls && ti.client_cert);
	struct kernel_info ki;
	if (o && backend_kernel_info(t, &ki))
		json_object_set_new(
			o, "kernel",
			json_pack("{s:s,s:s,s:s?,s:i,s:i,s:b}", "mount", ki.mount, "addr", ki.addr,
				  "server", ki.server[0] ? ki.server : NULL, "client_users",
				  ki.client_users, "connections", ki.connections, "trunked", 0));
	return o;
}

/* A kernel:// target is trunked when the kernel NFS client its mount uses
 * talks to another address than the target's, or serves another target's
 * mount too: then both targets' traffic shares one client and connection,
 * whatever efsmt routes. Only the whole list shows the second case. */
static void mark_trunked(json_t *list)
{
	size_t i, j;
	json_t *a, *b;

	json_array_foreach(list, i, a) {
		json_t *ka = json_object_get(a, "kernel");
		const char *sa = ka ? json_string_value(json_object_get(ka, "server")) : NULL;
		if (!sa)
			continue;
		int trunked = strcmp(sa, json_string_value(json_object_get(ka, "addr"))) != 0;
		json_array_foreach(list, j, b) {
			json_t *kb = json_object_get(b, "kernel");
			const char *sb = kb ? json_string_value(json_object_get(kb, "server")) : NULL;
			if (j != i && sb && strcmp(sa, sb) == 0)
				trunked = 1;
		}
		json_object_set_new(ka, "trunked", json_boolean(trunked));
	}
}

/* Targets of the table first, in table order, then the draining ones. */
struct collect {
	json_t *list;
	json_t *(*fn)(struct target *t);
	struct route_table *rt;
};

static void add_draining(struct target *t, void *arg)
{
	struct collect *c = arg;
	for (size_t i = 0; i < c->rt->n; i++)
		if (c->rt->t[i] == t)
			return;
	json_array_append_new(c->list, c->fn(t));
}

static json_t *all_targets(json_t *(*fn)(struct target *t))
{
	struct collect c = {json_array(), fn, reload_current()};

	for (size_t i = 0; i < c.rt->n; i++)
		json_array_append_new(c.list, fn(c.rt->t[i]));
	target_foreach(add_draining, &c);
	return c.list;
}

static json_t *cmd_targets(void)
{
	json_t *list = all_targets(target_json);

	mark_trunked(list);
	return json_pack("{s:I,s:o}", "generation", (json_int_t)reload_current()->generation,
			 "targets", list);
}

static json_t *stats_json(struct target *t)
{
	json_t *ops = json_object();
	uint64_t hist[OPSTATS_BUCKETS];

	for (int i = 0; i < OP_COUNT; i++) {
		struct opstats *s = &t->op[i];
		uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
		if (!count)
			continue;
		for (int b = 0; b < OPSTATS_BUCKETS; b++)
			hist[b] = atomic_load_explicit(&s->hist[b], memory_order_relaxed);
		json_object_set_new(
			ops, opstats_name((enum opstats_op)i),
			json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)count, "errors",
				  (json_int_t)atomic_load(&s->errors), "bytes",
				  (json_int_t)atomic_load(&s->bytes), "p50_us",
				  (json_int_t)opstats_quantile(hist, 0.50), "p99_us",
				  (json_int_t)opstats_quantile(hist, 0.99)));
	}
	return json_pack("{s:s,s:s,s:s,s:i,s:o}", "id", t->id, "uri", t->uri, "state",
			 target_state_name(atomic_load(&t->state)), "locks",
			 atomic_load(&t->locks_held), "ops", ops);
}

/* rpcs: by main operation (nfs4.h); total leaves out the session's own
 * calls (SEQUENCE alone: lease renewal and health probes; EXCHANGE_ID,
 * CREATE_SESSION, ...), which session counts. */
static json_t *rpcs_json(struct target *t)
{
	struct nfs_rpc_counts rc;

	if (!backend_nfs_rpcs(t, &rc))
		return json_pack("{s:s,s:s,s:n,s:n,s:n}", "id", t->id, "uri", t->uri, "total",
				 "session", "rpcs");
	json_t *ops = json_object();
	uint64_t total = 0, session = 0;
	for (unsigned i = 0; i < NFS_RPC_SLOTS; i++) {
		const char *name = nfs4_op_name(i);
		if (!rc.n[i] || !name)
			continue;
		json_object_set_new(ops, name, json_integer((json_int_t)rc.n[i]));
		if (nfs4_op_is_session(i))
			session += rc.n[i];
		else
			total += rc.n[i];
	}
	return json_pack("{s:s,s:s,s:I,s:I,s:o}", "id", t->id, "uri", t->uri, "total",
			 (json_int_t)total, "session", (json_int_t)session, "rpcs", ops);
}

/* Prometheus label values escape backslash, quote and newline. */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

static void metrics_target(struct target *t, void *arg)
{
	FILE *f = arg;
	uint64_t hist[OPSTATS_BUCKETS];

#define LABELS(extra)                                                                  \
	do {                                                                           \
		fputs("{target=\"", f);                                                \
		put_label(f, t->id);                                                   \
		fputs("\"" extra, f);                                                  \
	} while (0)
	LABELS("} ");
	fprintf(f, "%d\n", atomic_load(&t->state) == TARGET_UP);
	for (int i = 0; i < OP_COUNT; i++) {
		struct opstats *s = &t->op[i];
		uint64_t count = atomic_load(&s->count);
		if (!count)
			continue;
		for (int b = 0; b < OPSTATS_BUCKETS; b++)
			hist[b] = atomic_load_explicit(&s->hist[b], memory_order_relaxed);
		const char *op = opstats_name((enum opstats_op)i);
		fputs("efsmt_op_total", f);
		LABELS(",op=\"");
		fprintf(f, "%s\"} %" PRIu64 "\n", op, count);
		fputs("efsmt_op_errors_total", f);
		LABELS(",op=\"");
		fprintf(f, "%s\"} %" PRIu64 "\n", op, (uint64_t)atomic_load(&s->errors));
		fputs("efsmt_op_bytes_total", f);
		LABELS(",op=\"");
		fprintf(f, "%s\"} %" PRIu64 "\n", op, (uint64_t)atomic_load(&s->bytes));
		for (int q = 0; q < 2; q++) {
			fputs("efsmt_op_latency_seconds", f);
			LABELS(",op=\"");
			fprintf(f, "%s\",quantile=\"%s\"} %.6f\n", op, q ? "0.99" : "0.5",
				(double)opstats_quantile(hist, q ? 0.99 : 0.5) / 1e6);
		}
	}
	struct nfs_rpc_counts rc;
	if (backend_nfs_rpcs(t, &rc)) {
		for (unsigned i = 0; i < NFS_RPC_SLOTS; i++) {
			if (!rc.n[i] || !nfs4_op_name(i))
				continue;
			fputs("efsmt_nfs_rpcs_total", f);
			LABELS(",op=\"");
			fprintf(f, "%s\"} %" PRIu64 "\n", nfs4_op_name(i), rc.n[i]);
		}
	}
	fputs("efsmt_target_open_handles", f);
	LABELS("} ");
	fprintf(f, "%d\n", atomic_load(&t->open_handles));
	fputs("efsmt_target_locks", f);
	LABELS("} ");
	fprintf(f, "%d\n", atomic_load(&t->locks_held));
#undef LABELS
}

static json_t *cmd_metrics(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fprintf(f,
		"# HELP efsmt_generation Generation of the route table in use.\n"
		"# TYPE efsmt_generation gauge\nefsmt_generation %" PRIu64 "\n"
		"# HELP efsmt_uptime_seconds Seconds since the daemon started.\n"
		"# TYPE efsmt_uptime_seconds gauge\nefsmt_uptime_seconds %.3f\n",
		reload_current()->generation, now_mono() - ctl_started);
	/* One sample per line; HELP/TYPE once per family, as the format asks:
	 * the families are written target by target, so gather them. */
	char *body = NULL;
	size_t blen = 0;
	FILE *b = open_memstream(&body, &blen);
	if (b) {
		target_foreach(metrics_target, b);
		fclose(b);
	}
	static const char *const fams[][3] = {
		{"efsmt_target_up", "gauge", "1 when the target takes new work."},
		{"efsmt_op_total", "counter", "Operations served by a target."},
		{"efsmt_op_errors_total", "counter", "Operations that failed."},
		{"efsmt_op_bytes_total", "counter", "Bytes read or written."},
		{"efsmt_op_latency_seconds", "summary", "Operation latency in the daemon."},
		{"efsmt_nfs_rpcs_total", "counter",
		 "NFS RPCs (COMPOUNDs) sent to an nfs:// target, by main operation."},
		{"efsmt_target_open_handles", "gauge", "Open files and directories."},
		{"efsmt_target_locks", "gauge", "Lock owners holding locks on the target."},
	};
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fams[i][0], fams[i][2], fams[i][0],
			fams[i][1]);
		size_t fl = strlen(fams[i][0]);
		for (char *line = body; line && *line;) {
			char *nl = strchr(line, '\n');
			size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
			/* Lines of the target_up family are written without a name. */
			if (i == 0 && line[0] == '{') {
				fputs(fams[0][0], f);
				fwrite(line, 1, ll, f);
			} else if (strncmp(line, fams[i][0], fl) == 0 && line[fl] == '{') {
				fwrite(line, 1, ll, f);
			}
			line += ll;
		}
	}
	free(body);
	fclose(f);
	json_t *r = json_pack("{s:s}", "text", text ? text : "");
	free(text);
	return r;
}

static json_t *cmd_health(void)
{
	struct route_table *rt = reload_current();
	json_t *list = json_array();
	int healthy = 1;

	for (size_t i = 0; i < rt->n; i++) {
		struct target *t = rt->t[i];
		struct statvfs sv;
		int rc = t->ops->statfs(t, "/", &sv);
		if (atomic_load(&t->state) != TARGET_DRAINING)
			atomic_store(&t->state, rc < 0 ? TARGET_DOWN : TARGET_UP);
		if (rc < 0) {
			healthy = 0;
			json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "id", t->id, "state",
							      "down", "error", strerror(-rc)));
		} else {
			json_array_append_new(list,
					      json_pack("{s:s,s:s}", "id", t->id, "state", "up"));
		}
	}
	return json_pack("{s:b,s:o}", "healthy", healthy, "targets", list);
}

static char *answer_changed(int rc, int changed, const char *err)
{
	if (rc < 0)
		return ctl_answer_error(err);
	return ctl_answer_ok(json_pack("{s:b,s:I}", "changed", changed, "generation",
				       (json_int_t)reload_current()->generation));
}

static char *cmd_set_targets(const struct ctl_request *req)
{
	struct target_spec *specs;
	size_t n;
	char err[600], es[512];
	int changed = 0, rc;

	if (target_parse_list(req->targets, &specs, &n, es, sizeof(es)) < 0) {
		snprintf(err, sizeof(err), "set-targets: %s", es);
		return ctl_answer_error(err);
	}
	rc = reload_set(specs, n, req->generation, &changed, es, sizeof(es));
	for (size_t i = 0; i < n; i++)
		target_spec_free(&specs[i]);
	free(specs);
	snprintf(err, sizeof(err), "set-targets: %s", es);
	if (rc == 0)
		log_info("msg=set-targets generation=%" PRIu64 " changed=%d", req->generation,
			 changed);
	return answer_changed(rc, changed, err);
}

static char *cmd_add_target(const struct ctl_request *req)
{
	struct target_spec spec;
	char err[600], es[512];
	int rc;

	if (target_parse_uri(req->uri, &spec, es, sizeof(es)) < 0) {
		snprintf(err, sizeof(err), "add-target: %s", es);
		return ctl_answer_error(err);
	}
	if (req->id)
		spec.id = strdup(req->id);
	rc = reload_add(&spec, es, sizeof(es));
	target_spec_free(&spec);
	snprintf(err, sizeof(err), "add-target: %s", es);
	return answer_changed(rc, rc == 0, err);
}

static char *cmd_remove_target(const struct ctl_request *req)
{
	char err[600], es[512];
	int rc = reload_remove(req->id, es, sizeof(es));

	snprintf(err, sizeof(err), "remove-target: %s", es);
	return answer_changed(rc, rc == 0, err);
}

char *ctl_handle_line(const char *line, size_t len)
{
	struct ctl_request req;
	char err[512];
	char *ans = NULL;

	if (ctl_parse_request(line, len, &req, err, sizeof(err)) < 0)
		return ctl_answer_error(err);
	switch (req.cmd) {
	case CTL_STATUS:
		ans = ctl_answer_ok(cmd_status());
		break;
	case CTL_TARGETS:
		ans = ctl_answer_ok(cmd_targets());
		break;
	case CTL_STATS:
		ans = ctl_answer_ok(json_pack("{s:I,s:o}", "generation",
					      (json_int_t)reload_current()->generation, "targets",
					      all_targets(stats_json)));
		break;
	case CTL_RPCS:
		ans = ctl_answer_ok(json_pack("{s:I,s:o}", "generation",
					      (json_int_t)reload_current()->generation, "targets",
					      all_targets(rpcs_json)));
		break;
	case CTL_METRICS:
		ans = ctl_answer_ok(cmd_metrics());
		break;
	case CTL_HEALTH:
		ans = ctl_answer_ok(cmd_health());
		break;
	case CTL_SET_TARGETS:
		ans = cmd_set_targets(&req);
		break;
	case CTL_ADD_TARGET:
		ans = cmd_add_target(&req);
		break;
	case CTL_REMOVE_TARGET:
		ans = cmd_remove_target(&req);
		break;
	case CTL_NCMDS:
		break;
	}
	ctl_request_free(&req);
	return ans ? ans : ctl_answer_error("out of memory");
}

void ctl_reload_targets_file(void)
{
	struct target_spec *specs;
	size_t n;
	uint64_t gen;
	char err[600];
	int changed = 0;

	if (!ctl_cfg->targets_file)
		return;
	if (target_parse_file(ctl_cfg->targets_file, &specs, &n, &gen, err, sizeof(err)) < 0) {
		log_error("msg=sighup-reload-failed error=\"%s\"", err);
		return;
	}
	/* A file without a generation (or 0) is applied whenever it differs. */
	if (gen == 0)
		gen = reload_generation_for(specs, n);
	int rc = reload_set(specs, n, gen, &changed, err, sizeof(err));
	for (size_t i = 0; i < n; i++)
		target_spec_free(&specs[i]);
	free(specs);
	if (rc < 0)
		log_error("msg=sighup-reload-refused file=%s error=\"%s\"", ctl_cfg->targets_file,
			  err);
	else
		log_info("msg=sighup-reload file=%s generation=%" PRIu64 " changed=%d",
			 ctl_cfg->targets_file, gen, changed);
}
