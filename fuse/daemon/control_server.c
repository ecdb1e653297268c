/*
 * control_server.c - the control socket's thread: admission, framing,
 * retired-table sweeps and SIGHUP. Commands are in control_cmd.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control_server.h"
#include "ctl_proto.h"
#include "base/epoch.h"
#include "base/log.h"
#include "routing/reload.h"
#include "base/paths.h"

#define CTL_SWEEP_MS 20 /* how soon a retired table is looked at again */
#define CTL_DIR_MODE 0755
/* After refusing an oversized line the rest is read and dropped, so that
 * the client sees the answer rather than a reset; at most this much. */
#define CTL_DISCARD_MAX (256L * 1024 * 1024) /* bytes */
#define CTL_DISCARD_CHUNK (64 * 1024)	     /* bytes */

const struct efsmt_config *ctl_cfg;
double ctl_started;
const char *ctl_socket_path;

struct client {
	int fd;
	struct ctl_linebuf lb;
	long discarded; /* >= 0: refusing an oversized line; -1: normal */
};

static int listen_fd = -1;
static int wake[2] = {-1, -1}; /* 'q': stop, 'h': SIGHUP */
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pthread_t thread;
static int running;
static struct client clients[CTL_MAX_CLIENTS];

/* A socket file left by a daemon that died is removed; a live one is not. */
static int claim_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(fd);
		snprintf(err, errlen,
			 "control socket %s: another efsmt is serving it (is this mount point "
			 "mounted already? or give -o control=PATH)",
			 path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	return 0;
}

int ctl_server_open(const struct efsmt_config *cfg, const char *path, char *err,
		    size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	ctl_cfg = cfg;
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "control: pipe: %s", strerror(errno));
		return -1;
	}
	if (!path)
		return 0;
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "control socket %s: path longer than %zu bytes", path,
			 sizeof(a.sun_path) - 1);
		return -1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int e = paths_mkdir_parent(path, CTL_DIR_MODE);
	if (e < 0) {
		snprintf(err, errlen, "control socket %s: cannot create its directory: %s", path,
			 strerror(-e));
		return -1;
	}
	if (claim_path(path, err, errlen) < 0)
		return -1;
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* 0600 from the start: no window in which others may connect. */
	mode_t old = umask(0177);
	int rc = listen_fd < 0 ? -1 : bind(listen_fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || listen(listen_fd, CTL_MAX_CLIENTS) < 0) {
		snprintf(err, errlen, "control socket %s: %s (give -o control=PATH elsewhere)",
			 path, strerror(errno));
		if (listen_fd >= 0)
			close(listen_fd);
		listen_fd = -1;
		sock_path[0] = '\0';
		return -1;
	}
	ctl_socket_path = sock_path;
	return 0;
}

static void send_line(int fd, char *line)
{
	size_t len = line ? strlen(line) : 0;

	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(line);
}

static void drop(struct client *c)
{
	close(c->fd);
	ctl_lb_free(&c->lb);
	c->fd = -1;
}

/* Root and the daemon's own uid only (the socket is 0600 as well). */
static void admit(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct ucred cr = {.pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1};
	socklen_t len = sizeof(cr);
	struct timeval tv = {CTL_IO_TIMEOUT_MS / 1000, (CTL_IO_TIMEOUT_MS % 1000) * 1000};
	char msg[160];

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		log_warn("msg=control-refused uid=%d pid=%d", (int)cr.uid, (int)cr.pid);
		snprintf(msg, sizeof(msg),
			 "permission denied: uid %d is neither root nor the daemon's uid %d",
			 (int)cr.uid, (int)geteuid());
		send_line(fd, ctl_answer_error(msg));
		close(fd);
		return;
	}
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].discarded = -1;
			return;
		}
	snprintf(msg, sizeof(msg), "busy: %d control connections already open",
		 CTL_MAX_CLIENTS);
	send_line(fd, ctl_answer_error(msg));
	close(fd);
}

