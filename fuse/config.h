/*
 * config.h - the one place that parses efsmt's command line and -o options.
 *
 * config_parse() is pure (no mounting, no backends attached) so that every
 * bad input can be unit tested; it returns 0 or -1 with a one-line reason.
 */
#ifndef EFSMT_CONFIG_H
#define EFSMT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "target.h"

/* The kernel NFS client that EFS users mount with today caches file
 * attributes for at least 3 s (acregmin); efsmt keeps that bound. */
#define CFG_DEFAULT_ENTRY_TIMEOUT 3.0    /* seconds */
#define CFG_DEFAULT_ATTR_TIMEOUT 3.0     /* seconds */
#define CFG_DEFAULT_NEGATIVE_TIMEOUT 1.0 /* seconds */
#define CFG_MAX_THREADS 1024
#define CFG_DEFAULT_LANES 2 /* bench/run-scale.sh: 1 lane reached 0.73-0.90 of N x one target on writes, 2 lanes 0.97-0.99 */
#define CFG_NFS_THREADS 16 /* default workers when an nfs:// target is mounted */
#define CFG_MAX_LANES 16
#define CFG_DEFAULT_PROBE_INTERVAL 2.0 /* seconds between health probes */
#define CFG_DEFAULT_PROBE_TIMEOUT 5.0  /* seconds a probe may take */
#define CFG_MAX_TIMEOUT 86400.0 /* seconds */

struct efsmt_config {
	char *source;     /* as given */
	char *fs_id;      /* "fs-..." when SOURCE is a file system id, else NULL */
	char *subdir;     /* "/x/y" from "fs-...:/x/y", else "" */
	char *mountpoint; /* absolute */
	char *targets_file;
	char *control; /* control socket path; NULL: the default; "none": no socket */
	struct target_spec *targets;
	size_t ntargets;
	uint64_t generation;
	double entry_timeout;
	double attr_timeout;
	double negative_timeout;
	int threads; /* worker threads; 0: one per CPU, at least 2 */
	int lanes;   /* TCP connections per nfs:// target */
	double probe_interval; /* health.h; 0: no health monitor */
	double probe_timeout;
	int tls;	/* TLS on every nfs:// connection (-o tls; default off) */
	int tls_verify; /* 0: -o tls_verify=0, certificates not checked */
	char *cafile;	/* -o cafile=PATH; NULL: the system CA store */
	char *tls_name; /* -o tls_name=NAME; NULL: each target's host */
	int log_level;
	int foreground;
	int debug;
	int single_thread;
	int show_help;
	int show_version;
	char *fuse_opts; /* comma-separated options handed to libfuse/the kernel */
};

int config_parse(int argc, char **argv, struct efsmt_config *cfg, char *err, size_t errlen);
void config_free(struct efsmt_config *cfg);
void config_usage(FILE *out);

#endif
