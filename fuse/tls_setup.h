/*
 * tls_setup.h - what TLS to nfs:// targets needs before the first
 * connection: the name the servers' certificates must carry and the
 * client certificate (nfs/tls_cert.h), from the parsed options.
 */
#ifndef EFSMT_TLS_SETUP_H
#define EFSMT_TLS_SETUP_H

#include <stddef.h>

#include "config.h"
#include "nfs/tls.h"

struct tls_setup {
	struct tls_conf conf; /* what backend_nfs_set_tls gets */
	char name[256];	      /* conf.name when it is the EFS default */
	char *region;	      /* resolved; NULL when nothing needed it */
	struct tls_cert_provider *cert;
};

/* Fills st for cfg (cfg->tls on, cfg outlives st). Resolves the region
 * (-o region=, AWS_REGION, AWS_DEFAULT_REGION, the profile, IMDS) when the
 * server name or -o iam needs it, loads or makes the client key, fetches
 * credentials for -o iam and makes the first certificate. 0, or -1 with
 * one line in err naming what failed and what to do. */
int tls_setup_init(const struct efsmt_config *cfg, struct tls_setup *st, char *err, size_t errlen);
void tls_setup_free(struct tls_setup *st);

#endif
