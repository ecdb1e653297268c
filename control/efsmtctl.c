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

#include "ctl_proto.h"

/* Exit statuses (documented in --help and PROTOCOL.md). */
#define EX_OK 0
#define EX_REFUSED 1 /* the daemon answered ok:false, or health is not healthy */
#define EX_USAGE 2
#define EX_NODAEMON 3 /* no socket, nobody listening, no daemon for -m */
#define EX_DENIED 4   /* permission denied */
#define EX_PROTO 5    /* no answer, or not the protocol */

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
"                          open handles, operations, bytes, errors\n"
"  stats                   per target and operation: count, errors, bytes,\n"
"                          latency p50 and p99 (microseconds, within 25%%)\n"
"  metrics                 Prometheus text exposition\n"
"  health                  probe every target; exit 1 if one is down\n"
"  set-targets FILE        apply the whole list in FILE ('-': stdin), in the\n"
"                          targets file format {\"generation\":N,\"targets\":[...]};\n"
"                          a plain list needs -g N. An older generation is\n"
"                          refused; the same one again changes nothing.\n"
"    -g, --generation N    the generation to send (overrides the file's)\n"
"  add-target URI [ID]     add one target (next generation)\n"
"  remove-target ID|URI    drain a target: it takes no new work, its open\n"
"                          files finish, then it is disconnected\n"
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

/* Connect; on failure return -exit-status and say why in err. */
static int ctl_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -EX_USAGE;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (e == ENOENT)
		snprintf(err, errlen, "%s: no such socket (is efsmt running? see efsmtctl ls)",
			 path);
	else if (e == ECONNREFUSED)
		snprintf(err, errlen, "%s: nobody listens (the daemon is gone: a stale socket)",
			 path);
	else if (e == EACCES || e == EPERM)
		snprintf(err, errlen,
			 "%s: permission denied (run as root or as the daemon's user)", path);
	else
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	return e == EACCES || e == EPERM ? -EX_DENIED : -EX_NODAEMON;
}

/* One request, one answer; NULL with err and *code set on failure. */
static json_t *call(const char *path, json_t *req, int *code, char *err, size_t errlen)
{
	char *line = NULL;
	size_t len;
	json_t *ans = NULL;
	struct ctl_linebuf lb = {0};
	int fd = ctl_connect(path, err, errlen);

	if (fd < 0) {
		*code = -fd;
		json_decref(req);
		return NULL;
	}
	char *s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	*code = EX_PROTO;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	size_t n = strlen(s);
	s[n] = '\n'; /* json_dumps leaves room for the NUL we replace */
	for (size_t off = 0; off <= n;) {
		ssize_t w = send(fd, s + off, n + 1 - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* a refusal may close early: read its answer */
		off += (size_t)w;
	}
	free(s);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int got = ctl_lb_next(&lb, &line, &len);
		if (got != 0) {
			if (got < 0)
				snprintf(err, errlen, "%s: answer longer than %d bytes", path,
					 CTL_MAX_LINE);
			break;
		}
		if (poll(&p, 1, CTL_IO_TIMEOUT_MS) <= 0) {
			snprintf(err, errlen, "%s: no answer within %d ms", path,
				 CTL_IO_TIMEOUT_MS);
			goto out;
		}
		long r = ctl_lb_read(&lb, fd);
		if (r <= 0) {
			snprintf(err, errlen, "%s: connection closed without an answer", path);
			goto out;
		}
	}
	if (line) {
		json_error_t je;
		ans = json_loadb(line, len, 0, &je);
		if (!ans || !json_is_object(ans) || !json_is_boolean(json_object_get(ans, "ok"))) {
			snprintf(err, errlen, "%s: the answer is not the efsmt protocol", path);
			json_decref(ans);
			ans = NULL;
		} else {
			*code = EX_OK;
		}
	}
out:
	ctl_lb_free(&lb);
	close(fd);
	return ans;
}

static json_t *cmd_req(const char *cmd)
{
	return json_pack("{s:s}", "cmd", cmd);
}

/* Every socket in the socket directory, with its status answer. */
struct found {
	char path[PATH_MAX];
	json_t *status;
};

static size_t scan(struct found **out)
{
	char dir[256];
	size_t n = 0;
	struct found *f = NULL;

	*out = NULL;
	if (ctl_socket_dir(dir, sizeof(dir)) < 0)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".sock") != 0)
			continue;
		struct found *g = realloc(f, (n + 1) * sizeof(*f));
		if (!g)
			break;
		f = g;
		snprintf(f[n].path, sizeof(f[n].path), "%s/%s", dir, e->d_name);
		char err[512];
		int code;
		f[n].status = call(f[n].path, cmd_req("status"), &code, err, sizeof(err));
		if (f[n].status && !json_is_true(json_object_get(f[n].status, "ok"))) {
			json_decref(f[n].status);
			f[n].status = NULL;
		}
		n++;
	}
	closedir(d);
	*out = f;
	return n;
}

static void free_found(struct found *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(f[i].status);
	free(f);
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
	struct found *f;
	size_t n = scan(&f);
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
	free_found(f, n);
	return EX_OK;
}

