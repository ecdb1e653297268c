#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "backends/backend.h"
#include "backends/target.h"

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct efsmt_handle all = {.all_prev = &all, .all_next = &all};

static void handle_free(struct efsmt_handle *h)
{
	for (struct handle_at *a = handle_at(h), *older; a; a = older) {
		older = a->older;
		if (h->is_dir)
			a->t->ops->releasedir(a->t, a->bh);
		else
			a->t->ops->release(a->t, a->bh);
		atomic_fetch_sub_explicit(&a->t->open_handles, 1, memory_order_relaxed);
		target_put(a->t);
		if (a != &h->first)
			free(a);
	}
	pthread_mutex_destroy(&h->move_lock);
	free(h);
}

struct efsmt_handle *handle_new(struct target *t, uint64_t bh, int is_dir)
{
	struct efsmt_handle *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	h->first.t = t;
	h->first.bh = bh;
	h->first.older = NULL;
	atomic_init(&h->at, &h->first);
	h->is_dir = is_dir;
	h->rdonly = 0;
	h->flags = 0;
	h->uid = (uid_t)-1;
	h->gid = (gid_t)-1;
	h->pid = 0;
	h->killpriv = 0;
	pthread_mutex_init(&h->move_lock, NULL);
	h->failed_ms = 0;
	h->locks = NULL;
	atomic_init(&h->nlocks, 0);
	h->next = NULL;
	atomic_init(&h->refs, 1);
	target_get(t);
	atomic_fetch_add_explicit(&t->open_handles, 1, memory_order_relaxed);
	pthread_mutex_lock(&all_lock);
	h->all_next = &all;
	h->all_prev = all.all_prev;
	all.all_prev->all_next = h;
	all.all_prev = h;
	pthread_mutex_unlock(&all_lock);
	return h;
}

int handle_move(struct efsmt_handle *h, struct target *t2, uint64_t bh2)
{
	struct handle_at *a = malloc(sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->t = t2;
	a->bh = bh2;
	a->older = handle_at(h);
	target_get(t2);
	atomic_fetch_add_explicit(&t2->open_handles, 1, memory_order_relaxed);
	atomic_store_explicit(&h->at, a, memory_order_release);
	return 0;
}

void handle_get(struct efsmt_handle *h)
{
	atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

void handle_put(struct efsmt_handle *h)
{
	if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_lock(&all_lock);
	h->all_prev->all_next = h->all_next;
	h->all_next->all_prev = h->all_prev;
	pthread_mutex_unlock(&all_lock);
	handle_free(h);
}

void handle_release_all(void)
{
	while (all.all_next != &all) {
		struct efsmt_handle *h = all.all_next;
		all.all_next = h->all_next;
		h->all_next->all_prev = &all;
		handle_free(h);
	}
}
