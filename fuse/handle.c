#include "handle.h"

#include <pthread.h>
#include <stdlib.h>

#include "backend.h"
#include "target.h"

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct efsmt_handle all = {.all_prev = &all, .all_next = &all};

static void handle_free(struct efsmt_handle *h)
{
	if (h->is_dir)
		h->t->ops->releasedir(h->t, h->bh);
	else
		h->t->ops->release(h->t, h->bh);
	atomic_fetch_sub_explicit(&h->t->open_handles, 1, memory_order_relaxed);
	target_put(h->t);
	free(h);
}

struct efsmt_handle *handle_new(struct target *t, uint64_t bh, int is_dir)
{
	struct efsmt_handle *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	h->t = t;
	h->bh = bh;
	h->is_dir = is_dir;
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
