/*
 * main.c - efsmt: parse, attach every target, mount, serve, clean up.
 *
 * Everything that can be wrong with the command line or the targets is
 * found before the mount, so a bad mount leaves nothing mounted or running.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend_kernel.h"
#include "backends/nfs/backend_nfs.h"
#include "config.h"
#include "control_server.h"
#include "front/cred.h"
#include "ctl_proto.h"
#include "base/epoch.h"
#include "front/fs.h"
#include "routing/health.h"
#include "front/lock.h"
#include "base/log.h"
#include "front/node.h"
#include "front/outlive.h"
#include "front/readahead.h"
#include "routing/reload.h"
#include "tls_setup.h"
#include "base/mountinfo.h"

#define EFSMT_MAX_WRITE (1024 * 1024) /* bytes per FUSE write request */

static void efsmt_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->want |= conn->capable & (FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS |
				       FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_SPLICE_WRITE |
				       FUSE_CAP_SPLICE_MOVE);
	/* Splicing every request out of /dev/fuse costs two extra system calls
	 * per small request; replies from a backing file are spliced (reads
	 * measured 1.3 -> 1.8 GB/s). An open drops the file's cached pages
	 * (no keep_cache), so data is never older than the open and
	 * auto_inval_data would only add a GETATTR before reads; with -o
	 * nocto pages outlive the open, and auto_inval_data is what drops
	 * them when another host changed the file. */
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	if (fs.nocto)
		conn->want |= conn->capable & FUSE_CAP_AUTO_INVAL_DATA;
	else
		conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	/* Locks go to the targets (lock.h), so that every mount sees them;
	 * -o local_lock= leaves a kind to the kernel (this mount only). */
	if (!(lock_local & LOCK_LOCAL_POSIX))
		conn->want |= conn->capable & FUSE_CAP_POSIX_LOCKS;
	else
		conn->want &= ~(unsigned)FUSE_CAP_POSIX_LOCKS;
	if (!(lock_local & LOCK_LOCAL_FLOCK))
		conn->want |= conn->capable & FUSE_CAP_FLOCK_LOCKS;
	else
		conn->want &= ~(unsigned)FUSE_CAP_FLOCK_LOCKS;
	unsigned bg = readahead_background();
	if (bg > conn->max_background) {
		conn->max_background = bg;
		conn->congestion_threshold = bg * 3 / 4;
	}
	if (conn->max_write > EFSMT_MAX_WRITE)
		conn->max_write = EFSMT_MAX_WRITE;
	conn->time_gran = 1;
}

/* Attach every target; on failure close those already open. */
static struct route_table *open_targets(const struct efsmt_config *cfg)
{
	struct target *t[cfg->ntargets];
	char err[512];

	for (size_t i = 0; i < cfg->ntargets; i++) {
		t[i] = target_open(&cfg->targets[i], cfg->subdir, err, sizeof(err));
		if (!t[i]) {
			fprintf(stderr, "efsmt: %s\n", err);
			while (i-- > 0)
				target_put(t[i]);
			return NULL;
		}
	}
	struct route_table *rt = route_table_new(t, cfg->ntargets, cfg->generation);
	for (size_t i = 0; i < cfg->ntargets; i++)
		target_put(t[i]); /* the table holds them now */
	return rt;
}

/* The control socket is bound before the mount, so a bad path or a live
 * daemon on it stops the start with nothing mounted. */
static int open_control(const struct efsmt_config *cfg)
{
	char path[256], err[512];
	const char *p = cfg->control;

	if (p && strcmp(p, "none") == 0) {
		p = NULL;
	} else if (!p) {
		if (ctl_default_socket(cfg->fs_id ? cfg->fs_id : cfg->source, cfg->mountpoint,
				       path, sizeof(path)) < 0) {
			fprintf(stderr, "efsmt: no room for the control socket path (give "
					"-o control=PATH)\n");
			return -1;
		}
		p = path;
	}
	if (ctl_server_open(cfg, p, err, sizeof(err)) < 0) {
		fprintf(stderr, "efsmt: %s\n", err);
		ctl_server_stop();
		return -1;
	}
	return 0;
}

