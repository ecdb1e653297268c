/*
 * reload.h - replacing the route table while requests run.
 *
 * A change builds a new table (reusing the targets that stay, attaching the
 * new ones), publishes it with one atomic exchange of route_now (route.h), and
 * retires the old one; reload_reclaim() frees retired tables whose readers
 * are gone (epoch.h). Removed targets are marked draining and disconnect
 * when their last open handle is released (target.h).
 *
 * One writer: the control thread (and main before and after serving).
 */
#ifndef EFSMT_RELOAD_H
#define EFSMT_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"
#include "backends/target.h"

/* Publish the first table (main, before mounting). */
void reload_init(struct route_table *rt, const char *subdir);
/* The whole list at generation gen: older is refused, the same generation
 * with the same list is a no-op (*changed = 0), with another list refused.
 * 0, or -1 with a one-line reason. */
int reload_set(const struct target_spec *specs, size_t n, uint64_t gen, int *changed,
	       char *err, size_t errlen);
/* One more target / one less, at the next generation. */
int reload_add(const struct target_spec *spec, char *err, size_t errlen);
/* id: the target's id, its URI, or any spelling of the URI that add-target
 * takes (a bare path, a trailing slash, a bare host). */
int reload_remove(const char *id, char *err, size_t errlen);
/* The generation an unversioned list (a targets file without one) gets:
 * the current one when the list is the same, else the next. */
uint64_t reload_generation_for(const struct target_spec *specs, size_t n);
/* Free retired tables whose readers are gone; the number still waiting. */
size_t reload_reclaim(void);
/* At exit, when no request runs: free the current and retired tables. */
void reload_shutdown(void);
/* The current table, for the writer thread only. */
struct route_table *reload_current(void);

#endif
