#include "node.h"

#include "backends/target.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#define NODE_HASH_MIN 1024

struct node;

/* One name of a node. */
struct alias {
	struct node *parent;
	char *name;
	struct node *node;
	struct alias *hnext; /* name hash chain on (parent, name) */
	struct alias *next;  /* the node's other names */
};

struct node {
	uint64_t nlookup;        /* the kernel's references */
	uint64_t children;       /* names whose parent this is */
	struct alias *aliases;   /* first: the routing path; NULL: no name left */
	dev_t dev;
	ino_t ino;
	int by_ino;              /* in the inode hash (files with hard links) */
	struct node *inext;      /* inode hash chain */
	struct efsmt_handle *handles;
	atomic_int locked;       /* a POSIX lock was asked on it (node_mark_locked) */
	struct node *all_prev, *all_next; /* every node, for the final cleanup */
	/* node_attr_timeout: the attributes last handed out (st_mode 0: none
	 * yet), their timeout, until when, and the change generation
	 * (op_guard_gen) they were read under */
	struct stat ac_st;
	double ac_timeout;
	long long ac_until_ms;
	unsigned ac_gen;
};

struct hash {
	void **slot;
	size_t size;
	size_t used;
};

static struct node root_node;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct hash names; /* struct alias *, chained by hnext */
static struct hash inos;  /* struct node *, chained by inext */
static struct node all = {.all_prev = &all, .all_next = &all};

static struct node *node_new(const struct stat *st)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->all_next = &all;
	n->all_prev = all.all_prev;
	all.all_prev->all_next = n;
	all.all_prev = n;
	return n;
}

static struct node *by_id(uint64_t id)
{
	return id == NODE_ROOT_ID ? &root_node : (struct node *)(uintptr_t)id;
}

static uint64_t to_id(struct node *n)
{
	return n == &root_node ? NODE_ROOT_ID : (uint64_t)(uintptr_t)n;
}

static size_t name_slot(const struct node *parent, const char *name, size_t size)
{
	return (size_t)(XXH3_64bits_withSeed(name, strlen(name), (uint64_t)(uintptr_t)parent) &
			(size - 1));
}

static size_t ino_slot(dev_t dev, ino_t ino, size_t size)
{
	uint64_t key[2] = {(uint64_t)dev, (uint64_t)ino};
	return (size_t)(XXH3_64bits(key, sizeof(key)) & (size - 1));
}

static int hash_init(struct hash *h)
{
	h->size = NODE_HASH_MIN;
	h->used = 0;
	h->slot = calloc(h->size, sizeof(void *));
	return h->slot ? 0 : -ENOMEM;
}

int node_table_init(void)
{
	root_node.nlookup = 1;
	if (hash_init(&names) < 0 || hash_init(&inos) < 0)
		return -ENOMEM;
	return 0;
}

static void free_node(struct node *n)
{
	while (n->handles) {
		struct efsmt_handle *h = n->handles;
		n->handles = h->next;
		handle_put(h);
	}
	n->all_prev->all_next = n->all_next;
	n->all_next->all_prev = n->all_prev;
	free(n);
}

void node_table_destroy(void)
{
	for (size_t i = 0; i < names.size; i++)
		for (struct alias *a = names.slot[i], *next; a; a = next) {
			next = a->hnext;
			free(a->name);
			free(a);
		}
	while (all.all_next != &all)
		free_node(all.all_next);
	free(names.slot);
	free(inos.slot);
	memset(&names, 0, sizeof(names));
	memset(&inos, 0, sizeof(inos));
}

static void names_grow(void)
{
	size_t nsize = names.size * 2;
	void **nt = calloc(nsize, sizeof(void *));

	if (!nt)
		return; /* longer chains are still correct */
	for (size_t i = 0; i < names.size; i++)
		for (struct alias *a = names.slot[i], *next; a; a = next) {
			next = a->hnext;
			size_t s = name_slot(a->parent, a->name, nsize);
			a->hnext = nt[s];
			nt[s] = a;
		}
	free(names.slot);
	names.slot = nt;
	names.size = nsize;
}

