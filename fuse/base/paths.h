/*
 * paths.h - small file-system path helpers shared by the daemon's modules.
 */
#ifndef EFSMT_PATHS_H
#define EFSMT_PATHS_H

#include <sys/types.h>

/* mkdir -p: dir and every missing parent, new ones with mode. 0 or -errno. */
int paths_mkdir_p(const char *dir, mode_t mode);
/* paths_mkdir_p of path's parent directory (nothing for "/x" or "x"). */
int paths_mkdir_parent(const char *path, mode_t mode);

#endif
