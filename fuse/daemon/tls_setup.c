/* tls_setup.c - the server name and client certificate for -o tls. */
#include "tls_setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_creds.h"
#include "base/log.h"
#include "tls_cert.h"

static int has_nfs_target(const struct efsmt_config *cfg)
{
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (strcmp(cfg->targets[i].scheme, "nfs") == 0)
			return 1;
	return 0;
}

/* -o region=, else the environment, the profile's config, IMDS (the
 * metadata endpoint's short timeouts: a host outside EC2 fails fast). */
static char *resolve_region(const struct efsmt_config *cfg, const char *why, char *err,
			    size_t errlen)
{
	if (cfg->region)
		return strdup(cfg->region);
	struct aws_creds_provider *p = aws_creds_provider_new();
	struct aws_error ae = {0};
	char *r = NULL;
	if (p && (!cfg->awsprofile || aws_creds_provider_set_profile(p, cfg->awsprofile) == 0))
		r = aws_region_resolve(p, &ae);
	aws_creds_provider_free(p);
	if (!r)
		snprintf(err, errlen,
			 "cannot tell the AWS region %s: not in AWS_REGION, AWS_DEFAULT_REGION or "
			 "the profile, and IMDS did not say (%s); give -o region=REGION%s",
			 why, ae.message[0] ? ae.message : "out of memory",
			 cfg->iam ? "" : " or -o tls_name=NAME");
	return r;
}

int tls_setup_init(const struct efsmt_config *cfg, struct tls_setup *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	st->conf.verify = cfg->tls_verify;
	st->conf.cafile = cfg->cafile;
	st->conf.name = cfg->tls_name;
	if (!cfg->fs_id)
		return 0;
	/* Directory targets never use TLS; a targets file may bring nfs://
	 * targets at once, the control socket later (tls_setup_complete). */
	st->pending = 1;
	if (!has_nfs_target(cfg) && !cfg->targets_file)
		return 0;
	return tls_setup_complete(cfg, st, err, errlen);
}

int tls_setup_complete(const struct efsmt_config *cfg, struct tls_setup *st, char *err,
		       size_t errlen)
{
	if (!st->pending)
		return 0;
	int need_name = cfg->tls_verify && !cfg->tls_name;
	if (need_name || cfg->iam) {
		char why[128];
		snprintf(why, sizeof why, "%s",
			 need_name ? "for the servers' name FSID.efs.REGION.amazonaws.com"
				   : "to sign for with -o iam");
		if (!(st->region = resolve_region(cfg, why, err, errlen)))
			return -1;
	}
	if (need_name) {
		if (config_efs_tls_name(cfg->fs_id, st->region, st->name, sizeof st->name) < 0) {
			snprintf(err, errlen, "region %s: too long", st->region);
			goto fail;
		}
		st->conf.name = st->name;
	}
	struct tls_cert_conf cc = {.keyfile = cfg->keyfile,
				   .fs_id = cfg->fs_id,
				   .access_point = cfg->access_point,
				   .iam = cfg->iam,
				   .region = st->region,
				   .awsprofile = cfg->awsprofile};
	/* A shorter renewal for tests of it; the default is EFS's hour. */
	const char *renew = getenv("EFSMT_CERT_RENEW_S");
	if (renew && atoi(renew) > 0)
		cc.renew_s = (unsigned)atoi(renew);
	if (tls_cert_provider_new(&cc, &st->cert, err, errlen) < 0)
		goto fail;
	st->conf.client_cert = tls_cert_provider_hook(st->cert);
	st->pending = 0;
	log_info("msg=tls name=%s client-cert=%s%s%s%s", st->conf.name ? st->conf.name : "(host)",
		 cfg->fs_id, cfg->access_point ? " access-point=" : "",
		 cfg->access_point ? cfg->access_point : "", cfg->iam ? " iam=on" : "");
	return 0;
fail:
	/* conf keeps its checks: only what this call made goes */
	st->conf.name = cfg->tls_name;
	free(st->region);
	st->region = NULL;
	return -1;
}

void tls_setup_free(struct tls_setup *st)
{
	tls_cert_provider_free(st->cert);
	free(st->region);
	memset(st, 0, sizeof *st);
}
