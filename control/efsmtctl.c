/*
 * efsmtctl - talk to running efsmt daemons over their control sockets
 * (control/PROTOCOL.md). Tables for people, --json for scripts.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_client.h"
#include "ctl_proto.h"

static int json_out;
static const char *prog = "efsmtctl";

static void usage(FILE *f)
{
	fprintf(f,
"usage: efsmtctl [-s SOCKET | -m MOUNTPOINT] [--json] COMMAND [ARGS]\n"
"       efsmtctl ls\n"
"\n"
"Query and change running efsmt daemons through their control sockets.\n"
"\n"
"Choosing the daemon:\n"
"  -s, --socket SOCKET     the control socket (efsmt -o control=PATH)\n"
"  -m, --mount MOUNTPOINT  the daemon serving this mount point\n"
"  (neither)               the only daemon running; with several, an error\n"
"                          lists them. Sockets live in /run/efsmt (root) or\n"
"                          $XDG_RUNTIME_DIR/efsmt, else /tmp/efsmt-UID (others).\n"
"\n"
"Output:\n"
"  --json                  print the daemon's answer as one JSON line\n"
"  -h, --help              this text;  -V, --version  the version\n"
"\n"
"Commands:\n"
"  ls                      every running efsmt on this host: socket, mount\n"
"                          point, source, generation, targets, pid\n"
"  status                  version, source, mount point, uptime, generation\n"
"  targets                 each target: id, URI, state (up, down, draining),\n"
"                          open handles, operations, bytes, errors, TLS\n"
"                          (off, or the negotiated version and cipher); for\n"
"                          kernel:// targets the mount, the server address its\n"
"                          kernel NFS client uses, connections, trunked\n"
"  stats                   per target and operation: count, errors, bytes,\n"
"                          latency p50 and p99 (microseconds, within 25%%)\n"
"  rpcs                    per nfs:// target: the NFS RPCs (COMPOUNDs) sent,\n"
"                          by main operation (OPEN, READ, WRITE, CLOSE,\n"
"                          REMOVE, ...); the session's own calls (SEQUENCE alone:\n"
"                          lease renewal, probes; EXCHANGE_ID, ...) apart\n"
"  metrics                 Prometheus text exposition\n"
"  health                  probe every target; exit 1 if one is down\n"
"  set-targets FILE        apply the whole list in FILE ('-': stdin), in the\n"
"                          targets file format {\"generation\":N,\"targets\":[...]};\n"
"                          a plain list needs -g N. An older generation is\n"
"                          refused; the same one again changes nothing.\n"
"    -g, --generation N    the generation to send (overrides the file's)\n"
"  add-target URI [ID]     add one target (next generation)\n"
"  remove-target ID|URI    drain a target: it takes no new work, its open\n"
"                          files finish, then it is disconnected; the URI\n"
"                          in any form add-target takes (/path, dir:///path/,\n"
"                          a bare host)\n"
"\n"
"Exit status:\n"
"  0  success\n"
"  1  the daemon refused the request (its reason is printed), or unhealthy\n"
"  2  bad command line\n"
"  3  no daemon: the socket is missing, nobody listens, or no efsmt serves\n"
"     the mount point\n"
"  4  permission denied (only root and the daemon's own user are admitted)\n"
"  5  no answer, or an answer that is not the protocol\n"
"\n"
"Examples:\n"
"  efsmtctl ls\n"
"  efsmtctl -m /mnt/efs targets\n"
"  efsmtctl -m /mnt/efs set-targets /etc/efsmt/targets.json\n"
"  efsmtctl -m /mnt/efs --json stats | jq .\n");
}

static int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static json_t *cmd_req(const char *cmd)
{
	return json_pack("{s:s}", "cmd", cmd);
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long num(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static int do_ls(void)
{
	struct ctl_found *f;
	size_t n = ctl_scan(NULL, &f);
	json_t *all = json_array();

	if (!json_out)
		printf("%-24s %-10s %-8s %-7s %-7s %s\n", "MOUNTPOINT", "SOURCE", "GEN", "TARGETS",
		       "PID", "SOCKET");
	for (size_t i = 0; i < n; i++) {
		json_t *s = f[i].status;
		if (json_out) {
			json_array_append_new(all, s ? json_pack("{s:s,s:O}", "socket", f[i].path,
								 "status", s)
						     : json_pack("{s:s,s:n}", "socket", f[i].path,
								 "status"));
			continue;
		}
		if (!s)
			printf("%-24s %-10s %-8s %-7s %-7s %s\n", "(not answering)", "-", "-", "-",
			       "-", f[i].path);
		else
			printf("%-24s %-10s %-8lld %-7lld %-7lld %s\n", str(s, "mountpoint"),
			       str(s, "source"), num(s, "generation"), num(s, "targets"),
			       num(s, "pid"), f[i].path);
	}
	if (json_out) {
		char *d = json_dumps(all, JSON_COMPACT);
		printf("%s\n", d ? d : "[]");
		free(d);
	}
	json_decref(all);
	ctl_found_free(f, n);
	return CTL_EX_OK;
}

/* The socket of the daemon serving mnt, or the only one running. */
static char *find_socket(const char *mnt)
{
	struct ctl_found *f;
	size_t n = ctl_scan(NULL, &f), hits = 0;
	char real[PATH_MAX], *path = NULL;

	if (mnt && !realpath(mnt, real))
		die(CTL_EX_NODAEMON, "mount point %s: %s", mnt, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (!f[i].status)
			continue;
		if (mnt && strcmp(str(f[i].status, "mountpoint"), real) != 0)
			continue;
		hits++;
		free(path);
		path = strdup(f[i].path);
	}
	ctl_found_free(f, n);
	if (hits == 1)
		return path;
	free(path);
	if (mnt)
		die(CTL_EX_NODAEMON, "no efsmt daemon answers for %s (see efsmtctl ls; or give -s)",
		    real);
	if (hits == 0)
		die(CTL_EX_NODAEMON, "no efsmt daemon is running (or none that you may talk to)");
	die(CTL_EX_USAGE, "%zu efsmt daemons are running: choose one with -m or -s (efsmtctl ls)",
	    hits);
	return NULL;
}

