/*
 * prov_decide.h - the provisioner's policy as a pure function: from the
 * file count, the mount targets that exist and the settings, what to do in
 * this cycle. No I/O, no clock: the caller passes `now`, so every case is a
 * row in a table test (tests/unit/check_prov.c).
 *
 *   desired = clamp(ceil(files / files_per_target), min_targets, upper)
 *   upper   = usable candidate subnets (and max_targets when set)
 *
 * At most one change per cycle; none during the cooldown after a change or
 * the back-off after a failure; scale-in only when enabled and the count is
 * below scale_in_below x (current - 1) x files_per_target (hysteresis).
 */
#ifndef EFSMT_PROV_DECIDE_H
#define EFSMT_PROV_DECIDE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct prov_policy {
	uint64_t files_per_target;
	int min_targets;
	int max_targets; /* 0: as many as there are candidate subnets */
	int scale_in;
	double scale_in_below; /* 0 < f <= 1 */
	long cooldown_s;
};

/* A mount target as DescribeMountTargets shows it. */
struct prov_mt {
	const char *id;
	const char *subnet;
	const char *az;
	const char *state; /* creating|available|updating|deleting|deleted|error */
};

struct prov_facts {
	int count_ok; /* 0: the walk failed; only min_targets is enforced */
	uint64_t files;
	const struct prov_mt *mts;
	size_t nmts;
	const char *const *subnets; /* candidate subnets, in the order to use them */
	size_t nsubnets;
	const char *const *blocked; /* subnets whose AZ already has a target elsewhere */
	size_t nblocked;
	time_t now;
	time_t last_change; /* 0: never */
	time_t retry_after; /* 0: no back-off */
};

enum prov_action {
	PROV_NONE,
	PROV_CREATE,	   /* in `subnet` */
	PROV_DELETE,	   /* `mt_id` (scale-in) */
	PROV_DELETE_ERROR, /* `mt_id`, a mount target that ended in `error` */
	PROV_WAIT,	   /* a mount target is still being created or deleted */
};

struct prov_decision {
	enum prov_action action;
	int current; /* usable mount targets (available, updating, creating) */
	int desired;
	const char *subnet; /* PROV_CREATE: points into facts->subnets */
	const char *mt_id;  /* PROV_DELETE*: points into facts->mts */
	char reason[160];
};

const char *prov_action_name(enum prov_action a);
void prov_decide(const struct prov_policy *p, const struct prov_facts *f,
		 struct prov_decision *d);

#endif
