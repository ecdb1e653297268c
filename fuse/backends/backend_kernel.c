/*
 * backend_kernel.c - kernel://IP[:PORT][/PATH]: efsmt mounts the mount
 * target with the kernel's NFSv4.1 client (its page cache, readahead and
 * maturity) into a private directory KERNEL_RUN_DIR/PID-N and routes over
 * that directory as over a dir:// target (backend_dir.c does every call).
 *
 * The mount is made with mount(2), not mount(8): the kernel parses the nfs4
 * text options itself when they carry addr=, so hosts without nfs-common's
 * mount.nfs helper work. It runs in a child process so that an address that
 * never answers fails the attach after KERNEL_MOUNT_TIMEOUT_MS instead of
 * hanging the daemon (the child is killed; NFS waits are killable).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend_kernel.h"
#include "base/log.h"
#include "nfs/nfs4.h"
#include "target.h"
#include "base/mountinfo.h"
#include "base/paths.h"

#define KERNEL_MOUNT_TIMEOUT_MS 15000 /* EFS answers a mount in well under 1 s */
#define KERNEL_MOUNT_POLL_MS	10
#define KERNEL_RUN_MODE		0700 /* the mounts are efsmt's, not the users' */
#define KERNEL_OPTS_MAX		1024
#define PROC_NFS_VOLUMES	"/proc/fs/nfsfs/volumes"
#define PROC_NFS_SERVERS	"/proc/fs/nfsfs/servers"
#define TCP_ESTABLISHED_HEX	0x01 /* the st column of /proc/net/tcp */

struct kernel_target {
	char mnt[64];	/* KERNEL_RUN_DIR/PID-N */
	char addr[64];	/* numeric, as in the URI (no brackets) */
	uint16_t port;
	int v6;
};

static atomic_uint mount_seq;
static atomic_int tls_on;

void backend_kernel_set_tls(int on)
{
	atomic_store(&tls_on, on);
}
static pthread_once_t stale_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------ stale mounts */

/* A mount directory's owner is alive: its pid runs an efsmt. */
static int owner_alive(const char *name)
{
	char path[64], comm[32] = "";
	char *end;
	long pid = strtol(name, &end, 10);
	FILE *f;

	if (end == name || *end != '-' || pid <= 0)
		return 0; /* not one of ours: not alive, nobody else writes here */
	if (pid == (long)getpid())
		return 1;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "efsmt") == 0;
}

static void clean_stale(void)
{
	const char *prefix = KERNEL_RUN_DIR "/";
	size_t plen = strlen(prefix);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char mp[PATH_MAX];
			/* id parent major:minor root MOUNTPOINT ... */
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
				continue;
			mountinfo_unescape(mp);
			if (strncmp(mp, prefix, plen) != 0 || strchr(mp + plen, '/') ||
			    owner_alive(mp + plen))
				continue;
			if (umount2(mp, MNT_DETACH) == 0)
				log_warn("msg=kernel-stale-unmounted mount=%s reason=\"left by an efsmt "
					 "that is gone\"",
					 mp);
			else
				log_warn("msg=kernel-stale-umount-failed mount=%s error=\"%s\"", mp,
					 strerror(errno));
		}
		fclose(f);
	}
	DIR *d = opendir(KERNEL_RUN_DIR);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || owner_alive(e->d_name))
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s%s", prefix, e->d_name);
		rmdir(p); /* fails while still mounted: then the next start tries */
	}
	closedir(d);
}

void backend_kernel_clean_stale(void)
{
	pthread_once(&stale_once, clean_stale);
}

/* ------------------------------------------------------------ mounting */

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* mount(2) in a child, killed after KERNEL_MOUNT_TIMEOUT_MS: 0 or -errno
 * (-ETIMEDOUT). The child only makes system calls, so forking a threaded
 * process is safe. */
static int mount_with_timeout(const char *src, const char *mnt, const char *opts)
{
	struct timespec t0;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(mount(src, mnt, "nfs4", 0, opts) == 0 ? 0 : errno);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (elapsed_ms(&t0) >= KERNEL_MOUNT_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			umount2(mnt, MNT_DETACH); /* in case it got there as it died */
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, KERNEL_MOUNT_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!WIFEXITED(status))
		return -EINTR;
	return -WEXITSTATUS(status);
}

/* What to do about a failed mount(2), for the one-line error. */
static const char *mount_hint(int e)
{
	switch (e) {
	case EPERM:
		return "kernel:// targets need root (CAP_SYS_ADMIN)";
	case ENODEV:
		return "this kernel has no nfs4 file system: modprobe nfsv4 (a container needs it "
		       "on its host)";
	case ETIMEDOUT:
		return "no answer: is port 2049 open in the mount target's security group?";
	case ECONNREFUSED:
		return "nothing listens on the NFS port of that address";
	case ENOENT:
		return "the server does not export that path";
	case EACCES:
		return "the server refused this client (export rules or file system policy)";
	case EPROTONOSUPPORT:
		return "the server does not speak NFSv4.1";
	}
	return "see the kernel log (dmesg) for the NFS client's reason";
}

