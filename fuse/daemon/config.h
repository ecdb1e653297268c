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

#include "backends/target.h"

/* The kernel NFS client that EFS users mount with today caches file
 * attributes for at least 3 s (acregmin); efsmt keeps that bound. */
#define CFG_DEFAULT_ENTRY_TIMEOUT 3.0    /* seconds */
#define CFG_DEFAULT_ATTR_TIMEOUT 3.0     /* seconds */
#define CFG_DEFAULT_NEGATIVE_TIMEOUT 1.0 /* seconds */
#define CFG_MAX_THREADS 1024
enum { CFG_LOOKUPCACHE_ALL, CFG_LOOKUPCACHE_POSITIVE, CFG_LOOKUPCACHE_NONE };
#define CFG_DEFAULT_LANES 2 /* bench/run-scale.sh: 1 lane reached 0.73-0.90 of N x one target on writes, 2 lanes 0.97-0.99 */
#define CFG_NFS_THREADS 16 /* default workers when an nfs:// target is mounted */
#define CFG_MAX_LANES 16
#define CFG_DEFAULT_PROBE_INTERVAL 2.0 /* seconds between health probes */
#define CFG_DEFAULT_PROBE_TIMEOUT 5.0  /* seconds a probe may take */
#define CFG_DEFAULT_TIMEO	  600	 /* deciseconds, as nfs(5) for TCP */
#define CFG_DEFAULT_RETRANS	  2
#define CFG_MAX_TIMEO		  36000 /* an hour */
#define CFG_MAX_RETRANS		  100
#define CFG_MAX_TIMEOUT 86400.0 /* seconds */
#define CFG_ACCESS_POINT_HEX 17 /* fsap- and this many hex digits */
#define CFG_REGION_MAX 32	/* characters of a region name */

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
	/* nfs(5)'s names: attributes of files (reg) and directories (dir) are
	 * trusted for min seconds after a change, doubling up to max while
	 * they stay the same; below 0: attr_timeout. */
	double acregmin, acregmax, acdirmin, acdirmax;
	int lookupcache; /* CFG_LOOKUPCACHE_* */
	int nocto;	 /* keep cached pages across opens (no close-to-open) */
	double negative_timeout;
	int threads; /* worker threads; 0: one per CPU, at least 2 */
	int lanes;   /* TCP connections per nfs:// target */
	double probe_interval; /* health.h; 0: no health monitor */
	double probe_timeout;
	int soft;     /* -o soft: an open file's calls fail after timeo x (retrans + 1) */
	int timeo;    /* deciseconds one RPC waits for its reply (nfs(5)) */
	int retrans;  /* nfs(5) */
	/* TLS on every nfs:// connection: -o tls / -o notls; when neither is
	 * given, on exactly when SOURCE is a file system id (tls_default). */
	int tls;
	int tls_default; /* tls was not given */
	int tls_verify;	 /* 0: -o tls_verify=0, certificates not checked */
	char *cafile;	 /* -o cafile=PATH; NULL: the system CA store */
	char *tls_name;	 /* -o tls_name=NAME; NULL: FSID.efs.REGION.amazonaws.com with a
			    file system id, else each target's host */
	char *region;	    /* -o region=; NULL: from the environment or IMDS */
	int iam;	    /* -o iam: sign the client certificate (tls_cert.h) */
	char *access_point; /* -o accesspoint=fsap-...; NULL: none */
	char *awsprofile;   /* -o awsprofile=NAME; NULL: AWS_PROFILE or default */
	char *keyfile;	    /* -o keyfile=PATH; NULL: tls_cert_key_default_path */
	int local_lock; /* LOCK_LOCAL_* (lock.h): lock kinds kept to this mount */
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
/* The name an EFS mount target's certificate carries:
 * FSID.efs.REGION.amazonaws.com (.amazonaws.com.cn in China). 0, or -1
 * when it does not fit. */
int config_efs_tls_name(const char *fs_id, const char *region, char *buf, size_t len);

#endif
