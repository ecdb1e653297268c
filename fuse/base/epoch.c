#include "epoch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct epoch_slot {
	_Atomic uint64_t active; /* the epoch the owner entered in; 0: outside */
	atomic_bool used;	 /* owned by a live thread */
	struct epoch_slot *next;
};

static _Atomic uint64_t global_epoch = 1;
static _Atomic(struct epoch_slot *) slots;
static _Thread_local struct epoch_slot *mine;
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

/* A thread that exits gives its slot back for the next one. */
static void slot_release(void *p)
{
	struct epoch_slot *s = p;

	atomic_store_explicit(&s->active, 0, memory_order_release);
	atomic_store_explicit(&s->used, false, memory_order_release);
}

static void slot_key_init(void)
{
	pthread_key_create(&slot_key, slot_release);
}

/* Once per thread: reuse a free slot or push a new one (never removed). */
static struct epoch_slot *slot_register(void)
{
	struct epoch_slot *s;

	pthread_once(&slot_once, slot_key_init);
	for (s = atomic_load(&slots); s; s = s->next) {
		bool f = false;
		if (atomic_compare_exchange_strong(&s->used, &f, true))
			break;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			abort(); /* a few bytes, once per thread */
		atomic_init(&s->used, true);
		s->next = atomic_load(&slots);
		while (!atomic_compare_exchange_weak(&slots, &s->next, s))
			;
	}
	pthread_setspecific(slot_key, s);
	mine = s;
	return s;
}

void epoch_enter(void)
{
	struct epoch_slot *s = mine ? mine : slot_register();

	/* seq_cst: the slot store must be visible before this thread loads
	 * the table pointer (the writer's exchange and scan are seq_cst). */
	atomic_store(&s->active, atomic_load(&global_epoch));
}

void epoch_exit(void)
{
	atomic_store_explicit(&mine->active, 0, memory_order_release);
}

uint64_t epoch_advance(void)
{
	return atomic_fetch_add(&global_epoch, 1) + 1;
}

int epoch_passed(uint64_t e)
{
	for (struct epoch_slot *s = atomic_load(&slots); s; s = s->next) {
		uint64_t a = atomic_load(&s->active);
		if (a != 0 && a < e)
			return 0;
	}
	return 1;
}

struct deferred {
	void (*fn)(void *);
	void *p;
	uint64_t epoch;
	struct deferred *next;
};

static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct deferred *deferred;
static void (*_Atomic wake_fn)(void);

void epoch_set_wake(void (*wake)(void))
{
	atomic_store(&wake_fn, wake);
}

void epoch_defer(void (*fn)(void *), void *p)
{
	uint64_t e = epoch_advance();
	struct deferred *d;

	if (epoch_passed(e) || !(d = malloc(sizeof(*d)))) {
		/* No reader (or no memory: then no safer choice is left). */
		fn(p);
		return;
	}
	*d = (struct deferred){fn, p, e, NULL};
	pthread_mutex_lock(&defer_lock);
	d->next = deferred;
	deferred = d;
	pthread_mutex_unlock(&defer_lock);
	void (*w)(void) = atomic_load(&wake_fn);
	if (w)
		w();
}

size_t epoch_reclaim(void)
{
	struct deferred *ready = NULL;
	size_t left = 0;

	pthread_mutex_lock(&defer_lock);
	for (struct deferred **pp = &deferred; *pp;) {
		struct deferred *d = *pp;
		if (epoch_passed(d->epoch)) {
			*pp = d->next;
			d->next = ready;
			ready = d;
		} else {
			pp = &d->next;
			left++;
		}
	}
	pthread_mutex_unlock(&defer_lock);
	while (ready) {
		struct deferred *d = ready;
		ready = d->next;
		d->fn(d->p);
		free(d);
	}
	return left;
}

void epoch_cleanup(void)
{
	/* No reader is left: everything deferred can run. */
	while (deferred) {
		struct deferred *d = deferred;
		deferred = d->next;
		d->fn(d->p);
		free(d);
	}
	struct epoch_slot *s = atomic_exchange(&slots, NULL);

	while (s) {
		struct epoch_slot *n = s->next;
		free(s);
		s = n;
	}
	mine = NULL;
}