static int build_fuse_args(const struct efsmt_config *cfg, struct fuse_args *args)
{
	char opts[4096];
	int n;

	/* fsname and subtype first: the user's own choices, later, win. As
	 * root, targets check permissions for the caller (cred.h); otherwise
	 * the kernel checks them. */
	n = snprintf(opts, sizeof(opts), "fsname=%s,subtype=efsmt%s%s%s", cfg->source,
		     cred_enabled() ? "" : ",default_permissions", cfg->fuse_opts ? "," : "",
		     cfg->fuse_opts ? cfg->fuse_opts : "");
	if (n < 0 || (size_t)n >= sizeof(opts))
		return -1;
	if (fuse_opt_add_arg(args, "efsmt") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -1;
	if (cfg->debug && fuse_opt_add_arg(args, "-d"))
		return -1;
	return 0;
}

static int has_nfs_target(const struct efsmt_config *cfg)
{
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (strcmp(cfg->targets[i].scheme, "nfs") == 0)
			return 1;
	return 0;
}

static int serve(const struct efsmt_config *cfg)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	int rc = 1;

	if (build_fuse_args(cfg, &args) < 0) {
		fprintf(stderr, "efsmt: mount options too long\n");
		goto out;
	}
	/* Every operation runs in an epoch section and is timed (op_guard.c). */
	struct fuse_lowlevel_ops ops = efsmt_guarded_ops;
	ops.init = efsmt_init;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) {
		fprintf(stderr, "efsmt: cannot start a FUSE session (see the message above)\n");
		goto out;
	}
	fs_session = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		fprintf(stderr,
			"efsmt: cannot mount on %s (is /dev/fuse there, and are you root or is "
			"fusermount3 installed?)\n",
			cfg->mountpoint);
		goto out_signals;
	}
	readahead_find(cfg->mountpoint, cfg->lanes);
	log_info("msg=mounted source=%s mountpoint=%s targets=%zu", cfg->source, cfg->mountpoint,
		 cfg->ntargets);
	if (!cfg->foreground)
		log_use_syslog(1);
	fuse_daemonize(cfg->foreground);
	/* After daemonizing (threads do not survive the fork) and after
	 * libfuse's signal handlers, so that SIGHUP becomes a reload. */
	if (ctl_server_start() < 0)
		log_error("msg=control-thread-failed (the mount works, efsmtctl does not)");
	if (health_start((int)(cfg->probe_interval * 1000), (int)(cfg->probe_timeout * 1000)) < 0)
		log_error("msg=health-thread-failed (no fail-over)");
	if (cfg->single_thread) {
		rc = fuse_session_loop(se);
	} else {
		/* A fixed pool: libfuse starts and stops threads when the pool
		 * is larger than its idle limit, and every idle thread queued on
		 * /dev/fuse makes wake-ups colder. Small-file reads measured
		 * 2 threads: 18-23k files/s, 4: 10-15k, 8: 11-14k (2 CPUs). */
		unsigned n = (unsigned)cfg->threads;
		if (n == 0) {
			long cpus = sysconf(_SC_NPROCESSORS_ONLN);
			n = cpus < 2 ? 2 : (unsigned)cpus;
			/* A worker waits for its NFS reply: with 2 workers, 3 and 4
			 * rate-capped targets gave 0.57 and 0.56 of N x one
			 * target's rate; with 16, 0.98 and 0.97 (bench/run-scale.sh). */
			if (has_nfs_target(cfg) && n < CFG_NFS_THREADS)
				n = CFG_NFS_THREADS;
		}
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(lc, n);
		fuse_loop_cfg_set_idle_threads(lc, n);
		rc = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* The loop returns 0 on unmount, the signal number after SIGTERM,
	 * SIGINT or SIGHUP (a clean stop too), or -errno. */
	if (rc > 0)
		log_info("msg=stopping signal=%d", rc);
	lock_shutdown();
	health_stop();
	ctl_server_stop();
	rc = rc >= 0 ? 0 : 1;
	log_info("msg=unmounted mountpoint=%s", cfg->mountpoint);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	return rc;
}