static void serve_client(struct client *c)
{
	char *line;
	size_t len;
	char msg[80];

	if (c->discarded >= 0) {
		char scratch[CTL_DISCARD_CHUNK];
		ssize_t d = read(c->fd, scratch, sizeof(scratch));
		if (d < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->discarded += d > 0 ? d : 0;
		if (d <= 0 || c->discarded > CTL_DISCARD_MAX)
			drop(c);
		return;
	}
	long r = ctl_lb_read(&c->lb, c->fd);
	if (r == -EAGAIN || r == -EINTR)
		return;
	for (;;) {
		int got = ctl_lb_next(&c->lb, &line, &len);
		if (got < 0) {
			/* Answered; the rest is dropped unread until the client
			 * closes, and the buffer is given back now. */
			snprintf(msg, sizeof(msg), "request larger than %d bytes (refused)",
				 CTL_MAX_LINE);
			send_line(c->fd, ctl_answer_error(msg));
			log_warn("msg=control-request-too-large limit=%d", CTL_MAX_LINE);
			ctl_lb_free(&c->lb);
			shutdown(c->fd, SHUT_WR);
			c->discarded = 0;
			return;
		}
		if (got == 0)
			break;
		send_line(c->fd, ctl_handle_line(line, len));
	}
	if (r <= 0)
		drop(c);
}

static void *control_main(void *arg)
{
	struct pollfd p[CTL_MAX_CLIENTS + 2];

	for (;;) {
		int n = 0;
		p[n++] = (struct pollfd){.fd = wake[0], .events = POLLIN};
		p[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			p[n++] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
		/* Sleep for good unless a retired table waits for its readers. */
		size_t waiting = reload_reclaim();
		waiting += epoch_reclaim();
		int timeout = waiting ? CTL_SWEEP_MS : -1;
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			char buf[16];
			ssize_t r = read(wake[0], buf, sizeof(buf));
			int quit = 0;
			for (ssize_t i = 0; i < r; i++) {
				if (buf[i] == 'q')
					quit = 1;
				else if (buf[i] == 'h')
					ctl_reload_targets_file();
			}
			if (quit)
				break;
		}
		if (p[1].revents & POLLIN)
			admit();
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			if (clients[i].fd >= 0 && p[2 + i].revents)
				serve_client(&clients[i]);
	}
	return arg;
}

static void on_sighup(int sig)
{
	int saved = errno;
	char h = 'h';
	ssize_t r = write(wake[1], &h, 1);
	(void)r;
	(void)sig;
	errno = saved;
}

static void wake_sweeper(void)
{
	char w = 'w';
	ssize_t r = write(wake[1], &w, 1);
	(void)r; /* a full pipe already wakes the thread */
}

int ctl_server_start(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ctl_started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		clients[i].fd = -1;
	if (pthread_create(&thread, NULL, control_main, NULL) != 0)
		return -1;
	running = 1;
	epoch_set_wake(wake_sweeper);
	/* Replaces libfuse's handler, which would end the session. */
	if (ctl_cfg->targets_file) {
		struct sigaction sa = {.sa_handler = on_sighup, .sa_flags = SA_RESTART};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGHUP, &sa, NULL);
	}
	if (ctl_socket_path)
		log_info("msg=control-listening socket=%s", ctl_socket_path);
	return 0;
}

void ctl_server_stop(void)
{
	epoch_set_wake(NULL);
	if (running) {
		char q = 'q';
		if (write(wake[1], &q, 1) == 1)
			pthread_join(thread, NULL);
		running = 0;
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			if (clients[i].fd >= 0)
				drop(&clients[i]);
	}
	if (ctl_cfg && ctl_cfg->targets_file)
		signal(SIGHUP, SIG_IGN);
	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
		unlink(sock_path);
	}
	for (int i = 0; i < 2; i++)
		if (wake[i] >= 0) {
			close(wake[i]);
			wake[i] = -1;
		}
	ctl_socket_path = NULL;
}
