/*
 * node.h - the FUSE inode table: the names (parent, name) by which the
 * kernel reached each node, so an operation's full path - the routing key -
 * can be rebuilt.
 *
 * Node ids given to the kernel are node addresses; the root is
 * NODE_ROOT_ID. A file with several hard links is one node with several
 * names (found by the backend's st_dev and st_ino), so every name shares one
 * kernel inode: sizes and contents stay coherent across links. A node's
 * first name is the path its operations route by. st_ino reported to
 * applications is the backend's own.
 *
 * One mutex guards the table; every critical section is a hash probe or a
 * walk up the parents.
 */
#ifndef EFSMT_NODE_H
#define EFSMT_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "handle.h"

#define NODE_ROOT_ID 1

int node_table_init(void);
void node_table_destroy(void);

/* Full path of a node id into buf: its length, -ENOENT for a node that has
 * no name left (unlinked, replaced), -ENAMETOOLONG. */
int node_path(uint64_t id, char *buf, size_t size);
/* Full path of NAME under the directory PARENT. */
int node_child_path(uint64_t parent, const char *name, char *buf, size_t size);

/* The kernel learned PARENT/NAME, whose attributes are st: find or make its
 * node and count one lookup. Returns the node id, 0 when out of memory. */
uint64_t node_learn(uint64_t parent, const char *name, const struct stat *st);
/* A hard link NEWPARENT/NEWNAME to node ID was made: one more name, one
 * more lookup. Returns id, 0 when out of memory. */
uint64_t node_link(uint64_t id, uint64_t newparent, const char *newname);
/* The kernel dropped n lookups. */
void node_forget(uint64_t id, uint64_t n);
/* PARENT/NAME no longer names its node (unlink, rmdir). */
void node_unlinked(uint64_t parent, const char *name);
/* A rename succeeded; exchange swaps the two names. */
void node_renamed(uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		  int exchange);

/* A POSIX lock (F_SETLK, F_SETLKW, F_GETLK) was asked on the node through
 * this mount: sticky for as long as the node lives. Its opens from then on
 * send FLUSH at close(2), the only notice that the closing process's locks
 * must go (op_file.c); earlier opens were spared that round trip. */
void node_mark_locked(uint64_t id);
int node_ever_locked(uint64_t id);

/* Open handles of a node (the node table holds a reference to each). */
void node_add_handle(uint64_t id, struct efsmt_handle *h);
void node_remove_handle(uint64_t id, struct efsmt_handle *h);
/* Write the ids of the targets holding the node's open files into buf,
 * space-separated, each once; returns the length or -ERANGE. */
int node_handle_targets(uint64_t id, char *buf, size_t size);
/* One of the node's open file handles, with a reference; NULL if none. */
struct efsmt_handle *node_get_handle(uint64_t id);
/* The attribute timeout for st, ino's attributes just read (under change
 * generation gen, at now_ms): lo after they
 * changed (or the first time), twice the last one, up to hi, while the
 * same (mode, size, mtime, ctime), as nfs(5)'s acregmin..acregmax. */
double node_attr_timeout(uint64_t id, const struct stat *st, double lo, double hi, unsigned gen,
			 long long now_ms);
/* The attributes last handed out for id (into *st, with the change
 * generation they were read under): until when they were given (ms, the
 * clock of now_ms above), 0 if none were. */
long long node_attr_cached(uint64_t id, struct stat *st, unsigned *gen);
/* Forget them: they are known to be stale. */
void node_attr_drop(uint64_t id);
/* Whether st (read from the server at an open) differs from the attributes
 * last handed to the kernel for id; 0 if none were. */
int node_attr_changed(uint64_t id, const struct stat *st);

#endif
