#include "prov_cycle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_proto.h"
#include "prov_decide.h"
#include "prov_log.h"
#include "prov_push.h"
#include "prov_state.h"
#include "walk.h"

#define WAIT_POLL_MS 1000
#define BACKOFF_CAP_S 3600
#define ERR_LEN 600
#define MAX_UNREADABLE_LOGGED 20

/* What one cycle saw and did, for its one log line. */
struct cycle {
	const struct prov_config *c;
	struct aws_client *aws;
	struct prov_state st;
	struct aws_mount_target *mts;
	size_t nmts;
	struct prov_daemon *daemons;
	size_t ndaemons;
	struct plog log;
	int changed;
	int failed;
};

static void note_aws_error(struct cycle *y, const char *what, const struct aws_error *e)
{
	plog_str(&y->log, "result", "failed");
	char buf[ERR_LEN + 200];
	snprintf(buf, sizeof(buf), "%s: %s: %s", what, e->code, e->message);
	plog_str(&y->log, "error", buf);
	y->failed = 1;
}

static int describe(struct cycle *y)
{
	struct aws_error e = {0};
	free(y->mts);
	y->mts = NULL;
	y->nmts = 0;
	if (aws_efs_describe_mount_targets(y->aws, y->c->file_system, &y->mts, &y->nmts, &e) < 0) {
		note_aws_error(y, "DescribeMountTargets", &e);
		return -1;
	}
	json_t *list = json_array();
	for (size_t i = 0; i < y->nmts; i++)
		json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", y->mts[i].id,
						      "az", y->mts[i].az_name, "subnet",
						      y->mts[i].subnet_id, "ip", y->mts[i].ip,
						      "state", y->mts[i].state));
	json_decref(y->st.mount_targets);
	y->st.mount_targets = list;
	return 0;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "id")),
		      json_string_value(json_object_get(*(json_t *const *)b, "id")));
}

/* The serving mount targets as efsmt targets, sorted by id; `skip` (a
 * target about to be deleted) left out. */
static json_t *targets_of(const struct prov_config *c, const struct aws_mount_target *m,
			  size_t n, const char *skip)
{
	json_t *v[CTL_MAX_TARGETS];
	size_t k = 0;
	for (size_t i = 0; i < n && k < CTL_MAX_TARGETS; i++) {
		char uri[512];
		if (strcmp(m[i].state, "available") != 0 && strcmp(m[i].state, "updating") != 0)
			continue;
		if (skip && strcmp(m[i].id, skip) == 0)
			continue;
		if (prov_uri_expand(c->uri_template, m[i].ip, m[i].id, m[i].az_name, m[i].subnet_id,
				    uri, sizeof(uri)) < 0)
			continue;
		v[k++] = json_pack("{s:s,s:s}", "id", m[i].id, "uri", uri);
	}
	qsort(v, k, sizeof(v[0]), by_id);
	json_t *list = json_array();
	for (size_t i = 0; i < k; i++)
		json_array_append_new(list, v[i]);
	return list;
}

static void save_state(struct cycle *y)
{
	char err[ERR_LEN];
	if (y->c->dry_run)
		return;
	if (prov_state_save(y->c->state_file, &y->st, y->c->file_system, err, sizeof(err)) < 0) {
		plog_error("state", "%s", err);
		y->failed = 1;
	}
}

static void back_off(struct cycle *y)
{
	long wait = y->c->retry_backoff_s;
	y->st.failures++;
	for (long i = 1; i < y->st.failures && wait < BACKOFF_CAP_S; i++)
		wait *= 2;
	if (wait > BACKOFF_CAP_S)
		wait = BACKOFF_CAP_S;
	y->st.retry_after = time(NULL) + wait;
	plog_int(&y->log, "retry_in_s", wait);
}

static const struct aws_mount_target *mt_in_subnet(struct cycle *y, const char *subnet)
{
	for (size_t i = 0; i < y->nmts; i++)
		if (strcmp(y->mts[i].subnet_id, subnet) == 0)
			return &y->mts[i];
	return NULL;
}

