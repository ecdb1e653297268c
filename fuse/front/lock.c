/*
 * lock.c - lock states and the requests that use them (lock.h).
 */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "fs.h"
#include "node.h"
#include "base/log.h"
#include "backends/target.h"

/* A blocked request polls its target: first after LOCK_POLL_MIN_MS, the
 * interval doubling up to LOCK_POLL_MAX_MS, so a lock freed on another host
 * is taken within that bound. */
#define LOCK_POLL_MIN_MS 2
#define LOCK_POLL_MAX_MS 200
#define LOCK_BUCKETS	 1024
/* A request that would fail at once (F_SETLK, F_GETLK) on a lock held on
 * this mount through an open whose close(2) sends no FLUSH waits up to this
 * long for that open's release, which FUSE sends just after close returns
 * and which ends the lock. */
#define LOCK_GRACE_MS 10

int lock_local = LOCK_LOCAL_NONE;

struct lock_state {
	struct lock_state *next;   /* hash chain */
	struct lock_state *h_next; /* the handle's list */
	fuse_ino_t ino;
	uint64_t owner;
	int kind;
	struct efsmt_handle *h; /* made through it; referenced */
	/* The handle the last lock was asked through (NULL: none yet); under
	 * tab_lock. Its release ends the state (lock_drop_handle). */
	struct efsmt_handle *last;
	struct target *t;   /* where h was open then (a handle with locks never moves) */
	uint64_t ls;	    /* the backend's */
	int refs;	    /* under tab_lock; the table holds one while listed */
	int dead;	    /* out of the table: its owner closed, or the handle went */
	pthread_mutex_t mu; /* one backend call at a time; guards held and lost */
	int held;	    /* some lock may be held: counted in locks_held */
	int lost;	    /* the target lost its locks */
};

static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lock_state *tab[LOCK_BUCKETS];

static unsigned bucket(fuse_ino_t ino, uint64_t owner)
{
	uint64_t x = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ owner;
	x ^= x >> 29;
	return (unsigned)(x % LOCK_BUCKETS);
}

/* ---- the table ---- */

static struct lock_state *find_locked(fuse_ino_t ino, uint64_t owner, int kind)
{
	for (struct lock_state *s = tab[bucket(ino, owner)]; s; s = s->next)
		if (s->ino == ino && s->owner == owner && s->kind == kind)
			return s;
	return NULL;
}

/* A lock is asked through h on s: note it (under tab_lock). */
static void used_locked(struct lock_state *s, struct efsmt_handle *h)
{
	s->last = h;
	if (h != s->h)
		atomic_store_explicit(&h->lent, 1, memory_order_relaxed);
}

/* The owner's state on ino, with a reference; NULL if none. use: the
 * handle a lock is asked through, or NULL (an unlock, a test). */
static struct lock_state *state_find(fuse_ino_t ino, uint64_t owner, int kind,
				     struct efsmt_handle *use)
{
	pthread_mutex_lock(&tab_lock);
	struct lock_state *s = find_locked(ino, owner, kind);
	if (s) {
		s->refs++;
		if (use)
			used_locked(s, use);
	}
	pthread_mutex_unlock(&tab_lock);
	return s;
}

static void set_held(struct lock_state *s, int held)
{
	if (s->held != held)
		atomic_fetch_add(&s->t->locks_held, held ? 1 : -1);
	s->held = held;
}