/* The socket of the daemon serving mnt, or the only one running. */
static char *find_socket(const char *mnt)
{
	struct found *f;
	size_t n = scan(&f), hits = 0;
	char real[PATH_MAX], *path = NULL;

	if (mnt && !realpath(mnt, real))
		die(EX_NODAEMON, "mount point %s: %s", mnt, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (!f[i].status)
			continue;
		if (mnt && strcmp(str(f[i].status, "mountpoint"), real) != 0)
			continue;
		hits++;
		free(path);
		path = strdup(f[i].path);
	}
	free_found(f, n);
	if (hits == 1)
		return path;
	free(path);
	if (mnt)
		die(EX_NODAEMON, "no efsmt daemon answers for %s (see efsmtctl ls; or give -s)",
		    real);
	if (hits == 0)
		die(EX_NODAEMON, "no efsmt daemon is running (or none that you may talk to)");
	die(EX_USAGE, "%zu efsmt daemons are running: choose one with -m or -s (efsmtctl ls)",
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
	printf("%-28s %-9s %8s %12s %14s %8s  %s\n", "ID", "STATE", "HANDLES", "OPS", "BYTES",
	       "ERRORS", "URI");
	json_array_foreach(json_object_get(a, "targets"), i, t)
	printf("%-28s %-9s %8lld %12lld %14lld %8lld  %s\n", str(t, "id"), str(t, "state"),
	       num(t, "open_handles"), num(t, "ops"), num(t, "bytes"), num(t, "errors"),
	       str(t, "uri"));
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
	return healthy ? EX_OK : EX_REFUSED;
}

static json_t *set_targets_req(const char *file, const char *gen_arg)
{
	json_error_t je;
	json_t *doc = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &je)
					     : json_load_file(file, 0, &je);
	json_t *list = doc, *gen = NULL;

	if (!doc)
		die(EX_USAGE, "%s: line %d: %s", file, je.line, je.text);
	if (json_is_object(doc)) {
		list = json_object_get(doc, "targets");
		gen = json_object_get(doc, "generation");
	}
	if (!json_is_array(list))
		die(EX_USAGE, "%s: expected {\"generation\":N,\"targets\":[...]} or a list", file);
	json_int_t g;
	if (gen_arg) {
		char *end;
		errno = 0;
		long long v = strtoll(gen_arg, &end, 10);
		if (!*gen_arg || *end || errno || v < 0)
			die(EX_USAGE, "-g %s: expected a whole number >= 0", gen_arg);
		g = v;
	} else if (json_is_integer(gen)) {
		g = json_integer_value(gen);
	} else {
		die(EX_USAGE, "%s has no \"generation\": give one with -g N", file);
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
			return EX_OK;
		case 'V':
			printf("efsmtctl %s\n", PACKAGE_VERSION);
			return EX_OK;
		default:
			fprintf(stderr, "(efsmtctl --help for usage)\n");
			return EX_USAGE;
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
			die(EX_USAGE, "too many arguments (efsmtctl --help)");
		}
	}
	if (nargs == 0)
		die(EX_USAGE, "no command given (efsmtctl --help)");
	if (sock && mnt)
		die(EX_USAGE, "give -s or -m, not both");
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
		   strcmp(cmd, "stats") == 0 || strcmp(cmd, "metrics") == 0 ||
		   strcmp(cmd, "health") == 0) {
		req = cmd_req(cmd);
	} else {
		die(EX_USAGE, "unknown command '%s' (efsmtctl --help)", cmd);
	}
	if (nargs != want || !req)
		die(EX_USAGE, "%s: wrong number of arguments (efsmtctl --help)", cmd);

	char *found = sock ? NULL : find_socket(mnt);
	char err[PATH_MAX + 256];
	int code;
	json_t *ans = call(sock ? sock : found, req, &code, err, sizeof(err));
	free(found);
	if (!ans)
		die(code, "%s", err);
	int ok = json_is_true(json_object_get(ans, "ok"));
	int rc = ok ? EX_OK : EX_REFUSED;
	if (json_out) {
		char *d = json_dumps(ans, JSON_COMPACT);
		printf("%s\n", d ? d : "");
		free(d);
		if (ok && strcmp(cmd, "health") == 0 &&
		    !json_is_true(json_object_get(ans, "healthy")))
			rc = EX_REFUSED;
	} else if (!ok) {
		const char *e = str(ans, "error");
		fprintf(stderr, "%s: %s\n", prog, e);
		if (strncmp(e, "permission denied", 17) == 0)
			rc = EX_DENIED;
	} else if (strcmp(cmd, "status") == 0) {
		human_status(ans);
	} else if (strcmp(cmd, "targets") == 0) {
		human_targets(ans);
	} else if (strcmp(cmd, "stats") == 0) {
		human_stats(ans);
	} else if (strcmp(cmd, "metrics") == 0) {
		fputs(str(ans, "text"), stdout);
	} else if (strcmp(cmd, "health") == 0) {
		rc = human_health(ans);
	} else {
		printf("generation %lld (%s)\n", num(ans, "generation"),
		       json_is_true(json_object_get(ans, "changed")) ? "applied" : "unchanged");
	}
	if (json_out && !ok && strncmp(str(ans, "error"), "permission denied", 17) == 0)
		rc = EX_DENIED;
	json_decref(ans);
	return rc;
}
