/*
 * control_server.h - the daemon's side of the control socket (the protocol
 * is control/PROTOCOL.md): one thread that admits root and the daemon's
 * own uid (SO_PEERCRED), answers one JSON line per request, sweeps retired
 * route tables, and re-reads targets_file on SIGHUP.
 */
#ifndef EFSMT_CONTROL_SERVER_H
#define EFSMT_CONTROL_SERVER_H

#include <stddef.h>

#include "config.h"

/* Bind and listen (before the mount, so a bad socket stops the start);
 * path NULL: no socket, the thread still serves SIGHUP. 0, or -1 with a
 * one-line reason. */
int ctl_server_open(const struct efsmt_config *cfg, const char *path, char *err,
		    size_t errlen);
/* Start the thread (after daemonizing) and take over SIGHUP when there is
 * a targets_file. */
int ctl_server_start(void);
/* Stop the thread, close and remove the socket. */
void ctl_server_stop(void);

/* control_cmd.c: answer one request line; the answer is a malloc'ed line. */
char *ctl_handle_line(const char *line, size_t len);
/* Re-read targets_file (SIGHUP); logs the outcome. */
void ctl_reload_targets_file(void);

#endif