static void human_status(json_t *a)
{
	printf("version     %s\nsource      %s\nmountpoint  %s\nsocket      %s\npid         "
	       "%lld\nuptime      %.0f s\ngeneration  %lld\ntargets     %lld\n",
	       str(a, "version"), str(a, "source"), str(a, "mountpoint"), str(a, "socket"),
	       num(a, "pid"), json_number_value(json_object_get(a, "uptime_s")),
	       num(a, "generation"), num(a, "targets"));
}

static void human_targets(json_t *a)
{
	size_t i;
	json_t *t;

	printf("generation %lld\n", num(a, "generation"));
	printf("%-28s %-9s %8s %6s %12s %14s %8s  %-38s %s\n", "ID", "STATE", "HANDLES",
	       "LOCKS", "OPS", "BYTES", "ERRORS", "TLS", "URI");
	json_array_foreach(json_object_get(a, "targets"), i, t) {
		char tls[96] = "off";
		if (json_is_true(json_object_get(t, "tls")))
			snprintf(tls, sizeof tls, "%s %s", str(t, "tls_version"),
				 str(t, "tls_cipher"));
		printf("%-28s %-9s %8lld %6lld %12lld %14lld %8lld  %-38s %s\n", str(t, "id"),
		       str(t, "state"), num(t, "open_handles"), num(t, "locks"), num(t, "ops"),
		       num(t, "bytes"),
		       num(t, "errors"), tls, str(t, "uri"));
	}
	/* kernel:// targets: the mount efsmt made and what the kernel does
	 * with it (README.md, "Kernel NFS targets"). */
	json_array_foreach(json_object_get(a, "targets"), i, t) {
		json_t *k = json_object_get(t, "kernel");
		if (!k)
			continue;
		printf("kernel %s: mount=%s server=%s connections=%lld trunked=%s\n", str(t, "id"),
		       str(k, "mount"), str(k, "server"), num(k, "connections"),
		       json_is_true(json_object_get(k, "trunked")) ? "YES" : "no");
	}
}

