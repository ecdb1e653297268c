/*
 * outlive.c - an open file outlives its target (see outlive.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "outlive.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/target.h"
#include "base/log.h"
#include "cred.h"
#include "fs.h"
#include "routing/health.h"

#define OUTLIVE_POLL_MS 100 /* how often a waiting call looks again */

static struct outlive_conf conf = {
	.soft = 0,
	.timeo_ds = 600,
	.retrans = 2,
	.probe_timeout_ms = HEALTH_TIMEOUT_MS_DEFAULT,
};

void outlive_configure(const struct outlive_conf *c)
{
	conf = *c;
}

int outlive_can(int rc)
{
	return be_unreachable(rc);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the caller is being killed: the kernel asked to interrupt the
 * request and SIGKILL is pending (or the caller is gone). Other signals
 * do not end the wait, as on a hard NFS mount. */
static int caller_dying(fuse_req_t req)
{
	if (!req || !fuse_req_interrupted(req))
		return 0;
	pid_t pid = fuse_req_ctx(req)->pid;
	if (pid <= 0)
		return 1; /* in a pid namespace we cannot see: any signal ends it */
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return 1;
	int dying = 0;
	while (!dying && fgets(line, sizeof line, fp)) {
		unsigned long long set;
		if ((sscanf(line, "SigPnd: %llx", &set) == 1 ||
		     sscanf(line, "ShdPnd: %llx", &set) == 1) &&
		    (set >> (SIGKILL - 1)) & 1)
			dying = 1;
		else if (strncmp(line, "State:", 6) == 0 && (strchr(line, 'Z') || strchr(line, 'X')))
			dying = 1;
	}
	fclose(fp);
	return dying;
}

struct replay {
	struct target *t;
	uint64_t bh;
};

/* One piece the old handle kept, written through the new one. */
static int replay_piece(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct replay *r = ctx;
	const char *p = buf;
	while (len) {
		ssize_t n = r->t->ops->write(r->t, r->bh, p, len, (off_t)off);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Open h's file again on t2, as its opener, and hand it what the old
 * handle kept; 0 once h is open there and the data is stable. */
static int move_to(struct efsmt_handle *h, struct handle_at *at, struct target *t2,
		   const char *path)
{
	uint64_t bh2;
	if (h->uid != (uid_t)-1 && cred_become(h->uid, h->gid, h->pid) < 0)
		return -EIO;
	int rc = t2->ops->open(t2, path, h->flags & ~(O_CREAT | O_EXCL | O_TRUNC), &bh2);
	if (rc < 0)
		return rc;
	struct replay r = {t2, bh2};
	if (at->t->ops->pending)
		rc = at->t->ops->pending(at->t, at->bh, replay_piece, &r);
	if (rc == 0 && !h->rdonly)
		rc = t2->ops->fsync(t2, bh2, 0);
	if (rc == 0)
		rc = handle_move(h, t2, bh2);
	if (rc < 0) {
		t2->ops->release(t2, bh2);
		return rc;
	}
	if (at->t->ops->pending)
		at->t->ops->pending(at->t, at->bh, NULL, NULL);
	return 0;
}

/* Whether writes h sent through at before the failure may still land on
 * at's server, so that moving now could let an old write overwrite a newer
 * one made elsewhere: until the server's lease on them ran out (backend
 * fence_ms), unless nothing listens there any more (the process that held
 * them is gone). Reads change nothing: a read-only file is never fenced. */
static int fenced(struct efsmt_handle *h, struct handle_at *at, int *said)
{
	if (h->rdonly || !at->t->ops->fence_ms || atomic_load(&at->t->refused))
		return 0;
	long long left = at->t->ops->fence_ms(at->t, at->bh);
	if (left > 0 && !(*said)++)
		log_info("msg=open-file-move-waits target=%s wait_ms=%lld (writes sent before the "
			 "failure may still land there until its lease runs out)",
			 at->t->id, left);
	return left > 0;
}

int outlive_recover(fuse_req_t req, fuse_ino_t ino, struct efsmt_handle *h,
		    struct handle_at *at, int rc)
{
	if (!be_unreachable(rc))
		return rc;
	health_note(at->t, rc);
	if (h->is_dir)
		return -EIO;
	long long budget = (long long)conf.timeo_ds * 100 * (conf.retrans + 1);
	int said = 0, said_fence = 0;
	pthread_mutex_lock(&h->move_lock);
	/* The failure began when the first call of h that met it began: one
	 * that hung until the health monitor gave up on the target has waited
	 * its probe_timeout already. */
	long long since = op_guard_started_ms();
	if (h->failed_ms && h->failed_ms < since)
		since = h->failed_ms;
	h->failed_ms = since;
	for (;;) {
		if (handle_at(h) != at) {
			rc = 0; /* another call moved it meanwhile */
			break;
		}
		long long waited = now_ms() - since;
		if (atomic_load(&at->t->state) != TARGET_DOWN) {
			rc = at->t->ops->resume ? at->t->ops->resume(at->t, at->bh) : 0;
			if (rc == 0) {
				log_info("msg=open-file-resumed target=%s waited_ms=%lld", at->t->id,
					 waited);
				break;
			}
			if (!be_unreachable(rc))
				break;
			health_note(at->t, rc);
		}
		/* Locks do not move with a file (outlive.h): it waits for its own
		 * target, which fails it if they are lost. */
		if (!atomic_load(&h->nlocks) && (h->rdonly || waited >= conf.probe_timeout_ms) &&
		    !fenced(h, at, &said_fence)) {
			char path[BE_PATH_MAX];
			int len = fs_path(ino, path);
			struct target *t2 = len < 0 ? NULL : fs_route(path, (size_t)len);
			if (t2 && t2 != at->t && atomic_load(&t2->state) != TARGET_DOWN) {
				rc = move_to(h, at, t2, path);
				if (rc == 0) {
					log_info("msg=open-file-moved from=%s to=%s waited_ms=%lld",
						 at->t->id, t2->id, waited);
					break;
				}
				if (be_unreachable(rc))
					health_note(t2, rc);
				else if (!said++)
					log_warn("msg=open-file-move-failed from=%s to=%s error=\"%s\" "
						 "(waiting for its own target)",
						 at->t->id, t2->id, strerror(-rc));
			}
		}
		if (conf.soft && waited >= budget) {
			rc = -EIO;
			break;
		}
		if (caller_dying(req)) {
			rc = -EINTR;
			break;
		}
		pthread_mutex_unlock(&h->move_lock);
		struct timespec ts = {0, OUTLIVE_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&h->move_lock);
	}
	h->failed_ms = 0; /* calls still waiting keep their own start */
	pthread_mutex_unlock(&h->move_lock);
	return rc < 0 && be_unreachable(rc) ? -EIO : rc;
}
