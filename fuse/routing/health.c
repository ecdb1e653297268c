#include "health.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "backends/backend.h"
#include "base/epoch.h"
#include "base/log.h"
#include "route.h"

/* One probe in flight: its thread holds a reference on the target. */
struct probe {
	struct target *t;
	pthread_t th;
	struct timespec started;
	atomic_int done;
	int rc;
	struct probe *next;
};

static struct {
	pthread_t th;
	int running;
	int interval_ms;
	int timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	struct probe *probes; /* monitor thread only */
} hm = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

int health_is_unreachable(int rc)
{
	return be_unreachable(rc);
}

static void mark(struct target *t, int down, const char *why)
{
	int want = down ? TARGET_DOWN : TARGET_UP;
	int from = down ? TARGET_UP : TARGET_DOWN;
	/* Draining targets keep draining. */
	if (atomic_compare_exchange_strong(&t->state, &from, want)) {
		if (down)
			log_warn("msg=target-down id=%s uri=%s reason=\"%s\"", t->id, t->uri, why);
		else
			log_info("msg=target-up id=%s uri=%s", t->id, t->uri);
	}
}

int health_note(struct target *t, int rc)
{
	if (rc < 0 && health_is_unreachable(rc))
		mark(t, 1, strerror(-rc));
	return rc;
}

static long ms_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

static void *probe_main(void *arg)
{
	struct probe *p = arg;
	struct statvfs sv;
	p->rc = p->t->ops->probe ? p->t->ops->probe(p->t) : p->t->ops->statfs(p->t, "/", &sv);
	atomic_store(&p->done, 1);
	return NULL;
}

static struct probe *probe_of(struct target *t)
{
	for (struct probe *p = hm.probes; p; p = p->next)
		if (p->t == t)
			return p;
	return NULL;
}

static void probe_start(struct target *t)
{
	struct probe *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	target_get(t);
	p->t = t;
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	if (pthread_create(&p->th, NULL, probe_main, p) != 0) {
		target_put(t);
		free(p);
		return;
	}
	p->next = hm.probes;
	hm.probes = p;
}

static void cut(struct target *t)
{
	if (t->ops->abort)
		t->ops->abort(t);
}

/* Reap finished probes; mark late ones down and cut their connections. */
static void sweep(int all)
{
	for (struct probe **pp = &hm.probes; *pp;) {
		struct probe *p = *pp;
		if (!atomic_load(&p->done)) {
			if (ms_since(&p->started) >= hm.timeout_ms) {
				char why[64];
				snprintf(why, sizeof(why), "no answer to a probe in %d ms",
					 hm.timeout_ms);
				mark(p->t, 1, why);
				/* Again each tick: a late probe may be reconnecting
				 * to a server that accepts and never answers. */
				cut(p->t);
			}
			if (!all) {
				pp = &p->next;
				continue;
			}
			cut(p->t); /* stopping: make it return */
		}
		pthread_join(p->th, NULL);
		if (!all) {
			atomic_store(&p->t->refused, p->rc == -ECONNREFUSED);
			if (p->rc < 0)
				mark(p->t, 1, strerror(-p->rc));
			else
				mark(p->t, 0, NULL);
		}
		*pp = p->next;
		target_put(p->t);
		free(p);
	}
}

/* Every target of the current table, with a reference each. */
static size_t snapshot(struct target ***out)
{
	epoch_enter();
	struct route_table *rt = route_current();
	size_t n = rt ? rt->n : 0;
	struct target **v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		v[i] = rt->t[i];
		target_get(v[i]);
	}
	epoch_exit();
	*out = v;
	return v ? n : 0;
}

static void *monitor_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hm.lock);
	while (!hm.stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += hm.interval_ms / 1000;
		until.tv_nsec += (long)(hm.interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&hm.wake, &hm.lock, &until);
		if (hm.stopping)
			break;
		pthread_mutex_unlock(&hm.lock);
		struct target **v;
		size_t n = snapshot(&v);
		sweep(0);
		for (size_t i = 0; i < n; i++) {
			if (!probe_of(v[i]))
				probe_start(v[i]);
			target_put(v[i]);
		}
		free(v);
		pthread_mutex_lock(&hm.lock);
	}
	pthread_mutex_unlock(&hm.lock);
	sweep(1);
	return NULL;
}

int health_start(int interval_ms, int timeout_ms)
{
	if (interval_ms <= 0)
		return 0;
	hm.interval_ms = interval_ms;
	hm.timeout_ms = timeout_ms > 0 ? timeout_ms : HEALTH_TIMEOUT_MS_DEFAULT;
	hm.stopping = 0;
	int rc = pthread_create(&hm.th, NULL, monitor_main, NULL);
	if (rc)
		return -rc;
	hm.running = 1;
	return 0;
}

void health_stop(void)
{
	if (!hm.running)
		return;
	pthread_mutex_lock(&hm.lock);
	hm.stopping = 1;
	pthread_cond_signal(&hm.wake);
	pthread_mutex_unlock(&hm.lock);
	pthread_join(hm.th, NULL);
	hm.running = 0;
}
