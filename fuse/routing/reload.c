#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/epoch.h"
#include "base/log.h"

struct retired {
	struct route_table *rt;
	uint64_t epoch; /* free once epoch_passed(epoch) */
	struct retired *next;
};

static struct retired *retired;
static char *subdir_copy;

void reload_init(struct route_table *rt, const char *subdir)
{
	free(subdir_copy);
	subdir_copy = strdup(subdir ? subdir : "");
	atomic_store(&route_now, rt);
}

struct route_table *reload_current(void)
{
	return route_current();
}

static int in_table(const struct route_table *rt, const struct target *t)
{
	for (size_t i = 0; i < rt->n; i++)
		if (rt->t[i] == t)
			return 1;
	return 0;
}

/* Publish rt; the old table's targets that rt does not hold start draining. */
static void publish(struct route_table *rt)
{
	struct route_table *old = atomic_exchange(&route_now, rt);
	struct retired *r = malloc(sizeof(*r));

	/* A target back in the table leaves draining; one that is down stays
	 * down until the health monitor hears from it. */
	for (size_t i = 0; i < rt->n; i++) {
		int draining = TARGET_DRAINING;
		atomic_compare_exchange_strong(&rt->t[i]->state, &draining, TARGET_UP);
	}
	for (size_t i = 0; i < old->n; i++)
		if (!in_table(rt, old->t[i])) {
			atomic_store(&old->t[i]->state, TARGET_DRAINING);
			log_info("msg=target-draining id=%s open_handles=%d", old->t[i]->id,
				 atomic_load(&old->t[i]->open_handles));
		}
	if (!r)
		abort(); /* freeing old now could free it under a reader */
	r->rt = old;
	r->epoch = epoch_advance();
	r->next = retired;
	retired = r;
	log_info("msg=routes-published generation=%llu targets=%zu",
		 (unsigned long long)rt->generation, rt->n);
	reload_reclaim();
}

size_t reload_reclaim(void)
{
	size_t left = 0;

	for (struct retired **p = &retired; *p;) {
		struct retired *r = *p;
		if (epoch_passed(r->epoch)) {
			*p = r->next;
			route_table_free(r->rt);
			free(r);
		} else {
			p = &r->next;
			left++;
		}
	}
	return left;
}

void reload_shutdown(void)
{
	while (retired) {
		struct retired *r = retired;
		retired = r->next;
		route_table_free(r->rt);
		free(r);
	}
	route_table_free(atomic_exchange(&route_now, NULL));
	free(subdir_copy);
	subdir_copy = NULL;
}

static const char *spec_id(const struct target_spec *s)
{
	return s->id ? s->id : s->uri;
}

/* A target of the current table with this id and URI, or NULL. */
static struct target *find_same(const struct route_table *rt, const struct target_spec *s)
{
	for (size_t i = 0; i < rt->n; i++)
		if (strcmp(rt->t[i]->id, spec_id(s)) == 0 && strcmp(rt->t[i]->uri, s->uri) == 0)
			return rt->t[i];
	return NULL;
}

static int check_unique(const struct target_spec *specs, size_t n, char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "no target given (at least one is needed)");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			if (strcmp(spec_id(&specs[i]), spec_id(&specs[j])) == 0) {
				snprintf(err, errlen, "target id %s is given twice",
					 spec_id(&specs[i]));
				return -1;
			}
			if (strcmp(specs[i].uri, specs[j].uri) == 0) {
				snprintf(err, errlen, "target %s is given twice", specs[i].uri);
				return -1;
			}
		}
	return 0;
}

static int same_list(const struct route_table *rt, const struct target_spec *specs, size_t n)
{
	if (rt->n != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(rt->t[i]->id, spec_id(&specs[i])) != 0 ||
		    strcmp(rt->t[i]->uri, specs[i].uri) != 0)
			return 0;
	return 1;
}

