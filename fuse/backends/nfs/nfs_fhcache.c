/*
 * nfs_fhcache.c - path to filehandle: every call names a path, and a cached
 * handle spares it the LOOKUPs of each component on every call.
 *
 * Filehandle cache: path -> filehandle (per uid, so that a cached handle
 * never skips a directory search permission check), each entry trusted for
 * NFS_FH_CACHE_TTL_MS after it was learned (the same order as the default
 * entry_timeout, so it adds little staleness to what the kernel caches
 * anyway). Our own unlink, rmdir and rename drop the affected paths (a
 * directory's whole subtree); a cached handle the server calls stale is
 * dropped and the call retried once from a fresh lookup. A change made
 * through another target can thus be unseen here for at most the TTL.
 * Devices and sockets are always looked up by name (nfsb_fh_cacheable).
 * Attributes are not cached: every getattr asks the server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "nfs/nfs4.h"
#include "nfs/wait.h"
#include "nfs_be.h"

#define NFS_FH_CACHE_TTL_MS 1000
#define NFS_FH_CACHE_MAX    65536 /* entries; past this the cache is emptied */

struct fh_entry {
	struct fh_entry *next;
	long long expires_ms;
	uint64_t who; /* who looked it up: nfsb_auth_key of its credentials */
	struct nfs_fh fh;
	char path[]; /* NUL-terminated */
};

/* A filehandle cached for one identity is not used for another: the
 * lookups that found it checked that identity's search permissions. */
uint64_t nfsb_auth_key(const struct rpc_auth *a)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over uid, gid, groups */
	uint32_t v[2 + RPC_AUTH_SYS_MAX_GROUPS];
	size_t n = 0;
	v[n++] = a->uid;
	v[n++] = a->gid;
	for (uint32_t i = 0; i < a->ngroups && i < RPC_AUTH_SYS_MAX_GROUPS; i++)
		v[n++] = a->groups[i];
	for (size_t i = 0; i < n * sizeof(uint32_t); i++)
		h = (h ^ ((const uint8_t *)v)[i]) * 1099511628211ull;
	return h;
}

/* ---- filehandle cache ---- */

static unsigned path_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return (unsigned)(h % NFS_FH_CACHE_BUCKETS);
}

void nfsb_cache_clear_locked(struct nfs_target *nt)
{
	for (int b = 0; b < NFS_FH_CACHE_BUCKETS; b++) {
		struct fh_entry *e = nt->bucket[b];
		while (e) {
			struct fh_entry *n = e->next;
			free(e);
			e = n;
		}
		nt->bucket[b] = NULL;
	}
	nt->cached = 0;
}

static int cache_get(struct nfs_target *nt, uint64_t who, const char *path, size_t n,
		     struct nfs_fh *fh)
{
	int hit = 0;
	long long now = nfs_now_ms();
	pthread_mutex_lock(&nt->cache_lock);
	for (struct fh_entry *e = nt->bucket[path_hash(path, n)]; e; e = e->next) {
		if (strncmp(e->path, path, n) == 0 && e->path[n] == '\0') {
			if (e->expires_ms > now && e->who == who) {
				*fh = e->fh;
				hit = 1;
			}
			break;
		}
	}
	pthread_mutex_unlock(&nt->cache_lock);
	return hit;
}

void nfsb_cache_put(struct nfs_target *nt, uint64_t who, const char *path, const struct nfs_fh *fh)
{
	size_t n = strlen(path);
	unsigned b = path_hash(path, n);
	pthread_mutex_lock(&nt->cache_lock);
	struct fh_entry *e;
	for (e = nt->bucket[b]; e; e = e->next)
		if (strcmp(e->path, path) == 0)
			break;
	if (!e) {
		if (nt->cached >= NFS_FH_CACHE_MAX)
			nfsb_cache_clear_locked(nt);
		e = malloc(sizeof *e + n + 1);
		if (!e) {
			pthread_mutex_unlock(&nt->cache_lock);
			return;
		}
		memcpy(e->path, path, n + 1);
		e->next = nt->bucket[b];
		nt->bucket[b] = e;
		nt->cached++;
	}
	e->fh = *fh;
	e->who = who;
	e->expires_ms = nfs_now_ms() + NFS_FH_CACHE_TTL_MS;
	pthread_mutex_unlock(&nt->cache_lock);
}

