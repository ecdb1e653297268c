/* fdio.h - whole-buffer reads for the unit tests' scripted servers. */
#ifndef EFSMT_TEST_FDIO_H
#define EFSMT_TEST_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Read exactly n bytes; 0, or -1 on error or end of stream. */
static inline int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

#endif
