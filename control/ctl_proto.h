/*
 * ctl_proto.h - the control protocol shared by efsmt, efsmtctl and the
 * provisioner (the contract is PROTOCOL.md): framing, limits, request
 * parsing and validation, and the socket naming rule.
 *
 * One JSON object per line each way. Parsing is pure (no I/O) so that every
 * bad input is unit tested and fuzzed (tests/unit/check_ctl.c, fuzz/).
 */
#ifndef EFSMT_CTL_PROTO_H
#define EFSMT_CTL_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_LINE (1024 * 1024) /* bytes in one request line, newline included */
#define CTL_MAX_TARGETS 256        /* targets in one set-targets */
#define CTL_MAX_CLIENTS 16         /* connections served at once */
#define CTL_IO_TIMEOUT_MS 5000     /* a client that stalls a reply this long is dropped */
#define CTL_SOCKET_DIR_ROOT "/run/efsmt"

enum ctl_cmd {
	CTL_STATUS,
	CTL_TARGETS,
	CTL_SET_TARGETS,
	CTL_ADD_TARGET,
	CTL_REMOVE_TARGET,
	CTL_STATS,
	CTL_METRICS,
	CTL_HEALTH,
	CTL_RPCS,
	CTL_NCMDS
};

struct ctl_request {
	enum ctl_cmd cmd;
	json_t *root;       /* owns everything below */
	uint64_t generation; /* set-targets */
	json_t *targets;    /* set-targets: a validated array (borrowed from root) */
	const char *uri;    /* add-target */
	const char *id;     /* add-target (optional), remove-target */
};

/* Parse one request line (without its newline). 0, or -1 with a one-line
 * reason in err; on success free with ctl_request_free(). */
int ctl_parse_request(const char *buf, size_t len, struct ctl_request *req, char *err,
		      size_t errlen);
void ctl_request_free(struct ctl_request *req);
const char *ctl_cmd_name(enum ctl_cmd cmd);

/* Answers: {"ok":true,...} (takes obj, may be NULL) and {"ok":false,...}.
 * The result is one line with its newline, malloc'ed. */
char *ctl_answer_ok(json_t *obj);
char *ctl_answer_error(const char *msg);

/* A bounded line reader over a stream socket. */
struct ctl_linebuf {
	char *buf;
	size_t len;  /* bytes held */
	size_t cap;  /* allocated */
	size_t used; /* bytes of the line last returned, consumed at the next call */
};
/* Read what is available once: >0 bytes read, 0 at end of stream, -errno. */
long ctl_lb_read(struct ctl_linebuf *lb, int fd);
/* 1 and a NUL-terminated line (without newline) when one is complete, 0 when
 * more bytes are needed, -1 when the line is longer than CTL_MAX_LINE. */
int ctl_lb_next(struct ctl_linebuf *lb, char **line, size_t *len);
void ctl_lb_free(struct ctl_linebuf *lb);

/* The socket naming rule (PROTOCOL.md): DIR/NAME-HASH.sock where DIR is
 * ctl_socket_dir(), NAME the file system id (or the source label) cleaned
 * to [A-Za-z0-9._-], HASH 16 hex digits of XXH3_64(source id + mount
 * point). 0, or -1 if it does not fit in out. */
int ctl_socket_dir(char *out, size_t outlen);
int ctl_default_socket(const char *fs_id, const char *mountpoint, char *out, size_t outlen);

#endif
