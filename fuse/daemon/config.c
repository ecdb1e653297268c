#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "aws_region.h"

/* Options handed to the kernel/libfuse as they are. */
static const char *const passthrough[] = {
	"allow_other", "allow_root", "auto_unmount", "default_permissions", "ro", "rw", "dev",
	"nodev", "suid", "nosuid", "exec", "noexec", "async", "sync", "dirsync", "atime",
	"noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
	"nostrictatime", "lazytime", "nolazytime", NULL};
static const char *const passthrough_prefix[] = {"fsname=", "subtype=", "max_read=",
						 "context=", "fscontext=", "defcontext=",
						 "rootcontext=", NULL};
/* fstab and mount-helper options that mean nothing to the daemon. */
static const char *const ignored[] = {"defaults", "auto", "noauto", "user", "users", "nouser",
				      "owner", "group", "_netdev", "nofail", "nonempty", NULL};
static const char *const ignored_prefix[] = {"x-", "comment=", NULL};

static int in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

static int has_prefix(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strncmp(s, *list, strlen(*list)) == 0)
			return 1;
	return 0;
}

static int append_opt(char **dst, const char *opt)
{
	size_t old = *dst ? strlen(*dst) : 0;
	char *n = realloc(*dst, old + strlen(opt) + 2);

	if (!n)
		return -1;
	if (old)
		n[old++] = ',';
	strcpy(n + old, opt);
	*dst = n;
	return 0;
}

static int add_target(struct efsmt_config *cfg, const char *uri, char *err, size_t errlen)
{
	struct target_spec *n = realloc(cfg->targets, (cfg->ntargets + 1) * sizeof(*n));

	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cfg->targets = n;
	if (target_parse_uri(uri, &n[cfg->ntargets], err, errlen) < 0)
		return -1;
	cfg->ntargets++;
	return 0;
}

static int parse_seconds(const char *name, const char *v, double *out, char *err, size_t errlen)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (!*v || *end || errno || !isfinite(d) || d < 0 || d > CFG_MAX_TIMEOUT) {
		snprintf(err, errlen, "%s=%s: expected seconds between 0 and %.0f", name, v,
			 CFG_MAX_TIMEOUT);
		return -1;
	}
	*out = d;
	return 0;
}

static int parse_int(const char *name, const char *v, int lo, int hi, int *out, char *err,
		     size_t errlen)
{
	char *end;
	long l;

	errno = 0;
	l = strtol(v, &end, 10);
	if (!*v || *end || errno || l < lo || l > hi) {
		snprintf(err, errlen, "%s=%s: expected a whole number from %d to %d", name, v, lo,
			 hi);
		return -1;
	}
	*out = (int)l;
	return 0;
}