static void human_stats(json_t *a)
{
	size_t i;
	json_t *t;

	printf("%-28s %-16s %10s %8s %14s %9s %9s\n", "TARGET", "OP", "COUNT", "ERRORS", "BYTES",
	       "P50_US", "P99_US");
	json_array_foreach(json_object_get(a, "targets"), i, t)
	{
		const char *op;
		json_t *s;
		json_object_foreach(json_object_get(t, "ops"), op, s)
		printf("%-28s %-16s %10lld %8lld %14lld %9lld %9lld\n", str(t, "id"), op,
		       num(s, "count"), num(s, "errors"), num(s, "bytes"), num(s, "p50_us"),
		       num(s, "p99_us"));
	}
}

static void human_rpcs(json_t *a)
{
	size_t i;
	json_t *t;

	printf("%-28s %-20s %12s\n", "TARGET", "RPC", "COUNT");
	json_array_foreach(json_object_get(a, "targets"), i, t)
	{
		json_t *ops = json_object_get(t, "rpcs");
		if (!json_is_object(ops)) {
			printf("%-28s %-20s %12s\n", str(t, "id"), "(not nfs://)", "-");
			continue;
		}
		const char *op;
		json_t *n;
		json_object_foreach(ops, op, n)
		printf("%-28s %-20s %12lld\n", str(t, "id"), op, (long long)json_integer_value(n));
		printf("%-28s %-20s %12lld\n", str(t, "id"), "= total", num(t, "total"));
		printf("%-28s %-20s %12lld\n", str(t, "id"), "= session", num(t, "session"));
	}
}

static int human_health(json_t *a)
{
	size_t i;
	json_t *t;
	int healthy = json_is_true(json_object_get(a, "healthy"));

	printf("%s\n", healthy ? "healthy" : "UNHEALTHY");
	json_array_foreach(json_object_get(a, "targets"), i, t)
	{
		const char *e = json_string_value(json_object_get(t, "error"));
		printf("  %-28s %s%s%s\n", str(t, "id"), str(t, "state"), e ? ": " : "",
		       e ? e : "");
	}
	return healthy ? CTL_EX_OK : CTL_EX_REFUSED;
}