/* Waits for a mount target being created; 0 when it is available. */
static int wait_available(struct cycle *y, const char *mt_id)
{
	struct aws_error e = {0};
	struct aws_mount_target out;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = aws_efs_wait_mount_target(y->aws, y->c->file_system, mt_id,
					   y->c->create_timeout_s * 1000, WAIT_POLL_MS, &out, &e);
	clock_gettime(CLOCK_MONOTONIC, &b);
	plog_num(&y->log, "wait_s", (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	if (rc == 0)
		return 0;
	if (rc == -ETIMEDOUT && !e.code[0])
		aws_error_set(&e, 0, AWS_ERR_TIMEOUT, "%s not available after %lds", mt_id,
			      y->c->create_timeout_s);
	note_aws_error(y, "waiting for the mount target", &e);
	return -1;
}

static void act_create(struct cycle *y, const char *subnet)
{
	struct aws_error e = {0};
	struct aws_mount_target mt;
	const char *sgs[PROV_MAX_LIST];
	for (size_t i = 0; i < y->c->security_groups.n; i++)
		sgs[i] = y->c->security_groups.v[i];
	int rc = aws_efs_create_mount_target(y->aws, y->c->file_system, subnet, sgs,
					     y->c->security_groups.n, NULL, &mt, &e);
	if (rc < 0 && strcmp(e.code, "MountTargetConflict") == 0) {
		/* Another provisioner won the race (done), or the subnet's AZ
		 * already has a target in another subnet (never use it). */
		if (describe(y) == 0 && mt_in_subnet(y, subnet)) {
			plog_str(&y->log, "result", "already-done");
			snprintf(mt.id, sizeof(mt.id), "%s", mt_in_subnet(y, subnet)->id);
		} else {
			json_array_append_new(y->st.blocked, json_string(subnet));
			plog_str(&y->log, "result", "subnet-blocked");
			plog_str(&y->log, "error", e.message);
			save_state(y);
			return;
		}
	} else if (rc < 0) {
		note_aws_error(y, "CreateMountTarget", &e);
		back_off(y);
		save_state(y);
		return;
	}
	plog_str(&y->log, "mount_target", mt.id);
	/* Remember the change before waiting: a restart must not create again
	 * in this cooldown (DescribeMountTargets also shows it). */
	y->st.last_change = time(NULL);
	y->changed = 1;
	save_state(y);
	if (wait_available(y, mt.id) < 0) {
		back_off(y);
		save_state(y);
		return;
	}
	y->st.failures = 0;
	y->st.retry_after = 0;
	if (!json_object_get(y->log.o, "result"))
		plog_str(&y->log, "result", "available");
}

static void act_delete(struct cycle *y, const char *mt_id, int scale_in)
{
	struct aws_error e = {0};
	if (aws_efs_delete_mount_target(y->aws, mt_id, &e) < 0 &&
	    strcmp(e.code, "MountTargetNotFound") != 0) {
		note_aws_error(y, "DeleteMountTarget", &e);
		back_off(y);
		return;
	}
	plog_str(&y->log, "mount_target", mt_id);
	plog_str(&y->log, "result", "deleted");
	if (scale_in)
		y->st.last_change = time(NULL);
	y->changed = 1;
}

/* The list to the state file (first: a daemon that starts later reads it),
 * then to every daemon, then to SSM. `skip` is left out (being deleted). */
static void publish(struct cycle *y, const char *skip)
{
	json_t *list = targets_of(y->c, y->mts, y->nmts, skip);
	struct prov_push_result r = {0};
	if (json_array_size(list) == 0) {
		plog_str(&y->log, "publish", "nothing available");
		json_decref(list);
		return;
	}
	if (!json_equal(list, y->st.targets)) {
		uint64_t gen = y->st.generation;
		for (size_t i = 0; i < y->ndaemons; i++)
			if (y->daemons[i].generation > gen)
				gen = y->daemons[i].generation;
		json_decref(y->st.targets);
		y->st.targets = json_incref(list);
		y->st.generation = gen + 1;
		y->changed = 1;
	}
	json_decref(list);
	plog_int(&y->log, "generation", (long long)y->st.generation);
	plog_int(&y->log, "targets", (long long)json_array_size(y->st.targets));
	if (y->c->dry_run)
		return;
	save_state(y);
	prov_push(y->daemons, y->ndaemons, y->st.generation, y->st.targets, &r);
	plog_int(&y->log, "daemons", r.daemons);
	if (r.changed)
		plog_int(&y->log, "daemons_updated", r.changed);
	if (r.failed) {
		plog_int(&y->log, "daemons_failed", r.failed);
		y->failed = 1;
	}
	if (y->c->ssm_parameter && y->st.ssm_generation != y->st.generation) {
		struct aws_error e = {0};
		json_t *v = json_pack("{s:I,s:O}", "generation", (json_int_t)y->st.generation,
				      "targets", y->st.targets);
		char *s = json_dumps(v, JSON_COMPACT);
		json_decref(v);
		if (aws_ssm_put_parameter(y->aws, y->c->ssm_parameter, s, &e) < 0) {
			char buf[ERR_LEN + 200];
			snprintf(buf, sizeof(buf), "PutParameter %s: %s: %s", y->c->ssm_parameter,
				 e.code, e.message);
			plog_str(&y->log, "ssm_error", buf);
			y->failed = 1;
		} else {
			y->st.ssm_generation = y->st.generation;
			plog_bool(&y->log, "ssm_updated", 1);
			save_state(y);
		}
		free(s);
	}
}

static void on_unreadable(const char *path, int err, void *arg)
{
	int *logged = arg;
	if ((*logged)++ < MAX_UNREADABLE_LOGGED)
		plog_warn("count", "cannot read %s: %s", path, strerror(err));
}

/* Counts the watched directory; 0 and the result, or -1 (logged). */
static int count(struct cycle *y, struct walk_result *res)
{
	char path[4096];
	const char *mnt = y->c->mountpoint;
	const char *w = y->c->watch;
	int logged = 0;
	if (w[0] == '/') {
		snprintf(path, sizeof(path), "%s", w);
	} else {
		if (!mnt && y->ndaemons)
			mnt = y->daemons[0].mountpoint;
		if (!mnt || !*mnt) {
			plog_str(&y->log, "count_error",
				 "no mount point: no efsmt of this file system runs here; set mountpoint");
			return -1;
		}
		snprintf(path, sizeof(path), "%s/%s", mnt, w);
	}
	plog_str(&y->log, "watch", path);
	int rc = walk_count(path, (int)y->c->count_threads, res, on_unreadable, &logged);
	if (rc < 0) {
		char buf[4200];
		snprintf(buf, sizeof(buf), "%s: %s", path, strerror(-rc));
		plog_str(&y->log, "count_error", buf);
		return -1;
	}
	plog_int(&y->log, "files", (long long)res->files);
	plog_int(&y->log, "dirs", (long long)res->dirs);
	if (res->unreadable)
		plog_int(&y->log, "unreadable", (long long)res->unreadable);
	plog_num(&y->log, "count_s", res->seconds);
	return 0;
}

static void facts_of(struct cycle *y, struct prov_mt *pm, const char **blocked,
		     struct prov_facts *f, int count_ok, uint64_t files)
{
	size_t nb = 0, i;
	json_t *b;
	for (i = 0; i < y->nmts; i++)
		pm[i] = (struct prov_mt){y->mts[i].id, y->mts[i].subnet_id, y->mts[i].az_name,
					 y->mts[i].state};
	json_array_foreach(y->st.blocked, i, b) if (json_is_string(b) && nb < PROV_MAX_LIST)
	    blocked[nb++] = json_string_value(b);
	*f = (struct prov_facts){
	    .count_ok = count_ok,
	    .files = files,
	    .mts = pm,
	    .nmts = y->nmts,
	    .subnets = (const char *const *)y->c->subnets.v,
	    .nsubnets = y->c->subnets.n,
	    .blocked = blocked,
	    .nblocked = nb,
	    .now = time(NULL),
	    .last_change = y->st.last_change,
	    .retry_after = y->st.retry_after,
	};
}

static void policy_of(const struct prov_config *c, struct prov_policy *p)
{
	*p = (struct prov_policy){
	    .files_per_target = c->files_per_target,
	    .min_targets = (int)c->min_targets,
	    .max_targets = (int)c->max_targets,
	    .scale_in = c->scale_in,
	    .scale_in_below = c->scale_in_below,
	    .cooldown_s = c->cooldown_s,
	};
}

static int cycle_begin(struct cycle *y, const struct prov_config *c, struct aws_client *aws,
		       const char *msg)
{
	char err[ERR_LEN];
	memset(y, 0, sizeof(*y));
	y->c = c;
	y->aws = aws;
	prov_state_init(&y->st);
	plog_start(&y->log, "info", msg);
	if (prov_state_load(c->state_file, &y->st, err, sizeof(err)) < 0) {
		plog_str(&y->log, "error", err);
		y->failed = 1;
		return -1;
	}
	y->ndaemons = prov_daemons_find(c, &y->daemons);
	return 0;
}

static int cycle_end(struct cycle *y)
{
	if (y->failed)
		json_object_set_new(y->log.o, "level", json_string("error"));
	if (y->c->dry_run)
		plog_bool(&y->log, "dry_run", 1);
	plog_end(&y->log);
	free(y->mts);
	prov_daemons_free(y->daemons, y->ndaemons);
	prov_state_free(&y->st);
	if (y->failed)
		return PROV_CYCLE_FAILED;
	return y->changed ? PROV_CYCLE_CHANGED : PROV_CYCLE_SAME;
}

int prov_cycle(const struct prov_config *c, struct aws_client *aws)
{
	struct cycle y;
	struct prov_policy pol;
	struct walk_result wr = {0};
	if (cycle_begin(&y, c, aws, "cycle") < 0)
		return cycle_end(&y);
	/* Whatever else fails, daemons get at least the state file's list. */
	if (describe(&y) < 0) {
		if (json_array_size(y.st.targets) && !c->dry_run) {
			struct prov_push_result r;
			prov_push(y.daemons, y.ndaemons, y.st.generation, y.st.targets, &r);
		}
		return cycle_end(&y);
	}
	int count_ok = count(&y, &wr) == 0;
	policy_of(c, &pol);
	struct prov_decision d;
	for (int round = 0;; round++) {
		struct prov_mt pm[y.nmts ? y.nmts : 1];
		const char *blocked[PROV_MAX_LIST];
		struct prov_facts f;
		facts_of(&y, pm, blocked, &f, count_ok, wr.files);
		prov_decide(&pol, &f, &d);
		if (d.action != PROV_WAIT || round > 0 || c->dry_run)
			break;
		/* A target still being created (by us before a restart, or by a
		 * peer): wait for it, then decide again. */
		char id[64];
		snprintf(id, sizeof(id), "%s", d.mt_id);
		for (size_t i = 0; i < y.nmts; i++)
			if (strcmp(y.mts[i].id, id) == 0 && strcmp(y.mts[i].state, "creating") != 0)
				id[0] = 0;
		if (!id[0])
			break; /* being deleted: nothing to wait for */
		plog_str(&y.log, "waited_for", id);
		if (wait_available(&y, id) < 0 || describe(&y) < 0)
			break;
	}
	plog_int(&y.log, "current", d.current);
	plog_int(&y.log, "desired", d.desired);
	plog_str(&y.log, "action", prov_action_name(d.action));
	plog_str(&y.log, "reason", d.reason);
	char target[64] = "";
	if (d.subnet)
		plog_str(&y.log, "subnet", d.subnet);
	if (d.mt_id)
		snprintf(target, sizeof(target), "%s", d.mt_id);
	if (!c->dry_run && !y.failed) {
		if (d.action == PROV_CREATE) {
			act_create(&y, d.subnet);
			describe(&y);
		} else if (d.action == PROV_DELETE) {
			/* Daemons stop using it before it goes away. */
			publish(&y, target);
			act_delete(&y, target, 1);
			describe(&y);
		} else if (d.action == PROV_DELETE_ERROR) {
			act_delete(&y, target, 0);
			describe(&y);
		}
	}
	publish(&y, d.action == PROV_DELETE ? target : NULL);
	return cycle_end(&y);
}

/* A list from SSM: {"generation":N,"targets":[...]} as the provisioner
 * publishes it. 0, or -1 with the reason logged. */
static int from_ssm(struct cycle *y, json_t **list, uint64_t *gen)
{
	struct aws_error e = {0};
	char *v = NULL;
	if (aws_ssm_get_parameter(y->aws, y->c->ssm_parameter, &v, &e) < 0) {
		note_aws_error(y, "GetParameter", &e);
		return -1;
	}
	json_t *o = json_loads(v, JSON_REJECT_DUPLICATES, NULL);
	free(v);
	json_t *g = json_object_get(o, "generation");
	json_t *t = json_object_get(o, "targets");
	if (!json_is_integer(g) || json_integer_value(g) < 0 || !prov_targets_valid(t) ||
	    !json_array_size(t)) {
		plog_str(&y->log, "error",
			 "the SSM parameter is not {\"generation\":N,\"targets\":[{id,uri}...]}");
		y->failed = 1;
		json_decref(o);
		return -1;
	}
	*gen = (uint64_t)json_integer_value(g);
	*list = json_incref(t);
	json_decref(o);
	return 0;
}

int prov_follow_once(const struct prov_config *c, struct aws_client *aws)
{
	struct cycle y;
	if (cycle_begin(&y, c, aws, "follow") < 0)
		return cycle_end(&y);
	if (!c->ssm_parameter) {
		if (describe(&y) == 0)
			publish(&y, NULL);
		return cycle_end(&y);
	}
	json_t *list;
	uint64_t gen;
	if (from_ssm(&y, &list, &gen) == 0) {
		if (gen < y.st.generation) {
			plog_str(&y.log, "error", "the SSM parameter is older than the state file");
			y.failed = 1;
		} else {
			struct prov_push_result r;
			y.changed = gen != y.st.generation || !json_equal(list, y.st.targets);
			json_decref(y.st.targets);
			y.st.targets = json_incref(list);
			y.st.generation = gen;
			y.st.ssm_generation = gen;
			plog_int(&y.log, "generation", (long long)gen);
			plog_int(&y.log, "targets", (long long)json_array_size(list));
			if (!c->dry_run) {
				save_state(&y);
				prov_push(y.daemons, y.ndaemons, gen, list, &r);
				plog_int(&y.log, "daemons", r.daemons);
				if (r.failed) {
					plog_int(&y.log, "daemons_failed", r.failed);
					y.failed = 1;
				}
			}
		}
		json_decref(list);
	}
	return cycle_end(&y);
}