static int parse_one_opt(struct efsmt_config *cfg, const char *o, char *err, size_t errlen)
{
	const char *eq = strchr(o, '=');
	const char *v = eq ? eq + 1 : NULL;
	size_t klen = eq ? (size_t)(eq - o) : strlen(o);

#define KEY(k) (klen == strlen(k) && strncmp(o, k, klen) == 0)
	if (!*o)
		return 0;
	if (KEY("target") && v)
		return add_target(cfg, v, err, errlen);
	if (KEY("targets_file") && v) {
		if (!*v || cfg->targets_file) {
			snprintf(err, errlen, "targets_file: give exactly one non-empty path");
			return -1;
		}
		cfg->targets_file = strdup(v);
		return 0;
	}
	if (KEY("control") && v) {
		if (cfg->control || (v[0] != '/' && strcmp(v, "none") != 0)) {
			snprintf(err, errlen,
				 "control=%s: give one absolute socket path, or none", v);
			return -1;
		}
		cfg->control = strdup(v);
		return 0;
	}
	if (KEY("entry_timeout") && v)
		return parse_seconds("entry_timeout", v, &cfg->entry_timeout, err, errlen);
	if (KEY("attr_timeout") && v)
		return parse_seconds("attr_timeout", v, &cfg->attr_timeout, err, errlen);
	if ((KEY("acregmin") || KEY("acregmax") || KEY("acdirmin") || KEY("acdirmax") ||
	     KEY("actimeo")) && v) {
		double sec;
		char name[16];
		snprintf(name, sizeof name, "%.*s", (int)klen, o);
		if (parse_seconds(name, v, &sec, err, errlen) < 0)
			return -1;
		int all = KEY("actimeo");
		if (all || KEY("acregmin"))
			cfg->acregmin = sec;
		if (all || KEY("acregmax"))
			cfg->acregmax = sec;
		if (all || KEY("acdirmin"))
			cfg->acdirmin = sec;
		if (all || KEY("acdirmax"))
			cfg->acdirmax = sec;
		return 0;
	}
	if (KEY("noac") && !v) {
		cfg->acregmin = cfg->acregmax = cfg->acdirmin = cfg->acdirmax = 0;
		return 0;
	}
	if ((KEY("cto") || KEY("nocto")) && !v) {
		cfg->nocto = KEY("nocto");
		return 0;
	}
	if (KEY("lookupcache") && v) {
		if (strcmp(v, "all") == 0)
			cfg->lookupcache = CFG_LOOKUPCACHE_ALL;
		else if (strcmp(v, "positive") == 0 || strcmp(v, "pos") == 0)
			cfg->lookupcache = CFG_LOOKUPCACHE_POSITIVE;
		else if (strcmp(v, "none") == 0)
			cfg->lookupcache = CFG_LOOKUPCACHE_NONE;
		else {
			snprintf(err, errlen, "lookupcache=%s: expected all, positive (pos) or none",
				 v);
			return -1;
		}
		return 0;
	}
	if (KEY("negative_timeout") && v)
		return parse_seconds("negative_timeout", v, &cfg->negative_timeout, err, errlen);
	if (KEY("probe_interval") && v)
		return parse_seconds("probe_interval", v, &cfg->probe_interval, err, errlen);
	if (KEY("probe_timeout") && v) {
		int rc = parse_seconds("probe_timeout", v, &cfg->probe_timeout, err, errlen);
		if (rc == 0 && cfg->probe_timeout < 0.1) {
			snprintf(err, errlen, "probe_timeout=%s: expected at least 0.1 seconds", v);
			return -1;
		}
		return rc;
	}
	if (KEY("local_lock") && v) {
		static const char *const names[] = {"none", "flock", "posix", "all"};
		for (int i = 0; i < 4; i++) {
			if (strcmp(v, names[i]) == 0) {
				cfg->local_lock = i; /* LOCK_LOCAL_* in this order */
				return 0;
			}
		}
		snprintf(err, errlen, "local_lock=%s: expected none, flock, posix or all", v);
		return -1;
	}
	if (KEY("lanes") && v)
		return parse_int("lanes", v, 1, CFG_MAX_LANES, &cfg->lanes, err, errlen);
	if ((KEY("hard") || KEY("soft")) && !v) {
		cfg->soft = KEY("soft");
		return 0;
	}
	if (KEY("timeo") && v)
		return parse_int("timeo", v, 1, CFG_MAX_TIMEO, &cfg->timeo, err, errlen);
	if (KEY("retrans") && v)
		return parse_int("retrans", v, 0, CFG_MAX_RETRANS, &cfg->retrans, err, errlen);
	if (KEY("threads") && v)
		return parse_int("threads", v, 1, CFG_MAX_THREADS, &cfg->threads, err, errlen);
	if (KEY("log_level") && v) {
		int l = log_level_parse(v);
		if (l < 0) {
			snprintf(err, errlen, "log_level=%s: expected error, warn, info or debug",
				 v);
			return -1;
		}
		cfg->log_level = l;
		return 0;
	}
	if ((KEY("tls") || KEY("notls")) && !v) {
		cfg->tls = KEY("tls");
		cfg->tls_default = 0;
		return 0;
	}
	if (KEY("iam") && !v) {
		cfg->iam = 1;
		return 0;
	}
	if ((KEY("cafile") || KEY("tls_name") || KEY("keyfile") || KEY("awsprofile")) && v) {
		int path = KEY("cafile") || KEY("keyfile");
		char **dst = KEY("cafile")     ? &cfg->cafile
			     : KEY("keyfile")  ? &cfg->keyfile
			     : KEY("tls_name") ? &cfg->tls_name
					       : &cfg->awsprofile;
		if (!*v || (path && v[0] != '/')) {
			snprintf(err, errlen, "%.*s=%s: give %s", (int)klen, o, v,
				 KEY("cafile")	   ? "an absolute path to a PEM file"
				 : KEY("keyfile")  ? "an absolute path for the client key"
				 : KEY("tls_name") ? "a host name"
						   : "a profile name");
			return -1;
		}
		free(*dst);
		*dst = strdup(v);
		return 0;
	}
	if (KEY("accesspoint") && v) {
		size_t n = strlen(v);
		int ok = strncmp(v, "fsap-", 5) == 0 && n == 5 + CFG_ACCESS_POINT_HEX;
		for (size_t i = 5; ok && i < n; i++)
			ok = isdigit((unsigned char)v[i]) || (v[i] >= 'a' && v[i] <= 'f');
		if (!ok) {
			snprintf(err, errlen,
				 "accesspoint=%s: expected fsap- and %d lowercase hex digits "
				 "(fsap-0123456789abcdef0)",
				 v, CFG_ACCESS_POINT_HEX);
			return -1;
		}
		free(cfg->access_point);
		cfg->access_point = strdup(v);
		return 0;
	}
	if (KEY("region") && v) {
		size_t n = strlen(v);
		int ok = n > 0 && n <= CFG_REGION_MAX && islower((unsigned char)v[0]);
		for (size_t i = 0; ok && i < n; i++)
			ok = islower((unsigned char)v[i]) || isdigit((unsigned char)v[i]) ||
			     v[i] == '-';
		if (!ok) {
			snprintf(err, errlen, "region=%s: expected a region name such as us-east-1",
				 v);
			return -1;
		}
		free(cfg->region);
		cfg->region = strdup(v);
		return 0;
	}
	if (KEY("tls_verify") && v) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
			snprintf(err, errlen, "tls_verify=%s: expected 1 (default) or 0", v);
			return -1;
		}
		cfg->tls_verify = v[0] == '1';
		return 0;
	}
	if (KEY("debug") && !v) {
		cfg->debug = cfg->foreground = 1;
		return 0;
	}
	if ((KEY("fg") || KEY("foreground")) && !v) {
		cfg->foreground = 1;
		return 0;
	}
