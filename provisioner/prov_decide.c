#include "prov_decide.h"

#include <stdio.h>
#include <string.h>

const char *prov_action_name(enum prov_action a)
{
	static const char *const names[] = {"none", "create", "delete", "delete-error", "wait"};
	return names[a];
}

static int is_state(const struct prov_mt *m, const char *s)
{
	return m->state && strcmp(m->state, s) == 0;
}

/* Counts toward `current`: serving, or about to. */
static int is_live(const struct prov_mt *m)
{
	return is_state(m, "available") || is_state(m, "updating") || is_state(m, "creating");
}

static int str_in(const char *s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s && v[i] && strcmp(s, v[i]) == 0)
			return 1;
	return 0;
}

/* The mount target (not deleted) in a subnet, or NULL. */
static const struct prov_mt *mt_in_subnet(const struct prov_facts *f, const char *subnet)
{
	for (size_t i = 0; i < f->nmts; i++)
		if (f->mts[i].subnet && strcmp(f->mts[i].subnet, subnet) == 0 &&
		    !is_state(&f->mts[i], "deleted"))
			return &f->mts[i];
	return NULL;
}

static int usable_subnets(const struct prov_facts *f)
{
	int n = 0;
	for (size_t i = 0; i < f->nsubnets; i++)
		if (!str_in(f->subnets[i], f->blocked, f->nblocked))
			n++;
	return n;
}

/* The first candidate subnet with no target of its own, not blocked. A
 * subnet's AZ is not known until it holds a target; EFS refuses a second
 * target in an AZ (MountTargetConflict), and the caller then blocks it. */
static const char *next_subnet(const struct prov_facts *f)
{
	for (size_t i = 0; i < f->nsubnets; i++)
		if (!str_in(f->subnets[i], f->blocked, f->nblocked) &&
		    !mt_in_subnet(f, f->subnets[i]))
			return f->subnets[i];
	return NULL;
}

/* Scale-in removes the target in the last candidate subnet that has one. */
static const struct prov_mt *last_removable(const struct prov_facts *f)
{
	for (size_t i = f->nsubnets; i-- > 0;) {
		const struct prov_mt *m = mt_in_subnet(f, f->subnets[i]);
		if (m && is_state(m, "available"))
			return m;
	}
	return NULL;
}

static int clampi(long long v, int lo, int hi)
{
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return (int)v;
}

void prov_decide(const struct prov_policy *p, const struct prov_facts *f,
		 struct prov_decision *d)
{
	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < f->nmts; i++)
		d->current += is_live(&f->mts[i]);

	int upper = usable_subnets(f);
	if (d->current > upper)
		upper = d->current; /* targets outside the candidates still count */
	if (p->max_targets > 0 && upper > p->max_targets)
		upper = p->max_targets;
	long long need = f->count_ok && p->files_per_target
			     ? (long long)((f->files + p->files_per_target - 1) / p->files_per_target)
			     : 0;
	d->desired = clampi(need, p->min_targets, upper);
	if (!f->count_ok && d->desired < d->current)
		d->desired = d->current; /* without a count, never shrink */

	for (size_t i = 0; i < f->nmts; i++) {
		if (is_state(&f->mts[i], "creating") || is_state(&f->mts[i], "deleting")) {
			d->action = PROV_WAIT;
			d->mt_id = f->mts[i].id;
			snprintf(d->reason, sizeof(d->reason), "%s is %s", f->mts[i].id,
				 f->mts[i].state);
			return;
		}
	}
	for (size_t i = 0; i < f->nmts; i++) {
		if (is_state(&f->mts[i], "error") && str_in(f->mts[i].subnet, f->subnets,
							     f->nsubnets)) {
			d->action = PROV_DELETE_ERROR;
			d->mt_id = f->mts[i].id;
			snprintf(d->reason, sizeof(d->reason),
				 "%s ended in error and holds its AZ", f->mts[i].id);
			return;
		}
	}

	int grow = d->desired > d->current;
	int shrink = 0;
	if (!grow && p->scale_in && f->count_ok && d->current > p->min_targets) {
		double keep = p->scale_in_below * (double)(d->current - 1) *
			      (double)p->files_per_target;
		shrink = (double)f->files < keep;
		if (shrink)
			d->desired = d->current - 1;
	}
	if (!grow && !shrink) {
		if (d->desired >= d->current)
			snprintf(d->reason, sizeof(d->reason), "%d target(s) are enough",
				 d->current);
		else if (!p->scale_in)
			snprintf(d->reason, sizeof(d->reason), "more targets than needed; scale_in is off");
		else if (d->current <= p->min_targets)
			snprintf(d->reason, sizeof(d->reason), "at min_targets");
		else
			snprintf(d->reason, sizeof(d->reason),
				 "more targets than needed, within the scale-in hysteresis");
		return;
	}
	if (f->retry_after && f->now < f->retry_after) {
		snprintf(d->reason, sizeof(d->reason), "backing off after a failure (%lds left)",
			 (long)(f->retry_after - f->now));
		return;
	}
	if (f->last_change && f->now < f->last_change + p->cooldown_s) {
		snprintf(d->reason, sizeof(d->reason), "cooldown after the last change (%lds left)",
			 (long)(f->last_change + p->cooldown_s - f->now));
		return;
	}
	if (grow) {
		d->subnet = next_subnet(f);
		if (!d->subnet) {
			snprintf(d->reason, sizeof(d->reason),
				 "want %d targets but no candidate subnet is free", d->desired);
			return;
		}
		d->action = PROV_CREATE;
		snprintf(d->reason, sizeof(d->reason), "%d target(s), want %d", d->current,
			 d->desired);
		return;
	}
	const struct prov_mt *m = last_removable(f);
	if (!m) {
		snprintf(d->reason, sizeof(d->reason),
			 "scale-in wanted but no available target in a candidate subnet");
		return;
	}
	d->action = PROV_DELETE;
	d->mt_id = m->id;
	snprintf(d->reason, sizeof(d->reason), "%d target(s), want %d (scale-in)", d->current,
		 d->desired);
}