static struct alias *find_name(struct node *parent, const char *name)
{
	for (struct alias *a = names.slot[name_slot(parent, name, names.size)]; a; a = a->hnext)
		if (a->parent == parent && strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

static struct node *find_ino(dev_t dev, ino_t ino)
{
	for (struct node *n = inos.slot[ino_slot(dev, ino, inos.size)]; n; n = n->inext)
		if (n->dev == dev && n->ino == ino)
			return n;
	return NULL;
}

static void ino_insert(struct node *n)
{
	size_t s = ino_slot(n->dev, n->ino, inos.size);

	if (n->by_ino)
		return;
	n->inext = inos.slot[s];
	inos.slot[s] = n;
	n->by_ino = 1;
	inos.used++;
}

static void ino_remove(struct node *n)
{
	if (!n->by_ino)
		return;
	struct node **pp = (struct node **)&inos.slot[ino_slot(n->dev, n->ino, inos.size)];
	while (*pp && *pp != n)
		pp = &(*pp)->inext;
	if (*pp)
		*pp = n->inext;
	n->by_ino = 0;
	inos.used--;
}

/* Give node n the name (parent, name); takes ownership of name. */
static int add_alias(struct node *n, struct node *parent, char *name)
{
	struct alias *a = malloc(sizeof(*a));

	if (!a) {
		free(name);
		return -ENOMEM;
	}
	a->parent = parent;
	a->name = name;
	a->node = n;
	size_t s = name_slot(parent, name, names.size);
	a->hnext = names.slot[s];
	names.slot[s] = a;
	/* Append: the first name stays the routing path. */
	a->next = NULL;
	struct alias **pp = &n->aliases;
	while (*pp)
		pp = &(*pp)->next;
	*pp = a;
	parent->children++;
	if (++names.used > names.size)
		names_grow();
	return 0;
}

/* Take a name out of the hash and its node's list; returns its parent. */
static struct node *unlink_alias(struct alias *a)
{
	struct alias **pp = (struct alias **)&names.slot[name_slot(a->parent, a->name, names.size)];
	struct node *parent = a->parent;

	while (*pp && *pp != a)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = a->hnext;
	names.used--;
	for (pp = &a->node->aliases; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	parent->children--;
	free(a->name);
	free(a);
	return parent;
}

/* Free a node nobody refers to (the kernel, children, open files), and
 * then whichever of its parents that leaves unreferenced. Directories have
 * one parent, so this never loops. */
static void maybe_free(struct node *n)
{
	if (n == &root_node || n->nlookup || n->children || n->handles)
		return;
	ino_remove(n);
	while (n->aliases)
		maybe_free(unlink_alias(n->aliases));
	free_node(n);
}

/* Take a name away from its node. */
static void drop_alias(struct alias *a)
{
	struct node *n = a->node;
	struct node *parent = unlink_alias(a);

	maybe_free(n);
	maybe_free(parent);
}

static int build_path(struct node *n, const char *leaf, char *buf, size_t size)
{
	size_t len = leaf ? strlen(leaf) + 1 : 0;
	size_t pos;

	for (struct node *p = n; p != &root_node; p = p->aliases->parent) {
		if (!p->aliases)
			return -ENOENT;
		len += strlen(p->aliases->name) + 1;
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
	for (struct node *p = n; p != &root_node; p = p->aliases->parent) {
		size_t l = strlen(p->aliases->name);
		pos -= l;
		memcpy(buf + pos, p->aliases->name, l);
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

static int same_file(const struct node *n, const struct stat *st)
{
	return n->dev == st->st_dev && n->ino == st->st_ino;
}

uint64_t node_learn(uint64_t parent_id, const char *name, const struct stat *st)
{
	struct node *parent = by_id(parent_id);
	struct node *n = NULL;
	uint64_t id = 0;
	int linked = st->st_nlink > 1 && !S_ISDIR(st->st_mode);

	pthread_mutex_lock(&lock);
	struct alias *a = find_name(parent, name);
	if (a && !same_file(a->node, st)) {
		/* Replaced behind our back: the old node loses this name. */
		a->node->nlookup++; /* keep it while we let go of the name */
		struct node *old = a->node;
		drop_alias(a);
		old->nlookup--;
		maybe_free(old);
		a = NULL;
	}
	if (a) {
		n = a->node;
	} else {
		n = S_ISDIR(st->st_mode) ? NULL : find_ino(st->st_dev, st->st_ino);
		/* A file with one name left is the node of its other names only
		 * while that node is open: the open keeps the inode from being
		 * reused, and its unlinked names must not hide this one (its
		 * link count, seen through the open file, is this node's). */
		if (n && !linked && !n->handles)
			n = NULL;
		if (!n && !(n = node_new(st)))
			goto out;
		char *copy = strdup(name);
		if (!copy || add_alias(n, parent, copy) < 0) {
			maybe_free(n); /* a new node has no references yet */
			goto out;
		}
	}
	if (linked)
		ino_insert(n);
	n->nlookup++;
	id = to_id(n);
out:
	pthread_mutex_unlock(&lock);
	return id;
}

uint64_t node_link(uint64_t id, uint64_t newparent, const char *newname)
{
	struct node *n = by_id(id), *np = by_id(newparent);
	uint64_t rc = 0;

	pthread_mutex_lock(&lock);
	struct alias *old = find_name(np, newname);
	if (old)
		drop_alias(old);
	char *copy = strdup(newname);
	if (copy && add_alias(n, np, copy) == 0) {
		ino_insert(n);
		n->nlookup++;
		rc = id;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void node_forget(uint64_t id, uint64_t count)
{
	struct node *n = by_id(id);

	if (n == &root_node)
		return;
	pthread_mutex_lock(&lock);
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	maybe_free(n);
	pthread_mutex_unlock(&lock);
}

void node_unlinked(uint64_t parent_id, const char *name)
{
	pthread_mutex_lock(&lock);
	struct alias *a = find_name(by_id(parent_id), name);
	if (a)
		drop_alias(a);
	pthread_mutex_unlock(&lock);
}

/* Move a name to (parent, name); takes ownership of name. */
static void move_alias(struct alias *a, struct node *parent, char *name)
{
	struct alias **pp = (struct alias **)&names.slot[name_slot(a->parent, a->name, names.size)];
	while (*pp && *pp != a)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = a->hnext;
	struct node *oldparent = a->parent;
	free(a->name);
	a->name = name;
	a->parent = parent;
	size_t s = name_slot(parent, name, names.size);
	a->hnext = names.slot[s];
	names.slot[s] = a;
	parent->children++;
	oldparent->children--;
	maybe_free(oldparent);
}

void node_renamed(uint64_t parent_id, const char *name, uint64_t newparent_id,
		  const char *newname, int exchange)
{
	struct node *p = by_id(parent_id), *np = by_id(newparent_id);

	pthread_mutex_lock(&lock);
	struct alias *from = find_name(p, name);
	struct alias *to = find_name(np, newname);
	char *n1 = strdup(newname), *n2 = strdup(name);

	if (!n1 || !n2) {
		/* Cannot record the new names: forget both, lookups redo them. */
		free(n1);
		free(n2);
		if (to)
			drop_alias(to);
		if (from && from != to)
			drop_alias(from);
		goto out;
	}
	if (from == to) { /* rename onto itself */
		free(n1);
		free(n2);
		goto out;
	}
	/* Hold both parents: moving names must not free them midway. */
	p->nlookup++;
	np->nlookup++;
	if (exchange && to) {
		move_alias(to, p, n2);
		n2 = NULL;
	} else if (to) {
		drop_alias(to);
	}
	if (from)
		move_alias(from, np, n1);
	else
		free(n1);
	free(n2);
	p->nlookup--;
	np->nlookup--;
	maybe_free(p);
	maybe_free(np);
out:
	pthread_mutex_unlock(&lock);
}

void node_mark_locked(uint64_t id)
{
	struct node *n = by_id(id);

	if (!atomic_load_explicit(&n->locked, memory_order_relaxed))
		atomic_store(&n->locked, 1);
}

int node_ever_locked(uint64_t id)
{
	return atomic_load(&by_id(id)->locked);
}

void node_add_handle(uint64_t id, struct efsmt_handle *h)
{
	struct node *n = by_id(id);

	handle_get(h);
	pthread_mutex_lock(&lock);
	h->next = n->handles;
	n->handles = h;
	pthread_mutex_unlock(&lock);
}

void node_remove_handle(uint64_t id, struct efsmt_handle *h)
{
	struct node *n = by_id(id);
	int found = 0;

	pthread_mutex_lock(&lock);
	for (struct efsmt_handle **pp = &n->handles; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			found = 1;
			break;
		}
	maybe_free(n);
	pthread_mutex_unlock(&lock);
	if (found)
		handle_put(h);
}

struct efsmt_handle *node_get_handle(uint64_t id)
{
	struct efsmt_handle *h;

	pthread_mutex_lock(&lock);
	for (h = by_id(id)->handles; h && h->is_dir; h = h->next)
		;
	if (h)
		handle_get(h);
	pthread_mutex_unlock(&lock);
	return h;
}

int node_handle_targets(uint64_t id, char *buf, size_t size)
{
	size_t len = 0;
	int rc = 0;

	pthread_mutex_lock(&lock);
	for (struct efsmt_handle *h = by_id(id)->handles; h; h = h->next) {
		struct efsmt_handle *seen = by_id(id)->handles;
		struct target *t = handle_at(h)->t;
		while (seen != h && handle_at(seen)->t != t)
			seen = seen->next;
		if (seen != h)
			continue; /* this target is listed already */
		size_t n = strlen(t->id) + (len ? 1 : 0);
		if (len + n + 1 > size) {
			rc = -ERANGE;
			break;
		}
		len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? " " : "", t->id);
	}
	pthread_mutex_unlock(&lock);
	if (len == 0 && size)
		buf[0] = '\0';
	return rc < 0 ? rc : (int)len;
}

/* n's attributes last handed out are st's; caller holds the lock. */
static int ac_same(const struct node *n, const struct stat *st)
{
	const struct stat *a = &n->ac_st;
	return a->st_size == st->st_size && a->st_mode == st->st_mode &&
	       a->st_mtim.tv_sec == st->st_mtim.tv_sec && a->st_mtim.tv_nsec == st->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == st->st_ctim.tv_sec && a->st_ctim.tv_nsec == st->st_ctim.tv_nsec;
}

int node_attr_changed(uint64_t id, const struct stat *st)
{
	pthread_mutex_lock(&lock);
	struct node *n = by_id(id);
	int changed = n->ac_st.st_mode && !ac_same(n, st);
	pthread_mutex_unlock(&lock);
	return changed;
}

double node_attr_timeout(uint64_t id, const struct stat *st, double lo, double hi, unsigned gen,
			 long long now_ms)
{
	pthread_mutex_lock(&lock);
	struct node *n = by_id(id);
	int same = n->ac_timeout > 0 && ac_same(n, st);
	double t = same ? n->ac_timeout * 2 : lo;
	if (t > hi)
		t = hi;
	if (t <= 0)
		t = lo;
	n->ac_timeout = t;
	n->ac_st = *st;
	n->ac_until_ms = now_ms + (long long)(t * 1000);
	n->ac_gen = gen;
	pthread_mutex_unlock(&lock);
	return t;
}

void node_attr_drop(uint64_t id)
{
	pthread_mutex_lock(&lock);
	by_id(id)->ac_until_ms = 0;
	pthread_mutex_unlock(&lock);
}

long long node_attr_cached(uint64_t id, struct stat *st, unsigned *gen)
{
	pthread_mutex_lock(&lock);
	struct node *n = by_id(id);
	long long until = n->ac_st.st_mode ? n->ac_until_ms : 0;
	if (until) {
		*st = n->ac_st;
		*gen = n->ac_gen;
	}
	pthread_mutex_unlock(&lock);
	return until;
}