#undef KEY
	if (in_list(o, ignored) || has_prefix(o, ignored_prefix))
		return 0;
	if (in_list(o, passthrough) || has_prefix(o, passthrough_prefix)) {
		if (append_opt(&cfg->fuse_opts, o) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s' (see efsmt --help)", o);
	return -1;
}

/* Split "a,b\,c" on unescaped commas. */
static int parse_opt_string(struct efsmt_config *cfg, const char *s, char *err, size_t errlen)
{
	char *buf = malloc(strlen(s) + 1);
	size_t n = 0;
	int rc = 0;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (const char *p = s;; p++) {
		if (*p == '\\' && p[1]) {
			buf[n++] = *++p;
			continue;
		}
		if (*p == ',' || *p == '\0') {
			buf[n] = '\0';
			rc = parse_one_opt(cfg, buf, err, errlen);
			n = 0;
			if (rc < 0 || *p == '\0')
				break;
			continue;
		}
		buf[n++] = *p;
	}
	free(buf);
	return rc;
}

static int parse_source(struct efsmt_config *cfg, const char *src, char *err, size_t errlen)
{
	size_t i = 3;

	cfg->source = strdup(src);
	cfg->subdir = strdup("");
	if (!*src) {
		snprintf(err, errlen, "empty SOURCE (give a file system id or a label)");
		return -1;
	}
	if (strncmp(src, "fs-", 3) != 0)
		return 0;
	while (isxdigit((unsigned char)src[i]))
		i++;
	if (i < 3 + 8 || i > 3 + 17 || (src[i] != '\0' && src[i] != ':'))
		return 0; /* a label that merely starts with fs- */
	cfg->fs_id = strndup(src, i);
	if (src[i] != ':')
		return 0;
	const char *sub = src + i + 1;
	if (sub[0] != '/' || path_has_dotdot(sub)) {
		snprintf(err, errlen,
			 "source '%s': the subdirectory after ':' must be an absolute path "
			 "without '..' (fs-12345678:/dir)",
			 src);
		return -1;
	}
	free(cfg->subdir);
	/* "/" is the root itself: no subdirectory. */
	cfg->subdir = strdup(strcmp(sub, "/") == 0 ? "" : sub);
	return 0;
}

static int load_targets_file(struct efsmt_config *cfg, char *err, size_t errlen)
{
	struct target_spec *specs;
	size_t n;

	if (target_parse_file(cfg->targets_file, &specs, &n, &cfg->generation, err, errlen) < 0)
		return -1;
	struct target_spec *all = realloc(cfg->targets, (cfg->ntargets + n + 1) * sizeof(*all));
	if (!all) {
		for (size_t i = 0; i < n; i++)
			target_spec_free(&specs[i]);
		free(specs);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(all + cfg->ntargets, specs, n * sizeof(*specs));
	cfg->targets = all;
	cfg->ntargets += n;
	free(specs);
	return 0;
}

/* The TLS default and what needs TLS (issue 9, issue 10): the access
 * point and the IAM signature travel only in the client certificate. */
static int check_tls(struct efsmt_config *cfg, char *err, size_t errlen)
{
	if (cfg->tls_default)
		cfg->tls = cfg->fs_id != NULL;
	const char *need = cfg->access_point ? "accesspoint=" : cfg->iam ? "iam" : NULL;
	if (!need)
		return 0;
	if (!cfg->fs_id) {
		snprintf(err, errlen,
			 "-o %s needs SOURCE to be the file system id (fs-12345678): the client "
			 "certificate names it",
			 need);
		return -1;
	}
	if (!cfg->tls) {
		snprintf(err, errlen,
			 "-o %s needs TLS: it travels only in the TLS client certificate (drop "
			 "-o notls)",
			 need);
		return -1;
	}
	return 0;
}

static int check_targets(struct efsmt_config *cfg, char *err, size_t errlen)
{
	if (cfg->ntargets == 0) {
		snprintf(err, errlen,
			 "no targets: give at least one with -o target=dir:///path or "
			 "-o targets_file=FILE");
		return -1;
	}
	for (size_t i = 0; i < cfg->ntargets; i++)
		for (size_t j = 0; j < i; j++) {
			const struct target_spec *a = &cfg->targets[i], *b = &cfg->targets[j];
			if (strcmp(a->uri, b->uri) == 0) {
				snprintf(err, errlen,
					 "target %s is given twice: each mount target once", a->uri);
				return -1;
			}
			const char *ia = a->id ? a->id : a->uri, *ib = b->id ? b->id : b->uri;
			if (strcmp(ia, ib) == 0) {
				snprintf(err, errlen, "target id '%s' is used twice: ids must differ",
					 ia);
				return -1;
			}
		}
	return 0;
}

/* The nfs(5) caching names, once every option is read: what was not given
 * follows attr_timeout; lookupcache turns the name timeouts off. */
static int settle_caching(struct efsmt_config *cfg, char *err, size_t errlen)
{
	double *ac[4] = {&cfg->acregmin, &cfg->acregmax, &cfg->acdirmin, &cfg->acdirmax};
	for (int i = 0; i < 4; i++)
		if (*ac[i] < 0)
			*ac[i] = cfg->attr_timeout;
	if (cfg->acregmax < cfg->acregmin || cfg->acdirmax < cfg->acdirmin) {
		snprintf(err, errlen, "%s (%g) is below %s (%g)",
			 cfg->acregmax < cfg->acregmin ? "acregmax" : "acdirmax",
			 cfg->acregmax < cfg->acregmin ? cfg->acregmax : cfg->acdirmax,
			 cfg->acregmax < cfg->acregmin ? "acregmin" : "acdirmin",
			 cfg->acregmax < cfg->acregmin ? cfg->acregmin : cfg->acdirmin);
		return -1;
	}
	if (cfg->lookupcache != CFG_LOOKUPCACHE_ALL)
		cfg->negative_timeout = 0;
	if (cfg->lookupcache == CFG_LOOKUPCACHE_NONE)
		cfg->entry_timeout = 0;
	return 0;
}

int config_parse(int argc, char **argv, struct efsmt_config *cfg, char *err, size_t errlen)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->entry_timeout = CFG_DEFAULT_ENTRY_TIMEOUT;
	cfg->attr_timeout = CFG_DEFAULT_ATTR_TIMEOUT;
	cfg->negative_timeout = CFG_DEFAULT_NEGATIVE_TIMEOUT;
	cfg->acregmin = cfg->acregmax = cfg->acdirmin = cfg->acdirmax = -1;
	cfg->log_level = LOG_LVL_INFO;
	cfg->lanes = CFG_DEFAULT_LANES;
	cfg->probe_interval = CFG_DEFAULT_PROBE_INTERVAL;
	cfg->probe_timeout = CFG_DEFAULT_PROBE_TIMEOUT;
	cfg->timeo = CFG_DEFAULT_TIMEO;
	cfg->retrans = CFG_DEFAULT_RETRANS;
	cfg->tls_verify = 1;
	cfg->tls_default = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cfg->show_help = 1;
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			cfg->show_version = 1;
			return 0;
		}
		if (strcmp(a, "-f") == 0) {
			cfg->foreground = 1;
		} else if (strcmp(a, "-d") == 0) {
			cfg->debug = cfg->foreground = 1;
		} else if (strcmp(a, "-s") == 0) {
			cfg->single_thread = 1;
		} else if (strncmp(a, "-o", 2) == 0) {
			const char *o = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!o) {
				snprintf(err, errlen, "-o needs an option list (see efsmt --help)");
				return -1;
			}
			if (parse_opt_string(cfg, o, err, errlen) < 0)
				return -1;
		} else if (a[0] == '-' && a[1]) {
			snprintf(err, errlen, "unknown flag '%s' (see efsmt --help)", a);
			return -1;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			snprintf(err, errlen, "unexpected argument '%s': usage is efsmt SOURCE "
					      "MOUNTPOINT [-o OPTIONS]",
				 a);
			return -1;
		}
	}
	if (npos < 2) {
		snprintf(err, errlen, "usage: efsmt SOURCE MOUNTPOINT -o target=URI[,...] "
				      "(see efsmt --help)");
		return -1;
	}
	if (parse_source(cfg, pos[0], err, errlen) < 0 || check_tls(cfg, err, errlen) < 0 ||
	    settle_caching(cfg, err, errlen) < 0)
		return -1;
	char real[PATH_MAX];
	if (!realpath(pos[1], real)) {
		snprintf(err, errlen, "mount point %s: %s (create the directory first)", pos[1],
			 strerror(errno));
		return -1;
	}
	cfg->mountpoint = strdup(real);
	if (cfg->targets_file && load_targets_file(cfg, err, errlen) < 0)
		return -1;
	return check_targets(cfg, err, errlen);
}

