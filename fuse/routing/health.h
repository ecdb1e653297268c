/*
 * health.h - the health monitor: a thread that, every probe interval, asks
 * each target of the route table for statfs("/") in a probe thread of its
 * own. A probe that fails, or has not answered within the probe timeout,
 * marks the target down: route_pick sends its paths to the next target in
 * score order, and its connections are cut (backend abort) so that calls
 * waiting on it fail at once instead of hanging. A down target keeps being
 * probed and comes back up when a probe succeeds.
 *
 * A target is therefore marked down at most interval + timeout after it
 * stops answering (defaults 2 s + 5 s), or at once when an operation sees
 * its connection fail (health_note).
 */
#ifndef EFSMT_HEALTH_H
#define EFSMT_HEALTH_H

#include "backends/target.h"

#define HEALTH_INTERVAL_MS_DEFAULT 2000
#define HEALTH_TIMEOUT_MS_DEFAULT  5000

/* 0, or -errno if the thread could not start. interval_ms 0: no monitor. */
int health_start(int interval_ms, int timeout_ms);
/* Stops the monitor and waits for its probes (cutting stuck ones). */
void health_stop(void);
/* After a backend call: when rc says the target did not answer (a timeout,
 * a dropped or refused connection), mark it down now. Returns rc. */
int health_note(struct target *t, int rc);
/* Whether rc means "the target did not answer", not an answer. */
int health_is_unreachable(int rc);

#endif
