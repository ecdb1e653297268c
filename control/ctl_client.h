/*
 * ctl_client.h - the client side of the control protocol (PROTOCOL.md),
 * shared by efsmtctl and efsmt-provisioner.
 *
 *   int code;
 *   json_t *a = ctl_call("/run/efsmt/fs-1-ab.sock", json_pack("{s:s}", "cmd", "status"),
 *                        &code, err, sizeof(err));
 *
 * Connection failures map to the exit statuses efsmtctl documents.
 */
#ifndef EFSMT_CTL_CLIENT_H
#define EFSMT_CTL_CLIENT_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

/* efsmtctl's exit statuses (documented in its --help and PROTOCOL.md). */
#define CTL_EX_OK	0
#define CTL_EX_REFUSED	1 /* the daemon answered ok:false, or health is not healthy */
#define CTL_EX_USAGE	2
#define CTL_EX_NODAEMON 3 /* no socket, nobody listening, no daemon for -m */
#define CTL_EX_DENIED	4 /* permission denied */
#define CTL_EX_PROTO	5 /* no answer, or not the protocol */

/* One request (consumed), one answer. NULL with a one-line reason in err
 * and *code set to a CTL_EX_* status on failure; an ok:false answer is an
 * answer (returned, *code CTL_EX_OK). */
json_t *ctl_call(const char *path, json_t *req, int *code, char *err, size_t errlen);

/* Every *.sock in dirname (NULL: ctl_socket_dir()) with its status answer
 * (NULL when it did not answer ok). *out is malloc'd; free with ctl_found_free. */
struct ctl_found {
	char path[PATH_MAX];
	json_t *status;
};
size_t ctl_scan(const char *dirname, struct ctl_found **out);
void ctl_found_free(struct ctl_found *f, size_t n);

#endif
