/*
 * opstats.h - per-target, per-operation counters and latency histograms.
 *
 * Written by worker threads with relaxed atomic adds (no lock, no line per
 * request in any log); read by the control thread for stats and metrics.
 * Latencies go into log-linear buckets: 4 per power of two of microseconds,
 * so a reported percentile is within 25% of the true value.
 */
#ifndef EFSMT_OPSTATS_H
#define EFSMT_OPSTATS_H

#include <stdatomic.h>
#include <stdint.h>

#define OPSTATS_SUB 4      /* buckets per power of two */
#define OPSTATS_BUCKETS 112 /* up to 2^28 us (about 268 s); slower ops go in the last */

#define OPSTATS_OPS(X)                                                                 \
	X(LOOKUP, "lookup")                                                            \
	X(GETATTR, "getattr")                                                          \
	X(SETATTR, "setattr")                                                          \
	X(READLINK, "readlink")                                                        \
	X(MKNOD, "mknod")                                                              \
	X(MKDIR, "mkdir")                                                              \
	X(UNLINK, "unlink")                                                            \
	X(RMDIR, "rmdir")                                                              \
	X(SYMLINK, "symlink")                                                          \
	X(RENAME, "rename")                                                            \
	X(LINK, "link")                                                                \
	X(OPEN, "open")                                                                \
	X(READ, "read")                                                                \
	X(WRITE, "write")                                                              \
	X(RELEASE, "release")                                                          \
	X(FSYNC, "fsync")                                                              \
	X(FLUSH, "flush")                                                              \
	X(OPENDIR, "opendir")                                                          \
	X(READDIR, "readdir")                                                          \
	X(READDIRPLUS, "readdirplus")                                                  \
	X(RELEASEDIR, "releasedir")                                                    \
	X(FSYNCDIR, "fsyncdir")                                                        \
	X(STATFS, "statfs")                                                            \
	X(ACCESS, "access")                                                            \
	X(SETXATTR, "setxattr")                                                        \
	X(GETXATTR, "getxattr")                                                        \
	X(LISTXATTR, "listxattr")                                                      \
	X(REMOVEXATTR, "removexattr")                                                  \
	X(CREATE, "create")                                                            \
	X(FALLOCATE, "fallocate")                                                      \
	X(LSEEK, "lseek")                                                              \
	X(COPY_FILE_RANGE, "copy_file_range")                                          \
	X(FORGET, "forget")                                                            \
	X(LOCK, "lock")

enum opstats_op {
#define OPSTATS_ENUM(e, s) OP_##e,
	OPSTATS_OPS(OPSTATS_ENUM)
#undef OPSTATS_ENUM
	OP_COUNT
};

struct opstats {
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t errors;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t hist[OPSTATS_BUCKETS];
};

const char *opstats_name(enum opstats_op op);
unsigned opstats_bucket(uint64_t us);
/* Upper bound, in microseconds, of a bucket. */
uint64_t opstats_bucket_upper(unsigned b);
void opstats_record(struct opstats *s, uint64_t us, uint64_t bytes, int failed);
/* The q-quantile (0 < q <= 1) in microseconds from a histogram snapshot;
 * 0 when empty. */
uint64_t opstats_quantile(const uint64_t *hist, double q);

#endif