/* Drop path and, if subtree, everything below it. */
void nfsb_cache_forget(struct nfs_target *nt, const char *path, int subtree)
{
	size_t n = strlen(path);
	pthread_mutex_lock(&nt->cache_lock);
	if (subtree) {
		for (int b = 0; b < NFS_FH_CACHE_BUCKETS; b++) {
			struct fh_entry **pp = &nt->bucket[b];
			while (*pp) {
				struct fh_entry *e = *pp;
				if (strncmp(e->path, path, n) == 0 &&
				    (e->path[n] == '\0' || e->path[n] == '/')) {
					*pp = e->next;
					free(e);
					nt->cached--;
				} else {
					pp = &e->next;
				}
			}
		}
	} else {
		struct fh_entry **pp = &nt->bucket[path_hash(path, n)];
		while (*pp) {
			struct fh_entry *e = *pp;
			if (strcmp(e->path, path) == 0) {
				*pp = e->next;
				free(e);
				nt->cached--;
				break;
			}
			pp = &e->next;
		}
	}
	pthread_mutex_unlock(&nt->cache_lock);
}

/* Drop path and all its ancestors (one of them went stale). */
void nfsb_cache_forget_chain(struct nfs_target *nt, const char *path)
{
	char buf[BE_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (;;) {
		nfsb_cache_forget(nt, buf, 0);
		char *slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			break;
		*slash = '\0';
	}
}

/* ---- path resolution ---- */

/* Whether a filehandle may be cached (used later without a LOOKUP). Not
 * a device or socket: nfs-ganesha's VFS backend reaches those through the
 * directory and name it last looked them up by, and a GETATTR by handle
 * after that name went (an unlink of one hard link, here or through
 * another server) fails with NFS4ERR_INVAL, after which even a LOOKUP of
 * the remaining name does. Reached by name in the same COMPOUND (LOOKUP,
 * GETATTR), such a file works; it costs a LOOKUP per call, and such
 * files are few. */
int nfsb_fh_cacheable(mode_t mode)
{
	return !S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISSOCK(mode);
}

/* path -> filehandle: the cache, else one COMPOUND of LOOKUPs from the
 * nearest cached ancestor. attr (may be NULL) is filled only when a lookup
 * was made (*fresh set). */
int nfsb_resolve(struct nfs_target *nt, struct nfs_client *cl, const struct rpc_auth *cr,
		 const char *path, struct nfs_fh *fh, struct nfs_attr *attr, int *fresh)
{
	size_t len = strlen(path);
	*fresh = 0;
	if (len >= BE_PATH_MAX)
		return -ENAMETOOLONG;
	if (len <= 1) {
		*fh = nt->root;
		return 0;
	}
	if (cache_get(nt, nfsb_auth_key(cr), path, len, fh))
		return 0;
	/* Nearest cached ancestor. */
	struct nfs_fh base = nt->root;
	size_t cut = 0;
	for (size_t i = len; i > 1; i--) {
		if (path[i - 1] != '/' || i - 1 == 0)
			continue;
		if (cache_get(nt, cr->uid, path, i - 1, &base)) {
			cut = i - 1;
			break;
		}
	}
	struct nfs_attr tmp;
	int err = nfs_resolve(cl, cr, &base, path + cut, fh, attr ? attr : &tmp);
	if (err == -ESTALE && cut) {
		nfsb_cache_forget_chain(nt, path);
		err = nfs_resolve(cl, cr, &nt->root, path, fh, attr ? attr : &tmp);
	}
	if (err)
		return err;
	*fresh = 1;
	if (nfsb_fh_cacheable((attr ? attr : &tmp)->st.st_mode))
		nfsb_cache_put(nt, nfsb_auth_key(cr), path, fh);
	return 0;
}

/* The parent directory's handle and the last component of path. */
int nfsb_resolve_parent(struct nfs_target *nt, struct nfs_client *cl, const struct rpc_auth *cr,
			const char *path, struct nfs_fh *dir, const char **name)
{
	char buf[BE_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fresh;
	if (!slash || !slash[1])
		return -EINVAL;
	size_t n = (size_t)(slash - path);
	if (n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n);
	buf[n] = '\0';
	*name = slash + 1;
	return nfsb_resolve(nt, cl, cr, n ? buf : "/", dir, NULL, &fresh);
}

void nfsb_forget_parent(struct nfs_target *nt, const char *path)
{
	char buf[BE_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	char *slash = strrchr(buf, '/');
	if (slash && slash != buf) {
		*slash = '\0';
		nfsb_cache_forget_chain(nt, buf);
	}
}
