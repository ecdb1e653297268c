#include "route.h"

#include <stdlib.h>
#include <string.h>

#include "backends/target.h"

_Atomic(struct route_table *) route_now;

struct route_table *route_table_new(struct target *const *t, size_t n, uint64_t generation)
{
	struct route_table *rt = malloc(sizeof(*rt) + n * sizeof(rt->t[0]));

	if (!rt)
		return NULL;
	rt->generation = generation;
	rt->n = n;
	for (size_t i = 0; i < n; i++) {
		rt->t[i] = t[i];
		target_get(t[i]);
	}
	return rt;
}

void route_table_free(struct route_table *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n; i++)
		target_put(rt->t[i]);
	free(rt);
}

size_t route_pick_index(const struct route_table *rt, const char *path, size_t len)
{
	size_t best = 0, best_up = SIZE_MAX;
	uint64_t best_score = 0, best_up_score = 0;

	/* The best target that is not down: a down target's paths go to the
	 * next in score order. With every target down, the best one (its
	 * calls fail fast until it answers again). */
	for (size_t i = 0; i < rt->n; i++) {
		uint64_t s = route_score(rt->t[i]->seed, path, len);
		if (i == 0 || s > best_score) {
			best = i;
			best_score = s;
		}
		if (atomic_load_explicit(&rt->t[i]->state, memory_order_relaxed) != TARGET_DOWN &&
		    (best_up == SIZE_MAX || s > best_up_score)) {
			best_up = i;
			best_up_score = s;
		}
	}
	return best_up == SIZE_MAX ? best : best_up;
}

struct target *route_pick(const struct route_table *rt, const char *path, size_t len)
{
	return rt->t[route_pick_index(rt, path, len)];
}

void route_order(const struct route_table *rt, const char *path, size_t len, size_t *order)
{
	uint64_t score[rt->n];

	/* Insertion sort: N is a handful of mount targets. Ties keep list order. */
	for (size_t i = 0; i < rt->n; i++) {
		uint64_t s = route_score(rt->t[i]->seed, path, len);
		size_t j = i;
		while (j > 0 && score[j - 1] < s) {
			score[j] = score[j - 1];
			order[j] = order[j - 1];
			j--;
		}
		score[j] = s;
		order[j] = i;
	}
}
