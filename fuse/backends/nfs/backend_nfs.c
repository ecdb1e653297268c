/*
 * backend_nfs.c - a target reached with efsmt's own NFSv4.1 client
 * (nfs/nfs4.h): nfs://HOST[:PORT][/EXPORT-PATH].
 *
 * This file attaches and detaches targets and holds the backend_ops table;
 * the operations are in the nfs_*.c files beside it, which share nfs_be.h:
 * identity (nfs_cred.c), path to filehandle (nfs_fhcache.c), write-behind
 * (nfs_wb.c), names and attributes (nfs_meta.c), open files (nfs_file.c),
 * locks (nfs_lock.c), directories (nfs_dir.c), extended attributes
 * (nfs_xattr.c).
 *
 * Lanes: `lanes` connections per target, one NFSv4.1 client of the
 * server (one client ID, a session per connection: nfs4.h, nfs_clid).
 * Calls take them in turn, READ and WRITE each on its own: an open's
 * stateid is good on every lane, so one file moves over all of them. The
 * OPEN, its CLOSE, COMMIT and locks stay on the lane that opened it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backend_nfs.h"
#include "base/log.h"
#include "nfs/nfs4.h"
#include "backends/target.h"
#include "nfs_be.h"

#define NFS_LANES_DEFAULT 2
#define NFS_HINT_UNREACHABLE "is port 2049 open in the mount target's security group?"

static atomic_int nfs_lanes = NFS_LANES_DEFAULT;
static atomic_int nfs_timeout_ms; /* 0: the RPC default */
static const struct tls_conf *nfs_tls; /* set once before any target attaches */
static int (*nfs_tls_prepare)(char *err, size_t errlen);

/* For the option parser: connections per target opened from now on. */
void backend_nfs_set_lanes(int n)
{
	atomic_store(&nfs_lanes, n < 1 ? 1 : n > NFS_LANES_MAX ? NFS_LANES_MAX : n);
}

void backend_nfs_set_timeout(int ms)
{
	atomic_store(&nfs_timeout_ms, ms > 0 ? ms : 0);
}

void backend_nfs_set_tls(const struct tls_conf *conf, int (*prepare)(char *err, size_t errlen))
{
	nfs_tls = conf;
	nfs_tls_prepare = prepare;
}

/* ---- attach / detach ---- */

static void close_lanes(struct nfs_target *nt)
{
	for (int i = 0; i < nt->nlanes; i++)
		nfs_client_close(nt->lane[i]);
	nt->nlanes = 0;
	nfs_clid_free(nt->clid);
	nt->clid = NULL;
}

static int nfs_attach(struct target *t, char *err, size_t errlen)
{
	char host[256], path[PATH_MAX], why[256];
	uint16_t port;
	if (nfs_parse_uri(t->uri, host, sizeof host, &port, path, sizeof path)) {
		snprintf(err, errlen, "not an nfs://HOST[:PORT][/PATH] URI");
		return -EINVAL;
	}
	if (t->subdir && t->subdir[0]) {
		size_t pl = strlen(path);
		int n = snprintf(path + (pl == 1 ? 0 : pl), sizeof path - pl, "%s", t->subdir);
		if (n < 0 || (size_t)n >= sizeof path - pl) {
			snprintf(err, errlen, "path too long");
			return -ENAMETOOLONG;
		}
	}
	struct nfs_target *nt = calloc(1, sizeof *nt);
	if (!nt)
		return -ENOMEM;
	pthread_mutex_init(&nt->cache_lock, NULL);
	struct nfs_opts o = { .port = port, .timeout_ms = atomic_load(&nfs_timeout_ms) };
	int lanes = atomic_load(&nfs_lanes);
	int e = 0;
	if (nfs_tls) {
		if (nfs_tls_prepare)
			e = nfs_tls_prepare(err, errlen);
		if (!e)
			e = tls_target_new(nfs_tls, host, &nt->tls, err, errlen);
		if (e)
			goto fail;
		o.tls = nt->tls;
	}
	/* The lanes are one client of the server (nfs4.h): an open made on
	 * one is read and written through all of them. */
	nt->clid = o.clid = nfs_clid_new();
	if (!o.clid) {
		snprintf(err, errlen, "out of memory");
		e = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < lanes && !e; i++) {
		e = nfs_client_open(host, &o, &nt->lane[i], why, sizeof why);
		if (!e)
			nt->nlanes++;
	}
	if (e) {
		int refused = e == -ECONNREFUSED || e == -ETIMEDOUT || e == -EHOSTUNREACH ||
			      e == -ENETUNREACH;
		snprintf(err, errlen, "%s%s%s%s", why, refused ? " (" : "",
			 refused ? NFS_HINT_UNREACHABLE : "", refused ? ")" : "");
		goto fail;
	}
	struct nfs_attr a;
	e = nfs_resolve(nt->lane[0], NULL, NULL, path, &nt->root, &a);
	if (!e && !S_ISDIR(a.st.st_mode))
		e = -ENOTDIR;
	if (e == -EACCES || e == -EPERM) {
		/* What EFS answers when its file system policy or an access
		 * point's rules refuse this client. */
		snprintf(err, errlen,
			 "export path %s: access denied by the server (does the file system "
			 "policy require TLS, -o iam, or an access point (-o accesspoint=) this "
			 "client's IAM role may use?)",
			 path);
		goto fail;
	}
	if (e) {
		snprintf(err, errlen, "export path %s: %s (the export's pseudo path, e.g. /)", path,
			 strerror(-e));
		goto fail;
	}
	/* The export's name limit, for statfs (see nfs_be_statfs). */
	struct statvfs sv;
	if (nfs_statfs(nt->lane[0], NULL, &nt->root, &sv) == 0)
		nt->maxname = (uint32_t)sv.f_namemax;
	else
		nt->maxname = NFS4_MAXNAME;
	t->priv = nt;
	return 0;
fail:
	close_lanes(nt);
	tls_target_free(nt->tls);
	pthread_mutex_destroy(&nt->cache_lock);
	free(nt);
	return e;
}

