/*
 * prov_push.h - the efsmt daemons on this host that serve our file system,
 * found through their control sockets (control/PROTOCOL.md), and pushing a
 * target list to them with set-targets.
 */
#ifndef EFSMT_PROV_PUSH_H
#define EFSMT_PROV_PUSH_H

#include <jansson.h>
#include <stdint.h>

#include "prov_config.h"

struct prov_daemon {
	char *socket;
	char *mountpoint;
	uint64_t generation;
};

/* The daemons of c->file_system: every socket in c->sockets, or every one in
 * c->socket_dir whose status names that file system. *out is malloc'd. */
size_t prov_daemons_find(const struct prov_config *c, struct prov_daemon **out);
void prov_daemons_free(struct prov_daemon *d, size_t n);

struct prov_push_result {
	int daemons; /* answered */
	int changed; /* took the new list */
	int failed;  /* refused or did not answer */
};

/* set-targets {generation, targets} to each daemon; each failure logged. */
void prov_push(struct prov_daemon *d, size_t n, uint64_t generation, json_t *targets,
	       struct prov_push_result *r);

#endif
