/*
 * route.h - rendezvous (highest random weight) hashing of paths to targets.
 *
 * score(target, path) = XXH3_64(path, seed = XXH3_64(target id)); the path
 * goes to the target with the highest score, ties to the one listed first.
 * Adding a target to N moves about 1/(N+1) of the paths (all to the new
 * one); removing one moves only its own paths; the descending score order
 * is the fail-over order.
 *
 * A route table is immutable once built: a reload builds a new one and
 * publishes it, so readers need no lock.
 */
#ifndef EFSMT_ROUTE_H
#define EFSMT_ROUTE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hrw.h"

struct target;

struct route_table {
	uint64_t generation;
	size_t n;
	struct target *t[]; /* each holds a reference */
};


/* The table requests route by: published whole by reload.c, read by
 * every request without a lock (the request's epoch section keeps it and
 * its targets alive, epoch.h). */
extern _Atomic(struct route_table *) route_now;

static inline struct route_table *route_current(void)
{
	return atomic_load_explicit(&route_now, memory_order_acquire);
}

/* New table over t[0..n-1]; takes a new reference on each target. */
struct route_table *route_table_new(struct target *const *t, size_t n, uint64_t generation);
void route_table_free(struct route_table *rt);

/* Index of the target the path goes to: the best-scoring target that is not
 * down (the best of all when every one is down); rt->n must be > 0. */
size_t route_pick_index(const struct route_table *rt, const char *path, size_t len);
struct target *route_pick(const struct route_table *rt, const char *path, size_t len);
/* Fill order[0..rt->n-1] with target indexes, best first. */
void route_order(const struct route_table *rt, const char *path, size_t len, size_t *order);

#endif