static void state_put(struct lock_state *s)
{
	pthread_mutex_lock(&tab_lock);
	int last = --s->refs == 0;
	pthread_mutex_unlock(&tab_lock);
	if (!last)
		return;
	struct target *t = s->t;
	set_held(s, 0);
	t->ops->lock_free(t, s->ls);
	handle_put(s->h);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Take s out of the table and its handle's list; the caller then drops
 * the table's reference with state_put. */
static void unlist_locked(struct lock_state *s)
{
	struct lock_state **pp = &tab[bucket(s->ino, s->owner)];
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	for (pp = &s->h->locks; *pp != s; pp = &(*pp)->h_next)
		;
	*pp = s->h_next;
	atomic_fetch_sub(&s->h->nlocks, 1);
	s->dead = 1;
}

static void state_end(struct lock_state *s)
{
	pthread_mutex_lock(&tab_lock);
	int listed = !s->dead;
	if (listed)
		unlist_locked(s);
	pthread_mutex_unlock(&tab_lock);
	if (listed)
		state_put(s);
}

/* The owner's state on ino, made through h if it has none; 0 or -errno.
 * acquire: a lock is asked through h (not a test). */
static int state_make(fuse_ino_t ino, uint64_t owner, int kind, struct efsmt_handle *h, int acquire,
		      struct lock_state **out)
{
	struct efsmt_handle *use = acquire ? h : NULL;
	*out = state_find(ino, owner, kind, use);
	if (*out)
		return 0;
	struct lock_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct handle_at *a = handle_at(h);
	int rc = a->t->ops->lock_new(a->t, a->bh, kind, &s->ls);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->t = a->t;
	s->ino = ino;
	s->owner = owner;
	s->kind = kind;
	s->h = h;
	s->refs = 2; /* the table's and the caller's */
	pthread_mutex_init(&s->mu, NULL);
	handle_get(h);
	pthread_mutex_lock(&tab_lock);
	struct lock_state *other = find_locked(ino, owner, kind);
	if (other) {
		other->refs++;
		if (use)
			used_locked(other, use);
	} else {
		s->last = use;
		unsigned b = bucket(ino, owner);
		s->next = tab[b];
		tab[b] = s;
		s->h_next = h->locks;
		h->locks = s;
		atomic_fetch_add(&h->nlocks, 1);
	}
	pthread_mutex_unlock(&tab_lock);
	if (other) { /* another request of the same owner was quicker */
		s->refs = 1;
		state_put(s);
		s = other;
	}
	*out = s;
	return 0;
}

static void note_lost(struct lock_state *s)
{
	if (!s->lost)
		log_warn("msg=lock-lost target=%s ino=%llu (the server no longer holds this "
			 "owner's locks; its reads and writes fail with EIO until it unlocks or "
			 "closes)",
			 s->t->id, (unsigned long long)s->ino);
	s->lost = 1;
}

/* One attempt at lk; -EAGAIN while another owner's lock is in the way. */
static int state_try(struct lock_state *s, const struct be_lock *lk, int waiting)
{
	struct target *t = s->t;
	int rc, end = 0;
	pthread_mutex_lock(&s->mu);
	if (s->dead) {
		/* Its descriptor was closed meanwhile: the locks are gone. */
		rc = lk->type == F_UNLCK ? 0 : -EBADF;
	} else if (s->lost || t->ops->lock_check(t, s->ls) < 0) {
		note_lost(s);
		/* An unlock ends the lost state; a new lock then starts afresh. */
		rc = lk->type == F_UNLCK ? 0 : -EIO;
		end = lk->type == F_UNLCK;
	} else {
		rc = t->ops->lock_set(t, s->ls, lk, waiting);
		if (rc == -ENOLCK) {
			note_lost(s);
			rc = lk->type == F_UNLCK ? 0 : -EIO;
			end = lk->type == F_UNLCK;
		}
	}
	if (rc == 0 && lk->type != F_UNLCK)
		set_held(s, 1);
	else if (rc == 0 && (s->kind == BE_LOCK_FLOCK || (lk->start == 0 && lk->len == 0)))
		set_held(s, 0);
	pthread_mutex_unlock(&s->mu);
	if (end)
		state_end(s);
	return rc;
}

/* Whether another owner holds a lock on ino through an open whose close
 * sends no FLUSH (op_file.c): the holder may have closed it already, its
 * release, which ends the lock, being still on its way. */
static atomic_int releasing; /* lock_drop_handle calls ending states */

static int weak_holder(fuse_ino_t ino, uint64_t owner)
{
	/* A state out of the table may still hold its locks on the target
	 * until its last reference goes. */
	if (atomic_load(&releasing))
		return 1;
	int found = 0;
	pthread_mutex_lock(&tab_lock);
	for (unsigned b = 0; b < LOCK_BUCKETS && !found; b++)
		for (struct lock_state *s = tab[b]; s && !found; s = s->next)
			found = s->ino == ino && s->owner != owner && s->held && s->last &&
				s->last->noflush;
	pthread_mutex_unlock(&tab_lock);
	return found;
}

/* ---- requests ---- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answer a lock request. A granted lock first drops what the kernel
 * cached of the file: another host may have written it under the lock. */
static void finish(fuse_req_t req, fuse_ino_t ino, const struct be_lock *lk, int rc)
{
	/* Only off the worker threads (w_main): dropping cached pages waits for
	 * reads of the file in flight, which a worker must be free to serve. */
	if (rc == 0 && lk->type != F_UNLCK && fs_session)
		fuse_lowlevel_notify_inval_inode(fs_session, ino, 0, 0);
	fuse_reply_err(req, -rc);
}

struct waiter {
	struct waiter *next;
	fuse_req_t req;
	fuse_ino_t ino;
	struct lock_state *s;
	struct be_lock lk;
	long long due_ms;
	long long until_ms; /* a request that may not block: answer EAGAIN then */
	unsigned wait_ms;
	int granted; /* only to be answered (finish): the lock is held */
};

static pthread_mutex_t w_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cond = PTHREAD_COND_INITIALIZER;
static struct waiter *w_list;
static int w_started, w_stop, w_kick;
static pthread_t w_thread;

static void w_wake(fuse_req_t req, void *data)
{
	(void)req;
	(void)data;
	pthread_mutex_lock(&w_lock);
	w_kick = 1;
	pthread_cond_signal(&w_cond);
	pthread_mutex_unlock(&w_lock);
}

static void w_add_locked(struct waiter *w)
{
	w->next = w_list;
	w_list = w;
	pthread_cond_signal(&w_cond);
}

/* One waiter's turn, without w_lock: answered (and freed) or queued again. */
static void w_turn(struct waiter *w, int try_lock)
{
	int rc = -EAGAIN;
	if (w->granted)
		rc = 0;
	else if (fuse_req_interrupted(w->req))
		rc = -EINTR;
	else if (try_lock)
		rc = state_try(w->s, &w->lk, !w->until_ms);
	/* A request that may not block waits only while the holder may be an
	 * open already closed (weak_holder). */
	if (rc == -EAGAIN && w->until_ms &&
	    (now_ms() >= w->until_ms || !weak_holder(w->ino, w->s->owner)))
		w->until_ms = -1;
	if (rc == -EAGAIN && w->until_ms >= 0) {
		if (try_lock)
			w->wait_ms =
			    w->wait_ms * 2 > LOCK_POLL_MAX_MS ? LOCK_POLL_MAX_MS : w->wait_ms * 2;
		w->due_ms = now_ms() + w->wait_ms;
		if (w->until_ms && w->due_ms > w->until_ms)
			w->due_ms = w->until_ms;
		pthread_mutex_lock(&w_lock);
		w_add_locked(w);
		pthread_mutex_unlock(&w_lock);
		return;
	}
	/* The reference first: the state's last one frees its locks, which
	 * must be gone once the owner hears its request answered. */
	state_put(w->s);
	finish(w->req, w->ino, &w->lk, rc);
	free(w);
}

static void *w_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&w_lock);
	while (!w_stop) {
		long long now = now_ms(), next = -1;
		int kick = w_kick;
		struct waiter *ready = NULL, **pp = &w_list;
		w_kick = 0;
		while (*pp) {
			struct waiter *w = *pp;
			if (kick || w->due_ms <= now) {
				*pp = w->next;
				w->next = ready;
				ready = w;
			} else {
				if (next < 0 || w->due_ms < next)
					next = w->due_ms;
				pp = &w->next;
			}
		}
		if (!ready) {
			if (next < 0) {
				pthread_cond_wait(&w_cond, &w_lock);
			} else {
				struct timespec dl;
				clock_gettime(CLOCK_REALTIME, &dl);
				long long ms = next - now;
				dl.tv_sec += ms / 1000;
				dl.tv_nsec += (ms % 1000) * 1000000;
				if (dl.tv_nsec >= 1000000000) {
					dl.tv_sec++;
					dl.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&w_cond, &w_lock, &dl);
			}
			continue;
		}
		pthread_mutex_unlock(&w_lock);
		while (ready) {
			struct waiter *w = ready;
			ready = w->next;
			w_turn(w, w->due_ms <= now);
		}
		pthread_mutex_lock(&w_lock);
	}
	pthread_mutex_unlock(&w_lock);
	return NULL;
}

