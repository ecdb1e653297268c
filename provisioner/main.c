/*
 * efsmt-provisioner - count the files of an EFS file system, add mount
 * targets through the EFS API as the count grows, and hand the new target
 * list to every efsmt daemon (README.md, provisioner/README.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws_efs.h"
#include "prov_config.h"
#include "prov_cycle.h"
#include "prov_log.h"
#include "walk.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

/* Exit statuses (--help). */
#define EX_SAME 0
#define EX_FAILED 1
#define EX_USAGE 2
#define EX_CHANGED 3

static volatile sig_atomic_t stopping;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: efsmt-provisioner [--config FILE] [--SETTING VALUE ...] COMMAND [ARGS]\n"
		"\n"
		"Counts the files of an EFS file system and, as the count grows, adds mount\n"
		"targets (CreateMountTarget, one per AZ), then gives the new target list to\n"
		"every efsmt daemon on this host (control socket), to a state file that\n"
		"efsmt reads at start (-o targets_file=), and optionally to an SSM parameter\n"
		"that other hosts follow.\n"
		"\n"
		"Commands:\n"
		"  run              cycle every `interval` seconds until SIGTERM or SIGINT\n"
		"  once             one cycle; the exit status says whether it changed anything\n"
		"  count PATH       count files and directories under PATH (parallel walk)\n"
		"  describe         list the file system's mount targets\n"
		"  follow [--once]  for the other hosts of a fleet: poll the published list\n"
		"                   (ssm_parameter, else DescribeMountTargets) every\n"
		"                   `follow_interval` seconds and give it to the local daemons;\n"
		"                   never creates anything\n"
		"  config           print the effective settings as a config file\n"
		"\n"
		"One cycle: count the files under MOUNTPOINT/watch; want\n"
		"clamp(ceil(files / files_per_target), min_targets, candidate subnets)\n"
		"targets; create at most one, in the first candidate subnet without one\n"
		"(MountTargetConflict from a racing peer counts as done); wait until it is\n"
		"available; publish. Nothing changes within `cooldown` of a change or\n"
		"`retry_backoff` of a failure. Scale-in only with scale_in = true.\n"
		"\n"
		"Options:\n"
		"  --config FILE      settings as 'key = value' lines, '#' comments\n"
		"                     (default %s when it exists)\n"
		"  --json             count and describe print JSON (so does log_format json)\n"
		"  --threads N        for count: the same as --count-threads\n"
		"  -h, --help         this text;  -V, --version  the version\n"
		"\n"
		"Settings (config file keys; as flags, '-' or '_' alike; flags win):\n",
		PROV_DEFAULT_CONFIG);
	prov_config_help(f);
	fprintf(f,
		"  (--dry-run, --scale-in: booleans; as flags they need no value)\n"
		"\n"
		"AWS credentials and region come from the usual chain: AWS_* variables,\n"
		"the shared files (AWS_PROFILE), the ECS container endpoint, IMDSv2.\n"
		"\n"
		"Exit status:\n"
		"  0  done, nothing changed (once), or a clean stop (run, follow)\n"
		"  1  something failed (logged; for count: some directory was unreadable)\n"
		"  2  bad command line or setting (one line names it)\n"
		"  3  once (or follow --once) changed something: created or deleted a\n"
		"     mount target, or published a new target list\n"
		"\n"
		"Examples:\n"
		"  efsmt-provisioner --file-system fs-12345678 describe\n"
		"  efsmt-provisioner count /mnt/efs/data\n"
		"  efsmt-provisioner --config /etc/efsmt/provisioner.conf --dry-run once\n");
}

static int die_usage(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "efsmt-provisioner: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, " (see efsmt-provisioner --help)\n");
	return EX_USAGE;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Sleeps up to s seconds, returning early when asked to stop. */
static void nap(long s)
{
	for (long i = 0; i < s * 10 && !stopping; i++) {
		struct timespec t = {0, 100 * 1000 * 1000};
		nanosleep(&t, NULL);
	}
}

static struct aws_client *aws_open(const struct prov_config *c)
{
	struct aws_error e = {0};
	if (c->endpoint_url) {
		setenv("EFSMT_EFS_ENDPOINT", c->endpoint_url, 1);
		setenv("EFSMT_SSM_ENDPOINT", c->endpoint_url, 1);
	}
	if (c->region)
		setenv("AWS_REGION", c->region, 1);
	struct aws_client *a = aws_client_new(&e);
	if (!a)
		plog_error("aws", "%s: %s", e.code, e.message);
	return a;
}

static int cmd_describe(const struct prov_config *c, struct aws_client *aws, int json)
{
	struct aws_error e = {0};
	struct aws_mount_target *m;
	size_t n;
	if (aws_efs_describe_mount_targets(aws, c->file_system, &m, &n, &e) < 0) {
		fprintf(stderr, "efsmt-provisioner: describe %s: %s: %s\n", c->file_system, e.code,
			e.message);
		return EX_FAILED;
	}
	json_t *all = json_array();
	if (!json)
		printf("%-26s %-12s %-26s %-15s %s\n", "MOUNT-TARGET", "AZ", "SUBNET", "IP",
		       "STATE");
	for (size_t i = 0; i < n; i++) {
		if (json)
			json_array_append_new(all, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id",
							     m[i].id, "az", m[i].az_name, "az_id",
							     m[i].az_id, "subnet", m[i].subnet_id,
							     "ip", m[i].ip, "state", m[i].state));
		else
			printf("%-26s %-12s %-26s %-15s %s\n", m[i].id, m[i].az_name, m[i].subnet_id,
			       m[i].ip[0] ? m[i].ip : "-", m[i].state);
	}
	if (json) {
		char *s = json_dumps(all, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
	}
	json_decref(all);
	free(m);
	return EX_SAME;
}

static int loop(const struct prov_config *c, struct aws_client *aws, int follow, int once)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int rc = EX_SAME;
	while (!stopping) {
		int r = follow ? prov_follow_once(c, aws) : prov_cycle(c, aws);
		if (once)
			return r == PROV_CYCLE_FAILED ? EX_FAILED
			       : r == PROV_CYCLE_CHANGED ? EX_CHANGED
							 : EX_SAME;
		nap(follow ? c->follow_interval_s : c->interval_s);
	}
	return rc;
}