/* The TLS setup, completed when the first nfs:// target attaches (a daemon
 * that started with directory targets only); see tls_setup_complete. */
static const struct efsmt_config *tls_cfg;
static struct tls_setup *tls_st;
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;

static int tls_prepare(char *err, size_t errlen)
{
	pthread_mutex_lock(&tls_lock);
	int r = tls_setup_complete(tls_cfg, tls_st, err, errlen);
	pthread_mutex_unlock(&tls_lock);
	return r < 0 ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	struct efsmt_config cfg;
	char err[1024];
	int rc;

	if (config_parse(argc, argv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "efsmt: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (cfg.show_help || cfg.show_version) {
		if (cfg.show_help)
			config_usage(stdout);
		else
			printf("efsmt %s (libfuse %s)\n", PACKAGE_VERSION, fuse_pkgversion());
		config_free(&cfg);
		return 0;
	}
	log_set_level((enum log_level)cfg.log_level);
	/* The kernel has applied the caller's umask already. */
	umask(0);
	cred_init();
	fs.entry_timeout = cfg.entry_timeout;
	lock_local = cfg.local_lock;
	fs.acregmin = cfg.acregmin;
	fs.acregmax = cfg.acregmax;
	fs.acdirmin = cfg.acdirmin;
	fs.acdirmax = cfg.acdirmax;
	fs.nocto = cfg.nocto;
	fs.negative_timeout = cfg.negative_timeout;
	if (node_table_init() < 0) {
		fprintf(stderr, "efsmt: out of memory\n");
		config_free(&cfg);
		return 1;
	}
	backend_nfs_set_lanes(cfg.lanes);
	backend_nfs_set_timeout(cfg.timeo * 100);
	struct outlive_conf oc = {.soft = cfg.soft,
				  .timeo_ds = cfg.timeo,
				  .retrans = cfg.retrans,
				  .probe_timeout_ms = (int)(cfg.probe_timeout * 1000)};
	outlive_configure(&oc);
	backend_kernel_set_tls(cfg.tls);
	struct tls_setup tls = {0};
	if (cfg.tls) {
		if (!cfg.tls_verify)
			log_warn("msg=tls-verify-off warning=\"-o tls_verify=0: server certificates "
				 "are NOT checked; anyone on the network path can read and change "
				 "the file system's data. Use it for tests only.\"");
		if (tls_setup_init(&cfg, &tls, err, sizeof err) < 0) {
			fprintf(stderr, "efsmt: %s\n", err);
			node_table_destroy();
			config_free(&cfg);
			return 1;
		}
		tls_cfg = &cfg;
		tls_st = &tls;
		backend_nfs_set_tls(&tls.conf, tls.pending ? tls_prepare : NULL);
	}
	struct route_table *rt = open_targets(&cfg);
	if (!rt) {
		tls_setup_free(&tls);
		node_table_destroy();
		config_free(&cfg);
		return 1;
	}
	reload_init(rt, cfg.subdir);
	if (open_control(&cfg) < 0) {
		reload_shutdown();
		tls_setup_free(&tls);
		node_table_destroy();
		config_free(&cfg);
		return 1;
	}
	rc = serve(&cfg);
	ctl_server_stop(); /* when serve() stopped before starting it */
	/* No request runs any more: every table can go. */
	reload_shutdown();
	epoch_cleanup();
	node_table_destroy();
	lock_release_all(); /* unlocked before their files close */
	handle_release_all();
	cred_cleanup();
	tls_setup_free(&tls); /* no connection uses it any more */
	config_free(&cfg);
	return rc;
}