/* Locks ended: every waiter tries again now. */
static void w_poke(void)
{
	pthread_mutex_lock(&w_lock);
	for (struct waiter *w = w_list; w; w = w->next)
		w->due_ms = 0;
	pthread_cond_signal(&w_cond);
	pthread_mutex_unlock(&w_lock);
}

/* Hand a request to the waiter thread, with the reference to s: a blocking
 * one that met a conflict, a non-blocking one (until_ms: its deadline) that
 * met a weak_holder, or (granted) one whose lock was granted and is only to
 * be answered there. */
static void w_park(fuse_req_t req, fuse_ino_t ino, struct lock_state *s, const struct be_lock *lk,
		   int granted, long long until_ms)
{
	int fail = granted ? 0 : until_ms ? EAGAIN : ENOLCK;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		fuse_reply_err(req, fail);
		state_put(s);
		return;
	}
	w->req = req;
	w->ino = ino;
	w->s = s;
	w->lk = *lk;
	w->granted = granted;
	w->until_ms = until_ms;
	w->wait_ms = LOCK_POLL_MIN_MS;
	w->due_ms = granted ? 0 : now_ms() + w->wait_ms;
	/* Before it is listed: the waiter thread may answer it at once. */
	fuse_req_interrupt_func(req, w_wake, NULL);
	pthread_mutex_lock(&w_lock);
	if (!w_started && pthread_create(&w_thread, NULL, w_main, NULL) == 0)
		w_started = 1;
	if (!w_started || w_stop) {
		pthread_mutex_unlock(&w_lock);
		fuse_reply_err(req, fail);
		state_put(s);
		free(w);
		return;
	}
	w_add_locked(w);
	pthread_mutex_unlock(&w_lock);
}

