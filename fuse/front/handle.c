#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "backends/backend.h"
#include "backends/target.h"

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct efsmt_handle all = {.all_prev = &all, .all_next = &all};

static pthread_mutex_t failover_lock = PTHREAD_MUTEX_INITIALIZER;

static void handle_free(struct efsmt_handle *h)
{
	if (atomic_load(&h->alt_set)) {
		h->alt_t->ops->release(h->alt_t, h->alt_bh);
		atomic_fetch_sub_explicit(&h->alt_t->open_handles, 1, memory_order_relaxed);
		target_put(h->alt_t);
	}
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
	h->rdonly = 0;
	h->alt_t = NULL;
	h->alt_bh = 0;
	atomic_init(&h->alt_set, 0);
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

void handle_read_target(struct efsmt_handle *h, struct target **t, uint64_t *bh)
{
	if (atomic_load_explicit(&h->alt_set, memory_order_acquire)) {
		*t = h->alt_t;
		*bh = h->alt_bh;
	} else {
		*t = h->t;
		*bh = h->bh;
	}
}

int handle_failover(struct efsmt_handle *h, struct target *t2, const char *path)
{
	int rc = 0;
	pthread_mutex_lock(&failover_lock);
	if (!atomic_load(&h->alt_set)) {
		uint64_t bh;
		rc = t2 == h->t ? -EIO : t2->ops->open(t2, path, O_RDONLY, &bh);
		if (rc == 0) {
			target_get(t2);
			atomic_fetch_add_explicit(&t2->open_handles, 1, memory_order_relaxed);
			h->alt_t = t2;
			h->alt_bh = bh;
			atomic_store_explicit(&h->alt_set, 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&failover_lock);
	return rc;
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