static int parse_target(struct target *t, struct kernel_target *kt, char *rpath, size_t rlen,
			char *err, size_t errlen)
{
	const char *rest = strstr(t->uri, "://");
	char nfsuri[1200], host[sizeof(kt->addr)];
	unsigned char bin[sizeof(struct in6_addr)];

	snprintf(nfsuri, sizeof(nfsuri), "nfs://%s", rest ? rest + 3 : t->uri);
	if (nfs_parse_uri(nfsuri, host, sizeof(host), &kt->port, rpath, rlen) < 0) {
		snprintf(err, errlen, "not kernel://IP[:PORT][/PATH]");
		return -EINVAL;
	}
	kt->v6 = inet_pton(AF_INET6, host, bin) == 1;
	if (!kt->v6 && inet_pton(AF_INET, host, bin) != 1) {
		snprintf(err, errlen,
			 "'%s' is not an IP address (the kernel mounts addresses: give the mount "
			 "target's IP)",
			 host);
		return -EINVAL;
	}
	snprintf(kt->addr, sizeof(kt->addr), "%s", host);
	return 0;
}

int backend_kernel_attach(struct target *t, char *err, size_t errlen)
{
	struct kernel_target *kt = calloc(1, sizeof(*kt));
	char rpath[1024], src[1200], opts[KERNEL_OPTS_MAX];
	const char *coh = getenv("EFSMT_KERNEL_OPTS");
	int rc;

	if (!kt)
		return -ENOMEM;
	rc = parse_target(t, kt, rpath, sizeof(rpath), err, errlen);
	if (rc < 0)
		goto fail;
	if (atomic_load(&tls_on)) {
		/* Never fall back to plaintext where encryption was asked for. */
		snprintf(err, errlen,
			 "the kernel NFS client mounts in plaintext and TLS is on (-o tls, or by "
			 "default with a file system id): give -o notls to use kernel:// targets, "
			 "or nfs:// targets for TLS");
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	backend_kernel_clean_stale();
	rc = paths_mkdir_p(KERNEL_RUN_DIR, KERNEL_RUN_MODE);
	if (rc < 0) {
		snprintf(err, errlen, "cannot make %s: %s (kernel:// targets need root)",
			 KERNEL_RUN_DIR, strerror(-rc));
		goto fail;
	}
	snprintf(kt->mnt, sizeof(kt->mnt), "%s/%ld-%u", KERNEL_RUN_DIR, (long)getpid(),
		 atomic_fetch_add(&mount_seq, 1) + 1);
	if (mkdir(kt->mnt, KERNEL_RUN_MODE) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot make %s: %s", kt->mnt, strerror(errno));
		goto fail;
	}
	snprintf(src, sizeof(src), "%s%s%s:%s", kt->v6 ? "[" : "", kt->addr, kt->v6 ? "]" : "",
		 rpath[0] ? rpath : "/");
	snprintf(opts, sizeof(opts), "%s%s%s,addr=%s,port=%u", KERNEL_EFS_OPTS,
		 coh && !*coh ? "" : ",", coh ? coh : KERNEL_COHERENCE_OPTS, kt->addr, kt->port);
	rc = mount_with_timeout(src, kt->mnt, opts);
	if (rc < 0) {
		snprintf(err, errlen, "mount -t nfs4 %s: %s (%s)", src, strerror(-rc),
			 mount_hint(-rc));
		rmdir(kt->mnt);
		goto fail;
	}
	rc = backend_dir_attach_root(t, kt->mnt, kt, err, errlen);
	if (rc < 0) {
		umount2(kt->mnt, MNT_DETACH);
		rmdir(kt->mnt);
		goto fail;
	}
	log_info("msg=kernel-mounted id=%s src=%s mount=%s options=%s", t->id, src, kt->mnt, opts);
	struct kernel_info ki;
	if (backend_kernel_info(t, &ki) && ki.server[0] && strcmp(ki.server, kt->addr) != 0)
		log_warn("msg=kernel-trunked id=%s addr=%s server=%s reason=\"the kernel NFS client "
			 "found %s to be the server of %s and shares one client and connection: "
			 "see README.md, Kernel NFS targets\"",
			 t->id, kt->addr, ki.server, kt->addr, ki.server);
	return 0;
fail:
	free(kt);
	return rc;
}

void backend_kernel_detach(struct target *t)
{
	struct kernel_target *kt = backend_dir_ext(t);

	backend_dir_detach(t);
	if (!kt)
		return;
	/* Nothing of efsmt's holds the mount now; a lazy unmount covers a
	 * server that does not answer (a hard mount's final flush would wait
	 * for it forever). */
	if (umount2(kt->mnt, 0) < 0 && umount2(kt->mnt, MNT_DETACH) < 0)
		log_warn("msg=kernel-umount-failed id=%s mount=%s error=\"%s\"", t->id, kt->mnt,
			 strerror(errno));
	else
		log_info("msg=kernel-unmounted id=%s mount=%s", t->id, kt->mnt);
	rmdir(kt->mnt);
	free(kt);
}

/* The target stopped answering: a hard mount would keep calls waiting
 * forever. umount -f kills the mount's RPCs in flight (they fail with EIO)
 * and then fails with EBUSY, as efsmt holds the mount open: the mount stays
 * and answers again once the server does. */
void backend_kernel_abort(struct target *t)
{
	struct kernel_target *kt = backend_dir_ext(t);

	if (kt)
		umount2(kt->mnt, MNT_FORCE);
}

/* ------------------------------------------------------------ /proc */

static void hex_to_addr(const char *hex, char *out, size_t outlen)
{
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n = strlen(hex) / 2;

	out[0] = '\0';
	if (n != sizeof(struct in_addr) && n != sizeof(struct in6_addr))
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return;
		bin[i] = (unsigned char)v;
	}
	inet_ntop(n == sizeof(struct in_addr) ? AF_INET : AF_INET6, bin, out, (socklen_t)outlen);
}