static void nfs_detach(struct target *t)
{
	struct nfs_target *nt = NT(t);
	if (!nt)
		return;
	close_lanes(nt);
	tls_target_free(nt->tls);
	pthread_mutex_lock(&nt->cache_lock);
	nfsb_cache_clear_locked(nt);
	pthread_mutex_unlock(&nt->cache_lock);
	pthread_mutex_destroy(&nt->cache_lock);
	free(nt);
	t->priv = NULL;
}

int backend_nfs_rpcs(struct target *t, struct nfs_rpc_counts *out)
{
	struct nfs_target *nt = t->ops == &backend_nfs_ops ? NT(t) : NULL;
	if (!nt || !nt->clid)
		return 0;
	nfs_clid_rpcs(nt->clid, out);
	return 1;
}

int backend_nfs_tls_info(struct target *t, struct tls_info *info, unsigned *resumptions)
{
	struct nfs_target *nt = t->ops == &backend_nfs_ops ? NT(t) : NULL;
	if (!nt || !nt->tls)
		return 0;
	memset(info, 0, sizeof *info);
	if (nt->nlanes)
		nfs_client_tls_info(nt->lane[0], info);
	*resumptions = tls_target_resumptions(nt->tls);
	return 1;
}

static void nfs_be_abort(struct target *t)
{
	struct nfs_target *nt = NT(t);
	for (int i = 0; i < nt->nlanes; i++)
		nfs_client_abort(nt->lane[i]);
}

/* Every lane must answer: an open file may be on any of them. */
static int nfs_be_probe(struct target *t)
{
	struct nfs_target *nt = NT(t);
	for (int i = 0; i < nt->nlanes; i++) {
		int e = nfs_client_probe(nt->lane[i]);
		if (e) {
			/* Say why a reconnect fails (a TLS handshake's reason and
			 * fix), once per change rather than once per probe. */
			char why[sizeof nt->probe_err];
			nfs_client_last_error(nt->lane[i], why, sizeof why);
			if (why[0] && strcmp(why, nt->probe_err) != 0)
				log_warn("msg=target-reconnect-failed id=%s error=\"%s\"", t->id, why);
			snprintf(nt->probe_err, sizeof nt->probe_err, "%s", why);
			return e;
		}
	}
	nt->probe_err[0] = '\0';
	return 0;
}

const struct backend_ops backend_nfs_ops = {
	.scheme = "nfs",
	.attach = nfs_attach,
	.detach = nfs_detach,
	.getattr = nfs_g_getattr,
	.setattr = nfs_g_setattr,
	.readlink = nfs_g_readlink,
	.mknod = nfs_g_mknod,
	.mkdir = nfs_g_mkdir,
	.symlink = nfs_g_symlink,
	.link = nfs_g_link,
	.unlink = nfs_g_unlink,
	.rmdir = nfs_g_rmdir,
	.rename = nfs_g_rename,
	.statfs = nfs_be_statfs,
	.abort = nfs_be_abort,
	.probe = nfs_be_probe,
	.access = nfs_g_access,
	.create = nfs_g_create,
	.open = nfs_g_open,
	.read_ref = nfs_be_read_ref,
	.write = nfs_be_write,
	.handle_fd = nfs_be_handle_fd,
	.fgetattr = nfs_be_fgetattr,
	.fsync = nfs_be_fsync,
	.flush = nfs_be_flush,
	.lock_new = nfs_be_lock_new,
	.lock_set = nfs_be_lock_set,
	.lock_get = nfs_be_lock_get,
	.lock_check = nfs_be_lock_check,
	.lock_free = nfs_be_lock_free,
	.release = nfs_be_release,
	.resume = nfs_be_resume,
	.pending = nfs_be_pending,
	.fence_ms = nfs_be_fence_ms,
	.fallocate = nfs_be_fallocate,
	.lseek = nfs_be_lseek,
	.copy_range = nfs_be_copy_range,
	.opendir = nfs_g_opendir,
	.readdir = nfs_be_readdir,
	.fsyncdir = nfs_be_fsyncdir,
	.releasedir = nfs_be_releasedir,
	.getxattr = nfs_be_getxattr,
	.setxattr = nfs_be_setxattr,
	.listxattr = nfs_be_listxattr,
	.removexattr = nfs_be_removexattr,
	.xattr_cannot_hold = nfs_be_xattr_cannot_hold,
};