uint64_t reload_generation_for(const struct target_spec *specs, size_t n)
{
	struct route_table *cur = reload_current();
	return same_list(cur, specs, n) ? cur->generation : cur->generation + 1;
}

/* Build a table over specs: targets already in cur are shared, others
 * attached now (a failure to attach leaves everything as it was). */
static struct route_table *build(const struct route_table *cur, const struct target_spec *specs,
				 size_t n, uint64_t gen, char *err, size_t errlen)
{
	struct target **t = calloc(n, sizeof(*t));
	struct route_table *rt = NULL;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t i;
	for (i = 0; i < n; i++) {
		t[i] = find_same(cur, &specs[i]);
		if (t[i])
			target_get(t[i]);
		else if (!(t[i] = target_open(&specs[i], subdir_copy, err, errlen)))
			break;
	}
	if (i == n) {
		rt = route_table_new(t, n, gen);
		if (!rt)
			snprintf(err, errlen, "out of memory");
	}
	while (i-- > 0)
		target_put(t[i]); /* the table holds its own references */
	free(t);
	return rt;
}

int reload_set(const struct target_spec *specs, size_t n, uint64_t gen, int *changed,
	       char *err, size_t errlen)
{
	struct route_table *cur = reload_current();

	*changed = 0;
	if (check_unique(specs, n, err, errlen) < 0)
		return -1;
	if (gen < cur->generation) {
		snprintf(err, errlen,
			 "generation %llu is older than the current generation %llu (refused)",
			 (unsigned long long)gen, (unsigned long long)cur->generation);
		return -1;
	}
	if (gen == cur->generation) {
		if (same_list(cur, specs, n))
			return 0;
		snprintf(err, errlen,
			 "generation %llu is already applied with another list (send a higher "
			 "generation)",
			 (unsigned long long)gen);
		return -1;
	}
	struct route_table *rt = build(cur, specs, n, gen, err, errlen);
	if (!rt)
		return -1;
	publish(rt);
	*changed = 1;
	return 0;
}

int reload_add(const struct target_spec *spec, char *err, size_t errlen)
{
	struct route_table *cur = reload_current();
	struct target_spec *specs = calloc(cur->n + 1, sizeof(*specs));
	int changed, rc = -1;

	if (!specs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Borrowed strings: build() and target_open() only read specs. */
	for (size_t i = 0; i < cur->n; i++) {
		specs[i].id = cur->t[i]->id;
		specs[i].uri = cur->t[i]->uri;
	}
	specs[cur->n] = *spec;
	rc = reload_set(specs, cur->n + 1, cur->generation + 1, &changed, err, errlen);
	free(specs);
	return rc;
}

int reload_remove(const char *id, char *err, size_t errlen)
{
	struct route_table *cur = reload_current();
	struct target_spec *specs = calloc(cur->n, sizeof(*specs));
	struct target_spec given;
	char es[200];
	size_t n = 0;
	int changed, rc;

	if (!specs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Every spelling add-target took ("/a", "dir:///a/", a bare host):
	 * its canonical URI names the target too. */
	const char *canon = target_parse_uri(id, &given, es, sizeof(es)) == 0 ? given.uri : NULL;
	for (size_t i = 0; i < cur->n; i++) {
		if (strcmp(cur->t[i]->id, id) == 0 || strcmp(cur->t[i]->uri, id) == 0 ||
		    (canon && strcmp(cur->t[i]->uri, canon) == 0))
			continue;
		specs[n].id = cur->t[i]->id;
		specs[n].uri = cur->t[i]->uri;
		n++;
	}
	if (n == cur->n) {
		snprintf(err, errlen, "no target with id or URI %s", id);
		rc = -1;
	} else if (n == 0) {
		snprintf(err, errlen, "%s is the last target: refusing to remove it", id);
		rc = -1;
	} else {
		rc = reload_set(specs, n, cur->generation + 1, &changed, err, errlen);
	}
	if (canon)
		target_spec_free(&given);
	free(specs);
	return rc;
}
