/*
 * target.h - one target: a path to the file system (a directory, later an
 * NFS server address), its id, its backend and its counters.
 *
 * Targets are reference counted: the route table holds one reference and
 * every open file handle holds one, so a target that a reload removes stays
 * alive until its last handle is released.
 */
#ifndef EFSMT_TARGET_H
#define EFSMT_TARGET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/opstats.h"

struct backend_ops;

enum target_state {
	TARGET_UP,
	TARGET_DOWN,	 /* the last health probe failed */
	TARGET_DRAINING, /* out of the route table; open handles finish */
};

/* A parsed, canonical target description (no resources attached). */
struct target_spec {
	char *id;  /* defaults to the canonical URI */
	char *uri; /* canonical: "dir:///abs/path" */
	char *scheme;
	char *path; /* dir: the absolute directory */
};

struct target {
	char *id;
	char *uri;
	char *path;   /* scheme-specific location (dir: absolute directory) */
	char *subdir; /* from SOURCE "fs-...:/subdir"; "" for none */
	uint64_t seed; /* rendezvous seed, from the id */
	const struct backend_ops *ops;
	void *priv; /* the backend's state */
	atomic_int refs;
	atomic_int state; /* enum target_state */
	/* The last probe was refused (nothing listens: the server process that
	 * held this mount's requests is gone), health.c. */
	atomic_int refused;
	atomic_int open_handles;
	atomic_int locks_held; /* lock owners holding locks here (lock.c) */
	struct opstats op[OP_COUNT];
	struct target *reg_next; /* the registry of live targets (target_foreach) */
};

/* Parse a URI ("dir:///x", "/x"); 0, or -1 with a one-line reason in err. */
int target_parse_uri(const char *in, struct target_spec *out, char *err, size_t errlen);
/* Parse a targets file (JSON list or {"generation":N,"targets":[...]}). On
 * success *specs is a malloc'ed array of *n specs. */
int target_parse_file(const char *file, struct target_spec **specs, size_t *n,
		      uint64_t *generation, char *err, size_t errlen);
/* The same from a parsed JSON list (the control socket's set-targets). */
int target_parse_list(json_t *list, struct target_spec **specs, size_t *n, char *err,
		      size_t errlen);
void target_spec_free(struct target_spec *s);
/* 1 when a path has a ".." component. */
int path_has_dotdot(const char *path);

/* Build a target from a spec and attach its backend; NULL with err set. */
struct target *target_open(const struct target_spec *spec, const char *subdir, char *err,
			   size_t errlen);
void target_get(struct target *t);
void target_put(struct target *t);
/* Call fn on every live target (in the table, draining, or held by a
 * handle) under the registry lock: fn must not take or drop references. */
void target_foreach(void (*fn)(struct target *t, void *arg), void *arg);
const char *target_state_name(int state);

#endif