static void request(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int kind,
		    const struct be_lock *lk, int sleep)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	struct lock_state *s = NULL;
	int rc;

	if (!handle_at(h)->t->ops->lock_new) {
		fuse_reply_err(req, ENOLCK);
		return;
	}
	if (lk->type == F_UNLCK) {
		s = state_find(ino, fi->lock_owner, kind, NULL);
		rc = 0;
	} else {
		rc = state_make(ino, fi->lock_owner, kind, h, 1, &s);
	}
	if (!s) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_count(s->t, 0);
	rc = state_try(s, lk, sleep);
	if ((rc == -EAGAIN && sleep) || (rc == 0 && lk->type != F_UNLCK && fs_session)) {
		w_park(req, ino, s, lk, rc == 0, 0);
		return;
	}
	if (rc == -EAGAIN && weak_holder(ino, fi->lock_owner)) {
		w_park(req, ino, s, lk, 0, now_ms() + LOCK_GRACE_MS);
		return;
	}
	if (rc < 0 && rc != -EAGAIN)
		fs_count(s->t, rc);
	state_put(s);
	finish(req, ino, lk, rc);
}

static void to_be_lock(const struct flock *fl, struct be_lock *lk)
{
	memset(lk, 0, sizeof(*lk));
	lk->type = fl->l_type;
	lk->start = fl->l_start;
	lk->len = fl->l_len;
}

void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *fl,
	      int sleep)
{
	struct be_lock lk;
	/* Before the lock is taken: opens from now on send FLUSH at close. */
	node_mark_locked(ino);
	to_be_lock(fl, &lk);
	request(req, ino, fi, BE_LOCK_POSIX, &lk, sleep);
}

void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct be_lock lk = {.type = F_UNLCK};
	if (op & LOCK_SH)
		lk.type = F_RDLCK;
	else if (op & LOCK_EX)
		lk.type = F_WRLCK;
	request(req, ino, fi, BE_LOCK_FLOCK, &lk, !(op & LOCK_NB));
}

