#include "ctl_client.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_proto.h"

/* Connect; on failure return -exit-status and say why in err. */
static int ctl_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -CTL_EX_USAGE;
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
		snprintf(err, errlen, "%s: permission denied (run as root or as the daemon's user)",
			 path);
	else
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	return e == EACCES || e == EPERM ? -CTL_EX_DENIED : -CTL_EX_NODAEMON;
}

json_t *ctl_call(const char *path, json_t *req, int *code, char *err, size_t errlen)
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
	*code = CTL_EX_PROTO;
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
			*code = CTL_EX_OK;
		}
	}
out:
	ctl_lb_free(&lb);
	close(fd);
	return ans;
}

size_t ctl_scan(const char *dirname, struct ctl_found **out)
{
	char dir[256];
	size_t n = 0;
	struct ctl_found *f = NULL;

	*out = NULL;
	if (dirname)
		snprintf(dir, sizeof(dir), "%s", dirname);
	else if (ctl_socket_dir(dir, sizeof(dir)) < 0)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".sock") != 0)
			continue;
		struct ctl_found *g = realloc(f, (n + 1) * sizeof(*f));
		if (!g)
			break;
		f = g;
		snprintf(f[n].path, sizeof(f[n].path), "%s/%s", dir, e->d_name);
		char err[512];
		int code;
		f[n].status = ctl_call(f[n].path, json_pack("{s:s}", "cmd", "status"), &code, err,
				       sizeof(err));
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

void ctl_found_free(struct ctl_found *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(f[i].status);
	free(f);
}
