/*
 * prov_state.h - the state file: the published target list (the format
 * efsmt's -o targets_file= reads: {"generation":N,"targets":[{id,uri}]})
 * plus what the provisioner must remember across restarts (the last
 * change, failures and back-off, subnets found to conflict, what reached
 * SSM). Written to a temporary file, synced and renamed: a reader sees the
 * old file or the new one, never half of one.
 */
#ifndef EFSMT_PROV_STATE_H
#define EFSMT_PROV_STATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct prov_state {
	uint64_t generation;
	json_t *targets; /* [{"id":S,"uri":S}, ...], never NULL */
	time_t last_change;
	time_t retry_after;
	long failures;
	json_t *blocked; /* ["subnet-...", ...], never NULL */
	uint64_t ssm_generation;
	json_t *mount_targets; /* informative: what DescribeMountTargets showed */
};

void prov_state_init(struct prov_state *s);
void prov_state_free(struct prov_state *s);
/* A missing file is an empty state (0); a malformed one is -1 with err. */
int prov_state_load(const char *path, struct prov_state *s, char *err, size_t errlen);
/* 0, or -1 with err; fs_id is recorded for people reading the file. */
int prov_state_save(const char *path, const struct prov_state *s, const char *fs_id, char *err,
		    size_t errlen);
/* Whether list is [{"id":S,"uri":S}...] of 1..256 entries (what set-targets takes). */
int prov_targets_valid(json_t *list);

#endif
