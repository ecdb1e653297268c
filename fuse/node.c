#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NODE_HASH_MIN 1024

struct node {
	struct node *parent; /* NULL: detached (unlinked or replaced) */
	char *name;
	uint64_t nlookup;     /* the kernel's references */
	uint64_t children;    /* nodes whose parent this is */
	struct node *hnext;   /* hash chain on (parent, name) */
};

static struct node root_node;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node **table;
static size_t table_size;
static size_t table_used;

static struct node *by_id(uint64_t id)
{
	return id == NODE_ROOT_ID ? &root_node : (struct node *)(uintptr_t)id;
}

static uint64_t to_id(struct node *n)
{
	return n == &root_node ? NODE_ROOT_ID : (uint64_t)(uintptr_t)n;
}

static size_t slot(const struct node *parent, const char *name, size_t size)
{
	return (size_t)(XXH3_64bits_withSeed(name, strlen(name), (uint64_t)(uintptr_t)parent) &
			(size - 1));
}

int node_table_init(void)
{
	table_size = NODE_HASH_MIN;
	table = calloc(table_size, sizeof(*table));
	root_node.nlookup = 1;
	return table ? 0 : -ENOMEM;
}

void node_table_destroy(void)
{
	for (size_t i = 0; i < table_size; i++) {
		struct node *n = table[i];
		while (n) {
			struct node *next = n->hnext;
			free(n->name);
			free(n);
			n = next;
		}
	}
	free(table);
	table = NULL;
	table_size = table_used = 0;
}

static void grow(void)
{
	size_t nsize = table_size * 2;
	struct node **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return; /* a longer chain is still correct */
	for (size_t i = 0; i < table_size; i++) {
		struct node *n = table[i];
		while (n) {
			struct node *next = n->hnext;
			size_t s = slot(n->parent, n->name, nsize);
			n->hnext = nt[s];
			nt[s] = n;
			n = next;
		}
	}
	free(table);
	table = nt;
	table_size = nsize;
}

static struct node *find(struct node *parent, const char *name)
{
	for (struct node *n = table[slot(parent, name, table_size)]; n; n = n->hnext)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static void hash_insert(struct node *n)
{
	size_t s = slot(n->parent, n->name, table_size);
	n->hnext = table[s];
	table[s] = n;
	table_used++;
	n->parent->children++;
}

static void hash_remove(struct node *n)
{
	struct node **pp = &table[slot(n->parent, n->name, table_size)];

	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = n->hnext;
	n->hnext = NULL;
	table_used--;
	n->parent->children--;
}

/* Free nodes nobody refers to any more, walking up the parents. */
static void maybe_free(struct node *n)
{
	while (n && n != &root_node && n->nlookup == 0 && n->children == 0) {
		struct node *parent = n->parent;
		if (parent)
			hash_remove(n);
		free(n->name);
		free(n);
		n = parent;
	}
}

/* Detach a node from its name; it lives on while the kernel holds it. */
static void detach(struct node *n)
{
	struct node *parent = n->parent;

	hash_remove(n);
	n->parent = NULL;
	if (n->nlookup == 0 && n->children == 0) {
		free(n->name);
		free(n);
	}
	maybe_free(parent);
}

static int build_path(struct node *n, const char *leaf, char *buf, size_t size)
{
	size_t len = leaf ? strlen(leaf) + 1 : 0;
	size_t pos;

	for (struct node *p = n; p != &root_node; p = p->parent) {
		if (!p->parent)
			return -ENOENT;
		len += strlen(p->name) + 1;
	}
	if (len == 0)
		len = 1; /* the root: "/" */
	if (len + 1 > size)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	buf[0] = '/';
	pos = len;
	if (leaf) {
		size_t l = strlen(leaf);
		pos -= l;
		memcpy(buf + pos, leaf, l);
		buf[--pos] = '/';
	}
	for (struct node *p = n; p != &root_node; p = p->parent) {
		size_t l = strlen(p->name);
		pos -= l;
		memcpy(buf + pos, p->name, l);
		buf[--pos] = '/';
	}
	return (int)len;
}

int node_path(uint64_t id, char *buf, size_t size)
{
	pthread_mutex_lock(&lock);
	int rc = build_path(by_id(id), NULL, buf, size);
	pthread_mutex_unlock(&lock);
	return rc;
}

int node_child_path(uint64_t parent, const char *name, char *buf, size_t size)
{
	pthread_mutex_lock(&lock);
	int rc = build_path(by_id(parent), name, buf, size);
	pthread_mutex_unlock(&lock);
	return rc;
}

uint64_t node_learn(uint64_t parent_id, const char *name)
{
	struct node *parent = by_id(parent_id);
	struct node *n;
	uint64_t id = 0;

	pthread_mutex_lock(&lock);
	n = parent->parent || parent == &root_node ? find(parent, name) : NULL;
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (n)
			n->name = strdup(name);
		if (!n || !n->name) {
			free(n);
			goto out;
		}
		n->parent = parent;
		if (!parent->parent && parent != &root_node) {
			/* The directory went away meanwhile: a node of its own. */
			n->parent = NULL;
		} else {
			hash_insert(n);
			if (table_used > table_size)
				grow();
		}
	}
	n->nlookup++;
	id = to_id(n);
out:
	pthread_mutex_unlock(&lock);
	return id;
}

void node_forget(uint64_t id, uint64_t count)
{
	struct node *n = by_id(id);

	if (n == &root_node)
		return;
	pthread_mutex_lock(&lock);
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	if (n->nlookup == 0 && n->children == 0) {
		if (n->parent) {
			maybe_free(n);
		} else {
			free(n->name);
			free(n);
		}
	}
	pthread_mutex_unlock(&lock);
}

void node_unlinked(uint64_t parent_id, const char *name)
{
	pthread_mutex_lock(&lock);
	struct node *n = find(by_id(parent_id), name);
	if (n)
		detach(n);
	pthread_mutex_unlock(&lock);
}

static void move_to(struct node *n, struct node *parent, char *name)
{
	hash_remove(n);
	free(n->name);
	n->name = name;
	n->parent = parent;
	hash_insert(n);
}

void node_renamed(uint64_t parent_id, const char *name, uint64_t newparent_id,
		  const char *newname, int exchange)
{
	struct node *p = by_id(parent_id), *np = by_id(newparent_id);

	pthread_mutex_lock(&lock);
	struct node *from = find(p, name);
	struct node *to = find(np, newname);
	char *n1 = strdup(newname), *n2 = strdup(name);

	if (!n1 || !n2) {
		/* Cannot record the new names: forget both, lookups will redo them. */
		if (from)
			detach(from);
		if (to)
			detach(to);
		free(n1);
		free(n2);
		goto out;
	}
	if (exchange && to) {
		/* Hold both parents while the names move, so neither is freed. */
		p->children++;
		np->children++;
		if (from)
			move_to(from, np, n1);
		else
			free(n1);
		move_to(to, p, n2);
		p->children--;
		np->children--;
		goto out;
	}
	free(n2);
	if (to && to != from)
		detach(to);
	if (from) {
		np->children++; /* keep np alive if from was its last child */
		move_to(from, np, n1);
		np->children--;
		maybe_free(p);
	} else {
		free(n1);
	}
out:
	pthread_mutex_unlock(&lock);
}