void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *fl)
{
	struct efsmt_handle *h = FS_HANDLE(fi);
	struct lock_state *s;
	struct be_lock lk;

	if (!handle_at(h)->t->ops->lock_new) {
		fuse_reply_err(req, ENOLCK);
		return;
	}
	node_mark_locked(ino);
	int rc = state_make(ino, fi->lock_owner, BE_LOCK_POSIX, h, 0, &s);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	long long until = 0;
	for (;;) {
		to_be_lock(fl, &lk);
		pthread_mutex_lock(&s->mu);
		rc = fs_count(s->t, s->t->ops->lock_get(s->t, s->ls, &lk));
		pthread_mutex_unlock(&s->mu);
		/* As request(): a holder that may have closed gets a moment. */
		if (rc < 0 || lk.type == F_UNLCK || !weak_holder(ino, fi->lock_owner))
			break;
		if (!until)
			until = now_ms() + LOCK_GRACE_MS;
		else if (now_ms() >= until)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	state_put(s);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct flock out = {.l_type = lk.type,
			    .l_whence = SEEK_SET,
			    .l_start = lk.start,
			    .l_len = lk.len,
			    .l_pid = lk.pid};
	fuse_reply_lock(req, &out);
}

/* ---- ends ---- */

void lock_drop_owner(fuse_ino_t ino, uint64_t owner)
{
	struct lock_state *s = state_find(ino, owner, BE_LOCK_POSIX, NULL);
	if (!s)
		return;
	state_end(s);
	state_put(s);
	w_poke();
}

/* Take the first state of a list (a bucket, a handle's) out of the table. */
static struct lock_state *unlist_first(struct lock_state *const *head)
{
	pthread_mutex_lock(&tab_lock);
	struct lock_state *s = *head;
	if (s)
		unlist_locked(s);
	pthread_mutex_unlock(&tab_lock);
	return s;
}

/* Whether h's release ends s: the last lock asked on s came through h
 * (every lock s holds was asked before its owner closed h), or s was made
 * through h and never asked for one. A state made through h whose owner
 * has asked through another handle since stays: that handle's FLUSH or
 * release ends it. */
static int ends_with(const struct lock_state *s, const struct efsmt_handle *h)
{
	return s->last == h || (s->h == h && !s->last);
}

/* Take the first state of a list (a bucket: next, or a handle's: h_next)
 * that h's release ends out of the table. */
static struct lock_state *unlist_ending(struct lock_state *const *head, int in_bucket,
					const struct efsmt_handle *h)
{
	pthread_mutex_lock(&tab_lock);
	struct lock_state *s = *head;
	while (s && !ends_with(s, h))
		s = in_bucket ? s->next : s->h_next;
	if (s)
		unlist_locked(s);
	pthread_mutex_unlock(&tab_lock);
	return s;
}

void lock_drop_handle(struct efsmt_handle *h)
{
	struct lock_state *s;
	int ended = 0, lent = atomic_load(&h->lent);
	if (!atomic_load(&h->nlocks) && !lent)
		return;
	atomic_fetch_add(&releasing, 1);
	while ((s = unlist_ending(&h->locks, 0, h))) {
		state_put(s);
		ended = 1;
	}
	/* States made through other handles that last locked through h (an
	 * open whose close sent no FLUSH): rare, so a walk of the table. */
	for (unsigned b = 0; lent && b < LOCK_BUCKETS; b++)
		while ((s = unlist_ending(&tab[b], 1, h))) {
			state_put(s);
			ended = 1;
		}
	atomic_fetch_sub(&releasing, 1);
	if (ended)
		w_poke();
}

int lock_lost(struct efsmt_handle *h)
{
	int lost = 0;
	if (!atomic_load_explicit(&h->nlocks, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&tab_lock);
	for (struct lock_state *s = h->locks; s && !lost; s = s->h_next) {
		if (!s->held)
			continue;
		if (!s->lost && s->t->ops->lock_check(s->t, s->ls) < 0)
			note_lost(s);
		lost = s->lost;
	}
	pthread_mutex_unlock(&tab_lock);
	return lost;
}

void lock_shutdown(void)
{
	pthread_mutex_lock(&w_lock);
	w_stop = 1;
	pthread_cond_signal(&w_cond);
	int started = w_started;
	pthread_mutex_unlock(&w_lock);
	if (started)
		pthread_join(w_thread, NULL);
	while (w_list) {
		struct waiter *w = w_list;
		w_list = w->next;
		fuse_reply_err(w->req, EINTR);
		state_put(w->s);
		free(w);
	}
}

void lock_release_all(void)
{
	struct lock_state *s;
	for (unsigned b = 0; b < LOCK_BUCKETS; b++)
		while ((s = unlist_first(&tab[b])))
			state_put(s);
}
