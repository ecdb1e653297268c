#include "setid.h"

#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Groups looked at on the stack; a thread with more is read into the heap. */
#define SETID_STACK_GROUPS 256

/* Whether this thread's identity is in group g (the kernel's in_group_p). */
static int thread_in_group(gid_t g)
{
	gid_t stack[SETID_STACK_GROUPS], *list = stack;
	int found = 0;

	if ((gid_t)setfsgid((gid_t)-1) == g)
		return 1;
	long n = syscall(SYS_getgroups, SETID_STACK_GROUPS, list);
	if (n < 0) {
		n = syscall(SYS_getgroups, 0, NULL);
		list = n > 0 ? malloc((size_t)n * sizeof(gid_t)) : NULL;
		n = list ? syscall(SYS_getgroups, n, list) : 0;
	}
	for (long i = 0; i < n && !found; i++)
		found = list[i] == g;
	if (list != stack)
		free(list);
	return found;
}

/* Set-group-ID goes when the file is group-executable, or when the
 * caller is not in its group (and is not root). */
static mode_t sgid_goes(const struct stat *st, uid_t caller)
{
	if (!(st->st_mode & S_ISGID))
		return 0;
	if (st->st_mode & S_IXGRP)
		return S_ISGID;
	return caller != 0 && !thread_in_group(st->st_gid) ? S_ISGID : 0;
}

mode_t setid_kill_on_write(const struct stat *st, uid_t caller)
{
	if (!S_ISREG(st->st_mode) || caller == 0)
		return 0;
	return (st->st_mode & S_ISUID) | sgid_goes(st, caller);
}

mode_t setid_kill_on_chown(const struct stat *before, uid_t caller)
{
	if (!S_ISREG(before->st_mode))
		return 0;
	return (before->st_mode & S_ISUID) | sgid_goes(before, caller);
}
