/*
 * prov_config.h - every setting of efsmt-provisioner, parsed in one place:
 * a config file people edit by hand ("key = value", '#' comments) and the
 * same keys as flags (--files-per-target 2000 or --files_per_target=2000).
 * Flags override the file. A bad or unknown setting is one line naming it.
 */
#ifndef EFSMT_PROV_CONFIG_H
#define EFSMT_PROV_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROV_DEFAULT_CONFIG "/etc/efsmt/provisioner.conf"
#define PROV_MAX_LIST 32 /* subnets, security groups, sockets */

enum prov_log_format { PROV_LOG_TEXT, PROV_LOG_JSON };

struct prov_list {
	char *v[PROV_MAX_LIST];
	size_t n;
};

struct prov_config {
	char *file_system;
	char *region;
	char *endpoint_url;
	char *mountpoint;
	char *watch;
	long interval_s;
	long follow_interval_s;
	uint64_t files_per_target;
	long min_targets;
	long max_targets;
	struct prov_list subnets;
	struct prov_list security_groups;
	long cooldown_s;
	int scale_in;
	double scale_in_below;
	long create_timeout_s;
	long retry_backoff_s;
	char *state_file;
	char *socket_dir;
	struct prov_list sockets;
	char *uri_template;
	char *ssm_parameter;
	long count_threads;
	int log_format;
	int dry_run;
};

/* Defaults for every setting. */
void prov_config_init(struct prov_config *c);
void prov_config_free(struct prov_config *c);

/* Apply one setting (key with '_' or '-'). 0, or -1 with a reason in err. */
int prov_config_set(struct prov_config *c, const char *key, const char *value, char *err,
		    size_t errlen);
/* Whether key names a setting, and whether it is a boolean (a flag that
 * needs no value). */
int prov_config_known(const char *key, int *is_bool);

/* Read a config file. 0, or -1 with "FILE:LINE: reason" in err. */
int prov_config_load(struct prov_config *c, const char *file, char *err, size_t errlen);

/* Checks across settings, for a command that needs AWS (need_aws) or not.
 * 0, or -1 with the one setting to fix named in err. */
int prov_config_check(const struct prov_config *c, int need_aws, char *err, size_t errlen);

/* The settings as "key = value" lines, with their help, as a config file. */
void prov_config_print(const struct prov_config *c, FILE *f);
/* One line per setting for --help. */
void prov_config_help(FILE *f);

/* "nfs://{ip}" with {ip}, {id}, {az}, {subnet} filled. 0, or -1 if it does
 * not fit or names an unknown field. */
int prov_uri_expand(const char *tmpl, const char *ip, const char *id, const char *az,
		    const char *subnet, char *out, size_t outlen);

#endif
