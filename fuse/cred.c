#include "cred.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct groups_entry {
	uid_t uid;
	time_t fetched;
	int n;
	gid_t list[CRED_MAX_GROUPS];
	struct groups_entry *next;
};

static int enabled;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct groups_entry *cache;

static __thread int have_current;
static __thread uid_t cur_uid;
static __thread gid_t cur_gid;
static __thread time_t cur_groups_time;

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
	int n = CRED_MAX_GROUPS;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return 0;
	if (getgrouplist(res->pw_name, gid, list, &n) < 0)
		n = CRED_MAX_GROUPS; /* truncated: the first CRED_MAX_GROUPS */
	return n;
}

/* Copy uid's groups into list; returns the count and when they were read. */
static int groups_of(uid_t uid, gid_t gid, gid_t *list, time_t *fetched)
{
	time_t now = time(NULL);
	struct groups_entry *e;
	int n;

	pthread_mutex_lock(&cache_lock);
	for (e = cache; e; e = e->next)
		if (e->uid == uid && now - e->fetched < CRED_GROUPS_TTL_S) {
			memcpy(list, e->list, (size_t)e->n * sizeof(gid_t));
			n = e->n;
			*fetched = e->fetched;
			pthread_mutex_unlock(&cache_lock);
			return n;
		}
	pthread_mutex_unlock(&cache_lock);

	n = lookup_groups(uid, gid, list);
	e = malloc(sizeof(*e));
	if (!e) {
		*fetched = 0;
		return n;
	}
	e->uid = uid;
	e->fetched = *fetched = now;
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

int cred_become(uid_t uid, gid_t gid)
{
	gid_t list[CRED_MAX_GROUPS];
	time_t fetched;
	int n;

	if (!enabled)
		return 0;
	if (have_current && cur_uid == uid && cur_gid == gid &&
	    time(NULL) - cur_groups_time < CRED_GROUPS_TTL_S)
		return 0;
	n = uid == 0 ? 0 : groups_of(uid, gid, list, &fetched);
	if (uid == 0)
		fetched = time(NULL);
	/* Raw syscalls: glibc's setgroups would change every thread. */
	if (syscall(SYS_setgroups, (size_t)n, list) < 0)
		return -errno;
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) {
		have_current = 0;
		return -EPERM;
	}
	have_current = 1;
	cur_uid = uid;
	cur_gid = gid;
	cur_groups_time = fetched;
	return 0;
}
