#include "cred.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procgroups.h"

/* The group database fallback keeps at most this many groups per uid. */
#define CRED_DB_MAX_GROUPS 256
/* How long a calling thread's groups, once read, are taken as they were
 * (see recall), for how many callers per worker thread, and up to how many
 * groups (a caller with more is read on every request). */
#define CRED_RECALL_MS 1000
#define CRED_RECALL_SLOTS 8
#define CRED_RECALL_GROUPS 32
/* A thread remembers its groups to skip an unchanged setgroups; a longer
 * list is set again on every request. */
#define CRED_REMEMBER_GROUPS 64

struct groups_entry {
	uid_t uid;
	time_t fetched;
	int n;
	gid_t list[CRED_DB_MAX_GROUPS];
	struct groups_entry *next;
};

static int enabled;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct groups_entry *cache;
static atomic_int warned_no_pid;

static __thread int have_current;
static __thread uid_t cur_uid;
static __thread gid_t cur_gid;
static __thread int cur_n; /* -1: not remembered (too many) */
static __thread gid_t cur_groups[CRED_REMEMBER_GROUPS];

int cred_enabled(void)
{
	return enabled;
}

void cred_init(void)
{
	enabled = geteuid() == 0;
}

void cred_cleanup(void)
{
	pthread_mutex_lock(&cache_lock);
	while (cache) {
		struct groups_entry *n = cache->next;
		free(cache);
		cache = n;
	}
	pthread_mutex_unlock(&cache_lock);
}

/* uid's supplementary groups from the group database; the primary gid of
 * the request is added by the caller. An unknown uid has none. */
static int lookup_groups(uid_t uid, gid_t gid, gid_t *list)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	int n = CRED_DB_MAX_GROUPS;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return 0;
	if (getgrouplist(res->pw_name, gid, list, &n) < 0)
		n = CRED_DB_MAX_GROUPS; /* truncated: the first CRED_DB_MAX_GROUPS */
	return n;
}

/* Copy uid's groups from the group database into list (cached). */
static int db_groups_of(uid_t uid, gid_t gid, gid_t *list)
{
	time_t now = time(NULL);
	struct groups_entry *e;
	int n;

	pthread_mutex_lock(&cache_lock);
	for (e = cache; e; e = e->next)
		if (e->uid == uid && now - e->fetched < CRED_GROUPS_TTL_S) {
			memcpy(list, e->list, (size_t)e->n * sizeof(gid_t));
			n = e->n;
			pthread_mutex_unlock(&cache_lock);
			return n;
		}
	pthread_mutex_unlock(&cache_lock);

	n = lookup_groups(uid, gid, list);
	e = malloc(sizeof(*e));
	if (!e)
		return n;
	e->uid = uid;
	e->fetched = now;
	e->n = n;
	memcpy(e->list, list, (size_t)n * sizeof(gid_t));
	pthread_mutex_lock(&cache_lock);
	/* Drop a stale entry for the same uid, keep the list short. */
	for (struct groups_entry **pp = &cache; *pp; pp = &(*pp)->next)
		if ((*pp)->uid == uid) {
			struct groups_entry *old = *pp;
			*pp = old->next;
			free(old);
			break;
		}
	e->next = cache;
	cache = e;
	pthread_mutex_unlock(&cache_lock);
	return n;
}

/* What a worker thread last read of a calling thread's groups. A thread
 * whose uid and gid stay the same cannot change its groups without
 * privilege (CAP_SETGID), so they are read again only after
 * CRED_RECALL_MS, or when its uid or gid changed. */
struct recalled {
	pid_t tid;
	uid_t uid;
	gid_t gid;
	int n;
	long long at_ms;
	gid_t list[CRED_RECALL_GROUPS];
};
static __thread struct recalled recalls[CRED_RECALL_SLOTS];
static __thread unsigned recall_next;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The caller's groups as read less than CRED_RECALL_MS ago: their count,
 * or -1. */
