/*
 * prov_log.h - the provisioner's log: one line per event on stderr, as
 * "efsmt-provisioner: level=info msg=cycle key=value ..." or, with
 * log_format = json, one JSON object per line (CloudWatch Logs parses it).
 *
 *   struct plog l;
 *   plog_start(&l, "info", "cycle");
 *   plog_int(&l, "files", 123); plog_str(&l, "action", "create");
 *   plog_end(&l);
 */
#ifndef EFSMT_PROV_LOG_H
#define EFSMT_PROV_LOG_H

#include <jansson.h>

void plog_set_json(int on);

struct plog {
	json_t *o;
};
void plog_start(struct plog *l, const char *level, const char *msg);
void plog_str(struct plog *l, const char *key, const char *v); /* NULL: skipped */
void plog_int(struct plog *l, const char *key, long long v);
void plog_num(struct plog *l, const char *key, double v);
void plog_bool(struct plog *l, const char *key, int v);
void plog_end(struct plog *l);

/* One event with one "error" field. */
void plog_error(const char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plog_warn(const char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
