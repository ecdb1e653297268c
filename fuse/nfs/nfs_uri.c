/* nfs_uri.c - target URIs: nfs://HOST[:PORT][/PATH], [V6]:PORT, or a bare host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfs4.h"

int nfs_parse_uri(const char *uri, char *host, size_t hostlen, uint16_t *port, char *path,
		  size_t pathlen)
{
	const char *p = uri;
	if (strncmp(p, "nfs://", 6) == 0)
		p += 6;
	else if (strstr(p, "://"))
		return -EINVAL;
	const char *hend;
	const char *rest;
	if (*p == '[') { /* [IPv6] */
		hend = strchr(p, ']');
		if (!hend)
			return -EINVAL;
		p++;
		rest = hend + 1;
	} else {
		hend = p + strcspn(p, ":/");
		rest = hend;
	}
	size_t hl = (size_t)(hend - p);
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	memcpy(host, p, hl);
	host[hl] = '\0';
	*port = NFS_DEFAULT_PORT;
	if (*rest == ':') {
		char *end;
		unsigned long v = strtoul(rest + 1, &end, 10);
		if (end == rest + 1 || v == 0 || v > 65535 || (*end && *end != '/'))
			return -EINVAL;
		*port = (uint16_t)v;
		rest = end;
	}
	if (*rest && *rest != '/')
		return -EINVAL;
	const char *pp = *rest ? rest : "/";
	/* Canonical: leading slash, no trailing slash (except the root). */
	size_t pl = strlen(pp);
	while (pl > 1 && pp[pl - 1] == '/')
		pl--;
	if (pl >= pathlen)
		return -ENAMETOOLONG;
	memcpy(path, pp, pl);
	path[pl] = '\0';
	return 0;
}
