#include "handle.h"

#include <stdlib.h>

#include "backend.h"
#include "target.h"

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
	if (h->is_dir)
		h->t->ops->releasedir(h->t, h->bh);
	else
		h->t->ops->release(h->t, h->bh);
	atomic_fetch_sub_explicit(&h->t->open_handles, 1, memory_order_relaxed);
	target_put(h->t);
	free(h);
}
