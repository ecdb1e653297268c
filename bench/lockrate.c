/*
 * lockrate - lock/unlock round trips per second on one file.
 *
 *   lockrate [-k posix|ofd|flock] [-n COUNT] [-r RANGES] FILE
 *
 * Opens FILE (creating it) and COUNT times takes an exclusive lock and
 * releases it, without contention: fcntl F_SETLK (posix, the default),
 * F_OFD_SETLK (ofd) or flock LOCK_EX|LOCK_NB (flock). With -r RANGES each
 * round locks RANGES distinct one-byte ranges before unlocking the whole
 * file (posix and ofd). Prints "KIND ROUNDS SECONDS ROUNDS_PER_S" on one
 * line; exits 1 with one line on stderr when a lock call fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "benchutil.h"

#define LOCKRATE_COUNT_DEFAULT 2000
#define LOCKRATE_COUNT_MAX     100000000L
#define LOCKRATE_RANGES_MAX    1024

enum { K_POSIX, K_OFD, K_FLOCK };

static int set(int fd, int kind, short type, off_t start, off_t len)
{
	if (kind == K_FLOCK)
		return flock(fd, (type == F_UNLCK ? LOCK_UN : LOCK_EX) | LOCK_NB);
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, kind == K_OFD ? F_OFD_SETLK : F_SETLK, &fl);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lockrate [-k posix|ofd|flock] [-n COUNT] [-r RANGES] FILE\n");
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"posix", "ofd", "flock"};
	long count = LOCKRATE_COUNT_DEFAULT, ranges = 1;
	int kind = K_POSIX, c;

	while ((c = getopt(argc, argv, "k:n:r:h")) != -1) {
		switch (c) {
		case 'k':
			for (kind = 0; kind < 3 && strcmp(optarg, names[kind]) != 0; kind++)
				;
			if (kind == 3) {
				fprintf(stderr, "lockrate: -k %s: expected posix, ofd or flock\n",
					optarg);
				return 2;
			}
			break;
		case 'n':
			if (bench_parse_long(optarg, 1, LOCKRATE_COUNT_MAX, &count) < 0) {
				fprintf(stderr, "lockrate: -n %s: expected 1 to %ld\n", optarg,
					LOCKRATE_COUNT_MAX);
				return 2;
			}
			break;
		case 'r':
			if (bench_parse_long(optarg, 1, LOCKRATE_RANGES_MAX, &ranges) < 0) {
				fprintf(stderr, "lockrate: -r %s: expected 1 to %d\n", optarg,
					LOCKRATE_RANGES_MAX);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	int fd = open(argv[optind], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "lockrate: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	double t0 = bench_now();
	for (long i = 0; i < count; i++) {
		for (long r = 0; r < (kind == K_FLOCK ? 1 : ranges); r++) {
			if (set(fd, kind, F_WRLCK, 2 * r, 1) < 0) {
				fprintf(stderr, "lockrate: lock %ld: %s\n", i, strerror(errno));
				return 1;
			}
		}
		if (set(fd, kind, F_UNLCK, 0, 0) < 0) {
			fprintf(stderr, "lockrate: unlock %ld: %s\n", i, strerror(errno));
			return 1;
		}
	}
	double dt = bench_now() - t0;
	close(fd);
	printf("%s %ld %.3f %.0f\n", names[kind], count, dt, (double)count / dt);
	return 0;
}