static json_t *set_targets_req(const char *file, const char *gen_arg)
{
	json_error_t je;
	json_t *doc = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &je)
					     : json_load_file(file, 0, &je);
	json_t *list = doc, *gen = NULL;

	if (!doc)
		die(CTL_EX_USAGE, "%s: line %d: %s", file, je.line, je.text);
	if (json_is_object(doc)) {
		list = json_object_get(doc, "targets");
		gen = json_object_get(doc, "generation");
	}
	if (!json_is_array(list))
		die(CTL_EX_USAGE, "%s: expected {\"generation\":N,\"targets\":[...]} or a list", file);
	json_int_t g;
	if (gen_arg) {
		char *end;
		errno = 0;
		long long v = strtoll(gen_arg, &end, 10);
		if (!*gen_arg || *end || errno || v < 0)
			die(CTL_EX_USAGE, "-g %s: expected a whole number >= 0", gen_arg);
		g = v;
	} else if (json_is_integer(gen)) {
		g = json_integer_value(gen);
	} else {
		die(CTL_EX_USAGE, "%s has no \"generation\": give one with -g N", file);
	}
	json_t *req = json_pack("{s:s,s:I,s:O}", "cmd", "set-targets", "generation", g,
				"targets", list);
	json_decref(doc);
	return req;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"mount", required_argument, NULL, 'm'},
		{"generation", required_argument, NULL, 'g'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *mnt = NULL, *gen = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "+s:m:g:jhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'm':
			mnt = optarg;
			break;
		case 'g':
			gen = optarg;
			break;
		case 'j':
			json_out = 1;
			break;
		case 'h':
			usage(stdout);
			return CTL_EX_OK;
		case 'V':
			printf("efsmtctl %s\n", PACKAGE_VERSION);
			return CTL_EX_OK;
		default:
			fprintf(stderr, "(efsmtctl --help for usage)\n");
			return CTL_EX_USAGE;
		}
	}
	/* Options after the command too: efsmtctl targets --json. */
	int nargs = 0;
	char *args[4];
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json_out = 1;
		} else if ((strcmp(argv[i], "-g") == 0 || strcmp(argv[i], "--generation") == 0) &&
			   i + 1 < argc) {
			gen = argv[++i];
		} else if (nargs < 4) {
			args[nargs++] = argv[i];
		} else {
			die(CTL_EX_USAGE, "too many arguments (efsmtctl --help)");
		}
	}
	if (nargs == 0)
		die(CTL_EX_USAGE, "no command given (efsmtctl --help)");
	if (sock && mnt)
		die(CTL_EX_USAGE, "give -s or -m, not both");
	const char *cmd = args[0];
	if (strcmp(cmd, "ls") == 0)
		return do_ls();

	json_t *req = NULL;
	int want = 1;
	if (strcmp(cmd, "set-targets") == 0) {
		want = 2;
		if (nargs == 2)
			req = set_targets_req(args[1], gen);
	} else if (strcmp(cmd, "add-target") == 0) {
		want = nargs == 3 ? 3 : 2;
		if (nargs == 2)
			req = json_pack("{s:s,s:s}", "cmd", cmd, "uri", args[1]);
		else if (nargs == 3)
			req = json_pack("{s:s,s:s,s:s}", "cmd", cmd, "uri", args[1], "id", args[2]);
	} else if (strcmp(cmd, "remove-target") == 0) {
		want = 2;
		if (nargs == 2)
			req = json_pack("{s:s,s:s}", "cmd", cmd, "id", args[1]);
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "targets") == 0 ||
		   strcmp(cmd, "stats") == 0 || strcmp(cmd, "rpcs") == 0 ||
		   strcmp(cmd, "metrics") == 0 ||
		   strcmp(cmd, "health") == 0) {
		req = cmd_req(cmd);
	} else {
		die(CTL_EX_USAGE, "unknown command '%s' (efsmtctl --help)", cmd);
	}
	if (nargs != want || !req)
		die(CTL_EX_USAGE, "%s: wrong number of arguments (efsmtctl --help)", cmd);

	char *found = sock ? NULL : find_socket(mnt);
	char err[PATH_MAX + 256];
	int code;
	json_t *ans = ctl_call(sock ? sock : found, req, &code, err, sizeof(err));
	free(found);
	if (!ans)
		die(code, "%s", err);
	int ok = json_is_true(json_object_get(ans, "ok"));
	int rc = ok ? CTL_EX_OK : CTL_EX_REFUSED;
	if (json_out) {
		char *d = json_dumps(ans, JSON_COMPACT);
		printf("%s\n", d ? d : "");
		free(d);
		if (ok && strcmp(cmd, "health") == 0 &&
		    !json_is_true(json_object_get(ans, "healthy")))
			rc = CTL_EX_REFUSED;
	} else if (!ok) {
		const char *e = str(ans, "error");
		fprintf(stderr, "%s: %s\n", prog, e);
		if (strncmp(e, "permission denied", 17) == 0)
			rc = CTL_EX_DENIED;
	} else if (strcmp(cmd, "status") == 0) {
		human_status(ans);
	} else if (strcmp(cmd, "targets") == 0) {
		human_targets(ans);
	} else if (strcmp(cmd, "stats") == 0) {
		human_stats(ans);
	} else if (strcmp(cmd, "rpcs") == 0) {
		human_rpcs(ans);
	} else if (strcmp(cmd, "metrics") == 0) {
		fputs(str(ans, "text"), stdout);
	} else if (strcmp(cmd, "health") == 0) {
		rc = human_health(ans);
	} else {
		printf("generation %lld (%s)\n", num(ans, "generation"),
		       json_is_true(json_object_get(ans, "changed")) ? "applied" : "unchanged");
	}
	if (json_out && !ok && strncmp(str(ans, "error"), "permission denied", 17) == 0)
		rc = CTL_EX_DENIED;
	json_decref(ans);
	return rc;
}
