/*
 * nfs_xattr.c - extended attributes: NFSv4.1 has none (they came in 4.2),
 * so files list none and setting one fails with EOPNOTSUPP, as on a file
 * system without them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>

#include "backends/backend.h"
#include "nfs_be.h"

ssize_t nfs_be_getxattr(struct target *t, const char *path, const char *name, char *buf,
			size_t size)
{
	(void)t, (void)path, (void)name, (void)buf, (void)size;
	return -ENODATA; /* every file has none */
}

int nfs_be_setxattr(struct target *t, const char *path, const char *name, const char *value,
		    size_t size, int flags)
{
	(void)t, (void)path, (void)name, (void)value, (void)size, (void)flags;
	return -EOPNOTSUPP;
}

ssize_t nfs_be_listxattr(struct target *t, const char *path, char *buf, size_t size)
{
	(void)t, (void)path, (void)buf, (void)size;
	return 0; /* an empty list */
}

int nfs_be_removexattr(struct target *t, const char *path, const char *name)
{
	(void)t, (void)path, (void)name;
	return -EOPNOTSUPP;
}

/* NFSv4 carries extended attributes of the user.* namespace only (RFC 8276,
 * NFSv4.2; 4.1 has none): no server can hold a security.* name (an SELinux
 * label, file capabilities) or a POSIX ACL as system.posix_acl_* (NFSv4 ACLs
 * are a file attribute of their own, not these names). */
int nfs_be_xattr_cannot_hold(struct target *t, const char *name)
{
	(void)t;
	return strncmp(name, "security.", 9) == 0 || strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}