static int recall(uid_t uid, gid_t gid, pid_t tid, gid_t *list)
{
	long long now = now_ms();

	for (int i = 0; i < CRED_RECALL_SLOTS; i++) {
		struct recalled *r = &recalls[i];
		if (r->tid == tid && r->uid == uid && r->gid == gid &&
		    now - r->at_ms < CRED_RECALL_MS) {
			memcpy(list, r->list, (size_t)r->n * sizeof(gid_t));
			return r->n;
		}
	}
	return -1;
}

static void remember(uid_t uid, gid_t gid, pid_t tid, const gid_t *list, int n)
{
	struct recalled *r = NULL;

	for (int i = 0; i < CRED_RECALL_SLOTS && !r; i++)
		if (recalls[i].tid == tid)
			r = &recalls[i];
	if (!r)
		r = &recalls[recall_next++ % CRED_RECALL_SLOTS];
	*r = (struct recalled){.tid = tid, .uid = uid, .gid = gid, .n = n, .at_ms = now_ms()};
	memcpy(r->list, list, (size_t)n * sizeof(gid_t));
}

/* The caller's groups into *list (stack space of CRED_DB_MAX_GROUPS, or a
 * malloc'd array in *heap for a caller with more): their count or -errno. */
static int caller_groups(uid_t uid, gid_t gid, pid_t tid, gid_t *list, gid_t **heap)
{
	*heap = NULL;
	if (uid == 0)
		return 0;
	if (tid <= 0) {
		if (!atomic_exchange(&warned_no_pid, 1))
			log_warn("msg=\"a caller's pid is not visible to efsmt (another pid "
				 "namespace): its groups come from efsmt's group database; share "
				 "the pid namespace (pid: host, shareProcessNamespace) for the "
				 "caller's own groups\" uid=%u",
				 (unsigned)uid);
		return db_groups_of(uid, gid, list);
	}
	int n = recall(uid, gid, tid, list);
	if (n >= 0)
		return n;
	n = proc_thread_groups(tid, list, CRED_DB_MAX_GROUPS);
	if (n >= 0 && n <= CRED_RECALL_GROUPS)
		remember(uid, gid, tid, list, n);
	if (n > CRED_DB_MAX_GROUPS) {
		int max = n > CRED_MAX_GROUPS ? CRED_MAX_GROUPS : n;
		*heap = malloc((size_t)max * sizeof(gid_t));
		if (!*heap)
			return -ENOMEM;
		n = proc_thread_groups(tid, *heap, max);
		if (n > max)
			n = max; /* it gained groups meanwhile: take what fit */
	}
	/* A caller that is gone (its request outlived it) has no groups left to
	 * use; uid and gid still say who it was. */
	return n == -ENOENT || n == -ESRCH ? 0 : n;
}

static int same_as_current(uid_t uid, gid_t gid, const gid_t *list, int n)
{
	return have_current && cur_uid == uid && cur_gid == gid && cur_n == n &&
	       memcmp(cur_groups, list, (size_t)n * sizeof(gid_t)) == 0;
}

int cred_become(uid_t uid, gid_t gid, pid_t tid)
{
	gid_t stack[CRED_DB_MAX_GROUPS], *heap;
	int rc = 0;

	if (!enabled)
		return 0;
	int n = caller_groups(uid, gid, tid, stack, &heap);
	if (n < 0)
		return n;
	const gid_t *list = heap ? heap : stack;
	if (same_as_current(uid, gid, list, n))
		goto out;
	/* Raw syscalls: glibc's setgroups would change every thread. */
	if (syscall(SYS_setgroups, (size_t)n, list) < 0) {
		rc = -errno;
		have_current = 0;
		goto out;
	}
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) {
		have_current = 0;
		rc = -EPERM;
		goto out;
	}
	have_current = 1;
	cur_uid = uid;
	cur_gid = gid;
	cur_n = n <= CRED_REMEMBER_GROUPS ? n : -1;
	if (cur_n > 0)
		memcpy(cur_groups, list, (size_t)n * sizeof(gid_t));
out:
	free(heap);
	return rc;
}
