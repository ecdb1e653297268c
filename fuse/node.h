/*
 * node.h - the FUSE inode table: which name under which parent each node
 * the kernel knows has, so an operation's full path (the routing key) can
 * be rebuilt.
 *
 * Node ids given to the kernel are the node addresses; the root is
 * FUSE_ROOT_ID. st_ino reported to applications comes from the backend, so
 * hard links and tools that compare inode numbers behave as on a local
 * disk. One mutex guards the table; every critical section is a hash probe
 * or a walk up the parents.
 */
#ifndef EFSMT_NODE_H
#define EFSMT_NODE_H

#include <stddef.h>
#include <stdint.h>

#define NODE_ROOT_ID 1

struct node;

int node_table_init(void);
void node_table_destroy(void);

/* Full path of a node id into buf: its length, -ENOENT for a node that has
 * been unlinked or replaced, -ENAMETOOLONG. */
int node_path(uint64_t id, char *buf, size_t size);
/* Full path of NAME under the directory PARENT. */
int node_child_path(uint64_t parent, const char *name, char *buf, size_t size);

/* The kernel learned of PARENT/NAME: find or make its node, count one
 * lookup. Returns the node id, 0 when out of memory. */
uint64_t node_learn(uint64_t parent, const char *name);
/* The kernel dropped n lookups. */
void node_forget(uint64_t id, uint64_t n);
/* PARENT/NAME no longer names its node (unlink, rmdir). */
void node_unlinked(uint64_t parent, const char *name);
/* A rename succeeded; exchange swaps the two names. */
void node_renamed(uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		  int exchange);

#endif
