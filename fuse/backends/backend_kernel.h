/*
 * backend_kernel.h - the kernel:// backend (backend_kernel.c): a mount
 * target mounted by efsmt with the kernel's NFSv4.1 client, then passed
 * through as a dir:// target (backend_dir.c) whose directory is that mount.
 */
#ifndef EFSMT_BACKEND_KERNEL_H
#define EFSMT_BACKEND_KERNEL_H

#include <stddef.h>

#include "backend.h"

extern const struct backend_ops backend_kernel_ops;

/* Where the mounts go: KERNEL_RUN_DIR/PID-N, one per target. */
#define KERNEL_RUN_DIR "/run/efsmt/kernel"

/* The options EFS documents for the kernel client. */
#define KERNEL_EFS_OPTS "vers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
/* Coherence across the targets' mounts (README.md, "Kernel NFS targets"):
 * attributes and directory contents are revalidated at every use, so a name
 * made through one mount is seen at once through every other; negative
 * lookups are never cached for the same reason. The environment variable
 * EFSMT_KERNEL_OPTS replaces these (bench/run-kernel.sh measures them). */
#define KERNEL_COHERENCE_OPTS "actimeo=0,lookupcache=positive"

/* backend_dir.c's pass-through for backends whose directory they made:
 * attach dir (plus the source's subdir) as the target's root, keeping ext
 * for the backend; backend_dir_ext gives it back. */
int backend_dir_attach_root(struct target *t, const char *dir, void *ext, char *err,
			    size_t errlen);
void *backend_dir_ext(struct target *t);
void backend_dir_detach(struct target *t);

/* TLS is on (-o tls, or by default with a file system id): kernel://
 * targets are then refused, as the kernel mounts them in plaintext. */
void backend_kernel_set_tls(int on);

int backend_kernel_attach(struct target *t, char *err, size_t errlen);
void backend_kernel_detach(struct target *t);
void backend_kernel_abort(struct target *t);

/* For `efsmtctl targets`: 0 when t is not a kernel:// target; else 1 with
 * what /proc says about its mount. server is the address of the kernel NFS
 * client the mount uses ("" when /proc/fs/nfsfs does not list it): another
 * address than the target's means the kernel trunked the target onto a
 * client of another address. client_users counts the mounts that client
 * serves (the USE column of /proc/fs/nfsfs/servers); connections counts the
 * established TCP connections to the target's address and port. */
struct kernel_info {
	char mount[64];
	char addr[64];
	char server[64];
	int client_users;
	int connections;
	unsigned dev_major, dev_minor;
};
int backend_kernel_info(struct target *t, struct kernel_info *ki);

/* Unmount what a killed efsmt left under KERNEL_RUN_DIR (mounts whose
 * owner process is gone); once per process, before the first mount. */
void backend_kernel_clean_stale(void);

#endif