void config_free(struct efsmt_config *cfg)
{
	for (size_t i = 0; i < cfg->ntargets; i++)
		target_spec_free(&cfg->targets[i]);
	free(cfg->targets);
	free(cfg->source);
	free(cfg->fs_id);
	free(cfg->subdir);
	free(cfg->mountpoint);
	free(cfg->targets_file);
	free(cfg->control);
	free(cfg->fuse_opts);
	free(cfg->cafile);
	free(cfg->tls_name);
	free(cfg->region);
	free(cfg->access_point);
	free(cfg->awsprofile);
	free(cfg->keyfile);
	memset(cfg, 0, sizeof(*cfg));
}

int config_efs_tls_name(const char *fs_id, const char *region, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.efs.%s.%s", fs_id, region, aws_dns_suffix(region));
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

void config_usage(FILE *out)
{
	fprintf(out,
"usage: efsmt SOURCE MOUNTPOINT [-f] [-d] [-s] -o target=URI[,target=URI...][,OPTIONS]\n"
"       mount -t fuse.efsmt SOURCE MOUNTPOINT -o target=URI[,...]\n"
"\n"
"Mount one namespace over every mount target of a file system, routing each\n"
"operation to one target by a rendezvous hash (XXH3) of its path. Every target\n"
"must show the same file system: routing spreads the work, it never splits data.\n"
"\n"
"SOURCE       the EFS file system id, fs-12345678 or fs-12345678:/subdir (the\n"
"             subdirectory is then the root of the mount on every target), or any\n"
"             label when the targets are directories.\n"
"MOUNTPOINT   an existing directory.\n"
"\n"
"Flags:\n"
"  -f             stay in the foreground and log to stderr (otherwise: syslog)\n"
"  -d             FUSE debug output (implies -f)\n"
"  -s             single-threaded\n"
"  -h, --help     this text\n"
"  -V, --version  the version\n"
"\n"
"Targets (at least one):\n"
"  -o target=URI          repeatable. URI is one of\n"
"                           nfs://HOST[:PORT][/PATH]  a mount target, spoken to\n"
"                                      by efsmt's own NFSv4.1 client (port 2049,\n"
"                                      path / by default); a bare HOST or IP too\n"
"                           dir:///abs/path or /abs/path  a directory through\n"
"                                      which the file system is already mounted\n"
"                           kernel://IP[:PORT][/PATH]  a mount target that efsmt\n"
"                                      mounts with the kernel NFS client under\n"
"                                      /run/efsmt/kernel and unmounts on exit\n"
"                                      (root; the nfsv4 kernel module)\n"
"  -o lanes=N             TCP connections per nfs:// target (default 2, at most\n"
"                         16): one NFSv4.1 client with a session on each, so\n"
"                         the READs and WRITEs of one large file go over all.\n"
"  -o targets_file=PATH   a JSON list of targets: [\"dir:///a\", ...] or\n"
"                         [{\"id\":\"mt-1\",\"uri\":\"dir:///a\"}, ...], or\n"
"                         {\"generation\":N,\"targets\":[...]}. A target's id seeds\n"
"                         its hash and defaults to its URI.\n"
"\n"
"Encryption in transit (nfs:// targets; directory targets never use TLS):\n"
"  -o tls                   every connection to every nfs:// target is TLS 1.2 or\n"
"                           newer (port 2049 unless the URI names another), as\n"
"                           EFS file system policies with aws:SecureTransport\n"
"                           require. On by default when SOURCE is a file system\n"
"                           id (fs-...), off otherwise.\n"
"  -o notls                 plaintext NFS, also with a file system id\n"
"  -o cafile=PATH           trust the CA certificates in this PEM file instead\n"
"                           of the system store\n"
"  -o tls_name=NAME         the name the server certificate must carry; default\n"
"                           FSID.efs.REGION.amazonaws.com (.amazonaws.com.cn in\n"
"                           cn- regions) with a file system id, else each\n"
"                           target's host (IP or name)\n"
"  -o region=REGION         the AWS region of the file system (us-east-1);\n"
"                           default AWS_REGION, AWS_DEFAULT_REGION, the\n"
"                           profile's region, else IMDS placement/region. With\n"
"                           none, the mount fails: give region= or tls_name=.\n"
"  -o tls_verify=0          do not check certificates at all (logged as a\n"
"                           warning at start: anyone on the path can read and\n"
"                           change the data). For tests only.\n"
"\n"
"Client certificate (TLS with a file system id): every connection presents a\n"
"self-signed certificate naming the file system, renewed hourly (new\n"
"connections use the new one); its RSA-3072 key is made once per host, mode\n"
"0400, in /var/lib/efsmt/client-key.pem (root) or\n"
"$XDG_STATE_HOME/efsmt/client-key.pem (default ~/.local/state).\n"
"  -o iam                   sign it with AWS credentials, for file system\n"
"                           policies that demand IAM authorization. The chain:\n"
"                           AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/\n"
"                           AWS_SESSION_TOKEN], the shared files\n"
"                           (~/.aws/credentials, ~/.aws/config), the ECS\n"
"                           container endpoint, IMDSv2. Needs TLS.\n"
"  -o awsprofile=NAME       the shared files' profile (instead of AWS_PROFILE)\n"
"  -o accesspoint=fsap-ID   mount through this EFS access point (its POSIX\n"
"                           identity and root directory); fsap- and 17 hex\n"
"                           digits. Needs TLS.\n"
"  -o keyfile=PATH          the client key's file instead\n"
"\n"
"Caching (seconds, 0 disables):\n"
"  -o entry_timeout=SEC     how long the kernel trusts a name lookup (default %.0f)\n"
"  -o attr_timeout=SEC      how long the kernel trusts attributes (default %.0f)\n"
"  -o negative_timeout=SEC  how long the kernel remembers that a name does not\n"
"                           exist (default %.0f); changes made through this mount\n"
"                           are seen at once, changes made by other hosts after\n"
"                           at most these times.\n"
"  nfs(5)'s names for the same caches:\n"
"  -o acregmin=SEC,acregmax=SEC  a file's attributes are trusted for acregmin\n"
"                           seconds after they changed, doubling up to acregmax\n"
"                           while they stay the same (both default attr_timeout)\n"
"  -o acdirmin=SEC,acdirmax=SEC  the same for directories\n"
"  -o actimeo=SEC           all four; -o noac: all four 0\n"
"  -o lookupcache=MODE      all (default), positive (no negative_timeout) or\n"
"                           none (no entry_timeout either)\n"
"  -o cto / -o nocto        close-to-open (default): every open drops the file's\n"
"                           cached pages, so it reads what the last close on any\n"
"                           host wrote; nocto keeps them until the file's\n"
"                           attributes show another size or modification time\n"
"\n"
"Fail-over:\n"
"  -o probe_interval=SEC    probe every target this often (default %.0f; 0: never)\n"
"  -o probe_timeout=SEC     a target that does not answer a probe in this time\n"
"                           (default %.0f), or whose connection fails, is marked\n"
"                           down: its paths go to the next target in rendezvous\n"
"                           order, lookups and reads are made again there, and\n"
"                           it returns when a probe succeeds. A target that\n"
"                           stops answering is down within interval + timeout.\n"
"  -o hard                  (default) a call on an open file whose target\n"
"                           fails waits: the file goes on on its own target if\n"
"                           that answers within probe_timeout, else it is opened\n"
"                           again on the next target; what write(2) accepted\n"
"                           and the server had not made stable is sent again.\n"
"                           With every target down it waits until one returns;\n"
"                           SIGKILL ends the wait. A file holding locks does\n"
"                           not move: its calls get EIO.\n"
"  -o soft                  the same, but such a call fails with EIO once\n"
"                           timeo x (retrans + 1) passed without recovery\n"
"  -o timeo=N               deciseconds one NFS request waits for its reply\n"
"                           (default 600, 1..36000)\n"
"  -o retrans=N             with soft, see above (default 2, 0..100)\n"
"\n"
"Locks:\n"
"  -o local_lock=KIND       which locks stay local to this mount: none\n"
"                           (default: fcntl record locks, OFD locks and flock\n"
"                           are taken on the targets, so processes on every\n"
"                           host that mounts the file system exclude each\n"
"                           other), flock, posix (fcntl and OFD locks) or all\n"
"                           (the kernel's locks, seen by this mount only, as\n"
"                           before). Locks held when a server restarts or the\n"
"                           lease expires are lost: the holder's reads and\n"
"                           writes then fail with EIO until it unlocks.\n"
"\n"
"Daemon:\n"
"  -o threads=N             worker threads (default: one per CPU, at least 2;\n"
"                           16 when an nfs:// target is given at start, as\n"
"                           each worker waits for its server's reply). More\n"
"                           threads help only when targets block (network,\n"
"                           slow disks): each idle thread makes every\n"
"                           request's wake-up slower.\n"
"  -o log_level=LEVEL       error, warn, info (default) or debug\n"
"  -o control=PATH          the control socket (efsmtctl); default\n"
"                           /run/efsmt/NAME-HASH.sock (root) or\n"
"                           $XDG_RUNTIME_DIR/efsmt/... (others), NAME the file\n"
"                           system id or SOURCE, HASH from SOURCE and MOUNTPOINT;\n"
"                           none: no socket. SIGHUP re-reads targets_file.\n"
"\n"
"Mount options passed to the kernel: allow_other, allow_root, auto_unmount,\n"
"  ro, rw, dev, nodev, suid, nosuid, exec, noexec, sync, async, dirsync,\n"
"  atime, noatime, relatime, strictatime, lazytime (and their no- forms),\n"
"  fsname=, subtype=, max_read=, context=, fscontext=, defcontext=, rootcontext=.\n"
"Permissions: run as root, efsmt serves each request as the calling process (its\n"
"  uid, gid and its own supplementary groups, read from the kernel), so the\n"
"  targets check access as for a local process; set-user-ID and set-group-ID\n"
"  bits are cleared on write, truncate and chown as Linux clears them. NFS\n"
"  carries 16 groups: for a caller with more, those of the files concerned\n"
"  go first. Run as another user, efsmt adds default_permissions and the\n"
"  kernel checks.\n"
"fstab-only options are accepted and ignored: defaults, auto, noauto, user,\n"
"  users, nouser, owner, group, _netdev, nofail, x-*, comment=.\n"
"\n"
"Routing: an operation on an existing file goes to the target of its path;\n"
"creating operations to the target of the new path; readdir to the target of\n"
"the directory; rename and link wholly to the target of the source. An open\n"
"file stays on its target until closed. The read-only extended attributes\n"
"user.efsmt.target (the target of any path) and user.efsmt.open (the targets\n"
"holding a file's open handles) show it:\n"
"  getfattr -n user.efsmt.target --only-values MOUNTPOINT/some/file\n"
"\n"
"fstab:\n"
"  fs-12345678  /mnt/efs  fuse.efsmt  _netdev,nofail,allow_other,target=10.0.1.5,target=10.0.2.7  0 0\n"
"\n"
"Exit status: 0 after a clean unmount or SIGTERM; 1 on bad options or targets\n"
"(one line on stderr says which and how to fix it; nothing is left mounted).\n",
		CFG_DEFAULT_ENTRY_TIMEOUT, CFG_DEFAULT_ATTR_TIMEOUT, CFG_DEFAULT_NEGATIVE_TIMEOUT,
		CFG_DEFAULT_PROBE_INTERVAL, CFG_DEFAULT_PROBE_TIMEOUT);
}
