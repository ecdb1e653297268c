#include "procgroups.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for a status file of a process with few groups (about 1.5 KiB). */
#define PROC_STATUS_BUF 4096

/* Parse the numbers after "Groups:" in a status file's text. */
static int parse_groups(const char *text, gid_t *list, int max)
{
	const char *p = strstr(text, "\nGroups:");
	int n = 0;

	if (!p)
		return -EIO;
	p += strlen("\nGroups:");
	for (;;) {
		char *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		unsigned long g = strtoul(p, &end, 10);
		if (n < max)
			list[n] = (gid_t)g;
		n++;
		p = end;
	}
	return n;
}

/* Read a whole /proc file (its size is not known ahead) into *buf, which
 * starts as stack space of *cap bytes and is malloc'd when it must grow. */
static ssize_t read_all(int fd, char **buf, size_t *cap, int *heap)
{
	size_t have = 0;

	for (;;) {
		if (have + 1 >= *cap) {
			size_t ncap = *cap * 4;
			char *nb = *heap ? realloc(*buf, ncap) : malloc(ncap);
			if (!nb)
				return -ENOMEM;
			if (!*heap)
				memcpy(nb, *buf, have);
			*buf = nb;
			*cap = ncap;
			*heap = 1;
		}
		ssize_t r = read(fd, *buf + have, *cap - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		have += (size_t)r;
	}
	(*buf)[have] = '\0';
	return (ssize_t)have;
}

int proc_thread_groups(pid_t tid, gid_t *list, int max)
{
	char fn[64], stack[PROC_STATUS_BUF], *buf = stack;
	size_t cap = sizeof(stack);
	int heap = 0, n;

	/* /proc/TID/task/TID: the thread's own credentials, not its leader's. */
	snprintf(fn, sizeof(fn), "/proc/%d/task/%d/status", (int)tid, (int)tid);
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t len = read_all(fd, &buf, &cap, &heap);
	close(fd);
	n = len < 0 ? (int)len : parse_groups(buf, list, max);
	if (heap)
		free(buf);
	return n;
}
