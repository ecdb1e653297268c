/*
 * epoch.h - epoch-based reclamation of route tables.
 *
 * Why epochs, not reference counts: a reference count on the table would be
 * one cache line that every worker thread writes twice per request. Here a
 * worker writes only its own slot: on entry it stores the global epoch in
 * it, on exit it stores 0. A writer publishes a new table, advances the
 * epoch, and frees the old table once every slot is 0 or at least the new
 * epoch: no reader that could have seen the old table is still running.
 * Readers never lock or wait; the writer never waits either (the old table
 * goes on a retire list that the control thread sweeps).
 *
 * A reader section must cover every use of a table and of the targets it
 * holds without a reference of their own: op_guard.c wraps each FUSE
 * request in one. Sections do not nest.
 */
#ifndef EFSMT_EPOCH_H
#define EFSMT_EPOCH_H

#include <stddef.h>
#include <stdint.h>

void epoch_enter(void);
void epoch_exit(void);
/* Start a new epoch and return it: what a reader may have seen before this
 * call is safe to free once epoch_passed() of the result is true. */
uint64_t epoch_advance(void);
int epoch_passed(uint64_t e);
/* Call fn(p) once no reader that entered before now remains: at once when
 * none does, else from epoch_reclaim(). For objects kept alive by a
 * reference count that a request may still touch after its last put (a
 * target's counters after the reply that let the kernel release its last
 * handle). */
void epoch_defer(void (*fn)(void *), void *p);
/* Run the deferred calls whose readers are gone; the number still waiting. */
size_t epoch_reclaim(void);
/* Called (from any thread) when something is deferred: wakes the sweeper. */
void epoch_set_wake(void (*wake)(void));
/* Free the per-thread slots; only when no reader thread remains. */
void epoch_cleanup(void);

#endif