struct args {
	const char *config;
	int json;
	int follow_once;
	const char *cmd;
	const char *pos[4];
	int npos;
};

/* Two passes: --config first (the file), then every flag over it. */
static int parse_args(int argc, char **argv, struct args *a, struct prov_config *c, int pass)
{
	char err[600];
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (strcmp(s, "--") == 0) {
			for (i++; i < argc && a->npos < 4; i++)
				a->pos[a->npos++] = argv[i];
			break;
		}
		if (strncmp(s, "--", 2) != 0 || !s[2]) {
			if (pass == 0)
				continue;
			if (!a->cmd)
				a->cmd = s;
			else if (a->npos < 4)
				a->pos[a->npos++] = s;
			else
				return die_usage("too many arguments at '%s'%s", s, "");
			continue;
		}
		char key[64];
		const char *eq = strchr(s + 2, '='), *val = NULL;
		size_t kl = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
		if (kl >= sizeof(key))
			return die_usage("unknown option %s%s", s, "");
		memcpy(key, s + 2, kl);
		key[kl] = 0;
		if (strcmp(key, "threads") == 0)
			snprintf(key, sizeof(key), "count_threads"); /* count --threads N */
		if (strcmp(key, "json") == 0 || strcmp(key, "once") == 0) {
			if (eq)
				return die_usage("--%s takes no value%s", key, "");
			*(key[0] == 'j' ? &a->json : &a->follow_once) = 1;
			continue;
		}
		int is_bool = 0;
		if (strcmp(key, "config") != 0 && !prov_config_known(key, &is_bool))
			return die_usage("unknown option --%s%s", key, "");
		if (eq)
			val = eq + 1;
		else if (is_bool)
			val = "true";
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return die_usage("--%s needs a value%s", key, "");
		if (strcmp(key, "config") == 0) {
			a->config = val;
			continue;
		}
		if (pass == 1 && prov_config_set(c, key, val, err, sizeof(err)) < 0)
			return die_usage("%s%s", err, "");
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct prov_config c;
	struct args a = {0};
	char err[600];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("efsmt-provisioner %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--") == 0)
			break;
	}
	prov_config_init(&c);
	if ((rc = parse_args(argc, argv, &a, &c, 0)))
		goto out;
	if (a.config || access(PROV_DEFAULT_CONFIG, F_OK) == 0) {
		if (prov_config_load(&c, a.config ? a.config : PROV_DEFAULT_CONFIG, err,
				     sizeof(err)) < 0) {
			fprintf(stderr, "efsmt-provisioner: %s\n", err);
			rc = EX_USAGE;
			goto out;
		}
	}
	if ((rc = parse_args(argc, argv, &a, &c, 1)))
		goto out;
	plog_set_json(c.log_format == PROV_LOG_JSON);
	if (!a.cmd) {
		rc = die_usage("no command: run, once, count, describe, follow or config%s%s", "", "");
		goto out;
	}
	int need_aws = strcmp(a.cmd, "count") != 0 && strcmp(a.cmd, "config") != 0;
	int want_pos = strcmp(a.cmd, "count") == 0;
	if (!strstr(" run once count describe follow config ", a.cmd) || strchr(a.cmd, ' ') ||
	    a.cmd[0] == 0) {
		rc = die_usage("unknown command '%s'%s", a.cmd, "");
		goto out;
	}
	if (a.npos != want_pos) {
		rc = die_usage(want_pos ? "%s needs one PATH%s" : "%s takes no arguments%s", a.cmd,
			       "");
		goto out;
	}
	if (a.follow_once && strcmp(a.cmd, "follow") != 0) {
		rc = die_usage("--once is for follow%s%s", "", "");
		goto out;
	}
	if (prov_config_check(&c, need_aws, err, sizeof(err)) < 0) {
		fprintf(stderr, "efsmt-provisioner: %s\n", err);
		rc = EX_USAGE;
		goto out;
	}
	if (strcmp(a.cmd, "config") == 0) {
		prov_config_print(&c, stdout);
		rc = 0;
		goto out;
	}
	if (strcmp(a.cmd, "count") == 0) {
		rc = walk_cmd_count(a.pos[0], (int)c.count_threads,
				    a.json || c.log_format == PROV_LOG_JSON);
		goto out;
	}
	if (!strcmp(a.cmd, "run") && c.subnets.n == 0)
		plog_warn("config", "subnets: none set; run will publish targets but never create one");
	struct aws_client *aws = aws_open(&c);
	if (!aws) {
		rc = EX_FAILED;
		goto out;
	}
	if (strcmp(a.cmd, "describe") == 0)
		rc = cmd_describe(&c, aws, a.json);
	else if (strcmp(a.cmd, "once") == 0)
		rc = loop(&c, aws, 0, 1);
	else if (strcmp(a.cmd, "run") == 0)
		rc = loop(&c, aws, 0, 0);
	else
		rc = loop(&c, aws, 1, a.follow_once);
	aws_client_free(aws);
out:
	prov_config_free(&c);
	return rc;
}
