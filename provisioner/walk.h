/* The file count of the provisioner: a parallel directory walk.
 *
 * EFS reports no inode counts through statfs, so the provisioner counts what
 * is under a directory itself:
 *
 *   struct walk_result r;
 *   int rc = walk_count("/mnt/efs", 0, &r, on_error, arg);
 *   walk_cmd_count("/mnt/efs", 0, 0);     the `count` command: one line out
 *
 * The counts equal find's: `find ROOT -type f` (files), `find ROOT -type d`
 * (dirs, ROOT included, unreadable directories included) and
 * `find ROOT ! -type f ! -type d` (other: symlinks, fifos, sockets, devices).
 * Symlinks below ROOT are never followed; ROOT itself is resolved like a path
 * given on a command line (`find ROOT/`).
 *
 * Testing hook: with EFSMT_WALK_FORCE_STAT=1 in the environment every entry
 * is typed with fstatat, as on a file system that returns DT_UNKNOWN.
 *
 * find lstat()s every subdirectory it meets; one whose lstat fails (its parent has
 * r but not x) has no type for find and is counted in `other`, as is an
 * entry of type DT_UNKNOWN whose fstatat fails. */
#ifndef EFSMT_WALK_H
#define EFSMT_WALK_H

#include <stdint.h>

/* on_error is called at most this many times per walk; later errors are
 * only counted in `unreadable`. */
#define WALK_MAX_ERRORS 100

struct walk_result {
	uint64_t files, dirs, other, unreadable;
	double seconds;
};

/* Counts under root with nthreads threads (0: WALK_DEFAULT_THREADS, see
 * walk.c). A directory that cannot be opened or read is counted in
 * `unreadable` and reported through on_error (may be NULL) as
 * (path, errno, arg): from any thread, one call at a time, at most
 * WALK_MAX_ERRORS calls. The walk goes on. Returns 0, or -errno if root itself
 * cannot be opened (then nothing is counted), or -ENOMEM / -EAGAIN when
 * memory or threads run out. */
int walk_count(const char *root, int nthreads, struct walk_result *res,
	       void (*on_error)(const char *path, int err, void *arg), void *arg);

/* `efsmt-provisioner count PATH`: walks, prints one line to stdout,
 *   files=N dirs=N other=N unreadable=N seconds=S.SSS
 * or with json set {"files":N,"dirs":N,"other":N,"unreadable":N,"seconds":S},
 * one stderr line per unreadable directory (at most WALK_MAX_ERRORS, then one
 * line with how many more). Returns the exit status: 0 when everything was
 * read, 1 when some directory could not be read (the counts are still
 * printed), 2 when PATH itself cannot be opened. */
int walk_cmd_count(const char *path, int nthreads, int json);

#endif
