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
	int pending;	      /* a file system id, but no nfs:// target yet */
};

/* Fills st for cfg (cfg->tls on, cfg outlives st). Resolves the region
 * (-o region=, AWS_REGION, AWS_DEFAULT_REGION, the profile, IMDS) when the
 * server name or -o iam needs it, loads or makes the client key, fetches
 * credentials for -o iam and makes the first certificate. 0, or -1 with
 * one line in err naming what failed and what to do. Without an nfs://
 * target (only directories at start) that is left for tls_setup_complete,
 * so a directory-only mount needs no region. */
int tls_setup_init(const struct efsmt_config *cfg, struct tls_setup *st, char *err, size_t errlen);
/* What tls_setup_init left for later, before the first nfs:// target
 * attaches (added through the control socket); 0 at once when nothing is
 * left, else as tls_setup_init. On failure st->conf stays as it was (its
 * checks on) and the next call tries again. Not thread-safe: the caller
 * serializes. */
int tls_setup_complete(const struct efsmt_config *cfg, struct tls_setup *st, char *err,
		       size_t errlen);
void tls_setup_free(struct tls_setup *st);

#endif