/* Established TCP connections to the target's address and port. */
static int count_connections(const struct kernel_target *kt)
{
	unsigned char want[sizeof(struct in6_addr)];
	const char *file = kt->v6 ? "/proc/net/tcp6" : "/proc/net/tcp";
	char line[512];
	int n = 0;
	FILE *f;

	if (inet_pton(kt->v6 ? AF_INET6 : AF_INET, kt->addr, want) != 1)
		return 0;
	f = fopen(file, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char rem[64];
		unsigned port, st;
		/* sl local_address rem_address st: the address is the raw
		 * network-order words printed as host-order hex. */
		if (sscanf(line, "%*s %*s %63[0-9A-Fa-f]:%x %x", rem, &port, &st) != 3)
			continue;
		if (port != kt->port || st != TCP_ESTABLISHED_HEX)
			continue;
		size_t words = strlen(rem) / 8;
		unsigned char got[sizeof(struct in6_addr)];
		if (words * 4 != (kt->v6 ? sizeof(struct in6_addr) : sizeof(struct in_addr)))
			continue;
		for (size_t w = 0; w < words; w++) {
			char part[9];
			memcpy(part, rem + 8 * w, 8);
			part[8] = '\0';
			uint32_t raw = (uint32_t)strtoul(part, NULL, 16);
			memcpy(got + 4 * w, &raw, 4);
		}
		if (memcmp(got, want, words * 4) == 0)
			n++;
	}
	fclose(f);
	return n;
}

/* The device numbers of the mount at mnt, from /proc/self/mountinfo. */
static int mount_dev(const char *mnt, unsigned *maj, unsigned *min)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (rc < 0 && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];
		/* id parent MAJOR:MINOR root MOUNTPOINT ... */
		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", maj, min, mp) == 3) {
			mountinfo_unescape(mp);
			if (strcmp(mp, mnt) == 0)
				rc = 0;
		}
	}
	fclose(f);
	return rc;
}

int backend_kernel_info(struct target *t, struct kernel_info *ki)
{
	struct kernel_target *kt;
	char line[512], want_dev[32], server_hex[64] = "", server_port[16] = "";
	FILE *f;

	if (t->ops != &backend_kernel_ops || !(kt = backend_dir_ext(t)))
		return 0;
	memset(ki, 0, sizeof(*ki));
	snprintf(ki->mount, sizeof(ki->mount), "%s", kt->mnt);
	snprintf(ki->addr, sizeof(ki->addr), "%s", kt->addr);
	ki->connections = count_connections(kt);
	ki->client_users = -1;
	/* The device from mountinfo, not stat(2): that would wait for the
	 * server of a hard mount, and the control thread must not. */
	if (mount_dev(kt->mnt, &ki->dev_major, &ki->dev_minor) < 0)
		return 1;
	snprintf(want_dev, sizeof(want_dev), "%u:%u", ki->dev_major, ki->dev_minor);
	/* NV SERVER PORT DEV FSID FSC */
	f = fopen(PROC_NFS_VOLUMES, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char nv[8], srv[64], port[16], dev[32];
			if (sscanf(line, "%7s %63s %15s %31s", nv, srv, port, dev) == 4 &&
			    strcmp(dev, want_dev) == 0) {
				snprintf(server_hex, sizeof(server_hex), "%s", srv);
				snprintf(server_port, sizeof(server_port), "%s", port);
				break;
			}
		}
		fclose(f);
	}
	if (!server_hex[0])
		return 1;
	hex_to_addr(server_hex, ki->server, sizeof(ki->server));
	/* NV SERVER PORT USE HOSTNAME */
	f = fopen(PROC_NFS_SERVERS, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char nv[8], srv[64], port[16];
			int use;
			if (sscanf(line, "%7s %63s %15s %d", nv, srv, port, &use) == 4 &&
			    strcmp(srv, server_hex) == 0 && strcmp(port, server_port) == 0) {
				ki->client_users = use;
				break;
			}
		}
		fclose(f);
	}
	return 1;
}
